//! The behaviour every [`SessionStore`] must have, checked against a real
//! backend: the conformance suite (feature `conformance`). A store's tests,
//! a third party's included, call [`run`] with the store, [`run_cleanup`] if
//! it implements [`ExpiredCleanup`], and [`run_parallel`] on a multi-thread
//! runtime to race its writes on several threads. A check that fails panics
//! with a message that names the broken rule, as a test assertion does.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use session::store::conformance;
//! use session::MemoryStore;
//!
//! conformance::run(&MemoryStore::new()).await;
//! conformance::run_cleanup(&MemoryStore::new()).await;
//! # }
//! ```
//!
//! [`run_revoke_many`] checks that revoking an owner with many sessions
//! ends within the store timeout.
//!
//! Keys and owners are unique per call, so a shared server is fine. Expired
//! sessions are made by writing a lifetime of a millisecond and waiting a few
//! of real time: stores use their own clock, so the suite cannot run under
//! tokio's paused time. The whole suite takes well under a second against an
//! in-process store.

use std::collections::BTreeSet;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::Poll;
use std::time::{Duration, SystemTime};

use crate::store::{
    ChangeSet, Created, ExpiredCleanup, Expiry, Fields, Moved, OwnedSession, Record, SessionStore,
    Update, Updated, MAX_LIFETIME,
};
use crate::StoreKey;
use bytes::Bytes;

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
    a_lifetime_of_zero_or_under_a_millisecond_ends_the_session(store).await;
    an_override_outlives_a_shorter_default(store).await;
    a_shorter_default_never_cuts_a_session_short(store).await;
    only_a_max_age_change_shortens_a_session(store).await;
    an_update_that_saw_an_older_override_never_outlives_the_new_one(store).await;
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

/// Checks that "log out everywhere" works for an owner with `sessions`
/// sessions (10,000 is what a busy API client or a bot can pile up): through
/// a [`SessionManager`](crate::SessionManager) with the default
/// [`store_timeout`](crate::SessionConfig::store_timeout), revoking them all
/// must end every one of them within that limit.
pub async fn run_revoke_many(store: Arc<dyn SessionStore>, sessions: usize) {
    /// Creates in flight at once.
    const AT_ONCE: usize = 64;
    let owner = owner("revoke-many");
    let keys: Vec<StoreKey> = (0..sessions).map(|_| key("revoke-many")).collect();
    for batch in keys.chunks(AT_ONCE) {
        let creates = batch.iter().map(|key| {
            let (store, owner) = (Arc::clone(&store), Arc::clone(&owner));
            let key = key.clone();
            tokio::spawn(async move { created(&*store, &key, &owned_by(&owner, HOUR)).await })
        });
        for create in creates.collect::<Vec<_>>() {
            create.await.expect("a create of an owned session");
        }
    }
    let manager = crate::SessionManager::new(Arc::clone(&store), Default::default())
        .expect("the default configuration");
    let revoked = manager.revoke_all(&owner).await.unwrap_or_else(|error| {
        panic!("revoking {sessions} sessions of one owner failed: {error}")
    });
    assert_eq!(revoked, sessions as u64, "revoke_all miscounted");
    for key in keys.iter().step_by(sessions.div_ceil(100).max(1)) {
        assert_gone(&*store, key, "a session revoke_all reported ended").await;
    }
    assert_owned(&*store, &owner, &[], "the owner after revoke_all").await;
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
    delete_owned_racing_rekeys_ends_every_session_of_the_owner(racers).await;
}

// ---------------------------------------------------------------------------
// Loading and creating

async fn unknown_keys_load_nothing(store: &dyn SessionStore) {
    let what = "a key nobody wrote loaded a session";
    assert_gone(store, &key("unknown"), what).await;
}

async fn create_then_load_returns_the_fields(store: &dyn SessionStore) {
    let create = changes(&[("a", "1"), ("b", "2")], &[], HOUR);
    let (expiry, record) = create_and_load(store, &key("create"), &create).await;
    assert_lifetime(expiry.ttl, HOUR, "the ttl create reports");
    assert_eq!(expiry.max_age, None, "create reported an override none set");
    let expected = expect(&[("a", "1"), ("b", "2")], HOUR);
    assert_session(&record, &expected, "a created session");
    assert_agrees(expiry, &record, "create");
}

async fn field_values_round_trip_byte_for_byte(store: &dyn SessionStore) {
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
    let (_, record) = create_and_load(store, &key("bytes"), &change).await;
    let expected: Fields = change
        .set
        .iter()
        .map(|(name, value)| (*name, value.clone()))
        .collect();
    assert_eq!(
        *record.fields, expected,
        "field names or values (binary, empty, 64 KiB, dotted, unicode) did not round-trip"
    );
}

async fn create_on_a_live_key_is_refused_and_changes_nothing(store: &dyn SessionStore) {
    let (key, owner, stranger) = (key("taken"), owner("taken"), owner("taken-stranger"));
    let first = changes(&[("a", "1"), ("b", "2")], &[], HOUR).with_owner(&owner);
    created(store, &key, &first).await;
    let second = changes(&[("a", "stranger"), ("c", "3")], &["b"], DAY)
        .with_max_age(Some(THIRTY_DAYS))
        .with_owner(&stranger);
    assert_eq!(
        store.create(&key, &second).await.unwrap(),
        Created::KeyTaken,
        "create on a key holding a live session must report KeyTaken"
    );
    let unchanged = expect(&[("a", "1"), ("b", "2")], HOUR).owner(&owner);
    let what = "a live session a refused create hit (a colliding id must not join it)";
    assert_loads(store, &key, &unchanged, what).await;
    assert_owned(store, &owner, &[&key], "the owner after a refused create").await;
    assert_owned(store, &stranger, &[], "the refused create's owner").await;
}

async fn create_on_an_expired_key_replaces_it_without_reviving_it(store: &dyn SessionStore) {
    let (key, owner) = (key("recreate"), owner("recreate"));
    let old = changes(&[("old", "1"), ("both", "old")], &[], BLINK)
        .with_max_age(Some(BLINK))
        .with_owner(&owner);
    create_expired(store, &key, old).await;
    let new = changes(&[("new", "1"), ("both", "new")], &[], HOUR);
    let (expiry, record) = create_and_load(store, &key, &new).await;
    let what =
        "a session created over an expired one (its fields, override and owner must not revive)";
    let fresh = expect(&[("new", "1"), ("both", "new")], HOUR);
    assert_session(&record, &fresh, what);
    assert_agrees(expiry, &record, "create over an expired session");
    let what = "the owner of an expired session that was replaced";
    assert_owned(store, &owner, &[], what).await;
}

