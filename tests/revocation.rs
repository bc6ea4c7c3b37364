//! Revocation (README "Revocation"): `$revokeHealthCertificate`, the revocation a correction makes, the signed
//! list at `GET /trust/revocations`, and `verify --revocation`, against the real `serve` binary on the real
//! HAPI FHIR server and on the local store. The list's format and signature are checked by an independent
//! implementation (tests/tools/check_revocations.py: Python `cryptography`, `cbor2`, `base45`).

mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::service::{event, hc1_of, resources, FhirServer, Service};

const GENERATE: &str = "/ddcc/generateHealthCertificate";
const REVOKE: &str = "/ddcc/revokeHealthCertificate";
const FHIR_REVOKE: &str = "/fhir/QuestionnaireResponse/$revokeHealthCertificate";
const API_KEY: &str = "revocation-test-key";

fn revoke_body(id: &str, reason: Option<&str>) -> Value {
    let mut parameters = vec![json!({"name": "id", "valueId": id})];
    if let Some(reason) = reason {
        parameters.push(json!({"name": "reason", "valueString": reason}));
    }
    json!({"resourceType": "Parameters", "parameter": parameters})
}

fn corrected(hcid: &str) -> Value {
    event(hcid, &[("lot", json!({"valueString": "CORRECTED-LOT"}))])
}

