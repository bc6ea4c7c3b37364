//! Verifying an `HC1:` certificate: the relying-party checks of HCERT, stage by stage.
//!
//! `HC1:` prefix → Base45 → zlib → COSE_Sign1 → CWT claims → kid lookup among trusted DSCs → ES256/PS256
//! signature → `iat ≤ at ≤ exp`. The report says which stage failed, so a caller can tell a damaged QR
//! from a forged or an expired one. Every input is untrusted: nothing here panics.

use std::collections::BTreeMap;

use coset::cbor::value::Value;
use serde::Serialize;

use crate::credential::claims::ReadClaims;
use crate::credential::{cose, hc1};
use crate::error::{Error, Result};
use crate::signer::certificate::Dsc;
use crate::signer::kid_of;

/// The verification stages, in the order they run (so `<` means "earlier").
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Prefix,
    Base45,
    Zlib,
    Cose,
    Cwt,
    Kid,
    Signature,
    Expiry,
    /// On the issuer's revocation list ([`crate::credential::revocation::check`]).
    Revocation,
}

/// Why a certificate failed, and at which stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Failure {
    pub stage: Stage,
    pub message: String,
}

impl Failure {
    pub fn new(stage: Stage, message: String) -> Self {
        Failure { stage, message }
    }
}

/// What the verifier trusts and when it checks.
#[derive(Debug, Clone, Default)]
pub struct VerifyOptions {
    /// Trusted document signer certificates (DER). A certificate is looked up by its kid.
    pub trusted_dscs: Vec<Vec<u8>>,
    /// Validation time, Unix seconds.
    pub at: i64,
    /// A revocation list (already opened and its signature checked); `None`: revocation is not checked and the
    /// report has no `revoked`.
    pub revocations: Option<std::sync::Arc<super::revocation::RevocationList>>,
    /// A signature its signer has already verified (see [`CheckedSignature`]); `None` for anything handed
    /// in from outside.
    pub checked: Option<CheckedSignature>,
}

/// A signature its signer verified with `dsc_der` over exactly `tbs`, as the issuer's self-check is told it
/// ([`crate::signer::Signer::checks_its_signatures`]). When the certificate decodes to these very bytes and
/// the kid finds this DSC, the ECDSA verification would repeat one already done, so it is skipped; every
/// other stage still runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedSignature {
    pub dsc_der: Vec<u8>,
    pub tbs: Vec<u8>,
    pub signature: Vec<u8>,
}

/// The outcome of [`verify`]. Fields are filled as far as decoding got, also on failure.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VerifyReport {
    pub valid: bool,
    pub alg: Option<&'static str>,
    /// Hex.
    pub kid: Option<String>,
    pub iss: Option<String>,
    pub iat: Option<i64>,
    pub exp: Option<i64>,
    /// hcert sub-claim (as text, e.g. `"1"`) → payload as JSON.
    pub payloads: BTreeMap<String, serde_json::Value>,
    /// Whether a revocation list names this certificate; absent when none was checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revoked: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<Failure>,
}

/// Verifies an `HC1:` string (surrounding whitespace ignored).
pub fn verify(hc1: &str, options: &VerifyOptions) -> VerifyReport {
    let mut report = empty_report();
    match run(hc1.trim(), options, &mut report, Payloads::Reported) {
        Ok(()) => report.valid = true,
        Err(failure) => report.error = Some(failure),
    }
    if let Some(list) = &options.revocations {
        super::revocation::check(&mut report, hc1, list);
    }
    report
}

/// The verdict of [`verify`] without its report: what the issuer's self-check needs. Every stage runs; the
/// payloads are not turned into JSON for a reader (a tenth of the check's work).
pub fn check(hc1: &str, options: &VerifyOptions) -> Result<(), Failure> {
    run(hc1.trim(), options, &mut empty_report(), Payloads::Skipped)
}

/// Whether a report shows the payloads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Payloads {
    Reported,
    Skipped,
}

fn empty_report() -> VerifyReport {
    VerifyReport {
        valid: false,
        alg: None,
        kid: None,
        iss: None,
        iat: None,
        exp: None,
        payloads: BTreeMap::new(),
        revoked: None,
        error: None,
    }
}

