//! The rules a `#[gen_server]` [model](super::model) must follow before code
//! is generated from it, each broken rule reported through the context.
//!
//! Beyond what every behaviour follows
//! ([`behaviour::check`](crate::behaviour::check)): `init` exists, and
//! `#[info]`, `#[handle_continue]`, `#[terminate]` and `#[format_status]`
//! take what their callbacks give, once each.

use syn::spanned::Spanned;

use super::model::{BEHAVIOUR, Server};
use crate::behaviour::check;
use crate::behaviour::model::{Handler, Kind};
use crate::ctxt::Ctxt;

/// Checks the whole server.
pub(crate) fn server(cx: &Ctxt, server: &Server) {
    let block = &server.block;
    check::item(cx, &BEHAVIOUR, block);
    for h in &block.handlers {
        check::handler(cx, &BEHAVIOUR, h, kind_rules);
    }
    check::one_each(
        cx,
        block,
        &[
            Kind::Info,
            Kind::Terminate,
            Kind::Continue,
            Kind::FormatStatus,
        ],
    );
    match &block.init {
        Some(i) => check::init(cx, &BEHAVIOUR, i),
        None => cx.error(
            block.item.self_ty.span(),
            "a #[gen_server] needs an `init` function: `async fn init(args..) -> Result<Self, Reason>` (or `-> Self`)",
        ),
    }
    check::generics(cx, &BEHAVIOUR, block);
}

/// What each kind of handler takes.
fn kind_rules(cx: &Ctxt, h: &Handler) {
    let n = h.params.values().count();
    match h.kind {
        Kind::Info | Kind::Continue if n != 1 => cx.error(
            h.ident.span(),
            "an `#[info]` or `#[handle_continue]` handler takes one `Message` (and, last, the `ServerContext`)",
        ),
        Kind::Terminate if n != 1 => cx.error(
            h.ident.span(),
            "a `#[terminate]` handler takes `&Reason` (and, last, the `ServerContext`)",
        ),
        Kind::FormatStatus => check::format_status(cx, h),
        _ => {}
    }
}
