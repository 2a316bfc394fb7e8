//! `#[derive(Term)]`: every representation and attribute, checked four ways —
//! the `Term` it builds, the bytes it writes straight (which must equal the
//! bytes of that `Term`), and both ways back.

use std::collections::BTreeMap;
use std::fmt::Debug;

use ergo_etf::{
    Atom, ConvertError, Decode, DecodeErrorKind, Encode, FromTerm, Term, ToTerm, decode, decode_as,
    encode,
};
use ergo_macros::Term;
use proptest::prelude::*;

/// Checks that `value` becomes `expected`, that the direct encoder writes
/// exactly the bytes of `expected`, and that both decoders give `value` back.
fn check<T>(value: &T, expected: &str)
where
    T: ToTerm + FromTerm + Encode + Decode + PartialEq + Debug,
{
    let term = value.to_term();
    assert_eq!(term.to_string(), expected, "term of {value:?}");
    let direct = encode(value);
    assert_eq!(
        direct,
        encode(&term),
        "direct bytes differ from the Term's for {value:?}"
    );
    assert_eq!(&T::from_term(&term).unwrap(), value, "from_term");
    assert_eq!(&decode_as::<T>(&direct).unwrap(), value, "decode_as");
    assert_eq!(decode(&direct).unwrap(), term, "generic decode");
}

fn atom(s: &str) -> Term {
    Term::atom(s)
}

#[derive(Term, Debug, PartialEq, Clone)]
struct User {
    name: String,
    age: u32,
    admin: bool,
}

#[test]
fn named_struct_is_a_map_with_atom_keys() {
    check(
        &User {
            name: "ann".into(),
            age: 41,
            admin: false,
        },
        r#"#{name => <<"ann">>,age => 41,admin => false}"#,
    );
}

#[test]
fn map_decoding_ignores_key_order_and_unknown_keys() {
    let t = Term::map([
        (atom("extra"), Term::Int(1)),
        (atom("admin"), atom("true")),
        (atom("age"), Term::Int(7)),
        (atom("name"), Term::binary("bo")),
    ]);
    let want = User {
        name: "bo".into(),
        age: 7,
        admin: true,
    };
    assert_eq!(User::from_term(&t).unwrap(), want);
    assert_eq!(decode_as::<User>(&encode(&t)).unwrap(), want);
}

#[test]
fn elixir_string_keys_are_accepted_when_decoding() {
    let t = Term::map([
        (Term::binary("name"), Term::binary("cy")),
        (Term::binary("age"), Term::Int(3)),
        (Term::binary("admin"), atom("false")),
    ]);
    let want = User {
        name: "cy".into(),
        age: 3,
        admin: false,
    };
    assert_eq!(User::from_term(&t).unwrap(), want);
    assert_eq!(decode_as::<User>(&encode(&t)).unwrap(), want);
}

#[test]
fn missing_field_is_a_mismatch_naming_the_shape() {
    let t = Term::map([(atom("name"), Term::binary("x"))]);
    let e = User::from_term(&t).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"expected #{name => binary, age => integer in 0..=4294967295 (u32), admin => boolean}, found #{name => <<"x">>}"#
    );
    let e = decode_as::<User>(&encode(&t)).unwrap_err();
    assert!(
        e.to_string().starts_with("expected #{name => binary"),
        "{e}"
    );
}

#[test]
fn duplicate_key_is_refused_by_the_typed_decoder() {
    // #{name => .., name => ..} can only come from a hand-made encoding.
    let mut bytes = vec![131, 116, 0, 0, 0, 2];
    for _ in 0..2 {
        bytes.extend_from_slice(&[119, 4, b'n', b'a', b'm', b'e', 109, 0, 0, 0, 0]);
    }
    assert!(decode_as::<User>(&bytes).is_err());
}

#[derive(Term, Debug, PartialEq)]
#[term(record)]
struct Point {
    x: i64,
    y: i64,
}

#[derive(Term, Debug, PartialEq)]
#[term(record, rename = "pt3")]
struct Point3D {
    x: i64,
    y: i64,
    z: i64,
}

#[test]
fn record_is_a_tagged_tuple_named_in_snake_case() {
    check(&Point { x: 1, y: -2 }, "{point,1,-2}");
    check(&Point3D { x: 1, y: 2, z: 3 }, "{pt3,1,2,3}");
    let wrong_tag = Term::tuple([atom("pointy"), Term::Int(1), Term::Int(2)]);
    assert!(Point::from_term(&wrong_tag).is_err());
    assert!(decode_as::<Point>(&encode(&wrong_tag)).is_err());
}

