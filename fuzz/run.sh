#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [seconds per target]` (default 60).
# Exits non-zero when a target finds a crash, a hang or a memory blow-up; the input that
# did it is left in fuzz/artifacts/<target>/. Needs cargo-fuzz (installed when missing)
# and nightly compiler flags, which the stable toolchain allows with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
targets=(frame_decoder handshake server_connection)

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

./seeds.sh
cargo fuzz build --release

for target in "${targets[@]}"; do
  echo "=== fuzzing $target for ${seconds}s"
  # -timeout: one input running longer is a hang; -rss_limit_mb / -malloc_limit_mb: memory
  # growing past these is a failure, as is any single allocation over the malloc limit.
  cargo fuzz run --release "$target" "corpus/$target" -- \
    -max_total_time="$seconds" \
    -timeout=20 \
    -rss_limit_mb=1024 \
    -malloc_limit_mb=256 \
    -max_len=65536 \
    -print_final_stats=1
done
echo "fuzzing done: ${#targets[@]} targets, ${seconds}s each, no failure"
