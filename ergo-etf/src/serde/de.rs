//! `Deserialize` values from [`Term`]s.

use std::sync::LazyLock;

use ::serde::de::{self, DeserializeSeed, Visitor};
use ::serde::forward_to_deserialize_any;
use num_bigint::BigInt;
use num_traits::ToPrimitive;

use super::error::{Error, show};
use super::{ATOM_TOKEN, snake_case};
use crate::atom::{Atom, write_atom};
use crate::convert::FromTerm;
use crate::decode::DEFAULT_MAX_DEPTH;
use crate::error::{DecodeError, DecodeErrorKind};
use crate::term::Term;

/// What a string may be given as.
const STRING: &str = "string (UTF-8 binary or charlist)";

/// A serde `Deserializer` reading a borrowed [`Term`]; see the
/// [module documentation](super) for what each Rust type accepts.
///
/// [`from_term`](super::from_term) is the usual way to use it. Strings and
/// byte slices can be borrowed from the term:
///
/// ```
/// use ergo_etf::serde::Deserializer;
/// use ergo_etf::Term;
/// use serde::Deserialize;
/// let t = Term::binary("borrowed");
/// let s = <&str>::deserialize(Deserializer::new(&t)).unwrap();
/// assert_eq!(s, "borrowed");
/// ```
#[derive(Debug, Clone, Copy)]
pub struct Deserializer<'de> {
    term: &'de Term,
    depth: usize,
    max_depth: usize,
}

impl<'de> Deserializer<'de> {
    /// A deserializer reading `term`, which may nest up to
    /// [`DEFAULT_MAX_DEPTH`] levels deep, as decoded terms do by default.
    pub fn new(term: &'de Term) -> Deserializer<'de> {
        Deserializer {
            term,
            depth: 0,
            max_depth: DEFAULT_MAX_DEPTH,
        }
    }

    /// Allows terms to nest up to `limit` levels deep (a term built by hand,
    /// or decoded with a raised [`DecodeOptions::max_depth`]); deeper ones
    /// are refused with [`DecodeErrorKind::TooDeep`](crate::DecodeErrorKind::TooDeep) rather than run the stack
    /// out.
    ///
    /// [`DecodeOptions::max_depth`]: crate::DecodeOptions::max_depth
    pub fn max_depth(mut self, limit: usize) -> Deserializer<'de> {
        self.max_depth = limit;
        self
    }

    /// A deserializer for `term`, found one level inside this one's.
    fn child(&self, term: &'de Term) -> Result<Deserializer<'de>, Error> {
        if self.depth >= self.max_depth {
            return Err(DecodeError::from(DecodeErrorKind::TooDeep {
                limit: self.max_depth,
            })
            .into());
        }
        Ok(Deserializer {
            term,
            depth: self.depth + 1,
            max_depth: self.max_depth,
        })
    }

    /// `expected` was wanted in place of this term.
    fn mismatch(&self, expected: impl Into<String>) -> Error {
        Error::expected(expected, self.term)
    }

    /// An integer of type `T`, range-checked.
    fn int<T>(&self) -> Result<T, Error>
    where
        T: FromTerm + TryFrom<i64> + for<'b> TryFrom<&'b BigInt>,
    {
        let value = match self.term {
            Term::Int(i) => T::try_from(*i).ok(),
            Term::BigInt(b) => T::try_from(&**b).ok(),
            _ => None,
        };
        value.ok_or_else(|| self.mismatch(T::shape()))
    }

    /// A float; integers are accepted and converted.
    fn float(&self) -> Result<f64, Error> {
        match self.term {
            Term::Float(f) => Ok(*f),
            Term::Int(i) => Ok(*i as f64),
            Term::BigInt(b) => b
                .to_f64()
                .filter(|f| f.is_finite())
                .ok_or_else(|| self.mismatch("float (or integer in the float range)")),
            _ => Err(self.mismatch("float")),
        }
    }

    /// A map, or a keyword list (a list of 2-tuples), as map entries.
    fn pairs(&self, expected: impl FnOnce() -> String) -> Result<Pairs<'de>, Error> {
        match self.term {
            Term::Map(m) => Ok(Pairs::Map(m.entries().iter())),
            Term::List(items)
                if items
                    .iter()
                    .all(|t| matches!(t, Term::Tuple(kv) if kv.len() == 2)) =>
            {
                Ok(Pairs::Keywords(items.iter()))
            }
            _ => Err(self.mismatch(expected())),
        }
    }

