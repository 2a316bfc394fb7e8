//! Fuzzes a distribution connection's frame reader, as a peer that has
//! completed the handshake could feed it: any bytes, read as
//! length-prefixed frames (whole messages, fragments, the atom cache
//! header, control messages and payloads).
//!
//! Whatever the input, reading must return (never panic, never hang, never
//! allocate beyond the limits the reader is given).

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = ergo::dist::fuzzing::read_frames(data);
});
