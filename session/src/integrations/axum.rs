//! axum: the [`Session<T>`](struct@crate::Session) extractor, and errors as
//! responses. Routes get sessions from the tower
//! [`SessionLayer`](crate::SessionLayer).
//!
//! A handler may return `Result<_, session::Error>` and use `?` on every
//! session call:
//!
//! ```
//! use session::{Session, SessionManager};
//!
//! #[derive(session::Session, Default)]
//! struct Auth {
//!     user: Option<String>,
//! }
//!
//! /// Logs out every other device of the signed-in user.
//! async fn sign_out_elsewhere(auth: Session<Auth>) -> Result<String, session::Error> {
//!     let ended = auth.revoke_other_sessions().await?;
//!     Ok(format!("signed out of {ended} other sessions"))
//! }
//!
//! /// The signed-in user's devices, listed through the layer's manager.
//! async fn devices(auth: Session<Auth>, sessions: SessionManager) -> Result<String, session::Error> {
//!     let Some(user) = auth.owner() else { return Ok("not signed in".into()) };
//!     Ok(format!("{} sessions", sessions.sessions_of(&user).await?.len()))
//! }
//!
//! let app: axum::Router = axum::Router::new()
//!     .route("/sign-out-elsewhere", axum::routing::post(sign_out_elsewhere))
//!     .route("/devices", axum::routing::get(devices));
//! ```

use axum_core::extract::FromRequestParts;
use axum_core::response::{IntoResponse, Response};
use http::request::Parts;
use http::StatusCode;

use crate::{Error, RequestSession, Session, SessionData, SessionManager};

impl<S: Send + Sync, T: SessionData> FromRequestParts<S> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, SessionRejection> {
        let request = request_session(parts)?;
        request
            .session::<T>()
            .await
            .map_err(|source| SessionRejection::Load {
                status: request.manager().config().status_for(&source),
                source,
            })
    }
}

/// The manager behind the route's [`SessionLayer`](crate::SessionLayer), for
/// handlers that list or revoke a user's sessions.
impl<S: Send + Sync> FromRequestParts<S> for SessionManager {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, SessionRejection> {
        Ok(request_session(parts)?.manager().clone())
    }
}

fn request_session(parts: &Parts) -> Result<&RequestSession, SessionRejection> {
    parts
        .extensions
        .get::<RequestSession>()
        .ok_or(SessionRejection::MissingLayer)
}

/// Why a handler could not get its `Session<T>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in a [`SessionLayer`](crate::SessionLayer).
    #[error("no session here: the route is not wrapped in a SessionLayer")]
    MissingLayer,
    /// The session could not be loaded.
    #[error("the session could not be loaded")]
    Load {
        /// Why.
        #[source]
        source: Error,
        /// The status to answer: the configured
        /// [`store_failure_status`](crate::SessionConfig::store_failure_status)
        /// for a store failure, else 500.
        status: u16,
    },
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        match self {
            Self::Load { source, status } => {
                tracing::error!(error = &source as &dyn std::error::Error, "session error");
                StatusCode::from_u16(status)
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
                    .into_response()
            }
            // A mistake in the app's wiring, worth saying plainly.
            Self::MissingLayer => {
                tracing::error!("a handler asked for a session on a route without SessionLayer");
                (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
            }
        }
    }
}

/// [`Error::status`]: `503 Service Unavailable` when the store failed or
/// timed out (worth a retry), `500 Internal Server Error` for most else; the
/// body is empty, never the error's details, which are logged instead.
impl IntoResponse for Error {
    fn into_response(self) -> Response {
        tracing::error!(error = &self as &dyn std::error::Error, "session error");
        StatusCode::from_u16(self.status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
            .into_response()
    }
}
