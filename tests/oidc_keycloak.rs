//! OIDC bearer tokens from a real Keycloak (tests/support/keycloak.rs: the distribution in dev mode, the realm
//! file we ship, `deploy/keycloak/ddcc-realm.json`), verified by the real `ddcc-mediator serve`.
//!
//! One Keycloak serves every test of this binary; tests that change keys or token lifetimes import the realm
//! file again under another name (admin REST API), so they run in parallel without touching each other.

mod support;

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};
use support::keycloak::{
    self, claims_of, header_of, Keycloak, AUDIENCE, ISSUER_CLIENT, NO_AUDIENCE_CLIENT,
    NO_ROLE_CLIENT, REALM, ROLE,
};
use support::service::{event, Response, Service};

/// The mediator configured for `realm` of `keycloak`, plus `extra` settings.
fn mediator(keycloak: &Keycloak, realm: &str, extra: &[(&str, String)]) -> Service {
    let mut env = vec![
        ("DDCC_OIDC_ISSUER", keycloak.issuer(realm)),
        ("DDCC_OIDC_AUDIENCE", AUDIENCE.into()),
        ("DDCC_OIDC_REQUIRED_ROLE", ROLE.into()),
        ("DDCC_OIDC_JWKS_MIN_REFRESH", "1".into()),
    ];
    env.extend(extra.iter().cloned());
    Service::start(&env)
}

fn issue(service: &Service, token: &str, hcid: &str) -> Response {
    service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(token),
        &event(hcid, &[]),
    )
}

fn body(r: &Response) -> String {
    String::from_utf8_lossy(&r.body).into_owned()
}

fn audit_events(service: &Service) -> Vec<Value> {
    std::fs::read_to_string(service.data_dir.join("audit.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one AuditEvent per line"))
        .collect()
}

/// A token with its payload or header replaced (the signature no longer matches, or is dropped).
fn forged(token: &str, header: Option<&Value>, claims: Option<&Value>, signature: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
    use base64::Engine as _;
    let parts: Vec<&str> = token.split('.').collect();
    let header = header.map_or(parts[0].to_owned(), |h| B64.encode(h.to_string()));
    let claims = claims.map_or(parts[1].to_owned(), |c| B64.encode(c.to_string()));
    format!("{header}.{claims}.{signature}")
}

