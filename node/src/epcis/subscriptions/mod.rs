//! EPCIS 2.0 named queries and query subscriptions (REST bindings,
//! `/epcis/queries/...`): a member org saves a query under a name, reads
//! its events like any query, and subscribes to it, to be pushed each new
//! matching event as its block commits:
//!
//! - by **webhook** (`POST .../subscriptions` with `dest`,
//!   `signatureToken`, `stream: true`): one `push` delivery loop per
//!   subscription, so signed (HMAC-SHA256 with the client's token, in
//!   `GS1-Signature` and `X-Lotline-Signature`), retried with backoff,
//!   at least once, resumed from its saved position after a restart;
//! - by **WebSocket** (`GET .../events?stream=true` with an upgrade): the
//!   same feed read by the connection's task, one text message per event,
//!   resumable by sending back an event's position as `nextPageToken`.
//!
//! What is pushed is what the subscribing org may read (the one read rule,
//! `access::can_read`), decided per event at delivery time.
//!
//! Parts: [`book`] (the records, persisted in a node-local tree of the
//! store), [`destination`] (the operator's allowlist of webhook hosts),
//! [`feed`] (a named query as a `push::Feed`). This file runs the delivery
//! loops.
//!
//! Non-features: scheduled subscriptions (`schedule`, `reportIfEmpty`) are
//! refused; a subscription has no expiry (it lasts until unsubscribed or
//! its query is deleted).

pub mod book;
pub mod destination;
pub mod feed;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use lotline_genesis::Genesis;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::access::{Caller, Identity};
use crate::push::{Delivery, Endpoint};
use crate::store::{StoreError, StoreReader};
use book::{Book, Created, DefinitionError, NamedQuery, Subscription};
use destination::{Allowlist, Refused};
use feed::QueryFeed;

/// WebSocket streams open at once on one node.
pub const STREAMS_MAX: usize = 64;
/// `signatureToken` length in characters.
pub const TOKEN_CHARS_MIN: usize = 16;
pub const TOKEN_CHARS_MAX: usize = 256;
/// Longest `dest`.
pub const DEST_BYTES_MAX: usize = 2048;

/// A `POST /epcis/queries/{name}/subscriptions` body.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct SubscribeRequest {
    pub dest: String,
    pub signature_token: String,
    #[serde(default)]
    pub stream: bool,
    pub initial_record_time: Option<String>,
    /// Accepted only to be refused by name.
    pub schedule: Option<Value>,
    pub report_if_empty: Option<bool>,
}

