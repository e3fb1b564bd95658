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
    buffer = io.BytesIO()
    render_pair_sheet(pairs, load, **kwargs).save(buffer, format="PNG", optimize=True)
    return write_bytes(path, buffer.getvalue())
