//! The actix-web integration: the middleware, the extractors, and when
//! commits happen.

mod support;

use actix_http::Request;
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{COOKIE, SET_COOKIE};
use actix_web::http::StatusCode;
use actix_web::{error, test, web, App, HttpResponse};
use session::{Session, SessionConfig, SessionManager, SessionMiddleware};
use support::{Call, Recording};
use tokio::sync::Barrier;

#[derive(Session, Default)]
struct Counter {
    count: u64,
}

#[derive(Session, Default)]
#[session(namespace = "prefs")]
struct Prefs {
    theme: Option<String>,
}

#[derive(Session, Default)]
#[session(namespace = "auth")]
struct Auth {
    user: Option<String>,
}

/// Stores `count` under the same key as `Counter`, which one manager refuses.
#[derive(Session, Default)]
struct Clash {
    count: u64,
}

async fn count(counter: Session<Counter>) -> String {
    counter.set_count(counter.count() + 1);
    counter.count().to_string()
}

/// Reads and changes nothing.
async fn whoami(auth: Session<Auth>, counter: Session<Counter>) -> String {
    let user = auth.user().unwrap_or_else(|| "nobody".into());
    format!("{user} {}", counter.count())
}

async fn log_in(auth: Session<Auth>, user: web::Path<String>) -> HttpResponse {
    auth.set_user(Some(user.clone()));
    auth.set_owner(Some(&user));
    auth.regenerate();
    HttpResponse::NoContent().finish()
}

async fn log_out(auth: Session<Auth>) -> HttpResponse {
    auth.destroy();
    HttpResponse::NoContent().finish()
}

/// The signed-in user's session count, through the middleware's manager.
async fn devices(auth: Session<Auth>, sessions: SessionManager) -> Result<String, session::Error> {
    let user = auth.owner().unwrap_or_default();
    Ok(sessions.sessions_of(&user).await?.len().to_string())
}

/// A handler that uses `?` on the session's own errors.
async fn save_now(counter: Session<Counter>) -> Result<String, session::Error> {
    counter.set_count(counter.count() + 1);
    counter.save().await?;
    Ok(counter.count().to_string())
}

async fn count_then_fail(counter: Session<Counter>) -> Result<String, actix_web::Error> {
    counter.set_count(counter.count() + 1);
    Err(error::ErrorNotFound("no such page, but counted"))
}

async fn clash(clash: Session<Clash>) -> String {
    clash.count().to_string()
}

async fn peek() -> &'static str {
    "no session used"
}

/// Counts once the other racing request has loaded the session too.
async fn count_racing(counter: Session<Counter>, both_loaded: web::Data<Barrier>) -> String {
    both_loaded.wait().await;
    counter.set_count(counter.count() + 1);
    counter.count().to_string()
}

/// Sets the theme once the other racing request has loaded the session too.
async fn theme_racing(prefs: Session<Prefs>, both_loaded: web::Data<Barrier>) -> &'static str {
    both_loaded.wait().await;
    prefs.set_theme(Some("dark".into()));
    "dark"
}

/// The test app in memory, its sessions kept in `store`.
async fn serve(
    store: &Recording,
) -> impl Service<
    Request,
    Response = ServiceResponse<impl MessageBody + 'static>,
    Error = actix_web::Error,
> {
    serve_with(SessionManager::new(store.clone(), SessionConfig::default()).unwrap()).await
}

/// The test app in memory, on `sessions`.
async fn serve_with(
    sessions: SessionManager,
) -> impl Service<
    Request,
    Response = ServiceResponse<impl MessageBody + 'static>,
    Error = actix_web::Error,
> {
    // Runs inside the session middleware, and fails every request after its handler ran.
    let refuse_afterwards = web::scope("/refused")
        .wrap_fn(|request, service| {
            let response = service.call(request);
            async move {
                response.await?;
                Err::<ServiceResponse, _>(error::ErrorForbidden("refused after the handler"))
            }
        })
        .route("/count", web::get().to(count))
        .route("/peek", web::get().to(peek));
    let app = App::new()
        .app_data(web::Data::new(Barrier::new(2)))
        .route("/count", web::get().to(count))
        .route("/whoami", web::get().to(whoami))
        .route("/login/{user}", web::post().to(log_in))
        .route("/logout", web::post().to(log_out))
        .route("/devices", web::get().to(devices))
        .route("/save", web::get().to(save_now))
        .route("/fail", web::get().to(count_then_fail))
        .route("/peek", web::get().to(peek))
        .route("/clash", web::get().to(clash))
        .route("/race/count", web::get().to(count_racing))
        .route("/race/theme", web::get().to(theme_racing))
        .service(refuse_afterwards)
        .wrap(SessionMiddleware::from_manager(sessions));
    test::init_service(app).await
}

