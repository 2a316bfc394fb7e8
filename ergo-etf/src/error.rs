//! Errors: malformed bytes ([`DecodeError`], details in [`DecodeErrorKind`])
//! and values of the wrong shape
//! ([`ConvertError`]).

use std::borrow::Cow;
use std::fmt;

use crate::atom::AtomError;
use crate::term::Term;

/// Why bytes could not be decoded into a value: the details of a
/// [`DecodeError`].
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum DecodeErrorKind {
    /// The input ended inside a term.
    UnexpectedEnd {
        /// The offset where more bytes were needed.
        offset: usize,
    },
    /// The input did not start with the version byte 131.
    BadVersion {
        /// The byte found instead.
        found: u8,
    },
    /// A tag byte this decoder does not know.
    UnknownTag {
        /// The tag.
        tag: u8,
        /// Its offset.
        offset: usize,
    },
    /// A term is well-formed but not valid (a bad float string, a bit count
    /// out of range, a duplicate map key, a length no input this size can
    /// hold …).
    Invalid {
        /// What is wrong.
        what: Cow<'static, str>,
        /// The offset of the term.
        offset: usize,
    },
    /// An atom name is not valid UTF-8 or has over 255 characters.
    BadAtom {
        /// What is wrong.
        what: String,
        /// Its offset.
        offset: usize,
    },
    /// Safe mode: the input names an atom that does not exist yet.
    UnknownAtom {
        /// The atom's text.
        name: String,
    },
    /// The atom table is full.
    AtomTableFull,
    /// The input names more new atoms than it may add
    /// ([`crate::DecodeOptions::atom_budget`]).
    AtomBudget {
        /// How many it may add.
        limit: usize,
    },
    /// An `ATOM_CACHE_REF` that the frame's atom cache does not fill.
    BadAtomCacheRef {
        /// The index.
        index: u8,
    },
    /// Terms nest deeper than the decoder allows.
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// Compressed data that does not inflate to its stated size.
    BadCompression {
        /// What went wrong.
        what: String,
    },
    /// A term over a configured size limit.
    TooLarge {
        /// What is too large.
        what: &'static str,
        /// The size asked for.
        size: u64,
        /// The limit.
        limit: u64,
    },
    /// Bytes follow the term.
    TrailingBytes {
        /// How many.
        count: usize,
    },
    /// The term is well-formed but not of the type asked for.
    Mismatch(ConvertError),
}

impl fmt::Display for DecodeErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeErrorKind::UnexpectedEnd { offset } => {
                write!(f, "input ends inside a term (at byte {offset})")
            }
            DecodeErrorKind::BadVersion { found } => {
                write!(f, "not an external term: first byte is {found}, not 131")
            }
            DecodeErrorKind::UnknownTag { tag, offset } => {
                write!(f, "unknown term tag {tag} at byte {offset}")
            }
            DecodeErrorKind::Invalid { what, offset } => write!(f, "{what} (at byte {offset})"),
            DecodeErrorKind::BadAtom { what, offset } => {
                write!(f, "bad atom at byte {offset}: {what}")
            }
            DecodeErrorKind::UnknownAtom { name } => {
                write!(
                    f,
                    "safe decoding refused atom {name:?}: it does not exist yet"
                )
            }
            DecodeErrorKind::AtomTableFull => write!(f, "{}", AtomError::TableFull),
            DecodeErrorKind::AtomBudget { limit } => {
                write!(f, "more than {limit} new atoms (the input's budget)")
            }
            DecodeErrorKind::BadAtomCacheRef { index } => {
                write!(
                    f,
                    "atom cache reference {index} is not in this frame's cache"
                )
            }
            DecodeErrorKind::TooDeep { limit } => {
                write!(f, "terms nest deeper than the limit of {limit}")
            }
            DecodeErrorKind::BadCompression { what } => write!(f, "bad compressed term: {what}"),
            DecodeErrorKind::TooLarge { what, size, limit } => {
                write!(f, "{what} of {size} bytes is over the limit of {limit}")
            }
            DecodeErrorKind::TrailingBytes { count } => {
                write!(f, "{count} bytes follow the term")
            }
            DecodeErrorKind::Mismatch(e) => write!(f, "{e}"),
        }
    }
}

/// Why bytes could not be decoded into a value.
///
/// The details are in [`DecodeError::kind`]. The error is a single pointer,
/// so that every `Result` on the decoder's hot paths stays small enough to
/// return in registers; errors themselves are rare.
#[derive(Clone, PartialEq)]
pub struct DecodeError(Box<DecodeErrorKind>);

impl DecodeError {
    /// What went wrong.
    pub fn kind(&self) -> &DecodeErrorKind {
        &self.0
    }

    /// What went wrong, by value.
    pub fn into_kind(self) -> DecodeErrorKind {
        *self.0
    }

