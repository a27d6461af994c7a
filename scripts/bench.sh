#!/usr/bin/env bash
# Benchmark trove's workflow (and DVC's, when installed; restic's too in the versions
# workload) on generated datasets; print markdown tables of medians, ratios and targets,
# and write everything as JSON.
#
#   bash scripts/bench.sh                 # 1 GiB file, 20,000 small files, growth 5k/80k,
#                                         # and the versions workload
#   bash scripts/bench.sh --quick         # the same without the growth datasets and versions
#   bash scripts/bench.sh --small-only    # only the small files (and the growth datasets)
#   bash scripts/bench.sh --large-only    # only the large file (no growth unless --growth)
#   bash scripts/bench.sh --growth        # include the growth datasets (the default)
#   bash scripts/bench.sh --versions      # include the versions workload (the default,
#                                         # except with --quick, --small-only, --large-only)
#   bash scripts/bench.sh --versions-only # only the versions workload
#   bash scripts/bench.sh --s3-only       # only the S3 steps (1 GiB file and small files;
#                                         # with --small-only or --large-only, one of them)
#   bash scripts/bench.sh --sftp-only     # only the SFTP steps, trove over each of its SFTP
#                                         # transports, against ssh cat / tar over ssh (1 GiB
#                                         # file and small files; with --small-only or
#                                         # --large-only, one of them)
#   bash scripts/bench.sh --no-remote     # only the local steps (no push / pull)
#   bash scripts/bench.sh --no-sftp       # push / pull without the SFTP remote
#   bash scripts/bench.sh --no-s3         # push / pull without the S3 remote
#   BENCH_LARGE_MIB=32 BENCH_SMALL_FILES=300 BENCH_RUNS=1 bash scripts/bench.sh --quick
#                                         # a quick check
#   BENCH_VERSIONS_MIB=16 BENCH_VERSIONS=3 bash scripts/bench.sh --versions-only
#                                         # a quick check of the versions workload
#   BENCH_LARGE_MIB=32 BENCH_SMALL_FILES=300 BENCH_RUNS=1 bash scripts/bench.sh --s3-only
#                                         # a quick check of the S3 steps
#   BENCH_LARGE_MIB=32 BENCH_SMALL_FILES=300 BENCH_RUNS=1 bash scripts/bench.sh --sftp-only
#                                         # a quick check of the SFTP transports
#
# Datasets (generated deterministically from seeded PRNGs by scripts/bench_tools.py, so
# every run sees the same bytes; nothing compresses or deduplicates):
#   large:  one file of BENCH_LARGE_MIB MiB (default 1024)
#   small:  BENCH_SMALL_FILES files (default 20000) of 1-8 KiB in 100 folders
#   growth: the same generator with BENCH_GROWTH_FILES files (default "5000 80000"); with
#           the small dataset they make a table of time per file (µs) per step
#
# Runs: every dataset gets BENCH_RUNS runs (growth datasets: BENCH_GROWTH_RUNS); a run
# is the references, then trove's steps, then DVC's steps, each in fresh repositories, so
# the tools alternate (refs, trove, DVC, refs, trove, DVC, ...). Tables show medians; the
# JSON also has min, max and every sample.
#
# References, timed in the same runs: `cp -r` of the dataset; `cp -r` followed by
# `sync -f` (what a durable copy costs); `cp -al`; a walk that stats every file
# (`find DIR -type f -printf '%s %T@\n'`); and, with SFTP, `scp -r` and `tar c | ssh … tar x` of the dataset to the
# benchmark's sshd and back (not for the growth datasets). With --sftp-only the references
# are only these over ssh: for the large file `ssh … 'cat > FILE' < file` up (ssh_cat_up)
# and `ssh … 'cat FILE' > file` down (ssh_cat_down), one file through one ssh with no
# protocol on top; for the small files `tar c | ssh … tar x` and back (tar_up, tar_down).
# Every ssh reference uses the same options as the login check (our key and known_hosts
# only) and the cipher trove asks for first, `-c aes128-gcm@openssh.com`.
#
# trove's steps (wall clock, CPU, peak RSS and I/O of each, measured by bench_tools.py run):
#   in a fresh git repository with the default cache.link (reflink, copy: copies on ext4):
#   add; status (first run after add, then again: the no-op status); rm -rf data +
#   checkout (copy); checkout again (nothing to do);
#   in a second repository with `cache.link [hardlink, copy]`: add; rm -rf data + checkout;
#   unless --no-remote, in the first repository, for a folder remote, (unless --no-sftp)
#   an SFTP remote on an OpenSSH server the script starts on 127.0.0.1 and (unless --no-s3)
#   an S3 remote, s3://bench/trove, on an s3s-fs server it starts on 127.0.0.1: push; push again
#   (nothing to send); status --remote (in sync); then in a fresh `git clone` (empty cache)
#   fetch (into the cache only; an untimed checkout follows) and in another fresh clone
#   pull (fetch + checkout). Each no-op push and status --remote runs once more, untimed,
#   under strace (and, for SFTP, with strace attached to the sshd) to count the content
#   files it opens.
# DVC's steps, when `dvc` is on PATH (and BENCH_DVC is not 0): the same with dvc add,
#   dvc status, dvc checkout, `dvc config cache.type hardlink` for the hardlink repository,
#   dvc push, dvc status -c -r NAME, dvc fetch + dvc checkout, dvc pull (SFTP through
#   ssh://USER@127.0.0.1:PORT/..., which needs the dvc-ssh package; S3 through
#   s3://bench/dvc with `dvc remote modify s3 endpointurl`, which needs dvc-s3). Not on the growth
#   datasets unless BENCH_GROWTH_DVC=1. When one DVC step of a phase (hardlink, folder,
#   SFTP, S3) takes longer than BENCH_DVC_CAP seconds in the first run, DVC runs that phase
#   once only for that dataset (the report says so).
# Every pull, fetch + checkout and scp download is checked: the restored files must have
# the same names and BLAKE2 sums as the generated ones, or the script stops with an error.
#
# The versions workload (what a new version of a file costs; trove's deduplicating remote
# format, layout 2, is meant to send only a version's changed chunks): bench_tools.py
# table generates a CSV table of about BENCH_VERSIONS_MIB MiB (ids, dates, amounts, short
# words: it compresses somewhat) and BENCH_VERSIONS versions of it, each the previous one
# with a few hundred rows inserted in the middle, a few runs of rows rewritten in place
# and 1 % of rows appended (seeded: the same bytes every run). For version k = 1..N, in
# one run, it is written to table.csv in each tool's folder and:
#   trove: `trove add table.csv`, `git commit`, `trove --json push` to a folder remote and
#     (unless --no-sftp) to an SFTP remote on the benchmark's sshd; recorded: each push's
#     time and its JSON report (`bytes` of content, `transferred`: the bytes sent), then
#     `du -sb` and the file count of the remote's folder;
#   restic (Debian package restic, installed with apt-get where missing and allowed, else
#     skipped with a note): `restic backup table.csv` into a local repository made with
#     `restic init` (password: $RESTIC_PASSWORD, default trove-bench); recorded: each
#     backup's time, `du -sb` of the repository;
#   DVC (when on PATH): `dvc add table.csv`, `git commit`, `dvc push` to a local remote;
#     recorded: the push's time, `du -sb` of the remote.
# The report has, per version, each tool's time and store size, trove's push reports and
# the share of the table each push sent, and the targets: trove's remote after N versions
# ≤ restic's repository and ≤ 0.3× DVC's remote; each new version's push sends ≤ 5 % of
# the table and takes no longer than restic's backup of it. Afterwards the first and last
# versions are pulled back from the folder remote (the last over SFTP too) into fresh
# clones and compared with the generated tables.
#
# The S3 steps (the 1 GiB file and the small files; growth datasets too unless --s3-only)
# use s3s-fs (`cargo install s3s-fs --version 0.14.1 --features binary --locked`; the
# script looks for $BENCH_S3FS, then ~/.cargo/bin/s3s-fs, then s3s-fs on PATH, and skips
# the S3 steps with a message when there is none). The server listens on 127.0.0.1 with a
# throwaway key pair, which both tools get from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY;
# its data (one folder per bucket plus its metadata files) lives in the run's folder, and
# between runs each tool's prefix is removed. It runs with
# RUST_LOG=info,s3s::service=debug, logging one `req:` line per request, so every S3 step
# of either tool also records how many requests it made and of which kind (LIST = a GET
# of the bucket with list-type=2); the report lists them, and checks that trove's no-op
# push at BENCH_SMALL_FILES files makes a single LIST, of the remote's index/ prefix.
# With --s3-only the local steps (add) run untimed, only to have something to push, and
# the references, folder and SFTP remotes, growth datasets and versions workload are left
# out.
#
# The SFTP transports (--sftp-only; the large file and the small files): trove's SFTP
# remotes run over `transport openssh` (the user's own `ssh -s HOST sftp`) or `transport
# libssh2` (built in); the default, auto, takes openssh when ssh is installed. Each run
# times both, each in its own repository with its own remote folder on the benchmark's
# sshd (`trove remote set sftp_T transport T`), openssh first in odd runs and libssh2
# first in even ones, then DVC (dvc-ssh) as in the SFTP phase above: push, push again,
# status --remote, fetch into a fresh clone, pull into another (the steps
# push_sftp_openssh, push_sftp_openssh_noop, status_remote_sftp_openssh,
# fetch_sftp_openssh, pull_sftp_openssh and the same with libssh2; DVC's keep their
# names, push_sftp, ...). The add runs untimed, only to have something to push; no
# folder or S3 remote, growth datasets or versions workload. The report has a table per
# dataset: each step's median per transport, its ratio to the reference (push to the
# upload, fetch and pull to the download), DVC's time and DVC / trove, the CPU (user +
# system of the client side, trove with its ssh child or the reference's ssh, as `run`
# measures it), for the large file in seconds per GiB moved, and the targets: 1 GiB push
# and fetch ≤ 1.3× ssh cat, each transport; at 20,000 files no-op push ≤ 0.1 s and
# status --remote ≤ 0.1 s. The JSON has it under sftp_transports.
#
# The SFTP steps need /usr/sbin/sshd (Debian package openssh-server) and ssh-keygen. When
# sshd is missing, the script installs openssh-server with apt-get where it can (as root, or
# with password-less sudo); otherwise it skips the SFTP steps and says so.
#
# Environment:
#   BENCH_DIR           where temp data goes (default /tmp/trove-bench); the run's folder
#                       in it is removed afterwards
#   BENCH_LARGE_MIB     size of the large file in MiB (default 1024)
#   BENCH_SMALL_FILES   number of small files (default 20000)
#   BENCH_GROWTH_FILES  file counts of the growth datasets (default "5000 80000")
#   BENCH_RUNS          runs of every step (default 3)
#   BENCH_GROWTH_RUNS   runs on the growth datasets (default BENCH_RUNS)
#   BENCH_GROWTH_DVC    1: run DVC on the growth datasets too (default 0)
#   BENCH_GROWTH_SLACK  the growth target: time per file at the most files may be at most
#                       this times that at the fewest (default 1.10)
#   BENCH_DVC_CAP       seconds (default 300), see above
#   BENCH_VERSIONS_MIB  size of the versions workload's table in MiB (default 256)
#   BENCH_VERSIONS      number of versions of the table (default 10)
#   RESTIC_PASSWORD     the password of the versions workload's restic repository
#   BENCH_JSON          where the JSON goes (default $BENCH_DIR/bench-results.json)
#   TROVE               a trove binary to use instead of building one with cargo --release
#                       (TROVE_BIN is taken as well)
#   BENCH_DVC           0 to skip DVC even when it is installed
#   BENCH_SSHD          the sshd binary (default /usr/sbin/sshd; it must be an absolute path)
#   BENCH_S3FS          the s3s-fs binary (default ~/.cargo/bin/s3s-fs, else s3s-fs on PATH)
#   BENCH_INSTALL       0: never install openssh-server, strace or restic; skip what needs them
#
# On ext4 without a journal the report says so: there, creating many files within a minute
# or so of deleting many (as every step after the rm -rf of the previous one's tree does)
# costs up to 20× the system time, so put BENCH_DIR on a journaled file system.
#
# The tables go to stdout; progress goes to stderr. Caches are warm (the data was just
# written); every timed step starts after a `sync` so earlier writes are not billed to it.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

