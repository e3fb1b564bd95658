"""Inline SVG plots of a report: curves, the reliability diagram and the subgroup forest plot.

Drawn in Python (no plotting library, no network); every label is XML-escaped;
each mark carries a ``<title>`` so hovering shows its numbers. Colours are set
by the page's stylesheet (classes), so print can restyle them.
"""

from __future__ import annotations

import html
import math

from fracbench.report.analysis import Curve, ForestRow, ReliabilityBin

W, H, L, B, T, R = 400, 320, 52, 44, 12, 14
MAX_POINTS = 400


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _frame(title: str, width: int = W, height: int = H) -> list[str]:
    return [f'<svg class="plot" viewBox="0 0 {width} {height}" width="{width}" height="{height}" role="img" '
            f'aria-label="{_e(title)}" xmlns="http://www.w3.org/2000/svg"><title>{_e(title)}</title>']


def _axes(out: list[str], xmax: float, ymax: float, xlabel: str, ylabel: str) -> tuple:
    pw, ph = W - L - R, H - T - B

    def sx(x: float) -> float:
        return L + pw * x / xmax

    def sy(y: float) -> float:
        return T + ph * (1 - y / ymax)

    out.append(f'<rect x="{L}" y="{T}" width="{pw}" height="{ph}" class="frame"/>')
    from fracbench.leaderboard.plots import (
        nice_ticks,  # the board's round ticks, one definition
    )

    for fx in nice_ticks(xmax):
        out.append(f'<line x1="{sx(fx):.1f}" y1="{T}" x2="{sx(fx):.1f}" y2="{T + ph}" class="grid"/>'
                   f'<text x="{sx(fx):.1f}" y="{T + ph + 16}" class="tick" text-anchor="middle">{fx:.3g}</text>')
    for fy in nice_ticks(ymax):
        out.append(f'<line x1="{L}" y1="{sy(fy):.1f}" x2="{L + pw}" y2="{sy(fy):.1f}" class="grid"/>'
                   f'<text x="{L - 6}" y="{sy(fy) + 4:.1f}" class="tick" text-anchor="end">{fy:.3g}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 6}" class="axis" text-anchor="middle">{_e(xlabel)}</text>'
               f'<text transform="translate(14 {T + ph / 2}) rotate(-90)" class="axis" text-anchor="middle">{_e(ylabel)}</text>')
    return sx, sy


def line_plot(curve: Curve) -> str | None:
    """One curve as an SVG line plot (None without drawable points)."""
    pts = [(x, y) for x, y in curve.points if math.isfinite(x) and math.isfinite(y) and x >= 0 and y >= 0]
    if not pts:
        return None
    if len(pts) > MAX_POINTS:
        step = (len(pts) - 1) / (MAX_POINTS - 1)
        pts = [pts[round(i * step)] for i in range(MAX_POINTS)]
    xmax = max(1.0 if curve.diagonal else 0.0, max(x for x, _ in pts)) or 1.0
    ymax = max(1.0, max(y for _, y in pts))
    out = _frame(curve.title)
    sx, sy = _axes(out, xmax, ymax, curve.x_label, curve.y_label)
    if curve.diagonal:
        out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" class="chance"/>')
    d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
    out.append(f'<polyline points="{d}" class="series"><title>{_e(curve.title)}</title></polyline></svg>')
    return "".join(out)


