//! The Redis store against real servers: a single node and a three-master
//! Cluster that `scripts/with-redis` starts, plus private servers this file
//! starts itself where a test needs the server to itself (byte counts) or
//! stops it (failures).
//!
//! ```text
//! scripts/with-redis cargo test --all-features --test redis_store
//! ```

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use session::store::redis::RedisStore;
use session::store::{conformance, ChangeSet, Created, Moved, Record, Update, Updated};
use session::{Session, SessionConfig, SessionManager, SessionStore, StoreKey};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through scripts/with-redis, e.g. \
             `scripts/with-redis cargo test --all-features --test redis_store`"
        )
    })
}

/// A namespace no other test (or earlier run) uses.
fn namespace(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("test-{name}-{nanos}-{n}")
}

async fn single(name: &str) -> RedisStore {
    let url = env("SESSION_TEST_REDIS_URL");
    RedisStore::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"))
        .namespace(namespace(name))
}

/// Guards the shared Cluster's functions library, which one test deletes
/// again and again: that test has the Cluster to itself, the others share it.
static CLUSTER_LIBRARY: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

async fn cluster(name: &str) -> RedisStore {
    let urls = env("SESSION_TEST_REDIS_CLUSTER_URLS");
    let urls: Vec<&str> = urls.split(',').collect();
    RedisStore::connect_cluster(&urls)
        .await
        .unwrap_or_else(|error| panic!("connecting to the cluster {urls:?}: {error}"))
        .namespace(namespace(name))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_single_node() {
    conformance::run(&single("conformance").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_single_node_parallel() {
    conformance::run_parallel(Arc::new(single("parallel").await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_cluster() {
    let _shared = CLUSTER_LIBRARY.read().await;
    conformance::run(&cluster("conformance").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_cluster_parallel() {
    let _shared = CLUSTER_LIBRARY.read().await;
    conformance::run_parallel(Arc::new(cluster("parallel").await)).await;
}

// ---------------------------------------------------------------------------
// Through the lifecycle, on a private server

/// A redis-server of this test's own, on a free loopback port, killed on drop.
struct Server {
    port: u16,
    dir: std::path::PathBuf,
    child: Option<Child>,
}

impl Server {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = std::env::temp_dir().join(format!("redis-store-test-{port}"));
        std::fs::create_dir_all(&dir).unwrap();
        let mut server = Self {
            port,
            dir,
            child: None,
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .arg("--dir")
            .arg(&self.dir)
            .stdout(Stdio::null())
            .spawn()
            .expect("redis-server (run through scripts/with-redis, which needs it too)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.cli(&["PING"]) != "PONG" {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    fn cli(&self, args: &[&str]) -> String {
        let output = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// A number from `INFO section`.
    fn info(&self, section: &str, name: &str) -> u64 {
        let info = self.cli(&["INFO", section]);
        info.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .map_or(0, |rest| {
                // `cmdstat_x:calls=N,...` or `name:N`.
                let rest = rest.strip_prefix("calls=").unwrap_or(rest);
                rest.split(',').next().unwrap().trim().parse().unwrap()
            })
    }

    /// The bytes the server has read so far, minus the `INFO` asking.
    fn bytes_in(&self) -> u64 {
        self.info("stats", "total_net_input_bytes")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[derive(Session, Default, Debug)]
struct Wide {
    f01: u32,
    f02: u32,
    f03: u32,
    f04: u32,
    f05: u32,
    f06: u32,
    f07: u32,
    f08: u32,
    f09: u32,
    f10: u32,
    f11: u32,
    f12: u32,
    f13: u32,
    f14: u32,
    f15: u32,
    f16: u32,
    f17: u32,
    f18: u32,
    f19: u32,
    f20: u32,
}

fn fill(wide: &Session<Wide>) {
    wide.set_f01(1001);
    wide.set_f02(1002);
    wide.set_f03(1003);
    wide.set_f04(1004);
    wide.set_f05(1005);
    wide.set_f06(1006);
    wide.set_f07(1007);
    wide.set_f08(1008);
    wide.set_f09(1009);
    wide.set_f10(1010);
    wide.set_f11(1011);
    wide.set_f12(1012);
    wide.set_f13(1013);
    wide.set_f14(1014);
    wide.set_f15(1015);
    wide.set_f16(1016);
    wide.set_f17(1017);
    wide.set_f18(1018);
    wide.set_f19(1019);
    wide.set_f20(1020);
}

/// A browser of the lifecycle: keeps its cookie between requests.
struct Browser {
    manager: SessionManager,
    cookie: Option<String>,
}

impl Browser {
    fn new(store: RedisStore, config: SessionConfig) -> Self {
        Self {
            manager: SessionManager::new(store, config).unwrap(),
            cookie: None,
        }
    }

    async fn visit(&mut self, body: impl FnOnce(&Session<Wide>)) {
        let request = self.manager.start(self.cookie.clone());
        body(&request.session::<Wide>().await.unwrap());
        let finished = request.finish().await;
        finished.result.expect("the commit succeeds");
        if let Some(cookie) = finished.cookie {
            self.cookie = Some(cookie.value().to_owned());
        }
    }
}

/// The one session's hash key in a namespace (the only one there).
fn only_key(server: &Server, namespace: &str) -> String {
    let keys = server.cli(&["--scan", "--pattern", &format!("{namespace}:{{*")]);
    let keys: Vec<&str> = keys.lines().collect();
    assert_eq!(keys.len(), 1, "one session hash: {keys:?}");
    keys[0].to_owned()
}

#[tokio::test]
async fn a_one_field_update_sends_only_that_field_and_a_read_sends_no_write() {
    let server = Server::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let mut browser = Browser::new(store, SessionConfig::default());
    browser.visit(fill).await;
    let key = only_key(&server, "session");
    assert_eq!(server.cli(&["HGET", &key, "f07"]), "1007");
    let ttl: u64 = server.cli(&["PTTL", &key]).parse().unwrap();
    assert!(ttl > 86_000_000, "a one-day session, ttl {ttl} ms");

    // Change a field behind the store's back: an update that sent every
    // field would put it back.
    server.cli(&["HSET", &key, "f13", "777"]);
    // Warm up (the first call loads the functions library), so that the
    // measured requests send no Lua.
    browser.visit(|wide| wide.set_f07(2)).await;
    let info_cost = server.bytes_in().abs_diff(server.bytes_in());

    let manager = browser.manager.clone();
    let request = manager.start(browser.cookie.clone());
    let before = server.bytes_in();
    let wide = request.session::<Wide>().await.unwrap();
    let load_bytes = server.bytes_in() - before - info_cost;
    assert_eq!(wide.f13(), 777);
    wide.set_f07(wide.f07() + 1);
    let before = server.bytes_in();
    request.finish().await.result.unwrap();
    let update_bytes = server.bytes_in() - before - info_cost;
    drop(wide);
    eprintln!("bytes sent to Redis: load {load_bytes}, one-field update {update_bytes}");

    assert_eq!(server.cli(&["HGET", &key, "f07"]), "3");
    assert_eq!(
        server.cli(&["HGET", &key, "f13"]),
        "777",
        "the update rewrote a field it did not change"
    );
    assert_eq!(server.cli(&["HLEN", &key]), (20 + 3).to_string());
    // A load: FCALL_RO, the function's 6-character name, the key count and
    // the 53-byte key, 97 bytes. An update: a MULTI of five commands on the
    // key (about 70 bytes each for the key alone) and the one field, 562
    // bytes; each other field would add at least 15.
    assert!(load_bytes <= 97, "a load sent {load_bytes} bytes");
    assert!(
        update_bytes <= 570,
        "a one-field update sent {update_bytes} bytes"
    );

    // A request that only reads: a load, and no write command at all (nor
    // a function call that may write: loads are `FCALL_RO`).
    let writes = [
        "hset", "hdel", "pexpire", "del", "rename", "hincrby", "sadd", "srem", "fcall",
    ];
    let count = |server: &Server| -> Vec<u64> {
        writes
            .iter()
            .map(|command| server.info("commandstats", &format!("cmdstat_{command}")))
            .collect()
    };
    let (writes_before, loads_before) = (
        count(&server),
        server.info("commandstats", "cmdstat_hgetall"),
    );
    browser
        .visit(|wide| assert_eq!((wide.f07(), wide.f13()), (3, 777)))
        .await;
    assert_eq!(
        server.info("commandstats", "cmdstat_hgetall"),
        loads_before + 1,
        "the read-only request loaded the session once"
    );
    assert_eq!(
        count(&server),
        writes_before,
        "a read-only request sent a write command ({writes:?})"
    );
}

#[tokio::test]
async fn a_stopped_server_fails_requests_in_time_and_a_restarted_one_serves_again() {
    let mut server = Server::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let config = SessionConfig::default();
    let store_timeout = Duration::from_secs(5); // SessionConfig's default.
    let mut browser = Browser::new(store, config);
    browser.visit(|wide| wide.set_f01(1)).await;

    server.stop();
    for attempt in 0..3 {
        let started = Instant::now();
        let request = browser.manager.start(browser.cookie.clone());
        let loaded = request.session::<Wide>().await;
        let elapsed = started.elapsed();
        eprintln!("attempt {attempt}: a load against a stopped server failed in {elapsed:?}");
        assert!(
            loaded.is_err(),
            "attempt {attempt}: a request against a stopped server loaded a session"
        );
        assert!(
            elapsed < store_timeout,
            "attempt {attempt}: the error took {elapsed:?}, beyond the store timeout"
        );
        let request = browser.manager.start(None);
        request.session::<Wide>().await.unwrap().set_f01(1);
        let started = Instant::now();
        let finished = request.finish().await;
        assert!(
            finished.result.is_err(),
            "attempt {attempt}: a write to a stopped server succeeded"
        );
        assert!(started.elapsed() < store_timeout);
    }

    server.restart();
    // The server came back empty: the old session is gone, a new one starts.
    let request = browser.manager.start(browser.cookie.clone());
    let wide = request
        .session::<Wide>()
        .await
        .expect("the first request after the server is back succeeds");
    assert_eq!(wide.f01(), 0);
    wide.set_f01(2);
    drop(wide);
    request.finish().await.result.expect("its write succeeds");
}

#[tokio::test]
async fn owners_are_indexed_in_their_own_set() {
    let server = Server::start();
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .namespace("shop");
    let change = session::store::ChangeSet {
        owner: session::store::Update::Set(Some("ann".into())),
        ..session::store::ChangeSet::touch(Duration::from_secs(60))
    };
    let key = session::StoreKey::new("k1");
    store.create(&key, &change).await.unwrap();
    assert_eq!(server.cli(&["HGET", "shop:{k1}", ".owner"]), "ann");
    let sets = server.cli(&["--scan", "--pattern", "shop:owned:*"]);
    assert_eq!(sets.lines().count(), 1, "one owner set: {sets}");
    let set = sets.trim().to_owned();
    let hash = set
        .strip_prefix("shop:owned:{")
        .and_then(|rest| rest.strip_suffix('}'))
        .expect("shop:owned:{<sha-256>}");
    assert!(hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()));
    assert_eq!(server.cli(&["ZRANGE", &set, "0", "-1"]), "k1");
    store.delete(&key).await.unwrap();
    assert_eq!(server.cli(&["ZCARD", &set]), "0");
}

// ---------------------------------------------------------------------------
// Functions lost by the server

/// Exercises every kind of call, removing the functions library (with
/// `flush`) before each: each must load it again and succeed.
async fn recovers_from_lost_functions(store: &RedisStore, flush: impl Fn()) {
    use session::store::{ChangeSet, Moved, Update, Updated};
    use session::StoreKey;

    let life = Duration::from_secs(60);
    // Fresh keys per call: a move leaves a gone mark on the keys it used.
    let round = namespace("round");
    let (k1, k2) = (
        StoreKey::new(format!("{round}-1")),
        StoreKey::new(format!("{round}-2")),
    );
    let owned = ChangeSet {
        set: vec![("a", "1".into())],
        owner: Update::Set(Some("ann".into())),
        ..ChangeSet::touch(life)
    };
    flush();
    store.create(&k1, &owned).await.expect("create");
    flush();
    let record = store.load(&k1).await.expect("load").expect("a session");
    assert_eq!(record.fields.get("a").as_deref(), Some(&b"1"[..]));
    flush();
    let update = ChangeSet {
        set: vec![("a", "2".into())],
        ..ChangeSet::touch(life)
    };
    assert!(matches!(
        store.update(&k1, &update).await.expect("update"),
        Updated::Written(_)
    ));
    flush();
    let listed = store.list_owned("ann").await.expect("list_owned");
    assert_eq!(listed.len(), 1);
    flush();
    let moved = store
        .rekey(&k1, &k2, &update, &record)
        .await
        .expect("rekey");
    assert!(matches!(moved, Moved::Written(_)));
    flush();
    assert_eq!(
        store.delete_owned("ann", None).await.expect("delete_owned"),
        1
    );
    assert_eq!(store.load(&k2).await.unwrap(), None);
    store.create(&k1, &owned).await.unwrap();
    flush();
    store.delete(&k1).await.expect("delete");
    assert_eq!(store.load(&k1).await.unwrap(), None);
}

#[tokio::test]
async fn a_single_node_that_lost_the_functions_gets_them_again() {
    let server = Server::start();
    let store = RedisStore::connect(&server.url())
        .await
        .unwrap()
        .namespace(namespace("lost"));
    let flush = || assert_eq!(server.cli(&["FUNCTION", "FLUSH"]), "OK");
    recovers_from_lost_functions(&store, flush).await;
    assert_ne!(server.cli(&["FUNCTION", "LIST"]), "", "the library is back");

    // Through the lifecycle too: a restart without persistence loses them.
    let mut browser = Browser::new(store, SessionConfig::default());
    browser.visit(|wide| wide.set_f01(1)).await;
    flush();
    browser.visit(|wide| wide.set_f01(wide.f01() + 1)).await;
    flush();
    browser.visit(|wide| assert_eq!(wide.f01(), 2)).await;
}

#[tokio::test]
async fn every_cluster_primary_that_lost_the_functions_gets_them_again() {
    let _alone = CLUSTER_LIBRARY.write().await;
    let store = cluster("lost").await;
    let urls = env("SESSION_TEST_REDIS_CLUSTER_URLS");
    let ports: Vec<String> = urls
        .split(',')
        .map(|url| url.rsplit(':').next().unwrap().to_owned())
        .collect();
    let cli = |port: &str, args: &[&str]| {
        let output = Command::new("redis-cli")
            .args(["-p", port])
            .args(args)
            .output()
            .expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    };
    // Each primary loses them in turn, then all at once.
    for port in &ports {
        recovers_from_lost_functions(&store, || {
            assert_eq!(cli(port, &["FUNCTION", "FLUSH"]), "OK");
        })
        .await;
    }
    recovers_from_lost_functions(&store, || {
        for port in &ports {
            assert_eq!(cli(port, &["FUNCTION", "FLUSH"]), "OK");
        }
    })
    .await;
    for port in &ports {
        assert_ne!(
            cli(port, &["FUNCTION", "LIST"]),
            "",
            "the library is back on the primary at port {port}"
        );
    }
}

// ---------------------------------------------------------------------------
// Owners, lifetimes and full servers, checked on the raw keys

/// Raw access, through `redis-cli`, to the server or Cluster a store uses.
enum Raw {
    Node(String),
    Cluster(Vec<String>),
}

impl Raw {
    fn port(url: &str) -> String {
        url.rsplit(':').next().unwrap().to_owned()
    }

    fn single() -> Self {
        Self::Node(Self::port(&env("SESSION_TEST_REDIS_URL")))
    }

    fn cluster() -> Self {
        let urls = env("SESSION_TEST_REDIS_CLUSTER_URLS");
        Self::Cluster(urls.split(',').map(Self::port).collect())
    }

    /// One command, on whichever node holds its key.
    fn cli(&self, args: &[&str]) -> String {
        let mut command = Command::new("redis-cli");
        match self {
            Self::Node(port) => command.args(["-p", port]),
            Self::Cluster(ports) => command.args(["-c", "-p", &ports[0]]),
        };
        let output = command.args(args).output().expect("redis-cli");
        String::from_utf8_lossy(&output.stdout).trim().to_owned()
    }

    /// Every key matching `pattern`, on every node.
    fn scan(&self, pattern: &str) -> Vec<String> {
        let ports = match self {
            Self::Node(port) => std::slice::from_ref(port),
            Self::Cluster(ports) => ports.as_slice(),
        };
        let mut keys = Vec::new();
        for port in ports {
            let output = Command::new("redis-cli")
                .args(["-p", port, "--scan", "--pattern", pattern])
                .output()
                .expect("redis-cli");
            keys.extend(
                String::from_utf8_lossy(&output.stdout)
                    .lines()
                    .map(str::to_owned),
            );
        }
        keys
    }

    /// The one owner set in `namespace`.
    fn owner_set(&self, namespace: &str) -> String {
        let sets = self.scan(&format!("{namespace}:owned:*"));
        assert_eq!(sets.len(), 1, "one owner set: {sets:?}");
        sets[0].clone()
    }

    fn members(&self, set: &str) -> BTreeSet<String> {
        let members = self.cli(&["ZRANGE", set, "0", "-1"]);
        members.lines().map(str::to_owned).collect()
    }

    /// Fails unless no session hash in `namespace` lacks a TTL.
    fn assert_every_session_expires(&self, namespace: &str, what: &str) {
        for key in self.scan(&format!("{namespace}:{{*")) {
            let ttl = self.cli(&["PTTL", &key]);
            assert_ne!(ttl, "-1", "{what}: {key} has no TTL");
        }
    }
}

async fn single_raw(name: &str) -> (RedisStore, Raw, String) {
    let namespace = namespace(name);
    let url = env("SESSION_TEST_REDIS_URL");
    let store = RedisStore::connect(&url).await.unwrap();
    (store.namespace(namespace.clone()), Raw::single(), namespace)
}

async fn cluster_raw(name: &str) -> (RedisStore, Raw, String) {
    let namespace = namespace(name);
    let urls = env("SESSION_TEST_REDIS_CLUSTER_URLS");
    let urls: Vec<&str> = urls.split(',').collect();
    let store = RedisStore::connect_cluster(&urls).await.unwrap();
    (
        store.namespace(namespace.clone()),
        Raw::cluster(),
        namespace,
    )
}

const HOUR: Duration = Duration::from_secs(60 * 60);

/// A change set setting field `a`, with the default lifetime `life`.
fn field(life: Duration) -> ChangeSet {
    ChangeSet {
        set: vec![("a", "1".into())],
        ..ChangeSet::touch(life)
    }
}

fn owned(owner: &str) -> ChangeSet {
    ChangeSet {
        owner: Update::Set(Some(owner.into())),
        ..field(HOUR)
    }
}

/// A fresh store key.
fn fresh(name: &str) -> StoreKey {
    StoreKey::new(namespace(name))
}

async fn record(store: &RedisStore, key: &StoreKey) -> session::store::Record {
    store.load(key).await.unwrap().expect("a live session")
}

/// A zero or sub-millisecond lifetime means "expired": whatever writes it,
/// the session is gone at once, and no write leaves a hash without a TTL (a
/// hash written back after `PEXPIRE key 0` would never expire).
async fn a_zero_lifetime_leaves_no_key((store, raw, namespace): (RedisStore, Raw, String)) {
    for life in [Duration::ZERO, Duration::from_micros(500)] {
        let expire_now = ChangeSet {
            max_age: Update::Set(Some(life)),
            ..field(life)
        };
        let created = fresh("zero-create");
        store.create(&created, &expire_now).await.unwrap();
        let by_default = fresh("zero-default");
        store.create(&by_default, &field(life)).await.unwrap();
        let updated = fresh("zero-update");
        store.create(&updated, &field(HOUR)).await.unwrap();
        store.update(&updated, &expire_now).await.unwrap();
        let (from, to) = (fresh("zero-from"), fresh("zero-to"));
        store.create(&from, &field(HOUR)).await.unwrap();
        let whole = record(&store, &from).await;
        store.rekey(&from, &to, &expire_now, &whole).await.unwrap();
        for key in [&created, &by_default, &updated, &from, &to] {
            let hash = format!("{namespace}:{{{}}}", key.as_str());
            assert_eq!(
                raw.cli(&["EXISTS", &hash]),
                "0",
                "lifetime {life:?}: {hash} outlived an 'expire now' (PTTL {})",
                raw.cli(&["PTTL", &hash])
            );
            assert_eq!(store.load(key).await.unwrap(), None);
        }
    }
    raw.assert_every_session_expires(&namespace, "after zero lifetimes");
}

#[tokio::test]
async fn a_zero_lifetime_leaves_no_key_on_a_single_node() {
    a_zero_lifetime_leaves_no_key(single_raw("zero").await).await;
}

#[tokio::test]
async fn a_zero_lifetime_leaves_no_key_on_a_cluster() {
    let _shared = CLUSTER_LIBRARY.read().await;
    a_zero_lifetime_leaves_no_key(cluster_raw("zero").await).await;
}

/// Makes the set of `owner` refuse writes (`WRONGTYPE`: it is not a set).
async fn break_owner_set(store: &RedisStore, raw: &Raw, namespace: &str, owner: &str) {
    // Found as the set that lists a session of the owner's.
    let key = fresh("breaking");
    store.create(&key, &owned(owner)).await.unwrap();
    let set = raw
        .scan(&format!("{namespace}:owned:*"))
        .into_iter()
        .find(|set| {
            raw.cli(&["ZSCORE", set, key.as_str()])
                .parse::<f64>()
                .is_ok()
        })
        .expect("the owner's set");
    store.delete(&key).await.unwrap();
    raw.cli(&["DEL", &set]);
    assert_eq!(raw.cli(&["SET", &set, "not a set"]), "OK");
}

fn hash_key(namespace: &str, key: &StoreKey) -> String {
    format!("{namespace}:{{{}}}", key.as_str())
}

fn bind_to(owner: &str) -> ChangeSet {
    ChangeSet {
        owner: Update::Set(Some(owner.into())),
        ..ChangeSet::touch(HOUR)
    }
}

/// When the owner's set refuses a write, a write that binds a session to
/// that owner fails and leaves nothing owned and unlisted behind: the set
/// lists a session before it is written.
async fn a_failing_owner_set_leaves_no_session_unlisted(
    (store, raw, namespace): (RedisStore, Raw, String),
) {
    break_owner_set(&store, &raw, &namespace, "bob").await;
    let created = fresh("created");
    assert!(store.create(&created, &owned("bob")).await.is_err());
    let hash = hash_key(&namespace, &created);
    assert_eq!(raw.cli(&["EXISTS", &hash]), "0", "created unlisted");

    let anns = fresh("anns");
    store.create(&anns, &owned("ann")).await.unwrap();
    assert!(store.update(&anns, &bind_to("bob")).await.is_err());
    let record = record(&store, &anns).await;
    assert_eq!(
        record.owner.as_deref(),
        Some("ann"),
        "bound to bob unlisted"
    );
}

#[tokio::test]
async fn a_failing_owner_set_leaves_no_session_unlisted_on_a_single_node() {
    a_failing_owner_set_leaves_no_session_unlisted(single_raw("unlisted").await).await;
}

#[tokio::test]
async fn a_failing_owner_set_leaves_no_session_unlisted_on_a_cluster() {
    let _shared = CLUSTER_LIBRARY.read().await;
    a_failing_owner_set_leaves_no_session_unlisted(cluster_raw("unlisted").await).await;
}

/// A move (regenerate) whose owner's set refuses the new key fails before
/// it moves anything: the session stays under its old key, owned and
/// listed as before, so the request's error does not log the user out.
async fn a_move_whose_owner_set_fails_keeps_the_session(
    (store, raw, namespace): (RedisStore, Raw, String),
) {
    let anns = fresh("anns");
    store.create(&anns, &owned("ann")).await.unwrap();
    let whole = record(&store, &anns).await;
    let moved = fresh("moved");
    let still_there = |what: &str| {
        assert_eq!(
            raw.cli(&["EXISTS", &hash_key(&namespace, &moved)]),
            "0",
            "{what}: a session under the new key"
        );
        let hash = hash_key(&namespace, &anns);
        assert_eq!(raw.cli(&["HGET", &hash, ".owner"]), "ann", "{what}");
    };

    // Bound to bob as it moves.
    break_owner_set(&store, &raw, &namespace, "bob").await;
    let failed = store.rekey(&anns, &moved, &bind_to("bob"), &whole).await;
    assert!(failed.is_err(), "a move bound to bob: {failed:?}");
    still_there("a move bound to bob");
    let listed = store.list_owned("ann").await.unwrap();
    assert_eq!(listed.len(), 1, "ann's session is still listed");

    // Keeping its owner, whose set refuses too.
    break_owner_set(&store, &raw, &namespace, "ann").await;
    let kept = ChangeSet::touch(HOUR);
    let failed = store.rekey(&anns, &moved, &kept, &whole).await;
    assert!(failed.is_err(), "a move keeping ann: {failed:?}");
    still_there("a move keeping ann");
}

#[tokio::test]
async fn a_move_whose_owner_set_fails_keeps_the_session_on_a_single_node() {
    a_move_whose_owner_set_fails_keeps_the_session(single_raw("kept").await).await;
}

#[tokio::test]
async fn a_move_whose_owner_set_fails_keeps_the_session_on_a_cluster() {
    let _shared = CLUSTER_LIBRARY.read().await;
    a_move_whose_owner_set_fails_keeps_the_session(cluster_raw("kept").await).await;
}

/// A plain update (a `MULTI`, which cannot stop halfway) of a session that
/// has ended finds it gone and leaves no key behind; and a hash that lacks
/// `.created`, as such an update leaves should its clean-up fail, is never
/// taken for a session: not loaded, not updated, not moved, not listed.
async fn a_write_to_an_ended_session_leaves_nothing_live(
    (store, raw, namespace): (RedisStore, Raw, String),
) {
    let ended = fresh("ended");
    store.create(&ended, &owned("cy")).await.unwrap();
    store.delete(&ended).await.unwrap();
    let gone = store.update(&ended, &field(HOUR)).await.unwrap();
    assert!(
        matches!(gone, Updated::Gone),
        "update of an ended session: {gone:?}"
    );
    let hash = hash_key(&namespace, &ended);
    assert_eq!(raw.cli(&["EXISTS", &hash]), "0", "what the update left");

    raw.cli(&[
        "HSET", &hash, "a", "1", ".v", "7", ".updated", "1", ".owner", "cy",
    ]);
    raw.cli(&["PEXPIRE", &hash, "3600000"]);
    assert_eq!(store.load(&ended).await.unwrap(), None, "load");
    for (what, changes) in [
        ("plain update", field(HOUR)),
        ("owner change", bind_to("cy")),
    ] {
        let gone = store.update(&ended, &changes).await.unwrap();
        assert!(matches!(gone, Updated::Gone), "{what}: {gone:?}");
    }
    let whole = Record {
        fields: Default::default(),
        ttl: HOUR,
        max_age: None,
        owner: Some("cy".into()),
    };
    let moved = fresh("moved-leftover");
    let gone = store
        .rekey(&ended, &moved, &field(HOUR), &whole)
        .await
        .unwrap();
    assert!(matches!(gone, Moved::Gone), "rekey: {gone:?}");
    assert_eq!(store.load(&moved).await.unwrap(), None, "the moved copy");
    let listed = store.list_owned("cy").await.unwrap();
    assert!(listed.is_empty(), "cy's sessions: {listed:?}");
}

#[tokio::test]
async fn a_write_to_an_ended_session_leaves_nothing_live_on_a_single_node() {
    a_write_to_an_ended_session_leaves_nothing_live(single_raw("ended").await).await;
}

#[tokio::test]
async fn a_write_to_an_ended_session_leaves_nothing_live_on_a_cluster() {
    let _shared = CLUSTER_LIBRARY.read().await;
    a_write_to_an_ended_session_leaves_nothing_live(cluster_raw("ended").await).await;
}

/// With `noeviction` and `maxmemory` reached, writes fail but logging out
/// (delete) and revoking (delete_owned) still work.
#[tokio::test]
async fn deleting_works_on_a_full_server() {
    let server = Server::start();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let owned_keys: Vec<StoreKey> = (0..3).map(|n| StoreKey::new(format!("ann-{n}"))).collect();
    for key in &owned_keys {
        store.create(key, &owned("ann")).await.unwrap();
    }
    let mine = StoreKey::new("mine");
    store.create(&mine, &field(HOUR)).await.unwrap();

    let used = server.info("memory", "used_memory");
    server.cli(&["CONFIG", "SET", "maxmemory-policy", "noeviction"]);
    server.cli(&[
        "CONFIG",
        "SET",
        "maxmemory",
        &(used + 256 * 1024).to_string(),
    ]);
    let big = ChangeSet {
        set: vec![("big", vec![b'x'; 16 * 1024].into())],
        ..ChangeSet::touch(HOUR)
    };
    let mut full = false;
    for n in 0..1000 {
        if store
            .create(&StoreKey::new(format!("filler-{n}")), &big)
            .await
            .is_err()
        {
            full = true;
            break;
        }
    }
    assert!(full, "the server never filled up");
    assert!(store.create(&StoreKey::new("more"), &big).await.is_err());

    record(&store, &mine).await;
    store
        .delete(&mine)
        .await
        .expect("logging out on a full server");
    assert_eq!(store.load(&mine).await.unwrap(), None);
    let revoked = store.delete_owned("ann", None).await;
    assert_eq!(revoked.expect("revoking on a full server"), 3);
    for key in &owned_keys {
        assert_eq!(store.load(key).await.unwrap(), None);
    }
}

/// Creates `count` sessions of `owner`, many at once.
async fn create_many(store: &RedisStore, owner: &str, count: usize) -> Vec<StoreKey> {
    let keys: Vec<StoreKey> = (0..count).map(|_| fresh("many")).collect();
    let mut running = tokio::task::JoinSet::new();
    for chunk in keys.chunks(count.div_ceil(64)) {
        let (store, chunk, owner) = (store.clone(), chunk.to_vec(), owner.to_owned());
        running.spawn(async move {
            for key in chunk {
                let created = store.create(&key, &owned(&owner)).await.unwrap();
                assert!(matches!(created, Created::Written(_)));
            }
        });
    }
    while let Some(done) = running.join_next().await {
        done.unwrap();
    }
    keys
}

/// "Log out other devices" for an owner of many sessions: the one kept
/// stays, and is all its owner's set still lists.
async fn revoking_many_sessions_keeps_one_and_empties_the_set(
    (store, raw, namespace): (RedisStore, Raw, String),
) {
    let keys = create_many(&store, "many", 500).await;
    let mine = &keys[0];
    let revoked = store.delete_owned("many", Some(mine)).await.unwrap();
    assert_eq!(revoked, 499);
    record(&store, mine).await;
    assert_eq!(store.load(&keys[1]).await.unwrap(), None);
    let set = raw.owner_set(&namespace);
    assert_eq!(
        raw.members(&set),
        BTreeSet::from([mine.as_str().to_owned()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_many_sessions_keeps_one_and_empties_the_set_on_a_single_node() {
    revoking_many_sessions_keeps_one_and_empties_the_set(single_raw("many").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_many_sessions_keeps_one_and_empties_the_set_on_a_cluster() {
    let _shared = CLUSTER_LIBRARY.read().await;
    revoking_many_sessions_keeps_one_and_empties_the_set(cluster_raw("many").await).await;
}

/// 10,000 sessions of one owner are revoked within the store timeout: one
/// call on a single node, calls in flight together on a Cluster.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_ten_thousand_sessions_ends_them_all_in_time_on_a_single_node() {
    conformance::run_revoke_many(Arc::new(single("many").await), 10_000).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_ten_thousand_sessions_ends_them_all_in_time_on_a_cluster() {
    let _shared = CLUSTER_LIBRARY.read().await;
    conformance::run_revoke_many(Arc::new(cluster("many").await), 10_000).await;
}

/// An owner's set shrinks back to the live sessions without anyone listing
/// them: each write that lists a session checks the two members listed
/// longest ago. A member listed lately stays however stale it looks (a
/// write may still be on its way to it), and listing prunes the rest.
async fn owner_sets_are_pruned_as_they_grow((store, raw, namespace): (RedisStore, Raw, String)) {
    let keys = create_many(&store, "ann", 20).await;
    let set = raw.owner_set(&namespace);
    let (live, ended) = keys.split_at(5);
    for key in ended {
        // Expired, as far as the set can tell.
        raw.cli(&["DEL", &format!("{namespace}:{{{}}}", key.as_str())]);
    }
    // Listed lately: kept, whatever happens to its session.
    let recent = ended[0].as_str().to_owned();
    for key in &keys {
        if key.as_str() != recent {
            // Listed long ago.
            raw.cli(&["ZADD", &set, "XX", "0", key.as_str()]);
        }
    }
    let mut expected: BTreeSet<String> = live.iter().map(|key| key.as_str().to_owned()).collect();
    expected.insert(recent.clone());
    for _ in 0..10 {
        let key = fresh("login");
        store.create(&key, &owned("ann")).await.unwrap();
        expected.insert(key.as_str().to_owned());
    }
    assert_eq!(raw.members(&set), expected, "pruned by the writes");

    raw.cli(&["ZADD", &set, "XX", "0", &recent]);
    let listed = store.list_owned("ann").await.unwrap();
    assert_eq!(listed.len(), 15);
    expected.remove(&recent);
    assert_eq!(raw.members(&set), expected, "pruned by listing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_sets_are_pruned_as_they_grow_on_a_single_node() {
    owner_sets_are_pruned_as_they_grow(single_raw("pruned").await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn owner_sets_are_pruned_as_they_grow_on_a_cluster() {
    let _shared = CLUSTER_LIBRARY.read().await;
    owner_sets_are_pruned_as_they_grow(cluster_raw("pruned").await).await;
}
