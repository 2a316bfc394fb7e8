//! The origin's side: the controller process of one peer, and the OS
//! process it runs.
//!
//! The controller is a GenServer. The tasks that read the control
//! connection and watch the OS process hand it what they see as local
//! messages ([`Event`]), so everything about the peer changes in one
//! place, in order.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use ergo_etf::{Atom, ConvertError, FromTerm, Pid, Term, ToTerm};
use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};

use super::frame::{self, StdioDecoder};
use super::io::{answer, emit};
use super::{Connection, PeerDown, PeerOptions, PeerState, Shutdown, WaitBoot};
use crate::dist::rpc::RpcError;
use crate::gen_server::{CallError, Flow, From, GenServer, Reply, ServerContext, ServerRef};
use crate::message::Message;
use crate::node::Node;
use crate::process::{Context, Dest};
use crate::reason::Reason;
use crate::supervisor::ChildSpec;

/// Why a peer did not start.
#[derive(Debug, Clone, PartialEq)]
pub enum PeerError {
    /// The options cannot work as given (say, a peer over distribution
    /// from a node that is not distributed).
    BadOptions(String),
    /// The peer's program could not be run.
    Exec(String),
    /// The control connection could not be set up.
    Listen(String),
    /// The peer did not boot within `wait_boot`; it was stopped.
    Timeout,
    /// The peer went down while booting, for this reason (`{exit_status,
    /// N}`, `tcp_closed`…).
    BootFailed(Term),
    /// The controller ended, for this reason.
    Exited(Reason),
}

impl std::fmt::Display for PeerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PeerError::BadOptions(why) => write!(f, "bad peer options: {why}"),
            PeerError::Exec(why) => write!(f, "cannot run the peer's program: {why}"),
            PeerError::Listen(why) => write!(f, "cannot open the control connection: {why}"),
            PeerError::Timeout => write!(f, "the peer did not boot in time"),
            PeerError::BootFailed(r) => write!(f, "the peer failed to boot: {r}"),
            PeerError::Exited(r) => write!(f, "the peer's controller ended: {r}"),
        }
    }
}

impl std::error::Error for PeerError {}

/// Why [`Peer::call`] has no result.
#[derive(Debug, Clone, PartialEq)]
pub enum CallFailure {
    /// The function raised on the peer: its class (`error`, `exit`,
    /// `throw`, or `crash` when the process running it died), reason and
    /// stack.
    Raised {
        /// `error`, `exit`, `throw` or `crash`.
        class: Atom,
        /// What it raised.
        reason: Term,
        /// Where (as the peer reports it).
        stack: Term,
    },
    /// The peer cannot be reached (`noconnection`), or another error the
    /// controller gives.
    Error(Term),
    /// The controller did not answer in time, or is gone.
    Call(CallError),
}

impl std::fmt::Display for CallFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallFailure::Raised { class, reason, .. } => write!(f, "{class}:{reason}"),
            CallFailure::Error(r) => write!(f, "error: {r}"),
            CallFailure::Call(e) => write!(f, "{e}"),
        }
    }
}

impl std::error::Error for CallFailure {}

/// A started peer: its controller, through which it is called and stopped.
#[derive(Debug, Clone)]
pub struct Peer {
    server: ServerRef<Controller>,
    pid: Pid,
    node: Option<Atom>,
}

impl Peer {
    /// The controller's pid (the process to link to or supervise).
    pub fn pid(&self) -> Pid {
        self.pid
    }

    /// The peer's node name: as it booted, or as it was asked to be named
    /// when the start did not wait. `None` for a peer without a name.
    pub fn node(&self) -> Option<Atom> {
        self.node
    }

    /// `peer:get_state/1`.
    pub async fn state(&self) -> Result<PeerState, CallError> {
        let t = self.server.call(Request::GetState).await?;
        Ok(match t {
            Term::Atom(a) if a.as_str() == "booting" => PeerState::Booting,
            Term::Atom(a) if a.as_str() == "running" => PeerState::Running,
            Term::Tuple(mut v) if v.len() == 2 => PeerState::Down(std::mem::take(&mut v[1])),
            other => PeerState::Down(other),
        })
    }

