//! The session lifecycle through the framework-agnostic API: what reaches the
//! store, which cookie goes out, and what the next request sees.

mod support;

use bytes::Bytes;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use session::store::{ChangeSet, Update};
use session::{
    Error, Session, SessionConfig, SessionEvent, SessionManager, SessionStore, StoreKey,
};
use support::{Browser, Call, Recording};

#[derive(Session, Default, Debug)]
struct Shop {
    user: Option<String>,
    visits: u64,
    cart: Vec<String>,
    #[session(flash)]
    notice: Option<String>,
}

const ONE_DAY: i64 = 24 * 60 * 60;

fn setup(config: SessionConfig) -> (Recording, Browser) {
    let store = Recording::new();
    let manager = SessionManager::new(store.clone(), config).unwrap();
    (store, Browser::new(manager))
}

/// One request that runs `body` on the `Shop` session and commits.
async fn visit(
    browser: &mut Browser,
    body: impl FnOnce(&Session<Shop>),
) -> Option<session::Cookie<'static>> {
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    body(&shop);
    browser.finish(request).await
}

/// The key the first write since the last `take_calls` left the session under.
fn committed_key(calls: &[Call]) -> StoreKey {
    calls
        .iter()
        .find_map(|call| match call {
            Call::Create(key, _) | Call::Update(key, _) | Call::Rekey(_, key, _) => {
                Some(key.clone())
            }
            _ => None,
        })
        .expect("a write")
}

/// The changes of every create, update and rekey.
fn commits(calls: &[Call]) -> Vec<&ChangeSet> {
    calls
        .iter()
        .filter_map(|call| match call {
            Call::Create(_, changes) | Call::Update(_, changes) | Call::Rekey(_, _, changes) => {
                Some(changes)
            }
            _ => None,
        })
        .collect()
}

/// Makes the session under `key` expire right away, as if its time had run out.
async fn expire(store: &Recording, key: &StoreKey) {
    let mut changes = ChangeSet::touch(Duration::from_secs(60));
    changes.max_age = Update::Set(Some(Duration::from_millis(1)));
    store.store.update(key, &changes).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
}

#[tokio::test]
async fn a_new_session_that_holds_nothing_is_not_stored_and_sends_no_cookie() {
    let (store, mut browser) = setup(SessionConfig::default());
    let cookie = visit(&mut browser, |shop| {
        assert_eq!(shop.visits(), 0);
        assert!(shop.is_new());
        shop.cart_mut().clear();
        shop.set_user(None);
    })
    .await;
    assert_eq!(cookie, None);
    assert_eq!(
        store.take_calls(),
        vec![],
        "a new session loads and writes nothing"
    );
}

#[tokio::test]
async fn the_first_write_stores_only_the_set_fields_and_sends_a_hardened_cookie() {
    let (store, mut browser) = setup(SessionConfig::default());
    let cookie = visit(&mut browser, |shop| shop.set_visits(1))
        .await
        .expect("a cookie");
    assert_eq!(cookie.name(), "session");
    assert_eq!(cookie.value().len(), 43, "256 random bits, base64url");
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(cookie.secure(), Some(true));
    assert_eq!(cookie.same_site(), Some(session::SameSite::Lax));
    assert_eq!(cookie.path(), Some("/"));
    assert_eq!(
        cookie.max_age().map(|age| age.whole_seconds()),
        Some(ONE_DAY)
    );

    let calls = store.take_calls();
    let changes = commits(&calls);
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].set, vec![("visits", Bytes::from_static(b"1"))]);
    assert!(changes[0].remove.is_empty());
}

#[tokio::test]
async fn stores_see_a_hash_of_the_id_never_the_id() {
    let (store, mut browser) = setup(SessionConfig::default().key_prefix("shop:"));
    let cookie = visit(&mut browser, |shop| shop.set_visits(1))
        .await
        .unwrap();
    let key = committed_key(&store.take_calls());
    assert!(key.as_str().starts_with("shop:"));
    assert!(!key.as_str().contains(cookie.value()));
    assert_ne!(&key.as_str()["shop:".len()..], cookie.value());
}

