//! Intake: what facility systems send, turned into valid [`VaccinationEvent`]s or a precise report.
//!
//! Accepted shapes (who-reference-mediator.md §2, §4): a bare QuestionnaireResponse, a `Parameters` with
//! `parameter[name=response].resource`, and a batch `Bundle` of
//! `POST QuestionnaireResponse/$generateHealthCertificate` entries.
//!
//! PLACEHOLDER BODIES: the intake helper replaces them before this lands.

use fhir_models::QuestionnaireResponse;

use crate::domain::VaccinationEvent;
use crate::error::{Error, Result};

/// A parsed submission.
#[derive(Debug)]
pub enum Submission {
    /// A QuestionnaireResponse, bare or in `Parameters`.
    Single(Result<VaccinationEvent>),
    /// A batch Bundle: one outcome per entry, in input order.
    Batch(Vec<Result<VaccinationEvent>>),
}

/// Parses request bytes (JSON) into a submission. `Err` when the body as a whole is unusable (not JSON,
/// not one of the accepted shapes); per-entry problems of a batch are inside [`Submission::Batch`].
pub fn read_submission(_json: &[u8]) -> Result<Submission> {
    Err(Error::NotSupported("intake not implemented yet".into()))
}

/// Validates one QuestionnaireResponse against the DDCC:VS questionnaire, reporting every problem at once.
pub fn parse_questionnaire_response(_qr: &QuestionnaireResponse) -> Result<VaccinationEvent> {
    Err(Error::NotSupported("intake not implemented yet".into()))
}
