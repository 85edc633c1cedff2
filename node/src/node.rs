//! Wiring: open the store and journal, restore the engine, start the
//! consensus actor thread and the HTTP server. [`Node::start`] is what the
//! `lotline node` command, the demo and the end-to-end tests run.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use lotline_genesis::Genesis;
use tokio::net::TcpListener;
use tokio::task::JoinHandle as TaskHandle;

use crate::admission::Admission;
use crate::api::{self, ApiContext};
use crate::config::NodeConfig;
use crate::consensus::actor::{Actor, BlockPolicy};
use crate::consensus::solo::SoloEngine;
use crate::mempool::Mempool;
use crate::state::{HeadView, Shared};
use crate::store::vote_journal::VoteJournal;
use crate::store::{Store, StoreOpenReport};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("genesis {path}: {message}")]
    Genesis { path: String, message: String },
    #[error("node key {path}: {message}")]
    NodeKey { path: String, message: String },
    #[error(
        "this node key is not a validator of the genesis; single-validator mode needs the key of its one validator"
    )]
    NotValidator,
    #[error(
        "the genesis lists {0} validators; this build runs single-validator consortia (the multi-validator BFT engine is the next milestone)"
    )]
    MultiValidator(usize),
    #[error("store: {0}")]
    Store(#[from] crate::store::StoreError),
    #[error("vote journal: {0}")]
    Journal(#[from] crate::store::vote_journal::VoteJournalError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("cannot start the consensus thread: {0}")]
    Thread(std::io::Error),
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub api_addr: SocketAddr,
    pub shared: Arc<Shared>,
    pub genesis: Arc<Genesis>,
    pub open_report: StoreOpenReport,
    actor: Option<JoinHandle<()>>,
    server: Option<TaskHandle<()>>,
    stop_server: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Node {
    /// Starts a node from a validated config. Must run inside a tokio runtime.
    pub async fn start(config: &NodeConfig) -> Result<Node, StartError> {
        let genesis_toml =
            std::fs::read_to_string(&config.genesis).map_err(|e| StartError::Genesis {
                path: config.genesis.display().to_string(),
                message: e.to_string(),
            })?;
        let genesis = Genesis::from_toml(&genesis_toml).map_err(|e| StartError::Genesis {
            path: config.genesis.display().to_string(),
            message: e.to_string(),
        })?;
        let key = lotline_genesis::keys::read_signing_key(&config.node_key).map_err(|e| {
            StartError::NodeKey {
                path: config.node_key.display().to_string(),
                message: e.to_string(),
            }
        })?;
        let set = genesis.validator_set();
        if set.len() != 1 {
            return Err(StartError::MultiValidator(set.len()));
        }
        if set.index_of(&key.public_key()).is_none() {
            return Err(StartError::NotValidator);
        }
        let genesis = Arc::new(genesis);

        // Opening the store verifies the chain and may re-index; keep it off
        // the async workers.
        let data_dir = config.data_dir.clone();
        let chain_set = set.clone();
        let (store, open_report) =
            tokio::task::spawn_blocking(move || Store::open(&data_dir, chain_set))
                .await
                .map_err(|e| StartError::Thread(std::io::Error::other(e)))??;
        let (journal, votes, journal_report) =
            VoteJournal::open(&config.data_dir.join("votes.journal"))?;
        tracing::info!(
            height = open_report.height,
            truncated_log_bytes = open_report.log_truncated_bytes,
            truncated_journal_bytes = journal_report.truncated_bytes,
            reapplied_blocks = open_report.reapplied_blocks,
            sled_rebuilt = open_report.sled_rebuilt,
            "store opened"
        );
        let engine = SoloEngine::new(genesis.chain_id(), key, store.head(), &votes);
        let reader = store.reader();
        let head = HeadView {
            height: store.height(),
            hash: store.head().map(|h| h.hash()),
            attestations: count_attestations(&reader, store.height()),
        };
        let shared = Shared::new(
            Mempool::new(config.mempool_attestations_max, config.mempool_bytes_max),
            head,
        );
        let params = genesis.consensus();
        let policy = BlockPolicy {
            attestations_max: (params.block_max_attestations as usize)
                .clamp(1, lotline_core::limits::BLOCK_ATTESTATIONS_MAX),
            interval: Duration::from_millis(params.block_interval_ms),
            linger: crate::consensus::actor::BLOCK_LINGER.min(Duration::from_millis(params.block_interval_ms)),
        };
        let actor = Actor {
            engine,
            journal,
            store,
            shared: shared.clone(),
            policy,
        };
        let actor = std::thread::Builder::new()
            .name("consensus".into())
            .spawn(move || actor.run())
            .map_err(StartError::Thread)?;

        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|source| StartError::Listen {
                    addr: config.listen,
                    source,
                })?;
        let api_addr = listener.local_addr().map_err(|source| StartError::Listen {
            addr: config.listen,
            source,
        })?;
        let ctx = Arc::new(ApiContext {
            shared: shared.clone(),
            reader,
            admission: Admission::new(genesis.clone()),
            genesis: genesis.clone(),
            genesis_toml,
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let app = api::router(ctx);
        let server = tokio::spawn(async move {
            let result = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stop_rx.await;
                })
                .await;
            if let Err(error) = result {
                tracing::error!(%error, "HTTP server stopped");
            }
        });
        tracing::info!(%api_addr, chain = %genesis.chain_id(), "node started");
        Ok(Node {
            api_addr,
            shared,
            genesis,
            open_report,
            actor: Some(actor),
            server: Some(server),
            stop_server: Some(stop_tx),
        })
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// Stops accepting requests, lets the actor commit what is pending, and
    /// waits for both.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop_server.take() {
            let _ = stop.send(());
        }
        if let Some(server) = self.server.take() {
            let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        }
        self.shared.begin_shutdown();
        if let Some(actor) = self.actor.take() {
            let _ = tokio::task::spawn_blocking(move || actor.join()).await;
        }
    }
}

fn count_attestations(reader: &crate::store::StoreReader, height: u64) -> u64 {
    // Sum of block counts; cheap (one small record per block) and only at start.
    (1..=height)
        .filter_map(|h| reader.block(h).ok().flatten())
        .map(|b| u64::from(b.header.count))
        .sum()
}
