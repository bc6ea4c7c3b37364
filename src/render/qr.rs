//! QR symbols for `HC1:` payloads (HCERT §4): alphanumeric mode, error correction level Q (25 %
//! recovery, as HCERT §4 recommends for printed and displayed codes), the smallest version that fits, a
//! 4-module quiet zone, black on white.
//!
//! Encoded here from the bit stream up rather than by a QR crate: the `qrcode` crate's automatic encoder
//! picks an "optimal" mix of segments (numeric runs for digits), which HCERT forbids (the payload MUST
//! be one alphanumeric segment), and its Reed–Solomon coding, module placement and penalty scoring cost
//! most of an issuance (issue 19, BENCHMARKS.md). Any of the eight data masks (ISO/IEC 18004:2015
//! §7.8.3) gives a valid symbol; the penalty only prefers the one that scans most reliably, and
//! [`penalty`] scores it exactly as the standard does, every rule with word operations on 64-bit words.
//! `tests/qr_reference.rs` checks every module against Project Nayuki's reference encoder.

use crate::error::{Error, Result};

/// Light modules around the symbol, as ISO/IEC 18004 requires.
pub const QUIET_ZONE_MODULES: u32 = 4;
/// Pixels per module in the PNG: 4 px keeps a version-25 symbol under 600 px and scans from a screen.
pub const PNG_MODULE_PX: u32 = 4;

/// An encoded QR symbol: which modules are dark, row by row, without the quiet zone.
///
/// Encoding is the costly step, so a symbol is encoded once and rendered as PNG, SVG and in the PDF.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QrSymbol {
    version: i16,
    width: usize,
    /// `width * width` modules, row-major; 1 = dark.
    modules: Vec<u8>,
}

impl QrSymbol {
    /// Modules per side, without the quiet zone.
    pub fn width(&self) -> usize {
        self.width
    }

    /// The QR version (1–40).
    pub fn version(&self) -> i16 {
        self.version
    }

    /// Whether the module in column `x`, row `y` (from the top left) is dark.
    pub fn is_dark(&self, x: usize, y: usize) -> bool {
        self.modules[y * self.width + x] == 1
    }

    /// The rows, top first; 1 = dark.
    pub fn rows(&self) -> std::slice::ChunksExact<'_, u8> {
        self.modules.chunks_exact(self.width)
    }

    /// The runs of dark modules of each row: `(row, first column, length)`, the shape the vector
    /// renderings (SVG, PDF) draw as one rectangle each.
    pub fn dark_runs(&self) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        self.rows().enumerate().flat_map(|(y, row)| {
            let mut x = 0;
            std::iter::from_fn(move || {
                while x < row.len() && row[x] == 0 {
                    x += 1;
                }
                if x == row.len() {
                    return None;
                }
                let start = x;
                while x < row.len() && row[x] == 1 {
                    x += 1;
                }
                Some((y, start, x - start))
            })
        })
    }
}

/// The QR alphanumeric character set (ISO/IEC 18004 table 5); base45 uses exactly these 45 characters.
/// A character's value, 0–44, or `None` outside the set.
fn alphanumeric_value(b: u8) -> Option<u16> {
    let value = match b {
        b'0'..=b'9' => b - b'0',
        b'A'..=b'Z' => b - b'A' + 10,
        b' ' => 36,
        b'$' => 37,
        b'%' => 38,
        b'*' => 39,
        b'+' => 40,
        b'-' => 41,
        b'.' => 42,
        b'/' => 43,
        b':' => 44,
        _ => return None,
    };
    Some(u16::from(value))
}

/// The smallest version whose data capacity at level Q holds `text` as one alphanumeric segment, and
/// that version's data codewords: the segment (ISO/IEC 18004 §7.4.4: mode, character count, 11 bits a
/// pair, 6 for an odd one), the terminator, and pad codewords (§7.4.9, §7.4.10).
fn data_codewords(text: &str) -> Result<(i16, Vec<u8>)> {
    let values = text
        .bytes()
        .enumerate()
        .map(|(pos, b)| {
            alphanumeric_value(b).ok_or_else(|| {
                Error::invalid(
                    "value",
                    None,
                    format!(
                        "QR payload has a character outside the QR alphanumeric set at byte {pos}; \
                         an HC1 payload is `HC1:` followed by base45 text"
                    ),
                )
            })
        })
        .collect::<Result<Vec<u16>>>()?;
    if values.is_empty() {
        return Err(Error::invalid("required", None, "QR payload is empty"));
    }
    let n = text.len();
    let count_bits = |v: i16| match v {
        1..=9 => 9,
        10..=26 => 11,
        _ => 13,
    };
    let segment_bits = |v: i16| 4 + count_bits(v) + 11 * (n / 2) + 6 * (n % 2);
    let too_long = || {
        Error::invalid(
            "too-long",
            None,
            format!(
                "QR payload of {n} characters does not fit a version-40 QR code at error correction Q"
            ),
        )
    };
    let version = (1..=40)
        .find(|&v| segment_bits(v) <= 8 * blocks(v).data_codewords())
        .ok_or_else(too_long)?;
    let capacity = blocks(version).data_codewords();
    let mut out = BitWriter::with_capacity(capacity);
    out.push(0b0010, 4);
    out.push(n as u64, count_bits(version));
    for pair in values.chunks(2) {
        match *pair {
            [first, second] => out.push(u64::from(first * 45 + second), 11),
            [last] => out.push(u64::from(last), 6),
            _ => {}
        }
    }
    // Up to four terminator zeros, zeros to the byte boundary, then 0xEC and 0x11 in turn.
    let bits = segment_bits(version);
    out.push(0, (8 * capacity - bits).min(4));
    out.push(0, out.pending_to_byte());
    let mut bytes = out.into_bytes();
    bytes.extend(
        [0xEC, 0x11]
            .into_iter()
            .cycle()
            .take(capacity - bytes.len()),
    );
    Ok((version, bytes))
}

/// Bits appended most significant first, whole bytes out.
struct BitWriter {
    bytes: Vec<u8>,
    bits: u64,
    pending: usize,
}

impl BitWriter {
    fn with_capacity(bytes: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(bytes),
            bits: 0,
            pending: 0,
        }
    }

    /// Appends the low `n` bits of `value` (n ≤ 32).
    fn push(&mut self, value: u64, n: usize) {
        self.bits = (self.bits << n) | (value & ((1 << n) - 1));
        self.pending += n;
        while self.pending >= 8 {
            self.pending -= 8;
            self.bytes.push((self.bits >> self.pending) as u8);
        }
    }

    /// Zero bits that complete the last byte.
    fn pending_to_byte(&self) -> usize {
        (8 - self.pending) % 8
    }

    /// The whole bytes written (any partial byte is dropped: complete it first).
    fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }
}

/// Level Q's error correction codewords per block and blocks, versions 1–40 (ISO/IEC 18004 table 9,
/// tabulated as in `qrcodegen`).
const Q_BLOCKS: [(u8, u8); 40] = [
    (13, 1),
    (22, 1),
    (18, 2),
    (26, 2),
    (18, 4),
    (24, 4),
    (18, 6),
    (22, 6),
    (20, 8),
    (24, 8),
    (28, 8),
    (26, 10),
    (24, 12),
    (20, 16),
    (30, 12),
    (24, 17),
    (28, 16),
    (28, 18),
    (26, 21),
    (30, 20),
    (28, 23),
    (30, 23),
    (30, 25),
    (30, 27),
    (30, 29),
    (28, 34),
    (30, 34),
    (30, 35),
    (30, 38),
    (30, 40),
    (30, 43),
    (30, 45),
    (30, 48),
    (30, 51),
    (30, 53),
    (30, 56),
    (30, 59),
    (30, 62),
    (30, 65),
    (30, 68),
];

/// How a version's codewords divide into blocks at level Q.
struct Blocks {
    /// Codewords of data and error correction (whole bytes of the modules left by the function patterns).
    total: usize,
    /// Error correction codewords of each block.
    ec: usize,
    count: usize,
}

/// The block structure of `version` (1–40) at level Q.
fn blocks(version: i16) -> Blocks {
    let v = version as usize;
    let (ec, count) = Q_BLOCKS[v - 1];
    // The modules outside the function patterns (`qrcodegen`'s getNumRawDataModules).
    let mut modules = (16 * v + 128) * v + 64;
    if v >= 2 {
        let alignments = v / 7 + 2;
        modules -= (25 * alignments - 10) * alignments - 55;
        if v >= 7 {
            modules -= 36;
        }
    }
    Blocks {
        total: modules / 8,
        ec: usize::from(ec),
        count: usize::from(count),
    }
}