#[tokio::test]
async fn only_changed_fields_reach_the_store() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| {
        shop.set_user(Some("ann".into()));
        shop.set_visits(1);
        shop.cart_mut().push("apple".into());
    })
    .await;
    store.take_calls();

    let cookie = visit(&mut browser, |shop| {
        assert_eq!(shop.user().as_deref(), Some("ann"));
        assert!(!shop.is_new());
        shop.set_visits(shop.visits() + 1);
        shop.set_user(Some("ann".into())); // same value: not written
        shop.cart_mut().sort(); // borrowed mutably, unchanged: not written
    })
    .await;
    let calls = store.take_writes();
    assert_eq!(commits(&calls).len(), 1);
    assert_eq!(
        commits(&calls)[0].set,
        vec![("visits", Bytes::from_static(b"2"))]
    );
    assert!(
        cookie.is_some(),
        "a write extends the session, so the cookie is re-sent"
    );
}

#[tokio::test]
async fn a_request_that_changes_nothing_costs_no_store_write() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_visits(5)).await;
    store.take_calls();
    let cookie = visit(&mut browser, |shop| {
        assert_eq!(shop.visits(), 5);
        assert_eq!(shop.cart(), Vec::<String>::new());
        shop.set_visits(5);
    })
    .await;
    assert_eq!(cookie, None);
    assert!(store.take_writes().is_empty());
}

#[tokio::test]
async fn concurrent_commits_on_different_fields_of_one_session_both_survive() {
    let (_store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_visits(1)).await;

    let first = browser.request();
    let second = browser.request();
    let (a, b) = (
        first.session::<Shop>().await.unwrap(),
        second.session::<Shop>().await.unwrap(),
    );
    a.set_user(Some("ann".into()));
    b.cart_mut().push("pear".into());
    // Both loaded before either committed: a whole-record store would lose one.
    first.finish().await.result.unwrap();
    second.finish().await.result.unwrap();

    visit(&mut browser, |shop| {
        assert_eq!(shop.user().as_deref(), Some("ann"));
        assert_eq!(shop.cart(), vec!["pear".to_owned()]);
        assert_eq!(shop.visits(), 1);
    })
    .await;
}

#[tokio::test]
async fn regenerate_changes_the_cookie_keeps_the_data_and_drops_the_old_record() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_visits(3)).await;
    let old_cookie = browser.cookie.clone().unwrap();
    let old_key = committed_key(&store.take_calls());

    let cookie = visit(&mut browser, |shop| {
        shop.set_user(Some("ann".into()));
        shop.regenerate();
    })
    .await
    .expect("a new cookie");
    assert_ne!(cookie.value(), old_cookie);
    let calls = store.take_writes();
    assert!(
        matches!(calls.as_slice(), [Call::Rekey(from, ..)] if *from == old_key),
        "{calls:?}"
    );
    assert_eq!(store.peek(&old_key).await, None, "the old record is gone");

    visit(&mut browser, |shop| {
        assert_eq!(shop.visits(), 3);
        assert_eq!(shop.user().as_deref(), Some("ann"));
    })
    .await;

    let mut attacker = browser.clone();
    attacker.cookie = Some(old_cookie);
    visit(&mut attacker, |shop| {
        assert!(shop.is_new(), "the pre-login id must not work any more");
        assert_eq!(shop.visits(), 0);
    })
    .await;
}

#[tokio::test]
async fn regenerate_without_changes_still_moves_the_session() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_visits(3)).await;
    store.take_calls();
    let old = browser.cookie.clone();
    let cookie = visit(&mut browser, |shop| shop.regenerate())
        .await
        .expect("a new cookie");
    assert_ne!(Some(cookie.value().to_owned()), old);
    let calls = store.take_writes();
    assert!(
        matches!(calls.as_slice(), [Call::Rekey(_, _, changes)] if changes.is_touch()),
        "{calls:?}"
    );
    visit(&mut browser, |shop| assert_eq!(shop.visits(), 3)).await;
}

#[tokio::test]
async fn unknown_malformed_and_expired_ids_get_fresh_sessions_never_adopted() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let config = SessionConfig::default().on_event(move |event| {
        seen.lock().unwrap().push(support::label(event));
    });
    let (store, mut browser) = setup(config);

    for presented in ["made-up-by-the-client", "bad id;", ""] {
        browser.cookie = Some(presented.to_owned());
        let cookie = visit(&mut browser, |shop| {
            assert!(shop.is_new());
            shop.set_visits(1);
        })
        .await
        .unwrap();
        assert_ne!(cookie.value(), presented, "a client-chosen id was adopted");
        assert_eq!(cookie.value().len(), 43);
    }
    assert_eq!(
        *events.lock().unwrap(),
        ["missed", "invalid MalformedId", "invalid MalformedId"]
    );

    // An expired record: move the last session's expiry into the past, then present it.
    let calls = store.take_calls();
    let key = committed_key(&calls[calls.len() - 1..]);
    expire(&store, &key).await;
    let presented = browser.cookie.clone().unwrap();
    visit(&mut browser, |shop| {
        assert!(shop.is_new());
        assert_eq!(shop.visits(), 0);
    })
    .await;
    assert_eq!(
        events.lock().unwrap().last().map(String::as_str),
        Some("missed")
    );
    assert_eq!(
        browser.cookie,
        Some(presented),
        "nothing written, no new cookie"
    );
}

