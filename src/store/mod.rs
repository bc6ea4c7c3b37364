//! Where issued certificates are kept: a FHIR server ([`fhir::FhirStore`]) or files in the data directory
//! ([`local::LocalStore`]). Both take one whole certificate at a time and write it all or not at all.
//!
//! A certificate is its DDCC document Bundle, the citizen PDF (a Binary and a DocumentReference pointing at
//! it) and, for a corrected event, the earlier DocumentReferences marked `superseded`. The document's own id (derived from hcid and dose) is the certificate's identity; its
//! `meta.tag` [`CONTENT_TAG_SYSTEM`] holds the SHA-256 of the canonical event, which is how a repeated
//! submission is recognised (see [`crate::service::issuer`]).

pub mod fhir;
pub mod local;

use std::borrow::Cow;
use std::future::Future;

use serde_json::Value;

use crate::error::{Error, Result};
use crate::service::Orchestrations;

/// `Bundle.meta.tag` system whose code is the hex SHA-256 of the canonical event JSON.
pub const CONTENT_TAG_SYSTEM: &str = "urn:ddcc-mediator:event-sha256";
/// `Bundle.meta.tag` system, one tag per earlier version of the event this document replaced (its hash).
pub const SUPERSEDED_TAG_SYSTEM: &str = "urn:ddcc-mediator:superseded-event-sha256";
/// `Bundle.meta.tag` system whose code is the event's `QuestionnaireResponse.authored` (RFC 3339), if given.
pub const AUTHORED_TAG_SYSTEM: &str = "urn:ddcc-mediator:event-authored";
/// `Bundle.meta.tag` system whose code is `amended` when the event came as an amended response.
pub const STATUS_TAG_SYSTEM: &str = "urn:ddcc-mediator:event-status";
/// `Bundle.meta.tag` (system, code) of a revoked document.
pub const REVOKED_TAG: (&str, &str) = ("urn:ddcc-mediator:revocation", "revoked");
/// `Basic.code` (system, code) of a revocation record: one per revoked certificate version, written in the
/// same transaction as the revocation (see [`crate::service::revocations`]).
pub const REVOCATION_CODE: (&str, &str) = ("urn:ddcc-mediator", "certificate-revocation");
/// Most revocation records read for one revocation list (bounded like every other read).
pub const MAX_REVOCATION_RECORDS: usize = 1_000_000;

/// One certificate, as it is written.
#[derive(Debug, Clone)]
pub struct CertificateRecord {
    /// The document Bundle (its `id` is set).
    pub document: Value,
    /// Earlier DocumentReferences, now with `status: superseded`: the QR ones whole, as the previous
    /// document held them (the current document no longer does, so they keep their own images), the PDF's
    /// as stored.
    pub superseded: Vec<Value>,
    /// Resources kept beside the document: the citizen PDF as a Binary and its DocumentReference.
    pub extra: Vec<Value>,
    /// The AuditEvent of the issuance that writes this record, written with it: in the FHIR server's
    /// transaction (a stored certificate always has its event, and it costs no round trip of its own), in
    /// the files store appended to the trail once the certificate's files are in place.
    pub audit: Option<Value>,
}

impl CertificateRecord {
    pub fn bundle_id(&self) -> Result<&str> {
        self.document
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Internal("document Bundle without id".into()))
    }

    /// Every resource to write except the document Bundle itself: the document's entries (its QR
    /// DocumentReferences as [`crate::document::stored::standalone`] copies, pointing at the document
    /// instead of repeating its images), the superseded DocumentReferences, the extras.
    pub fn all_resources(&self) -> impl Iterator<Item = Cow<'_, Value>> {
        let bundle_id = self.bundle_id().unwrap_or_default();
        self.resources()
            .map(move |r| {
                if r.get("resourceType").and_then(Value::as_str) == Some("DocumentReference") {
                    Cow::Owned(crate::document::stored::standalone(r, bundle_id))
                } else {
                    Cow::Borrowed(r)
                }
            })
            .chain(self.superseded.iter().map(Cow::Borrowed))
            .chain(self.extra.iter().map(Cow::Borrowed))
    }

    /// The resources of the document (`entry.resource`), in document order.
    pub fn resources(&self) -> impl Iterator<Item = &Value> {
        crate::document::stored::resources(&self.document)
    }
}

/// Where a certificate stood when a writer read it: an opaque token that the store compares when the
/// writer saves. `None`: the store had no record of this document at all, and saving creates it only if it
/// is still absent.
///
/// This is what keeps "one certificate per event, one current version" true across replicas: of several
/// writers that read the same revision, the store lets exactly one save ([`Error::WriteConflict`] for the
/// others, which read again).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Revision(pub Option<String>);

/// A document Bundle as stored (if any), and the revision to save against.
#[derive(Debug, Clone, Default)]
pub struct StoredDocument {
    pub document: Option<Value>,
    pub revision: Revision,
}

/// One page of stored document ids ([`Store::list_documents`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DocumentPage {
    pub ids: Vec<String>,
    /// Where the next page starts; `None`: this was the last.
    pub next: Option<String>,
}

