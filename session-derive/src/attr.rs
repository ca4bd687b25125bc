//! Reading `#[session(...)]` attributes.
//!
//! Nothing here returns early on a mistake: unknown, duplicated or malformed
//! settings are recorded in the [`Ctxt`] and skipped, so that every mistake in
//! the struct is reported at once.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::parse::ParseStream;
use syn::spanned::Spanned;
use syn::{Attribute, LitStr, Token};

use crate::case::RenameRule;
use crate::ctxt::Ctxt;

/// A setting together with where its key was written (`rename` in
/// `rename = "x"`), for errors about the setting as a whole.
pub(crate) struct Setting<T> {
    pub(crate) span: Span,
    pub(crate) value: T,
}

/// `#[session(...)]` on the struct.
#[derive(Default)]
pub(crate) struct Container {
    pub(crate) rename_all: Option<Setting<RenameRule>>,
    pub(crate) namespace: Option<Setting<LitStr>>,
    pub(crate) codec: Option<Setting<syn::Type>>,
    pub(crate) krate: Option<Setting<syn::Path>>,
    /// `default`: absent fields come from the struct's `Default` impl.
    pub(crate) default: Option<Span>,
}

/// `#[session(...)]` on a field.
#[derive(Default)]
pub(crate) struct Field {
    pub(crate) rename: Option<Setting<LitStr>>,
    pub(crate) aliases: Vec<Setting<LitStr>>,
    pub(crate) default: Option<Setting<FieldDefault>>,
    pub(crate) skip: Option<Span>,
    pub(crate) flash: Option<Span>,
    pub(crate) codec: Option<Setting<syn::Type>>,
}

/// A field's `default` setting.
pub(crate) enum FieldDefault {
    /// `default`: `Default::default()`.
    Trait,
    /// `default = "path"`: `path()`.
    Path(syn::ExprPath),
}

const CONTAINER_KEYS: &str = "`rename_all`, `namespace`, `codec`, `default`, `crate`";
const FIELD_KEYS: &str = "`rename`, `alias`, `default`, `skip`, `flash`, `codec`";

impl Container {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = Self::default();
        let mut seen = Seen::default();
        for attr in session_attrs(attrs) {
            let parsed = attr.parse_nested_meta(|meta| {
                let key = key_of(&meta);
                match key.as_deref() {
                    Some("rename_all") => {
                        let first = seen.first(cx, "rename_all", &meta);
                        if let Some(lit) = lit_str(cx, &meta, "rename_all = \"camelCase\"")? {
                            match RenameRule::from_name(&lit.value()) {
                                Some(rule) if first => {
                                    out.rename_all = Some(Setting {
                                        span: meta.path.span(),
                                        value: rule,
                                    });
                                }
                                Some(_) => {}
                                None => cx.error_spanned_by(
                                    &lit,
                                    format!(
                                        "unknown rename rule `{}`; expected one of {}",
                                        lit.value(),
                                        RenameRule::expected(),
                                    ),
                                ),
                            }
                        }
                    }
                    Some("namespace") => {
                        let first = seen.first(cx, "namespace", &meta);
                        if let Some(lit) = lit_str(cx, &meta, "namespace = \"auth\"")? {
                            if check_key(cx, &lit, "namespace") && first {
                                out.namespace = Some(Setting {
                                    span: meta.path.span(),
                                    value: lit,
                                });
                            }
                        }
                    }
                    Some("codec") => {
                        let first = seen.first(cx, "codec", &meta);
                        if let Some(codec) = codec(cx, &meta)? {
                            if first {
                                out.codec = Some(codec);
                            }
                        }
                    }
                    Some("crate") => {
                        let first = seen.first(cx, "crate", &meta);
                        if let Some(lit) = lit_str(cx, &meta, "crate = \"::session\"")? {
                            match lit.parse::<syn::Path>() {
                                Ok(path) if first => {
                                    out.krate = Some(Setting {
                                        span: meta.path.span(),
                                        value: path,
                                    });
                                }
                                Ok(_) => {}
                                Err(_) => cx.error_spanned_by(
                                    &lit,
                                    format!(
                                        "`{}` is not a path; `crate` names the session crate, \
                                         e.g. `crate = \"::session\"`",
                                        lit.value(),
                                    ),
                                ),
                            }
                        }
                    }
                    Some("default") => {
                        let first = seen.first(cx, "default", &meta);
                        if flag(
                            cx,
                            &meta,
                            "on the struct, `default` takes no value: absent fields \
                             take their value from the struct's `Default` impl",
                        )? && first
                        {
                            out.default = Some(meta.path.span());
                        }
                    }
                    _ => {
                        let hint = match key.as_deref() {
                            Some("rename" | "alias" | "skip" | "flash") => {
                                " (it belongs on a field)"
                            }
                            _ => "",
                        };
                        unknown(cx, &meta, "on a struct", CONTAINER_KEYS, hint)?;
                    }
                }
                Ok(())
            });
            if let Err(err) = parsed {
                cx.syn_error(err);
            }
        }
        out
    }
}

