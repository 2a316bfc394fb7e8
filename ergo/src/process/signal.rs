//! Signals: the one way processes act on each other, wherever they live.
//!
//! Every interaction between processes (a message, a link or its removal,
//! an exit signal, a monitor, its removal and its `'DOWN'`, a group leader
//! change, a spawn request and its reply) is a [`Signal`]. One function,
//! [`NodeInner::route`], takes each: a signal for a process of this node is
//! applied here, by this module (the only code that changes a process's
//! links, monitors and group leader); a signal for another node goes to the
//! distribution layer, whose codec writes it as a control message. What a
//! peer sends is decoded into the same type and routed the same way, so
//! each rule of the Erlang reference manual is written once.
//!
//! What a signal does on the sender's side (recording its own half of a
//! link or a monitor) is done by the sender before it routes the signal:
//! Erlang's links and monitors are set up on each side by that side.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use ergo_etf::{Atom, Pid, Ref, Term};
use tokio::sync::oneshot;

use crate::message::Message;
use crate::node::NodeInner;
use crate::process::dest::Target;
use crate::process::{MonitorEntry, Pcb};
use crate::reason::Reason;

/// A signal from one process to another.
#[derive(Debug)]
pub(crate) enum Signal {
    /// A message (`SEND_SENDER`, or `REG_SEND` to a name).
    Send { from: Pid, to: Target, body: Body },
    /// A message to a process alias (`ALIAS_SEND`).
    AliasSend { from: Pid, alias: Ref, body: Body },
    /// `link/1` (`LINK`).
    Link { from: Pid, to: Pid },
    /// `unlink/1` (`UNLINK_ID`), answered by [`Signal::UnlinkAck`] when it
    /// crossed nodes.
    Unlink { id: u64, from: Pid, to: Pid },
    /// `UNLINK_ID_ACK`.
    UnlinkAck { id: u64, from: Pid, to: Pid },
    /// An exit signal: a linked process ended (`EXIT`, `link` set), or
    /// `exit/2` (`EXIT2`).
    Exit {
        from: Pid,
        to: Pid,
        reason: Reason,
        link: bool,
    },
    /// `monitor/2` (`MONITOR_P`).
    Monitor {
        from: Pid,
        target: Target,
        reference: Ref,
    },
    /// `demonitor/1` (`DEMONITOR_P`).
    Demonitor {
        from: Pid,
        target: Target,
        reference: Ref,
    },
    /// A monitored process ended (`MONITOR_P_EXIT`): `watched` names it as
    /// it was monitored.
    Down {
        watched: Target,
        to: Pid,
        reference: Ref,
        reason: Reason,
    },
    /// `group_leader/2` (`GROUP_LEADER`).
    GroupLeader { leader: Pid, to: Pid },
    /// `spawn_request` (`SPAWN_REQUEST`): run `module:function(Args)` on
    /// the target node.
    SpawnRequest(Box<SpawnRequest>),
    /// The answer to a spawn request (`SPAWN_REPLY`).
    SpawnReply {
        id: Ref,
        to: Pid,
        /// 1: the link was set up; 2: the monitor was.
        flags: u8,
        result: Result<Pid, Term>,
    },
}

/// A spawn request's fields.
#[derive(Debug)]
pub(crate) struct SpawnRequest {
    /// The request id (and, with `monitor`, the monitor's reference).
    pub(crate) id: Ref,
    pub(crate) from: Pid,
    pub(crate) group_leader: Pid,
    /// The node asked to spawn.
    pub(crate) node: Atom,
    pub(crate) module: Atom,
    pub(crate) function: Atom,
    pub(crate) args: Vec<Term>,
    pub(crate) link: bool,
    pub(crate) monitor: bool,
}

/// What a message signal carries: a message, or one of the two tuples a
/// `gen_server` call is made of, given by its parts so that crossing nodes
/// writes them without building the tuple.
#[derive(Debug)]
pub(crate) enum Body {
    Message(Message),
    /// `{'$gen_call', {From, Tag}, Request}`, `From` being the signal's
    /// sender.
    Call {
        tag: CallTag,
        request: Term,
    },
    /// `{Tag, Reply}`.
    Reply {
        tag: Term,
        reply: Term,
    },
    /// `{Tag, Reply}` with a call's tag (a reference or `[alias | Ref]`),
    /// which a reply to a call waiting without a process never needs built.
    CallReply {
        tag: CallTag,
        reply: Term,
    },
}

