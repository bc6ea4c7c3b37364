//! Settings: [`IssuanceConfig`] (how certificates are issued, shared by `issue` and `serve`) and
//! [`ServiceConfig`] (everything `ddcc-mediator serve` needs), each resolved once at start-up.
//!
//! Precedence: built-in defaults < TOML file (`DDCC_CONFIG` / `--config`) < environment < flags. Clap reads the
//! environment and the flags (flags win); the file fills whatever neither set. Vault credentials come from the
//! environment or flags only ([`VaultSettings`]): secrets do not belong in a config file. Every value is checked
//! here, so a bad setting stops the service before it listens, with a message naming the setting.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::error::{Error, Result};
use crate::http::client_address::{ForwardedHeader, TrustedProxies};
use crate::render::pdf::{Labels, Language, Paper};
use crate::service::access::Method;
use crate::service::oidc::OidcSettings;
use crate::service::ratelimit::Rate;
use crate::signer::vault::VaultSettings;
use crate::signer::SignerKind;

/// `--paper` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PaperArg {
    A4,
    Letter,
}

impl From<PaperArg> for Paper {
    fn from(p: PaperArg) -> Self {
        match p {
            PaperArg::A4 => Paper::A4,
            PaperArg::Letter => Paper::Letter,
        }
    }
}

