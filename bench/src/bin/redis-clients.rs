//! What one session load costs the application, by Redis client and by
//! command: the measurement behind the Redis store's choice of client
//! (`bench/PROFILING.md`). Each mode loads one session hash (`FIELDS`
//! fields, default 20, plus the store's three metadata entries) `N` times
//! (default 4000) from the Redis at `STORE_URL`, on a current-thread
//! runtime; run it under callgrind at two values of `N` and divide the
//! difference by theirs:
//!
//! ```text
//! N=2000 valgrind --tool=callgrind target/release/redis-clients MODE
//! ```
//!
//! Modes: `packed` (redis-rs, a Lua script answering `PTTL` and the hash
//! packed by `cmsgpack` into one string, as the store's load does),
//! `native` (redis-rs, a pipeline of `HGETALL` and `PTTL`), `fred` (the
//! same pipeline through fred, into values), `fred-raw` (fred, `HGETALL`
//! alone, its raw frame kept), `get` and `fred-get` (one `GET` of a
//! 468-byte string: what tower-sessions' load sends, and each client's cost
//! per command).

use redis::AsyncCommands as _;
use tower_sessions_redis_store::fred::prelude::{Builder, ClientLike as _, Config};
use tower_sessions_redis_store::fred::types::{ClusterHash, CustomCommand, Resp3Frame, Value};

type BoxError = Box<dyn std::error::Error>;

const KEY: &str = "redis-clients:{session}";
const STRING_KEY: &str = "redis-clients:string";

fn env_number(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(value) => Ok(value.parse()?),
        Err(_) => Ok(default),
    }
}

fn main() -> Result<(), BoxError> {
    let mode = std::env::args()
        .nth(1)
        .ok_or("usage: redis-clients MODE (see the crate docs)")?;
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run(&mode))
}

async fn run(mode: &str) -> Result<(), BoxError> {
    let url = std::env::var("STORE_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into());
    let (loads, fields) = (env_number("N", 4000)?, env_number("FIELDS", 20)?);
    let mut conn = redis::Client::open(url.as_str())?
        .get_multiplexed_async_connection()
        .await?;
    let mut seed: Vec<(String, String)> = (0..fields)
        .map(|i| (format!("f{i:02}"), (1000 + i).to_string()))
        .collect();
    seed.extend([".created", ".updated", ".v"].map(|name| (name.into(), "1765000000000".into())));
    let () = conn.hset_multiple(KEY, &seed).await?;
    let () = conn.pexpire(KEY, 86_400_000).await?;
    let () = conn.set(STRING_KEY, "x".repeat(468)).await?;

    let fred = || async {
        let client = Builder::from_config(Config::from_url(&url)?).build()?;
        client.init().await?;
        Ok::<_, BoxError>(client)
    };
    let command =
        |name: &'static str| CustomCommand::new_static(name, ClusterHash::FirstKey, false);
    // Every mode adds up what it read, so that nothing is optimized away.
    let mut read = 0usize;
    match mode {
        "packed" => {
            let mut load = redis::cmd("EVAL");
            load.arg(
                "return {redis.call('PTTL', KEYS[1]), \
                 cmsgpack.pack(redis.call('HGETALL', KEYS[1]))}",
            )
            .arg(1)
            .arg(KEY);
            for _ in 0..loads {
                let (_ttl, packed): (i64, Vec<u8>) = load.query_async(&mut conn).await?;
                read += packed.len();
            }
        }
        "native" => {
            let mut load = redis::pipe();
            load.cmd("HGETALL").arg(KEY).cmd("PTTL").arg(KEY);
            for _ in 0..loads {
                let (hash, _ttl): (redis::Value, i64) = load.query_async(&mut conn).await?;
                if let redis::Value::Array(entries) = hash {
                    read += entries.len();
                }
            }
        }
        "fred" => {
            let client = fred().await?;
            for _ in 0..loads {
                let load = client.pipeline();
                load.custom::<(), _>(command("HGETALL"), vec![KEY]).await?;
                load.custom::<(), _>(command("PTTL"), vec![KEY]).await?;
                let replies: Vec<Value> = load.all().await?;
                read += replies.len();
            }
        }
        "fred-raw" => {
            let client = fred().await?;
            for _ in 0..loads {
                if let Resp3Frame::Array { data, .. } =
                    client.custom_raw(command("HGETALL"), vec![KEY]).await?
                {
                    read += data.len();
                }
            }
        }
        "get" => {
            for _ in 0..loads {
                let value: Vec<u8> = conn.get(STRING_KEY).await?;
                read += value.len();
            }
        }
        "fred-get" => {
            let client = fred().await?;
            for _ in 0..loads {
                if let Resp3Frame::BlobString { data, .. } =
                    client.custom_raw(command("GET"), vec![STRING_KEY]).await?
                {
                    read += data.len();
                }
            }
        }
        other => return Err(format!("unknown mode {other}").into()),
    }
    println!("{mode}: {loads} loads, {read} read");
    Ok(())
}
