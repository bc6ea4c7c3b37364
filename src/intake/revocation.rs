//! The `Parameters` of `$revokeHealthCertificate` (DDCC IG 1.0.0, OperationDefinition
//! `DDCCQuestionnaireResponserevokeHealthCertificate`): `id` (1..1, the DDCC document id) and, beyond the
//! IG, an optional `reason` (a string, kept with the revocation record).

use serde_json::Value;

use super::json;
use crate::error::{Error, Issue, Result};
use crate::store::valid_id;

/// Longest `reason` kept, in characters.
pub const MAX_REASON_CHARS: usize = 1000;

/// A revocation request whose `id` can be a stored document id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationRequest {
    pub id: String,
    pub reason: Option<String>,
}

/// Parses and checks the request body (strict JSON, as every body).
pub fn read_revocation(bytes: &[u8]) -> Result<RevocationRequest> {
    let parsed = json::parse(bytes).map_err(|e| {
        Error::invalid(
            "structure",
            None,
            format!("the request body is not valid JSON: {e}"),
        )
    })?;
    if !parsed.findings.is_empty() {
        return Err(super::strict_json_issues(
            &parsed.value,
            &parsed.findings,
            parsed.more,
        ));
    }
    let body = parsed.value;
    if body.get("resourceType").and_then(Value::as_str) != Some("Parameters") {
        return Err(Error::invalid(
            "structure",
            Some("resourceType".into()),
            "send a Parameters resource with parameter id (the DDCC document id) and optionally reason",
        ));
    }
    let parameters = body
        .get("parameter")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    let named = |name: &str| {
        parameters
            .iter()
            .filter(|p| p.get("name").and_then(Value::as_str) == Some(name))
            .collect::<Vec<_>>()
    };
    let at = |name: &str| format!("Parameters.parameter.where(name='{name}')");
    let mut issues = Vec::new();
    let ids = named("id");
    let id = match ids.as_slice() {
        [one] => match one
            .get("valueId")
            .or_else(|| one.get("valueString"))
            .and_then(Value::as_str)
        {
            Some(id) if valid_id(id) => Some(id.to_owned()),
            Some(_) => {
                issues.push(Issue::new(
                    "value",
                    at("id"),
                    "id must be a FHIR id: 1 to 64 of A-Z, a-z, 0-9, '-' and '.'",
                ));
                None
            }
            None => {
                issues.push(Issue::new("required", at("id"), "id needs a valueId"));
                None
            }
        },
        [] => {
            issues.push(Issue::new(
                "required",
                at("id"),
                "the parameter id (the DDCC document id) is required",
            ));
            None
        }
        _ => {
            issues.push(Issue::new("structure", at("id"), "id may appear only once"));
            None
        }
    };
    let reasons = named("reason");
    let reason = match reasons.as_slice() {
        [] => None,
        [one] => match one.get("valueString").and_then(Value::as_str) {
            Some(r) if r.chars().count() <= MAX_REASON_CHARS => Some(r.to_owned()),
            Some(_) => {
                issues.push(Issue::new(
                    "too-long",
                    at("reason"),
                    format!("reason may have at most {MAX_REASON_CHARS} characters"),
                ));
                None
            }
            None => {
                issues.push(Issue::new(
                    "value",
                    at("reason"),
                    "reason needs a valueString",
                ));
                None
            }
        },
        _ => {
            issues.push(Issue::new(
                "structure",
                at("reason"),
                "reason may appear only once",
            ));
            None
        }
    };
    for (i, p) in parameters.iter().enumerate() {
        let name = p.get("name").and_then(Value::as_str).unwrap_or_default();
        if name != "id" && name != "reason" {
            issues.push(Issue::new(
                "not-supported",
                format!("Parameters.parameter[{i}]"),
                "only the parameters id and reason are accepted",
            ));
        }
    }
    match (id, issues.is_empty()) {
        (Some(id), true) => Ok(RevocationRequest { id, reason }),
        _ => Err(Error::Invalid(issues)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_and_reason_are_read_and_every_fault_is_named() {
        let ok = read_revocation(
            br#"{"resourceType":"Parameters","parameter":[{"name":"id","valueId":"abc-1"},
                {"name":"reason","valueString":"issued in error"}]}"#,
        )
        .unwrap();
        assert_eq!(ok.id, "abc-1");
        assert_eq!(ok.reason.as_deref(), Some("issued in error"));
        let Err(Error::Invalid(issues)) = read_revocation(
            br#"{"resourceType":"Parameters","parameter":[{"name":"id","valueId":"../x"},
                {"name":"reason","valueInteger":1},{"name":"other","valueString":"x"}]}"#,
        ) else {
            panic!("accepted")
        };
        let paths: Vec<_> = issues.iter().filter_map(|i| i.expression.clone()).collect();
        assert_eq!(
            paths,
            [
                "Parameters.parameter.where(name='id')",
                "Parameters.parameter.where(name='reason')",
                "Parameters.parameter[2]"
            ]
        );
        assert!(read_revocation(br#"{"resourceType":"Parameters"}"#).is_err());
        assert!(read_revocation(br#"{"resourceType":"Patient"}"#).is_err());
        assert!(read_revocation(b"[").is_err());
    }
}
