//! EPC pure-identity URNs (GS1 Tag Data Standard): `urn:epc:id:sgtin:`,
//! `urn:epc:class:lgtin:`, `urn:epc:idpat:sgtin:CP.IR.*`, `urn:epc:id:sscc:`,
//! `urn:epc:id:sgln:`, in both directions.
//!
//! The GS1 Company Prefix length is not written in a GS1 key, only in a URN
//! (as the position of the first dot), so converting a key *to* a URN needs
//! it from the caller. Other EPC schemes (`giai`, `grai`, `gsrn`, ...) are
//! not modelled and stay [`Identifier::Other`].

use super::digital_link::percent_decode;
use super::keys::{GLN_EXTENSION, LOT, SERIAL, check_ai_value, is_cset82};
use super::{Gln, Gs1Error, Gtin, Identifier, Sscc};

/// The smallest and largest GS1 Company Prefix, in digits.
pub const COMPANY_PREFIX_DIGITS: std::ops::RangeInclusive<usize> = 6..=12;

#[derive(Clone, Copy)]
enum Scheme {
    Sgtin,
    Lgtin,
    SgtinPattern,
    Sscc,
    Sgln,
}

const SCHEMES: [(&str, Scheme); 5] = [
    ("urn:epc:id:sgtin:", Scheme::Sgtin),
    ("urn:epc:class:lgtin:", Scheme::Lgtin),
    ("urn:epc:idpat:sgtin:", Scheme::SgtinPattern),
    ("urn:epc:id:sscc:", Scheme::Sscc),
    ("urn:epc:id:sgln:", Scheme::Sgln),
];

/// `Some` when `input` starts with one of the modelled URN prefixes (matched
/// without regard to case, as URN namespaces are), `None` otherwise.
pub(super) fn parse(input: &str) -> Option<Result<Identifier, Gs1Error>> {
    let bytes = input.as_bytes();
    let (prefix, scheme) = SCHEMES.into_iter().find(|(p, _)| {
        bytes
            .get(..p.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(p.as_bytes()))
    })?;
    // The prefix is ASCII, so its length is a char boundary.
    let body = &input[prefix.len()..];
    Some(parse_body(input, scheme, body))
}

fn parts<'a>(
    input: &str,
    scheme: &'static str,
    body: &'a str,
    n: usize,
) -> Result<Vec<&'a str>, Gs1Error> {
    let parts: Vec<&str> = body.splitn(n, '.').collect();
    if parts.len() != n {
        return Err(Gs1Error::UrnParts {
            input: input.to_owned(),
            scheme,
            expected: n,
            found: parts.len(),
        });
    }
    Ok(parts)
}

/// Company prefix and reference: digits, prefix 6..=12, total `expected`.
fn digits(
    input: &str,
    reference: &'static str,
    prefix: &str,
    rest: &str,
    expected: usize,
    min_reference: usize,
) -> Result<(), Gs1Error> {
    for (key, value) in [("company prefix", prefix), (reference, rest)] {
        if let Some(ch) = value.chars().find(|c| !c.is_ascii_digit()) {
            return Err(Gs1Error::NotDigits {
                key,
                value: value.to_owned(),
                ch,
            });
        }
    }
    if !COMPANY_PREFIX_DIGITS.contains(&prefix.len()) {
        return Err(Gs1Error::CompanyPrefixLength { len: prefix.len() });
    }
    if prefix.len() + rest.len() != expected || rest.len() < min_reference {
        return Err(Gs1Error::UrnDigitCount {
            input: input.to_owned(),
            reference,
            prefix_digits: prefix.len(),
            reference_digits: rest.len(),
            expected,
        });
    }
    Ok(())
}

/// GTIN from `CP` and `IR` (indicator digit first).
fn gtin(input: &str, prefix: &str, item_ref: &str) -> Result<Gtin, Gs1Error> {
    digits(input, "item reference", prefix, item_ref, 13, 1)?;
    let (indicator, item) = item_ref.split_at(1);
    Gtin::from_body(&format!("{indicator}{prefix}{item}"))
}

fn value(input: &str, field: &'static str, raw: &str) -> Result<String, Gs1Error> {
    let decoded = percent_decode(input, raw)?;
    check_ai_value(field, &decoded)?;
    Ok(decoded)
}

