//! The rules a `#[gen_server]` [model](super::model) must follow before code
//! is generated from it, each broken rule reported through the context.
//!
//! Code generation relies on these: after a clean check, the server type is
//! a named inherent type generic over types only, `init` exists and takes
//! its arguments by plain name, and every handler borrows the server, takes
//! plain-named arguments and, last, at most the `ServerContext`.

use syn::spanned::Spanned;
use syn::{Pat, Type};

use super::model::{Handler, Init, Kind, Param, Params, Receiver, Server};
use crate::ctxt::Ctxt;

/// Checks the whole server.
pub(crate) fn server(cx: &Ctxt, server: &Server) {
    if let Some((_, path, _)) = &server.item.trait_ {
        cx.error(
            path.span(),
            "`#[gen_server]` goes on an inherent `impl` block (`impl MyServer { .. }`), not a trait impl",
        );
    }
    if server.type_name.is_none() {
        cx.error(
            server.item.self_ty.span(),
            "`#[gen_server]` needs a named type (`impl MyServer { .. }`)",
        );
    }
    for h in &server.handlers {
        handler(cx, h);
    }
    for kind in [
        Kind::Info,
        Kind::Terminate,
        Kind::Continue,
        Kind::FormatStatus,
    ] {
        if let Some(second) = server.handlers.iter().filter(|h| h.kind == kind).nth(1) {
            cx.error(
                second.ident.span(),
                format!("only one {} handler is allowed", kind.attr()),
            );
        }
    }
    match &server.init {
        Some(i) => init(cx, i),
        None => cx.error(
            server.item.self_ty.span(),
            "a #[gen_server] needs an `init` function: `async fn init(args..) -> Result<Self, Reason>` (or `-> Self`)",
        ),
    }
    if let Some(p) = server
        .item
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, syn::GenericParam::Type(_)))
    {
        cx.error(
            p.span(),
            "`#[gen_server]` servers may be generic over types, not lifetimes or constants (a server lives as long as its process)",
        );
    }
}

/// Checks one handler method.
fn handler(cx: &Ctxt, h: &Handler) {
    match h.receiver {
        Receiver::Borrowed => {}
        Receiver::Owned(span) => cx.error(
            span,
            "a handler borrows the server: take `&mut self` (or `&self`), not `self`",
        ),
        Receiver::Missing => cx.error(
            h.ident.span(),
            "a handler is a method of the server: its first parameter is `&mut self` (or `&self`)",
        ),
    }
    params(
        cx,
        &h.params,
        "handler parameters are plain names (`n: i64`), not patterns",
    );
    if matches!(h.kind, Kind::Call | Kind::Cast) {
        owned(
            cx,
            &h.params,
            "a call's or cast's arguments travel in a message",
        );
    }
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
        Kind::FormatStatus if n != 0 || h.params.takes_ctx() || h.is_async || h.ret.is_none() => {
            cx.error(
                h.ident.span(),
                "a `#[format_status]` handler is `fn name(&self) -> T` with `T: ToTerm` (the state as operators see it): not async, no arguments",
            )
        }
        _ => {}
    }
    if let Some(span) = h.own_generics {
        cx.error(
            span,
            "handler methods cannot have generic parameters of their own; put them on the `impl`",
        );
    }
}

/// Checks `init`.
fn init(cx: &Ctxt, init: &Init) {
    if init.has_kind_attr {
        cx.error(
            init.ident.span(),
            "`init` is the start function; it takes no handler attribute",
        );
    }
    if let Some(span) = init.receiver {
        cx.error(
            span,
            "`init` builds the server: it takes the start arguments, not `self`",
        );
    }
    params(cx, &init.params, "`init` parameters are plain names");
    owned(
        cx,
        &init.params,
        "`init`'s arguments travel to the new process",
    );
}

/// A type as the user would write it (`&str`, not `& str`).
fn shown(tokens: proc_macro2::TokenStream) -> String {
    tokens
        .to_string()
        .replace("& ", "&")
        .replace(" <", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace("[ ", "[")
        .replace(" ]", "]")
}

/// Arguments that travel in a message are owned values: a borrowed type
/// gets an error that names the owned one to take instead.
fn owned(cx: &Ctxt, params: &Params, why: &str) {
    for p in &params.list {
        let Param::Value { ty, .. } = p else {
            continue;
        };
        let Type::Reference(r) = &**ty else {
            continue;
        };
        let instead = match &*r.elem {
            Type::Path(t) if t.path.is_ident("str") => "`String`".to_string(),
            Type::Slice(s) => {
                let elem = &s.elem;
                format!("`Vec<{}>`", shown(quote::quote!(#elem)))
            }
            elem => format!("`{}`", shown(quote::quote!(#elem))),
        };
        cx.error(
            ty.span(),
            format!(
                "{why}, so they are owned values: take {instead} instead of `{}`",
                shown(quote::quote!(#ty))
            ),
        );
    }
}

/// Each parameter is a plain name, and the context, if taken, comes last.
fn params(cx: &Ctxt, params: &Params, not_a_name: &str) {
    let last = params.list.len().saturating_sub(1);
    for (i, p) in params.list.iter().enumerate() {
        match p {
            Param::Ctx { ty } if i != last => {
                cx.error(ty.span(), "the `ServerContext` parameter comes last");
            }
            Param::Ctx { .. } => {}
            Param::Value { pat, .. } => {
                if !matches!(**pat, Pat::Ident(_)) {
                    cx.error(pat.span(), not_a_name);
                }
            }
        }
    }
}
