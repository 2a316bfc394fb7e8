//! Typed conversion between Rust values and Erlang terms.
//!
//! [`ToTerm`] and [`FromTerm`] convert to and from the dynamic [`Term`];
//! [`Encode`] and [`Decode`] go straight to and from bytes. This module
//! implements all four for the standard types:
//!
//! | Rust | Erlang |
//! |---|---|
//! | integers of every width, `BigInt` | integer |
//! | `f64`, `f32` | float (an integer is accepted when decoding) |
//! | `bool` | `true` / `false` |
//! | `String`, `&str` | binary (UTF-8); a charlist is accepted when decoding |
//! | [`Charlist`] | list of code points (`"text"` in Erlang) |
//! | [`Bytes`] | binary |
//! | `Vec<T>`, `[T]` | proper list |
//! | tuples up to 12 | tuple |
//! | `()` | `ok` |
//! | `Option<T>` | `undefined` or the value (`nil` is accepted when decoding) |
//! | `Result<T, E>` | `{ok, T}` / `{error, E}`; `Ok(())` is plain `ok` |
//! | `HashMap`, `BTreeMap` | map |
//! | [`Atom`], [`Pid`], [`Ref`], [`Port`], [`Term`], [`Map`] | themselves |

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hash};
use std::sync::Arc;

use bytes::Bytes;
use num_bigint::BigInt;

use crate::atom::Atom;
use crate::decode::{Decode, Decoder};
use crate::encode::{Encode, Encoder};
use crate::error::{ConvertError, DecodeError, DecodeErrorKind};
use crate::tags;
use crate::term::{Map, Pid, Port, Ref, Term};

/// Converts a value into a [`Term`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be converted into an Erlang term",
    note = "derive it with `#[derive(Term)]`, or implement `ToTerm` by hand"
)]
pub trait ToTerm {
    /// The term for this value.
    fn to_term(&self) -> Term;

    /// The term for this value, which is used up: a [`Term`] is moved, not
    /// copied. The default is [`ToTerm::to_term`].
    fn into_term(self) -> Term
    where
        Self: Sized,
    {
        self.to_term()
    }

    /// `true` only for `()`, whose term is `ok`: lets `Ok(())` be plain `ok`.
    #[doc(hidden)]
    const IS_UNIT: bool = false;

    /// `true` when [`ToTerm::write_term_to`] writes the term without
    /// building it, and [`ToTerm::term_byte`] and [`ToTerm::term_count`]
    /// are exact: a message of such a type leaves the node with no
    /// [`Term`] made for it.
    #[doc(hidden)]
    const WRITES_DIRECTLY: bool = false;

    /// Writes this value's term to `enc`: the bytes
    /// `enc.write_term(&self.to_term())` writes. The default builds the term.
    #[doc(hidden)]
    fn write_term_to(&self, enc: &mut Encoder<'_>) {
        enc.write_term(&self.to_term())
    }

    /// The value as a byte, if its term is an integer from 0 to 255 (a list
    /// of those is written as `STRING_EXT`). Exact only for types that
    /// write directly.
    #[doc(hidden)]
    fn term_byte(&self) -> Option<u8> {
        None
    }

    /// How many terms this value's term is made of, itself included. Exact
    /// only for types that write directly.
    #[doc(hidden)]
    fn term_count(&self) -> usize {
        1
    }

    /// Whether this value's term is made of more than `limit` terms (a
    /// type may stop counting there). Exact only for types that write
    /// directly.
    #[doc(hidden)]
    fn term_count_past(&self, limit: usize) -> bool {
        self.term_count() > limit
    }
}

/// Makes a value from a [`Term`], or says why it cannot.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be made from an Erlang term",
    note = "derive it with `#[derive(Term)]`, or implement `FromTerm` by hand"
)]
pub trait FromTerm: Sized {
    /// Converts `term`.
    fn from_term(term: &Term) -> Result<Self, ConvertError>;

    /// Converts `term`, which is used up: a [`Term`] is moved, not copied.
    /// The default is [`FromTerm::from_term`].
    fn from_owned_term(term: Term) -> Result<Self, ConvertError> {
        Self::from_term(&term)
    }

    /// Converts the elements of a list, used up, in order: the first that
    /// does not convert gives the error. Integer types take their
    /// integers out without a call per element. (Hidden: for batches of
    /// events and `Vec<T>`.)
    #[doc(hidden)]
    fn from_owned_terms(terms: Vec<Term>) -> Result<Vec<Self>, ConvertError> {
        let mut out = Vec::with_capacity(terms.len());
        for term in terms {
            out.push(Self::from_owned_term(term)?);
        }
        Ok(out)
    }

    /// Reads a proper list of this type straight from external-format
    /// bytes, without building its [`Term`]s, for types that are also
    /// [`Decode`]; `None` for those that are not (the caller then decodes
    /// the list as terms and converts them). A list that is not of this
    /// type is an `Err`, and `dec` is left somewhere inside it. (Hidden:
    /// for batches of events that come from other nodes.)
    #[doc(hidden)]
    fn decode_list(dec: &mut Decoder<'_>) -> Option<Result<Vec<Self>, DecodeError>> {
        let _ = dec;
        None
    }

