//! `session` side by side with `tower-sessions`, each on its own memory store.
//!
//! 200 sessions of 20 small fields each are created first; every iteration then
//! is one request on the next session (round-robin), started from its cookie
//! value and committed at the end:
//!
//! - `one_field_write/*`: load, increment `counter`, commit;
//! - `read_only/*`: load, read `counter`, commit with nothing changed.
//!
//! `session` goes through its framework-agnostic API (`SessionManager::start`,
//! `RequestSession::finish`); `tower-sessions` through its `Session` API, ending
//! the request the way its middleware does (save only when modified). Before
//! timing, the bench prints how many bytes each library hands its store for one
//! one-field write: the keys and values of `session`'s `ChangeSet`, and the
//! `Record` tower-sessions saves, encoded as MessagePack (what its Redis store
//! sends).
//!
//! Run: `cargo bench --bench peers -- --warm-up-time 1 --measurement-time 3`

mod support;

use async_trait::async_trait;
use criterion::Criterion;
use session::store::{BoxError, ChangeSet, Created, Moved, OwnedSession, Record, Updated};
use session::{MemoryStore, SessionConfig, SessionManager, SessionStore, StoreKey};
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::runtime::Runtime;
use tower_sessions as ts;

use support::profile::{session_seed, tower_seed, Profile};

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---- session ----

async fn session_write(manager: &SessionManager, cookie: &str) {
    let request = manager.start(Some(cookie.to_owned()));
    let s = request.session::<Profile>().await.unwrap();
    s.set_counter(s.counter() + 1);
    black_box(request.finish().await).result.unwrap();
}

async fn session_read(manager: &SessionManager, cookie: &str) {
    let request = manager.start(Some(cookie.to_owned()));
    let s = request.session::<Profile>().await.unwrap();
    black_box(s.counter());
    black_box(request.finish().await).result.unwrap();
}

/// `session::MemoryStore`, counting the key and value bytes of every commit.
#[derive(Debug, Default)]
struct CountingStore {
    inner: MemoryStore,
    bytes: Arc<AtomicUsize>,
}

impl CountingStore {
    fn count(&self, changes: &ChangeSet) {
        let set: usize = changes.set.iter().map(|(k, v)| k.len() + v.len()).sum();
        let removed: usize = changes.remove.iter().map(|k| k.len()).sum();
        self.bytes.fetch_add(set + removed, Ordering::Relaxed);
    }
}

#[async_trait]
impl SessionStore for CountingStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        self.inner.load(key).await
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        self.count(changes);
        self.inner.create(key, changes).await
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        self.count(changes);
        self.inner.update(key, changes).await
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        whole: &Record,
    ) -> Result<Moved, BoxError> {
        self.count(changes);
        self.inner.rekey(from, to, changes, whole).await
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        self.inner.delete(key).await
    }

    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        self.inner.list_owned(owner).await
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        self.inner.delete_owned(owner, keep).await
    }
}

// ---- tower-sessions ----

/// Ends a request as tower-sessions' middleware does: save only if modified.
async fn tower_finish(s: &ts::Session) {
    if s.is_modified() && !s.is_empty().await {
        s.save().await.unwrap();
    }
}

async fn tower_write<S: ts::SessionStore>(store: &Arc<S>, cookie: &str) {
    let id = cookie.parse().unwrap();
    let s = ts::Session::new(Some(id), Arc::clone(store), None);
    let counter: u64 = s.get("counter").await.unwrap().unwrap();
    s.insert("counter", counter + 1).await.unwrap();
    tower_finish(&s).await;
}

async fn tower_read<S: ts::SessionStore>(store: &Arc<S>, cookie: &str) {
    let id = cookie.parse().unwrap();
    let s = ts::Session::new(Some(id), Arc::clone(store), None);
    black_box(s.get::<u64>("counter").await.unwrap());
    tower_finish(&s).await;
}

