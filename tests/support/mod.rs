//! Shared by the integration tests: a store wrapper that records what the
//! store was asked to do, around the real memory store, and can be told to
//! fail or to hold writes; a browser-like client of the lifecycle; and
//! unique names and temp dirs for tests that share a server or a disk.
#![allow(dead_code, unreachable_pub)]

pub mod demo;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use session::store::{BoxError, ChangeSet, Created, Moved, OwnedSession, Record, Updated};
use session::{Finished, MemoryStore, SessionStore, StoreKey};
use tokio::sync::Semaphore;

/// One call a store received.
#[derive(Debug, Clone, PartialEq)]
pub enum Call {
    Load(StoreKey),
    Create(StoreKey, ChangeSet),
    Update(StoreKey, ChangeSet),
    Rekey(StoreKey, StoreKey, ChangeSet),
    Delete(StoreKey),
    ListOwned(String),
    DeleteOwned(String, Option<StoreKey>),
}

/// A [`MemoryStore`] that logs every call, and can be told to fail, to hang,
/// or to hold writes until the test lets them through.
#[derive(Debug, Clone)]
pub struct Recording {
    pub store: Arc<MemoryStore>,
    calls: Arc<Mutex<Vec<Call>>>,
    failing: Arc<AtomicBool>,
    /// Calls numbered from `fail_from` up to `fail_until` fail.
    fail_from: Arc<AtomicUsize>,
    fail_until: Arc<AtomicUsize>,
    stalled: Arc<AtomicBool>,
    /// When set, each write waits for a permit.
    gate: Arc<Mutex<Option<Arc<Semaphore>>>>,
    /// How many writes wait at the gate.
    held: Arc<AtomicUsize>,
}

impl Default for Recording {
    fn default() -> Self {
        Self {
            store: Arc::default(),
            calls: Arc::default(),
            failing: Arc::default(),
            fail_from: Arc::new(AtomicUsize::new(usize::MAX)),
            fail_until: Arc::new(AtomicUsize::new(usize::MAX)),
            stalled: Arc::default(),
            gate: Arc::default(),
            held: Arc::default(),
        }
    }
}

impl Recording {
    pub fn new() -> Self {
        Self::default()
    }

    /// The calls received since the last `take_calls`.
    pub fn take_calls(&self) -> Vec<Call> {
        std::mem::take(&mut self.calls.lock().unwrap())
    }

    /// The calls that write: everything but loads and listings.
    pub fn take_writes(&self) -> Vec<Call> {
        self.take_calls()
            .into_iter()
            .filter(|call| !matches!(call, Call::Load(_) | Call::ListOwned(_)))
            .collect()
    }

    /// Makes every following call fail (or succeed again).
    pub fn set_failing(&self, failing: bool) {
        self.failing.store(failing, Ordering::SeqCst);
    }

    /// Lets `calls` more calls through, then fails every one after them.
    pub fn fail_after(&self, calls: usize) {
        let received = self.calls.lock().unwrap().len();
        self.fail_from.store(received + calls, Ordering::SeqCst);
        self.fail_until.store(usize::MAX, Ordering::SeqCst);
    }

    /// Lets `calls` more calls through, fails the one after them, and lets
    /// the rest through again.
    pub fn fail_once_after(&self, calls: usize) {
        let received = self.calls.lock().unwrap().len();
        self.fail_from.store(received + calls, Ordering::SeqCst);
        self.fail_until
            .store(received + calls + 1, Ordering::SeqCst);
    }

    /// Makes every following call hang forever (or answer again).
    pub fn set_stalled(&self, stalled: bool) {
        self.stalled.store(stalled, Ordering::SeqCst);
    }

    /// Makes every following write wait until [`release`](Self::release)
    /// lets it through.
    pub fn hold_writes(&self) {
        *self.gate.lock().unwrap() = Some(Arc::new(Semaphore::new(0)));
    }

    /// Lets one held write through, and stops holding later ones.
    pub fn release(&self) {
        if let Some(gate) = self.gate.lock().unwrap().take() {
            gate.add_permits(1);
        }
    }

