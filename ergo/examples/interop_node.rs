//! A node for Erlang and Elixir nodes to talk to.
//!
//! ```text
//! cargo run --release --example interop_node -- --name demo@127.0.0.1 --cookie secret
//! ```
//!
//! With `--tls-auto` (a self-signed certificate, any peer accepted) or
//! `--tls-certfile CERT.pem --tls-keyfile KEY.pem` (this certificate), its
//! distribution is TLS, as `erl -proto_dist inet_tls` is; with
//! `--tls-cacertfile CA.pem` besides, every peer must present a
//! certificate signed by that CA (client certificates included).
//!
//! `--dashboard 127.0.0.1:PORT` serves the web dashboard there (the example
//! built with the `dashboard` feature).
//!
//! `--net-ticktime SECONDS` sets `net_ticktime` (60 by default, as in
//! Erlang; peers should use the same).
//!
//! Started by a `peer` origin (OTP's `peer:start_link(#{exec => Path,
//! connection => …})`, or `ergo::peer::start`), it reads `peer`'s command
//! line instead (`-name`/`-sname`, `-setcookie`, `-user peer`, `-origin`),
//! connects back to the origin over distribution, TCP or standard I/O, and
//! serves the same things; `peer:call(Peer, interop, add, [40, 2])` gives
//! `42`, and `peer:stop/1` halts it.
//!
//! It prints `ready` once it is registered with EPMD (it starts one when
//! none runs; `ERL_EPMD_PORT` picks the port) and accepting connections.
//! Names with a dot in the host are long names (`erl -name`), others short
//! (`erl -sname`). From an Erlang shell started with the same cookie:
//!
//! ```text
//! erl -name me@127.0.0.1 -setcookie secret
//! 1> gen_server:call({counter, 'demo@127.0.0.1'}, {add, 5}).
//! 5
//! ```
//!
//! What it serves:
//! - `echo`: a call with any term `T` replies `T`; a cast
//!   `{send_to, Pid, T}` sends `T` to `Pid`; a plain message `{Pid, T}`
//!   sends `{echo, T}` to `Pid`.
//! - `counter` (also registered with `global` as `{counter, Node}`): call
//!   `get` → the value; call `{add, N}` → the new value;
//!   cast `reset` → 0. Any other call is answered with
//!   `{error, {badcall, Description}}`, where Description is a binary
//!   saying what was expected and what came, and the server keeps running.
//! - `lab`: call `{spawn, Owner}` → `{ok, Worker}`. The worker reports each
//!   message that is not one of its commands to Owner as
//!   `{forward, Worker, Message}` (exit signals it traps, `'DOWN'`s and
//!   `nodedown`s included) and obeys `{link, Pid}`, `{unlink, Pid}`,
//!   `{trap_exit, Bool}`, `{monitor, Target}` (reports
//!   `{monitoring, Target, Ref}`), `{demonitor, Ref}`,
//!   `{monitor_node, Node}`, `{exit, Reason}`, `{exit, Pid, Reason}`,
//!   `{send, Dest, Msg}`, `{call, Dest, Request}` (reports
//!   `{reply, Result}`, Result being `{error, Reason}` on failure; Dest
//!   is a pid, a name, `{Name, Node}` or `{global, Name}`) and
//!   `{rpc, Node, M, F, Args}` (reports `{rpc_result, Result}`),
//!   `{sleep, Ms}` (takes no message for Ms milliseconds),
//!   `{pg_join, Scope, Group}` (joins the `pg` group, starting the scope if
//!   needed; reports `{pg_joined, Group, true}`), `{pg_leave, Scope,
//!   Group}` (reports `{pg_left, Group, Left}`), `{pg_members, Scope,
//!   Group}` (reports `{pg_members, Group, SortedPids}`),
//!   `{global_register, Name}` (registers itself with `global`; reports
//!   `{global_registered, Name, yes | no}`, and prints it on stderr), `{global_whereis, Name}`
//!   (reports `{global_whereis, Name, Pid | undefined}`) and
//!   `{on_nodedown, Node, Command}` (obeys Command once the connection to
//!   Node goes).
//! - `sup`: a `one_for_one` supervisor of `crasher`, which answers call
//!   `ping` with `pong` and exits with reason `boom` on call `crash`; `sup`
//!   then starts it again under the same name.
//! - the application `interop` (`application:which_applications/0` lists
//!   it): a `one_for_one` supervisor of `app_worker_1` and
//!   `app_worker_2`, each a `crasher`.
//! - GenStage stages (events are integers): `numbers` (a producer of 0, 1,
//!   2, … as demanded), `bcast` (the same, broadcast dispatcher), `parts`
//!   (the same, partition dispatcher with partitions `0` and `1`),
//!   `doubler` (a producer_consumer emitting each event times two) and
//!   `sink` (a consumer); `doubler` and `sink` subscribe on a call
//!   `{subscribe, Producer, Opts}` (replying `ok`), and `sink` answers
//!   `events` (all it received, in order) and `reset`.
//! - RPC module `interop`: `add(A, B)`, `echo(T)`, `sleep(Ms)` (returns
//!   `ok` after Ms milliseconds), `spawn_idle(N)` (N processes that wait
//!   for a message). Unknown functions fail with `undef`, as
//!   in Erlang.

