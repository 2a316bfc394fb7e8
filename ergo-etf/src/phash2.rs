//! `erlang:phash2/1,2`: Erlang's portable term hash, bit for bit.
//!
//! `phash2` is the hash Erlang code reaches for when a value must land in
//! the same bucket on every node and every run: `:erlang.phash2(Event, N)`
//! routes GenStage partition events, `pg` and many libraries shard with it.
//! The functions here give exactly the values OTP 25 gives, for every
//! [`Term`].
//!
//! The hash is OTP's `make_hash2` (in `erts/emulator/beam/utils.c`): Bob
//! Jenkins' 96-bit mix applied to each piece of a term in a fixed walk, a
//! block hash (Jenkins' `lookup2`) for binary contents, the classic
//! `hashpjw` of an atom's name, and an order-independent combination (XOR
//! of per-pair hashes) for maps. Details worth knowing:
//!
//! - Integers that fit in 28 signed bits hash one way, all others (even
//!   those that fit in 64 bits) hash as bignums in 64-bit digits.
//! - `0.0` and `-0.0` hash alike (OTP 25 turns `-0.0` into `0.0` first).
//! - Lists of small integers `0..=255` (strings) hash four elements at a
//!   time.
//! - Pids hash only their id, ports their number, references their first
//!   id word: node, creation and serial are not part of the hash.
//! - An export fun hashes its module, function and arity; a closure its
//!   module, `Index`, `OldUniq` and captured values (not its `Uniq`, pid or
//!   `OldIndex`).

use crate::atom::Atom;
use crate::term::{Fun, Map, Term};

/// The range of [`phash2()`]: `erlang:phash2/1` gives values in `0..2^27`.
pub const PHASH2_RANGE: u32 = 1 << 27;

/// `erlang:phash2(Term)`: the portable hash of `term`, in `0..2^27`.
///
/// # Examples
///
/// ```
/// use ergo_etf::{phash2, Term};
/// // Values from Erlang/OTP 25: `erlang:phash2(a)` and `erlang:phash2({})`.
/// assert_eq!(phash2(&Term::atom("a")), 97);
/// assert_eq!(phash2(&Term::tuple([])), 87486268);
/// ```
pub fn phash2(term: &Term) -> u32 {
    make_hash2(term) & (PHASH2_RANGE - 1)
}

/// `erlang:phash2(Term, Range)`: the portable hash of `term`, in
/// `0..range`.
///
/// Erlang allows a range of 1 to 2^32; this function takes 1 to
/// `u32::MAX` and returns `None` for 0 (where Erlang raises `badarg`). For
/// the full range of 2^32, `erlang:phash2(Term, 1 bsl 32)`, use
/// [`phash2_32`].
///
/// The result is the value Erlang gives for the same term and range, so a
/// term routed by `phash2_range(&t, n)` in Rust lands in the same partition
/// as `:erlang.phash2(t, n)` does in Elixir or Erlang.
///
/// # Examples
///
/// ```
/// use ergo_etf::{phash2_range, Term};
/// // `erlang:phash2(1, 7)` is 6 in Erlang/OTP 25.
/// assert_eq!(phash2_range(&Term::Int(1), 7), Some(6));
/// assert_eq!(phash2_range(&Term::Int(1), 0), None);
/// ```
pub fn phash2_range(term: &Term, range: u32) -> Option<u32> {
    if range == 0 {
        return None;
    }
    Some(make_hash2(term) % range)
}

/// `erlang:phash2(Term, 1 bsl 32)`: the whole 32-bit portable hash of
/// `term`.
///
/// [`phash2()`] is this value's low 27 bits, and [`phash2_range`] is this
/// value modulo the range.
///
/// # Examples
///
/// ```
/// use ergo_etf::{phash2_32, Term};
/// // `erlang:phash2([], 1 bsl 32)` in Erlang/OTP 25.
/// assert_eq!(phash2_32(&Term::NIL), 3468870702);
/// ```
pub fn phash2_32(term: &Term) -> u32 {
    make_hash2(term)
}

// ------------------------------------------------------------- constants

