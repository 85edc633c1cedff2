//! Validator votes and the exact bytes a validator signs.
//!
//! ```text
//! signed = "lotline/v1/vote" || chain_id (32) || epoch (u64 BE) || kind (u8) || view (u64 BE) || block (32)
//! ```
//! `nullify` carries no block; its block field is all zeros. The chain id binds
//! a vote to one consortium, the kind keeps a notarize from counting as a
//! finalize, and the view keeps old votes from being replayed.

use serde::{Deserialize, Serialize};

use crate::crypto::{PublicKey, Signature, SignatureError, SigningKey};
use crate::hash::Digest;

/// The namespace prefix of every vote signature.
pub const VOTE_NAMESPACE: &[u8] = b"lotline/v1/vote";

/// The kinds of vote in the Simplex-style protocol. Tags are explicit bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum VoteKind {
    Notarize = 0,
    Nullify = 1,
    Finalize = 2,
}

/// A vote as signed: who, what kind, which view, which block.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Vote {
    pub kind: VoteKind,
    pub epoch: u64,
    pub view: u64,
    /// The block hash; [`Digest::ZERO`] for nullify.
    pub block: Digest,
    pub signer: u16,
    pub signature: Signature,
}

/// The bytes a validator signs for a vote.
pub fn signing_bytes(
    chain_id: &Digest,
    kind: VoteKind,
    epoch: u64,
    view: u64,
    block: &Digest,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(VOTE_NAMESPACE.len() + 32 + 8 + 1 + 8 + 32);
    out.extend_from_slice(VOTE_NAMESPACE);
    out.extend_from_slice(chain_id.as_bytes());
    out.extend_from_slice(&epoch.to_be_bytes());
    out.push(kind as u8);
    out.extend_from_slice(&view.to_be_bytes());
    out.extend_from_slice(block.as_bytes());
    out
}

impl Vote {
    /// A vote of epoch 0 (the genesis validator set).
    pub fn sign(
        key: &SigningKey,
        signer: u16,
        chain_id: &Digest,
        kind: VoteKind,
        view: u64,
        block: Digest,
    ) -> Vote {
        Vote::sign_in(key, signer, chain_id, 0, kind, view, block)
    }

    /// A vote of `epoch`: `signer` is the index in that epoch's validator
    /// set, and the epoch is signed, so a vote never counts in another.
    pub fn sign_in(
        key: &SigningKey,
        signer: u16,
        chain_id: &Digest,
        epoch: u64,
        kind: VoteKind,
        view: u64,
        block: Digest,
    ) -> Vote {
        let block = if kind == VoteKind::Nullify {
            Digest::ZERO
        } else {
            block
        };
        let signature = key.sign(&signing_bytes(chain_id, kind, epoch, view, &block));
        Vote {
            kind,
            epoch,
            view,
            block,
            signer,
            signature,
        }
    }

    pub fn signing_bytes(&self, chain_id: &Digest) -> Vec<u8> {
        signing_bytes(chain_id, self.kind, self.epoch, self.view, &self.block)
    }

    pub fn verify(&self, chain_id: &Digest, key: &PublicKey) -> Result<(), SignatureError> {
        key.verify(&self.signing_bytes(chain_id), &self.signature)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kind_view_and_chain_are_bound() {
        let key = SigningKey::from_seed(&[3; 32]);
        let chain = Digest([1; 32]);
        let block = Digest([2; 32]);
        let vote = Vote::sign(&key, 0, &chain, VoteKind::Notarize, 7, block);
        assert!(vote.verify(&chain, &key.public_key()).is_ok());
        let mut as_finalize = vote;
        as_finalize.kind = VoteKind::Finalize;
        assert!(as_finalize.verify(&chain, &key.public_key()).is_err());
        let mut other_view = vote;
        other_view.view = 8;
        assert!(other_view.verify(&chain, &key.public_key()).is_err());
        assert!(vote.verify(&Digest([9; 32]), &key.public_key()).is_err());
    }

    #[test]
    fn nullify_signs_no_block() {
        let key = SigningKey::from_seed(&[3; 32]);
        let vote = Vote::sign(
            &key,
            0,
            &Digest::ZERO,
            VoteKind::Nullify,
            1,
            Digest([5; 32]),
        );
        assert_eq!(vote.block, Digest::ZERO);
    }
}
