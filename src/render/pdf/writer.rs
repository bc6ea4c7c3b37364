//! The PDF file itself, written directly: one page, its content stream, the embedded fonts and the
//! document information. The file is small and always has the same shape, so it is written in one
//! pass into one buffer, with numbers formatted to the precision the page needs (no general float
//! formatting, no intermediate object tree).
//!
//! Fonts are `/Type0` with `/Identity-H` encoding (a 2-byte code per glyph: its id in the embedded
//! subset) over a `/CIDFontType2` descendant with `/CIDToGIDMap /Identity`, and a `/ToUnicode` map from
//! each glyph to the text of its cluster, so text extraction gives back what was typed.
//!
//! Each QR code is one image XObject (`/Q1`, `/Q2`): a 1-bit stencil mask, one pixel per module, quiet
//! zone included, module for module the symbol (see [`qr_image`] for why this form), on a white square.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use super::deflate::deflate;
use super::fonts::{Embedded, FontKey};
use super::{qr, Item};
use crate::error::{Error, Result};

/// One font of the page: its resource name is `/F{index + 1}`.
pub(super) struct PageFont {
    pub key: FontKey,
    pub embedded: Arc<Embedded>,
}

/// Appends the decimal digits of `n`.
fn int(out: &mut Vec<u8>, n: u64) {
    // Most numbers of the page are QR module coordinates, below 200.
    static SMALL: OnceLock<Vec<Vec<u8>>> = OnceLock::new();
    if n < 256 {
        let small = SMALL.get_or_init(|| (0..256u32).map(|i| i.to_string().into_bytes()).collect());
        if let Some(digits) = small.get(n as usize) {
            out.extend_from_slice(digits);
            return;
        }
    }
    out.extend_from_slice(crate::render::decimal(n, &mut [0; 20]).as_bytes());
}

/// Appends `v` rounded to `decimals` places (at most 4), without trailing zeros: `12.5`, `-3`, `0.35`.
fn num(out: &mut Vec<u8>, v: f32, decimals: u32) {
    let scale = 10u64.pow(decimals.min(4));
    let scaled = (f64::from(v) * scale as f64).round();
    if scaled < 0.0 {
        out.push(b'-');
    }
    let n = scaled.abs() as u64;
    int(out, n / scale);
    let mut frac = n % scale;
    if frac != 0 {
        out.push(b'.');
        let mut div = scale / 10;
        while frac != 0 {
            out.push(b'0' + (frac / div) as u8);
            frac %= div;
            div /= 10;
        }
    }
}

