//! Generates a `#[connection]`'s code from its checked
//! [model](super::model).
//!
//! The output is, after the impl block itself:
//! - `<Type>Call`, `<Type>Cast` and `<Type>Reply`, as every behaviour's
//!   ([`behaviour::codegen`](crate::behaviour::codegen));
//! - [`handler_impl`]: the `net::Handler` impl;
//! - [`client`]: `<Type>Client`, a trait implemented for
//!   `ServerRef<Connection<Type>>` (a connection's process is a GenServer,
//!   `Connection<Type>`, serving the handler's calls and casts) with one
//!   method per call and cast.
//!
//! Every runtime item is named through the crate path (`::ergo` unless the
//! user gave `crate = "..."`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::model::{BEHAVIOUR, Conn};
use crate::behaviour::codegen::{
    ClientFn, ClientSend, Gen, call_arms, cast_arms, client_call, client_cast, flow_of, init_body,
    invoke, reply_enum, request_enums,
};
use crate::behaviour::last_segment_is;
use crate::behaviour::model::Kind;

/// The code for a connection handler that passed its checks.
pub(crate) fn connection(conn: &Conn) -> TokenStream {
    let g = Gen::new(&conn.block, &conn.attrs.krate, BEHAVIOUR.attr);
    let item = &conn.block.item;
    let (call_enum, cast_enum) = request_enums(&g);
    let reply_enum = reply_enum(&g);
    let handler_impl = handler_impl(&g);
    let client = client(&g);
    quote! {
        #item

        #call_enum

        #reply_enum

        #cast_enum

        #handler_impl

        #client
    }
}

/// The `Handler` impl: `init` unpacks the start arguments (and takes the
/// peer where the user's does), `handle_data` goes to the `#[data]`
/// handler, calls and casts are matched onto theirs, and a method per
/// other callback the user wrote.
fn handler_impl(g: &Gen<'_>) -> TokenStream {
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
    let net = quote!(#krate::net);
    let (impl_generics, _, _) = g.block.item.generics.split_for_impl();
    let bounds = quote! {
        #(#user_where,)*
        Self: ::core::marker::Send + 'static,
        #call_enum #call_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #cast_enum #cast_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #reply_enum #reply_tg: #krate::etf::ToTerm + ::core::marker::Send + 'static,
    };
    let ctx_ty = quote!(&mut #net::ConnContext<Self>);
    let init = init_body(g);
    let call_arms = call_arms(g);
    let cast_arms = cast_arms(g);
    let one = |k: Kind| g.block.one(k);
    let data_impl = one(Kind::Data).map(|h| {
        let body = flow_of(g, h, invoke(h, &[quote!(__data)]));
        quote! {
            async fn handle_data(&mut self, __data: #krate::Bytes, __ctx: #ctx_ty) -> #gs::Flow {
                #body
            }
        }
    });
    let closed_impl = one(Kind::Closed).map(|h| {
        let call = invoke(h, &[]);
        // A handler that returns nothing ends the connection after it, as
        // the trait's default `handle_closed` does.
        let body = if h.ret.as_ref().is_some_and(|t| last_segment_is(t, "Flow")) {
            call
        } else {
            quote!({ let _ = #call; #gs::Flow::Stop(#krate::Reason::Normal) })
        };
        quote! {
            async fn handle_closed(&mut self, __ctx: #ctx_ty) -> #gs::Flow {
                #body
            }
        }
    });
    let info_impl = one(Kind::Info).map(|h| {
        let body = flow_of(g, h, invoke(h, &[quote!(__msg)]));
        quote! {
            async fn handle_info(&mut self, __msg: #krate::Message, __ctx: #ctx_ty) -> #gs::Flow {
                #body
            }
        }
    });
    let terminate_impl = one(Kind::Terminate).map(|h| {
        let call = invoke(h, &[quote!(__reason)]);
        quote! {
            async fn terminate(&mut self, __reason: &#krate::Reason, __ctx: #ctx_ty) {
                let _ = #call;
            }
        }
    });
    quote! {
        impl #impl_generics #net::Handler for #self_ty
        where
            #bounds
        {
            type Args = #args_ty;
            type Call = #call_enum #call_tg;
            type Reply = #reply_enum #reply_tg;
            type Cast = #cast_enum #cast_tg;

            async fn init(
                __args: Self::Args,
                __peer: ::std::net::SocketAddr,
                __ctx: #ctx_ty,
            ) -> ::core::result::Result<Self, #krate::Reason> {
                #init
            }

            #data_impl
            #closed_impl

            async fn handle_call(&mut self, __request: #call_enum #call_tg, __ctx: #ctx_ty) -> #gs::Reply<#reply_enum #reply_tg> {
                let _ = &__ctx;
                match __request {
                    #call_arms
                }
            }

            async fn handle_cast(&mut self, __request: #cast_enum #cast_tg, __ctx: #ctx_ty) -> #gs::Flow {
                let _ = &__ctx;
                match __request {
                    #cast_arms
                }
            }

            #info_impl
            #terminate_impl
        }
    }
}

/// `<Type>Client`: a trait of the handler's calls and casts, implemented
/// for `ServerRef<Connection<Type>>`, the handle to a connection's process;
/// nothing when the handler has neither.
fn client(g: &Gen<'_>) -> TokenStream {
    let Gen {
        type_name,
        self_ty,
        krate,
        gs,
        call_enum,
        reply_enum,
        cast_enum,
        call_tg,
        cast_tg,
        reply_tg,
        user_where,
        ..
    } = g;
    if g.calls.is_empty() && g.casts.is_empty() {
        return quote!();
    }
    let net = quote!(#krate::net);
    let client = format_ident!("{}Client", type_name);
    let (impl_generics, ty_generics, _) = g.block.item.generics.split_for_impl();
    let client_bounds = quote! {
        #(#user_where,)*
        #self_ty: #net::Handler<
            Call = #call_enum #call_tg,
            Reply = #reply_enum #reply_tg,
            Cast = #cast_enum #cast_tg,
        >,
    };
    let send = ClientSend {
        server: quote!(self),
        caster: quote!(self),
        wrap_call: &|req| req,
        wrap_reply: &|pat| pat,
        future_bounds: quote!(+ ::core::marker::Send),
    };
    let fns: Vec<ClientFn> = g
        .calls
        .iter()
        .flat_map(|h| client_call(g, h, &send))
        .chain(g.casts.iter().map(|h| client_cast(g, h, &send)))
        .collect();
    let decls = fns.iter().map(|f| {
        let ClientFn { docs, sig, .. } = f;
        quote! {
            #(#docs)*
            #sig;
        }
    });
    let defs = fns.iter().map(|f| {
        let ClientFn { sig, body, .. } = f;
        quote!(#sig #body)
    });
    let client_doc = format!(
        " The calls and casts of [`{type_name}`], as methods of the handle to a connection's process, `ServerRef<Connection<{type_name}>>` (`#[connection]`): `ServerRef::new(&node, pid)`, or `ctx.server()` in a handler. Bring the trait into scope to use them."
    );
    quote! {
        #[doc = #client_doc]
        pub trait #client #impl_generics
        where
            #(#user_where,)*
        {
            #(#decls)*
        }

        impl #impl_generics #client #ty_generics for #gs::ServerRef<#net::Connection<#self_ty>>
        where
            #client_bounds
        {
            #(#defs)*
        }
    }
}
