"""Contact sheets: candidate image pairs side by side, for a person to review.

The near-duplicate thresholds of the audit are set by looking at pairs just
below and just above them; this module draws those pairs into one PNG, each
pair as two thumbnails with the ids and the measured distances underneath.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fracbench.atomic import write_bytes


@dataclass(frozen=True, slots=True)
class PairTile:
    """One pair on a contact sheet.

    Attributes:
        id_a, id_b: the two image ids.
        caption: one short line (distances, verdict) drawn under the pair.
        accepted: True draws a green frame (grouped), False a red one (rejected),
            None a grey one (not decided, e.g. context pairs).
    """

    id_a: str
    id_b: str
    caption: str
    accepted: bool | None = None


_FRAME = {True: (40, 170, 60), False: (200, 50, 50), None: (128, 128, 128)}


def render_pair_sheet(
    pairs: Sequence[PairTile],
    load: Callable[[str], Image.Image],
    *,
    title: str = "",
    columns: int = 4,
    tile: int = 150,
) -> Image.Image:
    """Draw pairs on a grid: each cell is two thumbnails, ids and a caption.

    Args:
        pairs: the pairs, in the order to draw them (row by row).
        load: returns the (EXIF-corrected) image of an id; any size or mode.
        title: a line drawn at the top of the sheet.
        columns: pairs per row.
        tile: the longest side of each thumbnail, in pixels.

    Returns:
        Image.Image: an RGB image of the whole sheet.
    """
    font = ImageFont.load_default(size=12)
    title_font = ImageFont.load_default(size=16)
    pad = 6
    text_h = 32
    cell_w = 2 * tile + 3 * pad
    cell_h = tile + text_h + 2 * pad
    rows = max(1, -(-len(pairs) // columns))
    header = 28 if title else 0
    sheet = Image.new("RGB", (columns * cell_w, header + rows * cell_h), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    if title:
        draw.text((pad, 5), title, fill=(0, 0, 0), font=title_font)
    cache: dict[str, Image.Image] = {}
    for n, pair in enumerate(pairs):
        x0 = (n % columns) * cell_w
        y0 = header + (n // columns) * cell_h
        for k, image_id in enumerate((pair.id_a, pair.id_b)):
            if image_id not in cache:
                thumb = load(image_id).convert("L")
                thumb.thumbnail((tile, tile), Image.Resampling.BILINEAR)
                cache[image_id] = thumb
            thumb = cache[image_id]
            left = x0 + pad + k * (tile + pad) + (tile - thumb.width) // 2
            top = y0 + pad + (tile - thumb.height) // 2
            sheet.paste(thumb.convert("RGB"), (left, top))
        draw.rectangle(
            (x0 + 2, y0 + 2, x0 + cell_w - 3, y0 + cell_h - 3), outline=_FRAME[pair.accepted], width=2
        )
        draw.text((x0 + pad, y0 + tile + pad + 2), f"{pair.id_a} | {pair.id_b}", fill=(0, 0, 0), font=font)
        draw.text((x0 + pad, y0 + tile + pad + 16), pair.caption, fill=(60, 60, 60), font=font)
    return sheet


def write_pair_sheet(
    path: str | Path,
    pairs: Sequence[PairTile],
    load: Callable[[str], Image.Image],
    **kwargs,
) -> Path:
    """Render a contact sheet (see :func:`render_pair_sheet`) and write it as PNG, atomically.

    Args:
        path: the PNG to write.
        pairs: the pairs to draw.
        load: returns the image of an id.
        **kwargs: ``title``, ``columns``, ``tile`` as for :func:`render_pair_sheet`.

    Returns:
        Path: ``path``.
    """
    return write_png(path, render_pair_sheet(pairs, load, **kwargs))


def render_histogram(
    edges: Sequence[float],
    counts: Sequence[int],
    *,
    threshold: float | None = None,
    title: str = "",
    width: int = 720,
    height: int = 300,
) -> Image.Image:
    """A bar chart of a histogram with log-scaled counts and an optional threshold line.

    Args:
        edges: bin edges (one more than ``counts``).
        counts: counts per bin.
        threshold: x value to mark with a red vertical line.
        title: drawn at the top.
        width, height: size of the image in pixels.

    Returns:
        Image.Image: an RGB image.
    """
    font = ImageFont.load_default(size=12)
    image = Image.new("RGB", (width, height), (255, 255, 255))
    draw = ImageDraw.Draw(image)
    left, right, top, bottom = 50, 15, 28, 35
    plot_w, plot_h = width - left - right, height - top - bottom
    lo, hi = float(edges[0]), float(edges[-1])
    peak = max(1.0, float(np.log10(1 + max(counts, default=0))))

    def x_of(value: float) -> float:
        return left + (value - lo) / (hi - lo) * plot_w if hi > lo else left

    for k, count in enumerate(counts):
        bar = np.log10(1 + count) / peak * plot_h
        draw.rectangle((x_of(edges[k]) + 1, top + plot_h - bar, x_of(edges[k + 1]) - 1, top + plot_h),
                       fill=(70, 110, 180))
    draw.line((left, top + plot_h, left + plot_w, top + plot_h), fill=(0, 0, 0))
    for k in range(0, len(edges), max(1, len(edges) // 10)):
        draw.text((x_of(edges[k]) - 8, top + plot_h + 4), f"{edges[k]:g}", fill=(0, 0, 0), font=font)
    for decade in range(int(peak) + 1):
        y = top + plot_h - np.log10(1 + 10**decade) / peak * plot_h
        draw.text((4, y - 6), f"{10**decade:g}", fill=(90, 90, 90), font=font)
    if threshold is not None:
        draw.line((x_of(threshold), top, x_of(threshold), top + plot_h), fill=(210, 40, 40), width=2)
    draw.text((left, 6), title + "  (bar height: log10(1 + count))", fill=(0, 0, 0), font=font)
    return image


def write_png(path: str | Path, image: Image.Image) -> Path:
    """Write an image as PNG, atomically."""
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return write_bytes(path, buffer.getvalue())
