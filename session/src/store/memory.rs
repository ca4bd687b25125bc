use std::collections::hash_map::Entry;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;

use super::{
    BoxError, ChangeSet, Created, ExpiredCleanup, Moved, OwnedSession, Record, SessionStore,
    StoredSession, Updated,
};
use crate::StoreKey;

/// How often writes sweep expired sessions out by default.
const SWEEP_PERIOD: Duration = Duration::from_secs(60);
/// A full store evicts this share of its cap at once, so that a flood of
/// new sessions pays for one scan per batch rather than one per session.
const EVICTION_BATCH_DIVISOR: usize = 64;
/// How many batches one create evicts at most before it gives up.
const EVICTION_ROUNDS: usize = 64;

/// Keys are SHA-256 digests, uniform whatever ids clients send, so they are
/// hashed with foldhash (seeded per process), a few times cheaper than
/// SipHash on a key this long.
type KeyHasher = foldhash::fast::RandomState;

type Shard = HashMap<StoreKey, StoredSession, KeyHasher>;

/// The embedded store: sessions in this process's memory, in shards that
/// each have their own lock.
///
/// It frees expired sessions by itself: a write that finds the last sweep
/// older than a minute sweeps them out, so memory follows the live sessions
/// without a clean-up task. Sessions do not survive a restart and are not
/// shared between processes.
///
/// # Bounded
///
/// The store holds at most [`max_sessions`](Self::max_sessions) sessions
/// ([`DEFAULT_MAX_SESSIONS`](Self::DEFAULT_MAX_SESSIONS) unless set), exactly,
/// however many creates race. A create that finds it full first sweeps out
/// the expired sessions, then evicts a batch (a sixty-fourth of the cap) of
/// the sessions closest to expiry, *anonymous ones first*: a session bound
/// to an owner (a logged-in user) is evicted only when no anonymous one is
/// left. So a flood of anonymous visitors can push out other anonymous
/// sessions, but cannot lock anyone out or log anyone out.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: KeyHasher,
    /// Live and not yet swept sessions, plus creates that reserved room and
    /// have not stored theirs yet.
    len: AtomicUsize,
    /// Keys of the sessions bound to each owner. Always locked after a shard,
    /// never before one.
    owners: Mutex<HashMap<Arc<str>, HashSet<StoreKey>>>,
    max_sessions: usize,
    /// Held by the one create that evicts; the others wait for its room.
    evicting: Mutex<()>,
    sweep_period: Duration,
    /// When the last sweep started, in milliseconds since the Unix epoch.
    last_sweep: AtomicU64,
}

/// The memory store could not make room for a new session (its cap is zero,
/// or other creates took the room it made): the new one was refused.
#[derive(Debug, thiserror::Error)]
#[error("the memory store holds its maximum of {max} sessions")]
pub struct MemoryStoreFull {
    /// The configured maximum.
    pub max: usize,
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStore {
    /// The cap of a store made with [`new`](Self::new): about 50 MB of
    /// sessions of a few small fields each.
    pub const DEFAULT_MAX_SESSIONS: usize = 100_000;

    /// An empty store holding at most
    /// [`DEFAULT_MAX_SESSIONS`](Self::DEFAULT_MAX_SESSIONS).
    pub fn new() -> Self {
        let parallelism = std::thread::available_parallelism().map_or(4, usize::from);
        let shards = (parallelism * 4).next_power_of_two();
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            hasher: KeyHasher::default(),
            len: AtomicUsize::new(0),
            owners: Mutex::default(),
            max_sessions: Self::DEFAULT_MAX_SESSIONS,
            evicting: Mutex::default(),
            sweep_period: SWEEP_PERIOD,
            last_sweep: AtomicU64::new(millis(SystemTime::now())),
        }
    }

    /// Holds at most `max` sessions, evicting as the [type's docs](Self#bounded)
    /// say to make room for new ones, so a flood of new visitors can
    /// exhaust neither memory nor the room for logged-in users.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// How often writes sweep expired sessions out (default one minute).
    pub fn sweep_period(mut self, period: Duration) -> Self {
        self.sweep_period = period;
        self
    }