impl Blocks {
    fn data_codewords(&self) -> usize {
        self.total - self.ec * self.count
    }
}

/// The codewords as placed (ISO/IEC 18004 §7.5, §7.6): `data` (all of `version`'s data codewords)
/// cut into blocks, the shorter first, then the blocks' bytes interleaved, then their Reed–Solomon
/// error correction codewords interleaved.
fn with_error_correction(version: i16, data: &[u8]) -> Result<Vec<u8>> {
    let blocks = blocks(version);
    if data.len() != blocks.data_codewords() {
        return Err(Error::Internal(format!(
            "{} data codewords for a version-{version} QR code, which holds {}",
            data.len(),
            blocks.data_codewords()
        )));
    }
    let table = rs_table(blocks.ec)?;
    let short_blocks = blocks.count - blocks.total % blocks.count;
    let short_data = blocks.total / blocks.count - blocks.ec;
    let mut out = vec![0u8; blocks.total];
    let (placed_data, placed_ec) = out.split_at_mut(data.len());
    let mut rest = data;
    for b in 0..blocks.count {
        let (block, after) = rest.split_at(short_data + usize::from(b >= short_blocks));
        rest = after;
        for (i, &byte) in block.iter().enumerate() {
            // A long block's last byte comes after every block's first `short_data`.
            let at = if i < short_data {
                i * blocks.count + b
            } else {
                short_data * blocks.count + b - short_blocks
            };
            placed_data[at] = byte;
        }
        let ec = rs_remainder(block, table);
        for (i, &byte) in ec[..blocks.ec].iter().enumerate() {
            placed_ec[i * blocks.count + b] = byte;
        }
    }
    Ok(out)
}

/// Powers of α = 2 in GF(2⁸) modulo x⁸ + x⁴ + x³ + x² + 1 (the QR code's field), and their logarithms.
const GF_EXP: [u8; 255] = {
    let mut table = [0u8; 255];
    let mut x: u16 = 1;
    let mut i = 0;
    while i < 255 {
        table[i] = x as u8;
        x <<= 1;
        if x & 0x100 != 0 {
            x ^= 0x11D;
        }
        i += 1;
    }
    table
};
const GF_LOG: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut i = 0;
    while i < 255 {
        table[GF_EXP[i] as usize] = i as u8;
        i += 1;
    }
    table
};

const fn gf_mul(a: u8, b: u8) -> u8 {
    if a == 0 || b == 0 {
        return 0;
    }
    GF_EXP[(GF_LOG[a as usize] as usize + GF_LOG[b as usize] as usize) % 255]
}

/// Room for the longest error correction code (30 codewords), a whole number of vector registers.
const RS_WIDTH: usize = 32;

/// The error correction lengths level Q uses, each with its [`RsTable`].
const RS_DEGREES: [usize; 8] = [13, 18, 20, 22, 24, 26, 28, 30];

/// For each value f of a remainder's leading term, f × the generator polynomial: what one data byte
/// XORs into the remainder, so a byte costs one table row rather than a multiplication per coefficient.
type RsTable = [[u8; RS_WIDTH]; 256];

/// Computed at compile time.
static RS_TABLES: [RsTable; RS_DEGREES.len()] = {
    let mut tables = [[[0u8; RS_WIDTH]; 256]; RS_DEGREES.len()];
    let mut t = 0;
    while t < RS_DEGREES.len() {
        let degree = RS_DEGREES[t];
        // The generator ∏ (x − αⁱ), i < degree, highest coefficient first, its leading 1 left out
        // (`qrcodegen`'s reedSolomonComputeDivisor).
        let mut divisor = [0u8; RS_WIDTH];
        divisor[degree - 1] = 1;
        let mut root = 1u8;
        let mut i = 0;
        while i < degree {
            let mut j = 0;
            while j < degree {
                divisor[j] = gf_mul(divisor[j], root);
                if j + 1 < degree {
                    divisor[j] ^= divisor[j + 1];
                }
                j += 1;
            }
            root = gf_mul(root, 2);
            i += 1;
        }
        let mut factor = 0;
        while factor < 256 {
            let mut j = 0;
            while j < degree {
                tables[t][factor][j] = gf_mul(divisor[j], factor as u8);
                j += 1;
            }
            factor += 1;
        }
        t += 1;
    }
    tables
};

fn rs_table(degree: usize) -> Result<&'static RsTable> {
    RS_DEGREES
        .iter()
        .position(|&d| d == degree)
        .map(|t| &RS_TABLES[t])
        .ok_or_else(|| Error::Internal(format!("no Reed–Solomon table of degree {degree}")))
}

/// The Reed–Solomon remainder of `block` divided by the generator whose `table` is given: the error
/// correction codewords, first the table's degree of them (the rest are 0).
fn rs_remainder(block: &[u8], table: &RsTable) -> [u8; RS_WIDTH] {
    let mut remainder = [0u8; RS_WIDTH];
    for &byte in block {
        let row = &table[usize::from(byte ^ remainder[0])];
        remainder.copy_within(1.., 0);
        remainder[RS_WIDTH - 1] = 0;
        for (r, t) in remainder.iter_mut().zip(row) {
            *r ^= t;
        }
    }
    remainder
}

/// The QR symbol of an `HC1:` string (or any QR-alphanumeric text).
pub fn encode(hc1: &str) -> Result<QrSymbol> {
    let (version, data) = data_codewords(hc1)?;
    let unmasked = Unmasked::draw(version, &with_error_correction(version, &data)?);
    let mut best: Option<(u32, BitGrid)> = None;
    for mask in 0..8 {
        let grid = unmasked.masked(mask);
        let score = penalty(&grid);
        // The first of equal scores, as the standard's order would pick.
        if best.as_ref().is_none_or(|(lowest, _)| score < *lowest) {
            best = Some((score, grid));
        }
    }
    let (_, grid) = best.ok_or_else(|| Error::Internal("no QR mask".into()))?;
    Ok(QrSymbol {
        version,
        width: grid.width,
        modules: grid.to_bytes(),
    })
}

/// Words of one line of modules (version 40: 177 modules).
const LINE_WORDS: usize = MAX_WIDTH.div_ceil(64);

/// One row or column of modules as bits: module `i` is bit `i % 64` of word `i / 64`; 1 = dark. Bits past
/// the symbol's width are 0.
type Line = [u64; LINE_WORDS];

/// A symbol as bit lines, by row and by column (columns scored as rows need no transposing per mask).
#[derive(Clone)]
struct BitGrid {
    width: usize,
    rows: Vec<Line>,
    cols: Vec<Line>,
}

impl BitGrid {
    /// A grid of `rows`, its columns transposed from them.
    fn from_rows(width: usize, rows: Vec<Line>) -> Self {
        let cols = transpose(&rows, width);
        Self { width, rows, cols }
    }

    fn set(&mut self, x: usize, y: usize, dark: u8) {
        let dark = u64::from(dark);
        let row = &mut self.rows[y][x / 64];
        *row = (*row & !(1 << (x % 64))) | (dark << (x % 64));
        let col = &mut self.cols[x][y / 64];
        *col = (*col & !(1 << (y % 64))) | (dark << (y % 64));
    }

    /// The modules row-major, one byte each (the shape [`QrSymbol`] keeps), eight at a time.
    fn to_bytes(&self) -> Vec<u8> {
        let width = self.width;
        // Room for the last row's whole eight-module groups; the excess is cut off.
        let mut modules = Vec::with_capacity(width * width + 8);
        for (y, row) in self.rows.iter().enumerate() {
            for x in (0..width).step_by(8) {
                let eight = (row[x / 64] >> (x % 64)) as u8;
                modules.extend_from_slice(&BYTE_PER_BIT[usize::from(eight)].to_le_bytes());
            }
            modules.truncate((y + 1) * width);
        }
        modules
    }
}

/// For each byte, its eight bits as eight bytes of 0 or 1, bit 0 in the lowest byte.
const BYTE_PER_BIT: [u64; 256] = {
    let mut table = [0u64; 256];
    let mut byte = 0;
    while byte < 256 {
        let mut i = 0;
        while i < 8 {
            table[byte] |= ((byte as u64 >> i) & 1) << (8 * i);
            i += 1;
        }
        byte += 1;
    }
    table
};

