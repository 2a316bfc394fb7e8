//! The rules a `#[derive(Term)]` [model](super::model) must follow: the
//! attributes fit the type they are on, every atom fits in 255 characters,
//! and no two fields (or variants) are written the same way.
//!
//! After a clean check, [`lower`](super::lower) can give every struct and
//! variant one Erlang shape.

use proc_macro2::Span;

use super::model::{Container, Data, Field, Repr, Struct, Style, Variant};
use crate::ctxt::Ctxt;

/// Checks the whole type.
pub(crate) fn container(cx: &Ctxt, c: &Container) {
    for lit in &c.attrs.elixir_modules {
        let module = lit.value();
        if !module.starts_with("Elixir.") {
            cx.error(
                lit.span(),
                format!("an Elixir module atom starts with \"Elixir.\": write \"Elixir.{module}\""),
            );
        }
    }
    match &c.data {
        Data::Union(span) => cx.error(*span, "`#[derive(Term)]` does not support unions"),
        Data::Struct(s) => structure(cx, c, s),
        Data::Enum(variants) => enumeration(cx, c, variants),
    }
}

fn structure(cx: &Ctxt, c: &Container, s: &Struct) {
    let repr = c.attrs.repr();
    let repr_span = c.attrs.repr_span();
    if let Some(lit) = &c.attrs.rename {
        atom_len(cx, lit.span(), &s.name);
    }
    let positional = s.style == Style::Unnamed || matches!(repr, Some(Repr::Record | Repr::Tuple));
    fields(cx, &s.fields, positional);
    let live = s.fields.iter().filter(|f| !f.attrs.skip).count();
    match (s.style, repr) {
        (Style::Unit, Some(r)) => cx.error(
            repr_span,
            format!(
                "a unit struct is an atom; `{}` does not apply to it",
                r.name()
            ),
        ),
        (Style::Unit, None) => {}
        (_, Some(Repr::Transparent)) if live != 1 => cx.error(
            repr_span,
            format!(
                "`transparent` needs exactly one field that is not skipped; this type has {live}"
            ),
        ),
        (Style::Unnamed, Some(r @ (Repr::Map | Repr::Proplist | Repr::ElixirStruct(_)))) => cx
            .error(
                repr_span,
                format!(
                    "`{}` needs named fields; a tuple struct is a tuple (or a record with `record`)",
                    r.name()
                ),
            ),
        _ => {}
    }
}

fn enumeration(cx: &Ctxt, c: &Container, variants: &[Variant]) {
    if let Some(r) = c.attrs.repr()
        && *r != Repr::Record
    {
        cx.error(
            c.attrs.repr_span(),
            format!(
                "`{}` applies to structs; on an enum only `record` (struct variants as records) does",
                r.name()
            ),
        );
    }
    if let Some(lit) = &c.attrs.rename {
        cx.error(
            lit.span(),
            "`rename` on an enum has no effect: name its variants instead",
        );
    }
    if variants.is_empty() {
        cx.error(
            c.ident.span(),
            "an enum with no variants has no term to convert",
        );
    }
    let mut forms_seen: Vec<(&str, usize)> = Vec::new();
    for v in variants {
        atom_len(cx, v.span, &v.tag);
        if let (Some(span), Style::Unnamed | Style::Unit) = (v.attrs.record, v.style) {
            cx.error(
                span,
                "`record` applies to struct variants; tuple variants are already `{tag, ...}`",
            );
        }
        let positional = v.style != Style::Named || v.is_record(&c.attrs);
        fields(cx, &v.fields, positional);
        let arity = v.arity(&c.attrs);
        if forms_seen.contains(&(v.tag.as_str(), arity)) {
            cx.error(
                v.attrs
                    .rename
                    .as_ref()
                    .map_or(v.ident.span(), syn::LitStr::span),
                format!(
                    "two variants have the same Erlang form (tag `{}`, {arity} elements)",
                    v.tag
                ),
            );
        }
        forms_seen.push((&v.tag, arity));
    }
}

/// Checks the fields of a struct or variant; `positional` if they are
/// written by position (a tuple or a record) rather than under keys.
fn fields(cx: &Ctxt, fields: &[Field], positional: bool) {
    for (i, f) in fields.iter().enumerate() {
        if let Some(span) = f.attrs.default_span
            && positional
            && !f.attrs.skip
        {
            cx.error(
                span,
                "`default` needs a keyed shape (map, proplist, elixir_struct): in a tuple or \
                 record every position must be present",
            );
        }
        if f.attrs.skip && f.attrs.with.is_some() {
            cx.error(
                f.span,
                "a skipped field is never converted: `with` has no effect on it",
            );
        }
        if !f.attrs.skip {
            atom_len(cx, f.span, &f.key);
            if let Some(prev) = fields[..i]
                .iter()
                .find(|p| !p.attrs.skip && p.key == f.key && !positional)
            {
                cx.error(
                    f.key_span,
                    format!(
                        "two fields are written under the key `{}` (`{}` and this one)",
                        f.key,
                        member_name(&prev.member)
                    ),
                );
            }
        }
    }
}

fn atom_len(cx: &Ctxt, span: Span, name: &str) {
    if name.chars().count() > 255 {
        cx.error(span, "an atom has at most 255 characters");
    }
}

fn member_name(m: &syn::Member) -> String {
    match m {
        syn::Member::Named(id) => id.to_string(),
        syn::Member::Unnamed(i) => i.index.to_string(),
    }
}
