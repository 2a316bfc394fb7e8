//! serde support: the mapping of every serde data-model row to terms, the
//! lenient reading Elixir data needs, error messages, and round trips.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use ergo_etf::serde::{Error, from_bytes, from_bytes_with, from_term, to_bytes, to_term};
use ergo_etf::{Atom, DecodeOptions, Map, Pid, Term, decode, encode};
use proptest::prelude::*;
use serde::de::{DeserializeOwned, Visitor};
use serde::{Deserialize, Serialize};

// ------------------------------------------------------------------ helpers

fn atom(name: &str) -> Term {
    Term::atom(name)
}

fn bin(s: &str) -> Term {
    Term::binary(s)
}

fn int(i: i64) -> Term {
    Term::Int(i)
}

fn tuple<const N: usize>(items: [Term; N]) -> Term {
    Term::tuple(items)
}

fn map<const N: usize>(pairs: [(Term, Term); N]) -> Term {
    Term::map(pairs)
}

/// Serializes `value`, checks the term, and checks that both the term and
/// its bytes read back as `value`.
#[track_caller]
fn round_trip<T>(value: T, expected: Term)
where
    T: Serialize + DeserializeOwned + PartialEq + fmt::Debug,
{
    let term = to_term(&value).unwrap();
    assert_eq!(term, expected, "term of {value:?}");
    assert_eq!(from_term::<T>(&term).unwrap(), value, "from_term");
    let bytes = to_bytes(&value).unwrap();
    assert_eq!(bytes, encode(&expected), "bytes of {value:?}");
    assert_eq!(from_bytes::<T>(&bytes).unwrap(), value, "from_bytes");
}

#[track_caller]
fn error_of<T: DeserializeOwned + fmt::Debug>(term: &Term) -> String {
    match from_term::<T>(term) {
        Ok(v) => panic!("{term} read as {v:?}, expected an error"),
        Err(e) => e.to_string(),
    }
}

/// A byte buffer that serde sees as bytes (what `serde_bytes` does).
#[derive(Debug, PartialEq)]
struct Blob(Vec<u8>);

impl Serialize for Blob {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

impl<'de> Deserialize<'de> for Blob {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Blob, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Blob;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("bytes")
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Blob, E> {
                Ok(Blob(v.to_vec()))
            }
            fn visit_byte_buf<E>(self, v: Vec<u8>) -> Result<Blob, E> {
                Ok(Blob(v))
            }
        }
        d.deserialize_bytes(V)
    }
}

// ------------------------------------------------------------------ scalars

#[test]
fn bools_become_true_and_false_atoms() {
    round_trip(true, atom("true"));
    round_trip(false, atom("false"));
    assert_eq!(error_of::<bool>(&int(1)), "expected boolean, found 1");
}

#[test]
fn integers_of_every_width_become_integers() {
    round_trip(i8::MIN, int(-128));
    round_trip(i16::MAX, int(32767));
    round_trip(i32::MIN, int(i32::MIN.into()));
    round_trip(i64::MIN, int(i64::MIN));
    round_trip(u8::MAX, int(255));
    round_trip(u16::MAX, int(65535));
    round_trip(u32::MAX, int(u32::MAX.into()));
    round_trip(i64::MAX as u64, int(i64::MAX));
    round_trip(0usize, int(0));
}

#[test]
fn u64_beyond_i64_becomes_a_bignum() {
    round_trip(u64::MAX, Term::from(u64::MAX));
    assert!(matches!(to_term(&u64::MAX).unwrap(), Term::BigInt(_)));
    assert_eq!(
        to_term(&u64::MAX).unwrap().to_string(),
        "18446744073709551615"
    );
}

#[test]
fn i128_and_u128_extremes_round_trip() {
    for v in [i128::MIN, i128::MAX, -1, 0, i64::MIN as i128 - 1] {
        round_trip(v, Term::from(v));
    }
    for v in [u128::MAX, 0, u64::MAX as u128 + 1] {
        round_trip(v, Term::from(v));
    }
    assert_eq!(
        to_term(&i128::MIN).unwrap().to_string(),
        "-170141183460469231731687303715884105728"
    );
}

#[test]
fn integers_out_of_range_say_the_range() {
    assert_eq!(
        error_of::<u8>(&int(300)),
        "expected integer in 0..=255 (u8), found 300"
    );
    assert_eq!(
        error_of::<i8>(&int(-129)),
        "expected integer in -128..=127 (i8), found -129"
    );
    assert_eq!(
        error_of::<u64>(&int(-1)),
        "expected non-negative integer, found -1"
    );
    assert_eq!(
        error_of::<i64>(&Term::from(u64::MAX)),
        "expected integer, found 18446744073709551615"
    );
    assert_eq!(
        error_of::<u32>(&bin("12")),
        r#"expected integer in 0..=4294967295 (u32), found <<"12">>"#
    );
    assert_eq!(
        error_of::<i32>(&Term::Float(1.0)),
        "expected integer in -2147483648..=2147483647 (i32), found 1.0"
    );
}