use std::time::Duration;

#[path = "interop_node/stages.rs"]
mod stages;

use ergo::dist::rpc::{RpcError, RpcFailure};
use ergo::dist::{DistOptions, TlsOptions};
use ergo::gen_server::{CallError, Flow, GenServer, Reply, ServerContext};
use ergo::{
    Atom, ChildSpec, Context, Dest, Message, Node, Reason, Strategy, SupervisorSpec, Term,
    gen_server,
};

/// Replies to every call with the request itself.
struct Echo;

impl GenServer for Echo {
    type Args = ();
    type Call = Term;
    type Reply = Term;
    type Cast = Term;

    async fn init(_: (), _ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        Ok(Echo)
    }

    async fn handle_call(&mut self, request: Term, _ctx: &mut ServerContext<Self>) -> Reply<Term> {
        Reply::Reply(request)
    }

    async fn handle_cast(&mut self, request: Term, ctx: &mut ServerContext<Self>) -> Flow {
        if let Term::Tuple(t) = &request
            && let [tag, Term::Pid(to), value] = t.as_slice()
            && tag.is_atom("send_to")
        {
            let _ = ctx.send(*to, value.clone());
        }
        Flow::Continue
    }

    async fn handle_info(&mut self, message: Message, ctx: &mut ServerContext<Self>) -> Flow {
        if let Some(Term::Tuple(t)) = message.to_term()
            && let [Term::Pid(from), value] = t.as_slice()
        {
            let _ = ctx.send(*from, Term::tuple([Term::atom("echo"), value.clone()]));
        }
        Flow::Continue
    }
}

/// A counter: `get`, `{add, N}`, and the cast `reset`.
struct Counter {
    value: i64,
}

#[gen_server]
impl Counter {
    fn init() -> Self {
        Counter { value: 0 }
    }

    /// The current value.
    #[call]
    fn get(&mut self) -> i64 {
        self.value
    }

    /// Adds `n`; replies with the new value.
    #[call]
    fn add(&mut self, n: i64) -> i64 {
        self.value += n;
        self.value
    }

    /// Back to 0.
    #[cast]
    fn reset(&mut self) {
        self.value = 0;
    }

    /// What `sys:get_state/1` and the dashboard show: `{counter, Value}`.
    #[format_status]
    fn status(&self) -> (Atom, i64) {
        (Atom::from("counter"), self.value)
    }
}

/// Spawns workers that report to their owners.
struct Lab;

impl GenServer for Lab {
    type Args = ();
    type Call = Term;
    type Reply = Term;
    type Cast = Term;

    async fn init(_: (), _ctx: &mut ServerContext<Self>) -> Result<Self, Reason> {
        Ok(Lab)
    }

