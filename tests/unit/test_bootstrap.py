"""Group bootstrap: reproducible, order-free, whole groups, and ~95 % coverage."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from fracbench.metrics.bootstrap import MAX_UNDEFINED_SHARE, draw_groups, paired_difference, percentile_interval, resample_values
from fracbench.metrics.classification import BinaryScores


def test_same_seed_same_draws_other_seed_other_draws():
    groups = [f"G{i // 3}" for i in range(90)]
    a, b = draw_groups(groups, 200, seed=3), draw_groups(groups, 200, seed=3)
    assert np.array_equal(a.counts, b.counts)
    assert not np.array_equal(a.counts, draw_groups(groups, 200, seed=4).counts)
    assert (a.counts.sum(1) == 30).all()


def test_groups_are_resampled_whole():
    groups = [f"G{i % 7}" for i in range(70)]
    r = draw_groups(groups, 50, seed=0)
    w = r.weights(slice(0, 50))
    for g in range(7):
        cols = w[:, [i for i in range(70) if groups[i] == f"G{g}"]]
        assert (cols == cols[:, :1]).all()


def test_draws_do_not_depend_on_image_order():
    groups = [f"G{i // 2}" for i in range(40)]
    perm = np.random.default_rng(1).permutation(40)
    a = draw_groups(groups, 100, seed=9)
    b = draw_groups([groups[i] for i in perm], 100, seed=9)
    assert np.array_equal(a.weights(slice(0, 100))[:, perm], b.weights(slice(0, 100)))


def test_percentile_interval():
    v = np.arange(1001, dtype=float)
    assert percentile_interval(v) == pytest.approx((25.0, 975.0))
    some_nan = v.copy()
    some_nan[: int(MAX_UNDEFINED_SHARE * 1001)] = np.nan
    assert percentile_interval(some_nan) is not None
    some_nan[: int(MAX_UNDEFINED_SHARE * 1001) + 2] = np.nan
    assert percentile_interval(some_nan) is None
    assert percentile_interval(np.zeros(0)) is None


def test_paired_difference():
    rng = np.random.default_rng(0)
    x = rng.normal(size=999)
    same = paired_difference(0.7, 0.7, x, x)
    assert same.difference == 0 and same.p_value == 1.0 and same.ci95 == (0.0, 0.0)
    better = paired_difference(0.8, 0.7, x + 1, x)
    assert better.difference == pytest.approx(0.1) and better.p_value == pytest.approx(2 / 1000)
    assert paired_difference(np.nan, 0.7, x, x).difference is None


def _binormal(rng, n, prevalence, shift):
    y = (rng.random(n) < prevalence).astype(int)
    y[:2] = [0, 1]
    return 1 / (1 + np.exp(-(rng.normal(size=n) + shift * y))), y


def test_auroc_ci_coverage_near_95_percent():
    """200 datasets from a binormal model with known AUROC: the 95 % CI covers it 90-99 % of the time."""
    shift = 1.0
    truth = norm.cdf(shift / np.sqrt(2))
    rng = np.random.default_rng(2024)
    covered = 0
    for k in range(200):
        s, y = _binormal(rng, 200, 0.3, shift)
        r = draw_groups([f"G{i}" for i in range(200)], 400, seed=k)
        ci = percentile_interval(resample_values(_Auroc(s, y), r)["auroc"])
        covered += ci[0] <= truth <= ci[1]
    assert 0.90 <= covered / 200 <= 0.99, covered


def test_group_bootstrap_covers_clustered_data():
    """Images of one group share label and a random effect: resampling groups keeps coverage near 95 %,
    resampling single images (ignoring the groups) does not."""
    shift, sd_group, size = 1.0, 1.0, 4
    truth = norm.cdf(shift / np.sqrt(2 * (1 + sd_group**2)))
    rng = np.random.default_rng(7)
    covered = naive = 0
    for k in range(200):
        n_groups = 60
        y_group = (rng.random(n_groups) < 0.35).astype(int)
        y_group[:2] = [0, 1]
        effect = rng.normal(scale=sd_group, size=n_groups)
        y = np.repeat(y_group, size)
        s = 1 / (1 + np.exp(-(np.repeat(effect, size) + rng.normal(size=n_groups * size) + shift * y)))
        r = draw_groups([f"G{i // size}" for i in range(n_groups * size)], 400, seed=k)
        ci = percentile_interval(resample_values(_Auroc(s, y), r)["auroc"])
        covered += ci[0] <= truth <= ci[1]
        r = draw_groups([f"I{i}" for i in range(n_groups * size)], 400, seed=k)
        ci = percentile_interval(resample_values(_Auroc(s, y), r)["auroc"])
        naive += ci[0] <= truth <= ci[1]
    assert 0.90 <= covered / 200 <= 0.99, covered
    assert naive / 200 < 0.88, naive  # measured 0.81: image-level CIs are too narrow here


class _Auroc(BinaryScores):
    names = ("auroc",)

    def compute(self, weights):
        return super().compute(weights, names=("auroc",))
