//! The file store: one file per session in a directory that every process
//! on the machine may share (feature `file`).
//!
//! [`FileStore`] keeps each session as a small JSON file, writes it with a
//! temp file and a rename, so a reader or a crash sees the old record or the
//! new one and never a torn one, and serializes writers with advisory file
//! locks, which other processes on the same directory respect as much as
//! this one's threads. Sessions survive restarts; expired ones are swept out
//! by the store itself.
//!
//! ```
//! use session::store::file::FileStore;
//! use session::{Session, SessionConfig, SessionManager};
//!
//! #[derive(Session, Default)]
//! struct Visits {
//!     count: u64,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = std::env::temp_dir().join(format!("file-store-doc-{}", std::process::id()));
//! let sessions = SessionManager::new(FileStore::new(&dir)?, SessionConfig::default())?;
//!
//! let request = sessions.start(None);
//! let visits = request.session::<Visits>().await?;
//! visits.set_count(visits.count() + 1);
//! let finished = request.finish().await;
//! finished.result?;
//! let cookie = finished.cookie.expect("the first write sets a cookie");
//!
//! // Another process, or this one after a restart, opens the same directory.
//! let sessions = SessionManager::new(FileStore::new(&dir)?, SessionConfig::default())?;
//! let request = sessions.start(Some(cookie.value().to_owned()));
//! assert_eq!(request.session::<Visits>().await?.count(), 1);
//! request.finish().await.result?;
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok(())
//! # }
//! ```
//!
//! # On disk
//!
//! ```text
//! DIR/
//! ├── sessions/
//! │   └── 3f/
//! │       └── 3f9a…c2.json      one session
//! ├── owners/
//! │   └── b1/
//! │       └── b1e0…7d.json      one owner's index
//! └── locks/
//!     ├── session-3f            stripe locks: 256 for sessions,
//!     ├── owner-b1              256 for owner indexes
//!     └── sweep                 held while sweeping; its mtime is the last sweep
//! ```
//!
//! A session's file is named by the lowercase hex SHA-256 of its
//! [`StoreKey`] (keys may carry an application prefix of any characters) and
//! lives in the directory named by the first two hex digits. It holds one
//! JSON object: `key`, `fields` (field name to standard base64 of the encoded
//! value), `expires_at`, `created_at` and `updated_at` in milliseconds since
//! the Unix epoch, `max_age` in milliseconds or `null`, `owner` or `null`,
//! and a format version `v`. An owner's index, named by the SHA-256 of the
//! owner, holds `owner` and `sessions`, the names of the session files bound
//! to it; it lets [`list_owned`](SessionStore::list_owned) and
//! [`delete_owned`](SessionStore::delete_owned) find an owner's sessions
//! without reading every file, and it is shared by processes and survives
//! restarts like the sessions. An index may name a session that is no longer
//! bound to its owner (after a crash, or until the next sweep): listing
//! checks every session it names and prunes those entries.
//!
//! Files and directories the store creates are readable by their owner only
//! (modes `0600` and `0700` on Unix), so every process sharing a directory
//! must run as the same user.
//!
//! # What a commit writes
//!
//! A write ([`create`](SessionStore::create),
//! [`update`](SessionStore::update), [`rekey`](SessionStore::rekey)), with
//! the session's stripe lock held:
//!
//! 1. reads the session's file and decides by the contract (a live key is
//!    taken, a missing or expired one is gone), merging the changes into the
//!    whole record with [`StoredSession::apply`];
//! 2. if the write binds the session to an owner, adds it to that owner's
//!    index first, so an index never misses a live session of its owner;
//! 3. writes the whole record to `.NAME.json.RANDOM.tmp` next to the data
//!    file, `fsync`s it and renames it over the data file (a rekey then
//!    removes the old key's file);
//! 4. if the write unbound the session from an owner, removes it from that
//!    owner's index.
//!
//! So an update that changes fields only costs, besides the lock file's
//! `open` and `flock`, one read of the old file, one write of the new one
//! (its fields base64-encoded, plus about 200 bytes of JSON), an `fsync` and
//! a `rename`. Loads take no lock: the rename makes the new file appear at
//! once. Blocking file I/O never runs on the async runtime's workers: every
//! operation runs in [`tokio::task::spawn_blocking`].
//!
//! # Locking
//!
//! Read-modify-writes run under an exclusive [`File::lock`] (`flock` on
//! Unix, `LockFileEx` on Windows) of a lock file, never of the data file,
//! which the rename replaces. Lock files are striped by the first two hex
//! digits of the name they protect and are never deleted, so there is no
//! race between locking a file and removing it. Such locks belong to an open
//! file description, and the store opens the lock file anew for every
//! operation, so they exclude the threads of one process exactly as they
//! exclude other processes. A rekey locks both stripes in order (one if they
//! are the same); owner locks are taken only with the session locks already
//! held, one at a time, so locks cannot deadlock. The locks are advisory:
//! nothing else should write in the directory, and they do not work across
//! machines (do not share the directory over NFS).
//!
//! # Durability
//!
//! The data file is always `fsync`ed before its rename, so after a crash
//! each session holds its old record or its new one. With
//! [`durable(true)`](FileStore::durable) the store also `fsync`s the
//! directory after each rename and removal, so a write the store reported is
//! on disk even if the machine loses power; without it (the default), the
//! last writes before a power loss may be lost. A rekey that crashes between
//! writing the new file and removing the old one leaves both, the new one
//! under a key no client was told about, until it expires.
//!
//! # Clean-up
//!
//! A write that finds the last sweep older than the
//! [`sweep_period`](FileStore::sweep_period) (ten minutes by default, for
//! all processes on the directory) starts one sweep in the background. It
//! deletes expired sessions, empty or unparsable files in the sessions
//! directory, temp files older than an hour (left by a crash), and index
//! entries of sessions no longer bound to their owner.
//! [`ExpiredCleanup::delete_expired`] runs the same sweep at once.

