//! Issuing and storing one certificate, idempotently.
//!
//! "The same event" is decided by content: the SHA-256 of the canonical JSON of the validated
//! [`VaccinationEvent`] (field order fixed by the type, so two submissions that differ only in JSON layout,
//! in the QuestionnaireResponse wrapper or in fields the event does not carry, are the same event). It is kept
//! as the document Bundle's `meta.tag` ([`crate::store::CONTENT_TAG_SYSTEM`]).
//!
//! - Same hcid and dose, same content: the stored certificate is returned; nothing is signed or written.
//! - Same hcid and dose, other content (a corrected event): a new certificate replaces the document
//!   (`Bundle/<id>` is the current version); its QR DocumentReferences get new ids and
//!   `relatesTo: [{code: replaces}]` pointing at the previous ones, which are rewritten `status: superseded`.
//!
//! - Same hcid and dose, same content, but the stored certificate expired or expires within the renewal
//!   window (`DDCC_RENEWAL_DAYS`): it is signed anew (a *renewal*, see [`super::renewal`]): new `iat`/`exp`,
//!   same content, new QR and PDF resources; the previous ones are superseded as for a correction (but,
//!   unlike a corrected one, the previous certificate was valid and stays so until its `exp`).
//!
//! QR DocumentReference ids are therefore derived from the document's id, the content hash and the signing
//! generation ([`super::renewal::version_key`]).
//!
//! **Which version is newer** (two versions of one event, in whatever order they arrive, on whichever
//! replica; see [`order`]): a version seen before (the current one or one it replaced) is never issued again;
//! otherwise, when both carry `QuestionnaireResponse.authored`, the later `authored` wins, and at the same
//! `authored` an `amended` response wins over a `completed` one; when either lacks `authored`, the one
//! arriving later is the correction. An older version changes nothing and answers 409 naming the current one.
//!
//! **Across replicas** the store is the arbiter: the document is read with its revision, and saved only if
//! the revision is unchanged ([`Store::save`]). A writer that loses discards what it signed, reads again and
//! answers what is stored. Inside one process, submissions of one hcid also queue on a keyed lock, so that
//! concurrent copies do not all sign before one of them wins.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};

use crate::document::stored;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use time::OffsetDateTime;
use tracing::Instrument as _;

use super::links::Links;
use super::metrics::Metrics;
use super::renewal::{self, Signed};
use super::signer::ServiceSigner;
use super::Orchestrations;
use crate::clock::Clock;
use crate::configuration::IssuanceConfig;
use crate::credential;
use crate::document;
use crate::domain::EventVersion;
use crate::domain::VaccinationEvent;
use crate::error::{Error, Result};
use crate::pipeline;
use crate::signer::Signer as _;
use crate::store::{
    AnyStore, CertificateRecord, Store, AUTHORED_TAG_SYSTEM, CONTENT_TAG_SYSTEM, REVOKED_TAG,
    STATUS_TAG_SYSTEM, SUPERSEDED_TAG_SYSTEM,
};

/// Namespace of the content-derived QR DocumentReference ids. Fixed forever.
const QR_ID_NAMESPACE: uuid::Uuid =
    uuid::Uuid::from_u128(0x5d2a_9c1e_77b4_4f0e_9a63_1c8e_2f40_d7a1);

/// What a request got.
#[derive(Debug, Clone)]
pub enum Issued {
    /// A new certificate (first issue, or a corrected event).
    Created(Value),
    /// The certificate already issued for this very event.
    Existing(Value),
}

/// What a revocation found.
#[derive(Debug, Clone)]
pub enum Revoked {
    /// Revoked now: the document as stored, with its revoked statuses.
    Now(Value),
    /// Revoked before (the request is idempotent): the stored document.
    Already(Value),
    /// No document has this id.
    Unknown,
}

/// Reason recorded when a correction revokes the certificate it replaces.
pub const SUPERSEDED_REASON: &str = "superseded by a correction of the event";

impl Issued {
    pub fn document(&self) -> &Value {
        match self {
            Issued::Created(d) | Issued::Existing(d) => d,
        }
    }
}

pub struct Issuer {
    pub signer: Arc<ServiceSigner>,
    pub store: AnyStore,
    pub links: Links,
    pub metrics: Arc<Metrics>,
    settings: RwLock<Arc<IssuanceConfig>>,
    locks: KeyedLocks,
    /// One permit per core for the rendering work (QR codes, document, PDF; and decoding a stored QR image):
    /// more at once only adds threads competing for the same cores, each holding its images and PDF in memory
    /// (and in its own malloc arena). Signing waits for Vault without one.
    cpu_slots: Arc<tokio::sync::Semaphore>,
    /// Certificates between their first store read and their stored answer, at most
    /// [`IN_FLIGHT_PER_CORE`] per core. A slow store otherwise gathers every waiting request's finished
    /// certificate (PDF, document, transaction) in memory: 97 MB at 64 connections in `bench/load`.
    in_flight: tokio::sync::Semaphore,
    /// Dates certificates (`iat`) and judges whether a stored one is due for renewal.
    clock: Clock,
}

