//! One request's session as the request sees it, and its state machine: what
//! the handle's methods change, what a commit plans from it, and how the
//! outcome of that commit settles back into it.
//!
//! A commit takes what it writes out of the state (`plan`) and puts it back
//! if it fails (`settle`), so that changes made while a commit is in flight
//! (a `destroy()`, a `regenerate()`, a new value) are never undone by it.

use std::any::TypeId;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use cookie::Cookie;

use super::plan::{Executed, Plan, Write};
use super::slot::{AnySlot, Settle, Slot};
use crate::config::{SessionConfig, MIN_MAX_AGE};
use crate::cookie::removal_cookie;
use crate::data::SessionSchema;
use crate::error::Error;
use crate::id::{SessionId, StoreKey};
use crate::store::{later, no_fields, ChangeSet, Fields, Record, Update, MAX_LIFETIME};

pub(crate) struct State {
    standing: Standing,
    /// The record's fields as loaded, decoded by each struct on first use.
    fields: Arc<Fields>,
    max_age: Option<Duration>,
    max_age_dirty: bool,
    owner: Option<Arc<str>>,
    owner_dirty: bool,
    regenerate: bool,
    /// `touch()`: the next commit writes even if nothing changed.
    touch: bool,
    /// Counts `destroy()` calls: a commit that started before one must not
    /// bring the destroyed session back.
    epoch: u64,
    /// Keys of destroyed sessions, deleted at the next commit.
    discard: Vec<StoreKey>,
    /// The client presented only cookies that can never name a session
    /// (malformed, forged, undecodable, past their sealed expiry): a commit
    /// that stores nothing withdraws them.
    withdraw_presented: bool,
    slots: Vec<(TypeId, Box<dyn AnySlot>)>,
}

enum Standing {
    /// Not in the store: nothing was presented, or it was destroyed.
    New,
    Stored(Stored),
    /// Another request ended the session this request loaded: nothing more
    /// is written for it.
    Gone,
}

/// A session the store holds.
struct Stored {
    /// The id the client holds.
    id: SessionId,
    /// The store's key for `id`, hashed once.
    key: StoreKey,
    /// When it expires, by this process's monotonic clock.
    expires: Instant,
    /// The client's cookie was made with a key that is no longer the first:
    /// the next commit sends one made with the current key.
    old_key: bool,
}

/// What a commit in flight took out of the state, to put back if it fails.
pub(crate) struct InFlight {
    epoch: u64,
    regenerate: bool,
    touch: bool,
    max_age_dirty: bool,
    owner_dirty: bool,
    discard: Vec<StoreKey>,
}

/// How a settled commit changes the response's cookie.
pub(crate) enum CookieChange {
    /// Send this one (replacing one an earlier commit prepared).
    Send(Cookie<'static>),
    /// Hand the client the session now stored under `id`, with `ttl` left
    /// (`None`: a browser-session cookie); how depends on where it is stored.
    Issue {
        id: SessionId,
        ttl: Option<Duration>,
    },
    /// Send none: the session that was under this key is gone.
    Withdraw(Option<StoreKey>),
}

impl State {
    pub(crate) fn fresh() -> Self {
        Self {
            standing: Standing::New,
            fields: no_fields(),
            max_age: None,
            max_age_dirty: false,
            owner: None,
            owner_dirty: false,
            regenerate: false,
            touch: false,
            epoch: 0,
            discard: Vec::new(),
            withdraw_presented: false,
            slots: Vec::new(),
        }
    }

    /// A fresh state that withdraws the presented cookies if `refused`.
    pub(crate) fn withdrawing(self, refused: bool) -> Self {
        Self {
            withdraw_presented: refused,
            ..self
        }
    }

    /// The state of a session the store returned; lifetimes beyond what a
    /// browser keeps are cut, whatever the store says.
    /// `old_key` says the client's cookie was made with a key that is no
    /// longer the first.
    pub(crate) fn loaded(id: SessionId, key: StoreKey, record: Record, old_key: bool) -> Self {
        Self {
            standing: Standing::Stored(Stored {
                id,
                key,
                expires: Instant::now() + record.ttl.min(MAX_LIFETIME),
                old_key,
            }),
            fields: record.fields,
            max_age: record.max_age.map(|max_age| max_age.min(MAX_LIFETIME)),
            owner: record.owner,
            ..Self::fresh()
        }
    }

    /// The index of `T`'s slot, made on first use.
    pub(crate) fn slot_index<T: SessionSchema>(&mut self) -> usize {
        let type_id = TypeId::of::<T>();
        match self.slots.iter().position(|(id, _)| *id == type_id) {
            Some(index) => index,
            None => {
                let slot = Slot::<T>::new(Arc::clone(&self.fields));
                self.slots.push((type_id, Box::new(slot)));
                self.slots.len() - 1
            }
        }
    }

