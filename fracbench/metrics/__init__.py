"""Metrics of the three tasks, each computable for many image weightings at once.

Every task's metrics come as an *evaluation* object prepared once from the ground
truth and the predictions of the scored images (:class:`Evaluation`):
``compute(weights)`` takes a ``(b, n)`` matrix of non-negative integer image
weights and returns each metric as a ``(b,)`` array. Weight 1 for every image is
the reported value; a bootstrap resample (:mod:`fracbench.metrics.bootstrap`) is
a weighting by how often each image was drawn. ``subset(index)`` restricts to a
subgroup. Library code here never prints and never mutates its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass

from typing import Protocol

import numpy as np

@dataclass(frozen=True)
class Metric:
    """One metric as a task declares it: its name, its direction and what it needs.

    Attributes:
        name: the key in a Result's ``metrics``.
        higher_is_better: the direction leaderboards rank and sort by.
        needs_negatives: undefined without non-fractured images (null on the positive-only
            ``legacy`` splits, with a note).
    """

    name: str
    higher_is_better: bool = True
    needs_negatives: bool = False


MAX_CURVE_POINTS = 200
"""Most points a stored curve keeps."""


class Evaluation(Protocol):
    """What :mod:`fracbench.score` needs from a task's prepared metrics."""

    names: tuple[str, ...]
    n: int

    def compute(self, weights: np.ndarray) -> dict[str, np.ndarray]:
        """Metric name -> shape ``(b,)`` values for weights of shape ``(b, n)``; NaN where undefined."""
        ...

    def subset(self, index: np.ndarray) -> Evaluation:
        """The same evaluation on images ``index`` only."""
        ...

    def curves(self) -> dict[str, dict[str, list[float]]]:
        """Curves to store in the Result, each at most :data:`MAX_CURVE_POINTS` points."""
        ...


def compact_curve(columns: dict[str, np.ndarray], max_points: int = MAX_CURVE_POINTS) -> dict[str, list[float]]:
    """Keep at most ``max_points`` evenly spaced points (first and last always), rounded to 6 decimals.

    Args:
        columns: equally long 1-d arrays, e.g. ``{"fpr": ..., "tpr": ...}``.
        max_points: the most points kept.

    Returns:
        dict: the same keys, lists of floats.
    """
    n = len(next(iter(columns.values())))
    if n > max_points:
        keep = np.unique(np.round(np.linspace(0, n - 1, max_points)).astype(int))
    else:
        keep = np.arange(n)
    return {k: [round(float(v), 6) for v in np.asarray(col)[keep]] for k, col in columns.items()}
