//! The distribution handshake: how two nodes that share a cookie agree to
//! talk, and which protocol features each one has.
//!
//! The node that connects (A) sends its name, flags and creation; the node
//! that accepts (B) answers with a status, then a challenge (a random
//! 32-bit number) with its own name, flags and creation. A proves it knows
//! the cookie by sending `md5(Cookie ++ decimal(B's challenge))` together
//! with a challenge of its own, and B proves it the same way. Messages are
//! framed by a 2-byte length. Versions 5 (`n` messages) and 6 (OTP 23's
//! `N` messages, with 64-bit flags and the creation exchange) are both
//! spoken; a version-5 `send_name` from a version-6 node is completed with
//! a `c` complement.
//!
//! Nothing a peer sends can make this panic or allocate without bound: a
//! frame is at most 2^16 bytes, every read has a deadline, and every refusal
//! is an [`HandshakeError`] that says what happened.

use std::fmt;
use std::io;
use std::time::Duration;

use md5::{Digest, Md5};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Distribution flags (`DFLAG_*`): what a node can do.
pub mod flags {
    /// The node is published (visible in `nodes()`); hidden nodes leave it out.
    pub const PUBLISHED: u64 = 0x1;
    /// The node handles the atom cache.
    pub const ATOM_CACHE: u64 = 0x2;
    /// Long references.
    pub const EXTENDED_REFERENCES: u64 = 0x4;
    /// Distributed monitors.
    pub const DIST_MONITOR: u64 = 0x8;
    /// Fun tags.
    pub const FUN_TAGS: u64 = 0x10;
    /// Monitors by registered name.
    pub const DIST_MONITOR_NAME: u64 = 0x20;
    /// The atom cache on hidden connections.
    pub const HIDDEN_ATOM_CACHE: u64 = 0x40;
    /// NEW_FUN_EXT.
    pub const NEW_FUN_TAGS: u64 = 0x80;
    /// Extended pids and ports.
    pub const EXTENDED_PIDS_PORTS: u64 = 0x100;
    /// EXPORT_EXT.
    pub const EXPORT_PTR_TAG: u64 = 0x200;
    /// Bitstrings.
    pub const BIT_BINARIES: u64 = 0x400;
    /// NEW_FLOAT_EXT.
    pub const NEW_FLOATS: u64 = 0x800;
    /// Unicode I/O.
    pub const UNICODE_IO: u64 = 0x1000;
    /// The DIST_HEADER atom cache.
    pub const DIST_HDR_ATOM_CACHE: u64 = 0x2000;
    /// SMALL_ATOM_EXT.
    pub const SMALL_ATOM_TAGS: u64 = 0x4000;
    /// UTF-8 atoms.
    pub const UTF8_ATOMS: u64 = 0x10000;
    /// MAP_EXT.
    pub const MAP_TAG: u64 = 0x20000;
    /// 32-bit creations.
    pub const BIG_CREATION: u64 = 0x40000;
    /// SEND_SENDER.
    pub const SEND_SENDER: u64 = 0x80000;
    /// Sequence trace tokens of any size.
    pub const BIG_SEQTRACE_LABELS: u64 = 0x100000;
    /// EXIT_TT payload control messages.
    pub const EXIT_PAYLOAD: u64 = 0x400000;
    /// Fragmented messages.
    pub const FRAGMENTS: u64 = 0x800000;
    /// The version-6 handshake.
    pub const HANDSHAKE_23: u64 = 0x1000000;
    /// The UNLINK_ID protocol.
    pub const UNLINK_ID: u64 = 0x2000000;
    /// Remote spawn.
    pub const SPAWN: u64 = 1 << 32;
    /// Dynamic node names.
    pub const NAME_ME: u64 = 1 << 33;
    /// Version-4 pids, ports and references.
    pub const V4_NC: u64 = 1 << 34;
    /// Process aliases.
    pub const ALIAS: u64 = 1 << 35;

    /// What OTP 25 insists on (its `DFLAG_DIST_MANDATORY_25`).
    pub const MANDATORY_25: u64 = EXTENDED_REFERENCES
        | FUN_TAGS
        | EXTENDED_PIDS_PORTS
        | UTF8_ATOMS
        | NEW_FUN_TAGS
        | BIG_CREATION
        | NEW_FLOATS
        | MAP_TAG
        | EXPORT_PTR_TAG
        | BIT_BINARIES
        | HANDSHAKE_23;
    /// What OTP 26 and 27 insist on besides.
    pub const MANDATORY_26: u64 = V4_NC | UNLINK_ID;
}

