//! The restore drill of README "Backup and restore", for what runs on a development machine: certificates
//! issued by `ddcc-mediator serve` survive a backup, a wipe and a restore. Every old citizen link downloads
//! the same bytes, every old HC1 still verifies with `ddcc-mediator verify`, and the service issues again.
//!
//! - Local store and local keys: the data directory (store, keys, link secret, API key) is the whole state;
//!   backed up with `tar` while the service is stopped.
//! - The Vault signer on a real OpenBao with integrated (raft) storage, not the dev server of
//!   `support::openbao` (in memory, no raft): a snapshot through `GET /v1/sys/storage/raft/snapshot`, the data
//!   directory with `tar`; then both wiped. The restore goes into a newly initialised OpenBao with
//!   `POST /v1/sys/storage/raft/snapshot-force` (the snapshot comes from "another" cluster, as after losing
//!   the server); the restored node is restarted and unsealed with the *original* unseal key, after which the
//!   original tokens work again (checked here: the new node's own key no longer unseals it).
//!
//! The FHIR server's PostgreSQL and OpenHIM's MongoDB are not exercised (no PostgreSQL or MongoDB server can
//! be had on these machines); the README gives their commands.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::service::{batch, event, free_port, hc1_of, Service};

const PUBLIC_URL: &str = "https://certificates.example.org";

/// What a citizen and a verifier hold after issuance: the download links with their bytes, and the HC1s.
struct Issued {
    downloads: Vec<(String, Vec<u8>)>,
    hc1s: Vec<String>,
    /// The hcid of the first certificate.
    first_hcid: String,
}

/// Issues one certificate alone and two in a batch; downloads every citizen link.
fn issue_some(service: &Service, key: &str, prefix: &str) -> Issued {
    let mut documents = Vec::new();
    let single = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(key),
        &event(&format!("{prefix}-0001"), &[]),
    );
    assert_eq!(
        single.status,
        201,
        "{}",
        String::from_utf8_lossy(&single.body)
    );
    documents.push(single.json());
    let answer = service.post_json(
        "/ddcc/submitHealthEvent",
        Some(key),
        &batch(vec![
            event(&format!("{prefix}-0002"), &[]),
            event(&format!("{prefix}-0003"), &[]),
        ]),
    );
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    for entry in answer.json()["entry"].as_array().unwrap() {
        assert_eq!(entry["response"]["status"], "201 Created", "{entry}");
        documents.push(entry["resource"].clone());
    }
    let mut issued = Issued {
        downloads: Vec::new(),
        hc1s: Vec::new(),
        first_hcid: format!("{prefix}-0001"),
    };
    for document in &documents {
        issued.hc1s.push(hc1_of(document, "who"));
        issued.hc1s.push(hc1_of(document, "dcc"));
        let links = document["link"].as_array().expect("links");
        for link in links.iter().filter(|l| {
            matches!(
                l["relation"].as_str(),
                Some("certificate" | "ddcc-qr" | "dcc-qr")
            )
        }) {
            let url = link["url"].as_str().unwrap().to_owned();
            let got = download(service, &url);
            assert_eq!(got.0, 200, "{url}");
            issued.downloads.push((url, got.1));
        }
    }
    assert_eq!(
        issued.downloads.len(),
        9,
        "three files for each of three certificates"
    );
    issued
}

/// GET of a citizen link (under the public URL) from `service`.
fn download(service: &Service, url: &str) -> (u16, Vec<u8>) {
    let path = url
        .strip_prefix(PUBLIC_URL)
        .unwrap_or_else(|| panic!("{url} is not under {PUBLIC_URL}"));
    let r = service.get(path, None);
    (r.status, r.body)
}

