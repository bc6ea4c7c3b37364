//! The audit trail: one FHIR R4 `AuditEvent` per issuance and per refused attempt (bad credentials, invalid
//! input, dependency failure).
//!
//! An AuditEvent says who (API key id, OIDC `sub`/client, client certificate DN, the OpenHIM client id the
//! request carried, the client address), when, what (the operation), on which certificate (a reference to the
//! document Bundle and the hcid: never clinical or personal data) and how it ended (R4 outcome codes: `0`
//! success, `4` refused, `8` dependency failure, `12` internal failure). Descriptions are fixed texts, never
//! the input's own words, so no holder data can leak into the trail.
//!
//! Events go to the store: the FHIR server or the local append-only `audit.jsonl`. A new certificate's event
//! is built before issuing and written with the certificate ([`crate::store::CertificateRecord::audit`]: on
//! the FHIR server an entry of its transaction, so no certificate is stored without its event, at no round
//! trip of its own). Every other event is written on its own afterwards ([`crate::store::Store::audit`],
//! `POST AuditEvent`); a failure to record one is logged and counted
//! (`ddcc_dependency_errors_total{dependency="audit"}`) but does not fail the request: refusing to hand out a
//! stored certificate would only make the caller retry. A refused attempt is likewise answered whether or not
//! its event could be written.
//!
//! The trail cannot be used to fill the disk: every text in an event is cut to [`MAX_FIELD_CHARS`] characters,
//! so an event stays under a few kB whatever the request carried; and refusals are recorded one event each only
//! up to `DDCC_AUDIT_REFUSAL_RATE` per client address ([`RefusalGate`]). Refusals past that are not lost: they
//! are counted (`ddcc_audit_refusals_summarised_total`) and a summary AuditEvent (how many, from how many
//! addresses, the busiest addresses, over which period) is written before the next event, and at least every
//! minute while there are any. `X-OpenHIM-ClientID` is recorded only when OpenHIM itself made the request (its
//! route key, or its client certificate `DDCC_OPENHIM_CERT_SUBJECT`): anyone else could name any client.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fhir_models::{
    AuditEvent, AuditEventAgent, AuditEventEntity, AuditEventNetwork, AuditEventSource, Coding,
    Identifier, Reference,
};
use time::OffsetDateTime;

use super::access::Credential;
use super::metrics::Metrics;
use super::ratelimit::{Rate, RateLimiter};
use crate::error::Error;

/// Longest text of any field of an AuditEvent, in characters; longer values are cut and end with `…`.
pub const MAX_FIELD_CHARS: usize = 256;
/// Summaries of the refusals not recorded one by one are written at most this often (and at least this often
/// while there are any).
pub const SUMMARY_EVERY: Duration = Duration::from_secs(60);
/// Addresses whose unrecorded refusals are counted one by one for the summary (the rest only in the total).
const MAX_SUMMARY_CLIENTS: usize = 10_000;
/// Addresses named in a summary (those with the most unrecorded refusals).
const SUMMARY_TOP: usize = 5;

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
    /// `X-OpenHIM-ClientID` (the OpenHIM client on whose behalf OpenHIM called), only when OpenHIM itself
    /// made the request.
    pub openhim_client: Option<String>,
    pub address: Option<IpAddr>,
}

/// One attempt to audit.
#[derive(Debug, Clone)]
pub struct Attempt<'a> {
    /// The operation, e.g. `$generateHealthCertificate`.
    pub operation: &'static str,
    pub requester: &'a Requester,
    pub outcome: Outcome,
    pub description: String,
    /// The id of the document Bundle, when one was issued or returned.
    pub bundle_id: Option<&'a str>,
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
            outcome_desc: Some(bounded(&attempt.description)),
            agent: agents(attempt.requester),
            source: self.source(),
            entity: entity(attempt.bundle_id, attempt.hcid)
                .into_iter()
                .collect(),
            ..Default::default()
        }
    }

    /// The summary of refusals that were counted instead of recorded one by one.
    pub fn summary_event(&self, summary: &Summary) -> AuditEvent {
        let agents = summary
            .busiest
            .iter()
            .map(|(address, count)| AuditEventAgent {
                name: Some(format!(
                    "refused client ({count} refusals not recorded one by one)"
                )),
                requestor: true,
                network: Some(AuditEventNetwork {
                    address: Some(address.to_string()),
                    type_: Some("2".into()),
                    ..Default::default()
                }),
                ..Default::default()
            })
            .collect();
        AuditEvent {
            id: Some(uuid::Uuid::new_v4().to_string()),
            type_: Coding {
                display: Some("RESTful Operation".into()),
                ..Coding::new(AUDIT_EVENT_TYPE, "rest")
            },
            subtype: vec![Coding {
                display: Some("refusals over DDCC_AUDIT_REFUSAL_RATE".into()),
                ..Coding::new(RESTFUL_INTERACTION, "operation")
            }],
            action: Some("E".into()),
            period: Some(fhir_models::Period {
                start: Some(super::rfc3339_ms(summary.since)),
                end: Some(super::rfc3339_ms(summary.until)),
                ..Default::default()
            }),
            recorded: super::rfc3339_ms(time::OffsetDateTime::now_utc()),
            outcome: Some(Outcome::Refused.code().into()),
            outcome_desc: Some(format!(
                "{} refused request(s) from {}{} client address(es) not recorded one by one \
                 (over DDCC_AUDIT_REFUSAL_RATE)",
                summary.count,
                if summary.more_clients {
                    "at least "
                } else {
                    ""
                },
                summary.clients
            )),
            agent: agents,
            source: self.source(),
            ..Default::default()
        }
    }

    fn source(&self) -> AuditEventSource {
        AuditEventSource {
            site: Some(bounded(&self.site)),
            observer: Reference {
                display: Some(format!("ddcc-mediator {}", env!("CARGO_PKG_VERSION"))),
                ..Default::default()
            },
            type_: vec![Coding {
                display: Some("Application Server".into()),
                ..Coding::new(SOURCE_TYPE, "4")
            }],
            ..Default::default()
        }
    }
}

