"""Bridges between the built dataset and the toolchains researchers already use.

Exports (:func:`fracbench.convert.export.export_dataset`) write the built dataset,
with its frozen splits, in the layouts of Ultralytics YOLO (``yolo``), COCO tools
such as torchvision, detectron2 and pycocotools (``coco``), ImageFolder readers
such as timm, Keras and torchvision (``imagefolder``) and nnU-Net v2 (``nnunet``).
Imports (:func:`fracbench.convert.import_preds.import_predictions`) turn those
tools' prediction files (Ultralytics ``save_txt`` labels, COCO results JSON, a
``image_id,score`` CSV, an nnU-Net v2 prediction folder) into a ``fracbench.submission/v1`` document.

Exports read only the built dataset's parquet files (never the raw release) and
copy the stored image bytes; imports read only the label columns, for image sizes.
See ``docs/CONVERT.md``.
"""

from __future__ import annotations

EXPORT_FORMATS = ("yolo", "coco", "imagefolder", "nnunet")
"""Layouts ``fracbench export`` writes."""

IMPORT_FORMATS = ("yolo", "coco", "csv", "nnunet")
"""Prediction files ``fracbench import-preds`` reads."""

EXPORT_TASKS = {
    "yolo": ("localization", "segmentation"),
    "coco": ("segmentation", "localization"),
    "imagefolder": ("classification",),
    "nnunet": ("segmentation",),
}
"""Tasks each export serves; the first is the default."""

IMPORT_TASKS = {
    "yolo": ("localization", "segmentation", "classification"),
    "coco": ("localization", "segmentation", "classification"),
    "csv": ("classification",),
    "nnunet": ("segmentation", "localization", "classification"),
}
"""Tasks each import can produce; the first is the default."""

__all__ = ["EXPORT_FORMATS", "EXPORT_TASKS", "IMPORT_FORMATS", "IMPORT_TASKS"]
