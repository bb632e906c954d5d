"""``trafficsplit analyze`` and ``trafficsplit sample-size``: the figures of the command are those
of ``trafficsplit.analyze`` on the same pandas frame (Parquet, CSV, a partitioned dataset, a
per-arm sums table), the sample-ratio check that of scipy's chi-square, the sample sizes those of
statsmodels; every error exits 2 with one line on standard error and writes nothing."""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import subprocess
import sys
import textwrap
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
import scipy.stats
import statsmodels.stats.proportion as smp
from statsmodels.stats.power import NormalIndPower

import trafficsplit as ts
from trafficsplit import cli

WEIGHTS = {"control": 50, "a": 25, "b": 25}
SPEC = [
    "--arm", "arm",
    "--metric", "converted",
    "--metric", "revenue",
    "--covariate", "revenue=revenue_pre",
    "--ratio", "ctr=clicks/views",
    "--guardrail", "latency_ms:5%",
    "--weights", "control=50,a=25,b=25",
]  # fmt: skip


def _frame(n: int = 30_000, seed: int = 11, p: tuple[float, ...] = (0.5, 0.25, 0.25)) -> Any:
    rng = np.random.default_rng(seed)
    arm = rng.choice(["control", "a", "b"], n, p=list(p))
    lift = np.where(arm == "a", 1.03, 1.0)
    pre = rng.gamma(2.0, 5.0, n)
    views = rng.poisson(20, n) + 1
    revenue = lift * (0.6 * pre + rng.gamma(2.0, 2.0, n))
    revenue[rng.random(n) < 0.01] = np.nan  # units without a value are skipped per metric
    return pd.DataFrame(
        {
            "arm": arm,
            "revenue_pre": pre,
            "revenue": revenue,
            "converted": rng.random(n) < 0.1 * lift,
            "views": views,
            "clicks": rng.binomial(views, 0.05),
            "latency_ms": rng.normal(np.where(arm == "b", 126.0, 120.0), 15.0),
            "note": ["free text"] * n,
        }
    )


def _reference(df: Any, **kw: Any) -> ts.Analysis:
    args: dict[str, Any] = {
        "arm": "arm",
        "metrics": ["converted", "revenue"],
        "covariates": {"revenue": "revenue_pre"},
        "ratio_metrics": {"ctr": ("clicks", "views")},
        "guardrails": {"latency_ms": ts.Guardrail(0.05)},
        "weights": WEIGHTS,
    }
    args.update(kw)
    return ts.analyze(df, **args)


@pytest.fixture(scope="module")
def frame() -> Any:
    return _frame()


@pytest.fixture(scope="module")
def reference(frame: Any) -> ts.Analysis:
    return _reference(frame)


