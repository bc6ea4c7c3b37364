//! The CLI contract, exercised as a user would: the real binary, real files, and the independent checker.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

fn ddcc(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(args)
        .output()
        .expect("the binary runs")
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .display()
        .to_string()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

struct Workspace {
    _dir: tempfile::TempDir,
    out: PathBuf,
    keys: PathBuf,
}

fn workspace() -> Workspace {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let keys = dir.path().join("keys");
    Workspace {
        _dir: dir,
        out,
        keys,
    }
}

impl Workspace {
    fn issue(&self, input: &str, extra: &[&str]) -> Output {
        let mut args = vec![
            "issue",
            input,
            "--out",
            self.out.to_str().unwrap(),
            "--key-dir",
            self.keys.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        ddcc(&args)
    }

    /// The DSC as PEM, through the CLI (`keys export`), the way a verifier would get it.
    fn dsc_pem(&self) -> PathBuf {
        let out = ddcc(&[
            "keys",
            "export",
            "--key-dir",
            self.keys.to_str().unwrap(),
            "--format",
            "pem",
        ]);
        assert!(
            out.status.success(),
            "keys export failed: {}",
            text(&out.stderr)
        );
        let pem = self.keys.parent().unwrap().join("dsc-export.pem");
        std::fs::write(&pem, &out.stdout).unwrap();
        pem
    }
}

fn verify_json(args: &[&str]) -> (i32, Value) {
    let out = ddcc(args);
    let json = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "verify printed no JSON ({e}): {}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), json)
}

#[test]
fn issue_writes_every_artefact_and_an_independent_checker_accepts_them() {
    let ws = workspace();
    let out = ws.issue(&example("vaccination-event.json"), &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert_eq!(
        stdout.lines().count(),
        1,
        "one summary line per certificate: {stdout}"
    );
    assert!(stdout.contains("hcid=EXAMPLE-HCID-0001"), "{stdout}");
    assert!(
        !stdout.contains("Zoë"),
        "the summary must not name the holder: {stdout}"
    );

    for file in [
        "document-bundle.json",
        "certificate.pdf",
        "ddcc.hc1",
        "ddcc-qr.png",
        "ddcc-qr.svg",
        "dcc.hc1",
        "dcc-qr.png",
    ] {
        assert!(ws.out.join(file).is_file(), "{file} missing");
    }
    let bundle: Value =
        serde_json::from_slice(&std::fs::read(ws.out.join("document-bundle.json")).unwrap())
            .unwrap();
    assert_eq!(bundle["resourceType"], "Bundle");
    assert_eq!(bundle["type"], "document");

    let dsc = ws.dsc_pem();
    let dsc = dsc.to_str().unwrap();
    let ddcc_hc1 = format!("@{}", ws.out.join("ddcc.hc1").display());
    let report = support::hc1_verify(&[
        &ddcc_hc1,
        "--cert",
        dsc,
        "--strict",
        "--now",
        "--hcert-key",
        "3",
    ]);
    assert_eq!(report["result"], "VALID", "{report:#}");
    assert_eq!(report["alg"], "ES256");

    // The QR image carries the same payload.
    let png = ws.out.join("ddcc-qr.png");
    let report = support::hc1_verify(&[png.to_str().unwrap(), "--cert", dsc, "--strict", "--now"]);
    assert_eq!(report["result"], "VALID", "{report:#}");
    assert_eq!(
        report["hc1"].as_str(),
        Some(
            std::fs::read_to_string(ws.out.join("ddcc.hc1"))
                .unwrap()
                .trim()
        )
    );

    // So does the citizen PDF, read from a 300 dpi rendering of the page.
    let pdf = ws.out.join("certificate.pdf");
    let report = support::hc1_verify(&[pdf.to_str().unwrap(), "--cert", dsc, "--strict", "--now"]);
    assert_eq!(report["result"], "VALID", "{report:#}");

    // The EU DCC passes the EU schema and value sets.
    let shared = support::shared_dir();
    let schema = shared.join("vectors/schema/eu-dcc-schema-1.3.3/DCC.combined-schema.json");
    let valuesets = shared.join("vectors/schema/eu-dcc-valuesets");
    let dcc_hc1 = format!("@{}", ws.out.join("dcc.hc1").display());
    let report = support::hc1_verify(&[
        &dcc_hc1,
        "--cert",
        dsc,
        "--strict",
        "--now",
        "--schema",
        schema.to_str().unwrap(),
        "--valuesets",
        valuesets.to_str().unwrap(),
        "--keyusage",
    ]);
    assert_eq!(report["result"], "VALID", "{report:#}");
}

#[test]
fn verify_reports_valid_certificates_from_string_file_and_png() {
    let ws = workspace();
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let hc1 = std::fs::read_to_string(ws.out.join("ddcc.hc1")).unwrap();
    let keys = ws.keys.to_str().unwrap();
    for input in [
        hc1.trim().to_string(),
        ws.out.join("ddcc.hc1").display().to_string(),
        ws.out.join("ddcc-qr.png").display().to_string(),
    ] {
        let (code, report) = verify_json(&["verify", &input, "--key-dir", keys]);
        assert_eq!(code, 0, "{report:#}");
        assert_eq!(report["valid"], true);
        assert_eq!(report["alg"], "ES256");
        assert_eq!(
            report["kid"].as_str().map(str::len),
            Some(16),
            "kid is 8 bytes in hex: {report:#}"
        );
        assert_eq!(report["iss"], "CH");
        assert!(report["exp"].as_i64() > report["iat"].as_i64());
        assert_eq!(report["payloads"]["3"]["name"], "Zoë Ångström-Durand");
    }
}

#[test]
fn verify_rejects_tampering_expiry_and_garbage_with_distinct_exit_codes() {
    let ws = workspace();
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let keys = ws.keys.to_str().unwrap();
    let hc1 = std::fs::read_to_string(ws.out.join("ddcc.hc1"))
        .unwrap()
        .trim()
        .to_string();

    let (code, report) = verify_json(&[
        "verify",
        &hc1,
        "--key-dir",
        keys,
        "--at",
        "2099-01-01T00:00:00Z",
    ]);
    assert_eq!(
        (code, &report["valid"]),
        (1, &Value::Bool(false)),
        "expired: {report:#}"
    );

    // Re-sign nothing, flip one payload character: base45 still decodes but the bytes change.
    let mut tampered: Vec<char> = hc1.chars().collect();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == '0' { '1' } else { '0' };
    let tampered: String = tampered.into_iter().collect();
    let (code, report) = verify_json(&["verify", &tampered, "--key-dir", keys]);
    assert_ne!(code, 0, "{report:#}");
    assert_eq!(report["valid"], false);

    let (code, report) = verify_json(&["verify", "HC1:not base45 at all!", "--key-dir", keys]);
    assert_eq!(
        (code, &report["valid"]),
        (2, &Value::Bool(false)),
        "{report:#}"
    );

    // A certificate from another key: a fresh key directory has another DSC.
    let other = workspace();
    assert!(other
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let (code, report) = verify_json(&["verify", &hc1, "--key-dir", other.keys.to_str().unwrap()]);
    assert_eq!(
        (code, &report["valid"]),
        (1, &Value::Bool(false)),
        "{report:#}"
    );
}

#[test]
fn invalid_input_reports_every_fault_and_writes_nothing() {
    let ws = workspace();
    let out = ws.issue(&example("invalid-event.json"), &[]);
    assert_eq!(out.status.code(), Some(1));
    let outcome: Value =
        serde_json::from_slice(&out.stdout).expect("the OperationOutcome on stdout");
    assert_eq!(outcome["resourceType"], "OperationOutcome");
    let expressions: Vec<String> = outcome["issue"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| i["expression"][0].as_str().map(String::from))
        .collect();
    let stderr = text(&out.stderr);
    for link_id in ["dose", "date", "country", "lot"] {
        let needle = format!("linkId='{link_id}'");
        assert!(
            expressions.iter().any(|e| e.contains(&needle)),
            "no issue names {link_id}: {expressions:?}"
        );
        assert!(
            stderr.contains(&needle),
            "stderr does not name {link_id}: {stderr}"
        );
    }
    assert!(!ws.out.exists(), "nothing may be written for invalid input");
    assert!(
        !ws.keys.exists(),
        "not even a key is created for invalid input"
    );
}

#[test]
fn unreadable_or_non_json_input_fails_clearly() {
    let ws = workspace();
    let out = ws.issue("/nonexistent/input.json", &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("cannot read"),
        "{}",
        text(&out.stderr)
    );

    let junk = ws.keys.parent().unwrap().join("junk.json");
    std::fs::write(&junk, b"this is { not json").unwrap();
    let out = ws.issue(junk.to_str().unwrap(), &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).to_lowercase().contains("json"),
        "{}",
        text(&out.stderr)
    );
    assert!(!ws.out.exists());
}

#[test]
fn a_batch_writes_one_folder_per_entry() {
    let ws = workspace();
    let out = ws.issue(&example("batch.json"), &[]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).lines().count(), 2);
    for entry in ["entry-001", "entry-002"] {
        for file in [
            "document-bundle.json",
            "ddcc.hc1",
            "ddcc-qr.png",
            "ddcc-qr.svg",
        ] {
            assert!(
                ws.out.join(entry).join(file).is_file(),
                "{entry}/{file} missing"
            );
        }
    }
    // Dose 1 has a next dose due: its document carries an ImmunizationRecommendation; dose 2 has none.
    let types = |entry: &str| -> Vec<String> {
        let b: Value = serde_json::from_slice(
            &std::fs::read(ws.out.join(entry).join("document-bundle.json")).unwrap(),
        )
        .unwrap();
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["resourceType"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(types("entry-001")
        .iter()
        .any(|t| t == "ImmunizationRecommendation"));
    assert!(!types("entry-002")
        .iter()
        .any(|t| t == "ImmunizationRecommendation"));
}

#[test]
fn the_development_key_is_created_once_and_never_replaced() {
    let ws = workspace();
    let first = ws.issue(&example("vaccination-event.json"), &[]);
    assert!(first.status.success());
    assert!(
        text(&first.stderr).to_lowercase().contains("development"),
        "a clear development-key warning: {}",
        text(&first.stderr)
    );
    let kid = |o: &Output| {
        text(&o.stdout)
            .split_whitespace()
            .find(|w| w.starts_with("kid="))
            .map(String::from)
    };
    let second = ws.issue(&example("vaccination-event.json"), &[]);
    assert!(second.status.success());
    assert_eq!(kid(&first), kid(&second), "the same key signs again");
    // Reissuing the same event yields the same document ids (idempotent).
    let ids = |o: &Path| -> Vec<String> {
        let b: Value =
            serde_json::from_slice(&std::fs::read(o.join("document-bundle.json")).unwrap())
                .unwrap();
        b["entry"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["resource"]["id"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let ids_first = ids(&ws.out);
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    assert_eq!(ids_first, ids(&ws.out));
}

#[test]
fn the_ddcc_sub_claim_is_configurable_for_who_reference_verifiers() {
    let ws = workspace();
    assert!(ws
        .issue(
            &example("vaccination-event.json"),
            &["--ddcc-hcert-key", "1", "--no-dcc"]
        )
        .status
        .success());
    assert!(
        !ws.out.join("dcc.hc1").exists(),
        "--no-dcc issues no EU DCC"
    );
    let hc1 = ws.out.join("ddcc.hc1").display().to_string();
    let (code, report) = verify_json(&["verify", &hc1, "--key-dir", ws.keys.to_str().unwrap()]);
    assert_eq!(code, 0, "{report:#}");
    assert_eq!(
        report["payloads"]["1"]["name"], "Zoë Ångström-Durand",
        "{report:#}"
    );
    assert!(report["payloads"].get("3").is_none());
}

/// `verify` in a directory with neither dev-keys/ nor data/keys/: malformed input is exit 2 before any key is
/// looked for; a well-formed certificate with nothing to trust is exit 3, saying how to give a DSC, without
/// naming a private key file.
#[test]
fn verify_decodes_before_it_looks_for_keys() {
    let empty = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
            .args(args)
            .current_dir(empty.path())
            .env_remove("DDCC_KEY_DIR")
            .env_remove("DDCC_DATA_DIR")
            .output()
            .unwrap()
    };
    for garbage in ["HC1:not base45 at all!", "NOT-AN-HC1", "HC1:6BFOXN%TS3DH"] {
        let out = run(&["verify", garbage]);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{garbage}: {}",
            text(&out.stderr)
        );
        assert!(
            !text(&out.stderr).contains("dsc-key.pem"),
            "{}",
            text(&out.stderr)
        );
    }
    let ws = workspace();
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let hc1 = std::fs::read_to_string(ws.out.join("ddcc.hc1")).unwrap();
    let out = run(&["verify", hc1.trim()]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{stderr}");
    assert!(
        stderr.contains("no trusted DSC") && stderr.contains("--cert"),
        "{stderr}"
    );
    assert!(!stderr.contains("dsc-key.pem"), "{stderr}");
}

/// Certificates signed with serve's development key (<data-dir>/keys) verify without flags where serve ran;
/// with another key directory's DSC the failure says where serve's key is.
#[test]
fn verify_finds_the_key_directory_of_serve() {
    let here = tempfile::tempdir().unwrap();
    let serve_keys = here.path().join("data/keys");
    let out_dir = here.path().join("out");
    let issued = ddcc(&[
        "issue",
        &example("vaccination-event.json"),
        "--out",
        out_dir.to_str().unwrap(),
        "--key-dir",
        serve_keys.to_str().unwrap(),
    ]);
    assert!(issued.status.success(), "{}", text(&issued.stderr));
    let hc1 = std::fs::read_to_string(out_dir.join("ddcc.hc1")).unwrap();
    let verify = |dir: &Path, extra: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
            .arg("verify")
            .arg(hc1.trim())
            .args(extra)
            .current_dir(dir)
            .env_remove("DDCC_KEY_DIR")
            .env_remove("DDCC_DATA_DIR")
            .output()
            .unwrap()
    };
    let out = verify(here.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));

    // Trusting only another key directory: invalid (kid), and the hint names serve's key directory.
    let other = workspace();
    assert!(other
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let out = verify(here.path(), &["--key-dir", other.keys.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--key-dir data/keys"),
        "{}",
        text(&out.stderr)
    );
}

/// `verify … | head`: a reader that goes away is no panic (exit 101), the command ends quietly.
#[test]
fn verify_into_a_closed_pipe_ends_quietly() {
    let ws = workspace();
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let hc1 = std::fs::read_to_string(ws.out.join("ddcc.hc1")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(["verify", hc1.trim(), "--key-dir", ws.keys.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before anything is written
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_ne!(out.status.code(), Some(101), "{stderr}");
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
