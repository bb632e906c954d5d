"""Argument types the commands share: argparse calls them on the text given and turns an
``ArgumentTypeError`` into a usage error (exit 2) naming the option."""

from __future__ import annotations

import argparse


def count(text: str) -> int:
    """A positive whole number: ``--threads 4``, ``--users 1000``."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def names(text: str) -> list[str]:
    """Comma-separated names, blanks dropped: ``--experiments a,b``."""
    out = [n.strip() for n in text.split(",") if n.strip()]
    if not out:
        raise argparse.ArgumentTypeError("expected comma-separated names")
    return out
