//! Small constructors for EPCIS parts the story repeats: a blank event,
//! quantity elements, ownership transfers, sensor reports, times.

use std::collections::BTreeMap;

use lotline_core::epcis::{
    Action, Destination, Event, EventType, Measurement, QuantityElement, Source,
};
use lotline_core::time;

use super::ids::Party;

/// The start of every story: 2026-03-02T08:00:00.000Z.
pub(super) const START_MS: u64 = 1_772_438_400_000;
/// Everyone in the story keeps the manufacturer's time zone.
pub(super) const TIME_ZONE_OFFSET: &str = "+08:00";

pub(super) const MINUTE_MS: u64 = 60_000;
pub(super) const HOUR_MS: u64 = 60 * MINUTE_MS;
pub(super) const DAY_MS: u64 = 24 * HOUR_MS;

/// An event of `event_type` with `action`, the given id and time, and
/// nothing else.
pub(super) fn blank(
    event_type: EventType,
    action: Option<Action>,
    event_id: String,
    now_ms: u64,
) -> Event {
    Event {
        event_type,
        event_id: Some(event_id),
        event_time: format_time(now_ms),
        event_time_zone_offset: TIME_ZONE_OFFSET.to_owned(),
        record_time: None,
        certification_info: None,
        error_declaration: None,
        action,
        epc_list: Vec::new(),
        quantity_list: Vec::new(),
        parent_id: None,
        child_epcs: Vec::new(),
        child_quantity_list: Vec::new(),
        input_epc_list: Vec::new(),
        input_quantity_list: Vec::new(),
        output_epc_list: Vec::new(),
        output_quantity_list: Vec::new(),
        transformation_id: None,
        biz_step: None,
        disposition: None,
        persistent_disposition: None,
        biz_transaction_list: Vec::new(),
        source_list: Vec::new(),
        destination_list: Vec::new(),
        read_point: None,
        biz_location: None,
        sensor_element_list: Vec::new(),
        ilmd: None,
        quality: None,
        extensions: BTreeMap::new(),
    }
}

/// `quantity` of lot `class` in `uom`.
pub(super) fn quantity(class: &str, quantity: f64, uom: &str) -> QuantityElement {
    QuantityElement {
        epc_class: class.to_owned(),
        quantity: Some(quantity),
        uom: Some(uom.to_owned()),
        extensions: BTreeMap::new(),
    }
}

/// A count of units (no uom: EPCIS counts instances then).
pub(super) fn count(class: &str, units: u64) -> QuantityElement {
    QuantityElement {
        epc_class: class.to_owned(),
        quantity: Some(units as f64),
        uom: None,
        extensions: BTreeMap::new(),
    }
}

/// The lot as a whole, without a quantity (what an inspection is about).
pub(super) fn whole(class: &str) -> QuantityElement {
    QuantityElement {
        epc_class: class.to_owned(),
        quantity: None,
        uom: None,
        extensions: BTreeMap::new(),
    }
}

/// Source and destination lists of a change of ownership and possession
/// from `from`'s site to `to`'s site.
pub(super) fn transfer(from: &Party, to: &Party) -> (Vec<Source>, Vec<Destination>) {
    let sources = vec![
        Source {
            kind: "owning_party".to_owned(),
            source: from.party.clone(),
        },
        Source {
            kind: "location".to_owned(),
            source: from.site.clone(),
        },
    ];
    let destinations = vec![
        Destination {
            kind: "owning_party".to_owned(),
            destination: to.party.clone(),
        },
        Destination {
            kind: "location".to_owned(),
            destination: to.site.clone(),
        },
    ];
    (sources, destinations)
}

/// Which end of a carried transfer an event records.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Leg {
    Despatch,
    Receipt,
}

/// [`transfer`] by a haulier: the carrier takes possession when the goods
/// leave (the despatch's destination list names it `possessing_party`
/// beside the next owner) and hands them over on arrival (the receipt's
/// source list names it).
pub(super) fn carried(
    from: &Party,
    to: &Party,
    carrier: &Party,
    leg: Leg,
) -> (Vec<Source>, Vec<Destination>) {
    let (mut sources, mut destinations) = transfer(from, to);
    match leg {
        Leg::Despatch => destinations.push(Destination {
            kind: "possessing_party".to_owned(),
            destination: carrier.party.clone(),
        }),
        Leg::Receipt => sources.push(Source {
            kind: "possessing_party".to_owned(),
            source: carrier.party.clone(),
        }),
    }
    (sources, destinations)
}

/// A measurement with spec limits.
pub(super) fn measurement(
    name: &str,
    value: f64,
    uom: Option<&str>,
    spec: (f64, f64),
) -> Measurement {
    Measurement {
        name: name.to_owned(),
        value,
        uom: uom.map(str::to_owned),
        spec_min: Some(spec.0),
        spec_max: Some(spec.1),
    }
}

pub(super) fn round1(x: f64) -> f64 {
    (x * 10.0).round() / 10.0
}

pub(super) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// Kilograms to the gram.
pub(super) fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// RFC 3339 UTC with milliseconds: `2026-03-02T08:00:00.000Z`.
pub(super) fn format_time(unix_ms: u64) -> String {
    time::format_rfc3339_ms(i64::try_from(unix_ms).unwrap_or(i64::MAX))
}

/// `YYYY-MM-DD` (UTC).
pub(super) fn format_date(unix_ms: u64) -> String {
    let mut date = format_time(unix_ms);
    date.truncate("YYYY-MM-DD".len());
    date
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_format_as_rfc3339_utc_with_milliseconds() {
        assert_eq!(format_time(START_MS), "2026-03-02T08:00:00.000Z");
        assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_time(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(format_date(START_MS + DAY_MS), "2026-03-03");
    }
}
