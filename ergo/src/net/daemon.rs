//! The daemon: a GenServer that owns the listening socket, a pool of
//! acceptor tasks and the supervisor of its connections.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use ergo_etf::{ConvertError, FromTerm, Pid, Term, ToTerm};
use parking_lot::{Mutex, RwLock};

use super::{ConnStart, Connection, Handler, Slot, Slots, TlsFiles};
use crate::gen_server::{CallError, Flow, GenServer, Reply, ServerContext, ServerRef};
use crate::message::Message;
use crate::node::Node;
use crate::process::Context;
use crate::reason::Reason;
use crate::supervisor::{ChildSpec, Restart, Shutdown, SupRef, SupervisorSpec};

/// How a stopping daemon treats its open connections.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopMode {
    /// Stop accepting, let the connections end on their own for up to this
    /// long, then end the rest (`shutdown`, then killed after their own
    /// shutdown time).
    Drain(Duration),
    /// End every connection at once (killed).
    Immediate,
}

/// A daemon's options (`Erps.Daemon`'s and more). `Clone`, so that a
/// supervisor can start the daemon again.
pub struct DaemonSpec<H: Handler> {
    args: H::Args,
    port: u16,
    ifaddr: IpAddr,
    tls: Option<TlsFiles>,
    acceptors: usize,
    max_connections: Option<usize>,
    idle_timeout: Option<Duration>,
    conn_restart: Restart,
    conn_shutdown: Duration,
    stop: StopMode,
    supervisor: Option<SupRef>,
}

impl<H: Handler> Clone for DaemonSpec<H> {
    fn clone(&self) -> Self {
        DaemonSpec {
            args: self.args.clone(),
            port: self.port,
            ifaddr: self.ifaddr,
            tls: self.tls.clone(),
            acceptors: self.acceptors,
            max_connections: self.max_connections,
            idle_timeout: self.idle_timeout,
            conn_restart: self.conn_restart,
            conn_shutdown: self.conn_shutdown,
            stop: self.stop,
            supervisor: self.supervisor.clone(),
        }
    }
}

impl<H: Handler> std::fmt::Debug for DaemonSpec<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DaemonSpec")
            .field("handler", &std::any::type_name::<H>())
            .field("port", &self.port)
            .field("ifaddr", &self.ifaddr)
            .field("tls", &self.tls)
            .field("acceptors", &self.acceptors)
            .field("max_connections", &self.max_connections)
            .field("idle_timeout", &self.idle_timeout)
            .field("conn_restart", &self.conn_restart)
            .field("stop", &self.stop)
            .field("supervisor", &self.supervisor)
            .finish()
    }
}

impl<H: Handler> DaemonSpec<H> {
    /// A daemon whose connections start with `args`: on a port the system
    /// picks (see [`DaemonSpec::port`]), on every interface, plain TCP, 10
    /// acceptors, no connection limit or idle timeout, temporary
    /// connections, draining for 5 seconds when stopped.
    pub fn new(args: H::Args) -> Self {
        DaemonSpec {
            args,
            port: 0,
            ifaddr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            tls: None,
            acceptors: 10,
            max_connections: None,
            idle_timeout: None,
            conn_restart: Restart::Temporary,
            conn_shutdown: Duration::from_secs(5),
            stop: StopMode::Drain(Duration::from_secs(5)),
            supervisor: None,
        }
    }

    /// Starts the connections under `sup`, a supervisor of the user's
    /// made from [`connection_supervisor`] (Erps' `server_supervisor:`),
    /// instead of one of the daemon's own. They are then the user's: they
    /// outlive the daemon, which, stopping, only stops accepting (and
    /// drains up to its [`StopMode::Drain`] time). Their restart type and
    /// shutdown are that supervisor's.
    pub fn supervisor(mut self, sup: SupRef) -> Self {
        self.supervisor = Some(sup);
        self
    }

    /// The port (0, the default: a free one, which [`DaemonRef::port`]
    /// tells).
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// The address to listen on (`ifaddr`; every interface by default).
    pub fn ifaddr(mut self, ip: IpAddr) -> Self {
        self.ifaddr = ip;
        self
    }

