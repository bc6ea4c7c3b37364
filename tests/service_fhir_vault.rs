//! `ddcc-mediator serve` with its production dependencies: a real FHIR server (HAPI FHIR JPA) as the store
//! and a real OpenBao transit key as the signer. Idempotency, corrections, and outages of each.

mod support;

use serde_json::{json, Value};
use support::openbao::{OpenBao, ROOT_TOKEN};
use support::service::{assert_stored_as_issued, event, hc1_of, resources, FhirServer, Service};

const API_KEY: &str = "test-facility-key";
const TRANSIT_KEY: &str = "ddcc-service-test";

fn vault(runtime: &tokio::runtime::Runtime) -> OpenBao {
    support::service::provisioned_openbao(runtime, TRANSIT_KEY)
}

fn service(bao: &OpenBao, fhir: &FhirServer) -> Service {
    let digest = hex::encode(ddcc_mediator::service::auth::digest(API_KEY));
    Service::start(&[
        ("DDCC_SIGNER", "vault".into()),
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_TOKEN", ROOT_TOKEN.into()),
        ("VAULT_TRANSIT_KEY", TRANSIT_KEY.into()),
        ("VAULT_TIMEOUT", "3".into()),
        ("DDCC_FHIR_URL", fhir.base()),
        ("DDCC_API_KEYS", format!("{digest},{}", "0".repeat(64))),
    ])
}

fn generate(service: &Service, qr: &Value) -> support::service::Response {
    service.post_json("/ddcc/generateHealthCertificate", Some(API_KEY), qr)
}

