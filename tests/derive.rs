//! What each `#[session(..)]` attribute does at run time.

mod support;

use bytes::Bytes;
use std::time::Duration;

use session::store::ChangeSet;
use session::{Session, SessionConfig, SessionManager, SessionStore};
use support::{Browser, Call, Recording};

#[derive(Session, Default)]
#[session(rename_all = "camelCase", namespace = "app")]
struct Attributes {
    user_name: String,
    #[session(rename = "n", alias = "count", alias = "oldCount")]
    visit_count: u64,
    #[session(default = "light")]
    theme: String,
    #[session(skip)]
    scratch: u32,
    #[session(codec = session::Binary)]
    blob: Vec<u8>,
}

fn light() -> String {
    "light".into()
}

#[derive(Session)]
#[session(default, codec = session::Binary)]
struct Prefs {
    volume: u8,
    #[session(codec = session::Json)]
    lang: String,
}

impl Default for Prefs {
    fn default() -> Self {
        Self {
            volume: 7,
            lang: "en".into(),
        }
    }
}

fn setup() -> (Recording, Browser) {
    let store = Recording::new();
    (
        store.clone(),
        Browser::new(SessionManager::new(store, SessionConfig::default()).unwrap()),
    )
}

fn only_commit(calls: Vec<Call>) -> (session::StoreKey, ChangeSet) {
    let mut commits: Vec<_> = calls
        .into_iter()
        .filter_map(|call| match call {
            Call::Create(key, changes) | Call::Update(key, changes) => Some((key, changes)),
            _ => None,
        })
        .collect();
    assert_eq!(commits.len(), 1);
    commits.remove(0)
}

#[tokio::test]
async fn keys_follow_rename_rename_all_and_namespace_and_skip_is_never_stored() {
    let (store, mut browser) = setup();
    let request = browser.request();
    let session = request.session::<Attributes>().await.unwrap();
    assert_eq!(session.theme(), "light", "default = \"path\"");
    session.set_user_name("ann".into());
    session.set_visit_count(1);
    session.set_theme("dark".into());
    session.set_scratch(42);
    assert_eq!(session.scratch(), 42);
    *session.blob_mut() = vec![1, 2, 3];
    browser.finish(request).await;

    let (_, changes) = only_commit(store.take_calls());
    assert_eq!(
        changes.set,
        vec![
            ("app.userName", Bytes::from_static(br#""ann""#)),
            ("app.n", Bytes::from_static(b"1")),
            ("app.theme", Bytes::from_static(br#""dark""#)),
            ("app.blob", Bytes::from_static(&[3, 1, 2, 3])), // postcard: length, then bytes
        ]
    );

    let request = browser.request();
    let session = request.session::<Attributes>().await.unwrap();
    assert_eq!(session.scratch(), 0, "skip fields live for one request");
    assert_eq!(session.blob(), vec![1, 2, 3]);
    session.set_scratch(1);
    browser.finish(request).await;
    assert!(
        store.take_writes().is_empty(),
        "skip fields never dirty the session"
    );
}

#[tokio::test]
async fn aliases_load_old_keys_and_the_next_write_moves_them() {
    let (store, mut browser) = setup();
    let request = browser.request();
    request
        .session::<Attributes>()
        .await
        .unwrap()
        .set_user_name("ann".into());
    browser.finish(request).await;
    let (key, _) = only_commit(store.take_calls());

    // A record written before `visit_count` was renamed from `oldCount`.
    let mut old = ChangeSet::touch(Duration::from_secs(60));
    old.set = vec![("app.oldCount", Bytes::from_static(b"5"))];
    store.store.update(&key, &old).await.unwrap();

    let request = browser.request();
    let session = request.session::<Attributes>().await.unwrap();
    assert_eq!(session.visit_count(), 5);
    session.set_visit_count(6);
    browser.finish(request).await;
    let (_, changes) = only_commit(store.take_calls());
    assert_eq!(changes.set, vec![("app.n", Bytes::from_static(b"6"))]);
    assert_eq!(changes.remove, vec!["app.oldCount"]);
    let fields = store.peek(&key).await.unwrap().fields;
    assert_eq!(fields.get("app.n"), Some(Bytes::from_static(b"6")));
    assert!(!fields.contains_key("app.oldCount"));
}

#[tokio::test]
async fn container_default_and_codec_apply_to_fields_without_their_own() {
    let (store, mut browser) = setup();
    let request = browser.request();
    let prefs = request.session::<Prefs>().await.unwrap();
    assert_eq!((prefs.volume(), prefs.lang()), (7, "en".to_owned()));
    prefs.set_volume(7);
    browser.finish(request).await;
    assert!(
        store.take_writes().is_empty(),
        "setting the struct's default writes nothing"
    );

    let request = browser.request();
    let prefs = request.session::<Prefs>().await.unwrap();
    prefs.set_volume(8);
    prefs.set_lang("fr".into());
    browser.finish(request).await;
    let (_, changes) = only_commit(store.take_calls());
    assert_eq!(
        changes.set,
        vec![
            ("volume", Bytes::from_static(&[8])),
            ("lang", Bytes::from_static(br#""fr""#))
        ]
    );
}

/// The derive refuses accessor names that `Session<T>`'s own methods would
/// shadow; its list of them must be exactly the methods `handle.rs` defines.
#[test]
fn handle_methods_match_the_derive() {
    mod derive_list {
        #![allow(dead_code)]
        include!("../session-derive/src/handle_methods.rs");
    }
    let handle = include_str!("../session/src/handle.rs");
    let block = handle
        .split("impl<T: SessionData> Session<T> {")
        .nth(1)
        .expect("the handle's inherent impl");
    let block = &block[..block.find("\n}\n").expect("the impl's end")];
    let mut defined: Vec<&str> = block
        .lines()
        .filter_map(|line| {
            let line = line.strip_prefix("    pub ")?;
            let line = line.strip_prefix("async ").unwrap_or(line);
            let name = line.strip_prefix("fn ")?;
            Some(&name[..name.find(['(', '<'])?])
        })
        .collect();
    let mut listed = derive_list::SESSION_METHODS.to_vec();
    defined.sort_unstable();
    listed.sort_unstable();
    assert_eq!(
        defined, listed,
        "session-derive/src/handle_methods.rs is out of date"
    );
}

/// The accessors live on a type of the struct's module, named after it,
/// which the application can name (and `cargo doc` lists): `Session<T>`
/// derefs to it.
#[tokio::test]
async fn the_accessor_type_is_named_after_the_struct() {
    fn visit_count_of(accessors: &AttributesAccessors) -> u64 {
        accessors.visit_count()
    }
    let (_, mut browser) = setup();
    let request = browser.request();
    let session = request.session::<Attributes>().await.unwrap();
    session.set_visit_count(3);
    assert_eq!(visit_count_of(&session), 3);
    assert_eq!(format!("{:?}", *session), "AttributesAccessors { .. }");
    browser.finish(request).await;
}
