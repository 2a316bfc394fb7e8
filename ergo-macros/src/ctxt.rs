//! The error context every macro reports through.
//!
//! A macro's parse and check phases do not stop at the first mistake: each
//! error is recorded in a [`Ctxt`], spanned on the token the user wrote, and
//! [`Ctxt::check`] hands them all back at once, combined into one
//! `syn::Error`, so that the user sees every mistake of one expansion in one
//! compile. A context that is dropped without being checked panics: an error
//! recorded but never reported would otherwise vanish, and the macro would go
//! on to generate code from a model it had found wrong.

use std::cell::RefCell;
use std::fmt::Display;

use proc_macro2::Span;

/// Collects the errors of one macro expansion.
///
/// It is shared by reference (`&Ctxt`), so that the closures given to
/// `syn`'s attribute parsers can report errors while they fill in the
/// model. Call [`Ctxt::check`] once, after the last error can have been
/// reported and before any code is generated.
#[derive(Debug)]
pub(crate) struct Ctxt {
    /// `None` once [`Ctxt::check`] has taken the errors.
    errors: RefCell<Option<Vec<syn::Error>>>,
}

impl Ctxt {
    /// A context with no errors yet.
    pub(crate) fn new() -> Self {
        Ctxt {
            errors: RefCell::new(Some(Vec::new())),
        }
    }

    /// Records `msg` at `span`: the first token of what the user wrote
    /// (`thing.span()`, with `syn::spanned::Spanned` in scope).
    pub(crate) fn error(&self, span: Span, msg: impl Display) {
        self.syn_error(syn::Error::new(span, msg));
    }

    /// Records an error `syn` produced, such as a literal of the wrong kind.
    pub(crate) fn syn_error(&self, err: syn::Error) {
        self.errors
            .borrow_mut()
            .as_mut()
            .expect("Ctxt used after check()")
            .push(err);
    }

    /// Records the error of `result`, if it is one, and hands back its value.
    pub(crate) fn ok<T>(&self, result: syn::Result<T>) -> Option<T> {
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                self.syn_error(e);
                None
            }
        }
    }

    /// Every error recorded, in the order they were recorded, combined into
    /// one; `Ok` if there were none. Consumes the context.
    pub(crate) fn check(self) -> syn::Result<()> {
        let errors = self.errors.borrow_mut().take().expect("Ctxt checked twice");
        let mut iter = errors.into_iter();
        match iter.next() {
            None => Ok(()),
            Some(mut first) => {
                for e in iter {
                    first.combine(e);
                }
                Err(first)
            }
        }
    }
}

impl Drop for Ctxt {
    fn drop(&mut self) {
        if !std::thread::panicking() && self.errors.borrow().is_some() {
            panic!("a macro's Ctxt was dropped without check(): its errors would be lost");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Ctxt;
    use proc_macro2::Span;

    #[test]
    fn no_errors_is_ok() {
        assert!(Ctxt::new().check().is_ok());
    }

    #[test]
    fn every_error_is_reported_in_order() {
        let cx = Ctxt::new();
        cx.error(Span::call_site(), "first");
        cx.syn_error(syn::Error::new(Span::call_site(), "second"));
        assert_eq!(
            cx.ok::<()>(Err(syn::Error::new(Span::call_site(), "third"))),
            None
        );
        assert_eq!(cx.ok(Ok(1)), Some(1));
        let err = cx.check().unwrap_err();
        let messages: Vec<String> = err.into_iter().map(|e| e.to_string()).collect();
        assert_eq!(messages, ["first", "second", "third"]);
    }

    #[test]
    #[should_panic(expected = "without check()")]
    fn dropping_unchecked_panics() {
        let cx = Ctxt::new();
        cx.error(Span::call_site(), "lost");
    }

    #[test]
    #[should_panic(expected = "without check()")]
    fn dropping_unchecked_panics_even_without_errors() {
        let _cx = Ctxt::new();
    }
}
