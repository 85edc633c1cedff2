//! What a private section costs per attestation (issue 14): sealing with
//! 1 and 3 recipients (so the cost of one more HPKE wrap), opening, and
//! the statement's size, each as a ratio to the bound measured in the same
//! run: one Ed25519 (ZIP-215) verify of the same statement's envelope,
//! the check every node already does once per attestation.
//!
//! ```sh
//! flock /work/coord/release.lock cargo run --release -p lotline-core --example private_cost
//! ```

use std::time::Instant;

use lotline_core::SigningKey;
use lotline_core::epcis::Event;
use lotline_core::private::{EncryptionSecretKey, seal};
use lotline_core::statement::{STATEMENT_VERSION, STATEMENT_VERSION_PRIVATE, Statement};

fn event() -> Event {
    let json = serde_json::json!({
        "type": "ObjectEvent",
        "eventTime": "2026-03-02T08:00:00.000Z",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "quantityList": [{"epcClass": "https://id.gs1.org/01/09506000134352/10/LOT-1", "quantity": 500.0, "uom": "KGM"}],
        "readPoint": {"id": "https://id.gs1.org/414/9506000134376"},
        "bizTransactionList": [{"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:9506000134352:PO-4711"}],
        "lotline:quality": {
            "kind": "inspection", "result": "pass", "method": "GB/T 1040 tensile test",
            "measurements": [{"name": "tensile strength", "value": 42.5, "uom": "MPA", "specMin": 40.0, "specMax": 50.0}]
        }
    });
    match serde_json::from_value(json) {
        Ok(event) => event,
        Err(e) => panic!("bench event: {e}"),
    }
}

/// Runs `f` `n` times; operations per second.
fn rate(n: u32, mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..n {
        f();
    }
    f64::from(n) / start.elapsed().as_secs_f64()
}

fn main() {
    let n = 2_000;
    let signer = SigningKey::from_seed(&[1; 32]);
    let keys: Vec<EncryptionSecretKey> = (1..=3u8)
        .map(|i| EncryptionSecretKey::derive(&[i; 32]))
        .collect();
    let recipients: Vec<(String, _)> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| (format!("org-{i}"), k.public_key()))
        .collect();
    let paths = vec![
        "/lotline:quality/method".to_owned(),
        "/lotline:quality/measurements".to_owned(),
        "/bizTransactionList".to_owned(),
    ];
    let plain = Statement {
        version: STATEMENT_VERSION,
        chain_id: lotline_core::Digest([7; 32]),
        org: "org-0".into(),
        key: signer.public_key(),
        issued_at_ms: 1_772_438_400_000,
        nonce: "bench".into(),
        event: event(),
        private: None,
    };
    let envelope = plain.sign(&signer);
    let bound = rate(n, || {
        assert!(envelope.verify().is_ok());
    });
    let seal1 = rate(n, || {
        assert!(seal(&plain.event, &paths, &recipients[..1]).is_ok());
    });
    let seal3 = rate(n, || {
        assert!(seal(&plain.event, &paths, &recipients).is_ok());
    });
    let (public, section) = match seal(&plain.event, &paths, &recipients) {
        Ok(sealed) => sealed,
        Err(e) => panic!("seal: {e}"),
    };
    let open = rate(n, || {
        assert!(section.open("org-1", &keys[1]).is_ok());
    });
    let private = Statement {
        version: STATEMENT_VERSION_PRIVATE,
        event: public,
        private: Some(section),
        ..plain.clone()
    };
    let wrap_us = (1e6 / seal3 - 1e6 / seal1) / 2.0;
    let verify_us = 1e6 / bound;
    println!("one core, {n} iterations each");
    println!(
        "bound: Ed25519 verify of the envelope      {bound:>9.0}/s  {verify_us:>6.1} us  1.00"
    );
    for (what, r) in [
        ("seal, 3 fields, 1 recipient", seal1),
        ("seal, 3 fields, 3 recipients", seal3),
        ("open (unwrap + decrypt + commitments)", open),
    ] {
        println!(
            "{what:<42} {r:>9.0}/s  {:>6.1} us  {:.2} of the bound's time",
            1e6 / r,
            bound / r
        );
    }
    println!(
        "one more recipient (HPKE wrap)             {wrap_us:>17.1} us  {:.2} of the bound's time",
        wrap_us / verify_us
    );
    println!(
        "statement bytes: plain {} -> private, 3 recipients {} (x{:.2})",
        plain.to_payload().len(),
        private.to_payload().len(),
        private.to_payload().len() as f64 / plain.to_payload().len() as f64
    );
}
