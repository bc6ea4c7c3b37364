//! Several replicas of `ddcc-mediator serve` on one FHIR server (the real HAPI), sharing the signer (OpenBao
//! transit), the link secret and the API keys, as the Helm chart runs them. Requests go round-robin over the
//! replicas, released together, so that they race:
//!
//! - identical events: one certificate signed-and-stored per event, every caller holds it;
//! - a retry landing on another replica at the same moment: the same;
//! - an original against its correction: exactly one current version, the other superseded (or refused);
//! - a stale original after its correction: 409 naming the current version, nothing changed.

mod support;

use std::collections::BTreeSet;

use serde_json::{json, Value};
use support::openbao::ROOT_TOKEN;
use support::service::{event, hc1_of, resources, FhirServer, Response, Service};

const GENERATE: &str = "/ddcc/generateHealthCertificate";
const API_KEY: &str = "replica-test-key";
const TRANSIT_KEY: &str = "ddcc-replicas";
const REPLICAS: usize = 3;

struct Cluster {
    _runtime: tokio::runtime::Runtime,
    _bao: support::openbao::OpenBao,
    fhir: FhirServer,
    replicas: Vec<Service>,
}

fn cluster() -> Cluster {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bao = support::service::provisioned_openbao(&runtime, TRANSIT_KEY);
    let fhir = FhirServer::start();
    let digest = hex::encode(ddcc_mediator::service::auth::digest(API_KEY));
    let env = [
        ("DDCC_SIGNER", "vault".to_owned()),
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_TOKEN", ROOT_TOKEN.to_owned()),
        ("VAULT_TRANSIT_KEY", TRANSIT_KEY.to_owned()),
        ("DDCC_FHIR_URL", fhir.base()),
        ("DDCC_API_KEYS", digest),
    ];
    let link_secret = "5f".repeat(32);
    let replicas = (0..REPLICAS)
        .map(|_| Service::start_replica(&env, &link_secret))
        .collect();
    Cluster {
        _runtime: runtime,
        _bao: bao,
        fhir,
        replicas,
    }
}

