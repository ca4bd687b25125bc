//! The `valid` and `before_save` hooks, and what events tell about a session.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use session::{MemoryStore, Session, SessionConfig, SessionEvent, SessionManager};
use support::Browser;

#[derive(Session, Default)]
struct Auth {
    user: Option<String>,
    agent: Option<String>,
    /// Set by the `before_save` hook.
    saves: u32,
}

/// A browser over `config` and a store shared with other browsers; the
/// events it reports are collected.
fn browser(
    store: &Arc<MemoryStore>,
    config: SessionConfig,
) -> (Browser, Arc<Mutex<Vec<SessionEvent>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let config = config.on_event(move |event| {
        // Events are not `Clone`; keep what the tests look at.
        let kept = match event {
            SessionEvent::Missed { session } => SessionEvent::Missed {
                session: session.clone(),
            },
            SessionEvent::Gone { session } => SessionEvent::Gone {
                session: session.clone(),
            },
            SessionEvent::Invalid(why) => SessionEvent::Invalid(*why),
            _ => return,
        };
        seen.lock().unwrap().push(kept);
    });
    let manager = SessionManager::new(store.clone(), config).unwrap();
    (Browser::new(manager), events)
}

/// Logs `user` in from `agent` and returns the browser's cookie.
async fn log_in(browser: &mut Browser, user: &str, agent: &str) -> String {
    let request = browser.request();
    let auth = request.session::<Auth>().await.unwrap();
    auth.set_user(Some(user.into()));
    auth.set_agent(Some(agent.into()));
    browser.finish(request).await;
    browser.cookie.clone().unwrap()
}

/// Only sessions made for the agent "firefox" are valid.
fn only_firefox(calls: Arc<AtomicUsize>) -> SessionConfig {
    SessionConfig::default().valid(move |loaded| {
        let calls = Arc::clone(&calls);
        async move {
            calls.fetch_add(1, Ordering::SeqCst);
            let auth = loaded.session::<Auth>().await.unwrap();
            auth.agent().as_deref() == Some("firefox")
        }
    })
}

#[tokio::test]
async fn a_session_the_valid_hook_refuses_is_replaced_by_a_fresh_one_and_kept_in_the_store() {
    let store = Arc::new(MemoryStore::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let (mut plain, _) = browser(&store, SessionConfig::default());
    let (mut strict, events) = browser(&store, only_firefox(Arc::clone(&calls)));

    // A fresh session is not judged.
    let request = strict.request();
    assert!(request.session::<Auth>().await.unwrap().is_new());
    strict.finish(request).await;
    assert_eq!(calls.load(Ordering::SeqCst), 0);

    let chrome = log_in(&mut plain, "ann", "chrome").await;
    strict.cookie = Some(chrome.clone());
    let request = strict.request();
    let auth = request.session::<Auth>().await.unwrap();
    assert!(auth.is_new(), "the refused session was handed out");
    assert_eq!(auth.user(), None);
    // Asking again does not judge again.
    request.session::<Auth>().await.unwrap();
    strict.finish(request).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    let seen = std::mem::take(&mut *events.lock().unwrap());
    assert!(
        matches!(
            seen[..],
            [SessionEvent::Invalid(session::InvalidCookie::Rejected)]
        ),
        "{seen:?}"
    );

    // Refused, not deleted: a manager without the hook still finds it.
    plain.cookie = Some(chrome);
    let request = plain.request();
    assert_eq!(
        request.session::<Auth>().await.unwrap().user().as_deref(),
        Some("ann")
    );
    plain.finish(request).await;
}

#[tokio::test]
async fn a_session_the_valid_hook_accepts_is_handed_out_with_what_the_hook_changed() {
    let store = Arc::new(MemoryStore::new());
    let config = SessionConfig::default().valid(|loaded| async move {
        let auth = loaded.session::<Auth>().await.unwrap();
        auth.set_user(auth.user().map(|user| user.to_uppercase()));
        true
    });
    let (mut browser, events) = browser(&store, config);
    log_in(&mut browser, "ann", "firefox").await;
    let request = browser.request();
    assert_eq!(
        request.session::<Auth>().await.unwrap().user().as_deref(),
        Some("ANN")
    );
    browser.finish(request).await;
    let request = browser.request();
    assert_eq!(
        request.session::<Auth>().await.unwrap().user().as_deref(),
        Some("ANN")
    );
    browser.finish(request).await;
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn before_save_runs_before_every_commit_of_a_used_session_and_its_changes_land() {
    let store = Arc::new(MemoryStore::new());
    let runs = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&runs);
    let config = SessionConfig::default().before_save(move |request| {
        let counted = Arc::clone(&counted);
        async move {
            counted.fetch_add(1, Ordering::SeqCst);
            let auth = request.session::<Auth>().await.unwrap();
            auth.set_saves(auth.saves() + 1);
            // A save from the hook commits without running the hook again.
            auth.save().await.unwrap();
        }
    });
    let (mut browser, _) = browser(&store, config);
    log_in(&mut browser, "ann", "firefox").await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    // A request that never touches the session runs no hook.
    let request = browser.request();
    browser.finish(request).await;
    assert_eq!(runs.load(Ordering::SeqCst), 1);

    let request = browser.request();
    let auth = request.session::<Auth>().await.unwrap();
    assert_eq!(auth.saves(), 1);
    auth.save().await.unwrap();
    browser.finish(request).await;
    assert_eq!(runs.load(Ordering::SeqCst), 3, "one run per commit");
    let request = browser.request();
    assert_eq!(request.session::<Auth>().await.unwrap().saves(), 3);
    browser.finish(request).await;
}

#[tokio::test]
async fn events_name_sessions_by_their_public_id_never_by_the_cookie() {
    let store = Arc::new(MemoryStore::new());
    let (mut browser, events) = browser(&store, SessionConfig::default());
    let cookie = log_in(&mut browser, "ann", "firefox").await;
    let request = browser.request();
    let public = request.session::<Auth>().await.unwrap().public_id();
    browser.finish(request).await;
    let public = public.expect("a stored session has a public id");

    // Another request destroys the session after this one loaded it.
    let late = browser.request();
    let auth = late.session::<Auth>().await.unwrap();
    let request = browser.request();
    request.session::<Auth>().await.unwrap().destroy();
    browser.finish(request).await;
    auth.set_user(None);
    let _ = late.finish().await;
    // The same cookie again: nothing there any more.
    browser.cookie = Some(cookie.clone());
    let request = browser.request();
    request.session::<Auth>().await.unwrap();
    browser.finish(request).await;

    let events = events.lock().unwrap();
    let named: Vec<_> = events
        .iter()
        .map(|event| match event {
            SessionEvent::Gone { session } | SessionEvent::Missed { session } => session,
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(named.len(), 2, "{events:?}");
    for session in named {
        assert_eq!(*session, public);
        assert!(!cookie.contains(session.as_str()) && !session.as_str().contains(&cookie));
    }
    assert_eq!((events[0].name(), events[1].name()), ("gone", "missed"));
}
