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
//!   the Unix epoch: by the Redis clock, `TIME`, except that a plain update
//!   stamps `.updated` by the application's clock) and `.v` (a random token
//!   each write replaces). A hash is a session only while it has `.created`:
//!   see `update` below. The session expires by its Redis TTL (`PEXPIRE`),
//!   so no clean-up task is needed. Every write sets the TTL last, so no
//!   write leaves a hash without one, and a zero lifetime deletes the
//!   session.
//! - `{namespace}:owned:{<SHA-256 of the owner, hex>}` — a sorted set per
//!   owner of the store keys bound to it, each scored by when it was last
//!   listed there (milliseconds, Redis clock). It may hold keys of sessions
//!   that have expired or changed hands since; see [Owners](#owners). It
//!   expires [`MAX_LIFETIME`] after its last listing.
//! - `{namespace}:gone:{<store key>}` — on a Cluster, in the session's
//!   slot, a mark that a revocation ended the session there or a rekey moved
//!   it away, kept for ten minutes: see [Owners](#owners) and
//!   [Cluster](#cluster).
//!
//! # What each operation sends
//!
//! Every session operation is atomic and one round trip: a plain update is
//! a `MULTI` of native commands; every other operation one Lua function
//! over the session's own key, `FCALL <name> <numkeys> <keys...>
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
//! - `update` that changes neither the override nor the owner (what nearly
//!   every request writes): `MULTI`; `HMGET .created .max_age`; `PTTL`;
//!   `HSET` of `.v`, `.updated` and only the fields the request changed;
//!   `HDEL` of those it removed; `PEXPIRE <lifetime> GT`; `PEXPIRE
//!   <lifetime> NX`; `EXEC`. Native commands cost Redis a fraction of a
//!   function call (see `bench/PROFILING.md`), at the price of bytes: a
//!   one-field update of a 20-field session sends 562, the 53-byte key in
//!   five commands (measured by the server's `total_net_input_bytes`, in
//!   `tests/redis_store.rs`). A transaction cannot stop halfway, so:
//!   - The session is live if `.created` was there. If it had ended, the
//!     `HSET` made a hash of its own, which `NX` gives the lifetime and the
//!     store then deletes; should that delete fail, the hash expires, and
//!     until then nothing takes it for a session, since it lacks `.created`
//!     (every function checks it, and so does the load).
//!   - `GT` extends a live session and never shortens it, as the [store
//!     contract](crate::store) requires. The lifetime is the override the
//!     request saw ([`ChangeSet::seen_max_age`]) or the default. If the
//!     stored override differs (another request changed it since), a
//!     function sets the TTL that the stored one gives, unless the override
//!     changed again since: so a request that loaded "remember me" cannot
//!     undo a concurrent "forget me". Should a move of the session land in
//!     between, the moved session keeps the longer TTL until its next
//!     write that changes the override.
//! - `create`, and an `update` that changes the override or the owner: the
//!   key, a short header (the default lifetime, flags for an override, owner
//!   or removals), `.v` and only the fields the request changed, then the
//!   names of the fields it removed. Extends as the plain update does, and
//!   shortens only when it sets the override.
//! - `rekey` on a single node: one function over both keys (`RENAME`, then
//!   the update).
//! - `delete`: a function that reads the owner and deletes the hash, then
//!   a `ZREM` from the owner's set. It and the revocation's function are
//!   flagged `allow-oom`: logging out works on a Redis full to `maxmemory`.
//!
//! # Owners
//!
//! Every live session bound to an owner is listed in the owner's set, so
//! that [`delete_owned`](SessionStore::delete_owned) finds it. A write that
//! binds a session to an owner, or moves an owned session, lists it
//! *first*: on a single node in the same function call (the set's key is
//! passed along, so one call covers both), on a Cluster (the set lives in
//! another slot) by a call of its own just before. A failure can then leave
//! a listed key without a session, never an owned session unlisted. A
//! rekey that keeps the owner lists the new key under the owner the request
//! saw (its `whole` record); the function, or the Cluster's copy, checks it
//! against the session and starts over with the right owner if another
//! request changed it meanwhile.
//!
//! A key leaves a set only where that cannot unlist an owned live session:
//! once its session was deleted or moved away (nothing writes that key
//! again), or when pruning, if its session is gone or has another owner,
//! and it was listed more than ten minutes ago and not again since (no
//! write that listed it can still be on its way to it). Listing an owner's
//! sessions prunes what it finds stale; and each write that lists a session
//! also checks the two members listed longest ago (a live one goes to the
//! back of the queue), so a set stays about as large as its owner's live
//! sessions even if nobody lists it.
//!
//! [`delete_owned`](SessionStore::delete_owned) must end every session the
//! owner had when it was called, whatever rekeys race it. On a single node
//! one function call does it all: it reads the set and deletes the sessions
//! the owner holds, so no session moves meanwhile (its moves list the new
//! key as they move). On a Cluster it revokes every member of the set, many
//! calls in flight at once: one function per key deletes the session if the
//! owner holds it and marks the key gone. It then reads the set again and
//! revokes the members added since, until a pass finds none. No session
//! live when it started escapes: that session was listed, so it is revoked.
//! A rekey moving it lists the new key before it reads the old one. If it
//! listed it before the last pass read the set, that pass or an earlier one
//! revoked the new key: a copy already there is deleted, and the gone mark
//! refuses one still on its way. If it listed it later, it reads the old key
//! after the revocation deleted it, and writes nothing. A pass takes about
//! two round trips, a move four, so the passes soon catch up with a session
//! moving again and again.
//!
//! [`list_owned`](SessionStore::list_owned) reads the set and then, per
//! member, its owner, times and TTL (one pipeline on a single node, one per
//! primary on a Cluster).
//!
//! # Cluster
//!
//! Besides what [Owners](#owners) says, a Cluster differs in `rekey`: the old
//! and new keys live in different slots, and no function may touch both. The
//! store then moves a session in four round trips: it lists the new key in
//! the owner's set, reads the whole session under the old key (with its `.v`
//! version token), writes it with the request's changes merged under the new
//! key unless that is taken ([`Moved::KeyTaken`]), then deletes the old key
//! with a function that refuses if the session is gone or has changed since
//! it was read. If it is gone, the copy is deleted and the rekey reports
//! [`Moved::Gone`]; if it changed (an update landed in between), the copy is
//! deleted and the move starts over from the fresh session, so the update
//! moves with it. A failure before the last step leaves the old session
//! intact (at worst a listed copy nobody knows the key of lingers until its
//! TTL); a failure of the last step leaves the session under one key or the
//! other, listed either way.
//!
//! The client retries a command whose connection failed, which may run it
//! twice: so the copy carries a token of its own (its first `.v`) and the
//! delete leaves a gone mark naming the new key, and a retry answers
//! "written" and "deleted" as the first run did, instead of "taken" and
//! "gone", which would delete the only copy.
//!
//! The limitations: Redis has no atomicity across slots, so the move is
//! four steps, not one. An update racing a regenerate is not lost: it lands
//! before the final delete, which notices it and redoes the move, or after
//! it, and finds the session gone. But a session written without pause while
//! it moves makes the rekey fail with an error after a few attempts.
//!
//! The copy is made from what Redis holds, not from the `whole` record
//! [`SessionStore::rekey`] passes, so writes made since the request loaded
//! the session are kept.
//!
//! # Failures
//!
//! Redis errors reach the lifecycle as store errors. The connections time
//! out: a node that is down fails a request within a few seconds (sooner
//! when the connection is refused) instead of hanging, and the single-node
//! connection reconnects by itself once the server is back. What follows a
//! completed write (taking a deleted or moved key out of a set, pruning) is
//! best effort: its failure is logged, never reported, since the write it
//! follows has happened and a stale member is harmless.

