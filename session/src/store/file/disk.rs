//! Files, directories, locks and names: the store's blocking I/O helpers.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write as _};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use super::Inner;

impl Inner {
    /// The directory of the session `name` and its file's name in it.
    pub(super) fn session_path(&self, name: &str) -> (PathBuf, String) {
        (self.sessions.join(stripe(name)), format!("{name}.json"))
    }

    /// Takes the lock of the session `name`'s stripe.
    pub(super) fn lock_session(&self, name: &str) -> io::Result<Lock> {
        self.lock(&format!("session-{}", stripe(name)), Hold::Exclusive)
    }

    /// Takes the lock that [`delete_owned`](Inner::delete_owned) holds
    /// exclusively and a move of a session bound to `owner` holds shared.
    pub(super) fn lock_owner(&self, owner: &str, hold: Hold) -> io::Result<Lock> {
        self.lock(&format!("owner-{}", stripe(&name_of(owner))), hold)
    }

    /// Takes the lock file `locks/{name}`, waiting for whoever holds it.
    pub(super) fn lock(&self, name: &str, hold: Hold) -> io::Result<Lock> {
        let file = self.open_lock_file(name)?;
        match hold {
            Hold::Exclusive => file.lock(),
            Hold::Shared => file.lock_shared(),
        }
        .map_err(at(&self.locks.join(name)))?;
        Ok(Lock(file))
    }

    /// Opens (creating it if need be) the lock file `locks/{name}`. Every
    /// call opens its own file description, so its locks exclude every other
    /// call's, in this process and others.
    pub(super) fn open_lock_file(&self, name: &str) -> io::Result<File> {
        let path = self.locks.join(name);
        let open = || {
            private(OpenOptions::new().read(true).write(true).create(true))
                .truncate(false)
                .open(&path)
        };
        match open() {
            Err(error) if error.kind() == io::ErrorKind::NotFound => {
                make_dirs(&self.locks, false)?;
                open()
            }
            opened => opened,
        }
        .map_err(at(&path))
    }
}

/// How a lock is held.
#[derive(Debug, Clone, Copy)]
pub(super) enum Hold {
    /// By one holder.
    Exclusive,
    /// By any number of holders, while nobody holds it exclusively.
    Shared,
}

/// A held lock, released when dropped (closing the file would release it
/// too).
#[derive(Debug)]
pub(super) struct Lock(File);

impl Drop for Lock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Refuses `dir` unless this process's user owns it and only that user may
/// write in it: whoever else can write in it can plant or replace sessions.
#[cfg(unix)]
pub(super) fn refuse_unless_private(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::MetadataExt as _;

    use super::UnsafeDirectory;

    let meta = fs::metadata(dir).map_err(at(dir))?;
    let user = process_uid()?;
    let refusal = if meta.uid() != user {
        UnsafeDirectory::NotOwned {
            path: dir.to_owned(),
            owner: meta.uid(),
            user,
        }
    } else if meta.mode() & 0o022 != 0 {
        UnsafeDirectory::WritableByOthers {
            path: dir.to_owned(),
            mode: meta.mode() & 0o7777,
        }
    } else {
        return Ok(());
    };
    Err(io::Error::new(io::ErrorKind::PermissionDenied, refusal))
}

/// Windows has no such modes: its directories' ACLs are left to the admin.
#[cfg(not(unix))]
pub(super) fn refuse_unless_private(_: &Path) -> io::Result<()> {
    Ok(())
}

/// The user id this process creates files as. `std` has no `geteuid`, but a
/// new pipe belongs to that user.
#[cfg(unix)]
fn process_uid() -> io::Result<u32> {
    use std::os::fd::OwnedFd;
    use std::os::unix::fs::MetadataExt as _;

    let (reader, _writer) = io::pipe()?;
    Ok(File::from(OwnedFd::from(reader)).metadata()?.uid())
}

