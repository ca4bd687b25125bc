//! Rules that involve several attributes or several fields.

use std::collections::HashMap;

use crate::ast::{Container, Field};
use crate::ctxt::Ctxt;
use crate::handle_methods::SESSION_METHODS;

/// The methods a `Session<T>` answers through traits in the prelude or its
/// `Deref`/`Debug`/`Clone` impls; its own are in `handle_methods.rs`. An
/// accessor with one of these names would be shadowed by the handle's method.
const TRAIT_METHODS: &[&str] = &[
    "clone",
    "clone_from",
    "clone_into",
    "to_owned",
    "into",
    "try_into",
    "deref",
    "fmt",
];

fn is_handle_method(name: &str) -> bool {
    SESSION_METHODS.contains(&name) || TRAIT_METHODS.contains(&name)
}

pub(crate) fn check(cx: &Ctxt, cont: &Container<'_>) {
    check_key(cx, cont);
    check_skip(cx, cont);
    check_keys_unique(cx, cont);
    check_accessor_names(cx, cont);
}

/// A key derived from a field name by `rename_all` can end up empty (a field
/// named `__` in `camelCase`).
fn check_key(cx: &Ctxt, cont: &Container<'_>) {
    for field in stored(cont) {
        if field.base_key.is_empty() {
            cx.error_at(
                field.key_span,
                format!(
                    "`rename_all` turns `{}` into an empty key; give the field its own key \
                     with `#[session(rename = \"...\")]`",
                    field.name,
                ),
            );
        }
    }
}

/// A `skip` field is never stored: the settings about storing make no sense.
fn check_skip(cx: &Ctxt, cont: &Container<'_>) {
    for field in &cont.fields {
        if field.attrs.skip.is_none() {
            continue;
        }
        let mut conflicts = Vec::new();
        if let Some(flash) = field.attrs.flash {
            conflicts.push(("flash", flash));
        }
        if let Some(rename) = &field.attrs.rename {
            conflicts.push(("rename", rename.span));
        }
        for alias in &field.attrs.aliases {
            conflicts.push(("alias", alias.span));
        }
        if let Some(codec) = &field.attrs.codec {
            conflicts.push(("codec", codec.span));
        }
        for (name, span) in conflicts {
            cx.error_at(
                span,
                format!("`{name}` cannot be combined with `skip`: a skipped field is never stored"),
            );
        }
    }
}

fn stored<'c, 'a>(cont: &'c Container<'a>) -> impl Iterator<Item = &'c Field<'a>> {
    cont.fields.iter().filter(|field| field.stored.is_some())
}

/// No two stored keys or aliases may be the same: loading could not tell
/// which field a stored value belongs to.
fn check_keys_unique(cx: &Ctxt, cont: &Container<'_>) {
    // key -> (field name, whether it is that field's alias)
    let mut owners: HashMap<&str, (&str, bool)> = HashMap::new();
    for field in stored(cont) {
        if field.base_key.is_empty() {
            continue; // reported by `check_key`
        }
        match owners.get(field.key.as_str()) {
            Some((owner, is_alias)) => cx.error_at(
                field.key_span,
                format!(
                    "field `{}` would be stored under the key `{}`, which is already {} of field \
                     `{owner}`; give one of them another key with `rename`",
                    field.name,
                    field.key,
                    if *is_alias { "an alias" } else { "the key" },
                ),
            ),
            None => {
                owners.insert(&field.key, (&field.name, false));
            }
        }
        for alias in &field.aliases {
            let written = &alias.written;
            match owners.get(alias.key.as_str()) {
                Some((owner, is_alias)) if *owner == field.name => cx.error_at(
                    alias.span,
                    if *is_alias {
                        format!("duplicate alias `{written}`")
                    } else {
                        format!("alias `{written}` is this field's own key")
                    },
                ),
                Some((owner, is_alias)) => cx.error_at(
                    alias.span,
                    format!(
                        "alias `{written}` of field `{}` is already {} of field `{owner}`",
                        field.name,
                        if *is_alias { "an alias" } else { "the key" },
                    ),
                ),
                None => {
                    owners.insert(&alias.key, (&field.name, true));
                }
            }
        }
    }
}

/// Each field's accessors must be reachable through `Session<T>` and distinct
/// from the other fields' accessors.
fn check_accessor_names(cx: &Ctxt, cont: &Container<'_>) {
    // accessor name -> (field name, kind of accessor)
    let mut owners: HashMap<String, (&str, &str)> = HashMap::new();
    for field in &cont.fields {
        let names = field.accessor_names();

        let shadowed: Vec<String> = names
            .iter()
            .filter(|(name, _)| is_handle_method(name))
            .map(|(name, _)| format!("`{name}()`"))
            .collect();
        if !shadowed.is_empty() {
            let (accessors, them) = if shadowed.len() == 1 {
                ("accessor", "a method")
            } else {
                ("accessors", "methods")
            };
            let advice = if field.attrs.skip.is_some() {
                "rename the field".to_owned()
            } else if field.attrs.rename.is_some() {
                format!(
                    "rename the Rust field; `rename` keeps its stored key `{}`",
                    field.base_key
                )
            } else {
                format!(
                    "rename the Rust field and keep its stored key with \
                     `#[session(rename = \"{}\")]`",
                    field.base_key
                )
            };
            cx.error_spanned_by(
                field.member,
                format!(
                    "field `{}` would get the {accessors} {}, but `Session<T>` has {them} of \
                     that name, which would shadow it; {advice}",
                    field.name,
                    shadowed.join(" and "),
                ),
            );
            continue;
        }

        let clash = names.iter().find_map(|(name, kind)| {
            owners
                .get(name)
                .map(|(owner, owner_kind)| (name, *kind, *owner, *owner_kind))
        });
        if let Some((name, kind, owner, owner_kind)) = clash {
            cx.error_spanned_by(
                field.member,
                format!(
                    "the {kind} `{name}()` of field `{}` clashes with the {owner_kind} \
                     `{name}()` of field `{owner}`; rename one of the fields",
                    field.name,
                ),
            );
            continue;
        }
        for (name, kind) in names {
            owners.insert(name, (&field.name, kind));
        }
    }
}
