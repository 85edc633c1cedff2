//! Push delivery: deliver a feed of payloads, in order, to one endpoint the
//! operator configured, each body signed with HMAC-SHA256, retried with
//! exponential backoff until the endpoint acknowledges it (2xx), and
//! resumable from a persisted position after a restart. At least once: a
//! payload is acknowledged before its position is saved, so a crash in
//! between delivers it again; receivers deduplicate by the
//! `X-Lotline-Delivery` header.
//!
//! - `sign.rs`: the signature header (pure);
//! - `backoff.rs`: the retry schedule (pure);
//! - `cursor.rs`: the persisted position of one endpoint;
//! - `deliver.rs`: the delivery loop (the only file that does network I/O).
//!
//! What is pushed is the caller's business: a [`Feed`] hands out payloads
//! after a position. Quality alerts are one feed (`quality::alerts::feed`);
//! EPCIS subscriptions can be another.
//!
//! Non-features: no destination is ever taken from a payload, a request or
//! a redirect — only the configured URL is called (redirects are not
//! followed); nothing is pushed over a connection that does not answer
//! within [`deliver::REQUEST_TIMEOUT`]; one endpoint is one ordered queue,
//! so a failing endpoint delays only itself.

pub mod backoff;
pub mod cursor;
pub mod deliver;
pub mod sign;

pub use deliver::{Delivery, Progress};

/// One payload of a feed: its position (strictly increasing along the
/// feed) and the exact bytes to send.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Payload {
    pub position: u64,
    /// The body, sent as `application/json`.
    pub body: Vec<u8>,
}

/// A source of payloads in position order.
pub trait Feed: Send + Sync + 'static {
    /// Up to `limit` payloads with a position above `after`, in order.
    /// Blocking reads are fine: the delivery loop calls it off the async
    /// workers.
    fn after(&self, after: u64, limit: usize) -> Result<Vec<Payload>, FeedError>;
}

#[derive(Debug, thiserror::Error)]
#[error("the feed could not be read: {0}")]
pub struct FeedError(pub String);

/// One configured endpoint (node config `[[webhooks]]`).
#[derive(Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Names the endpoint in logs, its position file and the delivery id.
    pub id: String,
    pub url: reqwest::Url,
    /// The HMAC-SHA256 key the receiver shares.
    pub secret: Vec<u8>,
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("id", &self.id)
            .field("url", &self.url.as_str())
            .finish_non_exhaustive()
    }
}
