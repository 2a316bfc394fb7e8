//! This program as a peer: started by an origin (OTP's `peer`, or
//! [`super::start`]) with the command line `peer` builds, it boots a node,
//! connects back, and serves the origin's requests with the node's RPC
//! functions until the origin stops it.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ergo_etf::{Atom, Pid, Term};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::frame::{self, StdioDecoder};
use crate::dist::DistOptions;
use crate::dist::rpc::RpcFailure;
use crate::message::Message;
use crate::node::Node;
use crate::process::{Context, Dest};

/// Where this peer's origin is, as `-origin` (or its absence) says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// `-origin Base64`: the origin's controller process, reached over
    /// distribution.
    Distribution(Pid),
    /// `-origin Ip[,Ip…] Port`: connect back over TCP.
    Tcp(Vec<IpAddr>, u16),
    /// No `-origin`: the control connection is standard I/O.
    StandardIo,
}

/// The command line a `peer` origin passes, as this program sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerArgs {
    /// `-name` (true) or `-sname` (false), and the name given.
    pub name: Option<(String, bool)>,
    /// `-setcookie`.
    pub cookie: Option<String>,
    /// Where the origin is.
    pub origin: Origin,
    /// The arguments this module does not read, in order (the origin's
    /// `args`, and flags such as `-detached` and `-noinput`).
    pub rest: Vec<String>,
}

impl PeerArgs {
    /// The peer arguments of this program's command line, if it was
    /// started as a peer (`-user peer` among them).
    pub fn from_env() -> Option<PeerArgs> {
        PeerArgs::parse(std::env::args().skip(1))
    }

    /// Reads `args` (without the program's name) as `erl` reads its flags:
    /// each `-flag` takes the values up to the next `-flag`. `None` unless
    /// `-user peer` is there.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Option<PeerArgs> {
        let mut flags: Vec<(String, Vec<String>)> = Vec::new();
        for a in args {
            if a.starts_with('-') && a.len() > 1 {
                flags.push((a, Vec::new()));
            } else if let Some((_, values)) = flags.last_mut() {
                values.push(a);
            } else {
                flags.push((String::new(), vec![a]));
            }
        }
        let mut out = PeerArgs {
            name: None,
            cookie: None,
            origin: Origin::StandardIo,
            rest: Vec::new(),
        };
        let mut peer = false;
        for (flag, values) in flags {
            match (flag.as_str(), values.as_slice()) {
                ("-user", [u]) if u == "peer" => peer = true,
                ("-name", [n]) => out.name = Some((n.clone(), true)),
                ("-sname", [n]) => out.name = Some((n.clone(), false)),
                ("-setcookie", [c]) => out.cookie = Some(c.clone()),
                ("-origin", [ips, port]) => {
                    let ips: Option<Vec<IpAddr>> =
                        ips.split(',').map(|ip| ip.parse().ok()).collect();
                    out.origin = Origin::Tcp(ips?, port.parse().ok()?);
                }
                ("-origin", [b64]) => {
                    use base64::Engine;
                    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).ok()?;
                    out.origin = Origin::Distribution(ergo_etf::decode(&bytes).ok()?.as_pid()?);
                }
                _ => {
                    if !flag.is_empty() {
                        out.rest.push(flag);
                    }
                    out.rest.extend(values);
                }
            }
        }
        peer.then_some(out)
    }

    /// The node name to take: `-name`/`-sname`, with this host's name when
    /// it names no host; `None` for a peer without distribution.
    fn node_name(&self) -> Option<String> {
        let (name, _) = self.name.as_ref()?;
        if name.contains('@') {
            return Some(name.clone());
        }
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_else(|_| "localhost".into());
        let host = match &self.name {
            Some((_, false)) => host.split('.').next().unwrap_or("localhost").to_string(),
            _ => host,
        };
        Some(format!("{name}@{host}"))
    }

    fn cookie(&self) -> String {
        self.cookie.clone().unwrap_or_else(|| {
            std::env::var("HOME")
                .ok()
                .and_then(|h| std::fs::read_to_string(format!("{h}/.erlang.cookie")).ok())
                .map(|c| c.trim().to_string())
                .unwrap_or_else(|| "nocookie".into())
        })
    }
}