#[test]
fn floats_become_floats_and_read_integers_too() {
    round_trip(1.5f64, Term::Float(1.5));
    round_trip(-0.25f32, Term::Float(-0.25));
    round_trip(f64::MAX, Term::Float(f64::MAX));
    assert_eq!(from_term::<f64>(&int(3)).unwrap(), 3.0);
    assert_eq!(from_term::<f32>(&int(-2)).unwrap(), -2.0);
    assert_eq!(
        from_term::<f64>(&Term::from(u64::MAX)).unwrap(),
        u64::MAX as f64
    );
    assert_eq!(
        error_of::<f64>(&bin("1.0")),
        r#"expected float, found <<"1.0">>"#
    );
    assert_eq!(
        error_of::<f32>(&Term::Float(1e300)),
        "expected float in the f32 range, found 1.0e300"
    );
}

#[test]
fn nan_and_infinity_cannot_be_serialized() {
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let err = to_term(&v).unwrap_err().to_string();
        assert!(err.starts_with("expected a finite float, found"), "{err}");
    }
    assert!(to_bytes(&vec![1.0, f64::NAN]).is_err());
}

#[test]
fn chars_become_utf8_binaries() {
    round_trip('a', bin("a"));
    round_trip('λ', bin("λ"));
    round_trip('🦀', bin("🦀"));
    assert_eq!(from_term::<char>(&int(97)).unwrap(), 'a');
    assert_eq!(from_term::<char>(&Term::charlist("é")).unwrap(), 'é');
    assert_eq!(
        error_of::<char>(&bin("ab")),
        r#"expected character (binary of one character, or code point), found <<"ab">>"#
    );
    assert!(from_term::<char>(&int(0xD800)).is_err());
}

#[test]
fn strings_become_utf8_binaries() {
    round_trip(String::from("héllo"), bin("héllo"));
    round_trip(String::new(), bin(""));
    assert_eq!(to_term("str slice").unwrap(), bin("str slice"));
}

#[test]
fn charlists_and_atoms_read_as_strings() {
    assert_eq!(
        from_term::<String>(&Term::charlist("héllo")).unwrap(),
        "héllo"
    );
    assert_eq!(from_term::<String>(&Term::NIL).unwrap(), "");
    assert_eq!(from_term::<String>(&atom("admin")).unwrap(), "admin");
    assert_eq!(
        error_of::<String>(&int(5)),
        "expected string (UTF-8 binary or charlist), found 5"
    );
    assert_eq!(
        error_of::<String>(&Term::binary([0xff, 0xfe])),
        "expected UTF-8 binary, found <<255,254>>"
    );
    assert!(from_term::<String>(&Term::list([int(-1)])).is_err());
}

#[test]
fn strings_and_bytes_can_be_borrowed_from_the_term() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Borrowed<'a> {
        name: &'a str,
        #[serde(borrow)]
        note: Cow<'a, str>,
        raw: &'a [u8],
    }
    let t = map([
        (atom("name"), bin("Ann")),
        (atom("note"), bin("hi")),
        (atom("raw"), Term::binary([1, 2, 3])),
    ]);
    let b: Borrowed<'_> = from_term(&t).unwrap();
    assert_eq!(b.name, "Ann");
    assert!(matches!(b.note, Cow::Borrowed("hi")));
    assert_eq!(b.raw, [1, 2, 3]);
}

#[test]
fn bytes_become_binaries() {
    round_trip(Blob(vec![0, 1, 255]), Term::binary([0, 1, 255]));
    round_trip(Blob(vec![]), Term::binary([]));
    assert_eq!(
        from_term::<Blob>(&Term::list([int(1), int(2)])).unwrap(),
        Blob(vec![1, 2])
    );
    assert_eq!(error_of::<Blob>(&int(1)), "expected binary, found 1");
}

#[test]
fn vec_u8_is_a_list_but_reads_a_binary_too() {
    round_trip(vec![1u8, 2], Term::list([int(1), int(2)]));
    assert_eq!(from_term::<Vec<u8>>(&Term::binary([7, 8])).unwrap(), [7, 8]);
    assert_eq!(
        error_of::<Vec<i8>>(&Term::binary([1, 200])),
        "at [1]: expected integer in -128..=127 (i8), found 200"
    );
}

// ------------------------------------------------------------------ option, unit

#[test]
fn none_becomes_nil_and_some_is_the_value() {
    round_trip(None::<i32>, atom("nil"));
    round_trip(Some(5), int(5));
    round_trip(Some(String::from("x")), bin("x"));
}

#[test]
fn undefined_reads_as_none() {
    assert_eq!(from_term::<Option<u8>>(&atom("undefined")).unwrap(), None);
    assert_eq!(from_term::<Option<u8>>(&atom("nil")).unwrap(), None);
}

#[test]
fn some_none_collapses_to_none() {
    let t = to_term(&Some(None::<u8>)).unwrap();
    assert_eq!(t, atom("nil"));
    assert_eq!(from_term::<Option<Option<u8>>>(&t).unwrap(), None);
}

#[test]
fn unit_and_unit_structs_become_nil() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Marker;
    round_trip((), atom("nil"));
    round_trip(Marker, atom("nil"));
    assert_eq!(from_term::<()>(&atom("ok")).unwrap(), ());
    assert_eq!(from_term::<Marker>(&atom("undefined")).unwrap(), Marker);
    assert_eq!(error_of::<()>(&int(0)), "expected nil, found 0");
}

// ------------------------------------------------------------------ structs

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct User {
    name: String,
    age: u8,
    email: Option<String>,
}

fn ann() -> User {
    User {
        name: "Ann".into(),
        age: 41,
        email: Some("ann@example.com".into()),
    }
}

