//! `#[application]`: an application's resource, declared on a type that
//! implements `ergo::Application` (its top supervisor).
//!
//! - [`parse`] reads the attribute into the [`model`];
//! - [`check`] reports every rule the model breaks;
//! - [`codegen`] writes `spec()` from a model that passed.

mod check;
mod codegen;
mod model;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ctxt::Ctxt;

/// Expands `#[application(attr)] item`: the type and its `spec()`, or the
/// type and the errors found. On a misuse the type is still emitted, so the
/// only errors the user sees are about the attribute, not about a type that
/// vanished.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let input: syn::DeriveInput = match syn::parse2(item) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let cx = Ctxt::new();
    let app = parse::application(&cx, attr, input);
    check::application(&cx, &app);
    match cx.check() {
        Ok(()) => codegen::application(&app),
        Err(e) => {
            let item = &app.item;
            let e = e.to_compile_error();
            quote!(#item #e)
        }
    }
}
