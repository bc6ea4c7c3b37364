//! OpenHIM: registration as a mediator, default channel, heartbeat and live configuration.
//!
//! Runs as one background task that never blocks start-up: it registers (retrying with backoff), installs
//! the default channel when `GET /channels` does not list it, then sends a heartbeat every 10 s. A heartbeat
//! that returns a configuration swaps the issuer's settings atomically when they differ (see
//! [`apply_config`]).
//!
//! **Several replicas.** Every heartbeat asks for the configuration (`config: true`). Without it OpenHIM
//! sends a changed configuration once, to whichever replica beats first after the change
//! (`_configModifiedTS > _lastHeartbeat`), and the other replicas never learn of it; with it every replica
//! has the console's settings within one heartbeat period. Registration is an upsert by URN and the channel
//! install tolerates another replica installing it at the same time.
//!
//! URN: `urn:mediator:ddcc-mediator`, not the WHO reference mediator's `urn:mediator:who-int-ddcc-mediator`.
//! This service answers differently (real HTTP statuses, the `+openhim` envelope, DDCC documents that are FHIR
//! documents), so an administrator must be able to tell the two apart, and both can be registered side by
//! side while channels are moved from one to the other.

mod client;
pub mod scrub;

use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::Instrument as _;

use serde_json::{json, Value};

pub use client::OpenHimClient;
pub use scrub::Scrubber;

use crate::configuration::IssuanceConfig;
use crate::configuration::{validate_issuance, OpenHimConfig};
use crate::error::{Error, Result};
use crate::http::MEDIATOR_URN;
use crate::service::issuer::Issuer;

/// Heartbeat period (OpenHIM marks a mediator down after 60 s without one).
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// The channel this mediator installs.
pub const CHANNEL_NAME: &str = "DDCC Mediator";
/// Client role the default channel allows.
pub const CLIENT_ROLE: &str = "ddcc";
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// The mediator registration document. The route carries `route_key` as Basic password: OpenHIM does not
/// forward its clients' credentials, so it authenticates to this service with a key of its own.
pub fn mediator_config(
    config: &OpenHimConfig,
    route_key: &str,
    settings: &IssuanceConfig,
) -> Value {
    let route = json!({
        "name": "DDCC Mediator",
        "host": config.mediator_host,
        "port": config.mediator_port,
        "primary": true,
        "type": "http",
        "username": "openhim",
        "password": route_key,
    });
    let mut endpoint = route.clone();
    endpoint["path"] = json!("/ddcc");
    json!({
        "urn": MEDIATOR_URN,
        "version": env!("CARGO_PKG_VERSION"),
        "name": "DDCC Mediator",
        "description": "Issues WHO DDCC:VS vaccination certificates (FHIR document Bundle, signed HC1 QR codes)",
        "endpoints": [endpoint],
        "defaultChannelConfig": [{
            "name": CHANNEL_NAME,
            "description": "WHO DDCC endpoints and their FHIR operation aliases",
            "urlPattern": r"^/(ddcc/.*|fhir/\$submitHealthEvent|fhir/QuestionnaireResponse/\$(generate|revoke)HealthCertificate)$",
            "methods": ["GET", "POST"],
            "type": "http",
            "authType": "private",
            "allow": [CLIENT_ROLE],
            "routes": [route],
            // Personal data stays out of OpenHIM's transaction log: no request body (the QuestionnaireResponse),
            // no response body (the certificate). The router's own record of the route keeps both anyway; see
            // `scrub`, which removes them.
            "requestBody": false,
            "responseBody": false,
        }],
        "configDefs": [
            {"param": "validityDays", "displayName": "Validity (days)", "type": "number",
             "description": "Days a new certificate stays valid (capped at the signing certificate's expiry)"},
            {"param": "hcertKey", "displayName": "hcert key of the DDCC payload", "type": "option",
             "values": ["3", "1"],
             "description": "3: SMART Trust DDCC:VS; 1: verifiers built for the WHO reference mediator"},
            {"param": "emitDcc", "displayName": "Issue the EU DCC", "type": "bool",
             "description": "Also issue the EU DCC QR code when the event maps to EU codes"},
            {"param": "issuerName", "displayName": "Issuer name", "type": "string",
             "description": "Name of the issuing public health authority (empty: its identifier)"},
        ],
        "config": current_config(settings),
    })
}

/// The settings as OpenHIM config values.
fn current_config(settings: &IssuanceConfig) -> Value {
    json!({
        "validityDays": settings.validity.as_secs() / 86_400,
        "hcertKey": settings.ddcc_hcert_key.to_string(),
        "emitDcc": settings.emit_dcc,
        "issuerName": settings.issuer_name.clone().unwrap_or_default(),
    })
}