#[test]
fn keycloak_tokens_issue_and_every_refusal_says_why() {
    let keycloak = keycloak::shared();
    let _log = keycloak.show_log_on_failure();
    let service = mediator(keycloak, REALM, &[]);

    // The facility client: the role and the audience mapper, in Keycloak's own claim layout.
    let token = keycloak.token(REALM, ISSUER_CLIENT);
    let claims = claims_of(&token);
    assert_eq!(claims["typ"], "Bearer");
    assert_eq!(claims["azp"], ISSUER_CLIENT);
    assert!(claims["aud"].as_array().unwrap().contains(&json!(AUDIENCE)));
    let roles = claims["realm_access"]["roles"].as_array().unwrap();
    assert!(roles.contains(&json!(ROLE)));
    assert!(
        roles.contains(&json!("default-roles-ddcc")),
        "Keycloak's default roles come along: {roles:?}"
    );
    assert!(
        !claims["scope"].as_str().unwrap_or("").contains(ROLE),
        "the role is no scope"
    );
    let created = issue(&service, &token, "KC-0001");
    assert_eq!(created.status, 201, "{}", body(&created));

    // Without the role: 403, audited with the client's identity.
    let no_role = keycloak.token(REALM, NO_ROLE_CLIENT);
    let forbidden = issue(&service, &no_role, "KC-0002");
    assert_eq!(forbidden.status, 403, "{}", body(&forbidden));
    let challenge = forbidden.header("www-authenticate").unwrap();
    assert!(
        challenge.contains("error=\"insufficient_scope\"") && challenge.contains(ROLE),
        "{challenge}"
    );

    // Without the audience mapper Keycloak's token names only "account": 401, and the answer and the log
    // say what to configure.
    let no_audience = keycloak.token(REALM, NO_AUDIENCE_CLIENT);
    assert_eq!(claims_of(&no_audience)["aud"], "account");
    let refused = issue(&service, &no_audience, "KC-0003");
    assert_eq!(refused.status, 401, "{}", body(&refused));
    let why = refused.outcome_text();
    assert!(
        why.contains("audience mapper") && why.contains(AUDIENCE) && why.contains("account"),
        "{why}"
    );
    assert!(refused
        .header("www-authenticate")
        .unwrap()
        .contains("error=\"invalid_token\""));
    let log = service.log_text();
    assert!(
        log.lines()
            .any(|l| l.contains("audience mapper") && l.contains(NO_AUDIENCE_CLIENT)),
        "the log names the client and the fix:\n{log}"
    );

    // No credentials at all: a challenge without an error code (RFC 6750 §3.1).
    let anonymous = service.post_json(
        "/ddcc/generateHealthCertificate",
        None,
        &event("KC-0004", &[]),
    );
    assert_eq!(anonymous.status, 401);
    assert_eq!(
        anonymous.header("www-authenticate").unwrap(),
        "Bearer realm=\"ddcc-mediator\""
    );

    // Real tokens, tampered with: each 401 invalid_token.
    let header = header_of(&token);
    let mut more_roles = claims.clone();
    more_roles["azp"] = json!("someone-else");
    let mut none = header.clone();
    none["alg"] = json!("none");
    let jwk = keycloak.jwks(REALM)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == header["kid"])
        .cloned()
        .expect("the signing key in the JWKS");
    assert!(jwk["x5c"].is_array(), "Keycloak's keys carry x5c: {jwk}");
    let hs256 = {
        let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
        h.kid = header["kid"].as_str().map(str::to_owned);
        jsonwebtoken::encode(
            &h,
            &claims,
            &jsonwebtoken::EncodingKey::from_secret(jwk.to_string().as_bytes()),
        )
        .unwrap()
    };
    let signature = token.rsplit('.').next().unwrap();
    for (case, bad) in [
        (
            "claims changed",
            forged(&token, None, Some(&more_roles), signature),
        ),
        ("alg none", forged(&token, Some(&none), None, "")),
        ("HS256 with the public key", hs256),
        ("truncated", token[..token.len() - 10].to_owned()),
    ] {
        let r = issue(&service, &bad, "KC-0005");
        assert_eq!(r.status, 401, "{case}: {}", body(&r));
        assert!(
            r.header("www-authenticate")
                .unwrap()
                .contains("error=\"invalid_token\""),
            "{case}"
        );
    }

    // The audit trail: the issuance and the 403 carry the token's sub and client.
    let events = audit_events(&service);
    let issued = events
        .iter()
        .find(|e| e["outcome"] == "0")
        .expect("the issuance is audited");
    assert_eq!(
        issued["agent"][0]["who"]["identifier"]["system"],
        keycloak.issuer(REALM)
    );
    assert_eq!(
        issued["agent"][0]["who"]["identifier"]["value"],
        claims["sub"]
    );
    assert_eq!(issued["agent"][0]["name"], ISSUER_CLIENT);
    let not_authorised = events
        .iter()
        .find(|e| {
            e["outcomeDesc"]
                .as_str()
                .is_some_and(|d| d.starts_with("not authorised"))
        })
        .expect("the 403 is audited");
    assert_eq!(not_authorised["outcome"], "4");
    assert_eq!(
        not_authorised["agent"][0]["who"]["identifier"]["value"],
        claims_of(&no_role)["sub"],
        "{not_authorised}"
    );
    assert_eq!(not_authorised["agent"][0]["name"], NO_ROLE_CLIENT);
    assert_eq!(
        not_authorised["agent"][0]["who"]["identifier"]["system"],
        keycloak.issuer(REALM)
    );
}

#[test]
fn tokens_of_another_realm_are_refused() {
    let keycloak = keycloak::shared();
    let _log = keycloak.show_log_on_failure();
    keycloak.create_realm("other", |_| {});
    let service = mediator(keycloak, REALM, &[]);
    let foreign = keycloak.token("other", ISSUER_CLIENT);
    assert_eq!(claims_of(&foreign)["iss"], keycloak.issuer("other"));
    let r = issue(&service, &foreign, "KC-OTHER-1");
    assert_eq!(r.status, 401, "{}", body(&r));
    // And the realm's own tokens still work.
    let own = keycloak.token(REALM, ISSUER_CLIENT);
    assert_eq!(issue(&service, &own, "KC-OTHER-2").status, 201);
}

#[test]
fn expired_keycloak_tokens_are_refused() {
    let keycloak = keycloak::shared();
    let _log = keycloak.show_log_on_failure();
    let realm = "ddcc-expiry";
    keycloak.create_realm(realm, |r| r["accessTokenLifespan"] = json!(2));
    let service = mediator(keycloak, realm, &[]);
    let token = keycloak.token(realm, ISSUER_CLIENT);
    let claims = claims_of(&token);
    let lifetime = claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap();
    assert!(lifetime <= 2, "{claims}");
    let r = issue(&service, &token, "KC-EXP-1");
    assert_eq!(r.status, 201, "valid within its lifetime: {}", body(&r));
    // Past exp and the 30 s leeway.
    std::thread::sleep(Duration::from_secs(lifetime + 32));
    let r = issue(&service, &token, "KC-EXP-2");
    assert_eq!(r.status, 401, "{}", body(&r));
    assert!(r.outcome_text().contains("expired"), "{}", body(&r));
}

