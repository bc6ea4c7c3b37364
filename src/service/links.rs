//! Citizen download links: `<public-url>/certificates/<token>/<file>`.
//!
//! The token is the document Bundle's id and an HMAC-SHA256 of it under a server secret (first 128 bits):
//! it cannot be guessed or enumerated, yet needs no lookup table, so every replica that shares the secret
//! serves every link. The secret lives in `<data-dir>/link-secret` (0600), created on first start.

use std::path::Path;

use ring::hmac;

use crate::error::{Error, Result};

/// File name of the link secret in the data directory.
pub const SECRET_FILE: &str = "link-secret";
const MAC_BYTES: usize = 16;

#[derive(Debug)]
pub struct Links {
    key: hmac::Key,
    public_url: String,
}

impl Links {
    /// Reads the secret from `data_dir`, creating it when missing.
    pub fn open(data_dir: &Path, public_url: String) -> Result<Self> {
        let path = data_dir.join(SECRET_FILE);
        let secret = match std::fs::read(&path) {
            Ok(bytes) if bytes.len() >= 32 => bytes,
            Ok(_) => {
                return Err(Error::Config(format!(
                    "{} is shorter than 32 bytes; remove it to create a new one (old links stop working)",
                    path.display()
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let secret: [u8; 32] = rand::random();
                let text = hex::encode(secret);
                super::write_private_file(&path, text.as_bytes())
                    .map_err(|e| Error::io(format!("creating {}", path.display()), e))?;
                text.into_bytes()
            }
            Err(e) => return Err(Error::io(format!("reading {}", path.display()), e)),
        };
        Ok(Links {
            key: hmac::Key::new(hmac::HMAC_SHA256, &secret),
            public_url,
        })
    }

    /// The token of a document Bundle id (a UUID).
    pub fn token(&self, bundle_id: &str) -> Option<String> {
        let uuid = uuid::Uuid::parse_str(bundle_id).ok()?;
        let tag = hmac::sign(&self.key, uuid.as_bytes());
        Some(format!(
            "{}{}",
            uuid.simple(),
            hex::encode(&tag.as_ref()[..MAC_BYTES])
        ))
    }

    /// The document Bundle id a token stands for, if the token is genuine: exactly as issued (64 lower-case
    /// hex digits), so one token has one spelling and only one URL.
    pub fn bundle_id(&self, token: &str) -> Option<String> {
        if token.len() != 64
            || !token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        let (id_hex, mac_hex) = token.split_at(32);
        let uuid = uuid::Uuid::parse_str(id_hex).ok()?;
        let mac = hex::decode(mac_hex).ok()?;
        let expected = hmac::sign(&self.key, uuid.as_bytes());
        // ring's verify compares in constant time; it needs the full tag, so compare the prefix ourselves.
        let mut diff = 0u8;
        for (a, b) in mac.iter().zip(&expected.as_ref()[..MAC_BYTES]) {
            diff |= a ^ b;
        }
        (diff == 0 && mac.len() == MAC_BYTES).then(|| uuid.hyphenated().to_string())
    }

    /// `<public-url>/certificates/<token>/<file>`.
    pub fn url(&self, bundle_id: &str, file: &str) -> Option<String> {
        Some(format!(
            "{}/certificates/{}/{file}",
            self.public_url,
            self.token(bundle_id)?
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_forgeries_fail() {
        let dir = tempfile::tempdir().unwrap();
        let links = Links::open(dir.path(), "http://x".into()).unwrap();
        let id = "c5e48021-4651-4b2a-bc72-957e2a26bbbf";
        let token = links.token(id).unwrap();
        assert_eq!(links.bundle_id(&token).as_deref(), Some(id));
        let mut forged = token.clone();
        forged.replace_range(63.., if token.ends_with('0') { "1" } else { "0" });
        assert_eq!(links.bundle_id(&forged), None);
        // Case-exact: the upper-case spelling of a genuine token is not a token.
        assert_eq!(links.bundle_id(&token.to_ascii_uppercase()), None);
        let mixed: String = token
            .chars()
            .enumerate()
            .map(|(i, c)| if i == 40 { c.to_ascii_uppercase() } else { c })
            .collect();
        if mixed != token {
            assert_eq!(links.bundle_id(&mixed), None);
        }
        // Same secret file, same tokens; another secret, other tokens.
        let again = Links::open(dir.path(), "http://x".into()).unwrap();
        assert_eq!(again.token(id), Some(token.clone()));
        let other = Links::open(tempfile::tempdir().unwrap().path(), "http://x".into()).unwrap();
        assert_eq!(other.bundle_id(&token), None);
    }
}