#[tokio::test]
async fn destroy_deletes_the_record_and_sends_a_removal_cookie() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_user(Some("ann".into()))).await;
    let key = committed_key(&store.take_calls());

    let cookie = visit(&mut browser, |shop| {
        shop.destroy();
        assert!(shop.is_new());
        assert_eq!(shop.user(), None);
    })
    .await
    .expect("a removal cookie");
    assert_eq!(cookie.value(), "");
    assert_eq!(cookie.max_age().map(|age| age.whole_seconds()), Some(0));
    assert_eq!(store.take_writes(), vec![Call::Delete(key.clone())]);
    assert_eq!(store.peek(&key).await, None);
    assert_eq!(browser.cookie, None);
}

#[tokio::test]
async fn fields_set_after_destroy_start_a_new_session() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_user(Some("ann".into()))).await;
    let old = browser.cookie.clone().unwrap();
    let old_key = committed_key(&store.take_calls());

    let cookie = visit(&mut browser, |shop| {
        shop.destroy();
        shop.set_notice(Some("bye".into()));
    })
    .await
    .unwrap();
    assert_ne!(cookie.value(), old);
    assert_eq!(store.peek(&old_key).await, None);
    visit(&mut browser, |shop| {
        assert_eq!(shop.user(), None);
        assert_eq!(shop.notice().as_deref(), Some("bye"));
    })
    .await;
}

#[tokio::test]
async fn flash_values_are_removed_once_read() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| {
        shop.set_visits(1);
        shop.set_notice(Some("welcome".into()));
    })
    .await;
    let key = committed_key(&store.take_calls());
    visit(&mut browser, |shop| assert_eq!(shop.visits(), 1)).await;
    assert!(store.take_writes().is_empty(), "an unread flash stays");

    visit(&mut browser, |shop| {
        assert_eq!(shop.notice().as_deref(), Some("welcome"));
        assert_eq!(shop.notice(), None, "read once");
    })
    .await;
    let writes = store.take_writes();
    assert_eq!(commits(&writes)[0].remove, vec!["notice"]);
    assert!(!store
        .peek(&key)
        .await
        .unwrap()
        .fields
        .contains_key("notice"));
    visit(&mut browser, |shop| assert_eq!(shop.notice(), None)).await;
}

