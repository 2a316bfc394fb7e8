//! ETF encode/decode throughput, printed as `name value unit` lines with the
//! same names as `erlang/etf_bench.erl`, plus the `eetf` and `erltf` crates
//! and the derive-versus-`Term` figures. `etf_vs_erlang.sh` runs both and
//! prints the ratios.
//!
//! `erltf` decodes the very bytes ergo-etf encoded; before its figures, one
//! check that it decodes them to the same term as `erltf_shape` builds, and
//! that ergo-etf decodes what erltf encodes back to the original term. A
//! `#` line says whether erltf's bytes are the same as ergo-etf's. They
//! differ wherever there is an atom: ergo-etf writes `ATOM_EXT` (a two-byte
//! length) as OTP 25's `term_to_binary` does, erltf `SMALL_ATOM_UTF8_EXT`
//! (one byte shorter); and erltf writes a map's pairs in its own key order.
//!
//! ```text
//! cargo run --release -p ergo-benches --bin etf_side -- [SECONDS]
//! ```

use std::hint::black_box;

use ergo_benches::{
    Order, eetf_shape, erltf_shape, etf_shapes, order_term, out, run_for, sample_order,
};
use ergo_etf::{
    Bytes, FromTerm, decode, decode_as, decode_bytes, encode, encode_into, encode_vectored,
};

