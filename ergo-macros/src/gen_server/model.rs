//! The model of a `#[gen_server]` impl block: the shared [`Block`] (the
//! server type, its `init` and its handlers) and the attribute's arguments.

use crate::behaviour::Behaviour;
use crate::behaviour::model::{Block, Kind};
use crate::crate_path::CratePath;

/// One `#[gen_server] impl Type { .. }` block.
pub(crate) struct Server {
    /// The impl block, its `init` and its handlers.
    pub(crate) block: Block,
    /// The arguments of `#[gen_server(..)]`.
    pub(crate) attrs: ServerAttrs,
}

/// The arguments of `#[gen_server(..)]`.
#[derive(Default)]
pub(crate) struct ServerAttrs {
    /// `crate = "path"`: where the runtime is (`::ergo` by default).
    pub(crate) krate: CratePath,
}

/// How `#[gen_server]` reads and names things.
pub(crate) const BEHAVIOUR: Behaviour = Behaviour {
    attr: "#[gen_server]",
    noun: "server",
    example: "MyServer",
    kinds: &[
        ("call", Kind::Call),
        ("cast", Kind::Cast),
        ("info", Kind::Info),
        ("terminate", Kind::Terminate),
        ("handle_continue", Kind::Continue),
        ("format_status", Kind::FormatStatus),
    ],
    attr_with_args: "handler attributes take no arguments: write `#[call]`, `#[cast]`, `#[info]`, `#[terminate]` or `#[handle_continue]`",
    ctx: "ServerContext",
    ctx_types: &["ServerContext"],
    init_peer: None,
};
