//! Every resource this crate models, as found in the shared example files (top level, Bundle entries,
//! Parameters), parses and re-serializes to the same JSON value: nothing a sender wrote is lost.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use fhir_models::*;
use serde_json::{json, Value};

fn shared() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared")
}

fn example_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["vectors/ddcc/ig-1.0.0", "examples"] {
        let entries = std::fs::read_dir(shared().join(dir)).expect("shared example folder");
        for entry in entries {
            let path = entry.expect("dir entry").path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    assert!(files.len() > 40, "shared examples not found");
    files
}

/// R4 JSON never has empty arrays (http://hl7.org/fhir/R4/json.html), and the models skip them when
/// writing; the one test file that has some (`item: []` in testsubmit.json) is compared without them.
fn without_empty_arrays(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(_, v)| !matches!(v, Value::Array(a) if a.is_empty()))
                .map(|(k, v)| (k.clone(), without_empty_arrays(v)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_empty_arrays).collect()),
        other => other.clone(),
    }
}

fn through<T: Resource>(v: &Value) -> Result<Value, String> {
    let typed: T = serde_json::from_value(v.clone()).map_err(|e| e.to_string())?;
    serde_json::to_value(&typed).map_err(|e| e.to_string())
}

/// Round-trips `v` through its model; `None` when its resourceType is not modelled.
fn round_trip(v: &Value) -> Option<Result<Value, String>> {
    Some(match resource_type_of(v)? {
        AuditEvent::RESOURCE_TYPE => through::<AuditEvent>(v),
        Binary::RESOURCE_TYPE => through::<Binary>(v),
        Bundle::RESOURCE_TYPE => through::<Bundle>(v),
        Composition::RESOURCE_TYPE => through::<Composition>(v),
        DocumentReference::RESOURCE_TYPE => through::<DocumentReference>(v),
        Immunization::RESOURCE_TYPE => through::<Immunization>(v),
        ImmunizationRecommendation::RESOURCE_TYPE => through::<ImmunizationRecommendation>(v),
        OperationOutcome::RESOURCE_TYPE => through::<OperationOutcome>(v),
        Organization::RESOURCE_TYPE => through::<Organization>(v),
        Parameters::RESOURCE_TYPE => through::<Parameters>(v),
        Patient::RESOURCE_TYPE => through::<Patient>(v),
        Provenance::RESOURCE_TYPE => through::<Provenance>(v),
        QuestionnaireResponse::RESOURCE_TYPE => through::<QuestionnaireResponse>(v),
        _ => return None,
    })
}

/// Calls `f` on every JSON object that has a `resourceType`, at any depth.
fn each_resource(v: &Value, f: &mut dyn FnMut(&Value)) {
    match v {
        Value::Object(m) => {
            if m.contains_key("resourceType") {
                f(v);
            }
            m.values().for_each(|c| each_resource(c, f));
        }
        Value::Array(a) => a.iter().for_each(|c| each_resource(c, f)),
        _ => {}
    }
}

