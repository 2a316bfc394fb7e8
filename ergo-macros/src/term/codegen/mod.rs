//! Generates the four traits of `#[derive(Term)]` from the shapes
//! [lowered](super::lower) from a checked model.
//!
//! [`derive()`] writes the impls; each trait's body comes from one file:
//! [`write`](mod@write) (`ToTerm`, `Encode`), [`read`] (`FromTerm`),
//! [`decode`] (`Decode`), and [`shape`] describes the shape for error messages. The
//! helpers here are what they share: how a field is converted, how an atom
//! is written, how the value is built back. All generated code names the
//! term crate as `__etf`, a `use` of the crate path inside the impls' block.

mod decode;
mod read;
mod shape;
mod write;

use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::Ident;

use super::lower::{self, Body, Ctor, Shape};
use super::model::{Container, Data, Field, FieldDefault};
use decode::gen_decode;
use read::gen_from_term;
use shape::shape_expr;
use write::{gen_encode, gen_to_term};

/// The four impls for a type that passed its checks, inside one
/// `const _: () = { .. };` block.
pub(crate) fn derive(c: &Container) -> TokenStream {
    let ident = &c.ident;
    let type_name = ident.to_string();
    let shapes = lower::shapes(c);
    let krate = c.attrs.krate.tokens_or(default_crate_path());
    let g_to = add_bounds(&c.generics, quote!(__etf::ToTerm));
    let g_enc = add_bounds(&c.generics, quote!(__etf::Encode));
    let g_from = add_bounds(&c.generics, quote!(__etf::FromTerm));
    let g_dec = add_bounds(&c.generics, quote!(__etf::Decode));
    let (_, ty_generics, _) = c.generics.split_for_impl();
    let (i_to, _, w_to) = g_to.split_for_impl();
    let (i_enc, _, w_enc) = g_enc.split_for_impl();
    let (i_from, _, w_from) = g_from.split_for_impl();
    let (i_dec, _, w_dec) = g_dec.split_for_impl();

    let body_tokens = if matches!(c.data, Data::Enum(_)) {
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

    // A type without type parameters is `Decode` whenever it is
    // `FromTerm`, so lists of it are read straight from bytes.
    let decode_list = if c.generics.type_params().next().is_none() {
        quote! {
            fn decode_list(
                __dec: &mut __etf::Decoder<'_>,
            ) -> ::core::option::Option<::core::result::Result<::std::vec::Vec<Self>, __etf::DecodeError>> {
                __etf::__private::decode_list_of::<Self>(__dec)
            }
        }
    } else {
        quote!()
    };

    quote! {
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
                #decode_list
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
    }
}

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

struct EnumOrStruct {
    to_term: TokenStream,
    encode: TokenStream,
    from_term: TokenStream,
    shape: TokenStream,
    decode: TokenStream,
}

fn gen_struct(shape: &Shape<'_>) -> EnumOrStruct {
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
fn variant_pattern(shape: &Shape<'_>) -> TokenStream {
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

fn gen_enum(variants: &[(Shape<'_>, Option<Ident>)]) -> EnumOrStruct {
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

// ---------------------------------------------------------------- shared helpers

pub(super) fn atom_expr(name: &str) -> TokenStream {
    quote! {{
        static __ATOM: __etf::__private::OnceLock<__etf::Atom> = __etf::__private::OnceLock::new();
        *__ATOM.get_or_init(|| __etf::Atom::new(#name))
    }}
}

/// `enc.write_atom_prebuilt(..)` for `name`, with both of its encodings as
/// byte-string literals: nothing about the name is worked out at run time.
pub(super) fn write_atom(name: &str) -> TokenStream {
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

pub(super) fn field_to_term(f: &Field, value: &TokenStream) -> TokenStream {
    match &f.attrs.with {
        Some(m) => quote!(#m::to_term(#value)),
        None => quote!(__etf::ToTerm::to_term(#value)),
    }
}

pub(super) fn field_encode(f: &Field, value: &TokenStream) -> TokenStream {
    match &f.attrs.with {
        Some(m) => quote!(#m::encode(#value, __enc);),
        None => quote!(__etf::Encode::encode(#value, __enc);),
    }
}

pub(super) fn field_from_term(f: &Field, term: &TokenStream) -> TokenStream {
    let ty = &f.ty;
    match &f.attrs.with {
        Some(m) => quote!(#m::from_term(#term)),
        None => quote!(<#ty as __etf::FromTerm>::from_term(#term)),
    }
}

pub(super) fn field_decode(f: &Field) -> TokenStream {
    let ty = &f.ty;
    match &f.attrs.with {
        Some(m) => quote!(#m::decode(__dec)),
        None => quote!(<#ty as __etf::Decode>::decode(__dec)),
    }
}

pub(super) fn field_shape(f: &Field) -> TokenStream {
    let ty = &f.ty;
    match &f.attrs.with {
        Some(_) => quote!(__etf::__private::PrivateCow::Borrowed("term")),
        None => quote!(<#ty as __etf::FromTerm>::shape()),
    }
}

pub(super) fn default_value(f: &Field) -> TokenStream {
    match &f.attrs.default {
        FieldDefault::Path(p) => quote!(#p()),
        _ => quote!(::core::default::Default::default()),
    }
}

pub(super) fn has_default(f: &Field) -> bool {
    f.attrs.skip || !matches!(f.attrs.default, FieldDefault::None)
}

/// Builds the value from bindings `__f0`, `__f1`, … (skipped fields get
/// their default).
pub(super) fn construct(shape: &Shape<'_>) -> TokenStream {
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
