use std::collections::BTreeSet;

use base64::Engine as _;
use serde_json::Value;

use super::profile_check;
use super::*;
use crate::domain::{
    CertificateInfo, Code, Country, FhirDate, Holder, NonEmpty, PositiveInt, Producer, Sex,
    Vaccination,
};

fn text(s: &str) -> NonEmpty {
    NonEmpty::parse(s).unwrap()
}

fn date(s: &str) -> FhirDate {
    FhirDate::parse(s).unwrap()
}

fn code(system: &str, c: &str) -> Code {
    Code {
        system: Some(system.into()),
        code: text(c),
        display: None,
    }
}

const ICD11: &str = "http://id.who.int/icd11/mms";
const TEST_CS: &str = "http://smart.who.int/ddcc/CodeSystem/DDCCExampleTestCodeSystem";

/// Every element the QuestionnaireResponse can carry (the IG English example's answers).
fn full_event(hcid: &str, dose: i64) -> VaccinationEvent {
    VaccinationEvent {
        holder: Holder {
            name: text("Aulus Agerius"),
            birth_date: Some(date("2003-03-03")),
            identifier: Some(text("1234567890")),
            sex: Some(Sex::Male),
        },
        vaccination: Vaccination {
            vaccine: code(ICD11, "XM0GQ8"),
            brand: code(ICD11, "XM3DT5"),
            producer: Producer::Both {
                manufacturer: code(TEST_CS, "TEST"),
                ma_holder: code(TEST_CS, "TEST"),
            },
            lot: text("ER8732"),
            date: date("2021-04-05"),
            valid_from: Some(date("2021-04-19")),
            dose: PositiveInt::new(dose).unwrap(),
            total_doses: PositiveInt::new(2),
            country: Country::from_alpha3("USA").unwrap(),
            centre: text("Vaccination Site"),
            health_worker: Some(text("lAH8TnzqAInqwkslHzOlSA")),
            disease: Some(code(ICD11, "RA01")),
            next_dose: Some(date("2021-04-28")),
        },
        certificate: CertificateInfo {
            issuer: text("dPD2PfwzBQyphcjeUiAdRP"),
            hcid: text(hcid),
            valid_from: Some(date("2021-04-05")),
            valid_until: Some(date("2022-04-05")),
        },
        version: Default::default(),
        language: None,
    }
}

/// Only what the questionnaire requires; the producer is a market-authorization holder only.
fn minimal_event() -> VaccinationEvent {
    let mut e = full_event("minimal-1", 2);
    e.holder = Holder {
        name: text("Авл Агерий"),
        birth_date: None,
        identifier: None,
        sex: None,
    };
    let v = &mut e.vaccination;
    v.producer = Producer::MarketAuthorizationHolder(code(TEST_CS, "TEST"));
    v.valid_from = None;
    v.total_doses = None;
    v.health_worker = None;
    v.disease = None;
    v.next_dose = None;
    e.certificate.valid_from = None;
    e.certificate.valid_until = None;
    e
}

fn qr(kind: QrKind) -> QrArtifact {
    QrArtifact {
        kind,
        payload_json: format!(r#"{{"kind":"{}"}}"#, kind.code()).into_bytes(),
        hc1: "HC1:TEST".into(),
        png: vec![0x89, b'P', b'N', b'G', 0, 1, 2, 3],
    }
}

fn ctx(qrs: Vec<QrArtifact>) -> DocumentContext {
    DocumentContext {
        issued_at: time::macros::datetime!(2021-06-03 13:28:17 -05:00),
        issuer_name: Some("Government Hospital".into()),
        qrs,
    }
}

fn json(event: &VaccinationEvent, ctx: &DocumentContext) -> Value {
    serde_json::to_value(build_document(event, ctx)).unwrap()
}

fn entries(doc: &Value) -> &Vec<Value> {
    doc["entry"].as_array().unwrap()
}

fn of_type<'a>(doc: &'a Value, rtype: &str) -> Vec<&'a Value> {
    entries(doc)
        .iter()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == rtype)
        .collect()
}

fn one<'a>(doc: &'a Value, rtype: &str) -> &'a Value {
    let found = of_type(doc, rtype);
    assert_eq!(found.len(), 1, "{rtype}");
    found[0]
}