mod scripts;
#[cfg(test)]
mod tests;

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bytes::Bytes;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::cluster_routing::{
    MultipleNodeRoutingInfo, ResponsePolicy, Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr,
};
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
/// How long a write may take from listing a key in its owner's set to
/// writing the session there, with a wide margin (its calls time out within
/// seconds): members listed more recently are never pruned, and gone marks
/// live this long. See [Owners](self#owners).
const IN_FLIGHT: Duration = Duration::from_secs(600);
/// How often a rekey starts over when the session keeps changing (on a
/// Cluster) or changing owners.
const REKEY_ATTEMPTS: usize = 8;
/// How often a revocation reads the owner's set again for sessions listed
/// while it ran.
const REVOKE_PASSES: usize = 8;
/// Up to how many calls over different sessions a Cluster sends one by one
/// rather than in a pipeline per primary.
const FEW_CALLS: usize = 8;

/// Sessions in Redis, a single node or a Cluster. See the
/// [module docs](self) for the key layout and what each operation sends.
#[derive(Clone)]
pub struct RedisStore {
    conn: Conn,
    namespace: Arc<str>,
    /// Tests only: send every function call twice, as the Cluster client
    /// does when a reply is lost, and keep the second reply.
    #[cfg(test)]
    replay: bool,
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

/// What a write function answers when it wrote.
struct Written {
    expiry: Expiry,
    /// The owner before the write, if the function reports it.
    owner_before: Option<String>,
    /// Members of the owner's set to check, with their scores, from the
    /// listing of the session there.
    to_check: Vec<(String, String)>,
}

/// What the single-node rekey function answers.
enum Rekeyed {
    KeyTaken,
    Gone,
    /// The session keeps an owner (or none) other than the one expected.
    OwnedBy(Option<String>),
    Written(Written),
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
            #[cfg(test)]
            replay: false,
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