/// Keeps certificates and reads resources back by type and id.
pub trait Store: Send + Sync {
    /// Writes the whole certificate, or nothing (then an error saying why), provided the document is still
    /// at `seen` (what [`Store::read_document`] said); otherwise [`Error::WriteConflict`] and nothing is
    /// written. The record's AuditEvent goes with it ([`CertificateRecord::audit`]).
    fn save(
        &self,
        record: &CertificateRecord,
        seen: &Revision,
        trace: &Orchestrations,
    ) -> impl Future<Output = Result<()>> + Send;

    /// The document Bundle `id` and its revision, read together.
    fn read_document(&self, id: &str) -> impl Future<Output = Result<StoredDocument>> + Send;

    /// One stored resource; `Ok(None)` when there is none.
    fn read(
        &self,
        resource_type: &'static str,
        id: &str,
    ) -> impl Future<Output = Result<Option<Value>>> + Send;

    /// Up to `limit` ids of stored document Bundles, from `cursor` (a [`DocumentPage::next`]; `None`: the
    /// first page). Pages keep memory bounded whatever the size of the store.
    fn list_documents(
        &self,
        cursor: Option<&str>,
        limit: usize,
    ) -> impl Future<Output = Result<DocumentPage>> + Send;

    /// Whether the store can be used now (readiness).
    fn check(&self) -> impl Future<Output = Result<()>> + Send;

    /// Records one AuditEvent (see [`crate::service::audit`]) on its own: a refusal, a failure, a stored
    /// certificate returned again. A new certificate's event goes with its [`Store::save`].
    fn audit(&self, event: &Value) -> impl Future<Output = Result<()>> + Send;

    /// Every revocation record (`Basic` with [`REVOCATION_CODE`]), at most [`MAX_REVOCATION_RECORDS`].
    fn revocations(&self) -> impl Future<Output = Result<Vec<Value>>> + Send;
}

/// Whether `resource` is a revocation record.
pub fn is_revocation(resource: &Value) -> bool {
    resource.get("resourceType").and_then(Value::as_str) == Some("Basic")
        && resource
            .pointer("/code/coding")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .any(|c| {
                c.get("system").and_then(Value::as_str) == Some(REVOCATION_CODE.0)
                    && c.get("code").and_then(Value::as_str) == Some(REVOCATION_CODE.1)
            })
}

/// The configured store.
#[derive(Debug)]
pub enum AnyStore {
    Local(local::LocalStore),
    Fhir(fhir::FhirStore),
}

impl Store for AnyStore {
    async fn save(
        &self,
        record: &CertificateRecord,
        seen: &Revision,
        trace: &Orchestrations,
    ) -> Result<()> {
        match self {
            AnyStore::Local(s) => s.save(record, seen, trace).await,
            AnyStore::Fhir(s) => s.save(record, seen, trace).await,
        }
    }

    async fn read_document(&self, id: &str) -> Result<StoredDocument> {
        match self {
            AnyStore::Local(s) => s.read_document(id).await,
            AnyStore::Fhir(s) => s.read_document(id).await,
        }
    }

    async fn read(&self, resource_type: &'static str, id: &str) -> Result<Option<Value>> {
        match self {
            AnyStore::Local(s) => s.read(resource_type, id).await,
            AnyStore::Fhir(s) => s.read(resource_type, id).await,
        }
    }

    async fn list_documents(&self, cursor: Option<&str>, limit: usize) -> Result<DocumentPage> {
        match self {
            AnyStore::Local(s) => s.list_documents(cursor, limit).await,
            AnyStore::Fhir(s) => s.list_documents(cursor, limit).await,
        }
    }

    async fn check(&self) -> Result<()> {
        match self {
            AnyStore::Local(s) => s.check().await,
            AnyStore::Fhir(s) => s.check().await,
        }
    }

    async fn audit(&self, event: &Value) -> Result<()> {
        match self {
            AnyStore::Local(s) => s.audit(event).await,
            AnyStore::Fhir(s) => s.audit(event).await,
        }
    }

    async fn revocations(&self) -> Result<Vec<Value>> {
        match self {
            AnyStore::Local(s) => s.revocations().await,
            AnyStore::Fhir(s) => s.revocations().await,
        }
    }
}

/// Resource ids are UUIDs (derived ids) or, from callers, FHIR ids: `[A-Za-z0-9\-\.]{1,64}`. Anything else
/// is refused before it reaches a path or a URL.
pub fn valid_id(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
        && id != "."
        && id != ".."
}

/// `resourceType` and `id` of a resource.
pub fn type_and_id(resource: &Value) -> Result<(&str, &str)> {
    let rtype = resource.get("resourceType").and_then(Value::as_str);
    let id = resource.get("id").and_then(Value::as_str);
    match (rtype, id) {
        (Some(t), Some(i)) if valid_id(i) => Ok((t, i)),
        _ => Err(Error::Internal(
            "a certificate resource has no resourceType or no valid id".into(),
        )),
    }
}
