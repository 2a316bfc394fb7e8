//! Generates an `#[application]`'s `spec()` from its checked
//! [model](super::model): the `AppSpec` built from the attribute's values,
//! with the type's `Application::supervisor` as the top supervisor.

use proc_macro2::TokenStream;
use quote::quote;
use syn::Lit;

use super::check::env_value;
use super::model::Application;

/// The type and its `spec()`, for an application that passed its checks.
pub(crate) fn application(app: &Application) -> TokenStream {
    let krate = app.krate.tokens_or(quote!(::ergo));
    let input = &app.item;
    let ident = &input.ident;
    let name = app.name.as_ref().expect("checked: a name");
    let description = &app.description;
    let version = &app.version;
    let env_calls = app.env.iter().map(|(k, v)| {
        let v = match env_value(v).expect("checked: a literal") {
            Lit::Int(i) => quote!(#i as i64),
            other => quote!(#other),
        };
        quote!(.env(#k, #v))
    });
    let dep_calls = app.applications.iter().map(|d| quote!(.depends_on(#d)));
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    quote! {
        #input

        impl #impl_generics #ident #ty_generics #where_clause {
            /// The application's spec: its name, description, version,
            /// dependencies, environment and top supervisor.
            pub fn spec() -> #krate::AppSpec {
                #krate::AppSpec::new(#name, <Self as #krate::Application>::supervisor)
                    .description(#description)
                    .version(#version)
                    #(#dep_calls)*
                    #(#env_calls)*
            }
        }
    }
}