    /// The Redis key of a session's gone mark, in the session's slot.
    fn gone_key(&self, key: &str) -> String {
        format!("{}:gone:{{{key}}}", self.namespace)
    }

    /// The Redis key of an owner's set.
    fn owner_key(&self, owner: &str) -> String {
        let digest = Sha256::digest(owner.as_bytes());
        let mut key = format!("{}:owned:{{", self.namespace);
        for byte in digest {
            key.push_str(&format!("{byte:02x}"));
        }
        key.push('}');
        key
    }

    fn conn(&self) -> Conn {
        self.conn.clone()
    }

    fn is_cluster(&self) -> bool {
        matches!(self.conn, Conn::Cluster(_))
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
        #[cfg(test)]
        if self.replay {
            let _: Result<Value, _> = command.query_async(&mut conn).await;
        }
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

    /// An update that changes no setting, the usual write: native commands
    /// in one `MULTI` (a function call costs Redis several times more). It
    /// extends by the override the request saw; see "What each operation
    /// sends" for how it finds the session gone or that override stale.
    async fn merge(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        check_names(changes)?;
        let hash = self.key(key.as_str());
        let life = ms_text(changes.max_age_after(changes.seen_max_age));
        let mut merge = redis::pipe();
        merge.atomic();
        merge
            .cmd("HMGET")
            .arg(&hash)
            .arg(".created")
            .arg(".max_age");
        merge.cmd("PTTL").arg(&hash);
        merge
            .cmd("HSET")
            .arg(&hash)
            .arg(".v")
            .arg(version()?)
            .arg(".updated")
            .arg(now_millis());
        for (name, value) in &changes.set {
            merge.arg(*name).arg(value.as_ref());
        }
        merge.ignore();
        if !changes.remove.is_empty() {
            merge.cmd("HDEL").arg(&hash).arg(&changes.remove).ignore();
        }
        // Never shorter: a live session keeps a longer TTL (`GT`); a hash the
        // HSET made because the session was gone gets one (`NX`).
        merge
            .cmd("PEXPIRE")
            .arg(&hash)
            .arg(&life)
            .arg("GT")
            .ignore();
        merge
            .cmd("PEXPIRE")
            .arg(&hash)
            .arg(&life)
            .arg("NX")
            .ignore();
        let ((created, stored), before): ((Option<Value>, Option<String>), i64) =
            merge.query_async(&mut self.conn()).await?;
        if created.is_none() {
            // Gone: the hash the HSET made is no session (it lacks
            // `.created`) and expires; deleting it is only tidier.
            self.discard(&hash, "what a write to an ended session left")
                .await;
            return Ok(Updated::Gone);
        }
        let max_age = stored
            .as_deref()
            .map(str::as_bytes)
            .map(millis)
            .transpose()?;
        let before = Duration::from_millis(u64::try_from(before).unwrap_or(0));
        let ttl = changes.max_age_after(max_age).max(before);
        if max_age.map(millis_of) != changes.seen_max_age.map(millis_of) {
            // Another request changed the override since this one loaded:
            // the session now has the TTL the stored override gives.
            let mut expire = fcall(&LIBRARY.expire, &[&hash]);
            expire.arg(stored.unwrap_or_default()).arg(ms_text(ttl));
            self.call::<Value>(&expire).await?;
        }
        Ok(Updated::Written(Expiry { ttl, max_age }))
    }

    /// Runs function calls over one session each, given with the session's
    /// Redis key: one pipeline on a single node; on a Cluster, more than
    /// [`FEW_CALLS`] go in one pipeline per primary (a Cluster pipeline is
    /// meant for one slot: the calls are grouped by the slot ranges `CLUSTER
    /// SLOTS` reports), and a call its node refuses (a slot moved since, the
    /// library is missing) runs again on its own, which follows the Cluster's
    /// redirections.
    async fn call_all(&self, calls: Vec<(String, Cmd)>) -> Result<Vec<Value>, RedisError> {
        if calls.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = match self.conn() {
            Conn::Cluster(connection) => connection,
            mut conn @ Conn::Single(_) => {
                let mut pipe = Pipeline::with_capacity(calls.len());
                for (_, call) in calls {
                    pipe.add_command(call);
                }
                return match pipe.query_async(&mut conn).await {
                    // Nothing ran: every call failed the same way.
                    Err(error) if lacks_library(&error) => {
                        self.load_library().await?;
                        pipe.query_async(&mut conn).await
                    }
                    result => result,
                };
            }
        };
        let mut values = vec![None; calls.len()];
        // A few calls go one by one: batching costs a round trip of its own.
        if calls.len() > FEW_CALLS {
            let slots: Vec<Value> = redis::cmd("CLUSTER")
                .arg("SLOTS")
                .query_async(&mut conn)
                .await?;
            let primaries = slot_ranges(slots);
            let mut by_primary: HashMap<&str, Vec<usize>> = HashMap::new();
            for (at, (key, _)) in calls.iter().enumerate() {
                let slot = slot_of(key);
                let primary = primaries
                    .iter()
                    .find(|(first, last, _)| (*first..=*last).contains(&slot))
                    .map_or("", |(_, _, primary)| primary.as_str());
                by_primary.entry(primary).or_default().push(at);
            }
            for batch in by_primary.values() {
                let mut pipe = Pipeline::with_capacity(batch.len());
                for &at in batch {
                    pipe.add_command(calls[at].1.clone());
                }
                let primary = Route::with_key(&calls[batch[0]].0, SlotAddr::Master);
                let route = SingleNodeRoutingInfo::SpecificNode(primary);
                // A failed batch runs again call by call, below.
                if let Ok(replies) = conn.route_pipeline(pipe, 0, batch.len(), route).await {
                    for (&at, reply) in batch.iter().zip(replies) {
                        if !matches!(reply, Value::ServerError(_)) {
                            values[at] = Some(reply);
                        }
                    }
                }
            }
        }
        let mut replies = Vec::with_capacity(calls.len());
        for (value, (_, call)) in values.into_iter().zip(&calls) {
            replies.push(match value {
                Some(value) => value,
                None => self.call(call).await?,
            });
        }
        Ok(replies)
    }

    /// Lists `key` in the set of `owner` (a Cluster write's first step) and
    /// returns the members to check.
    async fn list_under(
        &self,
        owner: &str,
        key: &StoreKey,
    ) -> Result<Vec<(String, String)>, RedisError> {
        let mut list = fcall(&LIBRARY.list, &[self.owner_key(owner)]);
        list.arg(key.as_str());
        Ok(pairs(self.call(&list).await?))
    }

    /// Runs the write `function` over `session_keys`, with the session under
    /// `key` bound to `owner` if the change set binds it to one: then the
    /// owner's set lists it first (see [Owners](self#owners)). `None` when
    /// the function found the key taken or gone.
    async fn write(
        &self,
        function: &str,
        mut session_keys: Vec<String>,
        key: &StoreKey,
        changes: &ChangeSet,
    ) -> Result<Option<Written>, BoxError> {
        let owner = match &changes.owner {
            Update::Set(Some(owner)) => Some(&**owner),
            _ => None,
        };
        let mut listed = Vec::new();
        let mut member = None;
        if let Some(owner) = owner {
            if self.is_cluster() {
                listed = self.list_under(owner, key).await?;
            } else {
                session_keys.push(self.owner_key(owner));
                member = Some(key.as_str());
            }
        }
        let call = write_call(function, &session_keys, member.as_slice(), changes)?;
        let Some(mut written) = written(self.call(&call).await?)? else {
            return Ok(None);
        };
        written.to_check.extend(listed);
        if let Some(owner) = owner {
            self.prune(owner, std::mem::take(&mut written.to_check))
                .await;
        }
        Ok(Some(written))
    }

    /// The members of an owner's set, with their scores.
    async fn members(&self, owner: &str) -> Result<Vec<(String, String)>, RedisError> {
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.owner_key(owner))
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut self.conn())
            .await?;
        Ok(pairs(members))
    }

