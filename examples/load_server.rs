//! The server side of `scripts/bench-load`: one axum app in three variants, to
//! load over real HTTP and compare with the same app without sessions.
//!
//! ```text
//! PORT=3000 COOKIES_FILE=cookies.txt cargo run --release --example load_server -- session
//! ```
//!
//! The variant (`none`, `session` or `tower-sessions`) is the only argument.
//! `GET /` increments the `counter` field of a 20-field session (like
//! `benches/support/profile.rs`, also used by `benches/peers.rs`) and answers the new count as text; `none`
//! answers a constant instead. On start the server seeds 200 sessions through
//! the library's own API, writes one `Cookie:` header value per session and
//! line to `COOKIES_FILE`, then prints `ready <address>` to stdout. `PORT`
//! defaults to 0 (any free port; the line tells which one was taken).
//!
//! The `session` variant keeps its sessions in the store `SESSION_STORE`
//! names (default `memory`; see `session::store::open`).
//!
//! It runs on a single-threaded runtime: the benchmark pins it to one core.

#[path = "../benches/support/profile.rs"]
mod profile;

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use session::{Session, SessionConfig, SessionLayer, SessionManager};
use tower_sessions as ts;

use profile::{session_seed, tower_seed, Profile, SESSIONS};

// ---- none: the same app without sessions ----

async fn constant() -> &'static str {
    "1"
}

fn none_app() -> (Router, Vec<String>) {
    // No sessions, but cookies of the same size, so requests weigh the same.
    let cookies = (0..SESSIONS)
        .map(|i| format!("session=anonymous-{i:0>33}"))
        .collect();
    (Router::new().route("/", get(constant)), cookies)
}

// ---- session ----

async fn session_count(session: Session<Profile>) -> String {
    let count = session.counter() + 1;
    session.set_counter(count);
    count.to_string()
}

async fn session_app() -> (Router, Vec<String>) {
    let config = SessionConfig::default().secure(false); // plain HTTP
    let url = std::env::var("SESSION_STORE").unwrap_or_else(|_| "memory".into());
    let store = session::store::open(&url)
        .await
        .unwrap_or_else(|error| panic!("SESSION_STORE: {error}"));
    let manager = SessionManager::from_shared(store, config).unwrap();
    let cookies = session_seed(&manager)
        .await
        .into_iter()
        .map(|value| format!("session={value}"))
        .collect();
    let app = Router::new()
        .route("/", get(session_count))
        .layer(SessionLayer::from_manager(manager));
    (app, cookies)
}

// ---- tower-sessions ----

async fn tower_count(session: ts::Session) -> String {
    let count = session
        .get::<u64>("counter")
        .await
        .expect("a load from the memory store")
        .unwrap_or_default()
        + 1;
    session
        .insert("counter", count)
        .await
        .expect("an insert into a loaded session");
    count.to_string()
}

async fn tower_app() -> (Router, Vec<String>) {
    let store = ts::MemoryStore::default(); // clones share one map
    let shared = Arc::new(store.clone());
    // `id`: tower-sessions' cookie name.
    let cookies = tower_seed(&shared)
        .await
        .into_iter()
        .map(|id| format!("id={id}"))
        .collect();
    let app = Router::new()
        .route("/", get(tower_count))
        .layer(ts::SessionManagerLayer::new(store).with_secure(false));
    (app, cookies)
}

// ---- main ----

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let variant = std::env::args().nth(1).unwrap_or_default();
    let (app, cookies) = match variant.as_str() {
        "none" => none_app(),
        "session" => session_app().await,
        "tower-sessions" => tower_app().await,
        _ => return Err("usage: load_server none|session|tower-sessions".into()),
    };

    let port: u16 = match std::env::var("PORT") {
        Ok(port) => port
            .parse()
            .map_err(|_| format!("PORT={port}: not a port"))?,
        Err(_) => 0,
    };
    let cookies_file = std::env::var("COOKIES_FILE").map_err(|_| "COOKIES_FILE is not set")?;
    std::fs::write(&cookies_file, cookies.join("\n") + "\n")?;

    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    // `println!` flushes at the newline: stdout is line-buffered.
    println!("ready {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
