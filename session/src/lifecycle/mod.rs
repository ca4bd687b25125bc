//! The session lifecycle, independent of any web framework: load the session
//! a request presents, hand out typed handles, commit the changes once and
//! say which cookie the response must carry.
//!
//! An integration calls [`SessionManager::start_from_cookies`] when a request
//! arrives, keeps the [`RequestSession`] where handlers can reach it, and
//! calls [`RequestSession::finish`] once the handler has produced its
//! response.
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
//! let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default())?;
//!
//! // A first request: no cookie yet.
//! let request = sessions.start(None);
//! let visits = request.session::<Visits>().await?;
//! visits.set_count(visits.count() + 1);
//! let finished = request.finish().await;
//! finished.result?;
//! let cookie = finished.cookie.expect("the first write sets a cookie");
//!
//! // The next request presents that cookie's value.
//! let request = sessions.start(Some(cookie.value().to_owned()));
//! assert_eq!(request.session::<Visits>().await?.count(), 1);
//! let finished = request.finish().await;
//! assert!(finished.result.is_ok() && finished.cookie.is_none(), "nothing changed: no write, no cookie");
//! # Ok(())
//! # }
//! ```
//!
//! # When requests of one session race
//!
//! Each commit carries only the request's changes and a precondition (see
//! [`store`](crate::store)), so:
//!
//! - Two requests that change different fields both keep their change.
//! - A request that loaded a session which another request then destroyed
//!   or regenerated (or which expired meanwhile) writes nothing: its changes
//!   are dropped, [`SessionEvent::Gone`] is reported, and its response sends
//!   no cookie. The old id never comes back, and it never leads to the new
//!   one.
//! - A commit never moves a session's expiry earlier unless it changes the
//!   session's max-age.
//!
//! # Cookie-only sessions
//!
//! [`SessionManager::cookie_only`] keeps each session whole in its client's
//! cookie, encrypted and authenticated with the configured
//! [`private`](SessionConfig::private) keys (which rotate as usual), with its
//! expiry sealed inside: a cookie replayed after that expiry is refused
//! ([`SessionEvent::Expired`]) whatever the client kept. No store is used;
//! the handle, accessors, hooks and events are the same.
//!
//! What this mode cannot do, because the server keeps nothing:
//!
//! - End a session early. `destroy()` and `regenerate()` replace the
//!   client's cookie (`regenerate()` draws a new id inside it), but a copy of
//!   the old cookie stays valid until its sealed expiry. Keep lifetimes
//!   short, and rotate the keys to end every session at once.
//! - List or revoke a user's sessions: those calls fail with
//!   [`Error::CookieOnly`].
//! - Merge concurrent requests: each response carries the whole session, so
//!   the client keeps whichever cookie arrives last.
//! - Hold more than a browser keeps in one cookie, 4096 bytes with name and
//!   attributes, of which encryption and encoding take about half: a
//!   commit that would exceed it fails with [`Error::CookieTooLarge`],
//!   naming the size and the largest fields, and no cookie is sent.

mod cookie_only;
mod owners;
pub(crate) mod plan;
pub(crate) mod slot;
pub(crate) mod state;

use std::any::TypeId;
use std::cell::Cell;
use std::collections::HashMap;
use std::fmt;
use std::fmt::Write as _;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, SystemTime};

use cookie::Cookie;
use tokio::sync::OnceCell;

pub use owners::LiveSession;

use crate::config::SessionConfig;
use crate::cookie::{
    decode_value, encode_value, presented, presented_in_header, session_cookie, Presented,
    Protection, MAX_PRESENTED,
};
use crate::data::SessionSchema;
use crate::error::{Error, StoreOp};
use crate::event::{InvalidCookie, SessionEvent};
use crate::id::{PublicId, StoreKey};
use crate::store::{BoxError, IntoSharedStore, SessionStore};
use cookie_only::{ClientStore, Closed, Opened};
use plan::execute;
use slot::Slot;
use state::{CookieChange, State};

