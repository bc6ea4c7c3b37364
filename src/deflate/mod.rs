//! zlib streams (RFC 1950) of deflate data (RFC 1951), written here for the inputs this service
//! compresses: HC1 payloads (under a few kilobytes, squeezed as hard as possible, as every byte saved
//! shrinks the QR code), the PDF page streams (tens of kilobytes, compressed fast) and the QR code's
//! PNG rows ([`zlib_of_rows`]).
//!
//! Why not flate2 (miniz_oxide): its compressor allocates and zeroes some 200–300 kB of tables for every
//! stream, which cost more than the compression of a 700-byte payload itself. Here every table is sized
//! to the input (see [`lz77`]). Decompression stays with miniz_oxide (untrusted input: the maintained
//! crate, not ours).
//!
//! The stream is one block, dynamic Huffman (its code lengths sent in the shortest of the run-length
//! codings), fixed Huffman or stored, whichever is smallest ([`block`]); its symbols come from greedy
//! matching over short hash chains ([`Effort::Fast`]) or lazy matching over every earlier position
//! ([`Effort::Best`]).

mod bits;
mod block;
mod huffman;
mod lz77;
mod rows;

pub use rows::zlib_of_rows;

/// How hard to look for a short encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effort {
    /// Greedy matching over short hash chains: smaller than zlib level 1 on the PDF page streams (by a
    /// fifth), without its state of a few hundred kilobytes.
    Fast,
    /// zlib's lazy matching over hash chains of the whole input (up to 32 KiB back) and the header
    /// coding chosen by size: never longer than zlib level 9 on the payloads we sign (tested in
    /// `credential::hc1`). Work grows with the input: meant for a few kB.
    Best,
}

/// `data` as a zlib stream.
pub fn zlib(data: &[u8], effort: Effort) -> Vec<u8> {
    let tokens = match effort {
        Effort::Fast => lz77::greedy(data),
        Effort::Best => lz77::lazy(data),
    };
    let mut out = bits::BitWriter::with_capacity(data.len() / 2 + 64);
    // CMF 0x78: deflate with a 32 KiB window; FLG: the level hint (informative only: 0x01 "fastest",
    // 0xDA "best"), no dictionary, check bits making CMF·256 + FLG a multiple of 31.
    out.bytes.extend_from_slice(match effort {
        Effort::Fast => &[0x78, 0x01],
        Effort::Best => &[0x78, 0xda],
    });
    block::Plan::new(&tokens, data.len()).write(&mut out, &tokens, data);
    let mut bytes = out.finish();
    let mut adler = Adler32::default();
    adler.bytes(data);
    bytes.extend_from_slice(&adler.sum().to_be_bytes());
    bytes
}

/// Deflate's shortest and longest match (RFC 1951 §3.2.5).
const MIN_MATCH: usize = 3;
const MAX_MATCH: usize = 258;
/// Deflate's farthest match distance.
const WINDOW: usize = 32_768;
/// Symbol 256 of the literal/length alphabet ends the block.
const END_OF_BLOCK: usize = 256;
/// Literal/length and distance alphabets' sizes (codes 286, 287, 30 and 31 are never used).
const LITERAL_LENGTHS: usize = 286;
const DISTANCES: usize = 30;
/// First length of length codes 257–285, and their extra bits.
const LENGTH_BASE: [u16; 29] = [
    3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131,
    163, 195, 227, 258,
];
const LENGTH_EXTRA: [u8; 29] = [
    0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
];
/// First distance of distance codes 0–29, and their extra bits.
const DISTANCE_BASE: [u16; 30] = [
    1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537,
    2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577,
];
const DISTANCE_EXTRA: [u8; 30] = [
    0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13,
    13,
];

/// The code of `value` in an alphabet whose codes start at `bases` (ascending): the last base not above it.
const fn code_of(bases: &[u16], value: usize) -> u8 {
    let mut code = 0;
    while code + 1 < bases.len() && bases[code + 1] as usize <= value {
        code += 1;
    }
    code as u8
}

/// The length code (0–28) of each match length 0–258 (entries below 3 unused).
const LENGTH_CODE: [u8; MAX_MATCH + 1] = {
    let mut table = [0u8; MAX_MATCH + 1];
    let mut length = MIN_MATCH;
    while length <= MAX_MATCH {
        table[length] = code_of(&LENGTH_BASE, length);
        length += 1;
    }
    table
};

