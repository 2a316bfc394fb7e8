//! The model of an annotated `impl` block that `#[gen_server]`,
//! `#[gen_stage]` and `#[connection]` share: the implementing type, its
//! `init`, and its handler methods, each as plain data.
//!
//! Parsing fills the model in without judging it (a handler that takes
//! `self` by value is still a [`Handler`], with its [`Receiver`] saying so);
//! checking then decides whether the model is one the generated code can
//! serve, and code is only generated from a model that passed.

use proc_macro2::Span;
use syn::{Attribute, Ident, ItemImpl, Pat, ReturnType, Type};

/// One annotated `impl Type { .. }` block.
pub(crate) struct Block {
    /// The impl block as it is emitted: the handler attributes removed,
    /// everything else as the user wrote it.
    pub(crate) item: ItemImpl,
    /// The last path segment of the implementing type (`Counter` for
    /// `impl Counter`), which names the generated types; `None` when the
    /// type is not a path.
    pub(crate) type_name: Option<Ident>,
    /// The start function, if there is one.
    pub(crate) init: Option<Init>,
    /// A second start function, where the error about it points.
    pub(crate) extra_init: Option<Span>,
    /// The methods marked with a handler attribute, in source order.
    pub(crate) handlers: Vec<Handler>,
}

/// Which callback a handler method serves.
///
/// Each macro accepts some of them (its [`Behaviour::kinds`]); an attribute
/// it does not accept stays on the method, and the compiler reports it as
/// unknown.
///
/// [`Behaviour::kinds`]: super::Behaviour::kinds
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// `#[init]`: the start function, under a name of the user's choosing
    /// (`#[gen_stage]`).
    Init,
    /// `#[call]`: a request with a reply.
    Call,
    /// `#[cast]`: a request without one.
    Cast,
    /// `#[info]`: any other message.
    Info,
    /// `#[terminate]`: the process is stopping.
    Terminate,
    /// `#[handle_continue]`: work continued from another callback
    /// (`#[gen_server]`).
    Continue,
    /// `#[format_status]`: the state as operators see it.
    FormatStatus,
    /// `#[demand]`: consumers asked for more events (`#[gen_stage]`).
    Demand,
    /// `#[events]`: events from a producer (`#[gen_stage]`).
    Events,
    /// `#[subscribe]`: a subscription begins (`#[gen_stage]`).
    Subscribe,
    /// `#[cancel]`: a subscription ended (`#[gen_stage]`).
    Cancel,
    /// `#[format_discarded]`: the buffer dropped events (`#[gen_stage]`).
    FormatDiscarded,
    /// `#[data]`: bytes from the peer (`#[connection]`).
    Data,
    /// `#[closed]`: the peer closed its side (`#[connection]`).
    Closed,
}

impl Kind {
    /// The attribute as written, `#[call]` and so on.
    pub(crate) fn attr(self) -> &'static str {
        match self {
            Kind::Init => "#[init]",
            Kind::Call => "#[call]",
            Kind::Cast => "#[cast]",
            Kind::Info => "#[info]",
            Kind::Terminate => "#[terminate]",
            Kind::Continue => "#[handle_continue]",
            Kind::FormatStatus => "#[format_status]",
            Kind::Demand => "#[demand]",
            Kind::Events => "#[events]",
            Kind::Subscribe => "#[subscribe]",
            Kind::Cancel => "#[cancel]",
            Kind::FormatDiscarded => "#[format_discarded]",
            Kind::Data => "#[data]",
            Kind::Closed => "#[closed]",
        }
    }
}

/// How a method takes the implementing type.
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
    /// A request (or start, or callback) argument.
    Value {
        /// The pattern the user wrote; the model accepts any, checking
        /// accepts plain names only.
        pat: Box<Pat>,
        /// The argument's type.
        ty: Box<Type>,
    },
    /// The context (`&mut ServerContext<Self>`, `&mut StageContext<Self>`).
    Ctx {
        /// The parameter's type, where an error about it points.
        ty: Box<Type>,
    },
    /// `init`'s parameter of the type a macro's [`Behaviour::init_peer`]
    /// names: the peer's address, given to `init` rather than a start
    /// argument (`#[connection]`'s `SocketAddr`).
    ///
    /// [`Behaviour::init_peer`]: super::Behaviour::init_peer
    Peer {
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
    /// Its name, where errors about it point and what the generated code
    /// calls.
    pub(crate) ident: Ident,
    /// Whether it wrongly carries a handler attribute (other than
    /// `#[init]`).
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
    /// How it takes the implementing type.
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

impl Block {
    /// The handlers of `kind`, in source order.
    pub(crate) fn of(&self, kind: Kind) -> Vec<&Handler> {
        self.handlers.iter().filter(|h| h.kind == kind).collect()
    }

    /// The first handler of `kind`.
    pub(crate) fn one(&self, kind: Kind) -> Option<&Handler> {
        self.handlers.iter().find(|h| h.kind == kind)
    }
}

impl Params {
    /// The request (or start) arguments, without the context (or the
    /// peer).
    pub(crate) fn values(&self) -> impl Iterator<Item = (&Pat, &Type)> {
        self.list.iter().filter_map(|p| match p {
            Param::Value { pat, ty } => Some((&**pat, &**ty)),
            Param::Ctx { .. } | Param::Peer { .. } => None,
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

    /// Whether the function takes the context.
    pub(crate) fn takes_ctx(&self) -> bool {
        self.list.iter().any(|p| matches!(p, Param::Ctx { .. }))
    }

    /// The types of the peer parameters (at most one, once checked).
    pub(crate) fn peers(&self) -> impl Iterator<Item = &Type> {
        self.list.iter().filter_map(|p| match p {
            Param::Peer { ty } => Some(&**ty),
            _ => None,
        })
    }
}