    /// The Erlang shape this type accepts, for error messages
    /// (`integer`, `{ok, binary}`, `[atom]` …).
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("term")
    }
}

/// [`FromTerm::decode_list`] for a type that is [`Decode`]. (Hidden: for
/// the implementations `#[derive(Term)]` writes.)
#[doc(hidden)]
pub fn decode_list_of<T: Decode>(dec: &mut Decoder<'_>) -> Option<Result<Vec<T>, DecodeError>> {
    Some(<Vec<T> as Decode>::decode(dec))
}

/// [`FromTerm::decode_list`] for a type of this module that is [`Decode`].
macro_rules! decode_list_via_decode {
    () => {
        fn decode_list(dec: &mut Decoder<'_>) -> Option<Result<Vec<Self>, DecodeError>> {
            decode_list_of(dec)
        }
    };
}

/// A list of Unicode code points: Erlang's `"text"` (a charlist), where a
/// plain `String` is a binary.
///
/// # Examples
///
/// ```
/// use ergo_etf::{Charlist, Term, ToTerm};
/// assert_eq!(Charlist::from("hi").to_term(), Term::list([104.into(), 105.into()]));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Charlist(pub String);

impl From<&str> for Charlist {
    fn from(s: &str) -> Charlist {
        Charlist(s.to_owned())
    }
}

impl From<String> for Charlist {
    fn from(s: String) -> Charlist {
        Charlist(s)
    }
}

impl std::fmt::Display for Charlist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Restates a mismatch found inside a value as a mismatch of the whole
/// value, keeping the inner one as its cause.
pub fn mismatch_within(
    err: DecodeError,
    dec: &Decoder<'_>,
    start: usize,
    shape: impl FnOnce() -> Cow<'static, str>,
) -> DecodeError {
    if !err.is_mismatch() {
        return err;
    }
    let outer = dec.mismatch(shape(), start);
    match (err.into_kind(), outer.into_kind()) {
        (DecodeErrorKind::Mismatch(inner), DecodeErrorKind::Mismatch(outer)) => {
            DecodeErrorKind::Mismatch(outer.caused_by(inner)).into()
        }
        (_, other) => other.into(),
    }
}

// ---------------------------------------------------------------- Term itself

impl ToTerm for Term {
    fn to_term(&self) -> Term {
        self.clone()
    }

    fn into_term(self) -> Term {
        self
    }

    const WRITES_DIRECTLY: bool = true;

    fn write_term_to(&self, enc: &mut Encoder<'_>) {
        enc.write_term(self)
    }

    fn term_byte(&self) -> Option<u8> {
        match self {
            Term::Int(i) => u8::try_from(*i).ok(),
            _ => None,
        }
    }

    fn term_count(&self) -> usize {
        let mut n = 0;
        self.count_terms_past(usize::MAX, &mut n);
        n
    }

    fn term_count_past(&self, limit: usize) -> bool {
        self.count_terms_past(limit, &mut 0)
    }
}

impl FromTerm for Term {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        Ok(term.clone())
    }

    fn from_owned_term(term: Term) -> Result<Self, ConvertError> {
        Ok(term)
    }

    decode_list_via_decode!();
}

impl Decode for Term {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.read_term()
    }
}

// ---------------------------------------------------------------- integers

macro_rules! int_impls {
    ($($t:ty => $wt:ty, $write:ident, $shape:expr;)*) => {$(
        impl ToTerm for $t {
            fn to_term(&self) -> Term { Term::from(*self) }
            const WRITES_DIRECTLY: bool = true;
            #[inline]
            fn write_term_to(&self, enc: &mut Encoder<'_>) { self.encode(enc) }
            #[inline]
            fn term_byte(&self) -> Option<u8> { u8::try_from(*self).ok() }
        }
        impl Encode for $t {
            #[inline]
            fn encode(&self, enc: &mut Encoder<'_>) { enc.$write(*self as $wt) }
            #[inline]
            fn byte_value(&self) -> Option<u8> { u8::try_from(*self).ok() }
        }
        impl FromTerm for $t {
            fn from_term(term: &Term) -> Result<Self, ConvertError> {
                let v = match term {
                    Term::Int(i) => <$t>::try_from(*i).ok(),
                    Term::BigInt(b) => <$t>::try_from(&**b).ok(),
                    _ => return Err(ConvertError::new("integer", term)),
                };
                v.ok_or_else(|| ConvertError::new(Self::shape(), term))
            }
            fn from_owned_terms(terms: Vec<Term>) -> Result<Vec<Self>, ConvertError> {
                let mut out = Vec::with_capacity(terms.len());
                for term in terms {
                    let Term::Int(i) = term else {
                        out.push(Self::from_owned_term(term)?);
                        continue;
                    };
                    match <$t>::try_from(i) {
                        Ok(v) => out.push(v),
                        Err(_) => return Err(ConvertError::new(Self::shape(), &term)),
                    }
                    // An integer holds nothing to free: forgetting it
                    // saves a call to the drop of `Term` per element.
                    std::mem::forget(term);
                }
                Ok(out)
            }
            decode_list_via_decode!();
            fn shape() -> Cow<'static, str> {
                let shape: Option<&'static str> = $shape;
                match shape {
                    Some(s) => Cow::Borrowed(s),
                    None => Cow::Owned(format!(
                        "integer in {}..={} ({})", <$t>::MIN, <$t>::MAX, stringify!($t)
                    )),
                }
            }
        }
        impl Decode for $t {
            #[inline]
            fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                let at = dec.position();
                match dec.peek_tag()? {
                    tags::SMALL_INTEGER | tags::INTEGER => {
                        let i = dec.read_i64()?;
                        <$t>::try_from(i).map_err(|_| dec.mismatch(Self::shape(), at))
                    }
                    _ => {
                        let t = dec.read_integer()?;
                        Self::from_term(&t).map_err(|_| dec.mismatch(Self::shape(), at))
                    }
                }
            }
        }
    )*};
}