/// Who this node is in a handshake.
#[derive(Clone)]
pub struct Local {
    /// Its full name, `name@host`.
    pub name: String,
    /// The shared secret.
    pub cookie: String,
    /// The flags it offers.
    pub flags: u64,
    /// Its creation.
    pub creation: u32,
}

impl fmt::Debug for Local {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never print the cookie.
        f.debug_struct("Local")
            .field("name", &self.name)
            .field("flags", &format_args!("{:#x}", self.flags))
            .field("creation", &self.creation)
            .finish_non_exhaustive()
    }
}

/// What a handshake found out about the other node.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its full name.
    pub name: String,
    /// Its flags.
    pub flags: u64,
    /// Its creation (0 if it spoke version 5 and sent no complement).
    pub creation: u32,
}

impl Peer {
    /// Whether the other node is hidden.
    pub fn hidden(&self) -> bool {
        self.flags & flags::PUBLISHED == 0
    }
}

/// Why a handshake failed.
#[derive(Debug)]
pub enum HandshakeError {
    /// The connection failed or closed.
    Io(io::Error),
    /// The other side took too long.
    Timeout,
    /// The other side's digest was wrong: the cookies differ.
    BadCookie,
    /// The accepting node refused (`nok`, `not_allowed`, `alive`, …).
    Refused(String),
    /// The other node lacks a feature this one requires (the flags missing).
    MissingFlags(u64),
    /// The other side sent something that is not the handshake.
    Protocol(String),
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::Io(e) => write!(f, "handshake connection failed: {e}"),
            HandshakeError::Timeout => write!(f, "handshake timed out"),
            HandshakeError::BadCookie => {
                write!(f, "handshake refused: the other node's cookie differs")
            }
            HandshakeError::Refused(s) => write!(f, "handshake refused by the other node: {s}"),
            HandshakeError::MissingFlags(m) => write!(
                f,
                "the other node lacks required distribution features (flags {m:#x})"
            ),
            HandshakeError::Protocol(s) => write!(f, "handshake protocol error: {s}"),
        }
    }
}

impl std::error::Error for HandshakeError {}

impl From<io::Error> for HandshakeError {
    fn from(e: io::Error) -> Self {
        HandshakeError::Io(e)
    }
}

fn protocol(s: impl Into<String>) -> HandshakeError {
    HandshakeError::Protocol(s.into())
}

/// How long each step may take.
const STEP: Duration = Duration::from_secs(7);

/// How handshake messages are framed: a 2-byte length on plain TCP, a
/// 4-byte one inside TLS (as `inet_tls_dist` frames them).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Framing {
    Short,
    Long,
}

/// The largest handshake message taken with 4-byte lengths (the 2-byte
/// form cannot exceed 2^16 anyway).
const MAX_MESSAGE: usize = 1 << 16;

async fn read_frame<S: AsyncRead + Unpin>(
    s: &mut S,
    framing: Framing,
) -> Result<Vec<u8>, HandshakeError> {
    let read = async {
        let len = match framing {
            Framing::Short => {
                let mut len = [0u8; 2];
                s.read_exact(&mut len).await?;
                u16::from_be_bytes(len) as usize
            }
            Framing::Long => {
                let mut len = [0u8; 4];
                s.read_exact(&mut len).await?;
                u32::from_be_bytes(len) as usize
            }
        };
        if len > MAX_MESSAGE {
            return Ok(Err(protocol(format!(
                "a handshake message of {len} bytes (at most {MAX_MESSAGE} are taken)"
            ))));
        }
        let mut body = vec![0u8; len];
        s.read_exact(&mut body).await?;
        Ok::<_, io::Error>(Ok(body))
    };
    match tokio::time::timeout(STEP, read).await {
        Ok(Ok(Ok(b))) if b.is_empty() => Err(protocol("empty handshake message")),
        Ok(Ok(b)) => b,
        Ok(Err(e)) => Err(e.into()),
        Err(_) => Err(HandshakeError::Timeout),
    }
}