/// The `HC1:` text of what a verifier was handed: the text itself, a PNG image of a QR code, or a citizen
/// PDF (its QR codes are read from the page). `Error::Invalid` when it is none of these or holds no QR code.
pub fn hc1_of(bytes: &[u8]) -> Result<String> {
    if bytes.starts_with(b"\x89PNG") {
        return decode_qr_png(bytes);
    }
    if bytes.starts_with(b"%PDF-") {
        return decode_qr_image(super::pdf_qr::rasterise(bytes)?);
    }
    std::str::from_utf8(bytes)
        .map(|s| s.trim().to_string())
        .map_err(|_| {
            Error::invalid(
                "invalid",
                None,
                "the input is neither an HC1 text nor a PNG image nor a PDF",
            )
        })
}

fn run(
    hc1: &str,
    options: &VerifyOptions,
    report: &mut VerifyReport,
    payloads: Payloads,
) -> Result<(), Failure> {
    let cose_bytes = hc1::decode(hc1)?;
    let sign1 = cose::parse(&cose_bytes)?;
    let alg = cose::algorithm(&sign1)?;
    report.alg = Some(alg.name());
    let kid = cose::kid(&sign1).map(<[u8]>::to_vec);
    report.kid = kid.as_deref().map(hex::encode);

    let payload = sign1.payload.as_deref().unwrap_or_default();
    let claims = ReadClaims::from_cbor(payload).map_err(|m| Failure::new(Stage::Cwt, m))?;
    report.iss = claims.iss.clone();
    report.iat = claims.iat;
    report.exp = claims.exp;
    if payloads == Payloads::Reported {
        report.payloads = claims
            .hcert
            .iter()
            .map(|(k, v)| (k.to_string(), cbor_to_json(v)))
            .collect();
    }

    let kid = kid.ok_or_else(|| Failure::new(Stage::Kid, "no kid header".into()))?;
    let candidates: Vec<&Vec<u8>> = options
        .trusted_dscs
        .iter()
        .filter(|der| kid_of(der)[..] == kid[..])
        .collect();
    if candidates.is_empty() {
        return Err(Failure::new(
            Stage::Kid,
            format!("no trusted DSC has kid {}", hex::encode(&kid)),
        ));
    }
    // kids are short and may collide: any trusted DSC with this kid may have signed (HCERT A.1).
    let tbs = cose::tbs(&sign1);
    let already_checked = options.checked.as_ref().is_some_and(|checked| {
        checked.tbs == tbs
            && checked.signature == sign1.signature
            && candidates.contains(&&checked.dsc_der)
    });
    let mut last_error = String::new();
    let verified = already_checked
        || candidates.iter().any(|der| {
            let outcome = Dsc::from_der(der)
                .map_err(|e| e.to_string())
                .and_then(|dsc| dsc.verify_signature(alg, &tbs, &sign1.signature));
            outcome.map_err(|e| last_error = e).is_ok()
        });
    if !verified {
        return Err(Failure::new(Stage::Signature, last_error));
    }

    if let Some(iat) = claims.iat.filter(|iat| options.at < *iat) {
        return Err(Failure::new(
            Stage::Expiry,
            format!("not yet valid: issued at {iat}, checked at {}", options.at),
        ));
    }
    if let Some(exp) = claims.exp.filter(|exp| options.at > *exp) {
        return Err(Failure::new(
            Stage::Expiry,
            format!("expired at {exp}, checked at {}", options.at),
        ));
    }
    Ok(())
}