    /// Each of `members` with its session, if that is live and the owner's.
    async fn examine(
        &self,
        owner: &str,
        members: Vec<(String, String)>,
    ) -> Result<Vec<(String, String, Option<OwnedSession>)>, BoxError> {
        let calls = members
            .iter()
            .map(|(member, _)| {
                let key = self.key(member);
                let entry = fcall(&LIBRARY.entry, &[&key]);
                (key, entry)
            })
            .collect();
        let entries = self.call_all(calls).await?;
        let mut examined = Vec::with_capacity(members.len());
        for ((member, score), entry) in members.into_iter().zip(entries) {
            let (holder, created, updated, ttl, now): (
                Option<String>,
                Option<u64>,
                Option<u64>,
                i64,
                u64,
            ) = redis::from_redis_value(entry)?;
            let session = match (holder, created, updated) {
                (Some(holder), Some(created), Some(updated)) if holder == owner && ttl > 0 => {
                    Some(OwnedSession {
                        key: StoreKey::new(member.clone()),
                        created_at: UNIX_EPOCH + Duration::from_millis(created),
                        updated_at: UNIX_EPOCH + Duration::from_millis(updated),
                        expires_at: UNIX_EPOCH + Duration::from_millis(now + ttl as u64),
                    })
                }
                _ => None,
            };
            examined.push((member, score, session));
        }
        Ok(examined)
    }

