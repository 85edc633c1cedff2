//! `/lotline/sync/1`: a block-sync request (served from the block log) and
//! a block-sync answer (finalized blocks with finality proofs), decoded
//! with the actor's caps; the answer's records are fed to a running engine
//! as the actor does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_consensus::Input;
use lotline_fuzz::{assert_canonical, engine};
use lotline_node::consensus::bft::{SYNC_ANSWER_BYTES_MAX, SyncRequest, SyncResponse};
use lotline_node::store::BlockRecord;

fuzz_target!(|data: &[u8]| {
    if let Ok(request) = lotline_core::codec::from_bytes::<SyncRequest>("sync request", data, 64) {
        assert_canonical(data, &request, lotline_core::codec::to_bytes);
    }
    if let Ok(record) = BlockRecord::from_bytes(data) {
        assert_canonical(data, &record, BlockRecord::to_bytes);
    }
    let Ok(response) = lotline_core::codec::from_bytes::<SyncResponse>(
        "sync response",
        data,
        SYNC_ANSWER_BYTES_MAX,
    ) else {
        return;
    };
    assert_canonical(data, &response, lotline_core::codec::to_bytes);
    let mut engine = engine(0);
    for record in response.records {
        let _ = engine.handle(Input::Synced {
            block: record.block,
            finality: record.finality,
        });
    }
});
