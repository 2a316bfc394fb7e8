//! Atoms: interned names, as in the Erlang runtime.
//!
//! An [`Atom`] is a 4-byte handle into a process-wide table, so comparing,
//! hashing and copying atoms costs what it costs for an integer. Like the
//! Erlang VM's atom table, ours never forgets an atom, and so it has a limit:
//! [`ATOM_LIMIT`] entries, Erlang's own default (1,048,576). Creating an atom
//! past the limit is an error ([`AtomError::TableFull`]), never an abort.
//!
//! Decoding untrusted input may create atoms. Where the input comes from a
//! party that should not be able to grow the table, decode in *safe* mode
//! ([`crate::DecodeOptions::safe`]), which, like `binary_to_term(B, [safe])`,
//! refuses atoms that do not exist yet.
//!
//! Name reads (`as_str`) take no lock. Look-ups by name go through a small
//! per-thread cache in front of one global map, so the common case on a hot
//! path (decoding atoms seen before) takes no lock either.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::sync::{LazyLock, Mutex, OnceLock};

use rustc_hash::FxHashMap;

/// The most atoms the table holds; Erlang's default limit.
pub const ATOM_LIMIT: usize = 1 << 20;
/// The longest atom, in characters (Unicode code points), as in Erlang.
pub const MAX_ATOM_CHARS: usize = 255;

const SEGMENT_BITS: usize = 12;
const SEGMENT_LEN: usize = 1 << SEGMENT_BITS;
const SEGMENTS: usize = ATOM_LIMIT / SEGMENT_LEN;

/// An interned Erlang atom.
///
/// Atoms order by their text, code point by code point, as Erlang orders
/// them. `Atom::from("ok")` interns (and panics only for a name over 255
/// characters or a full table; [`Atom::try_new`] returns those as errors).
///
/// # Examples
///
/// ```
/// use ergo_etf::Atom;
/// let ok = Atom::from("ok");
/// assert_eq!(ok, Atom::OK);
/// assert_eq!(ok.as_str(), "ok");
/// assert!(Atom::from("abc") < Atom::from("abd"));
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Atom(u32);

/// Why an atom could not be made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AtomError {
    /// The name has more than 255 characters.
    TooLong {
        /// How many characters the name has.
        chars: usize,
    },
    /// The table already holds [`ATOM_LIMIT`] atoms.
    TableFull,
}

impl fmt::Display for AtomError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AtomError::TooLong { chars } => write!(
                f,
                "atom has {chars} characters, more than the limit of {MAX_ATOM_CHARS}"
            ),
            AtomError::TableFull => {
                write!(f, "atom table is full ({ATOM_LIMIT} atoms)")
            }
        }
    }
}

impl std::error::Error for AtomError {}

/// One segment of the table: `SEGMENT_LEN` name slots, filled once each.
type Segment = Box<[OnceLock<&'static Entry>]>;

/// What the table keeps for each atom: its text, and its two external
/// encodings worked out once, so that writing an atom is one copy.
struct Entry {
    text: &'static str,
    /// `ATOM_EXT` (Latin-1, as `term_to_binary/1` writes it), or the UTF-8
    /// form when the text is not Latin-1.
    latin1_ext: Box<[u8]>,
    /// `SMALL_ATOM_UTF8_EXT` or `ATOM_UTF8_EXT`.
    utf8_ext: Box<[u8]>,
}

impl Entry {
    fn new(text: &'static str) -> Entry {
        let b = text.as_bytes();
        let mut utf8 = Vec::with_capacity(b.len() + 3);
        if b.len() < 256 {
            utf8.extend_from_slice(&[crate::tags::SMALL_ATOM_UTF8, b.len() as u8]);
        } else {
            utf8.push(crate::tags::ATOM_UTF8);
            utf8.extend_from_slice(&(b.len() as u16).to_be_bytes());
        }
        utf8.extend_from_slice(b);
        let latin1 = if is_latin1(text) {
            let chars: Vec<u8> = text.chars().map(|c| c as u8).collect();
            let mut v = Vec::with_capacity(chars.len() + 3);
            v.push(crate::tags::ATOM);
            v.extend_from_slice(&(chars.len() as u16).to_be_bytes());
            v.extend_from_slice(&chars);
            v
        } else {
            utf8.clone()
        };
        Entry {
            text,
            latin1_ext: latin1.into_boxed_slice(),
            utf8_ext: utf8.into_boxed_slice(),
        }
    }
}

struct Table {
    segments: Box<[OnceLock<Segment>]>,
    by_name: Mutex<FxHashMap<&'static str, Atom>>,
}

impl Table {
    fn slot(&self, index: u32) -> Option<&OnceLock<&'static Entry>> {
        let index = index as usize;
        let segment = self.segments.get(index >> SEGMENT_BITS)?.get()?;
        segment.get(index & (SEGMENT_LEN - 1))
    }
}

