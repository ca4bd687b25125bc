//! The demo app's routes, driven as a browser would.

#[path = "../examples/demo/app.rs"]
mod app;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::Router;
use session::{MemoryStore, SessionConfig, SessionManager};
use tower::ServiceExt;

struct Browser {
    app: Router,
    cookie: Option<String>,
}

impl Browser {
    fn new() -> Self {
        Self::of(SessionManager::new(MemoryStore::new(), SessionConfig::default()).unwrap())
    }

    fn of(sessions: SessionManager) -> Self {
        Self {
            app: app::app(sessions),
            cookie: None,
        }
    }

    async fn send(&mut self, method: &str, path: &str, form: Option<&str>) -> (StatusCode, String) {
        let mut request = Request::builder().method(method).uri(path);
        if let Some(cookie) = &self.cookie {
            request = request.header(header::COOKIE, cookie);
        }
        let body = match form {
            Some(form) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(form.to_owned())
            }
            None => Body::empty(),
        };
        let response = self
            .app
            .clone()
            .oneshot(request.body(body).unwrap())
            .await
            .unwrap();
        if let Some(set_cookie) = response.headers().get(header::SET_COOKIE) {
            let pair = set_cookie.to_str().unwrap().split(';').next().unwrap();
            let removal = pair
                .split_once('=')
                .is_none_or(|(_, value)| value.is_empty());
            self.cookie = (!removal).then(|| pair.to_owned());
        }
        let status = response.status();
        let body = axum::body::to_bytes(response.into_body(), 1 << 20)
            .await
            .unwrap();
        (status, String::from_utf8(body.to_vec()).unwrap())
    }

    async fn json(&mut self) -> serde_json::Value {
        let (status, body) = self.send("GET", "/api/session", None).await;
        assert_eq!(status, StatusCode::OK);
        serde_json::from_str(&body).unwrap()
    }
}

#[tokio::test]
async fn the_demo_counts_logs_in_fills_a_cart_and_logs_out() {
    shop_flow(Browser::new()).await;
}

#[tokio::test]
async fn the_demo_runs_the_same_with_cookie_only_sessions() {
    let config = SessionConfig::default().private([[8u8; 64]]);
    let sessions = SessionManager::cookie_only(config).unwrap();
    shop_flow(Browser::of(sessions.clone())).await;

    // What needs a store says it cannot be done here.
    let mut browser = Browser::of(sessions);
    browser.send("POST", "/login", Some("user=ann")).await;
    let (status, body) = browser.send("GET", "/api/devices", None).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_IMPLEMENTED, ""));
}

/// Counts, logs in, fills a cart, sees the notice once, logs out.
async fn shop_flow(mut browser: Browser) {
    assert_eq!(
        browser.send("GET", "/counter", None).await,
        (StatusCode::OK, "1".into())
    );
    assert_eq!(
        browser.send("GET", "/counter", None).await,
        (StatusCode::OK, "2".into())
    );
    let before_login = browser.cookie.clone().unwrap();

    let (status, _) = browser.send("POST", "/login", Some("user=ann")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_ne!(
        browser.cookie.as_ref(),
        Some(&before_login),
        "login regenerates the id"
    );

    let (status, _) = browser.send("POST", "/cart", Some("item=apple")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    browser.send("POST", "/cart", Some("item=%3Cpear%3E")).await;
    let json = browser.json().await;
    assert_eq!(
        json,
        serde_json::json!({"user": "ann", "visits": 2, "cart": ["apple", "<pear>"], "notice": "Added <pear> to the cart."})
    );
    assert_eq!(
        browser.json().await["notice"],
        serde_json::Value::Null,
        "the notice shows once"
    );

    let (status, page) = browser.send("GET", "/", None).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("Logged in as <b>ann</b>"));
    assert!(
        page.contains("<li>&lt;pear&gt;</li>"),
        "cart items are escaped"
    );

    let (status, _) = browser.send("POST", "/logout", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(browser.cookie, None, "logout removes the cookie");
    let json = browser.json().await;
    assert_eq!(
        json,
        serde_json::json!({"user": null, "visits": 0, "cart": [], "notice": null})
    );
}

#[tokio::test]
async fn the_demo_refuses_bad_input_with_400() {
    let mut browser = Browser::new();
    let (status, body) = browser.send("POST", "/login", Some("user=+")).await;
    assert_eq!(
        (status, body.as_str()),
        (StatusCode::BAD_REQUEST, "user must be 1 to 100 characters")
    );
    let long = format!("item={}", "x".repeat(101));
    assert_eq!(
        browser.send("POST", "/cart", Some(&long)).await.0,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(browser.cookie, None, "refused input stores nothing");
}

#[tokio::test]
async fn the_demo_lists_a_users_sessions_and_logs_out_the_others() {
    let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default()).unwrap();
    let browser = || Browser {
        app: app::app(sessions.clone()),
        cookie: None,
    };
    let (mut laptop, mut phone, mut stranger) = (browser(), browser(), browser());
    laptop.send("POST", "/login", Some("user=ann")).await;
    phone.send("POST", "/login", Some("user=ann")).await;
    stranger.send("POST", "/login", Some("user=bob")).await;

    let (status, body) = laptop.send("GET", "/api/devices", None).await;
    assert_eq!(status, StatusCode::OK);
    let devices: Vec<serde_json::Value> = serde_json::from_str(&body).unwrap();
    assert_eq!(devices.len(), 2, "{body}");
    assert_eq!(devices.iter().filter(|d| d["current"] == true).count(), 1);
    let cookie_value = laptop.cookie.clone().unwrap();
    assert!(
        !body.contains(cookie_value.trim_start_matches("session=")),
        "no cookie in the list"
    );

    let (status, _) = laptop.send("POST", "/logout-others", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        laptop.json().await["notice"],
        "Logged out 1 other session(s)."
    );
    assert_eq!(
        phone.json().await["user"],
        serde_json::Value::Null,
        "the phone is logged out"
    );
    assert_eq!(laptop.json().await["user"], "ann");
    assert_eq!(stranger.json().await["user"], "bob");
    let (_, body) = laptop.send("GET", "/api/devices", None).await;
    assert_eq!(
        serde_json::from_str::<Vec<serde_json::Value>>(&body)
            .unwrap()
            .len(),
        1
    );
}
