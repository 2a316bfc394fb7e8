//! [`Term`], the dynamic Erlang value, and the identifier types it holds.
//!
//! A `Term` is what `binary_to_term/1` gives in Erlang: any value at all.
//! Integers that fit in an `i64` are [`Term::Int`]; larger ones are
//! [`Term::BigInt`], so that each value has exactly one representation and
//! `==` on terms is Erlang's exact equality (`=:=`). Ordering is Erlang's term
//! order: number < atom < reference < fun < port < pid < tuple < map < nil <
//! list < bitstring.
//!
//! A map keeps its pairs in the order they were built or decoded in, so that a
//! map decoded from Erlang encodes back to the very same bytes; comparing two
//! maps ignores that order, as Erlang does.

use std::cmp::Ordering;
use std::fmt::{self, Write as _};
use std::hash::{Hash, Hasher};

use bytes::Bytes;
use num_bigint::BigInt;
use num_traits::{FromPrimitive, ToPrimitive};

use crate::atom::{Atom, write_atom};

/// A process identifier, local or remote.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Pid {
    /// The node the process lives on.
    pub node: Atom,
    /// The process number (Erlang uses 28 bits of it in practice).
    pub id: u32,
    /// The serial number, bumped when ids wrap.
    pub serial: u32,
    /// The creation of the node incarnation that made the pid.
    pub creation: u32,
}

/// Erlang's term order for pids (as OTP 25 compares them): the serial,
/// then the process number, then the node's name, then its creation. Unlike
/// references and ports, two pids of different nodes are ordered by their
/// numbers first.
impl Ord for Pid {
    fn cmp(&self, other: &Pid) -> Ordering {
        self.serial
            .cmp(&other.serial)
            .then(self.id.cmp(&other.id))
            .then(self.node.cmp(&other.node))
            .then(self.creation.cmp(&other.creation))
    }
}

impl PartialOrd for Pid {
    fn partial_cmp(&self, other: &Pid) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Pid {
    /// A pid with the given parts.
    pub const fn new(node: Atom, id: u32, serial: u32, creation: u32) -> Pid {
        Pid {
            node,
            id,
            serial,
            creation,
        }
    }
}

/// A port identifier.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Port {
    /// The node the port lives on.
    pub node: Atom,
    /// The port number (64 bits since OTP 24).
    pub id: u64,
    /// The creation of the node incarnation that made the port.
    pub creation: u32,
}

/// A reference (`make_ref()`, monitor references, aliases).
///
/// Erlang references carry up to five 32-bit words; they are stored inline.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
pub struct Ref {
    /// The node that made the reference.
    pub node: Atom,
    /// The creation of the node incarnation that made it.
    pub creation: u32,
    len: u8,
    words: [u32; 5],
}

impl Ref {
    /// The most 32-bit words a reference carries.
    pub const MAX_WORDS: usize = 5;

    /// A reference with the given id words (1 to 5 of them).
    ///
    /// Returns `None` for an empty or over-long word list.
    #[inline]
    pub fn new(node: Atom, creation: u32, ids: &[u32]) -> Option<Ref> {
        if ids.is_empty() || ids.len() > Self::MAX_WORDS {
            return None;
        }
        // Word by word: a copy of a slice of unknown length is a call.
        let mut words = [0; 5];
        for (w, id) in words.iter_mut().zip(ids) {
            *w = *id;
        }
        Some(Ref {
            node,
            creation,
            len: ids.len() as u8,
            words,
        })
    }

    /// The id words, first word first, as they stand on the wire.
    pub fn ids(&self) -> &[u32] {
        &self.words[..self.len as usize]
    }
}

/// A fun: an export (`fun lists:map/2`) or a closure from a module.
///
/// Closures cannot run outside the VM that owns their code; they are kept
/// whole so that they survive a round trip, compare and print.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub enum Fun {
    /// `fun Module:Function/Arity`.
    Export {
        /// The module.
        module: Atom,
        /// The function name.
        function: Atom,
        /// The arity.
        arity: u8,
    },
    /// A closure (`NEW_FUN_EXT`).
    Local(Box<LocalFun>),
}

/// The parts of a closure as `NEW_FUN_EXT` carries them.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct LocalFun {
    /// The arity.
    pub arity: u8,
    /// The MD5 of the module's significant parts.
    pub uniq: [u8; 16],
    /// The index in the module's fun table.
    pub index: u32,
    /// The module defining the fun.
    pub module: Atom,
    /// `OldIndex`, an integer term.
    pub old_index: Box<Term>,
    /// `OldUniq`, an integer term.
    pub old_uniq: Box<Term>,
    /// The pid that created the fun.
    pub pid: Box<Term>,
    /// The captured free variables.
    pub free: Vec<Term>,
}

/// A bitstring whose length is not a whole number of bytes.
///
/// `bits` (1 to 7) says how many high bits of the last byte belong to it; the
/// rest of that byte is always zero.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct BitBinary(Box<BitBinaryParts>);

/// The parts of a [`BitBinary`], boxed to keep [`Term`] small (bitstrings
/// are rare; every term pays for the largest variant).
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
struct BitBinaryParts {
    bytes: Bytes,
    bits: u8,
}

impl BitBinary {
    /// A bitstring of `bytes`, of which the last byte contributes its high
    /// `bits` bits. `bits` of 8 (or empty bytes) is a whole binary and gives
    /// `None`, as does `bits` of 0 or over 8: use [`Term::Binary`] for those.
    pub fn new(bytes: impl Into<Bytes>, bits: u8) -> Option<BitBinary> {
        let bytes: Bytes = bytes.into();
        if bytes.is_empty() || bits == 0 || bits >= 8 {
            return None;
        }
        let last = bytes[bytes.len() - 1];
        let mask = 0xFFu8 << (8 - bits);
        let bytes = if last & !mask != 0 {
            let mut v = bytes.to_vec();
            let n = v.len();
            v[n - 1] &= mask;
            Bytes::from(v)
        } else {
            bytes
        };
        Some(BitBinary(Box::new(BitBinaryParts { bytes, bits })))
    }

    /// The bytes, the last one partly used.
    pub fn bytes(&self) -> &Bytes {
        &self.0.bytes
    }

    /// How many bits of the last byte are used (1 to 7).
    pub fn tail_bits(&self) -> u8 {
        self.0.bits
    }

    /// The length in bits.
    pub fn bit_len(&self) -> u64 {
        (self.0.bytes.len() as u64 - 1) * 8 + self.0.bits as u64
    }
}

/// An Erlang map, kept in the order its pairs were added.
#[derive(Clone, Default)]
pub struct Map {
    entries: Vec<(Term, Term)>,
}

