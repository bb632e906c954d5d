"""The example notebooks of docs/examples: committed without outputs, and every cell runs in a
fresh kernel of this interpreter (nbclient), quickly, showing what the text around it says:
figures recomputed here from the files the notebooks write, each plot once, rich objects as
HTML."""

from __future__ import annotations

import ast
import importlib.util
import math
import re
import subprocess
import sys
import time
from collections import Counter
from decimal import Decimal
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import nbformat
import numpy as np
import pandas as pd
import pytest
import scipy.stats
import yaml

import trafficsplit as ts

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "docs" / "examples"
SECONDS = 30  # the most a notebook may take, kernel start included

_spec = importlib.util.spec_from_file_location(
    "notebooks_script", ROOT / "scripts" / "notebooks.py"
)
assert _spec is not None and _spec.loader is not None
notebooks = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = notebooks
_spec.loader.exec_module(notebooks)


# -- reading outputs ---------------------------------------------------------------------------


def cell(nb: Any, marker: str) -> Any:
    """The one code cell whose source contains ``marker``."""
    found = [c for c in nb.cells if c.cell_type == "code" and marker in c.source]
    assert len(found) == 1, f"{len(found)} code cells contain {marker!r}"
    return found[0]


def printed(c: Any) -> str:
    return "".join(o.text for o in c.outputs if o.output_type == "stream" and o.name == "stdout")


def shown(c: Any, mime: str) -> list[str]:
    """The ``mime`` data of every display of ``c`` (results and display calls)."""
    return [
        o.data[mime]
        for o in c.outputs
        if o.output_type in ("execute_result", "display_data") and mime in o.data
    ]


def images(c: Any) -> int:
    return sum(
        1
        for o in c.outputs
        if o.output_type in ("execute_result", "display_data")
        and ("image/png" in o.data or "image/svg+xml" in o.data)
    )