use std::collections::{BTreeSet, HashMap};
use std::fs::{self, DirEntry, File, OpenOptions, TryLockError};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize, Serializer};
use sha2::{Digest, Sha256};

use super::{
    BoxError, ChangeSet, Created, ExpiredCleanup, Fields, Moved, OwnedSession, Record,
    SessionStore, StoredSession, Updated,
};
use crate::StoreKey;

/// How often writes sweep expired sessions out by default.
const SWEEP_PERIOD: Duration = Duration::from_secs(10 * 60);
/// A temp file this old was left by a writer that crashed.
const STALE_TEMP: Duration = Duration::from_secs(60 * 60);
/// The version of the session file format.
const FORMAT: u32 = 1;

/// The file store: one JSON file per session in a directory that processes
/// on one machine may share, written atomically under file locks. See the
/// [module docs](self) for the layout on disk, what a write costs, and the
/// locking and durability guarantees.
#[derive(Debug)]
pub struct FileStore {
    inner: Arc<Inner>,
    sweep_period: Duration,
    durable: bool,
}

/// The directory and the sweeping state, shared with blocking tasks.
#[derive(Debug)]
struct Inner {
    root: PathBuf,
    sessions: PathBuf,
    owners: PathBuf,
    locks: PathBuf,
    /// When this process last started a sweep or learned of one, in
    /// milliseconds since the Unix epoch.
    last_sweep: AtomicU64,
    /// Whether a background sweep of this store is running.
    sweeping: AtomicBool,
}

impl FileStore {
    /// A store keeping its files in `dir`, which is created with the
    /// directories inside it if missing. Another `FileStore` (in this process
    /// or another) on the same directory shares its sessions.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let root = dir.into();
        let inner = Inner {
            sessions: root.join("sessions"),
            owners: root.join("owners"),
            locks: root.join("locks"),
            root,
            last_sweep: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
        };
        for dir in [&inner.sessions, &inner.owners, &inner.locks] {
            make_dirs(dir)?;
        }
        // A fresh marker is dated now: nothing to sweep in a new directory.
        let marker = inner.open_lock_file("sweep")?;
        let last = marker
            .metadata()
            .and_then(|meta| meta.modified())
            .unwrap_or_else(|_| SystemTime::now());
        inner.last_sweep.store(millis(last), Ordering::Relaxed);
        Ok(Self {
            inner: Arc::new(inner),
            sweep_period: SWEEP_PERIOD,
            durable: false,
        })
    }

    /// How often writes sweep expired sessions and stale files out, in the
    /// background (default ten minutes). Processes sharing the directory take
    /// turns: a sweep that finds another one running, or one started less
    /// than a period ago, does nothing.
    pub fn sweep_period(mut self, period: Duration) -> Self {
        self.sweep_period = period;
        self
    }

    /// Whether to `fsync` the directory after every rename and removal, so
    /// that a write survives a power loss once the store has reported it
    /// (default `false`). The data file itself is always `fsync`ed before its
    /// rename, so a crash never leaves a torn record either way.
    pub fn durable(mut self, durable: bool) -> Self {
        self.durable = durable;
        self
    }

    /// The directory the store keeps its files in.
    pub fn dir(&self) -> &Path {
        &self.inner.root
    }

    /// Runs `op` on tokio's blocking threads.
    async fn blocking<T, F>(&self, op: F) -> Result<T, BoxError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner) -> io::Result<T> + Send + 'static,
    {
        let inner = Arc::clone(&self.inner);
        match tokio::task::spawn_blocking(move || op(&inner)).await {
            Ok(result) => result.map_err(BoxError::from),
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(error) => Err(Box::new(error)),
        }
    }

    /// Starts a sweep in the background if the last one is older than the
    /// sweep period and none is running.
    fn sweep_if_due(&self) {
        let now = millis(SystemTime::now());
        let last = self.inner.last_sweep.load(Ordering::Relaxed);
        let period = u64::try_from(self.sweep_period.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(last) < period || self.inner.sweeping.swap(true, Ordering::AcqRel) {
            return;
        }
        self.inner.last_sweep.store(now, Ordering::Relaxed);
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.inner.sweeping.store(false, Ordering::Release);
            return;
        };
        let (inner, period) = (Arc::clone(&self.inner), self.sweep_period);
        runtime.spawn_blocking(move || {
            let _done = Sweeping(&inner.sweeping);
            inner.background_sweep(period);
        });
    }
}

