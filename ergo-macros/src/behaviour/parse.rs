//! Reads an annotated impl block into the [model](super::model).
//!
//! Parsing takes the handler attributes off the methods (the impl block is
//! emitted without them) and records what each method looks like. It reports
//! only what cannot be read at all: a handler attribute with arguments, two
//! handler attributes on one method. Whether the methods make a server or a
//! stage is for [`check`](super::check) and the macro's own checks.

use quote::format_ident;
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Signature, Type};

use super::model::{Block, Handler, Init, Kind, Param, Params, Receiver};
use super::{Behaviour, last_segment_is};
use crate::ctxt::Ctxt;

/// The model of the impl block `item`, read as `b`'s macro reads it.
///
/// The start function is the method named `init` or, where `b` accepts
/// it, the one marked `#[init]`.
pub(crate) fn block(cx: &Ctxt, b: &Behaviour, mut item: ItemImpl) -> Block {
    let type_name = match &*item.self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let mut init = None;
    let mut extra_init = None;
    let mut handlers = Vec::new();
    for it in &mut item.items {
        let ImplItem::Fn(f) = it else { continue };
        let kind = take_kind(cx, b, f);
        if kind == Some(Kind::Init) || f.sig.ident == "init" {
            let has_kind_attr = kind.is_some_and(|k| k != Kind::Init);
            if init.is_some() {
                extra_init = Some(f.sig.ident.span());
            } else {
                init = Some(init_fn(b, &f.sig, has_kind_attr));
            }
        } else if let Some(kind) = kind {
            handlers.push(handler(b, kind, f));
        }
    }
    Block {
        item,
        type_name,
        init,
        extra_init,
        handlers,
    }
}

/// Takes the handler attribute off `f` and says which it was.
fn take_kind(cx: &Ctxt, b: &Behaviour, f: &mut ImplItemFn) -> Option<Kind> {
    let mut kind = None;
    let mut keep = Vec::new();
    for attr in std::mem::take(&mut f.attrs) {
        let k = b
            .kinds
            .iter()
            .find(|(name, _)| attr.path().is_ident(name))
            .map(|&(_, k)| k);
        match k {
            Some(k) => {
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    cx.error(attr.span(), b.attr_with_args);
                }
                if kind.is_some() {
                    cx.error(attr.span(), "a method can be one kind of handler only");
                }
                kind = Some(k);
            }
            None => keep.push(attr),
        }
    }
    f.attrs = keep;
    kind
}

/// The parameters after the receiver: each a value, or the context, or
/// (where `peer` names its type) the peer's address.
fn params<'a>(
    b: &Behaviour,
    peer: Option<&str>,
    inputs: impl Iterator<Item = &'a FnArg>,
) -> Params {
    let list = inputs
        .filter_map(|arg| match arg {
            FnArg::Typed(pt) if is_ctx(b, &pt.ty) => Some(Param::Ctx { ty: pt.ty.clone() }),
            FnArg::Typed(pt) if peer.is_some_and(|p| last_segment_is(&pt.ty, p)) => {
                Some(Param::Peer { ty: pt.ty.clone() })
            }
            FnArg::Typed(pt) => Some(Param::Value {
                pat: pt.pat.clone(),
                ty: pt.ty.clone(),
            }),
            FnArg::Receiver(_) => None,
        })
        .collect();
    Params { list }
}

/// `init`, which may wrongly carry a handler attribute.
fn init_fn(b: &Behaviour, sig: &Signature, has_kind_attr: bool) -> Init {
    Init {
        ident: sig.ident.clone(),
        has_kind_attr,
        receiver: match sig.inputs.first() {
            Some(FnArg::Receiver(_)) => Some(sig.inputs.span()),
            _ => None,
        },
        params: params(b, b.init_peer, sig.inputs.iter()),
        is_async: sig.asyncness.is_some(),
        output: sig.output.clone(),
    }
}

/// A handler method of the given kind.
fn handler(b: &Behaviour, kind: Kind, f: &ImplItemFn) -> Handler {
    let sig = &f.sig;
    let receiver = match sig.inputs.first() {
        Some(FnArg::Receiver(r)) if r.reference.is_some() => Receiver::Borrowed,
        Some(FnArg::Receiver(r)) => Receiver::Owned(r.span()),
        _ => Receiver::Missing,
    };
    Handler {
        kind,
        ident: sig.ident.clone(),
        variant: format_ident!(
            "{}",
            pascal(&sig.ident.to_string()),
            span = sig.ident.span()
        ),
        is_async: sig.asyncness.is_some(),
        receiver,
        params: params(b, None, sig.inputs.iter()),
        ret: match &sig.output {
            syn::ReturnType::Default => None,
            syn::ReturnType::Type(_, t) => Some((**t).clone()),
        },
        own_generics: sig.generics.params.first().map(|g| g.span()),
        docs: f
            .attrs
            .iter()
            .filter(|a| a.path().is_ident("doc"))
            .cloned()
            .collect(),
    }
}

/// `add_item` → `AddItem`.
fn pascal(name: &str) -> String {
    name.split('_')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect::<String>(),
                None => String::new(),
            }
        })
        .collect()
}

/// `true` if `ty` is a reference to one of `b`'s context types
/// (`&mut ServerContext<..>`, `&ServerContext`).
fn is_ctx(b: &Behaviour, ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) => p
                .path
                .segments
                .last()
                .is_some_and(|s| b.ctx_types.iter().any(|c| s.ident == c)),
            _ => false,
        },
        _ => false,
    }
}
