//! The Redis store: sessions in Redis, a single node or a Redis Cluster
//! (feature `redis`).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use session::store::redis::RedisStore;
//! use session::{SessionConfig, SessionManager};
//!
//! let store = RedisStore::connect("redis://127.0.0.1:6379")
//!     .await?
//!     .namespace("shop");
//! let manager = SessionManager::new(store, SessionConfig::default())?;
//!
//! // Or a Cluster, given any of its nodes:
//! let nodes = ["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"];
//! let cluster = RedisStore::connect_cluster(&nodes).await?;
//! # let _ = (manager, cluster);
//! # Ok(()) }
//! ```
//!
//! # Key layout
//!
//! - `{namespace}:{<store key>}` — one hash per session (the namespace is
//!   `session` unless [`RedisStore::namespace`] says otherwise). The braces
//!   are a Cluster hash tag, so the whole session lives in one slot. One
//!   hash field per session field, named exactly as the stored key, holding
//!   the encoded value. Metadata sits in the same hash under names no field
//!   can have (stored keys never start with a dot): `.max_age` (the override,
//!   in milliseconds), `.owner`, `.created` and `.updated` (milliseconds since
//!   the Unix epoch by the Redis clock, `TIME`) and `.v` (a write counter).
//!   The session expires by its Redis TTL (`PEXPIRE`), so no clean-up task is
//!   needed.
//! - `{namespace}:owner:{<SHA-256 of the owner, hex>}` — a set per owner of
//!   the store keys bound to it. It may hold keys of sessions that have
//!   expired or changed hands since: listing checks every member and prunes
//!   those. It expires [`MAX_LIFETIME`] after its last addition, when every
//!   session in it has.
//!
//! # What each operation sends
//!
//! Every session operation is one Lua function over the session's own key,
//! so it is atomic and one round trip: `FCALL <name> <numkeys> <keys...>
//! <args...>`. The functions form one Redis Functions library (Redis 7),
//! loaded with `FUNCTION LOAD REPLACE` (on a Cluster, on every primary) the
//! first time a call fails with `ERR Function not found`, which is then
//! retried once; so a server restarted without persistence, or a new Cluster
//! node, gets the library again by itself. A function's name is two letters
//! and a tag of four hex digits for its version (`ld` and the tag for a load), so
//! that two versions of the store sharing a server do not replace each
//! other's functions (each keeps its own library, `session_<tag>`).
//!
//! - `load`: the key only, with `FCALL_RO` (the function is flagged
//!   `no-writes`). It answers `PTTL` and the `HGETALL` packed into one
//!   MessagePack string by Redis's `cmsgpack`: parsing two RESP replies per
//!   field took more of the application's CPU than anything else in a load,
//!   and packing costs Redis no more than returning the hash as a table.
//!   The record keeps that string as its [`Fields`], which find a field in
//!   it when a request reads one: a load builds no map, so loading a wide
//!   session costs the application about what a narrow one does.
//! - `create`, `update`: the key, a short header (the default lifetime,
//!   flags for an override, owner or removals) and only the fields the
//!   request changed, then the names of the fields it removed. An update
//!   extends the session to `now + lifetime` but never shortens it unless it
//!   sets the override, as the [store contract](crate::store) requires. A
//!   one-field update of a 20-field session sends 121 bytes (field `f07`,
//!   value `3`): 94 of them are `FCALL`, the function's name, the key count
//!   and the 53-byte key; a load sends the same with `FCALL_RO`, 97 bytes
//!   (measured by the server's `total_net_input_bytes`, in
//!   `tests/redis_store.rs`).
//! - `rekey` on a single node: one function over both keys (`RENAME`, then
//!   the update).
//! - `delete`: a function that reads the owner and deletes the hash.
//!
//! Binding, unbinding, deleting and moving an owned session then update the
//! owner's set (`SADD`, `SREM`) with separate commands, since the set lives
//! in another slot. [`list_owned`](SessionStore::list_owned) reads the set
//! and then, per member, its owner, times and TTL (pipelined on a single
//! node); [`delete_owned`](SessionStore::delete_owned) deletes each member
//! with a function that checks its owner first.
//!
//! # Cluster
//!
//! Everything above works the same on a Cluster, except `rekey`: the old and
//! new keys live in different slots, and no function may touch both. The store
//! then moves a session in three round trips: it reads the whole session
//! under the old key (with its `.v` write counter), writes it with the
//! request's changes merged under the new key unless that is taken
//! ([`Moved::KeyTaken`]), then deletes the old key with a function that
//! refuses if the session is gone or has changed since it was read. If it
//! is gone, the copy is deleted and the rekey reports [`Moved::Gone`]; if it
//! changed (an update landed in between), the copy is deleted and the move
//! starts over from the fresh session, so the update moves with it. A
//! failure at any point leaves the old session intact (at worst a copy
//! nobody knows the key of lingers until its TTL).
//!
//! The limitations: Redis has no atomicity across slots, so the move is
//! three steps, not one. An update racing a regenerate is not lost: it lands
//! before the final delete, which notices it and redoes the move, or after
//! it, and finds the session gone. But a session written without pause while
//! it moves makes the rekey fail with an error after a few attempts, and the
//! owner sets are updated after the move, so an owner's list may briefly
//! miss the moved session.
//!
//! The `whole` record [`SessionStore::rekey`] passes is not used: the copy
//! is made from what Redis holds, so writes made since the request loaded
//! the session are kept.
//!
//! # Failures
//!
//! Redis errors reach the lifecycle as store errors. The connections time
//! out: a node that is down fails a request within a few seconds (sooner
//! when the connection is refused) instead of hanging, and the single-node
//! connection reconnects by itself once the server is back.