    /// Serves TLS with this certificate.
    pub fn tls(mut self, files: TlsFiles) -> Self {
        self.tls = Some(files);
        self
    }

    /// How many tasks accept connections (10 by default).
    pub fn acceptors(mut self, n: usize) -> Self {
        self.acceptors = n.max(1);
        self
    }

    /// At most `n` connections open at once; one more is closed as soon as
    /// it is accepted.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.max_connections = Some(n);
        self
    }

    /// A connection the peer sends nothing on for this long is closed
    /// (its process ends with `{shutdown, idle_timeout}`).
    pub fn idle_timeout(mut self, d: Duration) -> Self {
        self.idle_timeout = Some(d);
        self
    }

    /// The connections' restart type: `Temporary` (the default) or
    /// `Transient`, whose restarted process takes over the same socket.
    /// `Permanent` is treated as `Transient`: a connection that ended
    /// normally has nothing left to serve.
    pub fn connection_restart(mut self, restart: Restart) -> Self {
        self.conn_restart = match restart {
            Restart::Permanent => Restart::Transient,
            r => r,
        };
        self
    }

    /// How long a connection's process has to stop when told to (5 s by
    /// default) before it is killed.
    pub fn connection_shutdown(mut self, d: Duration) -> Self {
        self.conn_shutdown = d;
        self
    }

    /// What stopping the daemon does to its connections.
    pub fn stop_mode(mut self, mode: StopMode) -> Self {
        self.stop = mode;
        self
    }
}

/// Why a daemon could not start or answer.
#[derive(Debug)]
pub enum DaemonError {
    /// The daemon did not start.
    Start(Reason),
    /// A call to it failed.
    Call(CallError),
    /// The TLS files could not be loaded.
    Tls(String),
}

impl std::fmt::Display for DaemonError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DaemonError::Start(r) => write!(f, "the daemon did not start: {r}"),
            DaemonError::Call(e) => write!(f, "the daemon did not answer: {e}"),
            DaemonError::Tls(e) => write!(f, "TLS: {e}"),
        }
    }
}

impl std::error::Error for DaemonError {}

/// A daemon's calls.
#[derive(Debug, Clone, PartialEq)]
pub enum DaemonCall {
    /// The port it listens on.
    Port,
    /// How many connections are open.
    Connections,
    /// Reads the TLS files again.
    ReloadTls,
}

impl FromTerm for DaemonCall {
    fn from_term(t: &Term) -> Result<Self, ConvertError> {
        match t.as_atom().map(|a| a.as_str()) {
            Some("port") => Ok(DaemonCall::Port),
            Some("connections") => Ok(DaemonCall::Connections),
            Some("reload_tls") => Ok(DaemonCall::ReloadTls),
            _ => Err(ConvertError::new("port | connections | reload_tls", t)),
        }
    }
}

impl ToTerm for DaemonCall {
    fn to_term(&self) -> Term {
        Term::atom(match self {
            DaemonCall::Port => "port",
            DaemonCall::Connections => "connections",
            DaemonCall::ReloadTls => "reload_tls",
        })
    }
}

type Starter = Arc<
    dyn for<'a> Fn(
            &'a Context,
            i64,
        ) -> Pin<Box<dyn Future<Output = Result<Pid, Reason>> + Send + 'a>>
        + Send
        + Sync,
>;

/// How each running daemon starts a connection, by the daemon's number:
/// what a [`connection_supervisor`] calls, whichever daemon gave it the
/// connection.
static STARTERS: LazyLock<RwLock<HashMap<i64, Starter>>> = LazyLock::new(Default::default);
static NEXT_DAEMON: AtomicI64 = AtomicI64::new(0);