/// Positions (points) to a thousandth of a point: far below what any printer or screen resolves.
fn pos(out: &mut Vec<u8>, v: f32) {
    num(out, v, 3);
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

fn hex4(out: &mut Vec<u8>, v: u16) {
    for shift in [12, 8, 4, 0] {
        out.push(HEX[usize::from((v >> shift) & 0xF)]);
    }
}

/// The page content stream (uncompressed).
pub(super) fn page_content(items: &[Item<'_>], fonts: &[PageFont]) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(16 * 1024);
    let mut qrs = 0;
    for item in items {
        match item {
            Item::Text { line, x, y, grey } => text(&mut out, line, *x, *y, *grey, fonts)?,
            Item::Rule { x1, x2, y } => {
                out.extend_from_slice(b"0.6 G\n0.6 w\n");
                pos(&mut out, *x1);
                out.push(b' ');
                pos(&mut out, *y);
                out.extend_from_slice(b" m\n");
                pos(&mut out, *x2);
                out.push(b' ');
                pos(&mut out, *y);
                out.extend_from_slice(b" l\nS\n");
            }
            Item::Qr { x, y, side, .. } => {
                qrs += 1;
                qr_image_use(&mut out, qrs, *x, *y, *side);
            }
        }
    }
    Ok(out)
}

/// One line of text. Glyphs on one baseline in one font go into one `TJ`, with a kerning number
/// wherever the shaped position differs from where the previous glyph's width leaves the pen; a glyph
/// raised or lowered (a mark), or in another font, starts a new run at its own text matrix.
fn text(
    out: &mut Vec<u8>,
    line: &super::text::Line,
    x: f32,
    y: f32,
    grey: f32,
    fonts: &[PageFont],
) -> Result<()> {
    if line.glyphs.is_empty() {
        return Ok(());
    }
    let size = line.size;
    out.extend_from_slice(b"BT\n");
    num(out, grey, 3);
    out.extend_from_slice(b" g\n");
    struct Run {
        font: FontKey,
        y: f32,
        x0: f32,
        /// Where the pen is, in thousandths of the font size from `x0`.
        pen: f64,
        in_hex: bool,
    }
    let mut run: Option<Run> = None;
    let mut current_font = None;
    for g in &line.glyphs {
        let (index, font) = fonts
            .iter()
            .enumerate()
            .find(|(_, f)| f.key == g.font)
            .ok_or_else(|| Error::Internal("glyph of a font that was not embedded".into()))?;
        let embedded = &font.embedded;
        let (gx, gy) = (x + g.x, y + g.y);
        let continues = run.as_ref().is_some_and(|r| r.font == g.font && r.y == gy);
        if !continues {
            if let Some(r) = run.take() {
                out.extend_from_slice(if r.in_hex { b">]TJ\n" } else { b"]TJ\n" });
            }
            if current_font != Some(g.font) {
                out.extend_from_slice(b"/F");
                int(out, index as u64 + 1);
                out.push(b' ');
                num(out, size, 3);
                out.extend_from_slice(b" Tf\n");
                current_font = Some(g.font);
            }
            out.extend_from_slice(b"1 0 0 1 ");
            pos(out, gx);
            out.push(b' ');
            pos(out, gy);
            out.extend_from_slice(b" Tm\n[");
            run = Some(Run {
                font: g.font,
                y: gy,
                x0: gx,
                pen: 0.0,
                in_hex: false,
            });
        }
        let Some(r) = run.as_mut() else {
            continue;
        };
        // TJ numbers move the pen left by n/1000 of the font size.
        let wanted = f64::from(gx - r.x0) * 1000.0 / f64::from(size);
        let kern = ((r.pen - wanted) * 100.0).round() / 100.0;
        if kern != 0.0 {
            if r.in_hex {
                out.push(b'>');
                r.in_hex = false;
            }
            num(out, kern as f32, 2);
            r.pen -= kern;
        }
        if !r.in_hex {
            out.push(b'<');
            r.in_hex = true;
        }
        let gid = embedded.gid(g.gid);
        hex4(out, gid);
        r.pen += f64::from(embedded.widths.get(usize::from(gid)).copied().unwrap_or(0));
    }
    if let Some(r) = run {
        out.extend_from_slice(if r.in_hex { b">]TJ\n" } else { b"]TJ\n" });
    }
    out.extend_from_slice(b"ET\n");
    Ok(())
}

/// Draws the `n`th QR image (`/Q<n>`) on a white square of `side` points at (`x`, `y`), its lower left
/// corner as placed, on the pixel grid where it was snapped to one. The mask paints the dark modules in
/// the fill colour (black) and leaves the rest of the square white.
fn qr_image_use(out: &mut Vec<u8>, n: usize, x: f32, y: f32, side: f32) {
    out.extend_from_slice(b"q\n");
    num(out, side, 4);
    out.extend_from_slice(b" 0 0 ");
    num(out, side, 4);
    out.push(b' ');
    num(out, x, 4);
    out.push(b' ');
    num(out, y, 4);
    out.extend_from_slice(b" cm\n1 g\n0 0 1 1 re\nf\n0 g\n/Q");
    int(out, n as u64);
    out.extend_from_slice(b" Do\nQ\n");
}

/// The QR symbols of the page, in the order they are drawn (`/Q1`, `/Q2`).
fn qr_symbols<'a>(items: &'a [Item<'a>]) -> impl Iterator<Item = &'a qr::QrSymbol> {
    items.iter().filter_map(|item| match item {
        Item::Qr { code, .. } => Some(*code),
        _ => None,
    })
}

/// The image XObject of a QR symbol (dictionary entries, samples): a stencil mask (`/ImageMask`, sample
/// 0 = a dark module, painted), one pixel per module, the quiet zone included; about 2 kB where its
/// ~1,500 module rectangles took over ten. Not compressed: deflate gains 6 % on a QR code's samples, and
/// resetting the compressor alone costs more instructions than the rest of the image.
///
/// Why this form (each tried; rendered with poppler at 150, 200 and 300 dpi, scanned with zbar and
/// rqrr): poppler paints a stencil mask enlarged sharp, one device pixel taking one module's colour,
/// at any module size. A 1-bit `/DeviceGray` image it smooths (bilinear) whenever it enlarges it less than
/// 4×, whatever its `/Interpolate`, and shrinks it by averaging: at one pixel per module rqrr fails at
/// 150 dpi, and at 2–12 pixels per module every choice fails at one of the three resolutions. The
/// `/BitsPerComponent 1`, optional for a mask, is written for pypdf (the independent checker's PDF
/// reader), which refuses a mask without it ("unrecognized image mode"). `/Interpolate false` asks other
/// viewers not to smooth.
fn qr_image(code: &qr::QrSymbol) -> (Vec<u8>, Vec<u8>) {
    let bitmap = qr::bitmap(code, 1);
    let mut dict = b"/Type/XObject/Subtype/Image/Width ".to_vec();
    int(&mut dict, bitmap.side as u64);
    dict.extend_from_slice(b"/Height ");
    int(&mut dict, bitmap.side as u64);
    dict.extend_from_slice(b"/ImageMask true/BitsPerComponent 1/Interpolate false");
    (dict, bitmap.pixels)
}

/// A PDF text string: literal when it is printable ASCII, else UTF-16BE with a byte order mark.
fn text_string(out: &mut Vec<u8>, s: &str) {
    if s.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        out.push(b'(');
        for b in s.bytes() {
            if matches!(b, b'(' | b')' | b'\\') {
                out.push(b'\\');
            }
            out.push(b);
        }
        out.push(b')');
    } else {
        out.extend_from_slice(b"<FEFF");
        for unit in s.encode_utf16() {
            hex4(out, unit);
        }
        out.push(b'>');
    }
}

/// The document information: nothing personal, the same for every holder.
pub(super) struct Info<'a> {
    pub title: &'a str,
    pub subject: &'a str,
    /// `D:YYYYMMDDHHmmSS+00'00'`, used as creation and modification date.
    pub date: String,
}

/// The `/ToUnicode` CMap of one font: each glyph the page draws, to the text it stands for.
fn to_unicode(mut map: Vec<(u16, &str)>) -> Vec<u8> {
    map.sort_by_key(|m| m.0);
    map.dedup_by_key(|m| m.0);
    let mut out = Vec::with_capacity(300 + map.len() * 16);
    out.extend_from_slice(
        b"/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n\
          /CIDSystemInfo<</Registry(Adobe)/Ordering(UCS)/Supplement 0>>def\n\
          /CMapName/Adobe-Identity-UCS def\n/CMapType 2 def\n\
          1 begincodespacerange\n<0000><FFFF>\nendcodespacerange\n",
    );
    for chunk in map.chunks(100) {
        int(&mut out, chunk.len() as u64);
        out.extend_from_slice(b" beginbfchar\n");
        for (gid, text) in chunk {
            out.push(b'<');
            hex4(&mut out, *gid);
            out.extend_from_slice(b"><");
            for unit in text.encode_utf16() {
                hex4(&mut out, unit);
            }
            out.extend_from_slice(b">\n");
        }
        out.extend_from_slice(b"endbfchar\n");
    }
    out.extend_from_slice(b"endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    out
}

/// Distinct `/ToUnicode` maps kept compressed at most; the cache starts again when it is full.
const TO_UNICODE_ENTRIES: usize = 256;

/// A `/ToUnicode` map compressed, once per distinct map: documents printing the same glyphs (every
/// Latin-only certificate, labels and ASCII values) share it, and compressing even a small stream costs
/// a compressor reset, several hundred thousand instructions. Keyed by the map itself, so a hit is exact.
fn compressed_to_unicode(map: Vec<u8>) -> Result<Arc<Vec<u8>>> {
    /// Uncompressed map → compressed.
    type Cache = HashMap<Vec<u8>, Arc<Vec<u8>>>;
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    let poisoned = || Error::Internal("ToUnicode cache poisoned".into());
    if let Some(hit) = cache.lock().map_err(|_| poisoned())?.get(&map) {
        return Ok(Arc::clone(hit));
    }
    let compressed = Arc::new(deflate(&map)?);
    let mut cache = cache.lock().map_err(|_| poisoned())?;
    if cache.len() >= TO_UNICODE_ENTRIES {
        cache.clear();
    }
    cache.insert(map, Arc::clone(&compressed));
    Ok(compressed)
}

/// The file being written: the bytes so far and where each object starts.
struct File {
    out: Vec<u8>,
    offsets: Vec<usize>,
}

impl File {
    fn begin(&mut self, id: usize) {
        // Objects are written in id order, starting at 1.
        self.offsets.push(self.out.len());
        debug_assert_eq!(self.offsets.len(), id);
        int(&mut self.out, id as u64);
        self.out.extend_from_slice(b" 0 obj\n");
    }

    fn end(&mut self) {
        self.out.extend_from_slice(b"\nendobj\n");
    }

    fn reference(&mut self, id: usize) {
        int(&mut self.out, id as u64);
        self.out.extend_from_slice(b" 0 R");
    }

    /// A stream object whose data is already compressed; `dict` goes inside its dictionary.
    fn flate_stream(&mut self, id: usize, dict: &[u8], data: &[u8]) {
        let mut flate = dict.to_vec();
        flate.extend_from_slice(b"/Filter/FlateDecode");
        self.stream(id, &flate, data);
    }

    /// A stream object; `dict` goes inside its dictionary.
    fn stream(&mut self, id: usize, dict: &[u8], data: &[u8]) {
        self.begin(id);
        self.out.extend_from_slice(b"<<");
        self.out.extend_from_slice(dict);
        self.out.extend_from_slice(b"/Length ");
        int(&mut self.out, data.len() as u64);
        self.out.extend_from_slice(b">>\nstream\n");
        self.out.extend_from_slice(data);
        self.out.extend_from_slice(b"\nendstream");
        self.end();
    }
}

/// Per font, five objects follow the fixed ones: `/Type0` font, `/CIDFontType2` descendant, font
/// descriptor, font program, `/ToUnicode` map. The QR images come last.
const FIXED_OBJECTS: usize = 5;
const OBJECTS_PER_FONT: usize = 5;

/// The whole file: catalog, pages, page, content, information, fonts; cross-reference table; trailer.
pub(super) fn document(
    (width, height): (f32, f32),
    items: &[Item<'_>],
    fonts: &[PageFont],
    info: &Info<'_>,
) -> Result<Vec<u8>> {
    let content = deflate(&page_content(items, fonts)?)?;
    let images: Vec<_> = qr_symbols(items).map(qr_image).collect();
    // The images follow the fonts.
    let first_image = FIXED_OBJECTS + 1 + OBJECTS_PER_FONT * fonts.len();
    let mut f = File {
        out: Vec::with_capacity(
            content.len()
                + fonts
                    .iter()
                    .map(|f| f.embedded.font_file.len() + 2048)
                    .sum::<usize>()
                + images.iter().map(|i| i.1.len() + 256).sum::<usize>()
                + 4096,
        ),
        offsets: Vec::with_capacity(FIXED_OBJECTS + OBJECTS_PER_FONT * fonts.len() + images.len()),
    };
    f.out.extend_from_slice(b"%PDF-1.3\n%\xbb\xad\xc0\xde\n");

    f.begin(1);
    f.out
        .extend_from_slice(b"<</Type/Catalog/Pages 2 0 R/PageLayout/OneColumn/PageMode/UseNone>>");
    f.end();
    f.begin(2);
    f.out
        .extend_from_slice(b"<</Type/Pages/Kids[3 0 R]/Count 1>>");
    f.end();

    f.begin(3);
    // Boxes in points, exactly: a round trip through millimetres would make Letter 792.001 pt high.
    let mut b = Vec::with_capacity(32);
    b.extend_from_slice(b"[0 0 ");
    num(&mut b, width, 4);
    b.push(b' ');
    num(&mut b, height, 4);
    b.push(b']');
    f.out
        .extend_from_slice(b"<</Type/Page/Parent 2 0 R/MediaBox");
    f.out.extend_from_slice(&b);
    f.out.extend_from_slice(b"/CropBox");
    f.out.extend_from_slice(&b);
    f.out.extend_from_slice(b"/TrimBox");
    f.out.extend_from_slice(&b);
    f.out.extend_from_slice(b"/Resources<</Font<<");
    for i in 0..fonts.len() {
        f.out.extend_from_slice(b"/F");
        int(&mut f.out, i as u64 + 1);
        f.out.push(b' ');
        f.reference(FIXED_OBJECTS + 1 + i * OBJECTS_PER_FONT);
    }
    f.out.extend_from_slice(b">>/XObject<<");
    for i in 0..images.len() {
        f.out.extend_from_slice(b"/Q");
        int(&mut f.out, i as u64 + 1);
        f.out.push(b' ');
        f.reference(first_image + i);
    }
    f.out.extend_from_slice(b">>>>/Contents 4 0 R>>");
    f.end();

    f.flate_stream(4, b"", &content);

    f.begin(5);
    f.out.extend_from_slice(b"<</Title");
    text_string(&mut f.out, info.title);
    f.out.extend_from_slice(b"/Subject");
    text_string(&mut f.out, info.subject);
    f.out.extend_from_slice(
        b"/Keywords(DDCC:VS)/Creator(ddcc-mediator)/Producer(ddcc-mediator)/CreationDate",
    );
    text_string(&mut f.out, &info.date);
    f.out.extend_from_slice(b"/ModDate");
    text_string(&mut f.out, &info.date);
    f.out.extend_from_slice(b">>");
    f.end();

    for (i, font) in fonts.iter().enumerate() {
        let e = &font.embedded;
        let id = FIXED_OBJECTS + 1 + i * OBJECTS_PER_FONT;
        f.begin(id);
        f.out
            .extend_from_slice(b"<</Type/Font/Subtype/Type0/BaseFont/");
        f.out.extend_from_slice(e.base_font.as_bytes());
        f.out
            .extend_from_slice(b"/Encoding/Identity-H/DescendantFonts[");
        f.reference(id + 1);
        f.out.extend_from_slice(b"]/ToUnicode ");
        f.reference(id + 4);
        f.out.extend_from_slice(b">>");
        f.end();

        f.begin(id + 1);
        f.out
            .extend_from_slice(b"<</Type/Font/Subtype/CIDFontType2/BaseFont/");
        f.out.extend_from_slice(e.base_font.as_bytes());
        f.out.extend_from_slice(
            b"/CIDSystemInfo<</Registry(Adobe)/Ordering(Identity)/Supplement 0>>/FontDescriptor ",
        );
        f.reference(id + 2);
        f.out.extend_from_slice(b"/CIDToGIDMap/Identity/DW 1000/W");
        f.out.extend_from_slice(e.w_array.as_bytes());
        f.out.extend_from_slice(b">>");
        f.end();

        f.begin(id + 2);
        f.out.extend_from_slice(b"<<");
        f.out.extend_from_slice(e.descriptor.as_bytes());
        f.out.extend_from_slice(b"/FontFile2 ");
        f.reference(id + 3);
        f.out.extend_from_slice(b">>");
        f.end();

        let mut length1 = b"/Length1 ".to_vec();
        int(&mut length1, e.length1 as u64);
        f.flate_stream(id + 3, &length1, &e.font_file);

        let map: Vec<(u16, &str)> = items
            .iter()
            .filter_map(|item| match item {
                Item::Text { line, .. } => Some(&line.glyphs),
                _ => None,
            })
            .flatten()
            .filter(|g| g.font == font.key && !g.text.is_empty())
            .map(|g| (e.gid(g.gid), g.text.as_str()))
            .collect();
        f.flate_stream(id + 4, b"", &compressed_to_unicode(to_unicode(map))?);
    }
    for (i, (dict, data)) in images.iter().enumerate() {
        f.stream(first_image + i, dict, data);
    }

    let xref = f.out.len();
    let count = f.offsets.len() + 1;
    f.out.extend_from_slice(b"xref\n0 ");
    int(&mut f.out, count as u64);
    f.out.extend_from_slice(b"\n0000000000 65535 f \n");
    for i in 0..f.offsets.len() {
        let offset = f.offsets[i];
        let at = f.out.len();
        f.out.extend_from_slice(b"0000000000 00000 n \n");
        // Right-aligned, zero-padded to ten digits.
        let mut digits = Vec::with_capacity(10);
        int(&mut digits, offset as u64);
        let end = at + 10;
        f.out[end - digits.len()..end].copy_from_slice(&digits);
    }
    // A file identifier from the compressed page content and QR images: identical documents get
    // identical files, and it says nothing the page does not.
    let id = images.iter().fold(fingerprint(&content), |h, (_, data)| {
        let g = fingerprint(data);
        [
            (h[0] ^ g[0]).wrapping_mul(0x0100_0000_01b3),
            (h[1] ^ g[1]).wrapping_mul(0x9e37_79b9_7f4a_7c15),
        ]
    });
    f.out.extend_from_slice(b"trailer\n<</Size ");
    int(&mut f.out, count as u64);
    f.out.extend_from_slice(b"/Root 1 0 R/Info 5 0 R/ID[<");
    for _ in 0..2 {
        for v in id {
            for shift in (0..64).step_by(4).rev() {
                f.out.push(HEX[((v >> shift) & 0xF) as usize]);
            }
        }
        f.out.extend_from_slice(b"><");
    }
    f.out.truncate(f.out.len() - 1);
    f.out.extend_from_slice(b"]>>\nstartxref\n");
    int(&mut f.out, xref as u64);
    f.out.extend_from_slice(b"\n%%EOF\n");
    Ok(f.out)
}

/// 128 bits of a quick, fixed hash (two FNV-1a-style lanes over 8-byte words).
fn fingerprint(data: &[u8]) -> [u64; 2] {
    let mut h = [0xcbf2_9ce4_8422_2325u64, 0x8422_2325_cbf2_9ce4u64];
    let mut words = data.chunks_exact(8);
    for w in &mut words {
        let mut v = [0u8; 8];
        v.copy_from_slice(w);
        let v = u64::from_le_bytes(v);
        h[0] = (h[0] ^ v).wrapping_mul(0x0100_0000_01b3);
        h[1] = (h[1] ^ v.rotate_left(29)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    for &b in words.remainder() {
        h[0] = (h[0] ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        h[1] = (h[1] ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_short_and_exact_to_their_precision() {
        let cases: [(f32, u32, &str); 8] = [
            (0.0, 3, "0"),
            (12.5, 3, "12.5"),
            (-3.0, 3, "-3"),
            (0.35, 3, "0.35"),
            (51.023624, 3, "51.024"),
            (-0.0004, 3, "0"),
            (-0.004, 2, "0"),
            (595.2756, 4, "595.2756"),
        ];
        for (v, d, want) in cases {
            let mut out = Vec::new();
            num(&mut out, v, d);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v} to {d} places");
        }
    }
}
