"""MD5, SHA-1 and SHA-256 of the C++ core (the Eppo, LaunchDarkly and Statsig hashing modes)
against Python's hashlib, over arbitrary bytes."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import trafficsplit as ts
from trafficsplit._core import hashing

ALGORITHMS = ("md5", "sha1", "sha256")


@settings(max_examples=500, deadline=None)
@given(data=st.binary(min_size=0, max_size=300))
def test_digests_match_hashlib(data: bytes) -> None:
    for algorithm in ALGORITHMS:
        assert hashing.digest(algorithm, data) == hashlib.new(algorithm, data).digest(), algorithm


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("length", [0, 1, 55, 56, 57, 63, 64, 65, 119, 120, 127, 128, 129])
def test_digests_at_block_boundaries(algorithm: str, length: int) -> None:
    # The padding changes shape at 56 bytes (the length no longer fits in the last block) and at
    # each 64-byte block: hypothesis rarely lands exactly there.
    data = bytes((i * 131 + 7) % 256 for i in range(length))
    assert hashing.digest(algorithm, data) == hashlib.new(algorithm, data).digest()


def test_unknown_algorithm_names_the_allowed_ones() -> None:
    with pytest.raises(ts.errors.ArgumentError, match="'md5', 'sha1' or 'sha256', got 'sha512'"):
        hashing.digest("sha512", b"abc")
    with pytest.raises(ValueError):
        hashing.digest("MD5", b"abc")


def test_data_must_be_bytes() -> None:
    with pytest.raises(TypeError):
        hashing.digest("md5", "abc")  # type: ignore[arg-type]
