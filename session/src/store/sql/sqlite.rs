//! The SQLite store (feature `sqlite`): sessions in a database file, shared
//! by the processes of one machine, with no server.
//!
//! SQLite lets one writer at a time into a database, so every statement
//! below is atomic against every other; the store opens its database in WAL
//! mode, where readers do not wait for the writer, and a writer waits up to
//! five seconds for another. `now` is the application's clock, bound as a
//! parameter, and `t` the table:
//!
//! | operation | statement |
//! |---|---|
//! | load | `SELECT data, expire - now, max_age, owner FROM t WHERE store_key = ?1 AND expire > now` |
//! | create | `INSERT INTO t … ON CONFLICT (store_key) DO UPDATE SET … WHERE t.expire <= excluded.created`: no row written means a live session holds the key |
//! | update | `UPDATE t SET data = json_patch(data, ?patch), expire = max(expire, now + coalesce(max_age, ?default)), updated = now WHERE store_key = ?1 AND expire > now RETURNING expire - now, max_age` (with the override or owner when they change) |
//! | rekey | `BEGIN IMMEDIATE`; `DELETE FROM t WHERE store_key = ?to AND expire <= now`; the update with `store_key = ?to`, on `?from` (a unique violation: the new key is taken); `COMMIT` |
//! | delete | `DELETE FROM t WHERE store_key = ?1` |
//! | clean-up | `DELETE FROM t WHERE rowid IN (SELECT rowid FROM t WHERE expire <= now LIMIT ?)`, repeated while batches come back full |

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{Sqlite, SqliteConnectOptions, SqliteJournalMode, SqliteSynchronous};
use sqlx::Row;

use super::{Columns, Dialect, NewRow, SqlStore};
use crate::store::{
    BoxError, ChangeSet, Created, ExpiredCleanup, Expiry, Moved, OwnedSession, Record,
    SessionStore, Updated,
};
use crate::StoreKey;

/// Sessions in an SQLite table.
pub type SqliteStore = SqlStore<Sqlite>;

/// How long a writer waits for another to finish.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[doc(hidden)]
#[derive(Debug)]
pub struct Statements {
    create_table: String,
    check_table: String,
    create_indexes: [String; 2],
    load: String,
    create: String,
    update: String,
    clear_expired_key: String,
    delete: String,
    list_owned: String,
    delete_owned: String,
    delete_expired: String,
}

impl super::sealed::Sealed for Sqlite {}

impl Dialect for Sqlite {
    type Statements = Statements;

    fn statements(table: &str) -> Statements {
        let t = format!("\"{table}\"");
        Statements {
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 store_key TEXT PRIMARY KEY NOT NULL, \
                 data TEXT NOT NULL, \
                 expire INTEGER NOT NULL, \
                 max_age INTEGER, \
                 owner TEXT, \
                 created INTEGER NOT NULL, \
                 updated INTEGER NOT NULL)"
            ),
            check_table: format!(
                "SELECT store_key, data, expire, max_age, owner, created, updated FROM {t} LIMIT 0"
            ),
            create_indexes: [
                format!("CREATE INDEX IF NOT EXISTS \"{table}_expire\" ON {t} (expire)"),
                format!(
                    "CREATE INDEX IF NOT EXISTS \"{table}_owner\" ON {t} (owner) \
                     WHERE owner IS NOT NULL"
                ),
            ],
            // ?2 is now, in every statement that needs it but the update.
            load: format!(
                "SELECT data, expire - ?2, max_age, owner FROM {t} \
                 WHERE store_key = ?1 AND expire > ?2"
            ),
            create: format!(
                "INSERT INTO {t} (store_key, data, expire, max_age, owner, created, updated) \
                 VALUES (?1, ?3, ?2 + ?4, ?5, ?6, ?2, ?2) \
                 ON CONFLICT (store_key) DO UPDATE SET data = excluded.data, \
                 expire = excluded.expire, max_age = excluded.max_age, owner = excluded.owner, \
                 created = excluded.created, updated = excluded.updated \
                 WHERE {t}.expire <= excluded.created"
            ),
            // ?1 the key, ?2 the new key (the same but for a rekey), ?9 now.
            update: format!(
                "UPDATE {t} SET store_key = ?2, \
                 data = CASE WHEN ?3 IS NULL THEN data ELSE json_patch(data, ?3) END, \
                 expire = CASE WHEN ?4 THEN ?9 + coalesce(?5, ?6) \
                     ELSE max(expire, ?9 + coalesce(max_age, ?6)) END, \
                 max_age = CASE WHEN ?4 THEN ?5 ELSE max_age END, \
                 owner = CASE WHEN ?7 THEN ?8 ELSE owner END, \
                 updated = ?9 \
                 WHERE store_key = ?1 AND expire > ?9 \
                 RETURNING expire - ?9, max_age"
            ),
            clear_expired_key: format!("DELETE FROM {t} WHERE store_key = ?1 AND expire <= ?2"),
            delete: format!("DELETE FROM {t} WHERE store_key = ?1"),
            list_owned: format!(
                "SELECT store_key, created, updated, expire FROM {t} \
                 WHERE owner = ?1 AND expire > ?2"
            ),
            delete_owned: format!(
                "DELETE FROM {t} WHERE owner = ?1 AND expire > ?2 AND store_key IS NOT ?3"
            ),
            delete_expired: format!(
                "DELETE FROM {t} WHERE rowid IN \
                 (SELECT rowid FROM {t} WHERE expire <= ?2 LIMIT ?1)"
            ),
        }
    }
}

