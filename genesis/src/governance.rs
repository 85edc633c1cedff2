//! Governance: membership changes by consortium vote, and the membership
//! state they produce, as a pure function of the genesis and the ordered
//! governance transactions.
//!
//! A governance transaction is a DSSE envelope like an attestation, with its
//! own payload type ([`PAYLOAD_TYPE`]) and one signature per approving org:
//!
//! ```text
//! Envelope { payloadType: GOVERNANCE, payload: Proposal (JSON), signatures: [{keyid, sig}, ..] }
//! sig = Ed25519(client key of an approving org, PAE(payloadType, payload))
//! id  = BLAKE3[lotline/v1/attestation](PAE)       (the signatures are not part of it)
//! ```
//!
//! Since the id does not cover the signatures, orgs sign the same proposal
//! one after another and the envelope keeps its id. Consensus orders
//! governance transactions in blocks with the attestations; a block at
//! height `g` may carry one only if, under the membership at `g`
//! ([`History::at`]), its signatures are valid client-key signatures of at
//! least [`History::threshold`] distinct member orgs.
//!
//! # Rules (docs/protocol.md, "Governance")
//!
//! - A transaction included at height `g` takes effect at
//!   `max(effectiveHeight, g + 1)`: never in the block that carries it, so
//!   the block that orders it is judged by the membership before it.
//! - The membership at height `h` is the genesis with every transaction
//!   included below `h` whose effect height is at most `h` applied, in the
//!   order (effect height, inclusion height, index in the block).
//! - A change that no longer applies when it takes effect (the org it names
//!   is gone, the key is in use) is void: it is kept in the history with
//!   its reason and changes nothing. Every node voids the same ones.
//! - Every resulting membership passes the genesis validation (key once in
//!   the file, weak keys, org ids, policy names): one rule set for both.
//! - A revoked key stays revoked: it can not come back by a later change.
//! - Validators do not change here (adding or removing one is the planned
//!   epoch reconfiguration): an org that runs a validator can not be removed.
//!
//! Non-features: nothing here reads a clock or the store; the history is
//! fed in chain order by its caller (the node at commit, `lotline verify`
//! from a membership-history file).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use lotline_core::attestation::{AttestationId, Envelope};
use lotline_core::codec::{self, DecodeError};
use lotline_core::{Digest, PublicKey, limits};
use serde::{Deserialize, Serialize};

use crate::Genesis;
use crate::read_policy::ReadPolicyFile;
use crate::validate::{GenesisFile, OrgFile, PolicyFile};

/// The DSSE payload type of a governance proposal (JSON, version 1).
pub const PAYLOAD_TYPE: &str = "application/vnd.lotline.governance+json; version=1";

/// The proposal format version.
pub const VERSION: u16 = 1;

/// Largest proposal payload: with [`SIGNATURES_MAX`] signatures its
/// envelope still fits an attestation's JSON limit.
pub const PROPOSAL_BYTES_MAX: usize = 32 * 1024;

/// Most signatures one governance transaction carries.
pub const SIGNATURES_MAX: usize = 64;

/// Longest nonce and reason, in characters.
pub const NONCE_CHARS_MAX: usize = 128;
pub const REASON_CHARS_MAX: usize = 1024;

// Base64 of the payload plus 64 JSON signatures of about 200 bytes each.
const _: () = assert!(
    PROPOSAL_BYTES_MAX * 4 / 3 + SIGNATURES_MAX * 200 + 1024 <= limits::ATTESTATION_BYTES_MAX
);

/// What the consortium votes on: one change, for one chain, from a height on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Proposal {
    /// [`VERSION`].
    pub version: u16,
    pub chain_id: Digest,
    /// The first height at which the change holds (at the earliest the
    /// height after the block that carries it).
    pub effective_height: u64,
    /// Makes two proposals of the same change distinct transactions.
    pub nonce: String,
    /// Why, in words, for the signers and the record.
    #[serde(default)]
    pub reason: String,
    pub change: Change,
}

