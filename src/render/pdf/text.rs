//! Text to positioned glyphs: bidi ordering (unicode-bidi), font fallback per character, and shaping
//! (rustybuzz, a port of HarfBuzz) so Arabic gets its contextual forms and marks their positions.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, Mutex, OnceLock};

use rustybuzz::{Direction, Language, Script, ShapePlan, UnicodeBuffer};
use unicode_bidi::BidiInfo;

use super::fonts::{face, FontKey};
use super::plain::PlainFont;
use crate::error::{Error, Result};

/// One glyph, placed relative to the start of its line (points; y up).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Glyph {
    pub font: FontKey,
    pub gid: u16,
    pub x: f32,
    pub y: f32,
    /// The characters this glyph stands for in copy-and-paste (its cluster's text for the first glyph
    /// of a cluster, empty for the others).
    pub text: String,
}

/// A single line of text, shaped and in visual (left-to-right drawing) order.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Line {
    pub glyphs: Vec<Glyph>,
    /// Advance width in points.
    pub width: f32,
    pub size: f32,
}

/// Most label lines remembered by [`shape_label`]: six built-in languages' labels, each also beside
/// English, at two or three sizes, with room for an operator's labels file.
const MAX_REMEMBERED_LABELS: usize = 2048;

/// Label lines shaped, by text, weight and size (the bits of the `f32`).
type RememberedLabels = HashMap<(String, bool, u32), Arc<Line>>;
static REMEMBERED_LABELS: OnceLock<Mutex<RememberedLabels>> = OnceLock::new();

/// [`shape_line`] for the page's fixed wording (labels, headings, captions: never a holder's data, which is
/// shaped afresh and not kept), remembered per text, weight and size. Every certificate in a language
/// prints the same labels, and shaping them again was two thirds of the PDF's CPU. When full, the memory
/// starts over, so it stays bounded whatever labels an operator configures.
pub(super) fn shape_label(text: &str, bold: bool, size: f32) -> Result<Arc<Line>> {
    let remembered = REMEMBERED_LABELS.get_or_init(Mutex::default);
    let key = (text.to_owned(), bold, size.to_bits());
    if let Some(line) = remembered.lock().ok().and_then(|r| r.get(&key).cloned()) {
        return Ok(line);
    }
    let line = Arc::new(shape_line(text, bold, size)?);
    if let Ok(mut r) = remembered.lock() {
        if r.len() >= MAX_REMEMBERED_LABELS {
            r.clear();
        }
        r.insert(key, Arc::clone(&line));
    }
    Ok(line)
}

/// Whether [`shape_label`] remembers a line of `text` (at any weight and size).
#[cfg(test)]
pub(super) fn is_remembered(text: &str) -> bool {
    REMEMBERED_LABELS
        .get()
        .and_then(|r| r.lock().ok())
        .is_some_and(|r| r.keys().any(|(t, _, _)| t == text))
}

/// Shapes `text` as one line at `size` points. Line breaks and other controls become spaces.
pub(super) fn shape_line(text: &str, bold: bool, size: f32) -> Result<Line> {
    let text: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if text.chars().all(|c| c < FIRST_RIGHT_TO_LEFT) {
        shape_left_to_right(&text, bold, size)
    } else {
        shape_bidi(&text, bold, size)
    }
}

/// A line without right-to-left characters. Below U+0590 there is no right-to-left letter, Arabic number,
/// embedding, isolate or paragraph separator (controls are spaces by now): the bidi algorithm would give
/// every character level 0, one left-to-right run, so it is not run. Most values (names, dates, vaccines)
/// are such lines.
fn shape_left_to_right(text: &str, bold: bool, size: f32) -> Result<Line> {
    let mut glyphs = Vec::new();
    let mut pen = 0.0f32;
    for (font, range) in font_runs(text, 0..text.len(), bold)? {
        pen = shape_piece(text, range, font, false, size, pen, &mut glyphs)?;
    }
    Ok(Line {
        glyphs,
        width: pen,
        size,
    })
}

