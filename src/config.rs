//! Settings of the issuance pipeline, with the defaults the product ships.

use std::time::Duration;

use crate::render::pdf::{Labels, Paper};

/// How certificates are issued. Built from defaults, a config file, the environment and flags.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuanceConfig {
    /// CWT `iss` (ISO 3166-1 alpha-2). `None`: the alpha-2 code of the vaccination country.
    pub issuer_country: Option<String>,
    /// How long a certificate is valid after issue (CWT `exp` = `iat` + this, never past the DSC's notAfter).
    #[serde(with = "humantime_days")]
    pub validity: Duration,
    /// hcert (-260) sub-claim holding the DDCC core data set: 3 (SMART Trust, default) or 1 (WHO reference mediator).
    pub ddcc_hcert_key: i64,
    /// Display name of the issuing public health authority (`Organization.name` in the document).
    /// `None`: the authority's identifier (linkId `pha`) stands in.
    pub issuer_name: Option<String>,
    /// Whether to also issue the EU DCC payload when the event maps to valid EU codes.
    pub emit_dcc: bool,
    /// Paper size of the citizen PDF.
    pub paper: Paper,
    /// Printed labels of the citizen PDF (English unless a country supplies its translation).
    pub labels: Labels,
}

impl Default for IssuanceConfig {
    fn default() -> Self {
        IssuanceConfig {
            issuer_country: None,
            validity: Duration::from_secs(365 * 24 * 3600),
            ddcc_hcert_key: 3,
            issuer_name: None,
            emit_dcc: true,
            paper: Paper::A4,
            labels: Labels::english(),
        }
    }
}

/// Validity is configured in whole days (`validity = 365`).
mod humantime_days {
    use std::time::Duration;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let days: u64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_secs(days * 24 * 3600))
    }
}
