//! Consensus: deciding which block comes next, as a pure state machine.
//!
//! An engine is driven by `handle(input) -> Vec<Output>` and does no I/O: it
//! reads no clock (time arrives in inputs), draws no randomness and iterates
//! no hash map. The actor ([`actor`]) is the only part that touches disk,
//! network or time, and it carries out outputs in a fixed order:
//!
//! 1. every `Journal` output of a step is appended to the vote journal, then
//!    one fdatasync;
//! 2. only then `Broadcast`/`Send` (a vote never leaves before it is durable);
//! 3. `Commit`: block + certificate to the block log (fdatasync), then sled,
//!    then waiting clients.
//!
//! This issue ships the single-validator engine ([`solo`]): with n = 1 the
//! quorum is 1, so the leader's own `notarize` and `finalize` votes are the
//! certificates. The multi-validator Simplex engine implements the same
//! `Input`/`Output` boundary (messages from peers, timers, proposal
//! verification verdicts) and replaces `solo` when the genesis has n > 1.

pub mod actor;
pub mod bft;
pub mod commit;
pub mod evidence;
pub mod solo;

pub use lotline_consensus::{Input, Message, Output};
