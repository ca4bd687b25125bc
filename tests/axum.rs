//! The axum integration: the layer, the extractor, and when commits happen.

mod support;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use session::{Session, SessionConfig, SessionLayer, SessionManager};
use support::{Call, Recording};
use tower::ServiceExt;

#[derive(Session, Default)]
struct Counter {
    count: u64,
}

#[derive(Session, Default)]
#[session(namespace = "prefs")]
struct Prefs {
    theme: Option<String>,
}

async fn count(session: Session<Counter>) -> String {
    let count = session.count() + 1;
    session.set_count(count);
    count.to_string()
}

async fn count_then_fail(session: Session<Counter>) -> impl IntoResponse {
    session.set_count(session.count() + 1);
    (StatusCode::BAD_REQUEST, "rejected, but counted")
}

async fn both(counter: Session<Counter>, prefs: Session<Prefs>) -> String {
    prefs.set_theme(Some("dark".into()));
    // The handle may cross an await point and be moved into a task.
    let task_counter = counter.clone();
    tokio::spawn(async move { task_counter.set_count(task_counter.count() + 10) })
        .await
        .unwrap();
    counter.count().to_string()
}

async fn peek() -> &'static str {
    "no session used"
}

fn app(store: &Recording) -> Router {
    app_with(store, SessionConfig::default())
}

fn app_with(store: &Recording, config: SessionConfig) -> Router {
    Router::new()
        .route("/count", get(count))
        .route("/fail", get(count_then_fail))
        .route("/both", get(both))
        .route("/peek", get(peek))
        .route("/save", get(save_now))
        .layer(SessionLayer::from_manager(
            SessionManager::new(store.clone(), config).unwrap(),
        ))
}

/// A handler that uses `?` on the session's own errors.
async fn save_now(session: Session<Counter>) -> Result<String, session::Error> {
    session.set_count(session.count() + 1);
    session.save().await?;
    Ok(session.count().to_string())
}