#[test]
fn struct_becomes_map_with_atom_keys() {
    round_trip(
        ann(),
        map([
            (atom("name"), bin("Ann")),
            (atom("age"), int(41)),
            (atom("email"), bin("ann@example.com")),
        ]),
    );
    assert_eq!(
        to_term(&ann()).unwrap().to_string(),
        r#"#{name => <<"Ann">>,age => 41,email => <<"ann@example.com">>}"#
    );
}

#[test]
fn elixir_string_keyed_map_deserializes_into_struct() {
    // %{"name" => "Ann", "age" => 41, "email" => nil}
    let t = map([
        (bin("name"), bin("Ann")),
        (bin("age"), int(41)),
        (bin("email"), atom("nil")),
    ]);
    let u: User = from_term(&t).unwrap();
    assert_eq!(
        u,
        User {
            email: None,
            ..ann()
        }
    );
}

#[test]
fn elixir_struct_module_key_and_unknown_keys_are_ignored() {
    // %MyApp.User{name: "Ann", age: 41, email: nil, extra: 1}
    let t = map([
        (atom("__struct__"), atom("Elixir.MyApp.User")),
        (atom("name"), bin("Ann")),
        (atom("age"), int(41)),
        (atom("email"), atom("nil")),
        (atom("extra"), int(1)),
        (int(7), int(8)),
    ]);
    assert_eq!(from_term::<User>(&t).unwrap().name, "Ann");
}

#[test]
fn deny_unknown_fields_is_honored_but_struct_key_still_skipped() {
    #[derive(Deserialize, Debug, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Strict {
        a: i32,
        b: i32,
    }
    let ok = map([
        (atom("__struct__"), atom("Elixir.Strict")),
        (atom("a"), int(1)),
        (atom("b"), int(2)),
    ]);
    assert_eq!(from_term::<Strict>(&ok).unwrap(), Strict { a: 1, b: 2 });
    let extra = map([
        (atom("a"), int(1)),
        (atom("b"), int(2)),
        (atom("c"), int(3)),
    ]);
    assert_eq!(
        error_of::<Strict>(&extra),
        "expected one of the fields a, b, found c"
    );
    let odd_key = map([(atom("a"), int(1)), (int(9), int(2))]);
    assert_eq!(
        error_of::<Strict>(&odd_key),
        "expected one of the fields a, b, found 9"
    );
}

#[test]
fn keyword_list_deserializes_into_struct_and_map() {
    // [name: "Ann", age: 41, email: nil]
    let kw = Term::list([
        tuple([atom("name"), bin("Ann")]),
        tuple([atom("age"), int(41)]),
        tuple([atom("email"), atom("nil")]),
    ]);
    assert_eq!(from_term::<User>(&kw).unwrap().age, 41);
    let m: BTreeMap<String, Seen> = from_term(&kw).unwrap();
    assert_eq!(m.len(), 3);
    assert_eq!(
        from_term::<BTreeMap<String, i32>>(&Term::NIL)
            .unwrap()
            .len(),
        0
    );
}

#[test]
fn missing_field_names_the_field_and_the_map() {
    let t = map([(atom("name"), bin("Ann"))]);
    assert_eq!(
        error_of::<User>(&t),
        r#"expected a map with the field age, found #{name => <<"Ann">>}"#
    );
}

#[test]
fn struct_from_a_non_map_says_which_struct() {
    assert_eq!(
        error_of::<User>(&Term::list([int(1)])),
        "expected map (User), found [1]"
    );
}

#[test]
fn default_fields_may_be_missing() {
    #[derive(Deserialize, Debug, PartialEq)]
    struct Opts {
        #[serde(default)]
        verbose: bool,
        #[serde(default)]
        limit: Option<u32>,
    }
    assert_eq!(
        from_term::<Opts>(&map([])).unwrap(),
        Opts {
            verbose: false,
            limit: None
        }
    );
}

#[test]
fn serde_rename_is_honored() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(rename_all = "camelCase")]
    struct Renamed {
        user_id: u32,
        #[serde(rename = "type")]
        kind: Kind,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    enum Kind {
        #[serde(rename = "GuestUser")]
        Guest,
        #[serde(rename = "member")]
        Member,
    }
    round_trip(
        Renamed {
            user_id: 7,
            kind: Kind::Guest,
        },
        map([(atom("userId"), int(7)), (atom("type"), atom("guest_user"))]),
    );
    round_trip(Kind::Member, atom("member"));
    // The renamed Rust name is accepted as is, too.
    assert_eq!(from_term::<Kind>(&bin("GuestUser")).unwrap(), Kind::Guest);
}

#[test]
fn newtype_struct_is_transparent() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Meters(f64);
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Id(String);
    round_trip(Meters(2.5), Term::Float(2.5));
    round_trip(Id("abc".into()), bin("abc"));
}

#[test]
fn tuples_and_tuple_structs_become_tuples() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Point(i32, i32);
    round_trip(
        (1u8, "two".to_string(), true),
        tuple([int(1), bin("two"), atom("true")]),
    );
    round_trip(Point(3, -4), tuple([int(3), int(-4)]));
    round_trip([1u16, 2, 3], tuple([int(1), int(2), int(3)]));
    // A list of the right length is taken too.
    assert_eq!(
        from_term::<Point>(&Term::list([int(1), int(2)])).unwrap(),
        Point(1, 2)
    );
    assert_eq!(
        error_of::<(i32, i32)>(&tuple([int(1), int(2), int(3)])),
        "expected tuple of 2 elements, found {1,2,3}"
    );
    assert_eq!(
        error_of::<Point>(&tuple([int(1)])),
        "expected tuple of 2 elements (Point), found {1}"
    );
}

