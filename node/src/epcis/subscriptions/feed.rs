//! A named query as a push feed (`push::Feed`): the committed events that
//! match it and that one org may read, in chain order, one
//! `EPCISQueryDocument` per event. A payload's position is the event's
//! chain position (`height << 32 | index`), so a webhook's saved cursor and
//! a WebSocket client's resume token are the same number.
//!
//! Cost: each call runs the query engine from the position (bounded by
//! `query::EXAMINED_MAX` entries a page, at most [`PAGES_PER_CALL`] pages).
//! A query that matches rarely would otherwise re-examine the same
//! non-matching entries on every poll; the feed remembers how far a call
//! that found nothing got (in memory) and the next call from the same
//! position starts there.

use std::sync::{Arc, Mutex};

use crate::access::Identity;
use crate::epcis::document;
use crate::epcis::query::{self, PER_PAGE_MAX, Query, page_token};
use crate::push::{Feed, FeedError, Payload};
use crate::store::StoreReader;
use crate::store::index::Position;

/// Query pages one call may run before it reports nothing new.
pub const PAGES_PER_CALL: usize = 4;

pub fn position(at: Position) -> u64 {
    (at.height << 32) | u64::from(at.index)
}

pub fn at(position: u64) -> Option<Position> {
    (position != 0).then_some(Position {
        height: position >> 32,
        index: (position & 0xffff_ffff) as u32,
    })
}

/// The position after every event committed so far (where a subscription
/// with no `initialRecordTime` starts).
pub fn tip(reader: &StoreReader) -> Result<u64, crate::store::StoreError> {
    let height = reader.applied_height()?;
    Ok(if height == 0 {
        0
    } else {
        position(Position {
            height,
            index: u32::MAX,
        })
    })
}

/// The resume token a client sends back (the engine's page token).
pub fn token(position: u64) -> String {
    at(position).map(page_token).unwrap_or_default()
}

#[derive(Debug)]
pub struct QueryFeed {
    pub reader: StoreReader,
    /// Whose rules decide what is delivered: the membership in force at
    /// each delivery (an org removed by vote stops receiving).
    pub governance: Arc<crate::governance::Governance>,
    /// Whose read rights decide what is pushed.
    pub identity: Identity,
    pub query: Query,
    pub query_name: String,
    /// Named in each document (`subscriptionID`) for webhooks.
    pub subscription: Option<String>,
    /// (the `after` of a call that found nothing, how far it got).
    skip: Mutex<Option<(u64, Position)>>,
}

impl QueryFeed {
    pub fn new(
        reader: StoreReader,
        governance: Arc<crate::governance::Governance>,
        identity: Identity,
        query: Query,
        query_name: String,
        subscription: Option<String>,
    ) -> QueryFeed {
        QueryFeed {
            reader,
            governance,
            identity,
            query,
            query_name,
            subscription,
            skip: Mutex::new(None),
        }
    }

    fn document(&self, found: &query::Found) -> Result<Vec<u8>, FeedError> {
        let mut doc =
            document::query_document(std::slice::from_ref(found), crate::clock::unix_ms_i64());
        let results = &mut doc["epcisBody"]["queryResults"];
        results["queryName"] = self.query_name.clone().into();
        if let Some(id) = &self.subscription {
            results["subscriptionID"] = id.clone().into();
        }
        serde_json::to_vec(&doc).map_err(|e| FeedError(e.to_string()))
    }
}

impl Feed for QueryFeed {
    fn after(&self, after: u64, limit: usize) -> Result<Vec<Payload>, FeedError> {
        let mut from = at(after);
        if let Ok(skip) = self.skip.lock()
            && let Some((from_call, reached)) = *skip
            && from_call == after
        {
            from = Some(reached);
        }
        let rules = self.governance.rules_now();
        let visible = |st: &lotline_core::statement::Statement| {
            crate::access::can_read(&rules, &self.identity, st)
        };
        for _ in 0..PAGES_PER_CALL {
            let mut query = self.query.clone();
            query.after = from;
            query.per_page = limit.clamp(1, PER_PAGE_MAX);
            let page =
                query::run(&self.reader, &query, &visible).map_err(|e| FeedError(e.to_string()))?;
            if !page.events.is_empty() {
                if let Ok(mut skip) = self.skip.lock() {
                    *skip = None;
                }
                return page
                    .events
                    .iter()
                    .map(|found| {
                        Ok(Payload {
                            position: position(found.at),
                            body: self.document(found)?,
                        })
                    })
                    .collect();
            }
            if let Some(last) = page.last {
                from = Some(last);
            }
            if page.next.is_none() {
                break;
            }
        }
        if let (Some(reached), Ok(mut skip)) = (from, self.skip.lock()) {
            *skip = Some((after, reached));
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_round_trip_and_order_like_the_chain() {
        let p = Position {
            height: 7,
            index: 3,
        };
        assert_eq!(at(position(p)), Some(p));
        assert_eq!(at(0), None);
        assert!(
            position(Position {
                height: 1,
                index: u32::MAX
            }) < position(Position {
                height: 2,
                index: 0
            })
        );
        assert_eq!(token(position(p)), page_token(p));
    }
}
