//! The Erps packet: the wire format of Elixir's Erps RPC protocol.
//!
//! This is the format of `Erps.Packet` in Erps 0.7.0 (the 0.5 series writes
//! the same bytes). Every packet but the keepalive is a 96-byte header and a
//! payload:
//!
//! ```text
//! offset  0    4              8      9         12           48         64          96
//!         | "erps" | payload size | type | version | identifier | HMAC key | signature | payload …
//!         |  4 B   | 32-bit BE    | 1 B  | 3 B     | 36 B       | 16 B     | 32 B      | size B
//! ```
//!
//! - the type byte is 1 error, 2 reply, 3 push, 4 call, 8 cast
//!   ([`PacketType`]);
//! - the version is the client API's `major.minor.patch`, one byte each;
//! - the identifier names the API; it is zero-padded to 36 bytes and its
//!   trailing zero bytes are trimmed when read;
//! - the payload is `term_to_binary(Payload)`: `{Ref, Request}` for a call
//!   (`Ref` is the client's `:erlang.phash2(From)`), `{Reply, Ref}` for a
//!   reply, `{Error, Ref}` for a failed call or any term for another error,
//!   and the bare term for a cast or a push.
//!
//! A keepalive is exactly `"erps"` and five zero bytes ([`KEEPALIVE`]).
//!
//! # Checks on receipt
//!
//! As `Erps.Packet.decode/2` does, [`decode`] and [`PacketReader`] refuse a
//! packet whose identifier differs from [`DecodeOptions::identifier`]
//! ("wrong identifier"), whose version does not meet
//! [`DecodeOptions::version_req`] ("incompatible version"), or which carries
//! a non-zero HMAC key or signature when no verification is configured
//! ("authentication provided"); payloads are decoded in safe mode by
//! default. An Erps server answers the first three with an error packet
//! carrying the reason as a binary ([`Packet::refusal`],
//! [`ErpsError::refusal`]) and closes the connection on the others.
//!
//! # Signed packets (an ergo extension)
//!
//! Erps reserves the HMAC key and signature fields but raises "not
//! implemented" when asked to sign or verify. Between ergo peers a packet
//! may be signed with [`EncodeOptions::sign`]: the key field then holds the
//! 16-byte id of a shared secret ([`HmacKey`]) and the signature field the
//! HMAC-SHA256, under that secret, of the whole packet (magic to payload)
//! with the signature field zeroed. [`DecodeOptions::verify`] (for instance
//! a [`Keyring`]'s verifier) checks it. Erps itself refuses such packets
//! with "authentication provided".
//!
//! # Examples
//!
//! ```
//! use ergo::erps::packet::{self, DecodeOptions, Packet, PacketReader, VersionReq};
//! use ergo::etf::Term;
//!
//! let call = Packet::call(Term::Int(1234), Term::atom("ping"))
//!     .with_identifier("my_api")
//!     .with_version((0, 2, 4));
//! let bytes = packet::encode(&call);
//! assert_eq!(&bytes[..4], b"erps");
//!
//! let options = DecodeOptions::default()
//!     .with_identifier("my_api")
//!     .with_version_req(VersionReq::parse("~> 0.2").unwrap());
//! let mut reader = PacketReader::with_options(1 << 20, options);
//! reader.feed(&bytes[..50]);
//! assert_eq!(reader.next_packet().unwrap(), None); // needs more bytes
//! reader.feed(&bytes[50..]);
//! assert_eq!(reader.next_packet().unwrap(), Some(call));
//! ```

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use ergo_etf::{DecodeError, Term};

/// The four bytes every packet starts with.
pub const MAGIC: [u8; 4] = *b"erps";

/// A keepalive packet: the magic and five zero bytes.
pub const KEEPALIVE: [u8; 9] = *b"erps\0\0\0\0\0";

/// The length of a packet before its payload (every packet but the
/// keepalive).
pub const HEADER_LEN: usize = 96;

/// The length of the identifier field; shorter identifiers are
/// zero-padded.
pub const IDENTIFIER_LEN: usize = 36;

/// The largest packet a [`PacketReader`] accepts by default (16 MiB).
pub const DEFAULT_MAX_PACKET_SIZE: usize = 16 << 20;

const SIZE_AT: usize = 4;
const TYPE_AT: usize = 8;
const VERSION_AT: usize = 9;
const IDENTIFIER_AT: usize = 12;
const KEY_AT: usize = 48;
const SIGNATURE_AT: usize = 64;

/// The bytes that tell a packet's length: magic, size and type.
const PROBE_LEN: usize = 9;

/// The all-zero HMAC key field: no key.
const NO_KEY: [u8; 16] = [0; 16];
/// The all-zero signature field: not signed.
const NO_SIGNATURE: [u8; 32] = [0; 32];

// ------------------------------------------------------------------ types

/// What a packet is, with its type byte on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum PacketType {
    /// 0: keeps the connection open; carries nothing.
    Keepalive = 0,
    /// 1: a server's error: `{Error, Ref}` for a failed call, or any term
    /// (Erps sends the binary reason for a packet it refused).
    Error = 1,
    /// 2: a server's reply to a call: `{Reply, Ref}`.
    Reply = 2,
    /// 3: a message the server pushes to its clients: any term.
    Push = 3,
    /// 4: a client's call: `{Ref, Request}`.
    Call = 4,
    /// 8: a client's cast: the request term.
    Cast = 8,
}

impl PacketType {
    /// Every type, in type-byte order.
    pub const ALL: [PacketType; 6] = [
        PacketType::Keepalive,
        PacketType::Error,
        PacketType::Reply,
        PacketType::Push,
        PacketType::Call,
        PacketType::Cast,
    ];

    /// The type byte.
    pub const fn code(self) -> u8 {
        self as u8
    }

    /// The type with this type byte, if any.
    pub const fn from_code(code: u8) -> Option<PacketType> {
        Some(match code {
            0 => PacketType::Keepalive,
            1 => PacketType::Error,
            2 => PacketType::Reply,
            3 => PacketType::Push,
            4 => PacketType::Call,
            8 => PacketType::Cast,
            _ => return None,
        })
    }

    /// The type's name, as Erps' atom spells it (`call`, `keepalive` …).
    pub const fn name(self) -> &'static str {
        match self {
            PacketType::Keepalive => "keepalive",
            PacketType::Error => "error",
            PacketType::Reply => "reply",
            PacketType::Push => "push",
            PacketType::Call => "call",
            PacketType::Cast => "cast",
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One Erps packet, as `%Erps.Packet{}` holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// What the packet is.
    pub kind: PacketType,
    /// The API version, `(major, minor, patch)`.
    pub version: (u8, u8, u8),
    /// The API identifier, at most [`IDENTIFIER_LEN`] bytes. Trailing NUL
    /// characters do not survive the trip (the wire pads with zeros); bytes
    /// that are not UTF-8 are read with replacement characters.
    pub identifier: String,
    /// The HMAC key field: zero when the packet is not signed, else the id
    /// of the signing key.
    pub hmac_key: [u8; 16],
    /// The signature field. Read from the wire; [`encode`] writes zeros
    /// here, as Erps does, unless it signs ([`EncodeOptions::sign`]).
    pub signature: [u8; 32],
    /// The payload.
    pub payload: Term,
}

impl Packet {
    /// A packet of this type and payload, with Erps' defaults for the rest:
    /// version 0.0.0, no identifier, no key, no signature.
    pub fn new(kind: PacketType, payload: Term) -> Packet {
        Packet {
            kind,
            version: (0, 0, 0),
            identifier: String::new(),
            hmac_key: NO_KEY,
            signature: NO_SIGNATURE,
            payload,
        }
    }

    /// A keepalive (its payload is Elixir's `nil`, as in `%Erps.Packet{}`).
    pub fn keepalive() -> Packet {
        Packet::new(PacketType::Keepalive, Term::atom("nil"))
    }

    /// A call: payload `{Ref, Request}`. Erps clients use
    /// `:erlang.phash2(From)` as `Ref`; the server echoes it in the reply.
    pub fn call(reference: Term, request: Term) -> Packet {
        Packet::new(PacketType::Call, Term::tuple([reference, request]))
    }

