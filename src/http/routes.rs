//! The routes. Issuing and `$getQRCode` need an API key; trust, health, metrics and citizen downloads are
//! public.

use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::document::stored;
use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest};
use base64::Engine as _;
use futures_util::stream::{self, StreamExt};
use serde_json::{json, Value};

use super::reply::Reply;
use super::AppState;
use crate::domain::VaccinationEvent;
use crate::error::{Error, Result};
use crate::intake::{self, Submission};
use crate::service::access::{ClientCertificate, Credential, Refusal};
use crate::service::audit::{self, Attempt, Outcome, Requester};
use crate::service::issuer::{Issued, Revoked};
use crate::service::Orchestrations;
use crate::store::Store;

type State = web::Data<AppState>;

/// The OpenHIM client on whose behalf OpenHIM routed the request (set by the OpenHIM router).
const OPENHIM_CLIENT: &str = "x-openhim-clientid";
/// How long a readiness probe waits for each dependency.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

pub fn configure(cfg: &mut web::ServiceConfig) {
    let endpoint = |path: &str| web::resource(path).default_service(web::to(method_not_allowed));
    let get = endpoint;
    cfg.service(endpoint("/ddcc/submitHealthEvent").route(web::post().to(submit_health_event)))
        .service(endpoint("/fhir/$submitHealthEvent").route(web::post().to(submit_health_event)))
        .service(
            endpoint("/ddcc/generateHealthCertificate")
                .route(web::post().to(generate_health_certificate)),
        )
        .service(
            endpoint("/fhir/QuestionnaireResponse/$generateHealthCertificate")
                .route(web::post().to(generate_health_certificate)),
        )
        .service(
            endpoint("/ddcc/revokeHealthCertificate")
                .route(web::post().to(revoke_health_certificate)),
        )
        .service(
            endpoint("/fhir/QuestionnaireResponse/$revokeHealthCertificate")
                .route(web::post().to(revoke_health_certificate)),
        );
    cfg.service(get("/ddcc/DocumentReference/{id}/$getQRCode").route(web::get().to(get_qr_code)))
        .service(get("/certificates/{token}/{file}").route(web::get().to(citizen_download)))
        .service(
            get("/certificates/{token}").route(web::get().to(super::citizen::certificate_page)),
        )
        .service(get("/check").route(web::get().to(super::citizen::check_page)))
        .service(get("/assets/citizen.css").route(web::get().to(super::citizen::stylesheet)))
        .service(get("/assets/check.js").route(web::get().to(super::citizen::check_script)))
        .service(get("/assets/icon.svg").route(web::get().to(super::citizen::icon)))
        .service(endpoint("/ddcc/verify").route(web::post().to(super::verify::verify)))
        .service(get("/trust/dsc.pem").route(web::get().to(trust_pem)))
        .service(get("/trust/jwks.json").route(web::get().to(trust_jwks)))
        .service(get("/trust/did.json").route(web::get().to(trust_did)))
        .service(get("/trust/revocations").route(web::get().to(trust_revocations)))
        .service(get("/health/live").route(web::get().to(live)))
        .service(get("/health/ready").route(web::get().to(ready)))
        .service(get("/health/replica").route(web::get().to(replica_ready)))
        .service(get("/metrics").route(web::get().to(metrics)))
        .service(get("/").route(web::get().to(index)))
        .default_service(web::to(not_found));
}

/// `GET /`: what this service is and where its endpoints are; nothing about any certificate or person.
async fn index() -> Reply {
    Reply::json(
        StatusCode::OK,
        &json!({
            "service": "ddcc-mediator",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Issues WHO DDCC:VS vaccination certificates: a FHIR document Bundle, signed HC1 QR codes and a citizen PDF",
            "endpoints": {
                "issue (facility systems, with a credential)": [
                    "POST /ddcc/generateHealthCertificate (one QuestionnaireResponse, or a Parameters holding one)",
                    "POST /ddcc/submitHealthEvent (a batch Bundle of them)",
                    "GET /ddcc/DocumentReference/{id}/$getQRCode",
                    "POST /ddcc/revokeHealthCertificate (a Parameters with id and optionally reason)",
                ],
                "citizens (the links in a document Bundle)": [
                    "GET /certificates/{token} (a page: summary, QR codes, downloads)",
                    "GET /check (a page: check a certificate)",
                    "GET /certificates/{token}/certificate.pdf",
                    "GET /certificates/{token}/ddcc-qr.png",
                    "GET /certificates/{token}/dcc-qr.png",
                ],
                "verifiers": [
                    "POST /ddcc/verify (an HC1 text, a QR code PNG or the citizen PDF)",
                    "GET /trust/dsc.pem",
                    "GET /trust/jwks.json",
                    "GET /trust/did.json",
                    "GET /trust/revocations",
                ],
                "operations": ["GET /health/live", "GET /health/ready", "GET /metrics"],
            },
            "documentation": "README.md of the ddcc-mediator repository, section \"Run the service\"",
        }),
    )
}

