//! `Term`'s `Ord` checked against a real Erlang's term order.
//!
//! One `erl` run (plain, non-distributed, as in `erlang_interop.rs`) reads a
//! list of terms Rust encoded, sorts it with `lists:sort/1`, compares every
//! pair with `<`, `>` and `==`, and writes the results back. The test then
//! asserts that Rust's `sort()` gives Erlang's order term for term and that
//! every pair compares the same way on both sides.
//!
//! The terms: pids, ports and references of five node incarnations (local
//! and remote, names and creations ordered against each other, ids and
//! serials likewise, references of one to five words); integers small and
//! big against floats around 2^53, 2^59, 2^63, 2^64 and 1e300; atoms with
//! non-ASCII names; export funs and closures; binaries and bitstrings;
//! tuples, proper and improper lists, small maps and maps of over 32 pairs
//! (whose keys order integers before floats); identifiers and numbers
//! inside tuples.
//!
//! Erlang's order is not total: `1 == 1.0` (and, in OTP 25, `0.0 == -0.0`)
//! yet the terms differ. `Term`'s order refines it, ordering such terms as
//! they differ exactly (the integer first). The sorted list holds no such
//! pair, so that `lists:sort/1` has one right answer; [`ties`] lists pairs
//! of them, checked pairwise: Erlang must find them equal and Rust must
//! order them as given.
//!
//! Without `erl` on `PATH` every test here fails: run `./scripts/test.sh`,
//! which installs Erlang.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

mod common;
use common::{TempDir, run_erl_eval};

use ergo_etf::{Atom, BigInt, BitBinary, Fun, LocalFun, Pid, Port, Ref, Term, decode, encode};

// ---------------------------------------------------------------- running erl

/// How long the `erl` run may take before the test gives up on it.
const ERL_TIMEOUT: Duration = Duration::from_secs(120);

/// Reads `{SortN, AllBins}` from the first plain argument: `AllBins` holds
/// the terms, each encoded on its own, and the first `SortN` of them are to
/// be sorted. Writes `{ok, lists:sort(Sort), Pairs}` to the second, where
/// `Pairs` holds a byte for every pair `(A, B)` of all terms (row by row):
/// `<` for `A < B`, `>` for `A > B`, `=` for `A == B`; or `{undecodable,
/// Indexes}` when `binary_to_term/1` refuses some terms. Any other failure
/// prints the reason to stderr and exits with status 1.
const ERL_EVAL: &str = "[In, Out] = init:get_plain_arguments(), \
    try \
        {ok, Bin} = file:read_file(In), \
        {SortN, Bins} = binary_to_term(Bin), \
        Dec = fun(B) -> try {ok, binary_to_term(B)} catch error:badarg -> error end end, \
        Decoded = lists:map(Dec, Bins), \
        Bad = [I || {I, error} <- lists:zip(lists:seq(0, length(Bins) - 1), Decoded)], \
        Answer = case Bad of \
            [] -> \
                All = [T || {ok, T} <- Decoded], \
                {Sort, _} = lists:split(SortN, All), \
                Cmp = fun(A, B) when A < B -> $<; (A, B) when A > B -> $>; \
                         (A, B) when A == B -> $= end, \
                Pairs = << <<(Cmp(A, B))>> || A <- All, B <- All >>, \
                {ok, lists:sort(Sort), Pairs}; \
            _ -> {undecodable, Bad} \
        end, \
        ok = file:write_file(Out, term_to_binary(Answer)), \
        halt(0) \
    catch C:R:S -> \
        io:format(standard_error, \"~tP:~tP~n~tP~n\", [C, 10, R, 10, S, 10]), \
        halt(1) \
    end.";

