//! The fonts compiled into the binary, parsed once, and per-document subsets of them.
//!
//! Rendering must not depend on the host's fonts (a container has none, and a different host font
//! would change the certificate), so the font files live in `assets/fonts/` and are `include_bytes!`ed.
//! A PDF embeds only the glyphs it uses: the CJK font alone is 4 MB.

use std::collections::BTreeMap;
use std::sync::OnceLock;

use allsorts::binary::read::ReadScope;
use allsorts::font_data::FontData;
use allsorts::subset::{subset, CmapTarget, SubsetProfile};
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

/// A font reduced to the glyphs one document uses, with the renumbering of its glyph ids.
pub(super) struct Subset {
    pub bytes: Vec<u8>,
    /// original glyph id → glyph id in `bytes`
    pub gid_map: BTreeMap<u16, u16>,
    /// `/BaseFont`: a tag derived from the glyph set, `+`, the PostScript name (ISO 32000-1 §9.6.4).
    pub base_font: String,
}

/// Subsets `key` to `glyphs` (glyph 0, .notdef, is always kept first, as the subsetter requires).
pub(super) fn subset_font(key: FontKey, glyphs: impl IntoIterator<Item = u16>) -> Result<Subset> {
    let mut ids: Vec<u16> = std::iter::once(0)
        .chain(glyphs.into_iter().filter(|g| *g != 0))
        .collect();
    ids[1..].sort_unstable();
    ids.dedup();
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
    let bytes = subset(&provider, &ids, &SubsetProfile::Pdf, CmapTarget::Unicode)
        .map_err(|e| internal("subset", &e))?;
    // The subsetter numbers glyphs by their position in `ids`.
    let gid_map = ids
        .iter()
        .enumerate()
        .filter_map(|(new, &old)| u16::try_from(new).ok().map(|new| (old, new)))
        .collect();
    Ok(Subset {
        bytes,
        gid_map,
        base_font: format!("{}+{}", subset_tag(&ids), key.postscript_name()),
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
