//! Observability of `ddcc-mediator serve` (README "Observability"): the real binary exports its spans over
//! OTLP/HTTP to a receiver this test runs on 127.0.0.1, continues the caller's W3C trace, writes JSON logs with
//! trace ids, and lets no personal data into spans or logs.

mod support;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::{json, Value};
use support::service::{client, event, Service};

/// A minimal OTLP/HTTP receiver: `POST /v1/traces` with a protobuf body, answered `200`.
struct Receiver {
    endpoint: String,
    requests: Arc<Mutex<Vec<ExportTraceServiceRequest>>>,
}

impl Receiver {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&requests);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let sink = Arc::clone(&sink);
                std::thread::spawn(move || serve_connection(stream, &sink));
            }
        });
        Receiver { endpoint, requests }
    }

    fn spans(&self) -> Vec<Span> {
        let requests = self.requests.lock().unwrap();
        let mut spans = Vec::new();
        for request in requests.iter() {
            for resource in &request.resource_spans {
                for scope in &resource.scope_spans {
                    spans.extend(scope.spans.iter().cloned());
                }
            }
        }
        spans
    }

    /// Everything received, as text: every name, attribute and event, to search for data that must not be
    /// there.
    fn all_text(&self) -> String {
        format!("{:?}", self.requests.lock().unwrap())
    }
}

/// HTTP/1.1 with keep-alive: one request after another until the client closes.
fn serve_connection(stream: TcpStream, sink: &Mutex<Vec<ExportTraceServiceRequest>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0usize;
        let mut content_type = String::new();
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let line = line.trim_end();
            if line.is_empty() {
                break;
            }
            if let Some((name, value)) = line.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "content-type" => content_type = value.trim().to_owned(),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let accepted = request_line.starts_with("POST /v1/traces ")
            && content_type == "application/x-protobuf";
        let status = match ExportTraceServiceRequest::decode(body.as_slice()) {
            Ok(request) if accepted => {
                sink.lock().unwrap().push(request);
                "200 OK"
            }
            _ => "400 Bad Request",
        };
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/x-protobuf\r\nContent-Length: 0\r\n\r\n"
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}

fn attribute(span: &Span, key: &str) -> Option<AnyValue> {
    span.attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| a.value.as_ref())
        .and_then(|v| v.value.clone())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Data from the submitted event that may appear nowhere.
const NAME: &str = "Quirinus Telemetrovic";
const BIRTH_DATE: &str = "1961-07-29";
const IDENTIFIER: &str = "TLM-ID-908172";
const LOT: &str = "LOT-TLM-5521";
const HCID: &str = "TLM-HCID-3141";

const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CALLER_SPAN_ID: &str = "00f067aa0ba902b7";

