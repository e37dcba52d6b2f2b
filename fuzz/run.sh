#!/usr/bin/env bash
# Fuzzes both targets, seeded from fixtures/ and every saved regression.
#   fuzz/run.sh [SECONDS]   explore: SECONDS per target (default 600), a
#                           random libFuzzer seed each time
#   fuzz/run.sh --ci [RUNS] the test suite's run: RUNS inputs per target
#                           (default 20000) from seed 1, so a failure in CI
#                           is the same failure on any machine with this
#                           commit, not a coin toss
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The toolchain here
# is stable, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz use libFuzzer's flags;
# sanitizers are off (-s none): Rust's own checks and the harness's
# assertions are what fail. A crash is saved under fuzz/artifacts/; copy it
# to fuzz/regressions/TARGET/ so tests/it/fuzz_regressions.rs keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")"
if [ "${1:-}" = "--ci" ]; then
    limit=(-seed=1 "-runs=${2:-20000}")
    # A fresh corpus, so the run depends on the commit alone.
    corpus=$(mktemp -d)
    trap 'rm -rf "$corpus"' EXIT
    what="${2:-20000} inputs from seed 1"
else
    limit=("-max_total_time=${1:-600}")
    corpus=$(pwd)/corpus
    what="${1:-600}s"
fi
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
mkdir -p "$corpus/rewrite" "$corpus/session"
cp ../fixtures/*.eml "$corpus/rewrite/"
cargo run --quiet --manifest-path ../Cargo.toml --example fuzz_seeds -- ../fixtures "$corpus/session"
for target in rewrite session; do
    mkdir -p "regressions/$target"
    cp -n regressions/$target/* "$corpus/$target/" 2>/dev/null || true
    echo "fuzz: $target, $what"
    cargo fuzz run -s none "$target" "$corpus/$target" -- "${limit[@]}" -rss_limit_mb=2048 -timeout=20
done
