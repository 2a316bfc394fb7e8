//! Remote procedure calls both ways, and `gen_server` calls by term.
//!
//! Rust functions registered with [`Distribution::register_rpc`] under a module and
//! a function name answer `rpc:call/4`, `rpc:cast/4`, `erpc:call/4` and
//! `erpc:cast/4` from Erlang and Elixir nodes (and [`Distribution::rpc_call`] from
//! other ergo nodes), with the results and errors Erlang gives: an unknown
//! function is `undef`, so `rpc:call/4` returns
//! `{badrpc, {'EXIT', {undef, [{M, F, Args, []}]}}}`.
//!
//! [`Distribution::rpc_call`] calls a function on another node through its `rex`
//! server, as `rpc:call/5` does, and types the `{badrpc, Reason}` results.
//! [`Node::call`] and [`Context::call`] are `gen_server:call/3` for any
//! server, local or remote, Erlang or Rust.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use ergo_etf::{Atom, Term, ToTerm};

use crate::dist::Distribution;
use crate::gen_server::CallError;
use crate::node::Node;
use crate::process::signal::AliasOwner;
use crate::process::{Context, Dest, LookupName};
use crate::reason::Reason;

/// How a function answering RPC failed, in Erlang's three exception
/// classes.
#[derive(Clone, Debug, PartialEq)]
pub enum RpcFailure {
    /// `error:Reason` (`badarg`, `undef`, ...).
    Error(Term),
    /// `exit:Reason`.
    Exit(Term),
    /// `throw:Value`: `rpc:call/4` returns the value itself.
    Throw(Term),
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Term, RpcFailure>> + Send>>;

/// A registered RPC function.
pub(crate) type RpcFn = Arc<dyn Fn(Vec<Term>) -> BoxFuture + Send + Sync>;

/// Why [`Distribution::rpc_call`] has no result: the `{badrpc, Reason}` cases of
/// `rpc:call/5`.
#[derive(Clone, Debug, PartialEq)]
pub enum RpcError {
    /// `{badrpc, nodedown}`: the node cannot be reached, or went down.
    NodeDown,
    /// `{badrpc, timeout}`.
    Timeout,
    /// `{badrpc, {'EXIT', Reason}}`: the function raised or exited; for an
    /// error, Reason is `{Error, Stack}` (so an unknown function is
    /// `{undef, [{M, F, Args, []}]}`).
    Exit(Term),
    /// Any other `{badrpc, Reason}`.
    Other(Term),
}

impl std::fmt::Display for RpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RpcError::NodeDown => write!(f, "badrpc: nodedown"),
            RpcError::Timeout => write!(f, "badrpc: timeout"),
            RpcError::Exit(r) => write!(f, "badrpc: {{'EXIT',{r}}}"),
            RpcError::Other(r) => write!(f, "badrpc: {r}"),
        }
    }
}

impl std::error::Error for RpcError {}

/// `{call | cast, M, F, Args, GroupLeader}`, what `rex` serves. The group
/// leader is `user`: output of the function goes to the remote node's
/// console.
fn rex_request(kind: &str, m: Atom, f: Atom, args: Vec<Term>) -> Term {
    Term::tuple([
        Term::atom(kind),
        Term::Atom(m),
        Term::Atom(f),
        Term::List(args),
        Term::atom("user"),
    ])
}

