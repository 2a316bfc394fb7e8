//! Decoding the external term format.
//!
//! [`decode`] reads what `term_to_binary/1` writes (version byte 131, then a
//! term, possibly compressed). [`Decoder`] reads terms one piece at a time;
//! typed decoders (the [`Decode`] trait, `#[derive(Term)]`) use it to go from
//! bytes straight to a Rust value without building a [`Term`].
//!
//! The decoder is meant for input from the network. It never panics, checks
//! every length against the bytes that remain before allocating for it (so a
//! length field of 4 GB in a 20-byte input is an error, not an allocation),
//! bounds nesting depth, caps how far compressed input may inflate, and in
//! safe mode refuses atoms that do not exist yet.

use std::borrow::Cow;
use std::io::Read;

use bytes::Bytes;
use num_bigint::{BigInt, Sign};

use crate::atom::{Atom, AtomError, MAX_ATOM_CHARS};
use crate::error::{ConvertError, DecodeError, DecodeErrorKind};
use crate::tags::*;
use crate::term::{BitBinary, Fun, LocalFun, Map, Pid, Port, Ref, Term};

/// Settings for decoding.
///
/// # Examples
///
/// ```
/// use ergo_etf::{DecodeOptions, DecodeErrorKind};
/// // {hello_unknown_atom_q9} as term_to_binary/1 writes it
/// let bytes = b"\x83\x68\x01\x64\x00\x15hello_unknown_atom_q9";
/// let err = DecodeOptions::new().safe(true).decode(bytes).unwrap_err();
/// assert!(matches!(err.kind(), DecodeErrorKind::UnknownAtom { .. }));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct DecodeOptions {
    safe: bool,
    max_depth: usize,
    max_inflated: u64,
    share_min: usize,
    atom_limit: usize,
    atom_budget: usize,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions::new()
    }
}

/// The nesting depth allowed by default.
pub const DEFAULT_MAX_DEPTH: usize = 1024;
/// The largest size compressed input may inflate to by default (1 GiB).
pub const DEFAULT_MAX_INFLATED: u64 = 1 << 30;
/// zlib cannot compress better than about 1032:1; a stated size beyond that
/// ratio is a lie and is refused before anything is allocated.
const MAX_ZLIB_RATIO: u64 = 1032;

impl DecodeOptions {
    /// The defaults: atoms may be created, depth up to
    /// [`DEFAULT_MAX_DEPTH`], compressed input up to 1 GiB inflated.
    pub const fn new() -> DecodeOptions {
        DecodeOptions {
            safe: false,
            max_depth: DEFAULT_MAX_DEPTH,
            max_inflated: DEFAULT_MAX_INFLATED,
            share_min: 65,
            atom_limit: crate::atom::ATOM_LIMIT,
            atom_budget: usize::MAX,
        }
    }

    /// At most `n` atoms may be created by one decoder with these options:
    /// the next is [`DecodeErrorKind::AtomBudget`], refused before it is
    /// added to the table.
    pub const fn atom_budget(mut self, n: usize) -> DecodeOptions {
        self.atom_budget = n;
        self
    }

    /// Atoms are created only while the atom table holds fewer than
    /// `limit` (past it, a new atom is [`DecodeErrorKind::AtomTableFull`]):
    /// input then cannot take the last `ATOM_LIMIT - limit` entries, which
    /// stay for the program.
    pub const fn atom_limit(mut self, limit: usize) -> DecodeOptions {
        self.atom_limit = limit;
        self
    }

    /// Safe mode, as `binary_to_term(B, [safe])`: an atom that does not
    /// exist yet is an error ([`DecodeErrorKind::UnknownAtom`]), so input cannot
    /// grow the atom table.
    pub const fn safe(mut self, safe: bool) -> DecodeOptions {
        self.safe = safe;
        self
    }

    /// How deep terms may nest (tuples, lists, maps, funs).
    pub const fn max_depth(mut self, depth: usize) -> DecodeOptions {
        self.max_depth = depth;
        self
    }

    /// How large compressed input may inflate to.
    pub const fn max_inflated_size(mut self, bytes: u64) -> DecodeOptions {
        self.max_inflated = bytes;
        self
    }

    /// `true` in safe mode.
    pub const fn is_safe(&self) -> bool {
        self.safe
    }

    /// Decodes `term_to_binary` output (version byte, maybe compressed).
    pub fn decode(&self, input: &[u8]) -> Result<Term, DecodeError> {
        self.decode_with(input, None, |d| d.read_term())
    }

    /// Like [`DecodeOptions::decode`], but binaries over 64 bytes share
    /// `input`'s memory instead of being copied.
    pub fn decode_bytes(&self, input: &Bytes) -> Result<Term, DecodeError> {
        self.decode_with(input, Some(input), |d| d.read_term())
    }

    /// Decodes `term_to_binary` output straight into a typed value.
    pub fn decode_as<T: Decode>(&self, input: &[u8]) -> Result<T, DecodeError> {
        self.decode_with(input, None, T::decode)
    }

    fn decode_with<T>(
        &self,
        input: &[u8],
        owner: Option<&Bytes>,
        f: impl FnOnce(&mut Decoder<'_>) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        match input.first() {
            None => {
                return Err(DecodeError::from(DecodeErrorKind::UnexpectedEnd {
                    offset: 0,
                }));
            }
            Some(&VERSION) => {}
            Some(&found) => return Err(DecodeError::from(DecodeErrorKind::BadVersion { found })),
        }
        if input.get(1) == Some(&COMPRESSED) {
            let inflated = Bytes::from(self.inflate(input)?);
            let mut d = Decoder::new(&inflated, self);
            d.owner = Some(&inflated);
            let v = f(&mut d)?;
            return d.finish().map(|()| v);
        }
        let mut d = Decoder::new(input, self);
        d.pos = 1;
        d.owner = owner;
        // Returned as it came, not taken apart and rebuilt: the copy that
        // rebuilding made stalled on the stores that had just written it.
        let r = f(&mut d);
        if r.is_ok()
            && let Err(e) = d.finish()
        {
            return Err(e);
        }
        r
    }

    fn inflate(&self, input: &[u8]) -> Result<Vec<u8>, DecodeError> {
        let Some(size) = input.get(2..6) else {
            return Err(DecodeError::from(DecodeErrorKind::UnexpectedEnd {
                offset: input.len(),
            }));
        };
        let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]) as u64;
        let data = &input[6..];
        if size > self.max_inflated {
            return Err(DecodeError::from(DecodeErrorKind::TooLarge {
                what: "compressed term",
                size,
                limit: self.max_inflated,
            }));
        }
        let plausible = (data.len() as u64).saturating_mul(MAX_ZLIB_RATIO) + 64;
        if size > plausible {
            return Err(DecodeError::from(DecodeErrorKind::BadCompression {
                what: format!(
                    "states {size} bytes inflated from {} compressed, more than zlib can produce",
                    data.len()
                ),
            }));
        }
        let mut out = Vec::with_capacity(size as usize);
        let mut z = flate2::read::ZlibDecoder::new(data).take(size + 1);
        z.read_to_end(&mut out).map_err(|e| {
            DecodeError::from(DecodeErrorKind::BadCompression {
                what: e.to_string(),
            })
        })?;
        if out.len() as u64 != size {
            return Err(DecodeError::from(DecodeErrorKind::BadCompression {
                what: format!("states {size} bytes but inflates to {}", out.len()),
            }));
        }
        Ok(out)
    }
}

/// The default options, in static memory: options built on the stack just
/// before a decode cost a store-forwarding stall when the decoder copies
/// them, which shows on small terms.
static DEFAULT_OPTIONS: DecodeOptions = DecodeOptions::new();