#[test]
fn sequences_become_proper_lists() {
    round_trip(vec![1, 2, 3], Term::list([int(1), int(2), int(3)]));
    round_trip(Vec::<String>::new(), Term::NIL);
    round_trip(
        vec![vec![true], vec![]],
        Term::list([Term::list([atom("true")]), Term::NIL]),
    );
    // A tuple is read as a sequence as well.
    assert_eq!(
        from_term::<Vec<i32>>(&tuple([int(1), int(2)])).unwrap(),
        [1, 2]
    );
    let improper = Term::list_with_tail(vec![int(1)], int(2));
    assert_eq!(
        error_of::<Vec<i32>>(&improper),
        "expected list, found [1|2]"
    );
}

#[test]
fn map_keys_follow_the_same_rules() {
    let mut m = BTreeMap::new();
    m.insert(1u32, "one".to_string());
    m.insert(2, "two".to_string());
    round_trip(m, map([(int(1), bin("one")), (int(2), bin("two"))]));

    let mut by_tuple = HashMap::new();
    by_tuple.insert((1, 2), true);
    round_trip(by_tuple, map([(tuple([int(1), int(2)]), atom("true"))]));

    let mut by_string = HashMap::new();
    by_string.insert("k".to_string(), 1);
    round_trip(by_string, map([(bin("k"), int(1))]));

    // Atom keys read as strings: %{a: 1} into HashMap<String, i32>.
    let m: HashMap<String, i32> = from_term(&map([(atom("a"), int(1))])).unwrap();
    assert_eq!(m["a"], 1);
}

#[test]
fn hashmap_of_string_to_vec_of_option_i32_round_trips() {
    let mut m: HashMap<String, Vec<Option<i32>>> = HashMap::new();
    m.insert("a".into(), vec![Some(1), None, Some(-3)]);
    m.insert("empty".into(), vec![]);
    m.insert("nones".into(), vec![None, None]);
    let term = to_term(&m).unwrap();
    let Term::Map(tm) = &term else {
        panic!("not a map: {term}")
    };
    assert_eq!(
        tm.get(&bin("a")),
        Some(&Term::list([int(1), atom("nil"), int(-3)]))
    );
    assert_eq!(
        from_term::<HashMap<String, Vec<Option<i32>>>>(&term).unwrap(),
        m
    );
    let bytes = to_bytes(&m).unwrap();
    assert_eq!(
        from_bytes::<HashMap<String, Vec<Option<i32>>>>(&bytes).unwrap(),
        m
    );
}

#[test]
fn large_maps_keep_every_key() {
    let m: HashMap<u32, u32> = (0..5000).map(|i| (i, i * 2)).collect();
    let t = to_term(&m).unwrap();
    let Term::Map(tm) = &t else { panic!() };
    assert_eq!(tm.len(), 5000);
    assert_eq!(from_term::<HashMap<u32, u32>>(&t).unwrap(), m);
}

// ------------------------------------------------------------------ enums

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
enum Shape {
    Empty,
    MyVariant,
    Circle(f64),
    Rect(u32, u32),
    Labeled { text: String, at: (i32, i32) },
    Nested(Box<Shape>),
}

#[test]
fn unit_variant_becomes_snake_case_atom() {
    round_trip(Shape::Empty, atom("empty"));
    round_trip(Shape::MyVariant, atom("my_variant"));
}

#[test]
fn newtype_variant_becomes_tagged_pair() {
    round_trip(
        Shape::Circle(1.5),
        tuple([atom("circle"), Term::Float(1.5)]),
    );
    round_trip(
        Shape::Nested(Box::new(Shape::Empty)),
        tuple([atom("nested"), atom("empty")]),
    );
}

#[test]
fn tuple_variant_becomes_tagged_tuple() {
    round_trip(Shape::Rect(2, 3), tuple([atom("rect"), int(2), int(3)]));
}

#[test]
fn struct_variant_becomes_tag_and_atom_keyed_map() {
    round_trip(
        Shape::Labeled {
            text: "hi".into(),
            at: (1, 2),
        },
        tuple([
            atom("labeled"),
            map([
                (atom("text"), bin("hi")),
                (atom("at"), tuple([int(1), int(2)])),
            ]),
        ]),
    );
}

#[test]
fn enum_of_all_variant_kinds_round_trips() {
    let all = vec![
        Shape::Empty,
        Shape::MyVariant,
        Shape::Circle(-0.5),
        Shape::Rect(0, u32::MAX),
        Shape::Labeled {
            text: "λ".into(),
            at: (-1, 1),
        },
        Shape::Nested(Box::new(Shape::Rect(1, 1))),
    ];
    let bytes = to_bytes(&all).unwrap();
    assert_eq!(from_bytes::<Vec<Shape>>(&bytes).unwrap(), all);
    assert_eq!(
        to_term(&all).unwrap().to_string(),
        r#"[empty,my_variant,{circle,-0.5},{rect,0,4294967295},{labeled,#{text => <<206,187>>,at => {-1,1}}},{nested,{rect,1,1}}]"#
    );
}

