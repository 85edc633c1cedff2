//! Retention classes and per-period encryption keys: how long a record's
//! private fields stay readable, and the keys whose destruction ends that.
//!
//! ```toml
//! [retention]
//! period_seconds = 31536000          # one key period (here 365 days)
//! default_periods = 5                # quality records and anything unclassed
//! classes = [ { name = "logistics", biz_steps = ["shipping", "receiving"], periods = 2 } ]
//! keys = [ { org = "acme-supplier", period = 61, key = "<64 hex>" }, … ]
//! ```
//!
//! # The rule
//!
//! Time is cut into periods of `period_seconds`, counted from the Unix
//! epoch. A record issued in period `t` (by its statement's `issuedAtMs`)
//! whose bizStep falls in a class of `r` periods (else `default_periods`)
//! has **key period** `e = t + r`: its private section is wrapped, for
//! each entitled org, to that org's key for period `e` in `keys`, never to
//! the org's long-term key. All records whose retention ends in the same
//! period share its keys, whatever their class, so one act of destruction
//! per period suffices.
//!
//! Period `e` is **expired** once the committed chain has reached period
//! `e + 1`: some committed statement was issued at or after
//! `(e + 1) * period_seconds`. A record of key period `e` was issued
//! before `(t + 1) * period_seconds`, so it was kept at least `r` periods.
//! `issuedAtMs` is the submitter's clock, bounded only by the clock of the
//! node it submits to (`[admission] issued_at_skew_ms`, not a consensus
//! rule), so a node also waits for its own clock to pass the period's end
//! before it destroys anything (a future-dated statement cannot shred
//! early).
//!
//! # Destruction
//!
//! The trigger is on chain and the same for every node: the first committed
//! block that reaches period `e + 1` orders the shredding of period `e`.
//! Every node then deletes the secret keys of period `e` it holds and
//! records the act, with that block's height, in its audit trail (see the
//! node's `access::shred`). With every org's copy gone, no content key of
//! the period can be unwrapped anywhere. Nothing else is deleted: blocks,
//! ciphertexts, commitments, receipts and certificates stay and verify.
//!
//! Period keys are independent random X25519 keys (key files
//! `keys/<org>/periods/<period>.key`), not derived from the long-term
//! key, so the long-term key cannot bring a shredded period back. Keys for
//! periods beyond those in genesis are announced by a governance
//! transaction (issue 15); until then a record whose key period has no key
//! for an entitled org cannot be private (admission names the org and the
//! period).

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::epcis::normalize_vocabulary;
use lotline_core::private::EncryptionPublicKey;
use serde::{Deserialize, Serialize};

/// Periods are counted in milliseconds since the Unix epoch.
const MS_PER_SECOND: u64 = 1000;

/// One retention class: records with one of `biz_steps` are kept
/// `periods` periods.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionClass {
    pub name: String,
    /// CBV short forms.
    pub biz_steps: Vec<String>,
    pub periods: u32,
}

/// The consortium's retention rule and the period keys (see the module doc).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Retention {
    pub period_seconds: u64,
    pub default_periods: u32,
    pub classes: Vec<RetentionClass>,
    /// (org id, key period) -> the org's public key for that period.
    pub keys: BTreeMap<(String, u64), EncryptionPublicKey>,
}

/// Why a `[retention]` table is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RetentionError {
    #[error("retention: period_seconds must be at least 1")]
    ZeroPeriod,
    #[error("retention: {what} must keep records at least one period")]
    ZeroPeriods { what: String },
    #[error("retention class {0:?} is named twice (or is empty)")]
    ClassName(String),
    #[error("retention: bizStep {biz_step:?} is in classes {first:?} and {second:?}")]
    BizStepTwice {
        biz_step: String,
        first: String,
        second: String,
    },
    #[error("retention key of org {org:?} for period {period}: {reason}")]
    Key {
        org: String,
        period: u64,
        reason: &'static str,
    },
    #[error("retention key {value:?} is not 64 hex digits")]
    KeyHex { value: String },
}