/// Enough to keep every core busy while each certificate waits a store round trip several times its
/// ~3 ms of CPU; few enough that a stalled store cannot make memory grow with the number of clients.
const IN_FLIGHT_PER_CORE: usize = 8;

/// How often one request reads, decides and saves again after another writer changed the document first.
/// Each round ends with someone's certificate stored, so this is reached only under a storm of versions.
const WRITE_ATTEMPTS: usize = 5;

impl std::fmt::Debug for Issuer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Issuer").finish_non_exhaustive()
    }
}

impl Issuer {
    pub fn new(
        signer: ServiceSigner,
        store: AnyStore,
        links: Links,
        metrics: Arc<Metrics>,
        settings: IssuanceConfig,
        clock: Clock,
    ) -> Self {
        Issuer {
            signer: Arc::new(signer),
            store,
            links,
            metrics,
            settings: RwLock::new(Arc::new(settings)),
            locks: KeyedLocks::default(),
            cpu_slots: Arc::new(tokio::sync::Semaphore::new(cores())),
            in_flight: tokio::sync::Semaphore::new(cores() * IN_FLIGHT_PER_CORE),
            clock,
        }
    }

    /// Sizes the CPU work to `workers` threads (`DDCC_WORKERS`) instead of the CPUs available.
    pub fn with_workers(mut self, workers: usize) -> Self {
        let workers = workers.max(1);
        self.cpu_slots = Arc::new(tokio::sync::Semaphore::new(workers));
        self.in_flight = tokio::sync::Semaphore::new(workers * IN_FLIGHT_PER_CORE);
        self
    }

    /// The issuance settings in force now.
    pub fn settings(&self) -> Arc<IssuanceConfig> {
        match self.settings.read() {
            Ok(s) => Arc::clone(&s),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Replaces the issuance settings; requests already running keep the ones they started with.
    pub fn set_settings(&self, settings: IssuanceConfig) {
        let mut guard = match self.settings.write() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(settings);
    }

    /// Issues (or finds) the certificate of `event`, recording outbound calls into `trace`. `audit` is the
    /// AuditEvent to store with a certificate this call creates ([`CertificateRecord::audit`]): stored
    /// exactly when the answer is [`Issued::Created`]; the caller records any other outcome itself.
    pub async fn issue(
        self: &Arc<Self>,
        event: VaccinationEvent,
        trace: &Orchestrations,
        audit: Option<Value>,
    ) -> Result<Issued> {
        let span = tracing::info_span!("ddcc.issue", "ddcc.outcome" = tracing::field::Empty);
        let result = self
            .issue_locked(event, trace, audit)
            .instrument(span.clone())
            .await;
        span.record("ddcc.outcome", outcome_label(&result));
        match &result {
            Ok(Issued::Existing(_)) => self.metrics.certificate("duplicate"),
            Ok(Issued::Created(_)) => {}
            Err(e) if e.is_caller_fault() => self.metrics.certificate("invalid"),
            Err(e) => {
                self.metrics.certificate("failed");
                if let Error::Unavailable { service, .. } = e {
                    self.metrics.dependency_error(dependency_label(service));
                }
            }
        }
        result
    }

    async fn issue_locked(
        self: &Arc<Self>,
        event: VaccinationEvent,
        trace: &Orchestrations,
        audit: Option<Value>,
    ) -> Result<Issued> {
        let canonical = canonical_json(&event)?;
        let content_hash = hex::encode(Sha256::digest(&canonical));
        // Taken before the hcid lock: a holder of that lock already holds its own permit.
        let _in_flight = self
            .in_flight
            .acquire()
            .await
            .map_err(|e| Error::Internal(format!("issuing slots closed: {e}")))?;
        let _guard = self.locks.lock(event.certificate.hcid.as_str()).await;
        let bundle_id = document::bundle_id(&event);

        let mut signed: Option<pipeline::Certificate> = None;
        let mut conflict = String::new();
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self.store.read_document(&bundle_id).await?;
            let previous = stored.document;
            if let Some(previous) = &previous {
                match order(previous, &content_hash, &event.version) {
                    // A revoked certificate is never signed anew: resubmitting its event answers it as it is.
                    Order::Same if is_revoked(previous) || !self.renewal_due(previous).await => {
                        return Ok(Issued::Existing(previous.clone()))
                    }
                    // Renewal: the same content signed anew, superseding the stored version.
                    Order::Same => {}
                    Order::Older(why) => {
                        return Err(Error::Superseded(format!(
                            "this event is older than the certificate issued for it, Bundle/{bundle_id} \
                             (event-sha256 {current}): {why}; nothing was changed",
                            current = tag_of(previous).unwrap_or_default()
                        )))
                    }
                    Order::Newer => {}
                }
            }
            // Signed once: after a write conflict the same certificate is saved against the new revision.
            let certificate = match signed.take() {
                Some(certificate) => certificate,
                None => self.sign(&event, trace).await?,
            };
            let mut record = self
                .record(
                    &certificate,
                    &event.version,
                    &content_hash,
                    &canonical,
                    &bundle_id,
                    previous.as_ref(),
                )
                .await?;
            record.audit = audit.clone();
            let saved = self
                .store
                .save(&record, &stored.revision, trace)
                .instrument(tracing::info_span!(
                    "ddcc.store",
                    "ddcc.store" = self.store_kind()
                ))
                .await;
            match saved {
                Ok(()) => {
                    self.metrics.certificate(match &previous {
                        None => "issued",
                        Some(p) if tag_of(p).as_deref() == Some(content_hash.as_str()) => "renewed",
                        Some(_) => "reissued",
                    });
                    return Ok(Issued::Created(record.document));
                }
                // Another replica wrote first: read what it stored and decide again.
                Err(Error::WriteConflict(why)) => {
                    tracing::debug!(reason = %why, "write conflict; reading the document again");
                    conflict = why;
                    signed = Some(certificate);
                }
                Err(e) => return Err(e),
            }
        }
        Err(Error::WriteConflict(format!(
            "the certificate kept changing while this request was being issued ({conflict}); retry"
        )))
    }

    /// The `ddcc.store` attribute of the store's spans.
    fn store_kind(&self) -> &'static str {
        match &self.store {
            AnyStore::Fhir(_) => "fhir",
            AnyStore::Local(_) => "local",
        }
    }

