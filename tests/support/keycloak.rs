//! A real Keycloak for the OIDC tests: the `org.keycloak:keycloak-quarkus-dist` distribution that
//! `scripts/install-keycloak` (run by `scripts/install-test-deps`) unpacks into
//! `~/.cache/ddcc-mediator/keycloak-<VERSION>/`, started in dev mode on 127.0.0.1 and a free port with
//! `--hostname=http://127.0.0.1:<port>` (so `iss` does not follow the Host header) and `--import-realm`, the
//! realm being the one we ship, `deploy/keycloak/ddcc-realm.json`.
//!
//! Each start runs in its own temporary directory: a hard-linked copy of the distribution (Keycloak keeps its
//! H2 database and imports under its home), the realm file, and `keycloak.log`, whose tail is printed when a
//! test fails ([`Keycloak::show_log_on_failure`]) or when the start fails or takes longer than
//! `DDCC_KEYCLOAK_START_TIMEOUT` seconds (default 300: a cold JVM on two busy cores). Keycloak runs under a
//! small shell watchdog in a process group of its own: the group is stopped (SIGTERM, then SIGKILL) and the
//! directory removed when the [`Keycloak`] is dropped, and also when the test process exits or dies, which is
//! how the one Keycloak a test binary shares ([`shared`]) is stopped.
//!
//! Set `DDCC_KEYCLOAK_HOME` (a distribution) and `DDCC_KEYCLOAK_JAVA_HOME` (a JDK 21+) to use others.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

/// The Keycloak version: the same in `scripts/install-keycloak` and `docker-compose.yml`.
pub const VERSION: &str = "26.4.7";
/// The realm we ship, relative to the repository.
pub const REALM_FILE: &str = "deploy/keycloak/ddcc-realm.json";
/// The realm of the file, the mediator's client (the tokens' audience) and the issuing role.
pub const REALM: &str = "ddcc";
pub const AUDIENCE: &str = "ddcc-mediator";
pub const ROLE: &str = "ddcc:issue";
/// The clients of the realm file: with the role and the audience mapper; without the role; without the mapper.
pub const ISSUER_CLIENT: &str = "facility-issuer";
pub const NO_ROLE_CLIENT: &str = "facility-no-role";
pub const NO_AUDIENCE_CLIENT: &str = "facility-no-audience";

const ADMIN: &str = "admin";

/// Runs Keycloak (`"$@"`) in the background and stops its process group when the test process (`$1`) is gone,
/// Keycloak exited, or the file `$2/stop` appears; then removes `$2` (unless DDCC_KEEP_KEYCLOAK is set).
const WATCHDOG: &str = r#"
owner="$1"; dir="$2"; shift 2
"$@" &
kc=$!
trap '' TERM
while kill -0 "$owner" 2>/dev/null && kill -0 "$kc" 2>/dev/null && [ ! -e "$dir/stop" ]; do sleep 0.5; done
kill -TERM -- "-$$" 2>/dev/null
i=0
while kill -0 "$kc" 2>/dev/null && [ "$i" -lt 40 ]; do sleep 0.5; i=$((i + 1)); done
for p in $(pgrep -g "$$"); do [ "$p" = "$$" ] || kill -KILL "$p" 2>/dev/null; done
[ -n "$DDCC_KEEP_KEYCLOAK" ] || rm -rf "$dir"
"#;

pub struct Keycloak {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    pub port: u16,
    /// Time from launch until the realm's discovery document answered.
    pub started_in: Duration,
    admin_password: String,
    dir: PathBuf,
    log: PathBuf,
    watchdog: Option<Child>,
    http: reqwest::blocking::Client,
}

/// The Keycloak this test binary shares, started on first use; stopped when the process exits. A failed
/// start fails every test that asks for it, with the same message.
pub fn shared() -> &'static Keycloak {
    static SHARED: OnceLock<Result<Keycloak, String>> = OnceLock::new();
    match SHARED.get_or_init(Keycloak::try_start) {
        Ok(keycloak) => keycloak,
        Err(message) => panic!("{message}"),
    }
}

