//! Criterion benches of ETF encode and decode on the four shapes of the
//! Erlang comparison, and of derived encoding against building a `Term`.
//! The side-by-side ratios with Erlang come from `etf_vs_erlang.sh`.

// criterion_group! generates an undocumented public function.
#![allow(missing_docs)]

use criterion::{Criterion, Throughput, black_box, criterion_group, criterion_main};
use ergo_benches::{Order, etf_shapes, order_term, sample_order};
use ergo_etf::{Bytes, decode, decode_as, decode_bytes, encode, encode_into, encode_vectored};

fn shapes(c: &mut Criterion) {
    for (name, term) in etf_shapes() {
        let bytes = encode(&term);
        let shared = Bytes::from(bytes.clone());
        let mut g = c.benchmark_group(format!("etf/{name}"));
        g.throughput(Throughput::Bytes(bytes.len() as u64));
        let mut buf = Vec::with_capacity(bytes.len() + 16);
        g.bench_function("encode", |b| {
            b.iter(|| {
                buf.clear();
                encode_into(black_box(&term), &mut buf);
            })
        });
        g.bench_function("encode_vectored", |b| {
            b.iter(|| encode_vectored(black_box(&term), 4096))
        });
        g.bench_function("decode", |b| b.iter(|| decode(black_box(&bytes)).unwrap()));
        g.bench_function("decode_shared", |b| {
            b.iter(|| decode_bytes(black_box(&shared)).unwrap())
        });
        g.finish();
    }
}

fn derive(c: &mut Criterion) {
    let order = sample_order();
    let bytes = encode(&order);
    let mut g = c.benchmark_group("etf/derived_order");
    let mut buf = Vec::with_capacity(256);
    g.bench_function("derive_encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_into(black_box(&order), &mut buf);
        })
    });
    g.bench_function("build_term_then_encode", |b| {
        b.iter(|| {
            buf.clear();
            encode_into(&order_term(black_box(&order)), &mut buf);
        })
    });
    g.bench_function("derive_decode", |b| {
        b.iter(|| decode_as::<Order>(black_box(&bytes)).unwrap())
    });
    g.finish();
}

criterion_group!(benches, shapes, derive);
criterion_main!(benches);
