//! The node: its name, cookie and creation, its processes and registered
//! names.
//!
//! A [`Node`] is a cheap handle (an `Arc`); clone it freely. Several nodes
//! may live in one OS process, each with its own processes and names. A node
//! runs its processes on the tokio runtime it was started in.
//!
//! # What lives here, and what it may touch
//!
//! The handle and its builder, the process table (sharded by process
//! number), the registry of names, the node's references and pids, and the
//! tables the other subsystems keep per node (aliases, the application
//! controller, the distribution's state). The node only holds processes:
//! it never changes a process's links, monitors or state, which only the
//! `process` module does, through the signals it routes.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use ergo_etf::{Atom, Pid, Ref, ToTerm};
use parking_lot::RwLock;
use rustc_hash::FxHashMap;

use crate::message::Message;
use crate::process::signal::{AliasOwner, Body, Routed, Signal};
use crate::process::{
    Context, Dest, IntoReason, LookupName, Pcb, ProcessInfo, RegisterError, SendError, Start,
    Target, TimerRef,
};
use crate::reason::Reason;

/// Shards of the process table: spawns and exits on different cores rarely
/// meet on one lock.
const SHARDS: usize = 64;

/// One shard of the process table: process number to control block.
type Shard = RwLock<HashMap<u32, Arc<Pcb>, BuildPidHasher>>;

/// Hashes a process number for its shard of the process table so that a
/// burst of spawns writes each shard's table in order, as Erlang's own
/// table is laid out, instead of at a random place of a table too large for
/// the cache: the numbers of a shard go sixteen at a time (one of the
/// table's groups) to consecutive buckets. The groups themselves are
/// spread over the table (an odd multiplier, so no two collide), which
/// keeps the runs of full buckets short: looking up a process that has
/// ended stops at the first group with an empty bucket. The tag the table
/// compares before the keys (the top seven bits, or bits 25 to 31 where
/// `usize` is 32 bits) mixes the whole number.
#[derive(Clone, Copy, Default)]
struct BuildPidHasher;

impl std::hash::BuildHasher for BuildPidHasher {
    type Hasher = PidHasher;

    fn build_hasher(&self) -> PidHasher {
        PidHasher(0)
    }
}

/// The bits of a process number's hash that pick its bucket: tables of
/// up to 2^25 buckets a shard (two billion processes a node).
const PID_BUCKET_BITS: u64 = (1 << 25) - 1;

/// See [`BuildPidHasher`].
struct PidHasher(u64);

impl std::hash::Hasher for PidHasher {
    fn write(&mut self, bytes: &[u8]) {
        // The table's keys are `u32`s, hashed by `write_u32`; bytes (which
        // no key here gives) are folded into one number first.
        let n = bytes
            .iter()
            .fold(0u32, |n, b| n.rotate_left(8) ^ u32::from(*b));
        self.write_u32(n);
    }

    fn write_u32(&mut self, n: u32) {
        let place = u64::from(n) / SHARDS as u64;
        let group = (place >> 4).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let bucket = ((group << 4) | (place & 15)) & PID_BUCKET_BITS;
        let tag = place.wrapping_mul(0xD6E8_FEB8_6659_FD93) >> 57;
        self.0 = bucket | (tag << 25) | (tag << 57);
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

/// Why a node could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NodeError {
    /// The name is not `name@host`, or one side is empty.
    BadName(String),
    /// Not called from inside a tokio runtime, and no runtime was given.
    NoRuntime,
}

impl fmt::Display for NodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NodeError::BadName(n) => {
                write!(f, "node name {n:?} is not of the form name@host")
            }
            NodeError::NoRuntime => write!(
                f,
                "a node must be started inside a tokio runtime (or be given one)"
            ),
        }
    }
}

impl std::error::Error for NodeError {}

