//! `lotline:masterData`: one EPCIS master data vocabulary element (a
//! product, a location, a party) as a namespaced extension of an event, so
//! that master data is signed, ordered and proved like every other
//! attestation of the org that states it.
//!
//! EPCIS carries master data outside events (the document header's
//! `epcisMasterData`, the XML `EPCISMasterDataDocument`); Lotline's statement
//! carries one event. Rather than a second statement kind (a new write path
//! through admission, blocks and the store), a captured vocabulary element
//! becomes an `ObjectEvent` (`OBSERVE`, no bizStep) that names the element's
//! identifier (a GTIN or LGTIN in `quantityList`, anything else in
//! `epcList`) and carries the element verbatim under this key. Its eventID is
//! [`event_id`] of the identifier, so the `v` listing of the store lists
//! every master data attestation of one identifier in chain order.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::Event;

/// The event key that carries a vocabulary element.
pub const KEY: &str = "lotline:masterData";

/// The eventID prefix of master data attestations; the canonical
/// identifier follows, percent-encoded as a path segment.
pub const EVENT_ID_PREFIX: &str = "https://lotline.dev/epcis/masterData/";

/// EPCIS vocabulary types Lotline stores.
pub const VTYPE_EPC_CLASS: &str = "urn:epcglobal:epcis:vtype:EPCClass";
pub const VTYPE_BUSINESS_LOCATION: &str = "urn:epcglobal:epcis:vtype:BusinessLocation";
pub const VTYPE_READ_POINT: &str = "urn:epcglobal:epcis:vtype:ReadPoint";
/// Parties (PGLNs, GLNs) as sources and destinations.
pub const VTYPE_SOURCE_DEST: &str = "urn:epcglobal:epcis:vtype:SourceDest";
/// Every vocabulary type [`Element::vocabulary`] may name.
pub const VTYPES: [&str; 4] = [
    VTYPE_EPC_CLASS,
    VTYPE_BUSINESS_LOCATION,
    VTYPE_READ_POINT,
    VTYPE_SOURCE_DEST,
];

/// One vocabulary element, as the EPCIS 2.0 JSON binding spells it, plus
/// the vocabulary type it belongs to.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Element {
    /// One of [`VTYPES`].
    pub vocabulary: String,
    /// The identifier described, as sent.
    pub id: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attributes: Vec<Attribute>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub children: Vec<String>,
}

/// `{"id": <attribute URI>, "attribute": <value>}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attribute {
    pub id: String,
    pub attribute: Value,
}

impl Attribute {
    /// The attribute's name without its namespace: the part after the last
    /// `#`, `/` or `:` (`urn:epcglobal:cbv:mda#name`, `https://gs1.org/voc/
    /// productName` and `cbvmda:name` give `name`, `productName`, `name`).
    pub fn local_name(&self) -> &str {
        self.id
            .rsplit(['#', '/', ':'])
            .next()
            .unwrap_or(self.id.as_str())
    }
}

/// The element an event carries, if it is a master data attestation: `None`
/// when the key is absent, `Some(Err)` when it does not read.
pub fn element_of(event: &Event) -> Option<Result<Element, String>> {
    let value = event.extensions.get(KEY)?;
    Some(Element::deserialize(value).map_err(|e| e.to_string()))
}

/// Whether `event` carries master data (well-formed or not).
pub fn is_master_data(event: &Event) -> bool {
    event.extensions.contains_key(KEY)
}

/// The eventID of master data about `canonical` (a canonical identifier).
pub fn event_id(canonical: &str) -> String {
    let mut out = String::with_capacity(EVENT_ID_PREFIX.len() + canonical.len() * 2);
    out.push_str(EVENT_ID_PREFIX);
    for byte in canonical.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_drop_every_namespace_form() {
        for (id, name) in [
            ("urn:epcglobal:cbv:mda#name", "name"),
            ("https://gs1.org/voc/productName", "productName"),
            ("cbvmda:streetAddressOne", "streetAddressOne"),
            ("urn:epcglobal:cbv:mda:sst", "sst"),
        ] {
            let a = Attribute {
                id: id.into(),
                attribute: Value::Null,
            };
            assert_eq!(a.local_name(), name, "{id}");
        }
    }

    #[test]
    fn event_ids_are_one_uri_segment_per_identifier() {
        let id = event_id("https://id.gs1.org/01/09521234543213");
        assert_eq!(
            id,
            "https://lotline.dev/epcis/masterData/https%3A%2F%2Fid.gs1.org%2F01%2F09521234543213"
        );
        assert_ne!(id, event_id("https://id.gs1.org/01/09521234543214"));
        assert!(crate::gs1::is_absolute_uri(&id));
    }
}