/// Decodes `term_to_binary` output into a [`Term`] with the default options.
///
/// # Examples
///
/// ```
/// use ergo_etf::{decode, Term};
/// let t = decode(&[131, 104, 2, 97, 1, 106]).unwrap();
/// assert_eq!(t, Term::tuple([Term::Int(1), Term::NIL]));
/// ```
pub fn decode(input: &[u8]) -> Result<Term, DecodeError> {
    DEFAULT_OPTIONS.decode(input)
}

/// Like [`decode`], sharing `input`'s memory for large binaries.
pub fn decode_bytes(input: &Bytes) -> Result<Term, DecodeError> {
    DEFAULT_OPTIONS.decode_bytes(input)
}

/// Decodes `term_to_binary` output straight into `T`.
///
/// # Examples
///
/// ```
/// use ergo_etf::{decode_as, encode};
/// let bytes = encode(&(1u8, String::from("two")));
/// let back: (u8, String) = decode_as(&bytes).unwrap();
/// assert_eq!(back, (1, "two".to_string()));
/// ```
pub fn decode_as<T: Decode>(input: &[u8]) -> Result<T, DecodeError> {
    DEFAULT_OPTIONS.decode_as(input)
}

/// A value that can be read straight from external-format bytes.
///
/// Every such type can also be made from a [`Term`] ([`crate::FromTerm`]),
/// which decoders fall back to for unusual encodings.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be decoded from an Erlang term",
    note = "derive it with `#[derive(Term)]`, or implement `Decode` by hand"
)]
pub trait Decode: crate::FromTerm + Sized {
    /// Reads one value.
    fn decode(dec: &mut Decoder<'_>) -> Result<Self, DecodeError>;
}

/// When less stack than this remains, nested decoding continues on a new,
/// heap-allocated stack segment of [`STACK_GROW`] bytes. The remaining
/// stack is checked every [`STACK_CHECK_EVERY`] levels; the red zone covers
/// that many levels of the largest frames (debug builds of derived types).
pub(crate) const STACK_RED_ZONE: usize = 128 * 1024;
/// How many nesting levels pass between two stack checks.
pub(crate) const STACK_CHECK_EVERY: usize = 16;
/// The size of each extra stack segment.
pub(crate) const STACK_GROW: usize = 1024 * 1024;

/// How many characters of a found term an error message renders.
const RENDER_BUDGET: usize = 200;

/// Why rendering a term for an error message stopped early.
enum Rendered {
    /// The budget is spent.
    Full,
    /// The bytes are not a term.
    Malformed(DecodeError),
}

impl From<DecodeError> for Rendered {
    fn from(e: DecodeError) -> Rendered {
        Rendered::Malformed(e)
    }
}

/// The header of a list, as [`Decoder::read_list`] reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListHeader {
    /// `[]`: nothing follows.
    Nil,
    /// `STRING_EXT`: this many bytes, each an element; nothing follows them.
    Bytes(usize),
    /// `LIST_EXT`: this many elements follow, then a tail term.
    Cons(usize),
}

/// A cursor over external-format bytes (without the version byte).
#[derive(Clone)]
pub struct Decoder<'a> {
    input: &'a [u8],
    pos: usize,
    owner: Option<&'a Bytes>,
    opts: DecodeOptions,
    depth: usize,
    /// The atoms `ATOM_CACHE_REF` n refers to (empty without a cache).
    cache: &'a [Atom],
    /// Atoms this decoder added to the table.
    created: std::cell::Cell<usize>,
}

impl std::fmt::Debug for Decoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("pos", &self.pos)
            .field("len", &self.input.len())
            .field("depth", &self.depth)
            .finish()
    }
}

macro_rules! be {
    ($self:ident, $t:ty) => {{
        const N: usize = std::mem::size_of::<$t>();
        let bytes = $self.take(N)?;
        let mut arr = [0u8; N];
        arr.copy_from_slice(bytes);
        <$t>::from_be_bytes(arr)
    }};
}

