//! The distribution layer, Rust side of `dist_vs_erlang.sh`: two ergo nodes
//! in this OS process, connected over real TCP on 127.0.0.1, and the plain
//! TCP floor, with the names the script compares against
//! `erlang/dist_bench.erl`:
//!
//! - `ergo_call_P` / `tcp_rr_P` (ns/op): sequential `gen_server:call`-style
//!   round trips from a process on `ra` to the `echo` server on `rb`, and
//!   round trips of a 4-byte length plus the payload's ETF bytes echoed by a
//!   tokio task over a loopback socket, for the payloads P of
//!   [`ergo_benches::dist::payloads`] (`int`, `str`, `pid`, `bin1mb`),
//!   measured in four alternating rounds each;
//! - `ergo_bin1mb_mbps` / `tcp_bin1mb_mbps` (MB/s): the 1 MB figures above
//!   as payload bytes sent per second (one payload per round trip);
//! - `ergo_par120_rate` (calls/s): 120 client processes on `ra`, each
//!   calling its own server `echo_I` on `rb` with the integer 42;
//! - `ergo_typed_call_int` / `ergo_node_call_int` (ns/op): sequential calls
//!   from a plain tokio task on `ra` to the `#[gen_server]` `int_echo` on
//!   `rb`, through its typed client (`IntEchoRef::at(..).echo(42)`) and
//!   through the untyped `Node::call` with the term `{echo, 42}`;
//! - `nodedown_100k_us` (µs): the work of losing a connection on a node with
//!   100,000 processes, 10 of which are linked to a process on the lost
//!   node (`Distribution::disconnect`, which fires the 10 links), the median
//!   of 5 rounds;
//! - `ergo_handshake_us` (µs): connecting anew (after
//!   `Distribution::disconnect`) until the first call's reply, the median
//!   of 21 rounds.
//!
//! With `--tls` both nodes run TLS distribution in auto mode (a
//! self-signed certificate each, as `tls_vs_erlang.sh` compares with
//! Erlang's `inet_tls`); `--make-cert DIR` only writes a self-signed
//! `cert.pem` and `key.pem` for 127.0.0.1 into DIR (for the script's `erl`
//! nodes).
//!
//! ```text
//! cargo run --release -p ergo-benches --bin dist_side -- [SECONDS] [--epmd-port N] [--only FIGURE] [--tls]
//! ```
//!
//! `--only FIGURE[,FIGURE...]` (`ergo_call_int`, `tcp_rr_bin1mb`,
//! `ergo_par120_rate`, ...) runs those figures alone, for profiling.
//! Without `--epmd-port` a free port is picked and the first node hosts an
//! embedded EPMD on it. `--free-port` only prints a free TCP port (for the
//! script). Runs on a multi-thread runtime with two workers; prints
//! `name value unit` lines, and lines starting with `#` are context.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ergo::dist::{DistOptions, TlsOptions};
use ergo::{Atom, Node, Term};
use ergo_benches::dist::{BIG, IntEcho, IntEchoRef, TermEcho, payloads};
use ergo_benches::out;
use ergo_benches::process::ns_per;
use ergo_benches::timed_async;
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

/// Warm-up before every timed figure.
const WARM: Duration = Duration::from_millis(200);

/// Rounds a sequential call and its TCP floor take turns in.
const ROUNDS: usize = 4;
/// Client/server pairs of the parallel figure.
const PAIRS: usize = 120;
/// The timeout of every call (none should come near it).
const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// The cookie of both nodes.
const COOKIE: &str = "ergo_dist_bench";

/// Both nodes run TLS distribution (`--tls`).
static TLS: AtomicBool = AtomicBool::new(false);

