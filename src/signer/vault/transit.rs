//! Typed calls of the transit secrets engine: keys, versions, CSR, certificate chains, sign.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{VaultClient, VaultError};
use crate::error::{Error, Result};
use crate::keys::public_key::PublicKey;
use crate::signer::Algorithm;

/// The transit key types that can sign HCERTs (ES256 primary, PS256 fallback; HCERT §3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KeyType {
    #[value(name = "ecdsa-p256")]
    EcdsaP256,
    #[value(name = "rsa-2048")]
    Rsa2048,
    #[value(name = "rsa-3072")]
    Rsa3072,
    #[value(name = "rsa-4096")]
    Rsa4096,
}

impl KeyType {
    /// Transit's name for the type.
    pub fn vault_name(self) -> &'static str {
        match self {
            KeyType::EcdsaP256 => "ecdsa-p256",
            KeyType::Rsa2048 => "rsa-2048",
            KeyType::Rsa3072 => "rsa-3072",
            KeyType::Rsa4096 => "rsa-4096",
        }
    }

    pub fn from_vault_name(name: &str) -> Option<Self> {
        [
            KeyType::EcdsaP256,
            KeyType::Rsa2048,
            KeyType::Rsa3072,
            KeyType::Rsa4096,
        ]
        .into_iter()
        .find(|t| t.vault_name() == name)
    }

    pub fn algorithm(self) -> Algorithm {
        match self {
            KeyType::EcdsaP256 => Algorithm::ES256,
            KeyType::Rsa2048 | KeyType::Rsa3072 | KeyType::Rsa4096 => Algorithm::PS256,
        }
    }
}

/// One version of a transit key as `GET transit/keys/<name>` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyVersion {
    /// SPKI PEM (empty for symmetric keys).
    pub public_key_pem: String,
    /// PEM chain stored by `set-certificate`, leaf first; empty when none was set.
    pub certificate_chain: String,
}

/// A transit key: its type and every version still present.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitKey {
    pub name: String,
    /// Transit's type name, kept verbatim so unsupported types can be named in errors.
    pub key_type: String,
    pub latest_version: u32,
    pub versions: BTreeMap<u32, KeyVersion>,
    /// Transit signs with no version below this (0: any). A withdrawal raises it.
    pub min_encryption_version: u32,
    /// Versions below this are archived by transit; this service no longer publishes them either (a
    /// withdrawn version whose certificates were all re-signed).
    pub min_decryption_version: u32,
}

/// A key version whose stored certificate chain was parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertifiedVersion {
    pub version: u32,
    /// DER certificates, leaf (the DSC) first.
    pub chain: Vec<Vec<u8>>,
    /// Leaf validity, Unix seconds.
    pub not_before: i64,
    pub not_after: i64,
}

impl CertifiedVersion {
    pub fn leaf(&self) -> &[u8] {
        self.chain.first().map(Vec::as_slice).unwrap_or_default()
    }
}

impl TransitKey {
    /// The key type, or a configuration error naming what is wrong: only signing types this
    /// service can put in a COSE header are accepted.
    pub fn supported_type(&self) -> Result<KeyType> {
        KeyType::from_vault_name(&self.key_type).ok_or_else(|| {
            Error::Config(format!(
                "transit key {:?} has type {:?}; HCERT signing needs ecdsa-p256 (ES256) or rsa-2048/3072/4096 (PS256)",
                self.name, self.key_type
            ))
        })
    }

    /// The public key of `version`.
    pub fn public_key(&self, version: u32) -> Result<PublicKey> {
        let entry = self.versions.get(&version).ok_or_else(|| {
            Error::Config(format!(
                "transit key {:?} has no version {version} (latest is {})",
                self.name, self.latest_version
            ))
        })?;
        PublicKey::from_spki_pem(&entry.public_key_pem)
    }

    /// Whether transit refuses to sign with `version` (a withdrawn version).
    pub fn withdrawn(&self, version: u32) -> bool {
        version < self.min_encryption_version
    }

