//! The GenStage figures of `gen_stage_vs_elixir.sh`, named as
//! `elixir/gen_stage_bench.exs` names its own:
//!
//! - `local SECS`: a three-stage pipeline on one node (producer →
//!   producer_consumer doubling each event → consumer counting them),
//!   `max_demand` 1000, integer events: events per second;
//! - `buffer N`: the memory of N integer events waiting in a producer's
//!   buffer, per event;
//! - `consumer SECS PRODUCER_NODE LABEL --epmd-port P --cookie C`: a consumer
//!   on a node of its own subscribed to `numbers` on PRODUCER_NODE (the
//!   interop_node example's, or Elixir's): events per second.
//!
//! Prints `name value unit` lines. On a multi-thread tokio runtime with two
//! workers.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};

use ergo::dist::DistOptions;
use ergo::gen_stage::SubscribeOptions;
use ergo::{Atom, Node};
use ergo_benches::out;
use ergo_benches::stages::{Counter, Numbers};

/// Events counted over `secs`, after half a second of warm-up.
async fn rate(counter: &AtomicU64, secs: f64) -> f64 {
    tokio::time::sleep(Duration::from_millis(500)).await;
    let c0 = counter.load(Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let c1 = counter.load(Relaxed);
    (c1 - c0) as f64 / t0.elapsed().as_secs_f64()
}

/// `max_demand` 1000, as issue 18 sets the figures (`GS_MAX_DEMAND` to
/// explore others).
fn opts() -> SubscribeOptions<i64> {
    let max = std::env::var("GS_MAX_DEMAND")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    SubscribeOptions::new().max_demand(max)
}

/// The resident set size of this process, in bytes.
fn rss() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

async fn local(secs: f64) {
    let node = Node::builder("gs_bench@localhost").start().unwrap();
    let counter = ergo_benches::stages::pipeline(&node, opts().max_demand).await;
    let r = rate(&counter, secs).await;
    out("ergo_pipeline_events_s", r.round(), "events/s");
}

async fn buffer(n: i64) {
    let node = Node::builder("gs_bench@localhost").start().unwrap();
    let p = node.start_stage::<Numbers>(true).await.unwrap();
    let m0 = rss();
    for _ in 0..n / 1000 {
        p.call(1000).await.unwrap();
    }
    let m1 = rss();
    assert_eq!(p.estimate_buffered_count().await.unwrap() as i64, n);
    out(
        "ergo_buffer_bytes_per_event",
        ((m1.saturating_sub(m0)) as f64 / n as f64 * 10.0).round() / 10.0,
        "bytes",
    );
}

async fn consumer(secs: f64, producer: &str, label: &str, epmd: u16, cookie: &str) {
    let node = Node::builder(format!("gs_consumer_{}@127.0.0.1", std::process::id()))
        .cookie(cookie)
        .start()
        .unwrap();
    node.dist()
        .listen(DistOptions {
            epmd_port: Some(epmd),
            ..DistOptions::default()
        })
        .await
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let c = node.start_stage::<Counter>(counter.clone()).await.unwrap();
    c.subscribe_to((Atom::from("numbers"), Atom::from(producer)), opts())
        .await
        .unwrap();
    let r = rate(&counter, secs).await;
    out(label, r.round(), "events/s");
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .cloned()
    };
    match args.first().map(String::as_str) {
        Some("local") => local(args[1].parse().unwrap()).await,
        Some("buffer") => buffer(args[1].parse().unwrap()).await,
        Some("consumer") => {
            let epmd = flag("--epmd-port")
                .and_then(|p| p.parse().ok())
                .unwrap_or(4369);
            let cookie = flag("--cookie").unwrap_or_default();
            consumer(args[1].parse().unwrap(), &args[2], &args[3], epmd, &cookie).await
        }
        _ => {
            eprintln!(
                "usage: gen_stage_side local SECS | buffer N | consumer SECS PRODUCER_NODE LABEL --epmd-port P --cookie C"
            );
            std::process::exit(2);
        }
    }
}
