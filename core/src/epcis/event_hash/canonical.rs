//! Value canonicalisation for the CBV 2.0 event hash: the forms in which
//! two spellings of one value become the same pre-hash text (rules 5-9 and
//! 14-18 of the algorithm; see the parent module).
//!
//! Every function here is total: a value it cannot canonicalise is kept as
//! it was (after trimming), exactly as GS1's reference generator keeps it,
//! so a hash is defined for every event the model holds.

use std::borrow::Cow;

use crate::gs1::check_digit;

/// The GS1 Digital Link host every GS1 key is rewritten onto.
const DL_HOST: &str = "https://id.gs1.org";

/// Rule 14: the CBV URN vocabularies and the web URI prefix each maps to.
const URN_VOCABULARIES: [(&str, &str); 5] = [
    (
        "urn:epcglobal:cbv:bizstep:",
        "https://ref.gs1.org/cbv/BizStep-",
    ),
    ("urn:epcglobal:cbv:disp:", "https://ref.gs1.org/cbv/Disp-"),
    ("urn:epcglobal:cbv:btt:", "https://ref.gs1.org/cbv/BTT-"),
    ("urn:epcglobal:cbv:sdt:", "https://ref.gs1.org/cbv/SDT-"),
    ("urn:epcglobal:cbv:er:", "https://ref.gs1.org/cbv/ER-"),
];

/// Rule 15: the CURIE prefixes every EPCIS document may use without
/// declaring them (they are bound by the standard's own JSON-LD context).
pub const STANDARD_PREFIXES: [(&str, &str); 3] = [
    ("gs1", "https://gs1.org/voc/"),
    ("cbv", "https://ref.gs1.org/cbv/"),
    ("epcis", "https://ref.gs1.org/epcis/"),
];

/// A plain value as it enters the pre-hash string: trimmed, CBV URNs as web
/// URIs, numbers without trailing zeros, GS1 keys as constrained canonical
/// Digital Links (in that order, as the reference generator applies them).
/// Appended to `out`: the pre-hash string is written in place, one buffer
/// for a list's entries.
pub fn push_value(text: &str, out: &mut String) {
    let text = web_vocabulary(text.trim());
    // A number is never a Digital Link.
    if let Some(number) = number(&text) {
        out.push_str(&number);
    } else if !push_digital_link(&text, out) {
        out.push_str(&text);
    }
}

/// A timestamp field: UTC with exactly three fraction digits
/// (`2005-04-05T02:33:31.116Z`). A value that is not RFC 3339 is kept as a
/// plain value would be. Sub-millisecond digits are truncated (the reference
/// rounds them; events carry milliseconds at most in practice). Appended
/// to `out`.
pub fn push_time(text: &str, out: &mut String) {
    let text = text.trim();
    match crate::time::parse_rfc3339_ms(text) {
        Ok(ms) => out.push_str(&crate::time::format_rfc3339_ms(ms)),
        Err(_) => push_value(text, out),
    }
}

fn web_vocabulary(text: &str) -> Cow<'_, str> {
    for (urn, web) in URN_VOCABULARIES {
        if let Some(term) = text.strip_prefix(urn) {
            return Cow::Owned(format!("{web}{term}"));
        }
    }
    Cow::Borrowed(text)
}

/// Rule 6: a decimal number without trailing zeros, written as Python's
/// `str(float)` writes it (the reference generator's arithmetic): integral
/// values as integers, others as the shortest text that reads back the same
/// double, in exponent form below 1e-4. Only decimal text is a number here
/// (`nan`, `inf` and digit separators are kept as text).
fn number(text: &str) -> Option<String> {
    if !is_decimal(text) {
        return None;
    }
    let x: f64 = text.parse().ok()?;
    if !x.is_finite() {
        return None;
    }
    if x.fract() == 0.0 {
        // `{:.0}` writes the exact integer a double holds, as Python's int().
        let s = format!("{x:.0}");
        return Some(if s == "-0" { "0".to_owned() } else { s });
    }
    if x.abs() < 1e-4 {
        // Python: 1e-05, 1.5e-07 (at least two exponent digits).
        let s = format!("{x:e}");
        let (mantissa, exponent) = s.split_once('e')?;
        let exponent: i32 = exponent.parse().ok()?;
        let sign = if exponent < 0 { '-' } else { '+' };
        return Some(format!("{mantissa}e{sign}{:02}", exponent.abs()));
    }
    Some(format!("{x}"))
}