/// A store and a configuration: what every request's session is made from.
/// Cheap to clone.
#[derive(Clone, Debug)]
pub struct SessionManager {
    inner: Arc<ManagerInner>,
}

#[derive(Debug)]
struct ManagerInner {
    backend: Backend,
    config: SessionConfig,
    schemas: RwLock<Schemas>,
}

/// Where a manager's sessions live.
#[derive(Debug)]
enum Backend {
    Store(Arc<dyn SessionStore>),
    /// In the client's cookie, sealed with the configured private keys.
    Cookie,
}

/// The store one request's session is loaded from and committed to.
#[derive(Debug)]
enum RequestStore {
    Shared(Arc<dyn SessionStore>),
    /// Cookie-only: the request's own session, sealed into its cookie.
    Client(ClientStore),
}

impl RequestStore {
    fn get(&self) -> &dyn SessionStore {
        match self {
            Self::Shared(store) => &**store,
            Self::Client(client) => client,
        }
    }
}

/// The session structs used with a manager so far, and who owns each key.
#[derive(Debug, Default)]
struct Schemas {
    types: Vec<TypeId>,
    keys: HashMap<&'static str, &'static str>,
}

impl SessionManager {
    /// Sessions kept in `store`, living by `config`: a store, or one the
    /// application shares (an `Arc` of it, kept to run
    /// [`spawn_cleanup`](crate::store::spawn_cleanup) on it, say; or what
    /// [`store::open`](crate::store::open) returns). Fails with
    /// [`Error::InvalidConfig`] when an option would make a broken cookie.
    pub fn new(store: impl IntoSharedStore, config: SessionConfig) -> Result<Self, Error> {
        Self::with_backend(Backend::Store(store.into_shared()), config)
    }

    /// Cookie-only sessions: each session lives whole in its client's
    /// cookie, encrypted with the configured [`private`](SessionConfig::private)
    /// keys (which this mode requires), and no store is used. The handle,
    /// the accessors, the hooks and the events are the same; see the
    /// [module docs](self#cookie-only-sessions) for what this mode cannot
    /// do.
    pub fn cookie_only(config: SessionConfig) -> Result<Self, Error> {
        if !matches!(config.protection, Protection::Private(_)) {
            config.validate()?;
            return Err(Error::InvalidConfig {
                option: "keys",
                reason:
                    "cookie-only sessions need `private` keys: the whole session is in the cookie",
            });
        }
        Self::with_backend(Backend::Cookie, config)
    }

    fn with_backend(backend: Backend, config: SessionConfig) -> Result<Self, Error> {
        config.validate()?;
        Ok(Self {
            inner: Arc::new(ManagerInner {
                backend,
                config,
                schemas: RwLock::default(),
            }),
        })
    }

    /// The store, or `None` for cookie-only sessions.
    pub fn store(&self) -> Option<&Arc<dyn SessionStore>> {
        match &self.inner.backend {
            Backend::Store(store) => Some(store),
            Backend::Cookie => None,
        }
    }

    /// The store, for an operation that needs one (`what` says what it does,
    /// for the error cookie-only sessions give).
    pub(crate) fn shared_store(&self, what: &'static str) -> Result<&Arc<dyn SessionStore>, Error> {
        self.store().ok_or(Error::CookieOnly { what })
    }

    /// The configuration.
    pub fn config(&self) -> &SessionConfig {
        &self.inner.config
    }