/// `ddcc-mediator serve` flags; each also reads the environment variable named in its `env`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// TOML configuration file (see README "Run the service").
    #[arg(long, env = "DDCC_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to listen on. Default 127.0.0.1:4321.
    #[arg(long, env = "DDCC_LISTEN")]
    pub listen: Option<String>,
    /// Local store and local keys. Default ./data.
    #[arg(long, env = "DDCC_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// FHIR server base URL (e.g. http://hapi:8080/fhir). Unset: certificates are kept in the data directory.
    #[arg(long, env = "DDCC_FHIR_URL")]
    pub fhir_url: Option<String>,
    /// Base URL of this service as citizens reach it (download links). Default http://<listen>.
    #[arg(long, env = "DDCC_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Largest accepted request body, bytes. Default 1048576.
    #[arg(long, env = "DDCC_BODY_LIMIT")]
    pub body_limit: Option<usize>,
    /// Batch entries issued at the same time. Default 8.
    #[arg(long, env = "DDCC_BATCH_CONCURRENCY")]
    pub batch_concurrency: Option<usize>,
    /// Most entries accepted in one batch. Default 1000.
    #[arg(long, env = "DDCC_MAX_BATCH_ENTRIES")]
    pub max_batch_entries: Option<usize>,
    /// Seconds each call to the FHIR server or OpenHIM may take (connect and answer). Default 10.
    #[arg(long, env = "DDCC_OUTBOUND_TIMEOUT")]
    pub outbound_timeout: Option<u64>,
    /// Which key signs. Default local.
    #[arg(long, value_enum, env = "DDCC_SIGNER")]
    pub signer: Option<SignerKind>,
    /// Key directory of the local signer. Default <data-dir>/keys.
    #[arg(long, env = "DDCC_KEY_DIR")]
    pub key_dir: Option<PathBuf>,
    #[command(flatten)]
    pub vault: VaultSettings,
    /// CWT `iss` (ISO 3166-1 alpha-2). Default: the vaccination country.
    #[arg(long, env = "DDCC_ISSUER_COUNTRY")]
    pub issuer_country: Option<String>,
    /// Days a certificate stays valid. Default 365.
    #[arg(long, env = "DDCC_VALIDITY_DAYS")]
    pub validity_days: Option<u64>,
    /// Days before expiry from which an unchanged event's certificate is signed anew on request. Default 28.
    #[arg(long, env = "DDCC_RENEWAL_DAYS")]
    pub renewal_days: Option<u64>,
    /// Tests only: seconds by which the service's clock is moved (iat, exp, renewal). Environment only, not
    /// in --help or the TOML file; every start-up with it logs a warning (see `crate::clock`).
    #[arg(
        long = "test-clock-offset",
        env = "DDCC_TEST_CLOCK_OFFSET",
        hide = true,
        allow_hyphen_values = true
    )]
    pub test_clock_offset: Option<i64>,
    /// hcert sub-claim of the DDCC core data set: 3 or 1. Default 3.
    #[arg(long, env = "DDCC_HCERT_KEY")]
    pub ddcc_hcert_key: Option<i64>,
    /// Name of the issuing public health authority (Organization.name).
    #[arg(long, env = "DDCC_ISSUER_NAME")]
    pub issuer_name: Option<String>,
    /// Do not issue the EU DCC payload.
    #[arg(long, env = "DDCC_NO_DCC")]
    pub no_dcc: bool,
    /// Paper size of the citizen PDF (default A4).
    #[arg(long, env = "DDCC_PDF_PAPER", value_enum)]
    pub paper: Option<PaperArg>,
    /// Translated labels for the citizen PDF (JSON; missing keys stay English), in place of the built-in
    /// labels of DDCC_PDF_LANGUAGE.
    #[arg(long, env = "DDCC_PDF_LABELS")]
    pub labels: Option<PathBuf>,
    /// Language of the citizen PDF (ar, en, es, fr, ru, zh) unless the QuestionnaireResponse asks for
    /// another of these. Default en.
    #[arg(long, env = "DDCC_PDF_LANGUAGE")]
    pub language: Option<crate::render::pdf::Language>,
    /// Comma-separated SHA-256 hex digests of the accepted API keys.
    #[arg(long, env = "DDCC_API_KEYS", hide_env_values = true)]
    pub api_keys: Option<String>,
    /// OpenHIM core API URL (e.g. https://openhim:8080). Unset: no OpenHIM.
    #[arg(long, env = "OPENHIM_URL")]
    pub openhim_url: Option<String>,
    #[arg(long, env = "OPENHIM_USERNAME")]
    pub openhim_username: Option<String>,
    #[arg(long, env = "OPENHIM_PASSWORD", hide_env_values = true)]
    pub openhim_password: Option<String>,
    /// OpenHIM API authentication: token (4.x–8.x) or basic (7.1+). Default token.
    #[arg(long, value_enum, env = "OPENHIM_AUTH")]
    pub openhim_auth: Option<OpenHimAuth>,
    /// Accept the OpenHIM API's self-signed TLS certificate.
    #[arg(long, env = "OPENHIM_TRUST_SELF_SIGNED")]
    pub openhim_trust_self_signed: Option<bool>,
    /// Host name OpenHIM uses to reach this service. Default: the listen address ("localhost" for 0.0.0.0).
    #[arg(long, env = "DDCC_MEDIATOR_HOST")]
    pub mediator_host: Option<String>,
    /// Port OpenHIM uses to reach this service. Default: the listen port.
    #[arg(long, env = "DDCC_MEDIATOR_PORT")]
    pub mediator_port: Option<u16>,
    /// API key OpenHIM presents to this service on its channel route (Basic password). Default: a key
    /// generated into <data-dir>/openhim-route-key.
    #[arg(long, env = "DDCC_OPENHIM_ROUTE_KEY", hide_env_values = true)]
    pub openhim_route_key: Option<String>,
    /// Accepted ways to authenticate on the issuing endpoints, comma-separated: api-key, oidc, mtls.
    /// Default: api-key, plus oidc when DDCC_OIDC_ISSUER is set, plus mtls when DDCC_TLS_CLIENT_CA is set.
    #[arg(long, env = "DDCC_AUTH")]
    pub auth: Option<String>,
    /// OIDC issuer URL (Keycloak: https://host/realms/<realm>); enables OIDC bearer tokens.
    #[arg(long, env = "DDCC_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    /// The audience OIDC tokens must name (this service's client id at the provider).
    #[arg(long, env = "DDCC_OIDC_AUDIENCE")]
    pub oidc_audience: Option<String>,
    /// Role or scope an OIDC token must grant (e.g. ddcc:issue). Default: none required.
    #[arg(long, env = "DDCC_OIDC_REQUIRED_ROLE")]
    pub oidc_required_role: Option<String>,
    /// Least seconds between two JWKS refreshes, whatever their cause (unknown kid, age, failure). Default 30.
    #[arg(long, env = "DDCC_OIDC_JWKS_MIN_REFRESH")]
    pub oidc_jwks_min_refresh: Option<u64>,
    /// Seconds after which the cached JWKS is refreshed in the background. Default 3600.
    #[arg(long, env = "DDCC_OIDC_JWKS_MAX_AGE")]
    pub oidc_jwks_max_age: Option<u64>,
    /// Serve HTTPS with this certificate chain (PEM); needs DDCC_TLS_KEY.
    #[arg(long, env = "DDCC_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// Private key (PEM) of DDCC_TLS_CERT.
    #[arg(long, env = "DDCC_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA certificate(s) (PEM) whose client certificates authenticate callers (mutual TLS).
    #[arg(long, env = "DDCC_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
    /// Citizen downloads per client IP: N/s, N/min or N/h, or "off". Default 30/min.
    #[arg(long, env = "DDCC_DOWNLOAD_RATE")]
    pub download_rate: Option<String>,
    /// Downloads a client may make at once before the rate applies. Default: N of DDCC_DOWNLOAD_RATE.
    #[arg(long, env = "DDCC_DOWNLOAD_BURST")]
    pub download_burst: Option<u32>,
    /// Other signers' DSCs that `POST /ddcc/verify` trusts besides ours: a PEM bundle, a JWKS (with x5c)
    /// or a DID document.
    #[arg(long, env = "DDCC_TRUST_ANCHORS")]
    pub trust_anchors: Option<PathBuf>,
    /// Most client connections open at once (all addresses). Default 1024.
    #[arg(long, env = "DDCC_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Most connections open at once from one client address. Default 128.
    #[arg(long, env = "DDCC_MAX_CONNECTIONS_PER_CLIENT")]
    pub max_connections_per_client: Option<usize>,
    /// Seconds a request's head and body may take to arrive, and a connection may stay open with no request
    /// being handled. Default 30.
    #[arg(long, env = "DDCC_REQUEST_TIMEOUT")]
    pub request_timeout: Option<u64>,
    /// Seconds an idle keep-alive connection stays open. Default 5 (0: no keep-alive).
    #[arg(long, env = "DDCC_KEEP_ALIVE")]
    pub keep_alive: Option<u64>,
    /// Largest batch-response, bytes, answered with the document Bundles; past it, entries carry only
    /// references and links. Default 4194304.
    #[arg(long, env = "DDCC_MAX_RESPONSE_BYTES")]
    pub max_response_bytes: Option<usize>,
    /// Refused requests recorded one AuditEvent each, per client address: N/s, N/min or N/h, or "off".
    /// The rest are counted in summary AuditEvents. Default 60/min.
    #[arg(long, env = "DDCC_AUDIT_REFUSAL_RATE")]
    pub audit_refusal_rate: Option<String>,
    /// Subject DN of OpenHIM's client certificate (mutual TLS): its X-OpenHIM-ClientID is trusted, as that of
    /// requests with the OpenHIM route key.
    #[arg(long, env = "DDCC_OPENHIM_CERT_SUBJECT")]
    pub openhim_cert_subject: Option<String>,
    /// Our proxies and load balancers (addresses or CIDR networks, comma-separated): from these peers the
    /// client address is read from DDCC_FORWARDED_HEADER (per-client limits, audit). Default: none.
    #[arg(long, env = "DDCC_TRUSTED_PROXIES")]
    pub trusted_proxies: Option<String>,
    /// The header the trusted proxies write: x-forwarded-for or forwarded (RFC 7239). Default x-forwarded-for.
    #[arg(long, value_enum, env = "DDCC_FORWARDED_HEADER")]
    pub forwarded_header: Option<ForwardedHeader>,
    /// Threads doing CPU work (HTTP workers, the service runtime, rendering). Default: the CPUs
    /// this process may use (its affinity and its cgroup CPU quota, as a container limit sets).
    #[arg(long, env = "DDCC_WORKERS")]
    pub workers: Option<usize>,
    /// Seconds between SIGTERM and closing the listener: /health/ready answers 503 while requests are still
    /// served, so the load balancer stops sending before the port closes. Default 0.
    #[arg(long, env = "DDCC_SHUTDOWN_DELAY")]
    pub shutdown_delay: Option<u64>,
    /// Log format: text or json. Default text.
    #[arg(long, value_enum, env = "DDCC_LOG_FORMAT", default_value = "text")]
    pub log_format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OpenHimAuth {
    /// OpenHIM's salted SHA-512 token headers (every core version up to 8.x).
    Token,
    /// HTTP Basic (core 7.1 and later).
    Basic,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The TOML file: the same settings, snake_case, all optional.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    data_dir: Option<PathBuf>,
    fhir_url: Option<String>,
    public_url: Option<String>,
    body_limit: Option<usize>,
    batch_concurrency: Option<usize>,
    max_batch_entries: Option<usize>,
    outbound_timeout: Option<u64>,
    signer: Option<String>,
    key_dir: Option<PathBuf>,
    api_keys: Option<Vec<String>>,
    issuance: Option<IssuanceConfig>,
    openhim: Option<FileOpenHim>,
    auth: Option<Vec<Method>>,
    oidc_issuer: Option<String>,
    oidc_audience: Option<String>,
    oidc_required_role: Option<String>,
    tls_cert: Option<PathBuf>,
    tls_key: Option<PathBuf>,
    tls_client_ca: Option<PathBuf>,
    download_rate: Option<String>,
    download_burst: Option<u32>,
    max_connections: Option<usize>,
    max_connections_per_client: Option<usize>,
    request_timeout: Option<u64>,
    keep_alive: Option<u64>,
    max_response_bytes: Option<usize>,
    audit_refusal_rate: Option<String>,
    trusted_proxies: Option<String>,
    forwarded_header: Option<ForwardedHeader>,
    workers: Option<usize>,
    shutdown_delay: Option<u64>,
}

