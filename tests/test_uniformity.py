"""Buckets and arms are uniform, and the stages are independent (chi-square, 1,000,000 ids)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

import trafficsplit as ts

N = 1_000_000


def _ids(kind: str) -> object:
    if kind == "sequential":
        return np.arange(N, dtype=np.int64)
    rng = np.random.default_rng(11)
    raw = rng.integers(0, 2**63, N, dtype=np.int64)
    import pyarrow as pa

    return pa.array([f"{x:x}-{x % 9973}" for x in raw.tolist()])


@pytest.mark.parametrize("kind", ["sequential", "random-strings"])
@pytest.mark.parametrize("salt", ["ranker-v2", "search-ui#3", "ünï-salt"])
@pytest.mark.parametrize("algorithm", ["xxh3", "murmur3"])
def test_buckets_arms_and_stage_independence(kind, salt, algorithm):
    ids = _ids(kind)
    exp = ts.Experiment(
        "u", {"a": 20, "b": 30, "c": 50}, exposure=0.5, salt=salt, algorithm=algorithm
    )
    arm_bucket = ts.hash64_batch(ids, exp.arm_salt, algorithm).data % 10_000
    traffic_bucket = ts.hash64_batch(ids, exp.traffic_salt, algorithm).data % 10_000
    # Arm buckets uniform over 10,000 cells.
    observed = np.bincount(arm_bucket.astype(np.int64), minlength=10_000)
    assert sps.chisquare(observed).pvalue > 0.001
    # Arms follow the weights among exposed units; exposure is 50 %.
    b = exp.assign_batch(ids)
    counts = b.counts()
    assert ts.stats.srm(counts, exp.weights).pvalue > 0.001
    assert sps.binomtest(int(b.in_experiment.sum()), N, 0.5).pvalue > 0.001
    # Traffic and arm buckets are independent: the 20 x 20 joint table.
    joint = np.zeros((20, 20), np.int64)
    np.add.at(
        joint, ((traffic_bucket // 500).astype(np.int64), (arm_bucket // 500).astype(np.int64)), 1
    )
    assert sps.chi2_contingency(joint).pvalue > 0.001
    # The kernel's bucket is the arm-stage bucket.
    np.testing.assert_array_equal(b.bucket, arm_bucket)


def test_a_biased_hash_would_be_caught():
    """The checks above have power: buckets 3 % off their share are rejected."""
    rng = np.random.default_rng(3)
    buckets = rng.integers(0, 10_000, N)
    biased = np.where((buckets >= 5000) & (rng.random(N) < 0.03), buckets - 5000, buckets)
    assert sps.chisquare(np.bincount(biased, minlength=10_000)).pvalue < 0.001
