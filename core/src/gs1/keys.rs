//! The GS1 keys as validated newtypes, and the rules for the alphanumeric
//! qualifiers (lot, serial, GLN extension).

use std::fmt;

use super::Gs1Error;
use super::check_digit::check_digit;

/// The longest lot (AI 10), serial (AI 21) or GLN extension (AI 254).
pub const AI_VALUE_CHARS_MAX: usize = 20;

/// GS1 AI encodable character set 82: `!"%&'()*+,-./0-9:;<=>?A-Z_a-z`.
pub fn is_cset82(c: char) -> bool {
    c.is_ascii_alphanumeric()
        || matches!(
            c,
            '!' | '"'
                | '%'
                | '&'
                | '\''
                | '('
                | ')'
                | '*'
                | '+'
                | ','
                | '-'
                | '.'
                | '/'
                | ':'
                | ';'
                | '<'
                | '='
                | '>'
                | '?'
                | '_'
        )
}

/// Checks a lot, serial or extension: 1 to 20 characters of set 82.
pub(crate) fn check_ai_value(field: &'static str, value: &str) -> Result<(), Gs1Error> {
    let len = value.chars().count();
    if len == 0 || len > AI_VALUE_CHARS_MAX {
        return Err(Gs1Error::ValueLength {
            field,
            value: value.to_owned(),
            len,
        });
    }
    match value.chars().find(|c| !is_cset82(*c)) {
        Some(ch) => Err(Gs1Error::BadChar {
            field,
            value: value.to_owned(),
            ch,
        }),
        None => Ok(()),
    }
}

pub(crate) const LOT: &str = "lot (AI 10)";
pub(crate) const SERIAL: &str = "serial (AI 21)";
pub(crate) const GLN_EXTENSION: &str = "GLN extension (AI 254)";

/// Digits only, one of the accepted lengths, correct check digit; returns the
/// key left-padded with zeros to `padded` digits.
fn numeric_key(
    key: &'static str,
    value: &str,
    lengths: &[usize],
    expected: &'static str,
    padded: usize,
) -> Result<String, Gs1Error> {
    if let Some(ch) = value.chars().find(|c| !c.is_ascii_digit()) {
        return Err(Gs1Error::NotDigits {
            key,
            value: value.to_owned(),
            ch,
        });
    }
    if !lengths.contains(&value.len()) {
        return Err(Gs1Error::KeyLength {
            key,
            value: value.to_owned(),
            len: value.len(),
            expected,
        });
    }
    let (body, last) = value.split_at(value.len() - 1);
    let got = last.bytes().next().map_or(0, |b| b - b'0');
    let expected_digit = check_digit(body).unwrap_or(0);
    if got != expected_digit {
        return Err(Gs1Error::CheckDigit {
            key,
            value: value.to_owned(),
            expected: expected_digit,
            got,
        });
    }
    Ok(format!("{value:0>padded$}"))
}

/// Appends the check digit to a body of exactly `len` digits.
fn with_check_digit(key: &'static str, body: &str, len: usize) -> Result<String, Gs1Error> {
    if let Some(ch) = body.chars().find(|c| !c.is_ascii_digit()) {
        return Err(Gs1Error::NotDigits {
            key,
            value: body.to_owned(),
            ch,
        });
    }
    if body.len() != len {
        let expected = match key {
            "GTIN" => "13 (without the check digit)",
            "SSCC" => "17 (without the check digit)",
            _ => "12 (without the check digit)",
        };
        return Err(Gs1Error::KeyLength {
            key,
            value: body.to_owned(),
            len: body.len(),
            expected,
        });
    }
    let digit = check_digit(body).unwrap_or(0);
    Ok(format!("{body}{digit}"))
}

/// A Global Trade Item Number, always held as GTIN-14 (GTIN-8/12/13 are
/// left-padded with zeros), check digit verified.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gtin(String);

impl Gtin {
    /// Accepts GTIN-8, -12, -13 or -14 with a correct check digit.
    pub fn parse(s: &str) -> Result<Gtin, Gs1Error> {
        numeric_key("GTIN", s, &[8, 12, 13, 14], "8, 12, 13 or 14", 14).map(Gtin)
    }

    /// Completes 13 digits (indicator + company prefix + item reference)
    /// with their check digit.
    pub fn from_body(body: &str) -> Result<Gtin, Gs1Error> {
        with_check_digit("GTIN", body, 13).map(Gtin)
    }

    /// The 14 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Serial Shipping Container Code: 18 digits, check digit verified.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Sscc(String);

impl Sscc {
    pub fn parse(s: &str) -> Result<Sscc, Gs1Error> {
        numeric_key("SSCC", s, &[18], "18", 18).map(Sscc)
    }

    /// Completes 17 digits (extension + company prefix + serial reference)
    /// with their check digit.
    pub fn from_body(body: &str) -> Result<Sscc, Gs1Error> {
        with_check_digit("SSCC", body, 17).map(Sscc)
    }

    /// The 18 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Global Location Number: 13 digits, check digit verified.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Gln(String);

impl Gln {
    pub fn parse(s: &str) -> Result<Gln, Gs1Error> {
        numeric_key("GLN", s, &[13], "13", 13).map(Gln)
    }

    /// Completes 12 digits (company prefix + location reference) with their
    /// check digit.
    pub fn from_body(body: &str) -> Result<Gln, Gs1Error> {
        with_check_digit("GLN", body, 12).map(Gln)
    }

    /// The 13 digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

macro_rules! display_and_from_str {
    ($($t:ty),*) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::str::FromStr for $t {
            type Err = Gs1Error;
            fn from_str(s: &str) -> Result<Self, Gs1Error> {
                <$t>::parse(s)
            }
        }
    )*};
}

display_and_from_str!(Gtin, Sscc, Gln);
