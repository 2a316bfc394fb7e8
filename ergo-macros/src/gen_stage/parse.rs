//! Reads `#[gen_stage(..)]` and its impl block into the [model](super::model).
//!
//! The impl block is read as every behaviour's is ([`behaviour::parse`]);
//! this module adds the attribute's arguments, `out = T` and
//! `crate = "path"`. It reports only what cannot be read at all; whether
//! the methods make a stage is for [`check`](super::check).

use proc_macro2::TokenStream;
use syn::ItemImpl;
use syn::spanned::Spanned;

use super::model::{BEHAVIOUR, Stage, StageAttrs};
use crate::behaviour;
use crate::ctxt::Ctxt;

/// The model of `#[gen_stage(attr)] item`.
pub(crate) fn stage(cx: &Ctxt, attr: TokenStream, item: ItemImpl) -> Stage {
    let attrs = stage_attrs(cx, attr);
    let block = behaviour::parse::block(cx, &BEHAVIOUR, item);
    Stage { block, attrs }
}

/// The arguments of `#[gen_stage(..)]`: `out = T` and `crate = "path"`,
/// each optional.
fn stage_attrs(cx: &Ctxt, attr: TokenStream) -> StageAttrs {
    let mut out = StageAttrs::default();
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("crate") {
            out.krate.parse_value(cx, &meta)
        } else if meta.path.is_ident("out") {
            let ty: syn::Type = meta.value()?.parse()?;
            if out.out.is_some() {
                cx.error(meta.path.span(), "`out` is given twice");
            }
            out.out = Some(ty);
            Ok(())
        } else if meta.path.is_ident("in") {
            Err(meta.error(
                "`#[gen_stage]` takes no `in`: the events a stage takes are those of its `#[events]` handler, `fn name(&mut self, events: Vec<E>)`",
            ))
        } else {
            Err(meta.error(
                "unknown `#[gen_stage]` argument; it takes `out = T`, the type of the events the stage emits (none when not given), and `crate = \"path\"`, the path to the ergo crate (`::ergo` by default)",
            ))
        }
    });
    cx.ok(syn::parse::Parser::parse2(parser, attr));
    out
}