#[test]
fn spans_reach_an_otlp_receiver_with_the_callers_trace_and_no_personal_data() {
    let receiver = Receiver::start();
    let mut service = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()),
        ("DDCC_LOG_FORMAT", "json".into()),
    ]);
    let key = service.api_key();
    let submitted = event(
        HCID,
        &[
            ("name", json!({"valueString": NAME})),
            ("birthDate", json!({"valueDate": BIRTH_DATE})),
            ("identifier", json!({"valueString": IDENTIFIER})),
            ("lot", json!({"valueString": LOT})),
        ],
    );
    let http = client();
    let answer = http
        .post(format!("{}/ddcc/generateHealthCertificate", service.url))
        .bearer_auth(&key)
        .header("Content-Type", "application/fhir+json")
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
        .body(submitted.to_string())
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    let document: Value = answer.json().unwrap();
    let pdf_url = document["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "certificate")
        .and_then(|l| l["url"].as_str())
        .unwrap()
        .to_owned();
    let token = pdf_url.split('/').rev().nth(1).unwrap().to_owned();
    let pdf = http.get(&pdf_url).send().unwrap();
    assert_eq!(pdf.status().as_u16(), 200);

    // Stopping flushes the batch exporter.
    service.stop();
    let spans = receiver.spans();
    let names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    let by_id: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();
    let named = |name: &str| -> Vec<&Span> { spans.iter().filter(|s| s.name == name).collect() };
    let parent_name =
        |span: &Span| -> Option<String> { by_id.get(&span.parent_span_id).map(|p| p.name.clone()) };

    // The issuing request continues the caller's trace and carries the route pattern.
    let issuing = named("http.request")
        .into_iter()
        .find(|s| hex(&s.trace_id) == TRACE_ID)
        .unwrap_or_else(|| panic!("no http.request span in the caller's trace: {names:?}"));
    assert_eq!(hex(&issuing.parent_span_id), CALLER_SPAN_ID);
    assert_eq!(
        attribute(issuing, "http.route"),
        Some(AnyValue::StringValue(
            "/ddcc/generateHealthCertificate".into()
        ))
    );
    assert_eq!(
        attribute(issuing, "http.request.method"),
        Some(AnyValue::StringValue("POST".into()))
    );
    assert_eq!(
        attribute(issuing, "http.response.status_code"),
        Some(AnyValue::IntValue(201))
    );

    // Every stage, each under the right parent, all in the caller's trace.
    let expect_parent = |name: &str, parent: &str, count: usize| {
        let found: Vec<&Span> = named(name)
            .into_iter()
            .filter(|s| hex(&s.trace_id) == TRACE_ID)
            .collect();
        assert_eq!(found.len(), count, "{name} spans in the trace: {names:?}");
        for span in found {
            assert_eq!(
                parent_name(span).as_deref(),
                Some(parent),
                "parent of {name}"
            );
        }
    };
    expect_parent("ddcc.parse", "http.request", 1);
    expect_parent("ddcc.issue", "http.request", 1);
    // The DDCC core data set and the EU DCC: signed together, one QR rendering each.
    expect_parent("ddcc.sign", "ddcc.issue", 1);
    expect_parent("ddcc.render.qr", "ddcc.issue", 2);
    expect_parent("ddcc.build", "ddcc.issue", 1);
    expect_parent("ddcc.render.pdf", "ddcc.issue", 1);
    expect_parent("ddcc.store", "ddcc.issue", 1);
    assert_eq!(
        attribute(named("ddcc.sign")[0], "hcert.keys"),
        Some(AnyValue::StringValue("3,1".into())),
        "the DDCC (hcert key 3) and the EU DCC (1)"
    );
    let issue = named("ddcc.issue")[0];
    assert_eq!(
        attribute(issue, "ddcc.outcome"),
        Some(AnyValue::StringValue("created".into()))
    );

    // The citizen download names its route pattern, never the token.
    let routes: Vec<Option<AnyValue>> = named("http.request")
        .into_iter()
        .map(|s| attribute(s, "http.route"))
        .collect();
    assert!(
        routes.contains(&Some(AnyValue::StringValue(
            "/certificates/{token}/{file}".into()
        ))),
        "{routes:?}"
    );

    // The exported resource names the service.
    let everything = receiver.all_text();
    assert!(everything.contains("ddcc-mediator"), "service.name missing");
    for secret in [NAME, BIRTH_DATE, IDENTIFIER, LOT, HCID, token.as_str()] {
        assert!(
            !everything.contains(secret),
            "{secret:?} was exported in a span"
        );
    }

    // JSON logs: every line parses; lines inside a span carry its trace and span ids; no personal data.
    let log = service.log_text();
    let mut in_caller_trace = 0;
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let entry: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(
            entry["level"].is_string() && entry["fields"].is_object(),
            "{line}"
        );
        if entry.get("span").is_some() {
            assert!(
                entry["trace_id"].as_str().is_some_and(|t| t.len() == 32),
                "{line}"
            );
            assert!(
                entry["span_id"].as_str().is_some_and(|s| s.len() == 16),
                "{line}"
            );
        }
        if entry["trace_id"] == TRACE_ID {
            in_caller_trace += 1;
        }
    }
    assert!(
        in_caller_trace > 0,
        "no log line in the caller's trace:\n{log}"
    );
    for secret in [NAME, BIRTH_DATE, IDENTIFIER, LOT, HCID, token.as_str()] {
        assert!(!log.contains(secret), "{secret:?} was logged:\n{log}");
    }
}

#[test]
fn metrics_have_stage_and_dependency_latencies() {
    let service = Service::start(&[]);
    let key = service.api_key();
    let answer = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        &event("TLM-METRICS-1", &[]),
    );
    assert_eq!(answer.status, 201);
    let metrics = service.get("/metrics", None);
    let text = String::from_utf8_lossy(&metrics.body);
    for stage in [
        "parse",
        "issue",
        "sign",
        "build",
        "render.qr",
        "render.pdf",
        "store",
    ] {
        let series = format!("ddcc_stage_duration_seconds_count{{stage=\"{stage}\"}}");
        assert!(text.contains(&series), "{series} missing:\n{text}");
    }
    assert!(
        text.contains("# TYPE ddcc_dependency_duration_seconds histogram"),
        "{text}"
    );
}