fn report(prefix: &str, name: &str, size: usize, (ops, d): (u64, std::time::Duration)) {
    let rate = ops as f64 / d.as_secs_f64();
    out(&format!("{prefix}_{name}_rate"), rate, "ops/s");
    out(
        &format!("{prefix}_{name}_thru"),
        rate * size as f64 / 1e6,
        "MB/s",
    );
}

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1.0);
    let warm = 0.2f64.min(secs);
    for (name, term) in etf_shapes() {
        let bytes = encode(&term);
        let shared = Bytes::from(bytes.clone());
        let size = bytes.len();
        println!("# etf_{name} encoded_size {size} bytes");
        assert_eq!(decode(&bytes).unwrap(), term);

        let mut buf = Vec::with_capacity(size + 16);
        let mut enc = |n: u64| {
            for _ in 0..n {
                buf.clear();
                encode_into(black_box(&term), &mut buf);
                black_box(&buf);
            }
        };
        run_for(warm, &mut enc);
        report("etf_encode", name, size, run_for(secs, &mut enc));

        let mut dec = |n: u64| {
            for _ in 0..n {
                black_box(decode(black_box(&bytes)).unwrap());
            }
        };
        run_for(warm, &mut dec);
        report("etf_decode", name, size, run_for(secs, &mut dec));

        if name == "small_tuple" {
            // What a node does with a small message: decode it straight into
            // its typed form, with no Term in between.
            let mut typed = |n: u64| {
                for _ in 0..n {
                    black_box(
                        decode_as::<(ergo_etf::Atom, i64, Bytes)>(black_box(&bytes)).unwrap(),
                    );
                }
            };
            run_for(warm, &mut typed);
            report("etf_decode_typed", name, size, run_for(secs, &mut typed));
        }
        if name == "bin1mb" {
            // Zero-copy forms: a vectored encode refers to the binary, and a
            // decode from `Bytes` shares the input buffer.
            let mut encv = |n: u64| {
                for _ in 0..n {
                    black_box(encode_vectored(black_box(&term), 4096));
                }
            };
            run_for(warm, &mut encv);
            report("etf_encode_vectored", name, size, run_for(secs, &mut encv));
            let mut decs = |n: u64| {
                for _ in 0..n {
                    black_box(decode_bytes(black_box(&shared)).unwrap());
                }
            };
            run_for(warm, &mut decs);
            report("etf_decode_shared", name, size, run_for(secs, &mut decs));
        }

        let eterm = eetf_shape(&term);
        let mut ebuf = Vec::with_capacity(size + 16);
        let mut eenc = |n: u64| {
            for _ in 0..n {
                ebuf.clear();
                black_box(&eterm).encode(&mut ebuf).unwrap();
                black_box(&ebuf);
            }
        };
        run_for(warm, &mut eenc);
        report("eetf_encode", name, size, run_for(secs, &mut eenc));
        let mut ebytes = Vec::new();
        eterm.encode(&mut ebytes).unwrap();
        let mut edec = |n: u64| {
            for _ in 0..n {
                black_box(eetf::Term::decode(black_box(&ebytes[..])).unwrap());
            }
        };
        run_for(warm, &mut edec);
        report("eetf_decode", name, ebytes.len(), run_for(secs, &mut edec));

        let lterm = erltf_shape(&term);
        let lbytes = erltf::encode(&lterm).expect("erltf encodes the shape");
        assert_eq!(
            erltf::decode(&bytes).expect("erltf decodes ergo-etf's bytes"),
            lterm,
            "erltf reads ergo-etf's {name} as the same term"
        );
        assert_eq!(
            decode(&lbytes).expect("ergo-etf decodes erltf's bytes"),
            term,
            "ergo-etf reads erltf's {name} as the same term"
        );
        println!(
            "# erltf_{name} encoded_size {} bytes, {} ergo-etf's",
            lbytes.len(),
            if lbytes == bytes {
                "the same bytes as"
            } else {
                "other bytes than"
            }
        );
        // erltf has no encode-into-a-buffer call: every encode returns a new
        // Vec, which is what is timed.
        let mut lenc = |n: u64| {
            for _ in 0..n {
                black_box(erltf::encode(black_box(&lterm)).unwrap());
            }
        };
        run_for(warm, &mut lenc);
        report("erltf_encode", name, size, run_for(secs, &mut lenc));
        let mut ldec = |n: u64| {
            for _ in 0..n {
                black_box(erltf::decode(black_box(&bytes)).unwrap());
            }
        };
        run_for(warm, &mut ldec);
        report("erltf_decode", name, size, run_for(secs, &mut ldec));
        if name == "bin1mb" {
            // erltf's zero-copy decode, whose binary borrows the input: the
            // counterpart of ergo-etf's shared decode above.
            let mut lborrow = |n: u64| {
                for _ in 0..n {
                    black_box(erltf::decode_borrowed(black_box(&bytes)).unwrap());
                }
            };
            run_for(warm, &mut lborrow);
            report(
                "erltf_decode_borrowed",
                name,
                size,
                run_for(secs, &mut lborrow),
            );
        }
    }

    // Derived struct straight to bytes, versus building its Term and encoding.
    let order = sample_order();
    let bytes = encode(&order);
    assert_eq!(bytes, encode(&order_term(&order)));
    println!("# order encoded_size {} bytes", bytes.len());
    let mut buf = Vec::with_capacity(256);
    let mut derive_enc = |n: u64| {
        for _ in 0..n {
            buf.clear();
            encode_into(black_box(&order), &mut buf);
            black_box(&buf);
        }
    };
    run_for(warm, &mut derive_enc);
    report(
        "derive_encode",
        "order",
        bytes.len(),
        run_for(secs, &mut derive_enc),
    );
    let mut term_enc = |n: u64| {
        for _ in 0..n {
            buf.clear();
            encode_into(&order_term(black_box(&order)), &mut buf);
            black_box(&buf);
        }
    };
    run_for(warm, &mut term_enc);
    report(
        "term_encode",
        "order",
        bytes.len(),
        run_for(secs, &mut term_enc),
    );
    let mut derive_dec = |n: u64| {
        for _ in 0..n {
            black_box(decode_as::<Order>(black_box(&bytes)).unwrap());
        }
    };
    run_for(warm, &mut derive_dec);
    report(
        "derive_decode",
        "order",
        bytes.len(),
        run_for(secs, &mut derive_dec),
    );
    let mut term_dec = |n: u64| {
        for _ in 0..n {
            black_box(Order::from_term(&decode(black_box(&bytes)).unwrap()).unwrap());
        }
    };
    run_for(warm, &mut term_dec);
    report(
        "term_decode",
        "order",
        bytes.len(),
        run_for(secs, &mut term_dec),
    );
}
