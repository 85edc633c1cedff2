//! Capture jobs: what `GET /epcis/capture/{captureID}` reports.
//!
//! A job is created when a capture starts, reports progress while its
//! document streams in (events captured, committed, rejected), and finishes
//! when every captured event is committed or the wait for commit gives up.
//! A capture refused as a whole (nothing captured) leaves no job. The registry is bounded:
//! it keeps the newest [`JOBS_MAX`] jobs and evicts the oldest, so a client
//! that never asks costs nothing forever. Jobs live in memory only; after a
//! restart the events themselves are still found by query, the jobs are not.

use std::collections::VecDeque;
use std::sync::Mutex;

use lotline_core::api::FieldProblem;
use lotline_core::attestation::AttestationId;
use serde::Serialize;

/// Jobs kept (oldest evicted first).
pub const JOBS_MAX: usize = 1024;
/// Per-event errors kept per job (a 1000-event document could have 1000;
/// a larger one reports how many in `lotline:eventsRejected`).
pub const JOB_ERRORS_MAX: usize = 1000;
/// Captured events listed per job (the first ones); a larger document is
/// followed by the counts, so a job stays small whatever it captured.
pub const JOB_EVENTS_LISTED_MAX: usize = 1000;

/// `GS1-Capture-Error-Behaviour`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Behaviour {
    /// All events or none (the default).
    #[default]
    Rollback,
    /// Capture the valid events, report the others.
    Proceed,
}

impl Behaviour {
    pub fn parse(value: &str) -> Option<Behaviour> {
        match value.trim().to_ascii_lowercase().as_str() {
            "rollback" => Some(Behaviour::Rollback),
            "proceed" => Some(Behaviour::Proceed),
            _ => None,
        }
    }
}

/// One captured event of a job: which attestation carries it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapturedEvent {
    #[serde(rename = "eventID")]
    pub event_id: String,
    pub attestation: AttestationId,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
}

/// The CaptureJob document of the EPCIS REST bindings, plus the
/// attestations that carry the captured events (a namespaced extension).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(rename = "captureID")]
    pub capture_id: String,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished_at: Option<String>,
    pub running: bool,
    pub success: bool,
    pub capture_error_behaviour: Behaviour,
    pub errors: Vec<FieldProblem>,
    /// The first [`JOB_EVENTS_LISTED_MAX`] captured events.
    #[serde(rename = "lotline:events")]
    pub events: Vec<CapturedEvent>,
    /// Events in the mempool or committed so far.
    #[serde(rename = "lotline:eventsCaptured")]
    pub events_captured: u64,
    /// Events committed so far.
    #[serde(rename = "lotline:eventsCommitted")]
    pub events_committed: u64,
    /// Events refused (under `proceed`; under `rollback` the request is).
    #[serde(rename = "lotline:eventsRejected")]
    pub events_rejected: u64,
}

/// The bounded registry.
#[derive(Debug, Default)]
pub struct Jobs {
    jobs: Mutex<VecDeque<Job>>,
}

impl Jobs {
    /// Registers a new job (evicting the oldest beyond [`JOBS_MAX`]).
    pub fn insert(&self, mut job: Job) {
        bound_errors(&mut job);
        let mut jobs = crate::state::lock(&self.jobs);
        while jobs.len() >= JOBS_MAX {
            jobs.pop_front();
        }
        jobs.push_back(job);
    }

    pub fn get(&self, capture_id: &str) -> Option<Job> {
        let jobs = crate::state::lock(&self.jobs);
        jobs.iter().find(|j| j.capture_id == capture_id).cloned()
    }

    /// Newest first, at most `limit`.
    pub fn list(&self, limit: usize) -> Vec<Job> {
        let jobs = crate::state::lock(&self.jobs);
        jobs.iter().rev().take(limit).cloned().collect()
    }

    /// Forgets a job (a refused capture that captured nothing).
    pub fn remove(&self, capture_id: &str) {
        let mut jobs = crate::state::lock(&self.jobs);
        jobs.retain(|j| j.capture_id != capture_id);
    }

    /// Changes a job if it is still kept.
    pub fn update(&self, capture_id: &str, change: impl FnOnce(&mut Job)) {
        let mut jobs = crate::state::lock(&self.jobs);
        if let Some(job) = jobs.iter_mut().find(|j| j.capture_id == capture_id) {
            change(job);
            bound_errors(job);
        }
    }
}

/// Kept errors are few and short: they may quote the captured document, and
/// a job outlives its request. So are listed events.
fn bound_errors(job: &mut Job) {
    job.errors.truncate(JOB_ERRORS_MAX);
    job.events.truncate(JOB_EVENTS_LISTED_MAX);
    for error in &mut job.errors {
        *error = error.bounded();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(id: usize) -> Job {
        Job {
            capture_id: format!("c{id}"),
            created_at: "2024-01-01T00:00:00Z".into(),
            finished_at: None,
            running: true,
            success: true,
            capture_error_behaviour: Behaviour::Rollback,
            errors: vec![],
            events: vec![],
            events_captured: 0,
            events_committed: 0,
            events_rejected: 0,
        }
    }

    #[test]
    fn the_registry_keeps_only_the_newest_jobs() {
        let jobs = Jobs::default();
        for i in 0..JOBS_MAX + 5 {
            jobs.insert(job(i));
        }
        assert!(jobs.get("c0").is_none());
        assert!(jobs.get("c4").is_none());
        assert!(jobs.get("c5").is_some());
        assert_eq!(jobs.list(2)[0].capture_id, format!("c{}", JOBS_MAX + 4));
        jobs.update("c5", |j| j.running = false);
        assert!(!jobs.get("c5").unwrap().running);
    }

    #[test]
    fn behaviour_header_values() {
        assert_eq!(Behaviour::parse("rollback"), Some(Behaviour::Rollback));
        assert_eq!(Behaviour::parse(" Proceed"), Some(Behaviour::Proceed));
        assert_eq!(Behaviour::parse("retry"), None);
    }
}
