//! Nothing the crate prints, logs or reports names a session by something
//! that would let a reader take it over or find it in the store (its id,
//! its cookie's value, its store key), and no error repeats a store URL's
//! credentials.

mod support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use session::{Session, SessionConfig, SessionManager, StoreKey};
use support::{Browser, Call, Recording};

#[derive(Session, Default)]
struct Account {
    user: Option<String>,
}

/// Everything `tracing` writes while the guard lives, at every level.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Asserts that `printed` contains none of `secrets`.
fn assert_hides(printed: &str, secrets: &[String], what: &str) {
    for secret in secrets {
        assert!(
            !printed.contains(secret.as_str()),
            "{what} shows the secret {secret:?}:\n{printed}"
        );
    }
}

#[tokio::test]
async fn no_debug_output_or_log_line_holds_an_id_a_cookie_value_or_a_store_key() {
    let log = Captured::default();
    let _logging = log.start();
    let events = Arc::new(Mutex::new(String::new()));
    let seen = Arc::clone(&events);
    let config = SessionConfig::default()
        .rolling(true)
        .on_event(move |event| seen.lock().unwrap().push_str(&format!("{event:?}\n")));
    let store = Recording::new();
    let manager = SessionManager::new(store.clone(), config).unwrap();
    let mut browser = Browser::new(manager.clone());
    let mut printed = String::new();
    let mut secrets = Vec::new();

    // A first write, then a regenerate, then a destroy, each printed.
    for step in 0..3 {
        let request = browser.request();
        let account = request.session::<Account>().await.unwrap();
        match step {
            0 => account.set_user(Some("ann".into())),
            1 => account.regenerate(),
            _ => account.destroy(),
        }
        printed.push_str(&format!("{request:?}\n{account:?}\n"));
        let finished = request.finish().await;
        printed.push_str(&format!("{finished:?}\n"));
        if let Some(cookie) = &finished.cookie {
            if !cookie.value().is_empty() {
                secrets.push(cookie.value().to_owned());
            }
        }
        browser.cookie = finished
            .cookie
            .filter(|cookie| !cookie.value().is_empty())
            .map(|cookie| cookie.value().to_owned());
    }
    // The dead cookies presented again (missed), and one tampered with.
    for presented in secrets.clone() {
        let request = manager.start(Some(presented.clone()));
        request.session::<Account>().await.unwrap();
        let finished = request.finish().await;
        printed.push_str(&format!("{finished:?}\n"));
        let tampered = format!("{presented}x");
        secrets.push(tampered.clone());
        let request = manager.start(Some(tampered));
        request.session::<Account>().await.unwrap();
        printed.push_str(&format!("{:?}\n", request.finish().await));
    }

    // The ids inside the cookies (random ids are 43 characters, after the
    // signature if any), and the keys the store saw.
    let ids: Vec<String> = secrets
        .iter()
        .filter(|value| !value.ends_with('x'))
        .map(|value| value[value.len() - 43..].to_owned())
        .collect();
    secrets.extend(ids);
    for call in store.take_calls() {
        let key = match call {
            Call::Create(key, _) | Call::Update(key, _) | Call::Load(key) | Call::Delete(key) => {
                key
            }
            Call::Rekey(from, to, _) => {
                printed.push_str(&format!("{to:?}\n"));
                secrets.push(to.as_str().to_owned());
                from
            }
            _ => continue,
        };
        printed.push_str(&format!("{key:?}\n"));
        secrets.push(key.as_str().to_owned());
    }
    assert!(secrets.len() >= 6, "the requests made ids: {secrets:?}");

    assert_hides(&printed, &secrets, "a Debug output");
    assert_hides(&log.text(), &secrets, "the log");
    assert_hides(&events.lock().unwrap(), &secrets, "an event");
}

#[test]
fn a_store_key_prints_as_its_public_id() {
    let key = StoreKey::new("app:the-store-key");
    let shown = format!("{key:?}");
    assert!(!shown.contains("the-store-key"), "{shown}");
}

/// The error and every cause below it, as a log line would show them.
fn chain(error: &session::Error) -> String {
    let mut shown = format!("{error} / {error:?}");
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        shown.push_str(&format!(" / {cause} / {cause:?}"));
        source = cause.source();
    }
    shown
}

#[tokio::test]
async fn store_url_errors_never_repeat_a_credential() {
    // Nothing listens on port 1: each store fails to open, after parsing.
    for url in [
        "pg://ann:hunter2@127.0.0.1/sessions",
        "redis://:hunter2@127.0.0.1:1",
        "redis+cluster://:hunter2@127.0.0.1:1,ann:hunter2@127.0.0.1:2",
        "postgres://ann:hunter2@127.0.0.1:1/sessions",
        "mysql://ann:hunter2@127.0.0.1:1/sessions",
    ] {
        let error = match session::store::open(url).await {
            Ok(_) => panic!("{url} opened"),
            Err(error) => error,
        };
        let shown = chain(&error);
        assert!(!shown.contains("hunter2"), "{url}: {shown}");
    }
}
