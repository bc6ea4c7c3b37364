//! One builder per resource of the DDCC:VS document, each following its IG 1.0.0 profile. Element choices
//! that are not obvious from the profile say why.

use base64::Engine as _;
use fhir_models::{
    Attachment, CodeableConcept, Coding, Composition, CompositionAttester, CompositionEvent,
    CompositionSection, DocumentReference, DocumentReferenceContent, Extension, HumanName,
    Identifier, Immunization, ImmunizationPerformer, ImmunizationProtocolApplied,
    ImmunizationRecommendation, ImmunizationRecommendationDateCriterion,
    ImmunizationRecommendationRecommendation, Meta, Organization, Patient, Period, Reference,
};

use super::ids::{DocumentIds, Local};
use super::QrArtifact;
use crate::domain::{Code, FhirDate, PositiveInt, VaccinationEvent};

pub(super) const PROFILE_DOCUMENT: &str =
    "http://smart.who.int/ddcc/StructureDefinition/DDCCVSDocument";
const PROFILE_COMPOSITION: &str = "http://smart.who.int/ddcc/StructureDefinition/DDCCVSComposition";
const PROFILE_PATIENT: &str = "http://smart.who.int/ddcc/StructureDefinition/DDCCPatient";
const PROFILE_ORGANIZATION: &str = "http://smart.who.int/ddcc/StructureDefinition/DDCCOrganization";
const PROFILE_IMMUNIZATION: &str = "http://smart.who.int/ddcc/StructureDefinition/DDCCImmunization";
const PROFILE_RECOMMENDATION: &str =
    "http://smart.who.int/ddcc/StructureDefinition/DDCCImmunizationRecommendation";
const PROFILE_QR: &str = "http://smart.who.int/ddcc/StructureDefinition/DDCCDocumentReferenceQR";

const EXT_BRAND: &str = "http://smart.who.int/ddcc/StructureDefinition/DDCCEventBrand";
const EXT_COUNTRY: &str = "http://smart.who.int/ddcc/StructureDefinition/DDCCCountryOfEvent";
const EXT_MA_HOLDER: &str =
    "http://smart.who.int/ddcc/StructureDefinition/DDCCVaccineMarketAuthorization";
const EXT_VALID_FROM: &str = "http://smart.who.int/ddcc/StructureDefinition/DDCCVaccineValidFrom";
const EXT_DATA_ABSENT: &str = "http://hl7.org/fhir/StructureDefinition/data-absent-reason";

const LOINC: &str = "http://loinc.org";
/// LOINC "Immunization summary report" (DDCCComposition.type pattern).
const LOINC_IMMUNIZATION_SUMMARY: &str = "82593-5";
/// LOINC "History of Immunization Narrative" (DDCCVSComposition section `vaccination`).
const LOINC_IMMUNIZATION_HISTORY: &str = "11369-6";
/// LOINC "Date vaccine due" (DDCCImmunizationRecommendation dateCriterion.code pattern).
const LOINC_DATE_DUE: &str = "30980-7";

const COMPOSITION_CATEGORY_SYSTEM: &str =
    "http://smart.who.int/ddcc/CodeSystem/DDCCCompositionCategoryCodeSystem";
/// DDCCComposition.title pattern.
const COMPOSITION_TITLE: &str = "Digital Documentation of COVID-19 Certificate (DDCC)";
/// The system of the WHO mediator got this wrong (§12 item 9); this is the one the profile's pattern fixes.
const FORECAST_STATUS_SYSTEM: &str =
    "http://terminology.hl7.org/CodeSystem/immunization-recommendation-status";
const QR_TYPE_SYSTEM: &str = "http://smart.who.int/ddcc/CodeSystem/DDCCQRTypeCodeSystem";
const QR_FORMAT_SYSTEM: &str = "http://smart.who.int/ddcc/CodeSystem/DDCCQRFormatCodeSystem";
/// Identifier system for identifiers whose value is a URI (here `urn:uuid:…`).
pub(super) const URI_IDENTIFIER_SYSTEM: &str = "urn:ietf:rfc:3986";

/// What the resource builders share.
pub(super) struct Inputs<'a> {
    pub event: &'a VaccinationEvent,
    pub ids: &'a DocumentIds,
    /// Issue time as a FHIR `instant`.
    pub issued: &'a str,
    /// Organization.name (1..1 in DDCCOrganization).
    pub issuer_name: &'a str,
}

