#!/usr/bin/env bash
# Install what the tests need, where it is missing; a second run installs nothing.
#
#   bash scripts/setup-test-tools.sh
#
# - Debian packages (apt-get): a C compiler, pkg-config and OpenSSL headers (to build the
#   SFTP client), git, OpenSSH (the SFTP tests start a real server), Chromium
#   (the plot tests render the page headless), python3-venv (for the MLflow venv)…
# - rustfmt and clippy (rustup), where rustup manages the toolchain;
# - S3 servers, built once with cargo install into cargo's bin folder (later runs, and
#   every clone, reuse them): s3s-fs (an S3 API over a folder; the S3 remote suite) and
#   Garage (a distributed store; the 3-node cluster test). The first build of both takes
#   about 15 minutes on 2 cores.
# - MLflow from PyPI, into the git-ignored venv .venv/mlflow (the sync tests start a real
#   tracking server). Its first install takes a few minutes; later runs reuse the venv.
#   scripts/test.sh passes its path to the tests as TROVE_TEST_MLFLOW.
set -euo pipefail

cd "$(dirname "$0")/.."

# The S3 servers the tests run against (newer s3s-fs releases need a newer rustc).
S3S_FS_VERSION=0.14.1
GARAGE_VERSION=2.5.0

# The MLflow release the sync tests run against.
MLFLOW_VERSION=3.17.2
MLFLOW_VENV=.venv/mlflow

step() {
    printf '\n==> %s\n' "$*"
}

# Debian packages to install when a command is missing: "command:package" (a command
# given as an absolute path is looked for there: sbin is not on every user's PATH).
APT_TOOLS=(
    "git:git"
    "python3:python3"
    # The SFTP tests start a real OpenSSH server on 127.0.0.1 with throwaway keys.
    "/usr/sbin/sshd:openssh-server"
    # The https test of `exp pull` makes a throwaway certificate.
    "openssl:openssl"
    "ssh-keygen:openssh-client"
    "ssh-keyscan:openssh-client"
    "ssh-agent:openssh-client"
    "ssh-add:openssh-client"
    # The progress-bar test runs trove on a pseudo-terminal.
    "script:bsdutils"
    # Password-login tests create a local user; the full-disk test mounts a small tmpfs.
    "/usr/sbin/useradd:passwd"
    "/usr/sbin/chpasswd:passwd"
    "mount:mount"
    # The Garage cluster script waits for the nodes over HTTP.
    "curl:curl"
    # The clock-skew test of S3 remotes runs trove with a shifted clock.
    "faketime:faketime"
    # The `exp plot` tests render the page in headless Chromium.
    "/usr/bin/chromium:chromium"
)

apt_updated=0
apt_install() {
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "error: $1 is missing and apt-get is not available; install it by hand" >&2
        exit 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        sudo=(sudo)
    fi
    if [ "$apt_updated" -eq 0 ]; then
        step "apt-get update"
        "${sudo[@]}" apt-get update -qq
        apt_updated=1
    fi
    step "apt-get install $*"
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "$@"
}

ensure_apt_tools() {
    local entry cmd pkg
    for entry in "${APT_TOOLS[@]}"; do
        cmd=${entry%%:*}
        pkg=${entry#*:}
        if [[ "$cmd" == /* ]]; then
            [ -x "$cmd" ] || apt_install "$pkg"
        elif ! command -v "$cmd" >/dev/null 2>&1; then
            apt_install "$pkg"
        fi
    done
}

ensure_rust_tools() {
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo is missing; install the Rust toolchain (https://rustup.rs)" >&2
        exit 1
    fi
    # Building the SFTP client (libssh2 over OpenSSL) needs a C compiler and OpenSSL headers.
    if ! command -v cc >/dev/null 2>&1; then
        apt_install build-essential
    fi
    if ! command -v pkg-config >/dev/null 2>&1 || ! pkg-config --exists openssl; then
        apt_install pkg-config libssl-dev
    fi
    if command -v rustup >/dev/null 2>&1; then
        for component in rustfmt clippy; do
            if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
                step "rustup component add $component"
                rustup component add "$component"
            fi
        done
    fi
}

# `cargo install NAME --version VERSION [flags]` unless cargo's bin folder has that
# version (its `--version` prints it).
cargo_tool() {
    local name=$1 version=$2
    shift 2
    local bin="${CARGO_HOME:-$HOME/.cargo}/bin/$name"
    if [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -qF "$version"; then
        return
    fi
    step "cargo install $name --version $version $* (built once; later runs reuse it)"
    cargo install "$name" --version "$version" --locked "$@"
}

ensure_s3_servers() {
    cargo_tool s3s-fs "$S3S_FS_VERSION" --features binary
    cargo_tool garage "$GARAGE_VERSION"
}

mlflow_works() {
    [ -e "$MLFLOW_VENV/.installed" ] && "$MLFLOW_VENV/bin/mlflow" --version 2>/dev/null | grep -qF "$MLFLOW_VERSION"
}

ensure_mlflow() {
    if mlflow_works; then
        return
    fi
    # Debian's python3 ships venv and ensurepip separately.
    if ! python3 -c 'import venv, ensurepip' >/dev/null 2>&1; then
        apt_install python3-venv
    fi
    step "installing mlflow $MLFLOW_VERSION into $MLFLOW_VENV (takes a few minutes the first time)"
    # Start afresh: an interrupted install leaves no .installed marker and is redone.
    rm -rf "$MLFLOW_VENV"
    mkdir -p "$(dirname "$MLFLOW_VENV")"
    python3 -m venv "$MLFLOW_VENV"
    "$MLFLOW_VENV/bin/python" -m pip install --quiet --disable-pip-version-check "mlflow==$MLFLOW_VERSION"
    touch "$MLFLOW_VENV/.installed"
    if ! mlflow_works; then
        echo "error: $MLFLOW_VENV/bin/mlflow does not run after installing it" >&2
        exit 1
    fi
}

step "checking tools"
ensure_apt_tools
ensure_rust_tools
ensure_s3_servers
ensure_mlflow
cargo --version
cargo fmt --version
cargo clippy --version
/usr/bin/chromium --version 2>/dev/null || true
"${CARGO_HOME:-$HOME/.cargo}/bin/s3s-fs" --version
"${CARGO_HOME:-$HOME/.cargo}/bin/garage" --version
"$MLFLOW_VENV/bin/mlflow" --version