/// Clears the "sweeping" flag when a background sweep ends, even by a panic.
struct Sweeping<'a>(&'a AtomicBool);

impl Drop for Sweeping<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

#[async_trait]
impl SessionStore for FileStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        let key = key.clone();
        self.blocking(move |inner| {
            let now = SystemTime::now();
            Ok(inner
                .read_session(&name_of(key.as_str()))?
                .live(now)
                .map(|session| session.record(now)))
        })
        .await
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        self.sweep_if_due();
        let (key, changes, durable) = (key.clone(), changes.clone(), self.durable);
        self.blocking(move |inner| inner.create(&key, &changes, durable))
            .await
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        self.sweep_if_due();
        let (key, changes, durable) = (key.clone(), changes.clone(), self.durable);
        self.blocking(move |inner| inner.update(&key, &changes, durable))
            .await
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        _whole: &Record,
    ) -> Result<Moved, BoxError> {
        self.sweep_if_due();
        let (from, to, changes) = (from.clone(), to.clone(), changes.clone());
        let durable = self.durable;
        self.blocking(move |inner| inner.rekey(&from, &to, &changes, durable))
            .await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        let (key, durable) = (key.clone(), self.durable);
        self.blocking(move |inner| inner.delete(&key, durable))
            .await
    }

    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        let owner = owner.to_owned();
        self.blocking(move |inner| inner.list_owned(&owner)).await
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        let (owner, keep, durable) = (owner.to_owned(), keep.cloned(), self.durable);
        self.blocking(move |inner| inner.delete_owned(&owner, keep.as_ref(), durable))
            .await
    }
}

#[async_trait]
impl ExpiredCleanup for FileStore {
    async fn delete_expired(&self) -> Result<u64, BoxError> {
        self.blocking(Inner::delete_expired).await
    }
}

// ---------------------------------------------------------------------------
// The operations, on a blocking thread

impl Inner {
    fn create(&self, key: &StoreKey, changes: &ChangeSet, durable: bool) -> io::Result<Created> {
        let name = name_of(key.as_str());
        let _lock = self.lock_session(&name)?;
        let now = SystemTime::now();
        let old = self.read_session(&name)?;
        if old.is_live(now) {
            return Ok(Created::KeyTaken);
        }
        // An expired session's fields, override and owner are forgotten.
        let session = normalized(StoredSession::create(changes, now));
        self.put(&name, key, &session, old.owner().as_deref(), false, durable)?;
        Ok(Created::Written(session.expiry(now)))
    }

    fn update(&self, key: &StoreKey, changes: &ChangeSet, durable: bool) -> io::Result<Updated> {
        let name = name_of(key.as_str());
        let _lock = self.lock_session(&name)?;
        let now = SystemTime::now();
        let Some(mut session) = self.read_session(&name)?.live(now) else {
            return Ok(Updated::Gone);
        };
        let before = session.owner.clone();
        session.apply(changes, now);
        let session = normalized(session);
        self.put(&name, key, &session, before.as_deref(), true, durable)?;
        Ok(Updated::Written(session.expiry(now)))
    }

    fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        durable: bool,
    ) -> io::Result<Moved> {
        let (source, target) = (name_of(from.as_str()), name_of(to.as_str()));
        // Both stripes, in order: the move is one step for every process.
        let (first, second) = if stripe(&source) <= stripe(&target) {
            (&source, &target)
        } else {
            (&target, &source)
        };
        let _first = self.lock_session(first)?;
        let _second = if stripe(first) == stripe(second) {
            None
        } else {
            Some(self.lock_session(second)?)
        };
        let now = SystemTime::now();
        let replaced = self.read_session(&target)?;
        if replaced.is_live(now) {
            return Ok(Moved::KeyTaken);
        }
        let Some(mut session) = self.read_session(&source)?.live(now) else {
            return Ok(Moved::Gone);
        };
        let before = session.owner.clone();
        session.apply(changes, now);
        let session = normalized(session);
        self.put(
            &target,
            to,
            &session,
            replaced.owner().as_deref(),
            false,
            durable,
        )?;
        self.remove_session_file(&source, durable)?;
        if let Some(before) = before {
            self.unindex(&before, &source, durable)?;
        }
        Ok(Moved::Written(session.expiry(now)))
    }

    fn delete(&self, key: &StoreKey, durable: bool) -> io::Result<()> {
        let name = name_of(key.as_str());
        let _lock = self.lock_session(&name)?;
        let old = self.read_head(&name)?;
        if matches!(old, Found::Missing) {
            return Ok(());
        }
        self.remove_session_file(&name, durable)?;
        if let Some(owner) = old.owner() {
            self.unindex(&owner, &name, durable)?;
        }
        Ok(())
    }

    fn list_owned(&self, owner: &str) -> io::Result<Vec<OwnedSession>> {
        let now = SystemTime::now();
        let mut listed = Vec::new();
        for name in self.read_index(owner)? {
            match self.read_head(&name)? {
                Found::Here(head) if head.is_live(now) && head.is_owned_by(owner) => {
                    listed.push(head.owned());
                }
                _ => self.prune(owner, &name)?,
            }
        }
        Ok(listed)
    }

    fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>, durable: bool) -> io::Result<u64> {
        let keep = keep.map(|key| name_of(key.as_str()));
        let mut deleted = 0;
        for name in self.read_index(owner)? {
            if keep.as_ref() == Some(&name) {
                continue;
            }
            let _lock = self.lock_session(&name)?;
            let now = SystemTime::now();
            if let Found::Here(head) = self.read_head(&name)? {
                if head.is_owned_by(owner) {
                    self.remove_session_file(&name, durable)?;
                    deleted += u64::from(head.is_live(now));
                }
            }
            // Deleted now, or not (or no longer) the owner's.
            self.unindex(owner, &name, durable)?;
        }
        Ok(deleted)
    }

    /// Writes `session` under `name`, keeping the owner indexes right:
    /// `before` is the owner of the record the file held, and `was_live`
    /// whether that record was live.
    fn put(
        &self,
        name: &str,
        key: &StoreKey,
        session: &StoredSession,
        before: Option<&str>,
        was_live: bool,
        durable: bool,
    ) -> io::Result<()> {
        let after = session.owner.as_deref();
        // Indexed before the write, so a live session is always in its
        // owner's index; an expired record's entry may be pruned already.
        if let Some(after) = after {
            if !(was_live && before == Some(after)) {
                self.index(after, name, durable)?;
            }
        }
        let bytes = encode_session(key, session)?;
        let (dir, file) = self.session_path(name);
        write_file(&dir, &file, &bytes, durable)?;
        if let Some(before) = before {
            if Some(before) != after {
                self.unindex(before, name, durable)?;
            }
        }
        Ok(())
    }

    fn remove_session_file(&self, name: &str, durable: bool) -> io::Result<()> {
        let (dir, file) = self.session_path(name);
        remove_file(&dir.join(file))?;
        if durable {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Removes the entry of `name` from `owner`'s index unless the session is
    /// live and bound to `owner`. Takes the session's lock: index entries of a
    /// session change only under it.
    fn prune(&self, owner: &str, name: &str) -> io::Result<()> {
        let _lock = self.lock_session(name)?;
        match self.read_head(name)? {
            Found::Here(head) if head.is_live(SystemTime::now()) && head.is_owned_by(owner) => {
                Ok(())
            }
            _ => self.unindex(owner, name, false),
        }
    }
}

// ---------------------------------------------------------------------------
// Sweeping

impl Inner {
    fn delete_expired(&self) -> io::Result<u64> {
        let marker = self.open_lock_file("sweep")?;
        marker.lock()?;
        let now = SystemTime::now();
        // Not fatal: the marker only spares other processes a sweep.
        let _ = marker.set_modified(now);
        self.last_sweep.store(millis(now), Ordering::Relaxed);
        let swept = self.sweep(now);
        let _ = marker.unlock();
        swept
    }

    /// A sweep a write started, unless another process is sweeping or swept
    /// less than `period` ago.
    fn background_sweep(&self, period: Duration) {
        let marker = match self.open_lock_file("sweep") {
            Ok(marker) => marker,
            Err(error) => {
                tracing::warn!(%error, "session sweep failed");
                return;
            }
        };
        match marker.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return,
            Err(TryLockError::Error(error)) => {
                tracing::warn!(%error, "session sweep failed");
                return;
            }
        }
        let now = SystemTime::now();
        if let Ok(last) = marker.metadata().and_then(|meta| meta.modified()) {
            if now.duration_since(last).is_ok_and(|since| since < period) {
                self.last_sweep.store(millis(last), Ordering::Relaxed);
                return;
            }
        }
        let _ = marker.set_modified(now);
        match self.sweep(now) {
            Ok(0) => {}
            Ok(deleted) => tracing::debug!(deleted, "swept expired sessions"),
            Err(error) => tracing::warn!(%error, "session sweep failed"),
        }
    }

    /// Deletes expired sessions and stale files, prunes the owner indexes,
    /// and returns how many expired sessions it deleted. Failures on single
    /// files are logged and skipped.
    fn sweep(&self, now: SystemTime) -> io::Result<u64> {
        let mut deleted = 0;
        for_each_file(&self.sessions, |entry, name| {
            deleted += self.sweep_session(entry, name, now)?;
            Ok(())
        })?;
        for_each_file(&self.owners, |entry, name| {
            self.sweep_owner(entry, name, now)
        })?;
        Ok(deleted)
    }

    fn sweep_session(&self, entry: &DirEntry, file: &str, now: SystemTime) -> io::Result<u64> {
        if is_temp(file) {
            return remove_if_stale(entry, now);
        }
        let Some(name) = file
            .strip_suffix(".json")
            .filter(|name| self.is_in_place(name, entry))
        else {
            return Ok(0);
        };
        // A look without the lock first: most sessions are live.
        if self.read_head(name)?.is_live(now) {
            return Ok(0);
        }
        let _lock = self.lock_session(name)?;
        match self.read_head(name)? {
            Found::Missing => Ok(0),
            Found::Here(head) if head.is_live(now) => Ok(0),
            Found::Here(head) => {
                self.remove_session_file(name, false)?;
                if let Some(owner) = &head.owner {
                    self.unindex(owner, name, false)?;
                }
                Ok(1)
            }
            Found::Garbage => {
                tracing::warn!(path = %entry.path().display(), "deleting an unreadable session file");
                self.remove_session_file(name, false)?;
                Ok(0)
            }
        }
    }

    fn sweep_owner(&self, entry: &DirEntry, file: &str, now: SystemTime) -> io::Result<()> {
        if is_temp(file) {
            remove_if_stale(entry, now)?;
            return Ok(());
        }
        if !file.strip_suffix(".json").is_some_and(is_name) {
            return Ok(());
        }
        match read_json::<OwnerIndex>(&entry.path())? {
            Found::Missing => Ok(()),
            Found::Here(index) => {
                for name in &index.sessions {
                    match self.read_head(name)? {
                        Found::Here(head)
                            if head.is_live(now) && head.is_owned_by(&index.owner) => {}
                        _ => self.prune(&index.owner, name)?,
                    }
                }
                Ok(())
            }
            Found::Garbage => {
                let _lock = self.lock(&format!("owner-{}", &file[..2]))?;
                if let Found::Garbage = read_json::<OwnerIndex>(&entry.path())? {
                    tracing::warn!(path = %entry.path().display(), "deleting an unreadable owner index");
                    remove_file(&entry.path())?;
                }
                Ok(())
            }
        }
    }

    /// Whether the file `name.json` found at `entry` is where the store keeps
    /// the session named `name`.
    fn is_in_place(&self, name: &str, entry: &DirEntry) -> bool {
        is_name(name) && {
            let (dir, _) = self.session_path(name);
            entry.path().parent() == Some(dir.as_path())
        }
    }
}

