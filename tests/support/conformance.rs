//! The behaviour every [`SessionStore`] must have, checked against a real
//! backend. Each store's test file calls [`run`] with its store, [`run_cleanup`]
//! if the store implements [`ExpiredCleanup`], and [`run_parallel`] on a
//! multi-thread runtime to race its writes on several threads.
//!
//! Keys and owners are unique per call, so a shared server is fine. Expired
//! sessions are made by writing a lifetime of [`BLINK`] and waiting
//! [`EXPIRY_WAIT`] of real time: stores use their own clock, so the suite
//! cannot run under tokio's paused time.

use std::collections::BTreeSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use session::store::{
    ChangeSet, Created, ExpiredCleanup, Expiry, Fields, Moved, OwnedSession, Record, Update,
    Updated, MAX_LIFETIME,
};
use session::{SessionStore, StoreKey};

const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(60 * 60);
const DAY: Duration = Duration::from_secs(24 * 60 * 60);
const THIRTY_DAYS: Duration = Duration::from_secs(30 * 24 * 60 * 60);

/// How far a reported lifetime may fall short of the one written: the time a
/// slow machine takes between the write and the check.
const SLACK: Duration = Duration::from_secs(5);
/// How far it may exceed it: a backend that keeps whole seconds may round up.
const ROUNDING: Duration = Duration::from_secs(1);
/// How far the lifetime a write reports and the one the next load reports
/// may differ.
const AGREEMENT: Duration = Duration::from_secs(2);
/// A lifetime that is over once [`EXPIRY_WAIT`] has passed.
const BLINK: Duration = Duration::from_millis(1);
/// How long to wait for a session written with [`BLINK`] to expire.
const EXPIRY_WAIT: Duration = Duration::from_millis(20);

/// Racing tasks per concurrency check.
const TASKS: usize = 8;
/// Writes per racing task.
const ROUNDS: usize = 20;
/// How many times the one-winner races are repeated.
const RACES: usize = 5;

/// Runs every check but the clean-up ones against `store`. The races run on
/// the calling task, so their requests overlap wherever the store awaits.
pub async fn run(store: &dyn SessionStore) {
    // Loading and creating.
    unknown_keys_load_nothing(store).await;
    create_then_load_returns_the_fields(store).await;
    field_values_round_trip_byte_for_byte(store).await;
    create_on_a_live_key_is_refused_and_changes_nothing(store).await;
    create_on_an_expired_key_replaces_it_without_reviving_it(store).await;

    // Updating.
    update_merges_field_by_field(store).await;
    a_session_whose_fields_are_all_removed_stays_live(store).await;
    update_of_a_session_that_is_not_live_is_gone_and_creates_nothing(store).await;
    touch_extends_the_expiry_and_changes_nothing_else(store).await;

    // Expiry.
    expired_sessions_do_not_load(store).await;
    an_override_outlives_a_shorter_default(store).await;
    a_shorter_default_never_cuts_a_session_short(store).await;
    only_a_max_age_change_shortens_a_session(store).await;
    max_age_override_round_trips_and_set_none_clears_it(store).await;
    lifetimes_are_capped_at_max_lifetime(store).await;

    // Rekeying.
    rekey_moves_the_session_with_its_changes_merged(store).await;
    rekey_onto_a_live_key_is_refused_and_changes_neither_session(store).await;
    rekey_onto_an_expired_key_replaces_it(store).await;
    rekey_of_a_session_that_is_not_live_is_gone_and_creates_nothing(store).await;
    a_moved_session_is_gone_from_its_old_key(store).await;

    // Deleting.
    delete_removes_the_session_and_a_missing_key_is_fine(store).await;

    // Owners.
    list_owned_reports_exactly_the_owners_live_sessions(store).await;
    rekey_keeps_the_session_in_its_owners_list_under_the_new_key(store).await;
    deleted_and_expired_sessions_leave_their_owners_list(store).await;
    changing_the_owner_moves_the_session_between_lists(store).await;
    delete_owned_deletes_every_session_of_the_owner_and_counts_them(store).await;
    delete_owned_keeps_the_session_it_is_told_to_keep(store).await;

    // Concurrency.
    run_races(Racers::Interleaved(store)).await;
}

/// Runs the concurrency checks with every racing task spawned on the tokio
/// runtime: call it from a multi-thread runtime so that they really run in
/// parallel.
pub async fn run_parallel(store: Arc<dyn SessionStore>) {
    run_races(Racers::Spawned(&store)).await;
}

/// Runs the checks of [`ExpiredCleanup::delete_expired`].
pub async fn run_cleanup(store: &dyn ExpiredCleanup) {
    delete_expired_counts_exactly_the_expired_sessions(store).await;
}

async fn run_races(racers: Racers<'_>) {
    concurrent_updates_of_different_fields_all_survive(racers).await;
    concurrent_writes_to_one_field_leave_one_of_the_written_values(racers).await;
    concurrent_creates_on_one_key_have_exactly_one_winner(racers).await;
    concurrent_rekeys_of_one_session_have_exactly_one_winner(racers).await;
    an_update_racing_a_delete_never_brings_the_session_back(racers).await;
    an_update_racing_a_rekey_lands_in_the_moved_session_or_is_gone(racers).await;
}

// ---------------------------------------------------------------------------
// Loading and creating

async fn unknown_keys_load_nothing(store: &dyn SessionStore) {
    assert_eq!(
        store.load(&key("unknown")).await.unwrap(),
        None,
        "a key nobody wrote loaded a session"
    );
}

async fn create_then_load_returns_the_fields(store: &dyn SessionStore) {
    let key = key("create");
    let expiry = created(
        store,
        &key,
        &changes(&[("a", "1"), ("b", "2")], &[], HOUR),
        "create",
    )
    .await;
    assert_lifetime(expiry.ttl, HOUR, "the ttl create reports");
    assert_eq!(expiry.max_age, None, "create reported an override none set");
    let record = load(store, &key, "a created session").await;
    assert_eq!(
        *record.fields,
        fields(&[("a", "1"), ("b", "2")]),
        "a created session loads other fields than it was created with"
    );
    assert_lifetime(record.ttl, HOUR, "a created session's ttl");
    assert_eq!(record.max_age, None, "a created session has an override");
    assert_eq!(record.owner, None, "a created session has an owner");
    assert_agrees(expiry, &record, "create");
}

async fn field_values_round_trip_byte_for_byte(store: &dyn SessionStore) {
    let key = key("bytes");
    let binary = Bytes::from_static(&[0, 255, 1, b'\n', b'\r', b'"', b'\\', b'\'', 0xc3, 0x28]);
    let large = Bytes::from(vec![b'x'; 64 * 1024]);
    let change = ChangeSet {
        set: vec![
            ("binary", binary.clone()),
            ("empty", Bytes::new()),
            ("large", large.clone()),
            ("auth.user", Bytes::from_static(b"namespaced")),
            ("with space:and-colon", Bytes::from_static(b"odd key")),
            ("ünïcödé", Bytes::from_static("välue".as_bytes())),
        ],
        ..changes(&[], &[], HOUR)
    };
    created(store, &key, &change, "create with odd fields").await;
    let record = load(store, &key, "a session with odd fields").await;
    let expected: Fields = change
        .set
        .iter()
        .map(|(name, value)| (Arc::from(*name), value.clone()))
        .collect();
    assert_eq!(
        *record.fields, expected,
        "field names or values (binary, empty, 64 KiB, dotted, unicode) did not round-trip"
    );
}