/// One membership change. Orgs and policy use the genesis file's forms
/// (snake_case fields), checked by the same validation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub enum Change {
    /// A new member org, with its client keys.
    AddOrg { org: OrgFile },
    /// An org leaves: its keys sign nothing from the effect height on.
    RemoveOrg { org: String },
    /// Replaces one client key of an org by another.
    #[serde(rename_all = "camelCase")]
    RotateKey {
        org: String,
        old_key: PublicKey,
        new_key: PublicKey,
    },
    /// A compromised key: refused from the effect height on, never again
    /// accepted in any change.
    RevokeKey { key: PublicKey },
    /// Replaces the write policy and, when `readPolicy` is given, the read
    /// policy (absent: the read policy stays as it is). Every read path of
    /// a node judges by the read policy of the membership in force.
    #[serde(rename_all = "camelCase")]
    SetPolicy {
        policy: Vec<PolicyFile>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        read_policy: Option<ReadPolicyFile>,
    },
}

impl Change {
    /// A short name for logs and listings.
    pub fn kind(&self) -> &'static str {
        match self {
            Change::AddOrg { .. } => "addOrg",
            Change::RemoveOrg { .. } => "removeOrg",
            Change::RotateKey { .. } => "rotateKey",
            Change::RevokeKey { .. } => "revokeKey",
            Change::SetPolicy { .. } => "setPolicy",
        }
    }
}

/// Why a governance transaction is refused. Each variant carries what
/// proves it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GovernanceError {
    #[error("payloadType must be {PAYLOAD_TYPE:?}, got {0:?}")]
    PayloadType(String),
    #[error("the proposal is {len} bytes, more than the limit of {PROPOSAL_BYTES_MAX}")]
    TooLarge { len: usize },
    #[error("the payload is not a governance proposal: {0}")]
    Decode(DecodeError),
    #[error("proposal version {0} is not supported (this node knows {VERSION})")]
    Version(u16),
    #[error("the proposal is for chain {got}, this chain is {expected}")]
    WrongChain { expected: Digest, got: Digest },
    #[error("nonce must be 1 to {NONCE_CHARS_MAX} characters, got {0}")]
    Nonce(usize),
    #[error("reason must be at most {REASON_CHARS_MAX} characters, got {0}")]
    Reason(usize),
    #[error("the proposal carries no signature: it needs {need} member orgs' signatures")]
    Unsigned { need: usize },
    #[error(
        "a governance transaction carries at most {SIGNATURES_MAX} signatures, this one has {0}"
    )]
    TooManySignatures(usize),
    #[error("keyid {0:?} is not the hex of an Ed25519 public key")]
    KeyId(String),
    #[error("key {0} signs the proposal twice")]
    DuplicateSigner(PublicKey),
    #[error("key {0} is not a client key of a member org at this height")]
    NotMember(PublicKey),
    #[error("the signature of key {0} does not verify")]
    BadSignature(PublicKey),
    #[error(
        "signed by {have} member org(s) ({}), the consortium's threshold is {need}",
        orgs.join(", ")
    )]
    UnderThreshold {
        orgs: Vec<String>,
        have: usize,
        need: usize,
    },
    #[error("effectiveHeight {effective} has passed: the next block is at height {next}")]
    PastHeight { effective: u64, next: u64 },
    #[error("the change does not apply: {0}")]
    Inapplicable(String),
}

impl GovernanceError {
    /// Errors a proposal can lose by collecting more signatures.
    pub fn wants_signatures(&self) -> bool {
        matches!(
            self,
            GovernanceError::Unsigned { .. } | GovernanceError::UnderThreshold { .. }
        )
    }
}

/// Decodes and checks the payload alone (type, size, version, chain, nonce).
pub fn decode(envelope: &Envelope, chain_id: &Digest) -> Result<Proposal, GovernanceError> {
    if envelope.payload_type != PAYLOAD_TYPE {
        return Err(GovernanceError::PayloadType(envelope.payload_type.clone()));
    }
    if envelope.payload.len() > PROPOSAL_BYTES_MAX {
        return Err(GovernanceError::TooLarge {
            len: envelope.payload.len(),
        });
    }
    let proposal: Proposal =
        codec::from_json("governance proposal", &envelope.payload, PROPOSAL_BYTES_MAX)
            .map_err(GovernanceError::Decode)?;
    if proposal.version != VERSION {
        return Err(GovernanceError::Version(proposal.version));
    }
    if proposal.chain_id != *chain_id {
        return Err(GovernanceError::WrongChain {
            expected: *chain_id,
            got: proposal.chain_id,
        });
    }
    let nonce = proposal.nonce.chars().count();
    if nonce == 0 || nonce > NONCE_CHARS_MAX {
        return Err(GovernanceError::Nonce(nonce));
    }
    let reason = proposal.reason.chars().count();
    if reason > REASON_CHARS_MAX {
        return Err(GovernanceError::Reason(reason));
    }
    Ok(proposal)
}

