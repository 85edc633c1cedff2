//! Identifiers the story hands out: GS1 keys as Digital Link URIs on
//! `id.gs1.org` (already in the canonical form of [`gs1::Identifier`]), the
//! parties and sites of every org, and deterministic event ids.
//!
//! Keys live on the `9506...` GS1 demo company prefixes, so they never clash
//! with a real company's. Check digits come from [`gs1::check_digit`].

use std::collections::BTreeMap;

use lotline_core::epcis::Location;
use lotline_core::gs1;

/// GS1 company prefixes (7 digits) under the GS1 demo range 950.
pub(super) const SUPPLIER_PREFIX: &str = "9506001";
pub(super) const MANUFACTURER_PREFIX: &str = "9506002";
pub(super) const DISTRIBUTOR_PREFIX: &str = "9506003";
pub(super) const REGULATOR_PREFIX: &str = "9506004";
pub(super) const RETAILER_PREFIX: &str = "9506005";
pub(super) const CARRIER_PREFIX: &str = "9506006";

/// How many retail stores the distributor serves (parties, not member orgs).
pub(super) const RETAILERS: u32 = 40;
/// The distributor's distribution centres.
pub(super) const DISTRIBUTION_CENTRES: u32 = 3;
/// Hauliers (parties, not member orgs): the first carries the
/// manufacturer's pallets to the distribution centres, the others the
/// distributor's retail deliveries.
pub(super) const CARRIERS: u32 = 4;
/// The supplier's plants; each material comes from one of them.
pub(super) const SUPPLIER_PLANTS: u32 = 3;

/// Appends the GS1 mod-10 check digit to a string of digits. Only ever
/// called with digits formatted in this module, so the `None` arm (a
/// non-digit) can not be reached; it returns the body unchanged rather than
/// panicking.
pub(super) fn with_check_digit(digits: &str) -> String {
    match gs1::check_digit(digits) {
        Some(check) => format!("{digits}{check}"),
        None => digits.to_owned(),
    }
}

/// GTIN-14: indicator 0, company prefix, 5-digit item reference, check digit.
pub(super) fn gtin(prefix: &str, item_reference: u64) -> String {
    with_check_digit(&format!("0{prefix}{:05}", item_reference % 100_000))
}

/// A lot (LGTIN) as a Digital Link URI.
pub(super) fn lgtin(gtin: &str, lot: &str) -> String {
    format!("https://id.gs1.org/01/{gtin}/10/{lot}")
}

/// A serialised item (SGTIN) as a Digital Link URI.
pub(super) fn sgtin(gtin: &str, serial: u64) -> String {
    format!("https://id.gs1.org/01/{gtin}/21/{serial}")
}

/// An SSCC (extension digit, company prefix, 9-digit serial reference) as a
/// Digital Link URI.
pub(super) fn sscc(extension: u64, prefix: &str, serial_reference: u64) -> String {
    let key = with_check_digit(&format!(
        "{}{prefix}{:09}",
        extension % 10,
        serial_reference % 1_000_000_000
    ));
    format!("https://id.gs1.org/00/{key}")
}

/// A GLN as a Digital Link URI.
pub(super) fn gln(prefix: &str, location_reference: u32) -> String {
    format!(
        "https://id.gs1.org/414/{}",
        with_check_digit(&format!("{prefix}{:05}", location_reference % 100_000))
    )
}

/// The canonical form of an identifier this module built, through the one
/// parser of the project; the input itself if it does not parse (which the
/// tests rule out).
pub(super) fn canonical(id: &str) -> String {
    gs1::Identifier::parse(id).map_or_else(|_| id.to_owned(), |parsed| parsed.canonical())
}

/// A deterministic `urn:uuid:` for event number `counter` of the story of
/// `seed`. The bits are a splitmix64 mix of both, stamped as an RFC 9562
/// version 8 (custom) UUID: it is derived, not random, and says so. Equal
/// inputs give equal ids, which is what lets a correction name the event it
/// retracts.
pub(super) fn event_id(seed: u64, counter: u64) -> String {
    let hi = mix(seed ^ mix(counter));
    let lo = mix(hi ^ counter.rotate_left(32));
    let hi = (hi & !0xF000) | 0x8000;
    let lo = (lo & !(0b11 << 62)) | (0b10 << 62);
    format!(
        "urn:uuid:{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xFFFF,
        hi & 0xFFFF,
        lo >> 48,
        lo & 0xFFFF_FFFF_FFFF
    )
}

