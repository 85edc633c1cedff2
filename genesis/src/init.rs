//! `lotline genesis init`: a new consortium directory with fresh keys.
//!
//! ```text
//! <dir>/genesis.toml
//! <dir>/keys/<org>/client.key   the org's attestation signing key (0600)
//! <dir>/keys/<org>/node.key     the org's validator key (0600)
//! <dir>/keys/<org>/encryption.key  the org's X25519 key for private fields (0600)
//! <dir>/keys/<org>/periods/<period>.key  with a retention rule: its key per key period (0600)
//! ```
//! Every org gets one client key, one validator and one encryption key
//! (its public half in genesis); with a retention rule ([`RetentionSpec`])
//! also one key per key period its records may need, from now on (their
//! public halves in genesis's `[retention] keys`). The genesis is validated
//! before anything is written, keys are written before `genesis.toml`, and
//! nothing existing is overwritten.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use lotline_core::SigningKey;
use lotline_core::private::EncryptionSecretKey;

use crate::keys::{self, KeyFileError};
use crate::model::{ConsensusParams, Genesis, Org, Role, Validator};
use crate::policy::default_policy;
use crate::retention::{Retention, RetentionClass};
use crate::validate::GenesisError;

/// A retention rule to create a consortium with (`crate::retention`), and
/// which records the period keys written now must cover.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionSpec {
    pub period_seconds: u64,
    pub default_periods: u32,
    pub classes: Vec<RetentionClass>,
    /// Records issued from this time (unix ms; normally now) ...
    pub issued_from_ms: u64,
    /// ... over this many periods get period keys; later ones need keys a
    /// governance transaction announces.
    pub issued_periods: u64,
}

impl RetentionSpec {
    /// Every key period of a record issued in the covered periods, in any
    /// class: `t + r` for each issuance period `t` and retention `r`.
    pub fn key_periods(&self) -> std::collections::BTreeSet<u64> {
        let first = self.issued_from_ms / self.period_seconds.max(1).saturating_mul(1000);
        let retentions = std::iter::once(self.default_periods)
            .chain(self.classes.iter().map(|c| c.periods))
            .map(u64::from);
        let retentions: Vec<u64> = retentions.collect();
        (first..first.saturating_add(self.issued_periods))
            .flat_map(|t| retentions.iter().map(move |r| t.saturating_add(*r)))
            .collect()
    }
}

/// One org to create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgSpec {
    pub id: String,
    pub name: String,
    pub role: Role,
}

/// Where one org's keys were written.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OrgKeyPaths {
    pub org: String,
    pub client_key: PathBuf,
    pub node_key: PathBuf,
    pub encryption_key: PathBuf,
    /// The folder of its period keys (`<period>.key`), with a retention rule.
    pub period_keys: Option<PathBuf>,
}

/// What [`init_consortium`] created.
#[derive(Clone, Debug)]
pub struct InitOutput {
    pub genesis_path: PathBuf,
    /// In the order of the `orgs` argument (= validator order).
    pub keys: Vec<OrgKeyPaths>,
    pub genesis: Genesis,
}