    pub(crate) fn slot_mut<T: SessionSchema>(&mut self, index: usize) -> &mut Slot<T> {
        self.slots[index]
            .1
            .as_any_mut()
            .downcast_mut()
            .unwrap_or_else(|| unreachable!("a handle's slot index points at its own type"))
    }

    pub(crate) fn is_new(&self) -> bool {
        !matches!(self.standing, Standing::Stored(_))
    }

    pub(crate) fn max_age_override(&self) -> Option<Duration> {
        self.max_age
    }

    pub(crate) fn expires_at(&self) -> Option<SystemTime> {
        match &self.standing {
            Standing::Stored(stored) => {
                let left = stored.expires.saturating_duration_since(Instant::now());
                Some(later(SystemTime::now(), left))
            }
            _ => None,
        }
    }

    /// The stored key, unless a regenerate will move the session off it.
    pub(crate) fn lasting_key(&self) -> Option<&StoreKey> {
        self.stored_key().filter(|_| !self.regenerate)
    }

    pub(crate) fn stored_key(&self) -> Option<&StoreKey> {
        match &self.standing {
            Standing::Stored(stored) => Some(&stored.key),
            _ => None,
        }
    }

    pub(crate) fn destroy(&mut self) {
        if let Standing::Stored(stored) = std::mem::replace(&mut self.standing, Standing::New) {
            self.discard.push(stored.key);
        }
        self.epoch += 1;
        self.fields = no_fields();
        self.max_age = None;
        self.max_age_dirty = false;
        self.owner = None;
        self.owner_dirty = false;
        self.regenerate = false;
        self.touch = false;
        self.slots.iter_mut().for_each(|(_, slot)| slot.reset());
    }

    /// Forgets the loaded session without deleting it: the request goes on
    /// with a fresh one (the `valid` hook refused it).
    pub(crate) fn reject(&mut self) {
        self.destroy();
        self.discard.clear();
    }

    pub(crate) fn touch(&mut self) {
        self.touch = true;
    }

    pub(crate) fn regenerate(&mut self) {
        self.regenerate = true;
    }

    pub(crate) fn set_max_age(&mut self, max_age: Option<Duration>) {
        // Zero ends the session at the commit; anything shorter than a
        // second would issue a live session a cookie the browser drops.
        let lifetime = |max_age: Duration| match max_age.is_zero() {
            true => max_age,
            false => max_age.clamp(MIN_MAX_AGE, MAX_LIFETIME),
        };
        self.max_age = max_age.map(lifetime);
        self.max_age_dirty = true;
    }

    pub(crate) fn max_age(&self, config: &SessionConfig) -> Duration {
        self.max_age.unwrap_or(config.max_age)
    }

    pub(crate) fn owner(&self) -> Option<&Arc<str>> {
        self.owner.as_ref()
    }

    pub(crate) fn set_owner(&mut self, owner: Option<&str>) {
        if self.owner.as_deref() != owner {
            self.owner = owner.map(Arc::from);
            self.owner_dirty = true;
        }
    }

    /// Decides what the next commit writes and takes it out of the state.
    pub(crate) fn plan(&mut self, config: &SessionConfig) -> Result<(Plan, InFlight), Error> {
        let mut changes = ChangeSet::touch(config.max_age);
        let collected = self
            .slots
            .iter_mut()
            .try_for_each(|(_, slot)| slot.collect(&mut changes));
        if let Err(error) = collected {
            // The fields collected before the failure are dirty again.
            self.settle_slots(Settle::Retry);
            return Err(error);
        }
        if self.max_age_dirty {
            changes.max_age = Update::Set(self.max_age);
        } else {
            changes.seen_max_age = self.max_age;
        }
        if self.owner_dirty {
            changes.owner = Update::Set(self.owner.clone());
        }
        let in_flight = InFlight {
            epoch: self.epoch,
            regenerate: std::mem::take(&mut self.regenerate),
            touch: std::mem::take(&mut self.touch),
            max_age_dirty: std::mem::take(&mut self.max_age_dirty),
            owner_dirty: std::mem::take(&mut self.owner_dirty),
            discard: std::mem::take(&mut self.discard),
        };
        let changed = !changes.is_touch() || in_flight.touch;
        let write = match &self.standing {
            Standing::Gone => None,
            Standing::New => changed.then_some(Write::Create(changes)),
            Standing::Stored(stored) if in_flight.regenerate => {
                let whole = self.whole(stored, &changes);
                Some(Write::Rekey {
                    from: stored.key.clone(),
                    changes,
                    whole,
                })
            }
            Standing::Stored(stored) => {
                let left = stored.expires.saturating_duration_since(Instant::now());
                let max_age = self.max_age(config);
                let extend = changed
                    || config.rolling
                    || (config.renew && left < max_age / 2)
                    || stored.old_key;
                extend.then(|| Write::Update {
                    id: stored.id.clone(),
                    key: stored.key.clone(),
                    changes,
                })
            }
        };
        let plan = Plan {
            discard: in_flight.discard.clone(),
            write,
        };
        Ok((plan, in_flight))
    }

