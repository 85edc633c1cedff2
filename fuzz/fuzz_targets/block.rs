//! A block in postcard form (block log, proposals, block sync): one
//! encoding per value, and the structural checks never panic.
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
    let _ = block.ids();
    let _ = block.check_body(&chain_id);
    let _ = block.check_link(None);
    let _ = block.check_link(Some(&block.header));
});
