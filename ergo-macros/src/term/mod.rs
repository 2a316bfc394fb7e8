//! `#[derive(Term)]`: the four conversion traits (`ToTerm`, `FromTerm`,
//! `Encode`, `Decode`) for a struct or enum.
//!
//! - [`parse`] reads the type and its `#[term(..)]` attributes into the
//!   [`model`], naming each atom and key by [`case`] rules;
//! - [`check`] reports every rule the model breaks;
//! - [`lower`] gives each struct or variant of a checked model its Erlang
//!   shape, and [`codegen`] writes the four traits from those shapes.

mod case;
mod check;
mod codegen;
mod lower;
mod model;
mod parse;

use proc_macro2::TokenStream;

use crate::ctxt::Ctxt;

/// Expands `#[derive(Term)]` on `item`: the four impls, or the errors found.
pub(crate) fn expand(item: TokenStream) -> TokenStream {
    let input: syn::DeriveInput = match syn::parse2(item) {
        Ok(input) => input,
        Err(e) => return e.to_compile_error(),
    };
    let cx = Ctxt::new();
    let container = parse::container(&cx, &input);
    check::container(&cx, &container);
    match cx.check() {
        Ok(()) => codegen::derive(&container),
        Err(e) => e.to_compile_error(),
    }
}