fn full_url_of(doc: &Value, rtype: &str) -> String {
    let e = entries(doc)
        .iter()
        .find(|e| e["resource"]["resourceType"] == rtype)
        .unwrap();
    e["fullUrl"].as_str().unwrap().to_owned()
}

/// (fullUrl, resource id) of every entry, plus the Bundle id and identifier.
fn all_ids(doc: &Value) -> Vec<String> {
    let mut ids = vec![
        doc["id"].to_string(),
        doc["identifier"]["value"].to_string(),
    ];
    for e in entries(doc) {
        ids.push(e["fullUrl"].to_string());
        ids.push(e["resource"]["id"].to_string());
    }
    ids
}

fn references(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                match (k.as_str(), child) {
                    ("reference", Value::String(r)) => out.push(r.clone()),
                    _ => references(child, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| references(i, out)),
        _ => {}
    }
}

#[test]
fn ids_are_stable_across_builds() {
    let event = full_event("bMlJkAt0V92RYhhG3fNt", 1);
    let first = json(&event, &ctx(vec![qr(QrKind::Who), qr(QrKind::Dcc)]));
    let mut later = ctx(vec![qr(QrKind::Who), qr(QrKind::Dcc)]);
    later.issued_at = time::macros::datetime!(2022-01-01 00:00:00 UTC);
    let second = json(&event, &later);
    assert_eq!(all_ids(&first), all_ids(&second));
    assert_ne!(first["timestamp"], second["timestamp"]);
}

#[test]
fn ids_are_uuids_shared_by_fullurl_and_resource() {
    let doc = json(&full_event("h-1", 1), &ctx(vec![qr(QrKind::Who)]));
    for e in entries(&doc) {
        let id = e["resource"]["id"].as_str().unwrap();
        let uuid = uuid::Uuid::parse_str(id).unwrap();
        assert_eq!(uuid.get_version_num(), 5);
        assert_eq!(e["fullUrl"], format!("urn:uuid:{id}"));
    }
    let bundle_id = doc["id"].as_str().unwrap();
    assert_eq!(doc["identifier"]["system"], "urn:ietf:rfc:3986");
    assert_eq!(doc["identifier"]["value"], format!("urn:uuid:{bundle_id}"));
}

#[test]
fn bundle_id_is_the_built_documents_id_without_building_it() {
    for (hcid, dose) in [("h-1", 1), ("h-1", 2), ("hcid-b", 1)] {
        let event = full_event(hcid, dose);
        let doc = json(&event, &ctx(vec![qr(QrKind::Who)]));
        assert_eq!(doc["id"].as_str(), Some(super::bundle_id(&event).as_str()));
    }
}

#[test]
fn a_different_hcid_gives_different_ids() {
    let a = json(&full_event("hcid-a", 1), &ctx(vec![qr(QrKind::Who)]));
    let b = json(&full_event("hcid-b", 1), &ctx(vec![qr(QrKind::Who)]));
    let org_a = full_url_of(&a, "Organization");
    assert_eq!(
        org_a,
        full_url_of(&b, "Organization"),
        "one Organization per issuer"
    );
    let ids_b: BTreeSet<String> = all_ids(&b).into_iter().collect();
    for id in all_ids(&a) {
        if !org_a.contains(id.trim_matches('"')) {
            assert!(!ids_b.contains(&id), "{id} shared by two certificates");
        }
    }
}

#[test]
fn another_dose_of_the_same_certificate_is_another_document_for_the_same_holder() {
    let dose1 = json(&full_event("111000111", 1), &ctx(vec![]));
    let dose2 = json(&full_event("111000111", 2), &ctx(vec![]));
    assert_eq!(
        full_url_of(&dose1, "Patient"),
        full_url_of(&dose2, "Patient")
    );
    for rtype in ["Composition", "Immunization", "ImmunizationRecommendation"] {
        assert_ne!(
            full_url_of(&dose1, rtype),
            full_url_of(&dose2, rtype),
            "{rtype}"
        );
    }
    assert_ne!(dose1["id"], dose2["id"]);
}

#[test]
fn no_recommendation_without_a_next_dose() {
    let mut event = full_event("h-2", 2);
    event.vaccination.next_dose = None;
    let doc = json(&event, &ctx(vec![qr(QrKind::Who)]));
    assert!(of_type(&doc, "ImmunizationRecommendation").is_empty());
    let section_entries = &one(&doc, "Composition")["section"][0]["entry"];
    assert_eq!(
        section_entries.as_array().unwrap().len(),
        2,
        "Immunization and the QR"
    );
}

