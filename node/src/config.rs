//! The operator's node configuration (TOML), validated into [`NodeConfig`]
//! with one error per broken constraint naming the field.
//!
//! ```toml
//! data_dir = "data/manufacturer"        # block log, vote journal, sled index
//! genesis = "consortium/genesis.toml"
//! node_key = "consortium/keys/manufacturer/node.key"
//! [api]
//! listen = "127.0.0.1:8080"
//! [api.tls]                             # optional: serve HTTPS (PEM files)
//! cert = "tls/cert.pem"
//! key = "tls/key.pem"
//! [api.rate_limit]                      # optional; these are the defaults
//! per_ip_per_s = 200                    # anonymous callers and bad tokens, per client IP
//! per_ip_burst = 400
//! per_credential_per_s = 1000           # callers with a credential, per credential
//! per_credential_burst = 2000
//! buckets_max = 10000                   # buckets kept per kind (memory bound)
//! [[api.credentials]]                   # `lotline token new` prints these lines
//! id = "supplier-erp"
//! org = "supplier"
//! role = "supplier"                     # the org's genesis role, or "operator"
//! token_hash = "<64 hex>"
//! [mempool]                             # optional
//! attestations_max = 200000
//! bytes_max = 268435456
//! [p2p]                                 # optional, several validators
//! listen = "/ip4/0.0.0.0/tcp/7101"      # default: this validator's p2p in genesis
//! peers = [{ node_key = "<64 hex>", addr = "/ip4/10.0.0.5/tcp/7101" }]  # dial addresses by node key, before the chain's p2p hints
//! [consensus]                           # optional
//! heartbeat_ms = 60000                  # an idle chain adds one block this often
//! [storage]                             # optional, several validators
//! scrub_secs = 3600                     # read the block log back (at start, then this often) and mend damage from peers; 0: only when a read meets damage
//! [admission]                           # optional
//! issued_at_skew_ms = 300000            # a client's issuedAtMs may be this far from the clock, either way
//! [capture]                             # optional: EPCIS capture on this node
//! org = "manufacturer"                  # the org captured events are signed as
//! key = "consortium/keys/manufacturer/client.key"  # one of its client keys
//! document_bytes_max = 1073741824       # largest capture document (the default)
//! ```
//! [alerts]                              # optional: record quality alerts on the chain
//! org = "manufacturer"                  # the org alerts are signed as
//! key = "consortium/keys/manufacturer/client.key"  # one of its client keys
//! supplier_nc_rate_max = 0.1            # a supplier whose lots fail more often: alert
//! supplier_lots_min = 5                 # ... once this many of its lots were judged
//! from = "genesis"                      # first start: judge the chain from block 1; "head": only what commits after
//! [[webhooks]]                          # optional, repeatable: push alerts
//! id = "qa-desk"                        # names its position file and deliveries
//! url = "https://qa.example.com/hooks/lotline"  # the only address ever called
//! secret = "secrets/qa-desk.hmac"       # file: the HMAC-SHA256 key, shared with the receiver
//! reads_as = "manufacturer"             # the org whose read rights decide what is pushed
//! [subscriptions]                       # optional: EPCIS query subscriptions by webhook
//! allow = ["hooks.example.com", "10.20.0.0/16"]  # the only hosts/blocks a `dest` may name
//! [private]                             # optional: open private fields (statement v2)
//! org = "manufacturer"                  # this node's org; must be a recipient to open
//! key = "consortium/keys/manufacturer/encryption.key"  # its X25519 key file (0600)
//! retired_keys = ["consortium/keys/manufacturer/encryption-2026.key"]  # after a rotation: earlier keys, still open old records
//! period_keys = "consortium/keys/manufacturer/periods"  # with genesis [retention]: <period>.key files, deleted when the period expires
//! Without `[private]` the node stores and certifies private sections but
//! serves no plaintext (`GET /v1/attestations/{id}/private` answers 409).
//! Without `[alerts]` the node evaluates nothing and `GET /v1/alerts` lists
//! what other nodes recorded.
//! Without `[capture]`, `/epcis/capture` and `POST /epcis/events` answer
//! 501 `capture-not-configured` (custodial signing is opt-in: the node then
//! holds an org's member key).
//! Relative paths are relative to the config file's directory.

