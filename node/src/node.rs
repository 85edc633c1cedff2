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
use crate::consensus::BlockPolicy;
use crate::consensus::bft::{self, BftActor};
use crate::consensus::commit::Indexer;
use crate::consensus::solo::SoloEngine;
use crate::consensus::solo_actor::SoloActor;
use crate::governance::Governance;
use crate::mempool::Mempool;
use crate::net::{Network, NetworkHandle};
use crate::state::{HeadView, Shared};
use crate::store::vote_journal::{KeepAbove, VoteJournal};
use crate::store::{Store, StoreOpenReport};
use lotline_consensus::{Config as EngineConfig, Engine};

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
    #[error("[private]: {0}")]
    Private(String),
    #[error(transparent)]
    Join(#[from] crate::consensus::epoch::JoinError),
    #[error("{0}")]
    Restored(#[from] crate::ops::restored::MarkerError),
    #[error(
        "this single validator was restored from a backup and may have signed blocks after it; it does not start until an operator runs `lotline resume-voting` (docs/operations.md, \"Restoring a validator\")"
    )]
    RestoredSolo,
    #[error("network: {0}")]
    Network(String),
    #[error("restoring consensus from the vote journal: {0}")]
    Restore(String),
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
    #[error("[capture]: {0}")]
    Capture(String),
    #[error("[alerts]: {0}")]
    Alerts(String),
    #[error("[[webhooks]]: {0}")]
    Webhooks(String),
    #[error("EPCIS subscriptions: {0}")]
    Subscriptions(crate::store::StoreError),
    #[error("node config: {0}")]
    Credentials(#[from] crate::access::CredentialError),
    #[error("{0}")]
    Audit(#[from] crate::audit::AuditError),
    #[error("api.tls: {0}")]
    Tls(String),
}

/// A running node.
#[derive(Debug)]
pub struct Node {
    pub api_addr: SocketAddr,
    pub shared: Arc<Shared>,
    pub genesis: Arc<Genesis>,
    pub open_report: StoreOpenReport,
    /// The validator network (multi-validator consortia).
    pub net: Option<NetworkHandle>,
    /// The API is served over HTTPS.
    pub https: bool,
    actor: Option<JoinHandle<()>>,
    #[cfg(feature = "analytics")]
    analytics: Option<Arc<crate::analytics::Analytics>>,
    /// The quality alert follower (`[alerts]`).
    pub alerts: Option<Arc<crate::quality::alerts::Alerter>>,
    /// One delivery loop per `[[webhooks]]` endpoint.
    pub webhooks: Vec<crate::push::Delivery>,
    /// EPCIS named queries and subscriptions (their delivery loops).
    pub subscriptions: Arc<crate::epcis::subscriptions::Subscriptions>,
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
        let node_key = key.public_key();
        // With several validators a node whose key the genesis does not
        // name starts too: it follows the chain until a vote makes it a
        // validator (consensus::epoch), or stays a follower.
        if set.len() == 1 && set.index_of(&key.public_key()).is_none() {
            return Err(StartError::NotValidator);
        }
        let genesis = Arc::new(genesis);
        // A restored validator signs nothing until an operator lets it
        // (crate::ops::restored); one alone has nobody to follow.
        let restored = crate::ops::restored::Marker::read(&config.data_dir)?;
        if restored.is_some() && set.len() == 1 {
            return Err(StartError::RestoredSolo);
        }

        // Opening the store verifies the chain and may re-index; keep it off
        // the async workers.
        let data_dir = config.data_dir.clone();
        // The membership history: the store learns each epoch's validators
        // from it while it verifies the block log, admission and the actor
        // consult it after.
        let governance = Arc::new(Governance::new(genesis.clone()));
        let chain_set = crate::store::epochs::ChainSets::from(governance.clone());
        // The org's period keys (crypto-shredding, access::shred): one set
        // shared by the index, the reads and the shredding follower.
        let period_keys = match config.private.as_ref() {
            Some(section) => match &section.period_keys {
                Some(dir) => Some(Arc::new(
                    crate::access::shred::PeriodKeys::new(&genesis, &section.org, dir).ok_or_else(
                        || {
                            StartError::Private(
                                "[private] period_keys needs a genesis with [retention]".into(),
                            )
                        },
                    )?,
                )),
                None => None,
            },
            None => None,
        };
        // The index adds what this node's org key opens (store::Opener):
        // the quality series of a recipient org's node.
        let opener = match &config.private {
            None => None,
            Some(section) => {
                let mut key = org_encryption_key(&genesis, section).map_err(StartError::Private)?;
                key.periods = period_keys.clone();
                Some(Arc::new(key) as Arc<dyn crate::store::Opener>)
            }
        };
        let (store, open_report) =
            tokio::task::spawn_blocking(move || Store::open_with(&data_dir, chain_set, opener))
                .await
                .map_err(|e| StartError::Thread(std::io::Error::other(e)))??;
        let last = match store.height() {
            0 => None,
            height => store.read_block(height)?,
        };
        let keep = last.as_ref().map_or_else(KeepAbove::default, |r| {
            KeepAbove::committed(&r.block.header, &r.finality)
        });
        let (journal, journaled, journal_report) =
            VoteJournal::open(&config.data_dir.join("votes.journal"), keep)?;
        tracing::info!(
            height = open_report.height,
            truncated_log_bytes = open_report.log_truncated_bytes,
            truncated_journal_bytes = journal_report.truncated_bytes,
            verified_blocks = open_report.verified_blocks,
            log_index_rebuilt = open_report.log_index_rebuilt,
            reapplied_blocks = open_report.reapplied_blocks,
            sled_rebuilt = open_report.sled_rebuilt,
            "store opened"
        );
        let reader = store.reader();
        // Derived data: a projection that does not open is logged and left
        // off; the node serves everything else.
        #[cfg(feature = "analytics")]
        let analytics = match crate::analytics::Analytics::start(
            &config.data_dir,
            genesis.clone(),
            reader.clone(),
        ) {
            Ok(analytics) => Some(Arc::new(analytics)),
            Err(error) => {
                tracing::error!(%error, "analytics projection not started; POST /v1/sql answers 503");
                None
            }
        };
        let head = HeadView {
            height: store.height(),
            hash: store.head().map(|h| h.hash()),
            attestations: store.attestations(),
        };
        let shared = Shared::new(
            Mempool::new(config.mempool_attestations_max, config.mempool_bytes_max),
            head,
            governance.clone(),
        );
        let policy = BlockPolicy::next(&governance);
        let admission =
            Admission::with_governance(governance).bounding_issued_at(config.issued_at_skew_ms);
        let epcis = Arc::new(crate::epcis::Epcis {
            custodian: capture_custodian(config, &genesis)?,
            jobs: Default::default(),
            spool_dir: config.data_dir.join("capture-spool"),
            counters: Default::default(),
            document_bytes_max: config.capture.as_ref().map_or(0, |c| c.document_bytes_max),
        });
        crate::epcis::bulk::clear_spool_dir(&epcis.spool_dir);
        shared.metrics.watch_data_dir(&config.data_dir);
        shared.metrics.register(|r| epcis.counters.register(r));
        #[cfg(feature = "analytics")]
        if let Some(analytics) = &analytics {
            shared.metrics.register(|r| analytics.register_metrics(r));
        }

        let (actor, net) = if set.len() == 1 {
            let engine = SoloEngine::new(genesis.chain_id(), key, store.head(), &journaled.votes);
            let indexer = Indexer::start(store.reader(), shared.clone(), store.height())
                .map_err(StartError::Thread)?;
            let actor = SoloActor {
                engine,
                journal,
                store,
                indexer,
                shared: shared.clone(),
                policy,
            };
            let thread = std::thread::Builder::new()
                .name("consensus".into())
                .spawn(move || actor.run())
                .map_err(StartError::Thread)?;
            (thread, None)
        } else {
            // The engine starts in the epoch of the next height, as the
            // committed history has it (epoch 0 until a validator change).
            let history = shared.governance.history();
            let (epochs, current, net_config) = crate::consensus::epoch::join(
                &genesis,
                &key,
                restored.is_none(),
                config.p2p_peers.iter().cloned().collect(),
                config.p2p_listen.as_deref(),
                &history,
                store.height(),
            )?;
            let (events_tx, events) = std::sync::mpsc::sync_channel(bft::EVENTS_MAX);
            let wake = events_tx.clone();
            shared.idle.install(move || {
                // Full, the actor is busy and will look at the pool anyway.
                let _ = wake.try_send(bft::Event::Work);
            });
            let sink = bft::ActorSink {
                tx: events_tx.clone(),
                shared: shared.clone(),
            };
            let net = Network::start_with(net_config, &key, Arc::new(sink))
                .map_err(|e| StartError::Network(e.to_string()))?;
            shared.metrics.register(|r| net.metrics().register(r));
            let start = epochs.start(&current);
            let mut engine_config =
                EngineConfig::new(genesis.chain_id(), start.validators, start.index, start.key);
            engine_config.epoch = start.epoch;
            (engine_config.timeout_base_ms, engine_config.timeout_max_ms) =
                crate::consensus::timeouts(current.rules().consensus());
            engine_config.heartbeat_ms = config.heartbeat_ms;
            engine_config.voting = start.voting;
            if let Some(marker) = &restored {
                tracing::warn!(
                    backup_height = marker.backup_height,
                    restored_at_ms = marker.restored_at_ms,
                    "restored from a backup: following the chain without voting until `lotline resume-voting`"
                );
            }
            let last_finalized = last.map(|r| (r.block.header, r.finality));
            let engine = Engine::restore(
                engine_config,
                &journaled.votes,
                &journaled.records,
                last_finalized,
            )
            .map_err(|e| StartError::Restore(e.to_string()))?;
            let indexer = Indexer::start(store.reader(), shared.clone(), store.height())
                .map_err(StartError::Thread)?;
            let actor = BftActor {
                engine,
                journal,
                store,
                indexer,
                shared: shared.clone(),
                net: net.clone(),
                admission: admission.clone(),
                policy,
                events,
                events_tx,
                runtime: tokio::runtime::Handle::current(),
                state: Default::default(),
                mend: crate::consensus::mend::Mend::new(config.scrub, std::time::Instant::now()),
                epochs,
            };
            let thread = std::thread::Builder::new()
                .name("consensus".into())
                .spawn(move || actor.run())
                .map_err(StartError::Thread)?;
            (thread, Some(net))
        };

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
        let history = shared.governance.history();
        // The org of our node key, as the genesis or a committed
        // `addValidator` names it (none yet for a node that joins by vote).
        let node_org =
            crate::consensus::epoch::org_of(&genesis, &history, &node_key).unwrap_or_default();
        let credentials = crate::access::Credentials::from_entries_known(
            &config.credentials,
            &|org| history.known_org(org),
            &node_org,
        )?;
        let audit = crate::audit::AuditLog::open(&config.data_dir.join(crate::audit::DIR_NAME))?;
        audit
            .record(crate::audit::Access {
                caller: "node".into(),
                org: Some(node_org),
                client: None,
                action: crate::audit::Action::Admin,
                resource: format!("start with {} credential(s)", credentials.len()),
                outcome: 0,
            })
            .await?;
        let tls = match &config.tls {
            Some(paths) => Some(crate::tls::server_config(paths).map_err(StartError::Tls)?),
            None => None,
        };
        let ingest = crate::ingest::Ingest::new(shared.clone(), reader.clone(), net.clone());
        let private_key = match &config.private {
            None => None,
            Some(section) => {
                let mut org_key =
                    org_encryption_key(&genesis, section).map_err(StartError::Private)?;
                // Crypto-shredding: the follower deletes expired period keys
                // as the chain passes their period (access::shred).
                if let Some(periods) = &period_keys {
                    crate::access::shred::start(
                        periods.clone(),
                        reader.clone(),
                        shared.clone(),
                        audit.clone(),
                    );
                    org_key.periods = Some(periods.clone());
                }
                Some(org_key)
            }
        };
        let alerts = match &config.alerts {
            None => None,
            Some(section) => {
                let custodian =
                    custodian(&genesis, &section.org, &section.key).map_err(StartError::Alerts)?;
                let parts = crate::quality::alerts::follower::Parts {
                    data_dir: config.data_dir.clone(),
                    genesis: genesis.clone(),
                    reader: reader.clone(),
                    ingest: ingest.clone(),
                    admission: admission.clone(),
                    custodian,
                    from: section.from,
                    thresholds: crate::quality::alerts::detect::Thresholds {
                        supplier_nc_rate_max: section.supplier_nc_rate_max,
                        supplier_lots_min: section.supplier_lots_min,
                    },
                };
                let alerter = crate::quality::alerts::Alerter::start(parts)
                    .map_err(|e| StartError::Alerts(e.to_string()))?;
                Some(Arc::new(alerter))
            }
        };
        let webhooks = start_webhooks(config, &genesis, &reader)?;
        let subscriptions = crate::epcis::subscriptions::Subscriptions::start(
            reader.clone(),
            shared.governance.clone(),
            config.subscription_allow.clone(),
            &config.data_dir,
        )
        .await
        .map_err(StartError::Subscriptions)?;
        let ctx = Arc::new(ApiContext {
            shared: shared.clone(),
            ingest,
            reader,
            admission,
            genesis: genesis.clone(),
            genesis_toml,
            epcis,
            access: crate::access::Access::new(credentials, config.limits),
            audit,
            subscriptions: subscriptions.clone(),
            private_key,
            #[cfg(feature = "analytics")]
            analytics: analytics.clone(),
            sessions: crate::dashboard::session::Sessions::new(config.tls.is_some()),
        });
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let router = api::router(ctx);
        let server = match tls {
            None => tokio::spawn(api::serve::serve(listener, router, stop_rx)),
            Some(tls) => {
                let app = router.into_make_service_with_connect_info::<SocketAddr>();
                crate::tls::serve(listener, app, tls, stop_rx).map_err(|source| {
                    StartError::Listen {
                        addr: config.listen,
                        source,
                    }
                })?
            }
        };
        tracing::info!(%api_addr, chain = %genesis.chain_id(), validator = ?set.index_of(&node_key), validators = set.len(), "node started");
        Ok(Node {
            api_addr,
            shared,
            genesis,
            open_report,
            net,
            https: config.tls.is_some(),
            actor: Some(actor),
            #[cfg(feature = "analytics")]
            analytics,
            alerts,
            webhooks,
            subscriptions,
            server: Some(server),
            stop_server: Some(stop_tx),
        })
    }

    pub fn url(&self) -> String {
        let scheme = if self.https { "https" } else { "http" };
        format!("{scheme}://{}", self.api_addr)
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
        for delivery in std::mem::take(&mut self.webhooks) {
            delivery.stop().await;
        }
        self.subscriptions.stop().await;
        if let Some(alerts) = self.alerts.take() {
            let _ = tokio::task::spawn_blocking(move || alerts.stop()).await;
        }
        self.shared.begin_shutdown();
        if let Some(actor) = self.actor.take() {
            let _ = tokio::task::spawn_blocking(move || actor.join()).await;
        }
        if let Some(net) = self.net.take() {
            net.shutdown().await;
        }
        #[cfg(feature = "analytics")]
        if let Some(analytics) = self.analytics.take() {
            let _ = tokio::task::spawn_blocking(move || analytics.stop()).await;
        }
    }
}