/// What a client sees of a response: status, the `Set-Cookie` value, the body.
type Seen = (StatusCode, Option<String>, String);

/// Sends `method path` with `cookie`, on a second `Cookie` line after an
/// unrelated one, as a browser may.
async fn send<B: MessageBody + 'static>(
    app: &impl Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    request: test::TestRequest,
    cookie: Option<&str>,
) -> Seen {
    let mut request = request.append_header((COOKIE, "other=1"));
    if let Some(cookie) = cookie {
        request = request.append_header((COOKIE, format!("theme=x; {cookie}")));
    }
    // An error is a response too, as the server would send it.
    let response: HttpResponse<BoxBody> =
        match test::try_call_service(app, request.to_request()).await {
            Ok(response) => response.into_parts().1.map_into_boxed_body(),
            Err(error) => error.error_response(),
        };
    let status = response.status();
    let mut set_cookies = response.headers().get_all(SET_COOKIE);
    let set_cookie = set_cookies
        .next()
        .map(|value| value.to_str().unwrap().to_owned());
    assert!(set_cookies.next().is_none(), "one Set-Cookie at most");
    let body = actix_web::body::to_bytes(response.into_body())
        .await
        .unwrap();
    (
        status,
        set_cookie,
        String::from_utf8(body.to_vec()).unwrap(),
    )
}

async fn get_with<B: MessageBody + 'static>(
    app: &impl Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    path: &str,
    cookie: Option<&str>,
) -> Seen {
    send(app, test::TestRequest::get().uri(path), cookie).await
}

async fn post_with<B: MessageBody + 'static>(
    app: &impl Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    path: &str,
    cookie: Option<&str>,
) -> Seen {
    send(app, test::TestRequest::post().uri(path), cookie).await
}

/// `name=value` of a `Set-Cookie` header, as a client sends it back.
fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// The hooks read the request's headers, through actix-web too: a session
/// presented with another user agent than the one it was made with is
/// refused (a fresh one).
#[actix_web::test]
async fn hooks_read_the_request_headers() {
    let config = SessionConfig::default()
        .hook_headers(["user-agent"])
        .valid(|loaded| async move { loaded.header("User-Agent") == Some("laptop") });
    let app = serve_with(SessionManager::new(Recording::new(), config).unwrap()).await;
    let as_agent = |agent: &str| {
        test::TestRequest::get()
            .uri("/count")
            .insert_header(("user-agent", agent))
    };
    let (_, set_cookie, _) = send(&app, as_agent("laptop"), None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    let (_, _, count) = send(&app, as_agent("laptop"), Some(&cookie)).await;
    assert_eq!(count, "2", "the same agent keeps its session");
    let (_, _, count) = send(&app, as_agent("thief"), Some(&cookie)).await;
    assert_eq!(count, "1", "another agent gets a fresh session");
}

#[actix_web::test]
async fn a_counter_counts_across_requests() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (status, set_cookie, body) = get_with(&app, "/count", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let set_cookie = set_cookie.expect("the first write sets a cookie");
    assert!(set_cookie.starts_with("session="), "{set_cookie}");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
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

#[actix_web::test]
async fn a_request_that_only_reads_writes_nothing_and_sends_no_cookie() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.take_calls();

    let (status, set_cookie, body) = get_with(&app, "/whoami", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "nobody 1"));
    assert_eq!(set_cookie, None);
    let calls = store.take_calls();
    assert!(
        matches!(calls[..], [Call::Load(_)]),
        "one load only: {calls:?}"
    );
}

#[actix_web::test]
async fn routes_that_never_extract_a_session_cost_nothing() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (status, set_cookie, _) = get_with(&app, "/peek", Some("session=whatever")).await;
    assert_eq!((status, set_cookie), (StatusCode::OK, None));
    assert!(store.take_calls().is_empty());
}

#[actix_web::test]
async fn logging_in_moves_the_session_to_a_new_id_and_the_old_one_reaches_nothing() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let before = cookie_pair(&set_cookie.unwrap());

    let (status, set_cookie, _) = post_with(&app, "/login/ann", Some(&before)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let after = cookie_pair(&set_cookie.expect("a new id means a new cookie"));
    assert_ne!(after, before);

    let (_, _, body) = get_with(&app, "/whoami", Some(&after)).await;
    assert_eq!(body, "ann 1", "the data moved along");
    let (_, set_cookie, body) = get_with(&app, "/whoami", Some(&before)).await;
    assert_eq!(body, "nobody 0", "the old id loads nothing");
    assert_eq!(set_cookie, None);
}

