//! The mediator service behind `ddcc-mediator serve`: everything but HTTP.
//!
//! [`issuer::Issuer`] issues and stores one certificate at a time (idempotent per event), [`links`] makes the
//! unguessable citizen download links, [`access`] authenticates callers (API keys in [`auth`], OIDC tokens in
//! [`oidc`], client certificates), [`audit`] builds the AuditEvents, [`ratelimit`] slows citizen downloads per
//! client, [`metrics`] counts. The HTTP layer
//! ([`crate::http`]) only parses, dispatches and formats; OpenHIM ([`crate::openhim`]) registers and
//! reconfigures the issuer live.

pub mod access;
pub mod audit;
pub mod auth;
pub mod issuer;
pub mod links;
pub mod metrics;
pub mod oidc;
pub mod ratelimit;
pub mod reissue;
pub mod renewal;
pub mod revocations;
pub mod signer;

use std::sync::{Arc, Mutex};

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

/// The outbound calls made while answering one request, for OpenHIM's transaction log (`orchestrations`).
/// Cheap to clone; every clone records into the same list.
#[derive(Debug, Clone, Default)]
pub struct Orchestrations(Arc<Mutex<Vec<Orchestration>>>);

impl Orchestrations {
    pub fn push(&self, step: Orchestration) {
        match self.0.lock() {
            Ok(mut list) => list.push(step),
            Err(poisoned) => poisoned.into_inner().push(step),
        }
    }

    pub fn take(&self) -> Vec<Orchestration> {
        match self.0.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(poisoned) => std::mem::take(&mut *poisoned.into_inner()),
        }
    }
}

/// One outbound call: what was asked of whom, and how it ended. No bodies: they hold personal data.
#[derive(Debug, Clone)]
pub struct Orchestration {
    pub name: &'static str,
    pub method: &'static str,
    pub host: String,
    pub port: u16,
    pub path: String,
    pub request_at: OffsetDateTime,
    /// HTTP status, or `None` when no answer came.
    pub status: Option<u16>,
    pub response_at: OffsetDateTime,
    pub error: Option<String>,
}

impl Orchestration {
    /// A call about to be made to `url`.
    pub fn start(name: &'static str, method: &'static str, url: &str) -> Self {
        let parsed = reqwest::Url::parse(url).ok();
        let now = OffsetDateTime::now_utc();
        Orchestration {
            name,
            method,
            host: parsed
                .as_ref()
                .and_then(|u| u.host_str().map(str::to_owned))
                .unwrap_or_default(),
            port: parsed
                .as_ref()
                .and_then(reqwest::Url::port_or_known_default)
                .unwrap_or(0),
            path: parsed.map(|u| u.path().to_owned()).unwrap_or_default(),
            request_at: now,
            status: None,
            response_at: now,
            error: None,
        }
    }

    pub fn finished(mut self, status: u16) -> Self {
        self.status = Some(status);
        self.response_at = OffsetDateTime::now_utc();
        self
    }

    pub fn failed(mut self, error: &str) -> Self {
        self.error = Some(error.to_owned());
        self.response_at = OffsetDateTime::now_utc();
        self
    }
}

/// RFC 3339 UTC with milliseconds (`2026-11-23T22:28:02.556Z`), as OpenHIM stores timestamps.
pub fn rfc3339_ms(t: OffsetDateTime) -> String {
    let t = t.to_offset(time::UtcOffset::UTC);
    let t = t
        .replace_nanosecond(t.millisecond() as u32 * 1_000_000)
        .unwrap_or(t);
    t.format(&Rfc3339).unwrap_or_default()
}

/// Creates `path` with `contents` readable by the owner only (0600), failing if it exists.
pub fn write_private_file(path: &std::path::Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(contents)?;
    file.sync_all()
}

/// Creates `path` and its missing parents readable by the owner only (0700); an existing directory is left
/// as it is.
pub fn create_private_dir(path: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(path)
}