int_impls! {
    i8 => i64, write_i64, None;
    i16 => i64, write_i64, None;
    i32 => i64, write_i64, None;
    i64 => i64, write_i64, Some("integer");
    isize => i64, write_i64, Some("integer");
    u8 => i64, write_i64, None;
    u16 => i64, write_i64, None;
    u32 => i64, write_i64, None;
    u64 => u64, write_u64, Some("non-negative integer");
    usize => u64, write_u64, Some("non-negative integer");
    i128 => i128, write_i128, None;
    u128 => u128, write_u128, Some("non-negative integer");
}

impl ToTerm for BigInt {
    fn to_term(&self) -> Term {
        Term::bigint(self.clone())
    }
}

impl Encode for BigInt {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_bigint(self);
    }
}

impl FromTerm for BigInt {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Int(i) => Ok(BigInt::from(*i)),
            Term::BigInt(b) => Ok((**b).clone()),
            _ => Err(ConvertError::new("integer", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("integer")
    }
}

impl Decode for BigInt {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let t = dec.read_integer()?;
        Ok(BigInt::from_term(&t)?)
    }
}

// ---------------------------------------------------------------- floats

impl ToTerm for f64 {
    fn to_term(&self) -> Term {
        Term::Float(*self)
    }
}

impl Encode for f64 {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_f64(*self);
    }
}

impl FromTerm for f64 {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Float(f) => Ok(*f),
            Term::Int(i) => Ok(*i as f64),
            _ => Err(ConvertError::new("float", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("float")
    }
}

impl Decode for f64 {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        match dec.peek_tag()? {
            tags::NEW_FLOAT | tags::FLOAT => dec.read_f64(),
            tags::SMALL_INTEGER | tags::INTEGER => Ok(dec.read_i64()? as f64),
            // A big encoding of an integer that fits 64 bits (as Erlang
            // writes those past 32) is the integer, as `from_term` sees it.
            tags::SMALL_BIG | tags::LARGE_BIG => {
                let at = dec.position();
                let t = dec.read_integer()?;
                Self::from_term(&t).map_err(|_| dec.mismatch("float", at))
            }
            _ => Err(dec.mismatch("float", dec.position())),
        }
    }
}

impl ToTerm for f32 {
    fn to_term(&self) -> Term {
        Term::Float(*self as f64)
    }
}

impl Encode for f32 {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_f64(*self as f64);
    }
}

impl FromTerm for f32 {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        f64::from_term(term).map(|f| f as f32)
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("float")
    }
}

impl Decode for f32 {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        f64::decode(dec).map(|f| f as f32)
    }
}

// ---------------------------------------------------------------- bool, unit

impl ToTerm for bool {
    fn to_term(&self) -> Term {
        Term::from(*self)
    }
}

impl Encode for bool {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_bool(*self);
    }
}

impl FromTerm for bool {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Atom(Atom::TRUE) => Ok(true),
            Term::Atom(Atom::FALSE) => Ok(false),
            _ => Err(ConvertError::new("boolean", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("boolean")
    }
}

impl Decode for bool {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let at = dec.position();
        match dec.read_atom_name() {
            Ok(name) if name == "true" => Ok(true),
            Ok(name) if name == "false" => Ok(false),
            Ok(_) => Err(dec.mismatch("boolean", at)),
            Err(e) if e.is_mismatch() => Err(dec.mismatch("boolean", at)),
            Err(e) => Err(e),
        }
    }
}

impl ToTerm for () {
    fn to_term(&self) -> Term {
        Term::Atom(Atom::OK)
    }
    const IS_UNIT: bool = true;
}

impl Encode for () {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_atom(Atom::OK);
    }
}