fn parse_body(input: &str, scheme: Scheme, body: &str) -> Result<Identifier, Gs1Error> {
    match scheme {
        Scheme::Sgtin => {
            let p = parts(input, "sgtin", body, 3)?;
            let gtin = gtin(input, p[0], p[1])?;
            Ok(Identifier::Item {
                gtin,
                serial: value(input, SERIAL, p[2])?,
            })
        }
        Scheme::Lgtin => {
            let p = parts(input, "lgtin", body, 3)?;
            let gtin = gtin(input, p[0], p[1])?;
            Ok(Identifier::Lot {
                gtin,
                lot: value(input, LOT, p[2])?,
            })
        }
        Scheme::SgtinPattern => {
            let p = parts(input, "sgtin pattern", body, 3)?;
            if p[2] != "*" || p[1] == "*" || p[0] == "*" {
                return Err(Gs1Error::UrnPattern {
                    input: input.to_owned(),
                });
            }
            Ok(Identifier::Product {
                gtin: gtin(input, p[0], p[1])?,
            })
        }
        Scheme::Sscc => {
            let p: Vec<&str> = body.split('.').collect();
            if p.len() != 2 {
                return Err(Gs1Error::UrnParts {
                    input: input.to_owned(),
                    scheme: "sscc",
                    expected: 2,
                    found: p.len(),
                });
            }
            digits(input, "serial reference", p[0], p[1], 17, 1)?;
            let (extension, serial) = p[1].split_at(1);
            Ok(Identifier::Sscc(Sscc::from_body(&format!(
                "{extension}{}{serial}",
                p[0]
            ))?))
        }
        Scheme::Sgln => {
            let p = parts(input, "sgln", body, 3)?;
            digits(input, "location reference", p[0], p[1], 12, 0)?;
            let gln = Gln::from_body(&format!("{}{}", p[0], p[1]))?;
            let extension = value(input, GLN_EXTENSION, p[2])?;
            let extension = (extension != "0").then_some(extension);
            Ok(Identifier::Location { gln, extension })
        }
    }
}

/// Escapes a serial, lot or extension for a URN: the characters of set 82
/// that TDS requires escaped (`"` `%` `&` `/` `<` `>` `?`) and anything
/// outside set 82.
fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        if is_cset82(c) && !matches!(c, '"' | '%' | '&' | '/' | '<' | '>' | '?') {
            out.push(c);
        } else {
            let mut buf = [0u8; 4];
            for b in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}

/// The EPC URN of a GS1 key, given its company prefix length (6..=12).
pub(super) fn to_urn(id: &Identifier, prefix_len: usize) -> Result<String, Gs1Error> {
    if !COMPANY_PREFIX_DIGITS.contains(&prefix_len) {
        return Err(Gs1Error::CompanyPrefixLength { len: prefix_len });
    }
    // All keys are ASCII digits, so byte slicing is on char boundaries.
    let split_gtin = |gtin: &Gtin| {
        let d = gtin.as_str();
        let prefix = &d[1..1 + prefix_len];
        let item_ref = format!("{}{}", &d[..1], &d[1 + prefix_len..13]);
        format!("{prefix}.{item_ref}")
    };
    Ok(match id {
        Identifier::Item { gtin, serial } => {
            format!("urn:epc:id:sgtin:{}.{}", split_gtin(gtin), escape(serial))
        }
        Identifier::Lot { gtin, lot } => {
            format!("urn:epc:class:lgtin:{}.{}", split_gtin(gtin), escape(lot))
        }
        Identifier::Product { gtin } => format!("urn:epc:idpat:sgtin:{}.*", split_gtin(gtin)),
        Identifier::Sscc(sscc) => {
            let d = sscc.as_str();
            format!(
                "urn:epc:id:sscc:{}.{}{}",
                &d[1..1 + prefix_len],
                &d[..1],
                &d[1 + prefix_len..17]
            )
        }
        Identifier::Location { gln, extension } => {
            let d = gln.as_str();
            let extension = extension.as_deref().map_or_else(|| "0".to_owned(), escape);
            format!(
                "urn:epc:id:sgln:{}.{}.{extension}",
                &d[..prefix_len],
                &d[prefix_len..12]
            )
        }
        Identifier::Other(s) => return Err(Gs1Error::NotAGs1Key { input: s.clone() }),
    })
}
