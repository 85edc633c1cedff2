//! The GS1 EPCIS 2.0 event model (JSON-LD form) and Lotline's namespaced
//! quality extension.
//!
//! Events are kept close to the standard's JSON so that what an ERP sends is
//! what members sign and what a regulator reads. Standard fields are typed;
//! user extensions (keys with a namespace prefix such as `example:myField`)
//! are kept verbatim. Any other unknown key is a validation error, never
//! silently dropped.

pub mod cbv;
mod event;
pub mod event_hash;
pub mod master_data;
mod quality;
mod validate;

pub use event::*;
pub use quality::*;
pub use validate::{EventProblem, normalize_vocabulary};
