"""Plots and the HTML report of an analysis.

Plots: built without pyplot (a notebook shows a returned figure once: checked in a real
Jupyter kernel), panels sized by the number of comparisons, legends clear of the boundaries.
The report: loaded in headless Chromium with the network cut, no console error, every section
present with the Analysis's figures, and a screenshot saved to build/report-screenshots/.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats as sps

import trafficsplit as ts
from trafficsplit import bandit
from trafficsplit.analysis.report import SECTIONS

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg

ROOT = Path(__file__).resolve().parent.parent
SCREENSHOTS = ROOT / "build" / "report-screenshots"
LOOKS = (0.25, 0.5, 0.75)


def _units(k: int, n: int = 24_000, seed: int = 3) -> pd.DataFrame:
    """Control and ``k`` arms; arm v1 earns 5 % more; latency is a guardrail."""
    rng = np.random.default_rng(seed)
    arms = ["control"] + [f"v{i}" for i in range(1, k + 1)]
    arm = rng.choice(arms, n)
    revenue = rng.gamma(2.0, 5.0, n) * np.where(arm == "v1", 1.05, 1.0)
    latency = rng.normal(120.0, 15.0, n) * np.where(arm == "v2", 1.2, 1.0)
    return pd.DataFrame({"arm": arm, "revenue": revenue, "latency_ms": latency})


def _sequential(df: pd.DataFrame, guard: bool = True) -> tuple[ts.Analysis, object]:
    design = ts.stats.GroupSequential(4, alpha=0.025, sides=2)
    looks: list[ts.Analysis] = []
    for frac in LOOKS:
        part = df.iloc[: round(frac * len(df))]
        looks.append(
            ts.analyze(
                part,
                metrics=["revenue"],
                guardrails={"latency_ms": 0.05} if guard else None,
                sequential=design,
                information=frac,
                previous=looks[-1:],
            )
        )
    return looks[-1], design


def _renderer(fig: object) -> object:
    """The figure drawn once (constrained layout places the axes at drawing time)."""
    canvas = FigureCanvasAgg(fig)  # type: ignore[arg-type]
    canvas.draw()
    return canvas.get_renderer()


# -- plots ------------------------------------------------------------------------------------


def test_plots_are_not_held_by_pyplot_under_the_inline_backend() -> None:
    code = textwrap.dedent(
        """
        import matplotlib.pyplot as plt
        import numpy as np, pandas as pd
        import trafficsplit as ts
        from trafficsplit import bandit
        rng = np.random.default_rng(1)
        arm = rng.choice(["control", "a"], 4000)
        df = pd.DataFrame({"arm": arm, "y": rng.normal(size=4000)})
        design = ts.stats.GroupSequential(2, alpha=0.025)
        first = ts.analyze(df[:2000], metrics=["y"], sequential=design, information=0.5)
        res = ts.analyze(df, metrics=["y"], sequential=design, information=1.0,
                         previous=[first])
        figures = [res.plot(), first.plot(), ts.analyze(df, metrics=["y"]).plot(),
                   bandit.plot_allocation(bandit.simulate(bandit.FixedSplit(["a", "b"]),
                                                          [0.1, 0.2], 2000, 500))]
        print(plt.get_backend(), plt.get_fignums(), [len(f.axes) for f in figures])
        """
    )
    env = dict(os.environ, MPLBACKEND="module://matplotlib_inline.backend_inline")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[0] == (
        "module://matplotlib_inline.backend_inline [] [2, 2, 1, 1]"
    )


def test_a_notebook_shows_a_returned_plot_once() -> None:
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = [
        "%matplotlib inline\nimport numpy as np, pandas as pd, trafficsplit as ts",
        "rng = np.random.default_rng(1)\n"
        "df = pd.DataFrame({'arm': rng.choice(['control', 'a'], 2000), "
        "'y': rng.normal(size=2000)})\n"
        "design = ts.stats.GroupSequential(2, alpha=0.025)\n"
        "res = ts.analyze(df, metrics=['y'], sequential=design, information=1.0)",
        "res.plot()",
        # the pyplot way this replaces: a figure pyplot holds shows twice
        "import matplotlib.pyplot as plt\nfig = plt.figure()\nfig.add_subplot().plot([1, 2])\nfig",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nbclient.NotebookClient(nb, timeout=120, kernel_name="python3").execute()

    def images(cell: object) -> int:
        return sum("image/png" in out.get("data", {}) for out in cell.outputs)  # type: ignore[attr-defined]

    assert [images(c) for c in nb.cells] == [0, 0, 1, 2]


@pytest.mark.parametrize("k", [1, 10])
def test_panels_read_well_at_one_comparison_and_at_ten(k: int) -> None:
    df = _units(k)
    res, design = _sequential(df, guard=False)
    fig = res.plot()
    forest, seq = fig.axes
    renderer = _renderer(fig)
    dpi = fig.dpi
    # the sequential panel keeps its height whatever the number of comparisons
    assert seq.get_window_extent(renderer).height / dpi > 2.5
    # every label of the forest plot has its own room
    labels = [t for t in forest.get_yticklabels() if t.get_text()]
    names = [f"revenue · {r.arm}" for r in res.results]
    assert sorted(names) == sorted(f"revenue · v{i}" for i in range(1, k + 1))
    top_down = sorted(labels, key=lambda t: -t.get_window_extent(renderer).y0)
    assert [t.get_text() for t in top_down] == names  # top to bottom as in the table
    boxes = sorted((t.get_window_extent(renderer) for t in labels), key=lambda b: b.y0)
    for lower, upper in itertools.pairwise(boxes):
        assert lower.y1 <= upper.y0
    row = forest.get_window_extent(renderer).height / k
    assert row > 1.5 * boxes[0].height  # a row is well over one line of text
    # the legend sits beside the data, clear of the boundaries and of the axes
    legend = seq.get_legend()
    box = legend.get_window_extent(renderer)
    assert [t.get_text() for t in legend.get_texts()] == ["efficacy boundary", *names]
    bounds = [
        line for line in seq.get_lines() if line.get_gid() in ("boundary-upper", "boundary-lower")
    ]
    assert len(bounds) == 2
    for line in bounds:
        assert not box.overlaps(line.get_window_extent(renderer))
    assert not box.overlaps(seq.get_window_extent(renderer))
    assert box.x1 <= fig.bbox.x1 + 1  # and inside the figure
    # the boundaries are the design's, the paths each look's Welch statistic (scipy)
    assert bounds[0].get_ydata() == pytest.approx(np.asarray(design.boundaries()))
    for i in range(1, k + 1):
        (path,) = [line for line in seq.get_lines() if line.get_label() == f"revenue · v{i}"]
        expected = []
        for frac in LOOKS:
            part = df.iloc[: round(frac * len(df))]
            c = part.loc[part.arm == "control", "revenue"]
            t = part.loc[part.arm == f"v{i}", "revenue"]
            expected.append(sps.ttest_ind(t, c, equal_var=False).statistic)
        assert path.get_xdata() == pytest.approx(LOOKS)
        assert path.get_ydata() == pytest.approx(expected, rel=1e-9)


def test_heights_grow_with_the_comparisons() -> None:
    small = ts.analyze(_units(1), metrics=["revenue"]).plot()
    large = ts.analyze(_units(10), metrics=["revenue"]).plot()
    h1, h10 = small.get_size_inches()[1], large.get_size_inches()[1]
    assert 1.5 < h1 < 2.5 and h10 > h1 + 9 * 0.3
    xs = np.sort(np.asarray(large.axes[0].collections[-1].get_offsets())[:, 0])
    res = ts.analyze(_units(10), metrics=["revenue"])
    assert xs == pytest.approx(sorted(r.relative.estimate * 100 for r in res.results))


def test_an_allocation_path_shows_the_shares_the_history_holds() -> None:
    exp = ts.Experiment("ranker", {"control": 50, "a": 25, "b": 25})
    steps = [{"control": 40, "a": 30, "b": 30}, {"control": 20, "a": 70, "b": 10}]
    for day, w in enumerate(steps, start=2):
        exp = exp.reallocate(w, effective=f"2026-01-0{day}T00:00:00Z")
    fig = bandit.plot_allocation(exp)
    (ax,) = fig.axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["control", "a", "b"]
    x, shares, arms, _ = bandit.plot.allocation_path(exp)
    assert arms == ("control", "a", "b")
    assert x.tolist() == [0, 1, 2]
    assert shares == pytest.approx(np.array([[0.5, 0.25, 0.25], [0.4, 0.3, 0.3], [0.2, 0.7, 0.1]]))
    # the stacked areas reach the cumulative shares: the top of "a" is control + a
    top = ax.collections[1].get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(0.9)
    renderer = _renderer(fig)
    assert not ax.get_legend().get_window_extent(renderer).overlaps(ax.get_window_extent(renderer))
    with pytest.raises(ts.errors.ArgumentError, match="SimulationResult or an Experiment"):
        bandit.plot_allocation({"a": 1})


# -- the page ---------------------------------------------------------------------------------


class _Dom(HTMLParser):
    """Sections with the tags, text and table cells each holds, and every URL the page names."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: dict[str, dict[str, list]] = {}
        self.order: list[str] = []
        self.current: str | None = None
        self.urls: list[str] = []
        self.tags: list[str] = []
        self.tables: dict[str, list[list[list[str]]]] = {}
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = dict(attrs)
        for key, value in attrs:
            if key in ("src", "href", "xlink:href", "action", "poster", "srcset") and value:
                self.urls.append(value)
            if key == "style" and value and "url(" in value:
                self.urls.append(value)
        if tag == "section":
            self.current = values.get("id") or ""
            self.order.append(self.current)
            self.sections[self.current] = {"tags": [], "text": []}
            self.tables[self.current] = []
        if self.current is None:
            return
        self.sections[self.current]["tags"].append(tag)
        if tag == "table":
            self.tables[self.current].append([])
        elif tag == "tr":
            self.tables[self.current][-1].append([])
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "section":
            self.current = None
        elif tag in ("td", "th") and self._cell is not None and self.current is not None:
            self.tables[self.current][-1][-1].append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)
        if self.current is not None:
            self.sections[self.current]["text"].append(data)


