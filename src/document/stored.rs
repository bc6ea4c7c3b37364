//! Reading a document Bundle as it was issued or stored (JSON): its entries' resources and their attachments.
//! Issuing, revoking, renewing, the citizen pages and the stores all look into stored documents; this is the
//! one way they do it.
//!
//! **Standalone QR DocumentReferences.** A store keeps each entry of a document also as a resource of its
//! own (searchable by Patient, status, type). A QR DocumentReference is kept so without its attachments'
//! `data` (the PNG and the payload, which the document holds: storing them twice was a third of a
//! certificate's bytes once the PDF is set aside): [`standalone`] says where they are instead, in
//! `context.related` (the document Bundle), and [`document_of`] reads that back. Without its image the copy
//! no longer meets the DDCCDocumentReferenceQR profile (`content[qrImage].attachment.data` 1..1), so it
//! does not claim it; the document's own entry, which does, is the one handed out.

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

/// The standalone copy of one of the document `bundle_id`'s QR DocumentReferences: the attachments without
/// their `data`, no profile claim, and `context.related` naming the document (see the module documentation).
pub fn standalone(reference: &Value, bundle_id: &str) -> Value {
    let mut copy = reference.clone();
    let Some(map) = copy.as_object_mut() else {
        return copy;
    };
    if let Some(meta) = map.get_mut("meta").and_then(Value::as_object_mut) {
        meta.remove("profile");
        if meta.is_empty() {
            map.remove("meta");
        }
    }
    for attachment in map
        .get_mut("content")
        .and_then(Value::as_array_mut)
        .into_iter()
        .flatten()
        .filter_map(|c| c.get_mut("attachment").and_then(Value::as_object_mut))
    {
        attachment.remove("data");
    }
    map.insert(
        "context".into(),
        serde_json::json!({"related": [{"reference": format!("Bundle/{bundle_id}")}]}),
    );
    copy
}

/// The id of the document Bundle a standalone QR DocumentReference points at ([`standalone`]).
pub fn document_of(reference: &Value) -> Option<&str> {
    reference
        .pointer("/context/related")?
        .as_array()?
        .iter()
        .filter_map(|r| r.get("reference")?.as_str()?.strip_prefix("Bundle/"))
        .next()
}

/// The entry `id` of a document, if it is a DocumentReference.
pub fn document_reference<'a>(document: &'a Value, id: &str) -> Option<&'a Value> {
    resources_of(document, "DocumentReference")
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
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

    #[test]
    fn a_standalone_qr_reference_points_at_its_document_instead_of_repeating_it() {
        let reference = json!({"resourceType": "DocumentReference", "id": "qr-1",
        "meta": {"profile": ["http://smart.who.int/ddcc/StructureDefinition/DDCCDocumentReferenceQR"]},
        "status": "current", "type": {"coding": [{"code": "who"}]},
        "content": [
            {"attachment": {"contentType": "application/json", "data": "e30="},
             "format": {"code": "serialized"}},
            {"attachment": {"contentType": "image/png", "data": "AAEC"}, "format": {"code": "image"}}
        ]});
        let copy = standalone(&reference, "doc-1");
        assert_eq!(attachment(&copy, "image/png"), None);
        assert_eq!(attachment(&copy, "application/json"), None);
        assert_eq!(copy["content"][1]["attachment"]["contentType"], "image/png");
        assert_eq!(copy["content"][1]["format"]["code"], "image");
        assert!(copy.get("meta").is_none(), "no profile it does not meet");
        assert_eq!(copy["status"], "current");
        assert_eq!(qr_kind(&copy), Some("who"));
        assert_eq!(document_of(&copy), Some("doc-1"));
        assert_eq!(document_of(&reference), None);

        let document = json!({"entry": [{"resource": reference}]});
        let found = document_reference(&document, "qr-1").unwrap();
        assert_eq!(attachment(found, "image/png"), Some(vec![0, 1, 2]));
        assert!(document_reference(&document, "qr-2").is_none());
    }
}
