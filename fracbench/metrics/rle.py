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


BATCH_CHARS = 1 << 20
"""Characters decoded per vectorised batch (bounds memory to a few tens of MB)."""


def check_rles(counts: Sequence[str], sizes: Sequence[tuple[int, int]]) -> list[str | None]:
    """:func:`check_rle` for many strings at once (vectorised batches, then details for the bad ones).

    Args:
        counts: RLE strings.
        sizes: ``(height, width)`` each string must cover.

    Returns:
        list: per string, None when valid, else the message :func:`check_rle` gives.
    """
    out: list[str | None] = []
    start, chars = 0, 0
    for i, c in enumerate(counts):
        chars += len(c)
        if chars >= BATCH_CHARS or i == len(counts) - 1:
            out += _check_batch(counts[start : i + 1], sizes[start : i + 1])
            start, chars = i + 1, 0
    return out


def _check_batch(counts: Sequence[str], sizes: Sequence[tuple[int, int]]) -> list[str | None]:
    """Flag the strings of one batch that are not certainly valid, then explain those one by one."""
    n = len(counts)
    if n == 0:
        return []
    try:
        raw = np.frombuffer("".join(counts).encode("ascii"), dtype=np.uint8)
    except UnicodeEncodeError:
        return [check_rle(c, h, w) for c, (h, w) in zip(counts, sizes, strict=True)]
    lengths = np.fromiter(map(len, counts), dtype=np.int64, count=n)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    pixels = np.array([h * w for h, w in sizes], dtype=np.float64)
    suspect = lengths == 0
    bad_chars = np.flatnonzero((raw < 48) | (raw > 111))
    suspect[np.searchsorted(offsets, bad_chars, side="right") - 1] = True
    chars = raw - np.uint8(48)  # wraps for bad characters; their strings are dropped below
    more = (chars & 0x20) != 0
    suspect[lengths > 0] |= more[offsets[1:][lengths > 0] - 1]
    if suspect.any():
        keep = np.repeat(~suspect, lengths)
        chars, more = chars[keep], more[keep]
        offsets = np.concatenate(([0], np.cumsum(np.where(suspect, 0, lengths))))
    if chars.size:
        ends = np.flatnonzero(~more)
        starts = np.concatenate(([0], ends[:-1] + 1))
        width = ends - starts + 1
        bounds = np.searchsorted(ends, offsets, side="left")
        first_token, per_string = bounds[:-1], np.diff(bounds)
        token_owner = np.repeat(np.arange(n), per_string)
        suspect[token_owner[width > MAX_CHARS_PER_RUN]] = True
        # numbers: 5 bits per character, least significant first; most take one character
        values = (chars[starts] & 0x1F).astype(np.int64)
        longer = np.flatnonzero(width > 1)
        for k in range(1, MAX_CHARS_PER_RUN):
            longer = longer[width[longer] > k]
            if not longer.size:
                break
            values[longer] |= (chars[starts[longer] + k] & 0x1F).astype(np.int64) << (5 * k)
        negative_sign = np.flatnonzero(chars[ends] & 0x10)
        values[negative_sign] -= np.int64(1) << (5 * np.minimum(width[negative_sign], MAX_CHARS_PER_RUN))
        # runs[i] = values[i] + runs[i-2] from the 4th number of a string on: one running sum per
        # global index parity, minus what precedes the string's chain
        same_parity = np.empty_like(values)
        same_parity[0::2] = np.cumsum(values[0::2])
        same_parity[1::2] = np.cumsum(values[1::2])
        padded = np.concatenate(([0], same_parity))
        pos = np.arange(values.size) - np.repeat(first_token, per_string)
        base = np.where(pos % 2 == 1, np.repeat(padded[first_token], per_string), np.repeat(padded[np.minimum(first_token + 1, values.size)], per_string))
        runs = same_parity - base
        starts_of_strings = first_token[per_string > 0]
        runs[starts_of_strings] = values[starts_of_strings]
        suspect[token_owner[runs < 0]] = True
        suspect |= np.bincount(token_owner, weights=runs, minlength=n) != pixels
    return [check_rle(c, h, w) if bad else None for c, (h, w), bad in zip(counts, sizes, suspect, strict=True)]


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


EIGHT_CONNECTED = np.ones((3, 3), dtype=bool)
"""Pixels touching by an edge or a corner are one object (thin oblique fracture lines stay whole)."""


def probability_instances(prob: np.ndarray, threshold: float, *, min_pixels: float = 0.0) -> list[dict[str, Any]]:
    """Instances of a foreground probability map: its 8-connected components at ``prob >= threshold``.

    Each component is one instance scored by the **maximum** probability inside it: the
    component's peak confidence, which does not fall as a correct component grows soft
    edges (a mean would rank a large, well-found fracture below a small faint one). A
    hard 0/1 mask gives every component score 1.0.

    Args:
        prob: ``(H, W)`` foreground probabilities in 0..1 (a 0/1 mask is accepted).
        threshold: the foreground cut in 0..1.
        min_pixels: components with fewer pixels are dropped.

    Returns:
        list[dict]: ``{"score": float, "rle": {"size": [H, W], "counts": str}, "bbox": [x, y, w, h]}``
        by decreasing score (the box is COCO's box of the mask, in pixels).
    """
    from scipy import ndimage

    height, width = prob.shape
    comps, _ = ndimage.label(prob >= threshold, structure=EIGHT_CONNECTED)
    found = []
    for k, sl in enumerate(ndimage.find_objects(comps), start=1):
        inside = comps[sl] == k
        if inside.sum() < min_pixels:
            continue
        mask = np.zeros((height, width), dtype=np.uint8, order="F")
        mask[sl][inside] = 1
        rle = mask_utils.encode(mask)
        found.append({"score": float(prob[sl][inside].max()),
                      "rle": {"size": [int(height), int(width)], "counts": rle["counts"].decode("ascii")},
                      "bbox": [float(v) for v in mask_utils.toBbox(rle)]})
    found.sort(key=lambda d: -d["score"])
    return found