#[test]
fn recommendation_is_the_next_dose() {
    let doc = json(&full_event("h-3", 1), &ctx(vec![]));
    let rec = &one(&doc, "ImmunizationRecommendation")["recommendation"][0];
    assert_eq!(
        rec["forecastStatus"]["coding"][0]["system"],
        "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status"
    );
    assert_eq!(rec["forecastStatus"]["coding"][0]["code"], "due");
    assert_eq!(
        rec["dateCriterion"][0]["code"]["coding"][0]["code"],
        "30980-7"
    );
    assert_eq!(rec["dateCriterion"][0]["value"], "2021-04-28");
    assert_eq!(rec["doseNumberPositiveInt"], 2);
    assert_eq!(rec["seriesDosesPositiveInt"], 2);
    assert_eq!(
        rec["supportingImmunization"][0]["reference"],
        full_url_of(&doc, "Immunization")
    );
}

#[test]
fn every_reference_resolves_within_the_bundle() {
    for event in [full_event("h-4", 1), minimal_event()] {
        let doc = json(&event, &ctx(vec![qr(QrKind::Who), qr(QrKind::Dcc)]));
        let full_urls: Vec<&str> = entries(&doc)
            .iter()
            .map(|e| e["fullUrl"].as_str().unwrap())
            .collect();
        let unique: BTreeSet<&&str> = full_urls.iter().collect();
        assert_eq!(unique.len(), full_urls.len(), "fullUrls are unique");
        let mut refs = Vec::new();
        references(&doc, &mut refs);
        assert!(refs.len() >= 10);
        for r in refs {
            assert!(full_urls.contains(&r.as_str()), "{r} does not resolve");
        }
        for e in entries(&doc) {
            assert!(e.get("request").is_none() && e.get("response").is_none());
        }
    }
}

#[test]
fn composition_comes_first_and_lists_the_event() {
    let doc = json(
        &full_event("h-5", 1),
        &ctx(vec![qr(QrKind::Who), qr(QrKind::Dcc)]),
    );
    let types: Vec<&str> = entries(&doc)
        .iter()
        .map(|e| e["resource"]["resourceType"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "Composition",
            "Patient",
            "Organization",
            "Immunization",
            "ImmunizationRecommendation",
            "DocumentReference",
            "DocumentReference"
        ]
    );
    let composition = one(&doc, "Composition");
    let section = &composition["section"][0];
    assert_eq!(section["code"]["coding"][0]["code"], "11369-6");
    assert_eq!(
        section["focus"]["reference"],
        full_url_of(&doc, "Immunization")
    );
    let listed: Vec<&str> = section["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reference"].as_str().unwrap())
        .collect();
    let expected: Vec<&str> = entries(&doc)[3..]
        .iter()
        .map(|e| e["fullUrl"].as_str().unwrap())
        .collect();
    assert_eq!(listed, expected);
    let org = full_url_of(&doc, "Organization");
    assert_eq!(composition["author"][0]["reference"], org);
    assert_eq!(composition["attester"][0]["party"]["reference"], org);
    assert_eq!(composition["event"][0]["period"]["start"], "2021-04-05");
    assert_eq!(composition["event"][0]["period"]["end"], "2022-04-05");
    assert_eq!(composition["date"], "2021-06-03T18:28:17Z");
    assert_eq!(doc["timestamp"], "2021-06-03T18:28:17Z");
    assert_eq!(doc["link"][0]["relation"], "publication");
    assert_eq!(doc["link"][0]["url"], "urn:HCID:h-5");
}

#[test]
fn holder_and_issuer() {
    let doc = json(&full_event("h-6", 1), &ctx(vec![]));
    let patient = one(&doc, "Patient");
    assert_eq!(patient["name"][0]["use"], "official");
    assert_eq!(patient["name"][0]["text"], "Aulus Agerius");
    assert_eq!(patient["gender"], "male");
    assert_eq!(patient["birthDate"], "2003-03-03");
    assert_eq!(patient["identifier"][0]["value"], "1234567890");
    let org = one(&doc, "Organization");
    assert_eq!(org["identifier"][0]["value"], "dPD2PfwzBQyphcjeUiAdRP");
    assert_eq!(org["name"], "Government Hospital");

    // Without a configured name the identifier names the Organization; an unknown birth date is stated.
    let mut unnamed = ctx(vec![]);
    unnamed.issuer_name = None;
    let doc = json(&minimal_event(), &unnamed);
    assert_eq!(one(&doc, "Organization")["name"], "dPD2PfwzBQyphcjeUiAdRP");
    let patient = one(&doc, "Patient");
    assert!(patient.get("birthDate").is_none());
    assert_eq!(
        patient["_birthDate"]["extension"][0]["valueCode"],
        "unknown"
    );
}