// ---------------------------------------------------------------------------
// Updating

async fn update_merges_field_by_field(store: &dyn SessionStore) {
    let key = key("merge");
    let create = changes(&[("a", "1"), ("b", "2"), ("c", "3")], &[], HOUR);
    created(store, &key, &create).await;
    let change = changes(&[("b", "20"), ("d", "4")], &["a", "never-there"], HOUR);
    let expiry = updated(store, &key, &change, "update").await;
    let record = reload(store, &key, expiry, "update").await;
    assert_eq!(
        *record.fields,
        fields(&[("b", "20"), ("c", "3"), ("d", "4")]),
        "update must set and remove only the fields it names and keep the others"
    );
}

async fn a_session_whose_fields_are_all_removed_stays_live(store: &dyn SessionStore) {
    let (key, owner) = (key("emptied"), owner("emptied"));
    created(store, &key, &one_field(HOUR).with_owner(&owner)).await;
    let remove_all = changes(&[], &["a"], HOUR);
    updated(store, &key, &remove_all, "removing the last field").await;
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
    let touch = ChangeSet::touch(HOUR);
    updated(store, &key, &touch, "touching a session without fields").await;
    let what = "the owner of a session without fields";
    assert_owned(store, &owner, &[&key], what).await;
}

async fn update_of_a_session_that_is_not_live_is_gone_and_creates_nothing(
    store: &dyn SessionStore,
) {
    for case in NotLive::ALL {
        let (key, owner, name) = (key("update-gone"), owner("update-gone"), case.name());
        case.prepare(store, &key).await;
        let change = changes(&[("late", "1")], &[], HOUR)
            .with_max_age(Some(DAY))
            .with_owner(&owner);
        assert_eq!(
            store.update(&key, &change).await.unwrap(),
            Updated::Gone,
            "update of a {name} session must report Gone"
        );
        assert_eq!(
            store.update(&key, &ChangeSet::touch(HOUR)).await.unwrap(),
            Updated::Gone,
            "touch of a {name} session must report Gone"
        );
        let what = format!("update of a {name} session brought it back");
        assert_gone(store, &key, &what).await;
        let what = format!("the owner a refused update of a {name} session set");
        assert_owned(store, &owner, &[], &what).await;
    }
}

async fn touch_extends_the_expiry_and_changes_nothing_else(store: &dyn SessionStore) {
    let (key, owner) = (key("touch"), owner("touch"));
    let create = changes(&[("a", "1"), ("b", "2")], &[], MINUTE).with_owner(&owner);
    created(store, &key, &create).await;
    let expiry = updated(store, &key, &ChangeSet::touch(HOUR), "touch").await;
    assert_lifetime(expiry.ttl, HOUR, "the ttl touch reports");
    let record = reload(store, &key, expiry, "touch").await;
    let extended = expect(&[("a", "1"), ("b", "2")], HOUR).owner(&owner);
    let what = "a touched session (touch must only extend it)";
    assert_session(&record, &extended, what);
}

// ---------------------------------------------------------------------------
// Expiry

async fn expired_sessions_do_not_load(store: &dyn SessionStore) {
    let key = key("expired");
    create_expired(store, &key, one_field(BLINK)).await;
    assert_gone(store, &key, "an expired session loaded").await;
}

/// "Expire now" means gone, however it is written, and nothing written
/// after brings the session back without a lifetime.
async fn a_lifetime_of_zero_or_under_a_millisecond_ends_the_session(store: &dyn SessionStore) {
    for (name, lifetime) in [
        ("zero", Duration::ZERO),
        ("sub-ms", Duration::from_micros(500)),
    ] {
        let key_of = |step: &str| key(&format!("expire-now-{name}-{step}"));
        let what = |step: &str| format!("a session written with a {name} max-age by {step}");

        let created_dead = key_of("create");
        let outcome = store.create(&created_dead, &one_field(lifetime)).await;
        assert!(outcome.is_ok(), "{}: {outcome:?}", what("create"));

        let updated_dead = key_of("update");
        created(store, &updated_dead, &one_field(HOUR)).await;
        let expire = one_field(HOUR).with_max_age(Some(lifetime));
        store.update(&updated_dead, &expire).await.unwrap();

        let (from, moved_dead) = (key_of("rekey-from"), key_of("rekey"));
        created(store, &from, &one_field(HOUR)).await;
        let seen = load(store, &from, "a session about to be moved").await;
        rekey_seen(store, &from, &moved_dead, &expire, &seen).await;

        wait_for_expiry().await;
        for (key, step) in [(&created_dead, "create"), (&updated_dead, "update")] {
            assert_gone(store, key, &what(step)).await;
            // A write that comes later finds nothing to extend.
            let late = changes(&[("late", "1")], &[], HOUR);
            let outcome = store.update(key, &late).await.unwrap();
            assert_eq!(outcome, Updated::Gone, "{} was updated", what(step));
            assert_gone(store, key, &format!("{} and updated", what(step))).await;
        }
        assert_gone(store, &from, "the old key of a moved session").await;
        assert_gone(store, &moved_dead, &what("rekey")).await;
    }
}

async fn an_override_outlives_a_shorter_default(store: &dyn SessionStore) {
    let key = key("override-outlives");
    let create = one_field(DAY).with_max_age(Some(THIRTY_DAYS));
    let expiry = created(store, &key, &create).await;
    let what = "the ttl a create with an override reports";
    assert_lifetime(expiry.ttl, THIRTY_DAYS, what);
    let change = changes(&[("b", "1")], &[], DAY);
    let expiry = updated(store, &key, &change, "update keeping the override").await;
    let what = "the ttl after an update with a 1-day default (it must keep the 30-day override)";
    assert_lifetime(expiry.ttl, THIRTY_DAYS, what);
    let expiry = updated(store, &key, &ChangeSet::touch(DAY), "touch").await;
    let record = reload(store, &key, expiry, "touch of a session with an override").await;
    let what = "the ttl after a touch with a 1-day default (it must keep the 30-day override)";
    assert_lifetime(record.ttl, THIRTY_DAYS, what);
    assert_eq!(
        record.max_age,
        Some(THIRTY_DAYS),
        "an update that kept the override lost it"
    );
}

