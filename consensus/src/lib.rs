//! Orders blocks among n validators of whom f = (n - 1) / 3 may be
//! Byzantine, as a pure state machine: `handle(input) -> outputs`.
//!
//! Non-features, on purpose: no I/O, no clock reads (time arrives in
//! inputs), no randomness, no hash-map iteration in decisions. The node's
//! actor and the simulator drive the same engine. The engine does not
//! validate attestations (it asks the actor, [`Output::Verify`]), does not
//! store anything (it asks the actor, [`Output::Journal`] and
//! [`Output::Commit`]) and does not talk to peers (it hands messages to the
//! actor, [`Output::Broadcast`] and [`Output::Send`]).
//!
//! # Protocol per view (Simplex, Chan & Pass 2023; see `shared/protocol.md`)
//!
//! Views start at 1 and `leader(v) = validators[v mod n]` in genesis order
//! ([`leader`]). In view `v`:
//!
//! 1. *Enter* `v` on a notarization or nullification of `v - 1`, or a
//!    finalization of `v - 1`; a certificate for any view `w >= v` jumps the
//!    engine to `w + 1`. The view starts *active* if the actor holds work
//!    ([`Input::Work`]), else *idle* (see "Idle views" below). An active
//!    view sets the leader timer and the view timer ([`TimerKind`]); its
//!    leader asks the actor for a payload ([`Output::Build`]). The leader
//!    timer is short
//!    ([`Config::suspect_timeout_ms`], a fortieth) when the leader of `v` is
//!    *suspected*: we left the last view it led without any sign that it
//!    proposed, and it has not proposed since ([`leader`] module). Leaving
//!    a view judges its leader; a sign of proposing (its proposal, its own
//!    `notarize`, a notarization of its view) clears it. Timers are local:
//!    validators that disagree about a suspect only wait differently long.
//! 2. *Propose* (leader): a block on the highest notarized parent `p` (view
//!    `v' < v`) such that every view in `(v', v)` is nullified, leaving out
//!    attestations that `p` or its uncommitted ancestors already carry.
//!    The [`Proposal`] carries the leader's own `notarize` vote (which
//!    authenticates it), the parent's header, the parent's certificate and
//!    the nullifications of the skipped views, so a voter never needs more
//!    than the proposal to check the parent rule.
//! 3. *Notarize*: the first valid proposal of `v` whose parent rule holds is
//!    sent to the actor ([`Output::Verify`]); on `Verified { valid: true }`
//!    the engine journals and broadcasts `notarize(v, h)`. Never twice in a
//!    view.
//! 4. On q = n - f `notarize(v, h)`: notarization; enter `v + 1`; if we did
//!    not nullify `v`, journal and broadcast `finalize(v, h)`.
//! 5. On a timer, an invalid payload, the leader's own `nullify` or `nullify`
//!    votes of f + 1 validators in our view: if we did
//!    not `finalize(v)`, journal and broadcast `nullify(v)`, then rebroadcast
//!    it with the certificate that let us enter `v` on every retry, and send
//!    both to a validator as soon as the transport (re)connects to it
//!    ([`Input::PeerConnected`], which also shows any peer our latest
//!    finalization).
//! 6. On q `nullify(v)`: nullification; enter `v + 1`.
//! 7. On q `finalize(v, h)`: `h` and its uncommitted ancestors are final and
//!    come out as [`Output::Commit`] in height order.
//!
//! # Idle views (no empty blocks when there is nothing to order)
//!
//! A chain under no load must not grow: a view entered while the actor
//! holds no work ([`Input::Work`] `{ pending: false }`) is *idle*. Its
//! leader does not ask for a payload and nobody starts the leader or view
//! timer, so nobody nullifies it; only a [`TimerKind::Heartbeat`] of
//! [`Config::heartbeat_ms`] (60 s by default) is set. The view becomes
//! *active* (timers start now, the leader asks for a payload) on the
//! first of:
//!
//! * work: the actor reports pending attestations or evidence, admitted
//!   locally or learnt by gossip, so replicas learn of work as soon as
//!   the leader does and time a dead leader out with the normal timers;
//! * a valid proposal for the view (a leader with work that the replica
//!   has not heard of yet);
//! * `nullify` votes of f + 1 validators for the view: at least one honest
//!   validator has work or reached its heartbeat; by rule 5 we nullify too,
//!   so the view ends in a round trip instead of holding it open;
//! * the heartbeat: the leader proposes, an empty block if it still has
//!   nothing, so an idle chain adds one block per heartbeat and monitoring
//!   sees it alive; a dead leader of an idle view is nullified a leader
//!   timeout after the heartbeat;
//! * unfinished business: the view was entered while a notarized block
//!   above the finalized one is not final, and a view timeout later
//!   ([`TimerKind::Finality`]) it still is not. A notarized block whose
//!   `finalize` votes fell short (some validators nullified its view) is
//!   final only once a descendant is, so the chain must go on until one
//!   is; otherwise the last burst before a quiet spell would wait for the
//!   heartbeat to commit. Usually the finalization comes first (its votes
//!   leave with the notarization) and nothing happens.
//!
//! Once active a view stays active until it is left; `pending: false`
//! only affects the views entered after it. An engine that is never sent
//! `Input::Work` is always pending, which is the protocol under constant
//! load (the simulator's constant-load seeds run it).
//!
//! What this changes and what it does not: safety rules are untouched (no
//! vote is signed that the rules above did not allow; an idle view simply
//! has no votes yet). Liveness under load is unchanged, since every view
//! is active. When work arrives in an idle view, the view is active within
//! one gossip delay at every validator that receives it, so a dead
//! leader's view ends after the (suspect or normal) leader timeout, as
//! under load. A Byzantine leader may still propose empty blocks in its
//! own views, as it always could; Byzantine nullifies alone (at most f)
//! end nothing. Validators disagree about `pending` only for a gossip
//! delay, and disagreeing costs time, never safety. The heartbeat, like
//! the timeouts, is a local timer: replicas accept an empty block whenever
//! it comes, since they can not check another validator's clock.
//!
//! # Epochs (validator-set changes)
//!
//! The validator set changes only at an epoch boundary. The actor tells
//! the engine the next epoch ([`Input::Reconfigure`]: its set and first
//! height `from_height`) as soon as the change is committed; the block at
//! `from_height - 1` is the epoch's last, its *boundary block* B.
//!
//! * Nothing above B in the epoch: voters refuse a block above it, and a
//!   leader whose parent would be B *re-proposes B itself* in its view
//!   `w`: the same block, justified by B's notarization in an earlier view
//!   `u` and nullifications of the views in `(u, w)`. `notarize(w, B)` and
//!   `finalize(w, B)` then finalize B directly. Without it, B's view could
//!   end notarized with split votes (n = 4: two `finalize`, two `nullify`)
//!   and nothing could ever finalize B (docs/protocol.md). The re-proposal
//!   is safe for the reason a proposal on a notarized parent is: a block
//!   finalized in a view of `(u, w)` would make that view impossible to
//!   nullify.
//! * When the engine commits B it switches: the new set and quorum, view 1,
//!   all per-view state cleared, B as the finalized base (with B's
//!   finalization, a certificate of the old epoch). The first block of the
//!   epoch has parent B, like the first block of the chain has the genesis
//!   parent. Epoch e + 1 is a fresh Simplex instance rooted at a block
//!   that epoch e finalized with its own certificate.
//! * Votes sign their epoch and the engine counts only its epoch's: a
//!   vote, proposal or certificate of an older epoch is answered with B's
//!   finalization (a straggler then commits B and crosses), one of a
//!   newer epoch makes the engine block-sync ([`Output::Sync`]).
//! * The journal, the records and [`KeepAbove`] order by (epoch, view).
//!
//! # Invariants
//!
//! * Every own vote leaves as [`Output::Journal`] before the
//!   [`Output::Broadcast`] that carries it; the actor makes the journal
//!   durable before it sends anything. The body of a block we notarize is
//!   an [`Output::Persist`] ahead of that vote, so it is durable with it.
//! * Never two different `notarize`, never `finalize` and `nullify`, never
//!   two different `finalize` in one view, also across restarts
//!   ([`Engine::restore`]). These are assertions: a breach is a bug.
//! * Nothing from a peer can make the engine panic: a bad message comes back
//!   as [`Output::Dropped`].
//! * Buffers are bounded: votes and proposals only for views up to
//!   `view + future_views_max`, blocks only above the committed height and
//!   at most [`config::PIPELINE_HEIGHTS_MAX`] ahead of it, at most
//!   [`config::WANTED_BLOCKS_MAX`] fetches. Certificates are taken for any
//!   view above the finalized one (they can not be forged), so the per-view
//!   state grows with the number of views since the last finalization.
//!
//! # Deviations from the paper
//!
//! See [`engine`]'s module documentation.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod certificate;
pub mod config;
pub mod engine;
mod evidence;
pub mod held;
pub mod journal;
pub mod leader;
mod proposal;
pub mod relay;
mod sync;
mod view;
mod votes;