async fn create_on_a_live_key_is_refused_and_changes_nothing(store: &dyn SessionStore) {
    let (key, owner, stranger) = (key("taken"), owner("taken"), owner("taken-stranger"));
    let first = ChangeSet {
        owner: Update::Set(Some(owner.clone())),
        ..changes(&[("a", "1"), ("b", "2")], &[], HOUR)
    };
    created(store, &key, &first, "the first create").await;
    let second = ChangeSet {
        max_age: Update::Set(Some(THIRTY_DAYS)),
        owner: Update::Set(Some(stranger.clone())),
        ..changes(&[("a", "stranger"), ("c", "3")], &["b"], DAY)
    };
    assert_eq!(
        store.create(&key, &second).await.unwrap(),
        Created::KeyTaken,
        "create on a key holding a live session must report KeyTaken"
    );
    let record = load(store, &key, "a session a refused create hit").await;
    assert_eq!(
        *record.fields,
        fields(&[("a", "1"), ("b", "2")]),
        "a refused create changed the live session's fields (a colliding id joined it)"
    );
    assert_lifetime(record.ttl, HOUR, "the ttl after a refused create");
    assert_eq!(record.max_age, None, "a refused create set an override");
    assert_eq!(
        record.owner,
        Some(owner.clone()),
        "a refused create changed the owner"
    );
    assert_owned(store, &owner, &[&key], "the owner after a refused create").await;
    assert_owned(store, &stranger, &[], "the refused create's owner").await;
}

async fn create_on_an_expired_key_replaces_it_without_reviving_it(store: &dyn SessionStore) {
    let (key, owner) = (key("recreate"), owner("recreate"));
    let old = ChangeSet {
        max_age: Update::Set(Some(BLINK)),
        owner: Update::Set(Some(owner.clone())),
        ..changes(&[("old", "1"), ("both", "old")], &[], BLINK)
    };
    created(store, &key, &old, "creating a short-lived session").await;
    wait_for_expiry().await;
    let new = changes(&[("new", "1"), ("both", "new")], &[], HOUR);
    let expiry = created(store, &key, &new, "create on an expired key").await;
    let record = load(store, &key, "a session created over an expired one").await;
    assert_eq!(
        *record.fields,
        fields(&[("new", "1"), ("both", "new")]),
        "create over an expired session revived its fields"
    );
    assert_eq!(
        record.max_age, None,
        "create over an expired session revived its override"
    );
    assert_eq!(
        record.owner, None,
        "create over an expired session revived its owner"
    );
    assert_lifetime(
        record.ttl,
        HOUR,
        "the ttl of a session created over an expired one",
    );
    assert_agrees(expiry, &record, "create over an expired session");
    assert_owned(
        store,
        &owner,
        &[],
        "the owner of an expired session that was replaced",
    )
    .await;
}

// ---------------------------------------------------------------------------
// Updating

async fn update_merges_field_by_field(store: &dyn SessionStore) {
    let key = key("merge");
    created(
        store,
        &key,
        &changes(&[("a", "1"), ("b", "2"), ("c", "3")], &[], HOUR),
        "create",
    )
    .await;
    let expiry = updated(
        store,
        &key,
        &changes(&[("b", "20"), ("d", "4")], &["a", "never-there"], HOUR),
        "update",
    )
    .await;
    let record = load(store, &key, "an updated session").await;
    assert_eq!(
        *record.fields,
        fields(&[("b", "20"), ("c", "3"), ("d", "4")]),
        "update must set and remove only the fields it names and keep the others"
    );
    assert_agrees(expiry, &record, "update");
}

async fn a_session_whose_fields_are_all_removed_stays_live(store: &dyn SessionStore) {
    let (key, owner) = (key("emptied"), owner("emptied"));
    let create = ChangeSet {
        owner: Update::Set(Some(owner.clone())),
        ..changes(&[("a", "1")], &[], HOUR)
    };
    created(store, &key, &create, "create").await;
    updated(
        store,
        &key,
        &changes(&[], &["a"], HOUR),
        "removing the last field",
    )
    .await;
    let record = load(store, &key, "a session without fields").await;
    assert!(
        record.fields.is_empty(),
        "a removed field came back: {:?}",
        record.fields
    );
    assert_eq!(
        record.owner,
        Some(owner.clone()),
        "emptying a session lost its owner"
    );
    updated(
        store,
        &key,
        &ChangeSet::touch(HOUR),
        "touching a session without fields",
    )
    .await;
    assert_owned(
        store,
        &owner,
        &[&key],
        "the owner of a session without fields",
    )
    .await;
}

async fn update_of_a_session_that_is_not_live_is_gone_and_creates_nothing(
    store: &dyn SessionStore,
) {
    for case in NotLive::ALL {
        let (key, owner) = (key("update-gone"), owner("update-gone"));
        case.prepare(store, &key).await;
        let change = ChangeSet {
            max_age: Update::Set(Some(DAY)),
            owner: Update::Set(Some(owner.clone())),
            ..changes(&[("late", "1")], &[], HOUR)
        };
        assert_eq!(
            store.update(&key, &change).await.unwrap(),
            Updated::Gone,
            "update of a {} session must report Gone",
            case.name()
        );
        assert_eq!(
            store.update(&key, &ChangeSet::touch(HOUR)).await.unwrap(),
            Updated::Gone,
            "touch of a {} session must report Gone",
            case.name()
        );
        assert_eq!(
            store.load(&key).await.unwrap(),
            None,
            "update of a {} session brought it back",
            case.name()
        );
        assert_owned(
            store,
            &owner,
            &[],
            &format!(
                "the owner a refused update of a {} session set",
                case.name()
            ),
        )
        .await;
    }
}

async fn touch_extends_the_expiry_and_changes_nothing_else(store: &dyn SessionStore) {
    let (key, owner) = (key("touch"), owner("touch"));
    let create = ChangeSet {
        owner: Update::Set(Some(owner.clone())),
        ..changes(&[("a", "1"), ("b", "2")], &[], MINUTE)
    };
    created(store, &key, &create, "create").await;
    let expiry = updated(store, &key, &ChangeSet::touch(HOUR), "touch").await;
    assert_lifetime(expiry.ttl, HOUR, "the ttl touch reports");
    let record = load(store, &key, "a touched session").await;
    assert_eq!(
        *record.fields,
        fields(&[("a", "1"), ("b", "2")]),
        "touch changed fields"
    );
    assert_lifetime(record.ttl, HOUR, "the ttl after touch");
    assert_eq!(record.max_age, None, "touch set an override");
    assert_eq!(record.owner, Some(owner), "touch changed the owner");
    assert_agrees(expiry, &record, "touch");
}

// ---------------------------------------------------------------------------
// Expiry

async fn expired_sessions_do_not_load(store: &dyn SessionStore) {
    let key = key("expired");
    create_short_lived(store, &key, changes(&[("a", "1")], &[], BLINK)).await;
    wait_for_expiry().await;
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "an expired session loaded"
    );
}

async fn an_override_outlives_a_shorter_default(store: &dyn SessionStore) {
    let key = key("override-outlives");
    let create = ChangeSet {
        max_age: Update::Set(Some(THIRTY_DAYS)),
        ..changes(&[("a", "1")], &[], DAY)
    };
    let expiry = created(store, &key, &create, "create with a 30-day override").await;
    assert_lifetime(
        expiry.ttl,
        THIRTY_DAYS,
        "the ttl a create with an override reports",
    );
    let expiry = updated(
        store,
        &key,
        &changes(&[("b", "1")], &[], DAY),
        "update keeping the override",
    )
    .await;
    assert_lifetime(
        expiry.ttl,
        THIRTY_DAYS,
        "the ttl after an update with a 1-day default (it must keep the 30-day override)",
    );
    let expiry = updated(store, &key, &ChangeSet::touch(DAY), "touch").await;
    let record = load(store, &key, "a session with an override").await;
    assert_lifetime(
        record.ttl,
        THIRTY_DAYS,
        "the ttl after a touch with a 1-day default (it must keep the 30-day override)",
    );
    assert_eq!(
        record.max_age,
        Some(THIRTY_DAYS),
        "an update that kept the override lost it"
    );
    assert_agrees(expiry, &record, "touch of a session with an override");
}