#[actix_web::test]
async fn logging_out_sends_a_removal_cookie_and_ends_the_session() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (_, set_cookie, _) = post_with(&app, "/login/ann", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());

    let (status, set_cookie, _) = post_with(&app, "/logout", Some(&cookie)).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let removal = set_cookie.expect("a removal cookie");
    assert!(removal.starts_with("session=;"), "{removal}");
    assert!(removal.contains("Max-Age=0"), "{removal}");
    let (_, _, body) = get_with(&app, "/whoami", Some(&cookie)).await;
    assert_eq!(body, "nobody 0");
}

#[actix_web::test]
async fn two_racing_requests_that_change_different_fields_both_land() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());

    // Both load the session before either changes it.
    let (counted, themed) = tokio::join!(
        get_with(&app, "/race/count", Some(&cookie)),
        get_with(&app, "/race/theme", Some(&cookie)),
    );
    assert_eq!((counted.0, counted.2.as_str()), (StatusCode::OK, "2"));
    assert_eq!((themed.0, themed.2.as_str()), (StatusCode::OK, "dark"));

    let record = store.peek(&racing_key(&store.take_writes())).await.unwrap();
    let mut keys: Vec<_> = record.fields.iter().map(|(key, _)| key).collect();
    keys.sort();
    assert_eq!(keys, ["count", "prefs.theme"], "{record:?}");
    let (_, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(body, "3", "the count survived the theme's write");
}

/// The key both racing requests wrote to, each with only its own field.
fn racing_key(writes: &[Call]) -> session::StoreKey {
    let [Call::Create(..), Call::Update(key, first), Call::Update(same, second)] = writes else {
        panic!("one create, then two updates: {writes:?}");
    };
    assert_eq!(key, same);
    let mut changed: Vec<_> = [first, second]
        .iter()
        .flat_map(|changes| changes.set.iter().map(|(key, _)| *key))
        .collect();
    changed.sort();
    assert_eq!(
        changed,
        ["count", "prefs.theme"],
        "each wrote only its field"
    );
    key.clone()
}

#[actix_web::test]
async fn a_handler_error_still_commits() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (status, set_cookie, body) = get_with(&app, "/fail", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body, "no such page, but counted");
    let cookie = cookie_pair(&set_cookie.expect("committed despite the 404"));
    let (_, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(body, "2");
}

#[actix_web::test]
async fn an_inner_middleware_error_still_commits() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (status, set_cookie, body) = get_with(&app, "/refused/count", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(body, "refused after the handler");
    let cookie = cookie_pair(&set_cookie.expect("committed despite the 403"));
    let (_, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(body, "2");

    let (status, set_cookie, body) = get_with(&app, "/refused/peek", Some(&cookie)).await;
    assert_eq!((status, set_cookie), (StatusCode::FORBIDDEN, None));
    assert_eq!(body, "refused after the handler");
}

#[actix_web::test]
async fn a_store_that_cannot_load_gives_a_503_that_leaks_nothing() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.set_failing(true);
    let (status, set_cookie, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(set_cookie, None);
    assert_eq!(body, "");
}

#[actix_web::test]
async fn other_session_errors_give_a_500_that_leaks_nothing() {
    let store = Recording::new();
    let app = serve(&store).await;
    get_with(&app, "/count", None).await;
    let (status, set_cookie, body) = get_with(&app, "/clash", None).await;
    assert_eq!(
        (status, set_cookie),
        (StatusCode::INTERNAL_SERVER_ERROR, None)
    );
    assert_eq!(body, "");
}

#[actix_web::test]
async fn a_failed_commit_turns_the_response_into_a_bare_503() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.fail_after(1); // the load passes, the commit fails
    let (status, set_cookie, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(set_cookie, None);
    assert_eq!(body, "");
}

#[actix_web::test]
async fn the_status_for_a_failing_store_is_configurable() {
    let store = Recording::new();
    let config = SessionConfig::default().store_failure_status(502);
    let app = serve_with(SessionManager::new(store.clone(), config).unwrap()).await;
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.fail_after(1); // the load passes, the commit fails
    let (status, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::BAD_GATEWAY, ""));
    store.set_failing(true);
    let (status, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::BAD_GATEWAY, ""));
}

