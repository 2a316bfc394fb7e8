//! The Erlang distribution protocol: EPMD, the handshake, connections and
//! the control messages that carry sends, links, monitors and exits between
//! nodes.
//!
//! A node takes part once [`Distribution::listen`] has run: it accepts connections,
//! publishes its name with EPMD (starting an embedded one when none runs),
//! and connects to other nodes on first use, as Erlang does: sending to a
//! pid or a `{Name, Node}` of a node it is not connected to sets up the
//! connection, and what is sent meanwhile waits, in order.
//!
//! Incoming connections are accepted, and their handshakes run, on a thread
//! of their own at a lower OS priority than the node's runtime; a
//! connection moves to the runtime once the peer has proved it knows the
//! cookie. A burst of bad handshakes then takes only the cores the node's
//! processes leave (`benches/resilience.sh` measures it).
//!
//! # What lives here, and what it may touch
//!
//! - this file: [`DistOptions`], the node's [`Distribution`] handle
//!   (listen, connect, routes, nodes, node monitors), setting up and losing
//!   connections, and firing what a lost connection breaks;
//! - `epmd`: the EPMD client, server and publication;
//! - `handshake`: the distribution handshake, both sides;
//! - `tls`: TLS distribution (`inet_tls_dist`'s), its options and the
//!   halves of a TLS connection;
//! - `conn`: one connection's reader and writer tasks, its output buffer
//!   and ticks, and its index of what crosses it;
//! - `codec`: control messages to and from signals, and the frames they
//!   travel in (atom cache, fragments, the fixed shapes of frequent
//!   messages);
//! - `services`: what an Erlang node expects on its peers (`net_kernel`,
//!   `rex`, `global`, `pg`), RPC both ways and spawning on other nodes.
//!
//! The distribution never changes a process: what a peer asks of one is
//! decoded into a signal and routed by the node like any other.
//!
//! `cargo run --example interop_node -- --name demo@127.0.0.1 --cookie
//! secret` is a node that Erlang and Elixir shells can reach.

pub mod epmd;
pub mod handshake;

pub(crate) mod codec;
pub(crate) mod conn;
mod error;
pub(crate) mod services;
pub(crate) mod tls;

pub use error::{ConnectError, Disconnect};

/// For the fuzz targets (`fuzz/`): not part of the API.
#[doc(hidden)]
pub mod fuzzing {
    use super::codec::wire::Reader;

    /// Reads `data` as a connection's reader does after the handshake:
    /// length-prefixed frames, ticks, whole messages and fragments, with
    /// small limits (4 MiB a message, 16 messages in flight, 1,000 new
    /// atoms). Returns how many whole messages were read before the end
    /// of the data or the first error; never panics.
    pub fn read_frames(data: &[u8]) -> usize {
        let mut reader = Reader::with_limits(4 << 20, 16, 1000);
        let mut rest = data;
        let mut whole = 0;
        while rest.len() >= 4 {
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            if len > 4 << 20 || rest.len() < 4 + len {
                break;
            }
            let frame = bytes::Bytes::copy_from_slice(&rest[4..4 + len]);
            rest = &rest[4 + len..];
            if len == 0 {
                continue;
            }
            match reader.read(&frame, Some(&frame)) {
                Ok(Some(_)) => whole += 1,
                Ok(None) => {}
                Err(_) => break,
            }
            reader.done();
        }
        whole
    }
}
pub use services::{rpc, spawn};
pub use tls::{TlsError, TlsOptions};

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use ergo_etf::{Atom, Pid, Term};
use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashMap;

use crate::dist::conn::{Conn, ConnConfig};
use crate::message::Message;
use crate::node::{Node, NodeInner};
use crate::process::signal::{AliasOwner, CallEvent};
use crate::reason::Reason;

/// A 32-bit number no other node can guess: the clock hashed with
/// std's per-process random keys (EPMD creations, handshake challenges).
pub(crate) fn random_u32() -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}

