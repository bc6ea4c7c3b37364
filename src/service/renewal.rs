//! When a stored certificate is signed anew for the same content: renewal (its `exp` is near or past) and
//! re-signing (its key was withdrawn, see `ddcc-mediator reissue`).
//!
//! Each signing of one content is a *generation* (0 for the first, kept as `meta.tag`
//! [`GENERATION_TAG_SYSTEM`]), and the ids of a version's QR and PDF resources derive from its content hash
//! and generation ([`version_key`]), so a renewal gets resources of its own while the ones it supersedes keep
//! theirs. The document also records what it was signed with ([`EXPIRES_TAG_SYSTEM`],
//! [`SIGNING_KID_TAG_SYSTEM`]), so that deciding a renewal reads tags, not QR images. Documents stored before
//! these tags existed are read from their `who` QR image, once per request that needs it.

use serde_json::{json, Value};

use crate::credential::{self, VerifyOptions};
use crate::error::{Error, Result};

/// `meta.tag` system: how many times this content was signed before this version (absent: 0).
pub const GENERATION_TAG_SYSTEM: &str = "urn:ddcc-mediator:signing-generation";
/// `meta.tag` system: the signed payloads' `exp`, Unix seconds.
pub const EXPIRES_TAG_SYSTEM: &str = "urn:ddcc-mediator:expires";
/// `meta.tag` system: the kid (hex) of the DSC whose key signed the payloads.
pub const SIGNING_KID_TAG_SYSTEM: &str = "urn:ddcc-mediator:signing-kid";

/// What a stored version was signed with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    /// `exp`, Unix seconds.
    pub exp: i64,
    /// kid, hex.
    pub kid: String,
}

impl Signed {
    /// Of a stored document: its tags, else its `who` QR image.
    pub fn of(document: &Value) -> Result<Signed> {
        let exp = tag(document, EXPIRES_TAG_SYSTEM).and_then(|e| e.parse().ok());
        let kid = tag(document, SIGNING_KID_TAG_SYSTEM);
        if let (Some(exp), Some(kid)) = (exp, kid) {
            return Ok(Signed {
                exp,
                kid: kid.to_owned(),
            });
        }
        Self::from_qr_image(document)
    }

    fn from_qr_image(document: &Value) -> Result<Signed> {
        use base64::Engine as _;
        let unreadable = |why: &str| {
            Error::Internal(format!(
                "stored document {} has no readable who QR ({why})",
                document.get("id").and_then(Value::as_str).unwrap_or("?")
            ))
        };
        let png = qr_png(document).ok_or_else(|| unreadable("no image"))?;
        let png = base64::engine::general_purpose::STANDARD
            .decode(png)
            .map_err(|_| unreadable("not base64"))?;
        let hc1 = credential::decode_qr_png(&png).map_err(|e| unreadable(&e.to_string()))?;
        // Nothing is trusted here: only the claims are read (the store wrote them).
        let report = credential::verify(&hc1, &VerifyOptions::default());
        match (report.exp, report.kid) {
            (Some(exp), Some(kid)) => Ok(Signed { exp, kid }),
            _ => Err(unreadable("no exp or kid")),
        }
    }

    /// The tags that record it.
    pub fn tags(&self) -> [Value; 2] {
        [
            json!({"system": EXPIRES_TAG_SYSTEM, "code": self.exp.to_string()}),
            json!({"system": SIGNING_KID_TAG_SYSTEM, "code": self.kid}),
        ]
    }
}

/// Whether a certificate expiring at `exp` is due for renewal at `now` with a window of `window_secs`:
/// expired, or expiring within the window.
pub fn due(exp: i64, now: i64, window_secs: i64) -> bool {
    exp.saturating_sub(window_secs) <= now
}

/// The generation of a stored version (0 when untagged: versions stored before renewal existed).
pub fn generation(document: &Value) -> u32 {
    tag(document, GENERATION_TAG_SYSTEM)
        .and_then(|g| g.parse().ok())
        .unwrap_or(0)
}

/// The key from which a version's QR and PDF resource ids derive: the content hash alone for generation 0
/// (as before renewal existed, so stored ids stay valid), with the generation after it.
pub fn version_key(content_hash: &str, generation: u32) -> String {
    match generation {
        0 => content_hash.to_owned(),
        n => format!("{content_hash}|{n}"),
    }
}

/// The generation tag of a version (none for generation 0).
pub fn generation_tag(generation: u32) -> Option<Value> {
    (generation > 0)
        .then(|| json!({"system": GENERATION_TAG_SYSTEM, "code": generation.to_string()}))
}

fn tag<'a>(document: &'a Value, system: &str) -> Option<&'a str> {
    document
        .pointer("/meta/tag")?
        .as_array()?
        .iter()
        .find(|t| t.get("system").and_then(Value::as_str) == Some(system))?
        .get("code")?
        .as_str()
}

/// The base64 PNG of the `who` QR DocumentReference of a document.
fn qr_png(document: &Value) -> Option<&str> {
    crate::document::stored::resources_of(document, "DocumentReference")
        .find(|r| crate::document::stored::qr_kind(r) == Some("who"))?
        .get("content")?
        .as_array()?
        .iter()
        .find(|c| {
            c.pointer("/attachment/contentType").and_then(Value::as_str) == Some("image/png")
        })?
        .pointer("/attachment/data")?
        .as_str()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_when_expired_or_within_the_window() {
        let day = 86_400;
        let exp = 100 * day;
        assert!(!due(exp, 50 * day, 28 * day), "outside the window");
        assert!(due(exp, 72 * day, 28 * day), "at its start");
        assert!(due(exp, 90 * day, 28 * day), "within");
        assert!(due(exp, 101 * day, 28 * day), "expired");
        assert!(due(exp, 101 * day, 0), "expired, no window");
        assert!(!due(exp, 99 * day, 0), "no window: only once expired");
    }

    #[test]
    fn generation_zero_keeps_the_ids_of_before() {
        assert_eq!(version_key("ab", 0), "ab");
        assert_eq!(version_key("ab", 2), "ab|2");
        let doc = json!({"meta": {"tag": [generation_tag(3).unwrap()]}});
        assert_eq!(generation(&doc), 3);
        assert_eq!(generation(&json!({})), 0);
        assert!(generation_tag(0).is_none());
    }
}
