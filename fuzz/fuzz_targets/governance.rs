//! Governance input as a node and `lotline verify` read it: a governance
//! envelope (JSON) judged for admission against the fixture genesis (every
//! malformed, unsigned or under-signed one refused with a reason, never a
//! panic), and a membership-history file followed from the genesis.
#![no_main]

use std::sync::Arc;

use libfuzzer_sys::fuzz_target;
use lotline_core::Envelope;
use lotline_fuzz::{check_json_round_trip, genesis};
use lotline_genesis::governance::{History, HistoryFile};

fuzz_target!(|data: &[u8]| {
    let history = History::new(Arc::new(genesis().clone()));
    if let Ok(file) = HistoryFile::from_json(data) {
        check_json_round_trip(&file);
        let _ = file.follow(Arc::new(genesis().clone()));
        return;
    }
    let Ok(envelope) = Envelope::from_json(data) else {
        return;
    };
    if let Ok((proposal, approvers)) = history.approve(&envelope, 1) {
        assert!(approvers.len() >= history.threshold(&history.at(1)));
        assert_eq!(proposal.chain_id, genesis().chain_id());
        let mut recorded = history.clone();
        recorded
            .record(1, 0, &envelope)
            .expect("an approved transaction records");
        let _ = recorded.at(u64::MAX);
    }
    let _ = history.check_new(&envelope, 1);
});
