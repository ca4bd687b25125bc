//! A store named by a URL, for applications that choose their store by
//! configuration (the demo reads `SESSION_STORE`).

use std::path::PathBuf;
use std::sync::Arc;

use super::{BoxError, SessionStore};
use crate::error::{Error, StoreOp};

/// Opens the store `url` names:
///
/// | URL | store |
/// |---|---|
/// | `memory` | [`MemoryStore`](crate::MemoryStore) (feature `memory`) |
/// | `file:///abs/dir`, `file:relative/dir` | `store::file::FileStore` (feature `file`) |
/// | `redis://host:port` | `store::redis::RedisStore` on one server (feature `redis`) |
/// | `redis+cluster://host:port,host:port,...` | `store::redis::RedisStore` on a Redis Cluster, from any of its nodes |
/// | `sqlite:///abs/path.db`, `sqlite:relative.db` | `store::sql::SqliteStore` (feature `sqlite`); the file is created if missing |
/// | `postgres://…`, `postgresql://…` | `store::sql::PostgresStore` (feature `postgres`) |
/// | `mysql://…`, `mariadb://…` | `store::sql::MySqlStore` (feature `mysql`) |
///
/// An SQL store is migrated (its table created if missing), and its expired
/// rows are deleted every ten minutes by a task that ends with the store.
/// A URL this build cannot open is an [`Error::StoreUrl`] saying why; a store
/// that cannot be reached is an [`Error::Store`] with [`StoreOp::Open`].
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), session::Error> {
/// let store = session::store::open("memory").await?;
/// let sessions = session::SessionManager::new(store, session::SessionConfig::default())?;
/// # Ok(())
/// # }
/// ```
pub async fn open(url: &str) -> Result<Arc<dyn SessionStore>, Error> {
    let target = Target::parse(url).map_err(|reason| Error::StoreUrl {
        url: redacted(url),
        reason,
    })?;
    let opened = match target {
        Target::Memory => memory(),
        Target::File(dir) => file(dir),
        Target::Redis(url) => redis(url).await,
        Target::RedisCluster(urls) => redis_cluster(urls).await,
        Target::Sqlite(url) => sqlite(url).await,
        Target::Postgres(url) => postgres(url).await,
        Target::MySql(url) => mysql(url).await,
    };
    opened.map_err(|failure| match failure {
        Failure::Unsupported(reason) => Error::StoreUrl {
            url: redacted(url),
            reason,
        },
        Failure::Open(source) => Error::Store {
            op: StoreOp::Open,
            source,
        },
    })
}

/// `url` with the user information of every host (`user:password@`) shown
/// as `***@`: errors and logs never repeat a credential.
fn redacted(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (hosts, path) = rest.split_at(end);
    let hosts: Vec<String> = hosts
        .split(',')
        .map(|host| match host.rsplit_once('@') {
            Some((_, host)) => format!("***@{host}"),
            None => host.to_owned(),
        })
        .collect();
    format!("{scheme}://{}{path}", hosts.join(","))
}

/// What a store URL names.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Memory,
    File(PathBuf),
    Redis(String),
    RedisCluster(Vec<String>),
    Sqlite(String),
    Postgres(String),
    MySql(String),
}

impl Target {
    fn parse(url: &str) -> Result<Self, &'static str> {
        if url == "memory" {
            return Ok(Self::Memory);
        }
        if let Some(rest) = url.strip_prefix("file:") {
            let dir = match rest.strip_prefix("//") {
                // `file://host/...` would name another machine.
                Some(absolute) if absolute.starts_with('/') => absolute,
                Some(_) => return Err("a file URL is `file:///abs/dir` or `file:rel/dir`"),
                None => rest,
            };
            if dir.is_empty() {
                return Err("the file URL names no directory");
            }
            return Ok(Self::File(PathBuf::from(dir)));
        }
        if url.starts_with("redis://") {
            return Ok(Self::Redis(url.to_owned()));
        }
        if let Some(nodes) = url.strip_prefix("redis+cluster://") {
            let urls: Vec<String> = nodes
                .split(',')
                .filter(|node| !node.is_empty())
                .map(|node| format!("redis://{node}"))
                .collect();
            if urls.is_empty() {
                return Err("the cluster URL names no node");
            }
            return Ok(Self::RedisCluster(urls));
        }
        if let Some(path) = url.strip_prefix("sqlite:") {
            if path.trim_start_matches('/').is_empty() {
                return Err("the SQLite URL names no database file");
            }
            return Ok(Self::Sqlite(url.to_owned()));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(Self::Postgres(url.to_owned()));
        }
        if let Some(rest) = url.strip_prefix("mariadb://") {
            return Ok(Self::MySql(format!("mysql://{rest}")));
        }
        if url.starts_with("mysql://") {
            return Ok(Self::MySql(url.to_owned()));
        }
        Err(
            "want `memory`, `file:DIR`, `redis://HOST:PORT`, `redis+cluster://HOST:PORT,...`, \
             `sqlite:FILE`, `postgres://...` or `mysql://...`",
        )
    }
}

/// Why a parsed URL did not open.
enum Failure {
    /// This build lacks the store's feature.
    #[cfg_attr(
        all(
            feature = "memory",
            feature = "file",
            feature = "redis",
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql"
        ),
        allow(dead_code)
    )]
    Unsupported(&'static str),
    #[cfg_attr(
        not(any(
            feature = "file",
            feature = "redis",
            feature = "sqlite",
            feature = "postgres",
            feature = "mysql"
        )),
        allow(dead_code)
    )]
    Open(BoxError),
}

