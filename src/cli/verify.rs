//! `ddcc-mediator verify <HC1 | file | QR PNG>`: is this certificate genuine and current?
//!
//! The input is decoded first (prefix, Base45, zlib, COSE, CWT): a malformed certificate is exit 2 whatever
//! the trust settings, before any key is looked for. Then the trusted DSCs: `--cert` files, else the key
//! directory given with `--key-dir` / `DDCC_KEY_DIR`, else every development key directory present here:
//! `dev-keys/` (made by `issue`) and `<DDCC_DATA_DIR or data>/keys/` (made by `serve`). Only the certificate
//! (`dsc-cert.pem`) is read, never the private key.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::exit;
use crate::credential::revocation;
use crate::credential::trust::TrustAnchors;
use crate::credential::verify::{self, Stage, VerifyOptions, VerifyReport};
use crate::error::{Error, Result};
use crate::signer::certificate::Dsc;
use crate::signer::local::CERT_FILE;

/// Where `issue` keeps its development key.
const CLI_KEY_DIR: &str = "dev-keys";

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// An `HC1:` string, a file holding one, a PNG image of the QR code, or the citizen PDF.
    pub input: String,
    /// Trusted signing certificate(s): PEM bundle, DER, JWKS or DID document; repeatable (e.g. the
    /// service's GET /trust/dsc.pem, /trust/jwks.json or /trust/did.json).
    #[arg(long = "cert")]
    pub certs: Vec<PathBuf>,
    /// Validation time: RFC 3339 (2026-11-23T12:00:00Z, 2026-11-23T13:00:00+01:00), or ISO 8601 with an
    /// offset without a colon (2026-11-23T12:00:00+0000) or with no offset at all
    /// (2026-11-23T12:00:00.123456, taken as UTC). Default: now.
    #[arg(long, value_parser = parse_time)]
    pub at: Option<time::OffsetDateTime>,
    /// Trust the DSC of this development key directory. Default: dev-keys/ (issue) and data/keys/ (serve),
    /// whichever exist.
    #[arg(long, env = "DDCC_KEY_DIR")]
    pub key_dir: Option<PathBuf>,
    /// A signed revocation list (the service's GET /trust/revocations): a file, or an http(s) URL fetched now.
    /// Its signature is checked with the trusted DSCs; a certificate on it is invalid (`"revoked": true`).
    #[arg(long)]
    pub revocation: Option<String>,
}

/// Largest input file read: an HC1 text or a PNG image of a QR code.
pub const MAX_INPUT_BYTES: u64 = 16 * 1024 * 1024;
/// Largest certificate file (`--cert`) read.
pub const MAX_CERT_BYTES: u64 = 1024 * 1024;
/// Longest wait for a revocation list fetched by URL.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest time spent looking for a QR code in an image.
pub const DECODE_TIMEOUT: Duration = Duration::from_secs(20);

/// A time as RFC 3339, or ISO 8601 with an offset without a colon (`+0000`, `+01`), or without an offset
/// (UTC); seconds may have a fraction.
pub fn parse_time(s: &str) -> std::result::Result<time::OffsetDateTime, String> {
    use time::macros::format_description;
    let s = s.trim();
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    let with_offset = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]][offset_hour sign:mandatory][optional [[offset_minute]]]"
    );
    if let Ok(t) = time::OffsetDateTime::parse(s, with_offset) {
        return Ok(t);
    }
    let local = format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second][optional [.[subsecond]]]"
    );
    time::PrimitiveDateTime::parse(s, local)
        .map(time::PrimitiveDateTime::assume_utc)
        .map_err(|_| {
            format!(
                "{s:?} is not a time such as 2026-11-23T12:00:00Z, 2026-11-23T12:00:00+0000 or \
                 2026-11-23T12:00:00 (UTC)"
            )
        })
}

