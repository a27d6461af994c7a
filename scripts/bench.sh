#!/usr/bin/env bash
# Benchmark trove's workflow on two generated datasets and print a markdown table.
#
#   bash scripts/bench.sh                 # 1 GiB file + 20,000 small files
#   bash scripts/bench.sh --small-only    # only the small files
#   bash scripts/bench.sh --large-only    # only the large file
#   bash scripts/bench.sh --no-remote     # only the local steps (no push / pull)
#   bash scripts/bench.sh --no-sftp       # push / pull to a folder remote only
#   BENCH_LARGE_MIB=64 bash scripts/bench.sh   # a smaller large file, for a quick check
#
# Datasets (generated deterministically from a seeded PRNG, so every run sees the same bytes):
#   large: one file of BENCH_LARGE_MIB MiB (default 1024)
#   small: BENCH_SMALL_FILES files (default 20000) of 1-8 KiB in 100 folders
#
# For each dataset, in a fresh git repository, it times (wall clock, seconds):
#   trove add, a no-op trove status (run twice, the second reported), trove checkout after
#   deleting the data (full restore) and a no-op trove checkout;
#   then, unless --no-remote: trove push to a folder remote (and once more, with nothing
#   left to send), trove pull from it into a fresh `git clone` of the repository, and the
#   same push / push / pull against an SFTP remote on a real OpenSSH server that the script
#   starts on 127.0.0.1 (a free port, throwaway host and user keys, as the current user);
#   and, as references, `cp -r` of the dataset, a `find` walk that stats every file, and
#   `scp -r` of the dataset to and from that server.
# Every pull is checked: the restored files must have the same names and BLAKE2 sums as
# the generated ones, or the script stops with an error.
# When `dvc` is on PATH (and BENCH_DVC is not 0), the same steps run with DVC on the same
# data (`dvc push` / `dvc pull` to a local remote and to ssh://USER@127.0.0.1:PORT/…, which
# needs the dvc-ssh package) and the table shows the ratio DVC / trove per step.
#
# The SFTP steps need /usr/sbin/sshd (Debian package openssh-server) and ssh-keygen. When
# sshd is missing, the script installs openssh-server with apt-get where it can (as root, or
# with password-less sudo); otherwise it skips the SFTP steps and says so.
#
# Environment:
#   BENCH_DIR          where temp data goes (default /tmp/trove-bench); removed afterwards
#   BENCH_LARGE_MIB    size of the large file in MiB (default 1024)
#   BENCH_SMALL_FILES  number of small files (default 20000)
#   TROVE              a trove binary to use instead of building one with cargo --release
#   BENCH_DVC          0 to skip DVC even when it is installed
#   BENCH_SSHD         the sshd binary (default /usr/sbin/sshd; it must be an absolute path)
#   BENCH_INSTALL      0: never install openssh-server, skip the SFTP steps instead
#
# The table goes to stdout; progress goes to stderr. Caches are warm (the data was just
# written); every timed step starts after a `sync` so earlier writes are not billed to it.
set -euo pipefail

usage() {
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
}

run_large=1
run_small=1
run_remote=1
run_sftp=1
for arg in "$@"; do
    case "$arg" in
        --small-only) run_large=0 ;;
        --large-only) run_small=0 ;;
        --no-remote) run_remote=0 ;;
        --no-sftp) run_sftp=0 ;;
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
if [ "$run_large" -eq 0 ] && [ "$run_small" -eq 0 ]; then
    echo "bench.sh: --small-only and --large-only exclude each other" >&2
    exit 2
fi
[ "$run_remote" -eq 1 ] || run_sftp=0

LARGE_MIB=${BENCH_LARGE_MIB:-1024}
SMALL_FILES=${BENCH_SMALL_FILES:-20000}
BENCH_ROOT=${BENCH_DIR:-/tmp/trove-bench}
for n in "$LARGE_MIB" "$SMALL_FILES"; do
    [[ "$n" =~ ^[1-9][0-9]*$ ]] || {
        echo "bench.sh: BENCH_LARGE_MIB and BENCH_SMALL_FILES must be positive whole numbers" >&2
        exit 2
    }
done

