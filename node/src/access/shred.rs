//! Crypto-shredding on this node: the org's period keys (`[private]
//! period_keys`, one file `<period>.key` each), and their destruction when
//! the committed chain passes a key period's end (the rule and its argument
//! are in `lotline_genesis::retention`).
//!
//! The trigger is the committed chain: the follower reads each applied
//! block, keeps the latest `issuedAtMs` of its statements as the *chain
//! time*, and once the chain time is past the end of a key period this node
//! holds a key for, it deletes that key file (then syncs the folder) and
//! records the act in the audit trail with the block height that ordered
//! it. Every node of every org reaches the same height and does the same,
//! so the period becomes unreadable everywhere, while blocks, ciphertexts,
//! receipts and certificates stay untouched. One guard is local: the
//! node's own clock must have passed the period's end too, because
//! `issuedAtMs` is the submitter's clock and nothing bounds it, so a
//! statement dated in the future cannot destroy anyone's keys early.
//!
//! Persistence: the key files are the state. A node that was down when a
//! period expired deletes the key when it starts (the chain time then comes
//! from its head block) and records it then. Reads of a shredded period
//! answer `Shredded`, not "ask another node": no node can open it.
//!
//! What the node derived from a period's plaintext (the quality points it
//! opened at commit) is sealed under the period's at-rest key, which only
//! [`PeriodKeys`] can derive; when a key goes, its cached copy goes too and
//! the store forgets the period (`StoreReader::forget_period`: the sealed
//! entries, the opened events in memory, the alert follower's chart
//! states).
//!
//! Nothing here logs a key or a path's content; the audit entry names the
//! org, the period and the height.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use lotline_core::at_rest::PeriodAtRestKey;
use lotline_core::private::{EncryptionPublicKey, EncryptionSecretKey};
use lotline_genesis::Genesis;
use lotline_genesis::retention::Retention;

use crate::audit::{Access, Action, AuditLog};
use crate::state::Shared;
use crate::store::StoreReader;

/// How often the follower looks for newly applied blocks.
const POLL: Duration = Duration::from_millis(100);

/// Why a period key can not be used.
#[derive(Debug, thiserror::Error)]
pub enum PeriodKeyError {
    #[error(
        "key period {period} was shredded under the retention rule: its private fields are unreadable on every node"
    )]
    Shredded { period: u64 },
    #[error("this node holds no key of its org for key period {period}")]
    Missing { period: u64 },
    #[error("the key file for period {period} is unusable: {message}")]
    Bad { period: u64, message: String },
}

/// This node's org's period keys and the chain time seen so far.
#[derive(Debug)]
pub struct PeriodKeys {
    org: String,
    dir: PathBuf,
    retention: Retention,
    /// The latest `issuedAtMs` of a committed statement this node applied.
    chain_time_ms: AtomicU64,
    /// Keys read from their files (opening at commit reads one per record):
    /// a period's entry goes when the period is shredded.
    cache: std::sync::Mutex<std::collections::BTreeMap<u64, Arc<EncryptionSecretKey>>>,
}

impl PeriodKeys {
    /// Period keys of `org` in `dir`, under genesis's retention rule.
    /// `None` if genesis has no retention rule.
    pub fn new(genesis: &Genesis, org: &str, dir: &Path) -> Option<PeriodKeys> {
        Some(PeriodKeys {
            org: org.to_owned(),
            dir: dir.to_path_buf(),
            retention: genesis.retention()?.clone(),
            chain_time_ms: AtomicU64::new(0),
            cache: Default::default(),
        })
    }

    fn path(&self, period: u64) -> PathBuf {
        self.dir.join(format!("{period}.key"))
    }

    /// Whether `period` is expired: the committed chain has passed it *and*
    /// so has this node's clock. `issuedAtMs` is the submitter's clock and
    /// admission does not bound it, so a statement dated in the future
    /// must not be able to destroy keys early; the local clock guards
    /// that (a node whose clock runs ahead destroys only its own copy
    /// early, never another org's).
    fn expired(&self, period: u64, now_ms: u64) -> bool {
        let chain_time_ms = self.chain_time_ms.load(Ordering::Acquire);
        self.retention.expired(period, chain_time_ms.min(now_ms))
    }