/// How a node takes part in distribution.
#[derive(Clone, Debug)]
pub struct DistOptions {
    /// The address to accept connections on (port 0: any free port).
    pub listen: SocketAddr,
    /// The EPMD port to publish the name with, or `None` to stay
    /// unpublished (reachable only through static routes). By default
    /// `ERL_EPMD_PORT`, or 4369.
    pub epmd_port: Option<u16>,
    /// A hidden node: connections do not show it in `nodes()`.
    pub hidden: bool,
    /// `net_ticktime`: a peer silent this long is declared down (ticks are
    /// sent every quarter of it). 60 s by default, as in Erlang.
    pub net_ticktime: Duration,
    /// The largest message accepted from a peer, whole or reassembled from
    /// fragments (256 MiB by default). A larger one closes the connection.
    /// A buffer made ahead for a fragmented message (to the size its first
    /// fragment claims, so that its fragments are received in place) is
    /// made only while it fits within this limit with what the peer's
    /// messages being put together already hold; a message whose claim
    /// does not fit gets no buffer ahead, and its buffer grows as its
    /// fragments come.
    pub max_message: usize,
    /// How many messages one peer may have being put together from
    /// fragments at once (1,024 by default); more closes the connection.
    pub max_fragmented_messages: usize,
    /// How many atoms one peer may add to the atom table over a connection
    /// (100,000 by default); more closes the connection. Atoms from any
    /// peer also stop 65,536 short of the table's limit, so that the
    /// program and the names of connecting nodes always have room.
    pub max_new_atoms: usize,
    /// `dist_buf_busy_limit`: when more than this many bytes wait to be
    /// written to a peer (1 MiB by default, as in Erlang), the connection
    /// is busy: a process that sends to it is suspended until it is not
    /// (as Erlang suspends it), so that a slow or frozen peer cannot make
    /// the node's memory grow. `Context::send_nosuspend` sends only when
    /// the connection is not busy.
    ///
    /// A process is suspended where it next waits (an `.await`): the sends
    /// it makes without waiting in between all go into the queue. Sends
    /// from outside processes (`Node::send`, a plain tokio task) are never
    /// suspended; check `send_nosuspend` from a process, or wait between
    /// sends, where such a sender may meet a frozen peer.
    pub dist_buf_busy_limit: usize,
    /// How long a connection's reader keeps polling its socket after
    /// the last data, before it lets its worker thread sleep (100 µs by
    /// default; zero to sleep at once). As BEAM's schedulers busy-wait
    /// before sleeping (`+sbwt`): a peer that answers within this time is
    /// read without the thread being woken, which on a virtual machine
    /// can take longer than the answer. While it polls, a plain TCP
    /// reader (on Linux) reads its socket itself, taken off the runtime's
    /// I/O driver so that what arrives wakes no other thread; it lets the
    /// thread's other tasks, its driver and its timers run every 25 µs
    /// (a TLS reader, between every two polls), every few polls yields the
    /// core to other OS threads, and only one reader of the OS process
    /// polls at a time. The cost is that thread's
    /// CPU time during the wait, and only after traffic. Connections to a
    /// node in the same OS process never poll: its answers come from this
    /// process's own threads, which read them as soon as they look.
    pub busy_poll: Duration,
    /// How long setting up a connection may take.
    pub connect_timeout: Duration,
    /// What to do when no EPMD answers on `epmd_port`: host one in this
    /// OS process (the default; the nodes registered with it can no longer
    /// be found by name once this node stops, and a warning names them
    /// then), or start a daemon that outlives this node, as `erl` does
    /// (`WhenNoEpmd::daemon()` finds one).
    pub when_no_epmd: epmd::WhenNoEpmd,
}

impl Default for DistOptions {
    fn default() -> DistOptions {
        DistOptions {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0),
            epmd_port: Some(epmd::port_from_env()),
            hidden: false,
            net_ticktime: Duration::from_secs(60),
            max_message: 256 << 20,
            max_fragmented_messages: codec::wire::DEFAULT_MAX_FRAGMENTED,
            max_new_atoms: codec::wire::DEFAULT_MAX_NEW_ATOMS,
            dist_buf_busy_limit: 1 << 20,
            busy_poll: Duration::from_micros(100),
            connect_timeout: Duration::from_secs(7),
            when_no_epmd: epmd::WhenNoEpmd::Host,
        }
    }
}

/// Why distribution could not start.
#[derive(Debug)]
pub enum DistError {
    /// [`Distribution::listen`] was called twice.
    AlreadyListening,
    /// The listening socket could not be opened.
    Listen(std::io::Error),
    /// EPMD refused the name or could not be reached or started.
    Epmd(epmd::EpmdError),
    /// The node's TLS options do not make a usable configuration.
    Tls(TlsError),
}

impl fmt::Display for DistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DistError::AlreadyListening => write!(f, "the node is already distributed"),
            DistError::Listen(e) => write!(f, "cannot listen for distribution: {e}"),
            DistError::Epmd(e) => write!(f, "cannot publish the node with EPMD: {e}"),
            DistError::Tls(e) => write!(f, "cannot set up TLS distribution: {e}"),
        }
    }
}

impl std::error::Error for DistError {}

/// Every flag this node offers.
pub(crate) const OUR_FLAGS: u64 = {
    use handshake::flags::*;
    EXTENDED_REFERENCES
        | DIST_MONITOR
        | FUN_TAGS
        | DIST_MONITOR_NAME
        | NEW_FUN_TAGS
        | EXTENDED_PIDS_PORTS
        | EXPORT_PTR_TAG
        | BIT_BINARIES
        | NEW_FLOATS
        | UNICODE_IO
        | DIST_HDR_ATOM_CACHE
        | SMALL_ATOM_TAGS
        | UTF8_ATOMS
        | MAP_TAG
        | BIG_CREATION
        | SEND_SENDER
        | BIG_SEQTRACE_LABELS
        | EXIT_PAYLOAD
        | FRAGMENTS
        | HANDSHAKE_23
        | UNLINK_ID
        | SPAWN
        | V4_NC
        | ALIAS
};

/// What the node keeps for distribution.
#[derive(Default)]
pub(crate) struct Dist {
    pub(crate) config: OnceLock<Config>,
    pub(crate) conns: RwLock<FxHashMap<Atom, Arc<Conn>>>,
    routes: RwLock<FxHashMap<Atom, SocketAddr>>,
    /// `monitor_node/2` subscriptions: node → watching pids (a pid once per
    /// call, as Erlang counts them).
    pub(crate) node_monitors: Mutex<FxHashMap<Atom, Vec<Pid>>>,
    /// `net_kernel:monitor_nodes/1` subscribers.
    pub(crate) node_watchers: Mutex<Vec<Pid>>,
    pub(crate) rpc: RwLock<FxHashMap<(Atom, Atom), rpc::RpcFn>>,
    running: Mutex<Vec<tokio::task::AbortHandle>>,
    publication: Mutex<Option<epmd::Publication>>,
    /// TLS distribution, as the node was built with it.
    pub(crate) tls: Option<TlsOptions>,
    /// The last totals `statistics/1` gave, for its "since last" figures.
    pub(crate) stats_last: Mutex<FxHashMap<String, i64>>,
    /// The process group scopes running: their process and their view.
    pub(crate) pg: RwLock<FxHashMap<Atom, (Pid, Arc<crate::pg::Shared>)>>,
    /// `global`'s names and locks, once the distribution runs.
    pub(crate) global: OnceLock<Arc<crate::global::Shared>>,
}

