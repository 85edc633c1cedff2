//! The consensus stream's records (`u32` length, a kind byte, the body;
//! `net::link`): reading arbitrary bytes never returns a body over its
//! kind's cap, a body read is the bytes after its length and kind, and
//! encoding it again gives the same wire bytes.
#![no_main]

use futures::executor::block_on;
use futures::io::Cursor;
use libfuzzer_sys::fuzz_target;
use lotline_node::net::NetMetrics;
use lotline_node::net::link::{Caps, Kind, encode_record, read_record};

const CAPS: Caps = Caps {
    frame: 4096,
    gossip: 16 * 1024,
};

fuzz_target!(|data: &[u8]| {
    let metrics = NetMetrics::default();
    let Ok((kind, body)) = block_on(read_record(&mut Cursor::new(data), CAPS, &metrics)) else {
        return;
    };
    let cap = match kind {
        Kind::Frame => CAPS.frame,
        Kind::Gossip => CAPS.gossip,
    };
    assert!(body.len() <= cap as usize, "body over its kind's cap");
    assert_eq!(
        &data[5..5 + body.len()],
        body.as_slice(),
        "body is not the bytes after the length and kind"
    );
    let mut wire = Vec::new();
    encode_record(kind, &body, CAPS, &mut wire).expect("a body read within the caps encodes");
    assert_eq!(
        wire.as_slice(),
        &data[..wire.len()],
        "re-encoded record differs"
    );
});
