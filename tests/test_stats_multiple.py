"""Multiple-comparison adjustment against statsmodels multipletests."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from statsmodels.stats.multitest import multipletests

import trafficsplit.stats as ts
from trafficsplit.errors import ArgumentError

P = [0.01, 0.04, 0.03, 0.005, 0.20]


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("bonferroni", [0.05, 0.2, 0.15, 0.025, 1.0]),
        ("holm", [0.04, 0.09, 0.09, 0.025, 0.2]),
        ("bh", [0.025, 0.05, 0.05, 0.025, 0.2]),
        ("fdr_bh", [0.025, 0.05, 0.05, 0.025, 0.2]),
        ("benjamini-hochberg", [0.025, 0.05, 0.05, 0.025, 0.2]),
    ],
)
def test_published_values(method, expected):
    assert ts.adjust_pvalues(P, method) == pytest.approx(expected, rel=1e-12)


SM = {"bonferroni": "bonferroni", "holm": "holm", "bh": "fdr_bh"}


@settings(max_examples=200, deadline=None)
@given(
    p=arrays(np.float64, st.integers(1, 60), elements=st.floats(0, 1)),
    method=st.sampled_from(list(SM)),
)
def test_matches_statsmodels(p, method):
    ref = multipletests(p, method=SM[method])[1]
    assert ts.adjust_pvalues(p, method) == pytest.approx(ref, rel=1e-12, abs=1e-300)


def test_nan_entries_are_kept_and_not_counted():
    p = np.array([[0.01, np.nan, 0.04], [0.03, 0.005, np.nan]])  # arms × metrics
    out = ts.adjust_pvalues(p, "holm")
    assert out.shape == p.shape
    assert np.isnan(out[0, 1]) and np.isnan(out[1, 2])
    ref = multipletests(p[~np.isnan(p)], method="holm")[1]
    assert out[~np.isnan(p)] == pytest.approx(ref, rel=1e-12)
    assert ts.adjust_pvalues([], "bh").size == 0


def test_errors():
    with pytest.raises(
        ArgumentError, match=r"method must be 'bonferroni', 'holm' or 'bh'.*got 'sidak'"
    ):
        ts.adjust_pvalues(P, "sidak")
    with pytest.raises(ArgumentError, match=r"pvalues\[1\] must be in \[0, 1\] or NaN, got 1.5"):
        ts.adjust_pvalues([0.1, 1.5], "holm")
    with pytest.raises(ArgumentError, match="pvalues must be numbers"):
        ts.adjust_pvalues(["a"], "holm")
