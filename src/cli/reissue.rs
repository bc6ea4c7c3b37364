//! `ddcc-mediator reissue`: re-signs every current certificate signed by a withdrawn key (see
//! [`crate::service::reissue`]), with the service's own settings (`serve`'s flags, environment and file).

use std::io::IsTerminal as _;
use std::sync::Arc;

use crate::cli::exit;
use crate::configuration::{ServeArgs, ServiceConfig};
use crate::service::metrics::Metrics;
use crate::service::reissue::{reissue, Progress};

#[derive(Debug, clap::Args)]
pub struct ReissueArgs {
    /// Stop after re-signing this many certificates; a later run continues where this one stopped.
    #[arg(long)]
    pub limit: Option<u64>,
    /// Documents read from the store at a time (memory stays bounded by this).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u16).range(1..=1000))]
    pub page_size: u16,
    #[command(flatten)]
    pub serve: Box<ServeArgs>,
}

/// Runs the re-signing; progress on stderr, the final counts as JSON on stdout. Exit 0 when nothing is
/// left signed by a withdrawn key (or `--limit` was reached), 1 when certificates without a kept event
/// remain, 3 when some could not be re-signed now.
pub async fn run(args: &ReissueArgs) -> u8 {
    let result = async {
        let config = ServiceConfig::resolve(&args.serve)?;
        let issuer =
            Arc::new(crate::service::build_issuer(&config, Arc::new(Metrics::new())).await?);
        let terminal = std::io::stderr().is_terminal();
        reissue(&issuer, args.limit, usize::from(args.page_size), |p| {
            show(p, terminal)
        })
        .await
    }
    .await;
    match result {
        Ok(progress) => {
            eprintln!();
            outln!(
                "{}",
                serde_json::to_string(&progress).unwrap_or_else(|_| "{}".into())
            );
            if progress.failed > 0 {
                exit::FAILURE
            } else if progress.without_event > 0 {
                exit::INVALID
            } else {
                exit::OK
            }
        }
        Err(e) => {
            eprintln!("error: {e}");
            if e.is_caller_fault() || matches!(e, crate::Error::Config(_)) {
                exit::INVALID
            } else {
                exit::FAILURE
            }
        }
    }
}

/// One progress line: rewritten in place on a terminal, one line per page otherwise (logs).
fn show(p: &Progress, terminal: bool) {
    let line = format!(
        "reissue: {} scanned, {} re-signed, {} unchanged, {} without event, {} failed",
        p.scanned, p.resigned, p.unchanged, p.without_event, p.failed
    );
    if terminal {
        eprint!("\r{line}");
    } else {
        eprintln!("{line}");
    }
}