/// CBOR → JSON for display: integer map keys become strings, byte strings hex, tags are dropped.
pub fn cbor_to_json(value: &Value) -> serde_json::Value {
    use serde_json::Value as J;
    match value {
        Value::Integer(i) => {
            let i = i128::from(*i);
            i64::try_from(i)
                .map(J::from)
                .or_else(|_| u64::try_from(i).map(J::from))
                .unwrap_or_else(|_| J::String(i.to_string()))
        }
        Value::Bytes(b) => J::String(hex::encode(b)),
        Value::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
        Value::Text(s) => J::String(s.clone()),
        Value::Bool(b) => J::Bool(*b),
        Value::Null => J::Null,
        Value::Tag(_, inner) => cbor_to_json(inner),
        Value::Array(items) => J::Array(items.iter().map(cbor_to_json).collect()),
        Value::Map(entries) => J::Object(
            entries
                .iter()
                .map(|(k, v)| {
                    let key = match k {
                        Value::Text(s) => s.clone(),
                        other => match cbor_to_json(other) {
                            J::String(s) => s,
                            j => j.to_string(),
                        },
                    };
                    (key, cbor_to_json(v))
                })
                .collect(),
        ),
        _ => J::Null,
    }
}

/// Reads the QR code in a PNG and returns its text: the first code that starts with `HC1:`, else the
/// first code found.
pub fn decode_qr_png(png: &[u8]) -> Result<String> {
    let unreadable =
        |e: image::ImageError| Error::invalid("invalid", None, format!("not a readable PNG: {e}"));
    let reader =
        || image::ImageReader::with_format(std::io::Cursor::new(png), image::ImageFormat::Png);
    // The header says how large the image is: refuse before decoding anything.
    let (width, height) = match png_dimensions(png) {
        Some(size) => size,
        None => reader().into_dimensions().map_err(unreadable)?,
    };
    if u64::from(width) * u64::from(height) > MAX_QR_IMAGE_PIXELS {
        return Err(Error::invalid(
            "too-costly",
            None,
            format!(
                "the image is {width}×{height} pixels; a QR code image may have at most \
                 {MAX_QR_IMAGE_PIXELS} (e.g. 4000×4000)"
            ),
        ));
    }
    let mut reader = reader();
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(width);
    limits.max_image_height = Some(height);
    limits.max_alloc = Some(MAX_QR_IMAGE_PIXELS * 8);
    reader.limits(limits);
    decode_qr_image(reader.decode().map_err(unreadable)?.to_luma8())
}

/// The QR code of an image: the first code that starts with `HC1:`, else the first code found.
pub fn decode_qr_image(image: image::GrayImage) -> Result<String> {
    let texts = read_qr_codes(image.clone());
    let texts = if texts.is_empty() {
        // Tight crops without a quiet zone defeat the finder-pattern search: add a white border.
        read_qr_codes(with_quiet_zone(&image))
    } else {
        texts
    };
    let first = texts.first().cloned();
    texts
        .into_iter()
        .find(|t| t.starts_with(hc1::PREFIX))
        .or(first)
        .ok_or_else(|| Error::invalid("invalid", None, "no readable QR code in the image"))
}

/// Width and height from a PNG's IHDR chunk (always the first), without decoding anything.
fn png_dimensions(png: &[u8]) -> Option<(u32, u32)> {
    if png.get(..8)? != b"\x89PNG\r\n\x1a\n" || png.get(12..16)? != b"IHDR" {
        return None;
    }
    let number = |at: usize| Some(u32::from_be_bytes(png.get(at..at + 4)?.try_into().ok()?));
    Some((number(16)?, number(20)?))
}

/// Most pixels of an image searched for a QR code (a 12-megapixel phone photo fits; a crafted 100,000×100,000
/// PNG of a few kB does not get decoded).
pub const MAX_QR_IMAGE_PIXELS: u64 = 16_000_000;

fn read_qr_codes(image: image::GrayImage) -> Vec<String> {
    let mut prepared = rqrr::PreparedImage::prepare(image);
    prepared
        .detect_grids()
        .into_iter()
        .filter_map(|grid| grid.decode().ok().map(|(_, text)| text))
        .collect()
}

