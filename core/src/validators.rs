//! The validator set a certificate is checked against: the chain id, the
//! epoch and the ordered validator keys (the genesis's in epoch 0, later
//! ones from governance). This is all an offline verifier needs.

use serde::{Deserialize, Serialize};

use crate::crypto::PublicKey;
use crate::hash::Digest;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorSet {
    pub chain_id: Digest,
    /// In genesis order; a validator's index is its position here.
    pub validators: Vec<PublicKey>,
    /// The epoch these validators vote in (0: the genesis set). A
    /// certificate of another epoch does not verify against this set:
    /// indices and keys mean something else there.
    #[serde(default)]
    pub epoch: u64,
}

impl ValidatorSet {
    /// The set of epoch 0.
    pub fn new(chain_id: Digest, validators: Vec<PublicKey>) -> ValidatorSet {
        ValidatorSet {
            chain_id,
            validators,
            epoch: 0,
        }
    }

    /// This set as the validators of `epoch`.
    pub fn in_epoch(self, epoch: u64) -> ValidatorSet {
        ValidatorSet { epoch, ..self }
    }

    pub fn len(&self) -> usize {
        self.validators.len()
    }

    pub fn is_empty(&self) -> bool {
        self.validators.is_empty()
    }

    /// f = floor((n - 1) / 3): the faults tolerated.
    pub fn max_faulty(&self) -> usize {
        self.len().saturating_sub(1) / 3
    }

    /// q = n - f distinct signatures make a certificate. Any two quorums then
    /// intersect in at least f + 1 validators, for every n (not only 3f + 1).
    pub fn quorum(&self) -> usize {
        self.len() - self.max_faulty()
    }

    pub fn key(&self, index: u16) -> Option<&PublicKey> {
        self.validators.get(usize::from(index))
    }

    pub fn index_of(&self, key: &PublicKey) -> Option<u16> {
        self.validators
            .iter()
            .position(|k| k == key)
            .and_then(|i| u16::try_from(i).ok())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_n_minus_f() {
        let expect = [
            (1, 0, 1),
            (2, 0, 2),
            (3, 0, 3),
            (4, 1, 3),
            (5, 1, 4),
            (6, 1, 5),
            (7, 2, 5),
        ];
        for (n, f, q) in expect {
            let set = ValidatorSet::new(Digest::ZERO, vec![PublicKey([0; 32]); n]);
            assert_eq!((set.max_faulty(), set.quorum()), (f, q), "n = {n}");
            // Quorum intersection: 2q - n >= f + 1.
            assert!(2 * q > n + f, "n = {n}");
        }
    }
}
