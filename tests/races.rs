//! Requests of one session that race each other, and commits that fail half
//! way: nothing may resurrect, fork or shorten a session, and no change made
//! while a commit is in flight may be undone by it.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use session::store::{BoxError, ChangeSet, Created, Moved, OwnedSession, Record, Update, Updated};
use session::{Error, MemoryStore, Session, SessionConfig, SessionManager, SessionStore, StoreKey};
use support::{Browser, Call, Recording};

#[derive(Session, Default, Debug)]
struct Shop {
    user: Option<String>,
    visits: u64,
    cart: Vec<String>,
}

/// A browser on a recording store whose events are collected.
fn setup(config: SessionConfig) -> (Recording, Browser, Arc<Mutex<Vec<String>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let config = config.on_event(move |event| seen.lock().unwrap().push(support::label(event)));
    let store = Recording::new();
    let manager = SessionManager::new(store.clone(), config).unwrap();
    (store, Browser::new(manager), events)
}

/// A browser with a stored session holding `visits = 1`.
async fn logged_in(config: SessionConfig) -> (Recording, Browser, Arc<Mutex<Vec<String>>>) {
    let (store, mut browser, events) = setup(config);
    let request = browser.request();
    request.session::<Shop>().await.unwrap().set_visits(1);
    browser.finish(request).await.expect("a cookie");
    store.take_calls();
    (store, browser, events)
}

/// What a client presenting `cookie` sees.
async fn shop_seen_with(
    browser: &Browser,
    cookie: &str,
) -> (bool, u64, Option<String>, Vec<String>) {
    let request = browser.manager.start(Some(cookie.to_owned()));
    let shop = request.session::<Shop>().await.unwrap();
    (shop.is_new(), shop.visits(), shop.user(), shop.cart())
}

/// Starts `shop.save()`, runs `meanwhile` while the store holds its write,
/// then lets the write through and waits for the save to succeed.
async fn while_a_save_is_held(
    store: &Recording,
    shop: &Session<Shop>,
    meanwhile: impl FnOnce(&Session<Shop>),
) {
    store.hold_writes();
    let saving = tokio::spawn({
        let shop = shop.clone();
        async move { shop.save().await }
    });
    store.until_held().await;
    meanwhile(shop);
    store.release();
    saving.await.unwrap().expect("the held save succeeds");
}

#[tokio::test]
async fn a_write_racing_a_regenerate_is_dropped_and_the_old_id_reaches_nothing() {
    let (store, mut browser, events) = logged_in(SessionConfig::default()).await;
    let old = browser.cookie.clone().unwrap();

    let late = browser.request();
    let late_shop = late.session::<Shop>().await.unwrap();

    let login = browser.request();
    let shop = login.session::<Shop>().await.unwrap();
    shop.set_user(Some("ann".into()));
    shop.regenerate();
    let new = browser.finish(login).await.expect("a new cookie");
    assert_ne!(new.value(), old);

    late_shop.cart_mut().push("pear".into());
    let finished = late.finish().await;
    finished.result.expect("a dropped change is not an error");
    assert_eq!(finished.cookie, None, "the old id must not be re-sent");
    assert_eq!(
        events.lock().unwrap().last().map(String::as_str),
        Some("gone")
    );

    assert_eq!(
        store.store.len(),
        1,
        "one session, not a resurrected second"
    );
    let (new_session, visits, user, cart) = shop_seen_with(&browser, &old).await;
    assert!(
        new_session && visits == 0 && user.is_none(),
        "the old id leads nowhere"
    );
    assert!(cart.is_empty());
    let (_, visits, user, cart) = shop_seen_with(&browser, new.value()).await;
    assert_eq!((visits, user.as_deref()), (1, Some("ann")));
    assert!(
        cart.is_empty(),
        "the late change did not follow the session"
    );
}

