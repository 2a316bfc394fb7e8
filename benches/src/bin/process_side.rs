//! The process runtime side by side with its floor (raw tokio mpsc +
//! oneshot) and with ractor, measured as `../shared/anchors/rust-peers`
//! measures them, with the names `process_vs_erlang.sh` compares against
//! `erlang/process_bench.erl`: sequential call round trips, 120 parallel
//! client/server pairs, one-way cast and send rates, and spawning idle
//! processes (rate, and resident memory per process).
//!
//! ```text
//! cargo run --release -p ergo-benches --bin process_side -- [SECONDS] [SECTION...]
//! ```
//!
//! Prints `name value unit` lines; lines starting with `#` are context.
//! Every section runs in a child process of its own (`--section NAME
//! SECONDS`), so that memory figures do not carry over between sections.
//! Figures without a suffix are on a multi-thread runtime with two workers;
//! `_ct` ones on a current-thread runtime. The section `calls` measures
//! the sequential local call (from a process and from a task) and its
//! tokio floor in four alternating rounds, so that the machine's drift
//! within a run falls on the call and its floor alike.
//!
//! For profiling, `--section only_ergo_call SECONDS` (and
//! `only_ergo_call_from_task`, `only_tokio_rr`, `only_ergo_cast`, `only_ergo_send`, `only_tokio_send`,
//! `only_par120_ergo`, `only_par120_ractor`) runs one figure alone;
//! `only_task_to_bare_process` (a tokio task asking a process that answers
//! from a plain receive loop), `only_process_to_task` (a process asking a
//! tokio task) and `only_process_to_bare_process` split a call's cost
//! between the process machinery and the `gen_server` protocol;
//! `--prefault` only touches and frees 2 GiB (the Erlang side runs it).

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ergo::{Node, Pid, ServerRef, Status};
use ergo_benches::out;
use ergo_benches::process::{
    Echo, Note, Req, Stream, ns_per, per_sec, prefault, rss_bytes, wait_until,
};
use ergo_benches::timed_async;
use tokio::sync::oneshot;

/// Warm-up before every timed figure.
const WARM: Duration = Duration::from_millis(200);
/// Client/server pairs of the parallel figures.
const PAIRS: usize = 120;
/// One synchronising call after this many casts: it bounds the mailbox and,
/// at the end, proves that every cast was handled.
const SYNC_EVERY: u64 = 100_000;
/// The one-way loops yield after this many messages. Erlang preempts a
/// sender after a budget of reductions, and its receiver runs beside it on
/// another scheduler; on tokio a task that never awaits keeps its worker,
/// and the task it woke last waits in that worker's unstealable next-task
/// slot until it does. Without the yield the receiver would mostly run
/// after the sender, not beside it.
const YIELD_EVERY: u64 = 1000;
/// Idle ergo processes of the spawn figures.
const ERGO_SPAWN_N: usize = 1_000_000;
/// Idle ractor actors of the spawn figures (`RACTOR_SPAWN_N` overrides).
/// Not 1M: at about 8 KB of resident memory and 150k spawns/s each, 1M
/// ractor actors would take about 8 GB and 7 s on this shared machine.
const RACTOR_SPAWN_N: usize = 100_000;
/// How long a spawn figure may wait for its processes.
const SPAWN_LIMIT: Duration = Duration::from_secs(120);

/// Processes or actors that have started (spawn figures).
static READY: AtomicUsize = AtomicUsize::new(0);
/// Actors that have stopped (ractor spawn figures).
static DONE: AtomicUsize = AtomicUsize::new(0);

fn note(s: &str) {
    println!("# {s}");
}

