//! The rules a `#[connection]` [model](super::model) must follow before
//! code is generated from it, each broken rule reported through the
//! context.
//!
//! Beyond what every behaviour follows
//! ([`behaviour::check`](crate::behaviour::check)):
//! - a start function exists (`#[init]`, or named `init`), once, and takes
//!   the peer's address (`SocketAddr`) at most once;
//! - a `#[data]` handler exists, once, and takes the bytes as `Bytes`;
//! - `#[closed]`, `#[info]` and `#[terminate]` take what their callbacks
//!   give, once each; `#[data]` and `#[closed]` return nothing or a
//!   `Flow`;
//! - no call or cast is named as one of `ServerRef`'s own methods, which
//!   would hide it.

use syn::spanned::Spanned;

use super::model::{BEHAVIOUR, Conn, ONCE};
use crate::behaviour::check::{self, shown};
use crate::behaviour::last_segment_is;
use crate::behaviour::model::{Handler, Kind};
use crate::ctxt::Ctxt;

/// `ServerRef`'s own methods (and those of the traits every one has),
/// which a client method of the same name could not be reached beside.
const SERVER_REF_METHODS: &[&str] = &[
    "new",
    "at",
    "pid",
    "dest",
    "call",
    "call_timeout",
    "call_map",
    "wait",
    "cast",
    "stop",
    "clone",
    "fmt",
];

/// Checks the whole connection handler.
pub(crate) fn connection(cx: &Ctxt, conn: &Conn) {
    let block = &conn.block;
    check::item(cx, &BEHAVIOUR, block);
    for h in &block.handlers {
        check::handler(cx, &BEHAVIOUR, h, kind_rules);
    }
    check::one_each(cx, block, &ONCE);
    match &block.init {
        Some(i) => {
            check::init(cx, &BEHAVIOUR, i);
            for ty in i.params.peers().skip(1) {
                cx.error(
                    ty.span(),
                    "`init` takes the peer's address once: a `SocketAddr` parameter is the peer, not a start argument",
                );
            }
        }
        None => cx.error(
            block.item.self_ty.span(),
            "a #[connection] needs a start function, marked `#[init]` (or named `init`): `#[init] async fn init(args.., peer: SocketAddr, ctx: &mut ConnContext<Self>) -> Result<Self, Reason>` (or `-> Self`), where `peer` and `ctx` may be left out",
        ),
    }
    if let Some(span) = block.extra_init {
        cx.error(
            span,
            "a connection has one start function: this is a second (marked `#[init]`, or named `init`)",
        );
    }
    if block.one(Kind::Data).is_none() {
        cx.error(
            block.item.self_ty.span(),
            "a #[connection] reads its peer: it needs a `#[data]` handler, `fn data(&mut self, data: Bytes, ctx: &mut ConnContext<Self>)`, given the bytes as they arrive",
        );
    }
    for h in block.of(Kind::Call).into_iter().chain(block.of(Kind::Cast)) {
        let name = h.ident.to_string();
        if SERVER_REF_METHODS.contains(&name.as_str()) {
            cx.error(
                h.ident.span(),
                format!(
                    "the client method `{name}` would be hidden by `ServerRef`'s own `{name}`: give this {} another name",
                    if h.kind == Kind::Call { "call" } else { "cast" }
                ),
            );
        }
    }
    check::generics(cx, &BEHAVIOUR, block);
}

/// What each kind of handler takes and returns.
fn kind_rules(cx: &Ctxt, h: &Handler) {
    let n = h.params.values().count();
    match h.kind {
        Kind::Data => {
            let mut values = h.params.values();
            match (values.next(), values.next()) {
                (Some((_, ty)), None) => {
                    if !last_segment_is(ty, "Bytes") {
                        cx.error(
                            ty.span(),
                            format!(
                                "a `#[data]` handler takes the bytes the peer sent as `Bytes` (`ergo::Bytes`): `data: Bytes`, not `{}`",
                                shown(quote::quote!(#ty))
                            ),
                        );
                    }
                }
                _ => cx.error(
                    h.ident.span(),
                    "a `#[data]` handler takes the bytes the peer sent, `data: Bytes` (and, last, the `ConnContext`)",
                ),
            }
            returns_flow(
                cx,
                h,
                "a `#[data]` handler returns nothing (the connection reads on) or a `Flow`",
            );
        }
        Kind::Closed => {
            if n != 0 {
                cx.error(
                    h.ident.span(),
                    "a `#[closed]` handler takes nothing but, if it needs it, the `ConnContext`",
                );
            }
            returns_flow(
                cx,
                h,
                "a `#[closed]` handler returns nothing (the connection then ends, `normal`) or a `Flow` (`Flow::Continue` keeps its process up)",
            );
        }
        Kind::Info if n != 1 => cx.error(
            h.ident.span(),
            "an `#[info]` handler takes one `Message` (and, last, the `ConnContext`)",
        ),
        Kind::Terminate if n != 1 => cx.error(
            h.ident.span(),
            "a `#[terminate]` handler takes `&Reason` (and, last, the `ConnContext`)",
        ),
        _ => {}
    }
}

/// The handler returns nothing or a `Flow`; `msg` otherwise, on the type.
fn returns_flow(cx: &Ctxt, h: &Handler, msg: &str) {
    if let Some(ty) = &h.ret
        && !last_segment_is(ty, "Flow")
    {
        cx.error(ty.span(), msg);
    }
}
