//! The `#[derive(Session)]` macro of the [`session`] crate.
//!
//! Use it through the runtime crate, which re-exports it as
//! `session::Session`; the generated code refers to `::session` (or to the
//! path given with `#[session(crate = "...")]`).
//!
//! [`session`]: https://docs.rs/session
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod ast;
mod attr;
mod case;
mod check;
mod ctxt;
mod expand;
mod handle_methods;

use proc_macro::TokenStream;
use syn::{parse_macro_input, DeriveInput};

/// Derives `session::SessionData`, making a struct with named fields usable as
/// `Session<Self>`, whose accessors it generates.
///
/// For a field `x: T`: `x()` returns a clone (a `flash` field's getter takes
/// the value out), `set_x(T)` replaces it and `x_mut()` changes it in place.
///
/// Field attributes: `rename = "key"`, `alias = "old_key"` (repeatable),
/// `default` / `default = "path"`, `skip`, `flash`, `codec = Type`.
/// Struct attributes: `rename_all = "..."`, `namespace = "..."`,
/// `codec = Type`, `default`, `crate = "path"`. See the `session` crate docs.
#[proc_macro_derive(Session, attributes(session))]
pub fn derive_session(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    derive(&input).into()
}

/// Reads and checks the input, then expands it; on mistakes, every error
/// found plus a fallback impl.
fn derive(input: &DeriveInput) -> proc_macro2::TokenStream {
    let cx = ctxt::Ctxt::new();
    let cont = ast::Container::from_ast(&cx, input);
    check::check(&cx, &cont);
    match cx.check() {
        Ok(()) => expand::expand(&cont),
        Err(err) => {
            let mut tokens = err.to_compile_error();
            tokens.extend(expand::fallback(&cont));
            tokens
        }
    }
}

#[cfg(test)]
mod tests {
    fn expand(input: &str) -> String {
        let input: syn::DeriveInput = syn::parse_str(input).unwrap();
        super::derive(&input).to_string()
    }

    #[test]
    fn expands_keys_indices_and_defaults() {
        let out = expand(
            r#"#[session(namespace = "shop", default)] pub struct Shop {
                /// The logged-in user.
                user: Option<String>,
                #[session(alias = "v", default = "one")] visits: u64,
                #[session(flash)] notice: Option<String>,
                #[session(skip)] scratch: u32,
            }"#,
        );
        assert!(!out.contains("compile_error"), "{out}");
        for expected in [
            r#"key : "shop.user""#,
            r#"aliases : & ["shop.v"]"#,
            "flash : true",
            "Option :: Some (2)",
            "Option :: None",
            "visits : one ()",
            ".. < Shop as :: core :: default :: Default > :: default ()",
            "pub fn set_scratch",
            r#"# [doc = " The logged-in user."]"#,
        ] {
            assert!(out.contains(expected), "`{expected}` missing from {out}");
        }
        // `scratch` is never stored: three stored fields.
        assert_eq!(out.matches("StoredField {").count(), 3);
    }

    #[test]
    fn reports_every_error_with_a_fallback() {
        let out = expand(
            r#"#[session(nope)] struct Shop {
                #[session(rename = "a", rename = "b")] x: u8,
                #[session(skip, flash)] y: u8,
                save: u8,
            }"#,
        );
        assert_eq!(out.matches("compile_error").count(), 4, "{out}");
        assert!(out.contains(
            "FIELDS : & 'static [:: session :: __private :: StoredField < Self >] = & []"
        ));
        assert!(out.contains("unimplemented"));
    }

    #[test]
    fn no_fallback_for_generic_structs() {
        let out = expand("struct Shop<T> { items: Vec<T> }");
        assert_eq!(out.matches("compile_error").count(), 1, "{out}");
        assert!(!out.contains("impl"));
    }
}
