//! The consortium's data: organisations and their roles, validators,
//! consensus parameters and the read policy. [`crate::Genesis`] holds them,
//! validated.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use lotline_core::epcis::Event;
use lotline_core::hash::{Domain, hash};
use lotline_core::private::EncryptionPublicKey;
use lotline_core::{Digest, PublicKey, ValidatorSet};
use serde::{Deserialize, Serialize};

use crate::policy::{self, PolicyError, PolicyRule, quality_kind_name};
use crate::read_policy::{Audience, ReadPolicy};
use crate::retention::Retention;
use crate::validate::{self, GenesisError, GenesisFile, Parts};

/// What an organisation is in the supply chain. Its policy rules follow from it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Supplier,
    Manufacturer,
    Distributor,
    Retailer,
    Logistics,
    Regulator,
    Auditor,
}

impl Role {
    pub const ALL: [Role; 7] = [
        Role::Supplier,
        Role::Manufacturer,
        Role::Distributor,
        Role::Retailer,
        Role::Logistics,
        Role::Regulator,
        Role::Auditor,
    ];

    /// The lowercase name used in genesis files (and hashed into the chain id).
    pub const fn as_str(self) -> &'static str {
        match self {
            Role::Supplier => "supplier",
            Role::Manufacturer => "manufacturer",
            Role::Distributor => "distributor",
            Role::Retailer => "retailer",
            Role::Logistics => "logistics",
            Role::Regulator => "regulator",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A role name that is not one of the seven roles.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown role {0:?}; the roles are supplier, manufacturer, distributor, retailer, logistics, regulator, auditor"
)]
pub struct UnknownRole(pub String);

impl std::str::FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// A member organisation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Org {
    /// Stable identifier, `[a-z0-9-]{1,64}`; statements name their org by it.
    pub id: String,
    /// Human-readable name.
    pub name: String,
    pub role: Role,
    /// The keys whose attestations count as this org's.
    pub client_keys: Vec<PublicKey>,
    /// The X25519 key private sections are wrapped to for this org
    /// (statement version 2). `None`: the org reads no private field, and a
    /// statement that would have to be wrapped to it can not be private.
    pub encryption_key: Option<EncryptionPublicKey>,
}

/// A node a member org runs: a validator (its index in
/// [`crate::Genesis::validators`] is its index in certificates and the
/// leader rotation) or a follower ([`crate::Genesis::followers`]: admitted
/// by the transport, served blocks, never votes). The same three facts
/// name both.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validator {
    /// The id of the org that runs it.
    pub org: String,
    pub node_key: PublicKey,
    /// A libp2p multiaddr where the node listens, as a bootstrap hint. Not
    /// part of the chain id: moving a node to another address does not fork
    /// the chain (peer identity is the node key).
    pub p2p: Option<String>,
}

/// Block production and consensus timing, the same on every node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsensusParams {
    /// Cut a block at this many attestations (at most
    /// [`lotline_core::limits::BLOCK_ATTESTATIONS_MAX`]).
    pub block_max_attestations: u32,
    /// Or after this long since the first pending attestation. It also
    /// caps the wait a BFT leader keeps between blocks while attestations
    /// keep coming (20 ms by default): a lower value trades CPU for commit
    /// latency at low load (docs/performance.md, "What a block costs").
    pub block_interval_ms: u64,
    /// The Simplex view timeout before any nullification.
    pub timeout_base_ms: u64,
    /// The cap the timeout grows to after consecutive nullifications.
    pub timeout_max_ms: u64,
    /// Epoch length for validator-set changes: a change committed at
    /// height `g` takes effect at the first multiple of this more than half
    /// of it above `g` ([`crate::governance::boundary`]). Optional in the
    /// file; the default ([`EPOCH_BLOCKS_DEFAULT`]) is not part of the chain
    /// id, so older genesis files keep theirs. Values below twice the
    /// engine's pipeline (512) are for tests: a validator whose engine
    /// already holds a block at the boundary when the change commits could
    /// not switch there.
    #[serde(
        default = "default_epoch_blocks",
        skip_serializing_if = "is_default_epoch_blocks"
    )]
    pub epoch_blocks: u64,
}

