//! Reads `#[gen_server(..)]` and its impl block into the [model](super::model).
//!
//! The impl block is read as every behaviour's is ([`behaviour::parse`]);
//! this module adds the attribute's arguments. It reports only what cannot
//! be read at all: an unknown `#[gen_server]` argument, a handler attribute
//! with arguments, two handler attributes on one method. Whether the
//! methods make a server is for [`check`](super::check).

use proc_macro2::TokenStream;
use syn::ItemImpl;

use super::model::{BEHAVIOUR, Server, ServerAttrs};
use crate::behaviour;
use crate::ctxt::Ctxt;

/// The model of `#[gen_server(attr)] item`.
pub(crate) fn server(cx: &Ctxt, attr: TokenStream, item: ItemImpl) -> Server {
    let attrs = server_attrs(cx, attr);
    let block = behaviour::parse::block(cx, &BEHAVIOUR, item);
    Server { block, attrs }
}

/// The arguments of `#[gen_server(..)]`: `crate = "path"`, or nothing.
fn server_attrs(cx: &Ctxt, attr: TokenStream) -> ServerAttrs {
    let mut out = ServerAttrs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            out.krate.parse_value(cx, &meta)
        } else {
            Err(meta.error(
                "unknown `#[gen_server]` argument; the only one is `crate = \"path\"`, the path to the ergo crate (`::ergo` by default)",
            ))
        }
    });
    cx.ok(syn::parse::Parser::parse2(parser, attr));
    out
}