/// Builds a [`Node`].
///
/// # Examples
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let node = ergo::Node::builder("demo@localhost").cookie("secret").start().unwrap();
/// assert_eq!(node.name().as_str(), "demo@localhost");
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct NodeBuilder {
    name: String,
    cookie: String,
    creation: Option<u32>,
    runtime: Option<tokio::runtime::Handle>,
    tls: Option<crate::dist::TlsOptions>,
    #[cfg(feature = "dashboard")]
    dashboard: Option<std::net::SocketAddr>,
}

impl NodeBuilder {
    /// The cookie other nodes must present (distribution uses it).
    pub fn cookie(mut self, cookie: impl Into<String>) -> NodeBuilder {
        self.cookie = cookie.into();
        self
    }

    /// The creation number (by default one derived from the clock, as
    /// distribution would get from EPMD).
    pub fn creation(mut self, creation: u32) -> NodeBuilder {
        self.creation = Some(creation);
        self
    }

    /// Runs the node's processes on `runtime` instead of the current one.
    pub fn runtime(mut self, runtime: tokio::runtime::Handle) -> NodeBuilder {
        self.runtime = Some(runtime);
        self
    }

    /// Makes the node's distribution TLS, as Erlang's `-proto_dist
    /// inet_tls` is: every connection it accepts or makes is TLS, with the
    /// certificate and peer verification `tls` gives. Such a node talks
    /// only to TLS nodes.
    pub fn tls(mut self, tls: crate::dist::TlsOptions) -> NodeBuilder {
        self.tls = Some(tls);
        self
    }

    /// Serves the web dashboard on `addr` once the node starts (feature
    /// `dashboard`; [`Node::serve_dashboard`] does the same later, and
    /// gives the address). A failure to listen is logged.
    #[cfg(feature = "dashboard")]
    pub fn dashboard(mut self, addr: std::net::SocketAddr) -> NodeBuilder {
        self.dashboard = Some(addr);
        self
    }

    /// Starts the node.
    pub fn start(self) -> Result<Node, NodeError> {
        let valid = match self.name.split_once('@') {
            Some((n, h)) => !n.is_empty() && !h.is_empty() && !h.contains('@'),
            None => false,
        };
        if !valid {
            return Err(NodeError::BadName(self.name));
        }
        let name = Atom::try_new(&self.name).map_err(|_| NodeError::BadName(self.name.clone()))?;
        let runtime = match self.runtime {
            Some(r) => r,
            None => tokio::runtime::Handle::try_current().map_err(|_| NodeError::NoRuntime)?,
        };
        let creation = self.creation.unwrap_or_else(|| {
            let t = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() as u32);
            t.max(1)
        });
        static NEXT_ID: AtomicU32 = AtomicU32::new(1);
        let inner = NodeInner {
            name,
            creation,
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            cookie: self.cookie,
            shards: (0..SHARDS)
                .map(|_| RwLock::new(HashMap::default()))
                .collect(),
            names: RwLock::new(FxHashMap::default()),
            next_pid: AtomicU64::new(1),
            next_ref: AtomicU64::new(1),
            stopping: AtomicBool::new(false),
            remote_decoders: Arc::new(AtomicBool::new(false)),
            multi_thread: runtime.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread,
            runtime,
            aliases: RwLock::new(FxHashMap::default()),
            apps: crate::application::Controller::default(),
            dist: crate::dist::Dist::new(self.tls),
        };
        tracing::debug!(node = %name, creation, "node started");
        *LOCAL_NODES.lock().entry((name, creation)).or_insert(0) += 1;
        let node = Node {
            inner: Arc::new(inner),
        };
        #[cfg(feature = "dashboard")]
        if let Some(addr) = self.dashboard {
            let n = node.clone();
            node.runtime().spawn(async move {
                if let Err(e) = n.serve_dashboard(addr).await {
                    tracing::warn!(node = %n.name(), %addr, "cannot serve the dashboard: {e}");
                }
            });
        }
        Ok(node)
    }
}

