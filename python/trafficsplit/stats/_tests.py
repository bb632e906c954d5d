"""_tests: filled in by its area."""

from __future__ import annotations

__all__: list[str] = []
