//! `Serialize` values to [`Term`]s.

use std::collections::HashSet;

use ::serde::ser::{self, Serialize};

use super::error::Error;
use super::{ATOM_TOKEN, variant_atom};
use crate::atom::Atom;
use crate::term::{Map, Term};

/// A serde `Serializer` whose output is a [`Term`]; see the
/// [module documentation](super) for the mapping.
///
/// [`to_term`](super::to_term) is the usual way to use it.
///
/// # Examples
///
/// ```
/// use ergo_etf::serde::Serializer;
/// use ergo_etf::Term;
/// use serde::Serialize;
/// let t = (1, "two").serialize(Serializer).unwrap();
/// assert_eq!(t, Term::tuple([Term::Int(1), Term::binary("two")]));
/// ```
#[derive(Debug, Clone, Copy, Default)]
pub struct Serializer;

/// Builds a list or tuple for [`Serializer`]; not made directly.
#[derive(Debug)]
pub struct SeqSerializer {
    items: Vec<Term>,
    tuple: bool,
}

/// Builds a map, or a tagged map for a struct variant, for [`Serializer`];
/// not made directly.
#[derive(Debug)]
pub struct MapSerializer {
    pairs: Vec<(Term, Term)>,
    key: Option<Term>,
    tag: Option<Atom>,
}

/// The items of a sequence whose length serde announced, with room reserved
/// within reason (the hint comes from the value, which may lie).
fn with_room<T>(len: Option<usize>) -> Vec<T> {
    Vec::with_capacity(len.unwrap_or(0).min(4096))
}

/// A field name as an atom.
fn field_atom(name: &str) -> Result<Atom, Error> {
    Atom::try_new(name)
        .map_err(|e| Error::message(format!("cannot make the field name {name:?} an atom: {e}")))
}

/// Pairs with distinct keys as a map; a key given twice keeps its last
/// value, in the place it first had.
fn into_map(pairs: Vec<(Term, Term)>) -> Map {
    if pairs.len() > 8 {
        let mut seen = HashSet::with_capacity(pairs.len());
        if pairs.iter().all(|(k, _)| seen.insert(k)) {
            return Map::from_unique(pairs);
        }
    }
    Map::from_pairs(pairs)
}

impl ser::Serializer for Serializer {
    type Ok = Term;
    type Error = Error;
    type SerializeSeq = SeqSerializer;
    type SerializeTuple = SeqSerializer;
    type SerializeTupleStruct = SeqSerializer;
    type SerializeTupleVariant = SeqSerializer;
    type SerializeMap = MapSerializer;
    type SerializeStruct = MapSerializer;
    type SerializeStructVariant = MapSerializer;

    fn serialize_bool(self, v: bool) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_i8(self, v: i8) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_i16(self, v: i16) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_i32(self, v: i32) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_i64(self, v: i64) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_i128(self, v: i128) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_u8(self, v: u8) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_u16(self, v: u16) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_u32(self, v: u32) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_u64(self, v: u64) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_u128(self, v: u128) -> Result<Term, Error> {
        Ok(Term::from(v))
    }

    fn serialize_f32(self, v: f32) -> Result<Term, Error> {
        self.serialize_f64(f64::from(v))
    }

    fn serialize_f64(self, v: f64) -> Result<Term, Error> {
        if v.is_finite() {
            Ok(Term::Float(v))
        } else {
            // Erlang has no NaN or infinity; binary_to_term/1 refuses them.
            Err(Error::message(format!(
                "expected a finite float, found {v}: Erlang floats are never NaN or infinite"
            )))
        }
    }

    fn serialize_char(self, v: char) -> Result<Term, Error> {
        let mut buf = [0; 4];
        Ok(Term::binary(v.encode_utf8(&mut buf)))
    }

    fn serialize_str(self, v: &str) -> Result<Term, Error> {
        Ok(Term::binary(v))
    }

    fn serialize_bytes(self, v: &[u8]) -> Result<Term, Error> {
        Ok(Term::binary(v))
    }

    fn serialize_none(self) -> Result<Term, Error> {
        Ok(Term::Atom(Atom::NIL))
    }

    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<Term, Error> {
        value.serialize(self)
    }

    fn serialize_unit(self) -> Result<Term, Error> {
        Ok(Term::Atom(Atom::NIL))
    }

