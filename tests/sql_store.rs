//! The SQL stores against real databases: SQLite in a temp file, and the
//! PostgreSQL and MariaDB servers `scripts/with-sql` starts, plus servers of
//! their own for the tests that read a server's statement log or stop it.
//!
//! ```text
//! scripts/with-sql cargo test --all-features --test sql_store
//! ```

mod support;

use std::future::Future;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use session::store::conformance;
use session::store::sql::{MySqlStore, PostgresStore, SqliteStore};
use session::store::{spawn_cleanup, ChangeSet, Created, ExpiredCleanup};
use session::{Binary, Error, Session, SessionConfig, SessionManager, SessionStore, StoreKey};
use support::{unique_name, Browser, TempDir};

fn env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!(
            "{name} is not set: run these tests through scripts/with-sql, e.g. \
             `scripts/with-sql cargo test --all-features --test sql_store`"
        )
    })
}

/// A PostgreSQL store on a table of its own, migrated.
async fn postgres(name: &str) -> PostgresStore {
    let url = env("SESSION_TEST_POSTGRES_URL");
    let store = PostgresStore::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"));
    let store = store.table(&unique_name(name)).unwrap();
    store.migrate().await.expect("migrate");
    store
}

/// A MariaDB store on a table of its own, migrated.
async fn mysql(name: &str) -> MySqlStore {
    let url = env("SESSION_TEST_MYSQL_URL");
    let store = MySqlStore::connect(&url)
        .await
        .unwrap_or_else(|error| panic!("connecting to {url}: {error}"));
    let store = store.table(&unique_name(name)).unwrap();
    store.migrate().await.expect("migrate");
    store
}

/// An SQLite store in a fresh database file, migrated; the file goes with
/// the returned dir.
async fn sqlite(name: &str) -> (SqliteStore, TempDir) {
    let dir = TempDir::new(name);
    let url = format!("sqlite://{}/sessions.db", dir.path().display());
    let store = SqliteStore::connect(&url).await.unwrap();
    store.migrate().await.expect("migrate");
    (store, dir)
}

// ---------------------------------------------------------------------------
// The contract