impl Map {
    /// An empty map.
    pub fn new() -> Map {
        Map::default()
    }

    /// An empty map with room for `n` pairs.
    pub fn with_capacity(n: usize) -> Map {
        Map {
            entries: Vec::with_capacity(n),
        }
    }

    /// A map of these pairs; a key given twice keeps its last value, as
    /// `maps:from_list/1` does.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (Term, Term)>) -> Map {
        let mut map = Map::new();
        for (k, v) in pairs {
            map.insert(k, v);
        }
        map
    }

    /// Wraps pairs that are known to have distinct keys (decoders use this
    /// after checking).
    pub(crate) fn from_unique(entries: Vec<(Term, Term)>) -> Map {
        Map { entries }
    }

    /// Sets `key` to `value`, returning the old value.
    pub fn insert(&mut self, key: Term, value: Term) -> Option<Term> {
        if let Some(slot) = self.entries.iter_mut().find(|(k, _)| *k == key) {
            return Some(std::mem::replace(&mut slot.1, value));
        }
        self.entries.push((key, value));
        None
    }

    /// The value under `key`.
    pub fn get(&self, key: &Term) -> Option<&Term> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    /// The value under the atom key `key`.
    pub fn get_atom(&self, key: Atom) -> Option<&Term> {
        self.entries
            .iter()
            .find(|(k, _)| matches!(k, Term::Atom(a) if *a == key))
            .map(|(_, v)| v)
    }

    /// Removes `key`, returning its value.
    pub fn remove(&mut self, key: &Term) -> Option<Term> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        Some(self.entries.remove(i).1)
    }

    /// How many pairs.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// `true` for `#{}`.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The pairs, in insertion order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = (&Term, &Term)> {
        self.entries.iter().map(|(k, v)| (k, v))
    }

    /// The pairs as a slice, in insertion order.
    pub fn entries(&self) -> &[(Term, Term)] {
        &self.entries
    }

    /// The pairs, consuming the map.
    pub fn into_entries(self) -> Vec<(Term, Term)> {
        self.entries
    }

    /// The pairs sorted by key in Erlang's map-key order (term order, but
    /// all integers before all floats, at any depth).
    pub fn sorted(&self) -> Vec<&(Term, Term)> {
        let mut v: Vec<_> = self.entries.iter().collect();
        v.sort_by(|a, b| cmp_map_keys(&a.0, &b.0));
        v
    }
}

impl fmt::Debug for Map {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.entries.iter().map(|(k, v)| (k, v)))
            .finish()
    }
}

impl PartialEq for Map {
    fn eq(&self, other: &Map) -> bool {
        if self.len() != other.len() {
            return false;
        }
        if self.len() <= 16 {
            return self
                .entries
                .iter()
                .all(|(k, v)| other.get(k).is_some_and(|o| o == v));
        }
        let (a, b) = (self.sorted(), other.sorted());
        a.iter()
            .zip(b.iter())
            .all(|(x, y)| x.0 == y.0 && x.1 == y.1)
    }
}

impl Eq for Map {}

impl Hash for Map {
    fn hash<H: Hasher>(&self, state: &mut H) {
        // Independent of pair order: combine each pair's own hash.
        let mut acc: u64 = 0;
        for (k, v) in &self.entries {
            let mut h = rustc_hash::FxHasher::default();
            k.hash(&mut h);
            v.hash(&mut h);
            acc = acc.wrapping_add(h.finish());
        }
        state.write_usize(self.entries.len());
        state.write_u64(acc);
    }
}

impl FromIterator<(Term, Term)> for Map {
    fn from_iter<I: IntoIterator<Item = (Term, Term)>>(iter: I) -> Map {
        Map::from_pairs(iter)
    }
}

/// Any Erlang value.
///
/// # Examples
///
/// ```
/// use ergo_etf::{Atom, Term};
/// let t = Term::tuple([Term::atom("ok"), Term::binary("hi"), Term::list([1.into(), 2.into()])]);
/// assert_eq!(t.to_string(), "{ok,<<\"hi\">>,[1,2]}");
/// ```
#[derive(Clone, Debug)]
pub enum Term {
    /// An integer that fits in 64 bits.
    Int(i64),
    /// An integer outside the `i64` range (never one inside it).
    BigInt(Box<BigInt>),
    /// A float.
    Float(f64),
    /// An atom.
    Atom(Atom),
    /// A binary (a whole number of bytes).
    Binary(Bytes),
    /// A bitstring that is not a whole number of bytes.
    BitBinary(BitBinary),
    /// A process identifier.
    Pid(Pid),
    /// A port identifier.
    Port(Port),
    /// A reference.
    Ref(Ref),
    /// A tuple.
    Tuple(Vec<Term>),
    /// A proper list; the empty one is `[]` (nil).
    List(Vec<Term>),
    /// An improper list `[H1, H2 | Tail]`: at least one element, and a tail
    /// that is not a list.
    ImproperList(Vec<Term>, Box<Term>),
    /// A map.
    Map(Map),
    /// A fun.
    Fun(Fun),
}

impl Term {
    /// Counts the terms `self` is made of, itself included, into `n`, and
    /// stops once `n` is past `limit`: `true` then. The elements of a tuple
    /// or list are counted all at once and only those that hold terms are
    /// looked into, so a long list of numbers costs a pass over its tags,
    /// not a call per element. (How large a message is, for a sender that
    /// encodes large ones before it takes a connection's lock.)
    #[doc(hidden)]
    pub fn count_terms_past(&self, limit: usize, n: &mut usize) -> bool {
        *n += 1;
        *n > limit || self.count_inside_past(limit, n)
    }

    /// [`Term::count_terms_past`] for the terms inside `self` only.
    fn count_inside_past(&self, limit: usize, n: &mut usize) -> bool {
        let elements = |v: &[Term], n: &mut usize| {
            *n += v.len();
            *n > limit
                || v.iter()
                    .any(|x| x.holds_terms() && x.count_inside_past(limit, n))
        };
        match self {
            Term::Tuple(v) | Term::List(v) => elements(v, n),
            Term::ImproperList(v, tail) => elements(v, n) || tail.count_terms_past(limit, n),
            Term::Map(m) => m
                .iter()
                .any(|(k, v)| k.count_terms_past(limit, n) || v.count_terms_past(limit, n)),
            _ => false,
        }
    }

    /// `true` for the kinds of term that hold other terms.
    fn holds_terms(&self) -> bool {
        matches!(
            self,
            Term::Tuple(_) | Term::List(_) | Term::ImproperList(..) | Term::Map(_)
        )
    }

    /// `[]`.
    pub const NIL: Term = Term::List(Vec::new());

