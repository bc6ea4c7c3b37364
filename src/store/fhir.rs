//! A FHIR R4 server as the store: one `transaction` per certificate. Written for HAPI FHIR (JPA server 8.x),
//! and tested against it (tests/servers/hapi).
//!
//! The Patient is the person, not the certificate: when it has an identifier it is a conditional create in
//! the transaction (`POST Patient` with `ifNoneExist: identifier=…`; the other entries reference it by
//! placeholder, which HAPI resolves to the Patient it found or created), so one person keeps one Patient
//! across certificates. HAPI lets one of two concurrent creates of the same person through and refuses the
//! other (409: a write conflict, retried, which then finds the Patient).
//!
//! The transaction holds every other resource of the document (`PUT <Type>/<id>` with the derived ids; the
//! QR DocumentReferences as [`crate::document::stored::standalone`] copies), the superseded
//! DocumentReferences, the document Bundle itself (`PUT Bundle/<id>`), the document's **revision
//! marker** (see below) and the issuance's AuditEvent (`PUT AuditEvent/<its id>`). Every entry of the
//! transaction-response must be 2xx or nothing counts.
//!
//! **Round trips.** A new certificate takes two: the marker read of [`Store::read_document`] (the Bundle is
//! read only when the marker exists or was deleted) and the transaction, which also holds the issuance's
//! AuditEvent and creates the marker. Writes whose answer is not read ask for `Prefer: return=minimal`.
//!
//! **One writer wins.** The compare-and-swap runs on a small resource written with every certificate, in its
//! transaction: the revision marker `Basic/<document id>`. Every certificate transaction updates it with
//! `ifMatch` set to the version read before signing; HAPI refuses a stale version (`409`, HAPI-0989) and rolls
//! the whole transaction back, so of several replicas that read the same revision exactly one stores its
//! certificate. The marker carries a fresh write id each time: HAPI keeps the version of an update that changes
//! nothing. A writer that found no marker saves with `ifMatch: W/"0"`, a version no resource has: HAPI turns
//! a `PUT` with `ifMatch` on a missing resource into a create, and refuses it on an existing one (`409`,
//! HAPI-0989), so this is a "create only if absent", which FHIR R4 has no other way to say for a client-chosen
//! id (HAPI ignores `If-None-Match: *`). Two such creates racing: one commits, the other's transaction fails
//! whole (`409`, HAPI-0550/0825, the unique id). Both observed on HAPI 8.8 (tests/servers/hapi/README.md,
//! `smoke_test.py`) and exercised by `tests/replicas.rs`. Every certificate is written with its marker, so
//! no marker means no document. A marker deleted by hand (410) keeps its versions on HAPI, which refuses
//! `W/"0"` for it: its deletion's version is read from its history, the save names that one and writes the
//! marker again, and the document is read as usual.
//!
//! **What HAPI changes, and how it is undone on read** (observed on HAPI 8.8, tests/servers/hapi/README.md):
//! - it drops `entry.resource.id` from a stored Bundle whose entries have `urn:uuid:` fullUrls (the id is
//!   the fullUrl for HAPI; hapi-fhir #5079): read back, each such entry gets its id from its fullUrl again;
//! - it merges `meta.tag` with the stored version's on update unless the request says
//!   `X-Meta-Snapshot-Mode: TAG`, which every write sends (else a corrected document keeps its predecessor's
//!   event tag);
//! - it adds `meta.versionId`, `meta.lastUpdated` and `meta.source`: removed on read, so that a repeated
//!   submission gets the very document the first one got.
//!
//! References between the written resources use fresh `urn:uuid:` placeholders, not the document's own
//! fullUrls: servers may resolve placeholders anywhere in the transaction, including inside the nested
//! document Bundle. With separate placeholders the stored document stays what was handed out.

use std::borrow::Cow;
use std::collections::HashMap;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use serde_json::{json, Value};

use super::{
    type_and_id, valid_id, CertificateRecord, DocumentPage, Revision, Store, StoredDocument,
    REVOCATION_CODE,
};
use crate::compact_json;
use crate::error::{error_chain, Error, Result};
use crate::outbound::PerThreadClient;
use crate::service::{Orchestration, Orchestrations};