fn rt_mt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn rt_ct() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Runs `fut` as a task on `rt`, so that on the multi-thread runtime the
/// client runs on a worker, not on the `block_on` thread.
fn run_task<F, T>(rt: &tokio::runtime::Runtime, fut: F) -> T
where
    F: std::future::Future<Output = T> + Send + 'static,
    T: Send + 'static,
{
    rt.block_on(async move { tokio::spawn(fut).await.expect("task") })
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

fn new_node(name: &str) -> Node {
    Node::builder(format!("{name}@localhost"))
        .start()
        .expect("node")
}

// ------------------------------------------------------------------ tokio

/// A request of the tokio floor: the integer and where to reply.
type TokioReq = (u64, oneshot::Sender<u64>);

fn tokio_server() -> tokio::sync::mpsc::UnboundedSender<TokioReq> {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<TokioReq>();
    tokio::spawn(async move {
        while let Some((x, r)) = rx.recv().await {
            let _ = r.send(x + 1);
        }
    });
    tx
}

/// A process answering [`TokioReq`]s from a plain receive loop: the tokio
/// server's work, with a process's mailbox in place of the channel.
fn bare_server(node: &Node) -> ergo::Pid {
    node.spawn(|mut ctx| async move {
        while let Ok((x, r)) = ctx.receive().await.downcast::<TokioReq>() {
            let _ = r.send(x + 1);
        }
    })
}

async fn tokio_rr(secs: f64) -> (u64, Duration) {
    let tx = tokio_server();
    oneshot_rr(secs, |req| tx.send(req).expect("server")).await
}

/// Round trips for `secs`: each request handed to `send`, its answer
/// awaited on a oneshot.
async fn oneshot_rr(secs: f64, mut send: impl FnMut(TokioReq)) -> (u64, Duration) {
    timed_async!(WARM, secs, 256, {
        let (rtx, rrx) = oneshot::channel();
        send((1, rtx));
        black_box(rrx.await.expect("reply"));
    })
}

/// [`tokio_rr`] with each reply awaited under `tokio::time::timeout` of 5 s,
/// the default of a `gen_server` call: what tokio itself charges for a
/// request and reply that give up, as every OTP call can.
async fn tokio_rr_timeout(secs: f64) -> (u64, Duration) {
    let tx = tokio_server();
    timed_async!(WARM, secs, 256, {
        let (rtx, rrx) = oneshot::channel();
        tx.send((1, rtx)).expect("server");
        let reply = tokio::time::timeout(Duration::from_secs(5), rrx).await;
        black_box(reply.expect("in time").expect("reply"));
    })
}

fn sec_tokio(secs: f64) {
    let (n, d) = run_task(&rt_mt(), tokio_rr_timeout(secs));
    out("tokio_rr_oneshot_timeout", ns_per(n, d), "ns/op");
    let (n, d) = run_task(&rt_ct(), tokio_rr(secs));
    out("tokio_rr_unbounded_oneshot_ct", ns_per(n, d), "ns/op");
    let (n, d) = run_task(&rt_mt(), tokio_send((secs / 3.0).max(1.0)));
    out("tokio_send_rate", per_sec(n, d), "msgs/s");
}

/// The floor of the one-way figure: [`ergo_send`]'s loop between two plain
/// tokio tasks over an unbounded mpsc channel (the same messages, the same
/// yield every [`YIELD_EVERY`]). Returns (messages, time until the count
/// came back).
async fn tokio_send(secs: f64) -> (u64, Duration) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<Stream>();
    let (count_tx, count_rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut n = 0i64;
        while let Some(m) = rx.recv().await {
            match black_box(m) {
                Stream::Seq(_) => n += 1,
                Stream::Stop => break,
            }
        }
        let _ = count_tx.send(n);
    });
    let t0 = Instant::now();
    let mut n = 0i64;
    loop {
        for i in 0..YIELD_EVERY as i64 {
            tx.send(Stream::Seq(n + i)).expect("send");
        }
        n += YIELD_EVERY as i64;
        tokio::task::yield_now().await;
        if t0.elapsed().as_secs_f64() >= secs {
            break;
        }
    }
    tx.send(Stream::Stop).expect("send");
    let count = count_rx.await.expect("the count");
    assert_eq!(count, n, "every message arrived");
    (n as u64, t0.elapsed())
}

// ------------------------------------------------------------------- ergo

async fn ergo_call_loop(server: ServerRef<Echo>, secs: f64) -> (u64, Duration) {
    timed_async!(WARM, secs, 256, {
        let r = server.call(Req::Ping(1)).await.expect("call");
        assert_eq!(black_box(r), 2);
    })
}