    /// The atom `name`.
    pub fn atom(name: &str) -> Term {
        Term::Atom(Atom::from(name))
    }

    /// A binary holding `bytes` (a `&str` gives its UTF-8).
    pub fn binary(bytes: impl AsRef<[u8]>) -> Term {
        Term::Binary(Bytes::copy_from_slice(bytes.as_ref()))
    }

    /// A tuple.
    pub fn tuple(elements: impl IntoIterator<Item = Term>) -> Term {
        Term::Tuple(elements.into_iter().collect())
    }

    /// A proper list.
    pub fn list(elements: impl IntoIterator<Item = Term>) -> Term {
        Term::List(elements.into_iter().collect())
    }

    /// A list ending in `tail`: proper when `tail` is a list (the two are
    /// joined), improper otherwise.
    pub fn list_with_tail(elements: Vec<Term>, tail: Term) -> Term {
        match tail {
            Term::List(rest) => {
                let mut v = elements;
                v.extend(rest);
                Term::List(v)
            }
            Term::ImproperList(rest, t) => {
                let mut v = elements;
                v.extend(rest);
                Term::ImproperList(v, t)
            }
            other if elements.is_empty() => other,
            other => Term::ImproperList(elements, Box::new(other)),
        }
    }

    /// A charlist: the list of the string's code points, as Erlang's
    /// `"text"` literal makes.
    pub fn charlist(s: &str) -> Term {
        Term::List(s.chars().map(|c| Term::Int(c as i64)).collect())
    }

    /// A map of these pairs.
    pub fn map(pairs: impl IntoIterator<Item = (Term, Term)>) -> Term {
        Term::Map(Map::from_pairs(pairs))
    }

    /// An integer of any size, in its one canonical form.
    pub fn bigint(n: BigInt) -> Term {
        match n.to_i64() {
            Some(i) => Term::Int(i),
            None => Term::BigInt(Box::new(n)),
        }
    }

    /// `true` for `[]`.
    pub fn is_nil(&self) -> bool {
        matches!(self, Term::List(v) if v.is_empty())
    }

    /// The atom, if this is one.
    pub fn as_atom(&self) -> Option<Atom> {
        match self {
            Term::Atom(a) => Some(*a),
            _ => None,
        }
    }

    /// The elements, if this is a tuple.
    pub fn as_tuple(&self) -> Option<&[Term]> {
        match self {
            Term::Tuple(v) => Some(v),
            _ => None,
        }
    }

    /// The integer, if this is one that fits in `i64`.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Term::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The bytes, if this is a binary.
    pub fn as_binary(&self) -> Option<&Bytes> {
        match self {
            Term::Binary(b) => Some(b),
            _ => None,
        }
    }

    /// The elements, if this is a proper list.
    pub fn as_list(&self) -> Option<&[Term]> {
        match self {
            Term::List(v) => Some(v),
            _ => None,
        }
    }

    /// The map, if this is one.
    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Term::Map(m) => Some(m),
            _ => None,
        }
    }

    /// The pid, if this is one.
    pub fn as_pid(&self) -> Option<Pid> {
        match self {
            Term::Pid(p) => Some(*p),
            _ => None,
        }
    }

    /// `true` if this is the atom `name`.
    pub fn is_atom(&self, name: &str) -> bool {
        matches!(self, Term::Atom(a) if a.as_str() == name)
    }

    /// The class of this term in Erlang's term order (0 = number … 10 =
    /// bitstring).
    fn order_class(&self) -> u8 {
        match self {
            Term::Int(_) | Term::BigInt(_) | Term::Float(_) => 0,
            Term::Atom(_) => 1,
            Term::Ref(_) => 2,
            Term::Fun(_) => 3,
            Term::Port(_) => 4,
            Term::Pid(_) => 5,
            Term::Tuple(_) => 6,
            Term::Map(_) => 7,
            Term::List(v) if v.is_empty() => 8,
            Term::List(_) | Term::ImproperList(..) => LIST_CLASS,
            Term::Binary(_) | Term::BitBinary(_) => 10,
        }
    }

    /// A short name of the term's type, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Term::Int(_) | Term::BigInt(_) => "integer",
            Term::Float(_) => "float",
            Term::Atom(_) => "atom",
            Term::Binary(_) => "binary",
            Term::BitBinary(_) => "bitstring",
            Term::Pid(_) => "pid",
            Term::Port(_) => "port",
            Term::Ref(_) => "reference",
            Term::Tuple(_) => "tuple",
            Term::List(v) if v.is_empty() => "[]",
            Term::List(_) => "list",
            Term::ImproperList(..) => "improper list",
            Term::Map(_) => "map",
            Term::Fun(_) => "fun",
        }
    }
}

/// The class of non-empty lists in [`Term::order_class`].
const LIST_CLASS: u8 = 9;

// ---------------------------------------------------------------- equality

impl PartialEq for Term {
    fn eq(&self, other: &Term) -> bool {
        match (self, other) {
            (Term::Int(a), Term::Int(b)) => a == b,
            (Term::BigInt(a), Term::BigInt(b)) => a == b,
            // Exact equality, as `=:=` in OTP 27: compares the bits, so
            // 0.0 and -0.0 differ. Erlang floats are never NaN.
            (Term::Float(a), Term::Float(b)) => a.to_bits() == b.to_bits(),
            (Term::Atom(a), Term::Atom(b)) => a == b,
            (Term::Binary(a), Term::Binary(b)) => a == b,
            (Term::BitBinary(a), Term::BitBinary(b)) => a == b,
            (Term::Pid(a), Term::Pid(b)) => a == b,
            (Term::Port(a), Term::Port(b)) => a == b,
            (Term::Ref(a), Term::Ref(b)) => a == b,
            (Term::Tuple(a), Term::Tuple(b)) => a == b,
            (Term::List(a), Term::List(b)) => a == b,
            (Term::ImproperList(a, ta), Term::ImproperList(b, tb)) => a == b && ta == tb,
            (Term::Map(a), Term::Map(b)) => a == b,
            (Term::Fun(a), Term::Fun(b)) => a == b,
            _ => false,
        }
    }
}

impl Eq for Term {}

impl Hash for Term {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::mem::discriminant(self).hash(state);
        match self {
            Term::Int(i) => i.hash(state),
            Term::BigInt(b) => b.hash(state),
            Term::Float(f) => f.to_bits().hash(state),
            Term::Atom(a) => a.hash(state),
            Term::Binary(b) => b.hash(state),
            Term::BitBinary(b) => b.hash(state),
            Term::Pid(p) => p.hash(state),
            Term::Port(p) => p.hash(state),
            Term::Ref(r) => r.hash(state),
            Term::Tuple(v) | Term::List(v) => v.hash(state),
            Term::ImproperList(v, t) => {
                v.hash(state);
                t.hash(state);
            }
            Term::Map(m) => m.hash(state),
            Term::Fun(f) => f.hash(state),
        }
    }
}

