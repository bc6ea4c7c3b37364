//! The HTTP side of Vault/OpenBao: one pooled client, authentication, token renewal and retries.
//!
//! Every call goes through [`VaultClient::send`], which keeps the token fresh (renewal at ~2/3 of its
//! TTL, a new login when renewal is refused), retries connection errors and 5xx with jittered
//! back-off (never 4xx: those are answers, not outages), and logs in once more on a 403 before
//! giving up. The token never reaches a log line or a `Debug` output.

use std::path::PathBuf;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;

use crate::error::Error;

/// A credential: shown as `***` by `Debug` so it cannot leak through logs or error reports.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }
    fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

/// How the client obtains its token.
#[derive(Debug, Clone)]
pub enum Auth {
    /// A token issued out of band (`VAULT_TOKEN`). Renewed when renewable; never re-created.
    Token(Secret),
    /// `POST auth/<mount>/login {role_id, secret_id}`.
    AppRole {
        mount: String,
        role_id: String,
        secret_id: Secret,
    },
    /// `POST auth/<mount>/login {role, jwt}` with the pod's service-account token, re-read at each
    /// login because Kubernetes rotates it.
    Kubernetes {
        mount: String,
        role: String,
        jwt_path: PathBuf,
    },
}

impl Auth {
    fn can_login(&self) -> bool {
        !matches!(self, Auth::Token(_))
    }
}

/// Where Vault is and how to talk to it.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Base address, e.g. `http://127.0.0.1:8200` (no `/v1`).
    pub addr: String,
    /// Vault Enterprise / OpenBao namespace (`X-Vault-Namespace`).
    pub namespace: Option<String>,
    pub auth: Auth,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Retries after the first attempt, for connection errors and 5xx only.
    pub max_retries: u32,
}

impl ClientConfig {
    pub fn new(addr: impl Into<String>, auth: Auth) -> Self {
        ClientConfig {
            addr: addr.into(),
            namespace: None,
            auth,
            connect_timeout: Duration::from_secs(3),
            request_timeout: Duration::from_secs(10),
            max_retries: 2,
        }
    }
}

/// What went wrong talking to Vault, before it is mapped onto [`Error`].
#[derive(Debug)]
pub enum VaultError {
    /// No answer: connection refused or reset, timeout, TLS failure.
    Transport { path: String, reason: String },
    /// Vault answered with an error status and its `errors` list.
    Status {
        path: String,
        status: u16,
        errors: Vec<String>,
    },
    /// Vault answered 2xx with something the API does not document.
    Decode { path: String, reason: String },
    /// Vault answered 2xx but refused part of the request: an item of a batch, with its `error`.
    Refused { path: String, reason: String },
    /// Local authentication material could not be read (the Kubernetes JWT file).
    Credentials(String),
}

impl VaultError {
    pub fn status(&self) -> Option<u16> {
        match self {
            VaultError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
    pub fn is_not_found(&self) -> bool {
        self.status() == Some(404)
    }
    pub fn is_permission_denied(&self) -> bool {
        matches!(self.status(), Some(401 | 403))
    }
    /// Worth another try: no answer, or a server-side failure (including "Vault is sealed").
    fn is_retryable(&self) -> bool {
        match self {
            VaultError::Transport { .. } => true,
            VaultError::Status { status, .. } => *status >= 500 || *status == 429,
            VaultError::Decode { .. } | VaultError::Refused { .. } | VaultError::Credentials(_) => {
                false
            }
        }
    }
    fn decode(path: &str, reason: impl std::fmt::Display) -> Self {
        VaultError::Decode {
            path: path.to_owned(),
            reason: reason.to_string(),
        }
    }
    /// True when Vault said the path already exists (mounting twice).
    pub fn is_already_in_use(&self) -> bool {
        match self {
            VaultError::Status { status, errors, .. } => {
                *status == 400 && errors.iter().any(|e| e.contains("already in use"))
            }
            _ => false,
        }
    }
}

impl std::fmt::Display for VaultError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            VaultError::Transport { path, reason } => write!(f, "{path}: no answer ({reason})"),
            VaultError::Status {
                path,
                status,
                errors,
            } => {
                let said = errors
                    .iter()
                    .map(|e| e.trim())
                    .collect::<Vec<_>>()
                    .join("; ");
                let said = if said.is_empty() { "no details" } else { &said };
                write!(f, "{path}: HTTP {status}: {said}")?;
                if matches!(status, 401 | 403) {
                    f.write_str(" (the Vault token or its policy does not allow this)")?;
                }
                Ok(())
            }
            VaultError::Decode { path, reason } => {
                write!(f, "{path}: unexpected answer ({reason})")
            }
            VaultError::Refused { path, reason } => write!(f, "{path}: refused ({reason})"),
            VaultError::Credentials(reason) => f.write_str(reason),
        }
    }
}

