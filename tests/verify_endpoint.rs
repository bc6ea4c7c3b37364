//! `POST /ddcc/verify` of a running `serve`: the EU DCC test vectors with their DSCs as trust anchors
//! (`DDCC_TRUST_ANCHORS`), our own issued certificates as text, QR image and citizen PDF, the same report
//! as `ddcc-mediator verify`, and the bounds an anonymous client meets.

mod support;

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;
use support::service::{event, hc1_of, serve_exits, Service};

fn vectors(dir: &str) -> Vec<(String, Value)> {
    let dir = support::shared_dir().join("vectors/dcc").join(dir);
    let mut out: Vec<(String, Value)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .map(|p| {
            let v = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD.decode(s).unwrap()
}

/// A PEM bundle of every vector's DSC, as a ministry would configure other countries' signers.
fn vector_anchor_file(dir: &std::path::Path) -> PathBuf {
    let mut pem_text = String::new();
    for set in ["positive", "negative"] {
        for (_, v) in vectors(set) {
            if let Some(cert) = v["TESTCTX"]["CERTIFICATE"]
                .as_str()
                .filter(|c| !c.is_empty())
            {
                pem_text.push_str(&pem::encode(&pem::Pem::new("CERTIFICATE", b64(cert))));
            }
        }
    }
    let path = dir.join("anchors.pem");
    std::fs::write(&path, pem_text).unwrap();
    path
}

/// The fields `verify` and the endpoint must agree on; the failure message names the check time, which
/// differs by the second the two ran in.
fn comparable(report: &Value) -> Value {
    let mut r = report.clone();
    // The endpoint always checks the service's own revocation list; the CLI only with --revocation.
    if let Some(fields) = r.as_object_mut() {
        fields.remove("revoked");
    }
    if let Some(error) = r.get_mut("error").and_then(Value::as_object_mut) {
        error.remove("message");
    }
    r
}

#[test]
fn eu_vectors_verify_against_their_dscs_as_trust_anchors() {
    let dir = tempfile::tempdir().unwrap();
    let anchors = vector_anchor_file(dir.path());
    let service = Service::start(&[
        ("DDCC_TRUST_ANCHORS", anchors.display().to_string()),
        ("DDCC_DOWNLOAD_RATE", "off".into()),
    ]);
    let mut checked = 0;
    for (name, v) in vectors("positive") {
        let hc1 = v["PREFIX"].as_str().unwrap();
        let answer = service.post("/ddcc/verify", None, "text/plain", hc1.as_bytes().to_vec());
        assert_eq!(answer.status, 200, "{name}: {}", answer.outcome_text());
        assert_eq!(answer.header("cache-control").as_deref(), Some("no-store"));
        let report = answer.json();
        // Signed by a trusted DSC; the vectors are from 2021, so today they can only have expired.
        assert!(
            report["valid"] == true || report["error"]["stage"] == "expiry",
            "{name}: {report}"
        );
        assert_eq!(report["revoked"], false, "{name}");
        let dsc = ddcc_mediator::signer::certificate::Dsc::from_der(&b64(v["TESTCTX"]
            ["CERTIFICATE"]
            .as_str()
            .unwrap()))
        .unwrap();
        assert_eq!(report["kid"], hex::encode(dsc.kid()), "{name}");
        assert_eq!(report["payloads"]["1"]["dob"], v["JSON"]["dob"], "{name}");

        // The same answer as the CLI given the same anchors.
        let cli = std::process::Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
            .args(["verify", hc1, "--cert", anchors.to_str().unwrap()])
            .output()
            .unwrap();
        let cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
        assert_eq!(comparable(&cli), comparable(&report), "{name}");

        // The vector's QR image gives the same report.
        if let Some(png) = v["2DCODE"].as_str().filter(|s| !s.is_empty()) {
            let answer = service.post("/ddcc/verify", None, "image/png", b64(png));
            assert_eq!(answer.status, 200, "{name}");
            assert_eq!(comparable(&answer.json()), comparable(&report), "{name}");
        }
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} positive vectors");
}

#[test]
fn eu_vectors_with_a_bad_signature_fail_against_their_own_dsc() {
    // Run alone with its own DSC: with every vector's DSC trusted, the genuine signer may be among them.
    let mut refused = 0;
    for (name, v) in vectors("negative") {
        if v["EXPECTEDRESULTS"]["EXPECTEDVERIFY"] != false {
            continue;
        }
        let dir = tempfile::tempdir().unwrap();
        let anchor = dir.path().join("dsc.pem");
        let der = b64(v["TESTCTX"]["CERTIFICATE"].as_str().unwrap());
        std::fs::write(&anchor, pem::encode(&pem::Pem::new("CERTIFICATE", der))).unwrap();
        let service = Service::start(&[("DDCC_TRUST_ANCHORS", anchor.display().to_string())]);
        let hc1 = v["PREFIX"].as_str().unwrap_or_default();
        let answer = service.post("/ddcc/verify", None, "text/plain", hc1.as_bytes().to_vec());
        assert_eq!(answer.status, 200, "{name}");
        let report = answer.json();
        assert_eq!(report["valid"], false, "{name}: {report}");
        // The vector's DSC is not the signer's: refused at the kid lookup or at the signature.
        assert!(
            report["error"]["stage"] == "kid" || report["error"]["stage"] == "signature",
            "{name}: {report}"
        );
        refused += 1;
    }
    assert!(refused >= 1, "no negative signature vector");
}

/// The download path of a document's link of `relation`.
fn link(service: &Service, document: &Value, relation: &str) -> String {
    document["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == relation)
        .unwrap_or_else(|| panic!("no {relation} link"))["url"]
        .as_str()
        .unwrap()
        .strip_prefix(&service.url)
        .unwrap()
        .to_owned()
}

#[test]
fn our_certificates_verify_as_text_image_and_pdf() {
    let service = Service::start(&[("DDCC_DOWNLOAD_RATE", "off".into())]);
    let key = service.api_key();
    let issued = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        &event("VERIFY-0001", &[]),
    );
    assert_eq!(issued.status, 201);
    let document = issued.json();
    let hc1 = hc1_of(&document, "who");

    let text = service.post("/ddcc/verify", None, "text/plain", hc1.clone().into_bytes());
    assert_eq!(text.status, 200);
    let report = text.json();
    assert_eq!(report["valid"], true, "{report}");
    assert_eq!(report["revoked"], false);
    assert_eq!(report["alg"], "ES256");
    assert!(
        report["iss"].is_string() && report["exp"].is_i64(),
        "{report}"
    );

    let png = service.get(&link(&service, &document, "dcc-qr"), None);
    assert_eq!(png.status, 200);
    let from_png = service.post("/ddcc/verify", None, "image/png", png.body);
    assert_eq!(from_png.status, 200);
    assert_eq!(from_png.json()["valid"], true, "{}", from_png.json());

    // The citizen PDF: its QR codes are read from the page itself.
    let pdf = service.get(&link(&service, &document, "certificate"), None);
    assert_eq!(pdf.status, 200);
    let from_pdf = service.post("/ddcc/verify", None, "application/pdf", pdf.body);
    assert_eq!(
        from_pdf.status,
        200,
        "{}",
        String::from_utf8_lossy(&from_pdf.body)
    );
    let from_pdf = from_pdf.json();
    assert_eq!(from_pdf["valid"], true, "{from_pdf}");
    assert_eq!(from_pdf["kid"], report["kid"]);

    // A forged payload: one character of the Base45 changed fails, and says where.
    let mut forged: Vec<char> = hc1.chars().collect();
    let i = forged.len() / 2;
    forged[i] = if forged[i] == '0' { '1' } else { '0' };
    let forged: String = forged.into_iter().collect();
    let answer = service.post("/ddcc/verify", None, "text/plain", forged.into_bytes());
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json()["valid"], false);
    assert!(answer.json()["error"]["stage"].is_string());

    // What is not a certificate is refused, with an OperationOutcome.
    let white = {
        let mut out = std::io::Cursor::new(Vec::new());
        image::GrayImage::from_pixel(64, 64, image::Luma([255]))
            .write_to(&mut out, image::ImageFormat::Png)
            .unwrap();
        out.into_inner()
    };
    let none = service.post("/ddcc/verify", None, "image/png", white);
    assert_eq!(none.status, 422);
    assert!(
        none.outcome_text().contains("no readable QR code"),
        "{}",
        none.outcome_text()
    );
    let mislabelled = service.post("/ddcc/verify", None, "image/png", hc1.clone().into_bytes());
    assert_eq!(mislabelled.status, 400);
    let unsupported = service.post("/ddcc/verify", None, "application/json", b"{}".to_vec());
    assert_eq!(unsupported.status, 415);
    let huge = service.post("/ddcc/verify", None, "application/pdf", vec![b'%'; 5 << 20]);
    assert_eq!(huge.status, 413);
    assert_eq!(service.get("/ddcc/verify", None).status, 405);
}

#[test]
fn verification_is_rate_limited_per_client() {
    let service = Service::start(&[
        ("DDCC_DOWNLOAD_RATE", "2/h".into()),
        ("DDCC_DOWNLOAD_BURST", "2".into()),
    ]);
    for _ in 0..2 {
        let answer = service.post("/ddcc/verify", None, "text/plain", b"HC1:X".to_vec());
        assert_eq!(answer.status, 200);
    }
    let refused = service.post("/ddcc/verify", None, "text/plain", b"HC1:X".to_vec());
    assert_eq!(refused.status, 429);
    assert!(refused.header("retry-after").is_some());
    // Verifications have their own buckets: the downloads of this client are not used up.
    assert_ne!(
        service
            .get(
                &format!("/certificates/{}/certificate.pdf", "0".repeat(64)),
                None
            )
            .status,
        429
    );
}

#[test]
fn an_unreadable_trust_anchor_file_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("anchors.json");
    std::fs::write(&file, br#"{"keys":[{"kty":"EC","kid":"k1"}]}"#).unwrap();
    let (status, output) = serve_exits(
        &[("DDCC_TRUST_ANCHORS", file.to_str().unwrap())],
        Duration::from_secs(30),
    );
    assert!(!status.success());
    assert!(
        output.contains("anchors.json") && output.contains("key k1 has no x5c"),
        "{output}"
    );
}
