//! A block in postcard form (block log, proposals, block sync): one
//! encoding per value, the structural checks never panic, and checking it
//! with its own ids (`check_hashed`, the block log's check of a block the
//! engine hashed) gives `check_body`'s verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_core::Block;
use lotline_fuzz::{assert_canonical, genesis};

fuzz_target!(|data: &[u8]| {
    let Ok(block) = Block::from_bytes(data) else {
        return;
    };
    assert_canonical(data, &block, Block::to_bytes);
    let chain_id = genesis().chain_id();
    let _ = block.hash();
    let ids = block.ids();
    assert_eq!(
        block.check_hashed(&chain_id, &ids),
        block.check_body(&chain_id).map(|_| ()),
        "check_hashed with the body's own ids differs from check_body"
    );
    let _ = block.check_link(None);
    let _ = block.check_link(Some(&block.header));
});
