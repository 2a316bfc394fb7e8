//! The rules every annotated impl block follows, whichever the macro; each
//! macro's own `check` adds the rules of its handler kinds.
//!
//! Code generation relies on these: after a clean check, the implementing
//! type is a named inherent type generic over types only, `init` takes its
//! arguments by plain name, and every handler borrows `self`, takes
//! plain-named arguments and, last, at most the context.

use syn::spanned::Spanned;
use syn::{Pat, Type};

use super::Behaviour;
use super::model::{Block, Handler, Init, Kind, Param, Params, Receiver};
use crate::ctxt::Ctxt;

/// The impl block itself: an inherent impl of a named type.
pub(crate) fn item(cx: &Ctxt, b: &Behaviour, block: &Block) {
    let Behaviour { attr, example, .. } = b;
    if let Some((_, path, _)) = &block.item.trait_ {
        cx.error(
            path.span(),
            format!(
                "`{attr}` goes on an inherent `impl` block (`impl {example} {{ .. }}`), not a trait impl"
            ),
        );
    }
    if block.type_name.is_none() {
        cx.error(
            block.item.self_ty.span(),
            format!("`{attr}` needs a named type (`impl {example} {{ .. }}`)"),
        );
    }
}

/// The impl block is generic over types only.
pub(crate) fn generics(cx: &Ctxt, b: &Behaviour, block: &Block) {
    let Behaviour { attr, noun, .. } = b;
    if let Some(p) = block
        .item
        .generics
        .params
        .iter()
        .find(|p| !matches!(p, syn::GenericParam::Type(_)))
    {
        cx.error(
            p.span(),
            format!(
                "`{attr}` {noun}s may be generic over types, not lifetimes or constants (a {noun} lives as long as its process)"
            ),
        );
    }
}

/// At most one handler of each of `kinds`.
pub(crate) fn one_each(cx: &Ctxt, block: &Block, kinds: &[Kind]) {
    for &kind in kinds {
        if let Some(second) = block.of(kind).get(1) {
            cx.error(
                second.ident.span(),
                format!("only one {} handler is allowed", kind.attr()),
            );
        }
    }
}

/// What every handler method follows: it borrows `self`, takes plain
/// names (owned ones, for a call or a cast) and the context last, and has
/// no generic parameters of its own. `kind_rules` checks what its kind
/// takes and returns.
pub(crate) fn handler(
    cx: &Ctxt,
    b: &Behaviour,
    h: &Handler,
    kind_rules: impl FnOnce(&Ctxt, &Handler),
) {
    let noun = b.noun;
    match h.receiver {
        Receiver::Borrowed => {}
        Receiver::Owned(span) => cx.error(
            span,
            format!("a handler borrows the {noun}: take `&mut self` (or `&self`), not `self`"),
        ),
        Receiver::Missing => cx.error(
            h.ident.span(),
            format!(
                "a handler is a method of the {noun}: its first parameter is `&mut self` (or `&self`)"
            ),
        ),
    }
    params(
        cx,
        b,
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
    kind_rules(cx, h);
    if let Some(span) = h.own_generics {
        cx.error(
            span,
            "handler methods cannot have generic parameters of their own; put them on the `impl`",
        );
    }
}

/// A `#[format_status]` handler: `fn name(&self) -> T`, not async, no
/// arguments.
pub(crate) fn format_status(cx: &Ctxt, h: &Handler) {
    if h.params.values().count() != 0 || h.params.takes_ctx() || h.is_async || h.ret.is_none() {
        cx.error(
            h.ident.span(),
            "a `#[format_status]` handler is `fn name(&self) -> T` with `T: ToTerm` (the state as operators see it): not async, no arguments",
        )
    }
}

/// `init`: no handler attribute, no `self`, owned arguments by plain name.
pub(crate) fn init(cx: &Ctxt, b: &Behaviour, init: &Init) {
    if init.has_kind_attr {
        cx.error(
            init.ident.span(),
            "`init` is the start function; it takes no handler attribute",
        );
    }
    if let Some(span) = init.receiver {
        cx.error(
            span,
            format!(
                "`init` builds the {}: it takes the start arguments, not `self`",
                b.noun
            ),
        );
    }
    params(cx, b, &init.params, "`init` parameters are plain names");
    owned(
        cx,
        &init.params,
        "`init`'s arguments travel to the new process",
    );
}

/// A type as the user would write it (`&str`, not `& str`).
pub(crate) fn shown(tokens: proc_macro2::TokenStream) -> String {
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
fn params(cx: &Ctxt, b: &Behaviour, params: &Params, not_a_name: &str) {
    let last = params.list.len().saturating_sub(1);
    for (i, p) in params.list.iter().enumerate() {
        match p {
            Param::Ctx { ty } if i != last => {
                cx.error(ty.span(), format!("the `{}` parameter comes last", b.ctx));
            }
            Param::Ctx { .. } | Param::Peer { .. } => {}
            Param::Value { pat, .. } => {
                if !matches!(**pat, Pat::Ident(_)) {
                    cx.error(pat.span(), not_a_name);
                }
            }
        }
    }
}
