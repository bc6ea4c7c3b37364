//! From the DDCC's codes to EU DCC value-set codes, only where a documented equivalence exists.
//!
//! Sources (WHO DDCC IG 1.0.0 package `who.ddcc-1.0.0`, ConceptMaps; only `equivalent` mappings used):
//! - `who-ddcc-map-icd11-sct-disease-targeted`: ICD-11 RA01 → SNOMED 840539006 (COVID-19);
//! - `who-ddcc-map-icd11-sct-vaccines`: ICD-11 vaccine types → SNOMED;
//! - `vaccine-covid19-euur-to-icd11`: EU Union Register / EU DCC product codes ↔ ICD-11 brands,
//!   read in reverse; an ICD-11 brand that two EU products map to (XM4YL8: Vaxzevria and R-COVI) is
//!   ambiguous and left out.
//!
//! Codes already in the EU vocabulary (SNOMED for `tg`/`vp`, EU product codes for `mp`, EMA SPOR
//! organisation ids for `ma`) pass through. Whatever the result, it must then be an active code of the
//! EU value set, or no DCC is issued.

use crate::credential::dcc::valuesets::ValueSet;
use crate::domain::Code;

pub const SNOMED: &str = "http://snomed.info/sct";
pub const ICD11: &str = "http://id.who.int/icd11/mms";
/// EU DCC `mp` codes (Union Register numbers and the EU DCC's own product names).
pub const EU_PRODUCTS: &str = "https://ec.europa.eu/health/documents/community-register/html/";
/// EU DCC `ma` codes: EMA SPOR organisation ids.
pub const EMA_ORGANISATIONS: &str = "https://spor.ema.europa.eu/v1/organisations";

/// ICD-11 disease → SNOMED `tg` (ConceptMap who-ddcc-map-icd11-sct-disease-targeted).
const ICD11_DISEASE: &[(&str, &str)] = &[("RA01", "840539006")];

/// ICD-11 vaccine type → SNOMED `vp` (ConceptMap who-ddcc-map-icd11-sct-vaccines).
const ICD11_VACCINE: &[(&str, &str)] = &[
    ("XM68M6", "28531000087107"),
    ("XM0GQ8", "1119349007"),
    ("XM1NL1", "1157024006"),
    ("XM9QW8", "29061000087103"),
];

/// ICD-11 brand → EU `mp` (ConceptMap vaccine-covid19-euur-to-icd11, `equivalent`, reversed).
const ICD11_BRAND: &[(&str, &str)] = &[
    ("XM8NQ0", "EU/1/20/1528"),
    ("XM3DT5", "EU/1/20/1507"),
    ("XM6QV1", "EU/1/20/1525"),
    ("XM9T65", "NVX-CoV2373"),
    ("XM5ZJ4", "Sputnik-V"),
    ("XM1AG7", "Convidecia"),
    ("XM6SZ8", "EpiVacCorona"),
    ("XM8866", "BBIBP-CorV"),
    ("XM7HT3", "CoronaVac"),
    ("XM1G90", "Covaxin"),
    ("XM97T2", "Covishield"),
    ("XM3CT4", "Covid-19-recombinant"),
    ("XM85P5", "CoviVac"),
    ("XM5QM6", "Sputnik-Light"),
    ("XM9FQ7", "Hayat-Vax"),
];

/// Which DCC field a code is for: its EU code system and ICD-11 equivalences.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    /// The DCC field, for messages.
    pub name: &'static str,
    /// The DDCC element, for messages.
    pub source: &'static str,
    eu_system: &'static str,
    icd11: &'static [(&'static str, &'static str)],
}

pub const DISEASE: Field = Field {
    name: "tg",
    source: "disease",
    eu_system: SNOMED,
    icd11: ICD11_DISEASE,
};
pub const VACCINE: Field = Field {
    name: "vp",
    source: "vaccine",
    eu_system: SNOMED,
    icd11: ICD11_VACCINE,
};
pub const BRAND: Field = Field {
    name: "mp",
    source: "brand",
    eu_system: EU_PRODUCTS,
    icd11: ICD11_BRAND,
};
pub const PRODUCER: Field = Field {
    name: "ma",
    source: "manufacturer/ma_holder",
    eu_system: EMA_ORGANISATIONS,
    icd11: &[],
};