run_large=1
run_small=1
run_remote=1
run_folder=1
run_sftp=1
run_s3=1
run_growth=""
run_versions=""
versions_only=0
versions_asked=0
growth_asked=0
# 0: the local steps (add, status, checkout) and the references only prepare, untimed
# (--s3-only).
run_local=1
s3_only=0
# 1: only the SFTP steps, trove over each transport (openssh, libssh2), ssh cat references
# (--sftp-only).
sftp_only=0
for arg in "$@"; do
    case "$arg" in
        --small-only) run_large=0 run_versions=${run_versions:-0} ;;
        --large-only) run_small=0 run_versions=${run_versions:-0} ;;
        --no-remote) run_remote=0 ;;
        --no-sftp) run_sftp=0 ;;
        --no-s3) run_s3=0 ;;
        --s3-only) s3_only=1 ;;
        --sftp-only) sftp_only=1 ;;
        --quick) run_growth=${run_growth:-0} run_versions=${run_versions:-0} ;;
        --growth) run_growth=1 growth_asked=1 ;;
        --versions) run_versions=1 versions_asked=1 ;;
        --versions-only) versions_only=1 run_versions=1 versions_asked=1 ;;
        -h | --help)
            usage
            exit 0
            ;;
        *)
            echo "bench.sh: unknown argument: $arg (try --help)" >&2
            exit 2
            ;;
    esac
done
# only_remote OPTION KIND RUN: --s3-only or --sftp-only (OPTION) keeps the remote steps of
# KIND alone; RUN is that kind's run_* flag, which --no-KIND cleared.
only_remote() {
    if [ "$versions_only" -eq 1 ] || [ "$versions_asked" -eq 1 ] || [ "$growth_asked" -eq 1 ]; then
        echo "bench.sh: $1 excludes --versions-only, --versions and --growth" >&2
        exit 2
    fi
    if [ "$run_remote" -eq 0 ] || [ "$3" -eq 0 ]; then
        echo "bench.sh: $1 excludes --no-remote and --no-$2" >&2
        exit 2
    fi
    run_local=0 run_folder=0 run_growth=0 run_versions=0
}
if [ "$sftp_only" -eq 1 ] && [ "$s3_only" -eq 1 ]; then
    echo "bench.sh: --sftp-only and --s3-only exclude each other" >&2
    exit 2
fi
if [ "$s3_only" -eq 1 ]; then
    only_remote --s3-only s3 "$run_s3"
    run_sftp=0
fi
if [ "$sftp_only" -eq 1 ]; then
    only_remote --sftp-only sftp "$run_sftp"
    run_s3=0
fi
if [ "$versions_only" -eq 1 ]; then
    if [ "$run_large" -eq 0 ] || [ "$run_small" -eq 0 ]; then
        echo "bench.sh: --versions-only excludes --small-only and --large-only" >&2
        exit 2
    fi
    run_large=0 run_small=0 run_growth=0
elif [ "$run_large" -eq 0 ] && [ "$run_small" -eq 0 ]; then
    echo "bench.sh: --small-only and --large-only exclude each other" >&2
    exit 2
fi
[ "$run_remote" -eq 1 ] || run_folder=0 run_sftp=0 run_s3=0
if [ -z "$run_growth" ]; then
    run_growth=$run_small
fi
run_versions=${run_versions:-1}
if [ "$run_versions" -eq 1 ] && [ "$run_remote" -eq 0 ]; then
    # The versions workload measures pushes: nothing to do without remotes.
    if [ "$versions_asked" -eq 1 ]; then
        echo "bench.sh: the versions workload pushes to remotes: it cannot run with --no-remote" >&2
        exit 2
    fi
    run_versions=0
fi

LARGE_MIB=${BENCH_LARGE_MIB:-1024}
SMALL_FILES=${BENCH_SMALL_FILES:-20000}
GROWTH_FILES=${BENCH_GROWTH_FILES:-5000 80000}
RUNS=${BENCH_RUNS:-3}
GROWTH_RUNS=${BENCH_GROWTH_RUNS:-$RUNS}
DVC_CAP=${BENCH_DVC_CAP:-300}
GROWTH_SLACK=${BENCH_GROWTH_SLACK:-1.10}
VERSIONS_MIB=${BENCH_VERSIONS_MIB:-256}
VERSIONS=${BENCH_VERSIONS:-10}
BENCH_ROOT=${BENCH_DIR:-/tmp/trove-bench}
for n in "$LARGE_MIB" "$SMALL_FILES" "$RUNS" "$GROWTH_RUNS" "$DVC_CAP" "$VERSIONS_MIB" "$VERSIONS" $GROWTH_FILES; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || {
        echo "bench.sh: BENCH_LARGE_MIB, BENCH_SMALL_FILES, BENCH_GROWTH_FILES, BENCH_RUNS, BENCH_GROWTH_RUNS, BENCH_DVC_CAP, BENCH_VERSIONS_MIB and BENCH_VERSIONS must be positive whole numbers" >&2
        exit 2
    }
done
[[ "$GROWTH_SLACK" =~ ^[0-9]+(\.[0-9]+)?$ ]] || {
    echo "bench.sh: BENCH_GROWTH_SLACK must be a number such as 1.10" >&2
    exit 2
}

REPO=$(cd "$(dirname "$0")/.." && pwd)
TOOLS="$REPO/scripts/bench_tools.py"

say() {
    printf '%s\n' "$*" >&2
}

command -v python3 >/dev/null || {
    say "bench.sh: python3 is needed to generate the data and measure the steps"
    exit 1
}
command -v git >/dev/null || {
    say "bench.sh: git is needed"
    exit 1
}

