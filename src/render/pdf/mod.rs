//! The citizen PDF: one page with the holder, the vaccination, the certificate data and its QR codes.
//!
//! Layout is computed first (text shaped into glyphs, QR symbols encoded), then each font is subset to
//! the glyphs the page uses (a subset is made once per distinct glyph set and shared), and only then is
//! the file written ([`writer`]), with the subset glyph ids (`/Identity-H` fonts, and a `/ToUnicode` map
//! from each glyph to the text of its cluster). Glyphs are drawn in visual order, which is what text extractors expect: poppler gives
//! back right-to-left text in logical order from it. (An `/ActualText` span would make it worse:
//! poppler spreads that text left to right and then reverses the right-to-left line.)

mod deflate;
mod fonts;
mod labels;
mod plain;
mod text;
mod writer;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use labels::{Labels, Language};

use self::fonts::FontKey;
use self::text::{shape_label, shape_line, Line};
use super::qr;
use crate::domain::{Code, FhirDate, VaccinationEvent};
use crate::error::{Error, Result};

/// Paper size of the certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Paper {
    /// ISO 216 A4, 210 × 297 mm.
    #[default]
    A4,
    /// US Letter, 8.5 × 11 in.
    Letter,
}

impl Paper {
    /// Width and height in points.
    fn size_pt(self) -> (f32, f32) {
        match self {
            Paper::A4 => (mm(210.0), mm(297.0)),
            Paper::Letter => (612.0, 792.0),
        }
    }
}

/// How the PDF is printed.
#[derive(Debug, Clone, Default)]
pub struct PdfOptions {
    pub paper: Paper,
    pub labels: Labels,
    /// The language of `labels`. Other than English, each label is printed with its English text under
    /// it (a bilingual certificate), and Arabic mirrors the page (right to left).
    pub language: Language,
    /// Signed with a development key: the page and the document title say so.
    pub development_key: bool,
    /// The issuer by name (`DDCC_ISSUER_NAME`), printed instead of its identifier.
    pub issuer_name: Option<String>,
}

/// Which payload a QR carries (decides its printed label): the document module's kind, so there is one.
pub use crate::document::QrKind;

/// One signed payload to print as a QR code.
#[derive(Debug, Clone, Copy)]
pub struct PdfQr<'a> {
    pub kind: QrKind,
    /// The symbol of its `HC1:` string, encoded once by the caller for every rendering.
    pub symbol: &'a qr::QrSymbol,
}

/// Dates of the signed credential (from its CWT claims), which the questionnaire does not carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IssueDates {
    /// Date of issue (CWT `iat`).
    pub issued: time::Date,
    /// First day the certificate is valid.
    pub valid_from: time::Date,
    /// Last day (CWT `exp`), when it expires.
    pub valid_until: Option<time::Date>,
}

/// The smallest printed QR side, so a phone camera reads it from paper.
const MIN_QR_MM: f32 = 35.0;
/// Module sizes and positions are multiples of this when they can be: 1.44 pt is a whole number of
/// pixels at 150, 200, 300 and 600 dpi (3, 4, 6, 12), so a raster of the page has sharp modules of
/// equal width, which QR decoders read best.
const PIXEL_GRID_PT: f32 = 1.44;
/// The largest, so two fit side by side with room for the text.
const MAX_QR_MM: f32 = 80.0;
const MARGIN_MM: f32 = 18.0;
const LABEL_COLUMN_MM: f32 = 58.0;
/// The smallest font size a too-long value is shrunk to before it is allowed to run over.
const MIN_VALUE_PT: f32 = 5.5;
/// Size and grey of the English lines of a bilingual certificate.
const ENGLISH_PT: f32 = 6.5;
const ENGLISH_GREY: f32 = 0.45;

fn mm(v: f32) -> f32 {
    v * 72.0 / 25.4
}