const SERVICE: &str = "FHIR server";
const FHIR_JSON: &str = "application/fhir+json";
/// HAPI: replace `meta.tag` on update instead of merging it with the stored version's.
const SNAPSHOT_TAGS: (&str, &str) = ("X-Meta-Snapshot-Mode", "TAG");
/// Writes whose answered resource is not read: the server need not serialise it, nor the client parse it.
const RETURN_MINIMAL: (&str, &str) = ("Prefer", "return=minimal");
/// The same writes, unread, need not come gzipped: HAPI answers even `return=minimal` with a (empty) gzip
/// stream when asked, and each one cost a 43 kB inflate state (about 0.1 M instructions). An error's
/// OperationOutcome comes plain.
const NOT_GZIPPED: (&str, &str) = ("Accept-Encoding", "identity");
/// The `ifMatch` version that creates a revision marker only if it does not exist yet: HAPI creates a missing
/// resource whatever the version asked, and refuses every existing one, whose versions start at 1 (module
/// documentation).
const ABSENT_MARKER_VERSION: &str = "0";
/// `Basic.code` of the revision marker of a document.
const REVISION_CODE: &str = "certificate-revision";
const REVISION_SYSTEM: &str = "urn:ddcc-mediator";
/// Revocation records per search page.
const REVOCATION_PAGE: usize = 500;

#[derive(Debug)]
pub struct FhirStore {
    base: String,
    http: PerThreadClient,
}

impl FhirStore {
    /// `base` without a trailing slash; `http` carries the timeouts.
    pub fn new(base: String, timeout: Duration) -> Result<Self> {
        let http = PerThreadClient::new(move || {
            Client::builder().timeout(timeout).connect_timeout(timeout)
        })
        .map_err(|e| Error::Config(format!("FHIR HTTP client: {e}")))?;
        Ok(FhirStore { base, http })
    }

    fn unavailable(reason: impl Into<String>) -> Error {
        Error::Unavailable {
            service: SERVICE,
            reason: reason.into(),
        }
    }

    /// The body of the transaction for `record`, saved against the marker's `revision`, and its number of
    /// entries. Every resource goes in borrowed and is serialised once, straight from where it is.
    fn transaction(record: &CertificateRecord, revision: &str) -> Result<(Vec<u8>, usize)> {
        let resources: Vec<Cow<'_, Value>> = record.all_resources().collect();
        // Every fullUrl gets a fresh placeholder (module documentation); a repeated id is written once.
        let mut placeholders = HashMap::with_capacity(resources.len());
        let mut pending = Vec::with_capacity(resources.len());
        for resource in &resources {
            let (_, id) = type_and_id(resource)?;
            let full_url = format!("urn:uuid:{id}");
            if placeholders.contains_key(&full_url) {
                continue;
            }
            placeholders.insert(full_url, uuid::Uuid::new_v4().urn().to_string());
            pending.push(resource);
        }
        let bundle_id = record.bundle_id()?;
        let marker = revision_marker(bundle_id);
        // The document first: the standalone QR DocumentReferences reference it (`context.related`), and
        // HAPI checks a reference when it writes the resource holding it.
        let mut body = TransactionBody::new();
        body.push(
            None,
            Rewritten::as_is(&record.document),
            &json!({"method": "PUT", "url": format!("Bundle/{bundle_id}")}),
        );
        for resource in pending {
            let (rtype, id) = type_and_id(resource)?;
            let full_url = placeholders
                .get(&format!("urn:uuid:{id}"))
                .cloned()
                .unwrap_or_default();
            let patient_search = (rtype == "Patient")
                .then(|| conditional_identifier(resource))
                .flatten();
            let request = match &patient_search {
                // The person's Patient, found by identifier or created with an id of the server's.
                Some(search) => json!({"method": "POST", "url": "Patient", "ifNoneExist": search}),
                None => json!({"method": "PUT", "url": format!("{rtype}/{id}")}),
            };
            body.push(
                Some(&full_url),
                Rewritten {
                    value: resource,
                    placeholders: Some(&placeholders),
                    without_id: patient_search.is_some(),
                },
                &request,
            );
        }
        body.push(
            None,
            Rewritten::as_is(&marker),
            &json!({
                "method": "PUT",
                "url": format!("Basic/{bundle_id}"),
                "ifMatch": format!("W/\"{revision}\""),
            }),
        );
        // A PUT with the event's own id, not a POST: HAPI runs a transaction's POSTs before its PUTs, and
        // the event references the Bundle, which must exist by then. Its fullUrl lets the relative reference
        // resolve (FHIR validators refuse one inside an entry without a fullUrl).
        if let Some(event) = &record.audit {
            let (_, id) = type_and_id(event)?;
            body.push(
                Some(&format!("urn:uuid:{id}")),
                Rewritten::as_is(event),
                &json!({"method": "PUT", "url": format!("AuditEvent/{id}")}),
            );
        }
        Ok(body.finish())
    }

