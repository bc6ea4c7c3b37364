//! QR symbols for `HC1:` payloads (HCERT §4): alphanumeric mode, error correction Q, the smallest version
//! that fits, a 4-module quiet zone, black on white.
//!
//! The `qrcode` crate's automatic encoder picks an "optimal" mix of segments (numeric runs for digits),
//! which HCERT forbids: the payload MUST be one alphanumeric segment. So the bit stream is built here
//! explicitly and handed to `QrCode::with_bits`.

use image::{codecs::png::PngEncoder, ImageEncoder, Luma};
use qrcode::{bits::Bits, render::svg, EcLevel, QrCode, Version};

use crate::error::{Error, Result};

/// Light modules around the symbol, as ISO/IEC 18004 requires.
pub const QUIET_ZONE_MODULES: u32 = 4;
/// Pixels per module in the PNG: 4 px keeps a version-25 symbol under 600 px and scans from a screen.
pub const PNG_MODULE_PX: u32 = 4;
/// Error correction level Q (25 % recovery), as HCERT §4 recommends for printed and displayed codes.
pub const EC_LEVEL: EcLevel = EcLevel::Q;

/// The QR alphanumeric character set (ISO/IEC 18004 table 5); base45 uses exactly these 45 characters.
fn is_qr_alphanumeric(b: u8) -> bool {
    matches!(b, b'0'..=b'9' | b'A'..=b'Z' | b' ' | b'$' | b'%' | b'*' | b'+' | b'-' | b'.' | b'/' | b':')
}

/// The data bit stream of `text` in the smallest version whose capacity at level Q holds it as one
/// alphanumeric segment.
pub(crate) fn alphanumeric_bits(text: &str) -> Result<Bits> {
    if let Some(pos) = text.bytes().position(|b| !is_qr_alphanumeric(b)) {
        return Err(Error::invalid(
            "value",
            None,
            format!(
                "QR payload has a character outside the QR alphanumeric set at byte {pos}; \
                 an HC1 payload is `HC1:` followed by base45 text"
            ),
        ));
    }
    if text.is_empty() {
        return Err(Error::invalid("required", None, "QR payload is empty"));
    }
    (1..=40)
        .find_map(|v| {
            let mut bits = Bits::new(Version::Normal(v));
            bits.push_alphanumeric_data(text.as_bytes()).ok()?;
            bits.push_terminator(EC_LEVEL).ok()?;
            Some(bits)
        })
        .ok_or_else(|| {
            Error::invalid(
                "too-long",
                None,
                format!(
                    "QR payload of {} characters does not fit a version-40 QR code at error correction Q",
                    text.len()
                ),
            )
        })
}

/// The QR symbol of an `HC1:` string (or any QR-alphanumeric text).
pub fn encode(hc1: &str) -> Result<QrCode> {
    let bits = alphanumeric_bits(hc1)?;
    QrCode::with_bits(bits, EC_LEVEL)
        .map_err(|e| Error::Internal(format!("QR symbol construction failed: {e}")))
}

/// PNG of the symbol: 8-bit greyscale, [`PNG_MODULE_PX`] px per module, 4-module quiet zone.
pub fn png(hc1: &str) -> Result<Vec<u8>> {
    png_of(&encode(hc1)?)
}

/// PNG of an encoded symbol (encoding is the costly part: encode once, render many).
pub fn png_of(code: &QrCode) -> Result<Vec<u8>> {
    let img = code
        .render::<Luma<u8>>()
        .quiet_zone(true)
        .module_dimensions(PNG_MODULE_PX, PNG_MODULE_PX)
        .build();
    let mut out = Vec::new();
    PngEncoder::new(&mut out)
        .write_image(
            img.as_raw(),
            img.width(),
            img.height(),
            image::ExtendedColorType::L8,
        )
        .map_err(|e| Error::Internal(format!("PNG encoding failed: {e}")))?;
    Ok(out)
}

/// SVG of the symbol: one module is one user unit, so the `viewBox` spans the symbol and its quiet
/// zone and the image scales to any size without blurring.
pub fn svg(hc1: &str) -> Result<String> {
    Ok(svg_of(&encode(hc1)?))
}

