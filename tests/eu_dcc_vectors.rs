//! Our verifier against the EU dgc-testdata vectors (shared/vectors/dcc/{positive,negative,common}) and
//! the WHO reference mediator's example QRs.
//!
//! Each vector is run with its own DSC (`TESTCTX.CERTIFICATE`) trusted and its `VALIDATIONCLOCK` as the
//! time; every `EXPECTED*` flag we implement must agree with the stage at which our report stops.
//! `known_mismatch/` is left out on purpose: it calibrates the independent checker, not us.

mod support;

use std::path::PathBuf;

use base64::Engine;
use ddcc_mediator::credential::verify::{cbor_to_json, Stage, VerifyReport};
use ddcc_mediator::credential::{decode_qr_png, verify, VerifyOptions};
use ddcc_mediator::signer::certificate::Dsc;
use serde_json::Value;

/// The team's reference data (`../shared`, or `DDCC_SHARED_DIR`).
fn shared() -> PathBuf {
    support::shared_dir()
}

fn vector_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["positive", "negative", "common"] {
        let dir = shared().join("vectors/dcc").join(dir);
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// dgc-testdata clocks come as `…Z`, `…+02:00`, `…+0200`, with or without fractions, or with no offset
/// at all (read as UTC).
fn parse_clock(s: &str) -> i64 {
    let fmt = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let base = time::PrimitiveDateTime::parse(&s[..19], &fmt)
        .unwrap_or_else(|e| panic!("clock {s}: {e}"))
        .assume_utc()
        .unix_timestamp();
    let rest = s[19..].trim_start_matches(|c: char| c == '.' || c.is_ascii_digit());
    let offset = match rest {
        "" | "Z" => 0,
        _ => {
            let sign = if rest.starts_with('-') { -1 } else { 1 };
            let digits: String = rest[1..].chars().filter(char::is_ascii_digit).collect();
            let hours: i64 = digits[..2].parse().unwrap();
            let minutes: i64 = digits.get(2..4).map_or(0, |m| m.parse().unwrap());
            sign * (hours * 3600 + minutes * 60)
        }
    };
    base - offset
}

fn stage(report: &VerifyReport) -> Option<Stage> {
    report.error.as_ref().map(|f| f.stage)
}

/// Whether the report got past `stage` (no failure at it or before it).
fn passed(report: &VerifyReport, stage_checked: Stage) -> bool {
    stage(report).is_none_or(|s| s > stage_checked)
}

/// EXPECTEDDECODE: the COSE decodes, and its DCC equals the vector's `CBOR` field (the DCC itself or
/// the whole claims map), compared as JSON.
fn decode_ok(report: &VerifyReport, v: &Value) -> bool {
    if !passed(report, Stage::Cose) {
        return false;
    }
    let Some(cbor_hex) = v["CBOR"].as_str() else {
        return true;
    };
    let Some(reference) = hex::decode(cbor_hex)
        .ok()
        .and_then(|b| ciborium::from_reader::<ciborium::Value, _>(b.as_slice()).ok())
    else {
        return false;
    };
    let reference = cbor_to_json(&reference);
    let ours = report.payloads.get("1");
    ours == Some(&reference) || ours == reference.get("-260").and_then(|h| h.get("1"))
}

#[test]
fn agrees_with_every_eu_dcc_vector() {
    let files = vector_files();
    assert!(files.len() >= 60, "only {} vectors found", files.len());
    let mut disagreements = Vec::new();
    let mut checks = 0;
    for file in &files {
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let ctx = &v["TESTCTX"];
        let dsc = base64::engine::general_purpose::STANDARD
            .decode(ctx["CERTIFICATE"].as_str().unwrap_or_default())
            .unwrap_or_default();
        let at = parse_clock(ctx["VALIDATIONCLOCK"].as_str().unwrap());
        let hc1 = v["PREFIX"].as_str().unwrap_or_default();
        let report = verify(
            hc1,
            &VerifyOptions {
                trusted_dscs: vec![dsc],
                at,
                revocations: None,
                checked: None,
            },
        );
        let expected = &v["EXPECTEDRESULTS"];
        let flag = |k: &str| expected.get(k).and_then(Value::as_bool);

        let expiry_ok = match stage(&report) {
            None => true,
            Some(Stage::Expiry) => false,
            // The signature failed before the clock was checked: judge the clock on the claims.
            _ => report.iat.is_none_or(|i| i <= at) && report.exp.is_none_or(|e| at <= e),
        };
        let ours = [
            ("EXPECTEDUNPREFIX", passed(&report, Stage::Prefix)),
            ("EXPECTEDB45DECODE", passed(&report, Stage::Base45)),
            ("EXPECTEDCOMPRESSION", passed(&report, Stage::Zlib)),
            ("EXPECTEDDECODE", decode_ok(&report, &v)),
            ("EXPECTEDVERIFY", passed(&report, Stage::Signature)),
            ("EXPECTEDEXPIRATIONCHECK", expiry_ok),
        ];
        for (key, got) in ours {
            if let Some(want) = flag(key) {
                checks += 1;
                if want != got {
                    disagreements.push(format!(
                        "{name}: {key} expected {want}, got {got} ({:?})",
                        report.error
                    ));
                }
            }
        }

        if let Some(want) = flag("EXPECTEDPICTUREDECODE") {
            if let Some(png) = v["2DCODE"].as_str().filter(|s| !s.is_empty()) {
                checks += 1;
                let png = base64::engine::general_purpose::STANDARD
                    .decode(png)
                    .unwrap();
                let got = decode_qr_png(&png).ok();
                if want != (got.as_deref() == Some(hc1)) {
                    disagreements.push(format!(
                        "{name}: EXPECTEDPICTUREDECODE expected {want}, decoded {got:?}"
                    ));
                }
            }
        }
    }
    assert!(
        disagreements.is_empty(),
        "{} of {checks} checks disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
    eprintln!("{} vectors, {checks} checks agree", files.len());
}

#[test]
fn positive_vectors_are_valid_and_expose_the_dcc() {
    for file in vector_files()
        .iter()
        .filter(|f| f.parent().unwrap().ends_with("positive"))
    {
        let v: Value = serde_json::from_slice(&std::fs::read(file).unwrap()).unwrap();
        let ctx = &v["TESTCTX"];
        let dsc = base64::engine::general_purpose::STANDARD
            .decode(ctx["CERTIFICATE"].as_str().unwrap())
            .unwrap();
        let report = verify(
            v["PREFIX"].as_str().unwrap(),
            &VerifyOptions {
                trusted_dscs: vec![dsc.clone()],
                at: parse_clock(ctx["VALIDATIONCLOCK"].as_str().unwrap()),
                revocations: None,
                checked: None,
            },
        );
        let name = file.display();
        assert!(
            passed(&report, Stage::Signature),
            "{name}: {:?}",
            report.error
        );
        let dsc = Dsc::from_der(&dsc).unwrap();
        assert_eq!(report.alg, Some(dsc.alg().name()), "{name}");
        assert_eq!(report.kid, Some(hex::encode(dsc.kid())), "{name}");
        // The DCC under hcert sub-claim 1 carries the schema version and the holder's date of birth.
        let dcc = &report.payloads["1"];
        assert!(dcc["ver"].is_string(), "{name}");
        assert_eq!(dcc["dob"], v["JSON"]["dob"], "{name}");
    }
}

#[test]
fn who_mediator_examples_verify_as_ps256() {
    let examples = shared().join("examples");
    let pem = std::fs::read(examples.join("hc1-test-DSC-certificate-public.pem")).unwrap();
    let dsc = Dsc::from_pem_or_der(&pem).unwrap();
    let decoded: Value = serde_json::from_slice(
        &std::fs::read(examples.join("hc1-decoded-from-existingDDCCDoc.json")).unwrap(),
    )
    .unwrap();
    for which in ["who", "dcc"] {
        let hc1 =
            std::fs::read_to_string(examples.join(format!("hc1-{which}-from-existingDDCCDoc.txt")))
                .unwrap();
        // Issued 2021-12-09; the DSC is valid 2021-12-02..2026-10-17; check a week after issue.
        let iat = decoded[which]["payload_decoded"]["6"].as_i64().unwrap();
        let options = VerifyOptions {
            trusted_dscs: vec![dsc.der().to_vec()],
            at: iat + 7 * 86400,
            revocations: None,
            checked: None,
        };
        let report = verify(&hc1, &options);
        assert!(report.valid, "{which}: {:?}", report.error);
        assert_eq!(report.alg, Some("PS256"));
        assert_eq!(report.kid.as_deref(), Some("2c83a893cb311945"));
        assert_eq!(report.iat, Some(iat));
        assert_eq!(report.exp, None, "the reference mediator sets no exp");
        assert_eq!(
            report.payloads["1"],
            decoded[which]["payload_decoded"]["-260"]["1"]
        );

        // Before issue it is not valid yet; with another DSC it is not trusted.
        let early = verify(
            &hc1,
            &VerifyOptions {
                at: iat - 1,
                ..options.clone()
            },
        );
        assert_eq!(stage(&early), Some(Stage::Expiry));
        // The JSON report the CLI prints.
        let json = serde_json::to_value(&early).unwrap();
        assert_eq!(json["valid"], false);
        assert_eq!(json["error"]["stage"], "expiry");
        assert_eq!(json["kid"], "2c83a893cb311945");
        assert!(serde_json::to_value(&report)
            .unwrap()
            .get("error")
            .is_none());
        let untrusted = verify(
            &hc1,
            &VerifyOptions {
                trusted_dscs: vec![],
                ..options
            },
        );
        assert_eq!(stage(&untrusted), Some(Stage::Kid));
    }
}

#[test]
fn a_tampered_signature_fails_at_the_signature_stage() {
    let examples = shared().join("examples");
    let pem = std::fs::read(examples.join("hc1-test-DSC-certificate-public.pem")).unwrap();
    let dsc = Dsc::from_pem_or_der(&pem).unwrap();
    let hc1 = std::fs::read_to_string(examples.join("hc1-who-from-existingDDCCDoc.txt")).unwrap();
    let mut cose = ddcc_mediator::credential::hc1::decode(hc1.trim()).unwrap();
    let last = cose.len() - 1;
    cose[last] ^= 1;
    let tampered = format!("HC1:{}", base45::encode(miniz(&cose)));
    let report = verify(
        &tampered,
        &VerifyOptions {
            trusted_dscs: vec![dsc.der().to_vec()],
            at: 1_640_000_000,
            revocations: None,
            checked: None,
        },
    );
    assert_eq!(stage(&report), Some(Stage::Signature), "{report:?}");
}

fn miniz(bytes: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(bytes).unwrap();
    z.finish().unwrap()
}

#[test]
fn never_panics_on_corrupted_certificates() {
    // Every single-byte corruption of a real COSE_Sign1 is rejected (or, for bytes outside the signed
    // data, still verified) without a panic.
    let examples = shared().join("examples");
    let pem = std::fs::read(examples.join("hc1-test-DSC-certificate-public.pem")).unwrap();
    let dsc = Dsc::from_pem_or_der(&pem).unwrap();
    let hc1 = std::fs::read_to_string(examples.join("hc1-dcc-from-existingDDCCDoc.txt")).unwrap();
    let cose = ddcc_mediator::credential::hc1::decode(hc1.trim()).unwrap();
    let options = VerifyOptions {
        trusted_dscs: vec![dsc.der().to_vec()],
        at: 1_640_000_000,
        revocations: None,
        checked: None,
    };
    let mut rejected = 0;
    for i in 0..cose.len() {
        for flip in [0x01u8, 0x80, 0xff] {
            let mut bad = cose.clone();
            bad[i] ^= flip;
            let report = verify(&format!("HC1:{}", base45::encode(miniz(&bad))), &options);
            rejected += usize::from(!report.valid);
        }
        // Truncations too.
        let report = verify(
            &format!("HC1:{}", base45::encode(miniz(&cose[..i]))),
            &options,
        );
        assert!(!report.valid);
    }
    assert!(
        rejected > cose.len() * 2,
        "only {rejected} corruptions rejected"
    );
}
