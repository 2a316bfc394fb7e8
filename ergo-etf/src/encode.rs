//! Encoding to the external term format.
//!
//! [`encode`] writes what `term_to_binary/1` writes, byte for byte: the
//! smallest integer tag that holds a value, `STRING_EXT` for short lists of
//! bytes, `NEW_FLOAT_EXT`, `NEW_PID_EXT`, `NEWER_REFERENCE_EXT`, and atoms in
//! Latin-1 `ATOM_EXT` where they can be (OTP 25's default, `minor_version` 1;
//! never `SMALL_ATOM_EXT`, which `term_to_binary` does not write) or always in
//! UTF-8 ([`EncodeOptions::minor_version`] 2, OTP 26's default).
//!
//! [`Encoder`] writes terms one piece at a time; the [`Encode`] trait and
//! `#[derive(Term)]` use it to go from a Rust value straight to bytes. With
//! [`encode_vectored`], large binaries are not copied at all: the output is a
//! list of buffers that refer to them, ready for a vectored socket write.

use bytes::Bytes;
use num_bigint::{BigInt, Sign};

use crate::atom::{Atom, is_latin1};
use crate::tags::*;
use crate::term::{Fun, Pid, Port, Ref, Term};

/// Settings for encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodeOptions {
    utf8_atoms: bool,
    compression: Option<u32>,
}

impl Default for EncodeOptions {
    fn default() -> Self {
        EncodeOptions::new()
    }
}

impl EncodeOptions {
    /// `term_to_binary/1` as OTP 25 and earlier do it (`minor_version` 1):
    /// Latin-1 atoms (`ATOM_EXT`) where possible, no compression.
    pub const fn new() -> EncodeOptions {
        EncodeOptions {
            utf8_atoms: false,
            compression: None,
        }
    }

    /// `{minor_version, V}`: 1 writes atoms in Latin-1 (`ATOM_EXT`, with its
    /// two-byte length) where they can be, and in UTF-8 otherwise; 2
    /// (OTP 26's default) writes every atom in UTF-8. Other values are taken
    /// as the nearest of the two.
    pub const fn minor_version(mut self, v: u8) -> EncodeOptions {
        self.utf8_atoms = v >= 2;
        self
    }

    /// `{compressed, Level}` (0–9). As in Erlang, the compressed form is
    /// kept only when it is smaller.
    pub const fn compressed(mut self, level: u32) -> EncodeOptions {
        self.compression = Some(if level > 9 { 9 } else { level });
        self
    }

    /// Encodes `value` with the version byte, as `term_to_binary/2`.
    pub fn encode<T: Encode + ?Sized>(&self, value: &T) -> Vec<u8> {
        let mut plain = Vec::with_capacity(64);
        plain.push(VERSION);
        value.encode(&mut Encoder::new(&mut plain, self));
        match self.compression {
            Some(level) => compress(plain, level),
            None => plain,
        }
    }
}

fn compress(plain: Vec<u8>, level: u32) -> Vec<u8> {
    use std::io::Write;
    let body = &plain[1..];
    let mut out = Vec::with_capacity(body.len() / 2 + 16);
    out.extend_from_slice(&[VERSION, COMPRESSED]);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    let mut z = flate2::write::ZlibEncoder::new(out, flate2::Compression::new(level));
    if z.write_all(body).is_err() {
        return plain;
    }
    match z.finish() {
        Ok(out) if out.len() < plain.len() => out,
        _ => plain,
    }
}

/// Encodes `value` as `term_to_binary/1` does (OTP 25 defaults).
///
/// # Examples
///
/// ```
/// use ergo_etf::{encode, Term};
/// let bytes = encode(&Term::tuple([Term::atom("ok"), Term::Int(42)]));
/// assert_eq!(bytes, [131, 104, 2, 100, 0, 2, b'o', b'k', 97, 42]);
/// ```
pub fn encode<T: Encode + ?Sized>(value: &T) -> Vec<u8> {
    EncodeOptions::new().encode(value)
}

/// Encodes `value` with the version byte, appending to `out`.
pub fn encode_into<T: Encode + ?Sized>(value: &T, out: &mut Vec<u8>) {
    out.push(VERSION);
    value.encode(&mut Encoder::new(out, &EncodeOptions::new()));
}

