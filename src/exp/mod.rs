//! Experiment records: what a run of the code used and produced, linked to its git commit
//! and stored in git itself under `refs/trove/exps` (SPEC §7).

pub mod record;
pub mod share;
pub mod store;

pub use record::{Record, Value};
