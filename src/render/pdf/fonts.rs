//! The fonts compiled into the binary, parsed once, and the subsets of them documents embed.
//!
//! Rendering must not depend on the host's fonts (a container has none, and a different host font
//! would change the certificate), so the font files live in `assets/fonts/` and are `include_bytes!`ed.
//! A PDF embeds only the glyphs it uses (the CJK font alone is 4 MB), and of them only what a viewer
//! reads: outlines and metrics, no hinting, no character map or names (see [`EMBEDDED_TABLES`]).

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use allsorts::binary::read::ReadScope;
use allsorts::binary::write::{WriteBinaryDep, WriteBuffer};
use allsorts::error::{ParseError, ReadWriteError};
use allsorts::font_data::FontData;
use allsorts::subset::{subset, whole_font, CmapTarget, SubsetProfile};
use allsorts::tables::glyf::{CompositeGlyphFlag, GlyfRecord, GlyfTable};
use allsorts::tables::loca::{owned, LocaTable};
use allsorts::tables::{FontTableProvider, HeadTable, MaxpTable};
use allsorts::tag;
use rustybuzz::ttf_parser::GlyphId;
use rustybuzz::Face;

use crate::error::{Error, Result};

/// One embedded font file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(super) enum FontKey {
    /// Noto Sans: Latin with diacritics, Greek, Cyrillic.
    Sans,
    /// Noto Sans Bold, for headings and labels.
    SansBold,
    /// Noto Sans Arabic.
    Arabic,
    /// Droid Sans Fallback: Chinese, Japanese, Korean.
    Cjk,
}

impl FontKey {
    pub(super) const ALL: [FontKey; 4] = [
        FontKey::Sans,
        FontKey::SansBold,
        FontKey::Arabic,
        FontKey::Cjk,
    ];

    fn bytes(self) -> &'static [u8] {
        match self {
            FontKey::Sans => include_bytes!("../../../assets/fonts/NotoSans-Regular.ttf"),
            FontKey::SansBold => include_bytes!("../../../assets/fonts/NotoSans-Bold.ttf"),
            FontKey::Arabic => include_bytes!("../../../assets/fonts/NotoSansArabic-Regular.ttf"),
            FontKey::Cjk => include_bytes!("../../../assets/fonts/DroidSansFallbackFull.ttf"),
        }
    }

    /// The PostScript name, which becomes the PDF `/BaseFont` (after the subset tag).
    fn postscript_name(self) -> &'static str {
        match self {
            FontKey::Sans => "NotoSans-Regular",
            FontKey::SansBold => "NotoSans-Bold",
            FontKey::Arabic => "NotoSansArabic-Regular",
            FontKey::Cjk => "DroidSansFallbackFull",
        }
    }

    pub(super) fn index(self) -> usize {
        match self {
            FontKey::Sans => 0,
            FontKey::SansBold => 1,
            FontKey::Arabic => 2,
            FontKey::Cjk => 3,
        }
    }

    /// Fonts tried in order for a character, starting from the text's own weight.
    pub(super) fn fallback_chain(bold: bool) -> [FontKey; 3] {
        let latin = if bold {
            FontKey::SansBold
        } else {
            FontKey::Sans
        };
        [latin, FontKey::Arabic, FontKey::Cjk]
    }
}

