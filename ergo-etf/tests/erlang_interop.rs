//! Interoperability with real Erlang/OTP: the codec is checked against the
//! bytes `erl` itself writes and reads, never against a fake.
//!
//! Two `erl` runs serve the whole file (each shared by several tests):
//!
//! - `tests/erlang/ergo_interop_corpus.erl` writes `term_to_binary/1,2`
//!   output for a corpus covering every tag OTP 25 writes, each term in four
//!   forms (default, `{minor_version, 2}`, `compressed`, compressed with
//!   `{minor_version, 2}`) plus its `io_lib:format("~w")` text; and terms
//!   naming atoms that only that Erlang process has made.
//! - `tests/erlang/ergo_interop_check.erl` reads terms Rust encoded, runs
//!   `binary_to_term/1` on each, compares the result with `=:=` against the
//!   term an Erlang expression denotes (mostly the Rust term's own `Display`
//!   text), and compares Erlang's own encoding of that term with Rust's bytes.
//!
//! `erl` runs plain and non-distributed (no `-sname`, no EPMD), in its own
//! temporary directory, exchanging data through files, so the tests can run
//! in parallel. Without `erl` on `PATH` every test here fails: run
//! `./scripts/test.sh`, which installs Erlang.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

mod common;
use common::{TempDir, run_erl_eval};

use ergo_etf::{
    Atom, BigInt, BitBinary, Bytes, DecodeError, DecodeErrorKind, DecodeOptions, EncodeOptions,
    Fun, Pid, Port, Ref, Term, decode, decode_bytes, encode, encode_vectored, tags,
};

// ---------------------------------------------------------------- running erl

/// The Erlang program that writes the corpus.
const CORPUS_ERL: &str = include_str!("erlang/ergo_interop_corpus.erl");
/// The Erlang program that checks what Rust encoded.
const CHECK_ERL: &str = include_str!("erlang/ergo_interop_check.erl");

/// How long one `erl` run may take before the test gives up on it.
const ERL_TIMEOUT: Duration = Duration::from_secs(120);

/// Compiles the module named by the first plain argument in memory, loads it
/// and calls its `main/1` with the other plain arguments. Any failure prints
/// the reason to stderr and exits with status 1.
const ERL_EVAL: &str = "[Src | Args] = init:get_plain_arguments(), \
    try \
        {Mod, Bin} = case compile:file(Src, [binary, return_errors]) of \
            {ok, M, B} -> {M, B}; \
            E -> erlang:error({compile_failed, E}) \
        end, \
        {module, Mod} = code:load_binary(Mod, Src, Bin), \
        Mod:main(Args), \
        halt(0) \
    catch C:R:S -> \
        io:format(standard_error, \"~tp:~tp~n~tp~n\", [C, R, S]), \
        halt(1) \
    end.";

/// Runs `module` (Erlang source) in a fresh, non-distributed `erl`, calling
/// `module:main(args)`, and waits for it to exit successfully.
fn run_erl(dir: &TempDir, module: &str, source: &str, args: &[&Path]) {
    let src = dir.path().join(format!("{module}.erl"));
    std::fs::write(&src, source).expect("write the Erlang module");
    let mut all = vec![src.as_path()];
    all.extend_from_slice(args);
    run_erl_eval(
        "the codec",
        &format!("running {module}"),
        dir.path(),
        ERL_EVAL,
        &all,
        ERL_TIMEOUT,
    );
}

// ---------------------------------------------------------------- the corpus

/// Keyed byte strings as the corpus program writes them:
/// `<<KeyLen:16, Key, ValLen:32, Val>>`, in order.
struct Records {
    list: Vec<(String, Vec<u8>)>,
    index: HashMap<String, usize>,
}

impl Records {
    fn parse(mut data: &[u8]) -> Records {
        fn take<'a>(data: &mut &'a [u8], n: usize) -> &'a [u8] {
            assert!(data.len() >= n, "truncated corpus file");
            let (head, tail) = data.split_at(n);
            *data = tail;
            head
        }
        let mut list = Vec::new();
        while !data.is_empty() {
            let klen = u16::from_be_bytes(take(&mut data, 2).try_into().unwrap()) as usize;
            let key = String::from_utf8(take(&mut data, klen).to_vec()).expect("UTF-8 key");
            let vlen = u32::from_be_bytes(take(&mut data, 4).try_into().unwrap()) as usize;
            list.push((key, take(&mut data, vlen).to_vec()));
        }
        let index = list
            .iter()
            .enumerate()
            .map(|(i, (k, _))| (k.clone(), i))
            .collect();
        Records { list, index }
    }

    fn get(&self, key: &str) -> &[u8] {
        match self.index.get(key) {
            Some(&i) => &self.list[i].1,
            None => panic!("the Erlang corpus has no record {key:?}"),
        }
    }

    fn text(&self, key: &str) -> &str {
        std::str::from_utf8(self.get(key)).expect("UTF-8 text from erl")
    }

    /// The names of the ordinary corpus terms (each has `t2b`, `v2`, `z` and
    /// `zv2` forms), in corpus order.
    fn terms(&self) -> Vec<&str> {
        self.list
            .iter()
            .filter_map(|(k, _)| k.strip_suffix("/t2b"))
            .filter(|name| !name.starts_with("unseen:") && *name != "floats")
            .collect()
    }
}

