//! Spawning processes on other nodes (`SPAWN_REQUEST`), as
//! `erlang:spawn_opt/5` does, and `erpc:call/5` built on it: the caller
//! asks the node to spawn `erpc:execute_call/4`, which exits with the
//! result, and reads the result from the monitor's `'DOWN'`. Both work
//! against Erlang and Elixir nodes as well as ergo nodes.

use std::sync::Arc;
use std::time::Duration;

use ergo_etf::{Atom, Pid, Ref, Term};
use tokio::sync::oneshot;

use crate::dist::Distribution;
use crate::dist::services::rpc::RpcFailure;
use crate::node::NodeInner;
use crate::process::Context;
use crate::process::signal::{AliasOwner, CallEvent, Routed, Signal, SpawnRequest};

/// How a process spawned on another node is tied to its parent.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SpawnOptions {
    /// Link the new process to the caller (`link`).
    pub link: bool,
    /// Monitor the new process (`monitor`); its `'DOWN'` carries the
    /// reference that [`Context::spawn_on`] returns.
    pub monitor: bool,
}

/// Why a process could not be spawned on another node.
#[derive(Clone, Debug, PartialEq)]
pub enum SpawnError {
    /// The node cannot be reached, or went down before answering.
    NoConnection,
    /// The node refused (`badopt`, `notsup`, `system_limit`, ...).
    Refused(Term),
}

impl std::fmt::Display for SpawnError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SpawnError::NoConnection => f.write_str("the node cannot be reached (noconnection)"),
            SpawnError::Refused(why) => write!(f, "the node refused the spawn: {why}"),
        }
    }
}

impl std::error::Error for SpawnError {}

/// Why `erpc:call` gave no result, in `erpc`'s terms.
#[derive(Clone, Debug, PartialEq)]
pub enum ErpcError {
    /// The function raised (`error`, with its stack), exited or threw: what
    /// `erpc:call/5` re-raises in the caller.
    Exception(RpcFailure),
    /// `{erpc, noconnection}`: the node cannot be reached or went down.
    NoConnection,
    /// `{erpc, timeout}`.
    Timeout,
    /// The node refused to spawn the call (`{erpc, badarg}`, `notsup`).
    Refused(Term),
    /// The process running the call ended another way (killed, say).
    Other(Term),
}

impl std::fmt::Display for ErpcError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErpcError::Exception(RpcFailure::Error(e)) => write!(f, "erpc: error {e}"),
            ErpcError::Exception(RpcFailure::Exit(e)) => write!(f, "erpc: exit {e}"),
            ErpcError::Exception(RpcFailure::Throw(e)) => write!(f, "erpc: throw {e}"),
            ErpcError::NoConnection => f.write_str("{erpc,noconnection}"),
            ErpcError::Timeout => f.write_str("{erpc,timeout}"),
            ErpcError::Refused(why) => write!(f, "erpc: spawn refused: {why}"),
            ErpcError::Other(why) => write!(f, "erpc: the call ended with {why}"),
        }
    }
}

impl std::error::Error for ErpcError {}

/// A spawn request waiting for its answer.
struct Request<'a> {
    inner: &'a Arc<NodeInner>,
    id: Ref,
}

impl Drop for Request<'_> {
    fn drop(&mut self) {
        self.inner.aliases.write().remove(&self.id);
    }
}

impl NodeInner {
    /// Sends a spawn request and gives what answers it: the reply, or for a
    /// request of the system pid with `monitor`, the `'DOWN'`.
    #[allow(clippy::too_many_arguments)]
    async fn spawn_request(
        self: &Arc<Self>,
        from: Pid,
        group_leader: Pid,
        node: Atom,
        module: Atom,
        function: Atom,
        args: Vec<Term>,
        opts: SpawnOptions,
        timeout: Option<Duration>,
    ) -> (Ref, Option<CallEvent>) {
        let id = self.make_ref();
        let (tx, rx) = oneshot::channel();
        self.aliases.write().insert(
            id,
            AliasOwner::Call {
                tx,
                node,
                spawn: true,
            },
        );
        let _request = Request { inner: self, id };
        if self.connection(node).is_none() {
            return (id, Some(CallEvent::Down(crate::Reason::NoConnection)));
        }
        let routed = self.route(Signal::SpawnRequest(Box::new(SpawnRequest {
            id,
            from,
            group_leader,
            node,
            module,
            function,
            args,
            link: opts.link,
            monitor: opts.monitor,
        })));
        if routed == Routed::Unreachable {
            return (id, Some(CallEvent::Down(crate::Reason::NoConnection)));
        }
        let got = match timeout {
            Some(t) => crate::deadline::within(t, rx).await,
            None => Some(rx.await),
        };
        (
            id,
            got.map(|r| r.unwrap_or(CallEvent::Down(crate::Reason::NoProc))),
        )
    }
}