    /// A cast: payload the bare request.
    pub fn cast(request: Term) -> Packet {
        Packet::new(PacketType::Cast, request)
    }

    /// A push from the server: payload the bare message.
    pub fn push(message: Term) -> Packet {
        Packet::new(PacketType::Push, message)
    }

    /// A reply to the call `reference`: payload `{Reply, Ref}`.
    pub fn reply(reply: Term, reference: Term) -> Packet {
        Packet::new(PacketType::Reply, Term::tuple([reply, reference]))
    }

    /// A failed call `reference`: payload `{Error, Ref}`; an Erps client
    /// answers the caller with `{:error, Error}`.
    pub fn call_error(error: Term, reference: Term) -> Packet {
        Packet::new(PacketType::Error, Term::tuple([error, reference]))
    }

    /// An error packet with any payload (an Erps client logs it).
    pub fn error(payload: Term) -> Packet {
        Packet::new(PacketType::Error, payload)
    }

    /// What an Erps server sends back when it refuses a packet with the
    /// string `reason` ("wrong identifier", "incompatible version",
    /// "authentication provided"): `Packet.encode(%Packet{type: :error,
    /// payload: reason})`, an error packet with default header fields and
    /// the reason as a binary.
    pub fn refusal(reason: &str) -> Packet {
        Packet::error(Term::binary(reason))
    }

    /// This packet with the identifier `identifier`.
    pub fn with_identifier(mut self, identifier: impl Into<String>) -> Packet {
        self.identifier = identifier.into();
        self
    }

    /// This packet with the version `version`.
    pub fn with_version(mut self, version: (u8, u8, u8)) -> Packet {
        self.version = version;
        self
    }

    /// This packet with the HMAC key field `key`.
    pub fn with_hmac_key(mut self, key: [u8; 16]) -> Packet {
        self.hmac_key = key;
        self
    }

    /// `true` when the key or signature field is not zero.
    pub fn has_authentication(&self) -> bool {
        self.hmac_key != NO_KEY || self.signature != NO_SIGNATURE
    }

    /// A call's `(Ref, Request)`; `None` for another type or shape.
    pub fn as_call(&self) -> Option<(&Term, &Term)> {
        match (self.kind, self.payload.as_tuple()) {
            (PacketType::Call, Some([reference, request])) => Some((reference, request)),
            _ => None,
        }
    }

    /// A reply's or failed call's `(Reply or Error, Ref)`; `None` for
    /// another type or shape.
    pub fn as_reply(&self) -> Option<(&Term, &Term)> {
        match (self.kind, self.payload.as_tuple()) {
            (PacketType::Reply | PacketType::Error, Some([reply, reference])) => {
                Some((reply, reference))
            }
            _ => None,
        }
    }
}

// ------------------------------------------------------------------ errors

/// Why a packet could not be encoded, read or accepted.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ErpsError {
    /// The stream does not start with `"erps"` (the bytes found, up to 4).
    BadMagic(Vec<u8>),
    /// The packet is larger than the reader accepts.
    Oversized {
        /// The packet's length in bytes, header included.
        size: u64,
        /// The largest length accepted.
        max: usize,
    },
    /// The type byte is none of [`PacketType`]'s.
    UnknownType(u8),
    /// The stream ended inside a packet.
    Truncated {
        /// How many bytes of the packet arrived.
        buffered: usize,
        /// The packet's length, when the header got that far.
        expected: Option<u64>,
    },
    /// The identifier is not the one required (Erps: "wrong identifier").
    WrongIdentifier {
        /// The identifier required.
        expected: String,
        /// The identifier found.
        found: String,
    },
    /// The version does not meet the requirement (Erps: "incompatible
    /// version").
    IncompatibleVersion {
        /// The packet's version.
        version: (u8, u8, u8),
        /// The requirement, printed.
        required: String,
    },
    /// The packet carries an HMAC key or signature, and no verification is
    /// configured (Erps: "authentication provided").
    AuthenticationProvided,
    /// The verification refused the packet's signature.
    BadSignature,
    /// The payload is not a valid term, or (in safe mode) names an atom
    /// that does not exist.
    BadPayload(DecodeError),
    /// Safe mode: the payload holds a fun or a port, which Erps'
    /// `Plug.Crypto.non_executable_binary_to_term/2` refuses.
    ExecutablePayload(&'static str),
    /// Bytes follow the packet given to [`decode`].
    TrailingBytes(usize),
    /// Encoding: the identifier is longer than [`IDENTIFIER_LEN`] bytes.
    IdentifierTooLong(usize),
    /// Encoding: the payload does not fit the 32-bit size field.
    PayloadTooLarge(usize),
}

impl ErpsError {
    /// `true` when the byte stream cannot be read further: the bytes no
    /// longer line up with packets (bad magic, unknown type, oversized) or
    /// the stream ended mid-packet. After the other errors the refused
    /// packet has been consumed and reading may go on.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ErpsError::BadMagic(_)
                | ErpsError::Oversized { .. }
                | ErpsError::UnknownType(_)
                | ErpsError::Truncated { .. }
        )
    }

    /// The reason string Erps gives for this refusal ("wrong identifier",
    /// "incompatible version", "authentication provided"), or for the
    /// ergo-only [`ErpsError::BadSignature`], "bad signature". `None` for
    /// the errors on which an Erps server drops the connection.
    pub fn erps_reason(&self) -> Option<&'static str> {
        match self {
            ErpsError::WrongIdentifier { .. } => Some("wrong identifier"),
            ErpsError::IncompatibleVersion { .. } => Some("incompatible version"),
            ErpsError::AuthenticationProvided => Some("authentication provided"),
            ErpsError::BadSignature => Some("bad signature"),
            _ => None,
        }
    }

    /// The error packet an Erps server sends back for this refusal
    /// ([`Packet::refusal`] with [`ErpsError::erps_reason`]); `None` when
    /// an Erps server would close the connection instead.
    pub fn refusal(&self) -> Option<Packet> {
        self.erps_reason().map(Packet::refusal)
    }
}

impl fmt::Display for ErpsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ErpsError::BadMagic(found) => {
                write!(f, "bad magic: expected \"erps\", found 0x")?;
                for b in found {
                    write!(f, "{b:02x}")?;
                }
                Ok(())
            }
            ErpsError::Oversized { size, max } => {
                write!(
                    f,
                    "oversized packet: {size} bytes, over the maximum of {max}"
                )
            }
            ErpsError::UnknownType(code) => write!(f, "unknown packet type code {code}"),
            ErpsError::Truncated {
                buffered,
                expected: Some(n),
            } => write!(
                f,
                "truncated packet: the stream ended after {buffered} of its {n} bytes"
            ),
            ErpsError::Truncated {
                buffered,
                expected: None,
            } => write!(
                f,
                "truncated packet: the stream ended after {buffered} bytes of a header"
            ),
            ErpsError::WrongIdentifier { expected, found } => write!(
                f,
                "wrong identifier: expected \"{}\", found \"{}\"",
                expected.escape_debug(),
                found.escape_debug()
            ),
            ErpsError::IncompatibleVersion {
                version: (a, b, c),
                required,
            } => write!(
                f,
                "incompatible version: {a}.{b}.{c} does not match {required}"
            ),
            ErpsError::AuthenticationProvided => f.write_str(
                "authentication provided: the packet has an HMAC key or signature \
                 and no verification is configured",
            ),
            ErpsError::BadSignature => f.write_str("bad signature: HMAC verification failed"),
            ErpsError::BadPayload(e) => write!(f, "payload decode failure: {e}"),
            ErpsError::ExecutablePayload(what) => write!(
                f,
                "payload decode failure: {what} is not safe for deserialization"
            ),
            ErpsError::TrailingBytes(n) => write!(f, "{n} bytes after the packet"),
            ErpsError::IdentifierTooLong(n) => write!(
                f,
                "identifier of {n} bytes, longer than the {IDENTIFIER_LEN} the packet holds"
            ),
            ErpsError::PayloadTooLarge(n) => write!(
                f,
                "payload of {n} bytes, too large for the 32-bit size field"
            ),
        }
    }
}