// ---------------------------------------------------------------- ordering
//
// Erlang's term order is not total: `1 == 1.0` and (in OTP 25) `0.0 ==
// -0.0`, though the terms differ. `Term`'s order is Erlang's, with such
// ties settled afterwards by the first exact difference Erlang passed over
// (an integer before the equal float, -0.0 before 0.0). Settling a tie on
// the spot would be wrong: `{1, 2}` is greater than `{1.0, 1}` in Erlang, as
// 1 == 1.0 leaves the second elements to decide.

/// How integers and floats compare with each other.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Numbers {
    /// By value, as `<` and `==` do: `1 == 1.0`, `2 > 1.0`.
    ByValue,
    /// All integers before all floats, at any depth: Erlang's exact order,
    /// in which the keys of a map are ordered (`2 < 1.0`, `{2} < {1.0}`).
    ByType,
}

/// Records `o` as the tie-break unless an earlier difference was recorded.
fn note_tie(tie: &mut Ordering, o: impl FnOnce() -> Ordering) {
    if *tie == Ordering::Equal {
        *tie = o();
    }
}

/// Compares an integer with a float by exact value (as Erlang does, however
/// large the integer), not by the integer rounded to a float.
fn cmp_int_float(i: &Term, f: f64) -> Ordering {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    let whole = f.trunc();
    let by_whole = match i {
        Term::Int(_) if whole >= TWO_63 => Ordering::Less,
        Term::Int(_) if whole < -TWO_63 => Ordering::Greater,
        Term::Int(i) => i.cmp(&(whole as i64)),
        // Erlang floats are finite, so `whole` converts exactly.
        Term::BigInt(b) => BigInt::from_f64(whole).map_or(Ordering::Equal, |w| (**b).cmp(&w)),
        _ => Ordering::Equal,
    };
    by_whole.then(whole.partial_cmp(&f).unwrap_or(Ordering::Equal))
}

fn cmp_ints(a: &Term, b: &Term) -> Ordering {
    match (a, b) {
        (Term::Int(x), Term::Int(y)) => x.cmp(y),
        (Term::Int(_), Term::BigInt(y)) => {
            if y.sign() == num_bigint::Sign::Minus {
                Ordering::Greater
            } else {
                Ordering::Less
            }
        }
        (Term::BigInt(x), Term::Int(_)) => {
            if x.sign() == num_bigint::Sign::Minus {
                Ordering::Less
            } else {
                Ordering::Greater
            }
        }
        (Term::BigInt(x), Term::BigInt(y)) => x.cmp(y),
        _ => Ordering::Equal,
    }
}

fn cmp_numbers(a: &Term, b: &Term, numbers: Numbers, tie: &mut Ordering) -> Ordering {
    match (a, b) {
        (Term::Float(x), Term::Float(y)) => {
            // 0.0 == -0.0 in Erlang; the sign settles the tie.
            let o = x.partial_cmp(y).unwrap_or(Ordering::Equal);
            if o == Ordering::Equal {
                note_tie(tie, || x.total_cmp(y));
            }
            o
        }
        (Term::Float(_), _) if numbers == Numbers::ByType => Ordering::Greater,
        (_, Term::Float(_)) if numbers == Numbers::ByType => Ordering::Less,
        (Term::Float(x), i) => {
            let o = cmp_int_float(i, *x).reverse();
            if o == Ordering::Equal {
                note_tie(tie, || Ordering::Greater);
            }
            o
        }
        (i, Term::Float(y)) => {
            let o = cmp_int_float(i, *y);
            if o == Ordering::Equal {
                note_tie(tie, || Ordering::Less);
            }
            o
        }
        _ => cmp_ints(a, b),
    }
}

/// Compares reference numbers as Erlang does: as one number each, the last
/// word most significant, so that a longer reference whose extra words are
/// zero equals the shorter one (the length then settles the tie).
fn cmp_ref_ids(a: &[u32], b: &[u32], tie: &mut Ordering) -> Ordering {
    let word = |ids: &[u32], i: usize| ids.get(i).copied().unwrap_or(0);
    let o = (0..a.len().max(b.len()))
        .rev()
        .map(|i| word(a, i).cmp(&word(b, i)))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal);
    if o == Ordering::Equal {
        note_tie(tie, || a.len().cmp(&b.len()));
    }
    o
}

