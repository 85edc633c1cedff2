//! API credentials: bearer tokens per org and role, stored hashed.
//!
//! A token is `<credential id>.<64 hex digits of secret>`. The node config
//! keeps only its BLAKE3 hash in the `lotline/v1/api-token` domain, so a
//! leaked config does not leak a usable token. The id in the token finds
//! the credential; the hash is then compared in constant time, and an
//! unknown id and a wrong secret give the same error, so the answer says
//! nothing about which ids exist.

use std::collections::BTreeMap;

use lotline_core::Digest;
use lotline_core::hash::{Domain, hash};
use lotline_genesis::{Genesis, Role};
use rand_core::RngCore;
use subtle::ConstantTimeEq;

/// The role name of a node operator's credential (metrics, audit export).
pub const OPERATOR: &str = "operator";

/// Longest credential id, and its charset (`[a-z0-9-]`, as org ids).
pub const CREDENTIAL_ID_BYTES_MAX: usize = 64;

const SECRET_BYTES: usize = 32;

/// One configured credential (a `[[api.credentials]]` entry), checked
/// against the genesis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub id: String,
    pub org: String,
    /// The org's role in genesis (a credential can not claim another).
    pub role: Role,
    /// A node operator's credential: may read metrics and export the audit
    /// trail, and otherwise reads what its org reads.
    pub operator: bool,
    pub token_hash: Digest,
}

/// A `[[api.credentials]]` entry as written in the node config.
#[derive(Clone, Debug, PartialEq, Eq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialEntry {
    pub id: String,
    pub org: String,
    /// The org's genesis role name, or `operator`.
    pub role: String,
    pub token_hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CredentialError {
    #[error("api.credentials[{index}].id {id:?} must be 1 to 64 characters of a-z, 0-9 and '-'")]
    IdCharset { index: usize, id: String },
    #[error("api.credentials[{index}].id {id:?} appears twice")]
    DuplicateId { index: usize, id: String },
    #[error(
        "api.credentials[{index}].org {org:?} is not an org of the genesis nor one added by vote"
    )]
    UnknownOrg { index: usize, org: String },
    #[error(
        "api.credentials[{index}].role is {role:?}, but org {org:?} has role {actual}; use {actual:?} or \"operator\""
    )]
    WrongRole {
        index: usize,
        org: String,
        role: String,
        actual: Role,
    },
    #[error(
        "api.credentials[{index}].role is \"operator\" but org {org:?} does not run this node (it is run by {node_org:?})"
    )]
    ForeignOperator {
        index: usize,
        org: String,
        node_org: String,
    },
    #[error("api.credentials[{index}].token_hash is not 64 lowercase hex digits")]
    TokenHash { index: usize },
}

/// Why a presented token is refused. One variant for every case on purpose
/// (see the module doc); the detail stays in the node's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the bearer token is not valid for this node")]
pub struct InvalidToken;

/// The credentials of one node, by id.
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    by_id: BTreeMap<String, Credential>,
}

pub fn valid_credential_id(id: &str) -> bool {
    (1..=CREDENTIAL_ID_BYTES_MAX).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// The hash a config stores for `token`.
pub fn token_hash(token: &str) -> Digest {
    hash(Domain::ApiToken, token.as_bytes())
}

/// A fresh token for credential `id` from the OS random source.
pub fn new_token(id: &str) -> String {
    let mut secret = [0u8; SECRET_BYTES];
    rand_core::OsRng.fill_bytes(&mut secret);
    format!("{id}.{}", hex::encode(secret))
}

/// A token just made, and the config lines that accept it.
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub config_lines: String,
}

/// Makes a token for credential `id` of `org` with `role` (checked when the
/// node loads the config) and renders its `[[api.credentials]]` entry.
pub fn issue(id: &str, org: &str, role: &str) -> Issued {
    let token = new_token(id);
    let config_lines = format!(
        "[[api.credentials]]\nid = {id:?}\norg = {org:?}\nrole = {role:?}\ntoken_hash = \"{}\"\n",
        token_hash(&token)
    );
    Issued {
        token,
        config_lines,
    }
}

impl Credentials {
    /// Checks every entry against the genesis. `node_org` is the org that
    /// runs this node: only it can have operator credentials here.
    pub fn from_entries(
        entries: &[CredentialEntry],
        genesis: &Genesis,
        node_org: &str,
    ) -> Result<Credentials, CredentialError> {
        Credentials::from_entries_known(entries, &|org| genesis.org(org).map(|o| o.role), node_org)
    }

