"""What the displays of trafficsplit's objects are made of: plain-text tables for ``repr`` and
HTML for notebooks (``_repr_html_``), bounded in size whatever the object.

Every text that reaches HTML goes through :func:`escape` (arm and experiment names are user
input); pieces already built here are :class:`Html` and pass as they are. The allocation bar
and the line chart are plain HTML/CSS and inline SVG: no script, no network, no optional
library (a model server may call ``repr``).
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Sequence
from typing import Any

__all__ = [
    "MAX_ROWS",
    "Html",
    "bar",
    "block",
    "escape",
    "fmt",
    "html_table",
    "legend",
    "line_chart",
    "more",
    "percent",
    "shorten",
    "text_table",
]

#: Rows a table shows before "... N more".
MAX_ROWS = 20
#: Characters a text cell shows before it is cut with an ellipsis.
MAX_CELL = 40

_PALETTE = (
    "#4c78a8",
    "#f58518",
    "#54a24b",
    "#e45756",
    "#72b7b2",
    "#b279a2",
    "#eeca3b",
    "#9d755d",
    "#ff9da6",
    "#bab0ac",
)
_BLANK = "#e8e8e8"
_STYLE_TABLE = "border-collapse:collapse;font-size:0.9em"
_STYLE_CELL = "padding:1px 8px;text-align:{align}"


class Html(str):
    """Markup built by this module: placed in HTML as it is, not escaped again."""

    __slots__ = ()


def shorten(text: Any, limit: int = MAX_CELL) -> str:
    """``str(text)``, cut to ``limit`` characters with an ellipsis."""
    s = str(text)
    return s if len(s) <= limit else s[: limit - 1] + "…"


def escape(value: Any, limit: int = MAX_CELL) -> Html:
    """``value`` as HTML text: :class:`Html` as it is, anything else shortened and escaped."""
    if isinstance(value, Html):
        return value
    return Html(html.escape(shorten(value, limit), quote=True))


def fmt(value: Any, digits: int = 4) -> str:
    """A number for a table: integers with thousands separators, floats with ``digits``
    significant digits, NaN and None as blank; anything else as ``str``."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        v = float(value)
        return "" if math.isnan(v) else f"{v:.{digits}g}"
    return str(value)


def percent(share: float, digits: int = 2) -> str:
    """A share (0..1) as percent text: ``0.5`` -> ``'50.00 %'``; NaN as blank."""
    if share is None or math.isnan(share):
        return ""
    return f"{share * 100:.{digits}f} %"


def more(total: int, shown: int, what: str = "more") -> str:
    """``'... N more'`` when rows were left out, else ``''``."""
    return f"... {total - shown:,} {what}" if total > shown else ""


def _numeric(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _right(value: Any) -> bool:
    """Numbers, and numbers already formatted (``'3.0107'``, ``'50.00 %'``), align right."""
    if _numeric(value):
        return True
    if isinstance(value, str) and value:
        text = value.removesuffix(" %").replace(",", "")
        try:
            float(text)
        except ValueError:
            return False
        return True
    return False


def _cell(value: Any) -> str:
    return shorten(fmt(value) if _numeric(value) else ("" if value is None else value))


def text_table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    total: int | None = None,
    limit: int = MAX_ROWS,
    indent: str = "  ",
) -> str:
    """A plain-text table: numbers right-aligned, text left-aligned and cut at
    :data:`MAX_CELL` characters; at most ``limit`` rows, then ``... N more`` (``total``: the
    number of rows when ``rows`` holds only the first ones)."""
    shown: list[list[str]] = []
    right = [False] * len(header)
    count = 0
    for row in rows:
        count += 1
        if len(shown) < limit:
            shown.append([_cell(v) for v in row])
            for i, v in enumerate(row):
                right[i] = right[i] or _right(v)
    total = count if total is None else total
    cells = [[shorten(h) for h in header], *shown]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = []
    for r in cells:
        parts = [
            c.rjust(w) if right[i] else c.ljust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        ]
        lines.append((indent + "  ".join(parts)).rstrip())
    tail = more(total, len(shown))
    if tail:
        lines.append(indent + tail)
    return "\n".join(lines)


def html_table(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    total: int | None = None,
    limit: int = MAX_ROWS,
    bold: Sequence[bool] | None = None,
) -> Html:
    """An HTML table of escaped cells (numbers right-aligned); at most ``limit`` rows, then
    a paragraph ``... N more`` after the table. ``bold[i]`` sets row i in bold."""
    head = "".join(
        f'<th style="{_STYLE_CELL.format(align="left")}">{escape(h)}</th>' for h in header
    )
    body: list[str] = []
    count = 0
    for row in rows:
        if len(body) < limit:
            cells = []
            for v in row:
                align = "right" if _right(v) else "left"
                text = v if isinstance(v, Html) else escape(_cell(v))
                cells.append(f'<td style="{_STYLE_CELL.format(align=align)}">{text}</td>')
            style = ' style="font-weight:bold"' if bold is not None and bold[count] else ""
            body.append(f"<tr{style}>{''.join(cells)}</tr>")
        count += 1
    total = count if total is None else total
    tail = more(total, len(body))
    return Html(
        f'<table style="{_STYLE_TABLE}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>" + (f"<p>{escape(tail)}</p>" if tail else "")
    )