    /// Settles examined members of an owner's set (the prune function):
    /// live ones go to the back of the queue, others leave the set once that
    /// is safe. Best effort: a failure only leaves the set as it was.
    async fn settle(&self, owner: &str, examined: &[(String, String, Option<OwnedSession>)]) {
        if examined.is_empty() {
            return;
        }
        let mut prune = fcall(&LIBRARY.prune, &[self.owner_key(owner)]);
        for (member, score, session) in examined {
            let live = if session.is_some() { "1" } else { "0" };
            prune.arg(member).arg(score).arg(live);
        }
        if let Err(error) = self.call::<Value>(&prune).await {
            tracing::warn!(%error, "pruning an owner's set of sessions failed");
        }
    }

    /// Checks the members a listing returned (listed long ago), so that the
    /// set is pruned as it grows. Best effort.
    async fn prune(&self, owner: &str, to_check: Vec<(String, String)>) {
        if to_check.is_empty() {
            return;
        }
        match self.examine(owner, to_check).await {
            Ok(examined) => self.settle(owner, &examined).await,
            Err(error) => tracing::warn!(%error, "pruning an owner's set of sessions failed"),
        }
    }

    /// Deletes `key`, which holds `what`, best effort: a failure is logged,
    /// and what lingers expires by its TTL.
    async fn discard(&self, key: &str, what: &str) {
        let deleted = redis::cmd("DEL")
            .arg(key)
            .exec_async(&mut self.conn())
            .await;
        if let Err(error) = deleted {
            tracing::warn!(%error, "deleting {what} failed");
        }
    }

    /// Takes keys whose sessions were deleted or moved away out of an
    /// owner's set. Best effort: a failure only leaves stale members.
    async fn unlist(&self, owner: &str, keys: &[&str]) {
        if keys.is_empty() {
            return;
        }
        let result = redis::cmd("ZREM")
            .arg(self.owner_key(owner))
            .arg(keys)
            .exec_async(&mut self.conn())
            .await;
        if let Err(error) = result {
            tracing::warn!(%error, "removing ended sessions from their owner's set failed");
        }
    }

    /// What follows a move: `from` leaves its old owner's set unless the
    /// move took it out already, and the new owner's set is pruned.
    async fn after_move(
        &self,
        from: &StoreKey,
        old_owner: Option<&str>,
        new_owner: Option<&str>,
        unlisted_by_move: bool,
        to_check: Vec<(String, String)>,
    ) {
        if let Some(old_owner) = old_owner {
            if !(unlisted_by_move && Some(old_owner) == new_owner) {
                self.unlist(old_owner, &[from.as_str()]).await;
            }
        }
        if let Some(new_owner) = new_owner {
            self.prune(new_owner, to_check).await;
        }
    }

