//! The memory store passes the store conformance suite, frees expired
//! sessions by itself, and holds no more than its cap, evicting anonymous
//! sessions before logged-in ones.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use session::store::{
    conformance, spawn_cleanup, ChangeSet, Created, ExpiredCleanup, MemoryStoreFull, Moved, Record,
    Update, Updated,
};
use session::{MemoryStore, SessionStore, StoreKey};

const MINUTE: Duration = Duration::from_secs(60);
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoking_ten_thousand_sessions_ends_them_all_in_time() {
    conformance::run_revoke_many(Arc::new(MemoryStore::new()), 10_000).await;
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
async fn a_full_store_evicts_the_anonymous_sessions_closest_to_expiry_first() {
    let store = MemoryStore::new().max_sessions(3);
    let owned = |lifetime| ChangeSet {
        owner: Update::Set(Some(Arc::from("ann"))),
        ..lasting(lifetime)
    };
    // The logged-in session expires first, yet it is the last to go.
    create(&store, "owned", &owned(MINUTE)).await;
    create(&store, "anonymous-soon", &lasting(2 * MINUTE)).await;
    create(&store, "anonymous-late", &lasting(HOUR)).await;

    create(&store, "new", &lasting(HOUR)).await;
    assert_eq!(store.len(), 3, "the cap was passed");
    assert!(
        !live(&store, "anonymous-soon").await,
        "the wrong session was evicted"
    );
    assert!(
        live(&store, "owned").await
            && live(&store, "anonymous-late").await
            && live(&store, "new").await
    );

    // At the cap, the sessions it holds still update and move.
    assert!(matches!(
        store.update(&key("owned"), &lasting(HOUR)).await.unwrap(),
        Updated::Written(_)
    ));
    rekey(&store, "owned", "owned-moved").await;
    assert_eq!(store.len(), 3, "a rekey at the cap changed the count");

    // Only once no anonymous session is left does an owned one go.
    create(&store, "newer", &owned(HOUR)).await;
    create(&store, "newest", &owned(HOUR)).await;
    assert!(
        live(&store, "owned-moved").await,
        "an owned session went before an anonymous one"
    );
    create(&store, "last", &owned(HOUR)).await;
    assert!(
        !live(&store, "owned-moved").await,
        "the owned session closest to expiry stayed"
    );
    assert_eq!(
        store.list_owned("ann").await.unwrap().len(),
        3,
        "an evicted session is still listed"
    );

    let error = MemoryStore::new()
        .max_sessions(0)
        .create(&key("none"), &lasting(HOUR))
        .await
        .expect_err("a store without room must refuse");
    let full = error
        .downcast_ref::<MemoryStoreFull>()
        .unwrap_or_else(|| panic!("the error of a full store is not MemoryStoreFull: {error}"));
    assert_eq!(full.max, 0, "MemoryStoreFull names another cap");
}

/// The attack the default cap exists for: anyone can make anonymous
/// sessions, as many as they like.
#[tokio::test]
async fn a_flood_of_anonymous_sessions_logs_nobody_out_and_locks_nobody_out() {
    let store = MemoryStore::new();
    let owned = ChangeSet {
        owner: Update::Set(Some(Arc::from("ann"))),
        ..lasting(MINUTE)
    };
    for n in 0..8 {
        create(&store, &format!("logged-in-{n}"), &owned).await;
    }
    for n in 0..MemoryStore::DEFAULT_MAX_SESSIONS + 5_000 {
        create(&store, &format!("flood-{n}"), &lasting(HOUR)).await;
    }
    // Full, less at most one batch of evictions (a sixty-fourth).
    let max = MemoryStore::DEFAULT_MAX_SESSIONS;
    assert!(
        (max - max / 64..=max).contains(&store.len()),
        "{} sessions held under the default cap",
        store.len()
    );
    assert_eq!(
        store.list_owned("ann").await.unwrap().len(),
        8,
        "the flood evicted a logged-in session"
    );
    create(&store, "a-new-login", &owned).await;
    assert_eq!(store.list_owned("ann").await.unwrap().len(), 9);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cap_holds_exactly_when_creates_race() {
    const MAX: usize = 50;
    let store = Arc::new(MemoryStore::new().max_sessions(MAX));
    let creators: Vec<_> = (0..4)
        .map(|task| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for n in 0..500 {
                    let name = format!("race-{task}-{n}");
                    store.create(&key(&name), &lasting(HOUR)).await.unwrap();
                    assert!(store.len() <= MAX, "{} sessions held", store.len());
                }
            })
        })
        .collect();
    for creator in creators {
        creator.await.unwrap();
    }
    let mut live = 0;
    for task in 0..4 {
        for n in 0..500 {
            let name = format!("race-{task}-{n}");
            live += usize::from(store.load(&key(&name)).await.unwrap().is_some());
        }
    }
    assert!(live <= MAX, "{live} sessions live under a cap of {MAX}");
    assert_eq!(store.len(), live, "len disagrees with the sessions held");
}

#[tokio::test]
async fn a_full_store_accepts_a_session_once_an_expired_one_can_be_swept() {
    // The default sweep period (a minute) never comes due here: only the
    // sweep of a full store can make room, and it comes before any eviction.
    let store = MemoryStore::new().max_sessions(2);
    create(&store, "live", &lasting(HOUR)).await;
    create(&store, "short-lived", &lasting(BLINK)).await;
    tokio::time::sleep(EXPIRY_WAIT).await;
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

async fn live(store: &MemoryStore, name: &str) -> bool {
    store.load(&key(name)).await.unwrap().is_some()
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
        seen_max_age: None,
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