/// The custodial signer of `[capture]`: the key must be a client key of
/// the named org, or the node refuses to start (rather than sign events
/// admission would reject).
fn capture_custodian(
    config: &NodeConfig,
    genesis: &Genesis,
) -> Result<Option<crate::epcis::capture::Custodian>, StartError> {
    let Some(capture) = &config.capture else {
        return Ok(None);
    };
    custodian(genesis, &capture.org, &capture.key)
        .map(Some)
        .map_err(StartError::Capture)
}

/// One delivery loop per configured endpoint, each pushing the committed
/// alerts its `reads_as` org may read.
fn start_webhooks(
    config: &NodeConfig,
    genesis: &Arc<Genesis>,
    reader: &crate::store::StoreReader,
) -> Result<Vec<crate::push::Delivery>, StartError> {
    let mut out = Vec::new();
    for hook in &config.webhooks {
        let fail = |m: String| StartError::Webhooks(format!("{}: {m}", hook.id));
        let Some(org) = genesis.org(&hook.reads_as) else {
            return Err(fail(format!(
                "reads_as {:?} is not an org in genesis",
                hook.reads_as
            )));
        };
        let secret = std::fs::read(&hook.secret)
            .map_err(|e| fail(format!("secret {}: {e}", hook.secret.display())))?;
        let secret: Vec<u8> = secret.trim_ascii().to_vec();
        if secret.len() < 16 {
            return Err(fail(format!(
                "secret {} holds {} bytes; at least 16",
                hook.secret.display(),
                secret.len()
            )));
        }
        let url = reqwest::Url::parse(&hook.url).map_err(|e| fail(e.to_string()))?;
        let feed = crate::quality::alerts::feed::AlertFeed {
            reader: reader.clone(),
            genesis: genesis.clone(),
            identity: crate::access::Identity::Caller(crate::access::Caller {
                org: org.id.clone(),
                role: org.role,
                credential: format!("webhook {}", hook.id),
                operator: false,
            }),
        };
        let endpoint = crate::push::Endpoint {
            id: hook.id.clone(),
            url,
            secret,
        };
        let delivery =
            crate::push::Delivery::start(endpoint, Arc::new(feed), &config.data_dir.join("push"))
                .map_err(|e| fail(e.to_string()))?;
        out.push(delivery);
    }
    Ok(out)
}

