//! `ddcc-mediator reissue`: signs anew every current certificate signed by a withdrawn key.
//!
//! It walks the store page by page ([`Store::list_documents`], so memory stays bounded) and hands each
//! document signed by a withdrawn kid, with its kept event, to the same [`Issuer::issue`] a request goes
//! through: the stored certificate is due ([`super::renewal`]: signed by a withdrawn key), so it is signed
//! with the current key, stored against the revision read (a replica racing on it wins or loses as for any
//! request), and the previous version superseded, not revoked.
//!
//! **Resumable and idempotent by construction**: what decides whether a document is re-signed is its
//! stored signing kid, not a checkpoint. A run that stops (a crash, a kill, `--limit`) leaves each document
//! either re-signed or not; the next run skips those already signed with a key still in use. When a run
//! finds nothing left signed by a withdrawn key, it records that (the local signer: `withdrawn/<kid>.reissued`)
//! and the withdrawn DSC is no longer published.

use std::sync::Arc;

use super::issuer::{Issued, Issuer};
use super::renewal::Signed;
use super::Orchestrations;
use crate::error::Result;
use crate::store::Store;

/// How far a run got.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Progress {
    /// Documents read.
    pub scanned: u64,
    /// Signed anew by this run.
    pub resigned: u64,
    /// Signed by a key in use (already re-signed, or never signed by a withdrawn key).
    pub unchanged: u64,
    /// Revoked: left as they are (a revoked certificate is never signed anew).
    pub revoked: u64,
    /// Signed by a withdrawn key but without a kept event (stored before events were kept): submitting
    /// the event again re-signs it.
    pub without_event: u64,
    /// Could not be re-signed now (named in the log); a later run retries.
    pub failed: u64,
    /// Every document was looked at (not stopped by `--limit`).
    pub complete: bool,
}

impl Progress {
    /// Nothing is left signed by a withdrawn key.
    pub fn finished(&self) -> bool {
        self.complete && self.without_event == 0 && self.failed == 0
    }
}

/// Re-signs what the withdrawn keys signed, at most `limit` certificates (`None`: all), reading `page`
/// documents at a time; `report` sees the progress after each page.
pub async fn reissue(
    issuer: &Arc<Issuer>,
    limit: Option<u64>,
    page: usize,
    mut report: impl FnMut(&Progress),
) -> Result<Progress> {
    let withdrawn = issuer.signer.withdrawn_kids()?;
    if withdrawn.is_empty() {
        // Nothing withdrawn, or every withdrawn version already archived (Vault): the scan finds nothing
        // to do, which is what a rerun should say.
        tracing::warn!(
            "no withdrawn signing key: nothing to re-sign (`ddcc-mediator keys withdraw <kid>`)"
        );
    }
    let mut progress = Progress::default();
    let mut cursor: Option<String> = None;
    loop {
        let listed = issuer.store.list_documents(cursor.as_deref(), page).await?;
        for id in &listed.ids {
            if limit.is_some_and(|l| progress.resigned >= l) {
                report(&progress);
                return Ok(progress);
            }
            progress.scanned += 1;
            match resign_one(issuer, id, &withdrawn).await {
                Ok(Outcome::Resigned) => progress.resigned += 1,
                Ok(Outcome::Unchanged) => progress.unchanged += 1,
                Ok(Outcome::Revoked) => progress.revoked += 1,
                Ok(Outcome::WithoutEvent) => {
                    tracing::warn!(document = %id, "signed by a withdrawn key, but its event was not kept");
                    progress.without_event += 1;
                }
                Err(e) => {
                    tracing::warn!(document = %id, error = %e, "not re-signed");
                    progress.failed += 1;
                }
            }
        }
        report(&progress);
        match listed.next {
            Some(next) => cursor = Some(next),
            None => break,
        }
    }
    progress.complete = true;
    if progress.finished() {
        issuer.signer.retire_withdrawn().await?;
    }
    Ok(progress)
}

enum Outcome {
    Resigned,
    Unchanged,
    Revoked,
    WithoutEvent,
}

async fn resign_one(issuer: &Arc<Issuer>, id: &str, withdrawn: &[String]) -> Result<Outcome> {
    let Some(document) = issuer.store.read_document(id).await?.document else {
        return Ok(Outcome::Unchanged);
    };
    if super::issuer::is_revoked(&document) {
        return Ok(Outcome::Revoked);
    }
    if !withdrawn.contains(&Signed::of(&document)?.kid) {
        return Ok(Outcome::Unchanged);
    }
    let Some(event) = issuer.stored_event(&document).await? else {
        return Ok(Outcome::WithoutEvent);
    };
    match issuer
        .issue(event, &Orchestrations::default(), None)
        .await?
    {
        Issued::Created(_) => Ok(Outcome::Resigned),
        // Another writer re-signed it first.
        Issued::Existing(_) => Ok(Outcome::Unchanged),
    }
}
