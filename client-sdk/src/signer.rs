//! A member organisation's signing identity: its org id in genesis and the
//! Ed25519 key it signs attestations with.

use std::path::Path;

use lotline_core::{PublicKey, SigningKey};

use crate::SdkError;

/// An org id and its signing key. The secret is never printed (`Debug` shows
/// the public key only) and is wiped when dropped.
#[derive(Clone, Debug)]
pub struct Signer {
    org: String,
    key: SigningKey,
}

impl Signer {
    /// Wraps a key already in memory.
    pub fn new(org: impl Into<String>, key: SigningKey) -> Signer {
        Signer {
            org: org.into(),
            key,
        }
    }

    /// Reads a key file written by `lotline keygen`
    /// (`lotline_genesis::keys::write_signing_key`).
    pub fn from_key_file(
        org: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<Signer, SdkError> {
        let key = lotline_genesis::keys::read_signing_key(path.as_ref())?;
        Ok(Signer::new(org, key))
    }

    /// The org id the statements are issued under.
    /// Adds this org's signature to a governance transaction (an envelope
    /// of [`lotline_genesis::governance::unsigned`]); its id does not change.
    pub fn sign_governance(&self, envelope: &mut lotline_core::Envelope) {
        lotline_genesis::governance::add_signature(envelope, &self.key);
    }

    pub fn org(&self) -> &str {
        &self.org
    }

    /// The public key, which genesis must list for [`Signer::org`].
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    pub(crate) fn key(&self) -> &SigningKey {
        &self.key
    }
}