REPO=$(cd "$(dirname "$0")/.." && pwd)

say() {
    printf '%s\n' "$*" >&2
}

command -v python3 >/dev/null || {
    say "bench.sh: python3 is needed to generate the data"
    exit 1
}
command -v git >/dev/null || {
    say "bench.sh: git is needed"
    exit 1
}

mkdir -p "$BENCH_ROOT"
WORK=$(mktemp -d "$BENCH_ROOT/run.XXXXXX")
# sshd's pid once it runs, so that cleanup stops it and the sessions it started.
SSHD_PID=""
cleanup() {
    stop_sshd
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
    rmdir "$BENCH_ROOT" 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
LOG="$WORK/log"

# --- the binary -------------------------------------------------------------------------
if [ -n "${TROVE:-}" ]; then
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
if [ "${BENCH_DVC:-1}" != "0" ] && command -v dvc >/dev/null 2>&1; then
    DVC_BIN=$(command -v dvc)
    # `dvc version` lists `ssh (sshfs = …)` under "Supports:" when dvc-ssh is installed.
    if "$DVC_BIN" version 2>/dev/null | grep -q '^[[:space:]]*ssh ('; then
        DVC_SSH=1
    fi
fi
export DVC_NO_ANALYTICS=1

# --- the SFTP server --------------------------------------------------------------------
SSHD=${BENCH_SSHD:-/usr/sbin/sshd}
SSH_DIR="$WORK/ssh"
SSH_USER=$(id -un)
SSH_KEY="$SSH_DIR/user_ed25519"
SSH_KNOWN_HOSTS="$SSH_DIR/known_hosts"
SSH_PORT=""
# Why the SFTP steps are skipped, when they are.
SFTP_SKIP=""

# ensure_sshd: make sure $SSHD exists, installing openssh-server with apt-get if allowed.
ensure_sshd() {
    [ -x "$SSHD" ] && return 0
    if [ "${BENCH_INSTALL:-1}" = "0" ]; then
        SFTP_SKIP="$SSHD is missing (and BENCH_INSTALL=0)"
        return 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        SFTP_SKIP="$SSHD is missing and apt-get is not available: install an OpenSSH server"
        return 1
    fi
    local sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            SFTP_SKIP="$SSHD is missing, and installing openssh-server needs root: run \`apt-get install openssh-server\`"
            return 1
        fi
    fi
    say "installing openssh-server (apt-get) for the SFTP steps"
    if ! { "${sudo[@]}" apt-get update -qq &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server; } >>"$LOG" 2>&1; then
        tail -n 20 "$LOG" >&2
        SFTP_SKIP="apt-get install openssh-server failed (its output is above)"
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
    fi
elif [ "$run_remote" -eq 1 ]; then
    SFTP_SKIP="--no-sftp"
else
    SFTP_SKIP="--no-remote"
fi
HAVE_SCP=0
if [ "$run_sftp" -eq 1 ] && command -v scp >/dev/null 2>&1; then
    HAVE_SCP=1
fi
if [ -n "$DVC_BIN" ] && [ "$run_sftp" -eq 1 ] && [ "$DVC_SSH" -eq 0 ]; then
    say "bench.sh: dvc has no ssh support (pip install dvc-ssh): DVC's SFTP rows stay empty"
fi

# --- data -------------------------------------------------------------------------------
generate() {
    # generate KIND DEST: deterministic pseudo-random bytes (Python's seeded Mersenne Twister).
    python3 - "$1" "$2" "$LARGE_MIB" "$SMALL_FILES" <<'PY'
import os, random, sys

kind, dest, large_mib, small_files = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
os.makedirs(dest)
if kind == "large":
    rng = random.Random(1)
    chunk = 4 << 20
    left = large_mib << 20
    with open(os.path.join(dest, "large.bin"), "wb") as f:
        while left:
            n = min(chunk, left)
            f.write(rng.randbytes(n))
            left -= n
else:
    rng = random.Random(2)
    folders = 100
    for d in range(folders):
        os.mkdir(os.path.join(dest, f"part-{d:03}"))
    for i in range(small_files):
        size = rng.randint(1024, 8192)
        path = os.path.join(dest, f"part-{i % folders:03}", f"file-{i:05}.bin")
        with open(path, "wb") as f:
            f.write(rng.randbytes(size))
PY
}

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
    say "  $(printf '%-34s' "verified") $(wc -l <"$WORK/$ds.sums") files match"
}

# --- timing -----------------------------------------------------------------------------
declare -A T=()

now() {
    date +%s.%N
}

# timed KEY CMD...: run CMD (output to the log), store its wall-clock seconds under KEY.
timed() {
    local key=$1
    shift
    sync
    local start end
    start=$(now)
    if ! "$@" >>"$LOG" 2>&1; then
        say "bench.sh: failed: $*"
        tail -n 30 "$LOG" >&2
        exit 1
    fi
    end=$(now)
    T[$key]=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.3f", b - a }')
    say "  $(printf '%-34s' "$key") ${T[$key]} s"
}

quiet() {
    if ! "$@" >>"$LOG" 2>&1; then
        say "bench.sh: failed: $*"
        tail -n 30 "$LOG" >&2
        exit 1
    fi
}

# check_clean CMD...: after a restore, status must report every tracked path unchanged.
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

walk() {
    find "$1" -type f -printf '%s %T@\n' >/dev/null
}

# sftp_url PATH [SCHEME]: the benchmark server's URL for the absolute PATH.
sftp_url() {
    echo "${2:-sftp}://$SSH_USER@127.0.0.1:$SSH_PORT$1"
}

# The remote steps, run in the benchmark repository after the local ones: for each remote,
# push (then push again: nothing left to send); then for each remote, `git clone` the
# repository and pull into the clone, and check the data that arrived.
trove_remotes() {
    local ds=$1 repo=$2 remote clone
    local remotes=(folder)
    quiet "$TROVE_BIN" remote add folder "$WORK/remotes/trove-$ds-folder"
    if [ "$run_sftp" -eq 1 ]; then
        remotes+=(sftp)
        quiet "$TROVE_BIN" remote add sftp "$(sftp_url "$WORK/remotes/trove-$ds-sftp")"
        quiet "$TROVE_BIN" remote set sftp keyfile "$SSH_KEY"
        quiet "$TROVE_BIN" remote set sftp known_hosts "$SSH_KNOWN_HOSTS"
    fi
    # The clones find the remotes in the committed .trove/config.
    quiet git add -A
    quiet git commit -q -m "bench: track data, add remotes"
    for remote in "${remotes[@]}"; do
        timed "$ds/trove/push_$remote" "$TROVE_BIN" --no-progress push -r "$remote"
        timed "$ds/trove/push_${remote}_noop" "$TROVE_BIN" --no-progress push -r "$remote"
    done
    for remote in "${remotes[@]}"; do
        clone="$WORK/clone-trove-$ds-$remote"
        quiet git clone -q "$repo" "$clone"
        timed "$ds/trove/pull_$remote" "$TROVE_BIN" --no-progress -C "$clone" pull -r "$remote"
        verify "$ds" "trove pull -r $remote" "$clone/data"
        chmod -R u+w "$clone"
        rm -rf "$clone"
    done
    rm -rf "$WORK/remotes/trove-$ds-folder" "$WORK/remotes/trove-$ds-sftp"
}

dvc_remotes() {
    local ds=$1 repo=$2 remote clone
    local remotes=(folder)
    quiet "$DVC_BIN" remote add folder "$WORK/remotes/dvc-$ds-folder"
    if [ "$run_sftp" -eq 1 ] && [ "$DVC_SSH" -eq 1 ]; then
        remotes+=(sftp)
        quiet "$DVC_BIN" remote add sftp "$(sftp_url "$WORK/remotes/dvc-$ds-sftp" ssh)"
        quiet "$DVC_BIN" remote modify sftp keyfile "$SSH_KEY"
    fi
    quiet git add -A
    quiet git commit -q -m "bench: track data, add remotes"
    for remote in "${remotes[@]}"; do
        timed "$ds/dvc/push_$remote" "$DVC_BIN" push -q -r "$remote"
        timed "$ds/dvc/push_${remote}_noop" "$DVC_BIN" push -q -r "$remote"
    done
    for remote in "${remotes[@]}"; do
        clone="$WORK/clone-dvc-$ds-$remote"
        quiet git clone -q "$repo" "$clone"
        pushd "$clone" >/dev/null
        timed "$ds/dvc/pull_$remote" "$DVC_BIN" pull -q -r "$remote"
        popd >/dev/null
        verify "$ds" "dvc pull -r $remote" "$clone/data"
        chmod -R u+w "$clone"
        rm -rf "$clone"
    done
    rm -rf "$WORK/remotes/dvc-$ds-folder" "$WORK/remotes/dvc-$ds-sftp"
}

bench_trove() {
    local ds=$1 repo="$WORK/trove-$1"
    new_git_repo "$repo"
    # The reference copy doubles as the repository's data.
    timed "$ds/ref/cp" cp -r "$WORK/src/$ds" "$repo/data"
    timed "$ds/ref/walk" walk "$repo/data"
    # Not a subshell: `timed` records into T.
    pushd "$repo" >/dev/null
    quiet "$TROVE_BIN" init
    timed "$ds/trove/add" "$TROVE_BIN" --no-progress add data
    timed "$ds/trove/status1" "$TROVE_BIN" --no-progress status
    timed "$ds/trove/status" "$TROVE_BIN" --no-progress status
    rm -rf data
    timed "$ds/trove/restore" "$TROVE_BIN" --no-progress checkout
    timed "$ds/trove/noop" "$TROVE_BIN" --no-progress checkout
    check_clean "$TROVE_BIN" status --json
    if [ "$run_remote" -eq 1 ]; then
        trove_remotes "$ds" "$repo"
    fi
    popd >/dev/null
    chmod -R u+w "$repo"
    rm -rf "$repo"
}

bench_dvc() {
    local ds=$1 repo="$WORK/dvc-$1"
    new_git_repo "$repo"
    cp -r "$WORK/src/$ds" "$repo/data"
    pushd "$repo" >/dev/null
    quiet "$DVC_BIN" init -q
    quiet "$DVC_BIN" config core.analytics false
    timed "$ds/dvc/add" "$DVC_BIN" add -q data
    timed "$ds/dvc/status1" "$DVC_BIN" status -q
    timed "$ds/dvc/status" "$DVC_BIN" status -q
    rm -rf data
    timed "$ds/dvc/restore" "$DVC_BIN" checkout -q
    timed "$ds/dvc/noop" "$DVC_BIN" checkout -q
    if [ "$run_remote" -eq 1 ]; then
        dvc_remotes "$ds" "$repo"
    fi
    popd >/dev/null
    chmod -R u+w "$repo"
    rm -rf "$repo"
}

# What the link gives a plain client: OpenSSH's scp (over SFTP, one connection, one file
# at a time), up to the server and back.
bench_scp() {
    local ds=$1
    local there="$WORK/remotes/scp-$ds" back="$WORK/scp-back-$ds"
    timed "$ds/ref/scp_up" scp -q -r -P "$SSH_PORT" "${SSH_OPTS[@]}" "$WORK/src/$ds" "$SSH_USER@127.0.0.1:$there"
    timed "$ds/ref/scp_down" scp -q -r -P "$SSH_PORT" "${SSH_OPTS[@]}" "$SSH_USER@127.0.0.1:$there" "$back"
    verify "$ds" "scp -r" "$back"
    rm -rf "$there" "$back"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
datasets=()
[ "$run_large" -eq 1 ] && datasets+=(large)
[ "$run_small" -eq 1 ] && datasets+=(small)
mkdir -p "$WORK/remotes"

for ds in "${datasets[@]}"; do
    say "generating the $ds dataset"
    generate "$ds" "$WORK/src/$ds"
    listing "$WORK/src/$ds" >"$WORK/$ds.sums"
    say "$ds: trove"
    bench_trove "$ds"
    if [ -n "$DVC_BIN" ]; then
        say "$ds: dvc"
        bench_dvc "$ds"
    fi
    if [ "$HAVE_SCP" -eq 1 ]; then
        say "$ds: scp"
        bench_scp "$ds"
    fi
    rm -rf "${WORK:?}/src/$ds"
done

# --- report -----------------------------------------------------------------------------
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.1f×", a / b; else print "-" }'
}

fs_type=$(findmnt -n -o FSTYPE -T "$WORK" 2>/dev/null || stat -f -c %T "$WORK" 2>/dev/null || echo unknown)
cpu=$(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo 2>/dev/null || true)
mem=$(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo 2>/dev/null || true)

echo "## trove benchmark"
echo
echo "- machine: $(nproc) cores${cpu:+ ($cpu)}${mem:+, $mem memory}, $(uname -sr)"
echo "- file system of the benchmark folder: $fs_type"
echo "- trove: $("$TROVE_BIN" --version)"
if [ -n "$DVC_BIN" ]; then
    dvc_note=""
    [ "$DVC_SSH" -eq 1 ] || dvc_note=" (without dvc-ssh: no SFTP rows)"
    echo "- dvc: $("$DVC_BIN" --version 2>/dev/null | tail -n 1)$dvc_note"
else
    echo "- dvc: not on PATH, not compared"
fi
if [ "$run_remote" -eq 1 ]; then
    echo "- folder remote: a folder on the same file system"
fi
if [ "$run_sftp" -eq 1 ]; then
    sshd_version=$("$SSHD" -V 2>&1 | head -n 1 | cut -d, -f1)
    echo "- SFTP remote: ${sshd_version:-OpenSSH} sshd on 127.0.0.1 (loopback), user $SSH_USER, ed25519 key; each tool's default parallelism"
else
    echo "- SFTP remote: skipped ($SFTP_SKIP)"
fi
echo "- load average before / after the run: $load_before / $(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)"
echo "- wall-clock seconds of one run each, warm page cache, each step after a \`sync\`"

rows=(
    "add|add"
    "status1|status, first run after add"
    "status|status, nothing changed (2nd run)"
    "restore|checkout after deleting the data"
    "noop|checkout, nothing to do"
)
if [ "$run_remote" -eq 1 ]; then
    rows+=(
        "push_folder|push to a folder remote"
        "push_folder_noop|push to the folder remote again, nothing to send"
        "pull_folder|pull from the folder remote into a fresh clone"
    )
fi
if [ "$run_sftp" -eq 1 ]; then
    rows+=(
        "push_sftp|push over SFTP (sshd on 127.0.0.1)"
        "push_sftp_noop|push over SFTP again, nothing to send"
        "pull_sftp|pull over SFTP into a fresh clone"
    )
fi
refs=(
    "cp|reference: \`cp -r\` of the data"
    "walk|reference: \`find\` stat walk"
)
if [ "$HAVE_SCP" -eq 1 ]; then
    refs+=(
        "scp_up|reference: \`scp -r\` of the data to sshd"
        "scp_down|reference: \`scp -r\` of the data from sshd"
    )
fi
for ds in "${datasets[@]}"; do
    echo
    if [ "$ds" = large ]; then
        echo "### one file of $LARGE_MIB MiB"
    else
        echo "### $SMALL_FILES files of 1-8 KiB in 100 folders"
    fi
    echo
    if [ -n "$DVC_BIN" ]; then
        echo "| step | trove (s) | DVC (s) | DVC / trove |"
        echo "|---|---:|---:|---:|"
    else
        echo "| step | trove (s) |"
        echo "|---|---:|"
    fi
    for row in "${rows[@]}"; do
        key=${row%%|*}
        label=${row#*|}
        t=${T[$ds/trove/$key]:-}
        if [ -n "$DVC_BIN" ]; then
            d=${T[$ds/dvc/$key]:-}
            echo "| $label | ${t:--} | ${d:--} | $(ratio "$d" "$t") |"
        else
            echo "| $label | ${t:--} |"
        fi
    done
    for row in "${refs[@]}"; do
        key=${row%%|*}
        label=${row#*|}
        if [ -n "$DVC_BIN" ]; then
            echo "| $label | ${T[$ds/ref/$key]:--} | | |"
        else
            echo "| $label | ${T[$ds/ref/$key]:--} |"
        fi
    done
done
