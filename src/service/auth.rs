//! API keys of the issuing endpoints: `Authorization: Bearer <key>`, or Basic with the key as password.
//!
//! Only SHA-256 digests of keys are configured (`DDCC_API_KEYS`), so the configuration holds no secret. When
//! none is configured a random key is created in `<data-dir>/api-key` (0600) on first start, so a fresh
//! install is never open. OIDC and mTLS sit beside it in [`super::access`].

use std::path::{Path, PathBuf};

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};

/// File name of the generated API key in the data directory.
pub const KEY_FILE: &str = "api-key";
/// File name of the generated key OpenHIM presents on its channel route.
pub const OPENHIM_ROUTE_KEY_FILE: &str = "openhim-route-key";

#[derive(Debug, Clone)]
pub struct ApiKeys {
    digests: Vec<[u8; 32]>,
    /// The digest of the key OpenHIM presents on its channel route: a caller with it is OpenHIM itself.
    openhim: Option<[u8; 32]>,
}

impl ApiKeys {
    pub fn new(digests: Vec<[u8; 32]>) -> Self {
        ApiKeys {
            digests,
            openhim: None,
        }
    }

    /// The configured digests, or the digest of `<data_dir>/api-key` (created when missing); the path is
    /// returned when the file is used, for the start-up log.
    pub fn configured_or_generated(
        digests: Vec<[u8; 32]>,
        data_dir: &Path,
    ) -> Result<(Self, Option<PathBuf>)> {
        if !digests.is_empty() {
            return Ok((ApiKeys::new(digests), None));
        }
        let (key, path) = Self::key_file(data_dir, KEY_FILE)?;
        Ok((ApiKeys::new(vec![digest(&key)]), Some(path)))
    }

    /// Also accepts `key`.
    pub fn accept(&mut self, key: &str) {
        self.digests.push(digest(key));
    }

    /// Also accepts `key`, as OpenHIM's own (the route key of its channel).
    pub fn accept_openhim(&mut self, key: &str) {
        self.accept(key);
        self.openhim = Some(digest(key));
    }

    /// The key in `<data_dir>/<file>`, created (random, 0600) when missing.
    pub fn key_file(data_dir: &Path, file: &str) -> Result<(String, PathBuf)> {
        let path = data_dir.join(file);
        let key = match std::fs::read_to_string(&path) {
            Ok(text) => text.trim().to_owned(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let key = hex::encode(rand::random::<[u8; 32]>());
                super::write_private_file(&path, key.as_bytes())
                    .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
                key
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        if key.is_empty() {
            return Err(Error::Config(format!("{} is empty", path.display())));
        }
        Ok((key, path))
    }

    /// Whether the `Authorization` header value carries an accepted key.
    pub fn authenticate(&self, authorization: Option<&str>) -> bool {
        self.identify(authorization).is_some()
    }

    /// The key id (first 8 hex digits of the key's SHA-256) of an accepted key in the `Authorization`
    /// header value, for the audit trail.
    pub fn identify(&self, authorization: Option<&str>) -> Option<String> {
        self.identify_caller(authorization)
            .map(|(key_id, _)| key_id)
    }

    /// As [`ApiKeys::identify`], and whether the key is OpenHIM's route key.
    pub fn identify_caller(&self, authorization: Option<&str>) -> Option<(String, bool)> {
        let key = authorization.and_then(presented_key)?;
        let presented = digest(&key);
        // Compare against every digest, each in constant time, without stopping early.
        let mut matched = false;
        for d in &self.digests {
            let mut diff = 0u8;
            for (a, b) in d.iter().zip(&presented) {
                diff |= a ^ b;
            }
            matched |= diff == 0;
        }
        let openhim = self.openhim.is_some_and(|d| {
            d.iter()
                .zip(&presented)
                .fold(0u8, |diff, (a, b)| diff | (a ^ b))
                == 0
        });
        matched.then(|| (hex::encode(&presented[..4]), openhim))
    }
}

pub fn digest(key: &str) -> [u8; 32] {
    Sha256::digest(key.as_bytes()).into()
}

/// The key in `Bearer <key>` or `Basic base64(<anything>:<key>)`.
fn presented_key(header: &str) -> Option<String> {
    let (scheme, rest) = header.trim().split_once(' ')?;
    let rest = rest.trim();
    if scheme.eq_ignore_ascii_case("bearer") {
        return (!rest.is_empty()).then(|| rest.to_owned());
    }
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(rest)
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (_, password) = text.split_once(':')?;
        return (!password.is_empty()).then(|| password.to_owned());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_and_basic_carry_the_key() {
        let keys = ApiKeys::new(vec![digest("s3cret")]);
        assert!(keys.authenticate(Some("Bearer s3cret")));
        let basic = base64::engine::general_purpose::STANDARD.encode("facility:s3cret");
        assert!(keys.authenticate(Some(&format!("Basic {basic}"))));
        assert!(!keys.authenticate(Some("Bearer other")));
        assert!(!keys.authenticate(Some("s3cret")));
        assert!(!keys.authenticate(None));
        // The audit id is the first 8 hex digits of SHA-256("s3cret").
        assert_eq!(
            keys.identify(Some("Bearer s3cret")).as_deref(),
            Some("1ec1c26b")
        );
        assert_eq!(keys.identify(Some("Bearer other")), None);
    }

    #[test]
    fn only_the_route_key_is_openhim() {
        let mut keys = ApiKeys::new(vec![digest("facility")]);
        keys.accept_openhim("route");
        assert_eq!(
            keys.identify_caller(Some("Bearer facility"))
                .map(|(_, o)| o),
            Some(false)
        );
        assert_eq!(
            keys.identify_caller(Some("Bearer route")).map(|(_, o)| o),
            Some(true)
        );
        assert_eq!(keys.identify_caller(Some("Bearer other")), None);
    }
}
