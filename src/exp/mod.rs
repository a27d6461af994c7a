//! Experiment records: what a run of the code used and produced, linked to its git commit
//! and stored in git itself under `refs/trove/exps` (SPEC §7).

pub mod artifacts;
pub mod checkout;
pub mod collect;
pub mod compare;
pub mod mlflow;
pub mod mlflow_registry;
pub mod packages;
pub mod plot;
pub mod query;
pub mod record;
pub mod share;
pub mod store;
pub mod table;

pub use record::{Record, Value};