#[tokio::test]
async fn a_write_racing_a_destroy_does_not_bring_the_session_back() {
    let (store, mut browser, events) = logged_in(SessionConfig::default()).await;
    let old = browser.cookie.clone().unwrap();

    let late = browser.request();
    let late_shop = late.session::<Shop>().await.unwrap();
    let logout = browser.request();
    logout.session::<Shop>().await.unwrap().destroy();
    let removal = browser.finish(logout).await.expect("a removal cookie");
    assert_eq!(removal.value(), "");

    late_shop.set_user(Some("mallory".into()));
    let finished = late.finish().await;
    finished.result.unwrap();
    assert_eq!(finished.cookie, None);
    assert!(store.store.is_empty(), "the destroyed session came back");
    assert!(shop_seen_with(&browser, &old).await.0);
    assert!(events.lock().unwrap().contains(&"gone".to_owned()));
}

#[tokio::test]
async fn a_rolling_touch_of_a_gone_session_writes_nothing_and_sends_no_cookie() {
    let (store, mut browser, _) = logged_in(SessionConfig::default().rolling(true)).await;
    let reader = browser.request();
    assert_eq!(reader.session::<Shop>().await.unwrap().visits(), 1);

    let logout = browser.request();
    logout.session::<Shop>().await.unwrap().destroy();
    browser.finish(logout).await;

    let finished = reader.finish().await;
    finished.result.unwrap();
    assert_eq!(finished.cookie, None, "a touch must not re-send a dead id");
    assert!(store.store.is_empty());
}

#[tokio::test]
async fn of_two_racing_regenerates_one_wins_and_no_fork_remains() {
    let (store, browser, _) = logged_in(SessionConfig::default()).await;
    let first = browser.request();
    let second = browser.request();
    first.session::<Shop>().await.unwrap().regenerate();
    let shop = second.session::<Shop>().await.unwrap();
    shop.regenerate();
    shop.set_user(Some("second".into()));

    let first = first.finish().await;
    let second = second.finish().await;
    first.result.unwrap();
    second.result.unwrap();
    assert!(first.cookie.is_some());
    assert_eq!(second.cookie, None, "the loser gets no session");
    assert_eq!(store.store.len(), 1);
}

#[tokio::test]
async fn a_concurrent_touch_never_cuts_remember_me_short() {
    let (store, mut browser, _) = logged_in(SessionConfig::default().rolling(true)).await;
    let stale = browser.request();
    assert_eq!(stale.session::<Shop>().await.unwrap().visits(), 1);

    let remember = browser.request();
    let thirty_days = Duration::from_secs(30 * 24 * 3600);
    remember
        .session::<Shop>()
        .await
        .unwrap()
        .set_max_age(Some(thirty_days));
    browser.finish(remember).await;
    let key = match store.take_writes().as_slice() {
        [Call::Update(key, _)] => key.clone(),
        other => panic!("expected one update, got {other:?}"),
    };

    // Loaded before "remember me" with the one-day default, it only extends.
    let cookie = browser.finish(stale).await.expect("rolling re-sends");
    let record = store.peek(&key).await.unwrap();
    assert!(
        record.ttl > Duration::from_secs(29 * 24 * 3600),
        "{:?}",
        record.ttl
    );
    assert_eq!(record.max_age, Some(thirty_days));
    assert!(
        cookie.max_age().unwrap().whole_days() >= 29,
        "the cookie follows the store's expiry: {cookie}"
    );
}

#[tokio::test]
async fn a_destroy_while_a_save_is_in_flight_is_not_undone_by_it() {
    let (store, mut browser, _) = logged_in(SessionConfig::default()).await;
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_visits(2);

    while_a_save_is_held(&store, &shop, |shop| shop.destroy()).await;

    let cookie = browser.finish(request).await.expect("a removal cookie");
    assert_eq!(cookie.value(), "", "{cookie}");
    assert!(
        store.store.is_empty(),
        "the save brought the destroyed session back"
    );
}

#[tokio::test]
async fn a_regenerate_or_max_age_while_a_save_is_in_flight_still_happens() {
    let (store, mut browser, _) = logged_in(SessionConfig::default()).await;
    let old = browser.cookie.clone().unwrap();
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_visits(2);

    while_a_save_is_held(&store, &shop, |shop| {
        shop.regenerate();
        shop.set_max_age(Some(Duration::from_secs(7 * 24 * 3600)));
    })
    .await;

    let cookie = browser.finish(request).await.expect("a cookie");
    assert_ne!(cookie.value(), old, "the regenerate was lost");
    assert_eq!(
        cookie.max_age().unwrap().whole_days(),
        7,
        "the max-age was lost"
    );
    assert!(shop_seen_with(&browser, &old).await.0);
    let (_, visits, ..) = shop_seen_with(&browser, cookie.value()).await;
    assert_eq!(visits, 2);
}

