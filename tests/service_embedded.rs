//! `ddcc-mediator serve` on embedded defaults (local signer, local store), as a facility system, a citizen
//! and a verifier use it: the real binary on a free port.

mod support;

use base64::Engine as _;
use serde_json::{json, Value};
use support::service::{batch, decode_qr, event, hc1_of, resources, Service};

fn verify_with_jwks(hc1: &str, jwks: &Value) {
    // The JWKS x5c certificate is what a verifier imports; the CLI verifies the HC1 against it.
    let der = base64::engine::general_purpose::STANDARD
        .decode(jwks["keys"][0]["x5c"][0].as_str().unwrap())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("dsc.pem");
    std::fs::write(&pem_path, pem::encode(&pem::Pem::new("CERTIFICATE", der))).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(["verify", hc1, "--cert", pem_path.to_str().unwrap()])
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "verify printed no report: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert_eq!(report["valid"], true, "{report}");
}

#[test]
fn issues_serves_and_publishes_on_embedded_defaults() {
    let service = Service::start(&[]);
    assert!(
        service.log_text().contains("embedded defaults"),
        "one start-up line says so:\n{}",
        service.log_text()
    );
    let key_file = service.data_dir.join("api-key");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the API key file is private");
    }
    let key = service.api_key();
    assert!(
        !service.log_text().contains(&key),
        "the key itself is never logged"
    );

    // generateHealthCertificate: a document Bundle, 201.
    let qr = event("SVC-EMB-0001", &[]);
    let created = service.post_json("/ddcc/generateHealthCertificate", Some(&key), &qr);
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let document = created.json();
    assert_eq!(document["resourceType"], "Bundle");
    assert_eq!(document["type"], "document");
    assert_eq!(
        document["entry"][0]["resource"]["resourceType"],
        "Composition"
    );
    let hc1 = hc1_of(&document, "who");
    assert!(hc1.starts_with("HC1:"));

    // The same event again: the same certificate (200), nothing new signed.
    let again = service.post_json(
        "/fhir/QuestionnaireResponse/$generateHealthCertificate",
        Some(&key),
        &json!({"resourceType": "Parameters", "parameter": [{"name": "response", "resource": qr}]}),
    );
    assert_eq!(again.status, 200);
    assert_eq!(hc1_of(&again.json(), "who"), hc1);

    // $getQRCode: the PNG of the QR DocumentReference decodes to the HC1 in the document.
    let who_ref = resources(&document, "DocumentReference")
        .into_iter()
        .find(|r| r["type"]["coding"][0]["code"] == "who")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let png = service.get(
        &format!("/ddcc/DocumentReference/{who_ref}/$getQRCode"),
        Some(&key),
    );
    assert_eq!(png.status, 200);
    assert_eq!(png.header("content-type").as_deref(), Some("image/png"));
    assert_eq!(decode_qr(&png.body), hc1);
    assert_eq!(
        service
            .get(
                &format!("/ddcc/DocumentReference/{who_ref}/$getQRCode"),
                None
            )
            .status,
        401
    );

    // Citizen download: the link in the Bundle works without a key; a random token is a bare 404.
    let link = document["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "ddcc-qr")
        .expect("a ddcc-qr download link")["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = link
        .strip_prefix(&service.url)
        .expect("link under DDCC_PUBLIC_URL");
    let download = service.get(path, None);
    assert_eq!(download.status, 200);
    assert_eq!(decode_qr(&download.body), hc1);
    let token = path.split('/').nth(2).unwrap();
    let pdf = service.get(&format!("/certificates/{token}/certificate.pdf"), None);
    assert_eq!(pdf.status, 200);
    assert_eq!(
        pdf.header("content-type").as_deref(),
        Some("application/pdf")
    );
    assert!(pdf.body.starts_with(b"%PDF-"));
    assert!(
        document["link"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l["relation"] == "certificate"
                && l["url"]
                    .as_str()
                    .unwrap()
                    .ends_with(&format!("{token}/certificate.pdf"))),
        "the response tells where the PDF is"
    );
    assert!(token.len() >= 32, "at least 128 bits");
    let random: String = (0..64)
        .map(|i| if i % 3 == 0 { 'a' } else { '7' })
        .collect();
    for probe in [
        format!("/certificates/{random}/ddcc-qr.png"),
        format!("/certificates/{token}/secret.txt"),
        "/certificates/".to_owned(),
    ] {
        let r = service.get(&probe, None);
        assert_eq!(r.status, 404, "{probe}");
        assert!(
            !String::from_utf8_lossy(&r.body).contains("Bundle"),
            "no hint"
        );
    }

    // Trust: the JWKS (CORS *) holds the kid of the HC1, and its certificate verifies the HC1.
    let jwks = service.get("/trust/jwks.json", None);
    assert_eq!(jwks.status, 200);
    assert_eq!(
        jwks.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let jwks = jwks.json();
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(["verify", &hc1, "--key-dir"])
        .arg(service.data_dir.join("keys"))
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&verify.stdout).unwrap();
    let kid = report["kid"].as_str().unwrap().to_owned();
    let kid_b64 =
        base64::engine::general_purpose::STANDARD.encode(hex::decode(&kid).unwrap_or_default());
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&kid.as_str()) || kids.contains(&kid_b64.as_str()),
        "kid {kid} in {kids:?}"
    );
    verify_with_jwks(&hc1, &jwks);
    let pem = service.get("/trust/dsc.pem", None);
    assert!(String::from_utf8_lossy(&pem.body).contains("BEGIN CERTIFICATE"));
    let did = service.get("/trust/did.json", None).json();
    assert_eq!(
        did["id"],
        format!("did:web:127.0.0.1%3A{}:trust", service.port),
        "resolves to this document"
    );

    // Ops.
    assert_eq!(service.get("/health/ready", None).status, 200);
    let metrics = String::from_utf8_lossy(&service.get("/metrics", None).body).into_owned();
    assert!(
        metrics.contains("ddcc_certificates_total{outcome=\"issued\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("ddcc_certificates_total{outcome=\"duplicate\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("route=\"/certificates/{token}/{file}\""),
        "{metrics}"
    );
    assert!(!metrics.contains(token), "no token in labels");
}

