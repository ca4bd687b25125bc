//! The Lua functions the Redis store runs, one per operation, in one
//! Redis Functions library. Each touches only the keys it is given, all in
//! one slot (a session and its gone mark, or an owner's set), so it runs on
//! a Cluster too; except those only a single node runs, which may touch
//! several slots: the rekey (two sessions and an owner's set), writes that
//! list a session in its owner's set, and the revocation of all of an
//! owner's sessions.

use std::sync::LazyLock;

use redis::Script;

use super::IN_FLIGHT;
use crate::store::MAX_LIFETIME;

// The Lua below hard-codes MAX_LIFETIME and IN_FLIGHT in milliseconds.
const _: () = assert!(MAX_LIFETIME.as_millis() == 34_560_000_000);
const _: () = assert!(IN_FLIGHT.as_millis() == 600_000);

/// Helpers every script shares.
///
/// `args[1]` of a write is its header: the default lifetime (decimal seconds,
/// or milliseconds followed by `m`), then flags: `a<lifetime>` sets the
/// max-age override, `A` clears it, `o` sets the owner (in the first argument
/// after the header and the listing's, see `CREATE`), `O` clears it, `r<n>`
/// says the last `n` arguments are fields to remove. The arguments in
/// between are the fields to set, name then value, the first of them `.v`
/// with the write's version token.
const PRELUDE: &str = r#"
local MAX = 34560000000
local IN_FLIGHT = 600000
local function ms(digits, unit)
  if unit == 'm' then return tonumber(digits), digits end
  return tonumber(digits) * 1000, digits .. '000'
end
local function now()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
-- Lists `member` in the owner's sorted set `set`, scored by the time, and
-- returns up to two members (name, score, name, score) listed more than
-- IN_FLIGHT ago, for the writer to check: the set is pruned as it grows.
-- The set lives MAX past its latest listing.
local function list(set, member)
  local t = now()
  redis.call('ZADD', set, t, member)
  redis.call('PEXPIRE', set, MAX)
  local old = string.format('%d', tonumber(t) - IN_FLIGHT)
  return redis.call('ZRANGE', set, '-inf', old, 'BYSCORE', 'LIMIT', 0, 2, 'WITHSCORES')
end
-- Merges the change set in `args` (the header, then from args[i] the owner
-- if set, the fields to set and those to remove) into the hash at `key`.
-- `current` is the PTTL of a live session, nil for a new one. Returns {ttl,
-- override or false, owner before or false}; the owner only if it changes
-- or `report`.
local function apply(args, i, key, current, report)
  local d, du, flags = string.match(args[1], '^(%d+)(m?)(.*)$')
  -- Most writes only set fields: no flag to look for.
  local plain = flags == ''
  local before = false
  local owner_set = not plain and string.find(flags, 'o', 1, true)
  local owner_clear = not plain and string.find(flags, 'O', 1, true)
  if owner_set or owner_clear or report then
    before = redis.call('HGET', key, '.owner')
  end
  if owner_set then
    redis.call('HSET', key, '.owner', args[i])
    i = i + 1
  elseif owner_clear then
    redis.call('HDEL', key, '.owner')
  end
  local removed = plain and 0 or tonumber(string.match(flags, 'r(%d+)') or '0')
  local last = #args - removed
  local t = now()
  -- The fields and the write's time in one command.
  if current then
    redis.call('HSET', key, '.updated', t, unpack(args, i, last))
  else
    redis.call('HSET', key, '.created', t, '.updated', t, unpack(args, i, last))
  end
  if removed > 0 then redis.call('HDEL', key, unpack(args, last + 1)) end
  local a, au = nil, nil
  if not plain then a, au = string.match(flags, 'a(%d+)(m?)') end
  local set_age = a ~= nil or (not plain and string.find(flags, 'A', 1, true) ~= nil)
  local age, age_text = nil, false
  if a then
    age, age_text = ms(a, au)
    redis.call('HSET', key, '.max_age', age_text)
  elseif set_age then
    redis.call('HDEL', key, '.max_age')
  else
    age_text = redis.call('HGET', key, '.max_age')
    if age_text then age = tonumber(age_text) end
  end
  local life = math.min(age or ms(d, du), MAX)
  local ttl = life
  if current and not set_age and current > life then ttl = current end
  -- The expiry last: a zero lifetime deletes the hash ("expire now" means
  -- gone), and no command after it may write the hash back without a TTL.
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  return {ttl, age_text, before}
end
"#;