/// A `simple_one_for_one` supervisor for the connections of daemons given
/// it with [`DaemonSpec::supervisor`]; put it in a supervision tree like
/// any child (`ChildSpec::supervisor(id, connection_supervisor(…))`).
/// Connections are started with `restart` and `shutdown`; their supervisor
/// tolerates their crashes (a high restart intensity), as connections come
/// and go on their own.
pub fn connection_supervisor(restart: Restart, shutdown: Shutdown) -> SupervisorSpec {
    SupervisorSpec::simple(|ctx: &Context, arg: Term| {
        let (daemon, slot) = match arg.as_tuple() {
            Some([Term::Int(d), Term::Int(s)]) => (*d, *s),
            _ => (-1, -1),
        };
        let starter = STARTERS.read().get(&daemon).cloned();
        Box::pin(async move {
            match starter {
                Some(start) => start(ctx, slot).await,
                // Its daemon is gone, and with it the socket's handover.
                None => Ok(ctx.spawn(|_| async { Reason::Normal })),
            }
        })
    })
    .template(restart, shutdown)
    .intensity(1_000_000, Duration::from_secs(1))
}

/// What the acceptors and the connection supervisor share.
struct Shared<H: Handler> {
    args: H::Args,
    tls: RwLock<Option<Arc<rustls::ServerConfig>>>,
    idle: Option<Duration>,
    restart: Restart,
    slots: Slots,
    open: Arc<AtomicUsize>,
    next_id: AtomicI64,
}

/// The daemon's GenServer.
pub struct Daemon<H: Handler> {
    shared: Arc<Shared<H>>,
    spec: DaemonSpec<H>,
    addr: SocketAddr,
    sup: SupRef,
    /// Whether `sup` is the daemon's own (stopped with it).
    own_sup: bool,
    number: i64,
    acceptors: Vec<tokio::task::JoinHandle<()>>,
}

impl<H: Handler> std::fmt::Debug for Daemon<H> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Daemon")
            .field("addr", &self.addr)
            .field("open", &self.shared.open.load(Ordering::Relaxed))
            .finish_non_exhaustive()
    }
}