pub(crate) struct Config {
    pub(crate) conn: ConnConfig,
    pub(crate) port: u16,
    pub(crate) epmd_port: u16,
    pub(crate) connect_timeout: Duration,
    /// Set for TLS distribution.
    tls: Option<TlsConfigs>,
}

/// The TLS configurations a TLS node accepts and connects with.
struct TlsConfigs {
    acceptor: tokio_rustls::TlsAcceptor,
    connector: tokio_rustls::TlsConnector,
}

impl Dist {
    pub(crate) fn new(tls: Option<TlsOptions>) -> Dist {
        Dist {
            tls,
            ..Dist::default()
        }
    }

    /// Drops what an ended process had asked for of the distribution: its
    /// node monitors and its place in the connections' indexes.
    pub(crate) fn forget(&self, pid: Pid) {
        for c in self.conns.read().values() {
            c.unindex_pid(pid);
        }
        {
            let mut w = self.node_watchers.lock();
            if !w.is_empty() {
                w.retain(|p| *p != pid);
            }
        }
        let mut m = self.node_monitors.lock();
        if !m.is_empty() {
            for v in m.values_mut() {
                v.retain(|p| *p != pid);
            }
            m.retain(|_, v| !v.is_empty());
        }
    }

    /// Keeps a task that stops with the node's distribution (the
    /// dashboard's server, say).
    #[cfg_attr(not(feature = "dashboard"), allow(dead_code))]
    pub(crate) fn running_push(&self, task: tokio::task::AbortHandle) {
        self.running.lock().push(task);
    }

    /// Stops accepting, closes every connection and leaves EPMD.
    pub(crate) fn shut(&self) {
        for t in self.running.lock().drain(..) {
            t.abort();
        }
        self.publication.lock().take();
        let conns: Vec<_> = self.conns.write().drain().map(|(_, c)| c).collect();
        for c in conns {
            c.close();
        }
    }
}

impl Node {
    /// This node's part in the distribution: listening, connecting,
    /// routes, the nodes it knows, node monitors and RPC.
    pub fn dist(&self) -> Distribution<'_> {
        Distribution { node: self }
    }
}

/// A node's part in the distribution ([`Node::dist`]): it listens and
/// connects, knows its routes and peers, tells of nodes coming and going,
/// and serves and makes remote procedure calls.
#[derive(Clone, Copy, Debug)]
pub struct Distribution<'a> {
    node: &'a Node,
}

