//! `phash2`, `phash2_range` and `phash2_32` against a real Erlang: a few
//! thousand seeded random terms of every kind (and a few large ones) are
//! written with `term_to_binary` encoding, `erl` decodes each and prints
//! `erlang:phash2(T)`, `erlang:phash2(T, 2)`, `erlang:phash2(T, 7)` and
//! `erlang:phash2(T, 1 bsl 32)`, and every value must equal Rust's.
//!
//! Without `erl` on `PATH` the test says that it is skipping, on stderr,
//! and returns.

use std::process::Command;

mod common;
use common::{TempDir, find_erl};

use ergo_etf::{
    Atom, BigInt, BitBinary, Fun, LocalFun, Map, Pid, Port, Ref, Term, encode, phash2, phash2_32,
    phash2_range,
};
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};

/// How many random terms are compared.
const RANDOM_TERMS: usize = 4000;

/// The seed of the random terms (any fixed value: the test is
/// deterministic).
const SEED: [u8; 32] = *b"ergo-etf phash2 vs erlang:phash2";

/// Reads the terms file (4-byte big-endian length, then the
/// `term_to_binary` bytes, for each term) named by the first plain
/// argument and writes one line per term to the file named by the second:
/// `phash2(T) phash2(T, 2) phash2(T, 7) phash2(T, 1 bsl 32)`.
const ERL_SCRIPT: &str = r#"
[In, Out] = init:get_plain_arguments(),
try
    {ok, Data} = file:read_file(In),
    Hash = fun Loop(<<Len:32, Bin:Len/binary, Rest/binary>>, Acc) ->
                   T = binary_to_term(Bin),
                   Line = io_lib:format("~w ~w ~w ~w~n",
                                        [erlang:phash2(T), erlang:phash2(T, 2),
                                         erlang:phash2(T, 7), erlang:phash2(T, 1 bsl 32)]),
                   Loop(Rest, [Line | Acc]);
               Loop(<<>>, Acc) ->
                   lists:reverse(Acc)
           end,
    ok = file:write_file(Out, Hash(Data, [])),
    halt(0)
catch C:R:S ->
    io:format(standard_error, "~tp:~tp~n~tp~n", [C, R, S]),
    halt(1)
end.
"#;

// ------------------------------------------------------------ random terms

/// The node non-distributed `erl` runs as: its pids, ports and references
/// with creation 0 decode as local ones, which have narrower fields.
const LOCAL_NODE: &str = "nonode@nohost";

fn node_strategy() -> impl Strategy<Value = (Atom, u32)> {
    (
        prop_oneof![
            Just(LOCAL_NODE),
            Just("a@b"),
            Just("node@127.0.0.1"),
            Just("élan@hôte"),
        ],
        0u32..4,
    )
        .prop_map(|(node, creation)| (Atom::from(node), creation))
}

fn is_local(node: Atom, creation: u32) -> bool {
    node == LOCAL_NODE && creation == 0
}

fn atom_strategy() -> impl Strategy<Value = Atom> {
    prop_oneof![
        Just(Atom::OK),
        Just(Atom::from("hello")),
        Just(Atom::from("Elixir.Foo")),
        Just(Atom::from("é")),
        Just(Atom::from("λ")),
        Just(Atom::from("ÿ€ü")),
        Just(Atom::from("")),
        "[a-z_]{0,8}".prop_map(|s| Atom::from(s.as_str())),
        "[a-zA-Z0-9_@.]{20,60}".prop_map(|s| Atom::from(s.as_str())),
        ".{0,6}".prop_map(|s| Atom::from(s.as_str())),
    ]
}

fn pid_strategy() -> impl Strategy<Value = Pid> {
    (node_strategy(), any::<u32>(), any::<u32>(), 0u32..3).prop_map(
        |((node, creation), id, serial, width)| {
            // Mostly ids of realistic size, sometimes any 32 bits.
            let (mut id, mut serial) = match width {
                0 => (id & 0x7fff, serial & 0x1fff),
                1 => (id & 0x0fff_ffff, serial & 0xff),
                _ => (id, serial),
            };
            if is_local(node, creation) {
                (id, serial) = (id & 0x7fff, serial & 0x1fff);
            }
            Pid::new(node, id, serial, creation)
        },
    )
}