/// Calls `visit` with every file two levels below `dir` (the shard
/// directories' files) and its name; logs and skips what fails.
fn for_each_file(
    dir: &Path,
    mut visit: impl FnMut(&DirEntry, &str) -> io::Result<()>,
) -> io::Result<()> {
    for shard in fs::read_dir(dir).map_err(at(dir))? {
        let shard = match shard {
            Ok(shard) if shard.file_type().is_ok_and(|kind| kind.is_dir()) => shard,
            Ok(_) => continue,
            Err(error) => {
                tracing::warn!(%error, dir = %dir.display(), "session sweep skipped an entry");
                continue;
            }
        };
        let files = match fs::read_dir(shard.path()) {
            Ok(files) => files,
            Err(error) if error.kind() == io::ErrorKind::NotFound => continue,
            Err(error) => {
                let dir = shard.path();
                tracing::warn!(%error, dir = %dir.display(), "session sweep skipped a directory");
                continue;
            }
        };
        for entry in files {
            let result = entry.and_then(|entry| match entry.file_name().to_str() {
                Some(name) => visit(&entry, name),
                None => Ok(()),
            });
            if let Err(error) = result {
                tracing::warn!(%error, "session sweep skipped a file");
            }
        }
    }
    Ok(())
}

fn is_temp(file: &str) -> bool {
    file.starts_with('.') && file.ends_with(".tmp")
}

