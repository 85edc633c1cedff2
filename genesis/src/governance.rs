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
//! - Follower nodes (`addNode`, `removeNode`) are org-like changes (the
//!   next height, no epoch): followers never vote. A node key that left
//!   (removed, rotated away) is retired: `addNode` refuses it,
//!   `revokeKey` accepts it.
//! - Validator-set changes (`addValidator`, `removeValidator`,
//!   `rotateNodeKey`) take effect only at an epoch boundary ([`boundary`]):
//!   the first multiple of the genesis `epoch_blocks` more than half of it
//!   above the inclusion height. Their outcome is fixed by the blocks below
//!   that (an org change committed later that would void one is void
//!   itself), so the node tells its engine the next epoch long before it
//!   starts. An org that runs a validator can not be removed.
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
    /// accepted in any change. A client key, a follower's node key (the
    /// follower leaves) or a node key that left (a removed validator, which
    /// otherwise keeps following; a rotated-away key); not the key of a
    /// validator in the set (`rotateNodeKey` first).
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
    /// A new validator, run by a member org, appended to the set at the
    /// next epoch boundary. `p2p` is its listen address (a hint, as in the
    /// genesis).
    #[serde(rename_all = "camelCase")]
    AddValidator {
        org: String,
        node_key: PublicKey,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p2p: Option<String>,
    },
    /// A validator leaves the set at the next epoch boundary. Named by its
    /// node key, not its index: an index shifts when an earlier change of
    /// the same epoch removes another validator, a key does not.
    #[serde(rename_all = "camelCase")]
    RemoveValidator { node_key: PublicKey },
    /// A validator signs with `newKey` from the next epoch boundary on; it
    /// keeps its place in the set.
    #[serde(rename_all = "camelCase")]
    RotateNodeKey {
        old_key: PublicKey,
        new_key: PublicKey,
    },
    /// A follower node run by a member org: the transport of every node
    /// admits `nodeKey` from the effect height on (the next height, as for
    /// org changes: followers never vote, so the validator set and the
    /// epochs stay as they are). It is served blocks and follows the chain.
    /// `p2p` is its listen address (a hint, as for a validator).
    #[serde(rename_all = "camelCase")]
    AddNode {
        org: String,
        node_key: PublicKey,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        p2p: Option<String>,
    },
    /// A follower node leaves: from the effect height on every node
    /// disconnects and refuses `nodeKey`. (A validator leaves by
    /// `removeValidator`; `removeOrg` and `revokeKey` retire followers too.)
    #[serde(rename_all = "camelCase")]
    RemoveNode { node_key: PublicKey },
    /// New consensus parameters from the effect height on; an absent one
    /// stays as it is. Only parameters that no block's validity depends on
    /// (how leaders cut blocks, how long validators wait): validators that
    /// apply them one block apart only propose or wait differently. The
    /// epoch length is not among them (it places every boundary).
    #[serde(rename_all = "camelCase")]
    SetConsensus {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_max_attestations: Option<u32>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        block_interval_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_base_ms: Option<u64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        timeout_max_ms: Option<u64>,
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
            Change::AddValidator { .. } => "addValidator",
            Change::RemoveValidator { .. } => "removeValidator",
            Change::RotateNodeKey { .. } => "rotateNodeKey",
            Change::SetConsensus { .. } => "setConsensus",
            Change::AddNode { .. } => "addNode",
            Change::RemoveNode { .. } => "removeNode",
        }
    }

    /// Whether it changes the validator set (and so takes effect at an
    /// epoch boundary).
    pub fn is_validator_change(&self) -> bool {
        matches!(
            self,
            Change::AddValidator { .. }
                | Change::RemoveValidator { .. }
                | Change::RotateNodeKey { .. }
        )
    }

    /// The height from which a change included at `height` holds:
    /// `max(effectiveHeight, height + 1)` for org, key and policy changes,
    /// the epoch [`boundary`] for validator-set changes.
    pub fn effect_height(&self, effective_height: u64, height: u64, epoch_blocks: u64) -> u64 {
        if self.is_validator_change() {
            boundary(height, effective_height, epoch_blocks)
        } else {
            effective_height.max(height.saturating_add(1))
        }
    }
}

/// The first height of the epoch a validator-set change included at
/// `height` starts: the first multiple of `epoch_blocks` more than
/// `epoch_blocks / 2` above `height`, and not below `effective_height`.
/// The block before it is the old epoch's last (its boundary block). The
/// margin lets every engine learn the next set long before it holds a
/// block at that height (docs/protocol.md, "Validator-set changes").
pub fn boundary(height: u64, effective_height: u64, epoch_blocks: u64) -> u64 {
    let epoch_blocks = epoch_blocks.max(2);
    let lowest = height
        .saturating_add(epoch_blocks / 2)
        .saturating_add(1)
        .max(effective_height);
    lowest.div_ceil(epoch_blocks).saturating_mul(epoch_blocks)
}

