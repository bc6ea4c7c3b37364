//! Responses: plain FHIR for direct callers, the OpenHIM mediator envelope for requests routed by OpenHIM.
//!
//! A request that carries `X-OpenHIM-TransactionID` came through an OpenHIM channel. Its answer is
//! `Content-Type: application/json+openhim` with `{x-mediator-urn, status, response{status, headers, body (a
//! string), timestamp}, orchestrations, properties}`; the core unwraps `response` for its client and stores the
//! rest in its transaction log. The envelope itself travels with HTTP 200, as in the OpenHIM mediator guide and
//! tutorials (the core reads the envelope whatever the status; the real status is `response.status`). A
//! dependency outage (503) also carries `error`, which lets OpenHIM auto-retry the transaction when the
//! channel allows it. Binary bodies (PNG, PDF) cannot travel as an envelope string, so they always go plain;
//! the core passes a non-envelope answer through unchanged.

use actix_web::body::BoxBody;
use actix_web::http::header::{HeaderName, HeaderValue, CONTENT_TYPE};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, Responder};
use serde_json::{json, Value};

use crate::error::Error;
use crate::service::{rfc3339_ms, Orchestration, Orchestrations};

pub const FHIR_JSON: &str = "application/fhir+json; charset=utf-8";
pub const OPENHIM_TRANSACTION: &str = "x-openhim-transactionid";
/// The URN this mediator registers with OpenHIM (see `crate::openhim`).
pub const MEDIATOR_URN: &str = "urn:mediator:ddcc-mediator";

/// An answer, before it is known whether OpenHIM gets it.
#[derive(Debug)]
pub struct Reply {
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
    headers: Vec<(HeaderName, String)>,
    trace: Orchestrations,
    /// The OpenHIM transaction status, when the HTTP status alone does not tell (batches).
    openhim_status: Option<&'static str>,
    /// A transient failure worth retrying (OpenHIM `error`).
    retryable: Option<String>,
}

impl Reply {
    pub fn new(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Self {
        Reply {
            status,
            content_type,
            body,
            headers: Vec::new(),
            trace: Orchestrations::default(),
            openhim_status: None,
            retryable: None,
        }
    }

    /// A FHIR resource as JSON.
    pub fn fhir(status: StatusCode, resource: &Value) -> Self {
        let body = crate::compact_json::to_vec(resource);
        Reply::new(status, FHIR_JSON, body)
    }

    /// Any JSON (health reports, JWKS).
    pub fn json(status: StatusCode, value: &Value) -> Self {
        let body = serde_json::to_vec_pretty(value).unwrap_or_default();
        Reply::new(status, "application/json", body)
    }

    /// An OperationOutcome with one issue.
    pub fn outcome(status: StatusCode, code: &str, message: impl Into<String>) -> Self {
        Reply::fhir(
            status,
            &json!({
                "resourceType": "OperationOutcome",
                "issue": [{"severity": "error", "code": code, "diagnostics": message.into()}],
            }),
        )
    }

    /// The OperationOutcome of a pipeline error, with its status.
    pub fn error(error: &Error) -> Self {
        if !error.is_caller_fault() {
            tracing::warn!(error = %error, "request failed");
        }
        let status =
            StatusCode::from_u16(error.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let outcome = serde_json::to_value(error.to_operation_outcome()).unwrap_or(Value::Null);
        let mut reply = Reply::fhir(status, &outcome);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            reply = reply.header(actix_web::http::header::RETRY_AFTER, "10".into());
            reply.retryable = Some(error.to_string());
        }
        reply
    }

    pub fn header(mut self, name: HeaderName, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    pub fn traced(mut self, trace: &Orchestrations) -> Self {
        self.trace = trace.clone();
        self
    }

    pub fn openhim_status(mut self, status: &'static str) -> Self {
        self.openhim_status = Some(status);
        self
    }

    pub fn status(&self) -> StatusCode {
        self.status
    }

    fn plain(self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.insert_header((CONTENT_TYPE, self.content_type));
        for (name, value) in self.headers {
            if let Ok(value) = HeaderValue::from_str(&value) {
                response.append_header((name, value));
            }
        }
        response.body(self.body)
    }

    fn envelope(self) -> HttpResponse {
        let status = self.status;
        let transaction_status = self.openhim_status.unwrap_or(match status.as_u16() {
            200..=299 => "Successful",
            400..=499 => "Completed",
            _ => "Failed",
        });
        let mut headers = serde_json::Map::new();
        headers.insert("content-type".into(), json!(self.content_type));
        for (name, value) in &self.headers {
            headers.insert(name.as_str().to_owned(), json!(value));
        }
        let orchestrations: Vec<Value> = self.trace.take().iter().map(orchestration).collect();
        let mut envelope = json!({
            "x-mediator-urn": MEDIATOR_URN,
            "status": transaction_status,
            "response": {
                "status": status.as_u16(),
                "headers": headers,
                "body": String::from_utf8_lossy(&self.body),
                "timestamp": rfc3339_ms(time::OffsetDateTime::now_utc()),
            },
            "orchestrations": orchestrations,
            "properties": {"mediator": "ddcc-mediator", "version": env!("CARGO_PKG_VERSION")},
        });
        if let Some(message) = &self.retryable {
            envelope["error"] = json!({"message": message});
        }
        HttpResponse::Ok()
            .insert_header((CONTENT_TYPE, "application/json+openhim; charset=utf-8"))
            .body(serde_json::to_vec(&envelope).unwrap_or_default())
    }
}

fn orchestration(o: &Orchestration) -> Value {
    let mut response = json!({"timestamp": rfc3339_ms(o.response_at)});
    if let Some(status) = o.status {
        response["status"] = json!(status);
    }
    let mut value = json!({
        "name": o.name,
        "request": {
            "method": o.method,
            "host": o.host,
            "port": o.port,
            "path": o.path,
            "timestamp": rfc3339_ms(o.request_at),
        },
        "response": response,
    });
    if let Some(error) = &o.error {
        value["error"] = json!({"message": error});
    }
    value
}

impl Responder for Reply {
    type Body = BoxBody;

    fn respond_to(self, req: &HttpRequest) -> HttpResponse<Self::Body> {
        let via_openhim = req.headers().contains_key(OPENHIM_TRANSACTION);
        let textual = self.content_type.contains("json") || self.content_type.starts_with("text/");
        if via_openhim && textual {
            self.envelope()
        } else {
            self.plain()
        }
    }
}
