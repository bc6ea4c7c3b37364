//! R4 resources, one file each. Every struct keeps unmodelled elements in `extra` (see the crate docs).

mod audit_event;
mod binary;
mod bundle;
mod composition;
mod document_reference;
mod immunization;
mod immunization_recommendation;
mod operation_outcome;
mod organization;
mod parameters;
mod patient;
mod provenance;
mod questionnaire_response;

pub use audit_event::*;
pub use binary::*;
pub use bundle::*;
pub use composition::*;
pub use document_reference::*;
pub use immunization::*;
pub use immunization_recommendation::*;
pub use operation_outcome::*;
pub use organization::*;
pub use parameters::*;
pub use patient::*;
pub use provenance::*;
pub use questionnaire_response::*;

/// Declares the `resourceType` marker of each resource and implements [`crate::Resource`].
macro_rules! resource_types {
    ($($name:ident),* $(,)?) => {
        /// Zero-sized `resourceType` markers: each serializes as its type name and accepts only that name,
        /// so deserializing a Bundle as a Patient fails instead of silently succeeding.
        pub mod resource_type {
            $(
                #[doc = concat!("The `resourceType` `\"", stringify!($name), "\"`.")]
                #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
                pub struct $name;

                impl serde::Serialize for $name {
                    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                        s.serialize_str(stringify!($name))
                    }
                }

                impl<'de> serde::Deserialize<'de> for $name {
                    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                        let found = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                        if found == stringify!($name) {
                            Ok($name)
                        } else {
                            Err(serde::de::Error::custom(format_args!(
                                "resourceType is {found:?}, expected {:?}",
                                stringify!($name)
                            )))
                        }
                    }
                }
            )*
        }

        $(
            impl crate::Resource for $name {
                const RESOURCE_TYPE: &'static str = stringify!($name);
            }
        )*
    };
}

resource_types!(
    AuditEvent,
    Binary,
    Bundle,
    Composition,
    DocumentReference,
    Immunization,
    ImmunizationRecommendation,
    OperationOutcome,
    Organization,
    Parameters,
    Patient,
    Provenance,
    QuestionnaireResponse,
);
