//! Cookie-only sessions (koa-session's default): the whole session lives in
//! one private (encrypted) cookie, and no store is involved.
//!
//! Each request gets a [`ClientStore`]: a store of at most one session, the
//! one its cookie carries. The lifecycle runs against it exactly as against a
//! shared store (same plans, same merge and expiry rules), and after each
//! commit the session it holds is sealed into the response's cookie. The
//! session's expiry is sealed with it, so a cookie replayed after it expired
//! is refused, whatever its `Max-Age` said.
//!
//! What this mode cannot do: end a session before it expires (a copy of an
//! old cookie stays valid until its sealed expiry, even after `destroy()` or
//! `regenerate()`, which only replace the client's cookie), list or revoke a
//! user's sessions, or hold more than a browser keeps in one cookie.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use cookie::Cookie;

use crate::config::SessionConfig;
use crate::cookie::{protect, session_cookie};
use crate::error::Error;
use crate::event::InvalidCookie;
use crate::id::{SessionId, StoreKey};
use crate::store::{
    BoxError, ChangeSet, Created, Fields, Moved, OwnedSession, Record, SessionStore, StoredSession,
    Updated,
};

/// The most a browser keeps of one cookie: name, value and attributes
/// (RFC 6265 asks browsers for at least 4096 bytes, and most stop there).
pub(crate) const COOKIE_LIMIT: usize = 4096;

/// How many of the largest fields a [`Error::CookieTooLarge`] names.
const LARGEST_NAMED: usize = 3;

/// The one session of one request in cookie-only mode.
#[derive(Debug, Default)]
pub(crate) struct ClientStore {
    held: Mutex<Option<(StoreKey, StoredSession)>>,
}

/// A cookie that opened: the session it carries.
pub(crate) struct Opened {
    pub(crate) id: SessionId,
    pub(crate) key: StoreKey,
    /// Opened with a key other than the first.
    pub(crate) old_key: bool,
}

/// Why a presented cookie did not open.
pub(crate) enum Closed {
    Invalid(InvalidCookie),
    /// It opened, but the session it carries has expired.
    Expired,
}

/// What a sealed cookie holds besides the fields, as it reads them: the id,
/// the times as milliseconds since the Unix epoch (the max-age override in
/// milliseconds), the owner.
///
/// The sealed form is one MessagePack array of strings ([`Fields::pack`]):
/// these entries first, under names no field has (`.id`, `.expires`,
/// `.created`, `.updated`, and `.max_age` and `.owner` when set; numbers as
/// 8 bytes, big-endian), then the fields' names and values as they are. It
/// travels as base64url text, which the cookie crate then encrypts: so a
/// cookie costs one encoding of the session, not one per value.
#[derive(Default)]
struct Sealed {
    id: Option<String>,
    expires: Option<u64>,
    created: Option<u64>,
    updated: Option<u64>,
    max_age: Option<u64>,
    owner: Option<String>,
}

impl Sealed {
    /// Reads one of the session's own entries.
    fn read(&mut self, name: &[u8], value: &[u8]) -> Result<(), BoxError> {
        let malformed = "a sealed session is malformed";
        let number = || {
            <[u8; 8]>::try_from(value)
                .map(u64::from_be_bytes)
                .map_err(|_| malformed)
        };
        let text = || String::from_utf8(value.to_vec()).map_err(|_| malformed);
        match name {
            b".id" => self.id = Some(text()?),
            b".expires" => self.expires = Some(number()?),
            b".created" => self.created = Some(number()?),
            b".updated" => self.updated = Some(number()?),
            b".max_age" => self.max_age = Some(number()?),
            b".owner" => self.owner = Some(text()?),
            _ => return Err(malformed.into()),
        }
        Ok(())
    }
}

impl ClientStore {
    fn held(&self) -> std::sync::MutexGuard<'_, Option<(StoreKey, StoredSession)>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens a presented cookie value and holds the session it carries.
    pub(crate) fn open(&self, config: &SessionConfig, value: &str) -> Result<Opened, Closed> {
        let (plain, old_key) = crate::cookie::open(config, value).map_err(Closed::Invalid)?;
        let undecodable = || Closed::Invalid(InvalidCookie::Undecodable);
        let (id, session) = unseal(&plain).ok_or_else(undecodable)?;
        if !session.is_live(SystemTime::now()) {
            return Err(Closed::Expired);
        }
        let key = StoreKey::for_id(&config.key_prefix, &id);
        *self.held() = Some((key.clone(), session));
        Ok(Opened { id, key, old_key })
    }

    /// The cookie that carries the held session, now under `id` with `ttl`
    /// left, sealed; it must fit a browser's limit.
    pub(crate) fn sealed_cookie(
        &self,
        config: &SessionConfig,
        id: &SessionId,
        ttl: Option<Duration>,
    ) -> Result<Cookie<'static>, Error> {
        let held = self.held();
        let Some((_, session)) = held.as_ref() else {
            // A cookie is issued only after a write to this very store.
            unreachable!("a cookie-only session is issued after it was written");
        };
        let cookie = session_cookie(config, protect(config, seal(id, session)), ttl);
        let size = cookie.to_string().len();
        if size > COOKIE_LIMIT {
            let mut largest: Vec<(String, usize)> = session
                .fields
                .iter()
                .map(|(name, value)| (name.to_string(), value.len()))
                .collect();
            largest.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            largest.truncate(LARGEST_NAMED);
            return Err(Error::CookieTooLarge {
                size,
                limit: COOKIE_LIMIT,
                largest,
            });
        }
        Ok(cookie)
    }
}

