//! Options of the session lifecycle and its cookie.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use cookie::SameSite;

use crate::cookie::Protection;
use crate::error::Error;
use crate::event::SessionEvent;
use crate::id::IdGenerator;
use crate::lifecycle::{LoadedSession, RequestSession};
use crate::store::MAX_LIFETIME;

const ONE_DAY: Duration = Duration::from_secs(24 * 60 * 60);
/// The shortest lifetime a live session may have: its cookie's `Max-Age`
/// counts whole seconds, and `Max-Age=0` makes a browser drop it at once.
pub(crate) const MIN_MAX_AGE: Duration = Duration::from_secs(1);

/// How sessions live and how their cookie looks. Start from
/// [`SessionConfig::default()`] and change what you need:
///
/// ```
/// use std::time::Duration;
/// use session::{SameSite, SessionConfig};
///
/// let config = SessionConfig::default()
///     .cookie_name("shop")
///     .max_age(Duration::from_secs(2 * 60 * 60))
///     .same_site(SameSite::Strict)
///     .renew(true);
/// ```
///
/// Values that would make a broken or injected `Set-Cookie` are refused when
/// the [`SessionManager`](crate::SessionManager) or
/// [`SessionLayer`](crate::SessionLayer) is built, with
/// [`Error::InvalidConfig`] naming the option.
#[derive(Clone)]
pub struct SessionConfig {
    // `Cow`: the usual literal names go into every cookie uncopied.
    pub(crate) cookie_name: Cow<'static, str>,
    pub(crate) path: Cow<'static, str>,
    pub(crate) domain: Option<String>,
    pub(crate) secure: bool,
    pub(crate) http_only: bool,
    pub(crate) same_site: SameSite,
    pub(crate) partitioned: bool,
    pub(crate) max_age: Duration,
    pub(crate) browser_session: bool,
    pub(crate) rolling: bool,
    pub(crate) renew: bool,
    pub(crate) auto_commit: bool,
    pub(crate) store_timeout: Option<Duration>,
    pub(crate) id_generator: IdGenerator,
    pub(crate) key_prefix: String,
    pub(crate) protection: Protection,
    /// The header ids travel in instead of a cookie, lowercase.
    pub(crate) id_header: Option<String>,
    store_failure_status: u16,
    on_event: Option<EventHook>,
    pub(crate) valid: Option<ValidHook>,
    pub(crate) before_save: Option<BeforeSaveHook>,
    /// The request headers hooks may read, lowercase.
    pub(crate) hook_headers: Vec<String>,
}

type EventHook = Arc<dyn Fn(&SessionEvent) + Send + Sync>;
type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
pub(crate) type ValidHook = Arc<dyn Fn(LoadedSession) -> BoxFuture<bool> + Send + Sync>;
pub(crate) type BeforeSaveHook = Arc<dyn Fn(RequestSession) -> BoxFuture<()> + Send + Sync>;

impl Default for SessionConfig {
    /// Cookie `session` on path `/`, `HttpOnly`, `Secure`, `SameSite=Lax`;
    /// sessions last one day from their last write; auto-commit on.
    fn default() -> Self {
        Self {
            cookie_name: "session".into(),
            path: "/".into(),
            domain: None,
            secure: true,
            http_only: true,
            same_site: SameSite::Lax,
            partitioned: false,
            max_age: ONE_DAY,
            browser_session: false,
            rolling: false,
            renew: false,
            auto_commit: true,
            store_timeout: Some(Duration::from_secs(5)),
            id_generator: IdGenerator::Random,
            key_prefix: String::new(),
            protection: Protection::Plain,
            id_header: None,
            store_failure_status: 503,
            on_event: None,
            valid: None,
            before_save: None,
            hook_headers: Vec::new(),
        }
    }
}

impl SessionConfig {
    /// The cookie's name (default `session`).
    pub fn cookie_name(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.cookie_name = name.into();
        self
    }

    /// The cookie's `Path` (default `/`).
    pub fn path(mut self, path: impl Into<Cow<'static, str>>) -> Self {
        self.path = path.into();
        self
    }

    /// The cookie's `Domain` (default none: this host only).
    pub fn domain(mut self, domain: impl Into<String>) -> Self {
        self.domain = Some(domain.into());
        self
    }

    /// Whether the cookie is `Secure`, sent over HTTPS only (default `true`;
    /// turn it off for plain-HTTP development).
    pub fn secure(mut self, secure: bool) -> Self {
        self.secure = secure;
        self
    }

    /// Whether the cookie is `HttpOnly`, hidden from scripts (default `true`).
    pub fn http_only(mut self, http_only: bool) -> Self {
        self.http_only = http_only;
        self
    }

    /// The cookie's `SameSite` (default `Lax`).
    pub fn same_site(mut self, same_site: SameSite) -> Self {
        self.same_site = same_site;
        self
    }

    /// Whether the cookie is `Partitioned` (CHIPS; default `false`).
    pub fn partitioned(mut self, partitioned: bool) -> Self {
        self.partitioned = partitioned;
        self
    }

