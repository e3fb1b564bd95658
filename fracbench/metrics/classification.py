"""Image-level classification metrics, computed for many weightings of the images at once.

Every metric is a function of per-image scores and labels with integer image
weights: weight 1 for every image is the plain metric, a bootstrap resample is a
weighting (how often each image was drawn). :class:`BinaryScores` sorts once and
then evaluates a whole ``(n_resamples, n_images)`` weight matrix with vectorised
numpy. With unit weights the values equal scikit-learn's (tested).

Conventions (docs/PROTOCOL.md):

* a prediction is positive when ``score >= threshold``;
* ``auroc`` counts ties as half (Mann-Whitney), ``auprc`` is average precision
  (sum over thresholds of recall increase x precision, no interpolation);
* ``sensitivity_at_specificity_0.9``: the highest sensitivity among ROC operating
  points with specificity >= 0.9; ``specificity_at_sensitivity_0.9`` likewise;
* ``ece``: 15 equal-width bins, image in bin ``min(floor(15 * score), 14)``,
  sum over bins of (share of images) x |fracture rate - mean score|;
* a metric is NaN (reported null) where undefined, e.g. AUROC without negatives.
"""

from __future__ import annotations

import numpy as np

from fracbench.metrics import Metric

CLASSIFICATION_METRIC_SPECS = (  # every one needs both classes
    Metric("auroc", needs_negatives=True),
    Metric("auprc", needs_negatives=True),
    Metric("sensitivity", needs_negatives=True),
    Metric("specificity", needs_negatives=True),
    Metric("sensitivity_at_specificity_0.9", needs_negatives=True),
    Metric("specificity_at_sensitivity_0.9", needs_negatives=True),
    Metric("balanced_accuracy", needs_negatives=True),
    Metric("f1", needs_negatives=True),
    Metric("ece", higher_is_better=False, needs_negatives=True),
    Metric("brier", higher_is_better=False, needs_negatives=True),
)
CLASSIFICATION_METRICS = tuple(m.name for m in CLASSIFICATION_METRIC_SPECS)
DEFAULT_THRESHOLD = 0.5
"""Operating threshold when the submission gives none."""
ECE_BINS = 15


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with NaN where ``den`` is 0."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1), np.nan)


