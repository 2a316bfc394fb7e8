//! ergo: an OTP framework for Rust whose nodes are first-class members of
//! Erlang and Elixir clusters.
//!
//! A Rust program starts a [`Node`]; its processes are Erlang's (mailboxes,
//! links, monitors, exit signals, `trap_exit`), its behaviours are OTP's
//! ([`mod@gen_server`], [`mod@supervisor`], [`mod@application`]), and with
//! [`node.dist().listen(..)`](dist::Distribution::listen) it joins a
//! cluster: `erl` and `iex` nodes ping it, call its servers with
//! `gen_server:call`, `rpc:call` its functions, link to and monitor its
//! processes, and it does the same to theirs.
//!
//! # From nothing to a node that answers `erl`
//!
//! ```toml
//! [dependencies]
//! ergo = { path = "path/to/ergo-rs/ergo" }   # the runtime crate of this workspace
//! tokio = { version = "1", features = ["rt-multi-thread", "macros"] }
//! ```
//!
//! A server is an `impl` block; `#[gen_server]` writes its request types
//! (with their Erlang forms), the `GenServer` impl and a typed client:
//!
//! ```
//! use ergo::{Node, gen_server};
//!
//! struct Counter { n: i64 }
//!
//! #[gen_server]
//! impl Counter {
//!     fn init(start: i64) -> Self { Counter { n: start } }
//!
//!     /// `gen_server:call(counter, {add, N})` from Erlang.
//!     #[call]
//!     fn add(&mut self, n: i64) -> i64 { self.n += n; self.n }
//!
//!     /// `gen_server:call(counter, get)`.
//!     #[call]
//!     fn get(&self) -> i64 { self.n }
//!
//!     /// `gen_server:cast(counter, reset)`.
//!     #[cast]
//!     fn reset(&mut self) { self.n = 0 }
//! }
//!
//! # #[tokio::main(flavor = "multi_thread", worker_threads = 2)]
//! # async fn main() {
//! let node = Node::builder("demo@127.0.0.1").cookie("secret").start().unwrap();
//!
//! // The generated client: CounterRef::start, start_named, start_link (from
//! // a process, linked to it) and at (a server by pid, by local name or by
//! // {Name, Node}); one method per call (with a _timeout twin) and cast.
//! let counter = CounterRef::start_named(&node, "counter", 10).await.unwrap();
//! assert_eq!(counter.add(5).await, Ok(15));
//! counter.reset();
//! assert_eq!(counter.get().await, Ok(0));
//!
//! // Any client reaches it by name, as Erlang's gen_server:call does.
//! let same = CounterRef::at(&node, "counter");
//! assert_eq!(same.add(2).await, Ok(2));
//! # }
//! ```
//!
//! Then, in `main`, make the node a member of the distribution; it
//! registers with EPMD (starting one when none runs) and prints what
//! happens to it with [`logger::init`]:
//!
//! ```no_run
//! # async fn demo(node: ergo::Node) {
//! ergo::logger::init();
//! node.dist().listen(ergo::dist::DistOptions::default()).await.unwrap();
//! # }
//! ```
//!
//! and from `erl -name me@127.0.0.1 -setcookie secret`:
//!
//! ```text
//! 1> gen_server:call({counter, 'demo@127.0.0.1'}, {add, 5}).
//! 15
//! ```
//!
//! `cargo run --example interop_node` is a complete node of this kind;
//! `cargo run --example genserver`, `--example supervisor` and `--example
//! application` walk through the behaviours.
//!
//! # Where things are
//!
//! - [`node`]: the [`Node`] handle, its builder, processes and names.
//! - [`process`]: a process's [`Context`] (receive, send, link, monitor,
//!   `trap_exit`, spawn), addresses ([`Dest`]) and exit reasons ([`Reason`]).
//! - [`mod@gen_server`], [`mod@supervisor`], [`mod@application`]: the behaviours, and the
//!   macros [`macro@gen_server`], [`macro@supervisor`], [`macro@application`].
//! - [`dist`]: distribution, reached as [`Node::dist`]: EPMD, the handshake,
//!   connections, RPC both ways, spawning on other nodes and `erpc`.
//! - [`mod@gen_stage`] and [`macro@gen_stage`]: GenStage, on Elixir's
//!   protocol.
//! - [`net`]: supervised TCP/TLS daemons, a process per connection, its
//!   handler written by hand or with [`macro@connection`];
//!   [`erps`]: Elixir's Erps RPC on them, server and client.
//! - [`global`] and [`pg`]: cluster-wide names and process groups, shared
//!   with Erlang and Elixir nodes over OTP's own protocols.
//! - [`peer`]: OTP's `peer`, from both sides.
//! - [`etf`] and [`macro@Term`]: the external term format and typed messages.
//! - [`logger`]: reports as an Erlang node prints them.
//!
//! # Typed messages in Erlang's shapes
//!
//! ```
//! use ergo::{Term, ToTerm, FromTerm, decode_as, encode};
//!
//! #[derive(Term, Debug, PartialEq)]
//! enum Request {
//!     Get,
//!     Add(i64),
//!     Rename { from: String, to: String },
//! }
//!
//! // What an Erlang peer sends as {add, 5} ...
//! let bytes = encode(&Request::Add(5));
//! assert_eq!(Request::Add(5).to_term().to_string(), "{add,5}");
//! // ... decodes straight into the typed value, with no Term in between.
//! assert_eq!(decode_as::<Request>(&bytes).unwrap(), Request::Add(5));
//!
//! // A term of the wrong shape is refused with an error that says why.
//! let wrong = ergo::etf::Term::tuple([ergo::etf::Term::atom("add"), ergo::etf::Term::binary("x")]);
//! let err = Request::from_term(&wrong).unwrap_err();
//! assert_eq!(err.to_string(), r#"expected {add, integer}, found {add,<<"x">>}"#);
//! ```

