//! The locker and the registrar: the two processes of `global` that take
//! locks across nodes (with `gen_server:multi_call` of `set_lock` and
//! `del_lock` to each node's name server, this node's included).
//!
//! The locker takes, for each node that comes up, the lock `global` with
//! the requester id `[ThisLocker, ThatLocker]` (sorted in term order, so
//! both sides name the same lock): first on the boss (the greatest known
//! node name), then on the two nodes, then on every known node. Once both
//! lockers hold it, the name servers exchange names; the lock is released
//! when the name server says the exchange is over (`cancel`).

use std::sync::Arc;
use std::time::Duration;

use ergo_etf::{Atom, Pid, Term};

use super::server::Then;
use super::{CALL_TIMEOUT, Request, SERVER, Shared, cast, server_on};
use crate::message::Message;
use crate::node::Node;
use crate::process::Context;

/// What the name server tells the locker.
pub(crate) enum ToLocker {
    /// The other side's locker, for the attempt tagged `my_tag` here and
    /// `his_tag` there.
    HisTheLocker {
        locker: Pid,
        vsn: i64,
        his_tag: Term,
        my_tag: Term,
    },
    /// The attempt with `node` tagged `tag` is over; `then` runs before the
    /// lock is released.
    Cancel {
        node: Atom,
        tag: Option<Term>,
        then: Option<Then>,
    },
    /// The other side's locker took (or failed to take) the lock.
    LockSet {
        from: Pid,
        set: bool,
        tag: Option<Term>,
    },
    AddToKnown(Vec<Atom>),
    RemoveFromKnown(Atom),
}

/// Another node's locker, as this locker knows it (`#him{}`).
#[derive(Clone)]
struct Him {
    node: Atom,
    locker: Pid,
    vsn: i64,
    my_tag: Term,
    his_tag: Term,
}

struct Locker {
    node: Node,
    me: Pid,
    shared: Arc<Shared>,
    /// Nodes on this host first, as `global` prefers them.
    local: Vec<Him>,
    remote: Vec<Him>,
    known: Vec<Atom>,
    boss: Atom,
    just_synced: bool,
}

pub(super) fn start(node: &Node, shared: Arc<Shared>) -> Pid {
    node.spawn(move |mut ctx| async move {
        let mut l = Locker {
            node: ctx.node().clone(),
            me: ctx.pid(),
            boss: ctx.node().name(),
            shared,
            local: Vec::new(),
            remote: Vec::new(),
            known: Vec::new(),
            just_synced: false,
        };
        l.run(&mut ctx).await;
    })
}

fn nonode() -> Atom {
    Atom::from("nonode@nohost")
}

/// `the_boss/1`: the greatest node name.
fn the_boss(nodes: &[Atom]) -> Atom {
    nodes.iter().copied().max().unwrap_or_else(nonode)
}

fn atoms(nodes: &[Atom]) -> Term {
    Term::List(nodes.iter().map(|n| Term::Atom(*n)).collect())
}

fn host(node: Atom) -> &'static str {
    node.as_str().split_once('@').map_or("", |(_, h)| h)
}

/// `random_sleep/1`: up to 1/8 s times 2^times, at most 8 s.
async fn random_sleep(times: u32) {
    let max = if times > 5 {
        8000
    } else {
        (1u64 << times) * 1000 / 8
    };
    let t = 1 + u64::from(crate::dist::random_u32()) % max;
    tokio::time::sleep(Duration::from_millis(t)).await;
}

/// `gen_server:multi_call(Nodes, global_name_server, Request)` from the
/// process `caller`: the replies of the nodes that answered (a node that
/// did not is left out, as `multi_call` leaves it in its bad nodes).
async fn multi_call(node: &Node, caller: Pid, nodes: &[Atom], request: Term) -> Vec<(Atom, Term)> {
    let mut calls = tokio::task::JoinSet::new();
    for n in nodes {
        let inner = node.inner().clone();
        let (n, request) = (*n, request.clone());
        calls.spawn(async move {
            let r = inner
                .call_term(caller, server_on(n), request, CALL_TIMEOUT)
                .await;
            (n, r)
        });
    }
    let mut replies = Vec::new();
    while let Some(done) = calls.join_next().await {
        if let Ok((n, Ok(reply))) = done {
            replies.push((n, reply));
        }
    }
    replies
}