    fn visit_map<V: Visitor<'de>>(
        &self,
        pairs: Pairs<'de>,
        skip_struct_key: bool,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut access = MapAccess {
            parent: *self,
            pairs,
            value: None,
            skip_struct_key,
        };
        let value = visitor.visit_map(&mut access)?;
        let left = access.pairs.len();
        if left > 0 {
            let total = self.size();
            let read = format!("a map of {} pairs", total - left);
            return Err(de::Error::invalid_length(total, &read.as_str()));
        }
        Ok(value)
    }

    /// A struct (or struct variant) from a map or keyword list.
    fn read_struct<V: Visitor<'de>>(
        &self,
        expected: impl FnOnce() -> String,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let pairs = self.pairs(expected)?;
        // Elixir structs carry their module under `__struct__`.
        let skip_struct_key = !fields.contains(&Atom::STRUCT.as_str());
        self.visit_map(pairs, skip_struct_key, visitor)
    }

    /// The element or pair count of a list, tuple or map.
    fn size(&self) -> usize {
        match self.term {
            Term::List(v) | Term::Tuple(v) => v.len(),
            Term::Map(m) => m.len(),
            _ => 0,
        }
    }

    /// Hands `items` (inside this term) to `visitor` as a sequence; `base`
    /// is the position of the first in this term, for error paths.
    fn visit_items<V: Visitor<'de>>(
        &self,
        items: &'de [Term],
        base: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        let mut access = Items {
            parent: *self,
            iter: items.iter(),
            next: base,
        };
        let value = visitor.visit_seq(&mut access)?;
        let left = access.iter.len();
        if left > 0 {
            let read = format!("{} elements", items.len() - left);
            return Err(de::Error::invalid_length(items.len(), &read.as_str()));
        }
        Ok(value)
    }
}

/// The text of a charlist, if `items` is one.
fn charlist(items: &[Term]) -> Option<String> {
    crate::convert::string_from_chars(items)
}

/// The bytes of a list of integers 0 to 255, if `items` is one.
fn byte_list(items: &[Term]) -> Option<Vec<u8>> {
    items
        .iter()
        .map(|t| match t {
            Term::Int(b) => u8::try_from(*b).ok(),
            _ => None,
        })
        .collect()
}

/// `name` as Erlang writes the atom a variant of that name becomes.
fn atom_text(name: &str) -> String {
    let mut out = String::new();
    // Writing to a String cannot fail.
    let _ = write_atom(&mut out, &snake_case(name));
    out
}

macro_rules! deserialize_ints {
    ($($method:ident => $visit:ident, $t:ty;)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            visitor.$visit(self.int::<$t>()?)
        }
    )*};
}