/// Renders the certificate PDF of `event` with one QR per payload (one or two: DDCC, EU DCC).
pub fn certificate_pdf(
    event: &VaccinationEvent,
    qrs: &[PdfQr<'_>],
    dates: &IssueDates,
    options: &PdfOptions,
) -> Result<Vec<u8>> {
    if qrs.is_empty() || qrs.len() > 2 {
        return Err(Error::Internal(format!(
            "the certificate PDF prints one or two QR codes, not {}",
            qrs.len()
        )));
    }
    let layout = Layout::certificate(event, qrs, dates, options)?;
    layout.write(options)
}

/// Something drawn on the page, in PDF coordinates (points, origin bottom-left).
enum Item<'a> {
    /// `grey`: 0 black … 1 white.
    Text {
        line: Arc<Line>,
        x: f32,
        y: f32,
        grey: f32,
    },
    Rule {
        x1: f32,
        x2: f32,
        y: f32,
    },
    Qr {
        code: &'a qr::QrSymbol,
        x: f32,
        y: f32,
        side: f32,
    },
}

struct Layout<'a> {
    width: f32,
    height: f32,
    /// Right to left: every left-aligned x is mirrored and the text right-aligned there.
    rtl: bool,
    issued: time::Date,
    items: Vec<Item<'a>>,
}

/// A section's rows: label, and the value when the event has one.
type Rows<'a> = Vec<(&'a str, Option<String>)>;

/// How a line of text is aligned at its x.
#[derive(Clone, Copy)]
enum Align {
    Left,
    Centre,
    Right,
}

