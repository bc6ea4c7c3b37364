use serde::{Deserialize, Serialize};

use super::resource_type;
use crate::{CodeableConcept, Extension, Extra, Meta, Period, Reference, Signature};

/// R4 `Provenance` (who signed/issued which resources).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Provenance {
    pub resource_type: resource_type::Provenance,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    /// The resources this provenance is about (1..*).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub target: Vec<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_period: Option<Period>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub occurred_date_time: Option<String>,
    /// FHIR `instant`.
    pub recorded: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub policy: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Reference>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reason: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agent: Vec<ProvenanceAgent>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub signature: Vec<Signature>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `Provenance.agent`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProvenanceAgent {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<CodeableConcept>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub role: Vec<CodeableConcept>,
    pub who: Reference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<Reference>,
    #[serde(flatten)]
    pub extra: Extra,
}
