//! Gossiped attestations: a DSSE envelope in postcard form from a peer,
//! decoded as the consensus actor does and admitted.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::Envelope;
use lotline_fuzz::{admission, assert_canonical, check_json_round_trip};

fuzz_target!(|data: &[u8]| {
    let Ok(envelope) = Envelope::from_bytes(data) else {
        return;
    };
    assert_canonical(data, &envelope, Envelope::to_bytes);
    check_json_round_trip(&envelope);
    // The actor hashes each gossiped envelope to look it up in its pool,
    // then admits it with that id.
    let id = envelope.id();
    let _ = admission().admit_batch(vec![(id, envelope)]);
});
