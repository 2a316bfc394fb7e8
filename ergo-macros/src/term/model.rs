//! The model of a `#[derive(Term)]` type: its attributes, and its fields or
//! variants with the atoms and keys they are written under.
//!
//! Parsing fills the model in and works out the names (`rename`,
//! `rename_all`); it does not judge the combination of attributes, which is
//! for [`check`](super::check). Each thing an error may be about keeps the
//! span it is reported at.

use proc_macro2::Span;
use syn::{Generics, Ident, LitStr, Path, Type};

use super::case::Case;
use crate::crate_path::CratePath;

/// The deriving type.
pub(crate) struct Container {
    /// The type's name.
    pub(crate) ident: Ident,
    /// The type's generics, each type parameter of which gets the derived
    /// trait as a bound.
    pub(crate) generics: Generics,
    /// Its `#[term(..)]` attributes.
    pub(crate) attrs: ContainerAttrs,
    /// Its fields or variants.
    pub(crate) data: Data,
}

/// What the type is made of.
pub(crate) enum Data {
    /// A struct.
    Struct(Struct),
    /// An enum, with its variants in order.
    Enum(Vec<Variant>),
    /// A union (not supported), spanned on `union`.
    Union(Span),
}

/// How a struct or a variant holds its fields.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Style {
    /// `{ a, b }`.
    Named,
    /// `(A, B)`.
    Unnamed,
    /// No fields.
    Unit,
}

/// A struct's body.
pub(crate) struct Struct {
    /// The atom a unit struct is, or a record's tag: `rename`, or the type's
    /// name in snake_case.
    pub(crate) name: String,
    /// How it holds its fields.
    pub(crate) style: Style,
    /// Its fields, in order.
    pub(crate) fields: Vec<Field>,
}

/// One enum variant.
pub(crate) struct Variant {
    /// The variant's name.
    pub(crate) ident: Ident,
    /// The whole variant, where an error about its atom points.
    pub(crate) span: Span,
    /// Its `#[term(..)]` attributes.
    pub(crate) attrs: VariantAttrs,
    /// Its tag: `rename`, or its name under the type's `rename_all`
    /// (snake_case by default).
    pub(crate) tag: String,
    /// How it holds its fields.
    pub(crate) style: Style,
    /// Its fields, in order.
    pub(crate) fields: Vec<Field>,
}

/// One field of a struct or variant.
pub(crate) struct Field {
    /// `name` for named fields, `0`, `1`, … for positional ones.
    pub(crate) member: syn::Member,
    /// A local binding for the field's value.
    pub(crate) binding: Ident,
    /// The field's type.
    pub(crate) ty: Type,
    /// The key (map, proplist) the field is written under.
    pub(crate) key: String,
    /// Its `#[term(..)]` attributes.
    pub(crate) attrs: FieldAttrs,
    /// The whole field.
    pub(crate) span: Span,
    /// Where an error about its key points: the `rename` value, else the
    /// field's name, else its type.
    pub(crate) key_span: Span,
}

/// A representation attribute on the type.
#[derive(Clone, PartialEq, Eq, Debug)]
pub(crate) enum Repr {
    /// `map`: `#{k => v}`, the default for named fields.
    Map,
    /// `record`: `{name, F1, F2}`.
    Record,
    /// `tuple`: `{F1, F2}`.
    Tuple,
    /// `proplist`: `[{k, v}]`.
    Proplist,
    /// `elixir_struct = "Elixir.Module"`: a map with `__struct__`, holding
    /// the module's atom as written.
    ElixirStruct(String),
    /// `transparent`: the one field's own shape.
    Transparent,
}

impl Repr {
    /// The attribute's name, as errors cite it.
    pub(crate) fn name(&self) -> &'static str {
        match self {
            Repr::Map => "map",
            Repr::Record => "record",
            Repr::Tuple => "tuple",
            Repr::Proplist => "proplist",
            Repr::ElixirStruct(_) => "elixir_struct",
            Repr::Transparent => "transparent",
        }
    }
}

/// `#[term(..)]` on the type.
#[derive(Default)]
pub(crate) struct ContainerAttrs {
    /// The representation, spanned on its attribute.
    pub(crate) repr: Option<(Repr, Span)>,
    /// Every `elixir_struct` value given, each checked for its `Elixir.`
    /// prefix.
    pub(crate) elixir_modules: Vec<LitStr>,
    /// `rename = "atom"`.
    pub(crate) rename: Option<LitStr>,
    /// `rename_all = "..."`, for the fields of a struct or the variants of
    /// an enum.
    pub(crate) rename_all: Option<Case>,
    /// `crate = "path"`: where the term traits are (`::ergo::etf` by
    /// default).
    pub(crate) krate: CratePath,
}

impl ContainerAttrs {
    /// The representation, if one is given.
    pub(crate) fn repr(&self) -> Option<&Repr> {
        self.repr.as_ref().map(|(r, _)| r)
    }

    /// Where an error about the representation points.
    pub(crate) fn repr_span(&self) -> Span {
        self.repr
            .as_ref()
            .map(|(_, s)| *s)
            .unwrap_or(Span::call_site())
    }
}

/// `#[term(..)]` on a variant.
#[derive(Default)]
pub(crate) struct VariantAttrs {
    /// `rename = "atom"`.
    pub(crate) rename: Option<LitStr>,
    /// `rename_all = "..."`, for the variant's fields.
    pub(crate) rename_all: Option<Case>,
    /// `record`, spanned on it.
    pub(crate) record: Option<Span>,
}

/// What a field missing from the input becomes.
#[derive(Clone, Default)]
pub(crate) enum FieldDefault {
    /// Nothing: the field is required.
    #[default]
    None,
    /// `default`: `Default::default()`.
    Default,
    /// `default = "path"`: `path()`.
    Path(Path),
}

/// `#[term(..)]` on a field.
#[derive(Default)]
pub(crate) struct FieldAttrs {
    /// `rename = "key"`.
    pub(crate) rename: Option<LitStr>,
    /// `default` or `default = "path"`.
    pub(crate) default: FieldDefault,
    /// Where `default` was written.
    pub(crate) default_span: Option<Span>,
    /// `skip`: never written, read as its default.
    pub(crate) skip: bool,
    /// `with = "module"`: the module converting the field.
    pub(crate) with: Option<Path>,
}

impl Variant {
    /// Whether the variant is written as a record: `{tag, F1, F2}`.
    pub(crate) fn is_record(&self, container: &ContainerAttrs) -> bool {
        self.attrs.record.is_some() || container.repr() == Some(&Repr::Record)
    }

    /// The number of elements of the variant's tuple (0 for an atom).
    pub(crate) fn arity(&self, container: &ContainerAttrs) -> usize {
        match (self.style, self.is_record(container)) {
            (Style::Unit, _) => 0,
            (Style::Named, false) => 2,
            _ => self.fields.iter().filter(|f| !f.attrs.skip).count() + 1,
        }
    }
}
