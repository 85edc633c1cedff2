//! A memo of ZIP-215 verdicts shared by the simulated validators of one
//! run: each distinct (key, message, signature) is verified once, for real,
//! and every validator gets the same verdict it would have computed. This is
//! what makes hundreds of seeds fit a debug-build CI budget.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use lotline_consensus::Verifier;
use lotline_core::crypto::{PublicKey, Signature};

type Key = ([u8; 32], [u8; 64], Vec<u8>);

#[derive(Debug, Default)]
pub struct MemoVerifier {
    memo: Mutex<BTreeMap<Key, bool>>,
    lookups: AtomicU64,
}

impl MemoVerifier {
    /// (verdicts asked for, signatures really verified).
    pub fn counts(&self) -> (u64, u64) {
        let verified = match self.memo.lock() {
            Ok(memo) => memo.len(),
            Err(poisoned) => poisoned.into_inner().len(),
        };
        (self.lookups.load(Ordering::Relaxed), verified as u64)
    }
}

impl Verifier for MemoVerifier {
    fn verify(&self, items: &[(PublicKey, &[u8], Signature)]) -> Vec<bool> {
        let mut memo = match self.memo.lock() {
            Ok(memo) => memo,
            Err(poisoned) => poisoned.into_inner(),
        };
        self.lookups
            .fetch_add(items.len() as u64, Ordering::Relaxed);
        items
            .iter()
            .map(|(key, msg, sig)| {
                *memo
                    .entry((key.0, sig.0, msg.to_vec()))
                    .or_insert_with(|| key.verify(msg, sig).is_ok())
            })
            .collect()
    }
}