/// Removes a temp file older than [`STALE_TEMP`]; one younger may be a write
/// in progress.
fn remove_if_stale(entry: &DirEntry, now: SystemTime) -> io::Result<u64> {
    let modified = entry.metadata()?.modified()?;
    if now
        .duration_since(modified)
        .is_ok_and(|age| age >= STALE_TEMP)
    {
        remove_file(&entry.path())?;
    }
    Ok(0)
}

// ---------------------------------------------------------------------------
// Files, locks and indexes

impl Inner {
    /// The directory of the session `name` and its file's name in it.
    fn session_path(&self, name: &str) -> (PathBuf, String) {
        (self.sessions.join(stripe(name)), format!("{name}.json"))
    }

    /// The directory of `owner`'s index and its file's name in it.
    fn owner_path(&self, owner_name: &str) -> (PathBuf, String) {
        (
            self.owners.join(stripe(owner_name)),
            format!("{owner_name}.json"),
        )
    }

    fn read_session(&self, name: &str) -> io::Result<Found<StoredSession>> {
        let (dir, file) = self.session_path(name);
        Ok(read_json::<SessionFile>(&dir.join(file))?.and_then(|file| file.decode(name)))
    }

    /// The session `name` without its fields.
    fn read_head(&self, name: &str) -> io::Result<Found<SessionHead>> {
        let (dir, file) = self.session_path(name);
        Ok(read_json::<SessionHead>(&dir.join(file))?
            .and_then(|head| (name_of(&head.key) == name).then_some(head)))
    }

    /// The names of the sessions `owner`'s index lists.
    fn read_index(&self, owner: &str) -> io::Result<Vec<String>> {
        let (dir, file) = self.owner_path(&name_of(owner));
        Ok(match read_json::<OwnerIndex>(&dir.join(file))? {
            Found::Here(index) if index.owner == owner => index.sessions.into_iter().collect(),
            _ => Vec::new(),
        })
    }

    fn index(&self, owner: &str, name: &str, durable: bool) -> io::Result<()> {
        self.change_index(owner, durable, |sessions| sessions.insert(name.to_owned()))
    }

    fn unindex(&self, owner: &str, name: &str, durable: bool) -> io::Result<()> {
        self.change_index(owner, durable, |sessions| sessions.remove(name))
    }

    /// Changes `owner`'s index under its lock; `change` says whether it
    /// changed anything.
    fn change_index(
        &self,
        owner: &str,
        durable: bool,
        change: impl FnOnce(&mut BTreeSet<String>) -> bool,
    ) -> io::Result<()> {
        let owner_name = name_of(owner);
        let _lock = self.lock(&format!("owner-{}", stripe(&owner_name)))?;
        let (dir, file) = self.owner_path(&owner_name);
        let path = dir.join(&file);
        let mut index = match read_json::<OwnerIndex>(&path)? {
            Found::Here(index) if index.owner == owner => index,
            found => {
                if matches!(found, Found::Garbage) {
                    tracing::warn!(path = %path.display(), "replacing an unreadable owner index");
                }
                OwnerIndex {
                    owner: owner.to_owned(),
                    sessions: BTreeSet::new(),
                }
            }
        };
        if !change(&mut index.sessions) {
            return Ok(());
        }
        if index.sessions.is_empty() {
            remove_file(&path)?;
            if durable {
                sync_dir(&dir)?;
            }
            return Ok(());
        }
        let bytes = serde_json::to_vec(&index).map_err(io::Error::other)?;
        write_file(&dir, &file, &bytes, durable)
    }

    fn lock_session(&self, name: &str) -> io::Result<Lock> {
        self.lock(&format!("session-{}", stripe(name)))
    }

    /// Takes the lock file `locks/{stripe}`, waiting for whoever holds it.
    fn lock(&self, stripe: &str) -> io::Result<Lock> {
        let file = self.open_lock_file(stripe)?;
        file.lock().map_err(at(&self.locks.join(stripe)))?;
        Ok(Lock(file))
    }