/// The corpus, written by one `erl` run shared by every test that needs it.
fn erlang_corpus() -> &'static Records {
    static CORPUS: OnceLock<Records> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let dir = TempDir::new("corpus");
        let out = dir.path().join("corpus.bin");
        run_erl(&dir, "ergo_interop_corpus", CORPUS_ERL, &[&out]);
        let data = std::fs::read(&out).expect("read the corpus erl wrote");
        Records::parse(&data)
    })
}

/// Fails with the first differing offset and the bytes around it, so that a
/// mismatch in a megabyte term stays readable.
#[track_caller]
fn assert_same_bytes(what: &str, ours: &[u8], erlang: &[u8]) {
    if ours == erlang {
        return;
    }
    let at = ours
        .iter()
        .zip(erlang)
        .position(|(a, b)| a != b)
        .unwrap_or(ours.len().min(erlang.len()));
    let window = |b: &[u8]| b[at.saturating_sub(8)..(at + 24).min(b.len())].to_vec();
    panic!(
        "{what}: Rust's bytes differ from Erlang's at offset {at} (Rust {} bytes, Erlang {})\n  \
         Rust:   ..{:?}\n  Erlang: ..{:?}",
        ours.len(),
        erlang.len(),
        window(ours),
        window(erlang)
    );
}

/// Fails with both terms in Erlang syntax, cut short, so that a mismatch in
/// a megabyte term stays readable.
#[track_caller]
fn assert_same_term(what: &str, ours: &Term, expected: &Term) {
    if ours != expected {
        let clip = |t: &Term| t.to_string().chars().take(400).collect::<String>();
        panic!(
            "{what}: terms differ\n  got:      {}\n  expected: {}",
            clip(ours),
            clip(expected)
        );
    }
}

/// Decodes Erlang's bytes both ways (copying and sharing) and checks the two
/// agree.
#[track_caller]
fn decode_erlang(what: &str, bytes: &[u8]) -> Term {
    let t =
        decode(bytes).unwrap_or_else(|e| panic!("{what}: Rust cannot decode Erlang's bytes: {e}"));
    let shared = decode_bytes(&Bytes::copy_from_slice(bytes))
        .unwrap_or_else(|e| panic!("{what}: decode_bytes fails where decode succeeds: {e}"));
    assert_same_term(&format!("{what}: decode_bytes"), &shared, &t);
    t
}

// ---------------------------------------------------------------- 1. Erlang -> Rust

#[test]
fn reencoding_erlang_output_is_byte_identical() {
    let corpus = erlang_corpus();
    let names = corpus.terms();
    assert!(names.len() > 90, "the corpus is too small: {names:?}");
    for name in names {
        let what = format!("{name} (term_to_binary/1)");
        let erlang = corpus.get(&format!("{name}/t2b"));
        let term = decode_erlang(&what, erlang);
        assert_same_bytes(&what, &encode(&term), erlang);
        assert_same_bytes(
            &format!("{what}, vectored"),
            &encode_vectored(&term, 64).concat(),
            erlang,
        );
    }
}

#[test]
fn reencoding_erlang_minor_version_2_output_is_byte_identical() {
    let corpus = erlang_corpus();
    let v2 = EncodeOptions::new().minor_version(2);
    for name in corpus.terms() {
        let what = format!("{name} (term_to_binary/2 with {{minor_version, 2}})");
        let erlang = corpus.get(&format!("{name}/v2"));
        let term = decode_erlang(&what, erlang);
        assert_same_bytes(&what, &v2.encode(&term), erlang);
        // The atom encoding differs; the term does not.
        let plain = decode_erlang(name, corpus.get(&format!("{name}/t2b")));
        assert_same_term(&what, &term, &plain);
    }
}

#[test]
fn minor_version_0_output_with_string_floats_decodes_to_the_same_term() {
    // {minor_version, 0} writes floats as FLOAT_EXT: 31 bytes of "%.20e" text.
    let corpus = erlang_corpus();
    let mut string_floats = 0;
    for name in corpus.terms() {
        let plain = decode_erlang(name, corpus.get(&format!("{name}/t2b")));
        let bytes = corpus.get(&format!("{name}/v0"));
        if bytes.get(1) == Some(&tags::FLOAT) {
            string_floats += 1;
        }
        let what = format!("{name} (term_to_binary/2 with [{{minor_version, 0}}])");
        assert_same_term(&what, &decode_erlang(&what, bytes), &plain);
    }
    assert!(
        string_floats >= 3,
        "only {string_floats} top-level floats were written with FLOAT_EXT"
    );
}