#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct FileOpenHim {
    url: Option<String>,
    username: Option<String>,
    auth: Option<OpenHimAuth>,
    trust_self_signed: Option<bool>,
    mediator_host: Option<String>,
    mediator_port: Option<u16>,
    cert_subject: Option<String>,
}

/// The resolved settings of the service.
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// FHIR base URL without a trailing slash; `None`: the local store.
    pub fhir_url: Option<String>,
    /// Base of citizen download links, without a trailing slash.
    pub public_url: String,
    pub body_limit: usize,
    pub batch_concurrency: usize,
    pub max_batch_entries: usize,
    /// Timeout of every call to the FHIR server and OpenHIM (Vault has `VAULT_TIMEOUT`).
    pub outbound_timeout: Duration,
    pub signer: SignerKind,
    pub key_dir: PathBuf,
    pub vault: VaultSettings,
    pub issuance: IssuanceConfig,
    /// SHA-256 digests of the accepted API keys; empty: a key is generated into the data directory.
    pub api_key_digests: Vec<[u8; 32]>,
    pub openhim: Option<OpenHimConfig>,
    /// True when nothing was configured: local signer, local store (logged at start-up).
    pub embedded_defaults: bool,
    /// Accepted authentication methods of the issuing endpoints.
    pub auth_methods: Vec<Method>,
    pub oidc: Option<OidcSettings>,
    /// HTTPS (and mutual TLS); `None`: plain HTTP.
    pub tls: Option<TlsConfig>,
    /// Citizen download rate per client IP; `None`: unlimited. Verifications have their own buckets at
    /// the same rate.
    pub download_rate: Option<Rate>,
    /// File of further trusted DSCs for `POST /ddcc/verify` (`DDCC_TRUST_ANCHORS`).
    pub trust_anchors: Option<PathBuf>,
    /// Most client connections at once, and from one address.
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    /// Deadline of a request's head and of its body; idle time after which a connection is closed.
    pub request_timeout: Duration,
    /// Idle time of a keep-alive connection (zero: none).
    pub keep_alive: Duration,
    /// Largest batch-response with the documents in full.
    pub max_response_bytes: usize,
    /// Refusals recorded one AuditEvent each per client address; `None`: every one.
    pub audit_refusal_rate: Option<Rate>,
    /// Subject DN of OpenHIM's client certificate, whose `X-OpenHIM-ClientID` is trusted.
    pub openhim_cert_subject: Option<String>,
    /// Peers whose forwarding header names the client.
    pub trusted_proxies: TrustedProxies,
    /// Threads doing CPU work, and where the figure came from (logged at start-up).
    pub workers: Workers,
    /// Time between SIGTERM and closing the listener.
    pub shutdown_delay: Duration,
    /// The clock that dates certificates and judges their renewal (moved only in tests).
    pub clock: crate::clock::Clock,
}

