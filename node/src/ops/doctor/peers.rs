//! Is the node running, can it reach the other nodes the chain admits
//! (validators and followers), is its clock near theirs.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use libp2p::multiaddr::{Multiaddr, Protocol};
use lotline_core::PublicKey;
use lotline_genesis::{Genesis, History};

use super::{CLOCK_SKEW_MAX, PEER_TIMEOUT, Report};
use crate::config::NodeConfig;
use crate::consensus::epoch::{self, KeyFacts};

/// Asks the node's own API for `/health`; true if it answers.
pub async fn check_running(config: &NodeConfig, report: &mut Report) -> bool {
    let area = "node";
    if config.tls.is_some() {
        report.note(area, "the API is HTTPS; not asked whether the node runs");
        return false;
    }
    let url = format!("{}/health", api_url(config));
    let Ok(client) = reqwest::Client::builder().timeout(PEER_TIMEOUT).build() else {
        report.note(area, "no HTTP client; not asked whether the node runs");
        return false;
    };
    match client.get(&url).send().await {
        Ok(response) => {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            if status.is_success() {
                report.ok(area, format!("running: {url} answers {body}"));
            } else {
                report.problem(
                    area,
                    format!("running but unhealthy: {url} answers {status} {body}"),
                );
            }
            true
        }
        Err(_) => {
            report.note(area, format!("not running (nothing answers at {url})"));
            false
        }
    }
}

/// The node's own API over plain HTTP (doctor asks only a node without
/// TLS whether it runs).
fn api_url(config: &NodeConfig) -> String {
    let mut addr = config.listen;
    if addr.ip().is_unspecified() {
        addr.set_ip(IpAddr::from([127, 0, 0, 1]));
    }
    format!("http://{addr}")
}

/// The running node's membership history, verified from `genesis`
/// (`GET /v1/governance/history`, as `lotline governance history`), and
/// the height it runs through.
pub async fn membership_history(
    config: &NodeConfig,
    genesis: Arc<Genesis>,
) -> Result<(Arc<History>, u64), String> {
    let client = lotline_sdk::Client::new(&api_url(config)).map_err(|e| e.to_string())?;
    let file = tokio::time::timeout(PEER_TIMEOUT * 5, client.membership_history())
        .await
        .map_err(|_| "the node did not answer GET /v1/governance/history in time".to_owned())?
        .map_err(|e| format!("GET /v1/governance/history: {e}"))?;
    let history = file
        .follow(genesis)
        .map_err(|e| format!("the node's membership history does not verify: {e}"))?;
    Ok((Arc::new(history), file.through_height))
}

/// What the chain admits now: the genesis, the membership history and the
/// height it runs through (`history` in the module above).
pub struct Admitted<'a> {
    pub genesis: &'a Genesis,
    pub history: &'a History,
    pub height: u64,
}

impl Admitted<'_> {
    /// The other node keys the transport admits at the next height
    /// (`consensus::epoch::admitted`: the validators of the epoch in force
    /// and of the next one once voted, and the followers), in peer-table
    /// order, each with its org, whether it is a validator, and the chain's
    /// `p2p` hint.
    fn peers(&self, me: Option<PublicKey>) -> Vec<(PublicKey, KeyFacts, bool)> {
        let next = self.height + 1;
        let current = self.history.at(next);
        let epoch = current.epoch().0;
        let admitted = epoch::admitted(self.genesis, self.history, epoch, next);
        let validators: Vec<PublicKey> = [Some(current), self.history.epoch(epoch + 1)]
            .into_iter()
            .flatten()
            .flat_map(|m| epoch::keys(&m))
            .collect();
        epoch::node_keys(self.genesis, self.history)
            .into_iter()
            .filter(|(key, _)| admitted.contains(key) && Some(*key) != me)
            .map(|(key, facts)| {
                let validator = validators.contains(&key);
                (key, facts, validator)
            })
            .collect()
    }
}

/// What the chain makes of a node key at the next height
/// ([`Admitted::role`]).
#[derive(Debug)]
pub enum Role {
    /// A validator of the epoch in force, at `index` of its set.
    Validator {
        epoch: u64,
        index: usize,
        org: String,
    },
    /// Voted into the next epoch's set; admitted (and following) until it
    /// begins.
    Joining { epoch: u64, org: String },
    /// Admitted without a vote: a follower node (`addNode`, genesis
    /// `[[followers]]`) or a removed validator whose org is a member.
    Follower { org: String },
    /// A change retired it.
    Retired(epoch::Retired),
    /// The chain names no such node key.
    Unknown,
}