impl From<VaultError> for Error {
    /// Outages are `Unavailable` (retry later); refusals and missing objects are `Config` (an
    /// operator must act: policy, key name, mount).
    fn from(e: VaultError) -> Self {
        let reason = e.to_string();
        match &e {
            VaultError::Transport { .. } | VaultError::Decode { .. } => Error::Unavailable {
                service: "Vault",
                reason,
            },
            VaultError::Status { .. } if e.is_retryable() => Error::Unavailable {
                service: "Vault",
                reason,
            },
            VaultError::Status { .. } | VaultError::Refused { .. } | VaultError::Credentials(_) => {
                Error::Config(format!("Vault: {reason}"))
            }
        }
    }
}

/// The parts of a Vault answer this crate reads: `data` for secrets engines, `auth` for logins.
#[derive(Debug, Default, Deserialize)]
struct Envelope {
    #[serde(default)]
    data: Option<Value>,
    #[serde(default)]
    auth: Option<AuthBlock>,
}

#[derive(Debug, Deserialize)]
struct AuthBlock {
    client_token: String,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Debug, Deserialize)]
struct LookupSelf {
    #[serde(default)]
    ttl: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Debug, Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<String>,
}

/// The token in use and when to renew it.
#[derive(Debug)]
struct TokenState {
    token: Secret,
    /// Bumped at each new token, so that concurrent 403s cause one login, not many.
    generation: u64,
    /// The TTL granted at login; a renewal granting less than half of it means the max TTL is near.
    granted: Duration,
    renewable: bool,
    renew_at: Option<Instant>,
}

impl TokenState {
    fn new(token: String, generation: u64, ttl_secs: u64, renewable: bool) -> Self {
        let granted = Duration::from_secs(ttl_secs);
        TokenState {
            token: Secret(token),
            generation,
            granted,
            renewable,
            renew_at: (ttl_secs > 0).then(|| Instant::now() + granted * 2 / 3),
        }
    }
}

/// A Vault/OpenBao client: cheap to share (`Arc`), safe to use from many tasks.
#[derive(Debug)]
pub struct VaultClient {
    http: crate::outbound::PerThreadClient,
    /// `<addr>/v1/`
    base: String,
    namespace: Option<String>,
    auth: Auth,
    max_retries: u32,
    token: RwLock<Arc<TokenState>>,
    /// Serialises renewals and logins.
    auth_lock: tokio::sync::Mutex<()>,
}

impl VaultClient {
    /// Builds the client and authenticates (login, or a lookup of the static token's TTL).
    pub async fn connect(config: &ClientConfig) -> Result<Self, VaultError> {
        let (connect_timeout, request_timeout) = (config.connect_timeout, config.request_timeout);
        let http = crate::outbound::PerThreadClient::new(move || {
            reqwest::Client::builder()
                .connect_timeout(connect_timeout)
                .timeout(request_timeout)
                .pool_idle_timeout(Duration::from_secs(90))
                .tcp_keepalive(Duration::from_secs(60))
        })
        .map_err(|e| VaultError::Credentials(format!("cannot build the HTTP client: {e}")))?;
        let initial = match &config.auth {
            Auth::Token(t) => t.clone(),
            // Replaced by the login below.
            Auth::AppRole { .. } | Auth::Kubernetes { .. } => Secret(String::new()),
        };
        let client = VaultClient {
            http,
            base: format!("{}/v1/", config.addr.trim_end_matches('/')),
            namespace: config.namespace.clone(),
            auth: config.auth.clone(),
            max_retries: config.max_retries,
            token: RwLock::new(Arc::new(TokenState::new(String::new(), 0, 0, false))),
            auth_lock: tokio::sync::Mutex::new(()),
        };
        if config.auth.can_login() {
            client.login(0).await?;
        } else {
            client.adopt_static_token(initial).await?;
        }
        Ok(client)
    }