fn with_quiet_zone(image: &image::GrayImage) -> image::GrayImage {
    let border = (image.width().max(image.height()) / 10).max(16);
    let mut out = image::GrayImage::from_pixel(
        image.width() + 2 * border,
        image.height() + 2 * border,
        image::Luma([255]),
    );
    image::imageops::overlay(&mut out, image, i64::from(border), i64::from(border));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_panics_on_garbage() {
        let options = VerifyOptions::default();
        for input in [
            "",
            "HC1:",
            "HC1:0",
            "HC1:00",
            "HC1:NCFOXN%TS3DH",
            "hc1:abc",
            "HC1:\u{1F600}",
        ] {
            let report = verify(input, &options);
            assert!(!report.valid);
            assert!(report.error.is_some());
        }
        assert!(decode_qr_png(b"not a png").is_err());
    }

    /// The self-check's shortcut: a signature its signer already verified is not verified again, but only
    /// for exactly those bytes; a certificate carrying any other signature is verified in full.
    #[test]
    fn a_checked_signature_spares_only_its_own_bytes() {
        use crate::credential::tests::{run, signer};
        use crate::signer::Signer;
        let dir = tempfile::tempdir().unwrap();
        let signer = signer(dir.path());
        let identity = signer.current();
        let at = identity.not_before + 1;
        let claims = crate::credential::claims::Claims {
            iss: Some("NL".into()),
            iat: at,
            exp: at + 60,
            hcert: vec![(3, Value::Text("payload".into()))],
        };
        let signed = run(cose::sign(&signer, &identity, claims.to_cbor().unwrap())).unwrap();
        let checked = CheckedSignature {
            dsc_der: identity.dsc_der.clone(),
            tbs: signed.tbs.clone(),
            signature: signed.signature.clone(),
        };
        let options = |checked: Option<CheckedSignature>| VerifyOptions {
            trusted_dscs: vec![identity.dsc_der.clone()],
            at,
            revocations: None,
            checked,
        };
        let genuine = hc1::encode(&signed.bytes).unwrap();
        let report = verify(&genuine, &options(Some(checked.clone())));
        assert_eq!(report.error, None);

        // The last byte of a COSE_Sign1 is the signature's: a forged certificate is refused even though
        // the caller vouches for the genuine signature.
        let mut forged = signed.bytes.clone();
        *forged.last_mut().unwrap() ^= 1;
        let forged = hc1::encode(&forged).unwrap();
        for vouched in [None, Some(checked.clone())] {
            let report = verify(&forged, &options(vouched));
            assert_eq!(report.error.map(|f| f.stage), Some(Stage::Signature));
        }

        // Vouched for by a DSC that is not trusted: the signature is verified against the trusted one.
        let other_dir = tempfile::tempdir().unwrap();
        let other = crate::credential::tests::signer(other_dir.path()).current();
        let elsewhere = CheckedSignature {
            dsc_der: other.dsc_der.clone(),
            ..checked
        };
        assert_eq!(verify(&genuine, &options(Some(elsewhere))).error, None);
    }

    #[test]
    fn cbor_maps_with_integer_keys_become_json_objects() {
        let v = Value::Map(vec![
            (Value::Integer(1.into()), Value::Text("a".into())),
            (Value::Text("b".into()), Value::Bytes(vec![0xab])),
        ]);
        assert_eq!(cbor_to_json(&v), serde_json::json!({"1": "a", "b": "ab"}));
    }

    /// A PNG with only its header: `width`×`height`, 8-bit grey.
    pub(crate) fn png_header_only(width: u32, height: u32) -> Vec<u8> {
        let chunk = |kind: &[u8], data: &[u8]| {
            let mut crc = flate2::Crc::new();
            crc.update(kind);
            crc.update(data);
            let mut out = (data.len() as u32).to_be_bytes().to_vec();
            out.extend_from_slice(kind);
            out.extend_from_slice(data);
            out.extend_from_slice(&crc.sum().to_be_bytes());
            out
        };
        let mut ihdr = width.to_be_bytes().to_vec();
        ihdr.extend_from_slice(&height.to_be_bytes());
        ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend(chunk(b"IHDR", &ihdr));
        png.extend(chunk(b"IEND", b""));
        png
    }

    #[test]
    fn huge_images_are_refused_before_decoding() {
        let started = std::time::Instant::now();
        let e = decode_qr_png(&png_header_only(100_000, 100_000)).unwrap_err();
        assert!(e.to_string().contains("at most"), "{e}");
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // Within the bound, a header without data is just unreadable.
        let e = decode_qr_png(&png_header_only(100, 100)).unwrap_err();
        assert!(e.to_string().contains("not a readable PNG"), "{e}");
    }
}