/// `[+-]digits[.digits][e[+-]digits]`, with digits on at least one side of
/// the point.
fn is_decimal(text: &str) -> bool {
    let s = text.strip_prefix(['+', '-']).unwrap_or(text);
    // Most values are identifiers and words: refused at their first byte,
    // before the scans below.
    if !s.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        return false;
    }
    let (mantissa, exponent) = match s.find(['e', 'E']) {
        Some(i) => (&s[..i], Some(&s[i + 1..])),
        None => (s, None),
    };
    let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
        return false;
    }
    match exponent {
        None => true,
        Some(e) => {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        }
    }
}

/// Rules 17 and 18: an EPC URI, EPC class or pattern URI, or a GS1 Digital
/// Link on any host, as the constrained canonical Digital Link on
/// `https://id.gs1.org` (most fine-grained key only, no query string).
/// `None` when the value names no GS1 key this recognises.
pub fn digital_link(text: &str) -> Option<String> {
    let mut out = String::new();
    push_digital_link(text, &mut out).then_some(out)
}

/// [`digital_link`], appended to `out`; `false` (and `out` unchanged) when
/// the value names no GS1 key.
fn push_digital_link(text: &str, out: &mut String) -> bool {
    if let Some(rest) = text.strip_prefix("urn:epc:") {
        return epc_urn(rest).is_some_and(|link| {
            out.push_str(&link);
            true
        });
    }
    if let Some(rest) = text
        .strip_prefix("https://")
        .or_else(|| text.strip_prefix("http://"))
    {
        return web_uri(rest, out);
    }
    false
}

/// Characters the Digital Link syntax requires percent-encoded when an EPC
/// URN component carries them (GS1 Digital Link 1.2, table 7-1).
fn encode(component: &str) -> String {
    let mut out = String::with_capacity(component.len());
    for c in component.chars() {
        match c {
            '!' => out.push_str("%21"),
            '(' => out.push_str("%28"),
            ')' => out.push_str("%29"),
            '*' => out.push_str("%2A"),
            '+' => out.push_str("%2B"),
            ',' => out.push_str("%2C"),
            ':' => out.push_str("%3A"),
            c => out.push(c),
        }
    }
    out
}

fn all_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// `body` followed by its mod-10 check digit.
fn with_check(body: &str) -> Option<String> {
    let digit = check_digit(body)?;
    Some(format!("{body}{digit}"))
}

/// A company prefix (6 to 12 digits) and a reference that together have
/// `total` digits.
fn prefix_and_reference<'a>(cp: &'a str, reference: &'a str, total: usize) -> Option<()> {
    let fits = all_digits(cp)
        && (6..=12).contains(&cp.len())
        && reference.bytes().all(|b| b.is_ascii_digit())
        && cp.len() + reference.len() == total;
    fits.then_some(())
}

/// GTIN-14 from an SGTIN/LGTIN company prefix and indicator + item reference.
fn gtin(cp: &str, item_reference: &str) -> Option<String> {
    prefix_and_reference(cp, item_reference, 13)?;
    let (indicator, item) = item_reference.split_at(1.min(item_reference.len()));
    with_check(&format!("{indicator}{cp}{item}"))
}

/// GLN from a company prefix and location/party reference.
fn gln(cp: &str, reference: &str) -> Option<String> {
    prefix_and_reference(cp, reference, 12)?;
    with_check(&format!("{cp}{reference}"))
}

