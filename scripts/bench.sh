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
for arg in "$@"; do
    case "$arg" in
        --small-only) run_large=0 ;;
        --large-only) run_small=0 ;;
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
cleanup() {
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
    rmdir "$BENCH_ROOT" 2>/dev/null || true
}
trap cleanup EXIT
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
if [ "${BENCH_DVC:-1}" != "0" ] && command -v dvc >/dev/null 2>&1; then
    DVC_BIN=$(command -v dvc)
fi
export DVC_NO_ANALYTICS=1

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
    popd >/dev/null
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
    popd >/dev/null
    rm -rf "$repo"
}

load_before=$(cut -d' ' -f1-3 /proc/loadavg 2>/dev/null || echo unknown)
datasets=()
[ "$run_large" -eq 1 ] && datasets+=(large)
[ "$run_small" -eq 1 ] && datasets+=(small)

for ds in "${datasets[@]}"; do
    say "generating the $ds dataset"
    generate "$ds" "$WORK/src/$ds"
    say "$ds: trove"
    bench_trove "$ds"
    if [ -n "$DVC_BIN" ]; then
        say "$ds: dvc"
        bench_dvc "$ds"
    fi
    rm -rf "${WORK:?}/src/$ds"
done

# --- report -----------------------------------------------------------------------------
ratio() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f×", a / b; else print "-" }'
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
    echo "- dvc: $("$DVC_BIN" --version 2>/dev/null | tail -n 1)"
else
    echo "- dvc: not on PATH, not compared"
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
        if [ -n "$DVC_BIN" ]; then
            t=${T[$ds/trove/$key]}
            d=${T[$ds/dvc/$key]}
            echo "| $label | $t | $d | $(ratio "$d" "$t") |"
        else
            echo "| $label | ${T[$ds/trove/$key]} |"
        fi
    done
    if [ -n "$DVC_BIN" ]; then
        echo "| reference: \`cp -r\` of the data | ${T[$ds/ref/cp]} | | |"
        echo "| reference: \`find\` stat walk | ${T[$ds/ref/walk]} | | |"
    else
        echo "| reference: \`cp -r\` of the data | ${T[$ds/ref/cp]} |"
        echo "| reference: \`find\` stat walk | ${T[$ds/ref/walk]} |"
    fi
done