fn agents(requester: &Requester) -> Vec<AuditEventAgent> {
    let identified = |system: &str, value: &str| Reference {
        identifier: Some(Identifier {
            system: Some(bounded(system)),
            value: Some(bounded(value)),
            ..Default::default()
        }),
        ..Default::default()
    };
    let network = requester.address.as_ref().map(|a| AuditEventNetwork {
        address: Some(a.to_string()),
        type_: Some("2".into()),
        ..Default::default()
    });
    let (who, name) = match &requester.credential {
        Some(Credential::ApiKey { key_id, openhim }) => (
            Some(identified(API_KEY_SYSTEM, key_id)),
            Some(
                if *openhim {
                    "OpenHIM (route key)"
                } else {
                    "API key"
                }
                .into(),
            ),
        ),
        Some(Credential::Oidc {
            issuer,
            subject,
            client,
        }) => (
            subject.as_deref().map(|s| identified(issuer, s)),
            client.as_deref().map(bounded),
        ),
        Some(Credential::Certificate { subject }) => (
            Some(identified(CERTIFICATE_SYSTEM, subject)),
            Some(bounded(subject)),
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
fn entity(bundle_id: Option<&str>, hcid: Option<&str>) -> Option<AuditEventEntity> {
    if bundle_id.is_none() && hcid.is_none() {
        return None;
    }
    Some(AuditEventEntity {
        what: Some(Reference {
            reference: bundle_id.map(|id| format!("Bundle/{}", bounded(id))),
            identifier: hcid.map(|h| Identifier {
                system: Some(HCID_SYSTEM.into()),
                value: Some(bounded(h)),
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

/// `text` cut to [`MAX_FIELD_CHARS`] characters (ending with `…` when cut).
pub fn bounded(text: &str) -> String {
    match text.char_indices().nth(MAX_FIELD_CHARS) {
        None => text.to_owned(),
        Some((cut, _)) => {
            let mut short = text[..cut].to_owned();
            short.pop();
            short.push('…');
            short
        }
    }
}

/// How many refusals were counted instead of recorded, since when, and from whom.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub count: u64,
    /// Distinct client addresses (those counted one by one).
    pub clients: usize,
    /// More addresses than [`MAX_SUMMARY_CLIENTS`] refused: `clients` is a lower bound.
    pub more_clients: bool,
    /// The addresses with the most refusals counted, at most [`SUMMARY_TOP`], most first.
    pub busiest: Vec<(IpAddr, u64)>,
    pub since: OffsetDateTime,
    pub until: OffsetDateTime,
}

/// Lets refusals through to the audit trail one event each up to a rate per client address; counts the rest
/// for a [`Summary`].
#[derive(Debug)]
pub struct RefusalGate {
    /// `None`: every refusal is recorded (`DDCC_AUDIT_REFUSAL_RATE=off`).
    limiter: Option<RateLimiter>,
    metrics: Arc<Metrics>,
    counted: Mutex<Counted>,
}

#[derive(Debug, Default)]
struct Counted {
    count: u64,
    by_client: HashMap<IpAddr, u64>,
    more_clients: bool,
    since: Option<OffsetDateTime>,
    last_summary: Option<Instant>,
}

impl RefusalGate {
    pub fn new(rate: Option<Rate>, metrics: Arc<Metrics>) -> Self {
        RefusalGate {
            limiter: rate.map(RateLimiter::new),
            metrics,
            counted: Mutex::new(Counted::default()),
        }
    }

    /// Whether a refusal from `client` is recorded as an event of its own; if not, it is counted.
    pub fn admit(&self, client: Option<IpAddr>) -> bool {
        let Some(limiter) = &self.limiter else {
            return true;
        };
        let client = client.unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
        if limiter.check(client).is_ok() {
            return true;
        }
        self.metrics.audit_refusals_summarised.inc();
        let mut counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        counted.count += 1;
        counted.since.get_or_insert_with(OffsetDateTime::now_utc);
        let known = counted.by_client.len();
        match counted.by_client.get_mut(&client) {
            Some(n) => *n += 1,
            None if known < MAX_SUMMARY_CLIENTS => {
                counted.by_client.insert(client, 1);
            }
            None => counted.more_clients = true,
        }
        false
    }

    /// The refusals counted since the last summary, if there are any and a summary is due (none was written
    /// in the last [`SUMMARY_EVERY`]); the count starts again.
    pub fn take_summary(&self) -> Option<Summary> {
        let mut counted = self.counted.lock().unwrap_or_else(|p| p.into_inner());
        if counted.count == 0
            || counted
                .last_summary
                .is_some_and(|at| at.elapsed() < SUMMARY_EVERY)
        {
            return None;
        }
        let taken = std::mem::take(&mut *counted);
        counted.last_summary = Some(Instant::now());
        let mut busiest: Vec<(IpAddr, u64)> =
            taken.by_client.iter().map(|(a, n)| (*a, *n)).collect();
        busiest.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        busiest.truncate(SUMMARY_TOP);
        let until = OffsetDateTime::now_utc();
        Some(Summary {
            count: taken.count,
            clients: taken.by_client.len(),
            more_clients: taken.more_clients,
            busiest,
            since: taken.since.unwrap_or(until),
            until,
        })
    }
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
                openhim: false,
            }),
            ..Default::default()
        };
        let event = Auditor::new("https://certificates.example.org".into()).event(&Attempt {
            operation: "$generateHealthCertificate",
            requester: &requester,
            outcome: Outcome::of_error(&error),
            description: describe(&error),
            bundle_id: None,
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

    #[test]
    fn every_field_is_bounded_whatever_the_request_carried() {
        let huge = "X".repeat(100_000);
        let requester = Requester {
            credential: Some(Credential::Oidc {
                issuer: huge.clone(),
                subject: Some(huge.clone()),
                client: Some(huge.clone()),
            }),
            openhim_client: Some(huge.clone()),
            address: Some("2001:db8::1".parse().unwrap()),
        };
        let event = Auditor::new(huge.clone()).event(&Attempt {
            operation: "$generateHealthCertificate",
            requester: &requester,
            outcome: Outcome::Refused,
            description: huge.clone(),
            bundle_id: Some(&huge),
            hcid: Some(&huge),
        });
        let json = serde_json::to_string(&event).unwrap();
        assert!(json.len() < 4096, "{} bytes", json.len());
        assert!(json.contains('…'));
        assert_eq!(bounded("short"), "short");
        assert_eq!(bounded(&"é".repeat(300)).chars().count(), MAX_FIELD_CHARS);
    }

    #[test]
    fn refusals_over_the_rate_are_counted_and_summarised_once_a_minute() {
        let metrics = Arc::new(Metrics::new());
        let gate = RefusalGate::new(
            Some(Rate::parse("R", "2/h", None).unwrap()),
            Arc::clone(&metrics),
        );
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(gate.admit(Some(a)) && gate.admit(Some(a)));
        assert!(gate.take_summary().is_none(), "nothing counted yet");
        for _ in 0..5 {
            assert!(!gate.admit(Some(a)));
        }
        assert!(gate.admit(Some(b)) && gate.admit(Some(b)) && !gate.admit(Some(b)));
        let summary = gate.take_summary().expect("a summary");
        assert_eq!(summary.count, 6);
        assert_eq!(summary.clients, 2);
        assert_eq!(summary.busiest, vec![(a, 5), (b, 1)]);
        assert!(metrics
            .encode()
            .contains("ddcc_audit_refusals_summarised_total 6"));
        assert!(!gate.admit(Some(a)));
        assert!(gate.take_summary().is_none(), "at most one a minute");
        let event = Auditor::new("https://x".into()).summary_event(&summary);
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["outcome"], "4");
        assert!(json["outcomeDesc"]
            .as_str()
            .unwrap()
            .starts_with("6 refused"));
        assert_eq!(json["agent"][0]["network"]["address"], "192.0.2.1");
        assert!(
            RefusalGate::new(None, metrics).admit(Some(a)),
            "off: all recorded"
        );
    }
}
