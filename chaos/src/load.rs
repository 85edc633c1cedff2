//! Signed load: several writer tasks per org, each with a home node, each
//! submitting fresh attestations with `wait=committed` in a closed loop.
//!
//! An attestation is *acknowledged* when a node answered `committed` with a
//! receipt that verifies offline against the genesis; the [`Ledger`] keeps
//! every acknowledged id with the block the receipt names, and the checker
//! later demands it from every node. Anything else (a `pending` answer, a
//! timeout, a refused connection) leaves the outcome unknown: the id is
//! kept as *in doubt* and never counted as lost.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use lotline_core::api::Status;
use lotline_core::{AttestationId, BlockHash};
use lotline_genesis::Genesis;
use lotline_sdk::{AttestationBuilder, Client, Event, SdkError, Signer, Wait};

use crate::report::Violations;

/// How long a writer waits for one submit. The node answers `pending`
/// after four fifths of it, so a stalled chain shows up as in-doubt
/// attestations, not as hung writers.
pub const SUBMIT_TIMEOUT: Duration = Duration::from_secs(15);
/// Pause after a failed submit (a dead node refuses connections at once).
const BACKOFF: Duration = Duration::from_millis(250);

/// An acknowledged attestation: where its receipt said it was committed.
#[derive(Clone, Copy, Debug)]
pub struct Acked {
    pub id: AttestationId,
    pub height: u64,
    pub block: BlockHash,
    /// BLAKE3 of the verified receipt's bytes: a node serving the very
    /// same bytes later serves a receipt that verifies (verification is a
    /// pure function of the bytes and the genesis), so the final check
    /// need not spend a debug build's milliseconds on it again.
    pub receipt: ReceiptDigest,
}

/// BLAKE3 of a receipt's postcard bytes.
pub type ReceiptDigest = [u8; 32];

pub fn receipt_digest(receipt: &lotline_core::Receipt) -> ReceiptDigest {
    *blake3::hash(&receipt.to_bytes()).as_bytes()
}

#[derive(Debug, Default)]
pub struct Ledger {
    acked: Mutex<Vec<Acked>>,
    in_doubt: Mutex<Vec<AttestationId>>,
    /// Transient refusals (HTTP 429/503) and transport errors, by reason.
    refused: Mutex<BTreeMap<String, u64>>,
    pub submits: AtomicU64,
}

impl Ledger {
    fn ack(&self, acked: Acked) {
        if let Ok(mut list) = self.acked.lock() {
            list.push(acked);
        }
    }

    fn doubt(&self, id: AttestationId) {
        if let Ok(mut list) = self.in_doubt.lock() {
            list.push(id);
        }
    }

    fn refuse(&self, reason: String) {
        if let Ok(mut map) = self.refused.lock() {
            *map.entry(reason).or_default() += 1;
        }
    }