/// `keys[1]`: the session. `{pttl, HGETALL as MessagePack}`, or nil if
/// missing. One packed string instead of two replies per field: the
/// client's RESP parser took a tenth of a request at 20 fields, while
/// `cmsgpack` (Redis's C encoder) costs Redis about what returning the
/// table would.
const LOAD: &str = r#"
local ttl = redis.call('PTTL', keys[1])
if ttl == -2 then return false end
return {ttl, cmsgpack.pack(redis.call('HGETALL', keys[1]))}
"#;

/// `keys[1]`: the session; on a single node, for a session created owned,
/// `keys[2]`: the owner's set, which lists it first (`args[2]`: its name
/// there), so that a failure cannot leave it owned and unlisted. Nil if
/// taken, else what `apply` returns, and what `list` returned if it listed.
const CREATE: &str = r#"
if redis.call('EXISTS', keys[1]) == 1 then return false end
local check = keys[2] and list(keys[2], args[2])
local written = apply(args, keys[2] and 3 or 2, keys[1], nil, false)
written[4] = check
return written
"#;

/// `keys[1]`: the session, and `keys[2]` as for `CREATE`, for an update
/// that binds it to an owner. Nil if gone (a hash without `.created` is
/// none: see `merge` in the store), else as `CREATE`.
const UPDATE: &str = r#"
if redis.call('HEXISTS', keys[1], '.created') == 0 then return false end
local current = redis.call('PTTL', keys[1])
local check = keys[2] and list(keys[2], args[2])
local written = apply(args, keys[2] and 3 or 2, keys[1], math.max(current, 0), false)
written[4] = check
return written
"#;

/// `keys[1]`: from, `keys[2]`: to (one node); if the moved session is to be
/// owned, `keys[3]`: its owner's set, `args[2]` the owner, `args[3]` and
/// `args[4]` the names of to and from there. 0 if `to` is taken, nil if
/// `from` is gone, `{'owner', its owner}` if the session keeps an owner
/// other than the one expected (nothing written: the caller retries with
/// that owner's set), else as `CREATE`, the owner before always.
const REKEY: &str = r#"
if redis.call('EXISTS', keys[2]) == 1 then return 0 end
if redis.call('HEXISTS', keys[1], '.created') == 0 then return false end
local current = redis.call('PTTL', keys[1])
local set = keys[3]
if not string.find(args[1], '[oO]') then
  local owner = redis.call('HGET', keys[1], '.owner')
  if owner ~= (set and args[2] or false) then return {'owner', owner} end
end
local check = set and list(set, args[3])
if set then redis.call('ZREM', set, args[4]) end
redis.call('RENAME', keys[1], keys[2])
local written = apply(args, set and 5 or 2, keys[2], math.max(current, 0), true)
written[4] = check
return written
"#;

/// `keys[1]`: a session an update merged into while it saw an override
/// other than the stored one; `args[1]`: the stored one it read (empty for
/// none), `args[2]`: the TTL that override gives, in ms. Sets that TTL,
/// unless the session is gone or its override changed again since (the
/// write that changed it set the TTL itself).
const EXPIRE: &str = r#"
local m = redis.call('HMGET', keys[1], '.created', '.max_age')
if m[1] and (m[2] or '') == args[1] then redis.call('PEXPIRE', keys[1], args[2]) end
return 0
"#;

