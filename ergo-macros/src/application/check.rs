//! The rules an `#[application]` [model](super::model) must follow: it has
//! a name, and each environment value is a literal the runtime can hold.

use syn::spanned::Spanned;
use syn::{Expr, ExprLit, Lit};

use super::model::Application;
use crate::ctxt::Ctxt;

/// Checks the application.
pub(crate) fn application(cx: &Ctxt, app: &Application) {
    for (_, value) in &app.env {
        if env_value(value).is_none() {
            cx.error(
                value.span(),
                "an environment value is a string, integer, float or boolean literal",
            );
        }
    }
    if app.name.is_none() {
        cx.error(
            app.item.ident.span(),
            "an `#[application]` needs a name: `#[application(name = \"my_app\")]`",
        );
    }
}

/// The literal an environment value is, if it is one the runtime holds.
pub(crate) fn env_value(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit {
            lit: lit @ (Lit::Str(_) | Lit::Int(_) | Lit::Float(_) | Lit::Bool(_)),
            ..
        }) => Some(lit),
        _ => None,
    }
}
