//! What a real OpenID provider cannot be made to do, against the provider DOUBLE (tests/support/oidc_double.rs):
//! hang, serve garbage, sign tokens Keycloak never would. Everything else runs against a real Keycloak
//! (tests/oidc_keycloak.rs).

mod support;

use std::time::{Duration, Instant};

use serde_json::json;
use support::oidc_double::{Behaviour, OidcProviderDouble, TestKey};
use support::service::{event, Response, Service};

const AUDIENCE: &str = "ddcc-mediator";
const ROLE: &str = "ddcc:issue";

fn mediator(idp: &OidcProviderDouble, extra: &[(&str, &str)]) -> Service {
    let mut env = vec![
        ("DDCC_OIDC_ISSUER", idp.issuer.clone()),
        ("DDCC_OIDC_AUDIENCE", AUDIENCE.to_owned()),
        ("DDCC_OIDC_REQUIRED_ROLE", ROLE.to_owned()),
    ];
    env.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    Service::start(&env)
}

fn issue(service: &Service, token: &str, hcid: &str) -> Response {
    service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(token),
        &event(hcid, &[]),
    )
}

/// `n` requests at once with `token`: (status, seconds each took).
fn concurrently(service: &Service, token: &str, n: usize, hcid: &str) -> Vec<(u16, f64)> {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|i| {
                scope.spawn(move || {
                    let started = Instant::now();
                    let r = issue(service, token, &format!("{hcid}-{i}"));
                    (r.status, started.elapsed().as_secs_f64())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

#[test]
fn double_hanging_provider_does_not_hold_requests_when_keys_are_cached() {
    let rsa = TestKey::rsa("rsa-1");
    let idp = OidcProviderDouble::start(&[&rsa]);
    let service = mediator(
        &idp,
        &[
            ("DDCC_OIDC_JWKS_MIN_REFRESH", "1"),
            ("DDCC_OIDC_JWKS_MAX_AGE", "2"),
            ("DDCC_OUTBOUND_TIMEOUT", "3"),
        ],
    );
    assert_eq!(idp.jwks_fetches(), 1, "the keys are loaded at start-up");
    let token = rsa.sign(&idp.claims(AUDIENCE, &[ROLE]));
    assert_eq!(issue(&service, &token, "HANG-0").status, 201);

    // The provider hangs and the keys are older than DDCC_OIDC_JWKS_MAX_AGE: requests are served from the
    // cache while one refresh waits in the background.
    idp.behave(Behaviour::Hang);
    std::thread::sleep(Duration::from_millis(2500));
    let before = idp.discovery_fetches();
    let answers = concurrently(&service, &token, 3, "HANG-1");
    for (status, secs) in &answers {
        assert_eq!(*status, 201, "{answers:?}");
        assert!(
            *secs < 2.5,
            "a request waited for the provider: {answers:?}"
        );
    }
    assert!(
        idp.discovery_fetches() <= before + 1,
        "one refresh at a time"
    );

    // An unknown kid waits for at most one refresh (DDCC_OUTBOUND_TIMEOUT), then is refused.
    let stranger = TestKey::ec("ec-unknown");
    let started = Instant::now();
    let r = issue(
        &service,
        &stranger.sign(&idp.claims(AUDIENCE, &[ROLE])),
        "HANG-2",
    );
    assert_eq!(r.status, 401, "{}", String::from_utf8_lossy(&r.body));
    assert!(
        started.elapsed() < Duration::from_millis(4500),
        "{:?}",
        started.elapsed()
    );

    // The provider answers again: a rotated key is picked up.
    idp.behave(Behaviour::Normal);
    let rotated = TestKey::ec("ec-2");
    idp.publish(&rotated);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let r = issue(
            &service,
            &rotated.sign(&idp.claims(AUDIENCE, &[ROLE])),
            "HANG-3",
        );
        if r.status == 201 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery: {}", r.status);
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn double_hanging_provider_without_keys_answers_503_at_once_and_backs_off() {
    let rsa = TestKey::rsa("rsa-1");
    let idp = OidcProviderDouble::start(&[&rsa]);
    idp.behave(Behaviour::Hang);
    let started = Instant::now();
    // The start-up check gives up after DDCC_OUTBOUND_TIMEOUT and the service starts anyway.
    let service = mediator(
        &idp,
        &[
            ("DDCC_OIDC_JWKS_MIN_REFRESH", "6"),
            ("DDCC_OUTBOUND_TIMEOUT", "2"),
        ],
    );
    assert_eq!(idp.discovery_fetches(), 1);
    assert!(service.log_text().contains("did not answer at start-up"));
    let token = rsa.sign(&idp.claims(AUDIENCE, &[ROLE]));

    // Backing off after the failed start-up load: five requests, five immediate 503s, no provider request.
    let answers = concurrently(&service, &token, 5, "NOKEY-1");
    for (status, secs) in &answers {
        assert_eq!(*status, 503, "{answers:?}");
        assert!(*secs < 1.5, "{answers:?}");
    }
    assert_eq!(idp.discovery_fetches(), 1, "no request while backing off");
    let r = issue(&service, &token, "NOKEY-2");
    assert_eq!(r.status, 503);
    assert!(r.header("retry-after").is_some());
    let text = String::from_utf8_lossy(&r.body).into_owned();
    assert!(text.contains("OIDC provider"), "{text}");
    let port = idp
        .issuer
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    for internal in ["127.0.0.1", port, "GET ", "realms", "error sending request"] {
        assert!(
            !text.contains(internal),
            "the 503 shows {internal:?}: {text}"
        );
    }

    // Once the back-off is over, five requests share one refresh: all 503 after ~2 s, not 2/4/6/8/10 s.
    let wait =
        Duration::from_secs(6).saturating_sub(started.elapsed()) + Duration::from_millis(500);
    std::thread::sleep(wait);
    let answers = concurrently(&service, &token, 5, "NOKEY-3");
    for (status, secs) in &answers {
        assert_eq!(*status, 503, "{answers:?}");
        assert!(*secs < 4.0, "{answers:?}");
    }
    assert_eq!(idp.discovery_fetches(), 2, "one refresh for five requests");

    // The provider answers again: after the back-off the keys load and tokens verify.
    idp.behave(Behaviour::Normal);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let r = issue(&service, &token, "NOKEY-4");
        if r.status == 201 {
            break;
        }
        assert_eq!(r.status, 503);
        assert!(Instant::now() < deadline, "no recovery");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn double_garbage_discovery_stops_the_start_garbage_keys_do_not() {
    let rsa = TestKey::rsa("rsa-1");
    let idp = OidcProviderDouble::start(&[&rsa]);

    // An issuer URL that answers a web page: a wrong setting, found at start-up.
    idp.behave(Behaviour::GarbageDiscovery);
    let (status, stderr) = support::service::serve_exits(
        &[
            ("DDCC_OIDC_ISSUER", idp.issuer.as_str()),
            ("DDCC_OIDC_AUDIENCE", AUDIENCE),
        ],
        Duration::from_secs(30),
    );
    assert!(!status.success(), "{stderr}");
    assert!(
        stderr.contains("DDCC_OIDC_ISSUER") && stderr.contains("not an OpenID Connect issuer"),
        "{stderr}"
    );

    // A key set that is garbage is the provider's fault: before any key, 503 (no detail); with keys cached,
    // they stay in use.
    idp.behave(Behaviour::GarbageJwks);
    let service = mediator(&idp, &[("DDCC_OIDC_JWKS_MIN_REFRESH", "1")]);
    let token = rsa.sign(&idp.claims(AUDIENCE, &[ROLE]));
    std::thread::sleep(Duration::from_millis(1100));
    let r = issue(&service, &token, "GARBAGE-1");
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(!String::from_utf8_lossy(&r.body).contains("certs"));
    idp.behave(Behaviour::Normal);
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(issue(&service, &token, "GARBAGE-2").status, 201);
    idp.behave(Behaviour::GarbageJwks);
    std::thread::sleep(Duration::from_millis(1100));
    let unknown = TestKey::ec("ec-unknown").sign(&idp.claims(AUDIENCE, &[ROLE]));
    assert_eq!(issue(&service, &unknown, "GARBAGE-3").status, 401);
    assert_eq!(issue(&service, &token, "GARBAGE-4").status, 201);
}

#[test]
fn double_tokens_no_provider_would_sign_are_refused() {
    let rsa = TestKey::rsa("rsa-1");
    let ec = TestKey::ec("ec-1");
    let idp = OidcProviderDouble::start(&[&rsa, &ec]);
    let service = mediator(&idp, &[]);
    let good = idp.claims(AUDIENCE, &[ROLE]);
    let now = good["iat"].as_u64().unwrap();

    // The role as a scope, or as a client role of the audience, is as good as a realm role.
    let mut scoped = idp.claims(AUDIENCE, &[]);
    scoped["scope"] = json!(format!("openid {ROLE}"));
    assert_eq!(issue(&service, &ec.sign(&scoped), "DBL-1").status, 201);
    let mut client_role = idp.claims(AUDIENCE, &[]);
    client_role["resource_access"][AUDIENCE] = json!({"roles": [ROLE]});
    assert_eq!(
        issue(&service, &rsa.sign(&client_role), "DBL-2").status,
        201
    );

    let mut not_yet = good.clone();
    not_yet["nbf"] = json!(now + 3600);
    let mut other_issuer = good.clone();
    other_issuer["iss"] = json!(format!("{}x", idp.issuer));
    let mut refresh = good.clone();
    refresh["typ"] = json!("Refresh");
    let impostor = TestKey::ec("ec-1"); // same kid, another key
    for (case, token, says) in [
        ("not yet valid", ec.sign(&not_yet), "not valid yet"),
        ("another iss, same key", rsa.sign(&other_issuer), "iss"),
        ("a refresh token", rsa.sign(&refresh), "not an access token"),
        ("another key, same kid", impostor.sign(&good), "signature"),
    ] {
        let r = issue(&service, &token, "DBL-3");
        assert_eq!(r.status, 401, "{case}");
        let text = r.outcome_text();
        assert!(text.contains(says), "{case}: {text}");
    }
}