/// The golden ratio, Jenkins' arbitrary starting value; the other
/// constants are its multiples (`HCONST * k mod 2^32`).
const HCONST: u32 = 0x9e37_79b9;
const fn hconst(k: u32) -> u32 {
    HCONST.wrapping_mul(k)
}
const HCONST_2: u32 = hconst(2);
const HCONST_3: u32 = hconst(3);
const HCONST_4: u32 = hconst(4);
const HCONST_5: u32 = hconst(5);
const HCONST_6: u32 = hconst(6);
const HCONST_7: u32 = hconst(7);
const HCONST_9: u32 = hconst(9);
const HCONST_10: u32 = hconst(10);
const HCONST_11: u32 = hconst(11);
const HCONST_12: u32 = hconst(12);
const HCONST_13: u32 = hconst(13);
const HCONST_14: u32 = hconst(14);
const HCONST_15: u32 = hconst(15);
const HCONST_16: u32 = hconst(16);
const HCONST_19: u32 = hconst(19);

/// The end of every proper list.
static NIL: Term = Term::NIL;

/// What `[]` hashes to when it is the first thing hashed.
const NIL_FIRST: u32 = 3_468_870_702;
/// The value mixed in for `[]` anywhere else (the emulator's type number
/// for nil).
const NIL_TYPE: u32 = 2;

// ------------------------------------------------------------ the mixing

/// Jenkins' mix of three 32-bit words; the result is in `c`.
#[inline]
fn mix(mut a: u32, mut b: u32, c: u32) -> u32 {
    mix_abc(&mut a, &mut b, c)
}

/// Little-endian word of up to four bytes.
#[inline]
fn le_word(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .enumerate()
        .fold(0, |w, (i, &b)| w | (u32::from(b) << (8 * i)))
}

/// Jenkins' `lookup2` block hash of `bytes`, seeded with `init`.
///
/// Erlang passes the length as a 32-bit value; binaries of 4 GiB and more
/// hash their length truncated, as OTP does.
fn block_hash(bytes: &[u8], init: u32) -> u32 {
    let (mut a, mut b, mut c) = (HCONST, HCONST, init);
    let mut chunks = bytes.chunks_exact(12);
    for k in chunks.by_ref() {
        a = a.wrapping_add(le_word(&k[0..4]));
        b = b.wrapping_add(le_word(&k[4..8]));
        c = c.wrapping_add(le_word(&k[8..12]));
        c = mix_abc(&mut a, &mut b, c);
    }
    let rest = chunks.remainder();
    c = c.wrapping_add(bytes.len() as u32);
    // The last block: bytes 0..4 into a, 4..8 into b, 8..11 into c's upper
    // three bytes (its low byte holds the length).
    a = a.wrapping_add(le_word(&rest[..rest.len().min(4)]));
    if rest.len() > 4 {
        b = b.wrapping_add(le_word(&rest[4..rest.len().min(8)]));
    }
    if rest.len() > 8 {
        c = c.wrapping_add(le_word(&rest[8..]) << 8);
    }
    mix(a, b, c)
}

/// [`mix`] that also keeps the new `a` and `b`, as the block hash needs.
#[inline]
fn mix_abc(a: &mut u32, b: &mut u32, mut c: u32) -> u32 {
    let (mut x, mut y) = (*a, *b);
    x = x.wrapping_sub(y).wrapping_sub(c) ^ (c >> 13);
    y = y.wrapping_sub(c).wrapping_sub(x) ^ (x << 8);
    c = c.wrapping_sub(x).wrapping_sub(y) ^ (y >> 13);
    x = x.wrapping_sub(y).wrapping_sub(c) ^ (c >> 12);
    y = y.wrapping_sub(c).wrapping_sub(x) ^ (x << 16);
    c = c.wrapping_sub(x).wrapping_sub(y) ^ (y >> 5);
    x = x.wrapping_sub(y).wrapping_sub(c) ^ (c >> 3);
    y = y.wrapping_sub(c).wrapping_sub(x) ^ (x << 10);
    c = c.wrapping_sub(x).wrapping_sub(y) ^ (y >> 15);
    *a = x;
    *b = y;
    c
}

