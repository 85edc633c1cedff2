//! EPCIS 2.0 capture and query, without HTTP: the embedded JSON Schema, the
//! capture document reader, the capture job registry and the query engine.
//! The axum handlers live in `api::epcis` and only translate.

pub mod schema;