    /// `GET <path>` → `data`.
    pub async fn read<T: DeserializeOwned>(&self, path: &str) -> Result<T, VaultError> {
        let envelope = self.send(Method::GET, path, None).await?;
        data_of(path, envelope)
    }

    /// `POST <path>` → `data`.
    pub async fn write<T: DeserializeOwned>(
        &self,
        path: &str,
        body: &Value,
    ) -> Result<T, VaultError> {
        let envelope = self.send(Method::POST, path, Some(body)).await?;
        data_of(path, envelope)
    }

    /// `POST <path>` where only success matters (Vault answers 204 or 200 with a body).
    pub async fn write_unit(&self, path: &str, body: &Value) -> Result<(), VaultError> {
        self.send(Method::POST, path, Some(body)).await.map(drop)
    }

    /// One authenticated call: fresh token, retries, and one new login on a 403.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<Envelope, VaultError> {
        self.renew_if_due().await?;
        let state = self.token_state();
        let first = self
            .send_with_retries(method.clone(), path, body, Some(&state.token))
            .await;
        match first {
            Err(e) if e.is_permission_denied() && self.auth.can_login() => {
                // An expired or revoked token also answers 403: log in once more, then give up.
                tracing::info!(path, "Vault denied the request; logging in again");
                self.login(state.generation).await?;
                let state = self.token_state();
                self.send_with_retries(method, path, body, Some(&state.token))
                    .await
            }
            other => other,
        }
    }

    async fn send_with_retries(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&Secret>,
    ) -> Result<Envelope, VaultError> {
        let mut attempt = 0;
        loop {
            match self.send_once(method.clone(), path, body, token).await {
                Err(e) if e.is_retryable() && attempt < self.max_retries => {
                    attempt += 1;
                    let delay = backoff(attempt);
                    tracing::debug!(path, attempt, ?delay, error = %e, "retrying Vault call");
                    tokio::time::sleep(delay).await;
                }
                result => return result,
            }
        }
    }

    async fn send_once(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        token: Option<&Secret>,
    ) -> Result<Envelope, VaultError> {
        let method_name = method.clone();
        let mut request = self
            .http
            .local()
            .request(method, format!("{}{path}", self.base));
        if let Some(token) = token.filter(|t| !t.expose().is_empty()) {
            request = request.header("X-Vault-Token", token.expose());
        }
        if let Some(ns) = &self.namespace {
            request = request.header("X-Vault-Namespace", ns);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |e: reqwest::Error| VaultError::Transport {
            path: path.to_owned(),
            // Without the URL: it is ours, and the reason is what an operator needs.
            reason: e.without_url().to_string(),
        };
        let response = crate::telemetry::send(
            crate::telemetry::Dependency::Vault,
            method_name.as_str(),
            path,
            request,
        )
        .await
        .map_err(transport)?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(transport)?;
        if status.is_success() {
            if bytes.is_empty() {
                return Ok(Envelope::default());
            }
            return serde_json::from_slice(&bytes).map_err(|e| VaultError::decode(path, e));
        }
        let errors = match serde_json::from_slice::<ErrorBody>(&bytes) {
            Ok(body) => body.errors,
            Err(_) => vec![String::from_utf8_lossy(&bytes).chars().take(200).collect()],
        };
        Err(VaultError::Status {
            path: path.to_owned(),
            status: status.as_u16(),
            errors,
        })
    }

    fn token_state(&self) -> Arc<TokenState> {
        match self.token.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    fn set_token_state(&self, state: TokenState) {
        let state = Arc::new(state);
        match self.token.write() {
            Ok(mut guard) => *guard = state,
            Err(poisoned) => *poisoned.into_inner() = state,
        }
    }

    /// Learns the static token's TTL so that a renewable token is renewed in time.
    async fn adopt_static_token(&self, token: Secret) -> Result<(), VaultError> {
        let path = "auth/token/lookup-self";
        let envelope = self
            .send_with_retries(Method::GET, path, None, Some(&token))
            .await;
        let (ttl, renewable) = match envelope.and_then(|e| data_of::<LookupSelf>(path, e)) {
            Ok(info) => (info.ttl, info.renewable),
            // A policy without lookup-self still signs; such a token is simply never renewed.
            Err(e) if e.is_permission_denied() => (0, false),
            Err(e) => return Err(e),
        };
        self.set_token_state(TokenState::new(token.0, 1, ttl, renewable));
        Ok(())
    }

    /// Renews the token once ~2/3 of its TTL has passed; logs in again when renewal is refused,
    /// the token is not renewable, or the max TTL is close.
    async fn renew_if_due(&self) -> Result<(), VaultError> {
        let due = |s: &TokenState| s.renew_at.is_some_and(|at| Instant::now() >= at);
        if !due(&self.token_state()) {
            return Ok(());
        }
        let _guard = self.auth_lock.lock().await;
        let state = self.token_state();
        if !due(&state) {
            return Ok(()); // another task renewed it while we waited
        }
        if state.renewable {
            let path = "auth/token/renew-self";
            let renewed = self
                .send_with_retries(
                    Method::POST,
                    path,
                    Some(&Value::Object(Default::default())),
                    Some(&state.token),
                )
                .await;
            match renewed.map(|e| e.auth) {
                Ok(Some(auth)) if Duration::from_secs(auth.lease_duration) * 2 >= state.granted => {
                    tracing::debug!(ttl = auth.lease_duration, "renewed the Vault token");
                    self.set_token_state(TokenState {
                        granted: state.granted,
                        ..TokenState::new(
                            auth.client_token,
                            state.generation + 1,
                            auth.lease_duration,
                            auth.renewable,
                        )
                    });
                    return Ok(());
                }
                Ok(_) => tracing::info!("the Vault token is near its max TTL"),
                Err(e) => tracing::info!(error = %e, "renewing the Vault token failed"),
            }
        }
        if self.auth.can_login() {
            self.login_locked().await
        } else {
            // A static token cannot be replaced: keep it until Vault refuses it.
            tracing::warn!("the static Vault token cannot be renewed; it will expire");
            self.set_token_state(TokenState {
                renew_at: None,
                ..TokenState::new(state.token.0.clone(), state.generation, 0, false)
            });
            Ok(())
        }
    }

    /// Logs in unless another task already did since `seen_generation`.
    async fn login(&self, seen_generation: u64) -> Result<(), VaultError> {
        let _guard = self.auth_lock.lock().await;
        if self.token_state().generation != seen_generation {
            return Ok(());
        }
        self.login_locked().await
    }

    async fn login_locked(&self) -> Result<(), VaultError> {
        let (mount, body) = match &self.auth {
            Auth::Token(_) => return Ok(()),
            Auth::AppRole {
                mount,
                role_id,
                secret_id,
            } => (
                mount,
                serde_json::json!({"role_id": role_id, "secret_id": secret_id.expose()}),
            ),
            Auth::Kubernetes {
                mount,
                role,
                jwt_path,
            } => {
                let jwt = tokio::fs::read_to_string(jwt_path).await.map_err(|e| {
                    VaultError::Credentials(format!(
                        "cannot read the Kubernetes service-account token {}: {e}",
                        jwt_path.display()
                    ))
                })?;
                (mount, serde_json::json!({"role": role, "jwt": jwt.trim()}))
            }
        };
        let path = format!("auth/{}/login", mount.trim_matches('/'));
        let envelope = self
            .send_with_retries(Method::POST, &path, Some(&body), None)
            .await?;
        let auth = envelope
            .auth
            .ok_or_else(|| VaultError::decode(&path, "no auth block in the login answer"))?;
        let generation = self.token_state().generation + 1;
        tracing::info!(
            path = %path,
            ttl = auth.lease_duration,
            renewable = auth.renewable,
            "logged in to Vault"
        );
        self.set_token_state(TokenState::new(
            auth.client_token,
            generation,
            auth.lease_duration,
            auth.renewable,
        ));
        Ok(())
    }
}

fn data_of<T: DeserializeOwned>(path: &str, envelope: Envelope) -> Result<T, VaultError> {
    let data = envelope
        .data
        .ok_or_else(|| VaultError::decode(path, "no data in the answer"))?;
    serde_json::from_value(data).map_err(|e| VaultError::decode(path, e))
}

/// Exponential back-off with jitter: attempt n waits 50–100% of 100 ms × 2^(n-1).
fn backoff(attempt: u32) -> Duration {
    let ceiling = 100u64.saturating_mul(1 << attempt.saturating_sub(1).min(6));
    let millis = rand::thread_rng().gen_range(ceiling / 2..=ceiling);
    Duration::from_millis(millis)
}
