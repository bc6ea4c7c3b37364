//! Intake: what facility systems send, turned into valid [`VaccinationEvent`]s or a precise report.
//!
//! Accepted shapes (who-reference-mediator.md §2, §4): a bare QuestionnaireResponse, a `Parameters` with
//! `parameter[name=response].resource`, and a batch `Bundle` of
//! `POST QuestionnaireResponse/$generateHealthCertificate` entries whose resource is either of the first
//! two. Which endpoint accepts which shape is the HTTP layer's decision; intake reads all three.
//!
//! Every problem is reported at once, as [`Error::Invalid`] issues whose FHIRPath expression locates it
//! in the request as sent: `QuestionnaireResponse.item.where(linkId='dose')`,
//! `Parameters.parameter.where(name='response').resource.item…`, `Bundle.entry[3].resource…`.

pub mod json;
mod questionnaire;
mod response;
pub mod revocation;

use fhir_models::{resource_type_of, Bundle, Parameters, QuestionnaireResponse, Resource};
use serde_json::Value;

use self::response::{shown, At};
use crate::domain::VaccinationEvent;
use crate::error::{Error, Issue, Result};

pub use self::response::MAX_TEXT_CHARS;

/// The only request a batch entry may make (`request.method` POST, `request.url` exactly this, as the
/// WHO mediator requires).
pub const GENERATE_URL: &str = "QuestionnaireResponse/$generateHealthCertificate";

/// A parsed submission.
// One per request and matched right away: boxing the large variant would only complicate every match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Submission {
    /// A QuestionnaireResponse, bare or in `Parameters`: its event, or every problem with it.
    Single(Result<VaccinationEvent>),
    /// A batch Bundle: one outcome per entry, in input order (entry `i` of the request is outcome `i`).
    /// An entry that asks for anything but `POST QuestionnaireResponse/$generateHealthCertificate` is
    /// [`Error::NotSupported`] (the WHO mediator's 404 entry); a bad resource is [`Error::Invalid`].
    Batch(Vec<Result<VaccinationEvent>>),
}

