//! One HTTP server of the benchmark, in the variant its only argument names;
//! `bench-run` starts it pinned to one core and loads it with wrk.
//!
//! ```text
//! PORT=0 FIELDS=20 STORE_URL=redis://127.0.0.1:6379 bench-server session-redis
//! ```
//!
//! Every variant answers the same three routes:
//!
//! - `GET /seed`: a fresh session with all `FIELDS` fields set (see
//!   `session_bench::profile`), answered with its `Set-Cookie`;
//! - `GET /counter`: reads `counter`, writes `counter + 1`, answers the new
//!   value;
//! - `GET /read`: reads `counter` and answers it, changing nothing.
//!
//! Variants: `none` (axum without sessions: `/seed` sets a cookie of about
//! the size of a session id, the others answer a constant), `session-memory`,
//! `session-file`, `session-redis`, `session-sqlite`, `session-postgres`
//! (this library on that store; `STORE_URL` names it, see
//! `session::store::open`), `session-cookie` (cookie-only, private cookies),
//! `tower-memory`, `tower-redis`, `tower-postgres` (tower-sessions; the
//! last with its sqlx store, on `STORE_URL`), `none-actix` (actix-web
//! without sessions, the ceiling of the actix peers), `actix-redis` and
//! `actix-cookie` (actix-session).
//!
//! `PORT` (default 0: any free port), `FIELDS` (4, 16, 20 or 64; default
//! 20). It runs single-threaded (a current-thread tokio runtime; one actix
//! worker) and prints `ready <address>` once it listens.

use std::net::{SocketAddr, TcpListener};
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_session::storage::{CookieSessionStore, RedisSessionStore};
use actix_session::{Session as ActixSession, SessionMiddleware};
use actix_web::cookie::Key;
use actix_web::{web, App, HttpResponse, HttpServer};
use axum::http::header::SET_COOKIE;
use axum::routing::get;
use axum::Router;
use session::{Session, SessionConfig, SessionLayer, SessionManager};
use session_bench::profile::{
    json_fields, Profile, Profile16, Profile20, Profile4, Profile64, FIELD_COUNTS,
};
use tower_sessions as ts;
use tower_sessions_redis_store::fred::prelude::{
    Builder as FredBuilder, ClientLike, Config as FredConfig,
};

type BoxError = Box<dyn std::error::Error>;

/// The key of the cookie-only variants (private cookies need 64 bytes). A
/// benchmark's key, public on purpose.
const KEY: [u8; 64] = *b"session-bench cookie key: public, for benchmarks only, 64 bytes!";

/// Which session `/seed` fills next, so that seeded sessions differ.
static SEEDED: AtomicUsize = AtomicUsize::new(0);

fn next_seed() -> usize {
    SEEDED.fetch_add(1, Ordering::Relaxed)
}

/// A cookie of about the size of a session-id cookie, for the variants
/// without sessions, so that their requests weigh the same.
fn anonymous_cookie() -> String {
    format!("session=anonymous-{:0>33}; Path=/; HttpOnly", next_seed())
}

struct Settings {
    variant: String,
    port: u16,
    fields: usize,
    store_url: Option<String>,
}

impl Settings {
    fn from_env() -> Result<Self, BoxError> {
        let variant = std::env::args()
            .nth(1)
            .ok_or("usage: bench-server VARIANT (see the crate docs)")?;
        let port = match std::env::var("PORT") {
            Ok(port) => port
                .parse()
                .map_err(|_| format!("PORT={port}: not a port"))?,
            Err(_) => 0,
        };
        let fields = match std::env::var("FIELDS") {
            Ok(fields) => fields
                .parse()
                .ok()
                .filter(|n| FIELD_COUNTS.contains(n))
                .ok_or(format!("FIELDS={fields}: want one of {FIELD_COUNTS:?}"))?,
            Err(_) => 20,
        };
        let store_url = std::env::var("STORE_URL").ok();
        Ok(Self {
            variant,
            port,
            fields,
            store_url,
        })
    }

    fn store_url(&self) -> Result<&str, BoxError> {
        self.store_url
            .as_deref()
            .ok_or_else(|| format!("{}: STORE_URL is not set", self.variant).into())
    }

