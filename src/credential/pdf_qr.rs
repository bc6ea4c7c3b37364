//! The QR codes of a citizen PDF, read back without a PDF renderer.
//!
//! The page's content stream is inflated and what draws a QR code is painted onto a grey bitmap, which
//! the image QR reader then searches. Our PDFs have drawn a QR code in two forms, and both are read, one
//! code path each: PDFs issued before 2026-12-04 fill one rectangle per run of dark modules (`re` and a
//! fill, see [`Canvas::fill`]), and stores keep them; newer ones draw one stencil mask (`/ImageMask`)
//! per code (`Do`, see [`Canvas::mask`]; render/pdf/writer.rs). Only what such a page needs is
//! interpreted (`q`/`Q`, `cm`, `g`/`rg`, `re`, fills, `Do` of a mask); text objects are skipped.
//! Every input is untrusted: the page size, the inflated streams, the image sizes, the operator count
//! and the images painted are bounded, and nothing here panics.

use std::io::Read as _;

use crate::error::{Error, Result};

/// Largest inflated content stream read.
const MAX_CONTENT_BYTES: u64 = 8 * 1024 * 1024;
/// Most operators interpreted.
const MAX_OPERATORS: usize = 500_000;
/// Pixels per PDF point of the bitmap: a 1.44 pt QR module (version 24 on A4) becomes 4.3 pixels, which
/// the QR reader finds; at 2 it does not.
const SCALE: f32 = 3.0;
/// White margin kept around the painted area, in pixels (more than a QR quiet zone needs).
const MARGIN: u32 = 24;
/// Largest page side accepted, in points (A3 is 1191).
const MAX_PAGE_POINTS: f32 = 2000.0;
/// Most masks painted: a certificate has one or two QR codes.
const MAX_MASKS: usize = 4;
/// Largest mask side read, in pixels (a version 40 symbol at 16 pixels per module is 2,960).
const MAX_MASK_SIDE: usize = 4096;

fn invalid(why: impl Into<String>) -> Error {
    Error::invalid("invalid", None, why.into())
}

/// The grey bitmap of the first page's QR codes (rectangle fills and stencil masks).
pub fn rasterise(pdf: &[u8]) -> Result<image::GrayImage> {
    rasterise_at(pdf, SCALE)
}

fn rasterise_at(pdf: &[u8], scale: f32) -> Result<image::GrayImage> {
    if !pdf.starts_with(b"%PDF-") {
        return Err(invalid("not a PDF"));
    }
    let (width, height) = media_box(pdf).ok_or_else(|| invalid("the PDF has no /MediaBox"))?;
    if !(1.0..=MAX_PAGE_POINTS).contains(&width) || !(1.0..=MAX_PAGE_POINTS).contains(&height) {
        return Err(invalid(format!(
            "the PDF page is {width}×{height} points; at most {MAX_PAGE_POINTS} per side is read"
        )));
    }
    let content = page_content(pdf)?;
    let mut canvas = Canvas::new(width, height, scale);
    interpret(pdf, &content, &mut canvas)?;
    Ok(canvas.painted())
}

/// `[x0 y0 x1 y1]` of the first `/MediaBox`, as (width, height).
fn media_box(pdf: &[u8]) -> Option<(f32, f32)> {
    let at = find(pdf, b"/MediaBox")?;
    let rest = pdf.get(at + b"/MediaBox".len()..)?;
    let open = rest.iter().position(|&b| b == b'[')?;
    let close = rest.iter().position(|&b| b == b']')?;
    let numbers: Vec<f32> = std::str::from_utf8(rest.get(open + 1..close)?)
        .ok()?
        .split_ascii_whitespace()
        .map(str::parse)
        .collect::<std::result::Result<_, _>>()
        .ok()?;
    match numbers[..] {
        [x0, y0, x1, y1] => Some((x1 - x0, y1 - y0)),
        _ => None,
    }
}

/// The inflated content stream of the first page (`/Contents N 0 R`).
fn page_content(pdf: &[u8]) -> Result<Vec<u8>> {
    let at = find(pdf, b"/Contents").ok_or_else(|| invalid("the PDF page has no /Contents"))?;
    let id = reference(pdf.get(at + b"/Contents".len()..).unwrap_or_default())
        .ok_or_else(|| invalid("the page's /Contents is not a reference"))?;
    let (_, content) = stream(pdf, &id, MAX_CONTENT_BYTES)?;
    Ok(content)
}

