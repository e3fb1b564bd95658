"""COCO average precision: pycocotools matches once, a vectorised accumulate many times.

:func:`match_images` runs pycocotools' ``COCOeval.evaluate`` (the reference
matching: greedy by score, one-to-one, per IoU threshold) once, on fresh copies of
the inputs and with its printing silenced, and keeps per image the scores and
true/false-positive flags of its detections. :class:`MatchTable` then replays
``COCOeval.accumulate`` for any integer weighting of the images: weight 1 for all
reproduces COCOeval's ``stats`` (tested to 1e-6); a bootstrap resample is a
weighting, each detection entering with its image's multiplicity.

Why this is exact: in COCOeval's precision/recall sweep the recall only rises at
true positives, and precision rises along a run of true positives and falls along
false positives, so the interpolated precision at each of the 101 recall points
depends only on the true-positive points and on how many false positives precede
each. Those counts are a sparse (detections x images) product with the image weights,
and the recall-point lookup (``np.searchsorted`` in COCOeval) is done on exact
integer true-positive counts, so a weighting costs a few vectorised passes.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from scipy import sparse
from pycocotools.cocoeval import COCOeval

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
"""COCO's IoU thresholds .50:.05:.95 (``Params.iouThrs``)."""
RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
"""COCO's 101 recall points (``Params.recThrs``)."""
MAX_DETS = 100
AREA_ALL = [0**2, 1e5**2]
_EPS = np.spacing(1)
CATEGORY = {"id": 1, "name": "fracture"}


@dataclass(frozen=True)
class ImageMatches:
    """One image's detections after COCO matching.

    Attributes:
        n_gt: ground-truth instances (none is ignored: ``iscrowd`` is 0).
        scores: shape ``(d,)``, detection scores in COCOeval's order (descending, stable), d <= 100.
        tp: shape ``(t, d)`` bool, detection matched at each IoU threshold.
        fp: shape ``(t, d)`` bool, detection unmatched and not ignored.
        gt_matched: shape ``(t, n_gt)`` bool, each ground-truth instance (in the given order)
            matched at each IoU threshold; None where not recorded. For reports (missed fractures).
    """

    n_gt: int
    scores: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    gt_matched: np.ndarray | None = None


def _coco(images: list[dict[str, Any]], annotations: list[dict[str, Any]]) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {"images": images, "annotations": annotations, "categories": [dict(CATEGORY)]}
        coco.createIndex()
    return coco


