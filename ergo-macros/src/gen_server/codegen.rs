//! Generates a `#[gen_server]`'s code from its checked [model](super::model).
//!
//! The output is, after the impl block itself:
//! - `<Type>Call`, `<Type>Cast` and `<Type>Reply`, as every behaviour's
//!   ([`behaviour::codegen`](crate::behaviour::codegen));
//! - [`gen_server_impl`]: the `GenServer` impl, whose dispatch is an
//!   exhaustive `match`;
//! - [`client`]: `<Type>Ref`, a typed handle with one method per call and
//!   cast.
//!
//! Every runtime item is named through the crate path (`::ergo` unless the
//! user gave `crate = "..."`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::model::{BEHAVIOUR, Server};
use crate::behaviour::codegen::{
    ClientFn, ClientSend, Gen, call_arms, cast_arms, client_call, client_cast, flow_of, init_body,
    invoke, reply_enum, request_enums, start_params,
};
use crate::behaviour::model::Kind;

/// The code for a server that passed its checks.
pub(crate) fn server(server: &Server) -> TokenStream {
    let g = Gen::new(&server.block, &server.attrs.krate, BEHAVIOUR.attr);
    let item = &server.block.item;
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
    let (impl_generics, _, _) = g.block.item.generics.split_for_impl();
    let server_bounds = quote! {
        #(#user_where,)*
        Self: ::core::marker::Send + 'static,
        #call_enum #call_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #cast_enum #cast_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #reply_enum #reply_tg: #krate::etf::ToTerm + ::core::marker::Send + 'static,
    };
    let init = init_body(g);
    let call_arms = call_arms(g);
    let cast_arms = cast_arms(g);
    let one = |k: Kind| g.block.one(k);
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
                    #call_arms
                }
            }

            async fn handle_cast(&mut self, __request: #cast_enum #cast_tg, __ctx: &mut #gs::ServerContext<Self>) -> #gs::Flow {
                let _ = &__ctx;
                match __request {
                    #cast_arms
                }
            }

            #info_impl
            #continue_impl
            #terminate_impl
            #format_status_impl
        }
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
        call_tg,
        cast_tg,
        reply_tg,
        args_ty,
        user_where,
        ..
    } = g;
    let client = format_ident!("{}Ref", type_name);
    let vis = quote!(pub);
    let (impl_generics, ty_generics, _) = g.block.item.generics.split_for_impl();
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
    let (init_params, pack) = start_params(g);
    let send = ClientSend {
        server: quote!(self.0),
        caster: quote!(self.0),
        wrap_call: &|req| req,
        wrap_reply: &|pat| pat,
        future_bounds: quote!(),
    };
    let inherent = |f: ClientFn| {
        let ClientFn { docs, sig, body } = f;
        quote! {
            #(#docs)*
            pub #sig
            #body
        }
    };
    let client_calls: Vec<TokenStream> = g
        .calls
        .iter()
        .flat_map(|h| client_call(g, h, &send))
        .map(inherent)
        .collect();
    let client_casts = g.casts.iter().map(|h| inherent(client_cast(g, h, &send)));
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