mod scripts;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{MultipleNodeRoutingInfo, ResponsePolicy, RoutingInfo};
use redis::{Cmd, FromRedisValue, Pipeline, RedisError, RedisFuture, Value};
use sha2::{Digest, Sha256};

use super::{
    BoxError, ChangeSet, Created, Expiry, Fields, Moved, OwnedSession, Record, SessionStore,
    Update, Updated, MAX_LIFETIME,
};
use crate::StoreKey;
use scripts::LIBRARY;

/// How long connecting to a node may take.
const CONNECTION_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a node may take to answer.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often a Cluster rekey starts over when the session keeps changing.
const REKEY_ATTEMPTS: usize = 8;

/// Sessions in Redis, a single node or a Cluster. See the
/// [module docs](self) for the key layout and what each operation sends.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    namespace: Arc<str>,
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mode = match self.conn {
            Conn::Single(_) => "single node",
            Conn::Cluster(_) => "cluster",
        };
        f.debug_struct("RedisStore")
            .field("mode", &mode)
            .field("namespace", &self.namespace)
            .finish()
    }
}

impl RedisStore {
    /// Connects to a single Redis node, e.g. `redis://127.0.0.1:6379/0`,
    /// through a connection that reconnects by itself.
    pub async fn connect(url: &str) -> Result<Self, RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECTION_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(3)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(1));
        let manager = ConnectionManager::new_with_config(client, config).await?;
        Ok(Self::with(Conn::Single(manager)))
    }

    /// Connects to a Redis Cluster through any of its nodes.
    pub async fn connect_cluster(urls: &[&str]) -> Result<Self, RedisError> {
        let client = ClusterClientBuilder::new(urls.to_vec())
            .connection_timeout(CONNECTION_TIMEOUT)
            .response_timeout(RESPONSE_TIMEOUT)
            .retries(3)
            .build()?;
        let connection = client.get_async_connection().await?;
        Ok(Self::with(Conn::Cluster(connection)))
    }

    fn with(conn: Conn) -> Self {
        Self {
            conn,
            namespace: Arc::from("session"),
        }
    }

    /// The prefix of every key the store writes (default `session`), so that
    /// several applications can share a server.
    pub fn namespace(mut self, namespace: impl Into<String>) -> Self {
        self.namespace = Arc::from(namespace.into());
        self
    }

    /// The Redis key of a session.
    fn key(&self, key: &str) -> String {
        format!("{}:{{{key}}}", self.namespace)
    }

    /// The Redis key of an owner's set.
    fn owner_key(&self, owner: &str) -> String {
        let digest = Sha256::digest(owner.as_bytes());
        let mut key = format!("{}:owner:{{", self.namespace);
        for byte in digest {
            key.push_str(&format!("{byte:02x}"));
        }
        key.push('}');
        key
    }

    fn conn(&self) -> Conn {
        self.conn.clone()
    }

    /// Moves `key` between owner sets after a write changed its owner.
    async fn reindex(
        &self,
        key: &StoreKey,
        old: Option<&str>,
        new: Option<&str>,
    ) -> Result<(), RedisError> {
        self.reindex_all(&[(key, old, new)]).await
    }

    /// [`reindex`](Self::reindex) for several keys, in one pipeline on a
    /// single node.
    async fn reindex_all(
        &self,
        moves: &[(&StoreKey, Option<&str>, Option<&str>)],
    ) -> Result<(), RedisError> {
        let mut commands = Vec::new();
        for &(key, old, new) in moves.iter().filter(|(_, old, new)| old != new) {
            if let Some(old) = old {
                let set = self.owner_key(old);
                commands.push(redis::cmd("SREM").arg(set).arg(key.as_str()).clone());
            }
            if let Some(new) = new {
                let set = self.owner_key(new);
                commands.push(redis::cmd("SADD").arg(&set).arg(key.as_str()).clone());
                let max = MAX_LIFETIME.as_millis() as u64;
                commands.push(redis::cmd("PEXPIRE").arg(&set).arg(max).clone());
            }
        }
        if commands.is_empty() {
            return Ok(());
        }
        self.send_all(commands).await
    }

    /// Sends commands that may live in different slots: one pipeline on a
    /// single node, one by one on a Cluster.
    async fn send_all(&self, commands: Vec<Cmd>) -> Result<(), RedisError> {
        let mut conn = self.conn();
        match conn {
            Conn::Single(_) => {
                let mut pipe = Pipeline::with_capacity(commands.len());
                for command in commands {
                    pipe.add_command(command).ignore();
                }
                pipe.exec_async(&mut conn).await
            }
            Conn::Cluster(_) => {
                for command in commands {
                    command.exec_async(&mut conn).await?;
                }
                Ok(())
            }
        }
    }

    /// The session under `key` with its TTL, from the load function
    /// (`FCALL_RO`: it writes nothing, and Redis may say so).
    /// The hash comes packed: a MessagePack array of strings, names (the
    /// metadata's included) and values in turn.
    async fn snapshot(&self, key: &str) -> Result<Option<(Duration, Bytes)>, BoxError> {
        let mut load = redis::cmd("FCALL_RO");
        load.arg(&LIBRARY.load).arg(1).arg(key);
        let reply: Option<(i64, Vec<u8>)> = self.call(&load).await?;
        let Some((ttl, packed)) = reply else {
            return Ok(None);
        };
        let ttl = Duration::from_millis(u64::try_from(ttl).unwrap_or(0));
        Ok(Some((ttl, Bytes::from(packed))))
    }

    /// Runs `command` (an `FCALL`); if the server lacks the library, loads
    /// it and runs `command` once more.
    async fn call<T: FromRedisValue>(&self, command: &Cmd) -> Result<T, RedisError> {
        let mut conn = self.conn();
        match command.query_async(&mut conn).await {
            Err(error) if lacks_library(&error) => {
                self.load_library().await?;
                command.query_async(&mut conn).await
            }
            result => result,
        }
    }

    /// Loads the functions library (`FUNCTION LOAD REPLACE`): on a Cluster,
    /// on every primary, since a call may reach any of them.
    async fn load_library(&self) -> Result<(), RedisError> {
        let mut load = redis::cmd("FUNCTION");
        load.arg("LOAD").arg("REPLACE").arg(&LIBRARY.code);
        match self.conn() {
            mut conn @ Conn::Single(_) => load.exec_async(&mut conn).await,
            Conn::Cluster(mut connection) => {
                let all = RoutingInfo::MultiNode((
                    MultipleNodeRoutingInfo::AllMasters,
                    Some(ResponsePolicy::AllSucceeded),
                ));
                connection.route_command(load, all).await.map(drop)
            }
        }
    }

    /// Calls `function` once per key (with `arg`, if any), pipelined on a
    /// single node.
    async fn per_key(
        &self,
        function: &str,
        keys: &[String],
        arg: Option<&str>,
    ) -> Result<Vec<Value>, RedisError> {
        let calls: Vec<_> = keys
            .iter()
            .map(|key| {
                let mut call = fcall(function, [self.key(key)]);
                if let Some(arg) = arg {
                    call.arg(arg);
                }
                call
            })
            .collect();
        match self.conn() {
            Conn::Single(_) => {
                if keys.is_empty() {
                    return Ok(Vec::new());
                }
                let mut pipe = redis::pipe();
                for call in calls {
                    pipe.add_command(call);
                }
                let mut conn = self.conn();
                match pipe.query_async(&mut conn).await {
                    // Nothing ran: every call failed the same way.
                    Err(error) if lacks_library(&error) => {
                        self.load_library().await?;
                        pipe.query_async(&mut conn).await
                    }
                    result => result,
                }
            }
            Conn::Cluster(_) => {
                let mut values = Vec::with_capacity(keys.len());
                for call in &calls {
                    values.push(self.call(call).await?);
                }
                Ok(values)
            }
        }
    }

    /// The members of an owner's set.
    async fn members(&self, owner: &str) -> Result<Vec<String>, RedisError> {
        redis::cmd("SMEMBERS")
            .arg(self.owner_key(owner))
            .query_async(&mut self.conn())
            .await
    }

    /// A Cluster rekey: copy, then delete the original if it did not change.
    async fn rekey_across_slots(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
    ) -> Result<Moved, BoxError> {
        let (from_key, to_key) = (self.key(from.as_str()), self.key(to.as_str()));
        let mut conn = self.conn();
        for _ in 0..REKEY_ATTEMPTS {
            let Some((current, packed)) = self.snapshot(&from_key).await? else {
                return Ok(Moved::Gone);
            };
            // Every entry of the hash by name, metadata included.
            let mut hash = HashMap::new();
            let fields = Fields::packed(packed, |name, value| {
                hash.insert(name.to_vec(), value.to_vec());
                Ok(())
            })?;
            for (name, value) in fields.iter() {
                hash.insert(name.as_bytes().to_vec(), value.to_vec());
            }
            let version = hash.remove(b".v".as_slice()).unwrap_or_default();
            hash.remove(b".updated".as_slice());
            let old_owner = hash
                .get(b".owner".as_slice())
                .map(|owner| text(owner))
                .transpose()?;
            let old_age = hash
                .get(b".max_age".as_slice())
                .map(|age| millis(age))
                .transpose()?;
            for (name, value) in &changes.set {
                hash.insert(name.as_bytes().to_vec(), value.to_vec());
            }
            for name in &changes.remove {
                hash.remove(name.as_bytes());
            }
            let owner = changes.owner.applied_to(old_owner.clone().map(Arc::from));
            match &owner {
                Some(owner) => hash.insert(b".owner".to_vec(), owner.as_bytes().to_vec()),
                None => hash.remove(b".owner".as_slice()),
            };
            let max_age = changes.max_age.applied_to(old_age);
            match max_age {
                Some(age) => hash.insert(b".max_age".to_vec(), ms_text(age).into_bytes()),
                None => hash.remove(b".max_age".as_slice()),
            };
            let life = changes.max_age_after(old_age);
            let ttl = match changes.max_age {
                Update::Keep => life.max(current),
                Update::Set(_) => life,
            };
            let mut put = fcall(&LIBRARY.put, [&to_key]);
            put.arg(ms_text(ttl));
            for (name, value) in &hash {
                put.arg(name.as_slice()).arg(value.as_slice());
            }
            let written: Value = self.call(&put).await?;
            if written == Value::Nil {
                return Ok(Moved::KeyTaken);
            }
            let mut take = fcall(&LIBRARY.take, [&from_key]);
            take.arg(version.as_slice());
            let taken = self.call(&take).await;
            match taken {
                Ok(2) => {
                    let moves = [
                        (from, old_owner.as_deref(), None),
                        (to, None, owner.as_deref()),
                    ];
                    self.reindex_all(&moves).await?;
                    return Ok(Moved::Written(Expiry { ttl, max_age }));
                }
                Ok(gone_or_changed) => {
                    redis::cmd("DEL").arg(&to_key).exec_async(&mut conn).await?;
                    if gone_or_changed == 0 {
                        return Ok(Moved::Gone);
                    }
                }
                Err(error) => {
                    // The original is intact; the copy would only linger.
                    let _ = redis::cmd("DEL").arg(&to_key).exec_async(&mut conn).await;
                    return Err(error.into());
                }
            }
        }
        Err(format!("the session kept changing during {REKEY_ATTEMPTS} attempts to move it").into())
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        let Some((ttl, hash)) = self.snapshot(&self.key(key.as_str())).await? else {
            return Ok(None);
        };
        let (mut max_age, mut owner) = (None, None);
        let fields = Fields::packed(hash, |name, value| {
            match name {
                b".max_age" => max_age = Some(millis(value)?),
                b".owner" => owner = Some(Arc::from(text(value)?)),
                _ => {}
            }
            Ok(())
        })?;
        Ok(Some(Record {
            fields: Arc::new(fields),
            ttl,
            max_age,
            owner,
        }))
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        let create = write_call(&LIBRARY.create, [self.key(key.as_str())], changes)?;
        let value: Value = self.call(&create).await?;
        let Some((expiry, _)) = written(value)? else {
            return Ok(Created::KeyTaken);
        };
        if let Update::Set(Some(owner)) = &changes.owner {
            self.reindex(key, None, Some(owner)).await?;
        }
        Ok(Created::Written(expiry))
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        let update = write_call(&LIBRARY.update, [self.key(key.as_str())], changes)?;
        let value: Value = self.call(&update).await?;
        let Some((expiry, old_owner)) = written(value)? else {
            return Ok(Updated::Gone);
        };
        if let Update::Set(owner) = &changes.owner {
            self.reindex(key, old_owner.as_deref(), owner.as_deref())
                .await?;
        }
        Ok(Updated::Written(expiry))
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        _whole: &Record,
    ) -> Result<Moved, BoxError> {
        if let Conn::Cluster(_) = self.conn {
            return self.rekey_across_slots(from, to, changes).await;
        }
        let keys = [self.key(from.as_str()), self.key(to.as_str())];
        let value: Value = self
            .call(&write_call(&LIBRARY.rekey, keys, changes)?)
            .await?;
        if value == Value::Int(0) {
            return Ok(Moved::KeyTaken);
        }
        let Some((expiry, old_owner)) = written(value)? else {
            return Ok(Moved::Gone);
        };
        let new_owner = changes.owner.applied_to(old_owner.clone().map(Arc::from));
        let moves = [
            (from, old_owner.as_deref(), None),
            (to, None, new_owner.as_deref()),
        ];
        self.reindex_all(&moves).await?;
        Ok(Moved::Written(expiry))
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        let owner: Option<String> = self
            .call(&fcall(&LIBRARY.delete, [self.key(key.as_str())]))
            .await?;
        self.reindex(key, owner.as_deref(), None).await?;
        Ok(())
    }

    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        let members = self.members(owner).await?;
        let entries = self.per_key(&LIBRARY.entry, &members, None).await?;
        let (mut listed, mut stale) = (Vec::new(), Vec::new());
        for (member, entry) in members.into_iter().zip(entries) {
            let (holder, created, updated, ttl, now): (
                Option<String>,
                Option<u64>,
                Option<u64>,
                i64,
                u64,
            ) = redis::from_redis_value(entry)?;
            match (holder, created, updated) {
                (Some(holder), Some(created), Some(updated)) if holder == owner && ttl > 0 => {
                    listed.push(OwnedSession {
                        key: StoreKey::new(member),
                        created_at: UNIX_EPOCH + Duration::from_millis(created),
                        updated_at: UNIX_EPOCH + Duration::from_millis(updated),
                        expires_at: UNIX_EPOCH + Duration::from_millis(now + ttl as u64),
                    });
                }
                _ => stale.push(member),
            }
        }
        if !stale.is_empty() {
            redis::cmd("SREM")
                .arg(self.owner_key(owner))
                .arg(&stale)
                .exec_async(&mut self.conn())
                .await?;
        }
        Ok(listed)
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        let members: Vec<String> = self
            .members(owner)
            .await?
            .into_iter()
            .filter(|member| keep.is_none_or(|keep| keep.as_str() != member))
            .collect();
        let outcomes = self
            .per_key(&LIBRARY.delete_if_owned, &members, Some(owner))
            .await?;
        let mut deleted = 0;
        for outcome in outcomes {
            deleted += redis::from_redis_value::<u64>(outcome)?;
        }
        if !members.is_empty() {
            redis::cmd("SREM")
                .arg(self.owner_key(owner))
                .arg(&members)
                .exec_async(&mut self.conn())
                .await?;
        }
        Ok(deleted)
    }
}