/// Why a change does not apply to a membership (it is then void, with
/// this reason; a submission is refused with it).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    #[error("org {0:?} is already a member")]
    OrgExists(String),
    #[error("org {0:?} is not a member")]
    NoSuchOrg(String),
    #[error("org {0:?} runs a validator: remove the validator first (removeValidator)")]
    RunsValidator(String),
    #[error("key {key} is not a client key of org {org:?}")]
    NotOrgKey { org: String, key: PublicKey },
    #[error("key {0} is neither a client key of a member org nor a follower's or retired node key")]
    NotClientKey(PublicKey),
    #[error("key {0} was revoked")]
    Revoked(PublicKey),
    #[error("node key {0} is already a validator's")]
    ValidatorExists(PublicKey),
    #[error("node key {0} is not a validator's")]
    NotValidator(PublicKey),
    #[error("node key {0} is already a follower node's: removeNode it first")]
    FollowerExists(PublicKey),
    #[error("node key {0} is not a follower node's")]
    NotFollower(PublicKey),
    #[error(
        "node key {0} was a node's key before (removed or rotated away): a node joins with a fresh key"
    )]
    RetiredNodeKey(PublicKey),
    #[error("the last validator can not be removed")]
    LastValidator,
    #[error("setConsensus names no parameter")]
    NoParameter,
    #[error(
        "it would void the validator change {id} already committed for height {from}: {reason}"
    )]
    BlocksValidatorChange {
        id: AttestationId,
        from: u64,
        reason: Box<ChangeError>,
    },
    #[error("the resulting membership is not a valid genesis: {0}")]
    Invalid(String),
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
    Inapplicable(ChangeError),
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
        payload: serde_json::to_vec(proposal).unwrap_or_default().into(),
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
    /// Node keys that left: removed or rotated-away validator keys, removed
    /// followers' keys. `addNode` refuses them (a key that leaked stays
    /// out), `revokeKey` accepts them (a removed validator still follows
    /// until its key is revoked or its org leaves).
    retired: BTreeSet<PublicKey>,
    /// The epoch of `rules().validators()` (0: the genesis set) and its
    /// first height.
    epoch: u64,
    epoch_from: u64,
}

impl Membership {
    /// The membership at height 1: the genesis itself.
    pub fn genesis(genesis: Arc<Genesis>) -> Membership {
        Membership {
            chain_id: genesis.chain_id(),
            rules: genesis,
            revoked: BTreeMap::new(),
            retired: BTreeSet::new(),
            epoch: 0,
            epoch_from: 1,
        }
    }

    /// The epoch in force (0: the genesis validators) and its first height.
    pub fn epoch(&self) -> (u64, u64) {
        (self.epoch, self.epoch_from)
    }

