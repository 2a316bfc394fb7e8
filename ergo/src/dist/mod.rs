//! The Erlang distribution protocol, one module per concern.

pub mod epmd;
pub mod handshake;
