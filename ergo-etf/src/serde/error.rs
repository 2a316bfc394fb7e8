//! The error of serde conversions.

use std::fmt::{self, Display, Write as _};

use crate::error::{ConvertError, DecodeError};
use crate::term::Term;

/// The most bytes of a found term's text an error keeps before cutting it
/// short (`ConvertError` then clips it further, adding `...`).
const SHOW_LIMIT: usize = 256;

/// Why a value could not be serialized to, or deserialized from, a term.
///
/// Most errors are *mismatches*: a term of one shape where the Rust type
/// wants another. Their text names both, the term in Erlang syntax, and
/// where in the value the mismatch lies:
///
/// ```text
/// at scores[2]: expected integer in -2147483648..=2147483647 (i32), found <<"x">>
/// ```
///
/// [`Error::mismatch`] gives the [`ConvertError`] of such an error,
/// [`Error::decode_error`] the [`DecodeError`] of bytes that are not a
/// valid term, and [`Error::path`] the location.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    kind: Kind,
    /// Where the error lies, innermost segment first.
    path: Vec<Segment>,
    /// The `found` text of a mismatch is a stand-in (serde's description of
    /// a value) that the deserializer replaces with the term itself.
    found_pending: bool,
}

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Mismatch(ConvertError),
    Decode(DecodeError),
    Message(String),
}

#[derive(Debug, Clone, PartialEq)]
enum Segment {
    /// A map key that reads as a plain name.
    Field(String),
    /// Any other map key, in Erlang syntax.
    Key(String),
    /// A position in a list or tuple.
    Index(usize),
}

impl Error {
    fn new(kind: Kind) -> Error {
        Error {
            kind,
            path: Vec::new(),
            found_pending: false,
        }
    }

    /// A free-form error.
    pub(crate) fn message(msg: impl Display) -> Error {
        Error::new(Kind::Message(msg.to_string()))
    }

    /// `expected` was wanted and `found` was given.
    pub(crate) fn expected(expected: impl Into<String>, found: &Term) -> Error {
        Error::new(Kind::Mismatch(ConvertError::with_found(
            expected.into(),
            show(found),
        )))
    }

    /// A mismatch raised where only a description of the value is at hand;
    /// the deserializer that holds the term fills it in.
    fn expected_pending(expected: impl Into<String>, found: impl Into<String>) -> Error {
        let mut e = Error::new(Kind::Mismatch(ConvertError::with_found(
            expected.into(),
            found.into(),
        )));
        e.found_pending = true;
        e
    }

    /// Puts `term` as what was found, if this error still waits for it.
    pub(crate) fn found(mut self, term: &Term) -> Error {
        if self.found_pending {
            self.found_pending = false;
            if let Kind::Mismatch(e) = &self.kind {
                self.kind = Kind::Mismatch(ConvertError::with_found(
                    e.expected().to_owned(),
                    show(term),
                ));
            }
        }
        self
    }

    /// Places this error under the map key `key`.
    pub(crate) fn at_key(mut self, key: &Term) -> Error {
        let name = match key {
            Term::Atom(a) => Some(a.as_str()),
            Term::Binary(b) => std::str::from_utf8(b).ok(),
            _ => None,
        };
        let segment = match name {
            Some(n) if is_plain_name(n) => Segment::Field(n.to_owned()),
            _ => Segment::Key(show(key)),
        };
        self.path.push(segment);
        self
    }

    /// Places this error at position `index` of a list or tuple.
    pub(crate) fn at_index(mut self, index: usize) -> Error {
        self.path.push(Segment::Index(index));
        self
    }

    /// The type mismatch this error reports, if it is one.
    pub fn mismatch(&self) -> Option<&ConvertError> {
        match &self.kind {
            Kind::Mismatch(e) => Some(e),
            Kind::Decode(e) => e.as_mismatch(),
            _ => None,
        }
    }

    /// The decoding error, when the bytes given to
    /// [`from_bytes`](super::from_bytes) were not a valid term, or
    /// [`DecodeErrorKind::TooDeep`](crate::DecodeErrorKind::TooDeep) when a term nests deeper than the
    /// deserializer allows.
    pub fn decode_error(&self) -> Option<&DecodeError> {
        match &self.kind {
            Kind::Decode(e) => Some(e),
            _ => None,
        }
    }

    /// Where in the value the error lies, as a path of map keys and list
    /// or tuple positions (`users[3].name`); empty for the value itself.
    pub fn path(&self) -> String {
        let mut out = String::new();
        for (i, segment) in self.path.iter().rev().enumerate() {
            // Writing to a String cannot fail.
            let _ = match segment {
                Segment::Field(name) if i == 0 => write!(out, "{name}"),
                Segment::Field(name) => write!(out, ".{name}"),
                Segment::Key(key) => write!(out, "[{key}]"),
                Segment::Index(n) => write!(out, "[{n}]"),
            };
        }
        out
    }
}