async fn a_shorter_default_never_cuts_a_session_short(store: &dyn SessionStore) {
    let key = key("never-shrinks");
    created(store, &key, &changes(&[("a", "1")], &[], HOUR), "create").await;
    let expiry = updated(
        store,
        &key,
        &changes(&[("b", "1")], &[], MINUTE),
        "update with a shorter default",
    )
    .await;
    assert_lifetime(
        expiry.ttl,
        HOUR,
        "the ttl an update with a 1-minute default reports for a 1-hour session (expiry must never move earlier)",
    );
    let expiry = updated(
        store,
        &key,
        &ChangeSet::touch(MINUTE),
        "touch with a shorter default",
    )
    .await;
    let record = load(store, &key, "a session updated with a shorter default").await;
    assert_lifetime(
        record.ttl,
        HOUR,
        "the ttl after writes with a 1-minute default to a 1-hour session (expiry must never move earlier)",
    );
    assert_agrees(expiry, &record, "touch with a shorter default");
}

async fn only_a_max_age_change_shortens_a_session(store: &dyn SessionStore) {
    let key = key("shortened");
    created(store, &key, &changes(&[("a", "1")], &[], HOUR), "create").await;
    let shorten = ChangeSet {
        max_age: Update::Set(Some(MINUTE)),
        ..changes(&[], &[], HOUR)
    };
    let expiry = updated(store, &key, &shorten, "update setting a 1-minute override").await;
    assert_lifetime(
        expiry.ttl,
        MINUTE,
        "the ttl after setting a 1-minute override on a 1-hour session (a Set may shorten)",
    );
    assert_eq!(expiry.max_age, Some(MINUTE), "the override update reports");
    let record = load(store, &key, "a shortened session").await;
    assert_lifetime(record.ttl, MINUTE, "the ttl a shortened session loads with");
    assert_agrees(expiry, &record, "update setting an override");

    let expiry = updated(
        store,
        &key,
        &changes(&[("b", "1")], &[], DAY),
        "update with a longer default",
    )
    .await;
    assert_lifetime(
        expiry.ttl,
        MINUTE,
        "the ttl after an update with a 1-day default of a session with a 1-minute override (the override wins)",
    );
}

async fn max_age_override_round_trips_and_set_none_clears_it(store: &dyn SessionStore) {
    let key = key("override");
    let create = ChangeSet {
        max_age: Update::Set(Some(THIRTY_DAYS)),
        ..changes(&[("a", "1")], &[], HOUR)
    };
    let expiry = created(store, &key, &create, "create with an override").await;
    assert_eq!(
        expiry.max_age,
        Some(THIRTY_DAYS),
        "the override create reports"
    );
    let record = load(store, &key, "a session with an override").await;
    assert_eq!(
        record.max_age,
        Some(THIRTY_DAYS),
        "the override did not round-trip"
    );
    assert_lifetime(
        record.ttl,
        THIRTY_DAYS,
        "the ttl of a session with an override",
    );
    assert_agrees(expiry, &record, "create with an override");

    let clear = ChangeSet {
        max_age: Update::Set(None),
        ..changes(&[("b", "1")], &[], HOUR)
    };
    let expiry = updated(store, &key, &clear, "update clearing the override").await;
    assert_eq!(
        expiry.max_age, None,
        "the override after Set(None) (update reports)"
    );
    let record = load(store, &key, "a session whose override was cleared").await;
    assert_eq!(record.max_age, None, "Set(None) did not clear the override");
    assert_lifetime(
        record.ttl,
        HOUR,
        "the ttl after clearing a 30-day override with a 1-hour default (a Set may shorten)",
    );
    assert_agrees(expiry, &record, "update clearing the override");
}

async fn lifetimes_are_capped_at_max_lifetime(store: &dyn SessionStore) {
    let thousand_days = Duration::from_secs(1000 * 24 * 60 * 60);
    let by_override = key("capped-override");
    let create = ChangeSet {
        max_age: Update::Set(Some(thousand_days)),
        ..changes(&[("a", "1")], &[], HOUR)
    };
    let expiry = created(store, &by_override, &create, "create with a huge override").await;
    assert_lifetime(expiry.ttl, MAX_LIFETIME, "the ttl of a 1000-day override");
    let record = load(store, &by_override, "a session with a huge override").await;
    assert_lifetime(record.ttl, MAX_LIFETIME, "the ttl of a 1000-day override");

    let by_default = key("capped-default");
    created(
        store,
        &by_default,
        &changes(&[("a", "1")], &[], thousand_days),
        "create with a huge default",
    )
    .await;
    let record = load(store, &by_default, "a session with a huge default").await;
    assert_lifetime(record.ttl, MAX_LIFETIME, "the ttl of a 1000-day default");
}

// ---------------------------------------------------------------------------
// Rekeying

async fn rekey_moves_the_session_with_its_changes_merged(store: &dyn SessionStore) {
    let (from, to, owner) = (key("move-from"), key("move-to"), owner("move"));
    let create = ChangeSet {
        max_age: Update::Set(Some(2 * HOUR)),
        owner: Update::Set(Some(owner.clone())),
        ..changes(&[("a", "1"), ("b", "2")], &[], MINUTE)
    };
    created(store, &from, &create, "create").await;
    let change = changes(&[("b", "3"), ("c", "4")], &["a"], MINUTE);
    let expiry = moved(store, &from, &to, &change, "rekey").await;
    assert_eq!(expiry.max_age, Some(2 * HOUR), "the override rekey reports");
    assert_lifetime(expiry.ttl, 2 * HOUR, "the ttl rekey reports");
    assert_eq!(
        store.load(&from).await.unwrap(),
        None,
        "rekey left the session under its old key"
    );
    let record = load(store, &to, "a moved session").await;
    assert_eq!(
        *record.fields,
        fields(&[("b", "3"), ("c", "4")]),
        "rekey must move the fields with its changes merged"
    );
    assert_eq!(record.owner, Some(owner.clone()), "rekey lost the owner");
    assert_eq!(record.max_age, Some(2 * HOUR), "rekey lost the override");
    assert_lifetime(record.ttl, 2 * HOUR, "the ttl of a moved session");
    assert_agrees(expiry, &record, "rekey");
}

async fn rekey_onto_a_live_key_is_refused_and_changes_neither_session(store: &dyn SessionStore) {
    let (from, to) = (key("clash-from"), key("clash-to"));
    let (owner_from, owner_to, owner_change) = (
        owner("clash-from"),
        owner("clash-to"),
        owner("clash-change"),
    );
    let create_from = ChangeSet {
        owner: Update::Set(Some(owner_from.clone())),
        ..changes(&[("a", "1")], &[], HOUR)
    };
    let create_to = ChangeSet {
        owner: Update::Set(Some(owner_to.clone())),
        ..changes(&[("x", "1")], &[], DAY)
    };
    created(store, &from, &create_from, "create the source").await;
    created(store, &to, &create_to, "create the target").await;
    let change = ChangeSet {
        max_age: Update::Set(Some(THIRTY_DAYS)),
        owner: Update::Set(Some(owner_change.clone())),
        ..changes(&[("a", "2")], &["x"], HOUR)
    };
    let record = load(store, &from, "the source").await;
    assert_eq!(
        store
            .rekey(&from, &to, &change, &whole(&record, &change))
            .await
            .unwrap(),
        Moved::KeyTaken,
        "rekey onto a key holding a live session must report KeyTaken"
    );
    let source = load(store, &from, "the source of a refused rekey").await;
    assert_eq!(
        *source.fields,
        fields(&[("a", "1")]),
        "a refused rekey changed its source's fields"
    );
    assert_eq!(
        source.owner,
        Some(owner_from.clone()),
        "a refused rekey changed its source's owner"
    );
    assert_eq!(
        source.max_age, None,
        "a refused rekey changed its source's override"
    );
    assert_lifetime(source.ttl, HOUR, "the source's ttl after a refused rekey");
    let target = load(store, &to, "the target of a refused rekey").await;
    assert_eq!(
        *target.fields,
        fields(&[("x", "1")]),
        "a refused rekey changed the session under its target key"
    );
    assert_eq!(
        target.owner,
        Some(owner_to.clone()),
        "a refused rekey changed its target's owner"
    );
    assert_eq!(
        target.max_age, None,
        "a refused rekey changed its target's override"
    );
    assert_lifetime(target.ttl, DAY, "the target's ttl after a refused rekey");
    assert_owned(
        store,
        &owner_from,
        &[&from],
        "the source's owner after a refused rekey",
    )
    .await;
    assert_owned(
        store,
        &owner_to,
        &[&to],
        "the target's owner after a refused rekey",
    )
    .await;
    assert_owned(store, &owner_change, &[], "the owner a refused rekey set").await;
}