async fn write_frame<S: AsyncWrite + Unpin>(
    s: &mut S,
    framing: Framing,
    body: &[u8],
) -> Result<(), HandshakeError> {
    let mut out = Vec::with_capacity(body.len() + 4);
    match framing {
        Framing::Short => {
            let len =
                u16::try_from(body.len()).map_err(|_| protocol("handshake message too long"))?;
            out.extend_from_slice(&len.to_be_bytes());
        }
        Framing::Long => out.extend_from_slice(&(body.len() as u32).to_be_bytes()),
    }
    out.extend_from_slice(body);
    match tokio::time::timeout(STEP, async {
        s.write_all(&out).await?;
        s.flush().await
    })
    .await
    {
        Ok(r) => Ok(r?),
        Err(_) => Err(HandshakeError::Timeout),
    }
}

/// `md5(Cookie ++ integer_to_list(Challenge))`.
pub fn digest(cookie: &str, challenge: u32) -> [u8; 16] {
    let mut h = Md5::new();
    h.update(cookie.as_bytes());
    h.update(challenge.to_string().as_bytes());
    h.finalize().into()
}

/// Compares digests without stopping at the first difference.
fn same_digest(a: &[u8], b: &[u8; 16]) -> bool {
    a.len() == 16 && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], HandshakeError> {
        if self.0.len() < n {
            return Err(protocol(format!("message too short for its {what}")));
        }
        let (a, b) = self.0.split_at(n);
        self.0 = b;
        Ok(a)
    }
    fn u16(&mut self, what: &str) -> Result<u16, HandshakeError> {
        let b = self.take(2, what)?;
        Ok(u16::from_be_bytes([b[0], b[1]]))
    }
    fn u32(&mut self, what: &str) -> Result<u32, HandshakeError> {
        let b = self.take(4, what)?;
        Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn u64(&mut self, what: &str) -> Result<u64, HandshakeError> {
        let hi = self.u32(what)?;
        let lo = self.u32(what)?;
        Ok((u64::from(hi) << 32) | u64::from(lo))
    }
    fn name(&mut self, len: usize) -> Result<String, HandshakeError> {
        let b = self.take(len, "node name")?;
        let s = std::str::from_utf8(b).map_err(|_| protocol("node name is not UTF-8"))?;
        if !s.contains('@') {
            return Err(protocol(format!("{s:?} is not a node name (no '@')")));
        }
        Ok(s.to_string())
    }
}

fn check_flags(peer: u64, required: u64) -> Result<(), HandshakeError> {
    let missing = required & !peer;
    if missing != 0 {
        return Err(HandshakeError::MissingFlags(missing));
    }
    Ok(())
}

/// Connects as node A: `peer_version` is the highest version the other
/// node's EPMD entry gave (6 for OTP 23+). Returns what the other node is.
pub async fn initiate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    me: &Local,
    peer_version: u16,
) -> Result<Peer, HandshakeError> {
    initiate_framed(s, me, peer_version, Framing::Short, || true).await
}

