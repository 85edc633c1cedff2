//! Engine parameters and the limits that bound its state.

use std::num::NonZeroU64;
use std::sync::Arc;

use lotline_core::crypto::{PublicKey, SigningKey};
use lotline_core::hash::Digest;
use lotline_core::limits;
use lotline_core::validators::ValidatorSet;

use crate::certificate::{Verifier, Zip215};

/// Nullifications a proposal may carry: the longest run of skipped views a
/// leader can build across. A longer run stalls proposing (documented limit;
/// timeouts back off long before that many views pass).
pub const SKIP_VIEWS_MAX: usize = 256;
/// Blocks in one answer to a block request.
pub const FETCH_BLOCKS_MAX: usize = 16;
/// Blocks being fetched at once.
pub const WANTED_BLOCKS_MAX: usize = 64;
/// Fetch attempts for a block below a finalization before the engine also
/// asks the actor to block-sync.
pub const FETCH_ATTEMPTS_BEFORE_SYNC: u32 = 3;
/// How far above the committed height the engine accepts and builds blocks.
/// Any block it commits then has at most this many uncommitted ancestors, so
/// one `Finality` (at most `FINALITY_DESCENDANTS_MAX` headers) proves each.
pub const PIPELINE_HEIGHTS_MAX: u64 = limits::FINALITY_DESCENDANTS_MAX as u64;
/// Evidence keys (validator, view, kind) the engine remembers having
/// reported, so gossip is forwarded once. Beyond it the lowest views are
/// forgotten (the actor's store still deduplicates what is kept).
pub const EVIDENCE_SEEN_MAX: usize = 1024;
/// Doublings of the timeouts after consecutive nullified views.
pub const BACKOFF_DOUBLINGS_MAX: u32 = 16;
/// A suspected leader's leader timeout is the normal one divided by this
/// (see [`Config::suspect_timeout_ms`]): 25 ms for the genesis default of
/// 1 s. Short against a dead leader's whole turn, long against a live
/// leader's proposal on a LAN; a live leader that misses it once is cleared
/// by its late proposal and gets the full timeout on its next turn. A tenth
/// (100 ms) left one validator down at 4.8× the all-up p50 commit latency
/// once the all-up p50 fell to 22 ms (docs/performance.md): every dead turn
/// costs this timer, and a client's wait is mostly that gap.
pub const SUSPECT_TIMEOUT_DIVISOR: u64 = 40;

/// The default heartbeat of an idle chain: one block a minute, about
/// 1,440 small blocks a day per node.
pub const HEARTBEAT_MS_DEFAULT: u64 = 60_000;

const _: () = assert!(PIPELINE_HEIGHTS_MAX as usize <= limits::FINALITY_DESCENDANTS_MAX);
const _: () = assert!(FETCH_BLOCKS_MAX <= WANTED_BLOCKS_MAX);
const _: () = assert!(limits::VALIDATORS_MAX <= u16::MAX as usize);

/// Everything an engine is built from.
#[derive(Clone, Debug)]
pub struct Config {
    pub chain_id: Digest,
    /// The epoch `validators` vote in (0: the genesis set). Votes sign it.
    pub epoch: u64,
    /// Validator keys of the epoch in order; a validator's index is its
    /// position.
    pub validators: Vec<PublicKey>,
    /// Our index in `validators`; at or above its length for a node that
    /// follows the epoch without being one of its validators (then
    /// `voting` is false).
    pub index: u16,
    /// Our signing key; its public key must be `validators[index]`.
    pub key: SigningKey,
    /// The leader timeout of a view after a finalization; the view timeout is
    /// 3/2 of it (Simplex's 2Δ and 3Δ). Doubles with every consecutive
    /// nullified view, up to `timeout_max_ms`.
    pub timeout_base_ms: NonZeroU64,
    /// Cap of the leader timeout after backoff.
    pub timeout_max_ms: NonZeroU64,
    /// Votes and proposals are buffered for views up to `view + this`;
    /// further ones are dropped (certificates are accepted for any view).
    pub future_views_max: NonZeroU64,
    /// Committed blocks kept in memory to answer peers' block requests.
    pub committed_blocks_retained: usize,
    /// How long a view with nothing to order waits before it becomes
    /// active anyway: its leader then proposes (an empty block if it still
    /// has nothing) and the view timers start. It is the heartbeat of an
    /// idle chain: at most one block per `heartbeat_ms` while idle, so that
    /// monitoring sees the chain alive, and a dead leader of an idle view
    /// is replaced after it plus the leader timeout. A local timer, like
    /// the timeouts: validators that disagree about it only wait
    /// differently long (see the crate documentation, "Idle views").
    pub heartbeat_ms: NonZeroU64,
    /// `false`: this validator signs nothing (no vote, no proposal) and
    /// follows the chain on the certificates of the others. A validator
    /// restored from a backup runs so, because it may have signed votes
    /// after the backup that it no longer knows and must never contradict
    /// (docs/operations.md, "Restoring a validator"). To the others it is a
    /// silent validator, one of the f faults the protocol tolerates.
    pub voting: bool,
    /// How signatures are checked; [`Zip215`] unless a simulator shares a
    /// memo between simulated validators.
    pub verifier: Arc<dyn Verifier>,
}

