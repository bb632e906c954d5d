"""An analysis as one self-contained HTML page: inline CSS, figures as inline SVG, no script and
no address fetched, so the file reads the same from a mail attachment, a shared folder or an
air-gapped machine. :meth:`Analysis.to_html` and ``trafficsplit analyze --report`` write it.

Sections, each a ``<section>`` with a fixed id: ``summary`` (the experiment), ``srm`` (the
sample-ratio check), ``lifts`` (the table of lifts with CIs and decisions, as a notebook shows
it), ``forest`` (the forest plot), ``sequential`` (with a design: boundaries and z paths),
``guardrails`` (when any) and ``allocation`` (a bandit's allocation path, when given).
"""

from __future__ import annotations

import html
import importlib.metadata
import io
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._optional import require
from .._shared.files import write_atomically  # a report is replaced whole

__all__ = ["SECTIONS", "render", "svg", "write_atomically"]

#: The ids of the page's sections, in order (``sequential``, ``guardrails`` and
#: ``allocation`` only when the analysis has them).
SECTIONS = ("summary", "srm", "lifts", "forest", "sequential", "guardrails", "allocation")

_STYLE = (
    "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:75em;padding:0 1em;"
    "color:#222;line-height:1.4}h1{font-size:1.6em}h2{font-size:1.25em;margin-top:1.6em;"
    "border-bottom:1px solid #ddd;padding-bottom:.2em}table{border-collapse:collapse;"
    "margin:1em 0}th,td{padding:.3em .7em;border-bottom:1px solid #ddd;text-align:right}"
    "th:nth-child(-n+2),td:nth-child(-n+2){text-align:left}code{background:#f3f3f3;"
    "padding:0 .2em}figure{margin:1em 0}figure svg{max-width:100%;height:auto}"
    "figcaption,.note{color:#555;font-size:.9em}dl{display:grid;"
    "grid-template-columns:max-content auto;gap:.2em 1.5em}dt{color:#555}dd{margin:0}"
    ".warning{color:#b00;border:1px solid #b00;padding:.5em 1em;background:#fff5f5}"
    ".bad{color:#b00;font-weight:bold}.good{color:#070;font-weight:bold}"
)

_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)


def _e(value: Any) -> str:
    return html.escape(str(value))


def _pct(x: float | None, digits: int = 2) -> str:
    return "n/a" if x is None or not math.isfinite(x) else f"{x * 100:+.{digits}f} %"


def _p(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3g}"


def svg(figure: Any) -> str:
    """A matplotlib figure as an inline ``<svg>`` element: text kept as text (searchable, and
    small), no metadata, stable ids (the same figure gives the same bytes)."""
    mpl = require("matplotlib", what="the report's plot")
    buf = io.StringIO()
    with mpl.rc_context({"svg.fonttype": "none", "svg.hashsalt": "trafficsplit"}):
        figure.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return _METADATA.sub("", text[text.index("<svg") :]).strip()


def render(
    analysis: Any,
    *,
    title: str | None = None,
    allocation: Any = None,
    details: Sequence[str] = (),
    guardrail_notes: Mapping[str, str] | None = None,
) -> str:
    """The page of ``analysis``. ``title`` heads it (default "Experiment analysis");
    ``details`` are lines of plain text added to the summary (where the data came from);
    ``guardrail_notes`` a sentence per guardrail metric (its margin in words); ``allocation``
    a bandit's :class:`~trafficsplit.bandit.SimulationResult` or the
    :class:`~trafficsplit.Experiment` its steps were written into."""
    try:
        require("matplotlib", what="the report's plot")
        missing = None
    except ImportError as exc:
        missing = exc
    heading = title or "Experiment analysis"
    parts = [
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(heading)}</title>\n<style>{_STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{_e(heading)}</h1>\n"
    ]
    srm = analysis.srm
    if srm.mismatch:
        parts.append(
            '<p class="warning"><b>Sample-ratio mismatch</b>: the split of the units is '
            f"implausible under the expected weights (p = {srm.pvalue:.3g} &lt; {srm.alpha:g}): "
            "units were lost or assigned unevenly, and no comparison below is trustworthy.</p>\n"
        )
    parts.append(_summary(analysis, details))
    parts.append(_srm(analysis))
    parts.append(
        '<section id="lifts">\n<h2>Lifts</h2>\n'
        f"{analysis._repr_html_()}\n"
        '<p class="note">lift: arm / control - 1 with its '
        f"{(1 - analysis.alpha) * 100:g} % confidence interval (rel_ci_low, rel_ci_high); "
        "decisions at alpha "
        f"{analysis.alpha:g} on the adjusted p-values.</p>\n</section>\n"
    )
    from .plots import forest, sequential

    caption = (
        f"Relative lift of each arm against <code>{_e(analysis.control)}</code> with its "
        f"{(1 - analysis.alpha) * 100:g} % confidence interval; red: a guardrail harmed."
    )
    parts.append(_figure("forest", "Forest plot", missing, lambda: forest(analysis), caption))
    if analysis.sequential is not None:
        parts.append(_sequential(analysis, missing, sequential))
    guards = [r for r in analysis.results if r.kind == "guardrail"]
    if guards:
        parts.append(_guardrails(guards, guardrail_notes or {}))
    if allocation is not None:
        parts.append(_allocation(allocation, missing))
    parts.append(f'<p class="note">Written by trafficsplit{_version()}.</p>\n</body>\n</html>\n')
    return "".join(parts)


