//! Shared by the integration tests: a store wrapper that records what the
//! store was asked to do, around the real memory store.
#![allow(dead_code, unreachable_pub)]

pub mod conformance;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use session::{ChangeSet, Error, MemoryStore, Record, SessionStore, StoreKey, StoreOp};

/// One call a store received.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Load(StoreKey),
    Commit(StoreKey, ChangeSet),
    Touch(StoreKey, SystemTime),
    Delete(StoreKey),
    ChangeKey(StoreKey, StoreKey),
    DeleteExpired,
}

/// A [`MemoryStore`] that logs every call, and can be told to fail.
#[derive(Debug, Default, Clone)]
pub struct Recording {
    pub store: Arc<MemoryStore>,
    calls: Arc<Mutex<Vec<Call>>>,
    failing: Arc<AtomicBool>,
    stalled: Arc<AtomicBool>,
}

impl Recording {
    pub fn new() -> Self {
        Self::default()
    }

    /// The calls received since the last `take_calls`.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }

    /// The calls that write: everything but loads.
    pub fn take_writes(&self) -> Vec<Call> {
        self.take_calls()
            .into_iter()
            .filter(|call| !matches!(call, Call::Load(_)))
            .collect()
    }

    /// Makes every following call fail (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Makes every following call hang forever (or answer again).
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    async fn record(&self, call: Call, op: StoreOp) -> Result<(), Error> {
        self.calls.lock().unwrap().push(call);
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        if self.failing.load(Ordering::SeqCst) {
            return Err(Error::store(op, "the store is down (test)"));
        }
        Ok(())
    }

    /// The record under `key`, read straight from the memory store.
    pub async fn peek(&self, key: &StoreKey) -> Option<Record> {
        self.store.load(key).await.unwrap()
    }
}

#[async_trait]
impl SessionStore for Recording {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, Error> {
        self.record(Call::Load(key.clone()), StoreOp::Load).await?;
        self.store.load(key).await
    }

    async fn commit(&self, key: &StoreKey, changes: &ChangeSet) -> Result<(), Error> {
        self.record(Call::Commit(key.clone(), changes.clone()), StoreOp::Commit)
            .await?;
        self.store.commit(key, changes).await
    }

    async fn touch(&self, key: &StoreKey, expires_at: SystemTime) -> Result<(), Error> {
        self.record(Call::Touch(key.clone(), expires_at), StoreOp::Touch)
            .await?;
        self.store.touch(key, expires_at).await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        self.record(Call::Delete(key.clone()), StoreOp::Delete)
            .await?;
        self.store.delete(key).await
    }

    async fn change_key(&self, from: &StoreKey, to: &StoreKey) -> Result<(), Error> {
        self.record(
            Call::ChangeKey(from.clone(), to.clone()),
            StoreOp::ChangeKey,
        )
        .await?;
        self.store.change_key(from, to).await
    }

    async fn delete_expired(&self) -> Result<u64, Error> {
        self.record(Call::DeleteExpired, StoreOp::DeleteExpired)
            .await?;
        self.store.delete_expired().await
    }
}

/// A client of the framework-agnostic lifecycle that keeps its cookie
/// between requests, as a browser would.
#[derive(Debug, Clone)]
pub struct Browser {
    pub manager: session::SessionManager,
    pub cookie: Option<String>,
}

impl Browser {
    pub fn new(manager: session::SessionManager) -> Self {
        Self {
            manager,
            cookie: None,
        }
    }

    /// Starts a request carrying the current cookie.
    pub fn request(&self) -> session::RequestSession {
        self.manager.start(self.cookie.clone())
    }

    /// Finishes a request and keeps (or drops) the cookie it set.
    pub async fn finish(
        &mut self,
        request: session::RequestSession,
    ) -> Option<session::Cookie<'static>> {
        let cookie = request.finish().await.expect("commit succeeds");
        if let Some(cookie) = &cookie {
            let removal = cookie.max_age().is_some_and(|age| age.is_zero());
            self.cookie = (!removal).then(|| cookie.value().to_owned());
        }
        cookie
    }
}
