//! `#[supervisor]`: a supervisor declared as a struct of its children.
//!
//! Each field is a child, started in field order: `Child<Server>` (a
//! GenServer with its typed start arguments) or another `#[supervisor]`
//! struct. The struct gets `spec()`, `start(&node)` and `start_link(&ctx)`,
//! and can itself be a child of another supervisor.
//!
//! - [`parse`] reads the attribute and the struct into the [`model`];
//! - [`check`] reports every rule the model breaks;
//! - [`codegen`] writes the struct's impls from a model that passed.

mod check;
mod codegen;
mod model;
mod parse;

use proc_macro2::TokenStream;
use quote::quote;

use crate::ctxt::Ctxt;

/// Expands `#[supervisor(attr)] item`: the struct (without its `#[child]`
/// attributes) and its impls, or the struct and the errors found. On a
/// misuse the struct is still emitted, so the only errors the user sees are
/// about the attribute, not about a type that vanished.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let input: syn::DeriveInput = match syn::parse2(item) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let cx = Ctxt::new();
    let sup = parse::supervisor(&cx, attr, input);
    check::supervisor(&cx, &sup);
    match cx.check() {
        Ok(()) => codegen::supervisor(&sup),
        Err(e) => {
            let item = &sup.item;
            let e = e.to_compile_error();
            quote!(#item #e)
        }
    }
}