/// Boots this program as the peer `args` describe: starts the node (with
/// distribution when it has a name), lets `setup` register the RPC
/// functions and start the servers the origin will use, connects back to
/// the origin, tells it the node has started, and serves it. The program
/// ends when the origin stops it (`erlang:halt`, `init:stop`, the control
/// connection closing, or the controller going away), as an `erl` peer
/// would.
pub async fn serve<F, Fut>(args: PeerArgs, setup: F) -> std::convert::Infallible
where
    F: FnOnce(Node) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let fail = |why: String| -> ! {
        eprintln!("peer: {why}");
        std::process::exit(1)
    };
    let name = args.node_name();
    let node = Node::builder(name.clone().unwrap_or_else(|| "nonode@nohost".into()))
        .cookie(args.cookie())
        .start()
        .unwrap_or_else(|e| fail(e.to_string()));
    if name.is_some()
        && let Err(e) = node.dist().listen(DistOptions::default()).await
    {
        fail(e.to_string());
    }
    register_shutdown(&node);
    // `user` first, so that what `setup` prints waits for the connection.
    let (out, out_rx) = mpsc::unbounded_channel::<Term>();
    let user = match args.origin {
        Origin::Distribution(_) => node.spawn(relay_to_group_leader),
        _ => {
            let out = out.clone();
            node.spawn(move |ctx| forward_io(ctx, out))
        }
    };
    let _ = node.register(Atom::from("user"), user);
    setup(node.clone()).await;
    match args.origin {
        Origin::Distribution(origin) => serve_dist(&node, origin, user).await,
        Origin::Tcp(ips, port) => {
            let mut stream = None;
            for ip in ips {
                let at = SocketAddr::new(ip, port);
                if let Ok(Ok(s)) = tokio::time::timeout(
                    Duration::from_secs(10),
                    tokio::net::TcpStream::connect(at),
                )
                .await
                {
                    stream = Some(s);
                    break;
                }
            }
            let Some(stream) = stream else {
                fail(format!("cannot connect back to the origin on port {port}"));
            };
            let _ = stream.set_nodelay(true);
            let (r, w) = stream.into_split();
            let control = Control {
                node: node.clone(),
                out,
            };
            control.started();
            run_control(Box::new(r), Box::new(w), out_rx, control, false).await
        }
        Origin::StandardIo => {
            let (r, w) = std_streams();
            let control = Control {
                node: node.clone(),
                out,
            };
            control.started();
            run_control(r, w, out_rx, control, true).await
        }
    }
}

/// Serves the control connection in one task: reads the origin's frames and
/// handles them, and writes what is to go back (replies, output) between
/// reads, so that a call answered at once costs no hand-off between tasks.
/// The program halts when the connection ends, as an `erl` peer does.
async fn run_control(
    mut r: Reader,
    mut w: Writer,
    mut rx: mpsc::UnboundedReceiver<Term>,
    control: Control,
    stdio: bool,
) -> std::convert::Infallible {
    let mut decoder = StdioDecoder::default();
    let mut pending: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let mut out = Vec::new();
    loop {
        while let Ok(t) = rx.try_recv() {
            encode_frame(&t, stdio, &mut out);
        }
        if !out.is_empty() {
            if w.write_all(&out).await.is_err() || w.flush().await.is_err() {
                std::process::exit(1);
            }
            out.clear();
        }
        tokio::select! {
            t = rx.recv() => match t {
                Some(t) => encode_frame(&t, stdio, &mut out),
                None => std::process::exit(1),
            },
            n = r.read(&mut buf) => {
                let n = match n {
                    Ok(0) | Err(_) => std::process::exit(1),
                    Ok(n) => n,
                };
                let terms = if stdio {
                    decoder.feed(&buf[..n]).map(|chunk| chunk.terms)
                } else {
                    pending.extend_from_slice(&buf[..n]);
                    frame::split_packets(&mut pending)
                };
                match terms {
                    Ok(terms) => terms.into_iter().for_each(|t| control.handle(t)),
                    Err(e) => {
                        eprintln!("peer: the control connection broke: {e}");
                        std::process::exit(1)
                    }
                }
            }
        }
    }
}

/// Appends `t` to `out` as a control frame.
fn encode_frame(t: &Term, stdio: bool, out: &mut Vec<u8>) {
    if stdio {
        out.extend_from_slice(&frame::encode_stdio(t));
    } else {
        frame::encode_packet(t, out);
    }
}

/// [`serve`], when this program was started as a peer; otherwise returns
/// at once, and the program goes on as it would. One call at the top of
/// `main`:
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// ergo::peer::serve_if_peer(|node| async move {
///     node.dist().register_rpc("calc", "double", |args| async move {
///         match args.as_slice() {
///             [ergo::Term::Int(n)] => Ok(ergo::Term::Int(n * 2)),
///             _ => Err(ergo::dist::rpc::RpcFailure::Error(ergo::Term::atom("badarg"))),
///         }
///     });
/// })
/// .await;
/// // ... not a peer: the program's ordinary work.
/// # }
/// ```
pub async fn serve_if_peer<F, Fut>(setup: F)
where
    F: FnOnce(Node) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    if let Some(args) = PeerArgs::from_env() {
        serve(args, setup).await;
    }
}

