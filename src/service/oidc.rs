//! OIDC bearer tokens: JWT access tokens of an OpenID Connect provider such as Keycloak.
//!
//! The provider's signing keys come from its JWKS, found through OpenID Connect Discovery
//! (`<issuer>/.well-known/openid-configuration` → `jwks_uri`). [`OidcVerifier::check`] loads them at start-up
//! and stops the service when the discovery document contradicts the settings (another `issuer`: a trailing
//! slash, `localhost` for `127.0.0.1`; no such realm), naming `DDCC_OIDC_ISSUER`; a provider that does not
//! answer yet is only a warning.
//!
//! A request never waits for a provider that is merely slow while keys are known: keys older than
//! [`OidcSettings::max_age`] keep verifying and are refreshed in the background. A token whose `kid` is not
//! cached (the provider rotated its keys) waits for one refresh, shared by every request that needs it. Every
//! refresh, whatever caused it (start-up, age, unknown `kid`), counts against [`OidcSettings::min_refresh`],
//! and after a failure the next one waits longer (doubling, up to [`MAX_BACKOFF`]): a stream of tokens with
//! made-up `kid`s, or a provider that hangs, costs the provider one request per interval and each caller at
//! most one refresh (bounded by the outbound timeout). Without any key, a request during the back-off is
//! answered 503 at once.
//!
//! Only RS256 and ES256 are accepted, and the algorithm must match the key's type (`RSA` → RS256,
//! `EC`/P-256 → ES256): `alg: none` and HS* are refused, so a token "signed" with the public key as an HMAC
//! secret never verifies. Then `iss` must equal the configured issuer exactly, `aud` must contain the
//! configured audience, `exp` and `nbf` hold with [`LEEWAY`], `typ` (when present, as in Keycloak's tokens)
//! must be `Bearer`, so an ID token is no access token, and the required role must be granted, in the
//! `scope` claim or in Keycloak's `realm_access.roles` / `resource_access.<audience>.roles`.
//!
//! `jsonwebtoken` does the JWS verification and the registered-claim checks: maintained, widely used, and on
//! `ring`, the crypto library this crate already builds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;
use futures_util::future::{BoxFuture, FutureExt as _, Shared};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::error::Error;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// Default age after which cached keys are refreshed (in the background).
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// The longest wait between two refreshes after failures (unless `min_refresh` is longer).
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

const SERVICE: &str = "OIDC provider";
/// What callers learn of a provider failure: the details (URLs, client errors) are for the log only.
const UNAVAILABLE: &str = "its signing keys could not be loaded (the service log says why)";

#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL, exactly as in its tokens' `iss` (Keycloak: `https://host/realms/<realm>`).
    pub issuer: String,
    /// The value `aud` must contain (the client id of this service at the provider).
    pub audience: String,
    /// A role or scope the token must grant; `None`: any valid token.
    pub required_role: Option<String>,
    /// Least time between two key refreshes, whatever their cause (`DDCC_OIDC_JWKS_MIN_REFRESH`).
    pub min_refresh: Duration,
    /// Age after which the cached keys are refreshed in the background (`DDCC_OIDC_JWKS_MAX_AGE`).
    pub max_age: Duration,
}

/// Who a token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenIdentity {
    /// `sub`.
    pub subject: Option<String>,
    /// `azp` (Keycloak) or `client_id`.
    pub client: Option<String>,
}

/// Why a token was not accepted.
#[derive(Debug)]
pub enum TokenRefusal {
    /// Not a valid token (401, `error="invalid_token"`).
    Invalid(String),
    /// A valid token without the required role (403, `error="insufficient_scope"`), and whom it speaks for.
    Forbidden(String, TokenIdentity),
    /// The provider's keys could not be had: 503 when it failed, 500 when the settings cannot work.
    Unavailable(Error),
}

struct VerificationKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    /// When these keys were fetched; `None`: never.
    fetched: Option<Instant>,
}

/// How a refresh ended.
#[derive(Debug, Clone)]
enum Refreshed {
    Loaded,
    /// The provider did not answer, or answered an error: retry later.
    Failed,
    /// The provider answered, and its answer contradicts the settings (the message names the setting).
    Misconfigured(Arc<str>),
}

