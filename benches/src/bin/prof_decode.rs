//! Decodes one of the ETF shapes in a loop, for profiling
//! (`perf record target/release/prof_decode list10k_int 3`).

use std::hint::black_box;

fn main() {
    let name = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "list10k_int".into());
    let secs: f64 = std::env::args()
        .nth(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let encode_too = std::env::args().nth(3).is_some();
    if name == "order" {
        // The derived encoder on the sample order.
        let order = ergo_benches::sample_order();
        let mut buf = Vec::new();
        let (ops, d) = ergo_benches::run_for(secs, |n| {
            for _ in 0..n {
                buf.clear();
                ergo_etf::encode_into(black_box(&order), &mut buf);
            }
        });
        println!(
            "order derive encode: {:.0} ops/s",
            ops as f64 / d.as_secs_f64()
        );
        return;
    }
    let (_, term) = ergo_benches::etf_shapes()
        .into_iter()
        .find(|(n, _)| *n == name)
        .expect("a shape name: small_tuple, map100, list10k_int, bin1mb");
    let bytes = ergo_etf::encode(&term);
    let mut buf = Vec::new();
    let (ops, d) = ergo_benches::run_for(secs, |n| {
        for _ in 0..n {
            if encode_too {
                buf.clear();
                ergo_etf::encode_into(black_box(&term), &mut buf);
            } else {
                black_box(ergo_etf::decode(black_box(&bytes)).unwrap());
            }
        }
    });
    println!("{name}: {:.0} ops/s", ops as f64 / d.as_secs_f64());
}
