//! Named queries and subscriptions as records, and the book that keeps them
//! in the node's store (a node-local sled tree, [`TREE`]), flushed after
//! every change so they survive a restart.
//!
//! Keys: `q<org>\0<name>` -> [`NamedQuery`] (JSON), `s<id>` ->
//! [`Subscription`] (JSON). Named queries are per org: each org sees and
//! manages only its own, so one org's names reveal nothing to another.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::epcis::query::{ParamError, Query};
use crate::store::{StoreError, StoreReader};

/// The node-local tree.
pub const TREE: &str = "epcis-subscriptions";
/// Named queries one org may keep.
pub const QUERIES_PER_ORG_MAX: usize = 100;
/// Subscriptions (webhooks) on one node; each is one delivery loop.
pub const SUBSCRIPTIONS_MAX: usize = 256;
/// Longest query name.
pub const NAME_BYTES_MAX: usize = 64;

/// A named query: an EPCIS query definition (`{"EQ_bizStep": [...]}`)
/// under a name, owned by the org that created it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedQuery {
    pub name: String,
    pub org: String,
    pub query: Map<String, Value>,
    pub created_ms: i64,
}

/// A webhook subscription to a named query (streaming: every new matching
/// event is pushed as it commits).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Subscription {
    pub id: String,
    pub query: String,
    /// The subscribing org: its read rights decide what is pushed.
    pub org: String,
    pub dest: String,
    /// The client's `signatureToken`: the HMAC key of every delivery.
    pub secret: String,
    pub created_ms: i64,
    /// `initialRecordTime`, if the client gave one.
    pub initial_record_time: Option<String>,
    /// The feed position the subscription started after.
    pub start: u64,
}

/// Why a query definition or name is refused.
#[derive(Debug, thiserror::Error)]
pub enum DefinitionError {
    #[error("query name {0:?}: 1 to 64 of A-Z a-z 0-9 . _ -")]
    Name(String),
    #[error(
        "query parameter {0}: a value is a string, a number, true, or a list of strings or numbers"
    )]
    Shape(String),
    #[error("{0}")]
    Param(#[from] ParamError),
    #[error("query parameter {0} pages a result; a definition may not hold it")]
    Paging(String),
}

pub fn check_name(name: &str) -> Result<(), DefinitionError> {
    let ok = !name.is_empty()
        && name.len() <= NAME_BYTES_MAX
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(DefinitionError::Name(name.chars().take(80).collect()))
    }
}

/// The definition as query-string pairs (lists joined by `|`, as the
/// `GET /epcis/events` binding writes them), so a named query and the same
/// parameters on `/epcis/events` are parsed by one parser.
pub fn pairs(query: &Map<String, Value>) -> Result<Vec<(String, String)>, DefinitionError> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(true) => Some("true".into()),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(query.len());
    for (name, value) in query {
        if name == "nextPageToken" || name == "perPage" {
            return Err(DefinitionError::Paging(name.clone()));
        }
        let text = match value {
            Value::Array(items) => items
                .iter()
                .map(scalar)
                .collect::<Option<Vec<_>>>()
                .map(|v| v.join("|")),
            other => scalar(other),
        }
        .ok_or_else(|| DefinitionError::Shape(name.chars().take(80).collect()))?;
        out.push((name.clone(), text));
    }
    Ok(out)
}

/// Parses a definition into the engine's [`Query`].
pub fn parse(query: &Map<String, Value>) -> Result<Query, DefinitionError> {
    Ok(Query::parse(&pairs(query)?)?)
}

/// The persisted named queries and subscriptions.
#[derive(Clone, Debug)]
pub struct Book {
    tree: sled::Tree,
}

fn json_err(source: serde_json::Error) -> StoreError {
    StoreError::Json {
        what: "epcis subscription",
        source,
    }
}

fn sled_err(source: sled::Error) -> StoreError {
    StoreError::Sled {
        path: "index.sled".into(),
        source,
    }
}

fn query_key(org: &str, name: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + org.len() + name.len());
    key.push(b'q');
    key.extend_from_slice(org.as_bytes());
    key.push(0);
    key.extend_from_slice(name.as_bytes());
    key
}

fn subscription_key(id: &str) -> Vec<u8> {
    let mut key = vec![b's'];
    key.extend_from_slice(id.as_bytes());
    key
}

/// What [`Book::create_query`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Created {
    Created,
    Exists,
    Full,
}

