//! `ddcc-mediator`: the command line (see README.md "Command line").

use std::process::ExitCode;

use clap::Parser;
use ddcc_mediator::cli::{self, exit, issue, keys, Cli, Command, KeysArgs};
use ddcc_mediator::keys::{self as key_export, PublishedDsc};
use ddcc_mediator::signer::local::{development_subject, LocalSigner};
use ddcc_mediator::signer::vault::VaultSigner;
use ddcc_mediator::signer::{Signer, SignerKind};
use ddcc_mediator::{Error, Result};

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Serve(args) = &cli.command {
        let _telemetry = ddcc_mediator::telemetry::init_service(args.log_format);
        return match ddcc_mediator::service::serve(args) {
            Ok(()) => ExitCode::from(exit::OK),
            Err(e) => {
                tracing::error!(error = %e, "the service cannot run");
                eprintln!("error: {e}");
                ExitCode::from(exit::FAILURE)
            }
        };
    }
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    ExitCode::from(runtime.block_on(run(cli)))
}

/// Logs go to stderr (stdout carries the command's output), `warn` and up unless RUST_LOG says otherwise.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .without_time()
        .init();
}

async fn run(cli: Cli) -> u8 {
    match cli.command {
        Command::Issue(args) => {
            let config = match args.issuance.to_config() {
                Ok(c) => c,
                Err(e) => return failure(&e),
            };
            match args.signer {
                SignerKind::Local => {
                    let key_dir = args.keys.key_dir.clone();
                    let subject = development_subject(config.issuer_country.as_deref());
                    issue::run(&args, &config, async || {
                        LocalSigner::open_or_create(&key_dir, &subject)
                    })
                    .await
                }
                SignerKind::Vault => {
                    let vault = args.vault.clone();
                    issue::run(&args, &config, async || {
                        VaultSigner::connect(&vault.signer_config()?).await
                    })
                    .await
                }
            }
        }
        Command::Verify(args) => cli::verify::run(&args),
        Command::Keys(args) => match run_keys(args).await {
            Ok(()) => exit::OK,
            Err(e) => failure(&e),
        },
        Command::Reissue(args) => cli::reissue::run(&args).await,
        Command::Serve(_) => unreachable_serve(),
    }
}

async fn run_keys(args: KeysArgs) -> Result<()> {
    match (args.signer, args.command) {
        (SignerKind::Vault, command) => keys::run(command, &args.vault).await,
        (SignerKind::Local, keys::KeysCommand::Export { format, did }) => {
            let signer = LocalSigner::open(&args.key_dir.key_dir)?;
            let dsc = PublishedDsc::from_chain(1, vec![signer.current().dsc_der.clone()])?;
            cli::print_stdout(&key_export::render(&[dsc], format, did.as_deref())?);
            Ok(())
        }
        (SignerKind::Local, keys::KeysCommand::Withdraw { kid, issuer_country }) => {
            let dir = &args.key_dir.key_dir;
            let subject = development_subject(issuer_country.as_deref());
            let new = ddcc_mediator::signer::local::withdraw(dir, &kid, &subject)?;
            eprintln!(
                "key {kid} withdrawn: it signs nothing more; its DSC stays published until `ddcc-mediator reissue` has re-signed its certificates"
            );
            cli::print_stdout(&format!("{}\n", hex::encode(new)));
            Ok(())
        }
        (SignerKind::Local, _) => Err(Error::Config(
            "this keys command manages Vault transit keys: add --signer vault (the local development key is created by `issue`)".into(),
        )),
    }
}

/// `serve` returns from `main` before the CLI runtime starts.
fn unreachable_serve() -> u8 {
    eprintln!("error: serve runs outside the command runtime");
    exit::FAILURE
}

fn failure(error: &Error) -> u8 {
    eprintln!("error: {error}");
    exit::FAILURE
}
