"""Opening a built dataset: find it, read ``fracbench.json``, load a config.

``fracbench.json`` is the built dataset's record of itself (versions, release and
manifest identity, files and their sha256, fingerprint); everything that reads a
built dataset goes through :func:`read_metadata` so a missing or foreign directory
fails with one clear message.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fracbench.dataset.features import CONFIGS
from fracbench.dataset.locate import resolve_data_dir
from fracbench.errors import DatasetError
from fracbench.vocab import SPLITS

if TYPE_CHECKING:
    import datasets

METADATA_FILENAME = "fracbench.json"
METADATA_SCHEMA = "fracbench.dataset/v1"
_REQUIRED = ("dataset_version", "fingerprint", "splits", "configs", "files")


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
        raise DatasetError(f"task {task!r} unknown{_did_you_mean(task, CONFIGS)}; expected one of {', '.join(CONFIGS)}")
    if split is not None and split not in SPLITS:
        raise DatasetError(f"split {split!r} unknown{_did_you_mean(split, SPLITS)}; expected one of {', '.join(SPLITS)}")
    root = resolve_data_dir(data)
    meta = read_metadata(root)
    if task not in meta["configs"]:
        raise DatasetError(f"{root}: config {task!r} was not built (built: {', '.join(meta['configs'])})")
    from datasets import load_dataset

    return load_dataset(str(root), task, split=split)


def read_metadata(root: str | Path) -> dict[str, Any]:
    """The ``fracbench.json`` of a built dataset directory.

    Args:
        root: the built dataset directory.

    Returns:
        dict: its content (see ``fracbench.dataset.build``).

    Raises:
        DatasetNotFoundError: no ``fracbench.json`` in ``root``.
        DatasetError: not valid JSON, another schema, or a required key missing.
    """
    from fracbench.errors import DatasetNotFoundError

    path = Path(root) / METADATA_FILENAME
    if not path.is_file():
        raise DatasetNotFoundError(
            f"{path} not found: {root} is not a built fracbench dataset; run `fracbench build --raw RAW_DIR --out DIR`"
        )
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid JSON ({exc}); rebuild with `fracbench build`") from exc
    if not isinstance(meta, dict) or meta.get("schema") != METADATA_SCHEMA:
        found = meta.get("schema") if isinstance(meta, dict) else type(meta).__name__
        raise DatasetError(
            f"{path}: schema expected {METADATA_SCHEMA!r}, found {found!r}; "
            "rebuild with this fracbench version (`fracbench build`)"
        )
    missing = [k for k in _REQUIRED if k not in meta]
    if missing:
        raise DatasetError(f"{path}: missing key(s) {', '.join(missing)}; rebuild with `fracbench build`")
    return meta


def split_files(
    root: str | Path, meta: dict[str, Any], config: str, split: str, *, verify: bool = True
) -> tuple[list[Path], int]:
    """The parquet files of one config split, checked against ``fracbench.json``.

    Args:
        root: the built dataset directory.
        meta: its :func:`read_metadata` content.
        config: a config name.
        split: a split name.
        verify: compare each file's sha256 with the one recorded at build time.

    Returns:
        tuple: the files in order, and the number of rows recorded for the split.

    Raises:
        DatasetError: unknown config or split, a file missing, or a file modified since
            the build.
    """
    from fracbench.dataset.shards import file_sha256

    root = Path(root)
    if config not in meta["configs"]:
        raise DatasetError(f"{root}: config {config!r} was not built (built: {', '.join(meta['configs'])})")
    splits = meta["configs"][config]["splits"]
    if split not in splits:
        raise DatasetError(f"split {split!r} unknown{_did_you_mean(split, list(splits))}; expected one of {', '.join(splits)}")
    entry = splits[split]
    files = []
    for rel in entry["files"]:
        path = root / rel
        if not path.is_file():
            raise DatasetError(f"{path} is missing from the built dataset; rebuild with `fracbench build`")
        if verify and file_sha256(path) != meta["files"].get(rel):
            raise DatasetError(
                f"{path}: sha256 differs from the one recorded in {METADATA_FILENAME} at build time; "
                "the dataset was modified: rebuild it with `fracbench build` (or re-download it)"
            )
        files.append(path)
    return files, int(entry["num_examples"])


def _did_you_mean(word: str, choices: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""