    /// Revokes the certificate of document `bundle_id` (`$revokeHealthCertificate`): idempotent; saved
    /// against the revision read, like an issuance, so that a correction and a revocation racing on two
    /// replicas cannot lose either.
    ///
    /// Statuses (FHIR R4): the Composition and every DocumentReference of the version (QR codes, PDF) become
    /// `entered-in-error` ("created in error … should not be used"; the only R4 status of both that says the
    /// document must not be relied on), the Bundle gets the tag [`REVOKED_TAG`], and the revocation record
    /// (a `Basic`, [`super::revocations`]) holds the reason and what verifiers match. A correction's superseded
    /// DocumentReferences keep `superseded` (what happened to them) and get a revocation record too.
    pub async fn revoke(
        &self,
        bundle_id: &str,
        reason: &str,
        trace: &Orchestrations,
    ) -> Result<Revoked> {
        let mut conflict = String::new();
        for _ in 0..WRITE_ATTEMPTS {
            let stored = self.store.read_document(bundle_id).await?;
            let Some(document) = stored.document else {
                return Ok(Revoked::Unknown);
            };
            if is_revoked(&document) {
                return Ok(Revoked::Already(document));
            }
            // The version's key names its resources: the event hash, and the generation of a renewal.
            let key = version_key_of(&document)
                .ok_or_else(|| Error::Internal(format!("Bundle/{bundle_id} has no event tag")))?;
            let record = self
                .revocation_record(&document, bundle_id, &key, reason)
                .await?;
            let mut revoked = document.clone();
            mark_revoked(&mut revoked);
            let mut extra = vec![record];
            if let Some(mut pdf) = self
                .store
                .read("DocumentReference", &pdf_reference_id(bundle_id, &key))
                .await?
            {
                pdf["status"] = json!("entered-in-error");
                extra.push(pdf);
            }
            let record = CertificateRecord {
                document: revoked,
                superseded: Vec::new(),
                extra,
                audit: None,
            };
            match self.store.save(&record, &stored.revision, trace).await {
                Ok(()) => {
                    self.metrics.certificate("revoked");
                    return Ok(Revoked::Now(record.document));
                }
                Err(Error::WriteConflict(why)) => conflict = why,
                Err(e) => return Err(e),
            }
        }
        Err(Error::WriteConflict(format!(
            "the certificate kept changing while it was being revoked ({conflict}); retry"
        )))
    }