@pytest.fixture(scope="module")
def files(frame: Any, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("inputs")
    frame.to_parquet(folder / "outcomes.parquet")
    frame.to_csv(folder / "outcomes.csv", index=False)
    frame.to_csv(folder / "outcomes.csv.gz", index=False)
    frame.to_csv(folder / "outcomes.txt", index=False)
    return {
        "parquet": folder / "outcomes.parquet",
        "csv": folder / "outcomes.csv",
        "csv.gz": folder / "outcomes.csv.gz",
        "txt": folder / "outcomes.txt",
    }


def _main(capsys: pytest.CaptureFixture[str], *args: Any) -> tuple[int, str, str]:
    code = cli.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return code, out, err


def _json(capsys: pytest.CaptureFixture[str], *args: Any) -> dict[str, Any]:
    code, out, err = _main(capsys, "analyze", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _same_figures(doc: dict[str, Any], ref: ts.Analysis, rel: float = 1e-12) -> None:
    """Every figure of the command's JSON equals that of the reference analysis."""
    assert doc["control"] == ref.control
    assert doc["counts"] == {str(k): int(v) for k, v in ref.counts.items()}
    assert len(doc["results"]) == len(ref.results)
    for got in doc["results"]:
        want = ref.result(got["metric"], got["arm"])
        assert (got["kind"], got["method"], got["decision"]) == (
            want.kind,
            want.method,
            want.decision,
        )
        assert (got["n"], got["control_n"]) == (want.n, want.control_n)
        for key in ("mean", "control_mean", "pvalue", "adjusted_pvalue"):
            assert got[key] == pytest.approx(getattr(want, key), rel=rel, abs=1e-300), key
        if want.variance_reduction is None:
            assert got["variance_reduction"] is None
        else:
            assert got["variance_reduction"] == pytest.approx(want.variance_reduction, rel=rel)
        for scale in ("absolute", "relative"):
            t = getattr(want, scale)
            assert t is not None
            g = got[scale]
            assert g["estimate"] == pytest.approx(t.estimate, rel=rel)
            assert (g["ci_low"], g["ci_high"]) == pytest.approx(t.ci, rel=rel)
            assert g["pvalue"] == pytest.approx(t.pvalue, rel=rel, abs=1e-300)
    assert doc["srm"]["statistic"] == pytest.approx(ref.srm.statistic, rel=rel)
    assert doc["srm"]["pvalue"] == pytest.approx(ref.srm.pvalue, rel=rel)
    assert doc["srm"]["mismatch"] is ref.srm.mismatch


# -- analyze: the figures ---------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["parquet", "csv", "csv.gz", "txt"])
def test_figures_are_those_of_analyze_on_the_same_frame(
    kind: str,
    files: dict[str, Path],
    reference: ts.Analysis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    fmt = ["--format", "csv"] if kind == "txt" else []  # a CSV file by any name
    doc = _json(capsys, "--input", files[kind], *SPEC, *fmt)
    assert doc["layout"] == "units"
    _same_figures(doc, reference)
    # the data were made with a 3 % lift on revenue in arm a and 5 % slower b: found
    assert reference.result("revenue", "a").decision == "increase"
    assert reference.result("latency_ms", "b").decision == "harm"


def test_a_partitioned_dataset_is_read_as_one_table(
    frame: Any, reference: ts.Analysis, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # as Spark writes partitionBy("arm"): arm=a/part-*.parquet, plus a _SUCCESS marker
    table = pa.Table.from_pandas(frame, preserve_index=False)
    ds.write_dataset(
        table,
        tmp_path / "export",
        format="parquet",
        partitioning=["arm"],
        partitioning_flavor="hive",
        max_rows_per_file=4_000,
        max_rows_per_group=4_000,
    )
    (tmp_path / "export" / "_SUCCESS").write_text("")
    assert len(list((tmp_path / "export").rglob("*.parquet"))) > 3
    doc = _json(capsys, "--input", tmp_path / "export", *SPEC)
    # rows come back grouped by arm, so sums add in another order: equal to rounding
    _same_figures(doc, reference, rel=1e-9)


def test_per_arm_sums_give_the_figures_of_the_units(
    frame: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    complete = frame.dropna(subset=["revenue"])
    spec = {
        "metrics": ["converted", "revenue"],
        "covariates": {"revenue": "revenue_pre"},
        "ratio_metrics": {"ctr": ("clicks", "views")},
        "guardrails": {"latency_ms": ts.Guardrail(0.05)},
    }
    # two partitions, as per-partition aggregates from Spark or SQL arrive: rows merge per arm
    halves = [complete.iloc[: len(complete) // 2], complete.iloc[len(complete) // 2 :]]
    sums = pd.concat([ts.sufficient_statistics(h, **spec) for h in halves], ignore_index=True)
    assert len(sums) == 6
    sums["note"] = "extra columns are not read"
    sums.to_parquet(tmp_path / "sums.parquet")
    doc = _json(capsys, "--input", tmp_path / "sums.parquet", *SPEC)
    assert doc["layout"] == "sums"
    _same_figures(doc, _reference(complete), rel=1e-9)


def test_per_arm_sums_from_sql_with_decimal_columns(
    frame: Any, files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    duckdb = pytest.importorskip("duckdb")
    out = tmp_path / "sums.parquet"
    con = duckdb.connect()
    con.execute(
        f"""
        COPY (
            SELECT arm, COUNT(*) AS n,
                   SUM(converted::INT) AS sum__converted,
                   SUM(converted::INT) AS sumsq__converted,
                   SUM(clicks)::DECIMAL(38, 0) AS sum__clicks,
                   SUM(clicks * clicks)::DECIMAL(38, 0) AS sumsq__clicks,
                   SUM(views)::DECIMAL(38, 0) AS sum__views,
                   SUM(views * views)::DECIMAL(38, 0) AS sumsq__views,
                   SUM(clicks * views)::DECIMAL(38, 0) AS sumprod__clicks__views,
                   SUM(latency_ms) AS sum__latency_ms,
                   SUM(latency_ms * latency_ms) AS sumsq__latency_ms
            FROM read_parquet('{files["parquet"]}') GROUP BY arm
        ) TO '{out}' (FORMAT parquet)
        """
    )
    con.close()
    assert pa.types.is_decimal(pq.read_schema(out).field("sum__clicks").type)
    doc = _json(capsys, "--input", out, "--arm", "arm", "--metric", "converted",
                "--ratio", "ctr=clicks/views", "--guardrail", "latency_ms:5%",
                "--weights", "control=50,a=25,b=25")  # fmt: skip
    assert doc["layout"] == "sums"
    ref = ts.analyze(frame, metrics=["converted"], ratio_metrics={"ctr": ("clicks", "views")},
                     guardrails={"latency_ms": 0.05}, weights=WEIGHTS)  # fmt: skip
    # sums of squares in SQL lose digits to cancellation that the core's centred moments keep
    _same_figures(doc, ref, rel=1e-7)


def test_the_table_shows_each_comparison_and_the_sample_ratio_check(
    files: dict[str, Path],
    frame: Any,
    reference: ts.Analysis,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = _main(capsys, "analyze", "--input", files["parquet"], *SPEC)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"{files['parquet']}: 30,000 units (one row per unit)")
    assert re.search(
        r"^metric\s+arm\s+units\s+mean\s+lift\s+95 % CI\s+p\s+adj\. p\s+decision", out, re.M
    )
    for r in reference.results:
        rel = r.relative
        assert rel is not None
        cells = [
            r.metric,
            r.arm,
            f"{r.n:,}",
            f"{r.mean:.6g}",
            f"{rel.estimate * 100:+.2f} %",
            f"[{rel.ci[0] * 100:+.2f} %, {rel.ci[1] * 100:+.2f} %]",
            f"{r.pvalue:.3g}",
            *([] if r.kind == "guardrail" else [f"{r.adjusted_pvalue:.3g}"]),
            r.decision,
            *([f"-{r.variance_reduction * 100:.0f} %"] if r.variance_reduction is not None else []),
        ]
        row = r"\s+".join(re.escape(c) for c in cells)
        assert re.search(rf"^{row}$", out, re.M), (r.metric, r.arm, out)
    control = frame[frame["arm"] == "control"]
    assert int(control["revenue"].isna().sum()) > 0
    for metric, column in [("converted", "converted"), ("revenue", "revenue"),
                           ("ctr", "views"), ("latency_ms", "latency_ms")]:  # fmt: skip
        n = int(control[column].notna().sum())  # units with a value
        if metric == "ctr":
            mean = control["clicks"].sum() / control["views"].sum()
        else:
            mean = control[column].mean()
        assert re.search(rf"^{metric}\s+control\s+{n:,}\s+{mean:.6g}\s+control$", out, re.M)
    assert "guardrail latency_ms: lower is better, margin 5 % of control" in out

    # the sample-ratio check against scipy's chi-square on the counts of the frame
    counts = frame["arm"].value_counts()
    observed = [counts[a] for a in WEIGHTS]
    expected = [len(frame) * w / 100 for w in WEIGHTS.values()]
    chi2 = scipy.stats.chisquare(observed, expected)
    srm = f"chi-square {chi2.statistic:.4g}, df 2, p = {chi2.pvalue:.3g}: no mismatch"
    assert srm in out
    for arm_name, n, w in zip(WEIGHTS, observed, WEIGHTS.values(), strict=True):
        share = f"{n / len(frame) * 100:.2f} %"
        assert re.search(rf"^  {arm_name}\s+{n:,}\s+{share}\s+expected {w:.2f} %$", out, re.M)


def test_a_sample_ratio_mismatch_exits_1_and_still_reports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _frame(20_000, seed=5, p=(0.53, 0.235, 0.235))  # 53/23.5/23.5 where 50/25/25 is set
    df.to_parquet(tmp_path / "skewed.parquet")
    report = tmp_path / "report.html"
    args = ["analyze", "--input", tmp_path / "skewed.parquet", *SPEC, "--report", report]
    code, out, err = _main(capsys, *args)
    counts = df["arm"].value_counts()
    chi2 = scipy.stats.chisquare(
        [counts[a] for a in WEIGHTS], [len(df) * w / 100 for w in WEIGHTS.values()]
    )
    assert chi2.pvalue < 0.001
    assert code == 1
    assert f"p = {chi2.pvalue:.3g}: MISMATCH (p < 0.001)" in out
    assert err.splitlines() == [
        f"trafficsplit analyze: sample-ratio mismatch (p = {chi2.pvalue:.3g} < 0.001): the "
        "comparisons are not trustworthy"
    ]
    assert "Sample-ratio mismatch" in report.read_text(encoding="utf-8")
    code, out, _ = _main(capsys, *args[:-2], "--json")
    assert code == 1
    assert json.loads(out)["srm"]["pvalue"] == pytest.approx(chi2.pvalue, rel=1e-9)
    # the equal split is the default: a 50/25/25 split is then a mismatch as well
    code, out, _ = _main(capsys, "analyze", "--input", tmp_path / "skewed.parquet",
                         "--arm", "arm", "--metric", "revenue")  # fmt: skip
    assert code == 1
    assert "expected from equal shares" in out


def test_weights_from_a_configuration(
    files: dict[str, Path],
    reference: ts.Analysis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    config = tmp_path / "experiments.yaml"
    config.write_text(
        textwrap.dedent(
            """\
            experiments:
              - key: ranker-v2
                arms: {control: 50, a: 25, b: 25}
                history:
                  - {at: 2026-11-01T00:00:00Z, weights: {control: 90, a: 5, b: 5}}
                allocated_at: 2026-11-15T00:00:00Z
              - key: other
                arms: {control: 50, treatment: 50}
            """
        ),
        encoding="utf-8",
    )
    spec = [*SPEC[: SPEC.index("--weights")], "--config", config, "--experiment", "ranker-v2"]
    doc = _json(capsys, "--input", files["parquet"], *spec)
    assert doc["srm"]["weights"] == {"control": 50.0, "a": 25.0, "b": 25.0}
    assert doc["srm"]["weights_from"] == f"experiment 'ranker-v2' in {config}"
    _same_figures(doc, reference)


@pytest.mark.parametrize(
    ("guardrail", "expected"),
    [
        ("latency_ms", ts.Guardrail(0.05)),
        ("latency_ms:0.02", ts.Guardrail(0.02)),
        ("latency_ms:3abs", ts.Guardrail(3.0, relative=False)),
        ("latency_ms:3abs:lower", ts.Guardrail(3.0, relative=False)),
        ("converted:1%:higher", ts.Guardrail(0.01, higher_is_better=True)),
    ],
)
def test_guardrail_forms(
    guardrail: str,
    expected: ts.Guardrail,
    files: dict[str, Path],
    frame: Any,
    capsys: pytest.CaptureFixture[str],
) -> None:
    metric = guardrail.partition(":")[0]
    doc = _json(capsys, "--input", files["parquet"], "--arm", "arm", "--guardrail", guardrail,
                "--weights", "control=50,a=25,b=25")  # fmt: skip
    ref = ts.analyze(frame, guardrails={metric: expected}, weights=WEIGHTS)
    _same_figures(doc, ref)
    assert {r["kind"] for r in doc["results"]} == {"guardrail"}


def test_integer_arms_and_another_control(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    df = _frame(6_000, seed=3)
    df["arm"] = df["arm"].map({"control": 7, "a": 8, "b": 9})
    df.to_csv(tmp_path / "units.csv", index=False)
    doc = _json(capsys, "--input", tmp_path / "units.csv", "--arm", "arm", "--control", "7",
                "--metric", "revenue", "--correction", "bh", "--alpha", "1%",
                "--weights", "7=2,8=1,9=1")  # fmt: skip
    ref = ts.analyze(df, metrics="revenue", control="7", correction="bh", alpha=0.01,
                     weights={"7": 2, "8": 1, "9": 1})  # fmt: skip
    assert doc["correction"] == "bh"
    _same_figures(doc, ref)


def test_only_the_named_columns_are_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A CSV whose unused column "junk" turns to text past Arrow's first 1 MB block: reading it
    # fails, so the command succeeds only if it does not read that column.
    n = 150_000
    rng = np.random.default_rng(1)
    df = pd.DataFrame(
        {
            "arm": np.where(np.arange(n) % 2 == 0, "control", "b"),
            "y": rng.normal(size=n).round(6),
            "junk": [str(i) for i in range(n - 5)] + ["oops"] * 5,
            "late": [str(i) for i in range(n - 5)] + ["oops"] * 5,
        }
    )
    path = tmp_path / "wide.csv"
    df.to_csv(path, index=False)
    assert path.stat().st_size > 2**21
    with pytest.raises(pa.ArrowInvalid, match=r"CSV column #2: .* invalid value 'oops'"):
        ds.dataset(path, format="csv").to_table()
    doc = _json(capsys, "--input", path, "--arm", "arm", "--metric", "y")
    _same_figures(doc, ts.analyze(df, metrics="y"))
    # a named column that fails the same way is reported with the file and its name
    code, out, err = _main(capsys, "analyze", "--input", path, "--arm", "arm", "--metric", "late")
    assert (code, out) == (2, "")
    assert err.startswith(f"trafficsplit analyze: error: {path}: ")
    assert "column 'late'" in err and "'oops'" in err
    assert len(err.splitlines()) == 1


# -- analyze: the report ----------------------------------------------------------------------


class _Page(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.open: list[str] = []
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [v or "" for k, v in attrs if k in ("src", "href")]
        if tag not in ("meta", "br", "img", "link", "input", "hr"):
            self.open.append(tag)

    def handle_endtag(self, tag: str) -> None:
        assert self.open and self.open[-1] == tag, (tag, self.open[-5:])
        self.open.pop()


def test_the_report_is_one_self_contained_page(
    files: dict[str, Path],
    reference: ts.Analysis,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    pytest.importorskip("matplotlib")
    report = tmp_path / "out" / "analysis.html"
    report.parent.mkdir()
    code, out, err = _main(
        capsys, "analyze", "--input", files["parquet"], *SPEC, "--report", report
    )
    assert (code, err) == (0, "")
    assert out.startswith(f"{files['parquet']}: ")  # the table is printed as well
    assert [p.name for p in report.parent.iterdir()] == ["analysis.html"]  # no temporary left
    page = report.read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>")
    assert reference._repr_html_() in page  # the same table as in Jupyter
    parser = _Page()
    parser.feed(page)
    parser.close()
    assert parser.open == []  # every element closed, in order
    assert parser.links == []  # nothing fetched from elsewhere
    assert parser.tags.count("svg") == 1
    svg = page[page.index("<svg") : page.index("</svg>") + len("</svg>")]
    root = ET.fromstring(svg)
    texts = "".join(root.itertext())
    for r in reference.results:
        assert f"{r.metric} · {r.arm}" in texts  # one line of the forest plot per comparison
    # written again, the page is replaced whole
    code, _, _ = _main(capsys, "analyze", "--input", files["parquet"], *SPEC, "--report", report)
    assert code == 0
    assert report.read_text(encoding="utf-8") == page
    umask = os.umask(0)
    os.umask(umask)
    assert report.stat().st_mode & 0o777 == 0o666 & ~umask  # as any file the user writes


# -- analyze: errors --------------------------------------------------------------------------


def _bad_config(tmp_path: Path) -> Path:
    path = tmp_path / "bad.yaml"
    path.write_text("experiments:\n  - key: x\n    arms: {control: 70, a: 20}\n", encoding="utf-8")
    return path


def _good_config(tmp_path: Path) -> Path:
    path = tmp_path / "good.yaml"
    path.write_text("experiments:\n  - key: x\n    arms: {control: 50, a: 50}\n", encoding="utf-8")
    return path


def _sums_without_sumprod(tmp_path: Path) -> Path:
    df = _frame(3_000).dropna()
    sums = ts.sufficient_statistics(df, metrics=["revenue"], covariates={"revenue": "revenue_pre"})
    sums.drop(columns=["sumprod__revenue__revenue_pre"]).to_parquet(tmp_path / "sums.parquet")
    return tmp_path / "sums.parquet"


def _corrupt(tmp_path: Path) -> Path:
    (tmp_path / "bad.parquet").write_bytes(b"PAR1 this is not a parquet file")
    return tmp_path / "bad.parquet"


def _empty_folder(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "_SUCCESS").write_text("")
    return tmp_path / "empty"


BASE = ["--arm", "arm", "--metric", "revenue"]

# (name, how to build the arguments from (input, tmp_path), what stderr must hold)
ERRORS: list[tuple[str, Any, list[str]]] = [
    ("missing file", lambda i, t: ["--input", t / "nope.parquet", *BASE],
     ["nope.parquet: no such file or folder"]),
    ("missing metric column", lambda i, t: ["--input", i, "--arm", "arm", "--metric", "revenu"],
     ["outcomes.", "no column 'revenu' (metric); columns: arm, revenue_pre, revenue"]),
    ("missing arm column", lambda i, t: ["--input", i, "--arm", "group", "--metric", "revenue"],
     ["outcomes.", "no column 'group' (--arm, the arm column)"]),
    ("missing covariate column", lambda i, t: ["--input", i, *BASE, "--covariate", "revenue=pre"],
     ["outcomes.", "no column 'pre' (covariate of 'revenue')"]),
    ("missing ratio column", lambda i, t: ["--input", i, *BASE, "--ratio", "ctr=clicks/view"],
     ["outcomes.", "no column 'view' (denominator of ratio 'ctr')"]),
    ("text metric column", lambda i, t: ["--input", i, "--arm", "arm", "--metric", "note"],
     ["outcomes.", "column 'note' (metric) has type ", "string; it needs numbers or booleans"]),
    ("text guardrail column", lambda i, t: ["--input", i, "--arm", "arm", "--guardrail", "note"],
     ["outcomes.", "column 'note' (guardrail) has type"]),
    ("sums table lacks a column", lambda i, t: ["--input", _sums_without_sumprod(t), *BASE,
                                                "--covariate", "revenue=revenue_pre"],
     ["sums.parquet: no column 'sumprod__revenue__revenue_pre'",
      "(sum of 'revenue' x 'revenue_pre')"]),
    ("corrupt parquet", lambda i, t: ["--input", _corrupt(t), *BASE],
     ["bad.parquet: cannot be read as parquet ("]),
    ("empty folder", lambda i, t: ["--input", _empty_folder(t), *BASE],
     ["empty: the folder holds no data files"]),
    ("no metric", lambda i, t: ["--input", i, "--arm", "arm"],
     ["name at least one --metric, --ratio or --guardrail"]),
    ("unknown control", lambda i, t: ["--input", i, *BASE, "--control", "ctl"],
     ["outcomes.", "control arm 'ctl' is not in the data; arms: ['control', 'a', 'b']"]),
    ("covariate of no metric", lambda i, t: ["--input", i, *BASE, "--covariate", "x=revenue_pre"],
     ["--covariate x: a covariate adjusts a --metric; metrics: revenue"]),
    ("weights lack an arm", lambda i, t: ["--input", i, *BASE, "--weights", "control=50,a=50"],
     ["outcomes.", "arm 'b' is in the data but not in the split of --weights (control, a)"]),
    ("weights syntax", lambda i, t: ["--input", i, *BASE, "--weights", "control:50,a:50"],
     ["argument --weights: expected ARM=SHARE,... like control=50,treatment=50"]),
    ("weights one arm", lambda i, t: ["--input", i, *BASE, "--weights", "control=1"],
     ["argument --weights: needs at least two arms"]),
    ("weights zero", lambda i, t: ["--input", i, *BASE, "--weights", "control=1,a=0,b=1"],
     ["argument --weights: arm 'a': share must be > 0"]),
    ("ratio syntax", lambda i, t: ["--input", i, *BASE, "--ratio", "ctr=clicks"],
     ["argument --ratio: expected NAME=NUMERATOR/DENOMINATOR like ctr=clicks/views"]),
    ("covariate syntax", lambda i, t: ["--input", i, *BASE, "--covariate", "revenue"],
     ["argument --covariate: expected METRIC=COLUMN"]),
    ("guardrail margin", lambda i, t: ["--input", i, *BASE, "--guardrail", "latency_ms:fast"],
     ["argument --guardrail: expected METRIC[:MARGIN[:lower|higher]]", "'fast' is no number"]),
    ("guardrail direction", lambda i, t: ["--input", i, *BASE, "--guardrail", "latency_ms:5%:up"],
     ["argument --guardrail:", "direction must be 'lower' or 'higher'"]),
    ("alpha", lambda i, t: ["--input", i, *BASE, "--alpha", "1.5"],
     ["argument --alpha: must be between 0 and 1"]),
    ("no input", lambda i, t: BASE, ["the following arguments are required: --input"]),
    ("experiment without config", lambda i, t: ["--input", i, *BASE, "--experiment", "x"],
     ["--experiment needs --config"]),
    ("config without experiment", lambda i, t: ["--input", i, *BASE, "--config", _good_config(t)],
     ["good.yaml: name the experiment with --experiment"]),
    ("weights and config", lambda i, t: ["--input", i, *BASE, "--weights", "control=1,a=1",
                                         "--config", _good_config(t)],
     ["argument --config: not allowed with argument --weights"]),
    ("invalid config", lambda i, t: ["--input", i, *BASE, "--config", _bad_config(t),
                                     "--experiment", "x"],
     ["bad.yaml: ", "sum"]),
    ("missing config", lambda i, t: ["--input", i, *BASE, "--config", t / "none.yaml",
                                     "--experiment", "x"],
     ["none.yaml: no such file or directory"]),
    ("unknown experiment", lambda i, t: ["--input", i, *BASE, "--config", _good_config(t),
                                         "--experiment", "y"],
     ["good.yaml: no experiment 'y' (--experiment); experiments: x"]),
    ("config arms differ", lambda i, t: ["--input", i, *BASE, "--config", _good_config(t),
                                         "--experiment", "x"],
     ["arm 'b' is in the data but not in the split of experiment 'x' in"]),
]  # fmt: skip


@pytest.mark.parametrize("kind", ["parquet", "csv"])
@pytest.mark.parametrize(("name", "build", "expected"), ERRORS, ids=[e[0] for e in ERRORS])
def test_errors_exit_2_with_one_line_and_write_nothing(
    kind: str,
    name: str,
    build: Any,
    expected: list[str],
    files: dict[str, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = build(files[kind], tmp_path)
    before = sorted(tmp_path.rglob("*"))
    report = tmp_path / "report.html"
    code, out, err = _main(capsys, "analyze", *args, "--report", report)
    assert code == 2, (out, err)
    assert out == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith("trafficsplit analyze: error: ")
    for part in expected:
        assert part in err, (part, err)
    assert sorted(tmp_path.rglob("*")) == before  # no report, no temporary file


def test_a_report_in_a_missing_folder_is_refused_before_reading(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    report = tmp_path / "nowhere" / "r.html"
    code, out, err = _main(
        capsys, "analyze", "--input", files["parquet"], *SPEC, "--report", report
    )
    assert (code, out) == (2, "")
    assert err == (
        f"trafficsplit analyze: error: {report}: no folder '{report.parent}' to write the report "
        "in\n"
    )
    assert not report.parent.exists()


# -- sample-size ------------------------------------------------------------------------------


def _size(capsys: pytest.CaptureFixture[str], *args: Any) -> dict[str, Any]:
    code, out, err = _main(capsys, "sample-size", *args, "--json")
    assert code == 0, err
    return json.loads(out)


def _smallest_n(power_at: Any, target: float) -> int:
    """The smallest whole n whose power reaches ``target`` (power grows with n)."""
    lo, hi = 1, 2
    while power_at(hi) < target:
        hi *= 2
    while lo < hi:
        mid = (lo + hi) // 2
        if power_at(mid) >= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


@pytest.mark.parametrize(
    ("args", "diff", "alpha", "power", "alternative"),
    [
        (["--baseline-rate", "10%", "--mde", "5%"], 0.005, 0.05, 0.8, "two-sided"),
        (["--baseline-rate", "0.1", "--mde", "0.005", "--absolute"], 0.005, 0.05, 0.8, "two-sided"),
        (["--baseline-rate", "0.3", "--mde=-10%", "--power", "0.9"], -0.03, 0.05, 0.9, "two-sided"),
        (["--baseline-rate", "0.02", "--mde", "20%", "--sides", "1", "--alpha", "0.01"],
         0.004, 0.01, 0.8, "larger"),
        (["--baseline-rate", "0.1", "--mde", "5%", "--arms", "4"], 0.005, 0.05 / 3, 0.8,
         "two-sided"),
    ],
)  # fmt: skip
def test_sample_size_of_a_proportion_is_that_of_statsmodels(
    args: list[str],
    diff: float,
    alpha: float,
    power: float,
    alternative: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    doc = _size(capsys, *args)
    p = doc["baseline"]
    n = smp.samplesize_proportions_2indep_onetail(diff, p, power, ratio=1, alpha=alpha,
                                                  alternative=alternative)  # fmt: skip
    assert doc["exact_control"] == pytest.approx(n, rel=1e-6)
    arms = doc["arms"]
    assert all(a["units"] == math.ceil(n - 1e-6) for a in arms.values())
    assert doc["total"] == len(arms) * math.ceil(n - 1e-6)
    assert doc["mde"]["absolute"] == pytest.approx(diff)
    assert doc["alpha_per_comparison"] == pytest.approx(alpha)
    # the size reaches the power, one unit fewer does not
    units = arms["control"]["units"]

    def power_at(k: float) -> float:
        return smp.power_proportions_2indep(
            diff, p, k, ratio=1, alpha=alpha, alternative=alternative, return_results=False
        )

    assert power_at(units) >= power > power_at(units - 1)


@pytest.mark.parametrize("sides", [1, 2])
def test_sample_size_of_a_mean_is_that_of_normal_ind_power(
    sides: int, capsys: pytest.CaptureFixture[str]
) -> None:
    doc = _size(
        capsys, "--baseline-mean", "12.5", "--sd", "30", "--mde", "2%", "--sides", str(sides)
    )
    effect = 0.02 * 12.5 / 30
    alternative = "two-sided" if sides == 2 else "larger"

    def power_at(n: int) -> float:
        return float(NormalIndPower().power(effect, n, 0.05, ratio=1, alternative=alternative))

    units = _smallest_n(power_at, 0.8)
    assert doc["arms"]["control"]["units"] == units
    assert doc["arms"]["treatment"]["units"] == units
    assert doc["total"] == 2 * units
    approx = NormalIndPower().solve_power(effect, alpha=0.05, power=0.8, alternative=alternative)
    assert doc["exact_control"] == pytest.approx(approx, rel=1e-4)
    # an absolute effect needs no baseline mean
    doc2 = _size(capsys, "--sd", "30", "--mde", "0.25", "--absolute", "--sides", str(sides))
    assert doc2["arms"] == doc["arms"]
    assert doc2["mde"] == {"absolute": 0.25, "relative": None}


def test_unequal_weights_size_every_arm_for_its_own_comparison(
    capsys: pytest.CaptureFixture[str],
) -> None:
    weights = {"control": 50, "a": 30, "b": 20}
    doc = _size(capsys, "--baseline-rate", "0.1", "--mde", "5%",
                "--weights", "control=50,a=30,b=20", "--daily-units", "40000",
                "--exposure", "50%")  # fmt: skip
    alpha = 0.05 / 2  # two comparisons with control
    need = {}
    for arm in ("a", "b"):
        r = weights[arm] / weights["control"]  # n_arm / n_control
        # statsmodels: sample 1 is the treatment, ratio = n_control / n_treatment
        n_t = smp.samplesize_proportions_2indep_onetail(0.005, 0.1, 0.8, ratio=1 / r, alpha=alpha)
        need[arm] = n_t / r  # the control units this comparison needs
    control = max(need.values())  # the split is fixed: the smaller arm b decides
    assert need["b"] > need["a"]
    assert doc["exact_control"] == pytest.approx(control, rel=1e-6)
    units = {a: math.ceil(control * w / weights["control"] - 1e-6) for a, w in weights.items()}
    assert {a: v["units"] for a, v in doc["arms"].items()} == units
    assert doc["total"] == sum(units.values())
    assert doc["days"] == math.ceil(sum(units.values()) / (40000 * 0.5))
    assert {a: v["share"] for a, v in doc["arms"].items()} == {"control": 0.5, "a": 0.3, "b": 0.2}


def test_sample_size_table(capsys: pytest.CaptureFixture[str]) -> None:
    doc = _size(capsys, "--baseline-rate", "10%", "--mde", "5%", "--daily-units", "10000")
    code, out, err = _main(capsys, "sample-size", "--baseline-rate", "10%", "--mde", "5%",
                           "--daily-units", "10000")  # fmt: skip
    assert (code, err) == (0, "")
    units = doc["arms"]["control"]["units"]
    assert out.splitlines()[:2] == [
        "detect +5 % on a conversion rate of 10 % (+0.5 percentage points: 10 % -> 10.5 %)",
        "two-sided test, alpha 0.05, power 80 %",
    ]
    assert re.search(rf"^control\s+50\.0 %\s+{units:,}$", out, re.M)
    assert re.search(rf"^treatment\s+50\.0 %\s+{units:,}$", out, re.M)
    assert re.search(rf"^total\s+{2 * units:,}$", out, re.M)
    days = math.ceil(2 * units / 10000)
    assert out.splitlines()[-1] == f"days: {days} at 10,000 units a day (all of them enter)"


SIZE_ERRORS = [
    (["--mde", "5%"], "give --baseline-rate for a proportion, or --sd"),
    (["--baseline-rate", "1.5", "--mde", "5%"], "argument --baseline-rate: must be between 0 and"),
    (["--baseline-rate", "0.1"], "the following arguments are required: --mde"),
    (["--baseline-rate", "0.1", "--sd", "3", "--mde", "5%"], "not both"),
    (["--baseline-mean", "3", "--mde", "5%"], "a mean needs --sd"),
    (["--sd", "3", "--mde", "5%"], "a relative --mde on a mean needs --baseline-mean"),
    (["--sd", "-3", "--mde", "1", "--absolute"], "argument --sd: must be > 0"),
    (["--baseline-rate", "0.1", "--mde", "0"], "--mde must be nonzero"),
    (["--baseline-rate", "0.9", "--mde", "20%"], "moves the rate 0.9 to 1.08, outside (0, 1)"),
    (["--baseline-rate", "0.1", "--mde", "5%", "--power", "1"], "argument --power: must be"),
    (["--baseline-rate", "0.1", "--mde", "5%", "--arms", "1"], "argument --arms: needs at least 2"),
    (["--baseline-rate", "0.1", "--mde", "5%", "--weights", "a=1,b=1"],
     "--weights has no arm 'control' (--control); arms: a, b"),
    (["--baseline-rate", "0.1", "--mde", "5%", "--exposure", "0"], "argument --exposure: must"),
    (["--baseline-rate", "0.1", "--mde", "5%", "--daily-units", "0"], "argument --daily-units"),
    (["--baseline-rate", "0.1", "--mde", "five"], "argument --mde: expected a number, got 'five'"),
]  # fmt: skip


@pytest.mark.parametrize(("args", "expected"), SIZE_ERRORS)
def test_sample_size_errors_exit_2_with_one_line(
    args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = _main(capsys, "sample-size", *args)
    assert (code, out) == (2, "")
    assert len(err.splitlines()) == 1, err
    assert err.startswith("trafficsplit sample-size: error: ")
    assert expected in err


# -- as a program -----------------------------------------------------------------------------


def _run(
    *args: Any, cwd: Path | None = None, code: str | None = None
) -> subprocess.CompletedProcess[str]:
    cmd = (
        [sys.executable, "-c", code]
        if code
        else [sys.executable, "-m", "trafficsplit", *map(str, args)]
    )
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=cwd)


def test_as_a_subprocess_the_output_is_the_same(
    files: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = _run("analyze", "--input", files["csv"], *SPEC, "--json", cwd=tmp_path)
    assert (proc.returncode, proc.stderr) == (0, "")
    code, out, _ = _main(capsys, "analyze", "--input", files["csv"], *SPEC, "--json")
    assert code == 0
    assert proc.stdout == out
    proc = _run("sample-size", "--baseline-rate", "10%", "--mde", "5%")
    assert proc.returncode == 0
    assert proc.stdout == _main(capsys, "sample-size", "--baseline-rate", "10%", "--mde", "5%")[1]
    proc = _run("analyze", "--input", tmp_path / "missing.csv", *SPEC)
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == (
        f"trafficsplit analyze: error: {tmp_path / 'missing.csv'}: no such file or folder "
        "(--input)\n"
    )


BLOCKER = """
import sys

class _NotInstalled:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NotInstalled())
"""
OPTIONAL = ("pandas", "pyarrow", "matplotlib", "scipy", "polars")


def _without(blocked: tuple[str, ...], body: str) -> subprocess.CompletedProcess[str]:
    return _run(code=f"BLOCKED = {blocked!r}\n{BLOCKER}\n{textwrap.dedent(body)}")


@pytest.mark.parametrize("command", ["analyze", "sample-size"])
def test_help_teaches_and_loads_no_optional_library(command: str) -> None:
    proc = _run(
        code=textwrap.dedent(
            f"""
            import sys
            from trafficsplit.cli import main
            code = main([{command!r}, "--help"])
            print("exit", code, sorted(m for m in {OPTIONAL!r} if m in sys.modules))
            """
        )
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "exit 0 []"
    assert f"examples:\n  trafficsplit {command} --" in proc.stdout
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for action in sub.choices[command]._actions:
        if action.dest == "help":
            continue
        assert "e.g." in (action.help or ""), f"{command} {action.option_strings}: no example"


def test_console_script_analyze_help_loads_no_optional_library() -> None:
    script = Path(sys.executable).with_name("trafficsplit")
    if not script.exists():
        pytest.skip("no trafficsplit console script next to this interpreter")
    proc = subprocess.run(
        [str(script), "analyze", "--help"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: trafficsplit analyze ")
    proc = _run(
        code=textwrap.dedent(
            f"""
            import runpy, sys
            sys.argv = ["trafficsplit", "analyze", "--help"]
            try:
                runpy.run_module("trafficsplit", run_name="__main__")
            except SystemExit:
                pass
            print(sorted(m for m in {OPTIONAL!r} if m in sys.modules))
            """
        )
    )
    assert proc.stdout.splitlines()[-1] == "[]"


@pytest.mark.parametrize(
    ("blocked", "extra"), [(("pyarrow",), "pyarrow: pip install 'trafficsplit[arrow]'"),
                           (("pandas", "pyarrow"), "pandas: pip install 'trafficsplit[pandas]'")]
)  # fmt: skip
def test_without_pyarrow_or_pandas_analyze_names_the_extra_and_sample_size_runs(
    blocked: tuple[str, ...], extra: str, files: dict[str, Path]
) -> None:
    proc = _without(
        (*blocked, "matplotlib", "scipy"),
        f"""
        from trafficsplit.cli import main
        print("exit", main(["analyze", "--input", {str(files["parquet"])!r}, "--arm", "arm",
                            "--metric", "revenue"]))
        print("exit", main(["sample-size", "--baseline-rate", "0.1", "--mde", "5%"]))
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == f"trafficsplit analyze: error: trafficsplit analyze needs {extra}\n"
    assert proc.stdout.splitlines()[0] == "exit 2"
    assert proc.stdout.splitlines()[-1] == "exit 0"


def test_without_matplotlib_the_report_has_the_table_and_says_why_no_plot(
    files: dict[str, Path], tmp_path: Path
) -> None:
    report = tmp_path / "r.html"
    proc = _without(
        ("matplotlib",),
        f"""
        from trafficsplit.cli import main
        code = main(["analyze", "--input", {str(files["parquet"])!r}, *{SPEC!r},
                     "--report", {str(report)!r}])
        print("exit", code)
        """,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "exit 0"
    page = report.read_text(encoding="utf-8")
    assert "<table>" in page and "<svg" not in page
    assert (
        "No plot: the report&#x27;s plot needs matplotlib: pip install "
        "&#x27;trafficsplit[plot]&#x27;" in page
    )
