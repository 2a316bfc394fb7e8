//! Compile-fail and compile-pass cases for ergo's macros, run by trybuild
//! (`tests/ui.rs`). Refresh expected output with `TRYBUILD=overwrite`.