impl Distribution<'_> {
    /// Makes this node a member of the distribution: it accepts connections
    /// on `options.listen`, registers its name with EPMD (hosting an EPMD
    /// when none answers), and connects to other nodes when first asked to
    /// reach them. Returns the port it listens on.
    ///
    /// The node also gets the processes an Erlang node has for its peers:
    /// `net_kernel` (so `net_adm:ping/1` answers `pong`), `rex` (RPC),
    /// `global_name_server` and `pg`.
    pub async fn listen(&self, options: DistOptions) -> Result<u16, DistError> {
        let inner = self.node.inner();
        if inner.dist.config.get().is_some() {
            return Err(DistError::AlreadyListening);
        }
        let tls = match &inner.dist.tls {
            Some(t) => Some(TlsConfigs {
                acceptor: t.server_config().map_err(DistError::Tls)?.into(),
                connector: t.client_config().map_err(DistError::Tls)?.into(),
            }),
            None => None,
        };
        let listener = tokio::net::TcpListener::bind(options.listen)
            .await
            .map_err(DistError::Listen)?;
        let port = listener.local_addr().map_err(DistError::Listen)?.port();
        let mut flags = OUR_FLAGS;
        if !options.hidden {
            flags |= handshake::flags::PUBLISHED;
        }
        let config = Config {
            conn: ConnConfig {
                local: handshake::Local {
                    name: self.node.name().as_str().to_string(),
                    cookie: self.node.cookie().to_string(),
                    flags,
                    creation: self.node.creation(),
                },
                tick: options.net_ticktime.max(Duration::from_millis(400)),
                max_message: options.max_message,
                max_fragmented: options.max_fragmented_messages,
                max_new_atoms: options.max_new_atoms,
                busy_limit: options.dist_buf_busy_limit,
                busy_poll: options.busy_poll,
            },
            port,
            epmd_port: options.epmd_port.unwrap_or(epmd::port_from_env()),
            connect_timeout: options.connect_timeout,
            tls,
        };
        if inner.dist.config.set(config).is_err() {
            return Err(DistError::AlreadyListening);
        }
        services::start(self.node);
        let accept = accept_thread(self.node.clone(), listener)?;
        inner.dist.running.lock().push(accept);
        if let Some(epmd_port) = options.epmd_port {
            let alive = self
                .node
                .name()
                .as_str()
                .split('@')
                .next()
                .unwrap_or_default();
            let mut entry = epmd::NodeEntry::new(alive, port);
            if options.hidden {
                entry.node_type = epmd::NodeType::Hidden;
            }
            let publication = epmd::publish_with(epmd_port, entry, options.when_no_epmd.clone())
                .await
                .map_err(DistError::Epmd)?;
            *inner.dist.publication.lock() = Some(publication);
        }
        let tls = inner
            .dist
            .tls
            .as_ref()
            .map_or("plain".into(), TlsOptions::describe);
        tracing::info!(node = %self.node.name(), port, "distribution started ({tls})");
        Ok(port)
    }

    /// The port this node accepts distribution connections on, once
    /// [`Distribution::listen`] has run.
    pub fn dist_port(&self) -> Option<u16> {
        self.node.inner().dist.config.get().map(|c| c.port)
    }

    /// Reaches `node` at `addr` without asking EPMD (a static route).
    pub fn add_route(&self, node: impl Into<Atom>, addr: SocketAddr) {
        self.node
            .inner()
            .dist
            .routes
            .write()
            .insert(node.into(), addr);
    }

    /// Forgets a static route.
    pub fn remove_route(&self, node: impl Into<Atom>) {
        self.node.inner().dist.routes.write().remove(&node.into());
    }

    /// The visible nodes this node is connected to (`nodes()`); none when
    /// this node is hidden.
    pub fn nodes(&self) -> Vec<Atom> {
        self.connected(false)
    }

    /// The nodes this node is connected to over hidden connections
    /// (`nodes(hidden)`): hidden nodes, or every node when this one is
    /// hidden.
    pub fn hidden_nodes(&self) -> Vec<Atom> {
        self.connected(true)
    }

    fn connected(&self, hidden: bool) -> Vec<Atom> {
        let inner = self.node.inner();
        inner
            .dist
            .conns
            .read()
            .values()
            .filter(|c| c.is_up() && inner.conn_hidden(c) == Some(hidden))
            .map(|c| c.peer)
            .collect()
    }

    /// Connects to `node` (`net_kernel:connect_node/1`): `true` once the
    /// connection is up, `false` if it cannot be made.
    pub async fn connect(&self, node: impl Into<Atom>) -> bool {
        let node = node.into();
        if node == self.node.name() {
            return true;
        }
        let Some(conn) = self.node.inner().connection(node) else {
            return false;
        };
        let wait = self
            .node
            .inner()
            .dist
            .config
            .get()
            .map_or(Duration::ZERO, |c| {
                c.connect_timeout + Duration::from_secs(1)
            });
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            // Registered before looking, so that a change in between wakes it.
            let changed = conn.changed.notified();
            if conn.is_up() {
                return true;
            }
            if !self.is_connection(node, &conn) {
                return false;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return conn.is_up();
            }
        }
    }

    fn is_connection(&self, node: Atom, conn: &Arc<Conn>) -> bool {
        self.node
            .inner()
            .dist
            .conns
            .read()
            .get(&node)
            .is_some_and(|c| Arc::ptr_eq(c, conn))
    }

    /// Closes the connection to `node` (`erlang:disconnect_node/1`); its
    /// links and monitors fire with `noconnection`. `false` if there was
    /// none.
    pub fn disconnect(&self, node: impl Into<Atom>) -> bool {
        let node = node.into();
        let conn = self.node.inner().dist.conns.read().get(&node).cloned();
        match conn {
            Some(c) => {
                self.node
                    .inner()
                    .connection_lost(&c, Disconnect::ByThisNode);
                true
            }
            None => false,
        }
    }

    /// Sends `{nodeup, Node}` and `{nodedown, Node}` to `pid` as nodes
    /// connect and disconnect (`net_kernel:monitor_nodes(true)`), until
    /// [`Distribution::demonitor_nodes`].
    pub fn monitor_nodes(&self, pid: Pid) {
        self.node.inner().mark_dist_subscribed(pid);
        self.node.inner().dist.node_watchers.lock().push(pid);
    }

    /// Stops the messages [`Distribution::monitor_nodes`] asked for.
    pub fn demonitor_nodes(&self, pid: Pid) {
        self.node
            .inner()
            .dist
            .node_watchers
            .lock()
            .retain(|p| *p != pid);
    }
}

/// Accepts connections and runs their handshakes on a thread of its own,
/// at a lower OS priority than the node's runtime: until a peer has proved
/// it knows the cookie, its work (a flood of bad handshakes, say) waits
/// for the cores the node's processes and connections leave. Each
/// connection moves to the node's runtime once its handshake is done. The
/// handle stops the thread.
fn accept_thread(
    node: Node,
    listener: tokio::net::TcpListener,
) -> Result<tokio::task::AbortHandle, DistError> {
    let listener = listener.into_std().map_err(DistError::Listen)?;
    let (tx, rx) = std::sync::mpsc::channel();
    let name = node.name();
    std::thread::Builder::new()
        .name("ergo-dist-accept".into())
        .spawn(move || {
            lower_thread_priority();
            let rt = match tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(node = %name, "cannot start the accepting thread: {e}");
                    return;
                }
            };
            rt.block_on(async move {
                let listener = match tokio::net::TcpListener::from_std(listener) {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::error!(node = %name, "cannot accept connections: {e}");
                        return;
                    }
                };
                let task = tokio::spawn(async move {
                    loop {
                        let (stream, addr) = match listener.accept().await {
                            Ok(accepted) => accepted,
                            Err(e) => {
                                // Out of file descriptors, say: said once
                                // per failure, and tried again shortly.
                                tracing::warn!(node = %node.name(), "cannot accept a connection: {e}");
                                tokio::time::sleep(Duration::from_millis(10)).await;
                                continue;
                            }
                        };
                        let inner = node.inner().clone();
                        tokio::spawn(async move { inner.accept_connection(stream, addr).await });
                    }
                });
                let _ = tx.send(task.abort_handle());
                let _ = task.await;
            });
        })
        .map_err(DistError::Listen)?;
    rx.recv()
        .map_err(|_| DistError::Listen(std::io::Error::other("the accepting thread did not start")))
}