/// `verify <hc1> --cert <dsc> --revocation <list>`: (exit code, report).
fn verify(hc1: &str, dsc: &Path, list: &str) -> (i32, Value) {
    let out = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(["verify", hc1, "--cert"])
        .arg(dsc)
        .args(["--revocation", list])
        .output()
        .unwrap();
    let report = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "verify printed no report (exit {:?}): {}",
            out.status.code(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The independent Python check of a list: its JSON report (format, signature, which `hc1s` are listed).
fn python_check(list: &Path, dsc: &Path, hc1s: &[&str]) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/tools/check_revocations.py");
    let out = Command::new("python3")
        .arg(&script)
        .arg(list)
        .arg(dsc)
        .args(hc1s)
        .output()
        .expect("python3 (run scripts/install-test-deps)");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|_| {
        panic!(
            "the Python check printed no report: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    assert!(out.status.success(), "Python check: {report}");
    report
}

/// Saves the service's DSC (PEM) and its current revocation list into `dir`.
fn fetch_trust(service: &Service, dir: &Path) -> (std::path::PathBuf, std::path::PathBuf, String) {
    let pem = service.get("/trust/dsc.pem", None);
    assert_eq!(pem.status, 200);
    let dsc = dir.join("dsc.pem");
    std::fs::write(&dsc, &pem.body).unwrap();
    let list = service.get("/trust/revocations", None);
    assert_eq!(list.status, 200, "{}", String::from_utf8_lossy(&list.body));
    assert_eq!(
        list.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    let etag = list.header("etag").expect("an ETag");
    let path = dir.join("revocations.json");
    std::fs::write(&path, &list.body).unwrap();
    (dsc, path, etag)
}

/// Polls the list until `listed` holds (the service reads the store again every few seconds).
fn list_until(service: &Service, mut listed: impl FnMut(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let list = service.get("/trust/revocations", None).json();
        if listed(&list) {
            return list;
        }
        assert!(Instant::now() < deadline, "the list never changed: {list}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn entries(list: &Value) -> usize {
    list["batches"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|b| b["entries"].as_array().map_or(0, Vec::len))
        .sum()
}

fn search(fhir: &FhirServer, query: &str) -> Vec<Value> {
    let (status, bundle) = fhir.get(query);
    assert_eq!(status, 200, "{bundle}");
    bundle["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["resource"].clone())
        .collect()
}

#[test]
fn revocation_on_hapi_is_stored_audited_idempotent_and_published() {
    let fhir = FhirServer::start();
    let digest = hex::encode(ddcc_mediator::service::auth::digest(API_KEY));
    let service = Service::start(&[("DDCC_FHIR_URL", fhir.base()), ("DDCC_API_KEYS", digest)]);
    let dir = tempfile::tempdir().unwrap();

    let issued = service.post_json(GENERATE, Some(API_KEY), &event("REVOKE-HAPI-1", &[]));
    assert_eq!(issued.status, 201);
    let document = issued.json();
    let id = document["id"].as_str().unwrap().to_owned();
    let (who, dcc) = (hc1_of(&document, "who"), hc1_of(&document, "dcc"));

    // Issuing rights are needed; bad input names the field; an unknown id is 404.
    let anonymous = service.post_json(REVOKE, None, &revoke_body(&id, None));
    assert_eq!(anonymous.status, 401);
    let wrong = service.post_json(REVOKE, Some("not-the-key"), &revoke_body(&id, None));
    assert_eq!(wrong.status, 401);
    let invalid = service.post_json(REVOKE, Some(API_KEY), &revoke_body("../etc", None));
    assert_eq!(invalid.status, 422);
    assert!(invalid
        .outcome_text()
        .contains("Parameters.parameter.where(name='id')"));
    let unknown = service.post_json(
        REVOKE,
        Some(API_KEY),
        &revoke_body("no-such-document", None),
    );
    assert_eq!(unknown.status, 404);
    assert!(unknown.outcome_text().contains("not-found"));
    // Nothing of that changed the certificate: it verifies and is not listed.
    let (dsc, list, _) = fetch_trust(&service, dir.path());
    assert_eq!(
        entries(&serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap()),
        0
    );
    let (code, report) = verify(&who, &dsc, list.to_str().unwrap());
    assert_eq!(
        (code, &report["valid"], &report["revoked"]),
        (0, &json!(true), &json!(false))
    );

    let revoked = service.post_json(
        FHIR_REVOKE,
        Some(API_KEY),
        &revoke_body(&id, Some("issued to the wrong person")),
    );
    assert_eq!(
        revoked.status,
        200,
        "{}",
        String::from_utf8_lossy(&revoked.body)
    );
    assert_eq!(
        revoked.json(),
        json!({"resourceType": "Parameters", "parameter": [{"name": "return", "valueBoolean": true}]})
    );

    // What HAPI holds: the document tagged and its Composition entered-in-error; both QR DocumentReferences
    // and the PDF's entered-in-error; one revocation record with the reason and both QR codes.
    let (status, stored) = fhir.get(&format!("Bundle/{id}"));
    assert_eq!(status, 200);
    let version = stored["meta"]["versionId"].clone();
    assert!(stored["meta"]["tag"]
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["system"] == "urn:ddcc-mediator:revocation" && t["code"] == "revoked"));
    assert_eq!(
        resources(&stored, "Composition")[0]["status"],
        "entered-in-error"
    );
    assert_eq!(
        search(&fhir, "DocumentReference?status=entered-in-error&_count=50").len(),
        3,
        "the who and dcc QR DocumentReferences and the PDF's"
    );
    assert_eq!(
        search(&fhir, "DocumentReference?status=current&_count=50").len(),
        0
    );
    let records = search(&fhir, "Basic?code=urn:ddcc-mediator|certificate-revocation");
    assert_eq!(records.len(), 1);
    let record = records[0].to_string();
    assert!(record.contains("issued to the wrong person"), "{record}");
    assert_eq!(
        record
            .matches("urn:ddcc-mediator:revoked-credential")
            .count(),
        2
    );

    // Idempotent: true again, nothing written.
    let again = service.post_json(REVOKE, Some(API_KEY), &revoke_body(&id, Some("again")));
    assert_eq!(again.status, 200);
    assert_eq!(again.json()["parameter"][0]["valueBoolean"], true);
    assert_eq!(
        fhir.get(&format!("Bundle/{id}")).1["meta"]["versionId"],
        version
    );
    assert_eq!(
        search(&fhir, "Basic?code=urn:ddcc-mediator|certificate-revocation").len(),
        1
    );
    // Submitting the revoked event again answers the revoked document; it is not signed anew.
    let resubmitted = service.post_json(GENERATE, Some(API_KEY), &event("REVOKE-HAPI-1", &[]));
    assert_eq!(resubmitted.status, 200);
    assert_eq!(
        resources(&resubmitted.json(), "Composition")[0]["status"],
        "entered-in-error"
    );

    // Audited: each attempt, with its outcome; the successes name the document.
    let audits: Vec<Value> = search(&fhir, "AuditEvent?_count=100")
        .into_iter()
        .filter(|e| e["subtype"][0]["display"] == "$revokeHealthCertificate")
        .collect();
    let outcomes: Vec<&str> = audits
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes.iter().filter(|o| **o == "0").count(),
        2,
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes.iter().filter(|o| **o == "4").count(),
        4,
        "{outcomes:?}"
    );
    for success in audits.iter().filter(|e| e["outcome"] == "0") {
        assert_eq!(
            success["entity"][0]["what"]["reference"],
            format!("Bundle/{id}")
        );
    }

    // A correction of another event revokes the certificate it supersedes.
    let first = service
        .post_json(GENERATE, Some(API_KEY), &event("REVOKE-HAPI-2", &[]))
        .json();
    let old = hc1_of(&first, "who");
    let second = service.post_json(GENERATE, Some(API_KEY), &corrected("REVOKE-HAPI-2"));
    assert_eq!(second.status, 201);
    let new = hc1_of(&second.json(), "who");
    let superseded = search(&fhir, "Basic?code=urn:ddcc-mediator|certificate-revocation");
    assert_eq!(superseded.len(), 2);
    assert!(superseded
        .iter()
        .any(|r| r.to_string().contains("superseded by a correction")));

    // The published list (from the store, so within seconds) holds both QR codes of the revoked document
    // and both of the superseded one: one SIGNATURE batch of this issuer and key.
    let listed = list_until(&service, |l| entries(l) == 4);
    assert_eq!(listed["batches"][0]["hashType"], "SIGNATURE");
    let (dsc, list, _) = fetch_trust(&service, dir.path());
    let url = format!("{}/trust/revocations", service.url);
    for (hc1, revoked) in [(&who, true), (&dcc, true), (&old, true), (&new, false)] {
        let (code, report) = verify(hc1, &dsc, &url);
        assert_eq!(report["revoked"], revoked, "{report}");
        assert_eq!(report["valid"], !revoked, "{report}");
        assert_eq!(code, if revoked { 1 } else { 0 }, "{report}");
        if revoked {
            assert_eq!(report["error"]["stage"], "revocation", "{report}");
        }
    }
    let python = python_check(&list, &dsc, &[&who, &dcc, &old, &new]);
    assert_eq!(python["signature_valid"], true, "{python}");
    assert_eq!(
        python["revoked"],
        json!([true, true, true, false]),
        "{python}"
    );
}

#[test]
fn on_the_local_store_a_correction_revokes_the_old_certificate_and_the_list_revalidates() {
    let service = Service::start(&[]);
    let key = service.api_key();
    let dir = tempfile::tempdir().unwrap();

    let first = service.post_json(GENERATE, Some(&key), &event("REVOKE-LOCAL-1", &[]));
    assert_eq!(first.status, 201);
    let first = first.json();
    let old = hc1_of(&first, "who");
    let (dsc, list, etag) = fetch_trust(&service, dir.path());
    assert_eq!(
        python_check(&list, &dsc, &[&old])["revoked"],
        json!([false])
    );

    // 304 while nothing changed; the ETag is weak (any replica signs the same content anew).
    assert!(etag.starts_with("W/\""), "{etag}");
    let not_modified = support::service::client()
        .get(format!("{}/trust/revocations", service.url))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(not_modified.status(), 304);

    // The correction supersedes and revokes the first certificate.
    let second = service.post_json(GENERATE, Some(&key), &corrected("REVOKE-LOCAL-1"));
    assert_eq!(second.status, 201);
    let second = second.json();
    assert_eq!(
        second["id"], first["id"],
        "the same document, a new version"
    );
    let new = hc1_of(&second, "who");
    list_until(&service, |l| entries(l) == 2);
    let changed = support::service::client()
        .get(format!("{}/trust/revocations", service.url))
        .header("If-None-Match", &etag)
        .send()
        .unwrap();
    assert_eq!(changed.status(), 200, "the list changed: no 304");
    assert_ne!(changed.headers()["etag"].to_str().unwrap(), etag);

    let (dsc, list, _) = fetch_trust(&service, dir.path());
    let (code, report) = verify(&old, &dsc, list.to_str().unwrap());
    assert_eq!(code, 1, "{report}");
    assert_eq!(
        (&report["revoked"], &report["valid"]),
        (&json!(true), &json!(false))
    );
    let (code, report) = verify(&new, &dsc, list.to_str().unwrap());
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        (&report["revoked"], &report["valid"]),
        (&json!(false), &json!(true))
    );
    let python = python_check(&list, &dsc, &[&old, &new]);
    assert_eq!(python["revoked"], json!([true, false]), "{python}");
    // The public verification service answers the same from the service's own list.
    for (hc1, revoked) in [(&old, true), (&new, false)] {
        let answer = service.post("/ddcc/verify", None, "text/plain", hc1.as_bytes().to_vec());
        assert_eq!(answer.status, 200);
        let report = answer.json();
        assert_eq!(
            (&report["revoked"], &report["valid"]),
            (&json!(revoked), &json!(!revoked)),
            "{report}"
        );
    }

    // An explicit revocation on the local store: files show it, idempotent, unknown ids 404.
    let id = second["id"].as_str().unwrap();
    for _ in 0..2 {
        let revoked = service.post_json(REVOKE, Some(&key), &revoke_body(id, None));
        assert_eq!(revoked.status, 200);
        assert_eq!(revoked.json()["parameter"][0]["valueBoolean"], true);
    }
    assert_eq!(
        service
            .post_json(REVOKE, Some(&key), &revoke_body("nothing-here", None))
            .status,
        404
    );
    let stored: Value = serde_json::from_slice(
        &std::fs::read(service.data_dir.join(format!("store/Bundle/{id}.json"))).unwrap(),
    )
    .unwrap();
    assert_eq!(
        resources(&stored, "Composition")[0]["status"],
        "entered-in-error"
    );
    let basics = std::fs::read_dir(service.data_dir.join("store/Basic"))
        .unwrap()
        .count();
    assert_eq!(basics, 2, "one record per revoked version");
    list_until(&service, |l| entries(l) == 4);
    let (code, report) = verify(&new, &dsc, &format!("{}/trust/revocations", service.url));
    assert_eq!((code, &report["revoked"]), (1, &json!(true)), "{report}");

    // Correcting a revoked certificate: its references stay entered-in-error, its record keeps its reason.
    let third = event(
        "REVOKE-LOCAL-1",
        &[("lot", json!({"valueString": "THIRD-LOT"}))],
    );
    assert_eq!(service.post_json(GENERATE, Some(&key), &third).status, 201);
    for reference in resources(&second, "DocumentReference") {
        let path = service.data_dir.join(format!(
            "store/DocumentReference/{}.json",
            reference["id"].as_str().unwrap()
        ));
        let stored: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
        assert_eq!(stored["status"], "entered-in-error");
    }
    assert_eq!(
        std::fs::read_dir(service.data_dir.join("store/Basic"))
            .unwrap()
            .count(),
        2
    );

    // A list that was tampered with is refused: the certificate's status is unknown (exit 3).
    let mut tampered: Value = serde_json::from_slice(&std::fs::read(&list).unwrap()).unwrap();
    tampered["payload"] = json!("eyJiYXRjaGVzIjpbXX0");
    let forged = dir.path().join("forged.json");
    std::fs::write(&forged, tampered.to_string()).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(["verify", &old, "--cert"])
        .arg(&dsc)
        .arg("--revocation")
        .arg(&forged)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("signature"));
}

#[test]
fn replicas_on_vault_and_hapi_publish_the_same_list_signed_in_vault() {
    use support::openbao::ROOT_TOKEN;
    const TRANSIT_KEY: &str = "ddcc-revocation";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _bao = support::service::provisioned_openbao(&runtime, TRANSIT_KEY);
    let fhir = FhirServer::start();
    let env = [
        ("DDCC_SIGNER", "vault".to_owned()),
        ("VAULT_ADDR", _bao.addr()),
        ("VAULT_TOKEN", ROOT_TOKEN.to_owned()),
        ("VAULT_TRANSIT_KEY", TRANSIT_KEY.to_owned()),
        ("DDCC_FHIR_URL", fhir.base()),
        (
            "DDCC_API_KEYS",
            hex::encode(ddcc_mediator::service::auth::digest(API_KEY)),
        ),
    ];
    let link_secret = "6a".repeat(32);
    let a = Service::start_replica(&env, &link_secret);
    let b = Service::start_replica(&env, &link_secret);
    let dir = tempfile::tempdir().unwrap();

    // Issued and revoked through replica a; replica b publishes it (the list comes from the store).
    let document = a.post_json(GENERATE, Some(API_KEY), &event("REVOKE-REPLICA-1", &[]));
    assert_eq!(document.status, 201);
    let document = document.json();
    let hc1 = hc1_of(&document, "who");
    let id = document["id"].as_str().unwrap();
    let revoked = a.post_json(REVOKE, Some(API_KEY), &revoke_body(id, Some("test")));
    assert_eq!(revoked.status, 200);
    // Revoking again through the other replica: true, nothing new.
    assert_eq!(
        b.post_json(REVOKE, Some(API_KEY), &revoke_body(id, None))
            .status,
        200
    );
    list_until(&b, |l| entries(l) == 2);
    list_until(&a, |l| entries(l) == 2);

    // Both replicas name the same content with the same ETag: either answers 304 to the other's tag.
    let (dsc, list, etag_b) = fetch_trust(&b, dir.path());
    let etag_a = a.get("/trust/revocations", None).header("etag").unwrap();
    assert_eq!(etag_a, etag_b);
    let from_a = support::service::client()
        .get(format!("{}/trust/revocations", a.url))
        .header("If-None-Match", &etag_b)
        .send()
        .unwrap();
    assert_eq!(from_a.status(), 304);

    // Signed with the Vault transit key's published DSC: checked independently, and by verify.
    let python = python_check(&list, &dsc, &[&hc1]);
    assert_eq!(python["signature_valid"], true, "{python}");
    assert_eq!(python["header"]["alg"], "ES256", "{python}");
    assert_eq!(python["revoked"], json!([true]), "{python}");
    let (code, report) = verify(&hc1, &dsc, &format!("{}/trust/revocations", a.url));
    assert_eq!(
        (code, &report["revoked"], &report["valid"]),
        (1, &json!(true), &json!(false))
    );
}