impl Field {
    pub(crate) fn from_attrs(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = Self::default();
        let mut seen = Seen::default();
        for attr in session_attrs(attrs) {
            let parsed = attr.parse_nested_meta(|meta| {
                let key = key_of(&meta);
                match key.as_deref() {
                    Some("rename") => {
                        let first = seen.first(cx, "rename", &meta);
                        if let Some(lit) = lit_str(cx, &meta, "rename = \"key\"")? {
                            if check_key(cx, &lit, "key") && first {
                                out.rename = Some(Setting {
                                    span: meta.path.span(),
                                    value: lit,
                                });
                            }
                        }
                    }
                    Some("alias") => {
                        // Repeatable: each one is another key accepted when loading.
                        if let Some(lit) = lit_str(cx, &meta, "alias = \"old_key\"")? {
                            if check_key(cx, &lit, "alias") {
                                out.aliases.push(Setting {
                                    span: meta.path.span(),
                                    value: lit,
                                });
                            }
                        }
                    }
                    Some("default") => {
                        let first = seen.first(cx, "default", &meta);
                        let value = if meta.input.peek(Token![=]) {
                            lit_str(cx, &meta, "default = \"path::to::function\"")?.and_then(
                                |lit| match lit.parse::<syn::ExprPath>() {
                                    Ok(path) => Some(FieldDefault::Path(path)),
                                    Err(_) => {
                                        cx.error_spanned_by(
                                            &lit,
                                            format!(
                                                "`{}` is not a path; `default = \"...\"` names \
                                                 a function that returns the field's default",
                                                lit.value(),
                                            ),
                                        );
                                        None
                                    }
                                },
                            )
                        } else if flag(
                            cx,
                            &meta,
                            "expected `default` or `default = \"path::to::function\"`",
                        )? {
                            Some(FieldDefault::Trait)
                        } else {
                            None
                        };
                        if let Some(value) = value.filter(|_| first) {
                            out.default = Some(Setting {
                                span: meta.path.span(),
                                value,
                            });
                        }
                    }
                    Some("skip") => {
                        let first = seen.first(cx, "skip", &meta);
                        if flag(cx, &meta, "`skip` takes no value: write `#[session(skip)]`")?
                            && first
                        {
                            out.skip = Some(meta.path.span());
                        }
                    }
                    Some("flash") => {
                        let first = seen.first(cx, "flash", &meta);
                        if flag(
                            cx,
                            &meta,
                            "`flash` takes no value: write `#[session(flash)]`",
                        )? && first
                        {
                            out.flash = Some(meta.path.span());
                        }
                    }
                    Some("codec") => {
                        let first = seen.first(cx, "codec", &meta);
                        if let Some(codec) = codec(cx, &meta)? {
                            if first {
                                out.codec = Some(codec);
                            }
                        }
                    }
                    _ => {
                        let hint = match key.as_deref() {
                            Some("rename_all" | "namespace" | "crate") => {
                                " (it belongs on the struct)"
                            }
                            _ => "",
                        };
                        unknown(cx, &meta, "on a field", FIELD_KEYS, hint)?;
                    }
                }
                Ok(())
            });
            if let Err(err) = parsed {
                cx.syn_error(err);
            }
        }
        out
    }
}

fn session_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|attr| attr.path().is_ident("session"))
}

/// The setting's key as a string, if it is a single identifier (keywords such
/// as `crate` included).
fn key_of(meta: &ParseNestedMeta<'_>) -> Option<String> {
    meta.path.get_ident().map(|ident| ident.to_string())
}