/// `current` with the values of an OpenHIM config object applied; unknown keys are ignored.
pub fn apply_config(current: &IssuanceConfig, config: &Value) -> Result<IssuanceConfig> {
    let mut next = current.clone();
    let bad = |param: &str, v: &Value| {
        Error::Config(format!("OpenHIM config {param} = {v} is not valid"))
    };
    if let Some(v) = config.get("validityDays") {
        let days = v
            .as_u64()
            .or_else(|| {
                v.as_f64()
                    .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                    .map(|f| f as u64)
            })
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| bad("validityDays", v))?;
        next.validity = Duration::from_secs(days.saturating_mul(86_400));
    }
    if let Some(v) = config.get("hcertKey") {
        next.ddcc_hcert_key = v
            .as_i64()
            .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
            .ok_or_else(|| bad("hcertKey", v))?;
    }
    if let Some(v) = config.get("emitDcc") {
        next.emit_dcc = v.as_bool().ok_or_else(|| bad("emitDcc", v))?;
    }
    if let Some(v) = config.get("issuerName") {
        let name = v.as_str().ok_or_else(|| bad("issuerName", v))?.trim();
        next.issuer_name = (!name.is_empty()).then(|| name.to_owned());
    }
    validate_issuance(&next)?;
    Ok(next)
}

/// Starts the registration/heartbeat task and the transaction cleaner ([`scrub`]) on the current runtime.
pub fn spawn(config: OpenHimConfig, route_key: String, issuer: Arc<Issuer>) -> Result<Scrubber> {
    let client = Arc::new(OpenHimClient::new(&config)?);
    let scrubber = scrub::spawn(client.clone(), issuer.metrics.clone());
    tokio::spawn(run(client, config, route_key, issuer));
    Ok(scrubber)
}