type RefreshFuture = Shared<BoxFuture<'static, Refreshed>>;

#[derive(Default)]
struct RefreshState {
    /// The refresh under way, which every caller that needs it awaits.
    in_flight: Option<RefreshFuture>,
    /// When the last refresh started.
    last_attempt: Option<Instant>,
    /// Failed refreshes since the last success.
    failures: u32,
    /// How the last finished refresh ended.
    last: Option<Refreshed>,
}

impl RefreshState {
    /// When the next refresh may start.
    fn next_allowed(&self, min_refresh: Duration) -> Option<Instant> {
        let last = self.last_attempt?;
        let wait = match self.failures {
            0 => min_refresh,
            n => {
                let doubled = min_refresh.saturating_mul(1 << (n - 1).min(16));
                doubled.min(MAX_BACKOFF.max(min_refresh))
            }
        };
        Some(last + wait)
    }
}

struct Inner {
    settings: OidcSettings,
    http: reqwest::Client,
    timeout: Duration,
    keys: RwLock<Arc<KeySet>>,
    refresh: Mutex<RefreshState>,
}

/// Verifies bearer tokens against the provider's keys. Cheap to share (`Arc` inside).
pub struct OidcVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.inner.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    /// `timeout` bounds each refresh as a whole (discovery and JWKS): `DDCC_OUTBOUND_TIMEOUT`.
    pub fn new(settings: OidcSettings, timeout: Duration) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("OIDC HTTP client: {e}")))?;
        Ok(OidcVerifier {
            inner: Arc::new(Inner {
                settings,
                http,
                timeout,
                keys: RwLock::new(Arc::new(KeySet::default())),
                refresh: Mutex::new(RefreshState::default()),
            }),
        })
    }

    pub fn required_role(&self) -> Option<&str> {
        self.inner.settings.required_role.as_deref()
    }

    /// Start-up: loads the keys once. A discovery document that contradicts the settings is a configuration
    /// error naming the setting; a provider that does not answer is logged, and requests retry it later.
    pub async fn check(&self) -> crate::Result<()> {
        let issuer = &self.inner.settings.issuer;
        let outcome = match self.inner.start_refresh() {
            Some(refresh) => refresh.await,
            None => Refreshed::Failed,
        };
        match outcome {
            Refreshed::Loaded => {
                if self.inner.snapshot().keys.is_empty() {
                    tracing::warn!(
                        issuer = %issuer,
                        "the OIDC provider publishes no RS256 or ES256 signing key: every token will be refused"
                    );
                }
                Ok(())
            }
            Refreshed::Misconfigured(message) => Err(Error::Config(message.to_string())),
            Refreshed::Failed => {
                tracing::warn!(
                    issuer = %issuer,
                    "the OIDC provider did not answer at start-up; tokens are answered 503 until it does"
                );
                Ok(())
            }
        }
    }

    /// Verifies a bearer token and returns whom it speaks for.
    pub async fn verify(&self, token: &str) -> Result<TokenIdentity, TokenRefusal> {
        let settings = &self.inner.settings;
        let invalid = |m: String| TokenRefusal::Invalid(m);
        // `decode_header` knows no `none`: such a token fails here.
        let header = jsonwebtoken::decode_header(token)
            .map_err(|e| invalid(format!("not an acceptable JWT: {e}")))?;
        if !matches!(header.alg, Algorithm::RS256 | Algorithm::ES256) {
            return Err(invalid(format!(
                "token algorithm {:?} is not accepted (RS256, ES256)",
                header.alg
            )));
        }
        let kid = header
            .kid
            .ok_or_else(|| invalid("the token has no kid".into()))?;
        let key =
            self.inner.key(&kid).await?.ok_or_else(|| {
                invalid("the token's kid is not among the provider's keys".into())
            })?;
        if key.algorithm != header.alg {
            return Err(invalid(format!(
                "token algorithm {:?} does not match the key's ({:?})",
                header.alg, key.algorithm
            )));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&settings.issuer]);
        validation.set_audience(&[&settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = match jsonwebtoken::decode::<Value>(token, &key.key, &validation) {
            Ok(data) => data.claims,
            Err(e) => return Err(invalid(self.explain(token, e.kind()))),
        };
        // Keycloak marks its tokens: `Bearer` (access), `ID`, `Refresh`, `Logout`…; RFC 9068 access tokens
        // carry no `typ` claim.
        if let Some(typ) = claims.get("typ").and_then(Value::as_str) {
            if !typ.eq_ignore_ascii_case("bearer") {
                return Err(invalid(format!(
                    "the token is not an access token (typ {typ:?}, not \"Bearer\")"
                )));
            }
        }
        let identity = TokenIdentity {
            subject: string_claim(&claims, "sub"),
            client: string_claim(&claims, "azp").or_else(|| string_claim(&claims, "client_id")),
        };
        if let Some(role) = &settings.required_role {
            if !grants(&claims, role, &settings.audience) {
                return Err(TokenRefusal::Forbidden(
                    format!(
                        "the token does not grant {role:?} (scope, realm_access.roles or resource_access.{}.roles)",
                        settings.audience
                    ),
                    identity,
                ));
            }
        }
        Ok(identity)
    }

    /// Why a correctly shaped token was refused, in words an operator can act on. The signature has been
    /// verified before any claim is checked, so quoting the token's own claims here is safe.
    fn explain(&self, token: &str, kind: &ErrorKind) -> String {
        let settings = &self.inner.settings;
        let claims = unverified_claims(token);
        let claim = |name: &str| claims.get(name).cloned().unwrap_or(Value::Null);
        let client = string_claim(&claims, "azp")
            .or_else(|| string_claim(&claims, "client_id"))
            .unwrap_or_else(|| "?".into());
        match kind {
            ErrorKind::InvalidAudience => {
                let message = format!(
                    "the token's aud {} does not contain DDCC_OIDC_AUDIENCE {:?}: the provider must put it there \
                     (Keycloak: an audience mapper on client {client:?} with Included Client Audience {:?}; \
                     see the README, \"Keycloak\")",
                    claim("aud"),
                    settings.audience,
                    settings.audience
                );
                tracing::warn!(client = %client, "OIDC token refused: {message}");
                message
            }
            ErrorKind::InvalidIssuer => {
                let message = format!(
                    "the token's iss {} is not DDCC_OIDC_ISSUER {:?}",
                    claim("iss"),
                    settings.issuer
                );
                tracing::warn!(client = %client, "OIDC token refused: {message}");
                message
            }
            ErrorKind::ExpiredSignature => "the token has expired (exp)".into(),
            ErrorKind::ImmatureSignature => "the token is not valid yet (nbf)".into(),
            ErrorKind::InvalidSignature => "the token's signature does not verify".into(),
            ErrorKind::MissingRequiredClaim(name) => format!("the token has no {name:?} claim"),
            other => format!("token rejected: {other:?}"),
        }
    }
}