    /// Checks every entry against the orgs `known` gives a role: on a
    /// running chain, every org that is or ever was a member
    /// (`History::known_org`). Whether a credential's org reads anything
    /// is decided per request by the membership in force
    /// ([`super::visibility`]).
    pub fn from_entries_known(
        entries: &[CredentialEntry],
        known: &dyn Fn(&str) -> Option<Role>,
        node_org: &str,
    ) -> Result<Credentials, CredentialError> {
        let mut by_id = BTreeMap::new();
        for (index, e) in entries.iter().enumerate() {
            if !valid_credential_id(&e.id) {
                return Err(CredentialError::IdCharset {
                    index,
                    id: e.id.clone(),
                });
            }
            let role = known(&e.org).ok_or_else(|| CredentialError::UnknownOrg {
                index,
                org: e.org.clone(),
            })?;
            let operator = e.role == OPERATOR;
            if operator && e.org != node_org {
                return Err(CredentialError::ForeignOperator {
                    index,
                    org: e.org.clone(),
                    node_org: node_org.to_owned(),
                });
            }
            if !operator && e.role != role.as_str() {
                return Err(CredentialError::WrongRole {
                    index,
                    org: e.org.clone(),
                    role: e.role.clone(),
                    actual: role,
                });
            }
            let token_hash = Digest::from_hex(&e.token_hash)
                .map_err(|_| CredentialError::TokenHash { index })?;
            let credential = Credential {
                id: e.id.clone(),
                org: e.org.clone(),
                role,
                operator,
                token_hash,
            };
            if by_id.insert(e.id.clone(), credential).is_some() {
                return Err(CredentialError::DuplicateId {
                    index,
                    id: e.id.clone(),
                });
            }
        }
        Ok(Credentials { by_id })
    }

    pub fn len(&self) -> usize {
        self.by_id.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_id.is_empty()
    }

    /// The credential `token` belongs to. `token` comes from the network.
    pub fn authenticate(&self, token: &str) -> Result<&Credential, InvalidToken> {
        let (id, _) = token.split_once('.').ok_or(InvalidToken)?;
        let credential = self.by_id.get(id).ok_or(InvalidToken)?;
        let presented = token_hash(token);
        if bool::from(presented.0.ct_eq(&credential.token_hash.0)) {
            Ok(credential)
        } else {
            Err(InvalidToken)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn genesis() -> Genesis {
        let dir = tempfile::tempdir().unwrap();
        let orgs = crate::demo::parse_orgs(crate::demo::DEMO_ORGS).unwrap();
        let out = lotline_genesis::init::init_consortium_with_validators(
            dir.path(),
            "t",
            &orgs,
            &["manufacturer".into()],
            None,
        )
        .unwrap();
        out.genesis
    }

    fn entry(id: &str, org: &str, role: &str, token: &str) -> CredentialEntry {
        CredentialEntry {
            id: id.into(),
            org: org.into(),
            role: role.into(),
            token_hash: token_hash(token).to_hex(),
        }
    }

    #[test]
    fn a_token_authenticates_only_its_credential() {
        let g = genesis();
        let token = new_token("sup-1");
        let other = new_token("ops");
        let creds = Credentials::from_entries(
            &[
                entry("sup-1", "supplier", "supplier", &token),
                entry("ops", "manufacturer", OPERATOR, &other),
            ],
            &g,
            "manufacturer",
        )
        .unwrap();
        let c = creds.authenticate(&token).unwrap();
        assert_eq!(
            (c.org.as_str(), c.role, c.operator),
            ("supplier", Role::Supplier, false)
        );
        assert!(creds.authenticate(&other).unwrap().operator);
        // Another credential's id with this secret, a flipped digit, junk.
        let (_, secret) = token.split_once('.').unwrap();
        assert_eq!(
            creds.authenticate(&format!("ops.{secret}")),
            Err(InvalidToken)
        );
        let mut flipped = token.clone();
        let last = if flipped.ends_with('0') { "1" } else { "0" };
        flipped.replace_range(flipped.len() - 1.., last);
        assert_eq!(creds.authenticate(&flipped), Err(InvalidToken));
        for junk in ["", ".", "sup-1", "nobody.00", "sup-1."] {
            assert_eq!(creds.authenticate(junk), Err(InvalidToken), "{junk:?}");
        }
    }

    #[test]
    fn entries_are_checked_against_the_genesis() {
        let g = genesis();
        let t = "x.00";
        let check = |e: CredentialEntry| Credentials::from_entries(&[e], &g, "manufacturer");
        assert!(matches!(
            check(entry("A", "supplier", "supplier", t)),
            Err(CredentialError::IdCharset { .. })
        ));
        assert!(matches!(
            check(entry("a", "nobody", "supplier", t)),
            Err(CredentialError::UnknownOrg { .. })
        ));
        assert!(matches!(
            check(entry("a", "supplier", "regulator", t)),
            Err(CredentialError::WrongRole { .. })
        ));
        assert!(matches!(
            check(entry("a", "supplier", OPERATOR, t)),
            Err(CredentialError::ForeignOperator { .. })
        ));
        let mut bad_hash = entry("a", "supplier", "supplier", t);
        bad_hash.token_hash = "xyz".into();
        assert!(matches!(
            check(bad_hash),
            Err(CredentialError::TokenHash { index: 0 })
        ));
        let twice = [
            entry("a", "supplier", "supplier", t),
            entry("a", "regulator", "regulator", t),
        ];
        assert!(matches!(
            Credentials::from_entries(&twice, &g, "manufacturer"),
            Err(CredentialError::DuplicateId { index: 1, .. })
        ));
    }
}
