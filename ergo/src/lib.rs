//! ergo: an OTP framework for Rust whose nodes are first-class members of
//! Erlang and Elixir clusters.
//!
//! This crate re-exports what an application needs, so that it depends on
//! one crate: the external term format ([`etf`]) and `#[derive(Term)]`, the
//! [`Node`] and its processes ([`process`]), and the behaviours. Distribution
//! follows.
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
mod deadline;
pub mod dist;
pub mod gen_server;
pub mod logger;
pub mod message;
pub mod node;
pub mod process;
pub mod reason;
mod small_map;
pub mod supervisor;

pub use application::{AppError, AppInfo, AppSpec, Application, StartType};
pub use gen_server::{CallError, Flow, GenServer, Reply, ServerContext, ServerRef};
pub use message::Message;
pub use node::{Node, NodeBuilder, NodeError};
pub use process::{
    Context, Dest, IntoReason, LookupName, ProcessInfo, RegisterError, SendError, Status, TimerRef,
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
/// Makes a GenServer of an `impl` block; see [`ergo_macros::gen_server`].
pub use ergo_macros::gen_server;
/// Declares a supervisor as a struct of children; see
/// [`ergo_macros::supervisor`].
pub use ergo_macros::supervisor;

/// The README's examples, compiled and run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