#[test]
fn batches_answer_per_entry_in_order() {
    let service = Service::start(&[]);
    let key = service.api_key();
    let good = event("SVC-EMB-B1", &[]);
    let bad = event("SVC-EMB-B2", &[("dose", json!({"valueInteger": 0}))]);
    let good2 = json!({"resourceType": "Parameters", "parameter": [{"name": "response", "resource": event("SVC-EMB-B3", &[])}]});
    let mut body = batch(vec![good, bad, good2]);
    body["entry"].as_array_mut().unwrap().push(json!({
        "request": {"method": "POST", "url": "$generateHealthCertificate"},
        "resource": event("SVC-EMB-B4", &[]),
    }));
    let response = service.post_json("/ddcc/submitHealthEvent", Some(&key), &body);
    assert_eq!(response.status, 200);
    let answer = response.json();
    assert_eq!(answer["type"], "batch-response");
    assert!(answer["id"].is_string() && answer["identifier"]["value"].is_string());
    assert!(answer["timestamp"].is_string());
    let statuses: Vec<&str> = answer["entry"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["response"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        [
            "201 Created",
            "422 Unprocessable Entity",
            "201 Created",
            "400 Bad Request"
        ]
    );
    let entries = answer["entry"].as_array().unwrap();
    assert_eq!(entries[0]["resource"]["type"], "document");
    let outcome = entries[1]["response"]["outcome"].to_string();
    assert!(outcome.contains("linkId='dose'"), "{outcome}");
    assert!(entries[1].get("resource").is_none());
    // Each entry's document carries its own hcid.
    assert_eq!(
        entries[2]["resource"]["link"][0]["url"],
        "urn:HCID:SVC-EMB-B3"
    );

    // The /fhir alias.
    let alias = service.post_json(
        "/fhir/$submitHealthEvent",
        Some(&key),
        &batch(vec![event("SVC-EMB-B1", &[])]),
    );
    assert_eq!(alias.json()["entry"][0]["response"]["status"], "200 OK");
}

#[test]
fn refuses_with_real_statuses_and_stores_nothing() {
    let service = Service::start(&[("DDCC_BODY_LIMIT", "20000".into())]);
    let key = service.api_key();
    let qr = event("SVC-EMB-E1", &[]);

    // 401 without or with a wrong key.
    for auth in [None, Some("not-the-key")] {
        let r = service.post_json("/ddcc/generateHealthCertificate", auth, &qr);
        assert_eq!(r.status, 401);
        assert!(r.outcome_text().contains("API key"));
    }
    // Basic with the key as password works too.
    let basic = support::service::client()
        .post(format!("{}/ddcc/generateHealthCertificate", service.url))
        .basic_auth("facility-a", Some(&key))
        .header("Content-Type", "application/json; charset=utf-8")
        .body(serde_json::to_vec(&qr).unwrap())
        .send()
        .unwrap();
    assert_eq!(basic.status().as_u16(), 201);
    let stored_after_good = service.stored_files().len();

    // 415: another content type.
    let r = service.post(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        "text/plain",
        b"{}".to_vec(),
    );
    assert_eq!(r.status, 415);
    assert!(r.outcome_text().contains("text/plain"));
    // 413: over DDCC_BODY_LIMIT.
    let mut big = event("SVC-EMB-E2", &[]);
    big["text"] = json!({"status": "generated", "div": "x".repeat(30_000)});
    let r = service.post_json("/ddcc/generateHealthCertificate", Some(&key), &big);
    assert_eq!(r.status, 413);
    assert!(r.outcome_text().contains("DDCC_BODY_LIMIT"));
    // 422: the faults named by linkId.
    let bad = event(
        "SVC-EMB-E3",
        &[
            ("dose", json!({"valueInteger": 0})),
            (
                "country",
                json!({"valueCoding": {"system": "urn:iso:std:iso:3166", "code": "ZZZ"}}),
            ),
        ],
    );
    let r = service.post_json("/ddcc/generateHealthCertificate", Some(&key), &bad);
    assert_eq!(r.status, 422);
    let text = r.outcome_text();
    assert!(
        text.contains("linkId='dose'") && text.contains("linkId='country'"),
        "{text}"
    );
    // 400/422: not JSON, not a FHIR resource.
    let r = service.post(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        "application/fhir+json",
        b"{not json".to_vec(),
    );
    assert!(matches!(r.status, 400 | 422), "{}", r.status);
    assert!(r.outcome_text().contains("JSON"));
    // 404 and 405, as OperationOutcomes.
    let r = service.get("/ddcc/nothing-here", Some(&key));
    assert_eq!(r.status, 404);
    r.outcome_text();
    let r = service.get("/ddcc/generateHealthCertificate", Some(&key));
    assert_eq!(r.status, 405);
    r.outcome_text();

    assert_eq!(
        service.stored_files().len(),
        stored_after_good,
        "nothing stored for bad input"
    );
}

#[test]
fn logs_are_json_lines_without_personal_data() {
    let service = Service::start(&[("DDCC_LOG_FORMAT", "json".into())]);
    let key = service.api_key();
    let bad = event("SVC-EMB-L1", &[("dose", json!({"valueInteger": 0}))]);
    assert_eq!(
        service
            .post_json("/ddcc/generateHealthCertificate", Some(&key), &bad)
            .status,
        422
    );
    let created = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        &event("SVC-EMB-L2", &[]),
    );
    assert_eq!(created.status, 201);
    let log = service.log_text();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(parsed.is_ok(), "not a JSON line: {line}");
    }
    for personal in ["Ångström", "1990-02-14", "EXAMPLE-ID-123456"] {
        assert!(!log.contains(personal), "{personal} in the log:\n{log}");
    }
}