#[test]
fn enum_tags_may_be_binaries_or_exact_rust_names() {
    for t in [
        atom("my_variant"),
        bin("my_variant"),
        atom("MyVariant"),
        bin("MyVariant"),
        tuple([atom("my_variant")]),
    ] {
        assert_eq!(from_term::<Shape>(&t).unwrap(), Shape::MyVariant, "{t}");
    }
    assert_eq!(
        from_term::<Shape>(&tuple([bin("Circle"), int(2)])).unwrap(),
        Shape::Circle(2.0)
    );
    assert_eq!(
        from_term::<Shape>(&tuple([atom("rect"), tuple([int(4), int(5)])])).unwrap(),
        Shape::Rect(4, 5)
    );
    // %{"circle" => 1.0}, the way JSON-minded code tags variants.
    assert_eq!(
        from_term::<Shape>(&map([(bin("circle"), Term::Float(1.0))])).unwrap(),
        Shape::Circle(1.0)
    );
    // A struct variant from an Elixir map with string keys.
    let labeled = tuple([
        atom("labeled"),
        map([
            (bin("text"), bin("x")),
            (bin("at"), Term::list([int(0), int(0)])),
        ]),
    ]);
    assert_eq!(
        from_term::<Shape>(&labeled).unwrap(),
        Shape::Labeled {
            text: "x".into(),
            at: (0, 0)
        }
    );
}

#[test]
fn enum_errors_say_what_shape_was_wanted() {
    assert_eq!(
        error_of::<Shape>(&atom("triangle")),
        "expected one of the variants empty, my_variant, circle, rect, labeled, nested, found triangle"
    );
    assert_eq!(
        error_of::<Shape>(&int(3)),
        "expected atom or tagged tuple (Shape), found 3"
    );
    assert_eq!(
        error_of::<Shape>(&atom("labeled")),
        "expected {labeled,map}, found labeled"
    );
    assert_eq!(
        error_of::<Shape>(&atom("circle")),
        "expected {circle,_}, found circle"
    );
    assert_eq!(
        error_of::<Shape>(&tuple([atom("rect"), int(1)])),
        "expected {rect,_,_}, found {rect,1}"
    );
    assert_eq!(
        error_of::<Shape>(&tuple([atom("empty"), int(1)])),
        "expected empty, found {empty,1}"
    );
    assert_eq!(
        error_of::<Shape>(&tuple([atom("labeled"), int(1)])),
        "at [1]: expected map (Shape::Labeled), found 1"
    );
    assert_eq!(
        error_of::<Shape>(&tuple([atom("circle"), bin("big")])),
        r#"at [1]: expected float, found <<"big">>"#
    );
    assert_eq!(
        error_of::<Shape>(&tuple([atom("labeled"), map([(atom("text"), bin("t"))])])),
        r#"at [1]: expected a map with the field at, found #{text => <<"t">>}"#
    );
}

#[test]
fn serde_other_variant_catches_unknown_tags() {
    #[derive(Deserialize, Debug, PartialEq)]
    enum Status {
        Active,
        #[serde(other)]
        Unknown,
    }
    assert_eq!(
        from_term::<Status>(&atom("active")).unwrap(),
        Status::Active
    );
    assert_eq!(
        from_term::<Status>(&atom("frozen")).unwrap(),
        Status::Unknown
    );
}

#[test]
fn internally_tagged_and_untagged_enums_work() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(tag = "type")]
    enum Event {
        Click { x: i32 },
        Close,
    }
    let t = to_term(&Event::Click { x: 3 }).unwrap();
    assert_eq!(t, map([(atom("type"), bin("Click")), (atom("x"), int(3))]));
    assert_eq!(from_term::<Event>(&t).unwrap(), Event::Click { x: 3 });
    let close = map([(bin("type"), bin("Close"))]);
    assert_eq!(from_term::<Event>(&close).unwrap(), Event::Close);

    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    #[serde(untagged)]
    enum Loose {
        Flag(bool),
        Num(i64),
        Text(String),
        List(Vec<Loose>),
    }
    let v = Loose::List(vec![
        Loose::Flag(true),
        Loose::Num(2),
        Loose::Text("s".into()),
    ]);
    let t = to_term(&v).unwrap();
    assert_eq!(t, Term::list([atom("true"), int(2), bin("s")]));
    assert_eq!(from_term::<Loose>(&t).unwrap(), v);
}

#[test]
fn flattened_fields_read_from_atom_or_binary_keys() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Inner {
        b: i32,
    }
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Outer {
        a: i32,
        #[serde(flatten)]
        inner: Inner,
    }
    let v = Outer {
        a: 1,
        inner: Inner { b: 2 },
    };
    let t = to_term(&v).unwrap();
    // serde hands flattened fields over as a map: binary keys.
    assert_eq!(t, map([(bin("a"), int(1)), (bin("b"), int(2))]));
    assert_eq!(from_term::<Outer>(&t).unwrap(), v);
    let atoms = map([(atom("a"), int(1)), (atom("b"), int(2))]);
    assert_eq!(from_term::<Outer>(&atoms).unwrap(), v);
}

// ------------------------------------------------------------------ any

/// Records which visitor method `deserialize_any` called.
#[derive(Debug, PartialEq)]
enum Seen {
    Bool(bool),
    I64(i64),
    U64(u64),
    I128(i128),
    U128(u128),
    F64(f64),
    Str(String),
    Bytes(Vec<u8>),
    Unit,
    Seq(Vec<Seen>),
    Map(Vec<(Seen, Seen)>),
}