/// Compares elements pairwise up to the first difference.
fn cmp_seq(a: &[Term], b: &[Term], numbers: Numbers, tie: &mut Ordering) -> Ordering {
    a.iter()
        .zip(b)
        .map(|(x, y)| cmp_terms(x, y, numbers, tie))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// A list's elements and, if improper, its tail.
fn list_cells(t: &Term) -> (&[Term], Option<&Term>) {
    match t {
        Term::ImproperList(v, tail) => (v, Some(tail)),
        Term::List(v) => (v, None),
        _ => (&[], None),
    }
}

/// Compares two lists cell by cell, tails included, as Erlang does.
fn cmp_lists(
    (ah, at): (&[Term], Option<&Term>),
    (bh, bt): (&[Term], Option<&Term>),
    numbers: Numbers,
    tie: &mut Ordering,
) -> Ordering {
    let n = ah.len().min(bh.len());
    let o = cmp_seq(&ah[..n], &bh[..n], numbers, tie);
    if o != Ordering::Equal {
        return o;
    }
    let nil = Term::NIL;
    // Where one list has cells left, the other's tail (`[]` or a non-list)
    // meets a non-empty list: the classes decide.
    match (ah.len() > n, bh.len() > n) {
        (true, _) => LIST_CLASS.cmp(&bt.unwrap_or(&nil).order_class()),
        (_, true) => at.unwrap_or(&nil).order_class().cmp(&LIST_CLASS),
        // The tails: `[]` or a term that is not a list.
        _ if at.is_none() && bt.is_none() => Ordering::Equal,
        _ => cmp_terms(at.unwrap_or(&nil), bt.unwrap_or(&nil), numbers, tie),
    }
}

fn cmp_bits(a: &[u8], abits: u64, b: &[u8], bbits: u64) -> Ordering {
    let common = a.len().min(b.len());
    match a[..common].cmp(&b[..common]) {
        Ordering::Equal => abits.cmp(&bbits),
        o => o,
    }
}

fn bit_view(t: &Term) -> (&[u8], u64) {
    match t {
        Term::Binary(b) => (b, b.len() as u64 * 8),
        Term::BitBinary(b) => (b.bytes(), b.bit_len()),
        _ => (&[], 0),
    }
}

/// The order of the keys of a map (Erlang's exact order: integers before
/// floats at any depth), made total as [`Term`]'s own order is.
fn cmp_map_keys(a: &Term, b: &Term) -> Ordering {
    let mut tie = Ordering::Equal;
    cmp_terms(a, b, Numbers::ByType, &mut tie).then(tie)
}

/// Maps compare by size, then by their keys in map-key order, then by the
/// values in that order.
fn cmp_maps(a: &Map, b: &Map, numbers: Numbers, tie: &mut Ordering) -> Ordering {
    let o = a.len().cmp(&b.len());
    if o != Ordering::Equal {
        return o;
    }
    let (x, y) = (a.sorted(), b.sorted());
    let keys = x
        .iter()
        .zip(&y)
        .map(|(p, q)| cmp_terms(&p.0, &q.0, Numbers::ByType, tie))
        .find(|o| *o != Ordering::Equal);
    if let Some(o) = keys {
        return o;
    }
    x.iter()
        .zip(&y)
        .map(|(p, q)| cmp_terms(&p.1, &q.1, numbers, tie))
        .find(|o| *o != Ordering::Equal)
        .unwrap_or(Ordering::Equal)
}

/// Erlang's order of funs: closures before exports; exports by module,
/// name and arity; closures (as OTP 25 compares them, measured) by module,
/// index, old uniq, the number of free variables and then the free
/// variables, not by uniq or old index. Closures Erlang finds equal that
/// differ in other parts (the creator's pid, say) tie.
fn cmp_funs(a: &Fun, b: &Fun, numbers: Numbers, tie: &mut Ordering) -> Ordering {
    match (a, b) {
        (
            Fun::Export {
                module: m1,
                function: f1,
                arity: a1,
            },
            Fun::Export {
                module: m2,
                function: f2,
                arity: a2,
            },
        ) => m1.cmp(m2).then(f1.cmp(f2)).then(a1.cmp(a2)),
        (Fun::Export { .. }, Fun::Local(_)) => Ordering::Greater,
        (Fun::Local(_), Fun::Export { .. }) => Ordering::Less,
        (Fun::Local(x), Fun::Local(y)) => {
            let o = x
                .module
                .cmp(&y.module)
                .then(x.index.cmp(&y.index))
                .then_with(|| cmp_terms(&x.old_uniq, &y.old_uniq, numbers, tie))
                .then(x.free.len().cmp(&y.free.len()))
                .then_with(|| cmp_seq(&x.free, &y.free, numbers, tie));
            if o == Ordering::Equal {
                note_tie(tie, || {
                    x.uniq
                        .cmp(&y.uniq)
                        .then_with(|| x.old_index.cmp(&y.old_index))
                        .then(x.arity.cmp(&y.arity))
                        .then_with(|| x.pid.cmp(&y.pid))
                });
            }
            o
        }
    }
}

/// Compares in Erlang's term order, with numbers as `numbers` says. Where
/// Erlang finds the terms equal though they differ, returns `Equal` and
/// leaves in `tie` (unless it holds an earlier one) how the first such
/// difference orders them.
fn cmp_terms(a: &Term, b: &Term, numbers: Numbers, tie: &mut Ordering) -> Ordering {
    let (ca, cb) = (a.order_class(), b.order_class());
    if ca != cb {
        return ca.cmp(&cb);
    }
    match (a, b) {
        (Term::Atom(a), Term::Atom(b)) => a.cmp(b),
        (Term::Ref(a), Term::Ref(b)) => a
            .node
            .cmp(&b.node)
            .then(a.creation.cmp(&b.creation))
            .then_with(|| cmp_ref_ids(a.ids(), b.ids(), tie)),
        (Term::Fun(a), Term::Fun(b)) => cmp_funs(a, b, numbers, tie),
        (Term::Port(a), Term::Port(b)) => a
            .node
            .cmp(&b.node)
            .then(a.creation.cmp(&b.creation))
            .then(a.id.cmp(&b.id)),
        (Term::Pid(a), Term::Pid(b)) => a.cmp(b),
        (Term::Tuple(x), Term::Tuple(y)) => x.len().cmp(&y.len()).then_with(|| {
            stacker::maybe_grow(
                crate::decode::STACK_RED_ZONE,
                crate::decode::STACK_GROW,
                || cmp_seq(x, y, numbers, tie),
            )
        }),
        (Term::Map(x), Term::Map(y)) => stacker::maybe_grow(
            crate::decode::STACK_RED_ZONE,
            crate::decode::STACK_GROW,
            || cmp_maps(x, y, numbers, tie),
        ),
        (Term::List(_) | Term::ImproperList(..), Term::List(_) | Term::ImproperList(..)) => {
            stacker::maybe_grow(
                crate::decode::STACK_RED_ZONE,
                crate::decode::STACK_GROW,
                || cmp_lists(list_cells(a), list_cells(b), numbers, tie),
            )
        }
        (a @ (Term::Binary(_) | Term::BitBinary(_)), b) => {
            let (x, xb) = bit_view(a);
            let (y, yb) = bit_view(b);
            cmp_bits(x, xb, y, yb)
        }
        (a, b) => cmp_numbers(a, b, numbers, tie),
    }
}

impl Ord for Term {
    /// Erlang's term order, made total: terms Erlang finds equal (`==`)
    /// but that differ are ordered by their first difference, an integer
    /// before the equal float (`1 < 1.0`) and -0.0 before 0.0.
    fn cmp(&self, other: &Term) -> Ordering {
        let mut tie = Ordering::Equal;
        cmp_terms(self, other, Numbers::ByValue, &mut tie).then(tie)
    }
}

impl PartialOrd for Term {
    fn partial_cmp(&self, other: &Term) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

// ---------------------------------------------------------------- display

/// Writes a float the way Erlang prints it (`io_lib:format("~w")`, which is
/// `float_to_list(F, [short])`): the shortest digits that read back as the
/// same float, always with a fraction, in plain or scientific notation by
/// Erlang's rule (`1.0`, `0.1`, `100.0`, `1.0e3`, `0.0001`, `1.2e-4`,
/// `123456.0`, `1.0e15`, `9.007199254740992e15`).
pub(crate) fn write_float(f: &mut impl fmt::Write, x: f64) -> fmt::Result {
    if !x.is_finite() {
        // Not an Erlang value; written the way Rust writes it.
        return write!(f, "{x:?}");
    }
    if x == 0.0 {
        return f.write_str(if x.is_sign_negative() { "-0.0" } else { "0.0" });
    }
    if x.is_sign_negative() {
        f.write_char('-')?;
    }
    let (digits, sci_exp) = shortest_digits(x.abs());
    let olength = digits.len() as i32;
    // The value is `digits` × 10^`exp10`.
    let exp10 = sci_exp - (olength - 1);
    // The notation Erlang picks (erts' ryu `to_chars`): plain within these
    // exponent bounds, except integral values beyond 2^53, which are
    // written in scientific notation.
    let (lower, upper) = if olength == 1 {
        (-4, 2)
    } else if sci_exp >= 10 {
        (-(olength + 2), 2)
    } else {
        (-(olength + 2), 1)
    };
    let mut plain = lower <= exp10 && exp10 <= upper;
    if plain {
        let output: u64 = digits.parse().unwrap_or(0);
        plain = !((output >= 1 << 53 && exp10 == 0)
            || (output > (1 << 52) / 5 && exp10 == 1)
            || (output > (1 << 51) / 25 && exp10 == 2));
    }
    if plain {
        let whole = olength + exp10;
        if exp10 >= 0 {
            f.write_str(&digits)?;
            for _ in 0..exp10 {
                f.write_char('0')?;
            }
            f.write_str(".0")
        } else if whole > 0 {
            let (int, frac) = digits.split_at(whole as usize);
            write!(f, "{int}.{frac}")
        } else {
            f.write_str("0.")?;
            for _ in 0..-whole {
                f.write_char('0')?;
            }
            f.write_str(&digits)
        }
    } else {
        let (first, rest) = digits.split_at(1);
        let rest = if rest.is_empty() { "0" } else { rest };
        write!(f, "{first}.{rest}e{sci_exp}")
    }
}

/// Splits `"1.25e-3"` into its significant digits (`"125"`) and exponent.
fn split_sci(s: &str) -> (String, i32) {
    let (mantissa, exp) = s.split_once('e').unwrap_or((s, "0"));
    let digits = mantissa.chars().filter(|c| *c != '.').collect();
    (digits, exp.parse().unwrap_or(0))
}

/// The shortest significant digits that read back as `x` (positive and
/// finite), and the decimal exponent of the first one, as Erlang's Ryu
/// gives them.
///
/// Rust's `{:e}` finds the same shortest digits, except where two
/// candidates are exactly as near to `x`: Ryu then takes the one ending in
/// an even digit, Rust the larger (`720676367667060.25` is
/// `720676367667060.2` in Erlang, `…060.3` in Rust).
fn shortest_digits(x: f64) -> (String, i32) {
    let (digits, exp) = split_sci(&format!("{x:e}"));
    let n = digits.len();
    // A tie needs `x` to be exactly the n digits and a trailing 5.
    let rounded = format!("{x:.n$e}");
    if !rounded
        .split_once('e')
        .is_some_and(|(m, _)| m.ends_with('5'))
    {
        return (digits, exp);
    }
    // Every f64 has a finite decimal expansion of under 800 digits.
    let (exact, exact_exp) = split_sci(&format!("{x:.800e}"));
    let exact = exact.trim_end_matches('0');
    if exact_exp != exp || exact.len() != n + 1 || !exact.ends_with('5') {
        return (digits, exp);
    }
    let low = &exact[..n];
    let low_is_even = low.as_bytes()[n - 1] % 2 == 0;
    let shift = exp - (n as i32 - 1);
    if low != digits && low_is_even && format!("{low}e{shift}").parse::<f64>() == Ok(x) {
        return (low.to_owned(), exp);
    }
    (digits, exp)
}

/// Integers this large print in base 16 (`16#...`, still Erlang syntax):
/// decimal printing costs time that grows with the square of the size.
const DECIMAL_BITS_MAX: u64 = 10_000;

fn write_bigint(f: &mut fmt::Formatter<'_>, b: &BigInt) -> fmt::Result {
    if b.bits() <= DECIMAL_BITS_MAX {
        return write!(f, "{b}");
    }
    if b.sign() == num_bigint::Sign::Minus {
        f.write_char('-')?;
    }
    write!(f, "16#{:X}", b.magnitude())
}

fn printable_char(c: i64) -> bool {
    (32..=126).contains(&c) || matches!(c, 8..=13 | 27)
}

fn write_char_escaped(f: &mut impl fmt::Write, c: u8, quote: u8) -> fmt::Result {
    match c {
        b'\n' => f.write_str("\\n"),
        b'\r' => f.write_str("\\r"),
        b'\t' => f.write_str("\\t"),
        8 => f.write_str("\\b"),
        11 => f.write_str("\\v"),
        12 => f.write_str("\\f"),
        27 => f.write_str("\\e"),
        b'\\' => f.write_str("\\\\"),
        c if c == quote => write!(f, "\\{}", c as char),
        c => f.write_char(c as char),
    }
}

fn write_binary(f: &mut fmt::Formatter<'_>, b: &[u8], tail: Option<(u8, u8)>) -> fmt::Result {
    f.write_str("<<")?;
    let printable = !b.is_empty()
        && tail.is_none()
        && b.iter().all(|&c| printable_char(c as i64))
        && std::str::from_utf8(b).is_ok();
    if printable {
        f.write_char('"')?;
        for &c in b {
            write_char_escaped(f, c, b'"')?;
        }
        f.write_char('"')?;
    } else {
        for (i, c) in b.iter().enumerate() {
            if i > 0 {
                f.write_char(',')?;
            }
            write!(f, "{c}")?;
        }
        if let Some((last, bits)) = tail {
            if !b.is_empty() {
                f.write_char(',')?;
            }
            write!(f, "{}:{}", last >> (8 - bits), bits)?;
        }
    }
    f.write_str(">>")
}

fn write_seq(f: &mut fmt::Formatter<'_>, items: &[Term]) -> fmt::Result {
    for (i, t) in items.iter().enumerate() {
        if i > 0 {
            f.write_char(',')?;
        }
        fmt::Display::fmt(t, f)?;
    }
    Ok(())
}

impl fmt::Display for Pid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}.{}>", self.node, self.id, self.serial)
    }
}