impl std::error::Error for ErpsError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ErpsError::BadPayload(e) => Some(e),
            _ => None,
        }
    }
}

// ------------------------------------------------------------------ HMAC

/// A shared secret for signing packets, with the 16-byte id written in the
/// key field (an ergo extension: Erps does not sign).
#[derive(Clone)]
pub struct HmacKey {
    id: [u8; 16],
    key: ring::hmac::Key,
}

impl HmacKey {
    /// The secret `secret` under the id `id`. An all-zero id reads as "no
    /// key" to Erps; give keys other ids.
    pub fn new(id: [u8; 16], secret: impl AsRef<[u8]>) -> HmacKey {
        HmacKey {
            id,
            key: ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_ref()),
        }
    }

    /// The key's id.
    pub fn id(&self) -> [u8; 16] {
        self.id
    }

    /// HMAC-SHA256 of `signed_bytes` (a packet with its signature field
    /// zeroed) under this secret.
    pub fn sign(&self, signed_bytes: &[u8]) -> [u8; 32] {
        let tag = ring::hmac::sign(&self.key, signed_bytes);
        let mut out = [0; 32];
        out.copy_from_slice(tag.as_ref());
        out
    }

    /// `true` when `signature` is this secret's HMAC of `signed_bytes`
    /// (compared in constant time).
    pub fn verify(&self, signed_bytes: &[u8], signature: &[u8; 32]) -> bool {
        ring::hmac::verify(&self.key, signed_bytes, signature).is_ok()
    }
}

impl fmt::Debug for HmacKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Checks a packet's signature: given the packet with its signature field
/// zeroed, the HMAC key field and the signature field, `true` accepts it.
pub type Verifier = Arc<dyn Fn(&[u8], &[u8; 16], &[u8; 32]) -> bool + Send + Sync>;

/// Shared secrets by key id, to verify signed packets.
#[derive(Clone, Default)]
pub struct Keyring {
    keys: HashMap<[u8; 16], HmacKey>,
}

impl Keyring {
    /// An empty keyring (its verifier refuses every packet).
    pub fn new() -> Keyring {
        Keyring::default()
    }

    /// Adds `key`, replacing a key with the same id.
    pub fn insert(&mut self, key: HmacKey) {
        self.keys.insert(key.id, key);
    }

    /// This keyring with `key` added.
    pub fn with(mut self, key: HmacKey) -> Keyring {
        self.insert(key);
        self
    }

    /// The key with id `id`.
    pub fn get(&self, id: &[u8; 16]) -> Option<&HmacKey> {
        self.keys.get(id)
    }

    /// A verifier accepting packets signed with one of these keys (an
    /// unknown key id, the zero one included, is refused).
    pub fn verifier(&self) -> Verifier {
        let keys = self.keys.clone();
        Arc::new(move |signed, id, signature| {
            keys.get(id)
                .is_some_and(|key| key.verify(signed, signature))
        })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_set().entries(self.keys.keys()).finish()
    }
}

// ------------------------------------------------------------------ encoding

/// Settings for [`encode_with`].
#[derive(Debug, Clone, Default)]
pub struct EncodeOptions {
    /// Sign the packet with this key (an ergo extension): its id goes in
    /// the key field, replacing [`Packet::hmac_key`], and the signature in
    /// the signature field. Keepalives are never signed.
    pub sign: Option<HmacKey>,
    /// Compress the payload at this zlib level (0–9), as Erps' `compressed:`
    /// option does: `term_to_binary(Payload, [{compressed, Level},
    /// {minor_version, 2}])`. The compressed bytes come from a different
    /// zlib than Erlang's and may differ from Erps'; any reader decodes
    /// them.
    pub compressed: Option<u32>,
    /// Write atoms in UTF-8 (`term_to_binary` `minor_version` 2, the
    /// default from OTP 26 on) instead of Latin-1 where possible (OTP 25
    /// and earlier, the default here).
    pub utf8_atoms: bool,
}

/// Encodes `packet` as Erps' `Packet.encode/1` does, byte for byte for the
/// same payload (the payload as `term_to_binary/1` writes it on OTP 25:
/// see [`EncodeOptions::utf8_atoms`] for OTP 26 and later; maps are written
/// in their insertion order, so insert small maps' keys in term order to
/// match Erlang's bytes). A keepalive is [`KEEPALIVE`] whatever its other
/// fields; the signature field is written as zeros.
///
/// # Panics
///
/// When the identifier is longer than [`IDENTIFIER_LEN`] bytes (Erps raises
/// too) or the payload is 4 GiB or larger; [`encode_with`] returns these
/// as errors.
pub fn encode(packet: &Packet) -> Vec<u8> {
    match encode_with(packet, &EncodeOptions::default()) {
        Ok(bytes) => bytes,
        Err(e) => panic!("cannot encode an Erps packet: {e}"),
    }
}

/// Encodes `packet` with `options` (signing, compression, atom encoding).
pub fn encode_with(packet: &Packet, options: &EncodeOptions) -> Result<Vec<u8>, ErpsError> {
    if packet.kind == PacketType::Keepalive {
        return Ok(KEEPALIVE.to_vec());
    }
    let identifier = packet.identifier.as_bytes();
    if identifier.len() > IDENTIFIER_LEN {
        return Err(ErpsError::IdentifierTooLong(identifier.len()));
    }
    let mut etf = ergo_etf::EncodeOptions::new();
    if options.utf8_atoms {
        etf = etf.minor_version(2);
    }
    if let Some(level) = options.compressed {
        etf = etf.compressed(level).minor_version(2);
    }
    let payload = etf.encode(&packet.payload);
    let size =
        u32::try_from(payload.len()).map_err(|_| ErpsError::PayloadTooLarge(payload.len()))?;
    let hmac_key = options.sign.as_ref().map_or(packet.hmac_key, HmacKey::id);

    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&size.to_be_bytes());
    out.push(packet.kind.code());
    let (major, minor, patch) = packet.version;
    out.extend_from_slice(&[major, minor, patch]);
    out.extend_from_slice(identifier);
    out.resize(KEY_AT, 0);
    out.extend_from_slice(&hmac_key);
    out.extend_from_slice(&NO_SIGNATURE);
    out.extend_from_slice(&payload);
    if let Some(key) = &options.sign {
        let signature = key.sign(&out);
        out[SIGNATURE_AT..HEADER_LEN].copy_from_slice(&signature);
    }
    Ok(out)
}

// ------------------------------------------------------------------ decoding

/// A version requirement, as Erps' `versions:` option (an Elixir `Version`
/// requirement) checks a packet's version.
#[derive(Clone)]
pub enum VersionReq {
    /// Exactly this version (`"== 1.2.3"` or `"1.2.3"`).
    Exact(u8, u8, u8),
    /// Elixir's `~>`: with a patch, `~> M.m.p` is `>= M.m.p and <
    /// M.(m+1).0`; without, `~> M.m` is `>= M.m.0 and < (M+1).0.0`.
    Compatible {
        /// The major version.
        major: u8,
        /// The least minor version.
        minor: u8,
        /// The least patch version, which also pins the minor version.
        patch: Option<u8>,
    },
    /// Any test.
    Custom(Arc<dyn Fn((u8, u8, u8)) -> bool + Send + Sync>),
}

impl VersionReq {
    /// A requirement tested by `f`.
    pub fn custom(f: impl Fn((u8, u8, u8)) -> bool + Send + Sync + 'static) -> VersionReq {
        VersionReq::Custom(Arc::new(f))
    }

    /// Reads `"~> M.m"`, `"~> M.m.p"`, `"== M.m.p"` or `"M.m.p"` (parts
    /// 0–255, the range the packet holds); `None` for anything else.
    pub fn parse(s: &str) -> Option<VersionReq> {
        let s = s.trim();
        let parts = |v: &str| -> Option<Vec<u8>> {
            v.trim().split('.').map(|p| p.parse::<u8>().ok()).collect()
        };
        if let Some(rest) = s.strip_prefix("~>") {
            return match *parts(rest)?.as_slice() {
                [major, minor] => Some(VersionReq::Compatible {
                    major,
                    minor,
                    patch: None,
                }),
                [major, minor, patch] => Some(VersionReq::Compatible {
                    major,
                    minor,
                    patch: Some(patch),
                }),
                _ => None,
            };
        }
        match *parts(s.strip_prefix("==").unwrap_or(s))?.as_slice() {
            [a, b, c] => Some(VersionReq::Exact(a, b, c)),
            _ => None,
        }
    }