    async fn handle_call(&mut self, request: Term, ctx: &mut ServerContext<Self>) -> Reply<Term> {
        match &request {
            Term::Tuple(t) if t.len() == 2 && t[0].is_atom("spawn") => {
                let Term::Pid(owner) = t[1] else {
                    return Reply::Reply(error(Term::atom("badarg")));
                };
                let worker = ctx.spawn(move |ctx| worker(ctx, owner));
                Reply::Reply(Term::tuple([Term::atom("ok"), Term::Pid(worker)]))
            }
            _ => Reply::Reply(error(Term::tuple([Term::atom("badcall"), request.clone()]))),
        }
    }
}

fn error(reason: Term) -> Term {
    Term::tuple([Term::atom("error"), reason])
}

fn dest(node: &Node, t: &Term) -> Option<Dest> {
    match t {
        Term::Pid(p) => Some(Dest::Pid(*p)),
        Term::Atom(a) => Some(Dest::Name(*a)),
        Term::Tuple(v) => match v.as_slice() {
            [g, name] if g.is_atom("global") => node.global().whereis_name(name).map(Dest::Pid),
            [Term::Atom(n), Term::Atom(node)] => Some(Dest::NameOn(*n, *node)),
            _ => None,
        },
        _ => None,
    }
}

/// A lab worker: obeys commands, reports everything else to `owner`.
async fn worker(mut ctx: Context, owner: ergo::Pid) -> Reason {
    let me = ctx.pid();
    let report = |ctx: &Context, x: Term| {
        let _ = ctx.send(
            owner,
            Term::tuple([Term::atom("forward"), Term::Pid(me), x]),
        );
    };
    // Commands put off until a node goes (`on_nodedown`), and those whose
    // node went, to run next.
    let mut deferred: Vec<(Atom, Term)> = Vec::new();
    let mut due: std::collections::VecDeque<Term> = Default::default();
    loop {
        let term = match due.pop_front() {
            Some(t) => t,
            None => {
                let msg = ctx.receive().await;
                let Some(term) = msg.to_term() else { continue };
                if let Term::Tuple(t) = &term
                    && let [tag, Term::Atom(node)] = t.as_slice()
                    && tag.is_atom("nodedown")
                    && deferred.iter().any(|(n, _)| n == node)
                {
                    let (now, later) = deferred.into_iter().partition(|(n, _)| n == node);
                    deferred = later;
                    due.extend(now.into_iter().map(|(_, c): (Atom, Term)| c));
                    continue;
                }
                term
            }
        };
        let fields: &[Term] = match &term {
            Term::Tuple(t) if t.first().is_some_and(|x| x.as_atom().is_some()) => t,
            _ => &[],
        };
        let command = fields.first().and_then(Term::as_atom).map(Atom::as_str);
        match (command, fields) {
            (Some("link"), [_, Term::Pid(p)]) => {
                if let Err(reason) = ctx.link(*p) {
                    return reason;
                }
            }
            (Some("unlink"), [_, Term::Pid(p)]) => ctx.unlink(*p),
            (Some("trap_exit"), [_, flag]) => {
                ctx.set_trap_exit(flag.is_atom("true"));
            }
            (Some("monitor"), [_, target]) => {
                let Some(d) = dest(ctx.node(), target) else {
                    continue;
                };
                let reference = ctx.monitor(d);
                report(
                    &ctx,
                    Term::tuple([
                        Term::atom("monitoring"),
                        target.clone(),
                        Term::Ref(reference),
                    ]),
                );
            }
            (Some("demonitor"), [_, Term::Ref(r)]) => {
                ctx.demonitor(*r);
            }
            (Some("monitor_node"), [_, Term::Atom(node)]) => ctx.monitor_node(*node),
            (Some("sleep"), [_, Term::Int(ms)]) => {
                tokio::time::sleep(Duration::from_millis((*ms).max(0) as u64)).await;
            }
            (Some("pg_join"), [_, Term::Atom(scope), group]) => {
                let pg = ctx.node().pg_scope(*scope);
                // A scope other than the default starts on first use.
                let _ = pg.start().await;
                let joined = pg.join(group.clone(), ctx.pid()).await.is_ok();
                report(
                    &ctx,
                    Term::tuple([Term::atom("pg_joined"), group.clone(), Term::from(joined)]),
                );
            }
            (Some("pg_leave"), [_, Term::Atom(scope), group]) => {
                let left = ctx
                    .node()
                    .pg_scope(*scope)
                    .leave(group.clone(), ctx.pid())
                    .await;
                report(
                    &ctx,
                    Term::tuple([
                        Term::atom("pg_left"),
                        group.clone(),
                        Term::from(left == Ok(true)),
                    ]),
                );
            }
            (Some("pg_members"), [_, Term::Atom(scope), group]) => {
                let mut members: Vec<Term> = ctx
                    .node()
                    .pg_scope(*scope)
                    .get_members(group)
                    .into_iter()
                    .map(Term::Pid)
                    .collect();
                // In Erlang's term order, as `lists:sort/1` gives it.
                members.sort();
                report(
                    &ctx,
                    Term::tuple([Term::atom("pg_members"), group.clone(), Term::List(members)]),
                );
            }
            (Some("on_nodedown"), [_, Term::Atom(node), command]) => {
                ctx.monitor_node(*node);
                deferred.push((*node, command.clone()));
            }
            (Some("global_register"), [_, name]) => {
                let yes = ctx
                    .node()
                    .global()
                    .register_name(name.clone(), ctx.pid())
                    .await
                    .unwrap_or(false);
                let answer = Term::atom(if yes { "yes" } else { "no" });
                // Also on stderr, for a test that cannot hear the report
                // (the owner cut off by a partition).
                eprintln!("global_register {name}: {answer}");
                report(
                    &ctx,
                    Term::tuple([Term::atom("global_registered"), name.clone(), answer]),
                );
            }
            (Some("global_whereis"), [_, name]) => {
                let pid = ctx.node().global().whereis_name(name);
                report(
                    &ctx,
                    Term::tuple([
                        Term::atom("global_whereis"),
                        name.clone(),
                        pid.map_or(Term::atom("undefined"), Term::Pid),
                    ]),
                );
            }
            (Some("exit"), [_, reason]) => return Reason::from_term(reason.clone()),
            (Some("exit"), [_, Term::Pid(p), reason]) => {
                ctx.exit(*p, Reason::from_term(reason.clone()));
            }
            (Some("send"), [_, to, msg]) => {
                if let Some(d) = dest(ctx.node(), to) {
                    let _ = ctx.send(d, msg.clone());
                }
            }
            (Some("call"), [_, to, request]) => {
                let Some(d) = dest(ctx.node(), to) else {
                    continue;
                };
                let result = match ctx.call(d, request.clone(), Duration::from_secs(5)).await {
                    Ok(v) => v,
                    Err(CallError::Timeout(_)) => error(Term::atom("timeout")),
                    Err(CallError::NoProc) => error(Term::atom("noproc")),
                    Err(CallError::Exited(r)) => error(r.to_term()),
                    Err(CallError::NoReply) => error(Term::atom("noreply")),
                    Err(CallError::NoConnection) => error(Term::atom("noconnection")),
                    Err(CallError::BadReply(why)) => error(Term::binary(why)),
                };
                report(&ctx, Term::tuple([Term::atom("reply"), result]));
            }
            (Some("rpc"), [_, Term::Atom(node), Term::Atom(m), Term::Atom(f), args]) => {
                let args = args.as_list().map(<[Term]>::to_vec).unwrap_or_default();
                let result = match ctx
                    .node()
                    .dist()
                    .rpc_call(*node, *m, *f, args, Duration::from_secs(10))
                    .await
                {
                    Ok(v) => v,
                    Err(e) => Term::tuple([
                        Term::atom("badrpc"),
                        match e {
                            RpcError::NodeDown => Term::atom("nodedown"),
                            RpcError::Timeout => Term::atom("timeout"),
                            RpcError::Exit(r) => Term::tuple([Term::atom("EXIT"), r]),
                            RpcError::Other(r) => r,
                        },
                    ]),
                };
                report(&ctx, Term::tuple([Term::atom("rpc_result"), result]));
            }
            _ => report(&ctx, term),
        }
    }
}

