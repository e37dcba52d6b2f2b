#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the real peers the
# end-to-end tests drive (Debian packages), then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
cargo fmt --all -- --check
cargo clippy --all-targets --locked -- -D warnings
cargo test --locked --all-targets "$@"
