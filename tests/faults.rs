//! Dependency faults while `ddcc-mediator serve` runs: Vault slow, sealed and down; the FHIR server slow,
//! answering 500, failing only the transaction, and down; OpenHIM down. Each time: 503 with `Retry-After`
//! naming the dependency, `/health/ready` 503 with the reason, no certificate half-stored or handed out
//! unstored, and full recovery when the dependency returns.
//!
//! The servers are real (OpenBao, HAPI FHIR). Slowness and 500s come from [`FaultProxy`], a
//! test double: an HTTP/1.1 proxy on loopback in front of the real server that forwards each request, or
//! delays it, or answers it with a 500 itself, or drops the connection.

mod support;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use support::openbao::{OpenBao, ROOT_TOKEN};
use support::service::{event, FhirServer, Response, Service};

const API_KEY: &str = "faults-test-key";
const TRANSIT_KEY: &str = "ddcc-faults-test";
const GENERATE: &str = "/ddcc/generateHealthCertificate";

/// What the proxy does with each request.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Forward,
    /// Forwards after this delay.
    Delay(Duration),
    /// Answers 500 with an OperationOutcome, without forwarding.
    Error500,
    /// Answers 500 to FHIR `transaction`s (POST to the base), forwards everything else.
    FailTransactions,
    /// Closes the connection without answering.
    Drop,
}

/// Test double: an HTTP/1.1 fault-injecting proxy on 127.0.0.1 in front of `upstream` (one request per
/// connection upstream, `Connection: close`).
struct FaultProxy {
    port: u16,
    mode: Arc<Mutex<Mode>>,
}

impl FaultProxy {
    fn start(upstream_port: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let mode = Arc::new(Mutex::new(Mode::Forward));
        let shared = Arc::clone(&mode);
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let mode = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve_connection(client, upstream_port, &mode);
                });
            }
        });
        FaultProxy { port, mode }
    }

    fn set(&self, mode: Mode) {
        *self.mode.lock().unwrap() = mode;
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Reads one request (head and Content-Length body); `None` at end of stream.
fn read_request(client: &mut TcpStream) -> std::io::Result<Option<(String, Vec<u8>)>> {
    let mut data = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    let head_end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        let n = client.read(&mut buf)?;
        if n == 0 {
            return Ok(None);
        }
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end + 4..].to_vec();
    while body.len() < length {
        let n = client.read(&mut buf)?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&buf[..n]);
    }
    Ok(Some((head, body)))
}

fn serve_connection(
    mut client: TcpStream,
    upstream_port: u16,
    mode: &Mutex<Mode>,
) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(60)))?;
    let Some((head, body)) = read_request(&mut client)? else {
        return Ok(());
    };
    let mode = *mode.lock().unwrap();
    let request_line = head.lines().next().unwrap_or_default().to_owned();
    let is_transaction = request_line.starts_with("POST ")
        && request_line
            .split_whitespace()
            .nth(1)
            .is_some_and(|p| p.trim_end_matches('/').ends_with("/fhir"));
    match mode {
        Mode::Drop => return Ok(()),
        Mode::Error500 => return answer_500(&mut client),
        Mode::FailTransactions if is_transaction => return answer_500(&mut client),
        Mode::Delay(d) => std::thread::sleep(d),
        Mode::Forward | Mode::FailTransactions => {}
    }
    let mut upstream = TcpStream::connect(("127.0.0.1", upstream_port))?;
    let mut forwarded: String = head
        .split("\r\n")
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    forwarded.push_str("Connection: close\r\n\r\n");
    upstream.write_all(forwarded.as_bytes())?;
    upstream.write_all(&body)?;
    let mut answer = Vec::new();
    upstream.read_to_end(&mut answer)?;
    client.write_all(&answer)?;
    client.flush()
}

fn answer_500(client: &mut TcpStream) -> std::io::Result<()> {
    let body = br#"{"resourceType":"OperationOutcome","issue":[{"severity":"error","code":"exception","diagnostics":"injected fault"}]}"#;
    let head = format!(
        "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/fhir+json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    client.write_all(head.as_bytes())?;
    client.write_all(body)?;
    client.flush()
}

fn digest() -> String {
    hex::encode(ddcc_mediator::service::auth::digest(API_KEY))
}

fn generate(service: &Service, qr: &Value) -> Response {
    service.post_json(GENERATE, Some(API_KEY), qr)
}

/// A 503 naming `dependency`, with Retry-After.
fn assert_unavailable(r: &Response, dependency: &str) {
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("retry-after").is_some(), "Retry-After");
    let text = r.outcome_text();
    assert!(text.contains(dependency), "names {dependency}: {text}");
}

