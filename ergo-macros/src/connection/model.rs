//! The model of a `#[connection]` impl block: the shared [`Block`] (the
//! handler type, its `init` and its handlers) and the attribute's
//! arguments.

use crate::behaviour::Behaviour;
use crate::behaviour::model::{Block, Kind};
use crate::crate_path::CratePath;

/// One `#[connection] impl Type { .. }` block.
pub(crate) struct Conn {
    /// The impl block, its `init` and its handlers.
    pub(crate) block: Block,
    /// The arguments of `#[connection(..)]`.
    pub(crate) attrs: ConnAttrs,
}

/// The arguments of `#[connection(..)]`.
#[derive(Default)]
pub(crate) struct ConnAttrs {
    /// `crate = "path"`: where the runtime is (`::ergo` by default).
    pub(crate) krate: CratePath,
}

/// How `#[connection]` reads and names things. `init` is given the peer's
/// address besides the start arguments: a parameter of type `SocketAddr`
/// is the peer, any other (but the context) a start argument.
pub(crate) const BEHAVIOUR: Behaviour = Behaviour {
    attr: "#[connection]",
    noun: "connection",
    example: "MyConnection",
    kinds: &[
        ("init", Kind::Init),
        ("data", Kind::Data),
        ("closed", Kind::Closed),
        ("call", Kind::Call),
        ("cast", Kind::Cast),
        ("info", Kind::Info),
        ("terminate", Kind::Terminate),
    ],
    attr_with_args: "handler attributes take no arguments: write `#[init]`, `#[data]`, `#[closed]`, `#[call]`, `#[cast]`, `#[info]` or `#[terminate]`",
    ctx: "ConnContext",
    ctx_types: &["ConnContext", "ServerContext"],
    init_peer: Some("SocketAddr"),
};

/// The kinds only one handler may have.
pub(crate) const ONCE: [Kind; 4] = [Kind::Data, Kind::Closed, Kind::Info, Kind::Terminate];
