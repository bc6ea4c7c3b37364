//! Public keys of DSCs and transit key versions: compare, and publish as JWK.
//!
//! Transit hands out SPKI PEM, certificates carry SPKI DER; both reduce to the same two forms
//! (an uncompressed P-256 point, or RSA n/e), so "does this certificate certify that key version"
//! is a plain equality.

use base64::Engine as _;
use der::asn1::{ObjectIdentifier, UintRef};
use der::{Decode, Reader};
use serde_json::{json, Map, Value};
use x509_cert::spki::SubjectPublicKeyInfoOwned;

use crate::error::{Error, Result};
use crate::signer::certificate::Dsc;
use crate::signer::Algorithm;

const EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
const P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
const RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");

/// The public key of an ES256 or PS256 signer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PublicKey {
    /// P-256, as the 65-byte uncompressed point `04 || x || y`.
    EcP256 { point: Vec<u8> },
    /// RSA: modulus and public exponent, unsigned big-endian.
    Rsa { n: Vec<u8>, e: Vec<u8> },
}

fn unreadable(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Config(format!("unreadable {what}: {e}"))
}

impl PublicKey {
    /// From a DER `SubjectPublicKeyInfo`.
    pub fn from_spki_der(der: &[u8]) -> Result<Self> {
        let spki =
            SubjectPublicKeyInfoOwned::from_der(der).map_err(|e| unreadable("public key", e))?;
        Self::from_spki(&spki)
    }

    /// From a `-----BEGIN PUBLIC KEY-----` block (as transit returns it).
    pub fn from_spki_pem(text: &str) -> Result<Self> {
        let block = pem::parse(text).map_err(|e| unreadable("public key PEM", e))?;
        if block.tag() != "PUBLIC KEY" {
            return Err(unreadable(
                "public key PEM",
                format!("expected PUBLIC KEY, found {}", block.tag()),
            ));
        }
        Self::from_spki_der(block.contents())
    }

    /// The subject public key of a DER certificate.
    pub fn from_certificate(der: &[u8]) -> Result<Self> {
        Self::from_dsc(&Dsc::from_der(der)?)
    }

    /// The public key of a parsed DSC.
    pub fn from_dsc(dsc: &Dsc) -> Result<Self> {
        Self::from_key_bytes(dsc.alg(), dsc.public_key())
    }

    fn from_spki(spki: &SubjectPublicKeyInfoOwned) -> Result<Self> {
        let bits = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| unreadable("public key", "unused bits in the key bit string"))?;
        let alg = match spki.algorithm.oid {
            EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                if curve != Some(P256) {
                    return Err(Error::NotSupported(
                        "only P-256 EC keys are supported (HCERT ES256)".into(),
                    ));
                }
                Algorithm::ES256
            }
            RSA_ENCRYPTION => Algorithm::PS256,
            other => {
                return Err(Error::NotSupported(format!(
                    "public key algorithm {other} is neither EC P-256 nor RSA"
                )))
            }
        };
        Self::from_key_bytes(alg, bits)
    }

    /// From the subjectPublicKey bytes of a key that signs with `alg`.
    fn from_key_bytes(alg: Algorithm, bits: &[u8]) -> Result<Self> {
        match alg {
            Algorithm::ES256 => {
                if bits.len() != 65 || bits.first() != Some(&4) {
                    return Err(Error::NotSupported(
                        "only uncompressed P-256 points are supported".into(),
                    ));
                }
                Ok(PublicKey::EcP256 {
                    point: bits.to_vec(),
                })
            }
            Algorithm::PS256 => {
                let (n, e) = rsa_parts(bits).map_err(|e| unreadable("RSA public key", e))?;
                Ok(PublicKey::Rsa { n, e })
            }
        }
    }

    /// The COSE algorithm this key signs with in HCERTs.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            PublicKey::EcP256 { .. } => Algorithm::ES256,
            PublicKey::Rsa { .. } => Algorithm::PS256,
        }
    }

    /// The JWK members of the key (RFC 7518 §6): `kty` and `crv`/`x`/`y` or `n`/`e`.
    pub fn jwk(&self) -> Map<String, Value> {
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let value = match self {
            PublicKey::EcP256 { point } => {
                let coordinates = point.get(1..).unwrap_or_default();
                let (x, y) = coordinates.split_at(coordinates.len() / 2);
                json!({"kty": "EC", "crv": "P-256", "x": b64(x), "y": b64(y)})
            }
            PublicKey::Rsa { n, e, .. } => json!({"kty": "RSA", "n": b64(n), "e": b64(e)}),
        };
        match value {
            Value::Object(map) => map,
            _ => Map::new(),
        }
    }
}

/// `RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER }` (RFC 8017 A.1.1).
fn rsa_parts(der: &[u8]) -> der::Result<(Vec<u8>, Vec<u8>)> {
    let mut reader = der::SliceReader::new(der)?;
    let parts = reader.sequence(|seq| {
        let n = UintRef::decode(seq)?.as_bytes().to_vec();
        let e = UintRef::decode(seq)?.as_bytes().to_vec();
        Ok((n, e))
    })?;
    reader.finish(parts)
}