use std::net::SocketAddr;
use std::num::NonZeroU64;
use std::path::{Path, PathBuf};

use lotline_consensus::config::HEARTBEAT_MS_DEFAULT;
use lotline_core::limits::CAPTURE_BYTES_MAX;
use serde::Deserialize;

use crate::access::{CredentialEntry, Limits, Rate};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    data_dir: PathBuf,
    genesis: PathBuf,
    node_key: PathBuf,
    api: RawApi,
    #[serde(default)]
    mempool: RawMempool,
    #[serde(default)]
    p2p: RawP2p,
    #[serde(default)]
    consensus: RawConsensus,
    #[serde(default)]
    storage: RawStorage,
    #[serde(default)]
    admission: RawAdmission,
    capture: Option<RawCapture>,
    alerts: Option<RawAlerts>,
    #[serde(default)]
    private: Option<RawPrivate>,
    #[serde(default)]
    webhooks: Vec<RawWebhook>,
    #[serde(default)]
    subscriptions: RawSubscriptions,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSubscriptions {
    #[serde(default)]
    allow: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWebhook {
    id: String,
    url: String,
    secret: PathBuf,
    reads_as: String,
}

/// A webhook endpoint the operator configured (`push/`): committed alerts
/// that `reads_as` may read are pushed to `url`, signed with the key in
/// the file `secret`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WebhookConfig {
    pub id: String,
    pub url: String,
    pub secret: PathBuf,
    pub reads_as: String,
}

/// Most `[[webhooks]]` one node pushes to.
pub const WEBHOOKS_MAX: usize = 16;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAlerts {
    org: String,
    key: PathBuf,
    supplier_nc_rate_max: Option<f64>,
    supplier_lots_min: Option<u32>,
    from: Option<AlertsFrom>,
}

/// Quality alerts recorded on the chain (`quality::alerts`): rules are
/// evaluated as blocks commit and each firing is signed as `org`.
#[derive(Clone, Debug, PartialEq)]
pub struct AlertsConfig {
    pub org: String,
    pub key: PathBuf,
    /// A supplier whose share of non-conforming lots exceeds this fires
    /// `supplierNonConformance` (0 < rate <= 1).
    pub supplier_nc_rate_max: f64,
    /// Lots of a supplier that must have been judged before its rate counts.
    pub supplier_lots_min: u32,
    /// Where a follower with no saved position starts.
    pub from: AlertsFrom,
}

/// Where the alert follower starts the first time (`[alerts] from`); its
/// saved position decides after that.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertsFrom {
    /// Block 1: every rule the chain so far fires is stated.
    #[default]
    Genesis,
    /// The head at the first start: a node that begins alerting on a long
    /// chain states only what commits after, not years of history at once.
    Head,
}

/// Default of `alerts.supplier_nc_rate_max`.
pub const SUPPLIER_NC_RATE_MAX_DEFAULT: f64 = 0.1;
/// Default of `alerts.supplier_lots_min`.
pub const SUPPLIER_LOTS_MIN_DEFAULT: u32 = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivate {
    org: String,
    key: PathBuf,
    #[serde(default)]
    retired_keys: Vec<PathBuf>,
    period_keys: Option<PathBuf>,
}

/// This node's org encryption key (`[private]`): which org it opens
/// private sections as, and the key file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrivateConfig {
    pub org: String,
    /// The org's current encryption key (the one genesis, or the
    /// membership after a rotation, gives it).
    pub key: PathBuf,
    /// The org's earlier encryption keys, kept after a rotation so records
    /// wrapped to them stay readable (a wrap names the key it is to).
    pub retired_keys: Vec<PathBuf>,
    /// The folder of the org's period keys (`<period>.key`), on a
    /// consortium with retention classes. The node deletes a period's file
    /// when the period expires (crypto-shredding, `access::shred`).
    pub period_keys: Option<PathBuf>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCapture {
    org: String,
    key: PathBuf,
    document_bytes_max: Option<u64>,
}