/// An unsigned governance envelope of `proposal`.
pub fn unsigned(proposal: &Proposal) -> Envelope {
    Envelope {
        payload_type: PAYLOAD_TYPE.to_owned(),
        payload: serde_json::to_vec(proposal).unwrap_or_default(),
        signatures: Vec::new(),
    }
}

/// Adds `key`'s signature to a governance envelope (the id stays the same).
/// Signing twice with one key replaces the earlier signature.
pub fn add_signature(envelope: &mut Envelope, key: &lotline_core::SigningKey) {
    let keyid = key.public_key().to_hex();
    let sig = key.sign(&envelope.pae());
    envelope.signatures.retain(|s| s.keyid != keyid);
    envelope
        .signatures
        .push(lotline_core::attestation::EnvelopeSignature { keyid, sig });
}

/// The membership in force at some height: the genesis rules with the
/// changes that took effect by then. `rules` is a validated [`Genesis`]
/// (the same checks as a genesis file); its own chain id is not the
/// chain's: use [`Membership::chain_id`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Membership {
    chain_id: Digest,
    rules: Arc<Genesis>,
    /// Revoked keys and the height their revocation took effect.
    revoked: BTreeMap<PublicKey, u64>,
}

impl Membership {
    /// The membership at height 1: the genesis itself.
    pub fn genesis(genesis: Arc<Genesis>) -> Membership {
        Membership {
            chain_id: genesis.chain_id(),
            rules: genesis,
            revoked: BTreeMap::new(),
        }
    }

    /// The chain's id (the original genesis's).
    pub fn chain_id(&self) -> Digest {
        self.chain_id
    }

    /// Orgs, keys, write and read policy in force.
    pub fn rules(&self) -> &Genesis {
        &self.rules
    }

    /// [`Membership::rules`], shared (read paths keep it past a request).
    pub fn rules_shared(&self) -> Arc<Genesis> {
        self.rules.clone()
    }

    /// The height from which `key` is revoked, if it is.
    pub fn revoked_from(&self, key: &PublicKey) -> Option<u64> {
        self.revoked.get(key).copied()
    }

    /// This membership with `change` applied from height `from`, or why it
    /// does not apply.
    pub fn apply(&self, change: &Change, from: u64) -> Result<Membership, String> {
        let mut file = GenesisFile::from_parts(&self.rules);
        let mut revoked = self.revoked.clone();
        let has_org = |file: &GenesisFile, id: &str| file.orgs.iter().any(|o| o.id == id);
        match change {
            Change::AddOrg { org } => {
                if has_org(&file, &org.id) {
                    return Err(format!("org {:?} is already a member", org.id));
                }
                for key in &org.client_keys {
                    if let Ok(key) = PublicKey::from_hex(key)
                        && revoked.contains_key(&key)
                    {
                        return Err(format!("key {key} was revoked"));
                    }
                }
                file.orgs.push(org.clone());
            }
            Change::RemoveOrg { org } => {
                if !has_org(&file, org) {
                    return Err(format!("org {org:?} is not a member"));
                }
                if file.validators.iter().any(|v| &v.org == org) {
                    return Err(format!(
                        "org {org:?} runs a validator; validator-set changes are not built yet"
                    ));
                }
                file.orgs.retain(|o| &o.id != org);
            }
            Change::RotateKey {
                org,
                old_key,
                new_key,
            } => {
                if revoked.contains_key(new_key) {
                    return Err(format!("key {new_key} was revoked"));
                }
                let Some(entry) = file.orgs.iter_mut().find(|o| &o.id == org) else {
                    return Err(format!("org {org:?} is not a member"));
                };
                let old = old_key.to_hex();
                let Some(slot) = entry.client_keys.iter_mut().find(|k| **k == old) else {
                    return Err(format!("key {old_key} is not a client key of org {org:?}"));
                };
                *slot = new_key.to_hex();
            }
            Change::RevokeKey { key } => {
                let hex = key.to_hex();
                let owner = file.orgs.iter_mut().find(|o| o.client_keys.contains(&hex));
                let Some(owner) = owner else {
                    return Err(format!("key {key} is not a client key of a member org"));
                };
                owner.client_keys.retain(|k| *k != hex);
                revoked.insert(*key, from);
            }
            Change::SetPolicy {
                policy,
                read_policy,
            } => {
                file.policy = policy.clone();
                if let Some(read_policy) = read_policy {
                    file.read_policy = read_policy.clone();
                }
            }
        }
        let parts = file.into_typed().map_err(|e| e.to_string())?;
        Ok(Membership {
            chain_id: self.chain_id,
            rules: Arc::new(Genesis::finish(parts)),
            revoked,
        })
    }
}

