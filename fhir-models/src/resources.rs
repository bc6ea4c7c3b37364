//! R4 resources. Every struct keeps unmodelled elements in `extra` (see the crate docs).

use serde::{Deserialize, Serialize};

use crate::{CodeableConcept, Extra};

/// R4 `OperationOutcome`: how every error is reported to callers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "resourceType",
    rename = "OperationOutcome",
    rename_all = "camelCase"
)]
pub struct OperationOutcome {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default)]
    pub issue: Vec<OperationOutcomeIssue>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `OperationOutcome.issue`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcomeIssue {
    /// fatal | error | warning | information
    pub severity: String,
    /// IssueType code, e.g. `invalid`, `required`, `value`, `structure`, `not-supported`, `transient`.
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
    /// FHIRPath expressions naming the offending element(s).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub expression: Vec<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R4 `QuestionnaireResponse` (the DDCC:VS submission).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "resourceType",
    rename = "QuestionnaireResponse",
    rename_all = "camelCase"
)]
pub struct QuestionnaireResponse {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Canonical of the Questionnaire answered, optionally `|version`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub questionnaire: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
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

/// R4 `Parameters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Parameters", rename_all = "camelCase")]
pub struct Parameters {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parameter: Vec<ParametersParameter>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `Parameters.parameter`. `resource` stays raw JSON: which resource type it must be depends on the
/// parameter name, and the caller reports a wrong one by name.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ParametersParameter {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub part: Vec<ParametersParameter>,
    #[serde(flatten)]
    pub extra: Extra,
}

/// R4 `Bundle` (batch requests in, batch-response and document Bundles out).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(tag = "resourceType", rename = "Bundle", rename_all = "camelCase")]
pub struct Bundle {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<crate::Identifier>,
    /// document | message | transaction | transaction-response | batch | batch-response | history | searchset | collection
    #[serde(rename = "type")]
    pub type_: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub link: Vec<BundleLink>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entry: Vec<BundleEntry>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleLink {
    pub relation: String,
    pub url: String,
    #[serde(flatten)]
    pub extra: Extra,
}

/// One `Bundle.entry`. `resource` is raw JSON: a Bundle may carry any resource type.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntry {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_url: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource: Option<serde_json::Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request: Option<BundleEntryRequest>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<BundleEntryResponse>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntryRequest {
    pub method: String,
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_none_exist: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub if_match: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BundleEntryResponse {
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcome: Option<serde_json::Value>,
    #[serde(flatten)]
    pub extra: Extra,
}