    /// A `GET` of `url` asking for FHIR JSON, on this thread's connections.
    fn get_json(&self, url: &str) -> reqwest::RequestBuilder {
        self.http
            .local()
            .get(url)
            .header(reqwest::header::ACCEPT, FHIR_JSON)
    }

    /// `GET <Type>/<id>`: the resource as HAPI returns it, `None` for 404/410.
    async fn get(&self, resource_type: &str, id: &str) -> Result<Option<Value>> {
        Ok(match self.lookup(resource_type, id).await? {
            Lookup::Found(resource) => Some(resource),
            Lookup::Missing | Lookup::Deleted => None,
        })
    }

    /// `GET <Type>/<id>`, telling a resource that never existed (404) from a deleted one (410).
    async fn lookup(&self, resource_type: &str, id: &str) -> Result<Lookup> {
        let url = format!("{}/{resource_type}/{id}", self.base);
        let request = self.get_json(&url);
        let response = traced("GET", &format!("read {resource_type}"), request)
            .await
            .map_err(|e| Self::unavailable(format!("read failed: {}", error_chain(&e))))?;
        match response.status() {
            StatusCode::NOT_FOUND => {
                drain(response).await;
                Ok(Lookup::Missing)
            }
            StatusCode::GONE => {
                drain(response).await;
                Ok(Lookup::Deleted)
            }
            s if s.is_success() => response
                .json()
                .await
                .map(Lookup::Found)
                .map_err(|e| Self::unavailable(format!("unreadable {resource_type}: {e}"))),
            s => {
                drain(response).await;
                Err(Self::unavailable(format!(
                    "read of {resource_type} answered HTTP {s}"
                )))
            }
        }
    }

    /// The version of a deleted resource's deletion: its latest history entry's `response.etag` (FHIR's
    /// `history` interaction). A deleted id keeps its versions on HAPI: an update must name the deletion's
    /// version (any other one is refused, `409` HAPI-0989, `W/"0"` included) and then recreates it.
    async fn deleted_version(&self, resource_type: &str, id: &str) -> Result<String> {
        let url = format!("{}/{resource_type}/{id}/_history?_count=1", self.base);
        let request = self.get_json(&url);
        let history = Self::fetch_bundle(request, &format!("history {resource_type}")).await?;
        history
            .pointer("/entry/0/response/etag")
            .and_then(Value::as_str)
            .and_then(version_of_etag)
            .ok_or_else(|| {
                Self::unavailable(format!(
                    "the history of the deleted {resource_type} names no version"
                ))
            })
    }

    /// A `GET` answered by a Bundle (a search page, a history). Anything but a 2xx is the server being
    /// unavailable, with its OperationOutcome's reason. `operation` names the call in traces and errors.
    async fn fetch_bundle(request: reqwest::RequestBuilder, operation: &str) -> Result<Value> {
        let response = traced("GET", operation, request)
            .await
            .map_err(|e| Self::unavailable(format!("{operation} failed: {}", error_chain(&e))))?;
        let status = response.status();
        if !status.is_success() {
            let body: Value = response.json().await.unwrap_or(Value::Null);
            return Err(Self::unavailable(format!(
                "{operation} answered HTTP {status}: {}",
                diagnostics(&body)
            )));
        }
        response
            .json()
            .await
            .map_err(|e| Self::unavailable(format!("unreadable answer to {operation}: {e}")))
    }
}