/// Sends a GET with `cookie`, returning status, the `Set-Cookie` value and the body.
async fn get_with(
    app: &Router,
    path: &str,
    cookie: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut request = Request::get(path);
    if let Some(cookie) = cookie {
        request = request.header(header::COOKIE, format!("other=1; {cookie}"));
    }
    let response = app
        .clone()
        .oneshot(request.body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let set_cookie = response
        .headers()
        .get(header::SET_COOKIE)
        .map(|value| value.to_str().unwrap().to_owned());
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    (
        status,
        set_cookie,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

/// `name=value` of a `Set-Cookie` header, as a client sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_counter_counts_across_requests() {
    let store = Recording::new();
    let app = app(&store);
    let (status, set_cookie, body) = get_with(&app, "/count", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let set_cookie = set_cookie.expect("the first write sets a cookie");
    assert!(set_cookie.starts_with("session="));
    assert!(set_cookie.contains("HttpOnly"));
    let cookie = cookie_pair(&set_cookie);

    let (_, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(body, "2");
    let (_, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(body, "3");
    let (_, _, body) = get_with(&app, "/count", None).await;
    assert_eq!(
        body, "1",
        "a client without the cookie gets its own session"
    );
}

/// The obvious line works: a layer over the store `store::open` returns,
/// or over a store the application shares, as over a plain store.
#[tokio::test]
async fn a_layer_takes_an_opened_or_shared_store() {
    let opened = session::store::open("memory").await.unwrap();
    let shared = std::sync::Arc::new(session::store::MemoryStore::new());
    let layers = [
        SessionLayer::new(opened, SessionConfig::default()).unwrap(),
        SessionLayer::new(shared.clone(), SessionConfig::default()).unwrap(),
    ];
    for layer in layers {
        let app = Router::new().route("/count", get(count)).layer(layer);
        let (_, set_cookie, _) = get_with(&app, "/count", None).await;
        let cookie = cookie_pair(&set_cookie.unwrap());
        let (_, _, body) = get_with(&app, "/count", Some(&cookie)).await;
        assert_eq!(body, "2");
    }
    assert_eq!(shared.len(), 1, "the shared store holds the session");
}

/// The hooks read the request's headers: a session presented with another
/// user agent than the one it was made with is refused (a fresh one).
#[tokio::test]
async fn hooks_read_the_request_headers() {
    let config = SessionConfig::default()
        .hook_headers(["User-Agent"])
        .valid(|loaded| async move { loaded.header("user-agent") == Some("laptop") });
    let app = app_with(&Recording::new(), config);
    let visit = |agent: &'static str, cookie: Option<String>| {
        let app = app.clone();
        async move {
            let mut request = Request::get("/count").header(header::USER_AGENT, agent);
            if let Some(cookie) = cookie {
                request = request.header(header::COOKIE, cookie);
            }
            let response = app
                .oneshot(request.body(Body::empty()).unwrap())
                .await
                .unwrap();
            let set_cookie = response.headers().get(header::SET_COOKIE).cloned();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .unwrap();
            let cookie = set_cookie.map(|value| cookie_pair(value.to_str().unwrap()));
            (String::from_utf8(body.to_vec()).unwrap(), cookie)
        }
    };
    let (_, cookie) = visit("laptop", None).await;
    let (count, _) = visit("laptop", cookie.clone()).await;
    assert_eq!(count, "2", "the same agent keeps its session");
    let (count, _) = visit("thief", cookie).await;
    assert_eq!(count, "1", "another agent gets a fresh session");
}

#[tokio::test]
async fn error_responses_commit_too() {
    let store = Recording::new();
    let app = app(&store);
    let (status, set_cookie, _) = get_with(&app, "/fail", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let cookie = cookie_pair(&set_cookie.expect("committed despite the 400"));
    let (_, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(body, "2");
}

#[tokio::test]
async fn a_store_that_cannot_load_gives_a_503_that_leaks_nothing() {
    let store = Recording::new();
    let app = app(&store);
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.set_failing(true);
    let (status, set_cookie, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(set_cookie, None);
    assert!(!body.contains("test") && !body.contains("store"), "{body}");
}

#[tokio::test]
async fn a_failed_commit_turns_the_response_into_a_503() {
    let store = Recording::new();
    let app = app(&store);
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.fail_after(1); // the load passes, the commit fails
    let (status, set_cookie, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(set_cookie, None);
    assert_eq!(body, "");
}

#[tokio::test]
async fn the_status_for_a_failing_store_is_configurable() {
    let store = Recording::new();
    let app = app_with(&store, SessionConfig::default().store_failure_status(502));
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.fail_after(1); // the load passes, the commit fails
    let (status, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::BAD_GATEWAY, ""));
    store.set_failing(true);
    let (status, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::BAD_GATEWAY, ""));

    let not_an_error = SessionConfig::default().store_failure_status(200);
    let refused = SessionManager::new(Recording::new(), not_an_error);
    assert!(matches!(
        refused,
        Err(session::Error::InvalidConfig {
            option: "store_failure_status",
            ..
        })
    ));
}

#[tokio::test]
async fn handlers_can_use_question_mark_on_session_errors() {
    let store = Recording::new();
    let app = app(&store);
    let (status, set_cookie, body) = get_with(&app, "/save", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.fail_once_after(1); // the load passes, the handler's save fails
    let (status, set_cookie, body) = get_with(&app, "/save", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.is_empty(), "no internals in the body: {body}");
    assert!(set_cookie.is_some(), "the final commit landed the change");
}

#[tokio::test]
async fn two_extractors_share_one_load_and_one_commit() {
    let store = Recording::new();
    let app = app(&store);
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.take_calls();

    let (status, _, body) = get_with(&app, "/both", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "11"));
    let calls = store.take_calls();
    assert_eq!(calls.len(), 2, "one load, one commit: {calls:?}");
    let Call::Update(_, changes) = &calls[1] else {
        panic!("expected an update, got {calls:?}");
    };
    let mut keys: Vec<_> = changes.set.iter().map(|(key, _)| *key).collect();
    keys.sort();
    assert_eq!(keys, ["count", "prefs.theme"]);
}

#[tokio::test]
async fn routes_that_never_extract_a_session_cost_nothing() {
    let store = Recording::new();
    let app = app(&store);
    let (status, set_cookie, _) = get_with(&app, "/peek", Some("session=whatever")).await;
    assert_eq!((status, set_cookie), (StatusCode::OK, None));
    assert!(store.take_calls().is_empty());
}

#[tokio::test]
async fn a_missing_layer_is_a_clear_rejection() {
    let app = Router::new().route("/count", get(count));
    let (status, _, body) = get_with(&app, "/count", None).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(body.contains("not wrapped in a SessionLayer"), "{body}");
}

/// A service inside the layer that fails with an error instead of a
/// response (what a timeout layer does) after its handler logged the user
/// out: the logout must take effect all the same.
#[tokio::test]
async fn a_failing_inner_service_still_commits() {
    use tower::{Layer, Service};

    let store = Recording::new();
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    let app = app(&store);
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    let key = match store.take_writes().as_slice() {
        [Call::Create(key, _)] => key.clone(),
        writes => panic!("one create, got {writes:?}"),
    };

    let logout_then_fail = tower::service_fn(|request: Request<Body>| async move {
        let session = request
            .extensions()
            .get::<session::RequestSession>()
            .unwrap()
            .session::<Counter>()
            .await
            .unwrap();
        session.destroy();
        Err::<axum::response::Response, &str>("timed out")
    });
    let mut service = SessionLayer::from_manager(manager).layer(logout_then_fail);
    let request = Request::get("/logout")
        .header(header::COOKIE, cookie)
        .body(Body::empty())
        .unwrap();
    let answered = service.call(request).await;
    assert_eq!(
        answered.unwrap_err(),
        "timed out",
        "the error goes on as it is"
    );
    assert_eq!(store.take_writes(), vec![Call::Delete(key.clone())]);
    assert_eq!(
        store.peek(&key).await,
        None,
        "the session outlived its logout"
    );
}