/// `set_lock_on_nodes/2` (`global:set_lock(Id, Nodes, 0)`): all or none.
async fn set_lock(node: &Node, shared: &Shared, caller: Pid, id: &Term, nodes: &[Atom]) -> bool {
    if nodes.is_empty() {
        return true;
    }
    let local_ok =
        nodes.len() == 1 || !nodes.contains(&node.name()) || shared.can_set_lock(id).is_some();
    if !local_ok {
        return false;
    }
    let replies = multi_call(
        node,
        caller,
        nodes,
        Term::tuple([Term::atom("set_lock"), id.clone()]),
    )
    .await;
    if replies.iter().all(|(_, r)| r.is_atom("true")) {
        return true;
    }
    if replies.len() > 1 {
        let granted: Vec<Atom> = replies
            .iter()
            .filter(|(_, r)| r.is_atom("true"))
            .map(|(n, _)| *n)
            .collect();
        del_lock(node, caller, id, &granted).await;
    }
    false
}

/// `global:del_lock(Id, Nodes)`, on the nodes connected now: a node that
/// went away dropped the lock itself (its name server monitors the holder,
/// and the monitor fired with the connection), and calling it would only
/// connect to it again.
async fn del_lock(node: &Node, caller: Pid, id: &Term, nodes: &[Atom]) {
    let connected = node.dist().nodes();
    let nodes: Vec<Atom> = nodes
        .iter()
        .copied()
        .filter(|n| *n == node.name() || connected.contains(n))
        .collect();
    multi_call(
        node,
        caller,
        &nodes,
        Term::tuple([Term::atom("del_lock"), id.clone()]),
    )
    .await;
}

/// `delete_global_lock/2`: the boss last.
async fn delete_global_lock(node: &Node, caller: Pid, id: &Term, nodes: &[Atom]) {
    let boss = the_boss(nodes);
    let others: Vec<Atom> = nodes.iter().copied().filter(|n| *n != boss).collect();
    del_lock(node, caller, id, &others).await;
    del_lock(node, caller, id, &[boss]).await;
}

fn minus(a: &[Atom], b: &[Atom]) -> Vec<Atom> {
    a.iter().copied().filter(|x| !b.contains(x)).collect()
}

fn is_cancel_for(m: &Message, node: Atom, tag: &Term) -> bool {
    matches!(m.downcast_ref::<ToLocker>(),
        Some(ToLocker::Cancel { node: n, tag: Some(t), .. }) if *n == node && t == tag)
}

impl Locker {
    async fn run(&mut self, ctx: &mut Context) {
        loop {
            if let Some(m) = ctx.try_receive() {
                self.message(ctx, m).await;
                continue;
            }
            let timeout = if self.local.is_empty() && self.remote.is_empty() {
                None
            } else if self.just_synced {
                Some(Duration::ZERO)
            } else if self.known.is_empty() {
                Some(Duration::from_millis(200))
            } else {
                Some(Duration::from_millis(
                    (1000 + 100 * self.known.len() as u64).min(3000),
                ))
            };
            self.just_synced = false;
            let got = match timeout {
                None => Some(ctx.receive().await),
                Some(t) if t.is_zero() => None,
                Some(t) => ctx.receive_timeout(t).await,
            };
            match got {
                Some(m) => self.message(ctx, m).await,
                None if self.shared.global_lock_set() => {}
                None => self.select_node(ctx).await,
            }
        }
    }

    fn update_known(&mut self, msg: ToLocker) {
        match msg {
            ToLocker::AddToKnown(nodes) => {
                let mut k = nodes;
                k.extend(self.known.iter().copied());
                self.known = k;
            }
            ToLocker::RemoveFromKnown(node) => {
                if let Some(i) = self.known.iter().position(|n| *n == node) {
                    self.known.remove(i);
                }
            }
            _ => return,
        }
        let mut all = vec![self.node.name()];
        all.extend(self.known.iter().copied());
        self.boss = the_boss(&all);
    }