fn leaf() -> impl Strategy<Value = Term> {
    prop_oneof![
        4 => any::<i64>().prop_map(Term::Int),
        4 => (0i64..=255).prop_map(Term::Int),
        2 => (-(1i64 << 29)..(1i64 << 29)).prop_map(Term::Int),
        1 => (-3i64..=3, prop_oneof![Just(27u32), Just(28), Just(31), Just(32), Just(59), Just(63)])
            .prop_map(|(d, p)| Term::bigint(BigInt::from(1i128 << p) + d)),
        1 => (-3i64..=3, prop_oneof![Just(27u32), Just(28), Just(31), Just(32), Just(59), Just(63)])
            .prop_map(|(d, p)| Term::bigint(-BigInt::from(1i128 << p) + d)),
        2 => any::<i128>().prop_map(Term::from),
        2 => (prop::collection::vec(any::<u8>(), 0..40), any::<bool>()).prop_map(|(mag, neg)| {
            let sign = if neg { num_bigint::Sign::Minus } else { num_bigint::Sign::Plus };
            Term::bigint(BigInt::from_bytes_le(sign, &mag))
        }),
        3 => any::<f64>().prop_filter("finite", |f| f.is_finite()).prop_map(Term::Float),
        1 => prop_oneof![Just(0.0), Just(-0.0), Just(1.0), Just(-1.0), Just(f64::MIN_POSITIVE),
                         Just(f64::MAX), Just(5e-324)].prop_map(Term::Float),
        4 => atom_strategy().prop_map(Term::Atom),
        3 => prop::collection::vec(any::<u8>(), 0..100).prop_map(|b| Term::Binary(b.into())),
        2 => (prop::collection::vec(any::<u8>(), 1..30), 1u8..8)
            .prop_map(|(b, bits)| Term::BitBinary(BitBinary::new(b, bits).unwrap())),
        2 => pid_strategy().prop_map(Term::Pid),
        2 => (node_strategy(), any::<u64>(), 0u32..3).prop_map(|((node, creation), id, width)| {
            let mut id = match width {
                0 => id & 0x0fff_ffff,
                1 => id & 0xffff_ffff,
                _ => id,
            };
            if is_local(node, creation) {
                id &= 0x0fff_ffff;
            }
            Term::Port(Port { node, id, creation })
        }),
        2 => (node_strategy(), prop::collection::vec(any::<u32>(), 1..=5)).prop_map(
            |((node, creation), mut ids)| {
                if is_local(node, creation) {
                    ids.truncate(3);
                    ids[0] &= 0x3ffff;
                }
                Term::Ref(Ref::new(node, creation, &ids).unwrap())
            }
        ),
        1 => (atom_strategy(), atom_strategy(), any::<u8>()).prop_map(|(module, function, arity)| {
            Term::Fun(Fun::Export { module, function, arity })
        }),
        2 => Just(Term::NIL),
    ]
}

/// A closure (`NEW_FUN_EXT`) of a module that need not exist.
fn local_fun(inner: BoxedStrategy<Term>) -> impl Strategy<Value = Term> {
    (
        (
            any::<u8>(),
            any::<[u8; 16]>(),
            any::<u32>(),
            atom_strategy(),
        ),
        (any::<u32>(), any::<u32>(), pid_strategy()),
        prop::collection::vec(inner, 0..4),
    )
        .prop_map(
            |((arity, uniq, index, module), (old_index, old_uniq, pid), free)| {
                Term::Fun(Fun::Local(Box::new(LocalFun {
                    arity,
                    uniq,
                    index,
                    module,
                    old_index: Box::new(Term::Int(i64::from(old_index))),
                    old_uniq: Box::new(Term::Int(i64::from(old_uniq))),
                    pid: Box::new(Term::Pid(pid)),
                    free,
                })))
            },
        )
}

fn term_strategy() -> impl Strategy<Value = Term> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        let inner = inner.boxed();
        prop_oneof![
            3 => prop::collection::vec(inner.clone(), 0..8).prop_map(Term::Tuple),
            3 => prop::collection::vec(inner.clone(), 0..8).prop_map(Term::List),
            // Strings: runs of bytes broken by other terms.
            3 => prop::collection::vec(
                prop_oneof![4 => (0i64..=255).prop_map(Term::Int), 1 => inner.clone()],
                0..20,
            )
            .prop_map(Term::List),
            2 => (prop::collection::vec(inner.clone(), 1..6), leaf())
                .prop_map(|(h, t)| Term::list_with_tail(h, t)),
            3 => prop::collection::vec((inner.clone(), inner.clone()), 0..6)
                .prop_map(|pairs| Term::Map(Map::from_pairs(pairs))),
            // Over 32 keys: a HAMT map in Erlang, not a flat one.
            1 => prop::collection::vec((leaf(), inner.clone()), 33..60)
                .prop_map(|pairs| Term::Map(Map::from_pairs(pairs))),
            1 => local_fun(inner),
        ]
    })
}

