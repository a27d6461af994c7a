#!/usr/bin/env bash
# The one command that checks trove: formatting, lints, and every test.
#
#   bash scripts/test.sh
#
# Installs what the tests need where it is missing (scripts/setup-test-tools.sh: Debian
# packages such as OpenSSH and Chromium, the S3 servers s3s-fs and Garage (built once with
# cargo install), and MLflow in the git-ignored venv .venv/mlflow), then runs
#   cargo fmt --check
#   cargo clippy --all-targets -- -D warnings
#   cargo test --release
# The end-to-end tests run the built binary; release mode keeps the large-file tests fast.
# Tests run at cargo's default parallelism (one thread per core): none may depend on fewer.
set -euo pipefail

cd "$(dirname "$0")/.."

step() {
    printf '\n==> %s\n' "$*"
}

bash scripts/setup-test-tools.sh

# The `exp sync` tests start a real MLflow tracking server from this venv.
TROVE_TEST_MLFLOW="$(pwd)/.venv/mlflow/bin/mlflow"
export TROVE_TEST_MLFLOW

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --release"
cargo test --release

step "all checks passed"
