//! `silent`: a validator that never sends anything (a crashed or cut-off
//! organisation). It runs no engine: [`crate::sim::node::Role::Silent`]
//! nodes drop every input.