    /// `peer:call/5`: runs `module:function(args)` on the peer and gives its
    /// result. Over distribution it runs as an RPC call.
    pub async fn call(
        &self,
        module: impl Into<Atom>,
        function: impl Into<Atom>,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, CallFailure> {
        let req = Request::Call(module.into(), function.into(), args, timeout);
        let reply = self
            .server
            .call_timeout(req, timeout + Duration::from_millis(100))
            .await
            .map_err(CallFailure::Call)?;
        let Term::Tuple(mut v) = reply else {
            return Err(CallFailure::Error(reply));
        };
        if v.len() != 2 {
            return Err(CallFailure::Error(Term::Tuple(v)));
        }
        let result = std::mem::take(&mut v[1]);
        match &v[0] {
            Term::Atom(a) if a.as_str() == "ok" => Ok(result),
            Term::Atom(a) if a.as_str() == "error" && !is_reason_stack(&result) => {
                Err(CallFailure::Error(result))
            }
            Term::Atom(class) => {
                let (reason, stack) = match result {
                    Term::Tuple(mut rs) if rs.len() == 2 => {
                        (std::mem::take(&mut rs[0]), std::mem::take(&mut rs[1]))
                    }
                    other => (other, Term::NIL),
                };
                Err(CallFailure::Raised {
                    class: *class,
                    reason,
                    stack,
                })
            }
            _ => Err(CallFailure::Error(Term::Tuple(v))),
        }
    }

    /// `peer:cast/4`: runs `module:function(args)` on the peer, not
    /// waiting.
    pub fn cast(&self, module: impl Into<Atom>, function: impl Into<Atom>, args: Vec<Term>) {
        self.server
            .cast(Cast::Apply(module.into(), function.into(), args));
    }

    /// `peer:send/3`: sends `message` to `to` (a pid or a registered name)
    /// on the peer.
    pub fn send(&self, to: impl Into<Term>, message: impl Into<Term>) {
        self.server.cast(Cast::Send(to.into(), message.into()));
    }

    /// `peer:stop/1`: stops the controller, which stops the peer by its
    /// [`Shutdown`], and waits until both are done.
    pub async fn stop(&self) -> Result<(), CallError> {
        self.server.stop(Reason::Normal).await
    }
}

/// Whether a call's `{error, X}` reply is a raised error, `{Reason, Stack}`
/// (the peer ran the function), rather than the controller's own error.
fn is_reason_stack(t: &Term) -> bool {
    matches!(t, Term::Tuple(v) if v.len() == 2 && matches!(v[1], Term::List(_)))
}

/// Starts a peer and (by `wait_boot`) waits for it to boot
/// (`peer:start/1`). The controller is not linked to the caller.
pub async fn start(node: &Node, options: PeerOptions) -> Result<Peer, PeerError> {
    start_it(node, None, options).await
}

/// Like [`start`], the controller linked to `ctx`'s process
/// (`peer:start_link/1`): when that process ends, the peer is stopped.
pub async fn start_link(ctx: &Context, options: PeerOptions) -> Result<Peer, PeerError> {
    start_it(ctx.node(), Some(ctx), options).await
}

/// A supervisor child that runs a peer (started with [`start_link`]):
/// restarting the child starts a new peer.
pub fn child_spec(id: impl Into<Atom>, options: PeerOptions) -> ChildSpec {
    ChildSpec::new(id, move |ctx| {
        let options = options.clone();
        Box::pin(async move {
            start_link(ctx, options)
                .await
                .map(|p| p.pid)
                .map_err(|e| match e {
                    PeerError::Exited(r) => r,
                    PeerError::Timeout => Reason::atom("timeout"),
                    PeerError::BootFailed(r) => {
                        Reason::other(Term::tuple([Term::atom("boot_failed"), r]))
                    }
                    other => Reason::other(Term::binary(other.to_string())),
                })
        })
    })
}

async fn start_it(
    node: &Node,
    parent: Option<&Context>,
    options: PeerOptions,
) -> Result<Peer, PeerError> {
    if options.connection == Connection::Distribution && node.dist().dist_port().is_none() {
        return Err(PeerError::BadOptions(
            "a peer over distribution needs this node to be distributed (Distribution::listen)"
                .into(),
        ));
    }
    let wait = options.wait_boot.clone();
    let (tx, rx) = oneshot::channel();
    let notify = match &wait {
        WaitBoot::Timeout(_) | WaitBoot::Infinity => Some(Notify::Local(tx)),
        WaitBoot::Notify(pid, tag) => Some(Notify::Process(*pid, tag.clone())),
        WaitBoot::NoWait => None,
    };
    let asked = configured_name(node, &options);
    let (err_tx, err_rx) = oneshot::channel();
    let start = StartArgs {
        options,
        notify,
        failed: Some(err_tx),
    };
    let server = match parent {
        Some(ctx) => ctx.start_server_link::<Controller>(start).await,
        None => node.start_server::<Controller>(start).await,
    };
    let server = match server {
        Ok(s) => s,
        Err(reason) => {
            return Err(err_rx.await.unwrap_or(PeerError::Exited(reason)));
        }
    };
    let pid = server.pid().ok_or(PeerError::Exited(Reason::NoProc))?;
    let booted = match wait {
        WaitBoot::Timeout(d) => match tokio::time::timeout(d, rx).await {
            Ok(r) => Some(r),
            Err(_) => {
                let _ = server.stop(Reason::Normal).await;
                return Err(PeerError::Timeout);
            }
        },
        WaitBoot::Infinity => Some(rx.await),
        _ => None,
    };
    let node_name = match booted {
        None => asked,
        Some(Ok(Ok(n))) => Some(n),
        Some(Ok(Err(reason))) => return Err(PeerError::BootFailed(reason)),
        Some(Err(_)) => {
            return Err(PeerError::Exited(node.wait_exit(pid).await));
        }
    };
    Ok(Peer {
        server,
        pid,
        node: node_name,
    })
}

/// Who hears that the peer booted.
pub(crate) enum Notify {
    Local(oneshot::Sender<Result<Atom, Term>>),
    Process(Pid, Term),
}

/// The controller's start arguments.
pub(crate) struct StartArgs {
    options: PeerOptions,
    notify: Option<Notify>,
    /// Told why `init` failed, in more words than an exit reason.
    failed: Option<oneshot::Sender<PeerError>>,
}

/// What the controller is asked, by term (from Erlang) or locally.
pub(crate) enum Request {
    GroupLeader,
    GetState,
    GetNode,
    Call(Atom, Atom, Vec<Term>, Duration),
}

impl FromTerm for Request {
    fn from_term(t: &Term) -> Result<Self, ConvertError> {
        match t {
            Term::Atom(a) if a.as_str() == "group_leader" => Ok(Request::GroupLeader),
            Term::Atom(a) if a.as_str() == "get_state" => Ok(Request::GetState),
            Term::Atom(a) if a.as_str() == "get_node" => Ok(Request::GetNode),
            Term::Tuple(v) if v.len() == 4 && v[0].is_atom("call") => match (&v[1], &v[2], &v[3]) {
                (Term::Atom(m), Term::Atom(f), Term::List(a)) => {
                    Ok(Request::Call(*m, *f, a.clone(), Duration::from_secs(5)))
                }
                _ => Err(ConvertError::new("{call, atom, atom, list}", t)),
            },
            _ => Err(ConvertError::new(
                "group_leader | get_state | get_node | {call, M, F, A}",
                t,
            )),
        }
    }
}

impl ToTerm for Request {
    fn to_term(&self) -> Term {
        match self {
            Request::GroupLeader => Term::atom("group_leader"),
            Request::GetState => Term::atom("get_state"),
            Request::GetNode => Term::atom("get_node"),
            Request::Call(m, f, a, _) => Term::tuple([
                Term::atom("call"),
                Term::Atom(*m),
                Term::Atom(*f),
                Term::List(a.clone()),
            ]),
        }
    }
}

impl ToTerm for Cast {
    fn to_term(&self) -> Term {
        match self {
            Cast::Apply(m, f, a) => Term::tuple([
                Term::atom("cast"),
                Term::Atom(*m),
                Term::Atom(*f),
                Term::List(a.clone()),
            ]),
            Cast::Send(to, msg) => Term::tuple([Term::atom("send"), to.clone(), msg.clone()]),
        }
    }
}

/// What the controller is told.
pub(crate) enum Cast {
    Apply(Atom, Atom, Vec<Term>),
    Send(Term, Term),
}

impl FromTerm for Cast {
    fn from_term(t: &Term) -> Result<Self, ConvertError> {
        match t {
            Term::Tuple(v) if v.len() == 4 && v[0].is_atom("cast") => match (&v[1], &v[2], &v[3]) {
                (Term::Atom(m), Term::Atom(f), Term::List(a)) => Ok(Cast::Apply(*m, *f, a.clone())),
                _ => Err(ConvertError::new("{cast, atom, atom, list}", t)),
            },
            Term::Tuple(v) if v.len() == 3 && v[0].is_atom("send") => {
                Ok(Cast::Send(v[1].clone(), v[2].clone()))
            }
            _ => Err(ConvertError::new("{cast, M, F, A} | {send, To, Msg}", t)),
        }
    }
}

/// What the connection's and the OS process's tasks tell the controller.
enum Event {
    /// The peer connected back over TCP; frames go out through this.
    Connected(mpsc::UnboundedSender<Vec<u8>>),
    /// A term from the control connection.
    Frame(Term),
    /// Console text from the peer's standard output.
    Console(String),
    /// The control connection (or the peer's output) ended, for this
    /// reason.
    Closed(Term),
    /// The peer's program exited with this status before the control
    /// connection was up.
    Exited(i32),
}

/// One peer's controller.
pub(crate) struct Controller {
    options: PeerOptions,
    state: PeerState,
    node: Option<Atom>,
    /// Frames to the peer (TCP and standard I/O, once connected).
    out: Option<mpsc::UnboundedSender<Vec<u8>>>,
    seq: u64,
    outstanding: HashMap<u64, From<Term>>,
    notify: Option<Notify>,
    /// The group leader a peer over distribution writes to.
    io_server: Option<Pid>,
}

impl Controller {
    fn stdio(&self) -> bool {
        self.options.connection == Connection::StandardIo
    }