fn note(s: &str) {
    println!("# {s}");
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

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

/// A node `NAME@127.0.0.1`, distributed and published with the EPMD on
/// `epmd_port`.
async fn dist_node(name: &str, epmd_port: u16) -> Node {
    let mut builder = Node::builder(format!("{name}@127.0.0.1")).cookie(COOKIE);
    if TLS.load(Relaxed) {
        builder = builder.tls(TlsOptions::auto().expect("a self-signed certificate"));
    }
    let node = builder.start().expect("node");
    node.dist()
        .listen(DistOptions {
            listen: "127.0.0.1:0".parse().expect("address"),
            epmd_port: Some(epmd_port),
            ..DistOptions::default()
        })
        .await
        .expect("listen");
    node
}

/// Operations per batch between clock reads: one for the 1 MB payload (a
/// round trip takes long enough), 64 for the others.
fn batch_for(shape: &str) -> u64 {
    if shape == "bin1mb" { 1 } else { 64 }
}

// ------------------------------------------------------------- ergo calls

/// Sequential calls of `shape` from a process on `a` to `{echo, to}`. The
/// request is lent to each call, as the Erlang side passes the same term to
/// each `gen_server:call`: it is written to the connection from where it
/// is, not copied first.
async fn ergo_calls(a: &Node, to: Atom, shape: &'static str, secs: f64) -> (u64, Duration) {
    in_process(a, move |mut ctx| async move {
        let payload = payloads(ctx.pid())
            .into_iter()
            .find(|(n, _)| *n == shape)
            .expect("a known payload")
            .1;
        let dest = (Atom::from("echo"), to);
        let first = ctx.call(dest, &payload, CALL_TIMEOUT).await.expect("call");
        assert_eq!(first, payload, "the echo replies with the request");
        timed_async!(WARM, secs, batch_for(shape), {
            black_box(ctx.call(dest, &payload, CALL_TIMEOUT).await.expect("call"));
        })
    })
    .await
}

// -------------------------------------------------------------- TCP floor

/// Round trips of `body` (with a 4-byte length in front) to a tokio task
/// that echoes every frame back, over a loopback connection with nodelay.
async fn tcp_rr(body: Vec<u8>, shape: &str, secs: f64) -> (u64, Duration) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(async move {
        let (s, _) = listener.accept().await.expect("accept");
        s.set_nodelay(true).expect("nodelay");
        let (rd, mut wr) = s.into_split();
        let mut rd = BufReader::with_capacity(64 * 1024, rd);
        let mut frame = vec![0u8; 4];
        while let Ok(len) = rd.read_u32().await {
            let end = 4 + len as usize;
            if frame.len() < end {
                frame.resize(end, 0);
            }
            frame[..4].copy_from_slice(&len.to_be_bytes());
            if rd.read_exact(&mut frame[4..end]).await.is_err()
                || wr.write_all(&frame[..end]).await.is_err()
            {
                break;
            }
        }
    });
    let s = TcpStream::connect(addr).await.expect("connect");
    s.set_nodelay(true).expect("nodelay");
    let (rd, mut wr) = s.into_split();
    let mut rd = BufReader::with_capacity(64 * 1024, rd);
    let mut frame = Vec::with_capacity(4 + body.len());
    frame.extend_from_slice(&(body.len() as u32).to_be_bytes());
    frame.extend_from_slice(&body);
    let mut back = vec![0u8; body.len()];
    let r = timed_async!(WARM, secs, batch_for(shape), {
        wr.write_all(&frame).await.expect("write");
        let len = rd.read_u32().await.expect("read") as usize;
        assert_eq!(len, back.len());
        rd.read_exact(&mut back).await.expect("read");
    });
    assert_eq!(back, body, "the echo sends the frame back");
    drop((rd, wr));
    server.await.expect("server");
    r
}

// --------------------------------------------------------------- parallel

/// 120 processes on `a`, each calling `{echo_I, to}` with 42 in a loop;
/// after a warm-up, counts the calls done in `secs`. Returns calls/s.
async fn par_ergo(a: &Node, to: Atom, secs: f64) -> f64 {
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicU64::new(0));
    let mut done = Vec::with_capacity(PAIRS);
    for i in 0..PAIRS {
        let dest = (Atom::from(format!("echo_{i}")), to);
        let (stop, total) = (stop.clone(), total.clone());
        let (tx, rx) = oneshot::channel::<()>();
        done.push(rx);
        a.spawn(move |mut ctx| async move {
            while !stop.load(Relaxed) {
                let r = ctx
                    .call(dest, Term::Int(42), CALL_TIMEOUT)
                    .await
                    .expect("call");
                black_box(r);
                total.fetch_add(1, Relaxed);
            }
            let _ = tx.send(());
        });
    }
    tokio::time::sleep(WARM).await;
    let c0 = total.load(Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let c1 = total.load(Relaxed);
    let d = t0.elapsed();
    stop.store(true, Relaxed);
    for d in done {
        d.await.expect("client");
    }
    (c1 - c0) as f64 / d.as_secs_f64()
}

// ------------------------------------------------------- typed clients