/// [`initiate`] with messages framed as `framing` says.
///
/// `new_incarnation` answers the other node's `alive` (it thinks it is
/// still connected to us): `true` when this node has no connection to it,
/// so the other's is stale and goes; `false` ends this attempt, keeping
/// the connection there is.
pub(crate) async fn initiate_framed<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    me: &Local,
    peer_version: u16,
    framing: Framing,
    new_incarnation: impl FnOnce() -> bool,
) -> Result<Peer, HandshakeError> {
    // send_name
    let mut m = Vec::new();
    if peer_version >= 6 {
        m.push(b'N');
        m.extend_from_slice(&me.flags.to_be_bytes());
        m.extend_from_slice(&me.creation.to_be_bytes());
        m.extend_from_slice(&(me.name.len() as u16).to_be_bytes());
    } else {
        m.push(b'n');
        m.extend_from_slice(&5u16.to_be_bytes());
        m.extend_from_slice(&(me.flags as u32).to_be_bytes());
    }
    m.extend_from_slice(me.name.as_bytes());
    write_frame(s, framing, &m).await?;

    // recv_status
    let status = read_frame(s, framing).await?;
    let Some((&b's', text)) = status.split_first() else {
        return Err(protocol("expected a status ('s') message"));
    };
    let text = String::from_utf8_lossy(text).into_owned();
    match text.as_str() {
        "ok" | "ok_simultaneous" => {}
        "alive" => {
            // The other node thinks we are still connected: a new
            // incarnation (no connection here) says so and goes on; a node
            // that is connected says no and stops.
            if new_incarnation() {
                write_frame(s, framing, b"strue").await?;
            } else {
                let _ = write_frame(s, framing, b"sfalse").await;
                return Err(HandshakeError::Refused(
                    "alive: already connected to it".to_string(),
                ));
            }
        }
        other => return Err(HandshakeError::Refused(other.to_string())),
    }

    // recv_challenge
    let msg = read_frame(s, framing).await?;
    let mut c = Cursor(&msg[1..]);
    let new_challenge = msg[0] == b'N';
    let (peer, their_challenge) = match msg[0] {
        b'N' => {
            let flags = c.u64("flags")?;
            let ch = c.u32("challenge")?;
            let creation = c.u32("creation")?;
            let nlen = c.u16("name length")? as usize;
            let name = c.name(nlen)?;
            (
                Peer {
                    name,
                    flags,
                    creation,
                },
                ch,
            )
        }
        b'n' => {
            let _version = c.u16("version")?;
            let flags = u64::from(c.u32("flags")?);
            let ch = c.u32("challenge")?;
            let rest = c.0.len();
            let name = c.name(rest)?;
            (
                Peer {
                    name,
                    flags,
                    creation: 0,
                },
                ch,
            )
        }
        t => return Err(protocol(format!("expected a challenge, got tag {t}"))),
    };
    check_flags(peer.flags, flags::MANDATORY_25)?;
    if peer_version < 6 && new_challenge {
        // We sent the old send_name and the other node answered in version
        // 6: complete it with our high flags and creation.
        let mut m = vec![b'c'];
        m.extend_from_slice(&((me.flags >> 32) as u32).to_be_bytes());
        m.extend_from_slice(&me.creation.to_be_bytes());
        write_frame(s, framing, &m).await?;
    }

    // send_challenge_reply
    let mine = super::random_u32();
    let mut m = vec![b'r'];
    m.extend_from_slice(&mine.to_be_bytes());
    m.extend_from_slice(&digest(&me.cookie, their_challenge));
    write_frame(s, framing, &m).await?;

    // recv_challenge_ack
    let ack = match read_frame(s, framing).await {
        Ok(a) => a,
        // The other node closes the connection when our digest is wrong.
        Err(HandshakeError::Io(e)) if e.kind() == io::ErrorKind::UnexpectedEof => {
            return Err(HandshakeError::BadCookie);
        }
        Err(e) => return Err(e),
    };
    match ack.split_first() {
        Some((b'a', d)) if same_digest(d, &digest(&me.cookie, mine)) => Ok(peer),
        Some((b'a', _)) => Err(HandshakeError::BadCookie),
        _ => Err(protocol("expected a challenge ack ('a')")),
    }
}

/// Accepts as node B. Returns what the connecting node is.
pub async fn accept<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    me: &Local,
) -> Result<Peer, HandshakeError> {
    accept_named(s, me, &mut None, Framing::Short, |_| Status::Ok).await
}

/// What the accepting node answers a `send_name` with (`dist_util`'s
/// statuses).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// Go on.
    Ok,
    /// Go on; this node was connecting to the other at the same time and
    /// gives its own attempt up (its name is the lower).
    OkSimultaneous,
    /// Stop; this node was connecting to the other at the same time and
    /// its own attempt goes on (its name is the higher).
    Nok,
    /// This node is connected to the other already: ask whether it is a
    /// new incarnation.
    Alive,
}