    fn dist(&self) -> bool {
        self.options.connection == Connection::Distribution
    }

    /// Sends a term over the control connection; `false` if there is none.
    fn to_peer(&self, t: &Term) -> bool {
        let Some(out) = &self.out else {
            return false;
        };
        let bytes = if self.stdio() {
            frame::encode_stdio(t)
        } else {
            let mut b = Vec::new();
            frame::encode_packet(t, &mut b);
            b
        };
        out.send(bytes).is_ok()
    }

    /// The peer went down: `peer`'s `maybe_stop`.
    fn peer_gone(&mut self, reason: Term, ctx: &ServerContext<Self>) -> Flow {
        self.out = None;
        if self.state == PeerState::Booting {
            match self.notify.take() {
                Some(Notify::Local(tx)) => {
                    let _ = tx.send(Err(reason.clone()));
                }
                Some(Notify::Process(pid, tag)) => {
                    let _ = ctx.send(
                        pid,
                        Term::tuple([
                            tag,
                            Term::tuple([
                                Term::atom("boot_failed"),
                                reason.clone(),
                                Term::Pid(ctx.pid()),
                            ]),
                        ]),
                    );
                }
                None => {}
            }
        }
        if matches!(self.state, PeerState::Down(_)) && self.options.peer_down == PeerDown::Continue
        {
            return Flow::Continue;
        }
        self.state = PeerState::Down(reason.clone());
        match self.options.peer_down {
            PeerDown::Continue => Flow::Continue,
            PeerDown::Crash => Flow::Stop(Reason::other(reason)),
            PeerDown::Stop => Flow::Stop(Reason::Normal),
        }
    }

