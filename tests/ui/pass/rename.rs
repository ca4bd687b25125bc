//! `rename`, repeated `alias`, and `namespace` applied to both.
#![deny(warnings)]

use session::__private::SessionSchema;
use session::Session;

#[derive(Session, Default)]
#[session(namespace = "auth")]
struct Auth {
    #[session(rename = "uid", alias = "user", alias = "user_id")]
    user_id: Option<u64>,
    #[session(alias = "roles_v1")]
    roles: Vec<String>,
    #[session(rename = "v2.csrf")]
    csrf: String,
}

#[derive(Session, Default)]
struct Plain {
    #[session(rename = "Theme")]
    theme: String,
    #[session(alias = "lang")]
    language: String,
}

fn use_it(auth: &Session<Auth>, plain: &Session<Plain>) {
    auth.set_user_id(auth.user_id());
    auth.roles_mut().push(plain.theme());
    plain.set_language(auth.csrf());
}

fn main() {
    let keys: Vec<(&str, &[&str])> = Auth::FIELDS.iter().map(|f| (f.key, f.aliases)).collect();
    assert_eq!(
        keys,
        [
            ("auth.uid", &["auth.user", "auth.user_id"][..]),
            ("auth.roles", &["auth.roles_v1"][..]),
            ("auth.v2.csrf", &[][..]),
        ]
    );
    let keys: Vec<(&str, &[&str])> = Plain::FIELDS.iter().map(|f| (f.key, f.aliases)).collect();
    assert_eq!(keys, [("Theme", &[][..]), ("language", &["lang"][..])]);
    let _ = use_it;
}
