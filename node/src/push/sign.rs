//! The signature of a delivery: `X-Lotline-Signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256 of "<t>.<body>">`. The time is inside the MAC so a
//! receiver can refuse old replays; the receiver recomputes the MAC with
//! the shared secret and compares in constant time.

use hmac::{Hmac, KeyInit, Mac};

type HmacSha256 = Hmac<sha2_hmac::Sha256>;

/// The header that carries the signature.
pub const HEADER: &str = "x-lotline-signature";
/// The same signature under the header the EPCIS 2.0 REST bindings name
/// for query subscription callbacks.
pub const GS1_HEADER: &str = "gs1-signature";

/// The header value for `body` sent at `unix_seconds`.
pub fn signature(secret: &[u8], unix_seconds: u64, body: &[u8]) -> String {
    format!(
        "t={unix_seconds},v1={}",
        hex::encode(mac(secret, unix_seconds, body))
    )
}

fn mac(secret: &[u8], unix_seconds: u64, body: &[u8]) -> Vec<u8> {
    // HMAC takes a key of any length; this cannot fail.
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(e) => panic!("HMAC refused a key: {e}"),
    };
    mac.update(unix_seconds.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.finalize().into_bytes().to_vec()
}

/// Checks a header value against `body` (what a receiver does; tests and
/// the documentation's example use it). Constant time in the MAC.
pub fn verify(secret: &[u8], header: &str, body: &[u8]) -> bool {
    let mut time = None;
    let mut given = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => time = t.parse::<u64>().ok(),
            Some(("v1", v)) => given = hex::decode(v).ok(),
            _ => {}
        }
    }
    let (Some(time), Some(given)) = (time, given) else {
        return false;
    };
    let mut mac = match HmacSha256::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return false,
    };
    mac.update(time.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    mac.verify_slice(&given).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_4231_case_2() {
        // HMAC-SHA256 of "what do ya want for nothing?" with key "Jefe".
        let mut mac = HmacSha256::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        assert_eq!(
            hex::encode(mac.finalize().into_bytes()),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_signature_verifies_and_any_change_fails() {
        let header = signature(b"secret", 1_700_000_000, b"{\"a\":1}");
        assert!(header.starts_with("t=1700000000,v1="));
        assert!(verify(b"secret", &header, b"{\"a\":1}"));
        assert!(!verify(b"secret", &header, b"{\"a\":2}"));
        assert!(!verify(b"other", &header, b"{\"a\":1}"));
        let moved = header.replace("t=1700000000", "t=1700000001");
        assert!(!verify(b"secret", &moved, b"{\"a\":1}"));
        assert!(!verify(b"secret", "garbage", b"{\"a\":1}"));
    }
}