#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error("{} already holds a genesis.toml; refusing to create another consortium there", path.display())]
    AlreadyInitialized { path: PathBuf },
    #[error("validator org {org:?} is not one of the consortium's orgs")]
    UnknownValidator { org: String },
    #[error("p2p port {base} + {count} validators does not fit in a port number")]
    PortOverflow { base: u16, count: usize },
    #[error("the consortium would not be a valid genesis: {0}")]
    Genesis(#[from] GenesisError),
    #[error(transparent)]
    KeyFile(#[from] KeyFileError),
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// The genesis file name inside a consortium directory.
pub const GENESIS_FILE: &str = "genesis.toml";

/// Creates a consortium in `dir`: one client key and one validator node key
/// per org, and a `genesis.toml` with [`ConsensusParams::default`], the
/// [`default_policy`] and full read access for regulators and auditors.
/// With `p2p_base_port`, validator `i` listens on
/// `/ip4/127.0.0.1/tcp/<base + i>` (a loopback demo layout).
pub fn init_consortium(
    dir: &Path,
    chain_name: &str,
    orgs: &[OrgSpec],
    p2p_base_port: Option<u16>,
) -> Result<InitOutput, InitError> {
    let all: Vec<String> = orgs.iter().map(|o| o.id.clone()).collect();
    init_consortium_with_validators(dir, chain_name, orgs, &all, p2p_base_port)
}

/// Like [`init_consortium`], but only the orgs named in `validator_orgs` run
/// validators (in the order of `orgs`). Every org still gets a node key, so
/// it can join the validator set in a later genesis.
pub fn init_consortium_with_validators(
    dir: &Path,
    chain_name: &str,
    orgs: &[OrgSpec],
    validator_orgs: &[String],
    p2p_base_port: Option<u16>,
) -> Result<InitOutput, InitError> {
    init_consortium_with_retention(dir, chain_name, orgs, validator_orgs, p2p_base_port, None)
}

/// Like [`init_consortium_with_validators`], with a retention rule: every
/// org also gets a fresh X25519 key for each key period of
/// [`RetentionSpec::key_periods`], written 0600 to `keys/<org>/periods/`.
pub fn init_consortium_with_retention(
    dir: &Path,
    chain_name: &str,
    orgs: &[OrgSpec],
    validator_orgs: &[String],
    p2p_base_port: Option<u16>,
    retention: Option<&RetentionSpec>,
) -> Result<InitOutput, InitError> {
    let genesis_path = dir.join(GENESIS_FILE);
    if genesis_path.exists() {
        return Err(InitError::AlreadyInitialized {
            path: dir.to_path_buf(),
        });
    }
    if let Some(unknown) = validator_orgs
        .iter()
        .find(|v| !orgs.iter().any(|o| &o.id == *v))
    {
        return Err(InitError::UnknownValidator {
            org: unknown.clone(),
        });
    }

    let mut keys = Vec::with_capacity(orgs.len());
    let mut members = Vec::with_capacity(orgs.len());
    let mut validators = Vec::with_capacity(orgs.len());
    for spec in orgs {
        let (client, node) = (SigningKey::generate(), SigningKey::generate());
        let encryption = EncryptionSecretKey::generate();
        let is_validator = validator_orgs.contains(&spec.id);
        let i = validators.len();
        let p2p = match p2p_base_port.filter(|_| is_validator) {
            None => None,
            Some(base) => {
                let port = u16::try_from(i)
                    .ok()
                    .and_then(|i| base.checked_add(i))
                    .ok_or(InitError::PortOverflow {
                        base,
                        count: orgs.len(),
                    })?;
                Some(format!("/ip4/127.0.0.1/tcp/{port}"))
            }
        };
        members.push(Org {
            id: spec.id.clone(),
            name: spec.name.clone(),
            role: spec.role,
            client_keys: vec![client.public_key()],
            encryption_key: Some(encryption.public_key()),
        });
        if is_validator {
            validators.push(Validator {
                org: spec.id.clone(),
                node_key: node.public_key(),
                p2p,
            });
        }
        keys.push((spec.id.clone(), client, node, encryption));
    }
    let key_periods = retention
        .map(RetentionSpec::key_periods)
        .unwrap_or_default();
    // Independent random keys, never derived from the long-term key (so
    // that key cannot bring a shredded period back).
    let period_keys: Vec<Vec<(u64, EncryptionSecretKey)>> = keys
        .iter()
        .map(|_| {
            key_periods
                .iter()
                .map(|&period| (period, EncryptionSecretKey::generate()))
                .collect()
        })
        .collect();
    // Validate before writing anything (org ids become directory names).
    let mut genesis = Genesis::from_parts(
        chain_name.to_owned(),
        ConsensusParams::default(),
        members,
        validators,
        default_policy(),
        crate::read_policy::default_read_policy(),
    )?;
    if let Some(spec) = retention {
        let announced = keys
            .iter()
            .zip(&period_keys)
            .flat_map(|((org, ..), periods)| {
                periods
                    .iter()
                    .map(move |(period, key)| ((org.clone(), *period), key.public_key()))
            })
            .collect();
        genesis = genesis.with_retention(Retention {
            period_seconds: spec.period_seconds,
            default_periods: spec.default_periods,
            classes: spec.classes.clone(),
            keys: announced,
        })?;
    }

    let mut paths = Vec::with_capacity(keys.len());
    for ((org, client, node, encryption), periods) in keys.iter().zip(&period_keys) {
        let org_dir = dir.join("keys").join(org);
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&org_dir)
            .map_err(|source| InitError::Io {
                path: org_dir.clone(),
                source,
            })?;
        let client_key = org_dir.join("client.key");
        let node_key = org_dir.join("node.key");
        keys::write_signing_key(&client_key, client)?;
        keys::write_signing_key(&node_key, node)?;
        let encryption_key = org_dir.join("encryption.key");
        keys::write_encryption_key(&encryption_key, encryption)?;
        let period_dir = match retention {
            None => None,
            Some(_) => {
                let period_dir = org_dir.join("periods");
                DirBuilder::new()
                    .mode(0o700)
                    .create(&period_dir)
                    .map_err(|source| InitError::Io {
                        path: period_dir.clone(),
                        source,
                    })?;
                for (period, key) in periods {
                    keys::write_encryption_key(&period_dir.join(format!("{period}.key")), key)?;
                }
                Some(period_dir)
            }
        };
        paths.push(OrgKeyPaths {
            org: org.clone(),
            client_key,
            node_key,
            encryption_key,
            period_keys: period_dir,
        });
    }

    let text = format!(
        "# Lotline consortium {:?}: chain id {}\n\
         # Generated by `lotline genesis init`. Every value here is part of the\n\
         # chain id except validators' p2p addresses; editing one makes a new chain.\n\n{}",
        genesis.chain_name(),
        genesis.chain_id(),
        genesis.to_toml()
    );
    let io = |source| InitError::Io {
        path: genesis_path.clone(),
        source,
    };
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&genesis_path)
        .map_err(io)?;
    file.write_all(text.as_bytes()).map_err(io)?;
    file.sync_all().map_err(io)?;
    fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;

    Ok(InitOutput {
        genesis_path,
        keys: paths,
        genesis,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn specs() -> Vec<OrgSpec> {
        [
            ("acme-supplier", "Acme Raw Materials", Role::Supplier),
            ("bolt-works", "Bolt Works", Role::Manufacturer),
            ("swift-dist", "Swift Distribution", Role::Distributor),
            ("food-agency", "Food Safety Agency", Role::Regulator),
        ]
        .into_iter()
        .map(|(id, name, role)| OrgSpec {
            id: id.into(),
            name: name.into(),
            role,
        })
        .collect()
    }

    #[test]
    fn creates_a_consortium_that_loads_and_whose_keys_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("demo");
        let out = init_consortium(&root, "lotline-demo", &specs(), Some(7101)).unwrap();
        let loaded = Genesis::load(&out.genesis_path).unwrap();
        assert_eq!(loaded, out.genesis);
        assert_eq!(loaded.chain_id(), out.genesis.chain_id());
        assert_eq!(loaded.validators().len(), 4);
        assert_eq!(
            loaded.validators()[3].p2p.as_deref(),
            Some("/ip4/127.0.0.1/tcp/7104")
        );
        assert_eq!(loaded.policy(), default_policy().as_slice());
        assert!(loaded.read_policy().reads_everything(Role::Regulator));
        for (i, paths) in out.keys.iter().enumerate() {
            let client = keys::read_signing_key(&paths.client_key).unwrap();
            let node = keys::read_signing_key(&paths.node_key).unwrap();
            assert_eq!(
                loaded
                    .key_owner(&client.public_key())
                    .map(|o| o.id.as_str()),
                Some(paths.org.as_str())
            );
            assert_eq!(loaded.validators()[i].node_key, node.public_key());
            let encryption = keys::read_encryption_key(&paths.encryption_key).unwrap();
            assert_eq!(
                loaded.orgs()[i].encryption_key,
                Some(encryption.public_key())
            );
            assert_eq!(
                loaded.validator_set().index_of(&node.public_key()),
                u16::try_from(i).ok()
            );
        }
        // The header comment names the chain id.
        let text = fs::read_to_string(&out.genesis_path).unwrap();
        assert!(text.contains(&loaded.chain_id().to_hex()));
    }

    #[test]
    fn a_retention_rule_gets_a_key_file_per_org_and_key_period() {
        // Goal (issue 14): `genesis init` with a retention rule writes
        // every period key the rule needs for records issued in the
        // covered periods, 0600, each announced in genesis and opening
        // nothing but its own period's wraps.
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let spec = RetentionSpec {
            period_seconds: 100,
            default_periods: 5,
            classes: vec![RetentionClass {
                name: "logistics".into(),
                biz_steps: vec!["shipping".into()],
                periods: 2,
            }],
            issued_from_ms: 1_000_050_000,
            issued_periods: 2,
        };
        // Issued in periods 10_000 and 10_001, kept 2 or 5 periods.
        let periods: Vec<u64> = spec.key_periods().into_iter().collect();
        assert_eq!(periods, vec![10_002, 10_003, 10_005, 10_006]);
        let out = init_consortium_with_retention(
            dir.path(),
            "kept",
            &specs(),
            &[specs()[0].id.clone()],
            None,
            Some(&spec),
        )
        .unwrap();
        let loaded = Genesis::load(&out.genesis_path).unwrap();
        assert_eq!(loaded, out.genesis);
        let retention = loaded.retention().expect("[retention] in genesis");
        assert_eq!(retention.classes, spec.classes);
        assert_eq!(retention.keys.len(), 4 * periods.len());
        for paths in &out.keys {
            let folder = paths.period_keys.as_ref().expect("period key folder");
            let mode = fs::metadata(folder).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "{} is open to others", folder.display());
            let mut seen = std::collections::BTreeSet::new();
            for &period in &periods {
                let file = folder.join(format!("{period}.key"));
                assert_eq!(
                    fs::metadata(&file).unwrap().permissions().mode() & 0o777,
                    0o600
                );
                let key = keys::read_encryption_key(&file).unwrap();
                assert_eq!(retention.key(&paths.org, period), Some(key.public_key()));
                assert!(seen.insert(key.public_key()), "a period key repeats");
            }
            assert_eq!(fs::read_dir(folder).unwrap().count(), periods.len());
        }
        // Without a rule: no folder, no [retention].
        let plain = tempfile::tempdir().unwrap();
        let out = init_consortium(plain.path(), "plain", &specs(), None).unwrap();
        assert!(out.genesis.retention().is_none());
        assert!(out.keys.iter().all(|k| k.period_keys.is_none()));
    }

    #[test]
    fn refuses_an_initialised_directory() {
        let dir = tempfile::tempdir().unwrap();
        init_consortium(dir.path(), "one", &specs(), None).unwrap();
        assert!(matches!(
            init_consortium(dir.path(), "two", &specs(), None),
            Err(InitError::AlreadyInitialized { .. })
        ));
    }

    #[test]
    fn invalid_orgs_write_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut specs = specs();
        specs[1].id = "../escape".into();
        assert!(matches!(
            init_consortium(dir.path(), "demo", &specs, None),
            Err(InitError::Genesis(GenesisError::OrgIdCharset { .. }))
        ));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
        assert!(matches!(
            init_consortium(dir.path(), "demo", &self::specs(), Some(u16::MAX - 1)),
            Err(InitError::PortOverflow { .. })
        ));
    }
}