use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::block::{Block, BlockError, BlockHash, Header};
use lotline_core::certificate::{CertificateError, Finality, FinalityError};
use lotline_core::vote::Vote;
use serde::{Deserialize, Serialize};

pub use certificate::{QuorumCertificate, Verifier, Zip215};
pub use config::Config;
pub use engine::Engine;
pub use journal::{KeepAbove, RestoreError};
pub use leader::leader;
pub use lotline_core::evidence::{Evidence, EvidenceError, EvidenceKey, EvidenceKind};

/// What drives an engine.
#[derive(Clone, Debug)]
pub enum Input {
    /// The actor's payload for the leader's proposal in the current view
    /// (the answer to [`Output::Build`]), with the actor's clock reading,
    /// which becomes the informational header timestamp.
    Propose {
        attestations: Vec<Envelope>,
        /// Verified evidence not yet recorded on this chain (nor in the
        /// uncommitted ancestors); at most `BLOCK_EVIDENCE_MAX` are taken.
        evidence: Vec<Evidence>,
        now_ms: u64,
    },
    /// A message from validator `from`, as authenticated by the transport.
    /// Its content is still checked: every signature is verified.
    Message { from: u16, message: Message },
    /// The timer `timer` of `view` fired (set by [`Output::SetTimer`]).
    Timer { view: u64, timer: TimerKind },
    /// The actor's verdict on a proposal's payload (the answer to
    /// [`Output::Verify`]).
    Verified {
        view: u64,
        block: BlockHash,
        valid: bool,
    },
    /// A finalized block fetched by block sync (the answer to
    /// [`Output::Sync`]), in height order starting at the requested height.
    Synced { block: Block, finality: Finality },
    /// The transport has (re)connected to `peer`. The peer gets our latest
    /// finalization at once, so whichever end is behind starts catching up
    /// (a validator restarted behind on an idle chain, which would
    /// otherwise hear nothing until the heartbeat; a node that follows the
    /// epoch at or above the set's size: added by a vote and not yet in
    /// its epoch, or removed). If both are validators of the epoch and we
    /// are stuck in our view (we nullified it), the peer also gets what our
    /// next retry would broadcast: a partition that heals, or a validator
    /// that restarts, then resumes within a round trip instead of waiting
    /// out a view timeout that doubled while the network was cut.
    PeerConnected { peer: u16 },
    /// Whether the actor holds work to order: attestations in its mempool
    /// (admitted locally or learnt by gossip) or evidence that no block the
    /// engine holds carries yet. Send it whenever the answer changes (and
    /// once before [`Engine::start`]); `pending: true` makes the current
    /// view active. An engine never told is always pending: every view is
    /// active, as under constant load. See "Idle views" above.
    Work { pending: bool },
    /// The validator set of the next epoch and the height it starts at
    /// ([`Reconfiguration`]). Send it as soon as the change that makes it
    /// is committed, well before its first height (the genesis puts the
    /// boundary more than `PIPELINE_HEIGHTS_MAX` heights above the change),
    /// and again after a restore if the block log has not reached it yet.
    /// See "Epochs" above.
    Reconfigure(Box<Reconfiguration>),
}

