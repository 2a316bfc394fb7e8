//! `#[gen_server]`: turns an annotated `impl` block into a GenServer.
//!
//! The model is the set of handler methods; the generated code is
//! - a request enum for the calls and one for the casts, each a variant per
//!   method with the method's arguments (deriving `Term`, so `add(n)` is
//!   `{add, N}` and `get()` is `get` on the wire);
//! - a reply enum that writes as the plain reply value;
//! - the `GenServer` impl, whose dispatch is an exhaustive `match`;
//! - a typed client, `<Type>Ref`, with one method per call and cast.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::spanned::Spanned;
use syn::{FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, PathArguments, ReturnType, Type};

/// Collects every error, so the user sees them all at once.
#[derive(Default)]
struct Errors(Vec<syn::Error>);

impl Errors {
    fn push(&mut self, span: impl Spanned, msg: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span.span(), msg));
    }

    fn finish(self) -> syn::Result<()> {
        let mut it = self.0.into_iter();
        match it.next() {
            None => Ok(()),
            Some(mut first) => {
                for e in it {
                    first.combine(e);
                }
                Err(first)
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Call,
    Cast,
    Info,
    Terminate,
    Continue,
}

/// One handler method.
struct Handler {
    kind: Kind,
    ident: Ident,
    variant: Ident,
    is_async: bool,
    /// The request arguments (not `self`, not the context).
    args: Vec<(Ident, Type)>,
    takes_ctx: bool,
    ret: Option<Type>,
    docs: Vec<syn::Attribute>,
}

fn pascal(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// `true` if `ty` is `&mut ServerContext<..>` (or `&ServerContext`).
fn is_ctx(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) => p
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "ServerContext"),
            _ => false,
        },
        _ => false,
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

fn take_kind(errors: &mut Errors, f: &mut ImplItemFn) -> Option<Kind> {
    let mut kind = None;
    let mut keep = Vec::new();
    for attr in std::mem::take(&mut f.attrs) {
        let k = if attr.path().is_ident("call") {
            Some(Kind::Call)
        } else if attr.path().is_ident("cast") {
            Some(Kind::Cast)
        } else if attr.path().is_ident("info") {
            Some(Kind::Info)
        } else if attr.path().is_ident("terminate") {
            Some(Kind::Terminate)
        } else if attr.path().is_ident("handle_continue") {
            Some(Kind::Continue)
        } else {
            None
        };
        match k {
            Some(k) => {
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    errors.push(&attr, "handler attributes take no arguments: write `#[call]`, `#[cast]`, `#[info]`, `#[terminate]` or `#[handle_continue]`");
                }
                if kind.is_some() {
                    errors.push(&attr, "a method can be one kind of handler only");
                }
                kind = Some(k);
            }
            None => keep.push(attr),
        }
    }
    f.attrs = keep;
    kind
}

