//! R4 data types (complex types shared by resources).

use serde::{Deserialize, Serialize};

use crate::Extra;

/// R4 `Coding`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Coding {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Coding {
    /// A coding with system and code (the common case when building resources).
    pub fn new(system: impl Into<String>, code: impl Into<String>) -> Self {
        Coding {
            system: Some(system.into()),
            code: Some(code.into()),
            ..Default::default()
        }
    }
}

/// R4 `CodeableConcept`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CodeableConcept {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl From<Coding> for CodeableConcept {
    fn from(coding: Coding) -> Self {
        CodeableConcept {
            coding: vec![coding],
            ..Default::default()
        }
    }
}

/// R4 `Identifier`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Identifier {
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R4 `Reference`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub type_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Reference {
    /// A literal reference, e.g. `"Patient/123"` or `"urn:uuid:…"`.
    pub fn to(reference: impl Into<String>) -> Self {
        Reference {
            reference: Some(reference.into()),
            ..Default::default()
        }
    }
}

/// R4 `Extension`. The value types the DDCC profiles use are fields; any other `value[x]` stays in
/// `extra`, so nothing is lost.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Extension {
    /// Nested extensions (complex extensions).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub extension: Vec<Extension>,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_boolean: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_integer: Option<i32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_string: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_date: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_uri: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_canonical: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_coding: Option<Coding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_codeable_concept: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_reference: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_period: Option<Period>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Extension {
    /// An extension with a `valueCoding`.
    pub fn coding(url: impl Into<String>, value: Coding) -> Self {
        Extension {
            url: url.into(),
            value_coding: Some(value),
            ..Default::default()
        }
    }
    /// An extension with a `valueCode`.
    pub fn code(url: impl Into<String>, value: impl Into<String>) -> Self {
        Extension {
            url: url.into(),
            value_code: Some(value.into()),
            ..Default::default()
        }
    }
    /// An extension with a `valueDate`.
    pub fn date(url: impl Into<String>, value: impl Into<String>) -> Self {
        Extension {
            url: url.into(),
            value_date: Some(value.into()),
            ..Default::default()
        }
    }
}

/// R4 `Meta`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Canonical URLs of the profiles the resource claims to conform to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub profile: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub security: Vec<Coding>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tag: Vec<Coding>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl Meta {
    /// A `meta` that only claims one profile.
    pub fn profile(url: impl Into<String>) -> Self {
        Meta {
            profile: vec![url.into()],
            ..Default::default()
        }
    }
}

/// R4 `Period` (start/end are FHIR `dateTime` strings, kept as written).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R4 `Attachment`. `data` and `hash` are base64 strings, as on the wire.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub language: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub creation: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R4 `HumanName`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct HumanName {
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub given: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub prefix: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub suffix: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub period: Option<Period>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R4 `Signature` (Bundle.signature, Provenance.signature). `data` is base64.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Signature {
    /// Why it was signed (1..*; e.g. ASTM E1762-95 `1.2.840.10065.1.12.1.5` verification signature).
    #[serde(rename = "type", default, skip_serializing_if = "Vec::is_empty")]
    pub type_: Vec<Coding>,
    /// When it was signed (FHIR `instant`).
    pub when: String,
    pub who: Reference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_behalf_of: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sig_format: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