#[tokio::test]
async fn a_field_that_no_longer_decodes_resets_alone_and_is_reported() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let config = SessionConfig::default().on_event(move |event| {
        if let SessionEvent::FieldReset { field, .. } = event {
            seen.lock().unwrap().push(*field);
        }
    });
    let (store, mut browser) = setup(config);
    visit(&mut browser, |shop| {
        shop.set_user(Some("ann".into()));
        shop.set_visits(7);
    })
    .await;
    let key = committed_key(&store.take_calls());
    // As if `visits` had been a string when this record was written.
    let mut changes = ChangeSet::touch(Duration::from_secs(60));
    changes.set = vec![("visits", Bytes::from_static(br#""seven""#))];
    store.store.update(&key, &changes).await.unwrap();

    visit(&mut browser, |shop| {
        assert_eq!(shop.user().as_deref(), Some("ann"));
    })
    .await;
    assert!(
        events.lock().unwrap().is_empty(),
        "fields are decoded only when used"
    );

    visit(&mut browser, |shop| {
        assert_eq!(shop.visits(), 0, "reset to its default");
        assert_eq!(shop.user().as_deref(), Some("ann"), "the rest survives");
    })
    .await;
    assert_eq!(*events.lock().unwrap(), ["visits"]);
    let writes = store.take_writes();
    assert_eq!(commits(&writes)[0].remove, ["visits"], "the stale bytes go");
    assert!(!store
        .peek(&key)
        .await
        .unwrap()
        .fields
        .contains_key("visits"));

    visit(&mut browser, |shop| assert_eq!(shop.visits(), 0)).await;
    assert_eq!(
        *events.lock().unwrap(),
        ["visits"],
        "reported once, not on every request"
    );
}

#[tokio::test]
async fn rolling_extends_and_resends_on_every_request() {
    let (store, mut browser) = setup(SessionConfig::default().rolling(true));
    visit(&mut browser, |shop| shop.set_visits(1)).await;
    store.take_calls();
    let cookie = visit(&mut browser, |shop| assert_eq!(shop.visits(), 1)).await;
    assert!(cookie.is_some());
    assert!(matches!(
        store.take_writes().as_slice(),
        [Call::Update(_, changes)] if changes.is_touch()
    ));

    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_visits(1)).await;
    store.take_calls();
    assert_eq!(
        visit(&mut browser, |shop| assert_eq!(shop.visits(), 1)).await,
        None
    );
    assert!(store.take_writes().is_empty());
}

#[tokio::test]
async fn renew_extends_only_when_less_than_half_is_left() {
    let max_age = Duration::from_secs(2);
    let (store, mut browser) = setup(SessionConfig::default().renew(true).max_age(max_age));
    visit(&mut browser, |shop| shop.set_visits(1)).await;
    store.take_calls();

    assert_eq!(
        visit(&mut browser, |shop| assert_eq!(shop.visits(), 1)).await,
        None
    );
    assert!(
        store.take_writes().is_empty(),
        "fresh sessions are not renewed"
    );

    tokio::time::sleep(Duration::from_millis(1100)).await;
    let cookie = visit(&mut browser, |shop| assert_eq!(shop.visits(), 1)).await;
    let cookie = cookie.expect("renewed sessions re-send their cookie");
    assert_eq!(cookie.max_age().map(|age| age.whole_seconds()), Some(2));
    let writes = store.take_writes();
    assert!(
        matches!(writes.as_slice(), [Call::Update(_, changes)] if changes.is_touch()),
        "expected one touch, got {writes:?}"
    );
    let record = store.peek(&committed_key(&writes)).await.unwrap();
    assert!(record.ttl > Duration::from_millis(1500), "{:?}", record.ttl);
}

#[tokio::test]
async fn remember_me_survives_reloads_and_beats_browser_session_cookies() {
    let (store, mut browser) = setup(SessionConfig::default().browser_session(true).rolling(true));
    let cookie = visit(&mut browser, |shop| {
        assert_eq!((shop.max_age(), shop.expires_at()), (None, None), "new");
        shop.set_visits(1);
    })
    .await
    .unwrap();
    assert_eq!(cookie.max_age(), None, "browser-session cookie");

    let thirty_days = Duration::from_secs(30 * 24 * 3600);
    let cookie = visit(&mut browser, |shop| {
        assert_eq!(shop.max_age(), None, "the configured max-age applies");
        shop.set_max_age(Some(thirty_days));
        assert_eq!(shop.max_age(), Some(thirty_days));
    })
    .await
    .unwrap();
    assert_eq!(
        cookie.max_age().map(|age| age.whole_seconds()),
        Some(30 * ONE_DAY)
    );
    let writes = store.take_writes();
    let key = committed_key(&writes);
    assert_eq!(
        commits(&writes).last().unwrap().max_age,
        Update::Set(Some(thirty_days))
    );

    // A later request that changes nothing still gets the session's own max-age.
    let cookie = visit(&mut browser, |shop| {
        assert_eq!(shop.max_age(), Some(thirty_days));
        let left = shop.expires_at().unwrap().duration_since(SystemTime::now());
        let left = i64::try_from(left.unwrap().as_secs()).unwrap();
        assert!(
            (29 * ONE_DAY..=30 * ONE_DAY).contains(&left),
            "{left} s left"
        );
    })
    .await
    .unwrap();
    assert_eq!(
        cookie.max_age().map(|age| age.whole_seconds()),
        Some(30 * ONE_DAY)
    );
    let record = store.peek(&key).await.unwrap();
    assert!(record.ttl > Duration::from_secs(29 * 24 * 3600));

    let cookie = visit(&mut browser, |shop| shop.set_max_age(None))
        .await
        .unwrap();
    assert_eq!(
        cookie.max_age(),
        None,
        "back to the configured browser-session cookie"
    );
}

#[tokio::test]
async fn without_auto_commit_only_save_writes() {
    let (store, mut browser) = setup(SessionConfig::default().auto_commit(false));
    assert_eq!(visit(&mut browser, |shop| shop.set_visits(1)).await, None);
    assert!(store.take_writes().is_empty());

    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_visits(2);
    shop.save().await.unwrap();
    assert_eq!(
        commits(&store.take_writes())[0].set,
        vec![("visits", Bytes::from_static(b"2"))]
    );
    assert!(
        browser.finish(request).await.is_some(),
        "save's cookie goes out with the response"
    );
    visit(&mut browser, |shop| assert_eq!(shop.visits(), 2)).await;
}

#[tokio::test]
async fn save_mid_request_then_more_changes_commit_each_field_once() {
    let (store, mut browser) = setup(SessionConfig::default());
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_visits(1);
    shop.save().await.unwrap();
    shop.set_user(Some("ann".into()));
    let cookie = browser.finish(request).await.expect("a cookie");
    let writes = store.take_writes();
    let sets: Vec<_> = commits(&writes).iter().map(|c| c.set.clone()).collect();
    assert_eq!(
        sets,
        vec![
            vec![("visits", Bytes::from_static(b"1"))],
            vec![("user", Bytes::from_static(br#""ann""#))]
        ]
    );
    // Both commits went to the one session the cookie names.
    let [Call::Create(created, _), Call::Update(updated, _)] = writes.as_slice() else {
        panic!("expected a create then an update, got {writes:?}");
    };
    assert_eq!(created, updated);
    assert_eq!(browser.cookie.as_deref(), Some(cookie.value()));
}

#[tokio::test]
async fn custom_id_generators_are_used_and_checked() {
    let (_, mut browser) = setup(SessionConfig::default().id_generator(|| "custom-id-123".into()));
    let cookie = visit(&mut browser, |shop| shop.set_visits(1))
        .await
        .unwrap();
    assert_eq!(cookie.value(), "custom-id-123");

    let (_, browser) = setup(SessionConfig::default().id_generator(|| "not valid!".into()));
    let request = browser.request();
    request.session::<Shop>().await.unwrap().set_visits(1);
    assert!(matches!(
        request.finish().await.result,
        Err(Error::InvalidGeneratedId)
    ));
}

#[tokio::test]
async fn store_failures_are_typed_errors_naming_the_operation() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_visits(1)).await;
    store.set_failing(true);
    let request = browser.request();
    let error = request.session::<Shop>().await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Store {
                op: session::StoreOp::Load,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "session store failed to load a session: the store is down (test)"
    );

    store.set_failing(false);
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_visits(2);
    store.set_failing(true);
    let error = shop.save().await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Store {
                op: session::StoreOp::Update,
                ..
            }
        ),
        "{error:?}"
    );
    // The change is still pending and lands once the store is back.
    store.set_failing(false);
    browser.finish(request).await;
    visit(&mut browser, |shop| assert_eq!(shop.visits(), 2)).await;
}

