//! Process groups, as OTP's `pg`: named groups of processes across the
//! nodes of a cluster, in scopes. A node's scope process (registered under
//! the scope's name; `pg` is the default scope, started with the
//! distribution) talks to the scope processes of the same name on the
//! other nodes with `pg`'s own messages, so Erlang and Elixir nodes and
//! ergo nodes share groups: a process joined on one is a member seen from
//! all.
//!
//! - On start, and when a node comes up, the scope sends `{discover, Self}`
//!   to the scope of that name on the other nodes; a scope that is
//!   discovered answers with a `sync` cast of its local groups, monitors
//!   the discoverer and discovers it back.
//! - A local join or leave is broadcast as `{join, Self, Group, Pids}` or
//!   `{leave, Self, Pids, Groups}`; a member that ends leaves all its
//!   groups the same way.
//! - When a peer scope goes down (its node is lost), its members are
//!   dropped.
//!
//! Reading members (`get_members`, `which_groups`) takes no message: like
//! `pg`'s ETS table, the scope keeps its view where callers read it.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use ergo::{Node, Term};
//! let node = Node::builder("pg_demo@localhost").start().unwrap();
//! let pg = node.pg_scope("demo_scope");
//! pg.start().await.unwrap();
//! let worker = node.spawn(|mut ctx| async move { ctx.receive().await; });
//! pg.join(Term::atom("workers"), worker).await.unwrap();
//! assert_eq!(pg.get_members(&Term::atom("workers")), vec![worker]);
//! assert_eq!(pg.which_groups(), vec![Term::atom("workers")]);
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use ergo_etf::{Atom, Pid, Ref, Term};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::message::Message;
use crate::node::Node;

/// The default scope's name.
pub const DEFAULT_SCOPE: &str = "pg";

/// What a scope's readers see: each group's members, all and local.
#[derive(Default)]
pub(crate) struct Shared {
    groups: RwLock<FxHashMap<Term, Members>>,
}

#[derive(Default, Clone)]
struct Members {
    all: Vec<Pid>,
    local: Vec<Pid>,
}

/// Why a group operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PgError {
    /// No scope of that name runs on this node.
    NoScope(Atom),
    /// The scope runs already ([`Pg::start`] twice).
    AlreadyStarted(Atom),
    /// Only processes of this node join and leave through it (as in `pg`:
    /// each node's scope speaks for its own processes).
    NotLocal(Pid),
}

impl fmt::Display for PgError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PgError::NoScope(s) => write!(f, "no pg scope {s} runs on this node"),
            PgError::AlreadyStarted(s) => write!(f, "the pg scope {s} runs already"),
            PgError::NotLocal(p) => write!(f, "{p} is not a process of this node"),
        }
    }
}

impl std::error::Error for PgError {}

impl Node {
    /// The default process group scope, `pg`.
    pub fn pg(&self) -> Pg<'_> {
        self.pg_scope(DEFAULT_SCOPE)
    }

    /// The process group scope `scope` (started with [`Pg::start`]; the
    /// default scope starts with the distribution).
    pub fn pg_scope(&self, scope: impl Into<Atom>) -> Pg<'_> {
        Pg {
            node: self,
            scope: scope.into(),
        }
    }
}

/// A process group scope of a node ([`Node::pg`], [`Node::pg_scope`]).
#[derive(Clone, Copy, Debug)]
pub struct Pg<'a> {
    node: &'a Node,
    scope: Atom,
}

/// A local request to the scope process.
enum Request {
    Join(Term, Vec<Pid>, tokio::sync::oneshot::Sender<()>),
    Leave(Term, Vec<Pid>, tokio::sync::oneshot::Sender<bool>),
}