#[test]
fn compressed_erlang_output_decodes_to_the_uncompressed_term() {
    let corpus = erlang_corpus();
    let mut compressed = 0;
    for name in corpus.terms() {
        let plain = decode_erlang(name, corpus.get(&format!("{name}/t2b")));
        for (form, opts) in [
            ("z", "[compressed]"),
            ("zv2", "[{compressed, 9}, {minor_version, 2}]"),
        ] {
            let what = format!("{name} (term_to_binary/2 with {opts})");
            let bytes = corpus.get(&format!("{name}/{form}"));
            if bytes[1] == tags::COMPRESSED {
                compressed += 1;
            }
            assert_same_term(&what, &decode_erlang(&what, bytes), &plain);
        }
    }
    // Erlang keeps the compressed form only when it is smaller; enough terms
    // are large for this to be exercised properly.
    assert!(
        compressed >= 20,
        "only {compressed} corpus forms were compressed"
    );
}

#[test]
fn erlang_corpus_exercises_every_tag_otp_25_writes() {
    use ergo_etf::tags::*;
    let corpus = erlang_corpus();
    // (term, the tag of the outermost term in the default form and with
    // {minor_version, 2}).
    let expected: &[(&str, u8, u8)] = &[
        ("int_0", SMALL_INTEGER, SMALL_INTEGER),
        ("int_256", INTEGER, INTEGER),
        ("int_minus_1", INTEGER, INTEGER),
        ("int_2_31", SMALL_BIG, SMALL_BIG),
        ("int_minus_2_31_minus_1", SMALL_BIG, SMALL_BIG),
        ("int_2_2039", SMALL_BIG, SMALL_BIG),
        ("int_2_2040", LARGE_BIG, LARGE_BIG),
        ("float_minus_0", NEW_FLOAT, NEW_FLOAT),
        // OTP 25 writes Latin-1 atoms as ATOM_EXT; OTP 26 (minor version 2)
        // writes every atom in UTF-8.
        ("atom_ok", ATOM, SMALL_ATOM_UTF8),
        ("atom_e_acute", ATOM, SMALL_ATOM_UTF8),
        ("atom_255_e_acutes", ATOM, ATOM_UTF8),
        ("atom_lambda", SMALL_ATOM_UTF8, SMALL_ATOM_UTF8),
        ("atom_255_lambdas", ATOM_UTF8, ATOM_UTF8),
        ("binary_small", BINARY, BINARY),
        ("bits_1_3", BIT_BINARY, BIT_BINARY),
        ("pid_self", NEW_PID, NEW_PID),
        ("port_first", NEW_PORT, NEW_PORT),
        ("port_remote_v4", V4_PORT, V4_PORT),
        ("ref_make_ref", NEWER_REFERENCE, NEWER_REFERENCE),
        ("ref_alias", NEWER_REFERENCE, NEWER_REFERENCE),
        ("tuple_255", SMALL_TUPLE, SMALL_TUPLE),
        ("tuple_256", LARGE_TUPLE, LARGE_TUPLE),
        ("nil", NIL, NIL),
        ("string_65535", STRING, STRING),
        ("string_65536", LIST, LIST),
        ("improper_1_2", LIST, LIST),
        ("map_one", MAP, MAP),
        ("fun_export", EXPORT, EXPORT),
        ("fun_closure", NEW_FUN, NEW_FUN),
    ];
    for &(name, default_tag, v2_tag) in expected {
        let t2b = corpus.get(&format!("{name}/t2b"));
        let v2 = corpus.get(&format!("{name}/v2"));
        assert_eq!(t2b[0], tags::VERSION, "{name}");
        assert_eq!(t2b[1], default_tag, "{name}: tag of term_to_binary/1");
        assert_eq!(v2[1], v2_tag, "{name}: tag with {{minor_version, 2}}");
    }
    assert_eq!(corpus.get("binary_1mb/z")[1], tags::COMPRESSED);
    // What the corpus terms decode to.
    let term = |name: &str| decode(corpus.get(&format!("{name}/t2b"))).unwrap();
    assert_eq!(term("float_minus_0"), Term::Float(-0.0));
    assert_ne!(term("float_minus_0"), Term::Float(0.0));
    assert_eq!(term("float_5e_minus_324"), Term::Float(5.0e-324));
    assert_eq!(term("int_2_63_minus_1"), Term::Int(i64::MAX));
    assert_eq!(term("int_minus_2_63"), Term::Int(i64::MIN));
    assert_eq!(term("int_2_64_minus_1"), Term::from(u64::MAX));
    assert_eq!(term("int_2_2000"), Term::from(pow2(2000)));
    assert_eq!(term("int_minus_2_2000"), Term::from(-pow2(2000)));
    assert_eq!(term("atom_lambda"), Term::atom("λ"));
    assert_eq!(term("atom_255_lambdas"), Term::atom(&"λ".repeat(255)));
    assert_eq!(term("atom_255_e_acutes"), Term::atom(&"é".repeat(255)));
    assert_eq!(term("atom_empty"), Term::Atom(Atom::EMPTY));
    assert_eq!(
        term("bits_1_2_3_5"),
        Term::BitBinary(BitBinary::new(vec![1, 2, 3 << 3], 5).unwrap())
    );
    assert_eq!(term("string_65536"), Term::List(vec![Term::Int(97); 65536]));
    assert_eq!(
        term("improper_a_b_binary"),
        Term::list_with_tail(vec![Term::atom("a"), Term::atom("b")], Term::binary(""))
    );
    assert_eq!(
        term("tuple_70000").as_tuple().map(<[Term]>::len),
        Some(70_000)
    );
    assert_eq!(
        term("binary_1mb").as_binary().map(Bytes::len),
        Some(1 << 20)
    );
    assert_eq!(
        term("map_1000_mixed_keys").as_map().map(|m| m.len()),
        Some(1000)
    );
    let Term::Pid(pid) = term("pid_self") else {
        panic!("self() is not a pid")
    };
    assert_eq!(pid.node, Atom::NONODE);
    let Term::Fun(Fun::Local(closure)) = term("fun_closure") else {
        panic!("a closure is not a local fun")
    };
    assert_eq!(closure.module.as_str(), "ergo_interop_corpus");
    assert_eq!(closure.free, [Term::Int(42)]);
}

