//! The embedded store: each resource as `<data-dir>/store/<Type>/<id>.json`.
//!
//! Each file is written to `<data-dir>/store/.tmp/` and renamed into place (a rename is atomic), and the document
//! Bundle is renamed last: it is the commit record. A certificate exists once its Bundle file does; a crash
//! half-way leaves resource files that the retry rewrites with the same ids, and no Bundle, so nothing is
//! handed out that is not fully written.
//!
//! A document's revision is the SHA-256 of its Bundle file. A save compares it with the revision the
//! writer read, under an exclusive lock on `<data-dir>/store/.lock` (an advisory file lock, so that two
//! processes on one host sharing the directory also take turns). The local store is for one replica: several
//! hosts need the FHIR server.

use std::path::{Path, PathBuf};

use serde_json::Value;

use sha2::{Digest, Sha256};

use super::{type_and_id, valid_id, CertificateRecord, Revision, Store, StoredDocument};
use crate::error::{Error, Result};
use crate::service::Orchestrations;

/// File name of the audit trail in the data directory: one AuditEvent JSON per line, append-only.
pub const AUDIT_FILE: &str = "audit.jsonl";

#[derive(Debug)]
pub struct LocalStore {
    root: PathBuf,
    audit_path: PathBuf,
    /// One line at a time, so concurrent events never interleave.
    audit_lock: std::sync::Mutex<()>,
}

impl LocalStore {
    /// Opens (creating) `<data_dir>/store`.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join("store");
        let tmp = root.join(".tmp");
        std::fs::create_dir_all(&tmp)
            .map_err(|e| Error::io(format!("creating {}", tmp.display()), e))?;
        Ok(LocalStore {
            root,
            audit_path: data_dir.join(AUDIT_FILE),
            audit_lock: std::sync::Mutex::new(()),
        })
    }

    fn path(&self, resource_type: &str, id: &str) -> PathBuf {
        self.root.join(resource_type).join(format!("{id}.json"))
    }

    /// The Bundle file's bytes and their revision, or nothing.
    fn read_bundle(&self, id: &str) -> Result<Option<(Vec<u8>, Revision)>> {
        let path = self.path("Bundle", id);
        match std::fs::read(&path) {
            Ok(bytes) => {
                let revision = Revision(Some(hex::encode(Sha256::digest(&bytes))));
                Ok(Some((bytes, revision)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    /// Writes `record` if its document is still at `seen`, holding the store's write lock.
    fn save_if_unchanged(&self, record: &CertificateRecord, seen: &Revision) -> Result<()> {
        let lock_path = self.root.join(".lock");
        let lock = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| Error::io(format!("opening {}", lock_path.display()), e))?;
        lock.lock()
            .map_err(|e| Error::io(format!("locking {}", lock_path.display()), e))?;
        let current = self
            .read_bundle(record.bundle_id()?)?
            .map(|(_, revision)| revision)
            .unwrap_or_default();
        let result = if &current == seen {
            self.write_all(record)
        } else {
            Err(Error::WriteConflict(
                "the document changed since it was read".into(),
            ))
        };
        drop(lock); // unlocks
        result
    }

    /// Stages every file, then renames them into place, the Bundle last. On failure, removes what this
    /// attempt staged (and only that: other certificates may be staging beside it).
    fn write_all(&self, record: &CertificateRecord) -> Result<()> {
        let mut staged = Vec::new();
        let result = self.stage(record, &mut staged).and_then(|()| {
            for (tmp, target) in &staged {
                if let Some(dir) = target.parent() {
                    std::fs::create_dir_all(dir)
                        .map_err(|e| Error::io(format!("creating {}", dir.display()), e))?;
                }
                std::fs::rename(tmp, target)
                    .map_err(|e| Error::io(format!("renaming into {}", target.display()), e))?;
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

    fn stage(
        &self,
        record: &CertificateRecord,
        staged: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<()> {
        let tmp_dir = self.root.join(".tmp");
        let resources = record
            .all_resources()
            .chain(std::iter::once(&record.document));
        for resource in resources {
            let (rtype, id) = type_and_id(resource)?;
            let target = self.path(rtype, id);
            let tmp = tmp_dir.join(format!("{}.json", uuid::Uuid::new_v4()));
            let bytes = serde_json::to_vec_pretty(resource)
                .map_err(|e| Error::Internal(format!("resource does not serialise: {e}")))?;
            std::fs::write(&tmp, bytes)
                .map_err(|e| Error::io(format!("writing {}", tmp.display()), e))?;
            staged.push((tmp, target));
        }
        Ok(())
    }
}

impl Store for LocalStore {
    async fn save(
        &self,
        record: &CertificateRecord,
        seen: &Revision,
        _trace: &Orchestrations,
    ) -> Result<()> {
        // File I/O blocks: tell the (multi-threaded) service runtime to move other tasks off this thread.
        tokio::task::block_in_place(|| self.save_if_unchanged(record, seen))
    }

    async fn read_document(&self, id: &str) -> Result<StoredDocument> {
        if !valid_id(id) {
            return Ok(StoredDocument::default());
        }
        let Some((bytes, revision)) = tokio::task::block_in_place(|| self.read_bundle(id))? else {
            return Ok(StoredDocument::default());
        };
        let document = serde_json::from_slice(&bytes)
            .map_err(|e| Error::Internal(format!("Bundle/{id} is not JSON: {e}")))?;
        Ok(StoredDocument {
            document: Some(document),
            revision,
        })
    }

    async fn read(&self, resource_type: &'static str, id: &str) -> Result<Option<Value>> {
        if !valid_id(id) {
            return Ok(None);
        }
        let path = self.path(resource_type, id);
        match tokio::task::block_in_place(|| std::fs::read(&path)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Internal(format!("{} is not JSON: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    async fn audit(&self, event: &Value) -> Result<()> {
        use std::io::Write as _;
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::Internal(format!("AuditEvent does not serialise: {e}")))?;
        line.push(b'\n');
        tokio::task::block_in_place(|| {
            let _one_writer = self.audit_lock.lock().unwrap_or_else(|p| p.into_inner());
            let mut options = std::fs::OpenOptions::new();
            options.append(true).create(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            options
                .open(&self.audit_path)
                .and_then(|mut file| file.write_all(&line))
                .map_err(|e| Error::io(format!("appending to {}", self.audit_path.display()), e))
        })
    }

    async fn check(&self) -> Result<()> {
        let probe = self.root.join(".tmp").join(".ready-probe");
        std::fs::write(&probe, b"ok")
            .and_then(|()| std::fs::remove_file(&probe))
            .map_err(|e| Error::Unavailable {
                service: "local store",
                reason: format!("{} is not writable: {e}", self.root.display()),
            })
    }
}