#[tokio::test]
async fn a_cookie_an_earlier_save_prepared_survives_a_failing_final_commit() {
    let (store, browser, _) = setup(SessionConfig::default());
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_visits(1);
    shop.save().await.unwrap();
    shop.set_user(Some("ann".into()));
    store.set_failing(true);
    let finished = request.finish().await;
    assert!(matches!(finished.result, Err(Error::Store { .. })));
    let cookie = finished.cookie.expect("the saved session's cookie");
    store.set_failing(false);
    let (new, visits, user, _) = shop_seen_with(&browser, cookie.value()).await;
    assert_eq!((new, visits, user), (false, 1, None));
}

#[tokio::test]
async fn a_failed_regenerate_leaves_the_old_session_and_a_retry_moves_it_whole() {
    let (store, mut browser, _) = logged_in(SessionConfig::default()).await;
    let old = browser.cookie.clone().unwrap();
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_user(Some("ann".into()));
    shop.regenerate();
    store.set_failing(true);
    assert!(shop.save().await.is_err());
    store.set_failing(false);
    let (new, visits, user, _) = shop_seen_with(&browser, &old).await;
    assert_eq!(
        (new, visits, user),
        (false, 1, None),
        "the old session is intact"
    );

    let cookie = browser.finish(request).await.expect("the retry moves it");
    assert_ne!(cookie.value(), old);
    let (_, visits, user, _) = shop_seen_with(&browser, cookie.value()).await;
    assert_eq!(
        (visits, user.as_deref()),
        (1, Some("ann")),
        "the same session, whole"
    );
    assert_eq!(store.store.len(), 1);
}

/// A store that cannot move a record atomically (as with keys on different
/// Redis Cluster nodes): it writes the whole record under the new key, then
/// deletes the old one; and it can fail that second step.
#[derive(Debug, Default)]
struct CopyThenDelete {
    inner: MemoryStore,
    calls: AtomicUsize,
    fail_call: AtomicUsize,
}

impl CopyThenDelete {
    fn step(&self) -> Result<(), BoxError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if call == self.fail_call.load(Ordering::SeqCst) {
            return Err("the second node is down (test)".into());
        }
        Ok(())
    }
}

/// The stored keys of `Shop`: a copy made through `create` needs them static.
const SHOP_KEYS: [&str; 3] = ["user", "visits", "cart"];