async fn a_shorter_default_never_cuts_a_session_short(store: &dyn SessionStore) {
    let key = key("never-shrinks");
    created(store, &key, &one_field(HOUR)).await;
    let change = changes(&[("b", "1")], &[], MINUTE);
    let expiry = updated(store, &key, &change, "update with a shorter default").await;
    let what = "the ttl an update with a 1-minute default reports for a 1-hour session \
                (expiry must never move earlier)";
    assert_lifetime(expiry.ttl, HOUR, what);
    let touch = ChangeSet::touch(MINUTE);
    let expiry = updated(store, &key, &touch, "touch with a shorter default").await;
    let record = reload(store, &key, expiry, "touch with a shorter default").await;
    let what = "the ttl after writes with a 1-minute default to a 1-hour session \
                (expiry must never move earlier)";
    assert_lifetime(record.ttl, HOUR, what);
}

async fn only_a_max_age_change_shortens_a_session(store: &dyn SessionStore) {
    let key = key("shortened");
    created(store, &key, &one_field(HOUR)).await;
    let shorten = changes(&[], &[], HOUR).with_max_age(Some(MINUTE));
    let expiry = updated(store, &key, &shorten, "update setting a 1-minute override").await;
    let what = "the ttl after setting a 1-minute override on a 1-hour session (a Set may shorten)";
    assert_lifetime(expiry.ttl, MINUTE, what);
    assert_eq!(expiry.max_age, Some(MINUTE), "the override update reports");
    let record = reload(store, &key, expiry, "update setting an override").await;
    assert_lifetime(record.ttl, MINUTE, "the ttl a shortened session loads with");

    let change = changes(&[("b", "1")], &[], DAY);
    let expiry = updated(store, &key, &change, "update with a longer default").await;
    let what = "the ttl after an update with a 1-day default of a session with a 1-minute \
                override (the override wins)";
    assert_lifetime(expiry.ttl, MINUTE, what);
}

/// A request loads a session with a 30-day override; another shortens it to
/// a minute; the first then commits a plain update. Its change set still
/// carries the override it saw, and a store that extends by that hint must
/// notice the stored one changed: the session lives a minute, not 30 days.
async fn an_update_that_saw_an_older_override_never_outlives_the_new_one(store: &dyn SessionStore) {
    let key = key("stale-override");
    created(
        store,
        &key,
        &one_field(HOUR).with_max_age(Some(THIRTY_DAYS)),
    )
    .await;
    let shorten = changes(&[], &[], HOUR).with_max_age(Some(MINUTE));
    updated(store, &key, &shorten, "update setting a 1-minute override").await;
    let stale = changes(&[("b", "1")], &[], HOUR).having_seen(Some(THIRTY_DAYS));
    let expiry = updated(store, &key, &stale, "update that saw the 30-day override").await;
    let what = "the ttl an update that saw a 30-day override reports after another request \
                shortened it to a minute (the stored override wins)";
    assert_lifetime(expiry.ttl, MINUTE, what);
    assert_eq!(
        expiry.max_age,
        Some(MINUTE),
        "the override that update reports"
    );
    let record = reload(store, &key, expiry, "update that saw an older override").await;
    let what = "the ttl after an update that saw an older, longer override";
    assert_lifetime(record.ttl, MINUTE, what);
}

async fn max_age_override_round_trips_and_set_none_clears_it(store: &dyn SessionStore) {
    let key = key("override");
    let create = one_field(HOUR).with_max_age(Some(THIRTY_DAYS));
    let (expiry, record) = create_and_load(store, &key, &create).await;
    assert_eq!(
        expiry.max_age,
        Some(THIRTY_DAYS),
        "the override create reports"
    );
    assert_eq!(
        record.max_age,
        Some(THIRTY_DAYS),
        "the override did not round-trip"
    );
    let what = "the ttl of a session with an override";
    assert_lifetime(record.ttl, THIRTY_DAYS, what);
    assert_agrees(expiry, &record, "create with an override");

    let clear = changes(&[("b", "1")], &[], HOUR).with_max_age(None);
    let expiry = updated(store, &key, &clear, "update clearing the override").await;
    assert_eq!(
        expiry.max_age, None,
        "the override after Set(None) (update reports)"
    );
    let record = reload(store, &key, expiry, "update clearing the override").await;
    assert_eq!(record.max_age, None, "Set(None) did not clear the override");
    let what = "the ttl after clearing a 30-day override with a 1-hour default (a Set may shorten)";
    assert_lifetime(record.ttl, HOUR, what);
}

async fn lifetimes_are_capped_at_max_lifetime(store: &dyn SessionStore) {
    let thousand_days = Duration::from_secs(1000 * 24 * 60 * 60);
    let create = one_field(HOUR).with_max_age(Some(thousand_days));
    let (expiry, record) = create_and_load(store, &key("capped-override"), &create).await;
    assert_lifetime(expiry.ttl, MAX_LIFETIME, "the ttl of a 1000-day override");
    assert_lifetime(record.ttl, MAX_LIFETIME, "the ttl of a 1000-day override");

    let create = one_field(thousand_days);
    let (_, record) = create_and_load(store, &key("capped-default"), &create).await;
    assert_lifetime(record.ttl, MAX_LIFETIME, "the ttl of a 1000-day default");
}

// ---------------------------------------------------------------------------
// Rekeying

async fn rekey_moves_the_session_with_its_changes_merged(store: &dyn SessionStore) {
    let (from, to, owner) = (key("move-from"), key("move-to"), owner("move"));
    let create = changes(&[("a", "1"), ("b", "2")], &[], MINUTE)
        .with_max_age(Some(2 * HOUR))
        .with_owner(&owner);
    created(store, &from, &create).await;
    let change = changes(&[("b", "3"), ("c", "4")], &["a"], MINUTE);
    let expiry = moved(store, &from, &to, &change, "rekey").await;
    assert_eq!(expiry.max_age, Some(2 * HOUR), "the override rekey reports");
    assert_lifetime(expiry.ttl, 2 * HOUR, "the ttl rekey reports");
    assert_gone(store, &from, "rekey left the session under its old key").await;
    let record = reload(store, &to, expiry, "rekey").await;
    let merged = expect(&[("b", "3"), ("c", "4")], 2 * HOUR)
        .max_age(2 * HOUR)
        .owner(&owner);
    let what = "a moved session (rekey must move fields, override and owner, its changes merged)";
    assert_session(&record, &merged, what);
}