    /// How long a session lives after its last write (default one day, at
    /// least one second, at most 400 days). With [`rolling`](Self::rolling) or
    /// [`renew`](Self::renew), reads extend it too.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age.min(MAX_LIFETIME);
        self
    }

    /// Sends a browser-session cookie (no `Max-Age`), which the browser drops
    /// when it closes (default `false`). The store still expires the session
    /// after `max_age`. A session with its own max-age ("remember me") gets a
    /// persistent cookie regardless.
    pub fn browser_session(mut self, browser_session: bool) -> Self {
        self.browser_session = browser_session;
        self
    }

    /// Extends the session and re-sends the cookie on every request that
    /// loads it (default `false`).
    pub fn rolling(mut self, rolling: bool) -> Self {
        self.rolling = rolling;
        self
    }

    /// Extends the session and re-sends the cookie when a request loads it
    /// with less than half of its max-age left (default `false`).
    pub fn renew(mut self, renew: bool) -> Self {
        self.renew = renew;
        self
    }

    /// Whether the session commits by itself at the end of the request
    /// (default `true`). When off, only `Session::save` writes.
    pub fn auto_commit(mut self, auto_commit: bool) -> Self {
        self.auto_commit = auto_commit;
        self
    }

    /// How long one store operation may take before it fails with
    /// [`Error::StoreTimeout`](crate::Error::StoreTimeout) (default five
    /// seconds; `None` waits forever). A store that hangs then costs a request
    /// an error, not the whole server its connections.
    pub fn store_timeout(mut self, limit: Option<Duration>) -> Self {
        self.store_timeout = limit;
        self
    }

    /// Makes session ids with `generate` instead of 256 random bits. Its ids
    /// must be unguessable and 1 to 256 URL-safe characters (`A-Z a-z 0-9 - _ . ~`);
    /// a commit with any other id fails with
    /// [`Error::InvalidGeneratedId`](crate::Error::InvalidGeneratedId).
    pub fn id_generator(mut self, generate: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.id_generator = IdGenerator::Custom(Arc::new(generate));
        self
    }

    /// Prefixes every store key, so several applications can share a store
    /// (default none).
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// Signs the session cookie with HMAC-SHA256 under `keys`, each at least
    /// 64 bytes of random data: the first signs, every one verifies. To
    /// rotate, put a new key first and keep the old ones until the cookies
    /// they signed have expired; a client presenting a cookie signed with an
    /// old key gets one signed with the new key in that response. A cookie
    /// that does not verify is ignored (a fresh session starts, and
    /// [`SessionEvent::Invalid`] is reported). Keys that are too short, or
    /// none, are refused with [`Error::InvalidConfig`] when the manager is
    /// built.
    ///
    /// ```
    /// # use session::SessionConfig;
    /// let current = [7u8; 64]; // from a secret store, in a real application
    /// let previous = [9u8; 64];
    /// let config = SessionConfig::default().signed([current, previous]);
    /// ```
    pub fn signed<K: AsRef<[u8]>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.protection = Protection::with_keys(keys, Protection::Signed);
        self
    }

    /// Encrypts the session cookie (AES-256-GCM, authenticated and bound to
    /// the cookie's name) under `keys`, with the same rotation and rules as
    /// [`signed`](Self::signed): the first encrypts, every one decrypts.
    pub fn private<K: AsRef<[u8]>>(mut self, keys: impl IntoIterator<Item = K>) -> Self {
        self.protection = Protection::with_keys(keys, Protection::Private);
        self
    }

    /// Carries the session id in the request header `name` and back in the
    /// response header of the same name, instead of a cookie (koa-session's
    /// `externalKey`), for API and mobile clients that keep the id
    /// themselves. The value is the same as the cookie's would be, signed or
    /// encrypted if so configured; a response sends it whenever a cookie
    /// would be sent, and an empty value tells the client to forget its id
    /// (the session ended). Cookie attributes do not apply. A browser app
    /// reading it cross-origin must expose it with CORS
    /// (`Access-Control-Expose-Headers`).
    ///
    /// ```
    /// # use session::SessionConfig;
    /// let api = SessionConfig::default().id_header("x-session-id");
    /// ```
    pub fn id_header(mut self, name: impl Into<String>) -> Self {
        self.id_header = Some(name.into().to_ascii_lowercase());
        self
    }

    /// The HTTP status the integrations answer when the store fails or times
    /// out, while loading a session for a handler or committing it (default
    /// `503 Service Unavailable`; any `4xx` or `5xx`). Other session errors
    /// answer `500`. The body is empty: the details go to the log.
    pub fn store_failure_status(mut self, status: u16) -> Self {
        self.store_failure_status = status;
        self
    }

    /// The HTTP status an integration answers for `error`.
    #[cfg(any(feature = "tower", feature = "actix"))]
    pub(crate) fn status_for(&self, error: &Error) -> u16 {
        match error {
            Error::Store { .. } | Error::StoreTimeout { .. } => self.store_failure_status,
            _ => error.status(),
        }
    }

    /// Calls `hook` for every [`SessionEvent`], besides logging it.
    pub fn on_event(mut self, hook: impl Fn(&SessionEvent) + Send + Sync + 'static) -> Self {
        self.on_event = Some(Arc::new(hook));
        self
    }

    /// Has `hook` judge every session a request loads from the store, before
    /// any handler sees it (koa-session's `valid`): when it answers `false`,
    /// the request goes on with a fresh session, as if none had been
    /// presented, and [`SessionEvent::Invalid`] (`Rejected`) is reported.
    /// The rejected session stays in the store. The hook reads the loaded
    /// session through [`LoadedSession::session`].
    ///
    /// ```
    /// # use session::{Session, SessionConfig};
    /// #[derive(Session, Default)]
    /// struct Auth {
    ///     user: Option<String>,
    ///     /// The user agent the session was made for.
    ///     agent: Option<String>,
    /// }
    ///
    /// // Sessions older than the "Auth" struct's current shape: refuse them.
    /// let config = SessionConfig::default().valid(|loaded| async move {
    ///     match loaded.session::<Auth>().await {
    ///         Ok(auth) => auth.user().is_none() || auth.agent().is_some(),
    ///         Err(_) => false,
    ///     }
    /// });
    /// ```
    pub fn valid<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(LoadedSession) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = bool> + Send + 'static,
    {
        self.valid = Some(Arc::new(move |loaded| Box::pin(hook(loaded))));
        self
    }

    /// Runs `hook` before every commit of a session the request used,
    /// changed or not (koa-session's `beforeSave`): it may read and change
    /// the session through [`RequestSession::session`], and what it changes
    /// is committed with the rest. A `save()` called from the hook commits
    /// without running it again.
    pub fn before_save<F, Fut>(mut self, hook: F) -> Self
    where
        F: Fn(RequestSession) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.before_save = Some(Arc::new(move |request| Box::pin(hook(request))));
        self
    }

    /// Lets the hooks read the request headers `names` (koa's hooks get the
    /// whole request): [`RequestSession::header`] and
    /// [`LoadedSession::header`] answer for these names only, since the
    /// integrations hand over just them and a request pays for no others.
    ///
    /// ```
    /// # use session::{Session, SessionConfig};
    /// #[derive(Session, Default)]
    /// struct Auth {
    ///     user: Option<String>,
    ///     /// The user agent the user logged in with.
    ///     agent: Option<String>,
    /// }
    ///
    /// // A session whose user agent changed is refused: a fresh one instead.
    /// let config = SessionConfig::default()
    ///     .hook_headers(["user-agent"])
    ///     .valid(|loaded| async move {
    ///         let Ok(auth) = loaded.session::<Auth>().await else { return false };
    ///         let agent = auth.agent();
    ///         agent.is_none() || agent.as_deref() == loaded.header("user-agent")
    ///     });
    /// ```
    pub fn hook_headers<I>(mut self, names: I) -> Self
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        self.hook_headers = names
            .into_iter()
            .map(|name| name.as_ref().to_ascii_lowercase())
            .collect();
        self
    }

    pub(crate) fn emit(&self, event: SessionEvent) {
        event.log();
        if let Some(hook) = &self.on_event {
            hook(&event);
        }
    }

    /// Refuses values that would make a broken or unsafe cookie or session,
    /// naming the option.
    pub(crate) fn validate(&self) -> Result<(), Error> {
        let invalid = |option, reason| Err(Error::InvalidConfig { option, reason });
        if self.max_age < MIN_MAX_AGE {
            return invalid(
                "max_age",
                "must be at least one second: a cookie's `Max-Age` counts whole seconds",
            );
        }
        if !(400..=599).contains(&self.store_failure_status) {
            return invalid(
                "store_failure_status",
                "must be an error status, 400 to 599",
            );
        }
        if self.store_timeout.is_some_and(|limit| limit.is_zero()) {
            return invalid(
                "store_timeout",
                "must be longer than zero (`None` waits forever)",
            );
        }
        crate::cookie::validate(self)
    }

    /// The `Max-Age` of the cookie for a session with `ttl` left and, if
    /// `custom`, a max-age of its own.
    pub(crate) fn cookie_ttl(&self, ttl: Duration, custom: bool) -> Option<Duration> {
        (custom || !self.browser_session).then_some(ttl)
    }
}

impl fmt::Debug for SessionConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionConfig")
            .field("cookie_name", &self.cookie_name)
            .field("path", &self.path)
            .field("domain", &self.domain)
            .field("secure", &self.secure)
            .field("http_only", &self.http_only)
            .field("same_site", &self.same_site)
            .field("partitioned", &self.partitioned)
            .field("max_age", &self.max_age)
            .field("browser_session", &self.browser_session)
            .field("rolling", &self.rolling)
            .field("renew", &self.renew)
            .field("auto_commit", &self.auto_commit)
            .field("store_timeout", &self.store_timeout)
            .field("id_generator", &self.id_generator)
            .field("key_prefix", &self.key_prefix)
            .field("protection", &self.protection)
            .field("id_header", &self.id_header)
            .field("store_failure_status", &self.store_failure_status)
            .field("on_event", &self.on_event.is_some())
            .field("valid", &self.valid.is_some())
            .field("before_save", &self.before_save.is_some())
            .finish_non_exhaustive()
    }
}
