//! EPCIS 2.0 capture and query on the node, without HTTP: the embedded JSON
//! Schema ([`schema`]), reading capture bodies and custodial signing
//! ([`capture`]), the capture flow of each route ([`flow`]: job, parser
//! thread, pipeline, commit wait), the capture job registry ([`jobs`]),
//! refusing repeated captures ([`dedup`]), master data ([`master_data`]), XML ([`xml`]), the query engine
//! ([`query`]) and the JSON-LD it returns ([`document`]). The axum handlers
//! (`api::epcis`) only translate between HTTP and these. Named queries and
//! their subscriptions (webhooks, WebSocket streams) are [`subscriptions`].
//!
//! Capture documents stream ([`stream`], [`bulk`]): read, checked, signed
//! and admitted a chunk at a time, in bounded memory whatever their size.
//! Capture reuses the attestation write path unchanged: events become
//! statements signed with the capturing org's key, then go through the same
//! admission, mempool and gossip as `POST /v1/attestations`. Queries read the
//! index that `store::events` writes at commit.

pub mod bulk;
pub mod capture;
pub mod dedup;
pub mod document;
pub mod flow;
pub mod fsma;
pub mod jobs;
pub mod master_data;
pub mod query;
pub mod schema;
pub mod stream;
pub mod subscriptions;
pub mod xml;

/// EPCIS state shared by the handlers.
#[derive(Debug, Default)]
pub struct Epcis {
    /// The org whose key signs captured events; `None` disables capture.
    pub custodian: Option<capture::Custodian>,
    pub jobs: jobs::Jobs,
    /// Where `rollback` captures spool their signed events
    /// (`<data_dir>/capture-spool`).
    pub spool_dir: std::path::PathBuf,
    pub counters: bulk::Counters,
    /// Largest capture document accepted (`[capture] document_bytes_max`).
    pub document_bytes_max: u64,
}
