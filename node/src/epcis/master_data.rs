//! EPCIS master data: vocabulary elements captured from a document's
//! `epcisHeader` (JSON, or the XML header and `EPCISMasterDataDocument`
//! converted to it), stored as attestations of the org that owns the
//! identifier, and read back: the latest element the owner stated, and the
//! typed views the rest of the node uses ([`product`], [`location`],
//! [`storage_temperature`]).
//!
//! **Carrier.** Each vocabulary element becomes one `ObjectEvent` carrying
//! it as `lotline:masterData` ([`lotline_core::epcis::master_data`]) and
//! goes through the capture pipeline like any event of the document: the
//! JSON Schema, the event model, custodial signing, admission, all or
//! nothing under `rollback`.
//!
//! **Ownership.** An identifier's master data belongs to the org of its
//! first master data attestation on the chain (the first entry of the `v`
//! listing of [`master_data::event_id`]): first claim, the same on every
//! node because every node applies the same blocks in the same order.
//! Genesis names no GS1 company prefixes, so the chain cannot know who was
//! assigned a GTIN or GLN; first claim is the rule the chain can judge.
//! Capture refuses master data for an identifier another org owns
//! ([`OwnerGuard`], 403 `not-owner`); reads honour only the owner's
//! elements, so a claim admitted concurrently elsewhere changes nothing.

use lotline_core::attestation::AttestationId;
use lotline_core::epcis::master_data::{self, Attribute, Element, VTYPE_EPC_CLASS};
use lotline_core::gs1::Identifier;
use lotline_core::statement::Statement;
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::bulk::RawEvent;
use crate::admission::{AdmissionError, StatementGuard};
use crate::parsed::ParsedStatement;
use crate::store::events::Listing;
use crate::store::index::Position;
use crate::store::{StoreError, StoreReader};

/// Master data attestations of one identifier examined by a read.
pub const HISTORY_EXAMINED_MAX: usize = 10_000;

/// The carrier events of a document header's master data, in document
/// order, each named by its path in the document. A header without master
/// data gives none; malformed elements still give a carrier, which the
/// event checks then refuse with the element's path.
pub fn carriers(header: &Value, now_ms: i64) -> Vec<RawEvent> {
    let Some(list) = header
        .pointer("/epcisMasterData/vocabularyList")
        .and_then(Value::as_array)
    else {
        return Vec::new();
    };
    let time = lotline_core::time::format_rfc3339_ms(now_ms);
    let mut out = Vec::new();
    for (v, vocabulary) in list.iter().enumerate() {
        let vtype = vocabulary.get("type").cloned().unwrap_or(Value::Null);
        let Some(elements) = vocabulary
            .get("vocabularyElementList")
            .and_then(Value::as_array)
        else {
            continue;
        };
        for (e, element) in elements.iter().enumerate() {
            let path = format!(
                "epcisHeader.epcisMasterData.vocabularyList[{v}].vocabularyElementList[{e}]"
            );
            out.push(RawEvent {
                path,
                raw: carrier(&vtype, element, &time),
            });
        }
    }
    out
}

/// One element's carrier event (see the module doc).
fn carrier(vtype: &Value, element: &Value, time: &str) -> Value {
    let mut carried = Map::new();
    carried.insert("vocabulary".into(), vtype.clone());
    if let Value::Object(fields) = element {
        for (key, value) in fields {
            carried.insert(key.clone(), value.clone());
        }
    }
    let id = element
        .get("id")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let canonical = lotline_core::lineage::canonical(id);
    let mut event = json!({
        "type": "ObjectEvent",
        "eventID": master_data::event_id(&canonical),
        "eventTime": time,
        "eventTimeZoneOffset": "+00:00",
        "action": "OBSERVE",
        master_data::KEY: Value::Object(carried),
    });
    let class = matches!(
        Identifier::parse(id),
        Ok(Identifier::Product { .. } | Identifier::Lot { .. })
    );
    if class {
        event["quantityList"] = json!([{ "epcClass": id }]);
    } else {
        event["epcList"] = json!([id]);
    }
    event
}

/// The owner's current element about one identifier.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Entry {
    /// Canonical identifier.
    pub id: String,
    /// The org that owns it (first claim).
    pub owner: String,
    /// The attestation that states this element (the owner's latest).
    pub attestation: AttestationId,
    pub height: u64,
    pub element: Element,
}