async fn rekey_onto_a_live_key_is_refused_and_changes_neither_session(store: &dyn SessionStore) {
    let (from, to) = (key("clash-from"), key("clash-to"));
    let (owner_from, owner_to, owner_change) = (
        owner("clash-from"),
        owner("clash-to"),
        owner("clash-change"),
    );
    created(store, &from, &one_field(HOUR).with_owner(&owner_from)).await;
    let target = changes(&[("x", "1")], &[], DAY).with_owner(&owner_to);
    created(store, &to, &target).await;
    let change = changes(&[("a", "2")], &["x"], HOUR)
        .with_max_age(Some(THIRTY_DAYS))
        .with_owner(&owner_change);
    let seen = load(store, &from, "the source").await;
    assert_eq!(
        rekey_seen(store, &from, &to, &change, &seen).await,
        Moved::KeyTaken,
        "rekey onto a key holding a live session must report KeyTaken"
    );
    let source = expect(&[("a", "1")], HOUR).owner(&owner_from);
    assert_loads(store, &from, &source, "the source of a refused rekey").await;
    let target = expect(&[("x", "1")], DAY).owner(&owner_to);
    assert_loads(store, &to, &target, "the target of a refused rekey").await;
    let what = "the source's owner after a refused rekey";
    assert_owned(store, &owner_from, &[&from], what).await;
    let what = "the target's owner after a refused rekey";
    assert_owned(store, &owner_to, &[&to], what).await;
    assert_owned(store, &owner_change, &[], "the owner a refused rekey set").await;
}

async fn rekey_onto_an_expired_key_replaces_it(store: &dyn SessionStore) {
    let (from, to) = (key("onto-expired-from"), key("onto-expired-to"));
    let (owner, stale_owner) = (owner("onto-expired"), owner("onto-expired-stale"));
    let stale = changes(&[("old", "1"), ("a", "old")], &[], BLINK).with_owner(&stale_owner);
    create_short_lived(store, &to, stale).await;
    created(store, &from, &one_field(HOUR).with_owner(&owner)).await;
    wait_for_expiry().await;
    let change = changes(&[], &[], HOUR);
    moved(store, &from, &to, &change, "rekey onto an expired session").await;
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
    let what = "the owner of a session moved onto an expired one";
    assert_owned(store, &owner, &[&to], what).await;
    let what = "the owner of an expired session replaced by a rekey";
    assert_owned(store, &stale_owner, &[], what).await;
}

async fn rekey_of_a_session_that_is_not_live_is_gone_and_creates_nothing(store: &dyn SessionStore) {
    for case in NotLive::ALL {
        let (from, to) = (key("rekey-gone-from"), key("rekey-gone-to"));
        let (owner, name) = (owner("rekey-gone"), case.name());
        case.prepare(store, &from).await;
        let change = one_field(HOUR).with_owner(&owner);
        // What the request saw before the session went away.
        let seen = Record {
            fields: Arc::new(fields(&[("a", "0")])),
            ttl: HOUR,
            max_age: None,
            owner: None,
        };
        assert_eq!(
            rekey_seen(store, &from, &to, &change, &seen).await,
            Moved::Gone,
            "rekey of a {name} session must report Gone"
        );
        let what = format!("rekey of a {name} session created one under the new key");
        assert_gone(store, &to, &what).await;
        let what = format!("rekey of a {name} session brought it back under the old key");
        assert_gone(store, &from, &what).await;
        let what = format!("the owner a refused rekey of a {name} session set");
        assert_owned(store, &owner, &[], &what).await;
    }
}

async fn a_moved_session_is_gone_from_its_old_key(store: &dyn SessionStore) {
    let (from, to, elsewhere) = (key("moved-from"), key("moved-to"), key("moved-elsewhere"));
    created(store, &from, &one_field(HOUR)).await;
    moved(store, &from, &to, &changes(&[], &[], HOUR), "rekey").await;
    let late = changes(&[("late", "1")], &[], HOUR);
    assert_eq!(
        store.update(&from, &late).await.unwrap(),
        Updated::Gone,
        "update of a key a session was moved away from must report Gone"
    );
    let record = load(store, &to, "a moved session").await;
    let again = changes(&[("again", "1")], &[], HOUR);
    assert_eq!(
        rekey_seen(store, &from, &elsewhere, &again, &record).await,
        Moved::Gone,
        "a second rekey of a key a session was moved away from must report Gone"
    );
    let what = "a second rekey of the old key created a session";
    assert_gone(store, &elsewhere, what).await;
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
    created(store, &key, &one_field(HOUR)).await;
    store.delete(&key).await.unwrap();
    assert_gone(store, &key, "a deleted session still loads").await;
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
    let Neighbourhood {
        owner,
        other,
        owned,
        others,
        ..
    } = neighbourhood(store, "list").await;
    create_short_lived(store, &key("list-expired"), owned_by(&owner, BLINK)).await;
    wait_for_expiry().await;

    let what = "the owner (list_owned must report exactly its live sessions)";
    let listed = assert_owned(store, &owner, &owned.each_ref(), what).await;
    for session in &listed {
        assert_sane_times(session, HOUR);
    }
    assert_owned(store, &other, &[&others], "another owner").await;
    let nobody = self::owner("list-nobody");
    assert_owned(store, &nobody, &[], "an owner without sessions").await;

    // A write moves `updated_at`, not `created_at`.
    let before = entry(listed, &owned[0], "the owner's list");
    let change = changes(&[("b", "1")], &[], HOUR);
    updated(store, &owned[0], &change, "update").await;
    let listed = store.list_owned(&owner).await.unwrap();
    let after = entry(listed, &owned[0], "the owner's list after an update");
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
    let [from, sibling] =
        create_owned(store, &owner, ["rekey-list-from", "rekey-list-sibling"]).await;
    let (to, again) = (key("rekey-list-to"), key("rekey-list-again"));
    moved(store, &from, &to, &changes(&[], &[], HOUR), "rekey").await;
    let what = "the owner after a rekey (new key only)";
    assert_owned(store, &owner, &[&to, &sibling], what).await;

    let change = changes(&[], &[], HOUR).with_owner(&next_owner);
    moved(store, &to, &again, &change, "rekey changing the owner").await;
    let what = "the old owner after a rekey that changed the owner";
    assert_owned(store, &owner, &[&sibling], what).await;
    let what = "the new owner after a rekey that changed it";
    assert_owned(store, &next_owner, &[&again], what).await;
    let record = load(store, &again, "a session moved to a new owner").await;
    assert_eq!(
        record.owner,
        Some(next_owner),
        "rekey did not apply the owner change"
    );
}