/// The EU code for `code`, which must be active in `value_set`; otherwise why not.
pub fn to_eu(field: Field, code: &Code, value_set: &ValueSet) -> Result<String, String> {
    let system = code.system.as_deref();
    let c = code.code.as_str();
    let candidate = match system {
        Some(ICD11) => field
            .icd11
            .iter()
            .find(|(icd, _)| *icd == c)
            .map(|(_, eu)| (*eu).to_string()),
        Some(s) if s == field.eu_system => Some(c.to_string()),
        // No system: accept a code that is literally an EU code.
        None => Some(c.to_string()),
        Some(_) => None,
    };
    candidate.filter(|eu| value_set.allows(eu)).ok_or_else(|| {
        format!(
            "{} code {}|{c} has no equivalent in the EU value set {} (DCC field {})",
            field.source,
            system.unwrap_or(""),
            value_set.id,
            field.name
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::credential::dcc::valuesets::value_sets;
    use crate::domain::NonEmpty;

    fn code(system: Option<&str>, c: &str) -> Code {
        Code {
            system: system.map(Into::into),
            code: NonEmpty::parse(c).unwrap(),
            display: None,
        }
    }

    #[test]
    fn icd11_codes_map_through_the_ddcc_concept_maps() {
        let vs = value_sets();
        assert_eq!(
            to_eu(DISEASE, &code(Some(ICD11), "RA01"), &vs.disease).unwrap(),
            "840539006"
        );
        assert_eq!(
            to_eu(VACCINE, &code(Some(ICD11), "XM0GQ8"), &vs.prophylaxis).unwrap(),
            "1119349007"
        );
        assert_eq!(
            to_eu(BRAND, &code(Some(ICD11), "XM3DT5"), &vs.product).unwrap(),
            "EU/1/20/1507"
        );
        assert_eq!(
            to_eu(BRAND, &code(Some(ICD11), "XM5QM6"), &vs.product).unwrap(),
            "Sputnik-Light"
        );
    }

    #[test]
    fn eu_codes_pass_through() {
        let vs = value_sets();
        assert_eq!(
            to_eu(VACCINE, &code(Some(SNOMED), "1119349007"), &vs.prophylaxis).unwrap(),
            "1119349007"
        );
        assert_eq!(
            to_eu(
                PRODUCER,
                &code(Some(EMA_ORGANISATIONS), "ORG-100030215"),
                &vs.producer
            )
            .unwrap(),
            "ORG-100030215"
        );
        assert_eq!(
            to_eu(BRAND, &code(None, "EU/1/20/1528"), &vs.product).unwrap(),
            "EU/1/20/1528"
        );
    }

    #[test]
    fn unmapped_ambiguous_or_inactive_codes_are_refused_with_a_reason() {
        let vs = value_sets();
        // No SNOMED equivalent for the protein subunit vaccine type in the ConceptMap.
        let err = to_eu(VACCINE, &code(Some(ICD11), "XM5JC5"), &vs.prophylaxis).unwrap_err();
        assert!(
            err.contains("XM5JC5") && err.contains("vaccine-prophylaxis"),
            "{err}"
        );
        // Ambiguous reverse mapping (Vaxzevria or R-COVI).
        assert!(to_eu(BRAND, &code(Some(ICD11), "XM4YL8"), &vs.product).is_err());
        // Maps, but the EU code is no longer active.
        assert!(to_eu(BRAND, &code(Some(ICD11), "XM9T65"), &vs.product).is_err());
        // The WHO example test code system.
        let test_cs = "http://smart.who.int/ddcc/CodeSystem/DDCCExampleTestCodeSystem";
        assert!(to_eu(PRODUCER, &code(Some(test_cs), "TEST"), &vs.producer).is_err());
        // A SNOMED code outside the value set.
        assert!(to_eu(DISEASE, &code(Some(SNOMED), "38907003"), &vs.disease).is_err());
    }
}