/// `FCALL function numkeys keys...`, for the arguments to follow.
fn fcall<K: redis::ToRedisArgs, const N: usize>(function: &str, keys: [K; N]) -> Cmd {
    let mut call = redis::cmd("FCALL");
    call.arg(function).arg(N).arg(&keys);
    call
}

/// Whether `error` says the function called does not exist (the server
/// lost the library: restarted without persistence, or a new Cluster node).
fn lacks_library(error: &RedisError) -> bool {
    error.clone().into_server_errors().is_some_and(|errors| {
        errors.iter().any(|(_, error)| {
            error.code() == "ERR"
                && error
                    .details()
                    .is_some_and(|detail| detail.starts_with("Function not found"))
        })
    })
}

/// The function call writing `changes`: the header, then the owner, the
/// fields to set and the fields to remove (see [`scripts`]).
fn write_call<const N: usize>(
    function: &str,
    keys: [String; N],
    changes: &ChangeSet,
) -> Result<Cmd, BoxError> {
    if let Some(name) = changes
        .set
        .iter()
        .map(|(name, _)| name)
        .chain(&changes.remove)
        .find(|name| name.starts_with('.'))
    {
        return Err(format!("the Redis store cannot hold a field named {name:?}").into());
    }
    let mut header = lifetime_text(changes.default_max_age.min(MAX_LIFETIME));
    match changes.max_age {
        Update::Keep => {}
        Update::Set(Some(age)) => {
            header.push('a');
            header.push_str(&lifetime_text(age));
        }
        Update::Set(None) => header.push('A'),
    }
    match changes.owner {
        Update::Keep => {}
        Update::Set(Some(_)) => header.push('o'),
        Update::Set(None) => header.push('O'),
    }
    if !changes.remove.is_empty() {
        header.push_str(&format!("r{}", changes.remove.len()));
    }
    let mut invocation = fcall(function, keys);
    invocation.arg(header);
    if let Update::Set(Some(owner)) = &changes.owner {
        invocation.arg(&**owner);
    }
    for (name, value) in &changes.set {
        invocation.arg(*name).arg(value.as_ref());
    }
    for name in &changes.remove {
        invocation.arg(*name);
    }
    Ok(invocation)
}

