"""Likely coordinate-convention mistakes in box predictions, as warnings (never as problems).

fracbench boxes are COCO ``[x, y, w, h]`` in pixels of the image. Three other conventions
are common in the toolchains researchers use, and each can produce a file that validates
or nearly validates and then scores about zero:

- **normalized** (YOLO labels, torchvision ``normalize=True``): every number in 0..1;
- **centre-based** ``[cx, cy, w, h]`` in pixels (YOLO after de-normalizing): read as
  ``[x, y, w, h]``, boxes near the right or bottom edge run past it;
- **corner-based** ``[x1, y1, x2, y2]`` (torchvision, Pascal VOC): read as ``[x, y, w, h]``,
  boxes run past the image, while every box has ``x2 > x1`` and ``y2 > y1`` inside it.

:func:`box_convention_warnings` looks at every box of a submission against the image sizes
and says which convention the boxes fit instead, with the fix. Legal submissions are
never rejected: these are warnings.
"""

from __future__ import annotations

import math
from typing import Any

TOLERANCE_PX = 2.0
"""As the validator's bounds tolerance."""


def _boxes(data: Any, sizes: dict[str, tuple[int, int]]) -> list[tuple[float, float, float, float, int, int]]:
    out = []
    if not isinstance(data, dict) or not isinstance(data.get("predictions"), list):
        return out
    for entry in data["predictions"]:
        image_id = entry.get("image_id") if isinstance(entry, dict) else None
        if not isinstance(image_id, str) or image_id not in sizes or not isinstance(entry.get("boxes"), list):
            continue
        w_img, h_img = sizes[image_id]
        for box in entry["boxes"]:
            b = box.get("bbox") if isinstance(box, dict) else None
            if (isinstance(b, list) and len(b) == 4
                    and all(isinstance(v, (int, float)) and not isinstance(v, bool) and abs(v) < 1e15 for v in b)):
                xs = [float(v) for v in b]
                if all(math.isfinite(v) for v in xs):  # what is not a plain number is the validator's business
                    out.append((*xs, w_img, h_img))
    return out


def box_convention_warnings(data: Any, sizes: dict[str, tuple[int, int]]) -> list[str]:
    """Warnings naming the convention the boxes of ``data`` seem to follow, if not ``[x, y, w, h]`` pixels.

    Args:
        data: the parsed submission (any shape; what is not a box is ignored).
        sizes: ``(width, height)`` of each image of the split.
    """
    boxes = _boxes(data, sizes)
    if not boxes:
        return []
    t = TOLERANCE_PX
    n = len(boxes)
    if all(0.0 <= v <= 1.0 for b in boxes for v in b[:4]) and max(max(b[4], b[5]) for b in boxes) > 2:
        return [f"all {n} boxes lie within 0..1: they look normalized (fractions of the image, YOLO-style); "
                "fracbench boxes are [x, y, w, h] in pixels: multiply x and w by the image width, y and h by its "
                "height (a YOLO prediction folder converts with `fracbench import-preds yolo`)"]
    overflow = [b for b in boxes if b[0] + b[2] > b[4] + t or b[1] + b[3] > b[5] + t]
    if not overflow:
        return []
    centre = all(b[0] - b[2] / 2 >= -t and b[0] + b[2] / 2 <= b[4] + t and b[1] - b[3] / 2 >= -t
                 and b[1] + b[3] / 2 <= b[5] + t for b in boxes)
    corner = all(b[2] > b[0] and b[3] > b[1] and b[2] <= b[4] + t and b[3] <= b[5] + t for b in boxes)
    found = f"{len(overflow)} of {n} boxes run past the image when read as [x, y, w, h]"
    if corner:
        return [f"{found}, but every box fits as corners [x1, y1, x2, y2] (torchvision / Pascal VOC style); "
                "fracbench boxes are [x, y, w, h]: use w = x2 - x1 and h = y2 - y1"]
    if centre:
        return [f"{found}, but every box fits as centre-based [cx, cy, w, h]; fracbench boxes are [x, y, w, h] "
                "with (x, y) the top-left corner: use x = cx - w / 2 and y = cy - h / 2"]
    return []
