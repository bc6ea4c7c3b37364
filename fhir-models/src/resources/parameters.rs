use serde::{Deserialize, Serialize};

use super::resource_type;
use crate::{Extra, Meta};

/// R4 `Parameters`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Parameters {
    pub resource_type: resource_type::Parameters,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
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
