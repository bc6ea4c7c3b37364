//! IG conformance, judged by HAPI's own validator: every document Bundle the service issues validates
//! against the WHO DDCC IG 1.0.0 (`DDCCVSDocument`, and each entry against its DDCC profile) with **0
//! errors**. The validator is `tests/ig-validator` (HAPI FHIR's `FhirInstanceValidator` loaded with the IG
//! package from `../shared` and R4 core); the IG's own example documents are the control.
//!
//! What cannot be checked here, and why that hides no structural error (tests/ig-validator/README.md):
//! terminology servers are unreachable, so codes of external code systems (ICD-11, SNOMED CT, LOINC, …)
//! are not checked against those systems; and the IG's dependency packages (hl7.terminology.r4,
//! hl7.fhir.uv.extensions.r4, hl7.fhir.uv.ips, hl7.fhir.uv.ipa, hl7.fhir.uv.sdc, ihe.iti.mhd) are not on
//! any registry this machine reaches: a profile from them is replaced by one that constrains nothing
//! beyond its base type. Cardinality, types, slicing, invariants and every DDCC profile's own rules are
//! checked in full; each skipped check is listed in the validator's report and printed by this test.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

fn ig_dir() -> PathBuf {
    support::shared_dir().join("vectors/ddcc/ig-1.0.0")
}

/// `ddcc-mediator issue <input> --out <out>` with a development key in `keys`.
fn issue(input: &Path, out: &Path, keys: &Path) {
    let result = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .arg("issue")
        .arg(input)
        .arg("--out")
        .arg(out)
        .arg("--key-dir")
        .arg(keys)
        .output()
        .expect("the CLI runs");
    assert!(
        result.status.success(),
        "issue {} failed: {}",
        input.display(),
        String::from_utf8_lossy(&result.stderr)
    );
}

/// Every `document-bundle.json` below `dir`.
fn documents_in(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            documents_in(&path, out);
        } else if path
            .file_name()
            .is_some_and(|n| n == "document-bundle.json")
        {
            out.push(path);
        }
    }
}

/// Runs the validator once over `files`; its JSON report.
fn validate(files: &[PathBuf]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ig-validator/run.sh");
    let package = ig_dir().join("who.ddcc-1.0.0-package.tgz");
    let out = Command::new(&script)
        .arg("--package")
        .arg(&package)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "the validator failed (run scripts/install-test-deps):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "the validator printed no report ({e}):\n{}",
            String::from_utf8_lossy(&out.stdout)
        )
    })
}

/// `file: location: message` of every error in the report.
fn errors(report: &Value) -> Vec<String> {
    let mut found = Vec::new();
    for file in report["files"].as_array().expect("files") {
        for issue in file["issues"].as_array().into_iter().flatten() {
            if issue["severity"] == "error" || issue["severity"] == "fatal" {
                found.push(format!(
                    "{}: {} {}: {}",
                    file["file"].as_str().unwrap_or("?"),
                    issue["resource"].as_str().unwrap_or(""),
                    issue["location"].as_str().unwrap_or(""),
                    issue["message"].as_str().unwrap_or("")
                ));
            }
        }
    }
    found
}

#[test]
fn every_issued_document_conforms_to_the_ddcc_ig() {
    let work = tempfile::tempdir().unwrap();
    let keys = work.path().join("keys");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The example event, a batch, and the IG's six example QuestionnaireResponses (six languages).
    let mut inputs = vec![
        root.join("examples/vaccination-event.json"),
        root.join("examples/batch.json"),
    ];
    for language in [
        "Example", "Arabic", "Chinese", "French", "Russian", "Spanish",
    ] {
        inputs.push(ig_dir().join(format!(
            "QuestionnaireResponse-DDCCVSQuestionnaireResponse{language}.json"
        )));
    }
    for (i, input) in inputs.iter().enumerate() {
        issue(input, &work.path().join(format!("out-{i}")), &keys);
    }
    let mut ours = Vec::new();
    documents_in(work.path(), &mut ours);
    ours.sort();
    assert!(ours.len() > inputs.len(), "a document per event: {ours:?}");

    // The control: the IG's own example documents.
    let controls: Vec<PathBuf> = ["English", "Arabic", "Chinese", "French", "Spanish"]
        .iter()
        .map(|l| ig_dir().join(format!("Bundle-Example{l}.json")))
        .chain([ig_dir().join("Bundle-Example-Russian.json")])
        .collect();

    // A negative control: our first document with a structural fault must not pass.
    let mut broken: Value = serde_json::from_slice(&std::fs::read(&ours[0]).unwrap()).unwrap();
    broken["entry"][0]["resource"]
        .as_object_mut()
        .unwrap()
        .remove("status"); // Composition.status is 1..1
    let broken_path = work.path().join("broken-document.json");
    std::fs::write(&broken_path, serde_json::to_vec(&broken).unwrap()).unwrap();

    let mut files = ours.clone();
    files.extend(controls.iter().cloned());
    files.push(broken_path.clone());
    let report = validate(&files);
    let checked: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["file"].as_str())
        .collect();
    assert_eq!(checked.len(), files.len(), "every file validated");
    println!(
        "validated {} issued documents and {} IG examples; checks that could not run: {}",
        ours.len(),
        controls.len(),
        report["skippedChecks"]
    );
    let mut errors = errors(&report);
    let broken_name = broken_path.display().to_string();
    let (caught, errors_elsewhere): (Vec<String>, Vec<String>) =
        errors.drain(..).partition(|e| e.starts_with(&broken_name));
    assert!(
        caught
            .iter()
            .any(|e| e.contains("Composition.status") || e.contains("status")),
        "the broken control is caught: {caught:?}"
    );
    let errors = errors_elsewhere;
    assert!(
        errors.is_empty(),
        "{} error(s):\n{}",
        errors.len(),
        errors.join("\n")
    );
}
