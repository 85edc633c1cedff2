//! Event validation. (Being written; see the issue.)

use super::Event;

/// One problem found in an event, naming the field.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct EventProblem {
    /// JSON pointer-ish path, e.g. `event.epcList[2]`.
    pub field: String,
    pub reason: String,
}

/// CBV vocabulary short form: `urn:epcglobal:cbv:bizstep:shipping` and
/// `https://ref.gs1.org/cbv/BizStep-shipping` both become `shipping`.
pub fn normalize_vocabulary(value: &str) -> String {
    if let Some(rest) = value.strip_prefix("urn:epcglobal:cbv:") {
        return rest.rsplit(':').next().unwrap_or(rest).to_owned();
    }
    if let Some(rest) = value.strip_prefix("https://ref.gs1.org/cbv/") {
        return rest.split_once('-').map(|(_, s)| s).unwrap_or(rest).to_owned();
    }
    value.to_owned()
}

impl Event {
    /// Every problem with the event; empty when it is valid.
    pub fn validate(&self) -> Vec<EventProblem> {
        Vec::new()
    }
}
