//! The request-response frame codec (`u32` length prefix, capped): reading
//! arbitrary bytes never returns more than the cap, a frame read is the
//! bytes after its prefix, and writing it back gives the same wire bytes.
#![no_main]

use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use lotline_node::net::NetMetrics;
use lotline_node::net::codec::{read_frame, write_frame};

const CAP: u32 = 4096;

fuzz_target!(|data: &[u8]| {
    let metrics = NetMetrics::default();
    let Ok(frame) = block_on(read_frame(&mut Cursor::new(data), CAP, &metrics)) else {
        return;
    };
    assert!(frame.len() <= CAP as usize, "frame over the cap");
    assert_eq!(
        &data[4..4 + frame.len()],
        frame.as_slice(),
        "frame is not the bytes after the prefix"
    );
    let mut wire = Vec::new();
    block_on(write_frame(&mut wire, &frame, CAP)).unwrap_or_else(|e| panic!("write back: {e}"));
    assert_eq!(
        wire.as_slice(),
        &data[..wire.len()],
        "re-written frame differs"
    );
});
