//! Credential: the signed QR payloads.
//!
//! `VaccinationEvent` → payload (DDCC core data set; EU DCC 1.3 when the codes map) → CWT claims →
//! COSE_Sign1 (through a [`Signer`]) → zlib → base45 → `HC1:`. Also the verifier used by `verify`.
//!
//! PLACEHOLDER BODIES: the credential helper replaces them before this lands.

use crate::config::IssuanceConfig;
use crate::domain::VaccinationEvent;
use crate::error::{Error, Result};
use crate::signer::Signer;

/// One signed payload.
#[derive(Debug, Clone)]
pub struct SignedPayload {
    /// `HC1:` + base45(zlib(COSE_Sign1)).
    pub hc1: String,
    /// The hcert sub-claim payload, as JSON (DocumentReference `serialized` content).
    pub payload_json: Vec<u8>,
    pub kid: [u8; 8],
    pub iat: i64,
    pub exp: i64,
}

/// The payloads issued for one event.
#[derive(Debug, Clone)]
pub struct IssuedCredentials {
    pub ddcc: SignedPayload,
    /// The EU DCC, or why none was issued (e.g. a vaccine code with no EU equivalent).
    pub dcc: std::result::Result<SignedPayload, String>,
}

/// Builds and signs the payloads for `event` at Unix time `now`.
pub async fn issue<S: Signer>(
    _event: &VaccinationEvent,
    _config: &IssuanceConfig,
    _signer: &S,
    _now: i64,
) -> Result<IssuedCredentials> {
    Err(Error::NotSupported("credential not implemented yet".into()))
}
