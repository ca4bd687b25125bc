//! The demo as separate processes sharing one store, driven over real HTTP:
//! a client alternating between two processes while two concurrent streams
//! change different fields loses nothing, a session survives a restart, and
//! a process killed (SIGKILL) in the middle of thousands of writes leaves
//! every session readable, none missing a write it acknowledged, and no temp
//! file the sweep does not remove.
//!
//! Runs the `demo` example binary that `cargo test` builds, on the file store,
//! on SQLite, and on the Redis and PostgreSQL servers `scripts/with-redis`
//! and `scripts/with-sql` start; the restart also with cookie-only sessions.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use session::store::file::FileStore;
use session::store::ExpiredCleanup;
use support::demo::Demo;
use support::TempDir;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A client with one cookie, talking plain HTTP/1.1.
#[derive(Clone, Default)]
struct Client {
    cookie: Option<String>,
}

impl Client {
    /// Sends a request to `demo`; returns the status and the body, keeping
    /// any session cookie the response sets.
    async fn send(
        &mut self,
        demo: &Demo,
        method: &str,
        path: &str,
        form: Option<&str>,
    ) -> (u16, String) {
        let (status, set_cookie, body) =
            exchange(demo.port, method, path, self.cookie.as_deref(), form)
                .await
                .expect("a complete exchange");
        if let Some(pair) = set_cookie {
            let removal = pair
                .split_once('=')
                .is_none_or(|(_, value)| value.is_empty());
            self.cookie = (!removal).then_some(pair);
        }
        (status, body)
    }

    async fn json(&mut self, demo: &Demo) -> serde_json::Value {
        let (status, body) = self.send(demo, "GET", "/api/session", None).await;
        assert_eq!(status, 200, "{body}");
        serde_json::from_str(&body).unwrap()
    }
}

