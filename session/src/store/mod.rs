//! Where sessions live between requests: the store contract.
//!
//! A store keeps, per [`StoreKey`], one session: its encoded fields, its
//! expiry, its own max-age override and its owner. The lifecycle never
//! writes a whole session; it sends a [`ChangeSet`] holding only what a
//! request changed, and the store merges it into what it has, so two requests
//! that change different fields of one session both survive.
//!
//! # The contract
//!
//! Every write carries a precondition, and each method is meant to be one
//! atomic operation of the backend (a locked map entry, a locked file, a Lua
//! script, one SQL statement or transaction):
//!
//! | method | precondition | otherwise |
//! |---|---|---|
//! | [`create`](SessionStore::create) | no live session under the key | [`Created::KeyTaken`]: the lifecycle draws another id |
//! | [`update`](SessionStore::update) | a live session under the key | [`Updated::Gone`]: the request's changes are dropped |
//! | [`rekey`](SessionStore::rekey) | a live session under `from`, none under `to` | [`Moved::Gone`] or [`Moved::KeyTaken`] |
//!
//! So a session that was destroyed, regenerated away or expired is never
//! brought back by a request that loaded it before, and a new session never
//! joins a stranger's record under a colliding id.
//!
//! # Expiry
//!
//! Lifetimes travel as durations and the store applies them with its own
//! clock, so app servers whose clocks disagree cannot shorten a session. A
//! write extends a session to `now + max-age`, where the max-age is the
//! session's own override or else [`ChangeSet::default_max_age`], but never
//! moves an expiry earlier, unless the write changes the override itself
//! ([`ChangeSet::max_age`] is [`Update::Set`]): a request that loaded the
//! session before "remember me" was set cannot cut it back to a day.
//! [`StoredSession`] implements these rules for stores that hold sessions as
//! values in the process.

#[cfg(feature = "conformance")]
pub mod conformance;
mod fields;
#[cfg(feature = "file")]
pub mod file;
#[cfg(feature = "memory")]
mod memory;
mod open;
#[cfg(feature = "redis")]
pub mod redis;
#[cfg(any(feature = "sqlite", feature = "postgres", feature = "mysql"))]
pub mod sql;

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use bytes::Bytes;

pub(crate) use fields::no_fields;
pub use fields::Fields;
#[cfg(feature = "memory")]
pub use memory::{MemoryStore, MemoryStoreFull};
pub use open::open;

use crate::StoreKey;

/// The longest a session may live: browsers cap a cookie's `Max-Age` at 400
/// days (RFC 6265bis), so a longer session would outlive its cookie.
pub const MAX_LIFETIME: Duration = Duration::from_secs(400 * 24 * 60 * 60);

/// What a store's backend reports when it fails. The lifecycle wraps it in
/// [`Error::Store`](crate::Error::Store), naming the operation it called.
pub type BoxError = Box<dyn StdError + Send + Sync>;

/// A session as a store hands it out: cheap to clone, since the fields are
/// shared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Encoded field values by stored key.
    pub fields: Arc<Fields>,
    /// How long the session has left, by the store's clock.
    pub ttl: Duration,
    /// The session's own max-age, set by `Session::set_max_age`, if any.
    pub max_age: Option<Duration>,
    /// The user the session is bound to, set by `Session::set_owner`, if any.
    pub owner: Option<Arc<str>>,
}

/// A change to one of a session's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Update<T> {
    /// Keep what the store has.
    Keep,
    /// Replace it.
    Set(T),
}

impl<T: Clone> Update<T> {
    /// The value after the update, given the current one.
    pub fn applied_to(&self, current: T) -> T {
        match self {
            Self::Keep => current,
            Self::Set(value) => value.clone(),
        }
    }
}

/// What one commit changes: only what differs from what the request loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSet {
    /// Fields to insert or overwrite, by stored key.
    pub set: Vec<(&'static str, Bytes)>,
    /// Fields to remove (consumed flash values, keys left behind by `alias`,
    /// values that no longer decode).
    pub remove: Vec<&'static str>,
    /// The session's own max-age override (`Set(None)` returns it to
    /// [`default_max_age`](Self::default_max_age)). Only a `Set` may move the
    /// expiry earlier.
    pub max_age: Update<Option<Duration>>,
    /// The configured lifetime, for sessions without an override.
    pub default_max_age: Duration,
    /// The user the session is bound to.
    pub owner: Update<Option<Arc<str>>>,
    /// The override the request last saw (loaded, or reported by its
    /// previous commit), while [`max_age`](Self::max_age) is `Keep`. A hint:
    /// a store that sets the expiry without reading the override first (the
    /// Redis store) extends by it, then checks it against the stored one and
    /// corrects the expiry if another request changed the override
    /// meanwhile. Stores that read the override as they write ignore it.
    pub seen_max_age: Option<Duration>,
}