def reliability_plot(bins: list[ReliabilityBin]) -> str | None:
    """Fracture rate (Wilson 95 % interval) against mean score per bin; dot area follows the bin's images."""
    if not bins:
        return None
    out = _frame("Reliability diagram")
    sx, sy = _axes(out, 1.0, 1.0, "Mean predicted probability (bin)", "Observed fracture rate")
    out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" class="chance"/>')
    biggest = max(b.n for b in bins)
    for b in bins:
        r = 2.5 + 5.5 * math.sqrt(b.n / biggest)
        tip = (f"scores {b.low:.2f}–{b.high:.2f}: {b.n} images, mean score {b.mean_score:.3f}, "
               f"fracture rate {b.rate:.3f} [{b.rate_ci[0]:.3f}, {b.rate_ci[1]:.3f}]")
        out.append(f'<g><title>{_e(tip)}</title>'
                   f'<line x1="{sx(b.mean_score):.1f}" y1="{sy(b.rate_ci[0]):.1f}" x2="{sx(b.mean_score):.1f}" '
                   f'y2="{sy(b.rate_ci[1]):.1f}" class="whisker"/>'
                   f'<circle cx="{sx(b.mean_score):.1f}" cy="{sy(b.rate):.1f}" r="{r:.1f}" class="dot"/></g>')
    out.append("</svg>")
    return "".join(out)


def forest_plot(rows: list[ForestRow], metric: str, overall: float | None) -> str | None:
    """Each subgroup's main score as a dot with its 95 % CI, grouped by attribute; the overall value dashed."""
    drawn = [r for r in rows if r.value is not None]
    if not drawn:
        return None
    label_w, row_h, width = 250, 20, 640
    lo = min([r.ci95[0] if r.ci95 else r.value for r in drawn] + ([overall] if overall is not None else []))
    hi = max([r.ci95[1] if r.ci95 else r.value for r in drawn] + ([overall] if overall is not None else []))
    lo, hi = max(0.0, lo - 0.05), min(1.0, hi + 0.05) if hi <= 1 else hi + 0.05
    if hi <= lo:
        hi = lo + 0.1
    height = T + row_h * (len(rows) + len({r.attribute for r in rows})) + 40
    out = _frame(f"{metric} by subgroup", width, height)
    plot_w = width - label_w - R

    def sx(v: float) -> float:
        return label_w + plot_w * (v - lo) / (hi - lo)

    y = T
    last = None
    for r in rows:
        if r.attribute != last:
            y += row_h
            out.append(f'<text x="4" y="{y - 5}" class="group">{_e(r.attribute)}</text>')
            last = r.attribute
        y += row_h
        label = f"{r.value_name} ({r.n_images} img, {r.n_fractured} fx)"
        out.append(f'<text x="14" y="{y - 5}" class="label">{_e(label)}</text>')
        if r.value is None:
            out.append(f'<text x="{label_w + 4}" y="{y - 5}" class="tick">undefined</text>')
            continue
        ci = f" [{r.ci95[0]:.3f}, {r.ci95[1]:.3f}]" if r.ci95 else ""
        tip = f"{r.attribute} = {r.value_name}: {metric} {r.value:.3f}{ci} ({r.n_images} images, {r.n_fractured} fractured)"
        whisker = (f'<line x1="{sx(r.ci95[0]):.1f}" y1="{y - 9}" x2="{sx(r.ci95[1]):.1f}" y2="{y - 9}" class="whisker"/>'
                   if r.ci95 else "")
        out.append(f'<g><title>{_e(tip)}</title>{whisker}<rect x="{sx(r.value) - 4:.1f}" y="{y - 13}" width="8" height="8" class="dot"/></g>')
    axis_y = y + 6
    out.append(f'<line x1="{label_w}" y1="{axis_y}" x2="{width - R}" y2="{axis_y}" class="frame"/>')
    from fracbench.leaderboard.plots import nice_ticks

    span_ticks = nice_ticks(hi - lo)
    step = span_ticks[1] if len(span_ticks) > 1 else hi - lo
    v = math.ceil(lo / step - 1e-9) * step  # round ticks inside [lo, hi], at the board's round step
    while v <= hi + 1e-9:
        out.append(f'<text x="{sx(v):.1f}" y="{axis_y + 14}" class="tick" text-anchor="middle">{v:.3g}</text>')
        v += step
    if overall is not None:
        out.append(f'<line x1="{sx(overall):.1f}" y1="{T}" x2="{sx(overall):.1f}" y2="{axis_y}" class="chance">'
                   f'<title>{_e(f"all images: {overall:.3f}")}</title></line>')
    out.append("</svg>")
    return "".join(out)
