//! The largest terms the default limits let in can be used on an ordinary
//! 2 MiB thread (a tokio worker's stack) even in a debug build: decoded,
//! printed, encoded, cloned, compared, hashed and dropped.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use ergo_etf::{DEFAULT_MAX_DEPTH, Term, decode, encode};

/// `containers` nested containers around the integer 7.
fn nested(containers: usize, open: &[u8], close: &[u8]) -> Vec<u8> {
    let mut bytes = vec![131];
    for _ in 0..containers {
        bytes.extend_from_slice(open);
    }
    bytes.push(97);
    bytes.push(7);
    for _ in 0..containers {
        bytes.extend_from_slice(close);
    }
    bytes
}

fn exercise(bytes: Vec<u8>) {
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let t = decode(&bytes).expect("a term at the depth limit decodes");
            let again = decode(&encode(&t)).expect("re-encoded term decodes");
            assert!(again == t, "round trip changed the term");
            let copy = t.clone();
            assert_eq!(copy, t);
            assert_eq!(copy.cmp(&t), std::cmp::Ordering::Equal);
            let mut h = DefaultHasher::new();
            t.hash(&mut h);
            let _ = h.finish();
            assert!(t.to_string().len() > DEFAULT_MAX_DEPTH);
            drop(copy);
            drop(t);
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
}

#[test]
fn deepest_allowed_tuples_are_usable_on_a_small_stack() {
    exercise(nested(DEFAULT_MAX_DEPTH, &[104, 1], &[]));
}

#[test]
fn deepest_allowed_lists_are_usable_on_a_small_stack() {
    // [[[...7...]]]: each level a one-element list ending in [].
    exercise(nested(DEFAULT_MAX_DEPTH, &[108, 0, 0, 0, 1], &[106]));
}

#[test]
fn deepest_allowed_maps_are_usable_on_a_small_stack() {
    exercise(nested(DEFAULT_MAX_DEPTH, &[116, 0, 0, 0, 1, 97, 0], &[]));
}

#[test]
fn one_level_more_is_refused() {
    let bytes = nested(DEFAULT_MAX_DEPTH + 1, &[104, 1], &[]);
    assert!(decode(&bytes).is_err());
    let _ = Term::NIL;
}

#[test]
fn skipping_deep_unknown_values_is_safe_on_a_small_stack() {
    // #{junk => [[[...]]]}: a derived struct skips the unknown key's value.
    #[derive(ergo_macros::Term, Debug)]
    struct Empty {}
    let mut bytes = vec![131, 116, 0, 0, 0, 1, 119, 4, b'j', b'u', b'n', b'k'];
    for _ in 0..100_000 {
        bytes.extend_from_slice(&[108, 0, 0, 0, 1]);
    }
    bytes.push(106);
    bytes.extend(std::iter::repeat_n(106u8, 100_000));
    std::thread::Builder::new()
        .stack_size(2 << 20)
        .spawn(move || {
            let r = ergo_etf::decode_as::<Empty>(&bytes);
            assert!(
                r.as_ref()
                    .is_err_and(|e| matches!(e.kind(), ergo_etf::DecodeErrorKind::TooDeep { .. })),
                "{r:?}"
            );
        })
        .unwrap()
        .join()
        .expect("no stack overflow");
}