/// Writes `bytes` to `dir/file` atomically: a temp file next to it, written,
/// `fsync`ed and renamed over it.
pub(super) fn write_file(dir: &Path, file: &str, bytes: &[u8], durable: bool) -> io::Result<()> {
    let temp = dir.join(format!(".{file}.{:016x}.tmp", random()?));
    let create = || private(OpenOptions::new().write(true).create_new(true)).open(&temp);
    let mut out = match create() {
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            make_dirs(dir, durable)?;
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
pub(super) fn remove_file(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(error) if error.kind() != io::ErrorKind::NotFound => Err(at(path)(error)),
        _ => Ok(()),
    }
}

/// Makes a rename or removal in `dir` durable.
#[cfg(unix)]
pub(super) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)
        .and_then(|dir| dir.sync_all())
        .map_err(at(dir))
}

/// Directories cannot be opened for syncing here.
#[cfg(not(unix))]
pub(super) fn sync_dir(_: &Path) -> io::Result<()> {
    Ok(())
}

/// Creates `dir` and its parents, readable by this user only. With
/// `durable`, also syncs the two directories above it, so that the new ones
/// survive a power loss (the store creates at most two levels at a time: a
/// stripe's and an owner index's).
pub(super) fn make_dirs(dir: &Path, durable: bool) -> io::Result<()> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir).map_err(at(dir))?;
    if durable {
        for parent in dir.ancestors().skip(1).take(2) {
            sync_dir(parent)?;
        }
    }
    Ok(())
}

/// Files the store creates are readable by this user only.
pub(super) fn private(options: &mut OpenOptions) -> &mut OpenOptions {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    options
}

/// Adds the path to an error, keeping its kind.
pub(super) fn at(path: &Path) -> impl FnOnce(io::Error) -> io::Error + '_ {
    move |error| io::Error::new(error.kind(), format!("{}: {error}", path.display()))
}

fn random() -> io::Result<u64> {
    getrandom::u64().map_err(io::Error::other)
}

/// What a file held.
#[derive(Debug)]
pub(super) enum Found<T> {
    Missing,
    /// Empty, unparsable, or not the file it claims to be.
    Garbage,
    Here(T),
}

impl<T> Found<T> {
    pub(super) fn and_then<U>(self, decode: impl FnOnce(T) -> Option<U>) -> Found<U> {
        match self {
            Self::Missing => Found::Missing,
            Self::Garbage => Found::Garbage,
            Self::Here(value) => decode(value).map_or(Found::Garbage, Found::Here),
        }
    }
}

pub(super) fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<Found<T>> {
    match fs::read(path) {
        Ok(bytes) => Ok(serde_json::from_slice(&bytes).map_or(Found::Garbage, Found::Here)),
        Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(Found::Missing),
        Err(error) => Err(at(path)(error)),
    }
}

/// The lowercase hex SHA-256 of `text`: a session file's name for a key, an
/// index's for an owner.
pub(super) fn name_of(text: &str) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    Sha256::digest(text.as_bytes())
        .iter()
        .flat_map(|byte| [byte >> 4, byte & 0xf])
        .map(|digit| char::from(DIGITS[usize::from(digit)]))
        .collect()
}

/// Whether `name` can be a name [`name_of`] made. Names read from the disk
/// are checked with it before they make a path.
pub(super) fn is_name(name: &str) -> bool {
    name.len() == 64 && name.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// The shard and lock stripe of a name: its first two hex digits.
pub(super) fn stripe(name: &str) -> &str {
    debug_assert!(is_name(name), "not a name: {name:?}");
    &name[..2]
}

pub(super) fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, duration_millis)
}

pub(super) fn duration_millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

pub(super) fn from_millis(millis: u64) -> SystemTime {
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
        for bad in ["", "ab", "../x", &"g".repeat(64), &"A".repeat(64)] {
            assert!(!is_name(bad), "{bad}");
        }
    }
}