impl ChangeSet {
    /// A change set that changes nothing but extends the session.
    pub fn touch(default_max_age: Duration) -> Self {
        Self {
            set: Vec::new(),
            remove: Vec::new(),
            max_age: Update::Keep,
            default_max_age,
            owner: Update::Keep,
            seen_max_age: None,
        }
    }

    /// Whether the commit changes no field and no setting: it only extends.
    pub fn is_touch(&self) -> bool {
        self.set.is_empty()
            && self.remove.is_empty()
            && self.max_age == Update::Keep
            && self.owner == Update::Keep
    }

    /// The session's lifetime after this commit, given its current override.
    pub fn max_age_after(&self, current: Option<Duration>) -> Duration {
        self.max_age
            .applied_to(current)
            .unwrap_or(self.default_max_age)
            .min(MAX_LIFETIME)
    }

    /// The expiry after this commit at `now`, given the current one (`None`
    /// for a session being created) and the current override.
    pub fn expires_at_after(
        &self,
        now: SystemTime,
        current: Option<SystemTime>,
        current_max_age: Option<Duration>,
    ) -> SystemTime {
        let extended = later(now, self.max_age_after(current_max_age));
        match (current, &self.max_age) {
            (Some(current), Update::Keep) => extended.max(current),
            _ => extended,
        }
    }
}

/// `now + lifetime`, saturating instead of overflowing.
pub(crate) fn later(now: SystemTime, lifetime: Duration) -> SystemTime {
    now.checked_add(lifetime.min(MAX_LIFETIME)).unwrap_or(now)
}

/// A session's lifetime as a store left it after a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Expiry {
    /// How long the session has left, by the store's clock.
    pub ttl: Duration,
    /// The session's own max-age override, if any.
    pub max_age: Option<Duration>,
}

/// The outcome of [`SessionStore::create`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// The session was stored.
    Written(Expiry),
    /// A live session already holds the key; nothing was written.
    KeyTaken,
}

/// The outcome of [`SessionStore::update`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Updated {
    /// The changes were merged.
    Written(Expiry),
    /// No live session holds the key (destroyed, moved, expired or cleaned
    /// up); nothing was written.
    Gone,
}

/// The outcome of [`SessionStore::rekey`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Moved {
    /// The session now lives under the new key only, with the changes merged.
    Written(Expiry),
    /// A live session already holds the new key; nothing was written.
    KeyTaken,
    /// No live session holds the old key; nothing was written.
    Gone,
}

/// One live session of an owner, as [`SessionStore::list_owned`] reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSession {
    /// The session's key.
    pub key: StoreKey,
    /// When the session was first stored.
    pub created_at: SystemTime,
    /// When it was last written.
    pub updated_at: SystemTime,
    /// When it expires.
    pub expires_at: SystemTime,
}

/// A store as a manager holds it: shared, behind one pointer. Every
/// [`SessionStore`] is one, and so is a store already shared: an `Arc` of
/// it, or the `Arc<dyn SessionStore>` that [`open`] returns. So
/// `SessionLayer::new(store::open(&url).await?, config)` works as
/// `SessionLayer::new(MemoryStore::new(), config)` does.
pub trait IntoSharedStore {
    /// The store, shared.
    fn into_shared(self) -> Arc<dyn SessionStore>;
}

impl<S: SessionStore> IntoSharedStore for S {
    fn into_shared(self) -> Arc<dyn SessionStore> {
        Arc::new(self)
    }
}

impl<S: SessionStore> IntoSharedStore for Arc<S> {
    fn into_shared(self) -> Arc<dyn SessionStore> {
        self
    }
}

impl IntoSharedStore for Arc<dyn SessionStore> {
    fn into_shared(self) -> Arc<dyn SessionStore> {
        self
    }
}

/// A place to keep sessions: memory, files, Redis, SQL…
///
/// Every method takes [`StoreKey`]s (a hash of the session id, never the id
/// itself). See the [module docs](self) for the preconditions each write
/// carries and the expiry rules. Stores never return expired sessions, and
/// report failures of their backend as a [`BoxError`].
#[async_trait]
pub trait SessionStore: Send + Sync + std::fmt::Debug + 'static {
    /// Loads a live session, or `None` when there is none or it has expired.
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError>;

    /// Stores a new session made of `changes`, unless a live session already
    /// holds `key`. An expired one there is replaced, its fields forgotten.
    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError>;

    /// Merges `changes` into the live session under `key` and extends it; a
    /// change set with no changes ([`ChangeSet::touch`]) only extends it.
    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError>;

    /// Moves the live session under `from` to `to` and merges `changes`, in
    /// one step: afterwards the session is under `to` only, with its owner.
    ///
    /// `whole` is the session as the request sees it, changes included, for
    /// a store that cannot move a record atomically (keys on different
    /// nodes) and cannot read the record back itself: such a store writes
    /// `whole` under `to` first (unless `to` is taken), then removes `from`,
    /// so that a failure at any point leaves the old session intact. Stores
    /// that move atomically ignore it. The Redis store reads only its owner,
    /// to list `to` in that owner's index before the move (and checks it
    /// against the stored one); on a Cluster it copies what it holds and
    /// removes `from` only if it did not change meanwhile.
    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        whole: &Record,
    ) -> Result<Moved, BoxError>;

    /// Deletes the session; deleting a missing session is not an error.
    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError>;

    /// The live sessions bound to `owner`.
    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError>;

    /// Deletes every session bound to `owner` except the one under `keep`,
    /// and returns how many it deleted.
    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError>;
}

