//! The demo shop, on the store `SESSION_STORE` names (default `memory`).
//!
//! ```text
//! cargo run --example demo                                        # http://127.0.0.1:3000
//! PORT=3001 SESSION_STORE=file:/tmp/demo-sessions cargo run --example demo
//! SESSION_STORE=redis://127.0.0.1:6379 cargo run --example demo
//! SESSION_STORE=sqlite:demo-sessions.db cargo run --example demo
//! SESSION_STORE=postgres://user@localhost/db cargo run --example demo
//! SESSION_STORE=mysql://user@localhost/db cargo run --example demo
//! SESSION_STORE=cookie SESSION_KEY="$(openssl rand -base64 64)" cargo run --example demo
//! ```
//!
//! An SQL store's table is created on start (`migrate`). `cookie` keeps each
//! session whole in its encrypted cookie, under the key `SESSION_KEY` (at
//! least 64 bytes); without one, a random key good until the process ends.

mod app;

use std::io::{Error, ErrorKind};

use session::{SessionConfig, SessionManager};

/// The cookie-only key: `SESSION_KEY`, or a random one for this process.
fn cookie_key() -> std::io::Result<Vec<u8>> {
    if let Ok(key) = std::env::var("SESSION_KEY") {
        return Ok(key.into_bytes());
    }
    let mut key = vec![0; 64];
    getrandom::fill(&mut key).map_err(|error| Error::other(error.to_string()))?;
    tracing::warn!("SESSION_KEY is not set: sessions end when this process does");
    Ok(key)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // Plain HTTP on localhost: browsers would drop a `Secure` cookie here.
    let config = SessionConfig::default().secure(false);
    // Every store frees expired sessions by itself (Redis by its TTLs, SQL
    // stores by a clean-up task `open` starts).
    let url = std::env::var("SESSION_STORE").unwrap_or_else(|_| "memory".into());
    let sessions = if url == "cookie" {
        SessionManager::cookie_only(config.private([cookie_key()?]))
    } else {
        let store = session::store::open(&url).await.map_err(|error| {
            Error::new(ErrorKind::InvalidInput, format!("SESSION_STORE: {error}"))
        })?;
        SessionManager::new(store, config)
    }
    .map_err(|error| Error::new(ErrorKind::InvalidInput, error))?;

    let port = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("PORT={port} is not a port number"),
            )
        })?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!(store = %url, "demo listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app::app(sessions)).await
}