async fn rekey_onto_an_expired_key_replaces_it(store: &dyn SessionStore) {
    let (from, to) = (key("onto-expired-from"), key("onto-expired-to"));
    let (owner, stale_owner) = (owner("onto-expired"), owner("onto-expired-stale"));
    let stale = ChangeSet {
        owner: Update::Set(Some(stale_owner.clone())),
        ..changes(&[("old", "1"), ("a", "old")], &[], BLINK)
    };
    create_short_lived(store, &to, stale).await;
    let create = ChangeSet {
        owner: Update::Set(Some(owner.clone())),
        ..changes(&[("a", "1")], &[], HOUR)
    };
    created(store, &from, &create, "create the source").await;
    wait_for_expiry().await;
    moved(
        store,
        &from,
        &to,
        &changes(&[], &[], HOUR),
        "rekey onto an expired session",
    )
    .await;
    let record = load(store, &to, "a session moved onto an expired one").await;
    assert_eq!(
        *record.fields,
        fields(&[("a", "1")]),
        "rekey onto an expired session revived its fields"
    );
    assert_eq!(
        record.owner,
        Some(owner.clone()),
        "rekey onto an expired session took its owner"
    );
    assert_owned(
        store,
        &owner,
        &[&to],
        "the owner of a session moved onto an expired one",
    )
    .await;
    assert_owned(
        store,
        &stale_owner,
        &[],
        "the owner of an expired session replaced by a rekey",
    )
    .await;
}

async fn rekey_of_a_session_that_is_not_live_is_gone_and_creates_nothing(store: &dyn SessionStore) {
    for case in NotLive::ALL {
        let (from, to, owner) = (
            key("rekey-gone-from"),
            key("rekey-gone-to"),
            owner("rekey-gone"),
        );
        case.prepare(store, &from).await;
        let change = ChangeSet {
            owner: Update::Set(Some(owner.clone())),
            ..changes(&[("a", "1")], &[], HOUR)
        };
        // What the request saw before the session went away.
        let seen = Record {
            fields: Arc::new(fields(&[("a", "0")])),
            ttl: HOUR,
            max_age: None,
            owner: None,
        };
        assert_eq!(
            store
                .rekey(&from, &to, &change, &whole(&seen, &change))
                .await
                .unwrap(),
            Moved::Gone,
            "rekey of a {} session must report Gone",
            case.name()
        );
        assert_eq!(
            store.load(&to).await.unwrap(),
            None,
            "rekey of a {} session created one under the new key",
            case.name()
        );
        assert_eq!(
            store.load(&from).await.unwrap(),
            None,
            "rekey of a {} session brought it back under the old key",
            case.name()
        );
        assert_owned(
            store,
            &owner,
            &[],
            &format!("the owner a refused rekey of a {} session set", case.name()),
        )
        .await;
    }
}

async fn a_moved_session_is_gone_from_its_old_key(store: &dyn SessionStore) {
    let (from, to, elsewhere) = (key("moved-from"), key("moved-to"), key("moved-elsewhere"));
    created(store, &from, &changes(&[("a", "1")], &[], HOUR), "create").await;
    moved(store, &from, &to, &changes(&[], &[], HOUR), "rekey").await;
    assert_eq!(
        store
            .update(&from, &changes(&[("late", "1")], &[], HOUR))
            .await
            .unwrap(),
        Updated::Gone,
        "update of a key a session was moved away from must report Gone"
    );
    let record = load(store, &to, "a moved session").await;
    let change = changes(&[("again", "1")], &[], HOUR);
    assert_eq!(
        store
            .rekey(&from, &elsewhere, &change, &whole(&record, &change))
            .await
            .unwrap(),
        Moved::Gone,
        "a second rekey of a key a session was moved away from must report Gone"
    );
    assert_eq!(
        store.load(&elsewhere).await.unwrap(),
        None,
        "a second rekey of the old key created a session"
    );
    assert_eq!(
        *load(store, &to, "a moved session").await.fields,
        fields(&[("a", "1")]),
        "writes to the old key reached the moved session"
    );
}

// ---------------------------------------------------------------------------
// Deleting

async fn delete_removes_the_session_and_a_missing_key_is_fine(store: &dyn SessionStore) {
    let key = key("delete");
    created(store, &key, &changes(&[("a", "1")], &[], HOUR), "create").await;
    store.delete(&key).await.unwrap();
    assert_eq!(
        store.load(&key).await.unwrap(),
        None,
        "a deleted session still loads"
    );
    store
        .delete(&key)
        .await
        .expect("deleting a deleted session must not fail");
    store
        .delete(&self::key("never-written"))
        .await
        .expect("deleting a missing session must not fail");
}

// ---------------------------------------------------------------------------
// Owners

async fn list_owned_reports_exactly_the_owners_live_sessions(store: &dyn SessionStore) {
    let (owner, other) = (owner("list"), owner("list-other"));
    let owned = [key("list-1"), key("list-2"), key("list-3")];
    for key in &owned {
        created(
            store,
            key,
            &owned_by(&owner, HOUR),
            "create an owned session",
        )
        .await;
    }
    let others = key("list-others");
    created(
        store,
        &others,
        &owned_by(&other, HOUR),
        "create another owner's session",
    )
    .await;
    created(
        store,
        &key("list-unowned"),
        &changes(&[("a", "1")], &[], HOUR),
        "create",
    )
    .await;
    create_short_lived(store, &key("list-expired"), owned_by(&owner, BLINK)).await;
    wait_for_expiry().await;

    let listed = store.list_owned(&owner).await.unwrap();
    assert_eq!(
        keys_of(&listed),
        set_of(&owned.iter().collect::<Vec<_>>()),
        "list_owned must report exactly the owner's live sessions"
    );
    assert_eq!(
        listed.len(),
        owned.len(),
        "list_owned reported a session twice: {listed:?}"
    );
    for session in &listed {
        assert_sane_times(session, HOUR);
    }
    assert_owned(store, &other, &[&others], "another owner").await;
    assert_owned(
        store,
        &self::owner("list-nobody"),
        &[],
        "an owner without sessions",
    )
    .await;

    // A write moves `updated_at`, not `created_at`.
    let before = listed.iter().find(|s| s.key == owned[0]).unwrap().clone();
    updated(
        store,
        &owned[0],
        &changes(&[("b", "1")], &[], HOUR),
        "update",
    )
    .await;
    let after = store
        .list_owned(&owner)
        .await
        .unwrap()
        .into_iter()
        .find(|s| s.key == owned[0])
        .expect("an updated session left its owner's list");
    assert_eq!(
        after.created_at, before.created_at,
        "update moved created_at"
    );
    assert!(
        after.updated_at >= before.updated_at,
        "update moved updated_at back: {before:?} then {after:?}"
    );
    assert_sane_times(&after, HOUR);
}