/// How many threads do CPU work.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Workers {
    pub count: usize,
    /// `DDCC_WORKERS`, or the CPUs available to the process.
    pub source: &'static str,
}

impl Workers {
    /// `DDCC_WORKERS` when set, otherwise the CPUs this process may use. `std` reads the affinity mask and
    /// the cgroup (v1 and v2) CPU quota, rounded down, at least 1: a container limited to 1.5 CPUs on a
    /// 64-core node gets 1, not 64.
    fn resolve(setting: Option<usize>) -> Result<Self> {
        match setting {
            Some(0) => Err(Error::Config("DDCC_WORKERS must be at least 1".into())),
            Some(count) => Ok(Workers {
                count,
                source: "DDCC_WORKERS",
            }),
            None => Ok(Self::available()),
        }
    }

    /// The CPUs this process may use.
    pub fn available() -> Self {
        Workers {
            count: std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
            source: "CPUs available (affinity, cgroup quota)",
        }
    }
}

#[derive(Debug, Clone)]
pub struct TlsConfig {
    pub cert: PathBuf,
    pub key: PathBuf,
    /// CA whose client certificates authenticate callers; `None`: no client certificates asked for.
    pub client_ca: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct OpenHimConfig {
    /// API base URL without a trailing slash.
    pub url: String,
    pub username: String,
    pub password: String,
    pub auth: OpenHimAuth,
    pub trust_self_signed: bool,
    /// Where OpenHIM reaches this service (endpoints and channel routes).
    pub mediator_host: String,
    pub mediator_port: u16,
    /// The key on the channel route; `None`: generated into the data directory at start-up.
    pub route_key: Option<String>,
    /// Timeout of each API call (`DDCC_OUTBOUND_TIMEOUT`).
    pub timeout: Duration,
}

/// Default timeout of every outbound call (FHIR server, OpenHIM; `DDCC_OUTBOUND_TIMEOUT`); Vault has its
/// own (`VAULT_TIMEOUT`).
pub const OUTBOUND_TIMEOUT: Duration = Duration::from_secs(10);

impl ServiceConfig {
    /// Resolves flags/environment over the file over the defaults, and validates the result.
    pub fn resolve(args: &ServeArgs) -> Result<Self> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = pick(args.listen.clone(), file.listen, "127.0.0.1:4321".into());
        let listen: SocketAddr = listen_text.parse().map_err(|_| {
            Error::Config(format!(
                "DDCC_LISTEN must be an address such as 127.0.0.1:4321, not {listen_text:?}"
            ))
        })?;
        let data_dir = pick(args.data_dir.clone(), file.data_dir, PathBuf::from("data"));
        let fhir_url = args
            .fhir_url
            .clone()
            .or(file.fhir_url)
            .map(|u| base_url("DDCC_FHIR_URL", &u))
            .transpose()?;
        let public_url = match args.public_url.clone().or(file.public_url) {
            Some(u) => base_url("DDCC_PUBLIC_URL", &u)?,
            None => format!("http://{listen}"),
        };
        let body_limit = positive(
            "DDCC_BODY_LIMIT",
            pick(args.body_limit, file.body_limit, 1_048_576),
        )?;
        let batch_concurrency = positive(
            "DDCC_BATCH_CONCURRENCY",
            pick(args.batch_concurrency, file.batch_concurrency, 8),
        )?;
        let max_batch_entries = positive(
            "DDCC_MAX_BATCH_ENTRIES",
            pick(args.max_batch_entries, file.max_batch_entries, 1000),
        )?;
        let outbound_timeout = match pick(
            args.outbound_timeout,
            file.outbound_timeout,
            OUTBOUND_TIMEOUT.as_secs(),
        ) {
            0 => {
                return Err(Error::Config(
                    "DDCC_OUTBOUND_TIMEOUT must be at least 1 second".into(),
                ))
            }
            secs => Duration::from_secs(secs),
        };
        let signer = match (args.signer, file.signer.as_deref()) {
            (Some(s), _) => s,
            (None, None | Some("local")) => SignerKind::Local,
            (None, Some("vault")) => SignerKind::Vault,
            (None, Some(other)) => {
                return Err(Error::Config(format!(
                    "signer must be \"local\" or \"vault\", not {other:?}"
                )))
            }
        };
        let key_dir = args
            .key_dir
            .clone()
            .or(file.key_dir)
            .unwrap_or_else(|| data_dir.join("keys"));
        if signer == SignerKind::Vault {
            args.vault.auth()?; // credentials present and coherent
        }