/// `t` with every `-0.0` made `0.0`.
fn without_negative_zero(t: &Term) -> Term {
    let each = |v: &[Term]| v.iter().map(without_negative_zero).collect::<Vec<_>>();
    match t {
        Term::Float(f) if *f == 0.0 => Term::Float(0.0),
        Term::Tuple(v) => Term::Tuple(each(v)),
        Term::List(v) => Term::List(each(v)),
        Term::ImproperList(v, tail) => {
            Term::ImproperList(each(v), Box::new(without_negative_zero(tail)))
        }
        Term::Map(m) => {
            Term::Map(Map::from_pairs(m.iter().map(|(k, v)| {
                (without_negative_zero(k), without_negative_zero(v))
            })))
        }
        other => other.clone(),
    }
}

/// `false` when `t` holds a map with two keys that differ only in the
/// sign of a zero: OTP 25 takes `0.0` and `-0.0` as the same key (OTP 27
/// and this crate do not), so `binary_to_term` refuses such a map.
fn erlang_can_decode(t: &Term) -> bool {
    match t {
        Term::Tuple(v) | Term::List(v) => v.iter().all(erlang_can_decode),
        Term::ImproperList(v, tail) => v.iter().all(erlang_can_decode) && erlang_can_decode(tail),
        Term::Map(m) => {
            let mut keys: Vec<Term> = m.iter().map(|(k, _)| without_negative_zero(k)).collect();
            keys.sort();
            keys.windows(2).all(|w| w[0] != w[1])
                && m.iter()
                    .all(|(k, v)| erlang_can_decode(k) && erlang_can_decode(v))
        }
        Term::Fun(Fun::Local(f)) => f.free.iter().all(erlang_can_decode),
        _ => true,
    }
}

/// Seeded random terms, then a few large ones (large enough that Erlang's
/// `phash2` yields part way through them).
fn terms() -> Vec<Term> {
    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &SEED),
    );
    let strategy = term_strategy();
    let mut terms = Vec::with_capacity(RANDOM_TERMS + 5);
    while terms.len() < RANDOM_TERMS {
        let t = strategy
            .new_tree(&mut runner)
            .expect("a random term")
            .current();
        if erlang_can_decode(&t) {
            terms.push(t);
        }
    }
    let bytes: Vec<u8> = (0..300_001u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    terms.push(Term::binary(&bytes));
    terms.push(Term::BitBinary(
        BitBinary::new(bytes[..100_003].to_vec(), 6).unwrap(),
    ));
    terms.push(Term::List(
        bytes[..200_000]
            .iter()
            .map(|&b| Term::Int(b.into()))
            .collect(),
    ));
    terms.push(Term::List(
        (0..50_000i64)
            .map(|i| Term::tuple([Term::Int(i), Term::Int(-i)]))
            .collect(),
    ));
    terms.push(Term::Map(Map::from_pairs((0..3000i64).map(|i| {
        (
            Term::tuple([Term::Int(i), Term::binary(i.to_string())]),
            Term::Int(i * 7),
        )
    }))));
    terms
}

/// Counts the terms of each kind in `t`, nested ones included.
fn count_kinds(t: &Term, kinds: &mut std::collections::BTreeMap<&'static str, usize>) {
    let mut add = |kind: &'static str| *kinds.entry(kind).or_insert(0) += 1;
    match t {
        Term::Int(n) if (-(1 << 27)..(1 << 27)).contains(n) => add("small integer"),
        Term::Int(_) => add("integer beyond 28 bits"),
        Term::BigInt(_) => add("bignum"),
        Term::Float(f) if *f == 0.0 && f.is_sign_negative() => add("-0.0"),
        Term::Float(_) => add("float"),
        Term::Atom(a) if !a.is_latin1() => add("non-Latin-1 atom"),
        Term::Atom(_) => add("atom"),
        Term::Binary(_) => add("binary"),
        Term::BitBinary(_) => add("bitstring"),
        Term::Pid(p) if is_local(p.node, p.creation) => add("local pid"),
        Term::Pid(_) => add("pid"),
        Term::Port(p) if is_local(p.node, p.creation) => add("local port"),
        Term::Port(_) => add("port"),
        Term::Ref(r) if is_local(r.node, r.creation) => add("local reference"),
        Term::Ref(_) => add("reference"),
        Term::Fun(Fun::Export { .. }) => add("export fun"),
        Term::Fun(Fun::Local(f)) => {
            add("local fun");
            f.free.iter().for_each(|t| count_kinds(t, kinds));
        }
        Term::Tuple(v) => {
            add("tuple");
            v.iter().for_each(|t| count_kinds(t, kinds));
        }
        Term::List(v) if v.is_empty() => add("nil"),
        Term::List(v) => {
            if v.iter().any(|t| matches!(t, Term::Int(0..=255))) {
                add("byte list");
            } else {
                add("list");
            }
            v.iter().for_each(|t| count_kinds(t, kinds));
        }
        Term::ImproperList(v, tail) => {
            add("improper list");
            v.iter().for_each(|t| count_kinds(t, kinds));
            count_kinds(tail, kinds);
        }
        Term::Map(m) => {
            add(if m.len() > 32 {
                "map over 32 keys"
            } else {
                "map"
            });
            for (k, v) in m.iter() {
                count_kinds(k, kinds);
                count_kinds(v, kinds);
            }
        }
    }
}

