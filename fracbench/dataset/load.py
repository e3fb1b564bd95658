"""Loading one config of a built dataset with ``datasets.load_dataset``.

The directory is found and its ``fracbench.json`` read by
:class:`fracbench.dataset.built.BuiltDataset`, so a missing or foreign directory fails
with one clear message before ``datasets`` is imported.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from fracbench.dataset.built import METADATA_FILENAME, METADATA_SCHEMA, BuiltDataset  # noqa: F401 (re-exported)
from fracbench.dataset.features import CONFIGS
from fracbench.errors import DatasetError, did_you_mean
from fracbench.vocab import SPLITS

if TYPE_CHECKING:
    import datasets



def load(
    task: str = "classification", split: str | None = "train", data: str | Path | None = None
) -> datasets.Dataset | datasets.DatasetDict:
    """Load one config of the built dataset with ``datasets.load_dataset``.

    Args:
        task: ``classification``, ``localization``, ``segmentation`` or ``legacy``.
        split: ``train``, ``validation``, ``test``, or None for all three.
        data: the built dataset directory (or its parent); None: ``$FRACBENCH_DATA``, then
            the default cache dir.

    Returns:
        datasets.Dataset: the split (a ``DatasetDict`` when ``split`` is None).

    Raises:
        DatasetNotFoundError: no built dataset where looked (the message says where).
        DatasetError: unknown task or split, or the directory is not a fracbench build.
    """
    if task not in CONFIGS:
        raise DatasetError(f"task {task!r} unknown{did_you_mean(task, CONFIGS)}; expected one of {', '.join(CONFIGS)}")
    if split is not None and split not in SPLITS:
        raise DatasetError(f"split {split!r} unknown{did_you_mean(split, SPLITS)}; expected one of {', '.join(SPLITS)}")
    built = BuiltDataset.open(data, verify=False)
    built.require(task)
    from datasets import load_dataset

    return load_dataset(str(built.root), task, split=split)