/// A call's tag: a plain reference, or `[alias | Ref]` (OTP 24 and later),
/// whose reply goes to the alias.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum CallTag {
    Ref(Ref),
    Alias(Ref),
}

impl CallTag {
    pub(crate) fn to_term(self) -> Term {
        match self {
            CallTag::Ref(r) => Term::Ref(r),
            CallTag::Alias(r) => {
                Term::ImproperList(vec![Term::Atom(Atom::ALIAS)], Box::new(Term::Ref(r)))
            }
        }
    }

    /// `tag` as a call's tag, if it has one of the shapes calls make: a
    /// reference, or `[alias | Ref]`.
    pub(crate) fn of(tag: &Term) -> Option<CallTag> {
        match tag {
            Term::Ref(r) => Some(CallTag::Ref(*r)),
            t => CallTag::alias_of(t).map(CallTag::Alias),
        }
    }

    /// The alias a reply to `tag` goes to, if it names one.
    pub(crate) fn alias_of(tag: &Term) -> Option<Ref> {
        match tag {
            Term::ImproperList(head, tail)
                if head.len() == 1 && head[0] == Term::Atom(Atom::ALIAS) =>
            {
                match **tail {
                    Term::Ref(r) => Some(r),
                    _ => None,
                }
            }
            _ => None,
        }
    }
}

/// A call by term, `{'$gen_call', {From, Tag}, Request}`, as its parts: how
/// it reaches a process that takes calls apart (a `gen_server` loop, which
/// would otherwise build the two tuples only to take them apart again).
/// Seen as a term (`Message::to_term`, `process_info(Pid, messages)`), it
/// is the whole tuple.
#[derive(Debug)]
pub(crate) struct CallRequest {
    pub(crate) from: Pid,
    pub(crate) tag: CallTag,
    pub(crate) request: Term,
}

impl CallRequest {
    /// `{'$gen_call', {From, Tag}, Request}`.
    pub(crate) fn into_term(self) -> Term {
        Term::tuple([
            Term::Atom(Atom::GEN_CALL),
            Term::tuple([Term::Pid(self.from), self.tag.to_term()]),
            self.request,
        ])
    }
}

impl ergo_etf::ToTerm for CallRequest {
    fn to_term(&self) -> Term {
        Term::tuple([
            Term::Atom(Atom::GEN_CALL),
            Term::tuple([Term::Pid(self.from), self.tag.to_term()]),
            self.request.clone(),
        ])
    }
}

impl Body {
    /// Whether this is `{[alias | Alias], Reply}` (or `{Alias, Reply}`),
    /// the reply to a call made with `alias`.
    fn is_reply_to(&self, alias: Ref) -> bool {
        let tagged = |tag: &Term| match tag {
            Term::Ref(r) => *r == alias,
            t => CallTag::alias_of(t) == Some(alias),
        };
        match self {
            Body::CallReply { tag, .. } => {
                matches!(tag, CallTag::Ref(r) | CallTag::Alias(r) if *r == alias)
            }
            Body::Reply { tag, .. } => tagged(tag),
            Body::Message(Message::Term(Term::Tuple(t))) => t.len() == 2 && tagged(&t[0]),
            _ => false,
        }
    }

    /// The body as the message `pcb`'s process gets: [`Body::into_message`],
    /// but a call stays in its parts for a process that takes calls apart.
    #[inline]
    pub(crate) fn into_message_for(self, from: Pid, pcb: &Pcb) -> Message {
        match self {
            Body::Call { tag, request } if pcb.takes_calls() => {
                Message::new(CallRequest { from, tag, request })
            }
            b => b.into_message(from),
        }
    }

