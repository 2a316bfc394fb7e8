//! The Erlang distribution protocol, one module per concern.

pub mod epmd;
pub mod handshake;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

/// A 32-bit number no other node can guess: the clock hashed with
/// std's per-process random keys (EPMD creations, handshake challenges).
pub(crate) fn random_u32() -> u32 {
    let mut h = RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish() as u32
}
