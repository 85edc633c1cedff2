//! From a genesis file to a valid [`Genesis`]: the TOML form, and every rule
//! a genesis must satisfy, each with its own error.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;

use lotline_core::PublicKey;
use lotline_core::crypto::KeyParseError;
use lotline_core::epcis::{EventType, normalize_vocabulary};
use lotline_core::limits;
use lotline_core::private::EncryptionPublicKey;
use serde::{Deserialize, Serialize};

use crate::model::{ConsensusParams, Org, Role, Validator};

/// The longest epoch a genesis may state (a boundary must stay far below
/// `u64::MAX` heights).
pub const EPOCH_BLOCKS_MAX: u64 = 1 << 40;
use crate::policy::{self, ANY_BIZ_STEP, PolicyRule};
use crate::read_policy::{self, ReadPolicy, ReadPolicyError, ReadPolicyFile};

/// Longest org id.
pub const ORG_ID_BYTES_MAX: usize = 64;

/// Where a public key is listed, for error messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyUse {
    /// In `client_keys` of the org.
    Client { org: String },
    /// `node_key` of validator `index` (0-based, file order), run by `org`.
    Node { index: usize, org: String },
    /// `node_key` of follower `index` (0-based, file order), run by `org`.
    Follower { index: usize, org: String },
}

impl fmt::Display for KeyUse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyUse::Client { org } => write!(f, "a client key of org {org:?}"),
            KeyUse::Node { index, org } => {
                write!(f, "the node key of validator {index} (org {org:?})")
            }
            KeyUse::Follower { index, org } => {
                write!(f, "the node key of follower {index} (org {org:?})")
            }
        }
    }
}

