//! Accessors are as visible as the struct, with no lint on the generated code.
#![deny(warnings, missing_docs, unreachable_pub, missing_debug_implementations)]
#![deny(rust_2018_idioms, unused_qualifications, dead_code)]
#![deny(clippy::all, clippy::pedantic)]

mod private {
    /// Used only inside this module: nothing generated may be reported unused.
    #[derive(session::Session, Default)]
    pub(super) struct Inner {
        count: u32,
    }

    pub(super) fn touch(session: &session::Session<Inner>) -> u32 {
        session.count()
    }
}

mod public {
    /// Public, in a private module.
    #[derive(session::Session, Default, Debug)]
    pub(crate) struct Cart {
        /// The items.
        pub(crate) items: Vec<String>,
    }

    /// Nested module reaching the parent's struct.
    pub(crate) mod nested {
        /// Reads the cart.
        pub(crate) fn count(session: &session::Session<super::Cart>) -> usize {
            session.items().len()
        }
    }
}

/// A public session type of this crate.
#[derive(session::Session, Default, Debug)]
pub struct Exported {
    /// A counter.
    pub visits: u64,
}

fn main() {
    let _ = private::touch;
    let _ = public::nested::count;
    let _ = |s: &session::Session<public::Cart>| s.items_mut().clear();
    let _ = |s: &session::Session<Exported>| s.set_visits(1);
}