    /// A term from the peer (`handle_alternative_data`).
    fn handle_peer_term(&mut self, t: Term, ctx: &mut ServerContext<Self>) {
        let Term::Tuple(mut v) = t else {
            tracing::warn!(peer = ?self.node, "an unknown control message from the peer: {t}");
            return;
        };
        let tag = v.first().and_then(Term::as_atom).map(|a| a.as_str());
        match (tag, v.len()) {
            (Some("io_request"), 4) => {
                let mut text = String::new();
                let reply = answer(&v[3], &mut text);
                emit(&self.options.output, &text);
                let from = std::mem::take(&mut v[1]);
                let from_ref = std::mem::take(&mut v[2]);
                self.to_peer(&Term::tuple([
                    Term::atom("io_reply"),
                    from,
                    from_ref,
                    reply,
                ]));
            }
            (Some("message"), 3) => {
                let content = std::mem::take(&mut v[2]);
                let _ = match &v[1] {
                    Term::Pid(p) => ctx.send(*p, content),
                    Term::Atom(a) => ctx.send(*a, content),
                    _ => Ok(()),
                };
            }
            (Some("reply"), 4) => {
                let seq = match &v[1] {
                    Term::Int(n) => *n as u64,
                    _ => return,
                };
                if let Some(from) = self.outstanding.remove(&seq) {
                    let class = std::mem::take(&mut v[2]);
                    let result = std::mem::take(&mut v[3]);
                    from.reply(Term::tuple([class, result]));
                }
            }
            (Some("started"), 2) => {
                if let Term::Atom(n) = v[1] {
                    self.boot_complete(n, ctx);
                }
            }
            _ => {
                tracing::warn!(peer = ?self.node, "an unknown control message from the peer: {}", Term::Tuple(v))
            }
        }
    }

    /// The peer has booted: whoever waits is told.
    fn boot_complete(&mut self, node: Atom, ctx: &ServerContext<Self>) {
        self.state = PeerState::Running;
        self.node = Some(node);
        match self.notify.take() {
            Some(Notify::Local(tx)) => {
                let _ = tx.send(Ok(node));
            }
            Some(Notify::Process(pid, tag)) => {
                let _ = ctx.send(
                    pid,
                    Term::tuple([
                        tag,
                        Term::tuple([
                            Term::atom("started"),
                            Term::Atom(node),
                            Term::Pid(ctx.pid()),
                        ]),
                    ]),
                );
            }
            None => {}
        }
    }