impl Pg<'_> {
    /// Starts this scope's process, registered under the scope's name
    /// (`pg:start_link/1`).
    pub async fn start(&self) -> Result<Pid, PgError> {
        start_scope(self.node, self.scope)
    }

    fn shared(&self) -> Option<Arc<Shared>> {
        self.node
            .inner()
            .dist
            .pg
            .read()
            .get(&self.scope)
            .map(|(_, s)| s.clone())
    }

    fn scope_pid(&self) -> Result<Pid, PgError> {
        self.node
            .inner()
            .dist
            .pg
            .read()
            .get(&self.scope)
            .map(|(p, _)| *p)
            .ok_or(PgError::NoScope(self.scope))
    }

    fn check_local(&self, pids: &[Pid]) -> Result<(), PgError> {
        match pids.iter().find(|p| p.node != self.node.name()) {
            Some(p) => Err(PgError::NotLocal(*p)),
            None => Ok(()),
        }
    }

    /// Makes `pid` (a process of this node) a member of `group`
    /// (`pg:join/3`); a process may join a group more than once, and is
    /// then listed as many times.
    pub async fn join(&self, group: Term, pid: Pid) -> Result<(), PgError> {
        self.join_many(group, &[pid]).await
    }

    /// Makes each of `pids` a member of `group`.
    pub async fn join_many(&self, group: Term, pids: &[Pid]) -> Result<(), PgError> {
        self.ask(pids, |tx| Request::Join(group, pids.to_vec(), tx))
            .await
    }

    /// Takes `pid` out of `group` once (`pg:leave/3`): `false` when it was
    /// not a member (`not_joined`).
    pub async fn leave(&self, group: Term, pid: Pid) -> Result<bool, PgError> {
        self.leave_many(group, &[pid]).await
    }

    /// Takes each of `pids` out of `group` once.
    pub async fn leave_many(&self, group: Term, pids: &[Pid]) -> Result<bool, PgError> {
        self.ask(pids, |tx| Request::Leave(group, pids.to_vec(), tx))
            .await
    }

    /// Sends the scope process a request about `pids` (of this node) and
    /// waits for its answer.
    async fn ask<T>(
        &self,
        pids: &[Pid],
        request: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Request,
    ) -> Result<T, PgError> {
        self.check_local(pids)?;
        let scope = self.scope_pid()?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        let _ = self
            .node
            .send_message(scope.into(), Message::local(request(tx)));
        rx.await.map_err(|_| PgError::NoScope(self.scope))
    }

    /// The members of `group` on every node (`pg:get_members/2`).
    pub fn get_members(&self, group: &Term) -> Vec<Pid> {
        self.shared()
            .and_then(|s| s.groups.read().get(group).map(|m| m.all.clone()))
            .unwrap_or_default()
    }

    /// The members of `group` on this node (`pg:get_local_members/2`).
    pub fn get_local_members(&self, group: &Term) -> Vec<Pid> {
        self.shared()
            .and_then(|s| s.groups.read().get(group).map(|m| m.local.clone()))
            .unwrap_or_default()
    }

    /// The groups with members anywhere (`pg:which_groups/1`).
    pub fn which_groups(&self) -> Vec<Term> {
        self.shared()
            .map(|s| s.groups.read().keys().cloned().collect())
            .unwrap_or_default()
    }
}

/// Starts the scope process `scope` on `node`.
pub(crate) fn start_scope(node: &Node, scope: Atom) -> Result<Pid, PgError> {
    let shared = Arc::new(Shared::default());
    let mut scopes = node.inner().dist.pg.write();
    if scopes.contains_key(&scope) {
        return Err(PgError::AlreadyStarted(scope));
    }
    let s = shared.clone();
    let pid = node.spawn(move |ctx| run(ctx, scope, s));
    if node.register(scope, pid).is_err() {
        node.exit(pid, pid, crate::reason::Reason::Kill);
        return Err(PgError::AlreadyStarted(scope));
    }
    scopes.insert(scope, (pid, shared));
    Ok(pid)
}

/// A scope's own state (what `pg`'s `#state{}` holds).
struct Scope {
    name: Atom,
    me: Pid,
    shared: Arc<Shared>,
    /// Local members: their monitor and the groups they joined (once per
    /// join).
    local: FxHashMap<Pid, (Ref, Vec<Term>)>,
    /// Peer scopes: their monitor and their groups.
    remote: FxHashMap<Pid, (Ref, FxHashMap<Term, Vec<Pid>>)>,
}

/// Takes one of `p` out of `v`, if there.
fn remove_one(v: &mut Vec<Pid>, p: Pid) -> bool {
    match v.iter().position(|x| *x == p) {
        Some(i) => {
            v.remove(i);
            true
        }
        None => false,
    }
}

/// `Pid` or `[Pid]`, as `join` and `leave` carry them.
fn pids_of(t: &Term) -> Option<Vec<Pid>> {
    match t {
        Term::Pid(p) => Some(vec![*p]),
        other => other
            .as_list()?
            .iter()
            .map(|x| match x {
                Term::Pid(p) => Some(*p),
                _ => None,
            })
            .collect(),
    }
}

/// A pid or a list of them, in the form `pg` sends.
fn pids_term(pids: &[Pid]) -> Term {
    match pids {
        [one] => Term::Pid(*one),
        many => Term::List(many.iter().map(|p| Term::Pid(*p)).collect()),
    }
}

