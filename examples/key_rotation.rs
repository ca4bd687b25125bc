//! Rotating the keys of signed cookies without logging anyone out: a cookie
//! signed with the old key still verifies while the old key is listed, and
//! the response re-signs it with the new key.
//!
//! ```text
//! cargo run --example key_rotation
//! ```
//!
//! In an application the keys come from a secret store, newest first, for
//! example `SESSION_KEYS=new,old`; drop the old one once the cookies it
//! signed have expired (the session max-age after the switch).

use std::sync::Arc;

use session::{MemoryStore, Session, SessionConfig, SessionManager};

#[derive(Session, Default)]
struct Visits {
    count: u64,
}

/// One request carrying `cookie`: counts a visit, returns the count and the
/// cookie the response sets, if any.
async fn visit(
    sessions: &SessionManager,
    cookie: Option<String>,
) -> Result<(u64, Option<String>), session::Error> {
    let request = sessions.start(cookie);
    let visits = request.session::<Visits>().await?;
    visits.set_count(visits.count() + 1);
    let finished = request.finish().await;
    finished.result?;
    Ok((
        visits.count(),
        finished.cookie.map(|c| c.value().to_owned()),
    ))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), session::Error> {
    let (old_key, new_key) = ([1u8; 64], [2u8; 64]);
    let store = Arc::new(MemoryStore::new());
    let config = SessionConfig::default();

    let before = SessionManager::new(store.clone(), config.clone().signed([old_key]))?;
    let (count, cookie) = visit(&before, None).await?;
    println!("before the rotation: visit {count}, cookie signed with the old key");

    let during = SessionManager::new(store.clone(), config.clone().signed([new_key, old_key]))?;
    let (count, cookie) = visit(&during, cookie).await?;
    println!("during: visit {count}; the old cookie verified and was re-signed with the new key");

    let after = SessionManager::new(store, config.signed([new_key]))?;
    let (count, _) = visit(&after, cookie).await?;
    println!("after the old key is gone: visit {count}, nobody was logged out");
    assert_eq!(count, 3);
    Ok(())
}
