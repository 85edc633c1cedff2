//! GS1 identifiers. (Being written; see the issue.)

/// A GS1 key or other identifier, canonicalised.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Identifier(String);

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Gs1Error(String);

impl Identifier {
    pub fn parse(s: &str) -> Result<Identifier, Gs1Error> {
        Ok(Identifier(s.to_owned()))
    }

    /// The canonical string form used as index key and in APIs.
    pub fn canonical(&self) -> String {
        self.0.clone()
    }
}