/// The installed distribution and the JDK it runs on, or a failure telling how to install them.
fn installation() -> Result<(PathBuf, PathBuf), String> {
    let home = std::env::var_os("DDCC_KEYCLOAK_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let cache = std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache")))
                .unwrap_or_else(|| PathBuf::from(".cache"));
            cache.join(format!("ddcc-mediator/keycloak-{VERSION}"))
        });
    if !home.join("bin/kc.sh").is_file() {
        return Err(format!(
            "Keycloak {VERSION} is not installed in {}: run scripts/install-test-deps (or scripts/install-keycloak)",
            home.display()
        ));
    }
    let java_home = match std::env::var_os("DDCC_KEYCLOAK_JAVA_HOME") {
        Some(j) => PathBuf::from(j),
        None => std::fs::read_to_string(home.join(".java-home"))
            .map(|t| PathBuf::from(t.trim()))
            .map_err(|e| {
                format!(
                    "{}/.java-home: {e}: run scripts/install-keycloak, or set DDCC_KEYCLOAK_JAVA_HOME to a JDK 21+",
                    home.display()
                )
            })?,
    };
    if !java_home.join("bin/java").is_file() {
        return Err(format!(
            "no java in {} (Keycloak needs a JDK 21+): run scripts/install-keycloak",
            java_home.display()
        ));
    }
    Ok((home, java_home))
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

impl Keycloak {
    /// Starts a Keycloak of its own (stopped when dropped); see [`shared`] for the usual case.
    pub fn start() -> Self {
        Self::try_start().unwrap_or_else(|m| panic!("{m}"))
    }

