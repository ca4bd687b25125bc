//! tower: [`SessionLayer`], which runs the lifecycle around any
//! `http`-based service (axum, tonic, a bare hyper service).
//!
//! The layer starts each request's session from its cookies (or the
//! configured [`id_header`](crate::SessionConfig::id_header)) and puts it in
//! the request's extensions as a [`RequestSession`](crate::RequestSession); once the inner service's
//! response is ready, it commits and adds the `Set-Cookie` (or id) header before the
//! response leaves, so the client's next request already sees the change.
//!
//! The commit runs for every response, error statuses included (as
//! koa-session does): a handler that changes the session and then answers
//! `4xx`/`5xx` still changes it. It also runs when the inner service fails
//! with an error instead of a response (a timeout layer inside this one,
//! say), so a `destroy()` or a revocation still takes effect; the error
//! then goes on unchanged, and a cookie the commit prepared is logged as
//! undelivered, since no response carries it. If the commit itself fails, the response is
//! replaced by a bare error, so a client is never told a change landed when
//! it did not: the configured
//! [`store_failure_status`](crate::SessionConfig::store_failure_status)
//! (`503` unless set) when the store failed or timed out, else `500`; the
//! error is logged. A cookie an earlier
//! `save()` prepared is still sent, since the store holds that session.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{HeaderName, HeaderValue, Request, Response, StatusCode};
use tower_layer::Layer;
use tower_service::Service;

use crate::store::IntoSharedStore;
use crate::{Error, SessionConfig, SessionManager};

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
/// # fn main() -> Result<(), session::Error> {
/// let app: Router = Router::new()
///     .route("/", get(count))
///     .layer(SessionLayer::new(MemoryStore::new(), SessionConfig::default())?);
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
pub struct SessionLayer {
    manager: SessionManager,
}

impl SessionLayer {
    /// Sessions kept in `store` (a store, or one shared: see
    /// [`SessionManager::new`]), living by `config`; fails with
    /// [`Error::InvalidConfig`] when an option would make a broken cookie.
    pub fn new(store: impl IntoSharedStore, config: SessionConfig) -> Result<Self, Error> {
        Ok(Self::from_manager(SessionManager::new(store, config)?))
    }

    /// Cookie-only sessions: each lives whole in its client's encrypted
    /// cookie; see [`SessionManager::cookie_only`].
    pub fn cookie_only(config: SessionConfig) -> Result<Self, Error> {
        Ok(Self::from_manager(SessionManager::cookie_only(config)?))
    }

    /// Sessions made by `manager`, which the application may also use itself
    /// (to list or revoke a user's sessions from outside a request).
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
    S: Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: Default + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let headers = request.headers();
        let session = self
            .manager
            .start_from_headers(|name| headers.get_all(name).iter().map(HeaderValue::as_bytes));
        request.extensions_mut().insert(session.clone());
        // The clone that was made ready is the one to call (tower's rule).
        let ready = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, ready);
        let manager = self.manager.clone();
        Box::pin(async move {
            let answered = inner.call(request).await;
            // Committed whatever the inner service answered: a logout or a
            // revocation must not be undone by a timeout layer inside this one.
            let finished = session.finish().await;
            if let Err(error) = &finished.result {
                tracing::error!(
                    error = error as &dyn std::error::Error,
                    "session commit failed"
                );
            }
            let mut response = match answered {
                Ok(response) => response,
                // No response carries the cookie: only the error goes on.
                Err(error) => {
                    if finished.cookie.is_some() {
                        tracing::warn!(
                            "the inner service failed, so the session's cookie could not reach the client"
                        );
                    }
                    return Err(error);
                }
            };
            if let Err(error) = finished.result {
                response = failure(manager.config().status_for(&error));
            }
            if let Some(cookie) = finished.cookie {
                let (name, value) = manager.response_header(&cookie);
                match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
                    (Ok(name), Ok(value)) => {
                        response.headers_mut().append(name, value);
                    }
                    _ => {
                        tracing::error!("the session's response header is not a valid header");
                        response = failure(500);
                    }
                }
            }
            Ok(response)
        })
    }
}

/// A bare response with `status`, leaking nothing.
fn failure<B: Default>(status: u16) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() =
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    response
}
