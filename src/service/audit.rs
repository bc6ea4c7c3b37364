//! The audit trail: one FHIR R4 `AuditEvent` per issuance and per refused attempt (bad credentials, invalid
//! input, dependency failure).
//!
//! An AuditEvent says who (API key id, OIDC `sub`/client, client certificate DN, the OpenHIM client id the
//! request carried, the client address), when, what (the operation), on which certificate (a reference to the
//! document Bundle and the hcid: never clinical or personal data) and how it ended (R4 outcome codes: `0`
//! success, `4` refused, `8` dependency failure, `12` internal failure). Descriptions are fixed texts, never
//! the input's own words, so no holder data can leak into the trail.
//!
//! Events go to the store ([`crate::store::Store::audit`]): the FHIR server (`POST AuditEvent`) or the local
//! append-only `audit.jsonl`. They are not part of the certificate's transaction, and a failure to record one
//! is logged and counted (`ddcc_dependency_errors_total{dependency="audit"}`) but does not fail the
//! issuance: the certificate is already signed and stored when its event is written, and refusing to hand it
//! out would only make the caller retry and issue again. A refused attempt is likewise answered whether or not
//! its event could be written.

use fhir_models::{
    AuditEvent, AuditEventAgent, AuditEventEntity, AuditEventNetwork, AuditEventSource, Coding,
    Identifier, Reference,
};
use serde_json::Value;

use super::access::Credential;
use crate::error::Error;

const AUDIT_EVENT_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-event-type";
const RESTFUL_INTERACTION: &str = "http://hl7.org/fhir/restful-interaction";
const SOURCE_TYPE: &str = "http://terminology.hl7.org/CodeSystem/security-source-type";
const ENTITY_TYPE: &str = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
const OBJECT_ROLE: &str = "http://terminology.hl7.org/CodeSystem/object-role";
/// Identifier systems of the callers (our own URNs: these ids only mean something to this service).
pub const API_KEY_SYSTEM: &str = "urn:ddcc-mediator:api-key-id";
pub const CERTIFICATE_SYSTEM: &str = "urn:ddcc-mediator:client-certificate-subject";
pub const OPENHIM_CLIENT_SYSTEM: &str = "urn:ddcc-mediator:openhim-client-id";
/// hcid of the certificate (the QuestionnaireResponse's `hcid`, also the document's `urn:HCID:` link).
pub const HCID_SYSTEM: &str = "urn:ddcc-mediator:hcid";

/// How an attempt ended (R4 `AuditEvent.outcome`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `0`: issued (or the stored certificate returned).
    Success,
    /// `4`: refused: credentials, role, or input.
    Refused,
    /// `8`: a dependency (Vault, FHIR server, OIDC provider) failed.
    DependencyFailure,
    /// `12`: an internal failure.
    InternalFailure,
}

impl Outcome {
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Success => "0",
            Outcome::Refused => "4",
            Outcome::DependencyFailure => "8",
            Outcome::InternalFailure => "12",
        }
    }

    pub fn of_error(error: &Error) -> Self {
        match error {
            e if e.is_caller_fault() => Outcome::Refused,
            Error::Unavailable { .. } => Outcome::DependencyFailure,
            _ => Outcome::InternalFailure,
        }
    }
}

/// A fixed description of a pipeline error: its kind, never its text (which may quote the input).
pub fn describe(error: &Error) -> String {
    match error {
        Error::Invalid(issues) => format!("invalid input ({} issue(s))", issues.len()),
        Error::NotSupported(_) => "request not supported".into(),
        Error::Superseded(_) => "older than the current version: not issued".into(),
        Error::WriteConflict(_) => "concurrent writes: not issued".into(),
        Error::Unavailable { service, .. } => format!("{service} unavailable"),
        Error::Config(_) | Error::Io { .. } | Error::Internal(_) => "internal error".into(),
    }
}

/// Who made a request, as far as it is known.
#[derive(Debug, Clone, Default)]
pub struct Requester {
    /// `None` when authentication failed.
    pub credential: Option<Credential>,
    /// `X-OpenHIM-ClientID` (the OpenHIM client on whose behalf OpenHIM called), as the request carried it.
    pub openhim_client: Option<String>,
    pub address: Option<String>,
}

/// One attempt to audit.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// The operation, e.g. `$generateHealthCertificate`.
    pub operation: &'static str,
    pub requester: &'a Requester,
    pub outcome: Outcome,
    pub description: String,
    /// The document Bundle, when one was issued or returned.
    pub document: Option<&'a Value>,
    /// The hcid, when the input got that far.
    pub hcid: Option<&'a str>,
}

/// Builds AuditEvents for this service (`site`: its public URL).
#[derive(Debug, Clone)]
pub struct Auditor {
    site: String,
}

impl Auditor {
    pub fn new(site: String) -> Self {
        Auditor { site }
    }