/// `urn:epc:` URIs (after that prefix) of the EPC Tag Data Standard schemes
/// that have a GS1 key.
fn epc_urn(rest: &str) -> Option<String> {
    let (kind, rest) = rest.split_once(':')?;
    let (scheme, body) = rest.split_once(':')?;
    let parts: Vec<&str> = body.split('.').collect();
    let path = match (kind, scheme, parts.as_slice()) {
        ("id", "sgtin", [cp, ir, serial]) => {
            format!("/01/{}/21/{}", gtin(cp, ir)?, encode(serial))
        }
        ("class", "lgtin", [cp, ir, lot]) => format!("/01/{}/10/{}", gtin(cp, ir)?, encode(lot)),
        ("idpat", "sgtin", [cp, ir, "*"]) => format!("/01/{}", gtin(cp, ir)?),
        ("id", "sscc", [cp, sr]) => {
            prefix_and_reference(cp, sr, 17)?;
            let (extension, serial) = sr.split_at(1);
            format!("/00/{}", with_check(&format!("{extension}{cp}{serial}"))?)
        }
        ("id", "sgln", [cp, lr, extension]) => {
            let gln = gln(cp, lr)?;
            match *extension {
                "0" => format!("/414/{gln}"),
                "" => return None,
                ext => format!("/414/{gln}/254/{}", encode(ext)),
            }
        }
        ("id", "pgln", [cp, pr]) => format!("/417/{}", gln(cp, pr)?),
        ("id", "grai", [cp, at, serial]) => {
            prefix_and_reference(cp, at, 12)?;
            let key = with_check(&format!("0{cp}{at}"))?;
            format!("/8003/{key}{}", encode(serial))
        }
        ("idpat", "grai", [cp, at, "*"]) => {
            prefix_and_reference(cp, at, 12)?;
            format!("/8003/{}", with_check(&format!("0{cp}{at}"))?)
        }
        ("id", "giai", [cp, asset]) if all_digits(cp) && !asset.is_empty() => {
            format!("/8004/{cp}{}", encode(asset))
        }
        ("id", "gsrn", [cp, sr]) => {
            prefix_and_reference(cp, sr, 17)?;
            format!("/8018/{}", with_check(&format!("{cp}{sr}"))?)
        }
        ("id", "gsrnp", [cp, sr]) => {
            prefix_and_reference(cp, sr, 17)?;
            format!("/8017/{}", with_check(&format!("{cp}{sr}"))?)
        }
        ("id", "gdti", [cp, dt, serial]) => {
            prefix_and_reference(cp, dt, 12)?;
            format!(
                "/253/{}{}",
                with_check(&format!("{cp}{dt}"))?,
                encode(serial)
            )
        }
        ("idpat", "gdti", [cp, dt, "*"]) => {
            prefix_and_reference(cp, dt, 12)?;
            format!("/253/{}", with_check(&format!("{cp}{dt}"))?)
        }
        ("id", "sgcn", [cp, cr, serial]) if all_digits(serial) => {
            prefix_and_reference(cp, cr, 12)?;
            format!("/255/{}{serial}", with_check(&format!("{cp}{cr}"))?)
        }
        ("id", "ginc", [cp, reference]) if all_digits(cp) && !reference.is_empty() => {
            format!("/401/{cp}{}", encode(reference))
        }
        ("id", "gsin", [cp, sr]) => {
            prefix_and_reference(cp, sr, 16)?;
            format!("/402/{}", with_check(&format!("{cp}{sr}"))?)
        }
        ("id", "cpi", [cp, reference, serial]) if all_digits(cp) && all_digits(serial) => {
            format!(
                "/8010/{}/8011/{serial}",
                encode(&format!("{cp}{reference}"))
            )
        }
        ("id", "itip", [cp, ir, piece, total, serial]) => {
            let key = gtin(cp, ir)?;
            let two = |s: &str| s.len() == 2 && all_digits(s);
            if !two(piece) || !two(total) {
                return None;
            }
            format!("/8006/{key}{piece}{total}/21/{}", encode(serial))
        }
        ("id", "upui", [cp, ir, serial]) => {
            format!("/01/{}/235/{}", gtin(cp, ir)?, encode(serial))
        }
        _ => return None,
    };
    Some(format!("{DL_HOST}{path}"))
}

/// The primary key a Digital Link path segment names, with the aliases of
/// the older syntax; `None` for any other segment. (A `match`: every
/// segment of every identifier in an event is looked up here.)
fn primary_key(segment: &str) -> Option<&'static str> {
    Some(match segment {
        "01" | "gtin" => "01",
        "8006" | "itip" => "8006",
        "8010" | "cpid" => "8010",
        "414" | "gln" => "414",
        "417" | "party" => "417",
        "8017" | "gsrnp" => "8017",
        "8018" | "gsrn" => "8018",
        "255" | "gcn" => "255",
        "00" | "sscc" => "00",
        "253" | "gdti" => "253",
        "401" | "ginc" => "401",
        "402" | "gsin" => "402",
        "8003" | "grai" => "8003",
        "8004" | "giai" => "8004",
        _ => return None,
    })
}

/// Qualifier aliases of the older syntax.
fn qualifier(ai: &str) -> &str {
    match ai {
        "cpv" => "22",
        "lot" => "10",
        "ser" => "21",
        other => other,
    }
}

