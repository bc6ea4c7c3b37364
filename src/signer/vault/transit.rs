//! Typed calls of the transit secrets engine: keys, versions, CSR, certificate chains, sign.

use std::collections::BTreeMap;
use std::sync::Arc;

use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

use super::client::{VaultClient, VaultError};
use crate::error::{Error, Result};
use crate::keys::public_key::PublicKey;
use crate::signer::certificate::ES256_SIGNATURE_LEN;
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

/// `data` of a `transit/sign` answer to a `batch_input` request.
#[derive(Debug, Deserialize)]
struct SignBatchData {
    batch_results: Vec<SignBatchItem>,
}

/// One item of `batch_results`: a `signature`, or an `error`, or (when transit could not compute a signature
/// and has no message for it) neither. `key_version` is in OpenBao's answers (0 on an error) and newer
/// Vault's, not in older Vault's; `publickey` and `reference` are not read.
#[derive(Debug, Deserialize)]
struct SignBatchItem {
    #[serde(default)]
    signature: Option<String>,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    key_version: Option<u32>,
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

    /// Signs each of `tbs` with exactly `version` in one call, and returns the COSE signature bytes in the
    /// order of `tbs`: one round trip however many Sig_structures (a certificate has two).
    ///
    /// This is transit's documented batch form (OpenBao `website/content/api-docs/secret/transit.mdx`, "Sign
    /// data"; the same in Vault's): `batch_input` items `{"input": <base64>}`, every other parameter at the
    /// top level and shared by all items; the answer's `data.batch_results` "preserve the order of the batch
    /// input", each with its `signature` or its `error`. As the handler shows (OpenBao
    /// `builtin/logical/transit/path_sign_verify.go`, `pathSignWrite`), a batch answers 200 even when items
    /// fail, a refused version included: so every item is checked here, and any item that is not a signature
    /// of exactly `version` fails the whole call.
    pub async fn sign_all(
        &self,
        version: u32,
        alg: Algorithm,
        tbs: &[&[u8]],
    ) -> Result<Vec<Vec<u8>>, VaultError> {
        if tbs.is_empty() {
            // Transit refuses an empty batch ("missing batch input to process").
            return Ok(Vec::new());
        }
        let path = self.path("sign");
        let data: SignBatchData = self
            .client
            .write(&path, &sign_request(version, alg, tbs))
            .await?;
        batch_signatures(&path, version, alg, tbs.len(), data)
    }
}

/// The body of a batch `transit/sign` call.
///
/// `jws` marshaling gives raw r‖s for ECDSA (the COSE ES256 form) and base64url for both key families;
/// PS256 asks for PSS with a 32-byte salt, as COSE -37 requires.
fn sign_request(version: u32, alg: Algorithm, tbs: &[&[u8]]) -> Value {
    let batch: Vec<Value> = tbs
        .iter()
        .map(|one| json!({"input": base64::engine::general_purpose::STANDARD.encode(one)}))
        .collect();
    let mut body = json!({
        "batch_input": batch,
        "hash_algorithm": "sha2-256",
        "marshaling_algorithm": "jws",
        "key_version": version,
    });
    if alg == Algorithm::PS256 {
        body["signature_algorithm"] = json!("pss");
        body["salt_length"] = json!(32);
    }
    body
}

/// The signatures of a batch answer, one per item asked, each exactly `version`'s; anything else fails.
fn batch_signatures(
    path: &str,
    version: u32,
    alg: Algorithm,
    asked: usize,
    data: SignBatchData,
) -> Result<Vec<Vec<u8>>, VaultError> {
    if data.batch_results.len() != asked {
        return Err(VaultError::Decode {
            path: path.to_owned(),
            reason: format!(
                "asked for {asked} signatures, got {} batch results",
                data.batch_results.len()
            ),
        });
    }
    data.batch_results
        .into_iter()
        .enumerate()
        .map(|(index, item)| batch_signature(path, index, version, alg, item))
        .collect()
}

/// The COSE signature of batch item `index`. Its `error` is a refusal (e.g. a version below
/// `min_encryption_version`); a missing signature, another version or an undecodable signature is an answer
/// the API does not document.
fn batch_signature(
    path: &str,
    index: usize,
    version: u32,
    alg: Algorithm,
    item: SignBatchItem,
) -> Result<Vec<u8>, VaultError> {
    let decode_error = |reason: String| VaultError::Decode {
        path: path.to_owned(),
        reason: format!("batch item {index}: {reason}"),
    };
    if let Some(error) = item.error.filter(|e| !e.is_empty()) {
        return Err(VaultError::Refused {
            path: path.to_owned(),
            reason: format!("batch item {index}: {error}"),
        });
    }
    let Some(signature) = item.signature.filter(|s| !s.is_empty()) else {
        return Err(decode_error("neither a signature nor an error".into()));
    };
    if let Some(answered) = item.key_version.filter(|&v| v != version) {
        return Err(decode_error(format!(
            "asked for key version {version}, Vault answered key_version {answered}"
        )));
    }
    decode_signature(version, alg, &signature).map_err(decode_error)
}