/// `/health/ready` is 503 and gives `check` a reason.
fn assert_not_ready(service: &Service, check: &str) {
    let r = service.get("/health/ready", None);
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    let reason = &r.json()["problems"][check];
    assert!(reason.is_string(), "a reason for {check}: {}", r.json());
}

/// The FHIR server holds whole certificates only: per stored document Bundle, its three
/// DocumentReferences (who, dcc, PDF), its Immunization, its PDF Binary and its kept-event Binary, and
/// nothing else.
fn assert_whole_certificates(fhir: &FhirServer, expected: usize) {
    assert_eq!(fhir.count("Bundle"), expected, "document Bundles");
    assert_eq!(fhir.count("DocumentReference"), 3 * expected);
    assert_eq!(fhir.count("Immunization"), expected);
    assert_eq!(fhir.count("Binary"), 2 * expected);
    assert_eq!(fhir.count("Composition"), expected);
}

#[test]
fn fhir_server_slow_500_partial_and_down_then_recovers() {
    let mut fhir = FhirServer::start();
    let proxy = FaultProxy::start(fhir.port);
    let service = Service::start(&[
        ("DDCC_FHIR_URL", format!("{}/fhir", proxy.url())),
        ("DDCC_OUTBOUND_TIMEOUT", "2".into()),
        ("DDCC_API_KEYS", digest()),
    ]);
    let qr = event("FAULT-FHIR-1", &[]);
    let mut survived = 0;

    // Answering 500 to everything.
    proxy.set(Mode::Error500);
    assert_unavailable(&generate(&service, &qr), "FHIR server");
    assert_not_ready(&service, "store");
    assert_whole_certificates(&fhir, 0);
    survived += 1;

    // Failing only the transaction (the Patient is created in it, so nothing at all is stored).
    proxy.set(Mode::FailTransactions);
    assert_unavailable(&generate(&service, &qr), "FHIR server");
    assert_whole_certificates(&fhir, 0);
    assert_eq!(
        fhir.count("Patient"),
        0,
        "the Patient is stored with its certificate or not at all"
    );
    survived += 1;

    // Slower than the outbound timeout (DDCC_OUTBOUND_TIMEOUT=2).
    proxy.set(Mode::Delay(Duration::from_secs(4)));
    assert_unavailable(&generate(&service, &qr), "FHIR server");
    survived += 1;

    // Connections dropped.
    proxy.set(Mode::Drop);
    assert_unavailable(&generate(&service, &qr), "FHIR server");
    assert_not_ready(&service, "store");
    survived += 1;

    // The real server down.
    proxy.set(Mode::Forward);
    let port = fhir.port;
    fhir.stop();
    assert_unavailable(&generate(&service, &qr), "FHIR server");
    assert_not_ready(&service, "store");
    survived += 1;
    // A delayed request from the slow phase may still have reached the old server; it is gone now.
    let fhir = FhirServer::start_on(port);

    // Recovery: issued and stored whole; the handed-out document is the stored one.
    let r = generate(&service, &qr);
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let document = r.json();
    let (status, stored) = fhir.get(&format!("Bundle/{}", document["id"].as_str().unwrap()));
    assert_eq!(status, 200);
    support::service::assert_stored_as_issued(&stored, &document);
    assert_whole_certificates(&fhir, 1);
    assert_eq!(fhir.count("Patient"), 1);
    assert_eq!(service.get("/health/ready", None).status, 200);
    assert_eq!(generate(&service, &qr).status, 200, "the same event again");
    assert_whole_certificates(&fhir, 1);
    let metrics = String::from_utf8_lossy(&service.get("/metrics", None).body).into_owned();
    assert!(metrics.contains("dependency=\"fhir\""), "{metrics}");
    println!("FHIR faults survived: {survived}; certificates lost: 0");
}

/// Unseals a sealed dev server with the unseal key it printed at start.
fn unseal(runtime: &tokio::runtime::Runtime, bao: &OpenBao) {
    let log = bao.log_text();
    let key = log
        .lines()
        .find_map(|l| l.trim().strip_prefix("Unseal Key:"))
        .map(|k| k.trim().to_owned())
        .unwrap_or_else(|| panic!("no unseal key in the dev server log:\n{log}"));
    runtime.block_on(bao.api(
        reqwest::Method::PUT,
        "sys/unseal",
        Some(serde_json::json!({"key": key})),
    ));
}

