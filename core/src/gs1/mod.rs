//! GS1 identifiers: parse what members send, hold one canonical form.
//!
//! An event may name the same lot as a GS1 Digital Link on a brand's host
//! (`https://example.com/01/9506000134352/10/ABC1`), as an EPC URN
//! (`urn:epc:class:lgtin:9506000.013435.ABC1`) or on id.gs1.org. Lotline
//! indexes and compares the one canonical form, the Digital Link on
//! `https://id.gs1.org` with a 14-digit GTIN:
//! `https://id.gs1.org/01/09506000134352/10/ABC1`.
//!
//! Accepted, in this order of trial:
//! 1. **GS1 Digital Link** on any http(s) host, for (01) with (10) lot and/or
//!    (21) serial, (00) SSCC and (414) GLN with (254) extension. Path segments
//!    are percent-decoded; the query string (data attributes) and fragment do
//!    not change identity. GTIN-8/12/13 are left-padded to 14 digits.
//!    (01)+(10)+(21) is an item: serial identifies it, the lot is dropped from
//!    the identity (the event keeps the string as sent). (254) `0` means no
//!    extension, as in the SGLN URN. (22) and (235) are valid GS1 qualifiers
//!    that Lotline does not model, and are rejected as such.
//! 2. **EPC URNs** `urn:epc:id:sgtin:`, `urn:epc:class:lgtin:`,
//!    `urn:epc:idpat:sgtin:CP.IR.*` (a product class), `urn:epc:id:sscc:`,
//!    `urn:epc:id:sgln:` (extension `0` means none), escapes decoded.
//! 3. Any other **absolute URI** (`urn:uuid:...`, `https://erp.example/x`,
//!    `urn:epc:id:giai:...`) as [`Identifier::Other`], verbatim: internal
//!    codes are allowed as URIs.
//!
//! An http(s) URI whose path *starts* with (01), (00) or (414), and a URN
//! of one of the five EPC schemes above, must then be well-formed: a bad
//! check digit, a lot with a character outside set 82, qualifiers out of
//! order or digit counts that do not add up are errors, never silently
//! `Other`. (Behind a custom path prefix, `https://brand.example/dl/01/...`,
//! a Digital Link is recognised only when the rest parses, since the prefix
//! could as well be an unrelated web path.)

mod check_digit;
mod digital_link;
mod epc_urn;
mod error;
mod keys;

use std::fmt;
use std::str::FromStr;

pub use check_digit::check_digit;
pub use digital_link::CANONICAL_HOST;
pub use epc_urn::COMPANY_PREFIX_DIGITS;
pub use error::Gs1Error;
pub use keys::{AI_VALUE_CHARS_MAX, Gln, Gtin, Sscc, is_cset82};

use crate::limits::IDENTIFIER_BYTES_MAX;

/// A GS1 key (with its qualifier) or another identifier URI.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Identifier {
    /// A serialised trade item (SGTIN): GTIN + serial (AI 21).
    Item { gtin: Gtin, serial: String },
    /// A lot or batch of a trade item (LGTIN): GTIN + lot (AI 10).
    Lot { gtin: Gtin, lot: String },
    /// A trade item class (product): GTIN alone.
    Product { gtin: Gtin },
    /// A logistic unit (SSCC).
    Sscc(Sscc),
    /// A physical location or party (SGLN): GLN + optional extension (AI 254).
    Location { gln: Gln, extension: Option<String> },
    /// Any other absolute URI, kept verbatim.
    Other(String),
}

/// The scheme of an absolute URI (`[A-Za-z][A-Za-z0-9+.-]*` before the first
/// `:`), or `None`.
pub fn uri_scheme(s: &str) -> Option<&str> {
    let (scheme, _) = s.split_once(':')?;
    let mut chars = scheme.chars();
    let first = chars.next()?;
    let valid = first.is_ascii_alphabetic()
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    valid.then_some(scheme)
}

/// True for an absolute URI as Lotline accepts one: a scheme, something after
/// the colon, and no whitespace or control characters. Also the test for a
/// namespaced JSON-LD key (`example:myField`, `https://ns.example.com/f`).
pub fn is_absolute_uri(s: &str) -> bool {
    uri_scheme(s).is_some_and(|scheme| s.len() > scheme.len() + 1) && !has_space_or_control(s)
}

/// Whether `s` holds a whitespace or control character. ASCII text, which
/// nearly every identifier is, is checked byte by byte (for ASCII the two
/// byte tests are the two `char` tests); only other text is decoded. Every
/// identifier of every event passes here, several times on the write path.
fn has_space_or_control(s: &str) -> bool {
    if s.is_ascii() {
        s.bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    } else {
        s.chars().any(|c| c.is_whitespace() || c.is_control())
    }
}

