//! What the web dashboard costs (issue 19's figure): local message
//! throughput (one process sending to another, which counts) on a node
//! without the dashboard, then on the same node serving it with a page's
//! event stream open and read, alternating in rounds so that both see the
//! same machine. Prints `msgs_per_s_off`, `msgs_per_s_on` and the ratio.
//!
//! ```text
//! cargo run --release -p ergo-benches --bin dashboard_side -- [SECONDS]
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ergo::{Node, Term};
use ergo_benches::out;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Messages per second from a sender to a counting receiver for `secs`.
async fn throughput(node: &Node, secs: f64) -> f64 {
    let count = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let c = count.clone();
    let receiver = node.spawn(move |mut ctx| async move {
        loop {
            let m = ctx.receive().await;
            if matches!(m.to_term(), Some(Term::Atom(a)) if a.as_str() == "stop") {
                break;
            }
            c.fetch_add(1, Relaxed);
        }
    });
    let s = stop.clone();
    node.spawn(move |ctx| async move {
        let mut n = 0u64;
        while !s.load(Relaxed) {
            let _ = ctx.send(receiver, Term::Int(1));
            n += 1;
            if n.is_multiple_of(256) {
                tokio::task::yield_now().await;
            }
        }
        let _ = ctx.send(receiver, Term::atom("stop"));
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let c0 = count.load(Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let rate = (count.load(Relaxed) - c0) as f64 / t0.elapsed().as_secs_f64();
    stop.store(true, Relaxed);
    tokio::time::sleep(Duration::from_millis(100)).await;
    rate
}

async fn run(secs: f64) {
    let node = Node::builder("dash_bench@127.0.0.1").start().expect("node");
    // A realistic page: 200 idle processes to list.
    for _ in 0..200 {
        node.spawn(|mut ctx| async move {
            ctx.receive().await;
        });
    }
    const ROUNDS: usize = 4;
    let slice = secs / ROUNDS as f64;
    let mut off = 0.0;
    for _ in 0..ROUNDS {
        off += throughput(&node, slice).await;
    }
    let addr = node
        .serve_dashboard("127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("dashboard");
    // An open page: its event stream, read as it comes.
    let reader = tokio::spawn(async move {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(format!("GET /events HTTP/1.1\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .expect("request");
        let mut buf = vec![0u8; 1 << 16];
        let mut got = 0usize;
        while let Ok(n) = s.read(&mut buf).await {
            if n == 0 {
                break;
            }
            got += n;
        }
        got
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut on = 0.0;
    for _ in 0..ROUNDS {
        on += throughput(&node, slice).await;
    }
    reader.abort();
    let (off, on) = (off / ROUNDS as f64, on / ROUNDS as f64);
    println!(
        "# 200 idle processes besides the two measured; the page's event stream read throughout"
    );
    out("msgs_per_s_off", off, "msgs/s");
    out("msgs_per_s_on", on, "msgs/s");
    out("dashboard_on_over_off", on / off, "ratio");
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .map_or(4.0, |s| s.parse().expect("SECONDS"));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async move { tokio::spawn(run(secs)).await })
        .expect("the benchmark runs");
}