    /// Waits, up to `until`, for the peer's node to be disconnected, then
    /// takes the connection down (`wait_disconnected`).
    async fn wait_disconnected(&self, ctx: &mut ServerContext<Self>, until: Option<Duration>) {
        let Some(node) = self.node else {
            return;
        };
        if !ctx.node().dist().nodes().contains(&node)
            && !ctx.node().dist().hidden_nodes().contains(&node)
        {
            return;
        }
        ctx.monitor_node(node);
        let deadline = until.map(|d| tokio::time::Instant::now() + d);
        loop {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(tokio::time::Instant::now()),
                None => Duration::from_secs(u32::MAX as u64),
            };
            match ctx.receive_timeout(left).await {
                Some(Message::Term(Term::Tuple(t)))
                    if t.len() == 2 && t[0].is_atom("nodedown") && t[1] == Term::Atom(node) =>
                {
                    return;
                }
                Some(_) => continue,
                None => break,
            }
        }
        ctx.node().dist().disconnect(node);
        tracing::warn!(peer = %node, "stopping the peer timed out waiting for it to disconnect; the connection was taken down");
    }

    /// Waits up to `until` for the control connection to close.
    async fn wait_closed(ctx: &mut ServerContext<Self>, until: Option<Duration>) {
        let deadline = until.map(|d| tokio::time::Instant::now() + d);
        loop {
            let left = match deadline {
                Some(d) => d.saturating_duration_since(tokio::time::Instant::now()),
                None => Duration::from_secs(u32::MAX as u64),
            };
            let Some(m) = ctx.receive_timeout(left).await else {
                return;
            };
            if let Ok(Event::Closed(_)) = m.downcast::<Event>() {
                return;
            }
        }
    }
}

/// The peer's node name as the options give it (with this node's host when
/// they give none).
fn configured_name(node: &Node, o: &PeerOptions) -> Option<Atom> {
    let name = match (&o.name, &o.connection) {
        (Some(n), _) => n.clone(),
        (None, Connection::Distribution) => super::random_name("peer"),
        (None, _) => return None,
    };
    if name.contains('@') {
        return Some(Atom::from(name.as_str()));
    }
    let host = o.host.clone().unwrap_or_else(|| {
        let me = node.name();
        me.as_str()
            .split_once('@')
            .map_or("localhost", |(_, h)| h)
            .to_string()
    });
    Some(Atom::from(format!("{name}@{host}").as_str()))
}

/// The program and its arguments, as `peer:command_line/2` builds them.
fn command_line(
    node: &Node,
    o: &PeerOptions,
    name: Option<Atom>,
    listen: Option<(&[IpAddr], u16)>,
    me: Pid,
) -> (String, Vec<String>) {
    let (program, mut args) = o
        .exec
        .clone()
        .unwrap_or_else(|| ("erl".to_string(), Vec::new()));
    if let Some(name) = name {
        let long = o.longnames.unwrap_or_else(|| {
            name.as_str()
                .split_once('@')
                .is_some_and(|(_, h)| h.contains('.'))
        });
        args.push(if long { "-name" } else { "-sname" }.to_string());
        args.push(name.as_str().to_string());
    }
    match (&o.connection, listen) {
        (Connection::StandardIo, _) => {
            args.extend(["-user".to_string(), "peer".to_string()]);
        }
        (_, Some((ips, port))) => {
            if o.detached {
                args.push("-detached".into());
            }
            args.extend(["-noinput", "-user", "peer", "-origin"].map(String::from));
            args.push(
                ips.iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(","),
            );
            args.push(port.to_string());
        }
        (_, None) => {
            use base64::Engine;
            if o.detached {
                args.push("-detached".into());
            }
            args.extend(["-noinput", "-user", "peer", "-origin"].map(String::from));
            let me = ergo_etf::encode(&Term::Pid(me));
            args.push(base64::engine::general_purpose::STANDARD.encode(me));
        }
    }
    let has_cookie = o.args.iter().any(|a| a == "-setcookie");
    if name.is_some() && !has_cookie {
        args.push("-setcookie".into());
        args.push(
            o.cookie
                .clone()
                .unwrap_or_else(|| node.cookie().to_string()),
        );
    }
    args.extend(o.args.iter().cloned());
    (program, args)
}