def _version() -> str:
    """The installed version after a space, or nothing when the package is not installed
    (read from its metadata: ``trafficsplit.__version__`` lives on a tier above this one)."""
    try:
        return f" {_e(importlib.metadata.version('trafficsplit'))}"
    except importlib.metadata.PackageNotFoundError:
        return ""


def _figure(
    section: str,
    heading: str,
    missing: ImportError | None,
    draw: Callable[[], Any],
    caption: str,
    after: str = "",
) -> str:
    if missing is not None:
        body = f'<p class="note">No plot: {_e(missing)}.</p>'
    else:
        body = f"<figure>{svg(draw())}<figcaption>{caption}</figcaption></figure>"
    return f'<section id="{section}">\n<h2>{heading}</h2>\n{body}\n{after}</section>\n'


def _summary(analysis: Any, details: Sequence[str]) -> str:
    units = sum(analysis.counts.values())
    per_arm = ", ".join(f"{_e(a)} {int(n):,}" for a, n in analysis.counts.items())
    compared = sum(1 for r in analysis.results if r.kind != "guardrail")
    metrics = list(dict.fromkeys(r.metric for r in analysis.results if r.kind != "guardrail"))
    rows = [
        ("control", f"<code>{_e(analysis.control)}</code>"),
        ("units", f"{units:,} ({per_arm})"),
        ("metrics", ", ".join(f"<code>{_e(m)}</code>" for m in metrics) or "none"),
        ("comparisons", f"{compared:,} (arms × metrics, guardrails apart)"),
        ("alpha", f"{analysis.alpha:g}"),
        ("correction", _e(analysis.correction)),
    ]
    design = analysis.sequential
    if design is not None:
        last = analysis.looks[-1].information if analysis.looks else math.nan
        rows.append(
            (
                "sequential design",
                f"{_e(design.spending)}, {design.looks} looks, alpha {design.alpha:g} per side, "
                f"{design.sides}-sided; this is look {len(analysis.looks)} at information "
                f"{last:.3g}",
            )
        )
    items = "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
    extra = "".join(f'<p class="note">{_e(line)}</p>' for line in details)
    return f'<section id="summary">\n<h2>Experiment</h2>\n<dl>{items}</dl>\n{extra}</section>\n'


def _srm(analysis: Any) -> str:
    srm = analysis.srm
    names = list(analysis.weights) if analysis.weights else list(analysis.counts)
    if len(names) != len(srm.observed):
        names = [f"arm {i + 1}" for i in range(len(srm.observed))]
    observed_total = sum(srm.observed) or 1.0
    expected_total = sum(srm.expected) or 1.0
    rows = "".join(
        f"<tr><td>{_e(name)}</td><td>{int(obs):,}</td><td>{obs / observed_total * 100:.2f} %"
        f"</td><td>{exp / expected_total * 100:.2f} %</td><td>{exp:,.1f}</td></tr>"
        for name, obs, exp in zip(names, srm.observed, srm.expected, strict=True)
    )
    if srm.mismatch:
        verdict = (
            f'<span class="bad">mismatch</span> (p &lt; {srm.alpha:g}): units were lost or '
            "assigned unevenly, so the comparisons are not trustworthy"
        )
    else:
        verdict = f'<span class="good">no mismatch</span> (one is flagged at p &lt; {srm.alpha:g})'
    return (
        '<section id="srm">\n<h2>Sample ratio</h2>\n<table><thead><tr><th>arm</th><th>units'
        "</th><th>share</th><th>expected share</th><th>expected units</th></tr></thead>"
        f"<tbody>{rows}</tbody></table>\n<p>Chi-square {srm.statistic:.4g}, df {srm.df}, "
        f"p = {srm.pvalue:.3g}: {verdict}.</p>\n</section>\n"
    )


