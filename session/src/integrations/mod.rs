//! Thin adapters from web frameworks to the [`lifecycle`](crate::lifecycle):
//! each starts a request's session from its cookies, hands it to handlers,
//! and puts the finished session's cookie on the response.

#[cfg(feature = "actix")]
pub mod actix;
#[cfg(feature = "axum")]
pub mod axum;
#[cfg(feature = "tower")]
pub mod tower;
