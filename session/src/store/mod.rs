//! Where sessions live between requests.
//!
//! A store keeps, per [`StoreKey`], a [`Record`]: the encoded fields, an
//! expiry, and the session's own max-age override. Commits arrive as a
//! [`ChangeSet`] holding only the fields that changed, which the store merges
//! into the record it has; two requests that change different fields of one
//! session therefore both survive.

#[cfg(feature = "memory")]
mod memory;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

#[cfg(feature = "memory")]
pub use memory::MemoryStore;

use crate::{Error, StoreKey};

/// Encoded field values by stored key.
/// Keys are shared strings so that copying a record (a store merging into a
/// snapshot a request still reads) copies no text.
pub type Fields = HashMap<Arc<str>, Bytes>;

/// A session as a store keeps it. Cheap to clone: the fields are shared, so a
/// store can hand out a snapshot without copying them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Encoded field values by stored key.
    pub fields: Arc<Fields>,
    /// When the session expires; a store never returns an expired record.
    pub expires_at: SystemTime,
    /// The session's own lifetime, set by `Session::set_max_age`, if any.
    pub max_age: Option<Duration>,
}

impl Record {
    /// Whether the record has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at <= now
    }

    /// Merges `changes` into this record, as every store must.
    pub fn apply(&mut self, changes: &ChangeSet) {
        // Copies the fields only if a reader still holds this snapshot.
        let fields = Arc::make_mut(&mut self.fields);
        for (key, value) in &changes.set {
            fields.insert(Arc::from(*key), value.clone());
        }
        for key in &changes.remove {
            fields.remove(*key);
        }
        self.expires_at = changes.expires_at;
        if let MaxAgeUpdate::Set(max_age) = changes.max_age {
            self.max_age = max_age;
        }
    }

    /// The record a commit creates when the store has none under its key.
    pub fn from_changes(changes: &ChangeSet) -> Self {
        let mut record = Self {
            fields: Arc::new(HashMap::with_capacity(changes.set.len())),
            expires_at: changes.expires_at,
            max_age: None,
        };
        record.apply(changes);
        record
    }
}

/// What one commit changes: only the fields that differ from what was loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// Fields to insert or overwrite, by stored key.
    pub set: Vec<(&'static str, Bytes)>,
    /// Fields to remove (consumed flash values, keys left behind by `alias`).
    pub remove: Vec<&'static str>,
    /// The session's new expiry.
    pub expires_at: SystemTime,
    /// Whether the session's own max-age override changes.
    pub max_age: MaxAgeUpdate,
}

impl ChangeSet {
    /// Whether the commit changes no field.
    pub fn has_no_field_changes(&self) -> bool {
        self.set.is_empty() && self.remove.is_empty()
    }
}

/// How a commit changes a session's max-age override.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxAgeUpdate {
    /// Keep what the store has.
    Keep,
    /// Replace it (`None` returns the session to the configured max-age).
    Set(Option<Duration>),
}

/// A place to keep sessions: memory, files, Redis, SQL…
///
/// Every method takes the [`StoreKey`] (a hash of the session id, never the
/// id itself). Implementations must merge commits field by field, never
/// replace the whole record, and must not return expired records.
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Loads a session, or `None` when there is none or it has expired.
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, Error>;

    /// Merges `changes` into the session, creating it if needed.
    async fn commit(&self, key: &StoreKey, changes: &ChangeSet) -> Result<(), Error>;

    /// Moves the session's expiry without touching its data; a session that
    /// no longer exists stays gone.
    async fn touch(&self, key: &StoreKey, expires_at: SystemTime) -> Result<(), Error>;

    /// Deletes the session; deleting a missing session is not an error.
    async fn delete(&self, key: &StoreKey) -> Result<(), Error>;

    /// Moves the session's record from `from` to `to` (for `regenerate`).
    async fn change_key(&self, from: &StoreKey, to: &StoreKey) -> Result<(), Error>;

    /// Deletes every expired session and returns how many it deleted.
    async fn delete_expired(&self) -> Result<u64, Error>;
}

/// Runs `store.delete_expired()` every `period` on the current tokio runtime
/// until the returned handle is aborted. Failures are logged and retried at
/// the next tick.
pub fn spawn_cleanup(
    store: Arc<dyn SessionStore>,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            match store.delete_expired().await {
                Ok(0) => {}
                Ok(deleted) => tracing::debug!(deleted, "deleted expired sessions"),
                Err(error) => tracing::warn!(%error, "session clean-up failed"),
            }
        }
    })
}