#[cfg(feature = "memory")]
fn memory() -> Result<Arc<dyn SessionStore>, Failure> {
    Ok(Arc::new(crate::MemoryStore::new()))
}

#[cfg(not(feature = "memory"))]
fn memory() -> Result<Arc<dyn SessionStore>, Failure> {
    Err(Failure::Unsupported("the `memory` feature is off"))
}

#[cfg(feature = "file")]
fn file(dir: PathBuf) -> Result<Arc<dyn SessionStore>, Failure> {
    match super::file::FileStore::new(dir) {
        Ok(store) => Ok(Arc::new(store)),
        Err(error) => Err(Failure::Open(error.into())),
    }
}

#[cfg(not(feature = "file"))]
fn file(_: PathBuf) -> Result<Arc<dyn SessionStore>, Failure> {
    Err(Failure::Unsupported("the `file` feature is off"))
}

#[cfg(feature = "redis")]
async fn redis(url: String) -> Result<Arc<dyn SessionStore>, Failure> {
    match super::redis::RedisStore::connect(&url).await {
        Ok(store) => Ok(Arc::new(store)),
        Err(error) => Err(Failure::Open(error.into())),
    }
}

#[cfg(feature = "redis")]
async fn redis_cluster(urls: Vec<String>) -> Result<Arc<dyn SessionStore>, Failure> {
    let urls: Vec<&str> = urls.iter().map(String::as_str).collect();
    match super::redis::RedisStore::connect_cluster(&urls).await {
        Ok(store) => Ok(Arc::new(store)),
        Err(error) => Err(Failure::Open(error.into())),
    }
}

#[cfg(not(feature = "redis"))]
async fn redis(_: String) -> Result<Arc<dyn SessionStore>, Failure> {
    Err(Failure::Unsupported("the `redis` feature is off"))
}

#[cfg(not(feature = "redis"))]
async fn redis_cluster(_: Vec<String>) -> Result<Arc<dyn SessionStore>, Failure> {
    Err(Failure::Unsupported("the `redis` feature is off"))
}

/// Connects an SQL store, migrates it and starts its clean-up.
macro_rules! open_sql {
    ($feature:literal, $name:ident, $store:ty) => {
        #[cfg(feature = $feature)]
        async fn $name(url: String) -> Result<Arc<dyn SessionStore>, Failure> {
            let opened = async {
                let store = <$store>::connect(&url).await?;
                store.migrate().await?;
                Ok::<_, sqlx::Error>(Arc::new(store))
            };
            let store = opened.await.map_err(|error| Failure::Open(error.into()))?;
            super::spawn_cleanup(&store, super::sql::CLEANUP_PERIOD);
            Ok(store)
        }

        #[cfg(not(feature = $feature))]
        async fn $name(_: String) -> Result<Arc<dyn SessionStore>, Failure> {
            Err(Failure::Unsupported(concat!(
                "the `",
                $feature,
                "` feature is off"
            )))
        }
    };
}

open_sql!("sqlite", sqlite, super::sql::sqlite::SqliteStore);
open_sql!("postgres", postgres, super::sql::postgres::PostgresStore);
open_sql!("mysql", mysql, super::sql::mysql::MySqlStore);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_name_their_store() {
        assert_eq!(Target::parse("memory"), Ok(Target::Memory));
        assert_eq!(
            Target::parse("file:///var/sessions"),
            Ok(Target::File("/var/sessions".into()))
        );
        assert_eq!(
            Target::parse("file:data/sessions"),
            Ok(Target::File("data/sessions".into()))
        );
        assert_eq!(
            Target::parse("redis://127.0.0.1:6380"),
            Ok(Target::Redis("redis://127.0.0.1:6380".into()))
        );
        assert_eq!(
            Target::parse("redis+cluster://a:1,b:2"),
            Ok(Target::RedisCluster(vec![
                "redis://a:1".into(),
                "redis://b:2".into()
            ]))
        );
        assert_eq!(
            Target::parse("sqlite:///var/sessions.db"),
            Ok(Target::Sqlite("sqlite:///var/sessions.db".into()))
        );
        assert_eq!(
            Target::parse("postgresql://u@h/db"),
            Ok(Target::Postgres("postgresql://u@h/db".into()))
        );
        assert_eq!(
            Target::parse("mariadb://root@h:3306/db"),
            Ok(Target::MySql("mysql://root@h:3306/db".into()))
        );
    }

    #[test]
    fn credentials_are_redacted() {
        for (url, shown) in [
            ("pg://ann:pw@db/x?a=b", "pg://***@db/x?a=b"),
            ("rediss://:pw@host:6380", "rediss://***@host:6380"),
            (
                "redis+cluster://:pw@a:1,b:2,u:p@w@c:3",
                "redis+cluster://***@a:1,b:2,***@c:3",
            ),
            ("mysql://host/db", "mysql://host/db"),
            ("file:dir", "file:dir"),
        ] {
            assert_eq!(redacted(url), shown);
        }
    }

    #[test]
    fn bad_urls_say_why() {
        for bad in [
            "",
            "memory:",
            "file:",
            "file://host/dir",
            "redis+cluster://",
            "sqlite:",
            "sqlite:///",
            "pg://x",
            "mem",
        ] {
            assert!(Target::parse(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
