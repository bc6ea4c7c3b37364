//! Serde models of the FHIR R4 resources that ddcc-mediator reads and writes.
//!
//! Why our own models: we need a small, exact subset of R4, and we must never drop what a sender wrote.
//! Every struct therefore keeps the elements it does not model in an `extra` map
//! (`#[serde(flatten)]`), so a parse/serialize round trip is lossless. Optional elements are skipped
//! when absent, so what we emit is minimal, valid FHIR JSON.
//!
//! Every resource carries a zero-sized `resource_type` marker (see [`resource_type`]) rather than
//! `#[serde(tag = "resourceType")]`: with a flattened `extra`, serde's struct tag is neither checked on
//! input nor kept out of `extra`, so a Patient would accept `"resourceType":"Bundle"` and write the tag
//! twice. The marker serializes the type name and rejects any other. Build resources with
//! `..Default::default()`; the marker is filled in.
//!
//! Choice elements (`value[x]`, `occurrence[x]`, `doseNumber[x]`…) are modelled as one optional field per
//! type the project uses (`value_coding`, `value_date`…); any other type stays in `extra`.

mod datatypes;
mod resources;

pub use datatypes::*;
pub use resources::*;

/// Elements this crate does not model, kept verbatim so nothing a sender wrote is lost.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// A FHIR resource type this crate models.
pub trait Resource: serde::Serialize + serde::de::DeserializeOwned {
    /// The `resourceType` value, e.g. `"Patient"`.
    const RESOURCE_TYPE: &'static str;
}

/// The `resourceType` of a resource held as raw JSON (e.g. `Bundle.entry.resource`).
pub fn resource_type_of(resource: &serde_json::Value) -> Option<&str> {
    resource.get("resourceType")?.as_str()
}
