//! The document Bundle against the WHO DDCC IG 1.0.0 example documents, in the IG's six languages.
//!
//! Each IG QuestionnaireResponse goes through intake and `build_document`; the result is compared with the IG
//! example Bundle of the same language:
//! - the same resource types;
//! - per resource, the same element paths (narrative, ids, fullUrls and server meta ignored), except the
//!   differences listed in [`EXTRA_PATHS`] and [`MISSING_PATHS`], each with its reason;
//! - the same clinical and holder values, except where the IG example does not match its own
//!   QuestionnaireResponse ([`EXAMPLE_DIVERGES`]): there we follow the QuestionnaireResponse and check that the
//!   example really says what the table claims.
//!
//! Every value we emit is also checked against the QuestionnaireResponse answer it comes from.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use ddcc_mediator::document::{build_document, DocumentContext};
use ddcc_mediator::intake::parse_questionnaire_response;
use fhir_models::QuestionnaireResponse;
use serde_json::{json, Value};

/// (language, QuestionnaireResponse file suffix, Bundle file suffix)
const LANGUAGES: [(&str, &str, &str); 6] = [
    ("English", "Example", "ExampleEnglish"),
    ("French", "French", "ExampleFrench"),
    ("Spanish", "Spanish", "ExampleSpanish"),
    ("Russian", "Russian", "Example-Russian"),
    ("Arabic", "Arabic", "ExampleArabic"),
    ("Chinese", "Chinese", "ExampleChinese"),
];

/// Element paths our document has and the IG example lacks: (resource type, path, why).
const EXTRA_PATHS: &[(&str, &str, &str)] = &[
    (
        "Patient",
        "identifier.value",
        "QR item `identifier`; the example leaves it out",
    ),
    (
        "Patient",
        "gender",
        "QR item `sex`; the example leaves it out",
    ),
    (
        "Organization",
        "identifier.value",
        "the issuer's identifier (QR item `pha`)",
    ),
    (
        "Composition",
        "category.coding.system",
        "DDCCVSComposition pattern ddcc-vs",
    ),
    (
        "Composition",
        "category.coding.code",
        "DDCCVSComposition pattern ddcc-vs",
    ),
    (
        "Composition",
        "event.period.start",
        "certificate validity (QR item `valid_from`)",
    ),
    (
        "Composition",
        "event.period.end",
        "certificate validity (QR item `valid_until`)",
    ),
    (
        "Immunization",
        "manufacturer.type",
        "QR item `manufacturer`, by identifier",
    ),
    (
        "Immunization",
        "manufacturer.identifier.system",
        "QR item `manufacturer`",
    ),
    (
        "Immunization",
        "manufacturer.identifier.value",
        "QR item `manufacturer`",
    ),
    (
        "Immunization",
        "performer.actor.type",
        "the health worker (QR item `hw`), by identifier",
    ),
    (
        "Immunization",
        "performer.actor.identifier.value",
        "the health worker (QR item `hw`)",
    ),
    (
        "ImmunizationRecommendation",
        "recommendation.targetDisease.coding.system",
        "QR item `disease`",
    ),
    (
        "ImmunizationRecommendation",
        "recommendation.targetDisease.coding.code",
        "QR item `disease`",
    ),
    (
        "ImmunizationRecommendation",
        "recommendation.doseNumberPositiveInt",
        "the next dose: `dose` + 1",
    ),
    (
        "ImmunizationRecommendation",
        "recommendation.seriesDosesPositiveInt",
        "QR item `total_doses`",
    ),
];

/// Element paths the IG example has and our document lacks: (resource type, path, why).
const MISSING_PATHS: &[(&str, &str, &str)] = &[
    (
        "Immunization",
        "expirationDate",
        "no QR item carries the vaccine's expiry date",
    ),
    (
        "Immunization",
        "performer.actor.reference",
        "the QR names the health worker (`hw`), not a performing Organization",
    ),
];

