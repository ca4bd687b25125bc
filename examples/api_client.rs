//! An API whose clients keep the session id themselves, in the
//! `X-Session-Id` header instead of a cookie (a mobile app, a CLI): the
//! server starts on a free port, and a client makes three requests with
//! plain HTTP/1.1, sending back the id the first response gave it.
//!
//! ```text
//! cargo run --example api_client
//! ```

use axum::routing::get;
use axum::Router;
use session::{MemoryStore, Session, SessionConfig, SessionLayer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Session, Default)]
struct Calls {
    count: u64,
}

async fn call(calls: Session<Calls>) -> String {
    calls.set_count(calls.count() + 1);
    format!("call {}", calls.count())
}

/// One GET, with the session id if the client has one; returns the body and
/// the id the response hands back, if any.
async fn fetch(port: u16, id: Option<&str>) -> std::io::Result<(String, Option<String>)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let header = id
        .map(|id| format!("x-session-id: {id}\r\n"))
        .unwrap_or_default();
    let request = format!("GET / HTTP/1.1\r\nhost: localhost\r\n{header}connection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await?;
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    let id = head
        .lines()
        .find_map(|line| line.strip_prefix("x-session-id: "))
        .map(str::to_owned);
    Ok((body.to_owned(), id))
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Signed, as cookies can be; the header is the only difference.
    let config = SessionConfig::default()
        .id_header("x-session-id")
        .signed([[3u8; 64]]);
    let app = Router::new()
        .route("/", get(call))
        .layer(SessionLayer::new(MemoryStore::new(), config)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (body, id) = fetch(port, None).await?;
    let id = id.ok_or("the first response carries the id")?;
    println!("{body} -> the client keeps id {}...", &id[..12]);
    for _ in 0..2 {
        let (body, _) = fetch(port, Some(&id)).await?;
        println!("{body}");
    }
    Ok(())
}
