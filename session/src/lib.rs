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
//! For a field `x: T` the handle offers `x() -> T` (a clone), `set_x(T)` and
//! `x_mut()`, a guard for changing it in place. A `flash` field's getter takes
//! the value out: it is gone from the session once read. The handle's own
//! methods ([`Session::destroy`], [`Session::regenerate`],
//! [`Session::set_max_age`], [`Session::save`], [`Session::is_new`]) manage the
//! session itself.
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
//! # Running it
//!
//! The [`lifecycle`] module is framework-agnostic; [`SessionLayer`] plugs it
//! into axum. Stores implement [`SessionStore`]; [`MemoryStore`] is the
//! embedded one.
//!
//! # Features
//!
//! - `memory` (default): [`MemoryStore`].
//! - `axum` (default): [`SessionLayer`] and the extractor.
//! - `binary`: the [`Binary`] codec (postcard).
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod codec;
mod config;
mod data;
mod error;
mod event;
mod handle;
mod id;
pub mod integrations;
pub mod lifecycle;
pub mod store;

#[cfg(feature = "binary")]
pub use codec::Binary;
pub use codec::{Codec, CodecError, Json};
pub use config::SessionConfig;
pub use cookie::{Cookie, SameSite};
pub use data::SessionData;
pub use error::{Error, StoreOp};
pub use event::SessionEvent;
pub use handle::{FieldMut, Session};
pub use id::StoreKey;
#[cfg(feature = "axum")]
pub use integrations::axum::{SessionLayer, SessionRejection};
pub use lifecycle::{RequestSession, SessionManager};
#[cfg(feature = "memory")]
pub use store::MemoryStore;
pub use store::{ChangeSet, Fields, MaxAgeUpdate, Record, SessionStore};

/// Derives [`SessionData`], making the struct usable as `Session<Self>`.
/// See the [crate docs](crate#attributes) for its attributes.
pub use session_derive::Session;

/// What `#[derive(Session)]` expands to refers to; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::codec::{Codec, CodecError, Json};
    pub use crate::data::{Accessors, SessionData, StoredField};
    pub use crate::handle::{FieldMut, RawHandle};
}

/// The README's example, compiled with the doctests so that it cannot rot.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeExample;
