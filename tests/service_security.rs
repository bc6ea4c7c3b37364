//! Authentication (API keys, mutual TLS, an unreachable OIDC provider), the citizen download rate limit and the
//! audit trail of `ddcc-mediator serve`: the real binary with real TLS. OIDC tokens are tested against a real
//! Keycloak in tests/oidc_keycloak.rs, and provider faults against a double in tests/oidc_double.rs.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::oidc_double::TestKey;
use support::service::{event, Service};

const AUDIENCE: &str = "ddcc-mediator";
const ROLE: &str = "ddcc:issue";

/// Personal data of the example event that must never reach the audit trail.
const HOLDER_DATA: [&str; 3] = ["Ångström", "1990-02-14", "EXAMPLE-ID-123456"];

fn audit_events(service: &Service) -> Vec<Value> {
    let text = std::fs::read_to_string(service.data_dir.join("audit.jsonl")).unwrap_or_default();
    for data in HOLDER_DATA {
        assert!(!text.contains(data), "the audit trail holds {data:?}");
    }
    text.lines()
        .map(|l| serde_json::from_str(l).expect("one AuditEvent per line"))
        .collect()
}

fn outcomes(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["outcome"].as_str().unwrap(),
                e["outcomeDesc"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn refusals_of_every_kind_are_audited_without_personal_data() {
    let service = Service::start(&[]);
    let key = service.api_key();
    // No credentials; a wrong key.
    let none = service.post_json(
        "/ddcc/generateHealthCertificate",
        None,
        &event("SEC-AUD-0001", &[]),
    );
    assert_eq!(none.status, 401);
    assert!(none
        .header("www-authenticate")
        .unwrap()
        .starts_with("Bearer"));
    assert_eq!(
        service
            .post_json(
                "/ddcc/generateHealthCertificate",
                Some("wrong"),
                &event("SEC-AUD-0001", &[])
            )
            .status,
        401
    );
    // Invalid input: the holder's data is in the request, never in the trail.
    let mut invalid = event("SEC-AUD-0002", &[]);
    invalid["questionnaire"] = json!("http://example.org/not-ddcc");
    let r = service.post_json("/ddcc/generateHealthCertificate", Some(&key), &invalid);
    assert!(r.status == 422 || r.status == 400, "{}", r.status);
    // Issued by a direct caller that claims to come through OpenHIM on behalf of a client.
    let issued = support::service::client()
        .post(format!("{}/ddcc/generateHealthCertificate", service.url))
        .bearer_auth(&key)
        .header("Content-Type", "application/fhir+json")
        .header("X-OpenHIM-ClientID", "facility-42")
        .body(event("SEC-AUD-0003", &[]).to_string())
        .send()
        .unwrap();
    assert_eq!(issued.status(), 201);

    let events = audit_events(&service);
    let summary = outcomes(&events);
    assert_eq!(events.len(), 4, "{summary:#?}");
    assert_eq!(
        summary
            .iter()
            .filter(|o| o.starts_with("4 not authenticated"))
            .count(),
        2,
        "{summary:#?}"
    );
    assert!(
        summary.iter().any(|o| o.starts_with("4 invalid input")),
        "{summary:#?}"
    );
    let ok = events.iter().find(|e| e["outcome"] == "0").unwrap();
    // Only OpenHIM itself may say on whose behalf it calls (see the OpenHIM test below).
    assert!(
        ok["agent"][1].is_null(),
        "a direct caller names an OpenHIM client: {ok:#}"
    );
    assert_eq!(ok["type"]["code"], "rest");
    assert_eq!(ok["action"], "C");
    let refused = events.iter().find(|e| e["outcome"] == "4").unwrap();
    assert!(
        refused["agent"][0]["who"].is_null(),
        "no identity for a failed login"
    );
    assert_eq!(refused["agent"][0]["requestor"], true);
}

#[test]
fn the_openhim_client_id_is_recorded_only_when_openhim_itself_calls() {
    const ROUTE_KEY: &str = "openhim-route-key-of-this-test";
    let service = Service::start(&[
        // No OpenHIM answers here: registration retries in the background; the route key is what counts.
        (
            "OPENHIM_URL",
            format!("http://127.0.0.1:{}", support::service::free_port()),
        ),
        ("OPENHIM_USERNAME", "root@openhim.org".into()),
        ("OPENHIM_PASSWORD", "not-used".into()),
        ("DDCC_OPENHIM_ROUTE_KEY", ROUTE_KEY.into()),
    ]);
    let post = |request: reqwest::blocking::RequestBuilder, client_id: &str, hcid: &str| {
        let r = request
            .header("Content-Type", "application/fhir+json")
            .header("X-OpenHIM-ClientID", client_id)
            .body(event(hcid, &[]).to_string())
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
    };
    let url = format!("{}/ddcc/generateHealthCertificate", service.url);
    let http = support::service::client();
    // A facility with its own key names itself as another OpenHIM client.
    post(
        http.post(&url).bearer_auth(service.api_key()),
        "facility-impersonated",
        "SEC-OH-ID-1",
    );
    // OpenHIM's channel route (Basic, the route key as password) on behalf of facility-42.
    post(
        http.post(&url).basic_auth("openhim", Some(ROUTE_KEY)),
        "facility-42",
        "SEC-OH-ID-2",
    );
    let events = audit_events(&service);
    assert_eq!(events.len(), 2, "{events:#?}");
    let text = serde_json::to_string(&events).unwrap();
    assert!(!text.contains("facility-impersonated"), "{text}");
    let via_openhim = events
        .iter()
        .find(|e| e["agent"][0]["name"] == "OpenHIM (route key)")
        .expect("the route key is named as OpenHIM's");
    assert_eq!(
        via_openhim["agent"][1]["who"]["identifier"]["value"],
        "facility-42"
    );
}

#[test]
fn citizen_downloads_are_rate_limited_per_client() {
    let service = Service::start(&[("DDCC_DOWNLOAD_RATE", "4/min".into())]);
    let document = service
        .post_json(
            "/ddcc/generateHealthCertificate",
            Some(&service.api_key()),
            &event("SEC-RATE-0001", &[]),
        )
        .json();
    let pdf_link = document["link"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["relation"] == "certificate")
        .unwrap()["url"]
        .as_str()
        .unwrap()
        .to_owned();
    let path = pdf_link.trim_start_matches(&service.url).to_owned();
    assert_eq!(service.get(&path, None).status, 200);
    // Unknown tokens count too: guessing is throttled like downloading.
    for _ in 0..3 {
        assert_eq!(
            service
                .get("/certificates/not-a-token/certificate.pdf", None)
                .status,
            404
        );
    }
    let throttled = service.get(&path, None);
    assert_eq!(throttled.status, 429);
    let retry: u64 = throttled.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=15).contains(&retry), "{retry}");
    throttled.outcome_text();
    // Issuing is not throttled.
    assert_eq!(service.get("/health/live", None).status, 200);
}

