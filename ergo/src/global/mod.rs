//! Global names, as OTP's `global`: a name registered on one node is known
//! on every node of the cluster, Erlang, Elixir and ergo alike, and the
//! nodes agree on it because they speak `global`'s own protocol (version
//! 8, OTP 25).
//!
//! Three processes run on a distributed node, as in `global.erl`:
//!
//! - `global_name_server` (registered) holds the names and the locks, and
//!   answers the other nodes' `global_name_server`s: `register`,
//!   `unregister`, `set_lock`, `del_lock` and `sync` calls, and the casts
//!   and messages of the synchronisation that runs when a node comes up
//!   (`init_connect`, `init_connect_ack`, `lock_set`, `exchange`,
//!   `resolved`, `new_nodes`, `in_sync`, `cancel_connect`,
//!   `lost_connection`, `remove_connection`).
//! - The locker takes the cluster-wide lock `global` on both sides of a new
//!   connection (its boss, the greatest node name, first) so that the two
//!   sides exchange their names with no registration in between.
//! - The registrar registers and unregisters names for this node's callers:
//!   it locks `global` on every known node, checks, and tells every known
//!   node.
//!
//! When two nodes that each had a name meet, the node with the lower name
//! asks the node of its own holder to run the name's resolve function
//! (`global:resolve_it/4`); the default ([`Resolve::RandomExit`], Erlang's
//! `global:random_exit_name/3`) keeps the process of the node with the lower
//! name and kills the other. A name goes when its process ends or its node
//! is lost.
//!
//! Reading a name ([`Global::whereis_name`], [`Global::registered_names`])
//! takes no message: like `global`'s ETS tables, the names are kept where
//! callers read them.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! use ergo::{Node, Term};
//! let node = Node::builder("global_demo@localhost").start().unwrap();
//! let worker = node.spawn(|mut ctx| async move { ctx.receive().await; });
//! let global = node.global();
//! assert!(global.register_name(Term::atom("worker"), worker).await.unwrap());
//! assert_eq!(global.whereis_name(&Term::atom("worker")), Some(worker));
//! // A second process cannot take the name.
//! let other = node.spawn(|mut ctx| async move { ctx.receive().await; });
//! assert!(!global.register_name(Term::atom("worker"), other).await.unwrap());
//! global.unregister_name(Term::atom("worker")).await.unwrap();
//! assert_eq!(global.whereis_name(&Term::atom("worker")), None);
//! # }
//! ```

mod locker;
mod server;

use std::fmt;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ergo_etf::{Atom, Fun, Pid, Ref, Term};
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;

use crate::message::Message;
use crate::node::Node;

pub(crate) use server::resolve_it;

/// The registered name of the name server on every node.
pub(crate) const SERVER: &str = "global_name_server";

/// The protocol version this node speaks (OTP 25's).
pub(crate) const VERSION: i64 = 8;

/// How long a call to another node's name server may take. `global` waits
/// without limit, counting on the node's loss to end the wait; this bound
/// only keeps a wedged peer from holding the locker for ever.
pub(crate) const CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// What is done when two processes hold the same name as two clusters meet:
/// one of `global`'s own resolve functions, which Erlang nodes can run too.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Resolve {
    /// `global:random_exit_name/3`: keeps the process on the node with the
    /// lower name, kills the other.
    #[default]
    RandomExit,
    /// `global:random_notify_name/3`: keeps the process on the node with
    /// the lower name, sends the other `{global_name_conflict, Name}`.
    RandomNotify,
    /// `global:notify_all_name/3`: unregisters the name and sends each
    /// process `{global_name_conflict, Name, OtherPid}`.
    NotifyAll,
}

impl Resolve {
    /// The function as a term, `fun global:F/3`.
    pub fn to_term(self) -> Term {
        let function = match self {
            Resolve::RandomExit => "random_exit_name",
            Resolve::RandomNotify => "random_notify_name",
            Resolve::NotifyAll => "notify_all_name",
        };
        Term::Fun(Fun::Export {
            module: Atom::from("global"),
            function: Atom::from(function),
            arity: 3,
        })
    }
}

