//! Orders blocks among n validators of whom f = (n - 1) / 3 may be
//! Byzantine, as a pure state machine: `handle(input) -> outputs`.
//!
//! Non-features, on purpose: no I/O, no clock reads (time arrives in
//! inputs), no randomness, no hash-map iteration in decisions. The node's
//! actor and the simulator drive the same engine.

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
