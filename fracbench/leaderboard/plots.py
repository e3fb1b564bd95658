"""Inline SVG for the HTML board: curve plots (ROC, FROC) and CI bars.

Drawn in Python from the curves each entry's Result stores, so the page needs
no plotting library and no network. All text is XML-escaped.
"""

from __future__ import annotations

import html
import math

from fracbench.leaderboard.ranking import RankedEntry
from fracbench.leaderboard.view import display_text

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")

CURVE_AXES = {
    "roc": ("fpr", "tpr", "False positive rate", "True positive rate (sensitivity)"),
    "froc": ("fp_per_image", "sensitivity", "False positives per image", "Lesion sensitivity"),
    "pr": ("recall", "precision", "Recall", "Precision"),
}
"""curve kind -> (x key, y key, x label, y label); ``pr_*`` kinds (``pr_iou50``) use ``pr``."""

CURVE_TITLES = {"roc": "ROC", "froc": "FROC", "pr": "Precision-recall", "pr_iou50": "Precision-recall (IoU 0.5)"}


def curve_title(kind: str) -> str:
    """Caption of a curve kind: ``FROC``, ``Precision-recall (IoU 0.5)``; unknown kinds upper-cased."""
    return CURVE_TITLES.get(kind, kind.upper())

def curve_x_max(kind: str) -> float | None:
    """Where a curve kind's x axis ends, when its metrics fix it (None: the data decide).

    FROC: the last FP/image rate the FROC metrics read (``froc_sensitivity_at_8``,
    :data:`fracbench.metrics.detection.FROC_FP_RATES`), so the plot shows exactly the
    range the board's numbers summarise, whatever range a submission's curve reaches.
    """
    if kind == "froc":
        # imported here: the metrics pull numpy, scipy and pycocotools
        from fracbench.metrics.detection import FROC_FP_RATES

        return FROC_FP_RATES[-1]
    return None


def clip_curve(pts: list[tuple[float, float]], x_max: float) -> list[tuple[float, float]]:
    """The part of a curve with x <= ``x_max``, held level to ``x_max`` when it runs beyond.

    A FROC point is an operating threshold; the sensitivity reachable at ``x_max`` FPs per
    image is that of the last point within it (the metrics' own rule), so the line is
    continued flat to the axis end rather than interpolated towards a point it cannot reach.
    """
    kept = [(x, y) for x, y in pts if x <= x_max]
    if kept and len(kept) < len(pts) and kept[-1][0] < x_max:
        kept.append((x_max, kept[-1][1]))
    return kept


def nice_ticks(top: float, target: int = 5) -> list[float]:
    """About ``target`` evenly spaced round ticks from 0 up to ``top`` (1, 2, 2.5 or 5 times a power of ten)."""
    if top <= 0:
        return [0.0]
    raw = top / target
    mag = 10 ** math.floor(math.log10(raw))
    step = next(m * mag for m in (1, 2, 2.5, 5, 10) if m * mag >= raw * (1 - 1e-9))
    return [round(k * step, 10) for k in range(int(top / step + 1e-9) + 1)]


MAX_POINTS = 400
"""Curves longer than this are thinned (evenly spaced points, ends kept) for drawing."""

W, H, PAD_L, PAD_B, PAD_T, PAD_R = 420, 340, 52, 44, 12, 12


def _esc(text: str) -> str:
    return html.escape(str(text), quote=True)


def _thin(xs: list[float], ys: list[float], x_max: float | None = None) -> list[tuple[float, float]]:
    # negative values mark undefined points (COCO's precision -1 beyond the reached recall)
    pts = [(x, y) for x, y in zip(xs, ys, strict=False) if math.isfinite(x) and math.isfinite(y) and x >= 0 and y >= 0]
    if x_max is not None:
        pts = clip_curve(pts, x_max)
    if len(pts) <= MAX_POINTS:
        return pts
    step = (len(pts) - 1) / (MAX_POINTS - 1)
    return [pts[round(i * step)] for i in range(MAX_POINTS)]


def curve_axes(kind: str, sample: dict[str, list[float]]) -> tuple[str, str, str, str] | None:
    """Axis keys and labels for a curve kind; an unknown kind with exactly two series uses them."""
    if kind in CURVE_AXES:
        return CURVE_AXES[kind]
    if kind.startswith("pr_"):
        return CURVE_AXES["pr"]
    keys = list(sample)
    if len(keys) == 2:
        return keys[0], keys[1], keys[0], keys[1]
    return None


