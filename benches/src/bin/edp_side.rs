//! The `edp_node` crate (0.16) against a real Erlang node, next to ergo
//! against the same node in the same run: the Rust side of
//! `edp_vs_ergo.sh`. The Erlang node runs `erlang/dist_bench.erl`'s server
//! (a registered `echo` gen_server that replies with the request); both
//! Rust nodes live in this OS process, on a multi-thread runtime with two
//! workers, and find the Erlang node through the EPMD on port 4369 (the
//! only one edp_node knows). Figures, `name value unit`:
//!
//! - `ergo_erl_call_int` / `edp_erl_call_int` (ns/op): sequential
//!   `gen_server:call({echo, B}, 42)` round trips. ergo calls from one of
//!   its processes; edp_node has no gen_server client for a remote server,
//!   so a process spawned on it receives the replies, and the
//!   `{'$gen_call', {Pid, Tag}, 42}` request goes out through the node's
//!   connection to `B` as a registered-name send;
//! - `ergo_erl_rpc_node` / `edp_erl_rpc_node` (ns/op): sequential
//!   `rpc:call(B, erlang, node, [])`, through `B`'s `rex` server
//!   (`Distribution::rpc_call` and `Node::rpc_call`);
//! - `ergo_epmd_lookup` / `edp_epmd_lookup` (ns/op): sequential EPMD
//!   look-ups of `B` (`PORT_PLEASE2_REQ`, a new TCP connection each, as
//!   both make them), ergo's `dist::epmd::port_please` and edp_client's
//!   `EpmdClient::lookup_node` (the crate edp_node connects with): the one
//!   part of connecting that edp_node 0.16 gets through against OTP 25.0 to
//!   25.2, whose handshake it cannot complete (see below);
//! - `ergo_erl_connect_us` / `edp_erl_connect_us` (µs): setting up a
//!   connection to `B` until the first reply of `rpc:call(B, erlang, node,
//!   [])`, the median of 21 rounds. ergo disconnects and calls again (the
//!   call connects); edp_node has no disconnect, so every round is a new
//!   edp node (`B_edp_cN`) that connects.
//!
//! Why edp_node 0.16 cannot connect to OTP 25.0 to 25.2: its handshake
//! always opens with the old `send_name` (tag `n`, version 5, then a `c`
//! complement). OTP 25.0 dropped the `n` form on the accepting side (it
//! takes only `N`, and closes the connection without a word otherwise),
//! though its nodes still register with EPMD as speaking versions 5 to 6;
//! OTP 25.3 took the `n` form back, calling 25.0 to 25.2 broken in this
//! regard. So against 25.2 the connection is closed as soon as the name is
//! sent, and edp_node reports an unexpected end of file while it waits for
//! the status. Its flags are not the cause: the same flags in an `N`
//! message get through the whole handshake.
//!
//! Lines starting with `#` are context. Every line about edp_node's own
//! outcome starts with `# edp_node:`; when it cannot connect or a figure
//! fails, that line carries the error and the figure is left out.
//!
//! ```text
//! cargo run --release -p ergo-benches --bin edp_side -- [SECONDS] --erl NODE --cookie COOKIE
//! ```

use std::hint::black_box;
use std::time::{Duration, Instant};

use edp_node::{Atom as EdpAtom, Message, OwnedTerm};
use ergo::dist::DistOptions;
use ergo::{Atom, Node, Term};
use ergo_benches::out;
use ergo_benches::process::ns_per;
use ergo_benches::timed_async;
use tokio::sync::{mpsc, oneshot};

/// Warm-up before every timed figure.
const WARM: Duration = Duration::from_millis(200);
/// The timeout of every call (none should come near it).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Rounds of the connection figures.
const CONNECTS: usize = 21;
/// The EPMD port edp_node always looks nodes up on.
const EPMD_PORT: u16 = 4369;

/// The name of a Rust node next to `remote`: its name with `_suffix` after
/// the part before the `@` (`b@127.0.0.1` and `ergo` give
/// `b_ergo@127.0.0.1`), so that the names of one run never meet another's
/// in the shared EPMD.
fn name_for(remote: &str, suffix: &str) -> String {
    let (alive, host) = remote.split_once('@').unwrap_or((remote, "127.0.0.1"));
    format!("{alive}_{suffix}@{host}")
}

// ------------------------------------------------------------------ ergo

