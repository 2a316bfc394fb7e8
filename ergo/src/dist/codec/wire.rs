//! Distribution frames after the handshake: the atom cache in the
//! distribution header, fragments, and the pass-through form.
//!
//! Every frame is a 4-byte big-endian length and that many bytes; a frame of
//! length zero is a tick. A message frame is one of
//! - `112`, then the control message and the payload, each with its version
//!   byte (peers without `DIST_HDR_ATOM_CACHE`);
//! - `131 68`, a distribution header naming up to 255 atoms of the frame
//!   (new ones with their text, known ones by their slot in the
//!   connection's 2048-entry cache), then the control message and the
//!   payload without version bytes, where `ATOM_CACHE_REF` n means the n-th
//!   atom the header named;
//! - `131 69` and `131 70`, the first and the following fragments of a
//!   message too large for one frame: a sequence id, a fragment id counting
//!   down to 1, and, in the first, the same header as `131 68`.

use bytes::Buf;
use ergo_etf::{
    Atom, AtomCacheWriter, Bytes, DecodeOptions, Decoder, EncodeOptions, Encoder, Pid, Ref, Term,
    tags,
};
use rustc_hash::FxHashMap;

use crate::message::{Direct, Message};
use crate::process::RemoteDecoder;
use crate::process::signal::CallTag;

/// Slots in a connection's atom cache (8 segments of 256).
const CACHE_SLOTS: usize = 2048;
/// The most atoms one header may name.
const MAX_REFS: usize = 255;
/// Messages larger than this are sent in fragments of this size. A
/// message's fragments are queued together (nothing is sent between them),
/// so their size only bounds the frames the peer must take whole: large
/// ones cost the reader fewer system calls (a 1 MB call took 330 µs with
/// 64 KiB fragments, 290 µs with 256 KiB and 250 µs whole).
pub(crate) const FRAGMENT_SIZE: usize = 1024 * 1024;

/// Why a frame could not be read. The connection is closed on any of them.
#[derive(Debug)]
pub(crate) struct WireError(pub(crate) String);

impl std::fmt::Display for WireError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

fn bad(s: impl Into<String>) -> WireError {
    WireError(s.into())
}

/// The sending side's cache: which atom sits in each slot, as the peer
/// will know it after reading our headers, and which slots the frame being
/// written names already.
pub(crate) struct OutCache {
    slots: Box<[Slot]>,
    /// The atoms the frame being written names, in header order: the slot,
    /// and whether the header must carry its text.
    frame: Vec<(Atom, u16, bool)>,
    /// Counts frames: a slot whose `frame` equals it was named by the
    /// frame being written, as header entry `entry`.
    generation: u32,
    /// An atom of the frame is longer than 255 bytes.
    long: bool,
    /// The frame names an atom the peer does not hold yet.
    any_new: bool,
}

/// One slot of [`OutCache`].
#[derive(Clone, Copy)]
struct Slot {
    atom: Option<Atom>,
    /// The generation of the frame that last named this slot.
    frame: u32,
    /// Its header entry in that frame.
    entry: u8,
}

impl OutCache {
    pub(crate) fn new() -> OutCache {
        let empty = Slot {
            atom: None,
            frame: 0,
            entry: 0,
        };
        OutCache {
            slots: vec![empty; CACHE_SLOTS].into_boxed_slice(),
            frame: Vec::new(),
            generation: 1,
            long: false,
            any_new: false,
        }
    }

    fn start_frame(&mut self) {
        self.frame.clear();
        self.long = false;
        self.any_new = false;
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            // Once in four billion frames: no slot may look named by the
            // new frame.
            self.slots.iter_mut().for_each(|s| s.frame = 0);
            self.generation = 1;
        }
    }

    /// Appends the header's part after `131 68` (or after the fragment ids
    /// of `131 69`): the count, the flag nibbles and the references.
    fn write_header(&self, out: &mut Vec<u8>) {
        let n = self.frame.len();
        out.push(n as u8);
        if n == 0 {
            return;
        }
        if !self.any_new && n <= 32 {
            // Only references to atoms the peer holds: the flags and the
            // slots, in one piece.
            let mut b = [0u8; 16 + 1 + 32];
            for (k, pair) in self.frame.chunks(2).enumerate() {
                let high = pair.get(1).map_or(0, |e| (e.1 >> 8) as u8 & 0x7);
                b[k] = (pair[0].1 >> 8) as u8 & 0x7 | high << 4;
            }
            let mut at = n / 2 + 1;
            for e in &self.frame {
                b[at] = e.1 as u8;
                at += 1;
            }
            out.extend_from_slice(&b[..at]);
            return;
        }
        let nibble = |&(_, slot, new): &(Atom, u16, bool)| {
            ((slot >> 8) as u8 & 0x7) | if new { 0x8 } else { 0 }
        };
        for pair in self.frame.chunks(2) {
            let low = nibble(&pair[0]);
            let high = pair.get(1).map_or(0, nibble);
            out.push(low | high << 4);
        }
        // The flag of the whole header sits in the nibble after the
        // atoms': a byte of its own when their count is even.
        let long = u8::from(self.long);
        if n.is_multiple_of(2) {
            out.push(long);
        } else if let Some(last) = out.last_mut() {
            *last |= long << 4;
        }
        if !self.any_new {
            out.extend(self.frame.iter().map(|e| e.1 as u8));
            return;
        }
        for (atom, slot, new) in &self.frame {
            out.push(*slot as u8);
            if *new {
                let text = atom.as_str().as_bytes();
                if self.long {
                    out.extend_from_slice(&(text.len() as u16).to_be_bytes());
                } else {
                    out.push(text.len() as u8);
                }
                out.extend_from_slice(text);
            }
        }
    }
}

impl AtomCacheWriter for OutCache {
    fn reference(&mut self, atom: Atom) -> Option<u8> {
        self.entry(atom)
    }
}

impl OutCache {
    /// The header entry that names `atom` in the frame being written
    /// (adding one if needed), or `None` when the header is full.
    #[inline]
    fn entry(&mut self, atom: Atom) -> Option<u8> {
        // Spread atoms over the slots by their (interned) index.
        let at = (atom.index().wrapping_mul(2_654_435_761) >> 21) as usize % CACHE_SLOTS;
        let slot = &mut self.slots[at];
        if slot.frame == self.generation && slot.atom == Some(atom) {
            return Some(slot.entry);
        }
        if self.frame.len() == MAX_REFS {
            return None;
        }
        // First named in this frame (or its slot was taken by another atom
        // of the frame since, which then costs a second header entry).
        let new = slot.atom != Some(atom);
        if new {
            self.any_new = true;
            self.long |= atom.as_str().len() > 255;
        }
        let entry = self.frame.len() as u8;
        *slot = Slot {
            atom: Some(atom),
            frame: self.generation,
            entry,
        };
        self.frame.push((atom, at as u16, new));
        Some(entry)
    }
}

/// Binaries at least this large are not copied into frames: the frames
/// refer to them and leave with a vectored write.
const SHARE_MIN: usize = 16 * 1024;
/// Bytes the socket reader may read past a fragment's data into its
/// message's buffer: the next frame's length and fragment header.
pub(crate) const PEEK: usize = 4 + 18;
/// The most slices one vectored write takes.
const MAX_SLICES: usize = 64;

/// Bytes waiting for the socket: frames, with large binaries held by
/// reference. `shared[i]`'s bytes go where its offset into `bytes` says.
#[derive(Default)]
pub(crate) struct OutBuf {
    bytes: Vec<u8>,
    /// `bytes[..start]` has been written.
    start: usize,
    shared: Vec<(usize, Bytes)>,
    /// `shared[..first]` has been written.
    first: usize,
    /// Bytes in `shared[first..]`.
    shared_len: usize,
}

impl OutBuf {
    /// Bytes not yet written.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len() - self.start + self.shared_len
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends bytes (copied).
    pub(crate) fn push_bytes(&mut self, b: &[u8]) {
        self.bytes.extend_from_slice(b);
    }