/// The parsed faces, built on first use and shared by every render.
fn faces() -> Result<&'static [Face<'static>; 4]> {
    static FACES: OnceLock<Option<[Face<'static>; 4]>> = OnceLock::new();
    FACES
        .get_or_init(|| {
            let [a, b, c, d] = FontKey::ALL.map(|k| Face::from_slice(k.bytes(), 0));
            Some([a?, b?, c?, d?])
        })
        .as_ref()
        .ok_or_else(|| Error::Internal("an embedded font does not parse".into()))
}

/// The shaping face of `key`.
pub(super) fn face(key: FontKey) -> Result<&'static Face<'static>> {
    faces()?
        .get(key.index())
        .ok_or_else(|| Error::Internal("font table out of range".into()))
}

/// A font reduced to a set of glyphs, ready to embed: the compressed font program and the PDF
/// dictionaries' values that depend only on the glyph set. Built once per distinct glyph set and
/// shared (see [`embedded`]).
pub(super) struct Embedded {
    /// `/BaseFont`: a tag derived from the glyph set, `+`, the PostScript name (ISO 32000-1 §9.6.4).
    pub base_font: String,
    /// The kept original glyph ids, sorted; a glyph's id in the subset is its position here.
    ids: Vec<u16>,
    /// Advance widths (glyph space, 1000 units per em, rounded) by subset glyph id.
    pub widths: Vec<u16>,
    /// The subset font program, zlib-compressed (`/FontFile2` with `/FlateDecode`).
    pub font_file: Vec<u8>,
    /// Its uncompressed length (`/Length1`).
    pub length1: usize,
    /// The `/FontDescriptor` entries, already written.
    pub descriptor: String,
    /// The `/W` array of the descendant font, already written.
    pub w_array: String,
}

impl Embedded {
    /// The subset glyph id of an original glyph id (0, .notdef, for a glyph not kept).
    pub fn gid(&self, original: u16) -> u16 {
        self.ids
            .binary_search(&original)
            .ok()
            .and_then(|i| u16::try_from(i).ok())
            .unwrap_or(0)
    }
}

/// Glyphs every subset of `key` keeps whatever a document uses, so that most documents need the same
/// subset, which is then made once and shared: the printable ASCII characters of the regular face,
/// in which most values (names, codes, dates) are written. The other faces print fixed labels or the
/// rarer scripts, so they keep only what a document uses.
fn base_glyphs(key: FontKey) -> Result<&'static [u16]> {
    static SANS: OnceLock<Vec<u16>> = OnceLock::new();
    match key {
        FontKey::Sans => {
            let face = face(key)?;
            Ok(SANS.get_or_init(|| {
                (' '..='~')
                    .filter_map(|c| face.glyph_index(c))
                    .map(|g| g.0)
                    .collect()
            }))
        }
        _ => Ok(&[]),
    }
}

/// Distinct subsets kept at most; the cache starts again when it is full (a run of documents in new
/// scripts cannot grow it without bound).
const CACHE_ENTRIES: usize = 256;

type Cache = HashMap<(FontKey, Vec<u16>), Arc<Embedded>>;

/// `key` subset to `glyphs` (plus its [`base_glyphs`]), made on first request of that glyph set and
/// shared afterwards: subsetting and compressing a font costs far more than the rest of a document.
pub(super) fn embedded(
    key: FontKey,
    glyphs: impl IntoIterator<Item = u16>,
) -> Result<Arc<Embedded>> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    // .notdef first, as the subsetter requires; then the rest sorted, so the position of a glyph is
    // also its rank and `Embedded::gid` can search for it.
    let mut ids: Vec<u16> = std::iter::once(0)
        .chain(glyphs.into_iter().filter(|g| *g != 0))
        .chain(base_glyphs(key)?.iter().copied().filter(|g| *g != 0))
        .collect();
    ids[1..].sort_unstable();
    ids.dedup();
    let cache = CACHE.get_or_init(Default::default);
    let lookup = (key, ids);
    if let Some(hit) = cache
        .lock()
        .map_err(|_| Error::Internal("font cache poisoned".into()))?
        .get(&lookup)
    {
        return Ok(Arc::clone(hit));
    }
    let (key, ids) = lookup;
    let made = Arc::new(make_embedded(key, ids)?);
    let mut cache = cache
        .lock()
        .map_err(|_| Error::Internal("font cache poisoned".into()))?;
    if cache.len() >= CACHE_ENTRIES {
        cache.clear();
    }
    cache.insert((key, made.ids.clone()), Arc::clone(&made));
    Ok(made)
}

