//! The node's integration tests, as one test binary: a real store, the real
//! `lotline` binary as a process, real libp2p and HTTP.
//!
//! Each module is one area (its own doc comment says what it checks). One
//! binary instead of one per file: each links the whole node, and a copy per
//! file costs CI several GB of disk and a link each. `abuse_bounds` stays a
//! binary of its own: it holds thousands of sockets open from its process and
//! reads that process's memory, which other tests must not share.
//! Run one area with `cargo test -p lotline-node --test integration quality::`.

mod support;

mod analytics;
mod cli_export;
mod cli_operator;
mod cli_verify;
mod cli_verify_bundle;
mod crash_between_journal_and_send;
mod crash_recovery;
mod net_permissioned;
mod quality;
mod store_index;
