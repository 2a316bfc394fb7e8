//! `#[connection]`: turns an annotated `impl` block into a daemon's
//! connection handler (`ergo::net::Handler`).
//!
//! It shares its reading, rules and request types with `#[gen_server]` and
//! `#[gen_stage]` ([`crate::behaviour`]):
//! - [`parse`] reads the attribute and the impl block into the [`model`];
//! - [`check`] reports every rule the model breaks;
//! - [`codegen`] writes the request and reply enums, the `Handler` impl
//!   and the typed client trait from a model that passed.

mod check;
mod codegen;
mod model;
mod parse;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// Expands `#[connection(attr)] item`: the impl block and everything
/// generated for it, or the errors found.
pub(crate) fn expand(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item: syn::ItemImpl = match syn::parse2(item) {
        Ok(item) => item,
        Err(e) => return e.to_compile_error(),
    };
    let cx = Ctxt::new();
    let conn = parse::connection(&cx, attr, item);
    check::connection(&cx, &conn);
    match cx.check() {
        Ok(()) => codegen::connection(&conn),
        Err(e) => e.to_compile_error(),
    }
}
