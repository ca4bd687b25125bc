//! `session` side by side with `tower-sessions`, in-process, each on its own
//! memory store (criterion; `bench-run` reads the medians):
//!
//! - `typed_read`: one read of `counter` on an already-loaded session:
//!   `session.counter()` against `get::<u64>("counter")`;
//! - `typed_write`: one write of it: `set_counter` against `insert`;
//! - `load_commit/{4,16,64}`: one whole request (start from the cookie,
//!   load, increment `counter`, commit) at 4, 16 and 64 fields;
//! - `one_field_write` and `read_only`: the same request at 20 fields, and
//!   one that only reads, round-robin over 200 sessions;
//! - `lock_floor/mutex` and `lock_floor/atomic_rmw`: this machine's floor
//!   for a read of shared state: an uncontended `std::sync::Mutex` lock,
//!   read and unlock, and one atomic read-modify-write.
//!
//! `session` goes through its framework-agnostic API (`SessionManager::start`,
//! `RequestSession::finish`); `tower-sessions` through its `Session` API,
//! ending the request the way its middleware does (save only when
//! modified). Measurement times are set here so that the whole bench takes
//! about two minutes; criterion's own flags override them.
//!
//! Run: `cargo bench -p session-bench --bench micro`

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use criterion::{BenchmarkId, Criterion};
use session::{MemoryStore, Session, SessionConfig, SessionManager};
use session_bench::profile::{
    json_fields, Profile, Profile16, Profile20, Profile4, Profile64, SESSIONS,
};
use tokio::runtime::Runtime;
use tower_sessions as ts;

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

// ---- session ----

fn manager() -> SessionManager {
    SessionManager::new(MemoryStore::new(), SessionConfig::default()).unwrap()
}

/// Creates [`SESSIONS`] sessions of `P`; returns their cookie values.
async fn session_seed<P: Profile>(manager: &SessionManager) -> Vec<String> {
    let mut cookies = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let request = manager.start(None);
        P::fill(&request.session::<P>().await.unwrap(), i);
        let finished = request.finish().await;
        finished.result.unwrap();
        let cookie = finished.cookie.expect("a new session's cookie");
        cookies.push(cookie.value().to_owned());
    }
    cookies
}

async fn session_write<P: Profile>(manager: &SessionManager, cookie: &str) {
    let request = manager.start(Some(cookie.to_owned()));
    let s = request.session::<P>().await.unwrap();
    P::set_counter(&s, P::counter(&s) + 1);
    black_box(request.finish().await).result.unwrap();
}

async fn session_read(manager: &SessionManager, cookie: &str) {
    let request = manager.start(Some(cookie.to_owned()));
    let s = request.session::<Profile20>().await.unwrap();
    black_box(s.counter());
    black_box(request.finish().await).result.unwrap();
}

// ---- tower-sessions ----

/// Creates the same sessions through tower-sessions; returns their ids.
async fn tower_seed<S: ts::SessionStore>(store: &Arc<S>, fields: usize) -> Vec<String> {
    let mut cookies = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let s = ts::Session::new(None, Arc::clone(store), None);
        for (key, value) in json_fields(fields, i).unwrap() {
            s.insert_value(&key, value).await.unwrap();
        }
        s.save().await.unwrap();
        cookies.push(s.id().expect("a saved session's id").to_string());
    }
    cookies
}

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

// ---- the bench ----

