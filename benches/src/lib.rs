//! Workloads shared by the criterion benches (`benches/`) and the
//! side-by-side runners (`src/bin/`), so that both measure the same thing as
//! the Erlang scripts in `erlang/`.

use std::time::{Duration, Instant};

/// With the `jemalloc` feature, every binary and bench of this package
/// allocates with jemalloc.
#[cfg(feature = "jemalloc")]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

pub mod dist;
pub mod process;
pub mod stages;
pub mod supervision;

use ergo_etf::{Term, ToTerm};
use ergo_macros::Term as DeriveTerm;

/// The four term shapes of the ETF figures, as Erlang's `etf_bench` builds
/// them: `{ok, 42, <<"hello">>}`, a map of atoms `key_1` … `key_100` to
/// integers, `lists:seq(1, 10000)`, and a 1 MiB binary of pseudo-random bytes.
pub fn etf_shapes() -> Vec<(&'static str, Term)> {
    let small = Term::tuple([Term::atom("ok"), Term::Int(42), Term::binary("hello")]);
    let map100 = Term::map((1..=100).map(|i| (Term::atom(&format!("key_{i}")), Term::Int(i))));
    let list10k = Term::list((1..=10_000).map(Term::Int));
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bin: Vec<u8> = (0..1 << 20)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect();
    vec![
        ("small_tuple", small),
        ("map100", map100),
        ("list10k_int", list10k),
        ("bin1mb", Term::Binary(bin.into())),
    ]
}

/// The same four shapes as `eetf` terms.
pub fn eetf_shape(t: &Term) -> eetf::Term {
    use eetf::{Atom, BigInteger, Binary, FixInteger, List, Map, Tuple};
    match t {
        Term::Int(i) => match i32::try_from(*i) {
            Ok(v) => eetf::Term::from(FixInteger::from(v)),
            Err(_) => eetf::Term::from(BigInteger::from(*i)),
        },
        Term::Atom(a) => eetf::Term::from(Atom::from(a.as_str())),
        Term::Binary(b) => eetf::Term::from(Binary::from(b.to_vec())),
        Term::Tuple(v) => {
            eetf::Term::from(Tuple::from(v.iter().map(eetf_shape).collect::<Vec<_>>()))
        }
        Term::List(v) => eetf::Term::from(List::from(v.iter().map(eetf_shape).collect::<Vec<_>>())),
        Term::Map(m) => eetf::Term::from(Map::from(
            m.iter()
                .map(|(k, v)| (eetf_shape(k), eetf_shape(v)))
                .collect::<std::collections::HashMap<_, _>>(),
        )),
        other => panic!("no eetf form for {other}"),
    }
}

/// The same four shapes as `erltf` terms (erltf keeps a map's pairs in a
/// `BTreeMap`, so its encoding writes them in its own key order).
pub fn erltf_shape(t: &Term) -> erltf::OwnedTerm {
    use erltf::OwnedTerm;
    match t {
        Term::Int(i) => OwnedTerm::Integer(*i),
        Term::Atom(a) => OwnedTerm::Atom(erltf::Atom::new(a.as_str())),
        Term::Binary(b) => OwnedTerm::Binary(b.to_vec()),
        Term::Tuple(v) => OwnedTerm::Tuple(v.iter().map(erltf_shape).collect()),
        Term::List(v) if v.is_empty() => OwnedTerm::Nil,
        Term::List(v) => OwnedTerm::List(v.iter().map(erltf_shape).collect()),
        Term::Map(m) => OwnedTerm::Map(
            m.iter()
                .map(|(k, v)| (erltf_shape(k), erltf_shape(v)))
                .collect(),
        ),
        other => panic!("no erltf form for {other}"),
    }
}

/// A typical message struct for the derive-versus-`Term` figure.
#[derive(DeriveTerm, Debug, Clone, PartialEq)]
pub struct Order {
    /// Order number.
    pub id: u64,
    /// Customer name.
    pub customer: String,
    /// Quantities per line.
    pub lines: Vec<u32>,
    /// Paid yet.
    pub paid: bool,
    /// Status.
    pub status: Status,
}

/// An order's status.
#[derive(DeriveTerm, Debug, Clone, PartialEq)]
pub enum Status {
    /// `open`
    Open,
    /// `{shipped, Carrier}`
    Shipped(String),
}

/// An example order.
pub fn sample_order() -> Order {
    Order {
        id: 1_234_567,
        customer: "Ada Lovelace".into(),
        lines: vec![1, 2, 3, 500, 7],
        paid: true,
        status: Status::Shipped("ups".into()),
    }
}

/// Builds the order's `Term` (what code without the derive would do).
pub fn order_term(o: &Order) -> Term {
    o.to_term()
}

/// Runs `f(batch)` for `secs` seconds, doubling the batch until one batch
/// takes at least 2 ms (as Erlang's `run_for/2` in `erlang/etf_bench.erl`
/// does). Returns (operations, elapsed).
pub fn run_for(secs: f64, mut f: impl FnMut(u64)) -> (u64, Duration) {
    let start = Instant::now();
    let deadline = Duration::from_secs_f64(secs);
    let (mut batch, mut ops, mut prev) = (1u64, 0u64, start);
    loop {
        f(batch);
        let now = Instant::now();
        ops += batch;
        if now - start >= deadline {
            return (ops, now - start);
        }
        if now - prev < Duration::from_millis(2) {
            batch *= 2;
        }
        prev = now;
    }
}

/// Prints `name value unit` as the Erlang scripts do.
pub fn out(name: &str, value: f64, unit: &str) {
    if value >= 1000.0 {
        println!("{name} {value:.0} {unit}");
    } else if value >= 10.0 {
        println!("{name} {value:.1} {unit}");
    } else {
        println!("{name} {value:.3} {unit}");
    }
}
