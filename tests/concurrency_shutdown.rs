//! 50 concurrent identical submissions store exactly one certificate (local store and FHIR server), and
//! SIGTERM lets an in-flight batch finish before the process exits 0.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::service::{batch, event, FhirServer, Service};

const GENERATE: &str = "/ddcc/generateHealthCertificate";
const API_KEY: &str = "concurrency-test-key";

fn keyed(extra: &[(&str, String)]) -> Service {
    let digest = hex::encode(ddcc_mediator::service::auth::digest(API_KEY));
    let mut env = vec![("DDCC_API_KEYS", digest)];
    env.extend(extra.iter().cloned());
    Service::start(&env)
}

/// Posts `qr` from `n` threads at once (released together); the statuses and document ids.
fn fifty_at_once(service: &Service, qr: &Value, n: usize) -> Vec<(u16, String)> {
    let barrier = std::sync::Barrier::new(n);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    let r = service.post_json(GENERATE, Some(API_KEY), qr);
                    let id = if r.status < 300 {
                        r.json()["id"].as_str().unwrap_or_default().to_owned()
                    } else {
                        String::from_utf8_lossy(&r.body).into_owned()
                    };
                    (r.status, id)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn assert_one_certificate(results: &[(u16, String)]) {
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let existing = results.iter().filter(|(s, _)| *s == 200).count();
    assert_eq!(created, 1, "exactly one 201: {results:?}");
    assert_eq!(existing, results.len() - 1, "the others 200: {results:?}");
    let first = &results[0].1;
    assert!(results.iter().all(|(_, id)| id == first), "one document id");
}

fn files_of(service: &Service, resource_type: &str) -> usize {
    service
        .stored_files()
        .iter()
        .filter(|p| p.parent().and_then(|d| d.file_name()) == Some(resource_type.as_ref()))
        .count()
}

#[test]
fn fifty_identical_submissions_store_one_certificate_locally() {
    let service = keyed(&[]);
    let results = fifty_at_once(&service, &event("CONC-LOCAL-1", &[]), 50);
    assert_one_certificate(&results);
    assert_eq!(files_of(&service, "Bundle"), 1);
    // who + dcc QR and the PDF: one set; the PDF and the kept event.
    assert_eq!(files_of(&service, "DocumentReference"), 3);
    assert_eq!(files_of(&service, "Binary"), 2);
    println!("local store: 50 submissions, 49 duplicates prevented, 1 certificate stored");
}

#[test]
fn fifty_identical_submissions_store_one_certificate_on_the_fhir_server() {
    let fhir = FhirServer::start();
    let service = keyed(&[("DDCC_FHIR_URL", fhir.base())]);
    let results = fifty_at_once(&service, &event("CONC-FHIR-1", &[]), 50);
    assert_one_certificate(&results);
    assert_eq!(fhir.count("Bundle"), 1);
    assert_eq!(fhir.count("DocumentReference"), 3);
    assert_eq!(fhir.count("Patient"), 1);
    assert_eq!(fhir.count("Immunization"), 1);
    assert_eq!(fhir.count("Binary"), 2, "the PDF and the kept event");
    assert!(
        service.stored_files().is_empty(),
        "nothing in the local store"
    );
    println!("FHIR store: 50 submissions, 49 duplicates prevented, 1 certificate stored");
}

#[test]
fn sigterm_lets_the_in_flight_batch_finish_then_exits_0() {
    let mut service = keyed(&[("DDCC_BATCH_CONCURRENCY", "2".into())]);
    let events: Vec<Value> = (0..12)
        .map(|i| event(&format!("CONC-TERM-{i:02}"), &[]))
        .collect();
    let body = batch(events);
    let url = service.url.clone();
    let port = service.port;
    let in_flight = std::thread::spawn(move || {
        support::service::client()
            .post(format!("{url}/ddcc/submitHealthEvent"))
            .bearer_auth(API_KEY)
            .header("Content-Type", "application/fhir+json")
            .json(&body)
            .send()
            .map(support::service::Response::from)
    });
    // Mid-way: the first certificate is stored, not all of them.
    let deadline = Instant::now() + Duration::from_secs(60);
    while files_of(&service, "Bundle") == 0 {
        assert!(Instant::now() < deadline, "the batch never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let stored_at_sigterm = files_of(&service, "Bundle");
    assert!(
        stored_at_sigterm < 12,
        "SIGTERM came too late to be mid-way"
    );
    let exit = service
        .sigterm_and_wait(Duration::from_secs(60))
        .expect("the service exits after SIGTERM");

    let response = in_flight
        .join()
        .unwrap()
        .expect("the in-flight batch gets its answer");
    assert_eq!(response.status, 200);
    let entries = response.json()["entry"].as_array().cloned().unwrap();
    assert_eq!(entries.len(), 12);
    assert!(
        entries
            .iter()
            .all(|e| e["response"]["status"] == "201 Created"),
        "every entry issued"
    );
    assert_eq!(files_of(&service, "Bundle"), 12, "and stored");
    assert!(exit.success(), "exit status {exit}");
    // Gone: new connections are refused.
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_err());
    println!("SIGTERM with {stored_at_sigterm}/12 stored: the batch completed, exit {exit}");
}
