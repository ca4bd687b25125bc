//! The derive input as a small typed AST: a struct with named fields, its
//! attributes read, and each field's stored key and accessor names worked out.

use proc_macro2::Span;
use quote::{format_ident, quote};
use syn::{Attribute, Data, DeriveInput, Fields, Ident, Type, Visibility};

use crate::attr;
use crate::ctxt::Ctxt;

/// The struct being derived.
pub(crate) struct Container<'a> {
    pub(crate) ident: &'a Ident,
    pub(crate) vis: &'a Visibility,
    pub(crate) attrs: attr::Container,
    /// The named fields, in declaration order (empty for unsupported shapes).
    pub(crate) fields: Vec<Field<'a>>,
    /// Whether the struct has generic parameters (not supported); no fallback
    /// impl can be written for it.
    pub(crate) generic: bool,
}

/// An older key a field is also loaded from.
pub(crate) struct Alias {
    /// The stored key, namespace applied.
    pub(crate) key: String,
    /// As written in the attribute.
    pub(crate) written: String,
    pub(crate) span: Span,
}

/// One named field.
pub(crate) struct Field<'a> {
    /// The field as written (possibly a raw identifier).
    pub(crate) member: &'a Ident,
    /// The field's name without `r#`.
    pub(crate) name: String,
    pub(crate) ty: &'a Type,
    pub(crate) attrs: attr::Field,
    /// The field's doc comments, copied onto its getter.
    pub(crate) docs: Vec<&'a Attribute>,
    /// The stored key before the namespace: `rename`, or the name with
    /// `rename_all` applied.
    pub(crate) base_key: String,
    /// Where the key comes from, for errors about it: the `rename` literal or
    /// the field's identifier.
    pub(crate) key_span: Span,
    /// The stored key, namespace applied.
    pub(crate) key: String,
    /// The aliases, namespace applied.
    pub(crate) aliases: Vec<Alias>,
    /// The index in `SessionData::FIELDS`; `None` for `skip` fields.
    pub(crate) stored: Option<usize>,
    pub(crate) getter: Ident,
    pub(crate) setter: Ident,
    pub(crate) mutter: Ident,
    pub(crate) reader: Ident,
}

impl<'a> Container<'a> {
    /// Reads the input, reporting unsupported shapes and attribute mistakes
    /// to `cx`. Always returns a container, so that checking can go on and a
    /// fallback impl can be written.
    pub(crate) fn from_ast(cx: &Ctxt, input: &'a DeriveInput) -> Self {
        let attrs = attr::Container::from_attrs(cx, &input.attrs);
        let generic = !input.generics.params.is_empty();
        if generic {
            cx.error_spanned_by(
                &input.generics,
                "`#[derive(Session)]` does not support generic structs (lifetime, type or const \
                 parameters): session data is stored as one concrete, `'static` type",
            );
        }

        const NAMED_ONLY: &str = "`#[derive(Session)]` needs a struct with named fields";
        let named = match &input.data {
            Data::Struct(data) => match &data.fields {
                Fields::Named(fields) => Some(fields),
                Fields::Unnamed(fields) => {
                    cx.error_spanned_by(
                        fields,
                        format!(
                            "{NAMED_ONLY}: tuple structs are not supported, since each field's \
                             name becomes its accessors and its stored key"
                        ),
                    );
                    None
                }
                Fields::Unit => {
                    let (struct_token, ident) = (&data.struct_token, &input.ident);
                    cx.error_spanned_by(
                        quote!(#struct_token #ident),
                        format!("{NAMED_ONLY}: unit structs are not supported (write `struct {ident} {{}}` for an empty session)"),
                    );
                    None
                }
            },
            Data::Enum(data) => {
                cx.error_at(
                    data.enum_token.span,
                    format!("{NAMED_ONLY}: enums are not supported"),
                );
                None
            }
            Data::Union(data) => {
                cx.error_at(
                    data.union_token.span,
                    format!("{NAMED_ONLY}: unions are not supported"),
                );
                None
            }
        };

        let container_attrs = &attrs;
        let mut next_stored = 0;
        let fields = named
            .into_iter()
            .flat_map(|fields| &fields.named)
            .map(|field| {
                let member = field.ident.as_ref().expect("named field");
                let attrs = attr::Field::from_attrs(cx, &field.attrs);
                let stored = if attrs.skip.is_some() {
                    None
                } else {
                    next_stored += 1;
                    Some(next_stored - 1)
                };
                Field::new(
                    container_attrs,
                    member,
                    &field.ty,
                    &field.attrs,
                    attrs,
                    stored,
                )
            })
            .collect();

        Self {
            ident: &input.ident,
            vis: &input.vis,
            attrs,
            fields,
            generic,
        }
    }
}

impl<'a> Field<'a> {
    fn new(
        container: &attr::Container,
        member: &'a Ident,
        ty: &'a Type,
        all_attrs: &'a [Attribute],
        attrs: attr::Field,
        stored: Option<usize>,
    ) -> Self {
        let name = member.to_string().trim_start_matches("r#").to_owned();
        let (base_key, key_span) = match &attrs.rename {
            Some(rename) => (rename.value.value(), rename.value.span()),
            None => match &container.rename_all {
                Some(rule) => (rule.value.apply(&name), member.span()),
                None => (name.clone(), member.span()),
            },
        };
        let namespaced = |key: &str| match &container.namespace {
            Some(namespace) => format!("{}.{key}", namespace.value.value()),
            None => key.to_owned(),
        };
        let key = namespaced(&base_key);
        let aliases = attrs
            .aliases
            .iter()
            .map(|alias| {
                let written = alias.value.value();
                Alias {
                    key: namespaced(&written),
                    written,
                    span: alias.value.span(),
                }
            })
            .collect();
        let docs = all_attrs
            .iter()
            .filter(|attr| attr.path().is_ident("doc"))
            .collect();
        Self {
            // The getter keeps `r#` if the field has it: `r#type()`.
            getter: member.clone(),
            setter: format_ident!("set_{}", name, span = member.span()),
            mutter: format_ident!("{}_mut", name, span = member.span()),
            reader: format_ident!("with_{}", name, span = member.span()),
            member,
            name,
            ty,
            attrs,
            docs,
            base_key,
            key_span,
            key,
            aliases,
            stored,
        }
    }

    /// The getter, setter, `_mut` and `with_` accessor names, without `r#`.
    pub(crate) fn accessor_names(&self) -> [(String, &'static str); 4] {
        [
            (self.name.clone(), "getter"),
            (self.setter.to_string(), "setter"),
            (self.mutter.to_string(), "`_mut` accessor"),
            (self.reader.to_string(), "`with_` reader"),
        ]
    }
}
