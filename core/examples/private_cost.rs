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
use lotline_core::private::{EncryptionSecretKey, PrivateSection, Suite, seal, seal_as};
use lotline_core::statement::{STATEMENT_VERSION, Statement};

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
        version: Statement::version_for(&Some(section.clone())),
        event: public.clone(),
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
    for suite in [Suite::Object, Suite::Compact] {
        let section = match seal_as(&plain.event, &paths, &recipients, None, suite) {
            Ok((_, section)) => section,
            Err(e) => panic!("seal: {e}"),
        };
        print_parts(&plain, &public, section);
    }
}

/// Where a private statement's bytes go: the section's JSON and the raw
/// bytes of its parts, the envelope's JSON (what a client sends).
fn print_parts(plain: &Statement, public: &Event, section: PrivateSection) {
    let section_json = serde_json::to_vec(&section).map_or(0, |j| j.len());
    let wraps: usize = section
        .recipients
        .iter()
        .map(|r| r.org.len() + 32 + 32 + r.wrapped_key.len())
        .sum();
    let commitments: usize = section.fields.iter().map(|f| f.path.len() + 32).sum();
    let statement = Statement {
        version: Statement::version_for(&Some(section.clone())),
        event: public.clone(),
        private: Some(section.clone()),
        ..plain.clone()
    };
    let payload = statement.to_payload().len();
    let envelope_json = serde_json::to_vec(&statement.sign(&SigningKey::from_seed(&[1; 32])))
        .map_or(0, |j| j.len());
    println!(
        "{}: statement {payload} B (x{:.2} plain), envelope JSON {envelope_json} B; section JSON {section_json} B from raw: ciphertext {} B, {} wraps {wraps} B (org, key, enc, wrap), commitments {commitments} B (path, hash)",
        section.suite,
        payload as f64 / plain.to_payload().len() as f64,
        section.ciphertext.len(),
        section.recipients.len(),
    );
}
