//! Shaping without the shaper, where the font proves it would come out the same.
//!
//! Most values on a certificate are short Latin lines (names, dates, vaccines). For them rustybuzz
//! normalises, runs every GSUB and GPOS lookup of the plan over the line and in the end only applies pair
//! kerning: most of the PDF's shaping time went there. This module asks the font once which
//! characters no rule of the plan can touch except pair kerning (`kern`, `dist`), and shapes lines made only
//! of them with the cmap, the advances and the kerning pairs, exactly as rustybuzz's `PairPos` does (same
//! lookup order, same skipping after a second value record). Any other line goes to rustybuzz.
//!
//! Why that is exact: every substitution or positioning starts at a glyph in its subtable's coverage, and a
//! glyph kept here is in no coverage of the plan but a kerning pair table's, or only in that of ligatures
//! and contextual rules that also need a glyph no such line can hold (a mark, say); so no rule but kerning
//! can apply inside such a line. No mark or default-ignorable character is kept, so the kerning pairs are
//! neighbours; the font has a glyph for every character kept, so normalisation leaves them as they are. The
//! unit tests compare both ways over every pair of characters and over random lines.

use std::collections::BTreeSet;

use rustybuzz::ttf_parser::gdef::GlyphClass;
use rustybuzz::ttf_parser::gpos::{PairAdjustment, PositioningSubtable, ValueRecord};
use rustybuzz::ttf_parser::gsub::SubstitutionSubtable;
use rustybuzz::ttf_parser::opentype_layout::{
    ChainedContextLookup, ClassDefinition, ContextLookup, LayoutTable,
};
use rustybuzz::ttf_parser::{Face, GlyphId, Tag};

/// The characters considered: Basic Latin, Latin-1 and Latin Extended-A/B, all of script Latin or Common
/// and none a combining mark; the no-break space (a space the shaper may substitute) and the soft hyphen
/// (default-ignorable) are left out.
fn considered(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{A1}'..='\u{24F}') && c != '\u{AD}'
}
const END: usize = 0x250;

/// Every feature rustybuzz's plan enables for a horizontal left-to-right line of the default shaper
/// (rustybuzz `hb/ot_shape.rs`: the common and horizontal features, `rvrn`, `ltra`, `ltrm`, `rand`, `trak`
/// and its own `Harf`/`Buzz` tags). The automatic fractions (`frac`, `numr`, `dnom`) apply only around
/// U+2044, which is not considered.
const PLAN_FEATURES: [&[u8; 4]; 23] = [
    b"rvrn", b"ltra", b"ltrm", b"rand", b"trak", b"Harf", b"HARF", b"Buzz", b"BUZZ", b"abvm",
    b"blwm", b"ccmp", b"locl", b"mark", b"mkmk", b"rlig", b"calt", b"clig", b"curs", b"dist",
    b"kern", b"liga", b"rclt",
];
const KERNING_FEATURES: [&[u8; 4]; 2] = [b"kern", b"dist"];
/// The scripts the plan is made for: Latin, and the default script of a line of digits and punctuation
/// only (rustybuzz finds no script in it).
const SCRIPTS: [&[u8; 4]; 2] = [b"latn", b"DFLT"];

/// A font's plain characters and its kerning.
pub(super) struct PlainFont {
    /// By character below [`END`]: its glyph and advance (font units), if the character is plain.
    glyphs: Vec<Option<(GlyphId, i32)>>,
    /// The pair-positioning subtables of each kerning lookup, lookups in the order the shaper applies them.
    kerning: Vec<Vec<PairAdjustment<'static>>>,
}

/// One glyph of a plain line, positioned in font units as rustybuzz would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Placed {
    pub gid: GlyphId,
    pub x_advance: i32,
    pub x_offset: i32,
    pub y_offset: i32,
}