        let issuance = issuance(args, file.issuance.unwrap_or_default())?;

        let api_key_digests = match args.api_keys.clone() {
            Some(list) => parse_digests(list.split(',').map(str::to_owned))?,
            None => parse_digests(file.api_keys.unwrap_or_default())?,
        };

        let file_openhim = file.openhim.unwrap_or_default();
        let file_openhim_cert_subject = file_openhim.cert_subject.clone();
        let openhim = match args.openhim_url.clone().or(file_openhim.url) {
            None => None,
            Some(url) => {
                let url = base_url("OPENHIM_URL", &url)?;
                let username = args
                    .openhim_username
                    .clone()
                    .or(file_openhim.username)
                    .ok_or_else(|| {
                        Error::Config("OPENHIM_URL is set but OPENHIM_USERNAME is not".into())
                    })?;
                let password = args.openhim_password.clone().ok_or_else(|| {
                    Error::Config("OPENHIM_URL is set but OPENHIM_PASSWORD is not".into())
                })?;
                let default_host = match listen.ip() {
                    ip if ip.is_unspecified() => "localhost".to_owned(),
                    ip => ip.to_string(),
                };
                Some(OpenHimConfig {
                    url,
                    username,
                    password,
                    auth: pick(args.openhim_auth, file_openhim.auth, OpenHimAuth::Token),
                    trust_self_signed: pick(
                        args.openhim_trust_self_signed,
                        file_openhim.trust_self_signed,
                        false,
                    ),
                    mediator_host: pick(
                        args.mediator_host.clone(),
                        file_openhim.mediator_host,
                        default_host,
                    ),
                    mediator_port: pick(
                        args.mediator_port,
                        file_openhim.mediator_port,
                        listen.port(),
                    ),
                    route_key: args.openhim_route_key.clone().filter(|k| !k.is_empty()),
                    timeout: outbound_timeout,
                })
            }
        };
        let embedded_defaults = signer == SignerKind::Local && fhir_url.is_none();
        let oidc = match args.oidc_issuer.clone().or(file.oidc_issuer) {
            None => None,
            Some(issuer) => {
                base_url("DDCC_OIDC_ISSUER", &issuer)?;
                let audience = args
                    .oidc_audience
                    .clone()
                    .or(file.oidc_audience)
                    .filter(|a| !a.is_empty())
                    .ok_or_else(|| {
                        Error::Config(
                            "DDCC_OIDC_ISSUER is set but DDCC_OIDC_AUDIENCE is not".into(),
                        )
                    })?;
                Some(OidcSettings {
                    // Exactly as configured: `iss` is compared byte for byte.
                    issuer: issuer.trim().to_owned(),
                    audience,
                    required_role: args
                        .oidc_required_role
                        .clone()
                        .or(file.oidc_required_role)
                        .filter(|r| !r.is_empty()),
                    min_refresh: Duration::from_secs(args.oidc_jwks_min_refresh.unwrap_or(30)),
                    max_age: match args.oidc_jwks_max_age {
                        None => crate::service::oidc::MAX_KEY_AGE,
                        Some(0) => {
                            return Err(Error::Config(
                                "DDCC_OIDC_JWKS_MAX_AGE must be at least 1 second".into(),
                            ))
                        }
                        Some(secs) => Duration::from_secs(secs),
                    },
                })
            }
        };
        let tls = match (
            args.tls_cert.clone().or(file.tls_cert),
            args.tls_key.clone().or(file.tls_key),
            args.tls_client_ca.clone().or(file.tls_client_ca),
        ) {
            (None, None, None) => None,
            (Some(cert), Some(key), client_ca) => Some(TlsConfig {
                cert,
                key,
                client_ca,
            }),
            _ => return Err(Error::Config(
                "DDCC_TLS_CERT and DDCC_TLS_KEY go together (and DDCC_TLS_CLIENT_CA needs both)"
                    .into(),
            )),
        };
        let auth_methods = match (args.auth.as_deref(), file.auth) {
            (Some(list), _) => list
                .split(',')
                .map(str::trim)
                .filter(|m| !m.is_empty())
                .map(|m| {
                    <Method as clap::ValueEnum>::from_str(m, true).map_err(|_| {
                        Error::Config(format!("DDCC_AUTH lists api-key, oidc and mtls, not {m:?}"))
                    })
                })
                .collect::<Result<Vec<_>>>()?,
            (None, Some(list)) => list,
            (None, None) => {
                let mut methods = vec![Method::ApiKey];
                if oidc.is_some() {
                    methods.push(Method::Oidc);
                }
                if tls.as_ref().is_some_and(|t| t.client_ca.is_some()) {
                    methods.push(Method::Mtls);
                }
                methods
            }
        };
        if auth_methods.is_empty() {
            return Err(Error::Config("DDCC_AUTH lists no method".into()));
        }
        if auth_methods.contains(&Method::Oidc) && oidc.is_none() {
            return Err(Error::Config(
                "DDCC_AUTH has oidc but DDCC_OIDC_ISSUER is not set".into(),
            ));
        }
        if auth_methods.contains(&Method::Mtls)
            && tls.as_ref().is_none_or(|t| t.client_ca.is_none())
        {
            return Err(Error::Config(
                "DDCC_AUTH has mtls but DDCC_TLS_CLIENT_CA is not set".into(),
            ));
        }
        let download_rate = match args
            .download_rate
            .clone()
            .or(file.download_rate)
            .unwrap_or_else(|| "30/min".into())
        {
            off if off.trim().eq_ignore_ascii_case("off") => None,
            rate => Some(Rate::parse(
                "DDCC_DOWNLOAD_RATE",
                &rate,
                args.download_burst.or(file.download_burst),
            )?),
        };
        let max_connections = positive(
            "DDCC_MAX_CONNECTIONS",
            pick(args.max_connections, file.max_connections, 1024),
        )?;
        let max_connections_per_client = positive(
            "DDCC_MAX_CONNECTIONS_PER_CLIENT",
            pick(
                args.max_connections_per_client,
                file.max_connections_per_client,
                128,
            ),
        )?;
        let request_timeout = match pick(args.request_timeout, file.request_timeout, 30) {
            0 => {
                return Err(Error::Config(
                    "DDCC_REQUEST_TIMEOUT must be at least 1 second".into(),
                ))
            }
            secs => Duration::from_secs(secs),
        };
        let keep_alive = Duration::from_secs(pick(args.keep_alive, file.keep_alive, 5));
        let max_response_bytes = pick(
            args.max_response_bytes,
            file.max_response_bytes,
            4 * 1024 * 1024,
        );
        if max_response_bytes < 64 * 1024 {
            return Err(Error::Config(
                "DDCC_MAX_RESPONSE_BYTES must be at least 65536 (one document Bundle)".into(),
            ));
        }
        let audit_refusal_rate = match args
            .audit_refusal_rate
            .clone()
            .or(file.audit_refusal_rate)
            .unwrap_or_else(|| "60/min".into())
        {
            off if off.trim().eq_ignore_ascii_case("off") => None,
            rate => Some(Rate::parse("DDCC_AUDIT_REFUSAL_RATE", &rate, None)?),
        };
        let openhim_cert_subject = args
            .openhim_cert_subject
            .clone()
            .or(file_openhim_cert_subject)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty());
        let trusted_proxies = TrustedProxies::parse(
            args.trusted_proxies
                .as_deref()
                .or(file.trusted_proxies.as_deref())
                .unwrap_or(""),
            pick(
                args.forwarded_header,
                file.forwarded_header,
                ForwardedHeader::XForwardedFor,
            ),
        )?;
        let workers = Workers::resolve(args.workers.or(file.workers))?;
        let shutdown_delay = Duration::from_secs(pick(args.shutdown_delay, file.shutdown_delay, 0));
        if shutdown_delay > Duration::from_secs(300) {
            return Err(Error::Config(
                "DDCC_SHUTDOWN_DELAY must be at most 300 seconds".into(),
            ));
        }
        Ok(ServiceConfig {
            listen,
            data_dir,
            fhir_url,
            public_url,
            body_limit,
            batch_concurrency,
            max_batch_entries,
            outbound_timeout,
            signer,
            key_dir,
            vault: args.vault.clone(),
            issuance,
            api_key_digests,
            openhim,
            embedded_defaults,
            auth_methods,
            oidc,
            tls,
            download_rate,
            trust_anchors: args.trust_anchors.clone(),
            max_connections,
            max_connections_per_client,
            request_timeout,
            keep_alive,
            max_response_bytes,
            audit_refusal_rate,
            openhim_cert_subject,
            trusted_proxies,
            workers,
            shutdown_delay,
            clock: args
                .test_clock_offset
                .map_or_else(crate::clock::Clock::system, crate::clock::Clock::offset_by),
        })
    }
}

