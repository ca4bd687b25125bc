//! The MySQL and MariaDB store (feature `mysql`; MySQL 8 or MariaDB 10.5
//! and later).
//!
//! MySQL has no `UPDATE … RETURNING`, so a commit, which must report the
//! expiry it left, is one short transaction that locks the row, reads its
//! expiry and override, and writes: the expiry is then worked out from what
//! the lock guarantees is current. `now` is the server's UTC time in
//! milliseconds since the Unix epoch, and `t` the table:
//!
//! | operation | statements |
//! |---|---|
//! | load | `SELECT CAST(data AS CHAR), expire - now, max_age, owner FROM t WHERE store_key = ? AND expire > now` |
//! | create | `INSERT INTO t …`; only if the key exists: `UPDATE t SET … WHERE store_key = ? AND expire <= now` (a row updated replaced an expired session; none: the key is taken) |
//! | update | `BEGIN`; `SELECT expire, max_age, now FROM t WHERE store_key = ? AND expire > now FOR UPDATE`; `UPDATE t SET data = COALESCE(JSON_MERGE_PATCH(data, ?), data), expire = ?, max_age = ?, owner = IF(?, ?, owner), updated = ? WHERE store_key = ?`; `COMMIT` |
//! | rekey | the update, setting `store_key` to the new key; should that key be held by an expired session, `DELETE FROM t WHERE store_key = ? AND expire <= now` and the update again |
//! | delete | `DELETE FROM t WHERE store_key = ?` |
//! | clean-up | `DELETE FROM t WHERE expire <= now LIMIT ?`, repeated while batches come back full |
//!
//! A write InnoDB picks as a deadlock victim (an update, a rekey, a
//! revocation racing regenerates) is retried, up to four times.
//! Keys and owners are binary columns, compared byte for byte whatever
//! the server's collations.

use std::str::FromStr;

use async_trait::async_trait;
use sqlx::mysql::{MySql, MySqlConnectOptions, MySqlConnection};
use sqlx::Row;

use super::{Columns, CorruptData, Dialect, NewRow, SqlStore};
use crate::store::{
    BoxError, ChangeSet, Created, ExpiredCleanup, Expiry, Moved, OwnedSession, Record,
    SessionStore, Updated,
};
use crate::StoreKey;

/// Sessions in a MySQL or MariaDB table.
pub type MySqlStore = SqlStore<MySql>;

/// The server's UTC time in milliseconds since the Unix epoch, whatever the
/// session's time zone.
const NOW: &str = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6)) DIV 1000)";

/// How often a transaction chosen as a deadlock victim is tried again.
const DEADLOCK_RETRIES: u32 = 4;

#[doc(hidden)]
#[derive(Debug)]
pub struct Statements {
    create_table: String,
    check_table: String,
    load: String,
    insert: String,
    replace_expired: String,
    lock_live: String,
    update: String,
    clear_expired_key: String,
    delete: String,
    list_owned: String,
    delete_owned: String,
    delete_expired: String,
}

impl super::sealed::Sealed for MySql {}

impl Dialect for MySql {
    type Statements = Statements;

