//! Serde models of the FHIR R4 resources that ddcc-mediator reads and writes.
//!
//! Why our own models: we need a small, exact subset of R4, and we must never drop what a sender wrote.
//! Every struct therefore keeps the elements it does not model in an `extra` map
//! (`#[serde(flatten)]`), so a parse/serialize round trip is lossless. Optional elements are skipped
//! when absent, so what we emit is minimal, valid FHIR JSON.

mod datatypes;
mod resources;

pub use datatypes::*;
pub use resources::*;

/// Elements this crate does not model, kept verbatim so nothing a sender wrote is lost.
pub type Extra = serde_json::Map<String, serde_json::Value>;