fn read_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::io(
            format!("reading the configuration file {}", path.display()),
            e,
        )
    })?;
    toml::from_str(&text)
        .map_err(|e| Error::Config(format!("configuration file {}: {e}", path.display())))
}

fn pick<T>(flag_or_env: Option<T>, file: Option<T>, default: T) -> T {
    flag_or_env.or(file).unwrap_or(default)
}

fn positive(name: &str, value: usize) -> Result<usize> {
    if value == 0 {
        return Err(Error::Config(format!("{name} must be at least 1")));
    }
    Ok(value)
}

/// An http(s) URL, without its trailing slash.
fn base_url(name: &str, url: &str) -> Result<String> {
    let trimmed = url.trim().trim_end_matches('/');
    let parsed = reqwest::Url::parse(trimmed)
        .map_err(|e| Error::Config(format!("{name} is not a URL ({e}): {url:?}")))?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(Error::Config(format!(
            "{name} must be an http:// or https:// URL, not {url:?}"
        )));
    }
    Ok(trimmed.to_owned())
}

fn issuance(args: &ServeArgs, file: IssuanceConfig) -> Result<IssuanceConfig> {
    let config = IssuanceConfig {
        issuer_country: args.issuer_country.clone().or(file.issuer_country),
        validity: match args.validity_days {
            Some(days) => Duration::from_secs(days.saturating_mul(24 * 3600)),
            None => file.validity,
        },
        renewal: match args.renewal_days {
            Some(days) => Duration::from_secs(days.saturating_mul(24 * 3600)),
            None => file.renewal,
        },
        ddcc_hcert_key: args.ddcc_hcert_key.unwrap_or(file.ddcc_hcert_key),
        issuer_name: args.issuer_name.clone().or(file.issuer_name),
        emit_dcc: !args.no_dcc && file.emit_dcc,
        paper: args
            .paper
            .map(crate::render::pdf::Paper::from)
            .unwrap_or(file.paper),
        labels: match &args.labels {
            Some(path) => Some(crate::render::pdf::Labels::from_file(path)?),
            None => file.labels,
        },
        language: args.language.unwrap_or(file.language),
    };
    validate_issuance(&config)?;
    Ok(config)
}

