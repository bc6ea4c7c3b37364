//! The validated vaccination event: what a DDCC:VS certificate says.
//!
//! *Parse, don't validate*: every type here can only be built from valid input, so code that holds a
//! [`VaccinationEvent`] never re-checks it. `intake` is the only producer (from a QuestionnaireResponse);
//! `document`, `credential` and `render` only consume it. A certificate's event is also kept (canonical JSON)
//! so that it can be signed anew (`ddcc-mediator reissue`); reading it back goes through the same
//! constructors, so a kept event is as valid as a parsed one.

mod values;

pub use values::{Country, FhirDate, NonEmpty, PositiveInt, Sex};

use serde::{Deserialize, Serialize};

/// A coded value as the questionnaire answered it (`valueCoding`). The code is always present.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Code {
    pub system: Option<String>,
    pub code: NonEmpty,
    pub display: Option<String>,
}

/// Who made or authorised the vaccine. Invariant who-ddcc-data-1 (manufacturer or market-authorization
/// holder) holds by construction: there is no variant with neither.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Producer {
    Manufacturer(Code),
    MarketAuthorizationHolder(Code),
    Both { manufacturer: Code, ma_holder: Code },
}

impl Producer {
    pub fn manufacturer(&self) -> Option<&Code> {
        match self {
            Producer::Manufacturer(m)
            | Producer::Both {
                manufacturer: m, ..
            } => Some(m),
            Producer::MarketAuthorizationHolder(_) => None,
        }
    }
    pub fn ma_holder(&self) -> Option<&Code> {
        match self {
            Producer::MarketAuthorizationHolder(h) | Producer::Both { ma_holder: h, .. } => Some(h),
            Producer::Manufacturer(_) => None,
        }
    }
}

/// The certificate holder (linkIds name, birthDate, identifier, sex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Holder {
    pub name: NonEmpty,
    pub birth_date: Option<FhirDate>,
    pub identifier: Option<NonEmpty>,
    pub sex: Option<Sex>,
}

/// The vaccination (linkIds vaccine … due_date).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vaccination {
    pub vaccine: Code,
    pub brand: Code,
    pub producer: Producer,
    pub lot: NonEmpty,
    /// A full calendar date (YYYY-MM-DD).
    pub date: FhirDate,
    pub valid_from: Option<FhirDate>,
    pub dose: PositiveInt,
    pub total_doses: Option<PositiveInt>,
    pub country: Country,
    pub centre: NonEmpty,
    /// Health worker identifier (linkId `hw`).
    pub health_worker: Option<NonEmpty>,
    pub disease: Option<Code>,
    /// Date the next dose is due (linkId `due_date`).
    pub next_dose: Option<FhirDate>,
}

/// Certificate metadata (linkIds pha, hcid, valid_from, valid_until).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateInfo {
    /// Public health authority identifier (linkId `pha`).
    pub issuer: NonEmpty,
    /// Health certificate identifier (linkId `hcid`): the stable identity of the certificate.
    pub hcid: NonEmpty,
    pub valid_from: Option<FhirDate>,
    pub valid_until: Option<FhirDate>,
}

/// One valid DDCC:VS vaccination event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct VaccinationEvent {
    pub holder: Holder,
    pub vaccination: Vaccination,
    pub certificate: CertificateInfo,
    /// Which version of the event this is. Not content: left out of the serialised event, so it does not
    /// change the content hash that recognises a repeated submission.
    #[serde(skip)]
    pub version: EventVersion,
    /// The certificate's language the sender asked for (`QuestionnaireResponse.language`), when the PDF
    /// has it built in. Presentation, not content: left out of the serialised event like `version`.
    #[serde(skip)]
    pub language: Option<crate::render::pdf::Language>,
}

/// What orders two versions of one event (same hcid and dose, different content): the
/// QuestionnaireResponse's `authored` time, and its `status` (`amended` corrects an earlier response).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EventVersion {
    /// `QuestionnaireResponse.authored`, when the sender gave it.
    pub authored: Option<time::OffsetDateTime>,
    /// `QuestionnaireResponse.status = amended`.
    pub amended: bool,
}