def bar(
    parts: Sequence[tuple[str, float]],
    *,
    rest: str | None = None,
    limit: int = MAX_ROWS,
    width: str = "100%",
) -> Html:
    """A horizontal bar in plain HTML/CSS: one coloured segment per (label, share), in
    order, as wide as its share of the total; the share left to 1 (when ``rest`` names it)
    is a grey segment. Segments past ``limit`` are merged into one. Labels show on hover."""
    items = [(label, max(float(share), 0.0)) for label, share in parts]
    if len(items) > limit:
        merged = math.fsum(s for _, s in items[limit - 1 :])
        items = [*items[: limit - 1], (f"{len(items) - limit + 1} more arms", merged)]
    colours = [_PALETTE[i % len(_PALETTE)] for i in range(len(items))]
    if rest is not None:
        left = 1.0 - math.fsum(s for _, s in items)
        if left > 1e-12:
            items.append((rest, left))
            colours.append(_BLANK)
    total = math.fsum(s for _, s in items) or 1.0
    segments = []
    for (label, share), colour in zip(items, colours, strict=True):
        w = share / total * 100
        if w <= 0:
            continue
        title = escape(f"{shorten(label)}: {percent(share)}", MAX_CELL + 12)
        segments.append(
            f'<div title="{title}" style="width:{w:.4f}%;background:{colour};height:100%"></div>'
        )
    return Html(
        f'<div style="display:flex;width:{width};max-width:40em;height:1.2em;'
        f'border:1px solid #999;margin:4px 0">{"".join(segments)}</div>'
    )


def legend(labels: Sequence[str], *, limit: int = MAX_ROWS) -> Html:
    """The colours of :func:`bar`'s segments, labelled."""
    items = []
    for i, label in enumerate(labels[:limit]):
        colour = _PALETTE[i % len(_PALETTE)]
        items.append(
            f'<span style="margin-right:1em"><span style="display:inline-block;width:0.8em;'
            f'height:0.8em;background:{colour}"></span> {escape(label)}</span>'
        )
    tail = more(len(labels), min(len(labels), limit))
    return Html(
        '<div style="font-size:0.85em">'
        + "".join(items)
        + (escape(tail) if tail else "")
        + "</div>"
    )


def line_chart(
    x: Sequence[float],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    x_label: str = "",
    y_label: str = "",
    width: int = 360,
    height: int = 200,
) -> Html:
    """A small line chart as inline SVG: each series a polyline with dots over ``x``
    (non-finite points are left out); axes with their ranges at the ends; a legend below."""
    xs = [float(v) for v in x]
    ys = [float(v) for _, values in series for v in values if math.isfinite(float(v))]
    finite_x = [v for v in xs if math.isfinite(v)]
    if not finite_x or not ys:
        return Html("")
    x0, x1 = min(0.0, *finite_x), max(finite_x)

    def tick(v: float) -> str:
        return fmt(int(v)) if v == int(v) else fmt(v, 3)

    y0, y1 = min(0.0, *ys), max(ys)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1
    pad_l, pad_b, pad_t, pad_r = 40, 30, 10, 10
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def px(v: float) -> float:
        return pad_l + (v - x0) / (x1 - x0) * w

    def py(v: float) -> float:
        return pad_t + (1 - (v - y0) / (y1 - y0)) * h

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" style="font-size:10px;font-family:sans-serif">',
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#666"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + h}" stroke="#666"/>',
        f'<text x="{pad_l}" y="{height - 16}">{escape(tick(x0))}</text>',
        f'<text x="{pad_l + w}" y="{height - 16}" text-anchor="end">{escape(tick(x1))}</text>',
        f'<text x="{pad_l + w / 2}" y="{height - 3}" text-anchor="middle">{escape(x_label)}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + h}" text-anchor="end">{escape(tick(y0))}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{escape(tick(y1))}</text>',
        f'<text x="4" y="{pad_t + h / 2}">{escape(y_label)}</text>',
    ]
    if y0 < 0 < y1:
        parts.append(
            f'<line x1="{pad_l}" y1="{py(0):.1f}" x2="{pad_l + w}" y2="{py(0):.1f}" '
            'stroke="#bbb" stroke-dasharray="3,3"/>'
        )
    for i, (label, values) in enumerate(series[:MAX_ROWS]):
        colour = _PALETTE[i % len(_PALETTE)]
        points = [
            (px(a), py(float(b)))
            for a, b in zip(xs, values, strict=False)
            if math.isfinite(a) and math.isfinite(float(b))
        ]
        if not points:
            continue
        path = " ".join(f"{a:.1f},{b:.1f}" for a, b in points)
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{path}">'
            f"<title>{escape(label)}</title></polyline>"
        )
        parts.extend(
            f'<circle cx="{a:.1f}" cy="{b:.1f}" r="2.5" fill="{colour}"/>' for a, b in points
        )
    parts.append("</svg>")
    return Html("".join(parts) + legend([label for label, _ in series]))


def block(title: Html | str, *parts: Html | str) -> Html:
    """A display: a bold title line, then the parts (text parts escaped) in one ``div``."""
    body = "".join(p if isinstance(p, Html) else f"<p>{escape(p, 10_000)}</p>" for p in parts if p)
    return Html(f"<div><p><b>{escape(title, 200)}</b></p>{body}</div>")


def new_figure(what: str, width: float, height: float) -> Any:
    """A matplotlib Figure (constrained layout) for a plot to return: made by pyplot, which sets
    up how a notebook draws figures, and closed at once, so that pyplot forgets it and the
    returned figure is the only thing that shows it (once). An ImportError naming the ``plot``
    extra without matplotlib; ``what`` names the call in it."""
    from ._optional import require

    plt = require("matplotlib.pyplot", what=what)
    fig = plt.figure(figsize=(width, height), layout="constrained")
    plt.close(fig)
    return fig
