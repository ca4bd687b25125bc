//! `crate = "..."` when the session crate is reached by another path.
#![deny(warnings)]

mod reexport {
    pub(crate) use ::session as sessions;
}

use reexport::sessions as renamed;

#[derive(renamed::Session, Default)]
#[session(crate = "renamed")]
struct Relative {
    visits: u64,
}

#[derive(renamed::Session, Default)]
#[session(crate = "crate::reexport::sessions")]
struct Absolute {
    visits: u64,
}

#[derive(renamed::Session, Default)]
#[session(crate = "::session")]
struct Explicit {
    visits: u64,
}

fn main() {
    use renamed::__private::SessionSchema;
    assert_eq!(Relative::FIELDS[0].key, "visits");
    assert_eq!(Absolute::new_default().visits, 0);
    let _ = |s: renamed::Session<Explicit>| s.set_visits(s.visits());
}