    /// `true` when `version` meets the requirement.
    pub fn matches(&self, version: (u8, u8, u8)) -> bool {
        let v = (version.0 as u16, version.1 as u16, version.2 as u16);
        match *self {
            VersionReq::Exact(a, b, c) => version == (a, b, c),
            VersionReq::Compatible {
                major,
                minor,
                patch: None,
            } => v >= (major as u16, minor as u16, 0) && v < (major as u16 + 1, 0, 0),
            VersionReq::Compatible {
                major,
                minor,
                patch: Some(patch),
            } => {
                v >= (major as u16, minor as u16, patch as u16)
                    && v < (major as u16, minor as u16 + 1, 0)
            }
            VersionReq::Custom(ref f) => f(version),
        }
    }
}

impl fmt::Display for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VersionReq::Exact(a, b, c) => write!(f, "== {a}.{b}.{c}"),
            VersionReq::Compatible {
                major,
                minor,
                patch: None,
            } => write!(f, "~> {major}.{minor}"),
            VersionReq::Compatible {
                major,
                minor,
                patch: Some(patch),
            } => write!(f, "~> {major}.{minor}.{patch}"),
            VersionReq::Custom(_) => f.write_str("a custom requirement"),
        }
    }
}

impl fmt::Debug for VersionReq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "VersionReq({self})")
    }
}

/// What a received packet must satisfy, as Erps' decode options.
#[derive(Clone)]
pub struct DecodeOptions {
    /// Refuse packets with another identifier ("wrong identifier").
    pub identifier: Option<String>,
    /// Refuse packets whose version does not meet this ("incompatible
    /// version").
    pub version_req: Option<VersionReq>,
    /// Decode payloads as `binary_to_term(B, [safe])` does, refusing atoms
    /// that do not exist yet, and refuse funs and ports as Erps'
    /// `Plug.Crypto.non_executable_binary_to_term/2` does. `true` by
    /// default, as in Erps.
    pub safe: bool,
    /// Check signatures with this (an ergo extension). Without it, a packet
    /// with a non-zero key or signature is refused ("authentication
    /// provided"), as Erps does; with it, every non-keepalive packet must
    /// pass it.
    pub verify: Option<Verifier>,
}

impl Default for DecodeOptions {
    fn default() -> Self {
        DecodeOptions {
            identifier: None,
            version_req: None,
            safe: true,
            verify: None,
        }
    }
}

impl DecodeOptions {
    /// These options requiring the identifier `identifier`.
    pub fn with_identifier(mut self, identifier: impl Into<String>) -> DecodeOptions {
        self.identifier = Some(identifier.into());
        self
    }

    /// These options requiring versions to meet `req`.
    pub fn with_version_req(mut self, req: VersionReq) -> DecodeOptions {
        self.version_req = Some(req);
        self
    }

    /// These options in safe mode or not.
    pub fn with_safe(mut self, safe: bool) -> DecodeOptions {
        self.safe = safe;
        self
    }

    /// These options verifying signatures with `verify`.
    pub fn with_verifier(mut self, verify: Verifier) -> DecodeOptions {
        self.verify = Some(verify);
        self
    }

    /// These options verifying signatures with the keys of `keyring`.
    pub fn with_keyring(self, keyring: &Keyring) -> DecodeOptions {
        self.with_verifier(keyring.verifier())
    }
}

impl fmt::Debug for DecodeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DecodeOptions")
            .field("identifier", &self.identifier)
            .field("version_req", &self.version_req)
            .field("safe", &self.safe)
            .field("verify", &self.verify.as_ref().map(|_| "<verifier>"))
            .finish()
    }
}

/// Decodes one whole packet, `bytes` holding nothing else, with the
/// checks of `options`.
pub fn decode(bytes: &[u8], options: &DecodeOptions) -> Result<Packet, ErpsError> {
    match frame_len(bytes, usize::MAX)? {
        Some(len) if bytes.len() >= len => {
            if bytes.len() > len {
                return Err(ErpsError::TrailingBytes(bytes.len() - len));
            }
            decode_frame(bytes, options)
        }
        expected => Err(ErpsError::Truncated {
            buffered: bytes.len(),
            expected: expected.map(|n| n as u64),
        }),
    }
}

/// The length of the packet starting `bytes`, once enough of its header
/// is there to tell (`None` before); checks the magic, the size against
/// `max` and the type byte as soon as they arrive.
fn frame_len(bytes: &[u8], max: usize) -> Result<Option<usize>, ErpsError> {
    let magic = &bytes[..bytes.len().min(MAGIC.len())];
    if magic != &MAGIC[..magic.len()] {
        return Err(ErpsError::BadMagic(magic.to_vec()));
    }
    let Some(size) = bytes.get(SIZE_AT..TYPE_AT) else {
        return Ok(None);
    };
    let size = u32::from_be_bytes([size[0], size[1], size[2], size[3]]);
    let full = HEADER_LEN as u64 + size as u64;
    let check = |len: u64| {
        if len > max as u64 {
            Err(ErpsError::Oversized { size: len, max })
        } else {
            Ok(())
        }
    };
    if size > 0 {
        check(full)?;
    }
    let Some(&code) = bytes.get(TYPE_AT) else {
        return Ok(None);
    };
    if PacketType::from_code(code).is_none() {
        return Err(ErpsError::UnknownType(code));
    }
    let len = if size == 0 && code == 0 {
        KEEPALIVE.len() as u64
    } else {
        full
    };
    check(len)?;
    // At most `max`, so it fits.
    Ok(Some(len as usize))
}

/// Decodes a whole packet whose framing `frame_len` has accepted.
fn decode_frame(frame: &[u8], options: &DecodeOptions) -> Result<Packet, ErpsError> {
    if frame.len() == KEEPALIVE.len() {
        return Ok(Packet::keepalive());
    }
    let field = |from: usize, to: usize| &frame[from..to];
    let kind =
        PacketType::from_code(frame[TYPE_AT]).ok_or(ErpsError::UnknownType(frame[TYPE_AT]))?;
    let version = (
        frame[VERSION_AT],
        frame[VERSION_AT + 1],
        frame[VERSION_AT + 2],
    );
    let raw_identifier = field(IDENTIFIER_AT, KEY_AT);
    let trimmed = match raw_identifier.iter().rposition(|&b| b != 0) {
        Some(last) => &raw_identifier[..=last],
        None => &[],
    };
    let mut hmac_key = NO_KEY;
    hmac_key.copy_from_slice(field(KEY_AT, SIGNATURE_AT));
    let mut signature = NO_SIGNATURE;
    signature.copy_from_slice(field(SIGNATURE_AT, HEADER_LEN));
    let identifier = String::from_utf8_lossy(trimmed).into_owned();

    // Erps' order: identifier, version, authentication, payload.
    if let Some(expected) = &options.identifier
        && expected.as_bytes() != trimmed
    {
        return Err(ErpsError::WrongIdentifier {
            expected: expected.clone(),
            found: identifier,
        });
    }
    if let Some(req) = &options.version_req
        && !req.matches(version)
    {
        return Err(ErpsError::IncompatibleVersion {
            version,
            required: req.to_string(),
        });
    }
    match &options.verify {
        Some(verify) => {
            let mut signed = frame.to_vec();
            signed[SIGNATURE_AT..HEADER_LEN].fill(0);
            if !verify(&signed, &hmac_key, &signature) {
                return Err(ErpsError::BadSignature);
            }
        }
        None if hmac_key != NO_KEY || signature != NO_SIGNATURE => {
            return Err(ErpsError::AuthenticationProvided);
        }
        None => {}
    }
    let payload = ergo_etf::DecodeOptions::new()
        .safe(options.safe)
        .decode(&frame[HEADER_LEN..])
        .map_err(ErpsError::BadPayload)?;
    if options.safe
        && let Some(what) = executable(&payload)
    {
        return Err(ErpsError::ExecutablePayload(what));
    }
    Ok(Packet {
        kind,
        version,
        identifier,
        hmac_key,
        signature,
        payload,
    })
}

