//! One final deflate block of a token sequence (RFC 1951 §3.2.3–3.2.7): dynamic Huffman, fixed
//! Huffman or stored, whichever is fewest bits.

use super::bits::BitWriter;
use super::huffman::{self, Code};
use super::{
    distance_code, Token, DISTANCES, DISTANCE_BASE, DISTANCE_EXTRA, END_OF_BLOCK, LENGTH_BASE,
    LENGTH_CODE, LENGTH_EXTRA, LITERAL_LENGTHS,
};

/// The order code length code lengths are sent in (§3.2.7).
const CODE_LENGTH_ORDER: [usize; 19] = [
    16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
];
/// A stored block holds at most this many bytes.
const STORED_MAX: usize = 65_535;

/// Symbol counts of a token sequence, the end of block included.
pub(super) struct Frequencies {
    pub(super) literal_lengths: [u32; LITERAL_LENGTHS],
    pub(super) distances: [u32; DISTANCES],
}

impl Frequencies {
    pub(super) fn of(tokens: &[Token]) -> Self {
        let mut f = Self {
            literal_lengths: [0; LITERAL_LENGTHS],
            distances: [0; DISTANCES],
        };
        for t in tokens {
            if t.length == 0 {
                f.literal_lengths[usize::from(t.distance)] += 1;
            } else {
                f.literal_lengths[257 + usize::from(LENGTH_CODE[usize::from(t.length)])] += 1;
                f.distances[distance_code(usize::from(t.distance))] += 1;
            }
        }
        f.literal_lengths[END_OF_BLOCK] = 1;
        f
    }

    /// Bits of the symbols and their extra bits under these code lengths.
    fn bits(&self, literal_lengths: &[u8], distances: &[u8]) -> u64 {
        let mut bits = 0u64;
        for (symbol, &n) in self.literal_lengths.iter().enumerate() {
            let extra = symbol
                .checked_sub(257)
                .map_or(0, |code| u64::from(LENGTH_EXTRA[code]));
            bits += u64::from(n) * (u64::from(literal_lengths[symbol]) + extra);
        }
        for (code, &n) in self.distances.iter().enumerate() {
            bits += u64::from(n) * (u64::from(distances[code]) + u64::from(DISTANCE_EXTRA[code]));
        }
        bits
    }
}

/// The fixed Huffman code lengths (§3.2.6).
fn fixed_lengths() -> ([u8; 288], [u8; 32]) {
    let mut literal_lengths = [8u8; 288];
    literal_lengths[144..256].fill(9);
    literal_lengths[256..280].fill(7);
    (literal_lengths, [5u8; 32])
}

/// How the block will be written.
// One plan lives on the stack for one call: boxing the large variant would only add an allocation.
#[allow(clippy::large_enum_variant)]
pub(super) enum Plan {
    Dynamic {
        literal_lengths: Code,
        distances: Code,
        header: Header,
    },
    Fixed,
    Stored,
}

impl Plan {
    /// The smallest of the three block types for `tokens` (which encode `data_len` bytes).
    pub(super) fn new(tokens: &[Token], data_len: usize) -> Self {
        let frequencies = Frequencies::of(tokens);
        let literal_lengths = huffman::lengths(&frequencies.literal_lengths, 15);
        let distances = huffman::lengths(&frequencies.distances, 15);
        let header = Header::new(&literal_lengths, &distances, true);
        let dynamic = 3 + header.bits + frequencies.bits(&literal_lengths, &distances);
        let (fixed_literals, fixed_distances) = fixed_lengths();
        let fixed = 3 + frequencies.bits(&fixed_literals, &fixed_distances);
        // Each stored block: 3 header bits padded to a byte (at most 7 more), LEN and NLEN, the data.
        let stored = (data_len.div_ceil(STORED_MAX).max(1) * (10 + 32) + data_len * 8) as u64;
        if dynamic.min(fixed) > stored {
            Self::Stored
        } else if fixed <= dynamic {
            Self::Fixed
        } else {
            Self::Dynamic {
                literal_lengths: Code::from_lengths(&literal_lengths),
                distances: Code::from_lengths(&distances),
                header,
            }
        }
    }

