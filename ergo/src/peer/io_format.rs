//! `io_lib:format/2`, for the console output of peer nodes.
//!
//! An Erlang node whose group leader lives on this node does not format
//! what it prints: `io:format(Format, Args)` reaches the group leader as the
//! I/O request `{put_chars, unicode, io_lib, format, [Format, Args]}`, and
//! the group leader runs `io_lib:format/2` itself. [`format`] does that
//! here, with the output of OTP 25's `io_lib:format/2`:
//!
//! - control sequences `~F.P.PadModC`: a field width `F` (negative to
//!   left-justify), a precision `P`, a pad character `Pad`, the modifiers
//!   `t` (Unicode), `l` (no string detection), `k` and `K` (map key order,
//!   from OTP 26), and `*` for any of `F`, `P` and `Pad` to take its value
//!   from the arguments;
//! - the control characters `~ c f e g s w p W P B X # b x + n i`, with
//!   Erlang's padding, truncation (`***` for a term that does not fit its
//!   field), float rounding and string detection;
//! - a format that is a charlist, a binary (its bytes read as Latin-1, as
//!   Erlang reads them) or an atom; elements of a format list that are not
//!   characters are copied as text, as Erlang copies them.
//!
//! It differs from Erlang here:
//!
//! - `~p` and `~P` write the term on one line, however long it is: the
//!   line breaking of `io_lib_pretty` is not done, so the field width (the
//!   line length) and the precision (the start column) of `~p` change
//!   nothing;
//! - pids, ports and references name their node (`<peer@host.85.0>`),
//!   as this crate prints them everywhere, where Erlang writes an index that
//!   only means something inside the printing VM (`<0.85.0>`);
//! - the precision of `~ts` cuts text into grapheme clusters as
//!   `string:slice/3` does, but recognises only the common ones (combining
//!   marks, CR LF, emoji sequences and flags) rather than all of
//!   Unicode's rules;
//! - field widths, precisions and repeat counts over 2^20 are refused
//!   rather than allocated, and so is a term nested deeper than a decoded
//!   term can be ([`ergo_etf::DEFAULT_MAX_DEPTH`]);
//! - a map of over 32 pairs, which Erlang writes in the order of its hash
//!   table, is written in the reverse of the order its pairs arrived in:
//!   for a map decoded from Erlang that is the same order. (Smaller maps
//!   are written in key order, as Erlang writes them.)
//!
//! Atoms print as OTP 25 prints them: `maybe` and `else` are not quoted
//! (OTP 27 quotes them), and `io:printable_range()` is taken to be
//! `latin1`, its default: `~tp` shows lists and binaries as strings only
//! when every character is a printable Latin-1 one.

use std::cmp::Ordering;
use std::fmt::Write as _;

use ergo_etf::{DEFAULT_MAX_DEPTH, Fun, Map, Term};

/// A placeholder for the arguments a control sequence does not take.
static NIL: Term = Term::NIL;

/// The largest field width, precision or repeat count accepted.
const MAX_FIELD: i64 = 1 << 20;

/// Formats `args` (a proper list term) by `format` (a charlist, a binary or
/// an atom), as `io_lib:format/2` does; `Err` says in words why (bad format
/// string, wrong number of arguments, an argument of the wrong type), the
/// way `io_lib:format` raises `badarg`.
pub(crate) fn format(format: &Term, args: &Term) -> Result<String, String> {
    let items = format_items(format)?;
    let args = match args {
        Term::List(v) => v.as_slice(),
        other => {
            return Err(format!(
                "the arguments must be a proper list, not {}",
                describe(other)
            ));
        }
    };
    let mut scan = Scanner {
        items: &items,
        pos: 0,
        args,
        used: 0,
    };
    let mut out = String::new();
    while let Some(item) = scan.items.get(scan.pos) {
        scan.pos += 1;
        match item {
            Item::Char('~') => {
                let d = scan.directive()?;
                d.write(&mut out)?;
            }
            Item::Char(c) => out.push(*c),
            Item::Text(t) => out.push_str(t),
        }
    }
    match args.len() - scan.used {
        0 => Ok(out),
        1 => Err("1 argument is left over".to_owned()),
        n => Err(format!("{n} arguments are left over")),
    }
}

/// The characters of chardata/iolist `t` (binaries as UTF-8, lists of
/// integers as Unicode code points, nested lists), as
/// `unicode:characters_to_list` would give them; `None` if `t` is not
/// chardata.
pub(crate) fn chardata(t: &Term) -> Option<String> {
    let mut out = String::new();
    match t {
        Term::Binary(b) => out.push_str(std::str::from_utf8(b).ok()?),
        Term::List(_) | Term::ImproperList(..) => {
            push_list(t, &mut out, 0, &mut |e, out| match e {
                Term::Int(c) => {
                    out.push(u32::try_from(*c).ok().and_then(char::from_u32)?);
                    Some(())
                }
                Term::Binary(b) => {
                    out.push_str(std::str::from_utf8(b).ok()?);
                    Some(())
                }
                _ => None,
            })?;
        }
        _ => return None,
    }
    Some(out)
}

/// Walks the nested lists of an iolist or chardata `t`, handing every
/// element that is not a list (integers, binaries, and a binary as the
/// tail of an improper list) to `leaf`; `None` if `leaf` refuses one, a
/// tail is not a binary, or the nesting is too deep.
fn push_list(
    t: &Term,
    out: &mut String,
    nesting: usize,
    leaf: &mut impl FnMut(&Term, &mut String) -> Option<()>,
) -> Option<()> {
    if nesting > DEFAULT_MAX_DEPTH {
        return None;
    }
    let (items, tail) = match t {
        Term::List(v) => (v.as_slice(), None),
        Term::ImproperList(v, tail) => (v.as_slice(), Some(&**tail)),
        other => return leaf(other, out),
    };
    for e in items {
        push_list(e, out, nesting + 1, leaf)?;
    }
    match tail {
        None => Some(()),
        Some(b @ Term::Binary(_)) => leaf(b, out),
        Some(_) => None,
    }
}

// ---------------------------------------------------------------- scanning

/// One element of the format: a character, or (for a format that is a
/// list holding more than integers) a piece of chardata, copied as it is.
enum Item {
    Char(char),
    Text(String),
}

fn format_items(format: &Term) -> Result<Vec<Item>, String> {
    match format {
        Term::List(v) => v
            .iter()
            .map(|e| match e {
                Term::Int(c) => u32::try_from(*c)
                    .ok()
                    .and_then(char::from_u32)
                    .map(Item::Char)
                    .ok_or_else(|| format!("the format holds {c}, which is not a character")),
                other => chardata(other).map(Item::Text).ok_or_else(|| {
                    format!("the format holds {}, which is not text", describe(other))
                }),
            })
            .collect(),
        // Erlang reads a binary format byte by byte, as Latin-1.
        Term::Binary(b) => Ok(b.iter().map(|&c| Item::Char(c as char)).collect()),
        Term::Atom(a) => Ok(a.as_str().chars().map(Item::Char).collect()),
        other => Err(format!(
            "the format must be a string, a binary or an atom, not {}",
            describe(other)
        )),
    }
}

struct Scanner<'a> {
    items: &'a [Item],
    pos: usize,
    args: &'a [Term],
    used: usize,
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<char> {
        self.peek_at(0)
    }

    fn peek_at(&self, k: usize) -> Option<char> {
        match self.items.get(self.pos + k) {
            Some(Item::Char(c)) => Some(*c),
            _ => None,
        }
    }

    fn arg(&mut self, what: &str) -> Result<&'a Term, String> {
        let a = self
            .args
            .get(self.used)
            .ok_or_else(|| format!("too few arguments: none is left for {what}"))?;
        self.used += 1;
        Ok(a)
    }

    /// A field width or precision: digits, `*` (the next argument), or
    /// nothing.
    fn field_value(&mut self) -> Result<Option<i64>, String> {
        if self.peek() == Some('*') {
            self.pos += 1;
            return match self.arg("a `*`")? {
                Term::Int(n) if n.unsigned_abs() <= MAX_FIELD as u64 => Ok(Some(*n)),
                Term::Int(_) | Term::BigInt(_) => Err(too_large()),
                other => Err(format!(
                    "the argument for a `*` must be an integer, not {}",
                    describe(other)
                )),
            };
        }
        let mut value = None;
        while let Some(d) = self.peek().and_then(|c| c.to_digit(10)) {
            self.pos += 1;
            let v = value.unwrap_or(0) * 10 + i64::from(d);
            if v > MAX_FIELD {
                return Err(too_large());
            }
            value = Some(v);
        }
        Ok(value)
    }

    /// Reads a control sequence (after its `~`) and takes its arguments.
    fn directive(&mut self) -> Result<Directive<'a>, String> {
        let width = if self.peek() == Some('-') {
            self.pos += 1;
            match self.field_value()? {
                Some(f) => Some(-f),
                None => {
                    return Err(
                        "a `-` in a control sequence must be followed by a field width".to_owned(),
                    );
                }
            }
        } else {
            self.field_value()?
        };
        let (width, left) = match width {
            None => (None, false),
            Some(f) => (Some(f.unsigned_abs() as usize), f < 0),
        };
        let precision = if self.peek() == Some('.') {
            self.pos += 1;
            match self.field_value()? {
                Some(p) if p < 0 => return Err(format!("the precision {p} is negative")),
                p => p.map(|p| p as usize),
            }
        } else {
            None
        };
        let mut pad = ' ';
        if self.peek() == Some('.') {
            match self.peek_at(1) {
                Some('*') => {
                    self.pos += 2;
                    pad = match self.arg("a `*` pad character")? {
                        Term::Int(c) => to_char(*c)?,
                        other => {
                            return Err(format!(
                                "the pad character must be a character, not {}",
                                describe(other)
                            ));
                        }
                    };
                }
                Some(c) => {
                    self.pos += 2;
                    pad = c;
                }
                None => {}
            }
        }
        let mut d = Directive {
            control: '~',
            width,
            left,
            precision,
            pad,
            unicode: false,
            strings: true,
            order: MapOrder::Internal,
            args: [&NIL, &NIL],
        };
        loop {
            match self.peek() {
                Some('t') => d.unicode = true,
                Some('l') => d.strings = false,
                Some('k') => d.order = MapOrder::Ordered,
                Some('K') => {
                    self.pos += 1;
                    d.order = match self.arg("~K")? {
                        Term::Atom(a) if a.as_str() == "ordered" => MapOrder::Ordered,
                        Term::Atom(a) if a.as_str() == "reversed" => MapOrder::Reversed,
                        Term::Atom(a) if a.as_str() == "undefined" => MapOrder::Internal,
                        other => {
                            return Err(format!(
                                "the map order for ~K must be ordered or reversed, not {}",
                                describe(other)
                            ));
                        }
                    };
                    continue;
                }
                _ => break,
            }
            self.pos += 1;
        }
        let c = match self.items.get(self.pos) {
            Some(Item::Char(c)) => *c,
            Some(Item::Text(_)) | None => {
                return Err("the format ends inside a control sequence".to_owned());
            }
        };
        self.pos += 1;
        let n = match c {
            'w' | 'p' | 's' | 'e' | 'f' | 'g' | 'b' | 'B' | '+' | '#' | 'c' | 'i' => 1,
            'W' | 'P' | 'x' | 'X' => 2,
            '~' | 'n' => 0,
            c => return Err(format!("unknown control sequence ~{c}")),
        };
        d.control = c;
        for k in 0..n {
            d.args[k] = self.arg(&format!("~{c}"))?;
        }
        Ok(d)
    }
}

fn too_large() -> String {
    format!("a field width, precision or count over {MAX_FIELD}")
}