/// SVG of an encoded symbol.
pub fn svg_of(code: &QrCode) -> String {
    code.render::<svg::Color<'_>>()
        .quiet_zone(true)
        .module_dimensions(1, 1)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn shared(rel: &str) -> String {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared")
            .join(rel);
        std::fs::read_to_string(&p)
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
            .trim()
            .to_owned()
    }

    /// The two real HC1 strings of the WHO reference mediator's stored document.
    fn real_hc1() -> Vec<String> {
        vec![
            shared("examples/hc1-who-from-existingDDCCDoc.txt"),
            shared("examples/hc1-dcc-from-existingDDCCDoc.txt"),
        ]
    }

    fn decode_png(png: &[u8]) -> (rqrr::MetaData, String) {
        let img = image::load_from_memory(png).unwrap().to_luma8();
        let mut prepared = rqrr::PreparedImage::prepare(img);
        let grids = prepared.detect_grids();
        assert_eq!(grids.len(), 1, "exactly one QR symbol in the PNG");
        grids[0].decode().unwrap()
    }

    /// Bits an alphanumeric segment of `n` characters needs in version `v` (ISO/IEC 18004 §7.4.4):
    /// mode (4) + character count + 11 per pair + 6 for an odd one.
    fn alphanumeric_segment_bits(v: i16, n: usize) -> usize {
        let count_bits = match v {
            1..=9 => 9,
            10..=26 => 11,
            _ => 13,
        };
        4 + count_bits + 11 * (n / 2) + 6 * (n % 2)
    }

    #[test]
    fn png_decodes_back_to_the_payload_at_level_q_and_minimal_version() {
        for hc1 in real_hc1() {
            let png = png(&hc1).unwrap();
            let decoded = image::load_from_memory(&png).unwrap();
            assert_eq!(decoded.color(), image::ColorType::L8, "8-bit greyscale");
            let (meta, text) = decode_png(&png);
            assert_eq!(text, hc1);
            // Format information bits 11 = level Q.
            assert_eq!(meta.ecc_level, 3, "error correction Q");

            let v = meta.version.0 as i16;
            let capacity = |v: i16| Bits::new(Version::Normal(v)).max_len(EcLevel::Q).unwrap();
            assert!(alphanumeric_segment_bits(v, hc1.len()) <= capacity(v));
            assert!(
                alphanumeric_segment_bits(v - 1, hc1.len()) > capacity(v - 1),
                "version {v} is not the smallest that fits"
            );
            // Side = (17 + 4·version + 2·quiet zone) modules × 4 px.
            let side = (17 + 4 * v as u32 + 2 * QUIET_ZONE_MODULES) * PNG_MODULE_PX;
            assert_eq!((decoded.width(), decoded.height()), (side, side));
            // The quiet zone is white: the whole first 4 module rows.
            let luma = decoded.to_luma8();
            let qz = QUIET_ZONE_MODULES * PNG_MODULE_PX;
            assert!((0..qz).all(|y| (0..side).all(|x| luma.get_pixel(x, y).0 == [255])));
        }
    }

    #[test]
    fn the_payload_is_one_alphanumeric_segment_even_with_long_digit_runs() {
        // qrcode's optimiser would code the digit run in numeric mode (and may choose a smaller version).
        let text = format!("HC1:{}", "1234567890".repeat(40));
        let bits = alphanumeric_bits(&text).unwrap();
        let version = match bits.version() {
            Version::Normal(v) => v,
            Version::Micro(_) => panic!("micro QR"),
        };
        // Mode indicator 0010 = alphanumeric.
        assert_eq!(bits.into_bytes()[0] >> 4, 0b0010);
        let optimal = QrCode::with_error_correction_level(&text, EcLevel::Q).unwrap();
        let ours = encode(&text).unwrap();
        assert_eq!(ours.version(), Version::Normal(version));
        assert!(ours.version().width() >= optimal.version().width());
        let (meta, decoded) = decode_png(&png(&text).unwrap());
        assert_eq!(decoded, text);
        assert_eq!(meta.version.0, version as usize);
    }

    #[test]
    fn same_version_as_qrcode_when_there_is_nothing_to_optimise() {
        // No digits: qrcode's own optimal encoding is a single alphanumeric segment too.
        let text = format!("HC1:{}", "ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".repeat(20));
        let theirs = QrCode::with_error_correction_level(&text, EcLevel::Q).unwrap();
        let ours = encode(&text).unwrap();
        assert_eq!(ours.version(), theirs.version());
        assert_eq!(ours.error_correction_level(), EcLevel::Q);
    }

    #[test]
    fn svg_has_a_view_box_and_is_well_formed() {
        let hc1 = &real_hc1()[1];
        let svg = svg(hc1).unwrap();
        let code = encode(hc1).unwrap();
        let side = code.width() as u32 + 2 * QUIET_ZONE_MODULES;
        assert!(svg.contains(&format!(r#"viewBox="0 0 {side} {side}""#)));
        assert!(svg.trim_start().starts_with("<?xml"));
        assert!(svg.contains("<svg xmlns=\"http://www.w3.org/2000/svg\""));
        assert!(svg.trim_end().ends_with("</svg>"));
        // XML-ish: every element opened is closed or self-closed.
        let opens = svg.matches('<').count();
        let closes = svg.matches('>').count();
        assert_eq!(opens, closes);
        assert!(svg.contains("fill=\"#000000\""));
    }

    #[test]
    fn rejects_non_alphanumeric_and_oversized_input_with_an_error() {
        for bad in ["HC1:abc", "HC1:ÄÖ", "HC1:{}", ""] {
            let err = png(bad).unwrap_err();
            assert!(err.is_caller_fault(), "{bad:?}: {err}");
        }
        // Version 40-Q holds 2 420 alphanumeric characters.
        assert!(encode(&"A".repeat(2420)).is_ok());
        let err = svg(&"A".repeat(2421)).unwrap_err();
        assert!(err.to_string().contains("does not fit"), "{err}");
    }
}
