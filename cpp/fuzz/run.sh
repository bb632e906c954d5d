#!/usr/bin/env bash
# Builds the sanitizer folder (build/cpp-sanitize: clang, AddressSanitizer and UBSan, the core,
# the GoogleTest suite and the libFuzzer harnesses), then runs each harness from its seed corpus
# (cpp/fuzz/corpus/<harness>) with the libFuzzer arguments given, e.g.
#   cpp/fuzz/run.sh -runs=20000 -seed=1          what ./test.sh runs
#   cpp/fuzz/run.sh -max_total_time=600          ten minutes per harness
#   cpp/fuzz/run.sh --build-only                 build, run nothing
# New inputs go to build/cpp-sanitize/corpus/<harness>, findings to build/cpp-sanitize/findings/.
set -euo pipefail
source "$(dirname "$0")/../../scripts/setup.sh"
setup_tools
BUILD="$ROOT/build/cpp-sanitize"
SANITIZE="-fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer"
"$VENV/bin/cmake" -S "$ROOT" -B "$BUILD" -G Ninja -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" \
  -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=None \
  "-DCMAKE_CXX_FLAGS=-O1 -gline-tables-only $SANITIZE" "-DCMAKE_EXE_LINKER_FLAGS=$SANITIZE" \
  -DTRAFFICSPLIT_BUILD_PYTHON=OFF -DTRAFFICSPLIT_BUILD_TESTS=ON -DTRAFFICSPLIT_BUILD_FUZZERS=ON >/dev/null
"$VENV/bin/cmake" --build "$BUILD"
[ "${1:-}" = "--build-only" ] && exit 0
mkdir -p "$BUILD/findings"
for harness in fuzz_targeting fuzz_units fuzz_peer_keys; do
  log "fuzzing $harness $*"
  mkdir -p "$BUILD/corpus/$harness"
  "$BUILD/$harness" "$@" -artifact_prefix="$BUILD/findings/$harness-" \
    "$BUILD/corpus/$harness" "$ROOT/cpp/fuzz/corpus/$harness" 2>"$BUILD/findings/$harness.log" ||
    { tail -n 60 "$BUILD/findings/$harness.log" >&2; exit 1; }
  grep -h '^Done' "$BUILD/findings/$harness.log" >&2
done