    /// Begins one request's session from its headers: `header_lines(name)`
    /// gives the request's lines of the header `name` (lowercase), as bytes.
    /// The id is read from the `Cookie` lines, or from the configured
    /// [`id_header`](SessionConfig::id_header). What an integration calls;
    /// it pairs with [`response_header`](Self::response_header).
    pub fn start_from_headers<'a, I>(&self, header_lines: impl Fn(&str) -> I) -> RequestSession
    where
        I: IntoIterator<Item = &'a [u8]>,
    {
        let config = self.config();
        let presented = match &config.id_header {
            Some(name) => presented_in_header(header_lines(name)),
            None => presented(&config.cookie_name, header_lines("cookie")),
        };
        let headers = config
            .hook_headers
            .iter()
            .flat_map(|name| {
                let lines = header_lines(name).into_iter();
                lines.map(move |line| (name.clone(), line.to_vec()))
            })
            .collect();
        self.start_with(presented, headers)
    }

    /// The response header that hands the client `cookie` (from
    /// [`Finished::cookie`]): `Set-Cookie` with the whole cookie, or the
    /// configured [`id_header`](SessionConfig::id_header) with its value
    /// (empty when the session ended). Name lowercase, then value.
    pub fn response_header(&self, cookie: &Cookie<'_>) -> (&str, String) {
        match &self.config().id_header {
            Some(name) => (name, cookie.value().to_owned()),
            None => {
                // Sized for a typical session cookie: no regrowth while
                // `Display` writes it piece by piece.
                let mut header = String::with_capacity(192);
                let _ = write!(header, "{cookie}");
                ("set-cookie", header)
            }
        }
    }

    /// Begins one request's session from the session cookies among the
    /// request's `Cookie` header lines (as bytes, as they arrived). Nothing is
    /// loaded until a handler asks for the session.
    pub fn start_from_cookies<'a>(
        &self,
        cookie_headers: impl IntoIterator<Item = &'a [u8]>,
    ) -> RequestSession {
        self.start(presented(&self.config().cookie_name, cookie_headers))
    }

    /// Begins one request's session from the cookie values the client
    /// presented, in the order it sent them; the first that names a live
    /// session is used (at most four are tried).
    pub fn start(&self, presented: impl IntoIterator<Item = String>) -> RequestSession {
        self.start_with(presented, Vec::new())
    }

    fn start_with(
        &self,
        presented: impl IntoIterator<Item = String>,
        headers: Vec<(String, Vec<u8>)>,
    ) -> RequestSession {
        let store = match &self.inner.backend {
            Backend::Store(store) => RequestStore::Shared(Arc::clone(store)),
            Backend::Cookie => RequestStore::Client(ClientStore::default()),
        };
        RequestSession {
            inner: Arc::new(RequestInner {
                manager: self.clone(),
                store,
                presented: presented.into_iter().take(MAX_PRESENTED).collect(),
                headers,
                state: OnceCell::new(),
                validated: OnceCell::new(),
                saving: AtomicBool::new(false),
                commit: tokio::sync::Mutex::new(()),
                cookie: Mutex::new(None),
            }),
        }
    }

    /// Runs one store operation under the configured time limit.
    pub(crate) async fn call<T>(
        &self,
        op: StoreOp,
        call: impl Future<Output = Result<T, BoxError>>,
    ) -> Result<T, Error> {
        plan::call(self.config(), op, call).await
    }

    /// Admits `T` to this manager's sessions, unless one of its stored keys
    /// already belongs to another struct.
    fn admit<T: SessionSchema>(&self) -> Result<(), Error> {
        let type_id = TypeId::of::<T>();
        let schemas = &self.inner.schemas;
        if read(schemas).types.contains(&type_id) {
            return Ok(());
        }
        let mut schemas = schemas.write().unwrap_or_else(PoisonError::into_inner);
        if schemas.types.contains(&type_id) {
            return Ok(());
        }
        let name = std::any::type_name::<T>();
        for key in T::FIELDS.iter().flat_map(|field| field.keys()) {
            if let Some(first) = schemas.keys.get(key) {
                return Err(Error::KeyClash {
                    key,
                    first,
                    second: name,
                });
            }
        }
        for key in T::FIELDS.iter().flat_map(|field| field.keys()) {
            schemas.keys.insert(key, name);
        }
        schemas.types.push(type_id);
        Ok(())
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
    store: RequestStore,
    /// Cookie values the client presented, in order.
    presented: Vec<String>,
    /// The request's lines of the headers the hooks read
    /// ([`SessionConfig::hook_headers`]): name, value.
    headers: Vec<(String, Vec<u8>)>,
    state: OnceCell<Mutex<State>>,
    /// Set once the `valid` hook has judged the loaded session.
    validated: OnceCell<()>,
    /// Whether the `before_save` hook is running (a `save()` it calls must
    /// not run it again).
    saving: AtomicBool,
    /// Serialises commits, so a `save()` racing the final commit cannot
    /// interleave store writes.
    commit: tokio::sync::Mutex<()>,
    /// The cookie the response must carry, from the latest commit that
    /// prepared one.
    cookie: Mutex<Option<Cookie<'static>>>,
}