/// The next epoch, as the actor learnt it from committed governance.
///
/// Epoch `epoch - 1` ends with the block at `from_height - 1` (the
/// boundary block *B*); the engine switches when it commits *B*.
#[derive(Clone, Debug)]
pub struct Reconfiguration {
    pub epoch: u64,
    /// The first height of the epoch.
    pub from_height: u64,
    /// The epoch's validator keys, in order (a validator's index in the
    /// epoch is its position).
    pub validators: Vec<lotline_core::crypto::PublicKey>,
    /// Our index in the epoch: our position in `validators` if we are one
    /// of them (then `key` must be that validator's key), else any index
    /// at or above `validators.len()` (we follow the chain without voting).
    pub index: u16,
    /// Our signing key in the epoch (a rotated node key takes effect here).
    pub key: lotline_core::crypto::SigningKey,
    /// Whether we vote in the epoch (false for a non-member, or a
    /// validator restored from a backup, see [`Config::voting`]).
    pub voting: bool,
}

/// The timers of a view.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimerKind {
    /// No proposal by now: nullify (Simplex's 2Δ).
    Leader,
    /// No notarization by now: nullify (Simplex's 3Δ).
    Notarization,
    /// Still stuck after nullifying: rebroadcast the nullify vote and the
    /// certificate that justified entering the view.
    Retry,
    /// An idle view waited [`Config::heartbeat_ms`]: make it active.
    Heartbeat,
    /// An idle view was entered with notarized blocks not yet final and
    /// waited a view timeout for their finalization: if it has not come,
    /// make the view active, so that a descendant finalizes them.
    Finality,
}

