//! The EU DCC 1.3 vaccination payload (hcert sub-claim 1), built only when the event can be expressed
//! in EU terms.
//!
//! Every code must map to an active code of the EU value sets ([`mapping`]), the name must have an ICAO
//! 9303 transliteration ([`names`]), and the result must satisfy the DCC 1.3.3 JSON schema's
//! constraints ([`validate`]). Anything else yields the reason instead of a DCC: an EU verifier would
//! reject a DCC with non-EU codes, so issuing one would only mislead the holder.

pub mod mapping;
pub mod names;
pub mod uvci;
pub mod valuesets;

use serde::Serialize;

use crate::domain::{FhirDate, VaccinationEvent};
use valuesets::value_sets;

/// The DCC schema version we emit.
pub const DCC_VERSION: &str = "1.3.0";
/// Largest `dn`/`sd` EU verifiers accept (schema 1.3.0 had `maximum: 9`).
pub const MAX_DOSE: u32 = 9;
/// Longest `is` and `ci` (schema `maxLength`).
pub const MAX_TEXT_LEN: usize = 80;

/// EU DCC payload (schema `DCC.combined-schema.json`, vaccination variant).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Dcc {
    pub ver: &'static str,
    pub nam: PersonName,
    /// `YYYY`, `YYYY-MM`, `YYYY-MM-DD`, or empty when unknown.
    pub dob: String,
    /// Exactly one entry.
    pub v: [VaccinationEntry; 1],
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PersonName {
    #[serde(rename = "fn")]
    pub surname: String,
    #[serde(rename = "fnt")]
    pub surname_icao: String,
    #[serde(rename = "gn", skip_serializing_if = "Option::is_none")]
    pub forenames: Option<String>,
    #[serde(rename = "gnt", skip_serializing_if = "Option::is_none")]
    pub forenames_icao: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VaccinationEntry {
    pub tg: String,
    pub vp: String,
    pub mp: String,
    pub ma: String,
    pub dn: u32,
    pub sd: u32,
    pub dt: String,
    pub co: String,
    pub is: String,
    pub ci: String,
}

/// The EU DCC for `event` as JSON, or why none can be issued. `issuer_country` (the CWT `iss`) is the
/// country in the UVCI.
pub fn build(event: &VaccinationEvent, issuer_country: &str) -> Result<serde_json::Value, String> {
    let dcc = dcc(event, issuer_country)?;
    validate(&dcc)?;
    serde_json::to_value(&dcc).map_err(|e| format!("DCC to JSON: {e}"))
}

/// Builds the DCC structure, or every reason it cannot be built (each one a person can act on).
pub fn dcc(event: &VaccinationEvent, issuer_country: &str) -> Result<Dcc, String> {
    let vs = value_sets();
    let v = &event.vaccination;
    let mut reasons = Reasons::default();

    let vp = reasons.take(mapping::to_eu(
        mapping::VACCINE,
        &v.vaccine,
        &vs.prophylaxis,
    ));
    // Without a `disease`, the vaccine decides: every EU vaccine-prophylaxis code is a COVID-19
    // vaccine (value set `sct-vaccines-covid-19`), and COVID-19 is the only EU `tg`.
    let tg = match &v.disease {
        Some(d) => reasons.take(mapping::to_eu(mapping::DISEASE, d, &vs.disease)),
        None => Some(COVID19.to_string()),
    };
    let mp = reasons.take(mapping::to_eu(mapping::BRAND, &v.brand, &vs.product));
    // "Marketing authorisation holder - if no MAH present, then manufacturer" (schema, `ma`).
    let ma = reasons.take(
        [v.producer.ma_holder(), v.producer.manufacturer()]
            .into_iter()
            .flatten()
            .map(|c| mapping::to_eu(mapping::PRODUCER, c, &vs.producer))
            .reduce(|first, second| first.or(second))
            .unwrap_or_else(|| Err("no manufacturer or ma_holder".into())),
    );
    let co = v.country.alpha2().to_string();
    let co = reasons.take(vs.country.allows(&co).then_some(co).ok_or_else(|| {
        "the vaccination country is not in the EU value set country-2-codes".to_string()
    }));
    // Unknown series length is not guessed: sd = dn would claim a completed series.
    let sd = reasons.take(
        v.total_doses
            .map(|n| n.get())
            .ok_or_else(|| "total_doses is required for the EU DCC (sd)".to_string()),
    );
    let nam = reasons.take(person_name(event.holder.name.as_str()));
    let dt =
        reasons.take(v.date.full().map(|_| v.date.to_string()).ok_or_else(|| {
            "the vaccination date must be a full date for the EU DCC (dt)".to_string()
        }));
    let ci = reasons.take(
        uvci::uvci(issuer_country, event.certificate.hcid.as_str())
            .ok_or_else(|| format!("issuer country {issuer_country} cannot form a UVCI")),
    );

    match (tg, vp, mp, ma, co, sd, nam, dt, ci) {
        (
            Some(tg),
            Some(vp),
            Some(mp),
            Some(ma),
            Some(co),
            Some(sd),
            Some(nam),
            Some(dt),
            Some(ci),
        ) => Ok(Dcc {
            ver: DCC_VERSION,
            nam,
            dob: event
                .holder
                .birth_date
                .map(|d| d.to_string())
                .unwrap_or_default(),
            v: [VaccinationEntry {
                tg,
                vp,
                mp,
                ma,
                dn: v.dose.get(),
                sd,
                dt,
                co,
                is: event.certificate.issuer.as_str().to_string(),
                ci,
            }],
        }),
        _ => Err(reasons.0.join("; ")),
    }
}

/// Collects every reason, so that the caller learns all of them at once.
#[derive(Default)]
struct Reasons(Vec<String>);

impl Reasons {
    fn take<T>(&mut self, result: Result<T, String>) -> Option<T> {
        result.map_err(|e| self.0.push(e)).ok()
    }
}

/// SNOMED CT 840539006 "COVID-19", the only EU `tg`.
const COVID19: &str = "840539006";

fn person_name(name: &str) -> Result<PersonName, String> {
    let split = names::split(name);
    let untransliterable = || {
        "the holder's name contains characters with no ICAO 9303 transliteration (Latin and \
         Cyrillic scripts are supported), so fnt/gnt cannot be formed"
            .to_string()
    };
    let surname_icao = names::transliterate(&split.surname).ok_or_else(untransliterable)?;
    let forenames_icao = match &split.forenames {
        Some(g) => Some(names::transliterate(g).ok_or_else(untransliterable)?),
        None => None,
    };
    Ok(PersonName {
        surname: split.surname,
        surname_icao,
        forenames: split.forenames,
        forenames_icao,
    })
}

/// Checks the DCC 1.3.3 schema's constraints and the value sets; the reason for the first violation.
pub fn validate(dcc: &Dcc) -> Result<(), String> {
    let vs = value_sets();
    let check = |ok: bool, what: &str| {
        if ok {
            Ok(())
        } else {
            Err(format!("invalid DCC: {what}"))
        }
    };
    let icao = |s: &str| {
        s.len() <= names::MAX_NAME_LEN && s.bytes().all(|b| b.is_ascii_uppercase() || b == b'<')
    };
    let text = |s: &str, max: usize| s.chars().count() <= max;

    let ver = dcc.ver.split('.').collect::<Vec<_>>();
    check(
        ver.len() == 3
            && ver
                .iter()
                .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())),
        "ver is not a semantic version",
    )?;
    let nam = &dcc.nam;
    check(
        !nam.surname_icao.is_empty()
            || nam.forenames_icao.as_deref().is_some_and(|g| !g.is_empty()),
        "nam needs fnt or gnt",
    )?;
    check(
        icao(&nam.surname_icao),
        "fnt must be 1-80 characters of A-Z and <",
    )?;
    check(
        nam.forenames_icao.as_deref().is_none_or(icao),
        "gnt must be at most 80 characters of A-Z and <",
    )?;
    check(
        text(&nam.surname, names::MAX_NAME_LEN),
        "fn is longer than 80 characters",
    )?;
    check(
        nam.forenames
            .as_deref()
            .is_none_or(|g| text(g, names::MAX_NAME_LEN)),
        "gn is longer than 80 characters",
    )?;
    check(
        dob_ok(&dcc.dob),
        "dob must be empty or a date in 1900-2099 (YYYY[-MM[-DD]])",
    )?;

    let [v] = &dcc.v;
    check(vs.disease.allows(&v.tg), "tg is not in the EU value set")?;
    check(
        vs.prophylaxis.allows(&v.vp),
        "vp is not in the EU value set",
    )?;
    check(vs.product.allows(&v.mp), "mp is not in the EU value set")?;
    check(vs.producer.allows(&v.ma), "ma is not in the EU value set")?;
    check(vs.country.allows(&v.co), "co is not in the EU value set")?;
    check((1..=MAX_DOSE).contains(&v.dn), "dn must be 1-9")?;
    check((1..=MAX_DOSE).contains(&v.sd), "sd must be 1-9")?;
    check(
        matches!(FhirDate::parse(&v.dt), Some(FhirDate::Full(_))),
        "dt must be a full date",
    )?;
    check(
        !v.is.is_empty() && text(&v.is, MAX_TEXT_LEN),
        "is must be 1-80 characters",
    )?;
    check(
        v.ci.starts_with("URN:UVCI:01:") && text(&v.ci, MAX_TEXT_LEN),
        "ci must be a UVCI of at most 80 characters",
    )
}