impl<'de> de::Deserializer<'de> for Deserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Int(i) => visitor.visit_i64(*i),
            Term::BigInt(b) => {
                if let Ok(n) = u64::try_from(&**b) {
                    visitor.visit_u64(n)
                } else if let Ok(n) = i128::try_from(&**b) {
                    visitor.visit_i128(n)
                } else if let Ok(n) = u128::try_from(&**b) {
                    visitor.visit_u128(n)
                } else {
                    Err(self.mismatch("integer of at most 128 bits"))
                }
            }
            Term::Float(f) => visitor.visit_f64(*f),
            Term::Atom(Atom::TRUE) => visitor.visit_bool(true),
            Term::Atom(Atom::FALSE) => visitor.visit_bool(false),
            Term::Atom(Atom::NIL) => visitor.visit_unit(),
            Term::Atom(a) => visitor.visit_borrowed_str(a.as_str()),
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => visitor.visit_borrowed_bytes(b),
            },
            Term::BitBinary(_) => Err(self.mismatch("binary (whole bytes)")),
            Term::List(items) | Term::Tuple(items) => self.visit_items(items, 0, visitor),
            Term::ImproperList(..) => Err(self.mismatch("proper list")),
            Term::Map(m) => self.visit_map(Pairs::Map(m.entries().iter()), false, visitor),
            // As printed (a fun's captured terms are cut short, if long).
            Term::Pid(_) | Term::Port(_) | Term::Ref(_) | Term::Fun(_) => {
                visitor.visit_string(show(self.term))
            }
        }
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Atom(Atom::TRUE) => visitor.visit_bool(true),
            Term::Atom(Atom::FALSE) => visitor.visit_bool(false),
            _ => Err(self.mismatch("boolean")),
        }
    }

    deserialize_ints! {
        deserialize_i8 => visit_i8, i8;
        deserialize_i16 => visit_i16, i16;
        deserialize_i32 => visit_i32, i32;
        deserialize_i64 => visit_i64, i64;
        deserialize_i128 => visit_i128, i128;
        deserialize_u8 => visit_u8, u8;
        deserialize_u16 => visit_u16, u16;
        deserialize_u32 => visit_u32, u32;
        deserialize_u64 => visit_u64, u64;
        deserialize_u128 => visit_u128, u128;
    }

    fn deserialize_f32<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let wide = self.float()?;
        let narrow = wide as f32;
        if narrow.is_infinite() {
            return Err(self.mismatch("float in the f32 range"));
        }
        visitor.visit_f32(narrow)
    }

    fn deserialize_f64<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_f64(self.float()?)
    }

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let one = |mut chars: std::str::Chars<'_>| match (chars.next(), chars.next()) {
            (Some(c), None) => Some(c),
            _ => None,
        };
        let c = match self.term {
            Term::Binary(b) => std::str::from_utf8(b).ok().and_then(|s| one(s.chars())),
            Term::Int(i) => u32::try_from(*i).ok().and_then(char::from_u32),
            Term::List(items) => match items.as_slice() {
                [Term::Int(i)] => u32::try_from(*i).ok().and_then(char::from_u32),
                _ => None,
            },
            _ => None,
        };
        match c {
            Some(c) => visitor.visit_char(c),
            None => Err(self.mismatch("character (binary of one character, or code point)")),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => Err(self.mismatch("UTF-8 binary")),
            },
            Term::Atom(a) => visitor.visit_borrowed_str(a.as_str()),
            Term::List(items) => match charlist(items) {
                Some(s) => visitor.visit_string(s),
                None => Err(self.mismatch(STRING)),
            },
            _ => Err(self.mismatch(STRING)),
        }
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_str(visitor)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Binary(b) => visitor.visit_borrowed_bytes(b),
            Term::List(items) => match byte_list(items) {
                Some(bytes) => visitor.visit_byte_buf(bytes),
                None => Err(self.mismatch("binary")),
            },
            _ => Err(self.mismatch("binary")),
        }
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_bytes(visitor)
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Atom(Atom::NIL | Atom::UNDEFINED) => visitor.visit_none(),
            _ => visitor.visit_some(self),
        }
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Atom(Atom::NIL | Atom::UNDEFINED | Atom::OK) => visitor.visit_unit(),
            _ => Err(self.mismatch("nil")),
        }
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_unit(visitor)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        if name == ATOM_TOKEN {
            // `Atom`'s own `Deserialize`: only an atom will do.
            return match self.term {
                Term::Atom(a) => visitor.visit_borrowed_str(a.as_str()),
                _ => Err(self.mismatch("atom")),
            };
        }
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::List(items) | Term::Tuple(items) => self.visit_items(items, 0, visitor),
            Term::Binary(b) => {
                let mut access = ByteItems {
                    parent: self,
                    bytes: b.iter(),
                    next: 0,
                };
                let value = visitor.visit_seq(&mut access)?;
                let left = access.bytes.len();
                if left > 0 {
                    let read = format!("{} elements", b.len() - left);
                    return Err(de::Error::invalid_length(b.len(), &read.as_str()));
                }
                Ok(value)
            }
            _ => Err(self.mismatch("list")),
        }
    }

    fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Tuple(items) | Term::List(items) if items.len() == len => {
                self.visit_items(items, 0, visitor)
            }
            _ => Err(self.mismatch(format!("tuple of {len} elements"))),
        }
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        match self.term {
            Term::Tuple(items) | Term::List(items) if items.len() == len => {
                self.visit_items(items, 0, visitor)
            }
            _ => Err(self.mismatch(format!("tuple of {len} elements ({name})"))),
        }
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let pairs = self.pairs(|| "map".to_owned())?;
        self.visit_map(pairs, false, visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.read_struct(|| format!("map ({name})"), fields, visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let wrong = || self.mismatch(format!("atom or tagged tuple ({name})"));
        let (tag, content) = match self.term {
            Term::Atom(_) | Term::Binary(_) => (self.term, Content::Bare),
            Term::Tuple(items) => match items.split_first() {
                Some((tag @ (Term::Atom(_) | Term::Binary(_)), rest)) => {
                    (tag, Content::Elements(rest))
                }
                _ => return Err(wrong()),
            },
            // `#{tag => value}`, as JSON-minded encoders tag enums.
            Term::Map(m) => match m.entries() {
                [(tag @ (Term::Atom(_) | Term::Binary(_)), value)] => (tag, Content::Value(value)),
                _ => return Err(wrong()),
            },
            _ => return Err(wrong()),
        };
        let text: &'de str = match tag {
            Term::Atom(a) => a.as_str(),
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) => s,
                Err(_) => return Err(Error::expected("UTF-8 variant name", tag)),
            },
            _ => return Err(wrong()),
        };
        visitor.visit_enum(EnumAccess {
            parent: self,
            tag,
            name: resolve_variant(text, variants),
            enum_name: name,
            content,
        })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.term {
            Term::Atom(a) => visitor.visit_borrowed_str(a.as_str()),
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(s) => visitor.visit_borrowed_str(s),
                Err(_) => visitor.visit_borrowed_bytes(b),
            },
            // No field is named so (unless renamed to it): the key is
            // ignored, or refused under `deny_unknown_fields`.
            other => visitor.visit_string(show(other)),
        }
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// The variant `text` names: exactly, or in snake_case; else `text`
/// itself, which the enum's visitor then refuses (or takes as its
/// `#[serde(other)]` variant).
fn resolve_variant<'de>(text: &'de str, variants: &'static [&'static str]) -> &'de str {
    if variants.contains(&text) {
        return text;
    }
    variants
        .iter()
        .find(|v| snake_case(v) == text)
        .copied()
        .unwrap_or(text)
}

