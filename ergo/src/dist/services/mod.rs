//! The processes an Erlang node expects to find on its peers, and remote
//! spawns.
//!
//! - `net_kernel` answers `{is_auth, Node}` with `yes`, which is how
//!   `net_adm:ping/1` gets `pong`.
//! - `rex` is the RPC server of `rpc:call/4` (the `{call, M, F, A, Gl}`,
//!   `{block_call, M, F, A, Gl}` and `{cast, M, F, A, Gl}` requests),
//!   running registered Rust functions.
//! - `global_name_server`, with its locker and registrar, is `global`
//!   ([`crate::global`]): names shared with every node of the cluster.
//! - `pg`, the default process group scope ([`crate::pg`]), shares its
//!   groups with the `pg` scopes of the other nodes. Other scopes (Phoenix
//!   PubSub runs its own) run where the program starts them.
//! - `SPAWN_REQUEST` runs `erpc:execute_call/4` and `erpc:execute_cast/3`
//!   (what `erpc:call/4`, `erpc:cast/4`, `rpc:call/4` and `rpc:cast/4`
//!   send since OTP 23) on registered functions, with Erlang's results.
//!
//! `rpc` holds RPC both ways (a registry of Rust functions, `rpc:call` out
//! and `gen_server` calls by term); `spawn` holds `SPAWN_REQUEST` out and
//! `erpc:call`. The services are ordinary processes and signals: they
//! touch no connection and no process state directly.

pub(crate) mod introspect;
pub mod rpc;
pub mod spawn;

use std::sync::Arc;

use ergo_etf::{Atom, Pid, Ref, Term};

use crate::dist::services::rpc::RpcFailure;
use crate::gen_server::send_reply;
use crate::message::Message;
use crate::node::{Node, NodeInner};
use crate::process::signal::{AliasOwner, CallEvent, Routed, Signal, SpawnRequest};
use crate::process::{Start, Target};
use crate::reason::Reason;

/// Starts the node's service processes.
pub(crate) fn start(node: &Node) {
    introspect::start_clock();
    spawn_named(node, "net_kernel", |ctx, msg| {
        if let Some((from, tag, req)) = gen_call(&msg) {
            let reply = match req {
                Term::Tuple(t) if t.len() == 2 && t[0].is_atom("is_auth") => Term::atom("yes"),
                _ => Term::atom("not_implemented"),
            };
            send_reply(ctx.node(), ctx.pid(), from, tag, reply);
        }
    });
    spawn_named(node, "rex", |ctx, msg| {
        if let Some((from, tag, req)) = gen_call(&msg) {
            // `rpc:block_call/4` asks the same way; nothing here blocks rex.
            if let Some((m, f, args)) =
                mfa_request(&req, "call").or_else(|| mfa_request(&req, "block_call"))
            {
                let node = ctx.node().clone();
                let rex = ctx.pid();
                ctx.spawn(move |_| async move {
                    let reply = match node.dist().apply_rpc(m, f, args.clone()).await {
                        Ok(v) => v,
                        Err(RpcFailure::Throw(v)) => v,
                        Err(RpcFailure::Exit(r)) => badrpc_exit(r),
                        Err(RpcFailure::Error(e)) => {
                            badrpc_exit(Term::tuple([e, stack(m, f, args)]))
                        }
                    };
                    send_reply(&node, rex, from, tag, reply);
                });
            }
            return;
        }
        if let Message::Term(Term::Tuple(t)) = &msg
            && t.len() == 2
            && t[0].is_atom("$gen_cast")
            && let Some((m, f, args)) = mfa_request(&t[1], "cast")
        {
            let node = ctx.node().clone();
            ctx.spawn(move |_| async move {
                let _ = node.dist().apply_rpc(m, f, args).await;
            });
        }
    });
    crate::global::start(node);
    // The default process group scope (unless the program started it).
    let _ = crate::pg::start_scope(node, Atom::from(crate::pg::DEFAULT_SCOPE));
}

/// A registered process that runs `handle` on every message it receives.
fn spawn_named(node: &Node, name: &str, handle: fn(&mut crate::Context, Message)) {
    let name = Atom::from(name);
    let pid = node.spawn(move |mut ctx| async move {
        loop {
            let msg = ctx.receive().await;
            handle(&mut ctx, msg);
        }
        #[allow(unreachable_code)]
        ()
    });
    if let Err(e) = node.register(name, pid) {
        tracing::warn!(%name, "cannot register the service: {e}");
    }
}

