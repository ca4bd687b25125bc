//! `default` on fields and on the struct, with flash and skip fields.
#![deny(warnings)]

use session::__private::SessionSchema;
use session::Session;

fn three() -> u32 {
    3
}

mod defaults {
    pub(crate) fn greeting() -> Option<String> {
        Some("hello".to_owned())
    }
}

struct NoDefault(u8);

impl Clone for NoDefault {
    fn clone(&self) -> Self {
        NoDefault(self.0)
    }
}

fn no_default() -> NoDefault {
    NoDefault(9)
}

// Field defaults, no struct default: `NoDefault` needs its own.
#[derive(Session)]
struct Fields {
    #[session(default = "three")]
    retries: u32,
    #[session(default)]
    visits: u64,
    #[session(flash, default = "defaults::greeting")]
    greeting: Option<String>,
    #[session(skip, default = "no_default")]
    handle: NoDefault,
}

// The struct's own `Default` supplies every field without a `default`.
#[derive(Session)]
#[session(default)]
struct FromStruct {
    page_size: u32,
    #[session(default)]
    visits: u64,
    #[session(flash)]
    notice: String,
    #[session(skip)]
    scratch: u32,
}

impl Default for FromStruct {
    fn default() -> Self {
        Self {
            page_size: 20,
            visits: 5,
            notice: "welcome".to_owned(),
            scratch: 7,
        }
    }
}

// Every field has its own default: the struct's `Default` is not needed.
#[derive(Session)]
#[session(default)]
struct AllOwn {
    #[session(default = "three")]
    retries: u32,
}

fn use_it(fields: &Session<Fields>, from_struct: &Session<FromStruct>) {
    fields.set_retries(fields.retries() + 1);
    let _: Option<String> = fields.greeting();
    fields.set_handle(fields.handle());
    let _: String = from_struct.notice();
    from_struct.scratch_mut().clone_from(&1);
}

fn main() {
    let fields = Fields::new_default();
    assert_eq!(fields.retries, 3);
    assert_eq!(fields.visits, 0);
    assert_eq!(fields.greeting.as_deref(), Some("hello"));
    assert_eq!(fields.handle.0, 9);
    assert_eq!(Fields::FIELDS.len(), 3);

    let from_struct = FromStruct::new_default();
    assert_eq!(from_struct.page_size, 20);
    assert_eq!(from_struct.visits, 0);
    assert_eq!(from_struct.notice, "welcome");
    assert_eq!(from_struct.scratch, 7);

    assert_eq!(AllOwn::new_default().retries, 3);
    let _ = use_it;
}