/// Runs `body` as an ergo process on `node` and waits for its result.
async fn in_process<F, Fut, T>(node: &Node, body: F) -> T
where
    F: FnOnce(ergo::Context) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    let (tx, rx) = oneshot::channel();
    node.spawn(move |ctx| async move {
        let _ = tx.send(body(ctx).await);
    });
    rx.await.expect("the process reports")
}

/// Sequential calls of `{echo, b}` with 42 from a process on `a`.
async fn ergo_calls(a: &Node, b: Atom, secs: f64) -> (u64, Duration) {
    in_process(a, move |mut ctx| async move {
        let dest = (Atom::from("echo"), b);
        let first = ctx.call(dest, Term::Int(42), CALL_TIMEOUT).await;
        assert_eq!(first, Ok(Term::Int(42)), "the Erlang echo answers ergo");
        timed_async!(WARM, secs, 64, {
            black_box(
                ctx.call(dest, Term::Int(42), CALL_TIMEOUT)
                    .await
                    .expect("call"),
            );
        })
    })
    .await
}

/// `rpc:call(b, erlang, node, [])` from `a`.
async fn ergo_rpc_node(a: &Node, b: Atom) -> Term {
    a.dist()
        .rpc_call(b, "erlang", "node", Vec::new(), CALL_TIMEOUT)
        .await
        .expect("rpc:call answers")
}

/// Sequential `rpc:call(b, erlang, node, [])` from `a`.
async fn ergo_rpcs(a: &Node, b: Atom, secs: f64) -> (u64, Duration) {
    assert_eq!(ergo_rpc_node(a, b).await, Term::Atom(b), "rex answers ergo");
    timed_async!(WARM, secs, 16, {
        black_box(ergo_rpc_node(a, b).await);
    })
}

/// Sequential EPMD look-ups of `alive` through ergo.
async fn ergo_lookups(alive: &str, secs: f64) -> (u64, Duration) {
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], EPMD_PORT));
    let first = ergo::dist::epmd::port_please(addr, alive).await;
    assert!(
        matches!(first, Ok(Some(_))),
        "EPMD knows {alive}: {first:?}"
    );
    timed_async!(WARM, secs, 16, {
        black_box(
            ergo::dist::epmd::port_please(addr, alive)
                .await
                .expect("lookup"),
        );
    })
}

/// The median time, over [`CONNECTS`] rounds, from disconnecting `a` from
/// `b` to the reply of an rpc call that connects anew.
async fn ergo_connects(a: &Node, b: Atom) -> f64 {
    let mut times = Vec::with_capacity(CONNECTS);
    for _ in 0..CONNECTS {
        assert!(a.dist().disconnect(b), "connected");
        let t0 = Instant::now();
        assert_eq!(ergo_rpc_node(a, b).await, Term::Atom(b), "rex answers");
        times.push(t0.elapsed().as_secs_f64() * 1e6);
    }
    median(times)
}

// -------------------------------------------------------------- edp_node

/// An edp_node process that hands every regular message it receives to a
/// channel, where the timing loop waits for its replies.
struct Forward(mpsc::UnboundedSender<OwnedTerm>);

impl edp_node::Process for Forward {
    async fn handle_message(&mut self, msg: Message) -> edp_node::Result<()> {
        if let Message::Regular { body, .. } = msg {
            let _ = self.0.send(body);
        }
        Ok(())
    }
}

/// What edp_node can be asked of `remote`: the node, its own process that
/// receives replies, and that process's mailbox.
struct Edp {
    node: edp_node::Node,
    remote: String,
    me: edp_node::ExternalPid,
    replies: mpsc::UnboundedReceiver<OwnedTerm>,
    tag: i64,
}

impl Edp {
    /// A started edp node (`B_edp@HOST` for `remote` `B@HOST`) connected to
    /// `remote`, with a
    /// forwarding process spawned on it.
    async fn connect(remote: &str, cookie: &str) -> Result<Edp, String> {
        let name = name_for(remote, "edp");
        let mut node = edp_node::Node::new(name.as_str(), cookie);
        node.start(0)
            .await
            .map_err(|e| format!("start (EPMD registration of {name}): {e}"))?;
        node.connect(remote)
            .await
            .map_err(|e| format!("connect {name} -> {remote}: {e}"))?;
        let (tx, replies) = mpsc::unbounded_channel();
        let me = node
            .spawn(Forward(tx))
            .await
            .map_err(|e| format!("spawn: {e}"))?;
        Ok(Edp {
            node,
            remote: remote.to_string(),
            me,
            replies,
            tag: 0,
        })
    }

