"""ImageFolder layout: ``{train,validation,test}/{fractured,not_fractured}/IMGxxxxxxx.ext``.

Read by torchvision ``datasets.ImageFolder``, timm (``--data-dir`` with
``--train-split train --val-split validation``), Keras
``image_dataset_from_directory`` and Hugging Face ``imagefolder``. Those readers
number classes in **alphabetical** order, so ``fractured`` gets index 0 and
``not_fractured`` index 1, the reverse of the fracbench label (1 = fractured):
take the probability of class ``fractured`` as the submission score, or pass
``class_names=["not_fractured", "fractured"]`` to Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from fracbench.convert.common import ExportSummary, image_suffix, write_file
from fracbench.dataset.built import BuiltDataset
from fracbench.vocab import SPLITS

CLASS_DIRS = ("not_fractured", "fractured")
"""Directory per fracbench label (index = label)."""

_COLUMNS = ("image", "image_id", "label")


def write_imagefolder(source: BuiltDataset, tmp: Path, summary: ExportSummary, tick: Callable[[], None]) -> None:
    """Copy every image into ``<split>/<class>/``.

    Args:
        source: the built dataset.
        tmp: the temporary export directory.
        summary: filled in with counts per split and a note on class indices.
        tick: called once per image.
    """
    for split in SPLITS:
        for label in (0, 1):  # both class folders exist even where a split has none of a class
            (tmp / split / CLASS_DIRS[label]).mkdir(parents=True, exist_ok=True)
        for row in source.rows(split, _COLUMNS):
            image_id, data, label = row["image_id"], row["image"]["bytes"], int(row["label"])
            write_file(tmp / split / CLASS_DIRS[label] / f"{image_id}{image_suffix(data, image_id)}", data)
            summary.count(split, label)
            tick()
    summary.notes.append(
        "ImageFolder readers sort classes alphabetically: index 0 = fractured, 1 = not_fractured "
        "(fracbench's label is the reverse); submit P(fractured) as the score"
    )
