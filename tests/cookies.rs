//! The `Cookie` header as browsers send it, and cookie options that would
//! break or inject a `Set-Cookie`, refused when the layer is built.

mod support;

use axum::body::Body;
use axum::http::{header, HeaderValue, Request, StatusCode};
use axum::routing::get;
use axum::Router;
use session::{Error, MemoryStore, Session, SessionConfig, SessionLayer, SessionManager};
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

async fn peek(session: Session<Counter>) -> String {
    session.count().to_string()
}

fn app() -> Router {
    let manager = SessionManager::new(MemoryStore::new(), SessionConfig::default()).unwrap();
    Router::new()
        .route("/count", get(count))
        .route("/peek", get(peek))
        .layer(SessionLayer::from_manager(manager))
}

/// Sends `GET path` with these `Cookie` header lines; returns the body and
/// the session cookie's value, if one was set.
async fn get_with(app: &Router, path: &str, cookies: &[HeaderValue]) -> (String, Option<String>) {
    let mut request = Request::get(path);
    for cookie in cookies {
        request = request.header(header::COOKIE, cookie.clone());
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|value| value.to_str().unwrap().to_owned());
    let value = set.map(|set| {
        let pair = set.split(';').next().unwrap();
        pair.trim_start_matches("session=").to_owned()
    });
    let body = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    (String::from_utf8(body.to_vec()).unwrap(), value)
}

fn line(text: &str) -> HeaderValue {
    HeaderValue::from_str(text).unwrap()
}

async fn a_session_counted_to_one(app: &Router) -> String {
    let (body, id) = get_with(app, "/count", &[]).await;
    assert_eq!(body, "1");
    id.expect("a session cookie")
}

#[tokio::test]
async fn a_neighbour_cookie_outside_ascii_does_not_hide_the_session() {
    let app = app();
    let id = a_session_counted_to_one(&app).await;
    let mut bytes = b"theme=caf\xe9; ".to_vec();
    bytes.extend_from_slice(format!("session={id}").as_bytes());
    let header = HeaderValue::from_bytes(&bytes).unwrap();
    assert!(header.to_str().is_err(), "the header is not ASCII");
    assert_eq!(get_with(&app, "/peek", &[header]).await.0, "1");
}

#[tokio::test]
async fn the_session_is_found_in_any_of_several_cookie_header_lines() {
    let app = app();
    let id = a_session_counted_to_one(&app).await;
    let lines = [
        line("theme=dark; lang=en"),
        line(&format!("a=b; session={id}")),
    ];
    assert_eq!(get_with(&app, "/peek", &lines).await.0, "1");
}

#[tokio::test]
async fn a_stale_or_planted_cookie_of_the_same_name_does_not_shadow_the_live_one() {
    let app = app();
    let id = a_session_counted_to_one(&app).await;
    for stale in [
        "session=made-up-by-someone",
        "session=not;valid",
        "session=%%%",
    ] {
        let header = line(&format!("{stale}; session={id}"));
        let (body, set) = get_with(&app, "/count", &[header]).await;
        assert!(body != "1", "the live session was shadowed by {stale:?}");
        assert_eq!(set.as_deref(), Some(id.as_str()), "the live id is kept");
    }
    assert_eq!(
        get_with(&app, "/peek", &[line(&format!("session={id}"))])
            .await
            .0,
        "4"
    );
}

#[tokio::test]
async fn a_flood_of_same_name_cookies_is_tried_only_a_few_times() {
    let app = app();
    let id = a_session_counted_to_one(&app).await;
    let flood = "session=unknown; ".repeat(50) + &format!("session={id}");
    let (body, _) = get_with(&app, "/peek", &[line(&flood)]).await;
    assert_eq!(
        body, "0",
        "only the first few are tried; the rest are ignored"
    );
}

fn refused(config: SessionConfig) -> &'static str {
    match SessionLayer::new(MemoryStore::new(), config) {
        Err(Error::InvalidConfig { option, .. }) => option,
        other => panic!("accepted: {other:?}"),
    }
}

#[test]
fn options_that_would_break_the_set_cookie_header_are_refused_by_name() {
    let default = SessionConfig::default;
    assert_eq!(refused(default().cookie_name("a;b")), "cookie_name");
    assert_eq!(refused(default().cookie_name("")), "cookie_name");
    assert_eq!(
        refused(default().cookie_name("sid\r\nX-Evil: 1")),
        "cookie_name"
    );
    assert_eq!(refused(default().cookie_name("a b")), "cookie_name");
    assert_eq!(refused(default().path("/app; Domain=evil.example")), "path");
    assert_eq!(refused(default().path("app")), "path");
    assert_eq!(refused(default().path("/\u{7f}")), "path");
    assert_eq!(refused(default().domain("evil.example; Secure")), "domain");
    assert_eq!(refused(default().domain("")), "domain");
    assert_eq!(
        refused(default().max_age(std::time::Duration::ZERO)),
        "max_age"
    );
    assert_eq!(
        refused(default().store_timeout(Some(std::time::Duration::ZERO))),
        "store_timeout"
    );
    let error = SessionManager::new(MemoryStore::new(), default().path("x")).unwrap_err();
    assert!(
        error
            .to_string()
            .starts_with("invalid session option `path`"),
        "{error}"
    );
}

#[test]
fn sensible_options_are_accepted() {
    let config = SessionConfig::default()
        .cookie_name("__Secure-shop_sid")
        .path("/shop/v1")
        .domain("shop.example.com")
        .max_age(std::time::Duration::from_secs(60));
    assert!(SessionLayer::new(MemoryStore::new(), config).is_ok());
}