def _sequential(analysis: Any, missing: ImportError | None, draw: Callable[[Any], Any]) -> str:
    design = analysis.sequential
    info = [lk.information for lk in analysis.looks]
    compared = [r for r in analysis.results if r.kind != "guardrail"]
    try:
        bounds = [float(b) for b in design.boundaries_at(info)]
    except (ValueError, TypeError):  # a classic design has bounds at its planned looks only
        bounds = [math.nan] * len(info)
    head = "".join(f"<th>{_e(r.metric)} · {_e(r.arm)}</th>" for r in compared)
    rows = "".join(
        f"<tr><td>{k + 1}</td><td>{t:.3g}</td><td>{_num(b)}</td>"
        + "".join(f"<td>{_num(lk.z.get((r.metric, r.arm), math.nan))}</td>" for r in compared)
        + "</tr>"
        for k, (lk, t, b) in enumerate(zip(analysis.looks, info, bounds, strict=True))
    )
    table = (
        "<table><thead><tr><th>look</th><th>information</th><th>boundary</th>"
        f"{head}</tr></thead><tbody>{rows}</tbody></table>\n"
        f"<p>Decisions: {_decisions(compared)}.</p>\n"
    )
    caption = (
        "The design's efficacy boundaries at its planned looks and each comparison's z "
        "statistic at the looks so far; a path that crosses a boundary decides."
    )
    return _figure(
        "sequential",
        "Sequential boundaries",
        missing,
        lambda: draw(analysis),
        caption,
        table,
    )


def _num(x: float) -> str:
    return "n/a" if not math.isfinite(x) else f"{x:.3f}"


def _decisions(results: Sequence[Any]) -> str:
    return "; ".join(f"{_e(r.metric)} · {_e(r.arm)}: <b>{_e(r.decision)}</b>" for r in results)


def _guardrails(guards: Sequence[Any], notes: Mapping[str, str]) -> str:
    rows = []
    for r in guards:
        rel = r.relative
        ci = f"[{_pct(rel.ci[0])}, {_pct(rel.ci[1])}]" if rel is not None else "n/a"
        test = r.guardrail.method if r.guardrail is not None else r.method
        css = {"harm": "bad", "pass": "good"}.get(r.decision, "")
        lift = _pct(rel.estimate) if rel is not None else "n/a"
        rows.append(
            f"<tr><td>{_e(r.metric)}</td><td>{_e(r.arm)}</td><td>{lift}"
            f"</td><td>{ci}</td><td>{_e(test)}</td><td>{_p(r.pvalue)}</td>"
            f'<td class="{css}">{_e(r.decision)}</td></tr>'
        )
    listed = "".join(f"<li><code>{_e(m)}</code>: {_e(text)}</li>" for m, text in notes.items())
    return (
        '<section id="guardrails">\n<h2>Guardrails</h2>\n<table><thead><tr><th>metric</th>'
        "<th>arm</th><th>lift</th><th>CI</th><th>test</th><th>p</th><th>decision</th></tr>"
        f"</thead><tbody>{''.join(rows)}</tbody></table>\n"
        + (f"<ul>{listed}</ul>\n" if listed else "")
        + '<p class="note">p is the non-inferiority p-value. pass: not worse by the margin; '
        "harm: significantly worse; inconclusive: neither.</p>\n</section>\n"
    )


def _allocation(source: Any, missing: ImportError | None) -> str:
    from ..bandit import SimulationResult
    from ..bandit.plot import allocation_path, plot_allocation

    x, shares, arms, x_label = allocation_path(source)
    head = "".join(f"<th>{_e(a)}</th>" for a in arms)
    last = "".join(f"<td>{s * 100:.1f} %</td>" for s in shares[-1])
    first = "".join(f"<td>{s * 100:.1f} %</td>" for s in shares[0])
    table = (
        f"<table><thead><tr><th></th><th>{_e(x_label)}</th>{head}</tr></thead><tbody>"
        f"<tr><td>first</td><td>{x[0]:,.0f}</td>{first}</tr>"
        f"<tr><td>last</td><td>{x[-1]:,.0f}</td>{last}</tr></tbody></table>\n"
    )
    steps = "epochs" if isinstance(source, SimulationResult) else "allocation steps"
    caption = f"Each arm's share of traffic over {len(x):,} {steps}."
    return _figure(
        "allocation",
        "Allocation path",
        missing,
        lambda: plot_allocation(source),
        caption,
        table,
    )
