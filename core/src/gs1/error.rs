//! What can be wrong with a GS1 identifier, one variant per problem, each
//! carrying the value that proves it.

/// Why a string is not an acceptable identifier.
///
/// `key` and `field` name the part at fault in words (`"GTIN"`, `"serial
/// (AI 21)"`); `value` and `input` are what was sent (identifiers are bounded
/// by [`crate::limits::IDENTIFIER_BYTES_MAX`] before anything else is checked,
/// so these stay small).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Gs1Error {
    #[error("the identifier is empty")]
    Empty,
    #[error("the identifier is {len} bytes long, more than the {max} allowed")]
    TooLong { len: usize, max: usize },
    #[error("{input:?} is neither a GS1 Digital Link, an EPC URN nor an absolute URI")]
    NotAUri { input: String },
    #[error("{key} {value:?} contains {ch:?}; only digits are allowed")]
    NotDigits {
        key: &'static str,
        value: String,
        ch: char,
    },
    #[error("{key} {value:?} has {len} digits; expected {expected}")]
    KeyLength {
        key: &'static str,
        value: String,
        len: usize,
        expected: &'static str,
    },
    #[error("{key} {value:?} has check digit {got}, expected {expected}")]
    CheckDigit {
        key: &'static str,
        value: String,
        expected: u8,
        got: u8,
    },
    #[error("{field} {value:?} contains {ch:?}, which is not in GS1 AI encodable character set 82")]
    BadChar {
        field: &'static str,
        value: String,
        ch: char,
    },
    #[error("{field} {value:?} has {len} characters; expected 1 to 20")]
    ValueLength {
        field: &'static str,
        value: String,
        len: usize,
    },
    #[error("{input:?}: AI ({ai}) is not a key qualifier of AI ({key}) in a Digital Link path")]
    UnknownAi {
        input: String,
        ai: String,
        key: String,
    },
    #[error(
        "{input:?}: AI ({ai}) may not follow AI ({after}): qualifiers come in the standard \
         order, each at most once"
    )]
    AiOrder {
        input: String,
        ai: String,
        after: String,
    },
    #[error("{input:?}: AI ({ai}) is a valid GS1 qualifier that Lotline identifiers do not model")]
    UnsupportedQualifier { input: String, ai: String },
    #[error("{input:?}: AI ({ai}) has no value")]
    MissingValue { input: String, ai: String },
    #[error("{input:?}: {escape:?} is not a valid percent-escape of UTF-8")]
    PercentEncoding { input: String, escape: String },
    #[error("{input:?}: an EPC {scheme} URN has {expected} '.'-separated parts, found {found}")]
    UrnParts {
        input: String,
        scheme: &'static str,
        expected: usize,
        found: usize,
    },
    #[error(
        "{input:?}: the company prefix ({prefix_digits} digits) and the {reference} \
         ({reference_digits} digits) must add up to {expected} digits"
    )]
    UrnDigitCount {
        input: String,
        reference: &'static str,
        prefix_digits: usize,
        reference_digits: usize,
        expected: usize,
    },
    #[error(
        "{input:?}: an EPC pattern is accepted only as a product class, CompanyPrefix.ItemRef.*"
    )]
    UrnPattern { input: String },
    #[error("a GS1 Company Prefix has 6 to 12 digits, not {len}")]
    CompanyPrefixLength { len: usize },
    #[error("{input:?} is not a GS1 key and has no EPC URN")]
    NotAGs1Key { input: String },
}
