//! The DDCC:VS core data set Questionnaire (IG 1.0.0 `DDCCVSCoreDataSetQuestionnaire`), compiled in.
//!
//! The table is the contract intake checks a response against; a unit test keeps it equal to the IG's
//! Questionnaire JSON in `shared/vectors/ddcc/ig-1.0.0/`.

/// The canonicals a response may name in `QuestionnaireResponse.questionnaire`: the one the WHO
/// reference mediator and its Demo Bundles use, and the IG 1.0.0 one. Both define the same 22 items.
pub(super) const CANONICALS: [&str; 2] = [
    "http://worldhealthorganization.github.io/ddcc/DDCCVSCoreDataSetQuestionnaire",
    "http://smart.who.int/ddcc/DDCCVSCoreDataSetQuestionnaire",
];

/// True for one of [`CANONICALS`], bare or with a non-empty `|version` (FHIR canonical syntax).
pub(super) fn is_known_canonical(canonical: &str) -> bool {
    let (url, version) = match canonical.split_once('|') {
        Some((url, version)) => (url, Some(version)),
        None => (canonical, None),
    };
    CANONICALS.contains(&url) && version.is_none_or(|v| !v.is_empty() && !v.contains('|'))
}

/// The `answer.value[x]` type a question takes (Questionnaire `item.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AnswerType {
    /// `string` → `valueString`
    String,
    /// `date` → `valueDate`
    Date,
    /// `integer` → `valueInteger`
    Integer,
    /// `choice` → `valueCoding`
    Coding,
}

impl AnswerType {
    /// The `value[x]` suffix, e.g. `"Integer"` for `valueInteger`.
    pub(super) fn suffix(self) -> &'static str {
        match self {
            AnswerType::String => "String",
            AnswerType::Date => "Date",
            AnswerType::Integer => "Integer",
            AnswerType::Coding => "Coding",
        }
    }
}

/// One top-level question.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Question {
    pub link_id: &'static str,
    pub answer: AnswerType,
    pub required: bool,
    /// The Questionnaire's `item.text`, used in messages.
    pub text: &'static str,
}

const fn q(
    link_id: &'static str,
    answer: AnswerType,
    required: bool,
    text: &'static str,
) -> Question {
    Question {
        link_id,
        answer,
        required,
        text,
    }
}

use AnswerType::{Coding, Date, Integer, String};

/// The 22 questions, in Questionnaire order.
pub(super) static QUESTIONS: [Question; 22] = [
    q("name", String, true, "Name"),
    q("birthDate", Date, false, "Date of birth"),
    q("identifier", String, false, "Unique identifier"),
    q("sex", Coding, false, "Sex"),
    q("vaccine", Coding, true, "Vaccine or prophylaxis"),
    q("brand", Coding, true, "Vaccine brand"),
    q("manufacturer", Coding, false, "Vaccine manufacturer"),
    q(
        "ma_holder",
        Coding,
        false,
        "Vaccine market authorization holder",
    ),
    q("lot", String, true, "Vaccine batch number"),
    q("date", Date, true, "Date of vaccine"),
    q("vaccine_valid", Date, false, "Vaccination valid from"),
    q("dose", Integer, true, "Dose number"),
    q("total_doses", Integer, false, "Total doses"),
    q("country", Coding, true, "Country of vaccination"),
    q("centre", String, true, "Administering centre"),
    q("hw", String, false, "Health worker identifier"),
    q("disease", Coding, false, "Disease or agent targeted"),
    q("due_date", Date, false, "Due date of next dose"),
    q("pha", String, true, "Certificate issuer"),
    q("hcid", String, true, "Health certificate identifier"),
    q("valid_from", Date, false, "Certificate valid from"),
    q("valid_until", Date, false, "Certificate valid until"),
];

/// The question with this linkId (exact, case-sensitive match as in FHIR).
pub(super) fn question(link_id: &str) -> Option<&'static Question> {
    QUESTIONS.iter().find(|q| q.link_id == link_id)
}

/// A known linkId that differs from `link_id` only in case, `-`/`_` or surrounding spaces: the likely
/// intent behind a typo such as `birthdate` or `ma-holder`.
pub(super) fn near_miss(link_id: &str) -> Option<&'static Question> {
    let fold = |s: &str| -> std::string::String {
        s.trim()
            .chars()
            .filter(|c| !matches!(c, '_' | '-'))
            .flat_map(char::to_lowercase)
            .collect()
    };
    let wanted = fold(link_id);
    QUESTIONS.iter().find(|q| fold(q.link_id) == wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn table_matches_the_ig_questionnaire() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
            "../shared/vectors/ddcc/ig-1.0.0/Questionnaire-DDCCVSCoreDataSetQuestionnaire.json",
        );
        let text = std::fs::read_to_string(path).expect("IG Questionnaire");
        let ig: serde_json::Value = serde_json::from_str(&text).expect("JSON");
        assert_eq!(ig["url"], CANONICALS[1]);
        let items = ig["item"].as_array().expect("items");
        assert_eq!(items.len(), QUESTIONS.len());
        for (item, q) in items.iter().zip(&QUESTIONS) {
            assert_eq!(item["linkId"], q.link_id);
            assert_eq!(item["text"], q.text);
            assert_eq!(
                item["required"].as_bool().unwrap_or(false),
                q.required,
                "{}",
                q.link_id
            );
            let ty = match item["type"].as_str() {
                Some("string") => String,
                Some("date") => Date,
                Some("integer") => Integer,
                Some("choice") => Coding,
                other => panic!("unexpected item type {other:?}"),
            };
            assert_eq!(ty, q.answer, "{}", q.link_id);
            assert!(item.get("item").is_none() && item.get("repeats").is_none());
        }
    }

    #[test]
    fn canonicals_with_and_without_version() {
        for ok in [
            "http://worldhealthorganization.github.io/ddcc/DDCCVSCoreDataSetQuestionnaire",
            "http://smart.who.int/ddcc/DDCCVSCoreDataSetQuestionnaire",
            "http://smart.who.int/ddcc/DDCCVSCoreDataSetQuestionnaire|1.0.0",
            "http://worldhealthorganization.github.io/ddcc/DDCCVSCoreDataSetQuestionnaire|0.1.0",
        ] {
            assert!(is_known_canonical(ok), "{ok}");
        }
        for bad in [
            "http://who-int.github.io/svc/refs/heads/rc2/SVC-Questionnaire",
            "http://smart.who.int/ddcc/DDCCVSCoreDataSetQuestionnaire|",
            "http://smart.who.int/ddcc/DDCCVSCoreDataSetQuestionnaire|1|2",
            "http://smart.who.int/ddcc/DDCCTRCoreDataSetQuestionnaire",
            "https://smart.who.int/ddcc/DDCCVSCoreDataSetQuestionnaire",
            "",
        ] {
            assert!(!is_known_canonical(bad), "{bad}");
        }
    }

    #[test]
    fn near_misses_point_at_the_intended_question() {
        assert_eq!(near_miss("birthdate").map(|q| q.link_id), Some("birthDate"));
        assert_eq!(near_miss("ma-holder").map(|q| q.link_id), Some("ma_holder"));
        assert_eq!(near_miss("version"), None);
    }
}