impl<'de> Deserialize<'de> for Seen {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Seen, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Seen;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("anything")
            }
            fn visit_bool<E>(self, v: bool) -> Result<Seen, E> {
                Ok(Seen::Bool(v))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Seen, E> {
                Ok(Seen::I64(v))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Seen, E> {
                Ok(Seen::U64(v))
            }
            fn visit_i128<E>(self, v: i128) -> Result<Seen, E> {
                Ok(Seen::I128(v))
            }
            fn visit_u128<E>(self, v: u128) -> Result<Seen, E> {
                Ok(Seen::U128(v))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Seen, E> {
                Ok(Seen::F64(v))
            }
            fn visit_str<E>(self, v: &str) -> Result<Seen, E> {
                Ok(Seen::Str(v.into()))
            }
            fn visit_bytes<E>(self, v: &[u8]) -> Result<Seen, E> {
                Ok(Seen::Bytes(v.into()))
            }
            fn visit_unit<E>(self) -> Result<Seen, E> {
                Ok(Seen::Unit)
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut a: A) -> Result<Seen, A::Error> {
                let mut v = Vec::new();
                while let Some(x) = a.next_element()? {
                    v.push(x);
                }
                Ok(Seen::Seq(v))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut a: A) -> Result<Seen, A::Error> {
                let mut v = Vec::new();
                while let Some(kv) = a.next_entry()? {
                    v.push(kv);
                }
                Ok(Seen::Map(v))
            }
        }
        d.deserialize_any(V)
    }
}

#[test]
fn deserialize_any_maps_terms_to_natural_visits() {
    let pid = Term::Pid(Pid::new(Atom::NONODE, 42, 0, 0));
    let cases = [
        (atom("true"), Seen::Bool(true)),
        (atom("false"), Seen::Bool(false)),
        (atom("nil"), Seen::Unit),
        (atom("undefined"), Seen::Str("undefined".into())),
        (atom("hello"), Seen::Str("hello".into())),
        (int(-5), Seen::I64(-5)),
        (Term::from(u64::MAX), Seen::U64(u64::MAX)),
        (Term::from(i128::MIN), Seen::I128(i128::MIN)),
        (Term::from(u128::MAX), Seen::U128(u128::MAX)),
        (Term::Float(0.5), Seen::F64(0.5)),
        (bin("text"), Seen::Str("text".into())),
        (Term::binary([0xff]), Seen::Bytes(vec![0xff])),
        (Term::list([int(1)]), Seen::Seq(vec![Seen::I64(1)])),
        (
            tuple([int(1), atom("a")]),
            Seen::Seq(vec![Seen::I64(1), Seen::Str("a".into())]),
        ),
        (
            map([(atom("k"), int(1))]),
            Seen::Map(vec![(Seen::Str("k".into()), Seen::I64(1))]),
        ),
        (pid.clone(), Seen::Str(pid.to_string())),
    ];
    for (term, seen) in cases {
        assert_eq!(from_term::<Seen>(&term).unwrap(), seen, "{term}");
    }
    let huge = Term::from(ergo_etf::BigInt::from(u128::MAX) * 2u8);
    assert!(error_of::<Seen>(&huge).starts_with("expected integer of at most 128 bits"));
    let bits = Term::BitBinary(ergo_etf::BitBinary::new(vec![0b1010_0000u8], 3).unwrap());
    assert_eq!(
        error_of::<Seen>(&bits),
        "expected binary (whole bytes), found <<5:3>>"
    );
    let improper = Term::list_with_tail(vec![int(1)], int(2));
    assert_eq!(
        error_of::<Seen>(&improper),
        "expected proper list, found [1|2]"
    );
}

// ------------------------------------------------------------------ atoms

#[test]
fn atoms_serialize_as_atoms_here_and_as_strings_elsewhere() {
    #[derive(Serialize, Deserialize, Debug, PartialEq)]
    struct Reply {
        status: Atom,
        tags: Vec<Atom>,
    }
    let r = Reply {
        status: Atom::OK,
        tags: vec![Atom::from("a"), Atom::from("Elixir.Foo")],
    };
    round_trip(
        r,
        map([
            (atom("status"), atom("ok")),
            (atom("tags"), Term::list([atom("a"), atom("Elixir.Foo")])),
        ]),
    );
    assert_eq!(
        error_of::<Atom>(&bin("ok")),
        r#"expected atom, found <<"ok">>"#
    );
    // Another format sees a string.
    use serde::de::IntoDeserializer;
    let d: serde::de::value::StrDeserializer<'_, serde::de::value::Error> =
        "from_elsewhere".into_deserializer();
    assert_eq!(Atom::deserialize(d).unwrap().as_str(), "from_elsewhere");
}

#[test]
fn overlong_atom_names_are_errors() {
    #[derive(Serialize)]
    enum Long {
        #[serde(
            rename = "a_name_that_goes_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_and_on_"
        )]
        V,
    }
    let err = to_term(&Long::V).unwrap_err().to_string();
    assert!(err.starts_with("cannot make the variant name"), "{err}");
}

// ------------------------------------------------------------------ errors

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Team {
    title: String,
    members: Vec<User>,
    scores: HashMap<String, Vec<i32>>,
}

