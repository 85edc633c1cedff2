//! `POST /v1/attestations`: a DSSE envelope as JSON, through the node's
//! admission (decode, shape, statement, policy, EPCIS rules, signature).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::Envelope;
use lotline_fuzz::{admission, check_json_round_trip};
use lotline_node::admission::NoGuard;

fuzz_target!(|data: &[u8]| {
    let _ = admission().admit_json(data, &NoGuard);
    if let Ok(envelope) = Envelope::from_json(data) {
        check_json_round_trip(&envelope);
        let _ = envelope.id();
        let _ = envelope.verify();
        // The same envelope gossiped in postcard form decodes back to itself.
        let bytes = envelope.to_bytes();
        match Envelope::from_bytes(&bytes) {
            Ok(back) => assert_eq!(back, envelope, "postcard round trip changed the envelope"),
            Err(e) => {
                panic!("an accepted JSON envelope does not decode from its postcard form: {e}")
            }
        }
    }
});
