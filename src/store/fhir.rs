//! A FHIR R4 server as the store: one `transaction` per certificate.
//!
//! The Patient is the person, not the certificate: when it has an identifier it is created first, on its
//! own, as a conditional create (`POST Patient` with `If-None-Exist: identifier=…`), so one person keeps one
//! Patient across certificates; a failure later leaves at most that Patient, which the retry reuses. (Doing
//! it inside the transaction would be equivalent on HAPI, but servers such as Medplum cap transactions with
//! conditional entries at 8 entries, fewer than a corrected certificate needs.)
//!
//! The transaction then holds every other resource of the document (`PUT <Type>/<id>` with the derived
//! ids, so a repeat is an idempotent overwrite), the superseded QR DocumentReferences, and the document
//! Bundle itself (`PUT Bundle/<id>`). Every entry of the transaction-response must be 2xx or nothing counts.
//!
//! References between the written resources use fresh `urn:uuid:` placeholders, not the document's own
//! fullUrls: servers resolve placeholders anywhere in the transaction, including inside the nested document
//! Bundle (Medplum does; it would turn the document's fullUrls into server ids). With separate placeholders
//! the stored document stays byte-for-byte what was signed and handed out.

use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use super::{type_and_id, valid_id, CertificateRecord, Store};
use crate::error::{Error, Result};
use crate::service::{Orchestration, Orchestrations};

const SERVICE: &str = "FHIR server";
const FHIR_JSON: &str = "application/fhir+json";

#[derive(Debug)]
pub struct FhirStore {
    base: String,
    http: Client,
}

impl FhirStore {
    /// `base` without a trailing slash; `http` carries the timeouts.
    pub fn new(base: String, timeout: Duration) -> Result<Self> {
        let http = Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("FHIR HTTP client: {e}")))?;
        Ok(FhirStore { base, http })
    }

    fn unavailable(reason: impl Into<String>) -> Error {
        Error::Unavailable {
            service: SERVICE,
            reason: reason.into(),
        }
    }

    /// Creates the Patient unless one has its identifier; returns `Patient/<id>` as stored. `None` when the
    /// Patient has no identifier (it is then written in the transaction under its derived id).
    async fn ensure_patient(
        &self,
        patient: &Value,
        trace: &Orchestrations,
    ) -> Result<Option<String>> {
        let Some(search) = conditional_identifier(patient) else {
            return Ok(None);
        };
        let mut body = patient.clone();
        if let Some(map) = body.as_object_mut() {
            map.remove("id");
        }
        let url = format!("{}/Patient", self.base);
        let step = Orchestration::start("FHIR conditional create Patient", "POST", &url);
        let request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
            .header(reqwest::header::ACCEPT, FHIR_JSON)
            .header("If-None-Exist", search)
            .json(&body);
        let response = traced("POST", "create Patient", request).await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                trace.push(step.failed(&e.to_string()));
                return Err(Self::unavailable(format!(
                    "Patient not sent: {}",
                    error_chain(&e)
                )));
            }
        };
        let status = response.status();
        trace.push(step.finished(status.as_u16()));
        let body: Value = response.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(refused("conditional create of the Patient", status, &body));
        }
        match body.get("id").and_then(Value::as_str) {
            Some(id) if valid_id(id) => Ok(Some(format!("Patient/{id}"))),
            _ => Err(Self::unavailable("the Patient create answered no id")),
        }
    }

    /// The transaction Bundle for `record`; `resolved` maps document fullUrls to stored references
    /// (resources already written, left out of the transaction).
    fn transaction(
        record: &CertificateRecord,
        mut resolved: HashMap<String, String>,
    ) -> Result<Value> {
        let resources: Vec<&Value> = record.all_resources().collect();
        let mut pending = Vec::with_capacity(resources.len());
        for resource in resources {
            let (_, id) = type_and_id(resource)?;
            let full_url = format!("urn:uuid:{id}");
            if resolved.contains_key(&full_url) {
                continue;
            }
            resolved.insert(full_url, uuid::Uuid::new_v4().urn().to_string());
            pending.push(resource);
        }
        let mut entries = Vec::with_capacity(pending.len() + 1);
        for resource in pending {
            let (rtype, id) = type_and_id(resource)?;
            let full_url = resolved
                .get(&format!("urn:uuid:{id}"))
                .cloned()
                .unwrap_or_default();
            let rewritten = rewrite_references(resource, &resolved)?;
            let request = json!({"method": "PUT", "url": format!("{rtype}/{id}")});
            entries.push(json!({"fullUrl": full_url, "resource": rewritten, "request": request}));
        }
        let bundle_id = record.bundle_id()?;
        entries.push(json!({
            "resource": record.document,
            "request": {"method": "PUT", "url": format!("Bundle/{bundle_id}")},
        }));
        Ok(json!({"resourceType": "Bundle", "type": "transaction", "entry": entries}))
    }
}

/// `identifier=<system>|<value>` of a Patient's first identifier.
fn conditional_identifier(resource: &Value) -> Option<String> {
    let identifier = resource.get("identifier")?.as_array()?.first()?;
    let value = identifier.get("value")?.as_str()?;
    let token = match identifier.get("system").and_then(Value::as_str) {
        Some(system) => format!("{system}|{value}"),
        None => value.to_owned(),
    };
    Some(format!("identifier={}", url_escape(&token)))
}