/// The columns of a square grid of `rows` (`width` modules a side): bit y of column x is bit x of row
/// y. Transposed 64 × 64 modules at a time, a few word operations each, rather than module by module.
fn transpose(rows: &[Line], width: usize) -> Vec<Line> {
    let mut cols = vec![[0; LINE_WORDS]; width];
    let words = width.div_ceil(64);
    for row_block in 0..words {
        for col_block in 0..words {
            let mut block = [0u64; 64];
            for (slot, row) in block.iter_mut().zip(&rows[64 * row_block..]) {
                *slot = row[col_block];
            }
            transpose_64(&mut block);
            for (col, &word) in cols[64 * col_block..].iter_mut().zip(&block) {
                col[row_block] = word;
            }
        }
    }
    cols
}

/// Transposes a 64 × 64 bit matrix in place (bit j of word i moves to bit i of word j) by swapping
/// ever smaller off-diagonal blocks, 32 words at a time (Hacker's Delight §7-3).
fn transpose_64(block: &mut [u64; 64]) {
    let mut half = 32;
    let mut low: u64 = 0x0000_0000_ffff_ffff;
    while half != 0 {
        let mut k = 0;
        while k < 64 {
            let swap = ((block[k] >> half) ^ block[k + half]) & low;
            block[k] ^= swap << half;
            block[k + half] ^= swap;
            k = (k + half + 1) & !half;
        }
        half >>= 1;
        low ^= low << half;
    }
}

/// A symbol before masking: each module's colour, and whether a data mask inverts it.
///
/// Drawn here rather than on the `qrcode` crate's `Canvas`, whose enum modules cost more to place and to
/// read back than the whole penalty scoring once that was done on words.
struct Unmasked {
    /// 1 = dark.
    colours: BitGrid,
    /// 1 = a data or remainder module, which the mask inverts; 0 = a function pattern module.
    maskable: BitGrid,
}

/// Every data mask repeats every 12 rows and every 12 columns (table 10: periods 2, 3, 4 and 6).
const MASK_PERIOD: usize = 12;

impl Unmasked {
    /// The function patterns of `version` and the `codewords` (data, then error correction, both
    /// interleaved) in their zigzag (ISO/IEC 18004 §6.3 and §7.7.3), placed as Project Nayuki's
    /// `qrcodegen` places them, on bit rows; the format information areas are reserved, to be drawn per
    /// mask.
    fn draw(version: i16, codewords: &[u8]) -> Self {
        let width = 17 + 4 * version as usize;
        let mut dark = vec![[0u64; LINE_WORDS]; width];
        let mut function = vec![[0u64; LINE_WORDS]; width];
        let mut set = |x: usize, y: usize, is_dark: bool| {
            let bit = 1u64 << (x % 64);
            function[y][x / 64] |= bit;
            let word = &mut dark[y][x / 64];
            *word = (*word & !bit) | (u64::from(is_dark) << (x % 64));
        };
        // Timing patterns.
        for i in 0..width {
            set(6, i, i % 2 == 0);
            set(i, 6, i % 2 == 0);
        }
        // Finder patterns with their separators: dark rings at Chebyshev distance 0, 1 and 3 from the
        // centre, light at 2 and 4.
        let ring = |dx: isize, dy: isize| dx.abs().max(dy.abs());
        for (cx, cy) in [(3, 3), (width - 4, 3), (3, width - 4)] {
            for dy in -4..=4isize {
                for dx in -4..=4isize {
                    let (x, y) = (cx.wrapping_add_signed(dx), cy.wrapping_add_signed(dy));
                    if x < width && y < width {
                        set(x, y, !matches!(ring(dx, dy), 2 | 4));
                    }
                }
            }
        }
        // Alignment patterns, on every pair of positions except the three finder corners.
        let positions = alignment_positions(version, width);
        let last = positions.len().saturating_sub(1);
        for (i, &cy) in positions.iter().enumerate() {
            for (j, &cx) in positions.iter().enumerate() {
                if matches!((i, j), (0, 0)) || (i == 0 && j == last) || (i == last && j == 0) {
                    continue;
                }
                for dy in -2..=2isize {
                    for dx in -2..=2isize {
                        set(
                            cx.wrapping_add_signed(dx),
                            cy.wrapping_add_signed(dy),
                            ring(dx, dy) != 1,
                        );
                    }
                }
            }
        }
        draw_format_information(width, 0, |x, y, _| set(x, y, false));
        // Version information (§7.10), from version 7: 6 bits and a BCH(18,6) remainder, twice.
        if version >= 7 {
            let v = version as u32;
            let mut remainder = v;
            for _ in 0..12 {
                remainder = (remainder << 1) ^ ((remainder >> 11) * 0x1F25);
            }
            let bits = (v << 12) | remainder;
            for i in 0..18 {
                let is_dark = (bits >> i) & 1 == 1;
                let (a, b) = (width - 11 + i % 3, i / 3);
                set(a, b, is_dark);
                set(b, a, is_dark);
            }
        }
        // The codewords, most significant bit first, up and down two-column strips from the right,
        // skipping the vertical timing column; modules left over (remainder bits) stay light.
        let mut bits = CodewordBits::new(codewords);
        let mut right = width - 1;
        loop {
            if right == 6 {
                right = 5;
            }
            let upward = (right + 1) & 2 == 0;
            let columns = [right, right - 1].map(|x| (x / 64, x % 64));
            let rows = function.iter().zip(dark.iter_mut());
            if upward {
                for (function, dark) in rows.rev() {
                    place_row_of_strip(function, dark, columns, &mut bits);
                }
            } else {
                for (function, dark) in rows {
                    place_row_of_strip(function, dark, columns, &mut bits);
                }
            }
            if right < 3 {
                break;
            }
            right -= 2;
        }
        let inside: Line = first_bits(width);
        let maskable = function
            .iter()
            .map(|f| std::array::from_fn(|w| !f[w] & inside[w]))
            .collect();
        Self {
            colours: BitGrid::from_rows(width, dark),
            maskable: BitGrid::from_rows(width, maskable),
        }
    }

    /// The modules with data mask `mask` (0–7) applied and its format information drawn.
    fn masked(&self, mask: u8) -> BitGrid {
        // ISO/IEC 18004 table 10: whether the mask inverts the module in column x, row y.
        let inverts: fn(usize, usize) -> bool = match mask {
            0 => |x, y| (x + y).is_multiple_of(2),
            1 => |_, y| y.is_multiple_of(2),
            2 => |x, _| x.is_multiple_of(3),
            3 => |x, y| (x + y).is_multiple_of(3),
            4 => |x, y| (y / 2 + x / 3).is_multiple_of(2),
            5 => |x, y| (x * y) % 2 + (x * y) % 3 == 0,
            6 => |x, y| ((x * y) % 2 + (x * y) % 3).is_multiple_of(2),
            _ => |x, y| ((x + y) % 2 + (x * y) % 3).is_multiple_of(2),
        };
        // The pattern of the first MASK_PERIOD rows and columns, each repeated along its line.
        let row_patterns: [Line; MASK_PERIOD] =
            std::array::from_fn(|y| periodic(|x| inverts(x, y)));
        let col_patterns: [Line; MASK_PERIOD] =
            std::array::from_fn(|x| periodic(|y| inverts(x, y)));
        let lines = |colours: &[Line], maskable: &[Line], patterns: &[Line; MASK_PERIOD]| {
            colours
                .iter()
                .zip(maskable)
                .zip(patterns.iter().cycle())
                .map(|((c, m), p)| std::array::from_fn(|w| c[w] ^ (m[w] & p[w])))
                .collect()
        };
        let mut grid = BitGrid {
            width: self.colours.width,
            rows: lines(&self.colours.rows, &self.maskable.rows, &row_patterns),
            cols: lines(&self.colours.cols, &self.maskable.cols, &col_patterns),
        };
        let width = grid.width;
        draw_format_information(width, mask, |x, y, dark| grid.set(x, y, dark));
        grid
    }
}

/// The line whose module i is `inverts(i % MASK_PERIOD)`, with bits past any symbol's width set too
/// (the maskable lines they are combined with have those clear).
fn periodic(inverts: impl Fn(usize) -> bool) -> Line {
    let mut repeated = (0..MASK_PERIOD).fold(0u128, |bits, i| bits | (u128::from(inverts(i)) << i));
    // 12, 24, 48, 96 and then all 128 bits.
    for shift in [12, 24, 48, 96] {
        repeated |= repeated << shift;
    }
    // Word w starts at module 64w, which is module 64w mod 12 of the period.
    std::array::from_fn(|w| (repeated >> (64 * w % MASK_PERIOD)) as u64)
}