    /// `update_locker_known/1`: takes in the known-node changes waiting in
    /// the mailbox.
    fn take_known_changes(&mut self, ctx: &mut Context) {
        while let Some(m) = ctx.try_receive_match(|m| {
            matches!(
                m.downcast_ref::<ToLocker>(),
                Some(ToLocker::AddToKnown(_) | ToLocker::RemoveFromKnown(_))
            )
        }) {
            if let Ok(msg) = m.downcast::<ToLocker>() {
                self.update_known(msg);
            }
        }
    }

    fn find(&self, node: Atom) -> Option<Him> {
        self.local
            .iter()
            .chain(self.remote.iter())
            .find(|h| h.node == node)
            .cloned()
    }

    fn remove_node(&mut self, node: Atom, tag: &Term) {
        let keep = |h: &Him| !(h.node == node && h.my_tag == *tag);
        self.local.retain(keep);
        self.remote.retain(keep);
    }

    async fn message(&mut self, ctx: &mut Context, m: Message) {
        let Ok(msg) = m.downcast::<ToLocker>() else {
            return;
        };
        match msg {
            ToLocker::HisTheLocker {
                locker,
                vsn,
                his_tag,
                my_tag,
            } => {
                let him = Him {
                    node: locker.node,
                    locker,
                    vsn,
                    my_tag,
                    his_tag,
                };
                if host(him.node) == host(self.node.name()) {
                    self.local.insert(0, him);
                } else {
                    self.remote.insert(0, him);
                }
            }
            ToLocker::Cancel {
                node,
                tag: Some(tag),
                then: None,
            } => self.remove_node(node, &tag),
            ToLocker::Cancel { .. } => {}
            ToLocker::LockSet { set: false, .. } => {}
            ToLocker::LockSet {
                from,
                set: true,
                tag,
            } => self.lock_set_by_him(ctx, from, tag).await,
            other @ (ToLocker::AddToKnown(_) | ToLocker::RemoveFromKnown(_)) => {
                self.update_known(other)
            }
        }
    }

    /// The other side's locker holds the lock on its nodes: take it on this
    /// side too, and answer.
    async fn lock_set_by_him(&mut self, ctx: &mut Context, from: Pid, tag: Option<Term>) {
        let node = from.node;
        let him = self
            .find(node)
            .filter(|h| tag.as_ref().is_none_or(|t| *t == h.my_tag));
        let Some(him) = him else {
            self.send_lock_set(ctx, false, from, 5, Term::from(0));
            return;
        };
        let id = self.lock_id(from);
        let set = self.lock_nodes_safely(ctx, &id, &[]).await;
        self.send_lock_set(ctx, set, from, him.vsn, him.his_tag.clone());
        if !set {
            self.just_synced = false;
            return;
        }
        let mut known = vec![self.node.name()];
        known.extend(self.known.iter().copied());
        let _ = ctx.send(
            Atom::from(SERVER),
            cast(Term::tuple([
                Term::atom("lock_is_set"),
                Term::Atom(node),
                him.my_tag.clone(),
                id.clone(),
            ])),
        );
        self.wait_cancel_lock(ctx, node, &id, &him.my_tag, &known)
            .await;
        self.just_synced = true;
        self.remove_node(node, &him.my_tag);
    }

    /// `locker_lock_id/2`: `{global, lists:sort([ThisLocker, ThatLocker])}`.
    fn lock_id(&self, his: Pid) -> Term {
        let mut pair = [self.me, his];
        pair.sort();
        Term::tuple([
            Term::atom("global"),
            Term::List(pair.iter().map(|p| Term::Pid(*p)).collect()),
        ])
    }