/// The hash the emulator keeps for an atom: `hashpjw` over its name, where
/// each character below 256 counts as its Latin-1 byte and any other
/// character as the bytes of its UTF-8 form.
fn atom_hash(atom: Atom) -> u32 {
    fn step(h: u32, v: u32) -> u32 {
        let h = (h << 4).wrapping_add(v);
        let g = h & 0xf000_0000;
        if g != 0 { (h ^ (g >> 24)) ^ g } else { h }
    }
    let mut h = 0u32;
    let mut buf = [0u8; 4];
    for ch in atom.as_str().chars() {
        let cp = ch as u32;
        if cp < 256 {
            h = step(h, cp);
        } else {
            for &b in ch.encode_utf8(&mut buf).as_bytes() {
                h = step(h, u32::from(b));
            }
        }
    }
    h
}

// -------------------------------------------------------------- the walk

/// Work left on the explicit stack (the walk never recurses, so that deep
/// terms cannot overflow the call stack).
enum Work<'a> {
    /// A term to hash.
    Term(&'a Term),
    /// The rest of a list: `elems` followed by `tail`.
    List(&'a [Term], &'a Term),
    /// The end of one key-value pair of a map.
    MapPair,
    /// The end of a map: restore the outer state and mix in the pairs.
    MapTail { hash: u32, xor: u32 },
}

/// The whole walk's state.
struct Hasher<'a> {
    hash: u32,
    xor_pairs: u32,
    stack: Vec<Work<'a>>,
}

impl<'a> Hasher<'a> {
    /// Mixes two words into the running hash.
    #[inline]
    fn mix2(&mut self, x: u32, y: u32, k: u32) {
        self.hash = mix(k.wrapping_add(x), k.wrapping_add(y), self.hash);
    }

    /// Mixes one word into the running hash.
    #[inline]
    fn mix1(&mut self, x: u32, k: u32) {
        self.mix2(x, 0, k);
    }

    /// An integer's magnitude in 64-bit digits, least significant first,
    /// with its sign.
    fn big_digits(&mut self, negative: bool, digits: impl Iterator<Item = u64>) {
        let k = if negative { HCONST_10 } else { HCONST_11 };
        for d in digits {
            self.mix2(d as u32, (d >> 32) as u32, k);
        }
    }

    fn int(&mut self, n: i64) {
        if (-(1 << 27)..(1 << 27)).contains(&n) {
            // Fits in 28 signed bits. Negative numbers are mixed twice,
            // first as their magnitude, then as the 32-bit pattern.
            let y = n as i32;
            if y < 0 {
                self.mix1(y.wrapping_neg() as u32, HCONST);
            }
            self.mix1(y as u32, HCONST);
        } else {
            self.big_digits(n < 0, std::iter::once(n.unsigned_abs()));
        }
    }

    fn atom(&mut self, atom: Atom) {
        let h = atom_hash(atom);
        if self.hash == 0 {
            self.hash = h;
        } else {
            self.mix1(h, HCONST_3);
        }
    }

    fn nil(&mut self) {
        if self.hash == 0 {
            self.hash = NIL_FIRST;
        } else {
            self.mix1(NIL_TYPE, HCONST_2);
        }
    }

    /// Bytes and, for a bitstring, the high `bits` bits of `last`.
    fn bits(&mut self, bytes: &[u8], tail: Option<(u8, u8)>) {
        let seed = HCONST_13.wrapping_add(self.hash);
        if bytes.is_empty() && tail.is_none() {
            self.hash = seed;
            return;
        }
        self.hash = block_hash(bytes, seed);
        if let Some((last, bits)) = tail {
            self.mix2(u32::from(bits), u32::from(last >> (8 - bits)), HCONST_15);
        }
    }

    /// A list: runs of bytes (`0..=255`) are packed four to a word; any
    /// other element is hashed as a term, and the list resumes after it.
    fn list(&mut self, mut elems: &'a [Term], mut tail: &'a Term) {
        let (mut packed, mut count) = (0u32, 0u32);
        loop {
            // Step into a tail that is itself a list: Erlang sees only cons
            // cells, so `[1 | [2]]` is `[1, 2]`.
            while elems.is_empty() {
                match tail {
                    Term::List(v) if !v.is_empty() => (elems, tail) = (v, &NIL),
                    Term::ImproperList(v, t) => (elems, tail) = (v, t),
                    _ => break,
                }
            }
            let Some((head, rest)) = elems.split_first() else {
                // All elements done; the tail (`[]` or not a list) follows.
                if count > 0 {
                    self.mix1(packed, HCONST_4);
                }
                self.stack.push(Work::Term(tail));
                return;
            };
            match head {
                Term::Int(b @ 0..=255) => {
                    packed = (packed << 8).wrapping_add(*b as u32);
                    if count == 3 {
                        self.mix1(packed, HCONST_4);
                        (packed, count) = (0, 0);
                    } else {
                        count += 1;
                    }
                    elems = rest;
                }
                _ => {
                    if count > 0 {
                        self.mix1(packed, HCONST_4);
                    }
                    // The rest is a new list (starting a new run of bytes)
                    // or, when no elements are left, the tail itself.
                    if rest.is_empty() {
                        self.stack.push(Work::Term(tail));
                    } else {
                        self.stack.push(Work::List(rest, tail));
                    }
                    self.stack.push(Work::Term(head));
                    return;
                }
            }
        }
    }

