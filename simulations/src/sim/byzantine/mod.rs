//! Byzantine behaviours, named by what they do. Byzantine nodes act as one
//! coalition (the adversary of the model coordinates them) so that the
//! positive control can break safety when there are more than f of them.

pub mod equivocator;
pub mod silent;

pub use equivocator::Coalition;