/// Encodes `value` with the version byte into buffers: binaries of at least
/// `share_min` bytes are referred to, not copied. The concatenation of the
/// buffers is exactly [`encode`]'s output.
///
/// # Examples
///
/// ```
/// use ergo_etf::{encode, encode_vectored, Term};
/// let big = Term::Binary(vec![7u8; 100_000].into());
/// let parts = encode_vectored(&big, 4096);
/// assert_eq!(parts.concat(), encode(&big));
/// ```
pub fn encode_vectored<T: Encode + ?Sized>(value: &T, share_min: usize) -> Vec<Bytes> {
    let mut buf = vec![VERSION];
    let mut holes = Vec::new();
    value.encode(
        &mut Encoder::new(&mut buf, &EncodeOptions::new()).share_binaries(share_min, &mut holes),
    );
    let buf = Bytes::from(buf);
    let mut chunks = Vec::with_capacity(2 * holes.len() + 1);
    let mut at = 0;
    for (offset, shared) in holes {
        if offset > at {
            chunks.push(buf.slice(at..offset));
        }
        at = offset;
        chunks.push(shared);
    }
    if at < buf.len() {
        chunks.push(buf.slice(at..));
    }
    chunks
}

/// Gives cache indices for atoms: the distribution layer implements it to
/// write `ATOM_CACHE_REF`s in place of atom text.
pub trait AtomCacheWriter {
    /// The cache reference for `atom` in the frame being written, or `None`
    /// to write the atom in full.
    fn reference(&mut self, atom: Atom) -> Option<u8>;
}

/// A value that can be written straight to external-format bytes.
///
/// `Encode` never fails: every value it can be given has an encoding. It
/// panics only for lengths the format cannot express (over 4 GiB).
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be encoded as an Erlang term",
    note = "derive it with `#[derive(Term)]`, or implement `Encode` by hand"
)]
pub trait Encode {
    /// Writes the value.
    fn encode(&self, enc: &mut Encoder<'_>);

    /// The value as a byte, if it is an integer from 0 to 255: lists of such
    /// values are written as `STRING_EXT`, as Erlang writes them.
    #[doc(hidden)]
    #[inline]
    fn byte_value(&self) -> Option<u8> {
        None
    }
}

/// Writes terms into a caller's buffer, one piece at a time.
///
/// # Examples
///
/// ```
/// use ergo_etf::{EncodeOptions, Encoder};
/// let mut out = Vec::new();
/// let mut enc = Encoder::new(&mut out, &EncodeOptions::new());
/// enc.write_tuple_header(2);
/// enc.write_atom_str("ok");
/// enc.write_i64(7);
/// assert_eq!(out, [104, 2, 100, 0, 2, b'o', b'k', 97, 7]);
/// ```
pub struct Encoder<'a> {
    buf: &'a mut Vec<u8>,
    utf8_atoms: bool,
    cache: Option<&'a mut dyn AtomCacheWriter>,
    /// Binaries referred to instead of copied: where each belongs in `buf`.
    holes: Option<&'a mut Vec<(usize, Bytes)>>,
    share_min: usize,
    depth: usize,
}

impl std::fmt::Debug for Encoder<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("len", &self.buf.len())
            .field("utf8_atoms", &self.utf8_atoms)
            .field("atom_cache", &self.cache.is_some())
            .finish()
    }
}

#[inline]
fn len32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or_else(|_| {
        panic!("length {n} cannot be expressed in the external term format (over 4 GiB)")
    })
}