    fn statements(table: &str) -> Statements {
        let t = format!("`{table}`");
        Statements {
            create_table: format!(
                "CREATE TABLE IF NOT EXISTS {t} (\
                 store_key VARBINARY(255) NOT NULL PRIMARY KEY, \
                 data JSON NOT NULL, \
                 expire BIGINT NOT NULL, \
                 max_age BIGINT NULL, \
                 owner BLOB NULL, \
                 created BIGINT NOT NULL, \
                 updated BIGINT NOT NULL, \
                 INDEX expire (expire), \
                 INDEX owner (owner(255))\
                 ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"
            ),
            check_table: format!(
                "SELECT store_key, data, expire, max_age, owner, created, updated FROM {t} LIMIT 0"
            ),
            load: format!(
                "SELECT CAST(data AS CHAR), expire - {NOW}, max_age, owner FROM {t} \
                 WHERE store_key = ? AND expire > {NOW}"
            ),
            insert: format!(
                "INSERT INTO {t} (store_key, data, expire, max_age, owner, created, updated) \
                 VALUES (?, ?, {NOW} + ?, ?, ?, {NOW}, {NOW})"
            ),
            replace_expired: format!(
                "UPDATE {t} SET data = ?, expire = {NOW} + ?, max_age = ?, owner = ?, \
                 created = {NOW}, updated = {NOW} \
                 WHERE store_key = ? AND expire <= {NOW}"
            ),
            lock_live: format!(
                "SELECT expire, max_age, {NOW} FROM {t} \
                 WHERE store_key = ? AND expire > {NOW} FOR UPDATE"
            ),
            update: format!(
                "UPDATE {t} SET store_key = ?, data = COALESCE(JSON_MERGE_PATCH(data, ?), data), \
                 expire = ?, max_age = ?, owner = IF(?, ?, owner), updated = ? \
                 WHERE store_key = ?"
            ),
            clear_expired_key: format!("DELETE FROM {t} WHERE store_key = ? AND expire <= {NOW}"),
            delete: format!("DELETE FROM {t} WHERE store_key = ?"),
            list_owned: format!(
                "SELECT store_key, created, updated, expire FROM {t} \
                 WHERE owner = ? AND expire > {NOW}"
            ),
            delete_owned: format!(
                "DELETE FROM {t} WHERE owner = ? AND expire > {NOW} AND NOT (store_key <=> ?)"
            ),
            delete_expired: format!("DELETE FROM {t} WHERE expire <= {NOW} LIMIT ?"),
        }
    }
}

impl SqlStore<MySql> {
    /// Connects a pool of its own to `url` (`mysql://user:password@host/db`).
    pub async fn connect(url: &str) -> Result<Self, sqlx::Error> {
        let options = MySqlConnectOptions::from_str(url)?;
        let pool = super::pool_options().connect_with(options).await?;
        Ok(Self::from_pool(pool))
    }

    /// Creates the table and its indexes if they are missing, and checks
    /// that the table has the store's columns.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        sqlx::query(&self.sql.create_table)
            .execute(&self.pool)
            .await?;
        sqlx::query(&self.sql.check_table)
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Locks the live row under `key` and merges `changes` into it, moving
    /// it to `new_key`; `None` if no live row holds `key`.
    async fn update_locked(
        &self,
        connection: &mut MySqlConnection,
        key: &StoreKey,
        new_key: &StoreKey,
        changes: &ChangeSet,
    ) -> Result<Option<Expiry>, sqlx::Error> {
        let Some(row) = sqlx::query(&self.sql.lock_live)
            .bind(key.as_str())
            .fetch_optional(&mut *connection)
            .await?
        else {
            return Ok(None);
        };
        let (expire, max_age, now): (i64, Option<i64>, i64) =
            (row.try_get(0)?, row.try_get(1)?, row.try_get(2)?);
        let (now, max_age) = (super::time(now), max_age.map(super::duration));
        let expires_at = changes.expires_at_after(now, Some(super::time(expire)), max_age);
        let max_age = changes.max_age.applied_to(max_age);
        let columns = Columns::of(changes);
        sqlx::query(&self.sql.update)
            .bind(new_key.as_str())
            .bind(columns.patch)
            .bind(super::millis_since_epoch(expires_at))
            .bind(max_age.map(super::capped_millis))
            .bind(columns.owner_set)
            .bind(columns.owner)
            .bind(super::millis_since_epoch(now))
            .bind(key.as_str())
            .execute(&mut *connection)
            .await?;
        Ok(Some(Expiry {
            ttl: expires_at.duration_since(now).unwrap_or_default(),
            max_age,
        }))
    }

    async fn try_update(
        &self,
        key: &StoreKey,
        changes: &ChangeSet,
    ) -> Result<Updated, sqlx::Error> {
        let mut transaction = self.pool.begin().await?;
        let Some(expiry) = self
            .update_locked(&mut transaction, key, key, changes)
            .await?
        else {
            return Ok(Updated::Gone);
        };
        transaction.commit().await?;
        Ok(Updated::Written(expiry))
    }