async fn rekey_keeps_the_session_in_its_owners_list_under_the_new_key(store: &dyn SessionStore) {
    let (owner, next_owner) = (owner("rekey-list"), owner("rekey-list-next"));
    let (from, to, again, sibling) = (
        key("rekey-list-from"),
        key("rekey-list-to"),
        key("rekey-list-again"),
        key("rekey-list-sibling"),
    );
    created(store, &from, &owned_by(&owner, HOUR), "create").await;
    created(store, &sibling, &owned_by(&owner, HOUR), "create a sibling").await;
    moved(store, &from, &to, &changes(&[], &[], HOUR), "rekey").await;
    assert_owned(
        store,
        &owner,
        &[&to, &sibling],
        "the owner after a rekey (new key only)",
    )
    .await;

    let change = ChangeSet {
        owner: Update::Set(Some(next_owner.clone())),
        ..changes(&[], &[], HOUR)
    };
    moved(store, &to, &again, &change, "rekey changing the owner").await;
    assert_owned(
        store,
        &owner,
        &[&sibling],
        "the old owner after a rekey that changed the owner",
    )
    .await;
    assert_owned(
        store,
        &next_owner,
        &[&again],
        "the new owner after a rekey that changed it",
    )
    .await;
    assert_eq!(
        load(store, &again, "a session moved to a new owner")
            .await
            .owner,
        Some(next_owner),
        "rekey did not apply the owner change"
    );
}

async fn deleted_and_expired_sessions_leave_their_owners_list(store: &dyn SessionStore) {
    let owner = owner("leave");
    let (deleted, expiring, staying) = (
        key("leave-deleted"),
        key("leave-expiring"),
        key("leave-staying"),
    );
    for key in [&deleted, &expiring, &staying] {
        created(
            store,
            key,
            &owned_by(&owner, HOUR),
            "create an owned session",
        )
        .await;
    }
    assert_owned(store, &owner, &[&deleted, &expiring, &staying], "the owner").await;
    store.delete(&deleted).await.unwrap();
    assert_owned(
        store,
        &owner,
        &[&expiring, &staying],
        "the owner after a delete",
    )
    .await;
    let expire = ChangeSet {
        max_age: Update::Set(Some(BLINK)),
        ..changes(&[], &[], HOUR)
    };
    updated(store, &expiring, &expire, "shortening a session to a blink").await;
    wait_for_expiry().await;
    assert_owned(
        store,
        &owner,
        &[&staying],
        "the owner after a session expired",
    )
    .await;
}

async fn changing_the_owner_moves_the_session_between_lists(store: &dyn SessionStore) {
    let (first, second) = (owner("change-first"), owner("change-second"));
    let key = key("change-owner");
    created(store, &key, &owned_by(&first, HOUR), "create").await;
    let to_second = ChangeSet {
        owner: Update::Set(Some(second.clone())),
        ..changes(&[], &[], HOUR)
    };
    updated(store, &key, &to_second, "update changing the owner").await;
    assert_owned(store, &first, &[], "the old owner after an owner change").await;
    assert_owned(
        store,
        &second,
        &[&key],
        "the new owner after an owner change",
    )
    .await;
    assert_eq!(
        load(store, &key, "a session with a new owner").await.owner,
        Some(second.clone())
    );

    let unbind = ChangeSet {
        owner: Update::Set(None),
        ..changes(&[], &[], HOUR)
    };
    updated(store, &key, &unbind, "update clearing the owner").await;
    assert_owned(
        store,
        &second,
        &[],
        "the owner after the session was unbound",
    )
    .await;
    assert_eq!(
        load(store, &key, "an unbound session").await.owner,
        None,
        "Set(None) did not unbind"
    );

    updated(
        store,
        &key,
        &owned_by(&first, HOUR),
        "update binding an unbound session",
    )
    .await;
    assert_owned(
        store,
        &first,
        &[&key],
        "the owner of a session bound by an update",
    )
    .await;
}

async fn delete_owned_deletes_every_session_of_the_owner_and_counts_them(store: &dyn SessionStore) {
    let (owner, other) = (owner("delete-owned"), owner("delete-owned-other"));
    let owned = [
        key("delete-owned-1"),
        key("delete-owned-2"),
        key("delete-owned-3"),
    ];
    for key in &owned {
        created(
            store,
            key,
            &owned_by(&owner, HOUR),
            "create an owned session",
        )
        .await;
    }
    let others = key("delete-owned-others");
    created(
        store,
        &others,
        &owned_by(&other, HOUR),
        "create another owner's session",
    )
    .await;
    let unowned = key("delete-owned-unowned");
    created(
        store,
        &unowned,
        &changes(&[("a", "1")], &[], HOUR),
        "create",
    )
    .await;

    assert_eq!(
        store.delete_owned(&owner, None).await.unwrap(),
        3,
        "delete_owned must count the sessions it deleted"
    );
    for key in &owned {
        assert_eq!(
            store.load(key).await.unwrap(),
            None,
            "delete_owned left {key} behind"
        );
    }
    assert_owned(store, &owner, &[], "the owner after delete_owned").await;
    load(store, &others, "another owner's session after delete_owned").await;
    load(store, &unowned, "an unowned session after delete_owned").await;
    assert_owned(
        store,
        &other,
        &[&others],
        "another owner after delete_owned",
    )
    .await;
    assert_eq!(
        store.delete_owned(&owner, None).await.unwrap(),
        0,
        "delete_owned of an owner without sessions counted some"
    );
}

async fn delete_owned_keeps_the_session_it_is_told_to_keep(store: &dyn SessionStore) {
    let (owner, other) = (owner("keep"), owner("keep-other"));
    let owned = [key("keep-1"), key("keep-2"), key("keep-3")];
    for key in &owned {
        created(
            store,
            key,
            &owned_by(&owner, HOUR),
            "create an owned session",
        )
        .await;
    }
    assert_eq!(
        store.delete_owned(&owner, Some(&owned[1])).await.unwrap(),
        2,
        "delete_owned with a session to keep must count the others"
    );
    assert_owned(
        store,
        &owner,
        &[&owned[1]],
        "the owner after delete_owned keeping one",
    )
    .await;
    assert_eq!(
        *load(store, &owned[1], "the kept session").await.fields,
        fields(&[("owned", "1")]),
        "delete_owned changed the session it kept"
    );

    // A key to keep that is not the owner's protects nothing of the owner's.
    let others = key("keep-others");
    created(
        store,
        &others,
        &owned_by(&other, HOUR),
        "create another owner's session",
    )
    .await;
    assert_eq!(
        store.delete_owned(&owner, Some(&others)).await.unwrap(),
        1,
        "delete_owned keeping another owner's session must delete all of the owner's"
    );
    load(
        store,
        &others,
        "another owner's session named as the one to keep",
    )
    .await;
}

// ---------------------------------------------------------------------------
// Concurrency