impl fmt::Display for Port {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Port<{}.{}>", self.node, self.id)
    }
}

impl fmt::Display for Ref {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#Ref<{}", self.node)?;
        for w in self.ids().iter().rev() {
            write!(f, ".{w}")?;
        }
        f.write_char('>')
    }
}

impl fmt::Display for Fun {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fun::Export {
                module,
                function,
                arity,
            } => write!(f, "fun {module}:{function}/{arity}"),
            Fun::Local(l) => write!(f, "#Fun<{}.{}.{}>", l.module, l.index, l.old_uniq),
        }
    }
}

impl fmt::Display for Term {
    /// Erlang syntax, as `io:format("~w")` writes it (floats included),
    /// except that:
    ///
    /// - lists of two or more printable characters are written as strings
    ///   (`"abc"`) and binaries of printable text as `<<"abc">>`, as `~p`
    ///   does;
    /// - atoms with characters beyond Latin-1 keep them (`'λ'`), as `~tw`
    ///   does;
    /// - pids, ports and references name their node (`<nonode@nohost.9.0>`)
    ///   where Erlang writes a node index that only means something inside
    ///   the printing VM (`<0.9.0>`);
    /// - maps write their pairs in the order they hold them (for a decoded
    ///   map, the order on the wire, which for maps of over 32 pairs is the
    ///   reverse of the order Erlang prints).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Tuple(_) | Term::List(_) | Term::ImproperList(..) | Term::Map(_) => {
                stacker::maybe_grow(
                    crate::decode::STACK_RED_ZONE,
                    crate::decode::STACK_GROW,
                    || self.fmt_here(f),
                )
            }
            _ => self.fmt_here(f),
        }
    }
}