/// The `next` link of a Bundle page.
fn next_link(page: &Value) -> Option<&str> {
    page.get("link")?
        .as_array()?
        .iter()
        .find(|l| l.get("relation").and_then(Value::as_str) == Some("next"))?
        .get("url")?
        .as_str()
}

/// What a read by id found.
enum Lookup {
    Found(Value),
    /// 404: never written.
    Missing,
    /// 410: written, then deleted (by hand: the service deletes no marker or document).
    Deleted,
}

/// `N` of an entity tag `W/"N"` (or `"N"`).
fn version_of_etag(etag: &str) -> Option<String> {
    let version = etag.strip_prefix("W/").unwrap_or(etag).trim_matches('"');
    (!version.is_empty() && version.bytes().all(|b| b.is_ascii_digit())).then(|| version.to_owned())
}

/// What is read of a `transaction-response` Bundle: each entry's `response.status`.
#[derive(Debug, Default, serde::Deserialize)]
struct TransactionResponse {
    #[serde(default)]
    entry: Vec<TransactionOutcome>,
}

#[derive(Debug, serde::Deserialize)]
struct TransactionOutcome {
    response: EntryStatus,
}

#[derive(Debug, serde::Deserialize)]
struct EntryStatus {
    status: String,
}

/// The JSON text of a FHIR `transaction` Bundle, written entry by entry from where the resources are.
struct TransactionBody {
    text: Vec<u8>,
    entries: usize,
}

