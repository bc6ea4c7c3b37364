//! Trust anchors of a verifier: the document signer certificates (DSCs) it accepts, read from a PEM bundle,
//! a DER certificate, a JWKS or a DID document (the three forms `GET /trust/…` and `keys export` publish).
//!
//! HCERT's kid is a hash of the DSC's DER (HCERT A.1), so a JWK is usable only with its certificate: each
//! JWK must carry `x5c` (RFC 7517 §4.7), whose first entry is the DSC. A bare public key is refused with the
//! key named, rather than silently skipped.

use base64::Engine as _;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::signer::certificate::Dsc;

/// Largest trust-anchor file read.
pub const MAX_ANCHOR_FILE_BYTES: u64 = 8 * 1024 * 1024;

/// Trusted DSCs (DER), each checked to be a certificate with an HCERT key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustAnchors(Vec<Vec<u8>>);

impl TrustAnchors {
    pub fn new(ders: Vec<Vec<u8>>) -> Self {
        TrustAnchors(ders)
    }

    /// Reads `bytes`: a JSON document (JWKS `{"keys": […]}` or a DID document with `verificationMethod`),
    /// else PEM certificates, else one DER certificate. `source` names the input in errors.
    pub fn parse(bytes: &[u8], source: &str) -> Result<Self> {
        let bad = |why: String| Error::Config(format!("{source}: {why}"));
        let trimmed = bytes.trim_ascii_start();
        let ders = if trimmed.starts_with(b"{") {
            let json: Value = serde_json::from_slice(bytes)
                .map_err(|e| bad(format!("not a JSON trust list: {e}")))?;
            jwks_or_did(&json).map_err(bad)?
        } else if trimmed.starts_with(b"-----BEGIN") {
            let blocks = pem::parse_many(bytes).map_err(|e| bad(format!("bad PEM: {e}")))?;
            blocks
                .into_iter()
                // A bundle may carry CA certificates or keys too: only certificates are candidates.
                .filter(|p| p.tag() == "CERTIFICATE")
                .map(|p| p.into_contents())
                .collect()
        } else {
            vec![bytes.to_vec()]
        };
        // CA certificates in a PEM bundle may have keys HCERT does not allow (e.g. P-384): such entries
        // cannot sign an HCERT and are left out; a bundle with no usable DSC at all is an error.
        let usable: Vec<Vec<u8>> = ders
            .into_iter()
            .filter(|der| Dsc::from_der(der).is_ok())
            .collect();
        if usable.is_empty() {
            return Err(bad(
                "no certificate with an ES256 or PS256 key (PEM bundle, DER, JWKS with x5c, or DID document)"
                    .into(),
            ));
        }
        Ok(TrustAnchors(usable))
    }

    /// Reads a trust-anchor file of at most [`MAX_ANCHOR_FILE_BYTES`].
    pub fn read(path: &std::path::Path) -> Result<Self> {
        use std::io::Read as _;
        let file = std::fs::File::open(path)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        let mut bytes = Vec::new();
        file.take(MAX_ANCHOR_FILE_BYTES + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
        if bytes.len() as u64 > MAX_ANCHOR_FILE_BYTES {
            return Err(Error::Config(format!(
                "{} is larger than {MAX_ANCHOR_FILE_BYTES} bytes",
                path.display()
            )));
        }
        Self::parse(&bytes, &path.display().to_string())
    }

    pub fn ders(&self) -> &[Vec<u8>] {
        &self.0
    }

    pub fn into_ders(self) -> Vec<Vec<u8>> {
        self.0
    }
}

/// The DSCs of a JWKS or of a DID document's `JsonWebKey2020` verification methods.
fn jwks_or_did(json: &Value) -> std::result::Result<Vec<Vec<u8>>, String> {
    let jwks: Vec<&Value> = if let Some(keys) = json.get("keys").and_then(Value::as_array) {
        keys.iter().collect()
    } else if let Some(methods) = json.get("verificationMethod").and_then(Value::as_array) {
        methods
            .iter()
            .map(|m| {
                m.get("publicKeyJwk").ok_or_else(|| {
                    format!(
                        "verification method {} has no publicKeyJwk",
                        m.get("id").and_then(Value::as_str).unwrap_or("(no id)")
                    )
                })
            })
            .collect::<std::result::Result<_, _>>()?
    } else {
        return Err("JSON with neither \"keys\" (JWKS) nor \"verificationMethod\" (DID)".into());
    };
    jwks.into_iter()
        .map(|jwk| {
            let name = jwk.get("kid").and_then(Value::as_str).unwrap_or("(no kid)");
            let first = jwk
                .get("x5c")
                .and_then(Value::as_array)
                .and_then(|chain| chain.first())
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    format!(
                        "key {name} has no x5c certificate; an HCERT kid is the hash of the certificate"
                    )
                })?;
            base64::engine::general_purpose::STANDARD
                .decode(first)
                .map_err(|e| format!("key {name}: x5c is not base64: {e}"))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WHO reference mediator's test DSC (team reference data).
    fn test_dsc() -> Vec<u8> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/examples/hc1-test-DSC-certificate-public.pem");
        let pem = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        Dsc::from_pem_or_der(&pem).unwrap().der().to_vec()
    }

    #[test]
    fn reads_pem_der_jwks_and_did_alike() {
        let der = test_dsc();
        let want = TrustAnchors(vec![der.clone()]);
        let pem = pem::encode(&pem::Pem::new("CERTIFICATE", der.clone()));
        assert_eq!(TrustAnchors::parse(pem.as_bytes(), "pem").unwrap(), want);
        assert_eq!(TrustAnchors::parse(&der, "der").unwrap(), want);
        let dsc = crate::keys::PublishedDsc::from_chain(1, vec![der.clone()]).unwrap();
        let jwks = serde_json::to_vec(&crate::keys::to_jwks(std::slice::from_ref(&dsc))).unwrap();
        assert_eq!(TrustAnchors::parse(&jwks, "jwks").unwrap(), want);
        let did = serde_json::to_vec(&crate::keys::to_did(&[dsc], "did:web:example.org")).unwrap();
        assert_eq!(TrustAnchors::parse(&did, "did").unwrap(), want);
    }

    #[test]
    fn bare_keys_and_garbage_are_refused_with_a_reason() {
        let e = TrustAnchors::parse(br#"{"keys":[{"kty":"EC","kid":"abc"}]}"#, "f").unwrap_err();
        assert!(e.to_string().contains("key abc has no x5c"), "{e}");
        let e = TrustAnchors::parse(b"{\"a\":1}", "f").unwrap_err();
        assert!(e.to_string().contains("neither"), "{e}");
        assert!(TrustAnchors::parse(b"garbage", "f").is_err());
        assert!(TrustAnchors::parse(b"", "f").is_err());
    }
}
