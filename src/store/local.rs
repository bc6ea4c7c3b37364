//! The embedded store: each resource as `<data-dir>/store/<Type>/<id>.json`.
//!
//! A certificate is written all or nothing, also across a crash, with a write-ahead record:
//!
//! 1. every file is staged in `store/.tmp/` (a new file each, written and fsynced);
//! 2. a manifest listing each staged file and its place is written, fsynced and renamed into
//!    `store/.journal/` (then the directory is fsynced): this is the commit point;
//! 3. the staged files are renamed into place, the document Bundle last, and their directories fsynced;
//! 4. the manifest is removed.
//!
//! On start-up ([`LocalStore::open`]) every manifest still in `.journal/` is rolled forward (the staged files
//! it names that are still in `.tmp/` are renamed into place), and whatever else is in `.tmp/` (files of a
//! write that never committed) is removed: a correction interrupted at any point is either entirely there or
//! not at all. A failed write removes what it staged; a full disk is a 503 naming the store
//! ([`Error::Unavailable`]), so callers retry later.
//!
//! A document's revision is the SHA-256 of its Bundle file. A save compares it with the revision the writer
//! read, under an exclusive lock on `<data-dir>/store/.lock` (an advisory file lock, so that two processes on
//! one host sharing the directory also take turns). The local store is for one replica: several hosts need the
//! FHIR server.
//!
//! Everything is created readable by the owner only: directories 0700, files 0600 (existing store directories
//! are tightened on start-up). The audit trail `audit.jsonl` is appended one whole line at a time: a line that
//! cannot be written entirely is cut off again, and a partial last line left by a crash is removed on start-up.

use std::collections::BTreeSet;
use std::io::Write as _;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::{json, Value};

use sha2::{Digest, Sha256};

use super::{
    type_and_id, valid_id, CertificateRecord, DocumentPage, Revision, Store, StoredDocument,
};
use crate::error::{Error, Result};
use crate::service::Orchestrations;

/// File name of the audit trail in the data directory: one AuditEvent JSON per line, append-only.
pub const AUDIT_FILE: &str = "audit.jsonl";
/// What the store is called in errors (`503`: "local store unavailable: …").
const SERVICE: &str = "local store";

/// Cheap to clone (each clone is the same store): file work is handed to blocking threads with one.
#[derive(Debug, Clone)]
pub struct LocalStore {
    root: PathBuf,
    audit_path: PathBuf,
    /// One line at a time, so concurrent events never interleave.
    audit_lock: Arc<std::sync::Mutex<()>>,
    /// Tests: stop (as a crash would) after this many files of a commit have been renamed into place.
    #[cfg(test)]
    crash_after: Arc<std::sync::atomic::AtomicUsize>,
}

