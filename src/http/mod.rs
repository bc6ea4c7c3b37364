//! The HTTP API of `ddcc-mediator serve` (README "Run the service").
//!
//! Handlers parse, authenticate and format; the work runs on the service runtime (a multi-threaded tokio
//! runtime separate from actix's per-worker event loops) through [`AppState::run`], where the pipeline's CPU
//! work goes to blocking threads and every outbound call has a timeout.

mod reply;
mod routes;
mod tls;

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Service as _;
use actix_web::{web, App, HttpServer};
use tracing::Instrument as _;

pub use reply::{Reply, FHIR_JSON, MEDIATOR_URN, OPENHIM_TRANSACTION};

use crate::configuration::ServiceConfig;
use crate::error::{Error, Result};
use crate::service::access::{Authenticator, ClientCertificate};
use crate::service::audit::Auditor;
use crate::service::issuer::Issuer;
use crate::service::metrics::{method_label, Metrics, RouteLabels};
use crate::service::ratelimit::RateLimiter;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub issuer: Arc<Issuer>,
    pub auth: Authenticator,
    /// Per-client limit of the citizen downloads; `None`: unlimited.
    pub downloads: Option<RateLimiter>,
    pub auditor: Auditor,
    pub metrics: Arc<Metrics>,
    /// The service runtime.
    pub runtime: tokio::runtime::Handle,
    pub body_limit: usize,
    pub batch_concurrency: usize,
    pub max_batch_entries: usize,
    /// The `did:web` DID of `/trust/did.json`.
    pub did: String,
}

impl AppState {
    /// Runs `work` on the service runtime and waits for it.
    pub async fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> Result<T> {
        self.runtime
            .spawn(work.instrument(tracing::Span::current()))
            .await
            .map_err(|e| Error::Internal(format!("request task failed: {e}")))?
    }
}

/// The `did:web` DID whose document is `<public_url>/trust/did.json` (did:web method: host, `%3A` before a
/// port, then each path segment after a `:`; a resolver fetches `https://<host>/<segments>/did.json`).
pub fn did_web(public_url: &str) -> String {
    let Ok(url) = reqwest::Url::parse(public_url) else {
        return "did:web:localhost".into();
    };
    let mut did = format!("did:web:{}", url.host_str().unwrap_or("localhost"));
    if let Some(port) = url.port() {
        did.push_str(&format!("%3A{port}"));
    }
    for segment in url.path().split('/').filter(|s| !s.is_empty()) {
        did.push(':');
        did.push_str(segment);
    }
    did.push_str(":trust");
    did
}

/// Serves until the process is stopped. Must be called outside any tokio runtime (actix runs its own).
pub fn serve(config: &ServiceConfig, state: AppState) -> Result<()> {
    let state = web::Data::new(state);
    let listen = config.listen;
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    let workers = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2)
        .max(2);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let metrics = Arc::clone(&state.metrics);
            App::new()
                .app_data(state.clone())
                .wrap_fn(move |req, srv| {
                    let started = Instant::now();
                    let method = method_label(req.method().as_str());
                    let metrics = Arc::clone(&metrics);
                    // The route is known once matched: recorded when the answer is ready.
                    let span = tracing::info_span!(
                        "http.request",
                        "otel.kind" = "server",
                        "http.request.method" = method,
                        "http.route" = tracing::field::Empty,
                        "http.response.status_code" = tracing::field::Empty,
                    );
                    crate::telemetry::continue_trace(&span, req.headers());
                    let call = srv.call(req).instrument(span.clone());
                    async move {
                        let response = call.await?;
                        let route = response
                            .request()
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".into());
                        span.record("http.route", route.as_str());
                        crate::telemetry::access_log(
                            &span,
                            &route,
                            response.status().as_u16(),
                            started.elapsed(),
                        );
                        span.record(
                            "http.response.status_code",
                            i64::from(response.status().as_u16()),
                        );
                        metrics
                            .requests
                            .get_or_create(&RouteLabels {
                                method,
                                route,
                                status: response.status().as_u16(),
                            })
                            .observe(started.elapsed().as_secs_f64());
                        Ok(response)
                    }
                })
                .configure(routes::configure)
        })
        .on_connect(remember_client_certificate)
        .workers(workers)
        .client_request_timeout(Duration::from_secs(30))
        .shutdown_timeout(10);
        let server = match &tls {
            Some(tls) => server.bind_rustls_0_23(listen, tls.clone()),
            None => server.bind(listen),
        }
        .map_err(|e| Error::Config(format!("cannot listen on {listen}: {e}")))?;
        tracing::info!(%listen, https = tls.is_some(), "listening");
        server
            .run()
            .await
            .map_err(|e| Error::Internal(format!("HTTP server stopped: {e}")))
    })
}

/// Keeps the verified client certificate of a TLS connection for its requests
/// ([`HttpRequest::conn_data`](actix_web::HttpRequest::conn_data)).
fn remember_client_certificate(
    connection: &dyn std::any::Any,
    data: &mut actix_web::dev::Extensions,
) {
    type Tls = actix_tls::accept::rustls_0_23::TlsStream<actix_web::rt::net::TcpStream>;
    let Some(stream) = connection.downcast_ref::<Tls>() else {
        return;
    };
    // rustls verified the chain against DDCC_TLS_CLIENT_CA during the handshake; a certificate that does
    // not chain ends the handshake, so any certificate here is a verified one.
    let certificate = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .and_then(|end_entity| ClientCertificate::from_der(end_entity.as_ref()));
    if let Some(certificate) = certificate {
        data.insert(certificate);
    }
}