/// The application `interop`: a supervisor of two `Crasher`s,
/// `app_worker_1` and `app_worker_2` (what observer's Applications tab
/// draws).
#[ergo::application(
    name = "interop",
    description = "the interop node's servers",
    version = "1.0.0"
)]
struct InteropApp;

impl ergo::Application for InteropApp {
    fn supervisor() -> SupervisorSpec {
        SupervisorSpec::new(Strategy::OneForOne)
            .child(ChildSpec::named_server::<Crasher>(
                "app_worker_1",
                "app_worker_1",
                (),
            ))
            .child(ChildSpec::named_server::<Crasher>(
                "app_worker_2",
                "app_worker_2",
                (),
            ))
    }
}

/// Answers `ping`, and crashes on `crash`.
struct Crasher;

#[gen_server]
impl Crasher {
    fn init() -> Self {
        Crasher
    }

    /// `pong`.
    #[call]
    fn ping(&mut self) -> Atom {
        Atom::from("pong")
    }

    /// Exits with reason `boom`.
    #[call]
    fn crash(&mut self) -> Reply<Atom> {
        Reply::Stop(Reason::atom("boom"), None)
    }
}

/// Starts what the node serves: the servers, the supervisor, the
/// application and the RPC module.
async fn serve_interop(node: &Node) {
    node.start_server_named::<Echo>("echo", ())
        .await
        .expect("echo starts");
    CounterRef::start_named(node, "counter")
        .await
        .expect("counter starts");
    node.start_server_named::<Lab>("lab", ())
        .await
        .expect("lab starts");
    let sup = node
        .start_supervisor(
            SupervisorSpec::new(Strategy::OneForOne).child(ChildSpec::named_server::<Crasher>(
                "crasher",
                "crasher",
                (),
            )),
        )
        .await
        .expect("sup starts");
    node.register(Atom::from("sup"), sup.pid())
        .expect("the name sup is free");
    node.load_application(InteropApp::spec())
        .expect("interop loads");
    node.start_application("interop", ergo::application::StartType::Temporary)
        .await
        .expect("interop starts");
    stages::serve(node).await;
    rpc_module(node);
}