// ---------------------------------------------------------------- 2. Rust -> Erlang

/// A term built in Rust and the Erlang expression that denotes it.
struct RustCase {
    name: String,
    term: Term,
    expr: String,
    /// Whether Erlang's `term_to_binary/2` of the term gives Rust's bytes:
    /// false only for maps whose pairs Rust holds in another order than
    /// Erlang would (Rust keeps insertion order).
    erlang_order: bool,
}

/// A case whose expression is the term's own `Display` text.
fn case(name: &str, term: Term) -> RustCase {
    RustCase {
        name: name.to_owned(),
        expr: term.to_string(),
        term,
        erlang_order: true,
    }
}

/// A case with a hand-written Erlang expression.
fn case_expr(name: &str, term: Term, expr: &str) -> RustCase {
    RustCase {
        expr: expr.to_owned(),
        ..case(name, term)
    }
}

fn pow2(n: u32) -> BigInt {
    BigInt::from(1) << n
}

fn a(name: &str) -> Term {
    Term::atom(name)
}

/// The 1,000-key map of mixed key types that the corpus also builds.
fn mixed_map(n: i64) -> Term {
    Term::map((1..=n).map(|k| {
        let key = match k % 6 {
            0 => Term::Int(k),
            1 => a(&format!("key_{k}")),
            2 => Term::binary(k.to_string()),
            3 => Term::tuple([Term::Int(k), a("tuple")]),
            4 => Term::Float(k as f64 + 0.5),
            _ => Term::list([Term::Int(k), Term::Int(k + 1)]),
        };
        (key, Term::Int(k))
    }))
}

