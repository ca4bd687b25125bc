//! Cookie-only sessions: the whole session in one encrypted cookie, with its
//! expiry sealed inside, within a browser's size limit.

mod support;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use session::{Error, Session, SessionConfig, SessionManager};
use support::{label, Browser};

#[derive(Session, Default)]
struct Shop {
    user: Option<String>,
    cart: Vec<String>,
    blob: String,
    #[session(flash)]
    notice: Option<String>,
}

const KEY: [u8; 64] = [4; 64];
const NEW_KEY: [u8; 64] = [6; 64];

/// A browser of a cookie-only manager; the events it reports are collected.
fn browser(config: SessionConfig) -> (Browser, Arc<Mutex<Vec<String>>>) {
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    let config = config.on_event(move |event| seen.lock().unwrap().push(label(event)));
    (
        Browser::new(SessionManager::cookie_only(config).unwrap()),
        events,
    )
}

async fn shop(browser: &mut Browser, change: impl FnOnce(&Session<Shop>)) -> Result<(), Error> {
    let request = browser.request();
    change(&request.session::<Shop>().await?);
    let finished = browser.finish_any(request).await;
    finished.result
}

#[tokio::test]
async fn the_whole_session_travels_encrypted_in_the_cookie() {
    let (mut browser, events) = browser(SessionConfig::default().private([KEY]));
    shop(&mut browser, |shop| {
        shop.set_user(Some("ann-the-customer".into()));
        shop.cart_mut().push("pear".into());
        shop.set_notice(Some("welcome".into()));
    })
    .await
    .unwrap();
    let cookie = browser.cookie.clone().unwrap();
    assert!(!cookie.contains("ann-the-customer") && !cookie.contains("pear"));

    // A second manager with the same key reads it: nothing lives on a server.
    let (mut other, _) = self::browser(SessionConfig::default().private([KEY]));
    other.cookie = Some(cookie);
    shop(&mut other, |shop| {
        assert!(!shop.is_new());
        assert_eq!(shop.user().as_deref(), Some("ann-the-customer"));
        assert_eq!(shop.cart(), ["pear"]);
        assert_eq!(shop.notice().as_deref(), Some("welcome"));
    })
    .await
    .unwrap();
    // The flash was consumed, and the new cookie says so.
    shop(&mut other, |shop| assert_eq!(shop.notice(), None))
        .await
        .unwrap();
    assert!(events.lock().unwrap().is_empty());
}

#[tokio::test]
async fn a_cookie_replayed_after_its_sealed_expiry_is_refused() {
    let config = SessionConfig::default()
        .private([KEY])
        .max_age(Duration::from_secs(1));
    let (mut browser, events) = browser(config);
    shop(&mut browser, |shop| shop.set_user(Some("ann".into())))
        .await
        .unwrap();
    let old = browser.cookie.clone();
    shop(&mut browser, |shop| assert!(!shop.is_new()))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    browser.cookie = old;
    shop(&mut browser, |shop| {
        assert!(shop.is_new(), "an expired cookie was accepted")
    })
    .await
    .unwrap();
    assert_eq!(*events.lock().unwrap(), ["expired"]);
}

#[tokio::test]
async fn tampered_foreign_and_undecodable_cookies_get_a_fresh_session() {
    let (mut browser, events) = browser(SessionConfig::default().private([KEY]));
    shop(&mut browser, |shop| shop.set_user(Some("ann".into())))
        .await
        .unwrap();
    let good = browser.cookie.clone().unwrap();
    let mut flipped = good.clone().into_bytes();
    flipped[10] = if flipped[10] == b'A' { b'B' } else { b'A' };

    // Sealed with the right key, but not a session: text, and packed
    // arrays (base64url) with an id that is none, a time of three bytes,
    // an odd number of strings.
    let sealed = |plain: &str| {
        let mut jar = cookie::CookieJar::new();
        let key = cookie::Key::from(&KEY);
        jar.private_mut(&key)
            .add(cookie::Cookie::new("session", plain.to_owned()));
        jar.get("session").unwrap().value().to_owned()
    };
    let not_sessions = [
        "not a session",
        "kqMuaWSibm8",
        "kqguZXhwaXJlc6MBAgM",
        "kaMuaWQ",
    ];

    let (mut stranger, _) = self::browser(SessionConfig::default().private([NEW_KEY]));
    shop(&mut stranger, |shop| shop.set_user(Some("eve".into())))
        .await
        .unwrap();
    let foreign = stranger.cookie.clone().unwrap();

    for value in [
        String::from_utf8(flipped).unwrap(),
        good[..good.len() - 2].to_owned(),
        foreign,
    ]
    .into_iter()
    .chain(not_sessions.map(sealed))
    {
        browser.cookie = Some(value);
        shop(&mut browser, |shop| assert!(shop.is_new()))
            .await
            .unwrap();
    }
    assert_eq!(
        *events.lock().unwrap(),
        [
            "invalid BadSignature",
            "invalid BadSignature",
            "invalid BadSignature",
            "invalid Undecodable",
            "invalid Undecodable",
            "invalid Undecodable",
            "invalid Undecodable"
        ]
    );
}

