//! The model of a `#[supervisor]` struct: its flags and its children, as
//! the user wrote them (the strategy, restart and shutdown values are kept
//! as the literals given, for [`check`](super::check) to judge).

use proc_macro2::Span;
use syn::{DeriveInput, Ident, LitStr, Type};

use crate::crate_path::CratePath;

/// One `#[supervisor] struct`.
pub(crate) struct Supervisor {
    /// The struct as it is emitted: without its `#[child]` attributes.
    pub(crate) item: DeriveInput,
    /// The arguments of `#[supervisor(..)]`.
    pub(crate) attrs: SupervisorAttrs,
    /// The children, or why the item has none.
    pub(crate) children: Children,
}

/// The arguments of `#[supervisor(..)]`.
pub(crate) struct SupervisorAttrs {
    /// `strategy = "..."`; `one_for_one` when not given.
    pub(crate) strategy: Option<LitStr>,
    /// `intensity = N`: restarts allowed per period (1 by default).
    pub(crate) intensity: u32,
    /// `period = SECONDS` (5 by default).
    pub(crate) period: u64,
    /// `crate = "path"`: where the runtime is (`::ergo` by default).
    pub(crate) krate: CratePath,
}

impl Default for SupervisorAttrs {
    fn default() -> Self {
        SupervisorAttrs {
            strategy: None,
            intensity: 1,
            period: 5,
            krate: CratePath::default(),
        }
    }
}

/// What the item holds.
pub(crate) enum Children {
    /// A struct with named fields: each one a child, in order.
    Fields(Vec<Child>),
    /// Not a struct, spanned on the item's name.
    NotAStruct(Span),
    /// A struct without named fields, spanned on its name.
    NotNamed(Span),
}

/// One child: a field of the struct.
pub(crate) struct Child {
    /// The field's name, which is the child's id.
    pub(crate) ident: Ident,
    /// The field's type: `Child<Server>` or a `#[supervisor]` struct.
    pub(crate) ty: Type,
    /// `#[child(restart = "...")]`.
    pub(crate) restart: Option<LitStr>,
    /// `#[child(shutdown = ...)]`.
    pub(crate) shutdown: Option<Shutdown>,
    /// `#[child(register)]`: registered under the field's name.
    pub(crate) register: bool,
}

/// A `shutdown` value.
pub(crate) enum Shutdown {
    /// `"brutal_kill"` or `"infinity"` (or an unknown word).
    Named(LitStr),
    /// A number of milliseconds.
    Millis(u64),
}
