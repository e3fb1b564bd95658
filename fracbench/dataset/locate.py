"""Where the built dataset lives: ``--data``, then ``$FRACBENCH_DATA``, then the cache dir."""

from __future__ import annotations

import os
from pathlib import Path

from fracbench.errors import DatasetNotFoundError

DATASET_DIRNAME = "fracatlas"


def default_data_dir() -> Path:
    """``$XDG_CACHE_HOME/fracbench/fracatlas`` (``~/.cache/fracbench/fracatlas``)."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "fracbench" / DATASET_DIRNAME


def default_build_dir() -> Path:
    """Where a build goes when no directory is named: the first place :func:`resolve_data_dir` looks.

    ``$FRACBENCH_DATA`` when set, else :func:`default_data_dir`; a dataset built here is found by
    every command and by ``fracbench.load`` without ``--data``.
    """
    return Path(os.environ["FRACBENCH_DATA"]) if os.environ.get("FRACBENCH_DATA") else default_data_dir()


def resolve_data_dir(data: str | Path | None = None) -> Path:
    """Find the built dataset directory.

    Args:
        data: an explicit directory (``--data``); wins over everything else.

    Returns:
        Path: a directory holding ``fracbench.json``.

    Raises:
        DatasetNotFoundError: nothing built where we looked; the message lists where.
    """
    if data is not None:
        candidates = [("--data", Path(data))]
    else:
        candidates = [("$FRACBENCH_DATA" if os.environ.get("FRACBENCH_DATA") else "default cache dir", default_build_dir())]
    for _, path in candidates:
        if (path / "fracbench.json").is_file():
            return path
        if (path / DATASET_DIRNAME / "fracbench.json").is_file():
            return path / DATASET_DIRNAME
    where = ", ".join(f"{how} {path}" for how, path in candidates)
    raise DatasetNotFoundError(
        f"no built fracbench dataset (a directory with fracbench.json) at {where}; "
        "run `fracbench build --raw RAW_DIR --out DIR` or `fracbench download`, "
        "then pass --data DIR or set FRACBENCH_DATA"
    )
