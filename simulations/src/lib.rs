//! Generates deterministic workloads (and, later, fault-injecting
//! simulations) for testing and demonstrating Lotline.
//!
//! Non-features, on purpose: nothing here reads a clock, the OS's randomness
//! or the network; every output is a pure function of a seed, so any run can
//! be replayed from the seed it prints. It does not sign or submit anything
//! itself: callers turn work items into attestations (e.g. with
//! `lotline-sdk`).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used))]

pub mod sim;
pub mod workload;

pub use workload::{Roles, Scale, SupplyChainWorkload, WorkItem, Workload, WorkloadSummary};