impl Book {
    pub fn open(reader: &StoreReader) -> Result<Book, StoreError> {
        Ok(Book {
            tree: reader.local_tree(TREE)?,
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.tree.flush().map(|_| ()).map_err(sled_err)
    }

    pub fn create_query(&self, query: &NamedQuery) -> Result<Created, StoreError> {
        if self.queries(&query.org)?.len() >= QUERIES_PER_ORG_MAX {
            return Ok(Created::Full);
        }
        let value = serde_json::to_vec(query).map_err(json_err)?;
        let swapped = self
            .tree
            .compare_and_swap(
                query_key(&query.org, &query.name),
                None::<&[u8]>,
                Some(value),
            )
            .map_err(sled_err)?;
        if swapped.is_err() {
            return Ok(Created::Exists);
        }
        self.flush()?;
        Ok(Created::Created)
    }

    pub fn query(&self, org: &str, name: &str) -> Result<Option<NamedQuery>, StoreError> {
        match self.tree.get(query_key(org, name)).map_err(sled_err)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(json_err),
        }
    }

    /// `org`'s named queries, by name.
    pub fn queries(&self, org: &str) -> Result<Vec<NamedQuery>, StoreError> {
        let mut prefix = vec![b'q'];
        prefix.extend_from_slice(org.as_bytes());
        prefix.push(0);
        self.tree
            .scan_prefix(prefix)
            .map(|entry| {
                let (_, bytes) = entry.map_err(sled_err)?;
                serde_json::from_slice(&bytes).map_err(json_err)
            })
            .collect()
    }

    /// Removes a named query and its subscriptions; returns those
    /// subscriptions (their deliveries must stop), or `None` if there was
    /// no such query.
    pub fn delete_query(
        &self,
        org: &str,
        name: &str,
    ) -> Result<Option<Vec<Subscription>>, StoreError> {
        if self
            .tree
            .remove(query_key(org, name))
            .map_err(sled_err)?
            .is_none()
        {
            return Ok(None);
        }
        let gone: Vec<Subscription> = self
            .subscriptions()?
            .into_iter()
            .filter(|s| s.org == org && s.query == name)
            .collect();
        for s in &gone {
            self.tree
                .remove(subscription_key(&s.id))
                .map_err(sled_err)?;
        }
        self.flush()?;
        Ok(Some(gone))
    }

    pub fn add_subscription(&self, subscription: &Subscription) -> Result<bool, StoreError> {
        if self.subscriptions()?.len() >= SUBSCRIPTIONS_MAX {
            return Ok(false);
        }
        let value = serde_json::to_vec(subscription).map_err(json_err)?;
        self.tree
            .insert(subscription_key(&subscription.id), value)
            .map_err(sled_err)?;
        self.flush()?;
        Ok(true)
    }

    pub fn subscription(&self, id: &str) -> Result<Option<Subscription>, StoreError> {
        match self.tree.get(subscription_key(id)).map_err(sled_err)? {
            None => Ok(None),
            Some(bytes) => serde_json::from_slice(&bytes).map(Some).map_err(json_err),
        }
    }

    /// Every subscription on this node.
    pub fn subscriptions(&self) -> Result<Vec<Subscription>, StoreError> {
        self.tree
            .scan_prefix([b's'])
            .map(|entry| {
                let (_, bytes) = entry.map_err(sled_err)?;
                serde_json::from_slice(&bytes).map_err(json_err)
            })
            .collect()
    }

    pub fn remove_subscription(&self, id: &str) -> Result<bool, StoreError> {
        let removed = self
            .tree
            .remove(subscription_key(id))
            .map_err(sled_err)?
            .is_some();
        self.flush()?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn definitions_become_the_query_string_binding() {
        let def = json!({"EQ_bizStep": ["shipping", "receiving"], "eventType": "ObjectEvent",
            "GT_maxValue_CEL": 8, "EXISTS_errorDeclaration": true});
        let query = parse(def.as_object().unwrap()).unwrap();
        assert_eq!(query.biz_steps, vec!["shipping", "receiving"]);
        assert!(query.error_declaration);
        assert_eq!(query.sensor_conditions.len(), 1);
        for bad in [
            json!({"EQ_bizStep": [{"a": 1}]}),
            json!({"EQ_bizStep": null}),
            json!({"nextPageToken": "x"}),
            json!({"no_such": "x"}),
        ] {
            assert!(parse(bad.as_object().unwrap()).is_err(), "{bad}");
        }
        assert!(check_name("my.query-1_A").is_ok());
        for bad in ["", "a/b", "é", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
