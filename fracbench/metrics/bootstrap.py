"""Bootstrap confidence intervals over images, resampling whole leakage groups.

A resample draws as many leakage groups as the scored images have, uniformly with
replacement (``numpy.random.default_rng(seed).integers``; groups sorted by
``group_id``, so the draws do not depend on the order of predictions), and gives
every image the number of times its group was drawn as its weight. Metrics are
then evaluated for all weightings at once (see :mod:`fracbench.metrics`), so the
same seed gives the same intervals to the last digit.

Intervals are percentile intervals (``numpy.percentile``, linear interpolation,
2.5th and 97.5th). Resamples where a metric is undefined (e.g. no fractured image
drawn) are left out; when more than :data:`MAX_UNDEFINED_SHARE` of them are, the
interval is not reported (None).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from fracbench.metrics import Evaluation

DEFAULT_RESAMPLES = 1000
MAX_RESAMPLES = 100_000
"""The one bound on user-chosen bootstrap work (CLI flags, stored entries): every draw goes through
:func:`draw_groups`, which refuses more. 100,000 resamples of 816 images take minutes, not hours."""
DEFAULT_SEED = 0
CHUNK = 250
"""Resamples evaluated per batch (bounds memory)."""
MAX_UNDEFINED_SHARE = 0.1
"""Largest share of undefined resamples for which an interval is still reported."""


@dataclass(frozen=True)
class GroupResamples:
    """Bootstrap draws of leakage groups.

    Attributes:
        image_group: shape ``(n,)``, index of each image's group.
        counts: shape ``(n_resamples, n_groups)``, times each group was drawn.
    """

    image_group: np.ndarray
    counts: np.ndarray

    @property
    def n_resamples(self) -> int:
        return self.counts.shape[0]

    def weights(self, rows: slice, index: np.ndarray | None = None) -> np.ndarray:
        """Image weights ``(rows, n)`` (or of images ``index`` only) for a block of resamples."""
        groups = self.image_group if index is None else self.image_group[index]
        return self.counts[rows][:, groups].astype(np.float64)


def draw_groups(group_ids: Sequence[str], n_resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED) -> GroupResamples:
    """Draw ``n_resamples`` resamples of the leakage groups of ``group_ids`` (one id per image).

    Args:
        group_ids: the group of each scored image.
        n_resamples: number of resamples (0 gives none), at most :data:`MAX_RESAMPLES`.
        seed: seed of ``numpy.random.default_rng``.

    Raises:
        ScoringError: ``n_resamples`` outside ``0..MAX_RESAMPLES``.

    Returns:
        GroupResamples: per-group draw counts and the image -> group index.
    """
    if not isinstance(n_resamples, int) or isinstance(n_resamples, bool) or not 0 <= n_resamples <= MAX_RESAMPLES:
        from fracbench.errors import ScoringError

        raise ScoringError(f"bootstrap resamples: expected an integer from 0 to {MAX_RESAMPLES:,}, found {n_resamples!r}")
    names, image_group = np.unique(np.asarray(group_ids, dtype=str), return_inverse=True)
    g = names.size
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, g, size=(n_resamples, g)) if g else np.zeros((n_resamples, 0), int)
    offsets = (np.arange(n_resamples) * g)[:, None]
    counts = np.bincount((draws + offsets).ravel(), minlength=n_resamples * g).reshape(n_resamples, g)
    return GroupResamples(image_group=image_group.reshape(-1), counts=counts)


def resample_values(
    evaluation: Evaluation,
    resamples: GroupResamples,
    index: np.ndarray | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, np.ndarray]:
    """Every metric of ``evaluation`` on every resample.

    Args:
        evaluation: prepared metrics of the images (or of the subgroup ``index``).
        resamples: the group draws of the whole split.
        index: the images ``evaluation`` covers, as indices into the split's scored
            images (None: all of them).
        progress: called with the number of resamples just finished.

    Returns:
        dict: metric name -> shape ``(n_resamples,)``.
    """
    parts: dict[str, list[np.ndarray]] = {k: [] for k in evaluation.names}
    for start in range(0, resamples.n_resamples, CHUNK):
        rows = slice(start, min(start + CHUNK, resamples.n_resamples))
        values = evaluation.compute(resamples.weights(rows, index))
        for k in evaluation.names:
            parts[k].append(values[k])
        if progress is not None:
            progress(rows.stop - rows.start)
    return {k: np.concatenate(v) if v else np.zeros(0) for k, v in parts.items()}


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float] | None:
    """The percentile interval of the defined resample values, or None.

    Args:
        values: shape ``(n_resamples,)``, NaN where undefined.
        level: coverage, 0.95 for a 95 % interval.

    Returns:
        tuple | None: (low, high); None without resamples or when too many are undefined.
    """
    values = np.asarray(values, dtype=np.float64)
    defined = values[np.isfinite(values)]
    if values.size == 0 or defined.size < (1 - MAX_UNDEFINED_SHARE) * values.size:
        return None
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(defined, [tail, 100 - tail])
    return float(low), float(high)


@dataclass(frozen=True)
class PairedDifference:
    """A paired bootstrap comparison of one metric between two sets of predictions.

    Attributes:
        difference: value of A minus value of B on all images.
        ci95: percentile interval of the resampled differences.
        p_value: two-sided: ``min(1, 2 (1 + m) / (n + 1))``, m the resamples whose
            difference has the opposite sign to, or is zero unlike, the observed one
            (``min(#diff <= 0, #diff >= 0)``), n the defined resamples.
        n_defined: resamples where both values were defined.
    """

    difference: float | None
    ci95: tuple[float, float] | None
    p_value: float | None
    n_defined: int


def paired_difference(value_a: float, value_b: float, resampled_a: np.ndarray, resampled_b: np.ndarray) -> PairedDifference:
    """Compare A and B on the same resamples.

    Args:
        value_a, value_b: the metric on all images (NaN if undefined).
        resampled_a, resampled_b: shape ``(n_resamples,)``, the metric on the same resamples.

    Returns:
        PairedDifference: difference, its interval and p-value.
    """
    diff = np.asarray(resampled_a, dtype=np.float64) - np.asarray(resampled_b, dtype=np.float64)
    defined = diff[np.isfinite(diff)]
    point = value_a - value_b
    if not np.isfinite(point):
        return PairedDifference(None, None, None, int(defined.size))
    ci = percentile_interval(diff)
    if defined.size == 0:
        return PairedDifference(float(point), ci, None, 0)
    extreme = min(int(np.count_nonzero(defined <= 0)), int(np.count_nonzero(defined >= 0)))
    p = min(1.0, 2 * (1 + extreme) / (defined.size + 1))
    return PairedDifference(float(point), ci, p, int(defined.size))