/// Casts for `secs`, with a `count` call after every [`SYNC_EVERY`].
async fn ergo_cast_loop(server: ServerRef<Echo>, secs: f64) -> (u64, Duration) {
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for i in 0..SYNC_EVERY {
            server.cast(Note::Add(1));
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
        }
        n += SYNC_EVERY;
        black_box(server.call(Req::Count).await.expect("count"));
    }
    let got = server.call(Req::Count).await.expect("count");
    assert_eq!(got as u64, n, "every cast was handled");
    (n, start.elapsed())
}

/// `send_local` as Erlang's: a process sends `{seq, I}` to a counting
/// process for `secs`, then `stop`; the counter answers with its count.
/// Returns (messages, time until the count came back, sender's own time).
async fn ergo_send(node: &Node, secs: f64) -> (u64, Duration, Duration) {
    in_process(node, move |mut ctx| async move {
        let me = ctx.pid();
        let rcv = ctx.spawn(move |mut c| async move {
            let mut n = 0i64;
            loop {
                match c.receive().await.into_typed::<Stream>() {
                    Ok(Stream::Seq(_)) => n += 1,
                    Ok(Stream::Stop) => {
                        let _ = c.send(me, n);
                        return;
                    }
                    Err(_) => {}
                }
            }
        });
        let t0 = Instant::now();
        let mut n = 0i64;
        loop {
            for i in 0..YIELD_EVERY as i64 {
                ctx.send(rcv, Stream::Seq(n + i)).expect("send");
            }
            n += YIELD_EVERY as i64;
            // Where Erlang's scheduler would preempt the sender (see
            // `YIELD_EVERY`).
            tokio::task::yield_now().await;
            if t0.elapsed().as_secs_f64() >= secs {
                break;
            }
        }
        let t1 = t0.elapsed();
        ctx.send(rcv, Stream::Stop).expect("send");
        let count = ctx.receive().await.into_typed::<i64>().expect("the count");
        let t2 = t0.elapsed();
        assert_eq!(count, n, "every message arrived");
        (n as u64, t2, t1)
    })
    .await
}

/// Sequential local calls and their floor on multi-thread runtimes, in
/// [`CALL_ROUNDS`] rounds, each taking its share of `secs` in turn: the
/// tokio floor (on a runtime of its own, with nothing else on it), a call
/// from a process, a call from a task (on the node's runtime). The
/// machine's speed drifts within a run, and so falls on the figures and
/// their floor alike; each figure is all its rounds' calls over all their
/// time.
fn call_figures(secs: f64) {
    let floor_rt = rt_mt();
    let node_rt = rt_mt();
    let (node, server) = run_task(&node_rt, async {
        let node = new_node("calls");
        let server = node.start_server::<Echo>(()).await.expect("server");
        (node, server)
    });
    let part = secs / CALL_ROUNDS as f64;
    let mut done = [(0u64, Duration::ZERO); 3];
    let add = |slot: &mut (u64, Duration), (n, d): (u64, Duration)| {
        *slot = (slot.0 + n, slot.1 + d);
    };
    for _ in 0..CALL_ROUNDS {
        add(&mut done[0], run_task(&floor_rt, tokio_rr(part)));
        let (s, n) = (server.clone(), node.clone());
        add(
            &mut done[1],
            run_task(&node_rt, async move {
                in_process(&n, move |_ctx| ergo_call_loop(s, part)).await
            }),
        );
        add(
            &mut done[2],
            run_task(&node_rt, ergo_call_loop(server.clone(), part)),
        );
    }
    let names = [
        "tokio_rr_unbounded_oneshot",
        "ergo_local_call",
        "ergo_local_call_from_task",
    ];
    for (name, (n, d)) in names.into_iter().zip(done) {
        out(name, ns_per(n, d), "ns/op");
    }
    run_task(
        &node_rt,
        async move { node.stop(Duration::from_secs(1)).await },
    );
}

/// Rounds of [`call_figures`].
const CALL_ROUNDS: usize = 4;

