//! Reads `#[gen_server(..)]` and its impl block into the [model](super::model).
//!
//! Parsing takes the handler attributes off the methods (the impl block is
//! emitted without them) and records what each method looks like. It reports
//! only what cannot be read at all: an unknown `#[gen_server]` argument, a
//! handler attribute with arguments, two handler attributes on one method.
//! Whether the methods make a server is for [`check`](super::check).

use proc_macro2::TokenStream;
use quote::format_ident;
use syn::spanned::Spanned;
use syn::{FnArg, ImplItem, ImplItemFn, ItemImpl, Signature, Type};

use super::model::{Handler, Init, Kind, Param, Params, Receiver, Server, ServerAttrs};
use crate::ctxt::Ctxt;

/// The model of `#[gen_server(attr)] item`.
pub(crate) fn server(cx: &Ctxt, attr: TokenStream, mut item: ItemImpl) -> Server {
    let attrs = server_attrs(cx, attr);
    let type_name = match &*item.self_ty {
        Type::Path(p) => p.path.segments.last().map(|s| s.ident.clone()),
        _ => None,
    };
    let mut init = None;
    let mut handlers = Vec::new();
    for it in &mut item.items {
        let ImplItem::Fn(f) = it else { continue };
        let kind = take_kind(cx, f);
        if f.sig.ident == "init" {
            init = Some(init_fn(&f.sig, kind.is_some()));
        } else if let Some(kind) = kind {
            handlers.push(handler(kind, f));
        }
    }
    Server {
        item,
        attrs,
        type_name,
        init,
        handlers,
    }
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

/// Takes the handler attribute off `f` and says which it was.
fn take_kind(cx: &Ctxt, f: &mut ImplItemFn) -> Option<Kind> {
    let mut kind = None;
    let mut keep = Vec::new();
    for attr in std::mem::take(&mut f.attrs) {
        let k = Kind::ATTRS
            .iter()
            .find(|(name, _)| attr.path().is_ident(name))
            .map(|&(_, k)| k);
        match k {
            Some(k) => {
                if !matches!(attr.meta, syn::Meta::Path(_)) {
                    cx.error(attr.span(), "handler attributes take no arguments: write `#[call]`, `#[cast]`, `#[info]`, `#[terminate]` or `#[handle_continue]`");
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

/// The parameters after the receiver: each a value, or the context.
fn params<'a>(inputs: impl Iterator<Item = &'a FnArg>) -> Params {
    let list = inputs
        .filter_map(|arg| match arg {
            FnArg::Typed(pt) if is_ctx(&pt.ty) => Some(Param::Ctx { ty: pt.ty.clone() }),
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
fn init_fn(sig: &Signature, has_kind_attr: bool) -> Init {
    Init {
        ident: sig.ident.clone(),
        has_kind_attr,
        receiver: match sig.inputs.first() {
            Some(FnArg::Receiver(_)) => Some(sig.inputs.span()),
            _ => None,
        },
        params: params(sig.inputs.iter()),
        is_async: sig.asyncness.is_some(),
        output: sig.output.clone(),
    }
}

/// A handler method of the given kind.
fn handler(kind: Kind, f: &ImplItemFn) -> Handler {
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
        params: params(sig.inputs.iter()),
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

/// `true` if `ty` is `&mut ServerContext<..>` (or `&ServerContext`).
fn is_ctx(ty: &Type) -> bool {
    match ty {
        Type::Reference(r) => match &*r.elem {
            Type::Path(p) => p
                .path
                .segments
                .last()
                .is_some_and(|s| s.ident == "ServerContext"),
            _ => false,
        },
        _ => false,
    }
}
