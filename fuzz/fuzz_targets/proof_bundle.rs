//! Proof bundles (regulator reports, `lotline verify`): JSON, then every
//! receipt verified by the SDK against the genesis.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::bundle::ProofBundle;
use lotline_fuzz::{check_json_round_trip, genesis};

fuzz_target!(|data: &[u8]| {
    let _ = ProofBundle::sniff(data);
    let Ok(bundle) = ProofBundle::from_json(data) else {
        return;
    };
    check_json_round_trip(&bundle);
    let report = lotline_sdk::verify_bundle(&bundle, genesis());
    let _ = report.all_ok();
});