async fn deleted_and_expired_sessions_leave_their_owners_list(store: &dyn SessionStore) {
    let owner = owner("leave");
    let names = ["leave-deleted", "leave-expiring", "leave-staying"];
    let [deleted, expiring, staying] = create_owned(store, &owner, names).await;
    assert_owned(store, &owner, &[&deleted, &expiring, &staying], "the owner").await;
    store.delete(&deleted).await.unwrap();
    let what = "the owner after a delete";
    assert_owned(store, &owner, &[&expiring, &staying], what).await;
    let expire = changes(&[], &[], HOUR).with_max_age(Some(BLINK));
    updated(store, &expiring, &expire, "shortening a session to a blink").await;
    wait_for_expiry().await;
    let what = "the owner after a session expired";
    assert_owned(store, &owner, &[&staying], what).await;
}

async fn changing_the_owner_moves_the_session_between_lists(store: &dyn SessionStore) {
    let (first, second) = (owner("change-first"), owner("change-second"));
    let [key] = create_owned(store, &first, ["change-owner"]).await;
    let to_second = changes(&[], &[], HOUR).with_owner(&second);
    updated(store, &key, &to_second, "update changing the owner").await;
    assert_owned(store, &first, &[], "the old owner after an owner change").await;
    let what = "the new owner after an owner change";
    assert_owned(store, &second, &[&key], what).await;
    let record = load(store, &key, "a session with a new owner").await;
    assert_eq!(
        record.owner,
        Some(second.clone()),
        "update did not apply the owner change"
    );

    let unbind = changes(&[], &[], HOUR).without_owner();
    updated(store, &key, &unbind, "update clearing the owner").await;
    let what = "the owner after the session was unbound";
    assert_owned(store, &second, &[], what).await;
    let record = load(store, &key, "an unbound session").await;
    assert_eq!(record.owner, None, "Set(None) did not unbind");

    let bind = owned_by(&first, HOUR);
    updated(store, &key, &bind, "update binding an unbound session").await;
    let what = "the owner of a session bound by an update";
    assert_owned(store, &first, &[&key], what).await;
}

async fn delete_owned_deletes_every_session_of_the_owner_and_counts_them(store: &dyn SessionStore) {
    let Neighbourhood {
        owner,
        other,
        owned,
        others,
        unowned,
    } = neighbourhood(store, "delete-owned").await;
    assert_eq!(
        store.delete_owned(&owner, None).await.unwrap(),
        3,
        "delete_owned must count the sessions it deleted"
    );
    for key in &owned {
        assert_gone(store, key, &format!("delete_owned left {key:?} behind")).await;
    }
    assert_owned(store, &owner, &[], "the owner after delete_owned").await;
    load(store, &others, "another owner's session after delete_owned").await;
    load(store, &unowned, "an unowned session after delete_owned").await;
    let what = "another owner after delete_owned";
    assert_owned(store, &other, &[&others], what).await;
    assert_eq!(
        store.delete_owned(&owner, None).await.unwrap(),
        0,
        "delete_owned of an owner without sessions counted some"
    );
}

async fn delete_owned_keeps_the_session_it_is_told_to_keep(store: &dyn SessionStore) {
    let (owner, other) = (owner("keep"), owner("keep-other"));
    let owned = create_owned(store, &owner, ["keep-1", "keep-2", "keep-3"]).await;
    assert_eq!(
        store.delete_owned(&owner, Some(&owned[1])).await.unwrap(),
        2,
        "delete_owned with a session to keep must count the others"
    );
    let what = "the owner after delete_owned keeping one";
    assert_owned(store, &owner, &[&owned[1]], what).await;
    assert_eq!(
        *load(store, &owned[1], "the kept session").await.fields,
        fields(&[("owned", "1")]),
        "delete_owned changed the session it kept"
    );

    // A key to keep that is not the owner's protects nothing of the owner's.
    let [others] = create_owned(store, &other, ["keep-others"]).await;
    assert_eq!(
        store.delete_owned(&owner, Some(&others)).await.unwrap(),
        1,
        "delete_owned keeping another owner's session must delete all of the owner's"
    );
    let what = "another owner's session named as the one to keep";
    load(store, &others, what).await;
}

// ---------------------------------------------------------------------------
// Concurrency

