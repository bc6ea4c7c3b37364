//! Revoked certificates: the revocation record kept in the store, and the signed list published at
//! `GET /trust/revocations` ([`crate::credential::revocation`] has the format).
//!
//! A **revocation record** is a FHIR `Basic` ([`REVOCATION_CODE`]) written in the same transaction as the
//! revocation itself (an explicit `$revokeHealthCertificate`, or the correction that superseded the
//! certificate), one per revoked document version, with a derived id (so writing it twice is one record). It
//! names the document (`identifier`), when and why (`created`, extensions), and for each signed QR of that
//! version what verifiers match: kid, issuer country, expiry and the hashes of the EU DCC revocation format.
//! The QR payloads are read back from the stored QR images: the stored document keeps no `HC1:` text.
//!
//! **The list comes from the store**, so every replica publishes the same list: it is read again at most every
//! [`FRESH_FOR`] (bounded staleness), and signed again only when its content changed. Its `ETag` is the
//! SHA-256 of the content (weak: two replicas sign the same content with different signature bytes), so a
//! verifier's `If-None-Match` is answered `304` by any replica.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::document::stored;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use super::issuer::Issuer;
use crate::credential::revocation::{self, Fingerprint, RevocationList};
use crate::error::{Error, Result};
use crate::signer::Signer as _;
use crate::store::{Store, REVOCATION_CODE};

/// How long a list read from the store is served before the store is read again.
pub const FRESH_FOR: Duration = Duration::from_secs(5);
/// `Basic.extension` URL of one revoked QR credential (sub-extensions `kind`, `kid`, `country`, `expires`,
/// `signature`, `uci`, `countrycodeuci`).
pub const CREDENTIAL_EXTENSION: &str = "urn:ddcc-mediator:revoked-credential";
/// `Basic.extension` URL of the reason given for the revocation.
pub const REASON_EXTENSION: &str = "urn:ddcc-mediator:revocation-reason";
/// `Basic.extension` URL of the time of the revocation.
pub const REVOKED_AT_EXTENSION: &str = "urn:ddcc-mediator:revoked-at";
/// Namespace of revocation record ids. Fixed forever.
const RECORD_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x2f6b_01d3_8c1a_4b7e_a0f5_6e93_d2c4_1b88);

/// Id of the revocation record of one document version.
pub fn record_id(bundle_id: &str, content_hash: &str) -> String {
    uuid::Uuid::new_v5(
        &RECORD_NAMESPACE,
        format!("Basic|revocation|{bundle_id}|{content_hash}").as_bytes(),
    )
    .to_string()
}

/// The revocation record of `document` (as stored; its QR DocumentReferences hold the signed QR images).
/// CPU work (QR decoding): call it off the async workers.
pub fn record(
    document: &Value,
    bundle_id: &str,
    content_hash: &str,
    reason: &str,
    now: OffsetDateTime,
) -> Result<Value> {
    let mut extension = vec![
        json!({"url": REASON_EXTENSION, "valueString": reason}),
        json!({"url": REVOKED_AT_EXTENSION, "valueDateTime": super::rfc3339_ms(now)}),
    ];
    for (kind, png) in qr_images(document) {
        let hc1 = crate::credential::decode_qr_png(&png)?;
        let print = revocation::fingerprint(&hc1).map_err(|f| {
            Error::Internal(format!(
                "a stored QR of Bundle/{bundle_id} is no certificate: {}",
                f.message
            ))
        })?;
        extension.push(credential_extension(&kind, &print));
    }
    let date = now
        .format(time::macros::format_description!("[year]-[month]-[day]"))
        .map_err(|e| Error::Internal(format!("date does not format: {e}")))?;
    Ok(json!({
        "resourceType": "Basic",
        "id": record_id(bundle_id, content_hash),
        "extension": extension,
        "identifier": [{"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{bundle_id}")}],
        "code": {"coding": [{"system": REVOCATION_CODE.0, "code": REVOCATION_CODE.1,
                              "display": "Revoked health certificate"}]},
        "created": date,
    }))
}

/// `(kind, PNG)` of each QR DocumentReference of a document (kind: `who`, `dcc`).
fn qr_images(document: &Value) -> Vec<(String, Vec<u8>)> {
    stored::resources_of(document, "DocumentReference")
        .filter_map(|r| {
            Some((
                stored::qr_kind(r)?.to_owned(),
                stored::attachment(r, "image/png")?,
            ))
        })
        .collect()
}

fn credential_extension(kind: &str, print: &Fingerprint) -> Value {
    let mut parts = vec![
        json!({"url": "kind", "valueCode": kind}),
        json!({"url": "kid", "valueBase64Binary": STANDARD.encode(print.kid)}),
        json!({"url": "expires", "valueDateTime": rfc3339(print.expires)}),
        json!({"url": "signature", "valueBase64Binary": STANDARD.encode(print.signature)}),
    ];
    if let Some(country) = &print.country {
        parts.push(json!({"url": "country", "valueString": country}));
    }
    if let Some(uci) = print.uci {
        parts.push(json!({"url": "uci", "valueBase64Binary": STANDARD.encode(uci)}));
    }
    if let Some(both) = print.country_uci {
        parts.push(json!({"url": "countrycodeuci", "valueBase64Binary": STANDARD.encode(both)}));
    }
    json!({"url": CREDENTIAL_EXTENSION, "extension": parts})
}