mkdir -p "$BENCH_ROOT"
BENCH_ROOT=$(cd "$BENCH_ROOT" && pwd)
JSON_OUT=${BENCH_JSON:-$BENCH_ROOT/bench-results.json}
case "$JSON_OUT" in
    /*) ;;
    *) JSON_OUT="$PWD/$JSON_OUT" ;;
esac
WORK=$(mktemp -d "$BENCH_ROOT/run.XXXXXX")
# sshd's pid once it runs, so that cleanup stops it and the sessions it started.
SSHD_PID=""
# s3s-fs's pid once it runs (our own child), so that cleanup stops it.
S3_PID=""
cleanup() {
    stop_sshd
    stop_s3
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
    rmdir "$BENCH_ROOT" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LOG="$WORK/log"
# One line per timed step (bench_tools.py run), and key=value facts for the report.
TSV="$WORK/times.tsv"
META="$WORK/meta"
: >"$TSV"
: >"$META"

meta() {
    printf '%s=%s\n' "$1" "$2" >>"$META"
}

# --- the binary -------------------------------------------------------------------------
# TROVE, or TROVE_BIN (the name the script gives its private copy below).
TROVE=${TROVE:-${TROVE_BIN:-}}
if [ -n "$TROVE" ]; then
    [ -x "$TROVE" ] || {
        say "bench.sh: TROVE=$TROVE is not an executable"
        exit 1
    }
    src_bin=$TROVE
else
    say "building trove (cargo build --release)"
    (cd "$REPO" && cargo build --release --quiet)
    src_bin="$REPO/target/release/trove"
fi
# A private copy: a rebuild during the run cannot swap the binary under us.
mkdir -p "$WORK/bin"
cp "$src_bin" "$WORK/bin/trove"
TROVE_BIN="$WORK/bin/trove"

DVC_BIN=""
DVC_SSH=0
DVC_S3=0
if [ "${BENCH_DVC:-1}" != "0" ] && command -v dvc >/dev/null 2>&1; then
    DVC_BIN=$(command -v dvc)
    # `dvc version` lists `ssh (sshfs = …)` under "Supports:" when dvc-ssh is installed,
    # and `s3 (s3fs = …)` when dvc-s3 is.
    dvc_supports=$("$DVC_BIN" version 2>/dev/null || true)
    if grep -q '^[[:space:]]*ssh (' <<<"$dvc_supports"; then
        DVC_SSH=1
    fi
    if grep -q '^[[:space:]]*s3 (' <<<"$dvc_supports"; then
        DVC_S3=1
    fi
fi
export DVC_NO_ANALYTICS=1

# strace counts the files that the no-op steps open.
HAVE_STRACE=0
if [ "$run_remote" -eq 1 ]; then
    if ! command -v strace >/dev/null 2>&1 && [ "${BENCH_INSTALL:-1}" != "0" ] &&
        command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
        say "installing strace (apt-get) to check what the no-op steps open"
        if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq strace; } >>"$LOG" 2>&1; then
            say "bench.sh: apt-get install strace failed; the no-op steps are not checked"
        fi
    fi
    if command -v strace >/dev/null 2>&1 && strace -f -qq -o /dev/null true 2>/dev/null; then
        HAVE_STRACE=1
    else
        say "bench.sh: strace is missing or cannot trace: the no-op steps are not checked"
    fi
fi

# --- the SFTP server --------------------------------------------------------------------
SSHD=${BENCH_SSHD:-/usr/sbin/sshd}
SSH_DIR="$WORK/ssh"
SSH_USER=$(id -un)
SSH_KEY="$SSH_DIR/user_ed25519"
SSH_KNOWN_HOSTS="$SSH_DIR/known_hosts"
SSH_PORT=""
# Why the SFTP steps are skipped, when they are.
SFTP_SKIP=""

# apt_install MISSING PKG HINT FOR: install the Debian package PKG with apt-get (as root,
# or with password-less sudo) because MISSING is missing, to run FOR; unless BENCH_INSTALL=0.
# On failure INSTALL_SKIP says why (HINT: what to install by hand without apt-get).
INSTALL_SKIP=""
apt_install() {
    local missing=$1 pkg=$2 hint=$3 purpose=$4
    if [ "${BENCH_INSTALL:-1}" = "0" ]; then
        INSTALL_SKIP="$missing is missing (and BENCH_INSTALL=0)"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        INSTALL_SKIP="$missing is missing and apt-get is not available: install $hint"
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            INSTALL_SKIP="$missing is missing, and installing $pkg needs root: run \`apt-get install $pkg\`"
            return 1
        fi
    fi
    say "installing $pkg (apt-get) for $purpose"
    if ! { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$pkg"; } >>"$LOG" 2>&1; then
        tail -n 20 "$LOG" >&2
        INSTALL_SKIP="apt-get install $pkg failed (its output is above)"
        return 1
    fi
}

# ensure_sshd: make sure $SSHD exists, installing openssh-server with apt-get if allowed.
ensure_sshd() {
    [ -x "$SSHD" ] && return 0
    if ! apt_install "$SSHD" openssh-server "an OpenSSH server" "the SFTP steps"; then
        SFTP_SKIP=$INSTALL_SKIP
        return 1
    fi
    if [ ! -x "$SSHD" ]; then
        SFTP_SKIP="openssh-server is installed but $SSHD is still missing (set BENCH_SSHD)"
        return 1
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# write_sshd_config PORT: the config of a server for this run only.
write_sshd_config() {
    printf '%s\n' \
        "Port $1" \
        "ListenAddress 127.0.0.1" \
        "HostKey $SSH_DIR/host_ed25519" \
        "PidFile $SSH_DIR/sshd.pid" \
        "AuthorizedKeysFile $SSH_DIR/authorized_keys" \
        "PubkeyAuthentication yes" \
        "PasswordAuthentication no" \
        "KbdInteractiveAuthentication no" \
        "PermitRootLogin prohibit-password" \
        "UsePAM no" \
        "StrictModes no" \
        "AllowTcpForwarding no" \
        "X11Forwarding no" \
        "MaxStartups 100" \
        "MaxSessions 100" \
        "Subsystem sftp internal-sftp" \
        >"$SSH_DIR/sshd_config"
}

# start_sshd: an OpenSSH server on 127.0.0.1, logging in the current user with a throwaway key.
start_sshd() {
    command -v ssh-keygen >/dev/null 2>&1 || {
        SFTP_SKIP="ssh-keygen is missing (Debian package openssh-client)"
        return 1
    }
    [[ "$SSHD" == /* ]] || {
        SFTP_SKIP="BENCH_SSHD must be an absolute path (sshd re-executes itself)"
        return 1
    }
    mkdir -p "$SSH_DIR"
    ssh-keygen -q -t ed25519 -N '' -C trove-bench-host -f "$SSH_DIR/host_ed25519"
    ssh-keygen -q -t ed25519 -N '' -C trove-bench-user -f "$SSH_KEY"
    cp "$SSH_KEY.pub" "$SSH_DIR/authorized_keys"
    chmod 600 "$SSH_DIR/authorized_keys"
    if [ "$(id -u)" -eq 0 ]; then
        # sshd started by root insists on its privilege separation folder.
        mkdir -p /run/sshd
    fi
    local attempt port waited pidfile="$SSH_DIR/sshd.pid" log="$SSH_DIR/sshd.log"
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        write_sshd_config "$port"
        rm -f "$pidfile"
        : >"$log"
        if ! "$SSHD" -f "$SSH_DIR/sshd_config" -E "$log" >>"$LOG" 2>&1; then
            tail -n 5 "$LOG" >&2
            cat "$log" >&2
            SFTP_SKIP="sshd did not start (the messages are above)"
            return 1
        fi
        # sshd forks into the background, binds its port, then writes its pid file.
        waited=0
        while [ ! -s "$pidfile" ] && [ "$waited" -lt 100 ]; do
            grep -q 'Cannot bind any address' "$log" 2>/dev/null && break
            sleep 0.1
            waited=$((waited + 1))
        done
        if [ -s "$pidfile" ]; then
            SSHD_PID=$(cat "$pidfile")
            SSH_PORT=$port
            break
        fi
        # Most likely another process took the port between our probe and sshd's bind.
        say "  sshd could not listen on port $port (attempt $attempt); trying another port"
    done
    if [ -z "$SSH_PORT" ]; then
        cat "$log" >&2
        SFTP_SKIP="sshd did not start listening (its log is above)"
        return 1
    fi
    # What `ssh-keyscan -p PORT 127.0.0.1` would print, without trusting the network.
    echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$SSH_DIR/host_ed25519.pub")" >"$SSH_KNOWN_HOSTS"
    say "sshd listening on 127.0.0.1:$SSH_PORT (pid $SSHD_PID)"
}

# descendants PID: the processes PID started, their children, and so on.
descendants() {
    local child
    for child in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$child"
        descendants "$child"
    done
}

# stop_sshd: stop our sshd (the pid from its pid file) and any session process it left.
stop_sshd() {
    [ -n "$SSHD_PID" ] || return 0
    local pid=$SSHD_PID leftovers waited=0
    SSHD_PID=""
    # Only the process we started: its command line names our config file.
    if ! tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$SSH_DIR/sshd_config"; then
        return 0
    fi
    leftovers=$(descendants "$pid")
    # shellcheck disable=SC2086 # split on purpose: a list of pids
    kill "$pid" $leftovers 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    # shellcheck disable=SC2086
    kill -9 "$pid" $leftovers 2>/dev/null || true
}

# OpenSSH's own clients (the login check, the scp reference) use our key and known_hosts
# only, and the cipher trove and DVC negotiate first.
SSH_OPTS=()

if [ "$run_sftp" -eq 1 ]; then
    if ensure_sshd && start_sshd; then
        SSH_OPTS=(-F /dev/null -i "$SSH_KEY" -o IdentitiesOnly=yes -o BatchMode=yes
            -o UserKnownHostsFile="$SSH_KNOWN_HOSTS" -o GlobalKnownHostsFile=/dev/null
            -o StrictHostKeyChecking=yes -c aes128-gcm@openssh.com)
        if command -v ssh >/dev/null 2>&1 &&
            ! ssh "${SSH_OPTS[@]}" -p "$SSH_PORT" "$SSH_USER@127.0.0.1" true >>"$LOG" 2>&1; then
            tail -n 5 "$LOG" >&2
            tail -n 20 "$SSH_DIR/sshd.log" >&2
            say "bench.sh: cannot log in to the benchmark's sshd (the logs are above)"
            exit 1
        fi
    else
        run_sftp=0
        say "bench.sh: skipping the SFTP steps: $SFTP_SKIP"
        if [ "$sftp_only" -eq 1 ]; then
            say "bench.sh: --sftp-only: nothing left to run"
            exit 1
        fi
    fi
elif [ "$run_remote" -eq 1 ]; then
    SFTP_SKIP="--no-sftp"
else
    SFTP_SKIP="--no-remote"
fi
if [ "$sftp_only" -eq 1 ] && ! command -v ssh >/dev/null 2>&1; then
    say "bench.sh: --sftp-only needs OpenSSH's ssh client (Debian package openssh-client): the ssh cat references and trove's openssh transport run it"
    exit 1
fi
# The transports --sftp-only compares, each in its own repository and remote folder; the
# order alternates from run to run. Empty otherwise: the SFTP remote keeps trove's default.
SFTP_TRANSPORTS=()
[ "$sftp_only" -eq 0 ] || SFTP_TRANSPORTS=(openssh libssh2)
# The transport of the trove phase running (bench_trove), or empty.
SFTP_TRANSPORT=""
HAVE_SCP=0
if [ "$run_sftp" -eq 1 ] && command -v scp >/dev/null 2>&1; then
    HAVE_SCP=1
fi
if [ -n "$DVC_BIN" ] && [ "$run_sftp" -eq 1 ] && [ "$DVC_SSH" -eq 0 ]; then
    say "bench.sh: dvc has no ssh support (pip install dvc-ssh): DVC's SFTP rows stay empty"
fi

# --- the S3 server ----------------------------------------------------------------------
# s3s-fs (an S3 server over a folder: each bucket a folder of ROOT, objects as files, their
# metadata as files in ROOT) on 127.0.0.1, with a key pair for this run only; both tools
# read it from AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY. Its debug log has one `req:`
# line per request: the S3 steps count them (see timed).
S3_DIR="$WORK/s3"
S3_ROOT="$S3_DIR/root"
S3_LOG="$S3_DIR/s3s-fs.log"
S3_BUCKET=bench
S3_KEY=trovebench
S3_SECRET="bench-$(od -An -N12 -tx1 /dev/urandom | tr -d ' \n')"
S3_PORT=""
S3_BIN=""
# Why the S3 steps are skipped, when they are.
S3_SKIP=""

# find_s3fs: $BENCH_S3FS, else ~/.cargo/bin/s3s-fs, else s3s-fs on PATH.
find_s3fs() {
    local hint="install it with \`cargo install s3s-fs --version 0.14.1 --features binary --locked\`"
    if [ -n "${BENCH_S3FS:-}" ]; then
        [ -x "$BENCH_S3FS" ] || {
            S3_SKIP="BENCH_S3FS=$BENCH_S3FS is not an executable"
            return 1
        }
        S3_BIN=$BENCH_S3FS
    elif [ -x "$HOME/.cargo/bin/s3s-fs" ]; then
        S3_BIN="$HOME/.cargo/bin/s3s-fs"
    elif command -v s3s-fs >/dev/null 2>&1; then
        S3_BIN=$(command -v s3s-fs)
    else
        S3_SKIP="s3s-fs is missing: $hint"
        return 1
    fi
}

# start_s3: s3s-fs on a free port of 127.0.0.1, serving $S3_ROOT with the bucket made.
start_s3() {
    mkdir -p "$S3_ROOT/$S3_BUCKET"
    local attempt port waited
    for attempt in 1 2 3 4 5; do
        port=$(free_port)
        : >"$S3_LOG"
        # Appending (>>): the steps truncate the log between them.
        RUST_LOG=info,s3s::service=debug "$S3_BIN" --host 127.0.0.1 --port "$port" \
            --access-key "$S3_KEY" --secret-key "$S3_SECRET" "$S3_ROOT" </dev/null >>"$S3_LOG" 2>&1 &
        S3_PID=$!
        # It logs this line once it has bound its port.
        waited=0
        while ! grep -q 'server is running at' "$S3_LOG" && kill -0 "$S3_PID" 2>/dev/null &&
            [ "$waited" -lt 100 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if grep -q 'server is running at' "$S3_LOG" && kill -0 "$S3_PID" 2>/dev/null; then
            S3_PORT=$port
            break
        fi
        stop_s3
        # Most likely another process took the port between our probe and the bind.
        say "  s3s-fs could not listen on port $port (attempt $attempt); trying another port"
    done
    if [ -z "$S3_PORT" ]; then
        tail -n 20 "$S3_LOG" >&2
        S3_SKIP="s3s-fs did not start listening (its log is above)"
        return 1
    fi
    say "s3s-fs listening on 127.0.0.1:$S3_PORT (pid $S3_PID), bucket $S3_BUCKET in $S3_ROOT"
}

# stop_s3: stop our s3s-fs (a child of this shell: its pid cannot have been reused).
stop_s3() {
    [ -n "$S3_PID" ] || return 0
    local pid=$S3_PID waited=0
    S3_PID=""
    kill "$pid" 2>/dev/null || true
    while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 50 ]; do
        sleep 0.1
        waited=$((waited + 1))
    done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}

# s3_url PREFIX: the URL of PREFIX in the benchmark's bucket.
s3_url() {
    echo "s3://$S3_BUCKET/$1"
}

# s3_clear PREFIX: remove everything under PREFIX/ in the bucket, straight from s3s-fs's
# folder (objects and their metadata files), so that the next run starts empty.
s3_clear() {
    python3 "$TOOLS" s3-clear "$S3_ROOT" "$S3_BUCKET" "$1"
}

if [ "$run_s3" -eq 1 ]; then
    if find_s3fs && start_s3; then
        # Only this server's throwaway keys: nothing from the environment or ~/.aws.
        unset AWS_PROFILE AWS_DEFAULT_PROFILE AWS_SESSION_TOKEN AWS_SECURITY_TOKEN \
            AWS_ENDPOINT_URL AWS_ENDPOINT_URL_S3
        export AWS_ACCESS_KEY_ID=$S3_KEY AWS_SECRET_ACCESS_KEY=$S3_SECRET
        export AWS_EC2_METADATA_DISABLED=true
    else
        run_s3=0
        say "bench.sh: skipping the S3 steps: $S3_SKIP"
        if [ "$s3_only" -eq 1 ]; then
            say "bench.sh: --s3-only: nothing left to run"
            exit 1
        fi
    fi
elif [ "$run_remote" -eq 1 ]; then
    S3_SKIP="--no-s3"
else
    S3_SKIP="--no-remote"
fi
if [ -n "$DVC_BIN" ] && [ "$run_s3" -eq 1 ] && [ "$DVC_S3" -eq 0 ]; then
    say "bench.sh: dvc has no s3 support (pip install dvc-s3): DVC's S3 rows stay empty"
fi

# --- data -------------------------------------------------------------------------------
# Dataset ids: large, small, and gN for a growth dataset of N files.
declare -A DS_COUNT=() DS_KIND=()

# listing DIR: every file under DIR with its BLAKE2 sum, in a stable order.
listing() {
    (cd "$1" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 -r b2sum --)
}

# verify DS WHAT DIR: DIR must hold exactly the files of dataset DS, byte for byte.
verify() {
    local ds=$1 what=$2 dir=$3
    if [ ! -d "$dir" ]; then
        say "bench.sh: FAILED: $what: $dir does not exist"
        exit 1
    fi
    if ! listing "$dir" >"$WORK/got.sums" || ! cmp -s "$WORK/got.sums" "$WORK/$ds.sums"; then
        say "bench.sh: FAILED: $what: the restored data differs from the original:"
        diff "$WORK/$ds.sums" "$WORK/got.sums" | head -n 10 >&2 || true
        exit 1
    fi
    say "  $(printf '%-40s' "verified: $what") $(wc -l <"$WORK/$ds.sums") files match"
}

# --- timing -----------------------------------------------------------------------------
# The run being measured (1..N), for the records.
RUN=1

fail_log() {
    say "bench.sh: failed: $*"
    tail -n 30 "$LOG" >&2
    exit 1
}

# timed DS TOOL STEP CMD...: run CMD (output to the log) after a sync and record it. An
# S3 step (STEP ends in _s3 or has _s3_ in it) also records the requests s3s-fs logged
# while it ran (s3_requests).
timed() {
    local key="$1/$2/$3" ds=$1 tool=$2 step=$3 s3=0
    shift 3
    if [ -n "$S3_PID" ] && [[ "$step" == *_s3 || "$step" == *_s3_* ]]; then
        s3=1
        : >"$S3_LOG"
    fi
    sync
    python3 "$TOOLS" run --tsv "$TSV" --log "$LOG" --key "$key" --run "$RUN" -- "$@" ||
        fail_log "$*"
    [ "$s3" -eq 0 ] || s3_requests "$ds" "$tool" "$step"
}

# s3_requests DS TOOL STEP: count the requests in s3s-fs's log (all of them the step's:
# timed emptied it before), record them as meta, print them, and empty the log.
s3_requests() {
    local counts
    counts=$(python3 "$TOOLS" s3-requests "$S3_LOG" "$S3_BUCKET") || fail_log "s3-requests $S3_LOG"
    : >"$S3_LOG"
    meta "s3req.$1.$2.$3.$RUN" "$counts"
    say "  $(printf '%-40s' "$1/$2/$3 (requests)") $(python3 "$TOOLS" s3-requests --text "$counts")"
}

# timed_to OUT DS TOOL STEP CMD...: timed, with CMD's standard output in OUT.
timed_to() {
    local out=$1 key="$2/$3/$4"
    shift 4
    sync
    python3 "$TOOLS" run --tsv "$TSV" --log "$LOG" --key "$key" --run "$RUN" --stdout "$out" -- "$@" ||
        fail_log "$*"
}

quiet() {
    "$@" >>"$LOG" 2>&1 || fail_log "$*"
}

# check_clean CMD...: CMD (a `status --json`) must report every tracked item unchanged.
check_clean() {
    local out
    out=$("$@" 2>>"$LOG")
    if ! grep -q '"state": "unchanged"' <<<"$out" || grep -q '"state": "\(modified\|missing\|not_in_cache\)"' <<<"$out"; then
        say "bench.sh: the workspace does not match after checkout:"
        say "$out"
        exit 1
    fi
}

new_git_repo() {
    mkdir -p "$1"
    git -C "$1" init -q .
    git -C "$1" config user.name bench
    git -C "$1" config user.email bench@example.com
}

# sftp_url PATH [SCHEME]: the benchmark server's URL for the absolute PATH.
sftp_url() {
    echo "${2:-sftp}://$SSH_USER@127.0.0.1:$SSH_PORT$1"
}

# count_content_opens FILE: opens of content in an strace log: a file object (its name is
# 62 hex digits; manifests end in .dir) or a generated data file.
count_content_opens() {
    [ -s "$1" ] || {
        echo 0
        return
    }
    grep -cE '"([^"]*/)?([0-9a-f]{62}|file-[0-9]{5}\.bin|large\.bin)"' "$1" || true
}

