//! The store's operations, on a blocking thread.

use std::collections::BTreeSet;
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use super::disk::{name_of, remove_file, stripe, sync_dir, write_file, Found, Hold, Lock};
use super::format::{encode_session, normalized};
use super::{Inner, Ticket};
use crate::store::{ChangeSet, Created, Moved, OwnedSession, StoredSession, Updated};
use crate::StoreKey;

/// Threads a revocation shares its owner's sessions among.
const REVOKING_THREADS: usize = 8;

impl Inner {
    pub(super) fn create(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        durable: bool,
        ticket: &Ticket,
    ) -> io::Result<Created> {
        let name = name_of(key.as_str());
        let _lock = self.lock_session(&name)?;
        ticket.commit()?;
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

    pub(super) fn update(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
        durable: bool,
        ticket: &Ticket,
    ) -> io::Result<Updated> {
        let name = name_of(key.as_str());
        let _lock = self.lock_session(&name)?;
        ticket.commit()?;
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

    pub(super) fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        durable: bool,
        ticket: &Ticket,
    ) -> io::Result<Moved> {
        let (source, target) = (name_of(from.as_str()), name_of(to.as_str()));
        loop {
            // A session bound to an owner moves holding its owner's lock
            // shared, so not while the owner's sessions are being revoked
            // (see `delete_owned`). The owner is read before the locks, so
            // read again under them: bound to another owner meanwhile, the
            // move starts over with that one's lock.
            let owner = self.read_head(&source)?.owner();
            let _owner_lock = match &owner {
                Some(owner) => Some(self.lock_owner(owner, Hold::Shared)?),
                None => None,
            };
            let _session_locks = self.lock_both(&source, &target)?;
            let now = SystemTime::now();
            let replaced = self.read_session(&target)?;
            if replaced.is_live(now) {
                return Ok(Moved::KeyTaken);
            }
            let Some(mut session) = self.read_session(&source)?.live(now) else {
                return Ok(Moved::Gone);
            };
            if session.owner.as_deref() != owner.as_deref() {
                continue;
            }
            ticket.commit()?;
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
            if let Some(owner) = owner {
                self.remove_entry(&name_of(&owner), &source)?;
            }
            return Ok(Moved::Written(session.expiry(now)));
        }
    }

    /// Locks the stripes of two sessions, in order (one if they share it):
    /// a move is one step for every process.
    fn lock_both(&self, source: &str, target: &str) -> io::Result<(Lock, Option<Lock>)> {
        let (first, second) = if stripe(source) <= stripe(target) {
            (source, target)
        } else {
            (target, source)
        };
        let first_lock = self.lock_session(first)?;
        let second_lock = if stripe(first) == stripe(second) {
            None
        } else {
            Some(self.lock_session(second)?)
        };
        Ok((first_lock, second_lock))
    }

    pub(super) fn delete(&self, key: &StoreKey, durable: bool, ticket: &Ticket) -> io::Result<()> {
        let name = name_of(key.as_str());
        let _lock = self.lock_session(&name)?;
        ticket.commit()?;
        let old = self.read_head(&name)?;
        if matches!(old, Found::Missing) {
            return Ok(());
        }
        self.remove_session_file(&name, durable)?;
        if let Some(owner) = old.owner() {
            self.remove_entry(&name_of(&owner), &name)?;
        }
        Ok(())
    }

    pub(super) fn list_owned(&self, owner: &str) -> io::Result<Vec<OwnedSession>> {
        let now = SystemTime::now();
        let owner_name = name_of(owner);
        let mut listed = Vec::new();
        for name in self.index_entries(&owner_name)? {
            match self.read_head(&name)? {
                Found::Here(head) if head.is_live(now) && head.is_owned_by(owner) => {
                    listed.push(head.owned());
                }
                _ => self.prune(&owner_name, &name)?,
            }
        }
        Ok(listed)
    }

    /// Deletes the owner's sessions in one pass over its index, holding the
    /// owner's lock exclusively. That pass cannot miss one: a session bound
    /// to the owner is in the index from before it is written until after
    /// it is gone or unbound (see `put`), so only a move could take it to a
    /// key the pass does not see, and moves of the owner's sessions wait for
    /// the owner's lock (see `rekey`). Each entry is handled under its
    /// session's lock, so never while a write has added it and not yet
    /// written the session.
    pub(super) fn delete_owned(
        &self,
        owner: &str,
        keep: Option<&StoreKey>,
        durable: bool,
        ticket: &Ticket,
    ) -> io::Result<u64> {
        let _owner_lock = self.lock_owner(owner, Hold::Exclusive)?;
        ticket.commit()?;
        let keep = keep.map(|key| name_of(key.as_str()));
        let owner_name = name_of(owner);
        let mut names = self.index_entries(&owner_name)?;
        names.retain(|name| keep.as_ref() != Some(name));
        // Sorted, the names of one lock stripe come together: each stripe is
        // locked once, however many of the owner's sessions it holds, and
        // the stripes are shared out among a few threads, since each
        // session costs a read and two unlinks.
        names.sort_unstable();
        let stripes: Vec<&[String]> = names.chunk_by(|a, b| stripe(a) == stripe(b)).collect();
        let threads = stripes.len().clamp(1, REVOKING_THREADS);
        let passes = std::thread::scope(|scope| {
            let passes: Vec<_> = (0..threads)
                .map(|first| {
                    let mine = stripes.iter().skip(first).step_by(threads);
                    scope.spawn(|| self.delete_stripes(owner, &owner_name, mine))
                })
                .collect();
            passes
                .into_iter()
                .map(|pass| {
                    pass.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect::<io::Result<Vec<_>>>()
        })?;
        let mut deleted = 0;
        // Synced once each at the end, not after every removal.
        let mut changed_dirs = BTreeSet::new();
        for (pass_deleted, pass_dirs) in passes {
            deleted += pass_deleted;
            changed_dirs.extend(pass_dirs);
        }
        if durable {
            for dir in &changed_dirs {
                sync_dir(dir)?;
            }
        }
        Ok(deleted)
    }

    /// Deletes the sessions of `owner` among `stripes` of index entries, each
    /// stripe under its lock; says how many were live and which directories
    /// changed.
    fn delete_stripes<'a>(
        &self,
        owner: &str,
        owner_name: &str,
        stripes: impl Iterator<Item = &'a &'a [String]>,
    ) -> io::Result<(u64, BTreeSet<PathBuf>)> {
        let (mut deleted, mut changed_dirs) = (0, BTreeSet::new());
        for same_stripe in stripes {
            let _lock = self.lock_session(&same_stripe[0])?;
            for name in same_stripe.iter() {
                if let Found::Here(head) = self.read_head(name)? {
                    if head.is_owned_by(owner) {
                        let (dir, file) = self.session_path(name);
                        remove_file(&dir.join(file))?;
                        changed_dirs.insert(dir);
                        deleted += u64::from(head.is_live(SystemTime::now()));
                    }
                }
                // Deleted now, or not (or no longer) the owner's.
                self.remove_entry(owner_name, name)?;
            }
        }
        Ok((deleted, changed_dirs))
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
                self.add_entry(&name_of(after), name, durable)?;
            }
        }
        let bytes = encode_session(key, session)?;
        let (dir, file) = self.session_path(name);
        write_file(&dir, &file, &bytes, durable)?;
        if let Some(before) = before {
            if Some(before) != after {
                self.remove_entry(&name_of(before), name)?;
            }
        }
        Ok(())
    }

    pub(super) fn remove_session_file(&self, name: &str, durable: bool) -> io::Result<()> {
        let (dir, file) = self.session_path(name);
        remove_file(&dir.join(file))?;
        if durable {
            sync_dir(&dir)?;
        }
        Ok(())
    }
}
