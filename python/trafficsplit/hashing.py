"""The hash contract's public functions (docs/assignment-spec.md)."""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _units
from ._core import hashing as _hashing
from ._shared.checks import check_text, check_threads, is_integer
from .errors import ArgumentError

ALGORITHMS = ("xxh3", "murmur3")

Unit = str | int | bytes


def _check(salt: Any, algorithm: Any) -> None:
    check_text(salt, "salt")
    if algorithm not in ALGORITHMS:
        raise ArgumentError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")


def hash64(unit: Unit, salt: str, algorithm: str = "xxh3") -> int:
    """The contract hash of a unit id under a salt.

    ``xxh3``: XXH3-64(unit bytes, seed = XXH3-64(salt bytes)).
    ``murmur3``: MurmurHash3 x86_32(unit bytes, seed = MurmurHash3 x86_32(salt bytes, 0)),
    as an unsigned 32-bit value. ``123`` and ``"123"`` hash alike.

    >>> hash64("123", "s") == hash64(123, "s")
    True
    """
    _check(salt, algorithm)
    return int(_hashing.hash64(unit, salt, algorithm))


def bucket(unit: Unit, salt: str, buckets: int = 10_000, algorithm: str = "xxh3") -> int:
    """``hash64(unit, salt, algorithm) % buckets``.

    >>> 0 <= bucket("user-1", "my-salt") < 10_000
    True
    """
    if not is_integer(buckets) or buckets < 1:
        raise ArgumentError(f"buckets must be an int >= 1, got {buckets!r}")
    return hash64(unit, salt, algorithm) % int(buckets)


def hash64_batch(
    units: Any, salt: str, algorithm: str = "xxh3", threads: int | None = None
) -> np.ma.MaskedArray:
    """``hash64`` of every unit of a column, as a uint64 masked array (masked = missing)."""
    _check(salt, algorithm)
    nthreads = check_threads(threads)
    chunks = _units.chunks_of(units, caller="hash64_batch", scalar="hash64")
    if len(chunks) == 1:
        value, mask = _hash_chunk(chunks[0], salt, algorithm, nthreads)
        return np.ma.MaskedArray(value, mask=mask)
    values, masks = [], []
    for chunk in chunks:
        v, m = _hash_chunk(chunk, salt, algorithm, nthreads)
        values.append(v)
        masks.append(m)
    if not values:
        return np.ma.MaskedArray(np.empty(0, np.uint64), mask=np.empty(0, bool))
    return np.ma.MaskedArray(np.concatenate(values), mask=np.concatenate(masks))


def _hash_chunk(
    chunk: _units.Chunk, salt: str, algorithm: str, threads: int
) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(chunk, _units.DictionaryChunk):
        parts = [_hash_chunk(c, salt, algorithm, threads) for c in chunk.values]
        values, mask = _units.spread_by_codes(
            parts, (0, True), (np.uint64, bool), chunk.codes, threads
        )
        return values, mask
    if isinstance(chunk, _units.SequenceChunk):
        return _hashing.hash_sequence(chunk.values, salt, algorithm)
    return _hashing.hash_column(chunk, salt, algorithm, threads)