    /// A single-node rekey: one call moves the session and lists the new key
    /// under the owner it keeps, which the call checks.
    async fn rekey_in_one_call(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        whole: &Record,
    ) -> Result<Moved, BoxError> {
        let mut owner = owner_after(changes, whole.owner.as_deref());
        for _ in 0..REKEY_ATTEMPTS {
            let mut keys = vec![self.key(from.as_str()), self.key(to.as_str())];
            let mut listing = Vec::new();
            if let Some(owner) = &owner {
                keys.push(self.owner_key(owner));
                listing = vec![owner.as_str(), to.as_str(), from.as_str()];
            }
            let call = write_call(&LIBRARY.rekey, &keys, &listing, changes)?;
            match rekeyed(self.call(&call).await?)? {
                Rekeyed::KeyTaken => return Ok(Moved::KeyTaken),
                Rekeyed::Gone => return Ok(Moved::Gone),
                Rekeyed::OwnedBy(actual) => owner = owner_after(changes, actual.as_deref()),
                Rekeyed::Written(written) => {
                    let old_owner = written.owner_before.as_deref();
                    self.after_move(from, old_owner, owner.as_deref(), true, written.to_check)
                        .await;
                    return Ok(Moved::Written(written.expiry));
                }
            }
        }
        Err(
            format!("the session kept changing owners during {REKEY_ATTEMPTS} attempts to move it")
                .into(),
        )
    }

    /// A Cluster rekey: list the new key, copy, then delete the original if
    /// it did not change. See [Cluster](self#cluster).
    async fn rekey_across_slots(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        whole: &Record,
    ) -> Result<Moved, BoxError> {
        let (from_key, to_key) = (self.key(from.as_str()), self.key(to.as_str()));
        let (from_gone, to_gone) = (self.gone_key(from.as_str()), self.gone_key(to.as_str()));
        // The owner the request saw; checked against the session below.
        let mut owner = owner_after(changes, whole.owner.as_deref());
        for _ in 0..REKEY_ATTEMPTS {
            // Listed before `from` is read: a revocation that misses `to`
            // has revoked `from` before this read (see "Owners").
            let to_check = match &owner {
                Some(owner) => self.list_under(owner, to).await?,
                None => Vec::new(),
            };
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
            if !hash.contains_key(b".created".as_slice()) {
                return Ok(Moved::Gone);
            }
            let copied = hash.remove(b".v".as_slice()).unwrap_or_default();
            hash.remove(b".updated".as_slice());
            let old_owner = hash
                .get(b".owner".as_slice())
                .map(|owner| text(owner))
                .transpose()?;
            let new_owner = owner_after(changes, old_owner.as_deref());
            if new_owner != owner {
                // Another request changed the owner: list `to` under the
                // right one, then read again.
                owner = new_owner;
                continue;
            }
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
            // The copy's first version, unique to this attempt, so that a
            // retried put recognizes the copy as its own.
            let token = version()?;
            let mut put = fcall(&LIBRARY.put, &[&to_key, &to_gone]);
            put.arg(ms_text(ttl)).arg(&token);
            for (name, value) in &hash {
                put.arg(name.as_slice()).arg(value.as_slice());
            }
            match self.call::<i64>(&put).await? {
                0 => return Ok(Moved::KeyTaken),
                // Revoked while the copy was on its way: the session is
                // being revoked too.
                -1 => return Ok(Moved::Gone),
                _ => {}
            }
            let mut take = fcall(&LIBRARY.take, &[&from_key, &from_gone]);
            take.arg(copied.as_slice()).arg(to.as_str());
            // A take that failed may have run, its reply lost: asked again,
            // it answers as it did. Failing again, it leaves the copy, which
            // may be the only one left.
            let taken: i64 = match self.call(&take).await {
                Ok(taken) => taken,
                Err(_) => self.call(&take).await?,
            };
            if taken == 2 {
                self.after_move(
                    from,
                    old_owner.as_deref(),
                    owner.as_deref(),
                    false,
                    to_check,
                )
                .await;
                return Ok(Moved::Written(Expiry { ttl, max_age }));
            }
            // A copy of a stale version, or of a session that is gone: never
            // handed out. Should deleting it fail, it lingers, listed, until
            // its TTL.
            self.discard(&to_key, "an unused copy of a moved session")
                .await;
            if taken == 0 {
                return Ok(Moved::Gone);
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
        let (mut live, mut max_age, mut owner) = (false, None, None);
        let fields = Fields::packed(hash, |name, value| {
            match name {
                b".created" => live = true,
                b".max_age" => max_age = Some(millis(value)?),
                b".owner" => owner = Some(Arc::from(text(value)?)),
                _ => {}
            }
            Ok(())
        })?;
        if !live {
            // What a merge into a gone session left: never a session.
            return Ok(None);
        }
        Ok(Some(Record {
            fields: Arc::new(fields),
            ttl,
            max_age,
            owner,
        }))
    }

    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        let keys = vec![self.key(key.as_str())];
        Ok(
            match self.write(&LIBRARY.create, keys, key, changes).await? {
                Some(written) => Created::Written(written.expiry),
                None => Created::KeyTaken,
            },
        )
    }

    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        if changes.max_age == Update::Keep && changes.owner == Update::Keep {
            return self.merge(key, changes).await;
        }
        // A new owner lists the session; the old owner's set keeps it until
        // pruned: taking it out here could unlist it, should a concurrent
        // request bind it back to that owner.
        let keys = vec![self.key(key.as_str())];
        Ok(
            match self.write(&LIBRARY.update, keys, key, changes).await? {
                Some(written) => Updated::Written(written.expiry),
                None => Updated::Gone,
            },
        )
    }

    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        changes: &ChangeSet,
        whole: &Record,
    ) -> Result<Moved, BoxError> {
        if self.is_cluster() {
            self.rekey_across_slots(from, to, changes, whole).await
        } else {
            self.rekey_in_one_call(from, to, changes, whole).await
        }
    }

    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        let owner: Option<String> = self
            .call(&fcall(&LIBRARY.delete, &[self.key(key.as_str())]))
            .await?;
        if let Some(owner) = owner {
            self.unlist(&owner, &[key.as_str()]).await;
        }
        Ok(())
    }

    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        let members = self.members(owner).await?;
        let (listed, stale): (Vec<_>, Vec<_>) = self
            .examine(owner, members)
            .await?
            .into_iter()
            .partition(|(_, _, session)| session.is_some());
        self.settle(owner, &stale).await;
        Ok(listed
            .into_iter()
            .filter_map(|(_, _, session)| session)
            .collect())
    }

    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        if !self.is_cluster() {
            let mut revoke = fcall(&LIBRARY.revoke_all, &[self.owner_key(owner)]);
            revoke
                .arg(owner)
                .arg(format!("{}:", self.namespace))
                .arg(keep.map_or("", StoreKey::as_str));
            return Ok(self.call(&revoke).await?);
        }
        // Passes until one finds nothing new: see "Owners" in the module
        // docs for why no session escapes.
        let mut seen: HashSet<String> = keep
            .map(|keep| keep.as_str().to_owned())
            .into_iter()
            .collect();
        let mut deleted = Vec::new();
        for _ in 0..REVOKE_PASSES {
            let fresh: Vec<String> = self
                .members(owner)
                .await?
                .into_iter()
                .map(|(member, _)| member)
                .filter(|member| !seen.contains(member))
                .collect();
            if fresh.is_empty() {
                // Deleted and marked gone: nothing writes there again.
                let names: Vec<&str> = deleted.iter().map(String::as_str).collect();
                self.unlist(owner, &names).await;
                return Ok(names.len() as u64);
            }
            let calls = fresh
                .iter()
                .map(|member| {
                    let key = self.key(member);
                    let mut revoke = fcall(&LIBRARY.revoke, &[&key, &self.gone_key(member)]);
                    revoke.arg(owner);
                    (key, revoke)
                })
                .collect();
            let outcomes = self.call_all(calls).await?;
            for (member, outcome) in fresh.into_iter().zip(outcomes) {
                if redis::from_redis_value::<i64>(outcome)? == 1 {
                    deleted.push(member.clone());
                }
                seen.insert(member);
            }
        }
        Err(format!("the owner's sessions kept changing during {REVOKE_PASSES} passes").into())
    }
}

