#!/usr/bin/env bash
# The main job: assign 1,000,000 synthetic users to a three-arm experiment.
set -euo pipefail
source "$(dirname "$0")/scripts/setup.sh"
setup_all
exec "$VENV/bin/python" -m trafficsplit demo "$@"
