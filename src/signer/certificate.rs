//! Reading document signer certificates (DSCs): validity, public key, and which COSE algorithm the key
//! signs with.
//!
//! A DSC is the only thing a verifier trusts, so everything here works on untrusted bytes and reports
//! problems as errors, never panics.

use der::asn1::ObjectIdentifier;
use der::Decode;

use crate::error::{Error, Result};
use crate::signer::{kid_of, Algorithm};

/// id-ecPublicKey (RFC 5480).
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");
/// secp256r1 / P-256 named curve (RFC 5480).
const OID_P256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
/// rsaEncryption (RFC 8017).
const OID_RSA_ENCRYPTION: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.1");
/// id-RSASSA-PSS: an RSA key restricted to PSS (RFC 4055); same RSAPublicKey encoding.
const OID_RSASSA_PSS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.1.10");

/// Length of an ES256 signature: raw `r || s`, 32 bytes each (RFC 8152 §8.1).
pub const ES256_SIGNATURE_LEN: usize = 64;

/// A parsed DSC: the parts a COSE verifier needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dsc {
    der: Vec<u8>,
    alg: Algorithm,
    /// The subjectPublicKey BIT STRING contents: an uncompressed EC point, or an RSAPublicKey.
    public_key: Vec<u8>,
    not_before: i64,
    not_after: i64,
}

impl Dsc {
    /// Parses a DER certificate.
    pub fn from_der(der: &[u8]) -> Result<Self> {
        let cert = x509_cert::Certificate::from_der(der).map_err(|e| bad(format!("{e}")))?;
        let tbs = &cert.tbs_certificate;
        let secs = |t: &x509_cert::time::Time| {
            i64::try_from(t.to_unix_duration().as_secs()).map_err(|_| bad("date out of range"))
        };
        let not_before = secs(&tbs.validity.not_before)?;
        let not_after = secs(&tbs.validity.not_after)?;
        let spki = &tbs.subject_public_key_info;
        let public_key = spki
            .subject_public_key
            .as_bytes()
            .ok_or_else(|| bad("public key is not a whole number of bytes"))?
            .to_vec();
        let alg = match spki.algorithm.oid {
            OID_EC_PUBLIC_KEY => {
                let curve = spki
                    .algorithm
                    .parameters
                    .as_ref()
                    .and_then(|p| p.decode_as::<ObjectIdentifier>().ok());
                if curve != Some(OID_P256) {
                    return Err(bad("EC key is not on P-256 (the only curve HCERT allows)"));
                }
                Algorithm::ES256
            }
            OID_RSA_ENCRYPTION | OID_RSASSA_PSS => Algorithm::PS256,
            other => return Err(bad(format!("unsupported public key algorithm {other}"))),
        };
        Ok(Dsc {
            // The bytes exactly as given: the kid is a hash over them.
            der: der.to_vec(),
            alg,
            public_key,
            not_before,
            not_after,
        })
    }

    /// Parses a certificate given as PEM (`-----BEGIN CERTIFICATE-----`) or DER.
    pub fn from_pem_or_der(bytes: &[u8]) -> Result<Self> {
        match pem::parse(bytes) {
            Ok(p) if p.tag() == "CERTIFICATE" => Dsc::from_der(p.contents()),
            Ok(p) => Err(bad(format!("PEM block is {}, not CERTIFICATE", p.tag()))),
            Err(_) => Dsc::from_der(bytes),
        }
    }

    pub fn der(&self) -> &[u8] {
        &self.der
    }
    /// The COSE algorithm this certificate's key signs with (EC P-256 → ES256, RSA → PS256).
    pub fn alg(&self) -> Algorithm {
        self.alg
    }
    /// kid = SHA-256(DER)[0..8] (HCERT Appendix A.1).
    pub fn kid(&self) -> [u8; 8] {
        kid_of(&self.der)
    }
    /// The subjectPublicKey bytes (uncompressed EC point or RSAPublicKey DER).
    pub fn public_key(&self) -> &[u8] {
        &self.public_key
    }
    /// (notBefore, notAfter), Unix seconds.
    pub fn validity(&self) -> (i64, i64) {
        (self.not_before, self.not_after)
    }