/// The elements of a list or tuple, for a visitor.
struct Items<'de> {
    parent: Deserializer<'de>,
    iter: std::slice::Iter<'de, Term>,
    next: usize,
}

impl<'de> de::SeqAccess<'de> for Items<'de> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some(term) = self.iter.next() else {
            return Ok(None);
        };
        let index = self.next;
        self.next += 1;
        seed.deserialize(self.parent.child(term)?)
            .map(Some)
            .map_err(|e| e.found(term).at_index(index))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// The bytes of a binary as a sequence of integers (for `Vec<u8>`).
struct ByteItems<'de> {
    parent: Deserializer<'de>,
    bytes: std::slice::Iter<'de, u8>,
    next: usize,
}

impl<'de> de::SeqAccess<'de> for ByteItems<'de> {
    type Error = Error;

    fn next_element_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        let Some(&byte) = self.bytes.next() else {
            return Ok(None);
        };
        let index = self.next;
        self.next += 1;
        let term = &byte_terms()[usize::from(byte)];
        seed.deserialize(self.parent.child(term)?)
            .map(Some)
            .map_err(|e| e.found(term).at_index(index))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.bytes.len())
    }
}

/// The integers 0 to 255 as terms, to lend a binary's bytes out as
/// integer terms.
fn byte_terms() -> &'static [Term] {
    static TERMS: LazyLock<Vec<Term>> = LazyLock::new(|| (0..=255u8).map(Term::from).collect());
    &TERMS
}

/// The pairs of a map or keyword list.
enum Pairs<'de> {
    Map(std::slice::Iter<'de, (Term, Term)>),
    /// Checked to hold only 2-tuples.
    Keywords(std::slice::Iter<'de, Term>),
}

impl<'de> Pairs<'de> {
    fn next_pair(&mut self) -> Option<(&'de Term, &'de Term)> {
        match self {
            Pairs::Map(it) => it.next().map(|(k, v)| (k, v)),
            Pairs::Keywords(it) => loop {
                match it.next()? {
                    Term::Tuple(kv) => match kv.as_slice() {
                        [k, v] => return Some((k, v)),
                        _ => continue,
                    },
                    _ => continue,
                }
            },
        }
    }

    fn len(&self) -> usize {
        match self {
            Pairs::Map(it) => it.len(),
            Pairs::Keywords(it) => it.len(),
        }
    }
}

/// The pairs of a map or keyword list, for a visitor.
struct MapAccess<'de> {
    parent: Deserializer<'de>,
    pairs: Pairs<'de>,
    value: Option<(&'de Term, &'de Term)>,
    skip_struct_key: bool,
}

impl<'de> de::MapAccess<'de> for MapAccess<'de> {
    type Error = Error;

    fn next_key_seed<S: DeserializeSeed<'de>>(
        &mut self,
        seed: S,
    ) -> Result<Option<S::Value>, Error> {
        loop {
            let Some((key, value)) = self.pairs.next_pair() else {
                return Ok(None);
            };
            if self.skip_struct_key && matches!(key, Term::Atom(Atom::STRUCT)) {
                continue;
            }
            self.value = Some((key, value));
            return seed
                .deserialize(self.parent.child(key)?)
                .map(Some)
                .map_err(|e| e.found(key));
        }
    }

    fn next_value_seed<S: DeserializeSeed<'de>>(&mut self, seed: S) -> Result<S::Value, Error> {
        let Some((key, value)) = self.value.take() else {
            return Err(Error::message(
                "a map value was asked for before its key (a bug in a Deserialize impl)",
            ));
        };
        seed.deserialize(self.parent.child(value)?)
            .map_err(|e| e.found(value).at_key(key))
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.pairs.len())
    }
}