fn coding(code: &Code) -> Coding {
    Coding {
        system: code.system.clone(),
        code: Some(code.code.to_string()),
        display: code.display.clone(),
        ..Default::default()
    }
}

fn concept(code: &Code) -> CodeableConcept {
    coding(code).into()
}

/// A logical reference: the QR names a party by identifier only, with no resource to point at.
fn logical(rtype: &str, identifier: Identifier, display: Option<String>) -> Reference {
    Reference {
        type_: Some(rtype.to_owned()),
        identifier: Some(identifier),
        display,
        ..Default::default()
    }
}

fn value_identifier(value: impl Into<String>) -> Identifier {
    Identifier {
        value: Some(value.into()),
        ..Default::default()
    }
}

fn id(local: &Local) -> Option<String> {
    Some(local.id.clone())
}

pub(super) fn composition(i: &Inputs, qr_entries: &[Local]) -> Composition {
    let ids = i.ids;
    let certificate = &i.event.certificate;
    let validity =
        (certificate.valid_from.is_some() || certificate.valid_until.is_some()).then(|| {
            CompositionEvent {
                period: Some(Period {
                    start: certificate.valid_from.map(|d| d.to_string()),
                    end: certificate.valid_until.map(|d| d.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            }
        });
    let recommendation = i.event.vaccination.next_dose.map(|_| &ids.recommendation);
    let entries = std::iter::once(&ids.immunization)
        .chain(recommendation)
        .chain(qr_entries)
        .map(Local::reference)
        .collect();
    Composition {
        id: id(&ids.composition),
        meta: Some(Meta::profile(PROFILE_COMPOSITION)),
        // The certificate identifier (DDCCComposition: system and value 1..1), a URI like Bundle.identifier.
        identifier: Some(Identifier {
            use_: Some("official".into()),
            system: Some(URI_IDENTIFIER_SYSTEM.into()),
            value: Some(ids.composition.full_url.clone()),
            ..Default::default()
        }),
        status: Some("final".into()),
        type_: Some(Coding::new(LOINC, LOINC_IMMUNIZATION_SUMMARY).into()),
        // Optional, but its pattern says what this document is: a DDCC:VS and not a DDCC:TR.
        category: vec![Coding::new(COMPOSITION_CATEGORY_SYSTEM, "ddcc-vs").into()],
        subject: Some(ids.patient.reference()),
        date: Some(i.issued.to_owned()),
        author: vec![ids.organization.reference()],
        title: Some(COMPOSITION_TITLE.into()),
        attester: vec![CompositionAttester {
            mode: "official".into(),
            party: Some(ids.organization.reference()),
            ..Default::default()
        }],
        event: validity.into_iter().collect(),
        section: vec![CompositionSection {
            code: Some(Coding::new(LOINC, LOINC_IMMUNIZATION_HISTORY).into()),
            focus: Some(ids.immunization.reference()),
            entry: entries,
            ..Default::default()
        }],
        ..Default::default()
    }
}

pub(super) fn patient(i: &Inputs) -> Patient {
    let holder = &i.event.holder;
    let mut patient = Patient {
        id: id(&i.ids.patient),
        meta: Some(Meta::profile(PROFILE_PATIENT)),
        identifier: holder
            .identifier
            .iter()
            .map(|v| value_identifier(v.as_str()))
            .collect(),
        // DDCCPatient slice ddccName: use = official, text 1..1. The name is kept as written, in its own script.
        name: vec![HumanName {
            use_: Some("official".into()),
            text: Some(holder.name.to_string()),
            ..Default::default()
        }],
        gender: holder.sex.map(|s| s.code().to_owned()),
        birth_date: holder.birth_date.map(|d| d.to_string()),
        ..Default::default()
    };
    if patient.birth_date.is_none() {
        // birthDate is 1..1 (IPS Patient); IPS says to state an unknown one with data-absent-reason.
        patient.extra.insert(
            "_birthDate".into(),
            serde_json::json!({ "extension": [{ "url": EXT_DATA_ABSENT, "valueCode": "unknown" }] }),
        );
    }
    patient
}

pub(super) fn organization(i: &Inputs) -> Organization {
    Organization {
        id: id(&i.ids.organization),
        meta: Some(Meta::profile(PROFILE_ORGANIZATION)),
        identifier: vec![value_identifier(i.event.certificate.issuer.as_str())],
        name: Some(i.issuer_name.to_owned()),
        ..Default::default()
    }
}

pub(super) fn immunization(i: &Inputs) -> Immunization {
    let v = &i.event.vaccination;
    // In the IG examples' order: brand, country, market authorization holder, valid from.
    let extension = [
        Some(Extension::coding(EXT_BRAND, coding(&v.brand))),
        Some(Extension::code(EXT_COUNTRY, v.country.alpha3())),
        v.producer
            .ma_holder()
            .map(|h| Extension::coding(EXT_MA_HOLDER, coding(h))),
        v.valid_from
            .map(|d| Extension::date(EXT_VALID_FROM, d.to_string())),
    ]
    .into_iter()
    .flatten()
    .collect();
    Immunization {
        id: id(&i.ids.immunization),
        meta: Some(Meta::profile(PROFILE_IMMUNIZATION)),
        extension,
        status: Some("completed".into()),
        vaccine_code: concept(&v.vaccine),
        patient: i.ids.patient.reference(),
        occurrence_date_time: Some(v.date.to_string()),
        location: Some(Reference {
            display: Some(v.centre.to_string()),
            ..Default::default()
        }),
        manufacturer: v.producer.manufacturer().map(|m| {
            let identifier = Identifier {
                system: m.system.clone(),
                value: Some(m.code.to_string()),
                ..Default::default()
            };
            logical("Organization", identifier, m.display.clone())
        }),
        lot_number: Some(v.lot.to_string()),
        performer: v
            .health_worker
            .iter()
            .map(|hw| ImmunizationPerformer {
                actor: logical("Practitioner", value_identifier(hw.as_str()), None),
                ..Default::default()
            })
            .collect(),
        protocol_applied: vec![ImmunizationProtocolApplied {
            authority: Some(i.ids.organization.reference()),
            target_disease: v.disease.iter().map(concept).collect(),
            dose_number_positive_int: Some(v.dose.get()),
            series_doses_positive_int: v.total_doses.map(PositiveInt::get),
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// The next dose, recommended on the day of this one.
pub(super) fn recommendation(i: &Inputs, due: FhirDate) -> ImmunizationRecommendation {
    let v = &i.event.vaccination;
    ImmunizationRecommendation {
        id: id(&i.ids.recommendation),
        meta: Some(Meta::profile(PROFILE_RECOMMENDATION)),
        patient: i.ids.patient.reference(),
        date: Some(v.date.to_string()),
        recommendation: vec![ImmunizationRecommendationRecommendation {
            vaccine_code: vec![concept(&v.vaccine)],
            target_disease: v.disease.as_ref().map(concept),
            forecast_status: Coding::new(FORECAST_STATUS_SYSTEM, "due").into(),
            date_criterion: vec![ImmunizationRecommendationDateCriterion {
                code: Coding::new(LOINC, LOINC_DATE_DUE).into(),
                value: Some(due.to_string()),
                ..Default::default()
            }],
            // Omitted in the (theoretical) case that dose + 1 is no longer a positiveInt.
            dose_number_positive_int: PositiveInt::new(i64::from(v.dose.get()) + 1)
                .map(PositiveInt::get),
            series_doses_positive_int: v.total_doses.map(PositiveInt::get),
            supporting_immunization: vec![i.ids.immunization.reference()],
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// One signed QR: content slots `serialized` (the payload JSON) and `image` (the PNG), inline.
pub(super) fn qr_document(i: &Inputs, local: &Local, qr: &QrArtifact) -> DocumentReference {
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    let slot = |content_type: &str, data: &[u8], format: &str| DocumentReferenceContent {
        attachment: Attachment {
            content_type: Some(content_type.into()),
            data: Some(b64(data)),
            ..Default::default()
        },
        format: Some(Coding::new(QR_FORMAT_SYSTEM, format)),
        ..Default::default()
    };
    DocumentReference {
        id: Some(local.id.clone()),
        meta: Some(Meta::profile(PROFILE_QR)),
        status: "current".into(),
        // The profile binds `type` (1..1) to DDCCQRTypeValueSet; the WHO mediator put the code in `category`.
        type_: Some(
            Coding {
                display: Some(qr.kind.display().into()),
                ..Coding::new(QR_TYPE_SYSTEM, qr.kind.code())
            }
            .into(),
        ),
        subject: Some(i.ids.patient.reference()),
        date: Some(i.issued.to_owned()),
        authenticator: Some(i.ids.organization.reference()),
        content: vec![
            slot("application/json", &qr.payload_json, "serialized"),
            slot("image/png", &qr.png, "image"),
        ],
        ..Default::default()
    }
}
