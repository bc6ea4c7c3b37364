//! Render: QR images (PNG, SVG) and the citizen PDF.
//!
//! Pure CPU work, synchronous, about a millisecond per certificate: the service renders a certificate on
//! the thread of its request (`service::issuer`), one per core at a time.

pub mod pdf;
pub mod qr;

/// The decimal digits of `n`, written into `buffer`: the PDF writer and the SVG write many small numbers,
/// and `fmt`'s machinery cost more than the rest of the SVG.
pub(crate) fn decimal(n: u64, buffer: &mut [u8; 20]) -> &str {
    let mut start = buffer.len();
    let mut rest = n;
    loop {
        start -= 1;
        buffer[start] = b'0' + (rest % 10) as u8;
        rest /= 10;
        if rest == 0 {
            break;
        }
    }
    // Only ASCII digits were written.
    std::str::from_utf8(&buffer[start..]).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimals_are_written_like_display() {
        for n in [0, 7, 10, 99, 100, 4_096, 185, u64::MAX] {
            assert_eq!(super::decimal(n, &mut [0; 20]), n.to_string());
        }
    }
}
