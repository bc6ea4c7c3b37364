//! Revocation lists: the EU DCC gateway's revocation batches, signed as a JWS, and the check a verifier
//! runs against them.
//!
//! **Format** (EU DCC gateway, `RevocationBatchDto` and `RevocationHashTypeDto` of
//! eu-digital-green-certificates/dgc-gateway): a batch is `{country, expires, kid, hashType, entries:
//! [{hash}]}` with at most [`MAX_BATCH_ENTRIES`] entries; `kid` is the standard base64 of the 8-byte COSE kid of
//! the DSC that signed the revoked certificates; each `hash` is the standard base64 of the first 16 bytes of a
//! SHA-256 over
//! - `SIGNATURE`: the COSE_Sign1 signature; for ES256 only its first half, `r` (as the EU apps compute it:
//!   corona-warn-app/cwa-app-android, `RevocationCalculation`),
//! - `UCI`: the UCI (EU DCC `v|t|r[0].ci`; for the DDCC core data set its `hcid`) as UTF-8,
//! - `COUNTRYCODEUCI`: the CWT `iss` followed by the UCI, as UTF-8.
//!
//! **Signature**: the published list is a JWS in the flattened JSON serialization (RFC 7515 §7.2.2:
//! `protected`, `payload`, `signature`), ES256 or PS256 with the `kid` and `x5c` of one of our published DSCs
//! in its protected header; the payload is `{"batches": [...]}`. A copy of `batches` sits beside them for
//! people reading it (RFC 7515 §7.2.1 lets other members be present); verifiers use the signed payload only
//! ([`open_signed`]).

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::credential::claims::{ReadClaims, HCERT_DDCC_VS, HCERT_EU_DCC_V1};
use crate::credential::verify::{cbor_to_json, Failure, Stage, VerifyReport};
use crate::credential::{cose, hc1};
use crate::error::{Error, Result};
use crate::signer::certificate::Dsc;
use crate::signer::{kid_of, Algorithm};

/// Most entries of one batch (the gateway's `@Size(max = 1000)`).
pub const MAX_BATCH_ENTRIES: usize = 1000;
/// Largest revocation list a verifier reads (a 100,000-entry list is about 5 MB).
pub const MAX_LIST_BYTES: usize = 64 * 1024 * 1024;
/// `typ` of the JWS header.
pub const JWS_TYP: &str = "ddcc-revocation-list+jws";

/// What a revocation entry is the hash of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum HashType {
    Signature,
    Uci,
    #[serde(rename = "COUNTRYCODEUCI")]
    CountryCodeUci,
}

/// One revoked certificate's hash.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Entry {
    /// Standard base64 of the first 16 bytes of the SHA-256.
    pub hash: String,
}

/// One batch of the EU DCC gateway format.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// ISO 3166-1 alpha-2 of the issuer (CWT `iss`).
    pub country: String,
    /// RFC 3339: when the last certificate of the batch expires; the batch can be dropped after it.
    pub expires: String,
    /// Standard base64 of the 8-byte kid.
    pub kid: String,
    pub hash_type: HashType,
    pub entries: Vec<Entry>,
}

/// The list: `{"batches": [...]}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RevocationList {
    pub batches: Vec<Batch>,
}

/// What identifies one signed certificate on a revocation list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fingerprint {
    pub kid: [u8; 8],
    /// CWT `iss`.
    pub country: Option<String>,
    /// CWT `exp`, Unix seconds.
    pub expires: i64,
    pub signature: [u8; 16],
    pub uci: Option<[u8; 16]>,
    pub country_uci: Option<[u8; 16]>,
}

impl Fingerprint {
    /// The hash of `hash_type`, if this certificate has one.
    pub fn hash(&self, hash_type: HashType) -> Option<[u8; 16]> {
        match hash_type {
            HashType::Signature => Some(self.signature),
            HashType::Uci => self.uci,
            HashType::CountryCodeUci => self.country_uci,
        }
    }
}