/// A node: processes, registered names, and (in later layers) connections to
/// other nodes.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.inner.name)
            .field("creation", &self.inner.creation)
            .finish()
    }
}

pub(crate) struct NodeInner {
    pub(crate) name: Atom,
    creation: u32,
    /// A number no other node started in this OS process has (two nodes
    /// may share a name and a creation): what a thread's send cache knows
    /// its node by. 32 bits, which sit in the padding at the struct's end
    /// (it would take 2^32 nodes started in one OS process to come round):
    /// as a `u64` it moved the fields after it, and a local call measured
    /// 14 ns slower for that alone.
    id: u32,
    cookie: String,
    shards: Box<[Shard]>,
    names: RwLock<FxHashMap<Atom, Pid>>,
    next_pid: AtomicU64,
    next_ref: AtomicU64,
    stopping: AtomicBool,
    /// Set once a process of this node has a
    /// [`RemoteDecoder`](crate::process::RemoteDecoder): until then,
    /// connections do not look their addressees up for one.
    pub(crate) remote_decoders: Arc<AtomicBool>,
    runtime: tokio::runtime::Handle,
    /// The runtime is a multi-thread one, whose clock tokio cannot pause:
    /// the processes' long waits may take their deadlines from the coarse
    /// clock (`crate::deadline`).
    pub(crate) multi_thread: bool,
    /// Active process aliases (`alias/0`), and the aliases of calls
    /// waiting for their reply without a process.
    pub(crate) aliases: RwLock<FxHashMap<Ref, AliasOwner>>,
    /// The application controller.
    pub(crate) apps: crate::application::Controller,
    pub(crate) dist: crate::dist::Dist,
}

/// The nodes running in this OS process, by name and creation (with how
/// many of each: tests may start the same name twice).
static LOCAL_NODES: parking_lot::Mutex<FxHashMap<(Atom, u32), usize>> =
    parking_lot::Mutex::new(FxHashMap::with_hasher(rustc_hash::FxBuildHasher));

/// Whether the node `name` of `creation` runs in this OS process.
pub(crate) fn in_this_process(name: Atom, creation: u32) -> bool {
    LOCAL_NODES.lock().contains_key(&(name, creation))
}

impl Drop for NodeInner {
    fn drop(&mut self) {
        let mut local = LOCAL_NODES.lock();
        let key = (self.name, self.creation);
        if let Some(n) = local.get_mut(&key) {
            *n -= 1;
            if *n == 0 {
                local.remove(&key);
            }
        }
    }
}

