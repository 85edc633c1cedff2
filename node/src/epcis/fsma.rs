//! The FDA FSMA 204 electronic sortable spreadsheet (21 CFR 1.1455(c)(3)(ii)):
//! for one or more traceability lot codes, or every lot of a product, and an
//! event-time range, each critical tracking event (CTE) with its key data
//! elements (KDEs), one row per event and lot, as CSV or XLSX.
//!
//! **Columns** ([`COLUMNS`]) follow the KDEs the rule names for each CTE
//! (subpart S, 1.1325-1.1350), in one sheet, a column left empty where a
//! CTE has no such KDE, the layout of the FDA's sortable spreadsheet
//! template; two Lotline columns at the end (the attestation and its block)
//! let FDA verify any row against its receipt.
//!
//! **CTEs from EPCIS** ([`cte`]): bizStep `shipping`/`departing` is
//! Shipping; `receiving`/`arriving`/`accepting` Receiving; a
//! TransformationEvent (or `creating_class_instance`) Transformation;
//! `commissioning` and `packing` Initial Packing; the custom words
//! `harvesting` and `cooling` (as URI last segments too) Harvesting and
//! Cooling. Other events (inspections, storage) are not CTEs and are left
//! out. A row's TLC is a lot (LGTIN) the event lists in a quantity list
//! (outputs for a transformation; its inputs' TLCs go in their column).
//! Names and addresses come from master data
//! ([`super::master_data`]), codes when none is stated.
//!
//! **Cost.** Events are found through the identifier index `i`: one listing
//! per lot, or, for a product, every listing whose name starts with the
//! product's Digital Link (its lots and serials; the index is sorted by
//! name), at most [`EXAMINED_MAX`] entries and [`ROWS_MAX`] rows, so an
//! export is a few index scans and one record read per event.

use std::collections::{BTreeMap, BTreeSet};

use lotline_core::epcis::{Event, EventType, QuantityElement};
use lotline_core::gs1::Identifier;
use lotline_core::statement::Statement;
use lotline_core::time;

use super::master_data;
use crate::store::events::Listing;
use crate::store::index::Position;
use crate::store::{StoreError, StoreReader};

/// Index entries one export examines.
pub const EXAMINED_MAX: usize = 200_000;
/// Rows in one spreadsheet (FDA asks per outbreak, for a few lots).
pub const ROWS_MAX: usize = 50_000;
/// Lots named in one request.
pub const LOTS_MAX: usize = 100;

/// The spreadsheet's header row.
pub const COLUMNS: [&str; 20] = [
    "Critical Tracking Event (CTE)",
    "Traceability Lot Code (TLC)",
    "Product Description",
    "Product Identifier (GTIN)",
    "Quantity",
    "Unit of Measure",
    "Date of CTE",
    "Time of CTE (UTC)",
    "Location Description of CTE",
    "Location Identifier of CTE (GLN)",
    "Traceability Lot Code Source Description",
    "Traceability Lot Code Source Reference",
    "Immediate Previous Source (Ship-From) Location",
    "Ship-To Location",
    "Reference Document Type",
    "Reference Document Number",
    "Input Traceability Lot Codes",
    "Reporting Organisation",
    "Lotline Attestation",
    "Lotline Block Height",
];