    async fn try_rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
    ) -> Result<Moved, sqlx::Error> {
        let mut transaction = self.pool.begin().await?;
        let moved = match self
            .update_locked(&mut transaction, from, to, changes)
            .await
        {
            Ok(moved) => moved,
            // A failed statement leaves the transaction, and the lock, as
            // they were: free the key if its session expired, and try again.
            Err(error) if super::is_unique_violation(&error) => {
                let cleared = sqlx::query(&self.sql.clear_expired_key)
                    .bind(to.as_str())
                    .execute(&mut *transaction)
                    .await?
                    .rows_affected();
                if cleared == 0 {
                    return Ok(Moved::KeyTaken);
                }
                self.update_locked(&mut transaction, from, to, changes)
                    .await?
            }
            Err(error) => return Err(error),
        };
        let Some(expiry) = moved else {
            return Ok(Moved::Gone);
        };
        transaction.commit().await?;
        Ok(Moved::Written(expiry))
    }
}

/// Runs `attempt` again while InnoDB picks it as a deadlock victim.
async fn retrying_deadlocks<T, F, Fut>(mut attempt: F) -> Result<T, sqlx::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sqlx::Error>>,
{
    let mut retries = 0;
    loop {
        match attempt().await {
            Err(sqlx::Error::Database(error))
                if error.code().as_deref() == Some("40001") && retries < DEADLOCK_RETRIES =>
            {
                retries += 1;
            }
            outcome => return outcome,
        }
    }
}

/// A binary column that holds text.
fn text(bytes: Vec<u8>) -> Result<String, CorruptData> {
    String::from_utf8(bytes).map_err(|_| CorruptData)
}

#[async_trait]
impl SessionStore for SqlStore<MySql> {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        let row = sqlx::query(&self.sql.load)
            .bind(key.as_str())
            .fetch_optional(&self.pool)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let data: String = row.try_get(0)?;
        let owner: Option<Vec<u8>> = row.try_get(3)?;
        let owner = owner.map(text).transpose()?;
        super::record(&data, row.try_get(1)?, row.try_get(2)?, owner).map(Some)
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        let new = NewRow::of(changes);
        let inserted = sqlx::query(&self.sql.insert)
            .bind(key.as_str())
            .bind(&new.data)
            .bind(new.life_millis())
            .bind(new.max_age_millis())
            .bind(new.owner)
            .execute(&self.pool)
            .await;
        match inserted {
            Ok(_) => return Ok(Created::Written(new.expiry())),
            Err(error) if super::is_unique_violation(&error) => {}
            Err(error) => return Err(error.into()),
        }
        let replaced = sqlx::query(&self.sql.replace_expired)
            .bind(&new.data)
            .bind(new.life_millis())
            .bind(new.max_age_millis())
            .bind(new.owner)
            .bind(key.as_str())
            .execute(&self.pool)
            .await?
            .rows_affected();
        Ok(match replaced {
            0 => Created::KeyTaken,
            _ => Created::Written(new.expiry()),
        })
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        Ok(retrying_deadlocks(|| self.try_update(key, changes)).await?)
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        _whole: &Record,
    ) -> Result<Moved, BoxError> {
        Ok(retrying_deadlocks(|| self.try_rekey(from, to, changes)).await?)
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
                let key = text(row.try_get(0)?)?;
                Ok(super::owned(
                    key,
                    row.try_get(1)?,
                    row.try_get(2)?,
                    row.try_get(3)?,
                ))
            })
            .collect()
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        // Racing regenerates lock the owner's rows in another order: the
        // revocation may be a deadlock victim, and must still happen.
        let delete = || async {
            let deleted = sqlx::query(&self.sql.delete_owned)
                .bind(owner)
                .bind(keep.map(StoreKey::as_str))
                .execute(&self.pool)
                .await?;
            Ok(deleted.rows_affected())
        };
        Ok(retrying_deadlocks(delete).await?)
    }
}

#[async_trait]
impl ExpiredCleanup for SqlStore<MySql> {
    async fn delete_expired(&self) -> Result<u64, BoxError> {
        self.delete_expired_in_batches(|batch| async move {
            let deleted = sqlx::query(&self.sql.delete_expired)
                .bind(batch)
                .execute(&self.pool)
                .await?;
            Ok(deleted.rows_affected())
        })
        .await
    }
}