    fn map(&mut self, map: &'a Map) {
        self.mix1(map.len() as u32, HCONST_16);
        if map.is_empty() {
            return;
        }
        // Each pair is hashed from zero and the pair hashes are XORed
        // together, so the order of the pairs does not matter.
        self.stack.push(Work::MapTail {
            hash: self.hash,
            xor: self.xor_pairs,
        });
        self.hash = 0;
        self.xor_pairs = 0;
        for (k, v) in map.entries().iter().rev() {
            self.stack.push(Work::MapPair);
            self.stack.push(Work::Term(v));
            self.stack.push(Work::Term(k));
        }
    }

    fn fun(&mut self, fun: &'a Fun) {
        match fun {
            Fun::Export {
                module,
                function,
                arity,
            } => {
                self.mix2(u32::from(*arity), atom_hash(*module), HCONST);
                self.mix1(atom_hash(*function), HCONST_14);
            }
            Fun::Local(f) => {
                self.mix2(f.free.len() as u32, atom_hash(f.module), HCONST);
                // OTP 25 mixes the fun's `Index` (not `OldIndex`) with its
                // `OldUniq`; the random test against `erl` tells them apart.
                self.mix2(f.index, low_word(&f.old_uniq), HCONST);
                for t in f.free.iter().rev() {
                    self.stack.push(Work::Term(t));
                }
            }
        }
    }

    fn term(&mut self, term: &'a Term) {
        match term {
            Term::Int(n) => self.int(*n),
            Term::BigInt(n) => {
                let negative = n.sign() == num_bigint::Sign::Minus;
                self.big_digits(negative, n.iter_u64_digits());
            }
            Term::Float(f) => {
                // -0.0 hashes as 0.0.
                let f = if *f == 0.0 { 0.0f64 } else { *f };
                let bits = f.to_bits();
                self.mix2((bits >> 32) as u32, bits as u32, HCONST_12);
            }
            Term::Atom(a) => self.atom(*a),
            Term::Binary(b) => self.bits(b, None),
            Term::BitBinary(b) => {
                let bytes = b.bytes();
                let (whole, last) = bytes.split_at(bytes.len() - 1);
                self.bits(whole, Some((last[0], b.tail_bits())));
            }
            Term::Pid(p) => self.mix1(p.id, HCONST_5),
            Term::Port(p) => self.mix2(p.id as u32, (p.id >> 32) as u32, HCONST_6),
            Term::Ref(r) => self.mix1(r.ids().first().copied().unwrap_or(0), HCONST_7),
            Term::Tuple(elems) => {
                self.mix1(elems.len() as u32, HCONST_9);
                for t in elems.iter().rev() {
                    self.stack.push(Work::Term(t));
                }
            }
            Term::List(elems) if elems.is_empty() => self.nil(),
            Term::List(elems) => self.list(elems, &NIL),
            Term::ImproperList(elems, tail) => self.list(elems, tail),
            Term::Map(m) => self.map(m),
            Term::Fun(f) => self.fun(f),
        }
    }
}

/// The low 32 bits of an integer term, two's complement (a fun's
/// `OldUniq` is a 32-bit integer on the wire, kept as an unsigned word).
fn low_word(t: &Term) -> u32 {
    match t {
        Term::Int(n) => *n as u32,
        Term::BigInt(n) => n.iter_u32_digits().next().map_or(0, |d| {
            if n.sign() == num_bigint::Sign::Minus {
                d.wrapping_neg()
            } else {
                d
            }
        }),
        _ => 0,
    }
}

