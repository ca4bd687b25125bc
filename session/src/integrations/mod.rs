//! Thin adapters from web frameworks to the [`lifecycle`](crate::lifecycle).

#[cfg(feature = "axum")]
pub mod axum;