fn rust_cases() -> Vec<RustCase> {
    let megabyte: Vec<u8> = (0..1 << 20).map(|i| i as u8).collect();
    let nonode = Atom::NONODE;
    let mut cases = vec![
        case("int_0", Term::Int(0)),
        case("int_255", Term::Int(255)),
        case("int_256", Term::Int(256)),
        case("int_minus_1", Term::Int(-1)),
        case("int_i32_max", Term::Int(i32::MAX.into())),
        case("int_i32_min", Term::Int(i32::MIN.into())),
        case("int_2_31", Term::Int(1 << 31)),
        case("int_minus_2_31_minus_1", Term::Int(-(1 << 31) - 1)),
        case("int_i64_max", Term::Int(i64::MAX)),
        case("int_i64_min", Term::Int(i64::MIN)),
        case("int_u64_max", Term::from(u64::MAX)),
        case("int_2_64", Term::from(1u128 << 64)),
        case("int_minus_2_64", Term::from(-(1i128 << 64))),
        case("int_2_2000", Term::from(pow2(2000))),
        case("int_minus_2_2000", Term::from(-pow2(2000))),
        case("int_2_2039", Term::from(pow2(2039))),
        case("int_2_2040", Term::from(pow2(2040))),
        case("float_0", Term::Float(0.0)),
        // `=:=` in OTP 25 does not tell -0.0 from 0.0; the byte comparison
        // does.
        case("float_minus_0", Term::Float(-0.0)),
        case("float_1", Term::Float(1.0)),
        case("float_1e300", Term::Float(1.0e300)),
        case("float_5e_minus_324", Term::Float(5.0e-324)),
        case("float_minus_1_5", Term::Float(-1.5)),
        case("float_0_1", Term::Float(0.1)),
        case("float_1000", Term::Float(1000.0)),
        case("float_max", Term::Float(f64::MAX)),
        case("atom_empty", a("")),
        case("atom_ok", a("ok")),
        case("atom_e_acute", a("é")),
        case("atom_lambda", a("λ")),
        case("atom_mixed", a("aéλ")),
        case("atom_255_lambdas", a(&"λ".repeat(255))),
        case("atom_255_e_acutes", a(&"é".repeat(255))),
        case("atom_255_ascii", a(&"z".repeat(255))),
        case("atom_elixir_foo", a("Elixir.Foo")),
        case("atom_with_space", a("hello world")),
        case("atom_reserved_word", a("end")),
        case("atom_with_quote", a("it's")),
        case("binary_empty", Term::binary("")),
        case("binary_small", Term::binary("hello")),
        case("binary_escapes", Term::binary("a\"b\\c\n")),
        case("binary_bytes", Term::binary([1, 2, 255])),
        case_expr(
            "binary_1mb",
            Term::Binary(megabyte.into()),
            "binary:copy(list_to_binary(lists:seq(0, 255)), 4096)",
        ),
        case(
            "bits_1_3",
            Term::BitBinary(BitBinary::new(vec![1 << 5], 3).unwrap()),
        ),
        case(
            "bits_1_2_3_5",
            Term::BitBinary(BitBinary::new(vec![1, 2, 3 << 3], 5).unwrap()),
        ),
        case_expr(
            "pid_local",
            Term::Pid(Pid::new(nonode, 42, 0, 0)),
            "list_to_pid(\"<0.42.0>\")",
        ),
        case_expr(
            "port_local",
            Term::Port(Port {
                node: nonode,
                id: 7,
                creation: 0,
            }),
            "list_to_port(\"#Port<0.7>\")",
        ),
        case_expr(
            "ref_local",
            Term::Ref(Ref::new(nonode, 0, &[1, 2, 3]).unwrap()),
            "list_to_ref(\"#Ref<0.3.2.1>\")",
        ),
        case("tuple_empty", Term::tuple([])),
        case(
            "tuple_small",
            Term::tuple([a("ok"), Term::binary("x"), Term::list([1.into()])]),
        ),
        case("tuple_300", Term::tuple((1..=300).map(Term::Int))),
        case_expr(
            "tuple_70000",
            Term::tuple((1..=70_000).map(Term::Int)),
            "list_to_tuple(lists:seq(1, 70000))",
        ),
        case("nil", Term::NIL),
        case("string_abc", Term::charlist("abc")),
        case(
            "string_bytes",
            Term::list([0.into(), 255.into(), 10.into()]),
        ),
        case_expr(
            "string_65535",
            Term::List(vec![Term::Int(97); 65_535]),
            "lists:duplicate(65535, $a)",
        ),
        case_expr(
            "string_65536",
            Term::List(vec![Term::Int(97); 65_536]),
            "lists:duplicate(65536, $a)",
        ),
        case("charlist_unicode", Term::charlist("λx")),
        case("list_with_256", Term::list([1.into(), 256.into()])),
        case(
            "list_mixed",
            Term::list([
                1.into(),
                a("a"),
                Term::binary("b"),
                Term::Float(2.5),
                Term::tuple([a("x")]),
                Term::NIL,
                Term::charlist("str"),
                (-5).into(),
                Term::from(pow2(70)),
                Term::map([(a("k"), a("v"))]),
            ]),
        ),
        case(
            "list_nested",
            Term::list([
                Term::list([1.into(), Term::list([2.into(), Term::list([3.into()])])]),
                Term::list([Term::NIL]),
            ]),
        ),
        case(
            "improper_1_2",
            Term::list_with_tail(vec![1.into()], 2.into()),
        ),
        case(
            "improper_a_b_binary",
            Term::list_with_tail(vec![a("a"), a("b")], Term::binary("")),
        ),
        case(
            "improper_string_atom",
            Term::list_with_tail(vec![97.into(), 98.into()], a("c")),
        ),
        case("map_empty", Term::map([])),
        case("map_one", Term::map([(a("a"), 1.into())])),
        // Built in Erlang's order for small maps (term order of the keys).
        case(
            "map_small",
            Term::map([
                (3.into(), Term::list([a("c")])),
                (a("a"), 1.into()),
                (a("b"), Term::binary("two")),
            ]),
        ),
        case(
            "map_nested",
            Term::map([
                (
                    a("a"),
                    Term::map([(a("b"), Term::map([(a("c"), Term::NIL)]))]),
                ),
                (Term::binary("k"), Term::map([])),
            ]),
        ),
        case(
            "map_int_and_float_keys",
            Term::map([(1.into(), a("int")), (Term::Float(1.0), a("float"))]),
        ),
        case(
            "map_map_key",
            Term::map([(Term::map([(a("a"), 1.into())]), a("x"))]),
        ),
        case(
            "fun_export",
            Term::Fun(Fun::Export {
                module: Atom::from("lists"),
                function: Atom::from("map"),
                arity: 2,
            }),
        ),
        case(
            "nested_everything",
            Term::tuple([
                a("ok"),
                Term::list([Term::map([(
                    a("key"),
                    Term::tuple([
                        1.into(),
                        Term::list_with_tail(vec![2.into(), 3.into()], 4.into()),
                    ]),
                )])]),
                Term::BitBinary(BitBinary::new(vec![1 << 5], 3).unwrap()),
                Term::from(pow2(100)),
                Term::Float(-0.5),
                a("λ"),
            ]),
        ),
    ];
    // Maps in an order Erlang would not write them in: equal, not the same
    // bytes.
    for (name, term) in [
        (
            "map_small_unsorted",
            Term::map([(a("b"), 2.into()), (a("a"), 1.into())]),
        ),
        (
            "map_33_keys",
            Term::map((1..=33).map(|k| (Term::Int(k), Term::Int(k)))),
        ),
        ("map_1000_mixed_keys", mixed_map(1000)),
    ] {
        cases.push(RustCase {
            erlang_order: false,
            ..case(name, term)
        });
    }
    cases
}