impl<'a> Encoder<'a> {
    /// An encoder appending to `buf` with `opts` (it writes no version
    /// byte; compression is applied by [`EncodeOptions::encode`]).
    pub fn new(buf: &'a mut Vec<u8>, opts: &EncodeOptions) -> Encoder<'a> {
        Encoder {
            buf,
            utf8_atoms: opts.utf8_atoms,
            cache: None,
            holes: None,
            share_min: usize::MAX,
            depth: 0,
        }
    }

    /// Writes atoms as cache references where `cache` gives one; atoms are
    /// then always UTF-8 when written in full, as distribution requires.
    pub fn with_atom_cache(mut self, cache: &'a mut dyn AtomCacheWriter) -> Encoder<'a> {
        self.cache = Some(cache);
        self.utf8_atoms = true;
        self
    }

    /// Refers to binaries of at least `min` bytes (those written with
    /// [`write_bytes`](Self::write_bytes)) instead of copying them: each is
    /// pushed on `holes` with the offset in the buffer where its bytes
    /// belong, and the buffer holds everything else. Writing the buffer with
    /// every binary put in at its offset gives the plain encoding; this is
    /// for vectored writes that send a large binary without copying it.
    pub fn share_binaries(mut self, min: usize, holes: &'a mut Vec<(usize, Bytes)>) -> Encoder<'a> {
        self.holes = Some(holes);
        self.share_min = min.max(1);
        self
    }

    /// The buffer's bytes so far (including any it held before).
    pub fn as_slice(&self) -> &[u8] {
        self.buf
    }

    /// Appends raw bytes (already in the external format).
    #[inline]
    pub fn write_raw(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    // ------------------------------------------------------------ atoms

    /// Writes an atom.
    #[inline]
    pub fn write_atom(&mut self, atom: Atom) {
        if let Some(cache) = self.cache.as_deref_mut()
            && let Some(index) = cache.reference(atom)
        {
            self.buf.extend_from_slice(&[ATOM_CACHE_REF, index]);
            return;
        }
        // The table keeps both encodings of every atom ready.
        self.buf.extend_from_slice(atom.ext_bytes(self.utf8_atoms));
    }

    /// Writes an atom named `name` without interning it (unless an atom cache
    /// is in use).
    ///
    /// # Panics
    ///
    /// When `name` has more than 255 characters.
    #[inline]
    pub fn write_atom_str(&mut self, name: &str) {
        if self.cache.is_some() {
            self.write_atom(Atom::new(name));
        } else {
            assert!(
                name.len() <= 255 || name.chars().count() <= 255,
                "atom {name:?} has more than 255 characters"
            );
            self.write_atom_text(name);
        }
    }

    #[inline]
    fn write_atom_text(&mut self, name: &str) {
        let b = name.as_bytes();
        // `term_to_binary/1,2` writes Latin-1 atoms as ATOM_EXT, with a
        // two-byte length, even when one byte would do: SMALL_ATOM_EXT is
        // only for distribution peers that ask for it, and those take UTF-8.
        if !self.utf8_atoms && b.is_ascii() {
            // Latin-1 and ASCII agree; an ASCII atom has at most 255 bytes.
            self.buf.push(ATOM);
            self.buf.extend_from_slice(&(b.len() as u16).to_be_bytes());
            self.buf.extend_from_slice(b);
        } else if !self.utf8_atoms && is_latin1(name) {
            let start = self.buf.len();
            self.buf.extend_from_slice(&[ATOM, 0, 0]);
            self.buf.extend(name.chars().map(|c| c as u8));
            let len = (self.buf.len() - start - 3) as u16;
            self.buf[start + 1..start + 3].copy_from_slice(&len.to_be_bytes());
        } else if b.len() < 256 {
            self.buf.push(SMALL_ATOM_UTF8);
            self.buf.push(b.len() as u8);
            self.buf.extend_from_slice(b);
        } else {
            self.buf.push(ATOM_UTF8);
            self.buf.extend_from_slice(&(b.len() as u16).to_be_bytes());
            self.buf.extend_from_slice(b);
        }
    }

    /// Writes an atom whose two encodings were worked out in advance
    /// (`#[derive(Term)]` does this for every name it writes): `latin1` is
    /// the `term_to_binary/1` form, `utf8` the `minor_version` 2 one. With an
    /// atom cache, `name` goes through the cache instead.
    #[doc(hidden)]
    #[inline]
    pub fn write_atom_prebuilt(&mut self, name: &str, latin1: &[u8], utf8: &[u8]) {
        if self.cache.is_some() {
            self.write_atom(Atom::new(name));
        } else if self.utf8_atoms {
            self.buf.extend_from_slice(utf8);
        } else {
            self.buf.extend_from_slice(latin1);
        }
    }

    /// Writes `true` or `false`.
    #[inline]
    pub fn write_bool(&mut self, v: bool) {
        match (v, self.cache.is_some()) {
            (true, false) => self.write_atom_prebuilt("true", b"d\x00\x04true", b"w\x04true"),
            (false, false) => self.write_atom_prebuilt("false", b"d\x00\x05false", b"w\x05false"),
            (v, true) => self.write_atom(if v { Atom::TRUE } else { Atom::FALSE }),
        }
    }

    // ------------------------------------------------------------ numbers

    /// Writes an integer in the smallest form Erlang uses for it.
    #[inline]
    pub fn write_i64(&mut self, v: i64) {
        if (0..=255).contains(&v) {
            self.buf.extend_from_slice(&[SMALL_INTEGER, v as u8]);
        } else if let Ok(v) = i32::try_from(v) {
            let b = v.to_be_bytes();
            self.buf
                .extend_from_slice(&[INTEGER, b[0], b[1], b[2], b[3]]);
        } else {
            self.write_big_parts(v < 0, v.unsigned_abs() as u128);
        }
    }

    /// Makes room for at least `additional` more bytes.
    #[doc(hidden)]
    #[inline]
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Writes a non-negative integer.
    #[inline]
    pub fn write_u64(&mut self, v: u64) {
        match i64::try_from(v) {
            Ok(i) => self.write_i64(i),
            Err(_) => self.write_big_parts(false, v as u128),
        }
    }

    /// Writes a 128-bit integer.
    pub fn write_i128(&mut self, v: i128) {
        match i64::try_from(v) {
            Ok(i) => self.write_i64(i),
            Err(_) => self.write_big_parts(v < 0, v.unsigned_abs()),
        }
    }

    /// Writes an unsigned 128-bit integer.
    pub fn write_u128(&mut self, v: u128) {
        match i64::try_from(v) {
            Ok(i) => self.write_i64(i),
            Err(_) => self.write_big_parts(false, v),
        }
    }

    fn write_big_parts(&mut self, negative: bool, magnitude: u128) {
        let bytes = magnitude.to_le_bytes();
        let n = 16 - (magnitude.leading_zeros() as usize / 8);
        self.buf
            .extend_from_slice(&[SMALL_BIG, n as u8, negative as u8]);
        self.buf.extend_from_slice(&bytes[..n]);
    }

    /// Writes an integer of any size.
    pub fn write_bigint(&mut self, v: &BigInt) {
        if let Ok(i) = i64::try_from(v) {
            return self.write_i64(i);
        }
        let (sign, digits) = v.to_bytes_le();
        let negative = sign == Sign::Minus;
        if digits.len() < 256 {
            self.buf
                .extend_from_slice(&[SMALL_BIG, digits.len() as u8, negative as u8]);
        } else {
            self.buf.push(LARGE_BIG);
            self.buf
                .extend_from_slice(&len32(digits.len()).to_be_bytes());
            self.buf.push(negative as u8);
        }
        self.buf.extend_from_slice(&digits);
    }

    /// Writes a float (`NEW_FLOAT_EXT`).
    #[inline]
    pub fn write_f64(&mut self, v: f64) {
        self.buf.push(NEW_FLOAT);
        self.buf.extend_from_slice(&v.to_bits().to_be_bytes());
    }

    // ------------------------------------------------------------ binaries

    /// Writes a binary, copying it.
    #[inline]
    pub fn write_binary(&mut self, bytes: &[u8]) {
        self.buf.push(BINARY);
        self.buf
            .extend_from_slice(&len32(bytes.len()).to_be_bytes());
        self.buf.extend_from_slice(bytes);
    }

    /// Writes a binary; in vectored mode a large one is referred to, not
    /// copied.
    pub fn write_bytes(&mut self, bytes: &Bytes) {
        if bytes.len() >= self.share_min
            && let Some(holes) = self.holes.as_deref_mut()
        {
            self.buf.push(BINARY);
            self.buf
                .extend_from_slice(&len32(bytes.len()).to_be_bytes());
            holes.push((self.buf.len(), bytes.clone()));
            return;
        }
        self.write_binary(bytes);
    }

    /// Writes a bitstring of `bytes` whose last byte holds `bits` bits.
    pub fn write_bit_binary(&mut self, bytes: &[u8], bits: u8) {
        self.buf.push(BIT_BINARY);
        self.buf
            .extend_from_slice(&len32(bytes.len()).to_be_bytes());
        self.buf.push(bits);
        self.buf.extend_from_slice(bytes);
    }

    // ------------------------------------------------------------ containers

    /// Writes a tuple header; `arity` elements must follow.
    #[inline]
    pub fn write_tuple_header(&mut self, arity: usize) {
        if arity < 256 {
            self.buf.extend_from_slice(&[SMALL_TUPLE, arity as u8]);
        } else {
            self.buf.push(LARGE_TUPLE);
            self.buf.extend_from_slice(&len32(arity).to_be_bytes());
        }
    }

    /// Writes a list header for `len` elements; the elements and then a tail
    /// ([`Encoder::write_nil`] for a proper list) must follow. A `len` of 0
    /// writes `[]` itself, with nothing to follow.
    #[inline]
    pub fn write_list_header(&mut self, len: usize) {
        if len == 0 {
            self.buf.push(NIL);
        } else {
            self.buf.push(LIST);
            self.buf.extend_from_slice(&len32(len).to_be_bytes());
        }
    }

    /// Writes `[]`.
    #[inline]
    pub fn write_nil(&mut self) {
        self.buf.push(NIL);
    }

    /// Writes a list of bytes (a Latin-1 charlist) as Erlang does:
    /// `STRING_EXT` up to 65,535 bytes, a list of integers beyond.
    pub fn write_byte_list(&mut self, bytes: &[u8]) {
        if bytes.is_empty() {
            self.write_nil();
        } else if bytes.len() <= u16::MAX as usize {
            self.buf.push(STRING);
            self.buf
                .extend_from_slice(&(bytes.len() as u16).to_be_bytes());
            self.buf.extend_from_slice(bytes);
        } else {
            self.write_list_header(bytes.len());
            for &b in bytes {
                self.buf.extend_from_slice(&[SMALL_INTEGER, b]);
            }
            self.write_nil();
        }
    }

    /// Writes `len` (at most 65,535) bytes as a `STRING_EXT`.
    #[doc(hidden)]
    pub fn write_byte_list_from(&mut self, bytes: impl Iterator<Item = u8>, len: usize) {
        debug_assert!(len <= u16::MAX as usize);
        self.buf.push(STRING);
        self.buf.extend_from_slice(&(len as u16).to_be_bytes());
        self.buf.extend(bytes);
    }

    /// Writes a map header; `len` key-value pairs must follow.
    #[inline]
    pub fn write_map_header(&mut self, len: usize) {
        self.buf.push(MAP);
        self.buf.extend_from_slice(&len32(len).to_be_bytes());
    }

    // ------------------------------------------------------------ ids

    /// Writes a pid (`NEW_PID_EXT`).
    pub fn write_pid(&mut self, p: &Pid) {
        self.buf.push(NEW_PID);
        self.write_atom(p.node);
        let mut words = [0u8; 12];
        words[..4].copy_from_slice(&p.id.to_be_bytes());
        words[4..8].copy_from_slice(&p.serial.to_be_bytes());
        words[8..].copy_from_slice(&p.creation.to_be_bytes());
        self.buf.extend_from_slice(&words);
    }

    /// Writes a port (`NEW_PORT_EXT`, or `V4_PORT_EXT` for ids over 32 bits).
    pub fn write_port(&mut self, p: &Port) {
        match u32::try_from(p.id) {
            Ok(id) => {
                self.buf.push(NEW_PORT);
                self.write_atom(p.node);
                self.buf.extend_from_slice(&id.to_be_bytes());
            }
            Err(_) => {
                self.buf.push(V4_PORT);
                self.write_atom(p.node);
                self.buf.extend_from_slice(&p.id.to_be_bytes());
            }
        }
        self.buf.extend_from_slice(&p.creation.to_be_bytes());
    }

    /// Writes a reference (`NEWER_REFERENCE_EXT`).
    pub fn write_ref(&mut self, r: &Ref) {
        self.buf.push(NEWER_REFERENCE);
        self.buf
            .extend_from_slice(&(r.ids().len() as u16).to_be_bytes());
        self.write_atom(r.node);
        // The creation and up to five id words, written in one step.
        let mut words = [0u8; 24];
        words[..4].copy_from_slice(&r.creation.to_be_bytes());
        for (w, id) in words[4..].chunks_exact_mut(4).zip(r.ids()) {
            w.copy_from_slice(&id.to_be_bytes());
        }
        self.buf.extend_from_slice(&words[..4 + 4 * r.ids().len()]);
    }

    fn write_fun(&mut self, f: &Fun) {
        match f {
            Fun::Export {
                module,
                function,
                arity,
            } => {
                self.buf.push(EXPORT);
                self.write_atom(*module);
                self.write_atom(*function);
                self.buf.extend_from_slice(&[SMALL_INTEGER, *arity]);
            }
            Fun::Local(l) => {
                self.buf.push(NEW_FUN);
                let size_at = self.buf.len();
                self.buf.extend_from_slice(&[0; 4]);
                self.buf.push(l.arity);
                self.buf.extend_from_slice(&l.uniq);
                self.buf.extend_from_slice(&l.index.to_be_bytes());
                self.buf
                    .extend_from_slice(&len32(l.free.len()).to_be_bytes());
                self.write_atom(l.module);
                self.write_term(&l.old_index);
                self.write_term(&l.old_uniq);
                self.write_term(&l.pid);
                for t in &l.free {
                    self.write_term(t);
                }
                // The size counts itself and everything after the tag; it is
                // only right when no buffer was split off in between.
                let size = len32(self.buf.len() - size_at);
                self.buf[size_at..size_at + 4].copy_from_slice(&size.to_be_bytes());
            }
        }
    }

    /// Writes any term.
    pub fn write_term(&mut self, t: &Term) {
        match t {
            // Terms that hold no others are written straight away.
            Term::Int(i) => self.write_i64(*i),
            Term::Atom(a) => self.write_atom(*a),
            Term::Binary(b) => self.write_bytes(b),
            Term::Float(f) => self.write_f64(*f),
            Term::Pid(p) => self.write_pid(p),
            Term::Ref(r) => self.write_ref(r),
            _ => {
                // Containers check the stack every few levels, so that deep
                // terms never overflow it and shallow ones do not pay for it.
                self.depth += 1;
                if self.depth.is_multiple_of(crate::decode::STACK_CHECK_EVERY) {
                    stacker::maybe_grow(
                        crate::decode::STACK_RED_ZONE,
                        crate::decode::STACK_GROW,
                        || self.write_term_here(t),
                    );
                } else {
                    self.write_term_here(t);
                }
                self.depth -= 1;
            }
        }
    }

    fn write_term_here(&mut self, t: &Term) {
        match t {
            Term::Int(i) => self.write_i64(*i),
            Term::BigInt(b) => self.write_bigint(b),
            Term::Float(f) => self.write_f64(*f),
            Term::Atom(a) => self.write_atom(*a),
            Term::Binary(b) => self.write_bytes(b),
            Term::BitBinary(b) => self.write_bit_binary(b.bytes(), b.tail_bits()),
            Term::Pid(p) => self.write_pid(p),
            Term::Port(p) => self.write_port(p),
            Term::Ref(r) => self.write_ref(r),
            Term::Fun(f) => {
                // Keep a fun's bytes in one buffer so its size field holds.
                let holes = self.holes.take();
                self.write_fun(f);
                self.holes = holes;
            }
            Term::Tuple(v) => {
                self.write_tuple_header(v.len());
                for e in v {
                    self.write_term(e);
                }
            }
            Term::List(v) => {
                if v.is_empty() {
                    self.write_nil();
                } else if v.len() <= u16::MAX as usize
                    && v.iter().all(|e| matches!(e, Term::Int(0..=255)))
                {
                    self.buf.push(STRING);
                    self.buf.extend_from_slice(&(v.len() as u16).to_be_bytes());
                    self.buf.extend(v.iter().map(|e| match e {
                        Term::Int(b) => *b as u8,
                        _ => 0,
                    }));
                } else {
                    self.write_list_header(v.len());
                    // Integers are written inline, with room reserved for the
                    // common case of 32-bit ones up front.
                    self.buf.reserve(v.len() * 5 + 1);
                    for e in v {
                        match e {
                            Term::Int(i @ 0..=255) => {
                                self.buf.extend_from_slice(&[SMALL_INTEGER, *i as u8]);
                            }
                            Term::Int(i) if i32::try_from(*i).is_ok() => {
                                let b = (*i as i32).to_be_bytes();
                                self.buf
                                    .extend_from_slice(&[INTEGER, b[0], b[1], b[2], b[3]]);
                            }
                            e => self.write_term(e),
                        }
                    }
                    self.write_nil();
                }
            }
            Term::ImproperList(v, tail) => {
                self.write_list_header(v.len());
                for e in v {
                    self.write_term(e);
                }
                self.write_term(tail);
            }
            Term::Map(m) => {
                self.write_map_header(m.len());
                for (k, v) in m.iter() {
                    self.write_term(k);
                    self.write_term(v);
                }
            }
        }
    }
}

impl Encode for Term {
    fn encode(&self, enc: &mut Encoder<'_>) {
        enc.write_term(self);
    }

    #[inline]
    fn byte_value(&self) -> Option<u8> {
        match self {
            Term::Int(i) => u8::try_from(*i).ok(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_the_smallest_tag() {
        assert_eq!(encode(&Term::Int(5)), [131, 97, 5]);
        assert_eq!(encode(&Term::Int(-1)), [131, 98, 255, 255, 255, 255]);
        assert_eq!(encode(&Term::Int(1 << 31)), [131, 110, 4, 0, 0, 0, 0, 128]);
        assert_eq!(
            encode(&Term::from(u64::MAX)),
            [131, 110, 8, 0, 255, 255, 255, 255, 255, 255, 255, 255]
        );
    }

    #[test]
    fn latin1_atoms_use_atom_ext_unless_minor_version_2() {
        // As OTP 25's term_to_binary/1: ATOM_EXT (two-byte length), not
        // SMALL_ATOM_EXT.
        let t = Term::atom("é");
        assert_eq!(encode(&t), [131, 100, 0, 1, 0xE9]);
        assert_eq!(encode(&Term::atom("ok")), [131, 100, 0, 2, b'o', b'k']);
        assert_eq!(encode(&Term::atom("")), [131, 100, 0, 0]);
        assert_eq!(
            EncodeOptions::new().minor_version(2).encode(&t),
            [131, 119, 2, 0xC3, 0xA9]
        );
        // Not Latin-1: UTF-8 either way.
        assert_eq!(encode(&Term::atom("λ")), [131, 119, 2, 0xCE, 0xBB]);
    }

    #[test]
    fn short_byte_lists_are_strings() {
        assert_eq!(encode(&Term::charlist("hi")), [131, 107, 0, 2, b'h', b'i']);
        assert_eq!(
            encode(&Term::list([Term::Int(256)])),
            [131, 108, 0, 0, 0, 1, 98, 0, 0, 1, 0, 106]
        );
    }

    #[test]
    fn compression_is_kept_only_when_smaller() {
        let small = Term::Int(1);
        assert_eq!(
            EncodeOptions::new().compressed(6).encode(&small),
            [131, 97, 1]
        );
        let big = Term::Binary(vec![0u8; 10_000].into());
        let c = EncodeOptions::new().compressed(6).encode(&big);
        assert_eq!(c[1], COMPRESSED);
        assert_eq!(crate::decode(&c).unwrap(), big);
    }

    #[test]
    fn vectored_output_shares_large_binaries() {
        let payload = Bytes::from(vec![9u8; 10_000]);
        let t = Term::tuple([Term::atom("data"), Term::Binary(payload.clone())]);
        let parts = encode_vectored(&t, 1024);
        assert!(parts.iter().any(|p| p.as_ptr() == payload.as_ptr()));
        assert_eq!(parts.concat(), encode(&t));
    }
}
