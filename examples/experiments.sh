#!/usr/bin/env bash
# Experiments, end to end: record three runs of examples/train.py with different learning
# rates, compare them, and re-create the best one.
#
#   bash examples/experiments.sh                      # uses `trove` from PATH
#   TROVE=target/release/trove bash examples/experiments.sh
#
# Needs python3. Exits 0 when every step did what it should.
set -euo pipefail

TROVE=${TROVE:-trove}
# The binary as an absolute path: a relative one keeps working after we change folders,
# and a bare name is looked up on PATH now, before the function `trove` below would
# shadow it (and call itself for ever).
if [[ "$TROVE" == */* ]]; then
    TROVE="$(cd "$(dirname "$TROVE")" && pwd)/$(basename "$TROVE")"
else
    found=$(type -P "$TROVE") || { echo "experiments: no \`$TROVE\` on PATH; set TROVE=/path/to/trove" >&2; exit 1; }
    TROVE=$found
fi
HERE="$(cd "$(dirname "$0")" && pwd)"

step() {
    printf '\n==> %s\n' "$*"
}

fail() {
    echo "experiments: FAILED: $*" >&2
    exit 1
}

trove() {
    printf '$ trove'
    printf ' %q' "$@"
    printf '\n'
    "$TROVE" "$@"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trove-experiments.XXXXXX")
cleanup() {
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
export GIT_AUTHOR_NAME="Experiments Example" GIT_AUTHOR_EMAIL="example@example.com"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"

step "a project: the training script and a dataset tracked by trove"
git init -q -b main project
cd project
git config user.name "$GIT_AUTHOR_NAME"
git config user.email "$GIT_AUTHOR_EMAIL"
trove init
cp "$HERE/train.py" .
printf 'metrics.json\n' >> .gitignore
mkdir data
for part in 1 2 3; do
    for i in $(seq 1 20); do
        x=$((part * 20 + i))
        printf '%d,%d.%d\n' "$x" $((3 * x)) $((x % 7))
    done > "data/part$part.csv"
done
trove add data
git add -A
git commit -q -m "training script and data"

step "three runs, one per learning rate"
for lr in 0.00001 0.0001 0.0003; do
    trove exp run --name "lr-$lr" -p "lr=$lr" -p epochs=15 --metrics-file metrics.json -- \
        python3 train.py --lr "$lr" --epochs 15 --metrics metrics.json
done

step "compare them"
trove exp list --sort metrics.acc:desc
best=$("$TROVE" --json exp list --sort metrics.acc:desc --limit 1)
grep -q '"lr-0.0001"\|"lr-0.0003"' <<<"$best" || fail "the best run is not one of the two larger learning rates: $best"
trove exp list --filter "metrics.acc > 0.5 AND params.epochs = '15'"
trove exp diff lr-0.00001 lr-0.0003
trove exp plot -o "$WORK/plot.html"
[ -s "$WORK/plot.html" ] || fail "no plot was written"

step "re-create the slowest run as a baseline on its own branch"
trove exp checkout lr-0.00001 -b baseline-lr-small
[ "$(git rev-parse --abbrev-ref HEAD)" = baseline-lr-small ] || fail "not on the baseline branch"
trove status

step "done: three runs recorded, compared and one re-created"
