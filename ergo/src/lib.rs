//! ergo: an OTP framework for Rust whose nodes are first-class members of
//! Erlang and Elixir clusters.
//!
//! This crate re-exports what an application needs, so that it depends on
//! one crate. Today that is the external term format ([`etf`]) and
//! `#[derive(Term)]`; the process runtime, behaviours and distribution
//! follow.

pub use ergo_etf as etf;
pub use ergo_etf::{
    Atom, Bytes, Charlist, Decode, DecodeError, Encode, FromTerm, Map, Pid, Ref, Term, ToTerm,
    atom, decode, decode_as, encode,
};
pub use ergo_macros::Term;
