//! One QuestionnaireResponse checked against the DDCC:VS questionnaire and turned into a
//! [`VaccinationEvent`], every problem reported at once.
//!
//! Two passes: [`Check::items`] checks the shape (known linkIds, each once, top level, one answer, the
//! `value[x]` type the Questionnaire asks for) and keeps each well-typed answer; the typed readers then
//! check the content (real dates, positive integers, codes in their value sets, clean text) and the
//! cross-field rules. Each problem becomes one [`Issue`] whose expression starts with the item's
//! `item.where(linkId='…')`, so a person can find it; a question already reported is not reported again
//! as missing.
//!
//! Messages never repeat the submitted answers: [`Error`]'s `Display` may reach logs, and answers are
//! personal data. The expression says where to look.

use std::collections::{HashMap, HashSet};

use fhir_models::{
    Coding, QuestionnaireResponse, QuestionnaireResponseAnswer, QuestionnaireResponseItem,
};
use serde_json::Value;

use super::questionnaire::{self, Question};
use crate::codes::iso3166;
use crate::domain::{
    CertificateInfo, Code, Country, EventVersion, FhirDate, Holder, NonEmpty, PositiveInt,
    Producer, Sex, Vaccination, VaccinationEvent,
};
use crate::error::{Error, Issue, Result};

/// Longest text accepted in any answer (and in each part of a Coding), in characters. Every answer ends
/// up printed on a certificate and encoded in a QR code; nothing legitimate comes near this.
pub const MAX_TEXT_CHARS: usize = 1_000;

/// Days a vaccination or birth date may lie after today (UTC): clocks and time zones differ.
const CLOCK_SKEW_DAYS: i64 = 1;

/// `Coding.system` of the `sex` answer (value set administrative-gender).
const GENDER_SYSTEM: &str = "http://hl7.org/fhir/administrative-gender";
/// `Coding.system` of the `country` answer (value set iso3166-1-3).
const ISO3166_SYSTEM: &str = "urn:iso:std:iso:3166";

/// Where a QuestionnaireResponse sits in the request, as FHIRPath: `QuestionnaireResponse`,
/// `Parameters.parameter.where(name='response').resource`, `Bundle.entry[3].resource`…
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct At(String);

impl At {
    pub(super) fn new(path: impl Into<String>) -> Self {
        At(path.into())
    }
    pub(super) fn path(&self) -> &str {
        &self.0
    }
    /// A child element, e.g. `field("questionnaire")`.
    pub(super) fn field(&self, name: &str) -> String {
        format!("{}.{name}", self.0)
    }
    /// The item of a known question (its linkId is a plain identifier, safe in a FHIRPath literal).
    fn item(&self, link_id: &str) -> String {
        format!("{}.item.where(linkId='{link_id}')", self.0)
    }
    /// Either of two known questions (cross-field rules).
    fn items(&self, a: &str, b: &str) -> String {
        format!("{}.item.where(linkId='{a}' or linkId='{b}')", self.0)
    }
    /// An item by position, for linkIds that are not ours (they may hold any text).
    fn item_at(&self, index: usize) -> String {
        format!("{}.item[{index}]", self.0)
    }
    /// The value of a question's single answer.
    fn value(&self, link_id: &str) -> String {
        format!("{}.answer[0].value", self.item(link_id))
    }
}

/// Validates `qr` (located at `at` in the request) into a [`VaccinationEvent`].
pub(super) fn validate(qr: &QuestionnaireResponse, at: &At) -> Result<VaccinationEvent> {
    // An unknown questionnaire makes every item meaningless: report that alone.
    match qr.questionnaire.as_deref() {
        None => {
            return Err(Error::invalid(
                "required",
                at.field("questionnaire"),
                format!(
                    "questionnaire is missing: a DDCC:VS response must name {}",
                    questionnaire::CANONICALS[1]
                ),
            ))
        }
        Some(canonical) if !questionnaire::is_known_canonical(canonical) => {
            return Err(Error::invalid(
                "not-supported",
                at.field("questionnaire"),
                format!(
                    "questionnaire {} is not the DDCC:VS core data set Questionnaire; expected {} or {} \
                     (optionally with |version)",
                    shown(canonical),
                    questionnaire::CANONICALS[1],
                    questionnaire::CANONICALS[0],
                ),
            ))
        }
        Some(_) => {}
    }

    let mut check = Check::new(at);
    check.status(qr.status.as_deref());
    let version = EventVersion {
        authored: check.authored(qr.authored.as_deref()),
        amended: qr.status.as_deref() == Some("amended"),
    };
    // A language the PDF does not have is no error: the certificate is printed in the configured one.
    let language = qr
        .extra
        .get("language")
        .and_then(serde_json::Value::as_str)
        .and_then(crate::render::pdf::Language::from_bcp47);
    check.items(&qr.item);
    check.missing_required();
    check.event().map(|event| VaccinationEvent {
        version,
        language,
        ..event
    })
}