fn make_embedded(key: FontKey, ids: Vec<u16>) -> Result<Embedded> {
    use std::fmt::Write;
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        Error::Internal(format!(
            "font subsetting ({}): {what}: {e}",
            key.postscript_name()
        ))
    };
    let font = ReadScope::new(key.bytes())
        .read::<FontData<'_>>()
        .map_err(|e| internal("read", &e))?;
    let provider = font.table_provider(0).map_err(|e| internal("tables", &e))?;
    // The subsetter numbers glyphs by their position in `ids`. It adds `loca` and `glyf` to the
    // profile's tables; the `cmap` it builds is left out by the profile.
    let profile = SubsetProfile::Custom(EMBEDDED_TABLES.to_vec());
    let subset_font = subset(&provider, &ids, &profile, CmapTarget::Unicode)
        .map_err(|e| internal("subset", &e))?;
    let bytes = without_instructions(&subset_font).map_err(|e| internal("unhint", &e))?;
    // Made once per glyph set and then embedded in every document with it: the best level.
    let font_file = super::deflate::deflate_best(&bytes)?;

    let face = face(key)?;
    let per_em = face.units_per_em().max(1) as f32;
    let scaled = |v: f32| (v * 1000.0 / per_em).round() as i32;
    let widths: Vec<u16> = ids
        .iter()
        .map(|&g| {
            let advance = face.glyph_hor_advance(GlyphId(g)).unwrap_or(0);
            u16::try_from(scaled(f32::from(advance))).unwrap_or(u16::MAX)
        })
        .collect();
    let mut w_array = String::from("[1[");
    for (i, w) in widths.iter().enumerate().skip(1) {
        if i > 1 {
            w_array.push(' ');
        }
        let _ = write!(w_array, "{w}");
    }
    w_array.push_str("]]");

    let base_font = format!("{}+{}", subset_tag(&ids), key.postscript_name());
    let bbox = face.global_bounding_box();
    let ascent = scaled(f32::from(face.ascender()));
    let descent = scaled(f32::from(face.descender()));
    let cap_height = face
        .capital_height()
        .map_or(ascent, |c| scaled(f32::from(c)));
    let descriptor = format!(
        "/Type/FontDescriptor/FontName/{base_font}/Flags 32/FontBBox[{} {} {} {}]/ItalicAngle 0\
         /Ascent {ascent}/Descent {descent}/CapHeight {cap_height}/StemV 80",
        scaled(f32::from(bbox.x_min)),
        scaled(f32::from(bbox.y_min)),
        scaled(f32::from(bbox.x_max)),
        scaled(f32::from(bbox.y_max)),
    );
    Ok(Embedded {
        base_font,
        ids,
        widths,
        length1: bytes.len(),
        font_file,
        descriptor,
        w_array,
    })
}

/// The tables kept besides `loca` and `glyf`: those a TrueType font program embedded for a
/// CIDFontType2 needs (ISO 32000-1 §9.9). The PDF maps codes to glyph ids itself (Identity
/// CIDToGIDMap), gives the widths (`/W`) and the names (`/BaseFont`, `/ToUnicode`), so `cmap`, `name`,
/// `post` and `OS/2` are dead weight; so are the hinting programs (`cvt `, `fpgm`, `prep`), dropped
/// with the glyphs' own instructions (see [`without_instructions`]).
const EMBEDDED_TABLES: [u32; 4] = [tag::HEAD, tag::HHEA, tag::HMTX, tag::MAXP];

