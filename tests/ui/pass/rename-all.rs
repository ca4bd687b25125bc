//! Every `rename_all` rule; `rename` wins over it, aliases are taken as written.
#![deny(warnings)]

use session::__private::SessionSchema;
use session::Session;

macro_rules! rule {
    ($name:ident, $rule:literal) => {
        #[derive(Session, Default)]
        #[session(rename_all = $rule)]
        struct $name {
            user_id: u64,
            #[session(rename = "as_is", alias = "old_name")]
            other_field: u64,
        }
    };
}

rule!(Lower, "lowercase");
rule!(Upper, "UPPERCASE");
rule!(Pascal, "PascalCase");
rule!(Camel, "camelCase");
rule!(Snake, "snake_case");
rule!(ScreamingSnake, "SCREAMING_SNAKE_CASE");
rule!(Kebab, "kebab-case");
rule!(ScreamingKebab, "SCREAMING-KEBAB-CASE");

#[derive(Session, Default)]
#[session(rename_all = "camelCase", namespace = "app")]
struct Namespaced {
    last_seen_at: u64,
}

fn keys<T: SessionSchema>() -> Vec<&'static str> {
    T::FIELDS.iter().map(|f| f.key).collect()
}

fn main() {
    for (keys, expected) in [
        (keys::<Lower>(), "user_id"),
        (keys::<Upper>(), "USER_ID"),
        (keys::<Pascal>(), "UserId"),
        (keys::<Camel>(), "userId"),
        (keys::<Snake>(), "user_id"),
        (keys::<ScreamingSnake>(), "USER_ID"),
        (keys::<Kebab>(), "user-id"),
        (keys::<ScreamingKebab>(), "USER-ID"),
    ] {
        assert_eq!(keys, [expected, "as_is"]);
    }
    assert_eq!(Camel::FIELDS[1].aliases, ["old_name"]);
    assert_eq!(keys::<Namespaced>(), ["app.lastSeenAt"]);
    let _ = |s: Session<Namespaced>| s.set_last_seen_at(s.last_seen_at());
    let _ = |s: Session<Kebab>| s.set_user_id(s.user_id() + s.other_field());
}
