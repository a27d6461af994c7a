#!/usr/bin/env bash
# The model registry, end to end: train two models, register them, promote one to prod,
# share the registry through a git server, and fetch the production model by name from a
# second folder that is no clone at all (as a deploy job would).
#
#   bash examples/models.sh                      # uses `trove` from PATH
#   TROVE=target/release/trove bash examples/models.sh
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
    found=$(type -P "$TROVE") || { echo "models: no \`$TROVE\` on PATH; set TROVE=/path/to/trove" >&2; exit 1; }
    TROVE=$found
fi
HERE="$(cd "$(dirname "$0")" && pwd)"

step() {
    printf '\n==> %s\n' "$*"
}

fail() {
    echo "models: FAILED: $*" >&2
    exit 1
}

trove() {
    printf '$ trove'
    printf ' %q' "$@"
    printf '\n'
    "$TROVE" "$@"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trove-models.XXXXXX")
cleanup() {
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"
export GIT_AUTHOR_NAME="Models Example" GIT_AUTHOR_EMAIL="example@example.com"
export GIT_COMMITTER_NAME="$GIT_AUTHOR_NAME" GIT_COMMITTER_EMAIL="$GIT_AUTHOR_EMAIL"
# `model get --repo` keeps a mirror of the repository's git objects in the cache folder:
# this one goes with the example.
export XDG_CACHE_HOME="$WORK/cache"

step "a git server (a bare repository), a data remote (a folder), and a project"
git init -q --bare -b main "$WORK/server.git"
mkdir "$WORK/store"
git init -q -b main project
cd project
git config user.name "$GIT_AUTHOR_NAME"
git config user.email "$GIT_AUTHOR_EMAIL"
git remote add origin "$WORK/server.git"
trove init
trove remote add store "$WORK/store" --default
cp "$HERE/train.py" .
printf 'metrics.json\nmodel.json\n' >> .gitignore
mkdir data
for i in $(seq 1 40); do
    printf '%d,%d.%d\n' "$i" $((3 * i)) $((i % 7))
done > data/train.csv
trove add data
git add -A
git commit -q -m "training script and data"

step "two runs, each saving its model as an artifact of the record"
for lr in 0.0001 0.0003; do
    trove exp run --name "lr-$lr" -p "lr=$lr" --metrics-file metrics.json --artifact model.json -- \
        python3 train.py --lr "$lr" --epochs 15 --metrics metrics.json --model model.json
done

step "register both runs' models as versions of \`linear\`, and put the first in prod"
trove model register linear --exp lr-0.0001 -m "first baseline"
trove model register linear --exp lr-0.0003 -m "higher learning rate"
trove model promote linear 0.1.0 --stage prod -m "baseline goes live"
trove model promote linear 0.2.0 --alias challenger
trove model list
trove model show linear

step "share: the models' objects to the data remote, the registry (git tags) to the git server"
trove push
git push -q origin main --tags

step "a deploy job in a folder that is no clone: get the production model by name"
mkdir "$WORK/deploy"
cd "$WORK/deploy"
trove model get linear:prod --repo "file://$WORK/server.git" -o model.json
"$TROVE" -C "$WORK/project" model get linear@0.1.0 -o "$WORK/expected-v0.1.0.json" >/dev/null
cmp model.json "$WORK/expected-v0.1.0.json" || fail "the deployed model is not v0.1.0's bytes"
[ "$(ls -A)" = model.json ] || fail "the deploy folder holds more than the model: $(ls -A)"

step "the challenger wins: promote it, share the tag, deploy again"
cd "$WORK/project"
trove model promote linear 0.2.0 --stage prod -m "won the A/B test"
git push -q origin --tags
cd "$WORK/deploy"
trove model get linear:prod --repo "file://$WORK/server.git" -o model-next.json
"$TROVE" -C "$WORK/project" model get linear@challenger -o "$WORK/expected-v0.2.0.json" >/dev/null
cmp model-next.json "$WORK/expected-v0.2.0.json" || fail "the new production model is not v0.2.0's bytes"
deployed=$("$TROVE" --json model get linear:prod --repo "file://$WORK/server.git" -o "$WORK/check.json")
grep -q '"version": "v0.2.0"' <<<"$deployed" || fail "prod is not v0.2.0: $deployed"

step "done: the model in production is linear v0.2.0, fetched by name from outside any clone"