impl LocalStore {
    /// Opens (creating) `<data_dir>/store`, finishing or undoing any write a crash interrupted.
    pub fn open(data_dir: &Path) -> Result<Self> {
        let root = data_dir.join("store");
        for dir in [root.clone(), root.join(".tmp"), root.join(".journal")] {
            private_dir(&dir).map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
        }
        let store = LocalStore {
            root,
            audit_path: data_dir.join(AUDIT_FILE),
            audit_lock: Arc::new(std::sync::Mutex::new(())),
            #[cfg(test)]
            crash_after: Arc::new(std::sync::atomic::AtomicUsize::new(usize::MAX)),
        };
        store.tighten()?;
        store.recover()?;
        store.repair_audit_trail()?;
        Ok(store)
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
            self.write_all(record).map(|()| {
                // The certificate is stored: a full disk now loses only its event, which is said.
                if let Some(event) = &record.audit {
                    if let Err(e) = self.append_event(event) {
                        tracing::warn!(error = %e, "AuditEvent not recorded");
                    }
                }
            })
        } else {
            Err(Error::WriteConflict(
                "the document changed since it was read".into(),
            ))
        };
        drop(lock); // unlocks
        result
    }

    fn tmp_dir(&self) -> PathBuf {
        self.root.join(".tmp")
    }

    fn journal_dir(&self) -> PathBuf {
        self.root.join(".journal")
    }

    /// Store directories made by earlier versions with 0755: owner only.
    fn tighten(&self) -> Result<()> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mut dirs = vec![self.root.clone()];
            for entry in std::fs::read_dir(&self.root)
                .map_err(|e| io_error(format!("reading {}", self.root.display()), e))?
                .flatten()
            {
                if entry.file_type().is_ok_and(|t| t.is_dir()) {
                    dirs.push(entry.path());
                }
            }
            for dir in dirs {
                let mode = std::fs::metadata(&dir).map(|m| m.permissions().mode() & 0o777);
                if mode.is_ok_and(|m| m != 0o700) {
                    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                        .map_err(|e| io_error(format!("restricting {}", dir.display()), e))?;
                }
            }
            if std::fs::metadata(&self.audit_path)
                .is_ok_and(|m| m.permissions().mode() & 0o777 != 0o600)
            {
                std::fs::set_permissions(&self.audit_path, std::fs::Permissions::from_mode(0o600))
                    .map_err(|e| {
                        io_error(format!("restricting {}", self.audit_path.display()), e)
                    })?;
            }
        }
        Ok(())
    }

    /// Rolls every committed write forward, then removes every uncommitted staged file.
    fn recover(&self) -> Result<()> {
        let journal = self.journal_dir();
        let mut manifests: Vec<PathBuf> = std::fs::read_dir(&journal)
            .map_err(|e| io_error(format!("reading {}", journal.display()), e))?
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        manifests.sort();
        for manifest in manifests {
            let moves = std::fs::read(&manifest)
                .ok()
                .and_then(|bytes| self.moves_of(&bytes));
            let Some(moves) = moves else {
                // Only whole manifests are ever renamed into the journal; this one is not ours.
                tracing::warn!(manifest = %manifest.display(), "unreadable store manifest set aside");
                let aside = manifest.with_extension("unreadable");
                std::fs::rename(&manifest, &aside)
                    .map_err(|e| io_error(format!("moving {}", manifest.display()), e))?;
                continue;
            };
            let done = moves.iter().filter(|(tmp, _)| !tmp.exists()).count();
            self.apply(&moves)?;
            self.finish(&manifest)?;
            tracing::info!(
                manifest = %manifest.display(),
                files = moves.len(),
                already_in_place = done,
                "an interrupted certificate write was completed"
            );
        }
        let tmp = self.tmp_dir();
        let mut removed = 0;
        for entry in std::fs::read_dir(&tmp)
            .map_err(|e| io_error(format!("reading {}", tmp.display()), e))?
            .flatten()
        {
            if entry.file_type().is_ok_and(|t| t.is_file()) {
                std::fs::remove_file(entry.path())
                    .map_err(|e| io_error(format!("removing {}", entry.path().display()), e))?;
                removed += 1;
            }
        }
        if removed > 0 {
            sync_dir(&tmp)?;
            tracing::info!(
                files = removed,
                "staged files of uncommitted writes removed"
            );
        }
        Ok(())
    }

    /// The (staged, target) paths of a manifest, each inside the store.
    fn moves_of(&self, manifest: &[u8]) -> Option<Vec<(PathBuf, PathBuf)>> {
        let value: Value = serde_json::from_slice(manifest).ok()?;
        let inside = |p: &str| {
            let path = Path::new(p);
            path.components()
                .all(|c| matches!(c, Component::Normal(_)))
                .then(|| self.root.join(path))
        };
        value
            .get("files")?
            .as_array()?
            .iter()
            .map(|pair| {
                let staged = inside(pair.get(0)?.as_str()?)?;
                let target = inside(pair.get(1)?.as_str()?)?;
                Some((staged, target))
            })
            .collect()
    }

    /// Stages, commits and applies one certificate (see the module documentation). On a failure before the
    /// commit, removes what it staged.
    fn write_all(&self, record: &CertificateRecord) -> Result<()> {
        let mut staged = Vec::new();
        let committed = self
            .stage(record, &mut staged)
            .and_then(|()| self.commit(&staged));
        let manifest = match committed {
            Ok(manifest) => manifest,
            Err(e) => {
                for (tmp, _) in &staged {
                    let _ = std::fs::remove_file(tmp);
                }
                return Err(e);
            }
        };
        // Committed: from here on the certificate is written, now or by the next start-up's recovery.
        #[cfg(test)]
        if self.crash_after.load(std::sync::atomic::Ordering::SeqCst) < staged.len() {
            let keep = self.crash_after.load(std::sync::atomic::Ordering::SeqCst);
            for (tmp, target) in staged.iter().take(keep) {
                std::fs::rename(tmp, target).map_err(|e| Error::io("test rename", e))?;
            }
            return Err(Error::Internal("simulated crash".into()));
        }
        self.apply(&staged)?;
        self.finish(&manifest)
    }

    /// Writes every file of `record` into `.tmp/` (fsynced), pushing (staged, target) as it goes, the
    /// document Bundle last.
    fn stage(
        &self,
        record: &CertificateRecord,
        staged: &mut Vec<(PathBuf, PathBuf)>,
    ) -> Result<()> {
        let tmp_dir = self.tmp_dir();
        let resources = record
            .all_resources()
            .chain(std::iter::once(std::borrow::Cow::Borrowed(
                &record.document,
            )));
        for resource in resources {
            let (rtype, id) = type_and_id(&resource)?;
            let target = self.path(rtype, id);
            let tmp = tmp_dir.join(format!("{}.json", uuid::Uuid::new_v4()));
            let bytes = serde_json::to_vec_pretty(&*resource)
                .map_err(|e| Error::Internal(format!("resource does not serialise: {e}")))?;
            // Pushed before writing: a file cut short by a full disk is removed with the rest.
            staged.push((tmp.clone(), target));
            write_new_file(&tmp, &bytes)
                .map_err(|e| io_error(format!("writing {}", tmp.display()), e))?;
        }
        sync_dir(&tmp_dir)
    }

    /// Writes the manifest of `staged` and renames it into the journal: the commit point. Returns its path.
    fn commit(&self, staged: &[(PathBuf, PathBuf)]) -> Result<PathBuf> {
        let relative = |p: &Path| {
            p.strip_prefix(&self.root)
                .map(|r| r.to_string_lossy().into_owned())
                .map_err(|_| Error::Internal(format!("{} is outside the store", p.display())))
        };
        let files = staged
            .iter()
            .map(|(tmp, target)| Ok(json!([relative(tmp)?, relative(target)?])))
            .collect::<Result<Vec<Value>>>()?;
        let bytes = serde_json::to_vec(&json!({ "files": files }))
            .map_err(|e| Error::Internal(format!("manifest does not serialise: {e}")))?;
        let name = format!("{}.json", uuid::Uuid::new_v4());
        let pending = self.tmp_dir().join(format!("{name}.manifest"));
        let manifest = self.journal_dir().join(name);
        let written = write_new_file(&pending, &bytes)
            .map_err(|e| io_error(format!("writing {}", pending.display()), e))
            .and_then(|()| {
                std::fs::rename(&pending, &manifest)
                    .map_err(|e| io_error(format!("committing {}", manifest.display()), e))
            })
            .and_then(|()| sync_dir(&self.journal_dir()));
        if written.is_err() {
            let _ = std::fs::remove_file(&pending);
            let _ = std::fs::remove_file(&manifest);
        }
        written.map(|()| manifest)
    }

    /// Renames each staged file that is still staged into place (the document Bundle last), then makes the
    /// renames durable.
    fn apply(&self, moves: &[(PathBuf, PathBuf)]) -> Result<()> {
        let mut dirs = BTreeSet::new();
        for (tmp, target) in moves {
            let dir = target
                .parent()
                .ok_or_else(|| Error::Internal(format!("{} has no directory", target.display())))?;
            if dirs.insert(dir.to_path_buf()) {
                private_dir(dir).map_err(|e| io_error(format!("creating {}", dir.display()), e))?;
            }
            match std::fs::rename(tmp, target) {
                Ok(()) => {}
                // Renamed before the crash that left this manifest.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && target.exists() => {}
                Err(e) => return Err(io_error(format!("renaming into {}", target.display()), e)),
            }
        }
        for dir in dirs.iter().chain(std::iter::once(&self.tmp_dir())) {
            sync_dir(dir)?;
        }
        Ok(())
    }

    /// Removes a manifest whose files are all in place.
    fn finish(&self, manifest: &Path) -> Result<()> {
        std::fs::remove_file(manifest)
            .map_err(|e| io_error(format!("removing {}", manifest.display()), e))?;
        sync_dir(&self.journal_dir())
    }

    /// Cuts a partial last line (a crash during an append) off the audit trail.
    fn repair_audit_trail(&self) -> Result<()> {
        use std::io::{Read as _, Seek as _, SeekFrom};
        let mut file = match std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&self.audit_path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => {
                return Err(io_error(
                    format!("opening {}", self.audit_path.display()),
                    e,
                ))
            }
        };
        let context = || format!("checking {}", self.audit_path.display());
        let len = file.metadata().map_err(|e| io_error(context(), e))?.len();
        // Look back for the last line break, a block at a time.
        let mut end = len;
        let mut block = vec![0u8; 64 * 1024];
        let keep = loop {
            if end == 0 {
                break 0;
            }
            let start = end.saturating_sub(block.len() as u64);
            let part = &mut block[..(end - start) as usize];
            file.seek(SeekFrom::Start(start))
                .and_then(|_| file.read_exact(part))
                .map_err(|e| io_error(context(), e))?;
            if let Some(i) = part.iter().rposition(|b| *b == b'\n') {
                break start + i as u64 + 1;
            }
            end = start;
        };
        if keep < len {
            tracing::warn!(
                bytes = len - keep,
                "a partial last line of the audit trail was removed (a write was interrupted)"
            );
            file.set_len(keep)
                .and_then(|()| file.sync_all())
                .map_err(|e| io_error(context(), e))?;
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
        let (record, seen) = (record.clone(), seen.clone());
        self.on_blocking_thread(move |store| store.save_if_unchanged(&record, &seen))
            .await
    }

    async fn read_document(&self, id: &str) -> Result<StoredDocument> {
        if !valid_id(id) {
            return Ok(StoredDocument::default());
        }
        let owned = id.to_owned();
        let Some((bytes, revision)) = self
            .on_blocking_thread(move |store| store.read_bundle(&owned))
            .await?
        else {
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
        let file = path.clone();
        match self
            .on_blocking_thread(move |_| Ok(std::fs::read(&file)))
            .await?
        {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map(Some)
                .map_err(|e| Error::Internal(format!("{} is not JSON: {e}", path.display()))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(format!("reading {}", path.display()), e)),
        }
    }

    async fn list_documents(&self, cursor: Option<&str>, limit: usize) -> Result<DocumentPage> {
        // Ids in name order after the cursor; a heap keeps only the `limit + 1` smallest in memory.
        let dir = self.root.join("Bundle");
        let cursor = cursor.map(str::to_owned);
        self.on_blocking_thread(move |_| {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Ok(DocumentPage::default())
                }
                Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
            };
            let mut smallest = std::collections::BinaryHeap::new();
            for entry in entries {
                let entry =
                    entry.map_err(|e| Error::io(format!("reading {}", dir.display()), e))?;
                let name = entry.file_name();
                let Some(id) = name.to_str().and_then(|n| n.strip_suffix(".json")) else {
                    continue;
                };
                if !valid_id(id) || cursor.as_deref().is_some_and(|c| id <= c) {
                    continue;
                }
                smallest.push(id.to_owned());
                if smallest.len() > limit + 1 {
                    smallest.pop();
                }
            }
            let mut ids = smallest.into_sorted_vec();
            let more = ids.len() > limit;
            ids.truncate(limit);
            let next = if more { ids.last().cloned() } else { None };
            Ok(DocumentPage { ids, next })
        })
        .await
    }

    async fn audit(&self, event: &Value) -> Result<()> {
        let event = event.clone();
        self.on_blocking_thread(move |store| store.append_event(&event))
            .await
    }

    /// Reads `store/Basic/` (revocation records are the only `Basic` resources kept here).
    async fn revocations(&self) -> Result<Vec<Value>> {
        let dir = self.root.join("Basic");
        self.on_blocking_thread(move |_| {
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(e) => return Err(Error::io(format!("reading {}", dir.display()), e)),
            };
            let mut records = Vec::new();
            for entry in entries.flatten() {
                let path = entry.path();
                if path.extension().is_none_or(|x| x != "json") {
                    continue;
                }
                let bytes = std::fs::read(&path)
                    .map_err(|e| Error::io(format!("reading {}", path.display()), e))?;
                let record: Value = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Internal(format!("{} is not JSON: {e}", path.display())))?;
                if super::is_revocation(&record) {
                    records.push(record);
                }
                if records.len() >= super::MAX_REVOCATION_RECORDS {
                    break;
                }
            }
            Ok(records)
        })
        .await
    }

    async fn check(&self) -> Result<()> {
        // An fsynced write, as every other file operation: on a blocking thread, where the readiness probe's
        // timeout can give up on a hung disk.
        self.on_blocking_thread(|store| {
            // A name of its own: probes run concurrently (the orchestrator's, monitoring's), and one
            // removing another's file made that one fail. A probe cut short leaves its file in `.tmp`,
            // which start-up empties.
            let probe = store
                .tmp_dir()
                .join(format!(".ready-probe-{}", uuid::Uuid::new_v4()));
            write_new_file(&probe, b"ok")
                .and_then(|()| std::fs::remove_file(&probe))
                .map_err(|e| Error::Unavailable {
                    service: SERVICE,
                    reason: format!("{} is not writable: {e}", store.root.display()),
                })
        })
        .await
    }
}