    /// The body as the message its receiver gets; `from` is the signal's
    /// sender.
    pub(crate) fn into_message(self, from: Pid) -> Message {
        match self {
            Body::Message(m) => m,
            Body::Call { tag, request } => {
                Message::Term(CallRequest { from, tag, request }.into_term())
            }
            Body::Reply { tag, reply } => Message::Term(Term::tuple([tag, reply])),
            Body::CallReply { tag, reply } => Message::Term(Term::tuple([tag.to_term(), reply])),
        }
    }
}

impl Signal {
    /// The process the signal says it comes from, where the receiver may
    /// answer it or set something up with it.
    pub(crate) fn sender(&self) -> Option<Pid> {
        match self {
            Signal::Send { from, .. }
            | Signal::AliasSend { from, .. }
            | Signal::Link { from, .. }
            | Signal::Unlink { from, .. }
            | Signal::UnlinkAck { from, .. }
            | Signal::Exit { from, .. }
            | Signal::Monitor { from, .. }
            | Signal::Demonitor { from, .. } => Some(*from),
            Signal::Down {
                watched: Target::Pid(p),
                ..
            } => Some(*p),
            Signal::SpawnRequest(r) => Some(r.from),
            Signal::Down { .. } | Signal::GroupLeader { .. } | Signal::SpawnReply { .. } => None,
        }
    }

    /// The node of the process the signal is for.
    pub(crate) fn node(&self) -> Atom {
        match self {
            Signal::Send { to, .. } => to.node(),
            Signal::AliasSend { alias, .. } => alias.node,
            Signal::Link { to, .. }
            | Signal::Unlink { to, .. }
            | Signal::UnlinkAck { to, .. }
            | Signal::Exit { to, .. }
            | Signal::Down { to, .. }
            | Signal::GroupLeader { to, .. }
            | Signal::SpawnReply { to, .. } => to.node,
            Signal::Monitor { target, .. } | Signal::Demonitor { target, .. } => target.node(),
            Signal::SpawnRequest(r) => r.node,
        }
    }
}

/// What routing a signal came to.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    /// Applied to a process of this node, or handed to the connection to
    /// the target's node.
    Done,
    /// For this node, and no process is there to take it: a dead pid, a
    /// name not registered, an alias no longer active.
    NoProc,
    /// For another node, which cannot be reached (or this node is not
    /// distributed).
    Unreachable,
}

/// Who owns an alias: a process, or a call waiting without one.
pub(crate) enum AliasOwner {
    Process(Pid),
    /// A call (or, with `spawn`, a spawn request: no alias to send to) to
    /// a process of `node`: the connection's loss ends it with
    /// `noconnection`.
    Call {
        tx: oneshot::Sender<CallEvent>,
        node: Atom,
        spawn: bool,
    },
}

/// What ends a call waited for with an alias of its own.
#[derive(Debug)]
pub(crate) enum CallEvent {
    /// The reply.
    Reply(Term),
    /// The server's monitor fired with this reason.
    Down(Reason),
    /// A spawn request was refused, for this reason.
    SpawnFailed(Term),
}

/// Ids of `UNLINK_ID` signals.
pub(crate) fn next_unlink_id() -> u64 {
    static IDS: AtomicU64 = AtomicU64::new(1);
    IDS.fetch_add(1, Ordering::Relaxed)
}

impl NodeInner {
    /// Routes a signal: applied here when its target is a process of this
    /// node, written to the target's node otherwise. A signal for a dead
    /// local process that a remote sender awaits an answer to (a link, a
    /// monitor) is answered here, with `noproc`.
    pub(crate) fn route(self: &Arc<Self>, signal: Signal) -> Routed {
        if signal.node() != self.name {
            return self.dist_route(signal);
        }
        self.apply(signal)
    }

    /// [`NodeInner::route`] for a message, the most frequent signal, taken
    /// straight by senders.
    #[inline]
    pub(crate) fn route_send(self: &Arc<Self>, from: Pid, to: Target, body: Body) -> Routed {
        let pid = match to {
            Target::Pid(p) if p.node == self.name => p,
            Target::Name(n, node) if node == self.name => match self.whereis(n) {
                Some(p) => p,
                None => return Routed::NoProc,
            },
            _ => return self.dist_route(Signal::Send { from, to, body }),
        };
        // A message that finds no process is dropped outside the table's
        // lock.
        if self.deliver_body_to(pid, from, body) {
            Routed::Done
        } else {
            Routed::NoProc
        }
    }