    /// The revocation record of a stored document version (QR decoding: off the async workers).
    async fn revocation_record(
        &self,
        document: &Value,
        bundle_id: &str,
        content_hash: &str,
        reason: &str,
    ) -> Result<Value> {
        let (document, bundle_id, hash, reason) = (
            document.clone(),
            bundle_id.to_owned(),
            content_hash.to_owned(),
            reason.to_owned(),
        );
        // Decoding a QR image is ~0.2 s of CPU: one per core at a time, like rendering.
        let slot = Arc::clone(&self.cpu_slots)
            .acquire_owned()
            .await
            .map_err(|e| Error::Internal(format!("issuing slots closed: {e}")))?;
        tokio::task::spawn_blocking(move || {
            let _slot = slot;
            super::revocations::record(
                &document,
                &bundle_id,
                &hash,
                &reason,
                OffsetDateTime::now_utc(),
            )
        })
        .await
        .map_err(|e| Error::Internal(format!("revocation task failed: {e}")))?
    }

    /// Signs `event` and renders its certificate. Signing (with Vault, a round trip) is awaited; the
    /// rendering (about a millisecond of CPU) runs right here, on the thread of the request, one per core at
    /// a time: a hand-off to a blocking thread and back cost more than it spared the event loop.
    async fn sign(
        &self,
        event: &VaccinationEvent,
        trace: &Orchestrations,
    ) -> Result<pipeline::Certificate> {
        let settings = self.settings();
        let signer = self.signer.traced(trace.clone());
        let now = self.clock.now();
        let credentials =
            credential::issue(event, &settings, &signer, now.unix_timestamp()).await?;
        let development_key = signer.is_development();
        let _slot = self
            .cpu_slots
            .acquire()
            .await
            .map_err(|e| Error::Internal(format!("issuing slots closed: {e}")))?;
        pipeline::render_certificate(event, &settings, credentials, now, development_key)
    }

    /// Whether the stored certificate of an unchanged event is to be signed anew now: expired, expiring
    /// within the renewal window, or signed by a withdrawn key.
    ///
    /// When that cannot be told (a document stored before the signing tags, whose QR image does not read;
    /// the withdrawn keys unreadable), the stored certificate is answered, as before renewal existed.
    async fn renewal_due(&self, stored: &Value) -> bool {
        let window = i64::try_from(self.settings().renewal.as_secs()).unwrap_or(i64::MAX);
        let document = stored.clone();
        // Untagged documents are read from their QR image: CPU work, off the async workers.
        let signed = tokio::task::spawn_blocking(move || Signed::of(&document))
            .await
            .map_err(|e| Error::Internal(format!("reading the stored certificate failed: {e}")))
            .and_then(|r| r);
        let due = signed.and_then(|signed| {
            Ok(renewal::due(signed.exp, self.clock.unix(), window)
                || self.signer.withdrawn_kids()?.contains(&signed.kid))
        });
        due.unwrap_or_else(|e| {
            tracing::warn!(error = %e, "cannot tell whether the stored certificate is due for renewal");
            false
        })
    }

    /// The event a stored document was issued for, as kept beside it; `None` for documents stored before
    /// events were kept. Its hash must be the document's: a kept event never stands in for another.
    pub async fn stored_event(&self, document: &Value) -> Result<Option<VaccinationEvent>> {
        use base64::Engine as _;
        let (Some(bundle_id), Some(hash)) =
            (document.get("id").and_then(Value::as_str), tag_of(document))
        else {
            return Ok(None);
        };
        let Some(binary) = self
            .store
            .read("Binary", &event_binary_id(bundle_id, &hash))
            .await?
        else {
            return Ok(None);
        };
        let corrupt =
            |why: String| Error::Internal(format!("the kept event of Bundle/{bundle_id}: {why}"));
        let json = binary
            .get("data")
            .and_then(Value::as_str)
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
            .ok_or_else(|| corrupt("no data".into()))?;
        if hex::encode(Sha256::digest(&json)) != hash {
            return Err(corrupt("its hash is not the document's".into()));
        }
        let mut event: VaccinationEvent =
            serde_json::from_slice(&json).map_err(|e| corrupt(e.to_string()))?;
        event.version = version_of(document);
        Ok(Some(event))
    }