# content_check DS STEP CMD...: run CMD once more, untimed, under strace -f, and for an
# SFTP step with strace attached to the benchmark's sshd too; record how many content
# files each side opened.
content_check() {
    local ds=$1 step=$2
    shift 2
    [ "$HAVE_STRACE" -eq 1 ] || return 0
    local client="$WORK/strace.client" server="$WORK/strace.server" spid="" srv="-" waited=0
    rm -f "$client" "$server"
    if [[ "$step" == *sftp* ]] && [ -n "$SSHD_PID" ]; then
        strace -f -qq -e trace=open,openat,openat2 -o "$server" -p "$SSHD_PID" 2>>"$LOG" &
        spid=$!
        # strace writes nothing until sshd does something; give it a moment to attach.
        while ! grep -q "^TracerPid:[[:space:]]*$spid\$" "/proc/$SSHD_PID/status" 2>/dev/null &&
            [ "$waited" -lt 50 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
    fi
    strace -f -qq -e trace=open,openat,openat2 -o "$client" "$@" >>"$LOG" 2>&1 ||
        fail_log "strace $*"
    if [ -n "$spid" ]; then
        # Session processes end a moment after the client disconnects.
        sleep 0.5
        kill -INT "$spid" 2>/dev/null || true
        wait "$spid" 2>/dev/null || true
        srv=$(count_content_opens "$server")
    fi
    local cl
    cl=$(count_content_opens "$client")
    meta "opens.$ds.$step" "$cl,$srv"
    say "  $(printf '%-40s' "$ds/trove/$step (strace)") content files opened: $cl client, $srv server"
}

# --- references -------------------------------------------------------------------------
bench_refs() {
    local ds=$1 src="$WORK/src/$1" dst="$WORK/ref-$1"
    timed "$ds" ref cp cp -r "$src" "$dst"
    # shellcheck disable=SC2016 # expanded by the inner shell
    timed "$ds" ref walk bash -c 'find "$1" -type f -printf "%s %T@\n" >/dev/null' walk "$dst"
    rm -rf "$dst"
    # shellcheck disable=SC2016
    timed "$ds" ref cp_sync bash -c 'cp -r "$1" "$2" && sync -f "$2"' cp_sync "$src" "$dst"
    rm -rf "$dst"
    timed "$ds" ref cp_al cp -al "$src" "$dst"
    rm -rf "$dst"
    # What the link gives a plain client: OpenSSH's scp (over SFTP, one connection, one
    # file at a time), up to the server and back.
    if [ "$HAVE_SCP" -eq 1 ] && [ "${DS_KIND[$ds]}" != growth ]; then
        local there="$WORK/remotes/scp-$ds" back="$WORK/scp-back-$ds"
        timed "$ds" ref scp_up scp -q -r -P "$SSH_PORT" "${SSH_OPTS[@]}" "$src" "$SSH_USER@127.0.0.1:$there"
        timed "$ds" ref scp_down scp -q -r -P "$SSH_PORT" "${SSH_OPTS[@]}" "$SSH_USER@127.0.0.1:$there" "$back"
        verify "$ds" "scp -r" "$back"
        rm -rf "$there" "$back"
        ssh_tar_refs "$ds"
    fi
}

# ssh_tar_refs DS: the stream a shell user would pipe: one tar over one ssh, each way.
ssh_tar_refs() {
    local ds=$1 src="$WORK/src/$1" there="$WORK/remotes/tar-$1" back="$WORK/tar-back-$1"
    # shellcheck disable=SC2016 # expanded by the inner shell
    timed "$ds" ref tar_up bash -c 'tar -C "$1" -cf - . | ssh -p "$2" "${@:5}" "$3" "mkdir -p $4 && tar -C $4 -xf -"' \
        tar_up "$src" "$SSH_PORT" "$SSH_USER@127.0.0.1" "$there" "${SSH_OPTS[@]}"
    mkdir -p "$back"
    # shellcheck disable=SC2016
    timed "$ds" ref tar_down bash -c 'ssh -p "$2" "${@:5}" "$3" "tar -C $4 -cf - ." | tar -C "$1" -xf -' \
        tar_down "$back" "$SSH_PORT" "$SSH_USER@127.0.0.1" "$there" "${SSH_OPTS[@]}"
    verify "$ds" "tar | ssh" "$back"
    rm -rf "$there" "$back"
}

# ssh_cat_refs DS: each file of DS (the large dataset: one) through one ssh running cat on
# the server, up (`ssh … 'cat > FILE' < file`) and down (`ssh … 'cat FILE' > file`): what
# the link and OpenSSH's cipher cost with no protocol on top.
ssh_cat_refs() {
    local ds=$1 src="$WORK/src/$1" there="$WORK/remotes/cat-$1" back="$WORK/cat-back-$1" f
    local files=()
    mapfile -t files < <(cd "$src" && find . -type f | LC_ALL=C sort)
    [ "${#files[@]}" -eq 1 ] || fail_log "ssh cat reference: $src holds ${#files[@]} files, not one"
    f=${files[0]#./}
    # The server is this machine: its folder is made here, untimed.
    mkdir -p "$there" "$back/$(dirname "$f")"
    # shellcheck disable=SC2016 # expanded by the inner shell
    timed "$ds" ref ssh_cat_up bash -c 'ssh -p "$2" "${@:5}" "$3" "cat > $4" < "$1"' \
        ssh_cat_up "$src/$f" "$SSH_PORT" "$SSH_USER@127.0.0.1" "$there/$(basename "$f")" "${SSH_OPTS[@]}"
    # shellcheck disable=SC2016
    timed "$ds" ref ssh_cat_down bash -c 'ssh -p "$2" "${@:5}" "$3" "cat $4" > "$1"' \
        ssh_cat_down "$back/$f" "$SSH_PORT" "$SSH_USER@127.0.0.1" "$there/$(basename "$f")" "${SSH_OPTS[@]}"
    verify "$ds" "ssh cat" "$back"
    rm -rf "$there" "$back"
}

# bench_sftp_refs DS (--sftp-only): ssh cat of the large file, tar over ssh of the others.
bench_sftp_refs() {
    if [ "${DS_KIND[$1]}" = large ]; then
        ssh_cat_refs "$1"
    else
        ssh_tar_refs "$1"
    fi
}

# --- trove ------------------------------------------------------------------------------
# The remote steps, in the benchmark repository after the local ones: for each remote,
# push, push again (nothing left to send) and status --remote; then for each remote, in a
# fresh `git clone`: fetch (then checkout, untimed), and in another: pull. With
# SFTP_TRANSPORT set (--sftp-only), the SFTP remote is sftp_TRANSPORT, set to that
# transport, so its steps are push_sftp_TRANSPORT and so on.
trove_remotes() {
    local ds=$1 repo=$2 remote clone sftp=sftp
    local remotes=()
    if [ "$run_folder" -eq 1 ]; then
        remotes+=(folder)
        quiet "$TROVE_BIN" remote add folder "$WORK/remotes/trove-$ds-folder"
    fi
    if [ "$run_sftp" -eq 1 ]; then
        [ -z "$SFTP_TRANSPORT" ] || sftp="sftp_$SFTP_TRANSPORT"
        remotes+=("$sftp")
        quiet "$TROVE_BIN" remote add "$sftp" "$(sftp_url "$WORK/remotes/trove-$ds-$sftp")"
        quiet "$TROVE_BIN" remote set "$sftp" keyfile "$SSH_KEY"
        quiet "$TROVE_BIN" remote set "$sftp" known_hosts "$SSH_KNOWN_HOSTS"
        if [ -n "$SFTP_TRANSPORT" ]; then
            quiet "$TROVE_BIN" remote set "$sftp" transport "$SFTP_TRANSPORT"
        fi
    fi
    if [ "$run_s3" -eq 1 ]; then
        # The endpoint (path-style by default) goes into the committed config; the keys
        # come from the environment.
        remotes+=(s3)
        quiet "$TROVE_BIN" remote add s3 "$(s3_url trove)"
        quiet "$TROVE_BIN" remote set s3 endpoint "http://127.0.0.1:$S3_PORT"
    fi
    [ "${#remotes[@]}" -gt 0 ] || return 0
    # The clones find the remotes in the committed .trove/config.
    quiet git add -A
    quiet git commit -q -m "bench: track data, add remotes"
    for remote in "${remotes[@]}"; do
        timed "$ds" trove "push_$remote" "$TROVE_BIN" --no-progress push -r "$remote"
        timed "$ds" trove "push_${remote}_noop" "$TROVE_BIN" --no-progress push -r "$remote"
        timed "$ds" trove "status_remote_$remote" "$TROVE_BIN" --no-progress status --remote "$remote"
        if [ "$RUN" -eq 1 ]; then
            content_check "$ds" "push_${remote}_noop" "$TROVE_BIN" --no-progress push -r "$remote"
            content_check "$ds" "status_remote_$remote" "$TROVE_BIN" --no-progress status --remote "$remote"
        fi
    done
    for remote in "${remotes[@]}"; do
        clone="$WORK/clone-trove-$ds-$remote"
        quiet git clone -q "$repo" "$clone"
        timed "$ds" trove "fetch_$remote" "$TROVE_BIN" --no-progress -C "$clone" fetch -r "$remote"
        quiet "$TROVE_BIN" --no-progress -C "$clone" checkout
        verify "$ds" "trove fetch -r $remote + checkout" "$clone/data"
        chmod -R u+w "$clone"
        rm -rf "$clone"
        quiet git clone -q "$repo" "$clone"
        timed "$ds" trove "pull_$remote" "$TROVE_BIN" --no-progress -C "$clone" pull -r "$remote"
        verify "$ds" "trove pull -r $remote" "$clone/data"
        chmod -R u+w "$clone"
        rm -rf "$clone"
    done
    rm -rf "$WORK/remotes/trove-$ds-folder" "$WORK/remotes/trove-$ds-$sftp"
    [ "$run_s3" -eq 0 ] || s3_clear trove
}

bench_trove() {
    local ds=$1 repo="$WORK/trove-$1${SFTP_TRANSPORT:+-$SFTP_TRANSPORT}" hl="$WORK/trove-hl-$1"
    if [ "$run_local" -eq 1 ]; then
        # Hardlink mode first, in its own repository.
        new_git_repo "$hl"
        cp -r "$WORK/src/$ds" "$hl/data"
        quiet "$TROVE_BIN" -C "$hl" init
        quiet "$TROVE_BIN" -C "$hl" config cache.link '[hardlink, copy]'
        timed "$ds" trove add_hl "$TROVE_BIN" --no-progress -C "$hl" add data
        rm -rf "$hl/data"
        timed "$ds" trove restore_hl "$TROVE_BIN" --no-progress -C "$hl" checkout
        check_clean "$TROVE_BIN" -C "$hl" status --json
        chmod -R u+w "$hl"
        rm -rf "$hl"
    fi

    new_git_repo "$repo"
    cp -r "$WORK/src/$ds" "$repo/data"
    # Not a subshell: the remote steps commit in the repository.
    pushd "$repo" >/dev/null
    quiet "$TROVE_BIN" init
    if [ "$run_local" -eq 1 ]; then
        timed "$ds" trove add "$TROVE_BIN" --no-progress add data
        timed "$ds" trove status1 "$TROVE_BIN" --no-progress status
        timed "$ds" trove status "$TROVE_BIN" --no-progress status
        rm -rf data
        timed "$ds" trove restore "$TROVE_BIN" --no-progress checkout
        timed "$ds" trove noop "$TROVE_BIN" --no-progress checkout
        check_clean "$TROVE_BIN" status --json
    else
        # --s3-only, --sftp-only: the add only prepares the push.
        quiet "$TROVE_BIN" --no-progress add data
    fi
    if [ "$run_remote" -eq 1 ]; then
        trove_remotes "$ds" "$repo"
    fi
    popd >/dev/null
    chmod -R u+w "$repo"
    rm -rf "$repo"
}

# --- DVC --------------------------------------------------------------------------------
# DVC phases that ran past BENCH_DVC_CAP in the first run: "DS/phase" -> 1.
declare -A DVC_SKIP=()

dvc_phase_on() {
    [ "$RUN" -eq 1 ] || [ -z "${DVC_SKIP[$1/$2]:-}" ]
}

dvc_remotes() {
    local ds=$1 repo=$2 remote clone
    local remotes=()
    if [ "$run_folder" -eq 1 ] && dvc_phase_on "$ds" folder; then
        remotes+=(folder)
        quiet "$DVC_BIN" remote add folder "$WORK/remotes/dvc-$ds-folder"
    fi
    if [ "$run_sftp" -eq 1 ] && [ "$DVC_SSH" -eq 1 ] && dvc_phase_on "$ds" sftp; then
        remotes+=(sftp)
        quiet "$DVC_BIN" remote add sftp "$(sftp_url "$WORK/remotes/dvc-$ds-sftp" ssh)"
        quiet "$DVC_BIN" remote modify sftp keyfile "$SSH_KEY"
    fi
    if [ "$run_s3" -eq 1 ] && [ "$DVC_S3" -eq 1 ] && dvc_phase_on "$ds" s3; then
        # The keys come from the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY).
        remotes+=(s3)
        quiet "$DVC_BIN" remote add s3 "$(s3_url dvc)"
        quiet "$DVC_BIN" remote modify s3 endpointurl "http://127.0.0.1:$S3_PORT"
        # dvc fetch and pull first HEAD the remote's root, dvc/files/md5, a folder in
        # s3s-fs's data once pushed, for which s3s-fs 0.14.1 answers 500 (it tries to hash
        # the folder) where S3 answers 404; DVC gives up on the 500. Give it an ETag, so the
        # HEAD answers 200 (see bench_tools.py s3-dir-head).
        quiet python3 "$TOOLS" s3-dir-head "$S3_ROOT" "$S3_BUCKET" dvc/files/md5
    fi
    [ "${#remotes[@]}" -gt 0 ] || return 0
    quiet git add -A
    quiet git commit -q -m "bench: track data, add remotes"
    for remote in "${remotes[@]}"; do
        timed "$ds" dvc "push_$remote" "$DVC_BIN" push -q -r "$remote"
        timed "$ds" dvc "push_${remote}_noop" "$DVC_BIN" push -q -r "$remote"
        timed "$ds" dvc "status_remote_$remote" "$DVC_BIN" status -q -c -r "$remote"
    done
    for remote in "${remotes[@]}"; do
        clone="$WORK/clone-dvc-$ds-$remote"
        quiet git clone -q "$repo" "$clone"
        pushd "$clone" >/dev/null
        timed "$ds" dvc "fetch_$remote" "$DVC_BIN" fetch -q -r "$remote"
        quiet "$DVC_BIN" checkout -q
        popd >/dev/null
        verify "$ds" "dvc fetch -r $remote + checkout" "$clone/data"
        chmod -R u+w "$clone"
        rm -rf "$clone"
        quiet git clone -q "$repo" "$clone"
        pushd "$clone" >/dev/null
        timed "$ds" dvc "pull_$remote" "$DVC_BIN" pull -q -r "$remote"
        popd >/dev/null
        verify "$ds" "dvc pull -r $remote" "$clone/data"
        chmod -R u+w "$clone"
        rm -rf "$clone"
    done
    rm -rf "$WORK/remotes/dvc-$ds-folder" "$WORK/remotes/dvc-$ds-sftp"
    [ "$run_s3" -eq 0 ] || s3_clear dvc
}

bench_dvc() {
    local ds=$1 repo="$WORK/dvc-$1" hl="$WORK/dvc-hl-$1"
    if [ "$run_local" -eq 1 ] && dvc_phase_on "$ds" hardlink; then
        new_git_repo "$hl"
        cp -r "$WORK/src/$ds" "$hl/data"
        pushd "$hl" >/dev/null
        quiet "$DVC_BIN" init -q
        quiet "$DVC_BIN" config core.analytics false
        quiet "$DVC_BIN" config cache.type hardlink
        timed "$ds" dvc add_hl "$DVC_BIN" add -q data
        rm -rf data
        timed "$ds" dvc restore_hl "$DVC_BIN" checkout -q
        popd >/dev/null
        chmod -R u+w "$hl"
        rm -rf "$hl"
    fi

    new_git_repo "$repo"
    cp -r "$WORK/src/$ds" "$repo/data"
    pushd "$repo" >/dev/null
    quiet "$DVC_BIN" init -q
    quiet "$DVC_BIN" config core.analytics false
    if [ "$run_local" -eq 1 ]; then
        timed "$ds" dvc add "$DVC_BIN" add -q data
        timed "$ds" dvc status1 "$DVC_BIN" status -q
        timed "$ds" dvc status "$DVC_BIN" status -q
        rm -rf data
        timed "$ds" dvc restore "$DVC_BIN" checkout -q
        timed "$ds" dvc noop "$DVC_BIN" checkout -q
    else
        quiet "$DVC_BIN" add -q data
    fi
    if [ "$run_remote" -eq 1 ]; then
        dvc_remotes "$ds" "$repo"
    fi
    popd >/dev/null
    chmod -R u+w "$repo"
    rm -rf "$repo"
}

# dvc_cap DS: after DVC's first run on DS, note the phases with a step over the cap.
dvc_cap() {
    local ds=$1 phase steps worst
    for phase in hardlink folder sftp s3; do
        case $phase in
            hardlink) steps="add_hl restore_hl" ;;
            *) steps="push_$phase push_${phase}_noop status_remote_$phase fetch_$phase pull_$phase" ;;
        esac
        worst=$(awk -F'\t' -v ds="$ds" -v steps=" $steps " '
            { split($1, k, "/") }
            k[1] == ds && k[2] == "dvc" && index(steps, " " k[3] " ") && $3 > m { m = $3 }
            END { printf "%.0f", m }' "$TSV")
        if [ "$worst" -gt "$DVC_CAP" ]; then
            DVC_SKIP[$ds/$phase]=1
            say "  DVC's $phase steps on $ds took up to $worst s (> $DVC_CAP s): DVC runs them once"
            meta "note.dvc_cap.$ds.$phase" "DVC's $phase steps on the ${DS_LABEL[$ds]} ran once only: one took $worst s (> BENCH_DVC_CAP=$DVC_CAP s)"
        fi
    done
}

# --- the versions workload --------------------------------------------------------------
# One table, BENCH_VERSIONS versions of it (bench_tools.py table), each written to the same
# table.csv and sent to every tool's remote in turn: what a new version of a file costs,
# in time and in remote space, for trove, restic and DVC.
RESTIC_BIN=""
RESTIC_SKIP=""

# ensure_restic: find restic, installing the Debian package with apt-get where allowed.
ensure_restic() {
    if command -v restic >/dev/null 2>&1; then
        RESTIC_BIN=$(command -v restic)
        return 0
    fi
    if ! apt_install restic restic restic "the versions workload"; then
        RESTIC_SKIP=$INSTALL_SKIP
        return 1
    fi
    if ! command -v restic >/dev/null 2>&1; then
        RESTIC_SKIP="the restic package is installed but restic is not on PATH"
        return 1
    fi
    RESTIC_BIN=$(command -v restic)
}

# store_facts PREFIX DIR: the size on disk (`du -sb`) and the file count of DIR, as meta.
store_facts() {
    meta "$1.remote_bytes" "$(du -sb "$2" | cut -f1)"
    meta "$1.remote_files" "$(find "$2" -type f | wc -l)"
}

# put_version SRC DIR: SRC as DIR/table.csv (a new file: the old one may be read-only).
put_version() {
    rm -f "$2/table.csv"
    cp "$1" "$2/table.csv"
}

# verify_version CLONE REMOTE K: check out version K's commit in CLONE, pull it from REMOTE
# and compare the table with the generated one.
verify_version() {
    local clone=$1 remote=$2 k=$3 got
    quiet git -C "$clone" checkout -q "${VER_COMMIT[$k]}"
    quiet "$TROVE_BIN" --no-progress -C "$clone" pull -r "$remote"
    got=$(b2sum <"$clone/table.csv" | cut -d' ' -f1)
    if [ "$got" != "${VER_SUM[$k]}" ]; then
        say "bench.sh: FAILED: trove pull -r $remote of version $k: the table differs from the generated one"
        exit 1
    fi
    say "  $(printf '%-40s' "verified: trove pull -r $remote, v$k") the table matches"
}

declare -A VER_COMMIT=() VER_SUM=()

bench_versions() {
    local gen="$WORK/ver-gen" trepo="$WORK/ver-trove" drepo="$WORK/ver-dvc"
    local rsrc="$WORK/ver-restic" rrepo="$WORK/remotes/ver-restic"
    local k rows size cur prev remote clone remotes=(folder)
    mkdir -p "$gen"

    new_git_repo "$trepo"
    pushd "$trepo" >/dev/null
    quiet "$TROVE_BIN" init
    quiet "$TROVE_BIN" remote add folder "$WORK/remotes/ver-trove-folder"
    if [ "$run_sftp" -eq 1 ]; then
        remotes+=(sftp)
        quiet "$TROVE_BIN" remote add sftp "$(sftp_url "$WORK/remotes/ver-trove-sftp")"
        quiet "$TROVE_BIN" remote set sftp keyfile "$SSH_KEY"
        quiet "$TROVE_BIN" remote set sftp known_hosts "$SSH_KNOWN_HOSTS"
    fi
    quiet git add -A
    quiet git commit -q -m "bench: remotes"
    popd >/dev/null
    # The remotes' folders exist before the first push, so that du can measure them.
    for remote in "${remotes[@]}"; do
        mkdir -p "$WORK/remotes/ver-trove-$remote"
    done

    if [ -n "$RESTIC_BIN" ]; then
        mkdir -p "$rsrc"
        quiet "$RESTIC_BIN" --cache-dir "$WORK/restic-cache" -r "$rrepo" init
    fi
    if [ -n "$DVC_BIN" ]; then
        new_git_repo "$drepo"
        pushd "$drepo" >/dev/null
        quiet "$DVC_BIN" init -q
        quiet "$DVC_BIN" config core.analytics false
        quiet "$DVC_BIN" remote add folder "$WORK/remotes/ver-dvc-folder"
        quiet git add -A
        quiet git commit -q -m "bench: dvc remote"
        popd >/dev/null
        mkdir -p "$WORK/remotes/ver-dvc-folder"
    fi

    for ((k = 1; k <= VERSIONS; k++)); do
        RUN=$k
        cur="$gen/v$k.csv"
        prev="$gen/v$((k - 1)).csv"
        say "versions: generating version $k of $VERSIONS"
        read -r rows size < <(python3 "$TOOLS" table "$cur" "$VERSIONS_MIB" "$k" "$prev")
        rm -f "$prev"
        VER_SUM[$k]=$(b2sum <"$cur" | cut -d' ' -f1)
        meta "ver.$k.rows" "$rows"
        meta "ver.$k.bytes" "$size"

        say "versions, v$k: trove"
        put_version "$cur" "$trepo"
        pushd "$trepo" >/dev/null
        timed versions trove add "$TROVE_BIN" --no-progress add table.csv
        quiet git add -A
        quiet git commit -q -m "version $k"
        VER_COMMIT[$k]=$(git rev-parse HEAD)
        for remote in "${remotes[@]}"; do
            timed_to "$WORK/push.json" versions trove "push_$remote" \
                "$TROVE_BIN" --no-progress --json push -r "$remote"
            python3 "$TOOLS" transfer-meta --meta "$META" --prefix "ver.$k.trove_$remote.push" "$WORK/push.json"
            store_facts "ver.$k.trove_$remote" "$WORK/remotes/ver-trove-$remote"
        done
        popd >/dev/null

        if [ -n "$RESTIC_BIN" ]; then
            say "versions, v$k: restic"
            put_version "$cur" "$rsrc"
            pushd "$rsrc" >/dev/null
            timed versions restic backup \
                "$RESTIC_BIN" --cache-dir "$WORK/restic-cache" -r "$rrepo" backup --quiet table.csv
            popd >/dev/null
            store_facts "ver.$k.restic" "$rrepo"
        fi

        if [ -n "$DVC_BIN" ]; then
            say "versions, v$k: dvc"
            put_version "$cur" "$drepo"
            pushd "$drepo" >/dev/null
            timed versions dvc add "$DVC_BIN" add -q table.csv
            quiet git add -A
            quiet git commit -q -m "version $k"
            timed versions dvc push_folder "$DVC_BIN" push -q -r folder
            popd >/dev/null
            store_facts "ver.$k.dvc_folder" "$WORK/remotes/ver-dvc-folder"
        fi
    done

    # Every trove remote must give back what was pushed: the first and the last version
    # from the folder remote, the last over SFTP, each in a fresh clone.
    for remote in "${remotes[@]}"; do
        clone="$WORK/ver-clone-$remote"
        quiet git clone -q "$trepo" "$clone"
        [ "$remote" = folder ] && verify_version "$clone" "$remote" 1
        verify_version "$clone" "$remote" "$VERSIONS"
        chmod -R u+w "$clone"
        rm -rf "$clone"
    done

    chmod -R u+w "$trepo" "$gen" "$WORK/remotes"
    rm -rf "$trepo" "$drepo" "$rsrc" "$gen" "$WORK/restic-cache" "$WORK"/remotes/ver-*
}

# --- the runs ---------------------------------------------------------------------------
# thousands N: N with commas (80000 -> 80,000).
thousands() {
    echo "$1" | sed ':a; s/\B[0-9]\{3\}\>/,&/; ta'
}

declare -A DS_LABEL=()
datasets=()
if [ "$run_large" -eq 1 ]; then
    datasets+=(large)
    DS_COUNT[large]=$LARGE_MIB
    DS_KIND[large]=large
    if [ "$LARGE_MIB" -eq 1024 ]; then
        DS_LABEL[large]="one file of 1 GiB"
    else
        DS_LABEL[large]="one file of $LARGE_MIB MiB"
    fi
fi
if [ "$run_small" -eq 1 ]; then
    datasets+=(small)
    DS_COUNT[small]=$SMALL_FILES
    DS_KIND[small]=small
fi
if [ "$run_growth" -eq 1 ]; then
    for n in $GROWTH_FILES; do
        [ "$run_small" -eq 1 ] && [ "$n" -eq "$SMALL_FILES" ] && continue
        [ -n "${DS_COUNT[g$n]:-}" ] && continue
        datasets+=("g$n")
        DS_COUNT[g$n]=$n
        DS_KIND[g$n]=growth
    done
fi
for ds in "${datasets[@]}"; do
    if [ "${DS_KIND[$ds]}" != large ]; then
        DS_LABEL[$ds]="$(thousands "${DS_COUNT[$ds]}") files of 1–8 KiB in 100 folders"
    fi
done

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
started=$(date '+%Y-%m-%d %H:%M:%S %Z')
mkdir -p "$WORK/remotes"

for ds in "${datasets[@]}"; do
    kind=${DS_KIND[$ds]}
    runs=$RUNS
    use_dvc=$DVC_BIN
    if [ "$kind" = growth ]; then
        runs=$GROWTH_RUNS
        [ "${BENCH_GROWTH_DVC:-0}" = 1 ] || use_dvc=""
    fi
    say "generating the $ds dataset (${DS_LABEL[$ds]})"
    gen_kind=small
    [ "$kind" = large ] && gen_kind=large
    read -r files bytes < <(python3 "$TOOLS" gen "$gen_kind" "$WORK/src/$ds" "${DS_COUNT[$ds]}")
    listing "$WORK/src/$ds" >"$WORK/$ds.sums"
    meta "ds.$ds.label" "${DS_LABEL[$ds]}"
    meta "ds.$ds.files" "$files"
    meta "ds.$ds.bytes" "$bytes"
    meta "ds.$ds.runs" "$runs"
    for ((RUN = 1; RUN <= runs; RUN++)); do
        if [ "$run_local" -eq 1 ]; then
            say "$ds, run $RUN of $runs: references"
            bench_refs "$ds"
        elif [ "$sftp_only" -eq 1 ]; then
            say "$ds, run $RUN of $runs: references (ssh)"
            bench_sftp_refs "$ds"
        fi
        if [ "${#SFTP_TRANSPORTS[@]}" -gt 0 ]; then
            # Odd runs in the listed order, even runs reversed.
            order=("${SFTP_TRANSPORTS[@]}")
            if [ $((RUN % 2)) -eq 0 ]; then
                order=()
                for ((i = ${#SFTP_TRANSPORTS[@]} - 1; i >= 0; i--)); do
                    order+=("${SFTP_TRANSPORTS[$i]}")
                done
            fi
            for SFTP_TRANSPORT in "${order[@]}"; do
                say "$ds, run $RUN of $runs: trove (transport $SFTP_TRANSPORT)"
                bench_trove "$ds"
            done
            SFTP_TRANSPORT=""
        else
            say "$ds, run $RUN of $runs: trove"
            bench_trove "$ds"
        fi
        if [ -n "$use_dvc" ]; then
            say "$ds, run $RUN of $runs: dvc"
            bench_dvc "$ds"
            [ "$RUN" -eq 1 ] && dvc_cap "$ds"
        fi
    done
    rm -rf "${WORK:?}/src/$ds"
done

if [ "$run_versions" -eq 1 ]; then
    if ! ensure_restic; then
        say "bench.sh: the versions workload runs without restic: $RESTIC_SKIP"
    fi
    # restic reads the repository's password from its environment.
    export RESTIC_PASSWORD=${RESTIC_PASSWORD:-trove-bench}
    bench_versions
    meta versions.mib "$VERSIONS_MIB"
    meta versions.count "$VERSIONS"
    meta versions.remotes "folder$([ "$run_sftp" -eq 1 ] && echo " sftp")"
    if [ -n "$RESTIC_BIN" ]; then
        meta restic "$("$RESTIC_BIN" version | head -n 1)"
    else
        meta restic "skipped ($RESTIC_SKIP)"
    fi
fi

# --- report -----------------------------------------------------------------------------
fs_type=$(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK" 2>/dev/null || echo unknown)
# ext4 without a journal: its inode allocator skips, one lookup each, every free inode of
# a block group that was freed in the last minute (six while the inode table is not
# written back), so creating files right after many were deleted (each step follows the
# rm -rf of the previous one's tree) costs up to 20× the system time.
fs_dev=$(findmnt -n -o SOURCE -T "$WORK" 2>/dev/null || true)
fs_dev=${fs_dev##*/}
if [ "$fs_type" = ext4 ] && [ -n "$fs_dev" ] && [ -d "/proc/fs/ext4/$fs_dev" ] &&
    ! compgen -G "/proc/fs/jbd2/$fs_dev-*" >/dev/null; then
    fs_type="ext4 without a journal"
    meta note.fs_nojournal "the benchmark folder is on ext4 without a journal: there a file created within a minute or so of many deletions costs up to 20× the system time (the inode allocator skips recently freed inodes one by one), so steps that create many files (cp -r, add, checkout, fetch, pull) vary with what the step before deleted; use a BENCH_DIR on a journaled file system for steady figures"
fi
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)
meta datasets "${datasets[*]}"
meta machine "$(nproc) cores${cpu:+ ($cpu)}${mem:+, $mem memory}, $(uname -sr)"
meta fs "$fs_type"
meta trove "$("$TROVE_BIN" --version)"
if [ -n "$DVC_BIN" ]; then
    dvc_note=""
    [ "$DVC_SSH" -eq 1 ] || [ "$run_sftp" -eq 0 ] || dvc_note=" (without dvc-ssh: no SFTP rows)"
    if [ "$run_s3" -eq 1 ]; then
        if [ "$DVC_S3" -eq 1 ]; then
            # `dvc version` says which s3fs the dvc-s3 plugin runs on.
            dvc_note+=" ($(grep -o 's3 (s3fs = [^)]*)' <<<"$dvc_supports" | sed 's/^s3 (\(.*\))$/dvc-s3 on \1/'))"
        else
            dvc_note+=" (without dvc-s3: no S3 rows)"
        fi
    fi
    [ "$run_growth" -eq 1 ] && [ "${BENCH_GROWTH_DVC:-0}" != 1 ] && dvc_note+=" (not run on the growth datasets)"
    meta dvc "$("$DVC_BIN" --version 2>/dev/null | tail -n 1)$dvc_note"
fi
if [ "$run_sftp" -eq 1 ]; then
    sshd_version=$("$SSHD" -V 2>&1 | head -n 1 | cut -d, -f1)
    meta sftp "${sshd_version:-OpenSSH} sshd on 127.0.0.1 (loopback), user $SSH_USER, ed25519 key; each tool's default parallelism"
    if [ "$sftp_only" -eq 1 ]; then
        meta sftp.transports "${SFTP_TRANSPORTS[*]}"
        meta sftp.ssh "$(ssh -V 2>&1 | head -n 1 | cut -d, -f1); the ssh cat and tar references: ${SSH_OPTS[*]: -2}"
    fi
elif [ "$s3_only" -eq 1 ]; then
    meta sftp "not run (--s3-only)"
elif [ "$run_remote" -eq 1 ]; then
    meta sftp "skipped ($SFTP_SKIP)"
fi
if [ "$run_s3" -eq 1 ]; then
    meta s3 "$("$S3_BIN" --version 2>/dev/null | head -n 1) on 127.0.0.1 (loopback, http, path-style), its data in the benchmark folder, every request logged (RUST_LOG=info,s3s::service=debug); trove s3://$S3_BUCKET/trove, DVC s3://$S3_BUCKET/dvc (endpointurl); each tool's default parallelism"
    [ -z "$DVC_BIN" ] || [ "$DVC_S3" -eq 1 ] || meta note.dvc_s3 "dvc has no s3 support (pip install dvc-s3): no DVC figures for S3"
elif [ "$sftp_only" -eq 1 ]; then
    meta s3 "not run (--sftp-only)"
elif [ "$run_remote" -eq 1 ]; then
    meta s3 "skipped ($S3_SKIP)"
fi
if [ "$sftp_only" -eq 1 ]; then
    meta sftp_only 1
    meta note.sftp_only "--sftp-only: the add ran untimed, only to have something to push; trove ran once per transport (${SFTP_TRANSPORTS[*]}, \`trove remote set NAME transport T\`), each in its own repository and remote folder, the order alternating from run to run; references: ssh cat of the large file, tar over ssh of the small files; no folder or S3 remote"
fi
[ "$s3_only" -eq 0 ] || meta note.s3_only "--s3-only: the local steps (add) ran untimed, only to have something to push; no references, folder or SFTP remote"
meta load_before "$load_before"
meta load_after "$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
meta started "$started"
meta finished "$(date '+%Y-%m-%d %H:%M:%S %Z')"
meta growth_slack "$GROWTH_SLACK"

mkdir -p "$(dirname "$JSON_OUT")"
python3 "$TOOLS" report --tsv "$TSV" --meta "$META" --json "$JSON_OUT"
say "JSON written to $JSON_OUT"
