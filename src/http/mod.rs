//! The HTTP API of `ddcc-mediator serve` (README "Run the service").
//!
//! Handlers parse, authenticate and format. A request's work runs start to end on the HTTP worker (one
//! event loop per core) that received it, through [`AppState::run`]: its calls to Vault and the FHIR server
//! (each with a timeout, on that thread's own connections: [`crate::outbound`]) and the rendering of its
//! certificate, about a millisecond of CPU. A batch's entries are spread over the service runtime's threads
//! ([`AppState::spread`]); longer CPU work (a large body's validation, decoding QR images) goes to blocking
//! threads.

mod citizen;
pub mod client_address;
pub mod connections;
mod reply;
mod routes;
mod tls;
mod verify;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::{Payload, Service as _};
use actix_web::http::{ConnectionType, StatusCode};
use actix_web::{web, App, HttpMessage as _, HttpServer};
use tracing::Instrument as _;

pub use reply::{Reply, FHIR_JSON, MEDIATOR_URN, OPENHIM_TRANSACTION};

use crate::configuration::ServiceConfig;
use crate::error::{Error, Result};
use crate::service::access::{Authenticator, ClientCertificate};
use crate::service::audit::{Auditor, RefusalGate};
use crate::service::issuer::Issuer;
use crate::service::metrics::{method_label, Metrics, RouteLabels};
use crate::service::ratelimit::RateLimiter;
use client_address::TrustedProxies;

/// What every handler shares.
#[derive(Debug)]
pub struct AppState {
    pub issuer: Arc<Issuer>,
    pub auth: Authenticator,
    /// Per-client limit of the citizen downloads; `None`: unlimited.
    pub downloads: Option<RateLimiter>,
    /// Per-client limit of `POST /ddcc/verify` (the download rate, in buckets of its own).
    pub verifications: Option<RateLimiter>,
    /// DSCs trusted by `POST /ddcc/verify` besides our own published ones (`DDCC_TRUST_ANCHORS`).
    pub trust_anchors: crate::credential::trust::TrustAnchors,
    pub auditor: Auditor,
    /// Per-client limit of the refusals recorded one AuditEvent each (`DDCC_AUDIT_REFUSAL_RATE`).
    pub refusals: Arc<RefusalGate>,
    /// The `X-OpenHIM-ClientID` of requests from this client certificate subject is trusted too
    /// (`DDCC_OPENHIM_CERT_SUBJECT`), besides that of requests with the OpenHIM route key.
    pub openhim_certificate: Option<String>,
    pub metrics: Arc<Metrics>,
    /// The service runtime: background tasks and a batch's entries ([`AppState::spread`]).
    pub runtime: tokio::runtime::Handle,
    pub body_limit: usize,
    pub batch_concurrency: usize,
    pub max_batch_entries: usize,
    /// Largest batch-response answered in full; past it, entries carry references (`DDCC_MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
    /// How long a request body may take to arrive (`DDCC_REQUEST_TIMEOUT`).
    pub request_timeout: Duration,
    /// The `did:web` DID of `/trust/did.json`.
    pub did: String,
    /// Removes the bodies OpenHIM keeps of the requests it routed here; `None` without OpenHIM.
    pub openhim_scrubber: Option<crate::openhim::Scrubber>,
    /// Peers whose forwarding header names the client (`DDCC_TRUSTED_PROXIES`).
    pub trusted_proxies: TrustedProxies,
    /// Set on SIGTERM: `/health/ready` answers 503 while requests are still served (`DDCC_SHUTDOWN_DELAY`).
    pub draining: AtomicBool,
    /// The signed revocation list of `/trust/revocations`.
    pub revocations: crate::service::revocations::Publisher,
}

impl AppState {
    /// Runs one request's work on the HTTP worker thread that received it, where the connections it opens
    /// to Vault and the FHIR server are polled too, and its certificate is rendered (about a millisecond of
    /// CPU). Handing it to another thread and back cost two or more context switches per request, each a
    /// cold cache beside HAPI's JVM: without them (and with a connection pool per thread) the mediator's CPU
    /// per certificate fell 15–18 % (BENCHMARKS.md, round 7). A panic in `work` is an internal error, not a lost worker.
    pub async fn run<T>(&self, work: impl Future<Output = Result<T>>) -> Result<T> {
        contained(work).await
    }

    /// Runs `work` on the service runtime (one thread per core): for a batch's entries, so that their
    /// certificates are rendered on every core at once rather than one after another on one HTTP worker.
    pub fn spread<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T>> + Send + 'static,
    ) -> impl Future<Output = Result<T>> {
        let task = self
            .runtime
            .spawn(work.instrument(tracing::Span::current()));
        async move {
            task.await
                .map_err(|e| Error::Internal(format!("request task failed: {e}")))?
        }
    }

    /// The client of `req`: its peer, or the address a trusted proxy forwarded for.
    pub fn client_of(&self, req: &actix_web::HttpRequest) -> Option<std::net::IpAddr> {
        let peer = req.peer_addr()?.ip();
        Some(self.trusted_proxies.client(peer, req.headers()))
    }
}