/// The keys already set in one attribute list, to report duplicates.
#[derive(Default)]
struct Seen(Vec<&'static str>);

impl Seen {
    /// Whether `key` is set for the first time; reports it otherwise.
    fn first(&mut self, cx: &Ctxt, key: &'static str, meta: &ParseNestedMeta<'_>) -> bool {
        if self.0.contains(&key) {
            cx.error_spanned_by(&meta.path, format!("duplicate session attribute `{key}`"));
            false
        } else {
            self.0.push(key);
            true
        }
    }
}

/// Reports an unknown key and skips its value, so parsing can go on.
fn unknown(
    cx: &Ctxt,
    meta: &ParseNestedMeta<'_>,
    place: &str,
    expected: &str,
    hint: &str,
) -> syn::Result<()> {
    let path = &meta.path;
    let name = quote!(#path).to_string().replace(' ', "");
    let advice = if !hint.is_empty() {
        hint.to_owned()
    } else {
        expected
            .split(", ")
            .map(|key| key.trim_matches('`'))
            .find(|key| similar(key, &name))
            .map(|key| format!(" (did you mean `{key}`?)"))
            .unwrap_or_default()
    };
    cx.error_spanned_by(
        path,
        format!("unknown session attribute `{name}` {place}{advice}; expected one of {expected}"),
    );
    skip_value(meta.input)?;
    Ok(())
}

/// Consumes whatever follows a key up to the next top-level comma, and
/// returns it.
fn skip_value(input: ParseStream<'_>) -> syn::Result<TokenStream> {
    input.step(|cursor| {
        let mut skipped = TokenStream::new();
        let mut rest = *cursor;
        while let Some((tt, next)) = rest.token_tree() {
            match &tt {
                TokenTree::Punct(punct) if punct.as_char() == ',' => break,
                _ => {
                    skipped.extend([tt]);
                    rest = next;
                }
            }
        }
        Ok((skipped, rest))
    })
}

/// A key without a value (`skip`). Reports `message` at the key and the value
/// and returns `false` when a value was given anyway.
fn flag(cx: &Ctxt, meta: &ParseNestedMeta<'_>, message: &str) -> syn::Result<bool> {
    if meta.input.is_empty() || meta.input.peek(Token![,]) {
        return Ok(true);
    }
    let value = skip_value(meta.input)?;
    let path = &meta.path;
    cx.error_spanned_by(quote!(#path #value), message);
    Ok(false)
}

/// `key = "string"`. Reports a missing or non-string value (showing `example`)
/// and returns `None` for it.
fn lit_str(cx: &Ctxt, meta: &ParseNestedMeta<'_>, example: &str) -> syn::Result<Option<LitStr>> {
    let path = &meta.path;
    if !meta.input.peek(Token![=]) {
        skip_value(meta.input)?;
        let name = quote!(#path).to_string();
        cx.error_spanned_by(path, format!("`{name}` needs a value: `{example}`"));
        return Ok(None);
    }
    let mut expr: syn::Expr = meta.value()?.parse()?;
    while let syn::Expr::Group(group) = expr {
        expr = *group.expr;
    }
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(lit),
            ..
        }) => {
            if lit.suffix().is_empty() {
                Ok(Some(lit))
            } else {
                cx.error_spanned_by(
                    &lit,
                    format!("unexpected suffix `{}` on string literal", lit.suffix()),
                );
                Ok(None)
            }
        }
        expr => {
            cx.error_spanned_by(&expr, format!("expected a string literal: `{example}`"));
            Ok(None)
        }
    }
}

/// `codec = Type`.
fn codec(cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<Option<Setting<syn::Type>>> {
    const EXAMPLE: &str = "e.g. `codec = session::Binary`";
    let key = meta.path.span();
    if !meta.input.peek(Token![=]) {
        skip_value(meta.input)?;
        cx.error_at(key, format!("`codec` needs a codec type: {EXAMPLE}"));
        return Ok(None);
    }
    let input = meta.value()?;
    if input.peek(LitStr) {
        let lit: LitStr = input.parse()?;
        cx.error_spanned_by(
            &lit,
            format!(
                "expected a codec type, found a string; write the type without quotes, {EXAMPLE}"
            ),
        );
        return Ok(None);
    }
    let start = input.span();
    match input.parse::<syn::Type>() {
        Ok(ty) => {
            let mut inner = &ty;
            while let syn::Type::Group(group) = inner {
                inner = &group.elem;
            }
            if matches!(inner, syn::Type::Path(_)) {
                Ok(Some(Setting {
                    span: key,
                    value: ty,
                }))
            } else {
                cx.error_spanned_by(&ty, format!("expected a codec type path, {EXAMPLE}"));
                Ok(None)
            }
        }
        Err(_) => {
            skip_value(input)?;
            cx.error_at(start, format!("expected a codec type, {EXAMPLE}"));
            Ok(None)
        }
    }
}

/// Checks a stored key, alias or namespace: not empty, no empty dot-separated
/// segment, no whitespace or control characters. Reports and returns `false`
/// when it is not usable.
fn check_key(cx: &Ctxt, lit: &LitStr, what: &str) -> bool {
    let value = lit.value();
    let problem = if value.is_empty() {
        format!("the {what} cannot be empty")
    } else if value.split('.').any(str::is_empty) {
        format!(
            "`{value}` is not a valid {what}: dots separate namespace segments, so it cannot \
             start or end with a dot or contain `..`"
        )
    } else if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        format!(
            "`{value}` is not a valid {what}: it cannot contain whitespace or control characters"
        )
    } else {
        return true;
    };
    cx.error_spanned_by(lit, problem);
    false
}

/// Whether an unknown key looks like a typo of `known`: one contains the
/// other, or they are at most two edits apart.
fn similar(known: &str, unknown: &str) -> bool {
    if known.contains(unknown) && unknown.len() >= 3 || unknown.contains(known) {
        return true;
    }
    // Levenshtein distance, one row at a time.
    let unknown: Vec<char> = unknown.chars().collect();
    let mut row: Vec<usize> = (0..=unknown.len()).collect();
    for (i, k) in known.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, u) in unknown.iter().enumerate() {
            let substitution = diagonal + usize::from(k != *u);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[unknown.len()] <= 2
}

#[cfg(test)]
mod tests {
    use super::similar;

    #[test]
    fn typos() {
        assert!(similar("rename", "renamed"));
        assert!(similar("rename", "remane"));
        assert!(similar("rename_all", "rename_al"));
        assert!(similar("namespace", "namespac"));
        assert!(similar("skip", "skp"));
        assert!(!similar("rename", "prefix"));
        assert!(!similar("codec", "unknown"));
        assert!(!similar("flash", "x"));
    }
}
