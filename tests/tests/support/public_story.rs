//! A supply chain for the public-edge tests, with everything the public
//! must and must not see: raw lots R1 and R2 from the supplier (public
//! tensile test), M1 made from both, F1 made from M1 with a *private* final
//! inspection, serials S1..S4 of F1 packed into cases and a pallet, shipped
//! to the distributor under a purchase order, a temperature excursion in
//! storage, a sale to a customer (owning party GLN ...7779) with an invoice, and
//! a recall order on R2.

use lotline_core::api::Wait;
use lotline_core::epcis::Event;
use lotline_core::gs1;
use lotline_sdk::Client;
use serde_json::{Value, json};

use super::{Consortium, commissioning, lot_uri};

/// Strings that exist on the chain and must never reach a public page.
pub const PRIVATE_MEASUREMENT: &str = "torque-secret";
pub const PURCHASE_ORDER: &str = "PO-PRICE-4711";
pub const INVOICE: &str = "INV-PRICE-8812";
pub const CUSTOMER_GLN: &str = "9506000007779";

pub fn gtin(item: u32) -> String {
    let body = format!("0950600{item:06}");
    let digit = gs1::check_digit(&body).expect("digits");
    format!("{body}{digit}")
}

pub fn gln_body(location: u32) -> String {
    let body = format!("950600{location:06}");
    let digit = gs1::check_digit(&body).expect("digits");
    format!("{body}{digit}")
}

pub fn gln(location: u32) -> String {
    format!("https://id.gs1.org/414/{}", gln_body(location))
}

pub fn sscc(serial: u32) -> String {
    let body = format!("09506000{serial:09}");
    let digit = gs1::check_digit(&body).expect("digits");
    format!("https://id.gs1.org/00/{body}{digit}")
}

pub fn class_lot(item: u32, lot: &str) -> String {
    format!("https://id.gs1.org/01/{}/10/{lot}", gtin(item))
}

pub fn serial(item: u32, serial: u32) -> String {
    format!("https://id.gs1.org/01/{}/21/{serial}", gtin(item))
}

pub struct Story {
    pub r1: String,
    pub r2: String,
    pub m1: String,
    pub f1: String,
    pub serials: Vec<String>,
    pub cases: Vec<String>,
    pub pallet: String,
    /// The recall order's attestation id.
    pub recall_order: lotline_core::AttestationId,
}

fn event(minute: u32, kind: &str, step: &str, extra: Value) -> Event {
    let mut map = json!({
        "type": kind,
        "eventTime": format!("2026-03-02T{:02}:{:02}:00.000Z", 8 + minute / 60, minute % 60),
        "eventTimeZoneOffset": "+08:00",
        "bizStep": step,
    });
    if let (Value::Object(map), Value::Object(extra)) = (&mut map, extra) {
        map.extend(extra);
    }
    serde_json::from_value(map).expect("event")
}

fn quantity(class: &str, amount: f64) -> Value {
    json!({"epcClass": class, "quantity": amount, "uom": "KGM"})
}

