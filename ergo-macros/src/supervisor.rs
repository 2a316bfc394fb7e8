//! `#[supervisor]`: a supervisor declared as a struct of its children.
//!
//! Each field is a child, started in field order: `Child<Server>` (a
//! GenServer with its typed start arguments) or another `#[supervisor]`
//! struct. The struct gets `spec()`, `start(&node)` and `start_link(&ctx)`,
//! and can itself be a child of another supervisor.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, LitInt, LitStr};

fn strategy(lit: &LitStr) -> syn::Result<TokenStream> {
    Ok(match lit.value().as_str() {
        "one_for_one" => quote!(OneForOne),
        "one_for_all" => quote!(OneForAll),
        "rest_for_one" => quote!(RestForOne),
        other => {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "unknown strategy {other:?}; expected \"one_for_one\", \"one_for_all\" or \"rest_for_one\" (a simple_one_for_one supervisor is built with `SupervisorSpec::simple`)"
                ),
            ));
        }
    })
}

fn restart(lit: &LitStr) -> syn::Result<TokenStream> {
    Ok(match lit.value().as_str() {
        "permanent" => quote!(Permanent),
        "transient" => quote!(Transient),
        "temporary" => quote!(Temporary),
        other => {
            return Err(syn::Error::new(
                lit.span(),
                format!(
                    "unknown restart {other:?}; expected \"permanent\", \"transient\" or \"temporary\""
                ),
            ));
        }
    })
}

pub(crate) fn expand(attr: TokenStream, input: DeriveInput) -> syn::Result<TokenStream> {
    let mut errors: Vec<syn::Error> = Vec::new();
    let mut strat = quote!(OneForOne);
    let mut intensity: u32 = 1;
    let mut period: u64 = 5;
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("strategy") {
            let lit: LitStr = meta.value()?.parse()?;
            match strategy(&lit) {
                Ok(s) => strat = s,
                Err(e) => errors.push(e),
            }
        } else if meta.path.is_ident("intensity") {
            let lit: LitInt = meta.value()?.parse()?;
            intensity = lit.base10_parse()?;
        } else if meta.path.is_ident("period") {
            let lit: LitInt = meta.value()?.parse()?;
            period = lit.base10_parse()?;
        } else {
            return Err(meta.error(
                "unknown supervisor attribute; expected `strategy = \"...\"`, `intensity = N` or `period = SECONDS`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr)?;

    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "`#[supervisor]` goes on a struct whose fields are the children",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new(
            input.ident.span(),
            "`#[supervisor]` needs named fields: each field is a child, named by its id",
        ));
    };

    let mut children = Vec::new();
    let mut stripped = input.clone();
    if let Data::Struct(d) = &mut stripped.data {
        for f in d.fields.iter_mut() {
            f.attrs.retain(|a| !a.path().is_ident("child"));
        }
    }
    for f in &fields.named {
        let ident = f.ident.clone().expect("named field");
        let id = ident.to_string();
        let mut restart_tokens = None;
        let mut shutdown_tokens = None;
        let mut register = false;
        for a in f.attrs.iter().filter(|a| a.path().is_ident("child")) {
            if matches!(a.meta, syn::Meta::Path(_)) {
                continue;
            }
            let r = a.parse_nested_meta(|meta| {
                if meta.path.is_ident("restart") {
                    let lit: LitStr = meta.value()?.parse()?;
                    match restart(&lit) {
                        Ok(r) => restart_tokens = Some(r),
                        Err(e) => errors.push(e),
                    }
                } else if meta.path.is_ident("shutdown") {
                    let v = meta.value()?;
                    if v.peek(LitStr) {
                        let lit: LitStr = v.parse()?;
                        shutdown_tokens = Some(match lit.value().as_str() {
                            "brutal_kill" => quote!(BrutalKill),
                            "infinity" => quote!(Infinity),
                            other => {
                                errors.push(syn::Error::new(
                                    lit.span(),
                                    format!("unknown shutdown {other:?}; expected \"brutal_kill\", \"infinity\" or a number of milliseconds"),
                                ));
                                quote!(Infinity)
                            }
                        });
                    } else {
                        let ms: LitInt = v.parse()?;
                        let ms: u64 = ms.base10_parse()?;
                        shutdown_tokens = Some(quote!(Timeout(::std::time::Duration::from_millis(#ms))));
                    }
                } else if meta.path.is_ident("register") {
                    register = true;
                } else {
                    return Err(meta.error(
                        "unknown child attribute; expected `restart = \"...\"`, `shutdown = ...` or `register`",
                    ));
                }
                Ok(())
            });
            if let Err(e) = r {
                errors.push(e);
            }
        }
        let restart = restart_tokens.map(|r| quote!(.restart(::ergo::Restart::#r)));
        let shutdown = shutdown_tokens.map(|s| quote!(.shutdown(::ergo::Shutdown::#s)));
        let ty = &f.ty;
        children.push(quote_spanned_child(
            ty, &ident, &id, register, restart, shutdown,
        ));
    }
    if let Some(mut first) = errors.pop() {
        for e in errors {
            first.combine(e);
        }
        return Err(first);
    }

    let name = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #stripped

        impl #impl_generics #name #ty_generics #where_clause {
            /// The supervisor's spec: its flags and its children, in field order.
            pub fn spec(self) -> ::ergo::SupervisorSpec {
                ::ergo::SupervisorSpec::new(::ergo::Strategy::#strat)
                    .intensity(#intensity, ::std::time::Duration::from_secs(#period))
                    #(.child(#children))*
            }

            /// Starts the supervisor and its children.
            pub async fn start(self, node: &::ergo::Node) -> ::core::result::Result<::ergo::SupRef, ::ergo::Reason> {
                node.start_supervisor(self.spec()).await
            }

            /// Starts the supervisor linked to the calling process.
            pub async fn start_link(self, ctx: &::ergo::Context) -> ::core::result::Result<::ergo::SupRef, ::ergo::Reason> {
                ctx.start_supervisor_link(self.spec()).await
            }
        }

        impl #impl_generics ::ergo::supervisor::IntoChildSpec for #name #ty_generics #where_clause {
            fn into_child_spec(self, id: ::ergo::etf::Atom, _register: bool) -> ::ergo::ChildSpec {
                ::ergo::ChildSpec::supervisor(id, self.spec())
            }
        }
    })
}

/// `IntoChildSpec::into_child_spec(self.field, id, register)` with options,
/// spanned on the field's type so that a field that cannot be a child is
/// reported there.
fn quote_spanned_child(
    ty: &syn::Type,
    ident: &syn::Ident,
    id: &str,
    register: bool,
    restart: Option<TokenStream>,
    shutdown: Option<TokenStream>,
) -> TokenStream {
    let call = quote::quote_spanned! {ty.span()=>
        <#ty as ::ergo::supervisor::IntoChildSpec>::into_child_spec(
            self.#ident,
            ::ergo::etf::Atom::from(#id),
            #register,
        )
    };
    quote!(#call #restart #shutdown)
}
