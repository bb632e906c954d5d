"""Splitter with sticky stores: a unit keeps its first arm across weight changes until the
bucket version is bumped, on every store; frames do one read and one write per experiment."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import trafficsplit as ts
from redis_server import redis_url  # noqa: F401
from test_sticky import store  # noqa: F401
from trafficsplit.sticky import StickyStore


def _config(weights: dict[str, float], version: int = 1) -> dict:
    return {"experiments": [{"key": "exp", "arms": weights, "bucket_version": version}]}


UNITS = [f"user-{i}" for i in range(3000)]


def test_first_arm_kept_across_weight_changes_until_version_bump(store: StickyStore) -> None:  # noqa: F811
    first = ts.Splitter(_config({"a": 50, "b": 50}), sticky=store)
    arms1 = {u: first.assign("exp", u).arm for u in UNITS}
    assert {first.assign("exp", u).reason for u in UNITS[:10]} == {"sticky"}  # now stored

    shifted = ts.Splitter(_config({"a": 10, "b": 90}), sticky=store)
    later = [shifted.assign("exp", u) for u in UNITS]
    assert all(
        a.arm == arms1[u] and a.reason == "sticky" for u, a in zip(UNITS, later, strict=True)
    )
    fresh = [shifted.assign("exp", f"new-{i}") for i in range(3000)]
    share_b = np.mean([a.arm == "b" for a in fresh])
    assert 0.87 < share_b < 0.93  # new units follow the new weights

    bumped = ts.Splitter(_config({"a": 10, "b": 90}, version=2), sticky=store)
    again = [bumped.assign("exp", u) for u in UNITS]
    assert {a.reason for a in again} == {"assigned"}  # the old entries no longer apply
    assert 0.87 < np.mean([a.arm == "b" for a in again]) < 0.93


class CountingStore:
    """Wraps a store and counts its calls."""

    def __init__(self, inner: StickyStore) -> None:
        self.inner = inner
        self.gets = 0
        self.puts = 0

    def get_many(self, experiment, bucket_version, units):  # type: ignore[no-untyped-def]
        self.gets += 1
        return self.inner.get_many(experiment, bucket_version, units)

    def put_many(self, experiment, bucket_version, arms):  # type: ignore[no-untyped-def]
        self.puts += 1
        return self.inner.put_many(experiment, bucket_version, arms)

    def close(self) -> None:
        self.inner.close()


def test_frames_do_one_read_and_one_write_per_experiment(store: StickyStore) -> None:  # noqa: F811
    counting = CountingStore(store)
    df = pd.DataFrame({"user_id": UNITS})
    first = ts.Splitter(_config({"a": 50, "b": 50}))
    out1 = first.assign_frame(df, "user_id", sticky=counting)
    assert (counting.gets, counting.puts) == (1, 1)
    shifted = ts.Splitter(_config({"a": 10, "b": 90}))
    out2 = shifted.assign_frame(df, "user_id", sticky=counting)
    assert (counting.gets, counting.puts) == (2, 1)  # every unit was stored: nothing to write
    assert (out2["exp"].astype(str) == out1["exp"].astype(str)).all()
    assert set(out2["exp_reason"].astype(str)) == {"sticky"}
    # Row by row, the frame equals the scalar path on the same store.
    scalar = ts.Splitter(_config({"a": 10, "b": 90}), sticky=store)
    assert [scalar.assign("exp", u).arm for u in UNITS[:200]] == list(out2["exp"].astype(str)[:200])


def test_units_outside_the_cohort_are_not_made_sticky(store: StickyStore) -> None:  # noqa: F811
    config = {
        "experiments": [{"key": "exp", "arms": {"a": 50, "b": 50}, "targeting": 'tier == "gold"'}]
    }
    sp = ts.Splitter(config, sticky=store)
    assert sp.assign("exp", "u1", {"tier": "free"}).reason == "targeting_miss"
    assert store.get_many("exp", 1, ["u1"]) == {}
    a = sp.assign("exp", "u1", {"tier": "gold"})
    assert a.reason == "assigned"
    assert store.get_many("exp", 1, ["u1"]) == {"u1": a.arm}
    # Stored arms do not override targeting.
    assert sp.assign("exp", "u1", {"tier": "free"}).reason == "targeting_miss"


@pytest.mark.parametrize("weights", [{"a": 100, "b": 0}, {"a": 0, "b": 100}])
def test_sticky_reason_only_for_stored_units(weights: dict[str, float]) -> None:
    sp = ts.Splitter(_config(weights), sticky=ts.sticky.MemoryStickyStore())
    a = sp.assign("exp", "solo")
    assert a.reason == "assigned" and a.arm == max(weights, key=weights.get)
    assert sp.assign("exp", "solo").reason == "sticky"