fn rpc_module(node: &Node) {
    node.dist()
        .register_rpc("interop", "add", |args: Vec<Term>| async move {
            match args.as_slice() {
                [Term::Int(a), Term::Int(b)] => a
                    .checked_add(*b)
                    .map(Term::Int)
                    .ok_or(RpcFailure::Error(Term::atom("badarith"))),
                _ => Err(RpcFailure::Error(Term::atom("badarith"))),
            }
        });
    node.dist()
        .register_rpc("interop", "echo", |args: Vec<Term>| async move {
            match <[Term; 1]>::try_from(args) {
                Ok([t]) => Ok(t),
                Err(_) => Err(RpcFailure::Error(Term::atom("undef"))),
            }
        });
    node.dist()
        .register_rpc("interop", "sleep", |args: Vec<Term>| async move {
            match args.as_slice() {
                [Term::Int(ms)] if *ms >= 0 => {
                    tokio::time::sleep(Duration::from_millis(*ms as u64)).await;
                    Ok(Term::atom("ok"))
                }
                _ => Err(RpcFailure::Error(Term::atom("badarg"))),
            }
        });
    let spawner = node.clone();
    node.dist()
        .register_rpc("interop", "spawn_idle", move |args: Vec<Term>| {
            let node = spawner.clone();
            async move {
                match args.as_slice() {
                    [Term::Int(n)] if *n >= 0 => {
                        for i in 0..*n {
                            node.spawn(|mut ctx| async move {
                                ctx.receive().await;
                            });
                            if i % 4096 == 0 {
                                tokio::task::yield_now().await;
                            }
                        }
                        Ok(Term::atom("ok"))
                    }
                    _ => Err(RpcFailure::Error(Term::atom("badarg"))),
                }
            }
        });
}

/// Serves the web dashboard (the example built with the `dashboard`
/// feature: `cargo run --features dashboard --example interop_node`).
#[cfg(feature = "dashboard")]
async fn serve_dashboard(node: &Node, addr: std::net::SocketAddr) {
    // (The node's log names the address.)
    match node.serve_dashboard(addr).await {
        Ok(_) => {}
        Err(e) => {
            eprintln!("cannot serve the dashboard on {addr}: {e}");
            std::process::exit(1);
        }
    }
}

