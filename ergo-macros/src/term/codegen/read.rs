//! `FromTerm`: reading a struct or variant back from a `Term`.

use proc_macro2::TokenStream;
use quote::quote;

use super::{construct, default_value, field_from_term, has_default};
use crate::term::lower::{Body, Shape};
use crate::term::model::Field;

/// An expression of type `Result<Self, ConvertError>` reading the body from
/// the term `__t` (for enum variants: the payload after the tag has matched,
/// with the tuple's elements in `__items`).
pub(super) fn gen_from_term(shape: &Shape<'_>, shape_fn: &TokenStream) -> TokenStream {
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
            let reads = keyed_reads(&live, |k| quote!(map_lookup(__m, #k)), &mismatch, &within);
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
            let reads = keyed_reads(
                &live,
                |k| quote!(proplist_lookup(__items, #k)),
                &mismatch,
                &within,
            );
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

/// The reads of a keyed shape's fields (a map's or a proplist's): each
/// field's key looked up with `lookup` (`__etf::__private::` prefixed),
/// converted, or its default (or the mismatch) when the key is missing.
fn keyed_reads(
    live: &[&Field],
    lookup: impl Fn(&TokenStream) -> TokenStream,
    mismatch: &TokenStream,
    within: &TokenStream,
) -> Vec<TokenStream> {
    live.iter()
        .map(|f| {
            let b = &f.binding;
            let k = &f.key;
            let find = lookup(&quote!(#k));
            let conv = field_from_term(f, &quote!(__v));
            let missing = if has_default(f) {
                default_value(f)
            } else {
                quote!(return ::core::result::Result::Err(#mismatch))
            };
            quote! {
                let #b = match __etf::__private::#find {
                    ::core::option::Option::Some(__v) => #conv.map_err(#within)?,
                    ::core::option::Option::None => #missing,
                };
            }
        })
        .collect()
}
