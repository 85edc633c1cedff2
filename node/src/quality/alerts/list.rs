//! `GET /v1/alerts`: the committed alerts, in chain order, through the
//! EPCIS bizStep listing of [`ALERT_BIZ_STEP`] (written in each block's
//! batch; no keyspace of its own) and the read policy, with filters.

use std::cell::RefCell;

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::{ALERT_BIZ_STEP, AlertRule, QualityFact};
use lotline_core::lineage;
use lotline_core::statement::Statement;

use super::Alert;
use crate::store::events::PREFIX_BIZ_STEP;
use crate::store::index::StoredAttestation;
use crate::store::{StoreError, StoreReader};

/// Most alerts one page lists.
pub const PAGE_MAX: usize = 1_000;
/// Alerts a page lists when the caller does not say.
pub const PAGE_DEFAULT: usize = 100;
/// Entries one internal scan page holds.
pub(crate) const SCAN_PAGE: usize = 1_000;

/// The filters of `GET /v1/alerts` (all optional, all must hold).
#[derive(Clone, Debug, Default)]
pub struct AlertsRequest {
    pub rule: Option<AlertRule>,
    /// The org that stated the alert.
    pub org: Option<String>,
    /// The alert's subject, or one of the identifiers it names.
    pub subject: Option<String>,
    /// Committed at or above this height.
    pub since_height: Option<u64>,
    pub after: Option<(u64, u32)>,
    pub limit: usize,
}

/// One page.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Listed {
    pub alerts: Vec<Alert>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
}

pub(crate) struct Scanned {
    pub items: Vec<(AttestationId, StoredAttestation)>,
    pub next: Option<(u64, u32)>,
}

/// Every alert attestation after `after`, up to `limit`, unfiltered (the
/// follower's own bookkeeping; never served).
pub(crate) fn scan(
    reader: &StoreReader,
    after: Option<(u64, u32)>,
    limit: usize,
) -> Result<Scanned, StoreError> {
    let found = RefCell::new(Vec::new());
    let keep = |stored: &StoredAttestation| {
        found.borrow_mut().push(stored.clone());
        true
    };
    let listing = reader.list(PREFIX_BIZ_STEP, ALERT_BIZ_STEP, after, limit, &keep)?;
    let stored = found.into_inner();
    let items = listing
        .items
        .iter()
        .zip(stored)
        .map(|(summary, stored)| (summary.id, stored))
        .collect();
    Ok(Scanned {
        items,
        next: listing.next.as_deref().and_then(parse_cursor),
    })
}

/// `h.i`, as listings write their `next`.
pub fn parse_cursor(cursor: &str) -> Option<(u64, u32)> {
    let (h, i) = cursor.split_once('.')?;
    Some((h.parse().ok()?, i.parse().ok()?))
}

/// The alert an attestation states, if it states one.
pub fn alert_of(id: AttestationId, stored: &StoredAttestation) -> Option<Alert> {
    let statement = Statement::from_payload(&stored.envelope.payload).ok()?;
    let identifiers = lineage::derive(&statement.event)
        .facts
        .into_iter()
        .flat_map(|f| f.subjects)
        .collect();
    let Some(QualityFact::Alert {
        rule,
        key,
        subject,
        summary,
        trigger,
    }) = statement.event.quality
    else {
        return None;
    };
    Some(Alert {
        attestation: id,
        org: statement.org,
        height: stored.height,
        event_time: statement.event.event_time,
        rule,
        key,
        subject,
        summary,
        trigger,
        identifiers,
    })
}

fn matches(request: &AlertsRequest, alert: &Alert) -> bool {
    request.rule.is_none_or(|r| r == alert.rule)
        && request.org.as_ref().is_none_or(|o| *o == alert.org)
        && request.since_height.is_none_or(|h| alert.height >= h)
        && request
            .subject
            .as_ref()
            .is_none_or(|s| alert.subject == *s || alert.identifiers.iter().any(|i| i == s))
}

/// One page of the alerts `visible` lets the caller read that match
/// `request`.
pub fn list(
    reader: &StoreReader,
    request: &AlertsRequest,
    visible: &dyn Fn(&StoredAttestation) -> bool,
) -> Result<Listed, StoreError> {
    let limit = request.limit.clamp(1, PAGE_MAX);
    let found = RefCell::new(Vec::new());
    let keep = |stored: &StoredAttestation| {
        if !visible(stored) {
            return false;
        }
        // The listing hands the id with the summary only; the alert is
        // matched here and paired with its id below, in the same order.
        let Some(alert) = alert_of(AttestationId(lotline_core::hash::Digest::ZERO), stored) else {
            return false;
        };
        if !matches(request, &alert) {
            return false;
        }
        found.borrow_mut().push(alert);
        true
    };
    let listing = reader.list(PREFIX_BIZ_STEP, ALERT_BIZ_STEP, request.after, limit, &keep)?;
    let alerts = listing
        .items
        .iter()
        .zip(found.into_inner())
        .map(|(summary, mut alert)| {
            alert.attestation = summary.id;
            alert
        })
        .collect();
    Ok(Listed {
        alerts,
        next: listing.next,
    })
}