// ------------------------------------------------------------------- test

/// `text`, cut to its first 2000 characters.
fn clip(text: String) -> String {
    let chars = text.chars().count();
    if chars <= 2000 {
        return text;
    }
    let head: String = text.chars().take(2000).collect();
    format!("{head}... ({chars} characters)")
}

#[test]
fn phash2_matches_erlang_for_random_terms() {
    let Some(erl) = find_erl() else {
        eprintln!(
            "SKIPPING phash2_matches_erlang_for_random_terms: `erl` (Erlang/OTP) is not on \
             PATH, so phash2 was NOT compared with Erlang. Install Erlang/OTP 25 or later \
             (./scripts/test.sh does) to run this test."
        );
        return;
    };

    let terms = terms();
    let dir = TempDir::new("phash2");
    let input = dir.path().join("terms.bin");
    let output = dir.path().join("hashes.txt");
    let mut data = Vec::new();
    for t in &terms {
        let bytes = encode(t);
        data.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        data.extend_from_slice(&bytes);
    }
    std::fs::write(&input, &data).expect("write the terms file");

    let run = Command::new(&erl)
        .arg("-noshell")
        .arg("-eval")
        .arg(ERL_SCRIPT)
        .arg("-extra")
        .arg(&input)
        .arg(&output)
        .current_dir(dir.path())
        .output()
        .expect("run erl");
    assert!(
        run.status.success(),
        "erl failed ({}):\nstdout: {}\nstderr: {}",
        run.status,
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );

    let text = std::fs::read_to_string(&output).expect("read erl's hashes");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), terms.len(), "erl printed one line per term");
    for (i, (t, line)) in terms.iter().zip(&lines).enumerate() {
        let erlang: Vec<u64> = line
            .split(' ')
            .map(|w| w.parse().expect("a number from erl"))
            .collect();
        let ours = [
            u64::from(phash2(t)),
            u64::from(phash2_range(t, 2).expect("range 2")),
            u64::from(phash2_range(t, 7).expect("range 7")),
            u64::from(phash2_32(t)),
        ];
        if erlang != ours {
            panic!(
                "term #{i} hashes differently.\n  term: {}\n  debug: {}\n  \
                 erlang [phash2/1, N=2, N=7, N=2^32]: {erlang:?}\n  rust: {ours:?}",
                clip(t.to_string()),
                clip(format!("{t:?}")),
            );
        }
    }
    let mut kinds = std::collections::BTreeMap::new();
    for t in &terms {
        count_kinds(t, &mut kinds);
    }
    eprintln!(
        "phash2: {} terms ({} random, {} large) match erlang:phash2/1 and phash2/2 with \
         N = 2, 7, 2^32; terms of each kind, nested ones included: {kinds:?}",
        terms.len(),
        RANDOM_TERMS,
        terms.len() - RANDOM_TERMS
    );
    for kind in [
        "small integer",
        "integer beyond 28 bits",
        "bignum",
        "float",
        "-0.0",
        "atom",
        "non-Latin-1 atom",
        "binary",
        "bitstring",
        "pid",
        "local pid",
        "port",
        "local port",
        "reference",
        "local reference",
        "tuple",
        "nil",
        "list",
        "byte list",
        "improper list",
        "map",
        "map over 32 keys",
        "export fun",
        "local fun",
    ] {
        assert!(
            kinds.get(kind).is_some_and(|n| *n > 0),
            "the random terms hold no {kind}: {kinds:?}"
        );
    }
}