/// A CA and certificates made with rcgen: the server's (for 127.0.0.1) and clients'.
struct Pki {
    ca: rcgen::Certificate,
    ca_key: rcgen::KeyPair,
}

impl Pki {
    fn new(name: &str) -> Self {
        let ca_key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, name);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::KeyCertSign,
            rcgen::KeyUsagePurpose::DigitalSignature,
        ];
        let ca = params.self_signed(&ca_key).unwrap();
        Pki { ca, ca_key }
    }

    /// (certificate PEM, key PEM).
    fn issue(&self, common_name: &str, server: bool) -> (String, String) {
        let key = rcgen::KeyPair::generate().unwrap();
        let names = if server {
            vec!["127.0.0.1".to_owned()]
        } else {
            vec![]
        };
        let mut params = rcgen::CertificateParams::new(names).unwrap();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, common_name);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "DDCC test");
        params.extended_key_usages = vec![if server {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        }];
        let cert = params.signed_by(&key, &self.ca, &self.ca_key).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

#[test]
fn mutual_tls_lets_certified_clients_issue() {
    let pki = Pki::new("DDCC test CA");
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_owned()
    };
    let (server_cert, server_key) = pki.issue("127.0.0.1", true);
    let env = [
        ("DDCC_TLS_CERT", write("server.pem", &server_cert)),
        ("DDCC_TLS_KEY", write("server-key.pem", &server_key)),
        ("DDCC_TLS_CLIENT_CA", write("ca.pem", &pki.ca.pem())),
    ];
    let client = |identity: Option<(String, String)>| {
        let mut builder = reqwest::blocking::Client::builder()
            .use_rustls_tls()
            .timeout(Duration::from_secs(60))
            .add_root_certificate(reqwest::Certificate::from_pem(pki.ca.pem().as_bytes()).unwrap());
        if let Some((cert, key)) = identity {
            builder = builder
                .identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
        }
        builder.build().unwrap()
    };
    let service = Service::start_https(&env, client(None));
    let post = |client: &reqwest::blocking::Client| {
        client
            .post(format!("{}/ddcc/generateHealthCertificate", service.url))
            .header("Content-Type", "application/fhir+json")
            .body(event("SEC-MTLS-0001", &[]).to_string())
            .send()
    };

    // A certificate from the CA: issued, no API key needed.
    let openhim = client(Some(pki.issue("openhim-core", false)));
    let r = post(&openhim).expect("TLS with a client certificate");
    assert_eq!(r.status(), 201, "{}", r.text().unwrap_or_default());
    // No certificate, no key: 401; public endpoints still open over HTTPS.
    let anonymous = client(None);
    assert_eq!(post(&anonymous).unwrap().status(), 401);
    assert_eq!(
        anonymous
            .get(format!("{}/trust/jwks.json", service.url))
            .send()
            .unwrap()
            .status(),
        200
    );
    // The API key still works over HTTPS.
    let with_key = anonymous
        .post(format!("{}/ddcc/generateHealthCertificate", service.url))
        .bearer_auth(service.api_key())
        .header("Content-Type", "application/fhir+json")
        .body(event("SEC-MTLS-0001", &[]).to_string())
        .send()
        .unwrap();
    assert_eq!(with_key.status(), 200, "the same event: already issued");
    // A certificate from another CA: the handshake fails, nothing is issued.
    let stranger = client(Some(Pki::new("Other CA").issue("intruder", false)));
    match post(&stranger) {
        Err(_) => {}
        Ok(r) => panic!("a foreign client certificate was answered {}", r.status()),
    }

    let events = audit_events(&service);
    let by_cert = events
        .iter()
        .find(|e| {
            e["agent"][0]["who"]["identifier"]["system"]
                == "urn:ddcc-mediator:client-certificate-subject"
        })
        .expect("the certificate's issuance is audited");
    let subject = by_cert["agent"][0]["who"]["identifier"]["value"]
        .as_str()
        .unwrap();
    assert!(subject.contains("CN=openhim-core"), "{subject}");
    assert_eq!(by_cert["outcome"], "0");
}

