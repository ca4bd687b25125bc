//! Owner indexes: `owned/{stripe}/{owner name}/`, holding one empty file per
//! session bound to the owner, named like the session's file. Adding or
//! removing an entry is one file creation or removal, under the session's
//! lock; no lock guards the index as a whole.

use std::fs::{self, OpenOptions};
use std::io;
use std::path::PathBuf;
use std::time::SystemTime;

use super::disk::{
    at, is_name, make_dirs, name_of, private, read_json, remove_file, stripe, sync_dir, Found,
};
use super::format::LegacyIndex;
use super::sweep::for_each_file;
use super::Inner;

impl Inner {
    /// The index directory of the owner named `owner_name`.
    pub(super) fn index_dir(&self, owner_name: &str) -> PathBuf {
        self.owned.join(stripe(owner_name)).join(owner_name)
    }

    /// Adds the session `name` to the index of the owner named `owner_name`.
    pub(super) fn add_entry(&self, owner_name: &str, name: &str, durable: bool) -> io::Result<()> {
        let dir = self.index_dir(owner_name);
        let path = dir.join(name);
        let create = || {
            private(OpenOptions::new().write(true).create(true))
                .truncate(false)
                .open(&path)
        };
        // The owner's first entry makes the directory; so does one that
        // finds a sweep has just removed it, idle. A sweep leaves the new
        // directory alone for an hour.
        match create() {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                make_dirs(&dir, durable)?;
                create()
            }
            created => created,
        }
        .map_err(at(&path))?;
        if durable {
            sync_dir(&dir)?;
        }
        Ok(())
    }

    /// Removes the session `name` from the index of the owner named
    /// `owner_name`, if it is there. Never synced: an entry a power loss
    /// brings back names a session that is gone or not the owner's, and is
    /// pruned like any such entry.
    pub(super) fn remove_entry(&self, owner_name: &str, name: &str) -> io::Result<()> {
        remove_file(&self.index_dir(owner_name).join(name))
    }

    /// The names of the sessions in the index of the owner named
    /// `owner_name`. Files whose names cannot be a session's are skipped and
    /// reported, never made into paths.
    pub(super) fn index_entries(&self, owner_name: &str) -> io::Result<Vec<String>> {
        let dir = self.index_dir(owner_name);
        let entries = match fs::read_dir(&dir) {
            Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            entries => entries.map_err(at(&dir))?,
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(at(&dir))?;
            match entry.file_name().to_str() {
                Some(name) if is_name(name) => names.push(name.to_owned()),
                _ => tracing::warn!(
                    path = %entry.path().display(),
                    "skipping a file in an owner index that names no session"
                ),
            }
        }
        Ok(names)
    }

    /// Removes the entry of `name` from the index of the owner named
    /// `owner_name` unless the session is live and bound to that owner. Takes
    /// the session's lock: a write may have added the entry and not yet
    /// written the session.
    pub(super) fn prune(&self, owner_name: &str, name: &str) -> io::Result<()> {
        let _lock = self.lock_session(name)?;
        match self.read_head(name)? {
            Found::Here(head)
                if head.is_live(SystemTime::now()) && head.is_indexed_under(owner_name) =>
            {
                Ok(())
            }
            _ => self.remove_entry(owner_name, name),
        }
    }

    /// Moves the owner indexes of the first layout (`owners/{stripe}/{owner
    /// name}.json`, each a JSON list of session names) into this one's, then
    /// removes them. Entries need no lock: one too many is pruned later.
    pub(super) fn move_legacy_indexes(&self) -> io::Result<()> {
        let legacy = self.root.join("owners");
        if !legacy.is_dir() {
            return Ok(());
        }
        for_each_file(&legacy, |entry, _| {
            let path = entry.path();
            if let Found::Here(index) = read_json::<LegacyIndex>(&path)? {
                let owner_name = name_of(&index.owner);
                for name in &index.sessions {
                    if is_name(name) {
                        self.add_entry(&owner_name, name, false)?;
                    } else {
                        tracing::warn!(
                            path = %path.display(),
                            name,
                            "skipping an owner index entry that names no session"
                        );
                    }
                }
            }
            remove_file(&path)
        })?;
        // Removes what is now empty; anything else stays, for the next store
        // opened here to look at again.
        if let Ok(stripes) = fs::read_dir(&legacy) {
            for stripe in stripes.flatten() {
                let _ = fs::remove_dir(stripe.path());
            }
        }
        let _ = fs::remove_dir(&legacy);
        Ok(())
    }
}
