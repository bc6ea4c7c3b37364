//! COSE_Sign1 as HCERT uses it (RFC 8152; HCERT §3.3): CBOR tag 18, protected header `{1: alg, 4: kid}`,
//! empty unprotected header, the CWT claims as payload.
//!
//! Signing is two-phase so that a network signer (Vault transit) fits: the headers and payload are fixed
//! first ([`Unsigned`]), then the Sig_structure (`tbs_data`) goes to the async [`Signer`], alone or with the
//! other payloads of the same certificate.

use coset::cbor::value::Value;
use coset::{
    iana, AsCborValue, CoseSign1, CoseSign1Builder, HeaderBuilder, RegisteredLabelWithPrivate,
    TaggedCborSerializable,
};

use crate::credential::verify::{Failure, Stage};
use crate::error::{Error, Result};
use crate::signer::certificate::ES256_SIGNATURE_LEN;
use crate::signer::{Algorithm, Signer, SigningIdentity};

/// CBOR tag of COSE_Sign1 (RFC 8152 §2).
pub const TAG_COSE_SIGN1: u64 = 18;
/// CBOR tag of a CWT (RFC 8392 §6); some issuers wrap the COSE_Sign1 in it.
pub const TAG_CWT: u64 = 61;
/// Length of a kid: the first 8 bytes of SHA-256 over the DSC (HCERT Appendix A.1).
pub const KID_LEN: usize = 8;

/// COSE has no "external AAD" in HCERT.
const EXTERNAL_AAD: &[u8] = b"";

fn iana_alg(alg: Algorithm) -> iana::Algorithm {
    match alg {
        Algorithm::ES256 => iana::Algorithm::ES256,
        Algorithm::PS256 => iana::Algorithm::PS256,
    }
}

/// A COSE_Sign1 whose headers and payload are fixed, waiting for the signature over its Sig_structure. The
/// first phase of signing: a caller with several payloads builds them all, has them signed in one call to the
/// signer ([`Signer::sign_all`]), then attaches each signature.
pub struct Unsigned {
    sign1: CoseSign1,
    alg: Algorithm,
    tbs: Vec<u8>,
}

impl Unsigned {
    /// The protected header `{1: alg, 4: kid}` of `identity`, an empty unprotected header, and `payload`.
    pub fn new(identity: &SigningIdentity, payload: Vec<u8>) -> Self {
        let protected = HeaderBuilder::new()
            .algorithm(iana_alg(identity.alg))
            .key_id(identity.kid.to_vec())
            .build();
        let sign1 = CoseSign1Builder::new()
            .protected(protected)
            .payload(payload)
            .build();
        let tbs = sign1.tbs_data(EXTERNAL_AAD);
        Unsigned {
            sign1,
            alg: identity.alg,
            tbs,
        }
    }

    /// The Sig_structure bytes to sign.
    pub fn tbs(&self) -> &[u8] {
        &self.tbs
    }

    /// The COSE_Sign1 with `signature`, which the signer made over [`Unsigned::tbs`].
    pub fn signed(self, signature: Vec<u8>) -> Result<Signed> {
        if self.alg == Algorithm::ES256 && signature.len() != ES256_SIGNATURE_LEN {
            return Err(Error::Internal(format!(
                "signer returned a {}-byte ES256 signature; COSE needs raw r||s ({ES256_SIGNATURE_LEN} bytes)",
                signature.len()
            )));
        }
        let bytes = CoseSign1 {
            signature: signature.clone(),
            ..self.sign1
        }
        .to_tagged_vec()
        .map_err(|e| Error::Internal(format!("encoding COSE_Sign1: {e}")))?;
        Ok(Signed {
            bytes,
            tbs: self.tbs,
            signature,
        })
    }
}

/// A COSE_Sign1 just made: its tagged bytes, and the Sig_structure and signature they carry.
pub struct Signed {
    pub bytes: Vec<u8>,
    pub tbs: Vec<u8>,
    pub signature: Vec<u8>,
}

/// Signs `payload` with `identity`'s key: both phases, for a caller with one payload.
pub async fn sign<S: Signer>(
    signer: &S,
    identity: &SigningIdentity,
    payload: Vec<u8>,
) -> Result<Signed> {
    let unsigned = Unsigned::new(identity, payload);
    let signature = signer.sign(identity, unsigned.tbs()).await?;
    unsigned.signed(signature)
}

