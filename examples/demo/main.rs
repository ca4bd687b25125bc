//! The demo shop on the embedded memory store.
//!
//! ```text
//! cargo run --example demo          # http://127.0.0.1:3000 (PORT overrides)
//! ```

mod app;

use session::{MemoryStore, SessionConfig, SessionManager};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // Plain HTTP on localhost: browsers would drop a `Secure` cookie here.
    let config = SessionConfig::default().secure(false);
    // The memory store frees expired sessions by itself.
    let sessions = SessionManager::new(MemoryStore::new(), config)
        .map_err(|error| std::io::Error::new(std::io::ErrorKind::InvalidInput, error))?;

    let port = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|_| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("PORT={port} is not a port number"),
            )
        })?,
        Err(_) => 3000,
    };
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    tracing::info!("demo listening on http://{}", listener.local_addr()?);
    axum::serve(listener, app::app(sessions)).await
}