fn rfc3339(unix: i64) -> String {
    OffsetDateTime::from_unix_timestamp(unix)
        .map(super::rfc3339_ms)
        .unwrap_or_else(|_| "9999-12-31T23:59:59Z".into())
}

/// The fingerprints a revocation record holds (parts it cannot read are skipped).
pub fn fingerprints(record: &Value) -> Vec<Fingerprint> {
    record
        .get("extension")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|e| e.get("url").and_then(Value::as_str) == Some(CREDENTIAL_EXTENSION))
        .filter_map(|e| {
            let parts = e.get("extension")?.as_array()?;
            let part = |name: &str, field: &str| {
                parts
                    .iter()
                    .find(|p| p.get("url").and_then(Value::as_str) == Some(name))?
                    .get(field)?
                    .as_str()
            };
            let bytes =
                |name: &str| part(name, "valueBase64Binary").and_then(|b| STANDARD.decode(b).ok());
            let hash = |name: &str| bytes(name).and_then(|b| <[u8; 16]>::try_from(b).ok());
            let expires = OffsetDateTime::parse(
                part("expires", "valueDateTime")?,
                &time::format_description::well_known::Rfc3339,
            )
            .ok()?
            .unix_timestamp();
            Some(Fingerprint {
                kid: bytes("kid").and_then(|b| <[u8; 8]>::try_from(b).ok())?,
                country: part("country", "valueString").map(str::to_owned),
                expires,
                signature: hash("signature")?,
                uci: hash("uci"),
                country_uci: hash("countrycodeuci"),
            })
        })
        .collect()
}

/// The revocation list as published: the signed document and its entity tag.
#[derive(Debug, Clone)]
pub struct Published {
    pub body: Arc<Vec<u8>>,
    /// `W/"<hex SHA-256 of the list's JSON>"`.
    pub etag: String,
}

#[derive(Debug)]
struct Cached {
    read_at: Instant,
    content: String,
    kid: [u8; 8],
    list: Arc<RevocationList>,
    body: Arc<Vec<u8>>,
}

/// Publishes the signed list (see the module documentation).
#[derive(Debug, Default)]
pub struct Publisher {
    cache: tokio::sync::Mutex<Option<Cached>>,
}

impl Publisher {
    /// The list of every revoked certificate still valid now, read from the store.
    pub async fn list(issuer: &Issuer) -> Result<RevocationList> {
        let records = issuer.store.revocations().await?;
        let now = OffsetDateTime::now_utc().unix_timestamp();
        Ok(revocation::list_of(
            records.iter().flat_map(fingerprints),
            now,
        ))
    }

    /// The signed list; read from the store at most every [`FRESH_FOR`], signed when its content changed.
    /// One refresh at a time: concurrent requests wait for it instead of each reading the store.
    pub async fn current(&self, issuer: &Issuer) -> Result<Published> {
        let mut cache = self.cache.lock().await;
        Ok(published(Self::refresh(&mut cache, issuer).await?))
    }

    /// The same list, parsed, for checking certificates here (e.g. a verification endpoint calling
    /// [`revocation::check`]): as fresh as [`Publisher::current`], from the same cache.
    pub async fn current_list(&self, issuer: &Issuer) -> Result<Arc<RevocationList>> {
        let mut cache = self.cache.lock().await;
        Ok(Arc::clone(&Self::refresh(&mut cache, issuer).await?.list))
    }

    async fn refresh<'c>(cache: &'c mut Option<Cached>, issuer: &Issuer) -> Result<&'c Cached> {
        let fresh = cache
            .as_ref()
            .is_some_and(|c| c.read_at.elapsed() < FRESH_FOR);
        if !fresh {
            let list = Self::list(issuer).await?;
            let json = serde_json::to_vec(&list)
                .map_err(|e| Error::Internal(format!("revocation list does not serialise: {e}")))?;
            let content = hex::encode(Sha256::digest(&json));
            let identity = issuer.signer.current();
            match cache.as_mut() {
                Some(cached) if cached.content == content && cached.kid == identity.kid => {
                    cached.read_at = Instant::now();
                }
                _ => {
                    let header = revocation::jws_header(
                        identity.alg,
                        std::slice::from_ref(&identity.dsc_der),
                    )?;
                    let unsigned = revocation::Unsigned::new(&header, &list)?;
                    let signature = issuer
                        .signer
                        .sign(&identity, unsigned.signing_input().as_bytes())
                        .await?;
                    *cache = Some(Cached {
                        read_at: Instant::now(),
                        content,
                        kid: identity.kid,
                        body: Arc::new(unsigned.signed(&list, &signature)?),
                        list: Arc::new(list),
                    });
                }
            }
        }
        cache
            .as_ref()
            .ok_or_else(|| Error::Internal("the revocation list cache is empty".into()))
    }
}

fn published(cached: &Cached) -> Published {
    Published {
        body: Arc::clone(&cached.body),
        etag: format!("W/\"{}\"", cached.content),
    }
}