/// The object number at the start of `rest` (`N 0 R`), as written.
fn reference(rest: &[u8]) -> Option<String> {
    let id: String = rest
        .iter()
        .skip_while(|b| b.is_ascii_whitespace())
        .take_while(|b| b.is_ascii_digit())
        .map(|&b| char::from(b))
        .collect();
    (!id.is_empty() && id.len() < 10).then_some(id)
}

/// The dictionary and the data, inflated when it is `/FlateDecode` (at most `max` bytes), of stream
/// object `id`.
fn stream<'a>(pdf: &'a [u8], id: &str, max: u64) -> Result<(&'a [u8], Vec<u8>)> {
    let header = format!("\n{id} 0 obj");
    let object = find(pdf, header.as_bytes())
        .ok_or_else(|| invalid(format!("the PDF has no object {id}")))?;
    let body = pdf.get(object..).unwrap_or_default();
    let start =
        find(body, b"stream").ok_or_else(|| invalid(format!("object {id} is no stream")))?;
    let mut data = body.get(start + b"stream".len()..).unwrap_or_default();
    data = data.strip_prefix(b"\r").unwrap_or(data);
    data = data.strip_prefix(b"\n").unwrap_or(data);
    let dictionary = body.get(..start).unwrap_or_default();
    // Its `/Length` when it has one (binary data may hold the bytes "endstream"), else up to the keyword.
    let end = dictionary_int(dictionary, b"/Length")
        .filter(|&n| n <= data.len())
        .or_else(|| find(data, b"endstream"))
        .unwrap_or(data.len());
    let data = data.get(..end).unwrap_or_default();
    if find(dictionary, b"/FlateDecode").is_none() {
        return Ok((dictionary, data.to_vec()));
    }
    let mut out = Vec::new();
    flate2::read::ZlibDecoder::new(data)
        .take(max + 1)
        .read_to_end(&mut out)
        // A stream cut short (trailing newline counted into it) still inflates what it holds.
        .or_else(|e| if out.is_empty() { Err(e) } else { Ok(0) })
        .map_err(|e| invalid(format!("stream {id} does not inflate: {e}")))?;
    if out.len() as u64 > max {
        return Err(invalid(format!("stream {id} is too large")));
    }
    Ok((dictionary, out))
}

/// The whole number after `key` in a dictionary (`/Width 500`; `/Length` and not `/Length1`).
fn dictionary_int(dictionary: &[u8], key: &[u8]) -> Option<usize> {
    let mut from = 0;
    while let Some(at) = dictionary.get(from..).and_then(|d| find(d, key)) {
        let rest = dictionary.get(from + at + key.len()..)?;
        from += at + key.len();
        if !rest.first().is_some_and(u8::is_ascii_whitespace) {
            continue;
        }
        let digits: String = rest
            .iter()
            .skip_while(|b| b.is_ascii_whitespace())
            .take_while(|b| b.is_ascii_digit())
            .take(9)
            .map(|&b| char::from(b))
            .collect();
        return digits.parse().ok();
    }
    None
}

/// The page's XObjects by resource name: `/XObject<</Q1 16 0 R …>>`.
fn xobjects(pdf: &[u8]) -> Vec<(Vec<u8>, String)> {
    let Some(at) = find(pdf, b"/XObject") else {
        return Vec::new();
    };
    let rest = pdf.get(at + b"/XObject".len()..).unwrap_or_default();
    let rest = rest.get(..rest.len().min(4096)).unwrap_or_default();
    let Some(end) = find(rest, b">>") else {
        return Vec::new();
    };
    let entries = rest.get(..end).unwrap_or_default();
    entries
        .split(|&b| b == b'/')
        .skip(1)
        .filter_map(|entry| {
            let name_end = entry
                .iter()
                .position(|b| b.is_ascii_whitespace())
                .unwrap_or(entry.len());
            let id = reference(entry.get(name_end..)?)?;
            Some((entry.get(..name_end)?.to_vec(), id))
        })
        .take(MAX_MASKS * 4)
        .collect()
}

/// A stencil mask: rows top first, each padded to whole bytes; bit 0 is painted, 1 is not.
struct Mask {
    width: usize,
    height: usize,
    rows: Vec<u8>,
}

