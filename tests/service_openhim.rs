//! `ddcc-mediator serve` as an OpenHIM mediator, against a real openhim-core (4.0.5 on CongoDB): registration,
//! default channel, heartbeat, a client going through OpenHIM's router, the transaction log, live config.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use sha2::{Digest, Sha512};
use support::service::{batch, event, hc1_of, FhirServer, OpenHim, Service};

const URN: &str = "urn:mediator:ddcc-mediator";
const ROOT: &str = "root@openhim.org";
const ROOT_PASSWORD: &str = "openhim-password";

fn sha512_hex(text: &str) -> String {
    hex::encode(Sha512::digest(text.as_bytes()))
}

/// The OpenHIM API as an administrator (token authentication, fresh headers per request).
struct Api {
    base: String,
    http: reqwest::blocking::Client,
}

impl Api {
    fn new(base: &str) -> Self {
        Api {
            base: base.to_owned(),
            http: reqwest::blocking::Client::builder()
                .danger_accept_invalid_certs(true)
                .timeout(Duration::from_secs(30))
                .build()
                .unwrap(),
        }
    }

    fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, String) {
        let auth: Value = self
            .http
            .get(format!("{}/authenticate/{ROOT}", self.base))
            .send()
            .unwrap()
            .json()
            .unwrap();
        let passhash = sha512_hex(&format!(
            "{}{ROOT_PASSWORD}",
            auth["salt"].as_str().unwrap()
        ));
        let salt = uuid::Uuid::new_v4().to_string();
        let ts = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap();
        let mut request = self
            .http
            .request(method, format!("{}{path}", self.base))
            .header("auth-username", ROOT)
            .header("auth-ts", &ts)
            .header("auth-salt", &salt)
            .header("auth-token", sha512_hex(&format!("{passhash}{salt}{ts}")));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        (
            response.status().as_u16(),
            response.text().unwrap_or_default(),
        )
    }

    fn get_json(&self, path: &str) -> (u16, Value) {
        let (status, text) = self.call(reqwest::Method::GET, path, None);
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Polls `check` every 500 ms until it returns `Some`, for at most `limit`.
fn eventually<T>(what: &str, limit: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "{what} did not happen within {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// exp − iat of an HC1, in days, through the CLI's verifier trusting the published DSC.
fn validity_days(hc1: &str, dsc_pem: &std::path::Path) -> i64 {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(["verify", hc1, "--cert"])
        .arg(dsc_pem)
        .output()
        .unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["valid"], true, "{report}");
    (report["exp"].as_i64().unwrap() - report["iat"].as_i64().unwrap()) / 86_400
}

/// The example holder's personal data (examples/vaccination-event.json, used by `event`), and the prefix of
/// any signed certificate: none of it may stay in OpenHIM's transaction log.
const PERSONAL: [&str; 5] = ["Durand", "Zoë", "1990-02-14", "EXAMPLE-ID-123456", "HC1:"];

/// Everything in `value` as text, with byte buffers decoded: OpenHIM stores a body it kept as bytes as BSON
/// Binary, which its API shows as `{"buffer": {"0": 123, "1": 34, …}}` (or Node's `{"type": "Buffer", "data":
/// […]}`), where a plain text search would miss it.
fn searchable(value: &Value, out: &mut String) {
    let bytes_of = |v: &Value| -> Option<Vec<u8>> {
        match v {
            Value::Object(map)
                if !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok()) =>
            {
                let mut pairs: Vec<(usize, u8)> = map
                    .iter()
                    .filter_map(|(k, b)| Some((k.parse().ok()?, u8::try_from(b.as_u64()?).ok()?)))
                    .collect();
                pairs.sort();
                Some(pairs.into_iter().map(|(_, b)| b).collect())
            }
            Value::Array(items) if !items.is_empty() && items.iter().all(Value::is_u64) => Some(
                items
                    .iter()
                    .filter_map(|b| u8::try_from(b.as_u64()?).ok())
                    .collect(),
            ),
            _ => None,
        }
    };
    match value {
        Value::String(text) => {
            out.push_str(text);
            out.push('\n');
        }
        Value::Object(map) => {
            for (key, v) in map {
                if matches!(key.as_str(), "buffer" | "data") {
                    if let Some(bytes) = bytes_of(v) {
                        out.push_str(&String::from_utf8_lossy(&bytes));
                        out.push('\n');
                        continue;
                    }
                }
                searchable(v, out);
            }
        }
        Value::Array(items) => items.iter().for_each(|v| searchable(v, out)),
        _ => {}
    }
}