    /// What to store for a signed certificate: the document (tags, links, `relatesTo` to what it
    /// replaces), the PDF, and `previous`'s DocumentReferences marked superseded.
    async fn record(
        &self,
        certificate: &pipeline::Certificate,
        version: &EventVersion,
        content_hash: &str,
        canonical: &[u8],
        bundle_id: &str,
        previous: Option<&Value>,
    ) -> Result<CertificateRecord> {
        let mut document = serde_json::to_value(&certificate.document)
            .map_err(|e| Error::Internal(format!("document Bundle does not serialise: {e}")))?;
        // A renewal (same content as `previous`) is the next generation; a new content starts at 0.
        let generation = match previous {
            Some(p) if tag_of(p).as_deref() == Some(content_hash) => renewal::generation(p) + 1,
            _ => 0,
        };
        let key = renewal::version_key(content_hash, generation);
        rekey_qr_references(&mut document, &key);
        set_tags(&mut document, content_hash, version, previous);
        let signed = Signed {
            exp: certificate.ddcc.signed.exp,
            kid: hex::encode(certificate.ddcc.signed.kid),
        };
        add_tags(
            &mut document,
            signed
                .tags()
                .into_iter()
                .chain(renewal::generation_tag(generation)),
        );
        let mut extra = pdf_resources(&document, bundle_id, &key, &certificate.pdf)?;
        extra.push(event_binary(bundle_id, content_hash, canonical));
        let mut superseded = Vec::new();
        if let Some(previous) = previous {
            // A correction revokes the certificate it replaces (its QR codes would otherwise still verify);
            // one revoked before keeps its own record and reason. A renewal (the same content signed anew)
            // revokes nothing: the previous certificate was valid.
            let corrected = tag_of(previous).is_some_and(|old| old != content_hash);
            if let (true, false, Some(old_key)) =
                (corrected, is_revoked(previous), version_key_of(previous))
            {
                extra.push(
                    self.revocation_record(previous, bundle_id, &old_key, SUPERSEDED_REASON)
                        .await?,
                );
            }
            superseded = supersede(previous, &mut document);
            if let Some(old_key) = version_key_of(previous) {
                let old_id = pdf_reference_id(bundle_id, &old_key);
                if let Some(mut old) = self.store.read("DocumentReference", &old_id).await? {
                    mark_superseded(&mut old);
                    superseded.push(old);
                    if let Some(new) = extra.iter_mut().find(|r| is_document_reference(r)) {
                        new["relatesTo"] = json!([{
                            "code": "replaces",
                            "target": {"reference": format!("DocumentReference/{old_id}")}
                        }]);
                    }
                }
            }
        }
        self.add_links(&mut document, bundle_id, certificate.dcc.is_ok());
        Ok(CertificateRecord {
            document,
            superseded,
            extra,
            audit: None,
        })
    }

    /// The QR image (PNG) of a stored QR DocumentReference (`$getQRCode`): its own, or, for a standalone copy
    /// ([`stored::standalone`]), its document's. `None`: it has none.
    pub async fn qr_image(&self, reference: &Value) -> Result<Option<Vec<u8>>> {
        if let Some(png) = stored::attachment(reference, "image/png") {
            return Ok(Some(png));
        }
        let (Some(bundle_id), Some(id)) = (stored::document_of(reference), id_of(reference)) else {
            return Ok(None);
        };
        let Some(document) = self.store.read("Bundle", bundle_id).await? else {
            return Ok(None);
        };
        Ok(stored::document_reference(&document, &id)
            .and_then(|r| stored::attachment(r, "image/png")))
    }

    /// `Bundle.link`s to the citizen downloads (relation = file name without extension).
    fn add_links(&self, document: &mut Value, bundle_id: &str, has_dcc: bool) {
        let mut files = vec!["certificate.pdf", "ddcc-qr.png"];
        if has_dcc {
            files.push("dcc-qr.png");
        }
        let links: Vec<Value> = files
            .into_iter()
            .filter_map(|file| {
                let url = self.links.url(bundle_id, file)?;
                let relation = file.trim_end_matches(".png").trim_end_matches(".pdf");
                Some(json!({"relation": relation, "url": url}))
            })
            .collect();
        if let Some(list) = document.get_mut("link").and_then(Value::as_array_mut) {
            list.extend(links);
        } else {
            document["link"] = Value::Array(links);
        }
    }
}

/// The previous version's QR DocumentReferences, `superseded`, and `relatesTo` on the new ones. They are
/// kept whole, as the previous document held them: stored on their own they only pointed at it
/// ([`stored::standalone`]), and the current document no longer holds them.
fn supersede(previous: &Value, document: &mut Value) -> Vec<Value> {
    let mut old_refs: Vec<(String, Option<String>)> = Vec::new();
    let mut superseded = Vec::new();
    for old in qr_references(previous) {
        old_refs.push((id_of(old).unwrap_or_default(), qr_kind(old)));
        let mut old = old.clone();
        mark_superseded(&mut old);
        superseded.push(old);
    }
    for new in qr_references_mut(document) {
        let kind = qr_kind(new);
        if let Some((old_id, _)) = old_refs.iter().find(|(_, k)| *k == kind) {
            new["relatesTo"] = json!([{
                "code": "replaces",
                "target": {"reference": format!("DocumentReference/{old_id}")}
            }]);
        }
    }
    superseded
}

