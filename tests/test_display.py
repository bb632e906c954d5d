"""The displays: ``repr`` (a line and a small table) and ``_repr_html_`` (notebooks).

Values shown are checked against the objects' own accessors and independent computations
(per-unit assignment, ``stats.srm``, numpy draws from the posterior, pandas), every user
string must reach the HTML escaped, the output is bounded whatever the object, the HTML
parses with every element closed in order, and no display needs an optional library.
"""

from __future__ import annotations

import collections
import json
import re
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

import trafficsplit as ts
from trafficsplit import bandit, stats
from trafficsplit.telemetry.shadow import Shadow, ShadowLog, compare_shadow

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE / "data" / "config" / "example.yaml"
EVIL = '<script>alert("x")</script>'

# Elements that have no end tag in HTML.
VOID = {"br", "hr", "img", "input", "meta", "link", "wbr"}


class _Strict(HTMLParser):
    """Collects the text of every cell and checks that elements close in order."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.open: list[str] = []
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self._cell: list[str] | None = None
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        if tag not in VOID:
            self.open.append(tag)
        if tag == "tr":
            self.rows.append([])
        if tag in ("td", "th"):
            self._cell = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (self.open, tag)
        self.open.pop()
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)


def parse(page: str) -> _Strict:
    p = _Strict()
    p.feed(page)
    p.close()
    assert p.open == [], p.open
    assert "script" not in p.tags
    return p


def table(text: str) -> list[list[str]]:
    """The rows of a plain-text table (cells split on two or more spaces), header first."""
    lines = text.splitlines()[1:]
    return [re.split(r"\s{2,}", line.strip()) for line in lines if line.startswith("  ")]


def number(cell: str) -> float:
    return float(cell.replace(",", "").replace(" %", "").replace("+", ""))


# -- experiments and batches ----------------------------------------------------------------------


def test_experiment_shows_weights_buckets_and_shares() -> None:
    exp = ts.Experiment("ranker", {"control": 30, "a": 45, "b": 25}, exposure=0.4)
    rows = table(repr(exp))
    assert rows[0] == ["arm", "weight %", "buckets", "share of units"]
    owned = np.bincount(exp.bucket_map(), minlength=3)
    for (name, weight, buckets, share), i in zip(rows[1:], range(3), strict=True):
        assert name == exp.arm_names[i]
        assert number(weight) == exp.weights[name]
        assert number(buckets) == owned[i]
        # a unit enters with probability 0.4 and gets the arm with its share of the buckets
        assert number(share) == pytest.approx(0.4 * exp.weights[name], abs=0.006)
    page = parse(exp._repr_html_())
    assert ["control", "30", "3,000", "12.00 %"] in page.rows


def test_experiment_history_is_shown_newest_first() -> None:
    exp = ts.Experiment("e", {"a": 90, "b": 10}, allocated_at="2026-01-01T00:00:00Z")
    exp = exp.reallocate({"a": 50, "b": 50}, effective="2026-02-01T00:00:00Z")
    assert "2 allocation steps" in repr(exp)
    rows = parse(exp._repr_html_()).rows
    history = [r for r in rows if len(r) == 4 and r[0] in ("0", "1")]
    assert [r[0] for r in history] == ["1", "0"]
    assert history[0][1].startswith("2026-02-01") and history[0][3] == "a 50, b 50"
    assert history[1][3] == "a 90, b 10"


def test_batch_counts_and_srm_are_the_experiments() -> None:
    exp = ts.Experiment("e", {"control": 50, "a": 30, "b": 20}, exposure=0.5)
    units = [f"user-{i}" for i in range(20_000)] + [None] * 3
    batch = exp.assign_batch(units)
    one_by_one = collections.Counter(exp.assign(u).arm for u in units)
    reasons = collections.Counter(exp.assign(u).reason for u in units)
    expected_p = stats.srm({a: one_by_one[a] for a in exp.arm_names}, exp.weights).pvalue
    assert batch.srm_pvalue() == pytest.approx(expected_p, rel=1e-12)
    text = repr(batch)
    assert text.startswith("BatchAssignment('e', rows=20,003): ")
    assert f"sample ratio p = {expected_p:.3g}" in text.splitlines()[0]
    for reason, count in reasons.items():
        assert f"{reason} {count:,}" in text.splitlines()[0]
    rows = table(text)
    assert rows[0] == ["arm", "units", "observed", "expected"]
    total = sum(one_by_one[a] for a in exp.arm_names)
    for name, units_, observed, expected in rows[1:]:
        assert number(units_) == one_by_one[name]
        assert number(observed) == pytest.approx(one_by_one[name] / total * 100, abs=0.005)
        assert number(expected) == exp.weights[name]
    parse(batch._repr_html_())


def test_batch_flags_a_mismatch() -> None:
    exp = ts.Experiment("e", {"a": 50, "b": 50})
    ids = np.arange(50_000)
    batch = exp.assign_batch(ids)
    # drop most of arm b's rows, as a logging bug would
    keep = ids[(batch.arm_index == 0) | (ids % 10 == 0)]
    skewed = exp.assign_batch(keep)
    assert skewed.srm_pvalue() == pytest.approx(
        stats.srm(skewed.counts(), exp.weights).pvalue, rel=1e-12
    )
    assert "(MISMATCH)" in repr(skewed)
    assert "Sample-ratio mismatch" in skewed._repr_html_()
    assert "(MISMATCH)" not in repr(batch)


def test_batch_without_one_step_has_no_srm() -> None:
    exp = ts.Experiment("e", {"a": 90, "b": 10}, allocated_at="2026-01-01T00:00:00Z")
    exp = exp.reallocate({"a": 50, "b": 50}, effective="2026-02-01T00:00:00Z")
    times = np.array(["2026-01-15", "2026-02-15"], dtype="datetime64[us]")
    batch = exp.assign_batch(["u1", "u2"], at=times)  # two steps: no single expected split
    assert batch.srm_pvalue() is None and "sample ratio" not in repr(batch)
    arms = [exp.assign(u, at=t).arm for u, t in [("u1", "2026-01-15"), ("u2", "2026-02-15")]]
    assert batch.counts() == {a: arms.count(a) for a in exp.arm_names}


# -- the Splitter ----------------------------------------------------------------------------------


def test_splitter_lists_experiments_flags_layers_holdouts() -> None:
    sp = ts.Splitter(EXAMPLE)
    snap = sp.snapshot
    text = repr(sp)
    assert text.splitlines()[0] == (
        f"Splitter: configuration version {snap.version}, {len(snap.experiments)} experiments, "
        f"{len(snap.flags)} flag, {len(snap.layers)} layer, {len(snap.holdouts)} holdout"
    )
    page = parse(sp._repr_html_())
    by_key = {row[0]: row for row in page.rows}
    for key, e in snap.experiments.items():
        row = by_key[key]
        assert row[1] == e.status and int(row[2]) == len(e.experiment.arms)
        assert float(row[3]) == e.experiment.exposure
        assert row[4] == (e.layer or "") and row[5] == ", ".join(e.holdouts)
        assert int(row[6]) == e.experiment.bucket_version
    for key in [*snap.flags, *snap.layers, *snap.holdouts]:
        assert key in by_key and key in text


# -- escaping and bounds ---------------------------------------------------------------------------


def test_user_strings_are_escaped() -> None:
    exp = ts.Experiment(EVIL, {EVIL: 50, "b&b": 50})
    sp = ts.Splitter({"experiments": [{"key": "k<i>", "arms": {EVIL: 100}}]})
    policy = bandit.BernoulliThompson([EVIL, "b"])
    policy.update([EVIL, "b"], [1.0, 0.0])
    log = ShadowLog()
    with Shadow(lambda x: x, lambda x: x, sample=1.0, sink=log, name=EVIL) as shadow:
        shadow(1)
        shown = shadow._repr_html_()
    log.wait(1)
    pages = [
        exp._repr_html_(),
        exp.assign_batch(["u1", "u2"])._repr_html_(),
        sp._repr_html_(),
        policy._repr_html_(),
        log._repr_html_(),
        shown,
    ]
    for page in pages:
        assert "<script" not in page and "<i>" not in page
        parsed = parse(page)
        text = "".join(parsed.text)
        assert EVIL in text or "k<i>" in text  # shown as text
    assert "b&amp;b" in pages[0]


def test_displays_are_bounded() -> None:
    arms = {f"arm-{i:03d}-" + "x" * 100: 0.5 for i in range(200)}
    exp = ts.Experiment("many", arms)
    text = repr(exp)
    assert len(text.splitlines()) <= 23 and "... 180 more" in text
    assert max(len(line) for line in text.splitlines()) < 200
    assert len(exp._repr_html_()) < 40_000
    batch = exp.assign_batch(np.arange(10_000))
    assert "... 180 more" in repr(batch) and len(batch._repr_html_()) < 40_000

    config = {"experiments": [{"key": f"e{i}", "arms": {"a": 50, "b": 50}} for i in range(5_000)]}
    sp = ts.Splitter(config)
    text = repr(sp)
    assert "5,000 experiments" in text and "... 4,980 more" in text
    assert len(text) < 3_000
    page = sp._repr_html_()
    assert len(page) < 20_000 and "... 4,980 more" in page
    parse(page)

    policy = bandit.FixedSplit([f"a{i}" for i in range(200)])
    assert "... 180 more" in repr(policy) and len(repr(policy)) < 3_000


# -- statistics ------------------------------------------------------------------------------------


def test_group_sequential_boundary_table() -> None:
    design = stats.GroupSequential(5, alpha=0.025, sides=2)
    rows = table(repr(design))
    assert rows[0] == ["look", "information", "bound", "nominal alpha", "alpha spent"]
    # published O'Brien-Fleming-type bounds (docs/statistics-sequential.md)
    assert [float(r[2]) for r in rows[1:]] == pytest.approx(
        [4.877, 3.357, 2.680, 2.290, 2.031], abs=6e-4
    )
    assert [float(r[2]) for r in rows[1:]] == pytest.approx(design.boundaries(), abs=5e-5)
    assert [float(r[4]) for r in rows[1:]] == pytest.approx(design.alpha_spent(), rel=1e-3)
    page = parse(design._repr_html_())
    assert "svg" in page.tags and "polyline" in page.tags


def test_sequential_decision_table_and_verdict() -> None:
    design = stats.GroupSequential(5, alpha=0.025, sides=2)
    d = design.decide([0.8, 1.9, 2.9], [0.21, 0.38, 0.63])
    text = repr(d)
    assert d.reject and d.look == 2
    assert text.splitlines()[0].startswith("SequentialDecision: reject at look 3")
    rows = table(text)
    assert [float(r[2]) for r in rows[1:]] == [0.8, 1.9, 2.9]
    assert [float(r[3]) for r in rows[1:]] == pytest.approx(d.boundaries, abs=5e-5)
    scipy_stats = pytest.importorskip("scipy.stats")
    # the nominal p-value of a two-sided test of each z
    expected = [2 * scipy_stats.norm.sf(z) for z in (0.8, 1.9, 2.9)]
    assert [float(r[4]) for r in rows[1:]] == pytest.approx(expected, rel=1e-3)
    page = parse(d._repr_html_())
    assert any(r[0] == "3" for r in page.rows)
    waiting = design.decide([0.5])
    assert repr(waiting).startswith("SequentialDecision: continue")


def _analysis() -> Any:
    rng = np.random.default_rng(3)
    n = 12_000
    arm = rng.choice(["control", "a", EVIL], n)
    df = pd.DataFrame(
        {"arm": arm, "revenue": rng.gamma(2.0, 2.0, n) * np.where(arm == "a", 1.1, 1)}
    )
    return ts.analyze(df, metrics=["revenue"])


def test_analysis_repr_is_the_summary() -> None:
    res = _analysis()
    s = res.summary()
    text = repr(res)
    assert f"sample ratio p = {res.srm.pvalue:.3g}" in text.splitlines()[0]
    rows = table(text)
    assert rows[0][:4] == ["metric", "arm", "n", "mean"]
    body = rows[1:]
    assert len(body) == len(s)
    for cells, (_, row) in zip(body, s.iterrows(), strict=True):
        assert cells[1] == row["arm"][:39] + ("…" if len(row["arm"]) > 40 else "")
        assert number(cells[2]) == row["n"]
        assert number(cells[3]) == pytest.approx(row["mean"], rel=1e-3)
        assert cells[-1] == row["decision"]
        if row["arm"] != "control":
            assert number(cells[4]) == pytest.approx(row["rel_lift"] * 100, abs=0.005)
    page = res._repr_html_()
    parse(page)
    assert page.count("<tr") == len(s) + 1 and "<script" not in page


# -- bandits ---------------------------------------------------------------------------------------


def test_bernoulli_policy_shows_posterior_pbest_and_weights() -> None:
    policy = bandit.BernoulliThompson(["a", "b", "c"], seed=4, floor=0.05)
    policy.update_aggregates({"a": (400, 40, 40), "b": (400, 52, 52), "c": (50, 4, 4)})
    rows = table(repr(policy))
    assert rows[0] == ["arm", "count", "mean", "posterior", "P(best)", "weight"]
    target, weights = policy.target(), policy.weights()
    # P(best) against draws from the Beta posteriors made here
    rng = np.random.default_rng(0)
    draws = np.column_stack(
        [rng.beta(1 + s, 1 + n - s, 200_000) for n, s in [(400, 40), (400, 52), (50, 4)]]
    )
    best = np.bincount(draws.argmax(axis=1), minlength=3) / len(draws)
    for (name, count, mean, posterior, pbest, weight), i in zip(rows[1:], range(3), strict=True):
        st = policy.stats[name]
        assert number(count) == st["count"] and number(mean) == pytest.approx(st["mean"], rel=1e-3)
        a, b = policy.posterior()[name]
        assert posterior == f"Beta({a:.4g}, {b:.4g})" and a == 1 + st["sum"]
        assert number(pbest) == pytest.approx(target[name] * 100, abs=0.005)
        assert number(pbest) == pytest.approx(best[i] * 100, abs=1.5)
        assert number(weight) == pytest.approx(weights[name] * 100, abs=0.005)
    parse(policy._repr_html_())


def test_other_policies_and_the_simulation() -> None:
    normal = bandit.NormalThompson(["a", "b"])
    normal.update(["a", "b", "a"], [1.0, 2.0, 1.5])
    rows = table(repr(normal))
    assert rows[1][3].startswith(f"t({normal.posterior()['a'][0]:.4g}, ")
    ucb = bandit.UCB1(["x", "y"])
    assert table(repr(ucb))[0] == ["arm", "count", "mean", "target", "weight"]
    linear = bandit.LinearThompson(["a", "b"], 2)
    x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    linear.update(x, ["a", "b", "a"], [1.0, 0.0, 1.0])
    rows = table(repr(linear))
    coef = linear.coefficients()
    assert [number(c) for c in rows[1][2:]] == pytest.approx(coef["a"], rel=1e-3)
    parse(linear._repr_html_())

    result = bandit.simulate(bandit.FixedSplit(["a", "b"]), [0.1, 0.2], 5_000, 1_000, seed=2)
    text = repr(result)
    assert f"total regret {result.total_regret:.4g}" in text
    rows = table(text)
    for name, pulls, _share, mean, last in rows[1:]:
        i = result.arms.index(name)
        assert number(pulls) == result.pulls[i]
        assert number(mean) == pytest.approx(result.reward[i] / result.pulls[i], rel=1e-3)
        assert number(last) == pytest.approx(result.weights[-1][i] * 100, abs=0.005)
    assert "polyline" in parse(result._repr_html_()).tags


# -- shadows ---------------------------------------------------------------------------------------


def test_shadow_log_and_empty_comparison() -> None:
    log = ShadowLog(maxlen=1_000)
    empty = compare_shadow(log)
    assert len(empty) == 0
    with Shadow(
        lambda x: x, lambda x: x if x % 3 else -x, sample=1.0, sink=log, max_in_flight=1
    ) as shadow:
        for i in range(12):
            shadow(i)
            assert log.wait(i + 1)  # one at a time: none skipped as overloaded
    full = compare_shadow(log)
    assert list(empty.columns) == list(full.columns)  # the documented columns, no rows
    assert "candidate_timeouts" in empty.columns
    text = repr(log)
    assert text.splitlines()[0] == "ShadowLog: 12 records (keeps the newest 1,000)"
    (row,) = table(text)[1:]
    frame = log.to_frame()
    agree = frame["agree"].dropna().astype(bool)
    assert row[0] == "shadow" and number(row[1]) == len(frame)
    assert number(row[2]) == (frame["candidate_status"] == "ok").sum()
    assert number(row[5]) == pytest.approx(agree.mean() * 100, abs=0.005)
    counters = shadow.counters()
    shown = table(repr(shadow))
    assert dict(zip(shown[0], map(number, shown[1]), strict=True)) == counters._asdict()


# -- no optional library -------------------------------------------------------------------------

BLOCKED_RUN = """
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())

