"""The golden assignment vectors (tests/data/assignment_vectors.tsv), scalar and batch."""

from __future__ import annotations

from collections import defaultdict

import numpy as np
import pytest

import trafficsplit as ts
from trafficsplit._time import from_micros

from conftest import DATA


def _load() -> tuple[dict[str, ts.Experiment], dict[str, list[tuple]]]:
    experiments: dict[str, ts.Experiment] = {}
    cases: dict[str, list[tuple]] = defaultdict(list)
    for line in (DATA / "assignment_vectors.tsv").read_text(encoding="utf-8").splitlines():
        if not line or line.startswith("#"):
            continue
        cols = line.split("\t")
        if cols[0] == "E":
            name, salt_hex, algorithm, buckets, version, steps = cols[1:]
            parsed = []
            for step in steps.split(";"):
                t, x, ws = step.split("|")
                parsed.append(
                    (None if t == "-" else int(t), float(x), [float(w) for w in ws.split(",")])
                )
            width = max(len(w) for _, _, w in parsed)
            names = [f"arm{i}" for i in range(width)]
            history = [
                {
                    "at": None if t is None else from_micros(t),
                    "exposure": x,
                    "weights": dict(zip(names, w, strict=False)),
                }
                for t, x, w in parsed[:-1]
            ]
            t, x, w = parsed[-1]
            arms = dict(zip(names, w + [0.0] * (width - len(w)), strict=True))
            experiments[name] = ts.Experiment(
                name,
                arms,
                x,
                bytes.fromhex(salt_hex).decode(),
                int(buckets),
                algorithm,
                history=history,
                allocated_at=None if t is None else from_micros(t),
                bucket_version=int(version),
            )
        else:
            name, kind, text, at, arm, bucket, reason = cols[1:]
            unit = {
                "str": lambda s: bytes.fromhex(s).decode(),
                "bytes": bytes.fromhex,
                "int": int,
                "none": lambda s: None,
            }[kind](text)
            cases[name].append(
                (unit, None if at == "-" else int(at), int(arm), int(bucket), reason)
            )
    return experiments, cases


EXPERIMENTS, CASES = _load()


def test_vectors_cover_every_reason():
    reasons = {c[4] for rows in CASES.values() for c in rows}
    assert reasons == {"assigned", "not_exposed", "missing_unit", "not_started"}
    assert sum(len(v) for v in CASES.values()) > 2000


@pytest.mark.parametrize("name", sorted(CASES))
def test_scalar_matches_vectors(name):
    exp = EXPERIMENTS[name]
    for unit, at, arm, bucket, reason in CASES[name]:
        a = exp.assign(unit, at=None if at is None else from_micros(at))
        assert (a.arm_index, a.bucket, a.reason) == (arm, bucket, reason), (unit, at)
        assert a.arm == (None if arm < 0 else exp.arm_names[arm])


@pytest.mark.parametrize("name", sorted(CASES))
def test_batch_matches_vectors(name):
    exp = EXPERIMENTS[name]
    rows = CASES[name]
    timed = [r for r in rows if r[1] is not None]
    units = [r[0] for r in timed]
    at = np.array([r[1] for r in timed], dtype="datetime64[us]")
    b = exp.assign_batch(units, at=at)
    assert b.arm_index.tolist() == [r[2] for r in timed]
    assert b.bucket.tolist() == [r[3] for r in timed]
    assert [ts.REASONS[c] for c in b.reason] == [r[4] for r in timed]
    current = [r for r in rows if r[1] is None]
    b = exp.assign_batch([r[0] for r in current])
    assert b.arm_index.tolist() == [r[2] for r in current]
    assert b.bucket.tolist() == [r[3] for r in current]
