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
//! ├── owned/
//! │   └── b1/
//! │       └── b1e0…7d/          one owner's index:
//! │           └── 3f9a…c2       an empty file per session bound to it
//! └── locks/
//!     ├── session-3f            stripe locks: 256 for sessions,
//!     ├── owner-b1              256 for revoking owners' sessions
//!     └── sweep                 held while sweeping; its mtime is the last sweep
//! ```
//!
//! A session's file is named by the lowercase hex SHA-256 of its
//! [`StoreKey`] (keys may carry an application prefix of any characters) and
//! lives in the directory named by the first two hex digits. It holds one
//! JSON object: `key`, `fields` (field name to standard base64 of the encoded
//! value), `expires_at`, `created_at` and `updated_at` in milliseconds since
//! the Unix epoch, `max_age` in milliseconds or `null`, `owner` or `null`,
//! and a format version `v`. An owner's index, a directory named by the
//! SHA-256 of the owner, holds one empty file per session bound to it, named
//! like the session's file; it lets [`list_owned`](SessionStore::list_owned)
//! and [`delete_owned`](SessionStore::delete_owned) find an owner's sessions
//! without reading every file, and it is shared by processes and survives
//! restarts like the sessions. Adding or removing a session costs one file
//! creation or removal, however many sessions the owner has. An index may
//! name a session that is no longer bound to its owner (after a crash, or
//! until the next sweep): listing checks every session it names and prunes
//! those entries. The first version of the store kept each index as one JSON
//! file under `owners/`; opening a directory moves such indexes here (stop
//! the processes running that version first).
//!
//! The directory must be private to the user the store runs as: its files
//! are the sessions, and whoever can write in it can plant or replace them.
//! So [`FileStore::new`] refuses a directory (or one of the three inside it)
//! that another user owns or that group or others may write in, with an
//! [`UnsafeDirectory`] error, and creates what is missing readable by its
//! owner only (modes `0700` and, for files, `0600`, on Unix). Every process
//! sharing a directory must run as the same user.
//!
//! # What a commit writes
//!
//! A write ([`create`](SessionStore::create),
//! [`update`](SessionStore::update), [`rekey`](SessionStore::rekey)), with
//! the session's stripe lock held:
//!
//! 1. reads the session's file and decides by the contract (a live key is
//!    taken, a missing or expired one is gone), merging the changes into the
//!    whole record with [`StoredSession::apply`](super::StoredSession::apply);
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
//! A write whose caller stops waiting (a store timeout drops its future)
//! while it waits for a lock is abandoned: it writes nothing, so it cannot
//! land after, and over, a newer write the caller made next, nor create a
//! session whose id nobody was given. A write that already holds its locks
//! when its caller gives up finishes, before any newer write of the session
//! can take them.
//!
//! # Locking
//!
//! Read-modify-writes run under an exclusive
//! [`File::lock`](std::fs::File::lock) (`flock` on Unix, `LockFileEx` on
//! Windows) of a lock file, never of the data file, which the rename
//! replaces. Lock files are striped by the first two hex
//! digits of the name they protect and are never deleted, so there is no
//! race between locking a file and removing it. Such locks belong to an open
//! file description, and the store opens the lock file anew for every
//! operation, so they exclude the threads of one process exactly as they
//! exclude other processes. A rekey locks both stripes in order (one if they
//! are the same). Index entries of a session change only under its lock
//! (but for the entries moved from the first layout, when a store opens).
//!
//! [`delete_owned`](SessionStore::delete_owned) holds the owner's `owner-`
//! lock exclusively while it deletes, and a rekey of a session bound to an
//! owner holds it shared, so no session of the owner moves to a key the
//! revocation has not seen. Owner locks are taken before session locks, one
//! at a time, so locks cannot deadlock. The locks are advisory: nothing else
//! should write in the directory, and they do not work across machines (do
//! not share the directory over NFS).
//!
//! # Durability
//!
//! The data file is always `fsync`ed before its rename, so after a crash
//! each session holds its old record or its new one. With
//! [`durable(true)`](FileStore::durable) the store also `fsync`s the
//! directory after each rename and removal of a session file and each new
//! index entry, so a write the store reported is on disk even if the machine
//! loses power; without it (the default), the last writes before a power
//! loss may be lost. (A removed index entry may come back after a power
//! loss: it names a session that is gone or not the owner's, and is pruned.)
//! A rekey that crashes between writing the new file and removing the old
//! one leaves both, the new one under a key no client was told about, until
//! it expires.
//!
//! # Clean-up
//!
//! A write that finds the last sweep older than the
//! [`sweep_period`](FileStore::sweep_period) (ten minutes by default, for
//! all processes on the directory) starts one sweep in the background. It
//! deletes expired sessions, empty or unparsable files in the sessions
//! directory, temp files older than an hour (left by a crash), index
//! entries of sessions no longer bound to their owner, and indexes empty
//! for an hour. [`ExpiredCleanup::delete_expired`] runs the same sweep at
//! once.

mod disk;
mod format;
mod index;
mod ops;
mod sweep;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;

use super::{
    BoxError, ChangeSet, Created, ExpiredCleanup, Moved, OwnedSession, Record, SessionStore,
    Updated,
};
use crate::StoreKey;
use disk::{make_dirs, millis, name_of, refuse_unless_private};

