//! End-to-end tests on four validators in one process (real libp2p, sled,
//! HTTP), as one test binary of their own: they run one at a time
//! (`support::n4::one_at_a_time`), and apart from the one-node tests, which
//! a consortium of four shares two cores badly with. Run one area with
//! `cargo test -p lotline-tests --test four_validators n4f0_commit::`.

mod support;

mod n4_backup_restore;
mod n4f0_commit;
mod n4f1_evidence;
mod n4f1_restart_sync;
