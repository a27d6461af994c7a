#!/usr/bin/env bash
# Sharing data through a remote, end to end, in a fresh temporary folder: one clone adds
# and pushes data, a second clone (a colleague, or CI) pulls it. The remote is a folder
# here; an SFTP remote works the same once its login is set up (docs/remotes.md).
#
#   bash examples/remotes.sh                      # uses `trove` from PATH
#   TROVE=target/release/trove bash examples/remotes.sh
#
# Exits 0 when every step did what it should.
set -euo pipefail

TROVE=${TROVE:-trove}
# The binary as an absolute path: a relative one keeps working after we change folders,
# and a bare name is looked up on PATH now, before the function `trove` below would
# shadow it (and call itself for ever).
if [[ "$TROVE" == */* ]]; then
    TROVE="$(cd "$(dirname "$TROVE")" && pwd)/$(basename "$TROVE")"
else
    found=$(type -P "$TROVE") || { echo "remotes: no \`$TROVE\` on PATH; set TROVE=/path/to/trove" >&2; exit 1; }
    TROVE=$found
fi

step() {
    printf '\n==> %s\n' "$*"
}

fail() {
    echo "remotes: FAILED: $*" >&2
    exit 1
}

trove() {
    printf '$ trove'
    printf ' %q' "$@"
    printf '\n'
    "$TROVE" "$@"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trove-remotes.XXXXXX")
cleanup() {
    # Objects in the caches are read-only; make them removable first.
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

new_identity() {
    git config user.name "$1"
    git config user.email "$1@example.com"
}

step "a shared git repository, and an empty folder to serve as the remote"
git init -q --bare "$WORK/origin.git"
mkdir "$WORK/store"

step "ann: track a dataset and a model"
git clone -q "$WORK/origin.git" "$WORK/ann" 2>/dev/null
cd "$WORK/ann"
new_identity ann
trove init
mkdir -p data/train data/test
for i in 1 2 3 4 5; do
    printf 'train sample %s\n' "$i" >"data/train/$i.txt"
done
printf 'test sample\n' >data/test/1.txt
printf 'weights v1\n' >model.bin
trove add data model.bin

step "ann: add the remote; it goes in .trove/config, committed with the pointers"
trove remote add store "$WORK/store"
trove remote list
git add -A
git commit -q -m "data, model and the remote"
git push -q origin HEAD:main

step "ann: status --remote shows what is not pushed yet; push sends it"
trove status --remote
trove push
grep -q "data: in sync with store" <<<"$(trove status --remote)" || fail "data is not in sync after push"
[ -f "$WORK/store/TROVE_REMOTE" ] || fail "the remote has no TROVE_REMOTE"

step "ann: a second push has nothing to send"
trove push
push_json=$("$TROVE" push --json)
grep -q '"files": 0' <<<"$push_json" || fail "a second push sent objects again"

step "bob: a fresh clone has the pointers and the remote, but no data"
git clone -q --branch main "$WORK/origin.git" "$WORK/bob"
cd "$WORK/bob"
new_identity bob
[ ! -e data ] || fail "the clone has data before pull"
trove status --remote

step "bob: pull the test set only, then everything"
trove pull data
[ "$(cat data/test/1.txt)" = "test sample" ] || fail "data was not pulled"
[ ! -e model.bin ] || fail "pull data also pulled model.bin"
trove pull
[ "$(cat model.bin)" = "weights v1" ] || fail "model.bin was not pulled"
trove status

step "bob: a new model version goes back through the remote"
printf 'weights v2\n' >model.bin
trove add model.bin
trove push
git commit -q -m "model v2" model.bin.trove
git push -q origin HEAD:main

step "ann: git pull, then trove pull brings the new model"
cd "$WORK/ann"
git pull -q origin main
trove pull
[ "$(cat model.bin)" = "weights v2" ] || fail "ann did not get model v2"

step "damaged data on the remote is caught, never used"
git clone -q --branch main "$WORK/origin.git" "$WORK/carol"
cd "$WORK/carol"
# The remote keeps the data's chunks in pack files (packs/); overwrite every one.
find "$WORK/store/packs" -type f | while read -r pack; do
    chmod u+w "$pack"
    printf 'bit rot' >"$pack"
done
if "$TROVE" pull; then
    fail "pull accepted damaged objects"
fi
echo "(pull failed as it should: exit code 1, nothing checked out)"
[ ! -e model.bin ] || fail "pull checked out data after a failed fetch"

printf '\nremotes: all steps passed\n'