/// Listens on `ip:port`. A daemon restarted after a crash may find its
/// port still held for a moment by the listener of the one that crashed
/// (its acceptors are being cancelled): it tries again for a second.
async fn bind(ip: IpAddr, port: u16) -> std::io::Result<tokio::net::TcpListener> {
    let mut tries = 0;
    loop {
        match tokio::net::TcpListener::bind((ip, port)).await {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && port != 0 && tries < 50 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

/// Accepts connections for the daemon, starting a process for each.
async fn accept_loop<H: Handler>(
    listener: Arc<tokio::net::TcpListener>,
    shared: Arc<Shared<H>>,
    sup: SupRef,
    number: i64,
    max: Option<usize>,
) {
    loop {
        let (tcp, peer) = match listener.accept().await {
            Ok(c) => c,
            Err(e) => {
                // Out of file descriptors and the like: wait a little.
                tracing::warn!(error = %e, "the daemon could not accept a connection");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if max.is_some_and(|m| shared.open.load(Ordering::Relaxed) >= m) {
            tracing::warn!(%peer, "connection refused: the daemon's connection limit is reached");
            drop(tcp);
            continue;
        }
        let _ = tcp.set_nodelay(true);
        let id = shared.next_id.fetch_add(1, Ordering::Relaxed);
        shared
            .slots
            .lock()
            .insert(id, Arc::new(Slot::new(tcp, peer, shared.open.clone())));
        let arg = Term::tuple([Term::Int(number), Term::Int(id)]);
        if let Err(e) = sup.start_child_with(arg).await {
            tracing::warn!(%peer, error = %e, "the daemon could not start a connection");
            shared.slots.lock().remove(&id);
        }
    }
}

impl<H: Handler> GenServer for Daemon<H> {
    type Args = DaemonSpec<H>;
    type Call = DaemonCall;
    type Reply = Term;
    type Cast = ();

    async fn init(spec: DaemonSpec<H>, ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        ctx.set_behaviour(|| crate::process::Behaviour {
            name: "daemon",
            module: std::any::type_name::<H>(),
        });
        // To drain the connections when the parent stops it.
        ctx.set_trap_exit(true);
        let tls = match &spec.tls {
            Some(files) => Some(files.load().map_err(|e| {
                Reason::other(Term::tuple([
                    Term::atom("tls"),
                    Term::binary(e.to_string()),
                ]))
            })?),
            None => None,
        };
        let listener = bind(spec.ifaddr, spec.port).await.map_err(|e| {
            Reason::other(Term::tuple([
                Term::atom("listen"),
                Term::Int(spec.port.into()),
                Term::binary(e.to_string()),
            ]))
        })?;
        let addr = listener.local_addr().map_err(|e| {
            Reason::other(Term::tuple([
                Term::atom("listen"),
                Term::binary(e.to_string()),
            ]))
        })?;
        let shared = Arc::new(Shared::<H> {
            args: spec.args.clone(),
            tls: RwLock::new(tls),
            idle: spec.idle_timeout,
            restart: spec.conn_restart,
            slots: Arc::new(Mutex::new(Default::default())),
            open: Arc::new(AtomicUsize::new(0)),
            next_id: AtomicI64::new(0),
        });
        let s = shared.clone();
        let starter: Starter = Arc::new(move |ctx: &Context, id: i64| {
            let start = ConnStart::<H> {
                id,
                slots: s.slots.clone(),
                args: s.args.clone(),
                tls: s.tls.read().clone(),
                idle: s.idle,
                restart: s.restart,
            };
            Box::pin(async move {
                match ctx.start_server_link::<Connection<H>>(start).await {
                    Ok(c) => c.pid().ok_or(Reason::NoProc),
                    // A restart after the socket went: nothing to do.
                    Err(Reason::Normal) => Ok(ctx.spawn(|_| async { Reason::Normal })),
                    Err(r) => Err(r),
                }
            })
        });
        let number = NEXT_DAEMON.fetch_add(1, Ordering::Relaxed);
        STARTERS.write().insert(number, starter);
        let (sup, own_sup) = match &spec.supervisor {
            Some(given) => (given.clone(), false),
            None => {
                let shutdown = match spec.stop {
                    StopMode::Immediate => Shutdown::BrutalKill,
                    StopMode::Drain(_) => Shutdown::Timeout(spec.conn_shutdown),
                };
                let own = ctx
                    .start_supervisor_link(connection_supervisor(spec.conn_restart, shutdown))
                    .await;
                match own {
                    Ok(sup) => (sup, true),
                    Err(r) => {
                        STARTERS.write().remove(&number);
                        return Err(r);
                    }
                }
            }
        };
        let listener = Arc::new(listener);
        let acceptors = (0..spec.acceptors)
            .map(|_| {
                tokio::spawn(accept_loop(
                    listener.clone(),
                    shared.clone(),
                    sup.clone(),
                    number,
                    spec.max_connections,
                ))
            })
            .collect();
        tracing::info!(%addr, tls = spec.tls.is_some(), "daemon listening");
        Ok(Daemon {
            shared,
            spec,
            addr,
            sup,
            own_sup,
            number,
            acceptors,
        })
    }

    async fn handle_call(
        &mut self,
        req: DaemonCall,
        _ctx: &mut ServerContext<Self>,
    ) -> Reply<Term> {
        Reply::Reply(match req {
            DaemonCall::Port => Term::Int(self.addr.port().into()),
            DaemonCall::Connections => Term::Int(self.shared.open.load(Ordering::Relaxed) as i64),
            DaemonCall::ReloadTls => match &self.spec.tls {
                None => Term::tuple([Term::atom("error"), Term::atom("no_tls")]),
                Some(files) => match files.load() {
                    Ok(cfg) => {
                        *self.shared.tls.write() = Some(cfg);
                        Term::atom("ok")
                    }
                    Err(e) => Term::tuple([Term::atom("error"), Term::binary(e.to_string())]),
                },
            },
        })
    }

    async fn handle_info(&mut self, message: Message, _ctx: &mut ServerContext<Self>) -> Flow {
        match message {
            // The connection supervisor went: the daemon goes with it.
            Message::Exit { from, reason } if self.own_sup && from == self.sup.pid() => {
                Flow::Stop(reason)
            }
            _ => Flow::Continue,
        }
    }

    async fn terminate(&mut self, _reason: &Reason, _ctx: &mut ServerContext<Self>) {
        // Cancelled and waited for: an acceptor running on another worker
        // at this moment could otherwise still take a connection after the
        // daemon said it stopped.
        let acceptors: Vec<_> = self.acceptors.drain(..).collect();
        for a in &acceptors {
            a.abort();
        }
        for a in acceptors {
            let _ = a.await;
        }
        if let StopMode::Drain(limit) = self.spec.stop {
            let deadline = tokio::time::Instant::now() + limit;
            while self.shared.open.load(Ordering::Relaxed) > 0
                && tokio::time::Instant::now() < deadline
            {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        if self.own_sup {
            let _ = self.sup.stop(Reason::Shutdown).await;
        }
    }
}

impl<H: Handler> Drop for Daemon<H> {
    fn drop(&mut self) {
        // Killed (no `terminate`): the acceptors, which are tasks and not
        // processes, must not outlive it, nor keep its port.
        for a in &self.acceptors {
            a.abort();
        }
        // Connections of a user's supervisor restarted from now on find no
        // daemon, and end at once.
        STARTERS.write().remove(&self.number);
    }
}

/// A handle to a running daemon.
#[derive(Debug)]
pub struct DaemonRef<H: Handler> {
    server: ServerRef<Daemon<H>>,
}

impl<H: Handler> Clone for DaemonRef<H> {
    fn clone(&self) -> Self {
        DaemonRef {
            server: self.server.clone(),
        }
    }
}

impl<H: Handler> DaemonRef<H> {
    /// A handle to the daemon process `pid` (say, a supervisor's child).
    pub fn new(node: &Node, pid: crate::Pid) -> Self {
        DaemonRef {
            server: ServerRef::new(node, pid),
        }
    }

    /// The daemon's pid.
    pub fn pid(&self) -> Option<crate::Pid> {
        self.server.pid()
    }

    async fn ask(&self, c: DaemonCall) -> Result<Term, DaemonError> {
        self.server.call(c).await.map_err(DaemonError::Call)
    }

    /// The port it listens on (the one the system picked for port 0).
    pub async fn port(&self) -> Result<u16, DaemonError> {
        let t = self.ask(DaemonCall::Port).await?;
        t.as_i64()
            .and_then(|p| u16::try_from(p).ok())
            .ok_or_else(|| DaemonError::Call(CallError::BadReply(t.to_string())))
    }

    /// How many connections are open.
    pub async fn connections(&self) -> Result<usize, DaemonError> {
        let t = self.ask(DaemonCall::Connections).await?;
        Ok(t.as_i64().unwrap_or(0) as usize)
    }

    /// Reads the TLS files again; connections accepted from now on use the
    /// new certificate.
    pub async fn reload_tls(&self) -> Result<(), DaemonError> {
        match self.ask(DaemonCall::ReloadTls).await? {
            t if t.is_atom("ok") => Ok(()),
            t => Err(DaemonError::Tls(t.to_string())),
        }
    }

    /// Stops the daemon as its [`StopMode`] says, and waits until it has
    /// stopped.
    pub async fn stop(&self) -> Result<(), DaemonError> {
        self.server
            .stop(Reason::Shutdown)
            .await
            .map_err(DaemonError::Call)
    }
}

/// Starts a daemon linked to `parent` (`Erps.Daemon.start_link`).
pub async fn start<H: Handler>(
    parent: &Context,
    spec: DaemonSpec<H>,
) -> Result<DaemonRef<H>, DaemonError> {
    let server = parent
        .start_server_link::<Daemon<H>>(spec)
        .await
        .map_err(DaemonError::Start)?;
    Ok(DaemonRef { server })
}

/// The daemon as a supervisor's child, with `id`; its shutdown leaves room
/// for draining the connections. `restart` and `shutdown` can be changed
/// on the returned spec, as `:restart` and `:shutdown` override Erps'.
pub fn child_spec<H: Handler>(id: impl Into<crate::Atom>, spec: DaemonSpec<H>) -> ChildSpec {
    let drain = match spec.stop {
        StopMode::Drain(d) => d,
        StopMode::Immediate => Duration::ZERO,
    };
    let shutdown = drain + spec.conn_shutdown + Duration::from_secs(1);
    ChildSpec::server::<Daemon<H>>(id, spec).shutdown(Shutdown::Timeout(shutdown))
}