/// A store whose expired sessions stay until someone deletes them (a server
/// that expires keys itself, like Redis, needs none of this).
#[async_trait]
pub trait ExpiredCleanup: SessionStore {
    /// Deletes every expired session and returns how many it deleted.
    async fn delete_expired(&self) -> Result<u64, BoxError>;
}

/// Runs `store.delete_expired()` every `period` on the current tokio runtime,
/// logging the counts, until the store is dropped or the returned handle is
/// aborted. The task holds only a weak reference, so it never keeps a store
/// (and its connections) alive. Failures are logged and retried at the next
/// tick.
pub fn spawn_cleanup<S: ExpiredCleanup>(
    store: &Arc<S>,
    period: Duration,
) -> tokio::task::JoinHandle<()> {
    let store = Arc::downgrade(store);
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let Some(store) = store.upgrade() else { return };
            match store.delete_expired().await {
                Ok(0) => {}
                Ok(deleted) => tracing::info!(deleted, "deleted expired sessions"),
                Err(error) => tracing::warn!(%error, "session clean-up failed"),
            }
        }
    })
}

/// A session as a store that keeps whole values (in memory, in a file)
/// holds it, with absolute times, and the contract's merge and expiry rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredSession {
    /// Encoded field values by stored key.
    pub fields: Arc<Fields>,
    /// When the session expires.
    pub expires_at: SystemTime,
    /// The session's own max-age override.
    pub max_age: Option<Duration>,
    /// The user the session is bound to.
    pub owner: Option<Arc<str>>,
    /// When the session was first stored.
    pub created_at: SystemTime,
    /// When it was last written.
    pub updated_at: SystemTime,
}

impl StoredSession {
    /// The session `changes` create at `now`.
    pub fn create(changes: &ChangeSet, now: SystemTime) -> Self {
        let mut session = Self {
            fields: Arc::new(Fields::with_capacity(changes.set.len())),
            expires_at: now,
            max_age: None,
            owner: None,
            created_at: now,
            updated_at: now,
        };
        session.merge(changes, now, None);
        session
    }

    /// Merges `changes` at `now`, extending the session by the contract's
    /// rules.
    pub fn apply(&mut self, changes: &ChangeSet, now: SystemTime) {
        self.merge(changes, now, Some(self.expires_at));
    }

    fn merge(&mut self, changes: &ChangeSet, now: SystemTime, current: Option<SystemTime>) {
        if !(changes.set.is_empty() && changes.remove.is_empty()) {
            // Copies the fields only if a reader still holds this snapshot.
            Arc::make_mut(&mut self.fields).merge(&changes.set, &changes.remove);
        }
        self.expires_at = changes.expires_at_after(now, current, self.max_age);
        self.max_age = changes.max_age.applied_to(self.max_age);
        self.owner = changes.owner.applied_to(self.owner.take());
        self.updated_at = now;
    }

    /// Whether the session is still live at `now`.
    pub fn is_live(&self, now: SystemTime) -> bool {
        self.expires_at > now
    }

    /// How long the session has left at `now`.
    pub fn ttl(&self, now: SystemTime) -> Duration {
        self.expires_at.duration_since(now).unwrap_or_default()
    }

    /// The session as [`SessionStore::load`] hands it out.
    pub fn record(&self, now: SystemTime) -> Record {
        Record {
            fields: Arc::clone(&self.fields),
            ttl: self.ttl(now),
            max_age: self.max_age,
            owner: self.owner.clone(),
        }
    }

    /// The session's lifetime as a write reports it.
    pub fn expiry(&self, now: SystemTime) -> Expiry {
        Expiry {
            ttl: self.ttl(now),
            max_age: self.max_age,
        }
    }

    /// The session as [`SessionStore::list_owned`] reports it.
    pub fn owned(&self, key: StoreKey) -> OwnedSession {
        OwnedSession {
            key,
            created_at: self.created_at,
            updated_at: self.updated_at,
            expires_at: self.expires_at,
        }
    }
}
