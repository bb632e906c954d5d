"""The sample-ratio-mismatch check against scipy."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats as sps

import trafficsplit as ts
from trafficsplit._core import stats as core_stats
from trafficsplit.errors import ArgumentError


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=10**7), min_size=2, max_size=8),
    st.lists(st.floats(min_value=0.5, max_value=100), min_size=8, max_size=8),
)
def test_srm_matches_scipy(counts, weights):
    w = np.array(weights[: len(counts)])
    r = ts.stats.srm(counts, w)
    expected = np.array(counts).sum() * w / w.sum()
    ref = sps.chisquare(counts, expected)
    assert r.statistic == pytest.approx(ref.statistic, rel=1e-9, abs=1e-12)
    assert r.pvalue == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
    assert r.df == len(counts) - 1


@settings(max_examples=200, deadline=None)
@given(st.floats(min_value=0, max_value=5000), st.integers(min_value=1, max_value=500))
def test_chi2_sf_matches_scipy(x, df):
    assert core_stats.chi2_sf(x, df) == pytest.approx(sps.chi2.sf(x, df), rel=1e-6, abs=1e-300)


def test_srm_fires_on_a_half_percent_skew_at_one_million():
    assert ts.stats.srm([505_000, 495_000], [50, 50]).mismatch
    assert not ts.stats.srm([500_300, 499_700], [50, 50]).mismatch


def test_srm_inputs():
    r = ts.stats.srm({"a": 10, "b": 30}, {"b": 75, "a": 25})
    assert r.statistic == 0 and r.pvalue == 1
    r = ts.stats.srm([5, 0, 5], [50, 0, 50])
    assert r.df == 1 and r.pvalue == 1
    assert ts.stats.srm([5, 1, 5], [50, 0, 50]).pvalue == 0  # units in a zero-weight arm
    with pytest.raises(ArgumentError, match="srm: 2 counts but 3 weights"):
        ts.stats.srm([1, 2], [1, 1, 1])
    with pytest.raises(ArgumentError, match="srm: count 1 must be finite and >= 0"):
        ts.stats.srm([1, -2], [1, 1])
    with pytest.raises(ArgumentError, match="counts name arms"):
        ts.stats.srm({"a": 1, "b": 2}, {"a": 1, "c": 1})
    with pytest.raises(ArgumentError, match="alpha must be in"):
        ts.stats.srm([1, 2], [1, 1], alpha=2)