    /// Applies a signal to a process of this node.
    fn apply(self: &Arc<Self>, signal: Signal) -> Routed {
        match signal {
            Signal::Send { from, to, body } => self.route_send(from, to, body),
            Signal::AliasSend { from, alias, body } => self.alias_send(from, alias, body),
            Signal::Link { from, to } => {
                let linked = self.with_pcb(to, |p| p.add_link(from)).unwrap_or(false);
                if linked && from.node != self.name {
                    self.dist_index(from.node, to);
                }
                if linked {
                    return Routed::Done;
                }
                if from.node != self.name {
                    // The remote side learns of it as Erlang tells it: an
                    // exit signal `noproc` through the link.
                    self.route(Signal::Exit {
                        from: to,
                        to: from,
                        reason: Reason::NoProc,
                        link: true,
                    });
                }
                Routed::NoProc
            }
            Signal::Unlink { id, from, to } => {
                self.with_pcb(to, |p| p.state.lock().remove_link(&from));
                if from.node != self.name {
                    self.route(Signal::UnlinkAck {
                        id,
                        from: to,
                        to: from,
                    });
                }
                Routed::Done
            }
            Signal::UnlinkAck { .. } => Routed::Done,
            Signal::Exit {
                from,
                to,
                reason,
                link,
            } => {
                let Some(p) = self.lookup(to) else {
                    return Routed::NoProc;
                };
                if link {
                    // Only through a link still there.
                    let mut st = p.state.lock();
                    if st.remove_link(&from).is_some() {
                        p.exit_signal(from, reason, false);
                    }
                } else {
                    p.exit_signal(from, reason, true);
                }
                Routed::Done
            }
            Signal::Monitor {
                from,
                target,
                reference,
            } => {
                let pid = match target {
                    Target::Pid(p) => Some(p),
                    Target::Name(n, _) => self.whereis(n),
                };
                // A monitor from another node, read by its connection: the
                // process is put in that connection's index unless it is
                // there already (as a server monitored by every call is).
                let remote = from.node != self.name;
                let conn = if remote {
                    crate::dist::reading_from(from.node)
                } else {
                    None
                };
                let watched = pid.and_then(|p| {
                    self.with_pcb(p, |p| p.add_watcher_from(reference, from, target, conn))
                        .flatten()
                });
                if let Some(indexed) = watched {
                    if remote
                        && !indexed
                        && let Some(p) = pid
                    {
                        self.dist_index(from.node, p);
                    }
                    return Routed::Done;
                }
                if from.node != self.name || from == self.system_pid() {
                    // A sender that cannot be told at once (another node's
                    // process, or a call waiting without a process) hears
                    // it as a `'DOWN'`.
                    self.route(Signal::Down {
                        watched: target,
                        to: from,
                        reference,
                        reason: Reason::NoProc,
                    });
                }
                Routed::NoProc
            }
            Signal::Demonitor {
                target, reference, ..
            } => {
                let pid = match target {
                    Target::Pid(p) => Some(p),
                    Target::Name(n, _) => self.whereis(n),
                };
                if let Some(p) = pid {
                    self.with_pcb(p, |p| p.state.lock().remove_watcher(&reference));
                }
                Routed::Done
            }
            Signal::Down {
                watched,
                to,
                reference,
                reason,
            } => {
                if to == self.system_pid() {
                    self.call_event(reference, CallEvent::Down(reason));
                    return Routed::Done;
                }
                let Some(p) = self.lookup(to) else {
                    return Routed::NoProc;
                };
                // Delivered under the watcher's lock, where the monitor is
                // found still there: a `demonitor` that returned before is
                // not followed by a `'DOWN'`.
                let mut st = p.state.lock();
                // The `'DOWN'` names the process as it was asked for (by
                // pid, or `{Name, Node}`).
                let _ = watched;
                if let Some(entry) = st.remove_monitor(&reference) {
                    p.deliver(Message::down(reference, entry.object.to_term(), reason));
                }
                Routed::Done
            }
            Signal::GroupLeader { leader, to } => {
                match self.with_pcb(to, |p| p.state.lock().group_leader = Some(leader)) {
                    Some(()) => Routed::Done,
                    None => Routed::NoProc,
                }
            }
            Signal::SpawnRequest(req) => {
                self.spawn_for(*req);
                Routed::Done
            }
            Signal::SpawnReply {
                id,
                to,
                flags,
                result,
            } => self.spawn_replied(id, to, flags, result),
        }
    }