fn url_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~:/|".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Replaces each `reference` that names a document fullUrl by its placeholder.
fn rewrite_references(resource: &Value, placeholders: &HashMap<String, String>) -> Result<Value> {
    fn walk(value: &mut Value, placeholders: &HashMap<String, String>) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key == "reference" {
                        if let Some(p) = v.as_str().and_then(|r| placeholders.get(r)) {
                            *v = Value::String(p.clone());
                            continue;
                        }
                    }
                    walk(v, placeholders);
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, placeholders)),
            _ => {}
        }
    }
    let mut copy = resource.clone();
    walk(&mut copy, placeholders);
    Ok(copy)
}

/// One FHIR call under a `fhir.http` span; `operation` names the interaction, never an id or a search value.
async fn traced(
    method: &str,
    operation: &str,
    request: reqwest::RequestBuilder,
) -> reqwest::Result<reqwest::Response> {
    crate::telemetry::send(
        crate::telemetry::Dependency::Fhir,
        method,
        operation,
        request,
    )
    .await
}

impl Store for FhirStore {
    async fn save(&self, record: &CertificateRecord, trace: &Orchestrations) -> Result<()> {
        let mut resolved = HashMap::new();
        if let Some(patient) = record
            .resources()
            .find(|r| r.get("resourceType").and_then(Value::as_str) == Some("Patient"))
        {
            let (_, id) = type_and_id(patient)?;
            if let Some(stored) = self.ensure_patient(patient, trace).await? {
                resolved.insert(format!("urn:uuid:{id}"), stored);
            }
        }
        let transaction = Self::transaction(record, resolved)?;
        let url = format!("{}/", self.base);
        let step = Orchestration::start("FHIR transaction", "POST", &url);
        let request = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
            .header(reqwest::header::ACCEPT, FHIR_JSON)
            .json(&transaction);
        let response = traced("POST", "transaction", request).await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                trace.push(step.failed(&e.to_string()));
                return Err(Self::unavailable(format!(
                    "transaction not sent: {}",
                    error_chain(&e)
                )));
            }
        };
        let status = response.status();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        trace.push(step.finished(status.as_u16()));
        if !status.is_success() {
            return Err(refused("the transaction", status, &body));
        }
        let entries = body.get("entry").and_then(Value::as_array);
        let expected = transaction["entry"].as_array().map_or(0, Vec::len);
        match entries {
            Some(entries) if entries.len() == expected => {
                for (i, entry) in entries.iter().enumerate() {
                    let code = entry
                        .pointer("/response/status")
                        .and_then(Value::as_str)
                        .and_then(|s| s.split_whitespace().next())
                        .and_then(|s| s.parse::<u16>().ok());
                    if !matches!(code, Some(200..=299)) {
                        return Err(Self::unavailable(format!(
                            "transaction entry {i} answered {code:?}: the certificate was not stored"
                        )));
                    }
                }
                Ok(())
            }
            _ => Err(Self::unavailable(format!(
                "transaction-response has no entry per request (expected {expected})"
            ))),
        }
    }

    async fn read(&self, resource_type: &'static str, id: &str) -> Result<Option<Value>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let url = format!("{}/{resource_type}/{id}", self.base);
        let request = self
            .http
            .get(&url)
            .header(reqwest::header::ACCEPT, FHIR_JSON);
        let response = traced("GET", &format!("read {resource_type}"), request)
            .await
            .map_err(|e| Self::unavailable(format!("read failed: {}", error_chain(&e))))?;
        match response.status() {
            StatusCode::NOT_FOUND | StatusCode::GONE => Ok(None),
            s if s.is_success() => response
                .json()
                .await
                .map(Some)
                .map_err(|e| Self::unavailable(format!("unreadable {resource_type}: {e}"))),
            s => Err(Self::unavailable(format!(
                "read of {resource_type} answered HTTP {s}"
            ))),
        }
    }

    async fn check(&self) -> Result<()> {
        let url = format!("{}/metadata", self.base);
        match traced("GET", "metadata", self.http.get(&url)).await {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(Self::unavailable(format!(
                "GET /metadata answered HTTP {}",
                r.status()
            ))),
            Err(e) => Err(Self::unavailable(format!(
                "unreachable: {}",
                error_chain(&e)
            ))),
        }
    }

    /// `POST AuditEvent`, on its own: the audit trail is not part of any certificate's transaction.
    async fn audit(&self, event: &Value) -> Result<()> {
        let url = format!("{}/AuditEvent", self.base);
        let response = self
            .http
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
            .header(reqwest::header::ACCEPT, FHIR_JSON)
            .json(event)
            .send()
            .await
            .map_err(|e| Self::unavailable(format!("AuditEvent not sent: {}", error_chain(&e))))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body: Value = response.json().await.unwrap_or(Value::Null);
        Err(refused("the AuditEvent", status, &body))
    }
}

/// A refusal by the server, by cause: content it will not store (400, 422) is the submission's problem
/// (422, with the server's reason); anything else (5xx, 429, 401/403 misconfiguration, 409/412 conflicts)
/// is the server's, to retry later (503).
fn refused(what: &str, status: StatusCode, outcome: &Value) -> Error {
    let reason = format!(
        "{what} was refused with HTTP {status}: {}",
        diagnostics(outcome)
    );
    match status {
        StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY => Error::invalid(
            "processing",
            None,
            format!("the FHIR server would not store the certificate: {reason}"),
        ),
        _ => FhirStore::unavailable(reason),
    }
}

/// The first diagnostics of an OperationOutcome, for error messages (never personal data: servers
/// describe the fault, not the content).
fn diagnostics(outcome: &Value) -> String {
    outcome
        .pointer("/issue/0/diagnostics")
        .or_else(|| outcome.pointer("/issue/0/details/text"))
        .and_then(Value::as_str)
        .unwrap_or("no OperationOutcome")
        .chars()
        .take(300)
        .collect()
}

/// reqwest's error and its sources, e.g. "error sending request: connection refused".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
