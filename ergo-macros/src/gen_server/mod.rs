//! `#[gen_server]`: turns an annotated `impl` block into a GenServer.
//!
//! - [`parse`] reads the attribute and the impl block into the [`model`];
//! - [`check`] reports every rule the model breaks;
//! - [`codegen`] writes the request and reply enums, the `GenServer` impl
//!   and the typed client from a model that passed.

mod check;
mod codegen;
mod model;
mod parse;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// Expands `#[gen_server(attr)] item`: the impl block and everything
/// generated for it, or the errors found.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item: syn::ItemImpl = match syn::parse2(item) {
        Ok(item) => item,
        Err(e) => return e.to_compile_error(),
    };
    let cx = Ctxt::new();
    let server = parse::server(&cx, attr, item);
    check::server(&cx, &server);
    match cx.check() {
        Ok(()) => codegen::server(&server),
        Err(e) => e.to_compile_error(),
    }
}