async fn concurrent_updates_of_different_fields_all_survive(racers: Racers<'_>) {
    let store = racers.store();
    let key = key("race-fields");
    created(store, &key, &changes(&[("base", "0")], &[], HOUR)).await;
    racers
        .rounds(TASKS, &key, |store, key, task, round| {
            Box::pin(async move {
                let value = round.to_string();
                let mine = [
                    (task_field(task, None), value.as_str()),
                    (task_field(task, Some(round)), "x"),
                ];
                let what = format!("task {task}, round {round}: a concurrent update");
                updated(store, &key, &changes(&mine, &[], HOUR), &what).await;
            })
        })
        .await;
    let record = load(store, &key, "a session updated concurrently").await;
    let mut expected = fields(&[("base", "0")]);
    let last = (ROUNDS - 1).to_string();
    for task in 0..TASKS {
        expected.insert(task_field(task, None), Bytes::from(last.clone()));
        for round in 0..ROUNDS {
            expected.insert(task_field(task, Some(round)), Bytes::from_static(b"x"));
        }
    }
    let missing: BTreeSet<_> = expected
        .iter()
        .filter(|(name, value)| record.fields.get(name).as_deref() != Some(*value))
        .map(|(name, _)| name.to_string())
        .collect();
    let unexpected: BTreeSet<_> = record
        .fields
        .iter()
        .filter(|(name, _)| expected.get(name).is_none())
        .map(|(name, _)| name.to_string())
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
    created(store, &key, &changes(&[("shared", "initial")], &[], HOUR)).await;
    // The last task only reads, all along.
    racers
        .rounds(TASKS + 1, &key, |store, key, task, round| {
            Box::pin(async move {
                if task == TASKS {
                    let what = format!("round {round}: a session being written concurrently");
                    let record = load(store, &key, &what).await;
                    let shared = record.fields.get("shared").unwrap_or_else(|| {
                        panic!("round {round}: a field being written concurrently was missing")
                    });
                    assert!(
                        shared.as_ref() == b"initial" || written_value(&shared).is_some(),
                        "round {round}: a field being written concurrently read {shared:?}, which nobody wrote"
                    );
                } else {
                    let (value, own) = (format!("{task}-{round}"), round.to_string());
                    let mine = [("shared", value.as_str()), (task_field(task, None), &own)];
                    let what = format!("task {task}, round {round}: a concurrent update");
                    updated(store, &key, &changes(&mine, &[], HOUR), &what).await;
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
        matches!(written_value(&shared), Some((_, round)) if round == ROUNDS - 1),
        "concurrent writes to one field left {shared:?}, not one task's last write"
    );
    for task in 0..TASKS {
        assert_eq!(
            record.fields.get(task_field(task, None)),
            Some(Bytes::from((ROUNDS - 1).to_string())),
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
                    let change = changes(&[("winner", &task.to_string())], &[], HOUR)
                        .with_owner(&owners[task]);
                    store.create(&key, &change).await.unwrap()
                })
            })
            .await;
        let what = format!("race {race}: concurrent creates of one key (the rest get KeyTaken)");
        let winner = the_winner(&outcomes, |o| matches!(o, Created::Written(_)), &what);
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
            let what = format!("race {race}: the owner of create {task}");
            assert_owned(store, owner, expected, &what).await;
        }
    }
}

async fn concurrent_rekeys_of_one_session_have_exactly_one_winner(racers: Racers<'_>) {
    let store = racers.store();
    for race in 0..RACES {
        let (from, owner) = (key("race-rekey-from"), owner("race-rekey"));
        created(store, &from, &one_field(HOUR).with_owner(&owner)).await;
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
                    rekey_seen(store, &from, &targets[task], &change, &seen).await
                })
            })
            .await;
        let what = format!("race {race}: concurrent rekeys of one session (the rest get Gone)");
        let winner = the_winner(&outcomes, |o| matches!(o, Moved::Written(_)), &what);
        assert!(
            outcomes
                .iter()
                .all(|outcome| matches!(outcome, Moved::Written(_) | Moved::Gone)),
            "race {race}: a rekey onto a fresh key reported KeyTaken: {outcomes:?}"
        );
        let what = format!("race {race}: racing rekeys left the old key");
        assert_gone(store, &from, &what).await;
        for (task, target) in targets.iter().enumerate() {
            if task == winner {
                let what = format!("race {race}: the winning rekey's key");
                let record = load(store, target, &what).await;
                assert_eq!(
                    *record.fields,
                    fields(&[("a", "1"), ("mover", &winner.to_string())]),
                    "race {race}: the moved session is not the winning rekey's"
                );
            } else {
                let what = format!("race {race}: a losing rekey (task {task}) forked the session");
                assert_gone(store, target, &what).await;
            }
        }
        let what = format!("race {race}: the owner after racing rekeys");
        assert_owned(store, &owner, &[&targets[winner]], &what).await;
    }
}

async fn an_update_racing_a_delete_never_brings_the_session_back(racers: Racers<'_>) {
    let store = racers.store();
    for round in 0..ROUNDS {
        let key = key("race-delete");
        created(store, &key, &one_field(HOUR)).await;
        let racing = key.clone();
        racers
            .race(2, move |store, task| {
                let key = racing.clone();
                Box::pin(async move {
                    take_turns(task, round).await;
                    if task == 0 {
                        store.delete(&key).await.unwrap();
                    } else {
                        let late = changes(&[("late", "1")], &[], HOUR);
                        store.update(&key, &late).await.unwrap();
                    }
                })
            })
            .await;
        let what = format!("round {round}: an update racing a delete brought the session back");
        assert_gone(store, &key, &what).await;
    }
}