impl Admitted<'_> {
    /// What `key` is at the next height, judged as the transport admits.
    pub fn role(&self, key: &PublicKey) -> Role {
        let next = self.height + 1;
        let current = self.history.at(next);
        let epoch = current.epoch().0;
        let org = || epoch::org_of(self.genesis, self.history, key).unwrap_or_default();
        if let Some(index) = epoch::keys(&current).iter().position(|k| k == key) {
            return Role::Validator {
                epoch,
                index,
                org: org(),
            };
        }
        if epoch::admitted(self.genesis, self.history, epoch, next).contains(key) {
            let joining = self
                .history
                .epoch(epoch + 1)
                .is_some_and(|m| epoch::keys(&m).contains(key));
            return if joining {
                Role::Joining {
                    epoch: epoch + 1,
                    org: org(),
                }
            } else {
                Role::Follower { org: org() }
            };
        }
        match epoch::retirement(self.genesis, self.history, key) {
            Some(retired) => Role::Retired(retired),
            None => Role::Unknown,
        }
    }
}

/// A TCP connection to every other node the chain admits now (validators
/// of the epoch in force and followers, not only the genesis ones), at the
/// operator's `[p2p] peers` address for its key, else the chain's hint.
pub async fn check_peers(
    config: &NodeConfig,
    chain: &Admitted<'_>,
    me: Option<PublicKey>,
    report: &mut Report,
) {
    let peers = chain.peers(me);
    if peers.is_empty() {
        report.ok("peers", "no other node is admitted: no peers to reach");
        return;
    }
    for (key, facts, validator) in peers {
        let area = if validator {
            format!("peer {}", facts.org)
        } else {
            let hex = key.to_hex();
            format!("peer {} follower {}", facts.org, &hex[..8])
        };
        let configured = config
            .p2p_peers
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, addr)| addr.to_string());
        let Some(addr) = configured.or(facts.p2p) else {
            report.note(
                area,
                "neither the chain nor [p2p] peers gives a p2p address; not checked",
            );
            continue;
        };
        let target = match tcp_target(&addr) {
            Ok(target) => target,
            Err(text) => {
                report.problem(area, format!("p2p address {addr:?}: {text}"));
                continue;
            }
        };
        match tokio::time::timeout(PEER_TIMEOUT, tokio::net::TcpStream::connect(&target)).await {
            Ok(Ok(_)) => report.ok(area, format!("{addr} accepts TCP connections")),
            Ok(Err(error)) => report.problem(
                area,
                format!("cannot connect to {addr} ({error}); is that node up, and is the port open in its firewall?"),
            ),
            Err(_) => report.problem(
                area,
                format!(
                    "no answer from {addr} within {} s (a firewall dropping packets, or the host is down)",
                    PEER_TIMEOUT.as_secs()
                ),
            ),
        }
    }
}

/// `host:port` from a multiaddr such as `/ip4/10.0.0.2/tcp/7101` or
/// `/dns4/node.example/tcp/7101`.
fn tcp_target(addr: &str) -> Result<String, String> {
    let parsed: Multiaddr = addr.parse().map_err(|e| format!("not a multiaddr: {e}"))?;
    let mut host = None;
    let mut port = None;
    for protocol in parsed.iter() {
        match protocol {
            Protocol::Ip4(ip) => host = Some(ip.to_string()),
            Protocol::Ip6(ip) => host = Some(SocketAddr::from((ip, 0)).ip().to_string()),
            Protocol::Dns(name) | Protocol::Dns4(name) | Protocol::Dns6(name) => {
                host = Some(name.to_string())
            }
            Protocol::Tcp(p) => port = Some(p),
            _ => {}
        }
    }
    match (host, port) {
        (Some(host), Some(port)) if host.contains(':') => Ok(format!("[{host}]:{port}")),
        (Some(host), Some(port)) => Ok(format!("{host}:{port}")),
        _ => Err("no host and TCP port in it".into()),
    }
}

