//! The demo shop: every route of the demo, on any store.

use axum::extract::Form;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use session::{LiveSession, Session, SessionLayer, SessionManager};

/// Everything the demo keeps per visitor.
#[derive(Session, Default)]
pub(crate) struct Shop {
    /// Who logged in, if anyone.
    user: Option<String>,
    /// How often `/counter` was visited.
    visits: u64,
    /// What was put in the cart.
    cart: Vec<String>,
    /// A message for the next page, shown once.
    #[session(flash)]
    notice: Option<String>,
}

/// Longest user name or cart item the demo accepts.
const MAX_TEXT: usize = 100;
/// Most items a cart may hold: session cookies point at small records.
const MAX_CART: usize = 50;

pub(crate) fn app(sessions: SessionManager) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/counter", get(counter))
        .route("/login", post(login))
        .route("/logout", post(logout))
        .route("/cart", post(add_to_cart))
        .route("/logout-others", post(logout_others))
        .route("/api/session", get(api_session))
        .route("/api/devices", get(devices))
        .layer(SessionLayer::from_manager(sessions))
}

async fn counter(session: Session<Shop>) -> String {
    let visits = session.visits() + 1;
    session.set_visits(visits);
    visits.to_string()
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(session: Session<Shop>, Form(login): Form<Login>) -> Response {
    let user = login.user.trim();
    if user.is_empty() || user.chars().count() > MAX_TEXT {
        return bad_request("user must be 1 to 100 characters");
    }
    session.set_user(Some(user.to_owned()));
    // Bound to the user, so that the user's sessions can be listed and ended.
    session.set_owner(Some(user));
    // A new id at every change of privilege defeats session fixation.
    session.regenerate();
    session.set_notice(Some(format!("Welcome, {user}!")));
    Redirect::to("/").into_response()
}

async fn logout(session: Session<Shop>) -> Redirect {
    session.destroy();
    Redirect::to("/")
}

/// Ends the user's sessions on every other device.
async fn logout_others(session: Session<Shop>) -> Result<Redirect, session::Error> {
    let ended = session.revoke_other_sessions().await?;
    session.set_notice(Some(format!("Logged out {ended} other session(s).")));
    Ok(Redirect::to("/"))
}

/// The logged-in user's live sessions: public ids and times (milliseconds
/// since the epoch), this one marked `current`; never cookies.
async fn devices(session: Session<Shop>) -> Result<Json<Vec<LiveSession>>, session::Error> {
    Ok(Json(session.owner_sessions().await?))
}

#[derive(Deserialize)]
struct AddItem {
    item: String,
}

async fn add_to_cart(session: Session<Shop>, Form(add): Form<AddItem>) -> Response {
    let item = add.item.trim();
    if item.is_empty() || item.chars().count() > MAX_TEXT {
        return bad_request("item must be 1 to 100 characters");
    }
    if session.cart().len() >= MAX_CART {
        return bad_request("the cart is full");
    }
    session.cart_mut().push(item.to_owned());
    session.set_notice(Some(format!("Added {item} to the cart.")));
    Redirect::to("/").into_response()
}

/// The session as JSON; reading it shows (and so consumes) the notice.
async fn api_session(session: Session<Shop>) -> Json<serde_json::Value> {
    Json(serde_json::json!({
        "user": session.user(),
        "visits": session.visits(),
        "cart": session.cart(),
        "notice": session.notice(),
    }))
}

async fn index(session: Session<Shop>) -> Html<String> {
    let user = match session.user() {
        Some(user) => format!(
            "<p>Logged in as <b>{}</b>.</p>\
             <form method=post action=/logout><button>Log out</button></form>\
             <form method=post action=/logout-others><button>Log out other devices</button></form> \
             (<a href=/api/devices>my sessions</a>)",
            escape(&user)
        ),
        None => "<form method=post action=/login><input name=user placeholder=name required> \
                 <button>Log in</button></form>"
            .to_owned(),
    };
    let notice = session
        .notice()
        .map(|notice| format!("<p class=notice>{}</p>", escape(&notice)))
        .unwrap_or_default();
    let cart: String = session
        .cart()
        .iter()
        .map(|item| format!("<li>{}</li>", escape(item)))
        .collect();
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>session demo</title>\
         <h1>session demo</h1>{notice}{user}\
         <p>Counter visits: {visits} (<a href=/counter>count</a>, <a href=/api/session>JSON</a>)</p>\
         <h2>Cart</h2><ul>{cart}</ul>\
         <form method=post action=/cart><input name=item placeholder=item required> \
         <button>Add</button></form>",
        visits = session.visits(),
    ))
}

fn bad_request(message: &'static str) -> Response {
    (StatusCode::BAD_REQUEST, message).into_response()
}

fn escape(text: &str) -> String {
    text.chars()
        .fold(String::with_capacity(text.len()), |mut out, c| {
            match c {
                '&' => out.push_str("&amp;"),
                '<' => out.push_str("&lt;"),
                '>' => out.push_str("&gt;"),
                '"' => out.push_str("&quot;"),
                '\'' => out.push_str("&#39;"),
                c => out.push(c),
            }
            out
        })
}
