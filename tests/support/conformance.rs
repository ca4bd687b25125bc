//! The behaviour every [`SessionStore`] must have. Each store's test file
//! calls [`run`] with a fresh store; keys are random so a shared server is fine.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use session::{ChangeSet, Fields, MaxAgeUpdate, SessionStore, StoreKey};

fn key(name: &str) -> StoreKey {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    StoreKey::new(format!("conformance-{name}-{nanos}-{n}"))
}

fn in_a_minute() -> SystemTime {
    SystemTime::now() + Duration::from_secs(60)
}

fn changes(
    set: &[(&'static str, &str)],
    remove: &[&'static str],
    expires_at: SystemTime,
) -> ChangeSet {
    ChangeSet {
        set: set
            .iter()
            .map(|(k, v)| (*k, Bytes::copy_from_slice(v.as_bytes())))
            .collect(),
        remove: remove.to_vec(),
        expires_at,
        max_age: MaxAgeUpdate::Keep,
    }
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(k, v)| (Arc::from(*k), Bytes::copy_from_slice(v.as_bytes())))
        .collect()
}

/// Runs every check against `store`.
pub async fn run(store: &dyn SessionStore) {
    unknown_keys_load_nothing(store).await;
    commits_create_then_merge(store).await;
    concurrent_commits_on_different_fields_both_survive(store).await;
    max_age_override_round_trips(store).await;
    touch_moves_expiry_only(store).await;
    delete_removes(store).await;
    change_key_moves_the_record(store).await;
    expired_records_are_never_returned_nor_revived(store).await;
    delete_expired_counts(store).await;
}

async fn unknown_keys_load_nothing(store: &dyn SessionStore) {
    assert_eq!(store.load(&key("unknown")).await.unwrap(), None);
}

async fn commits_create_then_merge(store: &dyn SessionStore) {
    let key = key("merge");
    let at = in_a_minute();
    store
        .commit(&key, &changes(&[("a", "1"), ("b", "2")], &[], at))
        .await
        .unwrap();
    store
        .commit(&key, &changes(&[("b", "3"), ("c", "4")], &["a"], at))
        .await
        .unwrap();
    let record = store
        .load(&key)
        .await
        .unwrap()
        .expect("committed record loads");
    assert_eq!(*record.fields, fields(&[("b", "3"), ("c", "4")]));
    assert_eq!(record.max_age, None);
}

async fn concurrent_commits_on_different_fields_both_survive(store: &dyn SessionStore) {
    let key = key("concurrent");
    let at = in_a_minute();
    store
        .commit(&key, &changes(&[("a", "0"), ("b", "0")], &[], at))
        .await
        .unwrap();
    let left = changes(&[("a", "1")], &[], at);
    let right = changes(&[("b", "2")], &[], at);
    let (l, r) = tokio::join!(store.commit(&key, &left), store.commit(&key, &right));
    l.unwrap();
    r.unwrap();
    let record = store.load(&key).await.unwrap().unwrap();
    assert_eq!(*record.fields, fields(&[("a", "1"), ("b", "2")]));
}

async fn max_age_override_round_trips(store: &dyn SessionStore) {
    let key = key("max-age");
    let thirty_days = Some(Duration::from_secs(30 * 24 * 3600));
    let mut set = changes(&[("a", "1")], &[], in_a_minute());
    set.max_age = MaxAgeUpdate::Set(thirty_days);
    store.commit(&key, &set).await.unwrap();
    store
        .commit(&key, &changes(&[("b", "1")], &[], in_a_minute()))
        .await
        .unwrap();
    assert_eq!(
        store.load(&key).await.unwrap().unwrap().max_age,
        thirty_days
    );
    let mut clear = changes(&[], &[], in_a_minute());
    clear.max_age = MaxAgeUpdate::Set(None);
    store.commit(&key, &clear).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap().unwrap().max_age, None);
}

async fn touch_moves_expiry_only(store: &dyn SessionStore) {
    let key = key("touch");
    store
        .commit(&key, &changes(&[("a", "1")], &[], in_a_minute()))
        .await
        .unwrap();
    let later = SystemTime::now() + Duration::from_secs(3600);
    store.touch(&key, later).await.unwrap();
    let record = store.load(&key).await.unwrap().unwrap();
    assert_eq!(*record.fields, fields(&[("a", "1")]));
    let drift = record
        .expires_at
        .duration_since(later)
        .unwrap_or_else(|e| e.duration());
    assert!(
        drift < Duration::from_secs(1),
        "expiry moved to {:?}",
        record.expires_at
    );

    let missing = self::key("touch-missing");
    store.touch(&missing, later).await.unwrap();
    assert_eq!(
        store.load(&missing).await.unwrap(),
        None,
        "touch must not create a session"
    );
}

async fn delete_removes(store: &dyn SessionStore) {
    let key = key("delete");
    store
        .commit(&key, &changes(&[("a", "1")], &[], in_a_minute()))
        .await
        .unwrap();
    store.delete(&key).await.unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    store
        .delete(&key)
        .await
        .expect("deleting a missing session is fine");
}

async fn change_key_moves_the_record(store: &dyn SessionStore) {
    let (from, to) = (key("from"), key("to"));
    store
        .commit(&from, &changes(&[("a", "1")], &[], in_a_minute()))
        .await
        .unwrap();
    store.change_key(&from, &to).await.unwrap();
    assert_eq!(store.load(&from).await.unwrap(), None);
    assert_eq!(
        *store.load(&to).await.unwrap().unwrap().fields,
        fields(&[("a", "1")])
    );
}

async fn expired_records_are_never_returned_nor_revived(store: &dyn SessionStore) {
    let key = key("expired");
    let past = SystemTime::now() - Duration::from_secs(1);
    store
        .commit(&key, &changes(&[("old", "1")], &[], past))
        .await
        .unwrap();
    assert_eq!(store.load(&key).await.unwrap(), None);
    store
        .commit(&key, &changes(&[("new", "1")], &[], in_a_minute()))
        .await
        .unwrap();
    let record = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        *record.fields,
        fields(&[("new", "1")]),
        "an expired record's fields came back"
    );
}

async fn delete_expired_counts(store: &dyn SessionStore) {
    // Other checks may have left expired records; count from a clean slate.
    store.delete_expired().await.unwrap();
    let past = SystemTime::now() - Duration::from_secs(1);
    let (gone1, gone2, kept) = (key("gc1"), key("gc2"), key("gc-kept"));
    store
        .commit(&gone1, &changes(&[("a", "1")], &[], past))
        .await
        .unwrap();
    store
        .commit(&gone2, &changes(&[("a", "1")], &[], past))
        .await
        .unwrap();
    store
        .commit(&kept, &changes(&[("a", "1")], &[], in_a_minute()))
        .await
        .unwrap();
    assert_eq!(store.delete_expired().await.unwrap(), 2);
    assert!(store.load(&kept).await.unwrap().is_some());
}