impl FromTerm for () {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Atom(Atom::OK) => Ok(()),
            _ => Err(ConvertError::new("ok", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("ok")
    }
}

impl Decode for () {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let at = dec.position();
        match dec.read_atom_name() {
            Ok(name) if name == "ok" => Ok(()),
            Ok(_) => Err(dec.mismatch("ok", at)),
            Err(e) if e.is_mismatch() => Err(dec.mismatch("ok", at)),
            Err(e) => Err(e),
        }
    }
}

// ---------------------------------------------------------------- text

impl ToTerm for str {
    fn to_term(&self) -> Term {
        Term::binary(self)
    }
}

impl Encode for str {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_binary(self.as_bytes());
    }
}

impl ToTerm for String {
    fn to_term(&self) -> Term {
        Term::binary(self)
    }
}

impl Encode for String {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_binary(self.as_bytes());
    }
}

/// The text of a charlist (a list of Unicode code points), if `items` is one.
pub(crate) fn string_from_chars(items: &[Term]) -> Option<String> {
    items
        .iter()
        .map(|t| match t {
            Term::Int(c) => u32::try_from(*c).ok().and_then(char::from_u32),
            _ => None,
        })
        .collect()
}

impl FromTerm for String {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Binary(b) => std::str::from_utf8(b)
                .map(str::to_owned)
                .map_err(|_| ConvertError::new("UTF-8 binary", term)),
            Term::List(items) => {
                string_from_chars(items).ok_or_else(|| ConvertError::new("binary", term))
            }
            _ => Err(ConvertError::new("binary", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("binary")
    }
}

impl Decode for String {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        if dec.peek_tag()? == tags::BINARY {
            return dec.read_str().map(str::to_owned);
        }
        let at = dec.position();
        let t = dec.read_term()?;
        String::from_term(&t).map_err(|_| dec.mismatch("binary", at))
    }
}

impl ToTerm for Charlist {
    fn to_term(&self) -> Term {
        Term::charlist(&self.0)
    }
}

impl Encode for Charlist {
    fn encode(&self, enc: &mut Encoder<'_>) {
        let s = &self.0;
        if s.is_ascii() {
            enc.write_byte_list(s.as_bytes());
        } else if s.chars().all(|c| (c as u32) < 256) {
            let bytes: Vec<u8> = s.chars().map(|c| c as u8).collect();
            enc.write_byte_list(&bytes);
        } else {
            let n = s.chars().count();
            enc.write_list_header(n);
            for c in s.chars() {
                enc.write_i64(c as i64);
            }
            enc.write_nil();
        }
    }
}

impl FromTerm for Charlist {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::List(items) => string_from_chars(items)
                .map(Charlist)
                .ok_or_else(|| ConvertError::new("charlist", term)),
            _ => Err(ConvertError::new("charlist", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("charlist")
    }
}

impl Decode for Charlist {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let at = dec.position();
        let t = dec.read_term()?;
        Charlist::from_term(&t).map_err(|_| dec.mismatch("charlist", at))
    }
}

// ---------------------------------------------------------------- binaries

impl ToTerm for Bytes {
    fn to_term(&self) -> Term {
        Term::Binary(self.clone())
    }
}

impl Encode for Bytes {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_bytes(self);
    }
}

impl FromTerm for Bytes {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Binary(b) => Ok(b.clone()),
            _ => Err(ConvertError::new("binary", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("binary")
    }
}

impl Decode for Bytes {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.read_binary()
    }
}

// ---------------------------------------------------------------- ids

macro_rules! id_impls {
    ($($t:ty, $variant:ident, $shape:literal, $write:ident, $read:ident;)*) => {$(
        impl ToTerm for $t {
            fn to_term(&self) -> Term { Term::$variant(*self) }
        }
        impl FromTerm for $t {
            decode_list_via_decode!();
            fn from_term(term: &Term) -> Result<Self, ConvertError> {
                match term {
                    Term::$variant(v) => Ok(*v),
                    _ => Err(ConvertError::new($shape, term)),
                }
            }
            fn shape() -> Cow<'static, str> { Cow::Borrowed($shape) }
        }
        impl Encode for $t {
            fn encode(&self, enc: &mut Encoder<'_>) { enc.$write(self) }
        }
    )*};
}

id_impls! {
    Pid, Pid, "pid", write_pid, read_pid_term;
    Ref, Ref, "reference", write_ref, read_ref_term;
    Port, Port, "port", write_port, read_term;
}

impl Decode for Pid {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.read_pid_term()
    }
}

impl Decode for Ref {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.read_ref_term()
    }
}

impl Decode for Port {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let at = dec.position();
        match dec.read_term()? {
            Term::Port(p) => Ok(p),
            _ => Err(dec.mismatch("port", at)),
        }
    }
}

impl ToTerm for Atom {
    fn to_term(&self) -> Term {
        Term::Atom(*self)
    }

    const WRITES_DIRECTLY: bool = true;

    fn write_term_to(&self, enc: &mut Encoder<'_>) {
        enc.write_atom(*self)
    }
}