    /// The block, final, of `tokens` (which encode `data`).
    pub(super) fn write(&self, out: &mut BitWriter, tokens: &[Token], data: &[u8]) {
        match self {
            Self::Stored => {
                let mut chunks = data.chunks(STORED_MAX).peekable();
                if chunks.peek().is_none() {
                    write_stored(out, &[], true);
                }
                while let Some(chunk) = chunks.next() {
                    write_stored(out, chunk, chunks.peek().is_none());
                }
            }
            Self::Fixed => {
                // BFINAL = 1, BTYPE = 01.
                out.put(0b011, 3);
                let (l, d) = fixed_lengths();
                write_tokens(
                    out,
                    &Code::from_lengths(&l),
                    &Code::from_lengths(&d),
                    tokens,
                );
            }
            Self::Dynamic {
                literal_lengths,
                distances,
                header,
            } => {
                // BFINAL = 1, BTYPE = 10.
                out.put(0b101, 3);
                header.write(out);
                write_tokens(out, literal_lengths, distances, tokens);
            }
        }
    }
}

fn write_stored(out: &mut BitWriter, chunk: &[u8], last: bool) {
    // BFINAL, BTYPE = 00, then byte-aligned LEN and NLEN.
    out.put(u32::from(last), 3);
    out.align();
    let len = chunk.len() as u16;
    out.bytes.extend_from_slice(&len.to_le_bytes());
    out.bytes.extend_from_slice(&(!len).to_le_bytes());
    out.bytes.extend_from_slice(chunk);
}

/// The symbols of `tokens` and the end of block.
fn write_tokens(out: &mut BitWriter, literal_lengths: &Code, distances: &Code, tokens: &[Token]) {
    for t in tokens {
        if t.length == 0 {
            out.put_code(literal_lengths.symbol(usize::from(t.distance)));
        } else {
            let (length, distance) = (usize::from(t.length), usize::from(t.distance));
            let code = usize::from(LENGTH_CODE[length]);
            out.put_code(literal_lengths.symbol(257 + code));
            out.put(
                (length - usize::from(LENGTH_BASE[code])) as u32,
                u32::from(LENGTH_EXTRA[code]),
            );
            let code = distance_code(distance);
            out.put_code(distances.symbol(code));
            out.put(
                (distance - usize::from(DISTANCE_BASE[code])) as u32,
                u32::from(DISTANCE_EXTRA[code]),
            );
        }
    }
    out.put_code(literal_lengths.symbol(END_OF_BLOCK));
}

/// The code lengths of both alphabets as a dynamic block sends them (§3.2.7): run-length coded (16
/// repeats the previous length, 17 and 18 runs of zeros), themselves Huffman-coded in at most 7 bits.
pub(super) struct Header {
    hlit: usize,
    hdist: usize,
    hclen: usize,
    /// The literal/length code lengths (`hlit` of them) followed by the distance ones (`hdist`).
    all: [u8; LITERAL_LENGTHS + DISTANCES],
    runs: Runs,
    /// The code lengths' code.
    lengths: [u8; 19],
    /// Bits of the header after BFINAL and BTYPE.
    pub(super) bits: u64,
}

/// Which run codes the header uses: a run code saves bits only if its own code and extra bits are
/// shorter than what it replaces, which depends on the lengths sent.
#[derive(Clone, Copy)]
struct Runs {
    repeat: bool,
    short_zeros: bool,
    long_zeros: bool,
}

impl Runs {
    const ALL: Self = Self {
        repeat: true,
        short_zeros: true,
        long_zeros: true,
    };

    /// The items of a run of `run` lengths `length`, as (symbol, extra bits value, extra bits).
    #[inline(always)]
    fn each(self, length: u8, run: usize, mut item: impl FnMut(u8, u8, u8)) {
        let mut rest = run;
        if length == 0 {
            while self.long_zeros && rest >= 11 {
                let n = rest.min(138);
                item(18, (n - 11) as u8, 7);
                rest -= n;
            }
            while self.short_zeros && rest >= 3 {
                let n = rest.min(10);
                item(17, (n - 3) as u8, 3);
                rest -= n;
            }
        } else if self.repeat && rest >= 4 {
            item(length, 0, 0);
            rest -= 1;
            while rest >= 3 {
                let n = rest.min(6);
                item(16, (n - 3) as u8, 2);
                rest -= n;
            }
        }
        for _ in 0..rest {
            item(length, 0, 0);
        }
    }
}

