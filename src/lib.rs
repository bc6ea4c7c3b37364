//! ddcc-mediator: issues WHO DDCC:VS vaccination certificates.
//!
//! The pipeline, one module per stage (README.md "Layout"):
//!
//! ```text
//! intake ──► domain ──► document ──► credential ──► render
//! QR/Parameters/ VaccinationEvent  DDCC FHIR   CWT → COSE_Sign1  QR PNG/SVG
//! batch Bundle                     Bundle      (Signer) → HC1    PDF
//! ```

pub mod cli;
pub mod clock;
pub mod codes;
pub mod compact_json;
pub mod configuration;
pub mod credential;
pub mod deflate;
pub mod document;
pub mod domain;
pub mod error;
pub mod http;
pub mod intake;
pub mod keys;
pub mod openhim;
pub mod outbound;
pub mod pipeline;
pub mod render;
pub mod service;
pub mod signer;
pub mod store;
pub mod telemetry;

pub use error::{Error, Result};

#[cfg(test)]
mod layers;