/// Compares this machine's clock with each peer API's HTTP `Date` header.
pub async fn check_clock(peer_urls: &[String], report: &mut Report) {
    let area = "clock";
    if peer_urls.is_empty() {
        report.note(
            area,
            "not compared (give other nodes' API URLs with --peer-url to compare)",
        );
        return;
    }
    let Ok(client) = reqwest::Client::builder().timeout(PEER_TIMEOUT).build() else {
        report.note(area, "no HTTP client; not compared");
        return;
    };
    for url in peer_urls {
        let health = format!("{}/health", url.trim_end_matches('/'));
        let sent = SystemTime::now();
        let response = match client.get(&health).send().await {
            Ok(response) => response,
            Err(error) => {
                report.note(
                    area,
                    format!("{url} does not answer ({error}); not compared"),
                );
                continue;
            }
        };
        let received = SystemTime::now();
        let Some(date) = response
            .headers()
            .get(reqwest::header::DATE)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| httpdate::parse_http_date(v).ok())
        else {
            report.note(area, format!("{url} sent no Date header; not compared"));
            continue;
        };
        // The Date has whole seconds: allow the round trip and one second.
        let round_trip = received.duration_since(sent).unwrap_or_default();
        let skew = match received.duration_since(date) {
            Ok(ahead) => ahead,
            Err(behind) => behind.duration(),
        };
        let slack = round_trip + Duration::from_secs(1);
        let skew = skew.saturating_sub(slack);
        if skew > CLOCK_SKEW_MAX {
            report.problem(
                area,
                format!(
                    "differs from {url} by about {} s (more than {} s); run NTP (chrony or systemd-timesyncd) on both",
                    skew.as_secs(),
                    CLOCK_SKEW_MAX.as_secs()
                ),
            );
        } else {
            report.ok(
                area,
                format!("within {} s of {url}", CLOCK_SKEW_MAX.as_secs()),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::consensus::epoch::tests::{four_orgs, key, record};
    use lotline_genesis::governance::Change;

    #[test]
    fn tcp_targets_from_multiaddrs() {
        assert_eq!(
            tcp_target("/ip4/10.0.0.2/tcp/7101").unwrap(),
            "10.0.0.2:7101"
        );
        assert_eq!(tcp_target("/ip6/::1/tcp/7101").unwrap(), "[::1]:7101");
        assert_eq!(
            tcp_target("/dns4/node.example/tcp/7101").unwrap(),
            "node.example:7101"
        );
        assert!(tcp_target("/ip4/10.0.0.2/udp/7101").is_err());
        assert!(tcp_target("10.0.0.2:7101").is_err());
    }

    /// Goal: doctor names a node key's place as the transport admits it.
    /// Four orgs' validators (keys 1..=4, epochs of 4 blocks); at height 2
    /// validator 2 is re-keyed to key 8 (from epoch 1, at height 8) and o4
    /// gets a follower node, key 7, which a later vote removes.
    #[test]
    fn a_node_key_is_judged_by_the_chain_as_the_transport_admits_it() {
        let genesis = four_orgs();
        let mut history = History::new(Arc::new(genesis.clone()));
        let (rekeyed, follower) = (key(8), key(7));
        record(
            &mut history,
            2,
            "rotate",
            Change::RotateNodeKey {
                old_key: key(2),
                new_key: rekeyed,
            },
        );
        record(
            &mut history,
            2,
            "add-node",
            Change::AddNode {
                org: "o4".into(),
                node_key: follower,
                p2p: None,
            },
        );
        let at = |height| Admitted {
            genesis: &genesis,
            history: &history,
            height,
        };

        // Before the boundary: the old key votes, the new one waits.
        assert!(matches!(
            at(4).role(&key(2)),
            Role::Validator { epoch: 0, index: 1, ref org } if org == "o2"
        ));
        assert!(matches!(
            at(4).role(&rekeyed),
            Role::Joining { epoch: 1, ref org } if org == "o2"
        ));
        assert!(matches!(at(4).role(&follower), Role::Follower { ref org } if org == "o4"));
        // After it: the new key holds the old one's place; the old one is
        // retired, and doctor says which key replaced it.
        assert!(matches!(
            at(10).role(&rekeyed),
            Role::Validator {
                epoch: 1,
                index: 1,
                ..
            }
        ));
        match at(10).role(&key(2)) {
            Role::Retired(retired) => {
                assert_eq!(retired.successor, Some(rekeyed));
                assert!(retired.advice().contains(&rekeyed.to_hex()));
            }
            other => panic!("the replaced key is retired, not {other:?}"),
        }
        assert!(matches!(at(10).role(&key(9)), Role::Unknown));

        record(
            &mut history,
            11,
            "remove-node",
            Change::RemoveNode { node_key: follower },
        );
        let after = Admitted {
            genesis: &genesis,
            history: &history,
            height: 12,
        };
        match after.role(&follower) {
            Role::Retired(retired) => {
                assert_eq!((retired.from, retired.successor), (12, None));
                assert!(retired.advice().contains("restore from a backup"));
            }
            other => panic!("the removed follower is retired, not {other:?}"),
        }
    }
}
