//! Peer nodes, as OTP's `peer` module: start another node (an `erl` node or
//! an ergo node) from this one, control it over a connection of its own,
//! see its console output, and stop it; and the other side, an ergo program
//! that OTP's `peer` (or this module) starts and controls.
//!
//! **Rust as the origin.** [`start`] (or [`start_link`], or [`child_spec`]
//! under a supervisor) runs the peer's program with the command line OTP's
//! `peer` builds (`-name`/`-sname`, `-user peer`, `-origin …`) and a
//! controller process that keeps the control connection:
//!
//! - [`Connection::Distribution`]: the peer connects back over Erlang
//!   distribution, asks the controller for a group leader, and tells it
//!   `{started, Node}`; the peer halts when the controller goes.
//! - [`Connection::Tcp`]: the controller listens, the peer connects back to
//!   it, and terms travel with a 4-byte length in front (`{packet, 4}`).
//! - [`Connection::StandardIo`]: terms travel over the peer's standard input
//!   and output, each byte of a frame (length, payload, CRC-32) sent as two
//!   bytes in the range 192–255; every other byte of its output is console
//!   text.
//!
//! Over TCP and standard I/O, the control protocol is OTP's:
//! `{call, Seq, M, F, A}` answered by `{reply, Seq, Class, Result}`,
//! `{cast, M, F, A}`, `{message, To, Msg}` both ways, `{started, Node}`,
//! and the I/O requests of the peer's `user` process, answered here and
//! printed through [`PeerOptions::output`]. A controller that ends takes
//! its peer down by the [`Shutdown`] chosen; a peer that goes down ends
//! the controller, or not, by [`PeerDown`].
//!
//! **Rust as the peer.** [`PeerArgs::from_env`] recognises the command
//! line a `peer` origin passes, and [`serve`] boots this program as that
//! origin's peer: it connects back, answers `call`, `cast` and `message`
//! with the node's RPC functions ([`crate::dist::Distribution::register_rpc`])
//! and processes, and halts or stops as the origin's shutdown asks. One
//! call at the top of `main` does both: [`serve_if_peer`].
//!
//! # What lives here, and what it may touch
//!
//! - this file: the options and the public handle;
//! - `origin`: the controller, a GenServer, and the OS process it runs;
//! - `serve`: this program as a peer;
//! - `frame`: the two framings of the control connection;
//! - `io`: I/O requests from a peer, answered and printed;
//! - `io_format`: `io_lib:format/2`, for the output peers send that way.

mod frame;
mod io;
pub(crate) mod io_format;
mod origin;
mod serve;

pub use origin::{CallFailure, Peer, PeerError, child_spec, start, start_link};
pub use serve::{Origin, PeerArgs, print, serve, serve_if_peer};

use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use ergo_etf::{Pid, Term};

/// How the origin and its peer talk.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Connection {
    /// Over Erlang distribution (both nodes need names). The default.
    #[default]
    Distribution,
    /// Over the peer's standard input and output.
    StandardIo,
    /// Over TCP: the origin listens on `port` (0: any free port) at `ip`
    /// (all local addresses, the loopback ones first, when `None`), and the
    /// peer connects back.
    Tcp {
        /// The address to listen at.
        ip: Option<IpAddr>,
        /// The port to listen on.
        port: u16,
    },
}

/// How to stop a peer when its controller ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shutdown {
    /// Halt it at once (`erlang:halt()` over distribution; closing the
    /// control connection otherwise, which makes the peer halt), then wait
    /// up to the duration (`None`: for ever) for its distribution
    /// connection to go. The default: `{halt, 5000}`.
    Halt(Option<Duration>),
    /// Close the control connection (or the distribution connection) and
    /// leave the peer to halt itself.
    Close,
    /// Stop it in order (`init:stop()`), then wait up to the duration
    /// (`None`: for ever) for it to go before halting it.
    Stop(Option<Duration>),
}

impl Default for Shutdown {
    fn default() -> Self {
        Shutdown::Halt(Some(Duration::from_secs(5)))
    }
}

/// What the controller does when its peer goes down by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PeerDown {
    /// The controller stops with reason `normal`. The default.
    #[default]
    Stop,
    /// The controller stays, in state `{down, Reason}`.
    Continue,
    /// The controller exits with the reason the peer went down with.
    Crash,
}

/// How long [`start`] waits for the peer to boot.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitBoot {
    /// Up to this long (15 s by default); then the peer is stopped and the
    /// start fails with `timeout`.
    Timeout(Duration),
    /// For as long as it takes.
    Infinity,
    /// Not at all: [`start`] returns while the peer boots.
    NoWait,
    /// Not at all, and the process `Pid` gets `{Tag, {started, Node,
    /// Controller}}` or `{Tag, {boot_failed, Reason, Controller}}`.
    Notify(Pid, Term),
}

impl Default for WaitBoot {
    fn default() -> Self {
        WaitBoot::Timeout(Duration::from_secs(15))
    }
}

/// Where a peer's console output goes: a function given each piece of text
/// as it comes.
pub type Output = Arc<dyn Fn(&str) + Send + Sync>;

