//! Render: QR images (PNG, SVG) and the citizen PDF.
//!
//! Pure CPU work, synchronous: callers on an async runtime run it on a blocking thread.

pub mod pdf;
pub mod qr;
