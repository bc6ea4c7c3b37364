//! The printed labels: English by default, built in for the six UN languages (`assets/labels/`), any
//! language from an operator's JSON translation file.

use serde::Deserialize;

use crate::domain::Sex;
use crate::error::{Error, Result};

/// Every fixed string the certificate prints. A country adds its language by writing a JSON object with
/// these keys (missing keys keep the English text), e.g. `{"title": "Certificat de vaccination"}`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Labels {
    pub title: String,
    pub subtitle: String,
    pub holder: String,
    pub name: String,
    pub birth_date: String,
    pub identifier: String,
    pub sex: String,
    pub sex_male: String,
    pub sex_female: String,
    pub sex_other: String,
    pub sex_unknown: String,
    pub vaccination: String,
    pub disease: String,
    pub vaccine: String,
    pub brand: String,
    pub manufacturer: String,
    pub ma_holder: String,
    pub lot: String,
    pub date: String,
    pub dose: String,
    /// Joins dose number and total: "1 of 2".
    pub dose_of: String,
    pub centre: String,
    pub country: String,
    pub health_worker: String,
    pub next_dose: String,
    pub certificate: String,
    pub issuer: String,
    pub certificate_id: String,
    pub validity: String,
    /// Joins the validity dates: "2021-04-05 to 2022-04-05".
    pub validity_to: String,
    /// Open-ended validity: "from 2021-04-05".
    pub validity_from: String,
    pub issued: String,
    pub qr_ddcc: String,
    pub qr_eu_dcc: String,
    pub how_to_verify: String,
    /// Printed (and put in the document title) when signed with a development key.
    pub development_key: String,
}

/// A language the certificate has built-in labels for: the six official languages of the UN (and WHO).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Deserialize)]
#[serde(try_from = "String")]
pub enum Language {
    Arabic,
    Chinese,
    #[default]
    English,
    French,
    Russian,
    Spanish,
}

impl Language {
    pub const ALL: [Language; 6] = [
        Language::Arabic,
        Language::Chinese,
        Language::English,
        Language::French,
        Language::Russian,
        Language::Spanish,
    ];

    /// The language of a BCP 47 tag (FHIR `Resource.language`, `DDCC_PDF_LANGUAGE`): its primary
    /// subtag decides, so `fr-CH` is French and `zh-Hans-CN` Chinese. `None` for any other language.
    pub fn from_bcp47(tag: &str) -> Option<Self> {
        let primary = tag.trim().split(['-', '_']).next()?;
        Language::ALL
            .into_iter()
            .find(|l| l.code().eq_ignore_ascii_case(primary))
    }

    /// ISO 639-1 code.
    pub fn code(self) -> &'static str {
        match self {
            Language::Arabic => "ar",
            Language::Chinese => "zh",
            Language::English => "en",
            Language::French => "fr",
            Language::Russian => "ru",
            Language::Spanish => "es",
        }
    }

    /// Written right to left: the page is laid out mirrored.
    pub fn is_rtl(self) -> bool {
        self == Language::Arabic
    }

    /// The built-in labels, compiled in from `assets/labels/<code>.json` (English is [`Labels::english`]).
    pub fn labels(self) -> Labels {
        let json = match self {
            Language::English => return Labels::english(),
            Language::Arabic => include_str!("../../../assets/labels/ar.json"),
            Language::Chinese => include_str!("../../../assets/labels/zh.json"),
            Language::French => include_str!("../../../assets/labels/fr.json"),
            Language::Russian => include_str!("../../../assets/labels/ru.json"),
            Language::Spanish => include_str!("../../../assets/labels/es.json"),
        };
        // The files are part of the build and a unit test parses each; English stands in otherwise.
        Labels::from_json(json).unwrap_or_default()
    }
}

impl TryFrom<String> for Language {
    type Error = Error;

    fn try_from(tag: String) -> Result<Self> {
        Language::from_bcp47(&tag).ok_or_else(|| {
            Error::Config(format!(
                "DDCC_PDF_LANGUAGE must be one of ar, en, es, fr, ru, zh, not {tag:?}"
            ))
        })
    }
}

impl std::str::FromStr for Language {
    type Err = Error;

    fn from_str(tag: &str) -> Result<Self> {
        Language::try_from(tag.to_owned())
    }
}

impl Default for Labels {
    fn default() -> Self {
        Labels::english()
    }
}