#[test]
fn audit_events_go_to_the_fhir_server_and_its_failure_does_not_fail_the_answer() {
    let mut fhir = support::service::FhirServer::start_validating();
    let service = Service::start(&[("DDCC_FHIR_URL", fhir.base())]);
    let key = service.api_key();
    let created = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        &event("SEC-FHIR-0001", &[]),
    );
    assert_eq!(
        created.status,
        201,
        "{}",
        String::from_utf8_lossy(&created.body)
    );
    assert_eq!(
        service
            .post_json(
                "/ddcc/generateHealthCertificate",
                None,
                &event("SEC-FHIR-0002", &[])
            )
            .status,
        401
    );

    // Both events are AuditEvents on the FHIR server (which validated them against R4), none in a local file.
    let (status, found) = fhir.get("AuditEvent?_count=50");
    assert_eq!(status, 200);
    let text = found.to_string();
    for data in HOLDER_DATA {
        assert!(!text.contains(data), "an AuditEvent holds {data:?}");
    }
    let mut codes: Vec<&str> = found["entry"]
        .as_array()
        .expect("AuditEvents stored")
        .iter()
        .map(|e| e["resource"]["outcome"].as_str().unwrap())
        .collect();
    codes.sort();
    assert_eq!(codes, ["0", "4"]);
    assert!(!service.data_dir.join("audit.jsonl").exists());
    let bundle_id = created.json()["id"].as_str().unwrap().to_owned();
    assert!(text.contains(&format!("Bundle/{bundle_id}")));

    // The FHIR server goes away: the answer is the outage (503), the lost AuditEvent is counted.
    fhir.stop();
    let down = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&key),
        &event("SEC-FHIR-0003", &[]),
    );
    assert_eq!(down.status, 503);
    let metrics = String::from_utf8(service.get("/metrics", None).body).unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ddcc_dependency_errors_total{dependency=\"audit\"}")),
        "{metrics}"
    );
}

#[test]
fn an_unreachable_oidc_provider_is_a_dependency_failure() {
    let issuer = format!(
        "http://127.0.0.1:{}/realms/ddcc",
        support::service::free_port()
    );
    let service = Service::start(&[
        ("DDCC_OIDC_ISSUER", issuer.clone()),
        ("DDCC_OIDC_AUDIENCE", AUDIENCE.into()),
    ]);
    let key = TestKey::ec("ec-1");
    let mut claims = json!({"iss": issuer, "aud": AUDIENCE, "sub": "s", "exp": 4_000_000_000u64});
    claims["scope"] = json!(ROLE);
    let r = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(&key.sign(&claims)),
        &event("SEC-IDP-0001", &[]),
    );
    assert_eq!(r.status, 503, "{}", String::from_utf8_lossy(&r.body));
    assert!(r.header("retry-after").is_some());
    assert!(r.outcome_text().contains("OIDC provider"));
    // The API key does not depend on the provider.
    assert_eq!(
        service
            .post_json(
                "/ddcc/generateHealthCertificate",
                Some(&service.api_key()),
                &event("SEC-IDP-0001", &[])
            )
            .status,
        201
    );
    let summary = outcomes(&audit_events(&service));
    assert_eq!(
        summary,
        ["8 OIDC provider unavailable", "0 certificate issued"]
    );
}
