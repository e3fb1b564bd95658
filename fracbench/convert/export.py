"""Export the built dataset, with its splits, in another toolchain's layout.

:func:`export_dataset` is the one entry point; the layouts live in
:mod:`~fracbench.convert.yolo`, :mod:`~fracbench.convert.coco`,
:mod:`~fracbench.convert.imagefolder` and :mod:`~fracbench.convert.nnunet`. Each
reads the rows of the built dataset through
:class:`fracbench.dataset.built.BuiltDataset` (the parquet files of the
``segmentation`` config, which hold every column, checked against
``fracbench.json``), writes into a temporary directory and moves it into place
only when complete (:func:`fracbench.atomic.directory`). Image bytes are copied
as stored (the original JPEG, or the lossless PNG the build made for rotated or
truncated files); only nnU-Net needs them re-encoded (greyscale PNG).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from fracbench.convert import EXPORT_FORMATS, EXPORT_TASKS
from fracbench.convert.common import EXPORT_RECORD, ExportSummary, Progress, write_json
from fracbench.dataset.built import SOURCE_CONFIG, BuiltDataset
from fracbench.errors import DatasetError
from fracbench.vocab import SPLITS

log = logging.getLogger(__name__)

def export_dataset(
    fmt: str,
    out: str | Path,
    *,
    data: str | Path | None = None,
    task: str | None = None,
    overwrite: bool = False,
    progress: Progress | None = None,
    verify: bool = True,
    **options: Any,
) -> ExportSummary:
    """Export the built dataset in the layout of another toolchain.

    Args:
        fmt: ``yolo``, ``coco``, ``imagefolder`` or ``nnunet``.
        out: the directory to create (for ``nnunet``: the ``nnUNet_raw`` folder that
            receives ``DatasetNNN_FracAtlas/``, which is what gets created).
        data: the built dataset (or its parent); None: ``$FRACBENCH_DATA``, then the cache.
        task: which annotations to write; default per format (see
            :data:`fracbench.convert.EXPORT_TASKS`).
        overwrite: replace an existing export.
        progress: optional ``progress(done, total)`` callback, once per image.
        verify: check the parquet files' sha256 against ``fracbench.json`` first.
        **options: format options: ``segment`` (yolo, same as ``task="segmentation"``);
            ``dataset_id`` and ``manifest`` (nnunet).

    Returns:
        ExportSummary: counts per split, objects written and notes.

    Raises:
        DatasetNotFoundError: no built dataset where looked.
        DatasetError: unknown format or task, the target exists without ``overwrite``,
            or the built dataset is inconsistent.
        SplitError: (nnunet) the split manifest cannot be found or read.
    """
    if fmt not in EXPORT_FORMATS:
        raise DatasetError(f"export format {fmt!r} unknown; expected one of {', '.join(EXPORT_FORMATS)}")
    if options.pop("segment", False):
        if task not in (None, "segmentation"):
            raise DatasetError(f"--segment writes segmentation labels; it contradicts task {task!r}")
        task = "segmentation"
    tasks = EXPORT_TASKS[fmt]
    task = task or tasks[0]
    if task not in tasks:
        raise DatasetError(f"the {fmt} export serves task(s) {', '.join(tasks)}, not {task!r}")
    source = BuiltDataset.open(data, verify=verify)
    source.require(SOURCE_CONFIG)
    total = sum(source.num_rows(s) for s in SPLITS)
    if not total:
        raise DatasetError(f"{source.root}: the built dataset has no images to export")
    counter = _Counter(progress, total)
    if fmt == "yolo":
        from fracbench.convert.yolo import write_yolo as writer
    elif fmt == "coco":
        from fracbench.convert.coco import write_coco as writer
    elif fmt == "imagefolder":
        from fracbench.convert.imagefolder import write_imagefolder as writer
    else:
        from fracbench.convert.nnunet import dataset_dirname
        from fracbench.convert.nnunet import write_nnunet as writer

        out = Path(out) / dataset_dirname(int(options.get("dataset_id", 501)))
    out = Path(out)
    summary = ExportSummary(format=fmt, task=task, out=out)
    from fracbench.atomic import directory

    try:
        with directory(out, overwrite=overwrite) as tmp:
            writer(source, tmp, summary, counter, **options)
            write_json(tmp / EXPORT_RECORD, summary.record(source))
    except FileExistsError as exc:
        raise DatasetError(f"{out} already exists; pass --overwrite to replace it or choose another --out") from exc
    log.info("exported %d images to %s (%s)", total, out, fmt)
    return summary


class _Counter:
    """Calls ``progress(done, total)`` once per image."""

    def __init__(self, progress: Progress | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def __call__(self) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)