/// Runs [`ERL_EVAL`] in a fresh, non-distributed `erl` on `input` (ETF
/// bytes) and returns what it wrote.
fn run_erl(input: &[u8]) -> Vec<u8> {
    let dir = TempDir::new("order");
    let in_path = dir.path().join("terms.bin");
    let out_path = dir.path().join("sorted.bin");
    std::fs::write(&in_path, input).expect("write Rust's terms");
    run_erl_eval(
        "the term order",
        "sorting Rust's terms",
        dir.path(),
        ERL_EVAL,
        &[&in_path, &out_path],
        ERL_TIMEOUT,
    );
    std::fs::read(&out_path).expect("read what erl wrote")
}

// ---------------------------------------------------------------- the terms

fn a(name: &str) -> Term {
    Term::atom(name)
}

fn int(i: i64) -> Term {
    Term::Int(i)
}

fn float(x: f64) -> Term {
    Term::Float(x)
}

fn big(decimal: &str) -> Term {
    Term::bigint(decimal.parse::<BigInt>().expect("a decimal integer"))
}

fn pow2(n: u32) -> BigInt {
    BigInt::from(1) << n
}

fn tuple<const N: usize>(elements: [Term; N]) -> Term {
    Term::tuple(elements)
}

fn list<const N: usize>(elements: [Term; N]) -> Term {
    Term::list(elements)
}

fn map<const N: usize>(pairs: [(Term, Term); N]) -> Term {
    Term::map(pairs)
}

fn bits(bytes: &[u8], tail_bits: u8) -> Term {
    Term::BitBinary(BitBinary::new(bytes.to_vec(), tail_bits).expect("a bitstring"))
}

/// The nodes identifiers are made on: (name, creation). `nonode@nohost`
/// with creation 0 is the `erl` node itself, so its pids, ports and
/// references decode there as local ones; the same name with another
/// creation is an older incarnation. The names and creations disagree in
/// order (`a@host` has both the smallest name and the largest creation).
const NODES: [(&str, u32); 5] = [
    ("nonode@nohost", 0),
    ("nonode@nohost", 7),
    ("a@host", 0xFFFF_FFF0),
    ("a@host", 2),
    ("b@host", 1),
];

fn node((name, creation): (&str, u32)) -> (Atom, u32) {
    (Atom::from(name), creation)
}

fn pids() -> Vec<Term> {
    // (id, serial): ids and serials that disagree in order.
    let numbers = [(0, 0), (1, 0), (70, 0), (0, 1), (5, 1), (30_000, 0), (3, 2)];
    let mut out = Vec::new();
    for n in NODES {
        let (node, creation) = node(n);
        for (id, serial) in numbers {
            out.push(Term::Pid(Pid::new(node, id, serial, creation)));
        }
        // Process numbers beyond 15 bits only on other nodes: a local pid
        // has no more.
        if n != NODES[0] {
            out.push(Term::Pid(Pid::new(node, 40_000, 0, creation)));
        }
    }
    out
}

fn ports() -> Vec<Term> {
    let ids = [0u64, 1, 9, 1 << 20];
    let mut out = Vec::new();
    for n in NODES {
        let (node, creation) = node(n);
        for id in ids {
            out.push(Term::Port(Port { node, id, creation }));
        }
        // Ids beyond 32 bits (V4_PORT_EXT) only on other nodes: a local
        // port number has fewer bits.
        if n.0 != "nonode@nohost" {
            for id in [1 << 33, (1 << 40) + 1] {
                out.push(Term::Port(Port { node, id, creation }));
            }
        }
    }
    out
}

fn refs() -> Vec<Term> {
    let mut out = Vec::new();
    for n in NODES {
        let (node, creation) = node(n);
        // Three words, as make_ref() makes, first word least significant;
        // words that disagree in order with their significance.
        let mut words: Vec<Vec<u32>> = vec![
            vec![1, 0, 0],
            vec![0, 1, 0],
            vec![0, 0, 1],
            vec![5, 3, 0],
            vec![3, 5, 0],
            vec![0x3_FFFF, 0xFFFF_FFFF, 7],
        ];
        if n.0 != "nonode@nohost" {
            // Other lengths only on other nodes: a local reference has a
            // fixed shape. Where the longer one's extra words are not zero
            // it is the greater.
            words.extend([
                vec![9],
                vec![2, 1],
                vec![1, 2, 3, 4],
                vec![1, 2, 3, 4, 5],
                vec![9, 0, 0, 0, 1],
            ]);
        }
        for w in words {
            out.push(Term::Ref(
                Ref::new(node, creation, &w).expect("1 to 5 words"),
            ));
        }
    }
    out
}

