//! A chunk of a measurement series as sled holds it (keyspace `u`,
//! `lotline_node::quality::chunk`): stored bytes a damaged or foreign
//! index can hand a chart. Property: any input walks to points or to an
//! error without panicking, and points that decode encode to a chunk that
//! decodes to the same points.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lotline_node::quality::chunk::{self, PointRef};

fuzz_target!(|data: &[u8]| {
    let Ok(walk) = chunk::points(data) else {
        return;
    };
    let Ok(points) = walk.collect::<Result<Vec<PointRef<'_>>, _>>() else {
        return;
    };
    let mut again = Vec::new();
    for point in &points {
        chunk::append(&mut again, point).expect("a decoded point encodes");
    }
    if points.is_empty() {
        return;
    }
    assert_eq!(chunk::count(&again).ok(), Some(points.len() as u32));
    let back: Vec<PointRef<'_>> = chunk::points(&again)
        .expect("own header")
        .collect::<Result<_, _>>()
        .expect("own records");
    let bits = |p: &PointRef<'_>| {
        (
            p.value.to_bits(),
            p.spec_min.map(f64::to_bits),
            p.spec_max.map(f64::to_bits),
        )
    };
    for (a, b) in points.iter().zip(&back) {
        assert_eq!(bits(a), bits(b));
        assert_eq!(
            (
                a.at,
                a.uom,
                a.subject,
                a.org,
                a.event_time,
                a.event_id,
                a.biz_step
            ),
            (
                b.at,
                b.uom,
                b.subject,
                b.org,
                b.event_time,
                b.event_id,
                b.biz_step
            )
        );
        assert_eq!(
            (a.attestation, a.event_time_ms, a.private),
            (b.attestation, b.event_time_ms, b.private)
        );
    }
});