/// The default epoch length (docs/protocol.md, "Validator-set changes").
pub const EPOCH_BLOCKS_DEFAULT: u64 = 1000;
/// The shortest epoch a genesis may state.
pub const EPOCH_BLOCKS_MIN: u64 = 4;

fn default_epoch_blocks() -> u64 {
    EPOCH_BLOCKS_DEFAULT
}

fn is_default_epoch_blocks(value: &u64) -> bool {
    *value == EPOCH_BLOCKS_DEFAULT
}

impl Default for ConsensusParams {
    fn default() -> Self {
        ConsensusParams {
            block_max_attestations: 1000,
            block_interval_ms: 50,
            timeout_base_ms: 1000,
            timeout_max_ms: 30_000,
            epoch_blocks: EPOCH_BLOCKS_DEFAULT,
        }
    }
}

/// A validated consortium definition: the parsed genesis file plus its chain
/// id, computed once.
///
/// Every `Genesis` value satisfies the rules of [`Genesis::from_toml`]: it can
/// only be built by parsing or by [`Genesis::from_parts`], and it has no
/// setters, so the cached chain id always matches the content.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Genesis {
    chain_name: String,
    consensus: ConsensusParams,
    orgs: Vec<Org>,
    validators: Vec<Validator>,
    followers: Vec<Validator>,
    policy: Vec<PolicyRule>,
    read_policy: ReadPolicy,
    retention: Option<Retention>,
    chain_id: Digest,
    /// Client key -> index into `orgs`.
    client_keys: BTreeMap<PublicKey, usize>,
}

/// The domain-separated encoding hashed into the chain id. Field order and
/// the strings used for enums are part of the format: changing either
/// changes every chain id.
#[derive(Serialize)]
struct Canonical<'a> {
    format: &'static str,
    chain_name: &'a str,
    block_max_attestations: u32,
    block_interval_ms: u64,
    timeout_base_ms: u64,
    timeout_max_ms: u64,
    orgs: Vec<CanonicalOrg<'a>>,
    validators: Vec<(&'a str, PublicKey)>,
    policy: Vec<CanonicalRule<'a>>,
    full_read_roles: Vec<&'static str>,
    share: Vec<CanonicalShare<'a>>,
    /// Only in format v3 (a genesis where some org has an encryption key):
    /// each org's key or `None`, in org order. Absent in v2, so a genesis
    /// without encryption keys keeps the chain id it always had; the
    /// format tag keeps the two encodings apart.
    #[serde(skip_serializing_if = "Option::is_none")]
    encryption_keys: Option<Vec<Option<EncryptionPublicKey>>>,
    /// Only in format v4 (a genesis with `[retention]`).
    #[serde(skip_serializing_if = "Option::is_none")]
    retention: Option<CanonicalRetention<'a>>,
    /// Only when `epoch_blocks` is not the default: every postcard field
    /// before it delimits itself, so its presence can not be mistaken for
    /// another field, and a genesis with the default keeps its chain id.
    /// Always present in format v5 (followers follow it).
    #[serde(skip_serializing_if = "Option::is_none")]
    epoch_blocks: Option<u64>,
    /// Only in format v5 (a genesis with `[[followers]]`): each follower's
    /// org and node key, in file order (`p2p` hints excluded, as for
    /// validators).
    #[serde(skip_serializing_if = "Option::is_none")]
    followers: Option<Vec<(&'a str, PublicKey)>>,
}

/// The retention rule in the chain id: classes in file order (bizSteps
/// normalised), keys sorted by org and period.
#[derive(Serialize)]
struct CanonicalRetention<'a> {
    period_seconds: u64,
    default_periods: u32,
    classes: Vec<(&'a str, &'a [String], u32)>,
    keys: Vec<(&'a str, u64, EncryptionPublicKey)>,
}

/// A share rule in the chain id. `None` filters and `from = "*"` stay
/// distinct from any list, so "any" and "these" never hash alike.
#[derive(Serialize)]
struct CanonicalShare<'a> {
    from: Option<&'a str>,
    to: Vec<String>,
    event_types: Option<Vec<&'static str>>,
    biz_steps: Option<&'a [String]>,
    quality: Option<Vec<&'static str>>,
}