/// The org that owns `canonical`'s master data, if anyone claimed it.
pub fn owner(reader: &StoreReader, canonical: &str) -> Result<Option<String>, StoreError> {
    let listing = Listing::EventId(master_data::event_id(canonical));
    let Some(at) = reader.event_first(&listing)? else {
        return Ok(None);
    };
    Ok(statement_at(reader, at)?.map(|s| s.org))
}

/// The owner's latest element about `identifier` (any spelling: URN,
/// Digital Link), or `None` when nobody stated one.
pub fn lookup(reader: &StoreReader, identifier: &str) -> Result<Option<Entry>, StoreError> {
    let canonical = lotline_core::lineage::canonical(identifier);
    let listing = Listing::EventId(master_data::event_id(&canonical));
    let mut owner: Option<String> = None;
    let mut latest: Option<(Position, AttestationId, Element)> = None;
    for entry in reader
        .event_cursor(&listing, None)
        .take(HISTORY_EXAMINED_MAX)
    {
        let at = entry?;
        let Some((id, stored)) = reader.attestation_at(at)? else {
            continue;
        };
        let Ok(statement) = Statement::from_payload(&stored.envelope.payload) else {
            continue;
        };
        let org = owner.get_or_insert_with(|| statement.org.clone());
        if *org != statement.org {
            continue;
        }
        if let Some(Ok(element)) = master_data::element_of(&statement.event) {
            latest = Some((at, id, element));
        }
    }
    Ok(match (owner, latest) {
        (Some(owner), Some((at, attestation, element))) => Some(Entry {
            id: canonical,
            owner,
            attestation,
            height: at.height,
            element,
        }),
        _ => None,
    })
}

/// An entry as `GET /v1/master-data/{identifier}` answers it: the stored
/// element and its typed view (`product` or `place`).
pub fn entry_json(entry: &Entry) -> Value {
    let mut value = serde_json::to_value(entry).unwrap_or(Value::Null);
    if let Value::Object(object) = &mut value {
        let view = if entry.element.vocabulary == VTYPE_EPC_CLASS {
            ("product", serde_json::to_value(Product::of(&entry.element)))
        } else {
            ("place", serde_json::to_value(Place::of(&entry.element)))
        };
        if let Ok(typed) = view.1 {
            object.insert(view.0.into(), typed);
        }
    }
    value
}

fn statement_at(reader: &StoreReader, at: Position) -> Result<Option<Statement>, StoreError> {
    Ok(reader
        .attestation_at(at)?
        .and_then(|(_, stored)| Statement::from_payload(&stored.envelope.payload).ok()))
}

/// A storage temperature range in degrees Celsius (either bound may be open).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct TemperatureRange {
    pub min_celsius: Option<f64>,
    pub max_celsius: Option<f64>,
}

/// What a GTIN's master data says about the product.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Product {
    pub name: Option<String>,
    pub brand: Option<String>,
    pub image: Option<String>,
    /// As stated, e.g. `{"value": 500, "unitCode": "GRM"}` or `"500 g"`.
    pub net_content: Option<Value>,
    pub storage_temperature: Option<TemperatureRange>,
    /// Spec limits by characteristic, as stated
    /// (`{"thickness": {"lower": 1.9, "upper": 2.1, "uom": "MMT"}}`).
    pub spec_limits: Option<Value>,
}

/// What a GLN's (or party's) master data says about the place.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Place {
    pub name: Option<String>,
    /// Street, city, postal code and country in one line, as stated.
    pub address: Option<String>,
}

/// The first attribute whose local name is one of `names`.
fn attribute<'a>(element: &'a Element, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|name| {
        element
            .attributes
            .iter()
            .find(|a: &&Attribute| a.local_name() == *name)
            .map(|a| &a.attribute)
    })
}

fn text(element: &Element, names: &[&str]) -> Option<String> {
    match attribute(element, names)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        Value::Object(o) => o
            .get("@value")
            .or_else(|| o.get("value"))
            .and_then(Value::as_str)
            .map(str::to_owned),
        _ => None,
    }
}

fn number(element: &Element, names: &[&str]) -> Option<f64> {
    match attribute(element, names)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        Value::Object(o) => o.get("value").and_then(|v| match v {
            Value::Number(n) => n.as_f64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }),
        _ => None,
    }
}