/// What to export.
#[derive(Clone, Debug, PartialEq)]
pub struct Request {
    pub subject: Subject,
    /// Event time bounds, unix ms (`from` inclusive, `until` exclusive).
    pub from_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Subject {
    /// Canonical lot identifiers.
    Lots(Vec<String>),
    /// A product's canonical Digital Link (`https://id.gs1.org/01/<gtin>`).
    Product(String),
}

/// Why a request cannot be answered.
#[derive(Debug, thiserror::Error)]
pub enum FsmaError {
    #[error("{field}: {reason}")]
    BadRequest { field: &'static str, reason: String },
    #[error(
        "the export has more than {ROWS_MAX} rows or examines more than {EXAMINED_MAX} index \
         entries; narrow the date range or name lots"
    )]
    TooLarge,
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Request {
    /// From the query parameters `tlc` (lot identifiers, `|`-separated) or
    /// `gtin` (a product), and `from`/`until` (RFC 3339).
    pub fn parse(
        tlc: Option<&str>,
        gtin: Option<&str>,
        from: Option<&str>,
        until: Option<&str>,
    ) -> Result<Request, FsmaError> {
        let bad = |field, reason: String| FsmaError::BadRequest { field, reason };
        let subject = match (tlc, gtin) {
            (Some(_), Some(_)) | (None, None) => {
                return Err(bad(
                    "tlc",
                    "give either tlc (lot codes) or gtin (a product)".into(),
                ));
            }
            (Some(tlc), None) => {
                let mut lots = Vec::new();
                for value in tlc.split('|') {
                    match Identifier::parse(value) {
                        Ok(lot @ Identifier::Lot { .. }) => lots.push(lot.canonical()),
                        _ => {
                            return Err(bad(
                                "tlc",
                                format!(
                                    "{value:?} is not a lot identifier (LGTIN URN or Digital Link with AI 10)"
                                ),
                            ));
                        }
                    }
                }
                if lots.len() > LOTS_MAX {
                    return Err(bad("tlc", format!("at most {LOTS_MAX} lots")));
                }
                Subject::Lots(lots)
            }
            (None, Some(gtin)) => Subject::Product(
                master_data::product_class(&as_identifier(gtin)).ok_or_else(|| {
                    bad(
                        "gtin",
                        format!("{gtin:?} is not a GTIN or product identifier"),
                    )
                })?,
            ),
        };
        let instant = |field, value: Option<&str>| {
            value
                .map(|v| {
                    time::parse_rfc3339_ms(v)
                        .map_err(|e| bad(field, format!("{v:?} is not an RFC 3339 time: {e}")))
                })
                .transpose()
        };
        Ok(Request {
            subject,
            from_ms: instant("from", from)?,
            until_ms: instant("until", until)?,
        })
    }
}

/// A bare GTIN (8, 12, 13 or 14 digits) as its Digital Link; anything
/// else as given.
fn as_identifier(gtin: &str) -> String {
    let digits = gtin.bytes().all(|b| b.is_ascii_digit());
    if digits && matches!(gtin.len(), 8 | 12 | 13 | 14) {
        format!("https://id.gs1.org/01/{gtin:0>14}")
    } else {
        gtin.to_owned()
    }
}

/// One spreadsheet row: the cells in [`COLUMNS`] order.
pub type Row = Vec<String>;

/// The rows of an export, sorted by event time then TLC. `visible` is the
/// caller's read rule: records it may not read are left out.
pub fn rows(
    reader: &StoreReader,
    request: &Request,
    visible: &dyn Fn(&Statement) -> bool,
) -> Result<Vec<Row>, FsmaError> {
    let positions = positions(reader, &request.subject)?;
    let wanted = |lot: &str| match &request.subject {
        Subject::Lots(lots) => lots.iter().any(|l| l == lot),
        Subject::Product(product) => lot.starts_with(&format!("{product}/")),
    };
    let mut names = Names::new(reader);
    let mut out: Vec<(i64, Row)> = Vec::new();
    for at in positions {
        let Some((id, stored)) = reader.attestation_at(at)? else {
            continue;
        };
        let Ok(statement) = Statement::from_payload(&stored.envelope.payload) else {
            continue;
        };
        if !visible(&statement) {
            continue;
        }
        let event = &statement.event;
        let Some(cte) = cte(event) else { continue };
        let Ok(event_ms) = time::parse_rfc3339_ms(&event.event_time) else {
            continue;
        };
        if request.from_ms.is_some_and(|from| event_ms < from)
            || request.until_ms.is_some_and(|until| event_ms >= until)
        {
            continue;
        }
        let inputs: Vec<String> = lots_of(&event.input_quantity_list)
            .map(|(lot, _)| lot)
            .collect();
        let listed = if event.event_type == EventType::TransformationEvent {
            &event.output_quantity_list
        } else if !event.quantity_list.is_empty() {
            &event.quantity_list
        } else {
            &event.child_quantity_list
        };
        for (lot, element) in lots_of(listed) {
            if !wanted(&lot) {
                continue;
            }
            if out.len() >= ROWS_MAX {
                return Err(FsmaError::TooLarge);
            }
            let row = row(
                &mut names,
                cte,
                &lot,
                element,
                event,
                &inputs,
                &statement.org,
                &id.to_string(),
                at,
            )?;
            out.push((event_ms, row));
        }
    }
    out.sort_by(|a, b| (a.0, &a.1[1]).cmp(&(b.0, &b.1[1])));
    Ok(out.into_iter().map(|(_, row)| row).collect())
}

/// The chain positions to read, in chain order, deduplicated.
fn positions(reader: &StoreReader, subject: &Subject) -> Result<Vec<Position>, FsmaError> {
    let mut positions = BTreeSet::new();
    match subject {
        Subject::Lots(lots) => {
            for lot in lots {
                for entry in reader.event_cursor(&Listing::Identifier(lot.clone()), None) {
                    let at = entry?;
                    positions.insert(at);
                    if positions.len() > EXAMINED_MAX {
                        return Err(FsmaError::TooLarge);
                    }
                }
            }
        }
        Subject::Product(product) => {
            let found = reader.identifier_prefix_positions(&format!("{product}/"), EXAMINED_MAX)?;
            let Some(found) = found else {
                return Err(FsmaError::TooLarge);
            };
            positions.extend(found);
        }
    }
    Ok(positions.into_iter().collect())
}

/// The CTE an event records, if it records one (see the module doc).
pub fn cte(event: &Event) -> Option<&'static str> {
    if event.error_declaration.is_some() {
        return None;
    }
    if event.event_type == EventType::TransformationEvent {
        return Some("Transformation");
    }
    let step = event.biz_step_short()?;
    let word = step.rsplit(['/', '#', ':', '-']).next().unwrap_or(&step);
    Some(match word {
        "shipping" | "departing" => "Shipping",
        "receiving" | "arriving" | "accepting" => "Receiving",
        "creating_class_instance" => "Transformation",
        "commissioning" | "packing" => "Initial Packing",
        "harvesting" => "Harvesting",
        "cooling" => "Cooling",
        _ => return None,
    })
}