impl FromTerm for Atom {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Atom(a) => Ok(*a),
            _ => Err(ConvertError::new("atom", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("atom")
    }
}

impl Encode for Atom {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_atom(*self);
    }
}

impl Decode for Atom {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        dec.read_atom()
    }
}

impl ToTerm for Map {
    fn to_term(&self) -> Term {
        Term::Map(self.clone())
    }
}

impl FromTerm for Map {
    decode_list_via_decode!();
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Map(m) => Ok(m.clone()),
            _ => Err(ConvertError::new("map", term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Borrowed("map")
    }
}

impl Encode for Map {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_map_header(self.len());
        for (k, v) in self.iter() {
            enc.write_term(k);
            enc.write_term(v);
        }
    }
}

impl Decode for Map {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let at = dec.position();
        match dec.read_term()? {
            Term::Map(m) => Ok(m),
            _ => Err(dec.mismatch("map", at)),
        }
    }
}

// ---------------------------------------------------------------- wrappers

macro_rules! deref_impls {
    ($($w:ident),*) => {$(
        impl<T: ToTerm + ?Sized> ToTerm for $w<T> {
            fn to_term(&self) -> Term { (**self).to_term() }
            const WRITES_DIRECTLY: bool = T::WRITES_DIRECTLY;
            fn write_term_to(&self, enc: &mut Encoder<'_>) { (**self).write_term_to(enc) }
            fn term_byte(&self) -> Option<u8> { (**self).term_byte() }
            fn term_count(&self) -> usize { (**self).term_count() }
            fn term_count_past(&self, limit: usize) -> bool { (**self).term_count_past(limit) }
        }
        impl<T: Encode + ?Sized> Encode for $w<T> {
            fn encode(&self, enc: &mut Encoder<'_>) { (**self).encode(enc) }
            fn byte_value(&self) -> Option<u8> { (**self).byte_value() }
        }
        impl<T: FromTerm> FromTerm for $w<T> {
            fn from_term(term: &Term) -> Result<Self, ConvertError> { T::from_term(term).map($w::new) }
            fn shape() -> Cow<'static, str> { T::shape() }
        }
        impl<T: Decode> Decode for $w<T> {
            fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> { T::decode(dec).map($w::new) }
        }
    )*};
}
deref_impls!(Box, Arc);

impl<T: ToTerm + ?Sized> ToTerm for &T {
    fn to_term(&self) -> Term {
        (**self).to_term()
    }

    const WRITES_DIRECTLY: bool = T::WRITES_DIRECTLY;

    fn write_term_to(&self, enc: &mut Encoder<'_>) {
        (**self).write_term_to(enc)
    }

    fn term_byte(&self) -> Option<u8> {
        (**self).term_byte()
    }

    fn term_count(&self) -> usize {
        (**self).term_count()
    }

    fn term_count_past(&self, limit: usize) -> bool {
        (**self).term_count_past(limit)
    }
}

impl<T: Encode + ?Sized> Encode for &T {
    fn encode(&self, enc: &mut Encoder<'_>) {
        (**self).encode(enc)
    }
}

// ---------------------------------------------------------------- Option, Result

impl<T: ToTerm> ToTerm for Option<T> {
    fn to_term(&self) -> Term {
        match self {
            Some(v) => v.to_term(),
            None => Term::Atom(Atom::UNDEFINED),
        }
    }
}

impl<T: Encode> Encode for Option<T> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        match self {
            Some(v) => v.encode(enc),
            None => enc.write_atom(Atom::UNDEFINED),
        }
    }
}

impl<T: FromTerm> FromTerm for Option<T> {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Atom(Atom::UNDEFINED | Atom::NIL) => Ok(None),
            _ => T::from_term(term).map(Some),
        }
    }
    fn shape() -> Cow<'static, str> {
        Cow::Owned(format!("{} | undefined", T::shape()))
    }
}

fn is_absent_atom(dec: &Decoder<'_>) -> Result<bool, DecodeError> {
    let tag = dec.peek_tag()?;
    if !matches!(
        tag,
        tags::SMALL_ATOM_UTF8
            | tags::SMALL_ATOM
            | tags::ATOM_UTF8
            | tags::ATOM
            | tags::ATOM_CACHE_REF
    ) {
        return Ok(false);
    }
    let mut probe = dec.clone();
    let name = probe.read_atom_name()?;
    Ok(name == "undefined" || name == "nil")
}

impl<T: Decode> Decode for Option<T> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        if is_absent_atom(dec)? {
            dec.read_atom_name()?;
            return Ok(None);
        }
        T::decode(dec).map(Some)
    }
}

impl<T: ToTerm, E: ToTerm> ToTerm for Result<T, E> {
    fn to_term(&self) -> Term {
        match self {
            Ok(_) if T::IS_UNIT => Term::Atom(Atom::OK),
            Ok(v) => Term::Tuple(vec![Term::Atom(Atom::OK), v.to_term()]),
            Err(e) => Term::Tuple(vec![Term::Atom(Atom::ERROR), e.to_term()]),
        }
    }
}