#[derive(Session, Default)]
#[session(namespace = "auth")]
struct Auth {
    user: Option<String>,
}

#[tokio::test]
async fn two_session_structs_share_one_load_and_one_record() {
    let (store, mut browser) = setup(SessionConfig::default());
    visit(&mut browser, |shop| shop.set_user(Some("shop-user".into()))).await;
    store.take_calls();

    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    let auth = request.session::<Auth>().await.unwrap();
    let again = request.session::<Shop>().await.unwrap();
    auth.set_user(Some("admin".into()));
    again.set_visits(9);
    assert_eq!(shop.visits(), 9, "handles of one struct share its state");
    browser.finish(request).await;

    let calls = store.take_calls();
    assert_eq!(
        calls
            .iter()
            .filter(|call| matches!(call, Call::Load(_)))
            .count(),
        1
    );
    let changes = commits(&calls);
    assert_eq!(changes.len(), 1, "one commit for the whole request");
    let mut keys: Vec<_> = changes[0].set.iter().map(|(key, _)| *key).collect();
    keys.sort();
    assert_eq!(keys, ["auth.user", "visits"]);

    let request = browser.request();
    assert_eq!(
        request.session::<Auth>().await.unwrap().user().as_deref(),
        Some("admin")
    );
    assert_eq!(
        request.session::<Shop>().await.unwrap().user().as_deref(),
        Some("shop-user")
    );
}

#[tokio::test]
async fn a_request_that_never_asks_for_its_session_touches_nothing() {
    let (store, mut browser) = setup(SessionConfig::default().rolling(true));
    visit(&mut browser, |shop| shop.set_visits(1)).await;
    store.take_calls();
    let request = browser.request();
    assert_eq!(browser.finish(request).await, None);
    assert!(store.take_calls().is_empty());
}

#[tokio::test]
async fn handles_are_clone_send_sync_and_work_across_await() {
    fn assert_send_sync_clone<T: Send + Sync + Clone + 'static>(_: &T) {}
    let (_, mut browser) = setup(SessionConfig::default());
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    assert_send_sync_clone(&shop);
    let worker = shop.clone();
    tokio::spawn(async move {
        tokio::task::yield_now().await;
        worker.cart_mut().push("from a task".into());
    })
    .await
    .unwrap();
    assert_eq!(shop.cart(), vec!["from a task".to_owned()]);
    assert!(browser.finish(request).await.is_some());
}