/// A Digital Link on any host, `rest` being what follows its `https://`
/// or `http://`: the key and its finest qualifier on `https://id.gs1.org`,
/// without query string or fragment. The key value must start with four
/// digits (every GS1 key starts with a company prefix), which keeps
/// ordinary web paths such as `/01/intro` out.
///
/// One pass over the path's segments, nothing collected: every identifier
/// of every event goes through here.
fn web_uri(rest: &str, out: &mut String) -> bool {
    web_uri_parts(rest).is_some_and(|(key, padding, value, tail)| {
        out.reserve(DL_HOST.len() + key.len() + padding + rest.len() + 8);
        out.push_str(DL_HOST);
        out.push('/');
        out.push_str(key);
        out.push('/');
        out.extend(std::iter::repeat_n('0', padding));
        out.push_str(value);
        if let Some((ai, value)) = tail {
            out.push('/');
            out.push_str(ai);
            out.push('/');
            out.push_str(value);
        }
        true
    })
}

/// What [`web_uri`] writes: the key, the zeros that pad a GTIN to 14
/// digits, the key's value, and the finest qualifier kept.
type LinkParts<'a> = (
    &'static str,
    usize,
    &'a str,
    Option<(&'static str, &'a str)>,
);

/// Reads a Digital Link's path in one pass (see [`web_uri`]).
fn web_uri_parts(rest: &str) -> Option<LinkParts<'_>> {
    // The URI without its query and fragment, found byte by byte (`?` and
    // `#` are ASCII, so the cut is on a character boundary).
    let end = rest
        .bytes()
        .position(|b| b == b'?' || b == b'#')
        .unwrap_or(rest.len());
    let (_authority, path) = rest[..end].split_once('/')?;
    let mut segments = path.split('/').filter(|s| !s.is_empty());
    let key = segments.by_ref().find_map(primary_key)?;
    let value = segments.next()?;
    if value.len() < 5 || !value.bytes().take(4).all(|b| b.is_ascii_digit()) {
        return None;
    }
    // The first value of each qualifier a key may keep; the rest must pair.
    let mut first = Qualifiers::default();
    loop {
        match (segments.next(), segments.next()) {
            (None, _) => break,
            (Some(_), None) => return None,
            (Some(ai), Some(value)) => first.note(qualifier(ai), value),
        }
    }
    let padding = match (key, value.len()) {
        ("01", 14) => 0,
        ("01", 13 | 12 | 8) => 14 - value.len(),
        ("01", _) => return None,
        _ => 0,
    };
    let tail = match key {
        "01" | "8006" => match (first.serial, first.lot, first.tpx) {
            (Some(serial), _, _) => Some(("21", serial)),
            (None, Some(lot), _) => Some(("10", lot)),
            (None, None, Some(tpx)) if key == "01" => Some(("235", tpx)),
            _ => None,
        },
        "414" => first.extension.map(|e| ("254", e)),
        "8010" => first.cpid_serial.map(|s| ("8011", s)),
        _ => None,
    };
    Some((key, padding, value, tail))
}

/// The first value of each Digital Link qualifier the canonical form may
/// keep, as a path's pairs are read.
#[derive(Default)]
struct Qualifiers<'a> {
    serial: Option<&'a str>,
    lot: Option<&'a str>,
    tpx: Option<&'a str>,
    extension: Option<&'a str>,
    cpid_serial: Option<&'a str>,
}