/// A closure: `(module, index, old_index)`, `(uniq, old_uniq)` (`uniq` is
/// every byte of its MD5), the pid that made it and its free variables.
fn local_fun(
    (module, index, old_index): (&str, u32, u32),
    (uniq, old_uniq): (u8, i64),
    pid: Pid,
    free: Vec<Term>,
) -> Term {
    Term::Fun(Fun::Local(Box::new(LocalFun {
        arity: free.len() as u8,
        uniq: [uniq; 16],
        index,
        module: Atom::from(module),
        old_index: Box::new(Term::Int(i64::from(old_index))),
        old_uniq: Box::new(Term::Int(old_uniq)),
        pid: Box::new(Term::Pid(pid)),
        free,
    })))
}

fn fun_pids() -> (Pid, Pid) {
    (
        Pid::new(Atom::from("a@host"), 1, 0, 2),
        Pid::new(Atom::from("b@host"), 0, 0, 1),
    )
}

fn funs() -> Vec<Term> {
    let export = |m: &str, f: &str, arity: u8| {
        Term::Fun(Fun::Export {
            module: Atom::from(m),
            function: Atom::from(f),
            arity,
        })
    };
    let (p1, p2) = fun_pids();
    vec![
        export("lists", "map", 2),
        export("lists", "map", 3),
        export("lists", "filter", 2),
        export("erlang", "abs", 1),
        export("z", "a", 0),
        // Each (module, uniq, index) once: Erlang keeps one fun entry per
        // triple. Indexes and old indexes, uniqs and old uniqs, the number
        // and the values of free variables disagree in order.
        local_fun(("m", 0, 0), (1, 20), p1, vec![]),
        local_fun(("m", 0, 0), (2, 10), p2, vec![]),
        local_fun(("m", 1, 4), (3, 5), p1, vec![]),
        local_fun(("m", 4, 1), (3, 5), p1, vec![]),
        local_fun(("m", 2, 2), (4, 30), p1, vec![int(1)]),
        local_fun(("m", 2, 2), (4, 30), p2, vec![int(2)]),
        local_fun(("m", 2, 2), (4, 30), p1, vec![int(1), int(0)]),
        local_fun(("m", 3, 3), (5, 40), p1, vec![int(9)]),
        local_fun(("m", 3, 3), (5, 40), p1, vec![int(0), int(0)]),
        local_fun(("a", 7, 7), (6, 1), p2, vec![a("x")]),
        local_fun(("z", 0, 0), (7, 1), p1, vec![]),
    ]
}

fn numbers() -> Vec<Term> {
    let two_64 = pow2(64);
    vec![
        Term::from(-pow2(1100)),
        float(-1.0e300),
        Term::from(-pow2(70)),
        Term::from(-pow2(64) - 1),
        float(-18446744073709551616.0),
        Term::from(i128::from(i64::MIN) - 1),
        int(i64::MIN),
        int(-(1 << 59)),
        int(-(1 << 59) - 1),
        int(-1_000_000),
        float(-2.5),
        int(-2),
        int(-1),
        float(-0.5),
        float(-5.0e-324),
        int(0),
        float(5.0e-324),
        float(0.5),
        int(1),
        float(1.5),
        int(2),
        float(2.5),
        int(255),
        int(256),
        int(1 << 31),
        // Around the largest small integer on a 64-bit emulator (2^59 - 1).
        int((1 << 59) - 1),
        int(1 << 59),
        // The float just above 2^59.
        float(576460752303423616.0),
        // 2^53 + 1 against its nearest float 2^53: not equal.
        int((1 << 53) + 1),
        float(9007199254740992.0),
        int(i64::MAX),
        float(9223372036854777856.0),
        Term::from(two_64.clone() + 1),
        // The float just above 2^64.
        float(18446744073709555712.0),
        Term::from(two_64.clone() + 4097),
        // 10^300 + 10^284 rounds to the float 1e300 but is greater than it.
        Term::from(BigInt::from(10).pow(300) + BigInt::from(10).pow(284)),
        float(1.0e300),
        big(&format!("1{}", "0".repeat(300))),
        float(f64::MAX),
        Term::from(pow2(1100)),
    ]
}