    fn try_start() -> Result<Self, String> {
        let (home, java_home) = installation()?;
        let dir = tempfile::Builder::new()
            .prefix("ddcc-keycloak-")
            .tempdir()
            .map_err(|e| format!("temp dir: {e}"))?
            .keep();
        let kc = dir.join("keycloak");
        // A hard-linked copy (instant, no space); a plain copy across file systems.
        let copied = Command::new("cp").arg("-al").arg(&home).arg(&kc).status();
        if !copied.is_ok_and(|s| s.success()) {
            let _ = std::fs::remove_dir_all(&kc);
            let status = Command::new("cp").arg("-a").arg(&home).arg(&kc).status();
            if !status.is_ok_and(|s| s.success()) {
                return Err(format!(
                    "cannot copy {} to {}",
                    home.display(),
                    kc.display()
                ));
            }
        }
        // A stale database of the distribution (never there when installed by the script) is not ours.
        let _ = std::fs::remove_dir_all(kc.join("data"));
        let import = kc.join("data/import");
        std::fs::create_dir_all(&import).map_err(|e| format!("{}: {e}", import.display()))?;
        let realm_file = Path::new(env!("CARGO_MANIFEST_DIR")).join(REALM_FILE);
        std::fs::copy(&realm_file, import.join("ddcc-realm.json"))
            .map_err(|e| format!("{}: {e}", realm_file.display()))?;

        let port = super::service::free_port();
        let base = format!("http://127.0.0.1:{port}");
        let admin_password = hex::encode(rand::random::<[u8; 12]>());
        let log = dir.join("keycloak.log");
        let log_file = std::fs::File::create(&log).map_err(|e| format!("log file: {e}"))?;
        let mut command = Command::new("sh");
        command
            .arg("-c")
            .arg(WATCHDOG)
            .arg("keycloak-watchdog")
            .arg(std::process::id().to_string())
            .arg(&dir)
            .arg(kc.join("bin/kc.sh"))
            .arg("start-dev")
            .arg("--http-host=127.0.0.1")
            .arg(format!("--http-port={port}"))
            .arg(format!("--hostname={base}"))
            .arg("--import-realm")
            .env("JAVA_HOME", &java_home)
            .env("KC_BOOTSTRAP_ADMIN_USERNAME", ADMIN)
            .env("KC_BOOTSTRAP_ADMIN_PASSWORD", &admin_password)
            // Only what the distribution's scripts read: no KC_* of the caller leaks in.
            .env_remove("KC_DB")
            .env_remove("KC_HOSTNAME")
            .env_remove("JAVA_OPTS")
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
            .stderr(log_file);
        {
            use std::os::unix::process::CommandExt as _;
            command.process_group(0);
        }
        let launched = Instant::now();
        let watchdog = command
            .spawn()
            .map_err(|e| format!("cannot start Keycloak: {e}"))?;
        let mut keycloak = Keycloak {
            base,
            port,
            started_in: Duration::ZERO,
            admin_password,
            dir,
            log,
            watchdog: Some(watchdog),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()
                .map_err(|e| e.to_string())?,
        };
        let limit = Duration::from_secs(
            std::env::var("DDCC_KEYCLOAK_START_TIMEOUT")
                .ok()
                .and_then(|s| s.parse().ok())
                .unwrap_or(300),
        );
        let discovery = format!(
            "{}/.well-known/openid-configuration",
            keycloak.issuer(REALM)
        );
        loop {
            let ready = keycloak
                .http
                .get(&discovery)
                .timeout(Duration::from_secs(5))
                .send()
                .is_ok_and(|r| r.status().is_success());
            if ready {
                keycloak.started_in = launched.elapsed();
                eprintln!(
                    "Keycloak {VERSION} ready on {} after {:.1} s (log: {})",
                    keycloak.base,
                    keycloak.started_in.as_secs_f64(),
                    keycloak.log.display()
                );
                return Ok(keycloak);
            }
            let exited = keycloak
                .watchdog
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if let Some(status) = exited {
                return Err(format!(
                    "Keycloak exited ({status}) before it was ready; its log:\n{}",
                    tail(&keycloak.log_text(), 150)
                ));
            }
            if launched.elapsed() > limit {
                return Err(format!(
                    "Keycloak not ready after {limit:?} (DDCC_KEYCLOAK_START_TIMEOUT); its log:\n{}",
                    tail(&keycloak.log_text(), 150)
                ));
            }
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// The issuer URL of `realm`, as in its tokens' `iss`.
    pub fn issuer(&self, realm: &str) -> String {
        format!("{}/realms/{realm}", self.base)
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Prints the tail of Keycloak's log if the test fails while the guard lives.
    pub fn show_log_on_failure(&self) -> LogOnFailure<'_> {
        LogOnFailure(self)
    }

    /// Resident memory of the Keycloak process group, KiB (the JVM, the launcher scripts).
    pub fn rss_kib(&self) -> u64 {
        let Some(pgid) = self.watchdog.as_ref().map(Child::id) else {
            return 0;
        };
        let mut total = 0;
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
            // pid (comm) state ppid pgrp …: the fields after the last ')'.
            let group = stat
                .rsplit_once(')')
                .and_then(|(_, rest)| rest.split_whitespace().nth(2))
                .and_then(|g| g.parse::<u32>().ok());
            if group != Some(pgid) {
                continue;
            }
            let status = std::fs::read_to_string(entry.path().join("status")).unwrap_or_default();
            total += status
                .lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
        total
    }

    /// The secret of a client of the realm file.
    pub fn client_secret(client_id: &str) -> String {
        realm_representation()["clients"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["clientId"] == client_id)
            .and_then(|c| c["secret"].as_str())
            .unwrap_or_else(|| panic!("no client {client_id} with a secret in {REALM_FILE}"))
            .to_owned()
    }

    /// The token endpoint's answer to a client-credentials grant (`extra`: more form fields, e.g. scope).
    pub fn token_response(&self, realm: &str, client_id: &str, extra: &[(&str, &str)]) -> Value {
        let secret = Self::client_secret(client_id);
        let mut form = vec![
            ("grant_type", "client_credentials"),
            ("client_id", client_id),
            ("client_secret", secret.as_str()),
        ];
        form.extend_from_slice(extra);
        let r = self
            .http
            .post(format!(
                "{}/protocol/openid-connect/token",
                self.issuer(realm)
            ))
            .form(&form)
            .send()
            .expect("Keycloak's token endpoint");
        let status = r.status();
        let body: Value = r.json().unwrap_or(Value::Null);
        assert!(
            status.is_success(),
            "token for {client_id} in {realm}: {status} {body}"
        );
        body
    }

    /// A client-credentials access token of `client_id` (a client of the realm file) in `realm`.
    pub fn token(&self, realm: &str, client_id: &str) -> String {
        self.token_response(realm, client_id, &[])["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned()
    }

    fn admin_token(&self) -> String {
        let r = self
            .http
            .post(format!(
                "{}/realms/master/protocol/openid-connect/token",
                self.base
            ))
            .form(&[
                ("grant_type", "password"),
                ("client_id", "admin-cli"),
                ("username", ADMIN),
                ("password", self.admin_password.as_str()),
            ])
            .send()
            .expect("Keycloak's master realm");
        let body: Value = r.json().expect("admin token JSON");
        body["access_token"]
            .as_str()
            .unwrap_or_else(|| panic!("no admin token: {body}"))
            .to_owned()
    }

    /// An admin REST API call (`path` under `/admin/realms`); panics unless 2xx. Returns the JSON body, or
    /// the `Location` header as a string for a 201 without a body.
    pub fn admin(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Value {
        let mut request = self
            .http
            .request(method.clone(), format!("{}/admin/realms{path}", self.base))
            .bearer_auth(self.admin_token());
        if let Some(body) = body {
            request = request.json(body);
        }
        let r = request.send().expect("Keycloak's admin API");
        let status = r.status();
        let location = r
            .headers()
            .get("location")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let text = r.text().unwrap_or_default();
        assert!(
            status.is_success(),
            "{method} /admin/realms{path}: {status} {text}"
        );
        if text.trim().is_empty() {
            location.map(Value::String).unwrap_or(Value::Null)
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        }
    }

    /// Imports the realm file as realm `name` (its default roles renamed accordingly), changed by `change`.
    pub fn create_realm(&self, name: &str, change: impl FnOnce(&mut Value)) {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(REALM_FILE))
            .expect("the realm file")
            .replace("default-roles-ddcc", &format!("default-roles-{name}"));
        let mut realm: Value = serde_json::from_str(&text).expect("realm JSON");
        realm["realm"] = json!(name);
        change(&mut realm);
        self.admin(reqwest::Method::POST, "", Some(&realm));
    }

    /// The key provider components of `realm`.
    pub fn key_providers(&self, realm: &str) -> Vec<Value> {
        self.admin(
            reqwest::Method::GET,
            &format!("/{realm}/components?type=org.keycloak.keys.KeyProvider"),
            None,
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
    }

    /// The realm's published JWKS.
    pub fn jwks(&self, realm: &str) -> Value {
        self.http
            .get(format!(
                "{}/protocol/openid-connect/certs",
                self.issuer(realm)
            ))
            .send()
            .and_then(|r| r.json())
            .expect("the realm's JWKS")
    }

    fn stop(&mut self) {
        let Some(mut watchdog) = self.watchdog.take() else {
            return;
        };
        let _ = std::fs::write(self.dir.join("stop"), b"");
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = watchdog.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", watchdog.id())])
            .status();
        let _ = watchdog.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Drop for Keycloak {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct LogOnFailure<'a>(&'a Keycloak);

impl Drop for LogOnFailure<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- Keycloak log ({}), last 80 lines ---\n{}",
                self.0.log.display(),
                tail(&self.0.log_text(), 80)
            );
        }
    }
}

/// The realm file as JSON.
pub fn realm_representation() -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(REALM_FILE);
    serde_json::from_slice(&std::fs::read(&path).expect("the realm file")).expect("realm JSON")
}

/// The claims of a JWT, unverified (for assertions).
pub fn claims_of(token: &str) -> Value {
    use base64::Engine as _;
    let payload = token.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .expect("base64url"),
    )
    .expect("JSON claims")
}

/// The protected header of a JWT.
pub fn header_of(token: &str) -> Value {
    use base64::Engine as _;
    let header = token.split('.').next().expect("a JWT");
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(header)
            .expect("base64url"),
    )
    .expect("JSON header")
}
