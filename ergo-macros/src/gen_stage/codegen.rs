//! Generates a `#[gen_stage]`'s code from its checked [model](super::model).
//!
//! The output is, after the impl block itself:
//! - `<Type>Call`, `<Type>Cast` and `<Type>Reply`, as every behaviour's
//!   ([`behaviour::codegen`](crate::behaviour::codegen));
//! - [`gen_stage_impl`]: the `GenStage` impl, with `In` taken from the
//!   `#[events]` handler and `Out` from `out = T`;
//! - [`client`]: `<Type>Client`, a trait implemented for
//!   `StageRef<Type>` with one method per call and cast (the runtime's
//!   `StageRef` is a foreign type, so its methods come by a trait of the
//!   user's crate; it subscribes the stage as it is).
//!
//! Every runtime item is named through the crate path (`::ergo` unless the
//! user gave `crate = "..."`).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::Type;
use syn::spanned::Spanned;

use super::model::{BEHAVIOUR, Source, Stage};
use crate::behaviour::codegen::{
    ClientFn, ClientSend, Gen, call_arms, cast_arms, client_call, client_cast, flow_of, init_body,
    invoke, reply_enum, request_enums,
};
use crate::behaviour::model::{Handler, Kind};
use crate::behaviour::{last_segment_is, unwrap_named};

/// The code for a stage that passed its checks.
pub(crate) fn stage(stage: &Stage) -> TokenStream {
    let g = Gen::new(&stage.block, &stage.attrs.krate, BEHAVIOUR.attr);
    let item = &stage.block.item;
    let (call_enum, cast_enum) = request_enums(&g);
    let reply_enum = reply_enum(&g);
    let gen_stage_impl = gen_stage_impl(&g, stage);
    let client = client(&g);
    quote! {
        #item

        #call_enum

        #reply_enum

        #cast_enum

        #gen_stage_impl

        #client
    }
}

