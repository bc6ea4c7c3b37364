//! Document: a [`VaccinationEvent`] and its signed QR artefacts become the DDCC:VS document Bundle
//! (IG 1.0.0 profile DDCCVSDocument, `http://smart.who.int/ddcc` canonicals).
//!
//! The Bundle is a FHIR document, unlike what the WHO reference mediator returned (who-reference-mediator.md
//! §5, §12 item 7): the Composition is the first entry, `identifier` is a single Identifier, entries carry no
//! `request`, the issuing Organization is an entry, and every reference is the `urn:uuid:` fullUrl of another
//! entry, so the document resolves on its own. Ids are deterministic (see `ids.rs`).
//!
//! Entry order follows the IG examples: Composition, Patient, Organization, Immunization,
//! ImmunizationRecommendation (only when a next dose is due), then one DocumentReference per QR.

mod ids;
mod resources;
pub mod stored;

use fhir_models::{Bundle, BundleEntry, BundleLink, Identifier, Meta};

use crate::domain::VaccinationEvent;
use ids::{DocumentIds, Local};
use resources::Inputs;

/// Which QR payload an artefact carries (IG code system DDCCQRTypeCodeSystem).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QrKind {
    /// The DDCC core data set (`who`).
    Who,
    /// The EU DCC payload (`dcc`).
    Dcc,
}

impl QrKind {
    /// The DDCCQRTypeCodeSystem code.
    pub fn code(self) -> &'static str {
        match self {
            QrKind::Who => "who",
            QrKind::Dcc => "dcc",
        }
    }

    /// The DDCCQRTypeCodeSystem display.
    pub fn display(self) -> &'static str {
        match self {
            QrKind::Who => "WHO DDCC",
            QrKind::Dcc => "EU DCC",
        }
    }
}

/// One signed QR, as it goes into a DocumentReference (content slots serialized / image / pdf).
#[derive(Debug, Clone)]
pub struct QrArtifact {
    pub kind: QrKind,
    /// The hcert payload as JSON (the `serialized` attachment).
    pub payload_json: Vec<u8>,
    /// The `HC1:` string.
    pub hc1: String,
    /// QR image (PNG).
    pub png: Vec<u8>,
}

/// What the document needs besides the event.
#[derive(Debug, Clone)]
pub struct DocumentContext {
    /// Issue time (Bundle.timestamp, Composition.date, DocumentReference.date).
    pub issued_at: time::OffsetDateTime,
    /// Display name of the issuing public health authority. DDCCOrganization requires `Organization.name`,
    /// but the QuestionnaireResponse carries only the authority's identifier (`pha`), so the name comes from
    /// configuration; `None` uses the identifier as the name.
    pub issuer_name: Option<String>,
    pub qrs: Vec<QrArtifact>,
}

/// The id [`build_document`] gives the document Bundle of `event`, without building it: the key a certificate
/// is found and stored under.
pub fn bundle_id(event: &VaccinationEvent) -> String {
    ids_of(event).bundle.id
}

/// The ids of `event`'s document, from its hcid, dose and issuer (module `ids`).
fn ids_of(event: &VaccinationEvent) -> DocumentIds {
    DocumentIds::new(
        event.certificate.hcid.as_str(),
        event.vaccination.dose.get(),
        event.certificate.issuer.as_str(),
    )
}

/// Builds the DDCC:VS document Bundle. Issuing the same event again yields the same resource ids.
pub fn build_document(event: &VaccinationEvent, ctx: &DocumentContext) -> Bundle {
    let ids = ids_of(event);
    let issued = instant(ctx.issued_at);
    let inputs = Inputs {
        event,
        ids: &ids,
        issued: &issued,
        issuer_name: ctx
            .issuer_name
            .as_deref()
            .unwrap_or(event.certificate.issuer.as_str()),
    };

    // The nth QR of each kind, so that two QRs of one kind still get distinct, stable ids.
    let mut kinds_seen = Vec::with_capacity(ctx.qrs.len());
    let qr_ids: Vec<Local> = ctx
        .qrs
        .iter()
        .map(|qr| {
            let nth = kinds_seen.iter().filter(|&&k| k == qr.kind).count();
            kinds_seen.push(qr.kind);
            ids.qr(qr.kind, nth)
        })
        .collect();

    let mut entries = vec![
        entry(&ids.composition, &resources::composition(&inputs, &qr_ids)),
        entry(&ids.patient, &resources::patient(&inputs)),
        entry(&ids.organization, &resources::organization(&inputs)),
        entry(&ids.immunization, &resources::immunization(&inputs)),
    ];
    if let Some(due) = event.vaccination.next_dose {
        let recommendation = resources::recommendation(&inputs, due);
        entries.push(entry(&ids.recommendation, &recommendation));
    }
    for (local, qr) in qr_ids.iter().zip(&ctx.qrs) {
        entries.push(entry(local, &resources::qr_document(&inputs, local, qr)));
    }

    Bundle {
        id: Some(ids.bundle.id.clone()),
        meta: Some(Meta::profile(resources::PROFILE_DOCUMENT)),
        identifier: Some(Identifier {
            system: Some(resources::URI_IDENTIFIER_SYSTEM.into()),
            value: Some(ids.bundle.full_url.clone()),
            ..Default::default()
        }),
        type_: "document".into(),
        timestamp: Some(issued.clone()),
        link: vec![BundleLink {
            relation: "publication".into(),
            url: format!("urn:HCID:{}", event.certificate.hcid.as_str()),
            ..Default::default()
        }],
        entry: entries,
        ..Default::default()
    }
}

/// A document entry: fullUrl and resource, no `request` (that belongs to transactions).
fn entry<R: fhir_models::Resource>(local: &Local, resource: &R) -> BundleEntry {
    BundleEntry {
        full_url: Some(local.full_url.clone()),
        // Cannot fail whatever the content: fhir-models resources are structs of strings, numbers and
        // string-keyed maps, with no fallible Serialize impl.
        resource: Some(
            serde_json::to_value(resource).expect("fhir-models resources always serialize to JSON"),
        ),
        ..Default::default()
    }
}

/// A FHIR `instant` (second precision), in UTC when representable.
fn instant(t: time::OffsetDateTime) -> String {
    let t = t.checked_to_offset(time::UtcOffset::UTC).unwrap_or(t);
    let offset = t.offset();
    let zone = if offset.is_utc() {
        "Z".to_owned()
    } else {
        let sign = if offset.is_negative() { '-' } else { '+' };
        format!(
            "{sign}{:02}:{:02}",
            offset.whole_hours().unsigned_abs(),
            offset.minutes_past_hour().unsigned_abs()
        )
    };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{zone}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

#[cfg(test)]
mod profile_check;
#[cfg(test)]
mod tests;
