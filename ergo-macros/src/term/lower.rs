//! Lowers a checked [model](super::model) to the Erlang shape of each struct
//! or variant: one [`Body`] — an atom, a tuple, a map, a proplist or a
//! transparent wrapper — that [`codegen`](super::codegen) writes all four
//! traits from, so that they always agree.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Ident;

use super::model::{Container, Data, Field, Repr, Style};

/// The Erlang shape of a struct or of one enum variant.
pub(crate) enum Body {
    /// A unit struct or unit variant: an atom.
    Atom(String),
    /// `{Tag?, F1, F2, …}`.
    Tuple { tag: Option<String> },
    /// `#{k => v}`, inside `{Tag, …}` for an enum variant, with `__struct__`
    /// for an Elixir struct.
    Map {
        tag: Option<String>,
        module: Option<String>,
    },
    /// `[{k, v}]`.
    Proplist,
    /// The one field's own shape.
    Transparent,
}

/// How the value is built back: `Path { a, b }`, `Path(a, b)` or `Path`.
pub(crate) enum Ctor {
    Named(TokenStream),
    Unnamed(TokenStream),
    Unit(TokenStream),
}

/// A struct's or a variant's shape, with its fields and constructor.
pub(crate) struct Shape<'a> {
    /// The Erlang shape.
    pub(crate) body: Body,
    /// Every field, skipped ones included.
    pub(crate) fields: &'a [Field],
    /// How the value is built.
    pub(crate) ctor: Ctor,
}

impl Shape<'_> {
    /// The fields that are converted (not skipped).
    pub(crate) fn live(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.attrs.skip)
    }
}

/// The shape of a struct (one), or of each variant of an enum with the
/// variant's name (for a union: none, which a check has refused).
pub(crate) fn shapes(c: &Container) -> Vec<(Shape<'_>, Option<Ident>)> {
    let repr = c.attrs.repr();
    match &c.data {
        Data::Union(_) => Vec::new(),
        Data::Struct(s) => {
            let name = s.name.clone();
            let body = match (s.style, repr) {
                (Style::Unit, _) => Body::Atom(name),
                (_, Some(Repr::Transparent)) => Body::Transparent,
                (Style::Unnamed, Some(Repr::Record)) => Body::Tuple { tag: Some(name) },
                (Style::Unnamed, _) => Body::Tuple { tag: None },
                (Style::Named, None | Some(Repr::Map)) => Body::Map {
                    tag: None,
                    module: None,
                },
                (Style::Named, Some(Repr::Record)) => Body::Tuple { tag: Some(name) },
                (Style::Named, Some(Repr::Tuple)) => Body::Tuple { tag: None },
                (Style::Named, Some(Repr::Proplist)) => Body::Proplist,
                (Style::Named, Some(Repr::ElixirStruct(m))) => Body::Map {
                    tag: None,
                    module: Some(m.clone()),
                },
            };
            let ctor = ctor(s.style, quote!(Self));
            vec![(
                Shape {
                    body,
                    fields: &s.fields,
                    ctor,
                },
                None,
            )]
        }
        Data::Enum(variants) => variants
            .iter()
            .map(|v| {
                let tag = v.tag.clone();
                let body = match (v.style, v.is_record(&c.attrs)) {
                    (Style::Unit, _) => Body::Atom(tag),
                    (Style::Unnamed, _) | (Style::Named, true) => Body::Tuple { tag: Some(tag) },
                    (Style::Named, false) => Body::Map {
                        tag: Some(tag),
                        module: None,
                    },
                };
                let vid = &v.ident;
                let shape = Shape {
                    body,
                    fields: &v.fields,
                    ctor: ctor(v.style, quote!(Self::#vid)),
                };
                (shape, Some(vid.clone()))
            })
            .collect(),
    }
}

fn ctor(style: Style, path: TokenStream) -> Ctor {
    match style {
        Style::Named => Ctor::Named(path),
        Style::Unnamed => Ctor::Unnamed(path),
        Style::Unit => Ctor::Unit(path),
    }
}
