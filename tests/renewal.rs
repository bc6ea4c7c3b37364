//! Renewal: an unchanged event whose certificate expired, or expires within `DDCC_RENEWAL_DAYS`, is signed
//! anew when it is submitted again; before that window the stored certificate is answered. The service's
//! clock is moved with `DDCC_TEST_CLOCK_OFFSET` (the real binary, restarted on the same data directory),
//! so that "31 days later" needs no waiting.

mod support;

use serde_json::Value;
use support::service::{event, hc1_of, resources, Service};

const GENERATE: &str = "/ddcc/generateHealthCertificate";
const DAY: i64 = 86_400;

fn settings(offset_days: i64) -> Vec<(&'static str, String)> {
    vec![
        ("DDCC_VALIDITY_DAYS", "30".into()),
        ("DDCC_RENEWAL_DAYS", "28".into()),
        ("DDCC_TEST_CLOCK_OFFSET", (offset_days * DAY).to_string()),
    ]
}

/// The service's DSC (local signer).
fn dsc(service: &Service) -> Vec<u8> {
    let pem = std::fs::read(service.data_dir.join("keys/dsc-cert.pem")).unwrap();
    pem::parse(pem).unwrap().contents().to_vec()
}

/// Verifies `hc1` with the service's DSC at `at` (Unix seconds).
fn verify(service: &Service, hc1: &str, at: i64) -> ddcc_mediator::credential::VerifyReport {
    ddcc_mediator::credential::verify(
        hc1,
        &ddcc_mediator::credential::VerifyOptions {
            trusted_dscs: vec![dsc(service)],
            at,
            revocations: None,
            checked: None,
        },
    )
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn stored(service: &Service, rtype: &str, id: &str) -> Value {
    let path = service.data_dir.join(format!("store/{rtype}/{id}.json"));
    serde_json::from_slice(&std::fs::read(&path).unwrap_or_else(|e| panic!("{path:?}: {e}")))
        .unwrap()
}

fn reference_ids(document: &Value) -> Vec<String> {
    resources(document, "DocumentReference")
        .into_iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

fn submit(service: &Service, qr: &Value) -> (u16, Value) {
    let answer = service.post_json(GENERATE, Some(&service.api_key()), qr);
    assert!(
        answer.status == 200 || answer.status == 201,
        "{}: {}",
        answer.status,
        String::from_utf8_lossy(&answer.body)
    );
    (answer.status, answer.json())
}

#[test]
fn an_unchanged_event_is_renewed_past_expiry_and_within_the_window_only() {
    let qr = event("RENEW-0001", &[]);
    let service = Service::start(&settings(0));
    let (status, first) = submit(&service, &qr);
    assert_eq!(status, 201);
    let first_hc1 = hc1_of(&first, "who");
    let first_report = verify(&service, &first_hc1, now());
    assert!(first_report.valid, "{first_report:?}");
    let (iat1, exp1) = (first_report.iat.unwrap(), first_report.exp.unwrap());
    assert_eq!(exp1 - iat1, 30 * DAY);

    // Outside the window (30 days left, then 29): the stored certificate, 200.
    let (status, again) = submit(&service, &qr);
    assert_eq!((status, &again), (200, &first));
    let service = service.restart(&settings(1));
    let (status, again) = submit(&service, &qr);
    assert_eq!(
        status, 200,
        "29 days before expiry is outside a 28-day window"
    );
    assert_eq!(hc1_of(&again, "who"), first_hc1);

    // 31 days later the certificate has expired: signed anew, 201, new iat/exp, same content.
    let service = service.restart(&settings(31));
    let (status, renewed) = submit(&service, &qr);
    assert_eq!(status, 201, "an expired certificate is renewed");
    assert_eq!(
        renewed["id"], first["id"],
        "the same document, a new version"
    );
    let renewed_hc1 = hc1_of(&renewed, "who");
    assert_ne!(renewed_hc1, first_hc1);
    let later = now() + 31 * DAY;
    let report = verify(&service, &renewed_hc1, later);
    assert!(report.valid, "{report:?}");
    let (iat2, exp2) = (report.iat.unwrap(), report.exp.unwrap());
    assert!((iat2 - later).abs() < 120, "iat is the moved clock's now");
    assert_eq!(exp2 - iat2, 30 * DAY);
    assert_eq!(report.payloads, first_report.payloads, "same content");
    assert_eq!(
        verify(&service, &hc1_of(&renewed, "dcc"), later).payloads,
        verify(&service, &hc1_of(&first, "dcc"), now()).payloads,
        "same EU DCC content"
    );
    // The independent checker agrees, at the moved time.
    let at = time::OffsetDateTime::from_unix_timestamp(later)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let cert = service.data_dir.join("keys/dsc-cert.pem");
    let independent = support::hc1_verify(&[
        &renewed_hc1,
        "--cert",
        cert.to_str().unwrap(),
        "--strict",
        "--clock",
        &at,
    ]);
    assert_eq!(independent["result"], "VALID", "{independent:#}");

    // The previous version is superseded (QR and PDF DocumentReferences, relatesTo from the new ones)
    // but not revoked: its certificate still verifies for as long as it was valid.
    let old_ids = reference_ids(&first);
    let new_ids = reference_ids(&renewed);
    assert!(
        old_ids.iter().all(|id| !new_ids.contains(id)),
        "new resources"
    );
    for old in &old_ids {
        assert_eq!(
            stored(&service, "DocumentReference", old)["status"],
            "superseded"
        );
    }
    for new in resources(&renewed, "DocumentReference") {
        let target = new["relatesTo"][0]["target"]["reference"].as_str().unwrap();
        assert_eq!(new["relatesTo"][0]["code"], "replaces");
        assert!(old_ids
            .iter()
            .any(|id| target == format!("DocumentReference/{id}")));
    }
    let superseded_pdfs = std::fs::read_dir(service.data_dir.join("store/DocumentReference"))
        .unwrap()
        .map(|e| {
            serde_json::from_slice::<Value>(&std::fs::read(e.unwrap().path()).unwrap()).unwrap()
        })
        .filter(|r| r["type"]["coding"][0]["code"] == "82593-5")
        .map(|r| r["status"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(superseded_pdfs.len(), 2, "{superseded_pdfs:?}");
    assert!(superseded_pdfs.contains(&"superseded".to_owned()));
    assert!(superseded_pdfs.contains(&"current".to_owned()));
    let old_report = verify(&service, &first_hc1, exp1 - DAY);
    assert!(
        old_report.valid,
        "the renewed certificate was valid: {old_report:?}"
    );
    for old in &old_ids {
        let status = stored(&service, "DocumentReference", old)["status"].clone();
        assert_ne!(status, "entered-in-error", "not revoked");
    }
    // The citizen PDF link serves the renewed version.
    let pdf_url = renewed["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "certificate")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = pdf_url.split_once("/certificates/").unwrap().1;
    let pdf = service.get(&format!("/certificates/{path}"), None);
    assert_eq!(pdf.status, 200);
    assert!(pdf.body.starts_with(b"%PDF"));

    // Renewed once: the same again is the renewed certificate, 200.
    let (status, again) = submit(&service, &qr);
    assert_eq!((status, hc1_of(&again, "who")), (200, renewed_hc1.clone()));

    // Within the window (27 days before the renewed one's expiry): signed anew again.
    let service = service.restart(&settings(34));
    let (status, third) = submit(&service, &qr);
    assert_eq!(status, 201, "within the renewal window");
    assert_ne!(hc1_of(&third, "who"), renewed_hc1);
    for old in &new_ids {
        assert_eq!(
            stored(&service, "DocumentReference", old)["status"],
            "superseded"
        );
    }
    let metrics = String::from_utf8(service.get("/metrics", None).body).unwrap();
    assert!(
        metrics.contains("ddcc_certificates_total{outcome=\"renewed\"} 1"),
        "{metrics}"
    );
}

#[test]
fn a_renewal_window_as_long_as_the_validity_is_refused_at_start_up() {
    let (status, log) = support::service::serve_exits(
        &[("DDCC_VALIDITY_DAYS", "20"), ("DDCC_RENEWAL_DAYS", "28")],
        std::time::Duration::from_secs(20),
    );
    assert!(!status.success());
    assert!(log.contains("DDCC_RENEWAL_DAYS"), "{log}");
}

/// Two replicas on one HAPI server and one OpenBao transit key, their clocks 31 days on, receive the same
/// expired event at the same moment: exactly one renewal is stored, and both callers hold it.
#[test]
fn two_replicas_renewing_at_once_store_one_renewal() {
    use support::service::FhirServer;
    const API_KEY: &str = "renewal-test-key";
    const TRANSIT_KEY: &str = "ddcc-renewal";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bao = support::service::provisioned_openbao(&runtime, TRANSIT_KEY);
    let fhir = FhirServer::start();
    let env = |offset_days: i64| -> Vec<(&'static str, String)> {
        let mut env = settings(offset_days);
        env.extend([
            ("DDCC_SIGNER", "vault".to_owned()),
            ("VAULT_ADDR", bao.addr()),
            ("VAULT_TOKEN", support::openbao::ROOT_TOKEN.to_owned()),
            ("VAULT_TRANSIT_KEY", TRANSIT_KEY.to_owned()),
            ("DDCC_FHIR_URL", fhir.base()),
            (
                "DDCC_API_KEYS",
                hex::encode(ddcc_mediator::service::auth::digest(API_KEY)),
            ),
        ]);
        env
    };
    let link_secret = "5f".repeat(32);
    let events: Vec<Value> = (0..4)
        .map(|i| event(&format!("RENEW-REPL-{i}"), &[]))
        .collect();

    let mut today = Service::start_replica(&env(0), &link_secret);
    let first: Vec<Value> = events
        .iter()
        .map(|qr| {
            let answer = today.post_json(GENERATE, Some(API_KEY), qr);
            assert_eq!(
                answer.status,
                201,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            answer.json()
        })
        .collect();
    today.stop();

    let replicas = [
        Service::start_replica(&env(31), &link_secret),
        Service::start_replica(&env(31), &link_secret),
    ];
    for (qr, first) in events.iter().zip(&first) {
        let barrier = std::sync::Barrier::new(2);
        let answers: Vec<_> = std::thread::scope(|scope| {
            let handles: Vec<_> = replicas
                .iter()
                .map(|replica| {
                    let barrier = &barrier;
                    scope.spawn(move || {
                        barrier.wait();
                        replica.post_json(GENERATE, Some(API_KEY), qr)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
        statuses.sort();
        assert_eq!(statuses, [200, 201], "one renewal, one answer of it");
        let renewed = hc1_of(&answers[0].json(), "who");
        assert_eq!(renewed, hc1_of(&answers[1].json(), "who"), "both hold it");
        assert_ne!(renewed, hc1_of(first, "who"));
        let id = first["id"].as_str().unwrap();
        let (status, history) = fhir.get(&format!("Bundle/{id}/_history?_count=100"));
        assert_eq!(status, 200, "{history}");
        let versions = history["entry"].as_array().map_or(0, Vec::len);
        assert_eq!(versions, 2, "the first certificate and exactly one renewal");
        for old in reference_ids(first) {
            let (_, stored) = fhir.get(&format!("DocumentReference/{old}"));
            assert_eq!(stored["status"], "superseded", "{stored}");
        }
    }
}

#[test]
fn a_revoked_certificate_is_never_renewed() {
    let qr = event("RENEW-REVOKED-0001", &[]);
    let service = Service::start(&settings(0));
    let (_, first) = submit(&service, &qr);
    let revoke = serde_json::json!({
        "resourceType": "Parameters",
        "parameter": [
            {"name": "id", "valueString": first["id"]},
            {"name": "reason", "valueString": "issued in error"}
        ]
    });
    let answer = service.post_json(
        "/ddcc/revokeHealthCertificate",
        Some(&service.api_key()),
        &revoke,
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    // Past expiry the same event would be renewed; revoked, it is answered as it is: still revoked.
    let service = service.restart(&settings(31));
    let (status, again) = submit(&service, &qr);
    assert_eq!(status, 200, "a revoked certificate is not signed anew");
    assert_eq!(hc1_of(&again, "who"), hc1_of(&first, "who"));
    let composition = &resources(&again, "Composition")[0];
    assert_eq!(composition["status"], "entered-in-error", "{composition}");
}
