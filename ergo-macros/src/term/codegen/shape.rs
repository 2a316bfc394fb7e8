//! The shape a struct or variant is described as in conversion errors
//! (`{add, integer}`), as an expression built when the error is.

use proc_macro2::TokenStream;
use quote::quote;

use super::field_shape;
use crate::term::lower::{Body, Shape};
use crate::term::model::Field;

/// A `format!` expression for the shape, e.g. `{add, integer}`.
pub(super) fn shape_expr(shape: &Shape<'_>) -> TokenStream {
    let live: Vec<&Field> = shape.live().collect();
    let shapes: Vec<TokenStream> = live.iter().map(|f| field_shape(f)).collect();
    match &shape.body {
        Body::Atom(name) => quote!(__etf::__private::PrivateCow::Borrowed(#name)),
        Body::Transparent => shapes
            .into_iter()
            .next()
            .unwrap_or_else(|| quote!(__etf::__private::PrivateCow::Borrowed("term"))),
        Body::Tuple { tag } => {
            let mut fmt = String::from("{{");
            let mut parts = Vec::new();
            if let Some(t) = tag {
                fmt.push_str(&t.replace('{', "{{").replace('}', "}}"));
                if !shapes.is_empty() {
                    fmt.push_str(", ");
                }
            }
            for (i, s) in shapes.iter().enumerate() {
                if i > 0 {
                    fmt.push_str(", ");
                }
                fmt.push_str("{}");
                parts.push(s.clone());
            }
            fmt.push_str("}}");
            quote!(__etf::__private::PrivateCow::Owned(
                ::std::format!(#fmt, #(#parts),*)
            ))
        }
        Body::Map { .. } | Body::Proplist => {
            let (open, close, arrow) = match &shape.body {
                Body::Proplist => ("[", "]", None),
                _ => ("#{{", "}}", Some(" => ")),
            };
            let mut fmt = String::new();
            let (tag, module) = match &shape.body {
                Body::Map { tag, module } => (tag.clone(), module.clone()),
                _ => (None, None),
            };
            if let Some(t) = &tag {
                fmt.push_str("{{");
                fmt.push_str(&t.replace('{', "{{").replace('}', "}}"));
                fmt.push_str(", ");
            }
            fmt.push_str(open);
            let mut first = true;
            if let Some(m) = &module {
                fmt.push_str(&format!("__struct__ => '{m}'"));
                first = false;
            }
            for f in &live {
                if !first {
                    fmt.push_str(", ");
                }
                first = false;
                match arrow {
                    Some(a) => {
                        fmt.push_str(&f.key);
                        fmt.push_str(a);
                        fmt.push_str("{}");
                    }
                    None => {
                        fmt.push_str("{{");
                        fmt.push_str(&f.key);
                        fmt.push_str(", {}}}");
                    }
                }
            }
            fmt.push_str(close);
            if tag.is_some() {
                fmt.push_str("}}");
            }
            quote!(__etf::__private::PrivateCow::Owned(
                ::std::format!(#fmt, #(#shapes),*)
            ))
        }
    }
}
