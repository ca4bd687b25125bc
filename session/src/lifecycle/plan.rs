//! What one commit does, decided apart from doing it: a [`Plan`] of store
//! operations, and the executor that carries it out against a
//! [`SessionStore`](crate::SessionStore).

use std::future::Future;
use std::task::Poll;

use crate::config::SessionConfig;
use crate::error::{Error, StoreOp};
use crate::id::{SessionId, StoreKey};
use crate::store::{BoxError, ChangeSet, Created, Expiry, Moved, Record, SessionStore, Updated};

/// How many ids a commit draws before it gives up on a generator that keeps
/// producing ids the store already holds.
const ID_ATTEMPTS: u32 = 4;

/// The store operations of one commit.
pub(crate) struct Plan {
    /// Destroyed sessions, deleted first.
    pub(crate) discard: Vec<StoreKey>,
    pub(crate) write: Option<Write>,
}

pub(crate) enum Write {
    /// A new session, under an id drawn when it is written.
    Create(ChangeSet),
    /// Changes to (or only an extension of) the session the request loaded.
    Update {
        id: SessionId,
        key: StoreKey,
        changes: ChangeSet,
    },
    /// The session the request loaded, moved to a new id with its changes.
    Rekey {
        from: StoreKey,
        changes: ChangeSet,
        whole: Record,
    },
}

impl Plan {
    /// The key of the session the plan only extends, if that is all it does.
    pub(crate) fn touched(&self) -> Option<&StoreKey> {
        match &self.write {
            Some(Write::Update { key, changes, .. })
                if self.discard.is_empty() && changes.is_touch() =>
            {
                Some(key)
            }
            _ => None,
        }
    }
}

/// What the store did with a plan.
pub(crate) enum Executed {
    Nothing,
    /// The session is stored under `id`.
    Written {
        id: SessionId,
        key: StoreKey,
        expiry: Expiry,
    },
    /// The session the request loaded no longer exists; nothing was written.
    Gone,
}

/// Carries `plan` out against `store`.
pub(crate) async fn execute(
    store: &dyn SessionStore,
    config: &SessionConfig,
    plan: &Plan,
) -> Result<Executed, Error> {
    for key in &plan.discard {
        call(config, StoreOp::Delete, store.delete(key)).await?;
    }
    let Some(write) = &plan.write else {
        return Ok(Executed::Nothing);
    };
    match write {
        Write::Update { id, key, changes } => Ok(
            match call(config, StoreOp::Update, store.update(key, changes)).await? {
                Updated::Written(expiry) => Executed::Written {
                    id: id.clone(),
                    key: key.clone(),
                    expiry,
                },
                Updated::Gone => Executed::Gone,
            },
        ),
        Write::Create(changes) => {
            for _ in 0..ID_ATTEMPTS {
                let (id, key) = new_id(config)?;
                match call(config, StoreOp::Create, store.create(&key, changes)).await? {
                    Created::Written(expiry) => return Ok(Executed::Written { id, key, expiry }),
                    Created::KeyTaken => continue,
                }
            }
            Err(Error::IdsExhausted {
                attempts: ID_ATTEMPTS,
            })
        }
        Write::Rekey {
            from,
            changes,
            whole,
        } => {
            for _ in 0..ID_ATTEMPTS {
                let (id, key) = new_id(config)?;
                let moved = store.rekey(from, &key, changes, whole);
                match call(config, StoreOp::Rekey, moved).await? {
                    Moved::Written(expiry) => return Ok(Executed::Written { id, key, expiry }),
                    Moved::Gone => return Ok(Executed::Gone),
                    Moved::KeyTaken => continue,
                }
            }
            Err(Error::IdsExhausted {
                attempts: ID_ATTEMPTS,
            })
        }
    }
}

/// Runs one store operation under the configured time limit, naming the
/// operation in its error.
pub(crate) async fn call<T>(
    config: &SessionConfig,
    op: StoreOp,
    call: impl Future<Output = Result<T, BoxError>>,
) -> Result<T, Error> {
    let mut call = std::pin::pin!(call);
    // A store that answers at once (the memory store) needs no timer.
    let first = std::future::poll_fn(|cx| Poll::Ready(call.as_mut().poll(cx))).await;
    let result = match (first, config.store_timeout) {
        (Poll::Ready(result), _) => result,
        (Poll::Pending, Some(after)) => tokio::time::timeout(after, call)
            .await
            .map_err(|_| Error::StoreTimeout { op, after })?,
        (Poll::Pending, None) => call.await,
    };
    result.map_err(|source| Error::Store { op, source })
}

/// A new id and its store key.
fn new_id(config: &SessionConfig) -> Result<(SessionId, StoreKey), Error> {
    let id = config.id_generator.generate()?;
    let key = StoreKey::for_id(&config.key_prefix, &id);
    Ok((id, key))
}