#[async_trait]
impl SessionStore for CopyThenDelete {
    async fn load(&self, key: &StoreKey) -> Result<Option<Record>, BoxError> {
        self.inner.load(key).await
    }
    async fn create(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Created, BoxError> {
        self.inner.create(key, changes).await
    }
    async fn update(&self, key: &StoreKey, changes: &ChangeSet) -> Result<Updated, BoxError> {
        self.inner.update(key, changes).await
    }
    async fn rekey(
        &self,
        from: &StoreKey,
        to: &StoreKey,
        _changes: &ChangeSet,
        whole: &Record,
    ) -> Result<Moved, BoxError> {
        if self.inner.load(from).await?.is_none() {
            return Ok(Moved::Gone);
        }
        self.step()?;
        let copy = ChangeSet {
            set: whole
                .fields
                .iter()
                .filter_map(|(key, value)| {
                    let key = SHOP_KEYS.iter().find(|known| **known == key)?;
                    Some((*key, value.to_vec().into()))
                })
                .collect(),
            remove: Vec::new(),
            max_age: Update::Set(whole.max_age),
            default_max_age: whole.ttl,
            owner: Update::Set(whole.owner.clone()),
            seen_max_age: None,
        };
        let Created::Written(expiry) = self.inner.create(to, &copy).await? else {
            return Ok(Moved::KeyTaken);
        };
        self.step()?;
        self.inner.delete(from).await?;
        Ok(Moved::Written(expiry))
    }
    async fn delete(&self, key: &StoreKey) -> Result<(), BoxError> {
        self.inner.delete(key).await
    }
    async fn list_owned(&self, owner: &str) -> Result<Vec<OwnedSession>, BoxError> {
        self.inner.list_owned(owner).await
    }
    async fn delete_owned(&self, owner: &str, keep: Option<&StoreKey>) -> Result<u64, BoxError> {
        self.inner.delete_owned(owner, keep).await
    }
}

#[tokio::test]
async fn a_regenerate_failing_half_way_on_a_copying_store_keeps_the_old_session() {
    let store = Arc::new(CopyThenDelete::default());
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    let mut browser = Browser::new(manager);
    let request = browser.request();
    request.session::<Shop>().await.unwrap().set_visits(3);
    browser.finish(request).await;
    let old = browser.cookie.clone().unwrap();

    store.fail_call.store(2, Ordering::SeqCst); // the delete of the old key
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_user(Some("ann".into()));
    shop.regenerate();
    let finished = browser.finish_any(request).await;
    assert!(matches!(
        finished.result,
        Err(Error::Store {
            op: session::StoreOp::Rekey,
            ..
        })
    ));
    assert_eq!(finished.cookie, None, "no cookie for a move that failed");
    assert_eq!(
        browser.cookie.as_deref(),
        Some(old.as_str()),
        "the client keeps its id"
    );
    let (new, visits, ..) = shop_seen_with(&browser, &old).await;
    assert_eq!((new, visits), (false, 3), "the old session is intact");

    // Once the store is back, the move carries the whole session.
    store.fail_call.store(0, Ordering::SeqCst);
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_user(Some("ann".into()));
    shop.regenerate();
    let cookie = browser.finish(request).await.expect("moved");
    let (_, visits, user, _) = shop_seen_with(&browser, cookie.value()).await;
    assert_eq!((visits, user.as_deref()), (3, Some("ann")));
    assert!(shop_seen_with(&browser, &old).await.0, "the old id is gone");
}

#[tokio::test]
async fn a_new_session_never_joins_a_stored_one_under_a_repeated_id() {
    let (store, mut first, _) = setup(SessionConfig::default().id_generator(|| "same-id".into()));
    let request = first.request();
    request
        .session::<Shop>()
        .await
        .unwrap()
        .set_user(Some("ann".into()));
    first.finish(request).await;

    let second = Browser::new(first.manager.clone());
    let request = second.request();
    request
        .session::<Shop>()
        .await
        .unwrap()
        .set_user(Some("mallory".into()));
    let finished = request.finish().await;
    assert!(
        matches!(finished.result, Err(Error::IdsExhausted { attempts: 4 })),
        "{:?}",
        finished.result
    );
    assert_eq!(finished.cookie, None);
    let (_, _, user, _) = shop_seen_with(&first, "same-id").await;
    assert_eq!(
        user.as_deref(),
        Some("ann"),
        "a stranger joined the session"
    );
    assert_eq!(store.store.len(), 1);
}

#[tokio::test]
async fn a_taken_id_is_replaced_by_a_fresh_draw() {
    let drawn = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&drawn);
    let config = SessionConfig::default().id_generator(move || {
        let n = counter.fetch_add(1, Ordering::SeqCst);
        // The first two sessions draw the same id first.
        if n < 2 {
            "repeated".into()
        } else {
            format!("fresh-{n}")
        }
    });
    let (store, mut first, _) = setup(config);
    let request = first.request();
    request.session::<Shop>().await.unwrap().set_visits(1);
    assert_eq!(first.finish(request).await.unwrap().value(), "repeated");

    let mut second = Browser::new(first.manager.clone());
    let request = second.request();
    request.session::<Shop>().await.unwrap().set_visits(2);
    let cookie = second.finish(request).await.unwrap();
    assert_eq!(cookie.value(), "fresh-2");
    let creates = store
        .take_writes()
        .into_iter()
        .filter(|call| matches!(call, Call::Create(..)))
        .count();
    assert_eq!(creates, 3, "one create, then a taken id and a retry");
    assert_eq!(shop_seen_with(&first, "repeated").await.1, 1);
}
