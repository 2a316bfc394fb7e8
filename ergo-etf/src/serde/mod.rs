//! serde support: any `Serialize` / `Deserialize` type to and from terms,
//! mapped the way Elixir code expects its data.
//!
//! - [`to_term`] / [`from_term`] convert between a value and a [`Term`];
//! - [`to_bytes`] / [`from_bytes`] go through the external term format
//!   (what `:erlang.term_to_binary/1` writes), with [`to_bytes_with`] and
//!   [`from_bytes_with`] taking encoding and decoding options;
//! - [`Serializer`] and [`Deserializer`] are the serde implementations;
//! - [`Error`] says what was expected, what was found, and where.
//!
//! # Examples
//!
//! ```
//! use ergo_etf::serde::{from_term, to_term};
//! use ergo_etf::Term;
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! enum Role {
//!     Admin,
//!     SuperUser,
//! }
//!
//! #[derive(Serialize, Deserialize, Debug, PartialEq)]
//! struct User {
//!     name: String,
//!     age: u8,
//!     role: Role,
//!     email: Option<String>,
//! }
//!
//! let user = User { name: "Ann".into(), age: 41, role: Role::SuperUser, email: None };
//! let term = to_term(&user).unwrap();
//! assert_eq!(
//!     term.to_string(),
//!     r#"#{name => <<"Ann">>,age => 41,role => super_user,email => nil}"#
//! );
//! assert_eq!(from_term::<User>(&term).unwrap(), user);
//!
//! // What Elixir's `%{"name" => "Bo", "age" => 7, "role" => "admin"}` decodes to:
//! let elixir = Term::map([
//!     (Term::binary("name"), Term::binary("Bo")),
//!     (Term::binary("age"), Term::Int(7)),
//!     (Term::binary("role"), Term::binary("admin")),
//! ]);
//! let bo: User = from_term(&elixir).unwrap();
//! assert_eq!(bo, User { name: "Bo".into(), age: 7, role: Role::Admin, email: None });
//! ```
//!
//! # The mapping
//!
//! Serializing writes the middle column; deserializing accepts it and, to
//! take data as Elixir and Erlang code writes it, the right-hand column too.
//!
//! | serde (Rust) | Term written | Also read |
//! |---|---|---|
//! | `bool` | `true` / `false` | |
//! | `i8` … `i128`, `u8` … `u128` | integer; a bignum beyond 64 bits (`u64::MAX` too) | (range-checked) |
//! | `f32`, `f64` | float (NaN and infinities are an error: Erlang has none) | integer |
//! | `char` | binary of its UTF-8 | integer code point, `[C]` |
//! | `str`, `String` | binary (UTF-8) | charlist (`'text'` in Elixir), atom |
//! | bytes (`serialize_bytes`, e.g. `serde_bytes`) | binary | list of integers 0 to 255 |
//! | `None` | `nil` | `undefined` |
//! | `Some(v)` | `v` | |
//! | `()`, unit struct | `nil` | `undefined`, `ok` |
//! | unit variant `E::MyVariant` | atom `my_variant` | see *Enums* below |
//! | newtype struct `S(v)` | `v` | |
//! | newtype variant `E::V(v)` | `{v, V}` | `#{v => V}` |
//! | sequence (`Vec`, `HashSet`, …) | proper list | tuple; binary (its bytes as integers) |
//! | tuple, tuple struct, array `[T; N]` | tuple | list of that length |
//! | tuple variant `E::V(a, b)` | `{v, A, B}` | `{v, {A, B}}`, `#{v => {A, B}}` |
//! | map (`HashMap`, `BTreeMap`, …) | map, keys mapped by these same rules | keyword list (list of 2-tuples) |
//! | struct | map with atom keys: `#{name => …}` | binary keys (`%{"name" => …}`), keyword list |
//! | struct variant `E::V { x }` | `{v, #{x => X}}` | `#{v => #{x => X}}` |
//! | [`Atom`] | atom | (atom only) |
//!
//! ## Enums
//!
//! A variant is named by an atom of its name in snake_case, as Elixir
//! writes atoms: `MyVariant` becomes `my_variant`, `HTTPError` becomes
//! `http_error` and `Point3D` becomes `point3_d` (the rule of Elixir's
//! `Macro.underscore/1`: an underscore goes before a capital that follows a
//! lower-case letter or digit, and before the last capital of a run that a
//! lower-case letter follows). `#[serde(rename = "…")]` and
//! `#[serde(rename_all = "…")]` names go through the same conversion, so an
//! already snake_case name is kept as it is.
//!
//! When reading, the tag may be an atom or a binary, spelled in snake_case
//! or exactly as the Rust (or renamed) name: `my_variant`, `<<"my_variant">>`,
//! `'MyVariant'` and `<<"MyVariant">>` all name `E::MyVariant`. A unit
//! variant may also come as `{my_variant}`.
//!
//! ## Structs and maps
//!
//! Struct fields are written under atom keys, exactly as named (Rust fields
//! are snake_case already; renames apply). When reading, keys may be atoms
//! or binaries; keys that name no field are skipped (unless the struct has
//! `#[serde(deny_unknown_fields)]`), and so is the `__struct__` key that
//! Elixir structs carry. A missing `Option` field is `None` only with
//! `#[serde(default)]`, as in every serde format.
//!
//! ## `deserialize_any`
//!
//! Self-describing reads (`serde_json::Value`, untagged and internally
//! tagged enums, `#[serde(flatten)]`) see terms as follows:
//!
//! | Term | serde |
//! |---|---|
//! | integer | `i64`; beyond it `u64`, `i128` or `u128`; larger is an error |
//! | float | `f64` |
//! | `true`, `false` | `bool` |
//! | `nil` | unit |
//! | any other atom | string (its name) |
//! | binary | string when UTF-8, bytes otherwise |
//! | list, tuple | sequence |
//! | map | map |
//! | pid, port, reference, fun | string: the term as printed (`<nonode@nohost.42.0>`) |
//! | bitstring, improper list | error |
//!
//! ## Things to know
//!
//! - `Option<Option<T>>`: `Some(None)` is written as `nil` and reads back as
//!   `None`, as in most self-describing formats.
//! - `Vec<u8>` is a list of integers, as serde sees it; use `serde_bytes`
//!   (or [`bytes::Bytes`] via [`ToTerm`](crate::ToTerm)) for a binary. A
//!   binary is still accepted where a `Vec<u8>` is read.
//! - Fields brought in by `#[serde(flatten)]` reach the serializer as map
//!   entries, so they are written under binary keys; reading accepts either.
//! - An internally tagged enum (`#[serde(tag = "type")]`) is written as a
//!   map whose tag is a binary holding the variant name exactly as serde
//!   gives it (`#{type => <<"Click">>, x => 1}`): serde hands the tag over
//!   as a string, so it is neither an atom nor snake_case. Reading wants
//!   the same name.
//! - The serializer and deserializer are human-readable: types such as
//!   `IpAddr` or timestamps that ask are written as strings.
//! - Decoding bytes creates the atoms they name, as `binary_to_term/1`
//!   does. For bytes from outside, decode in safe mode with
//!   [`from_bytes_with`] and `DecodeOptions::new().safe(true)`; the atoms
//!   the type needs (field and variant names) must then exist already, for
//!   example by having serialized a value of the type, or through
//!   [`Atom::new`].
//! - Nothing here panics on a term of the wrong shape: that is an [`Error`].
//!   Terms nested deeper than [`DEFAULT_MAX_DEPTH`](crate::DEFAULT_MAX_DEPTH)
//!   levels are refused rather than run the stack out
//!   ([`Deserializer::max_depth`] raises the limit).

mod de;
mod error;
mod ser;

use std::borrow::Cow;
use std::fmt;

use ::serde::de::{Deserialize, DeserializeOwned, Visitor};
use ::serde::ser::Serialize;

pub use self::de::Deserializer;
pub use self::error::Error;
pub use self::ser::{MapSerializer, SeqSerializer, Serializer};
use crate::atom::Atom;
use crate::decode::DecodeOptions;
use crate::encode::EncodeOptions;
use crate::term::Term;

/// The newtype-struct name under which [`Atom`] passes itself to a
/// serializer or deserializer: this module's own recognise it and keep the
/// atom an atom; any other format sees a plain string.
const ATOM_TOKEN: &str = "$ergo_etf::private::Atom";

/// Converts `value` into a term.
///
/// # Errors
///
/// When the value holds a float that is NaN or infinite, an atom name (a
/// variant or field name, or an [`Atom`]) over 255 characters, or when its
/// `Serialize` implementation fails.
///
/// # Examples
///
/// ```
/// use ergo_etf::serde::to_term;
/// use ergo_etf::Term;
/// #[derive(serde::Serialize)]
/// enum Shape {
///     Circle { r: f64 },
/// }
/// let t = to_term(&Shape::Circle { r: 1.5 }).unwrap();
/// assert_eq!(t.to_string(), "{circle,#{r => 1.5}}");
/// ```
pub fn to_term<T: Serialize + ?Sized>(value: &T) -> Result<Term, Error> {
    value.serialize(Serializer)
}

/// Makes a value of type `T` from `term`.
///
/// The type may borrow strings and byte slices from the term (`&str`,
/// `&[u8]`, `Cow<str>` …).
///
/// # Errors
///
/// When the term does not have the shape `T` expects; the error names
/// what was expected, what was found and where.
///
/// # Examples
///
/// ```
/// use ergo_etf::serde::from_term;
/// use ergo_etf::Term;
/// let t = Term::list([Term::Int(1), Term::Int(300)]);
/// assert_eq!(from_term::<Vec<u16>>(&t).unwrap(), [1, 300]);
/// let err = from_term::<Vec<u8>>(&t).unwrap_err();
/// assert_eq!(err.to_string(), "at [1]: expected integer in 0..=255 (u8), found 300");
/// ```
pub fn from_term<'de, T: Deserialize<'de>>(term: &'de Term) -> Result<T, Error> {
    T::deserialize(Deserializer::new(term)).map_err(|e| e.found(term))
}

/// Encodes `value` in the external term format, with the version byte, as
/// `term_to_binary/1` does.
///
/// # Errors
///
/// As [`to_term`].
///
/// # Examples
///
/// ```
/// use ergo_etf::serde::to_bytes;
/// use ergo_etf::{decode, Term};
/// let bytes = to_bytes(&(true, 7u8)).unwrap();
/// assert_eq!(bytes[0], 131);
/// assert_eq!(decode(&bytes).unwrap(), Term::tuple([Term::atom("true"), Term::Int(7)]));
/// ```
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, Error> {
    Ok(crate::encode::encode(&to_term(value)?))
}

/// Encodes `value` in the external term format with the given options
/// (compression, minor version).
///
/// # Errors
///
/// As [`to_term`].
pub fn to_bytes_with<T: Serialize + ?Sized>(
    options: &EncodeOptions,
    value: &T,
) -> Result<Vec<u8>, Error> {
    Ok(options.encode(&to_term(value)?))
}

/// Decodes `bytes` (external term format, version byte first) into a
/// value of type `T`.
///
/// Decoding is bounded and never panics, but, like `binary_to_term/1`, it
/// creates the atoms the bytes name; for input from outside, see
/// [`from_bytes_with`].
///
/// # Errors
///
/// When the bytes are not a valid term ([`Error::decode_error`] says why),
/// or the term does not fit `T`.
///
/// # Examples
///
/// ```
/// use ergo_etf::serde::{from_bytes, to_bytes};
/// let bytes = to_bytes(&vec![Some(1), None]).unwrap();
/// assert_eq!(from_bytes::<Vec<Option<i32>>>(&bytes).unwrap(), [Some(1), None]);
/// ```
pub fn from_bytes<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, Error> {
    from_term(&crate::decode::decode(bytes)?)
}

/// Decodes `bytes` with the given options into a value of type `T`.
///
/// With [`DecodeOptions::safe`], bytes that name atoms which do not exist
/// yet are refused, so that a peer cannot fill the atom table; the atoms
/// the type itself uses must then exist already.
///
/// # Errors
///
/// As [`from_bytes`].
///
/// # Examples
///
/// ```
/// use ergo_etf::serde::{from_bytes_with, to_bytes};
/// use ergo_etf::DecodeOptions;
/// #[derive(serde::Serialize, serde::Deserialize, Debug, PartialEq)]
/// struct Ping { seq: u32 }
/// let bytes = to_bytes(&Ping { seq: 1 }).unwrap();
/// let safe = DecodeOptions::new().safe(true);
/// assert_eq!(from_bytes_with::<Ping>(&safe, &bytes).unwrap(), Ping { seq: 1 });
/// ```
pub fn from_bytes_with<T: DeserializeOwned>(
    options: &DecodeOptions,
    bytes: &[u8],
) -> Result<T, Error> {
    from_term(&options.decode(bytes)?)
}

/// `name` in snake_case, in the manner of Elixir's `Macro.underscore/1`.
fn snake_case(name: &str) -> Cow<'_, str> {
    if !name.chars().any(char::is_uppercase) {
        return Cow::Borrowed(name);
    }
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        if c.is_uppercase() {
            if let Some(&prev) = i.checked_sub(1).and_then(|p| chars.get(p)) {
                let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
                let boundary =
                    prev.is_lowercase() || prev.is_numeric() || (prev.is_uppercase() && next_lower);
                if boundary && prev != '_' {
                    out.push('_');
                }
            }
            out.extend(c.to_lowercase());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

/// The atom naming variant `variant`.
fn variant_atom(variant: &str) -> Result<Atom, Error> {
    let name = snake_case(variant);
    Atom::try_new(&name).map_err(|e| {
        Error::message(format!(
            "cannot make the variant name {variant:?} an atom: {e}"
        ))
    })
}

/// An atom is written as an atom by this module's [`Serializer`], and as
/// its name (a string) by any other serializer.
impl Serialize for Atom {
    fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_newtype_struct(ATOM_TOKEN, self.as_str())
    }
}

/// An atom is read from an atom by this module's [`Deserializer`], and
/// from a string by any other deserializer, which interns it: the atom
/// table never shrinks, so do not read atoms from untrusted input of other
/// formats.
impl<'de> Deserialize<'de> for Atom {
    fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> Result<Atom, D::Error> {
        deserializer.deserialize_newtype_struct(ATOM_TOKEN, AtomVisitor)
    }
}

struct AtomVisitor;

impl<'de> Visitor<'de> for AtomVisitor {
    type Value = Atom;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("atom")
    }

    fn visit_str<E: ::serde::de::Error>(self, v: &str) -> Result<Atom, E> {
        Atom::try_new(v).map_err(|e| E::custom(format!("cannot make atom {v:?}: {e}")))
    }

    fn visit_newtype_struct<D: ::serde::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Atom, D::Error> {
        deserializer.deserialize_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::snake_case;

    #[test]
    fn snake_case_follows_elixir_underscore() {
        for (rust, atom) in [
            ("MyVariant", "my_variant"),
            ("A", "a"),
            ("HTTPError", "http_error"),
            ("Point3D", "point3_d"),
            ("V2", "v2"),
            ("already_snake", "already_snake"),
            ("Foo_Bar", "foo_bar"),
            ("ÉtéChaud", "été_chaud"),
            ("IOError", "io_error"),
            ("XML", "xml"),
            ("", ""),
        ] {
            assert_eq!(snake_case(rust), atom, "{rust}");
        }
    }
}
