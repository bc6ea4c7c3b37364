//! Observability of `ddcc-mediator serve`: tracing spans, their export over OTLP, W3C trace context, JSON logs
//! with trace ids, and latency metrics derived from the same spans (README "Observability").
//!
//! **Spans** (names are a contract: dashboards and alerts use them):
//!
//! | span | where | attributes |
//! |---|---|---|
//! | `http.request` | every HTTP request (server) | `http.request.method`, `http.route` (the pattern, never the path), `http.response.status_code` |
//! | `ddcc.parse` | validating the submitted body | |
//! | `ddcc.issue` | issuing (or finding) one certificate | `ddcc.outcome` |
//! | `ddcc.sign` | signing a certificate's payloads, in one call to the signer | `hcert.keys` (the hcert sub-claims signed, in order: `3,1` or `1,1` for the DDCC and the EU DCC, `3` or `1` without an EU DCC) |
//! | `ddcc.build` | building the document Bundle | |
//! | `ddcc.render.qr` | the QR images of one payload | |
//! | `ddcc.render.pdf` | the citizen PDF | |
//! | `ddcc.store` | writing the certificate | `ddcc.store` (`fhir`, `local`) |
//! | `openhim.register` / `openhim.heartbeat` | the OpenHIM mediator tasks | |
//! | `vault.http`, `fhir.http`, `openhim.http` | each outgoing call (client) | `http.request.method`, `ddcc.operation`, `http.response.status_code`, `error.type` |
//!
//! **No personal or clinical data** in any span, attribute or log line: names, birth dates, identifiers,
//! vaccine lots and resource ids never appear. The hcid is left out too: it is the key that finds a
//! person's certificate, so it is as identifying as an identifier; the route pattern and outcome are enough to
//! follow a request, and its trace id joins the logs.
//!
//! **Export**: with `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) set, spans go over
//! OTLP/HTTP with protobuf bodies, batched on a background thread with a bounded queue (`OTEL_BSP_*`
//! settings; spans beyond the queue are dropped, never blocking a request) and flushed when the service stops.
//! HTTP/protobuf rather than gRPC: every collector accepts both, and this one needs no tonic/h2 gRPC stack; the
//! requests go through our own reqwest 0.12 client (the exporter's built-in client is reqwest 0.13).
//! Without an endpoint, spans still get W3C ids (for the logs and for `traceparent`) but are not exported.

use std::borrow::Cow;
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::configuration::LogFormat;

/// `service.name` unless `OTEL_SERVICE_NAME` says otherwise.
pub const SERVICE_NAME: &str = "ddcc-mediator";
/// Most spans waiting for export; more are dropped (a slow collector never slows issuing).
const MAX_QUEUE: usize = 2048;
/// How long one export may take.
const EXPORT_TIMEOUT: Duration = Duration::from_secs(10);

/// Flushes and stops span export when dropped (at the end of `main`).
#[must_use = "dropping it stops the export"]
#[derive(Debug)]
pub struct Telemetry {
    provider: SdkTracerProvider,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("warning: flushing the trace export failed: {e}");
        }
    }
}

