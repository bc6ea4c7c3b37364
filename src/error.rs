//! The one error type of the pipeline.
//!
//! Each variant knows whose fault it is: the caller's (4xx: fix the input, do not retry) or a
//! dependency's (503: retry later). The CLI and the HTTP layer map it the same way, through
//! [`Error::status`] and [`Error::to_operation_outcome`].

use fhir_models::{OperationOutcome, OperationOutcomeIssue};

/// One problem with the caller's input, located by a FHIRPath expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// FHIR IssueType code: `required`, `value`, `invalid`, `structure`, `code-invalid`, `not-supported`, `too-long`…
    pub code: &'static str,
    /// FHIRPath of the offending element, e.g. `QuestionnaireResponse.item.where(linkId='dose')`.
    pub expression: Option<String>,
    /// A sentence a person can act on.
    pub message: String,
}

impl Issue {
    pub fn new(
        code: &'static str,
        expression: impl Into<Option<String>>,
        message: impl Into<String>,
    ) -> Self {
        Issue {
            code,
            expression: expression.into(),
            message: message.into(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The input is not acceptable; every problem found, not just the first.
    #[error("invalid input: {}", summary(.0))]
    Invalid(Vec<Issue>),
    /// The input is valid but asks for something this service does not do.
    #[error("not supported: {0}")]
    NotSupported(String),
    /// A dependency (Vault, the FHIR server, OpenHIM) is unreachable or refused; retry later.
    #[error("{service} unavailable: {reason}")]
    Unavailable {
        service: &'static str,
        reason: String,
    },
    /// The event is older than the certificate issued for it (a later correction is current): nothing
    /// changes. The message names the current version.
    #[error("superseded: {0}")]
    Superseded(String),
    /// The store refused a write because the certificate changed after it was read (another replica
    /// wrote first). The issuer reads again and decides anew; callers see it only if that keeps happening.
    #[error("write conflict: {0}")]
    WriteConflict(String),
    /// The configuration cannot work (found at start-up, before any request is served).
    #[error("configuration error: {0}")]
    Config(String),
    /// Reading or writing a local file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    /// A bug or broken invariant on our side.
    #[error("internal error: {0}")]
    Internal(String),
}

fn summary(issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| i.message.as_str())
        .collect::<Vec<_>>()
        .join("; ")
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// One invalid-input issue.
    pub fn invalid(
        code: &'static str,
        expression: impl Into<Option<String>>,
        message: impl Into<String>,
    ) -> Self {
        Error::Invalid(vec![Issue::new(code, expression, message)])
    }

    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// The HTTP status this error maps to.
    pub fn status(&self) -> u16 {
        match self {
            Error::Invalid(_) => 422,
            Error::NotSupported(_) => 400,
            Error::Superseded(_) | Error::WriteConflict(_) => 409,
            Error::Unavailable { .. } => 503,
            Error::Config(_) | Error::Io { .. } | Error::Internal(_) => 500,
        }
    }

    /// True when the caller should fix the request rather than retry it.
    pub fn is_caller_fault(&self) -> bool {
        !matches!(self, Error::WriteConflict(_)) && (400..500).contains(&self.status())
    }

    /// The FHIR OperationOutcome that reports this error.
    pub fn to_operation_outcome(&self) -> OperationOutcome {
        let issue =
            |code: &str, expression: Option<&String>, diagnostics: String| OperationOutcomeIssue {
                severity: "error".into(),
                code: code.into(),
                diagnostics: Some(diagnostics),
                expression: expression.cloned().into_iter().collect(),
                ..Default::default()
            };
        let issues = match self {
            Error::Invalid(list) => list
                .iter()
                .map(|i| issue(i.code, i.expression.as_ref(), i.message.clone()))
                .collect(),
            Error::NotSupported(m) => vec![issue("not-supported", None, m.clone())],
            Error::Superseded(m) | Error::WriteConflict(m) => {
                vec![issue("conflict", None, m.clone())]
            }
            Error::Unavailable { .. } => vec![issue("transient", None, self.to_string())],
            // Internal details stay in the logs; the caller learns only that it was not their fault.
            Error::Config(_) | Error::Io { .. } | Error::Internal(_) => {
                vec![issue(
                    "exception",
                    None,
                    "the certificate could not be issued because of an internal error".into(),
                )]
            }
        };
        OperationOutcome {
            issue: issues,
            ..Default::default()
        }
    }
}

/// An error and its sources on one line, e.g. "error sending request: connection refused".
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