/// A governance transaction this history holds, where the chain put it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub height: u64,
    pub index: u32,
    pub id: AttestationId,
    pub proposal: Proposal,
    /// The orgs whose signatures approved it.
    pub approvers: Vec<String>,
    /// `max(effectiveHeight, height + 1)`.
    pub effective: u64,
    /// `Some(reason)` when the change did not apply at its effect height.
    pub void: Option<String>,
}

/// The ordered governance transactions of a chain and the membership they
/// produce at each height. Cheap to clone (a proposal's validation extends
/// a copy with its uncommitted ancestors).
#[derive(Clone, Debug)]
pub struct History {
    genesis: Arc<Genesis>,
    entries: Vec<Entry>,
    /// Membership from a height on, ascending; the first is the genesis at 1.
    states: Vec<(u64, Arc<Membership>)>,
}

impl History {
    pub fn new(genesis: Arc<Genesis>) -> History {
        let base = Arc::new(Membership::genesis(genesis.clone()));
        History {
            genesis,
            entries: Vec::new(),
            states: vec![(1, base)],
        }
    }

    pub fn genesis(&self) -> &Arc<Genesis> {
        &self.genesis
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Distinct member orgs a change needs: the genesis validators' quorum
    /// (n - f), or every member org when there are fewer.
    pub fn threshold(&self, at: &Membership) -> usize {
        self.genesis
            .validator_set()
            .quorum()
            .min(at.rules().orgs().len())
            .max(1)
    }

    /// The role of `org` if it is or ever was a member: a genesis org or
    /// one a (not void) `addOrg` brought in. Lets a node accept an API
    /// credential for an org that joined by vote, or left, without a new
    /// genesis; whether it reads now is decided by the membership in force.
    pub fn known_org(&self, org: &str) -> Option<crate::Role> {
        if let Some(o) = self.genesis.org(org) {
            return Some(o.role);
        }
        self.entries.iter().find_map(|e| match &e.proposal.change {
            Change::AddOrg { org: added } if e.void.is_none() && added.id == org => {
                Some(added.role)
            }
            _ => None,
        })
    }

    /// The membership in force at `height`.
    pub fn at(&self, height: u64) -> Arc<Membership> {
        let i = self.states.partition_point(|(from, _)| *from <= height);
        self.states[i.saturating_sub(1)].1.clone()
    }

    /// Checks the signatures of a governance envelope under the membership
    /// at `height` and returns its proposal and approving orgs (sorted).
    pub fn approve(
        &self,
        envelope: &Envelope,
        height: u64,
    ) -> Result<(Proposal, Vec<String>), GovernanceError> {
        let proposal = decode(envelope, &self.genesis.chain_id())?;
        let membership = self.at(height);
        let need = self.threshold(&membership);
        if envelope.signatures.is_empty() {
            return Err(GovernanceError::Unsigned { need });
        }
        if envelope.signatures.len() > SIGNATURES_MAX {
            return Err(GovernanceError::TooManySignatures(
                envelope.signatures.len(),
            ));
        }
        let pae = envelope.pae();
        let mut keys = BTreeSet::new();
        let mut orgs = BTreeSet::new();
        for signature in &envelope.signatures {
            let key = PublicKey::from_hex(&signature.keyid)
                .map_err(|_| GovernanceError::KeyId(signature.keyid.clone()))?;
            if !keys.insert(key) {
                return Err(GovernanceError::DuplicateSigner(key));
            }
            let owner = membership
                .rules()
                .key_owner(&key)
                .ok_or(GovernanceError::NotMember(key))?;
            key.verify(&pae, &signature.sig)
                .map_err(|_| GovernanceError::BadSignature(key))?;
            orgs.insert(owner.id.clone());
        }
        let orgs: Vec<String> = orgs.into_iter().collect();
        if orgs.len() < need {
            return Err(GovernanceError::UnderThreshold {
                have: orgs.len(),
                orgs,
                need,
            });
        }
        Ok((proposal, orgs))
    }

    /// Records a governance transaction that a finalized (or proposed)
    /// block at `height` carries at `index`. Call in chain order. A
    /// transaction whose signatures do not pass [`History::approve`] is
    /// refused (a valid block never carries one).
    pub fn record(
        &mut self,
        height: u64,
        index: u32,
        envelope: &Envelope,
    ) -> Result<(), GovernanceError> {
        let (proposal, approvers) = self.approve(envelope, height)?;
        let effective = proposal.effective_height.max(height.saturating_add(1));
        self.entries.push(Entry {
            height,
            index,
            id: envelope.id(),
            proposal,
            approvers,
            effective,
            void: None,
        });
        self.rebuild();
        Ok(())
    }

    /// Recomputes the membership after each effect height from the
    /// genesis. Histories are short (a handful of changes a year), so
    /// recomputing is simpler than patching and can not drift.
    fn rebuild(&mut self) {
        let mut order: Vec<usize> = (0..self.entries.len()).collect();
        order.sort_by_key(|&i| {
            let e = &self.entries[i];
            (e.effective, e.height, e.index)
        });
        let mut current = Arc::new(Membership::genesis(self.genesis.clone()));
        let mut states = vec![(1, current.clone())];
        for i in order {
            let entry = &mut self.entries[i];
            match current.apply(&entry.proposal.change, entry.effective) {
                Ok(next) => {
                    entry.void = None;
                    current = Arc::new(next);
                    if states
                        .last()
                        .is_some_and(|(from, _)| *from == entry.effective)
                    {
                        states.pop();
                    }
                    states.push((entry.effective, current.clone()));
                }
                Err(reason) => entry.void = Some(reason),
            }
        }
        self.states = states;
    }

    /// The checks a client submission gets on top of [`History::approve`]
    /// at `next` (the next block's height): the effect height is not past,
    /// and the change applies to the membership it would meet if nothing
    /// else happened first.
    pub fn check_new(
        &self,
        envelope: &Envelope,
        next: u64,
    ) -> Result<(Proposal, Vec<String>), GovernanceError> {
        let (proposal, orgs) = self.approve(envelope, next)?;
        if proposal.effective_height < next {
            return Err(GovernanceError::PastHeight {
                effective: proposal.effective_height,
                next,
            });
        }
        let from = proposal.effective_height.max(next + 1);
        self.at(from)
            .apply(&proposal.change, from)
            .map_err(GovernanceError::Inapplicable)?;
        Ok((proposal, orgs))
    }
}

/// The format tag of a membership-history file.
pub const HISTORY_FORMAT: &str = "lotline/membership-history/v1";

/// Largest membership-history file a verifier reads.
pub const HISTORY_BYTES_MAX: usize = 16 * 1024 * 1024;

/// The membership-history file a node serves (`GET /v1/governance/history`)
/// and `lotline verify --membership` reads: a receipt for every governance
/// transaction committed up to `throughHeight`, in chain order. With the
/// genesis alone a verifier follows it ([`HistoryFile::follow`]): each
/// receipt proves its transaction final under the genesis validators, and
/// each transaction's signatures are checked under the membership its own
/// predecessors produced.
///
/// What it can not prove is completeness: a node that leaves a
/// transaction out (a revocation) is not caught by this file alone. The
/// planned header commitment to the membership closes that (docs/protocol.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HistoryFile {
    pub format: String,
    pub chain_id: Digest,
    /// The node's committed height when it wrote the file.
    pub through_height: u64,
    pub receipts: Vec<lotline_core::Receipt>,
}

