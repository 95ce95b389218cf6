//! Guest components used by sandbox tests, compiled from source by the build.
//!
//! `SANDBOX_PROBE` is a hostile guest whose JSON payload chooses what it
//! attempts (spin, over-allocate, read files, open sockets, trap, ...).

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
