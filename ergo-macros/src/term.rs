//! `#[derive(Term)]`: parse the type into a model, check it, generate the
//! four conversion traits (`ToTerm`, `FromTerm`, `Encode`, `Decode`).
//!
//! Every type (a struct, or each variant of an enum) is lowered to one
//! [`Body`] — an atom, a tuple, a map, a proplist or a transparent wrapper —
//! and each trait is generated from the body, so that the four traits always
//! agree on the shape.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Ident, LitStr, Path, Type};

// ---------------------------------------------------------------- errors

/// Collects every error, so the user sees them all at once.
#[derive(Default)]
struct Ctxt {
    errors: Vec<syn::Error>,
}

impl Ctxt {
    fn error(&mut self, span: impl Spanned, msg: impl std::fmt::Display) {
        self.errors.push(syn::Error::new(span.span(), msg));
    }

    fn syn(&mut self, e: syn::Error) {
        self.errors.push(e);
    }

    fn finish(self) -> Result<(), syn::Error> {
        let mut iter = self.errors.into_iter();
        match iter.next() {
            None => Ok(()),
            Some(mut first) => {
                for e in iter {
                    first.combine(e);
                }
                Err(first)
            }
        }
    }
}

// ---------------------------------------------------------------- attributes

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Case {
    Snake,
    Camel,
    Pascal,
    ScreamingSnake,
    Kebab,
    Lower,
    Upper,
    Verbatim,
}

const CASES: &str = "\"snake_case\", \"camelCase\", \"PascalCase\", \"SCREAMING_SNAKE_CASE\", \"kebab-case\", \"lowercase\", \"UPPERCASE\" or \"verbatim\"";

impl Case {
    fn parse(s: &str) -> Option<Case> {
        Some(match s {
            "snake_case" => Case::Snake,
            "camelCase" => Case::Camel,
            "PascalCase" => Case::Pascal,
            "SCREAMING_SNAKE_CASE" => Case::ScreamingSnake,
            "kebab-case" => Case::Kebab,
            "lowercase" => Case::Lower,
            "UPPERCASE" => Case::Upper,
            "verbatim" => Case::Verbatim,
            _ => return None,
        })
    }

    /// Splits a Rust name (`PascalCase` or `snake_case`) into lower-case words.
    fn words(name: &str) -> Vec<String> {
        let name = name.strip_prefix("r#").unwrap_or(name);
        let mut words = Vec::new();
        let mut cur = String::new();
        let chars: Vec<char> = name.chars().collect();
        for (i, &c) in chars.iter().enumerate() {
            if c == '_' {
                if !cur.is_empty() {
                    words.push(std::mem::take(&mut cur));
                }
                continue;
            }
            let boundary = c.is_uppercase()
                && !cur.is_empty()
                && (chars[i - 1].is_lowercase()
                    || chars[i - 1].is_ascii_digit()
                    || chars.get(i + 1).is_some_and(|n| n.is_lowercase()));
            if boundary {
                words.push(std::mem::take(&mut cur));
            }
            cur.extend(c.to_lowercase());
        }
        if !cur.is_empty() {
            words.push(cur);
        }
        words
    }

    fn apply(self, name: &str) -> String {
        let name = name.strip_prefix("r#").unwrap_or(name);
        let words = Case::words(name);
        let cap = |w: &String| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        };
        match self {
            Case::Verbatim => name.to_owned(),
            Case::Snake => words.join("_"),
            Case::Kebab => words.join("-"),
            Case::ScreamingSnake => words.join("_").to_uppercase(),
            Case::Lower => words.concat(),
            Case::Upper => words.concat().to_uppercase(),
            Case::Pascal => words.iter().map(cap).collect(),
            Case::Camel => words
                .iter()
                .enumerate()
                .map(|(i, w)| if i == 0 { w.clone() } else { cap(w) })
                .collect(),
        }
    }
}

#[derive(Clone, PartialEq, Eq, Debug)]
enum Repr {
    Map,
    Record,
    Tuple,
    Proplist,
    ElixirStruct(String),
    Transparent,
}

