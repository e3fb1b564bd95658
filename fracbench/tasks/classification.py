"""Task ``classification``: is there a fracture on the image? Main score AUROC."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fracbench.dataset.groundtruth import GTImage
from fracbench.metrics.classification import CLASSIFICATION_METRIC_SPECS, CLASSIFICATION_METRICS, DEFAULT_THRESHOLD, BinaryScores
from fracbench.submission import ClassificationSubmission


class ClassificationEvaluation(BinaryScores):
    """:class:`BinaryScores` with the task's metric names and ROC curve."""

    names = CLASSIFICATION_METRICS

    def subset(self, index: np.ndarray) -> ClassificationEvaluation:
        return ClassificationEvaluation(self.scores[index], self.labels[index], self.threshold)

    def curves(self) -> dict[str, dict[str, list[float]]]:
        from fracbench.metrics import compact_curve

        if self.labels.min(initial=1) == self.labels.max(initial=0):
            return {"roc": {"fpr": [], "tpr": []}}
        fpr, tpr = self.roc_curve()
        return {"roc": compact_curve({"fpr": fpr, "tpr": tpr})}


def prepare(images: Sequence[GTImage], submission: ClassificationSubmission) -> ClassificationEvaluation:
    """Scores of ``images`` (in their order) from a validated submission."""
    scores = {p.image_id: p.score for p in submission.predictions}
    threshold = DEFAULT_THRESHOLD if submission.threshold is None else submission.threshold
    return ClassificationEvaluation(
        np.array([scores[g.image_id] for g in images], dtype=np.float64),
        np.array([g.label for g in images], dtype=np.int64),
        threshold,
    )


def _task():
    from fracbench.tasks.spec import TaskSpec

    return TaskSpec(
        name="classification",
        description="fracture or not, per image; score = probability of fracture",
        submission_model=ClassificationSubmission,
        metric_specs=CLASSIFICATION_METRIC_SPECS,
        main_score="auroc",
        curves=("roc",),
        uses_threshold=True,
        prepare=prepare,
    )


TASK = _task()
