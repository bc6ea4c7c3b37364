use serde::{Deserialize, Serialize};

use super::resource_type;
use crate::{CodeableConcept, Extension, Extra, Identifier, Meta, Reference};

/// R4 `ImmunizationRecommendation` (DDCC: when the next dose is due).
///
/// `date` is required by R4 but optional here, as IG examples omit it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmunizationRecommendation {
    pub resource_type: resource_type::ImmunizationRecommendation,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    pub patient: Reference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recommendation: Vec<ImmunizationRecommendationRecommendation>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `ImmunizationRecommendation.recommendation`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmunizationRecommendationRecommendation {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub vaccine_code: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_disease: Option<CodeableConcept>,
    pub forecast_status: CodeableConcept,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub date_criterion: Vec<ImmunizationRecommendationDateCriterion>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dose_number_positive_int: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dose_number_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_doses_positive_int: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_doses_string: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub supporting_immunization: Vec<Reference>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `recommendation.dateCriterion` (e.g. LOINC 30980-7 "Date vaccine due").
///
/// `value` (a `dateTime`) is required by R4 but optional here, as IG examples omit it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmunizationRecommendationDateCriterion {
    pub code: CodeableConcept,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
