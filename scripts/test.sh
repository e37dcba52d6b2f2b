#!/usr/bin/env bash
# The whole test suite, from a fresh clone: installs the real peers the
# end-to-end tests drive (Debian packages), runs fmt, the module-cycle
# check, the size check, clippy and every test,
# then a fuzz run of both targets that is the same on every machine
# (FUZZ_RUNS inputs each from seed 1, default 20000; FUZZ_RUNS=0 leaves it
# out and says so). Exploring for new crashes is fuzz/run.sh SECONDS.
set -euo pipefail
cd "$(dirname "$0")/.."
# smtp-sink, postfix and postqueue live in /usr/sbin, which a non-root
# user's PATH (and some CI images') leaves out.
export PATH="$PATH:/usr/sbin:/sbin"
bash scripts/install-peers.sh
# The load tests hold thousands of sockets (tests/it/memory.rs: 5,000 idle
# connections); take the hard limit, as a daemon's unit would (LimitNOFILE).
ulimit -n "$(ulimit -Hn)"
cargo fmt --all -- --check
# The pipeline reads one way: no module imports one that imports it back,
# and core and config import nothing above them.
python3 scripts/module_cycles.py --self-test
python3 scripts/module_cycles.py
# Files under ~400 lines of code and functions under ~80, or a comment
# saying why not.
python3 scripts/sizes.py --self-test
python3 scripts/sizes.py
cargo clippy --all-targets --locked -- -D warnings
results=$(mktemp)
trap 'rm -f "$results"' EXIT
# A bound on the whole run, so a hung test fails CI loudly instead of
# silently eating its time; the suite takes a few minutes.
timeout --kill-after=30 2400 cargo test --locked --all-targets "$@" 2>&1 | tee "$results"
fuzz_runs=${FUZZ_RUNS:-20000}
if [ "$fuzz_runs" -gt 0 ]; then
    bash fuzz/run.sh --ci "$fuzz_runs"
else
    echo "test.sh: fuzz run left out (FUZZ_RUNS=0)"
fi
# One closing tally of every cargo test binary, after the fuzz output.
awk '/^test result:/ { passed += $4; failed += $6 } END { printf "tests: %d passed, %d failed\n", passed, failed }' "$results"