    /// Every version with a certificate chain, newest first.
    pub fn certified_versions(&self) -> Result<Vec<CertifiedVersion>> {
        let mut out = Vec::new();
        for (&version, entry) in self.versions.iter().rev() {
            if entry.certificate_chain.trim().is_empty() {
                continue;
            }
            let chain = pem::parse_many(&entry.certificate_chain)
                .map_err(|e| {
                    Error::Config(format!(
                        "transit key {:?} version {version}: unreadable certificate chain: {e}",
                        self.name
                    ))
                })?
                .into_iter()
                .filter(|p| p.tag() == "CERTIFICATE")
                .map(pem::Pem::into_contents)
                .collect::<Vec<_>>();
            let Some(leaf) = chain.first() else { continue };
            let (not_before, not_after) = crate::signer::certificate::validity(leaf)?;
            out.push(CertifiedVersion {
                version,
                chain,
                not_before,
                not_after,
            });
        }
        Ok(out)
    }
}

#[derive(Debug, Deserialize)]
struct KeyData {
    name: String,
    #[serde(rename = "type")]
    key_type: String,
    latest_version: u32,
    #[serde(default)]
    keys: BTreeMap<String, Value>,
    #[serde(default)]
    min_encryption_version: u32,
    #[serde(default)]
    min_decryption_version: u32,
}

impl KeyData {
    fn into_key(self, path: &str) -> Result<TransitKey, VaultError> {
        let mut versions = BTreeMap::new();
        for (number, entry) in self.keys {
            let version: u32 = number.parse().map_err(|_| VaultError::Decode {
                path: path.to_owned(),
                reason: format!("key version {number:?} is not a number"),
            })?;
            // Asymmetric keys map to an object; symmetric ones to a creation timestamp.
            let text = |field: &str| {
                entry
                    .get(field)
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            versions.insert(
                version,
                KeyVersion {
                    public_key_pem: text("public_key"),
                    certificate_chain: text("certificate_chain"),
                },
            );
        }
        Ok(TransitKey {
            name: self.name,
            key_type: self.key_type,
            latest_version: self.latest_version,
            versions,
            min_encryption_version: self.min_encryption_version,
            min_decryption_version: self.min_decryption_version,
        })
    }
}

#[derive(Debug, Deserialize)]
struct SignData {
    signature: String,
}

#[derive(Debug, Deserialize)]
struct CsrData {
    csr: String,
}

/// One transit key on one mount.
#[derive(Debug, Clone)]
pub struct Transit {
    client: Arc<VaultClient>,
    mount: String,
    key: String,
}

impl Transit {
    pub fn new(client: Arc<VaultClient>, mount: &str, key: &str) -> Self {
        Transit {
            client,
            mount: mount.trim_matches('/').to_owned(),
            key: key.to_owned(),
        }
    }

    pub fn client(&self) -> &Arc<VaultClient> {
        &self.client
    }

    pub fn key_name(&self) -> &str {
        &self.key
    }

    fn path(&self, what: &str) -> String {
        format!("{}/{what}/{}", self.mount, self.key)
    }

    /// Enables the transit engine at the mount unless it is there already.
    pub async fn ensure_mount(&self) -> Result<(), VaultError> {
        let path = format!("sys/mounts/{}", self.mount);
        match self
            .client
            .write_unit(&path, &json!({"type": "transit"}))
            .await
        {
            Err(e) if e.is_already_in_use() => Ok(()),
            other => other,
        }
    }