/// Where the IG example does not match its own QuestionnaireResponse: (language or `*`, field, the example's value).
/// Our document follows the QuestionnaireResponse.
const EXAMPLE_DIVERGES: &[(&str, &str, &str)] = &[
    ("*", "Bundle.link", r#""urn:HCID:1234567890""#),
    ("*", "Immunization.lotNumber", r#""123""#),
    ("*", "Immunization.occurrenceDateTime", r#""2021-05-06""#),
    (
        "*",
        "Immunization.extension:DDCCVaccineValidFrom",
        r#""2021-05-30""#,
    ),
    ("*", "ImmunizationRecommendation.date", r#""2021-05-06""#),
    (
        "*",
        "ImmunizationRecommendation.dateCriterion",
        r#""2021-05-20""#,
    ),
    (
        "English",
        "Immunization.extension:DDCCCountryOfEvent",
        r#""CHE""#,
    ),
    (
        "Arabic",
        "Immunization.vaccineCode",
        r#"[{"system":"http://id.who.int/icd11/mms","code":"XM0CX4"}]"#,
    ),
    (
        "Arabic",
        "ImmunizationRecommendation.vaccineCode",
        r#"[{"coding":[{"system":"http://id.who.int/icd11/mms","code":"XM0CX4"}]}]"#,
    ),
];

/// How a QR answer becomes the FHIR value we compare with.
#[derive(Clone, Copy)]
enum Answer {
    /// The bare `value[x]` (string, date, integer).
    Value(&'static str),
    /// `valueCoding.code`.
    Code(&'static str),
    /// `[valueCoding]`.
    Codings(&'static str),
    /// `[{coding: [valueCoding]}]`.
    Concepts(&'static str),
    /// `urn:HCID:` + the hcid.
    Hcid,
    /// A fixed code, not from the QR.
    None,
}

/// The compared fields: (label, resource type, where in the resource, which QR answer it comes from).
/// `where` is a JSON pointer, or `ext:<name>` for the value of the extension `…/StructureDefinition/<name>`.
const FIELDS: &[(&str, &str, &str, Answer)] = &[
    ("Bundle.link", "Bundle", "/link/0/url", Answer::Hcid),
    (
        "Patient.name",
        "Patient",
        "/name/0/text",
        Answer::Value("name"),
    ),
    ("Patient.name.use", "Patient", "/name/0/use", Answer::None),
    (
        "Patient.birthDate",
        "Patient",
        "/birthDate",
        Answer::Value("birthDate"),
    ),
    ("Patient.gender", "Patient", "/gender", Answer::Code("sex")),
    (
        "Patient.identifier",
        "Patient",
        "/identifier/0/value",
        Answer::Value("identifier"),
    ),
    (
        "Immunization.vaccineCode",
        "Immunization",
        "/vaccineCode/coding",
        Answer::Codings("vaccine"),
    ),
    (
        "Immunization.extension:DDCCEventBrand",
        "Immunization",
        "ext:DDCCEventBrand",
        Answer::Codings("brand"),
    ),
    (
        "Immunization.extension:DDCCCountryOfEvent",
        "Immunization",
        "ext:DDCCCountryOfEvent",
        Answer::Code("country"),
    ),
    (
        "Immunization.extension:DDCCVaccineMarketAuthorization",
        "Immunization",
        "ext:DDCCVaccineMarketAuthorization",
        Answer::Codings("ma_holder"),
    ),
    (
        "Immunization.extension:DDCCVaccineValidFrom",
        "Immunization",
        "ext:DDCCVaccineValidFrom",
        Answer::Value("vaccine_valid"),
    ),
    (
        "Immunization.lotNumber",
        "Immunization",
        "/lotNumber",
        Answer::Value("lot"),
    ),
    (
        "Immunization.occurrenceDateTime",
        "Immunization",
        "/occurrenceDateTime",
        Answer::Value("date"),
    ),
    (
        "Immunization.location",
        "Immunization",
        "/location/display",
        Answer::Value("centre"),
    ),
    (
        "Immunization.targetDisease",
        "Immunization",
        "/protocolApplied/0/targetDisease",
        Answer::Concepts("disease"),
    ),
    (
        "Immunization.doseNumber",
        "Immunization",
        "/protocolApplied/0/doseNumberPositiveInt",
        Answer::Value("dose"),
    ),
    (
        "Immunization.seriesDoses",
        "Immunization",
        "/protocolApplied/0/seriesDosesPositiveInt",
        Answer::Value("total_doses"),
    ),
    (
        "ImmunizationRecommendation.date",
        "ImmunizationRecommendation",
        "/date",
        Answer::Value("date"),
    ),
    (
        "ImmunizationRecommendation.vaccineCode",
        "ImmunizationRecommendation",
        "/recommendation/0/vaccineCode",
        Answer::Concepts("vaccine"),
    ),
    (
        "ImmunizationRecommendation.forecastStatus",
        "ImmunizationRecommendation",
        "/recommendation/0/forecastStatus",
        Answer::None,
    ),
    (
        "ImmunizationRecommendation.dateCriterion",
        "ImmunizationRecommendation",
        "/recommendation/0/dateCriterion/0/value",
        Answer::Value("due_date"),
    ),
    (
        "ImmunizationRecommendation.dateCriterion.code",
        "ImmunizationRecommendation",
        "/recommendation/0/dateCriterion/0/code",
        Answer::None,
    ),
    (
        "ImmunizationRecommendation.seriesDoses",
        "ImmunizationRecommendation",
        "/recommendation/0/seriesDosesPositiveInt",
        Answer::Value("total_doses"),
    ),
];

fn ig_dir() -> PathBuf {
    support::shared_dir().join("vectors/ddcc/ig-1.0.0")
}

fn read_json(name: &str) -> Value {
    let path = ig_dir().join(name);
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&bytes).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The resources of a document Bundle by type (each type occurs once in these documents).
fn resources(bundle: &Value) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for entry in bundle["entry"].as_array().expect("entries") {
        let resource = entry["resource"].clone();
        let rtype = resource["resourceType"]
            .as_str()
            .expect("resourceType")
            .to_owned();
        assert!(out.insert(rtype.clone(), resource).is_none(), "two {rtype}");
    }
    out
}

/// Every leaf element path of `v`. Narrative, ids and server meta are skipped; extensions are named by their
/// url's last segment (`extension:DDCCEventBrand.valueCoding.code`) so that the slices compare.
fn paths(v: &Value, prefix: &str, out: &mut BTreeSet<String>) {
    let join = |k: &str| {
        if prefix.is_empty() {
            k.to_owned()
        } else {
            format!("{prefix}.{k}")
        }
    };
    match v {
        Value::Object(map) => {
            for (k, child) in map {
                let ignored = matches!(k.as_str(), "id" | "resourceType" | "fullUrl")
                    || (prefix.is_empty() && k == "text")
                    || (prefix == "meta" && k != "profile")
                    || (prefix.is_empty() && k == "entry");
                if ignored || (k == "url" && prefix.contains("extension:")) {
                    continue;
                }
                if k == "extension" {
                    for ext in child.as_array().into_iter().flatten() {
                        let url = ext["url"].as_str().unwrap_or_default();
                        let name = url.rsplit('/').next().unwrap_or(url);
                        paths(ext, &join(&format!("extension:{name}")), out);
                    }
                } else {
                    paths(child, &join(k), out);
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|i| paths(i, prefix, out)),
        _ => {
            out.insert(prefix.to_owned());
        }
    }
}

fn path_set(v: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    paths(v, "", &mut out);
    out
}

/// The value of one field of [`FIELDS`] in a document.
fn field(bundle: &Value, rtype: &str, at: &str) -> Option<Value> {
    let resource = if rtype == "Bundle" {
        bundle.clone()
    } else {
        resources(bundle).remove(rtype)?
    };
    match at.strip_prefix("ext:") {
        Some(name) => resource["extension"]
            .as_array()?
            .iter()
            .find(|e| {
                e["url"]
                    .as_str()
                    .is_some_and(|u| u.ends_with(&format!("/{name}")))
            })?
            .as_object()?
            .iter()
            .find(|(k, _)| k.starts_with("value"))
            .map(|(_, v)| v.clone()),
        None => resource.pointer(at).cloned(),
    }
}

/// The value a field must have according to the QuestionnaireResponse.
fn from_qr(qr: &Value, answer: Answer) -> Option<Value> {
    let value = |link_id: &str| -> Option<Value> {
        let item = qr["item"]
            .as_array()?
            .iter()
            .find(|i| i["linkId"] == link_id)?;
        item["answer"][0]
            .as_object()?
            .iter()
            .find(|(k, _)| k.starts_with("value"))
            .map(|(_, v)| v.clone())
    };
    match answer {
        Answer::Value(l) => value(l),
        Answer::Code(l) => value(l).map(|c| c["code"].clone()),
        Answer::Codings(l) if l == "brand" || l == "ma_holder" => value(l),
        Answer::Codings(l) => value(l).map(|c| json!([c])),
        Answer::Concepts(l) => value(l).map(|c| json!([{ "coding": [c] }])),
        Answer::Hcid => value("hcid")?
            .as_str()
            .map(|h| json!(format!("urn:HCID:{h}"))),
        Answer::None => None,
    }
}

fn diverges(language: &str, label: &str) -> Option<Value> {
    EXAMPLE_DIVERGES
        .iter()
        .find(|(lang, l, _)| (*lang == "*" || *lang == language) && *l == label)
        .map(|(_, _, v)| serde_json::from_str(v).expect("documented value is JSON"))
}

#[test]
fn ig_examples_become_equivalent_documents() {
    for (language, qr_name, bundle_name) in LANGUAGES {
        let qr_json = read_json(&format!(
            "QuestionnaireResponse-DDCCVSQuestionnaireResponse{qr_name}.json"
        ));
        let example = read_json(&format!("Bundle-{bundle_name}.json"));
        let example_resources = resources(&example);

        let qr: QuestionnaireResponse = serde_json::from_value(qr_json.clone()).expect("QR model");
        let event = parse_questionnaire_response(&qr)
            .unwrap_or_else(|e| panic!("{language}: intake rejected the IG example: {e}"));
        // The QR carries only the issuer's identifier; its display name is configuration. Use the example's.
        let issuer_name = example_resources["Organization"]["name"]
            .as_str()
            .map(str::to_owned);
        let ctx = DocumentContext {
            issued_at: time::macros::datetime!(2021-06-03 18:28:17 UTC),
            issuer_name,
            qrs: Vec::new(),
        };
        let ours = serde_json::to_value(build_document(&event, &ctx)).expect("serialize");
        let our_resources = resources(&ours);

        // Same resource types; the IG examples carry no QR DocumentReference, and neither do we without QRs.
        assert_eq!(
            our_resources.keys().collect::<Vec<_>>(),
            example_resources.keys().collect::<Vec<_>>(),
            "{language}: resource types"
        );
        assert_eq!(
            ours["entry"][0]["resource"]["resourceType"], "Composition",
            "{language}: Composition first"
        );

        // Same element paths, up to the documented differences.
        assert_eq!(
            path_set(&ours),
            path_set(&example),
            "{language}: Bundle element paths"
        );
        for (rtype, example_resource) in &example_resources {
            let documented = |list: &[(&str, &str, &str)]| -> BTreeSet<String> {
                list.iter()
                    .filter(|(t, _, _)| t == rtype)
                    .map(|(_, p, _)| (*p).to_owned())
                    .collect()
            };
            let ours = path_set(&our_resources[rtype]);
            let theirs = path_set(example_resource);
            let extra: BTreeSet<_> = ours.difference(&theirs).cloned().collect();
            let missing: BTreeSet<_> = theirs.difference(&ours).cloned().collect();
            assert_eq!(
                extra,
                documented(EXTRA_PATHS),
                "{language}: {rtype} paths only we have"
            );
            assert_eq!(
                missing,
                documented(MISSING_PATHS),
                "{language}: {rtype} paths only the example has"
            );
        }

        // Same values, except where the example contradicts its own QuestionnaireResponse.
        for &(label, rtype, at, answer) in FIELDS {
            let our_value = field(&ours, rtype, at);
            let example_value = field(&example, rtype, at);
            let qr_value = from_qr(&qr_json, answer);
            assert!(our_value.is_some(), "{language}: {label} missing");
            if qr_value.is_some() {
                assert_eq!(
                    our_value, qr_value,
                    "{language}: {label} differs from the QR"
                );
            }
            match diverges(language, label) {
                Some(documented) => {
                    assert_eq!(
                        example_value.as_ref(),
                        Some(&documented),
                        "{language}: {label}: the example changed"
                    );
                    assert_ne!(
                        our_value, example_value,
                        "{language}: {label}: no longer diverges"
                    );
                }
                None if example_value.is_some() => {
                    assert_eq!(
                        our_value, example_value,
                        "{language}: {label} differs from the example"
                    )
                }
                // The example lacks the element; EXTRA_PATHS lists it and the QR check above applies.
                None => assert!(
                    qr_value.is_some(),
                    "{language}: {label} has nothing to compare with"
                ),
            }
        }
    }
}