/// One row of a two-column strip of codeword modules: the next bit in each of `columns` (word and bit
/// of the line), right then left, unless it is a function module.
#[inline(always)]
fn place_row_of_strip(
    function: &Line,
    dark: &mut Line,
    columns: [(usize, usize); 2],
    bits: &mut CodewordBits,
) {
    for (word, shift) in columns {
        if (function[word] >> shift) & 1 == 0 {
            dark[word] |= bits.next() << shift;
        }
    }
}

/// The bits of codewords, most significant first, read 64 at a time; 0 after the last.
struct CodewordBits<'a> {
    rest: &'a [u8],
    buffer: u64,
    left: u32,
}

impl<'a> CodewordBits<'a> {
    fn new(codewords: &'a [u8]) -> Self {
        Self {
            rest: codewords,
            buffer: 0,
            left: 0,
        }
    }

    /// The next bit, 0 or 1.
    #[inline(always)]
    fn next(&mut self) -> u64 {
        if self.left == 0 {
            let mut eight = [0u8; 8];
            let read = self.rest.len().min(8);
            eight[..read].copy_from_slice(&self.rest[..read]);
            self.rest = &self.rest[read..];
            self.buffer = u64::from_be_bytes(eight);
            self.left = 64;
        }
        let bit = self.buffer >> 63;
        self.buffer <<= 1;
        self.left -= 1;
        bit
    }
}

/// Draws both copies of the 15-bit format information (ISO/IEC 18004 §7.9: level Q and the mask,
/// BCH(15,5)-protected, XOR 101010000010010), placed as in Project Nayuki's `qrcodegen`.
fn draw_format_information(width: usize, mask: u8, mut set: impl FnMut(usize, usize, u8)) {
    const LEVEL_Q: u32 = 0b11;
    let data = (LEVEL_Q << 3) | u32::from(mask);
    let mut remainder = data;
    for _ in 0..10 {
        remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537);
    }
    let bits = ((data << 10) | remainder) ^ 0x5412;
    let bit = |i: usize| u8::from((bits >> i) & 1 == 1);
    // Around the top-left finder pattern.
    for i in 0..6 {
        set(8, i, bit(i));
    }
    set(8, 7, bit(6));
    set(8, 8, bit(7));
    set(7, 8, bit(8));
    for i in 9..15 {
        set(14 - i, 8, bit(i));
    }
    // Beside the top-right and bottom-left finder patterns.
    for i in 0..8 {
        set(width - 1 - i, 8, bit(i));
    }
    for i in 8..15 {
        set(8, width - 15 + i, bit(i));
    }
    // The dark module, always dark.
    set(8, width - 8, 1);
}

/// Centres of the alignment patterns along each axis (ISO/IEC 18004 annex E): none in version 1; else
/// 6, then evenly spaced (an even step) back from `width` − 7, as `qrcodegen` computes them.
fn alignment_positions(version: i16, width: usize) -> Vec<usize> {
    if version == 1 {
        return Vec::new();
    }
    let count = version as usize / 7 + 2;
    let step = (version as usize * 8 + count * 3 + 5) / (count * 4 - 4) * 2;
    let mut positions: Vec<usize> = (0..count - 1).map(|i| width - 7 - i * step).collect();
    positions.push(6);
    positions.reverse();
    positions
}

/// The penalty score of a masked symbol (ISO/IEC 18004:2015 §7.8.3.1, table 11): the lower, the
/// easier to scan.
///
/// The rules are read as Project Nayuki's reference encoder reads them (a finder-like pattern is
/// 1:1:3:1:1 at any module scale, with a light run four times that wide on one side; the area outside
/// the symbol is light), and `tests/qr_reference.rs` checks that we choose the mask it chooses.
fn penalty(grid: &BitGrid) -> u32 {
    // The runs along the rows are scored from the columns' words, and those along the columns from the
    // rows' words: see [`runs_penalty`].
    runs_penalty(&grid.cols, grid.width)
        + runs_penalty(&grid.rows, grid.width)
        + block_penalty(grid)
        + balance_penalty(grid)
}

/// Most modules a line has (version 40).
const MAX_WIDTH: usize = 177;

/// The first `n` bits of every word of a line set, the rest clear.
fn first_bits<const W: usize>(n: usize) -> [u64; W] {
    std::array::from_fn(|w| match n.saturating_sub(w * 64) {
        0 => 0,
        k if k >= 64 => u64::MAX,
        k => (1u64 << k) - 1,
    })
}

/// Light modules [`runs_penalty`] reads before a line's first module, and after its last.
const LIGHT_BEFORE: usize = 4;
const LIGHT_AFTER: usize = 10;

/// N1 and N3 of the `size` parallel lines of a `size` × `size` symbol whose modules at position `i`
/// are the bits of `across[i]` (line `j` is bit `j`): the rows' runs from the columns' words, and the
/// columns' runs from the rows'. Every rule is then a few word operations on neighbouring words,
/// scoring 64 lines at once with no shifts (scoring each line on its own words took two thirds of the
/// encoding).
///
/// N1: a run of 5 + i modules of one colour scores 3 + i. A run of L ≥ 5 holds L − 4 windows of five
/// equal modules, so its score L − 2 is the number of such windows plus 2 for the window that starts it.
///
/// N3: 40 for each finder-like pattern, dark-light-dark-light-dark in 1:1:3:1:1 at any module scale n,
/// with light n modules wide on one side and 4n on the other (both counted when both are 4n wide), the
/// area outside the line light. At scale 1 the pattern is a fixed 12-module string, matched at every
/// position. A larger scale needs a dark run of exactly 3n ≥ 6 modules, which few lines have; those
/// runs are checked one by one.
fn runs_penalty(across: &[Line], size: usize) -> u32 {
    let mut score = 0;
    for w in 0..size.div_ceil(64) {
        // Module i of the 64 lines of word `w` at `dark[LIGHT_BEFORE + i]`, light beyond the line.
        let mut dark = [0u64; LIGHT_BEFORE + MAX_WIDTH + LIGHT_AFTER];
        for (slot, line) in dark[LIGHT_BEFORE..].iter_mut().zip(&across[..size]) {
            *slot = line[w];
        }
        let dark = &dark[..LIGHT_BEFORE + size + LIGHT_AFTER];
        let lines = (size - 64 * w).min(64);
        let valid = u64::MAX >> (64 - lines);
        score += runs_penalty_of_64(dark, size, valid);
    }
    score
}

/// [`runs_penalty`] of up to 64 lines (`valid` has their bits set), module `i` of each at
/// `dark[LIGHT_BEFORE + i]`, `size` modules long, light before and after.
fn runs_penalty_of_64(dark: &[u64], size: usize, valid: u64) -> u32 {
    let module = &dark[LIGHT_BEFORE..LIGHT_BEFORE + size];
    // N1. `same[i]`: module i has the colour of module i − 1 (never at 0, where a run starts).
    let mut same = [0u64; MAX_WIDTH];
    for (i, pair) in module.windows(2).enumerate() {
        same[i + 1] = !(pair[0] ^ pair[1]) & valid;
    }
    let mut windows = 0;
    let mut starts = 0;
    // Windows of five at p = 0 ..= size − 5: modules p to p + 4 are one colour.
    for (p, next) in same[..size].windows(5).enumerate() {
        let five = next[1] & next[2] & next[3] & next[4];
        windows += five.count_ones();
        starts += (five & !same[p]).count_ones();
    }
    let n1 = windows + 2 * starts;

    // N3. Window p holds modules p − 4 to p + 10.
    let mut patterns = 0;
    for (p, m) in dark.windows(LIGHT_BEFORE + 1 + LIGHT_AFTER).enumerate() {
        // At scale 1: modules p − 1 to p + 7 are light, dark, light, dark ×3, light, dark, light.
        let middle = m[6] & m[7] & m[8];
        let core = m[4] & middle & m[10] & !(m[3] | m[5] | m[9] | m[11]);
        // Rare (one line in several hundred at any position), so the counting is skipped otherwise.
        if core != 0 {
            let light_before = !(m[0] | m[1] | m[2]);
            let light_after = !(m[12] | m[13] | m[14]);
            patterns += (core & light_before).count_ones() + (core & light_after).count_ones();
        }
        // At scale n ≥ 2 the middle dark run is exactly 3n ≥ 6 long and has n ≥ 2 light modules
        // before it: bit j, such a run may start at p in line j.
        let mut six_dark = !(m[2] | m[3]) & m[4] & m[5] & middle & m[9];
        while six_dark != 0 {
            let line = six_dark.trailing_zeros();
            six_dark &= six_dark - 1;
            let is_dark = |i: isize| {
                usize::try_from(i)
                    .ok()
                    .and_then(|i| module.get(i))
                    .is_some_and(|word| (word >> line) & 1 == 1)
            };
            patterns += scaled_finder_like_patterns(is_dark, size, p);
        }
    }
    n1 + 40 * patterns
}