/// The COSE signature bytes of a transit signature `vault:v<N>:<base64url>`, which must be `version`'s.
fn decode_signature(version: u32, alg: Algorithm, signature: &str) -> Result<Vec<u8>, String> {
    let (signed_by, encoded) = parse_signature(signature)
        .ok_or_else(|| "signature is not vault:v<N>:<base64url>".to_string())?;
    if signed_by != version {
        return Err(format!(
            "asked for key version {version}, Vault signed with {signed_by}"
        ));
    }
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|e| format!("signature is not base64url: {e}"))?;
    if alg == Algorithm::ES256 && signature.len() != ES256_SIGNATURE_LEN {
        return Err(format!(
            "an ES256 signature is {ES256_SIGNATURE_LEN} bytes (r||s), got {}",
            signature.len()
        ));
    }
    Ok(signature)
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

    const PATH: &str = "transit/sign/dsc";

    fn vault_signature(version: u32, bytes: &[u8]) -> String {
        format!(
            "vault:v{version}:{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
        )
    }

    /// `batch_results` as OpenBao answers them (`path_sign_verify.go`, `batchResponseSignItem`).
    fn signatures(asked: usize, results: Value) -> Result<Vec<Vec<u8>>, VaultError> {
        let data: SignBatchData =
            serde_json::from_value(json!({ "batch_results": results })).unwrap();
        batch_signatures(PATH, 3, Algorithm::ES256, asked, data)
    }

    #[test]
    fn a_batch_request_shares_every_parameter_and_lists_the_inputs() {
        let body = sign_request(3, Algorithm::PS256, &[b"one", b"two"]);
        assert_eq!(
            body,
            json!({
                "batch_input": [{"input": "b25l"}, {"input": "dHdv"}],
                "hash_algorithm": "sha2-256",
                "marshaling_algorithm": "jws",
                "key_version": 3,
                "signature_algorithm": "pss",
                "salt_length": 32,
            })
        );
        let es256 = sign_request(1, Algorithm::ES256, &[b"one"]);
        assert!(es256.get("signature_algorithm").is_none() && es256.get("input").is_none());
    }

    #[test]
    fn batch_results_give_the_signatures_in_order() {
        let (first, second) = ([1u8; 64], [2u8; 64]);
        let got = signatures(
            2,
            json!([
                {"signature": vault_signature(3, &first), "key_version": 3, "reference": ""},
                // Older Vault answers no key_version; the signature's prefix names the version.
                {"signature": vault_signature(3, &second)},
            ]),
        )
        .unwrap();
        assert_eq!(got, vec![first.to_vec(), second.to_vec()]);
    }

    #[test]
    fn a_batch_is_refused_unless_every_item_is_a_signature_of_the_asked_version() {
        let good = json!({"signature": vault_signature(3, &[1; 64]), "key_version": 3});
        let refused = |asked: usize, results: Value, expected: &str| {
            let err = signatures(asked, results).unwrap_err();
            assert!(err.to_string().contains(expected), "{err}");
            err
        };
        // Fewer or more results than inputs.
        refused(
            2,
            json!([good]),
            "asked for 2 signatures, got 1 batch results",
        );
        refused(1, json!([good, good]), "asked for 1 signatures, got 2");
        refused(1, json!([]), "got 0 batch results");
        // An item's error (a withdrawn version: transit answers 200 with the error in the item).
        let err = refused(
            2,
            json!([good, {"error": "requested version for signing is less than minimum encryption version", "key_version": 0}]),
            "batch item 1: requested version for signing is less than minimum",
        );
        assert!(matches!(err, VaultError::Refused { .. }), "{err:?}");
        // An error wins over a signature beside it.
        refused(
            1,
            json!([{"signature": vault_signature(3, &[1; 64]), "error": "no"}]),
            "batch item 0: no",
        );
        // Neither (transit: "signature could not be computed" is not serialised), or empty.
        refused(
            2,
            json!([good, {"key_version": 0, "reference": ""}]),
            "batch item 1: neither",
        );
        refused(1, json!([{"signature": ""}]), "batch item 0: neither");
        refused(1, json!([{"signature": null, "error": null}]), "neither");
        // Another version, in the prefix or in key_version.
        refused(
            1,
            json!([{"signature": vault_signature(2, &[1; 64])}]),
            "Vault signed with 2",
        );
        refused(
            1,
            json!([{"signature": vault_signature(3, &[1; 64]), "key_version": 4}]),
            "answered key_version 4",
        );
        // Not a transit signature, not base64url, not r||s.
        refused(
            1,
            json!([{"signature": "MEUCIQ=="}]),
            "not vault:v<N>:<base64url>",
        );
        refused(1, json!([{"signature": "vault:v3:***"}]), "not base64url");
        refused(
            1,
            json!([{"signature": vault_signature(3, &[1; 70])}]),
            "got 70",
        );
        // A single-input answer, not a batch.
        assert!(serde_json::from_value::<SignBatchData>(
            json!({"signature": vault_signature(3, &[1; 64])})
        )
        .is_err());
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
