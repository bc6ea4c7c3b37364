//! `ddcc-mediator issue <input.json> --out <dir>`: certificates as files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::{exit, IssuanceArgs, KeyDirArgs};
use crate::configuration::{IssuanceConfig, Workers};
use crate::domain::VaccinationEvent;
use crate::error::{Error, Issue};
use crate::intake::{self, Submission};
use crate::pipeline::{self, Certificate};
use crate::render;
use crate::signer::Signer;
use crate::signer::SignerKind;

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
    pub vault: crate::signer::vault::VaultSettings,
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
    let bytes = match super::read_regular_file(&args.input, MAX_INPUT_BYTES) {
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
    for result in issue_on_every_core(&events, config, &signer, now) {
        match result {
            Ok(cert) => issued.push(cert),
            Err(e) if e.is_caller_fault() => return report_invalid(&args.input, &e),
            Err(e) => return report_failure(&e),
        }
    }

    let dirs: Vec<PathBuf> = (0..issued.len())
        .map(|i| {
            if batch {
                args.out.join(format!("entry-{:03}", i + 1))
            } else {
                args.out.clone()
            }
        })
        .collect();
    if let Err(e) = write_certificates(&dirs, &issued) {
        return report_failure(&e);
    }
    for ((dir, event), cert) in dirs.iter().zip(&events).zip(&issued) {
        outln!("{}", summary_line(dir, event, cert));
    }
    exit::OK
}

/// Issues every event, on as many threads as the process has CPUs (`Workers::available`), returning the
/// results in the events' order. After the first failure no new event is started: the command writes
/// nothing then anyway. Each thread drives its pipeline with the runtime's handle, so a Vault signer's
/// requests still run on the runtime.
fn issue_on_every_core<S: Signer>(
    events: &[VaccinationEvent],
    config: &IssuanceConfig,
    signer: &S,
    now: OffsetDateTime,
) -> Vec<crate::Result<Certificate>> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let runtime = tokio::runtime::Handle::current();
    let (next, failed) = (AtomicUsize::new(0), AtomicBool::new(false));
    let threads = Workers::available().count.clamp(1, events.len().max(1));
    // Each thread's (event index, result) pairs.
    type Done = Vec<(usize, crate::Result<Certificate>)>;
    let joined: std::thread::Result<Vec<Done>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut done = Vec::new();
                    while !failed.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(event) = events.get(i) else { break };
                        let result = runtime
                            .block_on(pipeline::issue_certificate(event, config, signer, now));
                        failed.fetch_or(result.is_err(), Ordering::Relaxed);
                        done.push((i, result));
                    }
                    done
                })
            })
            .collect();
        workers.into_iter().map(|worker| worker.join()).collect()
    });
    let Ok(per_thread) = joined else {
        return vec![Err(Error::Internal("an issuing thread panicked".into()))];
    };
    let mut results: Vec<_> = per_thread.into_iter().flatten().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, result)| result).collect()
}

/// Largest input file read (a batch of `DDCC_MAX_BATCH_ENTRIES` entries is about 1 MB).
pub const MAX_INPUT_BYTES: u64 = 64 * 1024 * 1024;

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

/// Writes every certificate's files, all or none: each file is first written to a new temporary file beside
/// its place (created exclusively, owner-only, fsynced: never through a link planted there), and only when
/// all are written are they renamed into place. On failure (a full disk) the temporary files are removed
/// and no file of the output is cut short. Directories are created owner-only; a subfolder that is a link
/// is refused.
fn write_certificates(dirs: &[PathBuf], certs: &[Certificate]) -> crate::Result<()> {
    let mut staged = Vec::new();
    let result = dirs
        .iter()
        .zip(certs)
        .try_for_each(|(dir, cert)| stage_certificate(dir, cert, &mut staged))
        .and_then(|()| {
            // Flushed once all are written, not each as it is written: a batch's fsyncs then mostly find
            // their data already committed with an earlier file's (a 200-entry batch writes 1,400 files).
            for (tmp, _) in &staged {
                std::fs::File::open(tmp)
                    .and_then(|f| f.sync_all())
                    .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
            }
            for (tmp, target) in &staged {
                std::fs::rename(tmp, target)
                    .map_err(|e| Error::io(format!("cannot write {}", target.display()), e))?;
            }
            for dir in dirs {
                if let Ok(d) = std::fs::File::open(dir) {
                    d.sync_all()
                        .map_err(|e| Error::io(format!("cannot write {}", dir.display()), e))?;
                }
            }
            Ok(())
        });
    if result.is_err() {
        for (tmp, _) in &staged {
            let _ = std::fs::remove_file(tmp);
        }
    }
    result
}

/// Writes the files of one certificate into temporary files in `dir`, pushing (temporary, target) pairs.
fn stage_certificate(
    dir: &Path,
    cert: &Certificate,
    staged: &mut Vec<(PathBuf, PathBuf)>,
) -> crate::Result<()> {
    crate::service::create_private_dir(dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    // `--out` is the user's to choose; an `entry-NNN` subfolder that is a link was planted there.
    let planted = dir
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with("entry-"))
        && std::fs::symlink_metadata(dir).is_ok_and(|m| m.file_type().is_symlink());
    if planted {
        return Err(Error::io(
            format!("cannot write into {}", dir.display()),
            std::io::Error::other("it is a symbolic link; remove it or choose another --out"),
        ));
    }
    use std::borrow::Cow;
    let document = serde_json::to_vec_pretty(&cert.document)
        .map_err(|e| Error::Internal(format!("document Bundle does not serialise: {e}")))?;
    let mut files: Vec<(&str, Cow<[u8]>)> = vec![
        ("document-bundle.json", Cow::Owned(document)),
        ("certificate.pdf", Cow::Borrowed(&cert.pdf)),
        ("ddcc.hc1", Cow::Borrowed(cert.ddcc.signed.hc1.as_bytes())),
        ("ddcc-qr.png", Cow::Borrowed(&cert.ddcc.png)),
        (
            "ddcc-qr.svg",
            Cow::Owned(render::qr::svg_of(&cert.ddcc.symbol).into_bytes()),
        ),
    ];
    if let Ok(dcc) = &cert.dcc {
        files.push(("dcc.hc1", Cow::Borrowed(dcc.signed.hc1.as_bytes())));
        files.push(("dcc-qr.png", Cow::Borrowed(&dcc.png)));
        files.push((
            "dcc-qr.svg",
            Cow::Owned(render::qr::svg_of(&dcc.symbol).into_bytes()),
        ));
    }
    for (name, bytes) in files {
        let target = dir.join(name);
        let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
        staged.push((tmp.clone(), target));
        write_new_file(&tmp, &bytes)
            .map_err(|e| Error::io(format!("cannot write {}", tmp.display()), e))?;
    }
    Ok(())
}

/// A new file at `path` (never an existing file or link), owner-only; [`write_certificates`] fsyncs it.
fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(bytes)
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