impl Inner {
    /// The key for `kid`: from the cache (refreshed in the background when old), or after a refresh when the
    /// `kid` is unknown and a refresh is allowed.
    async fn key(
        self: &Arc<Self>,
        kid: &str,
    ) -> Result<Option<Arc<VerificationKey>>, TokenRefusal> {
        let current = self.snapshot();
        if let Some(fetched) = current.fetched {
            if let Some(key) = current.keys.get(kid) {
                if fetched.elapsed() >= self.settings.max_age {
                    // Not awaited: this request verifies with the cached key.
                    let _ = self.start_refresh();
                }
                return Ok(Some(key.clone()));
            }
            // Perhaps a rotation: wait for one refresh, unless one was made too recently.
            return match self.start_refresh() {
                Some(refresh) => {
                    refresh.await;
                    Ok(self.snapshot().keys.get(kid).cloned())
                }
                None => {
                    tracing::debug!("unknown token kid; JWKS refresh rate-limited");
                    Ok(None)
                }
            };
        }
        // No keys yet: nothing to verify with until a refresh succeeds.
        let outcome = match self.start_refresh() {
            Some(refresh) => refresh.await,
            None => self.last_outcome().unwrap_or(Refreshed::Failed),
        };
        match outcome {
            Refreshed::Loaded => Ok(self.snapshot().keys.get(kid).cloned()),
            Refreshed::Failed => Err(TokenRefusal::Unavailable(Error::Unavailable {
                service: SERVICE,
                reason: UNAVAILABLE.into(),
            })),
            Refreshed::Misconfigured(message) => Err(TokenRefusal::Unavailable(Error::Config(
                message.to_string(),
            ))),
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn state(&self) -> std::sync::MutexGuard<'_, RefreshState> {
        self.refresh.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn last_outcome(&self) -> Option<Refreshed> {
        self.state().last.clone()
    }

    /// The refresh under way, or a new one when the last started long enough ago; `None` while refreshes
    /// are rate-limited or backing off. The refresh runs as its own task, so it completes (and updates the
    /// cache) whether or not anyone awaits it.
    fn start_refresh(self: &Arc<Self>) -> Option<RefreshFuture> {
        let mut state = self.state();
        if let Some(refresh) = &state.in_flight {
            return Some(refresh.clone());
        }
        if state
            .next_allowed(self.settings.min_refresh)
            .is_some_and(|at| Instant::now() < at)
        {
            return None;
        }
        state.last_attempt = Some(Instant::now());
        let inner = self.clone();
        let task = tokio::spawn(async move { inner.refresh_now().await });
        let refresh = async move { task.await.unwrap_or(Refreshed::Failed) }
            .boxed()
            .shared();
        state.in_flight = Some(refresh.clone());
        Some(refresh)
    }

    /// One refresh (bounded by the outbound timeout as a whole); records its outcome.
    async fn refresh_now(&self) -> Refreshed {
        let fetched = match tokio::time::timeout(self.timeout, self.fetch()).await {
            Ok(result) => result,
            Err(_) => Err(Fault::Transient(format!(
                "no answer within {:?} (DDCC_OUTBOUND_TIMEOUT)",
                self.timeout
            ))),
        };
        let outcome = match fetched {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "OIDC signing keys loaded");
                let set = Arc::new(KeySet {
                    keys,
                    fetched: Some(Instant::now()),
                });
                match self.keys.write() {
                    Ok(mut guard) => *guard = set,
                    Err(poisoned) => *poisoned.into_inner() = set,
                }
                Refreshed::Loaded
            }
            Err(Fault::Transient(reason)) => {
                tracing::warn!(issuer = %self.settings.issuer, error = %reason, "OIDC key refresh failed; cached keys (if any) stay in use");
                Refreshed::Failed
            }
            Err(Fault::Misconfigured(message)) => {
                tracing::error!("OIDC settings do not match the provider: {message}");
                Refreshed::Misconfigured(message.into())
            }
        };
        let mut state = self.state();
        state.in_flight = None;
        state.failures = match outcome {
            Refreshed::Loaded => 0,
            _ => state.failures.saturating_add(1),
        };
        if state.failures > 0 {
            if let Some(at) = state.next_allowed(self.settings.min_refresh) {
                tracing::info!(retry_in = ?at.saturating_duration_since(Instant::now()), "next OIDC key refresh");
            }
        }
        state.last = Some(outcome.clone());
        outcome
    }