    /// A message to `alias`: to the process that owns it, or to the call
    /// waiting on it; dropped when the alias is no longer active.
    fn alias_send(self: &Arc<Self>, from: Pid, alias: Ref, body: Body) -> Routed {
        let owner = {
            let mut aliases = self.aliases.write();
            match aliases.get(&alias) {
                None => return Routed::NoProc,
                Some(AliasOwner::Process(p)) => Ok(*p),
                Some(AliasOwner::Call { spawn: true, .. }) => return Routed::NoProc,
                // A call's alias takes its reply, once: taken with the lock
                // held. Anything else sent to it has nowhere to go.
                Some(AliasOwner::Call { .. }) if body.is_reply_to(alias) => {
                    Err(aliases.remove(&alias))
                }
                Some(AliasOwner::Call { .. }) => return Routed::NoProc,
            }
        };
        match owner {
            Ok(pid) => {
                if self.deliver_body_to(pid, from, body) {
                    Routed::Done
                } else {
                    Routed::NoProc
                }
            }
            Err(Some(AliasOwner::Call { tx, .. })) => {
                let reply = match body {
                    Body::Reply { reply, .. } | Body::CallReply { reply, .. } => reply,
                    Body::Message(m) => match m.into_term() {
                        // `{Tag, Reply}` as any process may send it.
                        Some(Term::Tuple(mut t)) if t.len() == 2 => t.pop().unwrap_or(Term::NIL),
                        Some(other) => other,
                        None => Term::NIL,
                    },
                    Body::Call { request, .. } => request,
                };
                let _ = tx.send(CallEvent::Reply(reply));
                Routed::Done
            }
            Err(_) => Routed::NoProc,
        }
    }

    /// Ends the call waiting on `alias` with `event`, if it still waits.
    pub(crate) fn call_event(&self, alias: Ref, event: CallEvent) {
        let owner = {
            let mut aliases = self.aliases.write();
            match aliases.get(&alias) {
                Some(AliasOwner::Call { .. }) => aliases.remove(&alias),
                _ => None,
            }
        };
        if let Some(AliasOwner::Call { tx, .. }) = owner {
            let _ = tx.send(event);
        }
    }

    /// Everything that happens when a process has ended: its name is
    /// freed, and every link and monitor is told, through the same route
    /// as any signal.
    pub(crate) fn finish(self: &Arc<Self>, pcb: &Arc<Pcb>, reason: Reason) {
        let (links, monitors, monitored_by, name, remote) = {
            let mut st = pcb.state.lock();
            st.alive = false;
            st.exit_reason = Some(reason.clone());
            let remote = st.remote;
            match st.ties_mut() {
                Some(t) => (
                    t.links.take_all(),
                    t.monitors.take_all(),
                    t.monitored_by.take_all(),
                    t.name.take(),
                    remote,
                ),
                None => (Vec::new(), Vec::new(), Vec::new(), None, remote),
            }
        };
        if let Some(name) = name {
            self.unregister_if(name, pcb.pid);
        }
        self.remove(pcb.pid);
        if remote {
            self.forget_remote(pcb.pid);
        }
        if reason.is_panic() {
            // A panic is a crash whatever the process was: reported as
            // Erlang reports an error in a process.
            tracing::error!(pid = %pcb.pid, %reason, "process crashed");
        } else if !reason.is_normal() {
            tracing::debug!(pid = %pcb.pid, %reason, "process exited");
        } else {
            tracing::trace!(pid = %pcb.pid, "process exited normally");
        }
        let me = pcb.pid;
        for (reference, m) in monitors {
            let target = match m.object {
                Target::Pid(_) => Target::Pid(m.other),
                // A remote name: its node resolves it; a local name was
                // resolved to `other` when the monitor was set up.
                Target::Name(..) if m.other.node != self.name => m.object,
                Target::Name(..) => Target::Pid(m.other),
            };
            self.route(Signal::Demonitor {
                from: me,
                target,
                reference,
            });
        }
        for (_, m) in monitored_by {
            self.route(Signal::Down {
                watched: m.object,
                to: m.other,
                reference: m.reference,
                reason: reason.clone(),
            });
        }
        for (pid, ()) in links {
            self.route(Signal::Exit {
                from: me,
                to: pid,
                reason: reason.clone(),
                link: true,
            });
        }
        pcb.close_mailbox();
        // Last, those waiting for the end: by now it is no longer alive, its
        // name is free, and its links and monitors have been told, so what
        // they do next sees it gone (as after a `'DOWN'`).
        let ties = {
            let mut st = pcb.state.lock();
            st.finished = true;
            st.take_ties()
        };
        for w in ties.into_iter().flat_map(|t| t.exit_watchers) {
            let _ = w.send(reason.clone());
        }
    }

