//! Vault/OpenBao transit as the [`Signer`]: the private key never leaves Vault.
//!
//! A thin client of our own over `reqwest` rather than the `vaultrs` crate: vaultrs 0.8 has no
//! `transit/keys/:name/csr` or `set-certificate`, drops `certificate_chain` and `latest_version`
//! from key reads and `key_version` from sign answers, and cannot pass `salt_length`. Those are
//! exactly the pieces that bind a key version to its DSC and kid.
//!
//! At start-up the signer reads the key, rejects types that cannot sign HCERTs, and picks the
//! *active version*: the newest one whose stored DSC is valid now. Each signature pins that
//! version (`key_version`), so the kid in the COSE header always names the key that signed, even
//! while someone rotates. Every signature is checked against the DSC before it is returned: a key
//! re-created or replaced behind our back cannot produce a certificate that verifiers reject. The
//! payloads of one certificate are signed in one transit call (`batch_input`, [`Signer::sign_all`]).

pub mod client;
pub mod settings;
pub mod transit;

use std::sync::{Arc, RwLock, Weak};
use std::time::Duration;

pub use client::{Auth, ClientConfig, Secret, VaultClient, VaultError};
pub use settings::VaultSettings;
pub use transit::{CertifiedVersion, KeyType, KeyVersion, Transit, TransitKey};

use crate::error::{Error, Result};
use crate::keys::public_key::PublicKey;
use crate::signer::certificate::Dsc;
use crate::signer::{Signer, SigningIdentity};

/// What the signer needs: how to reach Vault and which transit key to use.
#[derive(Debug, Clone)]
pub struct VaultConfig {
    pub client: ClientConfig,
    pub transit_mount: String,
    pub key_name: String,
    /// How often the key is re-read to pick up rotations and new DSCs.
    pub refresh_interval: Duration,
}

/// Signs COSE Sig_structures with a transit key. Cheap to clone.
#[derive(Debug, Clone)]
pub struct VaultSigner {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    transit: Transit,
    active: RwLock<Arc<SigningIdentity>>,
    /// kids (hex) of the withdrawn versions, as of the last read of the key.
    withdrawn: RwLock<Arc<Vec<String>>>,
    /// Held while a refresh triggered by a failed signature runs: during an outage many requests
    /// fail at once, and one re-read is enough.
    error_refresh: tokio::sync::Mutex<()>,
}

impl VaultSigner {
    /// Connects, authenticates and loads the active key version. Fails with `Config` when the
    /// key is missing, of an unsupported type or has no valid DSC; with `Unavailable` when Vault
    /// cannot be reached.
    pub async fn connect(config: &VaultConfig) -> Result<Self> {
        let client = Arc::new(VaultClient::connect(&config.client).await?);
        let transit = Transit::new(client, &config.transit_mount, &config.key_name);
        Self::start(transit, config.refresh_interval).await
    }

    /// Starts on an existing client and key; re-reads the key every `refresh_interval` while the
    /// signer is alive.
    pub async fn start(transit: Transit, refresh_interval: Duration) -> Result<Self> {
        let (identity, withdrawn) = load_active(&transit).await?;
        tracing::info!(
            key = transit.key_name(),
            version = identity.key_version,
            kid = %hex::encode(identity.kid),
            "Vault signer ready"
        );
        let inner = Arc::new(Inner {
            transit,
            active: RwLock::new(Arc::new(identity)),
            withdrawn: RwLock::new(Arc::new(withdrawn)),
            error_refresh: tokio::sync::Mutex::new(()),
        });
        spawn_refresh(Arc::downgrade(&inner), refresh_interval);
        Ok(VaultSigner { inner })
    }

    /// Re-reads the key now (rotation, new certificate, a Vault that was re-provisioned).
    pub async fn refresh(&self) -> Result<()> {
        self.inner.refresh().await
    }

    pub fn transit(&self) -> &Transit {
        &self.inner.transit
    }