/// A signer for `org` from the key file `path` (`[capture]`, `[alerts]`):
/// the key must be a client key of that org.
fn custodian(
    genesis: &Genesis,
    org: &str,
    path: &std::path::Path,
) -> Result<crate::epcis::capture::Custodian, String> {
    let key = lotline_genesis::keys::read_signing_key(path)
        .map_err(|e| format!("key {}: {e}", path.display()))?;
    match genesis.key_owner(&key.public_key()) {
        Some(owner) if owner.id == org => Ok(crate::epcis::capture::Custodian {
            org: org.to_owned(),
            key,
        }),
        Some(owner) => Err(format!(
            "key {} belongs to org {:?}, not {org:?}",
            path.display(),
            owner.id
        )),
        None => Err(format!(
            "key {} is not a client key of any org in genesis",
            path.display()
        )),
    }
}

/// Reads `[private]`'s key file and checks it is the key genesis gives the
/// org, so a node never opens with (or claims) a key the consortium did not
/// agree on. The error names the file and the org, never key material.
fn org_encryption_key(
    genesis: &Genesis,
    section: &crate::config::PrivateConfig,
) -> Result<crate::access::private::OrgKey, String> {
    let org = genesis
        .org(&section.org)
        .ok_or_else(|| format!("org {:?} is not in genesis", section.org))?;
    let key =
        lotline_genesis::keys::read_encryption_key(&section.key).map_err(|e| e.to_string())?;
    if org.encryption_key != Some(key.public_key()) {
        return Err(format!(
            "{} is not the encryption key genesis gives org {:?}",
            section.key.display(),
            section.org
        ));
    }
    // Retired keys need no check against genesis: a node opens only a wrap
    // that names the key, and admission accepted only wraps to keys the
    // consortium gave the org when they were sealed.
    let mut keys = vec![key];
    for path in &section.retired_keys {
        let retired =
            lotline_genesis::keys::read_encryption_key(path).map_err(|e| e.to_string())?;
        if keys.iter().any(|k| k.public_key() == retired.public_key()) {
            return Err(format!("{} repeats a key of [private]", path.display()));
        }
        keys.push(retired);
    }
    Ok(crate::access::private::OrgKey {
        org: section.org.clone(),
        keys,
        periods: None,
    })
}