/// Waits until OpenHIM's transaction log (every transaction, bodies included) holds none of [`PERSONAL`];
/// fails naming what stayed and where.
fn transaction_log_without_personal_data(api: &Api) -> Value {
    let mut last = (String::new(), Value::Null);
    for _ in 0..60 {
        let (status, transactions) = api.get_json("/transactions?filterRepresentation=full");
        assert_eq!(status, 200);
        let mut text = transactions.to_string();
        text.push('\n');
        searchable(&transactions, &mut text);
        let found: Vec<&str> = PERSONAL
            .iter()
            .copied()
            .filter(|p| text.contains(p))
            .collect();
        if found.is_empty() {
            return transactions;
        }
        last = (found.join(", "), transactions);
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!(
        "OpenHIM's transaction log still holds {} after 30 s:\n{:#}",
        last.0, last.1
    );
}

#[test]
fn registers_routes_logs_and_reconfigures_through_openhim() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bao = support::service::provisioned_openbao(&runtime, "ddcc-openhim-test");
    let openhim = OpenHim::start();
    let mut fhir = FhirServer::start();
    let service = Service::start(&[
        ("DDCC_SIGNER", "vault".into()),
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_TOKEN", support::openbao::ROOT_TOKEN.into()),
        ("VAULT_TRANSIT_KEY", "ddcc-openhim-test".into()),
        ("OPENHIM_URL", openhim.api.clone()),
        ("OPENHIM_USERNAME", ROOT.into()),
        ("OPENHIM_PASSWORD", ROOT_PASSWORD.into()),
        ("OPENHIM_TRUST_SELF_SIGNED", "true".into()),
        ("DDCC_MEDIATOR_HOST", "127.0.0.1".into()),
        ("DDCC_FHIR_URL", fhir.base()),
    ]);
    let api = Api::new(&openhim.api);

    // Registered, with our version and live-config definitions.
    let mediator = eventually("registration", Duration::from_secs(60), || {
        let (status, m) = api.get_json(&format!("/mediators/{URN}"));
        (status == 200).then_some(m)
    });
    assert_eq!(mediator["version"], env!("CARGO_PKG_VERSION"));
    let params: Vec<&str> = mediator["configDefs"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d["param"].as_str())
        .collect();
    assert!(params.contains(&"validityDays"), "{params:?}");
    // Default channel installed, storing no bodies; heartbeat seen.
    let channel = eventually("channel install", Duration::from_secs(30), || {
        let (_, channels) = api.get_json("/channels");
        channels
            .as_array()?
            .iter()
            .find(|c| c["name"] == "DDCC Mediator")
            .cloned()
    });
    assert_eq!(channel["requestBody"], false, "{channel}");
    assert_eq!(channel["responseBody"], false, "{channel}");
    eventually("heartbeat", Duration::from_secs(30), || {
        let heartbeat: Value = reqwest::blocking::Client::builder()
            .danger_accept_invalid_certs(true)
            .build()
            .unwrap()
            .get(format!("{}/heartbeat", openhim.api))
            .send()
            .ok()?
            .json()
            .ok()?;
        heartbeat["mediators"][URN].as_f64()
    });

    // A client with the channel's role posts a batch through the router with Basic auth.
    let client_salt = "4f1c2a9e";
    let client_password = "facility-password";
    let (status, text) = api.call(
        reqwest::Method::POST,
        "/clients",
        Some(json!({
            "clientID": "facility-a",
            "name": "Facility A",
            "roles": ["ddcc"],
            "passwordAlgorithm": "sha512",
            "passwordSalt": client_salt,
            "passwordHash": sha512_hex(&format!("{client_password}{client_salt}")),
        })),
    );
    assert_eq!(status, 201, "{text}");
    let router = support::service::client();
    let post_via_openhim = |path: &str, body: &Value| {
        eventually("routing through OpenHIM", Duration::from_secs(20), || {
            let r = router
                .post(format!("{}{path}", openhim.router_http))
                .basic_auth("facility-a", Some(client_password))
                .header("Content-Type", "application/fhir+json")
                .json(body)
                .send()
                .ok()?;
            // 401 until OpenHIM's channel/client cache refreshes (about a second).
            (r.status().as_u16() != 401).then(|| support::service::Response::from(r))
        })
    };
    let answer = post_via_openhim(
        "/ddcc/submitHealthEvent",
        &batch(vec![event("SVC-OH-0001", &[]), event("SVC-OH-0002", &[])]),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    assert!(answer.header("content-type").unwrap().contains("fhir+json"));
    let bundle = answer.json();
    assert_eq!(bundle["type"], "batch-response");
    for entry in bundle["entry"].as_array().unwrap() {
        assert_eq!(entry["response"]["status"], "201 Created");
        assert!(hc1_of(&entry["resource"], "who").starts_with("HC1:"));
    }
    // The audit trail names the OpenHIM client on whose behalf OpenHIM called (X-OpenHIM-ClientID).
    let (_, audits) = fhir.get("AuditEvent?_count=50");
    let on_behalf = audits["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["resource"]["agent"][1]["who"]["identifier"]["value"] == "facility-a")
        .count();
    assert_eq!(on_behalf, 2, "one AuditEvent per batch entry: {audits}");
    // OpenHIM's transaction log keeps no personal data of the batch: the channel stores no bodies, and the
    // service removes the ones OpenHIM's router keeps anyway (its record of the route, the client's
    // Authorization header). The metadata stays.
    let transactions = transaction_log_without_personal_data(&api);
    let batch_tx = transactions
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["request"]["path"] == "/ddcc/submitHealthEvent")
        .expect("the batch's transaction");
    assert_eq!(batch_tx["status"], "Successful", "{batch_tx}");
    assert!(
        batch_tx["request"]["headers"]
            .get("authorization")
            .is_none(),
        "{batch_tx}"
    );
    // Errors keep their status through OpenHIM.
    let bad = post_via_openhim(
        "/ddcc/generateHealthCertificate",
        &event("SVC-OH-0003", &[("dose", json!({"valueInteger": 0}))]),
    );
    assert_eq!(bad.status, 422);
    assert!(bad.outcome_text().contains("linkId='dose'"));

    // The transaction log: our status and orchestrations (the Vault and FHIR calls).
    let (_, transactions) = api.get_json("/transactions?filterRepresentation=full");
    let ours: Vec<&Value> = transactions
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["request"]["path"] == "/ddcc/submitHealthEvent")
        .collect();
    assert_eq!(ours.len(), 1, "{transactions}");
    assert_eq!(ours[0]["status"], "Successful");
    let names: Vec<&str> = ours[0]["orchestrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    // One transaction per certificate, or more: the two entries share their Patient and Organization, and
    // when their writes collide on HAPI (409) the loser reads again and writes once more.
    assert!(
        names.iter().filter(|n| **n == "FHIR transaction").count() >= 2,
        "{names:?}"
    );
    // One transit call per certificate, its two payloads in one batch; a write conflict reuses the signature.
    assert_eq!(
        names.iter().filter(|n| **n == "Vault transit sign").count(),
        2,
        "each certificate signed in one Vault call: {names:?}"
    );
    let signing = ours[0]["orchestrations"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == "Vault transit sign")
        .unwrap();
    assert_eq!(signing["request"]["port"], bao.port);
    assert_eq!(
        signing["request"]["path"],
        "/v1/transit/sign/ddcc-openhim-test"
    );
    assert_eq!(signing["response"]["status"], 200);
    // Each FHIR transaction was stored (200) or lost a write race and was repeated (409).
    let transactions_sent: Vec<&Value> = ours[0]["orchestrations"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|o| o["name"] == "FHIR transaction")
        .collect();
    for orchestration in &transactions_sent {
        assert_eq!(orchestration["request"]["method"], "POST");
        assert_eq!(orchestration["request"]["port"], fhir.port);
        let status = &orchestration["response"]["status"];
        assert!(status == 200 || status == 409, "{orchestration}");
    }
    let stored = transactions_sent
        .iter()
        .filter(|o| o["response"]["status"] == 200)
        .count();
    assert_eq!(stored, 2, "one stored transaction per certificate");
    let failed: Vec<&Value> = transactions
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["request"]["path"] == "/ddcc/generateHealthCertificate")
        .collect();
    assert_eq!(failed[0]["status"], "Completed");
    assert_eq!(failed[0]["response"]["status"], 422);

    // A configuration change in OpenHIM reaches the service with the next heartbeat.
    let key = service.api_key();
    let dsc = service.data_dir.join("published-dsc.pem");
    std::fs::write(&dsc, &service.get("/trust/dsc.pem", None).body).unwrap();
    let dsc_pem = dsc;
    let first = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        &event("SVC-OH-0100", &[]),
    );
    // 365 days, or a little less: exp never passes the DSC's notAfter (the dev DSC lives 365 days).
    let before = validity_days(&hc1_of(&first.json(), "who"), &dsc_pem);
    assert!((360..=365).contains(&before), "{before}");
    let (status, text) = api.call(
        reqwest::Method::PUT,
        &format!("/mediators/{URN}/config"),
        Some(json!({"validityDays": 30, "hcertKey": "3", "emitDcc": true, "issuerName": ""})),
    );
    assert_eq!(status, 200, "{text}");
    let mut n = 0;
    eventually("the new validity", Duration::from_secs(40), || {
        n += 1;
        let r = service.post_json(
            "/ddcc/generateHealthCertificate",
            Some(&key),
            &event(&format!("SVC-OH-02{n:02}"), &[]),
        );
        (validity_days(&hc1_of(&r.json(), "who"), &dsc_pem) == 30).then_some(())
    });
    assert!(service
        .log_text()
        .contains("applied configuration from OpenHIM"));

    // A dependency outage: the client gets the 503; OpenHIM logs the transaction as Failed, with the error.
    fhir.stop();
    let down = post_via_openhim(
        "/ddcc/generateHealthCertificate",
        &event("SVC-OH-0300", &[]),
    );
    assert_eq!(down.status, 503);
    assert!(down.outcome_text().contains("FHIR server"));
    let (_, transactions) = api.get_json("/transactions?filterRepresentation=full");
    let failed = transactions
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["response"]["status"] == 503)
        .expect("the failed transaction is logged");
    assert_eq!(failed["status"], "Failed");
    assert!(
        failed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("FHIR server"),
        "{failed}"
    );
    // Every transaction of the test, failed ones included, ends without personal data.
    transaction_log_without_personal_data(&api);
    drop(service);
    drop(openhim);
}