impl Identifier {
    /// Parses a Digital Link, an EPC URN or another absolute URI; see the
    /// module docs for the rules.
    pub fn parse(s: &str) -> Result<Identifier, Gs1Error> {
        if s.is_empty() {
            return Err(Gs1Error::Empty);
        }
        if s.len() > IDENTIFIER_BYTES_MAX {
            return Err(Gs1Error::TooLong {
                len: s.len(),
                max: IDENTIFIER_BYTES_MAX,
            });
        }
        if !is_absolute_uri(s) {
            return Err(Gs1Error::NotAUri {
                input: s.to_owned(),
            });
        }
        let scheme = uri_scheme(s).unwrap_or_default();
        let parsed = if scheme.eq_ignore_ascii_case("https") || scheme.eq_ignore_ascii_case("http")
        {
            digital_link::parse(s)
        } else if scheme.eq_ignore_ascii_case("urn") {
            epc_urn::parse(s)
        } else {
            None
        };
        parsed.unwrap_or_else(|| Ok(Identifier::Other(s.to_owned())))
    }

    /// A serialised item, with the serial checked.
    pub fn item(gtin: Gtin, serial: &str) -> Result<Identifier, Gs1Error> {
        keys::check_ai_value(keys::SERIAL, serial)?;
        Ok(Identifier::Item {
            gtin,
            serial: serial.to_owned(),
        })
    }

    /// A lot, with the lot checked.
    pub fn lot(gtin: Gtin, lot: &str) -> Result<Identifier, Gs1Error> {
        keys::check_ai_value(keys::LOT, lot)?;
        Ok(Identifier::Lot {
            gtin,
            lot: lot.to_owned(),
        })
    }

    /// The canonical string form used as index key and in APIs: the GS1
    /// Digital Link on `https://id.gs1.org` for GS1 keys (serial, lot and
    /// extension percent-encoded except RFC 3986 unreserved characters), the
    /// URI as given for [`Identifier::Other`].
    pub fn canonical(&self) -> String {
        match self {
            Identifier::Other(s) => s.clone(),
            key => digital_link::canonical(key).unwrap_or_default(),
        }
    }

    /// The EPC pure-identity URN of a GS1 key; `company_prefix_len` (6..=12)
    /// is the length of the GS1 Company Prefix inside the key, which the key
    /// itself does not record. A product becomes the pattern
    /// `urn:epc:idpat:sgtin:CP.IR.*`.
    pub fn to_epc_urn(&self, company_prefix_len: usize) -> Result<String, Gs1Error> {
        epc_urn::to_urn(self, company_prefix_len)
    }

    /// The product an item or lot belongs to (for rolling lots up to
    /// products); `None` for anything else.
    pub fn class(&self) -> Option<Identifier> {
        match self {
            Identifier::Item { gtin, .. } | Identifier::Lot { gtin, .. } => {
                Some(Identifier::Product { gtin: gtin.clone() })
            }
            _ => None,
        }
    }

    /// The GTIN of an item, lot or product.
    pub fn gtin(&self) -> Option<&Gtin> {
        match self {
            Identifier::Item { gtin, .. }
            | Identifier::Lot { gtin, .. }
            | Identifier::Product { gtin } => Some(gtin),
            _ => None,
        }
    }

    /// True for GS1 keys, false for [`Identifier::Other`].
    pub fn is_gs1(&self) -> bool {
        !matches!(self, Identifier::Other(_))
    }
}

impl fmt::Display for Identifier {
    /// The canonical form.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical())
    }
}

impl FromStr for Identifier {
    type Err = Gs1Error;
    fn from_str(s: &str) -> Result<Self, Gs1Error> {
        Identifier::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Goal: the ASCII fast path answers as the `char` test does.
        /// Method: random ASCII strings and random text, against the test
        /// over decoded characters.
        #[test]
        fn the_byte_test_is_the_char_test(ascii in "[\\x00-\\x7f]{0,24}", text in "\\PC{0,12}[\\s\\x00-\\x1f\\u{85}\\u{a0}\\u{2028}]?") {
            for s in [ascii.as_str(), text.as_str()] {
                prop_assert_eq!(
                    has_space_or_control(s),
                    s.chars().any(|c| c.is_whitespace() || c.is_control()),
                    "{:?}", s
                );
            }
        }
    }

    #[test]
    fn uri_schemes() {
        assert_eq!(uri_scheme("urn:uuid:1"), Some("urn"));
        assert_eq!(uri_scheme("example:myField"), Some("example"));
        assert_eq!(uri_scheme("1a:b"), None);
        assert_eq!(uri_scheme("sDev"), None);
        assert!(is_absolute_uri("https://ns.example.com/epcis/myField"));
        assert!(!is_absolute_uri("urn:"));
        assert!(!is_absolute_uri("urn:a b"));
    }
}