/// The slot ranges of a Cluster's primaries, each with the primary's
/// address, from a `CLUSTER SLOTS` reply.
fn slot_ranges(reply: Vec<Value>) -> Vec<(u16, u16, String)> {
    let mut ranges = Vec::with_capacity(reply.len());
    for range in reply {
        let Value::Array(range) = range else { continue };
        if let [Value::Int(first), Value::Int(last), Value::Array(primary), ..] = range.as_slice() {
            if let [host, port, ..] = primary.as_slice() {
                let host: String = redis::from_redis_value_ref(host).unwrap_or_default();
                let port: u16 = redis::from_redis_value_ref(port).unwrap_or_default();
                let (first, last) = (*first as u16, *last as u16);
                ranges.push((first, last, format!("{host}:{port}")));
            }
        }
    }
    ranges
}

/// The Cluster slot of a Redis key: CRC16 (XMODEM) of its hash tag, if it
/// has one, else of the whole key, modulo 16384.
fn slot_of(key: &str) -> u16 {
    let key = key.as_bytes();
    let tag = key
        .iter()
        .position(|&byte| byte == b'{')
        .and_then(|open| {
            let rest = &key[open + 1..];
            let close = rest.iter().position(|&byte| byte == b'}')?;
            (close > 0).then(|| &rest[..close])
        })
        .unwrap_or(key);
    let mut crc: u16 = 0;
    for &byte in tag {
        crc ^= u16::from(byte) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 == 0 {
                crc << 1
            } else {
                (crc << 1) ^ 0x1021
            };
        }
    }
    crc % 16384
}

