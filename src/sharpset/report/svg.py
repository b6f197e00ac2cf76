"""Inline SVG charts for the report: line charts with interval bars, interval (forest) plots, paired
bar charts and stacked bars. Every string that reaches the SVG passes through :func:`esc`.

Hand-written rather than matplotlib's SVG backend, because: (1) the report must be one
self-contained file that a person reads in a browser, and these five chart kinds are ~250 lines of
plain SVG whose text inherits the page's typography through CSS (matplotlib's SVG draws glyphs as
paths or names fonts the reader may lack); (2) the output is deterministic byte for byte (matplotlib
writes a date and random clip-path ids unless configured), so a report of the same runs is the same
file; (3) no 40 MB plotting stack joins the dependencies for five chart kinds.
"""

from __future__ import annotations

import html
import math
from typing import Any, Iterable, Sequence

PALETTE = ("#2f6fdf", "#e07b39", "#2e9e6a", "#8e5cc9", "#c8463d", "#3aa6b8", "#b08b2e", "#d45a9b")
BASE = "#8a8f98"  # the starting model, always grey
SHIFT = {"unshifted": "#dbe5f3", "marginal": "#f5cf6b", "shifted": "#e4574a"}


def esc(x: Any) -> str:
    """HTML/XML-escape anything that came from data (quotes too: it may land in an attribute)."""
    return html.escape("" if x is None else str(x), quote=True)


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def nice_ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    """About ``n`` round tick values covering [lo, hi] (steps of 1, 2, 2.5 or 5 times a power of 10)."""
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return [0.0]
    if hi - lo < 1e-12:
        lo, hi = lo - 0.5, hi + 0.5
    raw = (hi - lo) / max(n, 1)
    mag = 10 ** math.floor(math.log10(raw))
    step = next(s * mag for s in (1, 2, 2.5, 5, 10) if s * mag >= raw * (1 - 1e-9))
    start, end = math.floor(lo / step + 1e-9) * step, math.ceil(hi / step - 1e-9) * step
    return [round(start + k * step, 10) for k in range(int(round((end - start) / step)) + 1)]


def fmt_num(v: float) -> str:
    if v == 0:
        return "0"
    if abs(v) >= 1000:
        return f"{v:,.0f}"
    if abs(v) >= 10:
        return f"{v:.0f}"
    return f"{v:.3g}"


class _Frame:
    """Plot area inside an SVG of width x height with margins; maps data to pixels."""

    def __init__(self, width: int, height: int, left: int, right: int, top: int, bottom: int):
        self.w, self.h = width, height
        self.x0, self.x1, self.y0, self.y1 = left, width - right, top, height - bottom
        self.parts: list[str] = []

    def add(self, s: str) -> None:
        self.parts.append(s)

    def svg(self, label: str) -> str:
        return (f'<svg class="chart" viewBox="0 0 {self.w} {self.h}" width="{self.w}" height="{self.h}" '
                f'role="img" aria-label="{esc(label)}">'
                + "".join(self.parts) + "</svg>")


def _scale(v: float, lo: float, hi: float, a: float, b: float) -> float:
    return a if hi == lo else a + (v - lo) * (b - a) / (hi - lo)


def _text(x: float, y: float, s: Any, *, anchor: str = "start", cls: str = "", size: int | None = None,
          weight: str | None = None, rotate: bool = False) -> str:
    extra = f' font-size="{size}"' if size else ""
    extra += f' font-weight="{weight}"' if weight else ""
    extra += f' transform="rotate(-90 {x:.1f} {y:.1f})"' if rotate else ""
    c = f' class="{cls}"' if cls else ""
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}"{c}{extra}>{esc(s)}</text>'


def _legend(f: _Frame, items: Sequence[tuple[str, str]], y: float) -> None:
    x = f.x0
    for name, col in items:
        f.add(f'<rect x="{x:.1f}" y="{y - 9:.1f}" width="10" height="10" rx="2" fill="{col}"/>')
        f.add(_text(x + 14, y, name, cls="lg"))
        x += 24 + 6.5 * len(str(name))


