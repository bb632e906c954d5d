"""The checks the test command runs over the code itself: ruff (lint and format), mypy on the
package, and clang-format on the C++ (each tool's settings are checked in: pyproject.toml,
.clang-format)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def run(*cmd: str | Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(c) for c in cmd], cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def test_ruff_lint_and_format():
    lint = run(BIN / "ruff", "check", "python", "tests", "benchmarks", "scripts", "docs/examples")
    assert lint.returncode == 0, lint.stdout + lint.stderr
    fmt = run(
        BIN / "ruff",
        "format",
        "--check",
        "python",
        "tests",
        "benchmarks",
        "scripts",
        "docs/examples",
    )
    assert fmt.returncode == 0, fmt.stdout + fmt.stderr


def test_mypy_on_the_package():
    # Settings and the few documented exceptions are in pyproject.toml, [tool.mypy].
    result = run(sys.executable, "-m", "mypy", "python/trafficsplit")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]


def test_cpp_is_clang_formatted():
    tool = shutil.which("clang-format")
    if tool is None:
        pytest.fail("clang-format is missing: scripts/setup.sh installs the Debian package")
    files = sorted(
        p
        for d in ("cpp/include", "cpp/src", "cpp/bindings", "cpp/tests")
        for p in (ROOT / d).rglob("*")
        if p.suffix in (".cpp", ".hpp", ".h")
    )
    assert len(files) > 20
    result = run(tool, "--dry-run", "--Werror", *files)
    assert result.returncode == 0, result.stderr[-6000:]