/// Slots in each thread's direct-mapped cache of recently seen atoms.
const RECENT_SLOTS: usize = 1024;

thread_local! {
    /// Every atom this thread has looked up, so that it locks the global
    /// table only for names it has not seen yet.
    static CACHE: RefCell<FxHashMap<&'static str, Atom>> = RefCell::new(FxHashMap::default());
    /// A small direct-mapped cache in front of `CACHE`: decoding sees the
    /// same few atoms again and again (`ok`, record tags, map keys), and a
    /// hit here costs a short hash and one comparison.
    static RECENT: [Cell<Option<(&'static str, Atom)>>; RECENT_SLOTS] =
        const { [const { Cell::new(None) }; RECENT_SLOTS] };
}

/// The `RECENT` slot for a name.
#[inline]
fn recent_slot(name: &[u8]) -> usize {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write(name);
    // The high bits of an Fx hash are the well-mixed ones.
    (h.finish() >> 54) as usize % RECENT_SLOTS
}

#[inline]
fn recent_get(name: &str) -> Option<Atom> {
    let slot = recent_slot(name.as_bytes());
    match RECENT.with(|r| r[slot].get()) {
        Some((text, atom)) if text == name => Some(atom),
        _ => None,
    }
}

/// The atom whose external text is `raw`, if this thread saw it lately:
/// the bytes are compared with the atom's own, so they need no UTF-8
/// check. `latin1` for `ATOM_EXT`/`SMALL_ATOM_EXT` text, which matches
/// only when it is ASCII (beyond that its bytes differ from the UTF-8).
#[inline]
pub(crate) fn recent_raw(raw: &[u8], latin1: bool) -> Option<Atom> {
    if latin1 && !raw.is_ascii() {
        return None;
    }
    let slot = recent_slot(raw);
    match RECENT.with(|r| r[slot].get()) {
        Some((text, atom)) if same_bytes(text.as_bytes(), raw) => Some(atom),
        _ => None,
    }
}

/// `a == b`, compared in place for the short names most atoms have (a
/// call to `memcmp` costs more than comparing a few bytes).
#[inline]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    a == b
}

#[inline]
fn recent_put(atom: Atom) {
    let text = atom.as_str();
    let slot = recent_slot(text.as_bytes());
    RECENT.with(|r| r[slot].set(Some((text, atom))));
}

fn cached(name: &str) -> Option<Atom> {
    if let Some(atom) = recent_get(name) {
        return Some(atom);
    }
    let atom = CACHE.with(|c| c.borrow().get(name).copied())?;
    recent_put(atom);
    Some(atom)
}

fn remember(atom: Atom) {
    CACHE.with(|c| c.borrow_mut().insert(atom.as_str(), atom));
    recent_put(atom);
}

macro_rules! predefined_atoms {
    ($($(#[$doc:meta])* $konst:ident = $text:literal,)*) => {
        const PREDEFINED: &[&str] = &[$($text),*];
        #[allow(non_camel_case_types, clippy::upper_case_acronyms)]
        enum Predefined { $($konst),* }
        impl Atom {
            $( $(#[$doc])* pub const $konst: Atom = Atom(Predefined::$konst as u32); )*
        }
    };
}

predefined_atoms! {
    /// The empty atom `''`.
    EMPTY = "",
    /// `ok`
    OK = "ok",
    /// `error`
    ERROR = "error",
    /// `true`
    TRUE = "true",
    /// `false`
    FALSE = "false",
    /// `undefined`
    UNDEFINED = "undefined",
    /// `nil` (Elixir's `nil`)
    NIL = "nil",
    /// `normal`
    NORMAL = "normal",
    /// `shutdown`
    SHUTDOWN = "shutdown",
    /// `kill`
    KILL = "kill",
    /// `killed`
    KILLED = "killed",
    /// `noproc`
    NOPROC = "noproc",
    /// `noconnection`
    NOCONNECTION = "noconnection",
    /// `timeout`
    TIMEOUT = "timeout",
    /// `badarg`
    BADARG = "badarg",
    /// `'EXIT'`
    EXIT = "EXIT",
    /// `'DOWN'`
    DOWN = "DOWN",
    /// `process`
    PROCESS = "process",
    /// `'$gen_call'`
    GEN_CALL = "$gen_call",
    /// `'$gen_cast'`
    GEN_CAST = "$gen_cast",
    /// `alias`
    ALIAS = "alias",
    /// `nonode@nohost`, the name of a node that is not distributed.
    NONODE = "nonode@nohost",
    /// `__struct__`, the key Elixir structs carry their module in.
    STRUCT = "__struct__",
    /// `reply`
    REPLY = "reply",
    /// `noreply`
    NOREPLY = "noreply",
    /// `stop`
    STOP = "stop",
    /// `infinity`
    INFINITY = "infinity",
}

static TABLE: LazyLock<Table> = LazyLock::new(|| {
    let segments = (0..SEGMENTS).map(|_| OnceLock::new()).collect();
    let table = Table {
        segments,
        by_name: Mutex::new(FxHashMap::default()),
    };
    {
        let mut by_name = table.by_name.lock().unwrap_or_else(|e| e.into_inner());
        for (i, name) in PREDEFINED.iter().enumerate() {
            insert_locked(&table, &mut by_name, name, i as u32);
        }
    }
    table
});

fn insert_locked(
    table: &Table,
    by_name: &mut FxHashMap<&'static str, Atom>,
    name: &'static str,
    index: u32,
) {
    let seg = &table.segments[index as usize >> SEGMENT_BITS];
    let seg = seg.get_or_init(|| (0..SEGMENT_LEN).map(|_| OnceLock::new()).collect());
    let entry: &'static Entry = Box::leak(Box::new(Entry::new(name)));
    let _ = seg[index as usize & (SEGMENT_LEN - 1)].set(entry);
    by_name.insert(name, Atom(index));
}

fn char_count_ok(name: &str) -> Result<(), AtomError> {
    // Fast path: 255 bytes can never be more than 255 characters.
    if name.len() > MAX_ATOM_CHARS {
        let chars = name.chars().count();
        if chars > MAX_ATOM_CHARS {
            return Err(AtomError::TooLong { chars });
        }
    }
    Ok(())
}

impl Atom {
    /// Interns `name`, or fails if it is too long or the table is full.
    pub fn try_new(name: &str) -> Result<Atom, AtomError> {
        Atom::intern_within(name, ATOM_LIMIT).map(|(atom, _)| atom)
    }

    /// Interns `name` only while the table holds fewer than `limit` atoms
    /// (past it, a new name is [`AtomError::TableFull`]; existing atoms are
    /// always found). Also says whether the atom was created by this call.
    ///
    /// Input from outside uses a limit below [`ATOM_LIMIT`], so that the
    /// rest of the table stays for the program's own atoms (the
    /// distribution keeps room for node names this way).
    pub fn intern_within(name: &str, limit: usize) -> Result<(Atom, bool), AtomError> {
        if let Some(atom) = cached(name) {
            return Ok((atom, false));
        }
        char_count_ok(name)?;
        let table = &*TABLE;
        let mut by_name = table.by_name.lock().unwrap_or_else(|e| e.into_inner());
        let (atom, created) = match by_name.get(name) {
            Some(&atom) => (atom, false),
            None => {
                let index = by_name.len();
                if index >= limit.min(ATOM_LIMIT) {
                    return Err(AtomError::TableFull);
                }
                let stored: &'static str = Box::leak(name.to_owned().into_boxed_str());
                insert_locked(table, &mut by_name, stored, index as u32);
                (Atom(index as u32), true)
            }
        };
        drop(by_name);
        remember(atom);
        Ok((atom, created))
    }

    /// Interns `name`.
    ///
    /// # Panics
    ///
    /// When `name` has more than 255 characters or the atom table is full;
    /// use [`Atom::try_new`] where the name comes from outside the program.
    pub fn new(name: &str) -> Atom {
        match Atom::try_new(name) {
            Ok(atom) => atom,
            Err(e) => panic!("cannot make atom {name:?}: {e}"),
        }
    }

    /// The atom named `name` if it already exists; never adds to the table.
    ///
    /// This is `binary_to_existing_atom/2`.
    pub fn existing(name: &str) -> Option<Atom> {
        if let Some(atom) = cached(name) {
            return Some(atom);
        }
        let atom = TABLE
            .by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .copied()?;
        remember(atom);
        Some(atom)
    }

    /// The atom's text.
    pub fn as_str(self) -> &'static str {
        match TABLE.slot(self.0).and_then(OnceLock::get) {
            Some(entry) => entry.text,
            // An `Atom` is only ever made from an index the table filled.
            None => "",
        }
    }

    /// The atom's external encoding: `ATOM_EXT` where Latin-1 can hold it
    /// (`term_to_binary/1`'s form), or the UTF-8 form when `utf8` is set or
    /// the text needs it.
    #[inline]
    pub(crate) fn ext_bytes(self, utf8: bool) -> &'static [u8] {
        match TABLE.slot(self.0).and_then(OnceLock::get) {
            Some(entry) if utf8 => &entry.utf8_ext,
            Some(entry) => &entry.latin1_ext,
            None => &[crate::tags::SMALL_ATOM_UTF8, 0],
        }
    }

    /// The atom's index in the table (stable for the life of the process).
    pub fn index(self) -> u32 {
        self.0
    }

    /// How many atoms exist in this OS process.
    pub fn count() -> usize {
        TABLE
            .by_name
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
    }

    /// `true` when every character of the atom is in Latin-1 (code points
    /// up to 255), so that the old Latin-1 atom tags can carry it.
    pub fn is_latin1(self) -> bool {
        is_latin1(self.as_str())
    }
}

pub(crate) fn is_latin1(s: &str) -> bool {
    s.is_ascii() || s.chars().all(|c| (c as u32) < 256)
}

impl PartialOrd for Atom {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Atom {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        if self.0 == other.0 {
            return std::cmp::Ordering::Equal;
        }
        // UTF-8 byte order is code point order.
        self.as_str().cmp(other.as_str())
    }
}

impl From<&str> for Atom {
    fn from(name: &str) -> Atom {
        Atom::new(name)
    }
}

impl From<&String> for Atom {
    fn from(name: &String) -> Atom {
        Atom::new(name)
    }
}

impl From<String> for Atom {
    fn from(name: String) -> Atom {
        Atom::new(&name)
    }
}

impl AsRef<str> for Atom {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq<str> for Atom {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for Atom {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl fmt::Debug for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Atom({})", self)
    }
}

/// Erlang's reserved words: an atom spelled like one must be quoted. `maybe`
/// and `else` are reserved since OTP 27 (OTP 25 and 26 print them bare);
/// quoting them is readable by every release.
const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "else", "end", "fun", "if", "let", "maybe", "not", "of", "or",
    "orelse", "receive", "rem", "try", "when", "xor",
];

/// `true` when Erlang prints the atom without quotes.
pub(crate) fn is_bare_atom(s: &str) -> bool {
    let mut chars = s.chars();
    let Some(first) = chars.next() else {
        return false;
    };
    let lower = |c: char| c.is_ascii_lowercase() || (('ß'..='ÿ').contains(&c) && c != '÷');
    let upper = |c: char| c.is_ascii_uppercase() || (('À'..='Þ').contains(&c) && c != '×');
    if !lower(first) {
        return false;
    }
    chars.all(|c| lower(c) || upper(c) || c.is_ascii_digit() || c == '_' || c == '@')
        && !RESERVED.contains(&s)
}

/// Writes `s` the way Erlang's `~p` writes an atom (quoted where needed).
pub(crate) fn write_atom(f: &mut impl fmt::Write, s: &str) -> fmt::Result {
    if is_bare_atom(s) {
        return f.write_str(s);
    }
    f.write_char('\'')?;
    for c in s.chars() {
        match c {
            '\'' => f.write_str("\\'")?,
            '\\' => f.write_str("\\\\")?,
            '\n' => f.write_str("\\n")?,
            '\t' => f.write_str("\\t")?,
            '\r' => f.write_str("\\r")?,
            c if (c as u32) < 32 || c as u32 == 127 => write!(f, "\\x{{{:X}}}", c as u32)?,
            c => f.write_char(c)?,
        }
    }
    f.write_char('\'')
}

impl fmt::Display for Atom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_atom(f, self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn predefined_atoms_have_their_names() {
        assert_eq!(Atom::OK.as_str(), "ok");
        assert_eq!(Atom::GEN_CALL.as_str(), "$gen_call");
        assert_eq!(Atom::from("undefined"), Atom::UNDEFINED);
        assert_eq!(Atom::EMPTY.as_str(), "");
    }

    #[test]
    fn interning_the_same_name_gives_the_same_atom() {
        let a = Atom::from("some_atom_name");
        let b = Atom::from(String::from("some_atom_name"));
        assert_eq!(a, b);
        let t = std::thread::spawn(|| Atom::from("some_atom_name"))
            .join()
            .unwrap();
        assert_eq!(a, t);
    }

    #[test]
    fn existing_does_not_create() {
        assert_eq!(Atom::existing("never_made_by_anyone_xyzzy_42"), None);
        let made = Atom::from("made_now_xyzzy_43");
        assert_eq!(Atom::existing("made_now_xyzzy_43"), Some(made));
    }

    #[test]
    fn names_over_255_characters_are_refused() {
        let ok = "é".repeat(255);
        assert!(Atom::try_new(&ok).is_ok());
        let long = "é".repeat(256);
        assert_eq!(Atom::try_new(&long), Err(AtomError::TooLong { chars: 256 }));
    }

    #[test]
    fn atoms_display_quoted_like_erlang() {
        assert_eq!(Atom::from("ok").to_string(), "ok");
        assert_eq!(Atom::from("Elixir.Foo").to_string(), "'Elixir.Foo'");
        assert_eq!(Atom::from("hello world").to_string(), "'hello world'");
        assert_eq!(Atom::from("end").to_string(), "'end'");
        assert_eq!(Atom::from("it's").to_string(), "'it\\'s'");
        assert_eq!(Atom::from("a@b_C1").to_string(), "a@b_C1");
        assert_eq!(Atom::EMPTY.to_string(), "''");
    }
}