/// Parses a COSE_Sign1: tagged 18, tag 18 inside CWT tag 61, or untagged (older issuers).
pub fn parse(bytes: &[u8]) -> std::result::Result<CoseSign1, Failure> {
    let fail = |m: String| Failure::new(Stage::Cose, m);
    let mut reader = bytes;
    let mut value: Value =
        ciborium::from_reader(&mut reader).map_err(|e| fail(format!("invalid CBOR: {e}")))?;
    if !reader.is_empty() {
        return Err(fail(format!("{} bytes after the CBOR item", reader.len())));
    }
    if let Value::Tag(TAG_CWT, inner) = value {
        value = *inner;
    }
    match value {
        Value::Tag(TAG_COSE_SIGN1, inner) => value = *inner,
        Value::Tag(tag, _) => return Err(fail(format!("unexpected CBOR tag {tag}"))),
        _ => {}
    }
    let sign1 =
        CoseSign1::from_cbor_value(value).map_err(|e| fail(format!("not a COSE_Sign1: {e}")))?;
    if sign1.payload.is_none() {
        return Err(fail("detached payload".into()));
    }
    Ok(sign1)
}

/// The signature algorithm: protected header, else unprotected (accepted by HCERT verifiers).
pub fn algorithm(sign1: &CoseSign1) -> std::result::Result<Algorithm, Failure> {
    let alg = sign1
        .protected
        .header
        .alg
        .as_ref()
        .or(sign1.unprotected.alg.as_ref());
    match alg {
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::ES256)) => Ok(Algorithm::ES256),
        Some(RegisteredLabelWithPrivate::Assigned(iana::Algorithm::PS256)) => Ok(Algorithm::PS256),
        Some(other) => Err(Failure::new(
            Stage::Cose,
            format!("unsupported algorithm {other:?}; HCERT allows ES256 and PS256"),
        )),
        None => Err(Failure::new(Stage::Cose, "no alg header".into())),
    }
}

/// The kid: protected header, else unprotected (HCERT §3.3.2: the protected one wins if both exist).
pub fn kid(sign1: &CoseSign1) -> Option<&[u8]> {
    [&sign1.protected.header.key_id, &sign1.unprotected.key_id]
        .into_iter()
        .find(|k| !k.is_empty())
        .map(Vec::as_slice)
}

/// The Sig_structure bytes the signature covers.
pub fn tbs(sign1: &CoseSign1) -> Vec<u8> {
    sign1.tbs_data(EXTERNAL_AAD)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::tests::{run, signer};

    #[test]
    fn protected_header_is_alg_then_kid_and_unprotected_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let signer = signer(dir.path());
        let id = signer.current();
        let signed = run(sign(&signer, &id, b"payload".to_vec())).unwrap();
        let bytes = &signed.bytes;
        // d2 = tag 18, 84 = array(4), 4d = bstr(13): a2 01 26 04 48 <kid>, then a0 = {}.
        assert_eq!(&bytes[..3], &[0xd2, 0x84, 0x4d]);
        assert_eq!(&bytes[3..8], &[0xa2, 0x01, 0x26, 0x04, 0x48]);
        assert_eq!(&bytes[8..16], &id.kid);
        assert_eq!(bytes[16], 0xa0);

        let parsed = parse(bytes).unwrap();
        assert_eq!(tbs(&parsed), signed.tbs);
        assert_eq!(parsed.signature, signed.signature);
        assert_eq!(algorithm(&parsed).unwrap(), Algorithm::ES256);
        assert_eq!(kid(&parsed), Some(&id.kid[..]));
        let dsc = crate::signer::certificate::Dsc::from_der(&id.dsc_der).unwrap();
        dsc.verify_signature(Algorithm::ES256, &tbs(&parsed), &parsed.signature)
            .unwrap();
    }

    #[test]
    fn rejects_non_cose_without_panicking() {
        for bytes in [
            &b""[..],
            b"\xd2",
            b"\xd3\x80",
            b"\x84\x40\xa0\x40\x40\x00",
            b"\xff",
        ] {
            assert_eq!(parse(bytes).unwrap_err().stage, Stage::Cose);
        }
    }
}
