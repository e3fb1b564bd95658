"""The reference baselines by task name (and, for segmentation, by kind).

Kinds:

- ``classification``: EfficientNet-Lite0 classifier (:mod:`.classification`).
- ``localization``: FCOS on EfficientNet-Lite0 + FPN (:mod:`.localization`).
- ``segmentation`` kind ``unet``: a U-Net trained on masks (:mod:`.segmentation`).
- ``segmentation`` kind ``box-ellipse``: the localization network's boxes drawn as
  ellipses (:mod:`.boxseg`); the shipped reference segmentation.
"""

from __future__ import annotations


from fracbench.errors import BaselineError, closest
from fracbench.vocab import TASKS


KINDS = {"classification": ("default",), "localization": ("default",), "segmentation": ("unet", "box-ellipse")}
"""The baseline kinds of each task; the first is what ``baseline train TASK`` trains."""

MODEL_NAMES = {
    ("classification", "default"): "fracbench-ref-efficientnet-lite0-384",
    ("localization", "default"): "fracbench-ref-fcos-lite0-fpn-640",
    ("segmentation", "unet"): "fracbench-baseline-unet-efficientnet-lite0",
    ("segmentation", "box-ellipse"): "fracbench-ref-fcos-lite0-ellipses-640",
}

MODEL_DESCRIPTIONS = {
    ("classification", "default"): "EfficientNet-Lite0 (ImageNet init), 384 px, zoom/rotation/flip jitter, EMA, "
                                   "flip TTA; temperature-scaled; Youden's J threshold",
    ("localization", "default"): "FCOS on EfficientNet-Lite0 + FPN (ImageNet init), trained on 384 px windows of "
                                 "640 px images with negatives, EMA; full-image inference at 640 px",
    ("segmentation", "unet"): "U-Net with EfficientNet-Lite0 encoder (ImageNet init); instances = connected components",
    ("segmentation", "box-ellipse"): "the reference FCOS detector's boxes drawn as inscribed ellipses "
                                     "(scale and score floor fitted on validation)",
}


def get_baseline(task: str, kind: str | None = None):
    """A fresh baseline object for ``task`` (and ``kind``; None: the task's first kind).

    Raises:
        BaselineError: unknown task or kind (with a did-you-mean).
    """
    if task not in KINDS:
        near = closest(task, TASKS)
        hint = f" Did you mean: {near}?" if near else ""
        raise BaselineError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}.{hint}")
    kind = kind or KINDS[task][0]
    if kind not in KINDS[task]:
        raise BaselineError(f"unknown {task} baseline kind {kind!r}; expected one of {', '.join(KINDS[task])}")
    if task == "classification":
        from fracbench.baselines.classification import ClassificationBaseline

        return ClassificationBaseline()
    if task == "localization":
        from fracbench.baselines.localization import LocalizationBaseline

        return LocalizationBaseline()
    if kind == "box-ellipse":
        from fracbench.baselines.boxseg import BoxEllipseSegmentation

        return BoxEllipseSegmentation()
    from fracbench.baselines.segmentation import SegmentationBaseline

    return SegmentationBaseline()


def model_name(task: str, kind: str | None = None) -> str:
    """The submission/leaderboard model name of a baseline kind."""
    return MODEL_NAMES[(task, kind or KINDS[task][0])]


def model_description(task: str, kind: str | None = None) -> str:
    """One line on what the baseline is."""
    return MODEL_DESCRIPTIONS[(task, kind or KINDS[task][0])]
