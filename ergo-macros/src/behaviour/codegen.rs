//! The generated code `#[gen_server]`, `#[gen_stage]` and `#[connection]`
//! share, from a checked [model](super::model):
//! - [`request_enums`]: `<Type>Call` and `<Type>Cast`, a variant per handler
//!   with the handler's arguments, deriving `Term` (so `add(n)` is
//!   `{add, N}` and `get()` is `get` on the wire);
//! - [`reply_enum`]: `<Type>Reply`, a variant per call, written as the plain
//!   reply value;
//! - [`call_arms`] and [`cast_arms`]: `handle_call`'s and `handle_cast`'s
//!   exhaustive dispatch onto the handlers;
//! - [`init_body`]: the trait's `init`, unpacking the start arguments;
//! - [`client_call`] and [`client_cast`]: the typed client's method per
//!   call and cast, which each macro writes into its own client.
//!
//! Every runtime item is named through the crate path (`::ergo` unless the
//! user gave `crate = "..."`).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Ident, ReturnType, Type};

use super::model::{Block, Handler, Init, Kind, Param};
use super::{last_segment_is, unwrap_named};
use crate::crate_path::CratePath;

/// What every part of the output needs: the names of the generated items,
/// the runtime's paths, and the type's generics.
pub(crate) struct Gen<'a> {
    pub(crate) block: &'a Block,
    /// The macro, as the generated docs name it: `#[gen_server]`.
    pub(crate) attr: &'static str,
    /// The type's name, `Counter`.
    pub(crate) type_name: &'a Ident,
    /// The implementing type as written, `Counter<T>`.
    pub(crate) self_ty: &'a Type,
    pub(crate) init: &'a Init,
    /// The runtime crate, `::ergo`.
    pub(crate) krate: TokenStream,
    /// Its `gen_server` module.
    pub(crate) gs: TokenStream,
    /// The crate path `#[derive(Term)]` is given for the request enums.
    pub(crate) etf_path: syn::LitStr,
    pub(crate) call_enum: Ident,
    pub(crate) reply_enum: Ident,
    pub(crate) cast_enum: Ident,
    pub(crate) calls: Vec<&'a Handler>,
    pub(crate) casts: Vec<&'a Handler>,
    /// The generic arguments each generated enum takes (`<T>`, or nothing).
    pub(crate) call_tg: TokenStream,
    pub(crate) cast_tg: TokenStream,
    pub(crate) reply_tg: TokenStream,
    /// The value each call replies with, in call order.
    pub(crate) reply_types: Vec<Type>,
    /// The trait's `Args`: `()`, the one start argument, or a tuple of them.
    pub(crate) args_ty: Type,
    /// The user's where-clause predicates.
    pub(crate) user_where: Vec<syn::WherePredicate>,
}

