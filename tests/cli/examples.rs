//! The shipped example scripts run to completion, both the ways their headers show:
//! with `trove` found on PATH, and with `TROVE` naming the binary.

use std::path::Path;
use std::process::Command;

use crate::common::*;

/// How a script finds the binary.
#[derive(Clone, Copy, Debug)]
enum Binary {
    /// `bash examples/NAME.sh` with the binary's folder first on PATH and TROVE unset.
    OnPath,
    /// `TROVE=/path/to/trove bash examples/NAME.sh`.
    Named,
}

#[test]
fn quickstart_example_runs() {
    run_example("quickstart.sh", Binary::OnPath);
    run_example("quickstart.sh", Binary::Named);
}

#[test]
fn baseline_example_runs() {
    run_example("baseline.sh", Binary::OnPath);
    run_example("baseline.sh", Binary::Named);
}

#[test]
fn experiments_example_runs() {
    run_example("experiments.sh", Binary::OnPath);
    run_example("experiments.sh", Binary::Named);
}

#[test]
fn remotes_example_runs() {
    run_example("remotes.sh", Binary::OnPath);
    run_example("remotes.sh", Binary::Named);
}

#[test]
fn models_example_runs() {
    run_example("models.sh", Binary::OnPath);
    run_example("models.sh", Binary::Named);
}

#[test]
fn an_example_without_trove_says_how_to_name_it() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join("quickstart.sh");
    let env = Env::plain();
    let mut cmd = Command::new("bash");
    cmd.arg(&script).current_dir(&env.root);
    env.clean_env(&mut cmd);
    cmd.env("PATH", "/usr/bin:/bin");
    let out = cmd.output().expect("run bash");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("no `trove` on PATH; set TROVE=/path/to/trove"), "{stderr}");
}

fn run_example(name: &str, binary: Binary) {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples").join(name);
    assert!(script.is_file(), "{} is missing", script.display());
    let env = Env::plain();
    let mut cmd = Command::new("bash");
    cmd.arg(&script).current_dir(&env.root);
    env.clean_env(&mut cmd);
    match binary {
        Binary::OnPath => {
            let dir = Path::new(BIN).parent().expect("the binary's folder");
            let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/bin:/bin".into());
            let mut dirs = vec![dir.to_path_buf()];
            dirs.extend(std::env::split_paths(&path));
            cmd.env("PATH", std::env::join_paths(dirs).expect("a PATH"));
            cmd.env_remove("TROVE");
        }
        Binary::Named => {
            cmd.env("TROVE", BIN);
        }
    }
    let out = cmd.output().expect("run bash");
    assert!(
        out.status.success(),
        "{name} ({binary:?}) failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