#[tokio::test(start_paused = true)]
async fn a_hanging_store_times_out_with_a_typed_error() {
    let limit = Duration::from_secs(2);
    let (store, mut browser) = setup(SessionConfig::default().store_timeout(Some(limit)));
    visit(&mut browser, |shop| shop.set_visits(1)).await;

    store.set_stalled(true);
    let error = browser.request().session::<Shop>().await.unwrap_err();
    assert!(
        matches!(error, Error::StoreTimeout { op: session::StoreOp::Load, after } if after == limit),
        "{error:?}"
    );
    assert_eq!(
        error.to_string(),
        "session store did not load a session within 2s"
    );

    store.set_stalled(false);
    let request = browser.request();
    request.session::<Shop>().await.unwrap().set_visits(2);
    store.set_stalled(true);
    let error = request.finish().await.result.unwrap_err();
    assert!(
        matches!(
            error,
            Error::StoreTimeout {
                op: session::StoreOp::Update,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn lifetimes_are_capped_at_the_400_days_browsers_allow() {
    let (_, mut browser) = setup(SessionConfig::default().max_age(Duration::MAX));
    let cookie = visit(&mut browser, |shop| shop.set_visits(1))
        .await
        .unwrap();
    assert_eq!(cookie.max_age().map(|age| age.whole_days()), Some(400));

    let cookie = visit(&mut browser, |shop| {
        shop.set_max_age(Some(Duration::MAX));
        assert_eq!(shop.max_age(), Some(Duration::from_secs(400 * 24 * 3600)));
    })
    .await
    .unwrap();
    assert_eq!(cookie.max_age().map(|age| age.whole_days()), Some(400));
}

#[derive(Session, Default)]
struct Tabs {
    a: u32,
    b: u32,
    c: u32,
    d: u32,
    e: u32,
    f: u32,
    g: u32,
    h: u32,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_parallel_requests_each_changing_its_own_field_all_survive() {
    let (_, mut browser) = setup(SessionConfig::default());
    let request = browser.request();
    request.session::<Tabs>().await.unwrap().set_a(1);
    browser.finish(request).await;

    for round in 1..=20 {
        // Every request loads before any commits: each sees the others' fields stale.
        let mut requests = Vec::new();
        for _ in 0..8 {
            let request = browser.request();
            let tabs = request.session::<Tabs>().await.unwrap();
            requests.push((request, tabs));
        }
        let tasks = requests
            .into_iter()
            .enumerate()
            .map(|(field, (request, tabs))| {
                tokio::spawn(async move {
                    match field {
                        0 => tabs.set_a(round),
                        1 => tabs.set_b(round),
                        2 => tabs.set_c(round),
                        3 => tabs.set_d(round),
                        4 => tabs.set_e(round),
                        5 => tabs.set_f(round),
                        6 => tabs.set_g(round),
                        _ => tabs.set_h(round),
                    }
                    request.finish().await.result.unwrap();
                })
            });
        for task in tasks.collect::<Vec<_>>() {
            task.await.unwrap();
        }
        let request = browser.request();
        let tabs = request.session::<Tabs>().await.unwrap();
        let seen = [
            tabs.a(),
            tabs.b(),
            tabs.c(),
            tabs.d(),
            tabs.e(),
            tabs.f(),
            tabs.g(),
            tabs.h(),
        ];
        assert_eq!(
            seen, [round; 8],
            "a concurrent change was lost in round {round}"
        );
    }
}

#[derive(Session, Default)]
struct Profile {
    user: Option<String>,
}

#[derive(Session, Default)]
struct Legacy {
    #[session(alias = "visits")]
    count: u64,
}

#[tokio::test]
async fn two_structs_sharing_a_stored_key_are_an_error_naming_both() {
    let (_, browser) = setup(SessionConfig::default());
    let request = browser.request();
    request.session::<Shop>().await.unwrap();
    let error = request.session::<Profile>().await.unwrap_err();
    let Error::KeyClash { key, first, second } = &error else {
        panic!("expected a key clash, got {error:?}");
    };
    assert_eq!(*key, "user");
    assert!(
        first.ends_with("Shop") && second.ends_with("Profile"),
        "{error}"
    );
    assert!(error.to_string().contains("namespace"), "{error}");

    // Per manager, not per request; an alias counts as a key.
    let request = browser.request();
    assert!(matches!(
        request.session::<Legacy>().await,
        Err(Error::KeyClash { key: "visits", .. })
    ));
    assert!(
        request.session::<Auth>().await.is_ok(),
        "namespaced: no clash"
    );
}

/// Refuses to encode 13, as a real codec may refuse a value.
struct Picky;

impl session::Codec<u32> for Picky {
    fn encode(value: &u32) -> Result<Vec<u8>, session::CodecError> {
        match value {
            13 => Err(session::CodecError::new("13 is unlucky")),
            value => Ok(value.to_string().into_bytes()),
        }
    }

    fn decode(bytes: &[u8]) -> Result<u32, session::CodecError> {
        let text = std::str::from_utf8(bytes).map_err(session::CodecError::new)?;
        text.parse().map_err(session::CodecError::new)
    }
}

#[derive(Session, Default)]
#[session(namespace = "picky")]
struct Lucky {
    plain: u32,
    #[session(codec = Picky)]
    number: u32,
}

#[tokio::test]
async fn a_value_that_cannot_be_encoded_fails_the_commit_and_loses_nothing() {
    let (store, mut browser) = setup(SessionConfig::default());
    let request = browser.request();
    let lucky = request.session::<Lucky>().await.unwrap();
    lucky.set_plain(1);
    lucky.set_number(13);
    let error = lucky.save().await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::Encode {
                field: "picky.number",
                ..
            }
        ),
        "{error:?}"
    );
    assert!(store.take_writes().is_empty(), "nothing half-written");

    lucky.set_number(7);
    browser.finish(request).await.expect("a cookie");
    let request = browser.request();
    let lucky = request.session::<Lucky>().await.unwrap();
    assert_eq!(
        (lucky.plain(), lucky.number()),
        (1, 7),
        "the first field was kept"
    );
}

#[tokio::test]
async fn no_live_session_gets_a_cookie_the_browser_drops_at_once() {
    let config = SessionConfig::default().max_age(Duration::from_millis(500));
    assert!(matches!(
        SessionManager::new(Recording::new(), config),
        Err(Error::InvalidConfig {
            option: "max_age",
            ..
        })
    ));

    let (_, mut browser) = setup(SessionConfig::default());
    let cookie = visit(&mut browser, |shop| {
        shop.set_visits(1);
        shop.set_max_age(Some(Duration::from_millis(100)));
    })
    .await
    .unwrap();
    assert_eq!(cookie.max_age().map(|age| age.whole_seconds()), Some(1));
    visit(&mut browser, |shop| {
        assert_eq!(shop.max_age(), Some(Duration::from_secs(1)));
        assert_eq!(shop.visits(), 1, "the session lives as long as its cookie");
    })
    .await;

    // Zero is "expire now": the session ends and so does the cookie.
    let cookie = visit(&mut browser, |shop| shop.set_max_age(Some(Duration::ZERO)))
        .await
        .unwrap();
    assert_eq!(cookie.max_age().map(|age| age.whole_seconds()), Some(0));
    browser.cookie = Some(cookie.value().to_owned());
    visit(&mut browser, |shop| assert!(shop.is_new())).await;
}

#[tokio::test]
async fn a_failed_commit_that_only_extends_leaves_the_response_alone() {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let config = SessionConfig::default()
        .rolling(true)
        .on_event(move |event| seen.lock().unwrap().push(support::label(event)));
    let (store, mut browser) = setup(config);
    visit(&mut browser, |shop| shop.set_visits(1)).await;

    // The load goes through, the rolling touch fails.
    store.fail_once_after(1);
    let request = browser.request();
    assert_eq!(request.session::<Shop>().await.unwrap().visits(), 1);
    let finished = browser.finish_any(request).await;
    assert!(finished.result.is_ok(), "{:?}", finished.result);
    assert!(finished.cookie.is_none(), "no extension, no new cookie");
    assert_eq!(events.lock().unwrap().as_slice(), ["touch_failed"]);

    // A commit that carries a change still fails the request.
    store.fail_once_after(1);
    let request = browser.request();
    request.session::<Shop>().await.unwrap().set_visits(2);
    let finished = browser.finish_any(request).await;
    assert!(matches!(finished.result, Err(Error::Store { .. })));
    let request = browser.request();
    assert_eq!(request.session::<Shop>().await.unwrap().visits(), 1);
    browser.finish(request).await;
}

#[tokio::test]
async fn a_cookie_that_can_never_name_a_session_is_withdrawn() {
    let config = SessionConfig::default().signed([[7u8; 64]]);
    let (store, mut browser) = setup(config);
    visit(&mut browser, |shop| shop.set_visits(1)).await;
    let genuine = browser.cookie.clone().unwrap();
    let forged = format!("{}x", &genuine[..genuine.len() - 1]);

    for presented in [
        vec!["bad id;".to_owned()],
        vec![forged.clone(), String::new()],
    ] {
        let request = browser.manager.start(presented.clone());
        assert!(request.session::<Shop>().await.unwrap().is_new());
        let finished = request.finish().await;
        let cookie = finished.cookie.expect("a removal cookie");
        assert_eq!(
            (
                cookie.value(),
                cookie.max_age().map(|age| age.whole_seconds())
            ),
            ("", Some(0)),
            "{presented:?} was not withdrawn"
        );
    }

    // An id that names no session *now* may be one a racing request just
    // moved: withdrawing it could delete that request's new cookie.
    let request = browser.request();
    request.session::<Shop>().await.unwrap().regenerate();
    browser.finish(request).await.unwrap();
    for presented in [vec![genuine.clone()], vec![forged, genuine]] {
        let request = browser.manager.start(presented);
        assert!(request.session::<Shop>().await.unwrap().is_new());
        assert!(request.finish().await.cookie.is_none());
    }
    assert!(store.take_writes().len() >= 2);
}

/// An error names its cause where applications print it: a store that
/// cannot be reached says why, not only that it failed.
#[tokio::test]
async fn an_error_shows_its_cause() {
    use std::error::Error as _;
    // Nothing listens on port 1.
    for url in ["postgres://127.0.0.1:1/sessions", "redis://127.0.0.1:1"] {
        let error = match session::store::open(url).await {
            Ok(_) => panic!("{url} opened"),
            Err(error) => error,
        };
        let cause = error.source().expect("a cause").to_string();
        let shown = error.to_string();
        assert!(
            shown.starts_with("session store failed to open: ") && shown.ends_with(&cause),
            "{url}: {shown:?} (cause {cause:?})"
        );
    }
}

/// `touch()` writes a session that changed nothing: a new, empty one is
/// stored and gets its cookie (koa's `save()`); a stored one is extended
/// though the configuration does not roll.
#[tokio::test]
async fn touch_writes_a_session_that_changed_nothing() {
    let (store, mut browser) = setup(SessionConfig::default().rolling(false));
    assert_eq!(visit(&mut browser, |_| {}).await, None, "untouched");
    assert!(store.take_writes().is_empty());

    let cookie = visit(&mut browser, |shop| shop.touch()).await;
    assert!(cookie.is_some(), "a new empty session gets its cookie");
    let writes = store.take_writes();
    assert!(
        matches!(writes.as_slice(), [Call::Create(_, changes)] if changes.set.is_empty()),
        "{writes:?}"
    );
    let key = committed_key(&writes);

    visit(&mut browser, |shop| assert!(!shop.is_new())).await;
    assert!(store.take_writes().is_empty(), "a read writes nothing");
    visit(&mut browser, |shop| shop.touch()).await;
    let writes = store.take_writes();
    assert!(
        matches!(writes.as_slice(), [Call::Update(touched, changes)] if *touched == key && changes.is_touch()),
        "{writes:?}"
    );
}

/// `clear()` returns one struct to its defaults and removes its stored
/// fields; the session, its id and its other structs stay.
#[tokio::test]
async fn clear_resets_one_struct_and_keeps_the_session() {
    let (store, mut browser) = setup(SessionConfig::default());
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_visits(3);
    shop.cart_mut().push("pear".into());
    request
        .session::<Auth>()
        .await
        .unwrap()
        .set_user(Some("ann".into()));
    browser.finish(request).await.expect("a cookie");
    let key = committed_key(&store.take_writes());

    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    assert_eq!(shop.visits(), 3);
    shop.clear();
    assert_eq!(
        (shop.visits(), shop.cart()),
        (0, vec![]),
        "defaults at once"
    );
    shop.set_visits(1);
    browser.finish(request).await;
    let writes = store.take_writes();
    let [Call::Update(updated, changes)] = writes.as_slice() else {
        panic!("one update: {writes:?}");
    };
    assert_eq!(*updated, key, "the same session");
    assert_eq!(
        changes.remove,
        ["cart"],
        "the stored fields cleared and not set again"
    );

    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    assert_eq!((shop.visits(), shop.cart()), (1, vec![]));
    let auth = request.session::<Auth>().await.unwrap();
    assert_eq!(
        auth.user().as_deref(),
        Some("ann"),
        "the other struct stays"
    );
    browser.finish(request).await;
}