impl NodeInner {
    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.runtime
    }

    /// The pid node-level signals come from (see [`Node::system_pid`]).
    pub(crate) fn system_pid(&self) -> Pid {
        Pid::new(self.name, 0, 0, self.creation)
    }

    fn shard(&self, id: u32) -> &Shard {
        &self.shards[id as usize % SHARDS]
    }

    /// The control block of a live local process.
    pub(crate) fn lookup(&self, pid: Pid) -> Option<Arc<Pcb>> {
        if pid.node != self.name || pid.creation != self.creation {
            return None;
        }
        let pcb = self.shard(pid.id).read().get(&pid.id).cloned()?;
        // Ids are never reused within a creation, but check the whole pid.
        (pcb.pid == pid).then_some(pcb)
    }

    /// Runs `f` on the control block of a live local process, without
    /// taking a handle to it (the table stays read-locked meanwhile).
    pub(crate) fn with_pcb<R>(&self, pid: Pid, f: impl FnOnce(&Pcb) -> R) -> Option<R> {
        if pid.node != self.name || pid.creation != self.creation {
            return None;
        }
        let shard = self.shard(pid.id).read();
        let pcb = shard.get(&pid.id)?;
        (pcb.pid == pid).then(|| f(pcb))
    }

    /// Puts `msg` in the mailbox of `pid`, a process of this node; `false`
    /// when there is no such process. A message that finds none is dropped
    /// after the table's lock (a message's drop may run any code, a spawn
    /// among it).
    pub(crate) fn deliver_to(&self, pid: Pid, msg: Message) -> bool {
        self.deliver_made(pid, |_| msg)
    }

    /// Delivers the message signal `body` from `from` to `pid`, as the
    /// message that process takes it as ([`Body::into_message_for`]).
    pub(crate) fn deliver_body_to(&self, pid: Pid, from: Pid, body: Body) -> bool {
        self.deliver_made(pid, |pcb| body.into_message_for(from, pcb))
    }

    /// [`NodeInner::deliver_to`] for the message `make` makes for the
    /// process's control block.
    #[inline]
    fn deliver_made(&self, pid: Pid, make: impl FnOnce(&Pcb) -> Message) -> bool {
        // Declared before the table's guard, so dropped after it.
        let mut refused = None;
        let mut _replaced = None;
        if pid.node == self.name && pid.creation == self.creation {
            let make = match send_cache::deliver(self.id, pid, make, &mut refused) {
                Ok(delivered) => return delivered,
                Err(make) => make,
            };
            let shard = self.shard(pid.id).read();
            if let Some(pcb) = shard.get(&pid.id)
                && pcb.pid == pid
            {
                _replaced = send_cache::missed(self.id, pcb);
                return pcb.try_deliver(make(pcb), &mut refused);
            }
            drop(shard);
            drop(make);
            return false;
        }
        drop(make);
        false
    }

    /// Takes `pid` out of the process table (not a later process that has
    /// its number).
    pub(crate) fn remove(&self, pid: Pid) {
        let mut shard = self.shard(pid.id).write();
        if shard.get(&pid.id).is_some_and(|p| p.pid == pid) {
            shard.remove(&pid.id);
        }
    }

    fn new_pid(&self) -> Pid {
        // 28 bits of id and the rest as serial, as an Erlang node numbers
        // its processes; id 0 is left out (`<0.0.0>` is init's in Erlang).
        loop {
            let n = self.next_pid.fetch_add(1, Ordering::Relaxed);
            let id = (n & 0x0FFF_FFFF) as u32;
            if id == 0 {
                continue;
            }
            // Once the numbers have gone round, one may still be a live
            // process's: like Erlang, never give it out again while it is.
            // (Two spawns racing for one number are 2^28 spawns apart.)
            if n >> 28 != 0 && self.shard(id).read().contains_key(&id) {
                continue;
            }
            return Pid::new(self.name, id, (n >> 28) as u32, self.creation);
        }
    }

    pub(crate) fn make_ref(&self) -> Ref {
        let n = self.next_ref.fetch_add(1, Ordering::Relaxed);
        let ids = [(n & 0x3_FFFF) as u32, (n >> 18) as u32, (n >> 50) as u32];
        Ref::new(self.name, self.creation, &ids).unwrap_or_else(|| {
            // Three words is always a valid reference; this is unreachable.
            Ref::new(self.name, self.creation, &[0]).expect("one id word is a valid reference")
        })
    }

    pub(crate) fn whereis(&self, name: Atom) -> Option<Pid> {
        self.names.read().get(&name).copied()
    }

    pub(crate) fn unregister_if(&self, name: Atom, pid: Pid) {
        let mut names = self.names.write();
        if names.get(&name) == Some(&pid) {
            names.remove(&name);
        }
    }
}

impl Node {
    /// A builder for a node named `name` (`name@host`).
    pub fn builder(name: impl Into<String>) -> NodeBuilder {
        NodeBuilder {
            name: name.into(),
            cookie: String::new(),
            creation: None,
            runtime: None,
            tls: None,
            #[cfg(feature = "dashboard")]
            dashboard: None,
        }
    }

    pub(crate) fn inner(&self) -> &Arc<NodeInner> {
        &self.inner
    }

    pub(crate) fn from_arc(inner: Arc<NodeInner>) -> Node {
        Node { inner }
    }