#[derive(Debug, thiserror::Error)]
pub enum SubscribeError {
    #[error("no such query")]
    NoQuery,
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Unprocessable(String),
    #[error(transparent)]
    Destination(#[from] Refused),
    #[error("this node holds {} subscriptions, its most", book::SUBSCRIPTIONS_MAX)]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum QueryError {
    #[error(transparent)]
    Definition(#[from] DefinitionError),
    #[error("a query named {0:?} exists")]
    Exists(String),
    #[error("this org holds {} named queries, its most", book::QUERIES_PER_ORG_MAX)]
    Full,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How a webhook subscription is doing.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub position: u64,
    pub delivered: u64,
    pub failures: u64,
    /// Failed attempts since the last acknowledgement (> 0: failing).
    pub streak: u64,
    pub acknowledged_ms: u64,
}

/// The named queries and subscriptions of one node, and the running
/// webhook deliveries.
#[derive(Debug)]
pub struct Subscriptions {
    book: Book,
    reader: StoreReader,
    governance: Arc<crate::governance::Governance>,
    allow: Allowlist,
    /// `<data_dir>/push/subscriptions`: the deliveries' saved positions.
    dir: PathBuf,
    running: tokio::sync::Mutex<BTreeMap<String, Delivery>>,
    streams: AtomicUsize,
}

/// An open WebSocket stream; frees its slot when dropped.
#[derive(Debug)]
pub struct StreamSlot(Arc<Subscriptions>);

impl Drop for StreamSlot {
    fn drop(&mut self) {
        self.0.streams.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The identity whose read rights an org's subscription has: the org's
/// genesis role, never an operator's.
fn reader_of(genesis: &Genesis, org: &str, what: String) -> Option<Identity> {
    genesis.org(org).map(|o| {
        Identity::Caller(Caller {
            org: o.id.clone(),
            role: o.role,
            credential: what,
            operator: false,
        })
    })
}

fn now_ms() -> i64 {
    crate::clock::unix_ms_i64()
}

impl Subscriptions {
    /// Opens the book and starts a delivery for every saved subscription.
    /// Must run inside tokio.
    pub async fn start(
        reader: StoreReader,
        governance: Arc<crate::governance::Governance>,
        allow: Allowlist,
        data_dir: &std::path::Path,
    ) -> Result<Arc<Subscriptions>, StoreError> {
        let book = Book::open(&reader)?;
        let registry = Arc::new(Subscriptions {
            book,
            reader,
            governance,
            allow,
            dir: data_dir.join("push").join("subscriptions"),
            running: tokio::sync::Mutex::new(BTreeMap::new()),
            streams: AtomicUsize::new(0),
        });
        for subscription in registry.book.subscriptions()? {
            if let Err(error) = registry.run(&subscription).await {
                tracing::error!(id = %subscription.id, %error, "subscription not started");
            }
        }
        Ok(registry)
    }

    /// Stops every delivery (node shutdown); the subscriptions stay saved.
    pub async fn stop(&self) {
        let running = std::mem::take(&mut *self.running.lock().await);
        for (_, delivery) in running {
            delivery.stop().await;
        }
    }

    fn feed_of(
        &self,
        org: &str,
        name: &str,
        subscription: Option<&Subscription>,
    ) -> Result<Option<QueryFeed>, SubscribeError> {
        let Some(named) = self.book.query(org, name)? else {
            return Ok(None);
        };
        let mut query =
            book::parse(&named.query).map_err(|e| SubscribeError::Unprocessable(e.to_string()))?;
        // A feed pages by itself: one-answer limits do not apply to it.
        query.event_count_limit = None;
        query.max_event_count = None;
        let what = match subscription {
            Some(s) => format!("subscription {}", s.id),
            None => format!("stream of {name}"),
        };
        let Some(identity) = reader_of(&self.governance.rules_now(), org, what) else {
            return Err(SubscribeError::Unprocessable(format!(
                "{org:?} is no longer an org of this consortium"
            )));
        };
        if let Some(time) = subscription.and_then(|s| s.initial_record_time.as_deref()) {
            let ms = lotline_core::time::parse_rfc3339_ms(time)
                .map_err(|e| SubscribeError::Unprocessable(e.to_string()))?;
            query.record_time_ge = Some(query.record_time_ge.map_or(ms, |g| g.max(ms)));
        }
        Ok(Some(QueryFeed::new(
            self.reader.clone(),
            self.governance.clone(),
            identity,
            query,
            name.to_owned(),
            subscription.map(|s| s.id.clone()),
        )))
    }

    /// Starts the delivery of a saved subscription from its saved position
    /// (its start position the first time).
    async fn run(&self, subscription: &Subscription) -> Result<(), SubscribeError> {
        let Some(feed) =
            self.feed_of(&subscription.org, &subscription.query, Some(subscription))?
        else {
            return Err(SubscribeError::NoQuery);
        };
        let url = self.allow.check(&subscription.dest)?;
        let cursor = crate::push::cursor::Cursor::new(&self.dir, &subscription.id);
        if !self
            .dir
            .join(format!("{}.position", subscription.id))
            .exists()
        {
            cursor
                .save(subscription.start)
                .map_err(|e| SubscribeError::Unprocessable(e.to_string()))?;
        }
        let endpoint = Endpoint {
            id: subscription.id.clone(),
            url,
            secret: subscription.secret.as_bytes().to_vec(),
        };
        let delivery = Delivery::start(endpoint, Arc::new(feed), &self.dir)
            .map_err(|e| SubscribeError::Unprocessable(e.to_string()))?;
        if let Some(old) = self
            .running
            .lock()
            .await
            .insert(subscription.id.clone(), delivery)
        {
            old.stop().await;
        }
        Ok(())
    }

    async fn halt(&self, id: &str) {
        let delivery = self.running.lock().await.remove(id);
        if let Some(delivery) = delivery {
            delivery.stop().await;
        }
        let _ = std::fs::remove_file(self.dir.join(format!("{id}.position")));
    }

    pub fn create_query(
        &self,
        org: &str,
        name: &str,
        definition: Map<String, Value>,
    ) -> Result<NamedQuery, QueryError> {
        book::check_name(name)?;
        book::parse(&definition)?;
        let named = NamedQuery {
            name: name.to_owned(),
            org: org.to_owned(),
            query: definition,
            created_ms: now_ms(),
        };
        match self.book.create_query(&named)? {
            Created::Created => Ok(named),
            Created::Exists => Err(QueryError::Exists(name.to_owned())),
            Created::Full => Err(QueryError::Full),
        }
    }

    pub fn query(&self, org: &str, name: &str) -> Result<Option<NamedQuery>, StoreError> {
        self.book.query(org, name)
    }

    pub fn queries(&self, org: &str) -> Result<Vec<NamedQuery>, StoreError> {
        self.book.queries(org)
    }

    /// Deletes a query and ends its subscriptions; false if there was none.
    /// Its WebSocket streams end at their next poll.
    pub async fn delete_query(&self, org: &str, name: &str) -> Result<bool, StoreError> {
        let Some(gone) = self.book.delete_query(org, name)? else {
            return Ok(false);
        };
        for subscription in gone {
            self.halt(&subscription.id).await;
        }
        Ok(true)
    }

    pub async fn subscribe(
        &self,
        org: &str,
        name: &str,
        request: SubscribeRequest,
    ) -> Result<Subscription, SubscribeError> {
        if request.schedule.is_some() || request.report_if_empty.is_some() {
            return Err(SubscribeError::Malformed(
                "scheduled subscriptions (schedule, reportIfEmpty) are not supported; set stream: true".into(),
            ));
        }
        if !request.stream {
            return Err(SubscribeError::Malformed(
                "stream must be true: a subscription is pushed every new matching event".into(),
            ));
        }
        let chars = request.signature_token.chars().count();
        if !(TOKEN_CHARS_MIN..=TOKEN_CHARS_MAX).contains(&chars) {
            return Err(SubscribeError::Malformed(format!(
                "signatureToken: {TOKEN_CHARS_MIN} to {TOKEN_CHARS_MAX} characters, got {chars}"
            )));
        }
        if request.dest.len() > DEST_BYTES_MAX {
            return Err(SubscribeError::Malformed(format!(
                "dest: at most {DEST_BYTES_MAX} bytes"
            )));
        }
        self.allow.check(&request.dest)?;
        if self.book.query(org, name)?.is_none() {
            return Err(SubscribeError::NoQuery);
        }
        let start = match &request.initial_record_time {
            Some(time) => {
                lotline_core::time::parse_rfc3339_ms(time).map_err(|e| {
                    SubscribeError::Unprocessable(format!("initialRecordTime: {e}"))
                })?;
                0
            }
            None => feed::tip(&self.reader)?,
        };
        let created_ms = now_ms();
        let id = subscription_id(org, name, &request.dest, created_ms);
        let subscription = Subscription {
            id,
            query: name.to_owned(),
            org: org.to_owned(),
            dest: request.dest,
            secret: request.signature_token,
            created_ms,
            initial_record_time: request.initial_record_time,
            start,
        };
        if !self.book.add_subscription(&subscription)? {
            return Err(SubscribeError::Full);
        }
        if let Err(error) = self.run(&subscription).await {
            let _ = self.book.remove_subscription(&subscription.id);
            return Err(error);
        }
        Ok(subscription)
    }

    /// `org`'s subscriptions to its query `name`.
    pub fn subscriptions(&self, org: &str, name: &str) -> Result<Vec<Subscription>, StoreError> {
        Ok(self
            .book
            .subscriptions()?
            .into_iter()
            .filter(|s| s.org == org && s.query == name)
            .collect())
    }

    pub fn subscription(
        &self,
        org: &str,
        name: &str,
        id: &str,
    ) -> Result<Option<Subscription>, StoreError> {
        Ok(self
            .book
            .subscription(id)?
            .filter(|s| s.org == org && s.query == name))
    }

    pub async fn unsubscribe(&self, org: &str, name: &str, id: &str) -> Result<bool, StoreError> {
        if self.subscription(org, name, id)?.is_none() {
            return Ok(false);
        }
        self.book.remove_subscription(id)?;
        self.halt(id).await;
        Ok(true)
    }

    pub async fn status(&self, id: &str) -> Option<Status> {
        let running = self.running.lock().await;
        let progress = &running.get(id)?.progress;
        Some(Status {
            position: progress.position.load(Ordering::Acquire),
            delivered: progress.delivered.load(Ordering::Relaxed),
            failures: progress.failures.load(Ordering::Relaxed),
            streak: progress.streak.load(Ordering::Relaxed),
            acknowledged_ms: progress.acknowledged_ms.load(Ordering::Relaxed),
        })
    }

    /// The feed a WebSocket stream reads, with a slot counted against
    /// [`STREAMS_MAX`]; `Ok(None)`: no such query; `Err(None)`: no slot.
    pub fn stream(
        self: &Arc<Self>,
        org: &str,
        name: &str,
    ) -> Result<Option<(QueryFeed, StreamSlot)>, SubscribeError> {
        let Some(feed) = self.feed_of(org, name, None)? else {
            return Ok(None);
        };
        if self.streams.fetch_add(1, Ordering::AcqRel) >= STREAMS_MAX {
            self.streams.fetch_sub(1, Ordering::AcqRel);
            return Err(SubscribeError::Unprocessable(format!(
                "{STREAMS_MAX} streams are open on this node, its most"
            )));
        }
        Ok(Some((feed, StreamSlot(self.clone()))))
    }

    /// True while `org`'s query `name` exists (a stream ends when not).
    pub fn exists(&self, org: &str, name: &str) -> bool {
        matches!(self.book.query(org, name), Ok(Some(_)))
    }

    pub fn tip(&self) -> Result<u64, StoreError> {
        feed::tip(&self.reader)
    }
}

/// 32 hex digits, unique on this node (the time and a process counter are
/// hashed in).
fn subscription_id(org: &str, name: &str, dest: &str, created_ms: i64) -> String {
    static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let mut hasher = blake3::Hasher::new();
    for part in [org, name, dest] {
        hasher.update(part.as_bytes());
        hasher.update(&[0]);
    }
    hasher.update(&created_ms.to_le_bytes());
    hasher.update(&nanos.to_le_bytes());
    hasher.update(&n.to_le_bytes());
    hasher.update(&std::process::id().to_le_bytes());
    hex::encode(&hasher.finalize().as_bytes()[..16])
}