async fn ergo_figures(secs: f64, suffix: &'static str, with_send: bool) {
    let node = new_node("bench");
    let server = node.start_server::<Echo>(()).await.expect("server");
    // The multi-thread runtime's calls are [`call_figures`]'s.
    if suffix == "_ct" {
        let s = server.clone();
        let (n, d) = in_process(&node, move |_ctx| ergo_call_loop(s, secs)).await;
        out(&format!("ergo_local_call{suffix}"), ns_per(n, d), "ns/op");
        let (n, d) = tokio::spawn(ergo_call_loop(server.clone(), secs))
            .await
            .expect("task");
        out(
            &format!("ergo_local_call_from_task{suffix}"),
            ns_per(n, d),
            "ns/op",
        );
    }
    // A fresh server for the casts, as the ractor and Erlang figures do.
    let s = node.start_server::<Echo>(()).await.expect("server");
    let (n, d) = in_process(&node, move |_ctx| ergo_cast_loop(s, secs)).await;
    out(&format!("ergo_cast_rate{suffix}"), per_sec(n, d), "msgs/s");
    if with_send {
        let (n, total, sender) = ergo_send(&node, (secs / 3.0).max(1.0)).await;
        out(
            &format!("ergo_send_rate{suffix}"),
            per_sec(n, total),
            "msgs/s",
        );
        out(
            &format!("ergo_send_sender_side_rate{suffix}"),
            per_sec(n, sender),
            "msgs/s",
        );
        out(
            &format!("ergo_send_drain_after_sender_done{suffix}"),
            (total - sender).as_secs_f64() * 1e3,
            "ms",
        );
    }
    node.stop(Duration::from_secs(1)).await;
}

fn sec_ergo(secs: f64) {
    run_task(&rt_mt(), ergo_figures(secs, "", true));
    // On one thread the sender never yields, so a send figure would only
    // time a queue filling up and then draining: left out.
    run_task(&rt_ct(), ergo_figures(secs, "_ct", false));
}

// ----------------------------------------------------------------- ractor

mod rc {
    use super::{DONE, READY};
    use ractor::{ActorProcessingErr, ActorRef, RpcReplyPort};
    use std::sync::atomic::Ordering::Relaxed;

    /// What the ractor server serves: the same workload as `Echo`.
    pub(crate) enum Msg {
        Ping(u64, RpcReplyPort<u64>),
        Add(u64),
        Get(RpcReplyPort<u64>),
    }

    pub(crate) struct Srv;

    impl ractor::Actor for Srv {
        type Msg = Msg;
        type State = u64;
        type Arguments = bool;

        async fn pre_start(
            &self,
            _me: ActorRef<Msg>,
            count_ready: bool,
        ) -> Result<u64, ActorProcessingErr> {
            if count_ready {
                READY.fetch_add(1, Relaxed);
            }
            Ok(0)
        }

        async fn post_stop(
            &self,
            _me: ActorRef<Msg>,
            _st: &mut u64,
        ) -> Result<(), ActorProcessingErr> {
            DONE.fetch_add(1, Relaxed);
            Ok(())
        }

        async fn handle(
            &self,
            _me: ActorRef<Msg>,
            m: Msg,
            st: &mut u64,
        ) -> Result<(), ActorProcessingErr> {
            match m {
                Msg::Ping(x, r) => {
                    let _ = r.send(x + 1);
                }
                Msg::Add(x) => *st += x,
                Msg::Get(r) => {
                    let _ = r.send(*st);
                }
            }
            Ok(())
        }
    }

    pub(crate) async fn new(count_ready: bool) -> ActorRef<Msg> {
        let (a, _h) = ractor::Actor::spawn(None, Srv, count_ready)
            .await
            .expect("ractor spawn");
        a
    }
}

async fn ractor_call_loop(secs: f64) -> (u64, Duration) {
    let a = rc::new(false).await;
    let r = timed_async!(WARM, secs, 256, {
        let r = ractor::call!(a, rc::Msg::Ping, 1).expect("call");
        assert_eq!(black_box(r), 2);
    });
    a.stop(None);
    r
}

async fn ractor_cast_loop(secs: f64) -> (u64, Duration) {
    let a = rc::new(false).await;
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        for i in 0..SYNC_EVERY {
            ractor::cast!(a, rc::Msg::Add(1)).expect("cast");
            if i % YIELD_EVERY == YIELD_EVERY - 1 {
                tokio::task::yield_now().await;
            }
        }
        n += SYNC_EVERY;
        black_box(ractor::call!(a, rc::Msg::Get).expect("get"));
    }
    let got = ractor::call!(a, rc::Msg::Get).expect("get");
    assert_eq!(got, n, "every cast was handled");
    a.stop(None);
    (n, start.elapsed())
}

