//! What a node derives from a key period's plaintext and keeps on its own
//! disk (the measurements it opened at commit, for its charts and alerts)
//! is sealed under a key derived from the org's secret key **for that
//! period** ([`PeriodAtRestKey`]). The key exists only while the period
//! key file does: once the period is shredded (`keyPeriod`, see
//! [`crate::private`]), what the node derived is as unreadable as the
//! section it came from, wherever sled or the file system left its bytes.
//!
//! The encryption is deterministic on purpose: each entry is sealed under
//! its own key, BLAKE3 keyed by the period key over the entry's name (the
//! caller's store key, which names one entry and is written once), with
//! ChaCha20Poly1305 and a zero nonce, so a rebuild of the index from the
//! block log writes the same bytes. The entry's name is the associated
//! data: an entry moved to another name does not open. Names themselves
//! carry no plaintext: [`PeriodAtRestKey::tag`] turns a searchable name
//! (a series) into 16 bytes only the key holder can recompute.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use zeroize::Zeroizing;

use crate::private::EncryptionSecretKey;

/// The derivation context of the period's at-rest key (BLAKE3 `derive_key`).
const CONTEXT: &str = "lotline/v1/at-rest-period-key";
/// Domain of a tag (the first input byte of the keyed hash).
const TAG: u8 = 1;
/// Domain of an entry key.
const ENTRY: u8 = 2;

/// The at-rest key of one key period on one node (module doc). Never
/// printed: `Debug` shows the period only.
#[derive(Clone)]
pub struct PeriodAtRestKey {
    period: u64,
    key: Zeroizing<[u8; 32]>,
}

impl std::fmt::Debug for PeriodAtRestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PeriodAtRestKey(period {})", self.period)
    }
}

/// An entry that does not open under this key (another period's, or
/// altered).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("an at-rest entry of key period {0} does not open under its key")]
pub struct AtRestError(pub u64);

impl PeriodAtRestKey {
    /// The at-rest key of `period`, from the org's secret key for it.
    pub fn derive(period: u64, secret: &EncryptionSecretKey) -> PeriodAtRestKey {
        let mut material = Zeroizing::new([0u8; 40]);
        material[..8].copy_from_slice(&period.to_be_bytes());
        material[8..].copy_from_slice(secret.secret_bytes());
        PeriodAtRestKey {
            period,
            key: Zeroizing::new(blake3::derive_key(CONTEXT, material.as_ref())),
        }
    }

    pub fn period(&self) -> u64 {
        self.period
    }

    fn keyed(&self, domain: u8, name: &[u8]) -> blake3::Hash {
        let mut hasher = blake3::Hasher::new_keyed(&self.key);
        hasher.update(&[domain]);
        hasher.update(name);
        hasher.finalize()
    }

    /// 16 bytes standing for `name` under this key: equal names give equal
    /// tags, and without the key a tag says nothing of its name.
    pub fn tag(&self, name: &[u8]) -> [u8; 16] {
        let mut out = [0u8; 16];
        out.copy_from_slice(&self.keyed(TAG, name).as_bytes()[..16]);
        out
    }

    fn cipher(&self, name: &[u8]) -> ChaCha20Poly1305 {
        let entry = Zeroizing::new(*self.keyed(ENTRY, name).as_bytes());
        ChaCha20Poly1305::new(Key::from_slice(entry.as_ref()))
    }

    /// `plaintext` sealed as the entry `name` (written once under that
    /// name: the nonce is zero, the key is the entry's own).
    pub fn seal(&self, name: &[u8], plaintext: &[u8]) -> Vec<u8> {
        let sealed = self.cipher(name).encrypt(
            Nonce::from_slice(&[0u8; 12]),
            Payload {
                msg: plaintext,
                aad: name,
            },
        );
        // ChaCha20Poly1305 fails only on a message over 256 GiB.
        sealed.unwrap_or_default()
    }

    /// The plaintext of the entry `name`.
    pub fn open(&self, name: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, AtRestError> {
        self.cipher(name)
            .decrypt(
                Nonce::from_slice(&[0u8; 12]),
                Payload {
                    msg: sealed,
                    aad: name,
                },
            )
            .map(Zeroizing::new)
            .map_err(|_| AtRestError(self.period))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_opens_only_under_its_period_key_and_its_name() {
        let secret = EncryptionSecretKey::derive(&[7; 32]);
        let key = PeriodAtRestKey::derive(5, &secret);
        let sealed = key.seal(b"entry-a", b"48.371");
        assert!(!sealed.windows(6).any(|w| w == b"48.371"));
        assert_eq!(key.seal(b"entry-a", b"48.371"), sealed, "deterministic");
        assert_eq!(key.open(b"entry-a", &sealed).unwrap().as_slice(), b"48.371");
        assert_eq!(key.open(b"entry-b", &sealed), Err(AtRestError(5)));
        let other_period = PeriodAtRestKey::derive(6, &secret);
        assert_eq!(other_period.open(b"entry-a", &sealed), Err(AtRestError(6)));
        let other_key = PeriodAtRestKey::derive(5, &EncryptionSecretKey::derive(&[8; 32]));
        assert!(other_key.open(b"entry-a", &sealed).is_err());
        let mut flipped = sealed.clone();
        flipped[0] ^= 1;
        assert!(key.open(b"entry-a", &flipped).is_err());
        assert_eq!(key.tag(b"series"), key.tag(b"series"));
        assert_ne!(key.tag(b"series"), other_period.tag(b"series"));
        assert_eq!(format!("{key:?}"), "PeriodAtRestKey(period 5)");
    }
}