#[derive(Term, Debug, PartialEq)]
#[term(tuple)]
struct Pair {
    key: String,
    value: f64,
}

#[derive(Term, Debug, PartialEq)]
struct Wrapper(u8, String);

#[derive(Term, Debug, PartialEq)]
struct Marker;

#[derive(Term, Debug, PartialEq)]
struct HttpRequestSeen;

#[test]
fn tuple_struct_and_tuple_repr_are_plain_tuples() {
    check(
        &Pair {
            key: "k".into(),
            value: 0.5,
        },
        r#"{<<"k">>,0.5}"#,
    );
    check(&Wrapper(9, "w".into()), r#"{9,<<"w">>}"#);
}

#[test]
fn unit_struct_is_an_atom() {
    check(&Marker, "marker");
    check(&HttpRequestSeen, "http_request_seen");
}

#[derive(Term, Debug, PartialEq)]
#[term(proplist)]
struct Opts {
    port: u16,
    #[term(default)]
    reuse: bool,
}

#[test]
fn proplist_is_a_list_of_pairs() {
    check(
        &Opts {
            port: 80,
            reuse: true,
        },
        "[{port,80},{reuse,true}]",
    );
    let t = Term::list([Term::tuple([atom("port"), Term::Int(8)])]);
    let want = Opts {
        port: 8,
        reuse: false,
    };
    assert_eq!(Opts::from_term(&t).unwrap(), want);
    assert_eq!(decode_as::<Opts>(&encode(&t)).unwrap(), want);
}

#[derive(Term, Debug, PartialEq)]
#[term(elixir_struct = "Elixir.MyApp.User")]
struct ExUser {
    name: String,
}

#[test]
fn elixir_struct_carries_its_module() {
    check(
        &ExUser { name: "jo".into() },
        r#"#{'__struct__' => 'Elixir.MyApp.User',name => <<"jo">>}"#,
    );
    let other = Term::map([
        (atom("__struct__"), atom("Elixir.Other")),
        (atom("name"), Term::binary("jo")),
    ]);
    assert!(ExUser::from_term(&other).is_err());
    assert!(decode_as::<ExUser>(&encode(&other)).is_err());
}

#[derive(Term, Debug, PartialEq)]
#[term(transparent)]
struct UserId(u64);

#[test]
fn transparent_newtype_is_its_field() {
    check(&UserId(5), "5");
}

#[derive(Term, Debug, PartialEq)]
enum Request {
    Ping,
    Add(i64),
    Move(i64, i64),
    Rename {
        from: String,
        to: String,
    },
    #[term(record)]
    Resize {
        w: u32,
        h: u32,
    },
    #[term(rename = "GET")]
    Get,
}

#[test]
fn enum_variants_have_erlang_forms() {
    check(&Request::Ping, "ping");
    check(&Request::Add(5), "{add,5}");
    check(&Request::Move(1, 2), "{move,1,2}");
    check(
        &Request::Rename {
            from: "a".into(),
            to: "b".into(),
        },
        r#"{rename,#{from => <<"a">>,to => <<"b">>}}"#,
    );
    check(&Request::Resize { w: 3, h: 4 }, "{resize,3,4}");
    check(&Request::Get, "'GET'");
}

#[test]
fn wrong_payload_names_the_variant_shape() {
    let t = Term::tuple([atom("add"), Term::binary("x")]);
    let e = Request::from_term(&t).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"expected {add, integer}, found {add,<<"x">>}"#
    );
    assert_eq!(e.root().to_string(), r#"expected integer, found <<"x">>"#);
    let e = decode_as::<Request>(&encode(&t)).unwrap_err();
    assert_eq!(
        e.to_string(),
        r#"expected {add, integer}, found {add,<<"x">>}"#
    );
}

#[test]
fn unknown_variant_lists_every_accepted_form() {
    let t = Term::tuple([atom("nope")]);
    let e = Request::from_term(&t).unwrap_err().to_string();
    assert!(
        e.starts_with("expected ping | {add, integer} | {move, integer, integer}"),
        "{e}"
    );
    assert!(e.ends_with("found {nope}"), "{e}");
    let e = decode_as::<Request>(&encode(&t)).unwrap_err().to_string();
    assert!(e.ends_with("found {nope}"), "{e}");
}

#[derive(Term, Debug, PartialEq)]
#[term(rename_all = "camelCase")]
struct Renamed {
    first_name: String,
    #[term(rename = "SURNAME")]
    last_name: String,
    #[term(skip)]
    cache: Vec<u8>,
    #[term(default = "default_level")]
    level: u8,
}

fn default_level() -> u8 {
    7
}

#[test]
fn rename_skip_and_default_shape_the_map() {
    check(
        &Renamed {
            first_name: "a".into(),
            last_name: "b".into(),
            cache: vec![],
            level: 1,
        },
        r#"#{firstName => <<"a">>,'SURNAME' => <<"b">>,level => 1}"#,
    );
    let t = Term::map([
        (atom("firstName"), Term::binary("a")),
        (atom("SURNAME"), Term::binary("b")),
    ]);
    let want = Renamed {
        first_name: "a".into(),
        last_name: "b".into(),
        cache: vec![],
        level: 7,
    };
    assert_eq!(Renamed::from_term(&t).unwrap(), want);
    assert_eq!(decode_as::<Renamed>(&encode(&t)).unwrap(), want);
}

#[derive(Term, Debug, PartialEq)]
#[term(rename_all = "SCREAMING_SNAKE_CASE")]
enum Level {
    LowWater,
    HighWater,
}

#[test]
fn rename_all_applies_to_enum_variants() {
    check(&Level::LowWater, "'LOW_WATER'");
    check(&Level::HighWater, "'HIGH_WATER'");
}

/// A field stored as the atom of its decimal text, to show `with`.
mod as_atom_text {
    use ergo_etf::{Atom, ConvertError, DecodeError, Decoder, Encoder, Term};

    pub(crate) fn to_term(v: &u32) -> Term {
        Term::Atom(Atom::from(v.to_string()))
    }
    pub(crate) fn encode(v: &u32, enc: &mut Encoder<'_>) {
        enc.write_atom_str(&v.to_string());
    }
    pub(crate) fn from_term(t: &Term) -> Result<u32, ConvertError> {
        t.as_atom()
            .and_then(|a| a.as_str().parse().ok())
            .ok_or_else(|| ConvertError::new("atom of digits", t))
    }
    pub(crate) fn decode(dec: &mut Decoder<'_>) -> Result<u32, DecodeError> {
        let at = dec.position();
        let name = dec.read_atom_name()?;
        name.parse().map_err(|_| dec.mismatch("atom of digits", at))
    }
}

#[derive(Term, Debug, PartialEq)]
struct WithField {
    #[term(with = "as_atom_text")]
    code: u32,
}

#[test]
fn with_module_converts_one_field() {
    check(&WithField { code: 42 }, "#{code => '42'}");
}

#[derive(Term, Debug, PartialEq, Clone)]
struct Envelope<T> {
    id: u64,
    body: T,
}

#[derive(Term, Debug, PartialEq)]
enum Reply<T, E> {
    Ok(T),
    Error(E),
}

#[test]
fn generic_types_derive() {
    check(
        &Envelope {
            id: 1,
            body: vec![1u8, 2],
        },
        r#"#{id => 1,body => [1,2]}"#,
    );
    check(
        &Envelope {
            id: 2,
            body: User {
                name: "n".into(),
                age: 1,
                admin: true,
            },
        },
        r#"#{id => 2,body => #{name => <<"n">>,age => 1,admin => true}}"#,
    );
    check(&Reply::<i32, String>::Ok(1), "{ok,1}");
    check(
        &Reply::<i32, String>::Error("e".into()),
        r#"{error,<<"e">>}"#,
    );
}

#[derive(Term, Debug, PartialEq)]
struct Nested {
    users: Vec<User>,
    by_name: BTreeMap<String, Point>,
    maybe: Option<Box<Request>>,
    pair: (Atom, i32),
}

#[test]
fn nested_derived_types_compose() {
    let v = Nested {
        users: vec![User {
            name: "a".into(),
            age: 1,
            admin: false,
        }],
        by_name: BTreeMap::from([("p".to_string(), Point { x: 0, y: 1 })]),
        maybe: Some(Box::new(Request::Add(3))),
        pair: (Atom::from("k"), -1),
    };
    check(
        &v,
        r#"#{users => [#{name => <<"a">>,age => 1,admin => false}],by_name => #{<<"p">> => {point,0,1}},'maybe' => {add,3},pair => {k,-1}}"#,
    );
    let none = Nested {
        users: vec![],
        by_name: BTreeMap::new(),
        maybe: None,
        pair: (Atom::OK, 0),
    };
    check(
        &none,
        "#{users => [],by_name => #{},'maybe' => undefined,pair => {ok,0}}",
    );
}

#[test]
fn mismatch_inside_nested_value_keeps_the_root_cause() {
    let t = Term::map([
        (atom("users"), Term::list([Term::Int(1)])),
        (atom("by_name"), Term::map([])),
        (atom("maybe"), atom("undefined")),
        (atom("pair"), Term::tuple([atom("k"), Term::Int(0)])),
    ]);
    let e: ConvertError = Nested::from_term(&t).unwrap_err();
    assert!(
        e.root()
            .to_string()
            .starts_with("expected #{name => binary"),
        "{}",
        e.root()
    );
    match decode_as::<Nested>(&encode(&t)).unwrap_err().into_kind() {
        DecodeErrorKind::Mismatch(e) => {
            assert!(
                e.to_string().starts_with("expected #{users => [#{name"),
                "{e}"
            );
        }
        other => panic!("expected a mismatch, got {other}"),
    }
}

#[derive(Term, Debug, PartialEq)]
enum Accented {
    #[term(rename = "é")]
    Latin1(u8),
    #[term(rename = "λ")]
    Greek {
        #[term(rename = "ü")]
        u: bool,
    },
}

#[test]
fn derived_bytes_equal_the_term_bytes_in_both_atom_encodings() {
    use ergo_etf::EncodeOptions;
    fn same<T: ToTerm + Encode + Debug>(v: &T) {
        for opts in [EncodeOptions::new(), EncodeOptions::new().minor_version(2)] {
            assert_eq!(
                opts.encode(v),
                opts.encode(&v.to_term()),
                "{v:?} with {opts:?}"
            );
        }
    }
    same(&Accented::Latin1(1));
    same(&Accented::Greek { u: true });
    same(&User {
        name: "x".into(),
        age: 1,
        admin: false,
    });
    same(&ExUser { name: "y".into() });
    same(&Opts {
        port: 1,
        reuse: true,
    });
    same(&Point { x: 1, y: 2 });
    check(&Accented::Latin1(3), "{é,3}");
    check(&Accented::Greek { u: false }, "{'λ',#{ü => false}}");
}

#[derive(Term, Debug, PartialEq)]
enum Tree {
    Leaf(i64),
    Node(Vec<Tree>),
}

#[test]
fn recursive_types_convert_and_describe_themselves() {
    check(
        &Tree::Node(vec![Tree::Leaf(1), Tree::Node(vec![Tree::Leaf(2)])]),
        "{node,[{leaf,1},{node,[{leaf,2}]}]}",
    );
    // The shape names the type where it recurses instead of looping.
    assert_eq!(
        <Tree as FromTerm>::shape(),
        "{leaf, integer} | {node, [Tree]}"
    );
    let e = decode_as::<Tree>(&encode(&Term::Int(255))).unwrap_err();
    assert_eq!(
        e.to_string(),
        "expected {leaf, integer} | {node, [Tree]}, found 255"
    );
}

#[test]
fn deep_input_for_a_recursive_type_is_refused_not_a_stack_overflow() {
    // {node,[{node,[... 100,000 deep ...]}]}, on the test thread's own stack.
    let mut bytes = vec![131];
    for _ in 0..100_000 {
        bytes.extend_from_slice(&[104, 2, 119, 4, b'n', b'o', b'd', b'e', 108, 0, 0, 0, 1]);
    }
    bytes.extend_from_slice(&[104, 2, 119, 4, b'l', b'e', b'a', b'f', 97, 1]);
    bytes.extend(std::iter::repeat_n(106u8, 100_000));
    match decode_as::<Tree>(&bytes) {
        Err(e) if matches!(e.kind(), DecodeErrorKind::TooDeep { .. }) => {}
        other => panic!("expected TooDeep, got {other:?}"),
    }
    assert!(decode(&bytes).is_err_and(|e| matches!(e.kind(), DecodeErrorKind::TooDeep { .. })));
}

proptest! {
    #[test]
    fn derived_types_round_trip(
        name in ".{0,12}",
        age in any::<u32>(),
        admin in any::<bool>(),
        x in any::<i64>(),
        y in any::<i64>(),
        id in any::<u64>(),
        tag in 0u8..5,
    ) {
        let user = User { name: name.clone(), age, admin };
        let env = Envelope { id, body: user.clone() };
        let bytes = encode(&env);
        prop_assert_eq!(&bytes, &encode(&env.to_term()));
        prop_assert_eq!(decode_as::<Envelope<User>>(&bytes).unwrap(), env);
        let req = match tag {
            0 => Request::Ping,
            1 => Request::Add(x),
            2 => Request::Move(x, y),
            3 => Request::Rename { from: name.clone(), to: name },
            _ => Request::Resize { w: age, h: age / 2 },
        };
        let bytes = encode(&req);
        prop_assert_eq!(&bytes, &encode(&req.to_term()));
        prop_assert_eq!(Request::from_term(&req.to_term()).unwrap(), decode_as::<Request>(&bytes).unwrap());
        prop_assert_eq!(decode_as::<Request>(&bytes).unwrap(), req);
    }
}
