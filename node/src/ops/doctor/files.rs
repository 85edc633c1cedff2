//! The genesis and the key files: they parse, keys are 0600, and the node
//! key is one the chain admits (a validator of the epoch in force, one
//! voted in for the next, or a follower), judged by the chain's history.

use lotline_genesis::Genesis;

use super::Report;
use super::peers::{Admitted, Role};
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

/// The node key (and the capture key): readable only by the owner and a
/// valid key file. Returns this node's key, if it could be read; what the
/// chain makes of it is [`check_node_role`]'s, once the history is known.
pub fn check_keys(
    config: &NodeConfig,
    genesis: &Genesis,
    report: &mut Report,
) -> Option<lotline_core::PublicKey> {
    let me = match lotline_genesis::keys::read_signing_key(&config.node_key) {
        Ok(key) => Some(key.public_key()),
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

/// What the chain makes of this node's key at the next height: the one
/// `node key` finding. `chain` is false when the history is the genesis
/// alone (no running node or index to read it from): a key the genesis
/// does not name may then still be one voted in, which only a note can
/// say.
pub fn check_node_role(
    key: &lotline_core::PublicKey,
    admitted: &Admitted<'_>,
    chain: bool,
    report: &mut Report,
) {
    let area = "node key";
    let valid = "mode 0600";
    match admitted.role(key) {
        Role::Validator { epoch, index, org } => report.ok(
            area,
            format!("{valid}, validator {index} ({org}) of epoch {epoch}"),
        ),
        Role::Joining { epoch, org } => report.ok(
            area,
            format!("{valid}, voted in as a validator of {org} from epoch {epoch}; follows the chain until then"),
        ),
        Role::Follower { org } => report.ok(
            area,
            format!("{valid}, a node of {org} that follows the chain (it does not vote)"),
        ),
        Role::Retired(retired) => report.problem(
            area,
            format!(
                "key {key} is no longer admitted from height {} ({}): {}",
                retired.from,
                retired.change,
                retired.advice()
            ),
        ),
        Role::Unknown if !chain && admitted.genesis.validators().len() > 1 => report.note(
            area,
            format!("key {key} is not a validator of the genesis, and the chain's history could not be read: right for a node voted in later (see GET /v1/governance), otherwise the wrong key file or another consortium's genesis"),
        ),
        Role::Unknown => report.problem(
            area,
            format!("key {key} is no node key of this chain (wrong key file, or the genesis of another consortium)"),
        ),
    }
}