/// `ddcc-mediator serve`: resolves the settings, opens the signer and the store, starts OpenHIM
/// registration, and serves HTTP until stopped. Runs outside any async runtime.
pub fn serve(args: &crate::configuration::ServeArgs) -> crate::Result<()> {
    use crate::configuration::ServiceConfig;
    use crate::error::Error;

    let config = ServiceConfig::resolve(args)?;
    // The address first: a port clash stops here, before the data directory, keys or secrets are created.
    let listener = crate::http::bind(config.listen)?;
    // TLS files are checked before any state is created too.
    if let Some(tls) = &config.tls {
        crate::http::check_tls(tls)?;
    }
    tracing::info!(
        workers = config.workers.count,
        from = config.workers.source,
        "threads for CPU work"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.workers.count)
        .enable_all()
        .thread_name("ddcc-service")
        .build()
        .map_err(|e| Error::Internal(format!("cannot start the service runtime: {e}")))?;
    let state = runtime.block_on(start(&config))?;
    crate::http::serve(&config, listener, state)?;
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    Ok(())
}

async fn start(
    config: &crate::configuration::ServiceConfig,
) -> crate::Result<crate::http::AppState> {
    use crate::error::Error;

    create_private_dir(&config.data_dir)
        .map_err(|e| Error::io(format!("creating {}", config.data_dir.display()), e))?;
    let data_dir =
        std::path::absolute(&config.data_dir).unwrap_or_else(|_| config.data_dir.clone());
    let metrics = std::sync::Arc::new(metrics::Metrics::new());
    let issuer = std::sync::Arc::new(build_issuer(config, metrics.clone()).await?);
    if config.clock.offset_seconds() != 0 {
        tracing::warn!(
            offset_seconds = config.clock.offset_seconds(),
            "DDCC_TEST_CLOCK_OFFSET is set: certificates are dated by a MOVED clock. For tests only; never \
             set it on a service whose certificates anyone relies on"
        );
    }
    let (mut keys, key_file) =
        auth::ApiKeys::configured_or_generated(config.api_key_digests.clone(), &config.data_dir)?;
    let openhim = match &config.openhim {
        Some(openhim) => {
            let route_key = match &openhim.route_key {
                Some(key) => key.clone(),
                None => auth::ApiKeys::key_file(&config.data_dir, auth::OPENHIM_ROUTE_KEY_FILE)?.0,
            };
            keys.accept_openhim(&route_key);
            Some((openhim.clone(), route_key))
        }
        None => None,
    };
    // A bad trust-anchor file stops the start, naming the file.
    let trust_anchors = match &config.trust_anchors {
        Some(path) => crate::credential::trust::TrustAnchors::read(path)?,
        None => crate::credential::trust::TrustAnchors::default(),
    };

    if config.embedded_defaults {
        tracing::info!(
            data_dir = %data_dir.display(),
            key_dir = %std::path::absolute(&config.key_dir).unwrap_or_else(|_| config.key_dir.clone()).display(),
            "running on embedded defaults: local development signer and local store (not for production)"
        );
    }
    if let Some(path) = key_file {
        // The absolute path: `$(cat data/api-key)` works only from the directory serve started in.
        let path = std::path::absolute(&path).unwrap_or(path);
        tracing::info!(api_key_file = %path.display(), "no DDCC_API_KEYS configured: the API key is in this file");
    }
    let scrubber = match openhim {
        Some((openhim, route_key)) => {
            Some(crate::openhim::spawn(openhim, route_key, issuer.clone())?)
        }
        None => None,
    };
    let oidc = match &config.oidc {
        Some(settings) => {
            let verifier = oidc::OidcVerifier::new(settings.clone(), config.outbound_timeout)?;
            // A discovery document that contradicts DDCC_OIDC_ISSUER stops the start here.
            verifier.check().await?;
            Some((verifier, settings.issuer.clone()))
        }
        None => None,
    };
    tracing::info!(methods = ?config.auth_methods, "issuing endpoints accept these credentials");
    let auditor = audit::Auditor::new(config.public_url.clone());
    let refusals = std::sync::Arc::new(audit::RefusalGate::new(
        config.audit_refusal_rate,
        metrics.clone(),
    ));
    tokio::spawn(summarise_refusals(
        std::sync::Arc::clone(&refusals),
        auditor.clone(),
        issuer.clone(),
    ));
    Ok(crate::http::AppState {
        issuer,
        auth: access::Authenticator::new(config.auth_methods.clone(), keys, oidc),
        downloads: config.download_rate.map(ratelimit::RateLimiter::new),
        verifications: config.download_rate.map(ratelimit::RateLimiter::new),
        trust_anchors,
        auditor,
        refusals,
        openhim_certificate: config.openhim_cert_subject.clone(),
        metrics,
        runtime: tokio::runtime::Handle::current(),
        body_limit: config.body_limit,
        batch_concurrency: config.batch_concurrency,
        max_batch_entries: config.max_batch_entries,
        max_response_bytes: config.max_response_bytes,
        request_timeout: config.request_timeout,
        did: crate::http::did_web(&config.public_url),
        openhim_scrubber: scrubber,
        trusted_proxies: config.trusted_proxies.clone(),
        draining: std::sync::atomic::AtomicBool::new(false),
        revocations: revocations::Publisher::default(),
    })
}

