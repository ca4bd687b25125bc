//! The PostgreSQL store (feature `postgres`).
//!
//! Every operation is one statement, but a move to a new id, which is one
//! transaction of two. `now` is the server's statement time in
//! milliseconds since the Unix epoch, and `t` the table:
//!
//! | operation | statement |
//! |---|---|
//! | load | `SELECT data::text, expire - now, max_age, owner FROM t WHERE store_key = $1 AND expire > now` |
//! | create | `INSERT INTO t … ON CONFLICT (store_key) DO UPDATE SET … WHERE t.expire <= excluded.created`: no row written means a live session holds the key |
//! | update | `UPDATE t SET data = jsonb_strip_nulls(data \|\| $patch), expire = GREATEST(expire, now + COALESCE(max_age, $default)), updated = now WHERE store_key = $1 AND expire > now RETURNING expire - now, max_age` (with the override or owner when they change) |
//! | rekey | `BEGIN`; `DELETE FROM t WHERE store_key = $to AND expire <= now`; the update with `store_key = $to`, on `$from` (a unique violation: the new key is taken); `COMMIT` |
//! | delete | `DELETE FROM t WHERE store_key = $1` |
//! | clean-up | `DELETE FROM t WHERE store_key IN (SELECT store_key FROM t WHERE expire <= now LIMIT $1) AND expire <= now`, repeated while batches come back full |
//!
//! An update waits for the row's lock and then applies its patch to the
//! row as the write before it left it, so concurrent commits merge; an
//! update that finds the row moved or deleted meanwhile matches nothing and
//! reports the session gone.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, Postgres};
use sqlx::Row;

use super::{Columns, Dialect, NewRow, SqlStore};
use crate::store::{
    BoxError, ChangeSet, Created, ExpiredCleanup, Moved, OwnedSession, Record, SessionStore,
    Updated,
};
use crate::StoreKey;

/// Sessions in a PostgreSQL table.
pub type PostgresStore = SqlStore<Postgres>;

/// The server's statement time, in milliseconds since the Unix epoch.
const NOW: &str = "(extract(epoch FROM statement_timestamp()) * 1000)::bigint";

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

impl super::sealed::Sealed for Postgres {}

impl Dialect for Postgres {
    type Statements = Statements;

    fn statements(table: &str) -> Statements {
        let t = format!("\"{table}\"");
        Statements {
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 store_key TEXT PRIMARY KEY, \
                 data JSONB NOT NULL, \
                 expire BIGINT NOT NULL, \
                 max_age BIGINT, \
                 owner TEXT, \
                 created BIGINT NOT NULL, \
                 updated BIGINT NOT NULL)"
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
            load: format!(
                "SELECT data::text, expire - {NOW}, max_age, owner FROM {t} \
                 WHERE store_key = $1 AND expire > {NOW}"
            ),
            create: format!(
                "INSERT INTO {t} AS s (store_key, data, expire, max_age, owner, created, updated) \
                 VALUES ($1, $2::jsonb, {NOW} + $3, $4, $5, {NOW}, {NOW}) \
                 ON CONFLICT (store_key) DO UPDATE SET data = excluded.data, \
                 expire = excluded.expire, max_age = excluded.max_age, owner = excluded.owner, \
                 created = excluded.created, updated = excluded.updated \
                 WHERE s.expire <= excluded.created"
            ),
            // $1 the key, $2 the new key (the same but for a rekey).
            update: format!(
                "UPDATE {t} SET store_key = $2, \
                 data = CASE WHEN $3::text IS NULL THEN data \
                     ELSE jsonb_strip_nulls(data || $3::jsonb) END, \
                 expire = CASE WHEN $4 THEN {NOW} + COALESCE($5, $6) \
                     ELSE GREATEST(expire, {NOW} + COALESCE(max_age, $6)) END, \
                 max_age = CASE WHEN $4 THEN $5 ELSE max_age END, \
                 owner = CASE WHEN $7 THEN $8 ELSE owner END, \
                 updated = {NOW} \
                 WHERE store_key = $1 AND expire > {NOW} \
                 RETURNING expire - {NOW}, max_age"
            ),
            clear_expired_key: format!("DELETE FROM {t} WHERE store_key = $1 AND expire <= {NOW}"),
            delete: format!("DELETE FROM {t} WHERE store_key = $1"),
            list_owned: format!(
                "SELECT store_key, created, updated, expire FROM {t} \
                 WHERE owner = $1 AND expire > {NOW}"
            ),
            delete_owned: format!(
                "DELETE FROM {t} WHERE owner = $1 AND expire > {NOW} \
                 AND store_key IS DISTINCT FROM $2"
            ),
            delete_expired: format!(
                "DELETE FROM {t} WHERE store_key IN \
                 (SELECT store_key FROM {t} WHERE expire <= {NOW} LIMIT $1) \
                 AND expire <= {NOW}"
            ),
        }
    }
}

impl SqlStore<Postgres> {
    /// Connects a pool of its own to `url` (`postgres://user:password@host/db`).
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = super::pool_options().connect_with(options).await?;
        Ok(Self::from_pool(pool))
    }

    /// Creates the table and its indexes if they are missing, and checks
    /// that the table has the store's columns. Concurrent calls from several
    /// processes wait for each other (an advisory lock).
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        let mut transaction = self.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock(hashtext($1))")
            .bind(format!("session-store:{}", self.table))
            .execute(&mut *transaction)
            .await?;
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
        executor: impl sqlx::PgExecutor<'e>,
        key: &StoreKey,
        new_key: &StoreKey,
        changes: &ChangeSet,
    ) -> Result<Option<crate::store::Expiry>, sqlx::Error> {
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
            .fetch_optional(executor)
            .await?;
        row.map(|row| Ok(super::expiry(row.try_get(0)?, row.try_get(1)?)))
            .transpose()
    }
}

#[async_trait]
impl SessionStore for SqlStore<Postgres> {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        let row = sqlx::query(&self.sql.load)
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| {
            super::record(
                row.try_get(0)?,
                row.try_get(1)?,
                row.try_get(2)?,
                row.try_get(3)?,
            )
        })
        .transpose()
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        let new = NewRow::of(changes);
        let written = sqlx::query(&self.sql.create)
            .bind(key.as_str())
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
        let mut transaction = self.pool.begin().await?;
        sqlx::query(&self.sql.clear_expired_key)
            .bind(to.as_str())
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
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(super::owned(
                    row.try_get(0)?,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ))
            })
            .collect()
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        let deleted = sqlx::query(&self.sql.delete_owned)
            .bind(owner)
            .bind(keep.map(StoreKey::as_str))
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(deleted)
    }
}

#[async_trait]
impl ExpiredCleanup for SqlStore<Postgres> {
    async fn delete_expired(&self) -> Result<u64, BoxError> {
        self.delete_expired_in_batches(|batch| async move {
            let deleted = sqlx::query(&self.sql.delete_expired)
                .bind(i64::from(batch))
                .execute(&self.pool)
                .await?;
            Ok(deleted.rows_affected())
        })
        .await
    }
}
