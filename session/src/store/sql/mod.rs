//! SQL stores through `sqlx`: SQLite (feature `sqlite`), PostgreSQL
//! (`postgres`) and MySQL / MariaDB (`mysql`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use std::time::Duration;
//! use session::store::sql::PostgresStore;
//! use session::{SessionConfig, SessionManager};
//!
//! let store = Arc::new(PostgresStore::connect("postgres://app@localhost/app").await?);
//! store.migrate().await?; // creates the table if it is missing
//! session::store::spawn_cleanup(&store, Duration::from_secs(600));
//! let manager = SessionManager::new(store, SessionConfig::default())?;
//! # let _ = manager;
//! # Ok(()) }
//! ```
//!
//! A store makes its own pool from a URL ([`SqlStore::connect`]) or takes
//! the application's ([`SqlStore::from_pool`]).
//!
//! # The table
//!
//! One row per session, in a table named `sessions` unless
//! [`SqlStore::table`] says otherwise:
//!
//! | column | PostgreSQL | MySQL / MariaDB | SQLite | holds |
//! |---|---|---|---|---|
//! | `store_key` | `TEXT` primary key | `VARBINARY(255)` primary key | `TEXT` primary key | the hashed session id, never the id |
//! | `data` | `JSONB` | `JSON` | `TEXT` (JSON) | the fields: `{"<stored key>": "<base64 of the encoded value>"}` |
//! | `expire` | `BIGINT`, indexed | `BIGINT`, indexed | `INTEGER`, indexed | when the session expires, in milliseconds since the Unix epoch |
//! | `max_age` | `BIGINT` | `BIGINT` | `INTEGER` | the session's own max-age, in milliseconds, or `NULL` |
//! | `owner` | `TEXT`, indexed | `BLOB`, indexed | `TEXT`, indexed | the user the session is bound to, or `NULL` |
//! | `created`, `updated` | `BIGINT` | `BIGINT` | `INTEGER` | first and last write, in milliseconds since the Unix epoch |
//!
//! [`migrate`](SqlStore::migrate) creates the table and its indexes if they
//! are missing, and checks that an existing table has these columns. It is
//! idempotent and safe to call from several processes at once; a later
//! version of the table will be reached by further idempotent steps there.
//!
//! # What a commit sends
//!
//! The `data` column is one JSON document, and a commit sends only a merge
//! patch (RFC 7396) of what the request changed: `{"cart": "WyJhIl0="}` for a
//! changed field, `{"notice": null}` for a removed one. The database applies
//! it in place, in the same statement that checks the session is live and
//! extends its expiry (`jsonb_strip_nulls(data || patch)` on PostgreSQL,
//! `JSON_MERGE_PATCH` on MySQL and MariaDB, `json_patch` on SQLite), under
//! the row's lock. So two requests that change different fields of one
//! session both land, and a large session costs a commit no more than its
//! changed fields. Values are base64 strings because a field's encoding is
//! bytes (a binary codec's included) that a JSON database would otherwise
//! reformat (`jsonb` rewrites numbers and spacing): base64 gives them back
//! byte for byte.
//!
//! Each database's own statements are listed in its module's docs.
//!
//! # Time
//!
//! PostgreSQL and MySQL stores read the time from the database server, not
//! from the application, so app servers whose clocks disagree agree on every
//! session's expiry. SQLite lives in the application's process, and uses its
//! clock.
//!
//! # Clean-up
//!
//! Expired rows stay until deleted: [`ExpiredCleanup::delete_expired`](super::ExpiredCleanup::delete_expired)
//! deletes them in batches of [`cleanup_batch`](SqlStore::cleanup_batch)
//! rows (1000 by default), so that no statement holds locks for long, and
//! [`spawn_cleanup`](super::spawn_cleanup) runs it periodically, logging
//! the counts through `tracing`. [`store::open`](super::open) starts it
//! every ten minutes.
//!
//! # Failures
//!
//! A database that is down fails a request with a store error (after the
//! lifecycle's [`store_timeout`](crate::SessionConfig::store_timeout) at
//! the latest); the pool checks connections before handing them out, so
//! the store recovers by itself once the database is back.

mod document;
#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "postgres")]
pub mod postgres;
#[cfg(feature = "sqlite")]
pub mod sqlite;