/// What an engine asks the actor to do, in order.
#[derive(Clone, Debug)]
pub enum Output {
    /// Append this own vote to the vote journal. The journal must be durable
    /// (fdatasync) before any later `Broadcast`/`Send` of the same step.
    Journal(Vote),
    /// Append this record to the journal beside the votes; it rides on the
    /// sync of the next `Journal`/send. Pass every record back to
    /// [`Engine::restore`] (the actor may drop those at or below the
    /// committed height or finalized view). See [`Record`].
    Persist(Record),
    /// Send to every other validator.
    Broadcast(Message),
    /// Send to one validator (answers to requests, block fetches).
    Send { to: u16, message: Message },
    /// Fire `Input::Timer { view, timer }` after `after_ms`. Timers are never
    /// cancelled: the engine ignores those of views it has left.
    SetTimer {
        view: u64,
        timer: TimerKind,
        after_ms: u64,
    },
    /// We lead `view` and it is active (there is work, or the heartbeat is
    /// due, or peers want to leave it): answer with `Input::Propose` soon,
    /// with what there is (possibly no attestations), before the leader
    /// timer of the peers fires.
    Build { view: u64 },
    /// Check the payload of `block` (attestation admission: signatures,
    /// schema, policy, no duplicates of committed attestations) and answer
    /// with `Input::Verified`. The header and body shape are already checked.
    /// `ids` are the block's attestation ids as the engine hashed them
    /// (`Block::check_body`, `Block::new_hashed`), so the actor need not
    /// hash every body again.
    Verify {
        view: u64,
        block: Block,
        ids: Vec<AttestationId>,
    },
    /// `block` is final: append it with its finality to the block log, then
    /// tell clients. Commits come in height order, each extending the last.
    /// `ids` as in `Verify`: the block log checks the body against them
    /// (`Block::check_hashed`) instead of hashing it a third time.
    /// `finality`'s signatures are verified, each once: as votes the engine
    /// counted, or on the certificate's receipt (a peer's finalization, a
    /// synced block); the block log checks its shape only.
    Commit {
        block: Block,
        ids: Vec<AttestationId>,
        finality: Finality,
    },
    /// The engine holds a finalization it can not connect to its committed
    /// head (blocks pruned by peers, or a gap too long for one `Finality`):
    /// block-sync finalized blocks with their finalities from `height`
    /// upwards from peers' block logs and feed them as `Input::Synced`.
    Sync { height: u64 },
    /// Two conflicting votes by one validator, verified: keep it and offer
    /// it in the next `Input::Propose` until a committed block records it.
    /// Emitted once per [`EvidenceKey`] (up to [`config::EVIDENCE_SEEN_MAX`]
    /// remembered); the engine has already broadcast it
    /// ([`Message::Evidence`]).
    Evidence(Evidence),
    /// A message or input was refused; the actor logs and counts it (and may
    /// rate-limit or block a peer that sends many non-benign ones). `from` is
    /// `None` for actor inputs.
    Dropped {
        from: Option<u16>,
        reason: DropReason,
    },
}

