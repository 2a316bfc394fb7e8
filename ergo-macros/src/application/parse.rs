//! Reads `#[application(..)]` into the [model](super::model). Unknown
//! arguments and values of the wrong kind are reported here; the rules the
//! values must follow are for [`check`](super::check).

use proc_macro2::TokenStream;
use syn::{DeriveInput, LitStr};

use super::model::Application;
use crate::crate_path::CratePath;
use crate::ctxt::Ctxt;

/// The model of `#[application(attr)] item`.
pub(crate) fn application(cx: &Ctxt, attr: TokenStream, item: DeriveInput) -> Application {
    let mut app = Application {
        item,
        name: None,
        description: String::new(),
        version: String::new(),
        applications: Vec::new(),
        env: Vec::new(),
        krate: CratePath::default(),
    };
    let parser = syn::meta::parser(|meta| {
        if meta.path.is_ident("name") {
            app.name = Some(meta.value()?.parse()?);
        } else if meta.path.is_ident("description") {
            app.description = meta.value()?.parse::<LitStr>()?.value();
        } else if meta.path.is_ident("version") {
            app.version = meta.value()?.parse::<LitStr>()?.value();
        } else if meta.path.is_ident("applications") {
            let value = meta.value()?;
            let content;
            syn::bracketed!(content in value);
            let list = content.parse_terminated(|p| p.parse::<LitStr>(), syn::Token![,])?;
            app.applications.extend(list);
        } else if meta.path.is_ident("env") {
            meta.parse_nested_meta(|kv| {
                let key = kv.path.get_ident().map(|k| k.to_string());
                if key.is_none() {
                    cx.syn_error(kv.error("an environment key is a plain name"));
                }
                let value: syn::Expr = kv.value()?.parse()?;
                if let Some(key) = key {
                    app.env.push((key, value));
                }
                Ok(())
            })?;
        } else if meta.path.is_ident("crate") {
            app.krate.parse_value(cx, &meta)?;
        } else {
            return Err(meta.error(
                "unknown application attribute; expected `name`, `description`, `version`, `applications = [...]`, `env(key = value, ...)` or `crate = \"path\"`",
            ));
        }
        Ok(())
    });
    cx.ok(syn::parse::Parser::parse2(parser, attr));
    app
}