/// A line in visual order by the Unicode bidi algorithm (UAX #9): its runs, each split by font.
fn shape_bidi(text: &str, bold: bool, size: f32) -> Result<Line> {
    let mut glyphs = Vec::new();
    let mut pen = 0.0f32;
    let bidi = BidiInfo::new(text, None);
    for para in &bidi.paragraphs {
        let (levels, runs) = bidi.visual_runs(para, para.range.clone());
        for run in runs {
            let rtl = levels.get(run.start).is_some_and(|l| l.is_rtl());
            let mut pieces = font_runs(text, run, bold)?;
            if rtl {
                // Inside a right-to-left run the first logical piece is drawn rightmost.
                pieces.reverse();
            }
            for (font, range) in pieces {
                pen = shape_piece(text, range, font, rtl, size, pen, &mut glyphs)?;
            }
        }
    }
    Ok(Line {
        glyphs,
        width: pen,
        size,
    })
}

/// The bidi formatting characters (embeddings, overrides, isolates, marks): they steer the ordering
/// (unicode-bidi reads them) and draw nothing, so no glyph, not even .notdef, is shaped for them.
fn is_bidi_format(c: char) -> bool {
    matches!(c, '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
}

/// Hebrew, the first block with right-to-left characters (UAX #9 bidi class R); the Arabic, Syriac and
/// later blocks, the explicit formatting characters and the paragraph separators are all above it.
const FIRST_RIGHT_TO_LEFT: char = '\u{0590}';

/// Whether `font` has a glyph for `c`. ASCII is answered from a table made once per font: every value line
/// asked this for each of its characters, a cmap search each time.
fn has_glyph(font: FontKey, c: char) -> Result<bool> {
    static ASCII: OnceLock<Result<[u128; 4]>> = OnceLock::new();
    if c.is_ascii() {
        let tables = ASCII.get_or_init(|| {
            let mut tables = [0u128; 4];
            for key in FontKey::ALL {
                let face = face(key)?;
                for b in 0u8..128 {
                    if face.glyph_index(char::from(b)).is_some() {
                        tables[key.index()] |= 1 << b;
                    }
                }
            }
            Ok(tables)
        });
        return match tables {
            Ok(t) => Ok(t[font.index()] >> (c as u32) & 1 == 1),
            Err(e) => Err(Error::Internal(format!("font table: {e}"))),
        };
    }
    Ok(face(font)?.glyph_index(c).is_some())
}

/// Splits `range` of `text` into pieces of one font each. A character stays in the current piece's font
/// when that font has it (so spaces, digits and marks do not break an Arabic or CJK word); otherwise the
/// first font of the fallback chain that has it starts a new piece. Bidi formatting characters are left
/// out: the piece ends before one and the next starts after it.
fn font_runs(text: &str, range: Range<usize>, bold: bool) -> Result<Vec<(FontKey, Range<usize>)>> {
    let chain = FontKey::fallback_chain(bold);
    let mut out: Vec<(FontKey, Range<usize>)> = Vec::new();
    let Some(slice) = text.get(range.clone()) else {
        return Ok(out);
    };
    // Whether the last piece may grow (no formatting character since it ended).
    let mut open = false;
    for (i, c) in slice.char_indices() {
        let at = range.start + i;
        let end = at + c.len_utf8();
        if is_bidi_format(c) {
            open = false;
            continue;
        }
        if let Some((font, r)) = out.last_mut().filter(|_| open) {
            if has_glyph(*font, c)? {
                r.end = end;
                continue;
            }
        }
        let mut chosen = chain[0];
        for key in chain {
            if has_glyph(key, c)? {
                chosen = key;
                break;
            }
        }
        match out.last_mut() {
            Some((font, r)) if open && *font == chosen => r.end = end,
            _ => out.push((chosen, at..end)),
        }
        open = true;
    }
    Ok(out)
}

/// The Latin fonts' plainly shaped characters ([`PlainFont`]), worked out once.
fn plain_font(font: FontKey) -> Option<&'static PlainFont> {
    static PLAIN: OnceLock<[Option<PlainFont>; 2]> = OnceLock::new();
    let plain = PLAIN.get_or_init(|| {
        [FontKey::Sans, FontKey::SansBold].map(|key| face(key).ok().and_then(|f| PlainFont::of(f)))
    });
    match font {
        FontKey::Sans => plain[0].as_ref(),
        FontKey::SansBold => plain[1].as_ref(),
        FontKey::Arabic | FontKey::Cjk => None,
    }
}