/// Code lengths as (length, run of equal lengths).
fn runs_of(all: &[u8], mut run: impl FnMut(u8, usize)) {
    let mut i = 0;
    while i < all.len() {
        let length = all[i];
        let n = all[i..].iter().take_while(|&&l| l == length).count();
        run(length, n);
        i += n;
    }
}

impl Header {
    /// The header with every run code, or (`thorough`) the shortest of those with and without each.
    pub(super) fn new(literal_lengths: &[u8], distances: &[u8], thorough: bool) -> Self {
        let used = |lengths: &[u8], at_least: usize| {
            lengths
                .iter()
                .rposition(|&l| l > 0)
                .map_or(0, |i| i + 1)
                .max(at_least)
        };
        let (hlit, hdist) = (used(literal_lengths, 257), used(distances, 1));
        let mut all = [0u8; LITERAL_LENGTHS + DISTANCES];
        all[..hlit].copy_from_slice(&literal_lengths[..hlit]);
        all[hlit..hlit + hdist].copy_from_slice(&distances[..hdist]);
        let mut runs = [(0u8, 0u16); LITERAL_LENGTHS + DISTANCES];
        let mut count = 0;
        runs_of(&all[..hlit + hdist], |length, n| {
            runs[count] = (length, n as u16);
            count += 1;
        });
        let runs = &runs[..count];
        let mut best = Self::with(all, hlit, hdist, runs, Runs::ALL);
        if thorough {
            for variant in 0..7 {
                let kind = Runs {
                    repeat: variant & 1 != 0,
                    short_zeros: variant & 2 != 0,
                    long_zeros: variant & 4 != 0,
                };
                let header = Self::with(all, hlit, hdist, runs, kind);
                if header.bits < best.bits {
                    best = header;
                }
            }
        }
        best
    }

    fn with(
        all: [u8; LITERAL_LENGTHS + DISTANCES],
        hlit: usize,
        hdist: usize,
        runs: &[(u8, u16)],
        kind: Runs,
    ) -> Self {
        let mut frequencies = [0u32; 19];
        let mut extra_bits = 0u64;
        for &(length, n) in runs {
            kind.each(length, usize::from(n), |symbol, _, extra| {
                frequencies[usize::from(symbol)] += 1;
                extra_bits += u64::from(extra);
            });
        }
        let lengths = huffman::lengths(&frequencies, 7);
        let hclen = CODE_LENGTH_ORDER
            .iter()
            .rposition(|&s| lengths[s] > 0)
            .map_or(0, |i| i + 1)
            .max(4);
        let bits = 5
            + 5
            + 4
            + 3 * hclen as u64
            + extra_bits
            + frequencies
                .iter()
                .zip(&lengths)
                .map(|(&n, &l)| u64::from(n) * u64::from(l))
                .sum::<u64>();
        Self {
            hlit,
            hdist,
            hclen,
            all,
            runs: kind,
            lengths,
            bits,
        }
    }

    pub(super) fn write(&self, out: &mut BitWriter) {
        out.put((self.hlit - 257) as u32, 5);
        out.put((self.hdist - 1) as u32, 5);
        out.put((self.hclen - 4) as u32, 4);
        for &symbol in &CODE_LENGTH_ORDER[..self.hclen] {
            out.put(u32::from(self.lengths[symbol]), 3);
        }
        let code = Code::from_lengths(&self.lengths);
        runs_of(&self.all[..self.hlit + self.hdist], |length, n| {
            self.runs.each(length, n, |symbol, extra, extra_bits| {
                out.put_code(code.symbol(usize::from(symbol)));
                out.put(u32::from(extra), u32::from(extra_bits));
            });
        });
    }
}
