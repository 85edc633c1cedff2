//! Quality alerts as evidence: when a rule fires on committed records, the
//! detecting node's org states it on the chain, signed and dated like any
//! other record, and `GET /v1/alerts` lists what was stated.
//!
//! - `detect.rs`: which rules a committed block's records touch, and what
//!   fires (run rules and EWMA/CUSUM drift on the control charts the block's
//!   measurements extend, excursions of the loggers it carries, suppliers
//!   whose share of non-conforming lots crosses the node's threshold);
//! - `follower.rs`: the thread that evaluates blocks by height after they
//!   commit, signs each firing as the `[alerts]` org and submits it through
//!   the one write path (`ingest.rs`), and persists how far it got;
//! - `feed.rs`: the committed alerts an org may read as a push feed
//!   (`push/`, the node's `[[webhooks]]`);
//! - `list.rs`: the committed alerts, through the bizStep listing of
//!   [`ALERT_BIZ_STEP`] and the read policy.
//!
//! **One firing, one alert.** Every firing has a key (the rule, what it
//! judged, and the record where the firing began) and its statement is a
//! function of the chain alone: the time is the trigger block's timestamp,
//! the nonce is derived from the key, the text names only what cannot
//! change once committed. Re-evaluating a block (after a restart, or with
//! the follower's state lost) therefore rebuilds the very same envelope,
//! whose id ingest refuses as pending or committed; and the follower skips
//! keys its org has already stated on the chain (read once at start).
//!
//! **Off the consensus path.** The follower reads what the store has
//! applied; the commit path neither waits for it nor knows it exists.
//! Alerts are evaluated under the alerting org's own read rights, so an
//! alert never repeats what its org could not read.

pub mod detect;
pub mod feed;
pub mod follower;
pub mod list;

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::{ALERT_BIZ_STEP, AlertRule, Event, QualityFact};
use serde::Serialize;

pub use follower::{Alerter, AlertsError};
pub use list::{AlertsRequest, Listed, list};

/// A rule that fired, before it is signed.
#[derive(Clone, Debug, PartialEq)]
pub struct Firing {
    pub rule: AlertRule,
    /// The deduplication key (see the module doc).
    pub key: String,
    pub subject: String,
    pub summary: String,
    /// The record where the firing began.
    pub trigger: AttestationId,
    /// The height that committed the trigger (its block time dates the
    /// alert).
    pub trigger_height: u64,
    /// Identifiers the alert event names (its facts are indexed under them).
    pub identifiers: Vec<String>,
}

/// A committed alert as `GET /v1/alerts` lists it.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alert {
    pub attestation: AttestationId,
    pub org: String,
    pub height: u64,
    pub event_time: String,
    pub rule: AlertRule,
    pub key: String,
    pub subject: String,
    pub summary: String,
    pub trigger: String,
    pub identifiers: Vec<String>,
}

impl Firing {
    /// The alert event: an ObjectEvent OBSERVE with bizStep
    /// [`ALERT_BIZ_STEP`], dated by the trigger block's time.
    pub fn event(&self, block_time_ms: i64) -> Event {
        let time = lotline_core::time::format_rfc3339_ms(block_time_ms);
        let (epcs, classes): (Vec<&String>, Vec<&String>) =
            self.identifiers.iter().partition(|id| is_instance(id));
        let quantity: Vec<serde_json::Value> = classes
            .iter()
            .map(|c| serde_json::json!({ "epcClass": c }))
            .collect();
        let value = serde_json::json!({
            "type": "ObjectEvent",
            "eventTime": time,
            "eventTimeZoneOffset": "+00:00",
            "action": "OBSERVE",
            "epcList": epcs,
            "quantityList": quantity,
            "bizStep": ALERT_BIZ_STEP,
        });
        let mut event: Event = match serde_json::from_value(value) {
            Ok(event) => event,
            Err(e) => panic!("the alert event template does not fit the model: {e}"),
        };
        event.quality = Some(QualityFact::Alert {
            rule: self.rule,
            key: self.key.clone(),
            subject: self.subject.clone(),
            summary: self.summary.clone(),
            trigger: self.trigger.to_string(),
        });
        event
    }

    /// 16 nonce bytes from the key: the same firing signs the same bytes.
    pub fn nonce(&self) -> [u8; 16] {
        let hash =
            lotline_core::hash::hash(lotline_core::hash::Domain::AlertNonce, self.key.as_bytes());
        let mut out = [0u8; 16];
        out.copy_from_slice(&hash.as_bytes()[..16]);
        out
    }
}

/// Serials and logistic units go in `epcList`; lots and classes in
/// `quantityList`.
fn is_instance(id: &str) -> bool {
    matches!(
        lotline_core::gs1::Identifier::parse(id),
        Ok(lotline_core::gs1::Identifier::Item { .. } | lotline_core::gs1::Identifier::Sscc(_))
    )
}