async fn not_found() -> Reply {
    Reply::outcome(StatusCode::NOT_FOUND, "not-found", "no such endpoint")
}

async fn method_not_allowed() -> Reply {
    Reply::outcome(
        StatusCode::METHOD_NOT_ALLOWED,
        "not-supported",
        "method not allowed on this endpoint",
    )
}

/// The credential check of the protected endpoints (README "Authentication"). Refusals are audited.
async fn authenticate(
    req: &HttpRequest,
    state: &State,
    operation: &'static str,
) -> std::result::Result<Requester, Reply> {
    let text = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut requester = Requester {
        credential: None,
        openhim_client: None,
        address: state.client_of(req),
    };
    let authorization = text(header::AUTHORIZATION.as_str());
    let certificate = req.conn_data::<ClientCertificate>().cloned();
    // OIDC may fetch the provider's keys: outbound calls run on the service runtime.
    let checker = state.clone();
    let result = state
        .run(async move {
            Ok(checker
                .auth
                .authenticate(authorization.as_deref(), certificate.as_ref())
                .await)
        })
        .await;
    let refusal = match result {
        Ok(Ok(credential)) => {
            // Only OpenHIM itself says on whose behalf it calls; anyone else could name any client.
            if from_openhim(&credential, state.openhim_certificate.as_deref()) {
                requester.openhim_client = text(OPENHIM_CLIENT);
            }
            requester.credential = Some(credential);
            return Ok(requester);
        }
        Ok(Err(refusal)) => refusal,
        Err(e) => Refusal::Unavailable(e),
    };
    let (reply, outcome, description) = match refusal {
        Refusal::Unauthenticated { reason, presented } => (
            Reply::outcome(StatusCode::UNAUTHORIZED, "login", reason.clone()).header(
                header::WWW_AUTHENTICATE,
                state.auth.challenge(&reason, presented),
            ),
            Outcome::Refused,
            format!("not authenticated: {reason}"),
        ),
        Refusal::Forbidden { reason, credential } => {
            // Who was refused: the token's issuer, sub and client, as for an issuance.
            requester.credential = Some(credential);
            (
                Reply::outcome(StatusCode::FORBIDDEN, "forbidden", reason.clone())
                    .header(header::WWW_AUTHENTICATE, state.auth.insufficient_scope()),
                Outcome::Refused,
                format!("not authorised: {reason}"),
            )
        }
        Refusal::Unavailable(e) => (Reply::error(&e), Outcome::of_error(&e), audit::describe(&e)),
    };
    record(
        state,
        &Attempt {
            operation,
            requester: &requester,
            outcome,
            description,
            bundle_id: None,
            hcid: None,
        },
    )
    .await;
    Err(reply)
}

/// Whether a credential is OpenHIM's own: its route key, or its client certificate
/// (`DDCC_OPENHIM_CERT_SUBJECT`).
fn from_openhim(credential: &Credential, openhim_certificate: Option<&str>) -> bool {
    match credential {
        Credential::ApiKey { openhim, .. } => *openhim,
        Credential::Certificate { subject } => openhim_certificate == Some(subject.as_str()),
        Credential::Oidc { .. } => false,
    }
}

/// Writes one AuditEvent through the store. A failure is logged and counted, never passed on (see
/// [`crate::service::audit`]). Refusals past `DDCC_AUDIT_REFUSAL_RATE` from one address are only counted;
/// the count goes into a summary event written before the next event (or by the minute).
async fn record(state: &State, attempt: &Attempt<'_>) {
    if attempt.outcome == Outcome::Refused && !state.refusals.admit(attempt.requester.address) {
        return;
    }
    write_summary(state).await;
    write_audit(state, &state.auditor.event(attempt), attempt.operation).await;
}

/// Writes the summary of the refusals counted since the last one, if any.
async fn write_summary(state: &State) {
    if let Some(summary) = state.refusals.take_summary() {
        write_audit(
            state,
            &state.auditor.summary_event(&summary),
            "refusal summary",
        )
        .await;
    }
}

/// What the AuditEvent of a new certificate says.
const ISSUED: &str = "certificate issued";

