use serde::{Deserialize, Serialize};

use super::resource_type;
use crate::{Extra, Meta};

/// R4 `QuestionnaireResponse` (the DDCC:VS submission).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionnaireResponse {
    pub resource_type: resource_type::QuestionnaireResponse,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// Canonical of the Questionnaire answered, optionally `|version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub questionnaire: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// When the answers were recorded (FHIR `dateTime`); orders two versions of one event.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub authored: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<QuestionnaireResponseItem>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `QuestionnaireResponse.item` (nested items kept, so nesting can be detected and reported).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionnaireResponseItem {
    pub link_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub answer: Vec<QuestionnaireResponseAnswer>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<QuestionnaireResponseItem>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One answer. The `value[x]` choice stays in `extra` as raw JSON (`valueString`, `valueCoding`…), so that a
/// wrong answer type can be named precisely instead of failing the whole parse.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QuestionnaireResponseAnswer {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub item: Vec<QuestionnaireResponseItem>,
    #[serde(flatten)]
    pub extra: Extra,
}

impl QuestionnaireResponseAnswer {
    /// The `value[x]` element: its type suffix (e.g. `"String"`) and JSON value, if exactly one is present.
    pub fn value(&self) -> Option<(&str, &serde_json::Value)> {
        let mut values = self
            .extra
            .iter()
            .filter_map(|(k, v)| k.strip_prefix("value").map(|t| (t, v)));
        let first = values.next()?;
        values.next().is_none().then_some(first)
    }
}