impl Scope {
    fn add(&self, group: &Term, pids: &[Pid], local: bool) {
        let mut g = self.shared.groups.write();
        let m = g.entry(group.clone()).or_default();
        for p in pids.iter().rev() {
            m.all.insert(0, *p);
            if local {
                m.local.insert(0, *p);
            }
        }
    }

    fn remove(&self, group: &Term, pids: &[Pid], local: bool) {
        let mut g = self.shared.groups.write();
        if let Some(m) = g.get_mut(group) {
            for p in pids {
                remove_one(&mut m.all, *p);
                if local {
                    remove_one(&mut m.local, *p);
                }
            }
            if m.all.is_empty() {
                g.remove(group);
            }
        }
    }

    /// Sends `msg` to every peer scope, without setting up connections.
    fn broadcast(&self, ctx: &crate::Context, msg: &Term) {
        for peer in self.remote.keys() {
            let _ = ctx.send_noconnect(*peer, msg.clone());
        }
    }

    /// The local groups, as `sync` carries them: `[{Group, [Pid]}]`.
    fn local_groups(&self) -> Term {
        let mut by_group: FxHashMap<&Term, Vec<Term>> = FxHashMap::default();
        for (pid, (_, groups)) in &self.local {
            for g in groups {
                by_group.entry(g).or_default().push(Term::Pid(*pid));
            }
        }
        Term::List(
            by_group
                .into_iter()
                .map(|(g, pids)| Term::tuple([g.clone(), Term::List(pids)]))
                .collect(),
        )
    }

    fn discover(&self, ctx: &crate::Context, node: Atom) {
        let _ = ctx.send_noconnect(
            (self.name, node),
            Term::tuple([Term::atom("discover"), Term::Pid(self.me)]),
        );
    }

    fn request(&mut self, ctx: &crate::Context, r: Request) {
        match r {
            Request::Join(group, pids, reply) => {
                for p in &pids {
                    match self.local.get_mut(p) {
                        Some((_, groups)) => groups.push(group.clone()),
                        None => {
                            let r = ctx.monitor(*p);
                            self.local.insert(*p, (r, vec![group.clone()]));
                        }
                    }
                }
                self.add(&group, &pids, true);
                self.broadcast(
                    ctx,
                    &Term::tuple([
                        Term::atom("join"),
                        Term::Pid(self.me),
                        group,
                        pids_term(&pids),
                    ]),
                );
                let _ = reply.send(());
            }
            Request::Leave(group, pids, reply) => {
                let mut left = Vec::new();
                for p in &pids {
                    if let Some((r, groups)) = self.local.get_mut(p)
                        && let Some(i) = groups.iter().position(|g| *g == group)
                    {
                        groups.remove(i);
                        if groups.is_empty() {
                            ctx.demonitor(*r);
                            self.local.remove(p);
                        }
                        left.push(*p);
                    }
                }
                if left.is_empty() {
                    let _ = reply.send(false);
                    return;
                }
                self.remove(&group, &left, true);
                self.broadcast(
                    ctx,
                    &Term::tuple([
                        Term::atom("leave"),
                        Term::Pid(self.me),
                        pids_term(&left),
                        Term::List(vec![group]),
                    ]),
                );
                let _ = reply.send(true);
            }
        }
    }

    /// A peer scope's full view of its groups (`sync`).
    fn sync(&mut self, ctx: &crate::Context, peer: Pid, groups: &[Term]) {
        let old = match self.remote.remove(&peer) {
            Some((r, old)) => (r, old),
            None => (ctx.monitor(peer), FxHashMap::default()),
        };
        let (r, old_groups) = old;
        for (g, pids) in &old_groups {
            self.remove(g, pids, false);
        }
        let mut new = FxHashMap::default();
        for entry in groups {
            if let Term::Tuple(t) = entry
                && let [g, pids] = t.as_slice()
                && let Some(pids) = pids_of(pids)
            {
                self.add(g, &pids, false);
                new.insert(g.clone(), pids);
            }
        }
        self.remote.insert(peer, (r, new));
    }

