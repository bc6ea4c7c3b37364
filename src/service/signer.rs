//! The service's signer: the local development key or a Vault transit key, and what verifiers need of it.

use std::sync::Arc;

use crate::error::{Error, Result};
use crate::keys::PublishedDsc;
use crate::signer::local::LocalSigner;
use crate::signer::vault::VaultSettings;
use crate::signer::vault::VaultSigner;
use crate::signer::{Signer, SigningIdentity};

use super::{Orchestration, Orchestrations};

/// The configured signer.
#[derive(Debug)]
pub enum ServiceSigner {
    Local(Box<LocalSigner>),
    Vault {
        signer: VaultSigner,
        /// `<VAULT_ADDR>/v1/<mount>/sign/<key>`, for orchestration records.
        sign_url: String,
    },
}

impl ServiceSigner {
    pub fn vault(signer: VaultSigner, settings: &VaultSettings) -> Self {
        let sign_url = format!(
            "{}/v1/{}/sign/{}",
            settings.addr.trim_end_matches('/'),
            settings.transit_mount,
            settings.key_name
        );
        ServiceSigner::Vault { signer, sign_url }
    }

    /// Every DSC verifiers should trust now (Vault: every version with a valid DSC, so certificates signed
    /// before a rotation keep verifying).
    pub async fn published(&self) -> Result<Vec<PublishedDsc>> {
        match self {
            // The current DSC, and withdrawn ones until their certificates are re-signed.
            ServiceSigner::Local(local) => {
                let mut dscs = vec![PublishedDsc::from_chain(
                    1,
                    vec![local.current().dsc_der.clone()],
                )?];
                for w in crate::signer::local::withdrawn(local.dir())? {
                    if !w.reissued {
                        dscs.push(PublishedDsc::from_chain(1, vec![w.dsc_der])?);
                    }
                }
                Ok(dscs)
            }
            ServiceSigner::Vault { signer, .. } => {
                let key = signer
                    .transit()
                    .read_key()
                    .await?
                    .ok_or_else(|| Error::Unavailable {
                        service: "Vault",
                        reason: format!("transit key {:?} is gone", signer.transit().key_name()),
                    })?;
                crate::keys::published(&key, unix_now())
            }
        }
    }

    /// The kids (hex) of withdrawn signing keys: certificates they signed are signed anew (see
    /// [`super::renewal`]).
    pub fn withdrawn_kids(&self) -> Result<Vec<String>> {
        match self {
            ServiceSigner::Local(local) => Ok(crate::signer::local::withdrawn(local.dir())?
                .into_iter()
                .map(|w| hex::encode(w.kid))
                .collect()),
            ServiceSigner::Vault { signer, .. } => Ok(signer.withdrawn_kids().to_vec()),
        }
    }

    /// Records that nothing is left signed by a withdrawn key: its DSC is no longer published.
    pub async fn retire_withdrawn(&self) -> Result<()> {
        match self {
            ServiceSigner::Local(local) => {
                for w in crate::signer::local::withdrawn(local.dir())? {
                    crate::signer::local::mark_reissued(local.dir(), &w.kid)?;
                }
                Ok(())
            }
            ServiceSigner::Vault { signer, .. } => {
                crate::keys::retire_withdrawn(signer.transit()).await
            }
        }
    }

    /// Readiness: can this signer sign now?
    pub async fn check(&self) -> Result<()> {
        match self {
            ServiceSigner::Local(_) => Ok(()),
            ServiceSigner::Vault { signer, .. } => signer.refresh().await.map_err(|e| match e {
                e @ Error::Unavailable { .. } => e,
                other => Error::Unavailable {
                    service: "Vault",
                    reason: other.to_string(),
                },
            }),
        }
    }

    /// A signer that records its Vault calls into `trace`.
    pub fn traced(self: &Arc<Self>, trace: Orchestrations) -> TracedSigner {
        TracedSigner {
            inner: Arc::clone(self),
            trace,
        }
    }
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

impl Signer for ServiceSigner {
    fn current(&self) -> Arc<SigningIdentity> {
        match self {
            ServiceSigner::Local(s) => s.current(),
            ServiceSigner::Vault { signer, .. } => signer.current(),
        }
    }

    fn is_development(&self) -> bool {
        matches!(self, ServiceSigner::Local(_))
    }

    fn checks_its_signatures(&self) -> bool {
        match self {
            ServiceSigner::Local(s) => s.checks_its_signatures(),
            ServiceSigner::Vault { signer, .. } => signer.checks_its_signatures(),
        }
    }

    async fn sign(&self, identity: &SigningIdentity, tbs: &[u8]) -> Result<Vec<u8>> {
        match self {
            ServiceSigner::Local(s) => s.sign(identity, tbs).await,
            ServiceSigner::Vault { signer, .. } => signer.sign(identity, tbs).await,
        }
    }

    async fn sign_all(&self, identity: &SigningIdentity, tbs: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        match self {
            ServiceSigner::Local(s) => s.sign_all(identity, tbs).await,
            ServiceSigner::Vault { signer, .. } => signer.sign_all(identity, tbs).await,
        }
    }
}

/// [`ServiceSigner`] plus a record of each Vault signing call: one per call to the signer, whether it signs one
/// Sig_structure or, batched, all of a certificate's.
#[derive(Debug, Clone)]
pub struct TracedSigner {
    inner: Arc<ServiceSigner>,
    trace: Orchestrations,
}

impl TracedSigner {
    /// Awaits `call`, one request to Vault's `sign` endpoint, and records it; the local signer calls nothing.
    async fn recorded<T>(&self, call: impl std::future::Future<Output = Result<T>>) -> Result<T> {
        let ServiceSigner::Vault { sign_url, .. } = &*self.inner else {
            return call.await;
        };
        let step = Orchestration::start("Vault transit sign", "POST", sign_url);
        let result = call.await;
        self.trace.push(match &result {
            Ok(_) => step.finished(200),
            Err(e) => step.failed(&e.to_string()),
        });
        result
    }
}

impl Signer for TracedSigner {
    fn current(&self) -> Arc<SigningIdentity> {
        self.inner.current()
    }

    fn is_development(&self) -> bool {
        self.inner.is_development()
    }

    fn checks_its_signatures(&self) -> bool {
        self.inner.checks_its_signatures()
    }

    async fn sign(&self, identity: &SigningIdentity, tbs: &[u8]) -> Result<Vec<u8>> {
        self.recorded(self.inner.sign(identity, tbs)).await
    }

    async fn sign_all(&self, identity: &SigningIdentity, tbs: &[&[u8]]) -> Result<Vec<Vec<u8>>> {
        self.recorded(self.inner.sign_all(identity, tbs)).await
    }
}