fn sec_ractor(secs: f64) {
    for (rt, suffix) in [(rt_mt(), ""), (rt_ct(), "_ct")] {
        let (n, d) = run_task(&rt, ractor_call_loop(secs));
        out(&format!("ractor_call{suffix}"), ns_per(n, d), "ns/op");
        let (n, d) = run_task(&rt, ractor_cast_loop(secs));
        out(
            &format!("ractor_cast_rate{suffix}"),
            per_sec(n, d),
            "msgs/s",
        );
    }
}

// --------------------------------------------------------------- parallel

/// What the clients of a parallel figure share: a stop flag and the count
/// of calls made.
#[derive(Clone, Default)]
struct Pairs {
    stop: Arc<AtomicBool>,
    total: Arc<AtomicU64>,
}

/// The loop of a parallel client: runs `$body` until told to stop,
/// counting every 64 calls.
macro_rules! client_loop {
    ($pairs:expr, $body:block) => {{
        let pairs: Pairs = $pairs;
        while !pairs.stop.load(Relaxed) {
            for _ in 0..64 {
                $body
            }
            pairs.total.fetch_add(64, Relaxed);
        }
    }};
}

impl Pairs {
    /// Lets the clients warm up, then counts their calls for `secs`, then
    /// stops them. Returns calls per second.
    async fn measure(&self, secs: f64) -> f64 {
        tokio::time::sleep(WARM).await;
        let c0 = self.total.load(Relaxed);
        let t0 = Instant::now();
        tokio::time::sleep(Duration::from_secs_f64(secs)).await;
        let c1 = self.total.load(Relaxed);
        let d = t0.elapsed();
        self.stop.store(true, Relaxed);
        (c1 - c0) as f64 / d.as_secs_f64()
    }
}

async fn par_tokio(secs: f64) -> f64 {
    let pairs = Pairs::default();
    let mut clients = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let tx = tokio_server();
        let p = pairs.clone();
        clients.push(tokio::spawn(async move {
            client_loop!(p, {
                let (rtx, rrx) = oneshot::channel();
                tx.send((1, rtx)).expect("server");
                black_box(rrx.await.expect("reply"));
            })
        }));
    }
    let rate = pairs.measure(secs).await;
    for c in clients {
        c.await.expect("client");
    }
    rate
}

async fn par_ractor(secs: f64) -> f64 {
    let pairs = Pairs::default();
    let mut clients = Vec::with_capacity(PAIRS);
    let mut servers = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let a = rc::new(false).await;
        servers.push(a.clone());
        let p = pairs.clone();
        clients.push(tokio::spawn(async move {
            client_loop!(p, {
                black_box(ractor::call!(a, rc::Msg::Ping, 1).expect("call"));
            })
        }));
    }
    let rate = pairs.measure(secs).await;
    for c in clients {
        c.await.expect("client");
    }
    for a in servers {
        a.stop(None);
    }
    rate
}

/// Servers are `Echo` GenServers and clients are ergo processes.
async fn par_ergo(secs: f64) -> f64 {
    let node = new_node("par");
    let pairs = Pairs::default();
    let mut done = Vec::with_capacity(PAIRS);
    for _ in 0..PAIRS {
        let server = node.start_server::<Echo>(()).await.expect("server");
        let p = pairs.clone();
        let (tx, rx) = oneshot::channel::<()>();
        done.push(rx);
        node.spawn(move |_ctx| async move {
            client_loop!(p, {
                black_box(server.call(Req::Ping(1)).await.expect("call"));
            });
            let _ = tx.send(());
        });
    }
    let rate = pairs.measure(secs).await;
    for d in done {
        d.await.expect("client");
    }
    node.stop(Duration::from_secs(1)).await;
    rate
}

fn sec_parallel(secs: f64) {
    for (rt, suffix) in [(rt_mt(), ""), (rt_ct(), "_ct")] {
        out(
            &format!("par120_tokio{suffix}"),
            run_task(&rt, par_tokio(secs)),
            "calls/s",
        );
        out(
            &format!("par120_ergo{suffix}"),
            run_task(&rt, par_ergo(secs)),
            "calls/s",
        );
        out(
            &format!("par120_ractor{suffix}"),
            run_task(&rt, par_ractor(secs)),
            "calls/s",
        );
    }
}