    /// The secret key for `period`, checked against the public key genesis
    /// announces for this org and period.
    pub fn key(&self, period: u64) -> Result<Arc<EncryptionSecretKey>, PeriodKeyError> {
        if self.expired(period, now_ms()) {
            return Err(PeriodKeyError::Shredded { period });
        }
        if let Some(key) = self.cache.lock().ok().and_then(|c| c.get(&period).cloned()) {
            return Ok(key);
        }
        let path = self.path(period);
        if !path.exists() {
            return Err(PeriodKeyError::Missing { period });
        }
        let key =
            lotline_genesis::keys::read_encryption_key(&path).map_err(|e| PeriodKeyError::Bad {
                period,
                message: e.to_string(),
            })?;
        let announced: Option<EncryptionPublicKey> = self.retention.key(&self.org, period);
        if announced != Some(key.public_key()) {
            return Err(PeriodKeyError::Bad {
                period,
                message: "not the key genesis announces for this org and period".into(),
            });
        }
        let key = Arc::new(key);
        if let Ok(mut cache) = self.cache.lock() {
            cache.insert(period, key.clone());
        }
        Ok(key)
    }

    /// The at-rest keys of the periods this node can still open, ascending:
    /// what it derived from those periods' plaintext is readable with
    /// these and nothing else (`lotline_core::at_rest`).
    pub fn at_rest_keys(&self) -> Vec<PeriodAtRestKey> {
        self.held()
            .unwrap_or_default()
            .into_iter()
            .filter_map(|period| Some(PeriodAtRestKey::derive(period, &*self.key(period).ok()?)))
            .collect()
    }

    /// The periods this node holds a key file for, ascending.
    fn held(&self) -> std::io::Result<Vec<u64>> {
        let mut periods = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(periods),
            Err(e) => return Err(e),
        };
        for entry in entries {
            let name = entry?.file_name();
            if let Some(period) = name
                .to_str()
                .and_then(|n| n.strip_suffix(".key"))
                .and_then(|n| n.parse::<u64>().ok())
            {
                periods.push(period);
            }
        }
        periods.sort_unstable();
        Ok(periods)
    }

    /// Advances the chain time to `issued_at_ms` (never backwards).
    fn observe(&self, issued_at_ms: u64) {
        self.chain_time_ms.fetch_max(issued_at_ms, Ordering::AcqRel);
    }

    /// Deletes every held key of an expired period; returns the periods
    /// deleted. The folder is synced so a crash cannot bring a file back.
    fn shred_expired(&self, now_ms: u64) -> std::io::Result<Vec<u64>> {
        let mut shredded = Vec::new();
        for period in self.held()? {
            if self.expired(period, now_ms) {
                if let Ok(mut cache) = self.cache.lock() {
                    cache.remove(&period);
                }
                std::fs::remove_file(self.path(period))?;
                shredded.push(period);
            }
        }
        if !shredded.is_empty() {
            std::fs::File::open(&self.dir)?.sync_all()?;
        }
        Ok(shredded)
    }
}