/// Lowers the calling thread's scheduling priority (nice 10 on Linux).
fn lower_thread_priority() {
    #[cfg(target_os = "linux")]
    if let Err(e) = rustix::process::setpriority_process(Some(rustix::thread::gettid()), 10) {
        tracing::debug!("cannot lower the accepting thread's priority: {e}");
    }
}

thread_local! {
    /// The connection whose reader applies a signal on this thread now, as
    /// its peer and id (see [`Reading`]).
    static READING: std::cell::Cell<Option<(Atom, u64)>> = const { std::cell::Cell::new(None) };
}

/// Marks the thread as applying a signal read from a connection, until
/// dropped.
pub(crate) struct Reading(Option<(Atom, u64)>);

impl Reading {
    /// The signal being applied came from `conn`.
    pub(crate) fn from(conn: &conn::Conn) -> Reading {
        Reading(READING.replace(Some((conn.peer, conn.id))))
    }
}

impl Drop for Reading {
    fn drop(&mut self) {
        READING.set(self.0);
    }
}

/// The id of the connection to `node` whose reader applies a signal on
/// this thread now, if it is one.
pub(crate) fn reading_from(node: Atom) -> Option<u64> {
    READING
        .get()
        .filter(|(peer, _)| *peer == node)
        .map(|(_, id)| id)
}

impl NodeInner {
    /// The connection to `node`, set up now if there is none. `None` when
    /// this node is not distributed.
    pub(crate) fn connection(self: &Arc<Self>, node: Atom) -> Option<Arc<Conn>> {
        if let Some(c) = self.dist.conns.read().get(&node) {
            return Some(c.clone());
        }
        let cfg = self.dist.config.get()?;
        let conn = {
            let mut conns = self.dist.conns.write();
            if let Some(c) = conns.get(&node) {
                return Some(c.clone());
            }
            tracing::debug!(node = %node, "connecting on first use");
            let c = Conn::new(node);
            conns.insert(node, c.clone());
            c
        };
        let route = self.dist.routes.read().get(&node).copied();
        let epmd_port = cfg.epmd_port;
        let timeout = cfg.connect_timeout;
        let this = self.clone();
        let c = conn.clone();
        let task = self.runtime().spawn(async move {
            let attempt = tokio::time::timeout(
                timeout,
                this.clone().connect_to(node, route, epmd_port, c.clone()),
            )
            .await
            .unwrap_or(Err(ConnectError::TimedOut(timeout)));
            let refused_nok = matches!(
                &attempt,
                Err(ConnectError::Handshake(handshake::HandshakeError::Refused(status)))
                    if status == "nok"
            );
            if attempt.is_err() && (refused_nok || c.is_claimed()) {
                // Both nodes connected at once and the other's attempt goes
                // on (the peer said `nok`, or this node accepted the peer's
                // with `ok_simultaneous`): what waits here leaves on that
                // connection once it is accepted.
                let up = tokio::time::timeout(timeout, async {
                    loop {
                        let changed = c.changed.notified();
                        tokio::pin!(changed);
                        changed.as_mut().enable();
                        if c.is_up() || c.is_closed() {
                            return;
                        }
                        changed.await;
                    }
                })
                .await;
                if up.is_ok() && c.is_up() {
                    return;
                }
            }
            if let Err(why) = attempt
                && !c.is_up()
            {
                tracing::warn!(node = %node, "cannot connect: {why}");
                this.connection_lost(&c, Disconnect::ConnectFailed(why));
            }
        });
        conn.set_attempt(task.abort_handle());
        Some(conn)
    }