impl GenServer for Controller {
    type Args = StartArgs;
    type Call = Request;
    type Reply = Term;
    type Cast = Cast;

    async fn init(start: StartArgs, ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        let StartArgs {
            options,
            notify,
            failed,
        } = start;
        let fail = |e: PeerError, failed: Option<oneshot::Sender<PeerError>>| {
            let r = Reason::other(Term::binary(e.to_string()));
            if let Some(f) = failed {
                let _ = f.send(e);
            }
            r
        };
        ctx.set_trap_exit(true);
        let node = ctx.node().clone();
        let me = ctx.pid();
        let name = configured_name(&node, &options);
        // TCP: listen first, so that the command line names the port.
        let listener = match &options.connection {
            Connection::Tcp { ip, port } => {
                let bind = SocketAddr::new(ip.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED)), *port);
                match tokio::net::TcpListener::bind(bind).await {
                    Ok(l) => {
                        let port = l.local_addr().map(|a| a.port()).unwrap_or(*port);
                        let ips = match ip {
                            Some(ip) => vec![*ip],
                            None => vec![IpAddr::V4(Ipv4Addr::LOCALHOST)],
                        };
                        Some((l, ips, port))
                    }
                    Err(e) => return Err(fail(PeerError::Listen(format!("{bind}: {e}")), failed)),
                }
            }
            _ => None,
        };
        let (program, args) = command_line(
            &node,
            &options,
            name,
            listener
                .as_ref()
                .map(|(_, ips, port)| (ips.as_slice(), *port)),
            me,
        );
        tracing::debug!(peer = ?name, %program, ?args, "starting a peer");
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .envs(options.env.iter().map(|(k, v)| (k, v)))
            .stderr(Stdio::inherit());
        let stdio = options.connection == Connection::StandardIo;
        if stdio {
            cmd.stdin(Stdio::piped()).stdout(Stdio::piped());
        } else {
            cmd.stdin(Stdio::null()).stdout(Stdio::null());
        }
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => return Err(fail(PeerError::Exec(format!("{program}: {e}")), failed)),
        };
        let mut controller = Controller {
            options,
            state: PeerState::Booting,
            node: None,
            out: None,
            seq: 0,
            outstanding: HashMap::new(),
            notify,
            io_server: None,
        };
        let tell = {
            let node = node.clone();
            move |e: Event| {
                let _ = node.send_message(Dest::from(me), Message::local(e));
            }
        };
        if stdio {
            let (tx, rx) = mpsc::unbounded_channel();
            controller.out = Some(tx);
            let stdin = child.stdin.take();
            let stdout = child.stdout.take();
            node.runtime().spawn(write_out(stdin, rx));
            let tell = tell.clone();
            node.runtime().spawn(async move {
                let reason = read_stdio(stdout, &tell).await;
                let reason = match reason {
                    Some(r) => r,
                    None => {
                        let status = child.wait().await.ok().and_then(|s| s.code()).unwrap_or(-1);
                        Term::tuple([Term::atom("exit_status"), Term::from(status as i64)])
                    }
                };
                tell(Event::Closed(reason));
            });
        } else {
            // The program runs on by itself (an `erl -detached` has already
            // left it); a failure before the peer connects is a failed boot.
            let tell_exit = tell.clone();
            node.runtime().spawn(async move {
                if let Ok(status) = child.wait().await
                    && !status.success()
                {
                    tell_exit(Event::Exited(status.code().unwrap_or(-1)));
                }
            });
        }
        if let Some((listener, _, _)) = listener {
            let tell = tell.clone();
            node.runtime().spawn(async move {
                let accepted =
                    tokio::time::timeout(Duration::from_secs(60), listener.accept()).await;
                drop(listener);
                let stream = match accepted {
                    Ok(Ok((s, _))) => s,
                    Ok(Err(e)) => {
                        tell(Event::Closed(Term::tuple([
                            Term::atom("inet_async"),
                            Term::binary(e.to_string()),
                        ])));
                        return;
                    }
                    Err(_) => {
                        tell(Event::Closed(Term::tuple([
                            Term::atom("inet_async"),
                            Term::atom("timeout"),
                        ])));
                        return;
                    }
                };
                let _ = stream.set_nodelay(true);
                let (mut r, w) = stream.into_split();
                let (tx, rx) = mpsc::unbounded_channel();
                tell(Event::Connected(tx));
                tokio::spawn(write_out(Some(w), rx));
                loop {
                    match frame::read_packet(&mut r).await {
                        Ok(Some(t)) => tell(Event::Frame(t)),
                        Ok(None) => break,
                        Err(e) => {
                            tracing::warn!("the peer's control connection failed: {e}");
                            break;
                        }
                    }
                }
                tell(Event::Closed(Term::atom("tcp_closed")));
            });
        }
        if controller.dist() {
            let output = controller.options.output.clone();
            controller.io_server = Some(ctx.spawn_link(move |ctx| io_server(ctx, output)));
        }
        Ok(controller)
    }

    async fn handle_call(
        &mut self,
        request: Request,
        ctx: &mut ServerContext<Self>,
    ) -> Reply<Term> {
        match request {
            Request::GroupLeader => {
                Reply::Reply(self.io_server.map_or(Term::atom("undefined"), Term::Pid))
            }
            Request::GetState => Reply::Reply(self.state.to_term()),
            Request::GetNode => Reply::Reply(self.node.map_or(Term::atom("undefined"), Term::Atom)),
            Request::Call(m, f, a, timeout) if self.dist() => {
                let Some(peer) = self.node else {
                    return Reply::Reply(no_connection());
                };
                let Some(from) = ctx.reply_later() else {
                    return Reply::NoReply;
                };
                let node = ctx.node().clone();
                ctx.node().runtime().spawn(async move {
                    let r = node.dist().rpc_call(peer, m, f, a, timeout).await;
                    from.reply(match r {
                        Ok(v) => Term::tuple([Term::atom("ok"), v]),
                        Err(RpcError::NodeDown) => no_connection(),
                        Err(RpcError::Timeout) => {
                            Term::tuple([Term::atom("error"), Term::atom("timeout")])
                        }
                        Err(RpcError::Exit(t)) if is_reason_stack(&t) => {
                            Term::tuple([Term::atom("error"), t])
                        }
                        Err(RpcError::Exit(t)) => {
                            Term::tuple([Term::atom("exit"), Term::tuple([t, Term::NIL])])
                        }
                        Err(RpcError::Other(t)) => Term::tuple([Term::atom("error"), t]),
                    });
                });
                Reply::NoReply
            }
            Request::Call(m, f, a, _) => {
                let seq = self.seq;
                let sent = self.to_peer(&Term::tuple([
                    Term::atom("call"),
                    Term::from(seq as i64),
                    Term::Atom(m),
                    Term::Atom(f),
                    Term::List(a),
                ]));
                if !sent {
                    return Reply::Reply(no_connection());
                }
                self.seq += 1;
                if let Some(from) = ctx.reply_later() {
                    self.outstanding.insert(seq, from);
                }
                Reply::NoReply
            }
        }
    }

    async fn handle_cast(&mut self, request: Cast, ctx: &mut ServerContext<Self>) -> Flow {
        match (request, self.dist()) {
            (Cast::Apply(m, f, a), true) => {
                if let Some(peer) = self.node {
                    ctx.node().dist().rpc_cast(peer, m, f, a);
                }
            }
            (Cast::Apply(m, f, a), false) => {
                self.to_peer(&Term::tuple([
                    Term::atom("cast"),
                    Term::Atom(m),
                    Term::Atom(f),
                    Term::List(a),
                ]));
            }
            (Cast::Send(to, msg), true) => {
                if let Some(peer) = self.node {
                    let _ = match to {
                        Term::Pid(p) => ctx.send(p, msg),
                        Term::Atom(a) => ctx.send((a, peer), msg),
                        _ => Ok(()),
                    };
                }
            }
            (Cast::Send(to, msg), false) => {
                self.to_peer(&Term::tuple([Term::atom("message"), to, msg]));
            }
        }
        Flow::Continue
    }

    async fn handle_info(&mut self, message: Message, ctx: &mut ServerContext<Self>) -> Flow {
        let message = match message.downcast::<Event>() {
            Ok(event) => {
                return match event {
                    Event::Connected(tx) => {
                        self.out = Some(tx);
                        Flow::Continue
                    }
                    Event::Frame(t) => {
                        self.handle_peer_term(t, ctx);
                        Flow::Continue
                    }
                    Event::Console(text) => {
                        emit(&self.options.output, &text);
                        Flow::Continue
                    }
                    Event::Closed(reason) => self.peer_gone(reason, ctx),
                    Event::Exited(code) if self.state == PeerState::Booting => self.peer_gone(
                        Term::tuple([Term::atom("exit_status"), Term::from(code as i64)]),
                        ctx,
                    ),
                    Event::Exited(_) => Flow::Continue,
                };
            }
            Err(m) => m,
        };
        match message {
            Message::Term(Term::Tuple(t)) if t.len() == 2 && t[0].is_atom("started") => {
                if let Term::Atom(n) = t[1] {
                    ctx.monitor_node(n);
                    self.boot_complete(n, ctx);
                }
                Flow::Continue
            }
            Message::Term(Term::Tuple(t))
                if t.len() == 2 && t[0].is_atom("nodedown") && self.dist() =>
            {
                let reason = Term::Tuple(t);
                self.peer_gone(reason, ctx)
            }
            _ => Flow::Continue,
        }
    }

    async fn terminate(&mut self, _reason: &Reason, ctx: &mut ServerContext<Self>) {
        let dist = self.dist();
        match self.options.shutdown {
            Shutdown::Close if dist => {
                if let Some(n) = self.node {
                    ctx.node().dist().disconnect(n);
                }
            }
            Shutdown::Close => self.out = None,
            Shutdown::Halt(until) if dist => {
                if let Some(n) = self.node {
                    let t = until.unwrap_or(Duration::from_secs(u32::MAX as u64));
                    match ctx
                        .node()
                        .dist()
                        .rpc_call(n, "erlang", "halt", vec![], t)
                        .await
                    {
                        Err(RpcError::NodeDown) => {}
                        _ => {
                            ctx.node().dist().disconnect(n);
                        }
                    }
                }
            }
            Shutdown::Halt(until) => {
                self.out = None;
                self.wait_disconnected(ctx, until).await;
            }
            Shutdown::Stop(until) if dist => {
                if let Some(n) = self.node {
                    ctx.node().dist().rpc_cast(n, "init", "stop", vec![]);
                }
                self.wait_disconnected(ctx, until).await;
            }
            Shutdown::Stop(until) => {
                let start = tokio::time::Instant::now();
                if self.to_peer(&Term::tuple([
                    Term::atom("cast"),
                    Term::atom("init"),
                    Term::atom("stop"),
                    Term::NIL,
                ])) {
                    Self::wait_closed(ctx, until).await;
                }
                self.out = None;
                let left = until.map(|d| d.saturating_sub(start.elapsed()));
                self.wait_disconnected(ctx, left).await;
            }
        }
        if let Some(io) = self.io_server.take() {
            ctx.exit(io, Reason::Kill);
        }
    }
}

