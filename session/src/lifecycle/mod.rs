//! The session lifecycle, independent of any web framework: load the session
//! a request presents, hand out typed handles, commit the changes once and
//! say which cookie the response must carry.
//!
//! An integration calls [`SessionManager::start`] when a request arrives,
//! keeps the [`RequestSession`] where handlers can reach it, and calls
//! [`RequestSession::finish`] once the handler has produced its response.
//!
//! ```
//! use session::{MemoryStore, Session, SessionConfig, SessionManager};
//!
//! #[derive(Session, Default)]
//! struct Visits {
//!     count: u64,
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session::Error> {
//! let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default());
//!
//! // A first request: no cookie yet.
//! let request = sessions.start(None);
//! let visits = request.session::<Visits>().await?;
//! visits.set_count(visits.count() + 1);
//! let cookie = request.finish().await?.expect("the first write sets a cookie");
//!
//! // The next request presents that cookie's value.
//! let request = sessions.start(Some(cookie.value().to_owned()));
//! assert_eq!(request.session::<Visits>().await?.count(), 1);
//! assert!(request.finish().await?.is_none(), "nothing changed: no write, no cookie");
//! # Ok(())
//! # }
//! ```

pub(crate) mod slot;

use std::any::TypeId;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, SystemTime};

use cookie::Cookie;
use tokio::sync::OnceCell;

use crate::config::{SessionConfig, MAX_LIFETIME};
use crate::data::SessionData;
use crate::error::{Error, StoreOp};
use crate::event::SessionEvent;
use crate::handle::{RawHandle, Session};
use crate::id::{SessionId, StoreKey};
use crate::store::{ChangeSet, Fields, MaxAgeUpdate, SessionStore};
use slot::{AnySlot, Slot};

/// A store and a configuration: what every request's session is made from.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionManager {
    inner: Arc<ManagerInner>,
}

#[derive(Debug)]
struct ManagerInner {
    store: Arc<dyn SessionStore>,
    config: SessionConfig,
}

impl SessionManager {
    /// Sessions kept in `store`, living by `config`.
    pub fn new(store: impl SessionStore, config: SessionConfig) -> Self {
        Self::from_shared(Arc::new(store), config)
    }

