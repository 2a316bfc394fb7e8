//! Generates a `#[supervisor]`'s impls from its checked
//! [model](super::model): `spec()` (the flags and a child spec per field,
//! in field order), `start`, `start_link`, and `IntoChildSpec`, which makes
//! the struct a child of another supervisor.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, Type};

use super::model::{Child, Children, Shutdown, Supervisor};

/// The struct and its impls, for a supervisor that passed its checks.
pub(crate) fn supervisor(sup: &Supervisor) -> TokenStream {
    let Children::Fields(children) = &sup.children else {
        unreachable!("checked: a struct with named fields")
    };
    let krate = sup.attrs.krate.tokens_or(quote!(::ergo));
    let strat = match sup.attrs.strategy.as_ref().map(|l| l.value()).as_deref() {
        None | Some("one_for_one") => quote!(OneForOne),
        Some("one_for_all") => quote!(OneForAll),
        Some("rest_for_one") => quote!(RestForOne),
        Some(other) => unreachable!("checked: unknown strategy {other:?}"),
    };
    let intensity = sup.attrs.intensity;
    let period = sup.attrs.period;
    let children: Vec<TokenStream> = children.iter().map(|c| child(sup, &krate, c)).collect();
    let stripped = &sup.item;
    let name = &sup.item.ident;
    let (impl_generics, ty_generics, where_clause) = sup.item.generics.split_for_impl();
    quote! {
        #stripped

        impl #impl_generics #name #ty_generics #where_clause {
            /// The supervisor's spec: its flags and its children, in field order.
            pub fn spec(self) -> #krate::SupervisorSpec {
                #krate::SupervisorSpec::new(#krate::Strategy::#strat)
                    .intensity(#intensity, ::std::time::Duration::from_secs(#period))
                    #(.child(#children))*
            }

            /// Starts the supervisor and its children.
            pub async fn start(self, node: &#krate::Node) -> ::core::result::Result<#krate::SupRef, #krate::Reason> {
                node.start_supervisor(self.spec()).await
            }

            /// Starts the supervisor linked to the calling process.
            pub async fn start_link(self, ctx: &#krate::Context) -> ::core::result::Result<#krate::SupRef, #krate::Reason> {
                ctx.start_supervisor_link(self.spec()).await
            }
        }

        impl #impl_generics #krate::supervisor::IntoChildSpec for #name #ty_generics #where_clause {
            fn into_child_spec(self, id: #krate::etf::Atom, _register: bool) -> #krate::ChildSpec {
                #krate::ChildSpec::supervisor(id, self.spec())
            }
        }
    }
}

/// One child's spec: `IntoChildSpec::into_child_spec(self.field, id,
/// register)` with its options.
fn child(sup: &Supervisor, krate: &TokenStream, c: &Child) -> TokenStream {
    let call = into_child_spec(sup, &c.ty, &c.ident, c.register);
    let restart = c.restart.as_ref().map(|lit| {
        let r = match lit.value().as_str() {
            "permanent" => quote!(Permanent),
            "transient" => quote!(Transient),
            "temporary" => quote!(Temporary),
            other => unreachable!("checked: unknown restart {other:?}"),
        };
        quote!(.restart(#krate::Restart::#r))
    });
    let shutdown = c.shutdown.as_ref().map(|s| {
        let s = match s {
            Shutdown::Named(lit) => match lit.value().as_str() {
                "brutal_kill" => quote!(BrutalKill),
                "infinity" => quote!(Infinity),
                other => unreachable!("checked: unknown shutdown {other:?}"),
            },
            Shutdown::Millis(ms) => quote!(Timeout(::std::time::Duration::from_millis(#ms))),
        };
        quote!(.shutdown(#krate::Shutdown::#s))
    });
    quote!(#call #restart #shutdown)
}

/// The call, spanned on the field's type so that a field that cannot be a
/// child is reported there.
fn into_child_spec(sup: &Supervisor, ty: &Type, ident: &Ident, register: bool) -> TokenStream {
    let id = ident.to_string();
    let krate = sup
        .attrs
        .krate
        .tokens_or(quote_spanned!(ty.span()=> ::ergo));
    quote_spanned! {ty.span()=>
        <#ty as #krate::supervisor::IntoChildSpec>::into_child_spec(
            self.#ident,
            #krate::etf::Atom::from(#id),
            #register,
        )
    }
}