impl Labels {
    pub fn english() -> Self {
        let s = |v: &str| v.to_owned();
        Labels {
            title: s("Vaccination Certificate"),
            subtitle: s("Digital Documentation of COVID-19 Certificates: Vaccination Status (DDCC:VS)"),
            holder: s("Holder"),
            name: s("Name"),
            birth_date: s("Date of birth"),
            identifier: s("Identifier"),
            sex: s("Sex"),
            sex_male: s("Male"),
            sex_female: s("Female"),
            sex_other: s("Other"),
            sex_unknown: s("Unknown"),
            vaccination: s("Vaccination"),
            disease: s("Disease targeted"),
            vaccine: s("Vaccine"),
            brand: s("Brand"),
            manufacturer: s("Manufacturer"),
            ma_holder: s("Marketing authorization holder"),
            lot: s("Lot number"),
            date: s("Date of vaccination"),
            dose: s("Dose"),
            dose_of: s("of"),
            centre: s("Vaccination centre"),
            country: s("Country of vaccination"),
            health_worker: s("Health worker"),
            next_dose: s("Next dose due"),
            certificate: s("Certificate"),
            issuer: s("Issued by"),
            certificate_id: s("Certificate ID"),
            validity: s("Valid"),
            validity_to: s("to"),
            validity_from: s("from"),
            issued: s("Date of issue"),
            qr_ddcc: s("DDCC"),
            qr_eu_dcc: s("EU DCC"),
            how_to_verify: s(
                "To verify: scan a QR code with a DDCC or EU DCC verifier app; it checks the issuer's signature.",
            ),
            development_key: s("DEVELOPMENT KEY: a test certificate, not valid"),
        }
    }

    /// Labels from a JSON translation (keys as the field names; absent keys stay English).
    pub fn from_json(json: &str) -> Result<Self> {
        serde_json::from_str(json)
            .map_err(|e| Error::Config(format!("the PDF label translation is not valid: {e}")))
    }

    /// Labels from a JSON translation file.
    pub fn from_file(path: &std::path::Path) -> Result<Self> {
        let json = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("reading PDF labels {}", path.display()), e))?;
        Self::from_json(&json)
    }

    pub(super) fn sex(&self, sex: Sex) -> &str {
        match sex {
            Sex::Male => &self.sex_male,
            Sex::Female => &self.sex_female,
            Sex::Other => &self.sex_other,
            Sex::Unknown => &self.sex_unknown,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_built_in_language_has_every_label_translated() {
        let english = Labels::english();
        for language in Language::ALL {
            let json = match language {
                Language::English => continue,
                Language::Arabic => include_str!("../../../assets/labels/ar.json"),
                Language::Chinese => include_str!("../../../assets/labels/zh.json"),
                Language::French => include_str!("../../../assets/labels/fr.json"),
                Language::Russian => include_str!("../../../assets/labels/ru.json"),
                Language::Spanish => include_str!("../../../assets/labels/es.json"),
            };
            let keys = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(json)
                .unwrap()
                .len();
            assert_eq!(keys, 36, "{language:?}: every label");
            let labels = Labels::from_json(json).unwrap();
            assert_eq!(labels, language.labels());
            assert_ne!(labels.title, english.title, "{language:?}");
        }
    }

    #[test]
    fn a_bcp47_tag_picks_its_language_by_the_primary_subtag() {
        assert_eq!(Language::from_bcp47("fr-CH"), Some(Language::French));
        assert_eq!(Language::from_bcp47("zh-Hans-CN"), Some(Language::Chinese));
        assert_eq!(Language::from_bcp47("AR"), Some(Language::Arabic));
        assert_eq!(Language::from_bcp47("en"), Some(Language::English));
        assert_eq!(Language::from_bcp47("pt-BR"), None);
        assert_eq!(Language::from_bcp47(""), None);
        assert!("de".parse::<Language>().is_err());
    }

    #[test]
    fn a_translation_overrides_what_it_names_and_keeps_english_for_the_rest() {
        let fr =
            Labels::from_json(r#"{"title": "Certificat de vaccination", "name": "Nom"}"#).unwrap();
        assert_eq!(fr.title, "Certificat de vaccination");
        assert_eq!(fr.name, "Nom");
        assert_eq!(fr.lot, Labels::english().lot);
        assert!(
            Labels::from_json(r#"{"titel": "x"}"#).is_err(),
            "typos are reported"
        );
    }
}
