//! Values whose types write their term directly (`ToTerm::write_term_to`,
//! used when a message leaves the node) give the bytes of the term they
//! convert to, and count its terms exactly; lists of terms convert to
//! vectors at once as they do one by one.

use bytes::Bytes;
use ergo_etf::{Atom, EncodeOptions, Encoder, FromTerm, Term, ToTerm};

fn via_term<T: ToTerm + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    Encoder::new(&mut out, &EncodeOptions::new()).write_term(&v.to_term());
    out
}

fn direct<T: ToTerm + ?Sized>(v: &T) -> Vec<u8> {
    let mut out = Vec::new();
    v.write_term_to(&mut Encoder::new(&mut out, &EncodeOptions::new()));
    out
}

fn count(t: &Term) -> usize {
    1 + match t {
        Term::Tuple(v) | Term::List(v) => v.iter().map(count).sum(),
        Term::ImproperList(v, tail) => v.iter().map(count).sum::<usize>() + count(tail),
        Term::Map(m) => m.iter().map(|(k, v)| count(k) + count(v)).sum(),
        _ => 0,
    }
}

/// Whether `T` writes its term directly (a function, so that the
/// assertions read the constant for the type given).
fn writes_directly<T: ToTerm + ?Sized>() -> bool {
    std::hint::black_box(T::WRITES_DIRECTLY)
}

#[track_caller]
fn same<T: ToTerm + ?Sized>(v: &T, what: &str) {
    assert_eq!(direct(v), via_term(v), "bytes of {what}");
    if T::WRITES_DIRECTLY {
        assert_eq!(v.term_count(), count(&v.to_term()), "term count of {what}");
    }
}

#[test]
fn integers_of_every_width_write_as_their_terms() {
    for i in [
        0i64,
        1,
        255,
        256,
        -1,
        i32::MAX as i64,
        i32::MIN as i64,
        1 << 40,
        i64::MAX,
        i64::MIN,
    ] {
        same(&i, &format!("{i}i64"));
        same(&(i as i32), "i32");
        same(&(i as u8), "u8");
        same(&(i as u64), "u64");
    }
    for u in [u64::MAX, 1 << 63, (1 << 63) - 1] {
        same(&u, &format!("{u}u64"));
        same(&(u as usize), "usize");
    }
    same(&i128::MIN, "i128::MIN");
    same(&u128::MAX, "u128::MAX");
    assert!(writes_directly::<i64>() && writes_directly::<u8>() && writes_directly::<u128>());
}

#[test]
fn lists_write_as_erlang_writes_them_bytes_as_strings_up_to_65535() {
    same(&Vec::<i64>::new(), "[]");
    same(&vec![1u8, 2, 255], "a byte list");
    same(&vec![1i64, 2, 256], "a list past a byte");
    same(&vec![-1i64, 0, 1], "a list with a negative");
    same(
        &(0..65_535).map(|i| (i % 256) as u8).collect::<Vec<_>>(),
        "65,535 bytes",
    );
    same(
        &(0..65_536).map(|i| (i % 256) as u8).collect::<Vec<_>>(),
        "65,536 bytes",
    );
    same(&(0..1000i64).collect::<Vec<_>>(), "a thousand integers");
    same(
        &vec![vec![1i64, 2], vec![], vec![300, i64::MAX]],
        "nested lists",
    );
    same(&[7u16, 8, 9][..], "a slice");
    same(&Box::new(vec![1u32, 1 << 31]), "a boxed list");
    assert!(writes_directly::<Vec<Vec<i64>>>());
}

#[test]
fn tuples_atoms_and_terms_write_as_their_terms() {
    same(&(Atom::from("ok"), 42i64), "{ok, 42}");
    same(&(1u8, (2i64, vec![3u8]), Atom::from("x")), "nested tuples");
    let t = Term::tuple([
        Term::atom("events"),
        Term::List((0..300).map(Term::Int).collect()),
        Term::Binary(Bytes::from_static(b"hello")),
        Term::ImproperList(vec![Term::Int(1)], Box::new(Term::atom("tail"))),
    ]);
    same(&t, "a term");
    same(&vec![t.clone(), Term::Int(5)], "a list of terms");
    same(&vec![Term::Int(5), Term::Int(255)], "terms that are bytes");
    assert!(writes_directly::<Term>() && writes_directly::<(Atom, Term)>());
}

#[test]
fn types_that_do_not_write_directly_still_write_their_terms() {
    same(&vec![String::from("a"), String::from("b")], "strings");
    same(&(String::from("s"), 1i64), "a tuple holding a string");
    same(&Some(5i64), "an option");
    assert!(!writes_directly::<Vec<String>>());
    assert!(!writes_directly::<(String, i64)>());
}