/// Why a global name operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GlobalError {
    /// The registrar went away (the node is stopping).
    Stopped,
    /// [`Global::send`]: no process holds the name.
    NotRegistered(Term),
}

impl fmt::Display for GlobalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            GlobalError::Stopped => write!(f, "global is not running (the node is stopping)"),
            GlobalError::NotRegistered(n) => write!(f, "no process is registered as {n}"),
        }
    }
}

impl std::error::Error for GlobalError {}

/// One lock: who asked for it, and the processes holding it.
#[derive(Clone, Debug)]
pub(crate) struct Lock {
    pub(crate) requester: Term,
    pub(crate) holders: Vec<(Pid, Ref)>,
}

/// What the node's processes and readers share: the names, the locks, and
/// the nodes `global` knows (what `global`'s ETS tables hold).
#[derive(Default)]
pub(crate) struct Shared {
    /// Name → (holder, resolve function).
    pub(crate) names: RwLock<FxHashMap<Term, (Pid, Term)>>,
    /// Resource → lock.
    pub(crate) locks: Mutex<FxHashMap<Term, Lock>>,
    /// The nodes synced with this one.
    pub(crate) known: RwLock<Vec<Atom>>,
    pub(crate) server: OnceLock<Pid>,
    pub(crate) registrar: OnceLock<Pid>,
}

impl Shared {
    /// `can_set_lock/1`: `None` when another requester holds the resource,
    /// otherwise its present holders.
    pub(crate) fn can_set_lock(&self, id: &Term) -> Option<Vec<(Pid, Ref)>> {
        let (resource, requester) = lock_id(id)?;
        match self.locks.lock().get(resource) {
            Some(l) if l.requester == *requester => Some(l.holders.clone()),
            Some(_) => None,
            None => Some(Vec::new()),
        }
    }

    /// Whether the cluster-wide lock `global` is held here.
    pub(crate) fn global_lock_set(&self) -> bool {
        self.locks.lock().contains_key(&Term::atom("global"))
    }
}

/// `{ResourceId, LockRequesterId}`.
pub(crate) fn lock_id(id: &Term) -> Option<(&Term, &Term)> {
    match id.as_tuple()? {
        [resource, requester] => Some((resource, requester)),
        _ => None,
    }
}

impl Node {
    /// The node's global names ([`crate::global`]).
    pub fn global(&self) -> Global<'_> {
        Global { node: self }
    }
}

/// Global names as seen from a node ([`Node::global`]).
#[derive(Clone, Copy, Debug)]
pub struct Global<'a> {
    node: &'a Node,
}

/// A request to the registrar.
pub(crate) enum Request {
    Register {
        name: Term,
        pid: Pid,
        method: Term,
        /// `re_register_name`: takes the name whoever holds it.
        force: bool,
        reply: tokio::sync::oneshot::Sender<bool>,
    },
    Unregister {
        name: Term,
        reply: tokio::sync::oneshot::Sender<()>,
    },
}