def line_chart(series: list[dict], *, x_label: str, y_label: str, title: str = "", log_x: bool = False,
               zero_line: bool = True, width: int = 560, height: int = 300) -> str:
    """Lines through points with optional 95% interval bars.

    ``series``: ``[{"name", "colour"?, "points": [(x, y, lo, hi) or (x, y)], "dots"?: [(x, y, lo, hi)]}]``;
    ``points`` are joined by a line, ``dots`` (e.g. single seeds) are drawn as hollow markers.
    """
    pts = [p for s in series for p in [*s.get("points", []), *s.get("dots", [])] if p[1] is not None]
    f = _Frame(width, height, 58, 16, 30 if title else 14, 62)
    if not pts:
        f.add(_text(width / 2, height / 2, "no data", anchor="middle", cls="muted"))
        return f.svg(title or y_label)
    tx = (lambda v: math.log2(v)) if log_x else (lambda v: v)  # noqa: E731
    xs = [tx(p[0]) for p in pts]
    ys = [v for p in pts for v in (p[1], *(p[2:4] if len(p) > 3 and p[2] is not None else ()))]
    if zero_line:
        ys.append(0.0)
    xlo, xhi = min(xs), max(xs)
    pad = (xhi - xlo) * 0.06 or 0.5
    xlo, xhi = xlo - pad, xhi + pad
    yt = nice_ticks(min(ys), max(ys))
    ylo, yhi = yt[0], yt[-1]
    X = lambda v: _scale(tx(v), xlo, xhi, f.x0, f.x1)  # noqa: E731
    Y = lambda v: _scale(v, ylo, yhi, f.y1, f.y0)  # noqa: E731
    if title:
        f.add(_text(f.x0, 16, title, cls="ct"))
    for t in yt:
        f.add(f'<line x1="{f.x0}" x2="{f.x1}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" class="grid"/>')
        f.add(_text(f.x0 - 6, Y(t) + 4, fmt_num(t), anchor="end", cls="tick"))
    if zero_line and ylo < 0 < yhi:
        f.add(f'<line x1="{f.x0}" x2="{f.x1}" y1="{Y(0):.1f}" y2="{Y(0):.1f}" class="zero"/>')
    xs_raw = {p[0] for p in pts}
    xticks = sorted(xs_raw) if len(xs_raw) <= 10 else nice_ticks(min(xs), max(xs))
    if all(float(x).is_integer() for x in xs_raw):  # steps, sizes: no fractional ticks
        xticks = [t for t in xticks if float(t).is_integer()]
    for t in xticks:
        f.add(_text(X(t), f.y1 + 16, fmt_num(t), anchor="middle", cls="tick"))
    f.add(f'<line x1="{f.x0}" x2="{f.x1}" y1="{f.y1}" y2="{f.y1}" class="axis"/>')
    f.add(_text((f.x0 + f.x1) / 2, f.y1 + 34, x_label, anchor="middle", cls="al"))
    f.add(_text(14, (f.y0 + f.y1) / 2, y_label, anchor="middle", cls="al", rotate=True))
    for i, s in enumerate(series):
        col = s.get("colour") or colour(i)
        line = [p for p in s.get("points", []) if p[1] is not None]
        for p in [*line, *s.get("dots", [])]:
            if len(p) > 3 and p[2] is not None and p[3] is not None:
                f.add(f'<line x1="{X(p[0]):.1f}" x2="{X(p[0]):.1f}" y1="{Y(p[2]):.1f}" y2="{Y(p[3]):.1f}" '
                      f'stroke="{col}" stroke-width="1.5" opacity="0.55"/>')
        if len(line) > 1:
            d = " ".join(f"{'M' if k == 0 else 'L'}{X(p[0]):.1f},{Y(p[1]):.1f}" for k, p in enumerate(line))
            f.add(f'<path d="{d}" fill="none" stroke="{col}" stroke-width="2"/>')
        if len(line) <= 60:
            for p in line:
                tip = f"{s['name']}: x={fmt_num(p[0])} y={p[1]:.4g}" + (
                    f" [{p[2]:.4g}, {p[3]:.4g}]" if len(p) > 3 and p[2] is not None else "")
                f.add(f'<circle cx="{X(p[0]):.1f}" cy="{Y(p[1]):.1f}" r="3.5" fill="{col}"><title>{esc(tip)}</title></circle>')
        for p in s.get("dots", []):
            if p[1] is not None:
                f.add(f'<circle cx="{X(p[0]):.1f}" cy="{Y(p[1]):.1f}" r="3" fill="white" stroke="{col}" stroke-width="1.5"/>')
    if len(series) > 1 or series[0].get("name"):
        _legend(f, [(s["name"], s.get("colour") or colour(i)) for i, s in enumerate(series)], height - 8)
    return f.svg(title or y_label)