async fn concurrent_updates_of_different_fields_all_survive(racers: Racers<'_>) {
    let store = racers.store();
    let key = key("race-fields");
    created(store, &key, &changes(&[("base", "0")], &[], HOUR), "create").await;
    let racing = key.clone();
    racers
        .race(TASKS, move |store, task| {
            let key = racing.clone();
            Box::pin(async move {
                for round in 0..ROUNDS {
                    let value = round.to_string();
                    let change = changes(
                        &[
                            (task_field(task, None), &value),
                            (task_field(task, Some(round)), "x"),
                        ],
                        &[],
                        HOUR,
                    );
                    let outcome = store.update(&key, &change).await.unwrap();
                    assert!(
                        matches!(outcome, Updated::Written(_)),
                        "task {task}, round {round}: a concurrent update found the session gone"
                    );
                    tokio::task::yield_now().await;
                }
            })
        })
        .await;
    let record = load(store, &key, "a session updated concurrently").await;
    let mut expected = fields(&[("base", "0")]);
    let last = (ROUNDS - 1).to_string();
    for task in 0..TASKS {
        expected.insert(task_field(task, None).into(), Bytes::from(last.clone()));
        for round in 0..ROUNDS {
            expected.insert(
                task_field(task, Some(round)).into(),
                Bytes::from_static(b"x"),
            );
        }
    }
    let missing: BTreeSet<_> = expected
        .iter()
        .filter(|(name, value)| record.fields.get(*name) != Some(*value))
        .map(|(name, _)| name.to_string())
        .collect();
    let unexpected: BTreeSet<_> = record
        .fields
        .keys()
        .filter(|name| !expected.contains_key(*name))
        .map(|name| name.to_string())
        .collect();
    assert!(
        missing.is_empty() && unexpected.is_empty(),
        "{} of {} fields written by concurrent updates of different fields were lost or wrong \
         (first few: {:?}); fields nobody wrote: {unexpected:?}",
        missing.len(),
        expected.len(),
        missing.iter().take(8).collect::<Vec<_>>()
    );
}