/// The first fun or port inside `term`, as
/// `Plug.Crypto.non_executable_binary_to_term/2` refuses them.
fn executable(term: &Term) -> Option<&'static str> {
    let mut stack = vec![term];
    while let Some(t) = stack.pop() {
        match t {
            Term::Fun(_) => return Some("a fun"),
            Term::Port(_) => return Some("a port"),
            Term::Tuple(items) | Term::List(items) => stack.extend(items),
            Term::ImproperList(items, tail) => {
                stack.extend(items);
                stack.push(tail);
            }
            Term::Map(map) => {
                for (k, v) in map.iter() {
                    stack.push(k);
                    stack.push(v);
                }
            }
            _ => {}
        }
    }
    None
}

/// Reads packets from a byte stream, however it is cut into pieces.
///
/// [`feed`](PacketReader::feed) it what arrives, then take packets with
/// [`next_packet`](PacketReader::next_packet) until it returns `Ok(None)`
/// (more bytes needed); when the stream ends, drain it with
/// [`finish`](PacketReader::finish), which reports a packet cut short.
///
/// A packet refused by the [`DecodeOptions`] (wrong identifier, version,
/// authentication, payload) is consumed and reading goes on; a framing
/// error ([`ErpsError::is_fatal`]) is final: the reader returns it again
/// and drops further input. The size field is checked against the maximum
/// as soon as it arrives, before the payload is buffered.
///
/// # Examples
///
/// ```
/// use ergo::erps::packet::{self, ErpsError, Packet, PacketReader};
/// use ergo::etf::Term;
///
/// let bytes = packet::encode(&Packet::cast(Term::atom("hello")));
/// let mut reader = PacketReader::new(1024);
/// reader.feed(&bytes[..bytes.len() - 1]);
/// assert_eq!(reader.next_packet(), Ok(None));
/// assert!(matches!(reader.finish(), Err(ErpsError::Truncated { .. })));
/// ```
#[derive(Debug)]
pub struct PacketReader {
    buf: Vec<u8>,
    start: usize,
    max_packet_size: usize,
    options: DecodeOptions,
    failed: Option<ErpsError>,
}

impl Default for PacketReader {
    fn default() -> Self {
        PacketReader::new(DEFAULT_MAX_PACKET_SIZE)
    }
}

impl PacketReader {
    /// A reader of packets up to `max_packet_size` bytes (header included),
    /// with the default [`DecodeOptions`].
    pub fn new(max_packet_size: usize) -> PacketReader {
        PacketReader::with_options(max_packet_size, DecodeOptions::default())
    }

    /// A reader of packets up to `max_packet_size` bytes checked against
    /// `options`.
    pub fn with_options(max_packet_size: usize, options: DecodeOptions) -> PacketReader {
        PacketReader {
            buf: Vec::new(),
            start: 0,
            max_packet_size,
            options,
            failed: None,
        }
    }

    /// The options packets are checked against.
    pub fn options(&self) -> &DecodeOptions {
        &self.options
    }

    /// How many bytes are buffered, not yet taken as packets.
    pub fn buffered(&self) -> usize {
        self.buf.len() - self.start
    }

    /// The fatal error the reader stopped on, if any.
    pub fn error(&self) -> Option<&ErpsError> {
        self.failed.as_ref()
    }

    /// Adds bytes from the stream. The header of the packet being read is
    /// checked first: if it is bad or oversized, the reader fails and
    /// keeps none of `bytes`.
    pub fn feed(&mut self, mut bytes: &[u8]) {
        if self.failed.is_some() || bytes.is_empty() {
            return;
        }
        if self.start > 0 && (self.start == self.buf.len() || self.start >= self.buf.len() / 2) {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let pending = self.buffered();
        if pending < PROBE_LEN {
            let take = (PROBE_LEN - pending).min(bytes.len());
            self.buf.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            if let Err(e) = frame_len(&self.buf[self.start..], self.max_packet_size) {
                self.fail(e);
                return;
            }
        }
        self.buf.extend_from_slice(bytes);
    }

    /// The next complete packet: `Ok(None)` when more bytes are needed,
    /// `Err` for a packet refused (the reader goes on after it) or a stream
    /// that cannot be read further ([`ErpsError::is_fatal`]).
    pub fn next_packet(&mut self) -> Result<Option<Packet>, ErpsError> {
        if let Some(e) = &self.failed {
            return Err(e.clone());
        }
        let pending = &self.buf[self.start..];
        let len = match frame_len(pending, self.max_packet_size) {
            Ok(Some(len)) if pending.len() >= len => len,
            Ok(_) => return Ok(None),
            Err(e) => {
                self.fail(e.clone());
                return Err(e);
            }
        };
        let result = decode_frame(&pending[..len], &self.options);
        self.start += len;
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
        }
        result.map(Some)
    }

    /// At the end of the stream: the next packet still buffered, `Ok(None)`
    /// when none is left, or [`ErpsError::Truncated`] when the stream ended
    /// inside a packet.
    pub fn finish(&mut self) -> Result<Option<Packet>, ErpsError> {
        match self.next_packet()? {
            Some(packet) => Ok(Some(packet)),
            None if self.buffered() == 0 => Ok(None),
            None => {
                let pending = &self.buf[self.start..];
                let expected = frame_len(pending, self.max_packet_size)
                    .ok()
                    .flatten()
                    .map(|n| n as u64);
                let e = ErpsError::Truncated {
                    buffered: pending.len(),
                    expected,
                };
                self.fail(e.clone());
                Err(e)
            }
        }
    }

    fn fail(&mut self, e: ErpsError) {
        self.failed = Some(e);
        self.buf = Vec::new();
        self.start = 0;
    }
}

// ------------------------------------------------------------------ tests

#[cfg(test)]
mod tests {
    use super::*;
    use ergo_etf::{Atom, BigInt, Map, Pid};

    /// A packet laid out by hand from the format, not by `encode`.
    fn hand_built(
        code: u8,
        version: [u8; 3],
        identifier: &[u8],
        key: [u8; 16],
        signature: [u8; 32],
        payload: &[u8],
    ) -> Vec<u8> {
        let mut out = b"erps".to_vec();
        out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        out.push(code);
        out.extend_from_slice(&version);
        let mut id = [0u8; 36];
        id[..identifier.len()].copy_from_slice(identifier);
        out.extend_from_slice(&id);
        out.extend_from_slice(&key);
        out.extend_from_slice(&signature);
        out.extend_from_slice(payload);
        out
    }

    fn plain(code: u8, payload: &[u8]) -> Vec<u8> {
        hand_built(code, [1, 2, 3], b"calc", [0; 16], [0; 32], payload)
    }

    fn all_options() -> DecodeOptions {
        DecodeOptions::default()
    }

