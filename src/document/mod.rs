//! Document: a [`VaccinationEvent`] and its signed QR artefacts become the DDCC:VS document Bundle
//! (IG 1.0.0 profile DDCCVSDocument).
//!
//! PLACEHOLDER BODY: the document helper replaces it before this lands.

use fhir_models::Bundle;

use crate::domain::VaccinationEvent;

/// Which QR payload an artefact carries (IG code system DDCCQRTypeCodeSystem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrKind {
    /// The DDCC core data set (`who`).
    Who,
    /// The EU DCC payload (`dcc`).
    Dcc,
}

/// One signed QR, as it goes into a DocumentReference (content slots serialized / image / pdf).
#[derive(Debug, Clone)]
pub struct QrArtifact {
    pub kind: QrKind,
    /// The hcert payload as JSON (the `serialized` attachment).
    pub payload_json: Vec<u8>,
    /// The `HC1:` string.
    pub hc1: String,
    /// QR image (PNG).
    pub png: Vec<u8>,
}

/// What the document needs besides the event.
#[derive(Debug, Clone)]
pub struct DocumentContext {
    /// Issue time (Bundle.timestamp, Composition.date).
    pub issued_at: time::OffsetDateTime,
    pub qrs: Vec<QrArtifact>,
}

/// Builds the DDCC:VS document Bundle. Resource ids are derived from the hcid, so issuing the same
/// event twice yields the same ids.
pub fn build_document(_event: &VaccinationEvent, _ctx: &DocumentContext) -> Bundle {
    Bundle {
        type_: "document".into(),
        ..Default::default()
    }
}
