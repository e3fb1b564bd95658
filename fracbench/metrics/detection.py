"""Localization metrics: COCO box AP, FROC and image-level AUROC from boxes.

Conventions (docs/PROTOCOL.md):

* AP, AP50, AR100 are COCOeval's (single category, every scored image listed, so
  boxes on negative images are false positives; iscrowd 0; maxDets 100; area "all").
* FROC hit criterion: COCO's matching at IoU >= 0.5 (greedy by score, one box per
  lesion; a second box on an already found lesion is a false positive). At a score
  threshold ``s`` (boxes with score >= s kept), sensitivity = matched lesions / all
  lesions, FPs per image = unmatched boxes / all scored images (negatives included).
  ``froc_sensitivity_at_<f>`` is the highest sensitivity over thresholds with at most
  ``f`` FPs per image (0 when no threshold qualifies); ``froc_cpm`` is the mean over
  f in 1/8, 1/4, 1/2, 1, 2, 4, 8.
* ``image_auroc``: image score = its highest box score (0 without boxes), label = fractured.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy import sparse

from fracbench.metrics.classification import BinaryScores
from fracbench.metrics.coco import RECALL_THRESHOLDS, ImageMatches, MatchTable
from fracbench.metrics import Metric, compact_curve

FROC_FP_RATES = (0.125, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0)


def froc_metric_name(rate: float) -> str:
    """``froc_sensitivity_at_0.125`` ... ``froc_sensitivity_at_8``."""
    return f"froc_sensitivity_at_{rate:g}"


LOCALIZATION_METRIC_SPECS = (
    Metric("ap50"), Metric("ap"), Metric("ar100"), Metric("froc_cpm"),
    *(Metric(froc_metric_name(f)) for f in FROC_FP_RATES),
    Metric("image_auroc", needs_negatives=True),
)
LOCALIZATION_METRICS = tuple(m.name for m in LOCALIZATION_METRIC_SPECS)


class FrocTable:
    """FROC of weighted image sets from COCO matches at IoU 0.5.

    Args:
        table: the COCO match table (its first IoU threshold, 0.5, is used).
    """

    def __init__(self, table: MatchTable):
        self.n = table.n
        self.n_gt = table.n_gt
        scores, image = table.sorted_scores, table.sorted_image
        tp, fp = table.sorted_tp[0], table.sorted_fp[0]
        # last position of each run of equal scores: a threshold keeps whole runs
        ends = np.flatnonzero(np.concatenate((scores[1:] != scores[:-1], [True]))) if scores.size else np.zeros(0, int)
        tp_pos, fp_pos = np.flatnonzero(tp), np.flatnonzero(fp)
        group_end = ends[np.searchsorted(ends, tp_pos, side="left")]  # (k,) run end of each TP
        self._tp_image = image[tp_pos]
        self._tp_upto = np.searchsorted(tp_pos, group_end, side="right") - 1  # last TP index within the run
        first = np.searchsorted(group_end, fp_pos, side="left")  # first TP run this FP is counted in
        keep = first < tp_pos.size
        # (k, n): FPs of image i first counted at TP k; their running sum is what scores >= TP k
        self._fp_new = sparse.csr_matrix((np.ones(int(keep.sum())), (first[keep], image[fp_pos[keep]])), shape=(tp_pos.size, self.n))
        self._fp_new.sum_duplicates()
        cum_tp = np.cumsum(tp)[ends] if scores.size else np.zeros(0)
        cum_fp = np.cumsum(fp)[ends] if scores.size else np.zeros(0)
        self._curve = (np.concatenate(([0.0], cum_fp)), np.concatenate(([0.0], cum_tp)))

    def compute(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """FROC sensitivities at each FP rate and their mean, per weighting (NaN without lesions)."""
        w = np.asarray(weights, dtype=np.float64)
        lesions = w @ self.n_gt
        n_images = w.sum(1)
        out = {}
        if self._tp_image.size:
            tp_sum = np.cumsum(w[:, self._tp_image], axis=1)[:, self._tp_upto]
            fp_sum = np.cumsum((self._fp_new @ np.ascontiguousarray(w.T)).T, axis=1)
        else:
            tp_sum = fp_sum = np.zeros((w.shape[0], 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            for rate in FROC_FP_RATES:
                ok = fp_sum <= rate * n_images[:, None]
                best = np.where(ok, tp_sum, 0.0).max(axis=1)
                out[froc_metric_name(rate)] = np.where(lesions > 0, best / np.where(lesions > 0, lesions, 1), np.nan)
        out["froc_cpm"] = np.mean([out[froc_metric_name(r)] for r in FROC_FP_RATES], axis=0)
        return out

    def curve(self) -> dict[str, list[float]]:
        """The FROC curve on all images: FPs per image vs sensitivity, at most 200 points."""
        fp, tp = self._curve
        lesions = float(self.n_gt.sum())
        if not self.n or lesions == 0:
            return {"fp_per_image": [], "sensitivity": []}
        return compact_curve({"fp_per_image": fp / self.n, "sensitivity": tp / lesions})


class LocalizationEvaluation:
    """Every localization metric for weighted image sets.

    Args:
        matches: COCO box matches per scored image.
        labels: shape ``(n,)``, 1 fractured.
        image_scores: shape ``(n,)``, highest box score per image (0 without boxes).
    """

    names = LOCALIZATION_METRICS

    def __init__(self, matches: Sequence[ImageMatches], labels: np.ndarray, image_scores: np.ndarray):
        self.matches = list(matches)
        self.labels = np.asarray(labels)
        self.image_scores = np.asarray(image_scores, dtype=np.float64)
        self.n = len(self.matches)
        self.table = MatchTable(self.matches)
        self.froc = FrocTable(self.table)
        self.image = BinaryScores(self.image_scores, self.labels)

    def subset(self, index: np.ndarray) -> LocalizationEvaluation:
        """The evaluation restricted to images ``index``."""
        index = np.asarray(index)
        return LocalizationEvaluation([self.matches[i] for i in index], self.labels[index], self.image_scores[index])

    def compute(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Metric name -> values ``(b,)`` for weights ``(b, n)``."""
        out = self.table.compute(weights)
        out.update(self.froc.compute(weights))
        out["image_auroc"] = self.image.compute(weights, names=("auroc",))["auroc"]
        return {k: out[k] for k in self.names}

    def curves(self) -> dict[str, dict[str, list[float]]]:
        """FROC and the interpolated precision-recall curve at IoU 0.5."""
        return {"froc": self.froc.curve(), **pr_curve(self.table)}


def pr_curve(table: MatchTable) -> dict[str, dict[str, list[float]]]:
    """COCO's interpolated precision at the 101 recall points, IoU 0.5 (empty without lesions)."""
    precision, _, lesions = table.precision_recall(np.ones((1, table.n)))
    if not lesions[0] > 0:
        return {"pr_iou50": {"recall": [], "precision": []}}
    return {"pr_iou50": {"recall": [round(float(r), 6) for r in RECALL_THRESHOLDS], "precision": [round(float(p), 6) for p in precision[0, 0]]}}
