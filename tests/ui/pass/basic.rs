//! The plain struct from the docs, every accessor called.
#![deny(warnings, missing_docs, unreachable_pub, missing_debug_implementations)]

use session::__private::SessionSchema;
use session::Session;

/// A shop session.
#[derive(Session, Default, Debug)]
#[session(namespace = "shop")]
pub struct Shop {
    /// The logged-in user.
    user: Option<String>,
    visits: u64,
    #[session(flash)]
    notice: Option<String>,
    #[session(skip)]
    scratch: u32,
}

/// Uses every generated accessor.
pub fn handler(session: &Session<Shop>) -> usize {
    let user: Option<String> = session.user();
    session.set_user(Some("ann".to_owned()));
    session.user_mut().replace("bob".to_owned());

    session.set_visits(session.visits() + 1);
    *session.visits_mut() += 1;

    let notice: Option<String> = session.notice();
    session.set_notice(Some("saved".to_owned()));
    session.notice_mut().take();

    session.set_scratch(session.scratch() + 1);
    *session.scratch_mut() += 1;

    let session = session.clone();
    format!("{session:?}").len() + user.map_or(0, |u| u.len()) + notice.map_or(0, |n| n.len())
}

fn main() {
    let shop = Shop::new_default();
    assert_eq!(shop.user, None);
    assert_eq!(shop.visits, 0);
    assert_eq!(shop.notice, None);
    assert_eq!(shop.scratch, 0);

    let keys: Vec<(&str, bool)> = Shop::FIELDS.iter().map(|f| (f.key, f.flash)).collect();
    assert_eq!(
        keys,
        [
            ("shop.user", false),
            ("shop.visits", false),
            ("shop.notice", true)
        ]
    );

    let mut shop = Shop::default();
    shop.visits = 7;
    let bytes = (Shop::FIELDS[1].encode)(&shop).unwrap();
    assert_eq!(bytes, b"7");
    let mut fresh = Shop::new_default();
    (Shop::FIELDS[1].decode)(&mut fresh, b"41").unwrap();
    assert_eq!(fresh.visits, 41);
    assert!((Shop::FIELDS[1].decode)(&mut fresh, b"\"x\"").is_err());
    assert_eq!(fresh.visits, 41);

    let _ = handler;
}