    /// The validators of the epoch in force, as certificates are checked
    /// against them: this chain's id, the epoch, the node keys in order.
    pub fn validator_set(&self) -> lotline_core::ValidatorSet {
        lotline_core::ValidatorSet::new(
            self.chain_id,
            self.rules.validators().iter().map(|v| v.node_key).collect(),
        )
        .in_epoch(self.epoch)
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

    /// The follower nodes in force (the genesis's `[[followers]]` with the
    /// `addNode`, `removeNode`, `removeOrg` and `revokeKey` changes that
    /// took effect): node keys the transport admits that never vote.
    pub fn followers(&self) -> &[crate::Validator] {
        self.rules.followers()
    }

    /// The height from which `key` is revoked, if it is.
    pub fn revoked_from(&self, key: &PublicKey) -> Option<u64> {
        self.revoked.get(key).copied()
    }

    /// This membership with `change` applied from height `from`, or why it
    /// does not apply. A validator-set change at a new `from` starts the
    /// next epoch there.
    pub fn apply(&self, change: &Change, from: u64) -> Result<Membership, ChangeError> {
        let mut file = GenesisFile::from_parts(&self.rules);
        let mut revoked = self.revoked.clone();
        let mut retired = self.retired.clone();
        let has_org = |file: &GenesisFile, id: &str| file.orgs.iter().any(|o| o.id == id);
        let validator = |file: &GenesisFile, key: &PublicKey| {
            let hex = key.to_hex();
            file.validators.iter().position(|v| v.node_key == hex)
        };
        let follower = |file: &GenesisFile, key: &PublicKey| {
            let hex = key.to_hex();
            file.followers.iter().position(|f| f.node_key == hex)
        };
        // A key new to a node entry: no validator's and no follower's.
        let unused_node_key = |file: &GenesisFile, key: &PublicKey| {
            if validator(file, key).is_some() {
                Err(ChangeError::ValidatorExists(*key))
            } else if follower(file, key).is_some() {
                Err(ChangeError::FollowerExists(*key))
            } else {
                Ok(())
            }
        };
        let not_revoked = |revoked: &BTreeMap<PublicKey, u64>, key: &PublicKey| {
            if revoked.contains_key(key) {
                Err(ChangeError::Revoked(*key))
            } else {
                Ok(())
            }
        };
        match change {
            Change::AddOrg { org } => {
                if has_org(&file, &org.id) {
                    return Err(ChangeError::OrgExists(org.id.clone()));
                }
                for key in &org.client_keys {
                    if let Ok(key) = PublicKey::from_hex(key) {
                        not_revoked(&revoked, &key)?;
                    }
                }
                file.orgs.push(org.clone());
            }
            Change::RemoveOrg { org } => {
                if !has_org(&file, org) {
                    return Err(ChangeError::NoSuchOrg(org.clone()));
                }
                if file.validators.iter().any(|v| &v.org == org) {
                    return Err(ChangeError::RunsValidator(org.clone()));
                }
                file.orgs.retain(|o| &o.id != org);
                // Its followers leave with it.
                let leaving = file.followers.iter().filter(|f| &f.org == org);
                retired.extend(leaving.filter_map(|f| PublicKey::from_hex(&f.node_key).ok()));
                file.followers.retain(|f| &f.org != org);
            }
            Change::RotateKey {
                org,
                old_key,
                new_key,
            } => {
                not_revoked(&revoked, new_key)?;
                let Some(entry) = file.orgs.iter_mut().find(|o| &o.id == org) else {
                    return Err(ChangeError::NoSuchOrg(org.clone()));
                };
                let old = old_key.to_hex();
                let Some(slot) = entry.client_keys.iter_mut().find(|k| **k == old) else {
                    return Err(ChangeError::NotOrgKey {
                        org: org.clone(),
                        key: *old_key,
                    });
                };
                *slot = new_key.to_hex();
            }
            Change::RevokeKey { key } => {
                let hex = key.to_hex();
                let owner = file.orgs.iter_mut().find(|o| o.client_keys.contains(&hex));
                if let Some(owner) = owner {
                    owner.client_keys.retain(|k| *k != hex);
                } else if let Some(at) = follower(&file, key) {
                    file.followers.remove(at);
                    retired.insert(*key);
                } else if !retired.contains(key) || validator(&file, key).is_some() {
                    return Err(ChangeError::NotClientKey(*key));
                }
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
            Change::AddValidator { org, node_key, p2p }
            | Change::AddNode { org, node_key, p2p } => {
                not_revoked(&revoked, node_key)?;
                if !has_org(&file, org) {
                    return Err(ChangeError::NoSuchOrg(org.clone()));
                }
                unused_node_key(&file, node_key)?;
                let list = if change.is_validator_change() {
                    retired.remove(node_key);
                    &mut file.validators
                } else if retired.contains(node_key) {
                    return Err(ChangeError::RetiredNodeKey(*node_key));
                } else {
                    &mut file.followers
                };
                list.push(crate::validate::ValidatorFile {
                    org: org.clone(),
                    node_key: node_key.to_hex(),
                    p2p: p2p.clone(),
                });
            }
            Change::RemoveValidator { node_key } => {
                let Some(at) = validator(&file, node_key) else {
                    return Err(ChangeError::NotValidator(*node_key));
                };
                if file.validators.len() == 1 {
                    return Err(ChangeError::LastValidator);
                }
                file.validators.remove(at);
                retired.insert(*node_key);
            }
            Change::SetConsensus {
                block_max_attestations,
                block_interval_ms,
                timeout_base_ms,
                timeout_max_ms,
            } => {
                if block_max_attestations.is_none()
                    && block_interval_ms.is_none()
                    && timeout_base_ms.is_none()
                    && timeout_max_ms.is_none()
                {
                    return Err(ChangeError::NoParameter);
                }
                let c = &mut file.consensus;
                c.block_max_attestations =
                    block_max_attestations.unwrap_or(c.block_max_attestations);
                c.block_interval_ms = block_interval_ms.unwrap_or(c.block_interval_ms);
                c.timeout_base_ms = timeout_base_ms.unwrap_or(c.timeout_base_ms);
                c.timeout_max_ms = timeout_max_ms.unwrap_or(c.timeout_max_ms);
            }
            Change::RotateNodeKey { old_key, new_key } => {
                not_revoked(&revoked, new_key)?;
                let Some(at) = validator(&file, old_key) else {
                    return Err(ChangeError::NotValidator(*old_key));
                };
                unused_node_key(&file, new_key)?;
                file.validators[at].node_key = new_key.to_hex();
                retired.insert(*old_key);
            }
            Change::RemoveNode { node_key } => {
                let Some(at) = follower(&file, node_key) else {
                    return Err(ChangeError::NotFollower(*node_key));
                };
                file.followers.remove(at);
                retired.insert(*node_key);
            }
        }
        let parts = file
            .into_typed()
            .map_err(|e| ChangeError::Invalid(e.to_string()))?;
        let (epoch, epoch_from) = if change.is_validator_change() && from != self.epoch_from {
            (self.epoch + 1, from)
        } else {
            (self.epoch, self.epoch_from)
        };
        Ok(Membership {
            chain_id: self.chain_id,
            rules: Arc::new(Genesis::finish(parts)),
            revoked,
            retired,
            epoch,
            epoch_from,
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
    /// `max(effectiveHeight, height + 1)`, or the epoch boundary for a
    /// validator-set change ([`Change::effect_height`]).
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

    /// Distinct member orgs a change needs: the quorum (n - f) of the
    /// validator set in force at its height, or every member org when
    /// there are fewer.
    pub fn threshold(&self, at: &Membership) -> usize {
        at.validator_set()
            .quorum()
            .min(at.rules().orgs().len())
            .max(1)
    }

    /// The validator set that certifies the block at `height`: its
    /// epoch's ([`Membership::validator_set`]).
    pub fn validator_set_at(&self, height: u64) -> lotline_core::ValidatorSet {
        self.at(height).validator_set()
    }

    /// The first epoch after the one in force at `height`, as far as the
    /// transactions recorded so far decide it: its membership (its
    /// validators and number). A validator-set change committed at `g`
    /// fixes the epoch it starts more than `epoch_blocks / 2` heights
    /// ahead, so a node tells its engine early.
    pub fn next_epoch(&self, height: u64) -> Option<Arc<Membership>> {
        let current = self.at(height).epoch;
        self.states
            .iter()
            .map(|(_, m)| m)
            .find(|m| m.epoch > current)
            .cloned()
    }

    /// The membership that starts epoch `number` (its validators), if the
    /// transactions recorded so far make one.
    pub fn epoch(&self, number: u64) -> Option<Arc<Membership>> {
        self.states
            .iter()
            .map(|(_, m)| m)
            .find(|m| m.epoch == number)
            .cloned()
    }

    /// The chain's epoch length (genesis `epoch_blocks`).
    pub fn epoch_blocks(&self) -> u64 {
        self.genesis.consensus().epoch_blocks
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
        let effective =
            proposal
                .change
                .effect_height(proposal.effective_height, height, self.epoch_blocks());
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
        for (step, &i) in order.iter().enumerate() {
            let entry = &self.entries[i];
            let applied = current
                .apply(&entry.proposal.change, entry.effective)
                .and_then(|next| {
                    if !entry.proposal.change.is_validator_change() {
                        self.keeps_pending(&current, &next, entry, &order[step + 1..])?;
                    }
                    Ok(next)
                });
            let entry = &mut self.entries[i];
            match applied {
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
                Err(reason) => entry.void = Some(reason.to_string()),
            }
        }
        self.states = states;
    }

    /// The rule that fixes an epoch early: an org, key or policy change
    /// (`next` = `current` with it applied) may not void a validator-set
    /// change committed before it that has not taken effect yet (`later`:
    /// the entries after it in effect order). Such a change is void
    /// itself, so the outcome of every validator change is decided by the
    /// blocks up to its own.
    fn keeps_pending(
        &self,
        current: &Membership,
        next: &Membership,
        entry: &Entry,
        later: &[usize],
    ) -> Result<(), ChangeError> {
        let mut without = current.clone();
        let mut with = next.clone();
        for &j in later {
            let pending = &self.entries[j];
            if !pending.proposal.change.is_validator_change()
                || (pending.height, pending.index) > (entry.height, entry.index)
            {
                continue;
            }
            let change = &pending.proposal.change;
            let Ok(after) = without.apply(change, pending.effective) else {
                continue;
            };
            match with.apply(change, pending.effective) {
                Ok(ok) => with = ok,
                Err(reason) => {
                    return Err(ChangeError::BlocksValidatorChange {
                        id: pending.id,
                        from: pending.effective,
                        reason: Box::new(reason),
                    });
                }
            }
            without = after;
        }
        Ok(())
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
        let from =
            proposal
                .change
                .effect_height(proposal.effective_height, next, self.epoch_blocks());
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
/// receipt proves its transaction final under the validators of its
/// block's epoch (which the receipts before it decided), and
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
        let mut history = History::new(genesis);
        let mut last = None;
        for (index, receipt) in self.receipts.iter().enumerate() {
            // Each receipt's certificate is checked against the validators
            // of its block's epoch, which the receipts before it decided.
            let set = history.validator_set_at(receipt.header.height);
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

    /// `addOrg` of the distributor "newcomer" with `client_keys`.
    fn add_newcomer(client_keys: Vec<String>) -> Change {
        Change::AddOrg {
            org: OrgFile {
                id: "newcomer".into(),
                name: "Newcomer".into(),
                role: crate::Role::Distributor,
                client_keys,
                encryption_key: None,
            },
        }
    }

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
        env.payload = b"{\"version\":1}".to_vec().into();
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
            .unwrap_err()
            .to_string();
        assert!(err.contains("runs a validator"), "{err}");
        // Adding an org whose key another org holds fails genesis validation.
        let taken = g.orgs()[0].client_keys[0].to_hex();
        let err = m
            .apply(&add_newcomer(vec![taken]), 2)
            .unwrap_err()
            .to_string();
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
            .unwrap_err()
            .to_string();
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
                .to_string()
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
            .unwrap_err()
            .to_string();
        assert!(err.contains("nobody"), "{err}");
    }

    fn signed_by_both(p: &Proposal) -> Envelope {
        let mut env = unsigned(p);
        add_signature(&mut env, &crate::test_support::supplier_client());
        add_signature(&mut env, &crate::test_support::regulator_client());
        env
    }

    /// Goal: `setConsensus` changes the named parameters from its height
    /// on, keeps the others and the epoch, takes effect like an org change
    /// (the next height), and a change that names none or breaks the
    /// genesis rules (base timeout above the cap, zero) does not apply.
    #[test]
    fn set_consensus_changes_only_the_named_parameters() {
        let g = Arc::new(example());
        let m = Membership::genesis(g.clone());
        let before = *g.consensus();
        let change = Change::SetConsensus {
            block_max_attestations: Some(7),
            block_interval_ms: None,
            timeout_base_ms: Some(before.timeout_max_ms),
            timeout_max_ms: None,
        };
        assert!(!change.is_validator_change());
        assert_eq!(change.effect_height(0, 40, 1000), 41);
        let set = m.apply(&change, 41).unwrap();
        let after = set.rules().consensus();
        assert_eq!(after.block_max_attestations, 7);
        assert_eq!(after.timeout_base_ms, before.timeout_max_ms);
        assert_eq!(after.block_interval_ms, before.block_interval_ms);
        assert_eq!(after.timeout_max_ms, before.timeout_max_ms);
        assert_eq!(after.epoch_blocks, before.epoch_blocks);
        assert_eq!(set.epoch(), m.epoch());
        assert_eq!(set.chain_id(), g.chain_id());

        let nothing = Change::SetConsensus {
            block_max_attestations: None,
            block_interval_ms: None,
            timeout_base_ms: None,
            timeout_max_ms: None,
        };
        assert_eq!(m.apply(&nothing, 41), Err(ChangeError::NoParameter));
        let inverted = Change::SetConsensus {
            block_max_attestations: None,
            block_interval_ms: None,
            timeout_base_ms: Some(before.timeout_max_ms + 1),
            timeout_max_ms: None,
        };
        assert!(matches!(
            m.apply(&inverted, 41),
            Err(ChangeError::Invalid(reason)) if reason.contains("timeout_base_ms")
        ));
        let zero = Change::SetConsensus {
            block_max_attestations: Some(0),
            block_interval_ms: None,
            timeout_base_ms: None,
            timeout_max_ms: None,
        };
        assert!(matches!(m.apply(&zero, 41), Err(ChangeError::Invalid(_))));
        // The proposal's JSON form names only what changes.
        let json = serde_json::to_value(&change).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"setConsensus": {"blockMaxAttestations": 7, "timeoutBaseMs": before.timeout_max_ms}})
        );
    }

    /// Goal: `addNode` admits a follower node of a member org from the
    /// next height on (no epoch boundary: the validator set and the epoch
    /// stay), `removeNode` retires it, and so do `revokeKey` of its key and
    /// `removeOrg` of its org. A key that is any node's key already, a
    /// client key, a revoked key or an org that is not a member is refused
    /// with its typed reason.
    #[test]
    fn follower_nodes_join_and_leave_by_vote() {
        let g = Arc::new(example());
        let node = SigningKey::from_seed(&[95; 32]).public_key();
        let add = Change::AddNode {
            org: "food-agency".into(),
            node_key: node,
            p2p: Some("/ip4/127.0.0.1/tcp/7109".into()),
        };
        assert!(!add.is_validator_change());
        assert_eq!(add.effect_height(0, 7, 10), 8);
        assert_eq!(
            serde_json::to_value(&add).unwrap(),
            serde_json::json!({"addNode": {"org": "food-agency", "nodeKey": node.to_hex(), "p2p": "/ip4/127.0.0.1/tcp/7109"}})
        );

        let mut history = History::new(g.clone());
        history
            .record(7, 0, &signed_by_both(&proposal(&g, add.clone(), 0)))
            .unwrap();
        assert_eq!(history.entries()[0].effective, 8);
        assert!(history.at(7).followers().is_empty());
        let with = history.at(8);
        assert_eq!(with.followers()[0].node_key, node);
        assert_eq!(with.followers()[0].org, "food-agency");
        assert_eq!(with.epoch(), (0, 1), "no new epoch");
        assert_eq!(with.validator_set(), history.at(7).validator_set());

        // Typed refusals.
        let validator = crate::test_support::node_keys()[0].public_key();
        let client = crate::test_support::supplier_client().public_key();
        let add_key = |key: PublicKey, org: &str| Change::AddNode {
            org: org.into(),
            node_key: key,
            p2p: None,
        };
        assert_eq!(
            with.apply(&add_key(node, "acme-supplier"), 9),
            Err(ChangeError::FollowerExists(node))
        );
        assert_eq!(
            with.apply(&add_key(validator, "acme-supplier"), 9),
            Err(ChangeError::ValidatorExists(validator))
        );
        assert!(matches!(
            with.apply(&add_key(client, "acme-supplier"), 9),
            Err(ChangeError::Invalid(reason)) if reason.contains("client key")
        ));
        let fresh = SigningKey::from_seed(&[96; 32]).public_key();
        assert_eq!(
            with.apply(&add_key(fresh, "nobody"), 9),
            Err(ChangeError::NoSuchOrg("nobody".into()))
        );
        assert_eq!(
            with.apply(
                &Change::AddValidator {
                    org: "food-agency".into(),
                    node_key: node,
                    p2p: None
                },
                10
            ),
            Err(ChangeError::FollowerExists(node))
        );
        assert_eq!(
            with.apply(&Change::RemoveNode { node_key: fresh }, 9),
            Err(ChangeError::NotFollower(fresh))
        );
        assert_eq!(
            with.apply(
                &Change::RemoveNode {
                    node_key: validator
                },
                9
            ),
            Err(ChangeError::NotFollower(validator))
        );

        // removeNode, from the next height on.
        let remove = Proposal {
            nonce: "n2".into(),
            ..proposal(&g, Change::RemoveNode { node_key: node }, 12)
        };
        history.check_new(&signed_by_both(&remove), 12).unwrap();
        history.record(12, 0, &signed_by_both(&remove)).unwrap();
        assert_eq!(history.at(12).followers().len(), 1);
        assert!(history.at(13).followers().is_empty());

        // revokeKey retires a follower for good.
        let revoked = with.apply(&Change::RevokeKey { key: node }, 9).unwrap();
        assert!(revoked.followers().is_empty());
        assert_eq!(revoked.revoked_from(&node), Some(9));
        assert_eq!(
            revoked.apply(&add_key(node, "food-agency"), 10),
            Err(ChangeError::Revoked(node))
        );

        // A node key that left does not come back as a follower; a removed
        // validator's key (it still follows) can be revoked, not a
        // validator's in the set.
        let second = crate::test_support::node_keys()[1].public_key();
        let removed = with
            .apply(&Change::RemoveValidator { node_key: second }, 10)
            .unwrap();
        assert_eq!(
            removed.apply(&add_key(second, "food-agency"), 11),
            Err(ChangeError::RetiredNodeKey(second))
        );
        let cut_off = removed
            .apply(&Change::RevokeKey { key: second }, 11)
            .unwrap();
        assert_eq!(cut_off.revoked_from(&second), Some(11));
        assert_eq!(
            with.apply(&Change::RevokeKey { key: validator }, 9),
            Err(ChangeError::NotClientKey(validator))
        );
        let gone_node = history.at(13);
        assert_eq!(
            gone_node.apply(&add_key(node, "food-agency"), 14),
            Err(ChangeError::RetiredNodeKey(node))
        );
        let back = removed
            .apply(
                &Change::AddValidator {
                    org: "food-agency".into(),
                    node_key: second,
                    p2p: None,
                },
                20,
            )
            .unwrap();
        assert_eq!(
            back.apply(&Change::RevokeKey { key: second }, 21),
            Err(ChangeError::NotClientKey(second)),
            "a validator again"
        );

        // removeOrg takes the org's followers with it.
        let newcomer = with
            .apply(&add_newcomer(Vec::new()), 9)
            .unwrap()
            .apply(&add_key(fresh, "newcomer"), 9)
            .unwrap();
        assert_eq!(newcomer.followers().len(), 2);
        let gone = newcomer
            .apply(
                &Change::RemoveOrg {
                    org: "newcomer".into(),
                },
                10,
            )
            .unwrap();
        assert_eq!(gone.followers().len(), 1);
        assert_eq!(gone.followers()[0].node_key, node);
    }

    #[test]
    fn the_boundary_is_the_first_multiple_more_than_half_an_epoch_ahead() {
        assert_eq!(boundary(3, 0, 10), 10);
        assert_eq!(boundary(4, 0, 10), 10);
        assert_eq!(boundary(5, 0, 10), 20);
        assert_eq!(boundary(9, 0, 10), 20);
        assert_eq!(boundary(5, 25, 10), 30);
        assert_eq!(boundary(1, 0, 1000), 1000);
        assert_eq!(boundary(500, 0, 1000), 2000);
        let add = Change::RemoveValidator {
            node_key: SigningKey::from_seed(&[1; 32]).public_key(),
        };
        assert_eq!(add.effect_height(0, 12, 10), 20);
        let org = Change::RemoveOrg { org: "x".into() };
        assert_eq!(org.effect_height(0, 12, 10), 13);
    }

    /// Goal: validator-set changes take effect at their epoch boundary and
    /// start a new epoch there; the threshold follows the set in force; a
    /// change that does not apply is refused or void with a typed reason;
    /// an org change that would void a pending validator change is void.
    #[test]
    fn validator_changes_make_epochs_at_their_boundary() {
        let g = Arc::new(crate::test_support::example_with_epochs(10));
        assert_eq!(g.consensus().epoch_blocks, 10);
        let third = SigningKey::from_seed(&[90; 32]).public_key();
        let first = crate::test_support::node_keys()[0].public_key();
        let mut history = History::new(g.clone());
        let add = proposal(
            &g,
            Change::AddValidator {
                org: "acme-supplier".into(),
                node_key: third,
                p2p: Some("/ip4/127.0.0.1/tcp/7103".into()),
            },
            0,
        );
        history.record(3, 0, &signed_by_both(&add)).unwrap();
        assert_eq!(history.entries()[0].effective, 10);
        assert_eq!(history.at(9).epoch(), (0, 1));
        assert_eq!(history.validator_set_at(9).len(), 2);
        let next = history.next_epoch(4).unwrap();
        assert_eq!(next.epoch(), (1, 10));
        let set = history.validator_set_at(10);
        assert_eq!((set.epoch, set.len()), (1, 3));
        assert_eq!(set.validators[2], third);
        assert_eq!(
            history.at(10).rules().validators()[2].p2p.as_deref(),
            Some("/ip4/127.0.0.1/tcp/7103")
        );
        // n = 3 has a quorum of 3, capped by the two member orgs.
        assert_eq!(history.threshold(&history.at(10)), 2);

        // Removing the first validator at height 12: epoch 2 from 20, the
        // others move up one place.
        let remove = Proposal {
            nonce: "n2".into(),
            ..proposal(&g, Change::RemoveValidator { node_key: first }, 0)
        };
        history.record(12, 0, &signed_by_both(&remove)).unwrap();
        let set = history.validator_set_at(20);
        assert_eq!((set.epoch, set.len()), (2, 2));
        assert_eq!(set.validators[1], third);
        assert!(history.next_epoch(20).is_none());
        assert_eq!(history.next_epoch(15).unwrap().epoch(), (2, 20));

        // Typed refusals at submission.
        let again = Proposal {
            nonce: "n3".into(),
            ..proposal(&g, Change::RemoveValidator { node_key: first }, 21)
        };
        assert!(matches!(
            history.check_new(&signed_by_both(&again), 21),
            Err(GovernanceError::Inapplicable(ChangeError::NotValidator(k))) if k == first
        ));
        let rotate_onto = Proposal {
            nonce: "n4".into(),
            ..proposal(
                &g,
                Change::RotateNodeKey {
                    old_key: third,
                    new_key: crate::test_support::node_keys()[1].public_key(),
                },
                21,
            )
        };
        assert!(matches!(
            history.check_new(&signed_by_both(&rotate_onto), 21),
            Err(GovernanceError::Inapplicable(ChangeError::ValidatorExists(
                _
            )))
        ));
        let client = crate::test_support::supplier_client().public_key();
        let rotate_to_client = Proposal {
            nonce: "n5".into(),
            ..proposal(
                &g,
                Change::RotateNodeKey {
                    old_key: third,
                    new_key: client,
                },
                21,
            )
        };
        assert!(matches!(
            history.check_new(&signed_by_both(&rotate_to_client), 21),
            Err(GovernanceError::Inapplicable(ChangeError::Invalid(_)))
        ));
        let fresh = SigningKey::from_seed(&[91; 32]).public_key();
        let rotate = Proposal {
            nonce: "n6".into(),
            ..proposal(
                &g,
                Change::RotateNodeKey {
                    old_key: third,
                    new_key: fresh,
                },
                21,
            )
        };
        history.check_new(&signed_by_both(&rotate), 21).unwrap();
        history.record(21, 0, &signed_by_both(&rotate)).unwrap();
        let set = history.validator_set_at(30);
        assert_eq!((set.epoch, set.validators[1]), (3, fresh));
        let one = history
            .at(30)
            .apply(&Change::RemoveValidator { node_key: fresh }, 40)
            .unwrap();
        assert_eq!(
            one.apply(
                &Change::RemoveValidator {
                    node_key: set.validators[0]
                },
                40
            ),
            Err(ChangeError::LastValidator)
        );
    }

    #[test]
    fn an_org_change_that_would_void_a_pending_validator_change_is_void() {
        let g = Arc::new(crate::test_support::example_with_epochs(10));
        let key = SigningKey::from_seed(&[92; 32]).public_key();
        let mut history = History::new(g.clone());
        let join = proposal(
            &g,
            add_newcomer(vec![SigningKey::from_seed(&[93; 32]).public_key().to_hex()]),
            0,
        );
        history.record(2, 0, &signed_by_both(&join)).unwrap();
        let add = Proposal {
            nonce: "n2".into(),
            ..proposal(
                &g,
                Change::AddValidator {
                    org: "newcomer".into(),
                    node_key: key,
                    p2p: None,
                },
                0,
            )
        };
        history.record(4, 0, &signed_by_both(&add)).unwrap();
        // Now three orgs: the threshold is still 2 (quorum of two validators).
        let leave = Proposal {
            nonce: "n3".into(),
            ..proposal(
                &g,
                Change::RemoveOrg {
                    org: "newcomer".into(),
                },
                0,
            )
        };
        history.record(5, 0, &signed_by_both(&leave)).unwrap();
        assert!(matches!(
            history.entries()[2].void.as_deref(),
            Some(reason) if reason.contains("would void the validator change")
        ));
        assert!(history.at(7).rules().org("newcomer").is_some());
        assert_eq!(history.validator_set_at(10).validators[2], key);
        assert_eq!(history.entries()[1].void, None);
    }

    /// Goal: the history file is followed epoch by epoch: a receipt after
    /// the boundary verifies against the new set (its certificate of the
    /// new epoch), not the genesis one; a certificate of the old epoch at a
    /// height of the new one is refused.
    #[test]
    fn receipts_verify_against_their_epochs_set() {
        use crate::test_support::{attestation, node_keys, receipt_at, receipt_in_epoch};
        let g = Arc::new(crate::test_support::example_with_epochs(10));
        let nodes = node_keys();
        let third = SigningKey::from_seed(&[94; 32]);
        let add = proposal(
            &g,
            Change::AddValidator {
                org: "food-agency".into(),
                node_key: third.public_key(),
                p2p: None,
            },
            0,
        );
        let genesis_signers = [(0, &nodes[0]), (1, &nodes[1])];
        let file = HistoryFile::new(
            g.chain_id(),
            15,
            vec![receipt_at(
                g.chain_id(),
                3,
                vec![signed_by_both(&add)],
                &genesis_signers,
                0,
            )],
        );
        let history = file.follow(g.clone()).unwrap();
        assert_eq!(history.validator_set_at(10).len(), 3);

        let supplier = crate::test_support::supplier_client();
        let three = [(0, &nodes[0]), (1, &nodes[1]), (2, &third)];
        let after = receipt_in_epoch(
            g.chain_id(),
            12,
            1,
            vec![attestation(g.chain_id(), "acme-supplier", &supplier, 1)],
            &three,
            0,
        );
        assert!(g.verify_receipt_in(&after, &history).is_ok());
        // The genesis alone does not know epoch 1.
        assert!(g.verify_receipt(&after).is_err());
        // Two genesis validators signing in epoch 0 at height 12: refused.
        let stale = receipt_at(
            g.chain_id(),
            12,
            vec![attestation(g.chain_id(), "acme-supplier", &supplier, 2)],
            &genesis_signers,
            0,
        );
        assert!(matches!(
            g.verify_receipt_in(&stale, &history),
            Err(crate::ReceiptVerifyError::Receipt(_))
        ));
        // Before the boundary the genesis set still certifies.
        let before = receipt_at(
            g.chain_id(),
            9,
            vec![attestation(g.chain_id(), "acme-supplier", &supplier, 3)],
            &genesis_signers,
            0,
        );
        assert!(g.verify_receipt_in(&before, &history).is_ok());
    }
}