    pub(crate) fn runtime(&self) -> &tokio::runtime::Handle {
        &self.inner.runtime
    }

    /// The node's name.
    pub fn name(&self) -> Atom {
        self.inner.name
    }

    /// The node's creation number.
    pub fn creation(&self) -> u32 {
        self.inner.creation
    }

    /// The node's cookie.
    pub fn cookie(&self) -> &str {
        &self.inner.cookie
    }

    /// Spawns a process running `f`.
    ///
    /// # Examples
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use ergo::{Message, Node};
    /// let node = Node::builder("demo@localhost").start().unwrap();
    /// let (tx, rx) = tokio::sync::oneshot::channel();
    /// let pid = node.spawn(|mut ctx| async move {
    ///     let msg = ctx.receive().await;
    ///     let _ = tx.send(msg.to_term().unwrap().to_string());
    /// });
    /// node.send(pid, ergo::etf::Term::atom("hello")).unwrap();
    /// assert_eq!(rx.await.unwrap(), "hello");
    /// # }
    /// ```
    pub fn spawn<F, Fut>(&self, f: F) -> Pid
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoReason,
    {
        self.spawn_opts(f, None, None)
    }

    pub(crate) fn spawn_opts<F, Fut>(
        &self,
        f: F,
        group_leader: Option<Pid>,
        start: Option<Start<'_>>,
    ) -> Pid
    where
        F: FnOnce(Context) -> Fut + Send + 'static,
        Fut: Future + Send + 'static,
        Fut::Output: IntoReason,
    {
        let pid = self.inner.new_pid();
        let pcb = Arc::new(Pcb::new(pid, group_leader));
        match start {
            Some(Start::Link(parent)) => {
                pcb.state.lock().ties().links.insert_new(parent.pid, ());
                parent.state.lock().ties().links.insert_new(pid, ());
            }
            Some(Start::Monitor(parent, reference)) => {
                let object = Target::Pid(pid);
                parent.add_monitor(reference, pid, object);
                pcb.add_watcher(reference, parent.pid, object);
            }
            Some(Start::Remote { link, monitor }) => {
                if let Some(parent) = link {
                    pcb.add_link(parent);
                }
                if let Some((watcher, reference)) = monitor {
                    pcb.add_watcher(reference, watcher, Target::Pid(pid));
                }
            }
            None => {}
        }
        self.inner.shard(pid.id).write().insert(pid.id, pcb.clone());
        tracing::trace!(%pid, "spawn");
        // Every event inside the process carries its pid (when anything
        // listens: otherwise the span costs a poll wrapper for nothing).
        let span = tracing::debug_span!("process", %pid);
        if span.is_disabled() {
            self.inner
                .runtime
                .spawn(crate::process::run(self.clone(), pcb, f));
        } else {
            self.inner.runtime.spawn(tracing::Instrument::instrument(
                crate::process::run(self.clone(), pcb, f),
                span,
            ));
        }
        pid
    }