impl<T: Encode + ToTerm, E: Encode> Encode for Result<T, E> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        match self {
            Ok(_) if T::IS_UNIT => enc.write_atom(Atom::OK),
            Ok(v) => {
                enc.write_tuple_header(2);
                enc.write_atom(Atom::OK);
                v.encode(enc);
            }
            Err(e) => {
                enc.write_tuple_header(2);
                enc.write_atom(Atom::ERROR);
                e.encode(enc);
            }
        }
    }
}

fn result_shape<T: FromTerm, E: FromTerm>() -> Cow<'static, str> {
    Cow::Owned(format!(
        "{{ok, {}}} | {{error, {}}}",
        T::shape(),
        E::shape()
    ))
}

impl<T: FromTerm, E: FromTerm> FromTerm for Result<T, E> {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        match term {
            Term::Atom(Atom::OK) => T::from_term(term)
                .map(Ok)
                .map_err(|e| e.within(Self::shape(), term)),
            Term::Tuple(v) if v.len() == 2 => match v[0] {
                Term::Atom(Atom::OK) => T::from_term(&v[1])
                    .map(Ok)
                    .map_err(|e| e.within(Self::shape(), term)),
                Term::Atom(Atom::ERROR) => E::from_term(&v[1])
                    .map(Err)
                    .map_err(|e| e.within(Self::shape(), term)),
                _ => Err(ConvertError::new(Self::shape(), term)),
            },
            _ => Err(ConvertError::new(Self::shape(), term)),
        }
    }
    fn shape() -> Cow<'static, str> {
        result_shape::<T, E>()
    }
}

impl<T: Decode, E: Decode> Decode for Result<T, E> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let at = dec.position();
        let t = dec.read_term()?;
        Self::from_term(&t).map_err(|e| {
            let _ = at;
            DecodeError::from(DecodeErrorKind::Mismatch(e))
        })
    }
}

// ---------------------------------------------------------------- lists

impl<T: ToTerm> ToTerm for [T] {
    fn to_term(&self) -> Term {
        Term::List(self.iter().map(ToTerm::to_term).collect())
    }

    const WRITES_DIRECTLY: bool = T::WRITES_DIRECTLY;

    fn write_term_to(&self, enc: &mut Encoder<'_>) {
        if !T::WRITES_DIRECTLY {
            return enc.write_term(&self.to_term());
        }
        // As `Encoder::write_term` writes a list.
        if self.is_empty() {
            enc.write_nil();
        } else if self.len() <= u16::MAX as usize && self.iter().all(|i| i.term_byte().is_some()) {
            enc.write_byte_list_from(self.iter().map(|i| i.term_byte().unwrap_or(0)), self.len());
        } else {
            enc.write_list_header(self.len());
            // Room for the common case of elements of up to five bytes
            // (32-bit integers), as `Encoder::write_term` reserves.
            enc.reserve(self.len() * 5 + 1);
            for item in self {
                item.write_term_to(enc);
            }
            enc.write_nil();
        }
    }

    fn term_count(&self) -> usize {
        1 + self.iter().map(ToTerm::term_count).sum::<usize>()
    }
}

impl<T: Encode> Encode for [T] {
    fn encode(&self, enc: &mut Encoder<'_>) {
        encode_seq(self, enc);
    }
}

/// Writes a proper list as Erlang would: a list of at most 65,535 integers
/// from 0 to 255 is a `STRING_EXT`.
fn encode_seq<T: Encode>(items: &[T], enc: &mut Encoder<'_>) {
    if items.is_empty() {
        enc.write_nil();
        return;
    }
    if items.len() <= u16::MAX as usize && items.iter().all(|i| i.byte_value().is_some()) {
        enc.write_byte_list_from(
            items.iter().map(|i| i.byte_value().unwrap_or(0)),
            items.len(),
        );
        return;
    }
    enc.write_list_header(items.len());
    for item in items {
        item.encode(enc);
    }
    enc.write_nil();
}

impl<T: ToTerm> ToTerm for Vec<T> {
    fn to_term(&self) -> Term {
        self.as_slice().to_term()
    }

    const WRITES_DIRECTLY: bool = T::WRITES_DIRECTLY;

    fn write_term_to(&self, enc: &mut Encoder<'_>) {
        self.as_slice().write_term_to(enc)
    }

    fn term_count(&self) -> usize {
        self.as_slice().term_count()
    }
}

impl<T: Encode> Encode for Vec<T> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        self.as_slice().encode(enc)
    }
}

fn list_items(term: &Term, shape: impl Fn() -> Cow<'static, str>) -> Result<&[Term], ConvertError> {
    match term {
        Term::List(v) => Ok(v),
        _ => Err(ConvertError::new(shape(), term)),
    }
}

