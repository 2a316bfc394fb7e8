//! Criterion bench of GenStage: integer events through a three-stage
//! pipeline on one node (producer → producer_consumer → consumer,
//! `max_demand` 1000), on a two-worker multi-thread tokio runtime. The
//! side-by-side figure with Elixir's GenStage comes from
//! `gen_stage_vs_elixir.sh`, which runs the same stages
//! (`src/stages.rs` and `elixir/gen_stage_bench.exs`).

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use ergo::Node;

fn pipeline(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let counter = rt.block_on(async {
        let node = Node::builder("crit_stage@localhost").start().expect("node");
        ergo_benches::stages::pipeline(&node, 1000).await
    });
    let mut g = c.benchmark_group("gen_stage");
    g.measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_millis(500))
        .throughput(Throughput::Elements(1));
    // Per event: the time the consumer takes to count `iters` more.
    g.bench_function("pipeline_event", |b| {
        b.iter_custom(|iters| {
            let start = counter.load(Relaxed);
            let t = Instant::now();
            while counter.load(Relaxed) - start < iters {
                std::thread::yield_now();
            }
            t.elapsed()
        })
    });
    g.finish();
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
