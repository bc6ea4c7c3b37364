//! EU DCC 1.3 vaccination payload. (Filled in by the DCC step.)

use crate::domain::VaccinationEvent;

/// The EU DCC for `event`, or why none can be issued.
pub fn build(
    _event: &VaccinationEvent,
    _issuer_country: &str,
) -> Result<serde_json::Value, String> {
    Err("EU DCC not implemented yet".into())
}
