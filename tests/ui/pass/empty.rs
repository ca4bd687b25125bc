//! Structs that store nothing still derive.
#![deny(warnings)]

use session::__private::SessionSchema;
use session::Session;

#[derive(Session)]
struct Empty {}

#[derive(Session, Default)]
struct OnlySkipped {
    #[session(skip)]
    scratch: Vec<u8>,
    #[session(skip, default)]
    counter: u32,
}

fn main() {
    assert!(Empty::FIELDS.is_empty());
    let Empty {} = Empty::new_default();
    assert!(OnlySkipped::FIELDS.is_empty());
    assert_eq!(OnlySkipped::new_default().counter, 0);
    let _ = |s: Session<OnlySkipped>| s.scratch_mut().push(s.counter() as u8);
}
