//! The command line: `issue`, `verify`, `keys`.
//!
//! Exit codes are a contract other tools rely on (README "CLI"): 0 success; 1 invalid input (or, for
//! `verify`, an invalid certificate); 2 malformed certificate (`verify`); 3 an operational failure
//! (signer unavailable, I/O, internal error).

/// `println!` that ends quietly when stdout's reader went away (see [`print_stdout`]).
macro_rules! outln {
    ($($arg:tt)*) => { $crate::cli::print_stdout(&format!("{}\n", format_args!($($arg)*))) };
}
/// `print!` that ends quietly when stdout's reader went away (see [`print_stdout`]).
macro_rules! out {
    ($($arg:tt)*) => { $crate::cli::print_stdout(&format!($($arg)*)) };
}

pub mod issue;
pub mod keys;
pub mod reissue;
pub mod verify;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::configuration::{IssuanceConfig, PaperArg};
use crate::render::pdf::Labels;
use crate::signer::SignerKind;

#[derive(Debug, Parser)]
#[command(
    name = "ddcc-mediator",
    version,
    about = "Issue and verify WHO DDCC:VS vaccination certificates"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Issue certificates from a DDCC:VS QuestionnaireResponse, Parameters or batch Bundle (JSON file).
    Issue(issue::IssueArgs),
    /// Check an HC1 certificate: signature, kid, expiry; print what it says.
    Verify(verify::VerifyArgs),
    /// Signing keys and certificates: export the DSCs; create, certify and rotate Vault transit keys.
    Keys(KeysArgs),
    /// Run the mediator service (HTTP API, OpenHIM mediator); see README "Run the service".
    Serve(Box<crate::configuration::ServeArgs>),
    /// Re-sign every current certificate signed by a withdrawn key (`keys withdraw`), with `serve`'s settings;
    /// see README "Withdrawing a key and re-signing".
    Reissue(reissue::ReissueArgs),
}

#[derive(Debug, clap::Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    pub command: keys::KeysCommand,
    /// Whose keys: the local development key directory (`export`, `withdraw`), or Vault.
    #[arg(
        long,
        value_enum,
        env = "DDCC_SIGNER",
        default_value = "local",
        global = true
    )]
    pub signer: SignerKind,
    #[command(flatten)]
    pub key_dir: KeyDirArgs,
    #[command(flatten)]
    pub vault: crate::signer::vault::VaultSettings,
}

/// Issuance settings shared by every command that signs.
#[derive(Debug, Clone, clap::Args)]
pub struct IssuanceArgs {
    /// CWT `iss` claim (ISO 3166-1 alpha-2). Default: the vaccination country.
    #[arg(long, env = "DDCC_ISSUER_COUNTRY")]
    pub issuer_country: Option<String>,
    /// Days a certificate stays valid (capped at the signing certificate's notAfter).
    #[arg(long, env = "DDCC_VALIDITY_DAYS", default_value_t = 365)]
    pub validity_days: u64,
    /// hcert sub-claim for the DDCC core data set: 3 (SMART Trust) or 1 (WHO reference mediator verifiers).
    #[arg(long, env = "DDCC_HCERT_KEY", default_value_t = 3, value_parser = parse_hcert_key)]
    pub ddcc_hcert_key: i64,
    /// Name of the issuing public health authority, shown in the document's Organization.
    #[arg(long, env = "DDCC_ISSUER_NAME")]
    pub issuer_name: Option<String>,
    /// Paper size of the citizen PDF.
    #[arg(long, env = "DDCC_PDF_PAPER", value_enum, default_value = "a4")]
    pub paper: PaperArg,
    /// Translated labels for the citizen PDF (JSON; missing keys stay English), in place of the built-in
    /// labels of --language.
    #[arg(long, env = "DDCC_PDF_LABELS")]
    pub labels: Option<PathBuf>,
    /// Language of the citizen PDF (ar, en, es, fr, ru, zh) unless the QuestionnaireResponse asks for
    /// another of these.
    #[arg(long, env = "DDCC_PDF_LANGUAGE", default_value = "en")]
    pub language: crate::render::pdf::Language,
    /// Do not issue the EU DCC payload.
    #[arg(long, env = "DDCC_NO_DCC")]
    pub no_dcc: bool,
}

