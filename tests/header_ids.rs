//! Session ids carried in a request and response header instead of a
//! cookie (`SessionConfig::id_header`), through the tower layer and axum.

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::routing::{get, post};
use axum::Router;
use session::{Error, MemoryStore, Session, SessionConfig, SessionLayer};
use tower::ServiceExt;

#[derive(Session, Default)]
struct Counter {
    count: u64,
}

async fn count(session: Session<Counter>) -> String {
    let count = session.count() + 1;
    session.set_count(count);
    count.to_string()
}

async fn read(session: Session<Counter>) -> String {
    session.count().to_string()
}

async fn end(session: Session<Counter>) -> &'static str {
    session.destroy();
    "ended"
}

fn app(config: SessionConfig) -> Router {
    Router::new()
        .route("/count", get(count))
        .route("/read", get(read))
        .route("/end", post(end))
        .layer(SessionLayer::new(MemoryStore::new(), config.id_header("X-Session-Id")).unwrap())
}

/// What a client sees of one response.
#[derive(Debug)]
struct Answer {
    body: String,
    /// The `x-session-id` response header, if sent.
    id: Option<String>,
    set_cookie: bool,
}

async fn send(app: &Router, method: &str, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let id = response
        .headers()
        .get("x-session-id")
        .map(|value| value.to_str().unwrap().to_owned());
    let set_cookie = response.headers().contains_key(header::SET_COOKIE);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    Answer {
        body: String::from_utf8(body.to_vec()).unwrap(),
        id,
        set_cookie,
    }
}

#[tokio::test]
async fn the_id_travels_in_the_header_both_ways_and_no_cookie_is_used() {
    let app = app(SessionConfig::default());
    let first = send(&app, "GET", "/count", &[]).await;
    assert!(!first.set_cookie, "a cookie was set: {first:?}");
    let id = first.id.expect("the new id comes back in the header");
    let second = send(&app, "GET", "/count", &[("x-session-id", &id)]).await;
    assert_eq!(second.body, "2");
    // Reading sends nothing back; the client keeps its id.
    let read = send(&app, "GET", "/read", &[("X-Session-ID", &id)]).await;
    assert_eq!((read.body.as_str(), read.id), ("2", None));
    // A cookie carrying the id is not looked at.
    let cookie = format!("session={id}");
    let by_cookie = send(&app, "GET", "/read", &[("cookie", &cookie)]).await;
    assert_eq!(by_cookie.body, "0");
}

#[tokio::test]
async fn an_ended_session_sends_an_empty_id_and_the_old_id_loads_nothing() {
    let app = app(SessionConfig::default());
    let id = send(&app, "GET", "/count", &[]).await.id.unwrap();
    let ended = send(&app, "POST", "/end", &[("x-session-id", &id)]).await;
    assert_eq!(
        ended.id.as_deref(),
        Some(""),
        "the client is told to forget its id"
    );
    assert_eq!(
        send(&app, "GET", "/read", &[("x-session-id", &id)])
            .await
            .body,
        "0"
    );
}

#[tokio::test]
async fn header_ids_are_signed_like_cookies_and_tampering_gets_a_fresh_session() {
    let app = app(SessionConfig::default().signed([[5u8; 64]]));
    let id = send(&app, "GET", "/count", &[]).await.id.unwrap();
    assert_eq!(id.len(), 44 + 43, "a signature and the id: {id}");
    assert_eq!(
        send(&app, "GET", "/read", &[("x-session-id", &id)])
            .await
            .body,
        "1"
    );
    let unsigned = &id[44..];
    assert_eq!(
        send(&app, "GET", "/read", &[("x-session-id", unsigned)])
            .await
            .body,
        "0"
    );
    // Several values: a bad one first does not hide the good one.
    let both = format!("{unsigned}, {id}");
    assert_eq!(
        send(&app, "GET", "/read", &[("x-session-id", &both)])
            .await
            .body,
        "1"
    );
}

#[test]
fn a_header_name_that_is_not_one_is_refused() {
    for bad in ["", "x session", "cookie", "Set-Cookie", "x:id"] {
        let config = SessionConfig::default().id_header(bad);
        let refused = SessionLayer::new(MemoryStore::new(), config);
        assert!(
            matches!(
                refused,
                Err(Error::InvalidConfig {
                    option: "id_header",
                    ..
                })
            ),
            "{bad:?}"
        );
    }
}
