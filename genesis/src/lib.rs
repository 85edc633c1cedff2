//! Defines a Lotline consortium: orgs, roles, keys, write policy, consensus parameters, chain id.
//!
//! A genesis file lists the member organisations and their roles, their client
//! (attestation) keys and validator node keys, the write policy per role and
//! the consensus parameters; the chain id is the hash of all of them.
//!
//! Non-features, on purpose: this crate runs no node, opens no socket and
//! reads no clock; it does not enforce custody (which lots an org holds is
//! the node's trace index's business). The genesis itself never changes;
//! membership changes voted on chain are applied on top of it by
//! [`governance`], which yields the membership at each height as another
//! validated [`Genesis`] (same rules) under the original chain id.
//! Its only I/O is reading a genesis file and reading or writing key files.
//!
//! # The genesis file
//!
//! ```toml
//! chain_name = "lotline-demo"
//!
//! [consensus]
//! block_max_attestations = 1000   # cut a block at this many attestations
//! block_interval_ms = 50          # or after this long; also caps the 20 ms
//!                                 # a BFT leader keeps between blocks under load
//! timeout_base_ms = 1000          # Simplex view timeout before nullifications
//! timeout_max_ms = 30000          # cap of the growing timeout
//!
//! [[orgs]]
//! id = "acme-supplier"            # [a-z0-9-]{1,64}; statements name their org by it
//! name = "Acme Raw Materials"
//! role = "supplier"               # supplier, manufacturer, distributor, retailer,
//!                                 # logistics, regulator or auditor
//! client_keys = ["8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c"]
//! # encryption_key = "<64 hex>"  # optional X25519 key: private fields (statement
//!                                # version 2) are wrapped to it; see docs/confidentiality.md
//!
//! [[orgs]]
//! id = "food-agency"
//! name = "Food Safety Agency"
//! role = "regulator"
//! client_keys = ["8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"]
//!
//! # Validator order is the certificate index and leader rotation order.
//! [[validators]]
//! org = "acme-supplier"
//! node_key = "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1"
//! p2p = "/ip4/127.0.0.1/tcp/7101"  # optional; not part of the chain id
//!
//! [[validators]]
//! org = "food-agency"
//! node_key = "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c"
//!
//! # Optional: nodes of member orgs that follow the chain without voting
//! # (admitted by every node; governance addNode/removeNode change them).
//! # [[followers]]
//! # org = "acme-supplier"
//! # node_key = "<64 hex>"
//! # p2p = "/ip4/127.0.0.1/tcp/7103"
//!
//! # An event is allowed when one rule for the org's role allows its event
//! # type, its bizStep and the kind of its lotline:quality fact (if any).
//! [[policy]]
//! role = "supplier"
//! event_types = ["ObjectEvent", "AggregationEvent", "TransactionEvent"]
//! biz_steps = ["commissioning", "inspecting", "packing", "shipping"]   # CBV short names
//! quality = ["inspection", "certificate", "document"]
//!
//! [[policy]]
//! role = "regulator"
//! event_types = ["ObjectEvent"]
//! biz_steps = ["*"]               # any bizStep, and events without one
//! quality = ["inspection", "nonConformance", "recallOrder", "document"]
//!
//! [read_policy]                   # optional; see `read_policy`
//! full_read_roles = ["regulator", "auditor"]  # roles that read everything
//!
//! [[read_policy.share]]           # commissioning and inspections are public
//! from = "*"
//! to = ["public"]
//! biz_steps = ["commissioning", "inspecting"]
//!
//! [[read_policy.share]]           # acme's shipments: every member, and manufacturers
//! from = "acme-supplier"
//! to = ["members", "role:manufacturer"]
//! biz_steps = ["shipping"]
//! ```
//!
//! Keys are lowercase hex of 32-byte Ed25519 public keys. A key
//! may appear only once in the whole file, and weak keys (small order or
//! non-canonical) are refused. An org whose role has no policy rule can not
//! write, only read. Quality kinds are `inspection`, `nonConformance`,
//! `recallOrder`, `certificate`, `document` and `alert` (a quality alert a
//! node states, bizStep `urn:lotline:bizstep:qualityAlert`; the default
//! policy lets every role state them).
//!
//! ```no_run
//! # fn main() -> Result<(), lotline_genesis::GenesisError> {
//! let genesis = lotline_genesis::Genesis::load("genesis.toml")?;
//! let validators = genesis.validator_set(); // all an offline verifier needs
//! println!("chain {} with {} validators", genesis.chain_id(), validators.len());
//! # Ok(()) }
//! ```
//!
//! # The chain id
//!
//! [`Genesis::chain_id`] is BLAKE3 in the `lotline/v1/genesis` domain of a
//! canonical postcard encoding of the validated content
//! ([`Genesis::canonical_bytes`]), so whitespace, comments, table style,
//! field order and the spelling of bizSteps (`shipping` or its CBV URN) do
//! not change it, and every value except validators' `p2p` hints does
//! (the read policy included: who may read what is a consortium rule). Orgs,
//! validators and rules keep file order.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod governance;
pub mod init;
pub mod keys;
mod model;
pub mod policy;
pub mod private;
pub mod read_policy;
mod receipt;
pub mod retention;
mod validate;

pub use governance::{
    Change, ChangeError, GovernanceError, History, HistoryFile, HistoryFileError, Membership,
    Proposal,
};
pub use init::{InitError, InitOutput, OrgSpec, RetentionSpec, init_consortium};
pub use model::{
    ConsensusParams, EPOCH_BLOCKS_DEFAULT, EPOCH_BLOCKS_MIN, Genesis, Org, Role, UnknownRole,
    Validator,
};
pub use policy::{ANY_BIZ_STEP, PolicyError, PolicyRule, default_policy};
pub use private::{RecipientError, SealError, Wrapping};
pub use read_policy::{
    Audience, ReadPolicy, ReadPolicyError, Reader, RecordFacts, ShareRule, default_read_policy,
};
pub use read_policy::{ReadPolicyFile, ShareFile};
pub use receipt::ReceiptVerifyError;
pub use retention::{Retention, RetentionClass, RetentionError};
pub use validate::{GenesisError, KeyUse, ORG_ID_BYTES_MAX, OrgFile, PolicyFile};

#[cfg(test)]
mod test_support;
