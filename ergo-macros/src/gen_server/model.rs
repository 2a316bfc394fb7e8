//! The model of a `#[gen_server]` impl block: the server type, its `init`,
//! and its handler methods, each as plain data.
//!
//! Parsing fills the model in without judging it (a handler that takes
//! `self` by value is still a [`Handler`], with its [`Receiver`] saying so);
//! checking then decides whether the model is one the generated code can
//! serve, and code is only generated from a model that passed.

use proc_macro2::Span;
use syn::{Attribute, Ident, ItemImpl, Pat, ReturnType, Type};

use crate::crate_path::CratePath;

/// One `#[gen_server] impl Type { .. }` block.
pub(crate) struct Server {
    /// The impl block as it is emitted: the handler attributes removed,
    /// everything else as the user wrote it.
    pub(crate) item: ItemImpl,
    /// The arguments of `#[gen_server(..)]`.
    pub(crate) attrs: ServerAttrs,
    /// The last path segment of the implementing type (`Counter` for
    /// `impl Counter`), which names the generated types; `None` when the
    /// type is not a path.
    pub(crate) type_name: Option<Ident>,
    /// The `init` function, if there is one.
    pub(crate) init: Option<Init>,
    /// The methods marked `#[call]`, `#[cast]`, `#[info]`,
    /// `#[handle_continue]`, `#[terminate]` or `#[format_status]`, in source
    /// order.
    pub(crate) handlers: Vec<Handler>,
}

/// The arguments of `#[gen_server(..)]`.
#[derive(Default)]
pub(crate) struct ServerAttrs {
    /// `crate = "path"`: where the runtime is (`::ergo` by default).
    pub(crate) krate: CratePath,
}

/// Which callback a handler method serves.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// `#[call]`: a request with a reply.
    Call,
    /// `#[cast]`: a request without one.
    Cast,
    /// `#[info]`: any other message.
    Info,
    /// `#[terminate]`: the server is stopping.
    Terminate,
    /// `#[handle_continue]`: work continued from another callback.
    Continue,
    /// `#[format_status]`: the state as operators see it.
    FormatStatus,
}

impl Kind {
    /// The handler attribute for each kind, as the user writes it.
    pub(crate) const ATTRS: [(&'static str, Kind); 6] = [
        ("call", Kind::Call),
        ("cast", Kind::Cast),
        ("info", Kind::Info),
        ("terminate", Kind::Terminate),
        ("handle_continue", Kind::Continue),
        ("format_status", Kind::FormatStatus),
    ];

    /// The attribute as written, `#[call]` and so on.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Call => "#[call]",
            Kind::Cast => "#[cast]",
            Kind::Info => "#[info]",
            Kind::Terminate => "#[terminate]",
            Kind::Continue => "#[handle_continue]",
            Kind::FormatStatus => "#[format_status]",
        }
    }
}

/// How a method takes the server.
pub(crate) enum Receiver {
    /// `&self` or `&mut self`.
    Borrowed,
    /// `self` (or `mut self`, `self: Box<Self>`), spanned on it.
    Owned(Span),
    /// No `self` at all.
    Missing,
}

/// One parameter of a handler or of `init`, after the receiver.
pub(crate) enum Param {
    /// A request (or start) argument.
    Value {
        /// The pattern the user wrote; the model accepts any, checking
        /// accepts plain names only.
        pat: Box<Pat>,
        /// The argument's type.
        ty: Box<Type>,
    },
    /// The `&mut ServerContext<Self>` (or `&ServerContext`).
    Ctx {
        /// The parameter's type, where an error about it points.
        ty: Box<Type>,
    },
}

/// The parameters of a handler or of `init`, after the receiver.
pub(crate) struct Params {
    /// Every parameter after the receiver, in order.
    pub(crate) list: Vec<Param>,
}

/// `init`, the start function.
pub(crate) struct Init {
    /// `init`'s name, where errors about it point.
    pub(crate) ident: Ident,
    /// Whether it wrongly carries a handler attribute.
    pub(crate) has_kind_attr: bool,
    /// Whether it takes `self`, where the error points.
    pub(crate) receiver: Option<Span>,
    /// Its parameters.
    pub(crate) params: Params,
    /// `async fn init`.
    pub(crate) is_async: bool,
    /// What it returns.
    pub(crate) output: ReturnType,
}

/// One handler method.
pub(crate) struct Handler {
    /// Which callback it serves.
    pub(crate) kind: Kind,
    /// The method's name.
    pub(crate) ident: Ident,
    /// The request variant's name: the method's, in PascalCase.
    pub(crate) variant: Ident,
    /// `async fn`.
    pub(crate) is_async: bool,
    /// How it takes the server.
    pub(crate) receiver: Receiver,
    /// Its parameters after the receiver.
    pub(crate) params: Params,
    /// Its return type; `None` for `()`.
    pub(crate) ret: Option<Type>,
    /// A generic parameter of its own, which is not allowed, spanned on it.
    pub(crate) own_generics: Option<Span>,
    /// The method's `///` documentation, copied onto what is generated for
    /// it.
    pub(crate) docs: Vec<Attribute>,
}

/// A request argument of a checked handler: its name and type.
pub(crate) struct Arg<'a> {
    /// The parameter's name.
    pub(crate) ident: &'a Ident,
    /// The parameter's type.
    pub(crate) ty: &'a Type,
}

impl Params {
    /// The request (or start) arguments, without the context.
    pub(crate) fn values(&self) -> impl Iterator<Item = (&Pat, &Type)> {
        self.list.iter().filter_map(|p| match p {
            Param::Value { pat, ty } => Some((&**pat, &**ty)),
            Param::Ctx { .. } => None,
        })
    }

    /// The arguments by name, once checking has made sure that each is a
    /// plain name.
    pub(crate) fn args(&self) -> Vec<Arg<'_>> {
        self.values()
            .map(|(pat, ty)| Arg {
                ident: match pat {
                    Pat::Ident(p) => &p.ident,
                    _ => unreachable!("checked: handler parameters are plain names"),
                },
                ty,
            })
            .collect()
    }

    /// Whether the function takes the `ServerContext`.
    pub(crate) fn takes_ctx(&self) -> bool {
        self.list.iter().any(|p| matches!(p, Param::Ctx { .. }))
    }
}