impl Term {
    fn fmt_here(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Term::Int(i) => write!(f, "{i}"),
            Term::BigInt(b) => write_bigint(f, b),
            Term::Float(x) => write_float(f, *x),
            Term::Atom(a) => write_atom(f, a.as_str()),
            Term::Binary(b) => write_binary(f, b, None),
            Term::BitBinary(b) => {
                let bytes = b.bytes();
                let (whole, last) = bytes.split_at(bytes.len() - 1);
                write_binary(f, whole, Some((last[0], b.tail_bits())))
            }
            Term::Pid(p) => write!(f, "{p}"),
            Term::Port(p) => write!(f, "{p}"),
            Term::Ref(r) => write!(f, "{r}"),
            Term::Fun(x) => write!(f, "{x}"),
            Term::Tuple(v) => {
                f.write_char('{')?;
                write_seq(f, v)?;
                f.write_char('}')
            }
            Term::List(v) => {
                let is_string = v.len() >= 2
                    && v.iter()
                        .all(|t| matches!(t, Term::Int(c) if printable_char(*c)));
                if is_string {
                    f.write_char('"')?;
                    for t in v {
                        if let Term::Int(c) = t {
                            write_char_escaped(f, *c as u8, b'"')?;
                        }
                    }
                    f.write_char('"')
                } else {
                    f.write_char('[')?;
                    write_seq(f, v)?;
                    f.write_char(']')
                }
            }
            Term::ImproperList(v, tail) => {
                f.write_char('[')?;
                write_seq(f, v)?;
                write!(f, "|{tail}]")
            }
            Term::Map(m) => {
                f.write_str("#{")?;
                for (i, (k, v)) in m.iter().enumerate() {
                    if i > 0 {
                        f.write_char(',')?;
                    }
                    write!(f, "{k} => {v}")?;
                }
                f.write_char('}')
            }
        }
    }
}

// ---------------------------------------------------------------- From impls

macro_rules! from_small_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Term {
            fn from(v: $t) -> Term { Term::Int(v as i64) }
        }
    )*};
}
from_small_int!(i8, i16, i32, i64, u8, u16, u32, isize);

macro_rules! from_wide_int {
    ($($t:ty),*) => {$(
        impl From<$t> for Term {
            fn from(v: $t) -> Term {
                match i64::try_from(v) {
                    Ok(i) => Term::Int(i),
                    Err(_) => Term::BigInt(Box::new(BigInt::from(v))),
                }
            }
        }
    )*};
}
from_wide_int!(u64, usize, i128, u128);

impl From<BigInt> for Term {
    fn from(v: BigInt) -> Term {
        Term::bigint(v)
    }
}

impl From<f64> for Term {
    fn from(v: f64) -> Term {
        Term::Float(v)
    }
}

impl From<bool> for Term {
    fn from(v: bool) -> Term {
        Term::Atom(if v { Atom::TRUE } else { Atom::FALSE })
    }
}

impl From<Atom> for Term {
    fn from(v: Atom) -> Term {
        Term::Atom(v)
    }
}

impl From<Pid> for Term {
    fn from(v: Pid) -> Term {
        Term::Pid(v)
    }
}

impl From<Port> for Term {
    fn from(v: Port) -> Term {
        Term::Port(v)
    }
}

impl From<Ref> for Term {
    fn from(v: Ref) -> Term {
        Term::Ref(v)
    }
}

impl From<Map> for Term {
    fn from(v: Map) -> Term {
        Term::Map(v)
    }
}

impl From<Bytes> for Term {
    fn from(v: Bytes) -> Term {
        Term::Binary(v)
    }
}

impl From<&str> for Term {
    /// A `&str` becomes a binary, as Elixir strings are.
    fn from(v: &str) -> Term {
        Term::binary(v)
    }
}

impl From<String> for Term {
    /// A `String` becomes a binary, as Elixir strings are.
    fn from(v: String) -> Term {
        Term::Binary(Bytes::from(v.into_bytes()))
    }
}

impl From<Vec<Term>> for Term {
    /// A vector of terms becomes a proper list.
    fn from(v: Vec<Term>) -> Term {
        Term::List(v)
    }
}