/// Creates the file at `path` with mode 0600 unless it exists (then it is
/// left as it is: its mode is the owner's choice).
fn create_owner_only(path: &Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        result => result.map(drop),
    }
}

impl SqlStore<Sqlite> {
    /// Opens the database `url` names (`sqlite:///abs/path.db`,
    /// `sqlite:relative.db`), in WAL mode. A missing file is created
    /// readable and writable by its owner only (SQLite's own default is
    /// 0644), as are its journal files, which SQLite creates with the
    /// database's mode: the database holds every session's fields.
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(BUSY_TIMEOUT);
        let path = options.get_filename();
        if path != Path::new(":memory:") {
            create_owner_only(path).map_err(sqlx::Error::Io)?;
        }
        let pool = super::pool_options().connect_with(options).await?;
        Ok(Self::from_pool(pool))
    }

    /// Creates the table and its indexes if they are missing, and checks
    /// that the table has the store's columns, in one transaction.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for statement in [&self.sql.create_table, &self.sql.check_table]
            .into_iter()
            .chain(&self.sql.create_indexes)
        {
            sqlx::query(statement).execute(&mut *transaction).await?;
        }
        transaction.commit().await
    }

    /// Runs the update statement on `key`, moving the row to `new_key`.
    async fn update_row<'e>(
        &self,
        executor: impl sqlx::SqliteExecutor<'e>,
        key: &StoreKey,
        new_key: &StoreKey,
        changes: &ChangeSet,
    ) -> Result<Option<Expiry>, sqlx::Error> {
        let columns = Columns::of(changes);
        let row = sqlx::query(&self.sql.update)
            .bind(key.as_str())
            .bind(new_key.as_str())
            .bind(columns.patch)
            .bind(columns.max_age_set)
            .bind(columns.max_age)
            .bind(columns.default_max_age)
            .bind(columns.owner_set)
            .bind(columns.owner)
            .bind(now())
            .fetch_optional(executor)
            .await?;
        row.map(|row| Ok(super::expiry(row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }
}

/// The application's clock, in milliseconds since the Unix epoch.
fn now() -> i64 {
    super::millis_since_epoch(std::time::SystemTime::now())
}

#[async_trait]
impl SessionStore for SqlStore<Sqlite> {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        let row = sqlx::query(&self.sql.load)
            .bind(key.as_str())
            .bind(now())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let data: String = row.try_get(0)?;
        super::record(&data, row.try_get(1)?, row.try_get(2)?, row.try_get(3)?).map(Some)
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        let new = NewRow::of(changes);
        let written = sqlx::query(&self.sql.create)
            .bind(key.as_str())
            .bind(now())
            .bind(&new.data)
            .bind(new.life_millis())
            .bind(new.max_age_millis())
            .bind(new.owner)
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(match written {
            0 => Created::KeyTaken,
            _ => Created::Written(new.expiry()),
        })
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        Ok(
            match self.update_row(&self.pool, key, key, changes).await? {
                Some(expiry) => Updated::Written(expiry),
                None => Updated::Gone,
            },
        )
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        _whole: &Record,
    ) -> Result<Moved, BoxError> {
        let mut transaction = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::query(&self.sql.clear_expired_key)
            .bind(to.as_str())
            .bind(now())
            .execute(&mut *transaction)
            .await?;
        let moved = match self.update_row(&mut *transaction, from, to, changes).await {
            Ok(Some(expiry)) => Moved::Written(expiry),
            Ok(None) => return Ok(Moved::Gone),
            Err(error) if super::is_unique_violation(&error) => return Ok(Moved::KeyTaken),
            Err(error) => return Err(error.into()),
        };
        transaction.commit().await?;
        Ok(moved)
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        sqlx::query(&self.sql.delete)
            .bind(key.as_str())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        let rows = sqlx::query(&self.sql.list_owned)
            .bind(owner)
            .bind(now())
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                let owned = super::owned(
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                );
                Ok(owned)
            })
            .collect()
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        let deleted = sqlx::query(&self.sql.delete_owned)
            .bind(owner)
            .bind(now())
            .bind(keep.map(StoreKey::as_str))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }
}

#[async_trait]
impl ExpiredCleanup for SqlStore<Sqlite> {
    async fn delete_expired(&self) -> Result<u64, BoxError> {
        self.delete_expired_in_batches(|batch| async move {
            let deleted = sqlx::query(&self.sql.delete_expired)
                .bind(batch)
                .bind(now())
                .execute(&self.pool)
                .await?;
            Ok(deleted.rows_affected())
        })
        .await
    }
}
