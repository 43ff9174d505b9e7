#!/usr/bin/env bash
# Runs every fuzz target for a bounded time: `fuzz/run.sh [seconds per target] [target...]`
# (default 60 s, every target).
#
# Each target starts from its committed corpus (corpus/<target>/) and the seeds written by
# seeds.sh; what the run finds goes to new/<target>/ and is then merged into
# corpus/<target>/ (libFuzzer -merge=1: only inputs that add coverage are kept), so that
# fuzzing accumulates: commit the corpus after a long run (README.md).
#
# Exits non-zero when a target finds a crash, a hang or a memory blow-up; the input that
# did it is left in fuzz/artifacts/<target>/. Needs cargo-fuzz (installed when missing)
# and nightly compiler flags, which the stable toolchain allows with RUSTC_BOOTSTRAP=1.
set -euo pipefail
cd "$(dirname "$0")"
seconds=${1:-60}
targets=(frame_decoder handshake server_connection frames_with_handles)
if [ $# -gt 1 ]; then
  targets=("${@:2}")
fi
# -timeout: one input running longer is a hang; -rss_limit_mb / -malloc_limit_mb: memory
# growing past these is a failure, as is any single allocation over the malloc limit.
limits=(-timeout=20 -rss_limit_mb=1024 -malloc_limit_mb=256 -max_len=65536)

export RUSTC_BOOTSTRAP=1
export CARGO_TERM_COLOR=never
if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz"
  cargo install cargo-fuzz --locked
fi

./seeds.sh
cargo fuzz build --release

for target in "${targets[@]}"; do
  mkdir -p "corpus/$target"
  echo "=== fuzzing $target for ${seconds}s from a corpus of $(ls "corpus/$target" | wc -l) inputs"
  rm -rf "new/$target"
  mkdir -p "new/$target"
  # libFuzzer writes what it finds into the first directory and only reads the others.
  cargo fuzz run --release "$target" "new/$target" "corpus/$target" "seeds/$target" -- \
    -max_total_time="$seconds" \
    "${limits[@]}" \
    -print_final_stats=1
  echo "=== merging the finds of $target into corpus/$target"
  cargo fuzz run --release "$target" "corpus/$target" "new/$target" "seeds/$target" -- \
    -merge=1 \
    "${limits[@]}"
  rm -rf "new/$target"
  echo "=== $target: corpus of $(ls "corpus/$target" | wc -l) inputs, $(find "corpus/$target" -type f -exec cat {} + | wc -c) bytes"
done
echo "fuzzing done: ${#targets[@]} targets, ${seconds}s each, no failure"