/// Distance codes by distance − 1 for distances up to 256, then by (distance − 1) >> 7 (zlib's split:
/// from distance 257 on, every code spans a multiple of 128).
const DISTANCE_CODE: [u8; 512] = {
    let mut table = [0u8; 512];
    let mut i = 0;
    while i < 512 {
        let distance = if i < 256 { i + 1 } else { ((i - 256) << 7) + 1 };
        table[i] = code_of(&DISTANCE_BASE, distance);
        i += 1;
    }
    table
};

/// The distance code (0–29) of `distance` (1–32768).
#[inline(always)]
fn distance_code(distance: usize) -> usize {
    let d = distance - 1;
    usize::from(if d < 256 {
        DISTANCE_CODE[d]
    } else {
        DISTANCE_CODE[256 + (d >> 7)]
    })
}

/// One deflate symbol: a literal byte, or a match of `length` (3–258) bytes `distance` (1–32768) back.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Token {
    /// 0 for a literal.
    length: u16,
    /// The distance of a match, the byte of a literal.
    distance: u16,
}

impl Token {
    fn literal(byte: u8) -> Self {
        Self {
            length: 0,
            distance: u16::from(byte),
        }
    }

    fn matched(length: usize, distance: usize) -> Self {
        debug_assert!(
            (MIN_MATCH..=MAX_MATCH).contains(&length) && (1..=WINDOW).contains(&distance)
        );
        Self {
            length: length as u16,
            distance: distance as u16,
        }
    }
}

const ADLER_MOD: u64 = 65_521;

/// Adler-32 (RFC 1950 §8).
struct Adler32 {
    a: u64,
    b: u64,
    /// The last row's length with its filter byte, byte sum and sum of running byte sums, for
    /// [`Adler32::repeat_row`].
    last: (u64, u64, u64),
}

impl Default for Adler32 {
    fn default() -> Self {
        Self {
            a: 1,
            b: 0,
            last: (0, 0, 0),
        }
    }
}

impl Adler32 {
    /// Adds `data`, reducing once per 4 KiB (the sums cannot overflow 64 bits in between).
    fn bytes(&mut self, data: &[u8]) {
        for chunk in data.chunks(4096) {
            for &byte in chunk {
                self.a += u64::from(byte);
                self.b += self.a;
            }
            self.a %= ADLER_MOD;
            self.b %= ADLER_MOD;
        }
    }

    /// Adds a PNG filter byte 0 and `row`, remembered for [`Adler32::repeat_row`].
    fn row(&mut self, row: &[u8]) {
        let (mut sum, mut running) = (0u64, 0u64);
        // The filter byte adds 0 to the byte sum and 0 to the running sums.
        for &byte in row {
            sum += u64::from(byte);
            running += sum;
        }
        self.last = (row.len() as u64 + 1, sum % ADLER_MOD, running % ADLER_MOD);
        self.add_last();
    }

    /// Adds the last row `times` more times, from its sums rather than byte by byte.
    fn repeat_row(&mut self, times: usize) {
        for _ in 0..times {
            self.add_last();
        }
    }

    /// Appending n bytes with byte sum S and running sums R: a += S, b += n·a + R.
    fn add_last(&mut self) {
        let (n, sum, running) = self.last;
        self.b = (self.b + (n % ADLER_MOD) * self.a + running) % ADLER_MOD;
        self.a = (self.a + sum) % ADLER_MOD;
    }