/// Where a peer is in its life.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerState {
    /// Started, not yet booted.
    Booting,
    /// Booted and connected.
    Running,
    /// Gone, for this reason (`tcp_closed`, `{exit_status, N}`,
    /// `{nodedown, Node}`…).
    Down(Term),
}

impl fmt::Display for PeerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerState::Booting => f.write_str("booting"),
            PeerState::Running => f.write_str("running"),
            PeerState::Down(r) => write!(f, "{{down,{r}}}"),
        }
    }
}

impl PeerState {
    fn to_term(&self) -> Term {
        match self {
            PeerState::Booting => Term::atom("booting"),
            PeerState::Running => Term::atom("running"),
            PeerState::Down(r) => Term::tuple([Term::atom("down"), r.clone()]),
        }
    }
}

/// How to start a peer: the options of OTP's `peer:start/1`.
#[derive(Clone)]
pub struct PeerOptions {
    pub(crate) name: Option<String>,
    pub(crate) host: Option<String>,
    pub(crate) longnames: Option<bool>,
    pub(crate) connection: Connection,
    pub(crate) exec: Option<(String, Vec<String>)>,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) wait_boot: WaitBoot,
    pub(crate) shutdown: Shutdown,
    pub(crate) peer_down: PeerDown,
    pub(crate) detached: bool,
    pub(crate) cookie: Option<String>,
    pub(crate) output: Option<Output>,
}

impl fmt::Debug for PeerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerOptions")
            .field("name", &self.name)
            .field("host", &self.host)
            .field("connection", &self.connection)
            .field("exec", &self.exec)
            .field("args", &self.args)
            .field("wait_boot", &self.wait_boot)
            .field("shutdown", &self.shutdown)
            .field("peer_down", &self.peer_down)
            .finish_non_exhaustive()
    }
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions::new()
    }
}

impl PeerOptions {
    /// The defaults: an `erl` peer over distribution, named at
    /// random ([`random_name`]) on this node's host, halted on stop, waited
    /// for up to 15 s.
    pub fn new() -> PeerOptions {
        PeerOptions {
            name: None,
            host: None,
            longnames: None,
            connection: Connection::Distribution,
            exec: None,
            args: Vec::new(),
            env: Vec::new(),
            wait_boot: WaitBoot::default(),
            shutdown: Shutdown::default(),
            peer_down: PeerDown::default(),
            detached: true,
            cookie: None,
            output: None,
        }
    }

    /// The peer's node name (the part before `@`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The peer's host (this node's host by default).
    pub fn host(mut self, host: impl Into<String>) -> Self {
        self.host = Some(host.into());
        self
    }

    /// `-name` (true) or `-sname` (false); by default, as this node's name
    /// is (a host with a dot is a long name).
    pub fn longnames(mut self, longnames: bool) -> Self {
        self.longnames = Some(longnames);
        self
    }

    /// The control connection.
    pub fn connection(mut self, connection: Connection) -> Self {
        self.connection = connection;
        self
    }

    /// The program to run (`erl` by default, found on `PATH`): an `erl`, an
    /// ergo program that calls [`serve_if_peer`], or a wrapper such as
    /// `ssh` or `docker` with `args` before the node's own arguments.
    pub fn exec(mut self, program: impl Into<String>, args: &[&str]) -> Self {
        self.exec = Some((
            program.into(),
            args.iter().map(|a| (*a).to_string()).collect(),
        ));
        self
    }

    /// More arguments, after the ones `peer` passes.
    pub fn args(mut self, args: &[&str]) -> Self {
        self.args.extend(args.iter().map(|a| (*a).to_string()));
        self
    }

    /// An environment variable for the peer's program.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// How long to wait for the peer to boot.
    pub fn wait_boot(mut self, wait_boot: WaitBoot) -> Self {
        self.wait_boot = wait_boot;
        self
    }

    /// How to stop the peer.
    pub fn shutdown(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = shutdown;
        self
    }

    /// What the controller does when the peer goes down.
    pub fn peer_down(mut self, peer_down: PeerDown) -> Self {
        self.peer_down = peer_down;
        self
    }

    /// Whether to pass `-detached` (true by default, except over standard
    /// I/O, which needs the peer's output).
    pub fn detached(mut self, detached: bool) -> Self {
        self.detached = detached;
        self
    }

    /// The cookie passed with `-setcookie` (this node's by default; an
    /// `erl` peer would otherwise read `~/.erlang.cookie`).
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = Some(cookie.into());
        self
    }

    /// Where the peer's console output goes (this program's standard
    /// output by default).
    pub fn output(mut self, output: impl Fn(&str) + Send + Sync + 'static) -> Self {
        self.output = Some(Arc::new(output));
        self
    }
}

/// A fresh node name, `Prefix-Unique-OsPid`, as `peer:random_name/1`.
pub fn random_name(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static UNIQUE: AtomicU64 = AtomicU64::new(1);
    let n = UNIQUE.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{n}-{}", std::process::id())
}