    fn send_lock_set(&self, ctx: &Context, set: bool, his: Pid, vsn: i64, his_tag: Term) {
        let mut msg = vec![
            Term::atom("lock_set"),
            Term::Pid(self.me),
            Term::from(set),
            atoms(&self.known),
        ];
        if vsn >= 8 {
            msg.push(his_tag);
        }
        let msg = Term::tuple(msg);
        if vsn < 6 {
            let _ = ctx.send(his, msg);
        } else {
            let _ = ctx.send(server_on(his.node), cast(msg));
        }
    }

    /// `lock_nodes_safely/3`: the boss first, then this node and `extra`,
    /// then every known node.
    async fn lock_nodes_safely(&mut self, ctx: &mut Context, id: &Term, extra: &[Atom]) -> bool {
        let me = self.node.name();
        let first: Vec<Atom> = [self.boss].into_iter().filter(|n| *n != nonode()).collect();
        if !(first == [me] || self.shared.can_set_lock(id).is_some()) {
            return false;
        }
        if !set_lock(&self.node, &self.shared, self.me, id, &first).await {
            return false;
        }
        self.take_known_changes(ctx);
        let mut second = vec![me];
        second.extend(extra.iter().copied());
        let second: Vec<Atom> = minus(&second, &first)
            .into_iter()
            .filter(|n| *n != nonode())
            .collect();
        if !set_lock(&self.node, &self.shared, self.me, id, &second).await {
            del_lock(&self.node, self.me, id, &first).await;
            return false;
        }
        let rest = minus(&self.known, &first);
        if !set_lock(&self.node, &self.shared, self.me, id, &rest).await {
            let mut so_far = first;
            so_far.extend(second);
            del_lock(&self.node, self.me, id, &so_far).await;
            return false;
        }
        true
    }

    /// `select_node/1`: with no lock held, picks a waiting node and tries
    /// to take the lock on both sides.
    async fn select_node(&mut self, ctx: &mut Context) {
        let use_remote = self.local.is_empty();
        let known = self.known.clone();
        let list = if use_remote {
            &mut self.remote
        } else {
            &mut self.local
        };
        list.retain(|h| !known.contains(&h.node));
        if list.is_empty() {
            return;
        }
        let i = crate::dist::random_u32() as usize % list.len();
        let him = list[i].clone();
        let id = self.lock_id(him.locker);
        if !self.lock_nodes_safely(ctx, &id, &[him.node]).await {
            return;
        }
        let mut known = vec![self.node.name(), him.node];
        known.extend(self.known.iter().copied());
        self.send_lock_set(ctx, true, him.locker, him.vsn, him.his_tag.clone());
        self.lock_is_set(ctx, &him, &known, &id).await;
    }

    /// `lock_is_set/5`: waits for the other side's answer.
    async fn lock_is_set(&mut self, ctx: &mut Context, him: &Him, known: &[Atom], id: &Term) {
        loop {
            let m = ctx
                .receive_match(|m| match m.downcast_ref::<ToLocker>() {
                    Some(ToLocker::LockSet { from, .. }) => from.node == him.node,
                    Some(ToLocker::Cancel {
                        node, tag: Some(t), ..
                    }) => *node == him.node && *t == him.my_tag,
                    _ => false,
                })
                .await;
            match m.downcast::<ToLocker>() {
                Ok(ToLocker::LockSet { set, tag, .. }) => {
                    if tag.as_ref().is_some_and(|t| *t != him.my_tag) {
                        // An answer to an attempt given up before.
                        continue;
                    }
                    if set {
                        let _ = ctx.send(
                            Atom::from(SERVER),
                            cast(Term::tuple([
                                Term::atom("lock_is_set"),
                                Term::Atom(him.node),
                                him.my_tag.clone(),
                                id.clone(),
                            ])),
                        );
                        self.wait_cancel_lock(ctx, him.node, id, &him.my_tag, known)
                            .await;
                        self.just_synced = true;
                        let gone = |h: &Him| h.node == him.node && h.my_tag == him.my_tag;
                        self.local.retain(|h| !gone(h));
                        self.remote.retain(|h| !gone(h));
                    } else {
                        delete_global_lock(&self.node, self.me, id, known).await;
                    }
                    return;
                }
                Ok(ToLocker::Cancel { node, tag, then }) => {
                    if let Some(Then(f)) = then {
                        f();
                    }
                    delete_global_lock(&self.node, self.me, id, known).await;
                    if let Some(t) = tag {
                        self.remove_node(node, &t);
                    }
                    return;
                }
                _ => return,
            }
        }
    }

