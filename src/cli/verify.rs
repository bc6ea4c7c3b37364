//! `ddcc-mediator verify <HC1 | file | QR PNG>`: is this certificate genuine and current?

use std::path::PathBuf;

use super::{exit, KeyDirArgs};
use crate::credential::verify::{self, Stage, VerifyOptions, VerifyReport};
use crate::error::{Error, Result};
use crate::signer::certificate::Dsc;
use crate::signer::local::LocalSigner;
use crate::signer::Signer;

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// An `HC1:` string, a file holding one, or a PNG image of the QR code.
    pub input: String,
    /// Trusted signing certificate(s), PEM or DER; repeatable. Default: the key directory's DSC.
    #[arg(long = "cert")]
    pub certs: Vec<PathBuf>,
    /// Validation time (RFC 3339). Default: now.
    #[arg(long, value_parser = parse_rfc3339)]
    pub at: Option<time::OffsetDateTime>,
    #[command(flatten)]
    pub keys: KeyDirArgs,
}

fn parse_rfc3339(s: &str) -> std::result::Result<time::OffsetDateTime, String> {
    time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339)
        .map_err(|e| format!("not an RFC 3339 time such as 2026-11-23T12:00:00Z: {e}"))
}

/// Runs `verify`: the report as JSON on stdout; exit 0 valid, 1 invalid, 2 malformed, 3 unusable arguments.
pub fn run(args: &VerifyArgs) -> u8 {
    let (hc1, trusted) =
        match read_input(&args.input).and_then(|hc1| Ok((hc1, trusted_dscs(args)?))) {
            Ok(found) => found,
            Err(e) => {
                eprintln!("error: {e}");
                return exit::FAILURE;
            }
        };
    let at = args
        .at
        .unwrap_or_else(time::OffsetDateTime::now_utc)
        .unix_timestamp();
    let report = verify::verify(
        &hc1,
        &VerifyOptions {
            trusted_dscs: trusted,
            at,
        },
    );
    match serde_json::to_string_pretty(&report) {
        Ok(json) => println!("{json}"),
        Err(e) => eprintln!("error: cannot print the report: {e}"),
    }
    exit_code(&report)
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

/// The HC1 text: given directly, read from a file, or decoded from a QR image.
fn read_input(input: &str) -> Result<String> {
    if input.trim_start().starts_with("HC1:") || !std::path::Path::new(input).exists() {
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

fn trusted_dscs(args: &VerifyArgs) -> Result<Vec<Vec<u8>>> {
    if args.certs.is_empty() {
        let signer = LocalSigner::open(&args.keys.key_dir)?;
        return Ok(vec![signer.current().dsc_der.clone()]);
    }
    args.certs
        .iter()
        .map(|path| {
            let bytes = std::fs::read(path)
                .map_err(|e| Error::io(format!("cannot read {}", path.display()), e))?;
            Ok(Dsc::from_pem_or_der(&bytes)?.der().to_vec())
        })
        .collect()
}