#[tokio::test]
async fn keys_rotate_and_an_old_cookie_is_resealed_with_the_new_key() {
    let (mut before, _) = browser(SessionConfig::default().private([KEY]));
    shop(&mut before, |shop| shop.set_user(Some("ann".into())))
        .await
        .unwrap();
    let (mut after, _) = browser(SessionConfig::default().private([NEW_KEY, KEY]));
    after.cookie = before.cookie.clone();
    shop(&mut after, |shop| {
        assert_eq!(shop.user().as_deref(), Some("ann"))
    })
    .await
    .unwrap();
    assert_ne!(after.cookie, before.cookie, "the read resealed the cookie");
    let (mut only_new, _) = browser(SessionConfig::default().private([NEW_KEY]));
    only_new.cookie = after.cookie.clone();
    shop(&mut only_new, |shop| {
        assert_eq!(shop.user().as_deref(), Some("ann"))
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn a_session_at_the_size_limit_fits_and_one_past_it_is_a_typed_error() {
    let (mut browser, _) = browser(SessionConfig::default().private([KEY]));
    shop(&mut browser, |shop| shop.set_user(Some("ann".into())))
        .await
        .unwrap();
    // The largest blob that fits, found by bisection on real commits; each
    // gives the size of the `Set-Cookie` it made.
    let fits = |size: usize| {
        let mut attempt = browser.clone();
        async move {
            let request = attempt.request();
            request.session::<Shop>().await?.set_blob("x".repeat(size));
            let finished = attempt.finish_any(request).await;
            finished.result?;
            Ok::<_, Error>(finished.cookie.unwrap().to_string().len())
        }
    };
    let (mut low, mut high) = (0, 4096);
    while low + 1 < high {
        let middle = (low + high) / 2;
        match fits(middle).await {
            Ok(_) => low = middle,
            Err(_) => high = middle,
        }
    }
    let at_limit = fits(low).await.expect("the largest session that fits");
    assert!(at_limit <= 4096 && at_limit > 4000, "{at_limit}");
    assert!(low > 2000, "only {low} bytes fit");
    eprintln!("the largest blob that fits a cookie: {low} bytes");

    match fits(low + 1).await {
        Err(Error::CookieTooLarge {
            size,
            limit,
            largest,
        }) => {
            assert_eq!(limit, 4096);
            assert!(size > 4096, "{size}");
            assert_eq!(largest[0].0, "blob", "{largest:?}");
            assert_eq!(largest[0].1, low + 1 + 2, "the JSON-encoded blob");
        }
        other => panic!("expected CookieTooLarge, got {:?}", other.map(|_| ())),
    }
    // The failed commit sent no cookie: the client keeps the last good one.
    let mut too_big = browser.clone();
    let before = too_big.cookie.clone();
    let _ = shop(&mut too_big, |shop| shop.set_blob("x".repeat(5000))).await;
    assert_eq!(too_big.cookie, before);
}

#[tokio::test]
async fn destroy_removes_the_cookie_and_owner_operations_say_they_cannot_work() {
    let (mut browser, _) = browser(SessionConfig::default().private([KEY]));
    shop(&mut browser, |shop| {
        shop.set_user(Some("ann".into()));
        shop.set_owner(Some("ann"));
    })
    .await
    .unwrap();
    let request = browser.request();
    let handle = request.session::<Shop>().await.unwrap();
    assert!(matches!(
        handle.revoke_other_sessions().await,
        Err(Error::CookieOnly { .. })
    ));
    handle.destroy();
    browser.finish(request).await;
    assert_eq!(browser.cookie, None, "the removal cookie cleared it");
    assert!(matches!(
        browser.manager.sessions_of("ann").await,
        Err(Error::CookieOnly { .. })
    ));
}

#[tokio::test]
async fn regenerate_draws_a_new_id_but_cannot_end_the_old_cookie() {
    let (mut browser, _) = browser(SessionConfig::default().private([KEY]));
    shop(&mut browser, |shop| shop.set_user(Some("ann".into())))
        .await
        .unwrap();
    let old = browser.cookie.clone();
    let request = browser.request();
    let handle = request.session::<Shop>().await.unwrap();
    let before = handle.public_id();
    handle.regenerate();
    browser.finish(request).await;
    let request = browser.request();
    assert_ne!(request.session::<Shop>().await.unwrap().public_id(), before);
    browser.finish(request).await;
    // The documented limit: a copy of the old cookie still opens.
    browser.cookie = old;
    shop(&mut browser, |shop| {
        assert_eq!(shop.user().as_deref(), Some("ann"))
    })
    .await
    .unwrap();
}

#[test]
fn cookie_only_sessions_need_private_keys() {
    for config in [
        SessionConfig::default(),
        SessionConfig::default().signed([KEY]),
    ] {
        assert!(matches!(
            SessionManager::cookie_only(config),
            Err(Error::InvalidConfig { option: "keys", .. })
        ));
    }
}