impl LocalStore {
    /// Runs file work (reads, fsynced writes) on a blocking thread: the request that needs it runs on an
    /// HTTP worker's event loop ([`crate::http::AppState::run`]), which other connections share.
    async fn on_blocking_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce(&LocalStore) -> Result<T> + Send + 'static,
    ) -> Result<T> {
        let store = self.clone();
        tokio::task::spawn_blocking(move || work(&store))
            .await
            .map_err(|e| Error::Internal(format!("local store task failed: {e}")))?
    }

    /// Appends `event` to the audit trail as one line.
    fn append_event(&self, event: &Value) -> Result<()> {
        let mut line = serde_json::to_vec(event)
            .map_err(|e| Error::Internal(format!("AuditEvent does not serialise: {e}")))?;
        line.push(b'\n');
        let _one_writer = self.audit_lock.lock().unwrap_or_else(|p| p.into_inner());
        self.append_audit_line(&line)
    }

    /// Appends one whole line, or nothing: a write cut short (full disk) is truncated away again.
    fn append_audit_line(&self, line: &[u8]) -> Result<()> {
        let context = || format!("appending to {}", self.audit_path.display());
        let mut options = std::fs::OpenOptions::new();
        options.append(true).create(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&self.audit_path)
            .map_err(|e| io_error(context(), e))?;
        let before = file.metadata().map_err(|e| io_error(context(), e))?.len();
        if let Err(e) = file.write_all(line) {
            if let Err(cut) = file.set_len(before) {
                tracing::warn!(error = %cut, "a partial audit line could not be removed");
            }
            return Err(io_error(context(), e));
        }
        Ok(())
    }
}

