//! CWT claims of a health certificate (RFC 8392; HCERT §3.3.1): `iss`, `iat`, `exp` and the `hcert`
//! map whose sub-claims hold the payloads.

use coset::cbor::value::Value;
use coset::cwt::{ClaimName, ClaimsSet, ClaimsSetBuilder, Timestamp};
use coset::{iana, CborSerializable};

use crate::configuration::IssuanceConfig;
use crate::domain::VaccinationEvent;
use crate::error::{Error, Result};
use crate::signer::SigningIdentity;

/// `iss`: ISO 3166-1 alpha-2 of the issuing country (RFC 8392 §3.1.1).
pub const ISS: i64 = 1;
/// `exp`: NumericDate after which the certificate is invalid.
pub const EXP: i64 = 4;
/// `iat`: NumericDate of issue.
pub const IAT: i64 = 6;
/// `hcert`: the map of health-certificate payloads (IANA CWT registry).
pub const HCERT: i64 = -260;

/// hcert sub-claim of the EU DCC v1 (HCERT; SMART Trust `hcert.fsh`).
pub const HCERT_EU_DCC_V1: i64 = 1;
/// hcert sub-claim SMART Trust proposes for the DDCC:VS core data set.
pub const HCERT_DDCC_VS: i64 = 3;

/// The claims of one certificate.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    pub iss: Option<String>,
    pub iat: i64,
    pub exp: i64,
    /// hcert sub-claim → payload.
    pub hcert: Vec<(i64, Value)>,
}

impl Claims {
    /// CBOR encoding of the claims map (the COSE payload).
    pub fn to_cbor(&self) -> Result<Vec<u8>> {
        let mut builder = ClaimsSetBuilder::new()
            .issued_at(Timestamp::WholeSeconds(self.iat))
            .expiration_time(Timestamp::WholeSeconds(self.exp));
        if let Some(iss) = &self.iss {
            builder = builder.issuer(iss.clone());
        }
        let hcert = self
            .hcert
            .iter()
            .map(|(k, v)| (Value::Integer((*k).into()), v.clone()))
            .collect();
        // `claim()` rather than `private_claim()`: coset panics on -260 there (not < -65536).
        debug_assert_eq!(iana::CwtClaimName::Hcert as i64, HCERT);
        builder
            .claim(iana::CwtClaimName::Hcert, Value::Map(hcert))
            .build()
            .to_vec()
            .map_err(|e| Error::Internal(format!("encoding CWT claims: {e}")))
    }
}

/// Claims as read from a certificate someone else issued: `iat` and `exp` may be missing (the WHO
/// reference mediator omits `exp`), which the verifier reports rather than rejects.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadClaims {
    pub iss: Option<String>,
    pub iat: Option<i64>,
    pub exp: Option<i64>,
    pub hcert: Vec<(i64, Value)>,
}

impl ReadClaims {
    /// Decodes a CWT claims map. Unknown claims are ignored; `iss` must be text, `iat`/`exp` numbers,
    /// `hcert` a map with integer keys.
    pub fn from_cbor(bytes: &[u8]) -> std::result::Result<ReadClaims, String> {
        let set = ClaimsSet::from_slice(bytes).map_err(|e| format!("not a CWT claims map: {e}"))?;
        let secs = |t: &Option<Timestamp>| match t {
            Some(Timestamp::WholeSeconds(s)) => Some(*s),
            // RFC 8392 allows fractional NumericDate; HCERT issuers use integers.
            Some(Timestamp::FractionalSeconds(f)) if f.is_finite() => Some(f.floor() as i64),
            _ => None,
        };
        let hcert_value = set.rest.iter().find_map(|(name, v)| match name {
            ClaimName::Assigned(iana::CwtClaimName::Hcert) => Some(v),
            _ => None,
        });
        let hcert = match hcert_value {
            Some(Value::Map(entries)) => entries
                .iter()
                .map(|(k, v)| match k {
                    Value::Integer(i) => i64::try_from(*i)
                        .map(|i| (i, v.clone()))
                        .map_err(|_| "hcert sub-claim key out of range".to_string()),
                    _ => Err("hcert sub-claim key is not an integer".to_string()),
                })
                .collect::<std::result::Result<Vec<_>, _>>()?,
            Some(_) => return Err("claim hcert (-260) is not a map".into()),
            None => return Err("claim hcert (-260) missing".into()),
        };
        Ok(ReadClaims {
            iss: set.issuer,
            iat: secs(&set.issued_at),
            exp: secs(&set.expiration_time),
            hcert,
        })
    }
}