/// One HTTP/1.1 exchange: status, the `Set-Cookie` pair, the body; `None`
/// if the connection failed or was cut.
async fn exchange(
    port: u16,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Option<(u16, Option<String>, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.ok()?;
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(cookie) = cookie {
        head.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        head.push_str("Content-Type: application/x-www-form-urlencoded\r\n");
    }
    head.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(head.as_bytes()).await.ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let set_cookie = head.lines().find_map(|line| {
        let value = line
            .strip_prefix("set-cookie: ")
            .or_else(|| line.strip_prefix("Set-Cookie: "))?;
        Some(value.split(';').next().unwrap().to_owned())
    });
    Some((status, set_cookie, body.to_owned()))
}

/// Two processes, one store: a counter stream and a cart stream on one
/// session, each request going to the other process than the last.
async fn two_processes_lose_no_change(store: &str) {
    let (first, second) = (Demo::start(store).await, Demo::start(store).await);
    let mut client = Client::default();
    assert_eq!(
        client.send(&first, "GET", "/counter", None).await,
        (200, "1".into())
    );
    const ROUNDS: usize = 30;

    let mut counting = client.clone();
    let mut shopping = client.clone();
    let demos = [&first, &second];
    let counter = async {
        for round in 0..ROUNDS {
            let (status, _) = counting
                .send(demos[round % 2], "GET", "/counter", None)
                .await;
            assert_eq!(status, 200);
        }
    };
    let cart = async {
        for round in 0..ROUNDS {
            let form = format!("item=i{round}");
            let (status, body) = shopping
                .send(demos[(round + 1) % 2], "POST", "/cart", Some(&form))
                .await;
            assert_eq!(status, 303, "{body}");
        }
    };
    tokio::join!(counter, cart);

    let seen = client.json(&second).await;
    assert_eq!(
        seen["visits"],
        ROUNDS + 1,
        "a counter change was lost: {seen}"
    );
    let expected: Vec<String> = (0..ROUNDS).map(|round| format!("i{round}")).collect();
    assert_eq!(
        seen["cart"],
        serde_json::json!(expected),
        "a cart change was lost: {seen}"
    );
}

/// A session written before a restart is there after it.
async fn a_session_survives_a_restart(store: &str) {
    let mut client = Client::default();
    {
        let demo = Demo::start(store).await;
        client.send(&demo, "GET", "/counter", None).await;
        client.send(&demo, "POST", "/login", Some("user=ann")).await;
    }
    let demo = Demo::start(store).await;
    let seen = client.json(&demo).await;
    assert_eq!(
        (seen["user"].as_str(), seen["visits"].as_u64()),
        (Some("ann"), Some(1)),
        "{seen}"
    );
}

/// The demo killed (SIGKILL) while clients keep writing: every session
/// decodes in the next process, and none lost a write the dead process
/// acknowledged (a write it made but could not acknowledge may be there
/// too). Returns how many writes were acknowledged.
async fn a_kill_mid_writes_loses_no_acknowledged_write(store: &str) -> u64 {
    const CLIENTS: usize = 8;
    let demo = Demo::start(store).await;
    let mut clients = vec![Client::default(); CLIENTS];
    for client in &mut clients {
        assert_eq!(client.send(&demo, "GET", "/counter", None).await.0, 200);
    }
    // Each client counts until the process dies; what it saw acknowledged
    // is the last answer it got.
    let writers = clients.iter().map(|client| {
        let (port, cookie) = (demo.port, client.cookie.clone());
        tokio::spawn(async move {
            let mut acknowledged = 1;
            loop {
                match exchange(port, "GET", "/counter", cookie.as_deref(), None).await {
                    Some((200, _, body)) => acknowledged = body.parse::<u64>().unwrap(),
                    // Refused, reset or cut short: the process is gone.
                    _ => return acknowledged,
                }
            }
        })
    });
    let writers: Vec<_> = writers.collect();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    drop(demo); // SIGKILL
    let mut acknowledged = Vec::new();
    for writer in writers {
        acknowledged.push(writer.await.unwrap());
    }

    let demo = Demo::start(store).await;
    for (client, acknowledged) in clients.iter_mut().zip(&acknowledged) {
        let seen = client.json(&demo).await;
        let visits = seen["visits"].as_u64().expect("the session decodes");
        assert!(
            visits == *acknowledged || visits == acknowledged + 1,
            "acknowledged {acknowledged}, stored {visits}: {seen}"
        );
    }
    let total = acknowledged.iter().sum();
    eprintln!("{store}: {total} writes acknowledged before the kill");
    assert!(
        total > 200,
        "only {total} writes before the kill: it did not land mid-writes"
    );
    total
}

/// The file store's URL for `dir`.
fn file_url(dir: &TempDir) -> String {
    format!("file://{}", dir.path().display())
}

fn redis_url() -> String {
    std::env::var("SESSION_TEST_REDIS_URL")
        .expect("SESSION_TEST_REDIS_URL is not set: run the tests with scripts/test (or scripts/with-redis)")
}

#[tokio::test]
async fn two_demo_processes_on_one_file_store_lose_no_change() {
    let dir = TempDir::new("two");
    two_processes_lose_no_change(&file_url(&dir)).await;
}

#[tokio::test]
async fn a_session_survives_a_demo_restart_on_the_file_store() {
    let dir = TempDir::new("restart");
    a_session_survives_a_restart(&file_url(&dir)).await;
}

#[tokio::test]
async fn two_demo_processes_on_one_redis_lose_no_change() {
    two_processes_lose_no_change(&redis_url()).await;
}

#[tokio::test]
async fn a_session_survives_a_demo_restart_on_redis() {
    a_session_survives_a_restart(&redis_url()).await;
}

/// A fresh SQLite database file's URL, in `dir`.
fn sqlite_url(dir: &TempDir) -> String {
    format!("sqlite://{}/sessions.db", dir.path().display())
}

fn postgres_url() -> String {
    std::env::var("SESSION_TEST_POSTGRES_URL")
        .expect("SESSION_TEST_POSTGRES_URL is not set: run the tests with scripts/test (or scripts/with-sql)")
}

#[tokio::test]
async fn two_demo_processes_on_one_sqlite_database_lose_no_change() {
    let dir = TempDir::new("sqlite-two");
    two_processes_lose_no_change(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn a_session_survives_a_demo_restart_on_sqlite() {
    let dir = TempDir::new("sqlite-restart");
    a_session_survives_a_restart(&sqlite_url(&dir)).await;
}

#[tokio::test]
async fn two_demo_processes_on_one_postgres_lose_no_change() {
    two_processes_lose_no_change(&postgres_url()).await;
}

#[tokio::test]
async fn a_session_survives_a_demo_restart_on_postgres() {
    a_session_survives_a_restart(&postgres_url()).await;
}

#[tokio::test]
async fn a_session_survives_a_demo_restart_with_cookie_only_sessions() {
    a_session_survives_a_restart("cookie").await;
}

#[tokio::test]
async fn a_demo_killed_mid_writes_loses_no_acknowledged_write_on_the_file_store() {
    let dir = TempDir::new("killed");
    a_kill_mid_writes_loses_no_acknowledged_write(&file_url(&dir)).await;
    // A write the kill cut short may have left its temp file beside a
    // record (one is planted to be sure); the sweep removes those old
    // enough that no writer can still own them.
    let files = files_under(dir.path());
    let record = files
        .iter()
        .find(|path| path.extension().is_some_and(|ext| ext == "json"))
        .expect("a session record");
    std::fs::write(
        record.with_file_name(".planted.json.0123456789abcdef.tmp"),
        b"{ half",
    )
    .unwrap();
    let is_temp = |path: &&PathBuf| path.extension().is_some_and(|ext| ext == "tmp");
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    for path in files_under(dir.path()).iter().filter(is_temp) {
        let file = std::fs::File::options().write(true).open(path).unwrap();
        file.set_modified(two_hours_ago).unwrap();
    }
    let store = FileStore::new(dir.path()).unwrap();
    ExpiredCleanup::delete_expired(&store).await.unwrap();
    let left: Vec<_> = files_under(dir.path())
        .into_iter()
        .filter(|path| is_temp(&path))
        .collect();
    assert_eq!(left, Vec::<PathBuf>::new(), "temp files after a sweep");
}

/// Every file under `dir`, at any depth.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files.extend(files_under(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[tokio::test]
async fn a_demo_killed_mid_writes_loses_no_acknowledged_write_on_sqlite() {
    let dir = TempDir::new("sqlite-killed");
    a_kill_mid_writes_loses_no_acknowledged_write(&sqlite_url(&dir)).await;
}
