//! Command-line pieces that `main.rs` assembles.

pub mod keys;