/// Follows applied blocks and shreds expired periods' keys (module doc).
/// Runs until the node shuts down.
pub fn start(
    keys: Arc<PeriodKeys>,
    reader: StoreReader,
    shared: Arc<Shared>,
    audit: AuditLog,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        // Start from the head: a restarted node's chain time is its head
        // block's, and blocks before it are already reflected in which key
        // files are left.
        let mut next = shared.head().height.max(1);
        let mut failing = false;
        while !shared.shutting_down() {
            let head = shared.head().height;
            while next <= head {
                match block_time(&reader, next) {
                    Ok(Some(time)) => keys.observe(time),
                    Ok(None) => {}
                    Err(e) => {
                        if !failing {
                            tracing::warn!(height = next, error = %e, "shredding follower: block unreadable, retrying");
                        }
                        failing = true;
                        break;
                    }
                }
                failing = false;
                match keys.shred_expired(now_ms()) {
                    Ok(periods) => {
                        for period in periods {
                            tracing::info!(org = %keys.org, period, height = next, "key period shredded");
                            // What the index derived from the period's
                            // plaintext is sealed under the key just
                            // deleted; its entries go too.
                            if let Err(e) = reader.forget_period(period) {
                                tracing::error!(error = %e, period, "shredding: the period's index entries were not removed (they stay sealed under the deleted key)");
                            }
                            let recorded = audit
                                .record(Access {
                                    caller: "node".into(),
                                    org: Some(keys.org.clone()),
                                    client: None,
                                    action: Action::Admin,
                                    resource: format!(
                                        "shred key period {period} of org {} (retention rule, ordered by block {next})",
                                        keys.org
                                    ),
                                    outcome: 0,
                                })
                                .await;
                            if let Err(e) = recorded {
                                tracing::error!(error = %e, period, "shredding not recorded in the audit trail");
                            }
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "shredding: deleting an expired period key failed; retrying");
                        break;
                    }
                }
                next += 1;
            }
            tokio::time::sleep(POLL).await;
        }
    })
}

/// This node's clock, Unix milliseconds (0 if it reads before 1970).
fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The latest `issuedAtMs` among the statements of the block at `height`.
fn block_time(reader: &StoreReader, height: u64) -> Result<Option<u64>, crate::store::StoreError> {
    Ok(
        crate::quality::alerts::follower::read_block(reader, height)?
            .and_then(|block| block.iter().map(|(_, _, s)| s.issued_at_ms).max()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_genesis::retention::RetentionClass;

    #[test]
    fn expired_keys_are_deleted_and_refused_the_rest_stay() {
        // Goal: with 10-second periods, once the chain time reaches period
        // 6, the held key of period 5 is deleted and reported shredded;
        // period 6's key stays and opens; an unannounced file is refused.
        let dir = tempfile::tempdir().unwrap();
        let k5 = EncryptionSecretKey::derive(&[5; 32]);
        let k6 = EncryptionSecretKey::derive(&[6; 32]);
        let retention = Retention {
            period_seconds: 10,
            default_periods: 1,
            classes: Vec::<RetentionClass>::new(),
            keys: [
                (("acme".to_owned(), 5), k5.public_key()),
                (("acme".to_owned(), 6), k6.public_key()),
            ]
            .into_iter()
            .collect(),
        };
        let keys = PeriodKeys {
            org: "acme".into(),
            dir: dir.path().to_path_buf(),
            retention,
            chain_time_ms: AtomicU64::new(0),
            cache: Default::default(),
        };
        lotline_genesis::keys::write_encryption_key(&keys.path(5), &k5).unwrap();
        lotline_genesis::keys::write_encryption_key(&keys.path(6), &k6).unwrap();
        lotline_genesis::keys::write_encryption_key(&keys.path(7), &k5).unwrap();
        keys.observe(55_000);
        assert_eq!(keys.shred_expired(u64::MAX).unwrap(), Vec::<u64>::new());
        assert_eq!(keys.key(5).unwrap().public_key(), k5.public_key());
        keys.observe(60_000);
        keys.observe(1_000); // the chain time never goes back
        // A node whose clock has not reached period 6 keeps the key, however
        // far the (submitter-dated) chain time is ahead.
        assert_eq!(keys.shred_expired(59_999).unwrap(), Vec::<u64>::new());
        assert_eq!(keys.shred_expired(60_000).unwrap(), vec![5]);
        assert!(!keys.path(5).exists());
        assert!(matches!(
            keys.key(5),
            Err(PeriodKeyError::Shredded { period: 5 })
        ));
        assert_eq!(keys.key(6).unwrap().public_key(), k6.public_key());
        assert!(matches!(
            keys.key(7),
            Err(PeriodKeyError::Bad { period: 7, .. })
        ));
        assert!(matches!(
            keys.key(8),
            Err(PeriodKeyError::Missing { period: 8 })
        ));
    }
}
