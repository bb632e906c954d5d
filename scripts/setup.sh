#!/usr/bin/env bash
# Installs what the demo and the tests need, and skips every step that is already done:
# Debian packages, a virtual environment in .venv, PyPI packages, the compiled extension.
# Sourced by ./demo.sh and ./test.sh.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"
STAMPS="$ROOT/.stamps"
mkdir -p "$STAMPS"

APT_PACKAGES=(g++ make pkg-config python3-dev python3-venv libxxhash-dev libboost-dev libgtest-dev libre2-dev redis-server clang-format clang libclang-rt-14-dev chromium wrk)

log() { printf '\033[1m[setup]\033[0m %s\n' "$*" >&2; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    log "need root to run: $*"; return 1; fi
}

ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  if [ ${#missing[@]} -gt 0 ]; then
    log "installing Debian packages: ${missing[*]}"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
}

pick_python() {
  for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null &&
       "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      command -v "$candidate"; return 0
    fi
  done
  log "Python 3.11 or newer is required"; return 1
}

hash_of() { (cd "$ROOT" && find "$@" -type f -not -path '*/__pycache__/*' -print0 2>/dev/null |
  sort -z | xargs -0 sha1sum | sha1sum | cut -c1-40); }

ensure_venv() {
  # The distribution's Python needs python3-venv and python3-dev; a pyenv or
  # self-built Python brings its own, so those two packages are optional then.
  if [ ! -x "$VENV/bin/python" ]; then
    local py; py="$(pick_python)"
    log "creating virtual environment with $py"
    "$py" -m venv "$VENV" || { rm -rf "$VENV"; ensure_apt python3-venv; "$py" -m venv "$VENV"; }
  fi
  local want; want="$(hash_of pyproject.toml scripts/requirements-dev.txt)"
  if [ "$(cat "$STAMPS/pip" 2>/dev/null)" != "$want" ]; then
    log "installing PyPI packages"
    "$VENV/bin/python" -m pip install -q --upgrade pip
    "$VENV/bin/python" -m pip install -q -r "$ROOT/scripts/requirements-dev.txt"
    echo "$want" > "$STAMPS/pip"
    rm -f "$STAMPS/build"
  fi
}

ensure_build() {
  # One build at a time: a second test or demo run started meanwhile waits for the first.
  exec 9>"$STAMPS/build.lock"
  flock 9
  # The editable install maps each Python file by name: a new or removed file needs a reinstall.
  local names; names="$(cd "$ROOT" && find python -name '*.py' -o -name '*.pyi' -o -name '*.json' | sort | sha1sum)"
  local want; want="$(hash_of CMakeLists.txt pyproject.toml cpp)${names:0:12}"
  if [ "$(cat "$STAMPS/build" 2>/dev/null)" != "$want" ] || ! "$VENV/bin/python" -c 'import trafficsplit._core' 2>/dev/null; then
    log "building the extension (incremental)"
    (cd "$ROOT" && "$VENV/bin/python" -m pip install -q --no-build-isolation --no-deps -e .)
    echo "$want" > "$STAMPS/build"
  fi
  flock -u 9
}

setup_all() {
  setup_tools "$@"
  ensure_build
}

# Debian and PyPI packages, without building the editable install.
setup_tools() {
  local pkgs=("${APT_PACKAGES[@]}" "$@")
  # Spark's tests need a Java runtime: Debian's, unless one is on the PATH already.
  command -v java >/dev/null || pkgs+=(openjdk-17-jre-headless)
  # python3-dev/venv only matter for the system Python; skip them when another one is used.
  if [ "$(pick_python)" != "/usr/bin/python3" ]; then
    pkgs=("${pkgs[@]/python3-dev}"); pkgs=("${pkgs[@]/python3-venv}")
  fi
  local clean=(); for p in "${pkgs[@]}"; do [ -n "$p" ] && clean+=("$p"); done
  ensure_apt "${clean[@]}"
  ensure_venv
}