impl Repr {
    fn name(&self) -> &'static str {
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

#[derive(Default)]
struct ContainerAttrs {
    repr: Option<(Repr, Span)>,
    rename: Option<LitStr>,
    rename_all: Option<Case>,
    krate: Option<Path>,
}

#[derive(Default)]
struct VariantAttrs {
    rename: Option<LitStr>,
    rename_all: Option<Case>,
    record: Option<Span>,
}

#[derive(Clone, Default)]
enum FieldDefault {
    #[default]
    None,
    Default,
    Path(Path),
}

#[derive(Default)]
struct FieldAttrs {
    rename: Option<LitStr>,
    default: FieldDefault,
    default_span: Option<Span>,
    skip: bool,
    with: Option<Path>,
}

fn parse_case(ctx: &mut Ctxt, lit: &LitStr) -> Option<Case> {
    let case = Case::parse(&lit.value());
    if case.is_none() {
        ctx.error(
            lit,
            format!(
                "unknown rename_all rule {:?}; expected one of {CASES}",
                lit.value()
            ),
        );
    }
    case
}

fn set_repr(ctx: &mut Ctxt, slot: &mut Option<(Repr, Span)>, repr: Repr, span: Span) {
    if let Some((old, _)) = slot {
        ctx.error(
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

fn container_attrs(ctx: &mut Ctxt, attrs: &[syn::Attribute]) -> ContainerAttrs {
    let mut out = ContainerAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("term")) {
        let r = attr.parse_nested_meta(|meta| {
            let span = meta.path.span();
            if meta.path.is_ident("record") {
                set_repr(ctx, &mut out.repr, Repr::Record, span);
            } else if meta.path.is_ident("tuple") {
                set_repr(ctx, &mut out.repr, Repr::Tuple, span);
            } else if meta.path.is_ident("proplist") {
                set_repr(ctx, &mut out.repr, Repr::Proplist, span);
            } else if meta.path.is_ident("map") {
                set_repr(ctx, &mut out.repr, Repr::Map, span);
            } else if meta.path.is_ident("transparent") {
                set_repr(ctx, &mut out.repr, Repr::Transparent, span);
            } else if meta.path.is_ident("elixir_struct") {
                let lit: LitStr = meta.value()?.parse()?;
                let module = lit.value();
                if !module.starts_with("Elixir.") {
                    ctx.error(
                        &lit,
                        format!(
                            "an Elixir module atom starts with \"Elixir.\": write \"Elixir.{module}\""
                        ),
                    );
                }
                set_repr(ctx, &mut out.repr, Repr::ElixirStruct(module), span);
            } else if meta.path.is_ident("rename") {
                out.rename = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("rename_all") {
                let lit: LitStr = meta.value()?.parse()?;
                out.rename_all = parse_case(ctx, &lit);
            } else if meta.path.is_ident("crate") {
                let lit: LitStr = meta.value()?.parse()?;
                out.krate = Some(lit.parse()?);
            } else {
                return Err(meta.error(
                    "unknown term attribute; expected one of `record`, `tuple`, `proplist`, `map`, \
                     `transparent`, `elixir_struct = \"...\"`, `rename = \"...\"`, \
                     `rename_all = \"...\"`, `crate = \"...\"`",
                ));
            }
            Ok(())
        });
        if let Err(e) = r {
            ctx.syn(e);
        }
    }
    out
}

fn variant_attrs(ctx: &mut Ctxt, attrs: &[syn::Attribute]) -> VariantAttrs {
    let mut out = VariantAttrs::default();
    for attr in attrs.iter().filter(|a| a.path().is_ident("term")) {
        let r = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename") {
                out.rename = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("rename_all") {
                let lit: LitStr = meta.value()?.parse()?;
                out.rename_all = parse_case(ctx, &lit);
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
        if let Err(e) = r {
            ctx.syn(e);
        }
    }
    out
}

fn field_attrs(ctx: &mut Ctxt, attrs: &[syn::Attribute]) -> FieldAttrs {
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
        if let Err(e) = r {
            ctx.syn(e);
        }
    }
    out
}

// ---------------------------------------------------------------- model

/// One field of a struct or variant.
struct Field {
    /// `name` for named fields, `0`, `1`, … for positional ones.
    member: syn::Member,
    /// A local binding for the field's value.
    binding: Ident,
    ty: Type,
    /// The key (map, proplist) the field is written under.
    key: String,
    attrs: FieldAttrs,
}

/// The Erlang shape of a struct or of one enum variant.
enum Body {
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
enum Ctor {
    Named(TokenStream),
    Unnamed(TokenStream),
    Unit(TokenStream),
}

struct Shape {
    body: Body,
    fields: Vec<Field>,
    ctor: Ctor,
}

impl Shape {
    fn live(&self) -> impl Iterator<Item = &Field> {
        self.fields.iter().filter(|f| !f.attrs.skip)
    }
}

fn check_atom_len(ctx: &mut Ctxt, span: Span, name: &str) {
    if name.chars().count() > 255 {
        ctx.error(span, "an atom has at most 255 characters");
    }
}

fn lower_fields(
    ctx: &mut Ctxt,
    fields: &Fields,
    rename_all: Option<Case>,
    positional_repr: bool,
) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    for (i, f) in fields.iter().enumerate() {
        let attrs = field_attrs(ctx, &f.attrs);
        let (member, base) = match &f.ident {
            Some(id) => (syn::Member::Named(id.clone()), id.to_string()),
            None => (syn::Member::Unnamed(syn::Index::from(i)), i.to_string()),
        };
        let key = match &attrs.rename {
            Some(lit) => lit.value(),
            None => rename_all.unwrap_or(Case::Verbatim).apply(&base),
        };
        if let Some(span) = attrs.default_span
            && positional_repr
            && !attrs.skip
        {
            ctx.error(
                span,
                "`default` needs a keyed shape (map, proplist, elixir_struct): in a tuple or \
                 record every position must be present",
            );
        }
        if attrs.skip && attrs.with.is_some() {
            ctx.error(
                f,
                "a skipped field is never converted: `with` has no effect on it",
            );
        }
        if !attrs.skip {
            check_atom_len(ctx, f.span(), &key);
            if let Some(prev) = out
                .iter()
                .find(|p| !p.attrs.skip && p.key == key && !positional_repr)
            {
                ctx.error(
                    match (&attrs.rename, &f.ident) {
                        (Some(lit), _) => lit.span(),
                        (None, Some(id)) => id.span(),
                        (None, None) => f.ty.span(),
                    },
                    format!(
                        "two fields are written under the key `{key}` (`{}` and this one)",
                        member_name(&prev.member)
                    ),
                );
            }
        }
        out.push(Field {
            member,
            binding: format_ident!("__f{}", i),
            ty: f.ty.clone(),
            key,
            attrs,
        });
    }
    out
}

fn member_name(m: &syn::Member) -> String {
    match m {
        syn::Member::Named(id) => id.to_string(),
        syn::Member::Unnamed(i) => i.index.to_string(),
    }
}

// ---------------------------------------------------------------- codegen helpers

fn atom_expr(name: &str) -> TokenStream {
    quote! {{
        static __ATOM: __etf::__private::OnceLock<__etf::Atom> = __etf::__private::OnceLock::new();
        *__ATOM.get_or_init(|| __etf::Atom::new(#name))
    }}
}

/// `enc.write_atom_prebuilt(..)` for `name`, with both of its encodings as
/// byte-string literals: nothing about the name is worked out at run time.
fn write_atom(name: &str) -> TokenStream {
    let utf8 = name.as_bytes();
    let mut utf8_form = Vec::with_capacity(utf8.len() + 3);
    if utf8.len() < 256 {
        utf8_form.extend_from_slice(&[119, utf8.len() as u8]);
    } else {
        utf8_form.push(118);
        utf8_form.extend_from_slice(&(utf8.len() as u16).to_be_bytes());
    }
    utf8_form.extend_from_slice(utf8);
    let latin1_form = if name.chars().all(|c| (c as u32) < 256) {
        let chars: Vec<u8> = name.chars().map(|c| c as u8).collect();
        let mut v = vec![100];
        v.extend_from_slice(&(chars.len() as u16).to_be_bytes());
        v.extend_from_slice(&chars);
        v
    } else {
        utf8_form.clone()
    };
    let latin1 = syn::LitByteStr::new(&latin1_form, Span::call_site());
    let utf8 = syn::LitByteStr::new(&utf8_form, Span::call_site());
    quote!(__enc.write_atom_prebuilt(#name, #latin1, #utf8);)
}

fn field_to_term(f: &Field, value: &TokenStream) -> TokenStream {
    match &f.attrs.with {
        Some(m) => quote!(#m::to_term(#value)),
        None => quote!(__etf::ToTerm::to_term(#value)),
    }
}

fn field_encode(f: &Field, value: &TokenStream) -> TokenStream {
    match &f.attrs.with {
        Some(m) => quote!(#m::encode(#value, __enc);),
        None => quote!(__etf::Encode::encode(#value, __enc);),
    }
}

fn field_from_term(f: &Field, term: &TokenStream) -> TokenStream {
    let ty = &f.ty;
    match &f.attrs.with {
        Some(m) => quote!(#m::from_term(#term)),
        None => quote!(<#ty as __etf::FromTerm>::from_term(#term)),
    }
}

fn field_decode(f: &Field) -> TokenStream {
    let ty = &f.ty;
    match &f.attrs.with {
        Some(m) => quote!(#m::decode(__dec)),
        None => quote!(<#ty as __etf::Decode>::decode(__dec)),
    }
}

fn field_shape(f: &Field) -> TokenStream {
    let ty = &f.ty;
    match &f.attrs.with {
        Some(_) => quote!(__etf::__private::PrivateCow::Borrowed("term")),
        None => quote!(<#ty as __etf::FromTerm>::shape()),
    }
}

fn default_value(f: &Field) -> TokenStream {
    match &f.attrs.default {
        FieldDefault::Path(p) => quote!(#p()),
        _ => quote!(::core::default::Default::default()),
    }
}

fn has_default(f: &Field) -> bool {
    f.attrs.skip || !matches!(f.attrs.default, FieldDefault::None)
}

/// Builds the value from bindings `__f0`, `__f1`, … (skipped fields get
/// their default).
fn construct(shape: &Shape) -> TokenStream {
    let values = shape.fields.iter().map(|f| {
        if f.attrs.skip {
            default_value(f)
        } else {
            let b = &f.binding;
            quote!(#b)
        }
    });
    match &shape.ctor {
        Ctor::Named(path) => {
            let members = shape.fields.iter().map(|f| &f.member);
            quote!(#path { #(#members: #values),* })
        }
        Ctor::Unnamed(path) => quote!(#path ( #(#values),* )),
        Ctor::Unit(path) => quote!(#path),
    }
}

/// A `format!` expression for the shape, e.g. `{add, integer}`.
fn shape_expr(shape: &Shape) -> TokenStream {
    let live: Vec<&Field> = shape.live().collect();
    let shapes: Vec<TokenStream> = live.iter().map(|f| field_shape(f)).collect();
    match &shape.body {
        Body::Atom(name) => quote!(__etf::__private::PrivateCow::Borrowed(#name)),
        Body::Transparent => shapes
            .into_iter()
            .next()
            .unwrap_or_else(|| quote!(__etf::__private::PrivateCow::Borrowed("term"))),
        Body::Tuple { tag } => {
            let mut fmt = String::from("{{");
            let mut parts = Vec::new();
            if let Some(t) = tag {
                fmt.push_str(&t.replace('{', "{{").replace('}', "}}"));
                if !shapes.is_empty() {
                    fmt.push_str(", ");
                }
            }
            for (i, s) in shapes.iter().enumerate() {
                if i > 0 {
                    fmt.push_str(", ");
                }
                fmt.push_str("{}");
                parts.push(s.clone());
            }
            fmt.push_str("}}");
            quote!(__etf::__private::PrivateCow::Owned(
                ::std::format!(#fmt, #(#parts),*)
            ))
        }
        Body::Map { .. } | Body::Proplist => {
            let (open, close, arrow) = match &shape.body {
                Body::Proplist => ("[", "]", None),
                _ => ("#{{", "}}", Some(" => ")),
            };
            let mut fmt = String::new();
            let (tag, module) = match &shape.body {
                Body::Map { tag, module } => (tag.clone(), module.clone()),
                _ => (None, None),
            };
            if let Some(t) = &tag {
                fmt.push_str("{{");
                fmt.push_str(&t.replace('{', "{{").replace('}', "}}"));
                fmt.push_str(", ");
            }
            fmt.push_str(open);
            let mut first = true;
            if let Some(m) = &module {
                fmt.push_str(&format!("__struct__ => '{m}'"));
                first = false;
            }
            for f in &live {
                if !first {
                    fmt.push_str(", ");
                }
                first = false;
                match arrow {
                    Some(a) => {
                        fmt.push_str(&f.key);
                        fmt.push_str(a);
                        fmt.push_str("{}");
                    }
                    None => {
                        fmt.push_str("{{");
                        fmt.push_str(&f.key);
                        fmt.push_str(", {}}}");
                    }
                }
            }
            fmt.push_str(close);
            if tag.is_some() {
                fmt.push_str("}}");
            }
            quote!(__etf::__private::PrivateCow::Owned(
                ::std::format!(#fmt, #(#shapes),*)
            ))
        }
    }
}

// ---------------------------------------------------------------- ToTerm / Encode

/// The term for a shape, with each field's value reachable as `access(f)`.
fn gen_to_term(shape: &Shape, access: &dyn Fn(&Field) -> TokenStream) -> TokenStream {
    let live: Vec<&Field> = shape.live().collect();
    match &shape.body {
        Body::Atom(name) => {
            let a = atom_expr(name);
            quote!(__etf::Term::Atom(#a))
        }
        Body::Transparent => {
            let f = live[0];
            field_to_term(f, &access(f))
        }
        Body::Tuple { tag } => {
            let tag = tag.iter().map(|t| {
                let a = atom_expr(t);
                quote!(__etf::Term::Atom(#a))
            });
            let vals = live.iter().map(|f| field_to_term(f, &access(f)));
            quote!(__etf::Term::Tuple(::std::vec![#(#tag,)* #(#vals),*]))
        }
        Body::Map { tag, module } => {
            let n = live.len() + module.is_some() as usize;
            let module_pair = module.iter().map(|m| {
                let k = atom_expr("__struct__");
                let v = atom_expr(m);
                quote!((__etf::Term::Atom(#k), __etf::Term::Atom(#v)))
            });
            let pairs = live.iter().map(|f| {
                let k = atom_expr(&f.key);
                let v = field_to_term(f, &access(f));
                quote!((__etf::Term::Atom(#k), #v))
            });
            let map = quote! {{
                let mut __pairs = ::std::vec::Vec::with_capacity(#n);
                #(__pairs.push(#module_pair);)*
                #(__pairs.push(#pairs);)*
                __etf::Term::Map(__etf::__private::map_from_unique(__pairs))
            }};
            match tag {
                Some(t) => {
                    let a = atom_expr(t);
                    quote!(__etf::Term::Tuple(::std::vec![__etf::Term::Atom(#a), #map]))
                }
                None => map,
            }
        }
        Body::Proplist => {
            let items = live.iter().map(|f| {
                let k = atom_expr(&f.key);
                let v = field_to_term(f, &access(f));
                quote!(__etf::Term::Tuple(::std::vec![__etf::Term::Atom(#k), #v]))
            });
            quote!(__etf::Term::List(::std::vec![#(#items),*]))
        }
    }
}

fn gen_encode(shape: &Shape, access: &dyn Fn(&Field) -> TokenStream) -> TokenStream {
    let live: Vec<&Field> = shape.live().collect();
    match &shape.body {
        Body::Atom(name) => write_atom(name),
        Body::Transparent => field_encode(live[0], &access(live[0])),
        Body::Tuple { tag } => {
            let n = live.len() + tag.is_some() as usize;
            let tag = tag.iter().map(|t| write_atom(t));
            let vals = live.iter().map(|f| field_encode(f, &access(f)));
            quote! {
                __enc.write_tuple_header(#n);
                #(#tag)*
                #(#vals)*
            }
        }
        Body::Map { tag, module } => {
            let n = live.len() + module.is_some() as usize;
            let head = tag.iter().map(|t| {
                let t = write_atom(t);
                quote! {
                    __enc.write_tuple_header(2);
                    #t
                }
            });
            let module = module.iter().map(|m| {
                let k = write_atom("__struct__");
                let m = write_atom(m);
                quote! { #k #m }
            });
            let vals = live.iter().map(|f| {
                let k = write_atom(&f.key);
                let v = field_encode(f, &access(f));
                quote! { #k #v }
            });
            quote! {
                #(#head)*
                __enc.write_map_header(#n);
                #(#module)*
                #(#vals)*
            }
        }
        Body::Proplist => {
            let n = live.len();
            let vals = live.iter().map(|f| {
                let k = write_atom(&f.key);
                let v = field_encode(f, &access(f));
                quote! { __enc.write_tuple_header(2); #k #v }
            });
            quote! {
                __enc.write_list_header(#n);
                #(#vals)*
                if #n > 0 { __enc.write_nil(); }
            }
        }
    }
}

// ---------------------------------------------------------------- FromTerm

/// An expression of type `Result<Self, ConvertError>` reading the body from
/// the term `__t` (for enum variants: the payload after the tag has matched,
/// with the tuple's elements in `__items`).
fn gen_from_term(shape: &Shape, shape_fn: &TokenStream) -> TokenStream {
    let live: Vec<&Field> = shape.live().collect();
    let build = construct(shape);
    let within = quote!(|__e: __etf::ConvertError| __e.within(#shape_fn, __t));
    let mismatch = quote!(__etf::ConvertError::new(#shape_fn, __t));
    match &shape.body {
        Body::Atom(name) => quote! {
            match __t {
                __etf::Term::Atom(__a) if __a.as_str() == #name => ::core::result::Result::Ok(#build),
                _ => ::core::result::Result::Err(#mismatch),
            }
        },
        Body::Transparent => {
            let f = live[0];
            let b = &f.binding;
            let conv = field_from_term(f, &quote!(__t));
            quote! {{
                let #b = #conv?;
                ::core::result::Result::Ok(#build)
            }}
        }
        Body::Tuple { tag } => {
            let off = tag.is_some() as usize;
            let n = live.len() + off;
            let tag_check = match tag {
                Some(t) => quote!(&& __items[0].is_atom(#t)),
                None => quote!(),
            };
            let reads = live.iter().enumerate().map(|(i, f)| {
                let b = &f.binding;
                let idx = i + off;
                let conv = field_from_term(f, &quote!(&__items[#idx]));
                quote!(let #b = #conv.map_err(#within)?;)
            });
            quote! {
                match __t {
                    __etf::Term::Tuple(__items) if __items.len() == #n #tag_check => {
                        #(#reads)*
                        ::core::result::Result::Ok(#build)
                    }
                    _ => ::core::result::Result::Err(#mismatch),
                }
            }
        }
        Body::Map { tag, module } => {
            let reads = live.iter().map(|f| {
                let b = &f.binding;
                let k = &f.key;
                let conv = field_from_term(f, &quote!(__v));
                let missing = if has_default(f) {
                    default_value(f)
                } else {
                    quote!(return ::core::result::Result::Err(#mismatch))
                };
                quote! {
                    let #b = match __etf::__private::map_lookup(__m, #k) {
                        ::core::option::Option::Some(__v) => #conv.map_err(#within)?,
                        ::core::option::Option::None => #missing,
                    };
                }
            });
            let module_check = match module {
                Some(m) => quote! {
                    if let ::core::option::Option::Some(__s) = __etf::__private::map_lookup(__m, "__struct__") {
                        if !__s.is_atom(#m) {
                            return ::core::result::Result::Err(#mismatch);
                        }
                    }
                },
                None => quote!(),
            };
            let get_map = match tag {
                Some(t) => quote! {
                    let __m = match __t {
                        __etf::Term::Tuple(__items) if __items.len() == 2 && __items[0].is_atom(#t) => match &__items[1] {
                            __etf::Term::Map(__m) => __m,
                            _ => return ::core::result::Result::Err(#mismatch),
                        },
                        _ => return ::core::result::Result::Err(#mismatch),
                    };
                },
                None => quote! {
                    let __m = match __t {
                        __etf::Term::Map(__m) => __m,
                        _ => return ::core::result::Result::Err(#mismatch),
                    };
                },
            };
            quote! {
                (|| {
                    #get_map
                    #module_check
                    #(#reads)*
                    ::core::result::Result::Ok(#build)
                })()
            }
        }
        Body::Proplist => {
            let reads = live.iter().map(|f| {
                let b = &f.binding;
                let k = &f.key;
                let conv = field_from_term(f, &quote!(__v));
                let missing = if has_default(f) {
                    default_value(f)
                } else {
                    quote!(return ::core::result::Result::Err(#mismatch))
                };
                quote! {
                    let #b = match __etf::__private::proplist_lookup(__items, #k) {
                        ::core::option::Option::Some(__v) => #conv.map_err(#within)?,
                        ::core::option::Option::None => #missing,
                    };
                }
            });
            quote! {
                (|| {
                    let __items = match __t {
                        __etf::Term::List(__items) => __items,
                        _ => return ::core::result::Result::Err(#mismatch),
                    };
                    #(#reads)*
                    ::core::result::Result::Ok(#build)
                })()
            }
        }
    }
}

// ---------------------------------------------------------------- Decode

/// Statements reading keyed fields (map or proplist values) after the
/// header, leaving bindings `__f0`, … set; `__n` is the number of entries.
fn gen_decode_keyed(
    shape: &Shape,
    shape_fn: &TokenStream,
    proplist: bool,
    module: Option<&str>,
) -> TokenStream {
    let live: Vec<&Field> = shape.live().collect();
    let slots = live.iter().map(|f| {
        let b = &f.binding;
        let ty = &f.ty;
        match &f.attrs.with {
            Some(_) => quote!(let mut #b = ::core::option::Option::None;),
            None => quote!(let mut #b: ::core::option::Option<#ty> = ::core::option::Option::None;),
        }
    });
    let arms = live.iter().map(|f| {
        let b = &f.binding;
        let k = &f.key;
        let dec = field_decode(f);
        quote! {
            ::core::option::Option::Some(#k) => {
                if #b.is_some() {
                    return ::core::result::Result::Err(__etf::__private::duplicate_key(__dec, #k, __start));
                }
                #b = ::core::option::Option::Some(#dec?);
            }
        }
    });
    let module_arm = module.map(|m| {
        quote! {
            ::core::option::Option::Some("__struct__") => {
                let __at = __dec.position();
                if __dec.read_atom_name()? != #m {
                    return ::core::result::Result::Err(__dec.mismatch(::std::format!("'{}'", #m), __at));
                }
            }
        }
    });
    let finals = live.iter().map(|f| {
        let b = &f.binding;
        let missing = if has_default(f) {
            default_value(f)
        } else {
            quote!(return ::core::result::Result::Err(__dec.mismatch(#shape_fn, __start)))
        };
        quote! {
            let #b = match #b {
                ::core::option::Option::Some(__v) => __v,
                ::core::option::Option::None => #missing,
            };
        }
    });
    let read_entry = if proplist {
        quote! {
            let __at = __dec.position();
            if __dec.read_tuple_header()? != 2 {
                return ::core::result::Result::Err(__dec.mismatch("{atom, term}", __at));
            }
        }
    } else {
        quote!()
    };
    quote! {
        #(#slots)*
        for _ in 0..__n {
            #read_entry
            let __key = __etf::__private::read_map_key(__dec)?;
            match __key.as_deref() {
                #(#arms)*
                #module_arm
                _ => __dec.skip_term()?,
            }
        }
        #(#finals)*
    }
}

/// An expression of type `Result<Self, DecodeError>` reading the whole body
/// (or, for enum variants with `after_tag`, what follows the tag; the tuple
/// arity is then already checked).
fn gen_decode(shape: &Shape, shape_fn: &TokenStream, after_tag: bool) -> TokenStream {
    let live: Vec<&Field> = shape.live().collect();
    let build = construct(shape);
    let ok = quote!(::core::result::Result::Ok(#build));
    match &shape.body {
        Body::Atom(name) => {
            if after_tag {
                quote!(#ok)
            } else {
                quote! {{
                    let __at = __dec.position();
                    match __dec.read_atom_name() {
                        ::core::result::Result::Ok(__name) if __name == #name => #ok,
                        ::core::result::Result::Ok(_) => ::core::result::Result::Err(__dec.mismatch(#shape_fn, __at)),
                        ::core::result::Result::Err(__e) if __e.is_mismatch() =>
                            ::core::result::Result::Err(__dec.mismatch(#shape_fn, __at)),
                        ::core::result::Result::Err(__e) => ::core::result::Result::Err(__e),
                    }
                }}
            }
        }
        Body::Transparent => {
            let f = live[0];
            let b = &f.binding;
            let d = field_decode(f);
            quote! {{
                let #b = #d?;
                #ok
            }}
        }
        Body::Tuple { tag } => {
            let n = live.len() + tag.is_some() as usize;
            let reads = live.iter().map(|f| {
                let b = &f.binding;
                let d = field_decode(f);
                quote!(let #b = #d?;)
            });
            let head = if after_tag {
                quote!()
            } else {
                let tag_check = tag.as_ref().map(|t| {
                    quote! {
                        if __dec.read_atom_name()? != #t {
                            return ::core::result::Result::Err(__dec.mismatch(#shape_fn, __start));
                        }
                    }
                });
                quote! {
                    if __dec.read_tuple_header()? != #n {
                        return ::core::result::Result::Err(__dec.mismatch(#shape_fn, __start));
                    }
                    #tag_check
                }
            };
            quote! {
                (|| {
                    #head
                    #(#reads)*
                    #ok
                })()
            }
        }
        Body::Map { tag, module } => {
            let keyed = gen_decode_keyed(shape, shape_fn, false, module.as_deref());
            let head = if after_tag || tag.is_none() {
                quote!()
            } else {
                let t = tag.as_ref().map(String::as_str).unwrap_or("");
                quote! {
                    if __dec.read_tuple_header()? != 2 || __dec.read_atom_name()? != #t {
                        return ::core::result::Result::Err(__dec.mismatch(#shape_fn, __start));
                    }
                }
            };
            quote! {
                (|| {
                    #head
                    let __n = __dec.read_map_header()?;
                    #keyed
                    #ok
                })()
            }
        }
        Body::Proplist => {
            let keyed = gen_decode_keyed(shape, shape_fn, true, None);
            quote! {
                (|| {
                    // A proplist is a list of {Key, Value}; read it as a
                    // sequence of LIST_EXT segments ending in [].
                    let mut __n = match __dec.read_list()? {
                        __etf::ListHeader::Nil => 0,
                        __etf::ListHeader::Cons(__n) => __n,
                        __etf::ListHeader::Bytes(_) => {
                            return ::core::result::Result::Err(__dec.mismatch(#shape_fn, __start));
                        }
                    };
                    let _ = &mut __n;
                    #keyed
                    if __n > 0 {
                        let __at = __dec.position();
                        match __dec.read_list()? {
                            __etf::ListHeader::Nil => {}
                            _ => return ::core::result::Result::Err(__dec.mismatch("[]", __at)),
                        }
                    }
                    #ok
                })()
            }
        }
    }
}

// ---------------------------------------------------------------- expand

/// Where the term traits live for the crate being compiled: `::ergo_etf`
/// inside the `ergo-etf` package (its library declares
/// `extern crate self as ergo_etf`), `::ergo::etf` everywhere else (users
/// depend on `ergo`; its library declares `extern crate self as ergo`).
/// `#[term(crate = "...")]` overrides it.
fn default_crate_path() -> TokenStream {
    match std::env::var("CARGO_PKG_NAME").as_deref() {
        Ok("ergo-etf") => quote!(::ergo_etf),
        _ => quote!(::ergo::etf),
    }
}

fn add_bounds(generics: &syn::Generics, bound: TokenStream) -> syn::Generics {
    let mut g = generics.clone();
    for p in g.type_params_mut() {
        p.bounds
            .push(syn::parse2(bound.clone()).expect("bound parses"));
    }
    g
}

pub(crate) fn expand(input: DeriveInput) -> Result<TokenStream, syn::Error> {
    let mut ctx = Ctxt::default();
    let cattrs = container_attrs(&mut ctx, &input.attrs);
    let ident = &input.ident;
    let type_name = ident.to_string();
    let default_name = Case::Snake.apply(&type_name);
    let repr = cattrs.repr.as_ref().map(|(r, _)| r.clone());
    let repr_span = cattrs
        .repr
        .as_ref()
        .map(|(_, s)| *s)
        .unwrap_or(Span::call_site());

    let mut shapes: Vec<(Shape, Option<Ident>)> = Vec::new();
    let is_enum = matches!(input.data, Data::Enum(_));

    match &input.data {
        Data::Union(u) => {
            ctx.error(u.union_token, "`#[derive(Term)]` does not support unions");
        }
        Data::Struct(s) => {
            let name = cattrs
                .rename
                .as_ref()
                .map(LitStr::value)
                .unwrap_or_else(|| default_name.clone());
            if let Some(lit) = &cattrs.rename {
                check_atom_len(&mut ctx, lit.span(), &name);
            }
            let positional = matches!(
                (&s.fields, &repr),
                (Fields::Unnamed(_), _) | (_, Some(Repr::Record | Repr::Tuple))
            );
            let fields = lower_fields(&mut ctx, &s.fields, cattrs.rename_all, positional);
            let live = fields.iter().filter(|f| !f.attrs.skip).count();
            let body = match (&s.fields, &repr) {
                (Fields::Unit, None) => Body::Atom(name),
                (Fields::Unit, Some(r)) => {
                    ctx.error(
                        repr_span,
                        format!(
                            "a unit struct is an atom; `{}` does not apply to it",
                            r.name()
                        ),
                    );
                    Body::Atom(name)
                }
                (_, Some(Repr::Transparent)) => {
                    if live != 1 {
                        ctx.error(
                            repr_span,
                            format!("`transparent` needs exactly one field that is not skipped; this type has {live}"),
                        );
                    }
                    Body::Transparent
                }
                (Fields::Unnamed(_), None | Some(Repr::Tuple)) => Body::Tuple { tag: None },
                (Fields::Unnamed(_), Some(Repr::Record)) => Body::Tuple { tag: Some(name) },
                (Fields::Unnamed(_), Some(r)) => {
                    ctx.error(
                        repr_span,
                        format!(
                            "`{}` needs named fields; a tuple struct is a tuple (or a record with `record`)",
                            r.name()
                        ),
                    );
                    Body::Tuple { tag: None }
                }
                (Fields::Named(_), None | Some(Repr::Map)) => Body::Map {
                    tag: None,
                    module: None,
                },
                (Fields::Named(_), Some(Repr::Record)) => Body::Tuple { tag: Some(name) },
                (Fields::Named(_), Some(Repr::Tuple)) => Body::Tuple { tag: None },
                (Fields::Named(_), Some(Repr::Proplist)) => Body::Proplist,
                (Fields::Named(_), Some(Repr::ElixirStruct(m))) => Body::Map {
                    tag: None,
                    module: Some(m.clone()),
                },
            };
            let ctor = match &s.fields {
                Fields::Named(_) => Ctor::Named(quote!(Self)),
                Fields::Unnamed(_) => Ctor::Unnamed(quote!(Self)),
                Fields::Unit => Ctor::Unit(quote!(Self)),
            };
            shapes.push((Shape { body, fields, ctor }, None));
        }
        Data::Enum(e) => {
            if let Some(r) = &repr
                && *r != Repr::Record
            {
                ctx.error(
                    repr_span,
                    format!(
                        "`{}` applies to structs; on an enum only `record` (struct variants as records) does",
                        r.name()
                    ),
                );
            }
            if let Some(lit) = &cattrs.rename {
                ctx.error(
                    lit,
                    "`rename` on an enum has no effect: name its variants instead",
                );
            }
            if e.variants.is_empty() {
                ctx.error(ident, "an enum with no variants has no term to convert");
            }
            let mut tags_seen: Vec<(String, usize)> = Vec::new();
            for v in &e.variants {
                let vattrs = variant_attrs(&mut ctx, &v.attrs);
                let tag = match &vattrs.rename {
                    Some(lit) => lit.value(),
                    None => cattrs
                        .rename_all
                        .unwrap_or(Case::Snake)
                        .apply(&v.ident.to_string()),
                };
                check_atom_len(&mut ctx, v.span(), &tag);
                let record = vattrs.record.is_some() || repr == Some(Repr::Record);
                if let (Some(span), Fields::Unnamed(_) | Fields::Unit) = (vattrs.record, &v.fields)
                {
                    ctx.error(span, "`record` applies to struct variants; tuple variants are already `{tag, ...}`");
                }
                let positional = !matches!(v.fields, Fields::Named(_)) || record;
                let fields = lower_fields(&mut ctx, &v.fields, vattrs.rename_all, positional);
                let live = fields.iter().filter(|f| !f.attrs.skip).count();
                let arity = match (&v.fields, record) {
                    (Fields::Unit, _) => 0,
                    (Fields::Named(_), false) => 2,
                    _ => live + 1,
                };
                if let Some((_, _)) = tags_seen.iter().find(|(t, a)| *t == tag && *a == arity) {
                    ctx.error(
                        vattrs.rename.as_ref().map_or(v.ident.span(), LitStr::span),
                        format!(
                            "two variants have the same Erlang form (tag `{tag}`, {arity} elements)"
                        ),
                    );
                }
                tags_seen.push((tag.clone(), arity));
                let body = match (&v.fields, record) {
                    (Fields::Unit, _) => Body::Atom(tag),
                    (Fields::Unnamed(_), _) | (Fields::Named(_), true) => {
                        Body::Tuple { tag: Some(tag) }
                    }
                    (Fields::Named(_), false) => Body::Map {
                        tag: Some(tag),
                        module: None,
                    },
                };
                let vid = &v.ident;
                let ctor = match &v.fields {
                    Fields::Named(_) => Ctor::Named(quote!(Self::#vid)),
                    Fields::Unnamed(_) => Ctor::Unnamed(quote!(Self::#vid)),
                    Fields::Unit => Ctor::Unit(quote!(Self::#vid)),
                };
                shapes.push((Shape { body, fields, ctor }, Some(vid.clone())));
            }
        }
    }
    ctx.finish()?;

    let krate = match &cattrs.krate {
        Some(p) => quote!(#p),
        None => default_crate_path(),
    };
    let g_to = add_bounds(&input.generics, quote!(__etf::ToTerm));
    let g_enc = add_bounds(&input.generics, quote!(__etf::Encode));
    let g_from = add_bounds(&input.generics, quote!(__etf::FromTerm));
    let g_dec = add_bounds(&input.generics, quote!(__etf::Decode));
    let (_, ty_generics, _) = input.generics.split_for_impl();
    let (i_to, _, w_to) = g_to.split_for_impl();
    let (i_enc, _, w_enc) = g_enc.split_for_impl();
    let (i_from, _, w_from) = g_from.split_for_impl();
    let (i_dec, _, w_dec) = g_dec.split_for_impl();

    let body_tokens = if is_enum {
        gen_enum(&shapes)
    } else {
        gen_struct(&shapes[0].0)
    };
    let EnumOrStruct {
        to_term,
        encode,
        from_term,
        shape,
        decode,
    } = body_tokens;

    Ok(quote! {
        #[allow(non_upper_case_globals, unused_variables, unused_mut, clippy::all, clippy::pedantic)]
        const _: () = {
            use #krate as __etf;

            impl #i_to __etf::ToTerm for #ident #ty_generics #w_to {
                fn to_term(&self) -> __etf::Term {
                    #to_term
                }
            }

            impl #i_enc __etf::Encode for #ident #ty_generics #w_enc {
                fn encode(&self, __enc: &mut __etf::Encoder<'_>) {
                    #encode
                }
            }

            impl #i_from __etf::FromTerm for #ident #ty_generics #w_from {
                fn from_term(__t: &__etf::Term) -> ::core::result::Result<Self, __etf::ConvertError> {
                    #from_term
                }
                fn shape() -> __etf::__private::PrivateCow<'static, str> {
                    __etf::__private::guard_shape(
                        ::core::any::type_name::<Self>(),
                        #type_name,
                        || #shape,
                    )
                }
            }

            impl #i_dec __etf::Decode for #ident #ty_generics #w_dec {
                fn decode(__dec: &mut __etf::Decoder<'_>) -> ::core::result::Result<Self, __etf::DecodeError> {
                    __dec.nested(|__dec| { #decode })
                }
            }
        };
    })
}

struct EnumOrStruct {
    to_term: TokenStream,
    encode: TokenStream,
    from_term: TokenStream,
    shape: TokenStream,
    decode: TokenStream,
}

fn gen_struct(shape: &Shape) -> EnumOrStruct {
    let self_access = |f: &Field| {
        let m = &f.member;
        quote!(&self.#m)
    };
    let shape_fn = quote!(<Self as __etf::FromTerm>::shape());
    let from_term = gen_from_term(shape, &shape_fn);
    let decode = gen_decode(shape, &shape_fn, false);
    EnumOrStruct {
        to_term: gen_to_term(shape, &self_access),
        encode: gen_encode(shape, &self_access),
        from_term,
        shape: shape_expr(shape),
        decode: quote! {
            let __start = __dec.position();
            let __r: ::core::result::Result<Self, __etf::DecodeError> = #decode;
            __r.map_err(|__e| __etf::mismatch_within(__e, __dec, __start, <Self as __etf::FromTerm>::shape))
        },
    }
}

/// A pattern binding a variant's fields to `__f0`, `__f1`, ….
fn variant_pattern(shape: &Shape) -> TokenStream {
    let bindings = shape.fields.iter().map(|f| {
        let b = &f.binding;
        if f.attrs.skip { quote!(_) } else { quote!(#b) }
    });
    match &shape.ctor {
        Ctor::Named(path) => {
            let members = shape.fields.iter().map(|f| &f.member);
            quote!(#path { #(#members: #bindings),* })
        }
        Ctor::Unnamed(path) => quote!(#path ( #(#bindings),* )),
        Ctor::Unit(path) => quote!(#path),
    }
}

fn gen_enum(variants: &[(Shape, Option<Ident>)]) -> EnumOrStruct {
    let binding_access = |f: &Field| {
        let b = &f.binding;
        quote!(#b)
    };
    let mut to_arms = Vec::new();
    let mut enc_arms = Vec::new();
    let mut from_atom_arms = Vec::new();
    let mut from_tuple_arms = Vec::new();
    let mut dec_atom_arms = Vec::new();
    let mut dec_tuple_arms = Vec::new();
    let mut variant_shapes = Vec::new();
    for (shape, _) in variants {
        let pat = variant_pattern(shape);
        let to = gen_to_term(shape, &binding_access);
        let enc = gen_encode(shape, &binding_access);
        to_arms.push(quote!(#pat => #to,));
        enc_arms.push(quote!(#pat => { #enc }));
        let vshape = shape_expr(shape);
        variant_shapes.push(vshape.clone());
        let vshape_fn = quote!((|| -> __etf::__private::PrivateCow<'static, str> { #vshape })());
        match &shape.body {
            Body::Atom(name) => {
                let build = construct(shape);
                from_atom_arms.push(quote!(#name => ::core::result::Result::Ok(#build),));
                dec_atom_arms.push(quote!(#name => ::core::result::Result::Ok(#build),));
            }
            Body::Tuple { tag: Some(tag) } | Body::Map { tag: Some(tag), .. } => {
                let arity = match &shape.body {
                    Body::Map { .. } => 2,
                    _ => shape.live().count() + 1,
                };
                let from = gen_from_term(shape, &vshape_fn);
                from_tuple_arms.push(quote!((#tag, #arity) => #from,));
                let payload = gen_decode(shape, &vshape_fn, true);
                dec_tuple_arms.push(quote! {
                    (#tag, #arity) => {
                        let __r: ::core::result::Result<Self, __etf::DecodeError> = #payload;
                        __r.map_err(|__e| __etf::mismatch_within(__e, __dec, __start, || #vshape_fn))
                    }
                });
            }
            _ => {}
        }
    }
    let all_shape = quote! {{
        let __parts: ::std::vec::Vec<__etf::__private::PrivateCow<'static, str>> = ::std::vec![#(#variant_shapes),*];
        __etf::__private::PrivateCow::Owned(__parts.join(" | "))
    }};
    EnumOrStruct {
        to_term: quote!(match self { #(#to_arms)* }),
        encode: quote!(match self { #(#enc_arms)* }),
        from_term: quote! {
            let __mismatch = || __etf::ConvertError::new(<Self as __etf::FromTerm>::shape(), __t);
            match __t {
                __etf::Term::Atom(__a) => match __a.as_str() {
                    #(#from_atom_arms)*
                    _ => ::core::result::Result::Err(__mismatch()),
                },
                __etf::Term::Tuple(__items) if !__items.is_empty() => match (&__items[0], __items.len()) {
                    (__etf::Term::Atom(__tag), __arity) => match (__tag.as_str(), __arity) {
                        #(#from_tuple_arms)*
                        _ => ::core::result::Result::Err(__mismatch()),
                    },
                    _ => ::core::result::Result::Err(__mismatch()),
                },
                _ => ::core::result::Result::Err(__mismatch()),
            }
        },
        shape: all_shape,
        decode: quote! {
            let __start = __dec.position();
            let __mismatch = |__dec: &__etf::Decoder<'_>| __dec.mismatch(<Self as __etf::FromTerm>::shape(), __start);
            if __etf::__private::next_is_atom(__dec)? {
                let __name = __dec.read_atom_name()?;
                return match &*__name {
                    #(#dec_atom_arms)*
                    _ => ::core::result::Result::Err(__mismatch(__dec)),
                };
            }
            if __etf::__private::next_is_tuple(__dec)? {
                let __arity = __dec.read_tuple_header()?;
                if __arity == 0 || !__etf::__private::next_is_atom(__dec)? {
                    return ::core::result::Result::Err(__mismatch(__dec));
                }
                let __name = __dec.read_atom_name()?;
                return match (&*__name, __arity) {
                    #(#dec_tuple_arms)*
                    _ => ::core::result::Result::Err(__mismatch(__dec)),
                };
            }
            ::core::result::Result::Err(__mismatch(__dec))
        },
    }
}
