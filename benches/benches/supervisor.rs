//! Criterion benches of supervision, on a two-worker multi-thread tokio
//! runtime: restart latency (a child killed → its replacement has run
//! `init`) and starting a `simple_one_for_one` supervisor with 10,000
//! GenServer children. The side-by-side figures with Erlang/OTP come from
//! `supervisor_vs_erlang.sh`, which runs the same workloads
//! (`src/supervision.rs` and `erlang/supervisor_bench.erl`).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use ergo::Node;
use ergo_benches::supervision::{RESTARTS_PER_ROUND, restart_round, start_many, stop};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn supervision(c: &mut Criterion) {
    let rt = runtime();
    let node = rt.block_on(async { Node::builder("crit_sup@localhost").start().expect("node") });
    let mut g = c.benchmark_group("supervisor");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500));

    // Per restart: rounds of RESTARTS_PER_ROUND restarts, each on a fresh
    // supervisor (its setup and teardown are not timed).
    g.bench_function("restart_latency", |b| {
        b.iter_custom(|iters| {
            let n = node.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut total = Duration::ZERO;
                    let mut done = 0;
                    while done < iters {
                        total += restart_round(&n).await;
                        done += u64::from(RESTARTS_PER_ROUND);
                    }
                    // Scale to exactly `iters` restarts.
                    total.mul_f64(iters as f64 / done as f64)
                })
                .await
                .expect("client")
            })
        })
    });

    g.sample_size(10);
    g.bench_function("start_simple_one_for_one_10k_children", |b| {
        b.iter_custom(|iters| {
            let n = node.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        let (sup, took) = start_many(&n).await;
                        total += took;
                        stop(&sup).await;
                    }
                    total
                })
                .await
                .expect("client")
            })
        })
    });
    g.finish();
    rt.block_on(node.stop(Duration::from_secs(5)));
}

criterion_group!(benches, supervision);
criterion_main!(benches);
