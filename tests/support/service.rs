//! The real `ddcc-mediator serve` binary and the real test servers (FHIR engine, OpenHIM), each on free
//! 127.0.0.1 ports with bounded start-up waits, each killed when dropped.

#![allow(dead_code)] // each test binary uses a different part

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

/// A QuestionnaireResponse from the examples with another hcid (and optional changes by linkId).
pub fn event(hcid: &str, changes: &[(&str, Value)]) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/vaccination-event.json");
    let mut qr: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    set_answer(&mut qr, "hcid", serde_json::json!({"valueString": hcid}));
    for (link_id, answer) in changes {
        set_answer(&mut qr, link_id, answer.clone());
    }
    qr
}

fn set_answer(qr: &mut Value, link_id: &str, answer: Value) {
    fn walk(items: &mut Value, link_id: &str, answer: &Value) -> bool {
        for item in items.as_array_mut().into_iter().flatten() {
            if item["linkId"] == link_id {
                item["answer"] = serde_json::json!([answer]);
                return true;
            }
            if let Some(children) = item.get_mut("item") {
                if walk(children, link_id, answer) {
                    return true;
                }
            }
        }
        false
    }
    assert!(walk(&mut qr["item"], link_id, &answer), "no item {link_id}");
}

/// A batch Bundle of `POST QuestionnaireResponse/$generateHealthCertificate` entries.
pub fn batch(resources: Vec<Value>) -> Value {
    let entries: Vec<Value> = resources
        .into_iter()
        .map(|r| {
            serde_json::json!({
                "request": {"method": "POST", "url": "QuestionnaireResponse/$generateHealthCertificate"},
                "resource": r,
            })
        })
        .collect();
    serde_json::json!({"resourceType": "Bundle", "type": "batch", "entry": entries})
}

