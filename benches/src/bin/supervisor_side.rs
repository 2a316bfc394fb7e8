//! The supervision figures of `supervisor_vs_erlang.sh`, named as
//! `erlang/supervisor_bench.erl` names its own: restart latency (a child
//! killed → its replacement has run `init`) and starting a
//! `simple_one_for_one` supervisor with 10,000 GenServer children (and, for
//! context, stopping it again).
//!
//! ```text
//! cargo run --release -p ergo-benches --bin supervisor_side -- [SECONDS]
//! ```
//!
//! `SUP_BENCH_ONLY=restart` or `=many` runs one figure alone.
//!
//! Prints `name value unit` lines; lines starting with `#` are context. On
//! a multi-thread tokio runtime with two workers; the client is a task.

use std::time::{Duration, Instant};

use ergo::Node;
use ergo_benches::out;
use ergo_benches::supervision::{CHILDREN, RESTARTS_PER_ROUND, restart_round, start_many, stop};

/// The median of some durations, in microseconds.
fn median_us(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let node = rt.block_on(async { Node::builder("sup_bench@localhost").start().expect("node") });
    println!("# ergo: multi-thread runtime, 2 workers; {secs} s per figure");
    let only = std::env::var("SUP_BENCH_ONLY").unwrap_or_default();
    let want = |figure: &str| only.is_empty() || only.split(',').any(|f| f == figure);

    if want("restart") {
        restart_figure(&rt, &node, secs);
    }
    if want("many") {
        many_figure(&rt, &node, secs);
    }
    rt.block_on(node.stop(Duration::from_secs(5)));
}

fn restart_figure(rt: &tokio::runtime::Runtime, node: &Node, secs: f64) {
    // Restart latency: rounds of RESTARTS_PER_ROUND restarts, each round on
    // a fresh supervisor; the figure is total restart time / restarts.
    let n = node.clone();
    let (restarts, took) = rt.block_on(async move {
        tokio::spawn(async move {
            let warm_until = Instant::now() + Duration::from_millis(300);
            while Instant::now() < warm_until {
                restart_round(&n).await;
            }
            let (mut count, mut total) = (0u64, Duration::ZERO);
            let start = Instant::now();
            while start.elapsed().as_secs_f64() < secs {
                total += restart_round(&n).await;
                count += u64::from(RESTARTS_PER_ROUND);
            }
            (count, total)
        })
        .await
        .expect("client")
    });
    println!("# {restarts} restarts");
    out(
        "ergo_restart_latency",
        took.as_nanos() as f64 / restarts as f64,
        "ns/restart",
    );
}

fn many_figure(rt: &tokio::runtime::Runtime, node: &Node, secs: f64) {
    // 10,000 simple_one_for_one children: the median round.
    let n = node.clone();
    let (starts, stops) = rt.block_on(async move {
        tokio::spawn(async move {
            let (sup, _) = start_many(&n).await;
            stop(&sup).await;
            let (mut starts, mut stops) = (Vec::new(), Vec::new());
            let begin = Instant::now();
            while starts.len() < 3 || begin.elapsed().as_secs_f64() < secs {
                let (sup, took) = start_many(&n).await;
                starts.push(took);
                stops.push(stop(&sup).await);
            }
            (starts, stops)
        })
        .await
        .expect("client")
    });
    println!("# {} rounds of {CHILDREN} children", starts.len());
    out("ergo_sup_10k_start", median_us(starts), "us");
    out("ergo_sup_10k_stop", median_us(stops), "us");
}
