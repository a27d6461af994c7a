#!/usr/bin/env bash
# The local trove workflow, end to end, in a fresh temporary folder.
#
#   bash examples/quickstart.sh                      # uses `trove` from PATH
#   TROVE=target/release/trove bash examples/quickstart.sh
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
    found=$(type -P "$TROVE") || { echo "quickstart: no \`$TROVE\` on PATH; set TROVE=/path/to/trove" >&2; exit 1; }
    TROVE=$found
fi

step() {
    printf '\n==> %s\n' "$*"
}

fail() {
    echo "quickstart: FAILED: $*" >&2
    exit 1
}

trove() {
    printf '$ trove'
    printf ' %q' "$@"
    printf '\n'
    "$TROVE" "$@"
}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/trove-quickstart.XXXXXX")
cleanup() {
    # Objects in the cache are read-only; make them removable first.
    chmod -R u+w "$WORK" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT
cd "$WORK"

step "a git repository with an identity of its own"
git init -q .
git config user.name "Quickstart"
git config user.email "quickstart@example.com"

step "trove init"
trove init

step "a small dataset: a folder and a single file"
mkdir -p data/images data/labels
for i in 1 2 3; do
    printf 'image %s\n' "$i" >"data/images/$i.png"
    printf 'label %s\n' "$i" >"data/labels/$i.txt"
done
printf 'weights v1\n' >model.bin

step "trove add data model.bin"
trove add data model.bin
[ -f data.trove ] || fail "data.trove was not written"
[ -f model.bin.trove ] || fail "model.bin.trove was not written"
cat data.trove

step "git commit the pointers"
git add .trove/config .trove/.gitignore .gitignore data.trove model.bin.trove
git commit -q -m "track data and model"
git log --oneline

step "modify a tracked file"
printf 'image 2, edited\n' >data/images/2.png

step "trove status reports the change"
trove status
status_json=$("$TROVE" status --json)
echo "$status_json"
grep -q '"state": "modified"' <<<"$status_json" || fail "status --json does not report data as modified"
grep -q '"images/2.png"' <<<"$status_json" || fail "status --json does not name the changed file"

step "trove checkout refuses to overwrite the unsaved change"
if "$TROVE" checkout; then
    fail "checkout overwrote an unsaved change without --force"
fi

step "trove checkout --force restores the committed version"
trove checkout --force
[ "$(cat data/images/2.png)" = "image 2" ] || fail "data/images/2.png was not restored"

step "trove status is clean again"
trove status
if grep -q '"state": "modified"' <<<"$("$TROVE" status --json)"; then
    fail "status still reports a modification after checkout --force"
fi

step "delete the data; trove checkout brings it back from the cache"
chmod -R u+w data
rm -rf data model.bin
trove checkout
[ "$(cat data/labels/3.txt)" = "label 3" ] || fail "data/labels/3.txt was not restored"
[ "$(cat model.bin)" = "weights v1" ] || fail "model.bin was not restored"

step "a new model version; trove commit re-adds it and commits the pointer"
printf 'weights v2\n' >model.bin
trove commit -m "model v2"
git log --oneline
[ "$(git log -1 --format=%s)" = "model v2" ] || fail "trove commit did not create the git commit"
grep -q 'model.bin.trove' <<<"$(git show --stat HEAD)" || fail "the commit does not contain model.bin.trove"
if grep -q '"state": "modified"' <<<"$("$TROVE" status --json)"; then
    fail "status reports a modification after trove commit"
fi

step "trove ls lists what is tracked now and at the first commit"
trove ls
trove ls HEAD~1

printf '\nquickstart: all steps passed\n'
