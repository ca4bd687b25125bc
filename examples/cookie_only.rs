//! Cookie-only sessions: no store, the whole session encrypted in its
//! cookie. A visit counter and a cart on <http://127.0.0.1:3000>.
//!
//! ```text
//! SESSION_KEY="$(openssl rand -base64 64)" cargo run --example cookie_only
//! ```
//!
//! The key (at least 64 bytes) must be the same on every server and across
//! restarts; list the previous key after the new one to rotate.

use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use session::{Session, SessionConfig, SessionLayer};

#[derive(Session, Default)]
struct Visit {
    count: u64,
    cart: Vec<String>,
}

#[derive(serde::Deserialize)]
struct Add {
    item: Option<String>,
}

async fn visit(session: Session<Visit>, Query(add): Query<Add>) -> String {
    session.set_count(session.count() + 1);
    if let Some(item) = add.item {
        session.cart_mut().push(item);
    }
    format!("visit {}; cart {:?}\n", session.count(), session.cart())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let key = std::env::var("SESSION_KEY").map_err(|_| "set SESSION_KEY to 64+ random bytes")?;
    // Plain HTTP on localhost only: browsers drop `Secure` cookies otherwise.
    let config = SessionConfig::default().secure(false).private([key]);
    let app = Router::new()
        .route("/", get(visit))
        .layer(SessionLayer::cookie_only(config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
    println!("http://{}/?item=apple", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