fn to_char(c: i64) -> Result<char, String> {
    u32::try_from(c)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(|| format!("{c} is not a character"))
}

/// A term as an error message names it: by its kind.
fn describe(t: &Term) -> String {
    match t {
        Term::List(v) if v.is_empty() => "[]".to_owned(),
        t => format!("a {}", t.kind()),
    }
}

/// The order map pairs are written in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum MapOrder {
    /// Erlang's own iteration order (no `k` or `K`).
    Internal,
    /// Keys ascending in map-key order (`~k`, `~K` with `ordered`).
    Ordered,
    /// Keys descending (`~K` with `reversed`).
    Reversed,
}

/// One control sequence with its arguments.
struct Directive<'a> {
    control: char,
    width: Option<usize>,
    left: bool,
    precision: Option<usize>,
    pad: char,
    unicode: bool,
    strings: bool,
    order: MapOrder,
    args: [&'a Term; 2],
}

impl Directive<'_> {
    fn write(&self, out: &mut String) -> Result<(), String> {
        let a = self.args[0];
        let (f, p) = (self.width, self.precision);
        let text = match self.control {
            'w' | 'W' => {
                let depth = match self.control {
                    'W' => depth_arg(self.args[1])?,
                    _ => -1,
                };
                let mut w = self.writer();
                w.write(a, depth)?;
                term_field(w.out, f, self.left, p, self.pad)
            }
            'p' | 'P' => {
                if self.left {
                    return Err(format!("~{} cannot be left-justified", self.control));
                }
                let depth = match self.control {
                    'P' => depth_arg(self.args[1])?,
                    _ => -1,
                };
                let mut w = self.writer();
                w.print(a, depth)?;
                w.out
            }
            's' => {
                let s = if self.unicode {
                    unicode_text(a)
                } else {
                    latin1_text(a)
                };
                let s = s.ok_or_else(|| {
                    format!(
                        "~{}s needs a string, binary or atom, not {}",
                        if self.unicode { "t" } else { "" },
                        describe(a)
                    )
                })?;
                string_field(s, f, self.left, p, self.pad, self.unicode)?
            }
            'e' | 'f' | 'g' => {
                let Term::Float(x) = a else {
                    return Err(format!(
                        "~{} needs a float, not {}",
                        self.control,
                        describe(a)
                    ));
                };
                match self.control {
                    'e' => fwrite_e(*x, f, self.left, p, self.pad)?,
                    'f' => fwrite_f(*x, f, self.left, p, self.pad)?,
                    _ => fwrite_g(*x, f, self.left, p, self.pad)?,
                }
            }
            'b' | 'B' | 'x' | 'X' | '+' | '#' => {
                let base = match p {
                    None => 10,
                    Some(b @ 2..=36) => b as u32,
                    Some(b) => return Err(format!("the base {b} is not from 2 to 36")),
                };
                let (negative, digits) = int_digits(a, base).ok_or_else(|| {
                    format!("~{} needs an integer, not {}", self.control, describe(a))
                })?;
                let lower = matches!(self.control, 'b' | 'x' | '+');
                let digits = if lower {
                    digits.to_ascii_lowercase()
                } else {
                    digits
                };
                let prefix = match self.control {
                    'x' | 'X' => prefix_text(self.args[1]).ok_or_else(|| {
                        format!(
                            "the prefix for ~{} must be an atom or a string, not {}",
                            self.control,
                            describe(self.args[1])
                        )
                    })?,
                    '+' | '#' => format!("{base}#"),
                    _ => String::new(),
                };
                let sign = if negative { "-" } else { "" };
                term_field(
                    format!("{sign}{prefix}{digits}"),
                    f,
                    self.left,
                    None,
                    self.pad,
                )
            }
            'c' => {
                let c = match a {
                    // Without `t`, Erlang keeps the low 8 bits.
                    Term::Int(c) if !self.unicode => Ok(char::from((*c & 0xFF) as u8)),
                    Term::BigInt(b) if !self.unicode => Ok(char::from(
                        b.to_signed_bytes_le().first().copied().unwrap_or(0),
                    )),
                    Term::Int(c) => to_char(*c),
                    Term::BigInt(b) => Err(format!("{b} is not a character")),
                    other => return Err(format!("~c needs an integer, not {}", describe(other))),
                };
                // A character written no times need not be one.
                let c = match c {
                    Err(_) if p.or(f) == Some(0) => ' ',
                    c => c?,
                };
                repeat_field(c, f, self.left, p, self.pad)?
            }
            '~' => repeat_field('~', f, self.left, p, self.pad)?,
            'n' => match (f, self.left) {
                (None, _) => "\n".to_owned(),
                (Some(f), false) => "\n".repeat(f),
                (Some(_), true) => return Err("~n cannot be left-justified".to_owned()),
            },
            // 'i': the argument is skipped.
            _ => String::new(),
        };
        out.push_str(&text);
        Ok(())
    }

    fn writer(&self) -> Writer {
        Writer {
            out: String::new(),
            unicode: self.unicode,
            strings: self.strings,
            order: self.order,
            nesting: 0,
        }
    }
}

fn depth_arg(t: &Term) -> Result<i64, String> {
    match t {
        Term::Int(d) => Ok(*d),
        // So deep it is never reached: no limit.
        Term::BigInt(_) => Ok(-1),
        other => Err(format!(
            "the depth must be an integer, not {}",
            describe(other)
        )),
    }
}

// ---------------------------------------------------------------- fields

fn chars(c: char, n: usize) -> String {
    std::iter::repeat_n(c, n).collect()
}

/// `data` with `padding` after it (left-justified) or before it.
fn adjust(data: String, padding: String, left: bool) -> String {
    if left {
        data + &padding
    } else {
        padding + &data
    }
}

/// Erlang's `term/5`: `s` in a field of width `f`, replaced by `*`s when
/// it does not fit (in `p` of them, if `p` is smaller).
fn term_field(s: String, f: Option<usize>, left: bool, p: Option<usize>, pad: char) -> String {
    let Some(f) = f.or(p) else {
        return s;
    };
    let len = chars_length(&s);
    let p = len.min(p.unwrap_or(f).min(f));
    if len > p {
        adjust(chars('*', p), chars(pad, f - p), left)
    } else {
        adjust(s, chars(pad, f - len), left)
    }
}

/// Erlang's `string/6`: `s` cut to the precision `p`, then padded to the
/// width `f`; a precision alone pads on the right.
fn string_field(
    s: String,
    f: Option<usize>,
    left: bool,
    p: Option<usize>,
    pad: char,
    unicode: bool,
) -> Result<String, String> {
    let n = chars_length(&s);
    Ok(match (f, p) {
        (None, None) => s,
        (Some(f), None) => fit(s, n, f, left, pad, unicode),
        (None, Some(p)) => fit(s, n, p, true, pad, unicode),
        (Some(f), Some(p)) if f > p => {
            let s = match n.cmp(&p) {
                Ordering::Greater => truncate(&s, p, unicode),
                Ordering::Less => s + &chars(pad, p - n),
                Ordering::Equal => s,
            };
            adjust(s, chars(pad, f - p), left)
        }
        (Some(f), Some(p)) if f == p => fit(s, n, f, left, pad, unicode),
        (Some(f), Some(p)) => {
            return Err(format!(
                "the precision {p} is larger than the field width {f}"
            ));
        }
    })
}

/// `s` (of length `n`) cut or padded to exactly `f`.
fn fit(s: String, n: usize, f: usize, left: bool, pad: char, unicode: bool) -> String {
    match n.cmp(&f) {
        Ordering::Greater => truncate(&s, f, unicode),
        Ordering::Less => adjust(s, chars(pad, f - n), left),
        Ordering::Equal => s,
    }
}

/// Erlang's `char/5` (for `~c` and `~~`): the character `p` times (or `f`
/// times), padded to `f`.
fn repeat_field(
    c: char,
    f: Option<usize>,
    left: bool,
    p: Option<usize>,
    pad: char,
) -> Result<String, String> {
    Ok(match (f, p) {
        (None, None) => c.to_string(),
        (Some(n), None) | (None, Some(n)) => chars(c, n),
        (Some(f), Some(p)) if f >= p => adjust(chars(c, p), chars(pad, f - p), left),
        (Some(f), Some(p)) => {
            return Err(format!(
                "the precision {p} is larger than the field width {f}"
            ));
        }
    })
}

/// `io_lib:chars_length/1`: characters, or grapheme clusters when any
/// character is beyond Latin-1.
fn chars_length(s: &str) -> usize {
    if s.chars().all(|c| (c as u32) < 256) {
        s.chars().count()
    } else {
        let cs: Vec<char> = s.chars().collect();
        let (mut i, mut n) = (0, 0);
        while i < cs.len() {
            i = grapheme_end(&cs, i);
            n += 1;
        }
        n
    }
}

/// The first `n` characters of `s` (`~s`), or its first `n` grapheme
/// clusters (`~ts`, as `string:slice/3`).
fn truncate(s: &str, n: usize, unicode: bool) -> String {
    if !unicode {
        return s.chars().take(n).collect();
    }
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    for _ in 0..n {
        if i >= cs.len() {
            break;
        }
        i = grapheme_end(&cs, i);
    }
    cs[..i].iter().collect()
}

/// Where the grapheme cluster starting at `cs[i]` ends: CR LF, a
/// character with its combining marks and variation selectors, an emoji
/// sequence joined by ZWJ, or a pair of regional indicators (a flag).
fn grapheme_end(cs: &[char], i: usize) -> usize {
    const ZWJ: char = '\u{200D}';
    let regional = |c: char| ('\u{1F1E6}'..='\u{1F1FF}').contains(&c);
    let pictographic = |c: char| {
        ('\u{2600}'..='\u{27BF}').contains(&c) || ('\u{1F000}'..='\u{1FAFF}').contains(&c)
    };
    let extend = |c: char| {
        matches!(c as u32,
            0x0300..=0x036F | 0x0483..=0x0489 | 0x0591..=0x05BD | 0x0610..=0x061A
            | 0x064B..=0x065F | 0x0670 | 0x06D6..=0x06DC | 0x06DF..=0x06E4
            | 0x0900..=0x0903 | 0x093A..=0x094F | 0x0951..=0x0957 | 0x1AB0..=0x1AFF
            | 0x1DC0..=0x1DFF | 0x200C | 0x20D0..=0x20FF | 0x302A..=0x302F
            | 0x3099..=0x309A | 0xFE00..=0xFE0F | 0xFE20..=0xFE2F | 0x1F3FB..=0x1F3FF
            | 0xE0020..=0xE007F | 0xE0100..=0xE01EF)
    };
    let c = cs[i];
    let mut j = i + 1;
    if c == '\r' && cs.get(j) == Some(&'\n') {
        return j + 1;
    }
    if c.is_control() {
        return j;
    }
    if regional(c) && cs.get(j).is_some_and(|&n| regional(n)) {
        j += 1;
    }
    while let Some(&n) = cs.get(j) {
        if n == ZWJ {
            j += 1;
            if cs.get(j).is_some_and(|&p| pictographic(p)) {
                j += 1;
            }
        } else if extend(n) {
            j += 1;
        } else {
            break;
        }
    }
    j
}

// ---------------------------------------------------------------- ~s, ~x