/// The checks every source of issuance settings goes through (start-up and OpenHIM live config).
pub fn validate_issuance(config: &IssuanceConfig) -> Result<()> {
    if let Some(iss) = &config.issuer_country {
        if iss.len() != 2 || !iss.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(Error::Config(format!(
                "DDCC_ISSUER_COUNTRY must be an ISO 3166-1 alpha-2 code such as \"CH\", not {iss:?}"
            )));
        }
    }
    if config.validity < Duration::from_secs(24 * 3600) {
        return Err(Error::Config(
            "DDCC_VALIDITY_DAYS must be at least 1".into(),
        ));
    }
    // A window as long as the validity would renew every certificate on every request.
    if config.renewal >= config.validity {
        return Err(Error::Config(format!(
            "DDCC_RENEWAL_DAYS ({}) must be less than DDCC_VALIDITY_DAYS ({})",
            config.renewal.as_secs() / (24 * 3600),
            config.validity.as_secs() / (24 * 3600)
        )));
    }
    if !matches!(config.ddcc_hcert_key, 1 | 3) {
        return Err(Error::Config(format!(
            "DDCC_HCERT_KEY must be 3 (SMART Trust) or 1 (WHO reference mediator), not {}",
            config.ddcc_hcert_key
        )));
    }
    Ok(())
}

fn parse_digests(list: impl IntoIterator<Item = String>) -> Result<Vec<[u8; 32]>> {
    list.into_iter()
        .map(|s| s.trim().to_ascii_lowercase())
        .filter(|s| !s.is_empty())
        .map(|s| {
            let mut digest = [0u8; 32];
            hex::decode_to_slice(&s, &mut digest).map_err(|_| {
                Error::Config(
                    "DDCC_API_KEYS must list SHA-256 digests as 64 hex characters, comma-separated \
                     (e.g. `printf %s \"$KEY\" | sha256sum`)"
                        .into(),
                )
            })?;
            Ok(digest)
        })
        .collect()
}

// ---- Issuance settings: shared by `issue` (flags) and `serve` (TOML, environment, flags, OpenHIM live config).

/// How certificates are issued. Built from defaults, a config file, the environment and flags.
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IssuanceConfig {
    /// CWT `iss` (ISO 3166-1 alpha-2). `None`: the alpha-2 code of the vaccination country.
    pub issuer_country: Option<String>,
    /// How long a certificate is valid after issue (CWT `exp` = `iat` + this, never past the DSC's notAfter).
    #[serde(with = "humantime_days")]
    pub validity: Duration,
    /// How long before its `exp` a stored certificate of an unchanged event is signed anew when the event
    /// is submitted again (also once expired). The EU apps re-sign from 28 days before expiry.
    #[serde(with = "humantime_days")]
    pub renewal: Duration,
    /// hcert (-260) sub-claim holding the DDCC core data set: 3 (SMART Trust, default) or 1 (WHO reference mediator).
    pub ddcc_hcert_key: i64,
    /// Display name of the issuing public health authority (`Organization.name` in the document).
    /// `None`: the authority's identifier (linkId `pha`) stands in.
    pub issuer_name: Option<String>,
    /// Whether to also issue the EU DCC payload when the event maps to valid EU codes.
    pub emit_dcc: bool,
    /// Paper size of the citizen PDF.
    pub paper: Paper,
    /// The operator's labels for the citizen PDF, in place of the built-in labels of `language`.
    pub labels: Option<Labels>,
    /// The country's language of the citizen PDF, unless a request asks for another built-in one.
    pub language: Language,
}

impl Default for IssuanceConfig {
    fn default() -> Self {
        IssuanceConfig {
            issuer_country: None,
            validity: Duration::from_secs(365 * 24 * 3600),
            renewal: Duration::from_secs(28 * 24 * 3600),
            ddcc_hcert_key: 3,
            issuer_name: None,
            emit_dcc: true,
            paper: Paper::A4,
            labels: None,
            language: Language::English,
        }
    }
}

impl IssuanceConfig {
    /// The language and labels of one certificate: the one the request asked for (already limited to the
    /// built-in languages), else the configured one; the operator's labels stand for the configured one.
    pub fn pdf_language(&self, requested: Option<Language>) -> (Language, Labels) {
        let language = requested.unwrap_or(self.language);
        match &self.labels {
            Some(labels) if language == self.language => (language, labels.clone()),
            _ => (language, language.labels()),
        }
    }
}

/// Validity is configured in whole days (`validity = 365`).
mod humantime_days {
    use std::time::Duration;

