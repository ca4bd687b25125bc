//! The Lua scripts the Redis store runs, one per operation. Each touches only
//! the keys it is given (one session, or two on a single node's rekey), so
//! it runs on a Cluster too.

use std::sync::LazyLock;

use redis::Script;

use crate::store::MAX_LIFETIME;

// The Lua below hard-codes MAX_LIFETIME in milliseconds.
const _: () = assert!(MAX_LIFETIME.as_millis() == 34_560_000_000);

/// Helpers every writing script shares.
///
/// `ARGV[1]` of a write is its header: the default lifetime (decimal seconds,
/// or milliseconds followed by `m`), then flags: `a<lifetime>` sets the
/// max-age override, `A` clears it, `o` sets the owner (in `ARGV[2]`), `O`
/// clears it, `r<n>` says the last `n` arguments are fields to remove. The
/// arguments in between are the fields to set, name then value.
const PRELUDE: &str = r#"
local MAX = 34560000000
local function ms(digits, unit)
  if unit == 'm' then return tonumber(digits), digits end
  return tonumber(digits) * 1000, digits .. '000'
end
local function now()
  local t = redis.call('TIME')
  return string.format('%d', tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000))
end
-- Merges the change set in ARGV into the hash at `key`. `current` is the
-- PTTL of a live session, nil for a new one. Returns {ttl, override or
-- false, owner before or false}; the owner only if it changes or `report`.
local function apply(key, current, report)
  local d, du, flags = string.match(ARGV[1], '^(%d+)(m?)(.*)$')
  local i = 2
  local before = false
  local owner_set = string.find(flags, 'o', 1, true)
  if owner_set or report or string.find(flags, 'O', 1, true) then
    before = redis.call('HGET', key, '.owner')
  end
  if owner_set then
    redis.call('HSET', key, '.owner', ARGV[i])
    i = i + 1
  elseif string.find(flags, 'O', 1, true) then
    redis.call('HDEL', key, '.owner')
  end
  local removed = tonumber(string.match(flags, 'r(%d+)') or '0')
  local last = #ARGV - removed
  if last >= i then redis.call('HSET', key, unpack(ARGV, i, last)) end
  if removed > 0 then redis.call('HDEL', key, unpack(ARGV, last + 1)) end
  local a, au = string.match(flags, 'a(%d+)(m?)')
  local set_age = a ~= nil or string.find(flags, 'A', 1, true) ~= nil
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
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  local t = now()
  if current then
    redis.call('HSET', key, '.updated', t)
  else
    redis.call('HSET', key, '.created', t, '.updated', t)
  end
  redis.call('HINCRBY', key, '.v', 1)
  return {ttl, age_text, before}
end
"#;

/// `KEYS[1]`: the session. `{pttl, HGETALL}`, or nil if missing.
const LOAD: &str = r#"
local ttl = redis.call('PTTL', KEYS[1])
if ttl == -2 then return false end
return {ttl, redis.call('HGETALL', KEYS[1])}
"#;

/// `KEYS[1]`: the session. Nil if taken, else what `apply` returns.
const CREATE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
return apply(KEYS[1], nil, false)
"#;

/// `KEYS[1]`: the session. Nil if gone, else what `apply` returns.
const UPDATE: &str = r#"
local current = redis.call('PTTL', KEYS[1])
if current == -2 then return false end
return apply(KEYS[1], math.max(current, 0), false)
"#;

/// `KEYS[1]`: from, `KEYS[2]`: to (one node). 0 if `to` is taken, nil if
/// `from` is gone, else what `apply` returns, the owner before always.
const REKEY: &str = r#"
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
local current = redis.call('PTTL', KEYS[1])
if current == -2 then return false end
redis.call('RENAME', KEYS[1], KEYS[2])
return apply(KEYS[2], math.max(current, 0), true)
"#;

/// `KEYS[1]`: the session. Deletes it; returns its owner or nil.
const DELETE: &str = r#"
local owner = redis.call('HGET', KEYS[1], '.owner')
redis.call('DEL', KEYS[1])
return owner
"#;

/// Cluster rekey, step 2. `KEYS[1]`: to; `ARGV[1]`: ttl in ms, then
/// name/value pairs (fields and metadata). Nil if taken, else 1.
const PUT: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 1 then return false end
redis.call('HSET', KEYS[1], '.updated', now(), '.v', 1, unpack(ARGV, 2))
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
"#;

/// Cluster rekey, step 3. `KEYS[1]`: from; `ARGV[1]`: the version copied.
/// 0 if gone, 1 if changed since (left alone), 2 if deleted.
const TAKE: &str = r#"
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if (redis.call('HGET', KEYS[1], '.v') or '') ~= ARGV[1] then return 1 end
redis.call('DEL', KEYS[1])
return 2
"#;

/// One entry of an owner's list. `KEYS[1]`: the session.
/// `{owner, created, updated, pttl, now}`.
const ENTRY: &str = r#"
local m = redis.call('HMGET', KEYS[1], '.owner', '.created', '.updated')
return {m[1], m[2], m[3], redis.call('PTTL', KEYS[1]), now()}
"#;

/// `KEYS[1]`: the session; `ARGV[1]`: the owner. Deletes the session if the
/// owner holds it: 1 if deleted, else 0.
const DELETE_IF_OWNED: &str = r#"
if redis.call('HGET', KEYS[1], '.owner') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
return 1
"#;

/// Every script, compiled (hashed) once per process.
pub(super) struct Scripts {
    pub(super) load: Script,
    pub(super) create: Script,
    pub(super) update: Script,
    pub(super) rekey: Script,
    pub(super) delete: Script,
    pub(super) put: Script,
    pub(super) take: Script,
    pub(super) entry: Script,
    pub(super) delete_if_owned: Script,
}

pub(super) static SCRIPTS: LazyLock<Scripts> = LazyLock::new(|| {
    let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}{body}"));
    Scripts {
        load: Script::new(LOAD),
        create: with_prelude(CREATE),
        update: with_prelude(UPDATE),
        rekey: with_prelude(REKEY),
        delete: Script::new(DELETE),
        put: with_prelude(PUT),
        take: Script::new(TAKE),
        entry: with_prelude(ENTRY),
        delete_if_owned: Script::new(DELETE_IF_OWNED),
    }
});