/// `keys[1]`: the session. Deletes it; returns its owner or nil.
const DELETE: &str = r#"
local owner = redis.call('HGET', keys[1], '.owner')
redis.call('DEL', keys[1])
return owner
"#;

/// `keys[1]`: an owner's set; `args[1]`: a session's name. Lists it there,
/// as a write on a Cluster does before writing. What `list` returns.
const LIST: &str = r#"
return list(keys[1], args[1])
"#;

/// Cluster rekey, the copy. `keys[1]`: to, `keys[2]`: its gone mark;
/// `args[1]`: ttl in ms, `args[2]`: this copy's token (its first `.v`),
/// then name/value pairs (fields and metadata). 1 if written, or written
/// before by this same call (a client's retry after a lost reply); 0 if
/// taken; -1 if a revocation marked `to` gone while the copy was on its way.
const PUT: &str = r#"
if redis.call('EXISTS', keys[2]) == 1 then return -1 end
if redis.call('EXISTS', keys[1]) == 1 then
  if redis.call('HGET', keys[1], '.v') == args[2] then return 1 end
  return 0
end
redis.call('HSET', keys[1], '.updated', now(), '.v', args[2], unpack(args, 3))
redis.call('PEXPIRE', keys[1], args[1])
return 1
"#;

/// Cluster rekey, the end. `keys[1]`: from, `keys[2]`: its gone mark;
/// `args[1]`: the version copied, `args[2]`: to. 2 if deleted, now or by
/// this same call before (the mark names `to`: a client's retry after a lost
/// reply); 1 if changed since (left alone); 0 if gone.
const TAKE: &str = r#"
local m = redis.call('HMGET', keys[1], '.created', '.v')
if not m[1] then
  if redis.call('GET', keys[2]) == 'to ' .. args[2] then return 2 end
  return 0
end
if m[2] ~= args[1] then return 1 end
redis.call('DEL', keys[1])
redis.call('SET', keys[2], 'to ' .. args[2], 'PX', IN_FLIGHT)
return 2
"#;

/// One entry of an owner's list. `keys[1]`: the session.
/// `{owner, created, updated, pttl, now}`.
const ENTRY: &str = r#"
local m = redis.call('HMGET', keys[1], '.owner', '.created', '.updated')
return {m[1], m[2], m[3], redis.call('PTTL', keys[1]), now()}
"#;

/// Cluster: `keys[1]`: a session listed in the owner's set, `keys[2]`: its gone
/// mark; `args[1]`: the owner. Unless another owner holds the session,
/// deletes it and marks the key gone, so that a Cluster rekey still on its
/// way there cannot write it (`PUT` refuses). 1 if deleted, 0 if there was
/// none, -1 if another owner (or none) holds it.
const REVOKE: &str = r#"
local live = redis.call('EXISTS', keys[1]) == 1
if live and redis.call('HGET', keys[1], '.owner') ~= args[1] then return -1 end
redis.call('SET', keys[2], 'revoked', 'PX', IN_FLIGHT)
if not live then return 0 end
redis.call('DEL', keys[1])
return 1
"#;

/// Single node: revokes every session in the owner's set (`keys[1]`) in one
/// call, so that none can move out of reach meanwhile. `args[1]`: the
/// owner, `args[2]`: the prefix of session keys (`{namespace}:`), `args[3]`:
/// the member to keep, or empty. It builds the sessions' keys itself, which
/// a single node allows (a Cluster would refuse keys in other slots).
/// Returns how many it deleted.
const REVOKE_ALL: &str = r#"
local deleted = 0
for _, member in ipairs(redis.call('ZRANGE', keys[1], 0, -1)) do
  local key = args[2] .. '{' .. member .. '}'
  if member ~= args[3] and redis.call('HGET', key, '.owner') == args[1] then
    redis.call('DEL', key)
    redis.call('ZREM', keys[1], member)
    deleted = deleted + 1
  end
