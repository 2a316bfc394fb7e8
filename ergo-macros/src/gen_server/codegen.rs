//! Generates a `#[gen_server]`'s code from its checked [model](super::model).
//!
//! The output is, after the impl block itself:
//! - [`request_enums`]: `<Type>Call` and `<Type>Cast`, a variant per handler
//!   with the handler's arguments, deriving `Term` (so `add(n)` is
//!   `{add, N}` and `get()` is `get` on the wire);
//! - [`reply_enum`]: `<Type>Reply`, a variant per call, written as the plain
//!   reply value;
//! - [`gen_server_impl`]: the `GenServer` impl, whose dispatch is an
//!   exhaustive `match`;
//! - [`client`]: `<Type>Ref`, a typed handle with one method per call and
//!   cast.
//!
//! Every runtime item is named through the crate path (`::ergo` unless the
//! user gave `crate = "..."`).

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::{Ident, PathArguments, ReturnType, Type};

use super::model::{Handler, Init, Kind, Server};

/// What every part of the output needs: the names of the generated items,
/// the runtime's paths, and the server's generics.
struct Gen<'a> {
    server: &'a Server,
    /// The server's type name, `Counter`.
    type_name: &'a Ident,
    /// The implementing type as written, `Counter<T>`.
    self_ty: &'a Type,
    init: &'a Init,
    /// The runtime crate, `::ergo`.
    krate: TokenStream,
    /// Its `gen_server` module.
    gs: TokenStream,
    /// The crate path `#[derive(Term)]` is given for the request enums.
    etf_path: syn::LitStr,
    call_enum: Ident,
    reply_enum: Ident,
    cast_enum: Ident,
    client: Ident,
    calls: Vec<&'a Handler>,
    casts: Vec<&'a Handler>,
    /// The generic arguments each generated enum takes (`<T>`, or nothing).
    call_tg: TokenStream,
    cast_tg: TokenStream,
    reply_tg: TokenStream,
    /// The value each call replies with, in call order.
    reply_types: Vec<Type>,
    /// `GenServer::Args`: `()`, the one start argument, or a tuple of them.
    args_ty: Type,
    /// The user's where-clause predicates.
    user_where: Vec<syn::WherePredicate>,
}

