#!/usr/bin/env bash
# The one command that checks trove: formatting, lints, and every test.
#
#   bash scripts/test.sh
#
# Installs what the tests need where it is missing, then runs
#   cargo fmt --check
#   cargo clippy --all-targets -- -D warnings
#   cargo test --release -- --test-threads=2
# The end-to-end tests run the built binary; release mode keeps the large-file tests fast.
set -euo pipefail

cd "$(dirname "$0")/.."

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

ensure_tools() {
    step "checking tools"
    if ! command -v cargo >/dev/null 2>&1; then
        echo "error: cargo is missing; install the Rust toolchain (https://rustup.rs)" >&2
        exit 1
    fi
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
    if command -v rustup >/dev/null 2>&1; then
        for component in rustfmt clippy; do
            if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
                step "rustup component add $component"
                rustup component add "$component"
            fi
        done
    fi
    cargo --version
    cargo fmt --version
    cargo clippy --version
}

ensure_tools

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets -- -D warnings

step "cargo test --release -- --test-threads=2"
cargo test --release -- --test-threads=2

step "all checks passed"