class BinaryScores:
    """Scores and 0/1 labels of images, ready for weighted evaluation.

    Args:
        scores: shape ``(n,)``, probabilities in [0, 1].
        labels: shape ``(n,)``, 1 fractured, 0 not.
        threshold: operating threshold for the thresholded metrics.
    """

    def __init__(self, scores: np.ndarray, labels: np.ndarray, threshold: float = DEFAULT_THRESHOLD):
        self.scores = np.asarray(scores, dtype=np.float64)
        self.labels = np.asarray(labels, dtype=np.int64)
        if self.scores.shape != self.labels.shape or self.scores.ndim != 1:
            raise ValueError(f"scores and labels must be 1-d of one length, got {self.scores.shape} and {self.labels.shape}")
        self.threshold = float(threshold)
        self.n = self.scores.size
        order = np.argsort(self.scores, kind="mergesort")
        self._order = order
        sorted_scores = self.scores[order]
        # start of each run of equal scores (ascending)
        self._starts = np.flatnonzero(np.concatenate(([True], sorted_scores[1:] != sorted_scores[:-1]))) if self.n else np.zeros(0, int)
        y = self.labels.astype(np.float64)
        self._pos = y
        self._neg = 1.0 - y
        self._predicted = (self.scores >= self.threshold).astype(np.float64)
        bins = np.clip(np.floor(self.scores * ECE_BINS), 0, ECE_BINS - 1).astype(np.int64)
        self._bin_onehot = np.zeros((self.n, ECE_BINS))
        self._bin_onehot[np.arange(self.n), bins] = 1.0

    def subset(self, index: np.ndarray) -> BinaryScores:
        """The same evaluation restricted to images ``index``."""
        return BinaryScores(self.scores[index], self.labels[index], self.threshold)

    def compute(self, weights: np.ndarray, names: tuple[str, ...] = CLASSIFICATION_METRICS) -> dict[str, np.ndarray]:
        """Every metric for every row of ``weights``.

        Args:
            weights: shape ``(b, n)``, non-negative integer weights of the images.
            names: which metrics to compute.

        Returns:
            dict: metric name -> shape ``(b,)`` float64 (NaN where undefined).
        """
        w = np.asarray(weights, dtype=np.float64)
        b = w.shape[0]
        if self.n == 0:
            return {k: np.full(b, np.nan) for k in names}
        wp, wn = w * self._pos, w * self._neg
        n_pos, n_neg, total = wp.sum(1), wn.sum(1), w.sum(1)
        out: dict[str, np.ndarray] = {}
        need_curve = {"auroc", "auprc", "sensitivity_at_specificity_0.9", "specificity_at_sensitivity_0.9"} & set(names)
        if need_curve:
            # weight of positives / negatives at each distinct score, ascending: (b, u)
            pos_u = np.add.reduceat(wp[:, self._order], self._starts, axis=1)
            neg_u = np.add.reduceat(wn[:, self._order], self._starts, axis=1)
            if "auroc" in names:
                below = np.cumsum(neg_u, axis=1) - neg_u
                wins = (pos_u * (below + 0.5 * neg_u)).sum(1)
                out["auroc"] = _ratio(wins, n_pos * n_neg)
            # descending thresholds: cumulative true / false positives
            tp = np.cumsum(pos_u[:, ::-1], axis=1)
            fp = np.cumsum(neg_u[:, ::-1], axis=1)
            if "auprc" in names:
                precision = np.divide(tp, tp + fp, out=np.zeros_like(tp), where=(tp + fp) > 0)
                out["auprc"] = _ratio((pos_u[:, ::-1] * precision).sum(1), n_pos)
            if "sensitivity_at_specificity_0.9" in names:
                ok = 10 * fp <= n_neg[:, None]
                best = np.where(ok, tp, 0.0).max(1)
                out["sensitivity_at_specificity_0.9"] = np.where(n_neg > 0, _ratio(best, n_pos), np.nan)
            if "specificity_at_sensitivity_0.9" in names:
                ok = 10 * tp >= 9 * n_pos[:, None]
                best = np.where(ok, n_neg[:, None] - fp, -1.0).max(1)
                out["specificity_at_sensitivity_0.9"] = np.where((n_pos > 0) & (best >= 0), _ratio(best, n_neg), np.nan)
        tp_t = wp @ self._predicted
        fp_t = wn @ self._predicted
        sens = _ratio(tp_t, n_pos)
        spec = _ratio(n_neg - fp_t, n_neg)
        out["sensitivity"] = sens
        out["specificity"] = spec
        out["balanced_accuracy"] = (sens + spec) / 2
        out["f1"] = _ratio(2 * tp_t, 2 * tp_t + fp_t + (n_pos - tp_t))
        if "ece" in names:
            gap = (wp - w * self.scores) @ self._bin_onehot
            out["ece"] = _ratio(np.abs(gap).sum(1), total)
        if "brier" in names:
            out["brier"] = _ratio(w @ (self.scores - self._pos) ** 2, total)
        return {k: out[k] for k in names}

    def roc_curve(self) -> tuple[np.ndarray, np.ndarray]:
        """The empirical ROC curve (unit weights): fpr, tpr from (0, 0) to (1, 1)."""
        ones = np.ones((1, self.n))
        pos_u = np.add.reduceat((ones * self._pos)[:, self._order], self._starts, axis=1)[0]
        neg_u = np.add.reduceat((ones * self._neg)[:, self._order], self._starts, axis=1)[0]
        tp = np.concatenate(([0.0], np.cumsum(pos_u[::-1])))
        fp = np.concatenate(([0.0], np.cumsum(neg_u[::-1])))
        return _ratio(fp, np.full_like(fp, fp[-1])), _ratio(tp, np.full_like(tp, tp[-1]))


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """The plain AUROC of one score vector (unit weights): the scorer's definition, ties as half."""
    y = np.asarray(labels)
    return float(BinaryScores(np.asarray(scores, dtype=np.float64), y).compute(np.ones((1, len(y))), ("auroc",))["auroc"][0])