/// Sends each `(replica, body)` at the same moment (a barrier releases them together).
fn race(cluster: &Cluster, sends: &[(usize, &Value)]) -> Vec<Response> {
    let barrier = std::sync::Barrier::new(sends.len());
    std::thread::scope(|scope| {
        let handles: Vec<_> = sends
            .iter()
            .map(|(replica, body)| {
                let service = &cluster.replicas[*replica];
                let barrier = &barrier;
                scope.spawn(move || {
                    barrier.wait();
                    service.post_json(GENERATE, Some(API_KEY), body)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn with_authored(mut qr: Value, authored: &str) -> Value {
    qr["authored"] = json!(authored);
    qr
}

/// Every version of `Bundle/<id>` the FHIR server ever stored, oldest first: (its `who` HC1, the document).
fn stored_versions(fhir: &FhirServer, id: &str) -> Vec<(String, Value)> {
    let (status, history) = fhir.get(&format!("Bundle/{id}/_history?_count=100"));
    assert_eq!(status, 200, "{history}");
    let mut versions: Vec<(u64, Value)> = history["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let resource = e["resource"].clone();
            let version = resource["meta"]["versionId"]
                .as_str()
                .and_then(|v| v.parse().ok())
                .expect("a numeric versionId");
            (version, resource)
        })
        .collect();
    versions.sort_by_key(|(v, _)| *v);
    versions
        .into_iter()
        .map(|(_, doc)| (hc1_of(&doc, "who"), doc))
        .collect()
}

/// The QR and PDF DocumentReference ids of an answered document.
fn reference_ids(document: &Value) -> Vec<String> {
    resources(document, "DocumentReference")
        .into_iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn replicas_agree_on_one_certificate_per_event_and_one_current_version() {
    let cluster = cluster();
    let fhir = &cluster.fhir;
    let mut signed_and_stored = 0;

    // Identical events, 12 at once round-robin over the replicas, 3 rounds.
    for round in 0..3 {
        let qr = event(&format!("REPL-SAME-{round}"), &[]);
        let sends: Vec<(usize, &Value)> = (0..12).map(|i| (i % REPLICAS, &qr)).collect();
        let answers = race(&cluster, &sends);
        let created = answers.iter().filter(|r| r.status == 201).count();
        assert_eq!(created, 1, "one 201 in round {round}");
        assert!(answers.iter().all(|r| r.status == 200 || r.status == 201));
        let id = answers[0].json()["id"].as_str().unwrap().to_owned();
        let versions = stored_versions(fhir, &id);
        assert_eq!(versions.len(), 1, "signed and stored once");
        for answer in &answers {
            assert_eq!(
                hc1_of(&answer.json(), "who"),
                versions[0].0,
                "every caller holds the stored one"
            );
        }
        signed_and_stored += versions.len();
    }

    // A retry landing on another replica at the same moment, 6 rounds.
    for round in 0..6 {
        let qr = event(&format!("REPL-RETRY-{round}"), &[]);
        let answers = race(
            &cluster,
            &[(round % REPLICAS, &qr), ((round + 1) % REPLICAS, &qr)],
        );
        let mut statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
        statuses.sort();
        assert_eq!(statuses, [200, 201], "round {round}");
        let id = answers[0].json()["id"].as_str().unwrap().to_owned();
        let versions = stored_versions(fhir, &id);
        assert_eq!(versions.len(), 1);
        assert!(answers
            .iter()
            .all(|a| hc1_of(&a.json(), "who") == versions[0].0));
        signed_and_stored += versions.len();
    }

    // An original and its correction (a later `authored`) at once on two replicas, 4 rounds: whichever is
    // stored first, the correction ends up current, and exactly one version of each QR kind is current.
    for round in 0..4 {
        let hcid = format!("REPL-CORR-{round}");
        let person = ("identifier", json!({"valueString": format!("ID-{hcid}")}));
        let original = with_authored(
            event(&hcid, std::slice::from_ref(&person)),
            "2026-10-12T09:00:00Z",
        );
        let correction = with_authored(
            event(&hcid, &[person, ("lot", json!({"valueString": "FK0892"}))]),
            "2026-10-12T10:00:00Z",
        );
        let answers = race(
            &cluster,
            &[
                (round % REPLICAS, &original),
                ((round + 2) % REPLICAS, &correction),
            ],
        );
        let (a_original, a_correction) = (&answers[0], &answers[1]);
        assert_eq!(
            a_correction.status,
            201,
            "{}",
            String::from_utf8_lossy(&a_correction.body)
        );
        assert!(
            a_original.status == 201 || a_original.status == 409,
            "the original is stored first or refused as older: {}",
            a_original.status
        );
        let id = a_correction.json()["id"].as_str().unwrap().to_owned();
        let versions = stored_versions(fhir, &id);
        let current = &versions.last().unwrap().1;
        assert_eq!(hc1_of(current, "who"), hc1_of(&a_correction.json(), "who"));
        let current_refs: BTreeSet<String> =
            reference_ids(&a_correction.json()).into_iter().collect();
        if a_original.status == 201 {
            assert_eq!(versions.len(), 2, "both stored, the original first");
            assert_eq!(versions[0].0, hc1_of(&a_original.json(), "who"));
            for old in reference_ids(&a_original.json()) {
                let (_, stored) = fhir.get(&format!("DocumentReference/{old}"));
                assert_eq!(stored["status"], "superseded", "{stored}");
            }
            let replaces: Vec<&Value> = resources(current, "DocumentReference")
                .into_iter()
                .map(|r| &r["relatesTo"][0])
                .collect();
            assert!(
                replaces.iter().all(|r| r["code"] == "replaces"),
                "{replaces:?}"
            );
        } else {
            assert_eq!(versions.len(), 1, "the original was never stored");
            assert!(
                a_original.outcome_text().contains("older"),
                "{}",
                a_original.outcome_text()
            );
        }
        for id in &current_refs {
            let (_, stored) = fhir.get(&format!("DocumentReference/{id}"));
            assert_eq!(stored["status"], "current");
        }
        // One current PDF DocumentReference for this holder; with the original stored, one superseded too.
        let pdfs = |status: &str| {
            let (_, found) = fhir.get(&format!(
                "DocumentReference?type=http://loinc.org|82593-5&status={status}\
                 &subject:Patient.identifier=ID-{hcid}&_count=100"
            ));
            found["entry"].as_array().map_or(0, Vec::len)
        };
        assert_eq!(pdfs("current"), 1, "one current PDF");
        assert_eq!(pdfs("superseded"), versions.len() - 1);
        signed_and_stored += versions.len();

        // The original again, late, on any replica: older than what is current; nothing changes.
        for replica in 0..REPLICAS {
            let late = cluster.replicas[replica].post_json(GENERATE, Some(API_KEY), &original);
            assert_eq!(late.status, 409, "{}", String::from_utf8_lossy(&late.body));
            let text = late.outcome_text();
            assert!(
                text.contains(&format!("Bundle/{id}")),
                "names the current version: {text}"
            );
        }
        assert_eq!(
            stored_versions(fhir, &id).len(),
            versions.len(),
            "nothing changed"
        );
    }

    // One person's certificates for different events, at once on every replica: all issued, and the person
    // has one Patient (a conditional create in each certificate's transaction: HAPI lets one through, a
    // writer refused retries and finds it).
    let person: Vec<Value> = (0..6)
        .map(|i| {
            event(
                &format!("REPL-PERSON-{i}"),
                &[("identifier", json!({"valueString": "REPL-ONE-PERSON"}))],
            )
        })
        .collect();
    let sends: Vec<(usize, &Value)> = person
        .iter()
        .enumerate()
        .map(|(i, qr)| (i % REPLICAS, qr))
        .collect();
    let answers = race(&cluster, &sends);
    let statuses: Vec<u16> = answers.iter().map(|r| r.status).collect();
    assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
    signed_and_stored += answers.len();
    let (status, patients) = fhir.get("Patient?identifier=REPL-ONE-PERSON&_count=50");
    assert_eq!(status, 200);
    assert_eq!(
        patients["entry"].as_array().map(Vec::len),
        Some(1),
        "one Patient per person: {patients}"
    );

    // The replicas' own count agrees with the store: as many certificates issued as versions stored.
    let mut issued = 0;
    for service in &cluster.replicas {
        let metrics = String::from_utf8_lossy(&service.get("/metrics", None).body).into_owned();
        for line in metrics.lines() {
            if line.starts_with("ddcc_certificates_total{outcome=\"issued\"}")
                || line.starts_with("ddcc_certificates_total{outcome=\"reissued\"}")
            {
                issued += line
                    .rsplit(' ')
                    .next()
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap() as usize;
            }
        }
    }
    assert_eq!(
        issued, signed_and_stored,
        "issued across replicas = versions stored"
    );
    println!(
        "{REPLICAS} replicas: {signed_and_stored} races settled with one stored certificate each"
    );
}

#[test]
fn a_correction_without_authored_times_is_ordered_by_arrival_and_never_undone() {
    let cluster = cluster();
    let original = event("REPL-ARRIVAL-1", &[]);
    let correction = event(
        "REPL-ARRIVAL-1",
        &[("lot", json!({"valueString": "FK0892"}))],
    );
    let first = cluster.replicas[0].post_json(GENERATE, Some(API_KEY), &original);
    assert_eq!(first.status, 201);
    let second = cluster.replicas[1].post_json(GENERATE, Some(API_KEY), &correction);
    assert_eq!(second.status, 201);
    // A late retry of the original, on the replica that issued it and on another: the correction stays.
    for replica in [0, 2] {
        let late = cluster.replicas[replica].post_json(GENERATE, Some(API_KEY), &original);
        assert_eq!(late.status, 409, "{}", String::from_utf8_lossy(&late.body));
    }
    let id = second.json()["id"].as_str().unwrap().to_owned();
    let versions = stored_versions(&cluster.fhir, &id);
    assert_eq!(versions.len(), 2);
    assert_eq!(versions[1].0, hc1_of(&second.json(), "who"));
    // Citizen links answer the same on every replica (shared link secret, one store).
    let link = second.json()["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "certificate")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = &link[link.find("/certificates/").unwrap()..];
    for service in &cluster.replicas {
        let pdf = service.get(path, None);
        assert_eq!(pdf.status, 200);
        assert!(pdf.body.starts_with(b"%PDF"));
    }
}