/// Finder-like patterns (0, 1 or 2) of a line of `size` modules (`is_dark`, light outside) whose
/// middle dark run starts at `start`, at scale n = its length / 3.
fn scaled_finder_like_patterns(is_dark: impl Fn(isize) -> bool, size: usize, start: usize) -> u32 {
    let size = size as isize;
    let all = |from: isize, len: isize, want_dark: bool| {
        (from..from + len).all(|i| is_dark(i) == want_dark)
    };
    let start = start as isize;
    let middle = (start..size).take_while(|&i| is_dark(i)).count() as isize;
    if middle % 3 != 0 {
        return 0;
    }
    let n = middle / 3;
    // The core: dark n, light n, dark 3n (at `start`), light n, dark n, bounded by light.
    let (first, end) = (start - 2 * n, start + 5 * n);
    let core = !is_dark(first - 1)
        && all(first, n, true)
        && all(first + n, n, false)
        && all(start + 3 * n, n, false)
        && all(start + 4 * n, n, true)
        && !is_dark(end);
    if !core {
        return 0;
    }
    let light_before = |len| all(first - len, len, false);
    let light_after = |len| all(end, len, false);
    u32::from(light_before(4 * n) && light_after(n))
        + u32::from(light_after(4 * n) && light_before(n))
}
/// N2: 3 for each 2×2 block of one colour (overlapping blocks count each), 64 blocks at a time: the
/// block at column x of two rows is one colour when each row's module x equals the other's, module x + 1
/// too, and the upper row's x equals its x + 1.
fn block_penalty(grid: &BitGrid) -> u32 {
    // A block starts at columns 0 to width − 2.
    let starts: Line = first_bits(grid.width - 1);
    // Bit x of the result: bit x + 1 of `line`.
    let next = |line: &Line| -> Line {
        std::array::from_fn(|w| (line[w] >> 1) | line.get(w + 1).map_or(0, |n| n << 63))
    };
    let mut blocks = 0;
    for pair in grid.rows.windows(2) {
        let (upper, lower) = (&pair[0], &pair[1]);
        let same: Line = std::array::from_fn(|w| !(upper[w] ^ lower[w]));
        let (same_next, upper_next) = (next(&same), next(upper));
        for w in 0..LINE_WORDS {
            let one_colour = same[w] & same_next[w] & !(upper[w] ^ upper_next[w]) & starts[w];
            blocks += one_colour.count_ones();
        }
    }
    3 * blocks
}

/// N4: 10 × the smallest k for which the dark share lies within 50 % ± (5 + 5k) %.
fn balance_penalty(grid: &BitGrid) -> u32 {
    let total = (grid.width * grid.width) as u64;
    let dark: u64 = grid
        .rows
        .iter()
        .flatten()
        .map(|w| u64::from(w.count_ones()))
        .sum();
    let k = (dark * 20)
        .abs_diff(total * 10)
        .div_ceil(total)
        .saturating_sub(1);
    10 * k as u32
}

/// PNG of the symbol: 1-bit greyscale, [`PNG_MODULE_PX`] px per module, 4-module quiet zone.
pub fn png(hc1: &str) -> Result<Vec<u8>> {
    png_of(&encode(hc1)?)
}

/// A symbol as 1-bit pixels, quiet zone included: rows top first, each padded to whole bytes, bit 1 =
/// white (as both PNG greyscale and PDF `/DeviceGray` read it).
pub struct Bitmap {
    /// Pixels per side.
    pub side: usize,
    pub pixels: Vec<u8>,
}

/// The symbol at `scale` pixels per module, with its [`QUIET_ZONE_MODULES`] quiet zone.
pub fn bitmap(symbol: &QrSymbol, scale: usize) -> Bitmap {
    let side_modules = symbol.width + 2 * QUIET_ZONE_MODULES as usize;
    let side_px = side_modules * scale;
    let row_bytes = side_px.div_ceil(8);
    // All white (1); the quiet zone's rows and the padding past the last pixel stay so.
    let mut pixels = vec![0xffu8; row_bytes * side_px];
    let qz = QUIET_ZONE_MODULES as usize;
    // Each module row's first pixel row is written whole through a bit accumulator, eight modules at a
    // time where a table spreads them to their pixels (module by module through the dark runs, this was
    // most of a PNG's cost), then copied to the others.
    let spread = (scale <= MAX_SPREAD_SCALE).then(|| spread_table(scale));
    for (y, modules) in symbol.rows().enumerate() {
        let first = (qz + y) * scale * row_bytes;
        let mut row = PixelRow::new(&mut pixels[first..first + row_bytes]);
        row.push(true, qz * scale);
        let mut spread_up_to = 0;
        if let Some(table) = &spread {
            spread_up_to = modules.len() / 8 * 8;
            for eight in modules[..spread_up_to].chunks_exact(8) {
                let light = !pack_modules(eight);
                row.push_bits(table[usize::from(light)], (8 * scale) as u32);
            }
        }
        for &module in &modules[spread_up_to..] {
            row.push(module == 0, scale);
        }
        row.push(true, qz * scale);
        row.finish();
        for copy in 1..scale {
            pixels.copy_within(first..first + row_bytes, first + copy * row_bytes);
        }
    }
    Bitmap {
        side: side_px,
        pixels,
    }
}

/// The largest scale whose eight modules (8 × scale pixels) fit one push of [`PixelRow::push_bits`].
const MAX_SPREAD_SCALE: usize = 7;

/// Eight modules (one byte each, 0 or 1 = dark) as one byte, the first module in the most significant
/// bit: the multiplication moves byte k's bit to bit 63 − k, and no two partial products carry into
/// each other.
fn pack_modules(eight: &[u8]) -> u8 {
    let mut bytes = [0u8; 8];
    bytes.copy_from_slice(eight);
    let modules = u64::from_le_bytes(bytes) & 0x0101_0101_0101_0101;
    (modules.wrapping_mul(0x8040_2010_0804_0201) >> 56) as u8
}

/// For each byte of eight module bits, those bits each repeated `scale` times (scale ≤ 7).
fn spread_table(scale: usize) -> Vec<u64> {
    let ones = (1u64 << scale) - 1;
    (0..256u64)
        .map(|byte| {
            (0..8).fold(0, |bits, i| {
                (bits << scale) | (((byte >> (7 - i)) & 1) * ones)
            })
        })
        .collect()
}

/// Writes one row of 1-bit pixels, most significant bit first, through a 128-bit accumulator emptied
/// eight bytes at a time (a byte at a time, this was most of a bitmap's cost).
struct PixelRow<'a> {
    out: &'a mut [u8],
    next: usize,
    /// The last `pending` bits are not written yet (those above them are).
    bits: u128,
    pending: u32,
}

impl<'a> PixelRow<'a> {
    fn new(out: &'a mut [u8]) -> Self {
        Self {
            out,
            next: 0,
            bits: 0,
            pending: 0,
        }
    }

    /// Appends the low `n` bits of `bits` (n ≤ 64), most significant first.
    fn push_bits(&mut self, bits: u64, n: u32) {
        self.bits = (self.bits << n) | u128::from(bits);
        self.pending += n;
        if self.pending >= 64 {
            self.pending -= 64;
            let word = (self.bits >> self.pending) as u64;
            self.out[self.next..self.next + 8].copy_from_slice(&word.to_be_bytes());
            self.next += 8;
        }
    }

    /// Appends `count` pixels, white (1) or dark (0).
    fn push(&mut self, white: bool, mut count: usize) {
        while count > 0 {
            let n = count.min(32) as u32;
            self.push_bits(u64::from(white) * ((1u64 << n) - 1), n);
            count -= n as usize;
        }
    }