/// The encodings every Rust case is sent in: (form, minor version, options).
const FORMS: [(&str, u8, EncodeOptions); 4] = [
    ("default", 1, EncodeOptions::new()),
    ("v2", 2, EncodeOptions::new().minor_version(2)),
    ("z", 1, EncodeOptions::new().compressed(6)),
    (
        "zv2",
        2,
        EncodeOptions::new().minor_version(2).compressed(9),
    ),
];

/// What `erl` said about one Rust encoding.
struct Verdict {
    /// `equal` when `binary_to_term/1` gave exactly (`=:=`) the expected term.
    verdict: String,
    /// `same` when Erlang's own encoding of the term is Rust's bytes.
    bytes: String,
    /// The decoded term (or the error), depth-limited.
    detail: String,
    erlang_order: bool,
    compressed: bool,
}

/// Erlang's verdicts on every Rust case in every form, keyed by
/// `name/form`; one `erl` run shared by the tests that need them.
fn erlang_verdicts() -> &'static HashMap<String, Verdict> {
    static VERDICTS: OnceLock<HashMap<String, Verdict>> = OnceLock::new();
    VERDICTS.get_or_init(|| {
        let cases = rust_cases();
        let mut input = Vec::new();
        let mut compressed = HashMap::new();
        for c in &cases {
            for (form, minor, opts) in FORMS {
                let key = format!("{}/{form}", c.name);
                let bytes = opts.encode(&c.term);
                let plain = EncodeOptions::new().minor_version(minor).encode(&c.term);
                compressed.insert(key.clone(), bytes[1] == tags::COMPRESSED);
                input.extend_from_slice(&(key.len() as u16).to_be_bytes());
                input.extend_from_slice(key.as_bytes());
                input.extend_from_slice(&(c.expr.len() as u32).to_be_bytes());
                input.extend_from_slice(c.expr.as_bytes());
                input.push(minor);
                for b in [&bytes, &plain] {
                    input.extend_from_slice(&(b.len() as u32).to_be_bytes());
                    input.extend_from_slice(b);
                }
            }
        }
        let dir = TempDir::new("check");
        let in_path = dir.path().join("rust.bin");
        let out_path = dir.path().join("verdicts.txt");
        std::fs::write(&in_path, &input).expect("write Rust's terms");
        run_erl(
            &dir,
            "ergo_interop_check",
            CHECK_ERL,
            &[&in_path, &out_path],
        );
        let text = std::fs::read_to_string(&out_path).expect("read erl's verdicts");
        let order: HashMap<&str, bool> = cases
            .iter()
            .map(|c| (c.name.as_str(), c.erlang_order))
            .collect();
        let verdicts: HashMap<String, Verdict> = text
            .lines()
            .map(|line| {
                let mut f = line.splitn(4, '\t');
                let key = f.next().unwrap_or_default().to_owned();
                let verdict = f.next().unwrap_or_default().to_owned();
                let bytes = f.next().unwrap_or_default().to_owned();
                let detail = f.next().unwrap_or_default().to_owned();
                let name = key.split('/').next().unwrap_or_default();
                let v = Verdict {
                    verdict,
                    bytes,
                    detail,
                    erlang_order: order[name],
                    compressed: compressed[&key],
                };
                (key, v)
            })
            .collect();
        assert_eq!(
            verdicts.len(),
            cases.len() * FORMS.len(),
            "erl answered for {} of {} encodings",
            verdicts.len(),
            cases.len() * FORMS.len()
        );
        verdicts
    })
}