    /// Discovery, then the JWKS.
    async fn fetch(&self) -> Result<HashMap<String, Arc<VerificationKey>>, Fault> {
        let issuer = &self.settings.issuer;
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            issuer.trim_end_matches('/')
        );
        let discovery = match self.get_json(&discovery_url).await {
            Ok(value) => value,
            // The issuer URL answers, but not as an OpenID provider: the setting is wrong (or the realm).
            Err(Fault::Misconfigured(why)) => {
                return Err(Fault::Misconfigured(format!(
                    "DDCC_OIDC_ISSUER {issuer:?} is not an OpenID Connect issuer: {why} (Keycloak: \
                     https://<host>/realms/<realm>, with the realm's exact name)"
                )))
            }
            Err(e) => return Err(e),
        };
        // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be the one asked for, and it is
        // what the tokens carry in `iss`.
        let named = discovery.get("issuer").and_then(Value::as_str);
        if named != Some(issuer.as_str()) {
            return Err(Fault::Misconfigured(match named {
                Some(named) => format!(
                    "DDCC_OIDC_ISSUER is {issuer:?} but the provider's discovery document ({discovery_url}) \
                     names the issuer {named:?}, which its tokens carry in iss: set DDCC_OIDC_ISSUER to \
                     exactly that (no trailing slash; the same host name; Keycloak: set --hostname so that iss \
                     does not follow each request's Host header)"
                ),
                None => format!(
                    "DDCC_OIDC_ISSUER {issuer:?}: {discovery_url} is not an OpenID Connect discovery document \
                     (no issuer)"
                ),
            }));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Fault::Misconfigured(format!(
                    "DDCC_OIDC_ISSUER {issuer:?}: the discovery document {discovery_url} has no jwks_uri"
                ))
            })?;
        let jwks = match self.get_json(jwks_uri).await {
            Ok(value) => value,
            // A broken key set is the provider's fault, not a setting of ours.
            Err(Fault::Misconfigured(why)) | Err(Fault::Transient(why)) => {
                return Err(Fault::Transient(why))
            }
        };
        if !jwks.get("keys").is_some_and(Value::is_array) {
            return Err(Fault::Transient(format!(
                "{jwks_uri} is not a JWKS (no keys array)"
            )));
        }
        Ok(parse_jwks(&jwks))
    }

    /// GETs JSON: a transport failure or a 5xx/429 is transient; another status, or a body that is not
    /// JSON, is a wrong address.
    async fn get_json(&self, url: &str) -> Result<Value, Fault> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| Fault::Transient(format!("GET {url}: {e}")))?;
        let status = response.status();
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(Fault::Transient(format!("GET {url}: HTTP {status}")));
        }
        if !status.is_success() {
            return Err(Fault::Misconfigured(format!("GET {url}: HTTP {status}")));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| Fault::Transient(format!("GET {url}: {e}")))?;
        serde_json::from_slice(&body)
            .map_err(|e| Fault::Misconfigured(format!("GET {url}: not JSON ({e})")))
    }
}