    /// Appends bytes by reference.
    fn push_shared(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.shared_len += b.len();
            self.shared.push((self.bytes.len(), b));
        }
    }

    /// Forgets everything, keeping the allocation.
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.start = 0;
        self.shared.clear();
        self.first = 0;
        self.shared_len = 0;
    }

    /// The size of the allocation for copied bytes.
    pub(crate) fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Drops the first `n` bytes (the socket took them).
    pub(crate) fn advance(&mut self, mut n: usize) {
        debug_assert!(n <= self.len());
        while n > 0 {
            let hole = self
                .shared
                .get(self.first)
                .map_or(self.bytes.len(), |h| h.0);
            let inline = hole - self.start;
            if n <= inline {
                self.start += n;
                break;
            }
            self.start = hole;
            n -= inline;
            let b = &mut self.shared[self.first].1;
            if n < b.len() {
                b.advance(n);
                self.shared_len -= n;
                break;
            }
            n -= b.len();
            self.shared_len -= b.len();
            self.first += 1;
        }
        if self.is_empty() {
            self.clear();
        }
    }

    /// Moves everything in `other` to the end of `self`.
    pub(crate) fn append(&mut self, other: &mut OutBuf) {
        if self.start > 0 || self.first > 0 {
            // Drop what was written first.
            self.bytes.drain(..self.start);
            self.shared.drain(..self.first);
            for (at, _) in &mut self.shared {
                *at -= self.start;
            }
            self.start = 0;
            self.first = 0;
        }
        let base = self.bytes.len();
        for (at, b) in other.shared.drain(other.first..) {
            self.shared.push((at - other.start + base, b));
        }
        self.shared_len += other.shared_len;
        self.bytes.extend_from_slice(&other.bytes[other.start..]);
        other.clear();
    }

    /// The bytes to write next, when they are all in one piece.
    pub(crate) fn contiguous(&self) -> Option<&[u8]> {
        (self.first == self.shared.len()).then(|| &self.bytes[self.start..])
    }

    /// Fills `slices` with the bytes to write next, in order; returns how
    /// many it filled.
    pub(crate) fn slices<'a>(&'a self, slices: &mut [std::io::IoSlice<'a>]) -> usize {
        let mut n = 0;
        let mut at = self.start;
        for (hole, b) in &self.shared[self.first..] {
            if n + 2 > slices.len() {
                return n;
            }
            if *hole > at {
                slices[n] = std::io::IoSlice::new(&self.bytes[at..*hole]);
                n += 1;
            }
            slices[n] = std::io::IoSlice::new(b);
            n += 1;
            at = *hole;
        }
        if at < self.bytes.len() && n < slices.len() {
            slices[n] = std::io::IoSlice::new(&self.bytes[at..]);
            n += 1;
        }
        n
    }

    /// Writes as much as `write` takes of the bytes to write next, with one
    /// call of `write_one` (contiguous) or `write_many` (vectored).
    pub(crate) fn write_with(
        &self,
        write_one: impl FnOnce(&[u8]) -> std::io::Result<usize>,
        write_many: impl FnOnce(&[std::io::IoSlice<'_>]) -> std::io::Result<usize>,
    ) -> std::io::Result<usize> {
        if let Some(b) = self.contiguous() {
            return write_one(b);
        }
        let mut slices = [std::io::IoSlice::new(&[]); MAX_SLICES];
        let n = self.slices(&mut slices);
        write_many(&slices[..n])
    }

    /// Appends bytes `from..to` of a body held as `body` with `holes`.
    fn push_range(&mut self, body: &[u8], holes: &[(usize, Bytes)], from: usize, to: usize) {
        if holes.is_empty() {
            self.push_bytes(&body[from..to]);
            return;
        }
        let mut at = 0; // where the next piece starts in the whole
        let mut inline = 0; // where it starts in `body`
        let pieces = holes.iter().map(|(h, b)| (*h, Some(b)));
        for (hole, shared) in pieces.chain(std::iter::once((body.len(), None))) {
            let len = hole - inline;
            let (a, b) = (from.max(at), to.min(at + len));
            if a < b {
                self.push_bytes(&body[inline + a - at..inline + b - at]);
            }
            at += len;
            inline = hole;
            if let Some(shared) = shared {
                let (a, b) = (from.max(at), to.min(at + shared.len()));
                if a < b {
                    self.push_shared(shared.slice(a - at..b - at));
                }
                at += shared.len();
            }
            if at >= to {
                break;
            }
        }
    }

    /// Everything not yet written, in one piece.
    #[cfg(test)]
    pub(crate) fn to_vec(&self) -> Vec<u8> {
        let mut v = Vec::new();
        let mut at = self.start;
        for (hole, b) in &self.shared[self.first..] {
            v.extend_from_slice(&self.bytes[at..*hole]);
            v.extend_from_slice(b);
            at = *hole;
        }
        v.extend_from_slice(&self.bytes[at..]);
        v
    }
}

/// How we write frames to one peer.
pub(crate) struct Writer {
    cache: Option<OutCache>,
    fragments: bool,
    next_sequence: u64,
    body: Vec<u8>,
    holes: Vec<(usize, Bytes)>,
}

impl Writer {
    /// A writer for a peer with these flags.
    pub(crate) fn new(peer_flags: u64) -> Writer {
        use crate::dist::handshake::flags;
        Writer {
            cache: (peer_flags & flags::DIST_HDR_ATOM_CACHE != 0).then(OutCache::new),
            fragments: peer_flags & flags::FRAGMENTS != 0,
            next_sequence: 1,
            body: Vec::new(),
            holes: Vec::new(),
        }
    }

    /// Appends the frame(s) carrying the control message whose elements
    /// are `control`, and `payload`, to `out`, each with its length.
    pub(crate) fn write(
        &mut self,
        control: Ctl<'_>,
        payload: Option<Payload<'_>>,
        out: &mut OutBuf,
    ) {
        let opts = EncodeOptions::new().minor_version(2);
        let Some(cache) = self.cache.as_mut() else {
            // Pass-through: each term with its version byte.
            let start = out.bytes.len();
            let first_hole = out.shared.len();
            out.bytes.extend_from_slice(&[0, 0, 0, 0, 112, 131]);
            {
                let mut enc =
                    Encoder::new(&mut out.bytes, &opts).share_binaries(SHARE_MIN, &mut out.shared);
                write_control(&mut enc, control);
                if let Some(p) = payload {
                    enc.write_raw(&[131]);
                    p.write(&mut enc);
                }
            }
            let shared: usize = out.shared[first_hole..].iter().map(|(_, b)| b.len()).sum();
            out.shared_len += shared;
            let len = (out.bytes.len() - start - 4 + shared) as u32;
            out.bytes[start..start + 4].copy_from_slice(&len.to_be_bytes());
            return;
        };
        cache.start_frame();
        self.body.clear();
        self.holes.clear();
        {
            let fixed = write_fixed(&mut self.body, cache, control, payload);
            let mut enc = Encoder::new(&mut self.body, &opts)
                .with_atom_cache(cache)
                .share_binaries(SHARE_MIN, &mut self.holes);
            match fixed {
                Some(rest) => match rest {
                    Some(Rest::Term(t)) => enc.write_term(t),
                    Some(Rest::Of(v)) => v.write_term(&mut enc),
                    None => {}
                },
                None => {
                    write_control(&mut enc, control);
                    if let Some(p) = payload {
                        p.write(&mut enc);
                    }
                }
            }
        }
        let total = self.body.len() + self.holes.iter().map(|(_, b)| b.len()).sum::<usize>();
        if !self.fragments || total <= FRAGMENT_SIZE {
            let start = out.bytes.len();
            out.bytes.extend_from_slice(&[0, 0, 0, 0, 131, 68]);
            cache.write_header(&mut out.bytes);
            let len = (out.bytes.len() - start - 4 + total) as u32;
            out.bytes[start..start + 4].copy_from_slice(&len.to_be_bytes());
            out.push_range(&self.body, &self.holes, 0, total);
            return;
        }
        let sequence = self.next_sequence;
        self.next_sequence += 1;
        let count = total.div_ceil(FRAGMENT_SIZE) as u64;
        for i in 0..count {
            let from = i as usize * FRAGMENT_SIZE;
            let to = (from + FRAGMENT_SIZE).min(total);
            let start = out.bytes.len();
            out.bytes
                .extend_from_slice(&[0, 0, 0, 0, 131, if i == 0 { 69 } else { 70 }]);
            out.bytes.extend_from_slice(&sequence.to_be_bytes());
            out.bytes.extend_from_slice(&(count - i).to_be_bytes());
            if i == 0 {
                cache.write_header(&mut out.bytes);
            }
            let len = (out.bytes.len() - start - 4 + to - from) as u32;
            out.bytes[start..start + 4].copy_from_slice(&len.to_be_bytes());
            out.push_range(&self.body, &self.holes, from, to);
        }
    }
}

/// A message's payload: a term, or one of the tuples calls are made of,
/// given by its parts (so that no tuple is built to be written).
#[derive(Clone, Copy, Debug)]
pub(crate) enum Payload<'a> {
    Term(&'a Term),
    /// `{'$gen_call', {From, Tag}, Request}`, a `gen_server` call.
    Call {
        from: Pid,
        tag: CallTag,
        request: &'a Term,
    },
    /// `{Tag, Reply}`, a `gen_server` reply.
    Reply {
        tag: &'a Term,
        reply: &'a Term,
    },
    /// `{Tag, Reply}` with a call's tag.
    CallReply {
        tag: CallTag,
        reply: &'a Term,
    },
    /// `{'$gen_call', {From, Tag}, Request}` with a request that writes
    /// its own term (a typed request, or a borrowed term), so that none
    /// is built for it.
    CallOf {
        from: Pid,
        tag: CallTag,
        request: &'a dyn WriteTerm,
    },
    /// A payload encoded already ([`Payload::encode_alone`]).
    Encoded(&'a [u8]),
    /// A local value whose type writes its term without building it.
    Direct(Direct<'a>),
}

/// A value that writes its own term: any [`ergo_etf::ToTerm`] whose type
/// writes directly, behind a reference a payload can hold.
pub(crate) trait WriteTerm {
    /// Writes the value's term.
    fn write_term(&self, enc: &mut Encoder<'_>);
    /// The value's term, built.
    fn to_term(&self) -> Term;
    /// Whether the term is made of more than `limit` terms.
    fn count_past(&self, limit: usize) -> bool;
}

impl<T: ergo_etf::ToTerm + ?Sized> WriteTerm for T {
    fn write_term(&self, enc: &mut Encoder<'_>) {
        self.write_term_to(enc)
    }

    fn to_term(&self) -> Term {
        ergo_etf::ToTerm::to_term(self)
    }

    fn count_past(&self, limit: usize) -> bool {
        self.term_count_past(limit)
    }
}

impl std::fmt::Debug for dyn WriteTerm + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_term())
    }
}

/// A payload of more terms than this is encoded before the connection is
/// locked (binaries count as one: they are referred to, not copied).
const LARGE_TERMS: usize = 4096;

/// Counts the terms of `t` into `n`; `true` once past [`LARGE_TERMS`].
fn past_large(t: &Term, n: &mut usize) -> bool {
    t.count_terms_past(LARGE_TERMS, n)
}

impl<'a> From<&'a Term> for Payload<'a> {
    fn from(t: &'a Term) -> Payload<'a> {
        Payload::Term(t)
    }
}

impl Payload<'_> {
    /// The payload as one term.
    pub(crate) fn to_term(self) -> Term {
        match self {
            Payload::Term(t) => t.clone(),
            Payload::Call { from, tag, request } => Term::tuple([
                Term::Atom(Atom::GEN_CALL),
                Term::tuple([Term::Pid(from), tag.to_term()]),
                request.clone(),
            ]),
            Payload::CallOf { from, tag, request } => Term::tuple([
                Term::Atom(Atom::GEN_CALL),
                Term::tuple([Term::Pid(from), tag.to_term()]),
                request.to_term(),
            ]),
            Payload::Reply { tag, reply } => Term::tuple([tag.clone(), reply.clone()]),
            Payload::CallReply { tag, reply } => Term::tuple([tag.to_term(), reply.clone()]),
            Payload::Encoded(bytes) => Decoder::new(bytes, &DecodeOptions::new())
                .read_term()
                .unwrap_or(Term::NIL),
            Payload::Direct(d) => d.to_term(),
        }
    }

    /// Whether encoding this payload is long work (many terms), best done
    /// before the connection is locked ([`Payload::encode_alone`]).
    pub(crate) fn is_large(self) -> bool {
        let mut n = 0;
        match self {
            Payload::Term(t) => past_large(t, &mut n),
            Payload::Call { request, .. } => past_large(request, &mut n),
            Payload::CallOf { request, .. } => request.count_past(LARGE_TERMS),
            Payload::Reply { reply, .. } | Payload::CallReply { reply, .. } => {
                past_large(reply, &mut n)
            }
            Payload::Encoded(_) => false,
            Payload::Direct(d) => d.term_count() > LARGE_TERMS,
        }
    }

    /// The payload encoded on its own, its atoms written out (no atom
    /// cache), for [`Payload::Encoded`].
    pub(crate) fn encode_alone(self) -> Vec<u8> {
        let opts = EncodeOptions::new().minor_version(2);
        let mut v = Vec::new();
        self.write(&mut Encoder::new(&mut v, &opts));
        v
    }

    fn write(self, enc: &mut Encoder<'_>) {
        match self {
            Payload::Term(t) => enc.write_term(t),
            Payload::Call { from, tag, request } => {
                write_envelope(enc, &from, &tag);
                enc.write_term(request);
            }
            Payload::CallOf { from, tag, request } => {
                write_envelope(enc, &from, &tag);
                request.write_term(enc);
            }
            Payload::Reply { tag, reply } => {
                enc.write_tuple_header(2);
                enc.write_term(tag);
                enc.write_term(reply);
            }
            Payload::CallReply { tag, reply } => {
                enc.write_tuple_header(2);
                enc.tag(&tag);
                enc.write_term(reply);
            }
            Payload::Encoded(bytes) => enc.write_raw(bytes),
            Payload::Direct(d) => d.write(enc),
        }
    }
}

/// A control message to send: the kinds every call and message uses by
/// their fields (written without building terms), any other as its
/// elements.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Ctl<'a> {
    /// `{22, From, To}`: a message to a pid.
    SendSender { from: Pid, to: Pid },
    /// `{6, From, '', Name}`: a message to a registered name.
    RegSend { from: Pid, name: Atom },
    /// `{33, From, Alias}`: a message to a process alias.
    AliasSend { from: Pid, alias: Ref },
    /// `{Op, From, To, Ref}`: `MONITOR_P` or `DEMONITOR_P`, which `op` is.
    Monitor {
        op: u8,
        from: Pid,
        to: ProcId,
        reference: Ref,
    },
    /// Any control message, as its elements.
    Terms(&'a [Term]),
}

impl<'a> From<&'a [Term]> for Ctl<'a> {
    fn from(t: &'a [Term]) -> Ctl<'a> {
        Ctl::Terms(t)
    }
}

impl<'a, const N: usize> From<&'a [Term; N]> for Ctl<'a> {
    fn from(t: &'a [Term; N]) -> Ctl<'a> {
        Ctl::Terms(t)
    }
}

impl Ctl<'_> {
    /// The control message's elements.
    pub(crate) fn to_terms(self) -> Vec<Term> {
        let proc_ = |p: ProcId| match p {
            ProcId::Pid(p) => Term::Pid(p),
            ProcId::Name(n) => Term::Atom(n),
        };
        match self {
            Ctl::SendSender { from, to } => {
                vec![
                    Term::Int(crate::dist::codec::SEND_SENDER),
                    Term::Pid(from),
                    Term::Pid(to),
                ]
            }
            Ctl::RegSend { from, name } => vec![
                Term::Int(crate::dist::codec::REG_SEND),
                Term::Pid(from),
                Term::Atom(Atom::EMPTY),
                Term::Atom(name),
            ],
            Ctl::AliasSend { from, alias } => vec![
                Term::Int(crate::dist::codec::ALIAS_SEND),
                Term::Pid(from),
                Term::Ref(alias),
            ],
            Ctl::Monitor {
                op,
                from,
                to,
                reference,
            } => vec![
                Term::Int(op.into()),
                Term::Pid(from),
                proc_(to),
                Term::Ref(reference),
            ],
            Ctl::Terms(t) => t.to_vec(),
        }
    }
}

/// The most atoms [`write_fixed`] names in one message.
const FIXED_ATOMS: usize = 8;

/// The fixed-shape start of a frequent message, built on the stack: every
/// atom is a two-byte cache reference, so each part has a known size.
struct Fixed<'c> {
    b: [u8; 128],
    n: usize,
    cache: &'c mut OutCache,
}

impl Fixed<'_> {
    #[inline(always)]
    fn put(&mut self, s: &[u8]) {
        self.b[self.n..self.n + s.len()].copy_from_slice(s);
        self.n += s.len();
    }
}

/// What the typed control messages and the call and reply envelopes are
/// written with: the encoder, or [`Fixed`]. [`write_typed`] and
/// [`write_envelope`] give the layout once for both.
trait Shape {
    fn tuple(&mut self, arity: u8);
    /// An integer from 0 to 255.
    fn byte(&mut self, v: u8);
    fn atom(&mut self, a: Atom);
    fn pid(&mut self, p: &Pid);
    fn reference(&mut self, r: &Ref);
    /// `[alias | Ref]`'s start: a list of one element, the atom `alias`,
    /// whose tail (the reference) follows.
    fn alias_head(&mut self);
    /// A call's tag.
    #[inline(always)]
    fn tag(&mut self, t: &CallTag) {
        match t {
            CallTag::Ref(r) => self.reference(r),
            CallTag::Alias(r) => {
                self.alias_head();
                self.reference(r);
            }
        }
    }
}