    /// `pid`'s links and monitors that cross to `node` fire with
    /// `noconnection`, and those from `node` are dropped: the connection
    /// to `node` is gone. Done under the process's lock, as its own end
    /// fires them: an `unlink` or `demonitor` that returned before is not
    /// followed by an exit or a `'DOWN'`.
    pub(crate) fn connection_lost_for(&self, pid: Pid, node: Atom) {
        let Some(pcb) = self.lookup(pid) else {
            return;
        };
        let mut st = pcb.state.lock();
        let Some(st) = st.ties_mut() else {
            return;
        };
        st.indexed_on = None;
        let links: Vec<Pid> = st
            .links
            .iter()
            .map(|(p, _)| *p)
            .filter(|p| p.node == node)
            .collect();
        for p in links {
            st.links.remove(&p);
            pcb.exit_signal(p, Reason::NoConnection, false);
        }
        let refs: Vec<Ref> = st
            .monitors
            .iter()
            .filter(|(_, m)| m.other.node == node)
            .map(|(r, _)| *r)
            .collect();
        for r in refs {
            if let Some(m) = st.monitors.remove(&r) {
                pcb.deliver(Message::down(
                    m.reference,
                    m.object.to_term(),
                    Reason::NoConnection,
                ));
            }
        }
        let gone: Vec<Ref> = st
            .monitored_by
            .iter()
            .filter(|(_, m)| m.other.node == node)
            .map(|(r, _)| *r)
            .collect();
        for r in gone {
            st.monitored_by.remove(&r);
        }
    }
}

impl MonitorEntry {
    /// The entry for a monitor of `object`, whose process is `other`.
    pub(crate) fn new(reference: Ref, other: Pid, object: Target) -> MonitorEntry {
        MonitorEntry {
            reference,
            other,
            object,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A call held in its parts (in a server's mailbox) reads as the tuple
    /// Erlang's `gen_server:call` sends, wherever it is looked at as a term.
    #[test]
    fn a_call_in_its_parts_reads_as_the_whole_gen_call_tuple() {
        let from = Pid::new(Atom::from("a@h"), 7, 0, 1);
        let alias = Ref::new(Atom::from("a@h"), 1, &[1, 2, 3]).unwrap();
        let whole = Term::tuple([
            Term::atom("$gen_call"),
            Term::tuple([
                Term::Pid(from),
                Term::ImproperList(vec![Term::atom("alias")], Box::new(Term::Ref(alias))),
            ]),
            Term::Int(42),
        ]);
        let parts = || CallRequest {
            from,
            tag: CallTag::Alias(alias),
            request: Term::Int(42),
        };
        assert_eq!(Message::new(parts()).to_term(), Some(whole.clone()));
        assert_eq!(parts().into_term(), whole);
        let by_ref = CallRequest {
            tag: CallTag::Ref(alias),
            ..parts()
        };
        assert_eq!(
            by_ref.into_term(),
            Term::tuple([
                Term::atom("$gen_call"),
                Term::tuple([Term::Pid(from), Term::Ref(alias)]),
                Term::Int(42),
            ])
        );
    }
}
