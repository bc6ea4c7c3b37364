//! `ddcc-mediator keys …`: the signing-key lifecycle in Vault transit.

use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::keys::{self, DevCa, DscSubject, ExportFormat};
use crate::signer::vault::VaultSettings;

/// The DSC subject (C, O, CN) put in CSRs.
#[derive(Debug, Clone, clap::Args)]
pub struct SubjectArgs {
    /// ISO 3166-1 alpha-2 country of the issuer.
    #[arg(long = "dsc-country", env = "DDCC_DSC_COUNTRY", default_value = "XX")]
    pub country: String,
    #[arg(
        long = "dsc-org",
        env = "DDCC_DSC_ORG",
        default_value = "DDCC Dev Issuer"
    )]
    pub organization: String,
    #[arg(long = "dsc-cn", env = "DDCC_DSC_CN", default_value = "XX DDCC DSC")]
    pub common_name: String,
}

impl From<SubjectArgs> for DscSubject {
    fn from(a: SubjectArgs) -> Self {
        DscSubject {
            country: a.country,
            organization: a.organization,
            common_name: a.common_name,
        }
    }
}

#[derive(Debug, Clone, clap::Subcommand)]
pub enum KeysCommand {
    /// Create the transit key if missing (and the transit mount), and check its type.
    Init,
    /// Print a CSR for a key version (default: the latest), signed inside Vault.
    Csr {
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        subject: SubjectArgs,
    },
    /// Store a DSC chain (PEM file, DSC first) for the key version it certifies.
    ImportCertificate {
        pem: PathBuf,
        /// Check the DSC against this version instead of finding it.
        #[arg(long)]
        version: Option<u32>,
    },
    /// Add a key version; it signs once it has a DSC, older versions keep verifying.
    Rotate,
    /// Tests and demos only: create a dev CSCA in Vault's PKI engine and give the key version a
    /// DSC signed by it.
    DevCertify {
        #[arg(long)]
        version: Option<u32>,
        #[command(flatten)]
        subject: SubjectArgs,
        #[arg(long, default_value = "pki")]
        pki_mount: String,
        #[arg(long, default_value = "XX DDCC Dev CSCA")]
        csca_cn: String,
        /// DSC lifetime (Vault TTL).
        #[arg(long, default_value = "8760h")]
        dsc_ttl: String,
    },
    /// Withdraw a signing key (its kid, hex): it makes no new signature, and its DSC stays published only
    /// until `ddcc-mediator reissue` has re-signed its certificates. Local signer: a new key and DSC replace
    /// it; prints the new kid.
    Withdraw {
        kid: String,
        /// Subject country of the local signer's new development DSC (as `serve`'s).
        #[arg(long, env = "DDCC_ISSUER_COUNTRY")]
        issuer_country: Option<String>,
    },
    /// Print every DSC that has not expired.
    Export {
        #[arg(long, value_enum, default_value = "pem")]
        format: ExportFormat,
        /// The DID the document is published under (for --format did), e.g. did:web:example.org.
        #[arg(long)]
        did: Option<String>,
    },
}

pub async fn run(cmd: KeysCommand, vault: &VaultSettings) -> Result<()> {
    let transit = vault.transit().await?;
    match cmd {
        KeysCommand::Init => {
            let key = keys::init(&transit, vault.key_type).await?;
            outln!(
                "transit key {} ({}), latest version {}",
                key.name,
                key.key_type,
                key.latest_version
            );
        }
        KeysCommand::Csr { version, subject } => {
            out!("{}", keys::csr(&transit, version, &subject.into()).await?);
        }
        KeysCommand::ImportCertificate { pem, version } => {
            let text = std::fs::read_to_string(&pem)
                .map_err(|e| Error::io(format!("reading {}", pem.display()), e))?;
            let version = keys::import_certificate(&transit, version, &text).await?;
            outln!("certificate stored for version {version}");
        }
        KeysCommand::Rotate => {
            let version = keys::rotate(&transit).await?;
            outln!("new key version {version}; give it a DSC before it signs");
        }
        KeysCommand::DevCertify {
            version,
            subject,
            pki_mount,
            csca_cn,
            dsc_ttl,
        } => {
            let ca = DevCa {
                pki_mount,
                csca_common_name: csca_cn,
                country: subject.country.clone(),
                dsc_ttl,
                ..DevCa::default()
            };
            let version = keys::dev_certify(&transit, &ca, &subject.into(), version).await?;
            outln!("version {version} certified by the dev CSCA");
        }
        KeysCommand::Withdraw { kid, .. } => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let version = keys::withdraw(&transit, &kid, now).await?;
            eprintln!(
                "kid {kid} withdrawn: transit signs with none of its versions; its DSC stays published until \
                 `ddcc-mediator reissue` has re-signed its certificates"
            );
            outln!("{version}");
        }
        KeysCommand::Export { format, did } => {
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            out!(
                "{}",
                keys::export(&transit, format, did.as_deref(), now).await?
            );
        }
    }
    Ok(())
}