    pub fn deserialize<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let days: u64 = serde::Deserialize::deserialize(d)?;
        Ok(Duration::from_secs(days * 24 * 3600))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        serve: ServeArgs,
    }

    fn resolve(flags: &[&str]) -> Result<ServiceConfig> {
        let cmd = Cmd::try_parse_from(std::iter::once("serve").chain(flags.iter().copied()))
            .map_err(|e| Error::Config(e.to_string()))?;
        ServiceConfig::resolve(&cmd.serve)
    }

    #[test]
    fn file_fills_what_flags_leave_unset() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ddcc.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:9000\"\nbody_limit = 2048\n[issuance]\nvalidity = 30\n",
        )
        .unwrap();
        let config =
            resolve(&["--config", path.to_str().unwrap(), "--body-limit", "4096"]).unwrap();
        assert_eq!(config.listen.port(), 9000);
        assert_eq!(config.body_limit, 4096);
        assert_eq!(
            config.issuance.validity,
            Duration::from_secs(30 * 24 * 3600)
        );
        assert_eq!(config.public_url, "http://127.0.0.1:9000");
    }

    #[test]
    fn credentials_default_to_what_is_configured() {
        let plain = resolve(&[]).unwrap();
        assert_eq!(plain.auth_methods, [Method::ApiKey]);
        assert!(plain.tls.is_none());
        assert_eq!(plain.download_rate.map(|r| r.burst), Some(30));
        let oidc = resolve(&[
            "--oidc-issuer",
            "https://idp.example.org/realms/ddcc",
            "--oidc-audience",
            "ddcc",
            "--download-rate",
            "off",
        ])
        .unwrap();
        assert_eq!(oidc.auth_methods, [Method::ApiKey, Method::Oidc]);
        assert!(oidc.download_rate.is_none());
        let only_tokens = resolve(&[
            "--oidc-issuer",
            "https://idp.example.org/realms/ddcc",
            "--oidc-audience",
            "ddcc",
            "--auth",
            "oidc",
        ])
        .unwrap();
        assert_eq!(only_tokens.auth_methods, [Method::Oidc]);
    }

    #[test]
    fn bad_values_name_the_setting() {
        for (flags, name) in [
            (&["--listen", "nowhere"][..], "DDCC_LISTEN"),
            (&["--fhir-url", "ftp://x"][..], "DDCC_FHIR_URL"),
            (&["--batch-concurrency", "0"][..], "DDCC_BATCH_CONCURRENCY"),
            (&["--ddcc-hcert-key", "2"][..], "DDCC_HCERT_KEY"),
            (&["--api-keys", "abc"][..], "DDCC_API_KEYS"),
            (&["--openhim-url", "https://h:8080"][..], "OPENHIM_USERNAME"),
            (&["--download-rate", "5/day"][..], "DDCC_DOWNLOAD_RATE"),
            (
                &["--audit-refusal-rate", "5"][..],
                "DDCC_AUDIT_REFUSAL_RATE",
            ),
            (&["--max-connections", "0"][..], "DDCC_MAX_CONNECTIONS"),
            (
                &["--max-connections-per-client", "0"][..],
                "DDCC_MAX_CONNECTIONS_PER_CLIENT",
            ),
            (&["--request-timeout", "0"][..], "DDCC_REQUEST_TIMEOUT"),
            (&["--workers", "0"][..], "DDCC_WORKERS"),
            (&["--shutdown-delay", "301"][..], "DDCC_SHUTDOWN_DELAY"),
            (
                &["--trusted-proxies", "10.0.0.0/8,proxy.local"][..],
                "DDCC_TRUSTED_PROXIES",
            ),
            (
                &["--max-response-bytes", "100"][..],
                "DDCC_MAX_RESPONSE_BYTES",
            ),
            (&["--tls-cert", "cert.pem"][..], "DDCC_TLS_KEY"),
            (&["--auth", "oidc"][..], "DDCC_OIDC_ISSUER"),
            (&["--auth", "mtls"][..], "DDCC_TLS_CLIENT_CA"),
            (&["--auth", "password"][..], "DDCC_AUTH"),
            (
                &["--oidc-issuer", "https://idp/realms/x"][..],
                "DDCC_OIDC_AUDIENCE",
            ),
        ] {
            let e = resolve(flags).unwrap_err().to_string();
            assert!(e.contains(name), "{flags:?}: {e}");
        }
    }

    #[test]
    fn a_certificate_is_in_the_requested_language_else_the_configured_one() {
        let config = IssuanceConfig {
            language: Language::French,
            ..IssuanceConfig::default()
        };
        assert_eq!(
            config.pdf_language(None),
            (Language::French, Language::French.labels())
        );
        assert_eq!(
            config.pdf_language(Some(Language::Arabic)),
            (Language::Arabic, Language::Arabic.labels())
        );
        // The operator's labels replace those of the configured language only.
        let own = Labels::from_json(r#"{"title": "Attestation"}"#).unwrap();
        let config = IssuanceConfig {
            labels: Some(own.clone()),
            ..config
        };
        assert_eq!(config.pdf_language(None), (Language::French, own));
        assert_eq!(
            config.pdf_language(Some(Language::Spanish)).1,
            Language::Spanish.labels()
        );
        // Unknown languages are refused at start-up, by name.
        assert!(resolve(&["--language", "de"]).is_err());
        assert_eq!(
            resolve(&["--language", "zh-Hans"])
                .unwrap()
                .issuance
                .language,
            Language::Chinese
        );
    }
}