/// Parses request bytes (JSON) into a submission. `Err` when the body as a whole is unusable (not JSON, a
/// key twice in one object, a `modifierExtension` anywhere, not one of the accepted shapes, a Bundle that is
/// not a non-empty batch); problems of the response itself are inside [`Submission::Single`], and per-entry
/// problems inside [`Submission::Batch`].
pub fn read_submission(json: &[u8]) -> Result<Submission> {
    let parsed = json::parse(json).map_err(|e| {
        Error::invalid(
            "structure",
            None,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    let body = parsed.value;
    if !parsed.findings.is_empty() {
        return Err(strict_json_issues(&body, &parsed.findings, parsed.more));
    }
    if !body.is_object() {
        return Err(Error::invalid(
            "structure",
            None,
            "the request body must be a JSON object (a FHIR resource)",
        ));
    }
    match resource_type_of(&body) {
        Some(QuestionnaireResponse::RESOURCE_TYPE) => Ok(Submission::Single(from_response(
            body,
            &At::new(QuestionnaireResponse::RESOURCE_TYPE),
        ))),
        Some(Parameters::RESOURCE_TYPE) => Ok(Submission::Single(from_parameters(
            body,
            &At::new(Parameters::RESOURCE_TYPE),
        ))),
        Some(Bundle::RESOURCE_TYPE) => from_batch(body).map(Submission::Batch),
        Some(other) => Err(Error::invalid(
            "not-supported",
            None,
            format!(
                "resourceType {} is not accepted; send a QuestionnaireResponse, a Parameters with a \
                 'response' QuestionnaireResponse, or a batch Bundle of them",
                shown(other)
            ),
        )),
        None => Err(Error::invalid(
            "required",
            None,
            "the body has no resourceType; send a QuestionnaireResponse, a Parameters or a batch Bundle",
        )),
    }
}

/// What `$generateHealthCertificate` takes: [`read_submission`] without Bundles. A Bundle of any type is
/// [`Error::NotSupported`], saying what this endpoint accepts and where batches go.
pub fn read_single_submission(json: &[u8]) -> Result<Submission> {
    // The type only; read_submission then reports everything else about the body as usual.
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(rename = "resourceType")]
        resource_type: Option<String>,
        #[serde(rename = "type")]
        bundle_type: Option<Value>,
    }
    if let Ok(Head {
        resource_type: Some(rt),
        bundle_type,
    }) = serde_json::from_slice::<Head>(json)
    {
        if rt == Bundle::RESOURCE_TYPE {
            let kind = bundle_type.as_ref().and_then(Value::as_str).map_or_else(
                || "a Bundle".to_owned(),
                |t| format!("a Bundle of type {}", shown(t)),
            );
            return Err(Error::NotSupported(format!(
                "$generateHealthCertificate (/ddcc/generateHealthCertificate) takes one QuestionnaireResponse, or a \
                 Parameters with the QuestionnaireResponse in parameter[name=response].resource; not {kind}. \
                 Several events go to $submitHealthEvent (/ddcc/submitHealthEvent) as a 'batch' Bundle of \
                 POST {GENERATE_URL} entries"
            )));
        }
    }
    read_submission(json)
}

/// The issues of a body with repeated keys or modifier extensions, each located by its FHIRPath under the
/// body's `resourceType`.
fn strict_json_issues(body: &Value, findings: &[json::Finding], more: usize) -> Error {
    let root = match resource_type_of(body) {
        Some(name) if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()) => name,
        _ => "$this",
    };
    let mut issues: Vec<Issue> = findings
        .iter()
        .map(|finding| match finding {
            json::Finding::DuplicateKey(path) => {
                let key = match path.last() {
                    Some(json::Step::Key(key)) => shown(key),
                    _ => "?".into(),
                };
                Issue::new(
                    "structure",
                    json::fhirpath(root, path),
                    format!(
                        "the key {key} appears more than once in this JSON object; send each key once \
                         (which value was meant cannot be known)"
                    ),
                )
            }
            json::Finding::ModifierExtension(path) => Issue::new(
                "extension",
                json::fhirpath(root, path),
                "modifierExtension is not understood by this service: a modifier extension changes the \
                 meaning of its element, so FHIR requires refusing it; remove it or send the data without it",
            ),
        })
        .collect();
    if more > 0 {
        issues.push(Issue::new(
            "structure",
            None,
            format!("{more} more repeated keys or modifier extensions not listed"),
        ));
    }
    Error::Invalid(issues)
}

/// Validates one QuestionnaireResponse against the DDCC:VS questionnaire, reporting every problem at once.
pub fn parse_questionnaire_response(qr: &QuestionnaireResponse) -> Result<VaccinationEvent> {
    response::validate(qr, &At::new(QuestionnaireResponse::RESOURCE_TYPE))
}

/// A QuestionnaireResponse held as JSON at `at`.
fn from_response(resource: Value, at: &At) -> Result<VaccinationEvent> {
    let qr: QuestionnaireResponse = typed(resource, at, "QuestionnaireResponse")?;
    response::validate(&qr, at)
}