#[test]
fn qr_documents_carry_the_payload_and_the_image() {
    let doc = json(
        &full_event("h-7", 1),
        &ctx(vec![qr(QrKind::Who), qr(QrKind::Dcc)]),
    );
    let b64 = base64::engine::general_purpose::STANDARD;
    let docs = of_type(&doc, "DocumentReference");
    for (d, kind) in docs.iter().zip([QrKind::Who, QrKind::Dcc]) {
        let artefact = qr(kind);
        assert_eq!(d["status"], "current");
        assert_eq!(
            d["type"]["coding"][0]["system"],
            "http://smart.who.int/ddcc/CodeSystem/DDCCQRTypeCodeSystem"
        );
        assert_eq!(d["type"]["coding"][0]["code"], kind.code());
        assert_eq!(d["subject"]["reference"], full_url_of(&doc, "Patient"));
        assert_eq!(
            d["authenticator"]["reference"],
            full_url_of(&doc, "Organization")
        );
        let slot = |format: &str| {
            d["content"]
                .as_array()
                .unwrap()
                .iter()
                .find(|c| c["format"]["code"] == format)
                .unwrap()
                .clone()
        };
        // The content slicing is closed: every slot is one of the profile's (image, serialized, pdf).
        let formats: Vec<&str> = d["content"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                assert_eq!(
                    c["format"]["system"],
                    "http://smart.who.int/ddcc/CodeSystem/DDCCQRFormatCodeSystem"
                );
                c["format"]["code"].as_str().unwrap()
            })
            .collect();
        assert_eq!(formats, ["serialized", "image"]);
        let serialized = slot("serialized");
        assert_eq!(serialized["attachment"]["contentType"], "application/json");
        let data = serialized["attachment"]["data"].as_str().unwrap();
        assert_eq!(b64.decode(data).unwrap(), artefact.payload_json);
        let image = slot("image");
        assert_eq!(image["attachment"]["contentType"], "image/png");
        let data = image["attachment"]["data"].as_str().unwrap();
        assert_eq!(b64.decode(data).unwrap(), artefact.png);
    }

    // Two QRs of one kind still get distinct ids.
    let doc = json(
        &full_event("h-7", 1),
        &ctx(vec![qr(QrKind::Who), qr(QrKind::Who)]),
    );
    let docs = of_type(&doc, "DocumentReference");
    assert_ne!(docs[0]["id"], docs[1]["id"]);
}

#[test]
fn immunization_maps_the_event() {
    let doc = json(&full_event("h-8", 1), &ctx(vec![]));
    let imm = one(&doc, "Immunization");
    let ext = |name: &str| {
        imm["extension"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["url"] == format!("http://smart.who.int/ddcc/StructureDefinition/{name}"))
            .cloned()
    };
    assert_eq!(
        ext("DDCCEventBrand").unwrap()["valueCoding"]["code"],
        "XM3DT5"
    );
    assert_eq!(ext("DDCCCountryOfEvent").unwrap()["valueCode"], "USA");
    assert_eq!(
        ext("DDCCVaccineMarketAuthorization").unwrap()["valueCoding"]["code"],
        "TEST"
    );
    assert_eq!(
        ext("DDCCVaccineValidFrom").unwrap()["valueDate"],
        "2021-04-19"
    );
    assert_eq!(imm["status"], "completed");
    assert_eq!(imm["vaccineCode"]["coding"][0]["code"], "XM0GQ8");
    assert_eq!(imm["patient"]["reference"], full_url_of(&doc, "Patient"));
    assert_eq!(imm["occurrenceDateTime"], "2021-04-05");
    assert_eq!(imm["location"]["display"], "Vaccination Site");
    assert_eq!(imm["lotNumber"], "ER8732");
    assert_eq!(
        imm["performer"][0]["actor"]["identifier"]["value"],
        "lAH8TnzqAInqwkslHzOlSA"
    );
    assert_eq!(imm["manufacturer"]["identifier"]["value"], "TEST");
    let protocol = &imm["protocolApplied"][0];
    assert_eq!(
        protocol["authority"]["reference"],
        full_url_of(&doc, "Organization")
    );
    assert_eq!(protocol["targetDisease"][0]["coding"][0]["code"], "RA01");
    assert_eq!(protocol["doseNumberPositiveInt"], 1);
    assert_eq!(protocol["seriesDosesPositiveInt"], 2);
}