/// The state of one validation: issues found so far and the well-typed answers.
struct Check<'a> {
    at: &'a At,
    issues: Vec<Issue>,
    /// The answer value of each question answered once, with the `value[x]` type it asks for.
    answers: HashMap<&'static str, &'a Value>,
    /// Questions with an issue already: their value is not read, and a broken `manufacturer` is not
    /// reported again under who-ddcc-data-1.
    flagged: HashSet<&'static str>,
    /// Questions whose item has been seen: a second item is a duplicate, and a required question
    /// never seen is missing.
    seen: HashSet<&'static str>,
}

impl<'a> Check<'a> {
    fn new(at: &'a At) -> Self {
        Check {
            at,
            issues: Vec::new(),
            answers: HashMap::new(),
            flagged: HashSet::new(),
            seen: HashSet::new(),
        }
    }

    fn issue(&mut self, code: &'static str, expression: String, message: String) {
        self.issues.push(Issue::new(code, expression, message));
    }

    /// An issue with one question's item or answer.
    fn flag(
        &mut self,
        q: &'static Question,
        code: &'static str,
        expression: String,
        problem: &str,
    ) {
        self.flagged.insert(q.link_id);
        self.issue(
            code,
            expression,
            format!("'{}' ({}) {problem}", q.link_id, q.text),
        );
    }

    /// A certificate attests a finished record: `completed` or `amended` (R4 requires `status`).
    fn status(&mut self, status: Option<&str>) {
        match status {
            Some("completed" | "amended") => {}
            Some(other) => self.issue(
                "value",
                self.at.field("status"),
                format!(
                    "status {} cannot be certified; only a 'completed' or 'amended' response can",
                    shown(other)
                ),
            ),
            None => self.issue(
                "required",
                self.at.field("status"),
                "status is missing; a response to certify must be 'completed'".into(),
            ),
        }
    }

