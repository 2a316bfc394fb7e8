//! The writing traits: `ToTerm` (to a `Term`) and `Encode` (straight to
//! bytes), each from the shape of a struct or variant.

use proc_macro2::TokenStream;
use quote::quote;

use super::{atom_expr, field_encode, field_to_term, write_atom};
use crate::term::lower::{Body, Shape};
use crate::term::model::Field;

/// The term for a shape, with each field's value reachable as `access(f)`.
pub(super) fn gen_to_term(
    shape: &Shape<'_>,
    access: &dyn Fn(&Field) -> TokenStream,
) -> TokenStream {
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

pub(super) fn gen_encode(shape: &Shape<'_>, access: &dyn Fn(&Field) -> TokenStream) -> TokenStream {
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
