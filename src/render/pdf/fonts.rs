//! The fonts compiled into the binary, parsed once, and the subsets of them documents embed.
//!
//! Rendering must not depend on the host's fonts (a container has none, and a different host font
//! would change the certificate), so the font files live in `assets/fonts/` and are `include_bytes!`ed.
//! A PDF embeds only the glyphs it uses: the CJK font alone is 4 MB.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use allsorts::binary::read::ReadScope;
use allsorts::font_data::FontData;
use allsorts::subset::{subset, CmapTarget, SubsetProfile};
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
    const ALL: [FontKey; 4] = [
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

    fn index(self) -> usize {
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
    // The subsetter numbers glyphs by their position in `ids`.
    let bytes = subset(&provider, &ids, &SubsetProfile::Pdf, CmapTarget::Unicode)
        .map_err(|e| internal("subset", &e))?;
    let font_file = super::deflate::deflate(&bytes)?;

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