    /// `authored`, a FHIR dateTime: a full date-time with its offset, or a date (read as 00:00 UTC).
    fn authored(&mut self, authored: Option<&str>) -> Option<time::OffsetDateTime> {
        let text = authored?;
        let full =
            time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339);
        let day = || {
            time::Date::parse(
                text,
                time::macros::format_description!("[year]-[month]-[day]"),
            )
            .map(|d| d.midnight().assume_utc())
        };
        match full.or_else(|_| day()) {
            Ok(at) => Some(at),
            Err(_) => {
                self.issue(
                    "value",
                    self.at.field("authored"),
                    format!(
                        "authored {} is not a FHIR dateTime with a time zone (e.g. 2021-07-08T10:15:00Z) \
                         or a date",
                        shown(text)
                    ),
                );
                None
            }
        }
    }

    /// First pass: the shape of the items.
    ///
    /// Unknown linkIds are errors, not ignored. The WHO mediator ignores them (its StructureMap reads only
    /// the 22 it knows, e.g. it skips the legacy SVC `version` item). But a certificate is an attestation:
    /// silently dropping `birthdate` (a typo of the optional `birthDate`) would issue a certificate
    /// without data the sender believes is on it, while an error costs one fix. The legacy SVC responses
    /// that carry `version` are rejected anyway by their questionnaire canonical.
    fn items(&mut self, items: &'a [QuestionnaireResponseItem]) {
        for (index, item) in items.iter().enumerate() {
            let Some(q) = questionnaire::question(&item.link_id) else {
                let hint = questionnaire::near_miss(&item.link_id)
                    .map(|q| format!(" (did you mean '{}'?)", q.link_id))
                    .unwrap_or_default();
                self.issue(
                    "not-supported",
                    self.at.item_at(index),
                    format!(
                        "linkId {} is not a question of the DDCC:VS core data set questionnaire{hint}",
                        shown(&item.link_id)
                    ),
                );
                continue;
            };
            if !self.seen.insert(q.link_id) {
                self.flag(
                    q,
                    "duplicate",
                    self.at.item(q.link_id),
                    "appears more than once; send each question once",
                );
                continue;
            }
            self.item(q, item);
        }
    }

    fn item(&mut self, q: &'static Question, item: &'a QuestionnaireResponseItem) {
        let at = self.at.item(q.link_id);
        if !item.item.is_empty() {
            self.flag(
                q,
                "structure",
                format!("{at}.item"),
                "has nested items; the DDCC:VS questionnaire has only top-level questions",
            );
        }
        match item.answer.as_slice() {
            // An optional question may be listed without an answer: it is simply not answered.
            [] if !q.required => {}
            [] => self.flag(q, "required", at, "is required but has no answer"),
            [answer] => self.answer(q, answer, &at),
            more => self.flag(
                q,
                "structure",
                format!("{at}.answer"),
                &format!("has {} answers; exactly one is allowed", more.len()),
            ),
        }
    }

    fn answer(&mut self, q: &'static Question, answer: &'a QuestionnaireResponseAnswer, at: &str) {
        let at = format!("{at}.answer[0]");
        if !answer.item.is_empty() {
            self.flag(
                q,
                "structure",
                format!("{at}.item"),
                "has items nested in its answer; the DDCC:VS questionnaire has none",
            );
        }
        let expected = q.answer.suffix();
        let mut values = answer
            .extra
            .iter()
            .filter_map(|(key, value)| key.strip_prefix("value").map(|ty| (ty, value)));
        match (values.next(), values.next()) {
            (None, _) => self.flag(
                q,
                "required",
                format!("{at}.value"),
                &format!("has an answer without a value; expected value{expected}"),
            ),
            (Some((ty, value)), None) if ty == expected => {
                // A nested or otherwise broken item keeps its issue; its value is not read.
                if !self.flagged.contains(q.link_id) {
                    self.answers.insert(q.link_id, value);
                }
            }
            (Some((ty, _)), None) => self.flag(
                q,
                "value",
                format!("{at}.value"),
                &format!(
                    "must be answered with value{expected}, not {}",
                    shown(&format!("value{ty}"))
                ),
            ),
            (Some(_), Some(_)) => self.flag(
                q,
                "structure",
                format!("{at}.value"),
                "has an answer with several value[x] elements; exactly one is allowed",
            ),
        }
    }

    /// Required questions without an item (an item without an answer was reported in [`Check::item`]).
    fn missing_required(&mut self) {
        for q in questionnaire::QUESTIONS.iter().filter(|q| q.required) {
            if !self.seen.contains(q.link_id) {
                self.flag(
                    q,
                    "required",
                    self.at.item(q.link_id),
                    "is required but missing",
                );
            }
        }
    }

    // --- Second pass: typed readers. Each returns `None` when unanswered or invalid (with an issue). ---

    fn raw(&self, link_id: &str) -> Option<&'a Value> {
        self.answers.get(link_id).copied()
    }

    /// Problems with one answer's value.
    fn bad_value(&mut self, link_id: &'static str, code: &'static str, problem: &str) {
        if let Some(q) = questionnaire::question(link_id) {
            let at = self.at.value(link_id);
            self.flag(q, code, at, problem);
        }
    }

    /// Checks text that will be printed and encoded: length and control characters. `part` names the part
    /// of a Coding (`"code"`…) or is empty for a valueString.
    fn clean_text<'s>(
        &mut self,
        link_id: &'static str,
        part: &str,
        text: &'s str,
    ) -> Option<&'s str> {
        let what = if part.is_empty() {
            "the answer".to_owned()
        } else {
            format!("the {part}")
        };
        if text.chars().count() > MAX_TEXT_CHARS {
            self.bad_value(
                link_id,
                "too-long",
                &format!("is too long: {what} may have at most {MAX_TEXT_CHARS} characters"),
            );
            return None;
        }
        if text.chars().any(is_forbidden_char) {
            self.bad_value(
                link_id,
                "value",
                &format!(
                    "contains control characters (line breaks, tabs, bidi overrides…) in {what}; \
                     send plain single-line text"
                ),
            );
            return None;
        }
        if text.trim().is_empty() {
            self.bad_value(link_id, "value", &format!("is empty: {what} has no text"));
            return None;
        }
        Some(text.trim())
    }

    fn text(&mut self, link_id: &'static str) -> Option<NonEmpty> {
        let value = self.raw(link_id)?;
        let Some(text) = value.as_str() else {
            self.bad_value(link_id, "value", "must be a JSON string (valueString)");
            return None;
        };
        self.clean_text(link_id, "", text).and_then(NonEmpty::parse)
    }

    fn date(&mut self, link_id: &'static str) -> Option<FhirDate> {
        let value = self.raw(link_id)?;
        match value.as_str().map(FhirDate::parse) {
            Some(Some(date)) => Some(date),
            Some(None) => {
                self.bad_value(
                    link_id,
                    "value",
                    "is not a valid date: use YYYY-MM-DD (or YYYY-MM, YYYY) with a real calendar day",
                );
                None
            }
            None => {
                self.bad_value(link_id, "value", "must be a JSON string (valueDate)");
                None
            }
        }
    }

    /// A date with day precision (the vaccination date).
    fn full_date(&mut self, link_id: &'static str) -> Option<FhirDate> {
        let date = self.date(link_id)?;
        if date.full().is_none() {
            self.bad_value(link_id, "value", "must be a full date (YYYY-MM-DD)");
            return None;
        }
        Some(date)
    }

    fn positive(&mut self, link_id: &'static str) -> Option<PositiveInt> {
        let value = self.raw(link_id)?;
        let problem = match value {
            Value::Number(n) => match n.as_i64() {
                Some(n) if n < 1 => "must be 1 or more",
                Some(n) => match PositiveInt::new(n) {
                    Some(p) => return Some(p),
                    None => "is larger than the largest FHIR integer (2147483647)",
                },
                None if n.is_u64() => "is larger than the largest FHIR integer (2147483647)",
                None => "must be a whole number",
            },
            _ => "must be a JSON number (valueInteger)",
        };
        self.bad_value(link_id, "value", problem);
        None
    }

    fn coding(&mut self, link_id: &'static str) -> Option<Code> {
        let value = self.raw(link_id)?;
        let Ok(coding) = serde_json::from_value::<Coding>(value.clone()) else {
            self.bad_value(
                link_id,
                "value",
                "must be a Coding object (valueCoding with string system, code, display)",
            );
            return None;
        };
        // `sex` and `country` name their value set by the linkId; every other code means nothing without its
        // code system (and the DDCC Immunization profile requires `vaccineCode.coding.system`).
        if coding.system.is_none() && !matches!(link_id, "sex" | "country") {
            self.bad_value(
                link_id,
                "required",
                "has a valueCoding without a system: name the code system of the code",
            );
        }
        let system = self.coding_part(link_id, "system", coding.system.as_deref());
        let display = self.coding_part(link_id, "display", coding.display.as_deref());
        let code = match coding.code.as_deref() {
            Some(code) => self
                .clean_text(link_id, "code", code)
                .and_then(NonEmpty::parse),
            None => {
                self.bad_value(link_id, "required", "has a valueCoding without a code");
                None
            }
        };
        Some(Code {
            system: system?,
            code: code?,
            display: display?,
        })
    }

    /// An optional part of a Coding: `Some(None)` when absent, `None` when present but not clean text.
    fn coding_part(
        &mut self,
        link_id: &'static str,
        part: &str,
        text: Option<&str>,
    ) -> Option<Option<String>> {
        match text {
            None => Some(None),
            Some(text) => self
                .clean_text(link_id, part, text)
                .map(|t| Some(t.to_owned())),
        }
    }

    fn sex(&mut self) -> Option<Sex> {
        let code = self.coding("sex")?;
        if code.system.as_deref().is_some_and(|s| s != GENDER_SYSTEM) {
            self.bad_value(
                "sex",
                "code-invalid",
                &format!("must use the system {GENDER_SYSTEM} (value set administrative-gender)"),
            );
            return None;
        }
        let sex = Sex::parse(code.code.as_str());
        if sex.is_none() {
            self.bad_value(
                "sex",
                "code-invalid",
                "must be one of the administrative-gender codes male, female, other, unknown",
            );
        }
        sex
    }

    fn country(&mut self) -> Option<Country> {
        let code = self.coding("country")?;
        if code.system.as_deref().is_some_and(|s| s != ISO3166_SYSTEM) {
            self.bad_value(
                "country",
                "code-invalid",
                &format!("must use the system {ISO3166_SYSTEM} (ISO 3166-1 alpha-3 codes)"),
            );
            return None;
        }
        let code = code.code.as_str();
        let country = Country::from_alpha3(code);
        if country.is_none() {
            let problem = if iso3166::COUNTRIES
                .iter()
                .any(|(_, alpha2, _)| *alpha2 == code)
            {
                "is an ISO 3166-1 alpha-2 code; use the three-letter alpha-3 code (e.g. USA, not US)"
            } else if Country::from_alpha3(&code.to_ascii_uppercase()).is_some() {
                "must be an upper-case ISO 3166-1 alpha-3 code (e.g. USA)"
            } else {
                "is not an assigned ISO 3166-1 alpha-3 country code (e.g. USA, FRA, CHN)"
            };
            self.bad_value("country", "code-invalid", problem);
        }
        country
    }

    /// A date that must have happened already (the vaccination, the birth): not after today (UTC) plus
    /// [`CLOCK_SKEW_DAYS`], compared at the date's own precision.
    fn not_in_the_future(&mut self, link_id: &'static str, date: Option<FhirDate>) {
        let latest = time::OffsetDateTime::now_utc().date() + time::Duration::days(CLOCK_SKEW_DAYS);
        if date.is_some_and(|d| is_after(d, FhirDate::Full(latest))) {
            self.bad_value(
                link_id,
                "value",
                "is in the future: a certificate can only attest a vaccination (and a birth) that happened",
            );
        }
    }

    // --- Assembly ---

    fn event(mut self) -> Result<VaccinationEvent> {
        let name = self.text("name");
        let birth_date = self.date("birthDate");
        let identifier = self.text("identifier");
        let sex = self.sex();
        let vaccine = self.coding("vaccine");
        let brand = self.coding("brand");
        let manufacturer = self.coding("manufacturer");
        let ma_holder = self.coding("ma_holder");
        let lot = self.text("lot");
        let date = self.full_date("date");
        let vaccine_valid = self.date("vaccine_valid");
        let dose = self.positive("dose");
        let total_doses = self.positive("total_doses");
        let country = self.country();
        let centre = self.text("centre");
        let health_worker = self.text("hw");
        let disease = self.coding("disease");
        let next_dose = self.date("due_date");
        let issuer = self.text("pha");
        let hcid = self.text("hcid");
        let valid_from = self.date("valid_from");
        let valid_until = self.date("valid_until");

        let producer = match (manufacturer, ma_holder) {
            (Some(manufacturer), Some(ma_holder)) => Some(Producer::Both {
                manufacturer,
                ma_holder,
            }),
            (Some(m), None) => Some(Producer::Manufacturer(m)),
            (None, Some(h)) => Some(Producer::MarketAuthorizationHolder(h)),
            (None, None) => {
                if !self.flagged.contains("manufacturer") && !self.flagged.contains("ma_holder") {
                    self.issue(
                        "required",
                        self.at.items("manufacturer", "ma_holder"),
                        "either 'manufacturer' (Vaccine manufacturer) or 'ma_holder' (Vaccine market \
                         authorization holder) must be answered (invariant who-ddcc-data-1)"
                            .into(),
                    );
                }
                None
            }
        };
        self.not_in_the_future("date", date);
        self.not_in_the_future("birthDate", birth_date);
        // Only between dates not already reported (a birth in 2099 is reported once, as in the future).
        let unflagged = !self.flagged.contains("birthDate") && !self.flagged.contains("date");
        if let (Some(birth), Some(vaccinated), true) = (birth_date, date, unflagged) {
            if is_after(birth, vaccinated) {
                self.issue(
                    "value",
                    self.at.items("birthDate", "date"),
                    "'birthDate' (Date of birth) is after 'date' (Date of vaccine)".into(),
                );
            }
        }
        if let (Some(dose), Some(total)) = (dose, total_doses) {
            if dose > total {
                self.issue(
                    "value",
                    self.at.items("dose", "total_doses"),
                    "'dose' (Dose number) is greater than 'total_doses' (Total doses)".into(),
                );
            }
        }
        if let (Some(from), Some(until)) = (valid_from, valid_until) {
            if is_after(from, until) {
                self.issue(
                    "value",
                    self.at.items("valid_from", "valid_until"),
                    "'valid_from' (Certificate valid from) is after 'valid_until' (Certificate valid until)"
                        .into(),
                );
            }
        }

        if !self.issues.is_empty() {
            return Err(Error::Invalid(self.issues));
        }
        let (
            Some(name),
            Some(vaccine),
            Some(brand),
            Some(producer),
            Some(lot),
            Some(date),
            Some(dose),
            Some(country),
            Some(centre),
            Some(issuer),
            Some(hcid),
        ) = (
            name, vaccine, brand, producer, lot, date, dose, country, centre, issuer, hcid,
        )
        else {
            return Err(Error::Internal(
                "intake: a required answer is missing but no issue was reported".into(),
            ));
        };
        Ok(VaccinationEvent {
            holder: Holder {
                name,
                birth_date,
                identifier,
                sex,
            },
            vaccination: Vaccination {
                vaccine,
                brand,
                producer,
                lot,
                date,
                valid_from: vaccine_valid,
                dose,
                total_doses,
                country,
                centre,
                health_worker,
                disease,
                next_dose,
            },
            certificate: CertificateInfo {
                issuer,
                hcid,
                valid_from,
                valid_until,
            },
            version: EventVersion::default(),
            language: None,
        })
    }
}

