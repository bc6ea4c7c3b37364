//! A TEST DOUBLE of an OpenID Connect provider, for the faults a real one cannot be made to show: a provider
//! that accepts connections and never answers (hangs), one that answers garbage, and tokens no provider would
//! sign (a future `nbf`, another `iss` under the same key, an ID token with an access token's audience).
//! Everything else is tested against a real Keycloak (`tests/support/keycloak.rs`, `tests/oidc_keycloak.rs`).
//!
//! It follows the API of Keycloak 26 that a relying party reads, at Keycloak's paths:
//! - `GET /realms/ddcc/.well-known/openid-configuration`: OpenID Connect Discovery 1.0 metadata (§3: `issuer`,
//!   `jwks_uri`, …; Keycloak's "Server Administration Guide", OIDC endpoints);
//! - `GET /realms/ddcc/protocol/openid-connect/certs`: the realm's JWKS (RFC 7517), keys with `kid`, `kty`,
//!   `alg`, `use` (`sig`, and an `enc` RSA-OAEP key beside them, as Keycloak publishes), and `x5c`-free
//!   parameters (Keycloak adds `x5c`/`x5t`, which a relying party may ignore).
//!
//! Tokens are signed here with test keys (RS256 from `tests/data/oidc-double-rsa-key.der`, a throw-away key made
//! for these tests; ES256 keys generated per run) in Keycloak's claim layout (`iss`, `aud`, `azp`, `sub`, `typ`,
//! `scope`, `realm_access.roles`, `resource_access.<client>.roles`). Each connection is served on a thread of
//! its own, so a hanging answer does not block the others.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

/// A signing key of the double.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub algorithm: Algorithm,
    encoding: EncodingKey,
    pub jwk: Value,
}

impl TestKey {
    /// The RSA test key (RS256).
    pub fn rsa(kid: &str) -> Self {
        let der = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/data/oidc-double-rsa-key.der"),
        )
        .expect("the RSA test key");
        let key_pair = ring::signature::RsaKeyPair::from_der(&der).expect("PKCS#1 RSA key");
        use ring::signature::KeyPair as _;
        let public = key_pair.public_key();
        let parts = ring::rsa::PublicKeyComponents::<Vec<u8>>::from(public);
        let unsigned = |b: &[u8]| B64.encode(&b[b.iter().take_while(|x| **x == 0).count()..]);
        let (n, e) = (unsigned(&parts.n), unsigned(&parts.e));
        TestKey {
            kid: kid.into(),
            algorithm: Algorithm::RS256,
            encoding: EncodingKey::from_rsa_der(&der),
            jwk: json!({"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig", "n": n, "e": e}),
        }
    }

    /// A fresh P-256 key (ES256).
    pub fn ec(kid: &str) -> Self {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let raw = pair.public_key_raw(); // 0x04 || x || y
        assert_eq!(raw.len(), 65);
        TestKey {
            kid: kid.into(),
            algorithm: Algorithm::ES256,
            encoding: EncodingKey::from_ec_der(&pair.serialize_der()),
            jwk: json!({
                "kid": kid, "kty": "EC", "alg": "ES256", "use": "sig", "crv": "P-256",
                "x": B64.encode(&raw[1..33]), "y": B64.encode(&raw[33..65]),
            }),
        }
    }

    /// Signs `claims` with this key, `kid` in the header.
    pub fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(self.algorithm);
        header.kid = Some(self.kid.clone());
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("signed token")
    }
}

/// How the double answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// As Keycloak does.
    Normal,
    /// Accepts the connection, reads the request, and answers nothing (for up to a minute).
    Hang,
    /// The discovery document is an HTML page (a proxy's or a web server's, at the wrong address).
    GarbageDiscovery,
    /// The JWKS is not a key set.
    GarbageJwks,
}

struct Shared {
    keys: Mutex<Vec<Value>>,
    behaviour: Mutex<Behaviour>,
    discovery_requests: AtomicUsize,
    jwks_requests: AtomicUsize,
}

/// The OpenID provider double (see the module documentation).
pub struct OidcProviderDouble {
    pub issuer: String,
    shared: Arc<Shared>,
}