    fn serialize_unit_struct(self, _name: &'static str) -> Result<Term, Error> {
        Ok(Term::Atom(Atom::NIL))
    }

    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<Term, Error> {
        variant_atom(variant).map(Term::Atom)
    }

    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<Term, Error> {
        let inner = value.serialize(self)?;
        if name != ATOM_TOKEN {
            return Ok(inner);
        }
        // `Atom`'s own `Serialize`: its name, to be made an atom again.
        match &inner {
            Term::Binary(b) => match std::str::from_utf8(b) {
                Ok(name) => Atom::try_new(name)
                    .map(Term::Atom)
                    .map_err(|e| Error::message(format!("cannot make atom {name:?}: {e}"))),
                Err(_) => Err(Error::expected("atom name", &inner)),
            },
            _ => Err(Error::expected("atom name", &inner)),
        }
    }

    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<Term, Error> {
        let tag = variant_atom(variant)?;
        Ok(Term::Tuple(vec![Term::Atom(tag), value.serialize(self)?]))
    }

    fn serialize_seq(self, len: Option<usize>) -> Result<SeqSerializer, Error> {
        Ok(SeqSerializer {
            items: with_room(len),
            tuple: false,
        })
    }

    fn serialize_tuple(self, len: usize) -> Result<SeqSerializer, Error> {
        Ok(SeqSerializer {
            items: with_room(Some(len)),
            tuple: true,
        })
    }

    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<SeqSerializer, Error> {
        self.serialize_tuple(len)
    }

    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<SeqSerializer, Error> {
        let mut items = with_room(Some(len.saturating_add(1)));
        items.push(Term::Atom(variant_atom(variant)?));
        Ok(SeqSerializer { items, tuple: true })
    }

    fn serialize_map(self, len: Option<usize>) -> Result<MapSerializer, Error> {
        Ok(MapSerializer {
            pairs: with_room(len),
            key: None,
            tag: None,
        })
    }

    fn serialize_struct(self, _name: &'static str, len: usize) -> Result<MapSerializer, Error> {
        self.serialize_map(Some(len))
    }

    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<MapSerializer, Error> {
        let tag = variant_atom(variant)?;
        Ok(MapSerializer {
            pairs: with_room(Some(len)),
            key: None,
            tag: Some(tag),
        })
    }
}

impl SeqSerializer {
    fn push<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let index = self.items.len();
        let term = value.serialize(Serializer).map_err(|e| e.at_index(index))?;
        self.items.push(term);
        Ok(())
    }

    fn finish(self) -> Term {
        if self.tuple {
            Term::Tuple(self.items)
        } else {
            Term::List(self.items)
        }
    }
}

impl ser::SerializeSeq for SeqSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTuple for SeqSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleStruct for SeqSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeTupleVariant for SeqSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        self.push(value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

impl MapSerializer {
    fn push_field<T: Serialize + ?Sized>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        let key = Term::Atom(field_atom(name)?);
        let value = value.serialize(Serializer).map_err(|e| e.at_key(&key))?;
        self.pairs.push((key, value));
        Ok(())
    }

    fn finish(self) -> Term {
        let map = Term::Map(into_map(self.pairs));
        match self.tag {
            Some(tag) => Term::Tuple(vec![Term::Atom(tag), map]),
            None => map,
        }
    }
}

impl ser::SerializeMap for MapSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(Serializer)?);
        Ok(())
    }

    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let Some(key) = self.key.take() else {
            return Err(Error::message(
                "a map value was given before its key (a bug in a Serialize impl)",
            ));
        };
        let value = value.serialize(Serializer).map_err(|e| e.at_key(&key))?;
        self.pairs.push((key, value));
        Ok(())
    }

    fn end(self) -> Result<Term, Error> {
        if self.key.is_some() {
            return Err(Error::message(
                "a map key was given without its value (a bug in a Serialize impl)",
            ));
        }
        Ok(self.finish())
    }
}

impl ser::SerializeStruct for MapSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.push_field(key, value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}

impl ser::SerializeStructVariant for MapSerializer {
    type Ok = Term;
    type Error = Error;

    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        self.push_field(key, value)
    }

    fn end(self) -> Result<Term, Error> {
        Ok(self.finish())
    }
}