fn no_connection() -> Term {
    Term::tuple([Term::atom("error"), Term::atom("noconnection")])
}

/// Writes the frames handed to it until the sender is dropped, then closes
/// the stream (which tells the peer to halt).
async fn write_out<W: tokio::io::AsyncWrite + Unpin>(
    w: Option<W>,
    mut rx: mpsc::UnboundedReceiver<Vec<u8>>,
) {
    use tokio::io::AsyncWriteExt;
    let Some(mut w) = w else {
        return;
    };
    while let Some(bytes) = rx.recv().await {
        if w.write_all(&bytes).await.is_err() || w.flush().await.is_err() {
            return;
        }
    }
    let _ = w.shutdown().await;
}

/// Reads the peer's standard output: console text and frames. `None` at
/// the end of the output; `Some(reason)` when it broke the framing.
async fn read_stdio(
    stdout: Option<tokio::process::ChildStdout>,
    tell: &(impl Fn(Event) + Send),
) -> Option<Term> {
    let mut stdout = stdout?;
    let mut decoder = StdioDecoder::default();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match stdout.read(&mut buf).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => n,
        };
        match decoder.feed(&buf[..n]) {
            Ok(chunk) => {
                if !chunk.console.is_empty() {
                    tell(Event::Console(
                        String::from_utf8_lossy(&chunk.console).into_owned(),
                    ));
                }
                for t in chunk.terms {
                    tell(Event::Frame(t));
                }
            }
            Err(e) => {
                tracing::warn!("the peer's control stream broke: {e}");
                return Some(Term::tuple([
                    Term::atom("bad_frame"),
                    Term::binary(e.to_string()),
                ]));
            }
        }
    }
}

/// The group leader of a peer over distribution: answers its I/O requests
/// and prints what they write.
async fn io_server(mut ctx: Context, output: Option<super::Output>) -> Reason {
    loop {
        let Message::Term(Term::Tuple(mut t)) = ctx.receive().await else {
            continue;
        };
        if t.len() != 4 || !t[0].is_atom("io_request") {
            continue;
        }
        let Some(from) = t[1].as_pid() else {
            continue;
        };
        let mut text = String::new();
        let reply = answer(&t[3], &mut text);
        emit(&output, &text);
        let reply_as = std::mem::take(&mut t[2]);
        let _ = ctx.send(from, Term::tuple([Term::atom("io_reply"), reply_as, reply]));
    }
}