/// Runs `verify`: the report as JSON on stdout; exit 0 valid, 1 invalid, 2 malformed (also an input that is
/// not an HC1 text or a PNG with a QR code), 3 unusable arguments or I/O.
pub fn run(args: &VerifyArgs) -> u8 {
    let hc1 = match read_input(&args.input) {
        Ok(hc1) => hc1,
        Err(e) => {
            eprintln!("error: {e}");
            return match e {
                Error::Invalid(_) => exit::MALFORMED,
                _ => exit::FAILURE,
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
            revocations: None,
            checked: None,
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
    let trusted_dscs: Vec<Vec<u8>> = trusted.iter().map(|t| t.der.clone()).collect();
    let revocations = match &args.revocation {
        // An unreadable or unsigned list is no answer: the certificate's status is unknown (exit 3).
        Some(source) => {
            match read_list(source).and_then(|bytes| revocation::open_signed(&bytes, &trusted_dscs))
            {
                Ok(list) => Some(std::sync::Arc::new(list)),
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::FAILURE;
                }
            }
        }
        None => None,
    };
    let report = verify::verify(
        &hc1,
        &VerifyOptions {
            trusted_dscs,
            at,
            revocations,
            checked: None,
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

/// The HC1 text: given directly, read from a file, or decoded from a QR image. `Error::Invalid`: the input
/// is no certificate (exit 2); other errors: it could not be read (exit 3).
fn read_input(input: &str) -> Result<String> {
    if input.trim_start().starts_with("HC1:") || !Path::new(input).exists() {
        return Ok(input.trim().to_string());
    }
    let bytes = match super::read_regular_file(std::path::Path::new(input), MAX_INPUT_BYTES) {
        Ok(bytes) => bytes,
        Err(super::InputError::Io(e)) => return Err(Error::io(format!("cannot read {input}"), e)),
        Err(e) => {
            return Err(Error::invalid(
                "too-costly",
                None,
                format!("{input} is not read: {e}"),
            ))
        }
    };
    // Images and PDFs are searched for a QR code, under a deadline; text is taken as it is.
    decode_with_deadline(bytes)
}

/// The bytes of a revocation list: an http(s) URL is fetched, anything else is a file.
fn read_list(source: &str) -> Result<Vec<u8>> {
    if source.starts_with("http://") || source.starts_with("https://") {
        // reqwest's blocking client must not run on the CLI's async runtime: a thread of its own.
        let url = source.to_owned();
        return std::thread::spawn(move || fetch_list(&url))
            .join()
            .unwrap_or_else(|_| Err(Error::Internal("the fetch thread failed".into())));
    }
    super::read_regular_file(Path::new(source), revocation::MAX_LIST_BYTES as u64)
        .map_err(|e| Error::Config(format!("cannot read {source}: {e}")))
}

/// `GET url`, at most [`revocation::MAX_LIST_BYTES`], within [`FETCH_TIMEOUT`].
fn fetch_list(url: &str) -> Result<Vec<u8>> {
    let unavailable = |reason: String| Error::Unavailable {
        service: "revocation list",
        reason,
    };
    let response = reqwest::blocking::Client::builder()
        .timeout(FETCH_TIMEOUT)
        .build()
        .and_then(|client| client.get(url).send())
        .and_then(reqwest::blocking::Response::error_for_status)
        .map_err(|e| unavailable(crate::error::error_chain(&e)))?;
    let limit = revocation::MAX_LIST_BYTES as u64;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(response, limit + 1), &mut bytes)
        .map_err(|e| unavailable(e.to_string()))?;
    if bytes.len() as u64 > limit {
        return Err(unavailable(format!("larger than {limit} bytes")));
    }
    Ok(bytes)
}

/// A trusted DSC and where it came from.
struct Trusted {
    der: Vec<u8>,
    source: String,
}

fn trusted_dscs(args: &VerifyArgs) -> Result<Vec<Trusted>> {
    if !args.certs.is_empty() {
        let mut found = Vec::new();
        for path in &args.certs {
            for der in read_anchors(path)? {
                found.push(Trusted {
                    der,
                    source: path.display().to_string(),
                });
            }
        }
        return Ok(found);
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

/// The DSC of a key directory's certificate file.
fn read_dsc(path: &Path) -> Result<Vec<u8>> {
    let bytes = super::read_regular_file(path, MAX_CERT_BYTES)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(Dsc::from_pem_or_der(&bytes)?.der().to_vec())
}

/// The DSCs of a `--cert` file: PEM bundle, DER, JWKS or DID document.
fn read_anchors(path: &Path) -> Result<Vec<Vec<u8>>> {
    let bytes = super::read_regular_file(path, MAX_CERT_BYTES)
        .map_err(|e| Error::Config(format!("cannot read {}: {e}", path.display())))?;
    Ok(TrustAnchors::parse(&bytes, &path.display().to_string())?.into_ders())
}

/// The HC1 text of a file's bytes (a QR code image or PDF is searched), given at most [`DECODE_TIMEOUT`] (the decoder's own bounds are on the image's
/// size; this one is on time). The decoding thread is left behind: the process ends right after.
fn decode_with_deadline(png: Vec<u8>) -> Result<String> {
    let (done, result) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(verify::hc1_of(&png));
    });
    result.recv_timeout(DECODE_TIMEOUT).unwrap_or_else(|_| {
        Err(Error::invalid(
            "too-costly",
            None,
            format!(
                "no QR code found within {} s; the image is too complex",
                DECODE_TIMEOUT.as_secs()
            ),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_with_colon_less_offsets_and_without_offsets_are_accepted() {
        let t = |s: &str| parse_time(s).map(|t| t.unix_timestamp());
        assert_eq!(t("2021-07-02T07:38:27Z"), Ok(1_625_211_507));
        assert_eq!(t("2021-07-02T07:38:27+0000"), Ok(1_625_211_507));
        assert_eq!(t("2021-07-02T09:38:27+0200"), Ok(1_625_211_507));
        assert_eq!(t("2021-07-02T09:38:27+02"), Ok(1_625_211_507));
        assert_eq!(t("2021-07-02T07:38:27"), Ok(1_625_211_507));
        assert_eq!(t("2021-05-30T13:38:51.012869"), Ok(1_622_381_931));
        assert_eq!(t("2021-05-30T13:38:51.012869+0000"), Ok(1_622_381_931));
        for bad in [
            "2021-07-02",
            "yesterday",
            "2021-07-02T07:38:27+00:0",
            "2021-13-02T07:38:27Z",
        ] {
            assert!(parse_time(bad).is_err(), "{bad}");
        }
    }
}
