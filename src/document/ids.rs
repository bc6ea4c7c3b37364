//! Deterministic resource ids (UUID v5), so that issuing the same event again yields the same ids and a FHIR
//! server that stores the document by id replaces the earlier copy instead of duplicating it.
//!
//! What each id is derived from is the identity of what the resource describes:
//! - the Patient from the hcid: one holder per health certificate, whatever the dose (the WHO mediator made a
//!   new Patient for every event, who-reference-mediator.md §12 item 9);
//! - the Organization from the issuer's identifier (`pha`): one per public health authority;
//! - the document and everything specific to the event (Bundle, Composition, Immunization,
//!   ImmunizationRecommendation, QR DocumentReferences) from the hcid **and the dose number**: the WHO
//!   mediator's own test data issue dose 1 and dose 2 under the same hcid (Demo-Bundle-1/2, hcid `111000111`),
//!   and dose 2 must not overwrite dose 1.

use uuid::Uuid;

use super::QrKind;

/// The UUID v5 namespace of every id this module derives. Random once, fixed forever: changing it changes
/// every id ever issued.
const NAMESPACE: Uuid = Uuid::from_u128(0xc5e4_8021_4651_4b2a_bc72_957e_2a26_bbbf);

/// A resource's place in the document: its id and the `urn:uuid:` fullUrl that references point at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Local {
    pub id: String,
    pub full_url: String,
}

impl Local {
    /// `name` must be unambiguous: a fixed resource-type prefix, fixed-format parts, then the free-text part
    /// last (so an hcid containing `|` cannot collide with another name).
    fn derive(name: &str) -> Self {
        let uuid = Uuid::new_v5(&NAMESPACE, name.as_bytes());
        Local {
            id: uuid.to_string(),
            full_url: uuid.urn().to_string(),
        }
    }

    /// A literal reference to this entry. Document Bundles resolve references within the Bundle by fullUrl.
    pub fn reference(&self) -> fhir_models::Reference {
        fhir_models::Reference::to(self.full_url.clone())
    }
}

/// The ids of one document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct DocumentIds {
    pub bundle: Local,
    pub composition: Local,
    pub patient: Local,
    pub organization: Local,
    pub immunization: Local,
    pub recommendation: Local,
    /// The event key, kept for the QR DocumentReferences.
    event: String,
}

impl DocumentIds {
    pub fn new(hcid: &str, dose: u32, issuer: &str) -> Self {
        let event = format!("{dose}|{hcid}");
        let of_event = |rtype: &str| Local::derive(&format!("{rtype}|{event}"));
        DocumentIds {
            bundle: of_event("Bundle"),
            composition: of_event("Composition"),
            patient: Local::derive(&format!("Patient|{hcid}")),
            organization: Local::derive(&format!("Organization|{issuer}")),
            immunization: of_event("Immunization"),
            recommendation: of_event("ImmunizationRecommendation"),
            event,
        }
    }

    /// The DocumentReference of the `nth` (from 0) QR of `kind`.
    pub fn qr(&self, kind: QrKind, nth: usize) -> Local {
        Local::derive(&format!(
            "DocumentReference|{}|{nth}|{}",
            kind.code(),
            self.event
        ))
    }
}
