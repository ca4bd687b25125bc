//! Signed and private session cookies: round trips, key rotation, and every
//! kind of tampering, which gets a fresh session and an `Invalid` event,
//! never an error.

mod support;

use std::sync::{Arc, Mutex};

use session::{Error, MemoryStore, SameSite, Session, SessionConfig, SessionEvent, SessionManager};

#[derive(Session, Default)]
struct Visits {
    count: u64,
}

const OLD: [u8; 64] = [1; 64];
const NEW: [u8; 64] = [2; 64];
const OTHER: [u8; 64] = [3; 64];

/// A manager over one shared store, recording the events it reports.
struct Site {
    manager: SessionManager,
    events: Arc<Mutex<Vec<String>>>,
}

impl Site {
    fn new(store: &Arc<MemoryStore>, config: SessionConfig) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&events);
        let config = config.on_event(move |event: &SessionEvent| {
            seen.lock().unwrap().push(support::label(event));
        });
        Self {
            manager: SessionManager::new(store.clone(), config).unwrap(),
            events,
        }
    }

    /// One request presenting the raw `Cookie` header lines `headers`: counts
    /// a visit and returns the count it saw and the `Set-Cookie` value.
    async fn visit(&self, headers: &[&[u8]]) -> (u64, Option<String>) {
        let request = self.manager.start_from_cookies(headers.iter().copied());
        let visits = request.session::<Visits>().await.unwrap();
        let seen = visits.count();
        visits.set_count(seen + 1);
        let finished = request.finish().await;
        finished.result.unwrap();
        (
            seen,
            finished.cookie.map(|cookie| cookie.value().to_owned()),
        )
    }

    /// A request that only reads: the count it saw and any `Set-Cookie`.
    async fn look(&self, headers: &[&[u8]]) -> (u64, Option<String>) {
        let request = self.manager.start_from_cookies(headers.iter().copied());
        let seen = request.session::<Visits>().await.unwrap().count();
        let finished = request.finish().await;
        finished.result.unwrap();
        (
            seen,
            finished.cookie.map(|cookie| cookie.value().to_owned()),
        )
    }

    fn take_events(&self) -> Vec<String> {
        std::mem::take(&mut *self.events.lock().unwrap())
    }
}

fn header(value: &str) -> Vec<u8> {
    format!("session={value}").into_bytes()
}

#[tokio::test]
async fn a_signed_cookie_round_trips_and_carries_the_id_with_a_signature() {
    let store = Arc::new(MemoryStore::new());
    let site = Site::new(&store, SessionConfig::default().signed([NEW]));
    let (_, cookie) = site.visit(&[]).await;
    let cookie = cookie.unwrap();
    // 44 characters of base64 signature, then the 43-character id.
    assert_eq!(cookie.len(), 44 + 43, "{cookie}");
    assert_eq!(site.visit(&[&header(&cookie)]).await.0, 1);
    assert!(site.take_events().is_empty());
}

#[tokio::test]
async fn a_private_cookie_round_trips_and_hides_the_id() {
    let store = Arc::new(MemoryStore::new());
    let plain = Site::new(&store, SessionConfig::default());
    let private = Site::new(&store, SessionConfig::default().private([NEW]));
    let (_, cookie) = private.visit(&[]).await;
    let cookie = cookie.unwrap();
    assert_eq!(private.visit(&[&header(&cookie)]).await.0, 1);
    // Presented as a plain id, the sealed value names no session.
    assert_eq!(plain.look(&[&header(&cookie)]).await.0, 0);
    // Encrypted twice, the same id looks different (a fresh nonce).
    let (_, again) = private.visit(&[&header(&cookie)]).await;
    assert_ne!(again.unwrap(), cookie);
}

#[tokio::test]
async fn keys_rotate_without_logging_anyone_out() {
    for private in [false, true] {
        let store = Arc::new(MemoryStore::new());
        let protect = |config: SessionConfig, keys: &[[u8; 64]]| match private {
            true => config.private(keys),
            false => config.signed(keys),
        };
        let before = Site::new(&store, protect(SessionConfig::default(), &[OLD]));
        let after = Site::new(&store, protect(SessionConfig::default(), &[NEW, OLD]));
        let only_new = Site::new(&store, protect(SessionConfig::default(), &[NEW]));

        let (_, old_cookie) = before.visit(&[]).await;
        let old_cookie = old_cookie.unwrap();
        // The old key still verifies, and the response, though it only
        // reads, carries the cookie made with the new key.
        let (seen, renewed) = after.look(&[&header(&old_cookie)]).await;
        assert_eq!(seen, 1, "private: {private}");
        let renewed = renewed.expect("a cookie made with the new key");
        assert_ne!(renewed, old_cookie);
        assert!(after.take_events().is_empty());
        // Once the old key is gone, the renewed cookie still works, the old
        // one no longer does.
        assert_eq!(only_new.look(&[&header(&renewed)]).await, (1, None));
        assert_eq!(only_new.look(&[&header(&old_cookie)]).await.0, 0);
        assert_eq!(
            only_new.take_events(),
            ["invalid BadSignature"],
            "private: {private}"
        );
    }
}

