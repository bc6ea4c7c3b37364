//! Publishing DSCs: a PEM chain, a JWKS with `x5c`, or a GDHCN-style DID document.
//!
//! Every version whose DSC has not expired is published, not only the active one: certificates
//! signed before a rotation must keep verifying, and a DSC imported ahead of its first use lets
//! verifiers fetch it in time.

use std::collections::HashSet;

use base64::Engine as _;
use serde_json::{json, Map, Value};

use super::public_key::PublicKey;
use crate::error::{Error, Result};
use crate::signer::vault::TransitKey;
use crate::signer::{kid_of, Algorithm};

/// Output formats of `keys export`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    /// PEM certificates: each DSC followed by its CA chain.
    Pem,
    /// `{"keys": [JWK…]}` with `kid`, `alg`, `use`, `x5c`.
    Jwks,
    /// A DID document with one `JsonWebKey2020` verification method per DSC.
    Did,
}

/// One published DSC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedDsc {
    pub version: u32,
    pub alg: Algorithm,
    /// SHA-256(DSC DER)[0..8], the COSE kid.
    pub kid: [u8; 8],
    pub public_key: PublicKey,
    /// DER certificates, the DSC first.
    pub chain: Vec<Vec<u8>>,
    pub not_after: i64,
}

impl PublishedDsc {
    /// A DSC chain (DER, the DSC first) as published for `version` of its key.
    pub fn from_chain(version: u32, chain: Vec<Vec<u8>>) -> Result<Self> {
        let leaf = chain
            .first()
            .ok_or_else(|| Error::Config("empty certificate chain".into()))?;
        let public_key = PublicKey::from_certificate(leaf)?;
        let (_, not_after) = crate::signer::certificate::validity(leaf)?;
        Ok(PublishedDsc {
            version,
            alg: public_key.algorithm(),
            kid: kid_of(leaf),
            public_key,
            not_after,
            chain,
        })
    }

    /// The kid as verifiers and trust lists write it: standard base64 of the 8 bytes.
    pub fn kid_b64(&self) -> String {
        base64::engine::general_purpose::STANDARD.encode(self.kid)
    }

    /// The JWK of this DSC (RFC 7517 §4: `x5c` is standard base64 DER, DSC first).
    pub fn jwk(&self) -> Map<String, Value> {
        let mut jwk = self.public_key.jwk();
        jwk.insert("kid".into(), json!(self.kid_b64()));
        jwk.insert("alg".into(), json!(self.alg.name()));
        jwk.insert("use".into(), json!("sig"));
        let x5c = self
            .chain
            .iter()
            .map(|der| json!(base64::engine::general_purpose::STANDARD.encode(der)))
            .collect();
        jwk.insert("x5c".into(), Value::Array(x5c));
        jwk
    }
}

/// The DSCs of `key` that have not expired at `now`, newest version first.
pub fn published(key: &TransitKey, now: i64) -> Result<Vec<PublishedDsc>> {
    let alg = key.supported_type()?.algorithm();
    let mut out = Vec::new();
    for certified in key.certified_versions()? {
        // Archived: withdrawn, and every certificate it signed was re-signed (`reissue`).
        if certified.not_after < now || certified.version < key.min_decryption_version {
            continue;
        }
        let public_key = PublicKey::from_certificate(certified.leaf())?;
        if public_key != key.public_key(certified.version)? {
            // Vault checks this on set-certificate; a mismatch means a tampered store.
            tracing::warn!(
                version = certified.version,
                "DSC does not certify its key version; not published"
            );
            continue;
        }
        out.push(PublishedDsc {
            version: certified.version,
            alg,
            kid: kid_of(certified.leaf()),
            public_key,
            not_after: certified.not_after,
            chain: certified.chain,
        });
    }
    Ok(out)
}

/// PEM: each DSC, then the CA certificates of its chain not already written.
pub fn to_pem(dscs: &[PublishedDsc]) -> String {
    let mut seen = HashSet::new();
    let mut out = String::new();
    for dsc in dscs {
        for der in &dsc.chain {
            if seen.insert(der.as_slice()) {
                out.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", der.clone())));
            }
        }
    }
    out
}

/// A JWKS (RFC 7517 §5).
pub fn to_jwks(dscs: &[PublishedDsc]) -> Value {
    let keys = dscs.iter().map(|d| Value::Object(d.jwk())).collect();
    json!({ "keys": Value::Array(keys) })
}

/// A DID document shaped like the GDHCN embedded trust list (SMART Trust "DID Trustlist v2"):
/// one `JsonWebKey2020` per DSC, addressed as `<did>#<base64 kid>`. It is unsigned: the trust
/// network adds its `JsonWebSignature2020` proof when it republishes.
pub fn to_did(dscs: &[PublishedDsc], did: &str) -> Value {
    let methods = dscs
        .iter()
        .map(|d| {
            json!({
                "id": format!("{did}#{}", d.kid_b64()),
                "type": "JsonWebKey2020",
                "controller": did,
                "publicKeyJwk": Value::Object(d.jwk()),
            })
        })
        .collect();
    json!({
        "@context": ["https://www.w3.org/ns/did/v1", "https://w3id.org/security/suites/jws-2020/v1"],
        "id": did,
        "controller": did,
        "verificationMethod": Value::Array(methods),
    })
}

/// The export in `format`; a DID document needs the DID it is published under.
pub fn render(dscs: &[PublishedDsc], format: ExportFormat, did: Option<&str>) -> Result<String> {
    let pretty = |v: Value| {
        serde_json::to_string_pretty(&v)
            .map(|s| s + "\n")
            .map_err(|e| Error::Internal(format!("JSON: {e}")))
    };
    match format {
        ExportFormat::Pem => Ok(to_pem(dscs)),
        ExportFormat::Jwks => pretty(to_jwks(dscs)),
        ExportFormat::Did => {
            let did = did
                .filter(|d| d.starts_with("did:"))
                .ok_or_else(|| Error::Config("a DID export needs --did did:…".into()))?;
            pretty(to_did(dscs, did))
        }
    }
}