/// The database holds every session's fields: like the file store's
/// files, it and its journal files are the owner's alone, whatever the
/// umask.
#[cfg(unix)]
#[tokio::test]
async fn a_new_sqlite_database_is_the_owners_alone() {
    use std::os::unix::fs::PermissionsExt as _;
    let (store, dir) = sqlite("private").await;
    let key = StoreKey::new(unique_name("private"));
    let changes = ChangeSet {
        set: vec![("a", "1".into())],
        ..ChangeSet::touch(Duration::from_secs(60))
    };
    store.create(&key, &changes).await.unwrap();
    for name in ["sessions.db", "sessions.db-wal", "sessions.db-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{name}: mode {:o}", mode & 0o777);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_sqlite() {
    let (store, _dir) = sqlite("conformance").await;
    conformance::run(&store).await;
    conformance::run_cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_postgres() {
    let store = postgres("conformance").await;
    conformance::run(&store).await;
    conformance::run_cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conformance_mariadb() {
    let store = mysql("conformance").await;
    conformance::run(&store).await;
    conformance::run_cleanup(&store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_sqlite_parallel() {
    let (store, _dir) = sqlite("parallel").await;
    conformance::run_parallel(Arc::new(store)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_postgres_parallel() {
    conformance::run_parallel(Arc::new(postgres("parallel").await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn conformance_mariadb_parallel() {
    conformance::run_parallel(Arc::new(mysql("parallel").await)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_ten_thousand_sessions_ends_them_all_in_time_on_every_database() {
    let (sqlite, _dir) = sqlite("revoke-many").await;
    conformance::run_revoke_many(Arc::new(sqlite), 10_000).await;
    conformance::run_revoke_many(Arc::new(postgres("revoke-many").await), 10_000).await;
    conformance::run_revoke_many(Arc::new(mysql("revoke-many").await), 10_000).await;
}

// ---------------------------------------------------------------------------
// Through the lifecycle, on every database

/// Fields of every shape, in both codecs.
#[derive(Session, Default, Debug)]
struct Mixed {
    #[session(codec = Binary)]
    bytes: Vec<u8>,
    #[session(codec = Binary)]
    ratio: f64,
    #[session(codec = Binary)]
    big: u64,
    text: String,
    cart: Vec<String>,
    user: Option<String>,
}

/// Runs `check` on a manager over each of the three databases.
async fn on_every_database<F, Fut>(name: &str, check: F)
where
    F: Fn(SessionManager, &'static str) -> Fut,
    Fut: Future<Output = ()>,
{
    let (sqlite, _dir) = sqlite(name).await;
    let stores: [(Arc<dyn SessionStore>, &str); 3] = [
        (Arc::new(sqlite), "SQLite"),
        (Arc::new(postgres(name).await), "PostgreSQL"),
        (Arc::new(mysql(name).await), "MariaDB"),
    ];
    for (store, database) in stores {
        let manager = SessionManager::new(store, SessionConfig::default()).unwrap();
        check(manager, database).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_and_json_fields_round_trip_on_every_database() {
    on_every_database("round-trip", |manager, database| async move {
        let mut browser = Browser::new(manager);
        let all_bytes: Vec<u8> = (0..=255).collect();
        let request = browser.request();
        let mixed = request.session::<Mixed>().await.unwrap();
        mixed.set_bytes(all_bytes.clone());
        mixed.set_ratio(-0.1);
        mixed.set_big(u64::MAX);
        mixed.set_text("naïve \"quoted\" \\ \u{0} ✓".into());
        mixed.set_cart(vec!["a".into(), "ü".into()]);
        mixed.set_user(Some("ann".into()));
        browser.finish(request).await;

        let request = browser.request();
        let mixed = request.session::<Mixed>().await.unwrap();
        assert!(!mixed.is_new(), "{database}: the session was not found");
        assert_eq!(mixed.bytes(), all_bytes, "{database}: binary bytes");
        assert_eq!(mixed.ratio().to_bits(), (-0.1f64).to_bits(), "{database}");
        assert_eq!(mixed.big(), u64::MAX, "{database}");
        assert_eq!(mixed.text(), "naïve \"quoted\" \\ \u{0} ✓", "{database}");
        assert_eq!(mixed.cart(), ["a", "ü"], "{database}");
        assert_eq!(mixed.user().as_deref(), Some("ann"), "{database}");
        browser.finish(request).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_requests_changing_different_fields_both_land_on_every_database() {
    on_every_database("two-requests", |manager, database| async move {
        let mut browser = Browser::new(manager);
        let request = browser.request();
        request
            .session::<Mixed>()
            .await
            .unwrap()
            .set_text("start".into());
        browser.finish(request).await;

        // Both load the session before either commits.
        let (first, second) = (browser.request(), browser.request());
        let (one, two) = (
            first.session::<Mixed>().await.unwrap(),
            second.session::<Mixed>().await.unwrap(),
        );
        one.set_user(Some("ann".into()));
        two.cart_mut().push("book".into());
        browser.finish(first).await;
        browser.finish(second).await;

        let request = browser.request();
        let mixed = request.session::<Mixed>().await.unwrap();
        assert_eq!(
            mixed.user().as_deref(),
            Some("ann"),
            "{database}: lost the user"
        );
        assert_eq!(mixed.cart(), ["book"], "{database}: lost the cart");
        assert_eq!(mixed.text(), "start", "{database}");
        browser.finish(request).await;
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn regenerate_and_destroy_leave_no_row_behind_on_every_database() {
    on_every_database("regenerate", |manager, database| async move {
        let mut browser = Browser::new(manager.clone());
        let request = browser.request();
        let mixed = request.session::<Mixed>().await.unwrap();
        mixed.set_user(Some("ann".into()));
        mixed.set_owner(Some("ann"));
        browser.finish(request).await;
        let before = browser.cookie.clone();

        let request = browser.request();
        request.session::<Mixed>().await.unwrap().regenerate();
        browser.finish(request).await;
        assert_ne!(browser.cookie, before, "{database}: the id did not change");
        let sessions = manager.sessions_of("ann").await.unwrap();
        assert_eq!(sessions.len(), 1, "{database}: {sessions:?}");

        // The old id leads nowhere.
        let old = manager.start(before);
        assert!(old.session::<Mixed>().await.unwrap().is_new(), "{database}");
        old.finish().await.result.unwrap();

        let request = browser.request();
        let mixed = request.session::<Mixed>().await.unwrap();
        assert_eq!(mixed.user().as_deref(), Some("ann"), "{database}");
        mixed.destroy();
        browser.finish(request).await;
        assert!(
            manager.sessions_of("ann").await.unwrap().is_empty(),
            "{database}"
        );
    })
    .await;
}

// ---------------------------------------------------------------------------
// The table

#[tokio::test]
async fn migrate_is_idempotent_and_safe_to_run_concurrently() {
    let (sqlite, _dir) = sqlite("migrate").await;
    let postgres = postgres("migrate").await;
    let mysql = mysql("migrate").await;
    // Fresh tables, migrated by four callers at once, then again.
    let postgres = postgres.table(&unique_name("migrate_again")).unwrap();
    let mysql = mysql.table(&unique_name("migrate_again")).unwrap();
    let sqlite = sqlite.table("migrate_again").unwrap();
    for _ in 0..2 {
        let (p, m, s) = tokio::join!(
            futures_all(4, || postgres.migrate()),
            futures_all(4, || mysql.migrate()),
            futures_all(4, || sqlite.migrate()),
        );
        p.expect("PostgreSQL");
        m.expect("MariaDB");
        s.expect("SQLite");
    }
    let changes = ChangeSet::touch(Duration::from_secs(60));
    let key = StoreKey::new("after-migrate");
    for store in [&postgres as &dyn SessionStore, &mysql, &sqlite] {
        assert!(matches!(
            store.create(&key, &changes).await.unwrap(),
            Created::Written(_)
        ));
    }
}

/// Runs `n` calls of `call` at once; the first error, if any.
async fn futures_all<F, Fut, E>(n: usize, call: F) -> Result<(), E>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<(), E>>,
{
    let calls: Vec<_> = (0..n).map(|_| call()).collect();
    let mut outcome = Ok(());
    for result in join_all(calls).await {
        if outcome.is_ok() {
            outcome = result;
        }
    }
    outcome
}

async fn join_all<Fut: Future>(futures: Vec<Fut>) -> Vec<Fut::Output> {
    let mut pinned: Vec<_> = futures.into_iter().map(Box::pin).collect();
    let mut outputs: Vec<Option<Fut::Output>> = pinned.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (future, output) in pinned.iter_mut().zip(&mut outputs) {
            if output.is_none() {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => *output = Some(value),
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().map(Option::unwrap).collect()
}

#[tokio::test]
async fn migrate_refuses_a_table_of_another_shape() {
    let postgres = postgres("shape").await;
    let foreign = unique_name("foreign");
    sqlx::query(&format!("CREATE TABLE {foreign} (id INT PRIMARY KEY)"))
        .execute(postgres.pool())
        .await
        .unwrap();
    let error = postgres
        .table(&foreign)
        .unwrap()
        .migrate()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("store_key"), "{error}");

    let mysql = mysql("shape").await;
    sqlx::query(&format!("CREATE TABLE {foreign} (id INT PRIMARY KEY)"))
        .execute(mysql.pool())
        .await
        .unwrap();
    let error = mysql.table(&foreign).unwrap().migrate().await.unwrap_err();
    assert!(error.to_string().contains("store_key"), "{error}");

    let (sqlite, _dir) = sqlite("shape").await;
    sqlx::query("CREATE TABLE foreign_shape (id INTEGER PRIMARY KEY)")
        .execute(sqlite.pool())
        .await
        .unwrap();
    let error = sqlite
        .table("foreign_shape")
        .unwrap()
        .migrate()
        .await
        .unwrap_err();
    assert!(error.to_string().contains("store_key"), "{error}");
}

#[tokio::test]
async fn table_names_are_checked() {
    let (store, _dir) = sqlite("names").await;
    for bad in [
        "",
        "1st",
        "a-b",
        "a b",
        "a\"b",
        "x;DROP TABLE y",
        "é",
        &"t".repeat(51),
    ] {
        let refused = store.clone().table(bad);
        assert!(
            matches!(
                refused,
                Err(Error::InvalidConfig {
                    option: "table",
                    ..
                })
            ),
            "{bad:?} was accepted"
        );
    }
    assert_eq!(store.table("Session_2").unwrap().table_name(), "Session_2");
}

#[tokio::test]
async fn a_row_that_is_not_the_stores_is_a_store_error_not_a_panic() {
    let (store, _dir) = sqlite("corrupt").await;
    let far = i64::MAX / 2;
    for (key, data) in [
        ("not-json", "{"),
        ("not-base64", r#"{"a":"!!"}"#),
        ("number", r#"{"a":1}"#),
    ] {
        sqlx::query(
            "INSERT INTO sessions (store_key, data, expire, created, updated) VALUES (?1, ?2, ?3, 0, 0)",
        )
        .bind(key)
        .bind(data)
        .bind(far)
        .execute(store.pool())
        .await
        .unwrap();
        assert!(
            store.load(&StoreKey::new(key)).await.is_err(),
            "{key} loaded"
        );
    }
}

// ---------------------------------------------------------------------------
// Clean-up

/// Creates `n` sessions that expire at once, and waits until they have.
async fn expired_sessions(store: &dyn SessionStore, name: &str, n: usize) {
    let short = ChangeSet::touch(Duration::from_millis(1));
    for i in 0..n {
        let created = store
            .create(&StoreKey::new(format!("{name}-{i}")), &short)
            .await;
        assert!(matches!(created.unwrap(), Created::Written(_)));
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
}

#[tokio::test]
async fn clean_up_deletes_in_bounded_batches_on_every_database() {
    let (sqlite, _dir) = sqlite("batches").await;
    let stores: [(&dyn ExpiredCleanup, &str); 3] = [
        (&sqlite.cleanup_batch(2), "SQLite"),
        (&postgres("batches").await.cleanup_batch(2), "PostgreSQL"),
        (&mysql("batches").await.cleanup_batch(2), "MariaDB"),
    ];
    for (store, database) in stores {
        let live = StoreKey::new("live");
        store
            .create(&live, &ChangeSet::touch(Duration::from_secs(60)))
            .await
            .unwrap();
        expired_sessions(store, "expired", 5).await;
        assert_eq!(store.delete_expired().await.unwrap(), 5, "{database}");
        assert!(store.load(&live).await.unwrap().is_some(), "{database}");
    }
}

#[tokio::test]
async fn the_clean_up_task_deletes_expired_rows_and_ends_with_its_store() {
    let (store, _dir) = sqlite("task").await;
    let store = Arc::new(store);
    expired_sessions(&*store, "expired", 3).await;
    let count = || async {
        let (rows,): (i64,) = sqlx::query_as("SELECT count(*) FROM sessions")
            .fetch_one(store.pool())
            .await
            .unwrap();
        rows
    };
    assert_eq!(count().await, 3, "the expired rows are still there");
    let task = spawn_cleanup(&store, Duration::from_millis(10));
    let deadline = Instant::now() + Duration::from_secs(10);
    while count().await > 0 {
        assert!(
            Instant::now() < deadline,
            "the clean-up task left expired rows"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(store);
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .expect("the task ended with its store")
        .unwrap();
}

// ---------------------------------------------------------------------------
// Servers of their own

/// A database server of this test's own (scripts/sql-server), stopped when
/// dropped.
struct Server {
    kind: &'static str,
    dir: TempDir,
    port: u16,
    options: Vec<String>,
    url: String,
}

impl Server {
    fn start(kind: &'static str, options: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut server = Self {
            kind,
            dir: TempDir::new(kind),
            port,
            options: options.iter().map(|option| option.to_string()).collect(),
            url: String::new(),
        };
        server.restart();
        server
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("server")
    }

    fn restart(&mut self) {
        let output = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sql-server"))
            .arg("start")
            .arg(self.kind)
            .arg(self.data())
            .arg(self.port.to_string())
            .args(&self.options)
            .output()
            .expect("scripts/sql-server runs");
        assert!(
            output.status.success(),
            "the {} server did not start: {}",
            self.kind,
            String::from_utf8_lossy(&output.stderr)
        );
        self.url = String::from_utf8(output.stdout).unwrap().trim().to_owned();
    }

    fn stop(&self) {
        let status = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sql-server"))
            .arg("stop")
            .arg(self.data())
            .status()
            .expect("scripts/sql-server runs");
        assert!(status.success(), "the {} server did not stop", self.kind);
    }

    /// The server's log of every statement.
    fn statement_log(&self) -> String {
        // PostgreSQL logs to its server log; MariaDB's general log is
        // relative to its data dir.
        let log = match self.kind {
            "postgres" => "postgres.log",
            _ => "data/general.log",
        };
        std::fs::read_to_string(self.data().join(log)).unwrap()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/sql-server"))
            .arg("stop")
            .arg(self.data())
            .status();
    }
}

/// Eight fields; a commit should send only the ones that changed.
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
}

/// Fills a session, changes one field, and returns what the server logged
/// from the change on.
async fn one_field_change(store: impl SessionStore, server: &Server) -> String {
    let mut browser = Browser::new(SessionManager::new(store, SessionConfig::default()).unwrap());
    let request = browser.request();
    let wide = request.session::<Wide>().await.unwrap();
    wide.set_f01(1000);
    wide.set_f02(1001);
    wide.set_f03(1002);
    wide.set_f04(1003);
    wide.set_f05(1004);
    wide.set_f06(1005);
    wide.set_f07(1006);
    wide.set_f08(1007);
    browser.finish(request).await;
    let before = server.statement_log().len();

    let request = browser.request();
    request.session::<Wide>().await.unwrap().set_f07(3);
    browser.finish(request).await;
    let request = browser.request();
    assert_eq!(request.session::<Wide>().await.unwrap().f08(), 1007);
    browser.finish(request).await;
    server.statement_log()[before..].to_owned()
}

#[tokio::test]
async fn a_commit_sends_postgres_only_the_changed_field() {
    let server = Server::start("postgres", &["-c log_statement=all"]);
    let store = PostgresStore::connect(&server.url).await.unwrap();
    store.migrate().await.unwrap();
    let log = one_field_change(store, &server).await;
    // The update's parameters follow it on a DETAIL line.
    let update = log
        .find("UPDATE \"sessions\"")
        .expect("an UPDATE was logged");
    let parameters = log[update..]
        .lines()
        .find(|line| line.contains("DETAIL:  parameters:"))
        .expect("its parameters were logged");
    assert!(parameters.contains(r#"'{"f07":"Mw=="}'"#), "{parameters}");
    assert_eq!(log.matches("UPDATE").count(), 1, "the read wrote: {log}");
    for other in ["f01", "f02", "f03", "f04", "f05", "f06", "f08"] {
        assert!(!log.contains(other), "{other} was sent: {log}");
    }
}

#[tokio::test]
async fn a_commit_sends_mariadb_only_the_changed_field() {
    let server = Server::start(
        "mariadb",
        &["--general-log=1", "--general-log-file=general.log"],
    );
    let store = MySqlStore::connect(&server.url).await.unwrap();
    store.migrate().await.unwrap();
    let log = one_field_change(store, &server).await;
    // The general log shows each executed statement with its values.
    let update = log
        .lines()
        .find(|line| line.contains("Execute") && line.contains("JSON_MERGE_PATCH"))
        .expect("an executed UPDATE was logged");
    // (The log escapes the JSON's quotes.)
    let patch = r#"JSON_MERGE_PATCH(data, '{\"f07\":\"Mw==\"}')"#;
    assert!(update.contains(patch), "{update}");
    let updates = log.lines().filter(|line| line.contains("Execute\tUPDATE"));
    assert_eq!(updates.count(), 1, "the read wrote: {log}");
    for other in ["f01", "f02", "f03", "f04", "f05", "f06", "f08"] {
        assert!(!log.contains(other), "{other} was sent: {log}");
    }
}

/// A manager whose store calls give up after `limit`.
fn manager_with_timeout(store: impl SessionStore, limit: Duration) -> SessionManager {
    let config = SessionConfig::default().store_timeout(Some(limit));
    SessionManager::new(store, config).unwrap()
}

/// Writes a session, stops the server: the next request fails with a store
/// error within the timeout; restarts it: the session is back.
async fn down_then_back(store: impl SessionStore, server: &mut Server) {
    const LIMIT: Duration = Duration::from_secs(2);
    let mut browser = Browser::new(manager_with_timeout(store, LIMIT));
    let request = browser.request();
    request.session::<Wide>().await.unwrap().set_f01(1);
    browser.finish(request).await;

    server.stop();
    let started = Instant::now();
    let request = browser.request();
    let failed = request.session::<Wide>().await;
    assert!(
        matches!(
            failed,
            Err(Error::Store { .. } | Error::StoreTimeout { .. })
        ),
        "{}: {failed:?}",
        server.kind
    );
    let elapsed = started.elapsed();
    assert!(
        elapsed < LIMIT + Duration::from_secs(1),
        "{}: took {elapsed:?}",
        server.kind
    );
    drop(request);

    server.restart();
    let request = browser.request();
    let wide = request
        .session::<Wide>()
        .await
        .expect("the store recovered");
    assert_eq!(wide.f01(), 1, "{}: the session survived", server.kind);
    wide.set_f02(2);
    browser.finish(request).await;
}

#[tokio::test]
async fn postgres_down_fails_fast_and_the_store_recovers() {
    let mut server = Server::start("postgres", &[]);
    let store = PostgresStore::connect(&server.url).await.unwrap();
    store.migrate().await.unwrap();
    down_then_back(store, &mut server).await;
}

#[tokio::test]
async fn mariadb_down_fails_fast_and_the_store_recovers() {
    let mut server = Server::start("mariadb", &[]);
    let store = MySqlStore::connect(&server.url).await.unwrap();
    store.migrate().await.unwrap();
    down_then_back(store, &mut server).await;
}