/// Calls the service has made to the FHIR server so far (`ddcc_dependency_duration_seconds` counts).
fn fhir_calls(service: &Service) -> u64 {
    let metrics = String::from_utf8_lossy(&service.get("/metrics", None).body).into_owned();
    metrics
        .lines()
        .filter(|l| l.starts_with("ddcc_dependency_duration_seconds_count{dependency=\"fhir\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
        .sum()
}

fn who_reference(document: &Value) -> Value {
    resources(document, "DocumentReference")
        .into_iter()
        .find(|r| r["type"]["coding"][0]["code"] == "who")
        .cloned()
        .expect("a who DocumentReference")
}

/// The PNG inline in a QR DocumentReference.
fn png_of(reference: &Value) -> Vec<u8> {
    use base64::Engine as _;
    let data = reference["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["attachment"]["contentType"] == "image/png")
        .and_then(|c| c["attachment"]["data"].as_str())
        .unwrap_or_else(|| panic!("no PNG in {reference}"));
    base64::engine::general_purpose::STANDARD
        .decode(data)
        .unwrap()
}

/// `$getQRCode` of a QR DocumentReference.
fn qr_image(service: &Service, reference: &Value) -> Vec<u8> {
    let id = reference["id"].as_str().unwrap();
    let r = service.get(
        &format!("/ddcc/DocumentReference/{id}/$getQRCode"),
        Some(API_KEY),
    );
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(r.header("content-type").as_deref(), Some("image/png"));
    r.body
}

#[test]
fn stores_in_fhir_signs_in_vault_once_per_event() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bao = vault(&runtime);
    let fhir = FhirServer::start();
    let service = service(&bao, &fhir);
    assert!(!service.log_text().contains("embedded defaults"));
    assert!(
        !service.data_dir.join("api-key").exists(),
        "configured keys: none generated"
    );

    // Issued, and the document read back from the FHIR server is the one handed out.
    let qr = event("SVC-FV-0001", &[]);
    let calls_before = fhir_calls(&service);
    let created = generate(&service, &qr);
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    let document = created.json();
    let id = document["id"].as_str().unwrap();
    // Two FHIR calls: the marker read, and one transaction that also creates the marker and stores the
    // issuance's AuditEvent (neither is a request of its own).
    assert_eq!(fhir_calls(&service) - calls_before, 2);
    let (status, audits) = fhir.get(&format!("AuditEvent?entity=Bundle/{id}"));
    assert_eq!(status, 200);
    let audits = audits["entry"].as_array().cloned().unwrap_or_default();
    assert_eq!(audits.len(), 1, "{audits:?}");
    assert_eq!(audits[0]["resource"]["outcome"], "0");
    assert_eq!(audits[0]["resource"]["outcomeDesc"], "certificate issued");
    let (status, stored) = fhir.get(&format!("Bundle/{id}"));
    assert_eq!(status, 200);
    assert_stored_as_issued(&stored, &document);
    // The resources are stored one by one too: the QR DocumentReference by id, the Patient by identifier.
    let who = who_reference(&document);
    let (status, stored_ref) = fhir.get(&format!(
        "DocumentReference/{}",
        who["id"].as_str().unwrap()
    ));
    assert_eq!(status, 200);
    assert_eq!(stored_ref["status"], "current");
    assert!(stored_ref["subject"]["reference"]
        .as_str()
        .unwrap()
        .starts_with("Patient/"));
    // Stored on its own, it points at the document instead of repeating the document's image and payload;
    // $getQRCode answers the document's image.
    assert_eq!(
        stored_ref["context"]["related"][0]["reference"],
        format!("Bundle/{id}")
    );
    assert!(
        stored_ref["content"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["attachment"].get("data").is_none()),
        "{stored_ref}"
    );
    assert_eq!(qr_image(&service, &who), png_of(&who));
    let (_, pdf_refs) = fhir.get("DocumentReference?type=http://loinc.org|82593-5");
    let pdf_ref = &pdf_refs["entry"][0]["resource"];
    assert_eq!(
        pdf_ref["content"][0]["attachment"]["contentType"],
        "application/pdf"
    );
    let (status, binary) = fhir.get(pdf_ref["content"][0]["attachment"]["url"].as_str().unwrap());
    assert_eq!(status, 200);
    assert_eq!(binary["contentType"], "application/pdf");
    let (_, patients) = fhir.get("Patient?identifier=EXAMPLE-ID-123456");
    assert_eq!(patients["entry"].as_array().map(Vec::len), Some(1));
    // Signed by Vault: the JWKS lists the transit key's DSC, whose kid is in the HC1.
    let jwks = service.get("/trust/jwks.json", None).json();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(1));

    // The same event again: the same certificate, 200: the very document handed out the first time, as
    // read back from the FHIR server.
    let again = generate(&service, &qr);
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), document);

    // Ten concurrent copies of a new event: one certificate.
    let fresh = event("SVC-FV-0002", &[]);
    let answers: Vec<(u16, String)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..10)
            .map(|_| {
                s.spawn(|| {
                    let r = generate(&service, &fresh);
                    let hc1 = hc1_of(&r.json(), "who");
                    (r.status, hc1)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(
        answers.iter().filter(|(s, _)| *s == 201).count(),
        1,
        "{answers:?}"
    );
    assert_eq!(answers.iter().filter(|(s, _)| *s == 200).count(), 9);
    assert!(
        answers.windows(2).all(|w| w[0].1 == w[1].1),
        "one certificate"
    );
    let fresh_id = generate(&service, &fresh).json()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, history) = fhir.get(&format!("Bundle/{fresh_id}/_history"));
    assert_eq!(
        history["entry"].as_array().map(Vec::len),
        Some(1),
        "written once"
    );

    // A corrected event (same hcid and dose, other lot): a new version replacing the old QR.
    let corrected = event("SVC-FV-0001", &[("lot", json!({"valueString": "FK0892"}))]);
    let reissued = generate(&service, &corrected);
    assert_eq!(reissued.status, 201, "{}", service.log_text());
    let new_document = reissued.json();
    assert_eq!(
        new_document["id"], document["id"],
        "the same document, a new version"
    );
    let new_who = who_reference(&new_document);
    assert_ne!(new_who["id"], who["id"]);
    assert_eq!(new_who["relatesTo"][0]["code"], "replaces");
    assert_eq!(
        new_who["relatesTo"][0]["target"]["reference"],
        format!("DocumentReference/{}", who["id"].as_str().unwrap())
    );
    let (_, old_ref) = fhir.get(&format!(
        "DocumentReference/{}",
        who["id"].as_str().unwrap()
    ));
    assert_eq!(old_ref["status"], "superseded");
    // The superseded QR is no longer in the current document: it is kept whole, and still answered.
    assert_eq!(png_of(&old_ref), png_of(&who));
    assert_eq!(qr_image(&service, &who), png_of(&who));
    assert_eq!(qr_image(&service, &new_who), png_of(&new_who));
    assert_ne!(png_of(&new_who), png_of(&who));
    let (_, old_pdf_ref) = fhir.get(&format!(
        "DocumentReference/{}",
        pdf_ref["id"].as_str().unwrap()
    ));
    assert_eq!(old_pdf_ref["status"], "superseded", "the old PDF too");
    let (_, current) = fhir.get(&format!("Bundle/{id}"));
    assert_eq!(hc1_of(&current, "who"), hc1_of(&new_document, "who"));
    assert_ne!(hc1_of(&current, "who"), hc1_of(&document, "who"));

    let metrics = String::from_utf8_lossy(&service.get("/metrics", None).body).into_owned();
    assert!(metrics.contains("outcome=\"reissued\"} 1"), "{metrics}");
    // The corrected event again: the very document the correction handed out, as read back (its tags in
    // the order HAPI answers them in).
    let again = generate(&service, &corrected);
    assert_eq!(again.status, 200);
    assert_eq!(again.json(), new_document);

    // An operator deletes the revision marker by hand (HAPI answers 410 for it from then on, and refuses
    // a create-if-absent `W/"0"` on it). The document is still found and handed out again, and a correction
    // is stored: neither is refused as a conflict forever.
    assert_eq!(fhir.delete(&format!("Basic/{id}")), 200);
    let again = generate(&service, &corrected);
    assert_eq!(
        again.status,
        200,
        "{}",
        String::from_utf8_lossy(&again.body)
    );
    assert_eq!(again.json(), new_document);
    let corrected_twice = event("SVC-FV-0001", &[("lot", json!({"valueString": "FK0893"}))]);
    let third = generate(&service, &corrected_twice);
    assert_eq!(
        third.status,
        201,
        "{}",
        String::from_utf8_lossy(&third.body)
    );
    assert_eq!(third.json()["id"], document["id"]);
    let (status, marker) = fhir.get(&format!("Basic/{id}"));
    assert_eq!(status, 200, "the marker is written again: {marker}");
}

#[test]
fn outages_are_503_naming_the_dependency_and_recover() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut bao = vault(&runtime);
    let mut fhir = FhirServer::start();
    let fhir_port = fhir.port;
    let service = service(&bao, &fhir);
    assert_eq!(service.get("/health/ready", None).status, 200);

    // FHIR server down: no certificate handed out, 503 naming it; readiness says why.
    fhir.stop();
    let r = generate(&service, &event("SVC-FV-0101", &[]));
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        r.outcome_text().contains("FHIR server"),
        "{}",
        r.outcome_text()
    );
    assert!(r.header("retry-after").is_some());
    let ready = service.get("/health/ready", None);
    assert_eq!(ready.status, 503);
    assert!(ready.json()["problems"]["store"]
        .as_str()
        .unwrap()
        .contains("FHIR server"));

    // It comes back: ready again, issuing again.
    let fhir = FhirServer::start_on(fhir_port);
    assert_eq!(service.get("/health/ready", None).status, 200);
    let r = generate(&service, &event("SVC-FV-0101", &[]));
    assert_eq!(r.status, 201);
    let (status, _) = fhir.get(&format!("Bundle/{}", r.json()["id"].as_str().unwrap()));
    assert_eq!(status, 200);

    // Vault down: 503 naming Vault, nothing stored.
    bao.stop();
    let r = generate(&service, &event("SVC-FV-0102", &[]));
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.outcome_text().contains("Vault"), "{}", r.outcome_text());
    let ready = service.get("/health/ready", None);
    assert_eq!(ready.status, 503);
    assert!(ready.json()["problems"]["signer"]
        .as_str()
        .unwrap()
        .contains("Vault"));
    let (_, bundles) = fhir.get("Bundle?_summary=count");
    assert_eq!(
        bundles["total"], 1,
        "only the certificate issued while everything was up"
    );
}
