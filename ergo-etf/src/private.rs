//! Support for code that `#[derive(Term)]` generates. Not a public API: it
//! may change in any release.

use std::borrow::Cow;

use crate::decode::Decoder;
use crate::error::DecodeError;
use crate::tags;
use crate::term::{Map, Term};

pub use std::borrow::Cow as PrivateCow;
pub use std::sync::OnceLock;

pub use crate::convert::decode_list_of;

/// Reads a map key as text: an atom, or a UTF-8 binary (Elixir maps often
/// have string keys). Any other key is skipped along with nothing else and
/// gives `None`; the caller then skips the value.
pub fn read_map_key<'a>(dec: &mut Decoder<'a>) -> Result<Option<Cow<'a, str>>, DecodeError> {
    match dec.peek_tag()? {
        tags::SMALL_ATOM_UTF8
        | tags::ATOM_UTF8
        | tags::SMALL_ATOM
        | tags::ATOM
        | tags::ATOM_CACHE_REF => dec.read_atom_name().map(Some),
        tags::BINARY => Ok(std::str::from_utf8(dec.read_binary_slice()?)
            .ok()
            .map(Cow::Borrowed)),
        _ => dec.skip_term().map(|()| None),
    }
}

/// `true` when the next term is an atom (of any encoding).
pub fn next_is_atom(dec: &Decoder<'_>) -> Result<bool, DecodeError> {
    Ok(matches!(
        dec.peek_tag()?,
        tags::SMALL_ATOM_UTF8
            | tags::ATOM_UTF8
            | tags::SMALL_ATOM
            | tags::ATOM
            | tags::ATOM_CACHE_REF
    ))
}

/// `true` when the next term is a tuple.
pub fn next_is_tuple(dec: &Decoder<'_>) -> Result<bool, DecodeError> {
    Ok(matches!(
        dec.peek_tag()?,
        tags::SMALL_TUPLE | tags::LARGE_TUPLE
    ))
}

/// A map from pairs whose keys are known to be distinct.
pub fn map_from_unique(entries: Vec<(Term, Term)>) -> Map {
    Map::from_unique(entries)
}

/// The value under an atom key, or else under the same key as a binary.
pub fn map_lookup<'t>(map: &'t Map, key: &str) -> Option<&'t Term> {
    map.iter()
        .find(|(k, _)| match k {
            Term::Atom(a) => a.as_str() == key,
            Term::Binary(b) => &b[..] == key.as_bytes(),
            _ => false,
        })
        .map(|(_, v)| v)
}

/// The value under key `key` in a proplist (`[{key, Value}]`), if any.
pub fn proplist_lookup<'t>(items: &'t [Term], key: &str) -> Option<&'t Term> {
    items.iter().find_map(|item| match item {
        Term::Tuple(kv) if kv.len() == 2 && kv[0].is_atom(key) => Some(&kv[1]),
        _ => None,
    })
}

/// A duplicate-key error for a typed map decoder.
pub fn duplicate_key(dec: &Decoder<'_>, key: &str, start: usize) -> DecodeError {
    dec.mismatch(format!("a map with one `{key}` key"), start)
}

thread_local! {
    static SHAPES_IN_PROGRESS: std::cell::RefCell<Vec<&'static str>> =
        const { std::cell::RefCell::new(Vec::new()) };
}

/// Computes a derived type's shape, naming the type instead of recursing
/// when the type contains itself (`enum Tree { Node(Vec<Tree>) }`).
pub fn guard_shape(
    full_name: &'static str,
    short_name: &'static str,
    shape: impl FnOnce() -> Cow<'static, str>,
) -> Cow<'static, str> {
    let reentered = SHAPES_IN_PROGRESS.with(|s| {
        let mut s = s.borrow_mut();
        if s.contains(&full_name) {
            true
        } else {
            s.push(full_name);
            false
        }
    });
    if reentered {
        return Cow::Borrowed(short_name);
    }
    struct Pop;
    impl Drop for Pop {
        fn drop(&mut self) {
            SHAPES_IN_PROGRESS.with(|s| {
                s.borrow_mut().pop();
            });
        }
    }
    let _pop = Pop;
    shape()
}