/// Custodial signing for EPCIS capture: events captured on this node are
/// signed as `org` with the member key in the file `key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CaptureConfig {
    pub org: String,
    pub key: PathBuf,
    /// Largest capture document, at most (and by default)
    /// [`lotline_core::limits::CAPTURE_BYTES_MAX`]; larger ones get 413.
    pub document_bytes_max: u64,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConsensus {
    heartbeat_ms: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStorage {
    scrub_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdmission {
    issued_at_skew_ms: Option<u64>,
}

/// Largest `[admission] issued_at_skew_ms`: one day. A key period is a
/// year or so; more than a day of skew is a broken clock, not skew.
pub const ISSUED_AT_SKEW_MS_MAX: u64 = 86_400_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawP2p {
    listen: Option<String>,
    #[serde(default)]
    peers: Vec<RawPeer>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeer {
    node_key: String,
    addr: String,
}

/// Most `[p2p] peers` entries (the transport's peer table holds at most
/// as many keys).
pub const P2P_PEERS_MAX: usize = crate::net::config::PEERS_MAX;

/// `[p2p] peers`: typed, each address a multiaddr.
fn parse_peers(
    raw: Vec<RawPeer>,
) -> Result<Vec<(lotline_core::PublicKey, libp2p::Multiaddr)>, ConfigError> {
    if raw.len() > P2P_PEERS_MAX {
        return Err(ConfigError::Above {
            field: "p2p.peers",
            max: P2P_PEERS_MAX as u64,
        });
    }
    raw.into_iter()
        .enumerate()
        .map(|(i, peer)| {
            let key = lotline_core::PublicKey::from_hex(&peer.node_key).map_err(|_| {
                ConfigError::PeerKey {
                    index: i,
                    value: peer.node_key.clone(),
                }
            })?;
            let addr = peer.addr.parse().map_err(|_| ConfigError::PeerAddr {
                index: i,
                value: peer.addr.clone(),
            })?;
            Ok((key, addr))
        })
        .collect()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApi {
    listen: String,
    #[serde(default)]
    credentials: Vec<CredentialEntry>,
    #[serde(default)]
    rate_limit: RawRateLimit,
    tls: Option<RawTls>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRateLimit {
    per_ip_per_s: Option<u32>,
    per_ip_burst: Option<u32>,
    per_credential_per_s: Option<u32>,
    per_credential_burst: Option<u32>,
    buckets_max: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert: PathBuf,
    key: PathBuf,
}

/// PEM files of the API's HTTPS certificate chain and private key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
}

pub const RATE_PER_IP_PER_S_DEFAULT: u32 = 200;
pub const RATE_PER_IP_BURST_DEFAULT: u32 = 400;
pub const RATE_PER_CREDENTIAL_PER_S_DEFAULT: u32 = 1000;
pub const RATE_PER_CREDENTIAL_BURST_DEFAULT: u32 = 2000;
pub const RATE_BUCKETS_MAX_DEFAULT: usize = 10_000;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMempool {
    attestations_max: Option<usize>,
    bytes_max: Option<usize>,
}

/// A validated node configuration.
#[derive(Clone, Debug)]
pub struct NodeConfig {
    pub data_dir: PathBuf,
    pub genesis: PathBuf,
    pub node_key: PathBuf,
    pub listen: SocketAddr,
    pub mempool_attestations_max: usize,
    pub mempool_bytes_max: usize,
    /// libp2p listen address; default: this validator's `p2p` in genesis
    /// (or in the `addValidator` that added it).
    pub p2p_listen: Option<String>,
    /// Where to dial validators, by node key, before the chain's `p2p`
    /// hints: a node that joins by vote, or a validator that moved.
    /// Naming a key here does not admit it: the chain decides who is
    /// admitted (`consensus::epoch`).
    pub p2p_peers: Vec<(lotline_core::PublicKey, libp2p::Multiaddr)>,
    /// With nothing to order, views wait this long before their leader
    /// proposes (an empty block) and their timers start: the heartbeat of
    /// an idle chain (`lotline_consensus::Config::heartbeat_ms`). A local
    /// timer, not a consensus rule. Several validators only.
    pub heartbeat_ms: NonZeroU64,
    /// How often a validator reads its whole block log back to find damage
    /// nobody asked for, and mends it from its peers (`consensus::mend`);
    /// `None` (`scrub_secs = 0`): only when a read meets damage.
    pub scrub: Option<std::time::Duration>,
    /// How far a client's `issuedAtMs` may be from this node's clock,
    /// either way ([`crate::admission::Admission::bounding_issued_at`]):
    /// it chooses the record's key period, so it bounds how far a
    /// submitter can move a record's retention.
    pub issued_at_skew_ms: u64,
    /// EPCIS capture signing identity; `None` disables capture.
    pub capture: Option<CaptureConfig>,
    /// Quality alerts; `None`: this node records none.
    pub alerts: Option<AlertsConfig>,
    /// The org key that opens private fields; `None`: this node opens none.
    pub private: Option<PrivateConfig>,
    /// Webhook endpoints alerts are pushed to.
    pub webhooks: Vec<WebhookConfig>,
    /// The hosts and address blocks an EPCIS subscription's `dest` may
    /// name (`[subscriptions] allow`); empty: no webhook subscriptions.
    pub subscription_allow: crate::epcis::subscriptions::destination::Allowlist,
    /// API credentials (checked against the genesis when the node starts).
    pub credentials: Vec<CredentialEntry>,
    pub limits: Limits,
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<TlsPaths>,
}

pub const MEMPOOL_ATTESTATIONS_DEFAULT: usize = 200_000;
/// An hour: a million events' log (about 160 MB) read back once an hour.
pub const SCRUB_SECS_DEFAULT: u64 = 3600;
pub const MEMPOOL_BYTES_DEFAULT: usize = 256 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("api.listen: {value:?} is not a socket address like 127.0.0.1:8080")]
    Listen { value: String },
    #[error("{field}: {path} does not exist")]
    Missing { field: &'static str, path: PathBuf },
    #[error("{field} must be greater than zero")]
    Zero { field: &'static str },
    #[error("{field} must be at most {max}")]
    Above { field: &'static str, max: u64 },
    #[error("{field}: {value} is not a rate above 0 and at most 1")]
    Rate { field: &'static str, value: f64 },
    #[error("webhooks: {0}")]
    Webhook(String),
    #[error("p2p.peers[{index}].node_key: {value:?} is not the hex of an Ed25519 public key")]
    PeerKey { index: usize, value: String },
    #[error("p2p.peers[{index}].addr: {value:?} is not a multiaddr like /ip4/10.0.0.5/tcp/7101")]
    PeerAddr { index: usize, value: String },
    #[error("subscriptions.allow: {0}")]
    SubscriptionAllow(#[from] crate::epcis::subscriptions::destination::AllowError),
}

/// Ids are file names and header values; URLs are absolute http(s).
fn check_webhooks(webhooks: &[WebhookConfig]) -> Result<(), ConfigError> {
    if webhooks.len() > WEBHOOKS_MAX {
        return Err(ConfigError::Webhook(format!(
            "{} endpoints, at most {WEBHOOKS_MAX}",
            webhooks.len()
        )));
    }
    let mut ids = std::collections::BTreeSet::new();
    for w in webhooks {
        let good_id = !w.id.is_empty()
            && w.id.len() <= 64
            && w.id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !good_id {
            return Err(ConfigError::Webhook(format!(
                "id {:?} must be 1 to 64 letters, digits, '-' or '_'",
                w.id
            )));
        }
        if !ids.insert(w.id.as_str()) {
            return Err(ConfigError::Webhook(format!("id {:?} is used twice", w.id)));
        }
        match reqwest::Url::parse(&w.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            Ok(_) => {
                return Err(ConfigError::Webhook(format!(
                    "{}: url {:?} is not an http or https URL with a host",
                    w.id, w.url
                )));
            }
            Err(e) => {
                return Err(ConfigError::Webhook(format!(
                    "{}: url {:?}: {e}",
                    w.id, w.url
                )));
            }
        }
    }
    Ok(())
}

fn non_zero(field: &'static str, value: u32) -> Result<std::num::NonZeroU32, ConfigError> {
    std::num::NonZeroU32::new(value).ok_or(ConfigError::Zero { field })
}

fn limits(raw: &RawRateLimit) -> Result<Limits, ConfigError> {
    let buckets_max = raw.buckets_max.unwrap_or(RATE_BUCKETS_MAX_DEFAULT);
    if buckets_max == 0 {
        return Err(ConfigError::Zero {
            field: "api.rate_limit.buckets_max",
        });
    }
    Ok(Limits {
        per_ip: Rate {
            per_s: non_zero(
                "api.rate_limit.per_ip_per_s",
                raw.per_ip_per_s.unwrap_or(RATE_PER_IP_PER_S_DEFAULT),
            )?,
            burst: non_zero(
                "api.rate_limit.per_ip_burst",
                raw.per_ip_burst.unwrap_or(RATE_PER_IP_BURST_DEFAULT),
            )?,
        },
        per_credential: Rate {
            per_s: non_zero(
                "api.rate_limit.per_credential_per_s",
                raw.per_credential_per_s
                    .unwrap_or(RATE_PER_CREDENTIAL_PER_S_DEFAULT),
            )?,
            burst: non_zero(
                "api.rate_limit.per_credential_burst",
                raw.per_credential_burst
                    .unwrap_or(RATE_PER_CREDENTIAL_BURST_DEFAULT),
            )?,
        },
        buckets_max,
    })
}

impl NodeConfig {
    pub fn load(path: &Path) -> Result<NodeConfig, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        NodeConfig::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates; relative paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<NodeConfig, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: PathBuf::new(),
            message: e.to_string(),
        })?;
        let listen = raw.api.listen.parse().map_err(|_| ConfigError::Listen {
            value: raw.api.listen.clone(),
        })?;
        let resolve = |p: PathBuf| if p.is_absolute() { p } else { base.join(p) };
        let config = NodeConfig {
            data_dir: resolve(raw.data_dir),
            genesis: resolve(raw.genesis),
            node_key: resolve(raw.node_key),
            listen,
            mempool_attestations_max: raw
                .mempool
                .attestations_max
                .unwrap_or(MEMPOOL_ATTESTATIONS_DEFAULT),
            mempool_bytes_max: raw.mempool.bytes_max.unwrap_or(MEMPOOL_BYTES_DEFAULT),
            p2p_listen: raw.p2p.listen,
            p2p_peers: parse_peers(raw.p2p.peers)?,
            heartbeat_ms: NonZeroU64::new(
                raw.consensus.heartbeat_ms.unwrap_or(HEARTBEAT_MS_DEFAULT),
            )
            .ok_or(ConfigError::Zero {
                field: "consensus.heartbeat_ms",
            })?,
            scrub: match raw.storage.scrub_secs.unwrap_or(SCRUB_SECS_DEFAULT) {
                0 => None,
                secs => Some(std::time::Duration::from_secs(secs)),
            },
            issued_at_skew_ms: match raw.admission.issued_at_skew_ms {
                None => crate::admission::ISSUED_AT_SKEW_MS_DEFAULT,
                Some(0) => {
                    return Err(ConfigError::Zero {
                        field: "admission.issued_at_skew_ms",
                    });
                }
                Some(ms) if ms > ISSUED_AT_SKEW_MS_MAX => {
                    return Err(ConfigError::Above {
                        field: "admission.issued_at_skew_ms",
                        max: ISSUED_AT_SKEW_MS_MAX,
                    });
                }
                Some(ms) => ms,
            },
            capture: raw.capture.map(|c| CaptureConfig {
                org: c.org,
                key: resolve(c.key),
                document_bytes_max: c.document_bytes_max.unwrap_or(CAPTURE_BYTES_MAX as u64),
            }),
            alerts: raw.alerts.map(|a| AlertsConfig {
                org: a.org,
                key: resolve(a.key),
                supplier_nc_rate_max: a
                    .supplier_nc_rate_max
                    .unwrap_or(SUPPLIER_NC_RATE_MAX_DEFAULT),
                supplier_lots_min: a.supplier_lots_min.unwrap_or(SUPPLIER_LOTS_MIN_DEFAULT),
                from: a.from.unwrap_or_default(),
            }),
            private: raw.private.map(|p| PrivateConfig {
                org: p.org,
                key: resolve(p.key),
                retired_keys: p.retired_keys.into_iter().map(&resolve).collect(),
                period_keys: p.period_keys.map(&resolve),
            }),
            webhooks: raw
                .webhooks
                .into_iter()
                .map(|w| WebhookConfig {
                    id: w.id,
                    url: w.url,
                    secret: resolve(w.secret),
                    reads_as: w.reads_as,
                })
                .collect(),
            subscription_allow: crate::epcis::subscriptions::destination::Allowlist::parse(
                &raw.subscriptions.allow,
            )?,
            limits: limits(&raw.api.rate_limit)?,
            credentials: raw.api.credentials,
            tls: raw.api.tls.map(|t| TlsPaths {
                cert: resolve(t.cert),
                key: resolve(t.key),
            }),
        };
        let tls_files = config
            .tls
            .iter()
            .flat_map(|t| [("api.tls.cert", &t.cert), ("api.tls.key", &t.key)]);
        let capture_key = config.capture.iter().map(|c| ("capture.key", &c.key));
        let alerts_key = config.alerts.iter().map(|a| ("alerts.key", &a.key));
        let private_key = config.private.iter().flat_map(|p| {
            std::iter::once(("private.key", &p.key))
                .chain(p.retired_keys.iter().map(|k| ("private.retired_keys", k)))
        });
        let secrets = config
            .webhooks
            .iter()
            .map(|w| ("webhooks.secret", &w.secret));
        for (field, path) in [("genesis", &config.genesis), ("node_key", &config.node_key)]
            .into_iter()
            .chain(tls_files)
            .chain(capture_key)
            .chain(alerts_key)
            .chain(private_key)
            .chain(secrets)
        {
            if !path.exists() {
                return Err(ConfigError::Missing {
                    field,
                    path: path.clone(),
                });
            }
        }
        if config.mempool_attestations_max == 0 {
            return Err(ConfigError::Zero {
                field: "mempool.attestations_max",
            });
        }
        if config.mempool_bytes_max == 0 {
            return Err(ConfigError::Zero {
                field: "mempool.bytes_max",
            });
        }
        if let Some(capture) = &config.capture {
            if capture.document_bytes_max == 0 {
                return Err(ConfigError::Zero {
                    field: "capture.document_bytes_max",
                });
            }
            if capture.document_bytes_max > CAPTURE_BYTES_MAX as u64 {
                return Err(ConfigError::Above {
                    field: "capture.document_bytes_max",
                    max: CAPTURE_BYTES_MAX as u64,
                });
            }
        }
        if let Some(alerts) = &config.alerts {
            let rate = alerts.supplier_nc_rate_max;
            if !(rate > 0.0 && rate <= 1.0) {
                return Err(ConfigError::Rate {
                    field: "alerts.supplier_nc_rate_max",
                    value: rate,
                });
            }
            if alerts.supplier_lots_min == 0 {
                return Err(ConfigError::Zero {
                    field: "alerts.supplier_lots_min",
                });
            }
        }
        check_webhooks(&config.webhooks)?;
        Ok(config)
    }

    /// The `[capture]` section for `org` signing with the key file `key`.
    pub fn render_capture(org: &str, key: &Path) -> String {
        format!(
            "\n[capture]\norg = {org:?}\nkey = {:?}\n",
            key.display().to_string()
        )
    }

    /// The `[private]` section: this node opens private fields as `org`.
    pub fn render_private(org: &str, key: &Path, period_keys: Option<&Path>) -> String {
        let mut text = format!(
            "\n[private]\norg = {org:?}\nkey = {:?}\n",
            key.display().to_string()
        );
        if let Some(folder) = period_keys {
            text.push_str(&format!(
                "period_keys = {:?}\n",
                folder.display().to_string()
            ));
        }
        text
    }

    /// The TOML text of a config (used by `genesis init` and the demo).
    pub fn render(data_dir: &Path, genesis: &Path, node_key: &Path, listen: SocketAddr) -> String {
        format!(
            "# Lotline node configuration\ndata_dir = {:?}\ngenesis = {:?}\nnode_key = {:?}\n\n[api]\nlisten = \"{listen}\"\n",
            data_dir.display().to_string(),
            genesis.display().to_string(),
            node_key.display().to_string(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_issued_at_bound_defaults_to_five_minutes_and_is_checked() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["g.toml", "k"] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        let base = "data_dir = \"d\"\ngenesis = \"g.toml\"\nnode_key = \"k\"\n[api]\nlisten = \"127.0.0.1:1\"\n";
        let with = |ms: u64| format!("{base}[admission]\nissued_at_skew_ms = {ms}\n");
        let config = NodeConfig::parse(base, dir.path()).unwrap();
        assert_eq!(config.issued_at_skew_ms, 300_000);
        assert_eq!(
            NodeConfig::parse(&with(1000), dir.path())
                .unwrap()
                .issued_at_skew_ms,
            1000
        );
        assert!(matches!(
            NodeConfig::parse(&with(0), dir.path()),
            Err(ConfigError::Zero {
                field: "admission.issued_at_skew_ms"
            })
        ));
        assert!(matches!(
            NodeConfig::parse(&with(ISSUED_AT_SKEW_MS_MAX + 1), dir.path()),
            Err(ConfigError::Above {
                field: "admission.issued_at_skew_ms",
                ..
            })
        ));
    }

    /// Goal: `[p2p] peers` gives dial addresses by node key, each checked
    /// (a key that is not Ed25519 hex, an address that is not a multiaddr,
    /// each named by its position).
    #[test]
    fn p2p_peers_are_typed_and_each_bad_entry_named() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["g.toml", "k"] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        let key = lotline_core::SigningKey::from_seed(&[5; 32]).public_key();
        let with = |peers: &str| {
            format!(
                "data_dir = \"d\"\ngenesis = \"g.toml\"\nnode_key = \"k\"\n[api]\nlisten = \"127.0.0.1:1\"\n[p2p]\npeers = [{peers}]\n"
            )
        };
        let good = format!(
            "{{ node_key = \"{}\", addr = \"/ip4/10.0.0.5/tcp/7101\" }}",
            key.to_hex()
        );
        let config = NodeConfig::parse(&with(&good), dir.path()).unwrap();
        assert_eq!(
            config.p2p_peers,
            [(key, "/ip4/10.0.0.5/tcp/7101".parse().unwrap())]
        );
        let bad_key = "{ node_key = \"zz\", addr = \"/ip4/10.0.0.5/tcp/7101\" }";
        assert!(matches!(
            NodeConfig::parse(&with(&format!("{good}, {bad_key}")), dir.path()),
            Err(ConfigError::PeerKey { index: 1, .. })
        ));
        let bad_addr = format!(
            "{{ node_key = \"{}\", addr = \"10.0.0.5:7101\" }}",
            key.to_hex()
        );
        assert!(matches!(
            NodeConfig::parse(&with(&bad_addr), dir.path()),
            Err(ConfigError::PeerAddr { index: 0, .. })
        ));
    }

    #[test]
    fn webhooks_and_alerts_are_checked() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["g.toml", "k", "s"] {
            std::fs::write(dir.path().join(file), "").unwrap();
        }
        let ok = "data_dir = \"d\"\ngenesis = \"g.toml\"\nnode_key = \"k\"\n[api]\nlisten = \"127.0.0.1:1\"\n";
        let hook = |id: &str, url: &str| {
            format!(
                "\n[[webhooks]]\nid = {id:?}\nurl = {url:?}\nsecret = \"s\"\nreads_as = \"o\"\n"
            )
        };
        let good = format!("{ok}{}", hook("qa-1", "https://qa.example.com/h"));
        let config = NodeConfig::parse(&good, dir.path()).unwrap();
        assert_eq!(config.webhooks[0].secret, dir.path().join("s"));
        for bad in [
            hook("qa 1", "https://qa.example.com/h"),
            hook("", "https://qa.example.com/h"),
            hook("qa", "ftp://qa.example.com/h"),
            hook("qa", "not a url"),
            format!("{}{}", hook("qa", "http://a/"), hook("qa", "http://b/")),
        ] {
            let text = format!("{ok}{bad}");
            assert!(
                matches!(
                    NodeConfig::parse(&text, dir.path()),
                    Err(ConfigError::Webhook(_))
                ),
                "{bad}"
            );
        }
        let alerts = |rate: &str| {
            format!("{ok}\n[alerts]\norg = \"o\"\nkey = \"k\"\nsupplier_nc_rate_max = {rate}\n")
        };
        let parsed = NodeConfig::parse(&alerts("0.2"), dir.path()).unwrap();
        assert_eq!(parsed.alerts.map(|a| a.from), Some(AlertsFrom::Genesis));
        let head = format!("{}from = \"head\"\n", alerts("0.2"));
        let parsed = NodeConfig::parse(&head, dir.path()).unwrap();
        assert_eq!(parsed.alerts.map(|a| a.from), Some(AlertsFrom::Head));
        let elsewhere = format!("{}from = \"yesterday\"\n", alerts("0.2"));
        let refused = NodeConfig::parse(&elsewhere, dir.path()).unwrap_err();
        assert!(refused.to_string().contains("yesterday"), "{refused}");
        for rate in ["0.0", "1.5", "-1.0", "nan"] {
            assert!(
                matches!(
                    NodeConfig::parse(&alerts(rate), dir.path()),
                    Err(ConfigError::Rate { .. })
                ),
                "{rate}"
            );
        }
    }

    #[test]
    fn errors_name_the_field() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("g.toml"), "").unwrap();
        std::fs::write(dir.path().join("k"), "").unwrap();
        let ok = "data_dir = \"d\"\ngenesis = \"g.toml\"\nnode_key = \"k\"\n[api]\nlisten = \"127.0.0.1:1\"\n";
        let config = NodeConfig::parse(ok, dir.path()).unwrap();
        assert_eq!(config.data_dir, dir.path().join("d"));
        let bad_listen = ok.replace("127.0.0.1:1", "localhost");
        assert!(matches!(
            NodeConfig::parse(&bad_listen, dir.path()),
            Err(ConfigError::Listen { .. })
        ));
        let missing = ok.replace("g.toml", "nope.toml");
        assert!(matches!(
            NodeConfig::parse(&missing, dir.path()),
            Err(ConfigError::Missing {
                field: "genesis",
                ..
            })
        ));
        let unknown = format!("{ok}colour = 1\n");
        let err = NodeConfig::parse(&unknown, dir.path())
            .unwrap_err()
            .to_string();
        assert!(err.contains("colour"), "{err}");
        std::fs::write(dir.path().join("ck"), "").unwrap();
        let capture = format!("{ok}[capture]\norg = \"acme\"\nkey = \"ck\"\n");
        let config = NodeConfig::parse(&capture, dir.path()).unwrap();
        assert_eq!(
            config.capture,
            Some(CaptureConfig {
                org: "acme".into(),
                key: dir.path().join("ck"),
                document_bytes_max: CAPTURE_BYTES_MAX as u64,
            })
        );
        let rendered = format!(
            "{ok}{}",
            NodeConfig::render_capture("acme", Path::new("ck"))
        );
        assert_eq!(
            NodeConfig::parse(&rendered, dir.path()).unwrap().capture,
            config.capture
        );
        let missing_key = capture.replace("key = \"ck\"", "key = \"nope\"");
        assert!(matches!(
            NodeConfig::parse(&missing_key, dir.path()),
            Err(ConfigError::Missing {
                field: "capture.key",
                ..
            })
        ));
        let zero_rate = ok.replace("[api]\n", "[api]\nrate_limit = { per_ip_burst = 0 }\n");
        assert!(matches!(
            NodeConfig::parse(&zero_rate, dir.path()),
            Err(ConfigError::Zero {
                field: "api.rate_limit.per_ip_burst"
            })
        ));
        let no_cert = format!("{ok}[api.tls]\ncert = \"c.pem\"\nkey = \"k\"\n");
        assert!(matches!(
            NodeConfig::parse(&no_cert, dir.path()),
            Err(ConfigError::Missing {
                field: "api.tls.cert",
                ..
            })
        ));
        let zero = format!("{ok}[mempool]\nattestations_max = 0\n");
        assert!(matches!(
            NodeConfig::parse(&zero, dir.path()),
            Err(ConfigError::Zero { .. })
        ));
    }
}
