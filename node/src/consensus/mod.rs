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
pub mod solo;

use lotline_core::attestation::Envelope;
use lotline_core::block::{Block, BlockHash};
use lotline_core::certificate::Certificate;
use lotline_core::vote::Vote;

/// What drives an engine.
#[derive(Clone, Debug)]
pub enum Input {
    /// The actor offers the mempool's next attestations for the leader's
    /// proposal in the current view, with the actor's clock reading.
    Propose { attestations: Vec<Envelope>, now_ms: u64 },
    /// A signed message from validator `from` (multi-validator engines).
    Message { from: u16, message: Message },
    /// The timer for `view` fired (multi-validator engines).
    Timer { view: u64 },
    /// The actor's verdict on a proposal's payload (multi-validator engines).
    Verified { view: u64, block: BlockHash, valid: bool },
}

/// What an engine asks the actor to do, in order.
#[derive(Clone, Debug)]
pub enum Output {
    /// Make this own vote durable before any later send.
    Journal(Vote),
    /// Send to every other validator.
    Broadcast(Message),
    /// Fire `Input::Timer { view }` after `after_ms`.
    SetTimer { view: u64, after_ms: u64 },
    /// `block` is finalized by `certificate`: persist it and tell clients.
    Commit { block: Block, certificate: Certificate },
}

/// Messages between validators.
#[derive(Clone, Debug)]
pub enum Message {
    Proposal(Block),
    Vote(Vote),
}