fn atoms() -> Vec<Term> {
    [
        "",
        "A",
        "Z",
        "a",
        "ab",
        "b",
        "nonode@nohost",
        "true",
        "zz",
        "é",
        "λ",
        "aé",
        "az",
    ]
    .into_iter()
    .map(a)
    .collect()
}

fn binaries() -> Vec<Term> {
    vec![
        Term::binary(""),
        Term::binary([0]),
        Term::binary([0, 0]),
        Term::binary([1]),
        Term::binary([1, 0]),
        Term::binary([0x80]),
        Term::binary([0xFF]),
        Term::binary("abc"),
        Term::binary("abd"),
        bits(&[0], 1),
        bits(&[0x80], 1),
        bits(&[0x80], 2),
        bits(&[0xC0], 2),
        bits(&[0xA0], 3),
        bits(&[1, 0x80], 1),
        bits(&[0xFF, 0xFE], 7),
        bits(&[0, 0], 1),
    ]
}

fn containers() -> Vec<Term> {
    let p = Term::Pid(Pid::new(Atom::from("a@host"), 1, 0, 2));
    vec![
        tuple([]),
        tuple([int(9)]),
        tuple([a("a")]),
        tuple([int(0), int(0)]),
        tuple([int(1), a("b")]),
        tuple([a("a"), int(1)]),
        tuple([int(1), int(2), int(3)]),
        tuple([tuple([]), Term::NIL]),
        // An equal first element (1 == 1.0) leaves the second to decide.
        tuple([int(1), float(2.0)]),
        tuple([float(1.0), int(1)]),
        tuple([p.clone(), Term::binary("x")]),
        Term::NIL,
        list([int(1)]),
        list([int(1), int(2)]),
        list([int(1), int(2), int(3)]),
        list([int(2)]),
        list([float(1.0), int(3)]),
        list([a("a")]),
        list([Term::NIL]),
        list([list([int(1)])]),
        Term::charlist("abc"),
        Term::list_with_tail(vec![int(1)], int(2)),
        Term::list_with_tail(vec![int(1)], a("b")),
        Term::list_with_tail(vec![int(1), int(2)], int(3)),
        Term::list_with_tail(vec![int(1)], Term::binary("")),
        Term::list_with_tail(vec![a("a")], tuple([])),
        Term::list_with_tail(vec![int(0)], int(9)),
        map([]),
        map([(a("a"), int(1))]),
        map([(a("a"), int(2))]),
        map([(a("b"), int(0))]),
        map([(int(1), a("a"))]),
        map([(int(2), a("a"))]),
        map([(float(1.0), a("a"))]),
        map([(float(0.5), a("a"))]),
        // Map keys order integers before floats, also inside other terms.
        map([(tuple([int(2)]), a("a"))]),
        map([(tuple([float(1.0)]), a("a"))]),
        map([(list([int(3)]), a("a"))]),
        map([(list([float(0.5)]), a("a"))]),
        map([(a("a"), int(1)), (a("b"), int(2))]),
        map([(a("a"), int(1)), (a("c"), int(0))]),
        map([(a("a"), float(1.0)), (a("b"), int(1))]),
        map([(int(1), a("x")), (float(2.0), a("y"))]),
        map([(int(2), a("x")), (float(1.0), a("y"))]),
        map([(int(1), a("x")), (int(2), a("y"))]),
        map([(int(1), int(1)), (a("k"), p)]),
        // Maps of over 32 pairs are hash tries in Erlang.
        Term::map((0..33).map(|k| (int(k), int(0)))),
        Term::map((0..33).map(|k| (int(k), int(if k == 20 { 1 } else { 0 })))),
        Term::map((0..32).map(|k| (int(k), int(0))).chain([(int(40), int(0))])),
        Term::map(
            (0..32)
                .map(|k| (int(k), int(0)))
                .chain([(float(0.5), int(0))]),
        ),
        Term::map(
            (1..33)
                .map(|k| (int(k), int(0)))
                .chain([(float(0.5), int(0))]),
        ),
        Term::map((0..33).map(|k| (a(&format!("k{k}")), int(k)))),
        Term::map((0..34).map(|k| (int(k), int(0)))),
    ]
}

