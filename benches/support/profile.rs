//! The session both benchmarks use, shared by `benches/peers.rs` and
//! `examples/load_server.rs` so that they measure the same thing.

use serde::Serialize;
use session::Session;

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
