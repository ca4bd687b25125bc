//! The handle cannot deadlock: every mix of accessors, guards and handle
//! methods completes, from one task or several. Each pattern runs on a
//! thread of its own with a deadline, so a deadlock fails the test instead of
//! hanging it.

mod support;

use std::sync::mpsc;
use std::time::Duration;

use session::{Session, SessionConfig, SessionManager};
use support::{Browser, Recording};

#[derive(Session, Default, Debug)]
struct Shop {
    user: Option<String>,
    item: String,
    cart: Vec<String>,
}

#[derive(Session, Default, Debug)]
#[session(namespace = "prefs")]
struct Prefs {
    theme: String,
}

fn browser() -> Browser {
    let manager = SessionManager::new(Recording::new(), SessionConfig::default()).unwrap();
    Browser::new(manager)
}

/// Runs `pattern` on a thread of its own and fails if it has not finished
/// within ten seconds.
fn completes<T: Send + 'static>(pattern: impl FnOnce() -> T + Send + 'static) -> T {
    let (done, finished) = mpsc::channel();
    std::thread::spawn(move || done.send(pattern()));
    finished
        .recv_timeout(Duration::from_secs(10))
        .expect("deadlock: the pattern did not complete")
}

async fn shop(browser: &Browser) -> (session::RequestSession, Session<Shop>) {
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    shop.set_item("apple".into());
    (request, shop)
}

#[tokio::test]
async fn a_getter_inside_a_guard_statement_completes() {
    let (_request, shop) = shop(&browser()).await;
    let cart = completes(move || {
        shop.cart_mut().push(shop.item());
        shop.cart()
    });
    assert_eq!(cart, ["apple"]);
}

#[tokio::test]
async fn handle_methods_while_a_guard_lives_complete() {
    let (request, shop) = shop(&browser()).await;
    let prefs = request.session::<Prefs>().await.unwrap();
    let (new, max_age) = completes(move || {
        let mut cart = shop.cart_mut();
        cart.push(shop.item());
        let new = shop.is_new();
        shop.regenerate();
        shop.set_max_age(Some(Duration::from_secs(60)));
        let max_age = shop.max_age();
        shop.set_owner(Some("ann"));
        let _ = (shop.owner(), shop.public_id(), shop.expires_at());
        prefs.set_theme("dark".into());
        let mut same_field = shop.cart_mut();
        same_field.push("second guard".into());
        drop(same_field);
        cart.push("pear".into());
        (new, max_age)
    });
    assert!(new);
    assert_eq!(max_age, Some(Duration::from_secs(60)));
}

#[tokio::test]
async fn destroy_while_a_guard_lives_completes_and_the_guard_writes_to_the_new_session() {
    let (request, shop) = shop(&browser()).await;
    let handle = shop.clone();
    let cart = completes(move || {
        let mut cart = handle.cart_mut();
        handle.destroy();
        cart.push("after destroy".into());
        drop(cart);
        handle.cart()
    });
    assert_eq!(cart, ["after destroy"]);
    assert_eq!(shop.item(), "", "destroy reset the other fields");
    assert!(request.finish().await.result.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_save_in_another_task_while_a_guard_lives_completes() {
    let (_request, shop) = shop(&browser()).await;
    let mut cart = shop.cart_mut();
    cart.push("held".into());
    let saver = shop.clone();
    let saved = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::spawn(async move {
            saver.regenerate();
            saver.save().await
        }),
    )
    .await
    .expect("deadlock: save waited for the guard");
    saved.unwrap().unwrap();
    assert!(!shop.is_new());
    drop(cart);
    assert_eq!(shop.cart(), ["held"]);
}

#[tokio::test]
async fn a_guard_may_cross_an_await_in_a_spawned_task() {
    let mut browser = browser();
    let (request, shop) = shop(&browser).await;
    let worker = shop.clone();
    tokio::spawn(async move {
        let mut cart = worker.cart_mut();
        tokio::task::yield_now().await;
        cart.push(worker.item());
    })
    .await
    .unwrap();
    assert_eq!(shop.cart(), ["apple"]);
    browser.finish(request).await.expect("a cookie");
    let request = browser.request();
    let shop = request.session::<Shop>().await.unwrap();
    assert_eq!(shop.cart(), ["apple"], "the guard's change was committed");
}

#[tokio::test]
async fn a_guard_that_changes_nothing_writes_nothing() {
    let store = Recording::new();
    let mut browser =
        Browser::new(SessionManager::new(store.clone(), SessionConfig::default()).unwrap());
    let (request, _) = shop(&browser).await;
    browser.finish(request).await;
    store.take_calls();
    let request = browser.request();
    request.session::<Shop>().await.unwrap().cart_mut().sort();
    assert_eq!(browser.finish(request).await, None);
    assert!(store.take_writes().is_empty());
}

/// `with_x` reads in place, marks nothing dirty, and refuses loudly (a
/// panic, not a deadlock) a closure that uses the session; the session
/// works on afterwards.
#[tokio::test]
async fn a_with_reader_borrows_and_a_session_used_inside_it_panics_not_deadlocks() {
    let (request, shop) = shop(&browser()).await;
    shop.cart_mut().push("pear".into());
    assert_eq!(shop.with_cart(|cart| cart.len()), 1);
    assert_eq!(shop.with_item(|item| item.clone()), "apple");

    let nested = completes(move || {
        let inside = shop.clone();
        let attempt = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            shop.with_cart(|_| inside.item())
        }));
        (attempt.is_err(), shop.cart(), shop.with_cart(Vec::len))
    });
    assert_eq!(
        nested,
        (true, vec!["pear".to_owned()], 1),
        "panicked, then usable"
    );
    request.finish().await.result.unwrap();
}