    /// `GET transit/keys/<key>`; `None` when the key does not exist.
    pub async fn read_key(&self) -> Result<Option<TransitKey>, VaultError> {
        let path = self.path("keys");
        match self.client.read::<KeyData>(&path).await {
            Ok(data) => data.into_key(&path).map(Some),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Creates the key. Vault ignores `type` when the key exists: callers check the type after.
    pub async fn create_key(&self, key_type: KeyType) -> Result<(), VaultError> {
        self.client
            .write_unit(&self.path("keys"), &json!({"type": key_type.vault_name()}))
            .await
    }

    /// Adds a key version; older versions keep signing when asked by number and keep verifying.
    pub async fn rotate(&self) -> Result<(), VaultError> {
        let path = format!("{}/rotate", self.path("keys"));
        self.client.write_unit(&path, &json!({})).await
    }

    /// A CSR signed inside Vault by `version`, with the subject of `template_pem`.
    pub async fn csr(&self, version: u32, template_pem: &str) -> Result<String, VaultError> {
        let path = format!("{}/csr", self.path("keys"));
        let data: CsrData = self
            .client
            .write(&path, &json!({"version": version, "csr": template_pem}))
            .await?;
        Ok(data.csr)
    }

    /// Sets the key's `min_encryption_version` (no signature below it) and/or `min_decryption_version`
    /// (versions below it archived).
    pub async fn set_min_versions(
        &self,
        encryption: Option<u32>,
        decryption: Option<u32>,
    ) -> Result<(), VaultError> {
        let path = format!("{}/config", self.path("keys"));
        let mut body = serde_json::Map::new();
        if let Some(v) = encryption {
            body.insert("min_encryption_version".into(), json!(v));
        }
        if let Some(v) = decryption {
            body.insert("min_decryption_version".into(), json!(v));
        }
        self.client.write_unit(&path, &Value::Object(body)).await
    }

    /// Stores the certificate chain (PEM, leaf first) of `version`.
    pub async fn set_certificate(&self, version: u32, chain_pem: &str) -> Result<(), VaultError> {
        let path = format!("{}/set-certificate", self.path("keys"));
        self.client
            .write_unit(
                &path,
                &json!({"version": version, "certificate_chain": chain_pem}),
            )
            .await
    }

    /// Signs `tbs` with exactly `version` and returns the COSE signature bytes.
    ///
    /// `jws` marshaling gives raw r‖s for ECDSA (the COSE ES256 form) and base64url for both key
    /// families; PS256 asks for PSS with a 32-byte salt, as COSE -37 requires.
    pub async fn sign(
        &self,
        version: u32,
        alg: Algorithm,
        tbs: &[u8],
    ) -> Result<Vec<u8>, VaultError> {
        let path = self.path("sign");
        let mut body = json!({
            "input": base64::engine::general_purpose::STANDARD.encode(tbs),
            "hash_algorithm": "sha2-256",
            "marshaling_algorithm": "jws",
            "key_version": version,
        });
        if alg == Algorithm::PS256 {
            body["signature_algorithm"] = json!("pss");
            body["salt_length"] = json!(32);
        }
        let data: SignData = self.client.write(&path, &body).await?;
        let decode_error = |reason: String| VaultError::Decode {
            path: path.clone(),
            reason,
        };
        let (signed_by, encoded) = parse_signature(&data.signature)
            .ok_or_else(|| decode_error("signature is not vault:v<N>:<base64url>".into()))?;
        if signed_by != version {
            return Err(decode_error(format!(
                "asked for key version {version}, Vault signed with {signed_by}"
            )));
        }
        let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(encoded)
            .map_err(|e| decode_error(format!("signature is not base64url: {e}")))?;
        if alg == Algorithm::ES256 && signature.len() != 64 {
            return Err(decode_error(format!(
                "an ES256 signature is 64 bytes (r||s), got {}",
                signature.len()
            )));
        }
        Ok(signature)
    }
}

/// Splits `vault:v<N>:<signature>` into N and the encoded signature.
fn parse_signature(s: &str) -> Option<(u32, &str)> {
    let mut parts = s.splitn(3, ':');
    let (prefix, version, signature) = (parts.next()?, parts.next()?, parts.next()?);
    let version = version.strip_prefix('v')?.parse().ok()?;
    (prefix == "vault" && !signature.is_empty()).then_some((version, signature))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_version_prefix() {
        assert_eq!(parse_signature("vault:v3:abc"), Some((3, "abc")));
        assert_eq!(parse_signature("vault:v12:a:b"), Some((12, "a:b")));
        assert_eq!(parse_signature("vault:3:abc"), None);
        assert_eq!(parse_signature("vault:v1:"), None);
        assert_eq!(parse_signature("other:v1:abc"), None);
    }

    #[test]
    fn only_signing_types_are_supported() {
        assert_eq!(
            KeyType::from_vault_name("ecdsa-p256").map(KeyType::algorithm),
            Some(Algorithm::ES256)
        );
        assert_eq!(
            KeyType::from_vault_name("rsa-3072").map(KeyType::algorithm),
            Some(Algorithm::PS256)
        );
        assert_eq!(KeyType::from_vault_name("ed25519"), None);
        assert_eq!(KeyType::from_vault_name("aes256-gcm96"), None);
    }
}