/// Why the keys could not be fetched.
enum Fault {
    Transient(String),
    Misconfigured(String),
}

/// The claims of a token without verifying anything: only to explain a refusal of a token whose signature
/// verified.
fn unverified_claims(token: &str) -> Value {
    token
        .split('.')
        .nth(1)
        .and_then(|payload| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload.trim_end_matches('='))
                .ok()
        })
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or(Value::Null)
}

/// The signature keys of a JWKS, by `kid`: RSA → RS256, EC P-256 → ES256. Encryption keys (`use: enc`,
/// which Keycloak publishes beside its signing keys) and keys of other types are left out.
fn parse_jwks(jwks: &Value) -> HashMap<String, Arc<VerificationKey>> {
    let mut keys = HashMap::new();
    for jwk in jwks
        .get("keys")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let text = |name: &str| jwk.get(name).and_then(Value::as_str);
        let Some(kid) = text("kid") else { continue };
        if text("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let parsed = match (text("kty"), text("crv")) {
            (Some("RSA"), _) => match (text("n"), text("e")) {
                (Some(n), Some(e)) => DecodingKey::from_rsa_components(n, e)
                    .ok()
                    .map(|k| (Algorithm::RS256, k)),
                _ => None,
            },
            (Some("EC"), Some("P-256")) => match (text("x"), text("y")) {
                (Some(x), Some(y)) => DecodingKey::from_ec_components(x, y)
                    .ok()
                    .map(|k| (Algorithm::ES256, k)),
                _ => None,
            },
            _ => None,
        };
        let Some((algorithm, key)) = parsed else {
            continue;
        };
        // A key that declares another algorithm is not used for this one.
        if text("alg").is_some_and(|a| a != format!("{algorithm:?}")) {
            continue;
        }
        keys.insert(kid.to_owned(), Arc::new(VerificationKey { algorithm, key }));
    }
    keys
}

