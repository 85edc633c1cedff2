//! Operator tools that work on a node's folder: backup, restore, the
//! restore marker that keeps a restored validator from voting, doctor, and
//! repair of a block log damaged in the middle, and the governance
//! commands (propose, sign, submit a membership change).
//!
//! Not here: anything the running node does for itself (the store's own
//! recovery at start is in [`crate::store`]). These functions read a live
//! node's files without writing them, or write a folder no node uses yet.

pub mod backup;
pub mod commands;
pub mod doctor;
pub mod governance;
pub mod manifest;
pub mod repair;
pub mod restore;
pub mod restored;

/// The wall clock, unix milliseconds (informational fields only).
fn now_ms() -> u64 {
    crate::clock::unix_ms()
}