/// The characters `~s` prints: an atom's name, or an iolist of Latin-1
/// characters and binaries (each byte a character).
fn latin1_text(t: &Term) -> Option<String> {
    match t {
        Term::Atom(a) => {
            let s = a.as_str();
            s.chars().all(|c| (c as u32) < 256).then(|| s.to_owned())
        }
        Term::Binary(b) => Some(b.iter().map(|&c| c as char).collect()),
        Term::List(_) | Term::ImproperList(..) => {
            let mut out = String::new();
            push_list(t, &mut out, 0, &mut |e, out| match e {
                Term::Int(c @ 0..=255) => {
                    out.push(char::from(*c as u8));
                    Some(())
                }
                Term::Binary(b) => {
                    out.extend(b.iter().map(|&c| c as char));
                    Some(())
                }
                _ => None,
            })?;
            Some(out)
        }
        _ => None,
    }
}

/// The characters `~ts` prints: an atom's name, or chardata whose
/// binaries are UTF-8 (or, when they are not, Latin-1, as Erlang falls
/// back to).
fn unicode_text(t: &Term) -> Option<String> {
    let binary = |b: &[u8], out: &mut String| match std::str::from_utf8(b) {
        Ok(s) => out.push_str(s),
        Err(_) => out.extend(b.iter().map(|&c| c as char)),
    };
    let mut out = String::new();
    match t {
        Term::Atom(a) => out.push_str(a.as_str()),
        Term::Binary(b) => binary(b, &mut out),
        Term::List(_) | Term::ImproperList(..) => {
            push_list(t, &mut out, 0, &mut |e, out| match e {
                Term::Int(c) => {
                    out.push(u32::try_from(*c).ok().and_then(char::from_u32)?);
                    Some(())
                }
                Term::Binary(b) => {
                    binary(b, out);
                    Some(())
                }
                _ => None,
            })?;
        }
        _ => return None,
    }
    Some(out)
}