    /// The distribution flags edp_node and the Erlang node agreed on.
    async fn negotiated_flags(&self) -> Option<u64> {
        let conn = self.node.connections().get(&self.remote)?.value().clone();
        let flags = conn.lock().await.negotiated_flags()?;
        Some(flags.as_u64())
    }

    /// One `gen_server:call({echo, Remote}, 42)`: the request through the
    /// connection as a registered-name send, the reply through the
    /// forwarding process.
    async fn call_echo(&mut self) -> Result<OwnedTerm, String> {
        self.tag += 1;
        let tag = OwnedTerm::Integer(self.tag);
        let request = OwnedTerm::Tuple(vec![
            OwnedTerm::atom("$gen_call"),
            OwnedTerm::Tuple(vec![OwnedTerm::Pid(self.me.clone()), tag.clone()]),
            OwnedTerm::Integer(42),
        ]);
        let conn = self
            .node
            .connections()
            .get(&self.remote)
            .map(|c| c.value().clone())
            .ok_or_else(|| format!("no connection to {}", self.remote))?;
        conn.lock()
            .await
            .send_to_name(self.me.clone(), EdpAtom::new("echo"), request)
            .await
            .map_err(|e| format!("send: {e}"))?;
        let reply = tokio::time::timeout(CALL_TIMEOUT, self.replies.recv())
            .await
            .map_err(|_| format!("no reply within {CALL_TIMEOUT:?}"))?
            .ok_or("the forwarding process is gone")?;
        match reply {
            OwnedTerm::Tuple(mut t) if t.len() == 2 && t[0] == tag => Ok(t.remove(1)),
            other => Err(format!("unexpected reply {other:?}")),
        }
    }

    /// One `rpc:call(Remote, erlang, node, [])`.
    async fn rpc_node(&self) -> Result<OwnedTerm, String> {
        rpc_node(&self.node, &self.remote).await
    }
}

/// `rpc:call(remote, erlang, node, [])` through edp_node.
async fn rpc_node(node: &edp_node::Node, remote: &str) -> Result<OwnedTerm, String> {
    node.rpc_call_with_timeout(remote, "erlang", "node", Vec::new(), CALL_TIMEOUT)
        .await
        .map_err(|e| format!("rpc_call: {e}"))
}

/// Sequential EPMD look-ups of `alive` through edp_client, which edp_node
/// connects with.
async fn edp_lookups(alive: &str, secs: f64) -> Result<(u64, Duration), String> {
    let epmd = edp_client::epmd_client::EpmdClient::with_port("127.0.0.1", EPMD_PORT);
    let info = epmd
        .lookup_node(alive)
        .await
        .map_err(|e| format!("lookup_node: {e}"))?;
    println!(
        "# edp_node: EPMD says {alive} listens on port {} and speaks distribution versions {} to {}",
        info.port, info.lowest_version, info.highest_version
    );
    Ok(timed_async!(WARM, secs, 16, {
        black_box(
            epmd.lookup_node(alive)
                .await
                .map_err(|e| format!("lookup_node: {e}"))?,
        );
    }))
}

/// Sequential echo calls through edp_node.
async fn edp_calls(edp: &mut Edp, secs: f64) -> Result<(u64, Duration), String> {
    let first = edp.call_echo().await?;
    if first != OwnedTerm::Integer(42) {
        return Err(format!("the echo answered {first:?}, not 42"));
    }
    Ok(timed_async!(WARM, secs, 64, {
        black_box(edp.call_echo().await?);
    }))
}

/// Sequential rpc calls through edp_node.
async fn edp_rpcs(edp: &Edp, secs: f64) -> Result<(u64, Duration), String> {
    let want = OwnedTerm::atom(&edp.remote);
    let first = edp.rpc_node().await?;
    if first != want {
        return Err(format!("rex answered {first:?}, not {want:?}"));
    }
    Ok(timed_async!(WARM, secs, 16, {
        black_box(edp.rpc_node().await?);
    }))
}