impl OidcProviderDouble {
    /// Serves realm `ddcc` on a free port, publishing `keys` (plus an `enc` key, as Keycloak does).
    pub fn start(keys: &[&TestKey]) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("a local port");
        let port = listener.local_addr().unwrap().port();
        let issuer = format!("http://127.0.0.1:{port}/realms/ddcc");
        let mut published: Vec<Value> = keys.iter().map(|k| k.jwk.clone()).collect();
        published.push(json!({
            "kid": "enc-key", "kty": "RSA", "alg": "RSA-OAEP", "use": "enc",
            "n": published.iter().find(|k| k["kty"] == "RSA").map(|k| k["n"].clone()).unwrap_or(json!("AQAB")),
            "e": "AQAB",
        }));
        let shared = Arc::new(Shared {
            keys: Mutex::new(published),
            behaviour: Mutex::new(Behaviour::Normal),
            discovery_requests: AtomicUsize::new(0),
            jwks_requests: AtomicUsize::new(0),
        });
        let (state, base) = (shared.clone(), issuer.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (state, base) = (state.clone(), base.clone());
                std::thread::spawn(move || serve(stream, &state, &base));
            }
        });
        OidcProviderDouble { issuer, shared }
    }

    /// Changes how the double answers from now on (a hanging answer notices within 100 ms).
    pub fn behave(&self, behaviour: Behaviour) {
        *self.shared.behaviour.lock().unwrap() = behaviour;
    }

    /// Publishes another key (a rotation).
    pub fn publish(&self, key: &TestKey) {
        self.shared.keys.lock().unwrap().push(key.jwk.clone());
    }

    /// Requests for the JWKS so far (answered or not).
    pub fn jwks_fetches(&self) -> usize {
        self.shared.jwks_requests.load(Ordering::SeqCst)
    }

    /// Requests for the discovery document so far (answered or not).
    pub fn discovery_fetches(&self) -> usize {
        self.shared.discovery_requests.load(Ordering::SeqCst)
    }

    /// Keycloak-style access token claims, valid for 5 minutes.
    pub fn claims(&self, audience: &str, realm_roles: &[&str]) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        json!({
            "exp": now + 300, "iat": now, "jti": uuid::Uuid::new_v4().to_string(),
            "iss": self.issuer, "aud": [audience, "account"], "sub": "3f1c9a4e-0d2b-4c55-9a61-service-account",
            "typ": "Bearer", "azp": "openhim-facility", "scope": "profile email",
            "realm_access": {"roles": realm_roles},
            "resource_access": {"account": {"roles": ["view-profile"]}},
        })
    }
}

fn serve(stream: std::net::TcpStream, state: &Shared, base: &str) {
    let mut reader = BufReader::new(stream);
    let mut request_line = String::new();
    if reader.read_line(&mut request_line).is_err() {
        return;
    }
    // Skip the headers.
    let mut line = String::new();
    while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
        line.clear();
    }
    let path = request_line
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .to_owned();
    let discovery = path == "/realms/ddcc/.well-known/openid-configuration";
    let certs = path == "/realms/ddcc/protocol/openid-connect/certs";
    if discovery {
        state.discovery_requests.fetch_add(1, Ordering::SeqCst);
    }
    if certs {
        state.jwks_requests.fetch_add(1, Ordering::SeqCst);
    }
    let behaviour = *state.behaviour.lock().unwrap();
    if behaviour == Behaviour::Hang {
        // Hold the connection open, answering nothing, until told otherwise (or a minute passed).
        let until = Instant::now() + Duration::from_secs(60);
        while *state.behaviour.lock().unwrap() == Behaviour::Hang && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    let (status, content_type, body) = match (discovery, certs, behaviour) {
        (true, _, Behaviour::GarbageDiscovery) => (
            "200 OK",
            "text/html",
            "<html><body><h1>Welcome to nginx!</h1></body></html>".to_owned(),
        ),
        (true, _, _) => (
            "200 OK",
            "application/json",
            json!({
                "issuer": base,
                "authorization_endpoint": format!("{base}/protocol/openid-connect/auth"),
                "token_endpoint": format!("{base}/protocol/openid-connect/token"),
                "jwks_uri": format!("{base}/protocol/openid-connect/certs"),
                "response_types_supported": ["code", "id_token", "code id_token"],
                "subject_types_supported": ["public", "pairwise"],
                "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                "grant_types_supported": ["authorization_code", "client_credentials"],
            })
            .to_string(),
        ),
        (_, true, Behaviour::GarbageJwks) => (
            "200 OK",
            "application/json",
            json!({"error": "unknown_error", "keys": "not a list"}).to_string(),
        ),
        (_, true, _) => (
            "200 OK",
            "application/json",
            json!({"keys": state.keys.lock().unwrap().clone()}).to_string(),
        ),
        _ => (
            "404 Not Found",
            "application/json",
            "{\"error\":\"not found\"}".to_owned(),
        ),
    };
    let mut stream = reader.into_inner();
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// An unsigned `alg: none` token.
pub fn unsigned(kid: &str, claims: &Value) -> String {
    let header = json!({"alg": "none", "typ": "JWT", "kid": kid});
    format!(
        "{}.{}.",
        B64.encode(header.to_string()),
        B64.encode(claims.to_string())
    )
}

/// HS256 with `secret` (e.g. the public key), `kid` in the header: the algorithm-confusion attack.
pub fn hs256(kid: &str, secret: &[u8], claims: &Value) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(kid.into());
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_secret(secret)).unwrap()
}