/// The AuditEvent of the certificate `event` would create, built before issuing so that it is stored with
/// the certificate, in the same write ([`crate::store::CertificateRecord::audit`]).
fn issuance_event(
    state: &State,
    operation: &'static str,
    requester: &Requester,
    event: &VaccinationEvent,
) -> Option<Value> {
    let bundle_id = crate::document::bundle_id(event);
    let attempt = Attempt {
        operation,
        requester,
        outcome: Outcome::Success,
        description: ISSUED.into(),
        bundle_id: Some(&bundle_id),
        hcid: Some(event.certificate.hcid.as_str()),
    };
    // Cannot fail (no maps with non-string keys); were it to, the event is written on its own afterwards.
    serde_json::to_value(state.auditor.event(&attempt)).ok()
}

async fn write_audit(state: &AppState, event: &fhir_models::AuditEvent, operation: &str) {
    let event = match serde_json::to_value(event) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(error = %e, "AuditEvent not built");
            return;
        }
    };
    let issuer = state.issuer.clone();
    if let Err(e) = state
        .run(async move { issuer.store.audit(&event).await })
        .await
    {
        state.metrics.dependency_error("audit");
        tracing::warn!(error = %e, operation, "AuditEvent not recorded");
    }
}

/// What the audit trail learns about one issuing attempt once authenticated.
struct Facts {
    outcome: Outcome,
    description: String,
    /// The id of the document Bundle issued, returned or revoked (all the audit keeps of it).
    bundle_id: Option<String>,
    hcid: Option<String>,
    /// Its AuditEvent was stored with the certificate ([`issuance_event`]): nothing left to write.
    stored: bool,
}

impl Facts {
    fn refused(description: impl Into<String>) -> Self {
        Facts {
            outcome: Outcome::Refused,
            description: description.into(),
            bundle_id: None,
            hcid: None,
            stored: false,
        }
    }

    /// What `result` tells; `audited`: the issuance was given its AuditEvent to store with a new certificate.
    fn of(result: &Result<Issued>, hcid: Option<String>, audited: bool) -> Self {
        match result {
            Ok(issued) => Facts {
                outcome: Outcome::Success,
                description: match issued {
                    Issued::Created(_) => ISSUED.into(),
                    Issued::Existing(_) => "certificate already issued: returned".into(),
                },
                bundle_id: bundle_id_of(issued.document()),
                hcid,
                stored: audited && matches!(issued, Issued::Created(_)),
            },
            Err(e) => Facts::failed(e, hcid),
        }
    }

    fn failed(error: &Error, hcid: Option<String>) -> Self {
        Facts {
            outcome: Outcome::of_error(error),
            description: audit::describe(error),
            bundle_id: None,
            hcid,
            stored: false,
        }
    }

    async fn record(&self, state: &State, operation: &'static str, requester: &Requester) {
        if self.stored {
            write_summary(state).await;
            return;
        }
        record(
            state,
            &Attempt {
                operation,
                requester,
                outcome: self.outcome,
                description: self.description.clone(),
                bundle_id: self.bundle_id.as_deref(),
                hcid: self.hcid.as_deref(),
            },
        )
        .await;
    }
}