/// `work`'s result, or an internal error if it panicked: one request fails, its worker thread lives on.
async fn contained<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    use futures_util::FutureExt as _;
    std::panic::AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .unwrap_or_else(|_| Err(Error::Internal("request task failed: it panicked".into())))
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

/// Takes the listen address. Called before any state is created, so that a second `serve` on a port in
/// use stops at once, naming the clash, without writing a data directory, keys or secrets.
pub fn bind(listen: std::net::SocketAddr) -> Result<std::net::TcpListener> {
    std::net::TcpListener::bind(listen).map_err(|e| {
        let context = if e.kind() == std::io::ErrorKind::AddrInUse {
            format!(
                "cannot listen on {listen}: address in use (another process, perhaps another `ddcc-mediator \
                 serve`, listens there: stop it, or choose another address with DDCC_LISTEN / --listen)"
            )
        } else {
            format!("cannot listen on {listen}")
        };
        Error::io(context, e)
    })
}

/// Reads the TLS files, so that a bad one stops the service before it creates any state.
pub fn check_tls(settings: &crate::configuration::TlsConfig) -> Result<()> {
    tls::server_config(settings).map(drop)
}

/// Serves on `listener` (from [`bind`]) until the process is stopped. Must be called outside any tokio
/// runtime (actix runs its own).
pub fn serve(
    config: &ServiceConfig,
    listener: std::net::TcpListener,
    state: AppState,
) -> Result<()> {
    let state = web::Data::new(state);
    let signal_state = state.clone();
    let listen = config.listen;
    let tls = config.tls.as_ref().map(tls::server_config).transpose()?;
    // One event loop per core (at least two): each runs its requests' work, rendering included.
    let workers = config.workers.count.max(2);
    let gate = connections::Gate::new(
        config.max_connections_per_client,
        config.request_timeout,
        Arc::clone(&state.metrics),
        config.trusted_proxies.clone(),
    );
    // actix counts connections per worker; each worker takes its share of DDCC_MAX_CONNECTIONS.
    let per_worker = config.max_connections.div_ceil(workers).max(1);
    actix_web::rt::System::new().block_on(async move {
        let server = HttpServer::new(move || {
            let metrics = Arc::clone(&state.metrics);
            let scrubber = state.openhim_scrubber.clone();
            App::new()
                .app_data(state.clone())
                .wrap_fn(move |mut req, srv| {
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
                    // A request OpenHIM routed: its transaction is cleaned of bodies once OpenHIM stored it.
                    let openhim_transaction = req
                        .headers()
                        .get(OPENHIM_TRANSACTION)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                        .zip(scrubber.clone());
                    let connection = req.conn_data::<connections::Connection>();
                    let refused = req.conn_data::<connections::Refused>().is_some();
                    let busy = connection.map(connections::Connection::busy);
                    let body = HeldPayload::wrap(&mut req);
                    let call = (!refused).then(|| srv.call(req).instrument(span.clone()));
                    async move {
                        let _busy = busy;
                        let Some(call) = call else {
                            return Err(actix_web::error::InternalError::new(
                                "too many connections from this address",
                                StatusCode::SERVICE_UNAVAILABLE,
                            )
                            .into());
                        };
                        let mut response = call.await?;
                        if let Some((id, scrubber)) = openhim_transaction {
                            scrubber.submit(&id);
                        }
                        let status = response.status();
                        let route = response
                            .request()
                            .match_pattern()
                            .unwrap_or_else(|| "unmatched".into());
                        span.record("http.route", route.as_str());
                        crate::telemetry::access_log(
                            &span,
                            &route,
                            status.as_u16(),
                            started.elapsed(),
                        );
                        span.record("http.response.status_code", i64::from(status.as_u16()));
                        metrics
                            .requests
                            .get_or_create(&RouteLabels {
                                method,
                                route,
                                status: status.as_u16(),
                            })
                            .observe(started.elapsed().as_secs_f64());
                        // An error ends the connection: a client that is refused does not keep it.
                        if status.is_client_error() || status.is_server_error() {
                            response
                                .response_mut()
                                .head_mut()
                                .set_connection_type(ConnectionType::Close);
                        }
                        Ok(body.hold_until_sent(response))
                    }
                })
                .configure(routes::configure)
        })
        .on_connect(move |connection, data| {
            gate.on_connect(connection, data);
            remember_client_certificate(connection, data);
        })
        .workers(workers)
        .max_connections(per_worker)
        .client_request_timeout(config.request_timeout)
        .client_disconnect_timeout(DISCONNECT_TIMEOUT)
        .keep_alive(config.keep_alive)
        .shutdown_timeout(10)
        // Signals are ours (stop_on_signal): SIGTERM first takes the replica out of the load balancer.
        .disable_signals();
        let server = match &tls {
            Some(tls) => server.listen_rustls_0_23(listener, tls.clone()),
            None => server.listen(listener),
        }
        .map_err(|e| Error::io(format!("cannot serve on {listen}"), e))?;
        tracing::info!(%listen, https = tls.is_some(), "listening");
        let server = server.run();
        actix_web::rt::spawn(stop_on_signal(
            server.handle(),
            signal_state,
            config.shutdown_delay,
        ));
        server
            .await
            .map_err(|e| Error::Internal(format!("HTTP server stopped: {e}")))
    })
}