/// After the restore: every old link gives the same bytes, every old HC1 verifies with the CLI, and a new
/// certificate can be issued with the old API key.
fn check_restored(service: &Service, key: &str, before: &Issued, trust: &[&str], cwd: &Path) {
    for (url, bytes) in &before.downloads {
        let (status, now) = download(service, url);
        assert_eq!(status, 200, "{url} after the restore");
        assert!(now == *bytes, "{url} gives other bytes after the restore");
    }
    for hc1 in &before.hc1s {
        let out = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
            .arg("verify")
            .arg(hc1)
            .args(trust)
            .current_dir(cwd)
            .env_remove("DDCC_KEY_DIR")
            .env_remove("DDCC_DATA_DIR")
            .output()
            .unwrap();
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "verify printed no report ({e}): {}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
        assert_eq!(
            out.status.code(),
            Some(0),
            "{report:#}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(report["valid"], true, "{report:#}");
    }
    let again = service.post_json(
        "/ddcc/generateHealthCertificate",
        Some(key),
        &event("RESTORED-AFTER-0001", &[]),
    );
    assert_eq!(
        again.status,
        201,
        "issuing after the restore: {}",
        String::from_utf8_lossy(&again.body)
    );
    // An event issued before the backup is found again, not issued twice.
    let old = service.post_json(
        "/ddcc/submitHealthEvent",
        Some(key),
        &batch(vec![event(&before.first_hcid, &[])]),
    );
    assert_eq!(old.json()["entry"][0]["response"]["status"], "200 OK");
}

fn tar(args: &[&str], cwd: &Path) {
    let status = Command::new("tar")
        .args(args)
        .current_dir(cwd)
        .status()
        .expect("tar runs");
    assert!(status.success(), "tar {args:?}");
}

#[test]
fn local_store_and_keys_survive_backup_wipe_and_restore() {
    let root = tempfile::tempdir().unwrap();
    let data = root.path().join("data");
    let env = [
        ("DDCC_DATA_DIR", data.display().to_string()),
        ("DDCC_PUBLIC_URL", PUBLIC_URL.to_owned()),
    ];
    let mut service = Service::start(&env);
    let key = read_key(&data);
    let before = issue_some(&service, &key, "DRILL-LOCAL");
    service.stop();

    // Back up (the service stopped), wipe, restore: README "Backup and restore".
    let backup = root.path().join("ddcc-data.tar.gz");
    tar(&["-czf", backup.to_str().unwrap(), "data"], root.path());
    std::fs::remove_dir_all(&data).unwrap();
    let wiped = Service::start(&env);
    let fresh_key = read_key(&data);
    assert_ne!(fresh_key, key, "a wiped data directory has new secrets");
    let (status, _) = download(&wiped, &before.downloads[0].0);
    assert_eq!(status, 404, "after the wipe the old links are gone");
    drop(wiped);
    std::fs::remove_dir_all(&data).unwrap();
    tar(&["-xzf", backup.to_str().unwrap()], root.path());

    let service = Service::start(&env);
    assert_eq!(read_key(&data), key, "the API key is restored");
    // Trusted DSC: found by `verify` itself in ./data/keys (the directory serve made), with no flag.
    check_restored(&service, &key, &before, &[], root.path());
    let keys = data.join("keys");
    check_restored_hc1s_with(&before, &["--key-dir", keys.to_str().unwrap()]);
}

fn check_restored_hc1s_with(before: &Issued, trust: &[&str]) {
    for hc1 in &before.hc1s {
        let out = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
            .arg("verify")
            .arg(hc1)
            .args(trust)
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
    }
}

fn read_key(data: &Path) -> String {
    std::fs::read_to_string(data.join("api-key"))
        .expect("the generated API key")
        .trim()
        .to_owned()
}

// ---------------------------------------------------------------------------------------------------------
// OpenBao with integrated storage

/// A real OpenBao server with raft storage in `dir`, on 127.0.0.1 (API `port`, cluster `port + 1`).
struct RaftBao {
    child: Option<Child>,
    port: u16,
    dir: PathBuf,
}

impl RaftBao {
    fn start(dir: &Path, port: u16) -> Self {
        std::fs::create_dir_all(dir.join("raft")).unwrap();
        let config = dir.join("openbao.hcl");
        std::fs::write(
            &config,
            format!(
                "storage \"raft\" {{\n  path = \"{raft}\"\n  node_id = \"drill\"\n}}\n\
                 listener \"tcp\" {{\n  address = \"127.0.0.1:{port}\"\n  tls_disable = true\n}}\n\
                 api_addr = \"http://127.0.0.1:{port}\"\ncluster_addr = \"http://127.0.0.1:{cluster}\"\n",
                raft = dir.join("raft").display(),
                cluster = port + 1,
            ),
        )
        .unwrap();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("bao.log"))
            .unwrap();
        let child = Command::new(support::openbao::bao_binary())
            .arg("server")
            .arg(format!("-config={}", config.display()))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("bao starts");
        let bao = RaftBao {
            child: Some(child),
            port,
            dir: dir.to_owned(),
        };
        // Any answer: 501 not initialised, 503 sealed, 200 active.
        bao.wait("the API answers", |status| status > 0);
        bao
    }

    fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn health(&self) -> u16 {
        reqwest::blocking::Client::new()
            .get(format!("{}/v1/sys/health", self.addr()))
            .timeout(Duration::from_secs(2))
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    fn wait(&self, what: &str, ok: impl Fn(u16) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = self.health();
            if ok(status) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "OpenBao: {what} did not happen (health {status}):\n{}",
                std::fs::read_to_string(self.dir.join("bao.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::blocking::RequestBuilder {
        let mut request = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap()
            .request(method, format!("{}/v1/{path}", self.addr()));
        if let Some(token) = token {
            request = request.header("X-Vault-Token", token);
        }
        request
    }

    /// Initialises with one key share: (unseal key, root token).
    fn init(&self) -> (String, String) {
        let answer: Value = self
            .call(reqwest::Method::PUT, "sys/init", None)
            .json(&json!({"secret_shares": 1, "secret_threshold": 1}))
            .send()
            .unwrap()
            .json()
            .unwrap();
        (
            answer["keys_base64"][0].as_str().unwrap().to_owned(),
            answer["root_token"].as_str().unwrap().to_owned(),
        )
    }

    fn unseal(&self, key: &str) -> (u16, String) {
        let r = self
            .call(reqwest::Method::PUT, "sys/unseal", None)
            .json(&json!({"key": key}))
            .send()
            .unwrap();
        (r.status().as_u16(), r.text().unwrap_or_default())
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for RaftBao {
    fn drop(&mut self) {
        self.stop();
    }
}

#[test]
fn vault_signer_survives_a_raft_snapshot_restore() {
    let root = tempfile::tempdir().unwrap();
    let bao_dir = root.path().join("openbao");
    let port = free_port_pair();
    let mut bao = RaftBao::start(&bao_dir, port);
    let (unseal_key, root_token) = bao.init();
    assert_eq!(bao.unseal(&unseal_key).0, 200);
    bao.wait("becoming active", |s| s == 200);

    // The transit key and its DSC, as `keys init` and `keys dev-certify` make them.
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        use ddcc_mediator::keys::{self, DevCa, DscSubject};
        let mut settings =
            ddcc_mediator::signer::vault::VaultSettings::with_token(bao.addr(), root_token.clone());
        settings.key_name = "ddcc-drill".into();
        let transit = settings.transit().await.expect("transit");
        keys::init(&transit, ddcc_mediator::signer::vault::KeyType::EcdsaP256)
            .await
            .expect("keys init");
        let subject = DscSubject {
            country: "XX".into(),
            organization: "DDCC Drill Issuer".into(),
            common_name: "XX DDCC DSC restore drill".into(),
        };
        keys::dev_certify(&transit, &DevCa::default(), &subject, None)
            .await
            .expect("dev-certify");
    });

    let data = root.path().join("data");
    let addr = bao.addr();
    let env = |token: &str| {
        vec![
            ("DDCC_DATA_DIR", data.display().to_string()),
            ("DDCC_PUBLIC_URL", PUBLIC_URL.to_owned()),
            ("DDCC_SIGNER", "vault".to_owned()),
            ("VAULT_ADDR", addr.clone()),
            ("VAULT_TOKEN", token.to_owned()),
            ("VAULT_TRANSIT_KEY", "ddcc-drill".to_owned()),
        ]
    };
    let mut service = Service::start(&env(&root_token));
    let key = read_key(&data);
    let before = issue_some(&service, &key, "DRILL-VAULT");
    let dsc_before = service.get("/trust/dsc.pem", None).body;
    service.stop();

    // Back up: the raft snapshot (a running server; any token allowed to read sys/storage/raft/snapshot)
    // and the data directory (link secret, API key, the local store).
    let snapshot = bao
        .call(
            reqwest::Method::GET,
            "sys/storage/raft/snapshot",
            Some(&root_token),
        )
        .send()
        .unwrap();
    assert_eq!(snapshot.status().as_u16(), 200);
    let snapshot = snapshot.bytes().unwrap().to_vec();
    assert!(
        snapshot.len() > 1000,
        "a snapshot of {} bytes",
        snapshot.len()
    );
    let backup = root.path().join("ddcc-data.tar.gz");
    tar(&["-czf", backup.to_str().unwrap(), "data"], root.path());

    // Wipe: the OpenBao server and its storage, the data directory.
    bao.stop();
    std::fs::remove_dir_all(&bao_dir).unwrap();
    std::fs::remove_dir_all(&data).unwrap();

    // Restore OpenBao: a new node, initialised (its own key and token), then the snapshot forced in.
    let mut bao = RaftBao::start(&bao_dir, port);
    let (new_unseal_key, new_root_token) = bao.init();
    assert_eq!(bao.unseal(&new_unseal_key).0, 200);
    bao.wait("becoming active", |s| s == 200);
    let restored = bao
        .call(
            reqwest::Method::POST,
            "sys/storage/raft/snapshot-force",
            Some(&new_root_token),
        )
        .body(snapshot)
        .send()
        .unwrap();
    assert_eq!(
        restored.status().as_u16(),
        204,
        "{}",
        restored.text().unwrap_or_default()
    );
    // The restored keyring is the old cluster's: restart, and unseal with the ORIGINAL key.
    bao.stop();
    let bao = RaftBao::start(&bao_dir, port);
    bao.wait("sealed after the restart", |s| s == 503);
    let (status, text) = bao.unseal(&new_unseal_key);
    assert_eq!(
        status, 400,
        "the new node's own key no longer unseals the restored data: {text}"
    );
    assert_eq!(bao.unseal(&unseal_key).0, 200);
    bao.wait("becoming active", |s| s == 200);

    // Restore the data directory; the service runs with the ORIGINAL token.
    tar(&["-xzf", backup.to_str().unwrap()], root.path());
    let service = Service::start(&env(&root_token));
    let dsc_after = service.get("/trust/dsc.pem", None).body;
    assert_eq!(
        dsc_after, dsc_before,
        "the published DSC is the one from before"
    );
    let dsc = root.path().join("dsc.pem");
    std::fs::write(&dsc, &dsc_after).unwrap();
    check_restored(
        &service,
        &key,
        &before,
        &["--cert", dsc.to_str().unwrap()],
        root.path(),
    );
}

/// A free port whose successor is free too (OpenBao's cluster port).
fn free_port_pair() -> u16 {
    for _ in 0..100 {
        let port = free_port();
        if port < u16::MAX && std::net::TcpListener::bind(("127.0.0.1", port + 1)).is_ok() {
            return port;
        }
    }
    panic!("no two free ports in a row");
}
