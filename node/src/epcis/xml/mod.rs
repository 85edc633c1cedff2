//! EPCIS XML: an EPCIS 2.0 or 1.x XML `EPCISDocument` (or a 2.0
//! `EPCISQueryDocument`) read ([`parse`], safe against entity and depth
//! attacks) and converted to the EPCIS 2.0 JSON-LD document ([`convert`])
//! that the JSON capture pipeline then checks, signs and admits like any
//! other (`super::bulk`); and query results written in XML ([`write`]).
//!
//! Converting rather than capturing XML on a path of its own keeps one
//! pipeline: the JSON Schema, the event model, admission and the CBV 2.0
//! event hash see the same document whichever syntax it came in, so an
//! event captured as XML and as JSON is one event (same hash, refused the
//! second time).
//!
//! An XML document is held whole while it is converted, so it has a cap of
//! its own ([`XML_DOCUMENT_BYTES_MAX`]), far below the JSON stream's.

mod convert;
pub mod parse;
pub mod write;

pub use convert::to_json;

/// Largest XML capture document: XML is converted in memory (tree and
/// JSON together cost a few times the bytes).
pub const XML_DOCUMENT_BYTES_MAX: usize = 16 * 1024 * 1024;

/// Why an XML document cannot be captured (nothing is applied).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum XmlError {
    #[error("the XML document is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error("the body is not well-formed XML: {0}")]
    Malformed(String),
    #[error(
        "the document declares a DTD (internal subset or external identifier); \
         entity declarations and external entities are not accepted"
    )]
    Dtd,
    #[error("entity reference {0:?} is not one of XML's five predefined entities")]
    Entity(String),
    #[error("elements nest deeper than {max}")]
    TooDeep { max: usize },
    #[error("the document has more than {max} elements")]
    TooManyElements { max: usize },
    #[error("expected an EPCIS 1.x or 2.0 EPCISDocument, got {0}")]
    NotEpcis(String),
    #[error("EPCIS schemaVersion {0:?} is not supported (1.0, 1.1, 1.2 and 2.0 are)")]
    Version(String),
    #[error("{path}: {reason}")]
    Shape { path: String, reason: String },
}

/// Reads an XML capture body into the EPCIS 2.0 JSON-LD document it says.
pub fn read_document(bytes: &[u8]) -> Result<serde_json::Value, XmlError> {
    if bytes.len() > XML_DOCUMENT_BYTES_MAX {
        return Err(XmlError::TooLarge {
            max: XML_DOCUMENT_BYTES_MAX,
        });
    }
    let document = parse::parse(bytes)?;
    to_json(&document)
}