/// Id of the Binary holding the citizen PDF of a document version (`key`: [`renewal::version_key`]).
fn pdf_binary_id(bundle_id: &str, key: &str) -> String {
    uuid::Uuid::new_v5(
        &QR_ID_NAMESPACE,
        format!("Binary|pdf|{bundle_id}|{key}").as_bytes(),
    )
    .to_string()
}

/// Id of the Binary holding the citizen PDF of a stored document version.
pub fn pdf_binary_id_of(document: &Value) -> Option<String> {
    let bundle_id = document.get("id").and_then(Value::as_str)?;
    Some(pdf_binary_id(bundle_id, &version_key_of(document)?))
}

/// The [`renewal::version_key`] of a stored document version.
fn version_key_of(document: &Value) -> Option<String> {
    Some(renewal::version_key(
        &tag_of(document)?,
        renewal::generation(document),
    ))
}

/// Id of the DocumentReference of the citizen PDF of a document version.
fn pdf_reference_id(bundle_id: &str, key: &str) -> String {
    uuid::Uuid::new_v5(
        &QR_ID_NAMESPACE,
        format!("DocumentReference|pdf|{bundle_id}|{key}").as_bytes(),
    )
    .to_string()
}

/// The PDF as a Binary, and a DocumentReference to it (LOINC 82593-5 "Immunization summary report") for
/// the same Patient as the document.
fn pdf_resources(document: &Value, bundle_id: &str, key: &str, pdf: &[u8]) -> Result<Vec<Value>> {
    use base64::Engine as _;
    let patient_url = document
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|e| e.pointer("/resource/resourceType").and_then(Value::as_str) == Some("Patient"))
        .and_then(|e| e.get("fullUrl").and_then(Value::as_str))
        .ok_or_else(|| Error::Internal("document without a Patient entry".into()))?;
    let binary_id = pdf_binary_id(bundle_id, key);
    let binary = json!({
        "resourceType": "Binary",
        "id": binary_id,
        "contentType": "application/pdf",
        "data": base64::engine::general_purpose::STANDARD.encode(pdf),
    });
    let reference = json!({
        "resourceType": "DocumentReference",
        "id": pdf_reference_id(bundle_id, key),
        "status": "current",
        "type": {"coding": [{"system": "http://loinc.org", "code": "82593-5",
                              "display": "Immunization summary report"}]},
        "subject": {"reference": patient_url},
        "date": document.get("timestamp").cloned().unwrap_or(Value::Null),
        "content": [{"attachment": {
            "contentType": "application/pdf",
            "url": format!("Binary/{binary_id}"),
            "size": pdf.len(),
            "title": "certificate.pdf",
        }}],
    });
    Ok(vec![binary, reference])
}

/// The `ddcc.outcome` of a `ddcc.issue` span: `created`, `existing`, `invalid` or `failed`.
fn outcome_label(result: &Result<Issued>) -> &'static str {
    match result {
        Ok(Issued::Created(_)) => "created",
        Ok(Issued::Existing(_)) => "existing",
        Err(e) if e.is_caller_fault() => "invalid",
        Err(_) => "failed",
    }
}

fn dependency_label(service: &str) -> &'static str {
    match service {
        "Vault" => "vault",
        "FHIR server" => "fhir",
        "OpenHIM" => "openhim",
        _ => "other",
    }
}

/// The event's canonical JSON (field order fixed by the type); its SHA-256 is the content hash.
fn canonical_json(event: &VaccinationEvent) -> Result<Vec<u8>> {
    serde_json::to_vec(event).map_err(|e| Error::Internal(format!("event does not serialise: {e}")))
}

/// Id of the Binary keeping the canonical event of a content (for `reissue`).
fn event_binary_id(bundle_id: &str, content_hash: &str) -> String {
    uuid::Uuid::new_v5(
        &QR_ID_NAMESPACE,
        format!("Binary|event|{bundle_id}|{content_hash}").as_bytes(),
    )
    .to_string()
}

/// The canonical event kept beside its document, so that the certificate can be signed anew without its
/// sender (`ddcc-mediator reissue`). It holds what the document's Patient and Immunization already hold.
fn event_binary(bundle_id: &str, content_hash: &str, canonical: &[u8]) -> Value {
    use base64::Engine as _;
    json!({
        "resourceType": "Binary",
        "id": event_binary_id(bundle_id, content_hash),
        "contentType": "application/json",
        "data": base64::engine::general_purpose::STANDARD.encode(canonical),
    })
}