impl Context {
    /// Spawns `module:function(Args...)` on `node`, linked to or monitored
    /// by this process as `opts` asks (`erlang:spawn_opt/5`). Gives the new
    /// process's pid and, with `monitor`, the monitor's reference. The
    /// link and the monitor are set up before this returns; a node that
    /// goes away meanwhile gives [`SpawnError::NoConnection`].
    pub async fn spawn_on(
        &self,
        node: impl Into<Atom>,
        module: impl Into<Atom>,
        function: impl Into<Atom>,
        args: Vec<Term>,
        opts: SpawnOptions,
    ) -> Result<(Pid, Option<Ref>), SpawnError> {
        let inner = self.node().inner().clone();
        let gl = self.group_leader().unwrap_or(self.pid());
        let (id, event) = inner
            .spawn_request(
                self.pid(),
                gl,
                node.into(),
                module.into(),
                function.into(),
                args,
                opts,
                None,
            )
            .await;
        match event {
            Some(CallEvent::Reply(Term::Pid(pid))) => Ok((pid, opts.monitor.then_some(id))),
            Some(CallEvent::SpawnFailed(why)) => Err(SpawnError::Refused(why)),
            _ => Err(SpawnError::NoConnection),
        }
    }
}

impl Distribution<'_> {
    /// `erpc:call(Node, Module, Function, Args, Timeout)`: runs the function
    /// on `node` (an Erlang, Elixir or ergo node) in a process spawned for
    /// the call, and gives its result, or the exception it raised.
    ///
    /// # Examples
    ///
    /// ```no_run
    /// # async fn demo(node: ergo::Node) {
    /// use std::time::Duration;
    /// use ergo::Term;
    /// let len = node
    ///     .dist()
    ///     .erpc_call("erl@127.0.0.1", "erlang", "length", vec![Term::List(vec![Term::Int(1)])], Duration::from_secs(5))
    ///     .await;
    /// assert_eq!(len, Ok(Term::Int(1)));
    /// # }
    /// ```
    pub async fn erpc_call(
        &self,
        node: impl Into<Atom>,
        module: impl Into<Atom>,
        function: impl Into<Atom>,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, ErpcError> {
        let inner = self.node.inner();
        let tag = inner.make_ref();
        let call_args = vec![
            Term::Ref(tag),
            Term::Atom(module.into()),
            Term::Atom(function.into()),
            Term::List(args),
        ];
        let system = inner.system_pid();
        let (_, event) = inner
            .spawn_request(
                system,
                system,
                node.into(),
                Atom::from("erpc"),
                Atom::from("execute_call"),
                call_args,
                SpawnOptions {
                    link: false,
                    monitor: true,
                },
                Some(timeout),
            )
            .await;
        match event {
            None => Err(ErpcError::Timeout),
            Some(CallEvent::SpawnFailed(why)) => Err(ErpcError::Refused(why)),
            Some(CallEvent::Reply(other)) => Err(ErpcError::Other(other)),
            Some(CallEvent::Down(reason)) => erpc_result(tag, reason.to_term()),
        }
    }
}

/// The result an `erpc:execute_call/4` process's exit reason carries:
/// `{Tag, return, V}`, `{Tag, throw, V}`, `{Tag, exit, R}` or
/// `{Tag, error, E, Stack}`.
fn erpc_result(tag: Ref, reason: Term) -> Result<Term, ErpcError> {
    if reason.is_atom("noconnection") {
        return Err(ErpcError::NoConnection);
    }
    let Term::Tuple(mut t) = reason else {
        return Err(ErpcError::Other(reason));
    };
    if t.len() < 3 || t[0] != Term::Ref(tag) {
        return Err(ErpcError::Other(Term::Tuple(t)));
    }
    let kind = t[1].clone();
    let value = std::mem::take(&mut t[2]);
    match kind {
        k if k.is_atom("return") && t.len() == 3 => Ok(value),
        k if k.is_atom("throw") => Err(ErpcError::Exception(RpcFailure::Throw(value))),
        k if k.is_atom("exit") => Err(ErpcError::Exception(RpcFailure::Exit(value))),
        k if k.is_atom("error") => Err(ErpcError::Exception(RpcFailure::Error(value))),
        _ => Err(ErpcError::Other(Term::Tuple(t))),
    }
}