/// Asserts that Erlang decoded every Rust case in `form` to exactly the
/// expected term.
fn assert_erlang_decodes(form: &str) {
    let verdicts = erlang_verdicts();
    let mut failures = String::new();
    for c in rust_cases() {
        let v = &verdicts[&format!("{}/{form}", c.name)];
        if v.verdict != "equal" {
            let expr: String = c.expr.chars().take(200).collect();
            let _ = writeln!(
                failures,
                "  {} ({form}): {} — expected {expr}, binary_to_term/1 gave {}",
                c.name, v.verdict, v.detail
            );
        }
    }
    assert!(
        failures.is_empty(),
        "Erlang does not read back what Rust wrote:\n{failures}"
    );
}

#[test]
fn erlang_decodes_what_rust_encodes() {
    assert_erlang_decodes("default");
}

#[test]
fn erlang_decodes_what_rust_encodes_with_minor_version_2() {
    assert_erlang_decodes("v2");
}

#[test]
fn erlang_decodes_compressed_rust_output() {
    assert_erlang_decodes("z");
    assert_erlang_decodes("zv2");
    let verdicts = erlang_verdicts();
    let compressed = verdicts.values().filter(|v| v.compressed).count();
    assert!(
        compressed >= 10,
        "only {compressed} Rust encodings were compressed"
    );
}

#[test]
fn rust_bytes_are_erlangs_own_encoding_of_the_same_term() {
    let mut failures = String::new();
    let mut checked = 0;
    for (key, v) in erlang_verdicts() {
        if v.erlang_order {
            checked += 1;
            if v.bytes != "same" {
                let _ = writeln!(
                    failures,
                    "  {key}: term_to_binary/2 in Erlang gives other bytes"
                );
            }
        }
    }
    assert!(
        failures.is_empty(),
        "Rust's encoding differs from Erlang's own:\n{failures}"
    );
    let expected = rust_cases().iter().filter(|c| c.erlang_order).count() * FORMS.len();
    assert_eq!(checked, expected, "encodings compared");
}

// ---------------------------------------------------------------- 3. safe mode

/// An unseen-atom term of the corpus: its atom's name and its bytes.
fn unseen_term<'a>(corpus: &'a Records, what: &str) -> (String, &'a [u8]) {
    let name = corpus.text(&format!("unseen:{what}/name")).to_owned();
    (name, corpus.get(&format!("unseen:{what}/t2b")))
}

/// Checks safe decoding of bytes naming atom `name`, which Rust has never
/// made: refused without making the atom; then, once ordinary decoding has
/// made it, accepted, as `binary_to_term(B, [safe])` behaves.
fn check_safe_decoding(what: &str, name: &str, bytes: &[u8], opts: EncodeOptions) {
    let safe = DecodeOptions::new().safe(true);
    assert_eq!(
        Atom::existing(name),
        None,
        "{what}: Rust has seen {name:?} already"
    );
    let refused = Err(DecodeError::from(DecodeErrorKind::UnknownAtom {
        name: name.to_owned(),
    }));
    assert_eq!(
        safe.decode(bytes),
        refused,
        "{what}: safe decoding must refuse the unknown atom"
    );
    assert_eq!(
        safe.decode_bytes(&Bytes::copy_from_slice(bytes)),
        refused,
        "{what}: safe decode_bytes must refuse the unknown atom"
    );
    assert_eq!(
        Atom::existing(name),
        None,
        "{what}: refusing {name:?} must not have created it"
    );
    let term = decode(bytes).unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        Atom::existing(name).is_some(),
        "{what}: decoding did not make {name:?}"
    );
    assert_eq!(safe.decode(bytes).as_ref(), Ok(&term), "{what}");
    assert_same_bytes(what, &opts.encode(&term), bytes);
}

#[test]
fn safe_decoding_refuses_atoms_only_erlang_has_made() {
    let corpus = erlang_corpus();
    // The unknown atom alone, deep inside a map key, in UTF-8, as the node
    // of a pid, and as the module of a fun.
    for what in ["top", "deep", "utf8", "pid_node", "fun_module"] {
        let (name, bytes) = unseen_term(corpus, what);
        let opts = if what == "utf8" {
            EncodeOptions::new().minor_version(2)
        } else {
            EncodeOptions::new()
        };
        check_safe_decoding(what, &name, bytes, opts);
    }
}

#[test]
fn erlang_safe_mode_refuses_the_same_bytes() {
    let corpus = erlang_corpus();
    // Bytes naming an atom that neither side has ever made: Erlang's own
    // binary_to_term(B, [safe]) raised badarg for them, and Rust's safe
    // decoding refuses them too.
    assert_eq!(corpus.text("unseen:never/erlang_safe"), "badarg");
    let (name, bytes) = unseen_term(corpus, "never");
    check_safe_decoding("never", &name, bytes, EncodeOptions::new());
}