/// Stops the server as actix would (SIGTERM graceful: requests in hand finish, within 10 s; SIGINT and
/// SIGQUIT at once), except that SIGTERM first marks the replica as draining for `delay`: `/health/ready`
/// and `/health/replica` answer 503 while requests are still served, so that the load balancer, which
/// learns of a terminating pod only after the signal was sent, stops routing here before the port closes.
async fn stop_on_signal(
    server: actix_web::dev::ServerHandle,
    state: web::Data<AppState>,
    delay: Duration,
) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut quit)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::quit()),
    ) else {
        tracing::error!("cannot listen for SIGTERM/SIGINT: stop the service with SIGKILL");
        return;
    };
    let graceful = tokio::select! {
        _ = term.recv() => true,
        _ = int.recv() => false,
        _ = quit.recv() => false,
    };
    if graceful && !delay.is_zero() {
        state.draining.store(true, Ordering::Relaxed);
        tracing::info!(
            seconds = delay.as_secs(),
            "SIGTERM: draining (ready answers 503) before the listener closes"
        );
        tokio::select! {
            () = actix_web::rt::time::sleep(delay) => {}
            _ = int.recv() => return server.stop(false).await,
            _ = quit.recv() => return server.stop(false).await,
        }
    }
    tracing::info!(graceful, "stopping");
    server.stop(graceful).await;
}

/// How long a connection that is being closed may still send before it is dropped (actix lingers to let
/// the client read the answer).
const DISCONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// The request body, kept alive until the answer has been written when the handler did not read it to its
/// end.
///
/// actix-http closes a connection whose request body is unread when the answer goes out (after a short
/// linger, `client_disconnect_timeout`), unless the body was chunked and the handler dropped it: then it
/// drains the rest first, with no deadline, and a client that never sends the last chunk keeps the
/// connection forever. Holding the body until the answer is written makes actix close instead.
struct HeldPayload {
    shared: Option<std::rc::Rc<PayloadState>>,
}

pub struct PayloadState {
    payload: std::cell::RefCell<Payload>,
    finished: std::cell::Cell<bool>,
}

impl HeldPayload {
    /// Puts a shared handle in place of the request's body.
    fn wrap(req: &mut actix_web::dev::ServiceRequest) -> Self {
        let payload = req.take_payload();
        if matches!(payload, Payload::None) {
            return HeldPayload { shared: None };
        }
        let shared = std::rc::Rc::new(PayloadState {
            payload: std::cell::RefCell::new(payload),
            finished: std::cell::Cell::new(false),
        });
        let reader = std::rc::Rc::clone(&shared);
        let stream = futures_util::stream::poll_fn(move |cx| {
            use futures_util::Stream as _;
            if reader.finished.get() {
                return std::task::Poll::Ready(None);
            }
            let mut payload = reader.payload.borrow_mut();
            let next = std::pin::Pin::new(&mut *payload).poll_next(cx);
            if matches!(next, std::task::Poll::Ready(None)) {
                reader.finished.set(true);
            }
            next
        });
        type Chunk = std::result::Result<actix_web::web::Bytes, actix_web::error::PayloadError>;
        let boxed: std::pin::Pin<Box<dyn futures_util::Stream<Item = Chunk>>> = Box::pin(stream);
        req.set_payload(Payload::from(boxed));
        HeldPayload {
            shared: Some(shared),
        }
    }

    /// The response, its body holding the request body until written if that was not read to its end.
    fn hold_until_sent<B: MessageBody + 'static>(
        self,
        response: actix_web::dev::ServiceResponse<B>,
    ) -> actix_web::dev::ServiceResponse<HoldingBody> {
        let held = self.shared.filter(|s| !s.finished.get());
        response
            .map_into_boxed_body()
            .map_body(|_, body| HoldingBody { body, _held: held })
    }
}

/// A response body that keeps the unread request body (if any) alive as long as it is. Not boxed again:
/// `BoxBody::new` drops an empty body at once.
pub struct HoldingBody {
    body: BoxBody,
    _held: Option<std::rc::Rc<PayloadState>>,
}

impl MessageBody for HoldingBody {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<std::result::Result<actix_web::web::Bytes, Self::Error>>> {
        std::pin::Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_request_is_an_internal_error() {
        let answer: Result<()> = contained(async { panic!("a bug") }).await;
        assert!(matches!(answer, Err(Error::Internal(why)) if why.contains("panicked")));
        assert_eq!(contained(async { Ok(7) }).await.ok(), Some(7));
    }
}