#[test]
fn rs256_key_rotation_is_followed() {
    let keycloak = keycloak::shared();
    let _log = keycloak.show_log_on_failure();
    let realm = "ddcc-rotation";
    keycloak.create_realm(realm, |_| {});
    let service = mediator(keycloak, realm, &[("DDCC_OIDC_JWKS_MAX_AGE", "2".into())]);
    let old = keycloak.token(realm, ISSUER_CLIENT);
    assert_eq!(header_of(&old)["alg"], "RS256");
    assert_eq!(issue(&service, &old, "KC-ROT-1").status, 201);

    // A new RSA key provider with a higher priority signs from now on.
    let realm_id = keycloak.admin(Method::GET, &format!("/{realm}"), None)["id"].clone();
    let previous: Vec<Value> = keycloak
        .key_providers(realm)
        .into_iter()
        .filter(|c| c["providerId"] == "rsa-generated")
        .collect();
    assert_eq!(previous.len(), 1, "{previous:?}");
    keycloak.admin(
        Method::POST,
        &format!("/{realm}/components"),
        Some(&json!({
            "name": "rsa-rotated", "providerId": "rsa-generated",
            "providerType": "org.keycloak.keys.KeyProvider", "parentId": realm_id,
            "config": {"priority": ["200"], "keySize": ["2048"]},
        })),
    );
    let new = keycloak.token(realm, ISSUER_CLIENT);
    assert_ne!(header_of(&new)["kid"], header_of(&old)["kid"]);
    // An unknown kid refreshes the keys, at most once per DDCC_OIDC_JWKS_MIN_REFRESH (1 s here): when the
    // background refresh (max age 2 s) ran less than a second ago, the first try is refused and the next one,
    // a second later, refreshes.
    let mut r = issue(&service, &new, "KC-ROT-2");
    for _ in 0..3 {
        if r.status != 401 {
            break;
        }
        std::thread::sleep(Duration::from_millis(1_100));
        r = issue(&service, &new, "KC-ROT-2");
    }
    assert_eq!(
        r.status,
        201,
        "the unknown kid refreshes the keys: {}",
        body(&r)
    );

    // The old key is disabled: it leaves the JWKS, and once the cache is refreshed (max age 2 s, in the
    // background) its tokens are refused.
    let mut old_provider = previous[0].clone();
    old_provider["config"]["enabled"] = json!(["false"]);
    let id = old_provider["id"].as_str().unwrap().to_owned();
    keycloak.admin(
        Method::PUT,
        &format!("/{realm}/components/{id}"),
        Some(&old_provider),
    );
    let kids: Vec<Value> = keycloak.jwks(realm)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].clone())
        .collect();
    assert!(!kids.contains(&header_of(&old)["kid"]), "{kids:?}");
    std::thread::sleep(Duration::from_millis(2500));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let r = issue(&service, &old, "KC-ROT-3");
        if r.status == 401 {
            break;
        }
        assert_eq!(r.status, 201, "{}", body(&r));
        assert!(
            Instant::now() < deadline,
            "the disabled key was still accepted after 20 s"
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert_eq!(issue(&service, &new, "KC-ROT-4").status, 201);
}

#[test]
fn es256_realm_tokens_are_verified() {
    let keycloak = keycloak::shared();
    let _log = keycloak.show_log_on_failure();
    let realm = "ddcc-es256";
    keycloak.create_realm(realm, |r| {
        r["defaultSignatureAlgorithm"] = json!("ES256");
        r["components"] = json!({"org.keycloak.keys.KeyProvider": [{
            "name": "ecdsa-p256", "providerId": "ecdsa-generated", "subComponents": {},
            "config": {"priority": ["100"], "ecdsaEllipticCurveKey": ["P-256"]},
        }]});
    });
    let service = mediator(keycloak, realm, &[]);
    let token = keycloak.token(realm, ISSUER_CLIENT);
    assert_eq!(header_of(&token)["alg"], "ES256");
    let r = issue(&service, &token, "KC-ES-1");
    assert_eq!(r.status, 201, "{}", body(&r));
    let r = issue(&service, &keycloak.token(realm, NO_ROLE_CLIENT), "KC-ES-2");
    assert_eq!(r.status, 403, "{}", body(&r));
}