def match_images(
    sizes: Sequence[tuple[int, int]],
    gt: Sequence[Sequence[dict[str, Any]]],
    dt: Sequence[Sequence[dict[str, Any]]],
    iou_type: str,
) -> list[ImageMatches]:
    """Match detections to ground truth per image with pycocotools' COCOeval.evaluate.

    Args:
        sizes: ``(width, height)`` per image.
        gt: per image, its ground-truth objects: ``{"bbox": [x, y, w, h]}`` (bbox) or
            ``{"rle": rle, "bbox": ..., "area": ...}`` (segm).
        dt: per image, its detections: ``{"bbox": ..., "score": s}`` or ``{"rle": rle, "score": s}``;
            at most :data:`MAX_DETS` per image.
        iou_type: ``bbox`` or ``segm``.

    Returns:
        list[ImageMatches]: one per image, in the given order.
    """
    images = [{"id": i + 1, "width": int(w), "height": int(h)} for i, (w, h) in enumerate(sizes)]
    gt_anns, dt_anns = [], []
    gt_first = []
    for i, objs in enumerate(gt):
        gt_first.append(len(gt_anns) + 1)
        for obj in objs:
            ann = {"id": len(gt_anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "bbox": [float(v) for v in obj["bbox"]]}
            if iou_type == "segm":
                ann["segmentation"] = dict(obj["rle"])
                ann["area"] = float(obj["area"])
            else:
                ann["area"] = float(obj["bbox"][2]) * float(obj["bbox"][3])
            gt_anns.append(ann)
    for i, objs in enumerate(dt):
        for obj in objs:
            ann = {"id": len(dt_anns) + 1, "image_id": i + 1, "category_id": 1, "iscrowd": 0, "score": float(obj["score"])}
            if iou_type == "segm":
                ann["segmentation"] = dict(obj["rle"])
                ann["area"] = float(obj["area"])
                ann["bbox"] = [float(v) for v in obj["bbox"]]
            else:
                ann["bbox"] = [float(v) for v in obj["bbox"]]
                ann["area"] = ann["bbox"][2] * ann["bbox"][3]
            dt_anns.append(ann)
    coco_gt = _coco(images, gt_anns)
    coco_dt = _coco([dict(im) for im in images], dt_anns)
    ev = COCOeval(coco_gt, coco_dt, iou_type)
    ev.params.imgIds = [im["id"] for im in images]
    ev.params.areaRng = [AREA_ALL]
    ev.params.areaRngLbl = ["all"]
    ev.params.maxDets = [1, 10, MAX_DETS]
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
    n_thr = len(ev.params.iouThrs)
    out = []
    for i, e in enumerate(ev.evalImgs):
        if e is None:  # no ground truth and no detection
            out.append(ImageMatches(0, np.zeros(0), np.zeros((n_thr, 0), bool), np.zeros((n_thr, 0), bool), np.zeros((n_thr, 0), bool)))
            continue
        if e["image_id"] != i + 1:  # evalImgs follow params.imgIds; anything else is a pycocotools change
            raise RuntimeError(f"pycocotools evalImgs out of order: entry {i} is image {e['image_id']}")
        matched = np.asarray(e["dtMatches"]) > 0
        ignored = np.asarray(e["dtIgnore"]).astype(bool)
        first = gt_first[i]  # annotation ids of image i are first, first + 1, ... in the given order
        gt_matched = np.zeros((n_thr, len(gt[i])), bool)
        for j, gid in enumerate(e["gtIds"]):
            gt_matched[:, gid - first] = np.asarray(e["gtMatches"])[:, j] > 0
        out.append(
            ImageMatches(
                n_gt=int(np.count_nonzero(np.asarray(e["gtIgnore"]) == 0)),
                scores=np.asarray(e["dtScores"], dtype=np.float64),
                tp=(matched & ~ignored).reshape(n_thr, -1),
                fp=(~matched & ~ignored).reshape(n_thr, -1),
                gt_matched=gt_matched,
            )
        )
    return out


def _min_true_positives(npig: np.ndarray) -> np.ndarray:
    """Smallest integer m with ``m / npig >= thr`` in float64, per row and recall point.

    COCOeval compares the float recall ``tp / npig`` with each recall point; since
    float division is monotone in ``m``, ``tp / npig >= thr`` exactly when ``tp >= m``.

    Args:
        npig: shape ``(b,)``, positive integer counts of ground-truth instances.

    Returns:
        np.ndarray: shape ``(b, 101)``, float64 integers.
    """
    n = npig[:, None]
    m = np.ceil(RECALL_THRESHOLDS[None, :] * n)
    for _ in range(2):  # ceil may be off by one either way through rounding
        m = np.where((m - 1) / n >= RECALL_THRESHOLDS, m - 1, m)
        m = np.where(m / n < RECALL_THRESHOLDS, m + 1, m)
    return m


class MatchTable:
    """COCO AP/AR of weighted image sets, replaying ``COCOeval.accumulate``.

    Args:
        images: per-image matches, in a fixed image order (the order COCOeval would use).
    """

    def __init__(self, images: Sequence[ImageMatches]):
        self.images = list(images)
        self.n = len(self.images)
        self.n_gt = np.array([im.n_gt for im in self.images], dtype=np.float64)
        counts = [im.scores.size for im in self.images]
        self.n_thr = len(IOU_THRESHOLDS)
        scores = np.concatenate([im.scores for im in self.images]) if self.n else np.zeros(0)
        image_of = np.repeat(np.arange(self.n), counts)
        tp = np.concatenate([im.tp for im in self.images], axis=1) if self.n else np.zeros((self.n_thr, 0), bool)
        fp = np.concatenate([im.fp for im in self.images], axis=1) if self.n else np.zeros((self.n_thr, 0), bool)
        # COCOeval.accumulate: concatenate in image order, then a stable sort by -score.
        order = np.argsort(-scores, kind="mergesort")
        self.sorted_scores = scores[order]
        self.sorted_image = image_of[order]
        self.sorted_tp = tp[:, order]
        self.sorted_fp = fp[:, order]
        self._tp_image: list[np.ndarray] = []
        self._fp_between: list[sparse.csr_matrix] = []
        for t in range(self.n_thr):
            tp_pos = np.flatnonzero(self.sorted_tp[t])
            fp_pos = np.flatnonzero(self.sorted_fp[t])
            segment = np.searchsorted(tp_pos, fp_pos, side="left")  # TPs preceding each FP
            keep = segment < tp_pos.size
            # (k, n): FPs of image i between TP k-1 and TP k; their running sum is what precedes TP k
            between = sparse.csr_matrix(
                (np.ones(int(keep.sum())), (segment[keep], self.sorted_image[fp_pos[keep]])), shape=(tp_pos.size, self.n)
            )
            between.sum_duplicates()
            self._tp_image.append(self.sorted_image[tp_pos])
            self._fp_between.append(between)

    def subset(self, index: np.ndarray) -> MatchTable:
        """The table of images ``index`` only (in that order)."""
        return MatchTable([self.images[i] for i in np.asarray(index)])

    def precision_recall(self, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """COCOeval's ``precision`` and ``recall`` arrays for each weighting (area all, maxDets 100).

        Args:
            weights: shape ``(b, n)``, non-negative integer image weights.

        Returns:
            tuple: precision ``(b, t, 101)``, recall ``(b, t)``, number of ground-truth
            instances ``(b,)``; precision and recall are NaN where there is no ground truth.
        """
        w = np.asarray(weights, dtype=np.float64)
        b = w.shape[0]
        w_t = np.ascontiguousarray(w.T)
        npig = w @ self.n_gt
        has_gt = npig > 0
        safe = np.where(has_gt, npig, 1.0)
        needed = _min_true_positives(safe).astype(np.int64)  # (b, 101): recall >= thr_r  <=>  tp_sum >= needed
        top = int(needed.max()) if b else 0
        precision = np.zeros((b, self.n_thr, RECALL_THRESHOLDS.size))
        recall = np.zeros((b, self.n_thr))
        rows = np.arange(b)[:, None]
        for t in range(self.n_thr):
            tp_image = self._tp_image[t]
            k = tp_image.size
            if k == 0:
                continue
            tp_sum = np.cumsum(w[:, tp_image], axis=1)
            fp_sum = np.cumsum((self._fp_between[t] @ w_t).T, axis=1)  # integer-valued, exact
            pr = tp_sum / (fp_sum + tp_sum + _EPS)
            envelope = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]
            # COCOeval: np.searchsorted(rc, recThrs, 'left') = number of TPs with tp_sum < needed,
            # counted on integers: below[b, v] = #{k: tp_sum[b, k] < v}
            codes = rows * (top + 1) + np.minimum(tp_sum.astype(np.int64), top)
            hist = np.bincount(codes.ravel(), minlength=b * (top + 1)).reshape(b, top + 1)
            below = np.concatenate((np.zeros((b, 1), np.int64), np.cumsum(hist, axis=1)[:, :top]), axis=1)
            idx = np.take_along_axis(below, needed, axis=1)
            precision[:, t] = np.where(idx < k, envelope[rows, np.minimum(idx, k - 1)], 0.0)
            recall[:, t] = tp_sum[:, -1] / safe
        precision[~has_gt] = np.nan
        recall[~has_gt] = np.nan
        return precision, recall, npig

    def compute(self, weights: np.ndarray, prefix: str = "") -> dict[str, np.ndarray]:
        """``ap`` (AP@[.5:.95]), ``ap50`` and ``ar100`` for each weighting, as COCOeval.summarize.

        Args:
            weights: shape ``(b, n)``.
            prefix: put before each name (``mask_`` for segmentation).

        Returns:
            dict: name -> shape ``(b,)`` (NaN without ground truth).
        """
        precision, recall, _ = self.precision_recall(weights)
        b = precision.shape[0]
        return {
            f"{prefix}ap50": precision[:, 0, :].mean(axis=1),
            f"{prefix}ap": precision.reshape(b, -1).mean(axis=1),
            f"{prefix}ar100": recall.mean(axis=1),
        }
