//! actix-web: [`SessionMiddleware`], which runs the lifecycle around an
//! actix-web app, the [`Session<T>`](struct@crate::Session) and
//! [`SessionManager`] extractors, and errors as responses.
//!
//! The middleware starts each request's session from its cookies (or the
//! configured [`id_header`](crate::SessionConfig::id_header)) and puts it in
//! the request's extensions as a [`RequestSession`]; once the inner
//! service's response is ready, it commits and adds the `Set-Cookie` (or id)
//! header before the response leaves, so the client's next request already
//! sees the change.
//!
//! The commit runs for every response, error statuses included: a handler
//! that changes the session and then answers `4xx`/`5xx` still changes it,
//! and so does a request that a middleware inside this one turns into an
//! error. If the commit itself fails, the response is replaced by a bare
//! error, so a client is never told a change landed when it did not: the
//! configured [`store_failure_status`](crate::SessionConfig::store_failure_status)
//! (`503` unless set) when the store failed or timed out, else `500`; the
//! error is logged. A cookie an earlier `save()` prepared is still sent,
//! since the store holds that session.
//!
//! Build the middleware once, outside `HttpServer::new`, and clone it into
//! the app factory: the factory runs once per worker thread, and a store made
//! inside it would give each worker sessions of its own.
//!
//! A handler may return `Result<_, session::Error>` and use `?` on every
//! session call: the answer is [`Error::status`] (a store failure or timeout
//! `503 Service Unavailable`, most else `500`) with an empty body; the
//! details are logged.
//!
//! ```
//! use actix_web::{web, App, HttpServer};
//! use session::{MemoryStore, Session, SessionConfig, SessionManager, SessionMiddleware};
//!
//! #[derive(session::Session, Default)]
//! struct Visits {
//!     count: u64,
//! }
//!
//! async fn count(visits: Session<Visits>) -> String {
//!     visits.set_count(visits.count() + 1);
//!     visits.count().to_string()
//! }
//!
//! /// How many sessions the signed-in user has, through the middleware's manager.
//! async fn devices(
//!     visits: Session<Visits>,
//!     sessions: SessionManager,
//! ) -> Result<String, session::Error> {
//!     let Some(user) = visits.owner() else { return Ok("not signed in".into()) };
//!     Ok(format!("{} sessions", sessions.sessions_of(&user).await?.len()))
//! }
//!
//! /// Serves on port 8080; call it from `#[actix_web::main]`.
//! async fn serve() -> std::io::Result<()> {
//!     let config = SessionConfig::default();
//!     let sessions = SessionMiddleware::new(MemoryStore::new(), config)
//!         .map_err(std::io::Error::other)?;
//!     HttpServer::new(move || {
//!         App::new()
//!             .wrap(sessions.clone())
//!             .route("/", web::get().to(count))
//!             .route("/devices", web::get().to(devices))
//!     })
//!     .bind(("127.0.0.1", 8080))?
//!     .run()
//!     .await
//! }
//! ```

use std::future::{ready, Future, Ready};
use std::pin::Pin;

use actix_web::body::{BoxBody, EitherBody, MessageBody};
use actix_web::dev::{forward_ready, Payload, Service, ServiceRequest, ServiceResponse, Transform};
use actix_web::error::InternalError;
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest, HttpResponse, ResponseError};

use crate::store::IntoSharedStore;
use crate::SessionManager;
use crate::{Error, Finished, RequestSession, Session, SessionConfig, SessionData};

/// Adds sessions to every request of the app or scope it wraps.
///
/// See the [module docs](self) for an example.
#[derive(Clone, Debug)]
pub struct SessionMiddleware {
    manager: SessionManager,
}

impl SessionMiddleware {
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

impl<S, B> Transform<S, ServiceRequest> for SessionMiddleware
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Transform = SessionService<S>;
    type InitError = ();
    type Future = Ready<Result<SessionService<S>, ()>>;

    fn new_transform(&self, inner: S) -> Self::Future {
        ready(Ok(SessionService {
            inner,
            manager: self.manager.clone(),
        }))
    }
}

/// The service [`SessionMiddleware`] wraps around an application.
#[derive(Debug)]
pub struct SessionService<S> {
    inner: S,
    manager: SessionManager,
}

