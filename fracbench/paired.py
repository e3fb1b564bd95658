"""Paired comparisons of several submissions on the same resampled leakage groups.

One set of group-bootstrap draws (:func:`fracbench.metrics.bootstrap.draw_groups`,
seeded) is shared by every submission, so the resampled values of two submissions
differ only by their predictions: the difference A - B per resample gives a paired
percentile interval and two-sided p-value (:func:`~fracbench.metrics.bootstrap.paired_difference`).
This module holds what ``fracbench compare`` (any number of submissions) and the
leaderboard's paired ranks (:mod:`fracbench.leaderboard.paired`) share:

* :class:`SharedDraws`: one draw of the split's groups, and each submission's metric on it;
* :func:`holm`: Holm's step-down adjustment of a family of p-values;
* :func:`significance_classes` and :func:`rank_intervals`: ranks from adjusted pairwise tests.

Why Holm: the p-values of pairs sharing an entry are strongly dependent (same
resamples, same predictions on one side); Holm controls the family-wise error rate
under any dependence, like Bonferroni, and is uniformly more powerful than it.
The family is every pair of the submissions compared (every cell of the pairwise
matrix a reader sees), fixed before any test is looked at.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from fracbench.metrics import Evaluation
from fracbench.metrics.bootstrap import GroupResamples, PairedDifference, draw_groups, paired_difference, resample_values

ALPHA = 0.05
"""Family-wise error rate of the paired ranks and of ``compare``'s corrected p-values."""


def holm(p_values: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values (None stays None and is not counted in the family).

    The i-th smallest of m p-values becomes ``max_{j <= i} min(1, (m - j + 1) p_(j))``;
    a hypothesis is rejected at level alpha when its adjusted p-value is at most alpha.

    Args:
        p_values: the raw p-values of the family.

    Returns:
        list: adjusted p-values, in the input order.
    """
    defined = [(p, i) for i, p in enumerate(p_values) if p is not None]
    m = len(defined)
    out: list[float | None] = [None] * len(p_values)
    running = 0.0
    for rank, (p, i) in enumerate(sorted(defined)):
        running = max(running, min(1.0, (m - rank) * p))
        out[i] = running
    return out


@dataclass
class SharedDraws:
    """The group-bootstrap draws of one split, shared by every submission evaluated on them.

    Args:
        group_ids: the leakage group of each scored image (the split's scored images, in order).
        n_resamples: resamples (at most :data:`~fracbench.metrics.bootstrap.MAX_RESAMPLES`).
        seed: the bootstrap seed.
    """

    resamples: GroupResamples
    n_resamples: int
    seed: int

    @classmethod
    def draw(cls, group_ids: Sequence[str], n_resamples: int, seed: int) -> SharedDraws:
        return cls(draw_groups(group_ids, n_resamples, seed), n_resamples, seed)

    def metric(self, evaluation: Evaluation, metric: str) -> tuple[float, np.ndarray]:
        """``metric`` of ``evaluation`` on all images and on every shared resample.

        Returns:
            tuple: the point value (NaN if undefined) and the ``(n_resamples,)`` resampled values.
        """
        point = float(evaluation.compute(np.ones((1, evaluation.n)))[metric][0])
        return point, resample_values(evaluation, self.resamples)[metric]


def compare_pair(a: tuple[float, np.ndarray], b: tuple[float, np.ndarray]) -> PairedDifference:
    """The paired difference A - B from two :meth:`SharedDraws.metric` outputs (one paired pass)."""
    return paired_difference(a[0], b[0], a[1], b[1])


def significance_classes(order: Sequence[str], separated: dict[frozenset[str], bool]) -> dict[str, tuple[int, bool]]:
    """Ranks as significance classes.

    Going down ``order`` (best first), the first entry leads class 1; an entry shares the
    rank of the *leader of the current class* unless the test of the pair (leader, entry)
    separates them, in which case it leads a new class at its own position (competition
    ranking: 1, =1, 3, ...). Comparing with the class leader only keeps classes from chaining.

    Args:
        order: entry keys, best first.
        separated: ``frozenset({a, b}) -> True`` when the corrected paired test separates a and b.

    Returns:
        dict: key -> (rank, tied), tied True when the rank is shared with a better leader.
    """
    out: dict[str, tuple[int, bool]] = {}
    leader, leader_rank = None, 0
    for position, key in enumerate(order, start=1):
        if leader is not None and not separated.get(frozenset((leader, key)), False):
            out[key] = (leader_rank, True)
        else:
            leader, leader_rank = key, position
            out[key] = (position, False)
    return out


def rank_intervals(order: Sequence[str], better: dict[tuple[str, str], bool]) -> dict[str, tuple[int, int]]:
    """The ranks each entry can take given the significant pairwise results.

    An entry's best possible rank is 1 + the entries significantly better than it; its worst
    is n - the entries significantly worse. With Holm-corrected tests, all the intervals hold
    together with probability at least 1 - alpha (they are implied by the rejected pairs).

    Args:
        order: entry keys, best first.
        better: ``(a, b) -> True`` when a is significantly better than b.

    Returns:
        dict: key -> (best rank, worst rank).
    """
    n = len(order)
    return {
        k: (1 + sum(better.get((o, k), False) for o in order if o != k), n - sum(better.get((k, o), False) for o in order if o != k))
        for k in order
    }
