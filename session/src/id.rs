//! Session ids: what the client holds, and the hash a store sees instead.

use std::fmt;
use std::sync::Arc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

/// The longest id accepted from a client or a custom generator.
const MAX_ID_LEN: usize = 256;

/// A session id as the client holds it. Never logged: its `Debug` is redacted.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct SessionId(Arc<str>);

impl SessionId {
    /// Accepts a presented or generated id only if it is 1 to 256 URL-safe
    /// characters, so nothing odd reaches a store, a log or a cookie.
    pub(crate) fn parse(id: &str) -> Option<Self> {
        let url_safe = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~');
        (!id.is_empty() && id.len() <= MAX_ID_LEN && id.bytes().all(url_safe))
            .then(|| Self(Arc::from(id)))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionId(..)")
    }
}

/// The key a store keeps a session under: the configured prefix followed by
/// the SHA-256 of the id, so a leaked store yields no usable cookie.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StoreKey(Arc<str>);

impl StoreKey {
    /// Wraps a key as a store holds it (for store implementations and tests).
    pub fn new(key: impl Into<String>) -> Self {
        Self(Arc::from(key.into()))
    }

    pub(crate) fn for_id(prefix: &str, id: &SessionId) -> Self {
        let digest = Sha256::digest(id.as_str().as_bytes());
        let mut key = String::with_capacity(prefix.len() + 43);
        key.push_str(prefix);
        URL_SAFE_NO_PAD.encode_string(digest, &mut key);
        Self(Arc::from(key))
    }

    /// The key as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Shows the key's [`PublicId`], never the key: nothing the crate prints or
/// logs names a stored session by a key its store would recognise.
impl fmt::Debug for StoreKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "StoreKey(public id {})", PublicId::of(self))
    }
}

/// An opaque name for one stored session, safe to show to its user (a
/// "your devices" page) or to put in a URL: it is neither the session id
/// nor the cookie's value, and neither can be worked out from it. Listing an
/// owner's sessions gives one per session; revoking takes it back. It lasts
/// as long as the session's id: a regenerated session gets a new one.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct PublicId(String);

impl PublicId {
    /// The public id of the session under `key`.
    pub(crate) fn of(key: &StoreKey) -> Self {
        let digest = Sha256::new()
            .chain_update(b"session public id\0")
            .chain_update(key.as_str().as_bytes())
            .finalize();
        Self(URL_SAFE_NO_PAD.encode(&digest[..16]))
    }

    /// Wraps a public id received back from a client (a form, a URL).
    pub fn new(id: impl Into<String>) -> Self {
        Self(id.into())
    }

    /// The public id as a string.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for PublicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Makes new session ids.
#[derive(Clone)]
pub(crate) enum IdGenerator {
    /// 256 bits from the operating system's CSPRNG, base64url: 43 characters.
    Random,
    Custom(Arc<dyn Fn() -> String + Send + Sync>),
}

impl IdGenerator {
    pub(crate) fn generate(&self) -> Result<SessionId, crate::Error> {
        match self {
            Self::Random => {
                let mut bytes = [0u8; 32];
                getrandom::fill(&mut bytes).map_err(|e| crate::Error::Random(Box::new(e)))?;
                Ok(SessionId(Arc::from(URL_SAFE_NO_PAD.encode(bytes))))
            }
            Self::Custom(generate) => {
                SessionId::parse(&generate()).ok_or(crate::Error::InvalidGeneratedId)
            }
        }
    }
}

impl fmt::Debug for IdGenerator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Random => "Random",
            Self::Custom(_) => "Custom(..)",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_ids_are_long_url_safe_and_distinct() {
        let a = IdGenerator::Random.generate().unwrap();
        let b = IdGenerator::Random.generate().unwrap();
        assert_eq!(a.as_str().len(), 43);
        assert!(SessionId::parse(a.as_str()).is_some());
        assert_ne!(a, b);
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in ["", "a b", "a;b", "ü", &"x".repeat(257), "a\0"] {
            assert!(SessionId::parse(bad).is_none(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn store_keys_hide_the_id() {
        let id = SessionId::parse("visible-id").unwrap();
        let key = StoreKey::for_id("app:", &id);
        assert!(key.as_str().starts_with("app:"));
        assert!(!key.as_str().contains("visible-id"));
        assert_eq!(key, StoreKey::for_id("app:", &id));
    }

    #[test]
    fn store_keys_print_no_key() {
        let key = StoreKey::for_id("app:", &SessionId::parse("visible-id").unwrap());
        let shown = format!("{key:?}");
        assert!(!shown.contains(key.as_str()), "{shown}");
        assert!(shown.contains(PublicId::of(&key).as_str()), "{shown}");
    }

    #[test]
    fn public_ids_hide_the_key_and_are_stable() {
        let id = SessionId::parse("visible-id").unwrap();
        let key = StoreKey::for_id("", &id);
        let public = PublicId::of(&key);
        assert_eq!(public.as_str().len(), 22);
        assert!(!key.as_str().contains(public.as_str()));
        assert_eq!(public, PublicId::of(&key));
        assert_ne!(public, PublicId::of(&StoreKey::new("other")));
    }
}