#[test]
fn errors_name_the_path_to_the_mismatch() {
    let t = map([
        (atom("title"), bin("T")),
        (
            atom("members"),
            Term::list([
                map([
                    (atom("name"), bin("A")),
                    (atom("age"), int(1)),
                    (atom("email"), atom("nil")),
                ]),
                map([
                    (atom("name"), bin("B")),
                    (atom("age"), int(256)),
                    (atom("email"), atom("nil")),
                ]),
            ]),
        ),
        (atom("scores"), map([])),
    ]);
    let err = from_term::<Team>(&t).unwrap_err();
    assert_eq!(err.path(), "members[1].age");
    assert_eq!(
        err.to_string(),
        "at members[1].age: expected integer in 0..=255 (u8), found 256"
    );
    let mismatch = err.mismatch().unwrap();
    assert_eq!(mismatch.expected(), "integer in 0..=255 (u8)");
    assert_eq!(mismatch.found(), "256");
    assert!(std::error::Error::source(&err).is_some());

    let odd = map([
        (atom("title"), bin("T")),
        (atom("members"), Term::NIL),
        (
            atom("scores"),
            map([(bin("two words"), Term::list([bin("x")]))]),
        ),
    ]);
    assert_eq!(
        error_of::<Team>(&odd),
        r#"at scores[<<"two words">>][0]: expected integer in -2147483648..=2147483647 (i32), found <<"x">>"#
    );
}

#[test]
fn huge_bignums_are_described_not_printed() {
    let huge = Term::from(ergo_etf::BigInt::from(1u8) << 100_000u32);
    assert_eq!(
        error_of::<u8>(&huge),
        "expected integer in 0..=255 (u8), found <an integer of 100001 bits>"
    );
    assert_eq!(
        error_of::<String>(&Term::list([int(1), huge])),
        "expected string (UTF-8 binary or charlist), found [1,<an integer of 100001 bits>]"
    );
}

#[test]
fn long_found_terms_are_cut_short() {
    let big = Term::list((0..100_000).map(int));
    let err = error_of::<String>(&big);
    assert!(err.len() < 300, "{}", err.len());
    assert!(err.ends_with("..."), "{err}");
}

#[test]
fn bad_bytes_are_decode_errors() {
    let err = from_bytes::<u8>(&[131, 97]).unwrap_err();
    assert!(err.decode_error().is_some());
    assert_eq!(err.to_string(), "input ends inside a term (at byte 2)");
    let err = from_bytes::<u8>(&[1, 2, 3]).unwrap_err();
    assert!(err.to_string().contains("not 131"), "{err}");
    let err = from_bytes::<u8>(&to_bytes(&"x").unwrap()).unwrap_err();
    assert!(err.decode_error().is_none());
    assert_eq!(
        err.to_string(),
        r#"expected integer in 0..=255 (u8), found <<"x">>"#
    );
}

#[test]
fn errors_convert_from_convert_and_decode_errors() {
    let e: Error = ergo_etf::ConvertError::new("atom", &int(1)).into();
    assert_eq!(e.to_string(), "expected atom, found 1");
    assert!(e.mismatch().is_some());
    let e: Error = decode(&[]).unwrap_err().into();
    assert!(e.decode_error().is_some());
    assert_eq!(e.path(), "");
}

#[test]
fn custom_deserialize_errors_keep_their_message() {
    #[derive(Deserialize, Debug)]
    struct Even(
        #[serde(deserialize_with = "even")]
        #[allow(dead_code)]
        u32,
    );
    fn even<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u32, D::Error> {
        let n = u32::deserialize(d)?;
        if n % 2 == 0 {
            Ok(n)
        } else {
            Err(serde::de::Error::custom(format!("{n} is odd")))
        }
    }
    assert_eq!(
        error_of::<Vec<Even>>(&Term::list([int(2), int(3)])),
        "at [1]: 3 is odd"
    );
}

// ------------------------------------------------------------------ bytes, safety

#[test]
fn safe_decoding_works_once_the_type_atoms_exist() {
    let bytes = to_bytes(&ann()).unwrap();
    let safe = DecodeOptions::new().safe(true);
    assert_eq!(from_bytes_with::<User>(&safe, &bytes).unwrap(), ann());
    // An atom nobody made is refused before any value is built.
    let t = map([(atom("name"), bin("A"))]);
    let mut raw = encode(&t);
    let pos = raw.windows(4).position(|w| w == b"name").unwrap();
    raw[pos..pos + 4].copy_from_slice(b"nXq9");
    let err = from_bytes_with::<User>(&safe, &raw).unwrap_err();
    assert!(err.decode_error().is_some(), "{err}");
}

#[derive(Deserialize, Debug)]
struct Node(Vec<Node>);

fn nested(depth: usize) -> Term {
    let mut t = Term::NIL;
    for _ in 0..depth {
        t = Term::list([t]);
    }
    t
}