#[test]
fn every_modelled_example_resource_round_trips_losslessly() {
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut failures = Vec::new();
    for file in example_files() {
        let text = std::fs::read_to_string(&file).expect("read example");
        let doc: Value = serde_json::from_str(&text).expect("example is JSON");
        each_resource(&doc, &mut |resource| {
            let Some(result) = round_trip(resource) else {
                return;
            };
            let kind = resource_type_of(resource).unwrap_or_default().to_owned();
            match result {
                Ok(out) if without_empty_arrays(&out) == without_empty_arrays(resource) => {
                    *seen.entry(kind).or_default() += 1;
                }
                Ok(out) => failures.push(format!(
                    "{}: {kind} changed:\n  in:  {resource}\n  out: {out}",
                    file.display()
                )),
                Err(e) => failures.push(format!("{}: {kind} rejected: {e}", file.display())),
            }
        });
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // Every type the examples contain was exercised, nested ones included.
    for (kind, at_least) in [
        ("Bundle", 18),
        ("Composition", 9),
        ("DocumentReference", 2),
        ("Immunization", 10),
        ("ImmunizationRecommendation", 8),
        ("Organization", 6),
        ("Parameters", 9),
        ("Patient", 10),
        ("QuestionnaireResponse", 21),
    ] {
        let n = seen.get(kind).copied().unwrap_or_default();
        assert!(n >= at_least, "{kind}: only {n} round-tripped: {seen:?}");
    }
}

#[test]
fn resource_type_is_checked_and_written_once() {
    let patient = json!({"resourceType": "Patient", "id": "p", "birthDate": "1986-09-19"});
    let parsed: Patient = serde_json::from_value(patient.clone()).expect("patient");
    assert!(parsed.extra.is_empty(), "resourceType leaked into extra");
    assert_eq!(serde_json::to_value(&parsed).expect("ser"), patient);

    let err = serde_json::from_value::<Patient>(json!({"resourceType": "Bundle", "type": "batch"}))
        .expect_err("a Bundle is not a Patient");
    assert!(err.to_string().contains("expected \"Patient\""), "{err}");
    assert!(serde_json::from_value::<Patient>(json!({"id": "p"})).is_err());
}

#[test]
fn built_resources_serialize_as_fhir_json() {
    // Provenance and Binary do not occur in the examples: build them and read them back.
    let provenance = Provenance {
        target: vec![Reference::to("Bundle/1")],
        recorded: "2021-12-09T17:15:37Z".into(),
        agent: vec![ProvenanceAgent {
            who: Reference::to("Organization/pha"),
            ..Default::default()
        }],
        signature: vec![Signature {
            type_: vec![Coding::new(
                "urn:iso-astm:E1762-95:2013",
                "1.2.840.10065.1.12.1.5",
            )],
            when: "2021-12-09T17:15:37Z".into(),
            who: Reference::to("Organization/pha"),
            data: Some("AAAA".into()),
            ..Default::default()
        }],
        ..Default::default()
    };
    let value = serde_json::to_value(&provenance).expect("ser");
    assert_eq!(value["resourceType"], "Provenance");
    assert_eq!(
        value["signature"][0]["type"][0]["code"],
        "1.2.840.10065.1.12.1.5"
    );
    assert_eq!(
        serde_json::from_value::<Provenance>(value).expect("de"),
        provenance
    );

    let binary = Binary {
        content_type: "image/png".into(),
        data: Some("iVBORw0KGgo=".into()),
        ..Default::default()
    };
    let value = serde_json::to_value(&binary).expect("ser");
    assert_eq!(
        value,
        json!({"resourceType": "Binary", "contentType": "image/png", "data": "iVBORw0KGgo="})
    );

    let ext = Extension::code("http://example.org/country", "USA");
    assert_eq!(
        serde_json::to_value(&ext).expect("ser"),
        json!({"url": "http://example.org/country", "valueCode": "USA"})
    );
}

#[test]
fn audit_event_round_trips_losslessly() {
    // The shape of the R4 specification's example "example-rest" (a RESTful interaction), with elements the
    // model keeps in `extra` (purposeOfEvent codings, agent.media, entity.query).
    let event = json!({
        "resourceType": "AuditEvent", "id": "example-rest",
        "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-event-type", "code": "rest", "display": "Restful Operation"},
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "vread", "display": "vread"}],
        "action": "R", "recorded": "2013-06-20T23:42:24Z", "outcome": "0",
        "agent": [{
            "type": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/extra-security-role-type", "code": "humanuser"}]},
            "who": {"identifier": {"value": "95"}}, "altId": "601847123", "name": "Grahame Grieve", "requestor": true,
            "network": {"address": "127.0.0.1", "type": "2"},
            "media": {"code": "110030"}
        }],
        "source": {"site": "Cloud", "observer": {"display": "hl7connect.healthintersections.com.au"},
                   "type": [{"system": "http://terminology.hl7.org/CodeSystem/security-source-type", "code": "3"}]},
        "entity": [{"what": {"reference": "Patient/example/_history/1"},
                    "type": {"system": "http://terminology.hl7.org/CodeSystem/audit-entity-type", "code": "2"},
                    "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": "1"},
                    "lifecycle": {"code": "6"}}]
    });
    assert_eq!(through::<AuditEvent>(&event).expect("AuditEvent"), event);
}