    /// Writes the pending bits, the last partial byte padded with white.
    fn finish(mut self) {
        while self.pending >= 8 {
            self.pending -= 8;
            self.out[self.next] = (self.bits >> self.pending) as u8;
            self.next += 1;
        }
        if self.pending > 0 {
            let pad = 8 - self.pending;
            self.out[self.next] = ((self.bits << pad) | ((1 << pad) - 1)) as u8;
        }
    }
}

/// PNG of an encoded symbol: one bit per pixel, [`PNG_MODULE_PX`] px per module.
///
/// Written here rather than by the `png` crate because the image's structure allows a far smaller and
/// cheaper encoding than a general compressor finds quickly (issue 19: the PNG is stored twice per
/// certificate). Every pixel row is stored unfiltered; a row equal to the one above (three in four, and
/// the quiet zone) becomes an LZ77 match of it, and the other rows are Huffman-coded literals from the
/// few byte values two modules make, all in one dynamic-Huffman deflate block. That is smaller than zlib
/// level 9 and cheaper than the `png` crate's fastest mode. A bitmap outside its
/// limits (none at [`PNG_MODULE_PX`]) still goes through the `png` crate.
pub fn png_of(symbol: &QrSymbol) -> Result<Vec<u8>> {
    let bitmap = bitmap(symbol, PNG_MODULE_PX as usize);
    let side =
        u32::try_from(bitmap.side).map_err(|_| Error::Internal("QR PNG too large".into()))?;
    match png_deflated(&bitmap, side) {
        Some(png) => Ok(png),
        None => png_by_crate(&bitmap, side),
    }
}

/// The PNG of `bitmap` written by the `png` crate: each row filtered "Up" and compressed by fdeflate's
/// fastest mode.
fn png_by_crate(bitmap: &Bitmap, side: u32) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(8192);
    let mut encoder = png::Encoder::new(&mut out, side, side);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_depth(png::BitDepth::One);
    encoder.set_compression(png::Compression::Fastest);
    let failed = |e: png::EncodingError| Error::Internal(format!("PNG encoding failed: {e}"));
    let mut writer = encoder.write_header().map_err(failed)?;
    writer.write_image_data(&bitmap.pixels).map_err(failed)?;
    writer.finish().map_err(failed)?;
    Ok(out)
}

/// The PNG of a square 1-bit greyscale `bitmap` of `side` pixels with its zlib stream written here
/// (PNG 1.2, RFC 1950, RFC 1951), or `None` if the bitmap is outside what this encoder handles (rows
/// shorter than a match's 3 bytes or longer than its 32 KiB window, or Huffman codes that would exceed
/// deflate's length limits, which only more distinct byte values than a QR bitmap has could cause).
fn png_deflated(bitmap: &Bitmap, side: u32) -> Option<Vec<u8>> {
    let zlib = deflate::zlib_of_rows(&bitmap.pixels, bitmap.side.div_ceil(8))?;
    let mut out = Vec::with_capacity(zlib.len() + 64);
    out.extend_from_slice(b"\x89PNG\r\n\x1a\n");
    let mut ihdr = [0u8; 13];
    ihdr[..4].copy_from_slice(&side.to_be_bytes());
    ihdr[4..8].copy_from_slice(&side.to_be_bytes());
    // Bit depth 1, colour type 0 (greyscale); deflate, adaptive filtering (type 0 on every row), no
    // interlace.
    ihdr[8..].copy_from_slice(&[1, 0, 0, 0, 0]);
    push_chunk(&mut out, b"IHDR", &ihdr);
    push_chunk(&mut out, b"IDAT", &zlib);
    push_chunk(&mut out, b"IEND", &[]);
    Some(out)
}

/// One PNG chunk: length, type, data, CRC-32 of type and data.
fn push_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(&(data.len() as u32).to_be_bytes());
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let mut crc = flate2::Crc::new();
    crc.update(kind);
    crc.update(data);
    out.extend_from_slice(&crc.sum().to_be_bytes());
}

// The PNG rows' zlib stream (`zlib_of_rows`) is written by the crate's one deflate writer.
use crate::deflate;

/// SVG of the symbol: one module is one user unit, so the `viewBox` spans the symbol and its quiet
/// zone and the image scales to any size without blurring.
pub fn svg(hc1: &str) -> Result<String> {
    Ok(svg_of(&encode(hc1)?))
}

