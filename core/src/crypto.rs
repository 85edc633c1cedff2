//! Ed25519 keys, signing and the one signature validity rule.
//!
//! Signing uses ed25519-dalek (deterministic RFC 8032 signatures). *Validity*
//! is decided by ZIP-215 (the `ed25519-consensus` crate) for single and batch
//! verification alike: a signature that one honest node accepts is accepted by
//! every honest node, whichever path it takes. ed25519-dalek's `verify_batch`
//! and `verify_strict` disagree on small-order and non-canonical points, so
//! neither decides anything that enters the chain.
//!
//! Member keys are additionally screened once, at genesis, with
//! [`PublicKey::is_weak`]: small-order keys can sign messages that verify for
//! many messages at once and have no place in a consortium.

use std::fmt;

use crate::codec::hex_or_bytes_serde;

/// An Ed25519 public key (32 bytes, compressed Edwards y).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(pub [u8; 32]);
hex_or_bytes_serde!(PublicKey, 32);

/// An Ed25519 signature (R || s, 64 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Signature(pub [u8; 64]);
hex_or_bytes_serde!(Signature, 64);

/// Why a signature is not valid. Deliberately coarse: the reason a signature
/// fails is not something an attacker should learn to tune.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    #[error("the public key is not a valid Ed25519 point encoding")]
    MalformedKey,
    #[error("the signature does not verify under the key")]
    Invalid,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyParseError {
    #[error("a key is {expected} hex digits, got {got} characters")]
    Length { expected: usize, got: usize },
    #[error("a key must be lowercase hex")]
    NotHex,
}

impl PublicKey {
    /// Lowercase hex, which is also the DSSE `keyid` of the key.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    pub fn from_hex(s: &str) -> Result<Self, KeyParseError> {
        let mut out = [0u8; 32];
        if s.len() != 64 {
            return Err(KeyParseError::Length {
                expected: 64,
                got: s.len(),
            });
        }
        crate::codec::decode_lower_hex(s, &mut out).map_err(|_| KeyParseError::NotHex)?;
        Ok(PublicKey(out))
    }

    /// True if the key does not decode to a curve point, is non-canonical, or
    /// has small order. Such keys are refused in genesis.
    pub fn is_weak(&self) -> bool {
        match ed25519_dalek::VerifyingKey::from_bytes(&self.0) {
            // `to_bytes` returns the input bytes, so canonicity is checked by
            // re-compressing the decoded point.
            Ok(key) => key.is_weak() || key.to_edwards().compress().to_bytes() != self.0,
            Err(_) => true,
        }
    }

    /// Verifies `sig` over `msg` under ZIP-215.
    pub fn verify(&self, msg: &[u8], sig: &Signature) -> Result<(), SignatureError> {
        let key = ed25519_consensus::VerificationKey::try_from(self.0)
            .map_err(|_| SignatureError::MalformedKey)?;
        key.verify(&ed25519_consensus::Signature::from(sig.0), msg)
            .map_err(|_| SignatureError::Invalid)
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({})", self.to_hex())
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl std::str::FromStr for PublicKey {
    type Err = KeyParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PublicKey::from_hex(s)
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({})", hex::encode(self.0))
    }
}

/// An Ed25519 signing key. The secret never appears in Debug output and is
/// zeroized on drop (ed25519-dalek's `zeroize` feature).
#[derive(Clone)]
pub struct SigningKey(ed25519_dalek::SigningKey);

impl SigningKey {
    /// A fresh key from the operating system's RNG.
    pub fn generate() -> Self {
        SigningKey(ed25519_dalek::SigningKey::generate(&mut rand_core::OsRng))
    }

    pub fn from_seed(seed: &[u8; 32]) -> Self {
        SigningKey(ed25519_dalek::SigningKey::from_bytes(seed))
    }

    /// The 32-byte seed, wrapped so that it is wiped when dropped.
    pub fn seed(&self) -> zeroize::Zeroizing<[u8; 32]> {
        zeroize::Zeroizing::new(self.0.to_bytes())
    }

    pub fn public_key(&self) -> PublicKey {
        PublicKey(self.0.verifying_key().to_bytes())
    }