/// Everything `lists:sort/1` sorts: no two of these are `==` in Erlang
/// without being the same term.
fn terms() -> Vec<Term> {
    let mut all = Vec::new();
    all.extend(numbers());
    all.extend(atoms());
    all.extend(refs());
    all.extend(funs());
    all.extend(ports());
    all.extend(pids());
    all.extend(binaries());
    all.extend(containers());
    // Identifiers and numbers inside tuples, so that the element order
    // matters below the top level too.
    let inner: Vec<Term> = pids()
        .into_iter()
        .step_by(3)
        .chain(refs().into_iter().step_by(4))
        .chain(numbers().into_iter().step_by(2))
        .map(|t| tuple([a("k"), t]))
        .collect();
    all.extend(inner);
    // A deterministic shuffle, so that neither side starts from sorted.
    let n = all.len();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    for i in (1..n).rev() {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        all.swap(i, (x % (i as u64 + 1)) as usize);
    }
    all
}

/// Pairs Erlang finds equal (`==`) although they are different terms, in
/// the order Rust gives them.
fn ties() -> Vec<(Term, Term)> {
    let two_64 = pow2(64);
    vec![
        (int(1), float(1.0)),
        (int(-3), float(-3.0)),
        (int(0), float(-0.0)),
        // OTP 25's `==` (and `=:=`) does not tell -0.0 from 0.0.
        (float(-0.0), float(0.0)),
        (Term::from(two_64.clone()), float(18446744073709551616.0)),
        (Term::from(-two_64), float(-18446744073709551616.0)),
        (int(1 << 59), float(576460752303423488.0)),
        (tuple([int(1), int(2)]), tuple([float(1.0), int(2)])),
        (tuple([int(1), float(2.0)]), tuple([float(1.0), float(2.0)])),
        (list([int(1)]), list([float(1.0)])),
        (
            Term::list_with_tail(vec![a("a")], int(1)),
            Term::list_with_tail(vec![a("a")], float(1.0)),
        ),
        (map([(a("a"), int(1))]), map([(a("a"), float(1.0))])),
        (
            map([(int(1), int(1)), (a("b"), float(2.0))]),
            map([(int(1), float(1.0)), (a("b"), int(2))]),
        ),
        // Map keys: OTP 25 does not tell -0.0 from 0.0 there either.
        (map([(float(-0.0), a("a"))]), map([(float(0.0), a("a"))])),
        // The same number in fewer words: Erlang compares reference
        // numbers, not their lengths.
        (
            Term::Ref(Ref::new(Atom::from("a@host"), 2, &[5]).unwrap()),
            Term::Ref(Ref::new(Atom::from("a@host"), 2, &[5, 0, 0]).unwrap()),
        ),
        // Closures that differ only where Erlang does not look: the pid
        // that made them (the one with the smaller serial and number, then
        // node, first).
        (
            local_fun(("m", 8, 8), (8, 80), fun_pids().1, vec![int(1)]),
            local_fun(("m", 8, 8), (8, 80), fun_pids().0, vec![int(1)]),
        ),
        // ... and a tie within a tie: the first difference decides.
        (
            local_fun(("m", 9, 9), (9, 90), fun_pids().0, vec![int(1)]),
            local_fun(("m", 9, 9), (9, 90), fun_pids().1, vec![float(1.0)]),
        ),
    ]
}