// ---------------------------------------------------------------- 4. Display

/// Corpus terms whose `Display` text is known to differ from
/// `io_lib:format("~w", [T])`, and why. `Display` is documented as Erlang
/// syntax, as `~w` writes it, with these deliberate differences:
///
/// - Pids, ports and references show their node's name
///   (`<nonode@nohost.9.0>`, `#Port<nonode@nohost.0>`,
///   `#Ref<nonode@nohost.1.2.3>`) where Erlang shows a node *index* local to
///   the printing VM (`<0.9.0>`); a Rust process has no such index.
/// - Lists of two or more printable characters print as strings (`"abc"`)
///   and binaries of printable text as `<<"hello">>`, as `~p` does; `~w`
///   prints `[97,98,99]` and `<<104,101,108,108,111>>`.
/// - Atoms with characters beyond Latin-1 print those characters (`'λ'`), as
///   `~tw` does; `~w` escapes them (`'\x{3BB}'`).
/// - Maps print their pairs in the order they hold them, which for a decoded
///   map is the order on the wire. For maps of more than 32 pairs Erlang
///   prints its internal order, the reverse of what `term_to_binary` writes.
const DISPLAY_DIFFERS: &[(&str, &str)] = &[
    ("pid_self", "node name, not index"),
    ("pid_spawned", "node name, not index"),
    ("pid_listed", "node name, not index"),
    ("pid_remote", "node name, not index"),
    ("port_first", "node name, not index"),
    ("port_remote", "node name, not index"),
    ("port_remote_v4", "node name, not index"),
    ("ref_make_ref", "node name, not index"),
    ("ref_alias", "node name, not index"),
    ("ref_monitor", "node name, not index"),
    ("ref_remote_5_words", "node name, not index"),
    ("atom_lambda", "non-Latin-1 atom as ~tw"),
    ("atom_mixed_latin1_utf8", "non-Latin-1 atom as ~tw"),
    ("atom_255_lambdas", "non-Latin-1 atom as ~tw"),
    ("binary_small", "printable binary as ~p"),
    ("tuple_small", "printable binary as ~p"),
    ("map_small", "printable binary as ~p"),
    ("map_nested", "printable binary as ~p"),
    ("string_abc", "string as ~p"),
    ("list_mixed", "printable binary and string as ~p"),
    ("improper_string_atom", "printable head"),
    ("everything", "pid, ref, binary and string"),
    ("map_33_keys", "large map in wire order"),
];

#[test]
fn display_matches_erlang_w_format() {
    let corpus = erlang_corpus();
    let mut compared = 0;
    let mut failures = String::new();
    for name in corpus.terms() {
        let key = format!("{name}/w");
        if !corpus.index.contains_key(&key) || DISPLAY_DIFFERS.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let term = decode(corpus.get(&format!("{name}/t2b"))).unwrap();
        let erlang = corpus.text(&key);
        let ours = term.to_string();
        compared += 1;
        if ours != erlang {
            let _ = writeln!(
                failures,
                "  {name}:\n    Rust:   {ours}\n    Erlang: {erlang}"
            );
        }
    }
    assert!(failures.is_empty(), "Display differs from ~w:\n{failures}");
    assert!(compared >= 60, "only {compared} terms compared");
}

#[test]
fn display_of_simple_terms_matches_erlang() {
    // The brief list, by name, so that it cannot silently shrink.
    let corpus = erlang_corpus();
    for name in [
        "int_0",
        "int_minus_2_31_minus_1",
        "int_2_64",
        "atom_ok",
        "atom_empty",
        "atom_e_acute",
        "atom_elixir_foo",
        "atom_with_space",
        "atom_reserved_word",
        "atom_with_quote",
        "tuple_nested",
        "list_nested",
        "list_with_256",
        "improper_1_2",
        "binary_empty",
        "binary_bytes",
        "bits_1_2_3_5",
        "map_one",
        "map_map_key",
        "fun_export",
    ] {
        let term = decode(corpus.get(&format!("{name}/t2b"))).unwrap();
        assert_eq!(
            term.to_string(),
            corpus.text(&format!("{name}/w")),
            "{name}"
        );
    }
}

#[test]
fn display_of_floats_matches_erlang_w_format() {
    let corpus = erlang_corpus();
    let floats = decode(corpus.get("floats/t2b")).unwrap();
    let floats = floats.as_list().expect("a list of floats");
    let texts: Vec<&str> = corpus.text("floats/w").split('\n').collect();
    assert_eq!(floats.len(), texts.len());
    let mut failures = String::new();
    for (f, erlang) in floats.iter().zip(&texts) {
        let ours = f.to_string();
        if ours != *erlang {
            let _ = writeln!(failures, "  Rust {ours}, Erlang {erlang}");
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} floats print differently:\n{failures}",
        failures.lines().count(),
        floats.len()
    );
}