/// With Vault signing and a FHIR server storing: each outgoing call has its client span under the stage that
/// made it, in the caller's trace (its `traceparent` is what the dependency receives).
#[test]
fn vault_and_fhir_calls_are_client_spans_of_their_stage() {
    use support::openbao::ROOT_TOKEN;
    use support::service::FhirServer;
    const TRANSIT_KEY: &str = "ddcc-telemetry-test";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bao = support::service::provisioned_openbao(&runtime, TRANSIT_KEY);
    let fhir = FhirServer::start();
    let receiver = Receiver::start();
    let mut service = Service::start(&[
        ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.clone()),
        ("OTEL_SERVICE_NAME", "ddcc-telemetry-test".into()),
        ("DDCC_LOG_FORMAT", "json".into()),
        ("DDCC_SIGNER", "vault".into()),
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_TOKEN", ROOT_TOKEN.into()),
        ("VAULT_TRANSIT_KEY", TRANSIT_KEY.into()),
        ("DDCC_FHIR_URL", fhir.base()),
    ]);
    let answer = client()
        .post(format!("{}/ddcc/generateHealthCertificate", service.url))
        .bearer_auth(service.api_key())
        .header("Content-Type", "application/fhir+json")
        .header("traceparent", format!("00-{TRACE_ID}-{CALLER_SPAN_ID}-01"))
        .body(event(HCID, &[("name", json!({"valueString": NAME}))]).to_string())
        .send()
        .unwrap();
    assert_eq!(answer.status().as_u16(), 201);
    service.stop();

    let spans = receiver.spans();
    let by_id: HashMap<Vec<u8>, &Span> = spans.iter().map(|s| (s.span_id.clone(), s)).collect();
    let in_trace = |name: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.name == name && hex(&s.trace_id) == TRACE_ID)
            .collect()
    };
    let parent = |span: &Span| by_id.get(&span.parent_span_id).map(|p| p.name.as_str());
    // Both payloads in one transit call (`batch_input`), under the one signing span.
    assert_eq!(in_trace("ddcc.sign").len(), 1);
    let vault_calls = in_trace("vault.http");
    assert_eq!(vault_calls.len(), 1, "one transit sign per certificate");
    for call in &vault_calls {
        assert_eq!(parent(call), Some("ddcc.sign"));
        assert_eq!(call.kind, 3, "SPAN_KIND_CLIENT");
        assert_eq!(
            attribute(call, "http.response.status_code"),
            Some(AnyValue::IntValue(200))
        );
    }
    let fhir_calls = in_trace("fhir.http");
    let operations: Vec<(Option<&str>, Option<AnyValue>)> = fhir_calls
        .iter()
        .map(|c| (parent(c), attribute(c, "ddcc.operation")))
        .collect();
    let op = |s: &str| Some(AnyValue::StringValue(s.into()));
    assert!(
        operations.contains(&(Some("ddcc.store"), op("transaction"))),
        "{operations:?}"
    );
    // The revision marker is created inside the transaction, not by a call of its own.
    assert!(
        !operations.iter().any(|(_, o)| *o == op("revision marker")),
        "{operations:?}"
    );
    // The Patient's conditional create is an entry of the transaction, not a call of its own.
    assert!(
        !operations.iter().any(|(_, o)| *o == op("create Patient")),
        "{operations:?}"
    );
    // A new event: its revision marker is read, and, as there is none, not its Bundle.
    assert!(
        operations.contains(&(Some("ddcc.issue"), op("read Basic"))),
        "{operations:?}"
    );
    assert!(
        !operations.iter().any(|(_, o)| *o == op("read Bundle")),
        "{operations:?}"
    );
    let everything = receiver.all_text();
    assert!(
        everything.contains("ddcc-telemetry-test"),
        "OTEL_SERVICE_NAME"
    );
    for secret in [NAME, HCID] {
        assert!(
            !everything.contains(secret),
            "{secret:?} was exported in a span"
        );
    }
}

/// A collector that is not there: the service says so once at WARN, not once per batch of spans, and keeps
/// answering.
#[test]
fn a_failing_export_is_said_once_at_warn() {
    // A port nothing listens on (bound, then released).
    let closed = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let mut service = Service::start(&[
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{closed}"),
        ),
        ("OTEL_BSP_SCHEDULE_DELAY", "100".into()),
        ("RUST_LOG", "info".into()),
    ]);
    let http = client();
    // Several export batches: each request's spans, 100 ms apart.
    for _ in 0..6 {
        let r = http
            .get(format!("{}/trust/jwks.json", service.url))
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 200);
        std::thread::sleep(std::time::Duration::from_millis(400));
    }
    service.stop();
    let log = service.log_text();
    let warnings: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("OTLP trace export failed"))
        .collect();
    assert_eq!(warnings.len(), 1, "{log}");
    assert!(warnings[0].contains("WARN"), "{}", warnings[0]);
    assert!(
        warnings[0].contains(&closed.to_string()),
        "names the URL: {}",
        warnings[0]
    );
}