/// `session` under `id`, sealed: the text the cookie crate encrypts.
fn seal(id: &SessionId, session: &StoredSession) -> String {
    let [expires, created, updated] = [session.expires_at, session.created_at, session.updated_at]
        .map(|at| millis(at).to_be_bytes());
    let max_age = session.max_age.map(|max_age| {
        u64::try_from(max_age.as_millis())
            .unwrap_or(u64::MAX)
            .to_be_bytes()
    });
    let mut own: Vec<(&str, &[u8])> = vec![
        (".id", id.as_str().as_bytes()),
        (".expires", &expires),
        (".created", &created),
        (".updated", &updated),
    ];
    if let Some(max_age) = &max_age {
        own.push((".max_age", max_age));
    }
    if let Some(owner) = session.owner.as_deref() {
        own.push((".owner", owner.as_bytes()));
    }
    URL_SAFE_NO_PAD.encode(session.fields.pack(&own))
}

/// A sealed session back in the form the merge rules work on, with its id;
/// `None` if it does not decode.
fn unseal(plain: &str) -> Option<(SessionId, StoredSession)> {
    let packed = URL_SAFE_NO_PAD.decode(plain).ok()?;
    let mut sealed = Sealed::default();
    let fields = Fields::packed(packed.into(), |name, value| sealed.read(name, value)).ok()?;
    let session = StoredSession {
        fields: Arc::new(fields),
        expires_at: time(sealed.expires?)?,
        max_age: sealed.max_age.map(Duration::from_millis),
        owner: sealed.owner.map(Arc::from),
        created_at: time(sealed.created?)?,
        updated_at: time(sealed.updated?)?,
    };
    Some((SessionId::parse(&sealed.id?)?, session))
}

fn millis(time: SystemTime) -> u64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX)
}

fn time(millis: u64) -> Option<SystemTime> {
    UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

/// Cookie-only sessions live in the client: there is nobody to ask for a
/// user's other sessions.
#[derive(Debug, thiserror::Error)]
#[error("cookie-only sessions live in the client: they cannot be listed or revoked")]
struct ClientOnly;

#[async_trait]
impl SessionStore for ClientStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        let now = SystemTime::now();
        let held = self.held();
        Ok(held
            .as_ref()
            .filter(|(held, session)| held == key && session.is_live(now))
            .map(|(_, session)| session.record(now)))
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        let now = SystemTime::now();
        let mut held = self.held();
        if let Some((held_key, session)) = held.as_ref() {
            if held_key == key && session.is_live(now) {
                return Ok(Created::KeyTaken);
            }
        }
        let session = StoredSession::create(changes, now);
        let expiry = session.expiry(now);
        *held = Some((key.clone(), session));
        Ok(Created::Written(expiry))
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        let now = SystemTime::now();
        let mut held = self.held();
        match held.as_mut() {
            Some((held_key, session)) if held_key == key && session.is_live(now) => {
                session.apply(changes, now);
                Ok(Updated::Written(session.expiry(now)))
            }
            _ => Ok(Updated::Gone),
        }
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        _whole: &Record,
    ) -> Result<Moved, BoxError> {
        let now = SystemTime::now();
        let mut held = self.held();
        match held.as_mut() {
            Some((held_key, session)) if held_key == from && session.is_live(now) => {
                session.apply(changes, now);
                *held_key = to.clone();
                Ok(Moved::Written(session.expiry(now)))
            }
            _ => Ok(Moved::Gone),
        }
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        let mut held = self.held();
        if held.as_ref().is_some_and(|(held_key, _)| held_key == key) {
            *held = None;
        }
        Ok(())
    }

    async fn list_owned(&self, _owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        Err(Box::new(ClientOnly))
    }

    async fn delete_owned(&self, _owner: &str, _keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        Err(Box::new(ClientOnly))
    }
}

#[cfg(test)]
mod properties {
    use proptest::collection::{btree_map, vec};
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any text as a sealed session: none or a session, never a panic.
        #[test]
        fn any_text_unseals_to_nothing_or_a_session(text in "\\PC{0,400}", bytes in vec(any::<u8>(), 0..400)) {
            let _ = unseal(&text);
            let _ = unseal(&URL_SAFE_NO_PAD.encode(bytes));
        }

        /// Whatever a session holds, sealing and unsealing gives it back,
        /// to the millisecond.
        #[test]
        fn sessions_round_trip_through_their_seal(
            fields in btree_map("[a-z_]{1,12}", vec(any::<u8>(), 0..100), 0..12),
            expires in 0u64..4_000_000_000_000,
            max_age in proptest::option::of(0u64..34_560_000_000),
            owner in proptest::option::of("\\PC{0,20}"),
        ) {
            let id = SessionId::parse("abcdefghijklmnopqrstuv").unwrap();
            let at = |millis| UNIX_EPOCH + Duration::from_millis(millis);
            let session = StoredSession {
                fields: Arc::new(
                    fields.iter().map(|(name, value)| (name.as_str(), value.clone().into())).collect(),
                ),
                expires_at: at(expires),
                max_age: max_age.map(Duration::from_millis),
                owner: owner.map(Arc::from),
                created_at: at(expires / 3),
                updated_at: at(expires / 2),
            };
            let (unsealed_id, unsealed) = unseal(&seal(&id, &session)).unwrap();
            prop_assert_eq!(unsealed_id.as_str(), id.as_str());
            prop_assert_eq!(unsealed, session);
        }
    }
}
