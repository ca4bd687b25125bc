//! Raw identifiers: the key and the accessor names drop the `r#`.
#![deny(warnings)]

use session::__private::SessionSchema;
use session::Session;

#[derive(Session, Default)]
#[session(rename_all = "UPPERCASE")]
struct Keywords {
    r#type: String,
    r#match: Option<u8>,
    r#plain: u8,
}

fn use_it(session: &Session<Keywords>) {
    let kind: String = session.r#type();
    session.set_type(kind);
    session.type_mut().push('!');
    session.set_match(session.r#match());
    session.match_mut().take();
    session.set_plain(session.plain());
    *session.plain_mut() += 1;
}

fn main() {
    let keys: Vec<&str> = Keywords::FIELDS.iter().map(|f| f.key).collect();
    assert_eq!(keys, ["TYPE", "MATCH", "PLAIN"]);
    let _ = use_it;
}