/// A `Parameters` held as JSON at `at`, carrying the response in `parameter[name=response].resource`.
fn from_parameters(resource: Value, at: &At) -> Result<VaccinationEvent> {
    let parameters: Parameters = typed(resource, at, "Parameters")?;
    let param_at = at.field("parameter.where(name='response')");
    let mut responses = parameters
        .parameter
        .into_iter()
        .filter(|p| p.name == "response");
    let param = match (responses.next(), responses.next()) {
        (Some(param), None) => param,
        (None, _) => {
            return Err(Error::invalid(
                "required",
                param_at,
                "no 'response' parameter: put the QuestionnaireResponse in parameter[name=response].resource",
            ))
        }
        (Some(_), Some(_)) => {
            return Err(Error::invalid(
                "duplicate",
                param_at,
                "more than one 'response' parameter; send one QuestionnaireResponse per Parameters",
            ))
        }
    };
    let resource_at = At::new(format!("{param_at}.resource"));
    match param.resource {
        Some(qr) if resource_type_of(&qr) == Some(QuestionnaireResponse::RESOURCE_TYPE) => {
            from_response(qr, &resource_at)
        }
        Some(other) => Err(Error::invalid(
            "invalid",
            resource_at.path().to_owned(),
            format!(
                "the 'response' parameter must hold a QuestionnaireResponse, not {}",
                resource_type_of(&other).map_or_else(|| "a resource without resourceType".into(), shown)
            ),
        )),
        None => Err(Error::invalid(
            "required",
            resource_at.path().to_owned(),
            "the 'response' parameter has no resource; put the QuestionnaireResponse in parameter.resource",
        )),
    }
}

/// A batch Bundle: one outcome per entry.
fn from_batch(body: Value) -> Result<Vec<Result<VaccinationEvent>>> {
    let at = At::new(Bundle::RESOURCE_TYPE);
    let bundle: Bundle = typed(body, &at, "Bundle")?;
    if bundle.type_ != "batch" {
        return Err(Error::invalid(
            "value",
            at.field("type"),
            format!(
                "Bundle.type is {}; only a 'batch' Bundle of {GENERATE_URL} requests is accepted",
                shown(&bundle.type_)
            ),
        ));
    }
    if bundle.entry.is_empty() {
        return Err(Error::invalid(
            "required",
            at.field("entry"),
            "the batch Bundle has no entries",
        ));
    }
    Ok(bundle
        .entry
        .into_iter()
        .enumerate()
        .map(|(index, entry)| from_entry(index, entry))
        .collect())
}

/// One batch entry: `POST QuestionnaireResponse/$generateHealthCertificate` with a QuestionnaireResponse
/// or a Parameters.
fn from_entry(index: usize, entry: fhir_models::BundleEntry) -> Result<VaccinationEvent> {
    let entry_at = format!("Bundle.entry[{index}]");
    match &entry.request {
        Some(request) if request.method == "POST" && request.url == GENERATE_URL => {}
        Some(request) => {
            return Err(Error::NotSupported(format!(
            "{entry_at}.request: {} {} is not supported; a batch entry must be POST {GENERATE_URL}",
            shown(&request.method),
            shown(&request.url)
        )))
        }
        None => {
            return Err(Error::NotSupported(format!(
                "{entry_at} has no request; a batch entry must be POST {GENERATE_URL}"
            )))
        }
    }
    let at = At::new(format!("{entry_at}.resource"));
    let Some(resource) = entry.resource else {
        return Err(Error::invalid(
            "required",
            at.path().to_owned(),
            "the entry has no resource; send a QuestionnaireResponse or a Parameters",
        ));
    };
    match resource_type_of(&resource) {
        Some(QuestionnaireResponse::RESOURCE_TYPE) => from_response(resource, &at),
        Some(Parameters::RESOURCE_TYPE) => from_parameters(resource, &at),
        other => Err(Error::invalid(
            "invalid",
            at.path().to_owned(),
            format!(
                "{GENERATE_URL} takes a QuestionnaireResponse or a Parameters, not {}",
                other.map_or_else(|| "a resource without resourceType".into(), shown)
            ),
        )),
    }
}

/// Deserializes a resource whose `resourceType` is already known. The models type only a few elements
/// (ids, linkIds, answers, parameter names, Bundle entries), so this fails only when one of those has
/// the wrong JSON type; serde's message names it.
fn typed<T: Resource>(resource: Value, at: &At, what: &str) -> Result<T> {
    serde_json::from_value(resource).map_err(|e| {
        Error::invalid(
            "structure",
            at.path().to_owned(),
            format!("the {what} is not valid FHIR R4 JSON: {e}"),
        )
    })
}

#[cfg(test)]
mod tests;