/// How a request's session ended: [`RequestSession::finish`]'s answer.
#[must_use = "the cookie must reach the response, and a failed commit must not pass for success"]
pub struct Finished {
    /// The `Set-Cookie` the response must carry, if any. It is there even
    /// when the final commit failed, if an earlier `save()` prepared it: the
    /// store holds that session under the cookie's id.
    pub cookie: Option<Cookie<'static>>,
    /// Whether the final commit succeeded.
    pub result: Result<(), Error>,
}

/// The cookie's value is the session's id: shown as `..`, like every id.
impl fmt::Debug for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let cookie = self.cookie.as_ref().map(|cookie| {
            let mut shown = cookie.clone();
            shown.set_value("..");
            shown
        });
        f.debug_struct("Finished")
            .field("cookie", &cookie)
            .field("result", &self.result)
            .finish()
    }
}

impl RequestSession {
    /// The manager this request's session comes from.
    pub fn manager(&self) -> &SessionManager {
        &self.inner.manager
    }

    pub(crate) fn config(&self) -> &SessionConfig {
        self.manager().config()
    }

    /// The index of `T`'s slot in the request's state, loading the session
    /// (and having the `valid` hook judge it) on first use.
    pub(crate) async fn slot<T: SessionSchema>(&self) -> Result<usize, Error> {
        let index = self.loaded_slot::<T>().await?;
        self.inner.validated.get_or_init(|| self.validate()).await;
        Ok(index)
    }

    /// The index of `T`'s slot, loading the session on first use, unjudged.
    pub(crate) async fn loaded_slot<T: SessionSchema>(&self) -> Result<usize, Error> {
        self.manager().admit::<T>()?;
        let state = self.inner.state.get_or_try_init(|| self.load()).await?;
        Ok(lock(state).slot_index::<T>())
    }

    /// Has the `valid` hook judge a session loaded from the store; a refused
    /// one is replaced by a fresh session (slots reset in place, so handles
    /// the hook made stay sound).
    async fn validate(&self) {
        let Some(hook) = &self.config().valid else {
            return;
        };
        if self.is_new() {
            return;
        }
        if !hook(LoadedSession(self.clone())).await {
            self.state().reject();
            self.config()
                .emit(SessionEvent::Invalid(InvalidCookie::Rejected));
        }
    }

    /// Runs `f` on `T`'s slot under the state's lock. `f` is the crate's own
    /// code, never the user's: user code never runs while the lock is held.
    pub(crate) fn with_slot<T: SessionSchema, R>(
        &self,
        index: usize,
        f: impl FnOnce(&mut Slot<T>) -> R,
    ) -> R {
        f(self.state().slot_mut(index))
    }

