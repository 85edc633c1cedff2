//! Lotline's pure types and rules: what an attestation is, how it is signed,
//! how blocks commit to attestations, and how anyone verifies a receipt.
//!
//! Non-features, on purpose: this crate does no I/O, reads no clock, spawns no
//! task and knows nothing of tokio, sled or libp2p. Everything here is a pure
//! function of its inputs so the node, the SDK and the simulator share one
//! definition of every rule.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod api;
pub mod at_rest;
pub mod attestation;
pub mod block;
pub mod bundle;
pub mod certificate;
pub mod codec;
pub mod crypto;
pub mod epcis;
pub mod evidence;
pub mod gs1;
pub mod hash;
pub mod limits;
pub mod lineage;
pub mod merkle;
pub mod private;
pub mod receipt;
pub mod statement;
pub mod time;
pub mod trace;
pub mod validators;
pub mod vote;

pub use attestation::{AttestationId, Envelope};
pub use block::{Block, BlockHash, Header};
pub use certificate::Certificate;
pub use crypto::{PublicKey, Signature, SigningKey};
pub use hash::Digest;
pub use receipt::{Certified, Receipt, VerifiedReceipt, verify_certified, verify_receipt};
pub use statement::Statement;
pub use validators::ValidatorSet;