impl<'a> Qualifiers<'a> {
    fn note(&mut self, ai: &str, value: &'a str) {
        let slot = match ai {
            "21" => &mut self.serial,
            "10" => &mut self.lot,
            "235" => &mut self.tpx,
            "254" => &mut self.extension,
            "8011" => &mut self.cpid_serial,
            _ => return,
        };
        slot.get_or_insert(value);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// A plain value's canonical text ([`push_value`]).
    fn value(text: &str) -> String {
        let mut out = String::new();
        push_value(text, &mut out);
        out
    }

    /// A timestamp field's canonical text ([`push_time`]).
    fn time(text: &str) -> String {
        let mut out = String::new();
        push_time(text, &mut out);
        out
    }

    /// The plain statement of [`is_decimal`] (no early exit), the rule the
    /// fast one must keep.
    fn decimal_reference(text: &str) -> bool {
        let s = text.strip_prefix(['+', '-']).unwrap_or(text);
        let (mantissa, exponent) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], Some(&s[i + 1..])),
            None => (s, None),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() && fraction.is_empty() || !digits(whole) || !digits(fraction) {
            return false;
        }
        exponent.is_none_or(|e| {
            let e = e.strip_prefix(['+', '-']).unwrap_or(e);
            !e.is_empty() && digits(e)
        })
    }

    /// The plain statement of [`web_uri`]: the path's segments collected,
    /// the key found among them, each qualifier looked up among the pairs.
    fn web_uri_reference(text: &str) -> Option<String> {
        let rest = text.split_once("://")?.1;
        let rest = rest.split(['?', '#']).next()?;
        let (_authority, path) = rest.split_once('/')?;
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let start = segments.iter().position(|s| primary_key(s).is_some())?;
        let key = primary_key(segments[start])?;
        let value = *segments.get(start + 1)?;
        if value.len() < 5 || !value.bytes().take(4).all(|b| b.is_ascii_digit()) {
            return None;
        }
        let qualifiers = &segments[start + 2..];
        if !qualifiers.len().is_multiple_of(2) {
            return None;
        }
        let find = |ai: &str| {
            qualifiers
                .chunks_exact(2)
                .find(|pair| qualifier(pair[0]) == ai)
                .map(|pair| pair[1])
        };
        let value = match (key, value.len()) {
            ("01", 14) => value.to_owned(),
            ("01", 13 | 12 | 8) => format!("{}{value}", "0".repeat(14 - value.len())),
            ("01", _) => return None,
            _ => value.to_owned(),
        };
        let tail = match key {
            "01" | "8006" => match (find("21"), find("10"), find("235")) {
                (Some(serial), _, _) => format!("/21/{serial}"),
                (None, Some(lot), _) => format!("/10/{lot}"),
                (None, None, Some(tpx)) if key == "01" => format!("/235/{tpx}"),
                _ => String::new(),
            },
            "414" => find("254").map_or(String::new(), |e| format!("/254/{e}")),
            "8010" => find("8011").map_or(String::new(), |s| format!("/8011/{s}")),
            _ => String::new(),
        };
        Some(format!("{DL_HOST}/{key}/{value}{tail}"))
    }

    /// Text made of the pieces numbers are written with, and a few others.
    fn numberish() -> impl Strategy<Value = String> {
        prop::collection::vec(
            prop::sample::select(vec!["0", "7", "42", ".", "+", "-", "e", "E", " ", "x", "é"]),
            0..8,
        )
        .prop_map(|pieces| pieces.concat())
    }

    /// Digital-Link-like URIs: a scheme, a host, a few stray segments, a
    /// key (or an alias, or not a key) and its value, qualifier pairs
    /// (repeats included), maybe an unpaired segment, a query or a fragment.
    fn link() -> impl Strategy<Value = String> {
        let value = || {
            prop::sample::select(vec![
                "09506000134352",
                "9506000134352",
                "950600013435",
                "95060001",
                "0012345111112",
                "401234599999",
                "1234",
                "12345",
                "S1",
                "L1",
                "",
                "é",
            ])
        };
        let key = prop::sample::select(vec![
            "01", "gtin", "8006", "itip", "8010", "cpid", "414", "gln", "417", "00", "sscc",
            "8004", "253", "po", "intro",
        ]);
        let qualifier = prop::sample::select(vec![
            "21", "ser", "10", "lot", "22", "cpv", "235", "254", "8011", "17", "01",
        ]);
        (
            prop::sample::select(vec!["https://", "http://", "https:/", "ftp://"]),
            prop::sample::select(vec!["id.gs1.org", "brand.example", "a:8080", ""]),
            prop::collection::vec(value(), 0..2),
            (key, value()),
            prop::collection::vec((qualifier, value()), 0..5),
            prop::option::of(value()),
            prop::sample::select(vec!["", "?17=2025", "#top", "?a=1#b", "/"]),
        )
            .prop_map(
                |(scheme, host, stray, (key, value), pairs, unpaired, suffix)| {
                    let mut segments: Vec<&str> = stray;
                    segments.extend([key, value]);
                    for (ai, v) in pairs {
                        segments.extend([ai, v]);
                    }
                    segments.extend(unpaired);
                    format!("{scheme}{host}/{}{suffix}", segments.join("/"))
                },
            )
    }

    proptest! {
        // Pure functions over short text: many cases cost milliseconds, and
        // the rarer shapes (a qualifier given twice) need them.
        #![proptest_config(ProptestConfig::with_cases(4096))]

        #[test]
        fn is_decimal_is_its_plain_statement(text in numberish()) {
            prop_assert_eq!(is_decimal(&text), decimal_reference(&text));
        }

        #[test]
        fn a_web_uri_canonicalises_as_its_plain_statement(text in link()) {
            let expected = if text.starts_with("https://") || text.starts_with("http://") {
                web_uri_reference(&text)
            } else {
                None
            };
            prop_assert_eq!(digital_link(&text), expected);
        }
    }

    #[test]
    fn numbers_are_written_as_the_reference_writes_them() {
        assert_eq!(value("200.0"), "200");
        assert_eq!(value(" 26.20 "), "26.2");
        assert_eq!(value("0012"), "12");
        assert_eq!(value("-0.0"), "0");
        assert_eq!(value("0.1"), "0.1");
        assert_eq!(value("1e3"), "1000");
        assert_eq!(value("0.00001"), "1e-05");
        assert_eq!(value("nan"), "nan");
        assert_eq!(value("1.2.3"), "1.2.3");
        assert_eq!(value("-06:00"), "-06:00");
    }

    #[test]
    fn times_are_utc_milliseconds() {
        assert_eq!(
            time("2005-04-04T20:33:31.116-06:00"),
            "2005-04-05T02:33:31.116Z"
        );
        assert_eq!(
            time("2019-04-02T14:05:00+01:00"),
            "2019-04-02T13:05:00.000Z"
        );
        assert_eq!(time("not a time"), "not a time");
    }

    #[test]
    fn epc_uris_become_canonical_digital_links() {
        let cases = [
            (
                "urn:epc:id:sgtin:0614141.107346.2017",
                "https://id.gs1.org/01/10614141073464/21/2017",
            ),
            (
                "urn:epc:class:lgtin:4012345.012345.998877",
                "https://id.gs1.org/01/04012345123456/10/998877",
            ),
            (
                "urn:epc:id:sscc:0614141.1234567890",
                "https://id.gs1.org/00/106141412345678908",
            ),
            (
                "urn:epc:id:sgln:0012345.11111.400",
                "https://id.gs1.org/414/0012345111112/254/400",
            ),
            (
                "urn:epc:id:sgln:0012345.11111.0",
                "https://id.gs1.org/414/0012345111112",
            ),
            (
                "urn:epc:id:pgln:4012345.00225",
                "https://id.gs1.org/417/4012345002256",
            ),
            (
                "urn:epc:id:gdti:0614141.00001.1618034",
                "https://id.gs1.org/253/06141410000121618034",
            ),
            (
                "urn:epc:id:giai:4000001.111",
                "https://id.gs1.org/8004/4000001111",
            ),
            (
                "urn:epc:idpat:sgtin:4012345.066666.*",
                "https://id.gs1.org/01/04012345666663",
            ),
        ];
        for (urn, link) in cases {
            assert_eq!(value(urn), link, "{urn}");
        }
        assert_eq!(
            value("urn:epc:id:sgtin:0614141.107346"),
            "urn:epc:id:sgtin:0614141.107346"
        );
    }

    #[test]
    fn digital_links_are_constrained_to_the_finest_key_on_id_gs1_org() {
        assert_eq!(
            value("https://example.org/8004/401234599999"),
            "https://id.gs1.org/8004/401234599999"
        );
        assert_eq!(
            value("https://brand.example/01/9506000134352/10/L1/21/S1?17=2025"),
            "https://id.gs1.org/01/09506000134352/21/S1"
        );
        assert_eq!(
            value("https://id.gs1.org/01/09506000134352/22/V1/10/L1"),
            "https://id.gs1.org/01/09506000134352/10/L1"
        );
        assert_eq!(
            value("http://transaction.acme.com/po/12345678"),
            "http://transaction.acme.com/po/12345678"
        );
        assert_eq!(
            value("https://example.com/01/intro"),
            "https://example.com/01/intro"
        );
    }

    #[test]
    fn cbv_urns_become_web_uris() {
        assert_eq!(
            value("urn:epcglobal:cbv:bizstep:receiving"),
            "https://ref.gs1.org/cbv/BizStep-receiving"
        );
        assert_eq!(
            value("urn:epcglobal:cbv:sdt:owning_party"),
            "https://ref.gs1.org/cbv/SDT-owning_party"
        );
    }
}