    /// kids (hex) of the key's withdrawn versions, as of the last read of the key (start-up, periodic
    /// refresh, or a refused signature).
    pub fn withdrawn_kids(&self) -> Arc<Vec<String>> {
        match self.inner.withdrawn.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Signs every `tbs` in one transit call, then checks each signature with the DSC of the version that
    /// made it: a key replaced behind our back fails here, not at a verifier.
    async fn sign_all_checked(
        &self,
        identity: &SigningIdentity,
        tbs: &[&[u8]],
    ) -> std::result::Result<Vec<Vec<u8>>, String> {
        let signatures = self
            .inner
            .transit
            .sign_all(identity.key_version, identity.alg, tbs)
            .await
            .map_err(|e| e.to_string())?;
        // `sign_all` answers one signature per `tbs`; checked again so that no signature escapes the check.
        if signatures.len() != tbs.len() {
            return Err(format!(
                "asked for {} signatures, got {}",
                tbs.len(),
                signatures.len()
            ));
        }
        let dsc = Dsc::from_der(&identity.dsc_der).map_err(|e| e.to_string())?;
        for (one, signature) in tbs.iter().zip(&signatures) {
            dsc.verify_signature(identity.alg, one, signature)
                .map_err(|e| {
                    format!(
                        "the signature of key version {} does not verify with its DSC (kid {}): {e}; was the key in Vault replaced?",
                        identity.key_version,
                        hex::encode(identity.kid)
                    )
                })?;
        }
        Ok(signatures)
    }
}

impl Inner {
    async fn refresh(&self) -> Result<()> {
        let (identity, withdrawn) = load_active(&self.transit).await?;
        match self.withdrawn.write() {
            Ok(mut guard) => *guard = Arc::new(withdrawn),
            Err(poisoned) => *poisoned.into_inner() = Arc::new(withdrawn),
        }
        let mut guard = match self.active.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        if **guard != identity {
            tracing::info!(
                version = identity.key_version,
                kid = %hex::encode(identity.kid),
                "Vault signer switched to a new key version"
            );
            *guard = Arc::new(identity);
        }
        Ok(())
    }
}

impl Signer for VaultSigner {
    fn current(&self) -> Arc<SigningIdentity> {
        match self.inner.active.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// `sign_all_checked` verifies each signature with the DSC of the version that made it.
    fn checks_its_signatures(&self) -> bool {
        true
    }

    /// One signature is a batch of one: a single way to call transit and to check what it answers.
    async fn sign(&self, identity: &SigningIdentity, tbs: &[u8]) -> Result<Vec<u8>> {
        // `sign_all` answers exactly one signature per Sig_structure, or an error.
        let mut signatures = self.sign_all(identity, &[tbs]).await?;
        signatures
            .pop()
            .ok_or_else(|| Error::Internal("Vault answered no signature".into()))
    }

    /// All of `tbs` in one transit call (`batch_input`), every signature checked with the DSC.
    async fn sign_all(&self, identity: &SigningIdentity, tbs: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        match self.sign_all_checked(identity, tbs).await {
            Ok(signatures) => Ok(signatures),
            Err(reason) => {
                // Vault may have come back with other state (restart, re-provisioning, rotation):
                // re-read it so that the next `current()` names a key that can sign.
                if let Ok(_running) = self.inner.error_refresh.try_lock() {
                    if let Err(e) = self.inner.refresh().await {
                        tracing::debug!(error = %e, "re-reading the transit key failed");
                    }
                }
                Err(Error::Unavailable {
                    service: "Vault",
                    reason,
                })
            }
        }
    }
}

/// Reads the key and builds the identity of its newest version with a DSC valid now.
/// The identity to sign with, and the kids of the withdrawn versions.
async fn load_active(transit: &Transit) -> Result<(SigningIdentity, Vec<String>)> {
    let key = transit.read_key().await?.ok_or_else(|| {
        Error::Config(format!(
            "transit key {:?} does not exist; create it with `ddcc-mediator keys init`",
            transit.key_name()
        ))
    })?;
    let withdrawn = key
        .certified_versions()?
        .iter()
        .filter(|c| key.withdrawn(c.version))
        .map(|c| hex::encode(crate::signer::kid_of(c.leaf())))
        .collect();
    Ok((active_identity(&key, unix_now())?, withdrawn))
}

/// The newest version whose DSC is valid at `now` and certifies that version's key.
pub fn active_identity(key: &transit::TransitKey, now: i64) -> Result<SigningIdentity> {
    let alg = key.supported_type()?.algorithm();
    for certified in key.certified_versions()? {
        if !(certified.not_before..=certified.not_after).contains(&now)
            || key.withdrawn(certified.version)
        {
            continue;
        }
        if PublicKey::from_certificate(certified.leaf())? != key.public_key(certified.version)? {
            continue;
        }
        return SigningIdentity::from_dsc(alg, certified.leaf().to_vec(), certified.version);
    }
    Err(Error::Config(format!(
        "transit key {:?} has no version with a DSC valid now; run `ddcc-mediator keys csr` and \
         `keys import-certificate` (or `keys dev-certify` for a test CA)",
        key.name
    )))
}

fn spawn_refresh(inner: Weak<Inner>, every: Duration) {
    if every.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await; // the first tick is immediate; the key was just read
        loop {
            ticks.tick().await;
            let Some(inner) = inner.upgrade() else { break };
            if let Err(e) = inner.refresh().await {
                tracing::warn!(error = %e, "periodic re-read of the transit key failed");
            }
        }
    });
}

pub(crate) fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}