/// SVG of an encoded symbol: a white square and one path of dark runs.
pub fn svg_of(symbol: &QrSymbol) -> String {
    use std::fmt::Write as _;
    let qz = QUIET_ZONE_MODULES as usize;
    let side = symbol.width + 2 * qz;
    let mut svg = String::with_capacity(symbol.width * symbol.width * 3);
    let _ = write!(
        svg,
        "<?xml version=\"1.0\" standalone=\"yes\"?>\n\
         <svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{side}\" height=\"{side}\" \
         viewBox=\"0 0 {side} {side}\" shape-rendering=\"crispEdges\">\
         <rect x=\"0\" y=\"0\" width=\"{side}\" height=\"{side}\" fill=\"#ffffff\"/>\
         <path fill=\"#000000\" d=\""
    );
    // Written without `write!`: its formatting machinery was 20 % of the `issue` command's CPU.
    let mut digits = [0; 20];
    for (y, x, len) in symbol.dark_runs() {
        svg.push('M');
        svg.push_str(super::decimal((qz + x) as u64, &mut digits));
        svg.push(' ');
        svg.push_str(super::decimal((qz + y) as u64, &mut digits));
        svg.push('h');
        svg.push_str(super::decimal(len as u64, &mut digits));
        svg.push_str("v1h-");
        svg.push_str(super::decimal(len as u64, &mut digits));
        svg.push('z');
    }
    svg.push_str("\"/></svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use qrcode::bits::Bits;
    use qrcode::{ec, Color, EcLevel, QrCode, Version};
    use std::path::Path;

    /// The `qrcode` crate's data bit stream of `text`: one alphanumeric segment, terminator and padding
    /// at level Q, in the smallest version that holds it (the reference for [`data_codewords`]).
    fn qrcode_bits(text: &str) -> Bits {
        (1..=40)
            .find_map(|v| {
                let mut bits = Bits::new(Version::Normal(v));
                bits.push_alphanumeric_data(text.as_bytes()).ok()?;
                bits.push_terminator(EcLevel::Q).ok()?;
                Some(bits)
            })
            .expect("fits version 40")
    }

    /// Module `i` of a line.
    fn bit(line: &Line, i: usize) -> u8 {
        ((line[i / 64] >> (i % 64)) & 1) as u8
    }

    /// Texts of 1 to 2,420 characters (the most version 40-Q holds), finely enough that every version
    /// is the smallest for some of them.
    fn texts_of_every_version() -> impl Iterator<Item = String> {
        let alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:";
        (1..=2420)
            .step_by(19)
            .chain([2419, 2420])
            .map(move |n| alphabet.chars().cycle().skip(n % 45).take(n).collect())
    }

    /// Our data codewords and error correction against the `qrcode` crate's, for every version: on
    /// real bit streams and on random data codewords (every leading term of the remainder occurs).
    #[test]
    fn codewords_equal_the_qrcode_crates_for_every_version() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7_5);
        let mut versions = std::collections::BTreeSet::new();
        for text in texts_of_every_version() {
            let (version, data) = data_codewords(&text).unwrap();
            let theirs = qrcode_bits(&text);
            assert_eq!(
                Version::Normal(version),
                theirs.version(),
                "{} chars",
                text.len()
            );
            let theirs = theirs.into_bytes();
            assert!(data == theirs, "data codewords of {} chars", text.len());
            versions.insert(version);
        }
        assert_eq!(versions.len(), 40, "every version: {versions:?}");
        for version in 1..=40 {
            for case in 0..4 {
                let data: Vec<u8> = (0..blocks(version).data_codewords())
                    .map(|_| if case == 0 { 0xff } else { rng.gen() })
                    .collect();
                let (their_data, their_ec) =
                    ec::construct_codewords(&data, Version::Normal(version), EcLevel::Q).unwrap();
                let ours = with_error_correction(version, &data).unwrap();
                assert!(
                    ours == [their_data, their_ec].concat(),
                    "version {version}, case {case}"
                );
            }
            let short = vec![0; blocks(version).data_codewords() - 1];
            assert!(with_error_correction(version, &short).is_err());
        }
    }

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
            let header = png::Decoder::new(std::io::Cursor::new(&png))
                .read_info()
                .unwrap();
            assert_eq!(
                (header.info().color_type, header.info().bit_depth),
                (png::ColorType::Grayscale, png::BitDepth::One),
                "1-bit greyscale"
            );
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
        let (version, data) = data_codewords(&text).unwrap();
        // Mode indicator 0010 = alphanumeric.
        assert_eq!(data[0] >> 4, 0b0010);
        let optimal = QrCode::with_error_correction_level(&text, EcLevel::Q).unwrap();
        let ours = encode(&text).unwrap();
        assert_eq!(ours.version(), version);
        assert!(ours.width() as i16 >= optimal.version().width());
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
        assert_eq!(Version::Normal(ours.version()), theirs.version());
    }

    /// Our placement and masking against the `qrcode` crate's canvas, for every mask and every version.
    #[test]
    fn our_placement_and_masking_equal_the_qrcode_crates_for_every_version_and_mask() {
        use qrcode::canvas::{Canvas, MaskPattern};
        let patterns = [
            MaskPattern::Checkerboard,
            MaskPattern::HorizontalLines,
            MaskPattern::VerticalLines,
            MaskPattern::DiagonalLines,
            MaskPattern::LargeCheckerboard,
            MaskPattern::Fields,
            MaskPattern::Diamonds,
            MaskPattern::Meadow,
        ];
        let mut versions = std::collections::BTreeSet::new();
        for text in texts_of_every_version() {
            let bits = qrcode_bits(&text);
            let version = bits.version();
            let Version::Normal(number) = version else {
                unreachable!("normal versions only")
            };
            versions.insert(number);
            let (data, ec) =
                ec::construct_codewords(&bits.into_bytes(), version, EcLevel::Q).unwrap();
            let mut canvas = Canvas::new(version, EcLevel::Q);
            canvas.draw_all_functional_patterns();
            canvas.draw_data(&data, &ec);
            let unmasked = Unmasked::draw(number, &[data.as_slice(), &ec].concat());
            for (mask, pattern) in patterns.into_iter().enumerate() {
                let mut theirs = canvas.clone();
                theirs.apply_mask(pattern);
                let theirs: Vec<u8> = theirs
                    .into_colors()
                    .into_iter()
                    .map(|c| u8::from(c == Color::Dark))
                    .collect();
                assert!(
                    unmasked.masked(mask as u8).to_bytes() == theirs,
                    "version {number}, mask {mask}"
                );
            }
        }
        assert_eq!(versions.len(), 40, "every version: {versions:?}");
    }

    /// N1 + N3 of one line as Project Nayuki's `qrcodegen` computes them (`getPenaltyScore`, its row
    /// loop with `finderPenaltyAddHistory`, `finderPenaltyCountPatterns` and
    /// `finderPenaltyTerminateAndCount`), module by module: the reference the word version must equal.
    /// Also returns how many finder-like patterns it found at scale 1 and at larger scales.
    fn nayuki_line_penalty(modules: &[bool]) -> (u32, [u32; 2]) {
        let size = modules.len() as u32;
        let mut history = [0u32; 7];
        let add = |run: u32, history: &mut [u32; 7]| {
            let run = if history[0] == 0 { run + size } else { run };
            history.copy_within(0..6, 1);
            history[0] = run;
        };
        let mut found = [0u32; 2];
        let mut count = |h: &[u32; 7]| {
            let n = h[1];
            let core = n > 0 && h[2] == n && h[3] == n * 3 && h[4] == n && h[5] == n;
            let patterns = u32::from(core && h[0] >= n * 4 && h[6] >= n)
                + u32::from(core && h[6] >= n * 4 && h[0] >= n);
            found[usize::from(n > 1)] += patterns;
            patterns
        };
        let (mut score, mut colour, mut run) = (0, false, 0);
        for &module in modules {
            if module == colour {
                run += 1;
                score += match run {
                    5 => 3,
                    r if r > 5 => 1,
                    _ => 0,
                };
            } else {
                add(run, &mut history);
                if !colour {
                    score += 40 * count(&history);
                }
                colour = module;
                run = 1;
            }
        }
        if colour {
            add(run, &mut history);
            run = 0;
        }
        add(run + size, &mut history);
        score += 40 * count(&history);
        (score, found)
    }

    #[test]
    fn runs_penalty_equals_nayukis_on_random_and_finder_like_lines() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(18004);
        // Finder-like patterns at scales 1 to 6, to plant in lines.
        let finder = |n: usize| -> Vec<bool> {
            [(true, 1), (false, 1), (true, 3), (false, 1), (true, 1)]
                .iter()
                .flat_map(|&(dark, k)| std::iter::repeat_n(dark, k * n))
                .collect()
        };
        // Patterns the reference found, at scale 1 and at larger scales.
        let mut found = [0; 2];
        for case in 0..400 {
            // Square grids of every width up to version 40's (and narrower, down to one module).
            let size = if case < MAX_WIDTH {
                case + 1
            } else {
                rng.gen_range(1..=MAX_WIDTH)
            };
            let mut lines = Vec::with_capacity(size);
            for line in 0..size {
                // Light-heavy, dark-heavy and even lines, so long runs of both colours occur.
                let dark_share = [0.5, 0.2, 0.8, 0.05][(case + line) % 4];
                let mut modules: Vec<bool> = (0..size).map(|_| rng.gen_bool(dark_share)).collect();
                if line % 3 == 0 {
                    let pattern = finder(rng.gen_range(1..=6));
                    if pattern.len() <= size {
                        let at = rng.gen_range(0..=size - pattern.len());
                        modules[at..at + pattern.len()].copy_from_slice(&pattern);
                        // Sometimes clear a margin on one side, so the 4n light run exists.
                        let margin = rng.gen_range(0..=4 * pattern.len() / 7);
                        let before = at.saturating_sub(margin)..at;
                        let after = at + pattern.len()..(at + pattern.len() + margin).min(size);
                        for i in if rng.gen_bool(0.5) { before } else { after } {
                            modules[i] = false;
                        }
                    }
                }
                lines.push(modules);
            }
            let mut expected = 0;
            for modules in &lines {
                let (score, patterns) = nayuki_line_penalty(modules);
                expected += score;
                found = [found[0] + patterns[0], found[1] + patterns[1]];
            }
            // Across: word i holds module i of every line.
            let mut across = vec![[0u64; LINE_WORDS]; size];
            for (j, modules) in lines.iter().enumerate() {
                for (i, &dark) in modules.iter().enumerate() {
                    across[i][j / 64] |= u64::from(dark) << (j % 64);
                }
            }
            assert_eq!(
                runs_penalty(&across, size),
                expected,
                "case {case}, size {size}"
            );
        }
        assert!(
            found[0] > 1_000 && found[1] > 1_000,
            "the cases include finder-like patterns at every scale: {found:?}"
        );
    }

    #[test]
    fn row_and_column_bit_lines_agree_for_every_version_and_mask() {
        let mut versions = std::collections::BTreeSet::new();
        for text in texts_of_every_version() {
            let (version, data) = data_codewords(&text).unwrap();
            if !versions.insert(version) {
                continue;
            }
            let unmasked = Unmasked::draw(version, &with_error_correction(version, &data).unwrap());
            let grids = (0..8).map(|mask| unmasked.masked(mask));
            for grid in [unmasked.colours.clone(), unmasked.maskable.clone()]
                .into_iter()
                .chain(grids)
            {
                let w = grid.width;
                for x in 0..w {
                    for y in 0..w {
                        assert_eq!(
                            bit(&grid.rows[y], x),
                            bit(&grid.cols[x], y),
                            "version {version}"
                        );
                    }
                }
                // Nothing past the symbol's edge: the penalty reads whole words.
                for line in grid.rows.iter().chain(&grid.cols) {
                    assert!(
                        (w..LINE_WORDS * 64).all(|i| bit(line, i) == 0),
                        "version {version}"
                    );
                }
            }
        }
        assert_eq!(versions.len(), 40);
    }

    /// Payloads whose symbols are of every version, 1 to 40 (as in the placement test above).
    fn symbols_of_every_version() -> Vec<QrSymbol> {
        let mut symbols: Vec<QrSymbol> = Vec::new();
        for text in texts_of_every_version() {
            let symbol = encode(&text).unwrap();
            if symbols
                .last()
                .is_none_or(|s| s.version() != symbol.version())
            {
                symbols.push(symbol);
            }
        }
        assert_eq!(symbols.len(), 40);
        symbols
    }

    /// The IDAT data of a PNG (there is one IDAT chunk), after checking every chunk's CRC.
    fn idat_of(png: &[u8]) -> Vec<u8> {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
        let mut rest = &png[8..];
        let mut idat = Vec::new();
        while !rest.is_empty() {
            let len = u32::from_be_bytes(rest[..4].try_into().unwrap()) as usize;
            let (kind, data) = (&rest[4..8], &rest[8..8 + len]);
            let crc = u32::from_be_bytes(rest[8 + len..12 + len].try_into().unwrap());
            let mut expected = flate2::Crc::new();
            expected.update(&rest[4..8 + len]);
            assert_eq!(
                crc,
                expected.sum(),
                "CRC of {}",
                String::from_utf8_lossy(kind)
            );
            if kind == b"IDAT" {
                idat.extend_from_slice(data);
            }
            rest = &rest[12 + len..];
        }
        idat
    }

    fn inflate(zlib: &[u8]) -> Vec<u8> {
        use std::io::Read as _;
        let mut out = Vec::new();
        flate2::read::ZlibDecoder::new(zlib)
            .read_to_end(&mut out)
            .unwrap();
        out
    }

    /// Adler-32 byte by byte, as RFC 1950 §9 defines it.
    fn adler32(data: &[u8]) -> u32 {
        let (mut a, mut b) = (1u32, 0u32);
        for &byte in data {
            a = (a + u32::from(byte)) % 65_521;
            b = (b + a) % 65_521;
        }
        (b << 16) | a
    }

    /// Each row with filter type 0 before it: the data the zlib stream must hold.
    fn filtered(pixels: &[u8], row_bytes: usize) -> Vec<u8> {
        pixels
            .chunks(row_bytes)
            .flat_map(|row| std::iter::once(0).chain(row.iter().copied()))
            .collect()
    }

    #[test]
    fn png_holds_exactly_the_bitmap_and_scans_for_every_version() {
        let mut sizes = Vec::new();
        for symbol in symbols_of_every_version() {
            let v = symbol.version();
            let expected = bitmap(&symbol, PNG_MODULE_PX as usize);
            let row_bytes = expected.side.div_ceil(8);
            let png = png_of(&symbol).unwrap();

            // The zlib stream inflates to the unfiltered rows, with a matching Adler-32.
            let idat = idat_of(&png);
            let rows = inflate(&idat);
            assert!(rows == filtered(&expected.pixels, row_bytes), "version {v}");
            let adler = u32::from_be_bytes(idat[idat.len() - 4..].try_into().unwrap());
            assert_eq!(adler, adler32(&rows), "version {v}");

            // The png crate reads a 1-bit greyscale image of exactly the bitmap's rows.
            let mut reader = png::Decoder::new(std::io::Cursor::new(&png))
                .read_info()
                .unwrap();
            let mut pixels = vec![0; reader.output_buffer_size().unwrap()];
            let frame = reader.next_frame(&mut pixels).unwrap();
            assert_eq!(
                (frame.color_type, frame.bit_depth),
                (png::ColorType::Grayscale, png::BitDepth::One),
            );
            assert_eq!(frame.width as usize, expected.side);
            assert_eq!(frame.height as usize, expected.side);
            assert!(pixels == expected.pixels, "version {v}");

            // The image crate sees the same pixels: white where the bitmap's bit is 1.
            let luma = image::load_from_memory(&png).unwrap().to_luma8();
            for (x, y, pixel) in luma.enumerate_pixels() {
                let (x, y) = (x as usize, y as usize);
                let white = expected.pixels[y * row_bytes + x / 8] & (0x80 >> (x % 8)) != 0;
                assert_eq!(
                    pixel.0[0],
                    if white { 255 } else { 0 },
                    "version {v} ({x}, {y})"
                );
            }

            // And a QR reader decodes it, at the symbol's version.
            let (meta, _) = decode_png(&png);
            assert_eq!(meta.version.0, v as usize);

            // The `png` crate's encoding (the fallback) holds the same pixels, in more bytes.
            let side = expected.side as u32;
            let theirs = png_by_crate(&expected, side).unwrap();
            let mut reader = png::Decoder::new(std::io::Cursor::new(&theirs))
                .read_info()
                .unwrap();
            let mut their_pixels = vec![0; reader.output_buffer_size().unwrap()];
            reader.next_frame(&mut their_pixels).unwrap();
            assert!(their_pixels == expected.pixels, "version {v}");
            assert!(png.len() < theirs.len(), "version {v}");
            sizes.push((v, png.len(), theirs.len()));
        }
        println!("(version, bytes, png crate's bytes): {sizes:?}");
    }

    #[test]
    fn deflated_rows_inflate_back_for_any_bytes_and_repeats() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(1951);
        for case in 0..300 {
            let row_bytes = rng.gen_range(2..=120);
            // Few distinct byte values (as in a QR bitmap) up to all 256.
            let values: Vec<u8> = (0..[2, 4, 16, 256][case % 4]).map(|_| rng.gen()).collect();
            let mut pixels: Vec<u8> = Vec::new();
            for _ in 0..rng.gen_range(1..=60) {
                // Rows repeated up to 200 times, so repeats span several 258-byte matches.
                let repeats = if rng.gen_bool(0.3) {
                    rng.gen_range(1..=200)
                } else {
                    1
                };
                let row: Vec<u8> = (0..row_bytes)
                    .map(|_| values[rng.gen_range(0..values.len())])
                    .collect();
                for _ in 0..repeats {
                    pixels.extend_from_slice(&row);
                }
            }
            match deflate::zlib_of_rows(&pixels, row_bytes) {
                Some(zlib) => {
                    let rows = inflate(&zlib);
                    assert!(rows == filtered(&pixels, row_bytes), "case {case}");
                    let adler = u32::from_be_bytes(zlib[zlib.len() - 4..].try_into().unwrap());
                    assert_eq!(adler, adler32(&rows), "case {case}");
                }
                // Only too short a row or too many distinct values for a 15-bit code.
                None => assert!(row_bytes < 2 || values.len() > 16, "case {case}"),
            }
        }
        // Rows of 1 byte cannot be matched (3 bytes at least); rows past the 32 KiB window neither.
        assert!(deflate::zlib_of_rows(&[0xff; 10], 1).is_none());
        assert!(deflate::zlib_of_rows(&vec![0; 32_768 * 2], 32_768).is_none());
    }

    #[test]
    fn the_bitmap_is_the_symbol_with_its_quiet_zone() {
        let code = encode(&real_hc1()[1]).unwrap();
        let qz = QUIET_ZONE_MODULES as usize;
        // Scales whose module edges fall inside, at and across byte boundaries.
        for scale in 1..=9 {
            let bitmap = bitmap(&code, scale);
            assert_eq!(bitmap.side, (code.width() + 2 * qz) * scale);
            let row_bytes = bitmap.side.div_ceil(8);
            assert_eq!(bitmap.pixels.len(), row_bytes * bitmap.side);
            for y in 0..bitmap.side {
                for x in 0..row_bytes * 8 {
                    let white = bitmap.pixels[y * row_bytes + x / 8] & (0x80 >> (x % 8)) != 0;
                    let (mx, my) = (x / scale, y / scale);
                    let inside = (qz..qz + code.width()).contains(&mx)
                        && (qz..qz + code.width()).contains(&my);
                    // Padding past the last pixel stays white (1) too.
                    let dark = inside && code.is_dark(mx - qz, my - qz);
                    assert_eq!(white, !dark, "scale {scale}, pixel ({x}, {y})");
                }
            }
        }
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

        // The path, read back, paints exactly the dark modules.
        let path = svg
            .split(" d=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let qz = QUIET_ZONE_MODULES as usize;
        let mut painted = vec![0u8; code.width() * code.width()];
        for run in path.split('M').skip(1) {
            let numbers: Vec<usize> = run
                .split(|c: char| !c.is_ascii_digit())
                .filter(|n| !n.is_empty())
                .map(|n| n.parse().unwrap())
                .collect();
            let [x, y, len, one, len_back] = numbers[..] else {
                panic!("run {run:?}")
            };
            assert_eq!((one, len_back), (1, len), "run {run:?}");
            for px in x..x + len {
                painted[(y - qz) * code.width() + px - qz] = 1;
            }
        }
        assert!(painted == code.rows().flatten().copied().collect::<Vec<u8>>());
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