/// What a shaping plan depends on: font, direction, script, language.
type PlanKey = (FontKey, bool, Script, Option<Language>);

/// The shaping plan (the font's OpenType features compiled for a script and direction), made once:
/// compiling it costs more than shaping a line with it.
fn shape_plan(
    font: FontKey,
    rtl: bool,
    script: Script,
    language: Option<Language>,
) -> Result<Arc<ShapePlan>> {
    static PLANS: OnceLock<Mutex<HashMap<PlanKey, Arc<ShapePlan>>>> = OnceLock::new();
    let plans = PLANS.get_or_init(Default::default);
    let poisoned = || Error::Internal("shaping plan cache poisoned".into());
    let key = (font, rtl, script, language);
    if let Some(plan) = plans.lock().map_err(|_| poisoned())?.get(&key) {
        return Ok(Arc::clone(plan));
    }
    let direction = if rtl {
        Direction::RightToLeft
    } else {
        Direction::LeftToRight
    };
    let plan = Arc::new(ShapePlan::new(
        face(font)?,
        direction,
        Some(key.2),
        key.3.as_ref(),
        &[],
    ));
    // Scripts and languages are few; the map stays small.
    plans
        .lock()
        .map_err(|_| poisoned())?
        .insert(key, Arc::clone(&plan));
    Ok(plan)
}

/// Shapes one single-font, single-direction piece and appends its glyphs at `pen`; returns the new pen.
fn shape_piece(
    text: &str,
    range: Range<usize>,
    font: FontKey,
    rtl: bool,
    size: f32,
    pen: f32,
    out: &mut Vec<Glyph>,
) -> Result<f32> {
    let Some(piece) = text.get(range) else {
        return Ok(pen);
    };
    let face = face(font)?;
    let scale = size / face.units_per_em() as f32;
    if !rtl {
        if let Some(placed) = plain_font(font).and_then(|plain| plain.shape(piece)) {
            // One glyph per character, each its own cluster.
            let mut pen = pen;
            for (c, glyph) in piece.chars().zip(placed) {
                out.push(Glyph {
                    font,
                    gid: glyph.gid.0,
                    x: pen + glyph.x_offset as f32 * scale,
                    y: glyph.y_offset as f32 * scale,
                    text: c.to_string(),
                });
                pen += glyph.x_advance as f32 * scale;
            }
            return Ok(pen);
        }
    }
    shape_with_rustybuzz(piece, font, rtl, scale, pen, out)
}