/// Why a genesis is not valid. One variant per broken rule; each names the
/// offending org, key or field.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    #[error("can not read genesis file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, a missing or unknown field, or an unknown role (the message
    /// names the role and the line).
    #[error("genesis is not a valid genesis TOML document: {0}")]
    Parse(#[from] toml::de::Error),
    #[error("chain_name must not be empty")]
    EmptyChainName,
    #[error("consensus.{field} must be greater than zero")]
    ZeroConsensusParam { field: &'static str },
    #[error(
        "consensus.epoch_blocks is {value}; it must be {min} to {EPOCH_BLOCKS_MAX}",
        min = crate::model::EPOCH_BLOCKS_MIN
    )]
    EpochBlocks { value: u64 },
    #[error("consensus.timeout_base_ms ({base}) must not exceed consensus.timeout_max_ms ({max})")]
    TimeoutBaseAboveMax { base: u64, max: u64 },
    #[error("consensus.block_max_attestations is {value}, more than the limit of {max}")]
    BlockTooLarge { value: u32, max: usize },
    #[error("a genesis needs at least one org")]
    NoOrgs,
    #[error("org id {id:?} must be 1 to {ORG_ID_BYTES_MAX} characters of a-z, 0-9 and '-'")]
    OrgIdCharset { id: String },
    #[error("org id {id:?} appears twice")]
    DuplicateOrg { id: String },
    #[error("org {org:?} has an empty name")]
    EmptyOrgName { org: String },
    #[error("{used_as} is not a public key ({value:?}): {source}")]
    KeyHex {
        used_as: KeyUse,
        value: String,
        source: KeyParseError,
    },
    #[error("public key {key} is listed twice: as {first} and as {second}")]
    DuplicateKey {
        key: PublicKey,
        first: KeyUse,
        second: KeyUse,
    },
    #[error("public key {key}, {used_as}, is weak (small order, non-canonical or not a point)")]
    WeakKey { key: PublicKey, used_as: KeyUse },
    #[error("the encryption key of org {org:?} is not an X25519 public key ({value:?}): {source}")]
    EncryptionKeyHex {
        org: String,
        value: String,
        source: KeyParseError,
    },
    #[error(
        "the encryption key of org {org:?} is a low-order X25519 point; nothing can be encrypted to it"
    )]
    WeakEncryptionKey { org: String },
    #[error("orgs {first:?} and {second:?} have the same encryption key")]
    DuplicateEncryptionKey { first: String, second: String },
    #[error("validator {index} names org {org:?}, which is not in [[orgs]]")]
    UnknownValidatorOrg { index: usize, org: String },
    #[error("follower {index} names org {org:?}, which is not in [[orgs]]")]
    UnknownFollowerOrg { index: usize, org: String },
    #[error(
        "follower {index} (org {org:?}) has p2p address {value:?}, which is not a multiaddr (it must start with '/')"
    )]
    FollowerP2pAddress {
        index: usize,
        org: String,
        value: String,
    },
    #[error(
        "a chain admits at most {max} nodes (validators and followers), this one names {count}"
    )]
    TooManyNodes { count: usize, max: usize },
    #[error("a genesis needs at least one validator")]
    NoValidators,
    #[error("a genesis has at most {max} validators, this one has {count}")]
    TooManyValidators { count: usize, max: usize },
    #[error(
        "validator {index} (org {org:?}) has p2p address {value:?}, which is not a multiaddr (it must start with '/')"
    )]
    P2pAddress {
        index: usize,
        org: String,
        value: String,
    },
    #[error("policy rule {rule} (role {role}) names unknown event type {value:?}")]
    UnknownEventType {
        rule: usize,
        role: Role,
        value: String,
    },
    #[error(
        "policy rule {rule} (role {role}) names unknown quality kind {value:?}; the kinds are inspection, nonConformance, recallOrder, certificate, document"
    )]
    UnknownQualityKind {
        rule: usize,
        role: Role,
        value: String,
    },
    #[error("policy rule {rule} (role {role}) has an empty {field} list, so it allows nothing")]
    EmptyPolicyList {
        rule: usize,
        role: Role,
        field: &'static str,
    },
    #[error("policy rule {rule} (role {role}) has an empty bizStep")]
    EmptyBizStep { rule: usize, role: Role },
    #[error(transparent)]
    ReadPolicy(#[from] ReadPolicyError),
    #[error(transparent)]
    Retention(#[from] crate::retention::RetentionError),
}

/// The TOML document, as written. Keys, event types and quality kinds are
/// strings here so that a bad one gets an error naming where it is.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GenesisFile {
    pub chain_name: String,
    pub consensus: ConsensusParams,
    #[serde(default)]
    pub orgs: Vec<OrgFile>,
    #[serde(default)]
    pub validators: Vec<ValidatorFile>,
    /// Non-voting nodes the transport admits (`[[followers]]`, the same
    /// form as a validator). Optional: a genesis without any keeps its
    /// canonical format and chain id.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub followers: Vec<ValidatorFile>,
    #[serde(default)]
    pub policy: Vec<PolicyFile>,
    #[serde(default)]
    pub read_policy: ReadPolicyFile,
    /// Retention classes and period keys (`crate::retention`). Optional: a
    /// genesis without one keeps its canonical format and chain id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention: Option<crate::retention::RetentionFile>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrgFile {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[serde(default)]
    pub client_keys: Vec<String>,
    /// The org's X25519 public key for private sections (statement
    /// version 2). Optional: a genesis without any stays a version 2
    /// canonical encoding, so older genesis files keep their chain id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encryption_key: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ValidatorFile {
    pub org: String,
    pub node_key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p2p: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyFile {
    pub role: Role,
    pub event_types: Vec<String>,
    pub biz_steps: Vec<String>,
    #[serde(default)]
    pub quality: Vec<String>,
}

/// The validated parts of a genesis, before the chain id is computed.
#[derive(Debug)]
pub(crate) struct Parts {
    pub chain_name: String,
    pub consensus: ConsensusParams,
    pub orgs: Vec<Org>,
    pub validators: Vec<Validator>,
    pub followers: Vec<Validator>,
    pub policy: Vec<PolicyRule>,
    pub read_policy: ReadPolicy,
    pub retention: Option<crate::retention::Retention>,
    /// Client key -> index of its org.
    pub client_keys: BTreeMap<PublicKey, usize>,
}

impl crate::Genesis {
    /// The write and read policy in their file forms: what a governance
    /// `setPolicy` change carries.
    pub fn policy_files(&self) -> (Vec<PolicyFile>, ReadPolicyFile) {
        let file = GenesisFile::from_parts(self);
        (file.policy, file.read_policy)
    }
}

impl GenesisFile {
    /// Turns strings into keys, event types and quality kinds.
    pub(crate) fn into_typed(self) -> Result<Parts, GenesisError> {
        let mut orgs = Vec::with_capacity(self.orgs.len());
        for org in self.orgs {
            let client_keys = org
                .client_keys
                .iter()
                .map(|hex| {
                    PublicKey::from_hex(hex).map_err(|source| GenesisError::KeyHex {
                        used_as: KeyUse::Client {
                            org: org.id.clone(),
                        },
                        value: hex.clone(),
                        source,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let encryption_key = match &org.encryption_key {
                None => None,
                Some(hex) => Some(EncryptionPublicKey::from_hex(hex).map_err(|source| {
                    GenesisError::EncryptionKeyHex {
                        org: org.id.clone(),
                        value: hex.clone(),
                        source,
                    }
                })?),
            };
            orgs.push(Org {
                id: org.id,
                name: org.name,
                role: org.role,
                client_keys,
                encryption_key,
            });
        }
        let validators = nodes(self.validators, |index, org| KeyUse::Node { index, org })?;
        let followers = nodes(self.followers, |index, org| KeyUse::Follower { index, org })?;
        let mut policy = Vec::with_capacity(self.policy.len());
        for (rule, p) in self.policy.into_iter().enumerate() {
            let role = p.role;
            let event_types = p
                .event_types
                .iter()
                .map(|name| {
                    name.parse::<EventType>()
                        .map_err(|_| GenesisError::UnknownEventType {
                            rule,
                            role,
                            value: name.clone(),
                        })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let quality = p
                .quality
                .iter()
                .map(|name| {
                    policy::parse_quality_kind(name).ok_or_else(|| {
                        GenesisError::UnknownQualityKind {
                            rule,
                            role,
                            value: name.clone(),
                        }
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            policy.push(PolicyRule {
                role,
                event_types,
                biz_steps: p.biz_steps,
                quality,
            });
        }
        let mut parts = check(
            self.chain_name,
            self.consensus,
            orgs,
            Nodes {
                validators,
                followers,
            },
            policy,
            self.read_policy.into_typed()?,
        )?;
        if let Some(retention) = self.retention {
            parts.retention = Some(check_retention(retention.into_typed()?, &parts.orgs)?);
        }
        Ok(parts)
    }

    pub(crate) fn from_parts(g: &crate::Genesis) -> GenesisFile {
        GenesisFile {
            chain_name: g.chain_name().to_owned(),
            consensus: *g.consensus(),
            orgs: g
                .orgs()
                .iter()
                .map(|o| OrgFile {
                    id: o.id.clone(),
                    name: o.name.clone(),
                    role: o.role,
                    client_keys: o.client_keys.iter().map(PublicKey::to_hex).collect(),
                    encryption_key: o.encryption_key.as_ref().map(EncryptionPublicKey::to_hex),
                })
                .collect(),
            validators: g
                .validators()
                .iter()
                .map(ValidatorFile::from_typed)
                .collect(),
            followers: g
                .followers()
                .iter()
                .map(ValidatorFile::from_typed)
                .collect(),
            policy: g
                .policy()
                .iter()
                .map(|r| PolicyFile {
                    role: r.role,
                    event_types: r
                        .event_types
                        .iter()
                        .map(|t| t.as_str().to_owned())
                        .collect(),
                    biz_steps: r.biz_steps.clone(),
                    quality: r
                        .quality
                        .iter()
                        .map(|k| policy::quality_kind_name(*k).to_owned())
                        .collect(),
                })
                .collect(),
            read_policy: ReadPolicyFile::from_typed(g.read_policy()),
            retention: g
                .retention()
                .map(crate::retention::RetentionFile::from_typed),
        }
    }
}

impl ValidatorFile {
    fn from_typed(v: &Validator) -> ValidatorFile {
        ValidatorFile {
            org: v.org.clone(),
            node_key: v.node_key.to_hex(),
            p2p: v.p2p.clone(),
        }
    }
}

/// Node entries (validators or followers) with their keys parsed; a bad
/// key names where it is (`used_as`).
fn nodes(
    files: Vec<ValidatorFile>,
    used_as: impl Fn(usize, String) -> KeyUse,
) -> Result<Vec<Validator>, GenesisError> {
    files
        .into_iter()
        .enumerate()
        .map(|(index, v)| {
            let node_key =
                PublicKey::from_hex(&v.node_key).map_err(|source| GenesisError::KeyHex {
                    used_as: used_as(index, v.org.clone()),
                    value: v.node_key.clone(),
                    source,
                })?;
            Ok(Validator {
                org: v.org,
                node_key,
                p2p: v.p2p,
            })
        })
        .collect()
}

/// The nodes a genesis (or a membership) names: the validators, in
/// certificate order, and the followers the transport also admits.
pub(crate) struct Nodes {
    pub validators: Vec<Validator>,
    pub followers: Vec<Validator>,
}

fn valid_org_id(id: &str) -> bool {
    (1..=ORG_ID_BYTES_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// Checks every rule and normalises bizSteps. Rules are checked in file
/// order, so the first error is the first broken thing in the file.
pub(crate) fn check(
    chain_name: String,
    consensus: ConsensusParams,
    orgs: Vec<Org>,
    nodes: Nodes,
    mut policy: Vec<PolicyRule>,
    mut read_policy: ReadPolicy,
) -> Result<Parts, GenesisError> {
    let Nodes {
        validators,
        followers,
    } = nodes;
    if chain_name.trim().is_empty() {
        return Err(GenesisError::EmptyChainName);
    }
    check_consensus(&consensus)?;

    if orgs.is_empty() {
        return Err(GenesisError::NoOrgs);
    }
    let mut org_ids = BTreeSet::new();
    let mut seen_keys: BTreeMap<PublicKey, KeyUse> = BTreeMap::new();
    let mut client_keys = BTreeMap::new();
    let mut note_key = |key: PublicKey, used_as: KeyUse| -> Result<(), GenesisError> {
        if let Some(first) = seen_keys.get(&key) {
            return Err(GenesisError::DuplicateKey {
                key,
                first: first.clone(),
                second: used_as,
            });
        }
        if key.is_weak() {
            return Err(GenesisError::WeakKey { key, used_as });
        }
        seen_keys.insert(key, used_as);
        Ok(())
    };
    for (index, org) in orgs.iter().enumerate() {
        if !valid_org_id(&org.id) {
            return Err(GenesisError::OrgIdCharset { id: org.id.clone() });
        }
        if !org_ids.insert(org.id.as_str()) {
            return Err(GenesisError::DuplicateOrg { id: org.id.clone() });
        }
        if org.name.trim().is_empty() {
            return Err(GenesisError::EmptyOrgName {
                org: org.id.clone(),
            });
        }
        for key in &org.client_keys {
            note_key(
                *key,
                KeyUse::Client {
                    org: org.id.clone(),
                },
            )?;
            client_keys.insert(*key, index);
        }
        if let Some(key) = &org.encryption_key {
            if key.is_weak() {
                return Err(GenesisError::WeakEncryptionKey {
                    org: org.id.clone(),
                });
            }
            if let Some(first) = orgs[..index]
                .iter()
                .find(|o| o.encryption_key.as_ref() == Some(key))
            {
                return Err(GenesisError::DuplicateEncryptionKey {
                    first: first.id.clone(),
                    second: org.id.clone(),
                });
            }
        }
    }

    if validators.is_empty() {
        return Err(GenesisError::NoValidators);
    }
    if validators.len() > limits::VALIDATORS_MAX {
        return Err(GenesisError::TooManyValidators {
            count: validators.len(),
            max: limits::VALIDATORS_MAX,
        });
    }
    let count = validators.len() + followers.len();
    if count > limits::VALIDATORS_MAX {
        return Err(GenesisError::TooManyNodes {
            count,
            max: limits::VALIDATORS_MAX,
        });
    }
    // Validators, then followers: one set of rules, errors naming which.
    let nodes = (validators.iter().enumerate().map(|(i, v)| (true, i, v)))
        .chain(followers.iter().enumerate().map(|(i, f)| (false, i, f)));
    for (validator, index, v) in nodes {
        let org = v.org.clone();
        if !org_ids.contains(org.as_str()) {
            return Err(if validator {
                GenesisError::UnknownValidatorOrg { index, org }
            } else {
                GenesisError::UnknownFollowerOrg { index, org }
            });
        }
        let used_as = if validator {
            KeyUse::Node {
                index,
                org: org.clone(),
            }
        } else {
            KeyUse::Follower {
                index,
                org: org.clone(),
            }
        };
        note_key(v.node_key, used_as)?;
        if let Some(addr) = &v.p2p
            && !addr.starts_with('/')
        {
            let value = addr.clone();
            return Err(if validator {
                GenesisError::P2pAddress { index, org, value }
            } else {
                GenesisError::FollowerP2pAddress { index, org, value }
            });
        }
    }

    for (index, rule) in policy.iter_mut().enumerate() {
        let role = rule.role;
        if rule.event_types.is_empty() {
            return Err(GenesisError::EmptyPolicyList {
                rule: index,
                role,
                field: "event_types",
            });
        }
        if rule.biz_steps.is_empty() {
            return Err(GenesisError::EmptyPolicyList {
                rule: index,
                role,
                field: "biz_steps",
            });
        }
        for step in &mut rule.biz_steps {
            if step.trim().is_empty() {
                return Err(GenesisError::EmptyBizStep { rule: index, role });
            }
            if step != ANY_BIZ_STEP {
                *step = normalize_vocabulary(step);
            }
        }
    }

    read_policy::check(&mut read_policy, |id| org_ids.contains(id))?;

    Ok(Parts {
        chain_name,
        consensus,
        orgs,
        validators,
        followers,
        policy,
        read_policy,
        retention: None,
        client_keys,
    })
}

/// Checks a retention rule against the (already checked) orgs.
pub(crate) fn check_retention(
    retention: crate::retention::Retention,
    orgs: &[Org],
) -> Result<crate::retention::Retention, GenesisError> {
    let orgs: Vec<(String, Option<EncryptionPublicKey>)> = orgs
        .iter()
        .map(|o| (o.id.clone(), o.encryption_key))
        .collect();
    Ok(retention.check(&orgs)?)
}

pub(crate) fn check_consensus(c: &ConsensusParams) -> Result<(), GenesisError> {
    let zero = [
        (
            "block_max_attestations",
            u64::from(c.block_max_attestations),
        ),
        ("block_interval_ms", c.block_interval_ms),
        ("timeout_base_ms", c.timeout_base_ms),
        ("timeout_max_ms", c.timeout_max_ms),
    ];
    if let Some((field, _)) = zero.iter().find(|(_, v)| *v == 0) {
        return Err(GenesisError::ZeroConsensusParam { field });
    }
    if c.epoch_blocks < crate::model::EPOCH_BLOCKS_MIN || c.epoch_blocks > EPOCH_BLOCKS_MAX {
        return Err(GenesisError::EpochBlocks {
            value: c.epoch_blocks,
        });
    }
    if c.timeout_base_ms > c.timeout_max_ms {
        return Err(GenesisError::TimeoutBaseAboveMax {
            base: c.timeout_base_ms,
            max: c.timeout_max_ms,
        });
    }
    if usize::try_from(c.block_max_attestations)
        .map_or(true, |n| n > limits::BLOCK_ATTESTATIONS_MAX)
    {
        return Err(GenesisError::BlockTooLarge {
            value: c.block_max_attestations,
            max: limits::BLOCK_ATTESTATIONS_MAX,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Genesis;
    use crate::test_support::example_toml;
    use lotline_core::SigningKey;

    const SUPPLIER_KEY: &str = "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c";
    const REGULATOR_KEY: &str = "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394";
    const NODE0_KEY: &str = "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1";
    const IDENTITY_KEY: &str = "0100000000000000000000000000000000000000000000000000000000000000";

    /// The example with `from` replaced by `to` (which must occur).
    fn edited(from: &str, to: &str) -> Result<Genesis, GenesisError> {
        let text = example_toml();
        assert!(text.contains(from), "example has no {from:?}");
        Genesis::from_toml(&text.replacen(from, to, 1))
    }

    /// The example up to (not including) the first line starting with `cut`.
    fn truncated_before(cut: &str) -> String {
        let text = example_toml();
        let at = text.find(cut).unwrap();
        text[..at].to_owned()
    }

    const SUPPLIER_CLIENT_LINE: &str =
        "client_keys = [\"8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c\"]";

    /// The example with an `encryption_key` line added to the supplier.
    fn with_supplier_encryption_key(value: &str) -> Result<Genesis, GenesisError> {
        edited(
            SUPPLIER_CLIENT_LINE,
            &format!("{SUPPLIER_CLIENT_LINE}\nencryption_key = \"{value}\""),
        )
    }

    #[test]
    fn encryption_keys_parse_round_trip_and_enter_the_chain_id() {
        // Goal: an org's encryption key is read, written back by to_toml and
        // hashed into the chain id; a genesis without any keeps its chain id.
        use lotline_core::private::EncryptionSecretKey;
        let key = EncryptionSecretKey::derive(&[5; 32]).public_key();
        let g = with_supplier_encryption_key(&key.to_hex()).unwrap();
        assert_eq!(g.orgs()[0].encryption_key, Some(key));
        assert_eq!(g.orgs()[1].encryption_key, None);
        let back = Genesis::from_toml(&g.to_toml()).unwrap();
        assert_eq!(back, g);
        let plain = Genesis::from_toml(&example_toml()).unwrap();
        assert_ne!(g.chain_id(), plain.chain_id());
        let other = EncryptionSecretKey::derive(&[6; 32]).public_key();
        let g2 = with_supplier_encryption_key(&other.to_hex()).unwrap();
        assert_ne!(g2.chain_id(), g.chain_id());
    }

    /// The example with one `[[followers]]` entry appended.
    fn with_follower(org: &str, key: &str, p2p: &str) -> Result<Genesis, GenesisError> {
        let text = format!(
            "{}\n[[followers]]\norg = \"{org}\"\nnode_key = \"{key}\"\np2p = \"{p2p}\"\n",
            example_toml()
        );
        Genesis::from_toml(&text)
    }

    /// Goal: a genesis may list follower nodes (admitted, never voting):
    /// they are read, written back by to_toml and hashed into the chain id
    /// (not their `p2p` hint); a genesis without any keeps its chain id; a
    /// follower of an unknown org, a key used twice and a bad address are
    /// refused naming the follower.
    #[test]
    fn followers_parse_round_trip_and_enter_the_chain_id() {
        use lotline_core::SigningKey;
        let key = SigningKey::from_seed(&[77; 32]).public_key();
        let g = with_follower("food-agency", &key.to_hex(), "/ip4/127.0.0.1/tcp/7109").unwrap();
        assert_eq!(g.followers().len(), 1);
        assert_eq!(g.followers()[0].node_key, key);
        assert_eq!(g.validators().len(), 2);
        assert_eq!(Genesis::from_toml(&g.to_toml()).unwrap(), g);
        let plain = Genesis::from_toml(&example_toml()).unwrap();
        assert!(plain.followers().is_empty());
        assert_ne!(g.chain_id(), plain.chain_id());
        let moved = with_follower("food-agency", &key.to_hex(), "/ip4/10.0.0.9/tcp/7109").unwrap();
        assert_eq!(moved.chain_id(), g.chain_id(), "p2p is a hint");
        let other = with_follower("acme-supplier", &key.to_hex(), "/ip4/127.0.0.1/tcp/7109");
        assert_ne!(other.unwrap().chain_id(), g.chain_id());

        assert!(matches!(
            with_follower("nobody", &key.to_hex(), "/ip4/127.0.0.1/tcp/1"),
            Err(GenesisError::UnknownFollowerOrg { index: 0, org }) if org == "nobody"
        ));
        assert!(matches!(
            with_follower("food-agency", SUPPLIER_KEY, "/ip4/127.0.0.1/tcp/1"),
            Err(GenesisError::DuplicateKey {
                second: KeyUse::Follower { index: 0, .. },
                ..
            })
        ));
        let validator = crate::test_support::node_keys()[0].public_key().to_hex();
        assert!(matches!(
            with_follower("food-agency", &validator, "/ip4/127.0.0.1/tcp/1"),
            Err(GenesisError::DuplicateKey {
                first: KeyUse::Node { index: 0, .. },
                ..
            })
        ));
        assert!(matches!(
            with_follower("food-agency", &key.to_hex(), "127.0.0.1:7109"),
            Err(GenesisError::FollowerP2pAddress { index: 0, .. })
        ));
    }

    #[test]
    fn bad_encryption_keys_are_refused_precisely() {
        assert!(matches!(
            with_supplier_encryption_key("xyz"),
            Err(GenesisError::EncryptionKeyHex { org, .. }) if org == "acme-supplier"
        ));
        assert!(matches!(
            with_supplier_encryption_key(&"00".repeat(32)),
            Err(GenesisError::WeakEncryptionKey { org }) if org == "acme-supplier"
        ));
        use lotline_core::private::EncryptionSecretKey;
        let key = EncryptionSecretKey::derive(&[5; 32]).public_key().to_hex();
        let regulator_line =
            "client_keys = [\"8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394\"]";
        let text = example_toml()
            .replacen(
                SUPPLIER_CLIENT_LINE,
                &format!("{SUPPLIER_CLIENT_LINE}\nencryption_key = \"{key}\""),
                1,
            )
            .replacen(
                regulator_line,
                &format!("{regulator_line}\nencryption_key = \"{key}\""),
                1,
            );
        assert!(matches!(
            Genesis::from_toml(&text),
            Err(GenesisError::DuplicateEncryptionKey { first, second })
                if first == "acme-supplier" && second == "food-agency"
        ));
    }

    #[test]
    fn the_documented_example_parses() {
        let g = Genesis::from_toml(&example_toml()).unwrap();
        assert_eq!(g.chain_name(), "lotline-demo");
        assert_eq!(g.consensus(), &ConsensusParams::default());
        assert_eq!(g.orgs().len(), 2);
        assert_eq!(g.orgs()[0].role, Role::Supplier);
        assert_eq!(g.orgs()[0].client_keys[0].to_hex(), SUPPLIER_KEY);
        assert_eq!(g.validators().len(), 2);
        assert_eq!(
            g.validators()[0].p2p.as_deref(),
            Some("/ip4/127.0.0.1/tcp/7101")
        );
        assert_eq!(g.validators()[1].p2p, None);
        assert_eq!(g.policy().len(), 2);
        assert_eq!(g.policy()[1].biz_steps, vec![ANY_BIZ_STEP.to_owned()]);
        assert_eq!(
            g.read_policy().full_read_roles,
            vec![Role::Regulator, Role::Auditor]
        );
    }

    #[test]
    fn to_toml_round_trips() {
        let g = Genesis::from_toml(&example_toml()).unwrap();
        let again = Genesis::from_toml(&g.to_toml()).unwrap();
        assert_eq!(again, g);
        assert_eq!(again.chain_id(), g.chain_id());
    }

    #[test]
    fn an_org_whose_role_has_no_rule_is_allowed() {
        let key = SigningKey::from_seed(&[9; 32]).public_key().to_hex();
        let extra = format!(
            "[[orgs]]\nid = \"audit-co\"\nname = \"Audit Co\"\nrole = \"auditor\"\nclient_keys = [\"{key}\"]\n\n"
        );
        let g = edited("# Validator order", &format!("{extra}# Validator order")).unwrap();
        assert_eq!(g.org("audit-co").map(|o| o.role), Some(Role::Auditor));
    }

    #[test]
    fn unknown_role_is_a_parse_error_naming_the_role() {
        let err = edited(
            "role = \"regulator\"\nclient_keys",
            "role = \"wizard\"\nclient_keys",
        )
        .unwrap_err();
        assert!(matches!(err, GenesisError::Parse(_)), "{err:?}");
        assert!(err.to_string().contains("wizard"), "{err}");
        let err = edited(
            "role = \"supplier\"\nevent_types",
            "role = \"wizard\"\nevent_types",
        )
        .unwrap_err();
        assert!(
            matches!(err, GenesisError::Parse(_)) && err.to_string().contains("wizard"),
            "{err}"
        );
    }

    #[test]
    fn unknown_field_is_a_parse_error() {
        let err = edited("chain_name = ", "colour = \"red\"\nchain_name = ").unwrap_err();
        assert!(
            matches!(err, GenesisError::Parse(_)) && err.to_string().contains("colour"),
            "{err}"
        );
    }

    #[test]
    fn empty_chain_name() {
        assert!(matches!(
            edited("\"lotline-demo\"", "\"  \""),
            Err(GenesisError::EmptyChainName)
        ));
    }

    #[test]
    fn zero_consensus_params() {
        for field in [
            "block_max_attestations",
            "block_interval_ms",
            "timeout_base_ms",
            "timeout_max_ms",
        ] {
            let text = example_toml();
            let line = text.lines().find(|l| l.starts_with(field)).unwrap();
            let err = Genesis::from_toml(&text.replacen(line, &format!("{field} = 0"), 1));
            assert!(
                matches!(err, Err(GenesisError::ZeroConsensusParam { field: f }) if f == field),
                "{field}: {err:?}"
            );
        }
    }

    #[test]
    fn timeout_base_above_max() {
        assert!(matches!(
            edited("timeout_base_ms = 1000", "timeout_base_ms = 30001"),
            Err(GenesisError::TimeoutBaseAboveMax {
                base: 30001,
                max: 30000
            })
        ));
        // Equal is fine: a constant timeout.
        assert!(edited("timeout_base_ms = 1000", "timeout_base_ms = 30000").is_ok());
    }

    #[test]
    fn block_larger_than_the_limit() {
        let too_many = limits::BLOCK_ATTESTATIONS_MAX + 1;
        assert!(matches!(
            edited(
                "block_max_attestations = 1000",
                &format!("block_max_attestations = {too_many}")
            ),
            Err(GenesisError::BlockTooLarge { .. })
        ));
    }

    #[test]
    fn no_orgs() {
        let text = truncated_before("[[orgs]]");
        assert!(matches!(
            Genesis::from_toml(&text),
            Err(GenesisError::NoOrgs)
        ));
    }

    #[test]
    fn org_id_charset() {
        let long = "a".repeat(ORG_ID_BYTES_MAX + 1);
        for bad in [
            "Acme",
            "acme_supplier",
            "acme supplier",
            "",
            "acmé",
            long.as_str(),
        ] {
            let err = edited("id = \"acme-supplier\"", &format!("id = \"{bad}\""));
            assert!(
                matches!(&err, Err(GenesisError::OrgIdCharset { id }) if id == bad),
                "{bad:?}: {err:?}"
            );
        }
        let longest = "a".repeat(ORG_ID_BYTES_MAX);
        let text = example_toml().replace("acme-supplier", &longest);
        assert!(Genesis::from_toml(&text).is_ok());
    }

    #[test]
    fn duplicate_org() {
        let err = edited("id = \"food-agency\"", "id = \"acme-supplier\"");
        assert!(
            matches!(&err, Err(GenesisError::DuplicateOrg { id }) if id == "acme-supplier"),
            "{err:?}"
        );
    }

    #[test]
    fn empty_org_name() {
        let err = edited("name = \"Food Safety Agency\"", "name = \"\"");
        assert!(
            matches!(&err, Err(GenesisError::EmptyOrgName { org }) if org == "food-agency"),
            "{err:?}"
        );
    }

    #[test]
    fn key_that_is_not_hex() {
        let err = edited(REGULATOR_KEY, "xyz");
        assert!(
            matches!(&err, Err(GenesisError::KeyHex { used_as: KeyUse::Client { org }, value, .. })
                if org == "food-agency" && value == "xyz"),
            "{err:?}"
        );
        // Keys have one spelling: lowercase hex (as everywhere in Lotline).
        let err = edited(REGULATOR_KEY, &REGULATOR_KEY.to_uppercase());
        assert!(matches!(&err, Err(GenesisError::KeyHex { .. })), "{err:?}");
        let err = edited(NODE0_KEY, &"g".repeat(64));
        assert!(
            matches!(&err, Err(GenesisError::KeyHex { used_as: KeyUse::Node { index: 0, org }, .. }) if org == "acme-supplier"),
            "{err:?}"
        );
    }

    #[test]
    fn key_listed_twice() {
        // The same client key for two orgs.
        let err = edited(REGULATOR_KEY, SUPPLIER_KEY);
        assert!(
            matches!(&err, Err(GenesisError::DuplicateKey { first: KeyUse::Client { org: a }, second: KeyUse::Client { org: b }, .. })
                if a == "acme-supplier" && b == "food-agency"),
            "{err:?}"
        );
        // A client key reused as a node key.
        let err = edited(NODE0_KEY, SUPPLIER_KEY);
        assert!(
            matches!(
                &err,
                Err(GenesisError::DuplicateKey {
                    second: KeyUse::Node { index: 0, .. },
                    ..
                })
            ),
            "{err:?}"
        );
        // Twice within one org.
        let err = edited(
            &format!("[\"{SUPPLIER_KEY}\"]"),
            &format!("[\"{SUPPLIER_KEY}\", \"{SUPPLIER_KEY}\"]"),
        );
        assert!(
            matches!(&err, Err(GenesisError::DuplicateKey { key, .. }) if key.to_hex() == SUPPLIER_KEY),
            "{err:?}"
        );
    }

    #[test]
    fn weak_keys() {
        // The identity point (small order), and a non-canonical encoding of it (y = p + 1).
        let non_canonical = "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f";
        for weak in [IDENTITY_KEY, non_canonical] {
            let err = edited(REGULATOR_KEY, weak);
            assert!(
                matches!(&err, Err(GenesisError::WeakKey { used_as: KeyUse::Client { org }, .. }) if org == "food-agency"),
                "{weak}: {err:?}"
            );
            let err = edited(NODE0_KEY, weak);
            assert!(
                matches!(
                    &err,
                    Err(GenesisError::WeakKey {
                        used_as: KeyUse::Node { index: 0, .. },
                        ..
                    })
                ),
                "{err:?}"
            );
        }
    }

    #[test]
    fn validator_for_an_unknown_org() {
        let err = edited("org = \"food-agency\"", "org = \"food-agenda\"");
        assert!(
            matches!(&err, Err(GenesisError::UnknownValidatorOrg { index: 1, org }) if org == "food-agenda"),
            "{err:?}"
        );
    }

    #[test]
    fn no_validators() {
        let text = example_toml();
        let start = text.find("[[validators]]").unwrap();
        let end = text.find("# An event is allowed").unwrap();
        let text = format!("{}{}", &text[..start], &text[end..]);
        assert!(matches!(
            Genesis::from_toml(&text),
            Err(GenesisError::NoValidators)
        ));
    }

    #[test]
    fn too_many_validators() {
        let g = Genesis::from_toml(&example_toml()).unwrap();
        let validators: Vec<Validator> = (0..=limits::VALIDATORS_MAX)
            .map(|i| Validator {
                org: "acme-supplier".into(),
                node_key: SigningKey::from_seed(&[u8::try_from(i).unwrap() + 100; 32]).public_key(),
                p2p: None,
            })
            .collect();
        let build = |validators: Vec<Validator>| {
            Genesis::from_parts(
                g.chain_name().into(),
                *g.consensus(),
                g.orgs().to_vec(),
                validators,
                g.policy().to_vec(),
                g.read_policy().clone(),
            )
        };
        let max = limits::VALIDATORS_MAX;
        assert!(matches!(
            build(validators.clone()),
            Err(GenesisError::TooManyValidators { count, max: m }) if count == max + 1 && m == max
        ));
        assert!(build(validators[..max].to_vec()).is_ok());
    }

    #[test]
    fn p2p_that_is_not_a_multiaddr() {
        let err = edited("\"/ip4/127.0.0.1/tcp/7101\"", "\"127.0.0.1:7101\"");
        assert!(
            matches!(&err, Err(GenesisError::P2pAddress { index: 0, value, .. }) if value == "127.0.0.1:7101"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_event_type() {
        let err = edited("\"AggregationEvent\"", "\"AggregateEvent\"");
        assert!(
            matches!(&err, Err(GenesisError::UnknownEventType { rule: 0, role: Role::Supplier, value }) if value == "AggregateEvent"),
            "{err:?}"
        );
    }

    #[test]
    fn unknown_quality_kind() {
        let err = edited("\"recallOrder\"", "\"recall\"");
        assert!(
            matches!(&err, Err(GenesisError::UnknownQualityKind { rule: 1, role: Role::Regulator, value }) if value == "recall"),
            "{err:?}"
        );
    }

    #[test]
    fn empty_policy_lists() {
        let err = edited("event_types = [\"ObjectEvent\"]", "event_types = []");
        assert!(
            matches!(
                err,
                Err(GenesisError::EmptyPolicyList {
                    rule: 1,
                    field: "event_types",
                    ..
                })
            ),
            "{err:?}"
        );
        let err = edited("biz_steps = [\"*\"]", "biz_steps = []");
        assert!(
            matches!(
                err,
                Err(GenesisError::EmptyPolicyList {
                    rule: 1,
                    field: "biz_steps",
                    ..
                })
            ),
            "{err:?}"
        );
        // No quality kinds is fine: the rule allows events without a quality fact.
        assert!(
            edited(
                "quality = [\"inspection\", \"certificate\", \"document\"]",
                "quality = []"
            )
            .is_ok()
        );
    }

    #[test]
    fn empty_biz_step() {
        let err = edited("\"packing\"", "\"\"");
        assert!(
            matches!(
                err,
                Err(GenesisError::EmptyBizStep {
                    rule: 0,
                    role: Role::Supplier
                })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn biz_steps_are_normalised() {
        let g = edited("\"shipping\"", "\"urn:epcglobal:cbv:bizstep:shipping\"").unwrap();
        assert!(g.policy()[0].biz_steps.iter().any(|s| s == "shipping"));
        assert_eq!(
            g.chain_id(),
            Genesis::from_toml(&example_toml()).unwrap().chain_id()
        );
    }

    #[test]
    fn load_reports_the_path() {
        let err = Genesis::load("/nonexistent/genesis.toml").unwrap_err();
        assert!(
            matches!(&err, GenesisError::Io { path, .. } if path.ends_with("genesis.toml")),
            "{err:?}"
        );
        assert!(err.to_string().contains("/nonexistent/genesis.toml"));
    }
}
