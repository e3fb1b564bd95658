"""The error gallery's thumbnails: dataset images with predictions and ground truth drawn on them.

Each :class:`~fracbench.report.analysis.GalleryPick` becomes a PNG thumbnail of at most
:data:`THUMB` pixels a side: a square window of the image around the pick (three times
its box, at least :data:`MIN_WINDOW` of the image's shorter side; the whole image without
a box), scaled, then drawn on at thumbnail resolution so lines stay crisp: predictions
first in :data:`PRED_COLOUR` (boxes as 2-pixel outlines, masks as a translucent fill with
an opaque edge), ground truth last in :data:`GT_COLOUR` (2-pixel box or polygon outlines),
so a prediction never hides the truth. A ground-truth point ``(x, y)`` of the original image
lands at ``(round((x - x0) * scale), round((y - y0) * scale))`` of the thumbnail.

Images come from the built dataset's parquet ``image`` column (only the rows needed,
decoded at the smallest JPEG draft scale that still covers the thumbnail).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from fracbench.dataset.groundtruth import GroundTruth
from fracbench.errors import DatasetError
from fracbench.report.analysis import GalleryPick

THUMB = 240
MIN_WINDOW = 0.4
GT_COLOUR = (0, 255, 0)
PRED_COLOUR = (255, 0, 255)
LINE = 2


@dataclass(frozen=True)
class Thumbnail:
    """A drawn thumbnail and where it sits in the original image.

    Attributes:
        pick: what it shows.
        png: the PNG bytes.
        x0, y0: the window's top-left corner, original pixels.
        scale: thumbnail pixels per original pixel.
        size: (width, height) of the thumbnail.
    """

    pick: GalleryPick
    png: bytes
    x0: float
    y0: float
    scale: float
    size: tuple[int, int]


def window(pick: GalleryPick, width: int, height: int) -> tuple[float, float, float, float]:
    """The (x0, y0, w, h) window of the original image the thumbnail shows."""
    if pick.focus is None:
        return 0.0, 0.0, float(width), float(height)
    x, y, w, h = pick.focus
    side = min(max(3 * max(w, h), MIN_WINDOW * min(width, height)), width, height)
    cx, cy = x + w / 2, y + h / 2
    x0 = min(max(0.0, cx - side / 2), width - side)
    y0 = min(max(0.0, cy - side / 2), height - side)
    return x0, y0, side, side


def draw_thumbnail(image: Image.Image, pick: GalleryPick, width: int, height: int) -> Thumbnail:
    """Crop, scale and draw one pick.

    Args:
        image: the decoded image in the annotation frame, at full or reduced (draft) resolution.
        pick: what to draw.
        width, height: the image's size in original pixels (the annotation frame).
    """
    from pycocotools import mask as mask_utils

    from fracbench.report.analysis import _coco_rle

    x0, y0, ww, wh = window(pick, width, height)
    scale = THUMB / max(ww, wh)
    size = (max(1, round(ww * scale)), max(1, round(wh * scale)))
    k = image.width / width  # decoded pixels per original pixel
    crop = image.convert("L").crop((round(x0 * k), round(y0 * k), round((x0 + ww) * k), round((y0 + wh) * k)))
    thumb = np.asarray(crop.resize(size, Image.Resampling.BILINEAR).convert("RGB")).copy()
    for rle, _ in pick.pred_masks:
        full = mask_utils.decode(_coco_rle(rle)).astype(bool)
        part = Image.fromarray(full[int(y0):int(math.ceil(y0 + wh)), int(x0):int(math.ceil(x0 + ww))].astype(np.uint8) * 255)
        m = np.asarray(part.resize(size, Image.Resampling.NEAREST)) > 127
        thumb[m] = (0.55 * thumb[m] + 0.45 * np.array(PRED_COLOUR)).astype(np.uint8)
        inner = m.copy()
        inner[1:-1, 1:-1] = m[1:-1, 1:-1] & m[:-2, 1:-1] & m[2:, 1:-1] & m[1:-1, :-2] & m[1:-1, 2:]
        thumb[m & ~inner] = PRED_COLOUR
    out = Image.fromarray(thumb)
    draw = ImageDraw.Draw(out)

    def pt(x: float, y: float) -> tuple[int, int]:
        return round((x - x0) * scale), round((y - y0) * scale)

    for (bx, by, bw, bh), _ in pick.pred_boxes:
        draw.rectangle([pt(bx, by), pt(bx + bw, by + bh)], outline=PRED_COLOUR, width=LINE)
    for polys in pick.gt_polygons:
        for poly in polys:
            pts = [pt(poly[i], poly[i + 1]) for i in range(0, len(poly) - 1, 2)]
            if len(pts) >= 3:
                draw.line(pts + pts[:1], fill=GT_COLOUR, width=LINE, joint="curve")
    for bx, by, bw, bh in pick.gt_boxes:
        draw.rectangle([pt(bx, by), pt(bx + bw, by + bh)], outline=GT_COLOUR, width=LINE)
    buf = io.BytesIO()
    out.save(buf, format="PNG", optimize=True)
    return Thumbnail(pick, buf.getvalue(), x0, y0, scale, size)


def load_images(data_dir: str | Path, gt: GroundTruth, image_ids: Iterable[str]) -> dict[str, Image.Image]:
    """Decode the given images of ``gt``'s split from a built dataset, at thumbnail scale.

    Raises:
        DatasetError: the dataset has no image column or an image cannot be decoded.
    """
    from fracbench.dataset.built import BuiltDataset
    from fracbench.release.images import decode

    wanted = sorted(set(image_ids))
    if not wanted:
        return {}
    built = BuiltDataset.open(data_dir, verify=False)  # the ground truth read was verified
    config = "legacy" if gt.splits_version == "legacy" else "segmentation"
    f = f"{built.root}/{config}/{gt.split}"
    sizes = {g.image_id: (g.width, g.height) for g in gt.images}
    out: dict[str, Image.Image] = {}
    try:
        table = built.table(config, gt.split, ["image_id", "image"], image_ids=wanted)
    except DatasetError as exc:
        raise DatasetError(f"{exc}; the error gallery needs a dataset built with images") from None
    for iid, cell in zip(table.column("image_id").to_pylist(), table.column("image").to_pylist()):
        data = (cell or {}).get("bytes")
        if not data:
            raise DatasetError(f"{f}: image {iid} has no bytes; the error gallery needs a dataset built with images")
        w, h = sizes[iid]
        side = max(w, h)
        need = max(1, math.ceil(side * min(1.0, THUMB / (MIN_WINDOW * min(w, h)))))
        try:
            out[iid] = decode(io.BytesIO(data), draft=(need, need)).image
        except OSError as exc:
            raise DatasetError(f"{f}: image {iid} does not decode ({exc})") from None
    missing = [i for i in wanted if i not in out]
    if missing:
        raise DatasetError(f"{built.root}: images {', '.join(missing[:5])} not found in the {gt.split} split's parquet files")
    return out


def draw_gallery(data_dir: str | Path, gt: GroundTruth, picks: list[GalleryPick]) -> list[Thumbnail]:
    """Every pick drawn (see :func:`draw_thumbnail`), in the order given."""
    images = load_images(data_dir, gt, (p.image_id for p in picks))
    sizes = {g.image_id: (g.width, g.height) for g in gt.images}
    return [draw_thumbnail(images[p.image_id], p, *sizes[p.image_id]) for p in picks]