fn bundle_id_of(document: &Value) -> Option<String> {
    document
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The body, if it is FHIR JSON within the size limit.
async fn read_body(
    req: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    deadline: Duration,
) -> std::result::Result<Vec<u8>, Reply> {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime != "application/fhir+json" && mime != "application/json" {
        return Err(Reply::outcome(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!(
                "Content-Type {:?} is not accepted; send application/fhir+json or application/json",
                content_type
            ),
        ));
    }
    read_bounded(req, payload, limit, deadline, "DDCC_BODY_LIMIT").await
}

/// The body as sent, uncompressed, of at most `limit` bytes (`setting` names the limit in the refusal),
/// arriving within `deadline`.
pub(super) async fn read_bounded(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    deadline: Duration,
    setting: &str,
) -> std::result::Result<Vec<u8>, Reply> {
    // Bodies are read as sent (no decompression): a compressed body would otherwise be parsed as if it
    // were plain JSON. RFC 9110 §15.5.16: an unsupported content coding is 415. Every Content-Encoding
    // field counts, and every coding listed in one (`identity, gzip` or a second field is still gzip).
    let encoding = req
        .headers()
        .get_all(header::CONTENT_ENCODING)
        .flat_map(|v| v.to_str().unwrap_or("?").split(','))
        .map(|coding| coding.trim().to_ascii_lowercase())
        .find(|coding| !coding.is_empty() && coding != "identity");
    if let Some(encoding) = encoding {
        return Err(Reply::outcome(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "not-supported",
            format!(
                "Content-Encoding {:?} is not accepted; send the body uncompressed",
                encoding.chars().take(40).collect::<String>()
            ),
        )
        .header(header::ACCEPT_ENCODING, "identity".into()));
    }
    let too_large = || {
        Reply::outcome(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            format!("the request body is larger than {limit} bytes ({setting})"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let read = async {
        let mut body = Vec::with_capacity(declared.unwrap_or(0).min(limit));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                Reply::outcome(
                    StatusCode::BAD_REQUEST,
                    "structure",
                    format!("the request body could not be read: {e}"),
                )
            })?;
            if body.len() + chunk.len() > limit {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    };
    // A client that stops sending does not hold a connection forever.
    tokio::time::timeout(deadline, read)
        .await
        .unwrap_or_else(|_| {
            Err(Reply::outcome(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                format!(
                    "the request body did not arrive within {} s (DDCC_REQUEST_TIMEOUT)",
                    deadline.as_secs()
                ),
            ))
        })
}

/// Bodies up to this size are validated where they were read: one event is about 4 kB and takes about
/// 0.1 ms, less than handing it to another thread and back (four wake-ups) costs.
const PARSE_IN_PLACE_BYTES: usize = 16 * 1024;

/// Validation of the body (CPU work): a small one in place, a larger one on a blocking thread.
async fn parse(body: Vec<u8>, read: fn(&[u8]) -> Result<Submission>) -> Result<Submission> {
    let span = tracing::info_span!("ddcc.parse");
    if body.len() <= PARSE_IN_PLACE_BYTES {
        return span.in_scope(|| read(&body));
    }
    tokio::task::spawn_blocking(move || span.in_scope(|| read(&body)))
        .await
        .map_err(|e| Error::Internal(format!("validation task failed: {e}")))?
}

async fn generate_health_certificate(
    req: HttpRequest,
    payload: web::Payload,
    state: State,
) -> Reply {
    const OPERATION: &str = "$generateHealthCertificate";
    let requester = match authenticate(&req, &state, OPERATION).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let (reply, facts) = generate(&req, payload, &state, OPERATION, &requester).await;
    facts.record(&state, OPERATION, &requester).await;
    reply
}

/// The body of a single-resource operation, or the refusal to answer and audit (too large, too slow, wrong
/// type).
async fn read_operation_body(
    req: &HttpRequest,
    payload: web::Payload,
    state: &State,
) -> std::result::Result<Vec<u8>, (Reply, Facts)> {
    read_body(req, payload, state.body_limit, state.request_timeout)
        .await
        .map_err(|reply| {
            let facts = Facts::refused(format!(
                "request refused (HTTP {})",
                reply.status().as_u16()
            ));
            (reply, facts)
        })
}

async fn generate(
    req: &HttpRequest,
    payload: web::Payload,
    state: &State,
    operation: &'static str,
    requester: &Requester,
) -> (Reply, Facts) {
    let body = match read_operation_body(req, payload, state).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let event = match parse(body, intake::read_single_submission).await {
        Ok(Submission::Single(Ok(event))) => event,
        // A Bundle: the answer says what this endpoint takes.
        Err(e @ Error::NotSupported(_)) => {
            return (
                Reply::error(&e),
                Facts::refused("a Bundle posted to generateHealthCertificate"),
            )
        }
        Ok(Submission::Single(Err(e))) | Err(e) => {
            state.metrics.certificate("invalid");
            return (Reply::error(&e), Facts::failed(&e, None));
        }
        Ok(Submission::Batch(_)) => {
            return (
                Reply::outcome(
                    StatusCode::BAD_REQUEST,
                    "not-supported",
                    "generateHealthCertificate takes one QuestionnaireResponse or Parameters; post batch Bundles to /ddcc/submitHealthEvent",
                ),
                Facts::refused("a batch posted to generateHealthCertificate"),
            )
        }
    };
    let hcid = event.certificate.hcid.as_str().to_owned();
    let audit = issuance_event(state, operation, requester, &event);
    let audited = audit.is_some();
    // Refusals counted since the last event are summarised before the next one: this issuance's.
    write_summary(state).await;
    let trace = Orchestrations::default();
    let issuer = state.issuer.clone();
    let work_trace = trace.clone();
    let result = state
        .run(async move { issuer.issue(event, &work_trace, audit).await })
        .await;
    let facts = Facts::of(&result, Some(hcid), audited);
    let reply = match result {
        Ok(Issued::Created(document)) => Reply::fhir(StatusCode::CREATED, &document).traced(&trace),
        Ok(Issued::Existing(document)) => Reply::fhir(StatusCode::OK, &document).traced(&trace),
        Err(e) => Reply::error(&e).traced(&trace),
    };
    (reply, facts)
}

/// `$revokeHealthCertificate`: revokes the document `id` (idempotent); `return = true` once it is revoked.
async fn revoke_health_certificate(req: HttpRequest, payload: web::Payload, state: State) -> Reply {
    const OPERATION: &str = "$revokeHealthCertificate";
    let requester = match authenticate(&req, &state, OPERATION).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let (reply, facts) = revoke(&req, payload, &state).await;
    facts.record(&state, OPERATION, &requester).await;
    reply
}

async fn revoke(req: &HttpRequest, payload: web::Payload, state: &State) -> (Reply, Facts) {
    let body = match read_operation_body(req, payload, state).await {
        Ok(b) => b,
        Err(refused) => return refused,
    };
    let request = match intake::revocation::read_revocation(&body) {
        Ok(r) => r,
        Err(e) => return (Reply::error(&e), Facts::failed(&e, None)),
    };
    let reason = request
        .reason
        .unwrap_or_else(|| "revoked by the issuer (no reason given)".into());
    let trace = Orchestrations::default();
    let issuer = state.issuer.clone();
    let (id, work_trace) = (request.id.clone(), trace.clone());
    let result = state
        .run(async move { issuer.revoke(&id, &reason, &work_trace).await })
        .await;
    let done = |document: Value, description: &str| {
        let answer = json!({
            "resourceType": "Parameters",
            "parameter": [{"name": "return", "valueBoolean": true}],
        });
        let facts = Facts {
            outcome: Outcome::Success,
            description: description.into(),
            bundle_id: bundle_id_of(&document),
            hcid: None,
            stored: false,
        };
        (Reply::fhir(StatusCode::OK, &answer).traced(&trace), facts)
    };
    match result {
        Ok(Revoked::Now(document)) => done(document, "certificate revoked"),
        Ok(Revoked::Already(document)) => done(document, "certificate already revoked"),
        Ok(Revoked::Unknown) => (
            Reply::outcome(
                StatusCode::NOT_FOUND,
                "not-found",
                "no DDCC document has this id (Parameters.parameter.where(name='id'))",
            ),
            Facts::refused("revocation of an unknown document id"),
        ),
        Err(e) => (Reply::error(&e).traced(&trace), Facts::failed(&e, None)),
    }
}

async fn submit_health_event(req: HttpRequest, payload: web::Payload, state: State) -> Reply {
    const OPERATION: &str = "$submitHealthEvent";
    let requester = match authenticate(&req, &state, OPERATION).await {
        Ok(r) => r,
        Err(reply) => return reply,
    };
    let (reply, facts) = submit(&req, payload, &state, OPERATION, &requester).await;
    // One AuditEvent per entry (or one for a batch refused as a whole), as many at once as entries are issued.
    stream::iter(&facts)
        .for_each_concurrent(state.batch_concurrency, |fact| {
            fact.record(&state, OPERATION, &requester)
        })
        .await;
    reply
}

async fn submit(
    req: &HttpRequest,
    payload: web::Payload,
    state: &State,
    operation: &'static str,
    requester: &Requester,
) -> (Reply, Vec<Facts>) {
    let refused = |reply: Reply| {
        let facts = vec![Facts::refused(format!(
            "batch refused (HTTP {})",
            reply.status().as_u16()
        ))];
        (reply, facts)
    };
    let body = match read_body(req, payload, state.body_limit, state.request_timeout).await {
        Ok(b) => b,
        Err(reply) => return refused(reply),
    };
    let entries = match parse(body, intake::read_submission).await {
        Ok(Submission::Batch(entries)) => entries,
        Ok(Submission::Single(_)) => {
            return refused(Reply::outcome(
                StatusCode::BAD_REQUEST,
                "structure",
                "submitHealthEvent takes a batch Bundle of POST QuestionnaireResponse/$generateHealthCertificate entries; post a single QuestionnaireResponse to /ddcc/generateHealthCertificate",
            ))
        }
        Err(e) => return (Reply::error(&e), vec![Facts::failed(&e, None)]),
    };
    if entries.len() > state.max_batch_entries {
        return refused(Reply::outcome(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too-costly",
            format!(
                "the batch has {} entries; at most {} are accepted (DDCC_MAX_BATCH_ENTRIES)",
                entries.len(),
                state.max_batch_entries
            ),
        ));
    }
    let hcids: Vec<Option<String>> = entries
        .iter()
        .map(|e| {
            e.as_ref()
                .ok()
                .map(|event| event.certificate.hcid.as_str().to_owned())
        })
        .collect();
    let audits: Vec<Option<Value>> = entries
        .iter()
        .map(|e| {
            e.as_ref()
                .ok()
                .and_then(|event| issuance_event(state, operation, requester, event))
        })
        .collect();
    let audited: Vec<bool> = audits.iter().map(Option::is_some).collect();
    // Refusals counted since the last event are summarised before the next one: these issuances'.
    write_summary(state).await;
    let trace = Orchestrations::default();
    let issuer = state.issuer.clone();
    let metrics = state.metrics.clone();
    let concurrency = state.batch_concurrency;
    // Each entry on the service runtime: the batch's certificates are rendered on every core at once.
    let outcomes: Vec<Result<Issued>> = stream::iter(entries.into_iter().zip(audits))
        .map(
            |(entry, audit): (Result<VaccinationEvent>, Option<Value>)| {
                let issuer = issuer.clone();
                let trace = trace.clone();
                let metrics = metrics.clone();
                state.spread(async move {
                    match entry {
                        Ok(event) => issuer.issue(event, &trace, audit).await,
                        Err(e) => {
                            metrics.certificate("invalid");
                            Err(e)
                        }
                    }
                })
            },
        )
        .buffered(concurrency)
        .collect()
        .await;
    let facts: Vec<Facts> = outcomes
        .iter()
        .zip(hcids)
        .zip(audited)
        .map(|((outcome, hcid), audited)| Facts::of(outcome, hcid, audited))
        .collect();

    let (mut client_errors, mut server_errors) = (0, 0);
    for outcome in &outcomes {
        match outcome {
            Err(e) if e.is_caller_fault() => client_errors += 1,
            Err(_) => server_errors += 1,
            Ok(_) => {}
        }
    }
    let id = uuid::Uuid::new_v4();
    let batch_response = |minimal: bool| {
        let entries: Vec<Value> = outcomes.iter().map(|o| batch_entry(o, minimal)).collect();
        json!({
            "resourceType": "Bundle",
            "id": id.to_string(),
            "identifier": {"system": "urn:ietf:rfc:3986", "value": id.urn().to_string()},
            "type": "batch-response",
            "timestamp": crate::service::rfc3339_ms(time::OffsetDateTime::now_utc()),
            "entry": entries,
        })
    };
    // The documents in full, unless the caller prefers less (RFC 7240 `Prefer: return=minimal`) or they would
    // make the answer larger than DDCC_MAX_RESPONSE_BYTES (a 1 MB batch answers ~12 MB in full): then each
    // entry has the document's reference and its citizen links. Posting one entry's event again returns its
    // document (200).
    let mut minimal = prefers_minimal(req);
    let mut bundle = batch_response(minimal);
    if !minimal && serde_json::to_vec(&bundle).map_or(0, |b| b.len()) > state.max_response_bytes {
        minimal = true;
        bundle = batch_response(true);
    }
    let openhim_status = match (client_errors, server_errors) {
        (0, 0) => "Successful",
        (_, 0) => "Completed",
        _ => "Completed with error(s)",
    };
    let mut reply = Reply::fhir(StatusCode::OK, &bundle)
        .traced(&trace)
        .openhim_status(openhim_status);
    if minimal {
        reply = reply.header(
            header::HeaderName::from_static("preference-applied"),
            "return=minimal".into(),
        );
    }
    (reply, facts)
}

/// Whether the request asks for `Prefer: return=minimal`.
fn prefers_minimal(req: &HttpRequest) -> bool {
    req.headers()
        .get_all("prefer")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("return=minimal"))
}

/// One entry of a batch-response: the document (or, `minimal`, its reference and citizen links), or the
/// OperationOutcome of the entry's failure.
fn batch_entry(outcome: &Result<Issued>, minimal: bool) -> Value {
    let (document, status) = match outcome {
        Ok(Issued::Created(document)) => (document, "201 Created"),
        Ok(Issued::Existing(document)) => (document, "200 OK"),
        Err(e) => {
            let status =
                StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return json!({"response": {
                "status": format!("{} {}", status.as_u16(), status.canonical_reason().unwrap_or("")),
                "outcome": e.to_operation_outcome(),
            }});
        }
    };
    if !minimal {
        return json!({"resource": document, "response": {"status": status}});
    }
    let mut entry = json!({"response": {"status": status}});
    if let Some(id) = document.get("id").and_then(Value::as_str) {
        entry["response"]["location"] = json!(format!("Bundle/{id}"));
    }
    if let Some(links) = document.get("link").filter(|l| l.is_array()) {
        entry["link"] = links.clone();
    }
    entry
}

/// The QR image (PNG) of a QR DocumentReference (its own or, for the stored standalone copy, its document's).
async fn get_qr_code(req: HttpRequest, path: web::Path<String>, state: State) -> Reply {
    if let Err(reply) = authenticate(&req, &state, "$getQRCode").await {
        return reply;
    }
    let id = path.into_inner();
    let issuer = state.issuer.clone();
    let found = state
        .run(async move {
            match issuer.store.read("DocumentReference", &id).await? {
                Some(reference) => issuer.qr_image(&reference).await.map(Some),
                None => Ok(None),
            }
        })
        .await;
    match found {
        Ok(Some(Some(png))) => Reply::new(StatusCode::OK, "image/png", png),
        Ok(Some(None)) => Reply::outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            "this DocumentReference holds no QR image",
        ),
        Ok(None) => Reply::outcome(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such DocumentReference",
        ),
        Err(e) => Reply::error(&e),
    }
}

/// The PNG attachment of a QR DocumentReference.
fn png_of(reference: &Value) -> Option<Vec<u8>> {
    stored::attachment(reference, "image/png")
}

/// Citizen downloads. Unknown tokens and files are the same bare 404: no hint of what exists.
///
/// Rate-limited per client address before anything is looked up, so unknown tokens count too.
async fn citizen_download(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    state: State,
) -> Reply {
    if let Some(refused) =
        super::citizen::throttled(&req, &state, state.downloads.as_ref(), "downloads")
    {
        return refused;
    }
    let (token, file) = path.into_inner();
    let nothing = || {
        Reply::new(
            StatusCode::NOT_FOUND,
            "text/plain; charset=utf-8",
            b"not found\n".to_vec(),
        )
    };
    let kind = match file.as_str() {
        "ddcc-qr.png" => "who",
        "dcc-qr.png" => "dcc",
        "certificate.pdf" => "pdf",
        _ => return nothing(),
    };
    let Some(bundle_id) = state.issuer.links.bundle_id(&token) else {
        return nothing();
    };
    let issuer = state.issuer.clone();
    let document = state
        .run(async move { issuer.store.read("Bundle", &bundle_id).await })
        .await;
    let document = match document {
        Ok(Some(d)) => d,
        Ok(None) => return nothing(),
        Err(e) => return Reply::error(&e),
    };
    if kind == "pdf" {
        return match pdf_of(&state, &document).await {
            Ok(Some(pdf)) => Reply::new(StatusCode::OK, "application/pdf", pdf)
                .header(header::CACHE_CONTROL, "private, no-store".into())
                .header(
                    header::CONTENT_DISPOSITION,
                    "inline; filename=\"certificate.pdf\"".into(),
                ),
            Ok(None) => nothing(),
            Err(e) => Reply::error(&e),
        };
    }
    let png = stored::resources_of(&document, "DocumentReference")
        .find(|r| stored::qr_kind(r) == Some(kind))
        .and_then(png_of);
    match png {
        Some(png) => Reply::new(StatusCode::OK, "image/png", png)
            .header(header::CACHE_CONTROL, "private, no-store".into())
            .header(
                header::CONTENT_DISPOSITION,
                format!("inline; filename=\"{file}\""),
            ),
        None => nothing(),
    }
}

/// The citizen PDF of a stored document version.
async fn pdf_of(state: &AppState, document: &Value) -> Result<Option<Vec<u8>>> {
    let Some(binary_id) = crate::service::issuer::pdf_binary_id_of(document) else {
        return Ok(None);
    };
    let issuer = state.issuer.clone();
    let binary = state
        .run(async move { issuer.store.read("Binary", &binary_id).await })
        .await?;
    Ok(binary
        .as_ref()
        .and_then(|b| b.get("data"))
        .and_then(Value::as_str)
        .and_then(|data| base64::engine::general_purpose::STANDARD.decode(data).ok()))
}

pub(super) async fn published(state: &AppState) -> Result<Vec<crate::keys::PublishedDsc>> {
    let issuer = state.issuer.clone();
    state
        .run(async move { issuer.signer.published().await })
        .await
}

async fn trust_pem(state: State) -> Reply {
    match published(&state).await {
        Ok(dscs) => Reply::new(
            StatusCode::OK,
            "application/x-pem-file",
            crate::keys::to_pem(&dscs).into_bytes(),
        ),
        Err(e) => Reply::error(&e),
    }
    .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".into())
}

async fn trust_jwks(state: State) -> Reply {
    match published(&state).await {
        Ok(dscs) => Reply::json(StatusCode::OK, &crate::keys::to_jwks(&dscs)),
        Err(e) => Reply::error(&e),
    }
    .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".into())
    .header(header::CACHE_CONTROL, "public, max-age=300".into())
}

async fn trust_did(state: State) -> Reply {
    match published(&state).await {
        Ok(dscs) => Reply::json(StatusCode::OK, &crate::keys::to_did(&dscs, &state.did)),
        Err(e) => Reply::error(&e),
    }
    .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".into())
}

/// The signed revocation list (README "Revocation"), with `ETag` and `304` on `If-None-Match`.
async fn trust_revocations(req: HttpRequest, state: State) -> Reply {
    let work = state.clone();
    let published = state
        .run(async move { work.revocations.current(&work.issuer).await })
        .await;
    let published = match published {
        Ok(p) => p,
        Err(e) => {
            return Reply::error(&e).header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".into());
        }
    };
    // Weak comparison (RFC 9110 §13.1.2): the tag names the content, whichever replica signed it.
    let opaque = |tag: &str| tag.trim().trim_start_matches("W/").to_owned();
    let unchanged = req
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim() == "*" || opaque(tag) == opaque(&published.etag));
    let reply = if unchanged {
        Reply::new(StatusCode::NOT_MODIFIED, "application/json", Vec::new())
    } else {
        Reply::new(
            StatusCode::OK,
            "application/json",
            published.body.as_ref().clone(),
        )
    };
    reply
        .header(header::ETAG, published.etag)
        .header(header::CACHE_CONTROL, "no-cache".into())
        .header(header::ACCESS_CONTROL_ALLOW_ORIGIN, "*".into())
}