def curve_plot(kind: str, ranked: list[RankedEntry], *, title: str) -> str | None:
    """An ``<svg>`` with one line per entry that stores curve ``kind``.

    Args:
        kind: e.g. ``roc`` or ``froc``.
        ranked: a task's ranked entries (colour follows board order).
        title: accessible title of the figure.

    Returns:
        str | None: SVG markup, or None when no entry stores a drawable curve of this kind.
    """
    x_cap = curve_x_max(kind)
    series = []
    for i, r in enumerate(ranked):
        curve = r.entry.result.curves.get(kind)
        axes = curve_axes(kind, curve) if curve else None
        if not axes or axes[0] not in curve or axes[1] not in curve:
            continue
        pts = _thin(curve[axes[0]], curve[axes[1]], x_cap)
        if pts:
            series.append((PALETTE[i % len(PALETTE)], display_text(r.entry.model.name), r.entry.slug, pts))
    if not series:
        return None
    xkey, ykey, xlabel, ylabel = curve_axes(kind, ranked[0].entry.result.curves.get(kind) or {}) or CURVE_AXES["roc"]
    xmax = x_cap or max(1.0 if kind == "roc" else 0.0, max(x for *_, pts in series for x, _ in pts)) or 1.0
    ymax = max(1.0, max(y for *_, pts in series for _, y in pts))
    pw, ph = W - PAD_L - PAD_R, H - PAD_T - PAD_B

    def sx(x: float) -> float:
        return PAD_L + pw * x / xmax

    def sy(y: float) -> float:
        return PAD_T + ph * (1 - y / ymax)

    out = [
        f'<svg class="plot" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" data-x-max="{xmax:g}" '
        f'aria-label="{_esc(title)}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(title)}</title>",
        f'<rect x="{PAD_L}" y="{PAD_T}" width="{pw}" height="{ph}" class="frame"/>',
    ]
    for fx in nice_ticks(xmax):
        out.append(f'<line x1="{sx(fx):.1f}" y1="{PAD_T}" x2="{sx(fx):.1f}" y2="{PAD_T + ph}" class="grid"/>')
        out.append(f'<text x="{sx(fx):.1f}" y="{PAD_T + ph + 16}" class="tick" text-anchor="middle">{fx:.3g}</text>')
    for fy in nice_ticks(ymax):
        out.append(f'<line x1="{PAD_L}" y1="{sy(fy):.1f}" x2="{PAD_L + pw}" y2="{sy(fy):.1f}" class="grid"/>')
        out.append(f'<text x="{PAD_L - 6}" y="{sy(fy) + 4:.1f}" class="tick" text-anchor="end">{fy:.3g}</text>')
    if kind == "roc":
        out.append(f'<line x1="{sx(0)}" y1="{sy(0)}" x2="{sx(1)}" y2="{sy(1)}" class="chance"/>')
    out.append(f'<text x="{PAD_L + pw / 2}" y="{H - 6}" class="axis" text-anchor="middle">{_esc(xlabel)}</text>')
    out.append(
        f'<text transform="translate(14 {PAD_T + ph / 2}) rotate(-90)" class="axis" text-anchor="middle">{_esc(ylabel)}</text>'
    )
    for colour, name, slug, pts in series:
        d = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        out.append(
            f'<polyline points="{d}" fill="none" stroke="{colour}" stroke-width="2" '
            f'data-slug="{_esc(slug)}"><title>{_esc(name)}</title></polyline>'
        )
    out.append("</svg>")
    legend = "".join(
        f'<li><span class="swatch" style="background:{colour}"></span><bdi>{_esc(name)}</bdi></li>' for colour, name, _, _ in series
    )
    return "\n".join(out) + f'\n<ul class="legend">{legend}</ul>'


def ci_bar(value: float | None, ci: tuple[float, float] | None, lo: float, hi: float) -> str:
    """A small inline SVG: the CI as a bar and the score as a dot on the scale ``[lo, hi]``."""
    if value is None:
        return ""
    w, h, pad = 100, 14, 4
    span = (hi - lo) or 1.0

    def px(v: float) -> float:
        return pad + (w - 2 * pad) * (min(max(v, lo), hi) - lo) / span

    bar = ""
    if ci is not None:
        bar = f'<line x1="{px(ci[0]):.1f}" y1="7" x2="{px(ci[1]):.1f}" y2="7" class="ci"/>'
    label = f"{value:.3f}" + (f" [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else "")
    return (
        f'<svg class="cibar" viewBox="0 0 {w} {h}" width="{w}" height="{h}" role="img" aria-label="{label}">'
        f'<line x1="{pad}" y1="7" x2="{w - pad}" y2="7" class="axisline"/>{bar}'
        f'<circle cx="{px(value):.1f}" cy="7" r="3.5" class="dot"/></svg>'
    )