async fn run(
    client: Arc<OpenHimClient>,
    config: OpenHimConfig,
    route_key: String,
    issuer: Arc<Issuer>,
) {
    let started = Instant::now();
    let mut backoff = Duration::from_secs(1);
    loop {
        let registered = register(&client, &config, &route_key, &issuer)
            .instrument(tracing::info_span!("openhim.register"))
            .await;
        match registered {
            Ok(()) => {
                tracing::info!(urn = MEDIATOR_URN, url = %config.url, "registered with OpenHIM");
                backoff = Duration::from_secs(1);
                heartbeats(&client, &issuer, started).await;
                // Heartbeats stopped: the mediator is gone from OpenHIM; register again.
            }
            Err(e) => {
                issuer.metrics.dependency_error("openhim");
                // Jitter (50–100 %): many mediator replicas restarted together do not retry in step.
                let wait =
                    backoff.mul_f64(rand::Rng::gen_range(&mut rand::thread_rng(), 0.5..=1.0));
                tracing::warn!(error = %e, retry_in_ms = wait.as_millis() as u64, "OpenHIM registration failed");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

async fn register(
    client: &OpenHimClient,
    config: &OpenHimConfig,
    route_key: &str,
    issuer: &Issuer,
) -> Result<()> {
    let body = mediator_config(config, route_key, &issuer.settings());
    let (status, text) = client
        .send(reqwest::Method::POST, "/mediators", Some(&body))
        .await?;
    if status != 201 {
        return Err(client.refused("POST /mediators", status, &text));
    }
    install_channel(client).await
}

/// Installs the default channel unless a channel of that name exists, and makes it store no request or
/// response bodies (one installed by an older version is updated).
///
/// Replicas starting together may all find none and all install it. OpenHIM's schema makes channel names
/// unique, but not every database enforces that (OpenHIM 4.0.5 on its test database keeps duplicates), so
/// each replica then keeps the oldest channel of that name (the smallest `_id`, the same for every replica)
/// and deletes the others: every replica converges on one channel whatever the interleaving.
async fn install_channel(client: &OpenHimClient) -> Result<()> {
    if our_channels(client).await?.is_empty() {
        let path = format!("/mediators/{MEDIATOR_URN}/channels");
        let (status, text) = client
            .send(reqwest::Method::POST, &path, Some(&json!([CHANNEL_NAME])))
            .await?;
        if status == 201 {
            tracing::info!(channel = CHANNEL_NAME, "OpenHIM channel installed");
        } else if our_channels(client).await?.is_empty() {
            return Err(client.refused("installing the default channel", status, &text));
        }
    }
    let mut channels = our_channels(client).await?;
    channels.sort_by(|a, b| channel_id(a).cmp(channel_id(b)));
    for duplicate in channels.iter().skip(1) {
        let id = channel_id(duplicate);
        if !scrub::is_object_id(id) {
            continue;
        }
        let (status, text) = client
            .send(reqwest::Method::DELETE, &format!("/channels/{id}"), None)
            .await?;
        // 404: another replica removed it first.
        if status != 200 && status != 404 {
            return Err(client.refused("removing a duplicate default channel", status, &text));
        }
    }
    let Some(channel) = channels.first() else {
        return Ok(());
    };
    let keeps_bodies = ["requestBody", "responseBody"]
        .iter()
        .any(|flag| channel.get(*flag) != Some(&Value::Bool(false)));
    let id = channel_id(channel);
    if keeps_bodies && scrub::is_object_id(id) {
        let path = format!("/channels/{id}");
        let body = json!({"requestBody": false, "responseBody": false});
        let (status, text) = client
            .send(reqwest::Method::PUT, &path, Some(&body))
            .await?;
        if status != 200 {
            return Err(client.refused("PUT /channels/<id>", status, &text));
        }
        tracing::info!(
            channel = CHANNEL_NAME,
            "OpenHIM channel set to store no request or response bodies"
        );
    }
    Ok(())
}

/// The channels named [`CHANNEL_NAME`].
async fn our_channels(client: &OpenHimClient) -> Result<Vec<Value>> {
    let (status, text) = client.send(reqwest::Method::GET, "/channels", None).await?;
    if status != 200 {
        return Err(client.refused("GET /channels", status, &text));
    }
    let channels: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    Ok(channels
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c.get("name").and_then(Value::as_str) == Some(CHANNEL_NAME))
        .cloned()
        .collect())
}

fn channel_id(channel: &Value) -> &str {
    channel
        .get("_id")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Heartbeats until OpenHIM no longer knows the mediator (404).
async fn heartbeats(client: &OpenHimClient, issuer: &Issuer, started: Instant) {
    let path = format!("/mediators/{MEDIATOR_URN}/heartbeat");
    let mut ticks = tokio::time::interval(HEARTBEAT);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let body = json!({"uptime": started.elapsed().as_secs_f64(), "config": true});
        let beat = client
            .send(reqwest::Method::POST, &path, Some(&body))
            .instrument(tracing::info_span!("openhim.heartbeat"))
            .await;
        match beat {
            Ok((200, text)) => {
                let trimmed = text.trim();
                if trimmed.is_empty() || trimmed == "OK" {
                    continue;
                }
                match serde_json::from_str::<Value>(trimmed) {
                    Ok(config) if config.is_object() => {
                        match apply_config(&issuer.settings(), &config) {
                            Ok(next) => {
                                if next != *issuer.settings() {
                                    tracing::info!(
                                        validity_days = next.validity.as_secs() / 86_400,
                                        hcert_key = next.ddcc_hcert_key,
                                        emit_dcc = next.emit_dcc,
                                        "applied configuration from OpenHIM"
                                    );
                                    issuer.set_settings(next);
                                }
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "ignored configuration from OpenHIM")
                            }
                        }
                    }
                    _ => tracing::warn!(
                        "OpenHIM heartbeat answered something that is not a config object"
                    ),
                }
            }
            Ok((404, _)) => {
                tracing::warn!("OpenHIM no longer knows this mediator; registering again");
                return;
            }
            Ok((status, text)) => {
                issuer.metrics.dependency_error("openhim");
                tracing::warn!(error = %client.refused("heartbeat", status, &text), "OpenHIM heartbeat failed");
            }
            Err(e) => {
                issuer.metrics.dependency_error("openhim");
                tracing::warn!(error = %e, "OpenHIM heartbeat failed");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_config_is_validated_and_applied() {
        let base = IssuanceConfig::default();
        let next = apply_config(
            &base,
            &json!({"validityDays": 30, "hcertKey": "1", "emitDcc": false, "issuerName": " MoH "}),
        )
        .unwrap();
        assert_eq!(next.validity, Duration::from_secs(30 * 86_400));
        assert_eq!(next.ddcc_hcert_key, 1);
        assert!(!next.emit_dcc);
        assert_eq!(next.issuer_name.as_deref(), Some("MoH"));
        assert!(apply_config(&base, &json!({"hcertKey": "2"})).is_err());
        assert!(apply_config(&base, &json!({"validityDays": 0})).is_err());
    }
}