/// The `GenStage` impl: the associated types, `init`, the call and cast
/// dispatch, and a method per stage callback the user wrote.
fn gen_stage_impl(g: &Gen<'_>, stage: &Stage) -> TokenStream {
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
    let st = quote!(#krate::gen_stage);
    let block = &stage.block;
    let in_ty: Type = block
        .one(Kind::Events)
        .and_then(|h| {
            h.params
                .values()
                .find(|(_, ty)| Source::of(h.kind, ty) == Some(Source::Events))
                .and_then(|(_, ty)| unwrap_named(ty, "Vec"))
                .cloned()
        })
        .unwrap_or_else(|| syn::parse_quote!(#st::NoEvents));
    let out_ty: Type = stage
        .attrs
        .out
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(#st::NoEvents));
    let (impl_generics, _, _) = block.item.generics.split_for_impl();
    // Spanned on the user's types, so that an event type that is not a
    // term is reported where it was written.
    let in_bound = quote_spanned! {in_ty.span()=>
        #in_ty: #krate::etf::FromTerm + ::core::marker::Send + 'static,
    };
    let out_bound = quote_spanned! {out_ty.span()=>
        #out_ty: #krate::etf::ToTerm + ::core::marker::Send + 'static,
    };
    let stage_bounds = quote! {
        #(#user_where,)*
        Self: ::core::marker::Send + 'static,
        #in_bound
        #out_bound
        #call_enum #call_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #cast_enum #cast_tg: #krate::etf::FromTerm + ::core::marker::Send + 'static,
        #reply_enum #reply_tg: #krate::etf::ToTerm + ::core::marker::Send + 'static,
    };
    let ctx_ty = quote!(&mut #st::StageContext<Self>);
    let init = init_body(g);
    let call_arms = call_arms(g);
    let cast_arms = cast_arms(g);
    let call = |h: &Handler| {
        let args: Vec<TokenStream> = h
            .params
            .values()
            .map(|(_, ty)| {
                let source = Source::of(h.kind, ty).expect("checked: every parameter fits");
                let b = format_ident!("{}", source.binding());
                quote!(#b)
            })
            .collect();
        invoke(h, &args)
    };
    let demand_impl = block.one(Kind::Demand).map(|h| {
        let body = events_flow(g, h, call(h));
        quote! {
            async fn handle_demand(&mut self, __demand: usize, __ctx: #ctx_ty) -> #gs::Flow {
                #body
            }
        }
    });
    let events_impl = block.one(Kind::Events).map(|h| {
        let body = events_flow(g, h, call(h));
        quote! {
            async fn handle_events(
                &mut self,
                __events: ::std::vec::Vec<Self::In>,
                __from: #st::Subscription,
                __ctx: #ctx_ty,
            ) -> #gs::Flow {
                #body
            }
        }
    });
    let subscribe_impl = block.one(Kind::Subscribe).map(|h| {
        let c = call(h);
        let body = match &h.ret {
            None => quote!({
                let _ = #c;
                ::core::result::Result::Ok(#st::Demand::Automatic)
            }),
            Some(t) if last_segment_is(t, "Result") => c,
            Some(_) => quote!(::core::result::Result::Ok(#c)),
        };
        quote! {
            async fn handle_subscribe(
                &mut self,
                __role: #st::Role,
                __opts: &[(#krate::etf::Atom, #krate::etf::Term)],
                __from: #st::Subscription,
                __ctx: #ctx_ty,
            ) -> ::core::result::Result<#st::Demand, #krate::Reason> {
                #body
            }
        }
    });
    let cancel_impl = block.one(Kind::Cancel).map(|h| {
        let body = flow_of(g, h, call(h));
        quote! {
            async fn handle_cancel(
                &mut self,
                __cancel: #st::Cancel,
                __from: #st::Subscription,
                __ctx: #ctx_ty,
            ) -> #gs::Flow {
                #body
            }
        }
    });
    let info_impl = block.one(Kind::Info).map(|h| {
        let body = flow_of(g, h, call(h));
        quote! {
            async fn handle_info(&mut self, __msg: #krate::Message, __ctx: #ctx_ty) -> #gs::Flow {
                #body
            }
        }
    });
    let terminate_impl = block.one(Kind::Terminate).map(|h| {
        let c = call(h);
        quote! {
            async fn terminate(&mut self, __reason: &#krate::Reason, __ctx: #ctx_ty) {
                let _ = #c;
            }
        }
    });
    let format_status_impl = block.one(Kind::FormatStatus).map(|h| {
        let ident = &h.ident;
        quote! {
            fn format_status(&self) -> ::core::option::Option<#krate::Term> {
                ::core::option::Option::Some(#krate::etf::ToTerm::into_term(self.#ident()))
            }
        }
    });
    let format_discarded_impl = block.one(Kind::FormatDiscarded).map(|h| {
        let c = call(h);
        let body = match &h.ret {
            None => quote!({
                let _ = #c;
                true
            }),
            Some(_) => c,
        };
        quote! {
            fn format_discarded(&mut self, __excess: usize) -> bool {
                #body
            }
        }
    });
    quote! {
        impl #impl_generics #st::GenStage for #self_ty
        where
            #stage_bounds
        {
            type Args = #args_ty;
            type In = #in_ty;
            type Out = #out_ty;
            type Call = #call_enum #call_tg;
            type Reply = #reply_enum #reply_tg;
            type Cast = #cast_enum #cast_tg;

            async fn init(__args: Self::Args, __ctx: #ctx_ty) -> ::core::result::Result<#st::Init<Self>, #krate::Reason> {
                #init
            }

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

            #demand_impl
            #events_impl
            #subscribe_impl
            #cancel_impl
            #info_impl
            #terminate_impl
            #format_status_impl
            #format_discarded_impl
        }
    }
}

/// A `#[demand]`'s or `#[events]`' result as a `Flow`: the handler's own,
/// `Continue` after emitting the `Vec` it returned, or `Continue`.
fn events_flow(g: &Gen<'_>, h: &Handler, call: TokenStream) -> TokenStream {
    let gs = &g.gs;
    match &h.ret {
        Some(t) if unwrap_named(t, "Vec").is_some() => {
            // Spanned on the return type: events of the wrong type are
            // reported there.
            let emit = quote_spanned! {t.span()=> __ctx.emit(__out); };
            quote!({
                let __out = #call;
                #emit
                #gs::Flow::Continue
            })
        }
        _ => flow_of(g, h, call),
    }
}

/// `<Type>Client`: a trait of the stage's calls and casts, implemented for
/// `StageRef<Type>`; nothing when the stage has neither.
fn client(g: &Gen<'_>) -> TokenStream {
    let Gen {
        type_name,
        self_ty,
        krate,
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
    let st = quote!(#krate::gen_stage);
    let client = format_ident!("{}Client", type_name);
    let (impl_generics, ty_generics, _) = g.block.item.generics.split_for_impl();
    let client_bounds = quote! {
        #(#user_where,)*
        #self_ty: #st::GenStage<
            Call = #call_enum #call_tg,
            Reply = #reply_enum #reply_tg,
            Cast = #cast_enum #cast_tg,
        >,
    };
    let wrap_call = |req: TokenStream| quote!(#st::StageCall::User(#req));
    let wrap_reply = |pat: TokenStream| quote!(#st::StageReply::User(#pat));
    let send = ClientSend {
        server: quote!(self.server()),
        caster: quote!(self),
        wrap_call: &wrap_call,
        wrap_reply: &wrap_reply,
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
        " The calls and casts of [`{type_name}`], as methods of its `StageRef` (`#[gen_stage]`); bring the trait into scope to use them."
    );
    quote! {
        #[doc = #client_doc]
        pub trait #client #impl_generics
        where
            #(#user_where,)*
        {
            #(#decls)*
        }

        impl #impl_generics #client #ty_generics for #st::StageRef<#self_ty>
        where
            #client_bounds
        {
            #(#defs)*
        }
    }
}