impl Shape for Encoder<'_> {
    fn tuple(&mut self, arity: u8) {
        self.write_tuple_header(arity.into());
    }
    fn byte(&mut self, v: u8) {
        self.write_i64(v.into());
    }
    fn atom(&mut self, a: Atom) {
        self.write_atom(a);
    }
    fn pid(&mut self, p: &Pid) {
        self.write_pid(p);
    }
    fn reference(&mut self, r: &Ref) {
        self.write_ref(r);
    }
    fn alias_head(&mut self) {
        self.write_list_header(1);
        self.write_atom(Atom::ALIAS);
    }
}

impl Shape for Fixed<'_> {
    #[inline(always)]
    fn tuple(&mut self, arity: u8) {
        self.put(&[tags::SMALL_TUPLE, arity]);
    }

    #[inline(always)]
    fn byte(&mut self, v: u8) {
        self.put(&[tags::SMALL_INTEGER, v]);
    }

    #[inline(always)]
    fn atom(&mut self, a: Atom) {
        let i = self
            .cache
            .entry(a)
            .expect("a frame's header has room for the atoms of its start");
        self.put(&[tags::ATOM_CACHE_REF, i]);
    }

    #[inline(always)]
    fn pid(&mut self, p: &Pid) {
        self.put(&[tags::NEW_PID]);
        self.atom(p.node);
        let mut w = [0u8; 12];
        w[..4].copy_from_slice(&p.id.to_be_bytes());
        w[4..8].copy_from_slice(&p.serial.to_be_bytes());
        w[8..].copy_from_slice(&p.creation.to_be_bytes());
        self.put(&w);
    }

    #[inline(always)]
    fn reference(&mut self, r: &Ref) {
        let ids = r.ids();
        self.put(&[tags::NEWER_REFERENCE, 0, ids.len() as u8]);
        self.atom(r.node);
        self.put(&r.creation.to_be_bytes());
        for id in ids {
            self.put(&id.to_be_bytes());
        }
    }

    #[inline(always)]
    fn alias_head(&mut self) {
        self.put(&[tags::LIST, 0, 0, 0, 1]);
        self.atom(Atom::ALIAS);
    }
}

/// Writes a control message [`Ctl`] has fields for; `false`, having
/// written nothing, for [`Ctl::Terms`].
#[inline(always)]
fn write_typed(s: &mut impl Shape, control: Ctl<'_>) -> bool {
    use crate::dist::codec as op;
    match control {
        Ctl::SendSender { from, to } => {
            s.tuple(3);
            s.byte(op::SEND_SENDER as u8);
            s.pid(&from);
            s.pid(&to);
        }
        Ctl::RegSend { from, name } => {
            s.tuple(4);
            s.byte(op::REG_SEND as u8);
            s.pid(&from);
            s.atom(Atom::EMPTY);
            s.atom(name);
        }
        Ctl::AliasSend { from, alias } => {
            s.tuple(3);
            s.byte(op::ALIAS_SEND as u8);
            s.pid(&from);
            s.reference(&alias);
        }
        Ctl::Monitor {
            op,
            from,
            to,
            reference,
        } => {
            s.tuple(4);
            s.byte(op);
            s.pid(&from);
            match to {
                ProcId::Pid(p) => s.pid(&p),
                ProcId::Name(n) => s.atom(n),
            }
            s.reference(&reference);
        }
        Ctl::Terms(_) => return false,
    }
    true
}

/// Writes the start of a call's payload, `{'$gen_call', {From, Tag}, `,
/// the request to follow.
#[inline(always)]
fn write_envelope(s: &mut impl Shape, from: &Pid, tag: &CallTag) {
    s.tuple(3);
    s.atom(Atom::GEN_CALL);
    s.tuple(2);
    s.pid(from);
    s.tag(tag);
}

/// Writes the typed control message and the envelope of a call or reply
/// payload straight into `body`, without the encoder. Gives what is left
/// to write (the payload term, or the request or reply inside the
/// envelope), or `None`, having written nothing, for the messages it does
/// not cover (which [`write_control`] and [`Payload::write`] then write in
/// full). The bytes are the ones the encoder writes.
fn write_fixed<'p>(
    body: &mut Vec<u8>,
    cache: &mut OutCache,
    control: Ctl<'_>,
    payload: Option<Payload<'p>>,
) -> Option<Option<Rest<'p>>> {
    // A frame's header names at most MAX_REFS atoms; this one has only
    // begun.
    debug_assert!(cache.frame.len() + FIXED_ATOMS <= MAX_REFS);
    if matches!(control, Ctl::Terms(_)) {
        return None;
    }
    let rest = match payload {
        None => None,
        Some(Payload::Term(t)) => Some(Rest::Term(t)),
        Some(Payload::Call { request, .. }) => Some(Rest::Term(request)),
        Some(Payload::CallOf { request, .. }) => Some(Rest::Of(request)),
        Some(Payload::Reply { tag, reply }) => match CallTag::of(tag) {
            Some(_) => Some(Rest::Term(reply)),
            None => return None,
        },
        Some(Payload::CallReply { reply, .. }) => Some(Rest::Term(reply)),
        Some(Payload::Encoded(_) | Payload::Direct(_)) => return None,
    };
    let mut f = Fixed {
        b: [0; 128],
        n: 0,
        cache,
    };
    if !write_typed(&mut f, control) {
        return None;
    }
    match payload {
        Some(Payload::Call { from, tag, .. } | Payload::CallOf { from, tag, .. }) => {
            write_envelope(&mut f, &from, &tag)
        }
        Some(Payload::Reply { tag, .. }) => {
            if let Some(t) = CallTag::of(tag) {
                f.tuple(2);
                f.tag(&t);
            }
        }
        Some(Payload::CallReply { tag, .. }) => {
            f.tuple(2);
            f.tag(&tag);
        }
        _ => {}
    }
    body.extend_from_slice(&f.b[..f.n]);
    Some(rest)
}

/// What follows the part of a frame [`write_fixed`] wrote: a term, or a
/// value that writes its own.
#[derive(Clone, Copy)]
enum Rest<'a> {
    Term(&'a Term),
    Of(&'a dyn WriteTerm),
}

/// Writes a control message.
fn write_control(enc: &mut Encoder<'_>, control: Ctl<'_>) {
    match control {
        Ctl::Terms(elements) => {
            enc.write_tuple_header(elements.len());
            for t in elements {
                enc.write_term(t);
            }
        }
        typed => {
            write_typed(enc, typed);
        }
    }
}

/// A header refers to a cache slot that no earlier header filled.
#[cold]
fn empty_slot(slot: usize) -> WireError {
    bad(format!(
        "the header refers to atom cache slot {slot}, which holds nothing"
    ))
}

/// A message put together from fragments so far.
struct Partial {
    atoms: Vec<Atom>,
    /// The message's bytes: `filled` of them have arrived. Made ahead
    /// (zeroed) to the size the first fragment claims, or, where that
    /// claim was not taken, grown as the fragments come (then `filled` is
    /// its length).
    body: Vec<u8>,
    /// Where in `body` the message starts (past the first frame's header,
    /// where that frame was received into `body`).
    start: usize,
    filled: usize,
    next_id: u64,
}

/// Where a following fragment's data goes (see
/// [`Reader::fragment_buffer`]).
pub(crate) enum FragmentRoom<'a> {
    /// Appended to the message's buffer, which grows as the data comes.
    Append(&'a mut Vec<u8>),
    /// Written over the start of the part of the message's buffer made
    /// ahead, the data and nothing else (what lies past it may take the
    /// bytes a read brings along with the data, which are not the
    /// message's).
    Fill(&'a mut [u8]),
}

impl FragmentRoom<'_> {
    /// Puts `data`, all of the fragment's, in its place.
    pub(crate) fn put(self, data: &[u8]) {
        match self {
            FragmentRoom::Append(v) => v.extend_from_slice(data),
            FragmentRoom::Fill(s) => s[..data.len()].copy_from_slice(data),
        }
    }
}

/// Messages a peer may have being put together from fragments at once,
/// by default.
pub(crate) const DEFAULT_MAX_FRAGMENTED: usize = 1024;
/// Atoms one peer may add to the atom table, by default.
pub(crate) const DEFAULT_MAX_NEW_ATOMS: usize = 100_000;
/// Atoms from the wire are made only while the table holds fewer than
/// this: the last 65,536 entries stay for the program and for the names
/// of nodes that connect.
pub(crate) const WIRE_ATOM_LIMIT: usize = ergo_etf::ATOM_LIMIT - (1 << 16);

/// How we read frames from one peer.
pub(crate) struct Reader {
    slots: Box<[Option<Atom>; CACHE_SLOTS]>,
    partial: FxHashMap<u64, Partial>,
    /// Bytes held in `partial`, bounded by `max_message`.
    held: usize,
    /// Bytes of `partial`'s buffers made ahead of the data: a buffer is
    /// made ahead only while, with `held`, it fits in `max_message`.
    ahead: usize,
    max_message: usize,
    /// Messages being put together from fragments at once, at most.
    max_fragmented: usize,
    /// Atoms this peer may add to the atom table, at most.
    max_new_atoms: usize,
    /// Atoms this peer has added so far.
    new_atoms: usize,
    opts: DecodeOptions,
    /// The atoms of the frame being read (kept for the next frame).
    atoms: Vec<Atom>,
    /// A control message's element vector given back (see
    /// [`Reader::done`]), for the next message.
    spare: Vec<Term>,
    /// The message read last: read in place and handed out by reference,
    /// so that it is not moved on its way.
    msg: Incoming,
    /// Finds the decoder of a process that reads its messages from other
    /// nodes itself (see [`RemoteDecoder`]).
    finder: Option<DecoderFinder>,
}

/// Finds, for the process a message is sent to, the decoder it reads its
/// payload with, if it has one.
pub(crate) type DecoderFinder = Box<dyn Fn(Pid) -> Option<RemoteDecoder> + Send>;

/// A whole message read from a frame.
#[derive(Debug)]
pub(crate) struct Incoming {
    pub(crate) control: Control,
    /// The payload; for a reply read as `{Tag, Reply}` in the shape calls
    /// make (see `reply_tag`), the reply alone.
    pub(crate) payload: Option<Term>,
    /// The tag of a payload `{Tag, Reply}` whose tag is a reference or
    /// `[alias | Ref]`: kept apart so that a reply handed straight to its
    /// call builds no tuple.
    pub(crate) reply_tag: Option<CallTag>,
    /// The caller and tag of a payload `{'$gen_call', {From, Tag}, Request}`
    /// whose tag is a reference or `[alias | Ref]`, the payload being the
    /// request alone: kept apart so that a call taken apart by its server
    /// builds no tuple.
    pub(crate) call: Option<(Pid, CallTag)>,
    /// The payload as its addressee's [`RemoteDecoder`] read it (`payload`
    /// is then `None`).
    pub(crate) typed: Option<Message>,
}

impl Incoming {
    /// The whole payload, as it was sent.
    pub(crate) fn take_payload(&mut self) -> Option<Term> {
        let p = self.payload.take()?;
        if let Some((from, tag)) = self.call.take() {
            return Some(call_term(from, tag, p));
        }
        Some(match self.reply_tag.take() {
            Some(tag) => Term::Tuple(vec![tag.to_term(), p]),
            None => p,
        })
    }
}

/// `{'$gen_call', {From, Tag}, Request}`.
pub(crate) fn call_term(from: Pid, tag: CallTag, request: Term) -> Term {
    Term::Tuple(vec![
        Term::Atom(Atom::GEN_CALL),
        Term::Tuple(vec![Term::Pid(from), tag.to_term()]),
        request,
    ])
}

/// How monitor control messages name the watched process.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum ProcId {
    Pid(Pid),
    /// A name registered on the receiving node.
    Name(Atom),
}

/// A control message. The kinds every call and message uses are read
/// straight into their fields; the others as the elements of their tuple.
#[derive(Debug, PartialEq)]
pub(crate) enum Control {
    /// `SEND`, `SEND_SENDER` and their `_TT` forms: a message to a pid.
    Send { to: Pid },
    /// `REG_SEND` and `REG_SEND_TT`: a message to a registered name.
    RegSend { from: Pid, name: Atom },
    /// `ALIAS_SEND` and `ALIAS_SEND_TT`: a message to an alias.
    AliasSend { from: Pid, alias: Ref },
    /// `MONITOR_P`.
    Monitor {
        from: Pid,
        to: ProcId,
        reference: Ref,
    },
    /// `DEMONITOR_P`.
    Demonitor {
        from: Pid,
        to: ProcId,
        reference: Ref,
    },
    /// Any other control message (or one of the above, malformed), as its
    /// elements, the operation first.
    Other(Vec<Term>),
}

struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], WireError> {
        if self.b.len() - self.pos < n {
            return Err(bad(format!("frame ends inside {what}")));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }
    fn u8(&mut self, what: &str) -> Result<u8, WireError> {
        Ok(self.take(1, what)?[0])
    }
    fn u64(&mut self, what: &str) -> Result<u64, WireError> {
        let s = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(s);
        Ok(u64::from_be_bytes(a))
    }
}

/// `owner`'s bytes from `at` on, when there is an owner.
fn owner_from(owner: Option<&Bytes>, at: usize) -> Option<Bytes> {
    owner.map(|o| o.slice(at..))
}

impl Reader {
    /// A reader that refuses messages (whole or reassembled) larger than
    /// `max_message` bytes.
    #[cfg(test)]
    pub(crate) fn new(max_message: usize) -> Reader {
        Reader::with_limits(max_message, DEFAULT_MAX_FRAGMENTED, DEFAULT_MAX_NEW_ATOMS)
    }

    /// A reader that also refuses more than `max_fragmented` messages
    /// being put together from fragments at once, and more than
    /// `max_new_atoms` atoms added to the table by this peer.
    pub(crate) fn with_limits(
        max_message: usize,
        max_fragmented: usize,
        max_new_atoms: usize,
    ) -> Reader {
        Reader {
            slots: Box::new([None; CACHE_SLOTS]),
            partial: FxHashMap::default(),
            held: 0,
            ahead: 0,
            max_message,
            max_fragmented,
            max_new_atoms,
            new_atoms: 0,
            opts: DecodeOptions::new().atom_limit(WIRE_ATOM_LIMIT),
            atoms: Vec::new(),
            spare: Vec::new(),
            msg: Incoming {
                control: Control::Other(Vec::new()),
                payload: None,
                reply_tag: None,
                call: None,
                typed: None,
            },
            finder: None,
        }
    }

    /// Has messages to processes with a [`RemoteDecoder`] (which `finder`
    /// finds) read by that decoder.
    pub(crate) fn set_finder(&mut self, finder: DecoderFinder) {
        self.finder = Some(finder);
    }

    /// Lets go of the message read last, once it has been acted on; the
    /// next one reuses its memory.
    pub(crate) fn done(&mut self) {
        self.msg.payload = None;
        self.msg.reply_tag = None;
        self.msg.call = None;
        self.msg.typed = None;
        if let Control::Other(v) = &mut self.msg.control {
            let mut v = std::mem::take(v);
            if v.capacity() <= 16 {
                v.clear();
                self.spare = v;
            }
        }
    }

    /// Reads the atom-cache header at `c`, updating the cache, into
    /// `self.atoms` in header order.
    fn header(&mut self, c: &mut Cursor<'_>) -> Result<(), WireError> {
        self.atoms.clear();
        let n = c.u8("the atom cache header")? as usize;
        if n == 0 {
            return Ok(());
        }
        let flags = c.take(n / 2 + 1, "the atom cache flags")?;
        let nibble = |i: usize| {
            let b = flags[i / 2];
            if i.is_multiple_of(2) { b & 0xF } else { b >> 4 }
        };
        let long = nibble(n) & 1 != 0;
        // Most headers name only atoms the cache already holds: then each
        // takes one byte, and they are read without checking each on its
        // own.
        if flags.iter().all(|b| b & 0x88 == 0) && c.b.len() - c.pos >= n {
            let refs = c.take(n, "the atom cache references")?;
            self.atoms.reserve(n);
            for (pair, &f) in refs.chunks(2).zip(flags) {
                for (&r, high) in pair.iter().zip([f & 0x7, f >> 4 & 0x7]) {
                    let slot = (high as usize) << 8 | r as usize;
                    match self.slots[slot] {
                        Some(atom) => self.atoms.push(atom),
                        None => return Err(empty_slot(slot)),
                    }
                }
            }
            return Ok(());
        }
        for i in 0..n {
            let f = nibble(i);
            let slot = ((f & 0x7) as usize) << 8 | c.u8("an atom cache reference")? as usize;
            if f & 0x8 != 0 {
                let len = if long {
                    let s = c.take(2, "an atom length")?;
                    u16::from_be_bytes([s[0], s[1]]) as usize
                } else {
                    c.u8("an atom length")? as usize
                };
                let text = c.take(len, "an atom's text")?;
                let text = std::str::from_utf8(text)
                    .map_err(|_| bad("an atom in the cache header is not UTF-8"))?;
                let (atom, created) = Atom::intern_within(text, WIRE_ATOM_LIMIT)
                    .map_err(|e| bad(format!("bad atom in the cache header: {e}")))?;
                if created {
                    self.count_atoms(1)?;
                }
                self.slots[slot] = Some(atom);
                self.atoms.push(atom);
            } else {
                let atom = self.slots[slot].ok_or_else(|| empty_slot(slot))?;
                self.atoms.push(atom);
            }
        }
        Ok(())
    }

    /// Reads one frame (not a tick). `owner`, when given, holds the same
    /// bytes as `frame`: large binaries of the message then refer to it
    /// instead of being copied. `Ok(None)` when the frame is a fragment of
    /// a message not yet complete. The message stays the reader's: call
    /// [`Reader::done`] once it has been acted on.
    pub(crate) fn read(
        &mut self,
        frame: &[u8],
        owner: Option<&Bytes>,
    ) -> Result<Option<&mut Incoming>, WireError> {
        let mut c = Cursor { b: frame, pos: 0 };
        match c.u8("the frame type")? {
            112 => {
                self.pass_through(frame, owner)?;
                return Ok(Some(&mut self.msg));
            }
            131 => {}
            other => return Err(bad(format!("unknown frame type {other}"))),
        }
        match c.u8("the header type")? {
            68 => {
                self.header(&mut c)?;
                let owner = owner_from(owner, c.pos);
                self.terms_here(&frame[c.pos..], owner.as_ref())?;
                Ok(Some(&mut self.msg))
            }
            69 => {
                let (sequence, id) = self.first_head(&mut c)?;
                let data = &frame[c.pos..];
                if id == 1 {
                    let owner = owner_from(owner, c.pos);
                    self.terms_here(data, owner.as_ref())?;
                    return Ok(Some(&mut self.msg));
                }
                self.may_begin()?;
                self.hold(data.len())?;
                let body = match self.made_ahead(id, frame.len()) {
                    Some(mut body) => {
                        body[..data.len()].copy_from_slice(data);
                        body
                    }
                    None => {
                        let mut body = Vec::with_capacity(data.len() + PEEK);
                        body.extend_from_slice(data);
                        body
                    }
                };
                self.begin(sequence, id, body, 0, data.len())
            }
            70 => {
                let sequence = c.u64("a sequence id")?;
                let id = c.u64("a fragment id")?;
                let data = &frame[c.pos..];
                self.fragment_buffer(sequence, id, data.len())?.put(data);
                self.fragment_done(sequence)
            }
            other => Err(bad(format!("unknown distribution header type {other}"))),
        }
    }

    /// A first fragment's sequence and fragment count, and its atom cache
    /// header (read into `atoms`).
    fn first_head(&mut self, c: &mut Cursor<'_>) -> Result<(u64, u64), WireError> {
        let sequence = c.u64("a sequence id")?;
        let id = c.u64("a fragment id")?;
        self.header(c)?;
        if id == 0 {
            return Err(bad("fragment id 0"));
        }
        Ok((sequence, id))
    }

    /// Refuses a message more than `max_fragmented` being put together.
    fn may_begin(&self) -> Result<(), WireError> {
        if self.partial.len() >= self.max_fragmented {
            return Err(bad(format!(
                "more than {} fragmented messages being put together at once",
                self.max_fragmented
            )));
        }
        Ok(())
    }

    /// The buffer, made at once, of a message of `count` fragments whose
    /// first frame is `len` bytes, where the claim fits in what this peer
    /// may hold.
    ///
    /// A peer's frames but the last are as large as the first (or, past the
    /// first's atom cache header, as large as its data), so the claim gives
    /// the message's size to within one fragment. The buffer is zeroed (the
    /// allocator takes a large one from the system as fresh pages, zero
    /// already and backed only as they are written), so that each fragment
    /// is received straight into its place and the buffer never moves. A
    /// claim past the limit (a hostile peer's 2^40 fragments) gets `None`:
    /// memory only for what has arrived, the buffer growing (doubling) as
    /// fragments do.
    fn made_ahead(&self, count: u64, len: usize) -> Option<Vec<u8>> {
        let size = usize::try_from(count)
            .ok()?
            .checked_mul(len)?
            .checked_add(PEEK)?;
        (count > 1 && self.held + self.ahead + size <= self.max_message).then(|| vec![0u8; size])
    }

    /// Starts putting together message `sequence` of `count` fragments, in
    /// `body`, whose first `filled` bytes have arrived; the message starts
    /// at `start`.
    fn begin(
        &mut self,
        sequence: u64,
        count: u64,
        body: Vec<u8>,
        start: usize,
        filled: usize,
    ) -> Result<Option<&mut Incoming>, WireError> {
        self.ahead += body.len() - filled;
        let atoms = std::mem::take(&mut self.atoms);
        let p = Partial {
            atoms,
            body,
            start,
            filled,
            next_id: count - 1,
        };
        if let Some(old) = self.partial.insert(sequence, p) {
            self.let_go(&old);
            return Err(bad(format!("fragment sequence {sequence} started twice")));
        }
        Ok(None)
    }

    /// For a first fragment (`131 69`) of `len` bytes whose header claims
    /// `count` fragments: a buffer made ahead for the whole message, to
    /// receive the frame into (see [`Reader::first_fragment_in`]), where
    /// the claim fits in what this peer may hold.
    pub(crate) fn first_frame_buffer(&self, count: u64, len: usize) -> Option<Vec<u8>> {
        // One more message refused: read the usual way, which says why.
        self.may_begin().ok()?;
        self.made_ahead(count, len)
    }

    /// [`Reader::read`] of a first fragment received into the start of
    /// `body`, a buffer from [`Reader::first_frame_buffer`]: the message is
    /// put together in that buffer, after the frame's header.
    pub(crate) fn first_fragment_in(
        &mut self,
        body: Vec<u8>,
        len: usize,
    ) -> Result<Option<&mut Incoming>, WireError> {
        let mut c = Cursor {
            b: &body[..len],
            pos: 0,
        };
        if (c.u8("the frame type")?, c.u8("the header type")?) != (131, 69) {
            return Err(bad("not a first fragment"));
        }
        let (sequence, id) = self.first_head(&mut c)?;
        let start = c.pos;
        if id == 1 {
            let mut body = body;
            body.truncate(len);
            let owner = Bytes::from(body).slice(start..);
            self.terms_here(&owner, Some(&owner))?;
            return Ok(Some(&mut self.msg));
        }
        self.may_begin()?;
        self.hold(len - start)?;
        self.begin(sequence, id, body, start, len)
    }

    /// No longer counts `p`'s memory against the limits.
    fn let_go(&mut self, p: &Partial) {
        self.held -= p.filled - p.start;
        self.ahead -= p.body.len() - p.filled;
    }