    /// Lets go of the record as loaded, once nothing can read it any more
    /// (the request's last commit is planned): a store that hands out
    /// shared records can then merge into its own in place instead of
    /// copying it.
    pub(crate) fn release_record(&mut self) {
        self.fields = no_fields();
        self.slots
            .iter_mut()
            .for_each(|(_, slot)| slot.release_record());
    }

    /// The session as this request sees it once `changes` are applied: what
    /// a store that cannot move a record atomically writes under a new key.
    fn whole(&self, stored: &Stored, changes: &ChangeSet) -> Record {
        let mut fields = Fields::clone(&self.fields);
        for (_, slot) in &self.slots {
            slot.committed_into(&mut fields);
        }
        for (key, value) in &changes.set {
            fields.insert(key, value.clone());
        }
        for key in &changes.remove {
            fields.remove(key);
        }
        let now = SystemTime::now();
        let left = stored.expires.saturating_duration_since(Instant::now());
        let expires_at = changes.expires_at_after(now, Some(later(now, left)), self.max_age);
        Record {
            fields: Arc::new(fields),
            ttl: expires_at.duration_since(now).unwrap_or_default(),
            max_age: self.max_age,
            owner: self.owner.clone(),
        }
    }

    /// Takes the outcome of the commit `in_flight` back into the state and
    /// says what it changes about the response's cookie.
    pub(crate) fn settle(
        &mut self,
        in_flight: InFlight,
        outcome: &Result<Executed, Error>,
        config: &SessionConfig,
    ) -> Option<CookieChange> {
        let current = in_flight.epoch == self.epoch;
        match outcome {
            Err(_) => {
                self.regenerate |= in_flight.regenerate;
                self.touch |= in_flight.touch;
                self.max_age_dirty |= in_flight.max_age_dirty;
                self.owner_dirty |= in_flight.owner_dirty;
                let newer = std::mem::replace(&mut self.discard, in_flight.discard);
                self.discard.extend(newer);
                self.settle_slots(Settle::Retry);
                None
            }
            Ok(Executed::Nothing) => {
                self.settle_slots(match self.standing {
                    Standing::Gone => Settle::Dropped,
                    _ => Settle::Committed,
                });
                let destroyed = !in_flight.discard.is_empty() && self.is_new();
                let refused = std::mem::take(&mut self.withdraw_presented) && self.is_new();
                (destroyed || refused).then(|| CookieChange::Send(removal_cookie(config)))
            }
            // Destroyed while the commit was in flight: what it wrote goes too.
            Ok(Executed::Written { key, .. }) if !current => {
                self.discard.push(key.clone());
                None
            }
            Ok(Executed::Written { id, key, expiry }) => {
                self.settle_slots(Settle::Committed);
                self.withdraw_presented = false;
                self.standing = Standing::Stored(Stored {
                    id: id.clone(),
                    key: key.clone(),
                    expires: Instant::now() + expiry.ttl.min(MAX_LIFETIME),
                    old_key: false,
                });
                if !self.max_age_dirty {
                    self.max_age = expiry.max_age.map(|max_age| max_age.min(MAX_LIFETIME));
                }
                let ttl = config.cookie_ttl(expiry.ttl.min(MAX_LIFETIME), self.max_age.is_some());
                Some(CookieChange::Issue {
                    id: id.clone(),
                    ttl,
                })
            }
            Ok(Executed::Gone) if !current => None,
            Ok(Executed::Gone) => {
                self.settle_slots(Settle::Dropped);
                let gone = match std::mem::replace(&mut self.standing, Standing::Gone) {
                    Standing::Stored(stored) => Some(stored.key),
                    _ => None,
                };
                self.regenerate = false;
                self.max_age_dirty = false;
                self.owner_dirty = false;
                Some(CookieChange::Withdraw(gone))
            }
        }
    }

    fn settle_slots(&mut self, outcome: Settle) {
        self.slots
            .iter_mut()
            .for_each(|(_, slot)| slot.settle(outcome));
    }
}