/// A lifetime as the functions read it: whole seconds, or milliseconds
/// followed by `m`.
fn lifetime_text(lifetime: Duration) -> String {
    let ms = millis_of(lifetime);
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{ms}m")
    }
}

fn millis_of(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

fn ms_text(duration: Duration) -> String {
    millis_of(duration).to_string()
}

/// The `{ttl, override, owner before}` a write answers, or `None` when it
/// found the key taken or gone.
fn written(value: Value) -> Result<Option<(Expiry, Option<String>)>, BoxError> {
    let Value::Array(mut items) = value else {
        return Ok(None);
    };
    items.resize(3, Value::Nil);
    let mut items = items.into_iter();
    let ttl: u64 = redis::from_redis_value(items.next().unwrap_or_default())?;
    let max_age: Option<Vec<u8>> = redis::from_redis_value(items.next().unwrap_or_default())?;
    let owner: Option<String> = redis::from_redis_value(items.next().unwrap_or_default())?;
    let expiry = Expiry {
        ttl: Duration::from_millis(ttl),
        max_age: max_age.as_deref().map(millis).transpose()?,
    };
    Ok(Some((expiry, owner)))
}

fn millis(value: &[u8]) -> Result<Duration, BoxError> {
    let text = std::str::from_utf8(value).map_err(|_| "a stored max-age is not a number")?;
    let ms: u64 = text
        .parse()
        .map_err(|_| "a stored max-age is not a number")?;
    Ok(Duration::from_millis(ms))
}

fn text(value: &[u8]) -> Result<String, BoxError> {
    String::from_utf8(value.to_vec()).map_err(|_| "a stored owner is not UTF-8".into())
}

/// The connection: to a single node, or to a Cluster.
#[derive(Clone)]
enum Conn {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Self::Single(manager) => Box::pin(async move {
                match manager.req_packed_command(cmd).await {
                    // A refused connection sent nothing: the manager has just
                    // started reconnecting, and a server that is back answers.
                    Err(error) if error.is_connection_refusal() => {
                        manager.req_packed_command(cmd).await
                    }
                    result => result,
                }
            }),
            Self::Cluster(connection) => connection.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Self::Single(manager) => Box::pin(async move {
                match manager.req_packed_commands(pipeline, offset, count).await {
                    Err(error) if error.is_connection_refusal() => {
                        manager.req_packed_commands(pipeline, offset, count).await
                    }
                    result => result,
                }
            }),
            Self::Cluster(connection) => connection.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Self::Single(manager) => manager.get_db(),
            Self::Cluster(connection) => connection.get_db(),
        }
    }
}
