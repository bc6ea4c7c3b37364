//! A zlib stream of image rows, each with PNG filter type 0, in one dynamic-Huffman block whose only
//! matches repeat the previous row: what a QR code's bitmap needs, faster than a general search.

use super::bits::BitWriter;
use super::block::Header;
use super::huffman::{self, Code};
use super::{
    distance_code, Adler32, DISTANCES, DISTANCE_BASE, DISTANCE_EXTRA, END_OF_BLOCK, LENGTH_BASE,
    LENGTH_CODE, LENGTH_EXTRA, LITERAL_LENGTHS, MAX_MATCH, MIN_MATCH, WINDOW,
};

/// What one run of rows becomes: a row of literals, or `bytes` repeating the previous row.
enum Run<'a> {
    Literals(&'a [u8]),
    Repeat { bytes: usize },
}

/// The zlib stream of `pixels` cut in rows of `row_bytes`, each row prefixed with filter type 0, or
/// `None` if a row with its filter byte is shorter than a match (3 bytes) or longer than the window.
pub fn zlib_of_rows(pixels: &[u8], row_bytes: usize) -> Option<Vec<u8>> {
    // A stored row is its filter byte and its pixels; a repeat copies it from one row back.
    let distance = row_bytes + 1;
    if !(MIN_MATCH..=WINDOW).contains(&distance) || pixels.is_empty() {
        return None;
    }
    let runs = runs(pixels, row_bytes);
    let mut literal_lengths = [0u32; LITERAL_LENGTHS];
    let mut distances = [0u32; DISTANCES];
    let mut adler = Adler32::default();
    let distance_code = distance_code(distance);
    for run in &runs {
        match *run {
            Run::Literals(row) => {
                literal_lengths[0] += 1;
                for &byte in row {
                    literal_lengths[usize::from(byte)] += 1;
                }
                adler.row(row);
            }
            Run::Repeat { bytes } => {
                for length in match_lengths(bytes) {
                    literal_lengths[257 + usize::from(LENGTH_CODE[length])] += 1;
                    distances[distance_code] += 1;
                }
                adler.repeat_row(bytes / distance);
            }
        }
    }
    literal_lengths[END_OF_BLOCK] = 1;
    let literal_code = Code::from_lengths(&huffman::lengths(&literal_lengths, 15));
    let distance_code_lengths = Code::from_lengths(&huffman::lengths(&distances, 15));

    // Three pixel rows in four are matches; the rest take about 2 bits a byte.
    let mut out = BitWriter::with_capacity(pixels.len() / 12 + 256);
    // zlib header: deflate with a 32 KiB window, no dictionary, "fastest" level; the check bits make
    // 0x7801 a multiple of 31.
    out.bytes.extend_from_slice(&[0x78, 0x01]);
    // BFINAL = 1, BTYPE = 10 (dynamic Huffman codes).
    out.put(0b101, 3);
    Header::new(&literal_code.lengths, &distance_code_lengths.lengths, false).write(&mut out);
    let (distance_bits, distance_extra) = (
        distance_code_lengths.symbol(distance_code),
        DISTANCE_EXTRA[distance_code],
    );
    let distance_rest = (distance - usize::from(DISTANCE_BASE[distance_code])) as u32;
    // Indexed by a byte, so the compiler need not check the index in the hot loop.
    let byte_codes: [(u32, u32); 256] = std::array::from_fn(|b| literal_code.symbol(b));
    for run in &runs {
        match *run {
            Run::Literals(row) => {
                out.put_code(byte_codes[0]);
                for &byte in row {
                    out.put_code(byte_codes[usize::from(byte)]);
                }
            }
            Run::Repeat { bytes } => {
                for length in match_lengths(bytes) {
                    let code = usize::from(LENGTH_CODE[length]);
                    out.put_code(literal_code.symbol(257 + code));
                    let rest = (length - usize::from(LENGTH_BASE[code])) as u32;
                    out.put(rest, u32::from(LENGTH_EXTRA[code]));
                    out.put_code(distance_bits);
                    out.put(distance_rest, u32::from(distance_extra));
                }
            }
        }
    }
    out.put_code(literal_code.symbol(END_OF_BLOCK));
    let mut bytes = out.finish();
    bytes.extend_from_slice(&adler.sum().to_be_bytes());
    Some(bytes)
}

/// The rows as literal rows and runs of rows equal to the one before.
fn runs(pixels: &[u8], row_bytes: usize) -> Vec<Run<'_>> {
    let mut runs = Vec::new();
    let mut previous: Option<&[u8]> = None;
    for row in pixels.chunks(row_bytes) {
        if previous == Some(row) && row.len() == row_bytes {
            match runs.last_mut() {
                Some(Run::Repeat { bytes }) => *bytes += row_bytes + 1,
                _ => runs.push(Run::Repeat {
                    bytes: row_bytes + 1,
                }),
            }
        } else {
            runs.push(Run::Literals(row));
        }
        previous = Some(row);
    }
    runs
}

/// Match lengths covering `bytes` (at least 3): 258 each but the last, none shorter than 3.
fn match_lengths(bytes: usize) -> impl Iterator<Item = usize> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        let length = match rest {
            0 => return None,
            r if r <= MAX_MATCH => r,
            // Leave at least 3 for the last match.
            r => MAX_MATCH.min(r - 3),
        };
        rest -= length;
        Some(length)
    })
}