/// One field read and written on sessions both libraries have loaded.
fn typed_access(c: &mut Criterion, rt: &Runtime) {
    let manager = manager();
    let cookies = rt.block_on(session_seed::<Profile20>(&manager));
    let request = manager.start(Some(cookies[0].clone()));
    let ours: Session<Profile20> = rt.block_on(request.session()).unwrap();
    black_box(ours.counter()); // decoded once, as a handler's first read does

    let store = Arc::new(ts::MemoryStore::default());
    let ids = rt.block_on(tower_seed(&store, 20));
    let theirs = ts::Session::new(Some(ids[0].parse().unwrap()), store, None);
    rt.block_on(theirs.get::<u64>("counter")).unwrap(); // loads the record

    let mut group = c.benchmark_group("typed_read");
    group.bench_function("session", |b| b.iter(|| black_box(ours.counter())));
    group.bench_function("tower-sessions", |b| {
        b.to_async(rt)
            .iter(|| async { black_box(theirs.get::<u64>("counter").await.unwrap()) });
    });
    group.finish();

    let mut group = c.benchmark_group("typed_write");
    group.bench_function("session", |b| {
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            ours.set_counter(black_box(n));
        });
    });
    group.bench_function("tower-sessions", |b| {
        let mut n = 0u64;
        b.to_async(rt).iter(|| {
            n += 1;
            let value = black_box(n);
            let theirs = &theirs;
            async move { theirs.insert("counter", value).await.unwrap() }
        });
    });
    group.finish();
}

/// One whole request at 4, 16 and 64 fields.
fn load_commit(c: &mut Criterion, rt: &Runtime) {
    fn ours<P: Profile>(
        c: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
        rt: &Runtime,
        fields: usize,
    ) {
        let manager = manager();
        let cookies = rt.block_on(session_seed::<P>(&manager));
        c.bench_with_input(BenchmarkId::new("session", fields), &fields, |b, _| {
            let mut next = cookies.iter().cycle();
            b.to_async(rt)
                .iter(|| session_write::<P>(&manager, next.next().unwrap()));
        });
    }
    let mut group = c.benchmark_group("load_commit");
    for fields in [4, 16, 64] {
        match fields {
            4 => ours::<Profile4>(&mut group, rt, fields),
            16 => ours::<Profile16>(&mut group, rt, fields),
            _ => ours::<Profile64>(&mut group, rt, fields),
        }
        let store = Arc::new(ts::MemoryStore::default());
        let ids = rt.block_on(tower_seed(&store, fields));
        group.bench_with_input(
            BenchmarkId::new("tower-sessions", fields),
            &fields,
            |b, _| {
                let mut next = ids.iter().cycle();
                b.to_async(rt)
                    .iter(|| tower_write(&store, next.next().unwrap()));
            },
        );
    }
    group.finish();
}

/// The request benches of the earlier `benches/peers.rs`, at 20 fields.
fn requests(c: &mut Criterion, rt: &Runtime) {
    let manager = manager();
    let session_cookies = rt.block_on(session_seed::<Profile20>(&manager));
    let store = Arc::new(ts::MemoryStore::default());
    let tower_cookies = rt.block_on(tower_seed(&store, 20));

    let mut group = c.benchmark_group("one_field_write");
    group.bench_function("session", |b| {
        let mut next = session_cookies.iter().cycle();
        b.to_async(rt)
            .iter(|| session_write::<Profile20>(&manager, next.next().unwrap()));
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

/// What any read of state shared between tasks costs here at least: the
/// handle is `Clone + Send + Sync` and shares its session with the commit,
/// so safe code reaches a field through a lock.
fn lock_floor(c: &mut Criterion) {
    let mutex = Mutex::new(1u64);
    let atomic = AtomicU64::new(1);
    let mut group = c.benchmark_group("lock_floor");
    group.bench_function("mutex", |b| {
        b.iter(|| {
            *black_box(&mutex)
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
        });
    });
    group.bench_function("atomic_rmw", |b| {
        b.iter(|| black_box(&atomic).fetch_add(1, Ordering::AcqRel));
    });
    group.finish();
}

fn main() {
    let rt = runtime();
    // 16 benchmarks of about 7 s each: two minutes in all.
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(5))
        .configure_from_args();
    typed_access(&mut c, &rt);
    load_commit(&mut c, &rt);
    requests(&mut c, &rt);
    lock_floor(&mut c);
    c.final_summary();
}