// ------------------------------------------------------------------ spawn

/// Spawns `n` ergo processes that wait in `receive`; returns their pids and
/// the time until the last spawn call returned.
fn ergo_spawn_wave(node: &Node, v: &mut Vec<Pid>, n: usize) -> Duration {
    let t0 = Instant::now();
    for _ in 0..n {
        v.push(node.spawn(|mut ctx| async move {
            READY.fetch_add(1, Relaxed);
            black_box(ctx.receive().await);
        }));
    }
    t0.elapsed()
}

async fn ergo_spawn(n: usize) {
    let node = new_node("spawn");
    // One process through its whole life first.
    let w = node.spawn(|mut ctx| async move {
        black_box(ctx.receive().await);
    });
    node.send(w, Stream::Stop).expect("send");
    assert!(wait_until(SPAWN_LIMIT, || node.process_count() == 0).await);

    let mut v: Vec<Pid> = Vec::with_capacity(n);
    READY.store(0, Relaxed);
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    let call = ergo_spawn_wave(&node, &mut v, n);
    assert!(wait_until(SPAWN_LIMIT, || READY.load(Relaxed) >= n).await);
    let ready = t0.elapsed();
    let last = *v.last().expect("spawned");
    // READY is counted just before `receive`: wait for the last one to be
    // parked in it (an Erlang process "waiting").
    let parked = wait_until(SPAWN_LIMIT, || {
        node.process_info(last).map(|i| i.status) == Some(Status::Waiting)
    })
    .await;
    let waiting = t0.elapsed();
    let rss1 = rss_bytes();
    let pid_size = std::mem::size_of::<Pid>();
    out("ergo_spawn_rate", per_sec(n as u64, ready), "spawns/s");
    out("ergo_spawn_call_rate", per_sec(n as u64, call), "spawns/s");
    out("ergo_spawn_until_all_waiting_s", waiting.as_secs_f64(), "s");
    let delta = rss1 as f64 - rss0 as f64 - (n * pid_size) as f64;
    out("ergo_mem_per_process", delta / n as f64, "bytes");
    note(&format!(
        "ergo spawn n={n} last_waiting={parked} process_count={} pid size {pid_size} bytes (the Vec<Pid> is excluded from mem_per_process)",
        node.process_count()
    ));

    // Teardown: a message ends each one.
    let t3 = Instant::now();
    for pid in v.drain(..) {
        node.send(pid, Stream::Stop).expect("send");
    }
    assert!(wait_until(SPAWN_LIMIT, || node.process_count() == 0).await);
    out(
        "ergo_teardown_rate",
        per_sec(n as u64, t3.elapsed()),
        "procs/s",
    );

    // Second wave on a warm heap: closer to the CPU cost of a spawn.
    READY.store(0, Relaxed);
    let t0 = Instant::now();
    ergo_spawn_wave(&node, &mut v, n);
    assert!(wait_until(SPAWN_LIMIT, || READY.load(Relaxed) >= n).await);
    out(
        "ergo_spawn_rate_warm",
        per_sec(n as u64, t0.elapsed()),
        "spawns/s",
    );
    // The OS reclaims everything at exit; ending 1M tasks first would only
    // add time.
    std::process::exit(0);
}

