use serde::{Deserialize, Serialize};

use super::resource_type;
use crate::{CodeableConcept, Extension, Extra, Identifier, Meta, Reference};

/// R4 `Immunization` (DDCCImmunization: the vaccination event).
///
/// `status` and `occurrence[x]` are required by R4 but optional here: IG examples omit them, and a
/// model that refuses real documents cannot round-trip them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Immunization {
    pub resource_type: resource_type::Immunization,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Brand, market-authorization holder, country, valid-from… (DDCC extensions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    /// completed | entered-in-error | not-done
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    pub vaccine_code: CodeableConcept,
    pub patient: Reference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub encounter: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurrence_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurrence_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recorded: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub primary_source: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub manufacturer: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lot_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub performer: Vec<ImmunizationPerformer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub protocol_applied: Vec<ImmunizationProtocolApplied>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `Immunization.performer` (the health worker).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmunizationPerformer {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub function: Option<CodeableConcept>,
    pub actor: Reference,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `Immunization.protocolApplied` (dose number, series, authority, target disease).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ImmunizationProtocolApplied {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authority: Option<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target_disease: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dose_number_positive_int: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dose_number_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_doses_positive_int: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_doses_string: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
