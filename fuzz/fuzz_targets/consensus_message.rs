//! `/lotline/consensus/1` frames: a consensus message from a peer, decoded
//! with the cap the actor uses and fed to a running Simplex engine
//! (proposals, votes, certificates, block requests and answers, evidence).
//! The sender is the validator the message claims to come from, as an
//! authenticated peer would be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_consensus::{Input, Message};
use lotline_fuzz::{assert_canonical, engine};
use lotline_node::consensus::bft::MESSAGE_BYTES_MAX;

fuzz_target!(|data: &[u8]| {
    let Ok(message) =
        lotline_core::codec::from_bytes::<Message>("consensus message", data, MESSAGE_BYTES_MAX)
    else {
        return;
    };
    assert_canonical(data, &message, lotline_core::codec::to_bytes);
    let claimed = match &message {
        Message::Proposal(p) => p.notarize.signer,
        Message::Vote(v) => v.signer,
        Message::Evidence(e) => e.signer(),
        _ => 1,
    };
    let from = if (1..4).contains(&claimed) {
        claimed
    } else {
        1
    };
    let mut engine = engine(0);
    let _ = engine.handle(Input::Message { from, message });
});
