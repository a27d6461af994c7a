//! The shipped example scripts run to completion.

use std::path::Path;
use std::process::Command;

use crate::common::*;

#[test]
fn quickstart_example_runs() {
    run_example("quickstart.sh");
}

#[test]
fn baseline_example_runs() {
    run_example("baseline.sh");
}

#[test]
fn experiments_example_runs() {
    run_example("experiments.sh");
}

fn run_example(name: &str) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    assert!(script.is_file(), "{} is missing", script.display());
    let env = Env::plain();
    let mut cmd = Command::new("bash");
    cmd.arg(&script).current_dir(&env.root);
    env.clean_env(&mut cmd);
    cmd.env("TROVE", BIN);
    let out = cmd.output().expect("run bash");
    assert!(
        out.status.success(),
        "{name} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
