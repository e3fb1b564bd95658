"""COCO masks: checking compressed RLE strings, polygons to RLE, unions and areas.

pycocotools' C decoder trusts its input: a counts string that ends inside a
number makes it read past the buffer, and a negative run makes it write past
the mask. So every submitted RLE string is decoded here first, in numpy,
exactly as ``rleFrString`` does, and rejected unless its runs are non-negative
and add up to ``height * width``. Only checked strings reach pycocotools.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

MAX_CHARS_PER_RUN = 6
"""Characters one run may take (6 x 5 bits); longer ones overflow the C decoder's int shift."""


def rle_runs(counts: str) -> np.ndarray:
    """Decode a COCO compressed RLE string into its runs, as pycocotools would.

    The string is a sequence of numbers, each in 1-6 characters from ``'0'`` (48) to
    ``'o'`` (111): 5 data bits per character, bit 0x20 set when the number continues,
    bit 0x10 of the last character the sign. Runs from the fourth on are stored as
    the difference to the run two places before.

    Args:
        counts: the ``counts`` string.

    Returns:
        np.ndarray: int64 runs, shape ``(n_runs,)``, alternating 0s and 1s starting with 0s.

    Raises:
        ValueError: the string is not a well-formed COCO RLE string (message says why).
    """
    try:
        raw = counts.encode("ascii")
    except UnicodeEncodeError:
        raise ValueError("RLE counts contain non-ASCII characters; expected characters '0'..'o'") from None
    chars = np.frombuffer(raw, dtype=np.uint8).astype(np.int64) - 48
    if chars.size == 0:
        return np.zeros(0, dtype=np.int64)
    bad = np.flatnonzero((chars < 0) | (chars > 63))
    if bad.size:
        ch = raw[bad[0] : bad[0] + 1].decode("ascii")
        raise ValueError(f"RLE counts: character {ch!r} at offset {int(bad[0])} is outside the COCO RLE alphabet '0'..'o'")
    more = (chars & 0x20) != 0
    if more[-1]:
        raise ValueError("RLE counts end in the middle of a number (last character has the continuation bit)")
    ends = np.flatnonzero(~more)
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    if lengths.max() > MAX_CHARS_PER_RUN:
        raise ValueError(f"RLE counts: a run takes {int(lengths.max())} characters; at most {MAX_CHARS_PER_RUN} are valid")
    shift = 5 * (np.arange(chars.size) - np.repeat(starts, lengths))
    values = np.add.reduceat((chars & 0x1F) << shift, starts)
    negative = (chars[ends] & 0x10) != 0
    values = np.where(negative, values - (np.int64(1) << (5 * lengths)), values)
    runs = values.copy()
    # rleFrString: from the 4th number on, x += cnts[m-2] (two chains: odd and even indices).
    runs[1::2] = np.cumsum(values[1::2])
    runs[2::2] = np.cumsum(values[2::2])
    return runs


def check_rle(counts: str, height: int, width: int) -> str | None:
    """Why ``counts`` is not a valid mask of ``height`` x ``width``, or None when it is.

    Args:
        counts: a COCO compressed RLE string.
        height, width: the mask size the RLE declares.

    Returns:
        str | None: a message saying expected and found, or None.
    """
    try:
        runs = rle_runs(counts)
    except ValueError as exc:
        return str(exc)
    if runs.size and runs.min() < 0:
        i = int(np.argmin(runs))
        return f"RLE counts decode to a negative run ({int(runs[i])}) at run {i}; runs must be >= 0"
    total = int(runs.sum())
    if total != height * width:
        return (
            f"RLE counts cover {total} pixels but size [{height}, {width}] has {height * width}; "
            "encode the full-resolution mask with pycocotools.mask.encode"
        )
    return None


def polygons_to_rle(polygons: Sequence[Sequence[float]], height: int, width: int) -> dict[str, Any]:
    """Rasterise COCO polygons (their union) into one compressed RLE, as COCO does.

    Polygons with fewer than 3 vertices cover nothing and are skipped (pycocotools
    would read a 4-number list as a box).

    Args:
        polygons: flat ``[x1, y1, x2, y2, ...]`` lists in pixels.
        height, width: the image size.

    Returns:
        dict: ``{"size": [h, w], "counts": bytes}``.
    """
    polys = [[float(v) for v in p] for p in polygons if len(p) >= 6]
    if not polys:
        return empty_rle(height, width)
    return mask_utils.merge(mask_utils.frPyObjects(polys, height, width))


def empty_rle(height: int, width: int) -> dict[str, Any]:
    """The RLE of an all-zero ``height`` x ``width`` mask."""
    return mask_utils.encode(np.zeros((height, width), dtype=np.uint8, order="F"))


def as_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """A fresh RLE dict with bytes counts (never the caller's dict)."""
    counts = rle["counts"]
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def union(rles: Sequence[dict[str, Any]], height: int, width: int) -> dict[str, Any]:
    """The union of checked RLEs (all-zero mask when there are none)."""
    if not rles:
        return empty_rle(height, width)
    if len(rles) == 1:
        return rles[0]
    return mask_utils.merge(list(rles), intersect=0)


def area(rle: dict[str, Any]) -> int:
    """Foreground pixels of one RLE."""
    return int(mask_utils.area(rle))


def intersection_area(a: dict[str, Any], b: dict[str, Any]) -> int:
    """Foreground pixels shared by two RLEs of the same size."""
    return int(mask_utils.area(mask_utils.merge([a, b], intersect=1)))