/// `{'$gen_call', {Pid, Tag}, Request}`.
fn gen_call(msg: &Message) -> Option<(Pid, Term, Term)> {
    let Message::Term(Term::Tuple(t)) = msg else {
        return None;
    };
    if t.len() != 3 || !t[0].is_atom("$gen_call") {
        return None;
    }
    let Term::Tuple(from) = &t[1] else {
        return None;
    };
    match from.as_slice() {
        [Term::Pid(p), tag] => Some((*p, tag.clone(), t[2].clone())),
        _ => None,
    }
}

/// `{Kind, M, F, Args, GroupLeader}`.
fn mfa_request(req: &Term, kind: &str) -> Option<(Atom, Atom, Vec<Term>)> {
    let Term::Tuple(t) = req else { return None };
    match t.as_slice() {
        [k, Term::Atom(m), Term::Atom(f), args, _] if k.is_atom(kind) => {
            Some((*m, *f, args.as_list()?.to_vec()))
        }
        _ => None,
    }
}

fn badrpc_exit(reason: Term) -> Term {
    Term::tuple([
        Term::atom("badrpc"),
        Term::tuple([Term::atom("EXIT"), reason]),
    ])
}

/// The stack an error in `M:F(Args)` reports, as `erpc` trims it.
fn stack(m: Atom, f: Atom, args: Vec<Term>) -> Term {
    Term::List(vec![Term::tuple([
        Term::Atom(m),
        Term::Atom(f),
        Term::List(args),
        Term::NIL,
    ])])
}

impl NodeInner {
    /// Runs a spawn request from another node's process: spawns the
    /// process (linked to or monitored by the requester, as it asked) and
    /// answers with `SPAWN_REPLY`, before the new process can send
    /// anything, its exit included.
    pub(crate) fn spawn_for(self: &Arc<Self>, req: SpawnRequest) {
        let node = Node::from_arc(self.clone());
        let (go, gate) = tokio::sync::oneshot::channel::<()>();
        let body = Body::of(req.module, req.function, req.args);
        let from = req.from;
        let monitor = req.monitor.then_some((from, req.id));
        let pid = node.spawn_opts(
            move |ctx| async move {
                let _ = gate.await;
                body.run(ctx).await
            },
            Some(req.group_leader),
            Some(Start::Remote {
                link: req.link.then_some(from),
                monitor,
            }),
        );
        if from.node != self.name && (req.link || req.monitor) {
            self.dist_index(from.node, pid);
        }
        let flags = u8::from(req.link) | if req.monitor { 2 } else { 0 };
        self.route(Signal::SpawnReply {
            id: req.id,
            to: from,
            flags,
            result: Ok(pid),
        });
        let _ = go.send(());
    }

    /// A spawn request of ours was answered: the link and monitor it asked
    /// for are set up on the requester's side, and whoever waits for the
    /// answer gets it.
    pub(crate) fn spawn_replied(
        self: &Arc<Self>,
        id: Ref,
        to: Pid,
        flags: u8,
        result: Result<Pid, Term>,
    ) -> Routed {
        let (linked, monitored) = (flags & 1 != 0, flags & 2 != 0);
        let waiting = matches!(
            self.aliases.read().get(&id),
            Some(AliasOwner::Call { spawn: true, .. })
        );
        let pid = match result {
            Ok(pid) => pid,
            Err(why) => {
                self.call_event(id, CallEvent::SpawnFailed(why));
                return Routed::Done;
            }
        };
        // What the requester asked for is set up on its side, if it still
        // waits (a request given up, or a reply nobody asked for, undoes
        // it: the link with an exit `abandoned`, as Erlang's
        // `spawn_request_abandon/1`, and the monitor).
        let requester = if to == self.system_pid() {
            None
        } else {
            self.lookup(to)
        };
        let set_up = waiting
            && match &requester {
                Some(me) => {
                    let ok = (!linked || me.add_link(pid))
                        && (!monitored || me.add_monitor_if_alive(id, pid));
                    if ok && (linked || monitored) && pid.node != self.name {
                        self.dist_index(pid.node, to);
                    }
                    ok
                }
                // The system pid asks with `monitor` only (`erpc`): the
                // `'DOWN'` comes to its alias.
                None => to == self.system_pid() && !linked,
            };
        if !set_up {
            if let Some(me) = &requester {
                me.state.lock().remove_link(&pid);
                me.state.lock().remove_monitor(&id);
            }
            if linked {
                self.route(Signal::Exit {
                    from: to,
                    to: pid,
                    reason: Reason::other(Term::atom("abandoned")),
                    link: true,
                });
            }
            if monitored {
                self.route(Signal::Demonitor {
                    from: to,
                    target: Target::Pid(pid),
                    reference: id,
                });
            }
            self.call_event(id, CallEvent::SpawnFailed(Term::atom("abandoned")));
            return Routed::NoProc;
        }
        if requester.is_some() {
            self.call_event(id, CallEvent::Reply(Term::Pid(pid)));
        }
        Routed::Done
    }
}

