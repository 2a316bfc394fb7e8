//! `#[application]`: an application's resource, declared on a type that
//! implements `ergo::Application` (its top supervisor).

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{DeriveInput, Lit, LitStr};

pub(crate) fn expand(attr: TokenStream, input: DeriveInput) -> syn::Result<TokenStream> {
    let mut name: Option<LitStr> = None;
    let mut description = String::new();
    let mut version = String::new();
    let mut deps: Vec<LitStr> = Vec::new();
    let mut env: Vec<(String, Lit)> = Vec::new();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("description") {
            description = meta.value()?.parse::<LitStr>()?.value();
        } else if meta.path.is_ident("version") {
            version = meta.value()?.parse::<LitStr>()?.value();
        } else if meta.path.is_ident("applications") {
            let value = meta.value()?;
            let content;
            syn::bracketed!(content in value);
            let list = content.parse_terminated(|p| p.parse::<LitStr>(), syn::Token![,])?;
            deps.extend(list);
        } else if meta.path.is_ident("env") {
            meta.parse_nested_meta(|kv| {
                let key = kv
                    .path
                    .get_ident()
                    .ok_or_else(|| kv.error("an environment key is a plain name"))?
                    .to_string();
                let expr: syn::Expr = kv.value()?.parse()?;
                let value = match expr {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: lit @ (Lit::Str(_) | Lit::Int(_) | Lit::Float(_) | Lit::Bool(_)),
                        ..
                    }) => lit,
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "an environment value is a string, integer, float or boolean literal",
                        ));
                    }
                };
                env.push((key, value));
                Ok(())
            })?;
        } else {
            return Err(meta.error(
                "unknown application attribute; expected `name`, `description`, `version`, `applications = [...]` or `env(key = value, ...)`",
            ));
        }
        Ok(())
    });
    syn::parse::Parser::parse2(parser, attr)?;
    let ident = &input.ident;
    let Some(name) = name else {
        return Err(syn::Error::new(
            ident.span(),
            "an `#[application]` needs a name: `#[application(name = \"my_app\")]`",
        ));
    };
    let env_calls = env.iter().map(|(k, v)| {
        let v = match v {
            Lit::Int(i) => quote!(#i as i64),
            other => quote!(#other),
        };
        quote!(.env(#k, #v))
    });
    let dep_calls = deps.iter().map(|d| quote!(.depends_on(#d)));
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        #input

        impl #impl_generics #ident #ty_generics #where_clause {
            /// The application's spec: its name, description, version,
            /// dependencies, environment and top supervisor.
            pub fn spec() -> ::ergo::AppSpec {
                ::ergo::AppSpec::new(#name, <Self as ::ergo::Application>::supervisor)
                    .description(#description)
                    .version(#version)
                    #(#dep_calls)*
                    #(#env_calls)*
            }
        }
    })
}