    /// `wait_cancel_lock/6`: holds the lock until the name server says the
    /// exchange with `node` is over.
    async fn wait_cancel_lock(
        &mut self,
        ctx: &mut Context,
        node: Atom,
        id: &Term,
        tag: &Term,
        known: &[Atom],
    ) {
        let m = ctx.receive_match(|m| is_cancel_for(m, node, tag)).await;
        if let Ok(ToLocker::Cancel {
            then: Some(Then(f)),
            ..
        }) = m.downcast::<ToLocker>()
        {
            f();
        }
        delete_global_lock(&self.node, self.me, id, known).await;
    }
}

// ------------------------------------------------------------ the registrar

/// Starts the registrar, which runs this node's registrations one at a
/// time, each under the lock `global` on every known node.
pub(super) fn start_registrar(node: &Node, shared: Arc<Shared>) -> Pid {
    node.spawn(move |mut ctx| async move {
        loop {
            let m = ctx.receive().await;
            let Ok(request) = m.downcast::<Request>() else {
                continue;
            };
            let node = ctx.node().clone();
            let me = ctx.pid();
            let id = Term::tuple([Term::atom("global"), Term::Pid(me)]);
            let nodes = lock_known(&node, &shared, me, &id).await;
            match request {
                Request::Register {
                    name,
                    pid,
                    method,
                    force,
                    reply,
                } => {
                    let free = force
                        || (node.global().whereis_name(&name).is_none()
                            && check_dupname(&shared, &name, pid));
                    if free {
                        let req =
                            Term::tuple([Term::atom("register"), name, Term::Pid(pid), method]);
                        multi_call(&node, me, &nodes, req).await;
                    }
                    let _ = reply.send(free);
                }
                Request::Unregister { name, reply } => {
                    if node.global().whereis_name(&name).is_some()
                        || shared.names.read().contains_key(&name)
                    {
                        let req = Term::tuple([Term::atom("unregister"), name]);
                        multi_call(&node, me, &nodes, req).await;
                    }
                    let _ = reply.send(());
                }
            }
            delete_global_lock(&node, me, &id, &nodes).await;
        }
        #[allow(unreachable_code)]
        ()
    })
}

/// `check_dupname/2`: a process holds one global name.
fn check_dupname(shared: &Shared, name: &Term, pid: Pid) -> bool {
    let names: Vec<Term> = shared
        .names
        .read()
        .iter()
        .filter(|(_, (p, _))| *p == pid)
        .map(|(n, _)| n.clone())
        .collect();
    if names.is_empty() {
        return true;
    }
    tracing::error!(
        "global: {pid} registered under several names: {}",
        Term::List(std::iter::once(name.clone()).chain(names).collect())
    );
    false
}

/// `set_lock_known/2`: the lock `id` on the boss, then on every known
/// node, retried (after a random sleep) until the known nodes held still.
async fn lock_known(node: &Node, shared: &Shared, me: Pid, id: &Term) -> Vec<Atom> {
    let mut times = 0;
    loop {
        let known = shared.known.read().clone();
        let mut nodes = vec![node.name()];
        nodes.extend(known.iter().copied());
        let boss = the_boss(&nodes);
        if set_lock(node, shared, me, id, &[boss]).await {
            if set_lock(node, shared, me, id, &nodes).await {
                let now = shared.known.read().clone();
                if minus(&now, &known).is_empty() {
                    return nodes;
                }
            }
            del_lock(node, me, id, &[boss]).await;
        }
        random_sleep(times).await;
        times += 1;
    }
}