/// The signer, store and issuer `config` describes: what `serve` issues with, and what `reissue` re-signs
/// with (the same settings, so both sign alike).
pub async fn build_issuer(
    config: &crate::configuration::ServiceConfig,
    metrics: std::sync::Arc<metrics::Metrics>,
) -> crate::Result<issuer::Issuer> {
    use crate::signer::SignerKind;
    use crate::store::{fhir::FhirStore, local::LocalStore, AnyStore};

    let signer = match config.signer {
        SignerKind::Local => signer::ServiceSigner::Local(Box::new(
            crate::signer::local::LocalSigner::open_or_create(
                &config.key_dir,
                &crate::signer::local::development_subject(
                    config.issuance.issuer_country.as_deref(),
                ),
            )?,
        )),
        SignerKind::Vault => signer::ServiceSigner::vault(
            crate::signer::vault::VaultSigner::connect(&config.vault.signer_config()?).await?,
            &config.vault,
        ),
    };
    let store = match &config.fhir_url {
        Some(url) => AnyStore::Fhir(FhirStore::new(url.clone(), config.outbound_timeout)?),
        None => AnyStore::Local(LocalStore::open(&config.data_dir)?),
    };
    let links = links::Links::open(&config.data_dir, config.public_url.clone())?;
    Ok(issuer::Issuer::new(
        signer,
        store,
        links,
        metrics,
        config.issuance.clone(),
        config.clock,
    )
    .with_workers(config.workers.count))
}

/// Writes the summary of the refusals counted instead of recorded, every [`audit::SUMMARY_EVERY`] while
/// there are any (a summary is also written before the next AuditEvent).
async fn summarise_refusals(
    gate: std::sync::Arc<audit::RefusalGate>,
    auditor: audit::Auditor,
    issuer: std::sync::Arc<issuer::Issuer>,
) {
    use crate::store::Store as _;
    let mut every = tokio::time::interval(audit::SUMMARY_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(summary) = gate.take_summary() else {
            continue;
        };
        let written = match serde_json::to_value(auditor.summary_event(&summary)) {
            Ok(event) => issuer.store.audit(&event).await,
            Err(e) => Err(crate::error::Error::Internal(format!(
                "AuditEvent does not serialise: {e}"
            ))),
        };
        if let Err(e) = written {
            issuer.metrics.dependency_error("audit");
            tracing::warn!(error = %e, "summary AuditEvent not recorded");
        }
    }
}
