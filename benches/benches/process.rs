//! Criterion benches of the process runtime: a sequential GenServer call
//! round trip and a cast, on a two-worker multi-thread tokio runtime. The
//! side-by-side figures with Erlang, tokio and ractor come from
//! `process_vs_erlang.sh`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use ergo::Node;
use ergo_benches::process::{Echo, calls, casts_then_sync};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn process(c: &mut Criterion) {
    let rt = runtime();
    let node = rt.block_on(async { Node::builder("crit@localhost").start().expect("node") });
    let server = rt.block_on(node.start_server::<Echo>(())).expect("server");
    let mut g = c.benchmark_group("process");
    g.measurement_time(Duration::from_secs(2))
        .warm_up_time(Duration::from_millis(500));

    // The client is a task on a worker, not the block_on thread, as a
    // process would be.
    g.bench_function("local_call_round_trip", |b| {
        b.iter_custom(|iters| {
            let s = server.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    calls(&s, iters).await;
                    t.elapsed()
                })
                .await
                .expect("client")
            })
        })
    });
    g.bench_function("cast_then_one_call", |b| {
        b.iter_custom(|iters| {
            let s = server.clone();
            rt.block_on(async move {
                tokio::spawn(async move {
                    let t = Instant::now();
                    casts_then_sync(&s, iters).await;
                    t.elapsed()
                })
                .await
                .expect("client")
            })
        })
    });
    g.finish();
}

criterion_group!(benches, process);
criterion_main!(benches);
