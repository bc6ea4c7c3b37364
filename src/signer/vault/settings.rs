//! How to reach Vault/OpenBao and which transit key to use: the `--vault-*` settings shared by
//! `serve`, `issue --signer vault`, `reissue` and `keys`.

use std::path::PathBuf;
use std::time::Duration;

use super::{Auth, ClientConfig, KeyType, Secret, Transit, VaultClient, VaultConfig};
use crate::error::{Error, Result};

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        Ok(Secret::new(s))
    }
}

/// Defaults of [`VaultSettings`], shared by its flags and [`VaultSettings::with_token`].
const DEFAULT_ADDR: &str = "http://127.0.0.1:8200";
const DEFAULT_APPROLE_MOUNT: &str = "approle";
const DEFAULT_K8S_JWT_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
const DEFAULT_K8S_MOUNT: &str = "kubernetes";
const DEFAULT_TRANSIT_MOUNT: &str = "transit";
const DEFAULT_KEY_NAME: &str = "ddcc-dsc";
const DEFAULT_TIMEOUT_SECS: u64 = 10;

/// How to reach Vault/OpenBao and which transit key to use. Auth: AppRole when a role id is
/// given, else Kubernetes when a role is given, else the token.
#[derive(Debug, Clone, clap::Args)]
pub struct VaultSettings {
    /// Vault/OpenBao address (no /v1).
    #[arg(
        global = true,
        long = "vault-addr",
        env = "VAULT_ADDR",
        default_value = DEFAULT_ADDR
    )]
    pub addr: String,
    /// Static token.
    #[arg(
        global = true,
        long = "vault-token",
        env = "VAULT_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<Secret>,
    /// AppRole role id.
    #[arg(global = true, long = "vault-role-id", env = "VAULT_ROLE_ID")]
    pub role_id: Option<String>,
    /// AppRole secret id.
    #[arg(
        global = true,
        long = "vault-secret-id",
        env = "VAULT_SECRET_ID",
        hide_env_values = true
    )]
    pub secret_id: Option<Secret>,
    #[arg(
        global = true,
        long = "vault-approle-mount",
        env = "VAULT_APPROLE_MOUNT",
        default_value = DEFAULT_APPROLE_MOUNT
    )]
    pub approle_mount: String,
    /// Kubernetes auth role.
    #[arg(global = true, long = "vault-k8s-role", env = "VAULT_K8S_ROLE")]
    pub k8s_role: Option<String>,
    /// The service-account JWT presented at Kubernetes login.
    #[arg(
        global = true,
        long = "vault-k8s-jwt-path",
        env = "VAULT_K8S_JWT_PATH",
        default_value = DEFAULT_K8S_JWT_PATH
    )]
    pub k8s_jwt_path: PathBuf,
    #[arg(
        global = true,
        long = "vault-k8s-mount",
        env = "VAULT_K8S_MOUNT",
        default_value = DEFAULT_K8S_MOUNT
    )]
    pub k8s_mount: String,
    /// Namespace (`X-Vault-Namespace`).
    #[arg(global = true, long = "vault-namespace", env = "VAULT_NAMESPACE")]
    pub namespace: Option<String>,
    #[arg(
        global = true,
        long = "vault-transit-mount",
        env = "VAULT_TRANSIT_MOUNT",
        default_value = DEFAULT_TRANSIT_MOUNT
    )]
    pub transit_mount: String,
    /// Transit key holding the DSC key versions.
    #[arg(
        global = true,
        long = "vault-key",
        env = "VAULT_TRANSIT_KEY",
        default_value = DEFAULT_KEY_NAME
    )]
    pub key_name: String,
    /// Key type for `keys init`.
    #[arg(
        global = true,
        long = "vault-key-type",
        env = "VAULT_KEY_TYPE",
        value_enum,
        default_value = "ecdsa-p256"
    )]
    pub key_type: KeyType,
    /// Per-request timeout, seconds.
    #[arg(
        global = true,
        long = "vault-timeout",
        env = "VAULT_TIMEOUT",
        default_value_t = DEFAULT_TIMEOUT_SECS
    )]
    pub timeout_secs: u64,
}

impl VaultSettings {
    /// Settings for `addr` with a static token and every other value at its default.
    pub fn with_token(addr: impl Into<String>, token: impl Into<String>) -> Self {
        VaultSettings {
            addr: addr.into(),
            token: Some(Secret::new(token)),
            role_id: None,
            secret_id: None,
            approle_mount: DEFAULT_APPROLE_MOUNT.into(),
            k8s_role: None,
            k8s_jwt_path: DEFAULT_K8S_JWT_PATH.into(),
            k8s_mount: DEFAULT_K8S_MOUNT.into(),
            namespace: None,
            transit_mount: DEFAULT_TRANSIT_MOUNT.into(),
            key_name: DEFAULT_KEY_NAME.into(),
            key_type: KeyType::EcdsaP256,
            timeout_secs: DEFAULT_TIMEOUT_SECS,
        }
    }

    pub fn auth(&self) -> Result<Auth> {
        match (&self.role_id, &self.secret_id, &self.k8s_role, &self.token) {
            (Some(role_id), Some(secret_id), _, _) => Ok(Auth::AppRole {
                mount: self.approle_mount.clone(),
                role_id: role_id.clone(),
                secret_id: secret_id.clone(),
            }),
            (Some(_), None, _, _) => Err(Error::Config(
                "AppRole needs VAULT_SECRET_ID as well as VAULT_ROLE_ID".into(),
            )),
            (None, _, Some(role), _) => Ok(Auth::Kubernetes {
                mount: self.k8s_mount.clone(),
                role: role.clone(),
                jwt_path: self.k8s_jwt_path.clone(),
            }),
            (None, _, None, Some(token)) => Ok(Auth::Token(token.clone())),
            (None, _, None, None) => Err(Error::Config(
                "no Vault credentials: set VAULT_TOKEN, VAULT_ROLE_ID + VAULT_SECRET_ID, or --vault-k8s-role".into(),
            )),
        }
    }

    pub fn client_config(&self) -> Result<ClientConfig> {
        let mut config = ClientConfig::new(&self.addr, self.auth()?);
        config.namespace = self.namespace.clone();
        config.request_timeout = Duration::from_secs(self.timeout_secs.max(1));
        Ok(config)
    }

    /// The configuration of a [`crate::signer::vault::VaultSigner`].
    pub fn signer_config(&self) -> Result<VaultConfig> {
        Ok(VaultConfig {
            client: self.client_config()?,
            transit_mount: self.transit_mount.clone(),
            key_name: self.key_name.clone(),
            refresh_interval: Duration::from_secs(300),
        })
    }

    /// Connects and authenticates.
    pub async fn transit(&self) -> Result<Transit> {
        let client = VaultClient::connect(&self.client_config()?).await?;
        Ok(Transit::new(
            std::sync::Arc::new(client),
            &self.transit_mount,
            &self.key_name,
        ))
    }
}