async fn live() -> Reply {
    Reply::json(StatusCode::OK, &json!({"status": "live"}))
}

/// 503 while the replica drains after SIGTERM (`DDCC_SHUTDOWN_DELAY`).
fn draining(state: &State) -> Option<Reply> {
    state.draining.load(Ordering::Relaxed).then(|| {
        Reply::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable", "problems": {"service": "shutting down"}}),
        )
    })
}

/// The orchestrator's readiness: this replica takes requests (it is not draining). The signer and the store
/// are not checked: they are shared, so one slow dependency would take every replica out of the load
/// balancer at once, and callers would get connection errors instead of a 503 that names the dependency.
async fn replica_ready(state: State) -> Reply {
    draining(&state).unwrap_or_else(|| Reply::json(StatusCode::OK, &json!({"status": "ready"})))
}

/// Ready when the signer can sign and the store answers; otherwise 503 with the reasons.
async fn ready(state: State) -> Reply {
    if let Some(reply) = draining(&state) {
        return reply;
    }
    let issuer = state.issuer.clone();
    let checks = state
        .run(async move {
            let bounded =
                |name: &'static str,
                 r: std::result::Result<Result<()>, tokio::time::error::Elapsed>| {
                    match r {
                        Ok(Ok(())) => (name, None),
                        Ok(Err(e)) => (name, Some(e.to_string())),
                        Err(_) => (
                            name,
                            Some(format!("no answer within {} s", READY_TIMEOUT.as_secs())),
                        ),
                    }
                };
            let (signer, store) = tokio::join!(
                tokio::time::timeout(READY_TIMEOUT, issuer.signer.check()),
                tokio::time::timeout(READY_TIMEOUT, issuer.store.check()),
            );
            Ok(vec![bounded("signer", signer), bounded("store", store)])
        })
        .await;
    let checks = match checks {
        Ok(checks) => checks,
        Err(e) => vec![("service", Some(e.to_string()))],
    };
    let failures: serde_json::Map<String, Value> = checks
        .iter()
        .filter_map(|(name, problem)| problem.as_ref().map(|p| ((*name).to_owned(), json!(p))))
        .collect();
    if failures.is_empty() {
        Reply::json(StatusCode::OK, &json!({"status": "ready"}))
    } else {
        Reply::json(
            StatusCode::SERVICE_UNAVAILABLE,
            &json!({"status": "unavailable", "problems": failures}),
        )
    }
}

async fn metrics(state: State) -> Reply {
    Reply::new(
        StatusCode::OK,
        "application/openmetrics-text; version=1.0.0; charset=utf-8",
        state.metrics.encode().into_bytes(),
    )
}