/// Writes `text` on the origin's console, as `io:put_chars/1` does on an
/// `erl` peer (through this node's `user` process, which a peer has); on a
/// node that is not a peer, nothing is written.
pub fn print(node: &Node, text: &str) {
    let request = Term::tuple([
        Term::atom("io_request"),
        Term::Pid(node.system_pid()),
        Term::Ref(node.make_ref()),
        Term::tuple([
            Term::atom("put_chars"),
            Term::atom("unicode"),
            Term::binary(text),
        ]),
    ]);
    let _ = node.send(Atom::from("user"), request);
}

/// `erlang:halt/0,1` and `init:stop/0,1`, as an origin stops its peer.
fn register_shutdown(node: &Node) {
    let d = node.dist();
    d.register_rpc("erlang", "halt", |args: Vec<Term>| async move {
        let code = match args.first() {
            Some(Term::Int(n)) => *n as i32,
            _ => 0,
        };
        std::process::exit(code)
    });
    let n = node.clone();
    d.register_rpc("init", "stop", move |args: Vec<Term>| {
        let n = n.clone();
        async move {
            let code = match args.first() {
                Some(Term::Int(c)) => *c as i32,
                _ => 0,
            };
            // Reply first, then stop in order: the caller does not wait.
            n.runtime().clone().spawn(async move {
                tokio::time::sleep(Duration::from_millis(10)).await;
                n.stop(Duration::from_secs(5)).await;
                std::process::exit(code)
            });
            Ok(Term::atom("ok"))
        }
    });
}

type Reader = Box<dyn tokio::io::AsyncRead + Unpin + Send>;
type Writer = Box<dyn tokio::io::AsyncWrite + Unpin + Send>;

/// This program's standard input and output as non-blocking streams on
/// the runtime's reactor (a pipe or a socket, as a port's are), so a
/// control frame costs no hand-off to a blocking thread; tokio's own
/// `stdin`/`stdout` otherwise.
fn std_streams() -> (Reader, Writer) {
    use std::os::fd::AsFd;
    let own = |fd: std::os::fd::BorrowedFd<'_>| fd.try_clone_to_owned().ok();
    let input: Option<Reader> = own(std::io::stdin().as_fd()).and_then(|fd| {
        let file = std::fs::File::from(fd);
        if let Ok(r) = tokio::net::unix::pipe::Receiver::from_file(file.try_clone().ok()?) {
            return Some(Box::new(r) as Reader);
        }
        let s = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(file));
        s.set_nonblocking(true).ok()?;
        tokio::net::UnixStream::from_std(s)
            .ok()
            .map(|s| Box::new(s) as Reader)
    });
    let output: Option<Writer> = own(std::io::stdout().as_fd()).and_then(|fd| {
        let file = std::fs::File::from(fd);
        if let Ok(w) = tokio::net::unix::pipe::Sender::from_file(file.try_clone().ok()?) {
            return Some(Box::new(w) as Writer);
        }
        let s = std::os::unix::net::UnixStream::from(std::os::fd::OwnedFd::from(file));
        s.set_nonblocking(true).ok()?;
        tokio::net::UnixStream::from_std(s)
            .ok()
            .map(|s| Box::new(s) as Writer)
    });
    (
        input.unwrap_or_else(|| Box::new(tokio::io::stdin())),
        output.unwrap_or_else(|| Box::new(tokio::io::stdout())),
    )
}

/// The control connection, TCP or standard I/O, on the peer's side.
struct Control {
    node: Node,
    out: mpsc::UnboundedSender<Term>,
}

impl Control {
    /// `{started, Node}`.
    fn started(&self) {
        let _ = self.out.send(Term::tuple([
            Term::atom("started"),
            Term::Atom(self.node.name()),
        ]));
    }

