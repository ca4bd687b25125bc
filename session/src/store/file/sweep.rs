//! Sweeping: expired sessions, stale files and index entries.

use std::fs::{self, DirEntry, TryLockError};
use std::io;
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime};

use super::disk::{at, is_name, millis, name_of, remove_file, stripe, Found};
use super::Inner;

/// A temp file this old was left by a writer that crashed.
const STALE_TEMP: Duration = Duration::from_secs(60 * 60);
/// An owner index empty and unchanged for this long is removed.
const IDLE_INDEX: Duration = Duration::from_secs(60 * 60);

impl Inner {
    pub(super) fn delete_expired(&self) -> io::Result<u64> {
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
    pub(super) fn background_sweep(&self, period: Duration) {
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
        for_each_file(&self.owned, |entry, name| {
            self.sweep_index(entry, name, now)
        })?;
        Ok(deleted)
    }

    fn sweep_session(&self, entry: &DirEntry, file: &str, now: SystemTime) -> io::Result<u64> {
        if is_temp(file) {
            return remove_if_stale(entry, now);
        }
        let Some(name) = file
            .strip_suffix(".json")
            .filter(|name| is_name(name) && is_in_its_stripe(entry, name))
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
                    self.remove_entry(&name_of(owner), name)?;
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

    /// Prunes the index `owner_name` found at `entry`, and removes it if it
    /// is empty and has been for [`IDLE_INDEX`]: a write then makes it
    /// again, and a write that has just made it does not lose it (see
    /// `add_entry`).
    fn sweep_index(&self, entry: &DirEntry, owner_name: &str, now: SystemTime) -> io::Result<()> {
        if !(is_name(owner_name) && is_in_its_stripe(entry, owner_name)) {
            tracing::warn!(path = %entry.path().display(), "skipping a file that is no owner index");
            return Ok(());
        }
        for name in self.index_entries(owner_name)? {
            // A look without the lock first: most entries are right.
            match self.read_head(&name)? {
                Found::Here(head) if head.is_live(now) && head.is_indexed_under(owner_name) => {}
                _ => self.prune(owner_name, &name)?,
            }
        }
        let changed = entry.metadata()?.modified()?;
        if now
            .duration_since(changed)
            .is_ok_and(|idle| idle >= IDLE_INDEX)
        {
            // Fails if not empty: fine.
            if let Err(error) = fs::remove_dir(entry.path()) {
                if error.kind() != io::ErrorKind::DirectoryNotEmpty {
                    return Err(at(&entry.path())(error));
                }
            }
        }
        Ok(())
    }
}

/// Whether the entry named `name` is in the shard directory of its stripe.
fn is_in_its_stripe(entry: &DirEntry, name: &str) -> bool {
    let path = entry.path();
    let shard = path.parent().and_then(Path::file_name);
    shard.is_some_and(|shard| shard == stripe(name))
}

/// Calls `visit` with every entry two levels below `dir` (what the shard
/// directories hold) and its name; logs and skips what fails.
pub(super) fn for_each_file(
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