/// Three replicas registering with one OpenHIM at once: one mediator, one channel; a configuration change
/// in the console reaches every replica within a heartbeat period, not only the one whose heartbeat came
/// first. (Each replica keeps its own local store and development key here: only OpenHIM is shared, which
/// is all this test is about.)
#[test]
fn every_replica_follows_a_console_config_change() {
    let openhim = OpenHim::start();
    let replicas: Vec<Service> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..3)
            .map(|_| {
                scope.spawn(|| {
                    Service::start(&[
                        ("OPENHIM_URL", openhim.api.clone()),
                        ("OPENHIM_USERNAME", ROOT.into()),
                        ("OPENHIM_PASSWORD", ROOT_PASSWORD.into()),
                        ("OPENHIM_TRUST_SELF_SIGNED", "true".into()),
                        ("DDCC_MEDIATOR_HOST", "127.0.0.1".into()),
                    ])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let api = Api::new(&openhim.api);
    eventually("every replica registered", Duration::from_secs(60), || {
        replicas
            .iter()
            .all(|r| r.log_text().contains("registered with OpenHIM"))
            .then_some(())
    });
    let (_, channels) = api.get_json("/channels");
    let ours = channels
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["name"] == "DDCC Mediator")
        .count();
    assert_eq!(ours, 1, "one default channel: {channels}");
    let (_, mediators) = api.get_json("/mediators");
    let registered = mediators
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["urn"] == URN)
        .count();
    // OpenHIM upserts a registration by URN, and its schema makes `urn` unique (openhim-core
    // lib/model/mediators.js), which MongoDB enforces: replicas registering at once leave one document, the
    // loser's insert fails and its retry updates. The CongoDB test database does not enforce unique indexes
    // under concurrent inserts, so here a race can leave two documents with our URN; both are ours and
    // every replica heartbeats against the URN.
    assert!(registered >= 1, "registered");

    let (status, text) = api.call(
        reqwest::Method::PUT,
        &format!("/mediators/{URN}/config"),
        Some(json!({"validityDays": 30, "hcertKey": "3", "emitDcc": true, "issuerName": ""})),
    );
    assert_eq!(status, 200, "{text}");
    // One heartbeat period (10 s), plus the time to issue and check.
    eventually(
        "every replica on the new settings",
        Duration::from_secs(25),
        || {
            replicas
                .iter()
                .all(|r| r.log_text().contains("applied configuration from OpenHIM"))
                .then_some(())
        },
    );
    for (i, replica) in replicas.iter().enumerate() {
        let dsc = replica.data_dir.join("published-dsc.pem");
        std::fs::write(&dsc, &replica.get("/trust/dsc.pem", None).body).unwrap();
        let issued = replica.post_json(
            "/ddcc/generateHealthCertificate",
            Some(&replica.api_key()),
            &event(&format!("SVC-OH-REPL-{i}"), &[]),
        );
        assert_eq!(issued.status, 201);
        assert_eq!(
            validity_days(&hc1_of(&issued.json(), "who"), &dsc),
            30,
            "replica {i}"
        );
    }
}