    /// Waits until a write is held at the gate.
    pub async fn until_held(&self) {
        while self.held.load(Ordering::SeqCst) == 0 {
            tokio::task::yield_now().await;
        }
    }

    async fn record(&self, call: Call) -> Result<(), BoxError> {
        let writes = !matches!(call, Call::Load(_) | Call::ListOwned(_));
        let index = {
            let mut calls = self.calls.lock().unwrap();
            calls.push(call);
            calls.len() - 1
        };
        if writes {
            let gate = self.gate.lock().unwrap().clone();
            if let Some(gate) = gate {
                self.held.fetch_add(1, Ordering::SeqCst);
                gate.acquire().await.unwrap().forget();
                self.held.fetch_sub(1, Ordering::SeqCst);
            }
        }
        if self.stalled.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        let failing = (self.fail_from.load(Ordering::SeqCst)
            ..self.fail_until.load(Ordering::SeqCst))
            .contains(&index);
        if failing || self.failing.load(Ordering::SeqCst) {
            return Err("the store is down (test)".into());
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
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        self.record(Call::Load(key.clone())).await?;
        self.store.load(key).await
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        self.record(Call::Create(key.clone(), changes.clone()))
            .await?;
        self.store.create(key, changes).await
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        self.record(Call::Update(key.clone(), changes.clone()))
            .await?;
        self.store.update(key, changes).await
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        whole: &Record,
    ) -> Result<Moved, BoxError> {
        self.record(Call::Rekey(from.clone(), to.clone(), changes.clone()))
            .await?;
        self.store.rekey(from, to, changes, whole).await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        self.record(Call::Delete(key.clone())).await?;
        self.store.delete(key).await
    }

    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        self.record(Call::ListOwned(owner.to_owned())).await?;
        self.store.list_owned(owner).await
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        self.record(Call::DeleteOwned(owner.to_owned(), keep.cloned()))
            .await?;
        self.store.delete_owned(owner, keep).await
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

    /// Finishes a request that must succeed and keeps (or drops) the cookie
    /// it set.
    pub async fn finish(
        &mut self,
        request: session::RequestSession,
    ) -> Option<session::Cookie<'static>> {
        let finished = request.finish().await;
        finished.result.expect("commit succeeds");
        self.keep(finished.cookie)
    }

    /// Finishes a request whatever its outcome, keeping the cookie it set.
    pub async fn finish_any(&mut self, request: session::RequestSession) -> Finished {
        let mut finished = request.finish().await;
        finished.cookie = self.keep(finished.cookie);
        finished
    }

    fn keep(
        &mut self,
        cookie: Option<session::Cookie<'static>>,
    ) -> Option<session::Cookie<'static>> {
        if let Some(cookie) = &cookie {
            let removal = cookie.max_age().is_some_and(|age| age.is_zero());
            self.cookie = (!removal).then(|| cookie.value().to_owned());
        }
        cookie
    }
}

/// A name no other test of this run (or an earlier run) uses: `prefix`,
/// then the process id, the time and a counter, joined with `_` (so it is
/// also a valid SQL table name).
pub fn unique_name(prefix: &str) -> String {
    use std::sync::atomic::AtomicU64;
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let prefix = prefix.replace('-', "_");
    format!("{prefix}_{}_{nanos}_{n}", std::process::id())
}

/// A fresh directory under the system's temp dir, searchable by every user
/// (a PostgreSQL server runs as `postgres`), removed when dropped.
pub struct TempDir(std::path::PathBuf);

impl TempDir {
    pub fn new(prefix: &str) -> Self {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(unique_name(prefix));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        Self(dir)
    }

    pub fn path(&self) -> &std::path::Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An event as tests compare it: its name, and for `invalid` the reason.
pub fn label(event: &session::SessionEvent) -> String {
    match event {
        session::SessionEvent::Invalid(why) => format!("invalid {why:?}"),
        other => other.name().to_owned(),
    }
}