impl PlainFont {
    /// What `face` can shape plainly; `None` when nothing can be proven (no layout tables for Latin, AAT
    /// tables, a legacy `kern` table without GPOS kerning, or kerning that differs between the scripts).
    pub(super) fn of(face: &'static Face<'static>) -> Option<PlainFont> {
        let tables = face.tables();
        if tables.morx.is_some() || tables.kerx.is_some() {
            return None;
        }
        let gsub = tables.gsub;
        let gpos = tables.gpos;
        let kerning_of = |script| lookups(gpos.as_ref(), script, &KERNING_FEATURES);
        let kerning = kerning_of(SCRIPTS[0])?;
        if kerning_of(SCRIPTS[1])? != kerning {
            return None;
        }
        if kerning.is_empty() && tables.kern.is_some() {
            return None;
        }
        // The plan's lookups in either script, each once, and the subtables of them some rule other than
        // pair kerning could start at.
        let mut plan_gsub = BTreeSet::new();
        let mut plan_gpos = BTreeSet::new();
        for script in SCRIPTS {
            plan_gsub.extend(lookups(gsub.as_ref(), script, &PLAN_FEATURES)?);
            plan_gpos.extend(lookups(gpos.as_ref(), script, &PLAN_FEATURES)?);
        }
        let mut touched: Vec<Coverage> = Vec::new();
        for index in plan_gsub {
            let lookup = gsub.as_ref()?.lookups.get(index)?;
            touched.extend(
                lookup
                    .subtables
                    .into_iter::<SubstitutionSubtable>()
                    .map(Coverage::Substitution),
            );
        }
        for index in plan_gpos {
            let lookup = gpos.as_ref()?.lookups.get(index)?;
            touched.extend(
                lookup
                    .subtables
                    .into_iter::<PositioningSubtable>()
                    .filter(|sub| {
                        !(kerning.contains(&index) && matches!(sub, PositioningSubtable::Pair(_)))
                    })
                    .map(Coverage::Positioning),
            );
        }
        let gdef = tables.gdef;
        let is_mark = |gid| {
            gdef.is_some_and(|g| {
                matches!(
                    g.glyph_class(gid),
                    Some(GlyphClass::Mark | GlyphClass::Component | GlyphClass::Ligature)
                )
            })
        };
        // Every glyph a line of considered characters can hold: a rule that needs any other glyph
        // (a mark, a ligature's component outside Latin) can never match in such a line.
        let candidates: Vec<Option<GlyphId>> = (0..END)
            .map(|code| {
                let c = char::from_u32(code as u32).filter(|&c| considered(c))?;
                face.glyph_index(c).filter(|g| g.0 != 0 && !is_mark(*g))
            })
            .collect();
        let in_line = Candidates(candidates.iter().flatten().copied().collect());
        let glyphs = candidates
            .iter()
            .map(|gid| {
                let gid = (*gid)?;
                if touched.iter().any(|rule| rule.fires(gid, &in_line)) {
                    return None;
                }
                Some((gid, i32::from(face.glyph_hor_advance(gid)?)))
            })
            .collect();
        let kerning = kerning
            .into_iter()
            .map(|index| {
                let lookup = gpos.as_ref()?.lookups.get(index)?;
                // A lookup that skips base glyphs never pairs these; one filtering marks by set has no
                // marks here to filter. Anything else it could skip is not kept.
                if lookup.flags.ignore_base_glyphs() {
                    return None;
                }
                Some(
                    lookup
                        .subtables
                        .into_iter::<PositioningSubtable>()
                        .filter_map(|sub| match sub {
                            PositioningSubtable::Pair(pair) => Some(pair),
                            _ => None,
                        })
                        .collect(),
                )
            })
            .collect::<Option<Vec<_>>>()?;
        Some(PlainFont { glyphs, kerning })
    }

    /// `text` shaped left to right, one glyph per character, if every character is plain in this font.
    pub(super) fn shape(&self, text: &str) -> Option<Vec<Placed>> {
        let mut placed = text
            .chars()
            .map(|c| {
                let (gid, x_advance) = (*self.glyphs.get(c as usize)?)?;
                Some(Placed {
                    gid,
                    x_advance,
                    x_offset: 0,
                    y_offset: 0,
                })
            })
            .collect::<Option<Vec<_>>>()?;
        for lookup in &self.kerning {
            kern(lookup, &mut placed);
        }
        Some(placed)
    }
}