impl Default for Term {
    /// `[]`.
    fn default() -> Term {
        Term::NIL
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_erlang_syntax() {
        let t = Term::tuple([
            Term::atom("ok"),
            Term::binary("hi"),
            Term::list([1.into(), 2.into()]),
        ]);
        assert_eq!(t.to_string(), "{ok,<<\"hi\">>,[1,2]}");
        assert_eq!(Term::NIL.to_string(), "[]");
        assert_eq!(Term::charlist("abc").to_string(), "\"abc\"");
        assert_eq!(
            Term::list_with_tail(vec![1.into()], 2.into()).to_string(),
            "[1|2]"
        );
        assert_eq!(Term::binary([1, 2, 255]).to_string(), "<<1,2,255>>");
        assert_eq!(Term::Float(1.0).to_string(), "1.0");
        assert_eq!(Term::Float(1e20).to_string(), "1.0e20");
        assert_eq!(Term::Float(-0.5).to_string(), "-0.5");
        assert_eq!(
            Term::map([(Term::atom("a"), 1.into())]).to_string(),
            "#{a => 1}"
        );
        let bits = BitBinary::new(vec![1u8, 0b1010_0000], 3).unwrap();
        assert_eq!(Term::BitBinary(bits).to_string(), "<<1,5:3>>");
    }

    #[test]
    fn floats_display_as_erlang_writes_them() {
        // io_lib:format("~w", [F]) in OTP 25 for each of these.
        for (x, erlang) in [
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (0.1, "0.1"),
            (100.0, "100.0"),
            (1000.0, "1.0e3"),
            (12340.0, "12340.0"),
            (123456.0, "123456.0"),
            (0.0001, "0.0001"),
            (0.00012, "1.2e-4"),
            (0.00123, "0.00123"),
            (1.0e-5, "1.0e-5"),
            (1.0e15, "1.0e15"),
            (9007199254740992.0, "9.007199254740992e15"),
            (123456789012345680.0, "1.2345678901234568e17"),
            (5.0e-324, "5.0e-324"),
            (1.7976931348623157e308, "1.7976931348623157e308"),
            (-1.5, "-1.5"),
            // Two shortest candidates, equally near: the even one.
            // (Written as sums: Rust's own shortest text of these values is
            // the other candidate.)
            (720676367667060.0 + 0.25, "720676367667060.2"),
            (-(77693466320775.0 + 0.125), "-77693466320775.12"),
        ] {
            assert_eq!(Term::Float(x).to_string(), erlang, "{x:?}");
        }
    }

    #[test]
    fn huge_integers_print_in_base_16() {
        let big = Term::bigint(BigInt::from(1) << 20_000u32);
        let text = big.to_string();
        assert!(text.starts_with("16#1000"), "{}", &text[..10]);
        let neg = Term::bigint(-(BigInt::from(1) << 20_000u32));
        assert!(neg.to_string().starts_with("-16#1000"));
        assert_eq!(Term::from(u64::MAX).to_string(), "18446744073709551615");
    }

    #[test]
    fn term_order_follows_erlang_classes() {
        let r = Term::Ref(Ref::new(Atom::NONODE, 0, &[1]).unwrap());
        let p = Term::Pid(Pid::new(Atom::NONODE, 1, 0, 0));
        let ordered = [
            Term::Int(1),
            Term::atom("a"),
            r,
            Term::Fun(Fun::Export {
                module: Atom::from("m"),
                function: Atom::from("f"),
                arity: 0,
            }),
            Term::Port(Port {
                node: Atom::NONODE,
                id: 1,
                creation: 0,
            }),
            p,
            Term::tuple([]),
            Term::map([]),
            Term::NIL,
            Term::list([1.into()]),
            Term::binary(""),
        ];
        for w in ordered.windows(2) {
            assert!(w[0] < w[1], "{} < {}", w[0], w[1]);
        }
    }

    #[test]
    fn numbers_compare_by_value_and_integers_win_ties() {
        assert!(Term::Int(1) < Term::Float(1.5));
        assert!(Term::Float(0.5) < Term::Int(1));
        assert!(Term::Int(1) < Term::Float(1.0));
        assert_ne!(Term::Int(1), Term::Float(1.0));
        let big = Term::from(u64::MAX);
        assert!(Term::Int(i64::MAX) < big);
        assert!(Term::from(i128::MIN) < Term::Int(i64::MIN));
    }

    #[test]
    fn ties_between_numbers_decide_only_when_nothing_else_does() {
        // In Erlang (OTP 25): 1 == 1.0, so the second elements decide.
        let t = |x: Term, y: Term| Term::tuple([x, y]);
        assert!(t(Term::Int(1), Term::Int(2)) > t(Term::Float(1.0), Term::Int(1)));
        assert!(t(Term::Int(1), Term::Int(2)) < t(Term::Float(1.0), Term::Int(2)));
        let m = |v: Term| Term::map([(Term::atom("a"), v), (Term::atom("b"), Term::Int(2))]);
        assert!(m(Term::Int(1)) < m(Term::Float(1.0)));
        assert!(Term::Float(-0.0) < Term::Float(0.0));
        assert!(Term::Float(-0.0) > Term::Int(-1));
    }

    #[test]
    fn map_keys_order_integers_before_floats_at_any_depth() {
        // {2} < {1.0} as map keys, so #{{2} => a} < #{{1.0} => a}.
        let m = |k: Term| Term::map([(Term::tuple([k]), Term::atom("a"))]);
        assert!(m(Term::Int(2)) < m(Term::Float(1.0)));
        assert!(Term::tuple([Term::Int(2)]) > Term::tuple([Term::Float(1.0)]));
    }

    #[test]
    fn big_integers_compare_with_floats_exactly() {
        // 2^64 + 1 rounds to the float 2^64 but is greater.
        let two_64 = BigInt::from(1) << 64u32;
        let f = Term::Float(18446744073709551616.0);
        assert!(Term::bigint(two_64.clone() + 1) > f);
        assert!(Term::bigint(two_64) < f);
        assert!(Term::Int((1 << 53) + 1) > Term::Float(9007199254740992.0));
    }

    #[test]
    fn references_compare_as_numbers() {
        // Words are least significant first; missing words are zero.
        let r = |ids: &[u32]| Term::Ref(Ref::new(Atom::NONODE, 1, ids).unwrap());
        assert!(r(&[2, 1]) > r(&[9]));
        assert!(r(&[9, 0, 0]) > r(&[2, 0]));
        assert!(r(&[9]) < r(&[9, 0, 0]));
        assert!(r(&[0, 0, 1]) > r(&[7, 7]));
    }

    #[test]
    fn tuples_order_by_size_first() {
        assert!(Term::tuple([Term::Int(9)]) < Term::tuple([Term::Int(0), Term::Int(0)]));
    }

    #[test]
    fn improper_tail_compares_as_erlang() {
        // [1|2] < [1,2] because 2 (number) < [2] (list).
        let improper = Term::list_with_tail(vec![1.into()], 2.into());
        let proper = Term::list([1.into(), 2.into()]);
        assert!(improper < proper);
        assert!(Term::list([1.into()]) < proper);
    }

    #[test]
    fn maps_are_equal_regardless_of_insertion_order() {
        let a = Term::map([(Term::atom("x"), 1.into()), (Term::atom("y"), 2.into())]);
        let b = Term::map([(Term::atom("y"), 2.into()), (Term::atom("x"), 1.into())]);
        assert_eq!(a, b);
        let mut h1 = std::collections::hash_map::DefaultHasher::new();
        let mut h2 = std::collections::hash_map::DefaultHasher::new();
        a.hash(&mut h1);
        b.hash(&mut h2);
        assert_eq!(h1.finish(), h2.finish());
    }

    #[test]
    fn bitstrings_order_bytewise_then_by_length() {
        let short = Term::BitBinary(BitBinary::new(vec![0b1000_0000u8], 1).unwrap());
        let byte = Term::binary([0x80]);
        assert!(short < byte);
        assert!(Term::binary([1]) < Term::binary([1, 0]));
    }
}
