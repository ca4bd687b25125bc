//! Per-user sessions ("one account, one device", "log out everywhere"): a
//! session bound to an owner with `Session::set_owner` can be listed and
//! revoked by that owner, from a handler or from outside any request.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Serialize, Serializer};

use super::{RequestSession, SessionManager};
use crate::error::{Error, StoreOp};
use crate::id::{PublicId, StoreKey};
use crate::store::OwnedSession;

/// One live session of an owner, as [`SessionManager::sessions_of`] lists it.
///
/// It serializes (serde) as a device list wants it, times in milliseconds
/// since the Unix epoch (what JavaScript's `Date` takes):
/// `{"id":"…","created_at":1765152000000,"updated_at":…,"expires_at":…,"current":true}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LiveSession {
    /// The session's public id: safe to show, and what revoking it takes.
    pub id: PublicId,
    /// When the session was first stored.
    #[serde(serialize_with = "millis")]
    pub created_at: SystemTime,
    /// When it was last written.
    #[serde(serialize_with = "millis")]
    pub updated_at: SystemTime,
    /// When it expires unless used again.
    #[serde(serialize_with = "millis")]
    pub expires_at: SystemTime,
    /// Whether it is the session of the request that listed it
    /// ([`Session::owner_sessions`](crate::Session::owner_sessions)); always
    /// `false` from [`SessionManager::sessions_of`].
    pub current: bool,
}

fn millis<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    serializer.serialize_u64(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

impl SessionManager {
    /// The live sessions bound to `owner`, oldest first.
    pub async fn sessions_of(&self, owner: &str) -> Result<Vec<LiveSession>, Error> {
        let mut sessions: Vec<LiveSession> = self
            .owned(owner)
            .await?
            .into_iter()
            .map(|session| LiveSession {
                id: PublicId::of(&session.key),
                created_at: session.created_at,
                updated_at: session.updated_at,
                expires_at: session.expires_at,
                current: false,
            })
            .collect();
        sessions.sort_by_key(|session| session.created_at);
        Ok(sessions)
    }

    /// Ends the session of `owner` whose public id is `session`; `false` if
    /// the owner has no such live session.
    pub async fn revoke(&self, owner: &str, session: &PublicId) -> Result<bool, Error> {
        let Some(key) = self.key_of(owner, session).await? else {
            return Ok(false);
        };
        self.call(StoreOp::Delete, self.shared_store("revoked")?.delete(&key))
            .await?;
        Ok(true)
    }

    /// Ends every session of `owner` ("log out everywhere"); returns how many.
    pub async fn revoke_all(&self, owner: &str) -> Result<u64, Error> {
        let revoke = self.shared_store("revoked")?.delete_owned(owner, None);
        self.call(StoreOp::DeleteOwned, revoke).await
    }

    /// Ends every session of `owner` but `keep` ("log out other devices");
    /// returns how many.
    pub async fn revoke_all_except(&self, owner: &str, keep: &PublicId) -> Result<u64, Error> {
        let keep = self.key_of(owner, keep).await?;
        let revoke = self
            .shared_store("revoked")?
            .delete_owned(owner, keep.as_ref());
        self.call(StoreOp::DeleteOwned, revoke).await
    }

    async fn owned(&self, owner: &str) -> Result<Vec<OwnedSession>, Error> {
        self.call(
            StoreOp::ListOwned,
            self.shared_store("listed")?.list_owned(owner),
        )
        .await
    }

    async fn key_of(&self, owner: &str, session: &PublicId) -> Result<Option<StoreKey>, Error> {
        Ok(self
            .owned(owner)
            .await?
            .into_iter()
            .map(|owned| owned.key)
            .find(|key| PublicId::of(key) == *session))
    }
}

impl RequestSession {
    /// The live sessions of this session's owner, this one marked current;
    /// none without an owner. As stored: a binding or a regenerate of this
    /// request shows once committed.
    pub(crate) async fn owner_sessions(&self) -> Result<Vec<LiveSession>, Error> {
        let (owner, current) = {
            let state = self.state();
            (
                state.owner().cloned(),
                state.lasting_key().map(PublicId::of),
            )
        };
        let Some(owner) = owner else {
            return Ok(Vec::new());
        };
        let mut sessions = self.manager().sessions_of(&owner).await?;
        for session in &mut sessions {
            session.current = current.as_ref() == Some(&session.id);
        }
        Ok(sessions)
    }
}