impl Global<'_> {
    fn shared(&self) -> Option<Arc<Shared>> {
        self.node.inner().dist.global.get().cloned()
    }

    /// The shared state, starting `global` on a node that is not
    /// distributed yet (as on an Erlang node, `global` runs there too; the
    /// distribution finds it running).
    fn started(&self) -> Arc<Shared> {
        start(self.node);
        self.shared().expect("global started")
    }

    async fn ask<T>(
        &self,
        request: impl FnOnce(tokio::sync::oneshot::Sender<T>) -> Request,
    ) -> Result<T, GlobalError> {
        let shared = self.started();
        let registrar = *shared.registrar.get().ok_or(GlobalError::Stopped)?;
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.node
            .send_message(registrar.into(), Message::local(request(tx)))
            .map_err(|_| GlobalError::Stopped)?;
        rx.await.map_err(|_| GlobalError::Stopped)
    }

    /// Registers `pid` as `name` on every node of the cluster
    /// (`global:register_name/2`): `false` (`no`) when the name is taken or
    /// `pid` holds another name already.
    pub async fn register_name(&self, name: Term, pid: Pid) -> Result<bool, GlobalError> {
        self.register_name_with(name, pid, Resolve::default()).await
    }

    /// Like [`Global::register_name`], with the function that settles a
    /// clash when clusters meet (`global:register_name/3`).
    pub async fn register_name_with(
        &self,
        name: Term,
        pid: Pid,
        resolve: Resolve,
    ) -> Result<bool, GlobalError> {
        self.ask(|reply| Request::Register {
            name,
            pid,
            method: resolve.to_term(),
            force: false,
            reply,
        })
        .await
    }

    /// Registers `pid` as `name` whoever held it (`global:re_register_name/2`).
    pub async fn re_register_name(&self, name: Term, pid: Pid) -> Result<(), GlobalError> {
        self.ask(|reply| Request::Register {
            name,
            pid,
            method: Resolve::default().to_term(),
            force: true,
            reply,
        })
        .await
        .map(|_| ())
    }

    /// Takes `name` off every node (`global:unregister_name/1`).
    pub async fn unregister_name(&self, name: Term) -> Result<(), GlobalError> {
        self.ask(|reply| Request::Unregister { name, reply }).await
    }

    /// The process registered as `name`, wherever it runs
    /// (`global:whereis_name/1`).
    pub fn whereis_name(&self, name: &Term) -> Option<Pid> {
        let pid = self.shared()?.names.read().get(name).map(|(p, _)| *p)?;
        // A local holder that has just ended is not reported.
        (pid.node != self.node.name() || self.node.is_alive(pid)).then_some(pid)
    }

    /// Every registered name (`global:registered_names/0`).
    pub fn registered_names(&self) -> Vec<Term> {
        self.shared()
            .map(|s| s.names.read().keys().cloned().collect())
            .unwrap_or_default()
    }

    /// Sends `msg` to the process registered as `name` (`global:send/2`),
    /// giving its pid.
    pub fn send(&self, name: &Term, msg: Term) -> Result<Pid, GlobalError> {
        let pid = self
            .whereis_name(name)
            .ok_or_else(|| GlobalError::NotRegistered(name.clone()))?;
        let _ = self.node.send(crate::Dest::Pid(pid), msg);
        Ok(pid)
    }

    /// Waits until `global` has synchronised with every node connected now
    /// (`global:sync/0`).
    pub async fn sync(&self) -> Result<(), GlobalError> {
        let nodes = Term::List(
            self.node
                .dist()
                .nodes()
                .into_iter()
                .map(Term::Atom)
                .collect(),
        );
        self.started();
        self.node
            .call(
                Atom::from(SERVER),
                Term::tuple([Term::atom("sync"), nodes]),
                CALL_TIMEOUT,
            )
            .await
            .map(|_| ())
            .map_err(|_| GlobalError::Stopped)
    }

    /// The nodes `global` has synchronised with.
    pub fn known_nodes(&self) -> Vec<Atom> {
        self.shared()
            .map(|s| s.known.read().clone())
            .unwrap_or_default()
    }
}

/// Starts the name server, the locker and the registrar on `node`, unless
/// they run already.
pub(crate) fn start(node: &Node) {
    let shared = Arc::new(Shared::default());
    if node.inner().dist.global.set(shared.clone()).is_err() {
        return;
    }
    let locker = locker::start(node, shared.clone());
    let server = server::start(node, shared.clone(), locker);
    let _ = shared.server.set(server);
    let registrar = locker::start_registrar(node, shared.clone());
    let _ = shared.registrar.set(registrar);
}

/// The node's name server on `node`, as a destination.
pub(crate) fn server_on(node: Atom) -> crate::Dest {
    crate::Dest::NameOn(Atom::from(SERVER), node)
}

/// `{'$gen_cast', Msg}`.
pub(crate) fn cast(msg: Term) -> Term {
    Term::tuple([Term::Atom(Atom::GEN_CAST), msg])
}
