//! The GS1 mod-10 check digit shared by GTIN, SSCC and GLN.

/// The check digit for `body` (every digit of the key except the last).
///
/// From the right, digits are weighted 3, 1, 3, 1, ...; the check digit
/// brings the weighted sum up to a multiple of ten. `None` if `body` holds
/// anything but ASCII digits.
pub fn check_digit(body: &str) -> Option<u8> {
    let mut sum = 0u32;
    for (i, b) in body.bytes().rev().enumerate() {
        if !b.is_ascii_digit() {
            return None;
        }
        let weight = if i % 2 == 0 { 3 } else { 1 };
        sum += u32::from(b - b'0') * weight;
    }
    // (10 - sum % 10) % 10 is at most 9.
    Some(((10 - sum % 10) % 10) as u8)
}

#[cfg(test)]
mod tests {
    use super::check_digit;

    #[test]
    fn known_keys() {
        assert_eq!(check_digit("0950600013435"), Some(2)); // GTIN 09506000134352
        assert_eq!(check_digit("401234500000"), Some(9)); // GTIN-13 4012345000009
        assert_eq!(check_digit("03600029145"), Some(2)); // GTIN-12 036000291452
        assert_eq!(check_digit("9638507"), Some(4)); // GTIN-8 96385074
        assert_eq!(check_digit("12a"), None);
    }
}
