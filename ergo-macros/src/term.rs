//! `#[derive(Term)]` (in progress).

pub(crate) fn expand(_input: syn::DeriveInput) -> Result<proc_macro2::TokenStream, syn::Error> {
    Ok(proc_macro2::TokenStream::new())
}
