//! GS1 Digital Link URIs (`https://{host}/01/{gtin}/10/{lot}`): parsing on
//! any host and the canonical form on `https://id.gs1.org`.
//!
//! Only the keys Lotline models are parsed: (01) with (10) and/or (21),
//! (00), and (414) with (254). An http(s) URI whose path does not start with
//! one of them is not a Digital Link to us and is kept verbatim as
//! [`Identifier::Other`] (this includes valid Digital Links for other keys,
//! e.g. `/8004/...`). A URI with a custom path prefix
//! (`https://brand.example/dl/01/...`) is read as a Digital Link only if the
//! rest parses completely; otherwise it too is `Other`.

use super::keys::{GLN_EXTENSION, LOT, SERIAL, check_ai_value};
use super::{Gln, Gs1Error, Gtin, Identifier, Sscc};

/// Host of the canonical form.
pub const CANONICAL_HOST: &str = "https://id.gs1.org";

/// The primary keys this module understands.
const PRIMARY_KEYS: [&str; 3] = ["01", "00", "414"];

/// `Some` when `input` (an http or https URI) is a Digital Link for a key we
/// model, `None` when it is some other web URI.
pub(super) fn parse(input: &str) -> Option<Result<Identifier, Gs1Error>> {
    let (_, rest) = input.split_once(':')?;
    let rest = rest.strip_prefix("//")?;
    // Drop query and fragment: they carry attributes, not identity.
    let rest = rest.split(['?', '#']).next().unwrap_or_default();
    let (authority, path) = rest.split_once('/')?;
    if authority.is_empty() {
        return None;
    }
    let mut segments: Vec<&str> = path.split('/').collect();
    if segments.len() > 1 && segments.last() == Some(&"") {
        segments.pop();
    }
    for start in 0..segments.len() {
        if !PRIMARY_KEYS.contains(&segments[start]) {
            continue;
        }
        let parsed = parse_path(input, &segments[start..]);
        if start == 0 || parsed.is_ok() {
            return Some(parsed);
        }
    }
    None
}

/// `segments` starts at a primary key AI.
fn parse_path(input: &str, segments: &[&str]) -> Result<Identifier, Gs1Error> {
    let mut pairs = Vec::with_capacity(segments.len() / 2 + 1);
    for chunk in segments.chunks(2) {
        let ai = chunk[0];
        match chunk.get(1) {
            Some(value) if !value.is_empty() => pairs.push((ai, percent_decode(input, value)?)),
            _ => {
                return Err(Gs1Error::MissingValue {
                    input: input.to_owned(),
                    ai: ai.to_owned(),
                });
            }
        }
    }
    let Some(((key, value), qualifiers)) = pairs.split_first() else {
        return Err(Gs1Error::NotAUri {
            input: input.to_owned(),
        });
    };
    let unknown = |ai: &str| Gs1Error::UnknownAi {
        input: input.to_owned(),
        ai: ai.to_owned(),
        key: (*key).to_owned(),
    };
    match *key {
        "01" => {
            let gtin = Gtin::parse(value)?;
            let (mut lot, mut serial) = (None, None);
            // Standard order of the (01) qualifiers: (22) < (10) < (21).
            let mut last: (usize, &str) = (0, "01");
            for (ai, value) in qualifiers {
                let rank = match *ai {
                    "22" => 1,
                    "10" => 2,
                    "21" => 3,
                    "235" => {
                        return Err(Gs1Error::UnsupportedQualifier {
                            input: input.to_owned(),
                            ai: (*ai).to_owned(),
                        });
                    }
                    other => return Err(unknown(other)),
                };
                if rank <= last.0 {
                    return Err(Gs1Error::AiOrder {
                        input: input.to_owned(),
                        ai: (*ai).to_owned(),
                        after: last.1.to_owned(),
                    });
                }
                last = (rank, ai);
                match *ai {
                    "10" => lot = Some(value.clone()),
                    "21" => serial = Some(value.clone()),
                    _ => {
                        return Err(Gs1Error::UnsupportedQualifier {
                            input: input.to_owned(),
                            ai: (*ai).to_owned(),
                        });
                    }
                }
            }
            if let Some(lot) = &lot {
                check_ai_value(LOT, lot)?;
            }
            // GTIN + serial identifies the item; a lot beside it is an
            // attribute of that item, not part of its identity.
            match (serial, lot) {
                (Some(serial), _) => {
                    check_ai_value(SERIAL, &serial)?;
                    Ok(Identifier::Item { gtin, serial })
                }
                (None, Some(lot)) => Ok(Identifier::Lot { gtin, lot }),
                (None, None) => Ok(Identifier::Product { gtin }),
            }
        }
        "00" => {
            let sscc = Sscc::parse(value)?;
            match qualifiers.first() {
                Some((ai, _)) => Err(unknown(ai)),
                None => Ok(Identifier::Sscc(sscc)),
            }
        }
        _ => {
            let gln = Gln::parse(value)?;
            let mut extension = None;
            for (ai, value) in qualifiers {
                if *ai != "254" {
                    return Err(unknown(ai));
                }
                if extension.is_some() {
                    return Err(Gs1Error::AiOrder {
                        input: input.to_owned(),
                        ai: "254".into(),
                        after: "254".into(),
                    });
                }
                check_ai_value(GLN_EXTENSION, value)?;
                extension = Some(value.clone());
            }
            // As in the SGLN URN, extension "0" means "no extension".
            let extension = extension.filter(|e| e != "0");
            Ok(Identifier::Location { gln, extension })
        }
    }
}

fn hex_value(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Decodes `%HH` escapes; the result must be UTF-8.
pub(super) fn percent_decode(input: &str, value: &str) -> Result<String, Gs1Error> {
    if !value.contains('%') {
        return Ok(value.to_owned());
    }
    let bad = |at: usize| {
        let escape: String = value[at..].chars().take(3).collect();
        Gs1Error::PercentEncoding {
            input: input.to_owned(),
            escape,
        }
    };
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hi = bytes.get(i + 1).copied().and_then(hex_value);
            let lo = bytes.get(i + 2).copied().and_then(hex_value);
            match (hi, lo) {
                (Some(hi), Some(lo)) => out.push(hi << 4 | lo),
                _ => return Err(bad(i)),
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| bad(value.find('%').unwrap_or(0)))
}

/// Percent-encodes all but the RFC 3986 unreserved characters.
pub(super) fn percent_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The canonical Digital Link of a GS1 key; `None` for [`Identifier::Other`].
pub(super) fn canonical(id: &Identifier) -> Option<String> {
    Some(match id {
        Identifier::Item { gtin, serial } => {
            format!(
                "{CANONICAL_HOST}/01/{}/21/{}",
                gtin.as_str(),
                percent_encode(serial)
            )
        }
        Identifier::Lot { gtin, lot } => format!(
            "{CANONICAL_HOST}/01/{}/10/{}",
            gtin.as_str(),
            percent_encode(lot)
        ),
        Identifier::Product { gtin } => format!("{CANONICAL_HOST}/01/{}", gtin.as_str()),
        Identifier::Sscc(sscc) => format!("{CANONICAL_HOST}/00/{}", sscc.as_str()),
        Identifier::Location {
            gln,
            extension: None,
        } => format!("{CANONICAL_HOST}/414/{}", gln.as_str()),
        Identifier::Location {
            gln,
            extension: Some(ext),
        } => {
            format!(
                "{CANONICAL_HOST}/414/{}/254/{}",
                gln.as_str(),
                percent_encode(ext)
            )
        }
        Identifier::Other(_) => return None,
    })
}
