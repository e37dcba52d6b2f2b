#!/usr/bin/env bash
# Fuzzes both targets for SECONDS each (default 600), seeded from fixtures/.
#   fuzz/run.sh [SECONDS]
# Needs cargo-fuzz (`cargo install cargo-fuzz --locked`). The toolchain here
# is stable, so RUSTC_BOOTSTRAP=1 lets cargo-fuzz use libFuzzer's flags;
# sanitizers are off (-s none): Rust's own checks and the harness's
# assertions are what fail. A crash is saved under fuzz/artifacts/; copy it
# to fuzz/regressions/TARGET/ so tests/fuzz_regressions.rs keeps it fixed.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-600}
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
export RUSTC_BOOTSTRAP=1
corpus=$(pwd)/corpus
mkdir -p "$corpus/rewrite" "$corpus/session"
cp ../fixtures/*.eml "$corpus/rewrite/"
cargo run --quiet --manifest-path ../Cargo.toml --example fuzz_seeds -- ../fixtures "$corpus/session"
for target in rewrite session; do
    mkdir -p "regressions/$target"
    cp -n regressions/$target/* "$corpus/$target/" 2>/dev/null || true
    echo "fuzz: $target for ${seconds}s"
    cargo fuzz run -s none "$target" "$corpus/$target" -- -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20
done