/// XObject `id` when it is a stencil mask of a size read here (other XObjects are no QR codes of ours
/// and are skipped).
fn mask(pdf: &[u8], id: &str) -> Result<Option<Mask>> {
    let header = format!("\n{id} 0 obj");
    let Some(object) = find(pdf, header.as_bytes()) else {
        return Ok(None);
    };
    let head = pdf.get(object..).unwrap_or_default();
    let head = head.get(..head.len().min(1024)).unwrap_or_default();
    let Some(dictionary) = find(head, b"stream").and_then(|end| head.get(..end)) else {
        return Ok(None);
    };
    let is_mask = find(dictionary, b"/Subtype/Image").is_some()
        && find(dictionary, b"/ImageMask true").is_some()
        && dictionary_int(dictionary, b"/BitsPerComponent").is_none_or(|b| b == 1)
        && find(dictionary, b"/Decode").is_none();
    let size = (
        dictionary_int(dictionary, b"/Width"),
        dictionary_int(dictionary, b"/Height"),
    );
    let (Some(width), Some(height)) = size else {
        return Ok(None);
    };
    let sides = 1..=MAX_MASK_SIDE;
    if !is_mask || !sides.contains(&width) || !sides.contains(&height) {
        return Ok(None);
    }
    let bytes = width.div_ceil(8) * height;
    let (_, rows) = stream(pdf, id, bytes as u64)?;
    if rows.len() < bytes {
        return Err(invalid(format!("image {id} has too few pixels")));
    }
    Ok(Some(Mask {
        width,
        height,
        rows,
    }))
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// An affine matrix `[a b c d e f]` (PDF 8.3.4).
#[derive(Clone, Copy)]
struct Matrix([f32; 6]);

impl Matrix {
    const IDENTITY: Matrix = Matrix([1.0, 0.0, 0.0, 1.0, 0.0, 0.0]);

    /// `self` applied after `first` (PDF: `cm` sets CTM = M × CTM).
    fn then(self, first: Matrix) -> Matrix {
        let [a, b, c, d, e, f] = first.0;
        let [a2, b2, c2, d2, e2, f2] = self.0;
        Matrix([
            a * a2 + b * c2,
            a * b2 + b * d2,
            c * a2 + d * c2,
            c * b2 + d * d2,
            e * a2 + f * c2 + e2,
            e * b2 + f * d2 + f2,
        ])
    }

    fn apply(self, x: f32, y: f32) -> (f32, f32) {
        let [a, b, c, d, e, f] = self.0;
        (a * x + c * y + e, b * x + d * y + f)
    }

    /// The inverse, when there is one.
    fn inverse(self) -> Option<Matrix> {
        let [a, b, c, d, e, f] = self.0;
        let det = a * d - b * c;
        if det.abs() < 1e-9 || !det.is_finite() {
            return None;
        }
        let (ia, ib, ic, id) = (d / det, -b / det, -c / det, a / det);
        Some(Matrix([
            ia,
            ib,
            ic,
            id,
            -(e * ia + f * ic),
            -(e * ib + f * id),
        ]))
    }
}

struct Canvas {
    image: image::GrayImage,
    height: f32,
    scale: f32,
    /// Pixel bounds (left, top, right, bottom) of the dark fills so far.
    dark: Option<(u32, u32, u32, u32)>,
}

impl Canvas {
    fn new(width: f32, height: f32, scale: f32) -> Self {
        let px = |v: f32| (v * scale).ceil() as u32;
        Canvas {
            image: image::GrayImage::from_pixel(px(width), px(height), image::Luma([255])),
            height,
            scale,
            dark: None,
        }
    }

    /// The part of the page with dark fills, with a white margin: text is not painted, so this is the
    /// QR codes, and the reader searches a fraction of the page.
    fn painted(self) -> image::GrayImage {
        let Some((left, top, right, bottom)) = self.dark else {
            return self.image;
        };
        let x = left.saturating_sub(MARGIN);
        let y = top.saturating_sub(MARGIN);
        let w = (right + MARGIN).min(self.image.width()) - x;
        let h = (bottom + MARGIN).min(self.image.height()) - y;
        image::imageops::crop_imm(&self.image, x, y, w, h).to_image()
    }

    /// Paints `mask` in `grey` where the matrix puts its unit square (PDF 8.9.4: row 0 at the top): each
    /// pixel of the canvas under a painted mask pixel (at the canvas pixel's centre).
    fn mask(&mut self, ctm: Matrix, mask: &Mask, grey: u8) {
        let Some(inverse) = ctm.inverse() else {
            return;
        };
        let (w, h) = (self.image.width(), self.image.height());
        let scale = self.scale;
        let corners =
            [(0.0, 0.0), (1.0, 0.0), (0.0, 1.0), (1.0, 1.0)].map(|(u, v)| ctm.apply(u, v));
        let (mut left, mut right) = (f32::MAX, f32::MIN);
        let (mut top, mut bottom) = (f32::MAX, f32::MIN);
        for (x, y) in corners {
            (left, right) = (left.min(x * scale), right.max(x * scale));
            let row = (self.height - y) * scale;
            (top, bottom) = (top.min(row), bottom.max(row));
        }
        let clamp = |v: f32, max: u32| v.clamp(0.0, max as f32) as u32;
        let (left, right) = (clamp(left.floor(), w), clamp(right.ceil(), w));
        let (top, bottom) = (clamp(top.floor(), h), clamp(bottom.ceil(), h));
        let row_bytes = mask.width.div_ceil(8);
        let mut painted = false;
        for py in top..bottom {
            for px in left..right {
                let page = (
                    (px as f32 + 0.5) / scale,
                    self.height - (py as f32 + 0.5) / scale,
                );
                let (u, v) = inverse.apply(page.0, page.1);
                if !(0.0..1.0).contains(&u) || !(0.0..1.0).contains(&v) {
                    continue;
                }
                let column = ((u * mask.width as f32) as usize).min(mask.width - 1);
                let row = (((1.0 - v) * mask.height as f32) as usize).min(mask.height - 1);
                let paint = mask
                    .rows
                    .get(row * row_bytes + column / 8)
                    .is_some_and(|b| b & (0x80 >> (column % 8)) == 0);
                if paint {
                    painted = true;
                    self.image.put_pixel(px, py, image::Luma([grey]));
                }
            }
        }
        if painted && grey < 128 {
            self.mark_dark(left, top, right, bottom);
        }
    }

    fn mark_dark(&mut self, left: u32, top: u32, right: u32, bottom: u32) {
        self.dark = Some(match self.dark {
            None => (left, top, right, bottom),
            Some((l, t, r, b)) => (l.min(left), t.min(top), r.max(right), b.max(bottom)),
        });
    }

    /// Fills the rectangle between two page points.
    fn fill(&mut self, (x0, y0): (f32, f32), (x1, y1): (f32, f32), grey: u8) {
        let (w, h) = (self.image.width(), self.image.height());
        let scale = self.scale;
        let clamp = |v: f32, max: u32| (v * scale).round().clamp(0.0, max as f32) as u32;
        let (left, right) = (clamp(x0.min(x1), w), clamp(x0.max(x1), w));
        // PDF y counts up from the bottom; image rows count down from the top.
        let (top, bottom) = (
            clamp(self.height - y0.max(y1), h),
            clamp(self.height - y0.min(y1), h),
        );
        for y in top..bottom {
            for x in left..right {
                self.image.put_pixel(x, y, image::Luma([grey]));
            }
        }
        if grey < 128 && left < right && top < bottom {
            self.mark_dark(left, top, right, bottom);
        }
    }
}

/// Interprets the operators that paint rectangles and stencil masks (of `pdf`'s page resources); text,
/// other images and curves are skipped.
fn interpret(pdf: &[u8], content: &[u8], canvas: &mut Canvas) -> Result<()> {
    let xobjects = xobjects(pdf);
    let mut masks = 0usize;
    let mut name: Option<&[u8]> = None;
    let mut ctm = Matrix::IDENTITY;
    let mut grey = 0u8;
    let mut stack: Vec<(Matrix, u8)> = Vec::new();
    let mut operands: Vec<f32> = Vec::new();
    let mut path: Vec<((f32, f32), (f32, f32))> = Vec::new();
    let mut in_text = false;
    let mut tokens = Tokens {
        data: content,
        at: 0,
    };
    let mut count = 0usize;
    while let Some(token) = tokens.next() {
        let operator = match token {
            Token::Number(n) => {
                operands.push(n);
                continue;
            }
            Token::Other => {
                operands.clear();
                continue;
            }
            Token::Name(n) => {
                operands.clear();
                name = Some(n);
                continue;
            }
            Token::Operator(op) => op,
        };
        count += 1;
        if count > MAX_OPERATORS {
            return Err(invalid("the page content has too many operators"));
        }
        match (operator, operands.as_slice()) {
            (b"BT", _) => in_text = true,
            (b"ET", _) => in_text = false,
            _ if in_text => {}
            (b"q", _) if stack.len() < 64 => stack.push((ctm, grey)),
            (b"Q", _) => {
                if let Some((m, g)) = stack.pop() {
                    (ctm, grey) = (m, g);
                }
            }
            (b"cm", &[a, b, c, d, e, f]) => ctm = ctm.then(Matrix([a, b, c, d, e, f])),
            (b"g", &[g]) => grey = (g.clamp(0.0, 1.0) * 255.0).round() as u8,
            (b"rg", &[r, g, b]) => {
                grey = ((0.299 * r + 0.587 * g + 0.114 * b).clamp(0.0, 1.0) * 255.0).round() as u8
            }
            (b"re", &[x, y, w, h]) if path.len() < MAX_OPERATORS => {
                path.push((ctm.apply(x, y), ctm.apply(x + w, y + h)))
            }
            (b"f" | b"F" | b"f*" | b"B" | b"B*" | b"b" | b"b*", _) => {
                for (a, b) in path.drain(..) {
                    canvas.fill(a, b, grey);
                }
            }
            (b"n" | b"S" | b"s", _) => path.clear(),
            (b"Do", _) if masks < MAX_MASKS => {
                let id = xobjects
                    .iter()
                    .find(|(n, _)| Some(n.as_slice()) == name)
                    .map(|(_, id)| id);
                if let Some(found) = id.map(|id| mask(pdf, id)).transpose()?.flatten() {
                    masks += 1;
                    canvas.mask(ctm, &found, grey);
                }
            }
            _ => {}
        }
        operands.clear();
        name = None;
    }
    Ok(())
}

enum Token<'a> {
    Number(f32),
    Operator(&'a [u8]),
    /// A name, without its `/`.
    Name(&'a [u8]),
    /// Strings, arrays, dictionaries: operands of operators not interpreted here.
    Other,
}

struct Tokens<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Tokens<'a> {
    fn next(&mut self) -> Option<Token<'a>> {
        let data = self.data;
        while data.get(self.at).is_some_and(u8::is_ascii_whitespace) {
            self.at += 1;
        }
        let start = self.at;
        let first = *data.get(start)?;
        let regular = |b: &u8| !b.is_ascii_whitespace() && !b"()<>[]{}/%".contains(b);
        match first {
            b'(' => {
                // A literal string: balanced parentheses, backslash escapes.
                let mut depth = 0usize;
                while let Some(&b) = data.get(self.at) {
                    self.at += 1;
                    match b {
                        b'\\' => self.at += 1,
                        b'(' => depth += 1,
                        b')' => {
                            depth = depth.saturating_sub(1);
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                Some(Token::Other)
            }
            b'%' => {
                while data.get(self.at).is_some_and(|&b| b != b'\n' && b != b'\r') {
                    self.at += 1;
                }
                Some(Token::Other)
            }
            b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b')' => {
                self.at += 1;
                Some(Token::Other)
            }
            b'/' => {
                self.at += 1;
                while data.get(self.at).is_some_and(regular) {
                    self.at += 1;
                }
                Some(Token::Name(
                    data.get(start + 1..self.at).unwrap_or_default(),
                ))
            }
            _ => {
                while data.get(self.at).is_some_and(regular) {
                    self.at += 1;
                }
                let word = data.get(start..self.at).unwrap_or_default();
                if self.at == start {
                    self.at += 1;
                    return Some(Token::Other);
                }
                if word[0].is_ascii_digit() || matches!(word[0], b'-' | b'+' | b'.') {
                    return Some(
                        std::str::from_utf8(word)
                            .ok()
                            .and_then(|s| s.parse::<f32>().ok())
                            .filter(|n| n.is_finite())
                            .map_or(Token::Other, Token::Number),
                    );
                }
                Some(Token::Operator(word))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_refused_without_panicking() {
        for input in [
            &b""[..],
            b"%PDF-",
            b"%PDF-1.3\n/MediaBox[0 0 10 10]",
            b"%PDF-1.3\n/MediaBox[0 0 100000 10]/Contents 4 0 R",
            b"%PDF-1.3\n/MediaBox[0 0 10 10]/Contents 4 0 R\n4 0 obj\n<</Filter/FlateDecode>>stream\nxx",
        ] {
            assert!(rasterise(input).is_err());
        }
        // Unbalanced strings and stray operators in an uncompressed stream just paint nothing.
        let pdf = b"%PDF-1.3\n/MediaBox[0 0 10 10]/Contents 4 0 R\n4 0 obj\n<<>>stream\n(a\\) ( re f 1 2 3 re Q Q cm\nendstream";
        let image = rasterise(pdf).unwrap();
        assert!(image.pixels().all(|p| p.0[0] == 255));
    }

    /// The black pixels of a raster, as (column, row).
    fn dark_pixels(image: &image::GrayImage) -> Vec<(u32, u32)> {
        image
            .enumerate_pixels()
            .filter(|(_, _, p)| p.0[0] == 0)
            .map(|(x, y, _)| (x, y))
            .collect()
    }

    #[test]
    fn rectangles_land_where_the_matrix_puts_them() {
        let pdf = b"%PDF-1.3\n/MediaBox[0 0 10 10]/Contents 4 0 R\n4 0 obj\n<<>>stream\nq 2 0 0 2 1 1 cm 0 g 0 0 1 1 re f Q BT (0 0 5 5 re f) ET\nendstream";
        let image = rasterise(pdf).unwrap();
        let dark = dark_pixels(&image);
        // Page (1,1)–(3,3) at 3 px/pt: 6×6 pixels at columns 3..9, rows 21..27 of the 30 px page, which is
        // all kept (the margin is wider than the page).
        assert_eq!((image.width(), image.height()), (30, 30));
        assert_eq!(dark.len(), 36);
        assert!(dark
            .iter()
            .all(|&(x, y)| (3..9).contains(&x) && (21..27).contains(&y)));
    }

    #[test]
    fn a_stencil_mask_paints_where_the_matrix_puts_it_top_row_first() {
        // A 2×2 mask painting top left and bottom right (bit 0 is painted) in black on a white square,
        // drawn on the page square (1,1)–(5,5); an image of another kind beside it is skipped.
        let pdf = b"%PDF-1.3\n/MediaBox[0 0 10 10]/Resources<</XObject<</Im1 5 0 R/Im2 6 0 R>>>>/Contents 4 0 R\n\
            4 0 obj\n<<>>stream\nq 4 0 0 4 1 1 cm 1 g 0 0 1 1 re f 0 g /Im1 Do Q q 1 0 0 1 0 0 cm /Im2 Do Q\nendstream\n\
            5 0 obj\n<</Type/XObject/Subtype/Image/Width 2/Height 2/ImageMask true/BitsPerComponent 1>>stream\n\x40\x80\nendstream\n\
            6 0 obj\n<</Type/XObject/Subtype/Image/Width 1/Height 1/ColorSpace/DeviceRGB/BitsPerComponent 8>>stream\n\0\0\0\nendstream";
        let image = rasterise(pdf).unwrap();
        let dark = dark_pixels(&image);
        // At 3 px/pt the square is columns 3..15, rows 15..27; each mask pixel 6×6.
        assert_eq!(dark.len(), 72);
        assert!(dark
            .iter()
            .all(|&(x, y)| ((3..9).contains(&x) && (15..21).contains(&y))
                || ((9..15).contains(&x) && (21..27).contains(&y))));
        // Its samples are read by the stream's /Length: binary samples may spell "endstream".
        let binary = replace(
            pdf,
            b"BitsPerComponent 1>>stream\n\x40\x80",
            b"BitsPerComponent 1/Length 2>>stream\n\x40\x80endstream",
        );
        assert_eq!(rasterise(&binary).unwrap(), image);
        // A mask that claims more pixels than its stream holds is refused.
        let short = replace(pdf, b"Width 2/Height 2", b"Width 2/Height 9");
        assert!(rasterise(&short).is_err());
    }

    /// `data` with the first `from` replaced by `to`.
    fn replace(data: &[u8], from: &[u8], to: &[u8]) -> Vec<u8> {
        let at = find(data, from).unwrap();
        [&data[..at], to, &data[at + from.len()..]].concat()
    }
}