def _chromium() -> str:
    path = shutil.which("chromium")
    if path is None:
        pytest.skip("Debian's chromium is not installed (scripts/setup.sh installs it)")
    return path


def _browse(page: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Chromium headless on the file with every host name unresolvable and the console
    logged; returns the run and the http(s) addresses the page asked for (from the net log,
    the requests made for a ``file://`` page, not the browser's own)."""
    netlog = page.parent / f"{page.stem}-net.json"
    proc = subprocess.run(
        [
            _chromium(),
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            f"--log-net-log={netlog}",
            f"--user-data-dir={page.parent / 'chromium-profile'}",
            *extra,
            page.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    events = json.loads(netlog.read_text(encoding="utf-8"))["events"]
    fetched = {
        e["params"]["url"]
        for e in events
        if str(e.get("params", {}).get("network_isolation_key", "")).startswith("file://")
        and str(e["params"].get("url", "")).startswith(("http://", "https://"))
    }
    return proc, sorted(fetched)


def _console_errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]


def test_the_console_and_network_checks_see_errors_and_fetches(tmp_path: Path) -> None:
    # the checks the report passes below are able to fail: a script error and a fetch
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><body><img src='http://example.com/x.png'>"
        "<script>console.error('boom'); undefinedFunction();</script></body></html>",
        encoding="utf-8",
    )
    proc, fetched = _browse(page, "--dump-dom")
    errors = "\n".join(_console_errors(proc.stderr))
    assert "boom" in errors and "Uncaught" in errors
    assert fetched == ["http://example.com/x.png"]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[ts.Analysis, Path, object]:
    df = _units(2)
    res, _ = _sequential(df)
    policy = bandit.BernoulliThompson(["control", "v1", "v2"], floor=0.05, seed=7)
    sim = bandit.simulate(policy, [0.04, 0.05, 0.07], 20_000, 1_000, seed=7)
    path = tmp_path_factory.mktemp("report") / "analysis.html"
    text = res.to_html(path, title="Ranker v2 & friends", allocation=sim)
    assert path.read_text(encoding="utf-8") == text
    assert [p.name for p in path.parent.iterdir()] == ["analysis.html"]  # no temporary left
    return res, path, sim


def test_the_page_names_no_address_and_has_no_script(
    report: tuple[ts.Analysis, Path, object],
) -> None:
    _, path, _ = report
    text = path.read_text(encoding="utf-8")
    dom = _Dom()
    dom.feed(text)
    dom.close()
    assert dom.urls and all(u.startswith("#") for u in dom.urls)  # the SVG's own markers
    assert "script" not in dom.tags and "link" not in dom.tags and "iframe" not in dom.tags
    assert set(re.findall(r"url\((.)", text)) == {"#"} and "@import" not in text
    # http(s) appears only as the SVG namespace names, which nothing fetches
    assert set(re.findall(r"https?://[^\s\"'<>)]+", text)) <= {
        "http://www.w3.org/2000/svg",
        "http://www.w3.org/1999/xlink",
    }
    assert "<title>Ranker v2 &amp; friends</title>" in text


def test_the_report_in_headless_chromium(report: tuple[ts.Analysis, Path, object]) -> None:
    res, path, sim = report
    proc, fetched = _browse(path, "--dump-dom")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console_errors(proc.stderr) == []
    assert fetched == []
    dom = _Dom()
    dom.feed(proc.stdout)
    dom.close()
    assert dom.order == list(SECTIONS)
    figures = {s: dom.sections[s]["tags"].count("svg") for s in SECTIONS}
    assert figures == {
        "summary": 0,
        "srm": 0,
        "lifts": 0,
        "forest": 1,
        "sequential": 1,
        "guardrails": 0,
        "allocation": 1,
    }
    text = {s: " ".join(" ".join(dom.sections[s]["text"]).split()) for s in SECTIONS}
    assert "obrien-fleming, 4 looks" in text["summary"] and "look 3" in text["summary"]

    # the sample-ratio table: units per arm as pandas counts them
    (srm,) = dom.tables["srm"]
    counts = _units(2).iloc[: round(LOOKS[-1] * 24_000)].arm.value_counts()
    assert {row[0]: int(row[1].replace(",", "")) for row in srm[1:]} == counts.to_dict()
    assert f"p = {res.srm.pvalue:.3g}" in text["srm"]

    # the lifts table: one row per comparison, its lift and CI the Analysis's to the
    # printed precision, its decision the Analysis's
    (lifts,) = dom.tables["lifts"]
    head = lifts[0]
    rows = [dict(zip(head, row, strict=True)) for row in lifts[1:]]
    compared = [r for r in rows if r["decision"] != "control"]
    assert len(compared) == len(res.results)
    for row in compared:
        r = res.result(row["metric"], row["arm"])
        for column, value in (
            ("rel_lift", r.relative.estimate),
            ("rel_ci_low", r.relative.ci[0]),
            ("rel_ci_high", r.relative.ci[1]),
        ):
            shown = float(row[column].replace("%", "").replace("+", ""))
            assert shown == pytest.approx(value * 100, abs=0.0051), (row, column)
        assert row["decision"] == r.decision
    assert {r["decision"] for r in compared} >= {"increase", "pass"}

    # the forest plot has a line per comparison; the sequential section the looks' z
    for r in res.results:
        assert f"{r.metric} · {r.arm}" in text["forest"]
    (looks,) = dom.tables["sequential"]
    assert [float(row[1]) for row in looks[1:]] == pytest.approx(LOOKS)
    v1 = looks[0].index("revenue · v1")
    assert float(looks[-1][v1]) == pytest.approx(res.result("revenue", "v1").statistic, abs=5e-4)
    # the guardrails: each arm's decision; the allocation: the last epoch's shares
    (guards,) = dom.tables["guardrails"]
    assert {(row[0], row[1]): row[-1] for row in guards[1:]} == {
        ("latency_ms", a): res.result("latency_ms", a).decision for a in ("v1", "v2")
    }
    (alloc,) = dom.tables["allocation"]
    last = sim.weights[-1] / sim.weights[-1].sum()
    assert [float(c.rstrip(" %")) for c in alloc[2][2:]] == pytest.approx(last * 100, abs=0.051)


def test_a_screenshot_of_the_report(report: tuple[ts.Analysis, Path, object]) -> None:
    from PIL import Image

    _, path, _ = report
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = SCREENSHOTS / "analysis-report.png"
    shot.unlink(missing_ok=True)
    proc, fetched = _browse(path, f"--screenshot={shot}", "--window-size=1200,2000")
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert _console_errors(proc.stderr) == [] and fetched == []
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(shot) as image:
        assert image.size == (1200, 2000)
        pixels = np.asarray(image.convert("L"), dtype=float)
    assert pixels.std() > 20  # text and figures, not a blank page
    # the top of the page is the heading on white, the middle holds figures
    assert (pixels[:20] > 250).mean() > 0.99
    assert (pixels[600:1400] < 128).mean() > 0.01


def test_without_matplotlib_plots_name_the_extra_and_the_page_has_the_rest(
    tmp_path: Path,
) -> None:
    page = tmp_path / "r.html"
    code = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] == "matplotlib":
                    raise ImportError(f"blocked {{name}}", name=name)
        sys.meta_path.insert(0, Block())
        import numpy as np, pandas as pd, trafficsplit as ts
        rng = np.random.default_rng(1)
        df = pd.DataFrame({{"arm": rng.choice(["control", "a"], 1000),
                           "y": rng.normal(size=1000)}})
        res = ts.analyze(df, metrics=["y"])
        try:
            res.plot()
        except ImportError as exc:
            print(exc)
        res.to_html({str(page)!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "Analysis.plot needs matplotlib: pip install 'trafficsplit[plot]'\n"
    text = page.read_text(encoding="utf-8")
    assert "<svg" not in text and '<section id="lifts">' in text
    assert "No plot: the report&#x27;s plot needs matplotlib" in text


def test_to_html_writes_whole_or_not_at_all(tmp_path: Path) -> None:
    res = ts.analyze(_units(1, n=2000), metrics=["revenue"])
    text = res.to_html()
    assert text.startswith("<!DOCTYPE html>") and text.endswith("</html>\n")
    assert res._repr_html_() in text  # the table a notebook shows
    assert '<section id="sequential">' not in text and '<section id="allocation">' not in text
    with pytest.raises(FileNotFoundError):
        res.to_html(tmp_path / "missing" / "r.html")
    assert list(tmp_path.iterdir()) == []
    target = tmp_path / "r.html"
    target.write_text("old", encoding="utf-8")
    assert res.to_html(target) == target.read_text(encoding="utf-8") == text


def test_names_from_the_data_are_text_on_the_page() -> None:
    rng = np.random.default_rng(1)
    name = "<script>alert(1)</script>"
    df = pd.DataFrame({"arm": rng.choice(["control", name], 600), "y": rng.normal(size=600)})
    page = ts.analyze(df, metrics=["y"], guardrails={"y": 0.1}).to_html(title=name)
    assert "<script" not in page
    dom = _Dom()
    dom.feed(page)
    dom.close()
    shown = {s: " ".join(dom.sections[s]["text"]) for s in dom.order}
    for section in ("summary", "srm", "lifts", "forest", "guardrails"):
        assert name in shown[section], section  # read back as the text it was
