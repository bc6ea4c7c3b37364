//! The DDCC:VS core data set (the IG logical model `DDCCCoreDataSet`) as JSON: the `ddcc` payload.
//!
//! Key names and order follow what the WHO reference mediator emits (who-reference-mediator.md §4.2), so
//! that verifiers built for it read ours. Absent optional values are omitted, never `null`.

use serde_json::{json, Map, Value};

use crate::domain::{Code, VaccinationEvent};

/// `certificate.version` the IG's StructureMap writes.
pub const CERTIFICATE_VERSION: &str = "RC2";
/// Code system of `vaccination.country` (ISO 3166-1 alpha-3).
pub const ISO3166_SYSTEM: &str = "urn:iso:std:iso:3166";

/// The core data set of `event`.
pub fn core_data_set(event: &VaccinationEvent) -> Value {
    let h = &event.holder;
    let v = &event.vaccination;
    let c = &event.certificate;

    let mut root = Map::new();
    root.insert("resourceType".into(), json!("DDCCCoreDataSet"));
    root.insert("name".into(), json!(h.name));
    put(&mut root, "birthDate", h.birth_date.map(|d| json!(d)));
    put(
        &mut root,
        "identifier",
        h.identifier.as_ref().map(|i| json!({ "value": i })),
    );
    put(&mut root, "sex", h.sex.map(|s| json!(s.code())));

    let mut certificate = Map::new();
    certificate.insert(
        "issuer".into(),
        json!({ "identifier": { "value": c.issuer } }),
    );
    certificate.insert("hcid".into(), json!({ "value": c.hcid }));
    certificate.insert("version".into(), json!(CERTIFICATE_VERSION));
    let mut period = Map::new();
    put(&mut period, "start", c.valid_from.map(|d| json!(d)));
    put(&mut period, "end", c.valid_until.map(|d| json!(d)));
    if !period.is_empty() {
        certificate.insert("period".into(), Value::Object(period));
    }
    root.insert("certificate".into(), Value::Object(certificate));

    let mut vacc = Map::new();
    vacc.insert("vaccine".into(), coding(&v.vaccine));
    vacc.insert("brand".into(), coding(&v.brand));
    put(
        &mut vacc,
        "manufacturer",
        v.producer.manufacturer().map(coding),
    );
    put(&mut vacc, "maholder", v.producer.ma_holder().map(coding));
    vacc.insert("lot".into(), json!(v.lot));
    vacc.insert("date".into(), json!(v.date));
    put(&mut vacc, "validFrom", v.valid_from.map(|d| json!(d)));
    vacc.insert("dose".into(), json!(v.dose.get()));
    put(
        &mut vacc,
        "totalDoses",
        v.total_doses.map(|n| json!(n.get())),
    );
    vacc.insert(
        "country".into(),
        json!({ "system": ISO3166_SYSTEM, "code": v.country.alpha3() }),
    );
    vacc.insert("centre".into(), json!(v.centre));
    put(
        &mut vacc,
        "practitioner",
        v.health_worker.as_ref().map(|p| json!({ "value": p })),
    );
    put(&mut vacc, "disease", v.disease.as_ref().map(coding));
    put(&mut vacc, "nextDose", v.next_dose.map(|d| json!(d)));
    root.insert("vaccination".into(), Value::Object(vacc));

    Value::Object(root)
}

/// A FHIR Coding: `{system, code}`, `display` only when the questionnaire answer had one.
fn coding(code: &Code) -> Value {
    let mut m = Map::new();
    put(&mut m, "system", code.system.as_ref().map(|s| json!(s)));
    m.insert("code".into(), json!(code.code));
    put(&mut m, "display", code.display.as_ref().map(|d| json!(d)));
    Value::Object(m)
}

fn put(map: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        map.insert(key.into(), v);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::domain::*;

    fn code(system: &str, c: &str) -> Code {
        Code {
            system: Some(system.into()),
            code: NonEmpty::parse(c).unwrap(),
            display: None,
        }
    }

    /// The WHO mediator's Demo-Bundle-2 person as a domain event (examples/mediator-tests-Demo-Bundle-2.json).
    pub(crate) fn eddie_murphy() -> VaccinationEvent {
        let test_cs =
            "http://worldhealthorganization.github.io/ddcc/CodeSystem/DDCC-Example-Test-CodeSystem";
        VaccinationEvent {
            holder: Holder {
                name: NonEmpty::parse("Eddie Murphy").unwrap(),
                birth_date: FhirDate::parse("1986-09-19"),
                identifier: NonEmpty::parse("1234567890"),
                sex: Some(Sex::Male),
            },
            vaccination: Vaccination {
                vaccine: code("http://snomed.info/sct", "1119349007"),
                brand: code(test_cs, "TEST"),
                producer: Producer::Both {
                    manufacturer: code(test_cs, "TEST"),
                    ma_holder: code(test_cs, "TEST"),
                },
                lot: NonEmpty::parse("PT123G").unwrap(),
                date: FhirDate::parse("2021-07-29").unwrap(),
                valid_from: FhirDate::parse("2021-08-12"),
                dose: PositiveInt::new(2).unwrap(),
                total_doses: PositiveInt::new(2),
                country: Country::from_alpha3("USA").unwrap(),
                centre: NonEmpty::parse("Vaccination Site").unwrap(),
                health_worker: NonEmpty::parse("http://www.acme.org/practitioners/23"),
                disease: Some(code("http://snomed.info/sct", "840539006")),
                next_dose: None,
            },
            certificate: CertificateInfo {
                issuer: NonEmpty::parse("wA69g8VD512TfTTdkTNSsG").unwrap(),
                hcid: NonEmpty::parse("111000111").unwrap(),
                valid_from: FhirDate::parse("2021-07-29"),
                valid_until: FhirDate::parse("2022-03-29"),
            },
            version: Default::default(),
            language: None,
        }
    }

    #[test]
    fn equals_the_who_mediator_payload_for_the_same_person() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/examples/hc1-decoded-from-existingDDCCDoc.json");
        let decoded: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        let expected = &decoded["who"]["payload_decoded"]["-260"]["1"];
        let ours = core_data_set(&eddie_murphy());
        assert_eq!(&ours, expected);
        // Key order too (verifiers that hash or display the JSON see the same document).
        assert_eq!(
            serde_json::to_string(&ours).unwrap(),
            serde_json::to_string(expected).unwrap()
        );
    }
}