/// What the engine keeps across restarts besides its own votes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A certificate we stored: a restart re-enters the view after it and
    /// can hand it to peers stuck before it (all holders of a certificate
    /// may crash; without this a straggler could wait forever).
    Certificate(QuorumCertificate),
    /// A block we notarize (persisted before the vote leaves) or fetched:
    /// a notarized block can only be skipped by a nullification, so its body
    /// must survive the crash of every validator that holds it.
    Block(Block),
}

/// Messages between validators. Every field that matters is signed or bound
/// by hash to something signed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    Proposal(Box<Proposal>),
    Vote(Vote),
    /// A notarization, nullification or finalization.
    Certificate(QuorumCertificate),
    Request(Request),
    /// Answer to [`Request::Block`]: the block and then its ancestors,
    /// child first, at most [`config::FETCH_BLOCKS_MAX`].
    Blocks(Vec<Block>),
    /// Equivocation evidence, gossiped: the detector broadcasts it and every
    /// validator forwards it once, on first sight, so it reaches the next
    /// leaders even when the detector's own messages are lost.
    Evidence(Box<Evidence>),
}

/// A leader's block for view `notarize.view` with everything a voter needs
/// to check the parent rule without asking anyone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proposal {
    pub block: Block,
    /// The leader's `notarize(view, hash(block))`: authenticates the proposal.
    pub notarize: Vote,
    /// The parent's header (bound by `block.header.parent`); `None` when the
    /// parent is the genesis parent (the chain id).
    pub parent: Option<Header>,
    /// A notarization or finalization of the parent; `None` for genesis.
    /// May be left out when the parent is the voter's last finalized block.
    pub parent_certificate: Option<QuorumCertificate>,
    /// Nullifications of every view strictly between the parent's view and
    /// this view, at most [`config::SKIP_VIEWS_MAX`].
    pub nullifications: Vec<QuorumCertificate>,
}

/// What a validator may ask a peer for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// A notarized or recently committed block and some of its ancestors.
    Block { hash: BlockHash },
    /// The certificates a leader needs to build on `view`: walking down from
    /// `view`, nullifications until a notarization or finalization.
    Certificates { view: u64 },
}

/// Why a message or input was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DropReason {
    #[error("sender {0} is not a validator")]
    UnknownPeer(u16),
    #[error("signer {0} is not a validator")]
    UnknownSigner(u16),
    #[error("epoch {0} is not the current epoch")]
    WrongEpoch(u64),
    #[error("epoch {epoch} is over (the current epoch is {current})")]
    OldEpoch { epoch: u64, current: u64 },
    #[error("reconfiguration refused: {0}")]
    Reconfiguration(&'static str),
    #[error("signature of validator {0} does not verify")]
    BadSignature(u16),
    #[error("malformed: {0}")]
    Malformed(&'static str),
    #[error("view {view} is at or below the finalized view {finalized}")]
    StaleView { view: u64, finalized: u64 },
    #[error("view {view} is beyond the window, which ends at {limit}")]
    FutureView { view: u64, limit: u64 },
    #[error("validator {signer} does not lead view {view}")]
    NotLeader { view: u64, signer: u16 },
    #[error("certificate: {0}")]
    Certificate(CertificateError),
    #[error("block: {0}")]
    Block(BlockError),
    #[error("finality: {0}")]
    Finality(FinalityError),
    #[error("parent: {0}")]
    Parent(&'static str),
    #[error("no nullification for skipped view {0}")]
    MissingNullification(u64),
    #[error("block at height {height} is beyond the pipeline limit {limit}")]
    TooFarAhead { height: u64, limit: u64 },
    #[error("block {0} was not requested")]
    Unrequested(BlockHash),
    #[error("a finalized block conflicts with the committed chain at height {0}")]
    ConflictingFinalization(u64),
    #[error("evidence: {0}")]
    Evidence(EvidenceError),
}

impl DropReason {
    /// True for drops that honest peers cause routinely (late votes after a
    /// finalization, answers we no longer need): log them at a low level.
    pub fn is_benign(&self) -> bool {
        matches!(
            self,
            DropReason::StaleView { .. }
                | DropReason::Unrequested(_)
                | DropReason::OldEpoch { .. }
                | DropReason::WrongEpoch(_)
        )
    }
}