    /// Like [`new`](Self::new), for a store the application also uses itself.
    pub fn from_shared(store: Arc<dyn SessionStore>, config: SessionConfig) -> Self {
        Self {
            inner: Arc::new(ManagerInner { store, config }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.inner.store
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Deletes expired sessions every `period` in a tokio task; see
    /// [`spawn_cleanup`](crate::store::spawn_cleanup).
    pub fn spawn_cleanup(&self, period: Duration) -> tokio::task::JoinHandle<()> {
        crate::store::spawn_cleanup(Arc::clone(&self.inner.store), period)
    }

    /// The session id among a request's `Cookie` header values, if any.
    pub fn presented_id<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a str>,
    ) -> Option<String> {
        let name = self.config().cookie_name.as_str();
        cookie_headers
            .into_iter()
            .flat_map(Cookie::split_parse)
            .flatten()
            .find(|cookie| cookie.name() == name)
            .map(|cookie| cookie.value().to_owned())
    }

    /// Begins one request's session from the id the client presented. Nothing
    /// is loaded until a handler asks for the session.
    pub fn start(&self, presented_id: Option<String>) -> RequestSession {
        RequestSession {
            inner: Arc::new(RequestInner {
                manager: self.clone(),
                presented_id,
                state: OnceCell::new(),
                commit: tokio::sync::Mutex::new(()),
                cookie: Mutex::new(None),
            }),
        }
    }
}

/// One request's session: loaded on first use, shared by every typed handle
/// of the request, committed once. Cheap to clone.
#[derive(Clone)]
pub struct RequestSession {
    inner: Arc<RequestInner>,
}

struct RequestInner {
    manager: SessionManager,
    presented_id: Option<String>,
    state: OnceCell<Mutex<State>>,
    /// Serialises commits, so a `save()` racing the final commit cannot
    /// interleave store writes.
    commit: tokio::sync::Mutex<()>,
    /// The cookie the response must carry, from the latest commit.
    cookie: Mutex<Option<Cookie<'static>>>,
}

/// The session as this request sees it.
struct State {
    /// Where the store holds this session; `None` for a new session.
    stored: Option<Stored>,
    /// The record's fields as loaded, decoded by each struct on first use.
    fields: Arc<Fields>,
    max_age: Option<Duration>,
    max_age_changed: bool,
    regenerate: bool,
    /// The key of a destroyed session, deleted at the next commit.
    discard: Option<StoreKey>,
    slots: Vec<(TypeId, Arc<dyn AnySlot>)>,
}

/// A session the store holds.
struct Stored {
    /// The id the client holds.
    id: SessionId,
    /// The store's key for `id`, hashed once.
    key: StoreKey,
    expires_at: SystemTime,
}

impl State {
    fn fresh() -> Self {
        Self {
            stored: None,
            fields: Arc::default(),
            max_age: None,
            max_age_changed: false,
            regenerate: false,
            discard: None,
            slots: Vec::new(),
        }
    }
}

/// The store operations and cookie one commit decided on.
struct Plan {
    discard: Option<StoreKey>,
    /// `(from, to)` when the session moves to a new id.
    rename: Option<(StoreKey, StoreKey)>,
    write: Option<Write>,
    cookie: Option<Cookie<'static>>,
}

struct Write {
    /// The session as the store will hold it.
    to: Stored,
    /// `None` when only the expiry moves.
    changes: Option<ChangeSet>,
}

impl RequestSession {
    fn manager(&self) -> &SessionManager {
        &self.inner.manager
    }

    pub(crate) fn config(&self) -> &SessionConfig {
        self.manager().config()
    }

    /// The typed session `T` of this request, loading the session on first use.
    /// Every call for the same `T` shares one state; different structs share
    /// one store load.
    pub async fn session<T: SessionData>(&self) -> Result<Session<T>, Error> {
        let state = self.inner.state.get_or_try_init(|| self.load()).await?;
        let mut state = lock(state);
        let type_id = TypeId::of::<T>();
        let slot = match state.slots.iter().find(|(id, _)| *id == type_id) {
            Some((_, slot)) => Arc::clone(slot),
            None => {
                let slot: Arc<dyn AnySlot> = Arc::new(Slot::<T>::new(Arc::clone(&state.fields)));
                state.slots.push((type_id, Arc::clone(&slot)));
                slot
            }
        };
        let slot = slot
            .into_any()
            .downcast::<Slot<T>>()
            .unwrap_or_else(|_| unreachable!("slots are keyed by their TypeId"));
        Ok(Session::new(RawHandle::new(slot, self.clone())))
    }

    async fn load(&self) -> Result<Mutex<State>, Error> {
        let Some(presented) = &self.inner.presented_id else {
            return Ok(Mutex::new(State::fresh()));
        };
        let config = self.config();
        let Some(id) = SessionId::parse(presented) else {
            config.emit(SessionEvent::MalformedId);
            return Ok(Mutex::new(State::fresh()));
        };
        let key = StoreKey::for_id(&config.key_prefix, &id);
        let store = self.manager().store();
        let Some(record) = self.within_limit(StoreOp::Load, store.load(&key)).await? else {
            config.emit(SessionEvent::Missed);
            return Ok(Mutex::new(State::fresh()));
        };
        if record.is_expired(SystemTime::now()) {
            config.emit(SessionEvent::Expired);
            return Ok(Mutex::new(State::fresh()));
        }
        Ok(Mutex::new(State {
            stored: Some(Stored {
                id,
                key,
                expires_at: record.expires_at,
            }),
            fields: record.fields,
            max_age: record.max_age,
            ..State::fresh()
        }))
    }

    /// The loaded state; handles exist only after a load, so it is there.
    fn state(&self) -> MutexGuard<'_, State> {
        let state = self.inner.state.get();
        lock(state.unwrap_or_else(|| unreachable!("a handle exists only after the session loaded")))
    }

    pub(crate) fn is_new(&self) -> bool {
        self.state().stored.is_none()
    }

    pub(crate) fn destroy(&self) {
        let mut state = self.state();
        let discard = state.stored.take().map(|stored| stored.key);
        *state = State {
            discard: discard.or(state.discard.take()),
            slots: std::mem::take(&mut state.slots),
            ..State::fresh()
        };
        state.slots.iter().for_each(|(_, slot)| slot.reset());
    }

    pub(crate) fn regenerate(&self) {
        self.state().regenerate = true;
    }

    pub(crate) fn set_max_age(&self, max_age: Option<Duration>) {
        let mut state = self.state();
        state.max_age = max_age.map(|max_age| max_age.min(MAX_LIFETIME));
        state.max_age_changed = true;
    }

    pub(crate) fn max_age(&self) -> Duration {
        self.state().max_age.unwrap_or(self.config().max_age)
    }

    /// Commits now; see `Session::save`.
    pub(crate) async fn save(&self) -> Result<(), Error> {
        let _one_at_a_time = self.inner.commit.lock().await;
        if self.inner.state.get().is_none() {
            return Ok(());
        }
        let outcome = match self.plan() {
            Ok(plan) => self.execute(&plan).await.map(|()| plan),
            Err(error) => Err(error),
        };
        let mut state = self.state();
        state
            .slots
            .iter()
            .for_each(|(_, slot)| slot.settle(outcome.is_ok()));
        let plan = outcome?;
        if plan.discard.is_some() {
            state.discard = None;
        }
        if let Some(write) = plan.write {
            state.stored = Some(write.to);
            state.regenerate = false;
            state.max_age_changed = false;
        }
        if let Some(cookie) = plan.cookie {
            *lock(&self.inner.cookie) = Some(cookie);
        }
        Ok(())
    }

    /// Ends the request: commits (unless auto-commit is off) and returns the
    /// `Set-Cookie` the response must carry, if any. A session the request
    /// never loaded costs nothing here.
    pub async fn finish(&self) -> Result<Option<Cookie<'static>>, Error> {
        if self.config().auto_commit {
            self.save().await?;
        }
        Ok(lock(&self.inner.cookie).take())
    }

