//! serde support (in progress).
