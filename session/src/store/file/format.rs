//! The files' formats: sessions and the first layout's owner indexes.

use std::collections::HashMap;
use std::io;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize, Serializer};

use super::disk::{duration_millis, from_millis, millis, name_of, read_json, Found};
use super::Inner;
use crate::store::{Fields, OwnedSession, StoredSession};
use crate::StoreKey;

/// The version of the session file format.
const FORMAT: u32 = 1;

impl Inner {
    /// The session `name`, as its file holds it.
    pub(super) fn read_session(&self, name: &str) -> io::Result<Found<StoredSession>> {
        let (dir, file) = self.session_path(name);
        Ok(read_json::<SessionFile>(&dir.join(file))?.and_then(|file| file.decode(name)))
    }

    /// The session `name` without its fields.
    pub(super) fn read_head(&self, name: &str) -> io::Result<Found<SessionHead>> {
        let (dir, file) = self.session_path(name);
        Ok(read_json::<SessionHead>(&dir.join(file))?
            .and_then(|head| (name_of(&head.key) == name).then_some(head)))
    }
}

impl Found<StoredSession> {
    pub(super) fn live(self, now: SystemTime) -> Option<StoredSession> {
        match self {
            Self::Here(session) if session.is_live(now) => Some(session),
            _ => None,
        }
    }

    pub(super) fn is_live(&self, now: SystemTime) -> bool {
        matches!(self, Self::Here(session) if session.is_live(now))
    }

    pub(super) fn owner(&self) -> Option<Arc<str>> {
        match self {
            Self::Here(session) => session.owner.clone(),
            _ => None,
        }
    }
}

impl Found<SessionHead> {
    pub(super) fn is_live(&self, now: SystemTime) -> bool {
        matches!(self, Self::Here(head) if head.is_live(now))
    }

    pub(super) fn owner(&self) -> Option<String> {
        match self {
            Self::Here(head) => head.owner.clone(),
            _ => None,
        }
    }
}

/// A session file, written from borrowed parts.
#[derive(Serialize)]
struct SessionFileOut<'a> {
    v: u32,
    key: &'a str,
    expires_at: u64,
    max_age: Option<u64>,
    owner: Option<&'a str>,
    created_at: u64,
    updated_at: u64,
    fields: EncodedFields<'a>,
}

/// Fields as a JSON object of base64 strings.
struct EncodedFields<'a>(&'a Fields);

impl Serialize for EncodedFields<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_map(
            self.0
                .iter()
                .map(|(name, value)| (name, STANDARD.encode(value))),
        )
    }
}

/// A session file as read.
#[derive(Deserialize)]
struct SessionFile {
    key: String,
    expires_at: u64,
    max_age: Option<u64>,
    owner: Option<String>,
    created_at: u64,
    updated_at: u64,
    fields: HashMap<String, String>,
}

impl SessionFile {
    /// The session, if the file is the one of the session `name` and its
    /// values decode.
    fn decode(self, name: &str) -> Option<StoredSession> {
        if name_of(&self.key) != name {
            return None;
        }
        let fields = self
            .fields
            .into_iter()
            .map(|(field, value)| {
                let value = STANDARD.decode(value).ok()?;
                Some((field, Bytes::from(value)))
            })
            .collect::<Option<Fields>>()?;
        Some(StoredSession {
            fields: Arc::new(fields),
            expires_at: from_millis(self.expires_at),
            max_age: self.max_age.map(Duration::from_millis),
            owner: self.owner.map(Arc::from),
            created_at: from_millis(self.created_at),
            updated_at: from_millis(self.updated_at),
        })
    }
}

/// A session file without its fields: what sweeping and listing need.
#[derive(Debug, Deserialize)]
pub(super) struct SessionHead {
    key: String,
    expires_at: u64,
    pub(super) owner: Option<String>,
    created_at: u64,
    updated_at: u64,
}

impl SessionHead {
    pub(super) fn is_live(&self, now: SystemTime) -> bool {
        from_millis(self.expires_at) > now
    }

    pub(super) fn is_owned_by(&self, owner: &str) -> bool {
        self.owner.as_deref() == Some(owner)
    }

    /// Whether the session is bound to the owner whose index is named
    /// `owner_name`.
    pub(super) fn is_indexed_under(&self, owner_name: &str) -> bool {
        self.owner
            .as_deref()
            .is_some_and(|owner| name_of(owner) == owner_name)
    }

    pub(super) fn owned(self) -> OwnedSession {
        OwnedSession {
            key: StoreKey::new(self.key),
            created_at: from_millis(self.created_at),
            updated_at: from_millis(self.updated_at),
            expires_at: from_millis(self.expires_at),
        }
    }
}

/// An owner's index as the first version of the store kept it: one JSON
/// file listing the names of the session files bound to the owner.
#[derive(Deserialize)]
pub(super) struct LegacyIndex {
    pub(super) owner: String,
    pub(super) sessions: Vec<String>,
}

pub(super) fn encode_session(key: &StoreKey, session: &StoredSession) -> io::Result<Vec<u8>> {
    let file = SessionFileOut {
        v: FORMAT,
        key: key.as_str(),
        expires_at: millis(session.expires_at),
        max_age: session.max_age.map(duration_millis),
        owner: session.owner.as_deref(),
        created_at: millis(session.created_at),
        updated_at: millis(session.updated_at),
        fields: EncodedFields(&session.fields),
    };
    serde_json::to_vec(&file).map_err(io::Error::other)
}

/// `session` with its times cut to what its file keeps (milliseconds), so
/// that a write reports the expiry the next load will.
pub(super) fn normalized(mut session: StoredSession) -> StoredSession {
    session.expires_at = from_millis(millis(session.expires_at));
    session.created_at = from_millis(millis(session.created_at));
    session.updated_at = from_millis(millis(session.updated_at));
    session.max_age = session
        .max_age
        .map(|max_age| Duration::from_millis(duration_millis(max_age)));
    session
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{ChangeSet, Update};

    #[test]
    fn normalized_sessions_round_trip_through_their_file() {
        let now = SystemTime::now();
        let mut changes = ChangeSet::touch(Duration::from_micros(1_234_567));
        changes.set.push(("a", Bytes::from_static(&[0, 255, b'"'])));
        changes.max_age = Update::Set(Some(Duration::from_nanos(86_400_000_000_123)));
        changes.owner = Update::Set(Some(Arc::from("ann")));
        let session = normalized(StoredSession::create(&changes, now));
        let key = StoreKey::new("k");
        let bytes = encode_session(&key, &session).unwrap();
        let file: SessionFile = serde_json::from_slice(&bytes).unwrap();
        let read = file.decode(&name_of("k")).unwrap();
        assert_eq!(read, session);
        let file: SessionFile = serde_json::from_slice(&bytes).unwrap();
        assert!(file.decode(&name_of("other")).is_none());
    }
}