/// Every resource conforms to the minimum cardinalities, maximum cardinalities and patterns of its profile's
/// snapshot in the published IG package, with all optional inputs present and with none.
#[test]
fn every_profile_is_satisfied() {
    let profiles = profile_check::profiles();
    for event in [full_event("h-9", 1), minimal_event()] {
        let doc = json(&event, &ctx(vec![qr(QrKind::Who), qr(QrKind::Dcc)]));
        let mut checked = Vec::new();
        let resources = std::iter::once(&doc).chain(entries(&doc).iter().map(|e| &e["resource"]));
        for resource in resources {
            let url = resource["meta"]["profile"][0].as_str().unwrap();
            let sd = profiles
                .get(url)
                .unwrap_or_else(|| panic!("no profile {url}"));
            let problems = profile_check::check(resource, sd);
            assert!(problems.is_empty(), "{url}:\n{}", problems.join("\n"));
            checked.push(url.rsplit('/').next().unwrap().to_owned());
        }
        assert!(checked.len() >= 6, "{checked:?}");
    }
}

#[test]
fn instants_are_utc_with_second_precision() {
    assert_eq!(
        instant(time::macros::datetime!(2021-06-03 13:28:17.123 -05:00)),
        "2021-06-03T18:28:17Z"
    );
    assert_eq!(
        instant(time::macros::datetime!(2021-01-01 00:00:00 UTC)),
        "2021-01-01T00:00:00Z"
    );
}

/// The profile check itself finds what it claims to: a missing required element, a broken pattern, too
/// many repetitions and a missing required extension.
#[test]
fn profile_check_finds_violations() {
    let profiles = profile_check::profiles();
    let doc = json(&full_event("h-10", 1), &ctx(vec![]));
    let sd =
        |name: &str| &profiles[&format!("http://smart.who.int/ddcc/StructureDefinition/{name}")];

    let mut composition = one(&doc, "Composition").clone();
    composition.as_object_mut().unwrap().remove("date");
    composition["title"] = "International Certificate of Vaccination or Prophylaxis".into();
    let attester = composition["attester"][0].clone();
    composition["attester"]
        .as_array_mut()
        .unwrap()
        .push(attester);
    let problems = profile_check::check(&composition, sd("DDCCVSComposition"));
    for element in [
        "Composition.date",
        "Composition.title",
        "Composition.attester",
    ] {
        assert!(
            problems
                .iter()
                .any(|p| p.starts_with(&format!("{element}:"))),
            "{element} not reported: {problems:?}"
        );
    }

    let mut immunization = one(&doc, "Immunization").clone();
    immunization["extension"]
        .as_array_mut()
        .unwrap()
        .retain(|e| !e["url"].as_str().unwrap().ends_with("DDCCCountryOfEvent"));
    let problems = profile_check::check(&immunization, sd("DDCCImmunization"));
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("Immunization.extension:country:")),
        "{problems:?}"
    );
}

/// The check accepts the IG's own example documents, so it is not stricter than the profiles where our
/// documents and the examples overlap.
#[test]
fn profile_check_accepts_the_ig_examples() {
    let profiles = profile_check::profiles();
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/vectors/ddcc/ig-1.0.0");
    for name in [
        "ExampleEnglish",
        "ExampleFrench",
        "ExampleSpanish",
        "Example-Russian",
        "ExampleArabic",
        "ExampleChinese",
    ] {
        let bytes = std::fs::read(dir.join(format!("Bundle-{name}.json"))).unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let resources = std::iter::once(&doc).chain(entries(&doc).iter().map(|e| &e["resource"]));
        for resource in resources {
            let url = resource["meta"]["profile"][0].as_str().unwrap();
            let problems = profile_check::check(resource, &profiles[url]);
            assert!(
                problems.is_empty(),
                "{name} {url}:\n{}",
                problems.join("\n")
            );
        }
    }
}