/// `font` (a TrueType subset) with the TrueType instructions of every glyph removed and every other
/// byte of the outlines as it was. PDF viewers draw the certificate's text unhinted (or auto-hinted),
/// and without `fpgm`/`prep` the instructions could not run anyway; in Noto they are a third of `glyf`.
/// (allsorts can write a parsed glyph without them, but re-encodes its points uncompacted, larger.)
fn without_instructions(font: &[u8]) -> std::result::Result<Vec<u8>, ReadWriteError> {
    let font = ReadScope::new(font).read::<FontData<'_>>()?;
    let provider = font.table_provider(0)?;
    let head = ReadScope::new(&provider.read_table_data(tag::HEAD)?).read::<HeadTable>()?;
    let maxp = ReadScope::new(&provider.read_table_data(tag::MAXP)?).read::<MaxpTable>()?;
    let loca_data = provider.read_table_data(tag::LOCA)?;
    let loca = ReadScope::new(&loca_data)
        .read_dep::<LocaTable<'_>>((maxp.num_glyphs, head.index_to_loc_format))?;
    let glyf_data = provider.read_table_data(tag::GLYF)?;
    let glyf = ReadScope::new(&glyf_data).read_dep::<GlyfTable<'_>>(&loca)?;
    let stripped = glyf
        .records()
        .iter()
        .map(|record| match record {
            GlyfRecord::Present { scope, .. } => {
                glyph_without_instructions(scope.data()).ok_or(ParseError::BadValue)
            }
            // An empty glyph (no outline, no instructions).
            GlyfRecord::Parsed(_) => Ok(Vec::new()),
        })
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let records = stripped
        .iter()
        .map(|glyph| match glyph.get(..2) {
            Some(&[hi, lo]) => GlyfRecord::Present {
                number_of_contours: i16::from_be_bytes([hi, lo]),
                scope: ReadScope::new(glyph),
            },
            _ => GlyfRecord::empty(),
        })
        .collect();
    let mut new_glyf = WriteBuffer::new();
    let new_loca = GlyfTable::write_dep(
        &mut new_glyf,
        GlyfTable::new(records)?,
        head.index_to_loc_format,
    )?;
    let mut new_loca_data = WriteBuffer::new();
    owned::LocaTable::write_dep(&mut new_loca_data, new_loca, head.index_to_loc_format)?;
    // allsorts writes the font (table directory, checksums) from the same tables with these two
    // replaced; `head` and `maxp` it always takes, and `loca` with `glyf`.
    let replaced = Replaced {
        font: &provider,
        glyf: new_glyf.bytes(),
        loca: new_loca_data.bytes(),
    };
    whole_font(&replaced, &[tag::HHEA, tag::HMTX, tag::GLYF])
}

/// One glyph's `glyf` entry with an empty instruction list, the rest byte for byte; `None` if it is
/// cut short. Layout: OpenType `glyf` (simple and composite glyph descriptions).
fn glyph_without_instructions(glyph: &[u8]) -> Option<Vec<u8>> {
    let u16_at = |at: usize| Some(u16::from_be_bytes(glyph.get(at..at + 2)?.try_into().ok()?));
    // numberOfContours, then the bounding box: 10 bytes.
    let contours = i16::from_be_bytes(u16_at(0)?.to_be_bytes());
    if let Ok(contours) = usize::try_from(contours) {
        // Simple: endPtsOfContours[contours], instructionLength, instructions, flags, coordinates.
        let length_at = 10 + 2 * contours;
        let code_end = length_at + 2 + usize::from(u16_at(length_at)?);
        let mut out = glyph.get(..length_at)?.to_vec();
        out.extend_from_slice(&0u16.to_be_bytes());
        out.extend_from_slice(glyph.get(code_end..)?);
        return Some(out);
    }
    // Composite: components (flags, glyphIndex, two arguments, an optional transform) until one
    // without MORE_COMPONENTS; instructions follow the last if a component has WE_HAVE_INSTRUCTIONS.
    // Each component is kept with that flag cleared, and what follows the last is dropped.
    let flag = |f: CompositeGlyphFlag| f as u16;
    let mut out = glyph.get(..10)?.to_vec();
    let mut at = 10;
    loop {
        let flags = u16_at(at)?;
        let arguments = if flags & flag(CompositeGlyphFlag::ARG_1_AND_2_ARE_WORDS) != 0 {
            4
        } else {
            2
        };
        let transform = if flags & flag(CompositeGlyphFlag::WE_HAVE_A_SCALE) != 0 {
            2
        } else if flags & flag(CompositeGlyphFlag::WE_HAVE_AN_X_AND_Y_SCALE) != 0 {
            4
        } else if flags & flag(CompositeGlyphFlag::WE_HAVE_A_TWO_BY_TWO) != 0 {
            8
        } else {
            0
        };
        let end = at + 4 + arguments + transform;
        let kept = flags & !flag(CompositeGlyphFlag::WE_HAVE_INSTRUCTIONS);
        out.extend_from_slice(&kept.to_be_bytes());
        out.extend_from_slice(glyph.get(at + 2..end)?);
        if flags & flag(CompositeGlyphFlag::MORE_COMPONENTS) == 0 {
            return Some(out);
        }
        at = end;
    }
}