/// What a remotely spawned process runs.
enum Body {
    /// `erpc:execute_call(Ref, M, F, A)`: exits with `{Ref, return, V}`,
    /// `{Ref, throw, T}`, `{Ref, exit, R}` or `{Ref, error, E, Stack}`.
    Call(Ref, Atom, Atom, Vec<Term>),
    /// `erpc:execute_cast(M, F, A)`, or `M:F(A...)` spawned directly: the
    /// result is dropped, a failure is the exit reason.
    Cast(Atom, Atom, Vec<Term>),
    /// `observer_backend:fetch_stats(Parent, Time)`: a process that
    /// reports until told to stop.
    FetchStats(Pid, u64),
    /// `observer_backend:procs_info(Collector)` or `etop_collect(Collector)`
    /// spawned: the reports come from the spawned process, which then
    /// ends.
    ProcsInfo(Pid, bool),
}

impl Body {
    fn of(m: Atom, f: Atom, args: Vec<Term>) -> Body {
        if let ("observer_backend", "fetch_stats", [Term::Pid(parent), Term::Int(ms)]) =
            (m.as_str(), f.as_str(), args.as_slice())
        {
            return Body::FetchStats(*parent, (*ms).max(0) as u64);
        }
        if let ("observer_backend", f @ ("procs_info" | "etop_collect"), [Term::Pid(collector)]) =
            (m.as_str(), f.as_str(), args.as_slice())
        {
            return Body::ProcsInfo(*collector, f == "etop_collect");
        }
        if m.as_str() == "erpc" {
            match (f.as_str(), args.as_slice()) {
                ("execute_call", [Term::Ref(r), Term::Atom(m), Term::Atom(f), a]) => {
                    return Body::Call(
                        *r,
                        *m,
                        *f,
                        a.as_list().map(<[Term]>::to_vec).unwrap_or_default(),
                    );
                }
                ("execute_cast", [Term::Atom(m), Term::Atom(f), a]) => {
                    return Body::Cast(
                        *m,
                        *f,
                        a.as_list().map(<[Term]>::to_vec).unwrap_or_default(),
                    );
                }
                _ => {}
            }
        }
        Body::Cast(m, f, args)
    }

    async fn run(self, ctx: crate::Context) -> Reason {
        let node = ctx.node().clone();
        match self {
            Body::Call(r, m, f, args) => {
                let tag = Term::Ref(r);
                let out = match node.dist().apply_rpc(m, f, args.clone()).await {
                    Ok(v) => Term::tuple([tag, Term::atom("return"), v]),
                    Err(RpcFailure::Throw(v)) => Term::tuple([tag, Term::atom("throw"), v]),
                    Err(RpcFailure::Exit(e)) => Term::tuple([tag, Term::atom("exit"), e]),
                    Err(RpcFailure::Error(e)) => {
                        Term::tuple([tag, Term::atom("error"), e, stack(m, f, args)])
                    }
                };
                Reason::from_term(out)
            }
            Body::Cast(m, f, args) => match node.dist().apply_rpc(m, f, args.clone()).await {
                Ok(_) => Reason::Normal,
                Err(RpcFailure::Throw(v)) => {
                    Reason::from_term(Term::tuple([Term::atom("nocatch"), v]))
                }
                Err(RpcFailure::Exit(e)) => Reason::from_term(e),
                Err(RpcFailure::Error(e)) => Reason::from_term(Term::tuple([e, stack(m, f, args)])),
            },
            Body::FetchStats(parent, ms) => {
                introspect::fetch_stats(ctx, parent, ms).await;
                Reason::Normal
            }
            Body::ProcsInfo(collector, etop) => {
                if etop {
                    introspect::send_etop_info(&node, ctx.pid(), collector);
                } else {
                    introspect::send_procs_info(&node, ctx.pid(), collector);
                }
                Reason::Normal
            }
        }
    }
}
