use std::time::SystemTime;

use async_trait::async_trait;
use dashmap::DashMap;

use super::{ChangeSet, Record, SessionStore};
use crate::{Error, StoreKey};

/// The embedded store: sessions in a sharded concurrent map in this process.
///
/// Expired sessions are never returned; to free their memory too, run
/// [`spawn_cleanup`](crate::store::spawn_cleanup) (or
/// [`SessionManager::spawn_cleanup`](crate::SessionManager::spawn_cleanup)).
/// Sessions do not survive a restart and are not shared between processes.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: DashMap<StoreKey, Record>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions the store holds, expired ones not yet cleaned included.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether the store holds no session.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }
}

#[async_trait]
impl SessionStore for MemoryStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, Error> {
        let now = SystemTime::now();
        if let Some(record) = self.records.get(key) {
            if !record.is_expired(now) {
                return Ok(Some(record.clone()));
            }
        }
        self.records
            .remove_if(key, |_, record| record.is_expired(now));
        Ok(None)
    }

    async fn commit(&self, key: &StoreKey, changes: &ChangeSet) -> Result<(), Error> {
        let now = SystemTime::now();
        self.records
            .entry(key.clone())
            .and_modify(|record| {
                // An expired record's fields must not come back to life.
                if record.is_expired(now) {
                    *record = Record::from_changes(changes);
                } else {
                    record.apply(changes);
                }
            })
            .or_insert_with(|| Record::from_changes(changes));
        Ok(())
    }

    async fn touch(&self, key: &StoreKey, expires_at: SystemTime) -> Result<(), Error> {
        if let Some(mut record) = self.records.get_mut(key) {
            record.expires_at = expires_at;
        }
        Ok(())
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), Error> {
        self.records.remove(key);
        Ok(())
    }

    async fn change_key(&self, from: &StoreKey, to: &StoreKey) -> Result<(), Error> {
        if let Some((_, record)) = self.records.remove(from) {
            self.records.insert(to.clone(), record);
        }
        Ok(())
    }

    async fn delete_expired(&self) -> Result<u64, Error> {
        let now = SystemTime::now();
        let mut deleted = 0;
        self.records.retain(|_, record| {
            let keep = !record.is_expired(now);
            deleted += u64::from(!keep);
            keep
        });
        Ok(deleted)
    }
}