/// One pair-positioning lookup over the line, as rustybuzz applies it (`hb/ot/layout/GPOS/pair_pos.rs`):
/// at each glyph the first subtable that has the pair applies, and the next pair starts at the second
/// glyph, or after it when the second value record is not empty.
fn kern(subtables: &[PairAdjustment<'static>], placed: &mut [Placed]) {
    let mut at = 0;
    while at + 1 < placed.len() {
        let (first, second) = (placed[at].gid, placed[at + 1].gid);
        let records = subtables.iter().find_map(|sub| pair(sub, first, second));
        let Some((record1, record2)) = records else {
            at += 1;
            continue;
        };
        apply(&record1, &mut placed[at]);
        apply(&record2, &mut placed[at + 1]);
        at += if is_empty(&record2) { 1 } else { 2 };
    }
}

fn pair<'a>(
    sub: &PairAdjustment<'a>,
    first: GlyphId,
    second: GlyphId,
) -> Option<(ValueRecord<'a>, ValueRecord<'a>)> {
    let index = sub.coverage().get(first)?;
    match sub {
        PairAdjustment::Format1 { sets, .. } => sets.get(index)?.get(second),
        PairAdjustment::Format2 {
            classes, matrix, ..
        } => matrix.get((classes.0.get(first), classes.1.get(second))),
    }
}

/// rustybuzz's `ValueRecordExt::is_empty`.
fn is_empty(record: &ValueRecord) -> bool {
    record.x_placement == 0
        && record.y_placement == 0
        && record.x_advance == 0
        && record.y_advance == 0
        && record.x_placement_device.is_none()
        && record.y_placement_device.is_none()
        && record.x_advance_device.is_none()
        && record.y_advance_device.is_none()
}

/// rustybuzz's `ValueRecordExt::apply_to_pos` for a horizontal line at the font's own scale (no ppem, no
/// variations: device tables do not apply).
fn apply(record: &ValueRecord, placed: &mut Placed) {
    placed.x_offset += i32::from(record.x_placement);
    placed.y_offset += i32::from(record.y_placement);
    placed.x_advance += i32::from(record.x_advance);
}