fn lower(errors: &mut Errors, kind: Kind, f: &ImplItemFn) -> Handler {
    let sig = &f.sig;
    let mut inputs = sig.inputs.iter();
    match inputs.next() {
        Some(FnArg::Receiver(r)) => {
            if r.reference.is_none() {
                errors.push(
                    r,
                    "a handler borrows the server: take `&mut self` (or `&self`), not `self`",
                );
            }
        }
        _ => errors.push(
            &sig.ident,
            "a handler is a method of the server: its first parameter is `&mut self` (or `&self`)",
        ),
    }
    let mut args = Vec::new();
    let mut takes_ctx = false;
    let rest: Vec<&FnArg> = inputs.collect();
    for (i, arg) in rest.iter().enumerate() {
        let FnArg::Typed(pt) = arg else { continue };
        if is_ctx(&pt.ty) {
            if i + 1 != rest.len() {
                errors.push(&pt.ty, "the `ServerContext` parameter comes last");
            }
            takes_ctx = true;
            continue;
        }
        let ident = match &*pt.pat {
            Pat::Ident(p) => p.ident.clone(),
            other => {
                errors.push(
                    other,
                    "handler parameters are plain names (`n: i64`), not patterns",
                );
                format_ident!("arg{}", i)
            }
        };
        args.push((ident, (*pt.ty).clone()));
    }
    match kind {
        Kind::Info | Kind::Continue if args.len() != 1 => errors.push(
            &sig.ident,
            "an `#[info]` or `#[handle_continue]` handler takes one `Message` (and, last, the `ServerContext`)",
        ),
        Kind::Terminate if args.len() != 1 => errors.push(
            &sig.ident,
            "a `#[terminate]` handler takes `&Reason` (and, last, the `ServerContext`)",
        ),
        _ => {}
    }
    let ret = match &sig.output {
        ReturnType::Default => None,
        ReturnType::Type(_, t) => Some((**t).clone()),
    };
    if let Some(g) = sig.generics.params.first() {
        errors.push(
            g,
            "handler methods cannot have generic parameters of their own; put them on the `impl`",
        );
    }
    Handler {
        kind,
        ident: sig.ident.clone(),
        variant: format_ident!(
            "{}",
            pascal(&sig.ident.to_string()),
            span = sig.ident.span()
        ),
        is_async: sig.asyncness.is_some(),
        args,
        takes_ctx,
        ret,
        docs: f
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect(),
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

/// `self.method(args..)[, ctx][.await]`.
fn invoke(h: &Handler, args: &[TokenStream]) -> TokenStream {
    let ident = &h.ident;
    let ctx = h.takes_ctx.then(|| quote!(__ctx));
    let all: Vec<TokenStream> = args.iter().cloned().chain(ctx).collect();
    let call = quote!(self.#ident(#(#all),*));
    if h.is_async {
        quote!(#call.await)
    } else {
        call
    }
}

pub(crate) fn expand(attr: TokenStream, mut item: ItemImpl) -> syn::Result<TokenStream> {
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.push(&attr, "`#[gen_server]` takes no arguments");
    }
    if let Some((_, path, _)) = &item.trait_ {
        errors.push(path, "`#[gen_server]` goes on an inherent `impl` block (`impl MyServer { .. }`), not a trait impl");
    }
    let self_ty = (*item.self_ty).clone();
    let type_name = match &self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let Some(type_name) = type_name else {
        errors.push(
            &self_ty,
            "`#[gen_server]` needs a named type (`impl MyServer { .. }`)",
        );
        errors.finish()?;
        return Ok(TokenStream::new());
    };

    let mut handlers = Vec::new();
    let mut init: Option<ImplItemFn> = None;
    for it in &mut item.items {
        let ImplItem::Fn(f) = it else { continue };
        let kind = take_kind(&mut errors, f);
        if f.sig.ident == "init" {
            if kind.is_some() {
                errors.push(
                    &f.sig.ident,
                    "`init` is the start function; it takes no handler attribute",
                );
            }
            init = Some(f.clone());
            continue;
        }
        if let Some(kind) = kind {
            handlers.push(lower(&mut errors, kind, f));
        }
    }
    for (k, what) in [
        (Kind::Info, "#[info]"),
        (Kind::Terminate, "#[terminate]"),
        (Kind::Continue, "#[handle_continue]"),
    ] {
        let many: Vec<&Handler> = handlers.iter().filter(|h| h.kind == k).collect();
        if many.len() > 1 {
            errors.push(
                &many[1].ident,
                format!("only one {what} handler is allowed"),
            );
        }
    }
    let Some(init) = init else {
        errors.push(
            &item.self_ty,
            "a #[gen_server] needs an `init` function: `async fn init(args..) -> Result<Self, Reason>` (or `-> Self`)",
        );
        errors.finish()?;
        return Ok(TokenStream::new());
    };
    if matches!(init.sig.inputs.first(), Some(FnArg::Receiver(_))) {
        errors.push(
            &init.sig.inputs,
            "`init` builds the server: it takes the start arguments, not `self`",
        );
    }
    errors.finish()?;

    let krate = quote!(::ergo);
    let gs = quote!(#krate::gen_server);
    if let Some(p) = item
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, syn::GenericParam::Type(_)))
    {
        return Err(syn::Error::new(
            p.span(),
            "`#[gen_server]` servers may be generic over types, not lifetimes or constants (a server lives as long as its process)",
        ));
    }
    let (impl_generics, ty_generics, where_clause) = item.generics.split_for_impl();
    let type_params: Vec<Ident> = item
        .generics
        .type_params()
        .map(|p| p.ident.clone())
        .collect();
    let user_where: Vec<syn::WherePredicate> = where_clause
        .map(|w| w.predicates.iter().cloned().collect())
        .unwrap_or_default();

    let vis = quote!(pub);
    let call_enum = format_ident!("{}Call", type_name);
    let reply_enum = format_ident!("{}Reply", type_name);
    let cast_enum = format_ident!("{}Cast", type_name);
    let client = format_ident!("{}Ref", type_name);

    let calls: Vec<&Handler> = handlers.iter().filter(|h| h.kind == Kind::Call).collect();
    let casts: Vec<&Handler> = handlers.iter().filter(|h| h.kind == Kind::Cast).collect();

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

    // ------------------------------------------------------------ enums
    let variant_def = |h: &Handler| {
        let v = &h.variant;
        let tys = h.args.iter().map(|(_, t)| t);
        let fallback = format!(" The `{}` request.", h.ident);
        let docs = if h.docs.is_empty() {
            vec![syn::parse_quote!(#[doc = #fallback])]
        } else {
            h.docs.clone()
        };
        if h.args.is_empty() {
            quote!(#(#docs)* #v)
        } else {
            quote!(#(#docs)* #v(#(#tys),*))
        }
    };
    let call_variants = calls.iter().map(|h| variant_def(h));
    let cast_variants = casts.iter().map(|h| variant_def(h));
    let reply_value = |h: &Handler| -> Type {
        match &h.ret {
            None => syn::parse_quote!(()),
            Some(t) => unwrap_named(t, "Reply")
                .cloned()
                .unwrap_or_else(|| t.clone()),
        }
    };
    let call_tg = params_in(
        calls
            .iter()
            .flat_map(|h| h.args.iter().map(|(_, t)| t.clone()))
            .collect(),
    );
    let cast_tg = params_in(
        casts
            .iter()
            .flat_map(|h| h.args.iter().map(|(_, t)| t.clone()))
            .collect(),
    );
    let reply_types: Vec<Type> = calls.iter().map(|h| reply_value(h)).collect();
    let reply_tg = params_in(reply_types.clone());
    let server_bounds = quote! {
        #(#user_where,)*
        Self: ::core::marker::Send + 'static,
        #call_enum #call_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #cast_enum #cast_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #reply_enum #reply_tg: #krate::etf::ToTerm + ::core::marker::Send + 'static,
    };
    let reply_variants = calls.iter().map(|h| {
        let v = &h.variant;
        let t = reply_value(h);
        let doc = format!(" The reply to `{}`.", h.ident);
        quote!(#[doc = #doc] #v(#t))
    });
    let reply_to_term = calls.iter().map(|h| {
        let v = &h.variant;
        quote!(#reply_enum::#v(__v) => #krate::etf::ToTerm::to_term(__v))
    });
    let reply_unit_arm = calls
        .is_empty()
        .then(|| quote!(_ => #krate::etf::Term::NIL));
    let call_enum_doc = format!(" The calls [`{type_name}`] serves (`#[gen_server]`).");
    let reply_enum_doc =
        format!(" The replies of [`{type_name}`]'s calls; each writes as its value.");
    let cast_enum_doc = format!(" The casts [`{type_name}`] serves (`#[gen_server]`).");
    // An enum with no variants still needs a Term form: give it one that
    // no term matches.
    let empty_call = calls.is_empty().then(|| {
        quote! {
            #[doc(hidden)]
            __NoCalls
        }
    });
    let empty_cast = casts.is_empty().then(|| {
        quote! {
            #[doc(hidden)]
            __NoCasts
        }
    });

    // ------------------------------------------------------------ dispatch
    let call_arms = calls.iter().map(|h| {
        let v = &h.variant;
        let names: Vec<Ident> = h.args.iter().map(|(n, _)| format_ident!("__a_{}", n)).collect();
        let pat = if names.is_empty() {
            quote!(#call_enum::#v)
        } else {
            quote!(#call_enum::#v(#(#names),*))
        };
        let args: Vec<TokenStream> = names.iter().map(|n| quote!(#n)).collect();
        let call = invoke(h, &args);
        let explicit = h.ret.as_ref().is_some_and(|t| unwrap_named(t, "Reply").is_some());
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
    let no_calls_arm = calls.is_empty().then(|| {
        quote!(#call_enum::__NoCalls => #gs::Reply::Stop(#krate::Reason::atom("bad_call"), ::core::option::Option::None),)
    });
    let flow_of = |h: &Handler, call: TokenStream| {
        if h.ret.as_ref().is_some_and(|t| last_segment_is(t, "Flow")) {
            call
        } else {
            quote!({ let _ = #call; #gs::Flow::Continue })
        }
    };
    let cast_arms = casts.iter().map(|h| {
        let v = &h.variant;
        let names: Vec<Ident> = h
            .args
            .iter()
            .map(|(n, _)| format_ident!("__a_{}", n))
            .collect();
        let pat = if names.is_empty() {
            quote!(#cast_enum::#v)
        } else {
            quote!(#cast_enum::#v(#(#names),*))
        };
        let args: Vec<TokenStream> = names.iter().map(|n| quote!(#n)).collect();
        let body = flow_of(h, invoke(h, &args));
        quote!(#pat => #body,)
    });
    let no_casts_arm = casts.is_empty().then(
        || quote!(#cast_enum::__NoCasts => #gs::Flow::Stop(#krate::Reason::atom("bad_cast")),),
    );
    let one = |k: Kind| handlers.iter().find(|h| h.kind == k);
    let info_impl = one(Kind::Info).map(|h| {
        let body = flow_of(h, invoke(h, &[quote!(__msg)]));
        quote! {
            async fn handle_info(&mut self, __msg: #krate::Message, __ctx: &mut #gs::ServerContext<Self>) -> #gs::Flow {
                #body
            }
        }
    });
    let continue_impl = one(Kind::Continue).map(|h| {
        let body = flow_of(h, invoke(h, &[quote!(__msg)]));
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

    // ------------------------------------------------------------ init
    let mut init_args: Vec<(Ident, Type)> = Vec::new();
    let mut init_ctx = false;
    let n_inputs = init.sig.inputs.len();
    for (i, arg) in init.sig.inputs.iter().enumerate() {
        let FnArg::Typed(pt) = arg else { continue };
        if is_ctx(&pt.ty) {
            if i + 1 != n_inputs {
                return Err(syn::Error::new(
                    pt.ty.span(),
                    "the `ServerContext` parameter comes last",
                ));
            }
            init_ctx = true;
            continue;
        }
        let ident = match &*pt.pat {
            Pat::Ident(p) => format_ident!("__i_{}", p.ident),
            other => {
                return Err(syn::Error::new(
                    other.span(),
                    "`init` parameters are plain names",
                ));
            }
        };
        init_args.push((ident, (*pt.ty).clone()));
    }
    let args_ty: Type = match init_args.as_slice() {
        [] => syn::parse_quote!(()),
        [(_, t)] => t.clone(),
        many => {
            let tys = many.iter().map(|(_, t)| t);
            syn::parse_quote!((#(#tys,)*))
        }
    };
    let client_bounds = quote! {
        #(#user_where,)*
        #self_ty: #gs::GenServer<
            Args = #args_ty,
            Call = #call_enum #call_tg,
            Reply = #reply_enum #reply_tg,
            Cast = #cast_enum #cast_tg,
        >,
    };
    let init_names: Vec<&Ident> = init_args.iter().map(|(n, _)| n).collect();
    let destructure = match init_args.as_slice() {
        [] => quote!(let () = __args;),
        [(n, _)] => quote!(let #n = __args;),
        _ => quote!(let (#(#init_names,)*) = __args;),
    };
    let init_call_args: Vec<TokenStream> = init_names
        .iter()
        .map(|n| quote!(#n))
        .chain(init_ctx.then(|| quote!(__ctx)))
        .collect();
    let init_call = if init.sig.asyncness.is_some() {
        quote!(<#self_ty>::init(#(#init_call_args),*).await)
    } else {
        quote!(<#self_ty>::init(#(#init_call_args),*))
    };
    let init_result = match &init.sig.output {
        ReturnType::Type(_, t) if last_segment_is(t, "Result") => quote!(#init_call),
        _ => quote!(::core::result::Result::Ok(#init_call)),
    };
    let init_params: Vec<TokenStream> = init_args
        .iter()
        .map(|(n, t)| {
            let n = format_ident!(
                "{}",
                n.to_string().trim_start_matches("__i_"),
                span = Span::call_site()
            );
            quote!(#n: #t)
        })
        .collect();
    let init_pass: Vec<TokenStream> = init_args
        .iter()
        .map(|(n, _)| {
            let n = format_ident!(
                "{}",
                n.to_string().trim_start_matches("__i_"),
                span = Span::call_site()
            );
            quote!(#n)
        })
        .collect();
    let pack = match init_pass.as_slice() {
        [] => quote!(()),
        [one] => quote!(#one),
        many => quote!((#(#many,)*)),
    };

    // ------------------------------------------------------------ client
    let client_calls = calls.iter().map(|h| {
        let ident = &h.ident;
        let v = &h.variant;
        let params: Vec<TokenStream> = h.args.iter().map(|(n, t)| quote!(#n: #t)).collect();
        let names: Vec<&Ident> = h.args.iter().map(|(n, _)| n).collect();
        let req = if names.is_empty() {
            quote!(#call_enum::#v)
        } else {
            quote!(#call_enum::#v(#(#names),*))
        };
        let ret = reply_value(h);
        let fallback = format!(" Calls `{ident}` and waits for the reply.");
        let docs = if h.docs.is_empty() {
            vec![syn::parse_quote!(#[doc = #fallback])]
        } else {
            h.docs.clone()
        };
        let timeout_ident = format_ident!("{}_timeout", ident);
        quote! {
            #(#docs)*
            pub async fn #ident(&self, #(#params),*) -> ::core::result::Result<#ret, #gs::CallError>
            where
                #ret: #krate::etf::FromTerm,
                #call_enum #call_tg: #krate::etf::ToTerm,
            {
                self.#timeout_ident(#(#names,)* #gs::DEFAULT_CALL_TIMEOUT).await
            }

            #[doc = concat!(" Like [`Self::", stringify!(#ident), "`], waiting at most `timeout` for the reply.")]
            pub async fn #timeout_ident(&self, #(#params,)* timeout: ::std::time::Duration) -> ::core::result::Result<#ret, #gs::CallError>
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
                    .await
            }
        }
    });
    let client_calls: Vec<TokenStream> = client_calls.collect();
    let client_casts = casts.iter().map(|h| {
        let ident = &h.ident;
        let v = &h.variant;
        let params = h.args.iter().map(|(n, t)| quote!(#n: #t));
        let names: Vec<&Ident> = h.args.iter().map(|(n, _)| n).collect();
        let req = if names.is_empty() {
            quote!(#cast_enum::#v)
        } else {
            quote!(#cast_enum::#v(#(#names),*))
        };
        let fallback = format!(" Casts `{ident}`.");
        let docs = if h.docs.is_empty() {
            vec![syn::parse_quote!(#[doc = #fallback])]
        } else {
            h.docs.clone()
        };
        quote! {
            #(#docs)*
            pub fn #ident(&self, #(#params),*)
            where
                #cast_enum #cast_tg: #krate::etf::ToTerm,
            {
                self.0.cast(#req);
            }
        }
    });

    let client_doc =
        format!(" A handle to a running [`{type_name}`]: one method per call and cast.");
    let type_str = type_name.to_string();
    Ok(quote! {
        #item

        #[doc = #call_enum_doc]
        #[derive(#krate::Term)]
        #[term(crate = "::ergo::etf")]
        #vis enum #call_enum #call_tg {
            #(#call_variants,)*
            #empty_call
        }

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

        #[doc = #cast_enum_doc]
        #[derive(#krate::Term)]
        #[term(crate = "::ergo::etf")]
        #vis enum #cast_enum #cast_tg {
            #(#cast_variants,)*
            #empty_cast
        }

        impl #impl_generics #gs::GenServer for #self_ty
        where
            #server_bounds
        {
            type Args = #args_ty;
            type Call = #call_enum #call_tg;
            type Reply = #reply_enum #reply_tg;
            type Cast = #cast_enum #cast_tg;

            async fn init(__args: Self::Args, __ctx: &mut #gs::ServerContext<Self>) -> ::core::result::Result<Self, #krate::Reason> {
                #destructure
                let _ = &__ctx;
                #init_result
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
        }

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
    })
}