#[tokio::test]
async fn tampered_cookies_get_a_fresh_session_never_an_error() {
    for private in [false, true] {
        let store = Arc::new(MemoryStore::new());
        let config = match private {
            true => SessionConfig::default().private([NEW]),
            false => SessionConfig::default().signed([NEW]),
        };
        let site = Site::new(&store, config.clone());
        let wrong_key = Site::new(&store, config.signed([OTHER]));
        let (_, cookie) = site.visit(&[]).await;
        let cookie = cookie.unwrap();
        site.visit(&[&header(&cookie)]).await;
        site.take_events();

        let mut tampered = Vec::new();
        for position in [0, cookie.len() / 2, cookie.len() - 1] {
            let mut flipped = cookie.clone().into_bytes();
            flipped[position] = if flipped[position] == b'A' {
                b'B'
            } else {
                b'A'
            };
            tampered.push(String::from_utf8(flipped).unwrap());
        }
        tampered.push(cookie[..cookie.len() - 1].to_owned());
        tampered.push(cookie[..20].to_owned());
        tampered.push(String::new());
        tampered.push(format!("{cookie}{}", "A".repeat(5000)));
        tampered.push(cookie[44..].to_owned()); // the bare id, signature cut off
                                                // Each is refused, and withdrawn: the client stops sending it.
        for value in &tampered {
            assert_eq!(
                site.look(&[&header(value)]).await,
                (0, Some(String::new())),
                "{value:?} was accepted or kept (private: {private})"
            );
        }
        let events = site.take_events();
        assert_eq!(events.len(), tampered.len(), "{events:?}");
        let bad_signatures = events
            .iter()
            .filter(|event| *event == "invalid BadSignature");
        assert!(bad_signatures.count() >= tampered.len() - 1, "{events:?}");

        // Signed with a key this site does not have.
        let (_, foreign) = wrong_key.visit(&[]).await;
        assert_eq!(site.look(&[&header(&foreign.unwrap())]).await.0, 0);

        // Not UTF-8, and a neighbour of the same name: the good cookie wins.
        let mut not_utf8 = b"session=".to_vec();
        not_utf8.extend_from_slice(&[0xff, 0xfe, b'x']);
        assert_eq!(site.look(&[&not_utf8]).await.0, 0);
        let both = format!("session={}; session={cookie}", tampered[0]);
        assert_eq!(site.look(&[both.as_bytes()]).await.0, 2);
    }
}

#[tokio::test]
async fn short_or_missing_keys_are_refused_at_startup() {
    let short: &[&[u8]] = &[&[0; 63]];
    let empty: &[&[u8]] = &[];
    for (config, what) in [
        (SessionConfig::default().signed(short), "short signing key"),
        (
            SessionConfig::default().private(short),
            "short encryption key",
        ),
        (SessionConfig::default().signed(empty), "no signing key"),
        (
            SessionConfig::default().private([NEW.as_slice(), &[1; 10]]),
            "one short key",
        ),
    ] {
        let refused = SessionManager::new(MemoryStore::new(), config);
        assert!(
            matches!(refused, Err(Error::InvalidConfig { option: "keys", .. })),
            "{what}: {refused:?}"
        );
    }
}

#[test]
fn keys_never_show_in_debug_output() {
    let config = SessionConfig::default().signed([[0xAB; 64], [0xCD; 64]]);
    let shown = format!("{config:?}");
    assert!(shown.contains("Signed(2 keys)"), "{shown}");
    // 0xAB and 0xCD, as `Debug` would print the bytes.
    assert!(!shown.contains("171") && !shown.contains("205"), "{shown}");
}

#[test]
fn cookie_prefixes_and_their_rules_are_checked_at_startup() {
    let build = |config: SessionConfig| SessionManager::new(MemoryStore::new(), config);
    let host = SessionConfig::default().cookie_name("__Host-session");
    assert!(build(host.clone()).is_ok());
    for (config, option) in [
        (host.clone().secure(false), "cookie_name"),
        (host.clone().path("/app"), "cookie_name"),
        (host.clone().domain("example.com"), "cookie_name"),
        (
            SessionConfig::default()
                .cookie_name("__Secure-s")
                .secure(false),
            "cookie_name",
        ),
        (
            SessionConfig::default().partitioned(true).secure(false),
            "partitioned",
        ),
        (
            SessionConfig::default()
                .same_site(SameSite::None)
                .secure(false),
            "same_site",
        ),
    ] {
        let refused = build(config);
        assert!(
            matches!(&refused, Err(Error::InvalidConfig { option: o, .. }) if *o == option),
            "{refused:?}"
        );
    }
    assert!(build(SessionConfig::default().cookie_name("__Secure-s")).is_ok());
}