    /// The mismatch, when the bytes were a well-formed term of the wrong
    /// shape.
    pub fn as_mismatch(&self) -> Option<&ConvertError> {
        match self.kind() {
            DecodeErrorKind::Mismatch(e) => Some(e),
            _ => None,
        }
    }

    /// `true` when the bytes were a well-formed term of the wrong shape.
    pub fn is_mismatch(&self) -> bool {
        self.as_mismatch().is_some()
    }
}

impl From<DecodeErrorKind> for DecodeError {
    #[inline]
    fn from(kind: DecodeErrorKind) -> DecodeError {
        DecodeError(Box::new(kind))
    }
}

impl From<ConvertError> for DecodeError {
    fn from(e: ConvertError) -> DecodeError {
        DecodeErrorKind::Mismatch(e).into()
    }
}

impl fmt::Debug for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.kind(), f)
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.kind(), f)
    }
}

impl std::error::Error for DecodeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.as_mismatch()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

/// The longest text of a found term an error message keeps.
const FOUND_LIMIT: usize = 200;

/// A value is not of the shape a type expects.
///
/// It names the shape expected and what was found, in Erlang syntax:
/// `expected {add, integer}, found {add, <<"x">>}`. Where the mismatch lies
/// inside a larger value, [`std::error::Error::source`] gives the innermost
/// part that did not fit.
#[derive(Debug, Clone, PartialEq)]
pub struct ConvertError {
    expected: Cow<'static, str>,
    found: String,
    cause: Option<Box<ConvertError>>,
}

impl ConvertError {
    /// `expected` (a shape, e.g. `"integer"` or `"{add, integer}"`) was
    /// wanted and `found` was given.
    pub fn new(expected: impl Into<Cow<'static, str>>, found: &Term) -> ConvertError {
        ConvertError {
            expected: expected.into(),
            found: render_clipped(found),
            cause: None,
        }
    }

    /// Like [`ConvertError::new`], with the text of what was found.
    pub fn with_found(
        expected: impl Into<Cow<'static, str>>,
        found: impl Into<String>,
    ) -> ConvertError {
        ConvertError {
            expected: expected.into(),
            found: clip(found.into()),
            cause: None,
        }
    }

    /// Restates this error at the level of an enclosing value: the enclosing
    /// shape was expected and `found` was given; `self` becomes the cause.
    pub fn within(self, expected: impl Into<Cow<'static, str>>, found: &Term) -> ConvertError {
        let mut outer = ConvertError::new(expected, found);
        outer.cause = Some(Box::new(self));
        outer
    }

    /// The shape that was expected.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// What was found, in Erlang syntax (cut short when long).
    pub fn found(&self) -> &str {
        &self.found
    }

    /// Sets the inner mismatch this one restates.
    pub fn caused_by(mut self, cause: ConvertError) -> ConvertError {
        self.cause = Some(Box::new(cause));
        self
    }

    /// The innermost mismatch.
    pub fn root(&self) -> &ConvertError {
        let mut e = self;
        while let Some(c) = &e.cause {
            e = c;
        }
        e
    }
}

/// A `fmt::Write` that stops the formatting once it holds enough.
struct Clipped {
    out: String,
    full: bool,
}

impl std::fmt::Write for Clipped {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        if self.out.len() + s.len() > FOUND_LIMIT {
            let mut cut = FOUND_LIMIT.saturating_sub(self.out.len()).min(s.len());
            while !s.is_char_boundary(cut) {
                cut -= 1;
            }
            self.out.push_str(&s[..cut]);
            self.full = true;
            return Err(std::fmt::Error);
        }
        self.out.push_str(s);
        Ok(())
    }
}

/// The term in Erlang syntax, cut short: formatting stops at the limit, so
/// the cost does not grow with the term.
fn render_clipped(t: &Term) -> String {
    use std::fmt::Write as _;
    let mut w = Clipped {
        out: String::new(),
        full: false,
    };
    let _ = write!(w, "{t}");
    if w.full {
        w.out.push_str("...");
    }
    w.out
}

fn clip(mut s: String) -> String {
    if s.len() > FOUND_LIMIT {
        let mut cut = FOUND_LIMIT;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push_str("...");
    }
    s
}

impl fmt::Display for ConvertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "expected {}, found {}", self.expected, self.found)
    }
}

impl std::error::Error for ConvertError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.cause
            .as_deref()
            .map(|c| c as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn found_text_is_cut_short_without_printing_the_whole_term() {
        let huge = Term::List((0..1_000_000).map(Term::Int).collect());
        let e = ConvertError::new("atom", &huge);
        assert!(e.found().len() <= FOUND_LIMIT + 3, "{}", e.found().len());
        assert!(e.found().ends_with("..."));
        assert!(e.found().starts_with("[0,1,2,3"));
    }
}
