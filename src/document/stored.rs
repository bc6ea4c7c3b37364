//! Reading a document Bundle as it was issued or stored (JSON): its entries' resources and their attachments.
//! Issuing, revoking, renewing, the citizen pages and the stores all look into stored documents; this is the
//! one way they do it.

use base64::Engine as _;
use serde_json::Value;

/// Every entry's resource.
pub fn resources(document: &Value) -> impl Iterator<Item = &Value> {
    document
        .get("entry")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("resource"))
}

/// The entries' resources of `resource_type`.
pub fn resources_of<'a>(
    document: &'a Value,
    resource_type: &'a str,
) -> impl Iterator<Item = &'a Value> + 'a {
    resources(document)
        .filter(move |r| r.get("resourceType").and_then(Value::as_str) == Some(resource_type))
}

/// The QR kind of a DocumentReference (DDCCQRTypeCodeSystem `who`, `dcc`), if it is one.
pub fn qr_kind(reference: &Value) -> Option<&str> {
    reference.pointer("/type/coding/0/code")?.as_str()
}

/// The decoded bytes of a DocumentReference's first attachment of `content_type`.
pub fn attachment(reference: &Value, content_type: &str) -> Option<Vec<u8>> {
    let data = reference
        .get("content")?
        .as_array()?
        .iter()
        .filter_map(|c| c.get("attachment"))
        .find(|a| a.get("contentType").and_then(Value::as_str) == Some(content_type))?
        .get("data")?
        .as_str()?;
    base64::engine::general_purpose::STANDARD.decode(data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reads_entries_kinds_and_attachments() {
        let document = json!({"entry": [
            {"resource": {"resourceType": "Composition"}},
            {"resource": {"resourceType": "DocumentReference", "type": {"coding": [{"code": "who"}]},
              "content": [{"attachment": {"contentType": "image/png", "data": "AAEC"}}]}},
            {"fullUrl": "urn:uuid:no-resource"}
        ]});
        assert_eq!(resources(&document).count(), 2);
        let reference = resources_of(&document, "DocumentReference").next().unwrap();
        assert_eq!(qr_kind(reference), Some("who"));
        assert_eq!(attachment(reference, "image/png"), Some(vec![0, 1, 2]));
        assert_eq!(attachment(reference, "application/pdf"), None);
        assert_eq!(resources(&json!({"entry": "garbage"})).count(), 0);
    }
}