async fn an_update_racing_a_rekey_lands_in_the_moved_session_or_is_gone(racers: Racers<'_>) {
    let store = racers.store();
    for round in 0..ROUNDS {
        let (from, to) = (key("race-move-from"), key("race-move-to"));
        created(store, &from, &one_field(HOUR)).await;
        let seen = load(store, &from, "the session about to be moved").await;
        let (racing_from, racing_to) = (from.clone(), to.clone());
        let outcomes = racers
            .race(2, move |store, task| {
                let (from, to, seen) = (racing_from.clone(), racing_to.clone(), seen.clone());
                Box::pin(async move {
                    take_turns(task, round).await;
                    if task == 0 {
                        let change = changes(&[("moved", "1")], &[], HOUR);
                        let outcome = rekey_seen(store, &from, &to, &change, &seen).await;
                        (Some(outcome), None)
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
        let what = format!("round {round}: the old key survived a rekey");
        assert_gone(store, &from, &what).await;
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

/// "Log out everywhere" against a stolen cookie that keeps regenerating:
/// each session of the owner hops to a fresh key again and again while
/// `delete_owned` runs. Once it returns, none may be live, wherever it hopped.
async fn delete_owned_racing_rekeys_ends_every_session_of_the_owner(racers: Racers<'_>) {
    /// Hops a session makes at most; far more than a revocation takes.
    const HOPS: usize = 50;
    let store = racers.store();
    for race in 0..10 * RACES {
        let owner = owner("race-revoke");
        let names: [String; TASKS - 1] = std::array::from_fn(|n| format!("race-revoke-{n}"));
        let keys = create_owned(store, &owner, names).await;
        let starts: Arc<Vec<StoreKey>> = Arc::new(keys.to_vec());
        let hops = Arc::new(AtomicU64::new(0));
        let racing_owner = Arc::clone(&owner);
        let visited = racers
            .race(TASKS, move |store, task| {
                let (owner, starts) = (Arc::clone(&racing_owner), Arc::clone(&starts));
                let hops = Arc::clone(&hops);
                Box::pin(async move {
                    if task == 0 {
                        // Revokes once the sessions are on the move.
                        while hops.load(Ordering::Relaxed) < (TASKS - 1 + race % 4) as u64 {
                            tokio::task::yield_now().await;
                        }
                        store.delete_owned(&owner, None).await.unwrap();
                        return Vec::new();
                    }
                    let mut at = starts[task - 1].clone();
                    let mut visited = vec![at.clone()];
                    for _ in 0..HOPS {
                        let Some(seen) = store.load(&at).await.unwrap() else {
                            break;
                        };
                        let to = key("race-revoke-hop");
                        let hop = changes(&[("hop", "1")], &[], HOUR);
                        visited.push(to.clone());
                        match rekey_seen(store, &at, &to, &hop, &seen).await {
                            Moved::Written(_) => at = to,
                            Moved::Gone | Moved::KeyTaken => break,
                        }
                        hops.fetch_add(1, Ordering::Relaxed);
                        tokio::task::yield_now().await;
                    }
                    visited
                })
            })
            .await;
        for key in visited.iter().flatten() {
            let what = format!("race {race}: a session hopping to {key:?} survived delete_owned");
            assert_gone(store, key, &what).await;
        }
        let what = format!("race {race}: the owner after delete_owned raced rekeys");
        assert_owned(store, &owner, &[], &what).await;
    }
}

// ---------------------------------------------------------------------------
// Clean-up

async fn delete_expired_counts_exactly_the_expired_sessions(store: &dyn ExpiredCleanup) {
    // Other checks may have left expired sessions; count from a clean slate.
    store.delete_expired().await.unwrap();
    let owner = owner("cleanup");
    let (expired, owned_expired) = ([key("cleanup-1"), key("cleanup-2")], key("cleanup-owned"));
    let live = key("cleanup-live");
    for key in &expired {
        create_short_lived(store, key, one_field(BLINK)).await;
    }
    create_short_lived(store, &owned_expired, owned_by(&owner, BLINK)).await;
    created(store, &live, &one_field(HOUR)).await;
    let [owned_live] = create_owned(store, &owner, ["cleanup-owned-live"]).await;
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
    let what = "a live owned session after delete_expired";
    load(store, &owned_live, what).await;
    let what = "the owner after delete_expired";
    assert_owned(store, &owner, &[&owned_live], what).await;
    for key in expired.iter().chain([&owned_expired]) {
        assert_eq!(
            store.update(key, &ChangeSet::touch(HOUR)).await.unwrap(),
            Updated::Gone,
            "an update revived a session delete_expired deleted"
        );
    }
    let create = changes(&[("b", "1")], &[], HOUR);
    let (_, record) = create_and_load(store, &owned_expired, &create).await;
    assert_eq!(
        *record.fields,
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

    /// Runs `round(store, key, i, r)` for every round `r` in `0..ROUNDS` of
    /// every task `i` in `0..n`: the tasks at once, each yielding between its
    /// rounds.
    async fn rounds<F>(&self, n: usize, key: &StoreKey, round: F)
    where
        F: for<'s> Fn(&'s dyn SessionStore, StoreKey, usize, usize) -> Task<'s, ()>
            + Send
            + Sync
            + 'static,
    {
        let (key, round) = (key.clone(), Arc::new(round));
        self.race(n, move |store, task| {
            let (key, round) = (key.clone(), Arc::clone(&round));
            Box::pin(async move {
                for r in 0..ROUNDS {
                    round(store, key.clone(), task, r).await;
                    tokio::task::yield_now().await;
                }
            })
        })
        .await;
    }
}

/// Lets the other of two racing tasks go first in every other round.
async fn take_turns(task: usize, round: usize) {
    if (task + round).is_multiple_of(2) {
        tokio::task::yield_now().await;
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
                created(store, key, &one_field(HOUR)).await;
                store.delete(key).await.unwrap();
            }
            Self::Expired => create_expired(store, key, one_field(BLINK)).await,
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
        seen_max_age: None,
    }
}

/// A change set that sets the one field `a = 1` and changes no setting.
fn one_field(default_max_age: Duration) -> ChangeSet {
    changes(&[("a", "1")], &[], default_max_age)
}

/// A change set binding the session to `owner`, with one field.
fn owned_by(owner: &Arc<str>, default_max_age: Duration) -> ChangeSet {
    changes(&[("owned", "1")], &[], default_max_age).with_owner(owner)
}

/// The settings a change set may change, on top of [`changes`].
trait Settings {
    /// Sets the session's own max-age override (`None` clears it).
    fn with_max_age(self, max_age: Option<Duration>) -> Self;
    /// Binds the session to `owner`.
    fn with_owner(self, owner: &Arc<str>) -> Self;
    /// Unbinds the session from its owner.
    fn without_owner(self) -> Self;
    /// Says the request saw the override `max_age` when it loaded.
    fn having_seen(self, max_age: Option<Duration>) -> Self;
}

impl Settings for ChangeSet {
    fn with_max_age(self, max_age: Option<Duration>) -> Self {
        Self {
            max_age: Update::Set(max_age),
            ..self
        }
    }

    fn with_owner(self, owner: &Arc<str>) -> Self {
        Self {
            owner: Update::Set(Some(owner.clone())),
            ..self
        }
    }

    fn without_owner(self) -> Self {
        Self {
            owner: Update::Set(None),
            ..self
        }
    }

    fn having_seen(self, max_age: Option<Duration>) -> Self {
        Self {
            seen_max_age: max_age,
            ..self
        }
    }
}

fn fields(pairs: &[(&str, &str)]) -> Fields {
    pairs
        .iter()
        .map(|(name, value)| (*name, Bytes::copy_from_slice(value.as_bytes())))
        .collect()
}

/// The session a request that loaded `seen` and made `changes` sees: what a
/// store that cannot move a session atomically writes under the new key.
fn whole(seen: &Record, changes: &ChangeSet) -> Record {
    let mut fields = (*seen.fields).clone();
    for (name, value) in &changes.set {
        fields.insert(name, value.clone());
    }
    for name in &changes.remove {
        fields.remove(name);
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

// ---------------------------------------------------------------------------
// Fixtures: writes that must succeed

/// Creates a session under the fresh `key`.
async fn created(store: &dyn SessionStore, key: &StoreKey, changes: &ChangeSet) -> Expiry {
    match store.create(key, changes).await.unwrap() {
        Created::Written(expiry) => expiry,
        Created::KeyTaken => panic!("create of {key:?}: a fresh key reported KeyTaken"),
    }
}

/// Creates a session under the fresh `key` and loads it back.
async fn create_and_load(
    store: &dyn SessionStore,
    key: &StoreKey,
    changes: &ChangeSet,
) -> (Expiry, Record) {
    let expiry = created(store, key, changes).await;
    let record = load(
        store,
        key,
        &format!("the session just created under {key:?}"),
    )
    .await;
    (expiry, record)
}

/// Creates a session that is over once [`wait_for_expiry`] returns.
async fn create_short_lived(store: &dyn SessionStore, key: &StoreKey, changes: ChangeSet) {
    let changes = ChangeSet {
        default_max_age: BLINK,
        ..changes
    };
    created(store, key, &changes).await;
}

/// Creates a session and waits until it has expired.
async fn create_expired(store: &dyn SessionStore, key: &StoreKey, changes: ChangeSet) {
    create_short_lived(store, key, changes).await;
    wait_for_expiry().await;
}

async fn wait_for_expiry() {
    tokio::time::sleep(EXPIRY_WAIT).await;
}

/// Creates a live session of `owner` under a fresh key per name, and returns
/// the keys.
async fn create_owned<const N: usize>(
    store: &dyn SessionStore,
    owner: &Arc<str>,
    names: [impl AsRef<str>; N],
) -> [StoreKey; N] {
    let keys = names.map(|name| key(name.as_ref()));
    for key in &keys {
        created(store, key, &owned_by(owner, HOUR)).await;
    }
    keys
}

/// Where the owner checks list and delete: three live sessions of `owner`,
/// next to one of `other` and one without an owner.
struct Neighbourhood {
    owner: Arc<str>,
    other: Arc<str>,
    owned: [StoreKey; 3],
    others: StoreKey,
    unowned: StoreKey,
}

/// Creates a [`Neighbourhood`] whose keys and owners are named after `name`.
async fn neighbourhood(store: &dyn SessionStore, name: &str) -> Neighbourhood {
    let (owner, other) = (owner(name), owner(&format!("{name}-other")));
    let owned = create_owned(store, &owner, [1, 2, 3].map(|n| format!("{name}-{n}"))).await;
    let [others] = create_owned(store, &other, [format!("{name}-others")]).await;
    let unowned = key(&format!("{name}-unowned"));
    created(store, &unowned, &one_field(HOUR)).await;
    Neighbourhood {
        owner,
        other,
        owned,
        others,
        unowned,
    }
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

/// Rekeys as a request that loaded `seen` and made `changes` does.
async fn rekey_seen(
    store: &dyn SessionStore,
    from: &StoreKey,
    to: &StoreKey,
    changes: &ChangeSet,
    seen: &Record,
) -> Moved {
    let whole = whole(seen, changes);
    store.rekey(from, to, changes, &whole).await.unwrap()
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
    match rekey_seen(store, from, to, changes, &seen).await {
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

/// Loads the session a write (`what`) just left under `key`, which must
/// agree with the expiry the write reported.
async fn reload(store: &dyn SessionStore, key: &StoreKey, write: Expiry, what: &str) -> Record {
    let record = load(store, key, what).await;
    assert_agrees(write, &record, what);
    record
}

// ---------------------------------------------------------------------------
// Assertions

/// A session as a check expects it to load: these fields, about this ttl, and
/// no override and no owner unless [`max_age`](Self::max_age) and
/// [`owner`](Self::owner) say otherwise.
struct Expect {
    fields: Fields,
    ttl: Duration,
    max_age: Option<Duration>,
    owner: Option<Arc<str>>,
}

fn expect(fields: &[(&str, &str)], ttl: Duration) -> Expect {
    Expect {
        fields: self::fields(fields),
        ttl,
        max_age: None,
        owner: None,
    }
}

impl Expect {
    fn max_age(self, max_age: Duration) -> Self {
        Self {
            max_age: Some(max_age),
            ..self
        }
    }

    fn owner(self, owner: &Arc<str>) -> Self {
        Self {
            owner: Some(owner.clone()),
            ..self
        }
    }
}

/// `record` is `expected`: its fields, override and owner exactly, its ttl
/// give or take the time the test took.
fn assert_session(record: &Record, expected: &Expect, what: &str) {
    assert_eq!(
        *record.fields, expected.fields,
        "{what}: other fields than expected"
    );
    assert_lifetime(record.ttl, expected.ttl, what);
    assert_eq!(
        record.max_age, expected.max_age,
        "{what}: another override than expected"
    );
    assert_eq!(
        record.owner, expected.owner,
        "{what}: another owner than expected"
    );
}

/// The session under `key` is live and is `expected`.
async fn assert_loads(store: &dyn SessionStore, key: &StoreKey, expected: &Expect, what: &str) {
    assert_session(&load(store, key, what).await, expected, what);
}

/// No live session is under `key`; `what` says what it means if one is.
async fn assert_gone(store: &dyn SessionStore, key: &StoreKey, what: &str) {
    assert_eq!(store.load(key).await.unwrap(), None, "{what}");
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

/// The one task whose outcome `won`, failing unless exactly one did.
fn the_winner<T: Debug>(outcomes: &[T], won: impl Fn(&T) -> bool, what: &str) -> usize {
    let winners: Vec<usize> = (0..outcomes.len())
        .filter(|&task| won(&outcomes[task]))
        .collect();
    assert_eq!(
        winners.len(),
        1,
        "{what}: {} won, exactly one must: {outcomes:?}",
        winners.len()
    );
    winners[0]
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

/// `list_owned(owner)` reports exactly `keys`, each once; returns the list.
async fn assert_owned(
    store: &dyn SessionStore,
    owner: &str,
    keys: &[&StoreKey],
    what: &str,
) -> Vec<OwnedSession> {
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
    listed
}

/// The entry of `key` in an owner's list (`what`), which must hold it.
fn entry(listed: Vec<OwnedSession>, key: &StoreKey, what: &str) -> OwnedSession {
    listed
        .into_iter()
        .find(|session| session.key == *key)
        .unwrap_or_else(|| panic!("{what}: {key:?} is not listed"))
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