// ---------------------------------------------------------------- Erlang's answers

/// What `erl` answered.
struct Answers {
    /// The terms `lists:sort/1` sorted, as sent.
    terms: Vec<Term>,
    /// `terms` and then every tie, one after the other.
    all: Vec<Term>,
    /// `lists:sort(terms)`.
    sorted: Vec<Term>,
    /// The comparison of `all[i]` with `all[j]` at `i * all.len() + j`.
    pairs: Vec<u8>,
}

fn answers() -> &'static Answers {
    static ANSWERS: OnceLock<Answers> = OnceLock::new();
    ANSWERS.get_or_init(|| {
        let terms = terms();
        let mut all = terms.clone();
        for (x, y) in ties() {
            all.push(x);
            all.push(y);
        }
        let input = encode(&Term::tuple([
            Term::from(terms.len()),
            Term::List(all.iter().map(|t| Term::binary(encode(t))).collect()),
        ]));
        let output = decode(&run_erl(&input)).expect("decode what erl wrote");
        let (sorted, pairs) = match output.as_tuple() {
            Some([ok, Term::List(sorted), Term::Binary(pairs)]) if ok.is_atom("ok") => {
                (sorted, pairs)
            }
            Some([undecodable, Term::List(bad)]) if undecodable.is_atom("undecodable") => {
                let mut list = String::new();
                for i in bad {
                    let i = i.as_i64().expect("an index") as usize;
                    let _ = writeln!(list, "  {}", all[i]);
                }
                panic!("binary_to_term/1 refuses these terms Rust encoded:\n{list}");
            }
            _ => panic!("erl wrote {output}, not {{ok, Sorted, Pairs}}"),
        };
        assert_eq!(
            pairs.len(),
            all.len() * all.len(),
            "erl compared the wrong number of pairs"
        );
        Answers {
            terms,
            all,
            sorted: sorted.clone(),
            pairs: pairs.to_vec(),
        }
    })
}

fn numbered(terms: &[Term]) -> String {
    let mut s = String::new();
    for (i, t) in terms.iter().enumerate() {
        let _ = writeln!(s, "  {i:3}: {t}");
    }
    s
}

// ---------------------------------------------------------------- the tests

#[test]
fn the_terms_cover_every_class_and_enough_pairs() {
    let answers = answers();
    let terms = &answers.terms;
    assert!(terms.len() > 280, "only {} terms", terms.len());
    let count = |p: fn(&Term) -> bool| terms.iter().filter(|t| p(t)).count();
    assert!(count(|t| matches!(t, Term::Pid(_))) >= 30);
    assert!(count(|t| matches!(t, Term::Ref(_))) >= 30);
    assert!(count(|t| matches!(t, Term::Port(_))) >= 20);
    assert!(count(|t| matches!(t, Term::Fun(Fun::Local(_)))) >= 10);
    assert!(count(|t| matches!(t, Term::Fun(Fun::Export { .. }))) >= 5);
    assert!(count(|t| matches!(t, Term::BigInt(_))) >= 8);
    assert!(count(|t| matches!(t, Term::Float(_))) >= 15);
    assert!(count(|t| matches!(t, Term::BitBinary(_))) >= 5);
    assert!(count(|t| matches!(t, Term::ImproperList(..))) >= 5);
    assert!(count(|t| matches!(t, Term::Map(m) if m.len() > 32)) >= 5);
    // Erlang read back every term as it was sent (a term it changed on the
    // way in would show up here as a missing or extra one).
    // (Matched with `==` alone, so that this holds whatever the order.)
    let mut theirs: Vec<Option<&Term>> = answers.sorted.iter().map(Some).collect();
    for t in terms {
        let slot = theirs.iter_mut().find(|s| s.is_some_and(|u| u == t));
        match slot {
            Some(s) => *s = None,
            None => panic!("Erlang's sorted list lacks {t}"),
        }
    }
    let extra: Vec<&Term> = theirs.into_iter().flatten().collect();
    assert!(
        extra.is_empty(),
        "Erlang's sorted list has terms Rust did not send: {extra:?}"
    );
}

