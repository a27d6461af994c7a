//! End-to-end tests of the `trove` binary in real git repositories.

mod common;

#[path = "support/sshd.rs"]
mod sshd;

#[path = "support/s3.rs"]
mod s3;

#[path = "cli/init.rs"]
mod init;

#[path = "cli/add.rs"]
mod add;

#[path = "cli/formats.rs"]
mod formats;

#[path = "cli/status.rs"]
mod status;

#[path = "cli/checkout.rs"]
mod checkout;

#[path = "cli/commit_ls.rs"]
mod commit_ls;

#[path = "cli/remove_move.rs"]
mod remove_move;

#[path = "cli/config.rs"]
mod config;

#[path = "cli/errors.rs"]
mod errors;

#[path = "cli/crash.rs"]
mod crash;

#[path = "cli/output.rs"]
mod output;

#[path = "cli/examples.rs"]
mod examples;

#[path = "cli/remotes.rs"]
mod remotes;

#[path = "cli/history.rs"]
mod history;

#[path = "cli/exp_share.rs"]
mod exp_share;

#[path = "cli/exp.rs"]
mod exp;

#[path = "cli/exp_plot_sync.rs"]
mod exp_plot_sync;

#[path = "cli/gc_verify_hooks.rs"]
mod gc_verify_hooks;

#[path = "cli/hostile.rs"]
mod hostile;

#[path = "cli/secrets.rs"]
mod secrets;

#[path = "cli/faults.rs"]
mod faults;

#[path = "cli/layout2.rs"]
mod layout2;

#[path = "cli/prune.rs"]
mod prune;

#[path = "cli/verify_remote.rs"]
mod verify_remote;

#[path = "cli/upgrade.rs"]
mod upgrade;

#[path = "cli/s3_remote.rs"]
mod s3_remote;

#[path = "cli/model.rs"]
mod model;

#[path = "cli/import.rs"]
mod import;