    /// `{12345, hello}` / `{[1,2,3], 12345}` / … as term_to_binary writes
    /// them on OTP 25.
    fn conformance_cases() -> Vec<(Packet, Vec<u8>)> {
        let hello = Term::atom("hello");
        let r = Term::Int(12345);
        // 98 = INTEGER_EXT, 100 = ATOM_EXT, 104 = SMALL_TUPLE_EXT,
        // 107 = STRING_EXT, 109 = BINARY_EXT, 97 = SMALL_INTEGER_EXT.
        let ref_bytes = [98, 0, 0, 0x30, 0x39];
        let mut call_payload = vec![131, 104, 2];
        call_payload.extend_from_slice(&ref_bytes);
        call_payload.extend_from_slice(&[100, 0, 5, b'h', b'e', b'l', b'l', b'o']);
        let mut reply_payload = vec![131, 104, 2, 107, 0, 3, 1, 2, 3];
        reply_payload.extend_from_slice(&ref_bytes);
        let mut error_payload = vec![131, 104, 2, 109, 0, 0, 0, 4, b'o', b'o', b'p', b's'];
        error_payload.extend_from_slice(&ref_bytes);
        let push_payload = vec![131, 100, 0, 5, b'h', b'e', b'l', b'l', b'o'];
        let cast_payload = vec![131, 109, 0, 0, 0, 3, b'a', b'b', b'c'];
        let with = |p: Packet| p.with_identifier("calc").with_version((1, 2, 3));
        vec![
            (
                with(Packet::call(r.clone(), hello.clone())),
                plain(4, &call_payload),
            ),
            (
                with(Packet::reply(
                    Term::list([Term::Int(1), Term::Int(2), Term::Int(3)]),
                    r.clone(),
                )),
                plain(2, &reply_payload),
            ),
            (
                with(Packet::call_error(Term::binary("oops"), r.clone())),
                plain(1, &error_payload),
            ),
            (with(Packet::push(hello.clone())), plain(3, &push_payload)),
            (
                with(Packet::cast(Term::binary("abc"))),
                plain(8, &cast_payload),
            ),
        ]
    }

    #[test]
    fn each_packet_type_matches_the_layout() {
        let cases = conformance_cases();
        let kinds: Vec<_> = cases.iter().map(|(p, _)| p.kind).collect();
        for kind in PacketType::ALL {
            assert!(kind == PacketType::Keepalive || kinds.contains(&kind));
        }
        for (packet, bytes) in cases {
            assert_eq!(encode(&packet), bytes, "{} encodes", packet.kind);
            assert_eq!(bytes[TYPE_AT], packet.kind.code());
            assert_eq!(
                decode(&bytes, &all_options()).as_ref(),
                Ok(&packet),
                "{} decodes",
                packet.kind
            );
            let mut reader = PacketReader::new(1024);
            reader.feed(&bytes);
            assert_eq!(reader.next_packet(), Ok(Some(packet)));
            assert_eq!(reader.next_packet(), Ok(None));
            assert_eq!(reader.finish(), Ok(None));
        }
    }

    #[test]
    fn keepalive_is_magic_and_five_zeros() {
        let bytes = b"erps\x00\x00\x00\x00\x00";
        assert_eq!(encode(&Packet::keepalive()), bytes);
        // Whatever its other fields, as Erps.
        let odd = Packet::keepalive()
            .with_identifier("x")
            .with_version((9, 9, 9));
        assert_eq!(encode(&odd), bytes);
        assert_eq!(decode(bytes, &all_options()), Ok(Packet::keepalive()));
        // Keepalives skip the checks, as in Erps.
        let strict = DecodeOptions::default()
            .with_identifier("api")
            .with_version_req(VersionReq::Exact(1, 0, 0))
            .with_keyring(&Keyring::new());
        let mut reader = PacketReader::with_options(64, strict);
        reader.feed(&[bytes.as_slice(), bytes].concat());
        assert_eq!(reader.next_packet(), Ok(Some(Packet::keepalive())));
        assert_eq!(reader.next_packet(), Ok(Some(Packet::keepalive())));
        assert_eq!(reader.next_packet(), Ok(None));
    }

    #[test]
    fn empty_payload_with_a_type_is_a_full_header() {
        // Size 0 and a non-zero type: 96 bytes of header, then an empty
        // payload, which is not a term.
        let bytes = plain(8, &[]);
        let mut reader = PacketReader::new(1024);
        reader.feed(&bytes[..9]);
        assert_eq!(reader.next_packet(), Ok(None));
        reader.feed(&bytes[9..]);
        assert!(matches!(
            reader.next_packet(),
            Err(ErpsError::BadPayload(_))
        ));
    }

    #[test]
    fn a_stream_cut_anywhere_needs_more_then_is_truncated() {
        let mut streams: Vec<Vec<u8>> = conformance_cases().into_iter().map(|(_, b)| b).collect();
        streams.push(KEEPALIVE.to_vec());
        for bytes in streams {
            for cut in 0..bytes.len() {
                let mut reader = PacketReader::new(1024);
                reader.feed(&bytes[..cut]);
                assert_eq!(reader.next_packet(), Ok(None), "cut at {cut}");
                assert_eq!(reader.buffered(), cut);
                let end = reader.finish();
                if cut == 0 {
                    assert_eq!(end, Ok(None));
                } else {
                    match end {
                        Err(e @ ErpsError::Truncated { buffered, expected }) => {
                            assert_eq!(buffered, cut);
                            assert!(e.is_fatal());
                            if cut >= 9 {
                                assert_eq!(expected, Some(bytes.len() as u64));
                            }
                            assert!(e.to_string().starts_with("truncated packet"));
                        }
                        other => panic!("cut at {cut}: {other:?}"),
                    }
                }
                assert!(matches!(
                    decode(&bytes[..cut], &all_options()),
                    Err(ErpsError::Truncated { .. })
                ));
                // The rest arriving completes it.
                let mut reader = PacketReader::new(1024);
                reader.feed(&bytes[..cut]);
                assert_eq!(reader.next_packet(), Ok(None));
                reader.feed(&bytes[cut..]);
                assert!(reader.next_packet().unwrap().is_some());
                assert_eq!(reader.finish(), Ok(None));
            }
            // Byte by byte, with a second packet behind it.
            let mut reader = PacketReader::new(1024);
            let twice = [bytes.as_slice(), &bytes].concat();
            let mut got = 0;
            for b in &twice {
                reader.feed(std::slice::from_ref(b));
                while reader.next_packet().unwrap().is_some() {
                    got += 1;
                }
            }
            assert_eq!(got, 2);
            assert_eq!(reader.buffered(), 0);
        }
    }

    #[test]
    fn an_oversized_packet_is_refused_from_its_header() {
        let bytes = plain(8, &[131, 109, 0, 0, 0, 3, b'a', b'b', b'c']);
        let total = bytes.len(); // 96 + 9
        let mut reader = PacketReader::new(total - 1);
        // The size field alone is enough; nothing past it is kept.
        reader.feed(&bytes[..8]);
        let e = reader.next_packet().unwrap_err();
        assert_eq!(
            e,
            ErpsError::Oversized {
                size: total as u64,
                max: total - 1
            }
        );
        assert!(e.is_fatal());
        assert!(e.to_string().contains(&format!("{total} bytes")));
        assert_eq!(reader.buffered(), 0);
        reader.feed(&bytes[8..]);
        assert_eq!(reader.buffered(), 0);
        assert_eq!(reader.next_packet(), Err(e.clone()));
        assert_eq!(reader.finish(), Err(e));

        // A declared 4 GiB payload in one big feed: refused, not buffered.
        let mut huge = bytes.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        let mut reader = PacketReader::new(1 << 20);
        reader.feed(&huge);
        assert_eq!(reader.buffered(), 0);
        assert!(matches!(
            reader.next_packet(),
            Err(ErpsError::Oversized { size, .. }) if size == u32::MAX as u64 + 96
        ));
        // Exactly the maximum is fine.
        let mut reader = PacketReader::new(total);
        reader.feed(&bytes);
        assert!(reader.next_packet().unwrap().is_some());
    }

    #[test]
    fn bad_magic_is_refused_at_the_first_wrong_byte() {
        let mut reader = PacketReader::new(1024);
        reader.feed(b"er");
        assert_eq!(reader.next_packet(), Ok(None));
        reader.feed(b"ms");
        let e = reader.next_packet().unwrap_err();
        assert_eq!(e, ErpsError::BadMagic(b"erms".to_vec()));
        assert!(e.is_fatal());
        assert_eq!(
            e.to_string(),
            "bad magic: expected \"erps\", found 0x65726d73"
        );
        // HTTP instead of Erps.
        let mut reader = PacketReader::new(1024);
        reader.feed(b"GET / HTTP/1.1\r\n\r\n");
        assert!(matches!(reader.next_packet(), Err(ErpsError::BadMagic(_))));
        assert_eq!(
            decode(b"x", &all_options()),
            Err(ErpsError::BadMagic(b"x".to_vec()))
        );
    }

