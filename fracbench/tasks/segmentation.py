"""Task ``segmentation``: the pixels of every fracture. Main score mask AP50 (COCO segm)."""

from __future__ import annotations

from collections.abc import Sequence

from fracbench.dataset.groundtruth import GTImage
from fracbench.metrics.segmentation import DEFAULT_MASK_THRESHOLD, SEGMENTATION_METRIC_SPECS, SegmentationEvaluation, prepare_segmentation
from fracbench.submission import RLEInstance, SegmentationSubmission


def prepare(images: Sequence[GTImage], submission: SegmentationSubmission) -> SegmentationEvaluation:
    """Rasterise and match the instances of ``images`` (in their order) from a validated submission."""
    by_id = {p.image_id: p.instances for p in submission.predictions}
    instances = [
        [
            (inst.score, {"size": list(inst.rle.size), "counts": inst.rle.counts} if isinstance(inst, RLEInstance) else inst.polygon)
            for inst in by_id[g.image_id]
        ]
        for g in images
    ]
    threshold = DEFAULT_MASK_THRESHOLD if submission.threshold is None else submission.threshold
    return prepare_segmentation(images, instances, threshold)


def _task():
    from fracbench.tasks.spec import TaskSpec

    return TaskSpec(
        name="segmentation",
        description="the pixels of every fracture; scored instance masks (RLE or polygons) per image",
        submission_model=SegmentationSubmission,
        metric_specs=SEGMENTATION_METRIC_SPECS,
        main_score="mask_ap50",
        curves=("pr_iou50",),
        uses_threshold=True,
        prepare=prepare,
    )


TASK = _task()