impl Distribution<'_> {
    /// Makes `module:function(Args...)` callable from other nodes. `f`
    /// gets the arguments as a list of terms and returns the result, or
    /// how it failed.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ergo::{Node, Term};
    /// use ergo::dist::rpc::RpcFailure;
    /// let node = Node::builder("demo@localhost").start().unwrap();
    /// node.dist().register_rpc("math", "add", |args: Vec<Term>| async move {
    ///     match args.as_slice() {
    ///         [Term::Int(a), Term::Int(b)] => Ok(Term::Int(a + b)),
    ///         _ => Err(RpcFailure::Error(Term::atom("badarg"))),
    ///     }
    /// });
    /// assert_eq!(
    ///     node.dist().apply_rpc("math", "add", vec![Term::Int(2), Term::Int(3)]).await,
    ///     Ok(Term::Int(5))
    /// );
    /// # }
    /// ```
    pub fn register_rpc<F, Fut>(&self, module: &str, function: &str, f: F)
    where
        F: Fn(Vec<Term>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Term, RpcFailure>> + Send + 'static,
    {
        let f: RpcFn = Arc::new(move |args| Box::pin(f(args)));
        self.node
            .inner()
            .dist
            .rpc
            .write()
            .insert((Atom::from(module), Atom::from(function)), f);
    }

    /// Removes a registered RPC function.
    pub fn unregister_rpc(&self, module: impl LookupName, function: impl LookupName) {
        if let (Some(m), Some(f)) = (module.existing_atom(), function.existing_atom()) {
            self.node.inner().dist.rpc.write().remove(&(m, f));
        }
    }

    /// Runs a registered RPC function here, as a call from another node
    /// would: an unknown one fails with `error:undef`, a panic with
    /// `error:{panic, Message}`.
    pub async fn apply_rpc(
        &self,
        module: impl LookupName,
        function: impl LookupName,
        args: Vec<Term>,
    ) -> Result<Term, RpcFailure> {
        let (m, f) = (module.existing_atom(), function.existing_atom());
        let func = match (m, f) {
            (Some(m), Some(f)) => self.node.inner().dist.rpc.read().get(&(m, f)).cloned(),
            _ => None,
        };
        match func {
            // What an Erlang node answers about itself (`erlang:processes/0`
            // and the like), unless a Rust function took the name.
            None => match (m, f) {
                (Some(m), Some(f)) => {
                    crate::dist::services::introspect::builtin(self.node, m, f, &args)
                        .unwrap_or(Err(RpcFailure::Error(Term::atom("undef"))))
                }
                _ => Err(RpcFailure::Error(Term::atom("undef"))),
            },
            Some(func) => match crate::gen_server::guarded(func(args)).await {
                Ok(r) => r,
                Err(panic) => Err(RpcFailure::Error(panic.to_term())),
            },
        }
    }

    /// Calls `module:function(Args...)` on `node`, as `rpc:call/5` does
    /// (through the node's `rex` server, so Erlang, Elixir and ergo nodes
    /// all answer it).
    pub async fn rpc_call(
        &self,
        node: impl Into<Atom>,
        module: impl Into<Atom>,
        function: impl Into<Atom>,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, RpcError> {
        let request = rex_request("call", module.into(), function.into(), args);
        match self
            .node
            .call((Atom::from("rex"), node.into()), request, timeout)
            .await
        {
            Ok(Term::Tuple(t)) if t.len() == 2 && t[0].is_atom("badrpc") => Err(match &t[1] {
                Term::Atom(a) if a.as_str() == "nodedown" => RpcError::NodeDown,
                Term::Atom(a) if a.as_str() == "timeout" => RpcError::Timeout,
                Term::Tuple(e) if e.len() == 2 && e[0].is_atom("EXIT") => {
                    RpcError::Exit(e[1].clone())
                }
                other => RpcError::Other(other.clone()),
            }),
            Ok(v) => Ok(v),
            Err(CallError::Timeout(_)) => Err(RpcError::Timeout),
            Err(
                CallError::Exited(Reason::NoConnection)
                | CallError::NoConnection
                | CallError::NoProc,
            ) => Err(RpcError::NodeDown),
            Err(CallError::Exited(r)) => Err(RpcError::Exit(r.to_term())),
            Err(CallError::NoReply) => Err(RpcError::Other(Term::atom("noreply"))),
            Err(CallError::BadReply(why)) => Err(RpcError::Other(Term::binary(why))),
        }
    }

    /// Runs `module:function(Args...)` on `node` without waiting
    /// (`rpc:cast/4`).
    pub fn rpc_cast(
        &self,
        node: impl Into<Atom>,
        module: impl Into<Atom>,
        function: impl Into<Atom>,
        args: Vec<Term>,
    ) {
        let request = rex_request("cast", module.into(), function.into(), args);
        self.node.cast((Atom::from("rex"), node.into()), request);
    }
}

impl Node {
    /// `gen_server:call(Dest, Request, Timeout)` to any server, local or on
    /// another node, written in Erlang, Elixir or Rust: the request goes as
    /// a term, and the reply comes back as one. The request names the
    /// node's system pid as the caller. The request may be lent, as to
    /// [`Context::call`].
    pub async fn call(
        &self,
        dest: impl Into<Dest>,
        request: impl ToTerm,
        timeout: Duration,
    ) -> Result<Term, CallError> {
        let inner = self.inner();
        inner
            .call_term(inner.system_pid(), dest.into(), request, timeout)
            .await
    }

    /// `gen_server:cast(Dest, Request)` to any server, local or remote.
    pub fn cast(&self, dest: impl Into<Dest>, request: impl ToTerm) {
        let _ = self.send(
            dest.into(),
            Term::tuple([Term::Atom(Atom::GEN_CAST), request.into_term()]),
        );
    }
}

impl Context {
    /// `gen_server:call(Dest, Request, Timeout)` from this process: the
    /// server is monitored for the call, so a server that is not there or
    /// dies answers at once with [`CallError::NoProc`] or
    /// [`CallError::Exited`] ([`CallError::NoConnection`] when its node
    /// went away). The reply goes to an alias that lives only as long as
    /// the call, so a reply after a timeout never reaches the mailbox.
    ///
    /// The request may be lent (`&term`, `&request`): to a server on
    /// another node it is written to the connection from where it is, and
    /// a typed request (a `#[derive(Term)]` type) is written without a
    /// [`Term`] built for it. A lent request is copied for a server on
    /// this node.
    pub async fn call(
        &mut self,
        dest: impl Into<Dest>,
        request: impl ToTerm,
        timeout: Duration,
    ) -> Result<Term, CallError> {
        let inner = self.node().inner().clone();
        inner
            .call_term(self.pid(), dest.into(), request, timeout)
            .await
    }

    /// `monitor_node(Node, true)`: `{nodedown, Node}` comes when the
    /// connection to `node` goes (at once if it cannot be made). Each call
    /// adds one notice.
    pub fn monitor_node(&self, node: impl Into<Atom>) {
        self.node().inner().monitor_node(self.pid(), node.into());
    }

    /// `monitor_node(Node, false)`: takes back one [`Context::monitor_node`].
    pub fn demonitor_node(&self, node: impl Into<Atom>) {
        self.node().inner().demonitor_node(self.pid(), node.into());
    }

    /// A new alias for this process (`alias/0`): messages sent to it from
    /// other nodes (`ALIAS_SEND`) reach this process until
    /// [`Context::unalias`].
    pub fn alias(&self) -> ergo_etf::Ref {
        let r = self.make_ref();
        self.node().inner().mark_dist_subscribed(self.pid());
        self.node()
            .inner()
            .aliases
            .write()
            .insert(r, AliasOwner::Process(self.pid()));
        r
    }

    /// Deactivates an alias made by [`Context::alias`].
    pub fn unalias(&self, alias: ergo_etf::Ref) -> bool {
        let mut aliases = self.node().inner().aliases.write();
        match aliases.get(&alias) {
            Some(AliasOwner::Process(p)) if *p == self.pid() => aliases.remove(&alias).is_some(),
            _ => false,
        }
    }
}