def interval_plot(groups: list[tuple[str, list[dict]]], *, x_label: str, series: Sequence[tuple[str, str]],
                  title: str = "", lo: float | None = None, hi: float | None = None, width: int = 640) -> str:
    """A forest plot: one row per label, one dot with its 95% interval per series.

    ``groups``: ``[(group heading, [{"label", "values": {series name: (mean, lo, hi) or None}}])]``;
    ``series``: ``[(name, colour)]`` in drawing order (offset vertically within a row).
    """
    rows = sum(len(r) for _, r in groups)
    row_h = 14 + 9 * len(series)
    height = (30 if title else 12) + rows * row_h + 26 * len(groups) + 58
    f = _Frame(width, height, 190, 24, 30 if title else 12, 58)
    vals = [v for _, rs in groups for r in rs for t in r["values"].values() if t for v in t if v is not None]
    vlo = lo if lo is not None else min(vals, default=0.0)
    vhi = hi if hi is not None else max(vals, default=1.0)
    ticks = nice_ticks(vlo, vhi)
    X = lambda v: _scale(v, ticks[0], ticks[-1], f.x0, f.x1)  # noqa: E731
    if title:
        f.add(_text(12, 16, title, cls="ct"))
    for t in ticks:
        f.add(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{f.y0}" y2="{f.y1}" class="grid"/>')
        f.add(_text(X(t), f.y1 + 16, fmt_num(t), anchor="middle", cls="tick"))
    y = f.y0
    for heading, rs in groups:
        y += 20
        f.add(_text(12, y - 4, heading, cls="gh"))
        for r in rs:
            f.add(_text(f.x0 - 10, y + row_h / 2 + 3, r["label"], anchor="end", cls="rl"))
            for k, (name, col) in enumerate(series):
                t = r["values"].get(name)
                yy = y + 9 + k * 9
                if not t or t[0] is None:
                    f.add(_text(f.x0 + 4, yy + 3, f"{name}: null (no items)", cls="na", size=10))
                    continue
                m, a, b = t
                if a is not None and b is not None:
                    f.add(f'<line x1="{X(a):.1f}" x2="{X(b):.1f}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="{col}" stroke-width="2" opacity="0.6"/>')
                tip = f"{r['label']} ({name}): {m:.3f}" + (f" [{a:.3f}, {b:.3f}]" if a is not None else "")
                f.add(f'<circle cx="{X(m):.1f}" cy="{yy:.1f}" r="4" fill="{col}"><title>{esc(tip)}</title></circle>')
            y += row_h
        y += 6
    f.add(_text((f.x0 + f.x1) / 2, f.y1 + 34, x_label, anchor="middle", cls="al"))
    _legend(f, list(series), height - 8)
    return f.svg(title or x_label)


def paired_bars(categories: list[str], series: list[tuple[str, str, list[float]]], *, x_label: str,
                title: str = "", width: int = 460, as_share: bool = True) -> str:
    """Horizontal bars: per category, one bar per series (``(name, colour, values)``)."""
    n = len(series)
    bar = 11
    row_h = n * bar + 8
    height = (30 if title else 12) + len(categories) * row_h + 58
    f = _Frame(width, height, 150, 40, 30 if title else 12, 58)
    vmax = 1.0 if as_share else max([v for _, _, vs in series for v in vs] + [1e-9])
    ticks = nice_ticks(0, vmax, 4)
    X = lambda v: _scale(v, 0, ticks[-1], f.x0, f.x1)  # noqa: E731
    if title:
        f.add(_text(12, 16, title, cls="ct"))
    for t in ticks:
        f.add(f'<line x1="{X(t):.1f}" x2="{X(t):.1f}" y1="{f.y0}" y2="{f.y1}" class="grid"/>')
        lab = f"{t:.0%}" if as_share else fmt_num(t)
        f.add(_text(X(t), f.y1 + 16, lab, anchor="middle", cls="tick"))
    y = f.y0
    for ci, cat in enumerate(categories):
        f.add(_text(f.x0 - 8, y + row_h / 2 + 3, cat, anchor="end", cls="rl"))
        for k, (name, col, vs) in enumerate(series):
            v = vs[ci]
            w = X(v) - f.x0
            lab = f"{v:.0%}" if as_share else fmt_num(v)
            f.add(f'<rect x="{f.x0}" y="{y + 4 + k * bar:.1f}" width="{max(w, 0.5):.1f}" height="{bar - 2}" '
                  f'rx="2" fill="{col}"><title>{esc(f"{cat} ({name}): {lab}")}</title></rect>')
            f.add(_text(f.x0 + w + 4, y + 4 + k * bar + bar - 3, lab, cls="bv", size=10))
        y += row_h
    f.add(_text((f.x0 + f.x1) / 2, f.y1 + 34, x_label, anchor="middle", cls="al"))
    _legend(f, [(s[0], s[1]) for s in series], height - 8)
    return f.svg(title or x_label)


def stacked_columns(labels: list[str], parts: list[tuple[str, str, list[float]]], *, x_label: str,
                    y_label: str, title: str = "", width: int = 460, height: int = 260,
                    counts: Iterable[int] | None = None) -> str:
    """Vertical 100%-scale stacked columns (shares summing to at most 1 per column)."""
    f = _Frame(width, height, 50, 12, 30 if title else 12, 62)
    if title:
        f.add(_text(12, 16, title, cls="ct"))
    Y = lambda v: _scale(v, 0, 1, f.y1, f.y0)  # noqa: E731
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        f.add(f'<line x1="{f.x0}" x2="{f.x1}" y1="{Y(t):.1f}" y2="{Y(t):.1f}" class="grid"/>')
        f.add(_text(f.x0 - 6, Y(t) + 4, f"{t:.0%}", anchor="end", cls="tick"))
    n = max(len(labels), 1)
    slot = (f.x1 - f.x0) / n
    cnt = list(counts) if counts is not None else [None] * n
    for i, lab in enumerate(labels):
        x = f.x0 + i * slot + slot * 0.15
        acc = 0.0
        for name, col, vs in parts:
            v = vs[i]
            f.add(f'<rect x="{x:.1f}" y="{Y(acc + v):.1f}" width="{slot * 0.7:.1f}" height="{Y(acc) - Y(acc + v):.1f}" '
                  f'fill="{col}"><title>{esc(f"{lab}: {name} {v:.1%}")}</title></rect>')
            acc += v
        f.add(_text(x + slot * 0.35, f.y1 + 14, lab, anchor="middle", cls="tick", size=10))
        if cnt[i] is not None:
            f.add(_text(x + slot * 0.35, f.y1 + 26, f"n={cnt[i]}", anchor="middle", cls="muted", size=9))
    f.add(_text((f.x0 + f.x1) / 2, f.y1 + 42, x_label, anchor="middle", cls="al"))
    f.add(_text(12, (f.y0 + f.y1) / 2, y_label, anchor="middle", cls="al", rotate=True))
    _legend(f, [(p[0], p[1]) for p in parts], height - 6)
    return f.svg(title or y_label)


VERDICT_COLOUR = {"better": "#1e7f4f", "worse": "#b42318", "up": "#1d4ed8", "down": "#1d4ed8", "null": "#667085"}


def mini_interval(diff: float | None, lo: float | None, hi: float | None, verdict: str, width: int = 130) -> str:
    """A one-row forest glyph: the paired difference and its 95% interval against a zero line,
    scaled to the row (it shows sign and whether the interval crosses 0, not size across rows)."""
    if diff is None or lo is None or hi is None:
        return ""
    span = max(abs(lo), abs(hi), abs(diff), 1e-12) * 1.1
    X = lambda v: _scale(v, -span, span, 4, width - 4)  # noqa: E731
    col = VERDICT_COLOUR.get(verdict, "#667085")
    return (f'<svg class="mini" viewBox="0 0 {width} 14" width="{width}" height="14" role="img" '
            f'aria-label="{esc(f"diff {diff:+.3f} [{lo:.3f}, {hi:.3f}]")}">'
            f'<line x1="{X(0):.1f}" x2="{X(0):.1f}" y1="1" y2="13" stroke="#98a2b3" stroke-dasharray="2 2"/>'
            f'<line x1="{X(lo):.1f}" x2="{X(hi):.1f}" y1="7" y2="7" stroke="{col}" stroke-width="3" stroke-linecap="round" opacity="0.45"/>'
            f'<circle cx="{X(diff):.1f}" cy="7" r="4" fill="{col}"/></svg>')
