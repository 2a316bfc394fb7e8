//! `global_name_server`: the names, the locks, and the synchronisation with
//! each node that comes up, message for message as `global.erl` (OTP 25)
//! runs it.
//!
//! When a node comes up, each side sends `{init_connect, {8, MyTag}, Node,
//! {locker, _, Known, TheLocker}}` and starts a resolver for that node.
//! Each side's locker learns of the other's, and one of them takes the lock
//! `global` on both clusters; then each side sends its names
//! (`exchange`), its resolver compares them with its own (running the
//! resolve function where a name is held twice and this node's name is the
//! lower), the sides trade what they decided (`resolved`), apply it, tell
//! the nodes they knew before (`new_nodes`), and the lock is released.
//! Every step carries the tags of that attempt, so a message of an attempt
//! that was given up is ignored.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use ergo_etf::{Atom, Fun, Pid, Ref, Term};
use rustc_hash::{FxHashMap, FxHashSet};

use super::locker::ToLocker;
use super::{Lock, SERVER, Shared, VERSION, cast, lock_id, server_on};
use crate::gen_server::send_reply;
use crate::message::Message;
use crate::node::Node;
use crate::process::Context;
use crate::reason::Reason;

/// How many lost connections are remembered (`global` keeps each for an
/// hour).
const MAX_LOST: usize = 4096;

