//! `ddcc-mediator verify <HC1 | file | QR PNG>`: is this certificate genuine and current?
//!
//! The input is decoded first (prefix, Base45, zlib, COSE, CWT): a malformed certificate is exit 2 whatever
//! the trust settings, before any key is looked for. Then the trusted DSCs: `--cert` files, else the key
//! directory given with `--key-dir` / `DDCC_KEY_DIR`, else every development key directory present here:
//! `dev-keys/` (made by `issue`) and `<DDCC_DATA_DIR or data>/keys/` (made by `serve`). Only the certificate
//! (`dsc-cert.pem`) is read, never the private key.

use std::path::{Path, PathBuf};

use super::exit;
use crate::credential::verify::{self, Stage, VerifyOptions, VerifyReport};
use crate::error::{Error, Result};
use crate::signer::certificate::Dsc;
use crate::signer::local::CERT_FILE;

/// Where `issue` keeps its development key.
const CLI_KEY_DIR: &str = "dev-keys";

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// An `HC1:` string, a file holding one, or a PNG image of the QR code.
    pub input: String,
    /// Trusted signing certificate(s), PEM or DER; repeatable (e.g. the service's GET /trust/dsc.pem).
    #[arg(long = "cert")]
    pub certs: Vec<PathBuf>,
    /// Validation time (RFC 3339). Default: now.
    #[arg(long, value_parser = parse_rfc3339)]
    pub at: Option<time::OffsetDateTime>,
    /// Trust the DSC of this development key directory. Default: dev-keys/ (issue) and data/keys/ (serve),
    /// whichever exist.
    #[arg(long, env = "DDCC_KEY_DIR")]
    pub key_dir: Option<PathBuf>,
}

fn parse_rfc3339(s: &str) -> std::result::Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time such as 2026-11-23T12:00:00Z: {e}"))
}

/// Runs `verify`: the report as JSON on stdout; exit 0 valid, 1 invalid, 2 malformed, 3 unusable arguments
/// or no trusted DSC.
pub fn run(args: &VerifyArgs) -> u8 {
    let hc1 = match read_input(&args.input) {
        Ok(hc1) => hc1,
        Err(e) => {
            eprintln!("error: {e}");
            return match e {
                Error::Io { .. } => exit::FAILURE,
                _ => exit::MALFORMED,
            };
        }
    };
    let at = args
        .at
        .unwrap_or_else(time::OffsetDateTime::now_utc)
        .unix_timestamp();
    // Decoding needs no key: a damaged or foreign input is reported as such before keys are looked for.
    let decoded = verify::verify(
        &hc1,
        &VerifyOptions {
            trusted_dscs: Vec::new(),
            at,
        },
    );
    if decoded.error.as_ref().is_some_and(|f| f.stage < Stage::Kid) {
        print_report(&decoded);
        return exit_code(&decoded);
    }
    let trusted = match trusted_dscs(args) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("error: {e}");
            return exit::FAILURE;
        }
    };
    let report = verify::verify(
        &hc1,
        &VerifyOptions {
            trusted_dscs: trusted.iter().map(|t| t.der.clone()).collect(),
            at,
        },
    );
    print_report(&report);
    if report.error.as_ref().is_some_and(|f| f.stage == Stage::Kid) {
        let sources: Vec<String> = trusted.iter().map(|t| t.source.clone()).collect();
        eprintln!(
            "hint: trusted here: {}. Certificates issued by `serve` are signed with its key in \
             <data-dir>/keys (--key-dir data/keys), or with Vault: fetch the service's GET /trust/dsc.pem and \
             pass it with --cert.",
            sources.join(", ")
        );
    }
    exit_code(&report)
}

/// Prints the report; a closed stdout (`verify … | head`) is not an error.
fn print_report(report: &VerifyReport) {
    match serde_json::to_string_pretty(report) {
        Ok(json) => super::print_stdout(&format!("{json}\n")),
        Err(e) => eprintln!("error: cannot print the report: {e}"),
    }
}

fn exit_code(report: &VerifyReport) -> u8 {
    match &report.error {
        None if report.valid => exit::OK,
        // Decoding failed before any trust decision: the input is not a certificate.
        Some(f)
            if matches!(
                f.stage,
                Stage::Prefix | Stage::Base45 | Stage::Zlib | Stage::Cose | Stage::Cwt
            ) =>
        {
            exit::MALFORMED
        }
        _ => exit::INVALID,
    }
}

/// The HC1 text: given directly, read from a file, or decoded from a QR image. `Error::Io` when a file
/// cannot be read; any other error means the input is no certificate.
fn read_input(input: &str) -> Result<String> {
    if input.trim_start().starts_with("HC1:") || !Path::new(input).exists() {
        return Ok(input.trim().to_string());
    }
    let bytes = std::fs::read(input).map_err(|e| Error::io(format!("cannot read {input}"), e))?;
    if bytes.starts_with(b"\x89PNG") {
        return verify::decode_qr_png(&bytes);
    }
    String::from_utf8(bytes)
        .map(|s| s.trim().to_string())
        .map_err(|_| {
            Error::invalid(
                "invalid",
                None,
                format!("{input} is neither an HC1 text file nor a PNG"),
            )
        })
}

/// A trusted DSC and where it came from.
struct Trusted {
    der: Vec<u8>,
    source: String,
}

fn trusted_dscs(args: &VerifyArgs) -> Result<Vec<Trusted>> {
    if !args.certs.is_empty() {
        return args
            .certs
            .iter()
            .map(|path| {
                Ok(Trusted {
                    der: read_dsc(path)?,
                    source: path.display().to_string(),
                })
            })
            .collect();
    }
    if let Some(dir) = &args.key_dir {
        return Ok(vec![Trusted {
            der: read_dsc(&dir.join(CERT_FILE))?,
            source: dir.join(CERT_FILE).display().to_string(),
        }]);
    }
    let serve_keys = std::env::var_os("DDCC_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("data"))
        .join("keys");
    let candidates = [PathBuf::from(CLI_KEY_DIR), serve_keys];
    let found: Vec<Trusted> = candidates
        .iter()
        .map(|dir| dir.join(CERT_FILE))
        .filter(|cert| cert.is_file())
        .map(|cert| {
            Ok(Trusted {
                der: read_dsc(&cert)?,
                source: cert.display().to_string(),
            })
        })
        .collect::<Result<_>>()?;
    if found.is_empty() {
        return Err(Error::Config(format!(
            "no trusted DSC: neither {} (made by `issue`) nor {} (made by `serve`) exists in {}; pass the \
             signing certificate with --cert <dsc.pem> (e.g. the service's GET /trust/dsc.pem, or `keys export`) \
             or a key directory with --key-dir",
            Path::new(CLI_KEY_DIR).join(CERT_FILE).display(),
            candidates[1].join(CERT_FILE).display(),
            std::env::current_dir()
                .map(|d| d.display().to_string())
                .unwrap_or_else(|_| "this directory".into()),
        )));
    }
    Ok(found)
}

fn read_dsc(path: &Path) -> Result<Vec<u8>> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
    Ok(Dsc::from_pem_or_der(&bytes)?.der().to_vec())
}