/// `iss`: the configured issuer country, else the alpha-2 code of the vaccination country.
pub fn issuer(config: &IssuanceConfig, event: &VaccinationEvent) -> String {
    config
        .issuer_country
        .clone()
        .unwrap_or_else(|| event.vaccination.country.alpha2().to_string())
}

/// (`iat`, `exp`) for a certificate issued at `now` with `identity`: `exp` = min(now + validity,
/// DSC notAfter). Refuses when `now` is outside the DSC validity, since HCERT §3.3.5–3.3.6 forbid
/// `iat` before the DSC's notBefore and `exp` past its notAfter.
pub fn timing(config: &IssuanceConfig, identity: &SigningIdentity, now: i64) -> Result<(i64, i64)> {
    if now < identity.not_before || now >= identity.not_after {
        return Err(Error::Config(format!(
            "the signing certificate (kid {}) is not valid now: valid from {} to {} (Unix time), now {now}",
            hex::encode(identity.kid),
            identity.not_before,
            identity.not_after
        )));
    }
    let validity = i64::try_from(config.validity.as_secs()).unwrap_or(i64::MAX);
    if validity == 0 {
        return Err(Error::Config(
            "certificate validity must be at least one day".into(),
        ));
    }
    Ok((now, now.saturating_add(validity).min(identity.not_after)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signer::Algorithm;
    use std::time::Duration;

    fn identity(not_before: i64, not_after: i64) -> SigningIdentity {
        SigningIdentity {
            alg: Algorithm::ES256,
            kid: [1; 8],
            dsc_der: vec![],
            not_before,
            not_after,
            key_version: 1,
        }
    }

    #[test]
    fn cbor_labels_are_the_registered_ones() {
        let claims = Claims {
            iss: Some("NL".into()),
            iat: 1_700_000_000,
            exp: 1_731_536_000,
            hcert: vec![(HCERT_DDCC_VS, Value::Text("x".into()))],
        };
        let bytes = claims.to_cbor().unwrap();
        let value: Value = ciborium::from_reader(bytes.as_slice()).unwrap();
        let Value::Map(entries) = value else {
            panic!("not a map")
        };
        let key = |k: i64| {
            entries
                .iter()
                .find(|(key, _)| *key == Value::Integer(k.into()))
                .map(|(_, v)| v.clone())
        };
        assert_eq!(key(1), Some(Value::Text("NL".into())));
        assert_eq!(key(6), Some(Value::Integer(1_700_000_000.into())));
        assert_eq!(key(4), Some(Value::Integer(1_731_536_000.into())));
        assert_eq!(
            key(-260),
            Some(Value::Map(vec![(
                Value::Integer(3.into()),
                Value::Text("x".into())
            )]))
        );
        let read = ReadClaims::from_cbor(&bytes).unwrap();
        assert_eq!(read.iss, claims.iss);
        assert_eq!((read.iat, read.exp), (Some(claims.iat), Some(claims.exp)));
        assert_eq!(read.hcert, claims.hcert);
    }

    #[test]
    fn exp_is_capped_at_the_dsc_not_after() {
        let config = IssuanceConfig {
            validity: Duration::from_secs(365 * 86400),
            ..Default::default()
        };
        let now = 1_000_000;
        // Plenty of DSC validity left: exp = now + validity.
        assert_eq!(
            timing(&config, &identity(0, now * 100), now).unwrap(),
            (now, now + 365 * 86400)
        );
        // DSC expires in 10 days: exp = notAfter.
        assert_eq!(
            timing(&config, &identity(0, now + 10 * 86400), now).unwrap(),
            (now, now + 10 * 86400)
        );
    }

    #[test]
    fn refuses_outside_the_dsc_validity() {
        let config = IssuanceConfig::default();
        assert!(timing(&config, &identity(100, 200), 99).is_err());
        assert!(timing(&config, &identity(100, 200), 200).is_err());
        assert!(timing(&config, &identity(100, 200), 100).is_ok());
    }

    #[test]
    fn rejects_claims_without_hcert() {
        let no_hcert = ClaimsSetBuilder::new()
            .issued_at(Timestamp::WholeSeconds(1))
            .expiration_time(Timestamp::WholeSeconds(2))
            .build()
            .to_vec()
            .unwrap();
        assert!(ReadClaims::from_cbor(&no_hcert)
            .unwrap_err()
            .contains("hcert"));
        assert!(ReadClaims::from_cbor(b"\x80").is_err());
        assert!(ReadClaims::from_cbor(b"").is_err());
    }
}