    /// The first presented id that names a live session, or a fresh session.
    async fn load(&self) -> Result<Mutex<State>, Error> {
        let config = self.config();
        let mut missed = false;
        for presented in &self.inner.presented {
            let opened = match &self.inner.store {
                RequestStore::Shared(_) => decode_value(config, presented)
                    .map(|Presented { id, old_key }| {
                        let key = StoreKey::for_id(&config.key_prefix, &id);
                        (id, key, old_key)
                    })
                    .map_err(SessionEvent::Invalid),
                RequestStore::Client(client) => client
                    .open(config, presented)
                    .map(|Opened { id, key, old_key }| (id, key, old_key))
                    .map_err(|closed| match closed {
                        Closed::Invalid(why) => SessionEvent::Invalid(why),
                        Closed::Expired => SessionEvent::Expired,
                    }),
            };
            let (id, key, old_key) = match opened {
                Ok(opened) => opened,
                Err(event) => {
                    config.emit(event);
                    continue;
                }
            };
            let store = self.inner.store.get();
            match self.manager().call(StoreOp::Load, store.load(&key)).await? {
                Some(record) => {
                    return Ok(Mutex::new(State::loaded(id, key, record, old_key)));
                }
                None => {
                    missed = true;
                    config.emit(SessionEvent::Missed {
                        session: PublicId::of(&key),
                    });
                }
            }
        }
        // Cookies that can never name a session are withdrawn, so the client
        // stops sending them. An id that names none *now* is not: it may be
        // the one a racing request just regenerated away, and withdrawing it
        // could delete the new cookie that request sent first.
        let refused = !self.inner.presented.is_empty() && !missed;
        Ok(Mutex::new(State::fresh().withdrawing(refused)))
    }