/// `tower_sessions::MemoryStore`, counting the MessagePack size of every
/// record it is asked to create or save.
#[derive(Debug, Default)]
struct TowerCountingStore {
    inner: ts::MemoryStore,
    bytes: Arc<AtomicUsize>,
}

impl TowerCountingStore {
    fn count(&self, record: &ts::session::Record) -> ts::session_store::Result<()> {
        let encoded = rmp_serde::to_vec(record)
            .map_err(|e| ts::session_store::Error::Encode(e.to_string()))?;
        self.bytes.fetch_add(encoded.len(), Ordering::Relaxed);
        Ok(())
    }
}

#[async_trait]
impl ts::SessionStore for TowerCountingStore {
    async fn create(&self, record: &mut ts::session::Record) -> ts::session_store::Result<()> {
        self.inner.create(record).await?;
        self.count(record)
    }

    async fn save(&self, record: &ts::session::Record) -> ts::session_store::Result<()> {
        self.count(record)?;
        self.inner.save(record).await
    }

    async fn load(
        &self,
        id: &ts::session::Id,
    ) -> ts::session_store::Result<Option<ts::session::Record>> {
        self.inner.load(id).await
    }

    async fn delete(&self, id: &ts::session::Id) -> ts::session_store::Result<()> {
        self.inner.delete(id).await
    }
}

// ---- the bench ----

/// Prints the bytes each library hands its store for one request of each kind.
fn print_bytes_to_store(rt: &Runtime) {
    let (ours, theirs) = rt.block_on(async {
        let store = CountingStore::default();
        let ours = Arc::clone(&store.bytes);
        let manager = SessionManager::new(store, SessionConfig::default()).unwrap();
        let session_cookies = session_seed(&manager).await;

        let store = Arc::new(TowerCountingStore::default());
        let theirs = Arc::clone(&store.bytes);
        let tower_cookies = tower_seed(&store).await;

        ours.store(0, Ordering::Relaxed);
        theirs.store(0, Ordering::Relaxed);
        session_write(&manager, &session_cookies[0]).await;
        tower_write(&store, &tower_cookies[0]).await;
        let write = (
            ours.swap(0, Ordering::Relaxed),
            theirs.swap(0, Ordering::Relaxed),
        );

        session_read(&manager, &session_cookies[1]).await;
        tower_read(&store, &tower_cookies[1]).await;
        let read = (ours.load(Ordering::Relaxed), theirs.load(Ordering::Relaxed));
        assert_eq!(read, (0, 0), "a read-only request writes nothing");
        write
    });
    println!(
        "bytes to store per one-field write: session {ours}, tower-sessions {theirs} (ratio {:.1})",
        theirs as f64 / ours as f64
    );
}

fn peers(c: &mut Criterion, rt: &Runtime) {
    let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default()).unwrap();
    let session_cookies = rt.block_on(session_seed(&manager));
    let store = Arc::new(ts::MemoryStore::default());
    let tower_cookies = rt.block_on(tower_seed(&store));

    let mut group = c.benchmark_group("one_field_write");
    group.bench_function("session", |b| {
        let mut next = session_cookies.iter().cycle();
        b.to_async(rt)
            .iter(|| session_write(&manager, next.next().unwrap()));
    });
    group.bench_function("tower-sessions", |b| {
        let mut next = tower_cookies.iter().cycle();
        b.to_async(rt)
            .iter(|| tower_write(&store, next.next().unwrap()));
    });
    group.finish();

    let mut group = c.benchmark_group("read_only");
    group.bench_function("session", |b| {
        let mut next = session_cookies.iter().cycle();
        b.to_async(rt)
            .iter(|| session_read(&manager, next.next().unwrap()));
    });
    group.bench_function("tower-sessions", |b| {
        let mut next = tower_cookies.iter().cycle();
        b.to_async(rt)
            .iter(|| tower_read(&store, next.next().unwrap()));
    });
    group.finish();
}

fn main() {
    let rt = runtime();
    print_bytes_to_store(&rt);
    let mut c = Criterion::default().configure_from_args();
    peers(&mut c, &rt);
    c.final_summary();
}