/// First 16 bytes of SHA-256.
fn hash16(bytes: &[u8]) -> [u8; 16] {
    let digest = Sha256::digest(bytes);
    let mut out = [0u8; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// The fingerprint of an `HC1:` certificate (decoded, not verified: the signature is checked elsewhere).
pub fn fingerprint(hc1_text: &str) -> std::result::Result<Fingerprint, Failure> {
    let cose_bytes = hc1::decode(hc1_text.trim())?;
    let sign1 = cose::parse(&cose_bytes)?;
    let alg = cose::algorithm(&sign1)?;
    let kid: [u8; 8] = cose::kid(&sign1)
        .and_then(|k| k.try_into().ok())
        .ok_or_else(|| Failure::new(Stage::Kid, "no 8-byte kid header".into()))?;
    let claims = ReadClaims::from_cbor(sign1.payload.as_deref().unwrap_or_default())
        .map_err(|m| Failure::new(Stage::Cwt, m))?;
    // ES256: the hash of r only (the first half), so that a re-encoded (s → n − s) signature still matches.
    let signed = match alg {
        Algorithm::ES256 => &sign1.signature[..sign1.signature.len() / 2],
        Algorithm::PS256 => &sign1.signature[..],
    };
    let uci = claims.hcert.iter().find_map(|(key, payload)| {
        let json = cbor_to_json(payload);
        match *key {
            HCERT_EU_DCC_V1 if json.get("certificate").is_none() => ["v", "t", "r"]
                .iter()
                .find_map(|group| json.pointer(&format!("/{group}/0/ci"))?.as_str())
                .map(str::to_owned),
            HCERT_EU_DCC_V1 | HCERT_DDCC_VS => json
                .pointer("/certificate/hcid/value")
                .and_then(|v| v.as_str())
                .map(str::to_owned),
            _ => None,
        }
    });
    Ok(Fingerprint {
        kid,
        country: claims.iss.clone(),
        expires: claims.exp.unwrap_or(i64::MAX),
        signature: hash16(signed),
        uci: uci.as_deref().map(|u| hash16(u.as_bytes())),
        country_uci: match (&claims.iss, &uci) {
            (Some(iss), Some(u)) => Some(hash16(format!("{iss}{u}").as_bytes())),
            _ => None,
        },
    })
}

/// Whether `list` revokes the certificate of `fingerprint`: a batch for its kid (or the gateway's
/// `UNKNOWN_KID`) holds its hash of the batch's type.
pub fn is_revoked(list: &RevocationList, fingerprint: &Fingerprint) -> bool {
    let kid = STANDARD.encode(fingerprint.kid);
    list.batches
        .iter()
        .filter(|b| b.kid == kid || b.kid == "UNKNOWN_KID")
        .any(|batch| {
            fingerprint.hash(batch.hash_type).is_some_and(|hash| {
                let hash = STANDARD.encode(hash);
                batch.entries.iter().any(|e| e.hash == hash)
            })
        })
}

/// Checks a verified (or failed) report's certificate against `list`: sets `revoked`, and a revoked
/// certificate becomes invalid (stage `revocation`). [`crate::credential::verify()`] calls it with the list in its
/// options: one from [`open_signed`] (the CLI) or the service's own (`POST /ddcc/verify`).
pub fn check(report: &mut VerifyReport, hc1_text: &str, list: &RevocationList) {
    let Ok(fingerprint) = fingerprint(hc1_text) else {
        return;
    };
    let revoked = is_revoked(list, &fingerprint);
    report.revoked = Some(revoked);
    if revoked {
        report.valid = false;
        if report.error.is_none() {
            report.error = Some(Failure::new(
                Stage::Revocation,
                "the certificate is on the issuer's revocation list".into(),
            ));
        }
    }
}

/// The list of `revoked` certificates still valid at `now`: `SIGNATURE` batches per (country, kid), at most
/// [`MAX_BATCH_ENTRIES`] entries each, in a fixed order (so that equal content is equal JSON).
///
/// Only signature hashes are published: a corrected certificate keeps its predecessor's UCI (both derive from
/// the hcid), so a UCI entry would revoke the correction too.
pub fn list_of(revoked: impl IntoIterator<Item = Fingerprint>, now: i64) -> RevocationList {
    use std::collections::BTreeMap;
    let mut groups: BTreeMap<(String, [u8; 8]), (i64, std::collections::BTreeSet<String>)> =
        BTreeMap::new();
    for f in revoked.into_iter().filter(|f| f.expires > now) {
        let group = groups
            .entry((f.country.clone().unwrap_or_default(), f.kid))
            .or_default();
        group.0 = group.0.max(f.expires);
        group.1.insert(STANDARD.encode(f.signature));
    }
    let mut batches = Vec::new();
    for ((country, kid), (expires, hashes)) in groups {
        let hashes: Vec<String> = hashes.into_iter().collect();
        for chunk in hashes.chunks(MAX_BATCH_ENTRIES) {
            batches.push(Batch {
                country: country.clone(),
                expires: rfc3339(expires),
                kid: STANDARD.encode(kid),
                hash_type: HashType::Signature,
                entries: chunk.iter().map(|h| Entry { hash: h.clone() }).collect(),
            });
        }
    }
    RevocationList { batches }
}

fn rfc3339(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| "9999-12-31T23:59:59Z".into())
}

/// The JWS header of a list signed with the DSC `dsc_der` (and its chain).
pub fn jws_header(alg: Algorithm, chain: &[Vec<u8>]) -> Result<serde_json::Value> {
    let dsc = chain
        .first()
        .ok_or_else(|| Error::Internal("no DSC to name in the revocation list".into()))?;
    Ok(serde_json::json!({
        "alg": alg.name(),
        "typ": JWS_TYP,
        "kid": STANDARD.encode(kid_of(dsc)),
        "x5c": chain.iter().map(|der| STANDARD.encode(der)).collect::<Vec<_>>(),
    }))
}

/// The two halves of a JWS before signing: the encoded protected header and payload, and the signing input
/// `protected.payload` (RFC 7515 §5.1).
pub struct Unsigned {
    pub protected: String,
    pub payload: String,
}

impl Unsigned {
    pub fn new(header: &serde_json::Value, list: &RevocationList) -> Result<Self> {
        Ok(Unsigned {
            protected: URL_SAFE_NO_PAD.encode(to_json(header)?),
            payload: URL_SAFE_NO_PAD.encode(to_json(list)?),
        })
    }

    pub fn signing_input(&self) -> String {
        format!("{}.{}", self.protected, self.payload)
    }

    /// The published document: the flattened JWS plus the readable copy of `batches`.
    pub fn signed(&self, list: &RevocationList, signature: &[u8]) -> Result<Vec<u8>> {
        serde_json::to_vec(&serde_json::json!({
            "batches": list.batches,
            "protected": self.protected,
            "payload": self.payload,
            "signature": URL_SAFE_NO_PAD.encode(signature),
        }))
        .map_err(|e| Error::Internal(format!("revocation list does not serialise: {e}")))
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>> {
    serde_json::to_vec(value).map_err(|e| Error::Internal(format!("JSON does not serialise: {e}")))
}

/// Reads a signed revocation list (flattened JWS JSON, or the compact `a.b.c` form) and checks its signature
/// with one of `trusted_dscs` (DER): the DSC named by the header's `kid` must be trusted; `x5c` is only a
/// hint and is never trusted on its own. Returns the signed payload.
pub fn open_signed(document: &[u8], trusted_dscs: &[Vec<u8>]) -> Result<RevocationList> {
    let bad = |why: String| Error::invalid("invalid", None, format!("revocation list: {why}"));
    if document.len() > MAX_LIST_BYTES {
        return Err(bad(format!("larger than {MAX_LIST_BYTES} bytes")));
    }
    let text = std::str::from_utf8(document).map_err(|_| bad("not UTF-8".into()))?;
    let (protected, payload, signature) = if text.trim_start().starts_with('{') {
        #[derive(Deserialize)]
        struct Flattened {
            protected: String,
            payload: String,
            signature: String,
        }
        let f: Flattened = serde_json::from_str(text).map_err(|e| {
            bad(format!(
                "not a signed list (a JWS with protected, payload, signature): {e}"
            ))
        })?;
        (f.protected, f.payload, f.signature)
    } else {
        let mut parts = text.trim().splitn(3, '.');
        match (parts.next(), parts.next(), parts.next()) {
            (Some(h), Some(p), Some(s)) => (h.to_owned(), p.to_owned(), s.to_owned()),
            _ => return Err(bad("neither JSON nor a compact JWS".into())),
        }
    };
    let decode = |what: &str, s: &str| {
        URL_SAFE_NO_PAD
            .decode(s.trim_end_matches('='))
            .map_err(|e| bad(format!("{what} is not base64url: {e}")))
    };
    #[derive(Deserialize)]
    struct Header {
        alg: String,
        kid: Option<String>,
    }
    let header: Header = serde_json::from_slice(&decode("protected", &protected)?)
        .map_err(|e| bad(format!("unreadable JWS header: {e}")))?;
    let alg = match header.alg.as_str() {
        "ES256" => Algorithm::ES256,
        "PS256" => Algorithm::PS256,
        other => return Err(bad(format!("JWS alg {other:?} is not ES256 or PS256"))),
    };
    let kid = header
        .kid
        .ok_or_else(|| bad("the JWS header has no kid".into()))?;
    let signature = decode("signature", &signature)?;
    let signing_input = format!("{protected}.{payload}");
    let candidates: Vec<&Vec<u8>> = trusted_dscs
        .iter()
        .filter(|der| STANDARD.encode(kid_of(der)) == kid)
        .collect();
    if candidates.is_empty() {
        return Err(bad(format!(
            "signed with kid {kid}, which no trusted DSC has"
        )));
    }
    let verified = candidates.iter().any(|der| {
        Dsc::from_der(der).is_ok_and(|dsc| {
            dsc.verify_signature(alg, signing_input.as_bytes(), &signature)
                .is_ok()
        })
    });
    if !verified {
        return Err(bad(
            "the JWS signature does not verify with the trusted DSC".into(),
        ));
    }
    serde_json::from_slice(&decode("payload", &payload)?).map_err(|e| {
        bad(format!(
            "the signed payload is not {{\"batches\": [...]}}: {e}"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn print(kid: u8, country: &str, expires: i64, sig: u8) -> Fingerprint {
        Fingerprint {
            kid: [kid; 8],
            country: Some(country.into()),
            expires,
            signature: [sig; 16],
            uci: Some([sig ^ 0xff; 16]),
            country_uci: None,
        }
    }

    #[test]
    fn lists_group_by_country_and_kid_drop_expired_and_find_their_entries() {
        let list = list_of(
            [
                print(1, "XX", 2_000, 1),
                print(1, "XX", 3_000, 2),
                print(2, "XX", 2_000, 3),
                print(1, "XX", 500, 4),
            ],
            1_000,
        );
        assert_eq!(list.batches.len(), 2);
        assert_eq!(list.batches[0].entries.len(), 2);
        assert_eq!(list.batches[0].expires, "1970-01-01T00:50:00Z");
        assert_eq!(list.batches[0].hash_type, HashType::Signature);
        assert_eq!(list.batches[0].entries[0].hash.len(), 24);
        assert!(is_revoked(&list, &print(1, "XX", 2_000, 2)));
        assert!(!is_revoked(&list, &print(1, "XX", 2_000, 4)), "expired");
        assert!(!is_revoked(&list, &print(2, "XX", 2_000, 1)), "other kid");
        let json = serde_json::to_value(&list).unwrap();
        assert_eq!(json["batches"][0]["hashType"], "SIGNATURE");
        // UCI batches (from other issuers) are looked up too.
        let uci = RevocationList {
            batches: vec![Batch {
                country: "XX".into(),
                expires: "2099-01-01T00:00:00Z".into(),
                kid: STANDARD.encode([1u8; 8]),
                hash_type: HashType::Uci,
                entries: vec![Entry {
                    hash: STANDARD.encode([9u8 ^ 0xff; 16]),
                }],
            }],
        };
        assert!(is_revoked(&uci, &print(1, "XX", 2_000, 9)));
        let parsed: RevocationList =
            serde_json::from_str(&serde_json::to_string(&uci).unwrap()).unwrap();
        assert_eq!(parsed.batches[0].hash_type, HashType::Uci);
    }

    #[test]
    fn batches_hold_at_most_a_thousand_entries() {
        let list = list_of(
            (0..2500u32).map(|i| {
                let mut f = print(1, "XX", 2_000, 0);
                f.signature[..4].copy_from_slice(&i.to_be_bytes());
                f
            }),
            0,
        );
        let sizes: Vec<usize> = list.batches.iter().map(|b| b.entries.len()).collect();
        assert_eq!(sizes, vec![1000, 1000, 500]);
    }

    #[test]
    fn garbage_lists_are_refused_not_panicked_on() {
        for input in [
            &b""[..],
            b"{}",
            b"a.b.c",
            b"{\"protected\":\"e30\",\"payload\":\"e30\",\"signature\":\"\"}",
            b"\xff",
        ] {
            assert!(open_signed(input, &[]).is_err());
        }
    }
}
