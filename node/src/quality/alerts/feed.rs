//! Committed alerts as a push feed (`push::Feed`): what one org may read,
//! in chain order; a payload's position is its chain position
//! (`height << 32 | index`) and its body the alert as `GET /v1/alerts`
//! lists it.

use std::sync::Arc;

use lotline_genesis::Genesis;

use super::list::{AlertsRequest, list};
use crate::access::Identity;
use crate::push::{Feed, FeedError, Payload};
use crate::store::StoreReader;
use crate::store::index::StoredAttestation;

#[derive(Debug)]
pub struct AlertFeed {
    pub reader: StoreReader,
    pub genesis: Arc<Genesis>,
    /// Whose read rights decide what is pushed.
    pub identity: Identity,
}

pub fn position(height: u64, index: u32) -> u64 {
    (height << 32) | u64::from(index)
}

fn cursor(position: u64) -> Option<(u64, u32)> {
    (position != 0).then_some((position >> 32, (position & 0xffff_ffff) as u32))
}

impl Feed for AlertFeed {
    fn after(&self, after: u64, limit: usize) -> Result<Vec<Payload>, FeedError> {
        let request = AlertsRequest {
            after: cursor(after),
            limit,
            ..AlertsRequest::default()
        };
        let visible = |stored: &StoredAttestation| {
            crate::access::can_read_payload(
                &self.genesis,
                &self.identity,
                &stored.meta.org,
                &stored.envelope.payload,
            )
        };
        let listed =
            list(&self.reader, &request, &visible).map_err(|e| FeedError(e.to_string()))?;
        let mut out = Vec::with_capacity(listed.alerts.len());
        for alert in listed.alerts {
            let Some(stored) = self
                .reader
                .attestation(&alert.attestation)
                .map_err(|e| FeedError(e.to_string()))?
            else {
                continue;
            };
            let body = serde_json::to_vec(&alert).map_err(|e| FeedError(e.to_string()))?;
            out.push(Payload {
                position: position(stored.height, stored.index),
                body,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_like_chain_positions() {
        assert!(position(1, u32::MAX) < position(2, 0));
        assert_eq!(cursor(position(7, 3)), Some((7, 3)));
        assert_eq!(cursor(0), None);
    }
}
