#!/usr/bin/env bash
# Reproduce an old baseline from a fresh clone: the data of a past commit, restored
# exactly, the way a colleague or a CI job would do it.
#
#   bash examples/baseline.sh                      # uses `trove` from PATH
#   TROVE=target/release/trove bash examples/baseline.sh
#
# It builds a small project with two versions of a dataset (v1 is tagged `baseline`),
# pushes the data to a folder remote, clones the project afresh and then:
#   1. `git checkout baseline && trove pull`   restores v1 in the work tree;
#   2. `trove diff baseline main`              lists what changed since;
#   3. `trove get data --rev baseline -o DIR`  writes v1 elsewhere without moving HEAD.
# Exits 0 when every step gave the data it should.
set -euo pipefail

TROVE=${TROVE:-trove}
# The binary as an absolute path: a relative one keeps working after we change folders,
# and a bare name is looked up on PATH now, before the function `trove` below would
# shadow it (and call itself for ever).
if [[ "$TROVE" == */* ]]; then
    TROVE="$(cd "$(dirname "$TROVE")" && pwd)/$(basename "$TROVE")"
else
    found=$(type -P "$TROVE") || { echo "baseline: no \`$TROVE\` on PATH; set TROVE=/path/to/trove" >&2; exit 1; }
    TROVE=$found
fi

step() {
    printf '\n==> %s\n' "$*"
}

fail() {
    echo "baseline: FAILED: $*" >&2
    exit 1
}

trove() {
    printf '$ trove'
    printf ' %q' "$@"
    printf '\n'
    "$TROVE" "$@"
}

# A sorted listing of every file's checksum under a folder, to compare versions.
listing() {
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 sha256sum)
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trove-baseline.XXXXXX")
cleanup() {
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
export GIT_AUTHOR_NAME="Baseline Example" GIT_AUTHOR_EMAIL="example@example.com"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

step "a project with a dataset, v1, tagged baseline"
git init -q -b main project
cd project
trove init
trove remote add store "$WORK/remote"
mkdir -p data/train data/test
for i in $(seq 1 20); do printf 'sample %d,%d\n' "$i" $((i % 3)) > "data/train/s$i.csv"; done
printf 'held out\n' > data/test/t1.csv
trove add data
git add -A
git commit -q -m "v1: first dataset"
git tag baseline
trove push
listing data > "$WORK/v1.sums"

step "v2: relabel some samples, drop one, add more"
for i in 3 6 9; do printf 'sample %d,relabelled\n' "$i" > "data/train/s$i.csv"; done
rm data/train/s20.csv
for i in $(seq 21 25); do printf 'sample %d,%d\n' "$i" $((i % 3)) > "data/train/s$i.csv"; done
trove commit -m "v2: relabelled and more samples"
trove push
listing data > "$WORK/v2.sums"
cd "$WORK"

step "a fresh clone reproduces the baseline"
git clone -q project clone
cd clone
git checkout -q baseline
trove pull
listing data > "$WORK/clone-v1.sums"
cmp -s "$WORK/v1.sums" "$WORK/clone-v1.sums" || fail "the clone's baseline data differs from v1"

step "what changed since the baseline"
trove diff baseline main
changes=$("$TROVE" --json diff baseline main)
for want in '"data/train/s21.csv"' '"data/train/s20.csv"' '"data/train/s3.csv"'; do
    grep -q "$want" <<<"$changes" || fail "diff does not list $want"
done

step "back to main: the newest data"
git checkout -q main
trove pull
listing data > "$WORK/clone-v2.sums"
cmp -s "$WORK/v2.sums" "$WORK/clone-v2.sums" || fail "the clone's main data differs from v2"

step "the baseline beside it, without moving HEAD"
trove get data --rev baseline -o "$WORK/baseline-data"
listing "$WORK/baseline-data" > "$WORK/get-v1.sums"
cmp -s "$WORK/v1.sums" "$WORK/get-v1.sums" || fail "get wrote data that differs from v1"
[ "$(git rev-parse --abbrev-ref HEAD)" = main ] || fail "get moved HEAD"

step "done: the baseline was reproduced from a fresh clone"
