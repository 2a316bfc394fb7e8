//! The Erlang external term format (ETF), complete and hardened.
//!
//! `ergo-etf` reads and writes every term OTP 25 and later produce or accept,
//! byte for byte as `term_to_binary/1` and `binary_to_term/1` do, and
//! converts between terms and Rust types:
//!
//! - [`Term`] is the dynamic value (what `binary_to_term/1` returns), with
//!   Erlang's equality, term order and printed syntax.
//! - [`encode`] / [`decode`] turn any [`Encode`] value into bytes and bytes
//!   into a [`Term`]; [`decode_as`] decodes straight into a typed value.
//! - [`ToTerm`] / [`FromTerm`] convert typed values to and from [`Term`];
//!   `#[derive(Term)]` (from the `ergo-macros` crate, re-exported by `ergo`)
//!   generates all four traits for a struct or enum, with a direct byte
//!   encoder and decoder that never build a `Term`.
//! - [`mod@serde`] maps any `Serialize` / `Deserialize` type to terms.
//! - [`phash2()`] / [`phash2_range`] hash a term exactly as `erlang:phash2/1,2`
//!   do, for routing terms the way Erlang and Elixir code does.
//!
//! Decoding is safe for input from the network: it never panics, never
//! allocates more than the input justifies, bounds nesting, and in safe mode
//! ([`DecodeOptions::safe`]) refuses atoms that do not exist yet.
//!
//! # Examples
//!
//! ```
//! use ergo_etf::{decode, encode, Term};
//! let t = Term::tuple([Term::atom("ok"), Term::Int(42), Term::binary("hello")]);
//! let bytes = encode(&t);
//! assert_eq!(decode(&bytes).unwrap(), t);
//! assert_eq!(t.to_string(), r#"{ok,42,<<"hello">>}"#);
//! ```

// Lets `#[derive(Term)]` inside this crate name it `::ergo_etf`.
#[allow(unused_extern_crates)] // used only when the crate derives for itself
extern crate self as ergo_etf;

mod atom;
mod convert;
mod decode;
mod encode;
mod error;
mod phash2;
#[doc(hidden)]
pub mod __private {
    //! Support for generated code; not a public API.
    pub use crate::private::*;
}
mod private;
pub mod serde;
pub mod tags;
mod term;

pub use atom::{ATOM_LIMIT, Atom, AtomError, MAX_ATOM_CHARS};
pub use bytes::Bytes;
pub use convert::{Charlist, FromTerm, ToTerm, mismatch_within};
pub use decode::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_INFLATED, Decode, DecodeOptions, Decoder, ListHeader, decode,
    decode_as, decode_bytes,
};
pub use encode::{
    AtomCacheWriter, Encode, EncodeOptions, Encoder, encode, encode_into, encode_vectored,
};
pub use error::{ConvertError, DecodeError, DecodeErrorKind};
pub use num_bigint::BigInt;
pub use phash2::{PHASH2_RANGE, phash2, phash2_32, phash2_range};
pub use term::{BitBinary, Fun, LocalFun, Map, Pid, Port, Ref, Term};

/// Writes an atom with a constant name, interning it once per call site.
///
/// # Examples
///
/// ```
/// use ergo_etf::atom;
/// assert_eq!(atom!("ok").as_str(), "ok");
/// ```
#[macro_export]
macro_rules! atom {
    ($name:literal) => {{
        static ATOM: ::std::sync::OnceLock<$crate::Atom> = ::std::sync::OnceLock::new();
        *ATOM.get_or_init(|| $crate::Atom::new($name))
    }};
}