    fn listener(&self) -> Result<TcpListener, BoxError> {
        let listener = TcpListener::bind(("127.0.0.1", self.port))?;
        listener.set_nonblocking(true)?;
        Ok(listener)
    }
}

/// Tells the runner where to connect; stdout is line-buffered.
fn ready(addr: SocketAddr) {
    println!("ready {addr}");
}

fn main() -> Result<(), BoxError> {
    let settings = Settings::from_env()?;
    if matches!(
        settings.variant.as_str(),
        "none-actix" | "actix-redis" | "actix-cookie"
    ) {
        actix_web::rt::System::new().block_on(actix_main(settings))
    } else {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(axum_main(settings))
    }
}

// ---- axum: none, session-*, tower-* ----

async fn axum_main(settings: Settings) -> Result<(), BoxError> {
    let app = match settings.variant.as_str() {
        "none" => none_app(),
        "session-memory" | "session-file" | "session-redis" | "session-sqlite"
        | "session-postgres" => {
            let url = match settings.variant.as_str() {
                "session-memory" => "memory",
                _ => settings.store_url()?,
            };
            let store = session::store::open(url).await?;
            let config = SessionConfig::default().secure(false); // plain HTTP
            let layer = SessionLayer::from_manager(SessionManager::new(store, config)?);
            session_app(settings.fields).layer(layer)
        }
        "session-cookie" => {
            let config = SessionConfig::default().secure(false).private([KEY]);
            session_app(settings.fields).layer(SessionLayer::cookie_only(config)?)
        }
        "tower-memory" => tower_app(settings.fields)
            .layer(ts::SessionManagerLayer::new(ts::MemoryStore::default()).with_secure(false)),
        "tower-redis" => {
            let config = FredConfig::from_url(settings.store_url()?)?;
            let client = FredBuilder::from_config(config).build()?;
            // Runs the connection in a task of its own; `init` waits for it.
            let _connection = client.init().await?;
            let store = tower_sessions_redis_store::RedisStore::new(client);
            tower_app(settings.fields).layer(ts::SessionManagerLayer::new(store).with_secure(false))
        }
        "tower-postgres" => {
            let pool =
                tower_sessions_sqlx_store::sqlx::PgPool::connect(settings.store_url()?).await?;
            let store = tower_sessions_sqlx_store::PostgresStore::new(pool);
            store.migrate().await?;
            tower_app(settings.fields).layer(ts::SessionManagerLayer::new(store).with_secure(false))
        }
        other => return Err(format!("unknown variant {other}").into()),
    };
    let listener = tokio::net::TcpListener::from_std(settings.listener()?)?;
    ready(listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}

fn none_app() -> Router {
    async fn seed() -> ([(axum::http::HeaderName, String); 1], &'static str) {
        ([(SET_COOKIE, anonymous_cookie())], "seeded")
    }
    async fn constant() -> &'static str {
        "1"
    }
    Router::new()
        .route("/seed", get(seed))
        .route("/counter", get(constant))
        .route("/read", get(constant))
}

fn session_app(fields: usize) -> Router {
    fn routes<P: Profile>() -> Router {
        async fn seed<P: Profile>(session: Session<P>) -> &'static str {
            P::fill(&session, next_seed());
            "seeded"
        }
        async fn counter<P: Profile>(session: Session<P>) -> String {
            let count = P::counter(&session) + 1;
            P::set_counter(&session, count);
            count.to_string()
        }
        async fn read<P: Profile>(session: Session<P>) -> String {
            P::counter(&session).to_string()
        }
        Router::new()
            .route("/seed", get(seed::<P>))
            .route("/counter", get(counter::<P>))
            .route("/read", get(read::<P>))
    }
    match fields {
        4 => routes::<Profile4>(),
        16 => routes::<Profile16>(),
        20 => routes::<Profile20>(),
        64 => routes::<Profile64>(),
        _ => unreachable!("FIELDS is checked when read"),
    }
}