/// Why a membership-history file can not be followed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryFileError {
    #[error("not a membership-history file: {0}")]
    Decode(DecodeError),
    #[error("format must be {HISTORY_FORMAT:?}, got {0:?}")]
    Format(String),
    #[error("the file is for chain {got}, the genesis is chain {expected}")]
    WrongChain { expected: Digest, got: Digest },
    #[error("receipt {index} does not prove a final governance transaction: {source}")]
    Receipt {
        index: usize,
        source: lotline_core::receipt::ReceiptError,
    },
    #[error("receipt {index} is at height {height}, past the file's throughHeight {through}")]
    PastEnd {
        index: usize,
        height: u64,
        through: u64,
    },
    #[error("receipt {index} is not after the one before it in chain order")]
    OutOfOrder { index: usize },
    #[error("receipt {index}: {source}")]
    Transaction {
        index: usize,
        source: GovernanceError,
    },
}

impl HistoryFile {
    /// The file for `history`'s entries, given a receipt for each.
    pub fn new(
        chain_id: Digest,
        through_height: u64,
        receipts: Vec<lotline_core::Receipt>,
    ) -> Self {
        HistoryFile {
            format: HISTORY_FORMAT.to_owned(),
            chain_id,
            through_height,
            receipts,
        }
    }