    pub fn acked(&self) -> Vec<Acked> {
        self.acked.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn in_doubt(&self) -> Vec<AttestationId> {
        self.in_doubt.lock().map(|l| l.clone()).unwrap_or_default()
    }

    pub fn refused(&self) -> BTreeMap<String, u64> {
        self.refused.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Everything a writer needs, shared.
#[derive(Debug)]
pub struct Load {
    pub genesis: Genesis,
    pub urls: Vec<String>,
    pub ledger: Ledger,
    pub violations: Arc<Violations>,
    pub stop: AtomicBool,
}

/// Starts `per_org` writers for each org; writer `w` of the org of node
/// `o` has home node `(o + w) % n`, so every node takes writes from
/// several orgs.
pub fn spawn_writers(
    load: &Arc<Load>,
    signers: &[Signer],
    per_org: usize,
) -> anyhow::Result<Vec<tokio::task::JoinHandle<()>>> {
    let n = load.urls.len();
    let mut tasks = Vec::new();
    for (o, signer) in signers.iter().enumerate() {
        for w in 0..per_org {
            let clients = load
                .urls
                .iter()
                .map(|u| Client::new(u).map(|c| c.with_timeout(SUBMIT_TIMEOUT)))
                .collect::<Result<Vec<_>, _>>()?;
            let writer = Writer {
                load: load.clone(),
                signer: signer.clone(),
                name: format!("{}-w{w}", signer.org()),
                lot_prefix: format!("ch{o}w{w}-"),
                home: (o + w) % n,
                clients,
            };
            tasks.push(tokio::spawn(writer.run()));
        }
    }
    Ok(tasks)
}

struct Writer {
    load: Arc<Load>,
    signer: Signer,
    name: String,
    /// Short: a GS1 lot (AI 10) has at most 20 characters.
    lot_prefix: String,
    home: usize,
    clients: Vec<Client>,
}

impl Writer {
    async fn run(self) {
        let n = self.clients.len();
        let mut failures = 0usize;
        let mut seq = 0u64;
        while !self.load.stop.load(Ordering::Relaxed) {
            // After a failure, try the next node: a client of a
            // consortium fails over rather than waiting for one node.
            let node = (self.home + failures) % n;
            seq += 1;
            let lot = format!("{}{seq}", self.lot_prefix);
            let envelope = match AttestationBuilder::new(self.load.genesis.chain_id(), &self.signer)
                .event(inspection(&lot))
                .nonce(lot.clone())
                .build()
            {
                Ok(e) => e,
                Err(e) => {
                    self.load.violations.record(format!(
                        "{}: could not build an attestation: {e}",
                        self.name
                    ));
                    return;
                }
            };
            let id = envelope.id();
            self.load.ledger.submits.fetch_add(1, Ordering::Relaxed);
            match self.clients[node].submit(&envelope, Wait::Committed).await {
                Ok(result) if result.status == Status::Committed => {
                    self.acknowledge(node, id, result.receipt).await;
                    failures = 0;
                    continue;
                }
                Ok(result) if result.status == Status::Pending => {
                    self.load.ledger.doubt(id);
                    self.load.ledger.refuse("pending at the wait limit".into());
                }
                Ok(result) => self.refused(
                    node,
                    id,
                    result.problem.map(|p| (p.status, p.slug().to_owned())),
                ),
                Err(SdkError::Rejected { status, problem }) => {
                    self.refused(node, id, Some((status, problem.slug().to_owned())))
                }
                Err(SdkError::Timeout { .. }) => {
                    self.load.ledger.doubt(id);
                    self.load.ledger.refuse("client timeout".into());
                }
                Err(SdkError::Http(e)) => {
                    self.load.ledger.doubt(id);
                    let what = if e.is_connect() {
                        "connection refused"
                    } else if e.is_timeout() {
                        "client timeout"
                    } else {
                        "transport error"
                    };
                    self.load.ledger.refuse(what.into());
                }
                Err(e) => {
                    self.load.ledger.doubt(id);
                    self.load.ledger.refuse(format!("other: {e}"));
                }
            }
            failures += 1;
            tokio::time::sleep(BACKOFF).await;
        }
    }

    async fn acknowledge(
        &self,
        node: usize,
        id: AttestationId,
        receipt: Option<lotline_core::Receipt>,
    ) {
        let Some(receipt) = receipt else {
            self.load.violations.record(format!(
                "n{node} answered committed for {id} without a receipt"
            ));
            return;
        };
        match lotline_sdk::verify_receipt_for(&id, &receipt, &self.load.genesis) {
            Ok(verified) => self.load.ledger.ack(Acked {
                id,
                height: verified.height,
                block: verified.block,
                receipt: receipt_digest(&receipt),
            }),
            Err(e) => self.load.violations.record(format!(
                "n{node} acknowledged {id} with a receipt that does not verify: {e}"
            )),
        }
    }

    /// A refusal: 429 and 503 say "not now" (the outcome is unknown: the
    /// attestation may have been admitted elsewhere), anything else refuses
    /// a valid attestation, which the node must not do.
    fn refused(&self, node: usize, id: AttestationId, why: Option<(u16, String)>) {
        match why {
            Some((status @ (429 | 503), slug)) => {
                self.load.ledger.doubt(id);
                self.load.ledger.refuse(format!("HTTP {status} {slug}"));
            }
            Some((status, slug)) => self.load.violations.record(format!(
                "n{node} refused a valid attestation {id} from {}: HTTP {status} {slug}",
                self.name
            )),
            None => self.load.violations.record(format!(
                "n{node} rejected {id} from {} without a problem",
                self.name
            )),
        }
    }
}

/// An inspection of a new lot: every role's write policy allows
/// `inspecting` ObjectEvents with an inspection result, and a lot the chain
/// has never seen passes the lineage guard.
fn inspection(lot: &str) -> Event {
    let value = serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T08:00:00.000Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "bizStep": "inspecting",
        "quantityList": [{
            "epcClass": format!("https://id.gs1.org/01/09506000134352/10/{lot}"),
            "quantity": 1.0,
            "uom": "KGM"
        }],
        "readPoint": {"id": "https://id.gs1.org/414/9506000134352"},
        "lotline:quality": {
            "kind": "inspection", "result": "pass", "method": "visual check",
            "measurements": [{"name": "mass", "value": 1.0, "uom": "KGM", "specMin": 0.5, "specMax": 1.5}]
        }
    });
    // The JSON above is fixed except for the lot: a failure here is a bug
    // in this file, caught by the unit test below.
    serde_json::from_value(value).unwrap_or_else(|e| panic!("the inspection template: {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_inspection_template_is_a_valid_event() {
        // The longest lot a writer makes: ch<org>w<writer>-<u64 seq>
        // would be 26 characters; 13-digit sequence numbers (20 in all)
        // are far beyond any run.
        let event = super::inspection("ch3w99-1234567890123");
        assert!(event.validate().is_empty(), "{:?}", event.validate());
    }
}
