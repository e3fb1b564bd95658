"""The explicit schema of every config of the built dataset.

One place names the columns, their types and which config carries which, so
the build, the card's ``dataset_info`` and the ground-truth reader agree.
Coordinates are pixels of the EXIF-corrected image (the annotation frame);
boxes are ``[x, y, w, h]``; polygons are flat COCO lists ``[x1, y1, x2, y2, ...]``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fracbench.vocab import LEGACY_SPLITS_VERSION, TASKS

if TYPE_CHECKING:  # datasets is heavy; imported inside the functions that need it
    import datasets

CONFIGS = (*TASKS, LEGACY_SPLITS_VERSION)
"""Every config a build writes; ``classification`` is the default."""

DEFAULT_CONFIG = "classification"


LABEL_NAMES = ("not_fractured", "fractured")
"""ClassLabel names: index 0 is not fractured, 1 fractured."""

FLAG_COLUMNS = (
    "hand",
    "leg",
    "hip",
    "shoulder",
    "mixed",
    "hardware",
    "multiscan",
    "frontal",
    "lateral",
    "oblique",
)
"""The ``dataset.csv`` flags, one bool column each."""

QUALITY_COLUMNS = ("truncated", "exif_rotated", "label_conflict")
"""Quality flags of the release image (what the build had to fix or decide)."""

PIXEL_COLUMNS = ("image", "mask")
"""Columns holding encoded pixels; ground truth never reads them."""

_EXTRA_COLUMNS = {
    "classification": (),
    "localization": ("boxes",),
    "segmentation": ("boxes", "polygons", "mask"),
    # The authors' split was published for localization and segmentation; polygons
    # are cheap (no mask), so the legacy config carries them as well.
    "legacy": ("boxes", "polygons"),
}


def column_names(config: str) -> tuple[str, ...]:
    """The columns of ``config``, in their stored order.

    Args:
        config: one of :data:`CONFIGS`.

    Returns:
        tuple[str, ...]: column names.

    Raises:
        ValueError: ``config`` is not a known config.
    """
    if config not in _EXTRA_COLUMNS:
        raise ValueError(f"unknown config {config!r}; expected one of {', '.join(CONFIGS)}")
    base = (
        "image",
        "image_id",
        "label",
        "width",
        "height",
        "region",
        "view",
        *FLAG_COLUMNS,
        "fracture_count",
        "group_id",
        "scored",
        *QUALITY_COLUMNS,
    )
    return base + _EXTRA_COLUMNS[config]


def features_for(config: str) -> datasets.Features:
    """The Hugging Face ``Features`` of one config.

    Args:
        config: one of :data:`CONFIGS`.

    Returns:
        datasets.Features: explicit types for every column of :func:`column_names`.
    """
    from datasets import ClassLabel, Features, Image, List, Value

    types = {
        "image": Image(),
        "image_id": Value("string"),
        "label": ClassLabel(names=list(LABEL_NAMES)),
        "width": Value("int32"),
        "height": Value("int32"),
        "region": Value("string"),
        "view": Value("string"),
        **{flag: Value("bool") for flag in FLAG_COLUMNS},
        "fracture_count": Value("int32"),
        "group_id": Value("string"),
        "scored": Value("bool"),
        **{flag: Value("bool") for flag in QUALITY_COLUMNS},
        # boxes: (n_instances, 4) float32 [x, y, w, h]
        "boxes": List(List(Value("float32"), length=4)),
        # polygons: per instance, its polygons, each flat [x1, y1, x2, y2, ...]
        "polygons": List(List(List(Value("float32")))),
        # mask: PNG mode L, 0 background / 1 fracture (union of instances)
        "mask": Image(),
    }
    return Features({name: types[name] for name in column_names(config)})