/// A new file (never an existing one, never through a link) with `bytes`, owner-only, fsynced.
fn write_new_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

/// Creates `dir` (and missing parents) owner-only.
fn private_dir(dir: &Path) -> std::io::Result<()> {
    crate::service::create_private_dir(dir)
}

/// Makes the entries of `dir` (creations, renames, removals) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io_error(format!("syncing {}", dir.display()), e))
}

/// An I/O error of the store: a full disk (or quota, or file size limit) is the store being unavailable (503
/// with `Retry-After`; the detail goes to the log, not to the caller); anything else is internal.
fn io_error(context: String, e: std::io::Error) -> Error {
    use std::io::ErrorKind;
    if matches!(
        e.kind(),
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge
    ) {
        tracing::warn!(error = %e, %context, "the local store is full");
        return Error::Unavailable {
            service: SERVICE,
            reason: "no space left for the data directory; retry later".into(),
        };
    }
    Error::io(context, e)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resource(rtype: &str, id: &str, version: &str) -> Value {
        json!({"resourceType": rtype, "id": id, "version": version})
    }

    /// A certificate of `version`: a document with two entries, one superseded reference, one extra.
    fn record(version: &str, superseded: bool) -> CertificateRecord {
        CertificateRecord {
            document: json!({
                "resourceType": "Bundle", "id": "doc-1", "version": version,
                "entry": [
                    {"resource": resource("Patient", "patient-1", version)},
                    {"resource": resource("DocumentReference", format!("qr-{version}").as_str(), version)},
                ],
            }),
            superseded: if superseded {
                vec![resource("DocumentReference", "qr-v1", "superseded")]
            } else {
                Vec::new()
            },
            extra: vec![resource(
                "Binary",
                format!("pdf-{version}").as_str(),
                version,
            )],
            audit: None,
        }
    }

    fn version_of(store: &LocalStore, rtype: &str, id: &str) -> Option<String> {
        std::fs::read(store.path(rtype, id)).ok().map(|b| {
            serde_json::from_slice::<Value>(&b).unwrap()["version"]
                .as_str()
                .unwrap()
                .to_owned()
        })
    }

    fn files_in(dir: &Path) -> usize {
        std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0)
    }

    #[test]
    fn a_correction_interrupted_anywhere_is_completed_on_start_up() {
        // Five files in the correction: patient, new QR reference, superseded old one, PDF, document.
        for crash_after in 0..5 {
            let dir = tempfile::tempdir().unwrap();
            let store = LocalStore::open(dir.path()).unwrap();
            store.write_all(&record("v1", false)).unwrap();
            store
                .crash_after
                .store(crash_after, std::sync::atomic::Ordering::SeqCst);
            assert!(store.write_all(&record("v2", true)).is_err());
            drop(store);
            let store = LocalStore::open(dir.path()).unwrap();
            assert_eq!(version_of(&store, "Bundle", "doc-1").as_deref(), Some("v2"));
            assert_eq!(
                version_of(&store, "Patient", "patient-1").as_deref(),
                Some("v2")
            );
            assert_eq!(
                version_of(&store, "DocumentReference", "qr-v1").as_deref(),
                Some("superseded"),
                "crash after {crash_after}"
            );
            assert_eq!(
                version_of(&store, "DocumentReference", "qr-v2").as_deref(),
                Some("v2")
            );
            assert_eq!(
                version_of(&store, "Binary", "pdf-v2").as_deref(),
                Some("v2")
            );
            assert_eq!(files_in(&dir.path().join("store/.journal")), 0);
            assert_eq!(files_in(&dir.path().join("store/.tmp")), 0);
        }
    }

    #[test]
    fn a_write_that_never_committed_leaves_the_previous_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.write_all(&record("v1", false)).unwrap();
        // Staged but not committed (a crash before the manifest was in the journal).
        let mut staged = Vec::new();
        store.stage(&record("v2", true), &mut staged).unwrap();
        assert_eq!(files_in(&dir.path().join("store/.tmp")), 5);
        drop(store);
        let store = LocalStore::open(dir.path()).unwrap();
        assert_eq!(files_in(&dir.path().join("store/.tmp")), 0);
        assert_eq!(version_of(&store, "Bundle", "doc-1").as_deref(), Some("v1"));
        assert_eq!(
            version_of(&store, "DocumentReference", "qr-v1").as_deref(),
            Some("v1")
        );
        assert_eq!(version_of(&store, "Binary", "pdf-v2"), None);
    }

    #[test]
    #[cfg(unix)]
    fn everything_is_owner_only_and_old_directories_are_tightened() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // A store left by an earlier version: world-readable.
        let old = dir.path().join("store/Bundle");
        std::fs::create_dir_all(&old).unwrap();
        std::fs::set_permissions(&old, std::fs::Permissions::from_mode(0o755)).unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.write_all(&record("v1", false)).unwrap();
        store.append_audit_line(b"{}\n").unwrap();
        for d in [
            "store",
            "store/Bundle",
            "store/Patient",
            "store/.tmp",
            "store/.journal",
        ] {
            assert_eq!(mode(&dir.path().join(d)), 0o700, "{d}");
        }
        for f in [
            "store/Bundle/doc-1.json",
            "store/Binary/pdf-v1.json",
            "audit.jsonl",
        ] {
            assert_eq!(mode(&dir.path().join(f)), 0o600, "{f}");
        }
    }

    #[test]
    fn audit_lines_are_whole_or_absent() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        store.append_audit_line(b"{\"a\":1}\n").unwrap();
        // A crash in the middle of the next line.
        let path = dir.path().join(AUDIT_FILE);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        file.write_all(b"{\"b\":").unwrap();
        drop((file, store));
        LocalStore::open(dir.path()).unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"a\":1}\n");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_readiness_checks_all_pass_and_leave_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = LocalStore::open(dir.path()).unwrap();
        let checks = (0..32).map(|_| {
            let store = store.clone();
            tokio::spawn(async move { store.check().await })
        });
        for check in futures_util::future::join_all(checks).await {
            check.unwrap().unwrap();
        }
        assert_eq!(files_in(&dir.path().join("store/.tmp")), 0);
    }

    #[test]
    fn a_full_disk_is_the_store_being_unavailable() {
        let full = io_error("x".into(), std::io::Error::from_raw_os_error(28));
        assert_eq!(full.status(), 503);
        assert!(
            full.to_string().starts_with("local store unavailable"),
            "{full}"
        );
        assert_eq!(
            io_error(
                "x".into(),
                std::io::Error::from(std::io::ErrorKind::PermissionDenied)
            )
            .status(),
            500
        );
    }
}