impl TransactionBody {
    fn new() -> Self {
        let mut text = Vec::with_capacity(64 * 1024);
        text.extend_from_slice(br#"{"resourceType":"Bundle","type":"transaction","entry":["#);
        TransactionBody { text, entries: 0 }
    }

    fn push(&mut self, full_url: Option<&str>, resource: Rewritten<'_>, request: &Value) {
        let text = &mut self.text;
        if self.entries > 0 {
            text.push(b',');
        }
        text.push(b'{');
        if let Some(full_url) = full_url {
            text.extend_from_slice(br#""fullUrl":"#);
            compact_json::write_str(text, full_url);
            text.push(b',');
        }
        text.extend_from_slice(br#""resource":"#);
        resource.write(text);
        text.extend_from_slice(br#","request":"#);
        compact_json::write_value(text, request);
        text.push(b'}');
        self.entries += 1;
    }

    /// The text and its number of entries.
    fn finish(mut self) -> (Vec<u8>, usize) {
        self.text.extend_from_slice(b"]}");
        (self.text, self.entries)
    }
}

/// A resource as the transaction carries it, changed while it is written rather than copied first (a
/// copy of every resource, the PDF's base64 among them, was a fifth of storing's CPU): each `reference` to
/// a document fullUrl becomes its placeholder, and a conditional create leaves out the resource's `id`.
struct Rewritten<'a> {
    value: &'a Value,
    /// fullUrl → placeholder; `None`: written as it is.
    placeholders: Option<&'a HashMap<String, String>>,
    /// Leave out this object's `id` (only ever the resource itself, never a nested element).
    without_id: bool,
}

impl<'a> Rewritten<'a> {
    fn as_is(value: &'a Value) -> Self {
        Rewritten {
            value,
            placeholders: None,
            without_id: false,
        }
    }

    /// Appends the resource's JSON text.
    fn write(&self, out: &mut Vec<u8>) {
        let Some(placeholders) = self.placeholders else {
            return compact_json::write_value(out, self.value);
        };
        let nested = |value| Rewritten {
            value,
            placeholders: self.placeholders,
            without_id: false,
        };
        match self.value {
            Value::Object(map) => compact_json::write_object(
                out,
                map.iter()
                    .filter(|(key, _)| !(self.without_id && key.as_str() == "id")),
                |out, key, value| {
                    let placeholder = (key == "reference")
                        .then(|| value.as_str().and_then(|r| placeholders.get(r)))
                        .flatten();
                    match placeholder {
                        Some(p) => compact_json::write_str(out, p),
                        None => nested(value).write(out),
                    }
                },
            ),
            Value::Array(items) => {
                compact_json::write_array(out, items, |out, item| nested(item).write(out))
            }
            other => compact_json::write_value(out, other),
        }
    }
}

/// The revision marker of a document: no content but a fresh write id, so that every write makes a new
/// version.
fn revision_marker(bundle_id: &str) -> Value {
    json!({
        "resourceType": "Basic",
        "id": bundle_id,
        "code": {"coding": [{"system": REVISION_SYSTEM, "code": REVISION_CODE}]},
        "identifier": [
            {"system": "urn:ietf:rfc:3986", "value": format!("urn:uuid:{bundle_id}")},
            {"system": "urn:ddcc-mediator:write", "value": uuid::Uuid::new_v4().to_string()},
        ],
    })
}

fn version_of(resource: &Value) -> Option<String> {
    resource
        .pointer("/meta/versionId")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// Undoes what the server added or dropped (see the module documentation): server-managed `meta`
/// elements go, and a Bundle's entries get back the ids their `urn:uuid:` fullUrls imply.
fn as_written(mut resource: Value) -> Value {
    if let Some(meta) = resource.get_mut("meta").and_then(Value::as_object_mut) {
        for managed in ["versionId", "lastUpdated", "source"] {
            meta.remove(managed);
        }
        if meta.is_empty() {
            if let Some(map) = resource.as_object_mut() {
                map.remove("meta");
            }
        }
    }
    if resource.get("resourceType").and_then(Value::as_str) == Some("Bundle") {
        for entry in resource
            .get_mut("entry")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let Some(id) = entry
                .get("fullUrl")
                .and_then(Value::as_str)
                .and_then(|u| u.strip_prefix("urn:uuid:"))
                .map(str::to_owned)
            else {
                continue;
            };
            if let Some(inner) = entry.get_mut("resource").and_then(Value::as_object_mut) {
                if !inner.contains_key("id") {
                    // `id` follows `resourceType` in FHIR's JSON order.
                    let mut ordered = serde_json::Map::with_capacity(inner.len() + 1);
                    for (k, v) in std::mem::take(inner) {
                        let after = k == "resourceType";
                        ordered.insert(k, v);
                        if after {
                            ordered.insert("id".into(), Value::String(id.clone()));
                        }
                    }
                    ordered.entry("id").or_insert(Value::String(id));
                    *inner = ordered;
                }
            }
        }
    }
    resource
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

/// Reads an answer's body to its end, unused: the client keeps a connection for the next call only once
/// the body it carried was read (an unread 404 OperationOutcome closed it: about one new TCP connection
/// to HAPI per certificate in `bench/load`).
async fn drain(response: reqwest::Response) {
    let _ = response.bytes().await;
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
    async fn save(
        &self,
        record: &CertificateRecord,
        seen: &Revision,
        trace: &Orchestrations,
    ) -> Result<()> {
        let revision = seen.0.as_deref().unwrap_or(ABSENT_MARKER_VERSION);
        let (body, expected) = Self::transaction(record, revision)?;
        let url = format!("{}/", self.base);
        let step = Orchestration::start("FHIR transaction", "POST", &url);
        let request = self
            .http
            .local()
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
            .header(reqwest::header::ACCEPT, FHIR_JSON)
            .header(SNAPSHOT_TAGS.0, SNAPSHOT_TAGS.1)
            .header(RETURN_MINIMAL.0, RETURN_MINIMAL.1)
            .body(body);
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
        let body = response.bytes().await.unwrap_or_default();
        trace.push(step.finished(status.as_u16()));
        // HAPI-0989 (stale ifMatch), HAPI-0550 (a concurrent write to the same rows) and a concurrent
        // conditional create of the same Patient: someone else's write came first; nothing of ours was kept.
        if status == StatusCode::CONFLICT || status == StatusCode::PRECONDITION_FAILED {
            return Err(Error::WriteConflict(format!(
                "the document changed since it was read: {}",
                diagnostics(&serde_json::from_slice(&body).unwrap_or(Value::Null))
            )));
        }
        if !status.is_success() {
            let outcome = serde_json::from_slice(&body).unwrap_or(Value::Null);
            return Err(refused("the transaction", status, &outcome));
        }
        // Only each entry's status is read: no tree of HAPI's informational outcomes is built.
        let answer: TransactionResponse = serde_json::from_slice(&body).unwrap_or_default();
        if answer.entry.len() != expected {
            return Err(Self::unavailable(format!(
                "transaction-response has no entry per request (expected {expected})"
            )));
        }
        for (i, entry) in answer.entry.iter().enumerate() {
            let code = entry
                .response
                .status
                .split_whitespace()
                .next()
                .and_then(|s| s.parse::<u16>().ok());
            if !matches!(code, Some(200..=299)) {
                return Err(Self::unavailable(format!(
                    "transaction entry {i} answered {code:?}: the certificate was not stored"
                )));
            }
        }
        Ok(())
    }

    async fn read_document(&self, id: &str) -> Result<StoredDocument> {
        if !valid_id(id) {
            return Ok(StoredDocument::default());
        }
        // The marker first: a certificate written after this read moved the marker on, so saving against
        // this revision fails rather than overwriting it. No marker, no document: every certificate is
        // written in one transaction with its marker, so a new event's read is one call, not two.
        let revision = match self.lookup("Basic", id).await? {
            Lookup::Found(marker) => version_of(&marker),
            Lookup::Missing => return Ok(StoredDocument::default()),
            // Deleted by hand: the next save must name the deletion's version, or every save of this
            // document would be refused as a conflict; and the document itself may still be there.
            Lookup::Deleted => Some(self.deleted_version("Basic", id).await?),
        };
        let document = self.get("Bundle", id).await?.map(as_written);
        Ok(StoredDocument {
            document,
            revision: Revision(revision),
        })
    }

    async fn read(&self, resource_type: &'static str, id: &str) -> Result<Option<Value>> {
        if !valid_id(id) {
            return Ok(None);
        }
        Ok(self.get(resource_type, id).await?.map(as_written))
    }

    /// A read by id of a resource that never exists: 404 (or 410) proves the server and its database
    /// answer. Cheaper than `GET /metadata`, which HAPI builds anew (hundreds of kB) after each start.
    async fn list_documents(&self, cursor: Option<&str>, limit: usize) -> Result<DocumentPage> {
        // The first page is a search for every Bundle (the service stores no Bundle but its documents); the
        // next ones follow the server's `next` links, which must stay on this server. Whole documents: on a
        // Bundle search HAPI applies `_elements` to the searchset itself, and `_tag` needs a code.
        let url = match cursor {
            None => format!("{}/Bundle?_count={limit}", self.base),
            Some(next)
                if next.starts_with(&format!("{}?", self.base))
                    || next.starts_with(&format!("{}/", self.base)) =>
            {
                next.to_owned()
            }
            Some(other) => {
                return Err(Error::Internal(format!(
                    "a page link outside the FHIR server: {other}"
                )))
            }
        };
        let request = self.get_json(&url);
        let page = Self::fetch_bundle(request, "search Bundle").await?;
        let ids = page
            .get("entry")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|e| e.pointer("/resource/id").and_then(Value::as_str))
            .filter(|id| valid_id(id))
            .map(str::to_owned)
            .collect();
        let next = next_link(&page).map(str::to_owned);
        Ok(DocumentPage { ids, next })
    }

    async fn check(&self) -> Result<()> {
        let url = format!("{}/Basic/ddcc-mediator-readiness-probe", self.base);
        let request = self.get_json(&url);
        match traced("GET", "readiness probe", request).await {
            Ok(r) => {
                let status = r.status();
                drain(r).await;
                if status.is_success()
                    || status == StatusCode::NOT_FOUND
                    || status == StatusCode::GONE
                {
                    Ok(())
                } else {
                    Err(Self::unavailable(format!("a read answered HTTP {status}")))
                }
            }
            Err(e) => Err(Self::unavailable(format!(
                "unreachable: {}",
                error_chain(&e)
            ))),
        }
    }

    /// `GET Basic?code=…` page by page (`next` links on this server only), bypassing HAPI's search cache
    /// (`Cache-Control: no-cache`: otherwise a search repeated within a minute answers the earlier result,
    /// without a revocation just written).
    async fn revocations(&self) -> Result<Vec<Value>> {
        let mut url = format!(
            "{}/Basic?code={}&_count={REVOCATION_PAGE}",
            self.base,
            url_escape(&format!("{}|{}", REVOCATION_CODE.0, REVOCATION_CODE.1))
        );
        let mut records = Vec::new();
        loop {
            let request = self
                .get_json(&url)
                .header(reqwest::header::CACHE_CONTROL, "no-cache");
            let page = Self::fetch_bundle(request, "search revocations").await?;
            records.extend(
                // A searchset has the same entries as a document.
                crate::document::stored::resources(&page)
                    .filter(|r| super::is_revocation(r))
                    .cloned()
                    .map(as_written),
            );
            match next_link(&page) {
                Some(next)
                    if next.starts_with(&self.base)
                        && records.len() < super::MAX_REVOCATION_RECORDS =>
                {
                    url = next.to_owned();
                }
                _ => return Ok(records),
            }
        }
    }

    /// `POST AuditEvent`, on its own (a new certificate's event is in its transaction instead).
    async fn audit(&self, event: &Value) -> Result<()> {
        let url = format!("{}/AuditEvent", self.base);
        let request = self
            .http
            .local()
            .post(&url)
            .header(reqwest::header::CONTENT_TYPE, FHIR_JSON)
            .header(reqwest::header::ACCEPT, FHIR_JSON)
            .header(RETURN_MINIMAL.0, RETURN_MINIMAL.1)
            .header(NOT_GZIPPED.0, NOT_GZIPPED.1)
            .json(event);
        let response = traced("POST", "create AuditEvent", request)
            .await
            .map_err(|e| Self::unavailable(format!("AuditEvent not sent: {}", error_chain(&e))))?;
        let status = response.status();
        if status.is_success() {
            drain(response).await;
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
    // The first error, not the first issue: a validating server lists warnings before the error.
    let issues = outcome.get("issue").and_then(Value::as_array);
    let issue = issues
        .and_then(|issues| {
            issues.iter().find(|i| {
                matches!(
                    i.get("severity").and_then(Value::as_str),
                    Some("error" | "fatal")
                )
            })
        })
        .or_else(|| issues.and_then(|issues| issues.first()))
        .unwrap_or(&Value::Null);
    issue
        .get("diagnostics")
        .or_else(|| issue.pointer("/details/text"))
        .and_then(Value::as_str)
        .unwrap_or("no OperationOutcome")
        .chars()
        .take(300)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record() -> CertificateRecord {
        let patient = "11111111-1111-4111-8111-111111111111";
        let qr = "22222222-2222-4222-8222-222222222222";
        let composition = "33333333-3333-4333-8333-333333333333";
        CertificateRecord {
            document: json!({"resourceType": "Bundle", "id": "doc-1", "type": "document", "entry": [
                {"fullUrl": format!("urn:uuid:{composition}"), "resource": {
                    "resourceType": "Composition", "id": composition,
                    "subject": {"reference": format!("urn:uuid:{patient}")},
                    "section": [{"entry": [{"reference": format!("urn:uuid:{qr}")}]}]}},
                {"fullUrl": format!("urn:uuid:{patient}"), "resource": {
                    "resourceType": "Patient", "id": patient,
                    "identifier": [{"system": "urn:example:id", "value": "A 1"}]}},
                {"fullUrl": format!("urn:uuid:{qr}"), "resource": {
                    "resourceType": "DocumentReference", "id": qr, "status": "current",
                    "subject": {"reference": format!("urn:uuid:{patient}")},
                    "content": [{"attachment": {"contentType": "image/png", "data": "AAEC"}}]}}
            ]}),
            superseded: Vec::new(),
            extra: vec![
                json!({"resourceType": "Binary", "id": "pdf-1", "contentType": "application/pdf"}),
            ],
            audit: Some(json!({"resourceType": "AuditEvent", "id": "event-1",
                "entity": [{"what": {"reference": "Bundle/doc-1"}}]})),
        }
    }

    #[test]
    fn one_transaction_holds_the_patient_create_the_standalone_copies_the_document_the_marker_and_the_audit(
    ) {
        let record = record();
        let (body, entries) = FhirStore::transaction(&record, "7").unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["entry"].as_array().map(Vec::len), Some(entries));
        let entries = body["entry"].as_array().unwrap();
        let by_type = |t: &str| {
            entries
                .iter()
                .find(|e| e["resource"]["resourceType"] == t)
                .unwrap()
        };

        // The person's Patient: a conditional create, without the document's id.
        let patient = by_type("Patient");
        assert_eq!(patient["request"]["method"], "POST");
        assert_eq!(patient["request"]["url"], "Patient");
        assert_eq!(
            patient["request"]["ifNoneExist"],
            "identifier=urn:example:id|A%201"
        );
        assert!(patient["resource"].get("id").is_none());
        let placeholder = patient["fullUrl"].as_str().unwrap();
        assert!(placeholder.starts_with("urn:uuid:"));
        assert_ne!(
            placeholder, "urn:uuid:11111111-1111-4111-8111-111111111111",
            "a fresh placeholder"
        );

        // The QR DocumentReference on its own: no image, pointing at the document; references to the
        // Patient go to its placeholder.
        let qr = by_type("DocumentReference");
        assert_eq!(qr["request"]["method"], "PUT");
        assert!(qr["resource"]["content"][0]["attachment"]
            .get("data")
            .is_none());
        assert_eq!(
            qr["resource"]["context"]["related"][0]["reference"],
            "Bundle/doc-1"
        );
        assert_eq!(qr["resource"]["subject"]["reference"], placeholder);
        assert_eq!(
            by_type("Composition")["resource"]["subject"]["reference"],
            placeholder
        );

        // The document as issued, images and all; the marker saved against the version read.
        let document = entries
            .iter()
            .find(|e| e["request"]["url"] == "Bundle/doc-1")
            .unwrap();
        assert_eq!(document["resource"], record.document);
        let marker = &entries[entries.len() - 2];
        assert_eq!(marker["request"]["url"], "Basic/doc-1");
        assert_eq!(marker["request"]["ifMatch"], "W/\"7\"");

        // The issuance's AuditEvent, a PUT after the Bundle it references (HAPI runs POSTs first), as given.
        let audit = entries.last().unwrap();
        assert_eq!(audit["request"]["method"], "PUT");
        assert_eq!(audit["request"]["url"], "AuditEvent/event-1");
        assert_eq!(audit["fullUrl"], "urn:uuid:event-1");
        assert_eq!(Some(&audit["resource"]), record.audit.as_ref());
        assert_eq!(entries.len(), 7);
    }

    #[test]
    fn a_refusal_is_described_by_its_first_error() {
        let outcome = json!({"resourceType": "OperationOutcome", "issue": [
            {"severity": "warning", "diagnostics": "CodeSystem is unknown"},
            {"severity": "error", "diagnostics": "Bundle entry missing fullUrl"}]});
        assert_eq!(diagnostics(&outcome), "Bundle entry missing fullUrl");
        let only_details = json!({"issue": [{"severity": "fatal", "details": {"text": "down"}}]});
        assert_eq!(diagnostics(&only_details), "down");
        assert_eq!(diagnostics(&Value::Null), "no OperationOutcome");
    }

    #[test]
    fn a_version_is_read_from_a_history_etag() {
        assert_eq!(version_of_etag("W/\"2\"").as_deref(), Some("2"));
        assert_eq!(version_of_etag("\"14\"").as_deref(), Some("14"));
        assert_eq!(version_of_etag("W/\"\""), None);
        assert_eq!(version_of_etag("W/\"2/../x\""), None);
    }
}
