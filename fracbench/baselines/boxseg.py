"""Segmentation from the detector's boxes: each box becomes its inscribed ellipse.

FracAtlas fracture polygons are compact blobs: a perfect box drawn as its inscribed
ellipse reaches IoU >= 0.5 with the polygon for 89 % of fractures (measured in the
issue that introduced this baseline), while a per-pixel U-Net trained on a 2-core
CPU finds too few of them. So the reference segmentation runs the reference
detector (:mod:`fracbench.baselines.localization`, same weights) and draws every
box as an ellipse polygon, scored by the box's score. Two numbers are fitted on
validation by mask AP50 (original pixels, negatives included, pycocotools):
the ellipse's size relative to the box and the smallest box score kept.
"""

from __future__ import annotations

import math

import numpy as np

from fracbench.baselines.cache import CachedSplit
from fracbench.baselines.common import Baseline, coco_ap50
from fracbench.baselines.localization import LocalizationBaseline

ELLIPSE_SCALES = (0.8, 0.9, 1.0, 1.1, 1.2)
"""Ellipse semi-axes as multiples of the box's half sides (validation grid)."""
MIN_SCORES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3)
"""Smallest box score kept (validation grid)."""
VERTICES = 32
"""Vertices of each ellipse polygon."""


def ellipse_polygon(bbox, scale: float, width: int, height: int, vertices: int = VERTICES) -> list[float]:
    """The flat ``[x1, y1, ...]`` polygon of the ellipse inscribed in ``bbox`` (``[x, y, w, h]``), scaled, clipped."""
    x, y, w, h = (float(v) for v in bbox)
    cx, cy, a, b = x + w / 2, y + h / 2, max(w * scale / 2, 0.5), max(h * scale / 2, 0.5)
    t = np.linspace(0, 2 * math.pi, vertices, endpoint=False)
    xs = np.clip(cx + a * np.cos(t), 0, width)
    ys = np.clip(cy + b * np.sin(t), 0, height)
    return [round(float(v), 2) for pair in zip(xs, ys, strict=True) for v in pair]


class BoxEllipseSegmentation(Baseline):
    """Fracture instances as ellipses inscribed in the reference detector's boxes."""

    task = "segmentation"
    config = "segmentation"
    kind = "box-ellipse"
    metric = "mask_ap50"

    def __init__(self):
        self.detector = LocalizationBaseline()
        for name in ("image_size", "batch_size", "encoder_prefix"):
            setattr(self, name, getattr(self.detector, name))

    def set_image_size(self, size: int) -> None:
        """The detector's inference frame."""
        self.image_size = size
        self.detector.set_image_size(size)

    def build_model(self, *, pretrained: bool = True):
        """The detector's network."""
        return self.detector.build_model(pretrained=pretrained)

    def infer(self, model, cached: CachedSplit, device, *, batch_size: int, progress=None):
        """The detector's raw boxes and scores."""
        return self.detector.infer(model, cached, device, batch_size=batch_size, progress=progress)

    def _instances(self, raw, cached, scale: float, min_score: float) -> list[list[dict]]:
        out = []
        for i, boxes in enumerate(self.detector._original(raw, cached)):
            w, h = (int(v) for v in cached.sizes[i])
            out.append([{"score": b["score"], "polygon": [ellipse_polygon(b["bbox"], scale, w, h)]}
                        for b in boxes if b["score"] >= min_score])
        return out

    def _ap50(self, instances, cached, gts) -> float:
        from fracbench.metrics.rle import polygons_to_rle

        dets = []
        for i, inst in enumerate(instances):
            w, h = (int(v) for v in cached.sizes[i])
            dets.append([{"score": d["score"], "segmentation": polygons_to_rle(d["polygon"], h, w)} for d in inst])
        return coco_ap50(cached, dets, "segm", gts, frame="original")

    def _gts(self, cached) -> list[list[dict]]:
        """Ground-truth instance masks in original pixels, built as the scorer builds them."""
        from fracbench.metrics.rle import polygons_to_rle

        return [[polygons_to_rle(polys, int(cached.sizes[i][1]), int(cached.sizes[i][0]))
                 for polys in cached.polygons[i]] for i in range(len(cached))]

    def validation_metric(self, raw, cached):
        """Mask AP50 (original pixels) of full-size ellipses, every box kept."""
        return self._ap50(self._instances(raw, cached, 1.0, 0.0), cached, self._gts(cached))

    def fit_postprocessing(self, raw, cached):
        """Ellipse scale and minimum score with the best validation mask AP50 (every grid point recorded)."""
        gts = self._gts(cached)
        grid = {(s, m): self._ap50(self._instances(raw, cached, s, m), cached, gts)
                for s in ELLIPSE_SCALES for m in MIN_SCORES}
        # ties: the scale nearest 1, then the lowest score floor
        best = max(grid, key=lambda k: (np.nan_to_num(grid[k], nan=-1.0), -abs(k[0] - 1.0), -k[1]))
        return {"ellipse_scale": best[0], "min_score": best[1], "validation_mask_ap50": grid[best],
                "validation_mask_ap50_grid": {f"{s}/{m}": v for (s, m), v in grid.items()}}

    def predictions(self, raw, cached, post, *, progress=None):
        """``{"image_id", "instances": [{"score", "polygon"}]}`` in original pixels."""
        instances = self._instances(raw, cached, float(post.get("ellipse_scale", 1.0)),
                                    float(post.get("min_score", 0.0)))
        return [{"image_id": iid, "instances": inst} for iid, inst in zip(cached.image_ids, instances, strict=True)]
