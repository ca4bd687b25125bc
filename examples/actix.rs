//! A small actix-web app on sessions: a counter, a cart, and logging in and
//! out, kept in memory.
//!
//! ```text
//! cargo run --example actix              # http://127.0.0.1:3000
//! PORT=3001 cargo run --example actix
//! ```
//!
//! Then, with curl keeping the cookie as a browser would:
//!
//! ```text
//! curl -c jar -b jar localhost:3000/counter
//! curl -c jar -b jar -L -d item=apple localhost:3000/cart
//! curl -c jar -b jar -L -d user=ann localhost:3000/login
//! curl -c jar -b jar -L -d '' localhost:3000/logout
//! ```

use std::io::{Error, ErrorKind};

use actix_web::http::header::LOCATION;
use actix_web::{web, App, HttpResponse, HttpServer};
use serde::Deserialize;
use session::{MemoryStore, Session, SessionConfig, SessionMiddleware};

/// Everything the app keeps per visitor.
#[derive(Session, Default)]
struct Shop {
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

/// Longest user name or cart item accepted.
const MAX_TEXT: usize = 100;
/// Most items a cart may hold: session records are meant to stay small.
const MAX_CART: usize = 50;

/// The session as text; showing the notice consumes it.
async fn index(shop: Session<Shop>) -> String {
    let mut page = String::new();
    if let Some(notice) = shop.notice() {
        page += &format!("{notice}\n");
    }
    let user = shop.user().unwrap_or_else(|| "nobody".into());
    page += &format!("logged in: {user}\nvisits: {}\n", shop.visits());
    page += &format!("cart: {}\n", shop.cart().join(", "));
    page
}

async fn counter(shop: Session<Shop>) -> String {
    shop.set_visits(shop.visits() + 1);
    shop.visits().to_string()
}

#[derive(Deserialize)]
struct AddItem {
    item: String,
}

async fn add_to_cart(shop: Session<Shop>, form: web::Form<AddItem>) -> HttpResponse {
    let item = form.item.trim();
    if item.is_empty() || item.chars().count() > MAX_TEXT {
        return HttpResponse::BadRequest().body("item must be 1 to 100 characters");
    }
    if shop.cart().len() >= MAX_CART {
        return HttpResponse::BadRequest().body("the cart is full");
    }
    shop.cart_mut().push(item.to_owned());
    shop.set_notice(Some(format!("Added {item} to the cart.")));
    back_home()
}

#[derive(Deserialize)]
struct Login {
    user: String,
}

async fn login(shop: Session<Shop>, form: web::Form<Login>) -> HttpResponse {
    let user = form.user.trim();
    if user.is_empty() || user.chars().count() > MAX_TEXT {
        return HttpResponse::BadRequest().body("user must be 1 to 100 characters");
    }
    shop.set_user(Some(user.to_owned()));
    shop.set_owner(Some(user));
    // A new id at every change of privilege defeats session fixation.
    shop.regenerate();
    shop.set_notice(Some(format!("Welcome, {user}!")));
    back_home()
}

async fn logout(shop: Session<Shop>) -> HttpResponse {
    shop.destroy();
    back_home()
}

fn back_home() -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((LOCATION, "/"))
        .finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();

    // Plain HTTP on localhost: browsers would drop a `Secure` cookie here.
    let config = SessionConfig::default().secure(false);
    // Made once and cloned into every worker's app, so all workers share the store.
    let sessions = SessionMiddleware::new(MemoryStore::new(), config)
        .map_err(|error| Error::new(ErrorKind::InvalidInput, error))?;

    let port = match std::env::var("PORT") {
        Ok(port) => port.parse().map_err(|_| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("PORT={port} is not a port number"),
            )
        })?,
        Err(_) => 3000,
    };
    let server = HttpServer::new(move || {
        App::new()
            .wrap(sessions.clone())
            .route("/", web::get().to(index))
            .route("/counter", web::get().to(counter))
            .route("/cart", web::post().to(add_to_cart))
            .route("/login", web::post().to(login))
            .route("/logout", web::post().to(logout))
    })
    .bind(("127.0.0.1", port))?;
    for address in server.addrs() {
        tracing::info!("listening on http://{address}");
    }
    server.run().await
}
