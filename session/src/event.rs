//! What happened to a session that a log or an application may want to know.

use crate::codec::CodecError;
use crate::id::PublicId;

/// Noteworthy things the runtime noticed about a session. Each is logged with
/// `tracing` and passed to the hook set with
/// [`SessionConfig::on_event`](crate::SessionConfig::on_event). Sessions are
/// named by their [`PublicId`] (a hash), never by their id or cookie.
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The client presented a session cookie that is not one this
    /// application made: it was ignored, and a fresh session was started if
    /// no other presented cookie loaded.
    Invalid(InvalidCookie),
    /// The presented id matches no live session (unknown, expired, deleted
    /// or cleaned up); it was ignored, and a fresh session was started if no
    /// other presented id loaded. A store cannot tell an expired session
    /// from one that never was, so both are `Missed`.
    Missed {
        /// The session the id would name.
        session: PublicId,
    },
    /// A stored field could not be decoded (its type changed since it was
    /// written): it took its default, the rest of the session was kept, and
    /// the stale value is removed at the next commit. Fields are decoded when
    /// first used, so this comes then, not at load.
    FieldReset {
        /// The stored key of the field.
        field: &'static str,
        /// Why decoding failed.
        error: CodecError,
    },
    /// Another request destroyed this session, moved it to a new id, or it
    /// expired, after this request loaded it and before it committed. This
    /// request's changes were dropped and its response carries no session
    /// cookie: a session that is gone never comes back.
    Gone {
        /// The session that is gone.
        session: PublicId,
    },
    /// A cookie-only session presented after the expiry sealed in it: it was
    /// ignored. (A store's expired sessions are [`Missed`](Self::Missed).)
    Expired,
    /// A request's last commit only extended the session (`rolling`,
    /// `renew`, a cookie re-made with the current key), and the store failed
    /// it. The response went out as the handler made it, since nothing the
    /// request changed was lost: the session keeps its earlier expiry, and
    /// the next request extends it again.
    TouchFailed {
        /// The session that was not extended.
        session: PublicId,
        /// Why the store failed.
        error: crate::Error,
    },
}

impl SessionEvent {
    /// The event's name, for counting events by kind: `invalid`, `missed`,
    /// `expired`, `field_reset`, `gone` or `touch_failed`.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Invalid(_) => "invalid",
            Self::Missed { .. } => "missed",
            Self::FieldReset { .. } => "field_reset",
            Self::Gone { .. } => "gone",
            Self::Expired => "expired",
            Self::TouchFailed { .. } => "touch_failed",
        }
    }

    pub(crate) fn log(&self) {
        match self {
            Self::Invalid(why) => tracing::info!(?why, "invalid session cookie presented"),
            Self::Missed { session } => tracing::debug!(%session, "unknown session id presented"),
            Self::FieldReset { field, error } => {
                tracing::warn!(field, %error, "session field could not be decoded; reset to its default")
            }
            Self::Expired => tracing::debug!("expired cookie-only session presented"),
            Self::Gone { session } => tracing::info!(
                %session,
                "session ended by another request before this one committed; its changes were dropped"
            ),
            Self::TouchFailed { session, error } => tracing::warn!(
                %session,
                error = error as &dyn std::error::Error,
                "session could not be extended; the response goes out unchanged"
            ),
        }
    }
}

/// Why a presented session cookie was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum InvalidCookie {
    /// It cannot hold a session id (empty, too long, not URL-safe).
    MalformedId,
    /// Its signature did not verify, or it did not decrypt, with any of the
    /// configured keys: tampered with, truncated, or made with a key that
    /// is no longer configured.
    BadSignature,
    /// It named a live session that the application's
    /// [`valid`](crate::SessionConfig::valid) hook refused.
    Rejected,
    /// A cookie-only session that decrypted but does not decode (written by
    /// an incompatible version).
    Undecodable,
}