/// `FCALL function numkeys keys...`, for the arguments to follow.
fn fcall<K: redis::ToRedisArgs>(function: &str, keys: &[K]) -> Cmd {
    let mut call = redis::cmd("FCALL");
    call.arg(function).arg(keys.len()).arg(keys);
    call
}

/// The owner a session has after `changes`, given the one it has.
fn owner_after(changes: &ChangeSet, current: Option<&str>) -> Option<String> {
    match &changes.owner {
        Update::Keep => current.map(str::to_owned),
        Update::Set(owner) => owner.as_deref().map(str::to_owned),
    }
}

/// Names and scores from a flat `WITHSCORES` reply.
fn pairs(flat: Vec<String>) -> Vec<(String, String)> {
    let mut flat = flat.into_iter();
    let mut pairs = Vec::with_capacity(flat.len() / 2);
    while let (Some(name), Some(score)) = (flat.next(), flat.next()) {
        pairs.push((name, score));
    }
    pairs
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

/// The function call writing `changes` over `keys`: the header, the
/// `listing` arguments (see [`scripts`]), then the owner, the fields to set
/// and the fields to remove.
fn write_call(
    function: &str,
    keys: &[String],
    listing: &[&str],
    changes: &ChangeSet,
) -> Result<Cmd, BoxError> {
    check_names(changes)?;
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
    invocation.arg(header).arg(listing);
    if let Update::Set(Some(owner)) = &changes.owner {
        invocation.arg(&**owner);
    }
    invocation.arg(".v").arg(version()?);
    for (name, value) in &changes.set {
        invocation.arg(*name).arg(value.as_ref());
    }
    for name in &changes.remove {
        invocation.arg(*name);
    }
    Ok(invocation)
}

/// Refuses fields the hash could not tell from its metadata.
fn check_names(changes: &ChangeSet) -> Result<(), BoxError> {
    match changes
        .set
        .iter()
        .map(|(name, _)| name)
        .chain(&changes.remove)
        .find(|name| name.starts_with('.'))
    {
        Some(name) => Err(format!("the Redis store cannot hold a field named {name:?}").into()),
        None => Ok(()),
    }
}

/// A write's version token (`.v`): random, so that no two writes share one
/// (a Cluster move compares it to see whether the session changed).
fn version() -> Result<String, getrandom::Error> {
    Ok((getrandom::u64()? >> 2).to_string())
}

/// Milliseconds since the Unix epoch by this machine's clock.
fn now_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis_of)
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

/// What a write function answers: `{ttl, override, owner before, members
/// to check}`, or nil when it found the key taken or gone (`None`).
fn written(value: Value) -> Result<Option<Written>, BoxError> {
    let Value::Array(mut items) = value else {
        return Ok(None);
    };
    items.resize(4, Value::Nil);
    let mut items = items.into_iter();
    let mut next = || items.next().unwrap_or_default();
    let ttl: u64 = redis::from_redis_value(next())?;
    let max_age: Option<Vec<u8>> = redis::from_redis_value(next())?;
    let owner_before: Option<String> = redis::from_redis_value(next())?;
    let to_check: Option<Vec<String>> = redis::from_redis_value(next())?;
    let expiry = Expiry {
        ttl: Duration::from_millis(ttl),
        max_age: max_age.as_deref().map(millis).transpose()?,
    };
    Ok(Some(Written {
        expiry,
        owner_before,
        to_check: pairs(to_check.unwrap_or_default()),
    }))
}

/// What the single-node rekey function answers (see [`scripts`]).
fn rekeyed(value: Value) -> Result<Rekeyed, BoxError> {
    match value {
        Value::Int(0) => Ok(Rekeyed::KeyTaken),
        Value::Array(items) if items.first() == Some(&Value::BulkString(b"owner".to_vec())) => {
            let owner = items.into_iter().nth(1).unwrap_or_default();
            Ok(Rekeyed::OwnedBy(redis::from_redis_value(owner)?))
        }
        value => Ok(match written(value)? {
            Some(written) => Rekeyed::Written(written),
            None => Rekeyed::Gone,
        }),
    }
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
