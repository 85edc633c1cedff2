//! The genesis and the key files: they parse, keys are 0600, and they
//! belong to this node's place in the genesis.

use lotline_genesis::Genesis;

use super::Report;
use crate::config::NodeConfig;

/// The genesis, if it loads (nothing else is checked without it).
pub fn check_genesis(config: &NodeConfig, report: &mut Report) -> Option<Genesis> {
    match Genesis::load(&config.genesis) {
        Ok(genesis) => {
            report.ok(
                "genesis",
                format!(
                    "{} is valid: chain {}, {} validator(s)",
                    config.genesis.display(),
                    genesis.chain_id(),
                    genesis.validators().len()
                ),
            );
            Some(genesis)
        }
        Err(error) => {
            report.problem("genesis", format!("{}: {error}", config.genesis.display()));
            None
        }
    }
}

/// The node key (and the capture key): readable only by the owner, a
/// valid key file, and the key the genesis expects. Returns this node's
/// key, if it could be read.
pub fn check_keys(
    config: &NodeConfig,
    genesis: &Genesis,
    report: &mut Report,
) -> Option<lotline_core::PublicKey> {
    let me = match lotline_genesis::keys::read_signing_key(&config.node_key) {
        Ok(key) => match genesis.validator_set().index_of(&key.public_key()) {
            Some(index) => {
                let org = genesis
                    .validator_org(index)
                    .map_or(String::new(), |o| o.id.clone());
                report.ok(
                    "node key",
                    format!("mode 0600, validator {index} ({org}) of the genesis"),
                );
                Some(key.public_key())
            }
            // With several validators a key the genesis does not name
            // may be one the consortium voted in (`addValidator`,
            // `rotateNodeKey`) or a follower's: the chain, not the genesis,
            // says so, and this check does not read it.
            None if genesis.validators().len() > 1 => {
                report.note(
                    "node key",
                    format!(
                        "{} holds key {}, which is not a validator of the genesis: right for a validator added or re-keyed by vote (see GET /v1/governance) or a node that follows the chain; otherwise the wrong key file or another consortium's genesis",
                        config.node_key.display(),
                        key.public_key()
                    ),
                );
                Some(key.public_key())
            }
            None => {
                report.problem(
                    "node key",
                    format!(
                        "{} holds key {}, which is not a validator of this genesis (wrong key file, or the genesis of another consortium)",
                        config.node_key.display(),
                        key.public_key()
                    ),
                );
                Some(key.public_key())
            }
        },
        Err(error) => {
            report.problem("node key", error.to_string());
            None
        }
    };
    if let Some(capture) = &config.capture {
        match lotline_genesis::keys::read_signing_key(&capture.key) {
            Ok(key) => match genesis.key_owner(&key.public_key()) {
                Some(owner) if owner.id == capture.org => {
                    report.ok(
                        "capture key",
                        format!("mode 0600, a client key of {}", owner.id),
                    );
                }
                Some(owner) => report.problem(
                    "capture key",
                    format!(
                        "{} belongs to org {:?}, but [capture] org is {:?}",
                        capture.key.display(),
                        owner.id,
                        capture.org
                    ),
                ),
                None => report.problem(
                    "capture key",
                    format!(
                        "{} is not a client key of any org in the genesis",
                        capture.key.display()
                    ),
                ),
            },
            Err(error) => report.problem("capture key", error.to_string()),
        }
    }
    me
}