    /// A message from a peer scope, a monitor or the node monitor.
    fn term(&mut self, ctx: &crate::Context, t: &[Term]) {
        match t {
            // (OTP 26 and later may add a protocol version.)
            [tag, Term::Pid(peer)] | [tag, Term::Pid(peer), _] if tag.is_atom("discover") => {
                let sync =
                    Term::tuple([Term::atom("sync"), Term::Pid(self.me), self.local_groups()]);
                let _ = ctx.send(*peer, Term::tuple([Term::atom("$gen_cast"), sync]));
                if !self.remote.contains_key(peer) {
                    let r = ctx.monitor(*peer);
                    let _ = ctx.send_noconnect(
                        *peer,
                        Term::tuple([Term::atom("discover"), Term::Pid(self.me)]),
                    );
                    self.remote.insert(*peer, (r, FxHashMap::default()));
                }
            }
            [tag, Term::Tuple(cast)] if tag.is_atom("$gen_cast") => {
                if let [s, Term::Pid(peer), groups] = cast.as_slice()
                    && s.is_atom("sync")
                    && let Some(groups) = groups.as_list()
                {
                    self.sync(ctx, *peer, groups);
                }
            }
            [tag, Term::Pid(peer), group, pids] if tag.is_atom("join") => {
                if let (Some(pids), Some((_, groups))) = (pids_of(pids), self.remote.get_mut(peer))
                {
                    let members = groups.entry(group.clone()).or_default();
                    for p in pids.iter().rev() {
                        members.insert(0, *p);
                    }
                    self.add(group, &pids, false);
                }
            }
            [tag, Term::Pid(peer), pids, gs] if tag.is_atom("leave") => {
                if let (Some(pids), Some(gs), Some((_, groups))) =
                    (pids_of(pids), gs.as_list(), self.remote.get_mut(peer))
                {
                    for g in gs {
                        if let Some(members) = groups.get_mut(g) {
                            for p in &pids {
                                remove_one(members, *p);
                            }
                            if members.is_empty() {
                                groups.remove(g);
                            }
                        }
                    }
                    for g in gs {
                        self.remove(g, &pids, false);
                    }
                }
            }
            [tag, Term::Atom(node)] if tag.is_atom("nodeup") && *node != ctx.node().name() => {
                self.discover(ctx, *node);
            }
            _ => {}
        }
    }

    /// A monitored process went down: a local member leaves all its
    /// groups; a peer scope's members are dropped.
    fn down(&mut self, ctx: &crate::Context, reference: Ref, object: &Term) {
        let Term::Pid(pid) = object else { return };
        if let Some((r, groups)) = self.local.remove(pid) {
            if r != reference {
                self.local.insert(*pid, (r, groups));
                return;
            }
            for g in &groups {
                self.remove(g, &[*pid], true);
            }
            self.broadcast(
                ctx,
                &Term::tuple([
                    Term::atom("leave"),
                    Term::Pid(self.me),
                    Term::Pid(*pid),
                    Term::List(groups),
                ]),
            );
        } else if let Some((r, groups)) = self.remote.remove(pid) {
            if r != reference {
                self.remote.insert(*pid, (r, groups));
                return;
            }
            for (g, pids) in &groups {
                self.remove(g, pids, false);
            }
        }
    }
}

/// Takes a scope off the node's list when its process ends (however it
/// ends: the process's future is dropped then).
struct Unlist {
    node: Node,
    scope: Atom,
    pid: Pid,
}

impl Drop for Unlist {
    fn drop(&mut self) {
        let mut scopes = self.node.inner().dist.pg.write();
        if scopes.get(&self.scope).is_some_and(|(p, _)| *p == self.pid) {
            scopes.remove(&self.scope);
        }
    }
}

async fn run(mut ctx: crate::Context, name: Atom, shared: Arc<Shared>) {
    let _unlist = Unlist {
        node: ctx.node().clone(),
        scope: name,
        pid: ctx.pid(),
    };
    let mut scope = Scope {
        name,
        me: ctx.pid(),
        shared,
        local: FxHashMap::default(),
        remote: FxHashMap::default(),
    };
    let node = ctx.node().clone();
    // Nodes that come up later are discovered then (a scope started before
    // the distribution hears of them too).
    node.dist().monitor_nodes(ctx.pid());
    for n in node.dist().nodes() {
        scope.discover(&ctx, n);
    }
    loop {
        match ctx.receive().await {
            Message::Term(Term::Tuple(t)) => scope.term(&ctx, &t),
            Message::Down(d) => scope.down(&ctx, d.reference, &d.object),
            m @ Message::Local(_) => {
                if let Ok(r) = m.downcast::<Request>() {
                    scope.request(&ctx, r);
                }
            }
            other => tracing::trace!(scope = %name, "pg ignores {other}"),
        }
    }
}