    /// One term from the origin (`handle_peer_alternative`).
    fn handle(&self, t: Term) {
        let Term::Tuple(mut v) = t else {
            return;
        };
        let tag = v.first().and_then(Term::as_atom).map(|a| a.as_str());
        match (tag, v.len()) {
            (Some("call"), 5) => {
                let seq = std::mem::take(&mut v[1]);
                let (m, f, a) = (v[2].as_atom(), v[3].as_atom(), std::mem::take(&mut v[4]));
                let node = self.node.clone();
                let out = self.out.clone();
                let mut call = Box::pin(async move {
                    let (class, result) = apply(&node, m, f, a).await;
                    let _ = out.send(Term::tuple([
                        Term::atom("reply"),
                        seq,
                        Term::atom(class),
                        result,
                    ]));
                });
                // Most functions answer without waiting: run them here, and
                // give the ones that wait a task of their own (as `peer`
                // gives each call a process), so that they do not hold up
                // the next frame.
                let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
                if call.as_mut().poll(&mut cx).is_pending() {
                    self.node.runtime().spawn(call);
                }
            }
            (Some("cast"), 4) => {
                let (m, f, a) = (v[1].as_atom(), v[2].as_atom(), std::mem::take(&mut v[3]));
                let node = self.node.clone();
                self.node.runtime().spawn(async move {
                    let _ = apply(&node, m, f, a).await;
                });
            }
            (Some("message"), 3) => {
                let msg = std::mem::take(&mut v[2]);
                let _ = match &v[1] {
                    Term::Pid(p) => self.node.send(*p, msg),
                    Term::Atom(a) => self.node.send(*a, msg),
                    _ => Ok(()),
                };
            }
            (Some("io_reply"), 4) => {
                if let Term::Pid(from) = v[1] {
                    let reply_as = std::mem::take(&mut v[2]);
                    let reply = std::mem::take(&mut v[3]);
                    let _ = self
                        .node
                        .send(from, Term::tuple([Term::atom("io_reply"), reply_as, reply]));
                }
            }
            _ => tracing::warn!(
                "peer: an unknown control message from the origin: {}",
                Term::Tuple(v)
            ),
        }
    }
}

/// Runs `m:f(a)` with the node's RPC functions: the class and the result,
/// as `{reply, Seq, Class, Result}` carries them.
async fn apply(node: &Node, m: Option<Atom>, f: Option<Atom>, a: Term) -> (&'static str, Term) {
    let (Some(m), Some(f), Term::List(args)) = (m, f, a) else {
        return ("error", Term::tuple([Term::atom("badarg"), Term::NIL]));
    };
    match node.dist().apply_rpc(m, f, args.clone()).await {
        Ok(r) => ("ok", r),
        Err(RpcFailure::Error(e)) => {
            let stack = Term::List(vec![Term::tuple([
                Term::Atom(m),
                Term::Atom(f),
                Term::List(args),
                Term::NIL,
            ])]);
            ("error", Term::tuple([e, stack]))
        }
        Err(RpcFailure::Exit(e)) => ("exit", Term::tuple([e, Term::NIL])),
        Err(RpcFailure::Throw(e)) => ("throw", Term::tuple([e, Term::NIL])),
    }
}

/// The `user` process of a peer over TCP or standard I/O: I/O requests
/// from the node's processes go to the origin as they are, and the
/// origin's replies come back through [`Control::handle`].
async fn forward_io(mut ctx: Context, out: mpsc::UnboundedSender<Term>) -> crate::Reason {
    loop {
        if let Message::Term(t @ Term::Tuple(_)) = ctx.receive().await
            && let Term::Tuple(v) = &t
            && v.len() == 4
            && v[0].is_atom("io_request")
            && out.send(t).is_err()
        {
            return crate::Reason::Normal;
        }
    }
}

/// The group leader `user` relays to, once the origin has named it.
struct GroupLeader(Pid);

/// The `user` process of a peer over distribution: waits to learn the
/// origin's group leader, then hands it every message (the ones that came
/// before included, in order).
async fn relay_to_group_leader(mut ctx: Context) -> crate::Reason {
    let gl = loop {
        let found = ctx
            .receive_match(|m| matches!(m, Message::Local(_)))
            .await
            .downcast::<GroupLeader>();
        if let Ok(GroupLeader(gl)) = found {
            break gl;
        }
    };
    loop {
        let m = ctx.receive().await;
        if ctx.send_message(Dest::from(gl), m).is_err() {
            return crate::Reason::Normal;
        }
    }
}

/// A peer over distribution: asks the origin's controller for its group
/// leader, relays `user`'s output there, tells the controller the node has
/// started, and halts when the controller goes (as `peer`'s `origin_link`).
async fn serve_dist(node: &Node, origin: Pid, user: Pid) -> std::convert::Infallible {
    let gl = match node
        .call(origin, Term::atom("group_leader"), Duration::from_secs(30))
        .await
    {
        Ok(Term::Pid(p)) => p,
        Ok(other) => {
            eprintln!("peer: the origin answered group_leader with {other}");
            std::process::exit(1)
        }
        Err(e) => {
            eprintln!("peer: cannot reach the origin {origin}: {e}");
            std::process::exit(1)
        }
    };
    let _ = node.send_message(Dest::from(user), Message::local(GroupLeader(gl)));
    let _ = node.send(
        origin,
        Term::tuple([Term::atom("started"), Term::Atom(node.name())]),
    );
    let reason = node
        .inner()
        .watch(crate::process::Target::Pid(origin))
        .await;
    tracing::debug!(%origin, %reason, "peer: the origin is gone; halting");
    std::process::exit(0)
}