/// `erlang:unique_integer([monotonic])` for the sync tags.
fn unique() -> Term {
    static NEXT: AtomicI64 = AtomicI64::new(-576_460_752_303_423_000);
    Term::from(NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The state `global` keeps per node in its process dictionary while a
/// synchronisation runs.
#[derive(Default)]
struct Sync {
    my_tag: Option<Term>,
    his_tag: Option<Term>,
    prot_vsn: Option<i64>,
    wait_lock: Option<WaitLock>,
    save_ops: Option<SaveOps>,
    pre_connect: Option<(i64, Term, Term)>,
    lock_id: Option<Term>,
}

enum WaitLock {
    LockIsSet,
    Exchange(Vec<Term>),
}

enum SaveOps {
    Ops(Vec<Term>),
    Resolved {
        his_known: Vec<Term>,
        names_ext: Term,
        his_resolved: Vec<Term>,
    },
}

/// A registered name as the server holds it.
struct Name {
    pid: Pid,
    method: Term,
    monitor: Ref,
}

/// A `global:sync/0` waiting for nodes.
struct Syncer {
    waiting: Vec<Atom>,
    from: Pid,
    tag: Term,
}

/// How a node came to be dropped (`handle_nodedown/3`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Down {
    Disconnected,
    RemoveConnection,
}

struct Server {
    node: Node,
    me: Pid,
    name: Atom,
    shared: Arc<Shared>,
    locker: Pid,
    names: FxHashMap<Term, Name>,
    names_ext: FxHashMap<Term, (Pid, Atom)>,
    /// Monitor → the names and lock resources it guards.
    by_monitor: FxHashMap<Ref, (Vec<Term>, Vec<Term>)>,
    global_lock_down: bool,
    /// Synced nodes and their protocol versions.
    known: FxHashMap<Atom, i64>,
    pending: FxHashMap<Atom, i64>,
    removing: FxHashSet<Atom>,
    synced: Vec<Atom>,
    resolvers: FxHashMap<Atom, (Term, Pid)>,
    syncs: FxHashMap<Atom, Sync>,
    syncers: Vec<Syncer>,
    lost: FxHashMap<(Atom, Atom), (Term, i64)>,
    creation_extension: i64,
}

/// Starts the name server, registered as `global_name_server`.
pub(super) fn start(node: &Node, shared: Arc<Shared>, locker: Pid) -> Pid {
    let pid = node.spawn(move |ctx| run(ctx, shared, locker));
    if let Err(e) = node.register(Atom::from(SERVER), pid) {
        tracing::warn!("cannot register {SERVER}: {e}");
    }
    pid
}

async fn run(mut ctx: Context, shared: Arc<Shared>, locker: Pid) {
    let node = ctx.node().clone();
    node.dist().monitor_nodes(ctx.pid());
    let mut s = Server {
        name: node.name(),
        node,
        me: ctx.pid(),
        shared,
        locker,
        names: FxHashMap::default(),
        names_ext: FxHashMap::default(),
        by_monitor: FxHashMap::default(),
        global_lock_down: false,
        known: FxHashMap::default(),
        pending: FxHashMap::default(),
        removing: FxHashSet::default(),
        synced: Vec::new(),
        resolvers: FxHashMap::default(),
        syncs: FxHashMap::default(),
        syncers: Vec::new(),
        lost: FxHashMap::default(),
        creation_extension: (crate::dist::random_u32() as i64) << 24,
    };
    for n in s.node.dist().nodes() {
        s.nodeup(&ctx, n);
    }
    loop {
        match ctx.receive().await {
            Message::Term(t) => s.term(&ctx, t),
            Message::Down(d) => s.down(&ctx, d.reference),
            other => tracing::trace!("{SERVER} ignores {other}"),
        }
    }
}

/// `{'$gen_call', {Pid, Tag}, Request}`.
fn gen_call(t: &[Term]) -> Option<(Pid, Term, Term)> {
    match t {
        [c, Term::Tuple(from), req] if c.is_atom("$gen_call") => match from.as_slice() {
            [Term::Pid(p), tag] => Some((*p, tag.clone(), req.clone())),
            _ => None,
        },
        _ => None,
    }
}

fn list(t: &Term) -> Vec<Term> {
    t.as_list().map(<[Term]>::to_vec).unwrap_or_default()
}

/// `node_list/1`: the node names of a list of `Node` and `{Node, Vsn}`.
fn node_list(t: &[Term]) -> Vec<Atom> {
    t.iter()
        .filter_map(|x| match x {
            Term::Atom(a) => Some(*a),
            Term::Tuple(v) => v.first().and_then(Term::as_atom),
            _ => None,
        })
        .collect()
}

fn pair(a: &str, b: Term) -> Term {
    Term::tuple([Term::atom(a), b])
}

impl Server {
    fn sync_of(&mut self, node: Atom) -> &mut Sync {
        self.syncs.entry(node).or_default()
    }

    fn my_tag(&self, node: Atom) -> Option<Term> {
        self.syncs.get(&node).and_then(|s| s.my_tag.clone())
    }

    fn his_tag(&self, node: Atom) -> Term {
        self.syncs
            .get(&node)
            .and_then(|s| s.his_tag.clone())
            .unwrap_or(Term::atom("undefined"))
    }

    /// `reset_node_state/1`.
    fn reset(&mut self, node: Atom) {
        self.syncs.remove(&node);
    }

    fn tell_locker(&self, ctx: &Context, msg: ToLocker) {
        let _ = ctx.send_message(self.locker, Message::local(msg));
    }

    fn publish_known(&self) {
        *self.shared.known.write() = self.known.keys().copied().collect();
    }

    /// `gns_volatile_send/2`: to another node's name server, only over a
    /// connection that exists.
    fn volatile_send(&self, ctx: &Context, node: Atom, msg: Term) {
        let _ = ctx.send_noconnect(server_on(node), msg);
    }

    fn cast_to(&self, ctx: &Context, node: Atom, msg: Term) {
        let _ = ctx.send(server_on(node), cast(msg));
    }

    fn node_vsn(&self, node: Atom) -> i64 {
        if node == self.name {
            return VERSION;
        }
        self.known
            .get(&node)
            .or_else(|| self.pending.get(&node))
            .copied()
            .unwrap_or(0)
    }

    fn potentially_known(&self, node: Atom) -> bool {
        self.known.contains_key(&node) || self.pending.contains_key(&node)
    }

    // ------------------------------------------------------------ dispatch

    fn term(&mut self, ctx: &Context, t: Term) {
        let Term::Tuple(v) = &t else {
            tracing::warn!("{SERVER} received an unexpected message: {t}");
            return;
        };
        if let Some((from, tag, req)) = gen_call(v) {
            return self.call(ctx, from, tag, req);
        }
        match v.as_slice() {
            [c, msg] if c.is_atom("$gen_cast") => self.cast(ctx, msg),
            [e, Term::Atom(n)] if e.is_atom("nodeup") => self.nodeup(ctx, *n),
            [e, Term::Atom(n)] if e.is_atom("nodedown") => {
                self.nodedown(ctx, *n, Down::Disconnected)
            }
            [e, Term::Atom(n)] if e.is_atom("extra_nodedown") => {
                self.syncers_lost(*n);
                self.nodedown(ctx, *n, Down::Disconnected);
            }
            [e, Term::Atom(a), xcre, op, Term::Atom(b)] if e.is_atom("lost_connection") => {
                self.lost_connection(ctx, &t, *a, xcre, op.as_i64().unwrap_or(0), *b)
            }
            [e, Term::Atom(n)] if e.is_atom("remove_connection") => {
                if self.potentially_known(*n) {
                    self.node.dist().disconnect(*n);
                    self.nodedown(ctx, *n, Down::RemoveConnection);
                    tracing::warn!(
                        "'global' at node {} disconnected node {n} in order to prevent overlapping partitions",
                        self.name
                    );
                }
            }
            [e, Term::Atom(n), tag] if e.is_atom("cancel_connect") => {
                if self.my_tag(*n).as_ref() == Some(tag) {
                    self.cancel_locker(ctx, *n, Some(tag.clone()), None);
                    self.reset(*n);
                    self.pending.remove(n);
                    self.restart_connect(ctx, *n, Some(tag.clone()));
                }
            }
            [e, Term::Atom(n), his_my, his_his] if e.is_atom("init_connect_ack") => {
                let my = self.my_tag(*n);
                let his = self.syncs.get(n).and_then(|s| s.his_tag.clone());
                if my.as_ref() != Some(his_my) || his.as_ref() != Some(his_his) {
                    self.cancel_connect_message(ctx, *n, his_his.clone());
                    self.restart_connect(ctx, *n, my);
                }
            }
            _ => tracing::warn!("{SERVER} received an unexpected message: {t}"),
        }
    }

    fn call(&mut self, ctx: &Context, from: Pid, tag: Term, req: Term) {
        let (node, me) = (self.node.clone(), self.me);
        let reply = |r: Term| {
            send_reply(&node, me, from, tag.clone(), r);
        };
        let r = req.as_tuple().unwrap_or(&[]);
        match r {
            [c, name, Term::Pid(pid), method] if c.is_atom("register") => {
                self.ins_name(
                    ctx,
                    name.clone(),
                    *pid,
                    method.clone(),
                    From::Pid(from),
                    &[],
                );
                reply(Term::atom("yes"));
            }
            [c, name] if c.is_atom("unregister") => {
                self.delete_name(ctx, name);
                reply(Term::atom("ok"));
            }
            [c, name, Term::Pid(pid), method, Term::Atom(reg_node)]
                if c.is_atom("register_ext") =>
            {
                self.ins_name(
                    ctx,
                    name.clone(),
                    *pid,
                    method.clone(),
                    From::Pid(from),
                    &[],
                );
                if self.names.contains_key(name) {
                    self.names_ext.insert(name.clone(), (*pid, *reg_node));
                }
                reply(Term::atom("yes"));
            }
            [c, id] if c.is_atom("set_lock") => {
                let ok = self.set_lock(ctx, id, from);
                reply(Term::from(ok));
            }
            [c, id] if c.is_atom("del_lock") => {
                self.del_lock(ctx, id, from);
                reply(Term::atom("true"));
            }
            [c, nodes] if c.is_atom("sync") => {
                let waiting: Vec<Atom> = node_list(&list(nodes))
                    .into_iter()
                    .filter(|n| *n != self.name && !self.synced.contains(n))
                    .filter(|n| self.node.dist().nodes().contains(n))
                    .collect();
                if waiting.is_empty() {
                    reply(Term::atom("ok"));
                } else {
                    self.syncers.push(Syncer { waiting, from, tag });
                }
            }
            _ if req.is_atom("get_known") => reply(self.known_list()),
            _ if req.is_atom("get_synced") => reply(Term::List(
                self.synced.iter().map(|n| Term::Atom(*n)).collect(),
            )),
            _ if req.is_atom("get_protocol_version") => reply(Term::from(VERSION)),
            _ if req.is_atom("get_names_ext") => reply(self.names_ext_term()),
            _ => tracing::warn!("{SERVER} received an unexpected call from {from}: {req}"),
        }
    }

    fn cast(&mut self, ctx: &Context, msg: &Term) {
        let v = msg.as_tuple().unwrap_or(&[]);
        match v {
            [c, vsn, Term::Atom(node), init] if c.is_atom("init_connect") => {
                let (vsn, his_tag, his_vsn) = match vsn.as_tuple() {
                    Some([Term::Int(his_vsn), his_tag]) => {
                        ((*his_vsn).min(VERSION), his_tag.clone(), *his_vsn)
                    }
                    Some([Term::Int(his_vsn), his_tag, ..]) => (VERSION, his_tag.clone(), *his_vsn),
                    _ => {
                        tracing::info!("Illegal global protocol version {vsn} Node: {node}");
                        return;
                    }
                };
                self.init_connect(ctx, vsn, *node, init.clone(), his_tag, his_vsn);
            }
            [c, Term::Atom(node), tag, lock] if c.is_atom("lock_is_set") => {
                if self.my_tag(*node).as_ref() == Some(tag) {
                    self.lock_is_set(ctx, *node, lock.clone());
                } else {
                    self.cancel_locker(ctx, *node, Some(tag.clone()), None);
                }
            }
            [c, Term::Atom(node), names, _ext, tag] if c.is_atom("exchange") => {
                if self.my_tag(*node).as_ref() == Some(tag) {
                    self.exchange(*node, list(names));
                } else {
                    self.cancel_locker(ctx, *node, Some(tag.clone()), None);
                }
            }
            [c, Term::Atom(node), tag, ops, resolved] if c.is_atom("exchange_ops") => {
                if self.my_tag(*node).as_ref() != Some(tag) {
                    return self.cancel_locker(ctx, *node, Some(tag.clone()), None);
                }
                let known = self.known_list();
                let his_tag = self.his_tag(*node);
                self.cast_to(
                    ctx,
                    *node,
                    Term::tuple([
                        Term::atom("resolved"),
                        Term::Atom(self.name),
                        resolved.clone(),
                        known,
                        Term::atom("unused"),
                        self.names_ext_term(),
                        his_tag,
                    ]),
                );
                let ops = list(ops);
                match self.sync_of(*node).save_ops.take() {
                    Some(SaveOps::Resolved {
                        his_known,
                        names_ext,
                        his_resolved,
                    }) => {
                        self.sync_of(*node).save_ops = Some(SaveOps::Ops(ops));
                        self.resolved(ctx, *node, his_resolved, his_known, names_ext);
                    }
                    _ => self.sync_of(*node).save_ops = Some(SaveOps::Ops(ops)),
                }
            }
            [
                c,
                Term::Atom(node),
                his_resolved,
                his_known,
                _unused,
                names_ext,
                tag,
            ] if c.is_atom("resolved") => {
                if self.my_tag(*node).as_ref() != Some(tag) {
                    return self.cancel_locker(ctx, *node, Some(tag.clone()), None);
                }
                if matches!(self.sync_of(*node).save_ops, Some(SaveOps::Ops(_))) {
                    self.resolved(
                        ctx,
                        *node,
                        list(his_resolved),
                        list(his_known),
                        names_ext.clone(),
                    );
                } else {
                    self.sync_of(*node).save_ops = Some(SaveOps::Resolved {
                        his_known: list(his_known),
                        names_ext: names_ext.clone(),
                        his_resolved: list(his_resolved),
                    });
                }
            }
            [c, Term::Atom(node), ops, names_ext, nodes, extra] if c.is_atom("new_nodes") => {
                let added = self.add_to_known(&list(nodes));
                self.sync_others(ctx, added.clone());
                self.do_ops(ctx, &list(ops), names_ext, &list(extra));
                self.tell_locker(ctx, ToLocker::AddToKnown(added));
            }
            [c, Term::Atom(node), _] if c.is_atom("in_sync") => {
                self.syncers_synced(*node);
                if !self.synced.contains(node) {
                    self.synced.push(*node);
                }
                self.pending.remove(node);
                let tag = self.my_tag(*node);
                self.cancel_locker(ctx, *node, tag, None);
                self.reset(*node);
            }
            [c, Term::Pid(pid), set, _known, tag] if c.is_atom("lock_set") => {
                if self.my_tag(pid.node).as_ref() == Some(tag) {
                    self.tell_locker(
                        ctx,
                        ToLocker::LockSet {
                            from: *pid,
                            set: set.is_atom("true"),
                            tag: Some(tag.clone()),
                        },
                    );
                }
            }
            [c, Term::Pid(pid), set, _known] if c.is_atom("lock_set") => self.tell_locker(
                ctx,
                ToLocker::LockSet {
                    from: *pid,
                    set: set.is_atom("true"),
                    tag: None,
                },
            ),
            [c, _, _] if c.is_atom("async_del_name") || c.is_atom("async_del_lock") => {}
            _ => tracing::warn!("{SERVER} received an unexpected cast: {msg}"),
        }
    }

    // ------------------------------------------------------ synchronisation

    /// `handle_nodeup/2`.
    fn nodeup(&mut self, ctx: &Context, node: Atom) {
        if node == self.name || self.known.contains_key(&node) || self.resolvers.contains_key(&node)
        {
            return;
        }
        // An `init_connect` that came before the node-up notice is taken
        // again, after this node's own.
        if let Some((vsn, init, his_tag)) =
            self.syncs.get_mut(&node).and_then(|s| s.pre_connect.take())
        {
            let again = cast(Term::tuple([
                Term::atom("init_connect"),
                Term::tuple([Term::from(vsn), his_tag]),
                Term::Atom(node),
                init,
            ]));
            let _ = ctx.send(self.me, again);
        }
        let tag = unique();
        self.sync_of(node).my_tag = Some(tag.clone());
        let known = Term::map(
            self.known
                .iter()
                .map(|(n, v)| (Term::Atom(*n), Term::from(*v))),
        );
        let init = Term::tuple([
            Term::atom("init_connect"),
            Term::tuple([Term::from(VERSION), tag.clone()]),
            Term::Atom(self.name),
            Term::tuple([
                Term::atom("locker"),
                Term::atom("no_longer_a_pid"),
                known,
                Term::Pid(self.locker),
            ]),
        ]);
        self.cast_to(ctx, node, init);
        let resolver = start_resolver(ctx, node, tag.clone(), self.shared.clone());
        self.resolvers.insert(node, (tag, resolver));
    }

    /// `init_connect/6`.
    fn init_connect(
        &mut self,
        ctx: &Context,
        vsn: i64,
        node: Atom,
        init: Term,
        his_tag: Term,
        his_vsn: i64,
    ) {
        if self.pending.contains_key(&node) {
            if his_vsn < 8 {
                self.node.dist().disconnect(node);
                tracing::error!(
                    "'global' at node {} got an out of sync connection attempt from old version {his_vsn} node {node}. Disconnecting from it.",
                    self.name
                );
                return;
            }
            self.cancel_connect_message(ctx, node, his_tag.clone());
            let old = self.my_tag(node);
            self.restart_connect(ctx, node, old);
        }
        let s = self.sync_of(node);
        s.prot_vsn = Some(vsn);
        s.his_tag = Some(his_tag.clone());
        match self.resolvers.get(&node) {
            Some((my_tag, _)) => {
                let my_tag = my_tag.clone();
                let his_locker = match init.as_tuple() {
                    Some([_, _, _, Term::Pid(l)]) => *l,
                    _ => {
                        tracing::warn!(
                            "{SERVER}: init_connect from {node} without a locker: {init}"
                        );
                        return;
                    }
                };
                self.tell_locker(
                    ctx,
                    ToLocker::HisTheLocker {
                        locker: his_locker,
                        vsn,
                        his_tag: his_tag.clone(),
                        my_tag: my_tag.clone(),
                    },
                );
                if his_vsn >= 8 {
                    self.volatile_send(
                        ctx,
                        node,
                        Term::tuple([
                            Term::atom("init_connect_ack"),
                            Term::Atom(self.name),
                            his_tag,
                            my_tag,
                        ]),
                    );
                }
                self.pending.insert(node, his_vsn);
            }
            None => self.sync_of(node).pre_connect = Some((vsn, init, his_tag)),
        }
    }

    /// `restart_connect/3`.
    fn restart_connect(&mut self, ctx: &Context, node: Atom, tag: Option<Term>) {
        self.cancel_locker(ctx, node, tag.clone(), None);
        self.reset(node);
        self.pending.remove(&node);
        if matches!(tag, Some(Term::Int(_))) {
            self.nodeup(ctx, node);
        }
    }

    /// `lock_is_set/3`: this node's locker holds `global` on both sides.
    fn lock_is_set(&mut self, ctx: &Context, node: Atom, lock: Term) {
        let names = Term::List(
            self.names
                .iter()
                .map(|(n, e)| Term::tuple([n.clone(), Term::Pid(e.pid), e.method.clone()]))
                .collect(),
        );
        let his_tag = self.his_tag(node);
        self.cast_to(
            ctx,
            node,
            Term::tuple([
                Term::atom("exchange"),
                Term::Atom(self.name),
                names,
                Term::NIL,
                his_tag,
            ]),
        );
        let s = self.sync_of(node);
        s.lock_id = Some(lock);
        match s.wait_lock.take() {
            Some(WaitLock::Exchange(names)) => {
                s.wait_lock = Some(WaitLock::LockIsSet);
                self.exchange(node, names);
            }
            _ => s.wait_lock = Some(WaitLock::LockIsSet),
        }
    }

    /// `exchange/3`: the other side's names, resolved once the lock is set.
    fn exchange(&mut self, node: Atom, names: Vec<Term>) {
        let s = self.sync_of(node);
        match s.wait_lock.take() {
            Some(WaitLock::LockIsSet) => {
                if let Some((_, resolver)) = self.resolvers.get(&node) {
                    let _ = self
                        .node
                        .send_message((*resolver).into(), Message::local(Resolve { node, names }));
                }
            }
            _ => s.wait_lock = Some(WaitLock::Exchange(names)),
        }
    }

    /// `resolved/5`: both sides' decisions are in.
    fn resolved(
        &mut self,
        ctx: &Context,
        node: Atom,
        his_resolved: Vec<Term>,
        his_known: Vec<Term>,
        names_ext: Term,
    ) {
        let mut ops = match self.sync_of(node).save_ops.take() {
            Some(SaveOps::Ops(ops)) => ops,
            _ => Vec::new(),
        };
        ops.extend(his_resolved);
        let known_before: Vec<(Atom, i64)> = self.known.iter().map(|(n, v)| (*n, *v)).collect();
        let mut with_him = vec![Term::Atom(node)];
        with_him.extend(his_known.iter().cloned());
        let new_nodes = self.node_vsn_list(&with_him);
        let his_known_nodes = node_list(&his_known);
        self.sync_others(ctx, his_known_nodes.clone());
        let s = self.sync_of(node);
        let extra = vec![
            pair(
                "vsn",
                s.prot_vsn.map_or(Term::atom("undefined"), Term::from),
            ),
            pair("lock", s.lock_id.clone().unwrap_or(Term::atom("undefined"))),
        ];
        self.do_ops(ctx, &ops, &names_ext, &extra);
        self.syncers_synced(node);
        for n in &his_known_nodes {
            self.cancel_resolved_locker(ctx, *n, None);
        }
        let msg = cast(Term::tuple([
            Term::atom("new_nodes"),
            Term::Atom(self.name),
            Term::List(ops.clone()),
            names_ext.clone(),
            Term::List(new_nodes.clone()),
            Term::List(extra.clone()),
        ]));
        let old_msg = cast(Term::tuple([
            Term::atom("new_nodes"),
            Term::Atom(self.name),
            Term::List(ops),
            names_ext,
            Term::List(node_list(&new_nodes).into_iter().map(Term::Atom).collect()),
            Term::List(extra),
        ]));
        let tell = self.node.clone();
        let then: Box<dyn FnOnce() + Send> = Box::new(move || {
            for (n, v) in known_before {
                let m = if v >= 7 { msg.clone() } else { old_msg.clone() };
                let _ = tell.send(server_on(n), m);
            }
        });
        self.cancel_resolved_locker(ctx, node, Some(then));
        let added = self.add_to_known(&new_nodes);
        self.tell_locker(ctx, ToLocker::AddToKnown(added));
        if !self.synced.contains(&node) {
            self.synced.push(node);
        }
    }

    /// `cancel_resolved_locker/3`.
    fn cancel_resolved_locker(
        &mut self,
        ctx: &Context,
        node: Atom,
        then: Option<Box<dyn FnOnce() + Send>>,
    ) {
        let tag = self.my_tag(node);
        self.pending.remove(&node);
        self.cancel_locker(ctx, node, tag, then);
        self.reset(node);
    }

    /// `cancel_locker/4`: tells the locker, the other side (while the
    /// attempt is pending) and the resolver that the attempt `tag` is over.
    fn cancel_locker(
        &mut self,
        ctx: &Context,
        node: Atom,
        tag: Option<Term>,
        then: Option<Box<dyn FnOnce() + Send>>,
    ) {
        self.tell_locker(
            ctx,
            ToLocker::Cancel {
                node,
                tag: tag.clone(),
                then: then.map(Then),
            },
        );
        // `send_cancel_connect/3`.
        if self.pending.get(&node).is_some_and(|v| *v >= 8) && self.my_tag(node) == tag {
            let his = self.his_tag(node);
            self.cancel_connect_message(ctx, node, his);
        }
        if let Some((t, resolver)) = self.resolvers.get(&node)
            && Some(t) == tag.as_ref()
        {
            self.node.exit(self.me, *resolver, Reason::Kill);
            self.resolvers.remove(&node);
        }
    }

    fn cancel_connect_message(&self, ctx: &Context, node: Atom, his_tag: Term) {
        self.volatile_send(
            ctx,
            node,
            Term::tuple([Term::atom("cancel_connect"), Term::Atom(self.name), his_tag]),
        );
    }

    /// `handle_nodedown/3`.
    fn nodedown(&mut self, ctx: &Context, node: Atom, what: Down) {
        let tag = self.my_tag(node);
        self.cancel_locker(ctx, node, tag, None);
        self.tell_locker(ctx, ToLocker::RemoveFromKnown(node));
        self.reset(node);
        match what {
            Down::RemoveConnection => {
                self.removing.insert(node);
            }
            Down::Disconnected => {
                if !self.removing.remove(&node) {
                    self.inform_connection_loss(ctx, node);
                }
            }
        }
        self.pending.remove(&node);
        self.known.remove(&node);
        self.synced.retain(|n| *n != node);
        self.syncers_lost(node);
        self.publish_known();
    }

    /// `inform_connection_loss/2`: tells the other nodes, which then
    /// disconnect from `node` too (OTP 25's prevention of overlapping
    /// partitions).
    fn inform_connection_loss(&self, ctx: &Context, node: Atom) {
        let op = unique();
        let msg = Term::tuple([
            Term::atom("lost_connection"),
            Term::Atom(self.name),
            self.xcreation(),
            op,
            Term::Atom(node),
        ]);
        self.volatile_multicast(ctx, &msg, node);
    }

    fn xcreation(&self) -> Term {
        let creation = self
            .node
            .inner()
            .dist
            .config
            .get()
            .map_or(0, |c| i64::from(c.conn.local.creation));
        Term::from(self.creation_extension + creation)
    }

    fn volatile_multicast(&self, ctx: &Context, msg: &Term, except: Atom) {
        for (n, v) in self.known.iter().chain(self.pending.iter()) {
            if *n != except && *v >= 7 {
                self.volatile_send(ctx, *n, msg.clone());
            }
        }
    }

    fn lost_connection(
        &mut self,
        ctx: &Context,
        msg: &Term,
        a: Atom,
        xcre: &Term,
        op: i64,
        b: Atom,
    ) {
        if let Some((x, seen)) = self.lost.get(&(a, b))
            && x == xcre
            && op <= *seen
        {
            return;
        }
        self.volatile_multicast(ctx, msg, a);
        // Remembered only to stop the news going round: a peer naming
        // endless pairs of nodes must not grow it without bound.
        if self.lost.len() >= MAX_LOST {
            self.lost.clear();
        }
        self.lost.insert((a, b), (xcre.clone(), op));
        let rm = if self.name == b { a } else { b };
        if !self.potentially_known(rm) {
            return;
        }
        if self.node_vsn(rm) < 7 {
            self.node.dist().disconnect(rm);
        } else {
            self.volatile_send(
                ctx,
                rm,
                Term::tuple([Term::atom("remove_connection"), Term::Atom(self.name)]),
            );
        }
        tracing::warn!(
            "'global' at node {} requested disconnect from node {rm} in order to prevent overlapping partitions",
            self.name
        );
        self.nodedown(ctx, rm, Down::RemoveConnection);
    }

    /// `sync_others/1`: connects to the nodes the other side knew, and
    /// tells each that this node is in sync.
    fn sync_others(&self, ctx: &Context, nodes: Vec<Atom>) {
        for n in nodes {
            if n == self.name {
                continue;
            }
            let node = self.node.clone();
            let me = self.me;
            let name = self.name;
            ctx.spawn(move |_| async move {
                if node.dist().connect(n).await {
                    let _ = node.send(
                        server_on(n),
                        cast(Term::tuple([
                            Term::atom("in_sync"),
                            Term::Atom(name),
                            Term::atom("true"),
                        ])),
                    );
                } else {
                    tracing::warn!("'global' at {name} failed to connect to {n}");
                    let _ = node.send(
                        crate::Dest::Pid(me),
                        Term::tuple([Term::atom("extra_nodedown"), Term::Atom(n)]),
                    );
                }
            });
        }
    }

    fn known_list(&self) -> Term {
        Term::List(
            self.known
                .iter()
                .map(|(n, v)| Term::tuple([Term::Atom(*n), Term::from(*v)]))
                .collect(),
        )
    }

    /// `make_node_vsn_list/2`.
    fn node_vsn_list(&self, nodes: &[Term]) -> Vec<Term> {
        nodes
            .iter()
            .filter_map(|x| match x {
                Term::Atom(n) => Some(Term::tuple([Term::Atom(*n), Term::from(self.node_vsn(*n))])),
                Term::Tuple(v) => match v.as_slice() {
                    [Term::Atom(n), Term::Int(0)] => {
                        Some(Term::tuple([Term::Atom(*n), Term::from(self.node_vsn(*n))]))
                    }
                    [Term::Atom(_), Term::Int(_)] => Some(x.clone()),
                    _ => None,
                },
                _ => None,
            })
            .collect()
    }

    /// `add_to_known/2`: the nodes that were not known before.
    fn add_to_known(&mut self, nodes: &[Term]) -> Vec<Atom> {
        let mut added = Vec::new();
        for x in nodes {
            let (n, v) = match x {
                Term::Atom(n) => (*n, 0),
                Term::Tuple(t) => match t.as_slice() {
                    [Term::Atom(n), Term::Int(v)] => (*n, *v),
                    _ => continue,
                },
                _ => continue,
            };
            if n == self.name {
                continue;
            }
            match self.known.get(&n) {
                None => {
                    added.push(n);
                    self.known.insert(n, v);
                }
                Some(old) if *old < 0 => {
                    self.known.insert(n, v);
                }
                Some(_) => {}
            }
        }
        self.publish_known();
        added
    }

    fn syncers_synced(&mut self, node: Atom) {
        self.syncers_lost(node);
    }

    /// A node that synced or went: the `global:sync/0` calls waiting for it
    /// wait no more.
    fn syncers_lost(&mut self, node: Atom) {
        let node_ref = &self.node;
        let me = self.me;
        self.syncers.retain_mut(|s| {
            s.waiting.retain(|n| *n != node);
            if s.waiting.is_empty() {
                send_reply(node_ref, me, s.from, s.tag.clone(), Term::atom("ok"));
                false
            } else {
                true
            }
        });
    }

    // -------------------------------------------------------------- names

    /// `do_ops/5`: the inserts and deletes a synchronisation decided.
    fn do_ops(&mut self, ctx: &Context, ops: &[Term], names_ext: &Term, extra: &[Term]) {
        let ext: Vec<(Term, Pid, Atom)> = list(names_ext)
            .iter()
            .filter_map(|e| match e.as_tuple()? {
                [name, Term::Pid(p), Term::Atom(n)] => Some((name.clone(), *p, *n)),
                _ => None,
            })
            .collect();
        for op in ops {
            match op.as_tuple() {
                Some([i, what]) if i.is_atom("insert") => {
                    if let Some([name, Term::Pid(pid), method]) = what.as_tuple() {
                        self.ins_name(ctx, name.clone(), *pid, method.clone(), From::Node, extra);
                        if let Some((_, _, reg)) =
                            ext.iter().find(|(n, p, _)| n == name && p == pid)
                            && self.names.contains_key(name)
                        {
                            self.names_ext.insert(name.clone(), (*pid, *reg));
                        }
                    }
                }
                Some([d, name]) if d.is_atom("delete") => self.delete_name(ctx, name),
                _ => {}
            }
        }
    }

    /// `ins_name/6`: registers, unless the lock that allowed it is gone.
    fn ins_name(
        &mut self,
        ctx: &Context,
        name: Term,
        pid: Pid,
        method: Term,
        from: From,
        extra: &[Term],
    ) {
        self.delete_name(ctx, &name);
        let monitor = ctx.monitor(pid);
        self.by_monitor
            .entry(monitor)
            .or_default()
            .0
            .push(name.clone());
        self.shared
            .names
            .write()
            .insert(name.clone(), (pid, method.clone()));
        self.names.insert(
            name.clone(),
            Name {
                pid,
                method,
                monitor,
            },
        );
        if !self.lock_still_set(&from, extra) {
            self.delete_name(ctx, &name);
        }
    }

    /// `lock_still_set/3`.
    fn lock_still_set(&self, from: &From, extra: &[Term]) -> bool {
        let locks = self.shared.locks.lock();
        match (locks.get(&Term::atom("global")), from) {
            (Some(l), From::Pid(p)) => l.holders.iter().any(|(h, _)| h == p),
            (Some(l), From::Node) => {
                let lock = extra.iter().find_map(|e| match e.as_tuple() {
                    Some([k, v]) if k.is_atom("lock") => Some(v),
                    _ => None,
                });
                matches!(lock.and_then(Term::as_tuple), Some([_, id]) if *id == l.requester)
            }
            (None, _) => !self.global_lock_down,
        }
    }

    /// `delete_global_name2/2`.
    fn delete_name(&mut self, ctx: &Context, name: &Term) {
        let Some(e) = self.names.remove(name) else {
            return;
        };
        self.shared.names.write().remove(name);
        self.forget_monitor(ctx, e.monitor, Some(name), None);
        if let Some((_, reg)) = self.names_ext.remove(name)
            && reg == self.name
        {
            // `dounlink_ext/2`: nothing was linked for it here.
        }
    }

    /// Drops `name` or `resource` from what `monitor` guards, and the
    /// monitor itself when it guards nothing more.
    fn forget_monitor(
        &mut self,
        ctx: &Context,
        monitor: Ref,
        name: Option<&Term>,
        resource: Option<&Term>,
    ) {
        if let Some((names, resources)) = self.by_monitor.get_mut(&monitor) {
            if let Some(n) = name {
                names.retain(|x| x != n);
            }
            if let Some(r) = resource {
                resources.retain(|x| x != r);
            }
            if names.is_empty() && resources.is_empty() {
                self.by_monitor.remove(&monitor);
                ctx.demonitor(monitor);
            }
        }
    }

    fn names_ext_term(&self) -> Term {
        Term::List(
            self.names_ext
                .iter()
                .map(|(n, (p, r))| Term::tuple([n.clone(), Term::Pid(*p), Term::Atom(*r)]))
                .collect(),
        )
    }

    // -------------------------------------------------------------- locks

    /// `handle_set_lock/3`.
    fn set_lock(&mut self, ctx: &Context, id: &Term, pid: Pid) -> bool {
        let Some((resource, requester)) = lock_id(id) else {
            return false;
        };
        let Some(holders) = self.shared.can_set_lock(id) else {
            return false;
        };
        if holders.iter().any(|(p, _)| *p == pid) {
            return true;
        }
        let monitor = ctx.monitor(pid);
        self.by_monitor
            .entry(monitor)
            .or_default()
            .1
            .push(resource.clone());
        let mut holders = holders;
        holders.insert(0, (pid, monitor));
        self.shared.locks.lock().insert(
            resource.clone(),
            Lock {
                requester: requester.clone(),
                holders,
            },
        );
        true
    }

    /// `handle_del_lock/3`.
    fn del_lock(&mut self, ctx: &Context, id: &Term, pid: Pid) {
        let Some((resource, requester)) = lock_id(id) else {
            return;
        };
        let held = self
            .shared
            .locks
            .lock()
            .get(resource)
            .is_some_and(|l| l.requester == *requester);
        if held {
            self.remove_lock(ctx, resource, pid, false);
        }
    }

    /// `remove_lock/6`: `pid` lets go of `resource`; the lock goes with its
    /// last holder.
    fn remove_lock(&mut self, ctx: &Context, resource: &Term, pid: Pid, down: bool) {
        let monitor = {
            let mut locks = self.shared.locks.lock();
            let Some(l) = locks.get_mut(resource) else {
                return;
            };
            let Some(i) = l.holders.iter().position(|(p, _)| *p == pid) else {
                return;
            };
            let (_, monitor) = l.holders.remove(i);
            if l.holders.is_empty() {
                locks.remove(resource);
                if resource.is_atom("global") {
                    self.global_lock_down = down;
                }
            }
            monitor
        };
        self.forget_monitor(ctx, monitor, None, Some(resource));
    }

    /// A monitored holder of names or locks ended (or its node went).
    fn down(&mut self, ctx: &Context, monitor: Ref) {
        let Some((names, resources)) = self.by_monitor.get(&monitor).cloned() else {
            return;
        };
        for resource in &resources {
            let holder = self.shared.locks.lock().get(resource).and_then(|l| {
                l.holders
                    .iter()
                    .find(|(_, m)| *m == monitor)
                    .map(|(p, _)| *p)
            });
            if let Some(pid) = holder {
                self.remove_lock(ctx, resource, pid, true);
            }
        }
        for name in &names {
            if self.names.get(name).is_some_and(|e| e.monitor == monitor) {
                self.delete_name(ctx, name);
            }
        }
        self.by_monitor.remove(&monitor);
    }
}

/// Who a registration came from: a process holding the lock `global`, or
/// the node whose synchronisation decided it.
enum From {
    Pid(Pid),
    Node,
}

/// A closure the locker runs before it lets go of the lock.
pub(crate) struct Then(pub(crate) Box<dyn FnOnce() + Send>);

/// The other side's names, for the resolver.
struct Resolve {
    node: Atom,
    names: Vec<Term>,
}

/// Starts the resolver of one synchronisation attempt: it waits for the
/// other side's names and works out what to insert and delete.
fn start_resolver(ctx: &Context, node: Atom, tag: Term, shared: Arc<Shared>) -> Pid {
    ctx.spawn(move |mut ctx| async move {
        let names = loop {
            let m = ctx.receive().await;
            if let Ok(r) = m.downcast::<Resolve>()
                && r.node == node
            {
                break r.names;
            }
        };
        let (ops, resolved) = exchange_names(&ctx, &shared, node, &names).await;
        let _ = ctx.send(
            Atom::from(SERVER),
            cast(Term::tuple([
                Term::atom("exchange_ops"),
                Term::Atom(node),
                tag,
                Term::List(ops),
                Term::List(resolved),
            ])),
        );
    })
}

/// `exchange_names/4`: for each of the other side's names, what this side
/// does (`Ops`) and what it tells the other side to do (`Resolved`).
async fn exchange_names(
    ctx: &Context,
    shared: &Shared,
    node: Atom,
    names: &[Term],
) -> (Vec<Term>, Vec<Term>) {
    let me = ctx.node().name();
    let mut ops = Vec::new();
    let mut res = Vec::new();
    let insert = |name: &Term, pid: Pid, method: &Term| {
        Term::tuple([
            Term::atom("insert"),
            Term::tuple([name.clone(), Term::Pid(pid), method.clone()]),
        ])
    };
    for entry in names {
        let Some([name, Term::Pid(pid), method]) = entry.as_tuple() else {
            continue;
        };
        let mine = shared.names.read().get(name).cloned();
        match mine {
            Some((p2, _)) if p2 == *pid => {}
            Some((p2, m2)) if me < node => {
                let args = vec![m2.clone(), name.clone(), Term::Pid(*pid), Term::Pid(p2)];
                let winner = if p2.node == me {
                    Ok(resolve_it(ctx.node(), &m2, name, *pid, p2))
                } else {
                    ctx.node()
                        .dist()
                        .rpc_call(p2.node, "global", "resolve_it", args, super::CALL_TIMEOUT)
                        .await
                };
                match winner {
                    Ok(Term::Pid(w)) if w == *pid => ops.push(insert(name, *pid, method)),
                    Ok(Term::Pid(w)) if w == p2 => res.push(insert(name, p2, &m2)),
                    Ok(t) if t.is_atom("none") => {
                        let op = Term::tuple([Term::atom("delete"), name.clone()]);
                        ops.push(op.clone());
                        res.push(op);
                    }
                    Err(e) => {
                        tracing::info!(
                            "global: badrpc {e} received when conflicting name {name} was found"
                        );
                        ops.push(insert(name, *pid, method));
                    }
                    Ok(other) => {
                        tracing::info!(
                            "global: Resolve method {method} for conflicting name {name} returned {other}"
                        );
                        let op = Term::tuple([Term::atom("delete"), name.clone()]);
                        ops.push(op.clone());
                        res.push(op);
                    }
                }
            }
            Some(_) => {}
            None => ops.push(insert(name, *pid, method)),
        }
    }
    (ops, res)
}

/// `global:resolve_it/4` for the resolve functions of `global` itself: the
/// pid that keeps the name, or `none`. Another function cannot run on this
/// node, which answers as a failed call would (the name is dropped).
pub(crate) fn resolve_it(node: &Node, method: &Term, name: &Term, pid1: Pid, pid2: Pid) -> Term {
    let function = match method {
        Term::Fun(f) => match f {
            Fun::Export {
                module,
                function,
                arity: 3,
            } if module.as_str() == "global" => Some(function.as_str()),
            _ => None,
        },
        _ => None,
    };
    let (min, max) = if pid1.node < pid2.node {
        (pid1, pid2)
    } else {
        (pid2, pid1)
    };
    let system = node.inner().system_pid();
    match function {
        Some("random_exit_name") => {
            tracing::info!("global: Name conflict terminating {{{name},{max}}}");
            node.exit(system, max, Reason::Kill);
            Term::Pid(min)
        }
        Some("random_notify_name") => {
            let _ = node.send(
                crate::Dest::Pid(max),
                Term::tuple([Term::atom("global_name_conflict"), name.clone()]),
            );
            Term::Pid(min)
        }
        Some("notify_all_name") => {
            for (to, other) in [(pid1, pid2), (pid2, pid1)] {
                let _ = node.send(
                    crate::Dest::Pid(to),
                    Term::tuple([
                        Term::atom("global_name_conflict"),
                        name.clone(),
                        Term::Pid(other),
                    ]),
                );
            }
            Term::atom("none")
        }
        _ => Term::tuple([
            Term::atom("EXIT"),
            Term::tuple([Term::atom("badfun"), method.clone()]),
        ]),
    }
}