    pub fn from_json(bytes: &[u8]) -> Result<HistoryFile, HistoryFileError> {
        codec::from_json("membership history", bytes, HISTORY_BYTES_MAX)
            .map_err(HistoryFileError::Decode)
    }

    /// Follows the file from `genesis`: every receipt verified, in chain
    /// order, every transaction approved by the membership before it.
    pub fn follow(&self, genesis: Arc<Genesis>) -> Result<History, HistoryFileError> {
        if self.format != HISTORY_FORMAT {
            return Err(HistoryFileError::Format(self.format.clone()));
        }
        if self.chain_id != genesis.chain_id() {
            return Err(HistoryFileError::WrongChain {
                expected: genesis.chain_id(),
                got: self.chain_id,
            });
        }
        let set = genesis.validator_set();
        let mut history = History::new(genesis);
        let mut last = None;
        for (index, receipt) in self.receipts.iter().enumerate() {
            let certified = lotline_core::verify_certified(receipt, &set)
                .map_err(|source| HistoryFileError::Receipt { index, source })?;
            let at = (certified.height, receipt.leaf_index);
            if last.is_some_and(|last| at <= last) {
                return Err(HistoryFileError::OutOfOrder { index });
            }
            if certified.height > self.through_height {
                return Err(HistoryFileError::PastEnd {
                    index,
                    height: certified.height,
                    through: self.through_height,
                });
            }
            last = Some(at);
            history
                .record(certified.height, receipt.leaf_index, &receipt.attestation)
                .map_err(|source| HistoryFileError::Transaction { index, source })?;
        }
        Ok(history)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::example;
    use lotline_core::SigningKey;

    fn proposal(g: &Genesis, change: Change, effective_height: u64) -> Proposal {
        Proposal {
            version: VERSION,
            chain_id: g.chain_id(),
            effective_height,
            nonce: "n1".into(),
            reason: "test".into(),
            change,
        }
    }

    #[test]
    fn decode_refuses_malformed_input_precisely() {
        let g = example();
        let p = proposal(&g, Change::RemoveOrg { org: "x".into() }, 5);
        let mut env = unsigned(&p);
        assert_eq!(decode(&env, &g.chain_id()), Ok(p.clone()));
        assert!(matches!(
            decode(&env, &Digest::ZERO),
            Err(GovernanceError::WrongChain { .. })
        ));
        env.payload = b"{\"version\":1}".to_vec();
        assert!(matches!(
            decode(&env, &g.chain_id()),
            Err(GovernanceError::Decode(_))
        ));
        env.payload_type = "text/plain".into();
        assert!(matches!(
            decode(&env, &g.chain_id()),
            Err(GovernanceError::PayloadType(_))
        ));
        let mut q = p;
        q.nonce.clear();
        assert_eq!(
            decode(&unsigned(&q), &g.chain_id()),
            Err(GovernanceError::Nonce(0))
        );
    }

    #[test]
    fn an_unsigned_proposal_is_refused_with_the_threshold() {
        let g = Arc::new(example());
        let history = History::new(g.clone());
        let env = unsigned(&proposal(&g, Change::RemoveOrg { org: "x".into() }, 5));
        assert_eq!(
            history.approve(&env, 1),
            Err(GovernanceError::Unsigned { need: 2 })
        );
    }

    #[test]
    fn membership_apply_keeps_genesis_validation() {
        let g = Arc::new(example());
        let m = Membership::genesis(g.clone());
        // Removing an org that runs a validator is refused with its reason.
        let err = m
            .apply(
                &Change::RemoveOrg {
                    org: "food-agency".into(),
                },
                2,
            )
            .unwrap_err();
        assert!(err.contains("runs a validator"), "{err}");
        // Adding an org whose key another org holds fails genesis validation.
        let taken = g.orgs()[0].client_keys[0].to_hex();
        let err = m
            .apply(
                &Change::AddOrg {
                    org: OrgFile {
                        id: "newcomer".into(),
                        name: "Newcomer".into(),
                        role: crate::Role::Distributor,
                        client_keys: vec![taken],
                        encryption_key: None,
                    },
                },
                2,
            )
            .unwrap_err();
        assert!(
            err.contains("newcomer") || err.contains("more than once"),
            "{err}"
        );
        // A revoked key can not come back.
        let key = g.orgs()[0].client_keys[0];
        let m = m.apply(&Change::RevokeKey { key }, 7).unwrap();
        assert!(m.rules().key_owner(&key).is_none());
        assert_eq!(m.revoked_from(&key), Some(7));
        let err = m
            .apply(
                &Change::RotateKey {
                    org: g.orgs()[1].id.clone(),
                    old_key: g.orgs()[1].client_keys[0],
                    new_key: key,
                },
                8,
            )
            .unwrap_err();
        assert!(err.contains("revoked"), "{err}");
        assert_eq!(m.chain_id(), g.chain_id());
    }

    #[test]
    fn effect_order_and_void_changes_are_deterministic() {
        // Two signed changes included out of effect order: the state at
        // each height follows effect order, and a change that no longer
        // applies is void with its reason.
        let g = Arc::new(example());
        let keys = [
            crate::test_support::supplier_client(),
            crate::test_support::regulator_client(),
        ];
        let new_key = SigningKey::from_seed(&[77; 32]).public_key();
        let org = g.orgs()[0].id.clone();
        let old_key = g.orgs()[0].client_keys[0];
        let sign = |p: &Proposal| {
            let mut env = unsigned(p);
            for k in &keys {
                add_signature(&mut env, k);
            }
            env
        };
        let mut history = History::new(g.clone());
        let rotate = proposal(
            &g,
            Change::RotateKey {
                org: org.clone(),
                old_key,
                new_key,
            },
            20,
        );
        let revoke = Proposal {
            nonce: "n2".into(),
            ..proposal(&g, Change::RevokeKey { key: old_key }, 10)
        };
        history.record(3, 0, &sign(&rotate)).unwrap();
        history.record(4, 1, &sign(&revoke)).unwrap();
        assert!(history.at(9).rules().key_owner(&old_key).is_some());
        assert!(history.at(10).rules().key_owner(&old_key).is_none());
        assert!(history.at(25).rules().key_owner(&new_key).is_none());
        assert!(
            history.entries()[0]
                .void
                .as_deref()
                .is_some_and(|r| r.contains("is not a client key"))
        );
        assert_eq!(history.entries()[1].void, None);
    }

    /// Goal: receipts from before and after a key rotation verify offline
    /// with the genesis and the membership-history file alone; the old key
    /// fails after the change, the new one before it; a history whose
    /// transaction is under-signed or out of order is refused by name.
    #[test]
    fn receipts_verify_across_a_rotation_with_the_history_file() {
        use crate::test_support::{attestation, node_keys, receipt_at};
        let g = Arc::new(example());
        let nodes = node_keys();
        let signers = [(0, &nodes[0]), (1, &nodes[1])];
        let supplier = crate::test_support::supplier_client();
        let regulator = crate::test_support::regulator_client();
        let fresh = SigningKey::from_seed(&[88; 32]);
        let rotate = proposal(
            &g,
            Change::RotateKey {
                org: "acme-supplier".into(),
                old_key: supplier.public_key(),
                new_key: fresh.public_key(),
            },
            4,
        );
        let mut env = unsigned(&rotate);
        add_signature(&mut env, &supplier);
        add_signature(&mut env, &regulator);
        let file = HistoryFile::new(
            g.chain_id(),
            9,
            vec![receipt_at(g.chain_id(), 2, vec![env.clone()], &signers, 0)],
        );
        let json = serde_json::to_vec(&file).unwrap();
        let history = HistoryFile::from_json(&json)
            .unwrap()
            .follow(g.clone())
            .unwrap();
        assert_eq!(history.entries()[0].effective, 4);

        let by_new = attestation(g.chain_id(), "acme-supplier", &fresh, 1);
        let after = receipt_at(g.chain_id(), 5, vec![by_new.clone()], &signers, 0);
        assert!(matches!(
            g.verify_receipt(&after),
            Err(crate::ReceiptVerifyError::NotMember { .. })
        ));
        assert!(g.verify_receipt_in(&after, &history).is_ok());
        let too_early = receipt_at(g.chain_id(), 3, vec![by_new], &signers, 0);
        assert!(g.verify_receipt_in(&too_early, &history).is_err());
        let by_old = attestation(g.chain_id(), "acme-supplier", &supplier, 2);
        let before = receipt_at(g.chain_id(), 3, vec![by_old.clone()], &signers, 0);
        assert!(g.verify_receipt_in(&before, &history).is_ok());
        let late = receipt_at(g.chain_id(), 4, vec![by_old], &signers, 0);
        assert!(matches!(
            g.verify_receipt_in(&late, &history),
            Err(crate::ReceiptVerifyError::NotMember { .. })
        ));

        // Under threshold: one org of the two signed.
        let mut half = unsigned(&rotate);
        add_signature(&mut half, &supplier);
        let file = HistoryFile::new(
            g.chain_id(),
            9,
            vec![receipt_at(g.chain_id(), 2, vec![half], &signers, 0)],
        );
        assert!(matches!(
            file.follow(g.clone()),
            Err(HistoryFileError::Transaction {
                index: 0,
                source: GovernanceError::UnderThreshold {
                    have: 1,
                    need: 2,
                    ..
                }
            })
        ));
        // Out of order, and a certificate from too few validators.
        let r = receipt_at(g.chain_id(), 2, vec![env.clone()], &signers, 0);
        let file = HistoryFile::new(g.chain_id(), 9, vec![r.clone(), r]);
        assert_eq!(
            file.follow(g.clone()).unwrap_err(),
            HistoryFileError::OutOfOrder { index: 1 }
        );
        let weak = receipt_at(g.chain_id(), 2, vec![env], &signers[..1], 0);
        let file = HistoryFile::new(g.chain_id(), 9, vec![weak]);
        assert!(matches!(
            file.follow(g),
            Err(HistoryFileError::Receipt { index: 0, .. })
        ));
    }

    /// Goal: an added org can be removed again, a policy change replaces
    /// the write policy from its height, and a read-policy change replaces
    /// the read policy (checked by the genesis validation: naming an org
    /// that is not a member makes the change void).
    #[test]
    fn add_remove_and_policy_changes() {
        let g = Arc::new(example());
        let m = Membership::genesis(g.clone());
        let key = SigningKey::from_seed(&[66; 32]).public_key();
        let added = m
            .apply(
                &Change::AddOrg {
                    org: OrgFile {
                        id: "newcomer".into(),
                        name: "Newcomer".into(),
                        role: crate::Role::Supplier,
                        client_keys: vec![key.to_hex()],
                        encryption_key: None,
                    },
                },
                3,
            )
            .unwrap();
        assert_eq!(
            added.rules().key_owner(&key).map(|o| o.id.as_str()),
            Some("newcomer")
        );
        let removed = added
            .apply(
                &Change::RemoveOrg {
                    org: "newcomer".into(),
                },
                4,
            )
            .unwrap();
        assert!(removed.rules().key_owner(&key).is_none());
        assert!(
            removed
                .apply(
                    &Change::RemoveOrg {
                        org: "newcomer".into()
                    },
                    5
                )
                .unwrap_err()
                .contains("not a member")
        );

        // Only the regulator's rules remain: the supplier may write nothing.
        let file = GenesisFile::from_parts(&g);
        let regulator_only: Vec<PolicyFile> = file
            .policy
            .into_iter()
            .filter(|r| r.role == crate::Role::Regulator)
            .collect();
        let narrowed = m
            .apply(
                &Change::SetPolicy {
                    policy: regulator_only,
                    read_policy: None,
                },
                6,
            )
            .unwrap();
        let supplier = narrowed.rules().org("acme-supplier").unwrap();
        let event = crate::test_support::event(serde_json::json!({ "bizStep": "shipping" }));
        assert!(
            g.check_write(g.org("acme-supplier").unwrap(), &event)
                .is_ok()
        );
        assert!(matches!(
            narrowed.rules().check_write(supplier, &event),
            Err(crate::PolicyError::NoRule { .. })
        ));
        let closed = m
            .apply(
                &Change::SetPolicy {
                    policy: GenesisFile::from_parts(&g).policy,
                    read_policy: Some(ReadPolicyFile::default()),
                },
                6,
            )
            .unwrap();
        assert!(!g.read_policy().full_read_roles.is_empty());
        assert_eq!(*closed.rules().read_policy(), crate::ReadPolicy::default());
        let unknown = ReadPolicyFile {
            full_read_roles: Vec::new(),
            share: vec![crate::read_policy::ShareFile {
                from: "*".into(),
                to: vec!["org:nobody".into()],
                event_types: None,
                biz_steps: None,
                quality: None,
            }],
        };
        let err = m
            .apply(
                &Change::SetPolicy {
                    policy: Vec::new(),
                    read_policy: Some(unknown),
                },
                6,
            )
            .unwrap_err();
        assert!(err.contains("nobody"), "{err}");
    }
}
