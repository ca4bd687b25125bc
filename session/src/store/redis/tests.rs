//! The store's internals against the Redis Cluster `scripts/with-redis`
//! starts:
//!
//! ```text
//! scripts/with-redis cargo test -p session --all-features --lib store::redis
//! ```

use std::time::SystemTime;

use super::*;

const HOUR: Duration = Duration::from_secs(60 * 60);

async fn cluster() -> RedisStore {
    let urls = std::env::var("SESSION_TEST_REDIS_CLUSTER_URLS").expect(
        "SESSION_TEST_REDIS_CLUSTER_URLS is not set: run these tests through scripts/with-redis",
    );
    let urls: Vec<&str> = urls.split(',').collect();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    RedisStore::connect_cluster(&urls)
        .await
        .unwrap()
        .namespace(format!("unit-{nanos}"))
}

/// The Cluster client sends a command again when its connection fails, so
/// any step of a move may run twice, its first reply lost. With every call
/// running twice, the move still ends with the session under the new key
/// only, its changes merged and its owner's set listing it: a retried copy
/// is not "taken", a retried delete not "gone" (which would delete the copy,
/// the only one left).
#[tokio::test]
async fn a_cluster_move_whose_every_call_runs_twice_moves_the_session_once() {
    let mut store = cluster().await;
    let (from, to) = (StoreKey::new("from"), StoreKey::new("to"));
    let create = ChangeSet {
        set: vec![("a", Bytes::from_static(b"1"))],
        owner: Update::Set(Some(Arc::from("ann"))),
        ..ChangeSet::touch(HOUR)
    };
    store.create(&from, &create).await.unwrap();
    let whole = store.load(&from).await.unwrap().expect("the session");

    store.replay = true;
    let change = ChangeSet {
        set: vec![("b", Bytes::from_static(b"2"))],
        ..ChangeSet::touch(HOUR)
    };
    let moved = store.rekey(&from, &to, &change, &whole).await.unwrap();
    store.replay = false;

    assert!(matches!(moved, Moved::Written(_)), "the move: {moved:?}");
    assert_eq!(store.load(&from).await.unwrap(), None, "the old key");
    let record = store.load(&to).await.unwrap().expect("the moved session");
    assert_eq!(record.fields.get("a").as_deref(), Some(&b"1"[..]));
    assert_eq!(record.fields.get("b").as_deref(), Some(&b"2"[..]));
    assert_eq!(record.owner.as_deref(), Some("ann"));
    let listed: Vec<StoreKey> = store
        .list_owned("ann")
        .await
        .unwrap()
        .into_iter()
        .map(|session| session.key)
        .collect();
    assert_eq!(listed, [to]);
}

/// A Cluster move's last step deletes the old key and leaves a gone mark;
/// its reply lost, the client asks again. Should a plain update of the old
/// key land in between, it finds the session gone and leaves a hash without
/// `.created` (until it deletes it): asked again, the step must still answer
/// "deleted by this move", not "changed since", which would make the move
/// delete its copy, the only one left.
#[tokio::test]
async fn a_retried_move_end_is_not_fooled_by_what_a_late_update_left() {
    let store = cluster().await;
    let from = StoreKey::new("late-from");
    let create = ChangeSet {
        set: vec![("a", Bytes::from_static(b"1"))],
        ..ChangeSet::touch(HOUR)
    };
    store.create(&from, &create).await.unwrap();
    let (from_key, from_gone) = (store.key(from.as_str()), store.gone_key(from.as_str()));
    let copied: String = redis::cmd("HGET")
        .arg(&from_key)
        .arg(".v")
        .query_async(&mut store.conn())
        .await
        .unwrap();
    let mut take = fcall(&LIBRARY.take, &[&from_key, &from_gone]);
    take.arg(&copied).arg("late-to");
    assert_eq!(store.call::<i64>(&take).await.unwrap(), 2, "the first run");

    redis::cmd("HSET")
        .arg(&from_key)
        .arg(".v")
        .arg("12345")
        .arg("a")
        .arg("2")
        .exec_async(&mut store.conn())
        .await
        .unwrap();
    assert_eq!(
        store.call::<i64>(&take).await.unwrap(),
        2,
        "the retried run"
    );
}