/// Installs the service's subscriber: `RUST_LOG` filter (default `info`), logs on stderr (`text`, or JSON
/// lines with `trace_id`/`span_id`), spans to OpenTelemetry, span latencies to the metrics.
/// Call once, outside any async runtime.
pub fn init_service(format: LogFormat) -> Telemetry {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let mut builder = SdkTracerProvider::builder().with_resource(resource());
    let mut export_error = None;
    if export_configured() {
        match exporter() {
            Ok(exporter) => {
                let config = BatchConfigBuilder::default()
                    .with_max_queue_size(MAX_QUEUE)
                    .build();
                builder = builder.with_span_processor(
                    BatchSpanProcessor::builder(exporter)
                        .with_batch_config(config)
                        .build(),
                );
            }
            Err(e) => export_error = Some(e),
        }
    }
    let provider = builder.build();
    // RUST_LOG filters the log lines only: spans and their metrics stay on whatever the log level.
    let ours = || {
        tracing_subscriber::filter::Targets::new()
            .with_target("ddcc_mediator", tracing::Level::INFO)
    };
    let otel = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SERVICE_NAME))
        .with_tracked_inactivity(false)
        .with_filter(ours());
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let logs = match format {
        LogFormat::Json => logs.event_format(JsonLines).with_filter(filter).boxed(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .with_filter(filter)
            .boxed(),
    };
    tracing_subscriber::registry()
        .with(logs)
        .with(otel)
        .with(SpanMetricsLayer.with_filter(ours()))
        .init();
    if let Some(e) = export_error {
        tracing::warn!(error = %e, "OTLP trace export is configured but cannot start; spans are not exported");
    } else if export_configured() {
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    Telemetry { provider }
}

fn export_configured() -> bool {
    [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ]
    .iter()
    .any(|name| std::env::var(name).is_ok_and(|v| !v.trim().is_empty()))
}

fn resource() -> opentelemetry_sdk::Resource {
    let builder = opentelemetry_sdk::Resource::builder();
    // The SDK reads OTEL_SERVICE_NAME itself; only its "unknown_service" fallback is replaced.
    if std::env::var("OTEL_SERVICE_NAME").is_ok_and(|v| !v.trim().is_empty()) {
        builder.build()
    } else {
        builder.with_service_name(SERVICE_NAME).build()
    }
}

fn exporter() -> Result<opentelemetry_otlp::SpanExporter, String> {
    use opentelemetry_otlp::{WithExportConfig as _, WithHttpConfig as _};
    let client = reqwest::blocking::Client::builder()
        .timeout(EXPORT_TIMEOUT)
        .build()
        .map_err(|e| format!("cannot build the OTLP HTTP client: {e}"))?;
    opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_http_client(OtlpHttp(client))
        .build()
        .map_err(|e| e.to_string())
}

/// The exporter's HTTP client. Blocking on purpose: the batch processor exports from its own thread, outside
/// any tokio runtime.
#[derive(Debug)]
struct OtlpHttp(reqwest::blocking::Client);

#[async_trait::async_trait]
impl HttpClient for OtlpHttp {
    async fn send_bytes(&self, request: Request<Bytes>) -> Result<Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let url = parts.uri.to_string();
        let answer = self
            .0
            .request(parts.method, &url)
            .headers(parts.headers)
            .body(body.to_vec())
            .send();
        let answer = match answer {
            Ok(answer) => answer,
            Err(e) => {
                EXPORT_HEALTH.failed(&url, &causes(&e));
                return Err(e.into());
            }
        };
        let status = answer.status();
        if status.is_success() {
            EXPORT_HEALTH.succeeded(&url);
        } else {
            EXPORT_HEALTH.failed(&url, &format!("HTTP {status}"));
        }
        let headers = answer.headers().clone();
        let mut response = Response::builder().status(status).body(answer.bytes()?)?;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// An error and its sources, `: `-separated (reqwest's own message omits the cause, e.g. "connection refused").
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether span export works, so that an outage is said once at WARN (the SDK itself reports a failed export
/// only through its internal debug logs) and its end once at INFO, not once per batch of spans.
struct ExportHealth {
    failing: std::sync::atomic::AtomicBool,
}

static EXPORT_HEALTH: ExportHealth = ExportHealth {
    failing: std::sync::atomic::AtomicBool::new(false),
};

impl ExportHealth {
    fn failed(&self, url: &str, reason: &str) {
        if !self
            .failing
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::warn!(
                url,
                reason,
                "OTLP trace export failed: spans are dropped until the collector answers (the endpoint must be \
                 the collector's OTLP/HTTP port, 4318 by default, not gRPC's 4317); said once until it recovers"
            );
        }
    }

    fn succeeded(&self, url: &str) {
        if self
            .failing
            .swap(false, std::sync::atomic::Ordering::Relaxed)
        {
            tracing::info!(url, "OTLP trace export works again");
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// W3C trace context

/// Adds `traceparent` (and `tracestate`) of `span` to an outgoing request.
pub fn inject(span: &Span, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    let cx = span.context();
    let mut headers = reqwest::header::HeaderMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut opentelemetry_http::HeaderInjector(&mut headers))
    });
    request.headers(headers)
}

/// Makes `span` a child of the caller's trace when the request carries a valid `traceparent`.
pub fn continue_trace(span: &Span, headers: &actix_web::http::header::HeaderMap) {
    let cx = TraceContextPropagator::new().extract(&ActixHeaders(headers));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

struct ActixHeaders<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for ActixHeaders<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// One log line per answered request, inside its span (so it carries the trace id): the route pattern, the
/// status and the time taken. Probes (`/health/*`, `/metrics`) log at debug level.
pub fn access_log(span: &Span, route: &str, status: u16, elapsed: Duration) {
    let _entered = span.enter();
    let ms = elapsed.as_secs_f64() * 1000.0;
    if route.starts_with("/health/") || route == "/metrics" {
        tracing::debug!(route, status, ms, "answered");
    } else {
        tracing::info!(route, status, ms, "answered");
    }
}

// ---------------------------------------------------------------------------------------------------------
// Outgoing calls

/// The dependencies with client spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dependency {
    Vault,
    Fhir,
    OpenHim,
}

/// The client span of one outgoing call (`vault.http`, `fhir.http`, `openhim.http`). `operation` is a fixed
/// word or an API path without personal data (never a resource id or a search value).
pub fn client_span(dependency: Dependency, method: &str, operation: &str) -> Span {
    macro_rules! client {
        ($name:literal) => {
            tracing::info_span!(
                $name,
                "otel.kind" = "client",
                "http.request.method" = method,
                "ddcc.operation" = operation,
                "http.response.status_code" = tracing::field::Empty,
                "error.type" = tracing::field::Empty,
                "otel.status_code" = tracing::field::Empty,
            )
        };
    }
    match dependency {
        Dependency::Vault => client!("vault.http"),
        Dependency::Fhir => client!("fhir.http"),
        Dependency::OpenHim => client!("openhim.http"),
    }
}

/// Sends `request` under its client span, with `traceparent`, recording the status or the failure.
pub async fn send(
    dependency: Dependency,
    method: &str,
    operation: &str,
    request: reqwest::RequestBuilder,
) -> reqwest::Result<reqwest::Response> {
    use tracing::Instrument as _;
    let span = client_span(dependency, method, operation);
    let result = inject(&span, request).send().instrument(span.clone()).await;
    match &result {
        Ok(response) => record_status(&span, response.status().as_u16()),
        Err(e) if e.is_timeout() => record_error(&span, "timeout"),
        Err(_) => record_error(&span, "transport"),
    }
    result
}

/// Records the answer's status on a client span (5xx counts as an error).
pub fn record_status(span: &Span, status: u16) {
    span.record("http.response.status_code", i64::from(status));
    if status >= 500 {
        record_error(span, "http_status");
    }
}

/// Marks a client span failed; `kind` is a fixed word (`transport`, `timeout`, `http_status`), never a
/// message that could carry data.
pub fn record_error(span: &Span, kind: &'static str) {
    span.record("error.type", kind);
    span.record("otel.status_code", "ERROR");
}

// ---------------------------------------------------------------------------------------------------------
// Metrics from spans

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StageLabels {
    /// `parse`, `issue`, `sign`, `build`, `render.qr`, `render.pdf`, `store`, `register`, `heartbeat`.
    stage: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct DependencyCallLabels {
    /// `vault`, `fhir`, `openhim`.
    dependency: &'static str,
    /// `ok` or `error` (transport failure or 5xx).
    outcome: &'static str,
}

struct SpanMetrics {
    stages: Family<StageLabels, Histogram>,
    calls: Family<DependencyCallLabels, Histogram>,
}

static SPAN_METRICS: LazyLock<SpanMetrics> = LazyLock::new(|| SpanMetrics {
    stages: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.0005, 2.0, 16))),
    calls: Family::new_with_constructor(|| Histogram::new(exponential_buckets(0.001, 2.0, 15))),
});