impl IssuanceArgs {
    pub fn to_config(&self) -> crate::Result<IssuanceConfig> {
        if let Some(iss) = &self.issuer_country {
            if iss.len() != 2 || !iss.bytes().all(|b| b.is_ascii_uppercase()) {
                return Err(crate::Error::Config(format!(
                    "--issuer-country must be an ISO 3166-1 alpha-2 code such as \"CH\", not {iss:?}"
                )));
            }
        }
        if self.validity_days == 0 {
            return Err(crate::Error::Config(
                "--validity-days must be at least 1".into(),
            ));
        }
        Ok(IssuanceConfig {
            issuer_country: self.issuer_country.clone(),
            validity: std::time::Duration::from_secs(self.validity_days * 24 * 3600),
            // `issue` keeps no store, so there is nothing to renew; the window only has to be valid.
            renewal: std::time::Duration::ZERO,
            ddcc_hcert_key: self.ddcc_hcert_key,
            issuer_name: self.issuer_name.clone(),
            paper: self.paper.into(),
            labels: match &self.labels {
                Some(path) => Some(Labels::from_file(path)?),
                None => None,
            },
            language: self.language,
            emit_dcc: !self.no_dcc,
        })
    }
}

fn parse_hcert_key(s: &str) -> Result<i64, String> {
    match s {
        "1" => Ok(1),
        "3" => Ok(3),
        _ => Err("must be 3 (SMART Trust DDCC:VS) or 1 (WHO reference mediator)".into()),
    }
}

/// Where the development signer keeps its key and certificate.
#[derive(Debug, Clone, clap::Args)]
pub struct KeyDirArgs {
    /// Key directory of the local development signer (created on first use).
    #[arg(long, env = "DDCC_KEY_DIR", default_value = "dev-keys", global = true)]
    pub key_dir: PathBuf,
}

/// Why an input file was not read.
#[derive(Debug)]
pub enum InputError {
    /// A device, FIFO, socket or directory: reading it might never end or never start.
    NotRegular(&'static str),
    /// Larger than the limit (bytes).
    TooLarge(u64),
    Io(std::io::Error),
}

impl std::fmt::Display for InputError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InputError::NotRegular(kind) => write!(f, "it is {kind}, not a regular file"),
            InputError::TooLarge(limit) => write!(f, "it is larger than {limit} bytes"),
            InputError::Io(e) => e.fmt(f),
        }
    }
}

/// The contents of the regular file `path`, at most `limit` bytes. Anything else is refused before it is
/// read: `/dev/zero` never ends, a FIFO blocks until someone writes to it.
pub fn read_regular_file(path: &std::path::Path, limit: u64) -> Result<Vec<u8>, InputError> {
    use std::io::Read as _;
    let kind = |meta: &std::fs::Metadata| -> Option<&'static str> {
        let t = meta.file_type();
        if t.is_file() {
            return None;
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::FileTypeExt as _;
            if t.is_fifo() {
                return Some("a FIFO");
            }
            if t.is_char_device() || t.is_block_device() {
                return Some("a device");
            }
            if t.is_socket() {
                return Some("a socket");
            }
        }
        Some(if t.is_dir() {
            "a directory"
        } else {
            "not a file"
        })
    };
    let meta = std::fs::metadata(path).map_err(InputError::Io)?;
    if let Some(kind) = kind(&meta) {
        return Err(InputError::NotRegular(kind));
    }
    if meta.len() > limit {
        return Err(InputError::TooLarge(limit));
    }
    let file = std::fs::File::open(path).map_err(InputError::Io)?;
    // The file opened may not be the one looked at (replaced in between): look again.
    if let Some(kind) = file.metadata().ok().as_ref().and_then(kind) {
        return Err(InputError::NotRegular(kind));
    }
    let mut bytes = Vec::new();
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(InputError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge(limit));
    }
    Ok(bytes)
}

/// Process exit codes (see the module docs).
pub mod exit {
    pub const OK: u8 = 0;
    pub const INVALID: u8 = 1;
    pub const MALFORMED: u8 = 2;
    pub const FAILURE: u8 = 3;
}

/// Writes `text` to stdout. A reader that went away (`ddcc-mediator verify … | head`) is no error: the rest
/// is dropped quietly. Rust ignores SIGPIPE, so `print!` would panic ("failed printing to stdout") and exit 101.
pub fn print_stdout(text: &str) {
    use std::io::Write as _;
    let mut stdout = std::io::stdout().lock();
    if let Err(e) = stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        if e.kind() != std::io::ErrorKind::BrokenPipe {
            eprintln!("error: cannot write to stdout: {e}");
        }
    }
}