impl Product {
    /// Reads a product from an element's attributes by local name (CBV
    /// master data attributes, GS1 Web Vocabulary terms, or Lotline's).
    pub fn of(element: &Element) -> Product {
        let min = number(
            element,
            &[
                "storageTemperatureMin",
                "minimumTemperature",
                "minimumStorageTemperature",
            ],
        );
        let max = number(
            element,
            &[
                "storageTemperatureMax",
                "maximumTemperature",
                "maximumStorageTemperature",
            ],
        );
        Product {
            name: text(
                element,
                &[
                    "productName",
                    "regulatedProductName",
                    "name",
                    "descriptionShort",
                    "tradeItemDescription",
                ],
            ),
            brand: text(element, &["brandName", "brand"]),
            image: text(element, &["image", "productImage", "referencedFileURL"]),
            net_content: attribute(element, &["netContent"]).cloned(),
            storage_temperature: (min.is_some() || max.is_some()).then_some(TemperatureRange {
                min_celsius: min,
                max_celsius: max,
            }),
            spec_limits: attribute(element, &["specLimits"]).cloned(),
        }
    }
}

impl Place {
    pub fn of(element: &Element) -> Place {
        let address = text(element, &["address"]).or_else(|| {
            let parts: Vec<String> = [
                "streetAddressOne",
                "streetAddressTwo",
                "city",
                "postalCode",
                "state",
                "countryCode",
            ]
            .iter()
            .filter_map(|name| text(element, &[name]))
            .collect();
            (!parts.is_empty()).then(|| parts.join(", "))
        });
        Place {
            name: text(element, &["name", "partyName", "locationName"]),
            address,
        }
    }
}

/// A product's master data (`gtin`: a GTIN, product Digital Link or any
/// identifier of one of its lots or items, which are reduced to the GTIN).
pub fn product(reader: &StoreReader, gtin: &str) -> Result<Option<Product>, StoreError> {
    let Some(class) = product_class(gtin) else {
        return Ok(None);
    };
    Ok(lookup(reader, &class)?
        .filter(|entry| entry.element.vocabulary == VTYPE_EPC_CLASS)
        .map(|entry| Product::of(&entry.element)))
}

/// A product's storage temperature range, from its owner's master data
/// (the per-product cold-chain limit; `None` when none was stated).
pub fn storage_temperature(
    reader: &StoreReader,
    gtin: &str,
) -> Result<Option<TemperatureRange>, StoreError> {
    Ok(product(reader, gtin)?.and_then(|p| p.storage_temperature))
}

/// A location's or party's master data.
pub fn location(reader: &StoreReader, gln: &str) -> Result<Option<Place>, StoreError> {
    Ok(lookup(reader, gln)?
        .filter(|entry| entry.element.vocabulary != VTYPE_EPC_CLASS)
        .map(|entry| Place::of(&entry.element)))
}

/// The display name of any identifier with master data: a product's name,
/// a place's name.
pub fn name(reader: &StoreReader, identifier: &str) -> Result<Option<String>, StoreError> {
    let key = product_class(identifier).unwrap_or_else(|| identifier.to_owned());
    Ok(
        lookup(reader, &key)?.and_then(|entry| match entry.element.vocabulary.as_str() {
            VTYPE_EPC_CLASS => Product::of(&entry.element).name,
            _ => Place::of(&entry.element).name,
        }),
    )
}

/// The product class (`https://id.gs1.org/01/<gtin>`) of a GTIN-keyed
/// identifier, `None` for anything else.
pub fn product_class(identifier: &str) -> Option<String> {
    let gtin = match Identifier::parse(identifier).ok()? {
        Identifier::Product { gtin }
        | Identifier::Lot { gtin, .. }
        | Identifier::Item { gtin, .. } => gtin,
        _ => return None,
    };
    Some(Identifier::Product { gtin }.canonical())
}

/// Refuses master data about an identifier another org owns.
#[derive(Clone, Debug)]
pub struct OwnerGuard {
    store: StoreReader,
}

impl OwnerGuard {
    pub fn new(store: StoreReader) -> OwnerGuard {
        OwnerGuard { store }
    }
}

impl StatementGuard for OwnerGuard {
    fn check(&self, statement: &ParsedStatement) -> Vec<AdmissionError> {
        let Some(Ok(element)) = master_data::element_of(&statement.event) else {
            return Vec::new();
        };
        let canonical = lotline_core::lineage::canonical(&element.id);
        match owner(&self.store, &canonical) {
            Ok(Some(owner)) if owner != statement.org => vec![AdmissionError::NotOwner {
                identifier: canonical,
                owner,
            }],
            Ok(_) => Vec::new(),
            Err(error) => {
                // Reads honour only the owner's elements, so letting this
                // one through cannot change what anyone reads.
                tracing::warn!(%error, "master data owner check skipped: store read failed");
                Vec::new()
            }
        }
    }
}
