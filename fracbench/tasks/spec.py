"""What a task is scored on and how: :class:`TaskSpec` (the task modules declare one each)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fracbench.dataset.groundtruth import GTImage
from fracbench.metrics import Evaluation, Metric


@dataclass(frozen=True)
class TaskSpec:
    """What a task is scored on and how.

    Attributes:
        name: ``classification``, ``localization`` or ``segmentation``.
        description: one line for tables and docs.
        submission_model: the pydantic model of its submissions.
        metric_specs: every metric with its direction and needs, in report order.
        main_score: the metric leaderboards rank by.
        curves: names of the curves stored in a Result.
        uses_threshold: whether thresholded metrics use the submission's ``threshold``.
        prepare: ``(scored images, submission) -> Evaluation``.
    """

    name: str
    description: str
    submission_model: type
    metric_specs: tuple[Metric, ...]
    main_score: str
    curves: tuple[str, ...]
    uses_threshold: bool
    prepare: Callable[[Sequence[GTImage], Any], Evaluation]

    @property
    def metrics(self) -> tuple[str, ...]:
        """Every metric name, in report order."""
        return tuple(m.name for m in self.metric_specs)

    @property
    def higher_is_better(self) -> Mapping[str, bool]:
        """Each metric's direction, as declared beside it."""
        return {m.name: m.higher_is_better for m in self.metric_specs}

    @property
    def needs_negatives(self) -> tuple[str, ...]:
        """Metrics undefined without non-fractured images (null on the positive-only ``legacy`` splits)."""
        return tuple(m.name for m in self.metric_specs if m.needs_negatives)

    def operating_threshold(self, submitted: float | None) -> float | None:
        """The threshold thresholded metrics use: the submitted one, else the protocol's 0.5."""
        if not self.uses_threshold:
            return None
        return 0.5 if submitted is None else float(submitted)
