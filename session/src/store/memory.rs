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
/// A full store sweeps before refusing a session, at most this often.
const FULL_SWEEP_PERIOD: Duration = Duration::from_secs(1);

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
/// without a clean-up task. [`max_sessions`](Self::max_sessions) caps them.
/// Sessions do not survive a restart and are not shared between processes.
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    hasher: KeyHasher,
    /// Live and not yet swept sessions.
    len: AtomicUsize,
    /// Keys of the sessions bound to each owner. Always locked after a shard,
    /// never before one.
    owners: Mutex<HashMap<Arc<str>, HashSet<StoreKey>>>,
    max_sessions: Option<usize>,
    sweep_period: Duration,
    /// When the last sweep started, in milliseconds since the Unix epoch.
    last_sweep: AtomicU64,
}

/// [`MemoryStore::max_sessions`] live sessions exist already, so a new one
/// was refused.
#[derive(Debug, thiserror::Error)]
#[error("the memory store holds its maximum of {max} live sessions")]
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
    /// An empty store without a cap.
    pub fn new() -> Self {
        let parallelism = std::thread::available_parallelism().map_or(4, usize::from);
        let shards = (parallelism * 4).next_power_of_two();
        Self {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            hasher: KeyHasher::default(),
            len: AtomicUsize::new(0),
            owners: Mutex::default(),
            max_sessions: None,
            sweep_period: SWEEP_PERIOD,
            last_sweep: AtomicU64::new(millis(SystemTime::now())),
        }
    }

    /// Refuses new sessions with [`MemoryStoreFull`] once `max` live sessions
    /// exist (expired ones are swept out first), so a flood of new visitors
    /// cannot exhaust memory.
    pub fn max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = Some(max);
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

    /// Whether one more session fits under the cap.
    fn has_room(&self, now: SystemTime) -> bool {
        let Some(max) = self.max_sessions else {
            return true;
        };
        if self.len() < max {
            return true;
        }
        self.sweep_if_due(now, FULL_SWEEP_PERIOD);
        self.len() < max
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
        if !self.has_room(now) {
            return Err(Box::new(MemoryStoreFull {
                max: self.max_sessions.unwrap_or_default(),
            }));
        }
        let session = StoredSession::create(changes, now);
        let expiry = session.expiry(now);
        let mut shard = self.shard(key);
        let replaced_owner = match shard.entry(key.clone()) {
            Entry::Occupied(entry) if entry.get().is_live(now) => return Ok(Created::KeyTaken),
            Entry::Occupied(mut entry) => entry.insert(session.clone()).owner,
            Entry::Vacant(entry) => {
                entry.insert(session.clone());
                self.len.fetch_add(1, Ordering::Relaxed);
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
        let keys: Vec<StoreKey> = lock(&self.owners)
            .get(owner)
            .map(|keys| keys.iter().cloned().collect())
            .unwrap_or_default();
        let mut deleted = 0;
        for key in keys.iter().filter(|key| Some(*key) != keep) {
            let mut shard = self.shard(key);
            let owned = shard
                .get(key)
                .is_some_and(|session| session.owner.as_deref() == Some(owner));
            if owned {
                let session = shard.remove(key);
                drop(shard);
                self.len.fetch_sub(1, Ordering::Relaxed);
                self.reindex(key, session.and_then(|s| s.owner).as_ref(), None);
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

#[async_trait]
impl ExpiredCleanup for MemoryStore {
    async fn delete_expired(&self) -> Result<u64, BoxError> {
        let now = SystemTime::now();
        self.last_sweep.store(millis(now), Ordering::Relaxed);
        Ok(self.sweep(now))
    }
}

fn millis(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_millis() as u64)
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
