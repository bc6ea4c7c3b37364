//! Issue with the local signer, then verify with our verifier and with the independent checker
//! (shared/tools/hc1-verify/verify_hc1.py, issuer-side `--strict` rules, schema and EU value sets).
//!
//! The checker is required: without python3 or its dependencies this test fails and says how to
//! install them (CI installs them), so a green run always means an independent verification happened.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use ddcc_mediator::configuration::IssuanceConfig;
use ddcc_mediator::credential::{issue, verify, VerifyOptions};
use ddcc_mediator::domain::*;
use ddcc_mediator::signer::local::{DscSubject, LocalSigner};
use ddcc_mediator::signer::Signer;

/// The team's reference data (`../shared`, or `DDCC_SHARED_DIR`).
fn shared() -> PathBuf {
    support::shared_dir()
}

fn code(system: &str, c: &str) -> Code {
    Code {
        system: Some(system.into()),
        code: NonEmpty::parse(c).unwrap(),
        display: None,
    }
}

/// A Czech holder with diacritics (the DCC schema's own example name), ICD-11 codes as in the DDCC IG
/// examples, and an EMA organisation id as manufacturer.
fn event() -> VaccinationEvent {
    let icd11 = "http://id.who.int/icd11/mms";
    VaccinationEvent {
        holder: Holder {
            name: NonEmpty::parse("d'Červenková Panklová, Jiřina-Maria Alena").unwrap(),
            birth_date: FhirDate::parse("1979-04-14"),
            identifier: NonEmpty::parse("CZ-7904140000"),
            sex: Some(Sex::Female),
        },
        vaccination: Vaccination {
            vaccine: code(icd11, "XM0GQ8"),
            brand: code(icd11, "XM8NQ0"),
            producer: Producer::Manufacturer(code(
                "https://spor.ema.europa.eu/v1/organisations",
                "ORG-100030215",
            )),
            lot: NonEmpty::parse("FD1234").unwrap(),
            date: FhirDate::parse("2021-06-01").unwrap(),
            valid_from: FhirDate::parse("2021-06-15"),
            dose: PositiveInt::new(2).unwrap(),
            total_doses: PositiveInt::new(2),
            country: Country::from_alpha3("CZE").unwrap(),
            centre: NonEmpty::parse("Očkovací centrum Praha").unwrap(),
            health_worker: None,
            disease: Some(code(icd11, "RA01")),
            next_dose: None,
        },
        certificate: CertificateInfo {
            issuer: NonEmpty::parse("Ministry of Health of the Czech Republic").unwrap(),
            hcid: NonEmpty::parse("CZ2021060100042").unwrap(),
            valid_from: FhirDate::parse("2021-06-15"),
            valid_until: None,
        },
        version: Default::default(),
        language: None,
    }
}

/// Runs verify_hc1.py and returns its JSON report; panics with a clear message when it cannot run.
fn independent_check(hc1: &str, cert: &Path, extra: &[&str]) -> serde_json::Value {
    let tool = shared().join("tools/hc1-verify");
    let requirements = tool.join("requirements.txt");
    let deps = Command::new("python3")
        .args(["-c", "import cbor2, base45, cryptography, jsonschema"])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "python3 is required for the independent HC1 check ({e}); install Python 3 and \
                 `pip install -r {}`",
                requirements.display()
            )
        });
    assert!(
        deps.status.success(),
        "the independent HC1 checker's dependencies are missing: run `pip install -r {}`\n{}",
        requirements.display(),
        String::from_utf8_lossy(&deps.stderr)
    );
    let out = Command::new("python3")
        .arg(tool.join("verify_hc1.py"))
        .arg(hc1)
        .arg("--cert")
        .arg(cert)
        .args(["--strict", "--now"])
        .args(extra)
        .output()
        .expect("running verify_hc1.py");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "verify_hc1.py printed no JSON ({e}):\n{stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(
        out.status.success() && report["result"] == "VALID",
        "independent checker rejected our certificate:\n{report:#}"
    );
    // No issuer-side warnings either (e.g. a missing iss or a kid outside the protected header).
    assert!(report.get("warning").is_none(), "{report:#}");
    assert!(
        report["cwt_warnings"].as_array().is_none_or(Vec::is_empty),
        "{report:#}"
    );
    report
}

#[tokio::test]
async fn issued_certificates_verify_here_and_independently() {
    let dir = tempfile::tempdir().unwrap();
    let signer = LocalSigner::open_or_create(
        dir.path(),
        &DscSubject {
            country: "CZ".into(),
            common_name: "ddcc-mediator test DSC".into(),
        },
    )
    .unwrap();
    let identity = signer.current();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let config = IssuanceConfig::default();
    let issued = issue(&event(), &config, &signer, now).await.unwrap();
    let dcc = issued
        .dcc
        .as_ref()
        .expect("the EU DCC is issued for EU-mappable codes");

    // Our verifier.
    let options = VerifyOptions {
        trusted_dscs: vec![identity.dsc_der.clone()],
        at: now,
        revocations: None,
        checked: None,
    };
    let ours = verify(&issued.ddcc.hc1, &options);
    assert!(ours.valid, "{ours:?}");
    assert_eq!(ours.iss.as_deref(), Some("CZ"));
    assert_eq!(ours.alg, Some("ES256"));
    assert_eq!(ours.kid, Some(hex::encode(identity.kid)));
    let ddcc_json: serde_json::Value = serde_json::from_slice(&issued.ddcc.payload_json).unwrap();
    assert_eq!(ours.payloads.get("3"), Some(&ddcc_json));
    let ours_dcc = verify(&dcc.hc1, &options);
    assert!(ours_dcc.valid, "{ours_dcc:?}");
    let dcc_json = &ours_dcc.payloads["1"];
    assert_eq!(dcc_json["nam"]["fnt"], "DCERVENKOVA<PANKLOVA");
    assert_eq!(dcc_json["nam"]["gnt"], "JIRINA<MARIA<ALENA");
    assert_eq!(dcc_json["v"][0]["mp"], "EU/1/20/1528");
    assert_eq!(dcc_json["v"][0]["co"], "CZ");
    assert!(dcc_json["v"][0]["ci"]
        .as_str()
        .unwrap()
        .starts_with("URN:UVCI:01:CZ:CZ2021060100042#"));

    // The independent checker: issuer-side rules (tag, protected alg/kid, iat/exp within the DSC).
    let payload_file = dir.path().join("ddcc.json");
    std::fs::write(&payload_file, &issued.ddcc.payload_json).unwrap();
    let report = independent_check(
        &issued.ddcc.hc1,
        &signer.cert_path(),
        &[
            "--hcert-key",
            "3",
            "--expect-payload",
            payload_file.to_str().unwrap(),
        ],
    );
    assert_eq!(report["kid"], hex::encode(identity.kid));
    assert_eq!(report["alg"], "ES256");

    // The DCC, additionally against the EU DCC 1.3.3 schema and the EU value sets.
    let schema = shared().join("vectors/schema/eu-dcc-schema-1.3.3/DCC.combined-schema.json");
    let valuesets = shared().join("vectors/schema/eu-dcc-valuesets");
    independent_check(
        &dcc.hc1,
        &signer.cert_path(),
        &[
            "--schema",
            schema.to_str().unwrap(),
            "--valuesets",
            valuesets.to_str().unwrap(),
            "--keyusage",
        ],
    );
}