impl Config {
    /// A config with default timings: 500 ms leader timeout, capped at 8 s,
    /// a window of 16 future views, 256 retained blocks, a heartbeat of
    /// [`HEARTBEAT_MS_DEFAULT`].
    pub fn new(
        chain_id: Digest,
        validators: Vec<PublicKey>,
        index: u16,
        key: SigningKey,
    ) -> Config {
        Config {
            chain_id,
            epoch: 0,
            validators,
            index,
            key,
            timeout_base_ms: NonZeroU64::new(500).unwrap_or(NonZeroU64::MIN),
            timeout_max_ms: NonZeroU64::new(8_000).unwrap_or(NonZeroU64::MIN),
            future_views_max: NonZeroU64::new(16).unwrap_or(NonZeroU64::MIN),
            committed_blocks_retained: limits::FINALITY_DESCENDANTS_MAX,
            heartbeat_ms: NonZeroU64::new(HEARTBEAT_MS_DEFAULT).unwrap_or(NonZeroU64::MIN),
            voting: true,
            verifier: Arc::new(Zip215),
        }
    }

    /// Checks the config. A broken config is the operator's or the caller's
    /// bug, found when the engine is built (commonware `Config::assert`).
    pub fn assert(&self) {
        assert!(!self.validators.is_empty(), "no validators");
        assert!(
            self.validators.len() <= limits::VALIDATORS_MAX,
            "too many validators"
        );
        match self.validators.get(usize::from(self.index)) {
            Some(key) => assert!(
                *key == self.key.public_key(),
                "signing key is not validator {}",
                self.index
            ),
            None => assert!(!self.voting, "own index out of range"),
        }
        let mut sorted = self.validators.clone();
        sorted.sort();
        sorted.dedup();
        assert!(
            sorted.len() == self.validators.len(),
            "a validator key repeats"
        );
        assert!(
            self.timeout_base_ms <= self.timeout_max_ms,
            "timeout_base_ms > timeout_max_ms"
        );
        assert!(
            self.future_views_max.get() <= SKIP_VIEWS_MAX as u64,
            "future window too large"
        );
    }

    pub fn validator_set(&self) -> ValidatorSet {
        ValidatorSet::new(self.chain_id, self.validators.clone()).in_epoch(self.epoch)
    }

    /// The leader timeout after `streak` consecutive nullified views.
    pub fn leader_timeout_ms(&self, streak: u32) -> u64 {
        let doublings = streak.min(BACKOFF_DOUBLINGS_MAX);
        let grown = self.timeout_base_ms.get().saturating_mul(1u64 << doublings);
        grown.min(self.timeout_max_ms.get())
    }

    /// The leader timeout of a view whose leader is suspected dead (it
    /// missed its last turn: its view was nullified and we saw no proposal
    /// from it). A fraction of the normal leader timeout, so it backs off
    /// with it after consecutive nullifications and never exceeds it.
    pub fn suspect_timeout_ms(&self, streak: u32) -> u64 {
        (self.leader_timeout_ms(streak) / SUSPECT_TIMEOUT_DIVISOR).max(1)
    }

    /// The view timeout (and nullify retry interval): 3/2 of the leader
    /// timeout, as 3Δ is to 2Δ.
    pub fn view_timeout_ms(&self, streak: u32) -> u64 {
        let leader = self.leader_timeout_ms(streak);
        leader.saturating_add(leader / 2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        let key = SigningKey::from_seed(&[1; 32]);
        let mut config = Config::new(Digest::ZERO, vec![key.public_key()], 0, key);
        config.timeout_base_ms = NonZeroU64::new(100).unwrap();
        config.timeout_max_ms = NonZeroU64::new(1_000).unwrap();
        config
    }

    #[test]
    fn timeouts_double_and_cap() {
        let config = config();
        let table = [
            (0, 100, 150),
            (1, 200, 300),
            (3, 800, 1200),
            (4, 1000, 1500),
            (60, 1000, 1500),
        ];
        for (streak, leader, view) in table {
            assert_eq!(config.leader_timeout_ms(streak), leader, "streak {streak}");
            assert_eq!(config.view_timeout_ms(streak), view, "streak {streak}");
        }
    }

    #[test]
    fn suspect_timeouts_are_a_fraction_that_backs_off_with_the_normal_one() {
        let config = config();
        let table = [(0, 2), (1, 5), (3, 20), (4, 25), (60, 25)];
        for (streak, suspect) in table {
            assert_eq!(
                config.suspect_timeout_ms(streak),
                suspect,
                "streak {streak}"
            );
            assert!(config.suspect_timeout_ms(streak) < config.leader_timeout_ms(streak));
        }
        let mut tiny = config.clone();
        tiny.timeout_base_ms = NonZeroU64::new(5).unwrap();
        assert_eq!(tiny.suspect_timeout_ms(0), 1, "never zero");
    }

    #[test]
    #[should_panic(expected = "timeout_base_ms > timeout_max_ms")]
    fn base_above_max_is_refused() {
        let mut config = config();
        config.timeout_base_ms = NonZeroU64::new(2_000).unwrap();
        config.assert();
    }

    #[test]
    #[should_panic(expected = "signing key is not validator 0")]
    fn foreign_key_is_refused() {
        let mut config = config();
        config.key = SigningKey::from_seed(&[2; 32]);
        config.assert();
    }
}
