//! The one error type of the crate.

use std::error::Error as StdError;
use std::fmt;

use crate::codec::CodecError;

/// Everything that can go wrong while loading or committing a session.
///
/// A field that fails to *decode* is not an error: it falls back to its
/// default and is reported as [`SessionEvent::FieldReset`](crate::SessionEvent).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A field's codec could not encode its value at commit.
    #[error("could not encode session field `{field}`")]
    Encode {
        /// The stored key of the field.
        field: &'static str,
        /// What the codec reported.
        #[source]
        source: CodecError,
    },
    /// The store failed.
    #[error("session store failed to {op}")]
    Store {
        /// The operation that failed.
        op: StoreOp,
        /// What the store's backend reported.
        #[source]
        source: Box<dyn StdError + Send + Sync>,
    },
    /// The store did not answer within
    /// [`SessionConfig::store_timeout`](crate::SessionConfig::store_timeout).
    #[error("session store did not {op} within {after:?}")]
    StoreTimeout {
        /// The operation that timed out.
        op: StoreOp,
        /// The limit it exceeded.
        after: std::time::Duration,
    },
    /// A custom id generator produced an id that would not survive a round
    /// trip through a cookie (empty, too long, or not URL-safe).
    #[error("the session id generator produced an invalid id (want 1 to 256 URL-safe characters)")]
    InvalidGeneratedId,
    /// The operating system's random number generator failed, so no safe id
    /// could be made.
    #[error("the operating system's random number generator failed")]
    Random(#[source] Box<dyn StdError + Send + Sync>),
}

impl Error {
    /// Wraps a store backend's error, naming the operation that failed.
    pub fn store(op: StoreOp, source: impl Into<Box<dyn StdError + Send + Sync>>) -> Self {
        Self::Store {
            op,
            source: source.into(),
        }
    }
}

/// The store operations, as named in [`Error::Store`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreOp {
    /// [`SessionStore::load`](crate::SessionStore::load)
    Load,
    /// [`SessionStore::commit`](crate::SessionStore::commit)
    Commit,
    /// [`SessionStore::touch`](crate::SessionStore::touch)
    Touch,
    /// [`SessionStore::delete`](crate::SessionStore::delete)
    Delete,
    /// [`SessionStore::change_key`](crate::SessionStore::change_key)
    ChangeKey,
    /// [`SessionStore::delete_expired`](crate::SessionStore::delete_expired)
    DeleteExpired,
}

impl fmt::Display for StoreOp {
    /// The operation as a verb phrase: "failed to {op}", "did not {op}".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Load => "load a session",
            Self::Commit => "commit a session",
            Self::Touch => "extend a session",
            Self::Delete => "delete a session",
            Self::ChangeKey => "move a session to a new id",
            Self::DeleteExpired => "delete expired sessions",
        })
    }
}