/// Adds `ddcc_stage_duration_seconds{stage}` and `ddcc_dependency_duration_seconds{dependency,outcome}` to
/// the service's registry (prefix `ddcc`).
pub fn register_metrics(registry: &mut Registry) {
    registry.register(
        "stage_duration_seconds",
        "Time spent in each issuing stage (from the ddcc.* spans)",
        SPAN_METRICS.stages.clone(),
    );
    registry.register(
        "dependency_duration_seconds",
        "Latency of each call to Vault, the FHIR server and OpenHIM, by outcome",
        SPAN_METRICS.calls.clone(),
    );
}

/// What a span measures, by its name.
enum Measured {
    Stage(&'static str),
    Call(&'static str),
}

fn measured(name: &'static str) -> Option<Measured> {
    if let Some(stage) = name
        .strip_prefix("ddcc.")
        .or_else(|| name.strip_prefix("openhim.").filter(|s| *s != "http"))
    {
        return Some(Measured::Stage(stage));
    }
    match name {
        "vault.http" => Some(Measured::Call("vault")),
        "fhir.http" => Some(Measured::Call("fhir")),
        "openhim.http" => Some(Measured::Call("openhim")),
        _ => None,
    }
}

struct SpanTimer {
    started: Instant,
    failed: bool,
}

/// Records the duration of measured spans when they close.
struct SpanMetricsLayer;

struct ErrorField(bool);

impl Visit for ErrorField {
    fn record_debug(&mut self, field: &Field, _: &dyn std::fmt::Debug) {
        if field.name() == "error.type" {
            self.0 = true;
        }
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for SpanMetricsLayer {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if measured(attrs.metadata().name()).is_none() {
            return;
        }
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanTimer {
                started: Instant::now(),
                failed: false,
            });
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        let mut error = ErrorField(false);
        values.record(&mut error);
        if !error.0 {
            return;
        }
        if let Some(span) = ctx.span(id) {
            if let Some(timer) = span.extensions_mut().get_mut::<SpanTimer>() {
                timer.failed = true;
            }
        }
    }

    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(&id) else {
            return;
        };
        let Some(timer) = span.extensions_mut().remove::<SpanTimer>() else {
            return;
        };
        let seconds = timer.started.elapsed().as_secs_f64();
        match measured(span.name()) {
            Some(Measured::Stage(stage)) => SPAN_METRICS
                .stages
                .get_or_create(&StageLabels { stage })
                .observe(seconds),
            Some(Measured::Call(dependency)) => SPAN_METRICS
                .calls
                .get_or_create(&DependencyCallLabels {
                    dependency,
                    outcome: if timer.failed { "error" } else { "ok" },
                })
                .observe(seconds),
            None => {}
        }
    }
}

// ---------------------------------------------------------------------------------------------------------
// JSON log lines

/// One JSON object per line: `timestamp`, `level`, `target`, `fields` (with `message`), `span` (the innermost
/// span's name) and, inside a span, `trace_id` and `span_id` (W3C hex, as exported).
struct JsonLines;

struct JsonFields(serde_json::Map<String, serde_json::Value>);

impl JsonFields {
    fn put(&mut self, field: &Field, value: serde_json::Value) {
        self.0.insert(field.name().to_owned(), value);
    }
}

impl Visit for JsonFields {
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, value.into());
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.into());
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.put(field, value.to_string().into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}").into());
    }
}

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        use serde_json::Value;
        let meta = event.metadata();
        let mut fields = JsonFields(serde_json::Map::new());
        event.record(&mut fields);
        let mut line = serde_json::Map::new();
        let now = time::OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default();
        line.insert("timestamp".into(), now.into());
        line.insert("level".into(), meta.level().as_str().into());
        line.insert("target".into(), meta.target().into());
        line.insert("fields".into(), Value::Object(fields.0));
        if let Some(span) = ctx.lookup_current() {
            line.insert("span".into(), Cow::Borrowed(span.name()).into());
            let cx = Span::current().context();
            let span_context = cx.span().span_context().clone();
            if span_context.is_valid() {
                line.insert(
                    "trace_id".into(),
                    span_context.trace_id().to_string().into(),
                );
                line.insert("span_id".into(), span_context.span_id().to_string().into());
            }
        }
        let text = serde_json::to_string(&Value::Object(line)).map_err(|_| std::fmt::Error)?;
        writeln!(writer, "{text}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn span_names_map_to_metric_labels() {
        assert!(matches!(
            measured("ddcc.render.pdf"),
            Some(Measured::Stage("render.pdf"))
        ));
        assert!(matches!(
            measured("openhim.heartbeat"),
            Some(Measured::Stage("heartbeat"))
        ));
        assert!(matches!(
            measured("openhim.http"),
            Some(Measured::Call("openhim"))
        ));
        assert!(matches!(
            measured("vault.http"),
            Some(Measured::Call("vault"))
        ));
        assert!(measured("http.request").is_none());
    }
}
