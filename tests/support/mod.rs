//! Shared test support: where the reference data is, and the independent HC1 checker.
#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::Command;

pub mod keycloak;
pub mod oidc_double;
pub mod openbao;
pub mod service;

/// The team's reference data (`../shared` beside the repository; `DDCC_SHARED_DIR` overrides).
pub fn shared_dir() -> PathBuf {
    std::env::var_os("DDCC_SHARED_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
}

/// Runs the independent checker `shared/tools/hc1-verify/verify_hc1.py` and returns its JSON report.
/// Fails the test (never skips) when Python or the checker's packages are missing: `scripts/install-test-deps`
/// installs them.
pub fn hc1_verify(args: &[&str]) -> serde_json::Value {
    let script = shared_dir().join("tools/hc1-verify/verify_hc1.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run python3 {}: {e} (run scripts/install-test-deps)",
                script.display()
            )
        });
    let stdout = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&stdout).unwrap_or_else(|_| {
        panic!(
            "hc1-verify printed no JSON report (missing Python packages? run scripts/install-test-deps)\nstdout: {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// Sends the library's tracing output to the test's captured output (shown when a test fails).
pub fn init_logs() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "ddcc_mediator=debug".into()),
        )
        .with_test_writer()
        .try_init();
}
