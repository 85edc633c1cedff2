//! A statement (the signed payload). The target signs the fuzzed bytes with
//! the key of the org they name, so admission runs every check behind the
//! signature: statement fields, membership, write policy, EPCIS rules.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::lineage;
use lotline_core::{Envelope, Statement};
use lotline_fuzz::{admission, check_json_round_trip, client_key, org_index};

fuzz_target!(|data: &[u8]| {
    let statement = Statement::from_payload(data).ok();
    let signer = statement
        .as_ref()
        .and_then(|s| org_index(&s.org))
        .unwrap_or(0);
    let envelope = Envelope::sign(data.to_vec(), &client_key(signer));
    let verdict = admission().admit(envelope);
    if let Some(statement) = statement {
        check_json_round_trip(&statement);
        let _ = lineage::derive(&statement.event);
        let _ = statement.event.canonical_identifiers();
        let _ = statement.event.event_time_ms();
    } else {
        assert!(
            verdict.is_err(),
            "admitted a payload that is not a statement"
        );
    }
});