fn tower_app(fields: usize) -> Router {
    // A store failure is a failed request: wrk counts the 500 and the runner
    // stops.
    async fn seed(fields: usize, session: ts::Session) -> Result<&'static str, String> {
        let data = json_fields(fields, next_seed()).expect("FIELDS is checked when read");
        for (key, value) in data {
            session
                .insert_value(&key, value)
                .await
                .map_err(|e| e.to_string())?;
        }
        Ok("seeded")
    }
    async fn counter(session: ts::Session) -> Result<String, String> {
        let count = read_counter(&session).await? + 1;
        session
            .insert("counter", count)
            .await
            .map_err(|e| e.to_string())?;
        Ok(count.to_string())
    }
    async fn read(session: ts::Session) -> Result<String, String> {
        Ok(read_counter(&session).await?.to_string())
    }
    async fn read_counter(session: &ts::Session) -> Result<u64, String> {
        let count = session
            .get::<u64>("counter")
            .await
            .map_err(|e| e.to_string())?;
        count.ok_or_else(|| "no counter: the session was not found".into())
    }
    Router::new()
        .route("/seed", get(move |s: ts::Session| seed(fields, s)))
        .route("/counter", get(counter))
        .route("/read", get(read))
}

// ---- actix: none-actix, actix-redis, actix-cookie ----

async fn actix_main(settings: Settings) -> Result<(), BoxError> {
    let listener = settings.listener()?;
    let addr = listener.local_addr()?;
    let fields = settings.fields;
    let server = match settings.variant.as_str() {
        "none-actix" => HttpServer::new(|| {
            App::new()
                .route(
                    "/seed",
                    web::get().to(|| async {
                        HttpResponse::Ok()
                            .insert_header(("set-cookie", anonymous_cookie()))
                            .body("seeded")
                    }),
                )
                .route("/counter", web::get().to(|| async { "1" }))
                .route("/read", web::get().to(|| async { "1" }))
        })
        .workers(1)
        .listen(listener)?
        .run(),
        "actix-redis" => {
            let store = RedisSessionStore::new(settings.store_url()?)
                .await
                .map_err(|e| e.to_string())?;
            HttpServer::new(move || {
                let sessions = SessionMiddleware::builder(store.clone(), Key::from(&KEY))
                    .cookie_secure(false)
                    .build();
                actix_routes(App::new().wrap(sessions), fields)
            })
            .workers(1)
            .listen(listener)?
            .run()
        }
        "actix-cookie" => HttpServer::new(move || {
            // Private (encrypted) cookies, actix-session's default.
            let sessions =
                SessionMiddleware::builder(CookieSessionStore::default(), Key::from(&KEY))
                    .cookie_secure(false)
                    .build();
            actix_routes(App::new().wrap(sessions), fields)
        })
        .workers(1)
        .listen(listener)?
        .run(),
        other => return Err(format!("unknown variant {other}").into()),
    };
    ready(addr);
    server.await?;
    Ok(())
}

fn actix_routes<T>(app: App<T>, fields: usize) -> App<T>
where
    T: actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Error = actix_web::Error,
        InitError = (),
    >,
{
    async fn seed(
        fields: web::Data<usize>,
        session: ActixSession,
    ) -> actix_web::Result<&'static str> {
        let data = json_fields(**fields, next_seed()).expect("FIELDS is checked when read");
        for (key, value) in data {
            session.insert(key, value)?;
        }
        Ok("seeded")
    }
    async fn counter(session: ActixSession) -> actix_web::Result<String> {
        let count = read_counter(&session)? + 1;
        session.insert("counter", count)?;
        Ok(count.to_string())
    }
    async fn read(session: ActixSession) -> actix_web::Result<String> {
        Ok(read_counter(&session)?.to_string())
    }
    fn read_counter(session: &ActixSession) -> actix_web::Result<u64> {
        session.get::<u64>("counter")?.ok_or_else(|| {
            actix_web::error::ErrorInternalServerError("no counter: the session was not found")
        })
    }
    app.app_data(web::Data::new(fields))
        .route("/seed", web::get().to(seed))
        .route("/counter", web::get().to(counter))
        .route("/read", web::get().to(read))
}