class _Table(HTMLParser):
    """The first HTML table as text: its first header row and its body rows."""

    def __init__(self) -> None:
        super().__init__()
        self.header: list[list[str]] = []
        self.body: list[list[str]] = []
        self._rows: list[list[str]] | None = None
        self._cell: list[str] | None = None
        self._tables = 0

    def handle_starttag(self, tag: str, attrs: Any) -> None:
        if tag == "table":
            self._tables += 1
        if self._tables != 1:
            return
        if tag in ("thead", "tbody"):
            self._rows = self.header if tag == "thead" else self.body
        elif tag == "tr" and self._rows is not None:
            self._rows.append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if self._tables == 1 and tag in ("td", "th") and self._cell is not None:
            assert self._rows is not None
            self._rows[-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_frame(text: str) -> pd.DataFrame:
    """A pandas DataFrame's HTML display, back as a frame of the texts shown, on the index
    shown."""
    parser = _Table()
    parser.feed(text)
    names = parser.header[0][1:]
    return pd.DataFrame(
        [r[1:] for r in parser.body], columns=names, index=[r[0] for r in parser.body]
    )


def agrees(text: str, value: float) -> bool:
    """True when ``text`` is ``value`` rounded to the digits it shows."""
    d = Decimal(text)
    exponent = d.as_tuple().exponent
    assert isinstance(exponent, int)
    return abs(float(d) - value) <= 0.5 * 10.0**exponent * (1 + 1e-9) + 1e-15


# -- running -------------------------------------------------------------------------------------


def run(name: str, work: Path) -> Any:
    nb = nbformat.read(EXAMPLES / name, as_version=4)
    start = time.monotonic()
    notebooks.execute(nb, work)
    took = time.monotonic() - start
    assert took < SECONDS, f"{name} took {took:.1f} s; keep the examples under {SECONDS} s"
    return nb


@pytest.fixture(scope="module")
def ab_test(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    work = tmp_path_factory.mktemp("ab_test")
    return run("ab_test.ipynb", work), work


@pytest.fixture(scope="module")
def bandit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Path]:
    work = tmp_path_factory.mktemp("bandit")
    return run("bandit.ipynb", work), work


def test_the_examples_are_listed() -> None:
    names = [p.name for p in notebooks.notebooks()]
    assert names == ["ab_test.ipynb", "bandit.ipynb"]
    readme = (EXAMPLES / "README.md").read_text(encoding="utf-8")
    for name in names:
        assert f"({name})" in readme


@pytest.mark.parametrize("path", notebooks.notebooks(), ids=lambda p: p.name)
def test_committed_without_outputs(path: Path) -> None:
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(c.outputs == [] and c.execution_count is None for c in code)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    # what the strip command writes, byte for byte: running it changes nothing
    assert path.read_text(encoding="utf-8") == notebooks.text_of(
        notebooks.strip(nbformat.read(path, as_version=4))
    )


def test_notebooks_pass_ruff() -> None:
    # the static checks cover python/, tests/ and benchmarks/; these are code that readers copy
    ruff = Path(sys.executable).parent / "ruff"
    for command in (["check"], ["format", "--check"]):
        done = subprocess.run(
            [str(ruff), *command, "docs/examples", "scripts/notebooks.py"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stdout + done.stderr


def test_strip_command_removes_what_a_run_adds(tmp_path: Path) -> None:
    source = EXAMPLES / "bandit.ipynb"
    nb = nbformat.read(source, as_version=4)
    first = next(c for c in nb.cells if c.cell_type == "code")
    first.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x\n")]
    first.execution_count = 3
    nb.metadata["language_info"]["version"] = "3.11.2"
    path = tmp_path / "bandit.ipynb"
    path.write_text(notebooks.text_of(nb), encoding="utf-8")
    assert notebooks.main(["--check", str(path)]) == 1
    assert notebooks.main([str(path)]) == 0
    assert path.read_text(encoding="utf-8") == source.read_text(encoding="utf-8")
    assert notebooks.main(["--check", str(path)]) == 0


# -- ab_test.ipynb -------------------------------------------------------------------------------


def _arms_of_users(work: Path, n: int) -> list[str]:
    """Each user's arm by the scalar path of a Splitter over the file the notebook wrote."""
    sp = ts.Splitter.from_file(work / "experiments.yaml")
    return [sp.assign("ranker-v2", f"user-{i}").arm for i in range(n)]


def _cuped(frame: pd.DataFrame) -> tuple[float, float, float]:
    """The CUPED difference challenger - control in minutes, its z, and the variance reduction:
    theta pooled over both arms (docs/statistics.md), Welch's standard error per arm."""
    y, x = frame["minutes"].to_numpy(), frame["minutes_pre"].to_numpy()
    theta = np.cov(y, x)[0, 1] / np.var(x, ddof=1)
    arm = frame["arm"].astype(str).to_numpy()
    adjusted, plain = {}, {}
    for name in ("control", "challenger"):
        a, yy = y[arm == name] - theta * x[arm == name], y[arm == name]
        adjusted[name] = (a.mean(), a.var(ddof=1) / len(a))
        plain[name] = yy.var(ddof=1) / len(yy)
    diff = adjusted["challenger"][0] - adjusted["control"][0]
    se2 = adjusted["challenger"][1] + adjusted["control"][1]
    reduction = 1 - se2 / (plain["challenger"] + plain["control"])
    return diff, diff / math.sqrt(se2), reduction


def test_ab_test_assigns_as_the_servers_would(ab_test: tuple[Any, Path]) -> None:
    nb, work = ab_test
    out = pd.read_parquet(work / "outcomes.parquet")
    assert len(out) == 200_000
    assert out["arm"].astype(str).tolist() == _arms_of_users(work, len(out))
    assert printed(cell(nb, "assign_frame agrees")).strip() == (
        "assign_frame agrees with assign_batch on every row: True"
    )


def test_ab_test_sample_ratio_check(ab_test: tuple[Any, Path]) -> None:
    nb, work = ab_test
    arms = Counter(_arms_of_users(work, 200_000))
    text = printed(cell(nb, "ts.stats.srm("))
    counts = ast.literal_eval(re.search(r"units per arm: (\{.*\})", text).group(1))  # type: ignore[union-attr]
    assert counts == dict(arms)
    expected = [sum(counts.values()) / 2] * 2
    reference = scipy.stats.chisquare([counts["control"], counts["challenger"]], expected)
    check = ts.stats.srm(counts, {"control": 50, "challenger": 50})
    assert check.pvalue == pytest.approx(reference.pvalue, rel=1e-9)
    m = re.search(r"chi-square (\S+) on 1 df, p = (\S+), mismatch: (\w+)", text)
    assert m is not None, text
    assert agrees(m.group(1), reference.statistic)
    assert agrees(m.group(2), reference.pvalue)
    assert m.group(3) == str(reference.pvalue < 0.001)
    # the assignment and the analysis show the same check
    (page,) = shown(cell(nb, "batch = exp.assign_batch"), "text/html")
    assert f"p = {reference.pvalue:.3g}" in page
    assert all(f"{arms[name]:,}" in page for name in ("control", "challenger"))
    (page,) = shown(cell(nb, "res = ts.analyze("), "text/html")
    assert f"p = {reference.pvalue:.3g}" in page


def test_ab_test_summary_shows_cuped(ab_test: tuple[Any, Path]) -> None:
    nb, work = ab_test
    out = pd.read_parquet(work / "outcomes.parquet")
    (page,) = shown(cell(nb, "summary = res.summary()"), "text/html")
    table = html_frame(page)
    row = table[(table["metric"] == "minutes") & (table["arm"] == "challenger")].iloc[0]
    assert row["method"] == "cuped"
    diff, _, reduction = _cuped(out)
    assert agrees(row["abs_lift"], diff)
    assert agrees(row["variance_reduction"], reduction)
    assert reduction > 0.5  # the pre-period explains most of the variance
    means = out.groupby(out["arm"].astype(str))["minutes"].mean()
    assert agrees(row["mean"], means["challenger"])
    # the plain mean metric is Welch's test
    conv = table[(table["metric"] == "converted") & (table["arm"] == "challenger")].iloc[0]
    assert conv["method"] == "welch"
    arm = out["arm"].astype(str)
    welch = scipy.stats.ttest_ind(
        out.loc[arm == "challenger", "converted"].astype(float),
        out.loc[arm == "control", "converted"].astype(float),
        equal_var=False,
    )
    assert agrees(conv["pvalue"], welch.pvalue)
    guard = table[table["metric"] == "latency_ms"]
    assert set(guard["method"]) == {"control", "noninferiority"}


def test_ab_test_sequential_decision(ab_test: tuple[Any, Path]) -> None:
    nb, work = ab_test
    out = pd.read_parquet(work / "outcomes.parquet")
    lines = printed(cell(nb, "for week in range(1, 5)")).strip().splitlines()
    assert len(lines) == 4
    pattern = r"week (\d): +([\d,]+) users, z = +(\S+), decision: (.+)"
    parsed = [re.fullmatch(pattern, line) for line in lines]
    assert all(parsed), lines
    zs, info = [], []
    for m in parsed:
        assert m is not None
        seen = out[out["first_day"] <= 7 * int(m.group(1))]
        assert int(m.group(2).replace(",", "")) == len(seen)
        _, z, _ = _cuped(seen)
        assert agrees(m.group(3), z)
        zs.append(z)
        info.append(len(seen) / len(out))
    design = ts.stats.GroupSequential(4, alpha=0.025, sides=2, spending="obrien-fleming")
    decisions = [m.group(4) for m in parsed if m is not None]
    for k in range(4):
        d = design.decide(zs[: k + 1], info[: k + 1])
        want = ("increase" if d.direction > 0 else "decrease") if d.reject else "continue"
        if not d.reject and d.final:
            want = "no difference"
        assert decisions[k] == want, (k, decisions)
    assert "increase" in decisions  # the challenger's real effect is found


@pytest.mark.parametrize(
    "marker",
    [
        "res.plot()",
        "looks[-1].plot()",
        "daily.plot(",
    ],
)
def test_ab_test_plots_show_once(ab_test: tuple[Any, Path], marker: str) -> None:
    nb, _ = ab_test
    assert images(cell(nb, marker)) == 1


def test_ab_test_rich_displays(ab_test: tuple[Any, Path]) -> None:
    nb, _ = ab_test
    (page,) = shown(cell(nb, "res = ts.analyze("), "text/html")
    assert "<table" in page and "Sample ratio" in page
    for marker in (
        "exp = ts.Experiment(",
        "batch = exp.assign_batch",
        "splitter = ts.Splitter",
        "design = ts.stats.GroupSequential",
    ):
        assert len(shown(cell(nb, marker), "text/html")) == 1, marker


# -- bandit.ipynb --------------------------------------------------------------------------------


def test_bandit_epochs_follow_the_configuration(bandit: tuple[Any, Path]) -> None:
    nb, work = bandit
    pattern = r"(\w+ \d+): (\{.*\}) -> next (\{.*\}), moved (\S+)%"
    lines = printed(cell(nb, "for day, next_day in")).strip().splitlines()
    epochs = [re.fullmatch(pattern, line) for line in lines]
    assert len(epochs) == 9 and all(epochs), lines
    entry = yaml.safe_load((work / "config" / "ranker.yaml").read_text())["experiments"][0]
    steps = [{"control": 34.0, "b": 33.0, "c": 33.0}]
    steps += [ast.literal_eval(m.group(3)) for m in epochs if m is not None]
    history = [h["weights"] for h in entry["history"]] + [entry["arms"]]
    assert [{a: float(w) for a, w in s.items()} for s in history] == steps
    for before, after, m in zip(steps[:-1], steps[1:], epochs, strict=True):
        assert m is not None
        served = ast.literal_eval(m.group(2))
        assert sum(served.values()) == 20_000
        # the units that move are the total-variation distance between the steps
        tv = sum(abs(after[a] - before[a]) for a in after) / 2
        assert agrees(m.group(4), tv)
        assert all(w >= 2.0 and abs(w - before[a]) <= 20.0 + 0.01 for a, w in after.items())
    assert max(steps[-1], key=steps[-1].__getitem__) == "c"
    assert printed(cell(nb, "replayed = exp.assign_batch")).startswith(
        "replay matches the log on every row: True"
    )


def test_bandit_off_policy_estimates(bandit: tuple[Any, Path]) -> None:
    nb, work = bandit
    log = pd.read_parquet(work / "exposures.parquet")
    assert len(log) == 9 * 20_000
    (page,) = shown(cell(nb, "ts.bandit.ipw_estimate(log"), "text/html")
    table = html_frame(page)
    weight = 1 / log["probability"]
    for name in ("control", "b", "c"):
        mine = log["arm"] == name
        hajek = (weight * log["converted"])[mine].sum() / weight[mine].sum()
        ipw = (weight * log["converted"])[mine].sum() / len(log)
        row = table.loc[name]
        assert agrees(row["hajek"], hajek), name
        assert agrees(row["ipw"], ipw), name
        assert int(row["rows"]) == int(mine.sum())


def test_bandit_policy_shows_its_posteriors(bandit: tuple[Any, Path]) -> None:
    nb, work = bandit
    log = pd.read_parquet(work / "exposures.parquet")
    (page,) = shown(cell(nb, "policy  # nine days"), "text/html")
    table = html_frame(page)
    assert sorted(table.index) == ["b", "c", "control"]
    for name, group in log.groupby("arm"):
        row = table.loc[name]
        assert int(row["count"].replace(",", "")) == len(group)
        assert agrees(row["mean"], group["converted"].mean())
        # Beta(1 + conversions, 1 + misses) from the uniform prior
        alpha, beta = re.fullmatch(r"Beta\((\S+), (\S+)\)", row["posterior"]).groups()  # type: ignore[union-attr]
        assert agrees(alpha, 1 + group["converted"].sum())
        assert agrees(beta, 1 + len(group) - group["converted"].sum())


def test_bandit_plots_show_once(bandit: tuple[Any, Path]) -> None:
    nb, _ = bandit
    for marker in ("ax.stackplot(", "ts.bandit.simulate("):
        assert images(cell(nb, marker)) == 1, marker


def test_bandit_rich_displays(bandit: tuple[Any, Path]) -> None:
    nb, _ = bandit
    for marker in ("policy = BernoulliThompson(", "exp  # one allocation step"):
        assert len(shown(cell(nb, marker), "text/html")) == 1, marker
