//! Field names, default functions and types that could collide with the
//! generated code's own names.
#![deny(warnings)]

use session::__private::SessionSchema;
use session::Session;

fn s() -> u8 {
    1
}

fn value() -> u8 {
    2
}

fn bytes() -> Option<String> {
    Some("b".to_owned())
}

#[allow(non_snake_case)]
#[derive(Session, Default, serde::Serialize, serde::Deserialize, Clone, PartialEq, Debug)]
struct Node {
    #[session(default = "s")]
    s: u8,
    #[session(default = "value")]
    value: u8,
    #[session(flash, default = "bytes")]
    bytes: Option<String>,
    raw: u8,
    from_raw: u8,
    new_default: u8,
    set: u8,
    get: u8,
    take: u8,
    field_mut: u8,
    #[session(default)]
    next: Option<Box<Self>>,
    _hidden: u8,
    userID: u8,
}

fn use_it(session: &Session<Node>) {
    session.set_raw(session.raw() + session.from_raw() + session.s() + session.value());
    let next: Option<Box<Node>> = session.next();
    session.set_next(next);
    session.next_mut().take();
    let _: Option<String> = session.bytes();
    session.set_new_default(session.new_default());
    session.set_set(session.set() + session.get() + session.take() + session.field_mut());
    session.set__hidden(session._hidden());
    *session.userID_mut() += session.userID();
}

fn main() {
    let node = Node::new_default();
    assert_eq!(
        (node.s, node.value, node.bytes.as_deref()),
        (1, 2, Some("b"))
    );
    assert_eq!(Node::FIELDS.len(), 13);
    assert_eq!(Node::FIELDS[12].key, "userID");
    let _ = use_it;
}