/// What orders a stored version (its `authored` and `amended` tags), as [`EventVersion`].
fn version_of(document: &Value) -> EventVersion {
    let tags = tags_of(document);
    EventVersion {
        authored: tags
            .iter()
            .find(|(system, _)| *system == AUTHORED_TAG_SYSTEM)
            .and_then(|(_, code)| {
                OffsetDateTime::parse(code, &time::format_description::well_known::Rfc3339).ok()
            }),
        amended: tags
            .iter()
            .any(|(system, code)| *system == STATUS_TAG_SYSTEM && *code == "amended"),
    }
}

/// The content hash a stored document was issued for.
pub fn tag_of(document: &Value) -> Option<String> {
    document
        .pointer("/meta/tag")?
        .as_array()?
        .iter()
        .find(|t| t.get("system").and_then(Value::as_str) == Some(CONTENT_TAG_SYSTEM))?
        .get("code")?
        .as_str()
        .map(str::to_owned)
}

/// `status: superseded`, unless the reference was revoked (`entered-in-error` says more: keep it).
fn mark_superseded(reference: &mut Value) {
    if reference.get("status").and_then(Value::as_str) != Some("entered-in-error") {
        reference["status"] = json!("superseded");
    }
}

/// Whether a stored document was revoked ([`REVOKED_TAG`]).
pub fn is_revoked(document: &Value) -> bool {
    tags_of(document)
        .iter()
        .any(|(system, code)| (*system, *code) == REVOKED_TAG)
}

/// A document as revoked: the tag, and `entered-in-error` on its Composition and QR DocumentReferences.
fn mark_revoked(document: &mut Value) {
    for resource in document
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get_mut("resource"))
    {
        if matches!(
            resource.get("resourceType").and_then(Value::as_str),
            Some("Composition" | "DocumentReference")
        ) {
            resource["status"] = json!("entered-in-error");
        }
    }
    add_tags(
        document,
        [json!({"system": REVOKED_TAG.0, "code": REVOKED_TAG.1})],
    );
}

/// How an incoming version of an event stands to the stored document (module documentation: the rule).
#[derive(Debug, PartialEq, Eq)]
enum Order {
    /// The very event stored: answer the stored certificate.
    Same,
    /// A correction of what is stored: issue it.
    Newer,
    /// Older than what is stored (the reason): change nothing.
    Older(&'static str),
}

fn order(stored: &Value, content_hash: &str, version: &EventVersion) -> Order {
    let tags = tags_of(stored);
    if tag_of(stored).as_deref() == Some(content_hash) {
        return Order::Same;
    }
    if tags
        .iter()
        .any(|(system, code)| *system == SUPERSEDED_TAG_SYSTEM && *code == content_hash)
    {
        return Order::Older("the current certificate replaced this very event");
    }
    let stored_authored = tags
        .iter()
        .find(|(system, _)| *system == AUTHORED_TAG_SYSTEM)
        .and_then(|(_, code)| {
            OffsetDateTime::parse(code, &time::format_description::well_known::Rfc3339).ok()
        });
    let stored_amended = tags
        .iter()
        .any(|(system, code)| *system == STATUS_TAG_SYSTEM && *code == "amended");
    match (version.authored, stored_authored) {
        (Some(new), Some(old)) if new > old => Order::Newer,
        (Some(new), Some(old)) if new < old => {
            Order::Older("its QuestionnaireResponse.authored is earlier than the current version's")
        }
        (Some(_), Some(_)) if version.amended && !stored_amended => Order::Newer,
        (Some(_), Some(_)) => Order::Older(
            "it has the same QuestionnaireResponse.authored as the current version; send a correction \
             with a later authored time",
        ),
        // Without both times, arrival decides: a version never seen before is the correction.
        _ => Order::Newer,
    }
}

/// `(system, code)` of each `meta.tag`.
fn tags_of(document: &Value) -> Vec<(&str, &str)> {
    document
        .pointer("/meta/tag")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| Some((t.get("system")?.as_str()?, t.get("code")?.as_str()?)))
        .collect()
}

