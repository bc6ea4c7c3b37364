//! `ddcc-mediator issue <input.json> --out <dir>`: certificates as files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{exit, IssuanceArgs, KeyDirArgs, SignerKind};
use crate::configuration::IssuanceConfig;
use crate::domain::VaccinationEvent;
use crate::error::{Error, Issue};
use crate::intake::{self, Submission};
use crate::pipeline::{self, Certificate};
use crate::render;
use crate::signer::Signer;

#[derive(Debug, clap::Args)]
pub struct IssueArgs {
    /// The submission: a QuestionnaireResponse, a Parameters or a batch Bundle (FHIR JSON).
    pub input: PathBuf,
    /// Output directory (a batch writes one subfolder per entry).
    #[arg(long)]
    pub out: PathBuf,
    /// Which key signs.
    #[arg(long, value_enum, env = "DDCC_SIGNER", default_value = "local")]
    pub signer: SignerKind,
    #[command(flatten)]
    pub keys: KeyDirArgs,
    #[command(flatten)]
    pub vault: super::keys::VaultSettings,
    #[command(flatten)]
    pub issuance: IssuanceArgs,
}

/// Runs `issue`, returning the process exit code. Writes nothing unless every entry is valid and signed.
/// The signer is opened only once the input is known to be valid, so bad input creates no key either.
pub async fn run<S: Signer>(
    args: &IssueArgs,
    config: &IssuanceConfig,
    open_signer: impl AsyncFnOnce() -> crate::Result<S>,
) -> u8 {
    let bytes = match std::fs::read(&args.input) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.input.display());
            return exit::INVALID;
        }
    };
    let (events, batch) = match intake::read_submission(&bytes).and_then(collect_events) {
        Ok(found) => found,
        Err(e) if e.is_caller_fault() => return report_invalid(&args.input, &e),
        Err(e) => return report_failure(&e),
    };

    let signer = match open_signer().await {
        Ok(s) => s,
        Err(e) => return report_failure(&e),
    };
    let now = OffsetDateTime::now_utc();
    let mut issued = Vec::with_capacity(events.len());
    for event in &events {
        match pipeline::issue_certificate(event, config, &signer, now).await {
            Ok(cert) => issued.push(cert),
            Err(e) if e.is_caller_fault() => return report_invalid(&args.input, &e),
            Err(e) => return report_failure(&e),
        }
    }

    for (i, (event, cert)) in events.iter().zip(&issued).enumerate() {
        let dir = if batch {
            args.out.join(format!("entry-{:03}", i + 1))
        } else {
            args.out.clone()
        };
        if let Err(e) = write_certificate(&dir, cert) {
            return report_failure(&e);
        }
        outln!("{}", summary_line(&dir, event, cert));
    }
    exit::OK
}

/// All events of a submission (and whether it was a batch), or one `Error::Invalid` naming every problem
/// of every entry.
fn collect_events(submission: Submission) -> crate::Result<(Vec<VaccinationEvent>, bool)> {
    match submission {
        Submission::Single(event) => event.map(|e| (vec![e], false)),
        Submission::Batch(entries) => {
            let mut events = Vec::with_capacity(entries.len());
            let mut issues: Vec<Issue> = Vec::new();
            for entry in entries {
                match entry {
                    Ok(event) => events.push(event),
                    Err(Error::Invalid(list)) => issues.extend(list),
                    Err(e) if e.is_caller_fault() => {
                        issues.push(Issue::new("not-supported", None, e.to_string()))
                    }
                    Err(e) => return Err(e),
                }
            }
            if !issues.is_empty() {
                return Err(Error::Invalid(issues));
            }
            if events.is_empty() {
                return Err(Error::invalid(
                    "required",
                    Some("Bundle.entry".into()),
                    "the batch Bundle has no entries",
                ));
            }
            Ok((events, true))
        }
    }
}

fn write_certificate(dir: &Path, cert: &Certificate) -> crate::Result<()> {
    let write = |name: &str, bytes: &[u8]| {
        let path = dir.join(name);
        std::fs::write(&path, bytes)
            .map_err(|e| Error::io(format!("cannot write {}", path.display()), e))
    };
    std::fs::create_dir_all(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    write("document-bundle.json", &cert.document_json)?;
    write("certificate.pdf", &cert.pdf)?;
    write("ddcc.hc1", cert.ddcc.signed.hc1.as_bytes())?;
    write("ddcc-qr.png", &cert.ddcc.png)?;
    write(
        "ddcc-qr.svg",
        render::qr::svg_of(&cert.ddcc.symbol).as_bytes(),
    )?;
    if let Ok(dcc) = &cert.dcc {
        write("dcc.hc1", dcc.signed.hc1.as_bytes())?;
        write("dcc-qr.png", &dcc.png)?;
        write("dcc-qr.svg", render::qr::svg_of(&dcc.symbol).as_bytes())?;
    }
    Ok(())
}

/// One line per certificate. Names no personal data: the hcid is the certificate's own identifier.
fn summary_line(dir: &Path, event: &VaccinationEvent, cert: &Certificate) -> String {
    let mut line = format!(
        "issued hcid={} kid={} exp={} out={}",
        event.certificate.hcid,
        hex::encode(cert.ddcc.signed.kid),
        cert.ddcc.signed.exp,
        dir.display()
    );
    match &cert.dcc {
        Ok(_) => line.push_str(" dcc=yes"),
        Err(reason) => {
            let _ = write!(line, " dcc=omitted ({reason})");
        }
    }
    line
}

/// Invalid input: the OperationOutcome on stdout, a line per problem on stderr.
fn report_invalid(input: &Path, error: &Error) -> u8 {
    let outcome = error.to_operation_outcome();
    match serde_json::to_string_pretty(&outcome) {
        Ok(json) => outln!("{json}"),
        Err(e) => eprintln!("error: cannot serialise the OperationOutcome: {e}"),
    }
    eprintln!("{}: invalid submission, nothing written:", input.display());
    for issue in &outcome.issue {
        let at = issue
            .expression
            .first()
            .map(String::as_str)
            .unwrap_or("(whole input)");
        eprintln!(
            "  {at}: {}",
            issue.diagnostics.as_deref().unwrap_or(&issue.code)
        );
    }
    exit::INVALID
}

fn report_failure(error: &Error) -> u8 {
    eprintln!("error: {error}");
    exit::FAILURE
}