    /// Opens (creating it if need be) the lock file `locks/{name}`. Every
    /// call opens its own file description, so its locks exclude every other
    /// call's, in this process and others.
    fn open_lock_file(&self, name: &str) -> io::Result<File> {
        let path = self.locks.join(name);
        let open = || {
            private(OpenOptions::new().read(true).write(true).create(true))
                .truncate(false)
                .open(&path)
        };
        match open() {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                make_dirs(&self.locks)?;
                open()
            }
            opened => opened,
        }
        .map_err(at(&path))
    }
}

/// A held lock, released when dropped (closing the file would release it
/// too).
#[derive(Debug)]
struct Lock(File);

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Writes `bytes` to `dir/file` atomically: a temp file next to it, written,
/// `fsync`ed and renamed over it.
fn write_file(dir: &Path, file: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
    let temp = dir.join(format!(".{file}.{:016x}.tmp", random()?));
    let create = || private(OpenOptions::new().write(true).create_new(true)).open(&temp);
    let mut out = match create() {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            make_dirs(dir)?;
            if durable {
                if let Some(parent) = dir.parent() {
                    sync_dir(parent)?;
                }
            }
            create()
        }
        created => created,
    }
    .map_err(at(&temp))?;
    let target = dir.join(file);
    let written = out
        .write_all(bytes)
        .and_then(|()| out.sync_all())
        .and_then(|()| {
            drop(out);
            fs::rename(&temp, &target)
        });
    if let Err(error) = written {
        let _ = fs::remove_file(&temp);
        return Err(at(&target)(error));
    }
    if durable {
        sync_dir(dir)?;
    }
    Ok(())
}

/// Removes a file; a missing one is fine.
fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(at(path)(error)),
        _ => Ok(()),
    }
}

/// Makes a rename or removal in `dir` durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(at(dir))
}

/// Directories cannot be opened for syncing here.
#[cfg(not(unix))]
fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

/// Creates `dir` and its parents, readable by this user only.
fn make_dirs(dir: &Path) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(at(dir))
}

/// Files the store creates are readable by this user only.
fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// Adds the path to an error, keeping its kind.
fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |error| io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

fn random() -> io::Result<u64> {
    getrandom::u64().map_err(io::Error::other)
}

/// What a file held.
#[derive(Debug)]
enum Found<T> {
    Missing,
    /// Empty, unparsable, or not the file it claims to be.
    Garbage,
    Here(T),
}

impl<T> Found<T> {
    fn and_then<U>(self, decode: impl FnOnce(T) -> Option<U>) -> Found<U> {
        match self {
            Self::Missing => Found::Missing,
            Self::Garbage => Found::Garbage,
            Self::Here(value) => decode(value).map_or(Found::Garbage, Found::Here),
        }
    }
}

impl Found<StoredSession> {
    fn live(self, now: SystemTime) -> Option<StoredSession> {
        match self {
            Self::Here(session) if session.is_live(now) => Some(session),
            _ => None,
        }
    }

    fn is_live(&self, now: SystemTime) -> bool {
        matches!(self, Self::Here(session) if session.is_live(now))
    }

    fn owner(&self) -> Option<Arc<str>> {
        match self {
            Self::Here(session) => session.owner.clone(),
            _ => None,
        }
    }
}

impl Found<SessionHead> {
    fn is_live(&self, now: SystemTime) -> bool {
        matches!(self, Self::Here(head) if head.is_live(now))
    }

    fn owner(&self) -> Option<String> {
        match self {
            Self::Here(head) => head.owner.clone(),
            _ => None,
        }
    }
}

fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Found<T>> {
    match fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).map_or(Found::Garbage, Found::Here)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Found::Missing),
        Err(error) => Err(at(path)(error)),
    }
}

// ---------------------------------------------------------------------------
// The file formats

/// A session file, written from borrowed parts.
#[derive(Serialize)]
struct SessionFileOut<'a> {
    v: u32,
    key: &'a str,
    expires_at: u64,
    max_age: Option<u64>,
    owner: Option<&'a str>,
    created_at: u64,
    updated_at: u64,
    fields: EncodedFields<'a>,
}

/// Fields as a JSON object of base64 strings.
struct EncodedFields<'a>(&'a Fields);

impl Serialize for EncodedFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .iter()
                .map(|(name, value)| (name, STANDARD.encode(value))),
        )
    }
}

/// A session file as read.
#[derive(Deserialize)]
struct SessionFile {
    key: String,
    expires_at: u64,
    max_age: Option<u64>,
    owner: Option<String>,
    created_at: u64,
    updated_at: u64,
    fields: HashMap<String, String>,
}

