//! Render: QR images (PNG, SVG) and the citizen PDF.
//!
//! Pure CPU work, synchronous: callers on an async runtime run it on a blocking thread.

pub mod pdf;
pub mod qr;

use crate::error::Result;

/// QR code PNG of an `HC1:` string: alphanumeric mode, error correction Q, smallest version, 4-module quiet zone.
pub fn qr_png(hc1: &str) -> Result<Vec<u8>> {
    qr::png(hc1)
}

/// The same QR as SVG.
pub fn qr_svg(hc1: &str) -> Result<String> {
    qr::svg(hc1)
}
