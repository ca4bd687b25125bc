//! axum and tower: [`SessionLayer`] and the [`Session<T>`](struct@crate::Session) extractor.
//!
//! The layer starts each request's session from its cookie; a handler that
//! takes a `Session<T>` loads it; once the handler's response is ready, the
//! layer commits and adds the `Set-Cookie` header before the response leaves,
//! so the client's next request already sees the change.
//!
//! The commit runs for every response, error statuses included (as
//! koa-session does): a handler that changes the session and then answers
//! `4xx`/`5xx` still changes it. If the commit itself fails, the response is
//! replaced by a bare `500 Internal Server Error`, so a client is never told
//! a change landed when it did not; the error is logged.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use http::header::{COOKIE, SET_COOKIE};
use http::request::Parts;
use http::{HeaderValue, Request, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::{Error, RequestSession, Session, SessionData, SessionManager};

/// Adds sessions to every request that passes through it.
///
/// ```
/// use axum::{routing::get, Router};
/// use session::{MemoryStore, Session, SessionConfig, SessionLayer};
///
/// #[derive(session::Session, Default)]
/// struct Visits {
///     count: u64,
/// }
///
/// async fn count(session: Session<Visits>) -> String {
///     let count = session.count() + 1;
///     session.set_count(count);
///     count.to_string()
/// }
///
/// let app: Router = Router::new()
///     .route("/", get(count))
///     .layer(SessionLayer::new(MemoryStore::new(), SessionConfig::default()));
/// ```
#[derive(Clone, Debug)]
pub struct SessionLayer {
    manager: SessionManager,
}

impl SessionLayer {
    /// Sessions kept in `store`, living by `config`.
    pub fn new(store: impl crate::SessionStore, config: crate::SessionConfig) -> Self {
        Self::from_manager(SessionManager::new(store, config))
    }

    /// Sessions made by `manager` (to share its store with other code).
    pub fn from_manager(manager: SessionManager) -> Self {
        Self { manager }
    }
}

impl<S> Layer<S> for SessionLayer {
    type Service = SessionService<S>;

    fn layer(&self, inner: S) -> SessionService<S> {
        SessionService {
            inner,
            manager: self.manager.clone(),
        }
    }
}

/// The service [`SessionLayer`] wraps around an application.
#[derive(Clone, Debug)]
pub struct SessionService<S> {
    inner: S,
    manager: SessionManager,
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SessionService<S>
where
    S: Service<Request<ReqBody>, Response = http::Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let cookies = request
            .headers()
            .get_all(COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok());
        let session = self.manager.start(self.manager.presented_id(cookies));
        request.extensions_mut().insert(session.clone());
        // The clone that was made ready is the one to call (tower's rule).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        Box::pin(async move {
            let mut response = inner.call(request).await?;
            match session.finish().await {
                Ok(None) => {}
                Ok(Some(cookie)) => match HeaderValue::try_from(cookie.to_string()) {
                    Ok(value) => {
                        response.headers_mut().append(SET_COOKIE, value);
                    }
                    Err(error) => {
                        tracing::error!(%error, "session cookie is not a valid header value");
                        response = internal_error();
                    }
                },
                Err(error) => {
                    tracing::error!(
                        error = &error as &dyn std::error::Error,
                        "session commit failed"
                    );
                    response = internal_error();
                }
            }
            Ok(response)
        })
    }
}

fn internal_error<B: Default>() -> http::Response<B> {
    let mut response = http::Response::new(B::default());
    *response.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
    response
}

impl<S: Send + Sync, T: SessionData> FromRequestParts<S> for Session<T> {
    type Rejection = SessionRejection;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, SessionRejection> {
        let request = parts
            .extensions
            .get::<RequestSession>()
            .ok_or(SessionRejection::MissingLayer)?;
        request.session::<T>().await.map_err(SessionRejection::Load)
    }
}

/// Why a handler could not get its `Session<T>`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SessionRejection {
    /// The route is not wrapped in a [`SessionLayer`].
    #[error("no session here: the route is not wrapped in a SessionLayer")]
    MissingLayer,
    /// The store could not load the session.
    #[error("the session could not be loaded")]
    Load(#[source] Error),
}

impl IntoResponse for SessionRejection {
    fn into_response(self) -> Response {
        tracing::error!(
            error = &self as &dyn std::error::Error,
            "session unavailable"
        );
        (StatusCode::INTERNAL_SERVER_ERROR, self.to_string()).into_response()
    }
}