pub use document::CorruptData;
#[cfg(feature = "mysql")]
pub use mysql::MySqlStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresStore;
#[cfg(feature = "sqlite")]
pub use sqlite::SqliteStore;

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{BoxError, ChangeSet, Expiry, OwnedSession, Record, Update};
use crate::{Error, StoreKey};
use document::{document, fields};

/// A session store on the database `DB`: `PostgresStore`, `MySqlStore` or
/// `SqliteStore`.
pub struct SqlStore<DB: Dialect> {
    pool: sqlx::Pool<DB>,
    sql: Arc<DB::Statements>,
    table: Arc<str>,
    cleanup_batch: u32,
}

/// The table name unless [`SqlStore::table`] says otherwise.
const DEFAULT_TABLE: &str = "sessions";
/// Rows per clean-up statement.
const CLEANUP_BATCH: u32 = 1000;
/// How long a pool the store makes waits for a connection.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often [`store::open`](super::open) has expired rows deleted.
pub(crate) const CLEANUP_PERIOD: Duration = Duration::from_secs(10 * 60);

/// The databases a [`SqlStore`] runs on: each knows its statements.
pub trait Dialect: sqlx::Database + sealed::Sealed {
    /// The statements on one table, written once per store.
    #[doc(hidden)]
    type Statements: fmt::Debug + Send + Sync;

    /// The statements on the table `table` (a valid identifier).
    #[doc(hidden)]
    fn statements(table: &str) -> Self::Statements;
}

mod sealed {
    pub trait Sealed {}
}

impl<DB: Dialect> SqlStore<DB> {
    /// A store on the application's pool, on the table `sessions`.
    pub fn from_pool(pool: sqlx::Pool<DB>) -> Self {
        Self {
            pool,
            sql: Arc::new(DB::statements(DEFAULT_TABLE)),
            table: Arc::from(DEFAULT_TABLE),
            cleanup_batch: CLEANUP_BATCH,
        }
    }

    /// Keeps sessions in the table `name` (ASCII letters, digits and `_`,
    /// not starting with a digit, at most 50 characters, so that the
    /// indexes named after it fit the databases' limits); otherwise
    /// [`Error::InvalidConfig`].
    pub fn table(mut self, name: &str) -> Result<Self, Error> {
        let valid = (1..=50).contains(&name.len())
            && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
            && !name.as_bytes()[0].is_ascii_digit();
        if !valid {
            return Err(Error::InvalidConfig {
                option: "table",
                reason: "want 1 to 50 ASCII letters, digits or `_`, not starting with a digit",
            });
        }
        self.sql = Arc::new(DB::statements(name));
        self.table = Arc::from(name);
        Ok(self)
    }

    /// How many expired rows one clean-up statement deletes at most
    /// (1000 unless set; at least 1).
    pub fn cleanup_batch(mut self, rows: u32) -> Self {
        self.cleanup_batch = rows.max(1);
        self
    }

    /// The pool the store uses.
    pub fn pool(&self) -> &sqlx::Pool<DB> {
        &self.pool
    }

    /// The name of the store's table.
    pub fn table_name(&self) -> &str {
        &self.table
    }

    /// Deletes expired rows in batches with `delete_batch` until one comes
    /// back short, logging each batch.
    async fn delete_expired_in_batches<F, Fut>(&self, mut delete_batch: F) -> Result<u64, BoxError>
    where
        F: FnMut(u32) -> Fut,
        Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
    {
        let mut total = 0;
        loop {
            let deleted = delete_batch(self.cleanup_batch).await?;
            total += deleted;
            if deleted > 0 {
                tracing::trace!(deleted, table = %self.table, "deleted a batch of expired sessions");
            }
            if deleted < u64::from(self.cleanup_batch) {
                return Ok(total);
            }
            // Let the requests waiting on the table in between batches.
            tokio::task::yield_now().await;
        }
    }
}

impl<DB: Dialect> Clone for SqlStore<DB> {
    fn clone(&self) -> Self {
        Self {
            pool: self.pool.clone(),
            sql: Arc::clone(&self.sql),
            table: Arc::clone(&self.table),
            cleanup_batch: self.cleanup_batch,
        }
    }
}

impl<DB: Dialect> fmt::Debug for SqlStore<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlStore")
            .field("database", &DB::NAME)
            .field("table", &self.table)
            .field("cleanup_batch", &self.cleanup_batch)
            .finish_non_exhaustive()
    }
}

