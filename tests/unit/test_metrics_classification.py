"""Classification metrics against scikit-learn and hand-written references."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import (
    average_precision_score,
    balanced_accuracy_score,
    brier_score_loss,
    f1_score,
    recall_score,
    roc_auc_score,
    roc_curve,
)

from fracbench.metrics.classification import CLASSIFICATION_METRICS, BinaryScores


def _data(seed: int, n: int = 200, ties: bool = False):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    y[:2] = [0, 1]
    s = 1 / (1 + np.exp(-(y - 0.5) * 1.2 - rng.normal(size=n)))
    if ties:
        s = np.round(s, 1)
    return s, y


def _ece_reference(s, y, w, bins=15):
    total, ece = w.sum(), 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        inside = (s >= lo) & ((s < hi) if b < bins - 1 else (s <= hi))
        if w[inside].sum() == 0:
            continue
        frac = w[inside].sum() / total
        ece += frac * abs(np.average(y[inside], weights=w[inside]) - np.average(s[inside], weights=w[inside]))
    return ece


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn_unweighted_and_weighted(seed, ties):
    s, y = _data(seed, ties=ties)
    rng = np.random.default_rng(100 + seed)
    weights = np.vstack([np.ones(len(s)), rng.integers(0, 4, (4, len(s)))]).astype(float)
    out = BinaryScores(s, y, threshold=0.5).compute(weights)
    for k, w in enumerate(weights):
        if (w * y).sum() == 0 or (w * (1 - y)).sum() == 0:
            continue
        pred = (s >= 0.5).astype(int)
        assert out["auroc"][k] == pytest.approx(roc_auc_score(y, s, sample_weight=w), abs=1e-9)
        assert out["auprc"][k] == pytest.approx(average_precision_score(y, s, sample_weight=w), abs=1e-9)
        assert out["sensitivity"][k] == pytest.approx(recall_score(y, pred, sample_weight=w), abs=1e-12)
        assert out["specificity"][k] == pytest.approx(recall_score(1 - y, 1 - pred, sample_weight=w), abs=1e-12)
        assert out["balanced_accuracy"][k] == pytest.approx(balanced_accuracy_score(y, pred, sample_weight=w), abs=1e-12)
        assert out["f1"][k] == pytest.approx(f1_score(y, pred, sample_weight=w), abs=1e-12)
        assert out["brier"][k] == pytest.approx(brier_score_loss(y, s, sample_weight=w), abs=1e-12)
        assert out["ece"][k] == pytest.approx(_ece_reference(s, y, w), abs=1e-12)
        fpr, tpr, _ = roc_curve(y, s, sample_weight=w, drop_intermediate=False)
        assert out["sensitivity_at_specificity_0.9"][k] == pytest.approx(tpr[fpr <= 0.1 + 1e-12].max(), abs=1e-12)
        assert out["specificity_at_sensitivity_0.9"][k] == pytest.approx((1 - fpr[tpr >= 0.9 - 1e-12]).max(), abs=1e-12)


def test_threshold_is_inclusive():
    s = np.array([0.3, 0.3, 0.7, 0.2])
    y = np.array([1, 0, 1, 0])
    out = BinaryScores(s, y, threshold=0.3).compute(np.ones((1, 4)))
    assert out["sensitivity"][0] == 1.0 and out["specificity"][0] == 0.5


def test_perfect_and_inverted_scores():
    y = np.array([0, 0, 1, 1, 0, 1])
    ones = np.ones((1, 6))
    best = BinaryScores(y.astype(float), y).compute(ones)
    for name in ("auroc", "auprc", "sensitivity", "specificity", "balanced_accuracy", "f1", "sensitivity_at_specificity_0.9", "specificity_at_sensitivity_0.9"):
        assert best[name][0] == 1.0, name
    assert best["ece"][0] == 0.0 and best["brier"][0] == 0.0
    worst = BinaryScores(1.0 - y, y).compute(ones)
    assert worst["auroc"][0] == 0.0 and worst["brier"][0] == 1.0


def test_shuffled_scores_give_chance():
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 20_000)
    s = rng.random(20_000)
    out = BinaryScores(s, y).compute(np.ones((1, y.size)))
    assert abs(out["auroc"][0] - 0.5) < 0.01
    assert abs(out["auprc"][0] - y.mean()) < 0.01


def test_undefined_metrics_are_nan_not_errors():
    out = BinaryScores(np.array([0.2, 0.9]), np.array([0, 0])).compute(np.ones((1, 2)))
    for name in ("auroc", "auprc", "sensitivity", "sensitivity_at_specificity_0.9", "specificity_at_sensitivity_0.9", "balanced_accuracy"):
        assert np.isnan(out[name][0]), name
    assert out["specificity"][0] == 0.5
    assert out["f1"][0] == 0.0  # 2TP / (2TP + FP + FN) = 0 / 1: defined, no positive was found
    zero = BinaryScores(np.array([0.2, 0.9]), np.array([0, 1])).compute(np.zeros((1, 2)))
    assert all(np.isnan(zero[k][0]) for k in CLASSIFICATION_METRICS)


def test_roc_curve_matches_sklearn():
    s, y = _data(3, ties=True)
    fpr, tpr = BinaryScores(s, y).roc_curve()
    ref_fpr, ref_tpr, _ = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(fpr, ref_fpr, atol=1e-12)
    np.testing.assert_allclose(tpr, ref_tpr, atol=1e-12)


def test_inputs_are_not_mutated():
    s, y = _data(1)
    s0, y0 = s.copy(), y.copy()
    w = np.ones((2, s.size))
    BinaryScores(s, y).compute(w)
    assert np.array_equal(s, s0) and np.array_equal(y, y0) and np.all(w == 1)
