//! The session both benchmarks use, shared by `benches/peers.rs` and
//! `examples/load_server.rs` so that they measure the same thing.

use std::sync::Arc;

use serde::Serialize;
use session::{Session, SessionManager};
use tower_sessions as ts;

/// How many sessions the benchmarks seed and rotate through.
pub(crate) const SESSIONS: usize = 200;

/// A 20-key session: 19 short strings and integers, plus the counter.
#[derive(Session, Serialize, Default)]
pub(crate) struct Profile {
    pub(crate) user: String,
    pub(crate) email: String,
    pub(crate) display_name: String,
    pub(crate) locale: String,
    pub(crate) timezone: String,
    pub(crate) theme: String,
    pub(crate) plan: String,
    pub(crate) csrf_token: String,
    pub(crate) last_path: String,
    pub(crate) referrer: String,
    pub(crate) user_id: u64,
    pub(crate) visits: u64,
    pub(crate) cart_items: u64,
    pub(crate) page_size: u64,
    pub(crate) unread: u64,
    pub(crate) role: u64,
    pub(crate) login_at: u64,
    pub(crate) tos_version: u64,
    pub(crate) experiment: u64,
    pub(crate) counter: u64,
}

/// The data of session `i`; no field is at its default, so all 20 are stored.
pub(crate) fn profile(i: usize) -> Profile {
    Profile {
        user: format!("user{i}"),
        email: format!("user{i}@example.com"),
        display_name: format!("User {i}"),
        locale: "en-GB".into(),
        timezone: "Europe/London".into(),
        theme: "dark".into(),
        plan: "pro".into(),
        csrf_token: "3q2-7wE9xk4PZf1Lr8mYtA".into(),
        last_path: "/cart".into(),
        referrer: "https://example.org/".into(),
        user_id: 1000 + i as u64,
        visits: 42,
        cart_items: 3,
        page_size: 25,
        unread: 7,
        role: 2,
        login_at: 1_700_000_000,
        tos_version: 4,
        experiment: 11,
        counter: 1,
    }
}

/// Creates the sessions through `session`; returns their cookie values.
pub(crate) async fn session_seed(manager: &SessionManager) -> Vec<String> {
    let mut cookies = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let p = profile(i);
        let request = manager.start(None);
        let s = request.session::<Profile>().await.unwrap();
        s.set_user(p.user);
        s.set_email(p.email);
        s.set_display_name(p.display_name);
        s.set_locale(p.locale);
        s.set_timezone(p.timezone);
        s.set_theme(p.theme);
        s.set_plan(p.plan);
        s.set_csrf_token(p.csrf_token);
        s.set_last_path(p.last_path);
        s.set_referrer(p.referrer);
        s.set_user_id(p.user_id);
        s.set_visits(p.visits);
        s.set_cart_items(p.cart_items);
        s.set_page_size(p.page_size);
        s.set_unread(p.unread);
        s.set_role(p.role);
        s.set_login_at(p.login_at);
        s.set_tos_version(p.tos_version);
        s.set_experiment(p.experiment);
        s.set_counter(p.counter);
        let finished = request.finish().await;
        finished.result.unwrap();
        let cookie = finished.cookie.expect("a new session's cookie");
        cookies.push(cookie.value().to_owned());
    }
    cookies
}

/// Creates the same sessions through tower-sessions; returns their ids.
pub(crate) async fn tower_seed<S: ts::SessionStore>(store: &Arc<S>) -> Vec<String> {
    let mut cookies = Vec::with_capacity(SESSIONS);
    for i in 0..SESSIONS {
        let s = ts::Session::new(None, Arc::clone(store), None);
        let serde_json::Value::Object(fields) = serde_json::to_value(profile(i)).unwrap() else {
            unreachable!("a struct serializes to an object")
        };
        for (key, value) in fields {
            s.insert_value(&key, value).await.unwrap();
        }
        s.save().await.unwrap();
        cookies.push(s.id().expect("a saved session's id").to_string());
    }
    cookies
}