/// Sequential typed calls from a tokio task on `a` to `int_echo` on `to`.
async fn typed_calls(a: &Node, to: Atom, secs: f64) -> (u64, Duration) {
    let client = IntEchoRef::at(a, (Atom::from("int_echo"), to));
    assert_eq!(client.echo(42).await, Ok(42), "the typed echo answers");
    timed_async!(WARM, secs, 64, {
        black_box(client.echo(42).await.expect("call"));
    })
}

/// The same calls through the untyped `Node::call`.
async fn node_calls(a: &Node, to: Atom, secs: f64) -> (u64, Duration) {
    let dest = (Atom::from("int_echo"), to);
    let request = Term::tuple([Term::atom("echo"), Term::Int(42)]);
    let first = a.call(dest, request.clone(), CALL_TIMEOUT).await;
    assert_eq!(first, Ok(Term::Int(42)), "the untyped call answers");
    timed_async!(WARM, secs, 64, {
        black_box(
            a.call(dest, request.clone(), CALL_TIMEOUT)
                .await
                .expect("call"),
        );
    })
}

// ------------------------------------------------------------ nodedown

/// The median time `Distribution::disconnect` takes on a node of 100,000
/// processes, 10 of them linked to a process of the lost node.
async fn nodedown(epmd_port: u16) -> f64 {
    let c = dist_node("rc", epmd_port).await;
    let d = dist_node("rd", epmd_port).await;
    let far = d.spawn(|mut ctx| async move {
        ctx.set_trap_exit(true);
        loop {
            ctx.receive().await;
        }
        #[allow(unreachable_code)]
        ()
    });
    for i in 0..100_000u32 {
        c.spawn(|mut ctx| async move {
            ctx.receive().await;
        });
        if i % 1000 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let mut times = Vec::new();
    for _ in 0..5 {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        for _ in 0..10 {
            let tx = tx.clone();
            c.spawn(move |mut ctx| async move {
                ctx.set_trap_exit(true);
                let _ = ctx.link(far);
                let _ = tx.send(());
                ctx.receive().await;
            });
        }
        for _ in 0..10 {
            rx.recv().await.expect("a watcher linked");
        }
        // The links have reached the far process.
        while d.process_info(far).is_none_or(|i| i.links.len() < 10) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let t0 = Instant::now();
        assert!(c.dist().disconnect(d.name()), "connected");
        times.push(t0.elapsed().as_secs_f64() * 1e6);
        while d.process_info(far).is_some_and(|i| !i.links.is_empty()) {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }
    times.sort_by(f64::total_cmp);
    c.stop(Duration::from_secs(1)).await;
    d.stop(Duration::from_secs(1)).await;
    times[times.len() / 2]
}

// ------------------------------------------------------------ handshake

/// The median time, over 21 rounds, from disconnecting `a` from `to` to the
/// reply of a call that connects anew.
async fn handshakes(a: &Node, to: Atom) -> f64 {
    let mut times = Vec::new();
    for _ in 0..21 {
        assert!(a.dist().disconnect(to), "connected");
        let t = in_process(a, move |mut ctx| async move {
            let t0 = Instant::now();
            let r = ctx
                .call((Atom::from("echo"), to), Term::Int(42), CALL_TIMEOUT)
                .await;
            assert_eq!(r, Ok(Term::Int(42)), "the call connects and answers");
            t0.elapsed()
        })
        .await;
        times.push(t.as_secs_f64() * 1e6);
    }
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// Writes a self-signed certificate for 127.0.0.1 and its key to `dir`.
fn make_cert(dir: &str) {
    let key = rcgen::KeyPair::generate().expect("key");
    let mut params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_string()]).expect("params");
    // Erlang checks the host as a DNS name.
    params.subject_alt_names.push(rcgen::SanType::DnsName(
        "127.0.0.1".try_into().expect("name"),
    ));
    let cert = params.self_signed(&key).expect("certificate");
    let dir = std::path::Path::new(dir);
    std::fs::write(dir.join("cert.pem"), cert.pem()).expect("cert.pem");
    std::fs::write(dir.join("key.pem"), key.serialize_pem()).expect("key.pem");
}

// ------------------------------------------------------------------- main

fn mb_per_s(ns_per_op: f64) -> f64 {
    BIG as f64 / (ns_per_op * 1e-9) / 1e6
}

async fn run(secs: f64, epmd_port: u16, only: Option<String>) {
    let a = dist_node("ra", epmd_port).await;
    let b = dist_node("rb", epmd_port).await;
    b.start_server_named::<TermEcho>("echo", ())
        .await
        .expect("echo");
    for i in 0..PAIRS {
        b.start_server_named::<TermEcho>(format!("echo_{i}"), ())
            .await
            .expect("echo_I");
    }
    assert!(a.dist().connect(b.name()).await, "ra connects to rb");
    let connected: Vec<String> = a
        .dist()
        .nodes()
        .iter()
        .map(|n| n.as_str().to_string())
        .collect();
    note(&format!(
        "ergo nodes {} and {} in one OS process ({} distribution), multi-thread runtime with 2 workers, EPMD port {epmd_port}; {} connected to {}",
        a.name(),
        b.name(),
        if TLS.load(Relaxed) { "TLS" } else { "plain" },
        a.name(),
        connected.join(",")
    ));
    let want = |figure: &str| {
        only.as_deref()
            .is_none_or(|o| o.split(',').any(|f| f == figure))
    };
    let mut ns = std::collections::HashMap::new();
    for (shape, term) in payloads(a.system_pid()) {
        let bytes = ergo::etf::encode(&term);
        note(&format!("payload {shape}: {} ETF bytes", bytes.len()));
        let ergo_name = format!("ergo_call_{shape}");
        let tcp_name = format!("tcp_rr_{shape}");
        // The call and its floor in turns, each its share of `secs` a
        // round, so that the machine's drift (its speed moves by 10–20%
        // within a run) falls on both alike; each figure is all its rounds'
        // operations over all their time.
        let mut done = [(0u64, Duration::ZERO); 2];
        for _ in 0..ROUNDS {
            if want(&ergo_name) {
                let (n, d) = ergo_calls(&a, b.name(), shape, secs / ROUNDS as f64).await;
                done[0] = (done[0].0 + n, done[0].1 + d);
            }
            if want(&tcp_name) {
                let (n, d) = tcp_rr(bytes.clone(), shape, secs / ROUNDS as f64).await;
                done[1] = (done[1].0 + n, done[1].1 + d);
            }
        }
        for (name, (n, d)) in [ergo_name, tcp_name].into_iter().zip(done) {
            if n > 0 {
                out(&name, ns_per(n, d), "ns/op");
                ns.insert(name, ns_per(n, d));
            }
        }
    }
    for side in ["ergo_call", "tcp_rr"] {
        if let Some(&e) = ns.get(&format!("{side}_bin1mb")) {
            let name = side.split('_').next().unwrap_or(side);
            out(&format!("{name}_bin1mb_mbps"), mb_per_s(e), "MB/s");
        }
    }
    b.start_server_named::<IntEcho>("int_echo", ())
        .await
        .expect("int_echo");
    if want("ergo_typed_call_int") {
        let (n, d) = typed_calls(&a, b.name(), secs).await;
        out("ergo_typed_call_int", ns_per(n, d), "ns/op");
    }
    if want("ergo_node_call_int") {
        let (n, d) = node_calls(&a, b.name(), secs).await;
        out("ergo_node_call_int", ns_per(n, d), "ns/op");
    }
    if want("nodedown_100k_us") {
        out("nodedown_100k_us", nodedown(epmd_port).await, "us");
    }
    if want("ergo_handshake_us") {
        out("ergo_handshake_us", handshakes(&a, b.name()).await, "us");
    }
    if want("ergo_par120_rate") {
        out(
            "ergo_par120_rate",
            par_ergo(&a, b.name(), secs).await,
            "calls/s",
        );
    }
    a.stop(Duration::from_secs(1)).await;
    b.stop(Duration::from_secs(1)).await;
}

fn main() {
    let mut secs = 2.0f64;
    let mut epmd_port = None;
    let mut only = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--free-port" => {
                println!("{}", free_port());
                return;
            }
            "--epmd-port" => {
                epmd_port = args.next().and_then(|p| p.parse().ok());
                assert!(epmd_port.is_some(), "--epmd-port needs a port number");
            }
            "--only" => only = Some(args.next().expect("--only needs a figure name")),
            "--tls" => TLS.store(true, Relaxed),
            "--make-cert" => {
                make_cert(&args.next().expect("--make-cert needs a directory"));
                return;
            }
            s => secs = s.parse().expect("SECONDS is a number"),
        }
    }
    let epmd_port = epmd_port.unwrap_or_else(free_port);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move { tokio::spawn(run(secs, epmd_port, only)).await })
        .expect("the benchmark runs");
}