/// The median time, over [`CONNECTS`] rounds, for a new edp node to
/// connect to `remote` and get the reply of one rpc call. The nodes are not
/// started (no EPMD registration, which a node that only connects out does
/// not need).
async fn edp_connects(remote: &str, cookie: &str) -> Result<f64, String> {
    let mut times = Vec::with_capacity(CONNECTS);
    let want = OwnedTerm::atom(remote);
    for i in 0..CONNECTS {
        let name = name_for(remote, &format!("edp_c{i}"));
        let node = edp_node::Node::new(name.as_str(), cookie);
        let t0 = Instant::now();
        node.connect(remote)
            .await
            .map_err(|e| format!("connect {name} -> {remote}: {e}"))?;
        let got = rpc_node(&node, remote).await?;
        times.push(t0.elapsed().as_secs_f64() * 1e6);
        if got != want {
            return Err(format!("rex answered {got:?}, not {want:?}"));
        }
    }
    Ok(median(times))
}

// ------------------------------------------------------------------- main

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Prints a figure of edp_node, or the `# edp_node:` line saying why there
/// is none.
fn edp_out(name: &str, r: Result<f64, String>, unit: &str) {
    match r {
        Ok(v) => out(name, v, unit),
        Err(e) => println!("# edp_node: {name} failed: {e}"),
    }
}

async fn run(secs: f64, remote: String, cookie: String) {
    let b = Atom::from(remote.as_str());
    let a = Node::builder(name_for(&remote, "ergo"))
        .cookie(cookie.as_str())
        .start()
        .expect("node");
    a.dist()
        .listen(DistOptions {
            listen: "127.0.0.1:0".parse().expect("address"),
            epmd_port: Some(EPMD_PORT),
            ..DistOptions::default()
        })
        .await
        .expect("listen");
    // The Erlang node may still be starting: wait until its echo answers.
    let deadline = Instant::now() + Duration::from_secs(30);
    while a
        .call((Atom::from("echo"), b), Term::Int(42), CALL_TIMEOUT)
        .await
        != Ok(Term::Int(42))
    {
        assert!(Instant::now() < deadline, "{remote}'s echo never answered");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    println!(
        "# ergo node {} connected to {remote}; edp_node 0.16; EPMD port {EPMD_PORT}",
        a.name()
    );

    let alive = remote.split_once('@').map_or(remote.as_str(), |(a, _)| a);
    let (n, d) = ergo_lookups(alive, secs).await;
    out("ergo_epmd_lookup", ns_per(n, d), "ns/op");
    let r = edp_lookups(alive, secs).await.map(|(n, d)| ns_per(n, d));
    edp_out("edp_epmd_lookup", r, "ns/op");

    // Connect edp_node first: what it manages decides which of its figures
    // follow.
    let mut edp = match Edp::connect(&remote, &cookie).await {
        Ok(edp) => {
            match edp.negotiated_flags().await {
                Some(f) => println!(
                    "# edp_node: connected {} -> {remote}, negotiated flags {f:#x}",
                    edp.node.name()
                ),
                None => println!("# edp_node: connected {} -> {remote}", edp.node.name()),
            }
            Some(edp)
        }
        Err(e) => {
            println!("# edp_node: could not connect: {e}");
            None
        }
    };

    let (n, d) = ergo_calls(&a, b, secs).await;
    out("ergo_erl_call_int", ns_per(n, d), "ns/op");
    if let Some(edp) = edp.as_mut() {
        let r = edp_calls(edp, secs).await.map(|(n, d)| ns_per(n, d));
        edp_out("edp_erl_call_int", r, "ns/op");
    }

    let (n, d) = ergo_rpcs(&a, b, secs).await;
    out("ergo_erl_rpc_node", ns_per(n, d), "ns/op");
    if let Some(edp) = edp.as_ref() {
        let r = edp_rpcs(edp, secs).await.map(|(n, d)| ns_per(n, d));
        edp_out("edp_erl_rpc_node", r, "ns/op");
    }

    out("ergo_erl_connect_us", ergo_connects(&a, b).await, "us");
    edp_out(
        "edp_erl_connect_us",
        edp_connects(&remote, &cookie).await,
        "us",
    );

    a.stop(Duration::from_secs(1)).await;
}

fn main() {
    let mut secs = 2.0f64;
    let mut remote = None;
    let mut cookie = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--erl" => remote = Some(args.next().expect("--erl needs a node name")),
            "--cookie" => cookie = Some(args.next().expect("--cookie needs a cookie")),
            s => secs = s.parse().expect("SECONDS is a number"),
        }
    }
    let remote = remote.expect("--erl NODE is required");
    let cookie = cookie.expect("--cookie COOKIE is required");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move { tokio::spawn(run(secs, remote, cookie)).await })
        .expect("the benchmark runs");
}
