//! What happened to a session that a log or an application may want to know.

use crate::codec::CodecError;

/// Noteworthy things the runtime noticed while loading a session. Each is
/// logged with `tracing` and passed to the hook set with
/// [`SessionConfig::on_event`](crate::SessionConfig::on_event).
#[derive(Debug)]
#[non_exhaustive]
pub enum SessionEvent {
    /// The client presented something that cannot be a session id; a fresh
    /// session was started.
    MalformedId,
    /// The presented id matches no stored session (unknown, deleted or
    /// already cleaned up); a fresh session was started.
    Missed,
    /// The presented session had expired; a fresh session was started.
    Expired,
    /// A stored field could not be decoded (its type changed since it was
    /// written): it took its default, and the rest of the session was kept.
    /// Fields are decoded when first used, so this comes then, not at load.
    FieldReset {
        /// The stored key of the field.
        field: &'static str,
        /// Why decoding failed.
        error: CodecError,
    },
}

impl SessionEvent {
    pub(crate) fn log(&self) {
        match self {
            Self::MalformedId => tracing::debug!("malformed session id presented"),
            Self::Missed => tracing::debug!("unknown session id presented"),
            Self::Expired => tracing::debug!("expired session presented"),
            Self::FieldReset { field, error } => {
                tracing::warn!(field, %error, "session field could not be decoded; reset to its default")
            }
        }
    }
}