// Lets `#[derive(Term)]` inside this crate name it `::ergo` like users do.
#[allow(unused_extern_crates)] // used once the runtime derives for itself
extern crate self as ergo;

pub mod application;
#[cfg(feature = "dashboard")]
mod dashboard;
mod deadline;
pub mod dist;
pub mod erps;
pub mod gen_server;
pub mod gen_stage;
pub mod global;
pub mod logger;

/// Erlang's `io_lib` text forms of terms.
pub mod io_lib {
    use ergo_etf::Term;

    /// A term as `io_lib:write/1` (`~w`) writes it: binaries as bytes
    /// (`<<104,105>>`), lists of characters as lists (`[104,105]`), unlike
    /// [`Term`]'s `Display`, which reads as `~p` for those.
    pub fn write(term: &Term) -> String {
        crate::peer::io_format::format(&Term::charlist("~w"), &Term::List(vec![term.clone()]))
            .unwrap_or_else(|_| term.to_string())
    }
}
pub mod message;
pub mod net;
pub mod node;
pub mod peer;
pub mod pg;
pub mod process;
pub mod reason;
mod small_map;
pub mod supervisor;

pub use application::{AppError, AppInfo, AppSpec, Application, StartType};
pub use gen_server::{CallError, Flow, GenServer, Reply, ServerContext, ServerRef};
pub use gen_stage::{GenStage, StageContext, StageRef};
pub use message::{Down, Message};
pub use node::{Node, NodeBuilder, NodeError};
pub use process::{
    Behaviour, Context, Dest, IntoReason, LookupName, ProcessInfo, RegisterError, SendError,
    Status, TimerRef,
};
pub use reason::Reason;
pub use supervisor::{Child, ChildSpec, Restart, Shutdown, Strategy, SupRef, SupervisorSpec};

pub use ergo_etf as etf;
pub use ergo_etf::{
    Atom, Bytes, Charlist, Decode, DecodeError, Encode, FromTerm, Map, Pid, Ref, Term, ToTerm,
    atom, decode, decode_as, encode,
};
/// Derives `ToTerm`, `FromTerm`, `Encode` and `Decode`; see
/// [`ergo_macros::Term`] for the shapes and attributes.
pub use ergo_macros::Term;
/// Declares an application; see [`ergo_macros::application`].
pub use ergo_macros::application;
/// Makes a daemon's connection handler of an `impl` block; see
/// [`ergo_macros::connection`].
pub use ergo_macros::connection;
/// Makes a GenServer of an `impl` block; see [`ergo_macros::gen_server`].
pub use ergo_macros::gen_server;
/// Makes a GenStage of an `impl` block; see [`ergo_macros::gen_stage`].
pub use ergo_macros::gen_stage;
/// Declares a supervisor as a struct of children; see
/// [`ergo_macros::supervisor`].
pub use ergo_macros::supervisor;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
