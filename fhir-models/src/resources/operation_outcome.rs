use serde::{Deserialize, Serialize};

use super::resource_type;
use crate::{CodeableConcept, Extra, Meta};

/// R4 `OperationOutcome`: how every error is reported to callers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    pub resource_type: resource_type::OperationOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
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