#[derive(Serialize)]
struct CanonicalOrg<'a> {
    id: &'a str,
    name: &'a str,
    role: &'static str,
    client_keys: &'a [PublicKey],
}

#[derive(Serialize)]
struct CanonicalRule<'a> {
    role: &'static str,
    event_types: Vec<&'static str>,
    biz_steps: &'a [String],
    quality: Vec<&'static str>,
}

/// Version tag at the start of the canonical encoding.
const CANONICAL_FORMAT: &str = "lotline/genesis/v2";
/// The tag when some org has an encryption key.
const CANONICAL_FORMAT_ENCRYPTION: &str = "lotline/genesis/v3";
/// The tag when the genesis has a retention rule (`[retention]`).
const CANONICAL_FORMAT_RETENTION: &str = "lotline/genesis/v4";
/// The tag when the genesis lists followers (`[[followers]]`).
const CANONICAL_FORMAT_FOLLOWERS: &str = "lotline/genesis/v5";

impl Genesis {
    /// Parses and validates a genesis TOML document.
    pub fn from_toml(text: &str) -> Result<Genesis, GenesisError> {
        let file: GenesisFile = toml::from_str(text)?;
        Ok(Genesis::finish(file.into_typed()?))
    }

    /// Reads, parses and validates a genesis file.
    pub fn load(path: impl AsRef<Path>) -> Result<Genesis, GenesisError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| GenesisError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Genesis::from_toml(&text)
    }

    /// Validates a genesis built in code (by `init`, tests, the simulator).
    /// The same rules as [`Genesis::from_toml`] apply; bizSteps are
    /// normalised to the CBV short form.
    pub fn from_parts(
        chain_name: String,
        consensus: ConsensusParams,
        orgs: Vec<Org>,
        validators: Vec<Validator>,
        policy: Vec<PolicyRule>,
        read_policy: ReadPolicy,
    ) -> Result<Genesis, GenesisError> {
        let nodes = validate::Nodes {
            validators,
            followers: Vec::new(),
        };
        let parts = validate::check(chain_name, consensus, orgs, nodes, policy, read_policy)?;
        Ok(Genesis::finish(parts))
    }

    pub(crate) fn finish(parts: Parts) -> Genesis {
        let mut genesis = Genesis {
            chain_name: parts.chain_name,
            consensus: parts.consensus,
            orgs: parts.orgs,
            validators: parts.validators,
            followers: parts.followers,
            policy: parts.policy,
            read_policy: parts.read_policy,
            retention: parts.retention,
            chain_id: Digest::ZERO,
            client_keys: parts.client_keys,
        };
        genesis.chain_id = hash(Domain::Genesis, &genesis.canonical_bytes());
        genesis
    }

    /// The TOML form. [`Genesis::from_toml`] of it gives back an equal
    /// genesis with the same chain id.
    pub fn to_toml(&self) -> String {
        let file = GenesisFile::from_parts(self);
        match toml::to_string_pretty(&file) {
            Ok(text) => text,
            // Only plain strings, integers and arrays of them: this can not fail.
            Err(e) => panic!("TOML encoding of a validated genesis failed: {e}"),
        }
    }

    /// The canonical encoding (postcard) whose hash is the chain id.
    ///
    /// Orgs, validators and policy rules stay in file order: validator order
    /// is the certificate index and leader order. Excluded, on purpose:
    /// formatting and comments, and validators' `p2p` addresses (network
    /// hints, not identity).
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let encryption_keys = self
            .orgs
            .iter()
            .any(|o| o.encryption_key.is_some())
            .then(|| self.orgs.iter().map(|o| o.encryption_key).collect());
        let followers = (!self.followers.is_empty()).then(|| {
            self.followers
                .iter()
                .map(|f| (f.org.as_str(), f.node_key))
                .collect()
        });
        let canonical = Canonical {
            format: if followers.is_some() {
                CANONICAL_FORMAT_FOLLOWERS
            } else if self.retention.is_some() {
                CANONICAL_FORMAT_RETENTION
            } else if encryption_keys.is_some() {
                CANONICAL_FORMAT_ENCRYPTION
            } else {
                CANONICAL_FORMAT
            },
            chain_name: &self.chain_name,
            block_max_attestations: self.consensus.block_max_attestations,
            block_interval_ms: self.consensus.block_interval_ms,
            timeout_base_ms: self.consensus.timeout_base_ms,
            timeout_max_ms: self.consensus.timeout_max_ms,
            orgs: self
                .orgs
                .iter()
                .map(|o| CanonicalOrg {
                    id: &o.id,
                    name: &o.name,
                    role: o.role.as_str(),
                    client_keys: &o.client_keys,
                })
                .collect(),
            validators: self
                .validators
                .iter()
                .map(|v| (v.org.as_str(), v.node_key))
                .collect(),
            policy: self
                .policy
                .iter()
                .map(|r| CanonicalRule {
                    role: r.role.as_str(),
                    event_types: r.event_types.iter().map(|t| t.as_str()).collect(),
                    biz_steps: &r.biz_steps,
                    quality: r.quality.iter().map(|k| quality_kind_name(*k)).collect(),
                })
                .collect(),
            full_read_roles: self
                .read_policy
                .full_read_roles
                .iter()
                .map(|r| r.as_str())
                .collect(),
            share: self
                .read_policy
                .share
                .iter()
                .map(|r| CanonicalShare {
                    from: r.from.as_deref(),
                    to: r.to.iter().map(Audience::to_file_string).collect(),
                    event_types: r
                        .event_types
                        .as_ref()
                        .map(|t| t.iter().map(|t| t.as_str()).collect()),
                    biz_steps: r.biz_steps.as_deref(),
                    quality: r
                        .quality
                        .as_ref()
                        .map(|k| k.iter().map(|k| quality_kind_name(*k)).collect()),
                })
                .collect(),
            encryption_keys,
            retention: self.retention.as_ref().map(|r| CanonicalRetention {
                period_seconds: r.period_seconds,
                default_periods: r.default_periods,
                classes: r
                    .classes
                    .iter()
                    .map(|c| (c.name.as_str(), c.biz_steps.as_slice(), c.periods))
                    .collect(),
                keys: r
                    .keys
                    .iter()
                    .map(|((org, period), key)| (org.as_str(), *period, *key))
                    .collect(),
            }),
            epoch_blocks: (followers.is_some()
                || self.consensus.epoch_blocks != EPOCH_BLOCKS_DEFAULT)
                .then_some(self.consensus.epoch_blocks),
            followers,
        };
        lotline_core::codec::to_bytes(&canonical)
    }

    /// The chain id: BLAKE3 in the `lotline/v1/genesis` domain of
    /// [`Genesis::canonical_bytes`].
    pub fn chain_id(&self) -> Digest {
        self.chain_id
    }

    pub fn chain_name(&self) -> &str {
        &self.chain_name
    }

    pub fn consensus(&self) -> &ConsensusParams {
        &self.consensus
    }

    /// Member orgs in file order.
    pub fn orgs(&self) -> &[Org] {
        &self.orgs
    }

    /// Validators in genesis order (the certificate index order).
    pub fn validators(&self) -> &[Validator] {
        &self.validators
    }

    /// Follower nodes in file order: node keys the transport admits
    /// that never vote.
    pub fn followers(&self) -> &[Validator] {
        &self.followers
    }

    pub fn policy(&self) -> &[PolicyRule] {
        &self.policy
    }

    pub fn read_policy(&self) -> &ReadPolicy {
        &self.read_policy
    }

    /// The retention rule and period keys, if the consortium has one
    /// ([`crate::retention`]).
    pub fn retention(&self) -> Option<&Retention> {
        self.retention.as_ref()
    }

    /// This genesis with a retention rule (a new chain id): for a genesis
    /// built in code; a file states it in `[retention]`.
    pub fn with_retention(self, retention: Retention) -> Result<Genesis, GenesisError> {
        let retention = crate::validate::check_retention(retention, &self.orgs)?;
        let mut genesis = Genesis {
            retention: Some(retention),
            chain_id: Digest::ZERO,
            ..self
        };
        genesis.chain_id = hash(Domain::Genesis, &genesis.canonical_bytes());
        Ok(genesis)
    }

    /// This genesis with another epoch length (a new chain id unless it is
    /// the default): for a genesis built in code; a file states it in
    /// `[consensus] epoch_blocks`.
    pub fn with_epoch_blocks(self, epoch_blocks: u64) -> Result<Genesis, GenesisError> {
        let consensus = ConsensusParams {
            epoch_blocks,
            ..self.consensus
        };
        crate::validate::check_consensus(&consensus)?;
        let mut genesis = Genesis {
            consensus,
            chain_id: Digest::ZERO,
            ..self
        };
        genesis.chain_id = hash(Domain::Genesis, &genesis.canonical_bytes());
        Ok(genesis)
    }

    /// The chain id and the node keys in genesis order: all an offline
    /// verifier needs to check certificates.
    pub fn validator_set(&self) -> ValidatorSet {
        ValidatorSet::new(
            self.chain_id,
            self.validators.iter().map(|v| v.node_key).collect(),
        )
    }

    /// The org whose client key `key` is. Node keys own nothing: they sign
    /// votes, not attestations.
    pub fn key_owner(&self, key: &PublicKey) -> Option<&Org> {
        self.client_keys.get(key).and_then(|&i| self.orgs.get(i))
    }

    pub fn org(&self, id: &str) -> Option<&Org> {
        self.orgs.iter().find(|o| o.id == id)
    }

    /// The org that runs validator `index`.
    pub fn validator_org(&self, index: u16) -> Option<&Org> {
        self.validators
            .get(usize::from(index))
            .and_then(|v| self.org(&v.org))
    }

    /// Whether `org` may attest `event`, by its role's policy rules (see
    /// [`crate::policy`]). Custody (does the org hold the lot?) is checked by
    /// the node against its trace index, not here.
    pub fn check_write(&self, org: &Org, event: &Event) -> Result<(), PolicyError> {
        policy::check_write(&self.policy, org, event)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{example, example_toml};
    use lotline_core::SigningKey;
    use proptest::prelude::*;

    /// The chain id of the documented example. Changing it is a format
    /// change of the genesis encoding (or of the example) and is reviewed as one.
    const EXAMPLE_CHAIN_ID: &str =
        "42260782c7e2ff62696906ba14c2ab43efc7739c43112852843d801611908ac9";

    #[test]
    fn golden_chain_id_of_the_example() {
        assert_eq!(example().chain_id().to_hex(), EXAMPLE_CHAIN_ID);
    }

    #[test]
    fn chain_id_is_the_genesis_domain_hash_of_the_canonical_bytes() {
        let g = example();
        assert_eq!(g.chain_id(), hash(Domain::Genesis, &g.canonical_bytes()));
        assert_eq!(g.validator_set().chain_id, g.chain_id());
    }

    /// The example rewritten by hand: no comments, other whitespace, inline
    /// tables, fields in another order, a CBV URN bizStep.
    const REFORMATTED: &str = r#"
chain_name="lotline-demo"
consensus={timeout_max_ms=30000,timeout_base_ms=1000,block_interval_ms=50,block_max_attestations=1000}
read_policy = { full_read_roles = [ "regulator","auditor" ], share = [ { to = ["public"], from = "*", biz_steps = ["urn:epcglobal:cbv:bizstep:commissioning", "inspecting"] }, { from = "acme-supplier", to = ["members", "role:manufacturer"], biz_steps = ["shipping"] } ] }
orgs = [
  { role = "supplier", id = "acme-supplier", name = "Acme Raw Materials", client_keys = [ "8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c" ] },
  { id = "food-agency", name = 'Food Safety Agency', role = "regulator", client_keys = ["8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394"] },
]
validators = [
  { node_key = "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1", org = "acme-supplier", p2p = "/ip4/127.0.0.1/tcp/7101" },
  { org = "food-agency", node_key = "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c" },
]
[[policy]]
quality = ["inspection","certificate","document"]
biz_steps = ["commissioning","inspecting","packing","urn:epcglobal:cbv:bizstep:shipping"]
event_types = ["ObjectEvent","AggregationEvent","TransactionEvent"]
role = "supplier"
[[policy]]
role = "regulator"
event_types = ["ObjectEvent"]
biz_steps = ["*"]
quality = ["inspection","nonConformance","recallOrder","document"]
"#;

    #[test]
    fn reformatting_keeps_the_chain_id() {
        let reformatted = Genesis::from_toml(REFORMATTED).unwrap();
        assert_eq!(reformatted.chain_id(), example().chain_id());
        assert_eq!(reformatted, example());
        // p2p addresses are hints, not identity.
        let moved = Genesis::from_toml(&example_toml().replace("tcp/7101", "tcp/9999")).unwrap();
        assert_eq!(moved.chain_id(), example().chain_id());
    }

    #[test]
    fn changing_any_value_changes_the_chain_id() {
        let text = example_toml();
        let other_key = SigningKey::from_seed(&[77; 32]).public_key().to_hex();
        let node1 = "ca93ac1705187071d67b83c7ff0efe8108e8ec4530575d7726879333dbdabe7c";
        let node0 = "ed4928c628d1c2c6eae90338905995612959273a5c63f93636c14614ac8737d1";
        let edits: Vec<(&str, String)> = vec![
            ("\"lotline-demo\"", "\"lotline-demo2\"".into()),
            (
                "block_max_attestations = 1000",
                "block_max_attestations = 999".into(),
            ),
            ("block_interval_ms = 50", "block_interval_ms = 51".into()),
            ("timeout_base_ms = 1000", "timeout_base_ms = 1001".into()),
            ("timeout_max_ms = 30000", "timeout_max_ms = 30001".into()),
            ("\"Acme Raw Materials\"", "\"Acme Raw Material\"".into()),
            ("role = \"supplier\"  ", "role = \"manufacturer\"".into()),
            (
                "8139770ea87d175f56a35466c34c7ecccb8d8a91b4ee37a25df60f5b8fc9b394",
                other_key.clone(),
            ),
            (node1, other_key.clone()),
            ("\"AggregationEvent\", ", String::new()),
            ("\"packing\", ", String::new()),
            ("\"certificate\", ", String::new()),
            (
                "full_read_roles = [\"regulator\", \"auditor\"]",
                "full_read_roles = [\"regulator\"]".into(),
            ),
            (
                "full_read_roles = [\"regulator\", \"auditor\"]",
                "full_read_roles = [\"auditor\", \"regulator\"]".into(),
            ),
            ("org = \"acme-supplier\"", "org = \"food-agency\"".into()),
            ("to = [\"public\"]", "to = [\"members\"]".into()),
            ("from = \"*\"", "from = \"food-agency\"".into()),
            (
                "biz_steps = [\"commissioning\", \"inspecting\"]",
                "biz_steps = [\"commissioning\"]".into(),
            ),
            (
                "biz_steps = [\"commissioning\", \"inspecting\"]",
                "event_types = [\"ObjectEvent\"]".into(),
            ),
            ("\"role:manufacturer\"", "\"role:retailer\"".into()),
        ];
        let mut ids = std::collections::BTreeSet::from([example().chain_id()]);
        for (from, to) in &edits {
            assert!(text.contains(from), "example has no {from:?}");
            let g = Genesis::from_toml(&text.replacen(from, to, 1)).unwrap();
            assert!(
                ids.insert(g.chain_id()),
                "editing {from:?} -> {to:?} kept a chain id"
            );
        }
        // Renaming an org everywhere, and swapping the validator order.
        let renamed = Genesis::from_toml(&text.replace("acme-supplier", "acme")).unwrap();
        assert!(ids.insert(renamed.chain_id()));
        let swapped = text
            .replace(node0, "NODE0")
            .replace(node1, node0)
            .replace("NODE0", node1);
        let swapped = Genesis::from_toml(
            &swapped
                .replace("org = \"acme-supplier\"", "org = \"X\"")
                .replace("org = \"food-agency\"", "org = \"acme-supplier\"")
                .replace("org = \"X\"", "org = \"food-agency\""),
        )
        .unwrap();
        assert_eq!(swapped.validators()[0].org, "food-agency");
        assert!(
            ids.insert(swapped.chain_id()),
            "validator order must change the chain id"
        );
    }

    #[test]
    fn lookups() {
        let g = example();
        let supplier = crate::test_support::supplier_client().public_key();
        assert_eq!(
            g.key_owner(&supplier).map(|o| o.id.as_str()),
            Some("acme-supplier")
        );
        let node = crate::test_support::node_keys()[0].public_key();
        assert_eq!(g.key_owner(&node), None, "node keys own no attestations");
        assert_eq!(g.org("food-agency").map(|o| o.role), Some(Role::Regulator));
        assert_eq!(g.org("nobody"), None);
        assert_eq!(
            g.validator_org(1).map(|o| o.id.as_str()),
            Some("food-agency")
        );
        assert_eq!(g.validator_org(2), None);
        let set = g.validator_set();
        assert_eq!(
            set.validators,
            crate::test_support::node_keys()
                .map(|k| k.public_key())
                .to_vec()
        );
        assert_eq!(set.quorum(), 2);
    }

    #[test]
    fn role_names() {
        for role in Role::ALL {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            assert_eq!(
                toml::Value::try_from(role).unwrap().as_str(),
                Some(role.as_str())
            );
        }
        assert!("Supplier".parse::<Role>().is_err());
    }

    proptest! {
        /// Names with quotes, backslashes, newlines and non-ASCII survive the
        /// TOML writer, and the round trip keeps the chain id.
        #[test]
        fn to_toml_round_trips_arbitrary_names(
            chain_name in "[^\u{0}]{1,40}",
            names in prop::collection::vec("\\PC{1,30}", 1..5),
            roles in prop::collection::vec(0usize..7, 1..5),
        ) {
            prop_assume!(!chain_name.trim().is_empty());
            let orgs: Vec<Org> = names
                .iter()
                .enumerate()
                .filter(|(_, n)| !n.trim().is_empty())
                .map(|(i, name)| Org {
                    id: format!("org-{i}"),
                    name: name.clone(),
                    role: Role::ALL[roles[i % roles.len()]],
                    client_keys: vec![SigningKey::from_seed(&[u8::try_from(i).unwrap() + 1; 32]).public_key()],
                    encryption_key: None,
                })
                .collect();
            prop_assume!(!orgs.is_empty());
            let validators = orgs
                .iter()
                .enumerate()
                .map(|(i, o)| Validator {
                    org: o.id.clone(),
                    node_key: SigningKey::from_seed(&[u8::try_from(i).unwrap() + 100; 32]).public_key(),
                    p2p: None,
                })
                .collect();
            let g = Genesis::from_parts(
                chain_name,
                ConsensusParams::default(),
                orgs,
                validators,
                crate::default_policy(),
                ReadPolicy::default(),
            )
            .unwrap();
            let back = Genesis::from_toml(&g.to_toml()).unwrap();
            prop_assert_eq!(back.chain_id(), g.chain_id());
            prop_assert_eq!(back, g);
        }
    }
}
