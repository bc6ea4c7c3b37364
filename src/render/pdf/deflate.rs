//! zlib compression of the PDF streams (`/FlateDecode`): the page streams made anew for every document
//! by the crate's own deflate writer in its fast mode (no deflate state of a few hundred kilobytes to
//! allocate and clear per stream), the font subsets once each by flate2 at its best level.

use flate2::{Compress, Compression, FlushCompress, Status};

use crate::deflate::{self, Effort};
use crate::error::{Error, Result};

/// `data` compressed as a zlib stream, fast: for the streams made anew for every document. The page
/// content is long runs of short, repetitive operators, which greedy matching over short hash chains
/// compresses better than zlib level 1 did (by a fifth on the page streams of `bench` batches).
pub(super) fn deflate(data: &[u8]) -> Result<Vec<u8>> {
    Ok(deflate::zlib(data, Effort::Fast))
}

/// `data` compressed as a zlib stream at the best level, for data compressed once and embedded in
/// many documents (the font subsets, cached per glyph set): every byte saved is stored with every
/// certificate, and the extra time is paid once. A fresh compressor, as this is rare.
pub(super) fn deflate_best(data: &[u8]) -> Result<Vec<u8>> {
    let mut c = Compress::new(Compression::best(), true);
    let mut out = Vec::with_capacity(data.len() / 3 + 64);
    loop {
        let read = usize::try_from(c.total_in()).unwrap_or(data.len());
        let rest = data.get(read..).unwrap_or_default();
        match c.compress_vec(rest, &mut out, FlushCompress::Finish) {
            Ok(Status::StreamEnd) => break,
            // The output is full (or no progress): give it room and go on.
            Ok(Status::Ok | Status::BufError) => out.reserve(out.capacity().max(1024)),
            Err(e) => return Err(Error::Internal(format!("PDF stream compression: {e}"))),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    #[test]
    fn both_levels_round_trip_through_a_zlib_decoder() {
        for data in [
            Vec::new(),
            b"0 0 1 1 re\n".repeat(10_000),
            (0..200_000u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ] {
            for z in [super::deflate(&data), super::deflate_best(&data)] {
                let z = z.unwrap();
                let mut back = Vec::new();
                flate2::read::ZlibDecoder::new(&z[..])
                    .read_to_end(&mut back)
                    .unwrap();
                assert_eq!(back, data);
            }
        }
    }
}
