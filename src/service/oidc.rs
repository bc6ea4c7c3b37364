//! OIDC bearer tokens: JWT access tokens of an OpenID Connect provider such as Keycloak.
//!
//! The provider's signing keys come from its JWKS, found through OpenID Connect Discovery
//! (`<issuer>/.well-known/openid-configuration` → `jwks_uri`). They are cached; a token whose `kid` is not
//! in the cache triggers one refresh (the provider rotated its keys), at most once per
//! [`OidcSettings::min_refresh`], so a stream of tokens with made-up `kid`s cannot turn this service into a
//! load generator against the provider. The cache is also refreshed when older than [`MAX_KEY_AGE`].
//!
//! Only RS256 and ES256 are accepted, and the algorithm must match the key's type (`RSA` → RS256,
//! `EC`/P-256 → ES256): `alg: none` and HS* are refused, so a token "signed" with the public key as an HMAC
//! secret never verifies. Then `iss` must equal the configured issuer exactly, `aud` must contain the
//! configured audience, `exp` and `nbf` hold with [`LEEWAY`], and the required role must be granted, in the
//! `scope` claim or in Keycloak's `realm_access.roles` / `resource_access.<audience>.roles`.
//!
//! `jsonwebtoken` does the JWS verification and the registered-claim checks: maintained, widely used, and on
//! `ring`, the crypto library this crate already builds.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::error::Error;

/// Clock skew tolerated on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);
/// Keys older than this are fetched again on the next token.
pub const MAX_KEY_AGE: Duration = Duration::from_secs(3600);

const SERVICE: &str = "OIDC provider";

#[derive(Debug, Clone)]
pub struct OidcSettings {
    /// The provider's issuer URL, exactly as in its tokens' `iss` (Keycloak: `https://host/realms/<realm>`).
    pub issuer: String,
    /// The value `aud` must contain (the client id of this service at the provider).
    pub audience: String,
    /// A role or scope the token must grant; `None`: any valid token.
    pub required_role: Option<String>,
    /// Least time between two key refreshes caused by unknown `kid`s.
    pub min_refresh: Duration,
}

/// Who a valid token speaks for.
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
    /// A valid token without the required role (403, `error="insufficient_scope"`).
    Forbidden(String),
    /// The provider could not be asked for its keys (503).
    Unavailable(Error),
}

struct VerificationKey {
    algorithm: Algorithm,
    key: DecodingKey,
}

#[derive(Default)]
struct KeySet {
    keys: HashMap<String, Arc<VerificationKey>>,
    fetched: Option<Instant>,
}

pub struct OidcVerifier {
    settings: OidcSettings,
    http: reqwest::Client,
    keys: RwLock<Arc<KeySet>>,
    /// Serialises refreshes; holds the time of the last attempt (successful or not).
    refresh: tokio::sync::Mutex<Option<Instant>>,
}

impl std::fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuer", &self.settings.issuer)
            .finish_non_exhaustive()
    }
}