import trafficsplit as ts
from trafficsplit import bandit, stats
from trafficsplit.telemetry.shadow import Shadow, ShadowLog

exp = ts.Experiment("e", {"a": 50, "b": 50}, exposure=0.5)
policy = bandit.BernoulliThompson(["a", "b"])
policy.update_aggregates({"a": (10, 3, 2.1), "b": (10, 5, 2.5)})
design = stats.GroupSequential(3)
res = ts.analyze(
    {"y": {"control": stats.Moments.from_values([1.0, 2.0, 3.0, 4.0]),
           "t": stats.Moments.from_values([2.0, 3.0, 4.0, 5.0])}},
    metrics=["y"], control="control")
log = ShadowLog()
shadow = Shadow(lambda x: x, lambda x: x, sink=log)
objects = [exp, exp.assign_batch(["u1", "u2"]), ts.Splitter(EXAMPLE), design,
           design.decide([1.0]), policy, bandit.LinearThompson(["a", "b"], 2),
           bandit.simulate(policy, [0.1, 0.2], 100, 50), res, log, shadow]
out = {type(o).__name__: [len(repr(o)), len(o._repr_html_())] for o in objects}
shadow.close()
out["loaded"] = sorted(n for n in BLOCKED if n in sys.modules)
print(json.dumps(out))
"""


def test_displays_need_no_optional_library() -> None:
    blocked = ["pandas", "pyarrow", "polars", "matplotlib", "scipy", "opentelemetry"]
    code = f"import json\nBLOCKED = {blocked!r}\nEXAMPLE = {str(EXAMPLE)!r}\n" + textwrap.dedent(
        BLOCKED_RUN
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    out = json.loads(proc.stdout)
    assert out.pop("loaded") == []
    assert len(out) == 11
    assert all(text > 0 and page > 0 for text, page in out.values()), out
