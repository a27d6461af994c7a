#!/usr/bin/env bash
# Fuzz the parsers of untrusted input for a bounded time each; fails if any target finds
# a crash, a panic or a hang.
#
#   bash scripts/fuzz.sh                  # every target, 60 s each
#   FUZZ_SECONDS=300 bash scripts/fuzz.sh pointer filter
#
# Targets (fuzz/fuzz_targets/): pointer, manifest, config, exp_record, filter, pack_tail,
# index_file. Each starts from the seeds in fuzz/seeds/<target>/ and keeps what it learns
# in fuzz/corpus/<target>/ (git-ignored). A crashing input is written to
# fuzz/artifacts/<target>/; replay it with
#   cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run <target> artifacts/<target>/<file>
# and keep it as a regression test in the parser's module.
#
# cargo-fuzz wants a nightly compiler; RUSTC_BOOTSTRAP=1 lets the stable one accept its
# flags, AddressSanitizer included (FUZZ_SANITIZER=none turns it off where it is missing).
# Targets build with debug assertions, so an arithmetic overflow counts as a crash too.
# The first build takes about ten minutes on two cores. Set FUZZ_JOBS to build with more.
# Not part of scripts/test.sh: it takes minutes.
set -euo pipefail

cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-60}"
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    targets=(pointer manifest config exp_record filter pack_tail index_file)
fi

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "==> installing cargo-fuzz"
    cargo install --locked cargo-fuzz
fi

export RUSTC_BOOTSTRAP=1
export CARGO_BUILD_JOBS="${FUZZ_JOBS:-1}"

cd fuzz
failed=()
for target in "${targets[@]}"; do
    printf '\n==> fuzzing %s for %s s\n' "$target" "$seconds"
    mkdir -p "corpus/$target"
    # Flags after `--` go to libFuzzer: stop after the time budget, count a run of more
    # than 10 s as a hang, cap memory, keep inputs small enough to be pointers or records.
    if ! cargo fuzz run -s "${FUZZ_SANITIZER:-address}" "$target" "corpus/$target" "seeds/$target" -- \
        -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=65536 \
        -print_final_stats=1; then
        failed+=("$target")
    fi
done

if [ ${#failed[@]} -gt 0 ]; then
    printf '\nfuzzing found crashes in: %s (inputs under fuzz/artifacts/)\n' "${failed[*]}"
    exit 1
fi
printf '\nfuzzing found nothing in: %s\n' "${targets[*]}"
