"""Task ``localization``: boxes around every fracture. Main score AP50 (COCO, IoU 0.5)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fracbench.dataset.groundtruth import GTImage
from fracbench.metrics.coco import match_images
from fracbench.metrics.detection import LOCALIZATION_METRIC_SPECS, LocalizationEvaluation
from fracbench.submission import LocalizationSubmission


def prepare(images: Sequence[GTImage], submission: LocalizationSubmission) -> LocalizationEvaluation:
    """Match the boxes of ``images`` (in their order) from a validated submission."""
    boxes = {p.image_id: p.boxes for p in submission.predictions}
    dets = [[{"bbox": b.bbox, "score": b.score} for b in boxes[g.image_id]] for g in images]
    matches = match_images(
        [(g.width, g.height) for g in images],
        [[{"bbox": b} for b in g.boxes] for g in images],
        dets,
        "bbox",
    )
    image_scores = np.array([max((d["score"] for d in ds), default=0.0) for ds in dets], dtype=np.float64)
    labels = np.array([g.label for g in images], dtype=np.int64)
    return LocalizationEvaluation(matches, labels, image_scores)


def _task():
    from fracbench.tasks.spec import TaskSpec

    return TaskSpec(
        name="localization",
        description="a box around every fracture; scored boxes per image",
        submission_model=LocalizationSubmission,
        metric_specs=LOCALIZATION_METRIC_SPECS,
        main_score="ap50",
        curves=("froc", "pr_iou50"),
        uses_threshold=False,
        prepare=prepare,
    )


TASK = _task()