impl<'a> Layout<'a> {
    fn certificate(
        event: &VaccinationEvent,
        qrs: &[PdfQr<'a>],
        dates: &IssueDates,
        options: &PdfOptions,
    ) -> Result<Self> {
        let (width, height) = options.paper.size_pt();
        let l = &options.labels;
        // A bilingual certificate prints English with the national language.
        let en = (options.language != Language::English).then(Labels::english);
        let mut page = Layout {
            width,
            height,
            rtl: options.language.is_rtl(),
            issued: dates.issued,
            items: Vec::new(),
        };
        let left = mm(MARGIN_MM);
        let right = width - mm(MARGIN_MM);
        let value_x = left + mm(LABEL_COLUMN_MM);
        // `y` is the baseline, measured down from the top edge while laying out.
        let mut y = mm(MARGIN_MM) + 20.0;
        page.text(&l.title, true, 20.0, left, y, 0.0, Align::Left, None)?;
        if let Some(en) = &en {
            y += 13.0;
            page.text(
                &en.title,
                true,
                10.0,
                left,
                y,
                ENGLISH_GREY,
                Align::Left,
                None,
            )?;
        }
        y += 16.0;
        page.text(&l.subtitle, false, 9.0, left, y, 0.35, Align::Left, None)?;
        if options.development_key {
            y += 14.0;
            page.text(
                &both(
                    &l.development_key,
                    en.as_ref().map(|e| e.development_key.as_str()),
                ),
                true,
                10.0,
                left,
                y,
                0.0,
                Align::Left,
                Some(right - left),
            )?;
        }
        y += 9.0;
        page.rule(left, right, y);

        let v = &event.vaccination;
        let h = &event.holder;
        let c = &event.certificate;
        let date = |d: &FhirDate| d.to_string();
        // The English of each label, found by its position: `sections` lists them in the same order.
        let english = en.as_ref().map(|e| Self::rows_of(e));
        let sections: [(&str, Rows<'_>); 3] = [
            (
                &l.holder,
                vec![
                    (&l.name, Some(h.name.to_string())),
                    (&l.birth_date, h.birth_date.as_ref().map(date)),
                    (&l.identifier, h.identifier.as_ref().map(|i| i.to_string())),
                    (&l.sex, h.sex.map(|s| l.sex(s).to_owned())),
                ],
            ),
            (
                &l.vaccination,
                vec![
                    (&l.disease, v.disease.as_ref().map(coded)),
                    (&l.vaccine, Some(coded(&v.vaccine))),
                    (&l.brand, Some(coded(&v.brand))),
                    (&l.manufacturer, v.producer.manufacturer().map(coded)),
                    (&l.ma_holder, v.producer.ma_holder().map(coded)),
                    (&l.lot, Some(v.lot.to_string())),
                    (&l.date, Some(date(&v.date))),
                    (
                        &l.dose,
                        Some(match v.total_doses {
                            Some(t) => format!("{} {} {}", v.dose.get(), l.dose_of, t.get()),
                            None => v.dose.get().to_string(),
                        }),
                    ),
                    (&l.centre, Some(v.centre.to_string())),
                    (&l.country, Some(country_text(v.country))),
                    (
                        &l.health_worker,
                        v.health_worker.as_ref().map(|w| w.to_string()),
                    ),
                    (&l.next_dose, v.next_dose.as_ref().map(date)),
                ],
            ),
            (
                &l.certificate,
                vec![
                    (
                        &l.issuer,
                        Some(
                            options
                                .issuer_name
                                .clone()
                                .unwrap_or_else(|| c.issuer.to_string()),
                        ),
                    ),
                    (&l.certificate_id, Some(c.hcid.to_string())),
                    (
                        &l.validity,
                        Some(match dates.valid_until {
                            Some(until) => format!(
                                "{} {} {}",
                                ltr(&iso(dates.valid_from)),
                                l.validity_to,
                                ltr(&iso(until))
                            ),
                            None => {
                                format!("{} {}", l.validity_from, ltr(&iso(dates.valid_from)))
                            }
                        }),
                    ),
                    (&l.issued, Some(iso(dates.issued))),
                ],
            ),
        ];
        let value_width = right - value_x;
        for (s, (heading, rows)) in sections.iter().enumerate() {
            let english = english.as_ref().and_then(|e| e.get(s));
            y += 20.0;
            let heading = both(heading, english.map(|e| e.0));
            page.text(&heading, true, 11.5, left, y, 0.0, Align::Left, None)?;
            y += 3.0;
            for (r, (label, value)) in rows.iter().enumerate() {
                let Some(value) = value else { continue };
                y += 14.0;
                // "Nom / Name" in the label column, shrunk to fit when it must.
                let label = both(label, english.and_then(|e| e.1.get(r).copied()));
                page.text(
                    &label,
                    false,
                    9.0,
                    left,
                    y,
                    0.35,
                    Align::Left,
                    Some(value_x - left - 6.0),
                )?;
                page.value(value, 10.0, value_x, y, value_width)?;
            }
        }
        y += 10.0;
        page.rule(left, right, y);

        // QR codes share the rest of the page, above the verification line.
        let verify_y = height - mm(MARGIN_MM);
        // On a bilingual certificate the national sentence stands above the English one.
        let verify_national_y = if en.is_some() {
            verify_y - 11.0
        } else {
            verify_y
        };
        let label_gap = 18.0;
        let gap = mm(12.0);
        let n = qrs.len() as f32;
        let available_h = verify_national_y - 16.0 - label_gap - (y + 12.0);
        let available_w = (right - left - gap * (n - 1.0)) / n;
        let side = available_h.min(available_w).min(mm(MAX_QR_MM));
        if side < mm(MIN_QR_MM) {
            return Err(Error::Internal(format!(
                "only {:.0} mm left for the QR codes on this paper; they need {MIN_QR_MM} mm",
                side * 25.4 / 72.0
            )));
        }
        let total = side * n + gap * (n - 1.0);
        // Right below the data, so no empty band separates them from it.
        let qr_top = y + 12.0;
        let slot_x = |i: usize| left + (right - left - total) / 2.0 + i as f32 * (side + gap);
        let sides = qr_sides(qrs.iter().map(|q| q.symbol.width()), side);
        // At the top of the space left, right under the data (no empty band above the codes), centred in
        // their slots; the labels on one line under the largest.
        let top = snap(qr_top);
        let tallest = sides.iter().copied().fold(0.0, f32::max);
        for (i, (q, &qside)) in qrs.iter().zip(&sides).enumerate() {
            page.items.push(Item::Qr {
                code: q.symbol,
                x: snap(slot_x(i) + (side - qside) / 2.0),
                y: height - (top + qside),
                side: qside,
            });
            let label = match q.kind {
                QrKind::Who => both(&l.qr_ddcc, en.as_ref().map(|e| e.qr_ddcc.as_str())),
                QrKind::Dcc => both(&l.qr_eu_dcc, en.as_ref().map(|e| e.qr_eu_dcc.as_str())),
            };
            page.text(
                &label,
                true,
                10.0,
                slot_x(i) + side / 2.0,
                top + tallest + 12.0,
                0.0,
                Align::Centre,
                None,
            )?;
        }
        page.text(
            &l.how_to_verify,
            false,
            8.5,
            width / 2.0,
            verify_national_y,
            0.35,
            Align::Centre,
            Some(right - left),
        )?;
        if let Some(en) = &en {
            page.text(
                &en.how_to_verify,
                false,
                ENGLISH_PT + 1.0,
                width / 2.0,
                verify_y,
                ENGLISH_GREY,
                Align::Centre,
                Some(right - left),
            )?;
        }
        Ok(page)
    }

    /// The section headings and row labels of `l`, in the order [`Layout::certificate`] prints them.
    fn rows_of(l: &Labels) -> [(&str, Vec<&str>); 3] {
        [
            (
                &l.holder,
                vec![&l.name, &l.birth_date, &l.identifier, &l.sex],
            ),
            (
                &l.vaccination,
                vec![
                    &l.disease,
                    &l.vaccine,
                    &l.brand,
                    &l.manufacturer,
                    &l.ma_holder,
                    &l.lot,
                    &l.date,
                    &l.dose,
                    &l.centre,
                    &l.country,
                    &l.health_worker,
                    &l.next_dose,
                ],
            ),
            (
                &l.certificate,
                vec![&l.issuer, &l.certificate_id, &l.validity, &l.issued],
            ),
        ]
    }

    /// Places one line of the page's fixed wording (a label, heading or caption: see [`shape_label`])
    /// with its baseline `top` points below the top edge. When it is wider than `max_width` it is shaped
    /// again at a smaller size.
    #[allow(clippy::too_many_arguments)]
    fn text(
        &mut self,
        s: &str,
        bold: bool,
        size: f32,
        x: f32,
        top: f32,
        grey: f32,
        align: Align,
        max_width: Option<f32>,
    ) -> Result<()> {
        let line = fitted(s, bold, size, max_width, shape_label)?;
        self.place(line, x, top, grey, align)
    }

    /// Places one value: the holder's or the vaccination's data, shaped afresh and never remembered.
    fn value(&mut self, s: &str, size: f32, x: f32, top: f32, max_width: f32) -> Result<()> {
        let shape = |s: &str, bold, size| shape_line(s, bold, size).map(Arc::new);
        let line = fitted(s, false, size, Some(max_width), shape)?;
        self.place(line, x, top, 0.0, Align::Left)
    }

    fn place(&mut self, line: Arc<Line>, x: f32, top: f32, grey: f32, align: Align) -> Result<()> {
        // Right to left, the page is mirrored: what starts at x from the left ends at x from the right.
        let (x, align) = match align {
            Align::Left if self.rtl => (self.width - x, Align::Right),
            other => (x, other),
        };
        let x = match align {
            Align::Left => x,
            Align::Centre => x - line.width / 2.0,
            Align::Right => x - line.width,
        };
        self.items.push(Item::Text {
            line,
            x,
            y: self.height - top,
            grey,
        });
        Ok(())
    }

    fn rule(&mut self, x1: f32, x2: f32, top: f32) {
        self.items.push(Item::Rule {
            x1,
            x2,
            y: self.height - top,
        });
    }

    /// Subsets the fonts to the glyphs used and writes the PDF.
    fn write(self, options: &PdfOptions) -> Result<Vec<u8>> {
        let mut used: BTreeMap<FontKey, Vec<u16>> = BTreeMap::new();
        for item in &self.items {
            if let Item::Text { line, .. } = item {
                for g in &line.glyphs {
                    used.entry(g.font).or_default().push(g.gid);
                }
            }
        }
        let fonts = used
            .into_iter()
            .map(|(key, glyphs)| {
                Ok(writer::PageFont {
                    key,
                    embedded: fonts::embedded(key, glyphs)?,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        // No personal data in the document information: a title that is the same for everyone, and the
        // issue date (not personal), so identical input gives a byte-identical file.
        let d = self.issued;
        let title = if options.development_key {
            format!(
                "{} ({})",
                options.labels.title, options.labels.development_key
            )
        } else {
            options.labels.title.clone()
        };
        let info = writer::Info {
            title: &title,
            subject: &options.labels.subtitle,
            date: format!(
                "D:{:04}{:02}{:02}000000+00'00'",
                d.year(),
                u8::from(d.month()),
                d.day()
            ),
        };
        writer::document((self.width, self.height), &self.items, &fonts, &info)
    }
}

/// `v` on the [`PIXEL_GRID_PT`] grid.
fn snap(v: f32) -> f32 {
    (v / PIXEL_GRID_PT).round() * PIXEL_GRID_PT
}

/// Finer grids a module size may sit on when [`PIXEL_GRID_PT`] is too coarse for it: whole pixels at 200,
/// 300 and 600 dpi (0.72 pt), at 150, 300 and 600 dpi (0.48 pt), at 300 and 600 dpi (0.24 pt).
const FINER_GRIDS_PT: [f32; 3] = [
    PIXEL_GRID_PT / 2.0,
    PIXEL_GRID_PT / 3.0,
    PIXEL_GRID_PT / 6.0,
];
/// How far a symbol's printed side may differ from the others' so its modules sit on a pixel grid.
const SIDE_TOLERANCE: f32 = 0.005;

/// The printed side (points, quiet zone included) of each QR of `widths` modules (without the quiet
/// zone) in square slots of `slot` points: all the same side, so the codes look alike whatever their
/// versions. The symbol with the most modules sets it: the largest whole multiple of [`PIXEL_GRID_PT`]
/// per module that fits and keeps it [`MIN_QR_MM`] wide. Each other symbol takes the module size on the
/// coarsest grid (that one, then [`FINER_GRIDS_PT`]) that comes within [`SIDE_TOLERANCE`] of that side,
/// or exactly that side. When no multiple fits, every symbol fills the slot exactly.
fn qr_sides(widths: impl Iterator<Item = usize> + Clone, slot: f32) -> Vec<f32> {
    let modules = |w: usize| (w + 2 * qr::QUIET_ZONE_MODULES as usize) as f32;
    let most = widths.clone().map(modules).fold(0.0, f32::max);
    let snapped = (slot / most / PIXEL_GRID_PT).floor() * PIXEL_GRID_PT;
    if !(snapped > 0.0 && snapped * most >= mm(MIN_QR_MM)) {
        return widths.map(|_| slot).collect();
    }
    let side = snapped * most;
    widths
        .map(|w| {
            let n = modules(w);
            std::iter::once(PIXEL_GRID_PT)
                .chain(FINER_GRIDS_PT)
                .map(|grid| (side / n / grid).round() * grid * n)
                .find(|&s| {
                    (s - side).abs() <= SIDE_TOLERANCE * side && s <= slot && s >= mm(MIN_QR_MM)
                })
                .unwrap_or(side)
        })
        .collect()
}

/// `s` shaped by `shape` at `size`, or again smaller when it is wider than `max_width` (not below
/// [`MIN_VALUE_PT`]: past that it may run over).
fn fitted(
    s: &str,
    bold: bool,
    size: f32,
    max_width: Option<f32>,
    shape: impl Fn(&str, bool, f32) -> Result<Arc<Line>>,
) -> Result<Arc<Line>> {
    let line = shape(s, bold, size)?;
    match max_width {
        Some(max) if line.width > max => {
            shape(s, bold, (size * max / line.width).max(MIN_VALUE_PT))
        }
        _ => Ok(line),
    }
}

/// A national label with its English beside it ("Nom / Name"), or alone when there is no English to add
/// (an English certificate) or it reads the same ("DDCC").
fn both(national: &str, english: Option<&str>) -> String {
    match english {
        Some(en) if en != national => format!("{national} / {en}"),
        _ => national.to_owned(),
    }
}

/// A coded value prints its display when there is one, else its code.
fn coded(c: &Code) -> String {
    c.display
        .as_deref()
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(c.code.as_str())
        .to_owned()
}

fn iso(d: time::Date) -> String {
    FhirDate::Full(d).to_string()
}

/// `s` as a left-to-right isolate (U+2066 … U+2069), for a date printed in a line with words of the
/// label's language: beside an Arabic word the bidi algorithm makes digits Arabic numbers, which a hyphen
/// does not join, and "2022-04-05" would be drawn "05-04-2022". The isolate keeps it left to right
/// whatever surrounds it; the two marks draw nothing (`text::shape_line` skips them).
fn ltr(s: &str) -> String {
    format!("\u{2066}{s}\u{2069}")
}

/// "Switzerland (CHE)": the English short name from ISO 3166-1 with the code a border officer can check.
fn country_text(country: crate::domain::Country) -> String {
    match crate::codes::iso3166::name_alpha3(country.alpha3()) {
        Some(name) => format!("{name} ({})", country.alpha3()),
        None => country.alpha3().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_shaped_once_and_remembered_but_personal_data_never() {
        let event = crate::credential::core_data_set::tests::eddie_murphy();
        let symbol = qr::encode("HC1:TEST").unwrap();
        let qrs = [PdfQr {
            kind: QrKind::Who,
            symbol: &symbol,
        }];
        let day = time::macros::date!(2022 - 04 - 05);
        let dates = IssueDates {
            issued: day,
            valid_from: day,
            valid_until: None,
        };
        let options = PdfOptions::default();
        let first = certificate_pdf(&event, &qrs, &dates, &options).unwrap();
        assert!(text::is_remembered(&options.labels.name), "the Name label");
        let name = event.holder.name.to_string();
        assert!(!text::is_remembered(&name), "the holder's name is not kept");
        // A remembered label draws exactly what a fresh one drew.
        assert!(certificate_pdf(&event, &qrs, &dates, &options).unwrap() == first);
    }

    #[test]
    fn qr_codes_print_at_one_size_whatever_their_versions() {
        // Slots from the smallest that fits a 35 mm code to the largest, and every pair of versions a
        // certificate can carry (DDCC about 26, EU DCC about 18 in the pipeline).
        let widths = (10..=40).map(|v: usize| 17 + 4 * v);
        for slot in [mm(MIN_QR_MM), 140.0, 180.0, 200.0, 215.0, mm(MAX_QR_MM)] {
            for a in widths.clone() {
                for b in widths.clone() {
                    let sides = qr_sides([a, b].into_iter(), slot);
                    let (small, large) = (sides[0].min(sides[1]), sides[0].max(sides[1]));
                    assert!(
                        large <= small * 1.01,
                        "{a} and {b} modules in {slot} pt: {sides:?}"
                    );
                    assert!(small >= mm(MIN_QR_MM) - 1e-3, "{sides:?}");
                    assert!(large <= slot + 1e-3, "{sides:?}");
                }
            }
        }
        // The pipeline's pair on A4: the larger symbol's module is 1.44 pt (whole pixels at 150 and 200
        // dpi), the smaller one's 1.92 pt (whole pixels at 150, 300 and 600 dpi).
        let (ddcc, dcc) = (17 + 4 * 26, 17 + 4 * 18);
        let sides = qr_sides([ddcc, dcc].into_iter(), mm(80.0));
        let module = |side: f32, w: usize| side / (w + 8) as f32;
        assert!((module(sides[0], ddcc) - 1.44).abs() < 1e-4, "{sides:?}");
        assert!((module(sides[1], dcc) - 1.92).abs() < 1e-4, "{sides:?}");
    }
}