#[cfg(not(feature = "dashboard"))]
async fn serve_dashboard(_node: &Node, addr: std::net::SocketAddr) {
    eprintln!(
        "cannot serve the dashboard on {addr}: this example was built without the `dashboard` feature \
         (cargo run --features dashboard --example interop_node -- ...)"
    );
    std::process::exit(2);
}

fn usage() -> ! {
    eprintln!(
        "usage: interop_node --name NAME@HOST --cookie COOKIE [--tls-auto | --tls-certfile CERT.pem --tls-keyfile KEY.pem] [--tls-cacertfile CA.pem] [--net-ticktime SECONDS] [--dashboard ADDR:PORT]"
    );
    std::process::exit(2);
}

/// The TLS options the command line asks for, if any.
fn tls_options(
    host: &str,
    auto: bool,
    cert: Option<String>,
    key: Option<String>,
    ca: Option<String>,
) -> Option<TlsOptions> {
    let fail = |e: ergo::dist::TlsError| -> ! {
        eprintln!("{e}");
        std::process::exit(2)
    };
    let tls = match (auto, cert, key) {
        (false, None, None) if ca.is_none() => return None,
        (true, None, None) | (false, None, None) => {
            TlsOptions::auto_for(&[host]).unwrap_or_else(|e| fail(e))
        }
        (false, Some(cert), Some(key)) => {
            TlsOptions::from_pem_files(cert, key).unwrap_or_else(|e| fail(e))
        }
        _ => usage(),
    };
    Some(match ca {
        Some(ca) => tls.verify_peers(ca).unwrap_or_else(|e| fail(e)),
        None => tls,
    })
}

#[tokio::main]
async fn main() {
    // Warnings, errors and the node's own reports on stderr, as Erlang's
    // reports read (RUST_LOG sets another level).
    ergo::logger::init();
    // Started by a `peer` origin (OTP's `peer:start/1` with `exec`, or
    // `ergo::peer::start`): serve it the same things, then never return.
    ergo::peer::serve_if_peer(|node| async move { serve_interop(&node).await }).await;
    let mut name = None;
    let mut cookie = None;
    let (mut tls_auto, mut certfile, mut keyfile, mut cacertfile) = (false, None, None, None);
    let mut ticktime = None;
    let mut dashboard: Option<std::net::SocketAddr> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--name" => name = args.next(),
            "--cookie" => cookie = args.next(),
            "--tls-auto" => tls_auto = true,
            "--tls-certfile" => certfile = args.next(),
            "--tls-keyfile" => keyfile = args.next(),
            "--tls-cacertfile" => cacertfile = args.next(),
            "--dashboard" => {
                dashboard = Some(
                    args.next()
                        .and_then(|a| a.parse::<std::net::SocketAddr>().ok())
                        .unwrap_or_else(|| usage()),
                )
            }
            "--net-ticktime" => {
                ticktime = args
                    .next()
                    .and_then(|t| t.parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .or_else(|| usage())
            }
            _ => usage(),
        }
    }
    let (Some(name), Some(cookie)) = (name, cookie) else {
        usage()
    };
    let mut builder = Node::builder(&name).cookie(cookie);
    let host = name.split_once('@').map_or("", |(_, h)| h);
    if let Some(tls) = tls_options(host, tls_auto, certfile, keyfile, cacertfile) {
        builder = builder.tls(tls);
    }
    let node = builder.start().unwrap_or_else(|e| {
        eprintln!("{e}");
        std::process::exit(2)
    });
    serve_interop(&node).await;
    let mut options = DistOptions::default();
    if let Some(t) = ticktime {
        options.net_ticktime = t;
    }
    if let Err(e) = node.dist().listen(options).await {
        eprintln!("{e}");
        std::process::exit(1);
    }
    // `counter` is also known cluster-wide, as `{counter, ThisNode}`.
    if let Some(counter) = node.whereis("counter") {
        let name = Term::tuple([Term::atom("counter"), Term::Atom(node.name())]);
        let _ = node.global().register_name(name, counter).await;
    }
    if let Some(addr) = dashboard {
        serve_dashboard(&node, addr).await;
    }
    println!("ready");
    std::future::pending::<()>().await;
}
