"""Inputs the fuzzers found (cpp/fuzz/regressions/README.md), replayed through the harness built
by ./test.sh (build/cpp-sanitize): each once failed, and must keep passing."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
HARNESS = ROOT / "build" / "cpp-sanitize" / "fuzz_targeting"


def test_text_column_nulls_in_the_null_mask_are_unknown_to_in_lists() -> None:
    if not HARNESS.exists():
        pytest.skip("the fuzzers are built by ./test.sh (cpp/fuzz/run.sh --build-only)")
    crash = ROOT / "cpp" / "fuzz" / "regressions" / "targeting-text-null-mask-in-list"
    proc = subprocess.run(
        [str(HARNESS), str(crash)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "TRAFFICSPLIT_FUZZ_TEXT_NULL_MASK": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