end
return deleted
"#;

/// `keys[1]`: an owner's set; `args`: triples of a member, its score when
/// read, and `1` if its session was then live and the owner's, else `0`.
/// Each member whose score is unchanged (else it was listed again since):
/// a live one moves to the back of the queue (scored now), another is
/// removed if listed more than IN_FLIGHT ago (else a write may still be on
/// its way to it).
const PRUNE: &str = r#"
local t = now()
local old = tonumber(t) - IN_FLIGHT
for j = 1, #args, 3 do
  local score = tonumber(redis.call('ZSCORE', keys[1], args[j]))
  if score and score == tonumber(args[j + 1]) then
    if args[j + 2] == '1' then
      redis.call('ZADD', keys[1], 'XX', t, args[j])
    elseif score <= old then
      redis.call('ZREM', keys[1], args[j])
    end
  end
end
return 0
"#;

/// Reads only: Redis may run it with `FCALL_RO`, on a full server too.
const READS: &str = "{'no-writes'}";
/// Writes, and may grow memory: refused when Redis is at `maxmemory`.
const WRITES: &str = "{}";
/// Deletes, and writes that never grow memory: must work on a full Redis
/// (`noeviction`), or nobody could log out there.
const DELETES: &str = "{'allow-oom'}";

/// Every function: its name before the version tag, its flags, and its
/// body.
const FUNCTIONS: [(&str, &str, &str); 13] = [
    ("ld", READS, LOAD),
    ("cr", WRITES, CREATE),
    ("up", WRITES, UPDATE),
    ("rk", WRITES, REKEY),
    ("ex", DELETES, EXPIRE),
    ("dl", DELETES, DELETE),
    ("ls", WRITES, LIST),
    ("pt", WRITES, PUT),
    ("tk", WRITES, TAKE),
    ("en", READS, ENTRY),
    ("rv", DELETES, REVOKE),
    ("ra", DELETES, REVOKE_ALL),
    ("pr", WRITES, PRUNE),
];

/// The library, and the name of each function in it.
pub(super) struct Library {
    /// What `FUNCTION LOAD REPLACE` loads.
    pub(super) code: String,
    pub(super) load: String,
    pub(super) create: String,
    pub(super) update: String,
    pub(super) rekey: String,
    pub(super) expire: String,
    pub(super) delete: String,
    pub(super) list: String,
    pub(super) put: String,
    pub(super) take: String,
    pub(super) entry: String,
    pub(super) revoke: String,
    pub(super) revoke_all: String,
    pub(super) prune: String,
}

/// Built once per process. Function names are global on a server, so each
/// carries a version tag (the first hex digits of the SHA-1 of the Lua): two
/// versions of the store, or another application's two-letter functions,
/// never replace each other's.
pub(super) static LIBRARY: LazyLock<Library> = LazyLock::new(|| {
    let mut lua = String::from(PRELUDE);
    for (name, flags, body) in FUNCTIONS {
        lua.push_str(&format!("-- {name} {flags}\n{body}"));
    }
    let tag = Script::new(&lua).get_hash()[..4].to_owned();
    let mut code = format!("#!lua name=session_{tag}\n{PRELUDE}");
    let mut names = Vec::with_capacity(FUNCTIONS.len());
    for (name, flags, body) in FUNCTIONS {
        let name = format!("{name}{tag}");
        code.push_str(&format!(
            "redis.register_function{{function_name='{name}', \
             callback=function(keys, args){body}end, flags={flags}}}\n"
        ));
        names.push(name);
    }
    let mut names = names.into_iter();
    let mut next = || names.next().unwrap_or_default();
    Library {
        code,
        load: next(),
        create: next(),
        update: next(),
        rekey: next(),
        expire: next(),
        delete: next(),
        list: next(),
        put: next(),
        take: next(),
        entry: next(),
        revoke: next(),
        revoke_all: next(),
        prune: next(),
    }
});
