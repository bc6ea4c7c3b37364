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
fn verify_reports_valid_certificates_from_string_file_png_and_pdf() {
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
        ws.out.join("certificate.pdf").display().to_string(),
    ] {
        let (code, report) = verify_json(&["verify", &input, "--key-dir", keys]);
        // No --revocation: no claim either way.
        assert!(report.get("revoked").is_none(), "{report:#}");
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

/// Runs the binary with `args`, killing it after `limit`: `None` when it did not finish in time.
fn ddcc_within(args: &[&str], limit: std::time::Duration) -> Option<Output> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if child.try_wait().unwrap().is_some() {
            return Some(child.wait_with_output().unwrap());
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

/// Runs the binary with a file size limit of `bytes` (as on a full disk: writes past it fail; SIGXFSZ is
/// ignored, as it is by default for no process but must be for the write to fail rather than kill).
fn ddcc_with_file_size_limit(bytes: u64, args: &[&str]) -> Output {
    Command::new("sh")
        .arg("-c")
        .arg("trap '' XFSZ; exec prlimit --fsize=\"$0\" -- \"$@\"")
        .arg(bytes.to_string())
        .arg(env!("CARGO_BIN_EXE_ddcc-mediator"))
        .args(args)
        .output()
        .expect("sh and prlimit run")
}

#[test]
fn inputs_that_never_end_or_never_start_are_refused_at_once() {
    let ws = workspace();
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let hc1 = std::fs::read_to_string(ws.out.join("ddcc.hc1")).unwrap();
    let keys = ws.keys.to_str().unwrap();
    let fifo = ws.keys.parent().unwrap().join("fifo");
    assert!(Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let fifo = fifo.to_str().unwrap();
    let out_dir = ws.keys.parent().unwrap().join("out-dev");
    let out_dir = out_dir.to_str().unwrap();
    let limit = std::time::Duration::from_secs(20);
    for (args, code) in [
        (vec!["verify", "/dev/zero", "--key-dir", keys], 2),
        (vec!["verify", fifo, "--key-dir", keys], 2),
        (vec!["verify", hc1.trim(), "--cert", "/dev/zero"], 3),
        (vec!["verify", hc1.trim(), "--cert", fifo], 3),
        (
            vec!["issue", "/dev/zero", "--out", out_dir, "--key-dir", keys],
            1,
        ),
        (vec!["issue", fifo, "--out", out_dir, "--key-dir", keys], 1),
    ] {
        let out = ddcc_within(&args, limit)
            .unwrap_or_else(|| panic!("{args:?} did not finish within {limit:?}"));
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains("not a regular file"),
            "{args:?}: {}",
            text(&out.stderr)
        );
    }
    assert!(!Path::new(out_dir).exists());
}

#[test]
fn malformed_verify_inputs_exit_2() {
    let ws = workspace();
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let keys = ws.keys.to_str().unwrap();
    let dir = ws.keys.parent().unwrap();
    // A PNG without a QR code (the QR image's own header, all white), a truncated QR PNG, a non-UTF-8 file,
    // and a PNG whose header claims 100,000 × 100,000 pixels.
    let white = dir.join("white.png");
    image::GrayImage::from_pixel(64, 64, image::Luma([255]))
        .save(&white)
        .unwrap();
    let qr = std::fs::read(ws.out.join("ddcc-qr.png")).unwrap();
    let truncated = dir.join("truncated.png");
    std::fs::write(&truncated, &qr[..qr.len() / 2]).unwrap();
    let binary = dir.join("binary.txt");
    std::fs::write(&binary, [0xff, 0xfe, 0x00, 0x80, 0xc3]).unwrap();
    let huge = dir.join("huge.png");
    std::fs::write(&huge, png_header_only(100_000, 100_000)).unwrap();
    for (file, says) in [
        (&white, "no readable QR code"),
        (&truncated, "not a readable PNG"),
        (&binary, "neither an HC1 text nor a PNG"),
        (&huge, "at most"),
    ] {
        let out = ddcc_within(
            &["verify", file.to_str().unwrap(), "--key-dir", keys],
            std::time::Duration::from_secs(30),
        )
        .expect("verify finishes");
        assert_eq!(
            out.status.code(),
            Some(2),
            "{}: {}",
            file.display(),
            text(&out.stderr)
        );
        assert!(text(&out.stderr).contains(says), "{}", text(&out.stderr));
    }
}

/// A PNG with only its header: `width`×`height`, 8-bit grey.
fn png_header_only(width: u32, height: u32) -> Vec<u8> {
    let chunk = |kind: &[u8], data: &[u8]| {
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        let mut out = (data.len() as u32).to_be_bytes().to_vec();
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
        out
    };
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 0, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(chunk(b"IHDR", &ihdr));
    png.extend(chunk(b"IEND", b""));
    png
}

#[test]
fn verify_at_takes_iso_8601_offsets_without_colon_and_local_times_as_utc() {
    let ws = workspace();
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    let keys = ws.keys.to_str().unwrap();
    let hc1 = std::fs::read_to_string(ws.out.join("ddcc.hc1")).unwrap();
    let tomorrow = time::OffsetDateTime::now_utc() + time::Duration::days(1);
    let day = format!(
        "{:04}-{:02}-{:02}",
        tomorrow.year(),
        u8::from(tomorrow.month()),
        tomorrow.day()
    );
    for at in [
        format!("{day}T07:38:27+0000"),
        format!("{day}T13:38:51.012869"),
        format!("{day}T07:38:27Z"),
    ] {
        let (code, report) = verify_json(&["verify", hc1.trim(), "--key-dir", keys, "--at", &at]);
        assert_eq!(code, 0, "--at {at}: {report:#}");
    }
    // Before issue: not yet valid (the time was read, not refused).
    let (code, _) = verify_json(&[
        "verify",
        hc1.trim(),
        "--key-dir",
        keys,
        "--at",
        "2021-07-02T07:38:27+0000",
    ]);
    assert_eq!(code, 1);
    let help = text(&ddcc(&["verify", "--help"]).stdout);
    assert!(help.contains("+0000") && help.contains("UTC"), "{help}");
}

#[test]
#[cfg(unix)]
fn issue_writes_owner_only_files_and_never_through_planted_links() {
    use std::os::unix::fs::PermissionsExt as _;
    let ws = workspace();
    let dir = ws.keys.parent().unwrap();
    let victim = dir.join("victim.txt");
    std::fs::write(&victim, b"precious").unwrap();
    std::fs::create_dir_all(&ws.out).unwrap();
    std::os::unix::fs::symlink(&victim, ws.out.join("ddcc.hc1")).unwrap();
    std::os::unix::fs::symlink(&victim, ws.out.join("certificate.pdf")).unwrap();
    let out = ws.issue(&example("vaccination-event.json"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
    let hc1 = std::fs::symlink_metadata(ws.out.join("ddcc.hc1")).unwrap();
    assert!(
        hc1.file_type().is_file(),
        "the link was replaced, not followed"
    );
    for file in std::fs::read_dir(&ws.out).unwrap().flatten() {
        let mode = file.metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{}", file.path().display());
    }
    // A new output folder is owner-only; a batch subfolder planted as a link is refused.
    let fresh = workspace();
    let out = fresh.issue(&example("batch.json"), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    for d in [fresh.out.clone(), fresh.out.join("entry-001")] {
        let mode = std::fs::metadata(&d).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{}", d.display());
    }
    let planted = workspace();
    let elsewhere = dir.join("elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    std::fs::create_dir_all(&planted.out).unwrap();
    std::os::unix::fs::symlink(&elsewhere, planted.out.join("entry-002")).unwrap();
    let out = planted.issue(&example("batch.json"), &[]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("symbolic link"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(std::fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(
        !planted.out.join("entry-001").join("ddcc.hc1").exists(),
        "all or nothing"
    );
}

#[test]
fn issue_on_a_full_disk_writes_nothing_and_leaves_no_temporary_files() {
    let ws = workspace();
    // Create the key first (a few kB), then issue with writes limited to 16 kB per file: the PDF cannot be
    // written.
    assert!(ws
        .issue(&example("vaccination-event.json"), &[])
        .status
        .success());
    std::fs::remove_dir_all(&ws.out).unwrap();
    let out = ddcc_with_file_size_limit(
        16 * 1024,
        &[
            "issue",
            &example("vaccination-event.json"),
            "--out",
            ws.out.to_str().unwrap(),
            "--key-dir",
            ws.keys.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    let left: Vec<_> = std::fs::read_dir(&ws.out)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing written, nothing left: {left:?}");
}
