//! Reads a `#[derive(Term)]` input into the [model](super::model): the
//! `#[term(..)]` attributes on the type, its variants and its fields, and
//! the names each is written under.
//!
//! An attribute that cannot be read (unknown, a value of the wrong kind, an
//! unknown `rename_all` rule, a second representation) is reported here;
//! whether the attributes that were read fit together is for
//! [`check`](super::check).

use proc_macro2::Span;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::{DeriveInput, Fields, LitStr};

use super::case::{CASES, Case};
use super::model::{
    Container, ContainerAttrs, Data, Field, FieldAttrs, FieldDefault, Repr, Struct, Style, Variant,
    VariantAttrs,
};
use crate::ctxt::Ctxt;

/// The model of the deriving type.
pub(crate) fn container(cx: &Ctxt, input: &DeriveInput) -> Container {
    let attrs = container_attrs(cx, &input.attrs);
    let data = match &input.data {
        syn::Data::Union(u) => Data::Union(u.union_token.span()),
        syn::Data::Struct(s) => Data::Struct(Struct {
            name: attrs
                .rename
                .as_ref()
                .map(LitStr::value)
                .unwrap_or_else(|| Case::Snake.apply(&input.ident.to_string())),
            style: style(&s.fields),
            fields: fields(cx, &s.fields, attrs.rename_all),
        }),
        syn::Data::Enum(e) => Data::Enum(
            e.variants
                .iter()
                .map(|v| {
                    let vattrs = variant_attrs(cx, &v.attrs);
                    let tag = match &vattrs.rename {
                        Some(lit) => lit.value(),
                        None => attrs
                            .rename_all
                            .unwrap_or(Case::Snake)
                            .apply(&v.ident.to_string()),
                    };
                    let fields = fields(cx, &v.fields, vattrs.rename_all);
                    Variant {
                        ident: v.ident.clone(),
                        span: v.span(),
                        attrs: vattrs,
                        tag,
                        style: style(&v.fields),
                        fields,
                    }
                })
                .collect(),
        ),
    };
    Container {
        ident: input.ident.clone(),
        generics: input.generics.clone(),
        attrs,
        data,
    }
}

fn style(fields: &Fields) -> Style {
    match fields {
        Fields::Named(_) => Style::Named,
        Fields::Unnamed(_) => Style::Unnamed,
        Fields::Unit => Style::Unit,
    }
}

/// The fields, each with its key: `rename`, or its name under `rename_all`
/// (as written by default).
fn fields(cx: &Ctxt, fields: &Fields, rename_all: Option<Case>) -> Vec<Field> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let attrs = field_attrs(cx, &f.attrs);
            let (member, base) = match &f.ident {
                Some(id) => (syn::Member::Named(id.clone()), id.to_string()),
                None => (syn::Member::Unnamed(syn::Index::from(i)), i.to_string()),
            };
            let key = match &attrs.rename {
                Some(lit) => lit.value(),
                None => rename_all.unwrap_or(Case::Verbatim).apply(&base),
            };
            let key_span = match (&attrs.rename, &f.ident) {
                (Some(lit), _) => lit.span(),
                (None, Some(id)) => id.span(),
                (None, None) => f.ty.span(),
            };
            Field {
                member,
                binding: format_ident!("__f{}", i),
                ty: f.ty.clone(),
                key,
                attrs,
                span: f.span(),
                key_span,
            }
        })
        .collect()
}

/// A `rename_all` value.
fn parse_case(cx: &Ctxt, lit: &LitStr) -> Option<Case> {
    let case = Case::parse(&lit.value());
    if case.is_none() {
        cx.error(
            lit.span(),
            format!(
                "unknown rename_all rule {:?}; expected one of {CASES}",
                lit.value()
            ),
        );
    }
    case
}

/// Sets the representation, unless one is set already.
fn set_repr(cx: &Ctxt, slot: &mut Option<(Repr, Span)>, repr: Repr, span: Span) {
    if let Some((old, _)) = slot {
        cx.error(
            span,
            format!(
                "conflicting representations: `{}` and `{}`; a type has one shape",
                old.name(),
                repr.name()
            ),
        );
    } else {
        *slot = Some((repr, span));
    }
}

fn container_attrs(cx: &Ctxt, attrs: &[syn::Attribute]) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("term")) {
        let r = attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            if meta.path.is_ident("record") {
                set_repr(cx, &mut out.repr, Repr::Record, span);
            } else if meta.path.is_ident("tuple") {
                set_repr(cx, &mut out.repr, Repr::Tuple, span);
            } else if meta.path.is_ident("proplist") {
                set_repr(cx, &mut out.repr, Repr::Proplist, span);
            } else if meta.path.is_ident("map") {
                set_repr(cx, &mut out.repr, Repr::Map, span);
            } else if meta.path.is_ident("transparent") {
                set_repr(cx, &mut out.repr, Repr::Transparent, span);
            } else if meta.path.is_ident("elixir_struct") {
                let lit: LitStr = meta.value()?.parse()?;
                set_repr(cx, &mut out.repr, Repr::ElixirStruct(lit.value()), span);
                out.elixir_modules.push(lit);
            } else if meta.path.is_ident("rename") {
                out.rename = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("rename_all") {
                let lit: LitStr = meta.value()?.parse()?;
                out.rename_all = parse_case(cx, &lit);
            } else if meta.path.is_ident("crate") {
                out.krate.parse_value(cx, &meta)?;
            } else {
                return Err(meta.error(
                    "unknown term attribute; expected one of `record`, `tuple`, `proplist`, `map`, \
                     `transparent`, `elixir_struct = \"...\"`, `rename = \"...\"`, \
                     `rename_all = \"...\"`, `crate = \"...\"`",
                ));
            }
            Ok(())
        });
        cx.ok(r);
    }
    out
}

fn variant_attrs(cx: &Ctxt, attrs: &[syn::Attribute]) -> VariantAttrs {
    let mut out = VariantAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("term")) {
        let r = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                out.rename = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("rename_all") {
                let lit: LitStr = meta.value()?.parse()?;
                out.rename_all = parse_case(cx, &lit);
            } else if meta.path.is_ident("record") {
                out.record = Some(meta.path.span());
            } else {
                return Err(meta.error(
                    "unknown term attribute on a variant; expected one of `rename = \"...\"`, \
                     `rename_all = \"...\"`, `record`",
                ));
            }
            Ok(())
        });
        cx.ok(r);
    }
    out
}

fn field_attrs(cx: &Ctxt, attrs: &[syn::Attribute]) -> FieldAttrs {
    let mut out = FieldAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("term")) {
        let r = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                out.rename = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("default") {
                out.default_span = Some(meta.path.span());
                out.default = if meta.input.peek(syn::Token![=]) {
                    let lit: LitStr = meta.value()?.parse()?;
                    FieldDefault::Path(lit.parse()?)
                } else {
                    FieldDefault::Default
                };
            } else if meta.path.is_ident("skip") {
                out.skip = true;
            } else if meta.path.is_ident("with") {
                let lit: LitStr = meta.value()?.parse()?;
                out.with = Some(lit.parse()?);
            } else {
                return Err(meta.error(
                    "unknown term attribute on a field; expected one of `rename = \"...\"`, \
                     `default`, `default = \"path\"`, `skip`, `with = \"module\"`",
                ));
            }
            Ok(())
        });
        cx.ok(r);
    }
    out
}
