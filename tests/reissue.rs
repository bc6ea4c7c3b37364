//! Withdrawing a signing key and re-signing what it signed: `ddcc-mediator keys withdraw <kid>` and
//! `ddcc-mediator reissue`, against the local store and against HAPI, with the local signer. Every re-signed
//! certificate verifies with the new DSC only (the independent Python checker); a run stopped by `--limit`
//! is continued by the next; a run with nothing left changes nothing; the withdrawn DSC is published until
//! the re-signing finished, then no longer.

mod support;

use std::path::Path;
use std::process::Command;

use serde_json::Value;
use support::service::{event, hc1_of, Service};

const GENERATE: &str = "/ddcc/generateHealthCertificate";
const API_KEY: &str = "reissue-test-key";
const EVENTS: usize = 5;

fn cli(args: &[&str], env: &[(&str, String)]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `reissue` two documents a page; its summary.
fn reissue(env: &[(&str, String)], extra: &[&str]) -> Value {
    let args: Vec<&str> = ["reissue", "--page-size", "2"]
        .iter()
        .chain(extra)
        .copied()
        .collect();
    let (code, stdout, stderr) = cli(&args, env);
    assert_eq!(code, 0, "reissue failed: {stdout}\n{stderr}");
    assert!(stderr.contains("scanned"), "progress on stderr: {stderr}");
    serde_json::from_str(stdout.trim()).unwrap_or_else(|_| panic!("no summary: {stdout}\n{stderr}"))
}

fn jwks_kids(service: &Service) -> Vec<String> {
    let jwks = service.get("/trust/jwks.json", None).json();
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn write_pem(path: &Path, der: &[u8]) {
    std::fs::write(
        path,
        pem::encode(&pem::Pem::new("CERTIFICATE", der.to_vec())),
    )
    .unwrap();
}

fn dsc_der(key_dir: &Path) -> Vec<u8> {
    pem::parse(std::fs::read(key_dir.join("dsc-cert.pem")).unwrap())
        .unwrap()
        .contents()
        .to_vec()
}

/// How a test withdraws the signing key: given the data directory, withdraws it (checking what `keys
/// withdraw` answers) and returns (the withdrawn DSC, the DSC that signs now), DER.
type Withdraw<'a> = &'a dyn Fn(&Path) -> (Vec<u8>, Vec<u8>);

/// The local signer's withdrawal: its key directory.
fn withdraw_local(data_dir: &Path) -> (Vec<u8>, Vec<u8>) {
    let key_dir = data_dir.join("keys");
    let old_dsc = dsc_der(&key_dir);
    let old_kid = hex::encode(ddcc_mediator::signer::kid_of(&old_dsc));
    let key_dir_arg = key_dir.to_str().unwrap().to_owned();
    let (code, stdout, stderr) = cli(
        &["keys", "withdraw", &old_kid, "--key-dir", &key_dir_arg],
        &[],
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let new_dsc = dsc_der(&key_dir);
    let new_kid = hex::encode(ddcc_mediator::signer::kid_of(&new_dsc));
    assert_eq!(stdout.trim(), new_kid);
    assert_ne!(new_kid, old_kid);
    // Withdrawing it again changes nothing.
    let (code, again, _) = cli(
        &["keys", "withdraw", &old_kid, "--key-dir", &key_dir_arg],
        &[],
    );
    assert_eq!((code, again.trim()), (0, new_kid.as_str()));
    (old_dsc, new_dsc)
}

/// The whole story on one store: issue, withdraw, re-sign in two runs, re-sign again (nothing), check.
fn withdraw_and_reissue(
    base_env: Vec<(&'static str, String)>,
    fhir: Option<&support::service::FhirServer>,
    withdraw: Withdraw,
) {
    let digest = hex::encode(ddcc_mediator::service::auth::digest(API_KEY));
    let mut env = base_env;
    env.push(("DDCC_API_KEYS", digest));
    let service = Service::start(&env);
    let data_dir = service.data_dir.clone();
    let events: Vec<Value> = (0..EVENTS)
        .map(|i| event(&format!("REISSUE-{i}"), &[]))
        .collect();
    let first: Vec<Value> = events
        .iter()
        .map(|qr| {
            let answer = service.post_json(GENERATE, Some(API_KEY), qr);
            assert_eq!(
                answer.status,
                201,
                "{}",
                String::from_utf8_lossy(&answer.body)
            );
            answer.json()
        })
        .collect();
    let mut service = service;
    service.stop();

    // Withdraw: a new key signs from now on.
    let (old_dsc, new_dsc) = withdraw(&data_dir);

    let mut cli_env: Vec<(&str, String)> = env.clone();
    cli_env.push(("DDCC_DATA_DIR", data_dir.to_str().unwrap().to_owned()));

    // Interrupted: stopped after 2 re-signed certificates.
    let summary = reissue(&cli_env, &["--limit", "2"]);
    assert_eq!(summary["resigned"], 2, "{summary}");
    assert_eq!(summary["complete"], false, "{summary}");

    // Until the re-signing is done, verifiers are offered both DSCs.
    let service = service.restart(&env);
    let kids = jwks_kids(&service);
    assert_eq!(kids.len(), 2, "{kids:?}");
    let mut service = service;
    service.stop();

    // The next run continues: the 3 left are re-signed, the 2 done are not touched.
    let summary = reissue(&cli_env, &[]);
    assert_eq!(summary["resigned"], 3, "{summary}");
    assert_eq!(summary["unchanged"], 2, "{summary}");
    assert_eq!(summary["complete"], true, "{summary}");
    assert_eq!(summary["failed"], 0, "{summary}");
    // A third run changes nothing.
    let summary = reissue(&cli_env, &[]);
    assert_eq!(summary["resigned"], 0, "{summary}");
    assert_eq!(summary["unchanged"], EVENTS, "{summary}");

    // The withdrawn DSC is no longer published; every current certificate verifies with the new DSC only.
    let service = service.restart(&env);
    let kids = jwks_kids(&service);
    assert_eq!(kids.len(), 1, "{kids:?}");
    let dir = tempfile::tempdir().unwrap();
    let (old_pem, new_pem) = (dir.path().join("old.pem"), dir.path().join("new.pem"));
    write_pem(&old_pem, &old_dsc);
    write_pem(&new_pem, &new_dsc);
    for (qr, first) in events.iter().zip(&first) {
        // Submitting the event again answers the re-signed certificate (200): nothing is signed twice.
        let current = service.post_json(GENERATE, Some(API_KEY), qr);
        assert_eq!(
            current.status,
            200,
            "{}",
            String::from_utf8_lossy(&current.body)
        );
        let current = current.json();
        assert_eq!(current["id"], first["id"]);
        for kind in ["who", "dcc"] {
            let hc1 = hc1_of(&current, kind);
            assert_ne!(hc1, hc1_of(first, kind), "signed anew");
            let with_new = support::hc1_verify(&[
                &hc1,
                "--cert",
                new_pem.to_str().unwrap(),
                "--strict",
                "--now",
            ]);
            assert_eq!(with_new["result"], "VALID", "{with_new:#}");
            let with_old =
                support::hc1_verify(&[&hc1, "--cert", old_pem.to_str().unwrap(), "--now"]);
            assert_ne!(with_old["result"], "VALID", "{with_old:#}");
            let claims_old = support::hc1_verify(&[&hc1_of(first, kind)]);
            let claims_new = support::hc1_verify(&[&hc1]);
            assert!(claims_new["claims"]["hcert"].is_object(), "{claims_new:#}");
            assert_eq!(
                claims_new["claims"]["hcert"], claims_old["claims"]["hcert"],
                "same content"
            );
        }
        // The previous version is superseded.
        for old in support::service::resources(first, "DocumentReference") {
            let id = old["id"].as_str().unwrap();
            let status = match fhir {
                Some(fhir) => fhir.get(&format!("DocumentReference/{id}")).1["status"].clone(),
                None => serde_json::from_slice::<Value>(
                    &std::fs::read(data_dir.join(format!("store/DocumentReference/{id}.json")))
                        .unwrap(),
                )
                .unwrap()["status"]
                    .clone(),
            };
            assert_eq!(status, "superseded");
        }
    }
}

#[test]
fn withdraw_and_reissue_on_the_local_store() {
    withdraw_and_reissue(Vec::new(), None, &withdraw_local);
}

#[test]
fn withdraw_and_reissue_on_hapi() {
    let fhir = support::service::FhirServer::start();
    withdraw_and_reissue(
        vec![("DDCC_FHIR_URL", fhir.base())],
        Some(&fhir),
        &withdraw_local,
    );
}

/// Vault: the withdrawal is the transit key's `min_encryption_version` (transit itself refuses to sign
/// below it, for every replica); finishing archives the version (`min_decryption_version`).
#[test]
fn withdraw_and_reissue_with_vault() {
    use ddcc_mediator::keys::{self, DevCa, DscSubject};
    const TRANSIT_KEY: &str = "ddcc-reissue";
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let bao = support::service::provisioned_openbao(&runtime, TRANSIT_KEY);
    let vault_env = vec![
        ("DDCC_SIGNER", "vault".to_owned()),
        ("VAULT_ADDR", bao.addr()),
        ("VAULT_TOKEN", support::openbao::ROOT_TOKEN.to_owned()),
        ("VAULT_TRANSIT_KEY", TRANSIT_KEY.to_owned()),
    ];
    let leaf = |version: u32| -> Vec<u8> {
        runtime.block_on(async {
            let key = bao
                .settings(TRANSIT_KEY)
                .transit()
                .await
                .unwrap()
                .read_key()
                .await
                .unwrap()
                .unwrap();
            key.certified_versions()
                .unwrap()
                .into_iter()
                .find(|c| c.version == version)
                .unwrap()
                .leaf()
                .to_vec()
        })
    };
    let withdraw_vault = |_: &Path| -> (Vec<u8>, Vec<u8>) {
        let old_dsc = leaf(1);
        // Without a newer certified version, nothing may be withdrawn.
        let old_kid = hex::encode(ddcc_mediator::signer::kid_of(&old_dsc));
        let (code, _, stderr) = cli(&["keys", "withdraw", &old_kid], &vault_env);
        assert_eq!(code, 3, "{stderr}");
        assert!(stderr.contains("rotate and certify"), "{stderr}");
        runtime.block_on(async {
            let transit = bao.settings(TRANSIT_KEY).transit().await.unwrap();
            assert_eq!(keys::rotate(&transit).await.unwrap(), 2);
            let subject = DscSubject {
                country: "XX".into(),
                organization: "DDCC Test Issuer".into(),
                common_name: "XX DDCC DSC reissue test v2".into(),
            };
            keys::dev_certify(&transit, &DevCa::default(), &subject, Some(2))
                .await
                .unwrap();
        });
        let (code, stdout, stderr) = cli(&["keys", "withdraw", &old_kid], &vault_env);
        assert_eq!((code, stdout.trim()), (0, "2"), "{stderr}");
        let (code, again, _) = cli(&["keys", "withdraw", &old_kid], &vault_env);
        assert_eq!(
            (code, again.trim()),
            (0, "2"),
            "withdrawing again changes nothing"
        );
        (old_dsc, leaf(2))
    };
    withdraw_and_reissue(vault_env.clone(), None, &withdraw_vault);
}

#[test]
fn reissue_without_a_withdrawn_key_changes_nothing_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let (code, stdout, stderr) = cli(
        &["reissue"],
        &[(
            "DDCC_DATA_DIR",
            dir.path().join("data").to_str().unwrap().to_owned(),
        )],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(stderr.contains("no withdrawn signing key"), "{stderr}");
    let summary: Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(
        (summary["scanned"].clone(), summary["complete"].clone()),
        (Value::from(0), Value::from(true))
    );
}
