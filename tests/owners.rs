//! Per-user sessions: bind a session to its user, list the user's sessions,
//! revoke them from a handler or from outside any request.

mod support;

use std::time::Duration;

use session::{PublicId, Session, SessionConfig, SessionManager};
use support::{Browser, Recording};

#[derive(Session, Default)]
struct Auth {
    user: Option<String>,
}

fn manager() -> (Recording, SessionManager) {
    let store = Recording::new();
    let manager = SessionManager::new(store.clone(), SessionConfig::default()).unwrap();
    (store, manager)
}

/// A browser that logged in as `user`: regenerated, bound, stored.
async fn log_in(manager: &SessionManager, user: &str) -> Browser {
    let mut browser = Browser::new(manager.clone());
    let request = browser.request();
    let auth = request.session::<Auth>().await.unwrap();
    auth.set_user(Some(user.into()));
    auth.set_owner(Some(user));
    auth.regenerate();
    browser.finish(request).await.expect("a cookie");
    browser
}

/// What `browser` sees: its user and its public id, if still logged in.
async fn whoami(browser: &mut Browser) -> (Option<String>, Option<PublicId>) {
    let request = browser.request();
    let auth = request.session::<Auth>().await.unwrap();
    let seen = (auth.user(), auth.public_id());
    browser.finish(request).await;
    seen
}

async fn listed(manager: &SessionManager, user: &str) -> Vec<PublicId> {
    let mut ids: Vec<_> = manager
        .sessions_of(user)
        .await
        .unwrap()
        .into_iter()
        .map(|session| session.id)
        .collect();
    ids.sort();
    ids
}

#[tokio::test]
async fn a_users_sessions_are_listed_with_opaque_ids_and_times() {
    let (store, manager) = manager();
    let mut laptop = log_in(&manager, "ann").await;
    let mut phone = log_in(&manager, "ann").await;
    log_in(&manager, "bob").await;

    let sessions = manager.sessions_of("ann").await.unwrap();
    assert_eq!(sessions.len(), 2);
    for session in &sessions {
        assert!(session.created_at <= session.updated_at);
        assert!(session.updated_at < session.expires_at);
    }
    let (_, laptop_id) = whoami(&mut laptop).await;
    let (_, phone_id) = whoami(&mut phone).await;
    let mut expected = vec![laptop_id.clone().unwrap(), phone_id.unwrap()];
    expected.sort();
    assert_eq!(listed(&manager, "ann").await, expected);

    let laptop_id = laptop_id.unwrap();
    let cookie = laptop.cookie.clone().unwrap();
    assert!(!cookie.contains(laptop_id.as_str()) && !laptop_id.as_str().contains(&cookie));
    let keys: Vec<String> = store
        .take_calls()
        .iter()
        .filter_map(|call| match call {
            support::Call::Load(key) => Some(key.as_str().to_owned()),
            _ => None,
        })
        .collect();
    assert!(
        keys.iter().all(|key| !key.contains(laptop_id.as_str())),
        "a public id is not a store key"
    );
    assert_eq!(listed(&manager, "nobody").await, []);
}

#[tokio::test]
async fn regenerate_keeps_the_binding_and_destroy_removes_it() {
    let (_, manager) = manager();
    let mut laptop = log_in(&manager, "ann").await;
    let (_, before) = whoami(&mut laptop).await;

    // Between regenerate() and the commit, the session has no public id:
    // the old one dies at the commit, the new one is drawn there.
    let request = laptop.request();
    let auth = request.session::<Auth>().await.unwrap();
    assert_eq!(auth.public_id(), before);
    auth.regenerate();
    assert_eq!(
        auth.public_id(),
        None,
        "after regenerate(), before the commit"
    );
    auth.save().await.unwrap();
    let saved = auth.public_id();
    assert!(
        saved.is_some() && saved != before,
        "after the commit: {saved:?}"
    );
    laptop.finish(request).await;
    let (user, after) = whoami(&mut laptop).await;
    assert_eq!(user.as_deref(), Some("ann"));
    assert_eq!(after, saved, "the id the commit gave is the one it keeps");
    assert_eq!(listed(&manager, "ann").await, [after.unwrap()]);

    let request = laptop.request();
    request.session::<Auth>().await.unwrap().destroy();
    laptop.finish(request).await;
    assert_eq!(listed(&manager, "ann").await, []);
}

#[tokio::test]
async fn unbinding_or_expiring_removes_a_session_from_the_list() {
    let (_, manager) = manager();
    let mut laptop = log_in(&manager, "ann").await;
    let request = laptop.request();
    request.session::<Auth>().await.unwrap().set_owner(None);
    laptop.finish(request).await;
    assert_eq!(listed(&manager, "ann").await, []);

    let mut phone = log_in(&manager, "ann").await;
    let request = phone.request();
    request
        .session::<Auth>()
        .await
        .unwrap()
        .set_max_age(Some(Duration::ZERO));
    phone.finish(request).await;
    assert_eq!(
        listed(&manager, "ann").await,
        [],
        "an expired session is listed"
    );
}

