//! Transport encoding of a signed certificate (HCERT §4): zlib → Base45 (RFC 9285) → `HC1:` prefix,
//! and back.

use std::io::{Read, Write};

use crate::credential::verify::{Failure, Stage};
use crate::error::{Error, Result};

/// Context identifier of HCERT version 1.
pub const PREFIX: &str = "HC1:";

/// Largest inflated COSE accepted when decoding. A QR code holds at most 4296 alphanumeric characters
/// (under 3 KB of zlib data); this bound stops a zlib bomb without limiting any real certificate.
pub const MAX_INFLATED_LEN: u64 = 1 << 20;

/// `HC1:` + base45(zlib(cose)), compressed at the best level (9): every byte saved shrinks the QR.
pub fn encode(cose: &[u8]) -> Result<String> {
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
    let compressed = z
        .write_all(cose)
        .and_then(|()| z.finish())
        .map_err(|e| Error::Internal(format!("zlib: {e}")))?;
    Ok(format!("{PREFIX}{}", base45::encode(compressed)))
}

/// The COSE bytes inside an `HC1:` string; the error names the stage that failed.
pub fn decode(hc1: &str) -> std::result::Result<Vec<u8>, Failure> {
    let body = hc1
        .strip_prefix(PREFIX)
        .ok_or_else(|| Failure::new(Stage::Prefix, format!("does not start with {PREFIX}")))?;
    let compressed = base45::decode(body)
        .map_err(|e| Failure::new(Stage::Base45, format!("invalid Base45: {e:?}")))?;
    let mut cose = Vec::new();
    flate2::read::ZlibDecoder::new(compressed.as_slice())
        .take(MAX_INFLATED_LEN + 1)
        .read_to_end(&mut cose)
        .map_err(|e| Failure::new(Stage::Zlib, format!("invalid zlib data: {e}")))?;
    if cose.len() as u64 > MAX_INFLATED_LEN {
        return Err(Failure::new(
            Stage::Zlib,
            format!("inflates to more than {MAX_INFLATED_LEN} bytes"),
        ));
    }
    Ok(cose)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_at_best_compression() {
        let cose: Vec<u8> = (0..2000u32).map(|i| (i % 7) as u8).collect();
        let hc1 = encode(&cose).unwrap();
        assert!(hc1.starts_with("HC1:"));
        // Base45 uses only the QR alphanumeric set.
        assert!(hc1[4..]
            .bytes()
            .all(|b| b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:".contains(&b)));
        // zlib header 78 DA = best compression.
        let z = base45::decode(&hc1[4..]).unwrap();
        assert_eq!(&z[..2], &[0x78, 0xda]);
        assert_eq!(decode(&hc1).unwrap(), cose);
    }

    #[test]
    fn failures_name_their_stage() {
        assert_eq!(decode("HC2:6BFOXN").unwrap_err().stage, Stage::Prefix);
        assert_eq!(decode("HC1:~~~").unwrap_err().stage, Stage::Base45);
        let not_zlib = format!("HC1:{}", base45::encode(b"plain bytes"));
        assert_eq!(decode(&not_zlib).unwrap_err().stage, Stage::Zlib);
    }

    #[test]
    fn refuses_a_zlib_bomb() {
        let huge = vec![0u8; (MAX_INFLATED_LEN + 10) as usize];
        let hc1 = encode(&huge).unwrap();
        assert_eq!(decode(&hc1).unwrap_err().stage, Stage::Zlib);
    }
}