impl OidcVerifier {
    pub fn new(settings: OidcSettings, timeout: Duration) -> crate::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .build()
            .map_err(|e| Error::Config(format!("OIDC HTTP client: {e}")))?;
        Ok(OidcVerifier {
            settings,
            http,
            keys: RwLock::new(Arc::new(KeySet::default())),
            refresh: tokio::sync::Mutex::new(None),
        })
    }

    pub fn required_role(&self) -> Option<&str> {
        self.settings.required_role.as_deref()
    }

    /// Verifies a bearer token and returns whom it speaks for.
    pub async fn verify(&self, token: &str) -> Result<TokenIdentity, TokenRefusal> {
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
        let key = self
            .key(&kid)
            .await?
            .ok_or_else(|| invalid("the token's kid is not among the provider's keys".into()))?;
        if key.algorithm != header.alg {
            return Err(invalid(format!(
                "token algorithm {:?} does not match the key's ({:?})",
                header.alg, key.algorithm
            )));
        }
        let mut validation = Validation::new(key.algorithm);
        validation.leeway = LEEWAY.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.settings.issuer]);
        validation.set_audience(&[&self.settings.audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<Value>(token, &key.key, &validation)
            .map_err(|e| invalid(format!("token rejected: {e}")))?
            .claims;
        let identity = TokenIdentity {
            subject: string_claim(&claims, "sub"),
            client: string_claim(&claims, "azp").or_else(|| string_claim(&claims, "client_id")),
        };
        if let Some(role) = &self.settings.required_role {
            if !grants(&claims, role, &self.settings.audience) {
                return Err(TokenRefusal::Forbidden(format!(
                    "the token does not grant {role:?} (scope, realm_access.roles or resource_access.{}.roles)",
                    self.settings.audience
                )));
            }
        }
        Ok(identity)
    }

    /// The key for `kid`: from the cache, or after a refresh when allowed.
    async fn key(&self, kid: &str) -> Result<Option<Arc<VerificationKey>>, TokenRefusal> {
        let current = self.snapshot();
        let stale = current.fetched.is_none_or(|at| at.elapsed() >= MAX_KEY_AGE);
        if let (Some(key), false) = (current.keys.get(kid), stale) {
            return Ok(Some(key.clone()));
        }
        let mut last = self.refresh.lock().await;
        // Another request may have refreshed while this one waited.
        let current = self.snapshot();
        if let Some(key) = current.keys.get(kid) {
            if current.fetched.is_some_and(|at| at.elapsed() < MAX_KEY_AGE) {
                return Ok(Some(key.clone()));
            }
        }
        let never_fetched = current.fetched.is_none();
        let allowed = never_fetched
            || stale
            || last.is_none_or(|at| at.elapsed() >= self.settings.min_refresh);
        if !allowed {
            tracing::debug!("unknown token kid; JWKS refresh rate-limited");
            return Ok(None);
        }
        *last = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => {
                tracing::info!(keys = keys.len(), "OIDC signing keys loaded");
                let set = Arc::new(KeySet {
                    keys,
                    fetched: Some(Instant::now()),
                });
                let found = set.keys.get(kid).cloned();
                match self.keys.write() {
                    Ok(mut guard) => *guard = set,
                    Err(poisoned) => *poisoned.into_inner() = set,
                }
                Ok(found)
            }
            // Stale keys still verify while the provider is unreachable; no keys at all cannot.
            Err(e) if !never_fetched => {
                tracing::warn!(error = %e, "OIDC key refresh failed; keeping the cached keys");
                Ok(current.keys.get(kid).cloned())
            }
            Err(e) => Err(TokenRefusal::Unavailable(e)),
        }
    }

    fn snapshot(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Discovery, then the JWKS.
    async fn fetch(&self) -> crate::Result<HashMap<String, Arc<VerificationKey>>> {
        let discovery_url = format!(
            "{}/.well-known/openid-configuration",
            self.settings.issuer.trim_end_matches('/')
        );
        let discovery = self.get_json(&discovery_url).await?;
        // OpenID Connect Discovery 1.0 §4.3: the document's issuer must be the one asked for.
        if discovery.get("issuer").and_then(Value::as_str) != Some(self.settings.issuer.as_str()) {
            return Err(unavailable(format!(
                "{discovery_url} names another issuer than DDCC_OIDC_ISSUER"
            )));
        }
        let jwks_uri = discovery
            .get("jwks_uri")
            .and_then(Value::as_str)
            .ok_or_else(|| unavailable(format!("{discovery_url} has no jwks_uri")))?;
        let jwks = self.get_json(jwks_uri).await?;
        Ok(parse_jwks(&jwks))
    }

    async fn get_json(&self, url: &str) -> crate::Result<Value> {
        let response = self
            .http
            .get(url)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| unavailable(format!("GET {url}: {e}")))?;
        let status = response.status();
        if !status.is_success() {
            return Err(unavailable(format!("GET {url}: HTTP {status}")));
        }
        response
            .json()
            .await
            .map_err(|e| unavailable(format!("GET {url}: not JSON: {e}")))
    }
}

fn unavailable(reason: String) -> Error {
    Error::Unavailable {
        service: SERVICE,
        reason,
    }
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