/// The code for a server that passed its checks.
pub(crate) fn server(server: &Server) -> TokenStream {
    let type_name = server.type_name.as_ref().expect("checked: a named type");
    let init = server.init.as_ref().expect("checked: init exists");
    let krate = server.attrs.krate.tokens_or(quote!(::ergo));
    let gs = quote!(#krate::gen_server);
    let etf_path = server.attrs.krate.etf_lit_or("::ergo::etf");
    let calls: Vec<&Handler> = server
        .handlers
        .iter()
        .filter(|h| h.kind == Kind::Call)
        .collect();
    let casts: Vec<&Handler> = server
        .handlers
        .iter()
        .filter(|h| h.kind == Kind::Cast)
        .collect();
    let type_params: Vec<Ident> = server
        .item
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();
    // Each generated enum is generic over the server's type parameters its
    // fields use, and no others.
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
    let user_where = server
        .item
        .generics
        .where_clause
        .as_ref()
        .map(|w| w.predicates.iter().cloned().collect())
        .unwrap_or_default();
    let g = Gen {
        server,
        type_name,
        self_ty: &server.item.self_ty,
        init,
        krate,
        gs,
        etf_path,
        call_enum: format_ident!("{}Call", type_name),
        reply_enum: format_ident!("{}Reply", type_name),
        cast_enum: format_ident!("{}Cast", type_name),
        client: format_ident!("{}Ref", type_name),
        calls,
        casts,
        call_tg,
        cast_tg,
        reply_tg,
        reply_types,
        args_ty,
        user_where,
    };
    let item = &server.item;
    let (call_enum, cast_enum) = request_enums(&g);
    let reply_enum = reply_enum(&g);
    let gen_server_impl = gen_server_impl(&g);
    let client = client(&g);
    quote! {
        #item

        #call_enum

        #reply_enum

        #cast_enum

        #gen_server_impl

        #client
    }
}

/// The `<Type>Call` and `<Type>Cast` enums.
fn request_enums(g: &Gen<'_>) -> (TokenStream, TokenStream) {
    let Gen {
        type_name,
        krate,
        etf_path,
        call_enum,
        cast_enum,
        call_tg,
        cast_tg,
        ..
    } = g;
    let vis = quote!(pub);
    let call_variants = g.calls.iter().map(|h| variant_def(h));
    let cast_variants = g.casts.iter().map(|h| variant_def(h));
    let call_enum_doc = format!(" The calls [`{type_name}`] serves (`#[gen_server]`).");
    let cast_enum_doc = format!(" The casts [`{type_name}`] serves (`#[gen_server]`).");
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
fn reply_enum(g: &Gen<'_>) -> TokenStream {
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

/// The `GenServer` impl: `init` unpacks the start arguments, and each
/// callback matches its request onto the handler.
fn gen_server_impl(g: &Gen<'_>) -> TokenStream {
    let Gen {
        self_ty,
        krate,
        gs,
        call_enum,
        reply_enum,
        cast_enum,
        call_tg,
        cast_tg,
        reply_tg,
        args_ty,
        user_where,
        ..
    } = g;
    let (impl_generics, _, _) = g.server.item.generics.split_for_impl();
    let server_bounds = quote! {
        #(#user_where,)*
        Self: ::core::marker::Send + 'static,
        #call_enum #call_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #cast_enum #cast_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #reply_enum #reply_tg: #krate::etf::ToTerm + ::core::marker::Send + 'static,
    };
    let init = init_body(g);
    let call_arms = g.calls.iter().map(|h| {
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
    let cast_arms = g.casts.iter().map(|h| {
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
    let one = |k: Kind| g.server.handlers.iter().find(|h| h.kind == k);
    let info_impl = one(Kind::Info).map(|h| {
        let body = flow_of(g, h, invoke(h, &[quote!(__msg)]));
        quote! {
            async fn handle_info(&mut self, __msg: #krate::Message, __ctx: &mut #gs::ServerContext<Self>) -> #gs::Flow {
                #body
            }
        }
    });
    let continue_impl = one(Kind::Continue).map(|h| {
        let body = flow_of(g, h, invoke(h, &[quote!(__msg)]));
        quote! {
            async fn handle_continue(&mut self, __msg: #krate::Message, __ctx: &mut #gs::ServerContext<Self>) -> #gs::Flow {
                #body
            }
        }
    });
    let terminate_impl = one(Kind::Terminate).map(|h| {
        let call = invoke(h, &[quote!(__reason)]);
        quote! {
            async fn terminate(&mut self, __reason: &#krate::Reason, __ctx: &mut #gs::ServerContext<Self>) {
                let _ = #call;
            }
        }
    });
    let format_status_impl = one(Kind::FormatStatus).map(|h| {
        let ident = &h.ident;
        quote! {
            fn format_status(&self) -> ::core::option::Option<#krate::Term> {
                ::core::option::Option::Some(#krate::etf::ToTerm::into_term(self.#ident()))
            }
        }
    });
    quote! {
        impl #impl_generics #gs::GenServer for #self_ty
        where
            #server_bounds
        {
            type Args = #args_ty;
            type Call = #call_enum #call_tg;
            type Reply = #reply_enum #reply_tg;
            type Cast = #cast_enum #cast_tg;

            async fn init(__args: Self::Args, __ctx: &mut #gs::ServerContext<Self>) -> ::core::result::Result<Self, #krate::Reason> {
                #init
            }

            async fn handle_call(&mut self, __request: #call_enum #call_tg, __ctx: &mut #gs::ServerContext<Self>) -> #gs::Reply<#reply_enum #reply_tg> {
                let _ = &__ctx;
                match __request {
                    #(#call_arms)*
                    #no_calls_arm
                }
            }

            async fn handle_cast(&mut self, __request: #cast_enum #cast_tg, __ctx: &mut #gs::ServerContext<Self>) -> #gs::Flow {
                let _ = &__ctx;
                match __request {
                    #(#cast_arms)*
                    #no_casts_arm
                }
            }

            #info_impl
            #continue_impl
            #terminate_impl
            #format_status_impl
        }
    }
}

/// The body of `GenServer::init`: unpacks `__args` and calls the user's
/// `init`, wrapping a plain `Self` in `Ok`.
fn init_body(g: &Gen<'_>) -> TokenStream {
    let self_ty = g.self_ty;
    let init_names = init_bindings(g.init);
    let destructure = match init_names.as_slice() {
        [] => quote!(let () = __args;),
        [n] => quote!(let #n = __args;),
        _ => quote!(let (#(#init_names,)*) = __args;),
    };
    let init_call_args: Vec<TokenStream> = init_names
        .iter()
        .map(|n| quote!(#n))
        .chain(g.init.params.takes_ctx().then(|| quote!(__ctx)))
        .collect();
    let init_call = if g.init.is_async {
        quote!(<#self_ty>::init(#(#init_call_args),*).await)
    } else {
        quote!(<#self_ty>::init(#(#init_call_args),*))
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

/// `<Type>Ref`: the typed client, with its `Clone`, `Debug` and `From`
/// impls, its start functions, and one method per call and cast.
fn client(g: &Gen<'_>) -> TokenStream {
    let Gen {
        type_name,
        self_ty,
        krate,
        gs,
        call_enum,
        reply_enum,
        cast_enum,
        client,
        call_tg,
        cast_tg,
        reply_tg,
        args_ty,
        user_where,
        ..
    } = g;
    let vis = quote!(pub);
    let (impl_generics, ty_generics, _) = g.server.item.generics.split_for_impl();
    let client_bounds = quote! {
        #(#user_where,)*
        #self_ty: #gs::GenServer<
            Args = #args_ty,
            Call = #call_enum #call_tg,
            Reply = #reply_enum #reply_tg,
            Cast = #cast_enum #cast_tg,
        >,
    };
    // The start functions take `init`'s arguments under their own names.
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
    let client_calls: Vec<TokenStream> = g.calls.iter().map(|h| client_call(g, h)).collect();
    let client_casts = g.casts.iter().map(|h| client_cast(g, h));
    let client_doc =
        format!(" A handle to a running [`{type_name}`]: one method per call and cast.");
    let type_str = type_name.to_string();
    quote! {
        #[doc = #client_doc]
        #vis struct #client #impl_generics (#gs::ServerRef<#self_ty>)
        where
            #client_bounds;

        impl #impl_generics ::core::clone::Clone for #client #ty_generics
        where
            #client_bounds
        {
            fn clone(&self) -> Self {
                #client(self.0.clone())
            }
        }

        impl #impl_generics ::core::fmt::Debug for #client #ty_generics
        where
            #client_bounds
        {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                ::core::fmt::Debug::fmt(&self.0, f)
            }
        }

        impl #impl_generics #client #ty_generics
        where
            #client_bounds
        {
            #[doc = concat!(" Starts a `", #type_str, "` and waits for its `init`.")]
            pub async fn start(__node: &#krate::Node, #(#init_params),*) -> ::core::result::Result<Self, #krate::Reason> {
                __node.start_server::<#self_ty>(#pack).await.map(#client)
            }

            #[doc = concat!(" Starts a `", #type_str, "` registered as `name`.")]
            pub async fn start_named(__node: &#krate::Node, __name: &str, #(#init_params),*) -> ::core::result::Result<Self, #krate::Reason> {
                __node.start_server_named::<#self_ty>(__name, #pack).await.map(#client)
            }

            #[doc = concat!(" Starts a `", #type_str, "` linked to the calling process.")]
            pub async fn start_link(__ctx: &#krate::Context, #(#init_params),*) -> ::core::result::Result<Self, #krate::Reason> {
                __ctx.start_server_link::<#self_ty>(#pack).await.map(#client)
            }

            /// The untyped handle underneath.
            pub fn server(&self) -> &#gs::ServerRef<#self_ty> {
                &self.0
            }

            /// A client of the server at `dest`: a pid, a name registered
            /// on this node, or `{Name, Node}` (a server on another node,
            /// reached with the same typed calls).
            pub fn at(__node: &#krate::Node, dest: impl ::core::convert::Into<#krate::Dest>) -> Self {
                #client(#gs::ServerRef::at(__node, dest))
            }

            /// The server's pid, when the client names it by pid or by a
            /// name registered on this node now.
            pub fn pid(&self) -> ::core::option::Option<#krate::etf::Pid> {
                self.0.pid()
            }

            #(#client_calls)*
            #(#client_casts)*
        }

        impl #impl_generics ::core::convert::From<#gs::ServerRef<#self_ty>> for #client #ty_generics
        where
            #client_bounds
        {
            fn from(r: #gs::ServerRef<#self_ty>) -> Self {
                #client(r)
            }
        }
    }
}

/// The client's method for a call, and its `_timeout` twin.
fn client_call(g: &Gen<'_>, h: &Handler) -> TokenStream {
    let Gen {
        gs,
        krate,
        call_enum,
        call_tg,
        reply_enum,
        ..
    } = g;
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
    let req = if names.is_empty() {
        quote!(#call_enum::#v)
    } else {
        quote!(#call_enum::#v(#(#names),*))
    };
    let ret = reply_value(h);
    let docs = docs_or(h, format!(" Calls `{ident}` and waits for the reply."));
    let timeout_ident = format_ident!("{}_timeout", ident);
    quote! {
        #(#docs)*
        pub fn #ident(&self, #(#params),*) -> impl ::core::future::Future<Output = ::core::result::Result<#ret, #gs::CallError>> + '_
        where
            #ret: #krate::etf::FromTerm,
            #call_enum #call_tg: #krate::etf::ToTerm,
        {
            self.#timeout_ident(#(#names,)* #gs::DEFAULT_CALL_TIMEOUT)
        }

        #[doc = concat!(" Like [`Self::", stringify!(#ident), "`], waiting at most `timeout` for the reply.")]
        pub fn #timeout_ident(&self, #(#params,)* timeout: ::std::time::Duration) -> impl ::core::future::Future<Output = ::core::result::Result<#ret, #gs::CallError>> + '_
        where
            #ret: #krate::etf::FromTerm,
            #call_enum #call_tg: #krate::etf::ToTerm,
        {
            self.0
                .call_map(#req, timeout, |__reply| match __reply {
                    #reply_enum::#v(__v) => ::core::option::Option::Some(__v),
                    #[allow(unreachable_patterns)]
                    _ => ::core::option::Option::None,
                })
        }
    }
}

/// The client's method for a cast.
fn client_cast(g: &Gen<'_>, h: &Handler) -> TokenStream {
    let Gen {
        krate,
        cast_enum,
        cast_tg,
        ..
    } = g;
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
    let docs = docs_or(h, format!(" Casts `{ident}`."));
    quote! {
        #(#docs)*
        pub fn #ident(&self, #(#params),*)
        where
            #cast_enum #cast_tg: #krate::etf::ToTerm,
        {
            self.0.cast(#req);
        }
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

/// The bindings a request's arguments are matched into: `__a_<name>`.
fn arg_bindings(h: &Handler) -> Vec<Ident> {
    h.params
        .args()
        .iter()
        .map(|a| format_ident!("__a_{}", a.ident))
        .collect()
}

/// The bindings the start arguments are unpacked into: `__i_<name>`.
fn init_bindings(init: &Init) -> Vec<Ident> {
    init.params
        .args()
        .iter()
        .map(|a| format_ident!("__i_{}", a.ident))
        .collect()
}

/// `self.method(args..)[, ctx][.await]`.
fn invoke(h: &Handler, args: &[TokenStream]) -> TokenStream {
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
fn flow_of(g: &Gen<'_>, h: &Handler, call: TokenStream) -> TokenStream {
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

/// The type inside `Name<T>` when `ty`'s last segment is `Name`.
fn unwrap_named<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != name {
        return None;
    }
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
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