    /// Sends `msg` to `to` from outside any process.
    pub fn send<M: ToTerm + Send + 'static>(
        &self,
        to: impl Into<Dest>,
        msg: M,
    ) -> Result<(), SendError> {
        self.send_message(to.into(), Message::new(msg))
    }

    /// Sends a prepared message (from the node's system pid).
    pub fn send_message(&self, to: Dest, msg: Message) -> Result<(), SendError> {
        self.send_from(self.system_pid(), to, msg)
    }

    /// Sends a prepared message from `from`. A message for another node
    /// goes over the connection to it (made now if there is none); if the
    /// node cannot be reached it is dropped, as Erlang drops it.
    pub(crate) fn send_from(&self, from: Pid, to: Dest, msg: Message) -> Result<(), SendError> {
        if let Dest::Pid(p) = to
            && p.node == self.inner.name
        {
            // The most frequent signal, a message to a pid of this node,
            // applied where it is sent: into the mailbox, or dropped (after
            // the table's lock) when the process has ended, as in Erlang.
            self.inner.deliver_to(p, msg);
            return Ok(());
        }
        let to = to.target(self.inner.name);
        let node = to.node();
        if node != self.inner.name && !msg.has_term() {
            return Err(SendError::NotSendable);
        }
        match self.inner.route_send(from, to, Body::Message(msg)) {
            Routed::Done => Ok(()),
            // A message to a process that has ended is dropped, as in Erlang.
            Routed::NoProc => match to {
                Target::Name(n, _) => Err(SendError::NotRegistered(n)),
                Target::Pid(_) => Ok(()),
            },
            Routed::Unreachable if self.inner.dist.config.get().is_none() => {
                Err(SendError::Unreachable(node))
            }
            // A message to a node that cannot be reached is dropped, as in
            // Erlang.
            Routed::Unreachable => Ok(()),
        }
    }

    /// Sends `msg` to `to` after `after`.
    pub fn send_after<M: ToTerm + Send + 'static>(
        &self,
        to: impl Into<Dest>,
        msg: M,
        after: Duration,
    ) -> TimerRef {
        crate::process::start_timer(self, to.into(), Message::new(msg), after)
    }

    /// Sends an exit signal with `reason` to `pid`, as if from `from`.
    pub fn exit(&self, from: Pid, pid: Pid, reason: Reason) {
        self.inner.route(Signal::Exit {
            from,
            to: pid,
            reason,
            link: false,
        });
    }

    /// Registers `pid` under `name`.
    pub fn register(&self, name: Atom, pid: Pid) -> Result<(), RegisterError> {
        if name == Atom::UNDEFINED {
            return Err(RegisterError::Undefined);
        }
        let pcb = self.inner.lookup(pid).ok_or(RegisterError::NoProc)?;
        let mut names = self.inner.names.write();
        let mut st = pcb.state.lock();
        if !st.alive {
            return Err(RegisterError::NoProc);
        }
        if let Some(old) = st.name() {
            return Err(RegisterError::AlreadyNamed(old));
        }
        if names.contains_key(&name) {
            return Err(RegisterError::NameTaken(name));
        }
        names.insert(name, pid);
        st.ties().name = Some(name);
        Ok(())
    }

    /// Removes the registered name `name`.
    pub fn unregister(&self, name: Atom) -> Result<(), RegisterError> {
        let pid = self
            .inner
            .names
            .write()
            .remove(&name)
            .ok_or(RegisterError::NotRegistered(name))?;
        if let Some(pcb) = self.inner.lookup(pid) {
            let mut st = pcb.state.lock();
            if let Some(ties) = st.ties_mut()
                && ties.name == Some(name)
            {
                ties.name = None;
            }
        }
        Ok(())
    }

    /// The process registered as `name` (`whereis/1`).
    pub fn whereis(&self, name: impl LookupName) -> Option<Pid> {
        self.inner.whereis(name.existing_atom()?)
    }

    /// Every registered name (`registered/0`).
    pub fn registered(&self) -> Vec<Atom> {
        self.inner.names.read().keys().copied().collect()
    }

    /// Whether `pid` is a live process of this node (`is_process_alive/1`).
    pub fn is_alive(&self, pid: Pid) -> bool {
        self.inner.lookup(pid).is_some()
    }

    /// The live processes of this node (`processes/0`).
    pub fn processes(&self) -> Vec<Pid> {
        let mut all = Vec::new();
        for shard in self.inner.shards.iter() {
            all.extend(shard.read().values().map(|p| p.pid));
        }
        all
    }

    /// How many processes are alive.
    pub fn process_count(&self) -> usize {
        self.inner.shards.iter().map(|s| s.read().len()).sum()
    }

    /// What the node knows of `pid` (`process_info/1`).
    pub fn process_info(&self, pid: Pid) -> Option<ProcessInfo> {
        self.inner.lookup(pid).map(|pcb| ProcessInfo::of(&pcb))
    }

    /// Waits until `pid` has ended and gives its exit reason (`noproc` if it
    /// is not a live process of this node).
    ///
    /// The wait is registered when this is called, not when the future is
    /// first polled: an exit between the call and the first `.await` is
    /// still seen with its reason.
    pub fn wait_exit(&self, pid: Pid) -> impl Future<Output = Reason> + Send + 'static {
        let exit = self.inner.lookup(pid).map(|pcb| pcb.on_exit());
        async move {
            match exit {
                Some(rx) => rx.await.unwrap_or(Reason::NoProc),
                None => Reason::NoProc,
            }
        }
    }

    /// A new reference.
    pub fn make_ref(&self) -> Ref {
        self.inner.make_ref()
    }

    /// Stops the node: every process gets an exit signal `shutdown`; those
    /// still alive after `grace` are killed. Returns when all have ended.
    pub async fn stop(&self, grace: Duration) {
        self.inner.stopping.store(true, Ordering::Release);
        let from = self.system_pid();
        for pid in self.processes() {
            if let Some(pcb) = self.inner.lookup(pid) {
                pcb.exit_signal(from, Reason::Shutdown, true);
            }
        }
        let deadline = tokio::time::Instant::now() + grace;
        while self.process_count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        for pid in self.processes() {
            if let Some(pcb) = self.inner.lookup(pid) {
                pcb.kill(Reason::Killed);
            }
        }
        while self.process_count() > 0 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        self.inner.dist.shut();
        tracing::debug!(node = %self.inner.name, "node stopped");
    }

    /// The pid node-level signals come from (`Node::stop`'s `shutdown`):
    /// supervisors and GenServers take an exit from it as from their parent.
    pub fn system_pid(&self) -> Pid {
        self.inner.system_pid()
    }

    /// `true` once [`Node::stop`] has begun.
    pub fn is_stopping(&self) -> bool {
        self.inner.stopping.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shards_process_numbers_hash_sixteen_at_a_time_to_consecutive_buckets() {
        use std::hash::BuildHasher;
        let hash = |place: u32| BuildPidHasher.hash_one(place * SHARDS as u32 + 3);
        let bucket = |h: u64| h & PID_BUCKET_BITS;
        let tag = |h: u64| h >> 57;
        // One group: consecutive buckets, tags that tell them apart.
        let base = bucket(hash(32));
        let mut tags = std::collections::HashSet::new();
        for k in 0..16 {
            let h = hash(32 + k);
            assert_eq!(
                bucket(h),
                base + u64::from(k),
                "bucket of the {k}th next number"
            );
            assert_eq!(tag(h), (h >> 25) & 0x7F, "the tag for 32-bit tables");
            tags.insert(tag(h));
        }
        assert!(
            tags.len() > 8,
            "only {} distinct tags in a group",
            tags.len()
        );
        // The next groups are elsewhere, and no two share a place in a
        // table of 2^15 buckets.
        let places: std::collections::HashSet<u64> = (0..2048)
            .map(|g| bucket(hash(g * 16)) & ((1 << 15) - 1))
            .collect();
        assert_eq!(places.len(), 2048, "two groups in one place");
        assert!(
            bucket(hash(48)).abs_diff(base) > 16,
            "the next group is adjacent"
        );
    }

    #[tokio::test]
    async fn a_number_still_in_use_is_not_given_again_when_the_numbers_go_round() {
        let node = Node::builder("wrap@localhost").start().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel();
        let old = node.spawn(|mut ctx| async move {
            let m = ctx.receive().await;
            let _ = tx.send(m.into_typed::<i64>().ok());
        });
        // The counter goes round to the old process's number, serial 1.
        node.inner
            .next_pid
            .store((1 << 28) + u64::from(old.id), Ordering::Relaxed);
        let new = node.spawn(|mut ctx| async move {
            ctx.receive().await;
        });
        assert_ne!(new.id, old.id, "a live process's number was given again");
        assert_eq!(new.serial, 1);
        assert!(node.is_alive(old) && node.is_alive(new));
        // A stale pid with the number of a live one takes nothing out.
        node.inner
            .remove(Pid::new(old.node, new.id, 0, old.creation));
        assert!(node.is_alive(new));
        node.send(old, 7i64).unwrap();
        assert_eq!(rx.await.unwrap(), Some(7));
    }

    #[tokio::test]
    async fn a_node_is_known_to_run_in_this_process_until_it_is_dropped() {
        let node = Node::builder("here@localhost")
            .creation(77)
            .start()
            .unwrap();
        let twin = Node::builder("here@localhost")
            .creation(77)
            .start()
            .unwrap();
        let name = Atom::from("here@localhost");
        assert!(in_this_process(name, 77));
        assert!(
            !in_this_process(name, 78),
            "another creation is another node"
        );
        drop(node);
        assert!(
            in_this_process(name, 77),
            "its twin of the same name runs on"
        );
        drop(twin);
        assert!(!in_this_process(name, 77));
    }
}