/// The lots (canonical LGTINs) of a quantity list, with their elements.
fn lots_of(list: &[QuantityElement]) -> impl Iterator<Item = (String, &QuantityElement)> {
    list.iter()
        .filter_map(|element| match Identifier::parse(&element.epc_class) {
            Ok(lot @ Identifier::Lot { .. }) => Some((lot.canonical(), element)),
            _ => None,
        })
}

/// Master data names, each identifier read once per export.
struct Names<'r> {
    reader: &'r StoreReader,
    places: BTreeMap<String, String>,
    products: BTreeMap<String, String>,
    sources: BTreeMap<String, (String, String)>,
}

impl<'r> Names<'r> {
    fn new(reader: &'r StoreReader) -> Names<'r> {
        Names {
            reader,
            places: BTreeMap::new(),
            products: BTreeMap::new(),
            sources: BTreeMap::new(),
        }
    }

    /// "Name, address (GLN)" or the identifier.
    fn place(&mut self, id: &str) -> Result<String, StoreError> {
        if let Some(known) = self.places.get(id) {
            return Ok(known.clone());
        }
        let described = match master_data::location(self.reader, id)? {
            Some(place) => {
                let parts: Vec<String> = place.name.into_iter().chain(place.address).collect();
                if parts.is_empty() {
                    id.to_owned()
                } else {
                    format!("{} ({})", parts.join(", "), gln_or(id))
                }
            }
            None => gln_or(id),
        };
        self.places.insert(id.to_owned(), described.clone());
        Ok(described)
    }

    fn product(&mut self, class: &str) -> Result<String, StoreError> {
        if let Some(known) = self.products.get(class) {
            return Ok(known.clone());
        }
        let described = master_data::product(self.reader, class)?
            .map(|p| {
                let mut parts: Vec<String> = p.name.into_iter().chain(p.brand).collect();
                if let Some(content) = p.net_content {
                    parts.push(match content {
                        serde_json::Value::Object(o) => format!(
                            "{} {}",
                            o.get("value").map(|v| v.to_string()).unwrap_or_default(),
                            o.get("unitCode")
                                .and_then(|v| v.as_str())
                                .unwrap_or_default()
                        ),
                        other => other
                            .as_str()
                            .map(str::to_owned)
                            .unwrap_or_else(|| other.to_string()),
                    });
                }
                parts.join(", ")
            })
            .unwrap_or_default();
        self.products.insert(class.to_owned(), described.clone());
        Ok(described)
    }

    /// Where a lot's TLC was assigned: the business location (or read
    /// point) of the first event on the chain that names the lot.
    fn source(&mut self, lot: &str) -> Result<(String, String), StoreError> {
        if let Some(known) = self.sources.get(lot) {
            return Ok(known.clone());
        }
        let mut found = (String::new(), String::new());
        if let Some(at) = self
            .reader
            .event_first(&Listing::Identifier(lot.to_owned()))?
            && let Some((_, stored)) = self.reader.attestation_at(at)?
            && let Ok(statement) = Statement::from_payload(&stored.envelope.payload)
            && let Some(location) = where_of(&statement.event)
        {
            found = (self.place(&location)?, gln_or(&location));
        }
        self.sources.insert(lot.to_owned(), found.clone());
        Ok(found)
    }
}

/// The GLN of a location identifier, or the identifier as given.
fn gln_or(id: &str) -> String {
    match Identifier::parse(id) {
        Ok(Identifier::Location { gln, extension }) => match extension {
            Some(ext) => format!("{} (254: {ext})", gln.as_str()),
            None => gln.as_str().to_owned(),
        },
        _ => id.to_owned(),
    }
}

fn where_of(event: &Event) -> Option<String> {
    event
        .biz_location
        .as_ref()
        .or(event.read_point.as_ref())
        .map(|l| l.id.clone())
}

#[allow(clippy::too_many_arguments)]
fn row(
    names: &mut Names<'_>,
    cte: &str,
    lot: &str,
    element: &QuantityElement,
    event: &Event,
    inputs: &[String],
    org: &str,
    attestation: &str,
    at: Position,
) -> Result<Row, StoreError> {
    let (tlc, gtin) = match Identifier::parse(lot) {
        Ok(Identifier::Lot { gtin, lot }) => (lot, gtin.as_str().to_owned()),
        _ => (lot.to_owned(), String::new()),
    };
    let class = master_data::product_class(lot).unwrap_or_default();
    let utc = time::parse_rfc3339_ms(&event.event_time)
        .map(time::format_rfc3339_ms)
        .unwrap_or_else(|_| event.event_time.clone());
    let (date, clock) = (
        utc.get(..10).unwrap_or_default().to_owned(),
        utc.get(11..19).unwrap_or_default().to_owned(),
    );
    let location = where_of(event);
    let (location_description, location_gln) = match &location {
        Some(id) => (names.place(id)?, gln_or(id)),
        None => (String::new(), String::new()),
    };
    let (source_description, source_reference) = names.source(lot)?;
    let previous = event
        .source_list
        .iter()
        .map(|s| names.place(&s.source))
        .collect::<Result<Vec<_>, _>>()?
        .join("; ");
    let ship_to = event
        .destination_list
        .iter()
        .map(|d| names.place(&d.destination))
        .collect::<Result<Vec<_>, _>>()?
        .join("; ");
    let (document_type, document_number) = event
        .biz_transaction_list
        .first()
        .map(|t| {
            let kind = t.kind.as_deref().unwrap_or_default();
            let short = kind.rsplit(['/', ':', '-']).next().unwrap_or(kind);
            (short.to_owned(), t.biz_transaction.clone())
        })
        .unwrap_or_default();
    let input_lots = inputs
        .iter()
        .map(|l| match Identifier::parse(l) {
            Ok(Identifier::Lot { gtin, lot }) => format!("{lot} (GTIN {})", gtin.as_str()),
            _ => l.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ");
    Ok(vec![
        cte.to_owned(),
        tlc,
        names.product(&class)?,
        gtin,
        element.quantity.map(|q| q.to_string()).unwrap_or_default(),
        element.uom.clone().unwrap_or_default(),
        date,
        clock,
        location_description,
        location_gln,
        source_description,
        source_reference,
        previous,
        ship_to,
        document_type,
        document_number,
        input_lots,
        org.to_owned(),
        attestation.to_owned(),
        at.height.to_string(),
    ])
}

/// The spreadsheet as CSV (RFC 4180, CRLF, formulas defused).
pub fn csv(rows: &[Row]) -> String {
    let mut out = String::new();
    let line = |cells: &mut dyn Iterator<Item = &str>, out: &mut String| {
        let cells: Vec<String> = cells.map(crate::public::report::csv_cell).collect();
        out.push_str(&cells.join(","));
        out.push_str("\r\n");
    };
    line(&mut COLUMNS.iter().copied(), &mut out);
    for row in rows {
        line(&mut row.iter().map(String::as_str), &mut out);
    }
    out
}

/// The spreadsheet as XLSX: one sheet, a bold frozen header with an
/// autofilter (sortable and filterable as it opens), quantities and block
/// heights as numbers, everything else as text (lot codes keep their
/// leading zeros).
#[cfg(feature = "xlsx")]
pub fn xlsx(rows: &[Row]) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{Format, Workbook};
    const NUMERIC: [usize; 2] = [4, 19];
    let mut workbook = Workbook::new();
    let sheet = workbook.add_worksheet();
    sheet.set_name("FSMA 204")?;
    let bold = Format::new().set_bold();
    for (c, title) in COLUMNS.iter().enumerate() {
        let c = u16::try_from(c).unwrap_or(u16::MAX);
        sheet.write_string_with_format(0, c, *title, &bold)?;
        sheet.set_column_width(c, 22)?;
    }
    for (r, row) in rows.iter().enumerate() {
        let r = u32::try_from(r + 1).unwrap_or(u32::MAX);
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c).unwrap_or(u16::MAX);
            match cell.parse::<f64>() {
                Ok(n) if NUMERIC.contains(&usize::from(c)) && n.is_finite() => {
                    sheet.write_number(r, c, n)?;
                }
                _ if !cell.is_empty() => {
                    sheet.write_string(r, c, cell)?;
                }
                _ => {}
            }
        }
    }
    let last_row = u32::try_from(rows.len()).unwrap_or(u32::MAX);
    let last_column = u16::try_from(COLUMNS.len() - 1).unwrap_or(u16::MAX);
    sheet.autofilter(0, 0, last_row, last_column)?;
    sheet.set_freeze_panes(1, 0)?;
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(step: &str) -> Event {
        serde_json::from_value(serde_json::json!({
            "type": "ObjectEvent", "eventTime": "2026-03-02T08:00:00Z",
            "eventTimeZoneOffset": "+00:00", "action": "OBSERVE", "bizStep": step,
            "quantityList": [{"epcClass": "https://id.gs1.org/01/09506000134352/10/L1"}]
        }))
        .unwrap()
    }