    /// For a following fragment (`131 70`) of `len` bytes of data: where
    /// its data goes, once it is checked to continue a message being put
    /// together and to stay within the size limit. Call
    /// [`fragment_done`](Self::fragment_done) once the data is in.
    pub(crate) fn fragment_buffer(
        &mut self,
        sequence: u64,
        id: u64,
        len: usize,
    ) -> Result<FragmentRoom<'_>, WireError> {
        self.hold(len)?;
        let Some(p) = self.partial.get_mut(&sequence) else {
            return Err(bad(format!(
                "fragment {id} of sequence {sequence}, which never started"
            )));
        };
        if p.next_id != id {
            return Err(bad(format!(
                "fragment {id} of sequence {sequence} out of order (expected {})",
                p.next_id
            )));
        }
        let at = p.filled;
        p.filled += len;
        let made = p.body.len();
        if made > at && p.filled <= made {
            self.ahead -= len;
            return Ok(FragmentRoom::Fill(&mut p.body[at..]));
        }
        if made > at {
            // More than the first fragment claimed: the rest grows as it
            // comes.
            self.ahead -= made - at;
            p.body.truncate(at);
        }
        Ok(FragmentRoom::Append(&mut p.body))
    }

    /// A following fragment's data is in: the whole message if that was the
    /// last fragment.
    pub(crate) fn fragment_done(
        &mut self,
        sequence: u64,
    ) -> Result<Option<&mut Incoming>, WireError> {
        let Some(p) = self.partial.get_mut(&sequence) else {
            return Err(bad(format!("fragment sequence {sequence} vanished")));
        };
        p.next_id -= 1;
        if p.next_id > 0 {
            return Ok(None);
        }
        let p = self.partial.remove(&sequence).expect("present above");
        self.let_go(&p);
        let mut body = p.body;
        // What the claim overshot (the last fragment is the smaller).
        body.truncate(p.filled);
        let body = Bytes::from(body).slice(p.start..);
        self.terms(&body, Some(&body), &p.atoms)?;
        Ok(Some(&mut self.msg))
    }

    /// The decoding options with what is left of this peer's atom budget
    /// (one more than left: the one past it is refused as it is met).
    fn budgeted(&self) -> DecodeOptions {
        self.opts
            .atom_budget(self.max_new_atoms.saturating_sub(self.new_atoms) + 1)
    }

    /// Counts `n` atoms this peer added to the table, against its budget.
    fn count_atoms(&mut self, n: usize) -> Result<(), WireError> {
        self.new_atoms += n;
        if self.new_atoms > self.max_new_atoms {
            return Err(bad(format!(
                "the peer has added more than {} atoms to the atom table",
                self.max_new_atoms
            )));
        }
        Ok(())
    }

    fn hold(&mut self, n: usize) -> Result<(), WireError> {
        self.held += n;
        if self.held > self.max_message {
            return Err(bad(format!(
                "fragments being put together exceed the {} byte limit",
                self.max_message
            )));
        }
        Ok(())
    }

    /// [`Reader::terms`] with the atoms of the frame just read.
    fn terms_here(&mut self, body: &[u8], owner: Option<&Bytes>) -> Result<(), WireError> {
        let atoms = std::mem::take(&mut self.atoms);
        let r = self.terms(body, owner, &atoms);
        self.atoms = atoms;
        r
    }

    /// Reads the control message and the payload that fill `body` into
    /// `self.msg`.
    fn terms(
        &mut self,
        body: &[u8],
        owner: Option<&Bytes>,
        atoms: &[Atom],
    ) -> Result<(), WireError> {
        let (control, at) = match read_fixed(body, atoms) {
            Some(read) => read,
            None => {
                let opts = self.budgeted();
                let mut d = Decoder::new(body, &opts).with_atom_cache(atoms);
                if let Some(o) = owner {
                    d = d.with_owner(o);
                }
                let c = read_control(&mut d, &mut self.spare)?;
                self.count_atoms(d.atoms_created())?;
                (c, d.position())
            }
        };
        self.msg.control = control;
        let mut f = FixedIn { b: body, at, atoms };
        let envelope = f.envelope();
        let at = if envelope.is_some() { f.at } else { at };
        let owner = owner_from(owner, at);
        let opts = self.budgeted();
        let mut d = Decoder::new(&body[at..], &opts).with_atom_cache(atoms);
        if let Some(o) = &owner {
            d = d.with_owner(o);
        }
        let payload = |d: &mut Decoder<'_>| {
            d.read_term()
                .map_err(|e| bad(format!("bad message payload: {e}")))
        };
        // What follows an envelope sits inside its tuple: as deep as the
        // decoder would count it.
        if envelope.is_some() {
            d.enter()
                .map_err(|e| bad(format!("bad message payload: {e}")))?;
        }
        self.msg.reply_tag = match envelope {
            Some(Envelope::Reply { tag }) => Some(tag),
            _ => None,
        };
        if envelope.is_none() && self.read_typed(&d)? {
            return Ok(());
        }
        self.msg.payload = match envelope {
            Some(Envelope::Call { from, tag }) => {
                self.msg.call = Some((from, tag));
                Some(payload(&mut d)?)
            }
            Some(Envelope::Reply { .. }) => Some(payload(&mut d)?),
            None if d.remaining() > 0 => Some(payload(&mut d)?),
            None => None,
        };
        self.count_atoms(d.atoms_created())?;
        d.finish()
            .map_err(|e| bad(format!("after the message: {e}")))
    }

    /// For a plain message to a process that reads its messages itself
    /// (see [`RemoteDecoder`]), reads the payload `d` is at the start of
    /// with that process's decoder into `self.msg.typed`. `false` when
    /// there is no such process or its decoder does not read this payload,
    /// which is then read as a term.
    fn read_typed(&mut self, d: &Decoder<'_>) -> Result<bool, WireError> {
        let Control::Send { to } = self.msg.control else {
            return Ok(false);
        };
        let Some(decode) = self.finder.as_ref().and_then(|find| find(to)) else {
            return Ok(false);
        };
        let mut typed = d.clone();
        let read = decode(&mut typed);
        // Atoms the attempt added count whether or not it succeeded (the
        // decode as a term then finds them made).
        self.count_atoms(typed.atoms_created())?;
        match read {
            Some(msg) if typed.finish().is_ok() => {
                self.msg.payload = None;
                self.msg.typed = Some(msg);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// A frame of type 112: the control message and the payload, each with
    /// its version byte.
    fn pass_through(&mut self, frame: &[u8], owner: Option<&Bytes>) -> Result<(), WireError> {
        if frame.get(1) != Some(&131) {
            return Err(bad(
                "a pass-through control message without its version byte",
            ));
        }
        let owner_body = owner_from(owner, 2);
        let opts = self.budgeted();
        let mut d = Decoder::new(&frame[2..], &opts);
        if let Some(o) = &owner_body {
            d = d.with_owner(o);
        }
        let control = read_control(&mut d, &mut self.spare)?;
        self.count_atoms(d.atoms_created())?;
        let at = 2 + d.position();
        self.msg = Incoming {
            control,
            payload: None,
            reply_tag: None,
            call: None,
            typed: None,
        };
        if at == frame.len() {
            return Ok(());
        }
        // A payload that is not compressed may be read by its addressee's
        // decoder.
        if frame[at] == 131 && frame.get(at + 1).is_some_and(|&b| b != tags::COMPRESSED) {
            let opts = self.budgeted();
            let owner_here = owner_from(owner, at + 1);
            let mut d = Decoder::new(&frame[at + 1..], &opts);
            if let Some(o) = &owner_here {
                d = d.with_owner(o);
            }
            if self.read_typed(&d)? {
                return Ok(());
            }
        }
        // (The payload's own version byte may say it is compressed: decoded
        // whole, its new atoms counted by the table's growth, which may
        // include others' at the same moment.)
        let before = Atom::count();
        let opts = self.budgeted();
        let p = match owner {
            Some(o) => opts.decode_bytes(&o.slice(at..)),
            None => opts.decode(&frame[at..]),
        };
        self.count_atoms(Atom::count().saturating_sub(before))?;
        self.msg.payload = Some(p.map_err(|e| bad(format!("bad message payload: {e}")))?);
        Ok(())
    }
}

/// Reads a control message: the frequent kinds into their fields, the
/// others (and malformed ones) element by element into `spare`'s memory.
fn read_control(d: &mut Decoder<'_>, spare: &mut Vec<Term>) -> Result<Control, WireError> {
    let start = d.clone();
    if let Some(c) = read_frequent(d) {
        return Ok(c);
    }
    *d = start;
    let n = d
        .read_tuple_header()
        .map_err(|e| bad(format!("bad control message: {e}")))?;
    let mut v = std::mem::take(spare);
    v.clear();
    for _ in 0..n {
        v.push(
            d.read_term()
                .map_err(|e| bad(format!("bad control message: {e}")))?,
        );
    }
    Ok(Control::Other(v))
}

/// The start of a payload that [`FixedIn::envelope`] read.
enum Envelope {
    /// `{'$gen_call', {From, Tag}, Request}`.
    Call { from: Pid, tag: CallTag },
    /// `{Tag, Reply}`.
    Reply { tag: CallTag },
}

/// A cursor for [`read_fixed`].
struct FixedIn<'a> {
    b: &'a [u8],
    at: usize,
    atoms: &'a [Atom],
}

impl<'a> FixedIn<'a> {
    #[inline(always)]
    fn take<const N: usize>(&mut self) -> Option<[u8; N]> {
        let s = self.b.get(self.at..self.at + N)?;
        self.at += N;
        s.try_into().ok()
    }

    #[inline(always)]
    fn atom(&mut self) -> Option<Atom> {
        match self.take::<2>()? {
            [tags::ATOM_CACHE_REF, i] => self.atoms.get(i as usize).copied(),
            _ => None,
        }
    }

    #[inline(always)]
    fn pid(&mut self) -> Option<Pid> {
        if self.take::<1>()? != [tags::NEW_PID] {
            return None;
        }
        let node = self.atom()?;
        let w = self.take::<12>()?;
        let word = |i: usize| u32::from_be_bytes([w[i], w[i + 1], w[i + 2], w[i + 3]]);
        Some(Pid {
            node,
            id: word(0),
            serial: word(4),
            creation: word(8),
        })
    }

    #[inline(always)]
    fn reference(&mut self) -> Option<Ref> {
        let [tag, high, len] = self.take::<3>()?;
        if tag != tags::NEWER_REFERENCE || high != 0 || !(1..=5).contains(&len) {
            return None;
        }
        let node = self.atom()?;
        let creation = u32::from_be_bytes(self.take::<4>()?);
        let mut ids = [0u32; 5];
        for id in &mut ids[..len as usize] {
            *id = u32::from_be_bytes(self.take::<4>()?);
        }
        Ref::new(node, creation, &ids[..len as usize])
    }

    /// A call's tag: a reference, or `[alias | Ref]`.
    #[inline(always)]
    fn tag(&mut self) -> Option<CallTag> {
        match self.b.get(self.at)? {
            &tags::LIST => {
                if self.take::<5>()? != [tags::LIST, 0, 0, 0, 1] || self.atom()? != Atom::ALIAS {
                    return None;
                }
                self.reference().map(CallTag::Alias)
            }
            _ => self.reference().map(CallTag::Ref),
        }
    }

    /// The start of a call's or a reply's payload, `{'$gen_call', {From,
    /// Tag}, ` or `{Tag, ` with a reference for tag, leaving the cursor
    /// before the request or the reply. `None` (the cursor where it was)
    /// for any other payload.
    #[inline(always)]
    fn envelope(&mut self) -> Option<Envelope> {
        let start = self.at;
        let e = match self.take::<2>()? {
            [tags::SMALL_TUPLE, 3] if self.atom() == Some(Atom::GEN_CALL) => {
                match self.take::<2>() {
                    Some([tags::SMALL_TUPLE, 2]) => self.pid().and_then(|from| {
                        let tag = self.tag()?;
                        Some(Envelope::Call { from, tag })
                    }),
                    _ => None,
                }
            }
            [tags::SMALL_TUPLE, 2] => self.tag().map(|tag| Envelope::Reply { tag }),
            _ => None,
        };
        if e.is_none() {
            self.at = start;
        }
        e
    }

    /// A pid, or an atom naming a process.
    #[inline(always)]
    fn proc_id(&mut self) -> Option<ProcId> {
        match self.b.get(self.at)? {
            &tags::NEW_PID => self.pid().map(ProcId::Pid),
            _ => self.atom().map(ProcId::Name),
        }
    }
}

/// Reads `SEND_SENDER`, `REG_SEND`, `MONITOR_P` and `DEMONITOR_P` in the
/// form ergo and Erlang write them with an atom cache (every atom a cache
/// reference, pids and references in their current forms) straight from
/// the bytes. Gives the control message and the bytes it took, or `None`
/// for anything else, which [`read_control`] then reads.
fn read_fixed(b: &[u8], atoms: &[Atom]) -> Option<(Control, usize)> {
    use crate::dist::codec as op;
    let mut f = FixedIn { b, at: 4, atoms };
    let [tags::SMALL_TUPLE, arity, tags::SMALL_INTEGER, tag] = *b.get(..4)? else {
        return None;
    };
    let c = match (tag as i64, arity) {
        (op::SEND_SENDER, 3) => {
            f.pid()?;
            Control::Send { to: f.pid()? }
        }
        (op::REG_SEND, 4) => {
            let from = f.pid()?;
            f.atom()?;
            Control::RegSend {
                from,
                name: f.atom()?,
            }
        }
        (op::ALIAS_SEND, 3) => Control::AliasSend {
            from: f.pid()?,
            alias: f.reference()?,
        },
        (op::MONITOR_P, 4) => Control::Monitor {
            from: f.pid()?,
            to: f.proc_id()?,
            reference: f.reference()?,
        },
        (op::DEMONITOR_P, 4) => Control::Demonitor {
            from: f.pid()?,
            to: f.proc_id()?,
            reference: f.reference()?,
        },
        _ => return None,
    };
    Some((c, f.at))
}

/// Reads one of the control messages [`Control`] has fields for, or gives
/// `None` (having read some of it) when it is another one.
fn read_frequent(d: &mut Decoder<'_>) -> Option<Control> {
    use crate::dist::codec as op;
    if d.peek_tag().ok()? != tags::SMALL_TUPLE {
        return None;
    }
    let n = d.read_tuple_header().ok()?;
    if d.peek_tag().ok()? != tags::SMALL_INTEGER {
        return None;
    }
    let pid = |d: &mut Decoder<'_>| match d.peek_tag().ok()? {
        tags::NEW_PID | tags::PID => d.read_pid_term().ok(),
        _ => None,
    };
    let atom = |d: &mut Decoder<'_>| match d.peek_tag().ok()? {
        tags::ATOM_CACHE_REF
        | tags::SMALL_ATOM_UTF8
        | tags::ATOM_UTF8
        | tags::SMALL_ATOM
        | tags::ATOM => d.read_atom().ok(),
        _ => None,
    };
    let proc_id = |d: &mut Decoder<'_>| match d.peek_tag().ok()? {
        tags::NEW_PID | tags::PID => pid(d).map(ProcId::Pid),
        _ => atom(d).map(ProcId::Name),
    };
    let reference = |d: &mut Decoder<'_>| match d.peek_tag().ok()? {
        tags::NEWER_REFERENCE | tags::NEW_REFERENCE | tags::REFERENCE => d.read_ref_term().ok(),
        _ => None,
    };
    let skip = |d: &mut Decoder<'_>| d.skip_term().ok();
    let tag = d.read_i64().ok()?;
    let c = match (tag, n) {
        // {2, Cookie, To}, {12, Cookie, To, Token}
        (op::SEND, 3) | (op::SEND_TT, 4) => {
            skip(d)?;
            Control::Send { to: pid(d)? }
        }
        // {22, From, To}, {23, From, To, Token}
        (op::SEND_SENDER, 3) | (op::SEND_SENDER_TT, 4) => {
            pid(d)?;
            Control::Send { to: pid(d)? }
        }
        // {6, From, Cookie, Name}, {16, From, Cookie, Name, Token}
        (op::REG_SEND, 4) | (op::REG_SEND_TT, 5) => {
            let from = pid(d)?;
            skip(d)?;
            Control::RegSend {
                from,
                name: atom(d)?,
            }
        }
        // {33, From, Alias}, {34, From, Alias, Token}
        (op::ALIAS_SEND, 3) | (op::ALIAS_SEND_TT, 4) => Control::AliasSend {
            from: pid(d)?,
            alias: reference(d)?,
        },
        // {19 | 20, From, To, Ref}
        (op::MONITOR_P, 4) => Control::Monitor {
            from: pid(d)?,
            to: proc_id(d)?,
            reference: reference(d)?,
        },
        (op::DEMONITOR_P, 4) => Control::Demonitor {
            from: pid(d)?,
            to: proc_id(d)?,
            reference: reference(d)?,
        },
        _ => return None,
    };
    if matches!(
        tag,
        op::SEND_TT | op::SEND_SENDER_TT | op::REG_SEND_TT | op::ALIAS_SEND_TT
    ) {
        // The trace token, which ergo does not use.
        skip(d)?;
    }
    Some(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dist::handshake::flags;

    /// Every term in `t`, `t` included, counted one by one.
    fn count_terms(t: &Term) -> usize {
        1 + match t {
            Term::Tuple(v) | Term::List(v) => v.iter().map(count_terms).sum(),
            Term::ImproperList(v, tail) => {
                v.iter().map(count_terms).sum::<usize>() + count_terms(tail)
            }
            Term::Map(m) => m.iter().map(|(k, v)| count_terms(k) + count_terms(v)).sum(),
            _ => 0,
        }
    }

    #[test]
    fn the_large_payload_check_counts_every_term_and_stops_past_the_limit() {
        let ints = |n: i64| Term::List((0..n).map(Term::Int).collect());
        let nested = Term::tuple([
            Term::atom("events"),
            ints(1000),
            Term::List(vec![Term::tuple([ints(3), Term::atom("x")]); 40]),
            Term::ImproperList(vec![ints(5), Term::Int(1)], Box::new(Term::atom("t"))),
            Term::Map(ergo_etf::Map::from_pairs(vec![(Term::atom("k"), ints(7))])),
        ]);
        let mut n = 0;
        assert!(!past_large(&nested, &mut n));
        assert_eq!(n, count_terms(&nested));
        // The tuple, the list around the list, and the list: three terms
        // besides the elements.
        for (len, large) in [
            (LARGE_TERMS - 3, false),
            (LARGE_TERMS - 2, true),
            (100_000, true),
        ] {
            let mut n = 0;
            let t = Term::tuple([Term::List(vec![ints(len as i64)])]);
            assert_eq!(past_large(&t, &mut n), large, "a list of {len}");
            assert!(n <= len + 3, "counted {n} for {len}");
        }
    }

    fn frames(out: &[u8]) -> Vec<Bytes> {
        let mut v = Vec::new();
        let mut i = 0;
        while i < out.len() {
            let len = u32::from_be_bytes(out[i..i + 4].try_into().unwrap()) as usize;
            v.push(Bytes::copy_from_slice(&out[i + 4..i + 4 + len]));
            i += 4 + len;
        }
        v
    }

    /// Writes the message `times` times and reads it back, alternately
    /// with the frames owned (binaries may share them) and borrowed.
    fn roundtrip(peer_flags: u64, control: &[Term], payload: Option<&Term>, times: usize) {
        let mut w = Writer::new(peer_flags);
        let mut r = Reader::new(1 << 30);
        for i in 0..times {
            let mut out = OutBuf::default();
            w.write(Ctl::Terms(control), payload.map(Payload::from), &mut out);
            let mut complete = false;
            for f in frames(&out.to_vec()) {
                assert!(!complete, "a frame after the message was complete");
                let owner = (i % 2 == 0).then_some(&f);
                if let Some(got) = r.read(&f, owner).unwrap() {
                    assert_eq!(got.control, typed(control));
                    assert_eq!(got.take_payload().as_ref(), payload);
                    complete = true;
                }
            }
            assert!(complete, "the message completes with its last frame");
            r.done();
        }
    }

    /// A plain message to a process with a remote decoder is read by that
    /// decoder (GenStage events straight into their type), with and
    /// without the atom cache; a message it does not read, and a message
    /// to another process, come as their terms.
    #[test]
    fn a_process_with_a_remote_decoder_has_its_messages_read_by_it() {
        use crate::gen_stage::protocol::{EventsMsg, decode_remote_events};
        let pid = |id| Pid {
            node: Atom::from("remote_decoder@h"),
            id,
            serial: 0,
            creation: 1,
        };
        let (from, to, other) = (pid(1), pid(2), pid(3));
        let tag = Ref::new(Atom::from("remote_decoder@h"), 1, &[7, 8, 9]).unwrap();
        let events = |list: Vec<Term>| {
            Term::tuple([
                Term::atom("$gen_consumer"),
                Term::tuple([Term::Pid(from), Term::Ref(tag)]),
                Term::List(list),
            ])
        };
        let ints = events((0..300).map(Term::Int).collect());
        let mixed = events(vec![Term::Int(1), Term::atom("two")]);
        for peer in [flags::DIST_HDR_ATOM_CACHE, 0] {
            let mut w = Writer::new(peer);
            let mut r = Reader::new(1 << 30);
            r.set_finder(Box::new(move |p| {
                (p == to).then_some(decode_remote_events::<i64> as RemoteDecoder)
            }));
            let mut read = |dest: Pid, payload: &Term| {
                let control = [
                    Term::Int(crate::dist::codec::SEND_SENDER),
                    Term::Pid(from),
                    Term::Pid(dest),
                ];
                let mut out = OutBuf::default();
                w.write(Ctl::Terms(&control), Some(Payload::from(payload)), &mut out);
                let f = frames(&out.to_vec()).pop().unwrap();
                let got = r.read(&f, Some(&f)).unwrap().unwrap();
                assert_eq!(got.control, Control::Send { to: dest });
                let got = (got.typed.take(), got.take_payload());
                r.done();
                got
            };
            // Twice: the second time with the atoms cached.
            for _ in 0..2 {
                let (typed, term) = read(to, &ints);
                assert_eq!(term, None);
                let msg = typed
                    .expect("read by the decoder")
                    .downcast::<EventsMsg<i64>>();
                let msg = msg.expect("as events of i64");
                assert_eq!((msg.producer, msg.tag), (from, tag));
                assert_eq!(msg.events, (0..300).collect::<Vec<i64>>());

                let (typed, term) = read(to, &mixed);
                assert!(typed.is_none());
                assert_eq!(term.as_ref(), Some(&mixed));

                let (typed, term) = read(other, &ints);
                assert!(typed.is_none());
                assert_eq!(term.as_ref(), Some(&ints));
            }
        }
    }

    /// Local values whose types write their terms directly leave as the
    /// same bytes as their terms, with the atom cache in use, and count as
    /// large past the same number of terms.
    #[test]
    fn local_values_written_directly_give_the_bytes_of_their_terms() {
        use crate::message::Message;
        let to = ergo_etf::Pid::new(Atom::from("b@h"), 2, 0, 4);
        let from = ergo_etf::Pid::new(Atom::from("a@h"), 1, 0, 3);
        let values = [
            Message::new((0..1000i64).collect::<Vec<_>>()),
            Message::new(vec![1u8, 2, 3]),
            Message::new((Atom::from("ok"), vec![(Atom::from("x"), 1i64 << 40)])),
            Message::new(42u64),
        ];
        for flags in [flags::DIST_HDR_ATOM_CACHE, 0] {
            let mut direct_w = Writer::new(flags);
            let mut term_w = Writer::new(flags);
            for m in &values {
                let Message::Local(l) = m else {
                    panic!("a local value")
                };
                let d = l.direct().expect("writes directly");
                let term = m.to_term().unwrap();
                let ctl = Ctl::SendSender { from, to };
                // Twice: the second time the atoms are in the cache.
                for _ in 0..2 {
                    let mut a = OutBuf::default();
                    direct_w.write(ctl, Some(Payload::Direct(d)), &mut a);
                    let mut b = OutBuf::default();
                    term_w.write(ctl, Some(Payload::Term(&term)), &mut b);
                    assert_eq!(a.to_vec(), b.to_vec(), "{term}");
                }
                let mut n = 0;
                assert_eq!(
                    Payload::Direct(d).is_large(),
                    past_large(&term, &mut n),
                    "{term}"
                );
                assert_eq!(Payload::Direct(d).to_term(), term);
            }
        }
        let big = Message::new((0..LARGE_TERMS as i64).collect::<Vec<_>>());
        let Message::Local(l) = &big else {
            panic!("a local value")
        };
        assert!(Payload::Direct(l.direct().unwrap()).is_large());
        // A type that cannot write directly is sent as its term.
        let Message::Local(l) = Message::new(String::from("text")) else {
            panic!("a local value")
        };
        assert!(l.direct().is_none());
    }

    /// What the reader makes of a control message with these elements.
    fn typed(c: &[Term]) -> Control {
        match c {
            [Term::Int(6), Term::Pid(from), _, Term::Atom(name)] => Control::RegSend {
                from: *from,
                name: *name,
            },
            _ => Control::Other(c.to_vec()),
        }
    }

    #[test]
    fn control_messages_given_by_their_fields_are_written_as_their_elements() {
        use crate::dist::codec as op;
        use crate::dist::handshake::flags;
        let a = ergo_etf::Pid::new(Atom::from("a@h"), 1, 0, 3);
        let b = ergo_etf::Pid::new(Atom::from("b@h"), 2, 0, 4);
        let r = ergo_etf::Ref::new(Atom::from("a@h"), 3, &[1, 2, 3]).unwrap();
        let name = Atom::from("server");
        let monitor = |op: i64, to| Ctl::Monitor {
            op: op as u8,
            from: a,
            to,
            reference: r,
        };
        let cases = [
            Ctl::SendSender { from: a, to: b },
            Ctl::RegSend { from: a, name },
            Ctl::AliasSend { from: a, alias: r },
            monitor(op::MONITOR_P, ProcId::Pid(b)),
            monitor(op::MONITOR_P, ProcId::Name(name)),
            monitor(op::DEMONITOR_P, ProcId::Pid(b)),
            monitor(op::DEMONITOR_P, ProcId::Name(name)),
        ];
        let term = Term::tuple([Term::Pid(b), Term::Ref(r)]);
        // Not a call tag: a proper list.
        let alias_tag = Term::List(vec![Term::atom("alias"), Term::Ref(r)]);
        let aliased = CallTag::Alias(r).to_term();
        let payloads = [
            None,
            Some(Payload::Term(&term)),
            Some(Payload::Call {
                from: b,
                tag: CallTag::Ref(r),
                request: &term,
            }),
            Some(Payload::Call {
                from: b,
                tag: CallTag::Alias(r),
                request: &term,
            }),
            Some(Payload::Reply {
                tag: &aliased,
                reply: &term,
            }),
            Some(Payload::Reply {
                tag: &Term::Ref(r),
                reply: &term,
            }),
            Some(Payload::Reply {
                tag: &alias_tag,
                reply: &term,
            }),
        ];
        for peer in [flags::DIST_HDR_ATOM_CACHE, 0] {
            // Two writers with the same history write the same bytes, and
            // they read back as the elements and the whole payload term.
            let (mut typed, mut plain) = (Writer::new(peer), Writer::new(peer));
            let mut reader = Reader::new(1 << 20);
            for ctl in cases {
                for payload in payloads {
                    let elements = ctl.to_terms();
                    let whole = payload.map(Payload::to_term);
                    let (mut x, mut y) = (OutBuf::default(), OutBuf::default());
                    typed.write(ctl, payload, &mut x);
                    plain.write(
                        Ctl::Terms(&elements),
                        whole.as_ref().map(Payload::Term),
                        &mut y,
                    );
                    assert_eq!(x.to_vec(), y.to_vec(), "{ctl:?} {payload:?}");
                    let frame = &frames(&x.to_vec())[0];
                    let got = reader.read(frame, None).unwrap().expect("a whole message");
                    assert_eq!(got.take_payload(), whole, "{ctl:?} {payload:?}");
                    let back = match &got.control {
                        Control::Send { to } => *to == b,
                        Control::RegSend { from, name: n } => *from == a && *n == name,
                        Control::AliasSend { from, alias } => *from == a && *alias == r,
                        Control::Monitor {
                            from,
                            to,
                            reference,
                        }
                        | Control::Demonitor {
                            from,
                            to,
                            reference,
                        } => *from == a && *reference == r && elements[2] == proc_term(*to),
                        Control::Other(v) => *v == elements,
                    };
                    assert!(back, "{ctl:?} read back as {:?}", got.control);
                    reader.done();
                }
            }
        }
    }

    fn proc_term(p: ProcId) -> Term {
        match p {
            ProcId::Pid(p) => Term::Pid(p),
            ProcId::Name(n) => Term::Atom(n),
        }
    }

    #[test]
    fn frequent_control_messages_are_read_into_their_fields() {
        use crate::dist::codec as op;
        let a = ergo_etf::Pid::new(Atom::from("a@h"), 1, 0, 3);
        let b = ergo_etf::Pid::new(Atom::from("b@h"), 2, 0, 4);
        let r = ergo_etf::Ref::new(Atom::from("a@h"), 3, &[1, 2, 3]).unwrap();
        let name = Atom::from("server");
        let token = Term::tuple([Term::atom("trace"), Term::Int(1)]);
        let cases = [
            (
                vec![Term::Int(op::SEND), Term::atom(""), Term::Pid(b)],
                Control::Send { to: b },
            ),
            (
                vec![
                    Term::Int(op::SEND_TT),
                    Term::atom(""),
                    Term::Pid(b),
                    token.clone(),
                ],
                Control::Send { to: b },
            ),
            (
                vec![Term::Int(op::SEND_SENDER), Term::Pid(a), Term::Pid(b)],
                Control::Send { to: b },
            ),
            (
                vec![
                    Term::Int(op::SEND_SENDER_TT),
                    Term::Pid(a),
                    Term::Pid(b),
                    token.clone(),
                ],
                Control::Send { to: b },
            ),
            (
                vec![
                    Term::Int(op::REG_SEND_TT),
                    Term::Pid(a),
                    Term::atom(""),
                    Term::Atom(name),
                    token.clone(),
                ],
                Control::RegSend { from: a, name },
            ),
            (
                vec![
                    Term::Int(op::MONITOR_P),
                    Term::Pid(a),
                    Term::Atom(name),
                    Term::Ref(r),
                ],
                Control::Monitor {
                    from: a,
                    to: ProcId::Name(name),
                    reference: r,
                },
            ),
            (
                vec![
                    Term::Int(op::DEMONITOR_P),
                    Term::Pid(a),
                    Term::Pid(b),
                    Term::Ref(r),
                ],
                Control::Demonitor {
                    from: a,
                    to: ProcId::Pid(b),
                    reference: r,
                },
            ),
        ];
        for flags in [flags::DIST_HDR_ATOM_CACHE, 0] {
            for (elements, want) in &cases {
                let mut w = Writer::new(flags);
                let mut out = OutBuf::default();
                w.write(
                    Ctl::Terms(elements),
                    Some(Payload::Term(&Term::Int(7))),
                    &mut out,
                );
                let f = &frames(&out.to_vec())[0];
                let mut r = Reader::new(1 << 20);
                let got = r.read(f, None).unwrap().unwrap();
                assert_eq!(&got.control, want, "{elements:?}");
                assert_eq!(got.payload, Some(Term::Int(7)), "{elements:?}");
            }
            // Malformed ones (a monitor of a tuple, a send with an element
            // too many) come as their elements, for the node to refuse.
            for elements in [
                vec![
                    Term::Int(op::MONITOR_P),
                    Term::Pid(a),
                    token.clone(),
                    Term::Ref(r),
                ],
                vec![
                    Term::Int(op::SEND),
                    Term::atom(""),
                    Term::Pid(b),
                    Term::NIL,
                    Term::NIL,
                ],
            ] {
                let mut w = Writer::new(flags);
                let mut out = OutBuf::default();
                w.write(Ctl::Terms(&elements), None, &mut out);
                let f = &frames(&out.to_vec())[0];
                let mut r = Reader::new(1 << 20);
                let got = r.read(f, None).unwrap().unwrap();
                assert_eq!(got.control, Control::Other(elements));
            }
        }
    }

    fn sample() -> (Vec<Term>, Term) {
        let control = vec![
            Term::Int(6),
            Term::Pid(ergo_etf::Pid::new(Atom::from("a@h"), 1, 0, 3)),
            Term::atom(""),
            Term::atom("some_name"),
        ];
        let payload = Term::tuple([
            Term::atom("hello"),
            Term::atom("some_name"),
            Term::List((0..300).map(|i| Term::atom(&format!("atom_{i}"))).collect()),
        ]);
        (control, payload)
    }

    #[test]
    fn messages_round_trip_through_the_atom_cache_again_and_again() {
        let (c, p) = sample();
        roundtrip(flags::DIST_HDR_ATOM_CACHE, &c, Some(&p), 3);
    }

    #[test]
    fn messages_round_trip_in_pass_through_form() {
        let (c, p) = sample();
        roundtrip(0, &c, Some(&p), 2);
        roundtrip(0, &c, None, 1);
    }

    #[test]
    fn large_messages_are_fragmented_and_put_back_together() {
        let (c, _) = sample();
        let big = Term::binary(vec![7u8; 3 * FRAGMENT_SIZE + 10]);
        let mut w = Writer::new(flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS);
        let mut out = OutBuf::default();
        w.write(Ctl::Terms(&c), Some(Payload::Term(&big)), &mut out);
        assert_eq!(frames(&out.to_vec()).len(), 4);
        roundtrip(
            flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS,
            &c,
            Some(&big),
            2,
        );
    }

    #[test]
    fn large_binaries_leave_by_reference_and_arrive_whole() {
        // Two shared binaries, one straddling fragment boundaries, with
        // small terms around them, in both frame forms.
        let (c, _) = sample();
        let a: Vec<u8> = (0..FRAGMENT_SIZE + 5000).map(|i| i as u8).collect();
        let b: Vec<u8> = (0..SHARE_MIN).map(|i| (i * 7) as u8).collect();
        let payload = Term::tuple([
            Term::atom("x"),
            Term::binary(a),
            Term::Int(-1),
            Term::binary(b),
            Term::binary(vec![1, 2, 3]),
        ]);
        for peer in [
            flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS,
            flags::DIST_HDR_ATOM_CACHE,
            0,
        ] {
            let mut w = Writer::new(peer);
            let mut out = OutBuf::default();
            w.write(Ctl::Terms(&c), Some(Payload::Term(&payload)), &mut out);
            assert!(out.contiguous().is_none(), "the binaries are referred to");
            assert_eq!(out.len(), out.to_vec().len());
            roundtrip(peer, &c, Some(&payload), 2);
        }
    }

    #[test]
    fn an_out_buffer_written_in_odd_pieces_gives_its_bytes_in_order() {
        let mut w = Writer::new(flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS);
        let big = Term::binary(
            (0..3 * FRAGMENT_SIZE)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<_>>(),
        );
        let mut out = OutBuf::default();
        w.write(
            Ctl::Terms(&[Term::Int(1)]),
            Some(Payload::Term(&big)),
            &mut out,
        );
        let mut expected = out.to_vec();
        let mut got = Vec::new();
        let mut step = 1;
        let mut more = 2;
        while !out.is_empty() {
            // What a vectored write would take, cut short at `step` bytes.
            let mut slices = [std::io::IoSlice::new(&[]); 5];
            let n = out.slices(&mut slices);
            let mut take = step.min(out.len());
            let before = got.len();
            for s in &slices[..n] {
                let k = take.min(s.len());
                got.extend_from_slice(&s[..k]);
                take -= k;
            }
            let took = got.len() - before;
            assert!(took > 0, "slices cover what is left");
            out.advance(took);
            step = step * 3 + 1;
            if more > 0 {
                // Another message queued meanwhile goes after the rest.
                more -= 1;
                let mut other = OutBuf::default();
                w.write(
                    Ctl::Terms(&[Term::Int(2)]),
                    Some(Payload::Term(&big)),
                    &mut other,
                );
                expected.extend_from_slice(&other.to_vec());
                out.append(&mut other);
                assert!(other.is_empty());
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn atoms_sharing_a_cache_slot_in_one_frame_each_read_back_as_themselves() {
        let slot = |a: Atom| (a.index().wrapping_mul(2_654_435_761) >> 21) as usize % CACHE_SLOTS;
        let first = Atom::from("slot_mate_0");
        let mate = (1..100_000)
            .map(|i| Atom::from(format!("slot_mate_{i}")))
            .find(|a| slot(*a) == slot(first))
            .expect("two atoms that share a slot");
        let (a, b) = (Term::Atom(first), Term::Atom(mate));
        // Each takes the slot from the other, several times in one frame.
        let payload = Term::List(vec![a.clone(), b.clone(), a.clone(), b.clone(), a]);
        roundtrip(
            flags::DIST_HDR_ATOM_CACHE,
            &[Term::Int(2), b.clone()],
            Some(&payload),
            3,
        );
        let mut w = Writer::new(flags::DIST_HDR_ATOM_CACHE);
        let mut out = OutBuf::default();
        w.write(
            Ctl::Terms(&[Term::Int(2), b]),
            Some(Payload::Term(&payload)),
            &mut out,
        );
        // The control message names the mate, then each of the payload's
        // five atoms takes the slot from the one before: six header
        // entries, all of the same slot.
        let f = &frames(&out.to_vec())[0];
        assert_eq!(&f[..3], &[131, 68, 6]);
    }

    #[test]
    fn long_atoms_set_the_long_atoms_flag() {
        let long = Term::atom(&"é".repeat(200));
        roundtrip(
            flags::DIST_HDR_ATOM_CACHE,
            &[Term::Int(2), long.clone()],
            Some(&long),
            2,
        );
    }

    #[test]
    fn bad_frames_are_errors_not_panics() {
        let mut r = Reader::new(1000);
        for f in [
            &[][..],
            &[9],
            &[131],
            &[131, 68, 1],
            &[131, 68, 1, 0, 5],
            &[131, 70, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1],
            &[112, 100],
            // Control messages that are not tuples.
            &[131, 68, 0, 97, 1],
            &[112, 131, 97, 1],
        ] {
            assert!(r.read(f, None).is_err(), "{f:?}");
        }
        // A fragmented message larger than the limit is refused.
        let mut w = Writer::new(flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS);
        let mut out = OutBuf::default();
        w.write(
            Ctl::Terms(&[Term::Int(1)]),
            Some(Payload::Term(&Term::binary(vec![0; 3 * FRAGMENT_SIZE]))),
            &mut out,
        );
        let mut r = Reader::new(2 * FRAGMENT_SIZE);
        let err = frames(&out.to_vec())
            .into_iter()
            .try_for_each(|f| r.read(&f, Some(&f)).map(|_| ()));
        assert!(err.unwrap_err().0.contains("limit"));
    }

    #[test]
    fn a_fragmented_message_is_made_ahead_to_its_claimed_size_and_never_moves() {
        let big: Vec<u8> = (0..3 * FRAGMENT_SIZE + 10).map(|i| i as u8).collect();
        let mut w = Writer::new(flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS);
        let mut out = OutBuf::default();
        w.write(
            Ctl::Terms(&[Term::Int(1)]),
            Some(Payload::Term(&Term::binary(big.clone()))),
            &mut out,
        );
        let fs = frames(&out.to_vec());
        assert_eq!(fs.len(), 4);
        let mut r = Reader::new(16 * FRAGMENT_SIZE);
        assert!(matches!(r.read(&fs[0], Some(&fs[0])), Ok(None)));
        let p = r
            .partial
            .values()
            .next()
            .expect("a message being put together");
        let (at, made) = (p.body.as_ptr(), p.body.len());
        assert!(made >= 3 * FRAGMENT_SIZE + 10, "made to the claim");
        assert_eq!(r.ahead, made - p.filled);
        for f in &fs[1..3] {
            assert!(matches!(r.read(f, Some(f)), Ok(None)));
            let p = r.partial.values().next().expect("still being put together");
            assert_eq!(p.body.as_ptr(), at, "the buffer did not move");
            // Written in place: the part made ahead is still there.
            assert_eq!(p.body.len(), made, "filled in place, not appended");
            assert_eq!(r.ahead, made - p.filled);
        }
        let msg = r.read(&fs[3], Some(&fs[3])).unwrap().expect("whole");
        assert_eq!(binary_payload(msg), Some(&big[..]));
        assert_eq!((r.held, r.ahead), (0, 0), "nothing counted once whole");
    }

    #[test]
    fn a_first_fragment_received_into_the_buffer_made_ahead_is_put_together_there() {
        let big: Vec<u8> = (0..3 * FRAGMENT_SIZE + 10)
            .map(|i| (i % 249) as u8)
            .collect();
        let mut w = Writer::new(flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS);
        let mut out = OutBuf::default();
        w.write(
            Ctl::Terms(&[Term::atom("first"), Term::Int(1)]),
            Some(Payload::Term(&Term::binary(big.clone()))),
            &mut out,
        );
        let fs = frames(&out.to_vec());
        let mut r = Reader::new(16 * FRAGMENT_SIZE);
        let count = u64::from_be_bytes(fs[0][10..18].try_into().unwrap());
        assert_eq!(count, 4);
        let mut body = r
            .first_frame_buffer(count, fs[0].len())
            .expect("room for the claim");
        assert!(body.len() >= 4 * fs[0].len());
        // As the socket reader does: the frame lands at the buffer's start.
        body[..fs[0].len()].copy_from_slice(&fs[0]);
        let at = body.as_ptr();
        assert!(matches!(r.first_fragment_in(body, fs[0].len()), Ok(None)));
        for f in &fs[1..3] {
            assert!(matches!(r.read(f, Some(f)), Ok(None)));
        }
        assert_eq!(
            r.partial.values().next().map(|p| p.body.as_ptr()),
            Some(at),
            "put together where the first frame was received"
        );
        let msg = r.read(&fs[3], Some(&fs[3])).unwrap().expect("whole");
        let got = msg.payload.as_ref().and_then(|t| t.as_binary()).unwrap();
        assert_eq!(&got[..], &big[..]);
        assert_eq!((r.held, r.ahead), (0, 0));
        // A buffer holding something else is refused, not misread; a claim
        // past the limit gets no buffer.
        let err = r.first_fragment_in(vec![131, 68, 0, 0], 4).unwrap_err();
        assert!(err.0.contains("not a first fragment"), "{}", err.0);
        assert!(r.first_frame_buffer(1 << 40, 1000).is_none());
        assert!(Reader::new(1000).first_frame_buffer(2, 600).is_none());
    }

    #[test]
    fn fragments_larger_than_the_first_claimed_still_arrive_and_claims_past_the_limit_are_not_made_ahead()
     {
        // A whole message, then cut into a first fragment of 10 bytes that
        // claims 2 fragments, and a second fragment with all the rest.
        let big: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let mut w = Writer::new(flags::DIST_HDR_ATOM_CACHE);
        let mut out = OutBuf::default();
        w.write(
            Ctl::Terms(&[Term::Int(1)]),
            Some(Payload::Term(&Term::binary(big.clone()))),
            &mut out,
        );
        let whole = &frames(&out.to_vec())[0];
        assert_eq!(&whole[..3], &[131, 68, 0], "no atoms in the header");
        let body = &whole[3..];
        let mut second = vec![131, 70];
        second.extend_from_slice(&9u64.to_be_bytes());
        second.extend_from_slice(&1u64.to_be_bytes());
        second.extend_from_slice(&body[10..]);
        let second = Bytes::from(second);
        let mut r = Reader::new(1 << 20);
        assert!(matches!(
            r.read(&first_fragment(9, 2, &body[..10]), None),
            Ok(None)
        ));
        // Claimed: 2 frames of 29 bytes (the header's 19 and 10 of data).
        assert_eq!(r.ahead, 2 * 29 + PEEK - 10, "the claim, made ahead");
        let msg = r.read(&second, Some(&second)).unwrap().expect("whole");
        assert_eq!(binary_payload(msg), Some(&big[..]));
        assert_eq!((r.held, r.ahead), (0, 0));
        // A claim the limit cannot hold gets memory for what came only,
        // and one made ahead counts against the limit for the next claim.
        let mut r = Reader::new(1000);
        assert!(matches!(
            r.read(&first_fragment(1, 200, &[7; 10]), None),
            Ok(None)
        ));
        assert_eq!(r.ahead, 0, "5800 bytes claimed, 1000 allowed");
        assert!(matches!(
            r.read(&first_fragment(2, 20, &[7; 10]), None),
            Ok(None)
        ));
        assert_eq!(r.ahead, 20 * 29 + PEEK - 10);
        assert!(matches!(
            r.read(&first_fragment(3, 20, &[7; 10]), None),
            Ok(None)
        ));
        assert_eq!(
            r.ahead,
            20 * 29 + PEEK - 10,
            "no room left for a second claim"
        );
    }

    /// The bytes of a message's payload, if it is a binary.
    fn binary_payload(msg: &Incoming) -> Option<&[u8]> {
        msg.payload
            .as_ref()
            .and_then(|t| t.as_binary())
            .map(|b| &b[..])
    }

    /// A first fragment (`131 69`) of `sequence` claiming `id` fragments,
    /// with an empty atom cache header and `data` after it.
    fn first_fragment(sequence: u64, id: u64, data: &[u8]) -> Vec<u8> {
        let mut f = vec![131, 69];
        f.extend_from_slice(&sequence.to_be_bytes());
        f.extend_from_slice(&id.to_be_bytes());
        f.push(0);
        f.extend_from_slice(data);
        f
    }

    #[test]
    fn a_fragment_storm_reserves_only_what_arrived_and_is_refused_past_the_in_flight_limit() {
        let mut r = Reader::with_limits(1 << 30, 64, 1000);
        // Each first fragment claims 2^40 fragments to come: the buffer
        // kept for it is sized by the 10 bytes that came.
        for seq in 0..64u64 {
            assert!(matches!(
                r.read(&first_fragment(seq, 1 << 40, &[7; 10]), None),
                Ok(None)
            ));
        }
        let reserved: usize = r.partial.values().map(|p| p.body.capacity()).sum();
        assert!(
            reserved <= 64 * (10 + PEEK),
            "{reserved} bytes reserved for 640 that arrived"
        );
        let err = r
            .read(&first_fragment(64, 1 << 40, &[7; 10]), None)
            .unwrap_err();
        assert!(
            err.0.contains("more than 64 fragmented messages"),
            "{}",
            err.0
        );
    }

    #[test]
    fn a_peer_that_adds_more_atoms_than_its_budget_is_refused() {
        let mut r = Reader::with_limits(1 << 20, 16, 10);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        // A frame with no atom cache entries: control {2, '', ''}, and a
        // payload atom written inline with a name never seen before.
        let frame = |name: &str| {
            let mut f = vec![131, 68, 0, 104, 3, 97, 2, 119, 0, 119, 0, 119];
            f.push(name.len() as u8);
            f.extend_from_slice(name.as_bytes());
            f
        };
        for i in 0..10 {
            let name = format!("budget_{stamp}_{i}");
            assert!(r.read(&frame(&name), None).is_ok(), "atom {i}");
            r.done();
        }
        // Atoms that exist cost nothing.
        assert!(r.read(&frame("ok"), None).is_ok());
        r.done();
        assert_eq!(r.new_atoms, 10);
        // The eleventh new one is refused, naming the breach.
        let err = r
            .read(&frame(&format!("budget_{stamp}_10")), None)
            .unwrap_err();
        assert!(err.0.contains("added more than 10 atoms"), "{}", err.0);
    }

    #[test]
    fn mutated_frames_from_a_real_writer_are_read_or_refused_never_a_panic() {
        // Valid traffic (atom cache entries, fragments, large binaries),
        // then 5,000 copies with bytes flipped, cut or repeated, read as
        // a hostile peer's connection would be: a small, deterministic
        // cousin of the `dist_frames` fuzz target, run with the tests.
        let mut w = Writer::new(flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS);
        let mut out = OutBuf::default();
        let msgs = [
            Term::tuple([
                Term::atom("hello"),
                Term::Int(-7),
                Term::binary(vec![1; 300]),
            ]),
            Term::List(vec![Term::atom("a"), Term::atom("b"), Term::Float(1.5)]),
            // In two fragments (read_frames takes up to 4 MiB).
            Term::binary(vec![9; FRAGMENT_SIZE + 1000]),
        ];
        for m in &msgs {
            w.write(
                Ctl::Terms(&[Term::Int(2), Term::atom(""), Term::atom("x")]),
                Some(Payload::Term(m)),
                &mut out,
            );
        }
        let clean = out.to_vec();
        assert_eq!(crate::dist::fuzzing::read_frames(&clean), msgs.len());
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for _ in 0..5_000 {
            let mut bytes = clean.clone();
            for _ in 0..(next() % 4 + 1) {
                let at = (next() as usize) % bytes.len();
                match next() % 4 {
                    0 => bytes[at] = next() as u8,
                    1 => bytes.truncate(at),
                    2 => bytes[at] ^= 1 << (next() % 8),
                    _ => {
                        let end = (at + (next() as usize % 64)).min(bytes.len());
                        let piece = bytes[at..end].to_vec();
                        bytes.splice(at..at, piece);
                    }
                }
                if bytes.is_empty() {
                    break;
                }
            }
            let _ = crate::dist::fuzzing::read_frames(&bytes);
        }
    }

    #[test]
    fn a_large_payload_encoded_before_the_lock_reads_back_the_same() {
        let big = Term::List(
            (0..10_000)
                .map(|i| Term::tuple([Term::atom("item"), Term::Int(i), Term::atom("ok")]))
                .collect(),
        );
        let payload = Payload::Term(&big);
        assert!(payload.is_large());
        assert!(!Payload::Term(&Term::atom("small")).is_large());
        let encoded = payload.encode_alone();
        assert_eq!(Payload::Encoded(&encoded).to_term(), big);
        for peer in [
            flags::DIST_HDR_ATOM_CACHE | flags::FRAGMENTS,
            flags::DIST_HDR_ATOM_CACHE,
            0,
        ] {
            let mut w = Writer::new(peer);
            let mut out = OutBuf::default();
            let control = [Term::Int(2), Term::atom(""), Term::atom("x")];
            w.write(
                Ctl::Terms(&control),
                Some(Payload::Encoded(&encoded)),
                &mut out,
            );
            let mut r = Reader::new(1 << 30);
            let mut got = None;
            for f in frames(&out.to_vec()) {
                if let Some(m) = r.read(&f, Some(&f)).unwrap() {
                    got = m.take_payload();
                }
            }
            assert_eq!(got.as_ref(), Some(&big), "flags {peer:#x}");
        }
    }

    #[test]
    fn one_frame_naming_many_new_atoms_stops_at_the_budget_as_it_decodes() {
        let mut r = Reader::with_limits(1 << 20, 16, 10);
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        // {2, '', ''} and a payload list of 1,000 atoms never seen before.
        let mut f = vec![131, 68, 0, 104, 3, 97, 2, 119, 0, 119, 0, 108, 0, 0, 3, 232];
        let names: Vec<String> = (0..1000)
            .map(|i| format!("one_frame_{stamp}_{i}"))
            .collect();
        for n in &names {
            f.push(119);
            f.push(n.len() as u8);
            f.extend_from_slice(n.as_bytes());
        }
        f.push(106);
        let err = r.read(&f, None).unwrap_err();
        assert!(err.0.contains("new atoms"), "{}", err.0);
        let made = names.iter().filter(|n| Atom::existing(n).is_some()).count();
        assert!(
            made <= 11,
            "{made} atoms made from one frame with a budget of 10"
        );
    }
}