/// Runs `f` on a thread with a large stack: debug builds spend a few KiB
/// of stack per nesting level, in decoding as in deserializing.
fn with_big_stack(f: impl FnOnce() + Send + 'static) {
    std::thread::Builder::new()
        .stack_size(64 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap();
}

#[test]
fn terms_as_deep_as_decoding_allows_are_read() {
    with_big_stack(|| {
        // The decoder counts the innermost `[]` as a level.
        let deepest = ergo_etf::DEFAULT_MAX_DEPTH - 1;
        let bytes = encode(&nested(deepest));
        let mut n: Node = from_bytes(&bytes).unwrap();
        let mut depth = 0;
        while let Some(next) = n.0.pop() {
            n = next;
            depth += 1;
        }
        assert_eq!(depth, deepest);
    });
}

#[test]
fn deeper_terms_are_refused_not_overflowed() {
    with_big_stack(|| {
        let t = nested(ergo_etf::DEFAULT_MAX_DEPTH + 1);
        let err = from_term::<Node>(&t).unwrap_err();
        assert_eq!(
            err.decode_error().map(|e| e.kind()),
            Some(&ergo_etf::DecodeErrorKind::TooDeep {
                limit: ergo_etf::DEFAULT_MAX_DEPTH
            })
        );
        let d = ergo_etf::serde::Deserializer::new(&t).max_depth(5000);
        assert!(Node::deserialize(d).is_ok());
        let shallow = ergo_etf::serde::Deserializer::new(&t).max_depth(3);
        assert!(Node::deserialize(shallow).is_err());
    });
}

// ------------------------------------------------------------------ properties

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Record {
    id: u64,
    big: i128,
    name: String,
    letter: char,
    tags: Vec<String>,
    score: Option<f64>,
    shape: Shape,
    extra: HashMap<String, Vec<Option<i32>>>,
    pair: (i8, bool),
    children: Vec<Child>,
}

#[derive(Serialize, Deserialize, Debug, PartialEq, Clone)]
struct Child {
    #[serde(rename = "childName")]
    name: String,
    flags: BTreeMap<u16, bool>,
    unit: (),
}

fn finite() -> impl Strategy<Value = f64> {
    any::<f64>().prop_filter("Erlang floats are finite", |f| f.is_finite())
}

fn shape() -> impl Strategy<Value = Shape> {
    let leaf = prop_oneof![
        Just(Shape::Empty),
        Just(Shape::MyVariant),
        finite().prop_map(Shape::Circle),
        (any::<u32>(), any::<u32>()).prop_map(|(a, b)| Shape::Rect(a, b)),
        (".*", any::<(i32, i32)>()).prop_map(|(text, at)| Shape::Labeled { text, at }),
    ];
    leaf.prop_recursive(3, 8, 1, |inner| {
        inner.prop_map(|s| Shape::Nested(Box::new(s)))
    })
}

fn child() -> impl Strategy<Value = Child> {
    (
        ".*",
        prop::collection::btree_map(any::<u16>(), any::<bool>(), 0..4),
    )
        .prop_map(|(name, flags)| Child {
            name,
            flags,
            unit: (),
        })
}

fn record() -> impl Strategy<Value = Record> {
    (
        (any::<u64>(), any::<i128>(), ".*", any::<char>()),
        prop::collection::vec(".{0,8}", 0..4),
        prop::option::of(finite()),
        shape(),
        prop::collection::hash_map(
            ".{0,6}",
            prop::collection::vec(prop::option::of(any::<i32>()), 0..4),
            0..4,
        ),
        any::<(i8, bool)>(),
        prop::collection::vec(child(), 0..3),
    )
        .prop_map(
            |((id, big, name, letter), tags, score, shape, extra, pair, children)| Record {
                id,
                big,
                name,
                letter,
                tags,
                score,
                shape,
                extra,
                pair,
                children,
            },
        )
}

/// Any term, of any shape, for checking that reading never panics.
fn any_term() -> impl Strategy<Value = Term> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(Term::Int),
        any::<i128>().prop_map(Term::from),
        finite().prop_map(Term::Float),
        prop_oneof![
            Just("nil"),
            Just("true"),
            Just("undefined"),
            Just("circle"),
            Just("rect"),
            Just("name"),
            Just("__struct__"),
            Just("empty"),
        ]
        .prop_map(Term::atom),
        ".{0,6}".prop_map(|s| Term::binary(&s)),
        prop::collection::vec(any::<u8>(), 0..6).prop_map(Term::binary),
        Just(Term::Pid(Pid::new(Atom::NONODE, 1, 2, 3))),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Term::List),
            prop::collection::vec(inner.clone(), 0..5).prop_map(Term::Tuple),
            (prop::collection::vec(inner.clone(), 1..3), inner.clone())
                .prop_map(|(h, t)| Term::list_with_tail(h, t)),
            prop::collection::vec((inner.clone(), inner), 0..4)
                .prop_map(|kv| Term::Map(Map::from_pairs(kv))),
        ]
    })
}

proptest! {
    #[test]
    fn random_nested_values_round_trip_through_bytes(r in record()) {
        let bytes = to_bytes(&r).unwrap();
        prop_assert_eq!(from_bytes::<Record>(&bytes).unwrap(), r.clone());
        let term = to_term(&r).unwrap();
        prop_assert_eq!(decode(&bytes).unwrap(), term);
    }

    #[test]
    fn terms_of_any_shape_never_panic(t in any_term()) {
        let _ = from_term::<Record>(&t);
        let _ = from_term::<Shape>(&t);
        let _ = from_term::<Vec<Shape>>(&t);
        let _ = from_term::<HashMap<String, Vec<Option<i32>>>>(&t);
        let _ = from_term::<(u8, String, Option<char>)>(&t);
        let _ = from_term::<Seen>(&t);
        let _ = from_term::<User>(&t);
        let _ = from_term::<TermProbe>(&t);
    }
}

impl<'de> Deserialize<'de> for TermProbe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<TermProbe, D::Error> {
        d.deserialize_ignored_any(serde::de::IgnoredAny)
            .map(|_| TermProbe)
    }
}

/// Reads nothing: checks that skipping any term is fine.
#[derive(Debug)]
struct TermProbe;
