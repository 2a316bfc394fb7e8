//! `Decode`: reading a struct or variant straight from bytes, with no
//! `Term` in between.

use proc_macro2::TokenStream;
use quote::quote;

use super::{construct, default_value, field_decode, has_default};
use crate::term::lower::{Body, Shape};
use crate::term::model::Field;

/// Statements reading keyed fields (map or proplist values) after the
/// header, leaving bindings `__f0`, … set; `__n` is the number of entries.
fn gen_decode_keyed(
    shape: &Shape<'_>,
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
pub(super) fn gen_decode(
    shape: &Shape<'_>,
    shape_fn: &TokenStream,
    after_tag: bool,
) -> TokenStream {
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