    fn sum(&self) -> u32 {
        ((self.b << 16) | self.a) as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{rngs::StdRng, Rng, SeedableRng};
    use std::io::Read;

    /// `zlib` decoded by flate2's reader and by miniz_oxide's one-call inflater.
    fn inflate_both(zlib: &[u8]) -> Vec<u8> {
        let mut by_flate2 = Vec::new();
        flate2::read::ZlibDecoder::new(zlib)
            .read_to_end(&mut by_flate2)
            .unwrap();
        let by_miniz = miniz_oxide::inflate::decompress_to_vec_zlib(zlib).unwrap();
        assert!(by_flate2 == by_miniz);
        by_flate2
    }

    /// Data that is partly random bytes (from an alphabet of `values`) and partly copies of earlier
    /// stretches, of any length and from any distance a match can reach.
    fn copies(rng: &mut StdRng, len: usize, values: usize) -> Vec<u8> {
        let alphabet: Vec<u8> = (0..values).map(|_| rng.gen()).collect();
        let mut data = Vec::with_capacity(len);
        while data.len() < len {
            if data.len() > 3 && rng.gen_bool(0.5) {
                let distance = rng.gen_range(1..=data.len().min(WINDOW));
                let length = match rng.gen_range(0..4) {
                    0 => rng.gen_range(3..=10),
                    1 => rng.gen_range(3..=MAX_MATCH),
                    2 => MAX_MATCH,
                    _ => rng.gen_range(MAX_MATCH..=1000),
                };
                for _ in 0..length.min(len - data.len()) {
                    data.push(data[data.len() - distance]);
                }
            } else {
                for _ in 0..rng.gen_range(1..=40).min(len - data.len()) {
                    data.push(alphabet[rng.gen_range(0..values)]);
                }
            }
        }
        data
    }

    #[test]
    fn every_input_round_trips_and_every_length_and_distance_code_is_used() {
        let mut rng = StdRng::seed_from_u64(1951);
        let mut inputs: Vec<Vec<u8>> = vec![
            Vec::new(),
            vec![7],
            vec![7, 7],
            b"abc".to_vec(),
            vec![0; 65_536],
            b"0 0 1 1 re\n".repeat(3000),
            (0..65_536u32).map(|i| (i * 7919 % 251) as u8).collect(),
        ];
        for case in 0..120 {
            let len = match case % 4 {
                0 => rng.gen_range(0..64),
                1 => rng.gen_range(64..4096),
                2 => rng.gen_range(4096..20_000),
                _ => rng.gen_range(20_000..=65_536),
            };
            let values = [1, 2, 16, 256][rng.gen_range(0..4)];
            inputs.push(if case % 5 == 0 {
                (0..len).map(|_| rng.gen()).collect()
            } else {
                copies(&mut rng, len, values)
            });
        }
        let (mut length_codes, mut distance_codes) = ([false; 29], [false; 30]);
        for (case, data) in inputs.iter().enumerate() {
            for effort in [Effort::Fast, Effort::Best] {
                // Best is meant for a few kB; its round trip is checked on large inputs too, but
                // not on every one, to keep the test quick.
                if effort == Effort::Best && data.len() > 20_000 && case % 3 != 0 {
                    continue;
                }
                let zlib = zlib(data, effort);
                assert!(inflate_both(&zlib) == *data, "case {case}, {effort:?}");
                let tokens = match effort {
                    Effort::Fast => lz77::greedy(data),
                    Effort::Best => lz77::lazy(data),
                };
                for t in tokens.iter().filter(|t| t.length > 0) {
                    length_codes[usize::from(LENGTH_CODE[usize::from(t.length)])] = true;
                    distance_codes[distance_code(usize::from(t.distance))] = true;
                }
            }
        }
        assert_eq!(length_codes, [true; 29]);
        assert_eq!(distance_codes, [true; 30]);
    }

    #[test]
    fn incompressible_data_is_stored_and_tiny_data_uses_the_fixed_code() {
        let mut rng = StdRng::seed_from_u64(1950);
        let random: Vec<u8> = (0..70_000).map(|_| rng.gen()).collect();
        for effort in [Effort::Fast, Effort::Best] {
            let z = zlib(&random, effort);
            // Two stored blocks (at most 65,535 bytes each): 5 bytes each, plus zlib's 6.
            assert_eq!(z.len(), random.len() + 2 * 5 + 6, "{effort:?}");
            assert_eq!(inflate_both(&z), random);
            let z = zlib(b"hello", effort);
            // BTYPE 01 after BFINAL.
            assert_eq!(z[2] & 0b111, 0b011, "{effort:?}");
            assert_eq!(inflate_both(&z), b"hello");
        }
    }

    #[test]
    fn the_checksum_is_adler32() {
        let data = b"Wikipedia";
        let z = zlib(data, Effort::Best);
        assert_eq!(&z[z.len() - 4..], &0x11E6_0398u32.to_be_bytes());
        // Sums past the modulus, reduced per chunk as byte by byte.
        let big = vec![0xff; 100_000];
        let (mut a, mut b) = (1u32, 0u32);
        for &x in &big {
            a = (a + u32::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        let mut adler = Adler32::default();
        adler.bytes(&big);
        assert_eq!(adler.sum(), (b << 16) | a);
    }
}
