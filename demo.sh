#!/usr/bin/env bash
# The main job: assign 1,000,000 synthetic users to a three-arm experiment and analyse
# simulated outcomes (lifts with CIs, CUPED, a latency guardrail).
set -euo pipefail
source "$(dirname "$0")/scripts/setup.sh"
setup_all
exec "$VENV/bin/python" -m trafficsplit demo "$@"