/// [`shape_piece`] by rustybuzz: any script, direction and font.
fn shape_with_rustybuzz(
    piece: &str,
    font: FontKey,
    rtl: bool,
    scale: f32,
    pen: f32,
    out: &mut Vec<Glyph>,
) -> Result<f32> {
    let face = face(font)?;
    let mut buffer = UnicodeBuffer::new();
    buffer.push_str(piece);
    buffer.guess_segment_properties();
    buffer.set_direction(if rtl {
        Direction::RightToLeft
    } else {
        Direction::LeftToRight
    });
    let plan = shape_plan(font, rtl, buffer.script(), buffer.language())?;
    let shaped = rustybuzz::shape_with_plan(face, &plan, buffer);

    // Cluster values are byte offsets into `piece`; a cluster's text runs to the next cluster start.
    let mut starts: Vec<usize> = shaped
        .glyph_infos()
        .iter()
        .map(|g| g.cluster as usize)
        .collect();
    starts.sort_unstable();
    starts.dedup();
    let cluster_text = |c: usize| -> String {
        let end = starts
            .iter()
            .find(|&&s| s > c)
            .copied()
            .unwrap_or(piece.len());
        piece.get(c..end).unwrap_or_default().to_owned()
    };

    let mut pen = pen;
    // Whether a cluster (by its start) has had its first glyph.
    let mut seen = vec![false; starts.len()];
    for (info, pos) in shaped.glyph_infos().iter().zip(shaped.glyph_positions()) {
        let cluster = info.cluster as usize;
        let first = starts
            .binary_search(&cluster)
            .ok()
            .and_then(|i| seen.get_mut(i))
            .is_some_and(|seen| !std::mem::replace(seen, true));
        let text = if first {
            cluster_text(cluster)
        } else {
            String::new()
        };
        out.push(Glyph {
            font,
            gid: u16::try_from(info.glyph_id).unwrap_or(0),
            x: pen + pos.x_offset as f32 * scale,
            y: pos.y_offset as f32 * scale,
            text,
        });
        pen += pos.x_advance as f32 * scale;
    }
    Ok(pen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arabic_is_shaped_into_contextual_forms_and_drawn_right_to_left() {
        // "سلام": seen, lam, alef, meem. Unshaped, each letter would use its isolated-form glyph.
        let word = "\u{0633}\u{0644}\u{0627}\u{0645}";
        let line = shape_line(word, false, 10.0).unwrap();
        assert!(line.glyphs.iter().all(|g| g.font == FontKey::Arabic));
        let arabic = face(FontKey::Arabic).unwrap();
        let isolated: Vec<u16> = word
            .chars()
            .map(|c| arabic.glyph_index(c).unwrap().0)
            .collect();
        let shaped: Vec<u16> = line.glyphs.iter().map(|g| g.gid).collect();
        // The initial seen differs from the isolated seen.
        assert_ne!(
            shaped.last(),
            isolated.first(),
            "seen is not in its initial form"
        );
        // Visual order: the first letter (seen) is drawn last, at the right.
        assert_eq!(
            line.glyphs.last().map(|g| g.text.as_str()),
            Some("\u{0633}")
        );
        assert!(line.width > 0.0);
    }

    #[test]
    fn an_isolated_date_stays_left_to_right_in_a_right_to_left_line() {
        // The Arabic validity line: "2021-04-05 إلى 2022-04-05", each date a left-to-right isolate. The
        // line is right to left, so the second date is drawn leftmost; inside each date the glyphs run
        // left to right, 2,0,2,2,-,0,4,-,0,5 (without the isolates: 0,5,-,0,4,-,2,0,2,2).
        let line = shape_line(
            "\u{2066}2021-04-05\u{2069} \u{0625}\u{0644}\u{0649} \u{2066}2022-04-05\u{2069}",
            false,
            10.0,
        )
        .unwrap();
        let visual: String = line.glyphs.iter().map(|g| g.text.as_str()).collect();
        assert!(visual.starts_with("2022-04-05 "), "{visual:?}");
        assert!(visual.ends_with(" 2021-04-05"), "{visual:?}");
        // Drawn left to right: each glyph right of the one before it, except inside the Arabic word.
        let date: Vec<&Glyph> = line.glyphs.iter().take(10).collect();
        assert!(date.windows(2).all(|w| w[0].x < w[1].x));
        // The isolates draw nothing: no glyph for them, no .notdef, and no text of theirs to copy.
        assert!(line.glyphs.iter().all(|g| g.gid != 0), "no .notdef glyph");
        assert!(!visual.contains(['\u{2066}', '\u{2069}']));
        let date_glyphs = line.glyphs.iter().filter(|g| {
            !g.text.is_empty() && g.text.chars().all(|c| c.is_ascii_digit() || c == '-')
        });
        assert_eq!(date_glyphs.count(), 20);
    }

    #[test]
    fn a_line_without_right_to_left_characters_is_drawn_as_the_bidi_algorithm_would() {
        let lines = [
            "Jane Doe",
            "Zoë Ångström-Łukasiewicz, Jr.",
            "2021-04-05 (1/2) #12: \"Comirnaty\" - 30 µg ½ § © ¿?",
            "Ελένη Παπαδοπούλου",
            "Иван Петрович Сидоров",
            "Ֆ Armenian, e\u{0301} a combining mark, ʃ IPA, ˈ modifier",
            "tab\tand\nnewline",
            "",
            " ",
        ];
        for text in lines {
            for bold in [false, true] {
                let text: String = text
                    .chars()
                    .map(|c| if c.is_control() { ' ' } else { c })
                    .collect();
                assert!(text.chars().all(|c| c < FIRST_RIGHT_TO_LEFT));
                assert_eq!(
                    shape_left_to_right(&text, bold, 10.0).unwrap(),
                    shape_bidi(&text, bold, 10.0).unwrap(),
                    "{text:?}"
                );
            }
        }
    }

    /// Both ways of shaping a left-to-right piece, at 10 pt.
    fn both_ways(text: &str, font: FontKey) -> (Option<Vec<Glyph>>, Vec<Glyph>) {
        let plain = plain_font(font).and_then(|p| p.shape(text)).map(|_| {
            let mut glyphs = Vec::new();
            shape_piece(text, 0..text.len(), font, false, 10.0, 0.0, &mut glyphs).unwrap();
            glyphs
        });
        let scale = 10.0 / face(font).unwrap().units_per_em() as f32;
        let mut shaped = Vec::new();
        shape_with_rustybuzz(text, font, false, scale, 0.0, &mut shaped).unwrap();
        (plain, shaped)
    }

    #[test]
    fn plain_lines_are_drawn_exactly_as_rustybuzz_draws_them() {
        use rand::{Rng, SeedableRng};
        for font in [FontKey::Sans, FontKey::SansBold] {
            let plain: Vec<char> = (' '..='\u{24F}')
                .filter(|&c| plain_font(font).unwrap().shape(&c.to_string()).is_some())
                .collect();
            let letters = plain.iter().filter(|c| c.is_ascii_alphanumeric()).count();
            // Noto Sans: every ASCII letter and digit but `f` (its ligatures).
            assert!(
                letters >= 60,
                "{font:?}: only {letters} ASCII letters and digits are plain"
            );
            // Every pair (kerning is between neighbours), then random lines (kerning lookups in order,
            // pairs that skip their second glyph).
            for &a in &plain {
                for &b in plain.iter().filter(|c| c.is_ascii()) {
                    let text = format!("{a}{b}");
                    let (plain, shaped) = both_ways(&text, font);
                    assert_eq!(plain.as_ref(), Some(&shaped), "{font:?} {text:?}");
                }
            }
            let mut random = rand::rngs::StdRng::seed_from_u64(19);
            for _ in 0..2000 {
                let len = random.gen_range(1..24);
                let text: String = (0..len)
                    .map(|_| plain[random.gen_range(0..plain.len())])
                    .collect();
                let (plain, shaped) = both_ways(&text, font);
                assert_eq!(plain.as_ref(), Some(&shaped), "{font:?} {text:?}");
            }
            for name in [
                "Jane Doe",
                "AVAWAY To Ty",
                "Comirnaty 2021-04-05",
                "Ångström, Zoë",
            ] {
                // Names without `f`: all plain, so the fast path is the one compared.
                let (plain, shaped) = both_ways(name, font);
                assert_eq!(plain.as_ref(), Some(&shaped), "{font:?} {name:?}");
            }
        }
    }

    #[test]
    fn scripts_fall_back_to_the_font_that_has_them() {
        let line = shape_line("Ab Вл 奥 س", false, 10.0).unwrap();
        let fonts: Vec<FontKey> = line.glyphs.iter().map(|g| g.font).collect();
        assert!(fonts.contains(&FontKey::Sans));
        assert!(fonts.contains(&FontKey::Cjk));
        assert!(fonts.contains(&FontKey::Arabic));
        assert!(line.glyphs.iter().all(|g| g.gid != 0), "no .notdef glyph");
    }
}