/// The document's tags: its event hash, the hashes of every version it replaces (`previous`'s own and
/// those `previous` replaced), and what orders it (`authored`, `amended`).
fn set_tags(document: &mut Value, hash: &str, version: &EventVersion, previous: Option<&Value>) {
    let mut tags = vec![json!({"system": CONTENT_TAG_SYSTEM, "code": hash})];
    if let Some(authored) = version.authored.and_then(|a| {
        a.format(&time::format_description::well_known::Rfc3339)
            .ok()
    }) {
        tags.push(json!({"system": AUTHORED_TAG_SYSTEM, "code": authored}));
    }
    if version.amended {
        tags.push(json!({"system": STATUS_TAG_SYSTEM, "code": "amended"}));
    }
    if let Some(previous) = previous {
        let replaced = tags_of(previous)
            .into_iter()
            .filter(|(system, _)| *system == CONTENT_TAG_SYSTEM || *system == SUPERSEDED_TAG_SYSTEM)
            // A renewal replaces a version of the same content, which is not thereby superseded content.
            .filter(|(_, code)| *code != hash)
            .map(|(_, code)| code.to_owned())
            .collect::<std::collections::BTreeSet<_>>();
        tags.extend(
            replaced
                .into_iter()
                .map(|code| json!({"system": SUPERSEDED_TAG_SYSTEM, "code": code})),
        );
    }
    add_tags(document, tags);
}

/// Adds `tags` to the document's `meta.tag`, kept sorted by (system, code): the order HAPI answers tags in,
/// whatever order they were written in (its JPA server sorts them: `MetaTagSorterAlphabetical`, no system
/// first), so that a document read back is the very one handed out.
fn add_tags(document: &mut Value, tags: impl IntoIterator<Item = Value>) {
    if !document.get("meta").is_some_and(Value::is_object) {
        document["meta"] = json!({});
    }
    let meta = &mut document["meta"];
    if !meta.get("tag").is_some_and(Value::is_array) {
        meta["tag"] = json!([]);
    }
    if let Some(all) = meta["tag"].as_array_mut() {
        all.extend(tags);
        all.sort_by(|a, b| tag_key(a).cmp(&tag_key(b)));
    }
}

fn tag_key(tag: &Value) -> (&str, &str) {
    let text = |name| tag.get(name).and_then(Value::as_str).unwrap_or("");
    (text("system"), text("code"))
}

fn id_of(resource: &Value) -> Option<String> {
    resource
        .get("id")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

/// The QR type code (`who`, `dcc`) of a QR DocumentReference.
fn qr_kind(resource: &Value) -> Option<String> {
    resource
        .pointer("/type/coding/0/code")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn is_document_reference(resource: &Value) -> bool {
    resource.get("resourceType").and_then(Value::as_str) == Some("DocumentReference")
}

fn qr_references(document: &Value) -> impl Iterator<Item = &Value> {
    stored::resources_of(document, "DocumentReference")
}

fn qr_references_mut(document: &mut Value) -> impl Iterator<Item = &mut Value> {
    document
        .get_mut("entry")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get_mut("resource"))
        .filter(|r| is_document_reference(r))
}

/// Gives each QR DocumentReference the id UUIDv5(its derived id | version key), everywhere it appears
/// (`id`, the entry's `urn:uuid:` fullUrl, the Composition's references). UUIDs are unique tokens, so a
/// textual replacement in every string of the document is exact; done in place, without serialising
/// and parsing the document again.
fn rekey_qr_references(document: &mut Value, key: &str) {
    fn walk(value: &mut Value, renames: &[(String, String)]) {
        match value {
            // Every UUID has a '-', which base64 (the images and payloads, most of the document's
            // bytes) never has: one memchr skips those strings.
            Value::String(text) if text.as_bytes().contains(&b'-') => {
                for (old, new) in renames {
                    if text.contains(old.as_str()) {
                        *text = text.replace(old.as_str(), new);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, renames)),
            Value::Object(map) => map.values_mut().for_each(|v| walk(v, renames)),
            _ => {}
        }
    }
    let renames: Vec<(String, String)> = qr_references(document)
        .filter_map(id_of)
        .map(|old| {
            let new = uuid::Uuid::new_v5(&QR_ID_NAMESPACE, format!("{old}|{key}").as_bytes());
            (old, new.to_string())
        })
        .collect();
    walk(document, &renames);
}

/// One async mutex per key, dropped when nobody holds or waits for it.
#[derive(Default)]
struct KeyedLocks {
    map: Mutex<HashMap<String, std::sync::Weak<tokio::sync::Mutex<()>>>>,
}

impl KeyedLocks {
    async fn lock(&self, key: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut map = match self.map.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            map.retain(|_, weak| weak.strong_count() > 0);
            match map.get(key).and_then(std::sync::Weak::upgrade) {
                Some(existing) => existing,
                None => {
                    let fresh = Arc::new(tokio::sync::Mutex::new(()));
                    map.insert(key.to_owned(), Arc::downgrade(&fresh));
                    fresh
                }
            }
        };
        lock.lock_owned().await
    }
}

fn cores() -> usize {
    crate::configuration::Workers::available().count
}