#[test]
fn rust_sorts_as_erlang_lists_sort_does() {
    let answers = answers();
    let mut ours = answers.terms.clone();
    ours.sort();
    if ours != answers.sorted {
        let first = ours
            .iter()
            .zip(&answers.sorted)
            .position(|(x, y)| x != y)
            .unwrap_or(ours.len().min(answers.sorted.len()));
        panic!(
            "Rust's sort() differs from Erlang's lists:sort/1 first at position {first}: \
             Rust has {}, Erlang {}\nRust's order:\n{}\nErlang's order:\n{}",
            ours[first],
            answers.sorted[first],
            numbered(&ours),
            numbered(&answers.sorted)
        );
    }
}

#[test]
fn every_pair_compares_as_in_erlang() {
    let answers = answers();
    let all = &answers.all;
    let n = all.len();
    // The terms after the sorted ones come from `ties()`.
    let base = answers.terms.len();
    let mut failures = String::new();
    let mut mismatches = 0;
    let mut compared = 0;
    for (i, x) in all.iter().enumerate() {
        for (j, y) in all.iter().enumerate() {
            let erlang = answers.pairs[i * n + j];
            let ours = x.cmp(y);
            assert_eq!(
                y.cmp(x),
                ours.reverse(),
                "Rust's order is not antisymmetric: {x}, {y}"
            );
            let agrees = match erlang {
                b'<' => ours == Ordering::Less,
                b'>' => ours == Ordering::Greater,
                // Erlang's `==` on different terms: Rust orders them by
                // their exact difference (how is checked in
                // `ties_are_equal_in_erlang_and_ordered_in_rust`). Only
                // terms of `ties()` may be such a pair: the sorted list
                // must have one right order.
                b'=' if x == y => ours == Ordering::Equal,
                b'=' => ours != Ordering::Equal && (i >= base || j >= base),
                other => panic!("erl answered {:?} for a pair", other as char),
            };
            compared += 1;
            if !agrees {
                mismatches += 1;
                if mismatches <= 60 {
                    let _ = writeln!(
                        failures,
                        "  {x}  vs  {y}: Erlang {}, Rust {ours:?}",
                        erlang as char
                    );
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{mismatches} of {compared} pairs compare differently in Rust and Erlang \
         (the first {}):\n{failures}",
        mismatches.min(60)
    );
}

#[test]
fn ties_are_equal_in_erlang_and_ordered_in_rust() {
    let answers = answers();
    let all = &answers.all;
    let n = all.len();
    let base = answers.terms.len();
    let mut failures = String::new();
    for (k, (x, y)) in ties().iter().enumerate() {
        let (i, j) = (base + 2 * k, base + 2 * k + 1);
        assert!(all[i] == *x && all[j] == *y);
        for (p, q, erlang) in [
            (i, j, answers.pairs[i * n + j]),
            (j, i, answers.pairs[j * n + i]),
        ] {
            if erlang != b'=' {
                let _ = writeln!(
                    failures,
                    "  {} == {} is false in Erlang ({})",
                    all[p], all[q], erlang as char
                );
            }
        }
        if x.cmp(y) != Ordering::Less || y.cmp(x) != Ordering::Greater || x == y {
            let _ = writeln!(failures, "  Rust does not order {x} before {y}");
        }
    }
    assert!(failures.is_empty(), "ties:\n{failures}");
}
