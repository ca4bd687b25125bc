//! The Lua functions the Redis store runs, one per operation, in one
//! Redis Functions library. Each touches only the keys it is given (one
//! session, or two on a single node's rekey), so it runs on a Cluster too.

use std::sync::LazyLock;

use redis::Script;

use crate::store::MAX_LIFETIME;

// The Lua below hard-codes MAX_LIFETIME in milliseconds.
const _: () = assert!(MAX_LIFETIME.as_millis() == 34_560_000_000);

/// Helpers every writing script shares.
///
/// `args[1]` of a write is its header: the default lifetime (decimal seconds,
/// or milliseconds followed by `m`), then flags: `a<lifetime>` sets the
/// max-age override, `A` clears it, `o` sets the owner (in `args[2]`), `O`
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
-- Merges the change set in `args` into the hash at `key`. `current` is the
-- PTTL of a live session, nil for a new one. Returns {ttl, override or
-- false, owner before or false}; the owner only if it changes or `report`.
local function apply(args, key, current, report)
  local d, du, flags = string.match(args[1], '^(%d+)(m?)(.*)$')
  -- Most writes only set fields: no flag to look for.
  local plain = flags == ''
  local i = 2
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
  redis.call('PEXPIRE', key, string.format('%d', ttl))
  redis.call('HINCRBY', key, '.v', 1)
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

/// `keys[1]`: the session. Nil if taken, else what `apply` returns.
const CREATE: &str = r#"
if redis.call('EXISTS', keys[1]) == 1 then return false end
return apply(args, keys[1], nil, false)
"#;

/// `keys[1]`: the session. Nil if gone, else what `apply` returns.
const UPDATE: &str = r#"
local current = redis.call('PTTL', keys[1])
if current == -2 then return false end
return apply(args, keys[1], math.max(current, 0), false)
"#;

/// `keys[1]`: from, `keys[2]`: to (one node). 0 if `to` is taken, nil if
/// `from` is gone, else what `apply` returns, the owner before always.
const REKEY: &str = r#"
if redis.call('EXISTS', keys[2]) == 1 then return 0 end
local current = redis.call('PTTL', keys[1])
if current == -2 then return false end
redis.call('RENAME', keys[1], keys[2])
return apply(args, keys[2], math.max(current, 0), true)
"#;

/// `keys[1]`: the session. Deletes it; returns its owner or nil.
const DELETE: &str = r#"
local owner = redis.call('HGET', keys[1], '.owner')
redis.call('DEL', keys[1])
return owner
"#;

/// Cluster rekey, step 2. `keys[1]`: to; `args[1]`: ttl in ms, then
/// name/value pairs (fields and metadata). Nil if taken, else 1.
const PUT: &str = r#"
if redis.call('EXISTS', keys[1]) == 1 then return false end
redis.call('HSET', keys[1], '.updated', now(), '.v', 1, unpack(args, 2))
redis.call('PEXPIRE', keys[1], args[1])
return 1
"#;

/// Cluster rekey, step 3. `keys[1]`: from; `args[1]`: the version copied.
/// 0 if gone, 1 if changed since (left alone), 2 if deleted.
const TAKE: &str = r#"
if redis.call('EXISTS', keys[1]) == 0 then return 0 end
if (redis.call('HGET', keys[1], '.v') or '') ~= args[1] then return 1 end
redis.call('DEL', keys[1])
return 2
"#;

/// One entry of an owner's list. `keys[1]`: the session.
/// `{owner, created, updated, pttl, now}`.
const ENTRY: &str = r#"
local m = redis.call('HMGET', keys[1], '.owner', '.created', '.updated')
return {m[1], m[2], m[3], redis.call('PTTL', keys[1]), now()}
"#;

/// `keys[1]`: the session; `args[1]`: the owner. Deletes the session if the
/// owner holds it: 1 if deleted, else 0.
const DELETE_IF_OWNED: &str = r#"
if redis.call('HGET', keys[1], '.owner') ~= args[1] then return 0 end
redis.call('DEL', keys[1])
return 1
"#;

/// Every function: its name before the version tag, whether it only reads,
/// and its body.
const FUNCTIONS: [(&str, bool, &str); 9] = [
    ("ld", true, LOAD),
    ("cr", false, CREATE),
    ("up", false, UPDATE),
    ("rk", false, REKEY),
    ("dl", false, DELETE),
    ("pt", false, PUT),
    ("tk", false, TAKE),
    ("en", true, ENTRY),
    ("dx", false, DELETE_IF_OWNED),
];

/// The library, and the name of each function in it.
pub(super) struct Library {
    /// What `FUNCTION LOAD REPLACE` loads.
    pub(super) code: String,
    pub(super) load: String,
    pub(super) create: String,
    pub(super) update: String,
    pub(super) rekey: String,
    pub(super) delete: String,
    pub(super) put: String,
    pub(super) take: String,
    pub(super) entry: String,
    pub(super) delete_if_owned: String,
}

/// Built once per process. Function names are global on a server, so each
/// carries a version tag (the first hex digits of the SHA-1 of the Lua): two
/// versions of the store, or another application's two-letter functions,
/// never replace each other's.
pub(super) static LIBRARY: LazyLock<Library> = LazyLock::new(|| {
    let mut lua = String::from(PRELUDE);
    for (name, _, body) in FUNCTIONS {
        lua.push_str(&format!("-- {name}\n{body}"));
    }
    let tag = Script::new(&lua).get_hash()[..4].to_owned();
    let mut code = format!("#!lua name=session_{tag}\n{PRELUDE}");
    let mut names = Vec::with_capacity(FUNCTIONS.len());
    for (name, read_only, body) in FUNCTIONS {
        let name = format!("{name}{tag}");
        let flags = if read_only { "{'no-writes'}" } else { "{}" };
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
        delete: next(),
        put: next(),
        take: next(),
        entry: next(),
        delete_if_owned: next(),
    }
});
