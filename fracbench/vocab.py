"""The benchmark's vocabulary, defined once: tasks, splits, splits versions.

Every module that names a task, a split or a splits version imports it from here.
"""

from __future__ import annotations

TASKS = ("classification", "localization", "segmentation")
"""The benchmark's tasks, in the order they are documented."""

SPLITS = ("train", "validation", "test")
"""The splits of a splits version, in order."""

SCORABLE_SPLITS = ("validation", "test")
"""Splits a submission may be made for (train is never scored)."""

SPLITS_VERSION = "v1"
"""The current frozen splits (``fracbench/splits/v1``)."""

LEGACY_SPLITS_VERSION = "legacy"
"""The authors' split (``Utilities/Fracture Split``): fractured images only, never on a leaderboard."""

SPLITS_VERSIONS = (SPLITS_VERSION, LEGACY_SPLITS_VERSION)
"""Splits versions a submission may declare: ``v1`` (the benchmark) or ``legacy``
(the authors' positive-only split, for comparison with published numbers only)."""


def unscorable_reason(task: str | None, splits_version: str | None) -> str | None:
    """Why ``task`` cannot be scored on ``splits_version``, or None when it can.

    Classification needs negatives (AUROC, specificity, calibration), and the legacy
    split is positive-only. The scorer, the validator and the loaders all ask here.
    """
    if task == "classification" and splits_version == LEGACY_SPLITS_VERSION:
        return (
            "classification cannot be scored on splits 'legacy': the authors' split is positive-only (every image "
            "fractured), so AUROC, specificity and calibration are undefined; score classification on splits v1"
        )
    return None
