//! `crate = "path"`: where the generated code finds the runtime.
//!
//! Generated code names the runtime by an absolute path (`::ergo` for
//! `#[gen_server]`, `#[supervisor]` and `#[application]`, `::ergo::etf` for
//! `#[derive(Term)]`). A crate that reaches ergo under another name, through
//! a re-export or a renamed dependency, says where with `crate = "path"`;
//! this module reads that value the same way for every macro.

use proc_macro2::{Span, TokenStream};
use quote::ToTokens;
use syn::meta::ParseNestedMeta;
use syn::spanned::Spanned;
use syn::{LitStr, Path};

use crate::ctxt::Ctxt;

/// The runtime's path as the user gave it with `crate = "..."`, or the
/// default when they did not.
#[derive(Debug, Clone, Default)]
pub(crate) struct CratePath(Option<(Path, Span)>);

impl CratePath {
    /// Reads the value of a `crate = "path"` argument into `self`: a string
    /// literal holding a plain path (`"::ergo"`, `"my_reexport::ergo"`),
    /// given once. A malformed value is reported through `cx`.
    pub(crate) fn parse_value(&mut self, cx: &Ctxt, meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
        let value = meta.value()?;
        if !value.peek(LitStr) {
            let expr: syn::Expr = value.parse()?;
            cx.error(
                expr.span(),
                "`crate` takes the path as a string: `crate = \"::ergo\"` or `crate = \"my_reexport::ergo\"`",
            );
            return Ok(());
        }
        let lit: LitStr = value.parse()?;
        let Some(path) = parse_path(cx, &lit) else {
            return Ok(());
        };
        if self.0.is_some() {
            cx.error(meta.path.span(), "`crate` is given twice");
        }
        self.0 = Some((path, lit.span()));
        Ok(())
    }

    /// The path to generate: the user's, or `default`.
    pub(crate) fn tokens_or(&self, default: TokenStream) -> TokenStream {
        match &self.0 {
            Some((p, _)) => p.to_token_stream(),
            None => default,
        }
    }

    /// The user's path followed by `::etf`, as the string literal a
    /// generated `#[term(crate = "...")]` takes, spanned on the user's
    /// `crate` value; `default` (at the call site) when no path was given.
    pub(crate) fn etf_lit_or(&self, default: &str) -> LitStr {
        match &self.0 {
            Some((p, span)) => {
                let mut s = String::new();
                if p.leading_colon.is_some() {
                    s.push_str("::");
                }
                for (i, seg) in p.segments.iter().enumerate() {
                    if i > 0 {
                        s.push_str("::");
                    }
                    s.push_str(&seg.ident.to_string());
                }
                s.push_str("::etf");
                LitStr::new(&s, *span)
            }
            None => LitStr::new(default, Span::call_site()),
        }
    }
}

/// The path inside `lit`; `None`, with the error reported, when it is not a
/// plain path (one without generic arguments).
fn parse_path(cx: &Ctxt, lit: &LitStr) -> Option<Path> {
    let value = lit.value();
    let path = match lit.parse::<Path>() {
        Ok(p) => p,
        Err(_) => {
            cx.error(
                lit.span(),
                format!(
                    "`crate = {value:?}` is not a path; write the path to the crate, such as `crate = \"::ergo\"` or `crate = \"my_reexport::ergo\"`"
                ),
            );
            return None;
        }
    };
    if path.segments.iter().any(|s| !s.arguments.is_none()) {
        cx.error(
            lit.span(),
            format!(
                "`crate = {value:?}` has generic arguments; a crate path is plain names joined by `::`"
            ),
        );
        return None;
    }
    Some(path)
}
