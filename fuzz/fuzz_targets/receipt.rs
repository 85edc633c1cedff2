//! Receipts as `lotline verify` and the SDK read them: postcard, or JSON
//! when the first byte is `{`; then offline verification against the
//! genesis (membership, signatures, Merkle path, finality).
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::Receipt;
use lotline_fuzz::{assert_canonical, check_json_round_trip, genesis};

fuzz_target!(|data: &[u8]| {
    let receipt = if data.first() == Some(&b'{') {
        let Ok(receipt) = Receipt::from_json(data) else {
            return;
        };
        check_json_round_trip(&receipt);
        receipt
    } else {
        let Ok(receipt) = Receipt::from_bytes(data) else {
            return;
        };
        assert_canonical(data, &receipt, Receipt::to_bytes);
        receipt
    };
    let _ = genesis().verify_receipt(&receipt);
});