/// How often writes sweep expired sessions out by default.
const SWEEP_PERIOD: Duration = Duration::from_secs(10 * 60);

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

/// Why [`FileStore::new`] refused a directory: another user could read,
/// plant or replace the sessions in it. It comes as the source of an
/// [`io::Error`] of kind [`PermissionDenied`](io::ErrorKind::PermissionDenied)
/// (see [`io::Error::get_ref`]).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum UnsafeDirectory {
    /// Another user owns the directory.
    #[error(
        "{}: owned by uid {owner}, not by this process's uid {user}: \
         refusing a session directory another user controls",
        path.display()
    )]
    NotOwned {
        /// The directory.
        path: PathBuf,
        /// Its owner's uid.
        owner: u32,
        /// The uid this process runs as.
        user: u32,
    },
    /// Group or others may write in the directory.
    #[error(
        "{}: mode {mode:o} lets group or others write in it: \
         refusing a session directory others control (chmod go-w it)",
        path.display()
    )]
    WritableByOthers {
        /// The directory.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

/// The directory and the sweeping state, shared with blocking tasks.
#[derive(Debug)]
struct Inner {
    root: PathBuf,
    sessions: PathBuf,
    owned: PathBuf,
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
    ///
    /// Fails with an [`UnsafeDirectory`] error (kind
    /// [`PermissionDenied`](io::ErrorKind::PermissionDenied)) if `dir`, or a
    /// directory of the store's inside it, belongs to another user or lets
    /// group or others write in it.
    pub fn new(dir: impl Into<PathBuf>) -> io::Result<Self> {
        let root = dir.into();
        let inner = Inner {
            sessions: root.join("sessions"),
            owned: root.join("owned"),
            locks: root.join("locks"),
            root,
            last_sweep: AtomicU64::new(0),
            sweeping: AtomicBool::new(false),
        };
        // The root first: nothing is created in a directory others control.
        for dir in [&inner.root, &inner.sessions, &inner.owned, &inner.locks] {
            make_dirs(dir, false)?;
            refuse_unless_private(dir)?;
        }
        inner.move_legacy_indexes()?;
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

    /// Runs the write `op` on tokio's blocking threads, as [`blocking`](Self::blocking)
    /// does, with a [`Ticket`] that abandons it if this future is dropped
    /// before `op` commits.
    async fn writing<T, F>(&self, op: F) -> Result<T, BoxError>
    where
        T: Send + 'static,
        F: FnOnce(&Inner, &Ticket) -> io::Result<T> + Send + 'static,
    {
        let ticket = Arc::new(Ticket::default());
        let _abandon = AbandonOnDrop(Arc::clone(&ticket));
        self.blocking(move |inner| op(inner, &ticket)).await
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

/// One write's fate, shared by the future waiting for it and the blocking
/// task doing it. A store timeout drops the future, but the task cannot be
/// stopped, and if it wrote later it could overwrite a newer write of the
/// session or create a session whose id nobody got. So whichever leaves
/// `PENDING` first wins: the task, once it holds its locks and before its
/// first write, moves to `COMMITTING` and writes; the future, dropped
/// unfinished, moves to `ABANDONED`, and then the task writes nothing. A
/// newer write of the session waits for the committing one's locks.
#[derive(Debug, Default)]
struct Ticket(AtomicU8);

const PENDING: u8 = 0;
const COMMITTING: u8 = 1;
const ABANDONED: u8 = 2;

impl Ticket {
    /// Called by the task with its locks held, before its first write: an
    /// error if the caller has given up (nobody sees it).
    fn commit(&self) -> io::Result<()> {
        match self
            .0
            .compare_exchange(PENDING, COMMITTING, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) | Err(COMMITTING) => Ok(()),
            Err(_) => Err(io::Error::new(
                io::ErrorKind::Interrupted,
                "the caller gave up on this write",
            )),
        }
    }

    /// Called when the waiting future is dropped: too late if the task has
    /// committed (or finished).
    fn abandon(&self) {
        let _ = self
            .0
            .compare_exchange(PENDING, ABANDONED, Ordering::AcqRel, Ordering::Acquire);
    }
}

/// Abandons a write when the future waiting for it is dropped.
struct AbandonOnDrop(Arc<Ticket>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
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
        self.writing(move |inner, ticket| inner.create(&key, &changes, durable, ticket))
            .await
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        self.sweep_if_due();
        let (key, changes, durable) = (key.clone(), changes.clone(), self.durable);
        self.writing(move |inner, ticket| inner.update(&key, &changes, durable, ticket))
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
        self.writing(move |inner, ticket| inner.rekey(&from, &to, &changes, durable, ticket))
            .await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        let (key, durable) = (key.clone(), self.durable);
        self.writing(move |inner, ticket| inner.delete(&key, durable, ticket))
            .await
    }

    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        let owner = owner.to_owned();
        self.blocking(move |inner| inner.list_owned(&owner)).await
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        let (owner, keep, durable) = (owner.to_owned(), keep.cloned(), self.durable);
        self.writing(move |inner, ticket| {
            inner.delete_owned(&owner, keep.as_ref(), durable, ticket)
        })
        .await
    }
}

#[async_trait]
impl ExpiredCleanup for FileStore {
    async fn delete_expired(&self) -> Result<u64, BoxError> {
        self.blocking(Inner::delete_expired).await
    }
}