/// A subtable of the plan other than a kerning pair table.
enum Coverage {
    Substitution(SubstitutionSubtable<'static>),
    Positioning(PositioningSubtable<'static>),
}

impl Coverage {
    /// Whether this subtable can change something at `gid` in a line whose glyphs are all `in_line`: `gid`
    /// is in its coverage and, for a ligature or a contextual rule, every other glyph some rule needs can
    /// be in the line.
    fn fires(&self, gid: GlyphId, in_line: &Candidates) -> bool {
        match self {
            Coverage::Substitution(SubstitutionSubtable::Ligature(sub)) => {
                let Some(set) = sub.coverage.get(gid).and_then(|i| sub.ligature_sets.get(i)) else {
                    return false;
                };
                set.into_iter()
                    .any(|ligature| ligature.components.into_iter().all(|g| in_line.has(g)))
            }
            Coverage::Substitution(SubstitutionSubtable::Context(sub))
            | Coverage::Positioning(PositioningSubtable::Context(sub)) => {
                sub.coverage().contains(gid) && context_fires(sub, gid, in_line)
            }
            Coverage::Substitution(SubstitutionSubtable::ChainContext(sub))
            | Coverage::Positioning(PositioningSubtable::ChainContext(sub)) => {
                sub.coverage().contains(gid) && chain_fires(sub, gid, in_line)
            }
            Coverage::Substitution(sub) => sub.coverage().contains(gid),
            Coverage::Positioning(sub) => sub.coverage().contains(gid),
        }
    }
}

/// The glyphs a line of considered characters can hold, sorted.
struct Candidates(Vec<GlyphId>);

impl Candidates {
    fn has(&self, gid: GlyphId) -> bool {
        self.0.binary_search(&gid).is_ok()
    }
    fn has_class(&self, classes: &ClassDefinition, class: u16) -> bool {
        self.0.iter().any(|&g| classes.get(g) == class)
    }
    fn meets(&self, coverage: &rustybuzz::ttf_parser::opentype_layout::Coverage) -> bool {
        self.0.iter().any(|&g| coverage.contains(g))
    }
}

/// A contextual rule at `gid` (its first input glyph) can match only if each later input can be in the line.
fn context_fires(sub: &ContextLookup, gid: GlyphId, in_line: &Candidates) -> bool {
    match sub {
        ContextLookup::Format1 { coverage, sets } => {
            let Some(set) = coverage.get(gid).and_then(|i| sets.get(i)) else {
                return false;
            };
            set.into_iter()
                .any(|rule| rule.input.into_iter().all(|g| in_line.has(GlyphId(g))))
        }
        ContextLookup::Format2 { classes, sets, .. } => {
            let Some(set) = sets.get(classes.get(gid)) else {
                return false;
            };
            set.into_iter().any(|rule| {
                rule.input
                    .into_iter()
                    .all(|c| in_line.has_class(classes, c))
            })
        }
        ContextLookup::Format3 { coverages, .. } => {
            coverages.into_iter().skip(1).all(|c| in_line.meets(&c))
        }
    }
}

/// [`context_fires`] for chained rules: their backtrack and lookahead glyphs must be able to be in the line too.
fn chain_fires(sub: &ChainedContextLookup, gid: GlyphId, in_line: &Candidates) -> bool {
    match sub {
        ChainedContextLookup::Format1 { coverage, sets } => {
            let Some(set) = coverage.get(gid).and_then(|i| sets.get(i)) else {
                return false;
            };
            set.into_iter().any(|rule| {
                rule.backtrack
                    .into_iter()
                    .chain(rule.input)
                    .chain(rule.lookahead)
                    .all(|g| in_line.has(GlyphId(g)))
            })
        }
        ChainedContextLookup::Format2 {
            backtrack_classes,
            input_classes,
            lookahead_classes,
            sets,
            ..
        } => {
            let Some(set) = sets.get(input_classes.get(gid)) else {
                return false;
            };
            set.into_iter().any(|rule| {
                rule.backtrack
                    .into_iter()
                    .all(|c| in_line.has_class(backtrack_classes, c))
                    && rule
                        .input
                        .into_iter()
                        .all(|c| in_line.has_class(input_classes, c))
                    && rule
                        .lookahead
                        .into_iter()
                        .all(|c| in_line.has_class(lookahead_classes, c))
            })
        }
        ChainedContextLookup::Format3 {
            backtrack_coverages,
            input_coverages,
            lookahead_coverages,
            ..
        } => {
            backtrack_coverages.into_iter().all(|c| in_line.meets(&c))
                && input_coverages
                    .into_iter()
                    .skip(1)
                    .all(|c| in_line.meets(&c))
                && lookahead_coverages.into_iter().all(|c| in_line.meets(&c))
        }
    }
}

/// The lookup indices of `features` in `script`'s default language system (and its required feature),
/// sorted as the shaper applies them; `None` if the table has neither the script nor `DFLT`.
fn lookups(
    table: Option<&LayoutTable<'static>>,
    script: &[u8; 4],
    features: &[&[u8; 4]],
) -> Option<BTreeSet<u16>> {
    let Some(table) = table else {
        return Some(BTreeSet::new());
    };
    let script = table
        .scripts
        .find(Tag::from_bytes(script))
        .or_else(|| table.scripts.find(Tag::from_bytes(b"DFLT")))?;
    let Some(system) = script.default_language else {
        return Some(BTreeSet::new());
    };
    let mut out = BTreeSet::new();
    for index in system
        .required_feature
        .into_iter()
        .chain(system.feature_indices)
    {
        let feature = table.features.get(index)?;
        let required = system.required_feature == Some(index);
        if required || features.iter().any(|f| Tag::from_bytes(f) == feature.tag) {
            out.extend(feature.lookup_indices);
        }
    }
    Some(out)
}