    async fn connect_to(
        self: Arc<Self>,
        node: Atom,
        route: Option<SocketAddr>,
        epmd_port: u16,
        conn: Arc<Conn>,
    ) -> Result<(), ConnectError> {
        let cfg = self.dist.config.get().ok_or(ConnectError::Closed)?;
        let (addr, version) = conn::resolve(node.as_str(), route, epmd_port).await?;
        let mut stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|error| ConnectError::Connect { addr, error })?;
        let _ = stream.set_nodelay(true);
        // Asked `alive`: a new incarnation unless this node is connected to
        // it, or is about to be (its attempt, accepted here meanwhile with
        // `ok_simultaneous`, and the peer already counts it up), or this
        // attempt's connection was closed (a stale attempt).
        let new_incarnation = || {
            !conn.is_closed()
                && !conn.is_claimed()
                && !self.dist.conns.read().get(&node).is_some_and(|c| c.is_up())
        };
        let (stream, peer) = match &cfg.tls {
            None => {
                let peer = handshake::initiate_framed(
                    &mut stream,
                    &cfg.conn.local,
                    version,
                    handshake::Framing::Short,
                    new_incarnation,
                )
                .await
                .map_err(ConnectError::Handshake)?;
                (conn::Stream::Tcp(stream), peer)
            }
            Some(tls) => {
                let host = tls::server_name(node.as_str()).map_err(ConnectError::Tls)?;
                let mut stream = tls
                    .connector
                    .connect(host, stream)
                    .await
                    .map_err(|e| ConnectError::Tls(tls::explain(&e)))?;
                let peer = handshake::initiate_framed(
                    &mut stream,
                    &cfg.conn.local,
                    version,
                    handshake::Framing::Long,
                    new_incarnation,
                )
                .await
                .map_err(ConnectError::Handshake)?;
                let (tcp, session) = stream.into_inner();
                (conn::Stream::Tls(tcp, Box::new(session.into())), peer)
            }
        };
        if peer.name != node.as_str() {
            return Err(ConnectError::WrongNode {
                addr,
                expected: node,
                found: peer.name,
            });
        }
        let started = conn::start(&self, &conn, stream, peer, &cfg.conn, true)
            .map_err(|_| ConnectError::Closed)?;
        if started {
            self.node_up(&conn);
        }
        Ok(())
    }

    async fn accept_connection(self: Arc<Self>, stream: tokio::net::TcpStream, addr: SocketAddr) {
        let Some(cfg) = self.dist.config.get() else {
            return;
        };
        let _ = stream.set_nodelay(true);
        let mut named = None;
        // dist_util's arbitration: a node connected already is asked
        // whether it is a new incarnation; when both nodes connect to each
        // other at once, the attempt of the node with the higher name goes
        // on and the other gives way.
        // A node that has no connection to the peer yet marks one pending
        // as it answers `ok` (as dist_util does), so that what it sends the
        // peer meanwhile waits for this connection instead of starting one
        // of its own that the peer would have to arbitrate.
        let placeholder: Mutex<Option<Arc<Conn>>> = Mutex::new(None);
        let status = |peer: &str| {
            let Ok(name) = Atom::try_new(peer) else {
                return handshake::Status::Ok;
            };
            let mut conns = self.dist.conns.write();
            match conns.get(&name) {
                Some(c) if c.is_up() => handshake::Status::Alive,
                Some(c) if c.info.get().is_none() && !c.is_closed() => {
                    if self.name.as_str() > peer {
                        handshake::Status::Nok
                    } else {
                        // The pending connection is this handshake's now
                        // (unless another accept has it): if it fails,
                        // what waited goes as a failed connection's would.
                        if c.claim_for_accept() {
                            *placeholder.lock() = Some(c.clone());
                        }
                        handshake::Status::OkSimultaneous
                    }
                }
                _ => {
                    let c = Conn::new(name);
                    conns.insert(name, c.clone());
                    c.claim_for_accept();
                    *placeholder.lock() = Some(c);
                    handshake::Status::Ok
                }
            }
        };
        let handshakes = async {
            match &cfg.tls {
                None => {
                    let mut stream = stream;
                    // A TLS client's hello (a handshake record, version
                    // 3.x) where a send_name's length should be: say so
                    // rather than wait for 5,000 bytes that never come.
                    let mut first = [0u8; 3];
                    if let Ok(3) = stream.peek(&mut first).await
                        && first[0] == 0x16
                        && first[1] == 3
                    {
                        return Err("the peer speaks TLS (a TLS distribution node?), \
                                    and this node's distribution is plain"
                            .to_string());
                    }
                    let peer = handshake::accept_named(
                        &mut stream,
                        &cfg.conn.local,
                        &mut named,
                        handshake::Framing::Short,
                        status,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    Ok((conn::Stream::Tcp(stream), peer))
                }
                Some(tls) => {
                    let mut stream = tls
                        .acceptor
                        .accept(stream)
                        .await
                        .map_err(|e| format!("TLS: {}", tls::explain(&e)))?;
                    let peer = handshake::accept_named(
                        &mut stream,
                        &cfg.conn.local,
                        &mut named,
                        handshake::Framing::Long,
                        status,
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    let (tcp, session) = stream.into_inner();
                    Ok((conn::Stream::Tls(tcp, Box::new(session.into())), peer))
                }
            }
        };
        // Accepted on the handshake thread, the connection lives on the
        // node's runtime once the peer is known.
        let runtime = self.runtime().clone();
        let handshakes = async move {
            let (stream, peer) = handshakes.await?;
            let stream = stream
                .rehome(&runtime)
                .map_err(|e| format!("cannot move the connection to the node's runtime: {e}"))?;
            Ok::<_, String>((stream, peer))
        };
        let (stream, peer) = match tokio::time::timeout(cfg.connect_timeout, handshakes).await {
            Ok(Ok(p)) => p,
            refused => {
                let why = match refused {
                    Ok(Err(e)) => e,
                    _ => "the handshake timed out".to_string(),
                };
                // What waited on the connection marked pending for it goes
                // as a failed connection's would.
                // (Only while it is still pending: nothing else can
                // bring a claimed connection up, but a connection that is
                // up is not this failure's to end.)
                if let Some(c) = placeholder.lock().take()
                    && c.info.get().is_none()
                {
                    self.connection_lost(
                        &c,
                        Disconnect::ConnectFailed(ConnectError::Handshake(
                            handshake::HandshakeError::Protocol(why.clone()),
                        )),
                    );
                }
                // As a stock Erlang node reports it, naming the node when
                // it gave its name.
                let peer = named.as_deref().unwrap_or("a node that gave no name");
                tracing::warn!(node = %self.name, %peer, %addr, "refused a connection from {peer} at {addr}: {why}");
                return;
            }
        };
        let name = match Atom::try_new(&peer.name) {
            Ok(name) => name,
            Err(e) => {
                tracing::warn!(node = %self.name, peer = %peer.name, %addr, "refused a connection from {} at {addr}: its name cannot be an atom: {e}", peer.name);
                return;
            }
        };
        // One connection per node: a pending attempt of ours gives way to
        // this one; an old connection is replaced (the peer came back), and
        // what went through it is cleaned up before the new one is seen, so
        // that the clean-up cannot take what is set up through the new one.
        let old = {
            let mut conns = self.dist.conns.write();
            match conns.get(&name) {
                Some(c) if !c.is_up() && c.info.get().is_none() => None,
                Some(_) => conns.remove(&name),
                None => None,
            }
        };
        if let Some(old) = old {
            self.lost_links(&old, Disconnect::Replaced);
        }
        let (conn, raced) = {
            let mut conns = self.dist.conns.write();
            match conns.get(&name) {
                Some(c) if !c.is_up() && c.info.get().is_none() => (c.clone(), None),
                other => {
                    let raced = other.cloned();
                    let c = Conn::new(name);
                    conns.insert(name, c.clone());
                    (c, raced)
                }
            }
        };
        if let Some(raced) = raced {
            self.lost_links(&raced, Disconnect::Replaced);
        }
        if let Ok(true) = conn::start(&self, &conn, stream, peer, &cfg.conn, false) {
            tracing::debug!(node = %name, "accepted a connection");
            self.node_up(&conn);
        }
    }

    /// Whether a connection is hidden (either side is, as in Erlang), once
    /// the handshake has told.
    fn conn_hidden(&self, conn: &Conn) -> Option<bool> {
        let me_hidden = self
            .dist
            .config
            .get()
            .is_some_and(|c| c.conn.local.flags & handshake::flags::PUBLISHED == 0);
        conn.info.get().map(|p| p.hidden() || me_hidden)
    }

    /// Tells `monitor_nodes` subscribers, which hear of visible nodes only.
    fn node_up(&self, conn: &Conn) {
        if self.conn_hidden(conn) == Some(false) {
            // (Not if the connection went down meanwhile: its nodedown
            // would otherwise come first, and a watcher such as global
            // would reach for the node again.)
            conn.announce_up(|| {
                let watchers = self.dist.node_watchers.lock().clone();
                self.node_event(watchers, "nodeup", conn.peer);
            });
        }
    }

    /// Takes a connection down and tells everyone who depended on it;
    /// gives how many processes it looked at.
    pub(crate) fn connection_lost(&self, conn: &Arc<Conn>, why: Disconnect) -> usize {
        {
            let mut conns = self.dist.conns.write();
            if conns.get(&conn.peer).is_some_and(|c| Arc::ptr_eq(c, conn)) {
                conns.remove(&conn.peer);
            }
        }
        self.lost_links(conn, why)
    }

    fn lost_links(&self, conn: &Arc<Conn>, why: Disconnect) -> usize {
        let was_up = conn.info.get().is_some();
        if !conn.close() {
            return 0;
        }
        let node = conn.peer;
        if was_up {
            match why {
                // A peer that went away cleanly, as an Erlang node's halt
                // does, is news, not trouble.
                Disconnect::ByThisNode
                | Disconnect::Replaced
                | Disconnect::NodeStopped
                | Disconnect::Closed {
                    inside_frame: false,
                    error: None,
                } => {
                    tracing::info!(node = %node, "connection down: {why}");
                }
                _ => tracing::warn!(node = %node, "nodedown: {why}"),
            }
        }
        let touched = self.fire_noconnection(conn);
        let monitors = self
            .dist
            .node_monitors
            .lock()
            .remove(&node)
            .unwrap_or_default();
        self.node_event(monitors, "nodedown", node);
        if conn.announced() {
            let watchers = self.dist.node_watchers.lock().clone();
            self.node_event(watchers, "nodedown", node);
        }
        touched
    }

    /// Sends `{Event, Node}` (`nodeup`, `nodedown`) to each of `pids`.
    fn node_event(&self, pids: impl IntoIterator<Item = Pid>, event: &str, node: Atom) {
        for pid in pids {
            if let Some(p) = self.lookup(pid) {
                p.deliver(Message::Term(Term::tuple([
                    Term::atom(event),
                    Term::Atom(node),
                ])));
            }
        }
    }

    /// Marks `pid` as holding aliases or node monitors, for its end to
    /// clean up.
    pub(crate) fn mark_dist_subscribed(&self, pid: Pid) {
        if let Some(p) = self.lookup(pid) {
            p.state.lock().remote = true;
        }
    }

    /// Notes in the index of the connection to `node` that `pid` has a
    /// link or monitor across it.
    pub(crate) fn dist_index(&self, node: Atom, pid: Pid) {
        let conn = self.dist.conns.read().get(&node).cloned();
        match conn {
            Some(c) => self.index_on(&c, pid),
            // Gone already: what was just set up across it breaks now.
            None => self.connection_lost_for(pid, node),
        }
    }

    /// Puts local process `pid` in `conn`'s index (once per connection);
    /// if `conn` has closed meanwhile, fires at once what `pid` has across
    /// it, as its loss would have.
    pub(crate) fn index_on(&self, conn: &Conn, pid: Pid) {
        if self.with_pcb(pid, |p| p.first_index(conn.id)) == Some(true) && !conn.index_pid(pid) {
            self.connection_lost_for(pid, conn.peer);
        }
    }

    /// Drops what an ended process `pid` held beyond its own state: its
    /// aliases, node monitors and places in the connections' indexes.
    pub(crate) fn forget_remote(&self, pid: Pid) {
        {
            let aliases = self.aliases.read();
            let owns = aliases
                .values()
                .any(|o| matches!(o, AliasOwner::Process(p) if *p == pid));
            drop(aliases);
            if owns {
                self.aliases
                    .write()
                    .retain(|_, o| !matches!(o, AliasOwner::Process(p) if *p == pid));
            }
        }
        self.dist.forget(pid);
    }

    /// `monitor_node(Node, true)` for `pid`.
    pub(crate) fn monitor_node(self: &Arc<Self>, pid: Pid, node: Atom) {
        if node == self.name {
            // Erlang ignores monitoring its own node.
            return;
        }
        if self.connection(node).is_some() {
            self.mark_dist_subscribed(pid);
            self.dist
                .node_monitors
                .lock()
                .entry(node)
                .or_default()
                .push(pid);
            // The connection may have failed between the two lines above:
            // then nobody else will tell.
            if self.dist.conns.read().contains_key(&node) {
                return;
            }
            self.demonitor_node(pid, node);
        }
        self.node_event([pid], "nodedown", node);
    }

    /// `monitor_node(Node, false)`: removes one subscription of `pid`.
    pub(crate) fn demonitor_node(&self, pid: Pid, node: Atom) {
        if let Some(v) = self.dist.node_monitors.lock().get_mut(&node)
            && let Some(i) = v.iter().position(|p| *p == pid)
        {
            v.remove(i);
        }
    }

    /// Every local link and monitor that went through `conn` fires with
    /// `noconnection`, and every call waiting on a server there ends so:
    /// the connection's index names the processes that have them, so no
    /// other process is looked at.
    /// Gives how many processes it looked at.
    fn fire_noconnection(&self, conn: &Conn) -> usize {
        let pids = conn.take_index();
        for &pid in &pids {
            self.connection_lost_for(pid, conn.peer);
        }
        // The calls in flight to that node (few: only those waiting now).
        let calls: Vec<_> = self
            .aliases
            .read()
            .iter()
            .filter(|(_, o)| matches!(o, AliasOwner::Call { node, .. } if *node == conn.peer))
            .map(|(r, _)| *r)
            .collect();
        for alias in calls {
            self.call_event(alias, CallEvent::Down(Reason::NoConnection));
        }
        pids.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two nodes of this process joined by a static route (no EPMD).
    async fn pair(a: &str, b: &str) -> (Node, Node) {
        let start = |name: &str| Node::builder(name).cookie("ix").start().unwrap();
        let (a, b) = (start(a), start(b));
        let opts = DistOptions {
            listen: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 0),
            epmd_port: None,
            ..DistOptions::default()
        };
        let pa = a.dist().listen(opts.clone()).await.unwrap();
        let pb = b.dist().listen(opts).await.unwrap();
        a.dist().add_route(
            b.name(),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), pb),
        );
        b.dist().add_route(
            a.name(),
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), pa),
        );
        (a, b)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_lost_connection_touches_only_the_processes_whose_links_and_monitors_crossed_it() {
        let (a, b) = pair("ix_a@127.0.0.1", "ix_b@127.0.0.1").await;
        let far = b.spawn(|mut ctx| async move {
            ctx.receive().await;
        });
        for _ in 0..100_000 {
            a.spawn(|mut ctx| async move {
                ctx.receive().await;
            });
        }
        // Ten watchers: five linked to the far process, five monitoring it.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for i in 0..10 {
            let tx = tx.clone();
            a.spawn(move |mut ctx| async move {
                ctx.set_trap_exit(true);
                if i % 2 == 0 {
                    ctx.link(far).unwrap();
                } else {
                    ctx.monitor(far);
                }
                let _ = tx.send(None);
                let m = ctx.receive().await;
                let _ = tx.send(Some(m.to_string()));
            });
        }
        for _ in 0..10 {
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            assert_eq!(got.unwrap(), Some(None));
        }
        // The links and monitors have reached the far side.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while b
            .process_info(far)
            .is_none_or(|i| i.links.len() + i.monitored_by.len() < 10)
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the links and monitors arrive"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // So has the monitor of a's `pg` scope on b's, as pg sets it up.
        let b_pg = b.whereis("pg").unwrap();
        while b
            .process_info(b_pg)
            .is_none_or(|i| i.monitored_by.is_empty())
        {
            assert!(tokio::time::Instant::now() < deadline, "pg scopes meet");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let conn = a.inner().dist.conns.read().get(&b.name()).cloned().unwrap();
        let touched = a.inner().connection_lost(&conn, Disconnect::ByThisNode);
        assert_eq!(
            touched, 11,
            "only the ten watchers and the pg scope are looked at"
        );
        let mut heard = Vec::new();
        for _ in 0..10 {
            let got = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await;
            heard.push(got.unwrap().unwrap().unwrap());
        }
        let exit = format!("{{'EXIT',{far},noconnection}}");
        let down_end = format!(",process,{far},noconnection}}");
        let exits = heard.iter().filter(|m| **m == exit).count();
        let downs = heard
            .iter()
            .filter(|m| m.starts_with("{'DOWN',") && m.ends_with(&down_end))
            .count();
        assert_eq!((exits, downs), (5, 5), "{heard:?}");
    }

    #[test]
    fn an_ended_process_leaves_no_node_monitors_or_index_entries_behind() {
        let d = Dist::default();
        let p = Pid::new(Atom::from("a@h"), 1, 0, 1);
        let q = Pid::new(Atom::from("a@h"), 2, 0, 1);
        let node = Atom::from("b@h");
        let conn = Conn::new(node);
        conn.index_pid(p);
        conn.index_pid(q);
        d.conns.write().insert(node, conn.clone());
        d.node_watchers.lock().extend([p, q]);
        d.node_monitors.lock().insert(node, vec![p, p, q]);
        d.forget(p);
        assert_eq!(conn.take_index(), vec![q]);
        assert_eq!(*d.node_watchers.lock(), vec![q]);
        assert_eq!(d.node_monitors.lock().get(&node), Some(&vec![q]));
        d.forget(q);
        assert!(d.node_watchers.lock().is_empty());
        assert!(d.node_monitors.lock().is_empty());
    }
}