async fn ractor_spawn(n: usize) {
    use ractor::ActorRef;
    let w = rc::new(false).await;
    ractor::call!(w, rc::Msg::Ping, 0).expect("call");
    w.stop(None);
    drop(w);
    tokio::time::sleep(Duration::from_millis(10)).await;

    let mut v: Vec<ActorRef<rc::Msg>> = Vec::with_capacity(n);
    READY.store(0, Relaxed);
    let rss0 = rss_bytes();
    let t0 = Instant::now();
    for _ in 0..n {
        v.push(rc::new(true).await);
    }
    let call = t0.elapsed();
    assert!(wait_until(SPAWN_LIMIT, || READY.load(Relaxed) >= n).await);
    let ready = t0.elapsed();
    let rss1 = rss_bytes();
    let handle = std::mem::size_of::<ActorRef<rc::Msg>>();
    out("ractor_spawn_rate", per_sec(n as u64, ready), "spawns/s");
    out(
        "ractor_spawn_call_rate",
        per_sec(n as u64, call),
        "spawns/s",
    );
    let delta = rss1 as f64 - rss0 as f64 - (n * handle) as f64;
    out("ractor_mem_per_actor", delta / n as f64, "bytes");
    if n < 1_000_000 {
        note(&format!(
            "ractor spawn uses n={n}, not 1M: at ~8 KB and ~150k spawns/s per actor, 1M ractor actors would take ~8 GB and ~7 s on this shared 2-core box (RACTOR_SPAWN_N overrides)"
        ));
    }
    note(&format!(
        "ractor ActorRef size {handle} bytes (excluded from mem_per_actor); ractor's spawn awaits pre_start"
    ));
    assert_eq!(ractor::call!(v[n - 1], rc::Msg::Ping, 1).expect("call"), 2);

    DONE.store(0, Relaxed);
    let t3 = Instant::now();
    for a in &v {
        a.stop(None);
    }
    assert!(wait_until(SPAWN_LIMIT, || DONE.load(Relaxed) >= n).await);
    out(
        "ractor_teardown_rate",
        per_sec(n as u64, t3.elapsed()),
        "procs/s",
    );
    drop(v);
    tokio::time::sleep(Duration::from_millis(50)).await;

    READY.store(0, Relaxed);
    let mut v: Vec<ActorRef<rc::Msg>> = Vec::with_capacity(n);
    let t0 = Instant::now();
    for _ in 0..n {
        v.push(rc::new(true).await);
    }
    assert!(wait_until(SPAWN_LIMIT, || READY.load(Relaxed) >= n).await);
    out(
        "ractor_spawn_rate_warm",
        per_sec(n as u64, t0.elapsed()),
        "spawns/s",
    );
    black_box(v);
    std::process::exit(0);
}

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------------- main

const SECTIONS: &[&str] = &[
    "calls",
    "tokio",
    "ergo",
    "ractor",
    "parallel",
    "ergo_spawn",
    "ractor_spawn",
];