/// Each thread's memory of the process it last sent to again and again, so
/// that a stream of messages to one process (the most frequent sending
/// there is) goes straight to its control block, past the process table's
/// lock and lookup.
///
/// A cached control block is as good as the table's: a process takes
/// itself out of the table and then closes its mailbox, so a message that
/// reaches an ended process's block through the cache is refused, as one
/// that finds no process in the table is dropped. The cache holds the
/// block of an ended process (192 bytes, its mailbox emptied) only until
/// the thread sends elsewhere.
mod send_cache {
    use std::cell::Cell;
    use std::sync::Arc;

    use ergo_etf::Pid;

    use crate::message::Message;
    use crate::process::Pcb;

    struct Cached {
        node: u32,
        pcb: Arc<Pcb>,
    }

    thread_local! {
        static LAST: Cell<Option<Cached>> = const { Cell::new(None) };
        /// The process that the last send that missed went to: cached once
        /// a second send in a row goes there too, so that a thread sending
        /// in turn to several processes does not keep replacing the entry.
        static MISSED: Cell<Option<(u32, Pid)>> = const { Cell::new(None) };
    }

    /// What a send to a process not cached put out of the cache, to be
    /// dropped once the caller holds no lock.
    pub(super) struct Replaced(#[allow(dead_code)] Cached);

    /// Delivers the message `make` makes for its control block to `pid`
    /// of the node `node` if it is the process cached (as
    /// [`Pcb::try_deliver`] does); `make` back if it is not.
    #[inline]
    pub(super) fn deliver<F: FnOnce(&Pcb) -> Message>(
        node: u32,
        pid: Pid,
        make: F,
        refused: &mut Option<Message>,
    ) -> Result<bool, F> {
        // Taken out while in use: a message's drop can send again.
        let cached = LAST.try_with(Cell::take).ok().flatten();
        match cached {
            Some(c) if c.node == node && c.pcb.pid == pid => {
                let delivered = c.pcb.try_deliver(make(&c.pcb), refused);
                let _ = LAST.try_with(|l| l.set(Some(c)));
                Ok(delivered)
            }
            other => {
                let _ = LAST.try_with(|l| l.set(other));
                Err(make)
            }
        }
    }

    /// Notes a send to `pcb` that the cache missed; caches `pcb` if the
    /// last miss was a send to it too, and returns what it replaced.
    #[inline]
    pub(super) fn missed(node: u32, pcb: &Arc<Pcb>) -> Option<Replaced> {
        let again = MISSED
            .try_with(|m| m.replace(Some((node, pcb.pid))) == Some((node, pcb.pid)))
            .unwrap_or(false);
        if !again {
            return None;
        }
        let cached = Cached {
            node,
            pcb: pcb.clone(),
        };
        LAST.try_with(|l| l.replace(Some(cached)))
            .ok()
            .flatten()
            .map(Replaced)
    }
}