/// Characters that have no place in single-line certificate text: C0/C1 controls (including line
/// breaks and tabs), the Unicode line and paragraph separators, the bidi controls (embeddings, overrides,
/// isolates, and the marks LRM, RLM and ALM), which can make a printed name read differently from its
/// encoded form, the deprecated format controls U+206A–206F, the interlinear annotation characters
/// U+FFF9–FFFB (text hidden from display) and U+FEFF. Zero-width joiners and non-joiners stay allowed: some
/// scripts need them.
fn is_forbidden_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{2028}'
                | '\u{2029}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{206F}'
                | '\u{FEFF}'
                | '\u{FFF9}'..='\u{FFFB}'
        )
}

/// True when `a` is certainly after `b`, comparing only the precision both dates have
/// (`2022-05-10` is not after `2022-05`).
fn is_after(a: FhirDate, b: FhirDate) -> bool {
    fn parts(d: FhirDate) -> (i32, Option<u8>, Option<u8>) {
        match d {
            FhirDate::Year(y) => (y, None, None),
            FhirDate::YearMonth(y, m) => (y, Some(m), None),
            FhirDate::Full(d) => (d.year(), Some(u8::from(d.month())), Some(d.day())),
        }
    }
    let ((ay, am, ad), (by, bm, bd)) = (parts(a), parts(b));
    if ay != by {
        return ay > by;
    }
    match (am, bm) {
        (Some(am), Some(bm)) if am != bm => am > bm,
        (Some(_), Some(_)) => matches!((ad, bd), (Some(ad), Some(bd)) if ad > bd),
        _ => false,
    }
}

/// A caller-supplied identifier (linkId, canonical, code name) quoted for a message: escaped and at
/// most 80 characters, so a hostile value cannot flood or forge the report.
pub(super) fn shown(s: &str) -> String {
    const MAX: usize = 80;
    let mut cut: String = s.chars().take(MAX).collect();
    if s.chars().nth(MAX).is_some() {
        cut.push('…');
    }
    format!("{cut:?}")
}