fn run_section(name: &str, secs: f64) {
    if name.ends_with("_spawn") {
        let done = prefault();
        note(&format!("{name}: prefaulted 2 GiB first: {done}"));
    }
    match name {
        "calls" => call_figures(secs),
        "tokio" => sec_tokio(secs),
        "ergo" => sec_ergo(secs),
        "ractor" => sec_ractor(secs),
        "parallel" => sec_parallel(secs),
        // One figure alone, for profiling (not run by default).
        "only_ergo_call" => {
            let (n, d) = run_task(&rt_mt(), async move {
                let node = new_node("prof");
                let server = node.start_server::<Echo>(()).await.expect("server");
                in_process(&node, move |_ctx| ergo_call_loop(server, secs)).await
            });
            out("ergo_local_call", ns_per(n, d), "ns/op");
        }
        "only_ergo_call_from_task" => {
            let (n, d) = run_task(&rt_mt(), async move {
                let node = new_node("prof");
                let server = node.start_server::<Echo>(()).await.expect("server");
                tokio::spawn(ergo_call_loop(server, secs))
                    .await
                    .expect("task")
            });
            out("ergo_local_call_from_task", ns_per(n, d), "ns/op");
        }
        // Where a call's time goes, for profiling: a tokio task asking a
        // bare process (a receive loop answering through a oneshot) and a
        // process asking a tokio task.
        "only_task_to_bare_process" => {
            let (n, d) = run_task(&rt_mt(), async move {
                let node = new_node("prof");
                let server = bare_server(&node);
                oneshot_rr(secs, |req| {
                    node.send_message(server.into(), ergo::Message::local(req))
                        .expect("server")
                })
                .await
            });
            out("task_to_bare_process", ns_per(n, d), "ns/op");
        }
        "only_process_to_bare_process" => {
            let (n, d) = run_task(&rt_mt(), async move {
                let node = new_node("prof");
                let server = bare_server(&node);
                in_process(&node, move |ctx| async move {
                    oneshot_rr(secs, |req| {
                        ctx.send_message(server, ergo::Message::local(req))
                            .expect("server")
                    })
                    .await
                })
                .await
            });
            out("process_to_bare_process", ns_per(n, d), "ns/op");
        }
        "only_process_to_task" => {
            let (n, d) = run_task(&rt_mt(), async move {
                let node = new_node("prof");
                let tx = tokio_server();
                in_process(&node, move |_ctx| async move {
                    oneshot_rr(secs, |req| tx.send(req).expect("server")).await
                })
                .await
            });
            out("process_to_task", ns_per(n, d), "ns/op");
        }
        "only_ergo_cast" => {
            let (n, d) = run_task(&rt_mt(), async move {
                let node = new_node("prof");
                let server = node.start_server::<Echo>(()).await.expect("server");
                in_process(&node, move |_ctx| ergo_cast_loop(server, secs)).await
            });
            out("ergo_cast_rate", per_sec(n, d), "msgs/s");
        }
        "only_tokio_rr" => {
            let (n, d) = run_task(&rt_mt(), tokio_rr(secs));
            out("tokio_rr_unbounded_oneshot", ns_per(n, d), "ns/op");
        }
        "only_tokio_send" => {
            let (n, d) = run_task(&rt_mt(), tokio_send(secs));
            out("tokio_send_rate", per_sec(n, d), "msgs/s");
        }
        "only_ergo_send" => {
            let (n, total, _) =
                run_task(
                    &rt_mt(),
                    async move { ergo_send(&new_node("prof"), secs).await },
                );
            out("ergo_send_rate", per_sec(n, total), "msgs/s");
        }
        "only_par120_ergo" => out("par120_ergo", run_task(&rt_mt(), par_ergo(secs)), "calls/s"),
        "only_par120_ractor" => out(
            "par120_ractor",
            run_task(&rt_mt(), par_ractor(secs)),
            "calls/s",
        ),
        "ergo_spawn" => run_task(
            &rt_mt(),
            ergo_spawn(env_usize("ERGO_SPAWN_N", ERGO_SPAWN_N)),
        ),
        "ractor_spawn" => run_task(
            &rt_mt(),
            ractor_spawn(env_usize("RACTOR_SPAWN_N", RACTOR_SPAWN_N)),
        ),
        other => panic!("unknown section {other}; known: {SECTIONS:?}"),
    }
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string()
}

/// The versions of the crates compared, from the workspace's lock file.
fn versions() -> String {
    let lock = include_str!("../../../Cargo.lock");
    let mut found = Vec::new();
    let mut name = "";
    for l in lock.lines() {
        if let Some(n) = l.strip_prefix("name = ") {
            name = n.trim_matches('"');
        } else if let Some(v) = l.strip_prefix("version = ")
            && ["tokio", "ractor"].contains(&name)
        {
            found.push(format!("{name}={}", v.trim_matches('"')));
        }
    }
    found.join(" ")
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--prefault") {
        // For process_bench.erl, which has it run before its spawn figure.
        prefault();
        return;
    }
    if args.len() >= 3 && args[1] == "--section" {
        let secs = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(2.0);
        run_section(&args[2], secs);
        return;
    }
    let mut secs = 2.0f64;
    let mut only: Vec<&str> = Vec::new();
    for a in &args[1..] {
        match a.parse::<f64>() {
            Ok(s) => secs = s,
            Err(_) => only.push(a),
        }
    }
    note(&format!("versions: {}", versions()));
    note(&format!(
        "seconds per figure: {secs}; runtime: multi-thread with 2 workers unless _ct (current-thread)"
    ));
    note(&format!(
        "cpus: {}  loadavg at start: {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        loadavg()
    ));
    let exe = std::env::current_exe().expect("own path");
    let t0 = Instant::now();
    for s in SECTIONS {
        if !only.is_empty() && !only.contains(s) {
            continue;
        }
        let status = std::process::Command::new(&exe)
            .args(["--section", s, &secs.to_string()])
            .status()
            .expect("child");
        if !status.success() {
            note(&format!("section {s} FAILED: {status}"));
        }
    }
    note(&format!(
        "total {:.1}s  loadavg at end: {}",
        t0.elapsed().as_secs_f64(),
        loadavg()
    ));
}
