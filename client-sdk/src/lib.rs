//! Builds, signs and submits Lotline attestations, queries a node, and
//! verifies receipts offline.
//!
//! Non-features, on purpose: this crate never depends on `lotline-node`, and
//! checking a receipt needs no node at all: only the genesis file the verifier
//! pinned ([`verify_receipt`]). A node is trusted for availability, never for
//! truth: what it says is committed is proven by the receipt. It retries a
//! request only when the node turned it away for load (`429`, or `503` with
//! `Retry-After`: nothing was done), honouring `Retry-After` with jitter and
//! a bounded number of attempts ([`RetryPolicy`]); it never retries after a
//! timeout, which leaves the outcome unknown (see [`SdkError::Timeout`]). It
//! keeps no local state.
//!
//! ```no_run
//! # async fn demo(event: lotline_core::epcis::Event) -> Result<(), Box<dyn std::error::Error>> {
//! use lotline_sdk::{AttestationBuilder, Client, Signer};
//! let genesis = lotline_genesis::Genesis::load("genesis.toml")?;
//! let signer = Signer::from_key_file("supplier", "supplier.key")?;
//! let envelope = AttestationBuilder::new(genesis.chain_id(), &signer).event(event).build()?;
//! let verified = Client::new("http://127.0.0.1:8080")?.submit_and_verify(&envelope, &genesis).await?;
//! println!("{} committed at height {}", verified.id, verified.height);
//! # Ok(()) }
//! ```
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

mod builder;
mod bundle;
mod client;
mod error;
mod retry;
mod signer;
mod trace;

pub use builder::{AttestationBuilder, open_private, open_private_with};
pub use bundle::{BundleReport, ReceiptVerdict, verify_bundle};
pub use client::{Client, DEFAULT_TIMEOUT, encode_segment};
pub use error::SdkError;
/// Governance transactions: build ([`governance::unsigned`]), sign
/// ([`Signer::sign_governance`]), submit ([`Client::submit`]) and follow
/// the membership history ([`Client::membership_history`]).
pub use lotline_genesis::governance;
pub use retry::RetryPolicy;
pub use signer::Signer;
pub use trace::{TraceVerifyError, VerifiedTrace, verify_trace};

pub use lotline_core::api::Wait;
pub use lotline_core::epcis::{Event, EventProblem};
pub use lotline_core::private::{Disclosure, EncryptionSecretKey};
pub use lotline_core::verify_receipt as verify_receipt_with_validators;
pub use lotline_core::{AttestationId, Envelope, Receipt, Statement, VerifiedReceipt, api};
pub use lotline_genesis::{Genesis, ReceiptVerifyError};

/// Verifies a receipt offline against a pinned genesis: the attestation's
/// signature, its inclusion in the block, the block's finalization
/// certificate by a quorum of the genesis validators, and that the signer is
/// a member key. No node is contacted.
pub fn verify_receipt(
    receipt: &Receipt,
    genesis: &Genesis,
) -> Result<VerifiedReceipt, ReceiptVerifyError> {
    genesis.verify_receipt(receipt)
}

/// [`verify_receipt`], and that the receipt is for attestation `id`: what to
/// check when a node hands out a receipt for an id the caller asked about.
pub fn verify_receipt_for(
    id: &AttestationId,
    receipt: &Receipt,
    genesis: &Genesis,
) -> Result<VerifiedReceipt, SdkError> {
    let verified = genesis.verify_receipt(receipt)?;
    if verified.id != *id {
        return Err(SdkError::ReceiptMismatch {
            expected: *id,
            got: verified.id,
        });
    }
    Ok(verified)
}
