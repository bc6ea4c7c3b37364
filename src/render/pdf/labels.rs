//! The printed labels: English by default, any language from a JSON translation file.

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