impl SessionFile {
    /// The session, if the file is the one of the session `name` and its
    /// values decode.
    fn decode(self, name: &str) -> Option<StoredSession> {
        if name_of(&self.key) != name {
            return None;
        }
        let fields = self
            .fields
            .into_iter()
            .map(|(field, value)| {
                let value = STANDARD.decode(value).ok()?;
                Some((field, Bytes::from(value)))
            })
            .collect::<Option<Fields>>()?;
        Some(StoredSession {
            fields: Arc::new(fields),
            expires_at: from_millis(self.expires_at),
            max_age: self.max_age.map(Duration::from_millis),
            owner: self.owner.map(Arc::from),
            created_at: from_millis(self.created_at),
            updated_at: from_millis(self.updated_at),
        })
    }
}

/// A session file without its fields: what sweeping and listing need.
#[derive(Debug, Deserialize)]
struct SessionHead {
    key: String,
    expires_at: u64,
    owner: Option<String>,
    created_at: u64,
    updated_at: u64,
}

impl SessionHead {
    fn is_live(&self, now: SystemTime) -> bool {
        from_millis(self.expires_at) > now
    }

    fn is_owned_by(&self, owner: &str) -> bool {
        self.owner.as_deref() == Some(owner)
    }

    fn owned(self) -> OwnedSession {
        OwnedSession {
            key: StoreKey::new(self.key),
            created_at: from_millis(self.created_at),
            updated_at: from_millis(self.updated_at),
            expires_at: from_millis(self.expires_at),
        }
    }
}

/// An owner's index: the names of the session files bound to it.
#[derive(Serialize, Deserialize)]
struct OwnerIndex {
    owner: String,
    sessions: BTreeSet<String>,
}

fn encode_session(key: &StoreKey, session: &StoredSession) -> io::Result<Vec<u8>> {
    let file = SessionFileOut {
        v: FORMAT,
        key: key.as_str(),
        expires_at: millis(session.expires_at),
        max_age: session.max_age.map(duration_millis),
        owner: session.owner.as_deref(),
        created_at: millis(session.created_at),
        updated_at: millis(session.updated_at),
        fields: EncodedFields(&session.fields),
    };
    serde_json::to_vec(&file).map_err(io::Error::other)
}

/// `session` with its times cut to what its file keeps (milliseconds), so
/// that a write reports the expiry the next load will.
fn normalized(mut session: StoredSession) -> StoredSession {
    session.expires_at = from_millis(millis(session.expires_at));
    session.created_at = from_millis(millis(session.created_at));
    session.updated_at = from_millis(millis(session.updated_at));
    session.max_age = session
        .max_age
        .map(|max_age| Duration::from_millis(duration_millis(max_age)));
    session
}

/// The lowercase hex SHA-256 of `text`: a session file's name for a key, an
/// index's for an owner.
fn name_of(text: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    Sha256::digest(text.as_bytes())
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0xf])
        .map(|digit| char::from(DIGITS[usize::from(digit)]))
        .collect()
}

/// Whether `name` can be a name [`name_of`] made.
fn is_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The shard and lock stripe of a name: its first two hex digits.
fn stripe(name: &str) -> &str {
    &name[..2]
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, duration_millis)
}

fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn from_millis(millis: u64) -> SystemTime {
    UNIX_EPOCH
        .checked_add(Duration::from_millis(millis))
        .unwrap_or(UNIX_EPOCH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_hex_sha256_and_shard_by_their_first_two_digits() {
        let name = name_of("app:key");
        assert!(is_name(&name), "{name}");
        assert_eq!(
            name_of(""),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(stripe(&name), &name[..2]);
        assert!(!is_name("E3b0"));
    }

    #[test]
    fn normalized_sessions_round_trip_through_their_file() {
        let now = SystemTime::now();
        let mut changes = ChangeSet::touch(Duration::from_micros(1_234_567));
        changes.set.push(("a", Bytes::from_static(&[0, 255, b'"'])));
        changes.max_age = super::super::Update::Set(Some(Duration::from_nanos(86_400_000_000_123)));
        changes.owner = super::super::Update::Set(Some(Arc::from("ann")));
        let session = normalized(StoredSession::create(&changes, now));
        let key = StoreKey::new("k");
        let bytes = encode_session(&key, &session).unwrap();
        let file: SessionFile = serde_json::from_slice(&bytes).unwrap();
        let read = file.decode(&name_of("k")).unwrap();
        assert_eq!(read, session);
        let file: SessionFile = serde_json::from_slice(&bytes).unwrap();
        assert!(file.decode(&name_of("other")).is_none());
    }
}
