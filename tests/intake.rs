//! Intake against the real inputs in shared/: the IG 1.0.0 example responses, the WHO mediator's demo
//! responses and batch Bundles, its legacy and unsupported test files, a response with many faults at
//! once, and mutated copies of all of them (no input may panic).

mod support;

use std::collections::BTreeSet;
use std::path::PathBuf;

use ddcc_mediator::domain::{Producer, Sex, VaccinationEvent};
use ddcc_mediator::error::Error;
use ddcc_mediator::intake::{read_submission, Submission};
use serde_json::{json, Value};

/// A file of the team's reference data (`../shared`, or `DDCC_SHARED_DIR`).
fn shared(path: &str) -> PathBuf {
    support::shared_dir().join(path)
}

fn bytes(path: &str) -> Vec<u8> {
    std::fs::read(shared(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn json_file(path: &str) -> Value {
    serde_json::from_slice(&bytes(path)).expect("example is JSON")
}

fn single(path: &str) -> VaccinationEvent {
    match read_submission(&bytes(path)) {
        Ok(Submission::Single(Ok(event))) => event,
        other => panic!("{path}: expected one event, got {other:?}"),
    }
}

fn batch(path: &str) -> Vec<ddcc_mediator::Result<VaccinationEvent>> {
    match read_submission(&bytes(path)) {
        Ok(Submission::Batch(outcomes)) => outcomes,
        other => panic!("{path}: expected a batch, got {other:?}"),
    }
}

fn code(c: &ddcc_mediator::domain::Code) -> (Option<&str>, &str) {
    (c.system.as_deref(), c.code.as_str())
}

const ICD11: &str = "http://id.who.int/icd11/mms";
const IG_TEST_CS: &str = "http://smart.who.int/ddcc/CodeSystem/DDCCExampleTestCodeSystem";
const IG: &str = "vectors/ddcc/ig-1.0.0";

/// Everything the IG example "Aulus Agerius" response says, field by field.
fn assert_ig_example(e: &VaccinationEvent, test_code_system: &str) {
    assert_eq!(e.holder.name.as_str(), "Aulus Agerius");
    assert_eq!(
        e.holder.birth_date.map(|d| d.to_string()).as_deref(),
        Some("2003-03-03")
    );
    assert_eq!(
        e.holder.identifier.as_ref().map(|i| i.as_str()),
        Some("1234567890")
    );
    assert_eq!(e.holder.sex, Some(Sex::Male));
    let v = &e.vaccination;
    assert_eq!(code(&v.vaccine), (Some(ICD11), "XM0GQ8"));
    assert_eq!(code(&v.brand), (Some(ICD11), "XM3DT5"));
    let Producer::Both {
        manufacturer,
        ma_holder,
    } = &v.producer
    else {
        panic!(
            "both manufacturer and ma_holder are given: {:?}",
            v.producer
        );
    };
    assert_eq!(code(manufacturer), (Some(test_code_system), "TEST"));
    assert_eq!(code(ma_holder), (Some(test_code_system), "TEST"));
    assert_eq!(v.lot.as_str(), "ER8732");
    assert_eq!(v.date.to_string(), "2021-04-05");
    assert_eq!(
        v.valid_from.map(|d| d.to_string()).as_deref(),
        Some("2021-04-19")
    );
    assert_eq!((v.dose.get(), v.total_doses.map(|t| t.get())), (1, Some(2)));
    assert_eq!((v.country.alpha3(), v.country.alpha2()), ("USA", "US"));
    assert_eq!(v.centre.as_str(), "Vaccination Site");
    assert_eq!(
        v.health_worker.as_ref().map(|h| h.as_str()),
        Some("lAH8TnzqAInqwkslHzOlSA")
    );
    assert_eq!(v.disease.as_ref().map(code), Some((Some(ICD11), "RA01")));
    assert_eq!(
        v.next_dose.map(|d| d.to_string()).as_deref(),
        Some("2021-04-28")
    );
    let c = &e.certificate;
    assert_eq!(c.issuer.as_str(), "dPD2PfwzBQyphcjeUiAdRP");
    assert_eq!(c.hcid.as_str(), "bMlJkAt0V92RYhhG3fNt");
    assert_eq!(
        c.valid_from.map(|d| d.to_string()).as_deref(),
        Some("2021-04-05")
    );
    assert_eq!(
        c.valid_until.map(|d| d.to_string()).as_deref(),
        Some("2022-04-05")
    );
}

#[test]
fn ig_example_response_in_both_canonicals() {
    assert_ig_example(
        &single(&format!(
            "{IG}/QuestionnaireResponse-DDCCVSQuestionnaireResponseExample.json"
        )),
        IG_TEST_CS,
    );
    // The same example rendered from the IG's FSH with the older (mediator) canonical.
    assert_ig_example(
        &single("examples/ig-DDCC-VS-QuestionnaireResponse-Example.fsh-rendered.json"),
        "http://worldhealthorganization.github.io/ddcc/CodeSystem/DDCC-Example-Test-CodeSystem",
    );
}

#[test]
fn ig_translated_responses_keep_their_scripts() {
    // (language, name, identifier, vaccine, brand, country, centre, hcid), read from the IG files.
    let cases = [
        (
            "Arabic",
            "أولوس أجيريوس",
            "12345678905",
            "XM1NL1",
            "XM1G90",
            "SAU",
            "موقع التطعيم",
            "bMlJkAt0V92RYhhG3fNt5",
        ),
        (
            "Chinese",
            "奥卢斯·阿杰里乌斯",
            "12345678901",
            "XM5JC5",
            "XM6SZ8",
            "CHN",
            "疫苗接种现场",
            "bMlJkAt0V92RYhhG3fNt1",
        ),
        (
            "French",
            "Aulus Agerius",
            "12345678902",
            "XM0GQ8",
            "XM8NQ0",
            "FRA",
            "Site de vaccination",
            "bMlJkAt0V92RYhhG3fNt2",
        ),
        (
            "Russian",
            "Авл Агерий",
            "12345678903",
            "XM9QW8",
            "XM5QM6",
            "RUS",
            "Сайт вакцинации",
            "bMlJkAt0V92RYhhG3fNt3",
        ),
        (
            "Spanish",
            "Aulo Agerio",
            "12345678904",
            "XM9QW8",
            "XM4YL8",
            "ESP",
            "Sitio de vacunación",
            "bMlJkAt0V92RYhhG3fNt4",
        ),
    ];
    for (language, name, identifier, vaccine, brand, country, centre, hcid) in cases {
        let e = single(&format!(
            "{IG}/QuestionnaireResponse-DDCCVSQuestionnaireResponse{language}.json"
        ));
        assert_eq!(e.holder.name.as_str(), name, "{language}");
        assert_eq!(
            e.holder.identifier.as_ref().map(|i| i.as_str()),
            Some(identifier)
        );
        assert_eq!(code(&e.vaccination.vaccine), (Some(ICD11), vaccine));
        assert_eq!(code(&e.vaccination.brand), (Some(ICD11), brand));
        assert_eq!(e.vaccination.country.alpha3(), country);
        assert_eq!(e.vaccination.centre.as_str(), centre);
        assert_eq!(e.certificate.hcid.as_str(), hcid);
        assert_eq!(e.vaccination.date.to_string(), "2021-04-05");
    }
}

#[test]
fn ig_submit_health_event_bundles_match_their_responses() {
    for language in ["1", "Arabic", "Chinese", "French", "Russian", "Spanish"] {
        let outcomes = batch(&format!(
            "{IG}/Bundle-DDCCTXSHEbundleexample{language}.json"
        ));
        let [Ok(event)] = outcomes.as_slice() else {
            panic!("{language}: {outcomes:?}");
        };
        let response = if language == "1" { "Example" } else { language };
        let direct = single(&format!(
            "{IG}/QuestionnaireResponse-DDCCVSQuestionnaireResponse{response}.json"
        ));
        assert_eq!(event, &direct, "{language}");
    }
}

#[test]
fn who_mediator_demo_responses_and_bundles() {
    let first = single("examples/qr-demo-1.QuestionnaireResponse.json");
    assert_eq!(first.holder.name.as_str(), "Eddie Murphy");
    assert_eq!(
        first.holder.birth_date.map(|d| d.to_string()).as_deref(),
        Some("1986-09-19")
    );
    assert_eq!(
        code(&first.vaccination.vaccine),
        (Some("http://snomed.info/sct"), "1119349007")
    );
    assert_eq!(first.vaccination.lot.as_str(), "PT123F");
    assert_eq!(first.vaccination.date.to_string(), "2021-07-08");
    assert_eq!(first.vaccination.dose.get(), 1);
    assert_eq!(
        first
            .vaccination
            .next_dose
            .map(|d| d.to_string())
            .as_deref(),
        Some("2021-07-29")
    );
    assert_eq!(
        first.vaccination.health_worker.as_ref().map(|h| h.as_str()),
        Some("http://www.acme.org/practitioners/23")
    );
    assert_eq!(first.certificate.issuer.as_str(), "wA69g8VD512TfTTdkTNSsG");
    assert_eq!(first.certificate.hcid.as_str(), "111000111");

    let second = single("examples/qr-demo-2.QuestionnaireResponse.json");
    assert_eq!(second.vaccination.lot.as_str(), "PT123G");
    assert_eq!(second.vaccination.date.to_string(), "2021-07-29");
    assert_eq!(
        (
            second.vaccination.dose.get(),
            second.vaccination.total_doses.map(|t| t.get())
        ),
        (2, Some(2))
    );
    assert_eq!(second.vaccination.next_dose, None, "demo 2 has no due_date");
    assert_eq!(
        second
            .certificate
            .valid_until
            .map(|d| d.to_string())
            .as_deref(),
        Some("2022-03-29")
    );

    // The Demo Bundles wrap the same responses as batch → Parameters → QuestionnaireResponse.
    for (path, expected) in [
        ("examples/mediator-tests-Demo-Bundle-1.json", &first),
        ("examples/mediator-tests-Demo-Bundle-2.json", &second),
        ("vectors/ddcc/mediator/Demo-Bundle-1.json", &first),
    ] {
        let outcomes = batch(path);
        let [Ok(event)] = outcomes.as_slice() else {
            panic!("{path}: {outcomes:?}");
        };
        assert_eq!(event, expected, "{path}");
    }
}

#[test]
fn unsupported_batch_requests_are_per_entry() {
    // Two entries POST to "$generateHealthCertificate", one to "QuestionnaireResponse": the WHO mediator
    // answers each with a 404 entry.
    let outcomes = batch("examples/mediator-tests-testsubmit.json");
    assert_eq!(outcomes.len(), 3);
    for (index, outcome) in outcomes.iter().enumerate() {
        match outcome {
            Err(e @ Error::NotSupported(message)) => {
                assert!(
                    message.starts_with(&format!("Bundle.entry[{index}].request")),
                    "{message}"
                );
                assert!(
                    message.contains("QuestionnaireResponse/$generateHealthCertificate"),
                    "{message}"
                );
                assert!(e.is_caller_fault());
            }
            other => panic!("entry {index}: {other:?}"),
        }
    }
}

#[test]
fn legacy_svc_parameters_are_rejected_by_questionnaire() {
    let Ok(Submission::Single(Err(Error::Invalid(issues)))) = read_submission(&bytes(
        "examples/mediator-tests-Parameters-SVC-TX-SHE-Parameters-1.json",
    )) else {
        panic!("SVC Parameters must be rejected");
    };
    assert_eq!(issues.len(), 1, "{issues:#?}");
    assert_eq!(issues[0].code, "not-supported");
    assert_eq!(
        issues[0].expression.as_deref(),
        Some("Parameters.parameter.where(name='response').resource.questionnaire")
    );
    assert!(
        issues[0].message.contains("SVC-Questionnaire"),
        "{}",
        issues[0].message
    );
}

#[test]
fn bundles_that_are_not_batches_are_rejected() {
    for path in [
        "examples/mediator-tests-existingDDCCDoc.json",
        "examples/mediator-tests-submitResourcesBundle.json",
    ] {
        match read_submission(&bytes(path)) {
            Err(Error::Invalid(issues)) => {
                assert_eq!(
                    issues[0].expression.as_deref(),
                    Some("Bundle.type"),
                    "{path}"
                );
            }
            other => panic!("{path}: {other:?}"),
        }
    }
}

/// The IG example with thirteen faults, each a different rule; all must be reported, in one error.
#[test]
fn a_response_with_many_faults_reports_each_one() {
    let mut qr = json_file(&format!(
        "{IG}/QuestionnaireResponse-DDCCVSQuestionnaireResponseExample.json"
    ));
    let items = qr["item"].as_array_mut().expect("items");
    let set = |items: &mut Vec<Value>, link_id: &str, answer: Value| {
        if let Some(item) = items.iter_mut().find(|i| i["linkId"] == link_id) {
            item["answer"] = answer;
        }
    };
    set(
        items,
        "name",
        json!([{"valueString": "Aulus\u{0007}Agerius"}]),
    );
    set(items, "birthDate", json!([{"valueDate": "2003-02-30"}]));
    set(
        items,
        "sex",
        json!([{"valueCoding": {"system": "http://hl7.org/fhir/administrative-gender", "code": "M"}}]),
    );
    set(items, "date", json!([{"valueDate": "2021-04"}]));
    set(items, "dose", json!([{"valueInteger": 0}]));
    set(items, "total_doses", json!([{"valueString": "2"}]));
    set(
        items,
        "country",
        json!([{"valueCoding": {"system": "urn:iso:std:iso:3166", "code": "US"}}]),
    );
    set(
        items,
        "hcid",
        json!([{"valueString": "a"}, {"valueString": "b"}]),
    );
    set(items, "valid_from", json!([{"valueDate": "2023-01-01"}]));
    items.retain(|i| {
        !["manufacturer", "ma_holder", "lot"]
            .iter()
            .any(|l| i["linkId"] == *l)
    });
    let centre = items
        .iter()
        .find(|i| i["linkId"] == "centre")
        .cloned()
        .expect("centre");
    items.push(centre);
    items.push(json!({"linkId": "version", "answer": [{"valueString": "RC-2.0"}]}));
    let unknown_index = items.len() - 1;

    let Ok(Submission::Single(Err(Error::Invalid(issues)))) =
        read_submission(qr.to_string().as_bytes())
    else {
        panic!("the broken response must be invalid");
    };
    let item = |l: &str| format!("QuestionnaireResponse.item.where(linkId='{l}')");
    let value = |l: &str| format!("{}.answer[0].value", item(l));
    let expected: BTreeSet<(&str, String)> = [
        ("value", value("name")),
        ("value", value("birthDate")),
        ("code-invalid", value("sex")),
        ("value", value("date")),
        ("value", value("dose")),
        ("value", value("total_doses")),
        ("code-invalid", value("country")),
        ("structure", format!("{}.answer", item("hcid"))),
        ("duplicate", item("centre")),
        (
            "not-supported",
            format!("QuestionnaireResponse.item[{unknown_index}]"),
        ),
        ("required", item("lot")),
        (
            "required",
            "QuestionnaireResponse.item.where(linkId='manufacturer' or linkId='ma_holder')".into(),
        ),
        (
            "value",
            "QuestionnaireResponse.item.where(linkId='valid_from' or linkId='valid_until')".into(),
        ),
    ]
    .into_iter()
    .collect();
    let found: BTreeSet<(&str, String)> = issues
        .iter()
        .map(|i| (i.code, i.expression.clone().unwrap_or_default()))
        .collect();
    assert_eq!(found, expected);
    assert_eq!(
        issues.len(),
        expected.len(),
        "one issue per fault: {issues:#?}"
    );
    assert!(issues.iter().all(|i| !i.message.is_empty()));

    // The OperationOutcome a caller receives lists them all.
    let outcome = Error::Invalid(issues).to_operation_outcome();
    assert_eq!(outcome.issue.len(), expected.len());
}

/// Small deterministic generator (no test may depend on chance).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as usize
    }
}

/// Every JSON node replaced in turn by values of other types and shapes.
fn structural_mutations(doc: &Value) -> Vec<Value> {
    fn paths(v: &Value, here: &mut Vec<String>, out: &mut Vec<String>) {
        out.push(format!("/{}", here.join("/")));
        match v {
            Value::Object(m) => m.iter().for_each(|(k, c)| {
                here.push(k.replace('~', "~0").replace('/', "~1"));
                paths(c, here, out);
                here.pop();
            }),
            Value::Array(a) => a.iter().enumerate().for_each(|(i, c)| {
                here.push(i.to_string());
                paths(c, here, out);
                here.pop();
            }),
            _ => {}
        }
    }
    let mut all = Vec::new();
    paths(doc, &mut Vec::new(), &mut all);
    let replacements = [
        Value::Null,
        json!(0),
        json!(-1),
        json!(1.5),
        json!(u64::MAX),
        json!(""),
        json!("\u{0000}\u{202E}"),
        json!("2021-02-30"),
        json!([]),
        json!([{}]),
        json!({}),
        json!({"valueInteger": 1, "valueString": "x"}),
        json!("x".repeat(5_000)),
    ];
    let mut out = Vec::new();
    for path in all.iter().filter(|p| p.as_str() != "/") {
        for r in &replacements {
            let mut copy = doc.clone();
            if let Some(node) = copy.pointer_mut(path.trim_end_matches('/')) {
                *node = r.clone();
                out.push(copy);
            }
        }
    }
    out
}

#[test]
fn no_input_panics() {
    let files = [
        "examples/qr-demo-1.QuestionnaireResponse.json",
        "examples/mediator-tests-Demo-Bundle-1.json",
        "examples/mediator-tests-Parameters-SVC-TX-SHE-Parameters-1.json",
        "examples/mediator-tests-testsubmit.json",
        "examples/mediator-tests-existingDDCCDoc.json",
        "vectors/ddcc/ig-1.0.0/QuestionnaireResponse-DDCCVSQuestionnaireResponseArabic.json",
        "vectors/ddcc/ig-1.0.0/Bundle-DDCCTXSHEbundleexampleChinese.json",
    ];
    let mut rng = Lcg(0x00dd_cc00);
    let mut inputs = 0usize;
    let mut check = |input: &[u8]| {
        inputs += 1;
        // Any outcome is fine; reaching here without a panic is the property.
        let _ = read_submission(input);
    };
    for path in files {
        let original = bytes(path);
        // Truncations.
        let step = (original.len() / 300).max(1);
        for cut in (0..original.len()).step_by(step) {
            check(&original[..cut]);
        }
        // Byte mutations: overwrite, insert, delete.
        for _ in 0..300 {
            let mut m = original.clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = rng.next() % m.len().max(1);
                const BYTES: &[u8] = b"{}[]\",:0-9aeE\\u \x00\xff";
                let byte = BYTES[rng.next() % BYTES.len()];
                match rng.next() % 3 {
                    0 if at < m.len() => m[at] = byte,
                    1 => m.insert(at.min(m.len()), byte),
                    _ if at < m.len() => {
                        m.remove(at);
                    }
                    _ => {}
                }
            }
            check(&m);
        }
        // Structural mutations of the valid JSON (the stored document is large and not an input).
        if !path.contains("existingDDCCDoc") {
            for doc in structural_mutations(&json_file(path)) {
                check(doc.to_string().as_bytes());
            }
        }
    }
    // Deep nesting stops at the JSON parser's recursion limit, not the stack.
    let deep = format!(
        "{}{}",
        "{\"resourceType\":\"QuestionnaireResponse\",\"item\":[".repeat(200),
        "]}".repeat(200)
    );
    check(deep.as_bytes());
    assert!(inputs > 10_000, "only {inputs} inputs tried");
}