/// OTP's `make_hash2`: the full 32-bit portable hash.
fn make_hash2(term: &Term) -> u32 {
    let mut h = Hasher {
        hash: 0,
        xor_pairs: 0,
        stack: Vec::new(),
    };
    h.term(term);
    while let Some(work) = h.stack.pop() {
        match work {
            Work::Term(t) => h.term(t),
            Work::List(elems, tail) => h.list(elems, tail),
            Work::MapPair => {
                h.xor_pairs ^= h.hash;
                h.hash = 0;
            }
            Work::MapTail { hash, xor } => {
                h.hash = hash;
                let pairs = h.xor_pairs;
                h.mix1(pairs, HCONST_19);
                h.xor_pairs = xor;
            }
        }
    }
    h.hash
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::term::{BitBinary, Pid, Ref};
    use num_bigint::BigInt;

    fn a(name: &str) -> Term {
        Term::atom(name)
    }

    fn big(s: &str) -> Term {
        Term::bigint(s.parse::<BigInt>().unwrap())
    }

    fn pow2(n: u32) -> BigInt {
        BigInt::from(1) << n
    }

    fn ints(v: &[i64]) -> Term {
        Term::List(v.iter().map(|&i| Term::Int(i)).collect())
    }

    fn bits(bytes: &[u8], tail: u8) -> Term {
        Term::BitBinary(BitBinary::new(bytes.to_vec(), tail).unwrap())
    }

    fn pid(node: &str, id: u32, serial: u32, creation: u32) -> Term {
        Term::Pid(Pid::new(Atom::from(node), id, serial, creation))
    }

    fn port(node: &str, id: u64, creation: u32) -> Term {
        Term::Port(crate::term::Port {
            node: Atom::from(node),
            id,
            creation,
        })
    }

    fn reference(node: &str, creation: u32, ids: &[u32]) -> Term {
        Term::Ref(Ref::new(Atom::from(node), creation, ids).unwrap())
    }

    fn export(m: &str, f: &str, arity: u8) -> Term {
        Term::Fun(Fun::Export {
            module: Atom::from(m),
            function: Atom::from(f),
            arity,
        })
    }

    /// Each term with `erlang:phash2(T)`, `erlang:phash2(T, 7)` and
    /// `erlang:phash2(T, 1 bsl 32)` as Erlang/OTP 25 (erts-13.1.5, 64-bit)
    /// printed them: the Erlang expression is in the comment. Pids, ports
    /// and references were made with `binary_to_term` of `NEW_PID_EXT`,
    /// `V4_PORT_EXT` and `NEWER_REFERENCE_EXT` with the same parts.
    fn cases() -> Vec<(Term, u32, u32, u32)> {
        vec![
            (Term::Int(0), 88723725, 1, 3175731469),
            (Term::Int(1), 2614250, 6, 539485162),
            (Term::Int(-1), 44071773, 5, 1117813597),
            (Term::Int(255), 44734653, 3, 715823293),
            (Term::Int(256), 37021655, 0, 3929335767),
            (Term::Int(42), 30328728, 1, 701417368),
            // (1 bsl 27) - 1, 1 bsl 27, -(1 bsl 27), -(1 bsl 27) - 1
            (Term::Int((1 << 27) - 1), 112602999, 1, 4273352567),
            (Term::Int(1 << 27), 12354923, 5, 2562491755),
            (Term::Int(-(1 << 27)), 69672967, 6, 874979335),
            (Term::Int(-(1 << 27) - 1), 76739502, 3, 1418916782),
            (Term::Int(1 << 31), 14246037, 1, 2832818325),
            (Term::Int(1 << 32), 95057355, 2, 2108323275),
            // (1 bsl 59) - 1, 1 bsl 59, -(1 bsl 59): the edge of Erlang's
            // small integers
            (Term::Int((1 << 59) - 1), 27520264, 0, 1638133000),
            (Term::Int(1 << 59), 26969617, 0, 2442888721),
            (Term::Int(-(1 << 59)), 35173814, 0, 2316875190),
            (Term::Int(i64::MAX), 28179613, 6, 2712534173),
            (Term::Int(i64::MIN), 126213383, 0, 1736826119),
            (Term::bigint(pow2(64)), 103122609, 6, 2519041713),
            (Term::bigint(-pow2(64)), 13457787, 5, 2563594619),
            (Term::bigint(pow2(100)), 126219984, 5, 528873168),
            // -(1 bsl 100) + 12345
            (Term::bigint(-pow2(100) + 12345), 92423810, 2, 897730178),
            (
                big("123456789012345678901234567890"),
                132143600,
                4,
                3353369072,
            ),
            (Term::Float(0.0), 20875736, 3, 423528920),
            (Term::Float(-0.0), 20875736, 3, 423528920),
            (Term::Float(1.0), 77147068, 6, 3029937084),
            (Term::Float(-1.5), 13753666, 2, 1758584130),
            (Term::Float(std::f64::consts::PI), 93376775, 0, 764465415),
            (Term::Float(1.0e300), 119088650, 4, 387524106),
            (Term::Float(-2.5e-310), 29244813, 0, 2445163917),
            (a("a"), 97, 6, 97),
            (a("ok"), 1883, 0, 1883),
            (a(""), 0, 0, 0),
            (a("hello world"), 18131988, 0, 18131988),
            (a("Elixir.Foo.Bar"), 7285106, 3, 7285106),
            (a("é"), 233, 2, 233),
            (a("λ"), 3483, 4, 3483),
            (a("aλé"), 453273, 2, 453273),
            (a("ÿ€"), 1104588, 2, 1104588),
            (Term::binary(""), 13708901, 4, 147926629),
            (Term::binary("a"), 112802447, 6, 1589197455),
            (Term::binary("hello"), 47480723, 1, 1658093459),
            (Term::binary("hello world!"), 25699699, 4, 965223795),
            (
                Term::binary("0123456789abcdefghijklmnopqrstuvwxyz"),
                91488717,
                2,
                3446931917,
            ),
            // <<1:1>>, <<255, 7:3>>, <<1,2,...,12,13:5>>
            (bits(&[0x80], 1), 102233125, 2, 3994547237),
            (bits(&[255, 7 << 5], 3), 92539843, 1, 2508458947),
            (
                bits(&[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13 << 3], 5),
                17686269,
                5,
                822992637,
            ),
            (Term::NIL, 113427502, 3, 3468870702),
            (Term::list([Term::NIL]), 96416884, 0, 499070068),
            (Term::list([a("a")]), 23864141, 5, 1634476877),
            (Term::charlist("abc"), 117343302, 2, 519996486),
            (Term::charlist("abcd"), 7922743, 2, 1752753207),
            (Term::charlist("abcde"), 71169904, 5, 2487089008),
            (ints(&[1, 2, 300, 4, 5]), 60115805, 3, 328551261),
            (ints(&[256]), 73608398, 1, 1684221134),
            (ints(&[-1]), 42412580, 0, 3800508964),
            // [a | b], [1, 2 | 3], [1, 2 | <<>>]
            (
                Term::list_with_tail(vec![a("a")], a("b")),
                74710280,
                4,
                2356411656,
            ),
            (
                Term::list_with_tail(vec![1.into(), 2.into()], 3.into()),
                8851781,
                4,
                4169601349,
            ),
            (
                Term::list_with_tail(vec![1.into(), 2.into()], Term::binary("")),
                41179575,
                4,
                2054445495,
            ),
            // ["ab", ["cd"]]
            (
                Term::list([Term::charlist("ab"), Term::list([Term::charlist("cd")])]),
                75804821,
                0,
                881111189,
            ),
            (Term::tuple([]), 87486268, 3, 221703996),
            (Term::tuple([a("a")]), 35332806, 5, 2853905094),
            (
                Term::tuple([a("a"), a("b"), a("c")]),
                113425870,
                5,
                113425870,
            ),
            // {1, {2, {3, []}}}
            (
                Term::tuple([
                    1.into(),
                    Term::tuple([2.into(), Term::tuple([3.into(), Term::NIL])]),
                ]),
                39869450,
                2,
                1516264458,
            ),
            (Term::tuple([Term::NIL, Term::NIL]), 23759702, 6, 694848342),
            (Term::map([]), 39679005, 1, 844985373),
            (Term::map([(a("a"), 1.into())]), 59617982, 0, 1401795262),
            (
                Term::map([(a("b"), 2.into()), (a("a"), 1.into())]),
                103634663,
                6,
                1982682855,
            ),
            // #{[] => [], {} => {}}
            (
                Term::map([(Term::NIL, Term::NIL), (Term::tuple([]), Term::tuple([]))]),
                56809607,
                6,
                727898247,
            ),
            // #{1 => #{2 => 3}}
            (
                Term::map([(1.into(), Term::map([(2.into(), 3.into())]))]),
                130277437,
                6,
                4291027005,
            ),
            // maps:from_list([{I, I * I} || I <- lists:seq(1, 40)]): a
            // large (HAMT) map in Erlang
            (
                Term::map((1..=40).rev().map(|i| (Term::Int(i), Term::Int(i * i)))),
                37357662,
                4,
                708446302,
            ),
            // <0.1.0>, <0.32767.8191> (local) and an external pid
            (pid("nonode@nohost", 1, 0, 0), 51930921, 0, 2870503209),
            (
                pid("nonode@nohost", 32767, 8191, 0),
                91982837,
                6,
                3447426037,
            ),
            (pid("a@b", 123456789, 3, 7), 16009648, 5, 150227376),
            (port("nonode@nohost", 5, 0), 125905316, 5, 2004953508),
            (
                port("a@b", 0x0123_4567_89AB_CDEF, 3),
                83677447,
                0,
                1023201543,
            ),
            (
                reference("nonode@nohost", 0, &[1, 2, 3]),
                118531908,
                5,
                118531908,
            ),
            (
                reference("a@b", 2, &[0x3FFFF, 99, 100]),
                23929922,
                3,
                2976719938,
            ),
            (reference("a@b", 2, &[7]), 61647858, 2, 464301042),
            (
                reference("a@b", 1, &[1, 2, 3, 4, 5]),
                118531908,
                5,
                118531908,
            ),
            (export("lists", "map", 2), 34981515, 1, 840287883),
            (export("erlang", "+", 2), 30008331, 2, 835314699),
            (export("λ", "é", 0), 83686051, 3, 4110217891),
            // {ok, [#{<<"k">> => [1.5, -3]}], {'EXIT', self}}
            (
                Term::tuple([
                    a("ok"),
                    Term::list([Term::map([(
                        Term::binary("k"),
                        Term::list([Term::Float(1.5), Term::Int(-3)]),
                    )])]),
                    Term::tuple([a("EXIT"), a("self")]),
                ]),
                48331618,
                4,
                719420258,
            ),
        ]
    }

    #[test]
    fn phash2_matches_values_erlang_printed() {
        for (term, h27, h7, h32) in cases() {
            assert_eq!(phash2(&term), h27, "phash2({term})");
            assert_eq!(phash2_range(&term, 7), Some(h7), "phash2({term}, 7)");
            assert_eq!(phash2_32(&term), h32, "phash2({term}, 1 bsl 32)");
        }
    }

    #[test]
    fn range_zero_is_refused_and_range_one_is_zero() {
        let t = Term::atom("ok");
        assert_eq!(phash2_range(&t, 0), None);
        assert_eq!(phash2_range(&t, 1), Some(0));
        assert_eq!(phash2_range(&t, u32::MAX), Some(phash2_32(&t) % u32::MAX));
    }

    #[test]
    fn map_hash_ignores_pair_order() {
        let pairs: Vec<(Term, Term)> = (0..50)
            .map(|i| (Term::Int(i), Term::tuple([Term::Int(-i), Term::atom("x")])))
            .collect();
        let forward = Term::map(pairs.clone());
        let backward = Term::map(pairs.into_iter().rev());
        assert_eq!(phash2_32(&forward), phash2_32(&backward));
    }

    #[test]
    fn a_list_tail_that_is_a_list_hashes_as_one_list() {
        // Not the canonical form (`list_with_tail` joins them), but the
        // same Erlang term.
        let split = Term::ImproperList(vec![1.into()], Box::new(ints(&[2, 3])));
        assert_eq!(phash2_32(&split), phash2_32(&ints(&[1, 2, 3])));
    }

    #[test]
    fn deep_terms_do_not_overflow_the_stack() {
        let mut t = Term::NIL;
        for _ in 0..200_000 {
            t = Term::tuple([t]);
        }
        let _ = phash2(&t);
        // Dropping a term this deep would itself recurse; leak it.
        std::mem::forget(t);
    }
}