/// Runs `ddcc-mediator serve` with only `env` set (plus a free listen address and a data directory) and
/// returns its exit status and output, for a start that is expected to fail; fails the test when the service
/// is still running after `limit`.
pub fn serve_exits(env: &[(&str, &str)], limit: Duration) -> (std::process::ExitStatus, String) {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"));
    command
        .arg("serve")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("DDCC_LISTEN", format!("127.0.0.1:{}", free_port()))
        .env("DDCC_DATA_DIR", dir.path().join("data"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("ddcc-mediator serve");
    let deadline = Instant::now() + limit;
    while child.try_wait().expect("wait").is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "serve with {env:?} is still running after {limit:?}:\n{}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status, text)
}

/// A child process killed (and reaped) on drop, its output in a log file.
struct Proc {
    child: Option<Child>,
    log: PathBuf,
    name: &'static str,
}

impl Proc {
    fn spawn(name: &'static str, mut command: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).expect("log file");
        let child = command
            .stdin(Stdio::null())
            .stdout(file.try_clone().expect("log file"))
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        Proc {
            child: Some(child),
            log,
            name,
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child
            .as_mut()
            .and_then(|c| c.try_wait().ok().flatten())
    }

    /// Polls `ready` until it holds, the process exits, or `limit` passes.
    fn wait_until(&mut self, limit: Duration, mut ready: impl FnMut(&str) -> bool) {
        let deadline = Instant::now() + limit;
        loop {
            if ready(&self.log_text()) {
                return;
            }
            if let Some(status) = self.exited() {
                panic!(
                    "{} exited ({status}) before it was ready:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            if Instant::now() > deadline {
                panic!(
                    "{} not ready after {limit:?}:\n{}",
                    self.name,
                    self.log_text()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGTERM (so a launcher can stop its own children), then SIGKILL after `grace`.
    fn terminate(&mut self, grace: Duration) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.terminate(Duration::from_secs(10));
    }
}

/// Installs the Node test servers (OpenHIM core and its database) when their node_modules are missing;
/// fails the test with the reason otherwise (never skips).
pub fn ensure_node_servers() {
    // Tests of one binary run in parallel; one install at a time.
    static INSTALL: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one_at_a_time = INSTALL.lock().unwrap_or_else(|p| p.into_inner());
    let servers = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers");
    let needed = [
        servers.join("openhim/node_modules/openhim-core"),
        servers.join("openhim/mongo/node_modules"),
        servers.join("openhim/mongo/congodb"),
    ];
    if needed.iter().all(|p| p.exists()) {
        return;
    }
    let script = servers.join("install.sh");
    let out = Command::new(&script)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", script.display()));
    assert!(
        out.status.success() && needed.iter().all(|p| p.exists()),
        "the Node test servers are not installed and {} failed (needs node >= 20 and the npm registry):\n{}{}",
        script.display(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Builds the HAPI FHIR test server once per test process (tests/servers/hapi/build.sh: a no-op when the
/// sources did not change; offline from Maven's local repository after the first build).
fn ensure_hapi_built() {
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let result = BUILT.get_or_init(|| {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/hapi/build.sh");
        let out = Command::new(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed (needs Java 17 and Maven; run scripts/install-test-deps):\n{}{}",
                script.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    });
    if let Err(e) = result {
        panic!("{e}");
    }
}

/// A real HAPI FHIR JPA server (R4, H2 in memory: empty at every start), our own small launcher in
/// tests/servers/hapi. One per test, so that a test can count what it stored and stop the server.
pub struct FhirServer {
    proc: Proc,
    pub port: u16,
    _dir: tempfile::TempDir,
}

impl FhirServer {
    pub fn start() -> Self {
        Self::start_on(free_port())
    }

    /// On `port`, e.g. the port of a server the test stopped (a restart: the data is gone, H2 is in memory).
    pub fn start_on(port: u16) -> Self {
        Self::launch(port, false)
    }

    /// A server that validates every resource written against the R4 base definitions (HAPI's
    /// RequestValidatingInterceptor) and refuses invalid ones with 422.
    pub fn start_validating() -> Self {
        Self::launch(free_port(), true)
    }

    fn launch(port: u16, validate: bool) -> Self {
        ensure_hapi_built();
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/hapi/run.sh");
        let mut command = Command::new(script);
        command
            .env("HAPI_PORT", port.to_string())
            .env("HAPI_SKIP_BUILD", "1");
        if validate {
            command.env("HAPI_VALIDATE", "1");
        }
        let mut proc = Proc::spawn("HAPI FHIR", command, dir.path().join("hapi.log"));
        // A JVM starting Spring and Hibernate on two busy cores: bounded, but generously.
        proc.wait_until(Duration::from_secs(180), |log| {
            log.contains("HAPI FHIR ready")
        });
        FhirServer {
            proc,
            port,
            _dir: dir,
        }
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}/fhir", self.port)
    }

    pub fn stop(&mut self) {
        self.proc.kill();
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// A GET relative to the base, answered as JSON.
    pub fn get(&self, path: &str) -> (u16, Value) {
        let response = reqwest::blocking::Client::new()
            .get(format!("{}/{path}", self.base()))
            .header("Accept", "application/fhir+json")
            .send()
            .expect("FHIR server answers");
        let status = response.status().as_u16();
        (status, response.json().unwrap_or(Value::Null))
    }

    /// A DELETE relative to the base (as an operator might send by hand); the status.
    pub fn delete(&self, path: &str) -> u16 {
        reqwest::blocking::Client::new()
            .delete(format!("{}/{path}", self.base()))
            .send()
            .expect("FHIR server answers")
            .status()
            .as_u16()
    }

    /// How many resources of `resource_type` the server holds now (`_summary=count`).
    pub fn count(&self, resource_type: &str) -> usize {
        let (status, bundle) = self.get(&format!("{resource_type}?_summary=count"));
        assert_eq!(status, 200, "{bundle}");
        bundle["total"].as_u64().expect("a total") as usize
    }
}

/// A document Bundle as HAPI returns it (`stored`) holds what the service issued (`issued`): the same
/// identifier, tags, entries, fullUrls and references. HAPI's own additions (`meta.versionId`, `lastUpdated`,
/// `source`) are ignored, and so is one thing it drops: an entry resource's `id` when the entry's fullUrl is
/// `urn:uuid:<that id>` (HAPI takes the fullUrl as the id; hapi-fhir #5079), which the service restores
/// when it reads a document back.
pub fn assert_stored_as_issued(stored: &Value, issued: &Value) {
    let mut expected = issued.clone();
    for entry in expected["entry"].as_array_mut().expect("entries") {
        let id = entry["resource"]["id"]
            .as_str()
            .expect("an entry id")
            .to_owned();
        assert_eq!(entry["fullUrl"], format!("urn:uuid:{id}"));
        entry["resource"].as_object_mut().unwrap().remove("id");
    }
    assert_eq!(stored["entry"], expected["entry"], "the stored entries");
    assert_eq!(stored["identifier"], issued["identifier"]);
    assert_eq!(
        stored["meta"]["tag"], issued["meta"]["tag"],
        "the tags, none merged"
    );
    assert_eq!(stored["link"], issued["link"]);
    assert_eq!(stored["timestamp"], issued["timestamp"]);
}

/// OpenHIM core 4.0.5 on CongoDB, via tests/servers/openhim/run.mjs.
pub struct OpenHim {
    proc: Proc,
    pub api: String,
    pub router_http: String,
    _dir: tempfile::TempDir,
}

/// Seven free ports in a row, below Linux's ephemeral range (32768 and up): there, an outgoing connection
/// (OpenHIM's own to its database) can take one between this probe and OpenHIM's listen.
fn free_port_block() -> u16 {
    for _ in 0..200 {
        let base = 20_000 + (rand_u16() % 12_700);
        if (0..7).all(|i| TcpListener::bind(("127.0.0.1", base + i)).is_ok()) {
            return base;
        }
    }
    panic!("no block of 7 free ports");
}

fn rand_u16() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (nanos ^ std::process::id()) as u16
}

impl OpenHim {
    pub fn start() -> Self {
        ensure_node_servers();
        let dir = tempfile::tempdir().unwrap();
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/servers/openhim/run.mjs");
        let base = free_port_block();
        let mut command = Command::new("node");
        command
            .arg(script)
            .env("OPENHIM_PORT_BASE", base.to_string())
            .env("OPENHIM_LOG_DIR", dir.path().join("logs"));
        let mut proc = Proc::spawn("OpenHIM", command, dir.path().join("openhim.log"));
        proc.wait_until(Duration::from_secs(120), |log| {
            log.contains("OpenHIM ready")
        });
        let line = proc
            .log_text()
            .lines()
            .find(|l| l.contains("OpenHIM ready"))
            .map(str::to_owned)
            .unwrap_or_default();
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")))
                .map(str::to_owned)
                .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        };
        OpenHim {
            api: field("api"),
            router_http: field("router_http"),
            proc,
            _dir: dir,
        }
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }
}

/// An OpenBao dev server with transit key `key` (ECDSA P-256) certified by a dev CSCA.
pub fn provisioned_openbao(
    runtime: &tokio::runtime::Runtime,
    key: &str,
) -> super::openbao::OpenBao {
    use ddcc_mediator::keys::{self, DevCa, DscSubject};
    use ddcc_mediator::signer::vault::KeyType;
    runtime.block_on(async {
        let bao = super::openbao::OpenBao::start().await;
        let transit = bao.settings(key).transit().await.expect("connect");
        keys::init(&transit, KeyType::EcdsaP256)
            .await
            .expect("init");
        let subject = DscSubject {
            country: "XX".into(),
            organization: "DDCC Test Issuer".into(),
            common_name: "XX DDCC DSC service test".into(),
        };
        keys::dev_certify(&transit, &DevCa::default(), &subject, None)
            .await
            .expect("dev-certify");
        bao
    })
}

/// Not a setting: how [`Service::start_with_file_size_limit`] tells `start_in` its limit.
const FILE_SIZE_LIMIT: &str = "(file size limit)";

/// The service binary.
pub struct Service {
    proc: Proc,
    pub url: String,
    pub port: u16,
    pub data_dir: PathBuf,
    _dir: tempfile::TempDir,
}

impl Service {
    /// Starts `ddcc-mediator serve` with only `env` set (plus the listen address and the data directory,
    /// unless `env` sets them), waits until `/health/live` answers.
    pub fn start(env: &[(&str, String)]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        Self::start_in(dir, data_dir, free_port(), env, "http", None)
    }

    /// One replica of several: its own data directory, holding the `link_secret` all replicas share (as
    /// the chart mounts it), and `env` (signer, FHIR server, API keys: shared too).
    pub fn start_replica(env: &[(&str, String)], link_secret: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        std::fs::create_dir_all(&data_dir).unwrap();
        std::fs::write(data_dir.join("link-secret"), link_secret).unwrap();
        {
            use std::os::unix::fs::PermissionsExt as _;
            let file = data_dir.join("link-secret");
            std::fs::set_permissions(file, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        Self::start_in(dir, data_dir, free_port(), env, "http", None)
    }

    /// As [`Service::start`], with every file the service writes limited to `bytes` (`RLIMIT_FSIZE`, as on a
    /// full disk: a write past it fails, with `SIGXFSZ` ignored).
    pub fn start_with_file_size_limit(env: &[(&str, String)], bytes: u64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        let env: Vec<(&str, String)> = env
            .iter()
            .cloned()
            .chain([(FILE_SIZE_LIMIT, bytes.to_string())])
            .collect();
        Self::start_in(dir, data_dir, free_port(), &env, "http", None)
    }

    /// As [`Service::start`], serving HTTPS (the env sets DDCC_TLS_*); `client` trusts its certificate.
    pub fn start_https(env: &[(&str, String)], client: reqwest::blocking::Client) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("data");
        Self::start_in(dir, data_dir, free_port(), env, "https", Some(client))
    }

    fn start_in(
        dir: tempfile::TempDir,
        data_dir: PathBuf,
        port: u16,
        env: &[(&str, String)],
        scheme: &str,
        client: Option<reqwest::blocking::Client>,
    ) -> Self {
        let limit = env.iter().find(|(n, _)| *n == FILE_SIZE_LIMIT);
        let mut command = match limit {
            // `trap '' XFSZ` is inherited through exec: a write past the limit fails instead of killing.
            Some((_, bytes)) => {
                let mut c = Command::new("sh");
                c.arg("-c")
                    .arg("trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\"")
                    .arg(bytes)
                    .arg(env!("CARGO_BIN_EXE_ddcc-mediator"));
                c
            }
            None => Command::new(env!("CARGO_BIN_EXE_ddcc-mediator")),
        };
        command
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("RUST_LOG", "info,ddcc_mediator=debug")
            .env("DDCC_LISTEN", format!("127.0.0.1:{port}"))
            .env("DDCC_DATA_DIR", &data_dir)
            .current_dir(dir.path());
        for (name, value) in env.iter().filter(|(n, _)| *n != FILE_SIZE_LIMIT) {
            command.env(name, value);
        }
        let log = dir.path().join("service.log");
        let mut proc = Proc::spawn("ddcc-mediator serve", command, log);
        let url = format!("{scheme}://127.0.0.1:{port}");
        let live = format!("{url}/health/live");
        let http = client.unwrap_or_else(|| {
            reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(2))
                .build()
                .unwrap()
        });
        proc.wait_until(Duration::from_secs(30), |_| {
            http.get(&live)
                .send()
                .is_ok_and(|r| r.status().is_success())
        });
        Service {
            proc,
            url,
            port,
            data_dir,
            _dir: dir,
        }
    }

    pub fn log_text(&self) -> String {
        self.proc.log_text()
    }

    /// Stops the service as an orchestrator does (SIGTERM), waiting for it to exit; the log stays readable.
    pub fn stop(&mut self) {
        self.proc.terminate(Duration::from_secs(20));
    }

    /// Stops this service and starts it again, on the same data directory (plain HTTP), with `env`:
    /// e.g. a moved clock (`DDCC_TEST_CLOCK_OFFSET`).
    pub fn restart(mut self, env: &[(&str, String)]) -> Self {
        self.stop();
        let Service { data_dir, _dir, .. } = self;
        Self::start_in(_dir, data_dir, free_port(), env, "http", None)
    }

    /// The process id of the running service.
    pub fn pid(&self) -> Option<u32> {
        self.proc.child.as_ref().map(Child::id)
    }

    /// Resident memory of the service in KiB (`VmRSS` of /proc/<pid>/status).
    pub fn rss_kib(&self) -> u64 {
        let pid = self.pid().expect("the service runs");
        std::fs::read_to_string(format!("/proc/{pid}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("VmRSS:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
            .expect("VmRSS in /proc/<pid>/status")
    }

    /// Sends SIGTERM and waits up to `limit` for the process to exit; its exit status, if it exited.
    pub fn sigterm_and_wait(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let pid = self.pid()?;
        let _ = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status();
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(status) = self.proc.exited() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The generated API key (embedded defaults).
    pub fn api_key(&self) -> String {
        std::fs::read_to_string(self.data_dir.join("api-key"))
            .expect("the generated API key file")
            .trim()
            .to_owned()
    }

    pub fn post_json(&self, path: &str, key: Option<&str>, body: &Value) -> Response {
        self.post(
            path,
            key,
            "application/fhir+json",
            serde_json::to_vec(body).unwrap(),
        )
    }

    pub fn post(
        &self,
        path: &str,
        key: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        let mut request = client()
            .post(format!("{}{path}", self.url))
            .header("Content-Type", content_type)
            .body(body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Response::from(request.send().expect("the service answers"))
    }

    pub fn get(&self, path: &str, key: Option<&str>) -> Response {
        let mut request = client().get(format!("{}{path}", self.url));
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        Response::from(request.send().expect("the service answers"))
    }

    /// Files under the local store (`<data>/store/<Type>/`), excluding temp files.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        let root = self.data_dir.join("store");
        let mut out = Vec::new();
        for dir in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            if dir.file_name() == ".tmp" {
                continue;
            }
            for f in std::fs::read_dir(dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                out.push(f.path());
            }
        }
        out
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap()
}

/// A response read completely.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl From<reqwest::blocking::Response> for Response {
    fn from(r: reqwest::blocking::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let body = r.bytes().map(|b| b.to_vec()).unwrap_or_default();
        Response {
            status,
            headers,
            body,
        }
    }
}

impl Response {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "not JSON ({e}), status {}: {}",
                self.status,
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The diagnostics and expressions of an OperationOutcome body, as one string.
    pub fn outcome_text(&self) -> String {
        let json = self.json();
        assert_eq!(json["resourceType"], "OperationOutcome", "{json}");
        json["issue"].to_string()
    }
}

/// The resource entries of a document Bundle of one type.
pub fn resources<'a>(document: &'a Value, resource_type: &str) -> Vec<&'a Value> {
    document["entry"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| &e["resource"])
        .filter(|r| r["resourceType"] == resource_type)
        .collect()
}

/// The HC1 string of the QR DocumentReference of `kind` (`who`/`dcc`) in a document.
pub fn hc1_of(document: &Value, kind: &str) -> String {
    use base64::Engine as _;
    let reference = resources(document, "DocumentReference")
        .into_iter()
        .find(|r| r["type"]["coding"][0]["code"] == kind)
        .unwrap_or_else(|| panic!("no {kind} DocumentReference"));
    let png = reference["content"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["attachment"]["contentType"] == "image/png")
        .expect("a PNG slot")["attachment"]["data"]
        .as_str()
        .unwrap()
        .to_owned();
    let png = base64::engine::general_purpose::STANDARD
        .decode(png)
        .unwrap();
    decode_qr(&png)
}

/// Decodes a QR PNG with rqrr.
pub fn decode_qr(png: &[u8]) -> String {
    let image = image::load_from_memory(png).expect("a PNG").to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(image);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().expect("the QR decodes").1
}