    pub fn event(&self, attempt: &Attempt<'_>) -> AuditEvent {
        AuditEvent {
            id: Some(uuid::Uuid::new_v4().to_string()),
            type_: Coding {
                display: Some("RESTful Operation".into()),
                ..Coding::new(AUDIT_EVENT_TYPE, "rest")
            },
            subtype: vec![Coding {
                display: Some(attempt.operation.into()),
                ..Coding::new(RESTFUL_INTERACTION, "operation")
            }],
            action: Some("C".into()),
            recorded: super::rfc3339_ms(time::OffsetDateTime::now_utc()),
            outcome: Some(attempt.outcome.code().into()),
            outcome_desc: Some(attempt.description.clone()),
            agent: agents(attempt.requester),
            source: AuditEventSource {
                site: Some(self.site.clone()),
                observer: Reference {
                    display: Some(format!("ddcc-mediator {}", env!("CARGO_PKG_VERSION"))),
                    ..Default::default()
                },
                type_: vec![Coding {
                    display: Some("Application Server".into()),
                    ..Coding::new(SOURCE_TYPE, "4")
                }],
                ..Default::default()
            },
            entity: entity(attempt.document, attempt.hcid).into_iter().collect(),
            ..Default::default()
        }
    }
}

fn agents(requester: &Requester) -> Vec<AuditEventAgent> {
    let identified = |system: &str, value: &str| Reference {
        identifier: Some(Identifier {
            system: Some(system.into()),
            value: Some(value.into()),
            ..Default::default()
        }),
        ..Default::default()
    };
    let network = requester.address.as_ref().map(|a| AuditEventNetwork {
        address: Some(a.clone()),
        type_: Some("2".into()),
        ..Default::default()
    });
    let (who, name) = match &requester.credential {
        Some(Credential::ApiKey { key_id }) => (
            Some(identified(API_KEY_SYSTEM, key_id)),
            Some("API key".into()),
        ),
        Some(Credential::Oidc {
            issuer,
            subject,
            client,
        }) => (
            subject.as_deref().map(|s| identified(issuer, s)),
            client.clone(),
        ),
        Some(Credential::Certificate { subject }) => (
            Some(identified(CERTIFICATE_SYSTEM, subject)),
            Some(subject.clone()),
        ),
        None => (None, Some("unauthenticated".into())),
    };
    let mut agents = vec![AuditEventAgent {
        who,
        name,
        requestor: true,
        network,
        ..Default::default()
    }];
    if let Some(client) = &requester.openhim_client {
        agents.push(AuditEventAgent {
            who: Some(identified(OPENHIM_CLIENT_SYSTEM, client)),
            name: Some("OpenHIM client".into()),
            requestor: true,
            ..Default::default()
        });
    }
    agents
}

/// The certificate: a reference to its document Bundle and its hcid, nothing else.
fn entity(document: Option<&Value>, hcid: Option<&str>) -> Option<AuditEventEntity> {
    let bundle_id = document.and_then(|d| d.get("id")).and_then(Value::as_str);
    if bundle_id.is_none() && hcid.is_none() {
        return None;
    }
    Some(AuditEventEntity {
        what: Some(Reference {
            reference: bundle_id.map(|id| format!("Bundle/{id}")),
            identifier: hcid.map(|h| Identifier {
                system: Some(HCID_SYSTEM.into()),
                value: Some(h.into()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        type_: Some(Coding {
            display: Some("System Object".into()),
            ..Coding::new(ENTITY_TYPE, "2")
        }),
        role: Some(Coding {
            display: Some("Report".into()),
            ..Coding::new(OBJECT_ROLE, "3")
        }),
        ..Default::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dependency_failure_is_outcome_8_and_says_which_without_its_text() {
        let error = Error::Unavailable {
            service: "Vault",
            reason: "secret detail".into(),
        };
        let requester = Requester {
            credential: Some(Credential::ApiKey {
                key_id: "0a1b2c3d".into(),
            }),
            ..Default::default()
        };
        let event = Auditor::new("https://certificates.example.org".into()).event(&Attempt {
            operation: "$generateHealthCertificate",
            requester: &requester,
            outcome: Outcome::of_error(&error),
            description: describe(&error),
            document: None,
            hcid: Some("HC-1"),
        });
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["outcome"], "8");
        assert_eq!(json["outcomeDesc"], "Vault unavailable");
        assert_eq!(json["agent"][0]["who"]["identifier"]["value"], "0a1b2c3d");
        assert_eq!(json["entity"][0]["what"]["identifier"]["value"], "HC-1");
        assert_eq!(
            json["source"]["observer"]["display"]
                .as_str()
                .map(|s| s.starts_with("ddcc-mediator")),
            Some(true)
        );
        let invalid = Error::invalid("value", None, "birthDate 1990-02-14 is in the future");
        assert_eq!(Outcome::of_error(&invalid).code(), "4");
        assert!(!describe(&invalid).contains("1990"));
    }
}