#[test]
fn vault_slow_sealed_and_down_then_recovers() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bao = support::service::provisioned_openbao(&runtime, TRANSIT_KEY);
    let proxy = FaultProxy::start(bao.port);
    let service = Service::start(&[
        ("DDCC_SIGNER", "vault".into()),
        ("VAULT_ADDR", proxy.url()),
        ("VAULT_TOKEN", ROOT_TOKEN.into()),
        ("VAULT_TRANSIT_KEY", TRANSIT_KEY.into()),
        ("VAULT_TIMEOUT", "2".into()),
        ("DDCC_API_KEYS", digest()),
    ]);
    let mut survived = 0;
    let mut n = 0;
    let mut next = || {
        n += 1;
        event(&format!("FAULT-VAULT-{n}"), &[])
    };

    // Slower than VAULT_TIMEOUT.
    proxy.set(Mode::Delay(Duration::from_secs(4)));
    assert_unavailable(&generate(&service, &next()), "Vault");
    assert_not_ready(&service, "signer");
    assert!(service.stored_files().is_empty(), "nothing stored");
    survived += 1;

    // Answering 500.
    proxy.set(Mode::Error500);
    assert_unavailable(&generate(&service, &next()), "Vault");
    assert!(service.stored_files().is_empty());
    survived += 1;

    // Sealed (the real server).
    proxy.set(Mode::Forward);
    runtime.block_on(bao.api(reqwest::Method::PUT, "sys/seal", None));
    assert_unavailable(&generate(&service, &next()), "Vault");
    assert_not_ready(&service, "signer");
    assert!(service.stored_files().is_empty());
    survived += 1;
    unseal(&runtime, &bao);

    // Down.
    proxy.set(Mode::Drop);
    assert_unavailable(&generate(&service, &next()), "Vault");
    assert!(service.stored_files().is_empty());
    survived += 1;

    // Recovery.
    proxy.set(Mode::Forward);
    let r = generate(&service, &next());
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    let bundles = service
        .stored_files()
        .into_iter()
        .filter(|p| p.to_string_lossy().contains("/Bundle/"))
        .count();
    assert_eq!(bundles, 1, "only the certificate handed out is stored");
    assert_eq!(service.get("/health/ready", None).status, 200);
    println!("Vault faults survived: {survived}; certificates lost: 0");
}

#[test]
fn openhim_down_registration_retries_and_the_service_keeps_serving() {
    let closed = support::service::free_port();
    let service = Service::start(&[
        ("OPENHIM_URL", format!("https://127.0.0.1:{closed}")),
        ("OPENHIM_USERNAME", "root@openhim.org".into()),
        ("OPENHIM_PASSWORD", "password".into()),
        ("DDCC_OUTBOUND_TIMEOUT", "1".into()),
        ("DDCC_API_KEYS", digest()),
    ]);
    // Serves while registration fails.
    let r = generate(&service, &event("FAULT-HIM-1", &[]));
    assert_eq!(r.status, 201, "{}", String::from_utf8_lossy(&r.body));
    assert_eq!(service.get("/health/ready", None).status, 200);
    // Retries, with growing waits.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while service
        .log_text()
        .matches("OpenHIM registration failed")
        .count()
        < 3
    {
        assert!(
            std::time::Instant::now() < deadline,
            "{}",
            service.log_text()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(generate(&service, &event("FAULT-HIM-2", &[])).status, 201);
    let metrics = String::from_utf8_lossy(&service.get("/metrics", None).body).into_owned();
    assert!(metrics.contains("dependency=\"openhim\""), "{metrics}");
}

#[test]
fn a_full_disk_is_a_503_naming_the_store_with_whole_audit_lines_and_no_temporary_files() {
    // Every file limited to 12 kB: the keys and secrets fit, a certificate's PDF (about 17 kB) and its
    // document (about 17 kB) do not, and the audit trail fills up after a few dozen events.
    let service = Service::start_with_file_size_limit(
        &[
            ("DDCC_API_KEYS", digest()),
            ("DDCC_AUDIT_REFUSAL_RATE", "off".into()),
        ],
        12 * 1024,
    );
    let mut audit_failed = false;
    for i in 0..40 {
        let r = generate(&service, &event(&format!("FAULT-DISK-{i:02}"), &[]));
        assert_unavailable(&r, "local store");
        audit_failed |= service.log_text().contains("AuditEvent not recorded");
    }
    assert!(
        audit_failed,
        "the audit trail never filled up: raise the count"
    );
    // Nothing stored, nothing staged left behind, every audit line whole.
    assert!(
        service.stored_files().is_empty(),
        "{:?}",
        service.stored_files()
    );
    let staged = std::fs::read_dir(service.data_dir.join("store/.tmp"))
        .unwrap()
        .count();
    assert_eq!(staged, 0, "temporary files left");
    let trail = std::fs::read_to_string(service.data_dir.join("audit.jsonl")).unwrap();
    assert!(trail.ends_with('\n'));
    for line in trail.lines() {
        let event: Value = serde_json::from_str(line).expect("whole audit lines");
        assert_eq!(event["outcome"], "8", "a dependency failure");
    }
}
