//! Reads `#[supervisor(..)]` and its struct into the
//! [model](super::model): the flags, and each field's `#[child(..)]`
//! options. Unknown arguments and values of the wrong kind are reported
//! here; whether the words given are known is for [`check`](super::check).

use proc_macro2::TokenStream;
use syn::{Data, DeriveInput, Fields, LitInt, LitStr};

use super::model::{Child, Children, Shutdown, Supervisor, SupervisorAttrs};
use crate::ctxt::Ctxt;

/// The model of `#[supervisor(attr)] input`.
pub(crate) fn supervisor(cx: &Ctxt, attr: TokenStream, input: DeriveInput) -> Supervisor {
    let attrs = supervisor_attrs(cx, attr);
    let children = match &input.data {
        Data::Struct(data) => match &data.fields {
            Fields::Named(fields) => {
                Children::Fields(fields.named.iter().map(|f| child(cx, f)).collect())
            }
            _ => Children::NotNamed(input.ident.span()),
        },
        _ => Children::NotAStruct(input.ident.span()),
    };
    let mut item = input;
    if let Data::Struct(data) = &mut item.data {
        for f in data.fields.iter_mut() {
            f.attrs.retain(|a| !a.path().is_ident("child"));
        }
    }
    Supervisor {
        item,
        attrs,
        children,
    }
}

fn supervisor_attrs(cx: &Ctxt, attr: TokenStream) -> SupervisorAttrs {
    let mut out = SupervisorAttrs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("strategy") {
            out.strategy = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("intensity") {
            let lit: LitInt = meta.value()?.parse()?;
            out.intensity = lit.base10_parse()?;
        } else if meta.path.is_ident("period") {
            let lit: LitInt = meta.value()?.parse()?;
            out.period = lit.base10_parse()?;
        } else if meta.path.is_ident("crate") {
            out.krate.parse_value(cx, &meta)?;
        } else {
            return Err(meta.error(
                "unknown supervisor attribute; expected `strategy = \"...\"`, `intensity = N`, `period = SECONDS` or `crate = \"path\"`",
            ));
        }
        Ok(())
    });
    cx.ok(syn::parse::Parser::parse2(parser, attr));
    out
}

/// A field and its `#[child(..)]` options.
fn child(cx: &Ctxt, f: &syn::Field) -> Child {
    let mut out = Child {
        ident: f.ident.clone().expect("named field"),
        ty: f.ty.clone(),
        restart: None,
        shutdown: None,
        register: false,
    };
    for a in f.attrs.iter().filter(|a| a.path().is_ident("child")) {
        if matches!(a.meta, syn::Meta::Path(_)) {
            continue;
        }
        let r = a.parse_nested_meta(|meta| {
            if meta.path.is_ident("restart") {
                out.restart = Some(meta.value()?.parse()?);
            } else if meta.path.is_ident("shutdown") {
                let v = meta.value()?;
                out.shutdown = Some(if v.peek(LitStr) {
                    Shutdown::Named(v.parse()?)
                } else {
                    let ms: LitInt = v.parse()?;
                    Shutdown::Millis(ms.base10_parse()?)
                });
            } else if meta.path.is_ident("register") {
                out.register = true;
            } else {
                return Err(meta.error(
                    "unknown child attribute; expected `restart = \"...\"`, `shutdown = ...` or `register`",
                ));
            }
            Ok(())
        });
        cx.ok(r);
    }
    out
}
