#!/usr/bin/env bash
# Every test: the C++ core under GoogleTest, then the Python suite under pytest.
set -euo pipefail
source "$(dirname "$0")/scripts/setup.sh"
setup_all
log "C++ tests"
"$VENV/bin/cmake" -S "$ROOT" -B "$ROOT/build/cpp" -G Ninja -DTRAFFICSPLIT_BUILD_PYTHON=OFF \
  -DTRAFFICSPLIT_BUILD_TESTS=ON -DCMAKE_MAKE_PROGRAM="$VENV/bin/ninja" >/dev/null
"$VENV/bin/cmake" --build "$ROOT/build/cpp"
"$VENV/bin/ctest" --test-dir "$ROOT/build/cpp" --output-on-failure -j2
log "C++ tests under AddressSanitizer and UBSan (clang), then the fuzzers for a fixed number of runs"
"$ROOT/cpp/fuzz/run.sh" --build-only
"$VENV/bin/ctest" --test-dir "$ROOT/build/cpp-sanitize" --output-on-failure -j2
"$ROOT/cpp/fuzz/run.sh" -runs=20000 -seed=1
log "Python tests"
cd "$ROOT"
"$VENV/bin/python" -m pytest "$@"
