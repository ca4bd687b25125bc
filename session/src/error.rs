//! The one error type of the crate.

use std::fmt;
use std::time::Duration;

use crate::codec::CodecError;
use crate::store::BoxError;

/// Everything that can go wrong while setting up, loading or committing
/// sessions.
///
/// Its `Display` names the cause as well (`session store failed to load:
/// Connection refused (os error 111)`), since most applications print or
/// log an error without walking its [`source`](std::error::Error::source)
/// chain; the cause is its `source` too, for those that do.
///
/// A field that fails to *decode* is not an error: it falls back to its
/// default and is reported as [`SessionEvent::FieldReset`](crate::SessionEvent).
/// With the `axum` feature `Error` is an `IntoResponse`, and with `actix` a
/// `ResponseError`, so handlers can use `?` on it; [`Error::status`] says
/// which status it answers.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value would make a broken or unsafe cookie.
    #[error("invalid session option `{option}`: {reason}")]
    InvalidConfig {
        /// The [`SessionConfig`](crate::SessionConfig) option.
        option: &'static str,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A store URL (given to `store::open`) this build cannot open.
    #[error("cannot open the session store `{url}`: {reason}")]
    StoreUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Two session structs used with one manager store a field under the same
    /// key, which would silently merge them.
    #[error(
        "session structs `{first}` and `{second}` both use the stored key `{key}`; \
         give one of them a `#[session(namespace = \"...\")]` or another key"
    )]
    KeyClash {
        /// The shared key.
        key: &'static str,
        /// The struct first used with the manager.
        first: &'static str,
        /// The struct that clashes with it.
        second: &'static str,
    },
    /// A field's codec could not encode its value at commit.
    #[error("could not encode session field `{field}`: {source}")]
    Encode {
        /// The stored key of the field.
        field: &'static str,
        /// What the codec reported.
        #[source]
        source: CodecError,
    },
    /// The store failed.
    #[error("session store failed to {op}: {source}")]
    Store {
        /// The operation that failed.
        op: StoreOp,
        /// What the store's backend reported.
        #[source]
        source: BoxError,
    },
    /// The store did not answer within
    /// [`SessionConfig::store_timeout`](crate::SessionConfig::store_timeout).
    #[error("session store did not {op} within {after:?}")]
    StoreTimeout {
        /// The operation that timed out.
        op: StoreOp,
        /// The limit it exceeded.
        after: Duration,
    },
    /// Every id drawn for a new session was already taken in the store: the
    /// id generator repeats itself.
    #[error("{attempts} session ids in a row were already taken; the id generator repeats itself")]
    IdsExhausted {
        /// How many ids were tried.
        attempts: u32,
    },
    /// A custom id generator produced an id that would not survive a round
    /// trip through a cookie (empty, too long, or not URL-safe).
    #[error("the session id generator produced an invalid id (want 1 to 256 URL-safe characters)")]
    InvalidGeneratedId,
    /// A cookie-only session grew beyond what a browser keeps in one cookie;
    /// nothing was sent (a browser would drop or truncate it). Keep less in
    /// the session, or use a store.
    #[error(
        "the cookie-only session needs a {size}-byte cookie, over the {limit}-byte limit; \
         largest fields (encoded bytes): {largest:?}"
    )]
    CookieTooLarge {
        /// The `Set-Cookie` value's size: name, value and attributes.
        size: usize,
        /// The limit, 4096 bytes.
        limit: usize,
        /// The largest fields by stored key, with their encoded size.
        largest: Vec<(String, usize)>,
    },
    /// The operation needs a store, and the sessions are cookie-only.
    #[error("cookie-only sessions live in the client: they cannot be {what}")]
    CookieOnly {
        /// What was asked.
        what: &'static str,
    },
    /// The operating system's random number generator failed, so no safe id
    /// could be made.
    #[error("the operating system's random number generator failed: {0}")]
    Random(#[source] BoxError),
}

impl Error {
    /// The HTTP status a web integration answers with: `503 Service
    /// Unavailable` when the store failed or timed out (worth a retry),
    /// `501 Not Implemented` for what cookie-only sessions cannot do, `500`
    /// otherwise.
    pub fn status(&self) -> u16 {
        match self {
            Self::Store { .. } | Self::StoreTimeout { .. } => 503,
            Self::CookieOnly { .. } => 501,
            _ => 500,
        }
    }
}

/// The store operations, as named in [`Error::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// Connecting to or opening the store (`store::open`).
    Open,
    /// [`SessionStore::load`](crate::SessionStore::load)
    Load,
    /// [`SessionStore::create`](crate::SessionStore::create)
    Create,
    /// [`SessionStore::update`](crate::SessionStore::update)
    Update,
    /// [`SessionStore::rekey`](crate::SessionStore::rekey)
    Rekey,
    /// [`SessionStore::delete`](crate::SessionStore::delete)
    Delete,
    /// [`SessionStore::list_owned`](crate::SessionStore::list_owned)
    ListOwned,
    /// [`SessionStore::delete_owned`](crate::SessionStore::delete_owned)
    DeleteOwned,
}

impl fmt::Display for StoreOp {
    /// The operation as a verb phrase: "failed to {op}", "did not {op}".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Open => "open",
            Self::Load => "load a session",
            Self::Create => "create a session",
            Self::Update => "update a session",
            Self::Rekey => "move a session to a new id",
            Self::Delete => "delete a session",
            Self::ListOwned => "list a user's sessions",
            Self::DeleteOwned => "delete a user's sessions",
        })
    }
}
