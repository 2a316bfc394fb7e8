//! Reads `#[connection(..)]` and its impl block into the
//! [model](super::model).
//!
//! The impl block is read as every behaviour's is ([`behaviour::parse`]),
//! with `init`'s `SocketAddr` parameter read as the peer; this module adds
//! the attribute's one argument, `crate = "path"`. It reports only what
//! cannot be read at all; whether the methods make a connection handler is
//! for [`check`](super::check).

use proc_macro2::TokenStream;
use syn::ItemImpl;

use super::model::{BEHAVIOUR, Conn, ConnAttrs};
use crate::behaviour;
use crate::ctxt::Ctxt;

/// The model of `#[connection(attr)] item`.
pub(crate) fn connection(cx: &Ctxt, attr: TokenStream, item: ItemImpl) -> Conn {
    let attrs = conn_attrs(cx, attr);
    let block = behaviour::parse::block(cx, &BEHAVIOUR, item);
    Conn { block, attrs }
}

/// The arguments of `#[connection(..)]`: `crate = "path"`, or nothing.
fn conn_attrs(cx: &Ctxt, attr: TokenStream) -> ConnAttrs {
    let mut out = ConnAttrs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            out.krate.parse_value(cx, &meta)
        } else {
            Err(meta.error(
                "unknown `#[connection]` argument; the only one is `crate = \"path\"`, the path to the ergo crate (`::ergo` by default)",
            ))
        }
    });
    cx.ok(syn::parse::Parser::parse2(parser, attr));
    out
}
