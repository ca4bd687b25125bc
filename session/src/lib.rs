//! Typed web sessions.
//!
//! Declare a session as a plain struct and derive [`Session`](derive@Session):
//!
//! ```
//! use session::Session;
//!
//! #[derive(Session, Default)]
//! struct Shop {
//!     user: Option<String>,
//!     visits: u64,
//!     cart: Vec<String>,
//!     #[session(flash)]
//!     notice: Option<String>,
//! }
//! ```
//!
//! A handler then takes a [`Session<Shop>`](struct@Session) and uses the generated
//! accessors; no string keys anywhere:
//!
//! ```
//! # use session::Session;
//! # #[derive(Session, Default)]
//! # struct Shop { visits: u64, cart: Vec<String>, #[session(flash)] notice: Option<String> }
//! async fn add(session: Session<Shop>, item: String) -> String {
//!     session.cart_mut().push(item);           // changed in place: `cart` is dirty
//!     session.set_notice(Some("added".into())); // replaced: `notice` is dirty
//!     let visits = session.visits();           // reading never dirties
//!     session.set_visits(visits + 1);
//!     format!("{} items", session.cart().len())
//! }
//! ```
//!
//! At the end of the request only the fields whose encoding changed are
//! written, merged into the stored record, so two concurrent requests that
//! change different fields both keep their change. A request that changes
//! nothing writes nothing; a new session that holds nothing is not stored and
//! gets no cookie. Fields are decoded when first used, so a request pays only
//! for the fields it touches.
//!
//! # Accessors
//!
//! For a field `x: T` the handle offers `x() -> T` (a clone), `set_x(T)`,
//! `x_mut()`, a guard for changing it in place, and `with_x(|x| …)`, which
//! reads it without a clone (its closure must not use the session: that
//! panics rather than deadlock). The guard holds a copy of the
//! field, not a lock, and writes it back when dropped: the session stays
//! usable meanwhile (`session.cart_mut().push(session.item())` is fine), and
//! the guard may cross an `.await`. A `flash` field's getter takes the value
//! out: it is gone from the session once read. The handle's own methods
//! ([`Session::destroy`], [`Session::regenerate`], [`Session::set_max_age`],
//! [`Session::set_owner`], [`Session::save`], [`Session::is_new`], …) manage
//! the session itself; no field may have an accessor of the same name.
//!
//! The accessors of a struct `Shop` are the methods of a type the derive
//! generates beside it, `ShopAccessors`, to which `Session<Shop>` derefs: it
//! has the struct's visibility and each accessor the field's docs, so
//! `cargo doc` on the application lists them.
//!
//! # Attributes
//!
//! | on a field | effect |
//! |---|---|
//! | `rename = "key"` | store the field under `key` |
//! | `alias = "old"` | also load it from `old` (repeatable); the next write moves it |
//! | `default`, `default = "path"` | the value when absent: `Default::default()` or `path()` |
//! | `skip` | keep the field for this request only, never stored |
//! | `flash` | the value is removed once read |
//! | `codec = Type` | encode with this [`Codec`] |
//!
//! | on the struct | effect |
//! |---|---|
//! | `rename_all = "camelCase"` | rename every key (`lowercase`, `UPPERCASE`, `PascalCase`, `camelCase`, `snake_case`, `SCREAMING_SNAKE_CASE`, `kebab-case`, `SCREAMING-KEBAB-CASE`) |
//! | `namespace = "auth"` | store keys as `auth.key`, so several structs share a session |
//! | `codec = Type` | the codec of every field without its own |
//! | `default` | absent fields take their value from the struct's `Default` |
//! | `crate = "path"` | where the `session` crate is, when renamed |
//!
//! A session that holds nothing yet has every field at its default: the
//! field type's `Default`, or the function named by `default = "path"`. With
//! `#[session(default)]` on the struct, fields without a default of their own
//! take it from the struct's `Default` impl instead, so then the struct needs
//! `Default` and those fields' types need not. A `flash` field's getter
//! leaves that default behind: `None` for an `Option`, an empty `Vec`, `0` —
//! so flash fields are best `Option`s, which tell "no message" from an empty
//! one.
//!
//! # Running it
//!
//! A [`SessionManager`] is a store and a [`SessionConfig`]; [`SessionLayer`]
//! runs it around an axum (or any tower) service, and handlers take
//! `Session<T>`. Build the manager yourself to keep a handle on it, for
//! listing or revoking a user's sessions from outside a request:
//!
//! ```
//! use axum::{routing::get, Router};
//! use session::{MemoryStore, Session, SessionConfig, SessionLayer, SessionManager};
//!
//! #[derive(Session, Default)]
//! struct Visits {
//!     count: u64,
//! }
//!
//! async fn count(visits: Session<Visits>) -> String {
//!     visits.set_count(visits.count() + 1);
//!     visits.count().to_string()
//! }
//!
//! # fn main() -> Result<(), session::Error> {
//! // `secure(false)` for plain-HTTP development only: browsers drop `Secure`
//! // cookies sent over `http://` (localhost aside, in some browsers).
//! let config = SessionConfig::default().secure(false);
//! let sessions = SessionManager::new(MemoryStore::new(), config)?;
//! let app: Router = Router::new()
//!     .route("/", get(count))
//!     .layer(SessionLayer::from_manager(sessions.clone()));
//! # Ok(())
//! # }
//! ```
//!
//! A configuration that would make a broken or injected `Set-Cookie` (a `;`
//! in the path, an empty cookie name, a zero max-age) is refused right there,
//! with [`Error::InvalidConfig`] naming the option. Handlers may return
//! `Result<_, session::Error>` and use `?`: a store failure answers
//! `503 Service Unavailable`, anything else `500`, and the details go to the
//! log, not the client.
//!
//! The [`lifecycle`] module is framework-agnostic: an integration starts a
//! request's session from its cookies and finishes it with the response.
//! Stores implement [`SessionStore`] (see [`store`] for the contract);
//! [`MemoryStore`] is the embedded one, and [`store::open`] opens any store
//! this build has from a URL (`memory`, `file:DIR`, `redis://…`,
//! `redis+cluster://…`, `sqlite:…`, `postgres://…`, `mysql://…`).
//!
//! # The session itself
//!
//! [`Session::destroy`] ends the whole session, every struct of it, and
//! [`Session::regenerate`] moves it to a new id (call it at log-in and
//! log-out). [`Session::set_max_age`] gives one session its own lifetime
//! ("remember me"). Requests of one session may race: changes to different
//! fields all land, a request that loaded a session another request destroyed
//! or regenerated writes nothing ([`SessionEvent::Gone`]), and no request
//! shortens a lifetime it did not change; see [`lifecycle`].
//!
//! # Per-user sessions
//!
//! [`Session::set_owner`] binds a session to a user. The manager then lists
//! the user's live sessions ([`SessionManager::sessions_of`], each with a
//! [`PublicId`] that is safe to show) and revokes one, all, or all but one;
//! a handler can end the user's other sessions with
//! [`Session::revoke_other_sessions`]:
//!
//! ```
//! # use session::{MemoryStore, Session, SessionConfig, SessionManager};
//! #[derive(Session, Default)]
//! struct Auth {
//!     user: Option<String>,
//! }
//!
//! async fn log_in(auth: Session<Auth>, user: &str) {
//!     auth.set_user(Some(user.to_owned()));
//!     auth.set_owner(Some(user));
//!     auth.regenerate();
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), session::Error> {
//! let sessions = SessionManager::new(MemoryStore::new(), SessionConfig::default())?;
//! for _device in 0..2 {
//!     let request = sessions.start(None);
//!     log_in(request.session::<Auth>().await?, "ann").await;
//!     request.finish().await.result?;
//! }
//! assert_eq!(sessions.sessions_of("ann").await?.len(), 2);
//! // A password change: log out everywhere.
//! assert_eq!(sessions.revoke_all("ann").await?, 2);
//! # Ok(())
//! # }
//! ```
//!
//! # Features
//!
//! - `memory` (default): [`MemoryStore`].
//! - `file`: `store::file::FileStore`, one file per session, shared by the
//!   processes of one machine.
//! - `redis`: `store::redis::RedisStore`, on one Redis server or a Cluster.
//! - `sqlite`, `postgres`, `mysql`: `store::sql::SqliteStore`,
//!   `store::sql::PostgresStore`, `store::sql::MySqlStore` (through `sqlx`).
//! - `axum` (default): the `Session<T>` extractor for axum, with `tower`.
//! - `tower`: [`SessionLayer`], for any `http`-based tower service.
//! - `actix`: `SessionMiddleware` and the `Session<T>` extractor for actix-web.
//! - `binary`: the `Binary` codec (postcard).
//! - `conformance`: `store::conformance`, the suite that proves a store
//!   keeps the contract.
#![forbid(unsafe_code)]
#![deny(missing_docs)]
// docs.rs (nightly) badges every feature-gated item with its feature.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod codec;
mod config;
mod cookie;
mod data;
mod error;
mod event;
mod handle;
mod id;
pub mod integrations;
pub mod lifecycle;
pub mod store;

pub use ::cookie::{Cookie, SameSite};
#[cfg(feature = "binary")]
pub use codec::Binary;
pub use codec::{Codec, CodecError, Json};
pub use config::SessionConfig;
pub use error::{Error, StoreOp};
pub use event::{InvalidCookie, SessionEvent};
pub use handle::{FieldMut, Session, SessionData};
pub use id::{PublicId, StoreKey};
#[cfg(feature = "actix")]
pub use integrations::actix::SessionMiddleware;
#[cfg(feature = "axum")]
pub use integrations::axum::SessionRejection;
#[cfg(feature = "tower")]
pub use integrations::tower::SessionLayer;
pub use lifecycle::{Finished, LiveSession, LoadedSession, RequestSession, SessionManager};
#[cfg(feature = "memory")]
pub use store::MemoryStore;
pub use store::SessionStore;

// The macro's own docs show on the crate page; docs here would be added to
// them, printing its description twice.
pub use session_derive::Session;

/// What `#[derive(Session)]` expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::codec::{Codec, CodecError, Json};
    pub use crate::data::{SessionSchema, StoredField};
    pub use crate::handle::{Accessors, FieldMut, RawHandle, SessionData};
}

/// The README's examples, compiled with the doctests so that they cannot rot:
/// each example that needs a feature is compiled in the builds that have it.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