    /// Checks a COSE signature made with `alg` over `tbs` (the Sig_structure bytes).
    ///
    /// ES256 must be raw `r || s`; a DER-encoded ECDSA signature is rejected with a message that says
    /// so, because that is the usual mistake of a signer (e.g. Vault transit without `jws` marshaling).
    pub fn verify_signature(
        &self,
        alg: Algorithm,
        tbs: &[u8],
        signature: &[u8],
    ) -> std::result::Result<(), String> {
        if alg != self.alg {
            return Err(format!(
                "alg {} does not match the {} key of the certificate",
                alg.name(),
                self.alg.name()
            ));
        }
        let algorithm: &dyn ring::signature::VerificationAlgorithm = match alg {
            Algorithm::ES256 => {
                if signature.len() != ES256_SIGNATURE_LEN {
                    let hint = if signature.first() == Some(&0x30) {
                        "; it looks like an ASN.1/DER ECDSA signature, COSE needs raw r||s"
                    } else {
                        ""
                    };
                    return Err(format!(
                        "ES256 signature is {} bytes, expected {ES256_SIGNATURE_LEN}{hint}",
                        signature.len()
                    ));
                }
                &ring::signature::ECDSA_P256_SHA256_FIXED
            }
            // ring's PSS verifier requires salt length = hash length (32), as RFC 8230 does.
            Algorithm::PS256 => &ring::signature::RSA_PSS_2048_8192_SHA256,
        };
        ring::signature::UnparsedPublicKey::new(algorithm, &self.public_key)
            .verify(tbs, signature)
            .map_err(|_| "signature does not verify with the certificate's key".to_string())
    }
}

fn bad(msg: impl std::fmt::Display) -> Error {
    Error::Config(format!("unreadable certificate: {msg}"))
}

/// (notBefore, notAfter) of a DER certificate, as Unix seconds.
pub fn validity(der: &[u8]) -> Result<(i64, i64)> {
    Dsc::from_der(der).map(|d| d.validity())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn shared(p: &str) -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared")
            .join(p)
    }

    #[test]
    fn reads_the_who_mediator_test_dsc() {
        let pem = std::fs::read(shared("examples/hc1-test-DSC-certificate-public.pem")).unwrap();
        let dsc = Dsc::from_pem_or_der(&pem).unwrap();
        assert_eq!(dsc.alg(), Algorithm::PS256);
        // The kid of the WHO mediator's example QRs (who-reference-mediator.md §8.1).
        assert_eq!(hex::encode(dsc.kid()), "2c83a893cb311945");
        let (nb, na) = dsc.validity();
        assert!(nb < na);
        // Same certificate as DER.
        assert_eq!(Dsc::from_pem_or_der(dsc.der()).unwrap(), dsc);
    }

    #[test]
    fn es256_signatures_must_be_raw_r_s_not_der() {
        use crate::signer::local::{DscSubject, LocalSigner};
        use crate::signer::Signer;
        let dir = tempfile::tempdir().unwrap();
        let signer =
            LocalSigner::open_or_create(dir.path(), &DscSubject::development("NL")).unwrap();
        let id = signer.current();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let raw = rt.block_on(signer.sign(&id, b"tbs")).unwrap();
        let dsc = Dsc::from_der(&id.dsc_der).unwrap();
        assert!(dsc.verify_signature(Algorithm::ES256, b"tbs", &raw).is_ok());
        // The same signature DER-encoded (SEQUENCE { INTEGER r, INTEGER s }), as Vault's default gives.
        let int = |half: &[u8]| {
            let mut v = half.to_vec();
            while v.len() > 1 && v[0] == 0 && v[1] < 0x80 {
                v.remove(0);
            }
            if v[0] >= 0x80 {
                v.insert(0, 0);
            }
            let mut out = vec![0x02, v.len() as u8];
            out.extend(v);
            out
        };
        let body = [int(&raw[..32]), int(&raw[32..])].concat();
        let der = [vec![0x30, body.len() as u8], body].concat();
        let err = dsc
            .verify_signature(Algorithm::ES256, b"tbs", &der)
            .unwrap_err();
        assert!(err.contains("DER"), "{err}");
        // And the algorithm must match the key.
        assert!(dsc
            .verify_signature(Algorithm::PS256, b"tbs", &raw)
            .is_err());
    }

    #[test]
    fn rejects_garbage_without_panicking() {
        for bytes in [
            &b""[..],
            b"\x30\x03\x02\x01",
            b"-----BEGIN CERTIFICATE-----\nAAAA\n",
        ] {
            assert!(Dsc::from_pem_or_der(bytes).is_err());
        }
    }
}