    /// How many sessions the store holds, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.len.load(Ordering::Relaxed)
    }

    /// Whether the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn shard_of(&self, key: &StoreKey) -> usize {
        // Shard counts are powers of two.
        self.hasher.hash_one(key) as usize & (self.shards.len() - 1)
    }

    fn shard(&self, key: &StoreKey) -> MutexGuard<'_, Shard> {
        lock(&self.shards[self.shard_of(key)])
    }

    /// Records that `key` moved from `old` owner to `new` in the index.
    fn reindex(&self, key: &StoreKey, old: Option<&Arc<str>>, new: Option<(&Arc<str>, &StoreKey)>) {
        if old.is_none() && new.is_none() {
            return;
        }
        let mut owners = lock(&self.owners);
        if let Some(old) = old {
            if let Some(keys) = owners.get_mut(old) {
                keys.remove(key);
                if keys.is_empty() {
                    owners.remove(old);
                }
            }
        }
        if let Some((owner, key)) = new {
            owners
                .entry(Arc::clone(owner))
                .or_default()
                .insert(key.clone());
        }
    }

    /// Sweeps expired sessions out if the last sweep is older than `period`.
    fn sweep_if_due(&self, now: SystemTime, period: Duration) {
        let last = self.last_sweep.load(Ordering::Relaxed);
        let due = millis(now).saturating_sub(last) >= period.as_millis() as u64;
        // One writer sweeps; the others go on.
        if due
            && self
                .last_sweep
                .compare_exchange(last, millis(now), Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.sweep(now);
        }
    }

    /// Sweeps expired sessions out now, whenever the last sweep was.
    fn sweep_now(&self, now: SystemTime) -> u64 {
        self.last_sweep.store(millis(now), Ordering::Relaxed);
        self.sweep(now)
    }

    fn sweep(&self, now: SystemTime) -> u64 {
        let mut swept = 0;
        for shard in self.shards.iter() {
            let mut expired = Vec::new();
            lock(shard).retain(|key, session| {
                let live = session.is_live(now);
                if !live {
                    expired.push((key.clone(), session.owner.take()));
                }
                live
            });
            swept += expired.len() as u64;
            self.len.fetch_sub(expired.len(), Ordering::Relaxed);
            for (key, owner) in expired {
                self.reindex(&key, owner.as_ref(), None);
            }
        }
        swept
    }

    /// Reserves room for one more session under the cap: counted at once,
    /// so that racing creates can never pass the cap together.
    fn reserve(&self) -> bool {
        let max = self.max_sessions;
        self.len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |len| {
                (len < max).then_some(len + 1)
            })
            .is_ok()
    }

    /// Room for one new session, making it if the store is full.
    fn make_room(&self, now: SystemTime) -> Result<(), MemoryStoreFull> {
        if self.reserve() {
            return Ok(());
        }
        let _one_evicts = lock(&self.evicting);
        // Another create may have made room while this one waited.
        if self.reserve() {
            return Ok(());
        }
        self.sweep_now(now);
        // Creates that never waited here may take the room an eviction
        // makes before this one does: evict again while there is any.
        for _ in 0..EVICTION_ROUNDS {
            if self.reserve() {
                return Ok(());
            }
            if self.evict() == 0 {
                break;
            }
        }
        Err(MemoryStoreFull {
            max: self.max_sessions,
        })
    }

    /// Deletes a batch of the sessions closest to expiry, anonymous ones
    /// before owned ones, and says how many.
    fn evict(&self) -> usize {
        let batch = (self.max_sessions / EVICTION_BATCH_DIVISOR).max(1);
        let mut candidates: Vec<(bool, SystemTime, StoreKey)> = Vec::with_capacity(self.len());
        for shard in self.shards.iter() {
            for (key, session) in lock(shard).iter() {
                candidates.push((session.owner.is_some(), session.expires_at, key.clone()));
            }
        }
        if candidates.len() > batch {
            candidates.select_nth_unstable(batch - 1);
            candidates.truncate(batch);
        }
        let mut evicted = 0;
        for (owned, _, key) in candidates {
            let mut shard = self.shard(&key);
            // Logged in meanwhile: not the anonymous session it was chosen as.
            if shard.get(&key).is_some_and(|s| s.owner.is_some() && !owned) {
                continue;
            }
            if let Some(session) = shard.remove(&key) {
                drop(shard);
                self.len.fetch_sub(1, Ordering::Relaxed);
                self.reindex(&key, session.owner.as_ref(), None);
                evicted += 1;
            }
        }
        tracing::warn!(
            evicted,
            max = self.max_sessions,
            "the memory store is full: evicted the sessions closest to expiry"
        );
        evicted
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        let now = SystemTime::now();
        let shard = self.shard(key);
        Ok(shard
            .get(key)
            .filter(|session| session.is_live(now))
            .map(|session| session.record(now)))
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        let now = SystemTime::now();
        self.sweep_if_due(now, self.sweep_period);
        self.make_room(now)?;
        let session = StoredSession::create(changes, now);
        let expiry = session.expiry(now);
        let mut shard = self.shard(key);
        // The room reserved is given back unless the session takes a new entry.
        let replaced_owner = match shard.entry(key.clone()) {
            Entry::Occupied(entry) if entry.get().is_live(now) => {
                self.len.fetch_sub(1, Ordering::Relaxed);
                return Ok(Created::KeyTaken);
            }
            Entry::Occupied(mut entry) => {
                self.len.fetch_sub(1, Ordering::Relaxed);
                entry.insert(session.clone()).owner
            }
            Entry::Vacant(entry) => {
                entry.insert(session.clone());
                None
            }
        };
        self.reindex(
            key,
            replaced_owner.as_ref(),
            session.owner.as_ref().map(|owner| (owner, key)),
        );
        Ok(Created::Written(expiry))
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        let now = SystemTime::now();
        let mut shard = self.shard(key);
        let Some(session) = shard.get_mut(key).filter(|session| session.is_live(now)) else {
            return Ok(Updated::Gone);
        };
        let old_owner = session.owner.clone();
        session.apply(changes, now);
        if session.owner != old_owner {
            self.reindex(
                key,
                old_owner.as_ref(),
                session.owner.as_ref().map(|owner| (owner, key)),
            );
        }
        Ok(Updated::Written(session.expiry(now)))
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        _whole: &Record,
    ) -> Result<Moved, BoxError> {
        let now = SystemTime::now();
        let (from_shard, to_shard) = (self.shard_of(from), self.shard_of(to));
        // Both shards locked at once, in index order, so the move is one step.
        let mut first = lock(&self.shards[from_shard.min(to_shard)]);
        let mut second =
            (from_shard != to_shard).then(|| lock(&self.shards[from_shard.max(to_shard)]));
        let (source, target) = match &mut second {
            None => (&mut *first, None),
            Some(second) if from_shard < to_shard => (&mut *first, Some(&mut **second)),
            Some(second) => (&mut **second, Some(&mut *first)),
        };
        let taken = target
            .as_deref()
            .unwrap_or(source)
            .get(to)
            .is_some_and(|session| session.is_live(now));
        if taken {
            return Ok(Moved::KeyTaken);
        }
        if !source.get(from).is_some_and(|session| session.is_live(now)) {
            return Ok(Moved::Gone);
        }
        let Some(mut session) = source.remove(from) else {
            return Ok(Moved::Gone);
        };
        let old_owner = session.owner.clone();
        session.apply(changes, now);
        let expiry = session.expiry(now);
        let new_owner = session.owner.clone();
        let replaced = target.unwrap_or(source).insert(to.clone(), session);
        if let Some(replaced) = replaced {
            self.len.fetch_sub(1, Ordering::Relaxed);
            self.reindex(to, replaced.owner.as_ref(), None);
        }
        self.reindex(from, old_owner.as_ref(), None);
        self.reindex(to, None, new_owner.as_ref().map(|owner| (owner, to)));
        Ok(Moved::Written(expiry))
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        let removed = self.shard(key).remove(key);
        if let Some(session) = removed {
            self.len.fetch_sub(1, Ordering::Relaxed);
            self.reindex(key, session.owner.as_ref(), None);
        }
        Ok(())
    }

    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        let now = SystemTime::now();
        let keys: Vec<StoreKey> = lock(&self.owners)
            .get(owner)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default();
        Ok(keys
            .into_iter()
            .filter_map(|key| {
                let shard = self.shard(&key);
                let session = shard.get(&key)?;
                (session.is_live(now) && session.owner.as_deref() == Some(owner))
                    .then(|| session.owned(key.clone()))
            })
            .collect())
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        // Every shard locked, in index order as a rekey locks its two, then
        // the index: no write can move a session of the owner to a key this
        // pass does not see, so none escapes "log out everywhere".
        let mut shards: Vec<MutexGuard<'_, Shard>> = self.shards.iter().map(lock).collect();
        let mut owners = lock(&self.owners);
        let Some(keys) = owners.get_mut(owner) else {
            return Ok(0);
        };
        let mut deleted = 0;
        keys.retain(|key| {
            if Some(key) == keep {
                return true;
            }
            let shard = &mut shards[self.shard_of(key)];
            let owned = shard.get(key).and_then(|session| session.owner.as_deref());
            if owned == Some(owner) {
                shard.remove(key);
                self.len.fetch_sub(1, Ordering::Relaxed);
                deleted += 1;
            }
            false
        });
        if keys.is_empty() {
            owners.remove(owner);
        }
        Ok(deleted)
    }
}

#[async_trait]
impl ExpiredCleanup for MemoryStore {
    async fn delete_expired(&self) -> Result<u64, BoxError> {
        Ok(self.sweep_now(SystemTime::now()))
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
