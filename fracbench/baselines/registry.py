"""The three reference baselines by task name."""

from __future__ import annotations

import difflib

from fracbench.errors import BaselineError

TASKS = ("classification", "localization", "segmentation")

MODEL_NAMES = {
    "classification": "fracbench-baseline-efficientnet-lite0",
    "localization": "fracbench-baseline-fcos-efficientnet-lite0-fpn",
    "segmentation": "fracbench-baseline-unet-efficientnet-lite0",
}

MODEL_DESCRIPTIONS = {
    "classification": "EfficientNet-Lite0 (ImageNet init), fine-tuned; temperature-scaled; Youden's J threshold",
    "localization": "FCOS on EfficientNet-Lite0 + FPN (ImageNet init), trained with negatives",
    "segmentation": "U-Net with EfficientNet-Lite0 encoder (ImageNet init); instances = connected components",
}


def get_baseline(task: str):
    """A fresh baseline object for ``task``.

    Raises:
        BaselineError: unknown task (with a did-you-mean).
    """
    if task == "classification":
        from fracbench.baselines.classification import ClassificationBaseline

        return ClassificationBaseline()
    if task == "localization":
        from fracbench.baselines.localization import LocalizationBaseline

        return LocalizationBaseline()
    if task == "segmentation":
        from fracbench.baselines.segmentation import SegmentationBaseline

        return SegmentationBaseline()
    close = difflib.get_close_matches(str(task), TASKS, n=1)
    hint = f" Did you mean: {close[0]}?" if close else ""
    raise BaselineError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}.{hint}")
