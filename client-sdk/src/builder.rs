//! Building and signing attestations: an EPCIS event becomes a statement,
//! checked locally with the same validation the node runs, then signed into a
//! DSSE envelope.

use std::time::{SystemTime, UNIX_EPOCH};

use lotline_core::epcis::Event;
use lotline_core::private::{Disclosure, EncryptionSecretKey, Suite};
use lotline_core::statement::STATEMENT_VERSION;
use lotline_core::{Digest, Envelope, Statement};
use lotline_genesis::{Genesis, SealError};
use rand_core::RngCore as _;

use crate::{SdkError, Signer};

/// Builds one signed attestation.
///
/// ```no_run
/// # fn demo(chain_id: lotline_core::Digest, signer: &lotline_sdk::Signer,
/// #         event: lotline_core::epcis::Event) -> Result<(), lotline_sdk::SdkError> {
/// let envelope = lotline_sdk::AttestationBuilder::new(chain_id, signer).event(event).build()?;
/// # let _ = envelope; Ok(()) }
/// ```
#[derive(Debug)]
pub struct AttestationBuilder<'a> {
    chain_id: Digest,
    signer: &'a Signer,
    event: Option<Event>,
    issued_at_ms: Option<u64>,
    nonce: Option<String>,
    private: Option<(&'a Genesis, Vec<String>)>,
    suite: Suite,
}

impl<'a> AttestationBuilder<'a> {
    /// A builder for statements on chain `chain_id` (the genesis hash, see
    /// `Genesis::chain_id`) issued by `signer`.
    pub fn new(chain_id: Digest, signer: &'a Signer) -> Self {
        AttestationBuilder {
            chain_id,
            signer,
            event: None,
            issued_at_ms: None,
            nonce: None,
            private: None,
            suite: Suite::default(),
        }
    }

    /// The EPCIS event the statement is about.
    pub fn event(mut self, event: Event) -> Self {
        self.event = Some(event);
        self
    }

    /// The event as EPCIS 2.0 JSON (one event, not a document). Fails with
    /// [`SdkError::EventJson`] when the JSON does not have an event's shape;
    /// the content is validated by [`AttestationBuilder::build`].
    pub fn event_json(self, event: serde_json::Value) -> Result<Self, SdkError> {
        let event: Event = serde_json::from_value(event).map_err(SdkError::EventJson)?;
        Ok(self.event(event))
    }

    /// The signer's clock in unix milliseconds. Default: now.
    pub fn issued_at_ms(mut self, ms: u64) -> Self {
        self.issued_at_ms = Some(ms);
        self
    }

    /// Makes otherwise equal statements distinct attestations. Default: 16
    /// random bytes from the operating system, in hex. Re-using a nonce for
    /// the same event and time is how a retry stays *the same* attestation.
    pub fn nonce(mut self, nonce: impl Into<String>) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    /// Makes the event members at `paths` (JSON pointers such as
    /// `/sensorElementList` or `/bizTransactionList`) private: the statement
    /// becomes version 2, the members are sealed for exactly the orgs
    /// `genesis` entitles to read this record (the issuer, full readers
    /// such as regulators, orgs a share rule names), and each gets a salted
    /// commitment for selective disclosure. See docs/confidentiality.md.
    pub fn private_fields(mut self, genesis: &'a Genesis, paths: Vec<String>) -> Self {
        self.private = Some((genesis, paths));
        self
    }

    /// The form of the private section: compact (statement version 3, the
    /// default) or [`Suite::Object`] (version 2, what nodes before the
    /// compact form read).
    pub fn private_suite(mut self, suite: Suite) -> Self {
        self.suite = suite;
        self
    }

    /// Validates the event, then signs the statement.
    ///
    /// Errors: [`SdkError::MissingEvent`]; [`SdkError::InvalidEvent`] with
    /// every problem found; [`SdkError::ClockBeforeEpoch`];
    /// [`SdkError::Envelope`] if the statement is too large to be accepted.
    pub fn build(self) -> Result<Envelope, SdkError> {
        let event = self.event.ok_or(SdkError::MissingEvent)?;
        let problems = event.validate();
        if !problems.is_empty() {
            return Err(SdkError::InvalidEvent(problems));
        }
        let issued_at_ms = match self.issued_at_ms {
            Some(ms) => ms,
            None => now_ms()?,
        };
        let mut statement = Statement {
            version: STATEMENT_VERSION,
            chain_id: self.chain_id,
            org: self.signer.org().to_owned(),
            key: self.signer.public_key(),
            issued_at_ms,
            nonce: self.nonce.unwrap_or_else(random_nonce),
            event,
            private: None,
        };
        if let Some((genesis, paths)) = self.private {
            // On a consortium with retention classes the wraps go to the
            // entitled orgs' keys for the record's key period.
            genesis
                .seal_private_as(&mut statement, &paths, self.suite)
                .map_err(|e| match e {
                    SealError::Private(e) => SdkError::Private(e),
                    SealError::Recipients(e) => SdkError::Recipients(e),
                })?;
        }
        let envelope = statement.sign(self.signer.key());
        envelope.check_shape()?;
        Ok(envelope)
    }
}

/// Opens a version 2 attestation's private fields as `org` with its
/// encryption key (read with `lotline_genesis::keys::read_encryption_key`):
/// every field, each checked against its signed commitment.
pub fn open_private(
    envelope: &Envelope,
    org: &str,
    key: &EncryptionSecretKey,
) -> Result<Vec<Disclosure>, SdkError> {
    let statement = Statement::from_payload(&envelope.payload)
        .map_err(|e| SdkError::Envelope(lotline_core::attestation::EnvelopeError::Decode(e)))?;
    let section = statement.private.as_ref().ok_or(SdkError::NotPrivate)?;
    Ok(section.open(org, key)?)
}

/// [`open_private`] with every key the org holds (its current encryption
/// key, its retired ones after a rotation, its period keys): the one the
/// record was wrapped to opens it.
pub fn open_private_with(
    envelope: &Envelope,
    org: &str,
    keys: &[EncryptionSecretKey],
) -> Result<Vec<Disclosure>, SdkError> {
    let statement = Statement::from_payload(&envelope.payload)
        .map_err(|e| SdkError::Envelope(lotline_core::attestation::EnvelopeError::Decode(e)))?;
    let section = statement.private.as_ref().ok_or(SdkError::NotPrivate)?;
    Ok(section.open_with(org, keys)?)
}

fn now_ms() -> Result<u64, SdkError> {
    let since_epoch = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_err(|_| SdkError::ClockBeforeEpoch)?;
    Ok(u64::try_from(since_epoch.as_millis()).unwrap_or(u64::MAX))
}

fn random_nonce() -> String {
    let mut bytes = [0u8; 16];
    rand_core::OsRng.fill_bytes(&mut bytes);
    hex::encode(bytes)
}