    #[test]
    fn unknown_type_codes_are_refused() {
        for code in (0..=255u8).filter(|&c| PacketType::from_code(c).is_none()) {
            let bytes = plain(code, &[131, 106]);
            let mut reader = PacketReader::new(1024);
            reader.feed(&bytes[..9]);
            let e = reader.next_packet().unwrap_err();
            assert_eq!(e, ErpsError::UnknownType(code));
            assert!(e.is_fatal());
            assert_eq!(e.to_string(), format!("unknown packet type code {code}"));
        }
        for kind in PacketType::ALL {
            assert_eq!(PacketType::from_code(kind.code()), Some(kind));
        }
    }

    #[test]
    fn a_packet_for_another_api_is_refused_and_reading_goes_on() {
        let other = plain(8, &[131, 106]); // identifier "calc"
        let good = hand_built(8, [1, 2, 3], b"stats", [0; 16], [0; 32], &[131, 106]);
        let options = DecodeOptions::default().with_identifier("stats");
        let mut reader = PacketReader::with_options(1024, options.clone());
        reader.feed(&[other.as_slice(), &good].concat());
        let e = reader.next_packet().unwrap_err();
        assert_eq!(
            e,
            ErpsError::WrongIdentifier {
                expected: "stats".into(),
                found: "calc".into()
            }
        );
        assert!(!e.is_fatal());
        assert_eq!(e.erps_reason(), Some("wrong identifier"));
        assert!(e.to_string().starts_with("wrong identifier"));
        let p = reader.next_packet().unwrap().unwrap();
        assert_eq!(p.identifier, "stats");
        assert_eq!(p.payload, Term::NIL);
        // A full-length identifier has no padding to trim.
        let id36 = "abcdefghijklmnopqrstuvwxyz0123456789";
        let p = Packet::cast(Term::NIL).with_identifier(id36);
        let bytes = encode(&p);
        assert_eq!(&bytes[12..48], id36.as_bytes());
        assert_eq!(
            decode(&bytes, &DecodeOptions::default().with_identifier(id36)),
            Ok(p)
        );
        // One byte more cannot be encoded.
        let long = Packet::cast(Term::NIL).with_identifier(format!("{id36}x"));
        assert_eq!(
            encode_with(&long, &EncodeOptions::default()),
            Err(ErpsError::IdentifierTooLong(37))
        );
    }

    #[test]
    fn versions_are_checked_against_the_requirement() {
        let at = |v: (u8, u8, u8)| encode(&Packet::cast(Term::NIL).with_version(v));
        let req =
            |s: &str| DecodeOptions::default().with_version_req(VersionReq::parse(s).unwrap());
        let ok = |s: &str, v| decode(&at(v), &req(s)).is_ok();
        assert!(ok("~> 0.2", (0, 2, 0)));
        assert!(ok("~> 0.2", (0, 9, 1)));
        assert!(!ok("~> 0.2", (0, 1, 9)));
        assert!(!ok("~> 0.2", (1, 0, 0)));
        assert!(ok("~> 0.2.4", (0, 2, 4)));
        assert!(ok("~> 0.2.4", (0, 2, 200)));
        assert!(!ok("~> 0.2.4", (0, 2, 3)));
        assert!(!ok("~> 0.2.4", (0, 3, 0)));
        assert!(ok("== 1.2.3", (1, 2, 3)));
        assert!(ok("1.2.3", (1, 2, 3)));
        assert!(!ok("1.2.3", (1, 2, 4)));
        assert!(ok("~> 255.255.255", (255, 255, 255)));
        assert!(VersionReq::parse("~> 1").is_none());
        assert!(VersionReq::parse("1.2").is_none());
        assert!(VersionReq::parse(">= 1.2.3").is_none());
        assert!(VersionReq::parse("~> 1.256").is_none());

        let e = decode(&at((0, 1, 0)), &req("~> 0.2.4")).unwrap_err();
        assert_eq!(
            e,
            ErpsError::IncompatibleVersion {
                version: (0, 1, 0),
                required: "~> 0.2.4".into()
            }
        );
        assert_eq!(e.erps_reason(), Some("incompatible version"));
        assert!(!e.is_fatal());
        assert_eq!(
            e.to_string(),
            "incompatible version: 0.1.0 does not match ~> 0.2.4"
        );
        let odd_only = DecodeOptions::default()
            .with_version_req(VersionReq::custom(|(_, _, patch)| patch % 2 == 1));
        assert!(decode(&at((0, 0, 1)), &odd_only).is_ok());
        assert!(decode(&at((0, 0, 2)), &odd_only).is_err());
        // Identifier before version, as Erps checks them.
        let both = req("~> 9.0").with_identifier("nope");
        assert!(matches!(
            decode(&at((0, 0, 0)), &both),
            Err(ErpsError::WrongIdentifier { .. })
        ));
    }

    fn key(id: u8, secret: &str) -> HmacKey {
        HmacKey::new([id; 16], secret)
    }

    #[test]
    fn signed_packets_verify_with_the_shared_secret() {
        let k = key(7, "sesame");
        let signed = EncodeOptions {
            sign: Some(k.clone()),
            ..EncodeOptions::default()
        };
        let p = Packet::call(Term::Int(1), Term::atom("hello")).with_identifier("calc");
        let bytes = encode_with(&p, &signed).unwrap();
        assert_eq!(&bytes[48..64], &[7; 16]);
        // The signature is HMAC-SHA256 over the packet with it zeroed.
        let mut zeroed = bytes.clone();
        zeroed[64..96].fill(0);
        assert_eq!(&bytes[64..96], &k.sign(&zeroed));
        assert_eq!(zeroed, encode(&p.clone().with_hmac_key([7; 16])));

        let keyring = Keyring::new().with(key(1, "other")).with(k.clone());
        let options = DecodeOptions::default().with_keyring(&keyring);
        let got = decode(&bytes, &options).unwrap();
        assert_eq!(got.hmac_key, [7; 16]);
        assert_eq!(&got.signature[..], &bytes[64..96]);
        assert!(got.has_authentication());
        assert_eq!(got.payload, p.payload);

        // Any change to the bytes breaks it.
        for at in [4usize, 9, 20, 50, 70, bytes.len() - 1] {
            let mut bad = bytes.clone();
            bad[at] ^= 1;
            let r = decode(&bad, &options);
            if at == 4 {
                // The size no longer matches the bytes.
                assert!(r.is_err());
            } else {
                assert_eq!(r, Err(ErpsError::BadSignature), "flip at {at}");
            }
        }
        // The wrong secret, an unknown key id, no signature at all.
        let wrong = EncodeOptions {
            sign: Some(key(7, "guess")),
            ..EncodeOptions::default()
        };
        let e = decode(&encode_with(&p, &wrong).unwrap(), &options).unwrap_err();
        assert_eq!(e, ErpsError::BadSignature);
        assert!(!e.is_fatal());
        assert_eq!(e.to_string(), "bad signature: HMAC verification failed");
        let unknown = EncodeOptions {
            sign: Some(key(9, "sesame")),
            ..EncodeOptions::default()
        };
        assert_eq!(
            decode(&encode_with(&p, &unknown).unwrap(), &options),
            Err(ErpsError::BadSignature)
        );
        assert_eq!(decode(&encode(&p), &options), Err(ErpsError::BadSignature));
    }

    #[test]
    fn authentication_without_verification_is_refused_as_erps_does() {
        let payload = [131, 106];
        for (k, s) in [
            ([1u8; 16], [0u8; 32]),
            ([0; 16], [1; 32]),
            ([3; 16], [4; 32]),
        ] {
            let bytes = hand_built(4, [0, 0, 0], b"", k, s, &payload);
            let e = decode(&bytes, &all_options()).unwrap_err();
            assert_eq!(e, ErpsError::AuthenticationProvided);
            assert_eq!(e.erps_reason(), Some("authentication provided"));
            assert!(e.to_string().starts_with("authentication provided"));
        }
        // A packet we sign is refused by a reader that does not verify.
        let signed = EncodeOptions {
            sign: Some(key(2, "s")),
            ..EncodeOptions::default()
        };
        let bytes = encode_with(&Packet::cast(Term::NIL), &signed).unwrap();
        assert_eq!(
            decode(&bytes, &all_options()),
            Err(ErpsError::AuthenticationProvided)
        );
    }