impl<S, B> Service<ServiceRequest> for SessionService<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
    B: MessageBody,
{
    type Response = ServiceResponse<EitherBody<B>>;
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, actix_web::Error>>>>;

    forward_ready!(inner);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let headers = request.headers();
        let session = self
            .manager
            .start_from_headers(|name| headers.get_all(name).map(HeaderValue::as_bytes));
        request.extensions_mut().insert(session.clone());
        let response = self.inner.call(request);
        let manager = self.manager.clone();
        Box::pin(async move {
            let response = response.await;
            let finished = session.finish().await;
            match response {
                Ok(response) => {
                    let (request, response) = response.into_parts();
                    let response = finish(response, finished, &manager);
                    Ok(ServiceResponse::new(request, response))
                }
                // Nothing to add: the error goes on as it is, so that outer
                // layers can still downcast it.
                Err(error) if finished.cookie.is_none() && finished.result.is_ok() => Err(error),
                // An inner middleware's error becomes a response further out;
                // it must carry the cookie (or give way to the failed
                // commit's 500) all the same.
                Err(error) => {
                    let response = finish(error.error_response(), finished, &manager);
                    Err(InternalError::from_response(error, response.map_into_boxed_body()).into())
                }
            }
        })
    }
}

/// The response with the finished session's `Set-Cookie` (or id header), or
/// a bare error if the commit failed.
fn finish<B>(
    response: HttpResponse<B>,
    finished: Finished,
    manager: &SessionManager,
) -> HttpResponse<EitherBody<B>> {
    let mut response = match finished.result {
        Ok(()) => response.map_into_left_body(),
        Err(error) => {
            tracing::error!(
                error = &error as &dyn std::error::Error,
                "session commit failed"
            );
            failure(manager.config().status_for(&error))
        }
    };
    if let Some(cookie) = finished.cookie {
        let (name, value) = manager.response_header(&cookie);
        match (HeaderName::try_from(name), HeaderValue::try_from(value)) {
            (Ok(name), Ok(value)) => response.headers_mut().append(name, value),
            _ => {
                tracing::error!("the session's response header is not a valid header");
                response = failure(500);
            }
        }
    }
    response
}

/// A bare response with `status`, leaking nothing.
fn failure<B>(status: u16) -> HttpResponse<EitherBody<B>> {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    HttpResponse::new(status).map_into_right_body()
}

impl<T: SessionData> FromRequest for Session<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let request_session = request_session(request);
        Box::pin(async move {
            let request_session = request_session?;
            let loaded = request_session.session::<T>().await;
            loaded.map_err(|source| {
                let status = request_session.manager().config().status_for(&source);
                LoadFailed { source, status }.into()
            })
        })
    }
}

/// The manager behind the route's [`SessionMiddleware`], for handlers that
/// list or revoke a user's sessions.
impl FromRequest for SessionManager {
    type Error = actix_web::Error;
    type Future = Ready<Result<Self, actix_web::Error>>;

    fn from_request(request: &HttpRequest, _payload: &mut Payload) -> Self::Future {
        let manager = request_session(request).map(|session| session.manager().clone());
        ready(manager.map_err(actix_web::Error::from))
    }
}

fn request_session(request: &HttpRequest) -> Result<RequestSession, MissingMiddleware> {
    let session = request.extensions().get::<RequestSession>().cloned();
    session.ok_or_else(|| {
        tracing::error!("a handler asked for a session on a route without SessionMiddleware");
        MissingMiddleware
    })
}

/// A mistake in the app's wiring, worth saying plainly: `500`, with this
/// message as the body.
#[derive(Debug, thiserror::Error)]
#[error("no session here: the route is not wrapped in SessionMiddleware")]
struct MissingMiddleware;

impl ResponseError for MissingMiddleware {}

/// A session that could not be loaded for a handler: the configured status,
/// an empty body.
#[derive(Debug, thiserror::Error)]
#[error("the session could not be loaded")]
struct LoadFailed {
    #[source]
    source: Error,
    status: u16,
}

impl ResponseError for LoadFailed {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        tracing::error!(
            error = &self.source as &dyn std::error::Error,
            "session error"
        );
        HttpResponse::new(self.status_code())
    }
}

/// [`Error::status`]: `503 Service Unavailable` when the store failed or
/// timed out (worth a retry), `500 Internal Server Error` for most else; the
/// body is empty, never the error's details, which are logged instead.
impl ResponseError for Error {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        tracing::error!(error = self as &dyn std::error::Error, "session error");
        HttpResponse::new(self.status_code())
    }
}