impl<'a> Gen<'a> {
    /// The names and types for `block`, which passed its checks, as the
    /// macro `attr` generates them with the runtime at `krate`.
    pub(crate) fn new(block: &'a Block, krate: &CratePath, attr: &'static str) -> Self {
        let type_name = block.type_name.as_ref().expect("checked: a named type");
        let init = block.init.as_ref().expect("checked: init exists");
        let etf_path = krate.etf_lit_or("::ergo::etf");
        let krate = krate.tokens_or(quote!(::ergo));
        let gs = quote!(#krate::gen_server);
        let calls = block.of(Kind::Call);
        let casts = block.of(Kind::Cast);
        let type_params: Vec<Ident> = block
            .item
            .generics
            .type_params()
            .map(|p| p.ident.clone())
            .collect();
        // Each generated enum is generic over the type parameters its fields
        // use, and no others.
        let params_in = |types: Vec<Type>| -> TokenStream {
            let used: Vec<&Ident> = type_params
                .iter()
                .filter(|p| types.iter().any(|t| mentions(t, p)))
                .collect();
            if used.is_empty() {
                quote!()
            } else {
                quote!(<#(#used),*>)
            }
        };
        let arg_types = |hs: &[&Handler]| -> Vec<Type> {
            hs.iter()
                .flat_map(|h| h.params.args().into_iter().map(|a| a.ty.clone()))
                .collect()
        };
        let call_tg = params_in(arg_types(&calls));
        let cast_tg = params_in(arg_types(&casts));
        let reply_types: Vec<Type> = calls.iter().map(|h| reply_value(h)).collect();
        let reply_tg = params_in(reply_types.clone());
        let init_types: Vec<Type> = init
            .params
            .args()
            .into_iter()
            .map(|a| a.ty.clone())
            .collect();
        let args_ty: Type = match init_types.as_slice() {
            [] => syn::parse_quote!(()),
            [t] => t.clone(),
            many => syn::parse_quote!((#(#many,)*)),
        };
        let user_where = block
            .item
            .generics
            .where_clause
            .as_ref()
            .map(|w| w.predicates.iter().cloned().collect())
            .unwrap_or_default();
        Gen {
            block,
            attr,
            type_name,
            self_ty: &block.item.self_ty,
            init,
            krate,
            gs,
            etf_path,
            call_enum: format_ident!("{}Call", type_name),
            reply_enum: format_ident!("{}Reply", type_name),
            cast_enum: format_ident!("{}Cast", type_name),
            calls,
            casts,
            call_tg,
            cast_tg,
            reply_tg,
            reply_types,
            args_ty,
            user_where,
        }
    }
}

/// The `<Type>Call` and `<Type>Cast` enums.
pub(crate) fn request_enums(g: &Gen<'_>) -> (TokenStream, TokenStream) {
    let Gen {
        type_name,
        krate,
        etf_path,
        call_enum,
        cast_enum,
        call_tg,
        cast_tg,
        attr,
        ..
    } = g;
    let vis = quote!(pub);
    let call_variants = g.calls.iter().map(|h| variant_def(h));
    let cast_variants = g.casts.iter().map(|h| variant_def(h));
    let call_enum_doc = format!(" The calls [`{type_name}`] serves (`{attr}`).");
    let cast_enum_doc = format!(" The casts [`{type_name}`] serves (`{attr}`).");
    // An enum with no variants still needs a Term form: give it one that
    // no term matches.
    let empty_call = g.calls.is_empty().then(|| {
        quote! {
            #[doc(hidden)]
            __NoCalls
        }
    });
    let empty_cast = g.casts.is_empty().then(|| {
        quote! {
            #[doc(hidden)]
            __NoCasts
        }
    });
    let calls = quote! {
        #[doc = #call_enum_doc]
        #[derive(#krate::Term)]
        #[term(crate = #etf_path)]
        #vis enum #call_enum #call_tg {
            #(#call_variants,)*
            #empty_call
        }
    };
    let casts = quote! {
        #[doc = #cast_enum_doc]
        #[derive(#krate::Term)]
        #[term(crate = #etf_path)]
        #vis enum #cast_enum #cast_tg {
            #(#cast_variants,)*
            #empty_cast
        }
    };
    (calls, casts)
}

/// A request variant: the handler's docs, its name in PascalCase, its
/// arguments' types.
fn variant_def(h: &Handler) -> TokenStream {
    let v = &h.variant;
    let args = h.params.args();
    let tys = args.iter().map(|a| a.ty);
    let docs = docs_or(h, format!(" The `{}` request.", h.ident));
    if args.is_empty() {
        quote!(#(#docs)* #v)
    } else {
        quote!(#(#docs)* #v(#(#tys),*))
    }
}

/// The `<Type>Reply` enum and its `ToTerm`, which writes the reply value
/// alone.
pub(crate) fn reply_enum(g: &Gen<'_>) -> TokenStream {
    let Gen {
        type_name,
        krate,
        reply_enum,
        reply_tg,
        reply_types,
        ..
    } = g;
    let vis = quote!(pub);
    let reply_variants = g.calls.iter().map(|h| {
        let v = &h.variant;
        let t = reply_value(h);
        let doc = format!(" The reply to `{}`.", h.ident);
        quote!(#[doc = #doc] #v(#t))
    });
    let reply_to_term = g.calls.iter().map(|h| {
        let v = &h.variant;
        quote!(#reply_enum::#v(__v) => #krate::etf::ToTerm::to_term(__v))
    });
    let reply_unit_arm = g
        .calls
        .is_empty()
        .then(|| quote!(_ => #krate::etf::Term::NIL));
    let reply_enum_doc =
        format!(" The replies of [`{type_name}`]'s calls; each writes as its value.");
    quote! {
        #[doc = #reply_enum_doc]
        #vis enum #reply_enum #reply_tg {
            #(#reply_variants,)*
        }

        impl #reply_tg #krate::etf::ToTerm for #reply_enum #reply_tg
        where
            #(#reply_types: #krate::etf::ToTerm,)*
        {
            fn to_term(&self) -> #krate::etf::Term {
                #[allow(unreachable_code)]
                match self {
                    #(#reply_to_term,)*
                    #reply_unit_arm
                }
            }
        }
    }
}

/// `handle_call`'s match arms: each call onto its handler, its result as a
/// `Reply` of the reply enum.
pub(crate) fn call_arms(g: &Gen<'_>) -> TokenStream {
    let Gen {
        krate,
        gs,
        call_enum,
        reply_enum,
        ..
    } = g;
    let arms = g.calls.iter().map(|h| {
        let v = &h.variant;
        let names = arg_bindings(h);
        let pat = if names.is_empty() {
            quote!(#call_enum::#v)
        } else {
            quote!(#call_enum::#v(#(#names),*))
        };
        let args: Vec<TokenStream> = names.iter().map(|n| quote!(#n)).collect();
        let call = invoke(h, &args);
        let explicit = h
            .ret
            .as_ref()
            .is_some_and(|t| unwrap_named(t, "Reply").is_some());
        let body = if explicit {
            quote! {
                match #call {
                    #gs::Reply::Reply(__r) => #gs::Reply::Reply(#reply_enum::#v(__r)),
                    #gs::Reply::NoReply => #gs::Reply::NoReply,
                    #gs::Reply::Stop(__why, __r) => #gs::Reply::Stop(__why, __r.map(#reply_enum::#v)),
                }
            }
        } else {
            quote!(#gs::Reply::Reply(#reply_enum::#v(#call)))
        };
        quote!(#pat => #body,)
    });
    let no_calls_arm = g.calls.is_empty().then(|| {
        quote!(#call_enum::__NoCalls => #gs::Reply::Stop(#krate::Reason::atom("bad_call"), ::core::option::Option::None),)
    });
    quote! {
        #(#arms)*
        #no_calls_arm
    }
}

/// `handle_cast`'s match arms: each cast onto its handler.
pub(crate) fn cast_arms(g: &Gen<'_>) -> TokenStream {
    let Gen {
        krate,
        gs,
        cast_enum,
        ..
    } = g;
    let arms = g.casts.iter().map(|h| {
        let v = &h.variant;
        let names = arg_bindings(h);
        let pat = if names.is_empty() {
            quote!(#cast_enum::#v)
        } else {
            quote!(#cast_enum::#v(#(#names),*))
        };
        let args: Vec<TokenStream> = names.iter().map(|n| quote!(#n)).collect();
        let body = flow_of(g, h, invoke(h, &args));
        quote!(#pat => #body,)
    });
    let no_casts_arm = g.casts.is_empty().then(
        || quote!(#cast_enum::__NoCasts => #gs::Flow::Stop(#krate::Reason::atom("bad_cast")),),
    );
    quote! {
        #(#arms)*
        #no_casts_arm
    }
}

/// The body of the trait's `init`: unpacks `__args` and calls the user's
/// `init` (with `__peer`, the trait's own parameter, where it takes the
/// peer), wrapping what is not a `Result` in `Ok`.
pub(crate) fn init_body(g: &Gen<'_>) -> TokenStream {
    let self_ty = g.self_ty;
    let ident = format_ident!("{}", g.init.ident, span = Span::call_site());
    let init_names = init_bindings(g.init);
    let destructure = match init_names.as_slice() {
        [] => quote!(let () = __args;),
        [n] => quote!(let #n = __args;),
        _ => quote!(let (#(#init_names,)*) = __args;),
    };
    // Each of `init`'s parameters in its place: a start argument's
    // binding, the peer (`__peer`, where the behaviour gives one) or the
    // context (last).
    let mut names = init_names.iter();
    let init_call_args: Vec<TokenStream> = g
        .init
        .params
        .list
        .iter()
        .map(|p| match p {
            Param::Value { .. } => {
                let n = names.next().expect("a binding per start argument");
                quote!(#n)
            }
            Param::Peer { .. } => quote!(__peer),
            Param::Ctx { .. } => quote!(__ctx),
        })
        .collect();
    let init_call = if g.init.is_async {
        quote!(<#self_ty>::#ident(#(#init_call_args),*).await)
    } else {
        quote!(<#self_ty>::#ident(#(#init_call_args),*))
    };
    let init_result = match &g.init.output {
        ReturnType::Type(_, t) if last_segment_is(t, "Result") => quote!(#init_call),
        _ => quote!(::core::result::Result::Ok(#init_call)),
    };
    quote! {
        #destructure
        let _ = &__ctx;
        #init_result
    }
}

/// The start functions' parameters, `init`'s arguments under their own
/// names (`n: i64`), and the expression packing them into the trait's
/// `Args`.
pub(crate) fn start_params(g: &Gen<'_>) -> (Vec<TokenStream>, TokenStream) {
    let init_args = g.init.params.args();
    let init_params: Vec<TokenStream> = init_args
        .iter()
        .map(|a| {
            let n = format_ident!("{}", a.ident, span = Span::call_site());
            let t = a.ty;
            quote!(#n: #t)
        })
        .collect();
    let init_pass: Vec<TokenStream> = init_args
        .iter()
        .map(|a| {
            let n = format_ident!("{}", a.ident, span = Span::call_site());
            quote!(#n)
        })
        .collect();
    let pack = match init_pass.as_slice() {
        [] => quote!(()),
        [one] => quote!(#one),
        many => quote!((#(#many,)*)),
    };
    (init_params, pack)
}

/// How a typed client reaches its process: what differs between
/// `#[gen_server]`'s `<Type>Ref`, `#[gen_stage]`'s methods on
/// `StageRef<Type>` and `#[connection]`'s on `ServerRef<Connection<Type>>`.
pub(crate) struct ClientSend<'s> {
    /// The untyped `ServerRef` calls go through, from `self`: `self.0`.
    pub(crate) server: TokenStream,
    /// What casts are sent with (a `cast(request)` method), from `self`:
    /// `self.0`.
    pub(crate) caster: TokenStream,
    /// The call request as `ServerRef::call_map` takes it, from the
    /// `<Type>Call` value.
    pub(crate) wrap_call: &'s dyn Fn(TokenStream) -> TokenStream,
    /// The pattern of a reply as `call_map`'s mapping sees it, from the
    /// `<Type>Reply` pattern.
    pub(crate) wrap_reply: &'s dyn Fn(TokenStream) -> TokenStream,
    /// Bounds the returned futures carry beyond `'_`: `+ Send` for a
    /// trait's method, whose callers see only what it declares.
    pub(crate) future_bounds: TokenStream,
}

/// One method of a typed client, for the macro to write as an inherent
/// method or a trait's.
pub(crate) struct ClientFn {
    /// Its documentation.
    pub(crate) docs: Vec<syn::Attribute>,
    /// `fn name(&self, ..) -> .. where ..`.
    pub(crate) sig: TokenStream,
    /// The block after the signature.
    pub(crate) body: TokenStream,
}

/// The client's method for a call, and its `_timeout` twin.
pub(crate) fn client_call(g: &Gen<'_>, h: &Handler, send: &ClientSend<'_>) -> [ClientFn; 2] {
    let Gen {
        gs,
        krate,
        call_enum,
        call_tg,
        reply_enum,
        ..
    } = g;
    let ClientSend {
        server,
        future_bounds,
        ..
    } = send;
    let ident = &h.ident;
    let v = &h.variant;
    let args = h.params.args();
    let params: Vec<TokenStream> = args
        .iter()
        .map(|a| {
            let (n, t) = (a.ident, a.ty);
            quote!(#n: #t)
        })
        .collect();
    let names: Vec<&Ident> = args.iter().map(|a| a.ident).collect();
    let req = (send.wrap_call)(if names.is_empty() {
        quote!(#call_enum::#v)
    } else {
        quote!(#call_enum::#v(#(#names),*))
    });
    let reply_pat = (send.wrap_reply)(quote!(#reply_enum::#v(__v)));
    let ret = reply_value(h);
    let docs = docs_or(h, format!(" Calls `{ident}` and waits for the reply."));
    let timeout_ident = format_ident!("{}_timeout", ident);
    let timeout_doc: syn::Attribute = syn::parse_quote! {
        #[doc = concat!(" Like [`Self::", stringify!(#ident), "`], waiting at most `timeout` for the reply.")]
    };
    let bounds = quote! {
        where
            #ret: #krate::etf::FromTerm,
            #call_enum #call_tg: #krate::etf::ToTerm,
    };
    let output = quote! {
        impl ::core::future::Future<Output = ::core::result::Result<#ret, #gs::CallError>> + '_ #future_bounds
    };
    [
        ClientFn {
            docs,
            sig: quote! {
                fn #ident(&self, #(#params),*) -> #output
                #bounds
            },
            body: quote! {
                {
                    self.#timeout_ident(#(#names,)* #gs::DEFAULT_CALL_TIMEOUT)
                }
            },
        },
        ClientFn {
            docs: vec![timeout_doc],
            sig: quote! {
                fn #timeout_ident(&self, #(#params,)* timeout: ::std::time::Duration) -> #output
                #bounds
            },
            body: quote! {
                {
                    #server
                        .call_map(#req, timeout, |__reply| match __reply {
                            #reply_pat => ::core::option::Option::Some(__v),
                            #[allow(unreachable_patterns)]
                            _ => ::core::option::Option::None,
                        })
                }
            },
        },
    ]
}

/// The client's method for a cast.
pub(crate) fn client_cast(g: &Gen<'_>, h: &Handler, send: &ClientSend<'_>) -> ClientFn {
    let Gen {
        krate,
        cast_enum,
        cast_tg,
        ..
    } = g;
    let caster = &send.caster;
    let ident = &h.ident;
    let v = &h.variant;
    let args = h.params.args();
    let params = args.iter().map(|a| {
        let (n, t) = (a.ident, a.ty);
        quote!(#n: #t)
    });
    let names: Vec<&Ident> = args.iter().map(|a| a.ident).collect();
    let req = if names.is_empty() {
        quote!(#cast_enum::#v)
    } else {
        quote!(#cast_enum::#v(#(#names),*))
    };
    ClientFn {
        docs: docs_or(h, format!(" Casts `{ident}`.")),
        sig: quote! {
            fn #ident(&self, #(#params),*)
            where
                #cast_enum #cast_tg: #krate::etf::ToTerm,
        },
        body: quote! {
            {
                #caster.cast(#req);
            }
        },
    }
}

/// The handler's own docs, or `fallback` when it has none.
fn docs_or(h: &Handler, fallback: String) -> Vec<syn::Attribute> {
    if h.docs.is_empty() {
        vec![syn::parse_quote!(#[doc = #fallback])]
    } else {
        h.docs.clone()
    }
}

/// The bindings a request's arguments are matched into: `__a_<index>`,
/// spanned on the parameter (by index, not name: `_n` would make
/// `__a__n`, which the `non_snake_case` lint flags).
fn arg_bindings(h: &Handler) -> Vec<Ident> {
    h.params
        .args()
        .iter()
        .enumerate()
        .map(|(i, a)| format_ident!("__a_{}", i, span = a.ident.span()))
        .collect()
}

/// The bindings the start arguments are unpacked into: `__i_<index>`,
/// spanned on the parameter.
fn init_bindings(init: &Init) -> Vec<Ident> {
    init.params
        .args()
        .iter()
        .enumerate()
        .map(|(i, a)| format_ident!("__i_{}", i, span = a.ident.span()))
        .collect()
}

/// `self.method(args..)[, ctx][.await]`.
pub(crate) fn invoke(h: &Handler, args: &[TokenStream]) -> TokenStream {
    let ident = &h.ident;
    let ctx = h.params.takes_ctx().then(|| quote!(__ctx));
    let all: Vec<TokenStream> = args.iter().cloned().chain(ctx).collect();
    let call = quote!(self.#ident(#(#all),*));
    if h.is_async {
        quote!(#call.await)
    } else {
        call
    }
}

/// A cast's, an info's or a continue's result as a `Flow`: the handler's
/// own if it returns one, `Continue` otherwise.
pub(crate) fn flow_of(g: &Gen<'_>, h: &Handler, call: TokenStream) -> TokenStream {
    let gs = &g.gs;
    if h.ret.as_ref().is_some_and(|t| last_segment_is(t, "Flow")) {
        call
    } else {
        quote!({ let _ = #call; #gs::Flow::Continue })
    }
}

/// The value a call replies with: its return type, without `Reply<..>`.
fn reply_value(h: &Handler) -> Type {
    match &h.ret {
        None => syn::parse_quote!(()),
        Some(t) => unwrap_named(t, "Reply")
            .cloned()
            .unwrap_or_else(|| t.clone()),
    }
}

/// `true` if `ty` names the type parameter `param` anywhere inside.
fn mentions(ty: &Type, param: &Ident) -> bool {
    struct Finder<'a> {
        param: &'a Ident,
        found: bool,
    }
    impl<'ast> syn::visit::Visit<'ast> for Finder<'_> {
        fn visit_path(&mut self, p: &'ast syn::Path) {
            if p.leading_colon.is_none()
                && p.segments.first().is_some_and(|s| s.ident == *self.param)
            {
                self.found = true;
            }
            syn::visit::visit_path(self, p);
        }
    }
    let mut f = Finder {
        param,
        found: false,
    };
    syn::visit::Visit::visit_type(&mut f, ty);
    f.found
}