    pub fn sign(&self, msg: &[u8]) -> Signature {
        use ed25519_dalek::Signer as _;
        Signature(self.0.sign(msg).to_bytes())
    }
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SigningKey(public {})", self.public_key().to_hex())
    }
}

/// Batches up to this size are verified one by one (measured faster).
pub const SINGLE_BELOW: usize = 2;

/// Batch verification under the same ZIP-215 rule as [`PublicKey::verify`].
///
/// A batch that verifies means every item verifies. When a batch fails, each
/// item is checked on its own to say exactly which ones are bad, so the
/// verdict per item is identical to single verification.
#[derive(Default)]
pub struct BatchVerifier<'a> {
    items: Vec<(PublicKey, &'a [u8], Signature)>,
}

impl fmt::Debug for BatchVerifier<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchVerifier({} items)", self.items.len())
    }
}

impl<'a> BatchVerifier<'a> {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with_capacity(n: usize) -> Self {
        BatchVerifier {
            items: Vec::with_capacity(n),
        }
    }

    pub fn push(&mut self, key: PublicKey, msg: &'a [u8], sig: Signature) {
        self.items.push((key, msg, sig));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Returns one verdict per pushed item, in order.
    pub fn verify(self) -> Vec<Result<(), SignatureError>> {
        if self.items.is_empty() {
            return Vec::new();
        }
        if self.items.len() <= SINGLE_BELOW {
            // Small batches cost more than verifying one by one.
            return self
                .items
                .iter()
                .map(|(key, msg, sig)| key.verify(msg, sig))
                .collect();
        }
        let mut batch = ed25519_consensus::batch::Verifier::new();
        for (key, msg, sig) in &self.items {
            let key = ed25519_consensus::VerificationKeyBytes::from(key.0);
            batch.queue((key, ed25519_consensus::Signature::from(sig.0), msg));
        }
        if batch.verify(rand_core::OsRng).is_ok() {
            return vec![Ok(()); self.items.len()];
        }
        self.items
            .iter()
            .map(|(key, msg, sig)| key.verify(msg, sig))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_then_verify() {
        let key = SigningKey::from_seed(&[7; 32]);
        let sig = key.sign(b"lot 42 passed inspection");
        assert_eq!(
            key.public_key().verify(b"lot 42 passed inspection", &sig),
            Ok(())
        );
        assert_eq!(
            key.public_key().verify(b"lot 42 failed inspection", &sig),
            Err(SignatureError::Invalid)
        );
    }

    #[test]
    fn batch_reports_each_bad_item() {
        let keys: Vec<_> = (0u8..5).map(|i| SigningKey::from_seed(&[i; 32])).collect();
        let msgs: Vec<Vec<u8>> = (0u8..5).map(|i| vec![i; 10]).collect();
        let mut sigs: Vec<_> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
        sigs[3].0[0] ^= 1;
        let mut batch = BatchVerifier::new();
        for ((k, m), s) in keys.iter().zip(&msgs).zip(&sigs) {
            batch.push(k.public_key(), m, *s);
        }
        let verdicts = batch.verify();
        assert_eq!(verdicts.iter().filter(|v| v.is_err()).count(), 1);
        assert!(verdicts[3].is_err());
    }

    #[test]
    fn key_serde_forms() {
        let key = SigningKey::from_seed(&[1; 32]).public_key();
        let json = serde_json::to_string(&key).unwrap();
        assert_eq!(json, format!("\"{}\"", key.to_hex()));
        assert_eq!(serde_json::from_str::<PublicKey>(&json).unwrap(), key);
        let bytes = crate::codec::to_bytes(&key);
        assert_eq!(bytes.len(), 32, "postcard form is the raw 32 bytes");
        let sig = SigningKey::from_seed(&[1; 32]).sign(b"m");
        let bytes = crate::codec::to_bytes(&sig);
        assert_eq!(bytes.len(), 64);
        assert_eq!(
            crate::codec::from_bytes::<Signature>("sig", &bytes, 64).unwrap(),
            sig
        );
    }
}