    #[test]
    fn refusals_are_the_error_packets_erps_sends() {
        let e = ErpsError::AuthenticationProvided;
        let refusal = e.refusal().unwrap();
        assert_eq!(refusal, Packet::refusal("authentication provided"));
        // %Erps.Packet{type: :error, payload: "authentication provided"}
        let mut payload = vec![131, 109, 0, 0, 0, 23];
        payload.extend_from_slice(b"authentication provided");
        assert_eq!(
            encode(&refusal),
            hand_built(1, [0, 0, 0], b"", [0; 16], [0; 32], &payload)
        );
        assert_eq!(ErpsError::UnknownType(5).refusal(), None);
        assert_eq!(ErpsError::TrailingBytes(1).refusal(), None);
    }

    #[test]
    fn garbage_payloads_are_refused() {
        for garbage in [
            &[][..],
            &[131],
            &[130, 106],
            &[131, 255],
            &[131, 104, 2, 97],
            &[131, 109, 0, 0, 0, 9, 1],
            &[131, 106, 0],
            &[0xde, 0xad, 0xbe, 0xef],
        ] {
            let bytes = plain(8, garbage);
            let mut reader = PacketReader::new(1024);
            reader.feed(&bytes);
            reader.feed(&KEEPALIVE);
            let e = reader.next_packet().unwrap_err();
            assert!(matches!(e, ErpsError::BadPayload(_)), "{garbage:?}: {e:?}");
            assert!(!e.is_fatal());
            assert!(e.to_string().starts_with("payload decode failure"));
            assert!(std::error::Error::source(&e).is_some());
            assert_eq!(e.refusal(), None);
            // The stream is still in step.
            assert_eq!(reader.next_packet(), Ok(Some(Packet::keepalive())));
        }
        // Trailing bytes after a whole packet given to `decode`.
        let mut bytes = plain(8, &[131, 106]);
        bytes.push(0);
        assert_eq!(
            decode(&bytes, &all_options()),
            Err(ErpsError::TrailingBytes(1))
        );
    }

    #[test]
    fn safe_mode_refuses_unknown_atoms_and_funs() {
        let name = "erps_packet_test_atom_nobody_made_x7q";
        let mut payload = vec![131, 104, 2, 97, 1, 100, 0, name.len() as u8];
        payload.extend_from_slice(name.as_bytes());
        let bytes = plain(8, &payload);
        assert!(Atom::existing(name).is_none());
        let e = decode(&bytes, &all_options()).unwrap_err();
        match &e {
            ErpsError::BadPayload(d) => assert!(matches!(
                d.kind(),
                ergo_etf::DecodeErrorKind::UnknownAtom { name: n } if n == name
            )),
            other => panic!("{other:?}"),
        }
        assert!(Atom::existing(name).is_none());
        // Unsafe mode creates it, as binary_to_term/1 does.
        let p = decode(&bytes, &DecodeOptions::default().with_safe(false)).unwrap();
        assert_eq!(p.payload, Term::tuple([Term::Int(1), Term::atom(name)]));

        // An export fun `fun erlang:self/0` inside a list (its atoms exist).
        Atom::new("erlang");
        Atom::new("self");
        let mut fun = vec![131, 108, 0, 0, 0, 1, 113];
        fun.extend_from_slice(&[100, 0, 6]);
        fun.extend_from_slice(b"erlang");
        fun.extend_from_slice(&[100, 0, 4]);
        fun.extend_from_slice(b"self");
        fun.extend_from_slice(&[97, 0, 106]);
        let bytes = plain(8, &fun);
        assert_eq!(
            decode(&bytes, &all_options()),
            Err(ErpsError::ExecutablePayload("a fun"))
        );
        let p = decode(&bytes, &DecodeOptions::default().with_safe(false)).unwrap();
        assert!(matches!(&p.payload.as_list().unwrap()[0], Term::Fun(_)));
    }

    // ------------------------------------------------ random round trips

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            // xorshift64*
            self.0 ^= self.0 >> 12;
            self.0 ^= self.0 << 25;
            self.0 ^= self.0 >> 27;
            self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    fn random_term(rng: &mut Rng, depth: u32) -> Term {
        let leaf = depth == 0 || rng.below(3) == 0;
        match if leaf { rng.below(7) } else { 7 + rng.below(4) } {
            0 => Term::Int(rng.next() as i64 >> rng.below(64)),
            1 => Term::bigint(BigInt::from(rng.next()) * BigInt::from(rng.next()) + 1u8),
            2 => Term::Float((rng.next() >> 12) as f64 / 7.0 - 1e9),
            3 => Term::atom(
                ["ok", "error", "hello", "nil", "true", "ünïcode"][rng.below(6) as usize],
            ),
            4 => {
                let n = rng.below(40) as usize;
                Term::binary((0..n).map(|_| rng.next() as u8).collect::<Vec<_>>())
            }
            5 => Term::Pid(Pid::new(
                Atom::new("node@host"),
                rng.below(1 << 15) as u32,
                0,
                3,
            )),
            6 => Term::NIL,
            7 => Term::tuple(
                (0..rng.below(5))
                    .map(|_| random_term(rng, depth - 1))
                    .collect::<Vec<_>>(),
            ),
            8 => Term::list(
                (0..rng.below(5))
                    .map(|_| random_term(rng, depth - 1))
                    .collect::<Vec<_>>(),
            ),
            9 => {
                let mut m = Map::new();
                for _ in 0..rng.below(4) {
                    m.insert(random_term(rng, depth - 1), random_term(rng, depth - 1));
                }
                Term::Map(m)
            }
            _ => Term::list_with_tail(vec![random_term(rng, depth - 1)], Term::Int(1)),
        }
    }

    #[test]
    fn random_packets_round_trip_through_any_chunking() {
        let mut rng = Rng(0x00e7_5a11_cafe_f00d);
        let keyring = Keyring::new().with(key(5, "k"));
        for round in 0..300u32 {
            let kind = PacketType::ALL[rng.below(6) as usize];
            let payload = if kind == PacketType::Keepalive {
                Term::atom("nil")
            } else {
                random_term(&mut rng, 4)
            };
            let id_len = rng.below(37) as usize;
            let identifier: String = (0..id_len)
                .map(|_| (b'a' + rng.below(26) as u8) as char)
                .collect();
            let packet = Packet {
                kind,
                version: (rng.next() as u8, rng.next() as u8, rng.next() as u8),
                identifier,
                hmac_key: [0; 16],
                signature: [0; 32],
                payload,
            };
            let sign = round.is_multiple_of(3);
            let encode_options = EncodeOptions {
                sign: sign.then(|| key(5, "k")),
                compressed: round.is_multiple_of(5).then_some(6),
                utf8_atoms: round.is_multiple_of(2),
            };
            let bytes = encode_with(&packet, &encode_options).unwrap();
            let mut options = DecodeOptions::default().with_identifier(packet.identifier.clone());
            if sign {
                options = options.with_keyring(&keyring);
            }
            // Three copies, fed in random pieces.
            let stream = [bytes.as_slice(), &bytes, &bytes].concat();
            let mut reader = PacketReader::with_options(bytes.len(), options);
            let mut got = Vec::new();
            let mut at = 0;
            while at < stream.len() {
                let n = (1 + rng.below(bytes.len() as u64 + 8) as usize).min(stream.len() - at);
                reader.feed(&stream[at..at + n]);
                at += n;
                while let Some(p) = reader.next_packet().unwrap() {
                    got.push(p);
                }
            }
            assert_eq!(reader.finish(), Ok(None));
            assert_eq!(got.len(), 3, "round {round}");
            for mut p in got {
                if kind == PacketType::Keepalive {
                    assert_eq!(p, Packet::keepalive());
                    continue;
                }
                if sign {
                    assert_eq!(p.hmac_key, [5; 16]);
                    p.hmac_key = [0; 16];
                    p.signature = [0; 32];
                }
                assert_eq!(p, packet, "round {round}");
            }
        }
    }
}