async fn concurrent_writes_to_one_field_leave_one_of_the_written_values(racers: Racers<'_>) {
    let store = racers.store();
    let key = key("race-one-field");
    created(
        store,
        &key,
        &changes(&[("shared", "initial")], &[], HOUR),
        "create",
    )
    .await;
    let racing = key.clone();
    // The last task only reads, all along.
    racers
        .race(TASKS + 1, move |store, task| {
            let key = racing.clone();
            Box::pin(async move {
                for round in 0..ROUNDS {
                    if task == TASKS {
                        let record = store.load(&key).await.unwrap().unwrap_or_else(|| {
                            panic!("round {round}: a session being written concurrently did not load")
                        });
                        let shared = record.fields.get("shared").unwrap_or_else(|| {
                            panic!("round {round}: a field being written concurrently was missing")
                        });
                        assert!(
                            shared.as_ref() == b"initial" || written_value(shared).is_some(),
                            "round {round}: a field being written concurrently read {shared:?}, which nobody wrote"
                        );
                    } else {
                        let value = format!("{task}-{round}");
                        let change = changes(
                            &[("shared", &value), (task_field(task, None), &round.to_string())],
                            &[],
                            HOUR,
                        );
                        let outcome = store.update(&key, &change).await.unwrap();
                        assert!(
                            matches!(outcome, Updated::Written(_)),
                            "task {task}, round {round}: a concurrent update found the session gone"
                        );
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .await;
    let record = load(store, &key, "a session written concurrently").await;
    let shared = record
        .fields
        .get("shared")
        .expect("the field written concurrently vanished");
    // Each task writes its rounds in order, so the last write of all is some
    // task's last round.
    assert!(
        matches!(written_value(shared), Some((_, round)) if round == ROUNDS - 1),
        "concurrent writes to one field left {shared:?}, not one task's last write"
    );
    for task in 0..TASKS {
        assert_eq!(
            record.fields.get(task_field(task, None)),
            Some(&Bytes::from((ROUNDS - 1).to_string())),
            "task {task}'s own field lost a write while others wrote the shared field"
        );
    }
}

async fn concurrent_creates_on_one_key_have_exactly_one_winner(racers: Racers<'_>) {
    let store = racers.store();
    for race in 0..RACES {
        let key = key("race-create");
        let owners: Arc<Vec<Arc<str>>> =
            Arc::new((0..TASKS).map(|_| owner("race-create")).collect());
        let (racing, racing_owners) = (key.clone(), Arc::clone(&owners));
        let outcomes = racers
            .race(TASKS, move |store, task| {
                let (key, owners) = (racing.clone(), Arc::clone(&racing_owners));
                Box::pin(async move {
                    let change = ChangeSet {
                        owner: Update::Set(Some(owners[task].clone())),
                        ..changes(&[("winner", &task.to_string())], &[], HOUR)
                    };
                    store.create(&key, &change).await.unwrap()
                })
            })
            .await;
        let winners: Vec<usize> = (0..TASKS)
            .filter(|&task| matches!(outcomes[task], Created::Written(_)))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "race {race}: {} concurrent creates of one key won (exactly one must, the rest get KeyTaken): {outcomes:?}",
            winners.len()
        );
        let winner = winners[0];
        let record = load(store, &key, "a session created by racing creates").await;
        assert_eq!(
            *record.fields,
            fields(&[("winner", &winner.to_string())]),
            "race {race}: the session is not the winning create's"
        );
        assert_eq!(
            record.owner,
            Some(owners[winner].clone()),
            "race {race}: the owner is not the winner's"
        );
        for (task, owner) in owners.iter().enumerate() {
            let expected: &[&StoreKey] = if task == winner { &[&key] } else { &[] };
            assert_owned(
                store,
                owner,
                expected,
                &format!("race {race}: the owner of create {task}"),
            )
            .await;
        }
    }
}

async fn concurrent_rekeys_of_one_session_have_exactly_one_winner(racers: Racers<'_>) {
    let store = racers.store();
    for race in 0..RACES {
        let (from, owner) = (key("race-rekey-from"), owner("race-rekey"));
        let create = ChangeSet {
            owner: Update::Set(Some(owner.clone())),
            ..changes(&[("a", "1")], &[], HOUR)
        };
        created(store, &from, &create, "create").await;
        let seen = load(store, &from, "the session about to be moved").await;
        let targets: Arc<Vec<StoreKey>> =
            Arc::new((0..TASKS).map(|_| key("race-rekey-to")).collect());
        let (racing, racing_targets) = (from.clone(), Arc::clone(&targets));
        let outcomes = racers
            .race(TASKS, move |store, task| {
                let (from, targets, seen) =
                    (racing.clone(), Arc::clone(&racing_targets), seen.clone());
                Box::pin(async move {
                    let change = changes(&[("mover", &task.to_string())], &[], HOUR);
                    store
                        .rekey(&from, &targets[task], &change, &whole(&seen, &change))
                        .await
                        .unwrap()
                })
            })
            .await;
        let winners: Vec<usize> = (0..TASKS)
            .filter(|&task| matches!(outcomes[task], Moved::Written(_)))
            .collect();
        assert_eq!(
            winners.len(),
            1,
            "race {race}: {} concurrent rekeys of one session won (exactly one must, the rest get Gone): {outcomes:?}",
            winners.len()
        );
        assert!(
            outcomes
                .iter()
                .all(|outcome| matches!(outcome, Moved::Written(_) | Moved::Gone)),
            "race {race}: a rekey onto a fresh key reported KeyTaken: {outcomes:?}"
        );
        let winner = winners[0];
        assert_eq!(
            store.load(&from).await.unwrap(),
            None,
            "race {race}: racing rekeys left the old key"
        );
        for (task, target) in targets.iter().enumerate() {
            let loaded = store.load(target).await.unwrap();
            if task == winner {
                let record = loaded
                    .unwrap_or_else(|| panic!("race {race}: the winning rekey's key is empty"));
                assert_eq!(
                    *record.fields,
                    fields(&[("a", "1"), ("mover", &winner.to_string())]),
                    "race {race}: the moved session is not the winning rekey's"
                );
            } else {
                assert_eq!(
                    loaded, None,
                    "race {race}: a losing rekey (task {task}) forked the session"
                );
            }
        }
        assert_owned(
            store,
            &owner,
            &[&targets[winner]],
            &format!("race {race}: the owner after racing rekeys"),
        )
        .await;
    }
}

async fn an_update_racing_a_delete_never_brings_the_session_back(racers: Racers<'_>) {
    let store = racers.store();
    for round in 0..ROUNDS {
        let key = key("race-delete");
        created(store, &key, &changes(&[("a", "1")], &[], HOUR), "create").await;
        let racing = key.clone();
        racers
            .race(2, move |store, task| {
                let key = racing.clone();
                Box::pin(async move {
                    // Alternate which one goes first.
                    if (task + round) % 2 == 0 {
                        tokio::task::yield_now().await;
                    }
                    if task == 0 {
                        store.delete(&key).await.unwrap();
                    } else {
                        store
                            .update(&key, &changes(&[("late", "1")], &[], HOUR))
                            .await
                            .unwrap();
                    }
                })
            })
            .await;
        assert_eq!(
            store.load(&key).await.unwrap(),
            None,
            "round {round}: an update racing a delete brought the session back"
        );
    }
}

async fn an_update_racing_a_rekey_lands_in_the_moved_session_or_is_gone(racers: Racers<'_>) {
    let store = racers.store();
    for round in 0..ROUNDS {
        let (from, to) = (key("race-move-from"), key("race-move-to"));
        created(store, &from, &changes(&[("a", "1")], &[], HOUR), "create").await;
        let seen = load(store, &from, "the session about to be moved").await;
        let (racing_from, racing_to) = (from.clone(), to.clone());
        let outcomes = racers
            .race(2, move |store, task| {
                let (from, to, seen) = (racing_from.clone(), racing_to.clone(), seen.clone());
                Box::pin(async move {
                    if (task + round) % 2 == 0 {
                        tokio::task::yield_now().await;
                    }
                    if task == 0 {
                        let change = changes(&[("moved", "1")], &[], HOUR);
                        let outcome = store
                            .rekey(&from, &to, &change, &whole(&seen, &change))
                            .await;
                        (Some(outcome.unwrap()), None)
                    } else {
                        let change = changes(&[("late", "1")], &[], HOUR);
                        (None, Some(store.update(&from, &change).await.unwrap()))
                    }
                })
            })
            .await;
        let (rekey, update) = (outcomes[0].0.unwrap(), outcomes[1].1.unwrap());
        assert!(
            matches!(rekey, Moved::Written(_)),
            "round {round}: a rekey racing an update reported {rekey:?}"
        );
        assert_eq!(
            store.load(&from).await.unwrap(),
            None,
            "round {round}: the old key survived a rekey"
        );
        let record = load(store, &to, "a session moved while it was updated").await;
        let expected = match update {
            Updated::Written(_) => fields(&[("a", "1"), ("moved", "1"), ("late", "1")]),
            Updated::Gone => fields(&[("a", "1"), ("moved", "1")]),
        };
        assert_eq!(
            *record.fields, expected,
            "round {round}: an update racing a rekey reported {update:?}, but the moved session disagrees (a written update must move with the session, a gone one must not land)"
        );
    }
}

// ---------------------------------------------------------------------------
// Clean-up

async fn delete_expired_counts_exactly_the_expired_sessions(store: &dyn ExpiredCleanup) {
    // Other checks may have left expired sessions; count from a clean slate.
    store.delete_expired().await.unwrap();
    let owner = owner("cleanup");
    let (expired, owned_expired) = ([key("cleanup-1"), key("cleanup-2")], key("cleanup-owned"));
    let (live, owned_live) = (key("cleanup-live"), key("cleanup-owned-live"));
    for key in &expired {
        create_short_lived(store, key, changes(&[("a", "1")], &[], BLINK)).await;
    }
    create_short_lived(store, &owned_expired, owned_by(&owner, BLINK)).await;
    created(
        store,
        &live,
        &changes(&[("a", "1")], &[], HOUR),
        "create a live session",
    )
    .await;
    created(
        store,
        &owned_live,
        &owned_by(&owner, HOUR),
        "create a live owned session",
    )
    .await;
    wait_for_expiry().await;

    assert_eq!(
        store.delete_expired().await.unwrap(),
        3,
        "delete_expired must count exactly the expired sessions it deleted"
    );
    assert_eq!(
        store.delete_expired().await.unwrap(),
        0,
        "a second delete_expired found more expired sessions"
    );
    load(store, &live, "a live session after delete_expired").await;
    load(
        store,
        &owned_live,
        "a live owned session after delete_expired",
    )
    .await;
    assert_owned(
        store,
        &owner,
        &[&owned_live],
        "the owner after delete_expired",
    )
    .await;
    for key in expired.iter().chain([&owned_expired]) {
        assert_eq!(
            store.update(key, &ChangeSet::touch(HOUR)).await.unwrap(),
            Updated::Gone,
            "an update revived a session delete_expired deleted"
        );
    }
    created(
        store,
        &owned_expired,
        &changes(&[("b", "1")], &[], HOUR),
        "create under a key delete_expired freed",
    )
    .await;
    assert_eq!(
        *load(
            store,
            &owned_expired,
            "a session under a key delete_expired freed"
        )
        .await
        .fields,
        fields(&[("b", "1")]),
        "a session deleted by delete_expired came back"
    );
}

// ---------------------------------------------------------------------------
// Racing

/// A future one racing task runs, borrowing the store.
type Task<'s, T> = Pin<Box<dyn Future<Output = T> + Send + 's>>;

/// How the concurrency checks run their tasks.
#[derive(Clone, Copy)]
enum Racers<'a> {
    /// All polled in turn on the calling task: their requests overlap
    /// wherever the store awaits (a network round trip, a lock).
    Interleaved(&'a dyn SessionStore),
    /// Each on its own tokio task, in parallel on a multi-thread runtime.
    Spawned(&'a Arc<dyn SessionStore>),
}

impl Racers<'_> {
    fn store(&self) -> &dyn SessionStore {
        match *self {
            Self::Interleaved(store) => store,
            Self::Spawned(store) => &**store,
        }
    }

    /// Runs `task(store, i)` for every `i` in `0..n` at once, and returns
    /// their outputs in the order of `i`.
    async fn race<T, F>(&self, n: usize, task: F) -> Vec<T>
    where
        T: Send + 'static,
        F: for<'s> Fn(&'s dyn SessionStore, usize) -> Task<'s, T> + Send + Sync + 'static,
    {
        match *self {
            Self::Interleaved(store) => join_all((0..n).map(|i| task(store, i)).collect()).await,
            Self::Spawned(store) => {
                let task = Arc::new(task);
                let handles: Vec<_> = (0..n)
                    .map(|i| {
                        let (store, task) = (Arc::clone(store), Arc::clone(&task));
                        tokio::spawn(async move { task(&*store, i).await })
                    })
                    .collect();
                let mut outputs = Vec::with_capacity(n);
                for handle in handles {
                    match handle.await {
                        Ok(output) => outputs.push(output),
                        Err(error) if error.is_panic() => {
                            std::panic::resume_unwind(error.into_panic())
                        }
                        Err(error) => panic!("a racing task failed: {error}"),
                    }
                }
                outputs
            }
        }
    }
}

/// Polls every task until all are done; their outputs in order.
async fn join_all<T>(mut tasks: Vec<Task<'_, T>>) -> Vec<T> {
    let mut outputs: Vec<Option<T>> = tasks.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (task, output) in tasks.iter_mut().zip(outputs.iter_mut()) {
            if output.is_none() {
                match task.as_mut().poll(cx) {
                    Poll::Ready(value) => *output = Some(value),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            Poll::Pending
        } else {
            Poll::Ready(())
        }
    })
    .await;
    outputs
        .into_iter()
        .map(|output| output.expect("every task finished"))
        .collect()
}

/// `t{task}`, or `t{task}-r{round}`, as the `&'static str` a change set takes.
fn task_field(task: usize, round: Option<usize>) -> &'static str {
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    let names = NAMES.get_or_init(|| {
        (0..TASKS)
            .flat_map(|task| {
                (0..=ROUNDS).map(move |round| match round {
                    ROUNDS => format!("t{task}"),
                    round => format!("t{task}-r{round}"),
                })
            })
            .map(|name| &*Box::leak(name.into_boxed_str()))
            .collect()
    });
    names[task * (ROUNDS + 1) + round.unwrap_or(ROUNDS)]
}

/// The task and round of a value `{task}-{round}` one of the racing writers wrote.
fn written_value(value: &Bytes) -> Option<(usize, usize)> {
    let text = std::str::from_utf8(value).ok()?;
    let (task, round) = text.split_once('-')?;
    let (task, round) = (task.parse().ok()?, round.parse().ok()?);
    (task < TASKS && round < ROUNDS).then_some((task, round))
}

// ---------------------------------------------------------------------------
// Helpers

/// The ways a key can hold no live session.
#[derive(Clone, Copy)]
enum NotLive {
    Missing,
    Deleted,
    Expired,
}

impl NotLive {
    const ALL: [Self; 3] = [Self::Missing, Self::Deleted, Self::Expired];

    fn name(self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Deleted => "deleted",
            Self::Expired => "expired",
        }
    }

    /// Leaves `key` in this state.
    async fn prepare(self, store: &dyn SessionStore, key: &StoreKey) {
        match self {
            Self::Missing => {}
            Self::Deleted => {
                created(store, key, &changes(&[("a", "1")], &[], HOUR), "create").await;
                store.delete(key).await.unwrap();
            }
            Self::Expired => {
                create_short_lived(store, key, changes(&[("a", "1")], &[], BLINK)).await;
                wait_for_expiry().await;
            }
        }
    }
}

static NEXT: AtomicU64 = AtomicU64::new(0);

fn unique(kind: &str, name: &str) -> String {
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!("conformance-{kind}-{name}-{nanos}-{n}")
}

fn key(name: &str) -> StoreKey {
    StoreKey::new(unique("key", name))
}

fn owner(name: &str) -> Arc<str> {
    unique("owner", name).into()
}

/// A change set that sets and removes fields and changes no setting.
fn changes(
    set: &[(&'static str, &str)],
    remove: &[&'static str],
    default_max_age: Duration,
) -> ChangeSet {
    ChangeSet {
        set: set
            .iter()
            .map(|(name, value)| (*name, Bytes::copy_from_slice(value.as_bytes())))
            .collect(),
        remove: remove.to_vec(),
        max_age: Update::Keep,
        default_max_age,
        owner: Update::Keep,
    }
}

/// A change set binding the session to `owner`, with one field.
fn owned_by(owner: &Arc<str>, default_max_age: Duration) -> ChangeSet {
    ChangeSet {
        owner: Update::Set(Some(owner.clone())),
        ..changes(&[("owned", "1")], &[], default_max_age)
    }
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(name, value)| (Arc::from(*name), Bytes::copy_from_slice(value.as_bytes())))
        .collect()
}

/// The session a request that loaded `seen` and made `changes` sees: what a
/// store that cannot move a session atomically writes under the new key.
fn whole(seen: &Record, changes: &ChangeSet) -> Record {
    let mut fields = (*seen.fields).clone();
    for (name, value) in &changes.set {
        fields.insert(Arc::from(*name), value.clone());
    }
    for name in &changes.remove {
        fields.remove(*name);
    }
    let extended = changes.max_age_after(seen.max_age);
    let ttl = match changes.max_age {
        Update::Keep => extended.max(seen.ttl),
        Update::Set(_) => extended,
    };
    Record {
        fields: Arc::new(fields),
        ttl,
        max_age: changes.max_age.applied_to(seen.max_age),
        owner: changes.owner.applied_to(seen.owner.clone()),
    }
}

async fn created(
    store: &dyn SessionStore,
    key: &StoreKey,
    changes: &ChangeSet,
    what: &str,
) -> Expiry {
    match store.create(key, changes).await.unwrap() {
        Created::Written(expiry) => expiry,
        Created::KeyTaken => panic!("{what}: create on a fresh key reported KeyTaken"),
    }
}

/// Creates a session that is over once [`wait_for_expiry`] returns.
async fn create_short_lived(store: &dyn SessionStore, key: &StoreKey, changes: ChangeSet) {
    let changes = ChangeSet {
        default_max_age: BLINK,
        ..changes
    };
    created(store, key, &changes, "create a short-lived session").await;
}

async fn wait_for_expiry() {
    tokio::time::sleep(EXPIRY_WAIT).await;
}

async fn updated(
    store: &dyn SessionStore,
    key: &StoreKey,
    changes: &ChangeSet,
    what: &str,
) -> Expiry {
    match store.update(key, changes).await.unwrap() {
        Updated::Written(expiry) => expiry,
        Updated::Gone => panic!("{what}: update of a live session reported Gone"),
    }
}

/// Moves the live session under `from` to the fresh key `to`.
async fn moved(
    store: &dyn SessionStore,
    from: &StoreKey,
    to: &StoreKey,
    changes: &ChangeSet,
    what: &str,
) -> Expiry {
    let seen = load(store, from, what).await;
    match store
        .rekey(from, to, changes, &whole(&seen, changes))
        .await
        .unwrap()
    {
        Moved::Written(expiry) => expiry,
        outcome => panic!("{what}: rekey of a live session onto a fresh key reported {outcome:?}"),
    }
}

/// Loads a session that must be live.
async fn load(store: &dyn SessionStore, key: &StoreKey, what: &str) -> Record {
    store
        .load(key)
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("{what}: a live session did not load"))
}

/// `actual` is `expected`, give or take the time the test took.
fn assert_lifetime(actual: Duration, expected: Duration, what: &str) {
    assert!(
        actual <= expected + ROUNDING && actual + SLACK >= expected,
        "{what}: ttl {actual:?}, expected about {expected:?}"
    );
}

/// What a write reported agrees with what the next load reports.
fn assert_agrees(expiry: Expiry, record: &Record, what: &str) {
    assert_eq!(
        expiry.max_age, record.max_age,
        "{what}: the write reported another override than the next load"
    );
    let gap = expiry.ttl.abs_diff(record.ttl);
    assert!(
        gap <= AGREEMENT,
        "{what}: the write reported ttl {:?}, the next load {:?}",
        expiry.ttl,
        record.ttl
    );
}

fn set_of(keys: &[&StoreKey]) -> BTreeSet<String> {
    keys.iter().map(|key| key.as_str().to_owned()).collect()
}

fn keys_of(sessions: &[OwnedSession]) -> BTreeSet<String> {
    sessions
        .iter()
        .map(|session| session.key.as_str().to_owned())
        .collect()
}

/// `list_owned(owner)` reports exactly `keys`, each once.
async fn assert_owned(store: &dyn SessionStore, owner: &str, keys: &[&StoreKey], what: &str) {
    let listed = store.list_owned(owner).await.unwrap();
    assert_eq!(
        keys_of(&listed),
        set_of(keys),
        "{what}: list_owned reported other sessions than expected"
    );
    assert_eq!(
        listed.len(),
        keys.len(),
        "{what}: list_owned reported a session twice: {listed:?}"
    );
}

/// `created_at <= updated_at < expires_at`, and the session lives about
/// `lifetime` from its last write.
fn assert_sane_times(session: &OwnedSession, lifetime: Duration) {
    assert!(
        session.created_at <= session.updated_at && session.updated_at < session.expires_at,
        "list_owned reported times out of order: {session:?}"
    );
    let lives = session
        .expires_at
        .duration_since(session.updated_at)
        .unwrap_or_default();
    assert_lifetime(lives, lifetime, "expires_at - updated_at in list_owned");
}
