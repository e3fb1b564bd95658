"""Segmentation metrics: COCO mask AP and Dice, all in the RLE domain (no dense masks).

Conventions (docs/PROTOCOL.md):

* ``mask_ap``, ``mask_ap50``: COCOeval ``segm`` (ground-truth instances are the
  union of each instance's polygons; every scored image listed; maxDets 100).
* The predicted mask of an image is the union of its instances with
  ``score >= threshold`` (the submission's threshold, else 0.5); the true mask is the
  union of all its fracture polygons.
* ``dice_per_image``: mean over fractured scored images of 2|P∩G| / (|P| + |G|)
  (0 when nothing is predicted there); non-fractured images do not enter it.
* ``dice_global``: 2 Σ|P∩G| / (Σ|P| + Σ|G|) pooled over all scored images; 1 when
  both sums are 0 (nothing to find, nothing predicted).
* ``negative_fp_rate``: share of non-fractured scored images whose predicted mask has
  at least one pixel (lower is better).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fracbench.dataset.groundtruth import GTImage
from fracbench.metrics import Metric
from fracbench.metrics import rle as rle_ops
from fracbench.metrics.coco import ImageMatches, MatchTable, match_images
from fracbench.metrics.detection import pr_curve

SEGMENTATION_METRIC_SPECS = (
    Metric("mask_ap50"), Metric("mask_ap"), Metric("dice_per_image"), Metric("dice_global"),
    Metric("negative_fp_rate", higher_is_better=False, needs_negatives=True),
)
SEGMENTATION_METRICS = tuple(m.name for m in SEGMENTATION_METRIC_SPECS)
DEFAULT_MASK_THRESHOLD = 0.5

MaskInstance = tuple[float, "dict[str, Any] | list[list[float]]"]
"""A predicted instance: (score, RLE dict ``{"size", "counts"}`` or list of polygons)."""


@dataclass(frozen=True)
class DiceInputs:
    """Per-image pixel counts of the thresholded predicted mask P and the true mask G.

    Attributes:
        intersection, predicted, truth: shape ``(n,)``, |P∩G|, |P|, |G|.
        labels: shape ``(n,)``, 1 fractured.
    """

    intersection: np.ndarray
    predicted: np.ndarray
    truth: np.ndarray
    labels: np.ndarray

    def subset(self, index: np.ndarray) -> DiceInputs:
        return DiceInputs(self.intersection[index], self.predicted[index], self.truth[index], self.labels[index])

    def compute(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """``dice_per_image``, ``dice_global``, ``negative_fp_rate`` per weighting (NaN where undefined)."""
        w = np.asarray(weights, dtype=np.float64)
        pos = self.labels == 1
        with np.errstate(divide="ignore", invalid="ignore"):
            denom = self.predicted + self.truth
            dice = np.where(denom > 0, 2 * self.intersection / np.where(denom > 0, denom, 1), 1.0)
            n_pos = w[:, pos].sum(1)
            per_image = np.where(n_pos > 0, (w[:, pos] @ dice[pos]) / np.where(n_pos > 0, n_pos, 1), np.nan)
            inter, total = w @ self.intersection, w @ denom
            pooled = np.where(total > 0, 2 * inter / np.where(total > 0, total, 1), 1.0)
            n_neg = w[:, ~pos].sum(1)
            fp_images = w[:, ~pos] @ (self.predicted[~pos] > 0).astype(np.float64)
            fp_rate = np.where(n_neg > 0, fp_images / np.where(n_neg > 0, n_neg, 1), np.nan)
        return {"dice_per_image": per_image, "dice_global": pooled, "negative_fp_rate": fp_rate}


class SegmentationEvaluation:
    """Every segmentation metric for weighted image sets."""

    names = SEGMENTATION_METRICS

    def __init__(self, matches: Sequence[ImageMatches], dice: DiceInputs):
        self.matches = list(matches)
        self.dice = dice
        self.n = len(self.matches)
        self.table = MatchTable(self.matches)

    def subset(self, index: np.ndarray) -> SegmentationEvaluation:
        index = np.asarray(index)
        return SegmentationEvaluation([self.matches[i] for i in index], self.dice.subset(index))

    def compute(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        out = self.table.compute(weights, prefix="mask_")
        out.update(self.dice.compute(weights))
        return {k: out[k] for k in self.names}

    def curves(self) -> dict[str, dict[str, list[float]]]:
        return pr_curve(self.table)


def _instance_rle(payload: Any, height: int, width: int) -> dict[str, Any]:
    if isinstance(payload, dict):  # a fresh dict: pycocotools reads str counts as they are
        return {"size": [height, width], "counts": payload["counts"]}
    return rle_ops.polygons_to_rle(payload, height, width)


def _objects(rles: list[dict[str, Any]], scores: Sequence[float] | None = None) -> list[dict[str, Any]]:
    """COCO objects (rle, area, bbox[, score]) for one image's masks, areas and boxes in one call each."""
    if not rles:
        return []
    areas = mask_utils.area(rles).tolist()
    boxes = mask_utils.toBbox(rles).tolist()
    objs = [{"rle": r, "area": a, "bbox": b} for r, a, b in zip(rles, areas, boxes)]
    if scores is not None:
        for obj, score in zip(objs, scores):
            obj["score"] = float(score)
    return objs


def prepare_segmentation(
    images: Sequence[GTImage], instances: Sequence[Sequence[MaskInstance]], threshold: float = DEFAULT_MASK_THRESHOLD
) -> SegmentationEvaluation:
    """Rasterise (in RLE) truth and predictions, match them with COCOeval and measure Dice.

    Args:
        images: the scored images.
        instances: per image, its predicted instances; RLEs must have been checked
            (:func:`fracbench.metrics.rle.check_rle`) and be of the image's size.
        threshold: instances with ``score >= threshold`` form the predicted mask for Dice.

    Returns:
        SegmentationEvaluation: ready for :meth:`~SegmentationEvaluation.compute`.
    """
    gt_objs, dt_objs = [], []
    inter, pred_area, true_area = np.zeros(len(images)), np.zeros(len(images)), np.zeros(len(images))
    for i, (g, preds) in enumerate(zip(images, instances, strict=True)):
        h, w = g.height, g.width
        truth = [rle_ops.polygons_to_rle(polys, h, w) for polys in g.polygons]
        gt_objs.append(_objects(truth))
        rles = [_instance_rle(payload, h, w) for _, payload in preds]
        dt_objs.append(_objects(rles, [score for score, _ in preds]))
        kept = [r for r, (score, _) in zip(rles, preds) if score >= threshold]
        true_union = rle_ops.union(truth, h, w) if truth else None
        pred_union = rle_ops.union(kept, h, w) if kept else None
        true_area[i] = rle_ops.area(true_union) if truth else 0
        pred_area[i] = rle_ops.area(pred_union) if kept else 0
        if true_area[i] and pred_area[i]:
            inter[i] = rle_ops.intersection_area(pred_union, true_union)
    matches = match_images([(g.width, g.height) for g in images], gt_objs, dt_objs, "segm")
    labels = np.array([g.label for g in images], dtype=np.int64)
    return SegmentationEvaluation(matches, DiceInputs(inter, pred_area, true_area, labels))