/// A font's tables with `glyf` and `loca` replaced, for [`whole_font`] to write.
struct Replaced<'a, P> {
    font: &'a P,
    glyf: &'a [u8],
    loca: &'a [u8],
}

impl<P: FontTableProvider> FontTableProvider for Replaced<'_, P> {
    fn table_data(&self, tag: u32) -> std::result::Result<Option<Cow<'_, [u8]>>, ParseError> {
        match tag {
            tag::GLYF => Ok(Some(Cow::Borrowed(self.glyf))),
            tag::LOCA => Ok(Some(Cow::Borrowed(self.loca))),
            _ => self.font.table_data(tag),
        }
    }

    fn has_table(&self, tag: u32) -> bool {
        self.font.has_table(tag)
    }

    fn table_tags(&self) -> Option<Vec<u32>> {
        self.font.table_tags()
    }
}

/// Six capital letters that change with the glyph set (FNV-1a of the ids), so two different subsets of
/// one font never share a name.
fn subset_tag(ids: &[u16]) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for id in ids {
        for b in id.to_be_bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    (0..6)
        .map(|i| char::from(b'A' + ((h >> (i * 5)) % 26) as u8))
        .collect()
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use rustybuzz::ttf_parser::{self, GlyphId, OutlineBuilder};

    use super::{embedded, face, glyph_without_instructions, FontKey};

    /// An outline as drawing commands, to compare two fonts' glyphs exactly.
    #[derive(Default, PartialEq, Debug)]
    struct Path(Vec<(char, [f32; 6])>);

    impl OutlineBuilder for Path {
        fn move_to(&mut self, x: f32, y: f32) {
            self.0.push(('M', [x, y, 0.0, 0.0, 0.0, 0.0]));
        }
        fn line_to(&mut self, x: f32, y: f32) {
            self.0.push(('L', [x, y, 0.0, 0.0, 0.0, 0.0]));
        }
        fn quad_to(&mut self, x1: f32, y1: f32, x: f32, y: f32) {
            self.0.push(('Q', [x1, y1, x, y, 0.0, 0.0]));
        }
        fn curve_to(&mut self, x1: f32, y1: f32, x2: f32, y2: f32, x: f32, y: f32) {
            self.0.push(('C', [x1, y1, x2, y2, x, y]));
        }
        fn close(&mut self) {
            self.0.push(('Z', [0.0; 6]));
        }
    }

    fn outline(face: &ttf_parser::Face<'_>, glyph: u16) -> Path {
        let mut path = Path::default();
        face.outline_glyph(GlyphId(glyph), &mut path);
        path
    }

    fn u16_at(data: &[u8], at: usize) -> u16 {
        u16::from_be_bytes([data[at], data[at + 1]])
    }

    /// The tags of a font's table directory, and the raw table of `wanted`.
    fn tables<'a>(font: &'a [u8], wanted: &[u8; 4]) -> (Vec<String>, &'a [u8]) {
        let mut tags = Vec::new();
        let mut found: &[u8] = &[];
        for i in 0..usize::from(u16_at(font, 4)) {
            let record = &font[12 + 16 * i..28 + 16 * i];
            let field = |at: usize| u32::from_be_bytes(record[at..at + 4].try_into().unwrap());
            tags.push(String::from_utf8_lossy(&record[..4]).into_owned());
            if &record[..4] == wanted {
                found = &font[field(8) as usize..][..field(12) as usize];
            }
        }
        (tags, found)
    }

    #[test]
    fn a_subset_keeps_outlines_and_advances_and_only_the_tables_a_pdf_needs_without_hinting() {
        // Latin with composite glyphs (Ä, é), Arabic, CJK: the three faces a certificate mixes.
        for (key, text) in [
            (FontKey::Sans, "Vaccination Äé 2021-05-03"),
            (FontKey::Arabic, "شهادة التطعيم"),
            (FontKey::Cjk, "疫苗接种证书"),
        ] {
            let original = face(key).unwrap();
            let glyphs: Vec<u16> = text
                .chars()
                .filter_map(|c| original.glyph_index(c))
                .map(|g| g.0)
                .collect();
            let made = embedded(key, glyphs).unwrap();
            let mut program = Vec::new();
            flate2::read::ZlibDecoder::new(&made.font_file[..])
                .read_to_end(&mut program)
                .unwrap();
            assert_eq!(program.len(), made.length1, "{key:?}: /Length1");

            // Only what ISO 32000-1 §9.9 asks of an unhinted TrueType program for a CIDFont.
            let (tags, head) = tables(&program, b"head");
            assert_eq!(
                tags,
                ["glyf", "head", "hhea", "hmtx", "loca", "maxp"],
                "{key:?}"
            );

            // Every glyph the PDF refers to draws exactly as in the original font, with its advance
            // (read with ttf-parser, a parser independent of the subsetter).
            let subset = ttf_parser::Face::parse(&program, 0).unwrap();
            for (new, &old) in made.ids.iter().enumerate() {
                let new = u16::try_from(new).unwrap();
                assert_eq!(
                    outline(&subset, new),
                    outline(original, old),
                    "{key:?}: glyph {old}"
                );
                assert_eq!(
                    subset.glyph_hor_advance(GlyphId(new)),
                    original.glyph_hor_advance(GlyphId(old)),
                    "{key:?}: advance of glyph {old}"
                );
                assert_eq!(made.gid(old), new);
            }

            // No glyph has instructions left (stripping changes nothing); composites are among them.
            let (_, loca) = tables(&program, b"loca");
            let (_, glyf) = tables(&program, b"glyf");
            let long = u16_at(head, 50) == 1;
            let offset = |i: usize| {
                if long {
                    u32::from_be_bytes(loca[4 * i..4 * i + 4].try_into().unwrap()) as usize
                } else {
                    2 * usize::from(u16_at(loca, 2 * i))
                }
            };
            let mut composites = 0;
            for i in 0..usize::from(subset.number_of_glyphs()) {
                let glyph = &glyf[offset(i)..offset(i + 1)];
                if glyph.is_empty() {
                    continue;
                }
                composites += usize::from((u16_at(glyph, 0) as i16) < 0);
                assert_eq!(
                    glyph_without_instructions(glyph).as_deref(),
                    Some(glyph),
                    "{key:?}: subset glyph {i} has instructions"
                );
            }
            if key == FontKey::Sans {
                assert!(composites > 0, "the composite path is exercised");
            }
        }
    }

    #[test]
    fn instructions_are_cut_from_simple_and_composite_glyphs() {
        // A simple glyph: 1 contour, bbox, endPts [2], 3 instruction bytes, 3 flags, coordinates.
        let header = [0, 1, 0, 0, 0, 0, 0, 10, 0, 10, 0, 2];
        let points = [1, 1, 1, 0, 10, 0, 0, 0, 10];
        let simple = [&header[..], &[0, 3, 0xb0, 0x01, 0x2c], &points].concat();
        assert_eq!(
            glyph_without_instructions(&simple).unwrap(),
            [&header[..], &[0, 0], &points].concat()
        );
        // A composite of two components (byte arguments, the second with a scale); the first says
        // there are instructions (0x0100), which follow the last component.
        let composite = [
            &[0xff, 0xff, 0, 0, 0, 0, 0, 10, 0, 10][..],
            &[0x01, 0x22, 0, 5, 1, 2],
            &[0x00, 0x0a, 0, 6, 3, 4, 0x40, 0x00],
            &[0, 2, 0xb0, 0x01],
        ]
        .concat();
        assert_eq!(
            glyph_without_instructions(&composite).unwrap(),
            [
                &[0xff, 0xff, 0, 0, 0, 0, 0, 10, 0, 10][..],
                &[0x00, 0x22, 0, 5, 1, 2],
                &[0x00, 0x0a, 0, 6, 3, 4, 0x40, 0x00],
            ]
            .concat()
        );
        // Cut short: no panic, no glyph.
        assert_eq!(glyph_without_instructions(&simple[..13]), None);
        assert_eq!(glyph_without_instructions(&composite[..15]), None);
    }
}