/// Schema pattern `^((19|20)\d\d(-\d\d){0,2}){0,1}$`, and a real calendar date.
fn dob_ok(dob: &str) -> bool {
    if dob.is_empty() {
        return true;
    }
    dob.get(..2).is_some_and(|c| c == "19" || c == "20") && FhirDate::parse(dob).is_some()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::credential::core_data_set::tests::eddie_murphy;
    use crate::domain::{Code, NonEmpty, PositiveInt, Producer};

    fn code(system: &str, c: &str) -> Code {
        Code {
            system: Some(system.into()),
            code: NonEmpty::parse(c).unwrap(),
            display: None,
        }
    }

    /// The IG English example's codes (ICD-11 vaccine, brand, disease) with an EU manufacturer.
    pub(crate) fn eu_mappable() -> VaccinationEvent {
        let mut e = eddie_murphy();
        e.vaccination.vaccine = code(mapping::ICD11, "XM0GQ8");
        e.vaccination.brand = code(mapping::ICD11, "XM8NQ0");
        e.vaccination.disease = Some(code(mapping::ICD11, "RA01"));
        e.vaccination.producer =
            Producer::Manufacturer(code(mapping::EMA_ORGANISATIONS, "ORG-100030215"));
        e
    }

    #[test]
    fn builds_a_valid_dcc_with_eu_codes() {
        let json = build(&eu_mappable(), "US").unwrap();
        let uvci = uvci::uvci("US", "111000111").unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ver": "1.3.0",
                "nam": {"fn": "Murphy", "fnt": "MURPHY", "gn": "Eddie", "gnt": "EDDIE"},
                "dob": "1986-09-19",
                "v": [{
                    "tg": "840539006", "vp": "1119349007", "mp": "EU/1/20/1528", "ma": "ORG-100030215",
                    "dn": 2, "sd": 2, "dt": "2021-07-29", "co": "US",
                    "is": "wA69g8VD512TfTTdkTNSsG", "ci": uvci
                }]
            })
        );
    }

    #[test]
    fn the_who_example_test_codes_give_no_dcc_and_say_why() {
        // The reference mediator copied these into its DCC; EU verifiers reject them.
        let reason = build(&eddie_murphy(), "US").unwrap_err();
        assert!(reason.contains("brand"), "{reason}");
        assert!(reason.contains("manufacturer"), "{reason}");
    }

    #[test]
    fn names_without_transliteration_or_missing_doses_give_reasons() {
        let mut e = eu_mappable();
        e.holder.name = NonEmpty::parse("奥卢斯·阿杰里乌斯").unwrap();
        assert!(build(&e, "CN").unwrap_err().contains("ICAO 9303"));

        let mut e = eu_mappable();
        e.holder.name = NonEmpty::parse("Авл Агерий").unwrap();
        let json = build(&e, "RU").unwrap();
        assert_eq!(json["nam"]["fnt"], "AGERII");
        assert_eq!(json["nam"]["gnt"], "AVL");

        let mut e = eu_mappable();
        e.vaccination.total_doses = None;
        assert!(build(&e, "US").unwrap_err().contains("total_doses"));

        let mut e = eu_mappable();
        e.vaccination.dose = PositiveInt::new(10).unwrap();
        e.vaccination.total_doses = PositiveInt::new(10);
        assert!(build(&e, "US").unwrap_err().contains("dn must be 1-9"));

        let mut e = eu_mappable();
        e.holder.birth_date = FhirDate::parse("1899-12-31");
        assert!(build(&e, "US").unwrap_err().contains("dob"));
    }

    #[test]
    fn ma_prefers_the_marketing_authorisation_holder() {
        let mut e = eu_mappable();
        e.vaccination.producer = Producer::Both {
            manufacturer: code(mapping::EMA_ORGANISATIONS, "ORG-100030215"),
            ma_holder: code(mapping::EMA_ORGANISATIONS, "ORG-100031184"),
        };
        assert_eq!(build(&e, "US").unwrap()["v"][0]["ma"], "ORG-100031184");
        // An unmappable holder falls back to the manufacturer.
        e.vaccination.producer = Producer::Both {
            manufacturer: code(mapping::EMA_ORGANISATIONS, "ORG-100030215"),
            ma_holder: code("http://example.org", "X"),
        };
        assert_eq!(build(&e, "US").unwrap()["v"][0]["ma"], "ORG-100030215");
    }

    #[test]
    fn the_dcc_passes_the_schema_constraints_checked_in_rust() {
        let mut dcc = dcc(&eu_mappable(), "US").unwrap();
        validate(&dcc).unwrap();
        dcc.nam.surname_icao = "Murphy".into();
        assert!(validate(&dcc).is_err());
    }
}