    #[test]
    fn ctes_come_from_biz_steps_and_others_are_left_out() {
        assert_eq!(cte(&event("shipping")), Some("Shipping"));
        assert_eq!(
            cte(&event("urn:epcglobal:cbv:bizstep:receiving")),
            Some("Receiving")
        );
        assert_eq!(
            cte(&event("https://ref.gs1.org/cbv/BizStep-commissioning")),
            Some("Initial Packing")
        );
        assert_eq!(
            cte(&event("https://example.com/steps/cooling")),
            Some("Cooling")
        );
        assert_eq!(cte(&event("inspecting")), None);
    }

    #[test]
    fn requests_name_lots_or_a_product_and_refuse_the_rest() {
        let lot = Request::parse(
            Some("urn:epc:class:lgtin:9506000.013435.L1"),
            None,
            None,
            None,
        )
        .unwrap();
        assert_eq!(
            lot.subject,
            Subject::Lots(vec!["https://id.gs1.org/01/09506000134352/10/L1".into()])
        );
        let product = Request::parse(
            None,
            Some("09506000134352"),
            Some("2026-01-01T00:00:00Z"),
            None,
        )
        .unwrap();
        assert_eq!(
            product.subject,
            Subject::Product("https://id.gs1.org/01/09506000134352".into())
        );
        assert!(product.from_ms.is_some());
        for (tlc, gtin, from) in [
            (None, None, None),
            (Some("https://id.gs1.org/01/09506000134352"), None, None),
            (Some("x"), Some("09506000134352"), None),
            (None, Some("nope"), None),
            (None, Some("09506000134352"), Some("yesterday")),
        ] {
            assert!(
                Request::parse(tlc, gtin, from, None).is_err(),
                "{tlc:?} {gtin:?} {from:?}"
            );
        }
    }

    #[test]
    fn csv_has_the_header_and_defuses_formulas() {
        let mut row = vec![String::new(); COLUMNS.len()];
        row[1] = "=cmd".into();
        let text = csv(&[row]);
        assert!(text.starts_with("Critical Tracking Event (CTE),Traceability Lot Code (TLC),"));
        assert!(text.contains("'=cmd"));
    }
}
