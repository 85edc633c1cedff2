//! `/lotline/consensus/1` frames: what a peer sends on the consensus
//! channel, decoded with the cap the actor uses. Engine messages are fed to
//! a running Simplex engine (proposals, votes, certificates, block requests
//! and answers, evidence); a proposal by id goes through the same
//! reassembly as in the actor, and its wants and bodies through the
//! proposer's answer and the reassembly. The sender is the validator the
//! message claims to come from, as an authenticated peer would be.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_consensus::relay::{self, Offer, Reassembly};
use lotline_consensus::{Input, Message};
use lotline_fuzz::{assert_canonical, engine};
use lotline_node::consensus::bft::{Frame, MESSAGE_BYTES_MAX};

fuzz_target!(|data: &[u8]| {
    let Ok(frame) =
        lotline_core::codec::from_bytes::<Frame>("consensus frame", data, MESSAGE_BYTES_MAX)
    else {
        return;
    };
    assert_canonical(data, &frame, lotline_core::codec::to_bytes);
    let mut engine = engine(0);
    let mut reassembly = Reassembly::default();
    let message = match frame {
        Frame::Message(message) => message,
        Frame::Proposal(compact) => match reassembly.offer(1, *compact, |_| None) {
            Offer::Whole(proposal) => Message::Proposal(proposal),
            Offer::Want { .. } | Offer::Refused(_) => return,
        },
        Frame::Want { ids, .. } => {
            let _ = relay::answer(&ids, MESSAGE_BYTES_MAX, |_| None);
            return;
        }
        Frame::Bodies { bodies, .. } => {
            let _ = reassembly.receive(bodies);
            return;
        }
    };
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
    let _ = engine.handle(Input::Message { from, message });
});