fn string_claim(claims: &Value, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

/// Whether the claims grant `role`: in `scope` (space-separated), `realm_access.roles`, or
/// `resource_access.<client>.roles` of the audience (the client whose roles Keycloak puts there).
fn grants(claims: &Value, role: &str, audience: &str) -> bool {
    let in_list = |list: Option<&Value>| {
        list.and_then(Value::as_array)
            .is_some_and(|roles| roles.iter().any(|r| r.as_str() == Some(role)))
    };
    let in_scope = claims
        .get("scope")
        .and_then(Value::as_str)
        .is_some_and(|s| s.split_whitespace().any(|s| s == role));
    in_scope
        || in_list(claims.pointer("/realm_access/roles"))
        || claims
            .get("resource_access")
            .and_then(|r| r.get(audience))
            .is_some_and(|client| in_list(client.get("roles")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn roles_come_from_scope_realm_or_the_audience_client() {
        let role = "ddcc:issue";
        assert!(grants(&json!({"scope": "openid ddcc:issue"}), role, "ddcc"));
        assert!(grants(
            &json!({"realm_access": {"roles": ["ddcc:issue"]}}),
            role,
            "ddcc"
        ));
        assert!(grants(
            &json!({"resource_access": {"ddcc": {"roles": ["ddcc:issue"]}}}),
            role,
            "ddcc"
        ));
        assert!(!grants(
            &json!({"resource_access": {"other": {"roles": ["ddcc:issue"]}}}),
            role,
            "ddcc"
        ));
        assert!(!grants(&json!({"scope": "ddcc:issuer"}), role, "ddcc"));
    }

    #[test]
    fn refreshes_wait_min_refresh_and_back_off_after_failures() {
        let min = Duration::from_secs(1);
        let at = Instant::now();
        let state = |failures| RefreshState {
            last_attempt: Some(at),
            failures,
            ..Default::default()
        };
        assert_eq!(RefreshState::default().next_allowed(min), None);
        let waits: Vec<u64> = [0, 1, 2, 3, 7, 40]
            .into_iter()
            .map(|n| (state(n).next_allowed(min).unwrap() - at).as_secs())
            .collect();
        assert_eq!(waits, [1, 1, 2, 4, 60, 60]);
        // A min_refresh above MAX_BACKOFF is kept.
        let long = Duration::from_secs(120);
        assert_eq!(state(5).next_allowed(long).unwrap() - at, long);
    }

    #[test]
    fn keycloak_jwks_keys_with_x5c_are_read() {
        // As Keycloak 26 publishes them: x5c, x5t and x5t#S256 beside n and e, and an enc key.
        let n = "qmzUvSmi4W3j9JjAMFHVW6P9RwdnFia8pTvVJh3oT_1sXOoo0f3Hxnv1Wd87syY_5D7sJ4a7Sy4h3qIrbeqPCHFix6WD6lR-oYsu";
        let jwks = json!({"keys": [
            {"kid": "W8Ic", "kty": "RSA", "alg": "RS256", "use": "sig", "x5c": ["MIIClzCCAX8CBgGi"],
             "x5t": "CzC8", "x5t#S256": "LBKz", "n": n, "e": "AQAB"},
            {"kid": "Exji", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc", "x5c": ["MIIC"], "n": n, "e": "AQAB"},
        ]});
        let keys = parse_jwks(&jwks);
        assert_eq!(keys.len(), 1);
        assert_eq!(keys["W8Ic"].algorithm, Algorithm::RS256);
    }

    #[test]
    fn unverified_claims_read_the_payload() {
        let payload =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(r#"{"aud":"account"}"#);
        assert_eq!(
            unverified_claims(&format!("e30.{payload}.sig"))["aud"],
            "account"
        );
        assert_eq!(unverified_claims("garbage"), Value::Null);
    }

    #[test]
    fn jwks_keeps_signature_keys_only() {
        let jwks = json!({"keys": [
            {"kid": "enc", "kty": "RSA", "use": "enc", "alg": "RSA-OAEP", "n": "sXch", "e": "AQAB"},
            {"kid": "sig", "kty": "RSA", "use": "sig", "alg": "RS256", "n": "sXch", "e": "AQAB"},
            {"kid": "oct", "kty": "oct", "k": "c2VjcmV0"},
        ]});
        let keys = parse_jwks(&jwks);
        assert_eq!(keys.len(), 1);
        assert!(keys.contains_key("sig"));
    }
}