/// The pool options of a pool the store makes itself.
fn pool_options<DB: sqlx::Database>() -> sqlx::pool::PoolOptions<DB> {
    sqlx::pool::PoolOptions::new().acquire_timeout(ACQUIRE_TIMEOUT)
}

/// A change set in the table's terms.
// MySQL merges in several statements, reading fewer of these.
#[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(dead_code))]
struct Columns<'a> {
    /// The merge patch for `data`, or `None` when no field changes.
    patch: Option<String>,
    /// Whether the commit sets the max-age override, and to what.
    max_age_set: bool,
    max_age: Option<i64>,
    /// The configured lifetime, for sessions without an override.
    default_max_age: i64,
    /// Whether the commit sets the owner, and to what.
    owner_set: bool,
    owner: Option<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(changes: &'a ChangeSet) -> Self {
        let no_fields = changes.set.is_empty() && changes.remove.is_empty();
        let (max_age_set, max_age) = match &changes.max_age {
            Update::Keep => (false, None),
            Update::Set(max_age) => (true, max_age.map(capped_millis)),
        };
        let (owner_set, owner) = match &changes.owner {
            Update::Keep => (false, None),
            Update::Set(owner) => (true, owner.as_deref()),
        };
        Self {
            patch: (!no_fields).then(|| document(changes, true)),
            max_age_set,
            max_age,
            default_max_age: capped_millis(changes.default_max_age),
            owner_set,
            owner,
        }
    }
}

/// The columns of a session `changes` create.
struct NewRow<'a> {
    /// The whole `data` document.
    data: String,
    /// The session's lifetime.
    life: Duration,
    max_age: Option<Duration>,
    owner: Option<&'a str>,
}

impl<'a> NewRow<'a> {
    fn of(changes: &'a ChangeSet) -> Self {
        Self {
            data: document(changes, false),
            life: changes.max_age_after(None),
            max_age: changes.max_age.applied_to(None),
            owner: match &changes.owner {
                Update::Set(owner) => owner.as_deref(),
                Update::Keep => None,
            },
        }
    }

    fn life_millis(&self) -> i64 {
        capped_millis(self.life)
    }

    fn max_age_millis(&self) -> Option<i64> {
        self.max_age.map(capped_millis)
    }

    fn expiry(&self) -> Expiry {
        Expiry {
            ttl: self.life,
            max_age: self.max_age,
        }
    }
}

/// A loaded row: `data`, the time left and the override in milliseconds,
/// and the owner.
fn record(
    data: &str,
    ttl: i64,
    max_age: Option<i64>,
    owner: Option<String>,
) -> Result<Record, BoxError> {
    Ok(Record {
        fields: Arc::new(fields(data)?),
        ttl: duration(ttl),
        max_age: max_age.map(duration),
        owner: owner.map(Arc::from),
    })
}

/// A listed row: the key and its times in milliseconds since the epoch.
fn owned(key: String, created: i64, updated: i64, expire: i64) -> OwnedSession {
    OwnedSession {
        key: StoreKey::new(key),
        created_at: time(created),
        updated_at: time(updated),
        expires_at: time(expire),
    }
}

/// A written row's lifetime, in milliseconds.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
fn expiry(ttl: i64, max_age: Option<i64>) -> Expiry {
    Expiry {
        ttl: duration(ttl),
        max_age: max_age.map(duration),
    }
}

/// Milliseconds, capped at the longest lifetime (and so within `i64`).
fn capped_millis(duration: Duration) -> i64 {
    i64::try_from(duration.min(super::MAX_LIFETIME).as_millis()).unwrap_or(i64::MAX)
}

/// A span of milliseconds; a negative one is none.
fn duration(millis: i64) -> Duration {
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// A time in milliseconds since the Unix epoch.
fn time(millis: i64) -> SystemTime {
    UNIX_EPOCH + duration(millis)
}

/// A time in milliseconds since the Unix epoch.
#[cfg(any(feature = "sqlite", feature = "mysql"))]
fn millis_since_epoch(time: SystemTime) -> i64 {
    let since_epoch = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

/// Whether a failed statement broke a unique constraint.
fn is_unique_violation(error: &sqlx::Error) -> bool {
    matches!(error, sqlx::Error::Database(error) if error.is_unique_violation())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_touch_sends_no_patch() {
        assert!(Columns::of(&ChangeSet::touch(Duration::from_secs(60)))
            .patch
            .is_none());
    }
}