impl<T: FromTerm> FromTerm for Vec<T> {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        let items = list_items(term, Self::shape)?;
        // Sized once: collecting into a `Result` would grow the vector
        // step by step.
        let mut out = Vec::with_capacity(items.len());
        for item in items {
            out.push(T::from_term(item).map_err(|e| e.within(Self::shape(), term))?);
        }
        Ok(out)
    }
    fn shape() -> Cow<'static, str> {
        Cow::Owned(format!("[{}]", T::shape()))
    }
}

impl<T: Decode> Decode for Vec<T> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        let at = dec.position();
        dec.read_list_with(T::decode)
            .map_err(|e| mismatch_within(e, dec, at, Self::shape))
    }
}

// ---------------------------------------------------------------- maps

impl<K: ToTerm, V: ToTerm, S> ToTerm for HashMap<K, V, S> {
    fn to_term(&self) -> Term {
        Term::Map(Map::from_unique(
            self.iter()
                .map(|(k, v)| (k.to_term(), v.to_term()))
                .collect(),
        ))
    }
}

impl<K: Encode, V: Encode, S> Encode for HashMap<K, V, S> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_map_header(self.len());
        for (k, v) in self {
            k.encode(enc);
            v.encode(enc);
        }
    }
}

impl<K: ToTerm, V: ToTerm> ToTerm for BTreeMap<K, V> {
    fn to_term(&self) -> Term {
        Term::Map(Map::from_unique(
            self.iter()
                .map(|(k, v)| (k.to_term(), v.to_term()))
                .collect(),
        ))
    }
}

impl<K: Encode, V: Encode> Encode for BTreeMap<K, V> {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_map_header(self.len());
        for (k, v) in self {
            k.encode(enc);
            v.encode(enc);
        }
    }
}

fn map_shape<K: FromTerm, V: FromTerm>() -> Cow<'static, str> {
    Cow::Owned(format!("#{{{} => {}}}", K::shape(), V::shape()))
}

fn map_from_term<K: FromTerm, V: FromTerm, C: FromIterator<(K, V)>>(
    term: &Term,
) -> Result<C, ConvertError> {
    match term {
        Term::Map(m) => m
            .iter()
            .map(|(k, v)| Ok((K::from_term(k)?, V::from_term(v)?)))
            .collect::<Result<C, ConvertError>>()
            .map_err(|e| e.within(map_shape::<K, V>(), term)),
        _ => Err(ConvertError::new(map_shape::<K, V>(), term)),
    }
}

fn map_decode<K: Decode, V: Decode, C: FromIterator<(K, V)>>(
    dec: &mut Decoder<'_>,
) -> Result<C, DecodeError> {
    let at = dec.position();
    let inner = |dec: &mut Decoder<'_>| -> Result<C, DecodeError> {
        let n = dec.read_map_header()?;
        (0..n)
            .map(|_| Ok((K::decode(dec)?, V::decode(dec)?)))
            .collect()
    };
    inner(dec).map_err(|e| mismatch_within(e, dec, at, map_shape::<K, V>))
}

impl<K: FromTerm + Eq + Hash, V: FromTerm, S: BuildHasher + Default> FromTerm for HashMap<K, V, S> {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        map_from_term(term)
    }
    fn shape() -> Cow<'static, str> {
        map_shape::<K, V>()
    }
}

impl<K: Decode + Eq + Hash, V: Decode, S: BuildHasher + Default> Decode for HashMap<K, V, S> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        map_decode(dec)
    }
}

impl<K: FromTerm + Ord, V: FromTerm> FromTerm for BTreeMap<K, V> {
    fn from_term(term: &Term) -> Result<Self, ConvertError> {
        map_from_term(term)
    }
    fn shape() -> Cow<'static, str> {
        map_shape::<K, V>()
    }
}

impl<K: Decode + Ord, V: Decode> Decode for BTreeMap<K, V> {
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
        map_decode(dec)
    }
}

// ---------------------------------------------------------------- tuples

macro_rules! tuple_impls {
    ($( ($n:literal; $($name:ident $idx:tt),+) )*) => {$(
        impl<$($name: ToTerm),+> ToTerm for ($($name,)+) {
            fn to_term(&self) -> Term { Term::Tuple(vec![$(self.$idx.to_term()),+]) }
            const WRITES_DIRECTLY: bool = true $(&& $name::WRITES_DIRECTLY)+;
            fn write_term_to(&self, enc: &mut Encoder<'_>) {
                if !Self::WRITES_DIRECTLY {
                    return enc.write_term(&self.to_term());
                }
                enc.write_tuple_header($n);
                $(self.$idx.write_term_to(enc);)+
            }
            fn term_count(&self) -> usize { 1 $(+ self.$idx.term_count())+ }
        }
        impl<$($name: Encode),+> Encode for ($($name,)+) {
            fn encode(&self, enc: &mut Encoder<'_>) {
                enc.write_tuple_header($n);
                $(self.$idx.encode(enc);)+
            }
        }
        impl<$($name: FromTerm),+> FromTerm for ($($name,)+) {
            fn from_term(term: &Term) -> Result<Self, ConvertError> {
                match term {
                    Term::Tuple(v) if v.len() == $n => {
                        (|| Ok(($($name::from_term(&v[$idx])?,)+)))()
                            .map_err(|e: ConvertError| e.within(Self::shape(), term))
                    }
                    _ => Err(ConvertError::new(Self::shape(), term)),
                }
            }
            fn shape() -> Cow<'static, str> {
                let parts: Vec<Cow<'static, str>> = vec![$($name::shape()),+];
                Cow::Owned(format!("{{{}}}", parts.join(", ")))
            }
        }
        impl<$($name: Decode),+> Decode for ($($name,)+) {
            fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError> {
                let at = dec.position();
                let inner = |dec: &mut Decoder<'_>| -> Result<Self, DecodeError> {
                    let n = dec.read_tuple_header()?;
                    if n != $n {
                        return Err(dec.mismatch(Self::shape(), at));
                    }
                    Ok(($($name::decode(dec)?,)+))
                };
                inner(dec).map_err(|e| mismatch_within(e, dec, at, Self::shape))
            }
        }
    )*};
}

