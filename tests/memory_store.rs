//! The memory store passes the store conformance suite, frees expired
//! sessions by itself, and holds no more than its cap.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use session::store::{
    conformance, spawn_cleanup, ChangeSet, Created, ExpiredCleanup, MemoryStoreFull, Moved, Record,
    Update, Updated,
};
use session::{MemoryStore, SessionStore, StoreKey};

const HOUR: Duration = Duration::from_secs(60 * 60);
/// A lifetime that is over once [`EXPIRY_WAIT`] has passed.
const BLINK: Duration = Duration::from_millis(1);
const EXPIRY_WAIT: Duration = Duration::from_millis(20);

#[tokio::test]
async fn memory_store_conforms() {
    conformance::run(&MemoryStore::new()).await;
}

#[tokio::test]
async fn memory_store_cleans_up_as_the_contract_says() {
    conformance::run_cleanup(&MemoryStore::new()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_store_conforms_when_writes_race_on_threads() {
    conformance::run_parallel(Arc::new(MemoryStore::new())).await;
}

/// Sweeping on every write, and checking a (distant) cap on every create,
/// changes nothing a client of the store can see.
#[tokio::test]
async fn memory_store_conforms_while_sweeping_on_every_write() {
    let store = MemoryStore::new()
        .sweep_period(Duration::ZERO)
        .max_sessions(1_000_000);
    conformance::run(&store).await;
}

#[tokio::test]
async fn expired_sessions_are_freed_without_a_cleanup_call() {
    let store = MemoryStore::new().sweep_period(Duration::from_millis(1));
    create(&store, "short-lived", &lasting(BLINK)).await;
    assert_eq!(store.len(), 1);
    tokio::time::sleep(EXPIRY_WAIT).await;
    create(&store, "next", &lasting(HOUR)).await;
    assert_eq!(
        store.len(),
        1,
        "a write after the sweep period did not free the expired session"
    );
    assert_eq!(store.load(&key("short-lived")).await.unwrap(), None);
    assert!(store.load(&key("next")).await.unwrap().is_some());
}

#[tokio::test]
async fn a_full_store_refuses_new_sessions_and_still_serves_its_own() {
    let store = MemoryStore::new().max_sessions(2);
    create(&store, "a", &lasting(HOUR)).await;
    create(&store, "b", &lasting(HOUR)).await;
    let error = store
        .create(&key("c"), &lasting(HOUR))
        .await
        .expect_err("a create beyond max_sessions must fail");
    let full = error
        .downcast_ref::<MemoryStoreFull>()
        .unwrap_or_else(|| panic!("the error of a full store is not MemoryStoreFull: {error}"));
    assert_eq!(full.max, 2, "MemoryStoreFull names another cap");
    assert_eq!(store.len(), 2, "a refused create changed the count");
    assert_eq!(
        store.load(&key("c")).await.unwrap(),
        None,
        "a refused create stored the session"
    );

    // At the cap, the sessions it holds still update and move.
    assert!(matches!(
        store.update(&key("a"), &lasting(HOUR)).await.unwrap(),
        Updated::Written(_)
    ));
    let seen = store.load(&key("a")).await.unwrap().unwrap();
    assert!(matches!(
        store
            .rekey(&key("a"), &key("a2"), &lasting(HOUR), &seen)
            .await
            .unwrap(),
        Moved::Written(_)
    ));
    assert_eq!(store.len(), 2, "a rekey at the cap changed the count");

    // A delete makes room.
    store.delete(&key("b")).await.unwrap();
    create(&store, "c", &lasting(HOUR)).await;
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn a_full_store_accepts_a_session_once_an_expired_one_can_be_swept() {
    // The default sweep period (a minute) never comes due here: only the
    // sweep of a full store, at most once a second, can make room.
    let store = MemoryStore::new().max_sessions(2);
    create(&store, "live", &lasting(HOUR)).await;
    create(&store, "short-lived", &lasting(BLINK)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    create(&store, "new", &lasting(HOUR)).await;
    assert_eq!(
        store.len(),
        2,
        "the full store did not sweep the expired session"
    );
    assert_eq!(store.load(&key("short-lived")).await.unwrap(), None);
    assert!(store.load(&key("live")).await.unwrap().is_some());
    assert!(store.load(&key("new")).await.unwrap().is_some());
}

#[tokio::test]
async fn the_cleanup_task_frees_expired_sessions() {
    let store = Arc::new(MemoryStore::new());
    let owned = ChangeSet {
        owner: Update::Set(Some(Arc::from("ann"))),
        ..lasting(BLINK)
    };
    create(&store, "short-lived", &lasting(BLINK)).await;
    create(&store, "short-lived-owned", &owned).await;
    create(&store, "live", &lasting(HOUR)).await;
    tokio::time::sleep(EXPIRY_WAIT).await;
    assert_eq!(
        store.len(),
        3,
        "expired sessions were freed before any sweep was due"
    );

    let task = spawn_cleanup(&store, Duration::from_millis(10));
    for _ in 0..200 {
        if store.len() == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    task.abort();
    assert_eq!(
        store.len(),
        1,
        "the clean-up task left expired sessions behind"
    );
    assert!(store.load(&key("live")).await.unwrap().is_some());
    assert!(store.list_owned("ann").await.unwrap().is_empty());
}

#[tokio::test]
async fn len_follows_every_write() {
    let store = MemoryStore::new();
    let owned = ChangeSet {
        owner: Update::Set(Some(Arc::from("ann"))),
        ..lasting(HOUR)
    };
    create(&store, "a", &lasting(HOUR)).await;
    create(&store, "b", &lasting(HOUR)).await;
    create(&store, "c", &owned).await;
    assert_eq!(store.len(), 3, "after three creates");
    assert_eq!(
        store.create(&key("a"), &lasting(HOUR)).await.unwrap(),
        Created::KeyTaken
    );
    assert_eq!(store.len(), 3, "after a refused create");

    store.update(&key("a"), &lasting(HOUR)).await.unwrap();
    assert_eq!(store.len(), 3, "after an update");
    rekey(&store, "a", "d").await;
    assert_eq!(store.len(), 3, "after a rekey");

    create(&store, "e", &lasting(BLINK)).await;
    create(&store, "f", &lasting(BLINK)).await;
    assert_eq!(store.len(), 5, "after two more creates");
    tokio::time::sleep(EXPIRY_WAIT).await;
    create(&store, "e", &lasting(HOUR)).await;
    assert_eq!(store.len(), 5, "after a create replaced an expired session");
    rekey(&store, "d", "f").await;
    assert_eq!(store.len(), 4, "after a rekey replaced an expired session");

    store.delete(&key("b")).await.unwrap();
    store.delete(&key("b")).await.unwrap();
    assert_eq!(store.len(), 3, "after deleting one session twice");

    create(&store, "g", &owned).await;
    assert_eq!(store.delete_owned("ann", None).await.unwrap(), 2);
    assert_eq!(store.len(), 2, "after delete_owned");

    create(&store, "h", &lasting(BLINK)).await;
    tokio::time::sleep(EXPIRY_WAIT).await;
    assert_eq!(store.delete_expired().await.unwrap(), 1);
    assert_eq!(store.len(), 2, "after delete_expired");

    store.delete(&key("e")).await.unwrap();
    store.delete(&key("f")).await.unwrap();
    assert!(
        store.is_empty(),
        "{} sessions left after deleting all",
        store.len()
    );
}

fn key(name: &str) -> StoreKey {
    StoreKey::new(format!("memory-{name}"))
}

/// A change set with one field and `lifetime` as the default max-age.
fn lasting(lifetime: Duration) -> ChangeSet {
    ChangeSet {
        set: vec![("a", Bytes::from_static(b"1"))],
        remove: Vec::new(),
        max_age: Update::Keep,
        default_max_age: lifetime,
        owner: Update::Keep,
    }
}

async fn create(store: &MemoryStore, name: &str, changes: &ChangeSet) {
    let outcome = store.create(&key(name), changes).await.unwrap();
    assert!(
        matches!(outcome, Created::Written(_)),
        "create of {name} reported {outcome:?}"
    );
}

async fn rekey(store: &MemoryStore, from: &str, to: &str) {
    let seen: Record = store.load(&key(from)).await.unwrap().unwrap();
    let outcome = store
        .rekey(&key(from), &key(to), &lasting(HOUR), &seen)
        .await
        .unwrap();
    assert!(
        matches!(outcome, Moved::Written(_)),
        "rekey of {from} to {to} reported {outcome:?}"
    );
}