    /// The loaded state; handles exist only after a load, so it is there.
    fn state(&self) -> MutexGuard<'_, State> {
        assert!(
            !READING.get(),
            "a session was used inside the closure of a `with_` reader, which runs under the \
             session's lock; read what the closure needs before calling the reader"
        );
        let state = self.inner.state.get();
        lock(state.unwrap_or_else(|| unreachable!("a handle exists only after the session loaded")))
    }

    /// The request's first line of the header `name`, if it is one of the
    /// [`hook_headers`](SessionConfig::hook_headers) and valid UTF-8: what
    /// the hooks read of the request.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.inner
            .headers
            .iter()
            .filter(|(held, _)| held.eq_ignore_ascii_case(name))
            .find_map(|(_, value)| std::str::from_utf8(value).ok())
    }

    pub(crate) fn is_new(&self) -> bool {
        self.state().is_new()
    }

    pub(crate) fn destroy(&self) {
        self.state().destroy();
    }

    pub(crate) fn regenerate(&self) {
        self.state().regenerate();
    }

    pub(crate) fn touch(&self) {
        self.state().touch();
    }

    pub(crate) fn set_max_age(&self, max_age: Option<Duration>) {
        self.state().set_max_age(max_age);
    }

    pub(crate) fn max_age(&self) -> Option<Duration> {
        self.state().max_age_override()
    }

    pub(crate) fn expires_at(&self) -> Option<SystemTime> {
        self.state().expires_at()
    }

    pub(crate) fn owner(&self) -> Option<String> {
        self.state().owner().map(|owner| owner.to_string())
    }

    pub(crate) fn set_owner(&self, owner: Option<&str>) {
        self.state().set_owner(owner);
    }

    pub(crate) fn public_id(&self) -> Option<PublicId> {
        self.state().lasting_key().map(PublicId::of)
    }

    /// Deletes every other session of this session's owner.
    pub(crate) async fn revoke_other_sessions(&self) -> Result<u64, Error> {
        let (owner, keep) = {
            let state = self.state();
            (state.owner().cloned(), state.stored_key().cloned())
        };
        let Some(owner) = owner else { return Ok(0) };
        let store = self.manager().shared_store("revoked")?;
        let revoke = store.delete_owned(&owner, keep.as_ref());
        self.manager().call(StoreOp::DeleteOwned, revoke).await
    }

    /// Commits now; see `Session::save`.
    pub(crate) async fn save(&self) -> Result<(), Error> {
        self.commit(false).await
    }

    /// Commits; `last` says the request ends with this commit.
    async fn commit(&self, last: bool) -> Result<(), Error> {
        if let Some(hook) = &self.config().before_save {
            let used = self.inner.state.initialized();
            if used && !self.inner.saving.swap(true, Ordering::AcqRel) {
                hook(self.clone()).await;
                self.inner.saving.store(false, Ordering::Release);
            }
        }
        let _one_at_a_time = self.inner.commit.lock().await;
        let Some(state) = self.inner.state.get() else {
            return Ok(());
        };
        let config = self.config();
        let (plan, in_flight) = {
            let mut state = lock(state);
            let planned = state.plan(config)?;
            // No handle is left to read the record: let the store have it.
            if last && Arc::strong_count(&self.inner) == 1 {
                state.release_record();
            }
            planned
        };
        let outcome = execute(self.inner.store.get(), config, &plan).await;
        let change = lock(state).settle(in_flight, &outcome, config);
        // A last commit that only extends loses nothing by failing: it must
        // not turn the handler's response into an error a client retries.
        let outcome = match (outcome, plan.touched()) {
            (Err(error), Some(key)) if last => {
                config.emit(SessionEvent::TouchFailed {
                    session: PublicId::of(key),
                    error,
                });
                Ok(plan::Executed::Nothing)
            }
            (outcome, _) => outcome,
        };
        match change {
            Some(CookieChange::Send(cookie)) => *lock(&self.inner.cookie) = Some(cookie),
            Some(CookieChange::Issue { id, ttl }) => {
                let cookie = match &self.inner.store {
                    RequestStore::Shared(_) => {
                        session_cookie(config, encode_value(config, &id), ttl)
                    }
                    RequestStore::Client(client) => client.sealed_cookie(config, &id, ttl)?,
                };
                *lock(&self.inner.cookie) = Some(cookie);
            }
            Some(CookieChange::Withdraw(gone)) => {
                *lock(&self.inner.cookie) = None;
                if let Some(key) = gone {
                    config.emit(SessionEvent::Gone {
                        session: PublicId::of(&key),
                    });
                }
            }
            None => {}
        }
        outcome.map(drop)
    }

    /// Ends the request: commits (unless auto-commit is off) and says which
    /// `Set-Cookie` the response must carry. A session the request never
    /// loaded costs nothing here.
    pub async fn finish(&self) -> Finished {
        let result = match self.config().auto_commit {
            true => self.commit(true).await,
            false => Ok(()),
        };
        Finished {
            cookie: lock(&self.inner.cookie).take(),
            result,
        }
    }
}

/// A session just loaded from the store, as the
/// [`valid`](SessionConfig::valid) hook sees it.
#[derive(Debug, Clone)]
pub struct LoadedSession(RequestSession);

impl LoadedSession {
    /// The request the session was loaded for.
    pub(crate) fn request(&self) -> &RequestSession {
        &self.0
    }

    /// The request's first line of the header `name`, if it is one of the
    /// [`hook_headers`](SessionConfig::hook_headers) and valid UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.0.header(name)
    }
}

impl fmt::Debug for RequestSession {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestSession")
            .field("presented", &self.inner.presented.len())
            .field("loaded", &self.inner.state.initialized())
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// Set while the application's closure of a `with_` reader runs, under
    /// the state's lock: the session used there would deadlock.
    static READING: Cell<bool> = const { Cell::new(false) };
}

/// Runs `read`, the closure of a `with_` reader, marked as such.
pub(crate) fn reading<R>(read: impl FnOnce() -> R) -> R {
    struct Unmark;
    impl Drop for Unmark {
        fn drop(&mut self) {
            READING.set(false);
        }
    }
    READING.set(true);
    let _unmark = Unmark;
    read()
}

/// Locks `mutex`, ignoring poisoning: session state stays consistent between
/// statements, so a panic elsewhere never makes it unusable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(PoisonError::into_inner)
}