pub async fn load(consortium: &Consortium, client: &Client) -> Story {
    let r1 = lot_uri("R1");
    let r2 = lot_uri("R2");
    let m1 = class_lot(2, "M1");
    let f1 = class_lot(3, "F1");
    let serials: Vec<String> = (1..=4).map(|s| serial(3, s)).collect();
    let cases = vec![sscc(1), sscc(2)];
    let pallet = sscc(3);
    let mut events: Vec<(&str, Event)> = vec![
        ("supplier", commissioning("R1")),
        ("supplier", commissioning("R2")),
        (
            "manufacturer",
            event(
                20,
                "ObjectEvent",
                "receiving",
                json!({
                    "action": "OBSERVE",
                    "quantityList": [quantity(&r1, 500.0), quantity(&r2, 500.0)],
                    "bizLocation": {"id": gln(2)},
                    "bizTransactionList": [{"type": "po", "bizTransaction": format!("urn:epcglobal:cbv:bt:{}:{PURCHASE_ORDER}", gln_body(2))}],
                }),
            ),
        ),
        (
            "manufacturer",
            event(
                30,
                "TransformationEvent",
                "commissioning",
                json!({
                    "inputQuantityList": [quantity(&r1, 450.0), quantity(&r2, 450.0)],
                    "outputQuantityList": [quantity(&m1, 900.0)],
                    "bizLocation": {"id": gln(2)},
                }),
            ),
        ),
        (
            "manufacturer",
            event(
                50,
                "TransformationEvent",
                "commissioning",
                json!({
                    "inputQuantityList": [quantity(&m1, 880.0)],
                    "outputQuantityList": [quantity(&f1, 880.0)],
                    "bizLocation": {"id": gln(2)},
                }),
            ),
        ),
        (
            "manufacturer",
            event(
                60,
                "ObjectEvent",
                "commissioning",
                json!({
                    "action": "ADD",
                    "epcList": serials,
                    "bizLocation": {"id": gln(2)},
                    "ilmd": {"cbvmda:lotNumber": "F1"},
                    "@context": [{"cbvmda": "urn:epcglobal:cbv:mda:"}],
                }),
            ),
        ),
        (
            "manufacturer",
            event(
                61,
                "ObjectEvent",
                "inspecting",
                json!({
                    "action": "OBSERVE",
                    "quantityList": [quantity(&f1, 880.0)],
                    "bizLocation": {"id": gln(2)},
                    "lotline:quality": {
                        "kind": "inspection", "result": "pass", "method": "final functional test",
                        "private": true,
                        "measurements": [{"name": PRIVATE_MEASUREMENT, "value": 12.345, "uom": "NM", "specMin": 10.0, "specMax": 15.0}],
                    },
                }),
            ),
        ),
    ];
    for (case, children) in cases.iter().zip(serials.chunks(2)) {
        events.push((
            "manufacturer",
            event(70, "AggregationEvent", "packing", json!({"action": "ADD", "parentID": case, "childEPCs": children, "bizLocation": {"id": gln(2)}})),
        ));
    }
    events.push((
        "manufacturer",
        event(80, "AggregationEvent", "packing", json!({"action": "ADD", "parentID": pallet, "childEPCs": cases, "bizLocation": {"id": gln(2)}})),
    ));
    events.push((
        "manufacturer",
        event(90, "ObjectEvent", "shipping", json!({
            "action": "OBSERVE", "epcList": [pallet], "bizLocation": {"id": gln(2)},
            "destinationList": [{"type": "owning_party", "destination": gln(3)}, {"type": "location", "destination": gln(3)}],
        })),
    ));
    events.push((
        "distributor",
        event(
            120,
            "ObjectEvent",
            "receiving",
            json!({"action": "OBSERVE", "epcList": [pallet], "bizLocation": {"id": gln(3)}}),
        ),
    ));
    events.push((
        "distributor",
        event(
            150,
            "ObjectEvent",
            "storing",
            json!({
                "action": "OBSERVE", "epcList": [pallet], "bizLocation": {"id": gln(3)},
                "sensorElementList": [{"sensorReport": [
                    {"type": "gs1:Temperature", "value": 4.0, "uom": "CEL"},
                    {"type": "gs1:Temperature", "value": 9.5, "uom": "CEL"},
                ]}],
            }),
        ),
    ));
    events.push((
        "distributor",
        event(200, "ObjectEvent", "shipping", json!({
            "action": "OBSERVE", "epcList": [pallet], "bizLocation": {"id": gln(3)},
            "bizTransactionList": [{"type": "inv", "bizTransaction": format!("urn:epcglobal:cbv:bt:{}:{INVOICE}", gln_body(3))}],
            "destinationList": [{"type": "owning_party", "destination": format!("https://id.gs1.org/414/{CUSTOMER_GLN}")}],
        })),
    ));
    for (org, event) in events {
        let envelope = consortium.attest(org, event);
        client
            .submit(&envelope, Wait::Committed)
            .await
            .unwrap_or_else(|e| panic!("{org}'s event is committed: {e}"));
    }
    let order = event(
        240,
        "ObjectEvent",
        "holding",
        json!({
            "action": "OBSERVE",
            "quantityList": [quantity(&r2, 50.0)],
            "bizLocation": {"id": gln(2)},
            "disposition": "recalled",
            "lotline:quality": {"kind": "recallOrder", "recallId": "RC-2026-042", "reason": "supplier reported contamination", "class": "I", "scope": [r2]},
        }),
    );
    let order = consortium.attest("manufacturer", order);
    client
        .submit(&order, Wait::Committed)
        .await
        .expect("recall order committed");
    Story {
        r1,
        r2,
        m1,
        f1,
        serials,
        cases,
        pallet,
        recall_order: order.id(),
    }
}
