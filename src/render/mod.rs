//! Render: QR images (PNG, SVG) and the citizen PDF.
//!
//! PLACEHOLDER BODIES: the render helper replaces them before this lands.

use crate::error::{Error, Result};

/// QR code PNG of an `HC1:` string: alphanumeric mode, error correction Q, smallest version, 4-module quiet zone.
pub fn qr_png(_hc1: &str) -> Result<Vec<u8>> {
    Err(Error::NotSupported("render not implemented yet".into()))
}

/// The same QR as SVG.
pub fn qr_svg(_hc1: &str) -> Result<String> {
    Err(Error::NotSupported("render not implemented yet".into()))
}