#[test]
fn bad_settings_stop_the_service_naming_the_setting() {
    for (name, value) in [
        ("DDCC_LISTEN", "nowhere"),
        ("DDCC_FHIR_URL", "not a url"),
        ("DDCC_BATCH_CONCURRENCY", "0"),
        ("DDCC_API_KEYS", "short"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
            .arg("serve")
            .env_clear()
            .env("DDCC_DATA_DIR", dir.path())
            .env(name, value)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{name}={value}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(name), "{name}={value}: {stderr}");
    }
}

/// A second `serve` on a port in use stops at once, calls it an address in use (not a configuration error)
/// and creates nothing: no data directory, no keys, no secrets.
#[test]
fn a_second_serve_on_the_same_port_creates_nothing() {
    let first = Service::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("second-data");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DDCC_LISTEN", format!("127.0.0.1:{}", first.port))
        .env("DDCC_DATA_DIR", &data)
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("address in use"), "{stderr}");
    assert!(!stderr.contains("configuration error"), "{stderr}");
    assert!(
        !data.exists(),
        "the second serve created {}",
        data.display()
    );
    assert!(!dir.path().join("data").exists());
}

/// `GET /` says what the service is and where its endpoints are, with no certificate or person in it; the
/// start-up log names the API key file by its absolute path.
#[test]
fn the_root_page_points_to_the_endpoints() {
    // A relative data directory, as on embedded defaults (./data): the log still gives an absolute path.
    let service = Service::start(&[("DDCC_DATA_DIR", "data".into())]);
    let r = service.get("/", None);
    assert_eq!(r.status, 200);
    let page = r.json();
    assert_eq!(page["service"], "ddcc-mediator");
    let text = page.to_string();
    for endpoint in [
        "/ddcc/generateHealthCertificate",
        "/ddcc/submitHealthEvent",
        "/trust/jwks.json",
        "/health/ready",
    ] {
        assert!(text.contains(endpoint), "{endpoint}: {text}");
    }
    let key_file = service.data_dir.join("api-key");
    let logged = service
        .log_text()
        .lines()
        .find(|l| l.contains("api_key_file"))
        .map(str::to_owned)
        .expect("the start-up line naming the API key file");
    assert!(
        logged.contains(&key_file.display().to_string()),
        "absolute path of {}: {logged}",
        key_file.display()
    );
}

/// A document Bundle posted to generateHealthCertificate: the answer says what this endpoint takes.
#[test]
fn a_bundle_posted_to_generate_is_told_what_the_endpoint_takes() {
    let service = Service::start(&[]);
    let key = service.api_key();
    let document = json!({"resourceType": "Bundle", "type": "document", "entry": [{"resource": event("X-1", &[])}]});
    let r = service.post_json("/ddcc/generateHealthCertificate", Some(&key), &document);
    assert_eq!(r.status, 400);
    let text = r.outcome_text();
    assert!(text.contains("QuestionnaireResponse"), "{text}");
    assert!(text.contains("document"), "{text}");
    assert!(text.contains("/ddcc/submitHealthEvent"), "{text}");
    assert!(!text.contains("only a 'batch' Bundle"), "{text}");
    assert!(service.stored_files().is_empty());
}