#[actix_web::test]
async fn ids_can_travel_in_a_header_instead_of_a_cookie() {
    let config = SessionConfig::default()
        .id_header("x-session-id")
        .signed([[9u8; 64]]);
    let app = serve_with(SessionManager::new(Recording::new(), config).unwrap()).await;
    let id_of = |response: &ServiceResponse<_>| {
        let id = response.headers().get("x-session-id");
        id.map(|id| id.to_str().unwrap().to_owned())
    };
    let response =
        test::call_service(&app, test::TestRequest::get().uri("/count").to_request()).await;
    assert!(!response.headers().contains_key(SET_COOKIE));
    let id = id_of(&response).expect("the id comes back in the header");
    let request = test::TestRequest::get()
        .uri("/count")
        .insert_header(("x-session-id", id.as_str()))
        .to_request();
    let body = test::call_and_read_body(&app, request).await;
    assert_eq!(body, "2");
    let request = test::TestRequest::post()
        .uri("/logout")
        .insert_header(("x-session-id", id.as_str()))
        .to_request();
    let response = test::call_service(&app, request).await;
    assert_eq!(
        id_of(&response).as_deref(),
        Some(""),
        "told to forget the id"
    );
}

#[actix_web::test]
async fn cookie_only_sessions_work_the_same() {
    let config = SessionConfig::default().private([[7u8; 64]]);
    let app = serve_with(SessionManager::cookie_only(config).unwrap()).await;
    let (_, set_cookie, _) = get_with(&app, "/count", None).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    let (status, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));
    // Listing a user's sessions needs a store: 501, nothing leaked.
    let (_, set_cookie, _) = post_with(&app, "/login/ann", Some(&cookie)).await;
    let cookie = cookie_pair(&set_cookie.unwrap());
    let (status, _, body) = get_with(&app, "/devices", Some(&cookie)).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_IMPLEMENTED, ""));
}

#[actix_web::test]
async fn handlers_can_use_question_mark_on_session_errors() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (status, set_cookie, body) = get_with(&app, "/save", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "1"));
    let cookie = cookie_pair(&set_cookie.unwrap());
    store.fail_once_after(1); // the load passes, the handler's save fails
    let (status, set_cookie, body) = get_with(&app, "/save", Some(&cookie)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert_eq!(body, "", "no internals in the body");
    assert!(set_cookie.is_some(), "the final commit landed the change");
    let (_, _, body) = get_with(&app, "/count", Some(&cookie)).await;
    assert_eq!(body, "3");
}

#[actix_web::test]
async fn the_manager_extractor_reaches_the_users_sessions() {
    let store = Recording::new();
    let app = serve(&store).await;
    let (_, set_cookie, _) = post_with(&app, "/login/ann", None).await;
    let phone = cookie_pair(&set_cookie.unwrap());
    post_with(&app, "/login/ann", None).await;

    let (status, _, body) = get_with(&app, "/devices", Some(&phone)).await;
    assert_eq!((status, body.as_str()), (StatusCode::OK, "2"));
}

#[actix_web::test]
async fn a_missing_middleware_is_a_clear_500() {
    async fn manager_only(_sessions: SessionManager) -> &'static str {
        "a manager without the middleware"
    }
    let app = test::init_service(
        App::new()
            .route("/count", web::get().to(count))
            .route("/manager", web::get().to(manager_only)),
    )
    .await;
    for path in ["/count", "/manager"] {
        let (status, _, body) = get_with(&app, path, None).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{path}");
        assert!(
            body.contains("not wrapped in SessionMiddleware"),
            "{path}: {body}"
        );
    }
}

#[actix_web::test]
async fn signed_cookies_rotate_and_tampered_ones_get_a_fresh_session() {
    let store = Recording::new();
    let manager = |keys: &[[u8; 64]]| {
        let config = SessionConfig::default().signed(keys);
        SessionManager::new(store.clone(), config).unwrap()
    };
    let before = serve_with(manager(&[[1; 64]])).await;
    let during = serve_with(manager(&[[2; 64], [1; 64]])).await;
    let (_, set_cookie, _) = get_with(&before, "/count", None).await;
    let old = cookie_pair(&set_cookie.unwrap());

    // The old key verifies; the response re-signs with the new one.
    let (_, set_cookie, body) = get_with(&during, "/whoami", Some(&old)).await;
    assert_eq!(body, "nobody 1");
    let renewed = cookie_pair(&set_cookie.expect("re-signed with the new key"));
    assert_ne!(renewed, old);

    // Tampered: a fresh session, never an error.
    let mut flipped = renewed.clone().into_bytes();
    let last = flipped.len() - 1;
    flipped[last] = if flipped[last] == b'A' { b'B' } else { b'A' };
    let flipped = String::from_utf8(flipped).unwrap();
    for cookie in [
        flipped.as_str(),
        &renewed[..renewed.len() - 3],
        "session=forged",
    ] {
        let (status, _, body) = get_with(&during, "/whoami", Some(cookie)).await;
        assert_eq!(
            (status, body.as_str()),
            (StatusCode::OK, "nobody 0"),
            "{cookie}"
        );
    }
}