/// The prefix of `~x` and `~X`: an atom's name or a deep list of
/// characters.
fn prefix_text(t: &Term) -> Option<String> {
    match t {
        Term::Atom(a) => Some(a.as_str().to_owned()),
        Term::List(_) => {
            let mut out = String::new();
            push_list(t, &mut out, 0, &mut |e, out| match e {
                // `io_lib:deep_char_list/1`, which also refuses the two
                // noncharacters U+FFFE and U+FFFF.
                Term::Int(c) if !matches!(c, 0xFFFE | 0xFFFF) => {
                    out.push(u32::try_from(*c).ok().and_then(char::from_u32)?);
                    Some(())
                }
                _ => None,
            })?;
            Some(out)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- integers

/// The sign and the upper-case digits of integer `t` in `base`.
fn int_digits(t: &Term, base: u32) -> Option<(bool, String)> {
    match t {
        Term::Int(i) => {
            let mut n = i.unsigned_abs();
            let mut digits = Vec::new();
            loop {
                let d = (n % u64::from(base)) as u32;
                digits.push(char::from_digit(d, base)?.to_ascii_uppercase());
                n /= u64::from(base);
                if n == 0 {
                    break;
                }
            }
            Some((*i < 0, digits.iter().rev().collect()))
        }
        Term::BigInt(b) => {
            let s = b.to_str_radix(base).to_ascii_uppercase();
            match s.strip_prefix('-') {
                Some(digits) => Some((true, digits.to_owned())),
                None => Some((false, s)),
            }
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- floats

/// The 21 significant digits of `|x|` and its decimal exponent plus one,
/// as `io_lib_format` takes them from `float_to_list/1` (`%.20e`).
fn float_data(x: f64) -> (Vec<u8>, i32) {
    let s = format!("{:.20e}", x.abs());
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let digits = mantissa.bytes().filter(u8::is_ascii_digit).collect();
    (digits, exp.parse::<i32>().unwrap_or(0) + 1)
}

/// Erlang's `float_man/3`: `ds` written with `int` digits before the
/// point and `dec` after it, rounded half up on the digit that follows;
/// `true` when the rounding carries out of the first digit.
fn float_man(ds: &[u8], int: usize, dec: usize) -> (String, bool) {
    let mut digits: Vec<u8> = (0..int + dec)
        .map(|k| ds.get(k).copied().unwrap_or(b'0'))
        .collect();
    let mut carry = ds.get(int + dec).is_some_and(|&d| d >= b'5');
    for d in digits.iter_mut().rev() {
        if !carry {
            break;
        }
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            carry = false;
        }
    }
    let mut s = String::with_capacity(int + dec + 1);
    s.extend(digits[..int].iter().map(|&d| d as char));
    s.push('.');
    s.extend(digits[int..].iter().map(|&d| d as char));
    (s, carry)
}

fn sign(x: f64) -> &'static str {
    if x.is_sign_negative() { "-" } else { "" }
}

/// `~e`: one digit, a point, `p - 1` digits and an exponent (`1.50000e+0`).
fn fwrite_e(
    x: f64,
    f: Option<usize>,
    left: bool,
    p: Option<usize>,
    pad: char,
) -> Result<String, String> {
    let p = p.unwrap_or(6);
    if p < 2 {
        return Err(format!("the precision of ~e must be at least 2, not {p}"));
    }
    let (ds, e) = float_data(x);
    let (man, exp) = match float_man(&ds, 1, p - 1) {
        (fs, true) => (format!("1{}", &fs[1..]), e),
        (fs, false) => (fs, e - 1),
    };
    let exp = if exp >= 0 {
        format!("e+{exp}")
    } else {
        format!("e{exp}")
    };
    let s = format!("{}{man}{exp}", sign(x));
    Ok(match f {
        None => s,
        Some(_) => term_field(s, f, left, f, pad),
    })
}

/// `~f`: `p` digits after the point (`3.141590`).
fn fwrite_f(
    x: f64,
    f: Option<usize>,
    left: bool,
    p: Option<usize>,
    pad: char,
) -> Result<String, String> {
    let p = p.unwrap_or(6);
    if p < 1 {
        return Err("the precision of ~f must be at least 1, not 0".to_owned());
    }
    let (mut ds, mut e) = float_data(x);
    if e <= 0 {
        let mut zeros = vec![b'0'; (1 - e) as usize];
        zeros.extend(ds);
        ds = zeros;
        e = 1;
    }
    let man = match float_man(&ds, e as usize, p) {
        (fs, true) => format!("1{fs}"),
        (fs, false) => fs,
    };
    let s = format!("{}{man}", sign(x));
    Ok(match f {
        None => s,
        Some(_) => term_field(s, f, left, f, pad),
    })
}

/// `~g`: `~f` for magnitudes from 0.1 to 10000, `~e` otherwise, with `p`
/// significant digits.
fn fwrite_g(
    x: f64,
    f: Option<usize>,
    left: bool,
    p: Option<usize>,
    pad: char,
) -> Result<String, String> {
    let p = p.unwrap_or(6);
    if p < 1 {
        return Err("the precision of ~g must be at least 1, not 0".to_owned());
    }
    let a = x.abs();
    let e: Option<i64> = [1.0e-1, 1.0e0, 1.0e1, 1.0e2, 1.0e3, 1.0e4]
        .iter()
        .position(|&bound| a < bound)
        .map(|k| k as i64 - 2);
    let p = p as i64;
    match e {
        Some(e) if (p <= 1 && e == -1) || (p - 1 > e && e >= -1) => {
            fwrite_f(x, f, left, Some((p - 1 - e) as usize), pad)
        }
        _ if p <= 1 => fwrite_e(x, f, left, Some(2), pad),
        _ => fwrite_e(x, f, left, Some(p as usize), pad),
    }
}

// ---------------------------------------------------------------- terms

/// Writes terms as `io_lib:write/2` (`~w`, `~W`) and as the one-line form
/// of `io_lib_pretty:print/2` (`~p`, `~P`) do. A depth of -1 is no limit;
/// a positive one writes `...` for what lies deeper.
struct Writer {
    out: String,
    unicode: bool,
    strings: bool,
    order: MapOrder,
    nesting: usize,
}

/// How `write_quoted` treats characters above U+00FF.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Written as `\x{3BB}` (`write_atom_as_latin1`).
    AboveLatin1,
    /// Written as they are.
    None,
}

impl Writer {
    fn enter(&mut self) -> Result<(), String> {
        self.nesting += 1;
        if self.nesting > DEFAULT_MAX_DEPTH {
            return Err(format!(
                "the term is nested deeper than {DEFAULT_MAX_DEPTH} levels"
            ));
        }
        Ok(())
    }

    /// `io_lib:write(Term, Depth)`.
    fn write(&mut self, t: &Term, d: i64) -> Result<(), String> {
        if d == 0 {
            self.out.push_str("...");
            return Ok(());
        }
        match t {
            Term::List(v) if !v.is_empty() => {
                self.enter()?;
                self.write_list(v, None, d)?;
                self.nesting -= 1;
            }
            Term::ImproperList(v, tail) => {
                self.enter()?;
                self.write_list(v, Some(tail), d)?;
                self.nesting -= 1;
            }
            Term::Tuple(v) if !v.is_empty() => {
                self.enter()?;
                self.write_tuple(v, d)?;
                self.nesting -= 1;
            }
            Term::Map(m) if !m.is_empty() => {
                self.enter()?;
                self.write_map(m, d)?;
                self.nesting -= 1;
            }
            _ => self.atomic(t, d),
        }
        Ok(())
    }

    /// Terms with no elements to descend into, and binaries.
    fn atomic(&mut self, t: &Term, d: i64) {
        match t {
            Term::Int(i) => {
                let _ = write!(self.out, "{i}");
            }
            Term::BigInt(b) => {
                let _ = write!(self.out, "{b}");
            }
            // `Term`'s display writes floats as `float_to_list(F, [short])`.
            Term::Float(_) => {
                let _ = write!(self.out, "{t}");
            }
            Term::Atom(a) => self.atom(a.as_str()),
            Term::Binary(b) => write_binary(&mut self.out, b, None, d),
            Term::BitBinary(b) => {
                let bytes = b.bytes();
                let (whole, last) = bytes.split_at(bytes.len() - 1);
                let bits = b.tail_bits();
                write_binary(&mut self.out, whole, Some((last[0] >> (8 - bits), bits)), d);
            }
            Term::Fun(Fun::Export {
                module,
                function,
                arity,
            }) => {
                self.out.push_str("fun ");
                write_atom(&mut self.out, module.as_str(), Escape::None);
                self.out.push(':');
                write_atom(&mut self.out, function.as_str(), Escape::None);
                let _ = write!(self.out, "/{arity}");
            }
            Term::List(_) => self.out.push_str("[]"),
            Term::Tuple(_) => self.out.push_str("{}"),
            Term::Map(_) => self.out.push_str("#{}"),
            // Pids, ports, references and closures as this crate
            // displays them (see the module documentation).
            other => {
                let _ = write!(self.out, "{other}");
            }
        }
    }

    fn atom(&mut self, name: &str) {
        let escape = if self.unicode {
            Escape::None
        } else {
            Escape::AboveLatin1
        };
        write_atom(&mut self.out, name, escape);
    }

    fn write_list(&mut self, v: &[Term], tail: Option<&Term>, d: i64) -> Result<(), String> {
        if d == 1 {
            self.out.push_str("[...]");
            return Ok(());
        }
        // An improper list has at least one element; should one be built
        // without, its tail stands in for the first.
        let (first, mut rest, tail) = match (v.split_first(), tail) {
            (Some((first, rest)), tail) => (first, rest, tail),
            (None, Some(tail)) => (tail, v, None),
            (None, None) => return self.write(&NIL, d),
        };
        self.out.push('[');
        self.write(first, d - 1)?;
        let mut d = d - 1;
        loop {
            if rest.is_empty() && tail.is_none() {
                break;
            }
            if d == 1 {
                self.out.push_str("|...");
                break;
            }
            match (rest.split_first(), tail) {
                (Some((h, r)), _) => {
                    self.out.push(',');
                    self.write(h, d - 1)?;
                    rest = r;
                    d -= 1;
                }
                (None, Some(t)) => {
                    self.out.push('|');
                    self.write(t, d - 1)?;
                    break;
                }
                (None, None) => break,
            }
        }
        self.out.push(']');
        Ok(())
    }

    fn write_tuple(&mut self, v: &[Term], d: i64) -> Result<(), String> {
        if d == 1 {
            self.out.push_str("{...}");
            return Ok(());
        }
        self.out.push('{');
        self.write(&v[0], d - 1)?;
        let mut d = d - 1;
        for e in &v[1..] {
            if d == 1 {
                self.out.push_str(",...");
                break;
            }
            self.out.push(',');
            self.write(e, d - 1)?;
            d -= 1;
        }
        self.out.push('}');
        Ok(())
    }

    /// OTP 25's `write_map`, whose depth limit writes `#{}` for a map at
    /// depth 1 and `,...` after the last pair that fits, even when no pair
    /// is left out.
    fn write_map(&mut self, m: &Map, d: i64) -> Result<(), String> {
        if d == 1 {
            self.out.push_str("#{}");
            return Ok(());
        }
        let pairs = map_pairs(m, self.order);
        let d0 = d - 1;
        self.out.push_str("#{");
        let (k, v) = pairs[0];
        self.write(k, d0)?;
        self.out.push_str(" => ");
        self.write(v, d0)?;
        let mut dd = d0;
        for (k, v) in &pairs[1..] {
            if dd == 1 {
                break;
            }
            self.out.push(',');
            self.write(k, d0)?;
            self.out.push_str(" => ");
            self.write(v, d0)?;
            dd -= 1;
        }
        if dd == 1 {
            self.out.push_str(",...");
        }
        self.out.push('}');
        Ok(())
    }

    /// `io_lib_pretty:print(Term, [{depth, Depth}, ...])` on one line.
    fn print(&mut self, t: &Term, d: i64) -> Result<(), String> {
        if d == 0 {
            self.out.push_str("...");
            return Ok(());
        }
        match t {
            Term::List(v) if !v.is_empty() => {
                if self.strings && d != 1 && v.iter().all(printable_latin1) {
                    self.out.push('"');
                    for c in v {
                        if let Term::Int(c) = c {
                            let c = char::from(*c as u8);
                            write_char(&mut self.out, c, '"', Escape::None);
                        }
                    }
                    self.out.push('"');
                    return Ok(());
                }
                self.enter()?;
                self.print_list(v, None, d)?;
                self.nesting -= 1;
            }
            Term::ImproperList(v, tail) => {
                self.enter()?;
                self.print_list(v, Some(tail), d)?;
                self.nesting -= 1;
            }
            Term::Tuple(v) if !v.is_empty() => {
                self.enter()?;
                self.print_tuple(v, d)?;
                self.nesting -= 1;
            }
            Term::Map(m) if !m.is_empty() => {
                self.enter()?;
                self.print_map(m, d)?;
                self.nesting -= 1;
            }
            Term::Binary(b) if !b.is_empty() => self.print_binary(b, None, d),
            Term::BitBinary(b) => {
                let bytes = b.bytes();
                let (whole, last) = bytes.split_at(bytes.len() - 1);
                let bits = b.tail_bits();
                self.print_binary(whole, Some((last[0] >> (8 - bits), bits)), d);
            }
            // Atoms as `~w` writes them, in the directive's encoding;
            // everything else is `io_lib:write/1`.
            _ => self.atomic(t, -1),
        }
        Ok(())
    }

    fn print_list(&mut self, v: &[Term], tail: Option<&Term>, d: i64) -> Result<(), String> {
        self.out.push('[');
        let mut d = d;
        for (k, e) in v.iter().enumerate() {
            if d == 1 {
                self.out.push_str(if k == 0 { "..." } else { "|..." });
                self.out.push(']');
                return Ok(());
            }
            if k > 0 {
                self.out.push(',');
            }
            self.print(e, d - 1)?;
            d -= 1;
        }
        if let Some(t) = tail {
            if d == 1 {
                self.out.push_str("|...");
            } else {
                self.out.push('|');
                self.print(t, d - 1)?;
            }
        }
        self.out.push(']');
        Ok(())
    }

    fn print_tuple(&mut self, v: &[Term], d: i64) -> Result<(), String> {
        if d == 1 {
            self.out.push_str("{...}");
            return Ok(());
        }
        self.out.push('{');
        let mut d = d;
        for (k, e) in v.iter().enumerate() {
            if d == 1 {
                self.out.push_str(if k == 0 { "..." } else { ",..." });
                break;
            }
            if k > 0 {
                self.out.push(',');
            }
            self.print(e, d - 1)?;
            d -= 1;
        }
        self.out.push('}');
        Ok(())
    }

    fn print_map(&mut self, m: &Map, d: i64) -> Result<(), String> {
        if d == 1 {
            self.out.push_str("#{...}");
            return Ok(());
        }
        let d0 = d - 1;
        self.out.push_str("#{");
        let mut d = d;
        for (k, (key, value)) in map_pairs(m, self.order).into_iter().enumerate() {
            if d == 1 {
                self.out.push_str(if k == 0 { "..." } else { ",..." });
                break;
            }
            if k > 0 {
                self.out.push(',');
            }
            self.print(key, d0)?;
            self.out.push_str(" => ");
            self.print(value, d0)?;
            d -= 1;
        }
        self.out.push('}');
        Ok(())
    }

    /// A binary as `~p` writes it: as a string when its bytes (or, with
    /// `t`, its UTF-8 characters) are printable, else byte by byte. With a
    /// depth limit only the first `4 × (depth - 1)` bytes are looked at,
    /// and a printable start of at least `depth - 1` of them is written
    /// as a string followed by `...`.
    fn print_binary(&mut self, b: &[u8], tail: Option<(u8, u8)>, d: i64) {
        if d == 1 {
            self.out.push_str("<<...>>");
            return;
        }
        if self.strings
            && tail.is_none()
            && let Some((text, ascii, whole)) = printable_binary(b, d - 1, self.unicode)
        {
            self.out.push_str("<<\"");
            for c in text.chars() {
                write_char(&mut self.out, c, '"', Escape::None);
            }
            self.out.push('"');
            if !ascii {
                self.out.push_str("/utf8");
            }
            if !whole {
                self.out.push_str("...");
            }
            self.out.push_str(">>");
            return;
        }
        write_binary(&mut self.out, b, tail, d);
    }
}

/// `io_lib_pretty`'s `printable_bin0/4` for a depth `d` (already lowered
/// by one): the text to show, whether it needs no `/utf8`, and whether it
/// is the whole binary.
fn printable_binary(b: &[u8], d: i64, unicode: bool) -> Option<(String, bool, bool)> {
    let len = if d >= 0 {
        (4 * d as usize).min(b.len())
    } else {
        b.len()
    };
    if len == 0 {
        return None;
    }
    if unicode && let Some(found) = printable_utf8(b, len, d) {
        return found;
    }
    // Latin-1: the printable bytes at the start, among the first `len`.
    let p = b[..len]
        .iter()
        .position(|&c| !printable_latin1_char(u32::from(c)))
        .unwrap_or(len);
    let text = |n: usize| b[..n].iter().map(|&c| c as char).collect::<String>();
    if p == len {
        Some((text(len), true, len == b.len()))
    } else if d > 0 && p as i64 >= d {
        Some((text(p), true, false))
    } else {
        None
    }
}

/// The UTF-8 half of `printable_binary`: `None` when the first `len`
/// characters are not valid UTF-8 (the binary is then judged as Latin-1).
fn printable_utf8(b: &[u8], len: usize, d: i64) -> Option<Option<(String, bool, bool)>> {
    // Valid UTF-8 up to `len` characters in (or to the end).
    let valid = match std::str::from_utf8(b) {
        Ok(_) => true,
        Err(e) => std::str::from_utf8(&b[..e.valid_up_to()])
            .map(|s| s.chars().count() >= len)
            .unwrap_or(false),
    };
    if !valid {
        return None;
    }
    let valid_len = match std::str::from_utf8(b) {
        Ok(_) => b.len(),
        Err(e) => e.valid_up_to(),
    };
    let s = std::str::from_utf8(&b[..valid_len]).unwrap_or("");
    let mut text = String::new();
    let mut bytes = 0;
    let mut left = len;
    for c in s.chars() {
        if left == 0 || !printable_latin1_char(c as u32) {
            break;
        }
        text.push(c);
        bytes += c.len_utf8();
        left -= 1;
    }
    let ascii = bytes == text.chars().count();
    Some(if bytes == b.len() {
        Some((text, ascii, true))
    } else if d > 0 && (len - left) as i64 >= d {
        Some((text, ascii, false))
    } else {
        None
    })
}

fn printable_latin1(t: &Term) -> bool {
    matches!(t, Term::Int(c) if (0..256).contains(c) && printable_latin1_char(*c as u32))
}

/// `io_lib:printable_latin1_list/1`'s test for one character.
fn printable_latin1_char(c: u32) -> bool {
    matches!(c, 32..=126 | 160..=255 | 8..=13 | 27)
}

/// `io_lib:write_binary/2`: the bytes in decimal, a trailing bit field as
/// `Value:Bits`, `...` from depth 1 on.
fn write_binary(out: &mut String, b: &[u8], tail: Option<(u8, u8)>, d: i64) {
    out.push_str("<<");
    let mut d = d;
    for (k, c) in b.iter().enumerate() {
        if d == 1 {
            out.push_str("...>>");
            return;
        }
        let _ = write!(out, "{c}");
        if k + 1 < b.len() || tail.is_some() {
            out.push(',');
        }
        d -= 1;
    }
    if let Some((value, bits)) = tail {
        if d == 1 {
            out.push_str("...");
        } else {
            let _ = write!(out, "{value}:{bits}");
        }
    }
    out.push_str(">>");
}

/// The pairs of `m` in the order Erlang writes them.
fn map_pairs(m: &Map, order: MapOrder) -> Vec<(&Term, &Term)> {
    let mut pairs: Vec<(&Term, &Term)> = m.iter().collect();
    match order {
        // A map of up to 32 pairs is a flatmap, kept sorted by key; a
        // larger one iterates in hash order, which is the reverse of the
        // order `term_to_binary` writes its pairs in.
        MapOrder::Internal if pairs.len() > 32 => pairs.reverse(),
        MapOrder::Reversed => pairs.sort_by(|a, b| key_cmp(b.0, a.0)),
        _ => pairs.sort_by(|a, b| key_cmp(a.0, b.0)),
    }
    pairs
}

/// Map-key order: term order, except that every integer comes before
/// every float, inside tuples and lists too.
fn key_cmp(a: &Term, b: &Term) -> Ordering {
    let int = |t: &Term| matches!(t, Term::Int(_) | Term::BigInt(_));
    match (a, b) {
        (x, Term::Float(_)) if int(x) => Ordering::Less,
        (Term::Float(_), y) if int(y) => Ordering::Greater,
        (Term::Tuple(x), Term::Tuple(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .map(|(p, q)| key_cmp(p, q))
            .find(|o| o.is_ne())
            .unwrap_or(Ordering::Equal),
        (Term::List(x), Term::List(y)) => x
            .iter()
            .zip(y)
            .map(|(p, q)| key_cmp(p, q))
            .find(|o| o.is_ne())
            .unwrap_or_else(|| x.len().cmp(&y.len())),
        _ => a.cmp(b),
    }
}

/// OTP 25's reserved words; an atom spelled like one is quoted.
const RESERVED: &[&str] = &[
    "after", "and", "andalso", "band", "begin", "bnot", "bor", "bsl", "bsr", "bxor", "case",
    "catch", "cond", "div", "end", "fun", "if", "let", "not", "of", "or", "orelse", "receive",
    "rem", "try", "when", "xor",
];

/// `io_lib:write_atom/1` (or, with `Escape::AboveLatin1`,
/// `write_atom_as_latin1/1`).
fn write_atom(out: &mut String, name: &str, escape: Escape) {
    let lower = |c: char| c.is_ascii_lowercase() || (('ß'..='ÿ').contains(&c) && c != '÷');
    let upper = |c: char| c.is_ascii_uppercase() || (('À'..='Þ').contains(&c) && c != '×');
    let mut cs = name.chars();
    let bare = cs.next().is_some_and(lower)
        && cs.all(|c| lower(c) || upper(c) || c.is_ascii_digit() || c == '_' || c == '@')
        && !RESERVED.contains(&name);
    if bare {
        out.push_str(name);
        return;
    }
    out.push('\'');
    for c in name.chars() {
        write_char(out, c, '\'', escape);
    }
    out.push('\'');
}

/// One character of a quoted atom or string, escaped as `io_lib` does.
fn write_char(out: &mut String, c: char, quote: char, escape: Escape) {
    let code = c as u32;
    match c {
        c if c == quote => {
            out.push('\\');
            out.push(c);
        }
        '\\' => out.push_str("\\\\"),
        ' '..='~' => out.push(c),
        _ if code >= 256 && escape == Escape::AboveLatin1 => {
            let _ = write!(out, "\\x{{{code:X}}}");
        }
        _ if code >= 160 => out.push(c),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{B}' => out.push_str("\\v"),
        '\u{8}' => out.push_str("\\b"),
        '\u{C}' => out.push_str("\\f"),
        '\u{1B}' => out.push_str("\\e"),
        '\u{7F}' => out.push_str("\\d"),
        _ => {
            let _ = write!(out, "\\{}{}{}", code >> 6, (code >> 3) & 7, code & 7);
        }
    }
}

#[cfg(test)]
mod tests {
    //! The expected strings come from `io_lib:format/2` in OTP 25 on this
    //! machine (erts 13.1.5), except where a test says otherwise. A case of
    //! `None` is one where Erlang raises `badarg`.

    use super::*;
    use ergo_etf::{Atom, BitBinary};

    fn a(name: &str) -> Term {
        Term::atom(name)
    }
    fn i(n: i64) -> Term {
        Term::Int(n)
    }
    fn big(digits: &str) -> Term {
        Term::bigint(digits.parse().expect("an integer"))
    }
    fn f(x: f64) -> Term {
        Term::Float(x)
    }
    /// A charlist.
    fn s(text: &str) -> Term {
        Term::charlist(text)
    }
    fn b(bytes: &[u8]) -> Term {
        Term::binary(bytes)
    }
    /// A bitstring of `bytes`, the last of which holds `bits` bits.
    fn bits(bytes: &[u8], bits: u8) -> Term {
        Term::BitBinary(BitBinary::new(bytes.to_vec(), bits).expect("a bitstring"))
    }
    fn l(items: Vec<Term>) -> Term {
        Term::List(items)
    }
    fn il(items: Vec<Term>, tail: Term) -> Term {
        Term::list_with_tail(items, tail)
    }
    fn t(items: Vec<Term>) -> Term {
        Term::Tuple(items)
    }
    fn m(pairs: Vec<(Term, Term)>) -> Term {
        Term::map(pairs)
    }
    fn export(module: &str, function: &str, arity: u8) -> Term {
        Term::Fun(Fun::Export {
            module: Atom::from(module),
            function: Atom::from(function),
            arity,
        })
    }

    /// Formats each case and compares with what Erlang gave (`None`: an
    /// error).
    fn check(cases: &[(Term, Term, Option<&str>)]) {
        for (fmt, args, want) in cases {
            let got = format(fmt, args);
            match want {
                Some(want) => assert_eq!(got.as_deref(), Ok(*want), "format {fmt} with {args}"),
                None => assert!(got.is_err(), "format {fmt} with {args} gave {got:?}"),
            }
        }
    }

    /// Plain characters pass through; `~~` and `~n` repeat to their field width.
    #[test]
    fn text_tilde_and_newline_are_copied_repeated_and_padded() {
        check(&[
            (
                s("plain text, tab\tand \u{E9}"),
                l(vec![]),
                Some("plain text, tab\tand \u{E9}"),
            ),
            (
                s("~~|~3~|~-3.2~|~3.2.x~|"),
                l(vec![]),
                Some("~|~~~|~~ |x~~|"),
            ),
            (s("a~nb~3n|~.3n|"), l(vec![]), Some("a\nb\n\n\n|\n|")),
            (l(vec![]), l(vec![]), Some("")),
        ]);
    }

    /// `~w`: lists of characters stay lists, binaries are bytes, floats are shortest.
    #[test]
    fn w_writes_terms_as_io_lib_write() {
        check(&[
            (
                s("~w"),
                l(vec![t(vec![
                    a("ok"),
                    i(42),
                    i(-7),
                    s("abc"),
                    b(b"abc"),
                    l(vec![]),
                    t(vec![]),
                    m(vec![]),
                    b(b""),
                ])]),
                Some("{ok,42,-7,[97,98,99],<<97,98,99>>,[],{},#{},<<>>}"),
            ),
            (
                s("~w"),
                l(vec![il(
                    vec![i(1), l(vec![i(2), l(vec![i(3)])])],
                    a("tail"),
                )]),
                Some("[1,[2,[3]]|tail]"),
            ),
            (
                s("~w"),
                l(vec![t(vec![
                    f(1.0),
                    f(0.1),
                    f(-1.5),
                    f(100.0),
                    f(1.0e3),
                    f(1.0e20),
                    f(1.0e-5),
                    f(0.0001),
                    f(-0.0),
                    f(123456789012345.0),
                    f(1.0e16),
                ])]),
                Some(
                    "{1.0,0.1,-1.5,100.0,1.0e3,1.0e20,1.0e-5,0.0001,-0.0,123456789012345.0,1.0e16}",
                ),
            ),
            (
                s("~w"),
                l(vec![t(vec![
                    f(0.30000000000000004),
                    f(5.0e-324),
                    f(1.5e300),
                    f(2.5e-300),
                ])]),
                Some("{0.30000000000000004,5.0e-324,1.5e300,2.5e-300}"),
            ),
            (
                s("~w|~w"),
                l(vec![
                    big("12345678901234567890123"),
                    big("-9223372036854775809"),
                ]),
                Some("12345678901234567890123|-9223372036854775809"),
            ),
            (
                s("~w"),
                l(vec![m(vec![
                    (i(1), t(vec![])),
                    (i(2), b(b"\x01\x02")),
                    (f(0.5), l(vec![])),
                    (a("a"), l(vec![i(120)])),
                    (a("b"), i(1)),
                ])]),
                Some("#{1 => {},2 => <<1,2>>,0.5 => [],a => [120],b => 1}"),
            ),
            (
                s("~w"),
                l(vec![l(vec![
                    bits(b" ", 3),
                    bits(b"\xFF\x80", 1),
                    bits(b"a\xFF\xC0", 2),
                ])]),
                Some("[<<1:3>>,<<255,1:1>>,<<97,255,3:2>>]"),
            ),
            (
                s("~w"),
                l(vec![export("erlang", "+", 2)]),
                Some("fun erlang:'+'/2"),
            ),
            (
                s("~w"),
                l(vec![export("Mod", "F", 0)]),
                Some("fun 'Mod':'F'/0"),
            ),
        ]);
    }

    /// Atoms are quoted as `io_lib:write_atom/1` quotes them; without `t`, characters beyond Latin-1 are escaped.
    #[test]
    fn w_quotes_atoms_that_need_it() {
        check(&[
            (
                s("~w ~w ~w ~w ~w"),
                l(vec![a("ok"), a("Ok"), a("aB9_@"), a("_x"), a("a-b")]),
                Some("ok 'Ok' aB9_@ '_x' 'a-b'"),
            ),
            (
                s("~w ~w ~w ~w ~w"),
                l(vec![a(""), a("end"), a("cond"), a("receive"), a("orelse")]),
                Some("'' 'end' 'cond' 'receive' 'orelse'"),
            ),
            (
                s("~w ~w ~w"),
                l(vec![a("\u{DF}\u{FF}"), a("a\u{D7}"), a("\u{F7}")]),
                Some("\u{DF}\u{FF} 'a\u{D7}' '\u{F7}'"),
            ),
            (
                s("~w"),
                l(vec![a("it's \\ \"q\"")]),
                Some("'it\\'s \\\\ \"q\"'"),
            ),
            (
                s("~w"),
                l(vec![a("a\nb\tc\u{1}\u{7F}\u{80}\u{A0}\u{E9}")]),
                Some("'a\\nb\\tc\\001\\d\\200\u{A0}\u{E9}'"),
            ),
            (
                s("~w|~tw"),
                l(vec![a("\u{3BB}x"), a("\u{3BB}x")]),
                Some("'\\x{3BB}x'|'\u{3BB}x'"),
            ),
            (
                s("~p|~tp"),
                l(vec![a("\u{3BB}"), a("\u{3BB}")]),
                Some("'\\x{3BB}'|'\u{3BB}'"),
            ),
        ]);
    }

    /// `~p` writes printable Latin-1 lists as strings and printable binaries as `<<"...">>`.
    #[test]
    fn p_shows_printable_lists_and_binaries_as_strings() {
        check(&[
            (
                s("~p"),
                l(vec![t(vec![
                    s("abc"),
                    l(vec![i(97)]),
                    l(vec![]),
                    s("a\nb\"c\\"),
                    l(vec![i(7), i(8)]),
                    l(vec![i(27), i(127)]),
                ])]),
                Some("{\"abc\",\"a\",[],\"a\\nb\\\"c\\\\\",[7,8],[27,127]}"),
            ),
            (
                s("~p"),
                l(vec![l(vec![s("ab"), l(vec![i(99)]), i(100)])]),
                Some("[\"ab\",\"c\",100]"),
            ),
            (
                s("~p"),
                l(vec![l(vec![
                    i(233),
                    i(255),
                    i(160),
                    i(10),
                    i(13),
                    i(9),
                    i(11),
                    i(8),
                    i(12),
                    i(27),
                ])]),
                Some("\"\u{E9}\u{FF}\u{A0}\\n\\r\\t\\v\\b\\f\\e\""),
            ),
            (
                s("~p"),
                l(vec![il(vec![a("a"), s("bc")], a("d"))]),
                Some("[a,\"bc\"|d]"),
            ),
            (
                s("~p"),
                l(vec![t(vec![
                    b(b"abc"),
                    b(b""),
                    b(b"\x01\x02"),
                    b(b"abc\x00"),
                    b(b"a\"\\\x0A"),
                ])]),
                Some("{<<\"abc\">>,<<>>,<<1,2>>,<<97,98,99,0>>,<<\"a\\\"\\\\\\n\">>}"),
            ),
            (
                s("~p"),
                l(vec![b(b"\xC3\xA9")]),
                Some("<<\"\u{C3}\u{A9}\">>"),
            ),
            (s("~p"), l(vec![s("\u{3BB}\u{3BC}")]), Some("[955,956]")),
            (
                s("~p"),
                l(vec![t(vec![
                    a("EXIT"),
                    b(b"reason"),
                    l(vec![t(vec![
                        a("mod"),
                        a("fn"),
                        i(2),
                        l(vec![
                            t(vec![a("file"), s("x.erl")]),
                            t(vec![a("line"), i(3)]),
                        ]),
                    ])]),
                ])]),
                Some("{'EXIT',<<\"reason\">>,[{mod,fn,2,[{file,\"x.erl\"},{line,3}]}]}"),
            ),
            (
                s("~p"),
                l(vec![t(vec![
                    f(1.5),
                    big("123456789012345678901234567890"),
                    i(-5),
                    export("lists", "map", 2),
                ])]),
                Some("{1.5,123456789012345678901234567890,-5,fun lists:map/2}"),
            ),
            (
                s("~p"),
                l(vec![l(vec![bits(b"\x80", 1), bits(b"\xFF\x80", 1)])]),
                Some("[<<1:1>>,<<255,1:1>>]"),
            ),
        ]);
    }

    /// With `t`, a binary of printable Latin-1 characters in UTF-8 is shown as `<<"..."/utf8>>`; other characters are not printable (the default `+pc latin1`).
    #[test]
    fn tp_shows_utf8_binaries_as_utf8_strings() {
        check(&[
            (
                s("~tp"),
                l(vec![t(vec![
                    b(b"\xC3\xA9"),
                    b(b"abc"),
                    b(b"\xCE\xBB"),
                    s("\u{E9}a"),
                    l(vec![i(955)]),
                ])]),
                Some("{<<\"\u{E9}\"/utf8>>,<<\"abc\">>,<<206,187>>,\"\u{E9}a\",[955]}"),
            ),
            (s("~tp"), l(vec![b(b"\xE9\x00")]), Some("<<233,0>>")),
            (s("~tp"), l(vec![b(b"\xE9")]), Some("<<\"\u{E9}\">>")),
        ]);
    }

    /// `~lp` writes lists of characters as lists and binaries as bytes.
    #[test]
    fn l_turns_string_detection_off() {
        check(&[
            (
                s("~lp|~tlp|~ltp"),
                l(vec![s("abc"), b(b"abc"), l(vec![i(120)])]),
                Some("[97,98,99]|<<97,98,99>>|[120]"),
            ),
            (s("~lw"), l(vec![s("abc")]), Some("[97,98,99]")),
        ]);
    }

    /// Map pairs come in Erlang's order: keys in term order, integers before floats.
    #[test]
    fn p_writes_maps_in_key_order() {
        check(&[
            (
                s("~p"),
                l(vec![m(vec![(a("a"), i(2)), (a("b"), i(1))])]),
                Some("#{a => 2,b => 1}"),
            ),
            (
                s("~p"),
                l(vec![m(vec![
                    (i(1), a("b")),
                    (i(2), a("d")),
                    (f(0.5), a("c")),
                    (f(1.0), a("a")),
                ])]),
                Some("#{1 => b,2 => d,0.5 => c,1.0 => a}"),
            ),
            (
                s("~p"),
                l(vec![m(vec![
                    (a("z"), i(2)),
                    (t(vec![a("x")]), i(1)),
                    (l(vec![i(115)]), t(vec![])),
                    (b(b"k"), l(vec![i(1)])),
                ])]),
                Some("#{z => 2,{x} => 1,\"s\" => {},<<\"k\">> => [1]}"),
            ),
            (s("~p"), l(vec![m(vec![])]), Some("#{}")),
        ]);
    }

    /// A field width pads a term (right-justified unless negative); a term that does not fit becomes `*`s.
    #[test]
    fn field_width_pads_terms_and_stars_those_that_do_not_fit() {
        check(&[
            (
                s("~10w|~-10w|~2w|~0w|"),
                l(vec![a("abc"), a("abc"), a("abcdef"), a("abc")]),
                Some("       abc|abc       |**||"),
            ),
            (
                s("~10.3w|~.3w|~10.5.xw|~.10.xw|~..xw|"),
                l(vec![a("abcdef"), a("abcdef"), a("ab"), a("ab"), a("ab")]),
                Some("       ***|***|xxxxxxxxab|xxxxxxxxab|ab|"),
            ),
            (
                s("~8.3.-w|~-8..0w|"),
                l(vec![a("ab"), a("ab")]),
                Some("------ab|ab000000|"),
            ),
            (
                s("~5tw|~5w|"),
                l(vec![a("\u{3BB}"), a("\u{3BB}")]),
                Some("  '\u{3BB}'|*****|"),
            ),
        ]);
    }

    /// For `~p` the width is the line length and the precision the column: on one line they change nothing.
    #[test]
    fn p_ignores_width_and_precision_on_one_line() {
        check(&[(
            s("~10p|~10.5p|~10..xp|~3p|"),
            l(vec![a("abc"), a("abc"), a("abc"), t(vec![])]),
            Some("abc|abc|abc|{}|"),
        )]);
    }

    /// `~W` and `~P` write `...` for what lies beyond the depth argument.
    #[test]
    fn w_and_p_depth_limits() {
        check(&[
            (
                s("~W|~P|~W|~P"),
                l(vec![
                    a("abc"),
                    i(0),
                    a("abc"),
                    i(0),
                    a("abc"),
                    i(-1),
                    l(vec![i(1), i(2), i(3)]),
                    i(-1),
                ]),
                Some("...|...|abc|[1,2,3]"),
            ),
            (
                s("~W|~P"),
                l(vec![
                    l(vec![i(1), i(2), i(3), i(4), i(5)]),
                    i(3),
                    l(vec![i(1), i(2), i(3), i(4), i(5)]),
                    i(3),
                ]),
                Some("[1,2|...]|[1,2|...]"),
            ),
            (
                s("~W|~P|~W|~P"),
                l(vec![
                    l(vec![i(1), i(2), i(3)]),
                    i(1),
                    l(vec![i(1), i(2), i(3)]),
                    i(1),
                    l(vec![]),
                    i(1),
                    t(vec![]),
                    i(1),
                ]),
                Some("[...]|[...]|[]|{}"),
            ),
            (
                s("~W|~P|~W|~P"),
                l(vec![
                    il(vec![a("a")], a("b")),
                    i(2),
                    il(vec![a("a")], a("b")),
                    i(2),
                    il(vec![a("a"), a("b")], a("c")),
                    i(2),
                    il(vec![a("a"), a("b")], a("c")),
                    i(2),
                ]),
                Some("[a|...]|[a|...]|[a|...]|[a|...]"),
            ),
            (
                s("~W|~P|~W|~P"),
                l(vec![
                    il(vec![i(1), i(2)], i(3)),
                    i(3),
                    il(vec![i(1), i(2)], i(3)),
                    i(3),
                    il(vec![i(1), i(2)], i(3)),
                    i(4),
                    il(vec![i(1), i(2)], i(3)),
                    i(4),
                ]),
                Some("[1,2|...]|[1,2|...]|[1,2|3]|[1,2|3]"),
            ),
            (
                s("~W|~P"),
                l(vec![
                    l(vec![a("a"), a("b")]),
                    i(2),
                    l(vec![a("a"), a("b")]),
                    i(3),
                ]),
                Some("[a|...]|[a,b]"),
            ),
            (
                s("~W|~P|~P"),
                l(vec![
                    t(vec![
                        a("a"),
                        t(vec![a("b"), t(vec![a("c"), a("d")])]),
                        a("e"),
                    ]),
                    i(2),
                    t(vec![
                        a("a"),
                        t(vec![a("b"), t(vec![a("c"), a("d")])]),
                        a("e"),
                    ]),
                    i(2),
                    t(vec![
                        a("a"),
                        t(vec![a("b"), t(vec![a("c"), a("d")])]),
                        a("e"),
                    ]),
                    i(3),
                ]),
                Some("{a,...}|{a,...}|{a,{...},...}"),
            ),
            (
                s("~W|~W|~W"),
                l(vec![
                    t(vec![a("a"), a("b")]),
                    i(2),
                    t(vec![a("a"), a("b")]),
                    i(3),
                    t(vec![
                        a("a"),
                        t(vec![a("b"), t(vec![a("c"), a("d")])]),
                        a("e"),
                    ]),
                    i(3),
                ]),
                Some("{a,...}|{a,b}|{a,{...},...}"),
            ),
            (
                s("~W|~W|~W|~P"),
                l(vec![
                    m(vec![(a("a"), i(1)), (a("b"), i(2)), (a("c"), i(3))]),
                    i(2),
                    m(vec![(a("a"), i(1)), (a("b"), i(2)), (a("c"), i(3))]),
                    i(3),
                    m(vec![(a("a"), i(1))]),
                    i(1),
                    m(vec![(a("a"), i(1)), (a("b"), i(2)), (a("c"), i(3))]),
                    i(2),
                ]),
                Some("#{a => 1,...}|#{a => 1,b => 2,...}|#{}|#{a => 1,...}"),
            ),
            (
                s("~W|~P|~W|~P"),
                l(vec![
                    m(vec![(a("a"), t(vec![i(1), i(2)]))]),
                    i(2),
                    m(vec![(a("a"), t(vec![i(1), i(2)]))]),
                    i(2),
                    m(vec![(t(vec![a("x"), a("y")]), t(vec![i(1), i(2)]))]),
                    i(3),
                    m(vec![(t(vec![a("x"), a("y")]), t(vec![i(1), i(2)]))]),
                    i(3),
                ]),
                Some("#{a => {...},...}|#{a => {...}}|#{{x,...} => {1,...}}|#{{x,...} => {1,...}}"),
            ),
            (
                s("~W|~P|~W|~W|~W"),
                l(vec![
                    b(b"\x01\x02\x03\x04\x05"),
                    i(3),
                    b(b"\x01\x02\x03\x04\x05"),
                    i(3),
                    bits(b"\x01\x020", 4),
                    i(3),
                    bits(b"\x01\x020", 4),
                    i(4),
                    b(b"\x01"),
                    i(1),
                ]),
                Some("<<1,2,...>>|<<1,2,...>>|<<1,2,...>>|<<1,2,3:4>>|<<...>>"),
            ),
            (
                s("~P|~P|~P|~P"),
                l(vec![
                    b(b""),
                    i(1),
                    b(b"\x01"),
                    i(1),
                    b(b"abc"),
                    i(1),
                    b(b"abc"),
                    i(2),
                ]),
                Some("<<>>|<<...>>|<<...>>|<<\"abc\">>"),
            ),
            (
                s("~W|~P|~P"),
                l(vec![
                    s("abcdefgh"),
                    i(3),
                    s("abcdefgh"),
                    i(3),
                    s("abcdefgh"),
                    i(1),
                ]),
                Some("[97,98|...]|\"abcdefgh\"|[...]"),
            ),
            (
                s("~P|~P|~P"),
                l(vec![
                    t(vec![s("abcdef"), l(vec![i(1), i(2), i(3)])]),
                    i(2),
                    l(vec![s("abc"), s("def")]),
                    i(2),
                    l(vec![s("abc"), s("def")]),
                    i(3),
                ]),
                Some("{[...],...}|[[...]|...]|[\"abc\",[...]]"),
            ),
        ]);
    }

    /// With a depth D, `~P` looks at the first 4(D-1) bytes of a binary and shows a printable start followed by `...`.
    #[test]
    fn p_depth_cuts_long_binaries_to_a_printable_start() {
        check(&[
            (
                s("~P|~P|~P"),
                l(vec![
                    b(b"abcde"),
                    i(2),
                    b(b"abcdefghijklmnopqrstuvwxyz"),
                    i(3),
                    b(b"abcdefghijklmnopqrstuvwxyz"),
                    i(8),
                ]),
                Some("<<\"abcd\"...>>|<<\"abcdefgh\"...>>|<<\"abcdefghijklmnopqrstuvwxyz\">>"),
            ),
            (
                s("~P|~P|~P|~P"),
                l(vec![
                    b(b"abc\x00\x00\x00\x00\x00\x00\x00"),
                    i(2),
                    b(b"abc\x00\x00\x00\x00\x00\x00\x00"),
                    i(4),
                    b(b"abc\x00"),
                    i(4),
                    b(b"a\x00\x00\x00\x00"),
                    i(3),
                ]),
                Some("<<\"abc\"...>>|<<\"abc\"...>>|<<\"abc\"...>>|<<97,0,...>>"),
            ),
            (
                s("~P"),
                l(vec![
                    b(b"abcdefghijklmnopqrstuvwxyz0123456789\x00\x00"),
                    i(20),
                ]),
                Some("<<\"abcdefghijklmnopqrstuvwxyz0123456789\"...>>"),
            ),
            (
                s("~tP|~tP|~tP"),
                l(vec![
                    b(b"\xC3\xA9abcdefghijklmnopqrstuvwxyz"),
                    i(3),
                    b(b"\xC3\xA9abc\x00\x00\x00\x00\x00\x00\x00"),
                    i(3),
                    b(b"abc\x00\x00\x00\x00\x00\x00\x00"),
                    i(3),
                ]),
                Some("<<\"\u{E9}abcdefg\"/utf8...>>|<<\"\u{E9}abc\"/utf8...>>|<<\"abc\"...>>"),
            ),
            (
                s("~P|~P"),
                l(vec![
                    il(vec![i(1), i(2)], b(b"ab")),
                    i(10),
                    bits(b"ab\x80", 1),
                    i(5),
                ]),
                Some("[1,2|<<\"ab\">>]|<<97,98,1:1>>"),
            ),
        ]);
    }

    /// `~s` takes an iolist of Latin-1 characters, a binary (each byte a character) or an atom.
    #[test]
    fn s_prints_iolists_atoms_and_binaries_as_latin1() {
        check(&[
            (
                s("~s|~s|~s|~s|~s"),
                l(vec![s("abc"), b(b"abc"), a("abc"), l(vec![]), b(b"")]),
                Some("abc|abc|abc||"),
            ),
            (
                s("~s"),
                l(vec![il(
                    vec![i(97), l(vec![b(b"b"), l(vec![i(99)])])],
                    b(b"d"),
                )]),
                Some("abcd"),
            ),
            (s("~s"), l(vec![b(b"\xC3\xA9")]), Some("\u{C3}\u{A9}")),
            (s("~s"), l(vec![l(vec![i(233)])]), Some("\u{E9}")),
        ]);
    }

    /// The precision cuts the string, the width pads it; a precision alone pads on the right.
    #[test]
    fn s_width_and_precision_pad_and_cut() {
        check(&[
            (
                s("~5s|~-5s|~.5s|~2s|~.2s|"),
                l(vec![s("ab"), s("ab"), s("ab"), s("abcdef"), s("abcdef")]),
                Some("   ab|ab   |ab   |ab|ab|"),
            ),
            (
                s("~5.2s|~-5.2s|~5.4s|~5.4.xs|~3.3s|~5.3s|"),
                l(vec![
                    s("abc"),
                    s("abc"),
                    s("abc"),
                    s("abc"),
                    s("abcdef"),
                    s("abc"),
                ]),
                Some("   ab|ab   | abc |xabcx|abc|  abc|"),
            ),
            (s("~5s|"), l(vec![a("ab")]), Some("   ab|")),
        ]);
    }

    /// `~ts` reads binaries as UTF-8 (Latin-1 when they are not) and counts widths in grapheme clusters.
    #[test]
    fn ts_prints_unicode_and_counts_grapheme_clusters() {
        check(&[
            (
                s("~ts|~ts|~ts|~ts"),
                l(vec![
                    b(b"\xC3\xA9"),
                    b(b"\xE9"),
                    a("\u{3BB}"),
                    l(vec![i(956)]),
                ]),
                Some("\u{E9}|\u{E9}|\u{3BB}|\u{3BC}"),
            ),
            (
                s("~ts"),
                l(vec![il(
                    vec![b(b"a"), b(b"\xE9"), l(vec![i(955)])],
                    b(b"z"),
                )]),
                Some("a\u{E9}\u{3BB}z"),
            ),
            (
                s("~ts|~3ts|~.1ts|~-4ts|"),
                l(vec![
                    s("e\u{301}"),
                    s("e\u{301}"),
                    s("e\u{301}x"),
                    l(vec![i(955)]),
                ]),
                Some("e\u{301}|  e\u{301}|e\u{301}|\u{3BB}   |"),
            ),
        ]);
    }

    /// `~c` prints its character width (or precision) times; without `t` it keeps the low 8 bits.
    #[test]
    fn c_prints_a_character_repeated() {
        check(&[
            (
                s("~c|~5c|~.3c|~5.3c|~-5.3c|~5.3.xc|"),
                s("aaaaaa"),
                Some("a|aaaaa|aaa|  aaa|aaa  |xxaaa|"),
            ),
            (
                s("~c|~c|~tc|~c"),
                l(vec![
                    i(353),
                    i(-1),
                    i(955),
                    big("123456789012345678901234567891"),
                ]),
                Some("a|\u{FF}|\u{3BB}|\u{D3}"),
            ),
            (
                s("~0tc|~3.0tc|~.0.xtc|"),
                l(vec![i(-1), i(-1), i(55296)]),
                Some("|   ||"),
            ),
        ]);
    }

    /// `~b ~B ~x ~X ~+ ~#` print integers in the base given as the precision, padded or starred in their field.
    #[test]
    fn integers_print_in_any_base_with_or_without_prefix() {
        check(&[
            (
                s("~b ~B ~x ~X ~# ~+"),
                l(vec![
                    i(255),
                    i(255),
                    i(255),
                    s("0x"),
                    i(255),
                    s("0x"),
                    i(255),
                    i(255),
                ]),
                Some("255 255 0x255 0x255 10#255 10#255"),
            ),
            (
                s("~.16b ~.16B ~.16x ~.16X ~.16# ~.16+"),
                l(vec![
                    i(255),
                    i(255),
                    i(255),
                    s("0x"),
                    i(255),
                    a("0x"),
                    i(255),
                    i(255),
                ]),
                Some("ff FF 0xff 0xFF 16#FF 16#ff"),
            ),
            (
                s("~.16x ~.16X ~.16# ~.2B ~.36B ~.36b"),
                l(vec![
                    i(-255),
                    s("0x"),
                    i(-255),
                    l(vec![l(vec![i(48)]), l(vec![i(88)])]),
                    i(-255),
                    i(5),
                    i(35),
                    i(35),
                ]),
                Some("-0xff -0XFF -16#FF 101 Z z"),
            ),
            (
                s("~5B|~-5B|~5.10.0B|~5.10.0B|~2B|"),
                l(vec![i(12), i(12), i(12), i(-12), i(12345)]),
                Some("   12|12   |00012|00-12|**|"),
            ),
            (
                s("~B|~.16B|~.16b"),
                l(vec![
                    big("123456789012345678901234567890"),
                    big("-123456789012345678901234567890"),
                    i(-9223372036854775808),
                ]),
                Some("123456789012345678901234567890|-18EE90FF6C373E0EE4E3F0AD2|-8000000000000000"),
            ),
        ]);
    }

    /// `~f ~e ~g` round the 21 digits of `float_to_list/1` half up, with Erlang's defaults and exponent form.
    #[test]
    fn floats_round_as_io_lib_does() {
        check(&[
            (
                s("~f|~e|~g"),
                l(vec![f(4.56789), f(4.56789), f(4.56789)]),
                Some("4.567890|4.56789e+0|4.56789"),
            ),
            (
                s("~.2f|~.3e|~.3g"),
                l(vec![f(2.675), f(2.675), f(2.675)]),
                Some("2.67|2.67e+0|2.67"),
            ),
            (
                s("~f|~.30f|~.20e"),
                l(vec![f(0.1), f(0.1), f(0.1)]),
                Some("0.100000|0.100000000000000005551000000000|1.0000000000000000555e-1"),
            ),
            (
                s("~f|~e|~e|~g"),
                l(vec![f(-0.0), f(0.0), f(-0.0), f(0.0)]),
                Some("-0.000000|0.00000e+0|-0.00000e+0|0.00000e+0"),
            ),
            (
                s("~e|~e|~e|~.2e"),
                l(vec![f(1.0e100), f(1.0e-100), f(9.9999999), f(9.96)]),
                Some("1.00000e+100|1.00000e-100|1.00000e+1|1.0e+1"),
            ),
            (
                s("~.1f|~.1f|~.1f|~.1f|~.1f"),
                l(vec![f(9.96), f(0.05), f(0.25), f(-0.96), f(0.95)]),
                Some("10.0|0.1|0.3|-1.0|0.9"),
            ),
            (
                s("~f|~f|~f"),
                l(vec![f(1.0e20), f(123456789.12345679), f(1.0e-10)]),
                Some("100000000000000000000.000000|123456789.123457|0.000000"),
            ),
            (
                s("~g|~g|~g|~g|~g|~g|~g"),
                l(vec![
                    f(0.05),
                    f(0.5),
                    f(5.0),
                    f(50.0),
                    f(500.0),
                    f(5.0e3),
                    f(5.0e4),
                ]),
                Some("5.00000e-2|0.500000|5.00000|50.0000|500.000|5000.00|5.00000e+4"),
            ),
            (
                s("~.1g|~.1g|~.1g|~.2g|~.2g"),
                l(vec![f(0.5), f(5.0), f(0.05), f(123.0), f(-0.123)]),
                Some("0.5|5.0e+0|5.0e-2|1.2e+2|-0.12"),
            ),
        ]);
    }

    /// A float's field width pads it or, when it does not fit, replaces it by `*`s.
    #[test]
    fn float_fields_pad_and_star() {
        check(&[
            (
                s("~10.3f|~-10.3f|~3.1f|~10.3.0f|"),
                l(vec![f(4.56789), f(4.56789), f(123.45), f(-4.56789)]),
                Some("     4.568|4.568     |***|0000-4.568|"),
            ),
            (
                s("~10e|~15e|~-12.3e|~8g|"),
                l(vec![f(4.56789), f(4.56789), f(4.56789), f(4.56789)]),
                Some("4.56789e+0|     4.56789e+0|4.57e+0     | 4.56789|"),
            ),
        ]);
    }

    /// A `*` takes the field width, precision or pad character from the next argument; a negative width left-justifies.
    #[test]
    fn star_takes_width_precision_and_pad_from_the_arguments() {
        check(&[
            (
                s("~*w|~-*w|~*w|~-*w|"),
                l(vec![
                    i(5),
                    a("a"),
                    i(5),
                    a("a"),
                    i(-5),
                    a("a"),
                    i(-5),
                    a("a"),
                ]),
                Some("    a|a    |a    |    a|"),
            ),
            (
                s("~*.*f|~.*.*w|~*.*.*w|"),
                l(vec![
                    i(10),
                    i(2),
                    f(4.56789),
                    i(10),
                    i(120),
                    a("ab"),
                    i(6),
                    i(2),
                    i(45),
                    a("abc"),
                ]),
                Some("      4.57|xxxxxxxxab|----**|"),
            ),
            (
                s("~10.*.xw|"),
                l(vec![i(3), a("abcdef")]),
                Some("xxxxxxx***|"),
            ),
        ]);
    }

    /// `~i` consumes an argument and prints nothing, whatever its field.
    #[test]
    fn i_skips_its_argument() {
        check(&[(s("~i~w|~5i|"), l(vec![a("a"), a("b"), a("c")]), Some("b||"))]);
    }

    /// A binary format is read byte by byte as Latin-1, as Erlang reads it; elements of a format list that are not characters are copied as text.
    #[test]
    fn format_may_be_a_binary_an_atom_or_a_deep_list() {
        check(&[
            (
                b(b"h\xC3\xA9 ~w~n"),
                l(vec![a("a")]),
                Some("h\u{C3}\u{A9} a\n"),
            ),
            (a("~w!"), l(vec![a("a")]), Some("a!")),
            (a("\u{3BB} ~w"), l(vec![a("a")]), Some("\u{3BB} a")),
            (
                l(vec![s("abc"), s("~w"), b(b"de")]),
                l(vec![]),
                Some("abc~wde"),
            ),
            (il(vec![i(97)], b(b"b")), l(vec![]), None),
        ]);
    }

    /// What makes `io_lib:format/2` raise `badarg` gives `Err`.
    #[test]
    fn errors_are_reported_where_erlang_raises_badarg() {
        check(&[
            (s("~w"), l(vec![]), None),
            (s("~w ~w"), l(vec![a("a")]), None),
            (s("~w"), l(vec![a("a"), a("b")]), None),
            (s("~a"), l(vec![a("a")]), None),
            (s("~y"), l(vec![a("a")]), None),
            (s("abc~"), l(vec![]), None),
            (s("~5"), l(vec![i(1)]), None),
            (s("~-"), l(vec![a("a")]), None),
            (s("~-.10.xw"), l(vec![a("ab")]), None),
            (s("~w"), a("foo"), None),
            (s("~w"), il(vec![a("a")], a("b")), None),
            (s("~s"), l(vec![i(123)]), None),
            (s("~s"), l(vec![t(vec![a("a")])]), None),
            (s("~s"), l(vec![il(vec![i(97)], a("b"))]), None),
            (s("~s"), l(vec![bits(b"\x80", 1)]), None),
            (s("~s"), l(vec![a("\u{3BB}")]), None),
            (s("~s"), l(vec![l(vec![i(256)])]), None),
            (s("~ts"), l(vec![l(vec![i(-1)])]), None),
            (s("~f"), l(vec![i(1)]), None),
            (s("~e"), l(vec![i(1)]), None),
            (s("~.0f"), l(vec![f(9.96)]), None),
            (s("~.1e"), l(vec![f(9.96)]), None),
            (s("~.0g"), l(vec![f(1.0)]), None),
            (s("~B"), l(vec![f(1.0)]), None),
            (s("~.1B"), l(vec![i(5)]), None),
            (s("~.37B"), l(vec![i(5)]), None),
            (s("~.16x"), l(vec![i(255), b(b"0x")]), None),
            (s("~.16x"), l(vec![i(255), i(1)]), None),
            (s("~c"), l(vec![a("a")]), None),
            (s("~*w"), l(vec![a("a"), a("a")]), None),
            (s("~.*f"), l(vec![a("a"), f(1.0)]), None),
            (s("~-10p"), l(vec![a("a")]), None),
            (s("~-3n"), l(vec![]), None),
            (s("~W"), l(vec![a("a"), a("b")]), None),
            (s("~P"), l(vec![a("a"), f(1.0)]), None),
            (s("~3.5s"), l(vec![s("abc")]), None),
            (s("~3.5c"), l(vec![i(97)]), None),
            (l(vec![i(97), a("foo")]), l(vec![]), None),
            (bits(b"\x80", 1), l(vec![]), None),
            (t(vec![]), l(vec![]), None),
        ]);
    }

    /// A map of over 32 pairs decoded from Erlang prints in Erlang's order,
    /// the reverse of the order on the wire.
    #[test]
    fn large_maps_print_in_erlangs_order() {
        // term_to_binary(maps:from_list([{I, I*I} || I <- lists:seq(1, 33)]))
        let bytes: &[u8] = &[
            131, 116, 0, 0, 0, 33, 97, 33, 98, 0, 0, 4, 65, 97, 12, 97, 144, 97, 23, 98, 0, 0, 2,
            17, 97, 29, 98, 0, 0, 3, 73, 97, 30, 98, 0, 0, 3, 132, 97, 26, 98, 0, 0, 2, 164, 97,
            31, 98, 0, 0, 3, 193, 97, 11, 97, 121, 97, 9, 97, 81, 97, 32, 98, 0, 0, 4, 0, 97, 25,
            98, 0, 0, 2, 113, 97, 28, 98, 0, 0, 3, 16, 97, 6, 97, 36, 97, 13, 97, 169, 97, 20, 98,
            0, 0, 1, 144, 97, 15, 97, 225, 97, 14, 97, 196, 97, 2, 97, 4, 97, 7, 97, 49, 97, 1, 97,
            1, 97, 8, 97, 64, 97, 3, 97, 9, 97, 17, 98, 0, 0, 1, 33, 97, 22, 98, 0, 0, 1, 228, 97,
            21, 98, 0, 0, 1, 185, 97, 4, 97, 16, 97, 24, 98, 0, 0, 2, 64, 97, 10, 97, 100, 97, 27,
            98, 0, 0, 2, 217, 97, 19, 98, 0, 0, 1, 105, 97, 5, 97, 25, 97, 18, 98, 0, 0, 1, 68, 97,
            16, 98, 0, 0, 1, 0,
        ];
        let map = ergo_etf::decode(bytes).expect("a map");
        let erlang = "#{16 => 256,18 => 324,5 => 25,19 => 361,27 => 729,10 => 100,\
                      24 => 576,4 => 16,21 => 441,22 => 484,17 => 289,3 => 9,8 => 64,\
                      1 => 1,7 => 49,2 => 4,14 => 196,15 => 225,20 => 400,13 => 169,\
                      6 => 36,28 => 784,25 => 625,32 => 1024,9 => 81,11 => 121,\
                      31 => 961,26 => 676,30 => 900,29 => 841,23 => 529,12 => 144,\
                      33 => 1089}";
        assert_eq!(format(&s("~w"), &l(vec![map])), Ok(erlang.to_owned()));
    }

    /// `~k` and `~K` (OTP 26; this machine's OTP 25 has neither) order map
    /// pairs by key, ascending or descending.
    #[test]
    fn k_and_big_k_order_map_keys() {
        let map = m((1..=40).map(|k| (i(k), i(0))).collect());
        let ascending: Vec<String> = (1..=40).map(|k| format!("{k} => 0")).collect();
        let ascending = format!("#{{{}}}", ascending.join(","));
        assert_eq!(
            format(&s("~kp"), &l(vec![map.clone()])),
            Ok(ascending.clone())
        );
        assert_eq!(
            format(&s("~Kw"), &l(vec![a("ordered"), map.clone()])),
            Ok(ascending)
        );
        let small = m(vec![(a("a"), i(1)), (i(2), i(2)), (f(1.5), i(3))]);
        assert_eq!(
            format(&s("~Kp"), &l(vec![a("reversed"), small])),
            Ok("#{a => 1,1.5 => 3,2 => 2}".to_owned())
        );
        assert!(format(&s("~Kp"), &l(vec![a("sideways"), m(vec![])])).is_err());
    }

    /// A closure decoded from Erlang prints as Erlang prints it.
    #[test]
    fn closures_print_as_erlang_prints_them() {
        // term_to_binary(fun(X) -> X end) in the shell, printed there as
        // #Fun<erl_eval.42.3316493>.
        let bytes: &[u8] = &[
            131, 112, 0, 0, 0, 160, 1, 6, 83, 97, 170, 70, 21, 144, 209, 189, 241, 235, 98, 209,
            166, 235, 8, 0, 0, 0, 42, 0, 0, 0, 1, 100, 0, 8, 101, 114, 108, 95, 101, 118, 97, 108,
            97, 42, 98, 0, 50, 155, 13, 88, 100, 0, 13, 110, 111, 110, 111, 100, 101, 64, 110, 111,
            104, 111, 115, 116, 0, 0, 0, 9, 0, 0, 0, 0, 0, 0, 0, 0, 104, 6, 97, 1, 106, 100, 0, 4,
            110, 111, 110, 101, 100, 0, 4, 110, 111, 110, 101, 116, 0, 0, 0, 0, 108, 0, 0, 0, 1,
            104, 5, 100, 0, 6, 99, 108, 97, 117, 115, 101, 97, 1, 108, 0, 0, 0, 1, 104, 3, 100, 0,
            3, 118, 97, 114, 97, 1, 100, 0, 1, 88, 106, 106, 108, 0, 0, 0, 1, 104, 3, 100, 0, 3,
            118, 97, 114, 97, 1, 100, 0, 1, 88, 106, 106,
        ];
        let fun = ergo_etf::decode(bytes).expect("a fun");
        assert_eq!(
            format(&s("~w ~p"), &l(vec![fun.clone(), fun])),
            Ok("#Fun<erl_eval.42.3316493> #Fun<erl_eval.42.3316493>".to_owned())
        );
    }

    /// Pids name their node, as this crate prints them everywhere (Erlang
    /// would write `<0.9.0>` for a pid of its own node).
    #[test]
    fn pids_name_their_node() {
        let pid = Term::Pid(ergo_etf::Pid::new(Atom::from("peer@host"), 9, 0, 1));
        assert_eq!(
            format(&s("~w ~p"), &l(vec![pid.clone(), pid])),
            Ok("<peer@host.9.0> <peer@host.9.0>".to_owned())
        );
    }

    /// A negative precision from `*` is refused. (OTP 25 loops on it;
    /// later releases raise `badarg`.)
    #[test]
    fn negative_precision_is_refused() {
        assert!(format(&s("~.*f"), &l(vec![i(-2), f(4.5)])).is_err());
        assert!(format(&s("~10.*w"), &l(vec![i(-2), a("abc")])).is_err());
    }

    /// Field widths past the cap are refused instead of allocated.
    #[test]
    fn huge_fields_are_refused() {
        assert!(format(&s("~99999999999c"), &l(vec![i(97)])).is_err());
        assert!(format(&s("~*c"), &l(vec![i(1 << 40), i(97)])).is_err());
        assert_eq!(
            format(&s("~1048576c"), &l(vec![i(97)])).map(|s| s.len()),
            Ok(1 << 20)
        );
    }

    /// Terms nested deeper than a decoder lets through are refused, not
    /// followed down the stack.
    #[test]
    fn terms_nested_too_deeply_are_refused() {
        let mut deep = l(vec![]);
        for _ in 0..(DEFAULT_MAX_DEPTH + 10) {
            deep = l(vec![deep]);
        }
        let args = l(vec![deep]);
        assert!(format(&s("~w"), &args).is_err());
        assert!(format(&s("~p"), &args).is_err());
        assert_eq!(chardata(&args), None);
    }

    /// `chardata` gives what `unicode:characters_to_list/1` gives.
    #[test]
    fn chardata_reads_binaries_as_utf8_and_integers_as_code_points() {
        let text = il(vec![b("héllo".as_bytes()), l(vec![i(10), i(955)])], b(b"!"));
        assert_eq!(chardata(&text), Some("héllo\nλ!".to_owned()));
        assert_eq!(chardata(&l(vec![l(vec![]), b(b"")])), Some(String::new()));
        assert_eq!(chardata(&il(vec![i(97)], b(b"b"))), Some("ab".to_owned()));
        // {error, ...} or badarg in Erlang:
        assert_eq!(chardata(&b(&[255])), None);
        assert_eq!(chardata(&l(vec![i(0xD800)])), None);
        assert_eq!(chardata(&l(vec![i(-1)])), None);
        assert_eq!(chardata(&a("abc")), None);
        assert_eq!(chardata(&il(vec![i(97)], a("b"))), None);
        assert_eq!(chardata(&i(65)), None);
    }
}
