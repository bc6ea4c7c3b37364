//! An OpenID Connect provider TEST DOUBLE (Keycloak cannot run here: it needs Java or Docker).
//!
//! A real HTTP server on 127.0.0.1 that serves what a relying party reads from Keycloak, at Keycloak's paths:
//! - `GET /realms/<realm>/.well-known/openid-configuration`: the OpenID Connect Discovery 1.0 metadata
//!   (§3: `issuer`, `jwks_uri`, `id_token_signing_alg_values_supported`, …; Keycloak's "Server
//!   Administration Guide", OIDC endpoints: `/realms/{realm-name}/.well-known/openid-configuration`);
//! - `GET /realms/<realm>/protocol/openid-connect/certs`: the realm's JWKS (RFC 7517), which Keycloak
//!   publishes with `kid`, `kty`, `alg`, `use` (`sig`, and an `enc` RSA-OAEP key beside it) and the key's
//!   parameters.
//!
//! Tokens are signed here with test keys (RS256 from `tests/data/oidc-double-rsa-key.der`, a throw-away
//! key made for these tests; ES256 keys generated per run), with Keycloak's claim layout (`iss`, `aud`,
//! `azp`, `sub`, `scope`, `realm_access.roles`, `resource_access.<client>.roles`). Keys can be rotated.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

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

pub struct OidcDouble {
    pub issuer: String,
    keys: Arc<Mutex<Vec<Value>>>,
    jwks_fetches: Arc<AtomicUsize>,
}

impl OidcDouble {
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
        let keys = Arc::new(Mutex::new(published));
        let jwks_fetches = Arc::new(AtomicUsize::new(0));
        let (served_keys, fetches, base) = (keys.clone(), jwks_fetches.clone(), issuer.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                if reader.read_line(&mut request_line).is_err() {
                    continue;
                }
                // Skip the headers.
                let mut line = String::new();
                while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                    line.clear();
                }
                let path = request_line.split_whitespace().nth(1).unwrap_or("");
                let body = match path {
                    "/realms/ddcc/.well-known/openid-configuration" => Some(json!({
                        "issuer": base,
                        "authorization_endpoint": format!("{base}/protocol/openid-connect/auth"),
                        "token_endpoint": format!("{base}/protocol/openid-connect/token"),
                        "jwks_uri": format!("{base}/protocol/openid-connect/certs"),
                        "response_types_supported": ["code", "id_token", "code id_token"],
                        "subject_types_supported": ["public", "pairwise"],
                        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
                        "grant_types_supported": ["authorization_code", "client_credentials"],
                    })),
                    "/realms/ddcc/protocol/openid-connect/certs" => {
                        fetches.fetch_add(1, Ordering::SeqCst);
                        Some(json!({"keys": served_keys.lock().unwrap().clone()}))
                    }
                    _ => None,
                };
                let (status, body) = match body {
                    Some(b) => ("200 OK", b.to_string()),
                    None => ("404 Not Found", "{\"error\":\"not found\"}".into()),
                };
                let mut stream = reader.into_inner();
                let _ = write!(
                    stream,
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
            }
        });
        OidcDouble {
            issuer,
            keys,
            jwks_fetches,
        }
    }

    /// Publishes another key (a rotation).
    pub fn publish(&self, key: &TestKey) {
        self.keys.lock().unwrap().push(key.jwk.clone());
    }

    pub fn jwks_fetches(&self) -> usize {
        self.jwks_fetches.load(Ordering::SeqCst)
    }

    /// Keycloak-style access token claims, valid for 5 minutes.
    pub fn claims(&self, audience: &str, realm_roles: &[&str]) -> Value {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        json!({
            "exp": now + 300, "iat": now, "nbf": now - 1, "jti": uuid::Uuid::new_v4().to_string(),
            "iss": self.issuer, "aud": [audience, "account"], "sub": "3f1c9a4e-0d2b-4c55-9a61-service-account",
            "typ": "Bearer", "azp": "openhim-facility", "scope": "profile email",
            "realm_access": {"roles": realm_roles},
            "resource_access": {"account": {"roles": ["view-profile"]}},
        })
    }
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
