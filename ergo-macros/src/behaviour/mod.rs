//! What `#[gen_server]`, `#[gen_stage]` and `#[connection]` share: each
//! turns an `impl` block of handler methods into a behaviour's trait impl,
//! typed request enums and a typed client.
//!
//! - [`model`]: the impl block, its `init` and its handlers;
//! - [`parse`]: the impl block read into the model, for any of the macros;
//! - [`check`]: the rules every handler and `init` follow, whichever the
//!   macro (each macro adds its own);
//! - [`codegen`]: the request and reply enums, the call and cast dispatch,
//!   `init`'s body and the client's call and cast methods.
//!
//! Where they differ in wording (the macro's name, what the process is
//! called, the context's type) or in what `init` is given, a [`Behaviour`]
//! says how.

pub(crate) mod check;
pub(crate) mod codegen;
pub(crate) mod model;
pub(crate) mod parse;

use model::Kind;
use syn::{PathArguments, Type};

/// How one macro names things, for the shared parts' messages and
/// parsing.
pub(crate) struct Behaviour {
    /// The attribute, as errors name it: `#[gen_server]`.
    pub(crate) attr: &'static str,
    /// What the process is called: `server`.
    pub(crate) noun: &'static str,
    /// A type name for examples in messages: `MyServer`.
    pub(crate) example: &'static str,
    /// The handler attributes the macro accepts, as written, and their
    /// kinds.
    pub(crate) kinds: &'static [(&'static str, Kind)],
    /// The error for a handler attribute given arguments.
    pub(crate) attr_with_args: &'static str,
    /// The context's type name as messages say it: `ServerContext`.
    pub(crate) ctx: &'static str,
    /// The type names a parameter's referent may have to be the context.
    pub(crate) ctx_types: &'static [&'static str],
    /// The type name (last path segment) of an `init` parameter that is
    /// not a start argument but the peer's address, which the behaviour's
    /// `init` is given (`SocketAddr` for `#[connection]`); `None` where
    /// every `init` parameter is a start argument.
    pub(crate) init_peer: Option<&'static str>,
}

/// The type inside `Name<T>` when `ty`'s last segment is `Name`.
pub(crate) fn unwrap_named<'a>(ty: &'a Type, name: &str) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let seg = p.path.segments.last()?;
    if seg.ident != name {
        return None;
    }
    match &seg.arguments {
        PathArguments::AngleBracketed(a) => a.args.iter().find_map(|g| match g {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        }),
        _ => None,
    }
}

/// `true` if `ty` is a path whose last segment is `name` (`Flow`,
/// `gen_server::Flow`).
pub(crate) fn last_segment_is(ty: &Type, name: &str) -> bool {
    matches!(ty, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == name))
}
