"""A plain-Python implementation of docs/assignment-spec.md, written from the spec alone and
hashing with the reference packages (xxhash, mmh3). Tests compare the C++ core with it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import mmh3
import xxhash


def unit_bytes(unit: str | int | bytes) -> bytes:
    if isinstance(unit, bytes):
        return unit
    if isinstance(unit, str):
        return unit.encode("utf-8")
    if isinstance(unit, int) and not isinstance(unit, bool):
        return str(unit).encode("ascii")
    raise TypeError(type(unit).__name__)


def hash64(unit: str | int | bytes, salt: str, algorithm: str = "xxh3") -> int:
    data = unit_bytes(unit)
    if algorithm == "xxh3":
        return xxhash.xxh3_64_intdigest(data, seed=xxhash.xxh3_64_intdigest(salt.encode()))
    seed = mmh3.hash(salt.encode(), 0, signed=False)
    return mmh3.hash(data, seed, signed=False)


def effective_salt(salt: str, bucket_version: int) -> str:
    return salt if bucket_version == 1 else f"{salt}#{bucket_version}"


def threshold(exposure: float, buckets: int) -> int:
    return math.floor(exposure * buckets + 0.5)


def apportion(weights: list[float], buckets: int) -> list[int]:
    exact = [(w * buckets) / 100 for w in weights]
    counts = [math.floor(r) for r in exact]
    keys = []
    for w, r, c in zip(weights, exact, counts, strict=True):
        x = (r - c) * 1e9
        keys.append(-1 if w == 0 else math.floor(x + 0.5))  # x >= 0: half away from zero
    left = buckets - sum(counts)
    order = sorted(range(len(weights)), key=lambda i: (-keys[i], i))
    for i in order:
        if left == 0 or keys[i] < 0:
            break
        counts[i] += 1
        left -= 1
    assert left == 0
    return counts


def bucket_maps(weights_per_step: list[list[float]], buckets: int) -> list[list[int]]:
    """§4.3, step by step; weights_per_step rows may grow (arms appended)."""
    first = apportion(weights_per_step[0], buckets)
    stacks: list[list[int]] = []
    nxt = 0
    for c in first:
        stacks.append(list(range(nxt, nxt + c)))
        nxt += c
    previous = [-1] * buckets

    def snapshot() -> list[int]:
        m = [-1] * buckets
        for arm, stack in enumerate(stacks):
            for b in stack:
                m[b] = arm
        return m

    maps = [snapshot()]
    for weights in weights_per_step[1:]:
        q = apportion(weights, buckets)
        while len(stacks) < len(q):
            stacks.append([])
        released: list[tuple[int, int]] = []
        for i, stack in enumerate(stacks):
            while len(stack) > q[i]:
                released.append((stack.pop(), i))
        taken = [False] * len(released)

        def take(arm: int, k: int, released=released, taken=taken) -> None:
            b, releaser = released[k]
            stacks[arm].append(b)
            previous[b] = releaser
            taken[k] = True

        for j in range(len(stacks)):
            for k, (b, _) in enumerate(released):
                if len(stacks[j]) >= q[j]:
                    break
                if not taken[k] and previous[b] == j:
                    take(j, k)
        for j in range(len(stacks)):
            for k in range(len(released)):
                if len(stacks[j]) >= q[j]:
                    break
                if not taken[k]:
                    take(j, k)
        maps.append(snapshot())
    return maps


@dataclass
class Spec:
    salt: str
    buckets: int
    algorithm: str
    bucket_version: int
    steps: list[tuple[int | None, float, list[float]]]  # (effective_us, exposure, weights)


def assign(
    spec: Spec, unit: str | int | bytes | None, at_us: int | None = None
) -> tuple[int, int, str]:
    """(arm index, bucket, reason) by §4.4."""
    if unit is None:
        return -1, -1, "missing_unit"
    s = effective_salt(spec.salt, spec.bucket_version)
    b = hash64(unit, s + "/arm", spec.algorithm) % spec.buckets
    if at_us is None:
        step = len(spec.steps) - 1
    else:
        step = -1
        for k, (t, _, _) in enumerate(spec.steps):
            if t is None or t <= at_us:
                step = k
    if step < 0:
        return -1, b, "not_started"
    width = max(len(w) for _, _, w in spec.steps)
    maps = bucket_maps([w + [0.0] * (width - len(w)) for _, _, w in spec.steps], spec.buckets)
    t = hash64(unit, s + "/traffic", spec.algorithm) % spec.buckets
    if t >= threshold(spec.steps[step][1], spec.buckets):
        return -1, b, "not_exposed"
    return maps[step][b], b, "assigned"