/// What follows the tag of an enum's term.
#[derive(Clone, Copy)]
enum Content<'de> {
    /// A bare atom or binary: a unit variant.
    Bare,
    /// The elements after the tag of a tagged tuple.
    Elements(&'de [Term]),
    /// The value of a one-pair map `#{tag => value}`.
    Value(&'de Term),
}

struct EnumAccess<'de> {
    /// The deserializer of the whole enum term.
    parent: Deserializer<'de>,
    tag: &'de Term,
    /// The variant's name as the enum knows it, or the tag's text.
    name: &'de str,
    enum_name: &'static str,
    content: Content<'de>,
}

impl EnumAccess<'_> {
    fn mismatch(&self, shape: String) -> Error {
        self.parent.mismatch(shape)
    }
}

impl<'de> de::EnumAccess<'de> for EnumAccess<'de> {
    type Error = Error;
    type Variant = EnumAccess<'de>;

    fn variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<(S::Value, Self), Error> {
        let value = seed
            .deserialize(TagDeserializer { name: self.name })
            .map_err(|e| e.found(self.tag))?;
        Ok((value, self))
    }
}

impl<'de> de::VariantAccess<'de> for EnumAccess<'de> {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        match self.content {
            Content::Bare | Content::Elements([]) | Content::Value(Term::Atom(Atom::NIL)) => Ok(()),
            _ => Err(self.mismatch(atom_text(self.name))),
        }
    }

    fn newtype_variant_seed<S: DeserializeSeed<'de>>(self, seed: S) -> Result<S::Value, Error> {
        match self.content {
            Content::Elements([value]) => seed
                .deserialize(self.parent.child(value)?)
                .map_err(|e| e.found(value).at_index(1)),
            Content::Value(value) => seed
                .deserialize(self.parent.child(value)?)
                .map_err(|e| e.found(value).at_key(self.tag)),
            _ => Err(self.mismatch(format!("{{{},_}}", atom_text(self.name)))),
        }
    }

    fn tuple_variant<V: Visitor<'de>>(self, len: usize, visitor: V) -> Result<V::Value, Error> {
        let result = match self.content {
            Content::Elements(items) if items.len() == len => {
                self.parent.visit_items(items, 1, visitor)
            }
            // `{tag, {a, b}}` and `#{tag => {a, b}}` hold the fields together.
            Content::Elements([inner @ (Term::Tuple(items) | Term::List(items))])
                if items.len() == len =>
            {
                self.parent
                    .child(inner)?
                    .visit_items(items, 0, visitor)
                    .map_err(|e| e.found(inner).at_index(1))
            }
            Content::Value(inner @ (Term::Tuple(items) | Term::List(items)))
                if items.len() == len =>
            {
                self.parent
                    .child(inner)?
                    .visit_items(items, 0, visitor)
                    .map_err(|e| e.found(inner).at_key(self.tag))
            }
            _ => {
                let shape = format!("{{{}{}}}", atom_text(self.name), ",_".repeat(len));
                return Err(self.mismatch(shape));
            }
        };
        result.map_err(|e| e.found(self.parent.term))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let expected = || format!("map ({}::{})", self.enum_name, self.name);
        match self.content {
            Content::Elements([map]) => self
                .parent
                .child(map)?
                .read_struct(expected, fields, visitor)
                .map_err(|e| e.found(map).at_index(1)),
            Content::Value(map) => self
                .parent
                .child(map)?
                .read_struct(expected, fields, visitor)
                .map_err(|e| e.found(map).at_key(self.tag)),
            _ => Err(self.mismatch(format!("{{{},map}}", atom_text(self.name)))),
        }
    }
}

/// Gives an enum's visitor the variant name.
struct TagDeserializer<'de> {
    name: &'de str,
}

impl<'de> de::Deserializer<'de> for TagDeserializer<'de> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_borrowed_str(self.name)
    }

    forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct newtype_struct seq tuple
        tuple_struct map struct enum identifier ignored_any
    }
}
