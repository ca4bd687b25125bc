//! The memory store passes the store conformance suite.

mod support;

use bytes::Bytes;
use session::MemoryStore;

#[tokio::test]
async fn memory_store_conforms() {
    support::conformance::run(&MemoryStore::new()).await;
}

#[tokio::test]
async fn expired_sessions_are_freed_by_the_cleanup_task() {
    use std::sync::Arc;
    use std::time::{Duration, SystemTime};

    use session::{ChangeSet, MaxAgeUpdate, SessionStore, StoreKey};

    let store = Arc::new(MemoryStore::new());
    let past = SystemTime::now() - Duration::from_secs(1);
    let changes = ChangeSet {
        set: vec![("a", Bytes::from_static(b"1"))],
        remove: vec![],
        expires_at: past,
        max_age: MaxAgeUpdate::Keep,
    };
    store
        .commit(&StoreKey::new("stale"), &changes)
        .await
        .unwrap();
    assert_eq!(store.len(), 1);
    let task = session::store::spawn_cleanup(store.clone(), Duration::from_millis(10));
    for _ in 0..200 {
        if store.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert!(
        store.is_empty(),
        "the clean-up task left an expired session behind"
    );
}