/// The splitmix64 finaliser: a bijection on u64 with good avalanche.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// One trading party: the org that attests for it (if any), its party GLN
/// and one site GLN. Retail stores are parties without an org.
#[derive(Clone, Debug)]
pub(super) struct Party {
    pub org: String,
    pub party: String,
    pub site: String,
}

impl Party {
    pub fn new(org: &str, prefix: &str, site_reference: u32) -> Party {
        Party {
            org: org.to_owned(),
            party: gln(prefix, 1),
            site: gln(prefix, site_reference),
        }
    }

    /// The site as a readPoint or bizLocation.
    pub fn site(&self) -> Option<Location> {
        Some(location(&self.site))
    }

    /// The GLN digits of the party (for business transaction ids).
    pub fn party_gln(&self) -> &str {
        self.party.rsplit('/').next().unwrap_or_default()
    }
}

pub(super) fn location(id: &str) -> Location {
    Location {
        id: id.to_owned(),
        extensions: BTreeMap::new(),
    }
}

/// Retail store `index`: party and store GLNs under the retailer prefix.
pub(super) fn retailer(index: u32) -> Party {
    let index = index % RETAILERS;
    Party {
        org: String::new(),
        party: gln(RETAILER_PREFIX, 100 + 2 * index),
        site: gln(RETAILER_PREFIX, 101 + 2 * index),
    }
}

/// Haulier `index` (`0..CARRIERS`): its party GLN under the carrier prefix.
pub(super) fn carrier(index: u32) -> Party {
    let index = index % CARRIERS;
    Party {
        org: String::new(),
        party: gln(CARRIER_PREFIX, 100 + 2 * index),
        site: gln(CARRIER_PREFIX, 101 + 2 * index),
    }
}

/// A draw in `0..n` that is a pure function of `seed` and `counter` (not of
/// the story's generator, so choosing with it changes no other value).
pub(super) fn pick(seed: u64, counter: u64, n: u64) -> u64 {
    mix(seed ^ mix(counter)) % n.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_digits_match_published_gs1_examples() {
        // Examples published by GS1 (GTIN, GLN, SSCC).
        assert_eq!(with_check_digit("0950600013435"), "09506000134352");
        assert_eq!(with_check_digit("0061414112345"), "00614141123452");
        assert_eq!(with_check_digit("950600013437"), "9506000134376");
        assert_eq!(with_check_digit("10614141234567890"), "106141412345678908");
    }

    #[test]
    fn built_identifiers_are_already_canonical() {
        // Goal: every key this module builds is one the project's parser
        // accepts as a GS1 key and keeps byte for byte.
        let gtin = gtin(MANUFACTURER_PREFIX, 12_345);
        let ids = [
            lgtin(&gtin, "FIN000001"),
            sgtin(&gtin, 100_000_123),
            sscc(3, MANUFACTURER_PREFIX, 42),
            gln(RETAILER_PREFIX, 101),
        ];
        for id in ids {
            let parsed = gs1::Identifier::parse(&id).unwrap();
            assert!(parsed.is_gs1(), "{id}");
            assert_eq!(canonical(&id), id);
        }
    }

    #[test]
    fn event_ids_are_deterministic_distinct_version_8_uuids() {
        assert_eq!(event_id(1, 2), event_id(1, 2));
        assert_ne!(event_id(1, 2), event_id(1, 3));
        assert_ne!(event_id(1, 2), event_id(2, 2));
        let id = event_id(9, 0);
        let uuid = id.trim_start_matches("urn:uuid:");
        assert_eq!(uuid.len(), 36);
        assert_eq!(&uuid[14..15], "8");
        assert!(matches!(&uuid[19..20], "8" | "9" | "a" | "b"));
        let distinct: std::collections::BTreeSet<String> =
            (0..10_000).map(|n| event_id(5, n)).collect();
        assert_eq!(distinct.len(), 10_000);
    }

    #[test]
    fn retailers_and_carriers_have_distinct_parties_and_sites() {
        let mut glns = std::collections::BTreeSet::new();
        let parties = (0..RETAILERS)
            .map(retailer)
            .chain((0..CARRIERS).map(carrier));
        for party in parties {
            assert!(glns.insert(party.party));
            assert!(glns.insert(party.site));
        }
    }
}