tuple_impls! {
    (1; A 0)
    (2; A 0, B 1)
    (3; A 0, B 1, C 2)
    (4; A 0, B 1, C 2, D 3)
    (5; A 0, B 1, C 2, D 3, E 4)
    (6; A 0, B 1, C 2, D 3, E 4, F 5)
    (7; A 0, B 1, C 2, D 3, E 4, F 5, G 6)
    (8; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7)
    (9; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8)
    (10; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9)
    (11; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10)
    (12; A 0, B 1, C 2, D 3, E 4, F 5, G 6, H 7, I 8, J 9, K 10, L 11)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{decode_as, encode};

    fn both_ways<T>(value: T)
    where
        T: ToTerm + FromTerm + Encode + Decode + PartialEq + std::fmt::Debug,
    {
        let term = value.to_term();
        assert_eq!(T::from_term(&term).unwrap(), value);
        let direct = encode(&value);
        assert_eq!(
            direct,
            encode(&term),
            "direct and Term encodings differ for {value:?}"
        );
        assert_eq!(decode_as::<T>(&direct).unwrap(), value);
    }

    #[test]
    fn std_types_round_trip_both_ways() {
        both_ways(0u8);
        both_ways(-1i32);
        both_ways(u64::MAX);
        both_ways(i64::MIN);
        both_ways(i128::MIN);
        both_ways(u128::MAX);
        both_ways(1.5f64);
        both_ways(true);
        both_ways(());
        both_ways(String::from("héllo"));
        both_ways(Charlist::from("héllo λ"));
        both_ways(Bytes::from_static(b"\x00\x01"));
        both_ways(vec![1i64, 2, 300]);
        both_ways(Some(5u16));
        both_ways(None::<u16>);
        both_ways(Ok::<i32, String>(1));
        both_ways(Err::<i32, String>("bad".into()));
        both_ways(Ok::<(), String>(()));
        both_ways((1u8, String::from("a"), false));
        both_ways(BTreeMap::from([
            (Atom::from("a"), 1i64),
            (Atom::from("b"), 2),
        ]));
        both_ways(HashMap::from([(String::from("k"), vec![1u8])]));
        both_ways(Atom::from("x"));
    }

    #[test]
    fn ok_unit_is_plain_ok() {
        assert_eq!(Ok::<(), Atom>(()).to_term(), Term::atom("ok"));
    }

    #[test]
    fn mismatch_names_expected_shape_and_found_term() {
        let t = Term::tuple([Term::atom("add"), Term::binary("x")]);
        let e = <(Atom, i64)>::from_term(&t).unwrap_err();
        assert_eq!(
            e.to_string(),
            "expected {atom, integer}, found {add,<<\"x\">>}"
        );
        assert_eq!(e.root().to_string(), "expected integer, found <<\"x\">>");
        let e = decode_as::<(Atom, i64)>(&encode(&t)).unwrap_err();
        assert!(e.to_string().contains("found {add,<<\"x\">>}"), "{e}");
    }

    #[test]
    fn integer_out_of_range_is_a_mismatch() {
        let e = u8::from_term(&Term::Int(300)).unwrap_err();
        assert_eq!(e.to_string(), "expected integer in 0..=255 (u8), found 300");
        assert!(decode_as::<u8>(&encode(&Term::Int(-1))).is_err());
    }

    #[test]
    fn string_accepts_a_charlist() {
        assert_eq!(String::from_term(&Term::charlist("abc")).unwrap(), "abc");
        assert_eq!(
            decode_as::<String>(&encode(&Term::charlist("abc"))).unwrap(),
            "abc"
        );
    }

    #[test]
    fn option_accepts_nil_and_undefined() {
        assert_eq!(Option::<i32>::from_term(&Term::atom("nil")).unwrap(), None);
        assert_eq!(
            decode_as::<Option<i32>>(&encode(&Term::atom("nil"))).unwrap(),
            None
        );
    }
}