    /// Decides what this commit writes, from the state as it is now.
    fn plan(&self) -> Result<Plan, Error> {
        let config = self.config();
        let state = self.state();
        let now = SystemTime::now();
        let max_age = state.max_age.unwrap_or(config.max_age);
        let expires_at = now + max_age;
        let mut changes = ChangeSet {
            set: Vec::new(),
            remove: Vec::new(),
            expires_at,
            max_age: if state.max_age_changed {
                MaxAgeUpdate::Set(state.max_age)
            } else {
                MaxAgeUpdate::Keep
            },
        };
        for (_, slot) in &state.slots {
            slot.collect(&mut changes)?;
        }
        let changed = !changes.has_no_field_changes() || state.max_age_changed;
        let mut plan = Plan {
            discard: state.discard.clone(),
            rename: None,
            write: None,
            cookie: None,
        };

        let new_id = || -> Result<(SessionId, StoreKey), Error> {
            let id = config.id_generator.generate()?;
            let key = StoreKey::for_id(&config.key_prefix, &id);
            Ok((id, key))
        };
        let ((id, key), extend) = match &state.stored {
            // Stored: a write or a new id must re-send the cookie; otherwise
            // only `rolling` or a due `renew` extend it.
            Some(stored) => {
                let left = stored.expires_at.duration_since(now).unwrap_or_default();
                let extend = changed
                    || state.regenerate
                    || config.rolling
                    || (config.renew && left < max_age / 2);
                if state.regenerate {
                    let (id, key) = new_id()?;
                    plan.rename = Some((stored.key.clone(), key.clone()));
                    ((id, key), extend)
                } else {
                    ((stored.id.clone(), stored.key.clone()), extend)
                }
            }
            // New: stored only once it holds something.
            None if changed => (new_id()?, true),
            None => {
                if plan.discard.is_some() {
                    plan.cookie = Some(config.removal_cookie());
                }
                return Ok(plan);
            }
        };
        if extend {
            plan.cookie = Some(config.cookie(
                id.as_str(),
                config.cookie_max_age(max_age, state.max_age.is_some()),
            ));
            plan.write = Some(Write {
                to: Stored {
                    id,
                    key,
                    expires_at,
                },
                changes: changed.then_some(changes),
            });
        }
        Ok(plan)
    }

    async fn execute(&self, plan: &Plan) -> Result<(), Error> {
        let store = self.manager().store();
        if let Some(key) = &plan.discard {
            self.within_limit(StoreOp::Delete, store.delete(key))
                .await?;
        }
        if let Some((from, to)) = &plan.rename {
            self.within_limit(StoreOp::ChangeKey, store.change_key(from, to))
                .await?;
        }
        match &plan.write {
            Some(Write {
                to,
                changes: Some(changes),
            }) => {
                self.within_limit(StoreOp::Commit, store.commit(&to.key, changes))
                    .await
            }
            Some(Write { to, changes: None }) => {
                self.within_limit(StoreOp::Touch, store.touch(&to.key, to.expires_at))
                    .await
            }
            None => Ok(()),
        }
    }

    /// Runs one store operation under the configured time limit.
    async fn within_limit<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, Error>>,
    ) -> Result<T, Error> {
        match self.config().store_timeout {
            Some(after) => tokio::time::timeout(after, call)
                .await
                .unwrap_or(Err(Error::StoreTimeout { op, after })),
            None => call.await,
        }
    }
}

impl fmt::Debug for RequestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSession")
            .field(
                "presented_id",
                &self.inner.presented_id.as_ref().map(|_| ".."),
            )
            .field("loaded", &self.inner.state.initialized())
            .finish_non_exhaustive()
    }
}

/// Locks `mutex`, ignoring poisoning: session state stays consistent between
/// statements, so a panic elsewhere never makes it unusable.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
