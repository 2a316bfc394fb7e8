//! Property tests: random terms of every kind survive encoding, and the
//! order on terms is a total order consistent with equality.

use std::cmp::Ordering;
use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use ergo_etf::{
    Atom, BigInt, BitBinary, DecodeOptions, EncodeOptions, Fun, Map, Pid, Port, Ref, Term, decode,
    decode_bytes, encode, encode_vectored,
};
use proptest::prelude::*;

fn atom_strategy() -> impl Strategy<Value = Atom> {
    prop_oneof![
        Just(Atom::OK),
        Just(Atom::from("hello")),
        Just(Atom::from("Elixir.Foo")),
        Just(Atom::from("é")),
        Just(Atom::from("λ")),
        "[a-z_]{0,8}".prop_map(|s| Atom::from(s.as_str())),
        ".{0,6}".prop_map(|s| Atom::from(s.as_str())),
    ]
}

fn leaf() -> impl Strategy<Value = Term> {
    prop_oneof![
        any::<i64>().prop_map(Term::Int),
        (0i64..=255).prop_map(Term::Int),
        any::<i128>().prop_map(Term::from),
        prop::collection::vec(any::<u8>(), 0..40).prop_flat_map(|mag| {
            any::<bool>().prop_map(move |neg| {
                let sign = if neg {
                    num_bigint::Sign::Minus
                } else {
                    num_bigint::Sign::Plus
                };
                Term::bigint(BigInt::from_bytes_le(sign, &mag))
            })
        }),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Term::Float),
        atom_strategy().prop_map(Term::Atom),
        prop::collection::vec(any::<u8>(), 0..100).prop_map(|b| Term::Binary(b.into())),
        (prop::collection::vec(any::<u8>(), 1..10), 1u8..8)
            .prop_map(|(b, bits)| Term::BitBinary(BitBinary::new(b, bits).unwrap())),
        (atom_strategy(), any::<u32>(), any::<u32>(), any::<u32>())
            .prop_map(|(n, i, s, c)| Term::Pid(Pid::new(n, i, s, c))),
        (atom_strategy(), any::<u64>(), any::<u32>())
            .prop_map(|(node, id, creation)| Term::Port(Port { node, id, creation })),
        (
            atom_strategy(),
            any::<u32>(),
            prop::collection::vec(any::<u32>(), 1..=5)
        )
            .prop_map(|(n, c, ids)| Term::Ref(Ref::new(n, c, &ids).unwrap())),
        (atom_strategy(), atom_strategy(), any::<u8>()).prop_map(|(module, function, arity)| {
            Term::Fun(Fun::Export {
                module,
                function,
                arity,
            })
        }),
        Just(Term::NIL),
    ]
}

fn term_strategy() -> impl Strategy<Value = Term> {
    leaf().prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Term::Tuple),
            prop::collection::vec(inner.clone(), 0..8).prop_map(Term::List),
            (prop::collection::vec(inner.clone(), 1..5), leaf())
                .prop_map(|(h, t)| Term::list_with_tail(h, t)),
            prop::collection::vec((inner.clone(), inner), 0..6)
                .prop_map(|pairs| Term::Map(Map::from_pairs(pairs))),
        ]
    })
}

fn hash_of(t: &Term) -> u64 {
    let mut h = DefaultHasher::new();
    t.hash(&mut h);
    h.finish()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn any_term_round_trips_through_bytes(t in term_strategy()) {
        let bytes = encode(&t);
        let back = decode(&bytes).unwrap();
        prop_assert_eq!(&back, &t);
        // Re-encoding what was decoded gives the very same bytes.
        prop_assert_eq!(encode(&back), bytes.clone());
        // Both atom encodings, and compression, decode to the same term.
        let utf8 = EncodeOptions::new().minor_version(2).encode(&t);
        prop_assert_eq!(decode(&utf8).unwrap(), t.clone());
        let z = EncodeOptions::new().compressed(6).encode(&t);
        prop_assert_eq!(decode(&z).unwrap(), t.clone());
        // Vectored output is the same bytes, and a shared decode the same term.
        prop_assert_eq!(encode_vectored(&t, 16).concat(), bytes.clone());
        prop_assert_eq!(decode_bytes(&bytes.clone().into()).unwrap(), t.clone());
        // Safe mode accepts it: every atom in it exists now.
        prop_assert_eq!(DecodeOptions::new().safe(true).decode(&bytes).unwrap(), t);
    }

    #[test]
    fn term_order_is_total_and_consistent_with_equality(a in term_strategy(), b in term_strategy(), c in term_strategy()) {
        prop_assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
        prop_assert_eq!(a.cmp(&a), Ordering::Equal);
        prop_assert_eq!(a == b, a.cmp(&b) == Ordering::Equal);
        if a == b {
            prop_assert_eq!(hash_of(&a), hash_of(&b));
        }
        if a <= b && b <= c {
            prop_assert!(a <= c, "{} <= {} <= {} but not {} <= {}", a, b, c, a, c);
        }
    }

    #[test]
    fn truncated_input_is_an_error_never_a_panic(t in term_strategy(), cut in any::<prop::sample::Index>()) {
        let bytes = encode(&t);
        let n = cut.index(bytes.len());
        if n < bytes.len() {
            prop_assert!(decode(&bytes[..n]).is_err());
        }
    }

    #[test]
    fn corrupted_input_never_panics(t in term_strategy(), at in any::<prop::sample::Index>(), byte in any::<u8>()) {
        let mut bytes = encode(&t);
        let i = at.index(bytes.len());
        bytes[i] = byte;
        let _ = decode(&bytes);
        let _ = DecodeOptions::new().safe(true).decode(&bytes);
    }
}