/// [`accept`], noting in `named` the name the connecting node gives as soon
/// as it gives it (for a refusal to name the node it refused).
pub(crate) async fn accept_named<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    me: &Local,
    named: &mut Option<String>,
    framing: Framing,
    status: impl FnOnce(&str) -> Status,
) -> Result<Peer, HandshakeError> {
    // recv_name
    let msg = read_frame(s, framing).await?;
    let mut c = Cursor(&msg[1..]);
    let (mut peer, old) = match msg[0] {
        b'N' => {
            let flags = c.u64("flags")?;
            let creation = c.u32("creation")?;
            let nlen = c.u16("name length")? as usize;
            let name = c.name(nlen)?;
            (
                Peer {
                    name,
                    flags,
                    creation,
                },
                false,
            )
        }
        b'n' => {
            let _version = c.u16("version")?;
            let flags = u64::from(c.u32("flags")?);
            let rest = c.0.len();
            let name = c.name(rest)?;
            (
                Peer {
                    name,
                    flags,
                    creation: 0,
                },
                true,
            )
        }
        t => return Err(protocol(format!("expected send_name, got tag {t}"))),
    };
    *named = Some(peer.name.clone());
    if let Err(e) = check_flags(peer.flags, flags::MANDATORY_25) {
        let _ = write_frame(s, framing, b"snot_allowed").await;
        return Err(e);
    }
    match status(&peer.name) {
        Status::Ok => write_frame(s, framing, b"sok").await?,
        Status::OkSimultaneous => write_frame(s, framing, b"sok_simultaneous").await?,
        Status::Nok => {
            let _ = write_frame(s, framing, b"snok").await;
            return Err(HandshakeError::Refused(
                "nok: this node's own connection to it, set up at the same time, goes on"
                    .to_string(),
            ));
        }
        Status::Alive => {
            // Connected already: the other node says whether it is a new
            // incarnation (the old connection is then dropped) or not.
            write_frame(s, framing, b"salive").await?;
            match read_frame(s, framing).await?.as_slice() {
                b"strue" => {}
                b"sfalse" => {
                    return Err(HandshakeError::Refused(
                        "alive: the node is connected already and says it is the same one"
                            .to_string(),
                    ));
                }
                _ => return Err(protocol("expected true or false after alive")),
            }
        }
    }

    // send_challenge, always in the version-6 form: every node accepted
    // here has HANDSHAKE_23 (it is mandatory since OTP 25), and one that
    // started the old way then sends the complement.
    let mine = super::random_u32();
    let complement_due = old;
    let mut m = vec![b'N'];
    m.extend_from_slice(&me.flags.to_be_bytes());
    m.extend_from_slice(&mine.to_be_bytes());
    m.extend_from_slice(&me.creation.to_be_bytes());
    m.extend_from_slice(&(me.name.len() as u16).to_be_bytes());
    m.extend_from_slice(me.name.as_bytes());
    write_frame(s, framing, &m).await?;

    // A version-6 node that sent the old send_name completes it.
    let mut reply = read_frame(s, framing).await?;
    if complement_due {
        if reply[0] != b'c' {
            return Err(protocol("expected the send_name complement ('c')"));
        }
        let mut c = Cursor(&reply[1..]);
        let high = c.u32("flags")?;
        peer.flags |= u64::from(high) << 32;
        peer.creation = c.u32("creation")?;
        reply = read_frame(s, framing).await?;
    }

    // recv_challenge_reply
    let mut c = Cursor(&reply[1..]);
    if reply[0] != b'r' {
        return Err(protocol("expected a challenge reply ('r')"));
    }
    let theirs = c.u32("challenge")?;
    let d = c.take(16, "digest")?;
    if !same_digest(d, &digest(&me.cookie, mine)) {
        // As Erlang does: close without a word.
        return Err(HandshakeError::BadCookie);
    }

    // send_challenge_ack
    let mut m = vec![b'a'];
    m.extend_from_slice(&digest(&me.cookie, theirs));
    write_frame(s, framing, &m).await?;
    Ok(peer)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(d: [u8; 16]) -> String {
        d.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn the_digest_is_md5_of_the_cookie_and_the_challenge_in_decimal() {
        // Reference values from Python's hashlib.
        assert_eq!(hex(digest("abc", 1)), "23734cd52ad4a4fb877d8a1e26e5df5f");
        assert_eq!(
            hex(digest("secret", u32::MAX)),
            "5dfd181e69aa587cc812eb333e6536b6"
        );
    }

    #[test]
    fn digests_are_compared_whole() {
        let d = digest("abc", 1);
        assert!(same_digest(&d, &d));
        let mut other = d;
        other[15] ^= 1;
        assert!(!same_digest(&other, &d));
        assert!(!same_digest(&d[..15], &d));
    }
}
