//! Procedural macros for `ergo`.
//!
//! Each macro is built as serde_derive is: parse the input into a model,
//! check the model (collecting every error, each spanned on the token the
//! user wrote), then generate code.

use proc_macro::TokenStream;

mod term;

/// Derives `ToTerm`, `FromTerm`, `Encode` and `Decode` for a struct or enum.
///
/// See the `ergo_etf` crate documentation for the Erlang shapes it maps to.
#[proc_macro_derive(Term, attributes(term))]
pub fn derive_term(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    term::expand(input)
        .unwrap_or_else(|errors| errors.to_compile_error())
        .into()
}
