//! End-to-end tests that start a real Lotline node, as one test binary.
//!
//! Each module is one area (its own doc comment says what it checks); they
//! share `support` (a one-node consortium, a browser). One binary instead of
//! one per file: each links the whole node, and a copy per file cost CI
//! several GB of disk (it ran out) and a link each. The four-validator tests
//! are the binary `four_validators` (four_validators.rs says why).
//! Run one area with `cargo test -p lotline-tests --test end_to_end trace_recall::`.

mod support;

mod access_limits;
mod access_matrix;
mod analytics_readers;
mod epcis_bulk;
mod epcis_capture;
mod epcis_query;
mod n1_bad_input;
mod n1_commit;
mod n1_doctor;
mod public_page;
mod public_resolver;
mod quality_api;
mod trace_recall;