impl<'a> Decoder<'a> {
    /// A decoder over `input`, which holds terms with no version byte (as in
    /// a distribution frame after its header).
    pub fn new(input: &'a [u8], opts: &DecodeOptions) -> Decoder<'a> {
        Decoder {
            input,
            pos: 0,
            owner: None,
            opts: *opts,
            depth: 0,
            cache: &[],
            created: std::cell::Cell::new(0),
        }
    }

    /// How many atoms this decoder has added to the atom table (those the
    /// input named that did not exist yet).
    pub fn atoms_created(&self) -> usize {
        self.created.get()
    }

    /// Lets large binaries share `owner`'s memory; `owner` must hold the same
    /// bytes as the input.
    pub fn with_owner(mut self, owner: &'a Bytes) -> Decoder<'a> {
        if owner.as_ptr() == self.input.as_ptr() && owner.len() == self.input.len() {
            self.owner = Some(owner);
        }
        self
    }

    /// Resolves `ATOM_CACHE_REF`s through `atoms`, the atoms a
    /// distribution frame's header names, in header order: reference n is
    /// `atoms[n]`.
    pub fn with_atom_cache(mut self, atoms: &'a [Atom]) -> Decoder<'a> {
        self.cache = atoms;
        self
    }

    /// The offset of the next byte.
    pub fn position(&self) -> usize {
        self.pos
    }

    /// How many bytes remain.
    pub fn remaining(&self) -> usize {
        self.input.len() - self.pos
    }

    /// `Ok` if every byte was read.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            count => Err(DecodeError::from(DecodeErrorKind::TrailingBytes { count })),
        }
    }

    #[inline]
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.input.len());
        match end {
            Some(end) => {
                let s = &self.input[self.pos..end];
                self.pos = end;
                Ok(s)
            }
            None => Err(DecodeError::from(DecodeErrorKind::UnexpectedEnd {
                offset: self.input.len(),
            })),
        }
    }

    #[inline]
    fn u8(&mut self) -> Result<u8, DecodeError> {
        match self.input.get(self.pos) {
            Some(&b) => {
                self.pos += 1;
                Ok(b)
            }
            None => Err(DecodeError::from(DecodeErrorKind::UnexpectedEnd {
                offset: self.pos,
            })),
        }
    }

    #[inline]
    fn u16(&mut self) -> Result<u16, DecodeError> {
        Ok(be!(self, u16))
    }

    #[inline]
    fn u32(&mut self) -> Result<u32, DecodeError> {
        Ok(be!(self, u32))
    }

    /// The next tag byte, not consumed.
    #[inline]
    pub fn peek_tag(&self) -> Result<u8, DecodeError> {
        match self.input.get(self.pos) {
            Some(&tag) => Ok(tag),
            None => Err(DecodeError::from(DecodeErrorKind::UnexpectedEnd {
                offset: self.pos,
            })),
        }
    }

    fn invalid(&self, what: impl Into<Cow<'static, str>>, offset: usize) -> DecodeError {
        DecodeError::from(DecodeErrorKind::Invalid {
            what: what.into(),
            offset,
        })
    }

    /// Checks that `count` items of at least `min_size` bytes each can fit
    /// in what remains: the guard against lengths the input cannot back.
    #[inline]
    fn check_count(&self, count: usize, min_size: usize, at: usize) -> Result<(), DecodeError> {
        if count.saturating_mul(min_size) > self.remaining() {
            return Err(self.invalid(
                format!(
                    "length {count} is more than the {} remaining bytes can hold",
                    self.remaining()
                ),
                at,
            ));
        }
        Ok(())
    }

    /// Enters one level of nesting, failing past the depth limit. Typed
    /// decoders of nested values (derived ones included) call it so that a
    /// recursive type cannot be driven deeper than the limit.
    #[doc(hidden)]
    pub fn enter(&mut self) -> Result<(), DecodeError> {
        self.depth += 1;
        if self.depth > self.opts.max_depth {
            return Err(DecodeError::from(DecodeErrorKind::TooDeep {
                limit: self.opts.max_depth,
            }));
        }
        Ok(())
    }

    /// Runs `f` one nesting level down: enters a level (failing past the
    /// depth limit), makes sure enough stack remains (growing it on the heap
    /// when it runs low, so deep input cannot overflow a thread's stack even
    /// in a debug build), and leaves the level again.
    #[inline]
    pub fn nested<T>(
        &mut self,
        f: impl FnOnce(&mut Self) -> Result<T, DecodeError>,
    ) -> Result<T, DecodeError> {
        self.enter()?;
        let r = self.with_stack(f);
        self.leave();
        r
    }

    /// Runs `f`, first making sure enough stack remains when this level is
    /// one where the stack is checked.
    #[inline]
    fn with_stack<T>(&mut self, f: impl FnOnce(&mut Self) -> T) -> T {
        if self.depth.is_multiple_of(STACK_CHECK_EVERY) {
            stacker::maybe_grow(STACK_RED_ZONE, STACK_GROW, || f(self))
        } else {
            f(self)
        }
    }

    /// Leaves a level entered with [`Decoder::enter`].
    #[doc(hidden)]
    pub fn leave(&mut self) {
        self.depth -= 1;
    }

    /// A mismatch error for a typed decoder: `expected` was wanted, and the
    /// term that starts at `start` was found.
    pub fn mismatch(&self, expected: impl Into<Cow<'static, str>>, start: usize) -> DecodeError {
        let mut d = self.clone();
        d.pos = start;
        d.depth = 0;
        let mut found = String::new();
        match d.render(&mut found) {
            Ok(()) => {}
            Err(Rendered::Full) => found.push_str("..."),
            Err(Rendered::Malformed(e)) => {
                found.clear();
                found.push_str(&format!("a malformed term ({e})"));
            }
        }
        DecodeError::from(DecodeErrorKind::Mismatch(ConvertError::with_found(
            expected, found,
        )))
    }

    /// Writes the term at the cursor in Erlang syntax for an error message,
    /// straight from the bytes: no atoms are created, and the work stops once
    /// [`RENDER_BUDGET`] characters are written, whatever the term's size.
    fn render(&mut self, out: &mut String) -> Result<(), Rendered> {
        use std::fmt::Write as _;
        if out.len() > RENDER_BUDGET {
            return Err(Rendered::Full);
        }
        let seq = |d: &mut Self, out: &mut String, n: usize, sep_every: usize| {
            for i in 0..n {
                if i > 0 {
                    out.push(if sep_every == 2 && i % 2 == 1 {
                        ' '
                    } else {
                        ','
                    });
                    if sep_every == 2 && i % 2 == 1 {
                        out.push_str("=> ");
                    }
                }
                d.render(out)?;
            }
            Ok::<(), Rendered>(())
        };
        match self.peek_tag()? {
            SMALL_TUPLE | LARGE_TUPLE => {
                let n = self.read_tuple_header()?;
                out.push('{');
                seq(self, out, n, 1)?;
                out.push('}');
            }
            MAP => {
                let n = self.read_map_header()?;
                out.push_str("#{");
                seq(self, out, 2 * n, 2)?;
                out.push('}');
            }
            NIL | STRING | LIST => {
                let at = self.pos;
                match self.read_list()? {
                    ListHeader::Nil => out.push_str("[]"),
                    ListHeader::Bytes(n) => {
                        self.pos = at;
                        let shown = n.min(RENDER_BUDGET);
                        let mut d = self.clone();
                        d.pos += 3;
                        let bytes = d.take(shown)?;
                        let t = Term::List(bytes.iter().map(|&b| Term::Int(b as i64)).collect());
                        let _ = write!(out, "{t}");
                        if shown < n {
                            return Err(Rendered::Full);
                        }
                        self.pos = at + 3 + n;
                    }
                    ListHeader::Cons(n) => {
                        out.push('[');
                        seq(self, out, n, 1)?;
                        if self.peek_tag()? != NIL {
                            out.push('|');
                            self.render(out)?;
                        } else {
                            self.pos += 1;
                        }
                        out.push(']');
                    }
                }
            }
            BINARY => {
                let bytes = self.read_binary_slice()?;
                let shown = &bytes[..bytes.len().min(RENDER_BUDGET)];
                let _ = write!(out, "{}", Term::Binary(Bytes::copy_from_slice(shown)));
                if shown.len() < bytes.len() {
                    return Err(Rendered::Full);
                }
            }
            SMALL_BIG | LARGE_BIG => {
                let mut probe = self.clone();
                probe.pos += 1;
                let n = if self.peek_tag()? == SMALL_BIG {
                    probe.u8()? as usize
                } else {
                    probe.u32()? as usize
                };
                if n > 64 {
                    // Printing a huge bignum in decimal costs far more than
                    // an error message is worth.
                    self.skip_term()?;
                    let _ = write!(out, "<an integer of {n} bytes>");
                } else {
                    let _ = write!(out, "{}", self.read_big()?);
                }
            }
            SMALL_ATOM_UTF8 | ATOM_UTF8 | SMALL_ATOM | ATOM | ATOM_CACHE_REF => {
                let name = self.read_atom_name()?;
                let _ = crate::atom::write_atom(out, &name);
            }
            NEW_PID | PID | NEW_PORT | V4_PORT | PORT | NEWER_REFERENCE | NEW_REFERENCE
            | REFERENCE | EXPORT | NEW_FUN | BIT_BINARY | NEW_FLOAT | FLOAT | SMALL_INTEGER
            | INTEGER => {
                // Small terms, except a fun's free variables or a bit
                // binary's bytes, which are bounded by the skip below.
                let at = self.pos;
                let mut probe = self.clone();
                probe.skip_term()?;
                if probe.pos - at > 4 * RENDER_BUDGET {
                    self.pos = probe.pos;
                    let _ = write!(out, "<a term of {} bytes>", probe.pos - at);
                } else {
                    // Safe mode: an error message must not create atoms.
                    let mut d = self.clone();
                    d.opts.safe = true;
                    match d.read_term() {
                        Ok(t) => {
                            let _ = write!(out, "{t}");
                        }
                        Err(e) if matches!(e.kind(), DecodeErrorKind::UnknownAtom { .. }) => {
                            let _ = write!(
                                out,
                                "<a {} naming an unknown atom>",
                                tag_kind(self.peek_tag()?)
                            );
                        }
                        Err(e) => return Err(e.into()),
                    }
                    self.pos = probe.pos;
                }
            }
            tag => {
                return Err(Rendered::Malformed(DecodeError::from(
                    DecodeErrorKind::UnknownTag {
                        tag,
                        offset: self.pos,
                    },
                )));
            }
        }
        Ok(())
    }

    // ------------------------------------------------------------ atoms

    /// Reads an atom's text without interning it.
    pub fn read_atom_name(&mut self) -> Result<Cow<'a, str>, DecodeError> {
        let at = self.pos;
        let tag = self.u8()?;
        let (len, utf8) = match tag {
            SMALL_ATOM_UTF8 => (self.u8()? as usize, true),
            ATOM_UTF8 => (self.u16()? as usize, true),
            SMALL_ATOM => (self.u8()? as usize, false),
            ATOM => (self.u16()? as usize, false),
            ATOM_CACHE_REF => {
                let index = self.u8()?;
                let atom =
                    self.cache.get(index as usize).copied().ok_or_else(|| {
                        DecodeError::from(DecodeErrorKind::BadAtomCacheRef { index })
                    })?;
                return Ok(Cow::Borrowed(atom.as_str()));
            }
            _ => return Err(self.mismatch("atom", at)),
        };
        let bytes = self.take(len)?;
        let name = if utf8 {
            let s = std::str::from_utf8(bytes).map_err(|_| {
                DecodeError::from(DecodeErrorKind::BadAtom {
                    what: "not valid UTF-8".into(),
                    offset: at,
                })
            })?;
            if len > MAX_ATOM_CHARS && s.chars().count() > MAX_ATOM_CHARS {
                return Err(DecodeError::from(DecodeErrorKind::BadAtom {
                    what: format!("more than {MAX_ATOM_CHARS} characters"),
                    offset: at,
                }));
            }
            Cow::Borrowed(s)
        } else {
            if len > MAX_ATOM_CHARS {
                return Err(DecodeError::from(DecodeErrorKind::BadAtom {
                    what: format!("more than {MAX_ATOM_CHARS} characters"),
                    offset: at,
                }));
            }
            if bytes.is_ascii() {
                // ASCII is the same in Latin-1 and UTF-8.
                Cow::Borrowed(std::str::from_utf8(bytes).unwrap_or_default())
            } else {
                Cow::Owned(bytes.iter().map(|&b| b as char).collect())
            }
        };
        Ok(name)
    }

    /// Reads an atom, interning it (or, in safe mode, refusing a new one).
    #[inline]
    pub fn read_atom(&mut self) -> Result<Atom, DecodeError> {
        if let Some(&[ATOM_CACHE_REF, index]) = self.input.get(self.pos..self.pos + 2) {
            self.pos += 2;
            return self
                .cache
                .get(index as usize)
                .copied()
                .ok_or_else(|| DecodeError::from(DecodeErrorKind::BadAtomCacheRef { index }));
        }
        self.read_atom_text()
    }

    /// [`Decoder::read_atom`] for atoms not given by a cache reference.
    #[inline(never)]
    fn read_atom_text(&mut self) -> Result<Atom, DecodeError> {
        // A name this thread saw lately is found by its bytes, before any
        // UTF-8 check or table look-up. It exists, so safe mode and the
        // atom budget have nothing to refuse.
        let rest = self.input.get(self.pos..).unwrap_or_default();
        let (head, len, latin1) = match rest {
            [SMALL_ATOM_UTF8, n, ..] => (2, *n as usize, false),
            [ATOM_UTF8, a, b, ..] => (3, u16::from_be_bytes([*a, *b]) as usize, false),
            [SMALL_ATOM, n, ..] => (2, *n as usize, true),
            [ATOM, a, b, ..] => (3, u16::from_be_bytes([*a, *b]) as usize, true),
            _ => (0, 0, false),
        };
        if head > 0
            && let Some(raw) = rest.get(head..head + len)
            && let Some(atom) = crate::atom::recent_raw(raw, latin1)
        {
            self.pos += head + len;
            return Ok(atom);
        }
        let name = self.read_atom_name()?;
        self.intern(&name)
    }

    fn intern(&self, name: &str) -> Result<Atom, DecodeError> {
        if self.opts.safe {
            return Atom::existing(name).ok_or_else(|| {
                DecodeError::from(DecodeErrorKind::UnknownAtom {
                    name: name.to_owned(),
                })
            });
        }
        if self.created.get() >= self.opts.atom_budget && Atom::existing(name).is_none() {
            return Err(DecodeError::from(DecodeErrorKind::AtomBudget {
                limit: self.opts.atom_budget,
            }));
        }
        let made = Atom::intern_within(name, self.opts.atom_limit);
        if let Ok((_, true)) = made {
            self.created.set(self.created.get() + 1);
        }
        made.map(|(atom, _)| atom).map_err(|e| match e {
            AtomError::TableFull => DecodeError::from(DecodeErrorKind::AtomTableFull),
            AtomError::TooLong { chars } => DecodeError::from(DecodeErrorKind::BadAtom {
                what: format!("{chars} characters"),
                offset: self.pos,
            }),
        })
    }

    // ------------------------------------------------------------ numbers

    /// Reads an integer that must fit in an `i64`.
    #[inline]
    pub fn read_i64(&mut self) -> Result<i64, DecodeError> {
        let at = self.pos;
        match self.peek_tag()? {
            SMALL_INTEGER => {
                self.pos += 1;
                Ok(self.u8()? as i64)
            }
            INTEGER => {
                self.pos += 1;
                Ok(be!(self, i32) as i64)
            }
            SMALL_BIG | LARGE_BIG => match self.read_big()? {
                Term::Int(i) => Ok(i),
                _ => Err(self.mismatch("integer that fits in 64 bits", at)),
            },
            _ => Err(self.mismatch("integer", at)),
        }
    }

    /// Reads an integer of any size.
    pub fn read_integer(&mut self) -> Result<Term, DecodeError> {
        let at = self.pos;
        match self.peek_tag()? {
            SMALL_INTEGER | INTEGER => self.read_i64().map(Term::Int),
            SMALL_BIG | LARGE_BIG => self.read_big(),
            _ => Err(self.mismatch("integer", at)),
        }
    }

    fn read_big(&mut self) -> Result<Term, DecodeError> {
        let tag = self.u8()?;
        let n = if tag == SMALL_BIG {
            self.u8()? as usize
        } else {
            self.u32()? as usize
        };
        let sign = self.u8()?;
        let digits = self.take(n)?;
        if sign > 1 {
            return Err(self.invalid(format!("bignum sign byte {sign}"), self.pos));
        }
        if n <= 8 {
            let mut buf = [0u8; 8];
            buf[..n].copy_from_slice(digits);
            let mag = u64::from_le_bytes(buf);
            if sign == 0 && mag <= i64::MAX as u64 {
                return Ok(Term::Int(mag as i64));
            }
            if sign == 1 && mag <= i64::MAX as u64 + 1 {
                return Ok(Term::Int((mag as i64).wrapping_neg()));
            }
        }
        let s = if sign == 1 { Sign::Minus } else { Sign::Plus };
        Ok(Term::bigint(BigInt::from_bytes_le(s, digits)))
    }

    /// Reads a float (`NEW_FLOAT_EXT` or the old string form).
    pub fn read_f64(&mut self) -> Result<f64, DecodeError> {
        let at = self.pos;
        let v = match self.peek_tag()? {
            NEW_FLOAT => {
                self.pos += 1;
                f64::from_bits(be!(self, u64))
            }
            FLOAT => {
                self.pos += 1;
                let raw = self.take(31)?;
                let end = raw.iter().position(|&b| b == 0).unwrap_or(31);
                let text = std::str::from_utf8(&raw[..end])
                    .ok()
                    .map(str::trim)
                    .and_then(|s| s.parse::<f64>().ok());
                match text {
                    Some(v) => v,
                    None => return Err(self.invalid("float string is not a number", at)),
                }
            }
            _ => return Err(self.mismatch("float", at)),
        };
        if !v.is_finite() {
            return Err(self.invalid("float is not finite", at));
        }
        Ok(v)
    }

    // ------------------------------------------------------------ binaries

    /// Reads a binary, borrowing its bytes from the input.
    pub fn read_binary_slice(&mut self) -> Result<&'a [u8], DecodeError> {
        let at = self.pos;
        match self.peek_tag()? {
            BINARY => {
                self.pos += 1;
                let len = self.u32()? as usize;
                self.take(len)
            }
            BIT_BINARY => {
                // A bit binary whose last byte is whole is a binary.
                let mut probe = self.clone();
                match probe.read_bit_binary()? {
                    Term::Binary(_) => {
                        self.pos += 1;
                        let len = self.u32()? as usize;
                        self.pos += 1;
                        self.take(len)
                    }
                    _ => Err(self.mismatch("binary", at)),
                }
            }
            _ => Err(self.mismatch("binary", at)),
        }
    }

    /// Reads a binary as [`Bytes`], sharing the input's memory when it can.
    pub fn read_binary(&mut self) -> Result<Bytes, DecodeError> {
        let s = self.read_binary_slice()?;
        Ok(self.share(s))
    }

    fn share(&self, s: &[u8]) -> Bytes {
        match self.owner {
            Some(owner) if s.len() >= self.opts.share_min => owner.slice_ref(s),
            _ => Bytes::copy_from_slice(s),
        }
    }

    /// Reads a binary holding UTF-8 text.
    pub fn read_str(&mut self) -> Result<&'a str, DecodeError> {
        let at = self.pos;
        let s = self.read_binary_slice()?;
        std::str::from_utf8(s).map_err(|_| self.mismatch("UTF-8 binary", at))
    }

    fn read_bit_binary(&mut self) -> Result<Term, DecodeError> {
        let at = self.pos;
        self.pos += 1;
        let len = self.u32()? as usize;
        let bits = self.u8()?;
        let data = self.take(len)?;
        match (len, bits) {
            (0, _) => Ok(Term::Binary(Bytes::new())),
            (_, 8) => Ok(Term::Binary(self.share(data))),
            (_, 1..=7) => match BitBinary::new(self.share(data), bits) {
                Some(b) => Ok(Term::BitBinary(b)),
                None => Err(self.invalid("bad bit binary", at)),
            },
            _ => Err(self.invalid(format!("bit binary with {bits} bits in its last byte"), at)),
        }
    }

    // ------------------------------------------------------------ containers

    /// Reads a tuple header and gives its arity; the elements follow.
    #[inline]
    pub fn read_tuple_header(&mut self) -> Result<usize, DecodeError> {
        let at = self.pos;
        let n = match self.peek_tag()? {
            SMALL_TUPLE => {
                self.pos += 1;
                self.u8()? as usize
            }
            LARGE_TUPLE => {
                self.pos += 1;
                self.u32()? as usize
            }
            _ => return Err(self.mismatch("tuple", at)),
        };
        self.check_count(n, 1, at)?;
        Ok(n)
    }

    /// Reads a map header and gives its number of pairs; key, value, key,
    /// value … follow.
    #[inline]
    pub fn read_map_header(&mut self) -> Result<usize, DecodeError> {
        let at = self.pos;
        if self.peek_tag()? != MAP {
            return Err(self.mismatch("map", at));
        }
        self.pos += 1;
        let n = self.u32()? as usize;
        self.check_count(n, 2, at)?;
        Ok(n)
    }

    /// Reads a list header. For [`ListHeader::Bytes`] the bytes are read by
    /// [`Decoder::read_string_bytes`]; for [`ListHeader::Cons`] the
    /// elements and then a tail term follow.
    pub fn read_list(&mut self) -> Result<ListHeader, DecodeError> {
        let at = self.pos;
        match self.peek_tag()? {
            NIL => {
                self.pos += 1;
                Ok(ListHeader::Nil)
            }
            STRING => {
                self.pos += 1;
                let n = self.u16()? as usize;
                self.check_count(n, 1, at)?;
                Ok(ListHeader::Bytes(n))
            }
            LIST => {
                self.pos += 1;
                let n = self.u32()? as usize;
                self.check_count(n, 1, at)?;
                Ok(ListHeader::Cons(n))
            }
            _ => Err(self.mismatch("list", at)),
        }
    }

    /// Reads the `n` bytes of a `STRING_EXT` announced by
    /// [`Decoder::read_list`].
    pub fn read_string_bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        self.take(n)
    }

    /// Reads any proper list element by element into a vector, with `f`
    /// reading one element; string-encoded lists convert each byte through
    /// [`crate::FromTerm`].
    pub fn read_list_with<T: crate::FromTerm>(
        &mut self,
        f: impl FnMut(&mut Decoder<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        self.nested(|d| d.read_list_with_here(f))
    }

    fn read_list_with_here<T: crate::FromTerm>(
        &mut self,
        mut f: impl FnMut(&mut Decoder<'a>) -> Result<T, DecodeError>,
    ) -> Result<Vec<T>, DecodeError> {
        let start = self.pos;
        let mut out = Vec::new();
        loop {
            match self.read_list()? {
                ListHeader::Nil => break,
                ListHeader::Bytes(n) => {
                    for &b in self.take(n)? {
                        out.push(T::from_term(&Term::Int(b as i64))?);
                    }
                    break;
                }
                ListHeader::Cons(n) => {
                    out.reserve(n);
                    for _ in 0..n {
                        out.push(f(self)?);
                    }
                    // The tail: [] ends it; another list continues it.
                    if !matches!(self.peek_tag()?, NIL | STRING | LIST) {
                        return Err(self.mismatch("proper list", start));
                    }
                }
            }
        }
        Ok(out)
    }

    // ------------------------------------------------------------ ids

    fn read_pid(&mut self) -> Result<Pid, DecodeError> {
        let tag = self.u8()?;
        let node = self.read_atom()?;
        if tag == NEW_PID {
            // The three numbers are taken in one step.
            let b = self.take(12)?;
            let word = |i: usize| u32::from_be_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
            return Ok(Pid {
                node,
                id: word(0),
                serial: word(4),
                creation: word(8),
            });
        }
        let id = self.u32()?;
        let serial = self.u32()?;
        let creation = self.u8()? as u32;
        Ok(Pid {
            node,
            id,
            serial,
            creation,
        })
    }

    /// Reads a pid.
    pub fn read_pid_term(&mut self) -> Result<Pid, DecodeError> {
        let at = self.pos;
        match self.peek_tag()? {
            NEW_PID | PID => self.read_pid(),
            _ => Err(self.mismatch("pid", at)),
        }
    }

    fn read_port(&mut self) -> Result<Port, DecodeError> {
        let tag = self.u8()?;
        let node = self.read_atom()?;
        let (id, creation) = match tag {
            V4_PORT => (be!(self, u64), self.u32()?),
            NEW_PORT => (self.u32()? as u64, self.u32()?),
            _ => (self.u32()? as u64, self.u8()? as u32),
        };
        Ok(Port { node, id, creation })
    }

    fn read_ref(&mut self) -> Result<Ref, DecodeError> {
        let at = self.pos;
        let tag = self.u8()?;
        if tag == REFERENCE {
            let node = self.read_atom()?;
            let id = self.u32()?;
            let creation = self.u8()? as u32;
            return Ref::new(node, creation, &[id])
                .ok_or_else(|| self.invalid("bad reference", at));
        }
        let len = self.u16()? as usize;
        if len == 0 || len > Ref::MAX_WORDS {
            return Err(self.invalid(format!("reference with {len} id words"), at));
        }
        let node = self.read_atom()?;
        let creation = if tag == NEWER_REFERENCE {
            self.u32()?
        } else {
            self.u8()? as u32
        };
        let words = self.take(4 * len)?;
        let mut ids = [0u32; 5];
        for (id, w) in ids.iter_mut().zip(words.chunks_exact(4)) {
            *id = u32::from_be_bytes([w[0], w[1], w[2], w[3]]);
        }
        Ref::new(node, creation, &ids[..len]).ok_or_else(|| self.invalid("bad reference", at))
    }

    /// Reads a reference.
    pub fn read_ref_term(&mut self) -> Result<Ref, DecodeError> {
        let at = self.pos;
        match self.peek_tag()? {
            NEWER_REFERENCE | NEW_REFERENCE | REFERENCE => self.read_ref(),
            _ => Err(self.mismatch("reference", at)),
        }
    }

    fn read_new_fun(&mut self) -> Result<Term, DecodeError> {
        let at = self.pos;
        self.pos += 1;
        let size = self.u32()? as usize;
        if size < 4 || size - 4 > self.remaining() {
            return Err(self.invalid(format!("fun of {size} bytes"), at));
        }
        let arity = self.u8()?;
        let mut uniq = [0u8; 16];
        uniq.copy_from_slice(self.take(16)?);
        let index = self.u32()?;
        let num_free = self.u32()? as usize;
        self.check_count(num_free, 1, at)?;
        let module = self.read_atom()?;
        let old_index = self.read_term()?;
        let old_uniq = self.read_term()?;
        if !matches!(old_index, Term::Int(_)) || !matches!(old_uniq, Term::Int(_)) {
            return Err(self.invalid("fun index and uniq must be integers", at));
        }
        let pid = self.read_term()?;
        if !matches!(pid, Term::Pid(_)) {
            return Err(self.invalid("fun creator must be a pid", at));
        }
        let mut free = Vec::with_capacity(num_free);
        for _ in 0..num_free {
            free.push(self.read_term()?);
        }
        if self.pos - at - 1 != size {
            return Err(self.invalid(
                format!("fun states {size} bytes but holds {}", self.pos - at - 1),
                at,
            ));
        }
        Ok(Term::Fun(Fun::Local(Box::new(LocalFun {
            arity,
            uniq,
            index,
            module,
            old_index: Box::new(old_index),
            old_uniq: Box::new(old_uniq),
            pid: Box::new(pid),
            free,
        }))))
    }

    // ------------------------------------------------------------ any term

    /// Reads any term.
    ///
    /// Only containers recurse, through small frames, so that the nesting
    /// limit is reached long before a 2 MiB thread stack is used up.
    pub fn read_term(&mut self) -> Result<Term, DecodeError> {
        match self.peek_tag()? {
            SMALL_INTEGER => {
                let b = self.input.get(self.pos + 1).copied();
                match b {
                    Some(b) => {
                        self.pos += 2;
                        Ok(Term::Int(b as i64))
                    }
                    None => Err(DecodeError::from(DecodeErrorKind::UnexpectedEnd {
                        offset: self.pos + 1,
                    })),
                }
            }
            SMALL_TUPLE | LARGE_TUPLE => self.read_tuple(),
            NIL => {
                self.pos += 1;
                Ok(Term::NIL)
            }
            STRING | LIST => self.read_any_list(),
            MAP => self.read_map(),
            NEW_FUN => self.read_fun(),
            tag => self.read_scalar(tag),
        }
    }

    #[inline(never)]
    fn read_tuple(&mut self) -> Result<Term, DecodeError> {
        let n = self.read_tuple_header()?;
        // `nested`, spelled out: a term returned through its closure was
        // copied out of it, and on small tuples that copy stalled on the
        // stores that had just written the term.
        self.enter()?;
        let elements = if self.depth.is_multiple_of(STACK_CHECK_EVERY) {
            stacker::maybe_grow(STACK_RED_ZONE, STACK_GROW, || self.read_elements(n))
        } else {
            self.read_elements(n)
        };
        self.leave();
        Ok(Term::Tuple(elements?))
    }

    /// `n` elements of a tuple. Collected from an exact-size iterator so
    /// that each element is written in place (see `read_any_list_here`).
    #[inline(always)]
    fn read_elements(&mut self, n: usize) -> Result<Vec<Term>, DecodeError> {
        let mut failed = None;
        let v: Vec<Term> = (0..n).map(|_| self.read_element(&mut failed)).collect();
        match failed {
            Some(e) => Err(e),
            None => Ok(v),
        }
    }

    /// Reads an element of a tuple or list, for collecting into the
    /// container's vector: integers, atoms and short binaries are read
    /// inline, so that the element is built in its slot (a term returned
    /// through `read_term` was copied there, and the copy stalled on the
    /// store that had just written it). The first error goes to `failed`
    /// and the rest of the elements are then `[]`.
    #[inline(always)]
    fn read_element(&mut self, failed: &mut Option<DecodeError>) -> Term {
        if failed.is_some() {
            return Term::NIL;
        }
        let rest = self.input.get(self.pos..).unwrap_or_default();
        match rest {
            [SMALL_INTEGER, b, ..] => {
                self.pos += 2;
                return Term::Int(*b as i64);
            }
            [INTEGER, b0, b1, b2, b3, ..] => {
                self.pos += 5;
                return Term::Int(i32::from_be_bytes([*b0, *b1, *b2, *b3]) as i64);
            }
            [BINARY, l0, l1, l2, l3, tail @ ..] => {
                let len = u32::from_be_bytes([*l0, *l1, *l2, *l3]) as usize;
                if let Some(bytes) = tail.get(..len) {
                    self.pos += 5 + len;
                    return Term::Binary(self.share(bytes));
                }
            }
            [
                SMALL_ATOM_UTF8 | ATOM_UTF8 | SMALL_ATOM | ATOM | ATOM_CACHE_REF,
                ..,
            ] => {
                return match self.read_atom() {
                    Ok(a) => Term::Atom(a),
                    Err(e) => {
                        *failed = Some(e);
                        Term::NIL
                    }
                };
            }
            _ => {}
        }
        self.read_term().unwrap_or_else(|e| {
            *failed = Some(e);
            Term::NIL
        })
    }

    #[inline(never)]
    fn read_fun(&mut self) -> Result<Term, DecodeError> {
        self.nested(Self::read_new_fun)
    }

    /// Reads a term that holds no other terms.
    #[inline(never)]
    fn read_scalar(&mut self, tag: u8) -> Result<Term, DecodeError> {
        let at = self.pos;
        match tag {
            SMALL_INTEGER | INTEGER => Ok(Term::Int(self.read_i64()?)),
            SMALL_BIG | LARGE_BIG => self.read_big(),
            NEW_FLOAT | FLOAT => Ok(Term::Float(self.read_f64()?)),
            SMALL_ATOM_UTF8 | ATOM_UTF8 | SMALL_ATOM | ATOM | ATOM_CACHE_REF => {
                Ok(Term::Atom(self.read_atom()?))
            }
            BINARY => {
                let s = self.read_binary_slice()?;
                Ok(Term::Binary(self.share(s)))
            }
            BIT_BINARY => self.read_bit_binary(),
            NEW_PID | PID => Ok(Term::Pid(self.read_pid()?)),
            NEW_PORT | V4_PORT | PORT => Ok(Term::Port(self.read_port()?)),
            NEWER_REFERENCE | NEW_REFERENCE | REFERENCE => Ok(Term::Ref(self.read_ref()?)),
            EXPORT => {
                self.pos += 1;
                let module = self.read_atom()?;
                let function = self.read_atom()?;
                let arity_at = self.pos;
                let arity = self.read_i64()?;
                let arity = u8::try_from(arity)
                    .map_err(|_| self.invalid(format!("fun arity {arity}"), arity_at))?;
                Ok(Term::Fun(Fun::Export {
                    module,
                    function,
                    arity,
                }))
            }
            COMPRESSED => Err(self.invalid("compressed term inside a term", at)),
            FUN => Err(self.invalid("old FUN_EXT funs are not supported since OTP 23", at)),
            _ => Err(DecodeError::from(DecodeErrorKind::UnknownTag {
                tag,
                offset: at,
            })),
        }
    }

    #[inline(never)]
    fn read_any_list(&mut self) -> Result<Term, DecodeError> {
        self.nested(Self::read_any_list_here)
    }

    fn read_any_list_here(&mut self) -> Result<Term, DecodeError> {
        let mut out: Vec<Term> = Vec::new();
        let result = loop {
            match self.read_list()? {
                ListHeader::Nil => break Term::List(out),
                ListHeader::Bytes(n) => {
                    let bytes = self.take(n)?;
                    out.reserve(n);
                    out.extend(bytes.iter().map(|&b| Term::Int(b as i64)));
                    break Term::List(out);
                }
                ListHeader::Cons(n) => {
                    // Extending from an exact-size iterator writes each term
                    // straight into the vector; building a term and pushing
                    // it stalled on the copy (a store-forwarding miss) and
                    // made integer lists twice as slow. Lists of integers
                    // are common, so those are read inline.
                    let mut failed = None;
                    out.extend((0..n).map(|_| self.read_element(&mut failed)));
                    if let Some(e) = failed {
                        return Err(e);
                    }
                    match self.peek_tag()? {
                        // The tail is a list: keep going, flattening it.
                        NIL | STRING | LIST => continue,
                        _ => {
                            let tail = self.read_term()?;
                            if out.is_empty() {
                                break tail;
                            }
                            break Term::ImproperList(out, Box::new(tail));
                        }
                    }
                }
            }
        };
        Ok(result)
    }

    #[inline(never)]
    fn read_map(&mut self) -> Result<Term, DecodeError> {
        self.nested(Self::read_map_here)
    }

    fn read_map_here(&mut self) -> Result<Term, DecodeError> {
        let at = self.pos;
        let n = self.read_map_header()?;
        let mut entries = Vec::with_capacity(n);
        let mut all_atoms = true;
        for _ in 0..n {
            let k = self.read_term()?;
            all_atoms &= matches!(k, Term::Atom(_));
            let v = self.read_term()?;
            entries.push((k, v));
        }
        if has_duplicate_keys(&entries, all_atoms) {
            return Err(self.invalid("map has a duplicate key", at));
        }
        Ok(Term::Map(Map::from_unique(entries)))
    }

    /// Skips one term without building it and without creating atoms.
    pub fn skip_term(&mut self) -> Result<(), DecodeError> {
        let mut d = self.clone();
        d.opts.safe = true;
        d.opts.share_min = usize::MAX;
        match d.skip_inner() {
            Ok(()) => {
                self.pos = d.pos;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn skip_inner(&mut self) -> Result<(), DecodeError> {
        let at = self.pos;
        match self.peek_tag()? {
            SMALL_ATOM_UTF8 | ATOM_UTF8 | SMALL_ATOM | ATOM | ATOM_CACHE_REF => {
                self.read_atom_name().map(drop)
            }
            SMALL_TUPLE | LARGE_TUPLE => {
                let n = self.read_tuple_header()?;
                self.nested(|d| (0..n).try_for_each(|_| d.skip_inner()))
            }
            MAP => {
                let n = self.read_map_header()?;
                self.nested(|d| (0..2 * n).try_for_each(|_| d.skip_inner()))
            }
            NIL | STRING | LIST => self.nested(Self::skip_list),
            BINARY => self.read_binary_slice().map(drop),
            NEW_PID | PID | NEW_PORT | V4_PORT | PORT | NEWER_REFERENCE | NEW_REFERENCE
            | REFERENCE | EXPORT | NEW_FUN => {
                // Small, bounded terms: atoms inside are read without interning.
                let mut probe = self.clone();
                probe.opts.safe = false;
                let tag = probe.peek_tag()?;
                if tag == NEW_FUN {
                    probe.pos += 1;
                    let size = probe.u32()? as usize;
                    if size < 4 {
                        return Err(self.invalid("bad fun size", at));
                    }
                    self.pos += 1;
                    self.take(size)?;
                    return Ok(());
                }
                self.skip_fixed(tag)
            }
            _ => self.read_term().map(drop),
        }
    }

    fn skip_list(&mut self) -> Result<(), DecodeError> {
        loop {
            match self.read_list()? {
                ListHeader::Nil => break,
                ListHeader::Bytes(n) => {
                    self.take(n)?;
                    break;
                }
                ListHeader::Cons(n) => {
                    for _ in 0..n {
                        self.skip_inner()?;
                    }
                    if !matches!(self.peek_tag()?, NIL | STRING | LIST) {
                        self.skip_inner()?;
                        break;
                    }
                }
            }
        }
        Ok(())
    }

    fn skip_fixed(&mut self, tag: u8) -> Result<(), DecodeError> {
        self.pos += 1;
        match tag {
            EXPORT => {
                self.read_atom_name()?;
                self.read_atom_name()?;
                self.read_i64().map(drop)
            }
            NEW_PID | PID => {
                self.read_atom_name()?;
                self.take(if tag == NEW_PID { 12 } else { 9 }).map(drop)
            }
            NEW_PORT | V4_PORT | PORT => {
                self.read_atom_name()?;
                let n = match tag {
                    V4_PORT => 12,
                    NEW_PORT => 8,
                    _ => 5,
                };
                self.take(n).map(drop)
            }
            REFERENCE => {
                self.read_atom_name()?;
                self.take(5).map(drop)
            }
            _ => {
                let len = self.u16()? as usize;
                self.read_atom_name()?;
                let creation = if tag == NEWER_REFERENCE { 4 } else { 1 };
                self.take(creation + 4 * len).map(drop)
            }
        }
    }
}

/// What a scalar tag holds, for error messages.
fn tag_kind(tag: u8) -> &'static str {
    match tag {
        NEW_PID | PID => "pid",
        NEW_PORT | V4_PORT | PORT => "port",
        NEWER_REFERENCE | NEW_REFERENCE | REFERENCE => "reference",
        EXPORT | NEW_FUN => "fun",
        _ => "term",
    }
}

/// `true` when two pairs share a key.
fn has_duplicate_keys(entries: &[(Term, Term)], all_atoms: bool) -> bool {
    let n = entries.len();
    if n < 2 {
        return false;
    }
    if n <= 8 {
        return (0..n).any(|i| (i + 1..n).any(|j| entries[i].0 == entries[j].0));
    }
    if all_atoms {
        let mut ids: Vec<u32> = entries
            .iter()
            .map(|(k, _)| k.as_atom().map_or(0, Atom::index))
            .collect();
        ids.sort_unstable();
        return ids.windows(2).any(|w| w[0] == w[1]);
    }
    let mut seen = rustc_hash::FxHashSet::default();
    seen.reserve(n);
    !entries.iter().all(|(k, _)| seen.insert(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_length_in_small_input_is_an_error_not_an_allocation() {
        // LIST_EXT claiming 4 billion elements in 10 bytes.
        let input = [131, 108, 0xFF, 0xFF, 0xFF, 0xFF, 106, 106, 106, 106];
        let e = decode(&input).unwrap_err();
        assert!(matches!(e.kind(), DecodeErrorKind::Invalid { .. }), "{e}");
        let input = [131, 109, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3];
        assert!(decode(&input).is_err());
        let input = [131, 116, 0xFF, 0xFF, 0xFF, 0xFF, 97, 1];
        assert!(decode(&input).is_err());
    }

    /// Atoms seen lately are found by their raw bytes: a Latin-1 name whose
    /// bytes spell a cached UTF-8 name is still its own atom, and a cached
    /// name is read the same in every encoding and in safe mode.
    #[test]
    fn recently_seen_atoms_found_by_their_bytes_keep_latin1_and_utf8_apart() {
        // 'é' in UTF-8 is C3 A9; the same two bytes in Latin-1 are "Ã©".
        let utf8 = [131, SMALL_ATOM_UTF8, 2, 0xC3, 0xA9];
        let latin1 = [131, ATOM, 0, 2, 0xC3, 0xA9];
        for _ in 0..3 {
            assert_eq!(decode(&utf8).unwrap(), Term::atom("é"));
            assert_eq!(decode(&latin1).unwrap(), Term::atom("Ã©"));
        }
        let name = "recent_atom_probe_q7";
        let forms: Vec<Vec<u8>> = vec![
            [
                &[131, SMALL_ATOM_UTF8, name.len() as u8][..],
                name.as_bytes(),
            ]
            .concat(),
            [&[131, ATOM_UTF8, 0, name.len() as u8][..], name.as_bytes()].concat(),
            [&[131, SMALL_ATOM, name.len() as u8][..], name.as_bytes()].concat(),
            [&[131, ATOM, 0, name.len() as u8][..], name.as_bytes()].concat(),
        ];
        let safe = DecodeOptions::new().safe(true);
        assert!(safe.decode(&forms[0]).is_err(), "not an atom yet");
        for f in &forms {
            for _ in 0..2 {
                assert_eq!(decode(f).unwrap(), Term::atom(name));
                assert_eq!(safe.decode(f).unwrap(), Term::atom(name));
            }
        }
        // A name cut short is an error, not a cached atom's prefix.
        let short = [131, SMALL_ATOM_UTF8, name.len() as u8 + 1, b'r'];
        assert!(decode(&short).is_err());
        let mut longer = forms[0].clone();
        longer[2] -= 1;
        assert_eq!(
            decode(&longer[..longer.len() - 1]).unwrap(),
            Term::atom(&name[..name.len() - 1])
        );
    }

    #[test]
    fn deep_nesting_is_refused() {
        let mut input = vec![131];
        for _ in 0..10_000 {
            input.extend_from_slice(&[104, 1]);
        }
        input.push(106);
        let e = decode(&input).unwrap_err();
        assert_eq!(
            e,
            DecodeError::from(DecodeErrorKind::TooDeep {
                limit: DEFAULT_MAX_DEPTH
            })
        );
        let ok = DecodeOptions::new().max_depth(20_000);
        // Within a larger limit it decodes (drop recursion is fine at this depth
        // on the test thread's stack).
        std::thread::Builder::new()
            .stack_size(64 << 20)
            .spawn(move || assert!(ok.decode(&input).is_ok()))
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn compressed_size_beyond_zlib_ratio_is_refused() {
        // Claims 16 MiB from 4 bytes of zlib data: refused before allocating.
        let input = [131, 80, 0x01, 0x00, 0x00, 0x00, 0x78, 0x9C, 0x03, 0x00];
        let e = decode(&input).unwrap_err();
        assert!(
            matches!(e.kind(), DecodeErrorKind::BadCompression { .. }),
            "{e}"
        );
        // Over the configured limit: refused whatever the data.
        let input = [131, 80, 0x7F, 0xFF, 0xFF, 0xFF, 0x78, 0x9C, 0x03, 0x00];
        let e = decode(&input).unwrap_err();
        assert!(matches!(e.kind(), DecodeErrorKind::TooLarge { .. }), "{e}");
    }

    #[test]
    fn string_ext_decodes_as_a_list_of_bytes() {
        let t = decode(&[131, 107, 0, 2, b'h', b'i']).unwrap();
        assert_eq!(t, Term::charlist("hi"));
    }

    #[test]
    fn list_tail_that_is_a_list_is_joined() {
        // [1 | [2]] written as LIST(1, [1], tail = LIST(1, [2], NIL))
        let t = decode(&[131, 108, 0, 0, 0, 1, 97, 1, 108, 0, 0, 0, 1, 97, 2, 106]).unwrap();
        assert_eq!(t, Term::list([1.into(), 2.into()]));
    }

    #[test]
    fn duplicate_map_keys_are_refused() {
        let input = [131, 116, 0, 0, 0, 2, 97, 1, 97, 2, 97, 1, 97, 3];
        let e = decode(&input).unwrap_err();
        assert!(matches!(e.kind(), DecodeErrorKind::Invalid { .. }), "{e}");
    }

    #[test]
    fn trailing_bytes_are_reported() {
        assert_eq!(
            decode(&[131, 106, 0]).unwrap_err(),
            DecodeError::from(DecodeErrorKind::TrailingBytes { count: 1 })
        );
    }

    #[test]
    fn skip_does_not_create_atoms() {
        let name = "skipped_atom_never_interned_k7";
        let mut input = vec![104, 1, 119, name.len() as u8];
        input.extend_from_slice(name.as_bytes());
        let mut d = Decoder::new(&input, &DecodeOptions::new());
        d.skip_term().unwrap();
        assert_eq!(d.remaining(), 0);
        assert_eq!(Atom::existing(name), None);
    }

    #[test]
    fn mismatch_renders_a_bounded_prefix_of_huge_terms() {
        // A 1 MiB binary where an integer was expected: the message shows a
        // prefix, not a megabyte.
        let mut input = vec![109, 0, 0x10, 0, 0];
        input.extend(std::iter::repeat_n(b'a', 1 << 20));
        let d = Decoder::new(&input, &DecodeOptions::new());
        let DecodeErrorKind::Mismatch(e) = d.mismatch("integer", 0).into_kind() else {
            panic!("not a mismatch")
        };
        assert!(e.found().len() < 300, "{}", e.found().len());
        assert!(e.found().starts_with("<<\"aaaa"), "{}", e.found());
        // A bignum of 100,000 bytes is described, not printed in decimal.
        let mut big = vec![111, 0, 1, 0x86, 0xA0, 0];
        big.extend(std::iter::repeat_n(0xFFu8, 100_000));
        let d = Decoder::new(&big, &DecodeOptions::new());
        let DecodeErrorKind::Mismatch(e) = d.mismatch("atom", 0).into_kind() else {
            panic!("not a mismatch")
        };
        assert_eq!(e.found(), "<an integer of 100000 bytes>");
    }

    #[test]
    fn mismatch_rendering_creates_no_atoms() {
        let name = "atom_only_in_an_error_message_q3";
        let mut input = vec![104, 2, 97, 1, 119, name.len() as u8];
        input.extend_from_slice(name.as_bytes());
        let d = Decoder::new(&input, &DecodeOptions::new());
        let DecodeErrorKind::Mismatch(e) = d.mismatch("integer", 0).into_kind() else {
            panic!("not a mismatch")
        };
        assert_eq!(e.found(), format!("{{1,{name}}}"));
        assert_eq!(Atom::existing(name), None);
    }

    #[test]
    fn large_binaries_share_the_input_buffer() {
        let mut v = vec![131, 109, 0, 0, 1, 0];
        v.extend(std::iter::repeat_n(7u8, 256));
        let input = Bytes::from(v);
        let t = decode_bytes(&input).unwrap();
        let b = t.as_binary().unwrap();
        assert_eq!(b.as_ptr(), input[6..].as_ptr());
    }

    #[test]
    fn binaries_inside_tuples_and_lists_are_copied_when_short_shared_when_long_and_cut_ones_fail() {
        // {<<"hi">>, [<<256 sevens>>]}
        let mut v = vec![131, 104, 2, 109, 0, 0, 0, 2, b'h', b'i', 108, 0, 0, 0, 1];
        v.extend([109, 0, 0, 1, 0]);
        let long_at = v.len();
        v.extend(std::iter::repeat_n(7u8, 256));
        v.push(106);
        let input = Bytes::from(v.clone());
        let long = Term::binary(vec![7u8; 256]);
        let want = Term::tuple([Term::binary(&b"hi"[..]), Term::list([long])]);
        assert_eq!(decode(&v).unwrap(), want);
        let shared = decode_bytes(&input).unwrap();
        assert_eq!(shared, want);
        let Term::Tuple(elems) = &shared else {
            panic!("not a tuple")
        };
        let Term::List(items) = &elems[1] else {
            panic!("not a list")
        };
        let b = items[0].as_binary().unwrap();
        assert_eq!(b.as_ptr(), input[long_at..].as_ptr());
        let short = elems[0].as_binary().unwrap();
        assert!(!input.as_ptr_range().contains(&short.as_ptr()));
        // A binary element whose bytes run past the end.
        for cut in [9, long_at + 100] {
            match decode(&v[..cut]).map_err(DecodeError::into_kind) {
                Err(DecodeErrorKind::UnexpectedEnd { .. }) => {}
                other => panic!("cut at {cut}: {other:?}"),
            }
        }
    }
}