/// The `[retention]` table as written.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionFile {
    pub period_seconds: u64,
    pub default_periods: u32,
    #[serde(default)]
    pub classes: Vec<ClassFile>,
    #[serde(default)]
    pub keys: Vec<KeyFile>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ClassFile {
    pub name: String,
    pub biz_steps: Vec<String>,
    pub periods: u32,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyFile {
    pub org: String,
    pub period: u64,
    pub key: String,
}

impl RetentionFile {
    pub(crate) fn into_typed(self) -> Result<Retention, RetentionError> {
        let mut keys = BTreeMap::new();
        for k in self.keys {
            let key = EncryptionPublicKey::from_hex(&k.key)
                .map_err(|_| RetentionError::KeyHex { value: k.key })?;
            if keys.insert((k.org.clone(), k.period), key).is_some() {
                return Err(RetentionError::Key {
                    org: k.org,
                    period: k.period,
                    reason: "listed twice",
                });
            }
        }
        Ok(Retention {
            period_seconds: self.period_seconds,
            default_periods: self.default_periods,
            classes: self
                .classes
                .into_iter()
                .map(|c| RetentionClass {
                    name: c.name,
                    biz_steps: c.biz_steps,
                    periods: c.periods,
                })
                .collect(),
            keys,
        })
    }

    pub(crate) fn from_typed(r: &Retention) -> RetentionFile {
        RetentionFile {
            period_seconds: r.period_seconds,
            default_periods: r.default_periods,
            classes: r
                .classes
                .iter()
                .map(|c| ClassFile {
                    name: c.name.clone(),
                    biz_steps: c.biz_steps.clone(),
                    periods: c.periods,
                })
                .collect(),
            keys: r
                .keys
                .iter()
                .map(|((org, period), key)| KeyFile {
                    org: org.clone(),
                    period: *period,
                    key: key.to_hex(),
                })
                .collect(),
        }
    }
}

impl Retention {
    /// Checks the rule against the orgs (id, long-term key) and normalises
    /// bizSteps. A period key must belong to an org with a long-term key,
    /// be usable, and differ from every other key in genesis: a period key
    /// equal to a long-term key would survive its period's destruction.
    pub(crate) fn check(
        mut self,
        orgs: &[(String, Option<EncryptionPublicKey>)],
    ) -> Result<Retention, RetentionError> {
        if self.period_seconds == 0 {
            return Err(RetentionError::ZeroPeriod);
        }
        if self.default_periods == 0 {
            return Err(RetentionError::ZeroPeriods {
                what: "default_periods".into(),
            });
        }
        let mut names = BTreeSet::new();
        let mut steps: BTreeMap<String, String> = BTreeMap::new();
        for class in &mut self.classes {
            if class.name.trim().is_empty() || !names.insert(class.name.clone()) {
                return Err(RetentionError::ClassName(class.name.clone()));
            }
            if class.periods == 0 {
                return Err(RetentionError::ZeroPeriods {
                    what: format!("class {:?}", class.name),
                });
            }
            for step in &mut class.biz_steps {
                *step = normalize_vocabulary(step);
                if let Some(first) = steps.insert(step.clone(), class.name.clone()) {
                    return Err(RetentionError::BizStepTwice {
                        biz_step: step.clone(),
                        first,
                        second: class.name.clone(),
                    });
                }
            }
        }
        let long_term: BTreeSet<EncryptionPublicKey> =
            orgs.iter().filter_map(|(_, k)| *k).collect();
        let mut seen = BTreeSet::new();
        for ((org, period), key) in &self.keys {
            let bad = |reason| RetentionError::Key {
                org: org.clone(),
                period: *period,
                reason,
            };
            match orgs.iter().find(|(id, _)| id == org) {
                None => return Err(bad("no such org")),
                Some((_, None)) => return Err(bad("the org has no long-term encryption key")),
                Some(_) => {}
            }
            if key.is_weak() {
                return Err(bad("not a usable X25519 key"));
            }
            if long_term.contains(key) || !seen.insert(*key) {
                return Err(bad("the key is used elsewhere in genesis"));
            }
        }
        Ok(self)
    }

    /// The period `time_ms` falls in.
    pub fn period_of(&self, time_ms: u64) -> u64 {
        time_ms / self.period_seconds.saturating_mul(MS_PER_SECOND)
    }

    /// How many periods records with this bizStep are kept, and the class
    /// name (`None`: the default).
    pub fn periods_for(&self, biz_step: Option<&str>) -> (u32, Option<&str>) {
        biz_step
            .and_then(|step| {
                self.classes
                    .iter()
                    .find(|c| c.biz_steps.iter().any(|s| s == step))
            })
            .map_or((self.default_periods, None), |c| {
                (c.periods, Some(c.name.as_str()))
            })
    }

    /// The key period of a record issued at `issued_at_ms` with this
    /// bizStep (CBV short form).
    pub fn key_period(&self, issued_at_ms: u64, biz_step: Option<&str>) -> u64 {
        let (periods, _) = self.periods_for(biz_step);
        self.period_of(issued_at_ms)
            .saturating_add(u64::from(periods))
    }

    /// Whether key period `period` is expired once the chain has committed
    /// a statement issued at `chain_time_ms`.
    pub fn expired(&self, period: u64, chain_time_ms: u64) -> bool {
        self.period_of(chain_time_ms) > period
    }

    /// The org's key for `period`, if genesis announces one.
    pub fn key(&self, org: &str, period: u64) -> Option<EncryptionPublicKey> {
        self.keys.get(&(org.to_owned(), period)).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lotline_core::private::EncryptionSecretKey;

    fn rule() -> Retention {
        Retention {
            period_seconds: 10,
            default_periods: 5,
            classes: vec![RetentionClass {
                name: "logistics".into(),
                biz_steps: vec!["urn:epcglobal:cbv:bizstep:shipping".into()],
                periods: 2,
            }],
            keys: BTreeMap::new(),
        }
    }

    #[test]
    fn key_periods_follow_the_class_and_expire_after_the_period() {
        // Goal: a logistics record issued in period 3 is keyed for period
        // 5, a quality record for period 8; period 5 expires once the chain
        // reaches period 6 and not before.
        let orgs = [(
            "acme".to_owned(),
            Some(EncryptionSecretKey::derive(&[1; 32]).public_key()),
        )];
        let r = rule().check(&orgs).unwrap();
        assert_eq!(r.classes[0].biz_steps, vec!["shipping".to_owned()]);
        assert_eq!(r.key_period(35_000, Some("shipping")), 5);
        assert_eq!(r.key_period(35_000, Some("inspecting")), 8);
        assert_eq!(r.key_period(35_000, None), 8);
        assert!(!r.expired(5, 59_999));
        assert!(r.expired(5, 60_000));
    }

    #[test]
    fn bad_rules_are_named() {
        let long_term = EncryptionSecretKey::derive(&[1; 32]).public_key();
        let orgs = [
            ("acme".to_owned(), Some(long_term)),
            ("keyless".to_owned(), None),
        ];
        let with = |f: &dyn Fn(&mut Retention)| {
            let mut r = rule();
            f(&mut r);
            r.check(&orgs)
        };
        assert_eq!(
            with(&|r| r.period_seconds = 0),
            Err(RetentionError::ZeroPeriod)
        );
        assert!(matches!(
            with(&|r| r.default_periods = 0),
            Err(RetentionError::ZeroPeriods { .. })
        ));
        assert!(matches!(
            with(&|r| r.classes.push(r.classes[0].clone())),
            Err(RetentionError::ClassName(_))
        ));
        assert!(matches!(
            with(&|r| {
                let mut c = r.classes[0].clone();
                c.name = "other".into();
                r.classes.push(c);
            }),
            Err(RetentionError::BizStepTwice { .. })
        ));
        let period_key = EncryptionSecretKey::derive(&[2; 32]).public_key();
        for (org, key, reason) in [
            ("nobody", period_key, "no such org"),
            (
                "keyless",
                period_key,
                "the org has no long-term encryption key",
            ),
            ("acme", long_term, "the key is used elsewhere in genesis"),
            (
                "acme",
                EncryptionPublicKey([0; 32]),
                "not a usable X25519 key",
            ),
        ] {
            assert_eq!(
                with(&|r| {
                    r.keys.insert((org.to_owned(), 7), key);
                }),
                Err(RetentionError::Key {
                    org: org.into(),
                    period: 7,
                    reason
                })
            );
        }
    }
}