impl Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !self.path.is_empty() {
            write!(f, "at {}: ", self.path())?;
        }
        match &self.kind {
            Kind::Mismatch(e) => write!(f, "{e}"),
            Kind::Decode(e) => write!(f, "{e}"),
            Kind::Message(m) => f.write_str(m),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            Kind::Mismatch(e) => Some(e),
            Kind::Decode(e) => Some(e),
            Kind::Message(_) => None,
        }
    }
}

impl From<ConvertError> for Error {
    fn from(e: ConvertError) -> Error {
        Error::new(Kind::Mismatch(e))
    }
}

impl From<DecodeError> for Error {
    fn from(e: DecodeError) -> Error {
        Error::new(Kind::Decode(e))
    }
}

impl ::serde::ser::Error for Error {
    fn custom<T: Display>(msg: T) -> Error {
        Error::message(msg)
    }
}

impl ::serde::de::Error for Error {
    fn custom<T: Display>(msg: T) -> Error {
        Error::message(msg)
    }

    fn invalid_type(unexp: ::serde::de::Unexpected<'_>, exp: &dyn ::serde::de::Expected) -> Error {
        Error::expected_pending(exp.to_string(), unexp.to_string())
    }

    fn invalid_value(unexp: ::serde::de::Unexpected<'_>, exp: &dyn ::serde::de::Expected) -> Error {
        Error::expected_pending(exp.to_string(), unexp.to_string())
    }

    fn invalid_length(len: usize, exp: &dyn ::serde::de::Expected) -> Error {
        Error::expected_pending(exp.to_string(), format!("{len} elements"))
    }

    fn unknown_variant(variant: &str, expected: &'static [&'static str]) -> Error {
        let names: Vec<String> = expected
            .iter()
            .map(|v| super::snake_case(v).into_owned())
            .collect();
        let wanted = match names.as_slice() {
            [] => "no variant (the enum has none)".to_owned(),
            [one] => format!("variant {one}"),
            _ => format!("one of the variants {}", names.join(", ")),
        };
        Error::expected_pending(wanted, format!("{variant:?}"))
    }

    fn unknown_field(field: &str, expected: &'static [&'static str]) -> Error {
        let wanted = match expected {
            [] => "no fields".to_owned(),
            _ => format!("one of the fields {}", expected.join(", ")),
        };
        Error::expected_pending(wanted, format!("{field:?}"))
    }

    fn missing_field(field: &'static str) -> Error {
        Error::expected_pending(
            format!("a map with the field {field}"),
            format!("no {field}"),
        )
    }

    fn duplicate_field(field: &'static str) -> Error {
        Error::message(format!("the field {field} is given twice"))
    }
}

/// `true` for a key that reads well after a dot in a path.
fn is_plain_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && chars.all(|c| c.is_alphanumeric() || c == '_')
}

/// The term in Erlang syntax, cut short after [`SHOW_LIMIT`] bytes without
/// formatting the rest: a huge term costs no more than a small one, and a
/// huge bignum is described rather than converted to decimal.
pub(crate) fn show(term: &Term) -> String {
    let mut out = Bounded(String::new());
    // An error here only means the text was cut short.
    let _ = write_term(&mut out, term);
    out.0
}

/// A string that takes [`SHOW_LIMIT`] bytes, then `...`, then refuses more.
struct Bounded(String);

impl fmt::Write for Bounded {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = SHOW_LIMIT.saturating_sub(self.0.len());
        if s.len() <= room {
            self.0.push_str(s);
            return Ok(());
        }
        let mut cut = room;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        self.0.push_str(&s[..cut]);
        self.0.push_str("...");
        Err(fmt::Error)
    }
}

/// Writes `term` as its `Display` does, but stops as soon as `out` is full
/// (`Display` formats a bignum whole before writing any of it).
fn write_term(out: &mut Bounded, term: &Term) -> fmt::Result {
    let items = |out: &mut Bounded, items: &[Term]| {
        for (i, t) in items.iter().enumerate() {
            if i > 0 {
                out.write_char(',')?;
            }
            write_term(out, t)?;
        }
        Ok(())
    };
    match term {
        Term::BigInt(b) if b.bits() > 512 => {
            write!(out, "<an integer of {} bits>", b.bits())
        }
        Term::Tuple(v) => {
            out.write_char('{')?;
            items(out, v)?;
            out.write_char('}')
        }
        // Lists of integers only may print as strings: `Display` has the
        // rule, and they hold no bignum.
        Term::List(v) if !v.iter().all(|t| matches!(t, Term::Int(_))) => {
            out.write_char('[')?;
            items(out, v)?;
            out.write_char(']')
        }
        Term::ImproperList(v, tail) => {
            out.write_char('[')?;
            items(out, v)?;
            out.write_char('|')?;
            write_term(out, tail)?;
            out.write_char(']')
        }
        Term::Map(m) => {
            out.write_str("#{")?;
            for (i, (k, v)) in m.iter().enumerate() {
                if i > 0 {
                    out.write_char(',')?;
                }
                write_term(out, k)?;
                out.write_str(" => ")?;
                write_term(out, v)?;
            }
            out.write_char('}')
        }
        other => write!(out, "{other}"),
    }
}
