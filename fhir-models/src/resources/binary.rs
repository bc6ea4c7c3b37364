use serde::{Deserialize, Serialize};

use super::resource_type;
use crate::{Extra, Meta, Reference};

/// R4 `Binary` (raw content such as a QR image or PDF; `data` is base64).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Binary {
    pub resource_type: resource_type::Binary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meta: Option<Meta>,
    /// MIME type of `data`.
    pub content_type: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub security_context: Option<Reference>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
    #[serde(flatten)]
    pub extra: Extra,
}