#[tokio::test]
async fn log_out_other_devices_from_a_handler() {
    let (_, manager) = manager();
    let mut laptop = log_in(&manager, "ann").await;
    let mut phone = log_in(&manager, "ann").await;
    let mut tablet = log_in(&manager, "ann").await;
    let mut bob = log_in(&manager, "bob").await;

    let request = laptop.request();
    let ended = request
        .session::<Auth>()
        .await
        .unwrap()
        .revoke_other_sessions()
        .await
        .unwrap();
    laptop.finish(request).await;
    assert_eq!(ended, 2);
    assert_eq!(whoami(&mut laptop).await.0.as_deref(), Some("ann"));
    assert_eq!(whoami(&mut phone).await.0, None, "the phone is logged out");
    assert_eq!(whoami(&mut tablet).await.0, None);
    assert_eq!(
        whoami(&mut bob).await.0.as_deref(),
        Some("bob"),
        "other users are untouched"
    );
}

#[tokio::test]
async fn revoke_one_all_but_one_or_all_from_outside_a_request() {
    let (_, manager) = manager();
    let mut laptop = log_in(&manager, "ann").await;
    let mut phone = log_in(&manager, "ann").await;
    let mut tablet = log_in(&manager, "ann").await;
    let (_, phone_id) = whoami(&mut phone).await;
    let (_, laptop_id) = whoami(&mut laptop).await;

    assert!(manager
        .revoke("ann", &phone_id.clone().unwrap())
        .await
        .unwrap());
    assert!(
        !manager.revoke("ann", &phone_id.unwrap()).await.unwrap(),
        "already gone"
    );
    assert!(
        !manager
            .revoke("bob", &laptop_id.clone().unwrap())
            .await
            .unwrap(),
        "not bob's"
    );
    assert_eq!(whoami(&mut phone).await.0, None);

    assert_eq!(
        manager
            .revoke_all_except("ann", &laptop_id.unwrap())
            .await
            .unwrap(),
        1
    );
    assert_eq!(whoami(&mut tablet).await.0, None);
    assert_eq!(whoami(&mut laptop).await.0.as_deref(), Some("ann"));

    // A password change: everyone out.
    assert_eq!(manager.revoke_all("ann").await.unwrap(), 1);
    assert_eq!(whoami(&mut laptop).await.0, None);
    assert_eq!(listed(&manager, "ann").await, []);
}

#[tokio::test]
async fn a_request_in_flight_when_its_session_is_revoked_cannot_bring_it_back() {
    let (store, manager) = manager();
    let laptop = log_in(&manager, "ann").await;
    let request = laptop.request();
    let auth = request.session::<Auth>().await.unwrap();
    manager.revoke_all("ann").await.unwrap();
    auth.set_user(Some("still ann?".into()));
    let finished = request.finish().await;
    finished.result.unwrap();
    assert_eq!(finished.cookie, None);
    assert!(store.store.is_empty());
    assert_eq!(listed(&manager, "ann").await, []);
}

/// A "your devices" page straight from a handler: the owner's sessions with
/// this one marked, serialized as JSON (times in milliseconds).
#[tokio::test]
async fn a_handler_lists_its_owners_sessions_as_json_with_its_own_marked() {
    let (_, manager) = manager();
    let mut laptop = log_in(&manager, "ann").await;
    let _phone = log_in(&manager, "ann").await;
    let (_, laptop_id) = whoami(&mut laptop).await;

    let request = laptop.request();
    let auth = request.session::<Auth>().await.unwrap();
    let sessions = auth.owner_sessions().await.unwrap();
    assert_eq!(sessions.len(), 2);
    let current: Vec<_> = sessions.iter().filter(|session| session.current).collect();
    assert_eq!(current.len(), 1);
    assert_eq!(Some(&current[0].id), laptop_id.as_ref());
    assert!(manager
        .sessions_of("ann")
        .await
        .unwrap()
        .iter()
        .all(|session| !session.current));

    let json = serde_json::to_value(&sessions).unwrap();
    let laptop_json = json
        .as_array()
        .unwrap()
        .iter()
        .find(|session| session["current"] == true)
        .unwrap();
    assert_eq!(laptop_json["id"], laptop_id.unwrap().as_str());
    let created = laptop_json["created_at"].as_u64().unwrap();
    let expires = laptop_json["expires_at"].as_u64().unwrap();
    assert!(
        created > 1_700_000_000_000 && expires > created,
        "{laptop_json}"
    );

    auth.set_owner(None);
    auth.save().await.unwrap();
    assert_eq!(auth.owner_sessions().await.unwrap(), [], "without an owner");
    laptop.finish(request).await;
}