#[test]
fn an_id_token_is_no_access_token() {
    let keycloak = keycloak::shared();
    let _log = keycloak.show_log_on_failure();
    // A realm whose ID tokens carry the mediator's audience and the role: only `typ` tells them apart.
    let realm = "ddcc-id-token";
    keycloak.create_realm(realm, |r| {
        let client = r["clients"]
            .as_array_mut()
            .unwrap()
            .iter_mut()
            .find(|c| c["clientId"] == ISSUER_CLIENT)
            .unwrap();
        client["protocolMappers"][0]["config"]["id.token.claim"] = json!("true");
        client["protocolMappers"].as_array_mut().unwrap().push(json!({
            "name": "realm roles in the ID token", "protocol": "openid-connect",
            "protocolMapper": "oidc-usermodel-realm-role-mapper",
            "config": {"claim.name": "realm_access.roles", "multivalued": "true", "jsonType.label": "String",
                       "id.token.claim": "true", "access.token.claim": "true"},
        }));
    });
    let service = mediator(keycloak, realm, &[]);
    let answer = keycloak.token_response(realm, ISSUER_CLIENT, &[("scope", "openid")]);
    let id_token = answer["id_token"].as_str().expect("an ID token");
    let claims = claims_of(id_token);
    assert_eq!(claims["typ"], "ID");
    assert!(claims["aud"].as_array().unwrap().contains(&json!(AUDIENCE)));
    assert!(claims["realm_access"]["roles"]
        .as_array()
        .unwrap()
        .contains(&json!(ROLE)));
    let r = issue(&service, id_token, "KC-ID-1");
    assert_eq!(r.status, 401, "{}", body(&r));
    assert!(r.outcome_text().contains("not an access token"));
    // The access token of the same answer is fine.
    let access = answer["access_token"].as_str().unwrap();
    assert_eq!(issue(&service, access, "KC-ID-2").status, 201);
}

/// `ddcc-mediator serve` with `issuer`: its exit status and log, when it exits within 60 s.
fn serve_exits(issuer: &str) -> (std::process::ExitStatus, String) {
    support::service::serve_exits(
        &[
            ("DDCC_OIDC_ISSUER", issuer),
            ("DDCC_OIDC_AUDIENCE", AUDIENCE),
        ],
        Duration::from_secs(60),
    )
}

#[test]
fn a_misconfigured_issuer_stops_the_start_and_names_the_setting() {
    let keycloak = keycloak::shared();
    let _log = keycloak.show_log_on_failure();
    let right = keycloak.issuer(REALM);
    let localhost = right.replace("127.0.0.1", "localhost");
    for (case, issuer) in [
        ("a trailing slash", format!("{right}/")),
        ("localhost for 127.0.0.1", localhost),
        ("no such realm", keycloak.issuer("no-such-realm")),
    ] {
        let started = Instant::now();
        let (status, log) = serve_exits(&issuer);
        assert!(!status.success(), "{case}: {log}");
        assert!(log.contains("DDCC_OIDC_ISSUER"), "{case}: {log}");
        if case != "no such realm" {
            assert!(
                log.contains(&format!("{right:?}")),
                "{case}: the message names the provider's issuer: {log}"
            );
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{case}: {:?}",
            started.elapsed()
        );
    }
}

/// The version the tests run is the one the install script fetches and the compose stack runs.
#[test]
fn one_keycloak_version_everywhere() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let read = |path: &str| std::fs::read_to_string(root.join(path)).unwrap();
    assert!(read("scripts/install-keycloak")
        .contains(&format!("KEYCLOAK_VERSION:-{}", keycloak::VERSION)));
    assert!(read("docker-compose.yml")
        .contains(&format!("quay.io/keycloak/keycloak:{}", keycloak::VERSION)));
}

/// What the real Keycloak costs (printed for the record): its start time (bounded by
/// DDCC_KEYCLOAK_START_TIMEOUT) and its memory, bounded by the JVM heap limit kc.sh sets (-Xmx512m).
#[test]
fn keycloak_footprint() {
    let keycloak = keycloak::shared();
    let rss = keycloak.rss_kib();
    eprintln!(
        "Keycloak {} footprint: ready {:.1} s after launch, RSS {} MiB",
        keycloak::VERSION,
        keycloak.started_in.as_secs_f64(),
        rss / 1024
    );
    assert!(rss > 0 && rss < 1024 * 1024, "RSS {rss} KiB");
}