/// The batch conversion of a list's elements (`FromTerm::from_owned_terms`,
/// which integer types do without a call per element) gives what
/// converting them one by one gives, errors included.
#[test]
fn converting_a_list_of_terms_at_once_agrees_with_one_by_one() {
    fn one_by_one<T: FromTerm>(terms: &[Term]) -> Result<Vec<T>, String> {
        terms
            .iter()
            .map(|t| T::from_term(t).map_err(|e| e.to_string()))
            .collect()
    }
    fn at_once<T: FromTerm>(terms: &[Term]) -> Result<Vec<T>, String> {
        T::from_owned_terms(terms.to_vec()).map_err(|e| e.to_string())
    }
    let big = Term::from(i128::from(i64::MAX) + 1);
    let cases: Vec<Vec<Term>> = vec![
        vec![],
        (0..1000).map(Term::Int).collect(),
        vec![Term::Int(i64::MIN), Term::Int(-1), Term::Int(i64::MAX)],
        vec![Term::Int(1), big.clone(), Term::Int(2)],
        vec![Term::Int(1), Term::atom("two"), Term::Int(3)],
        vec![Term::Int(255), Term::Int(256)],
        vec![Term::Int(-1)],
    ];
    for terms in &cases {
        assert_eq!(at_once::<i64>(terms), one_by_one::<i64>(terms), "{terms:?}");
        assert_eq!(at_once::<u8>(terms), one_by_one::<u8>(terms), "{terms:?}");
        assert_eq!(at_once::<u64>(terms), one_by_one::<u64>(terms), "{terms:?}");
        assert_eq!(
            at_once::<i128>(terms),
            one_by_one::<i128>(terms),
            "{terms:?}"
        );
        assert_eq!(
            at_once::<Term>(terms),
            one_by_one::<Term>(terms),
            "{terms:?}"
        );
        assert_eq!(
            at_once::<String>(terms),
            one_by_one::<String>(terms),
            "{terms:?}"
        );
    }
    assert_eq!(
        at_once::<u8>(&cases[5]).unwrap_err(),
        one_by_one::<u8>(&cases[5]).unwrap_err()
    );
    assert!(
        at_once::<u64>(&cases[3]).is_ok(),
        "a big integer in range converts"
    );
    assert!(
        at_once::<i64>(&cases[4]).is_err(),
        "an atom is not an integer"
    );
}

/// A struct the derive writes `decode_list` for.
#[derive(ergo_macros::Term, Debug, PartialEq)]
struct Point {
    x: i64,
    y: i64,
}

/// Reading a list straight from its bytes (`FromTerm::decode_list`, which
/// GenStage consumers use for events from other nodes) gives what decoding
/// it as terms and converting them gives: the same values, and an error
/// exactly where the conversion fails.
#[test]
fn reading_a_list_straight_from_bytes_agrees_with_decoding_terms_and_converting() {
    fn straight<T: FromTerm>(list: &Term) -> Option<Result<Vec<T>, ()>> {
        let bytes = ergo_etf::encode(list);
        let opts = ergo_etf::DecodeOptions::new();
        let mut d = ergo_etf::Decoder::new(&bytes[1..], &opts);
        T::decode_list(&mut d).map(|r| r.map_err(|_| ()))
    }
    fn via_terms<T: FromTerm>(list: &Term) -> Result<Vec<T>, ()> {
        Vec::<T>::from_term(list).map_err(|_| ())
    }
    fn agree<T: FromTerm + PartialEq + std::fmt::Debug>(list: &Term) {
        let got = straight::<T>(list).expect("the type reads lists straight");
        assert_eq!(
            got,
            via_terms::<T>(list),
            "{} from {list}",
            std::any::type_name::<T>()
        );
    }
    let pid = ergo_etf::Pid {
        node: Atom::from("a@h"),
        id: 1,
        serial: 2,
        creation: 3,
    };
    let point = |x: i64, y: i64| Point { x, y }.to_term();
    let cases: Vec<Term> = vec![
        Term::NIL,
        Term::List((0..1000).map(Term::Int).collect()),
        Term::List((0..200).map(Term::Int).collect()),
        Term::List(vec![
            Term::Int(i64::MIN),
            Term::Int(-1),
            Term::Int(i64::MAX),
        ]),
        Term::List(vec![Term::Int(1), Term::from(i128::from(i64::MAX) + 1)]),
        Term::List(vec![Term::Int(1), Term::atom("two"), Term::Int(3)]),
        Term::List(vec![Term::Int(255), Term::Int(256)]),
        Term::List(vec![Term::binary("one"), Term::charlist("two")]),
        Term::List(vec![Term::Float(1.5), Term::Int(2)]),
        Term::List(vec![Term::atom("true"), Term::atom("false")]),
        Term::List(vec![Term::Pid(pid), Term::atom("x")]),
        Term::List(vec![point(1, 2), point(-3, 4)]),
        Term::List(vec![point(1, 2), Term::Int(5)]),
        Term::ImproperList(vec![Term::Int(1)], Box::new(Term::Int(2))),
        Term::Int(7),
    ];
    for list in &cases {
        agree::<i64>(list);
        agree::<u8>(list);
        agree::<u64>(list);
        agree::<i128>(list);
        agree::<String>(list);
        agree::<Bytes>(list);
        agree::<Atom>(list);
        agree::<f64>(list);
        agree::<f32>(list);
        agree::<bool>(list);
        agree::<ergo_etf::Pid>(list);
        agree::<Term>(list);
        agree::<Point>(list);
    }
    // The cases are not all errors: each type reads some of them.
    assert_eq!(straight::<u8>(&cases[2]).unwrap().unwrap().len(), 200);
    assert!(straight::<String>(&cases[7]).unwrap().is_ok());
    assert_eq!(
        straight::<Point>(&cases[11]).unwrap().unwrap(),
        vec![Point { x: 1, y: 2 }, Point { x: -3, y: 4 }]
    );
    // A type that is only `FromTerm` has no straight reading.
    struct OnlyFromTerm;
    impl FromTerm for OnlyFromTerm {
        fn from_term(_: &Term) -> Result<Self, ergo_etf::ConvertError> {
            Ok(OnlyFromTerm)
        }
    }
    assert!(straight::<OnlyFromTerm>(&cases[1]).is_none());
}
