//! Scale: what a million sessions cost in the memory store, and how long
//! clearing expired ones takes in the memory and file stores. Prints one
//! `RESULT name value unit how` line per figure for `bench-run`.
//!
//! - memory per session: RSS (`VmRSS`) before and after creating
//!   `SCALE_SESSIONS` (default 1,000,000) 4-field sessions in
//!   `session::MemoryStore` through the public lifecycle
//!   (`SessionManager::start(None)`, set every field, `finish`);
//! - memory store clean-up: as many sessions with a one-second max age,
//!   expired, then one `delete_expired` call, timed;
//! - file store clean-up: `SCALE_FILES` (default 100,000) expired sessions
//!   in a temp dir, then one `delete_expired` call, timed.

use std::sync::Arc;
use std::time::{Duration, Instant};

use session::store::file::FileStore;
use session::store::ExpiredCleanup;
use session::{MemoryStore, SessionConfig, SessionManager, SessionStore};
use session_bench::profile::{Profile, Profile4};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Long enough that no write sweeps expired sessions before the timed call.
const NO_SWEEP: Duration = Duration::from_secs(24 * 60 * 60);

fn count(name: &str, default: usize) -> Result<usize, BoxError> {
    match std::env::var(name) {
        Ok(value) => Ok(value
            .parse()
            .map_err(|_| format!("{name}={value}: not a count"))?),
        Err(_) => Ok(default),
    }
}

/// This process's resident set, bytes.
fn rss() -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .ok_or("no VmRSS in /proc/self/status")?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()?;
    Ok(kb * 1024)
}

/// Creates `n` sessions of [`Profile4`] through the lifecycle; returns how
/// long it took.
async fn create(manager: &SessionManager, n: usize) -> Result<Duration, BoxError> {
    let start = Instant::now();
    for i in 0..n {
        let request = manager.start(None);
        let session = request.session::<Profile4>().await?;
        Profile4::fill(&session, i);
        request.finish().await.result?;
    }
    Ok(start.elapsed())
}

/// Waits until sessions with a one-second max age created before now have
/// expired.
async fn wait_expired() {
    tokio::time::sleep(Duration::from_millis(1500)).await;
}

async fn run() -> Result<(), BoxError> {
    let sessions = count("SCALE_SESSIONS", 1_000_000)?;
    let files = count("SCALE_FILES", 100_000)?;
    let config = SessionConfig::default();

    // (a) memory per session.
    {
        // Room for every session: this measures memory, not eviction.
        let store = MemoryStore::new().max_sessions(sessions);
        let manager = SessionManager::new(store, config.clone())?;
        let before = rss()?;
        let took = create(&manager, sessions).await?;
        let after = rss()?;
        let per = after.saturating_sub(before) as f64 / sessions as f64;
        println!(
            "RESULT memory-store-bytes-per-session {per:.0} B RSS growth over {sessions} 4-field \
             sessions created through the lifecycle (start(None), set 4 fields, finish)"
        );
        println!(
            "RESULT memory-store-create {:.2} µs per session: the same {sessions} creations, {:.1} s in all",
            took.as_secs_f64() * 1e6 / sessions as f64,
            took.as_secs_f64()
        );
    }

    // (b) memory store clean-up.
    {
        let store = Arc::new(
            MemoryStore::new()
                .max_sessions(sessions)
                .sweep_period(NO_SWEEP),
        );
        let shared: Arc<dyn SessionStore> = store.clone();
        let manager = SessionManager::new(shared, config.clone().max_age(Duration::from_secs(1)))?;
        create(&manager, sessions).await?;
        wait_expired().await;
        let start = Instant::now();
        let deleted = store.delete_expired().await?;
        let took = start.elapsed();
        if deleted != sessions as u64 {
            return Err(
                format!("the memory store cleaned {deleted} of {sessions} sessions").into(),
            );
        }
        println!(
            "RESULT memory-store-cleanup {:.1} ms one delete_expired() over {sessions} expired \
             sessions (created through the lifecycle with a 1 s max age)",
            took.as_secs_f64() * 1e3
        );
    }

    // (c) file store clean-up.
    {
        let dir = std::env::temp_dir().join(format!("bench-scale.{}", std::process::id()));
        let _remove = RemoveDir(dir.clone());
        // The file store's default durability (no fsync per write).
        let store = Arc::new(FileStore::new(&dir)?.sweep_period(NO_SWEEP));
        let shared: Arc<dyn SessionStore> = store.clone();
        let manager = SessionManager::new(shared, config.clone().max_age(Duration::from_secs(1)))?;
        let created = create(&manager, files).await?;
        wait_expired().await;
        let start = Instant::now();
        let deleted = store.delete_expired().await?;
        let took = start.elapsed();
        if deleted != files as u64 {
            return Err(format!("the file store cleaned {deleted} of {files} sessions").into());
        }
        println!(
            "RESULT file-store-cleanup {:.1} ms one delete_expired() over {files} expired sessions \
             in {} (created through the lifecycle with a 1 s max age, in {:.1} s)",
            took.as_secs_f64() * 1e3,
            dir.parent().map_or("a temp dir".into(), |p| p.display().to_string()),
            created.as_secs_f64()
        );
    }
    Ok(())
}

/// Removes the file store's temp dir, also on errors.
struct RemoveDir(std::path::PathBuf);

impl Drop for RemoveDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn main() -> Result<(), BoxError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?
        .block_on(run())
}
