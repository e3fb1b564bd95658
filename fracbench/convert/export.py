"""Export the built dataset, with its splits, in another toolchain's layout.

:func:`export_dataset` is the one entry point; the layouts live in
:mod:`~fracbench.convert.yolo`, :mod:`~fracbench.convert.coco`,
:mod:`~fracbench.convert.imagefolder` and :mod:`~fracbench.convert.nnunet`. Each
reads the rows of the built dataset through :class:`BuiltDataset` (the parquet
files of the ``segmentation`` config, which hold every column, checked against
``fracbench.json``), writes into a temporary directory and moves it into place
only when complete (:func:`fracbench.atomic.directory`). Image bytes are copied
as stored (the original JPEG, or the lossless PNG the build made for rotated or
truncated files); only nnU-Net needs them re-encoded (greyscale PNG).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fracbench.convert import EXPORT_FORMATS, EXPORT_TASKS
from fracbench.errors import DatasetError
from fracbench.vocab import SPLITS

log = logging.getLogger(__name__)

"""The built dataset's splits, in order."""

SOURCE_CONFIG = "segmentation"
"""The config whose parquet files hold every column (the others share them)."""

EXPORT_RECORD = "fracbench_export.json"
"""Provenance file written at the root of every export."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each image."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


@dataclass(frozen=True)
class BuiltDataset:
    """A built fracbench dataset opened for export.

    Attributes:
        root: the dataset directory (holding ``fracbench.json``).
        meta: the parsed ``fracbench.json``.
        verify: check each parquet file's sha256 against ``fracbench.json`` before reading.
    """

    root: Path
    meta: dict[str, Any]
    verify: bool = True

    @classmethod
    def open(cls, data: str | Path | None = None, *, verify: bool = True) -> BuiltDataset:
        """Find and open a built dataset.

        Args:
            data: the dataset directory (or its parent); None: ``$FRACBENCH_DATA``, then
                the default cache dir.
            verify: check parquet sha256s when reading.

        Raises:
            DatasetNotFoundError: nothing built where looked.
            DatasetError: ``fracbench.json`` unreadable, or the build lacks the
                ``segmentation`` config every export reads.
        """
        from fracbench.dataset.load import read_metadata
        from fracbench.dataset.locate import resolve_data_dir

        root = resolve_data_dir(data)
        meta = read_metadata(root)
        if SOURCE_CONFIG not in meta["configs"]:
            raise DatasetError(
                f"{root}: config {SOURCE_CONFIG!r} was not built (built: {', '.join(meta['configs'])}); "
                "rebuild with `fracbench build`"
            )
        return cls(root, meta, verify)

    @property
    def splits_version(self) -> str:
        """Version name of the split manifest the dataset was built with (e.g. ``v1``)."""
        return str(self.meta["splits"]["version"])

    @property
    def manifest_sha256(self) -> str:
        """sha256 of the split manifest the dataset was built with."""
        return str(self.meta["splits"]["manifest_sha256"])

    def num_rows(self, split: str) -> int:
        """Images in ``split`` (0 for a split an ``ids=`` subset build left empty)."""
        entry = self.meta["configs"][SOURCE_CONFIG]["splits"].get(split)
        return int(entry["num_examples"]) if entry else 0

    def rows(self, split: str, columns: tuple[str, ...], *, batch_size: int = 16) -> Iterator[dict[str, Any]]:
        """Yield the rows of one split in image-id order, only ``columns`` read.

        Args:
            split: ``train``, ``validation`` or ``test``.
            columns: column names (``image`` and ``mask`` are ``{"bytes", "path"}`` dicts).
            batch_size: rows decoded from parquet at a time (bounds memory on big scans).

        Raises:
            DatasetError: a file missing, modified since the build, unreadable, or its row
                count not the recorded one.
        """
        if not self.num_rows(split):
            return
        import pyarrow as pa
        import pyarrow.parquet as pq

        from fracbench.dataset.load import split_files

        files, expected = split_files(self.root, self.meta, SOURCE_CONFIG, split, verify=self.verify)
        seen = 0
        try:
            for path in files:
                for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_size, columns=list(columns)):
                    for row in batch.to_pylist():
                        seen += 1
                        yield row
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"{self.root}/{SOURCE_CONFIG}/{split}: unreadable parquet ({exc}); rebuild with `fracbench build`") from exc
        if seen != expected:
            raise DatasetError(
                f"{self.root}/{SOURCE_CONFIG}/{split}: {seen} rows, fracbench.json records {expected}; rebuild with `fracbench build`"
            )

    def provenance(self) -> dict[str, Any]:
        """What an export records about its source: versions, fingerprint, manifest."""
        return {
            "dataset_version": self.meta["dataset_version"],
            "fingerprint": self.meta["fingerprint"],
            "splits_version": self.splits_version,
            "manifest_sha256": self.manifest_sha256,
            "subset": bool(self.meta.get("subset", False)),
            "missing": len(self.meta.get("missing", [])),
        }


@dataclass
class ExportSummary:
    """What an export wrote.

    Attributes:
        format: ``yolo``, ``coco``, ``imagefolder`` or ``nnunet``.
        task: the task whose annotations were written.
        out: the directory written (for nnU-Net, ``OUT/DatasetNNN_FracAtlas``).
        images: images per split (the export's own split names, e.g. YOLO's ``val``).
        fractured: fractured images per split.
        objects: annotation objects written (boxes, polygons or instances; 0 for ImageFolder).
        notes: things a user should know about this export (clipping, re-encoding, next steps).
    """

    format: str
    task: str
    out: Path
    images: dict[str, int] = field(default_factory=dict)
    fractured: dict[str, int] = field(default_factory=dict)
    objects: int = 0
    notes: list[str] = field(default_factory=list)

    def count(self, split: str, label: int) -> None:
        """Record one image of ``split``."""
        self.images[split] = self.images.get(split, 0) + 1
        self.fractured[split] = self.fractured.get(split, 0) + int(label)

    def record(self, source: BuiltDataset) -> dict[str, Any]:
        """The ``fracbench_export.json`` content: format, source identity, counts."""
        from fracbench import __version__

        return {
            "schema": "fracbench.export/v1",
            "format": self.format,
            "task": self.task,
            "fracbench_version": __version__,
            "source": source.provenance(),
            "images": self.images,
            "fractured": self.fractured,
            "objects": self.objects,
            "notes": self.notes,
        }


def image_suffix(data: bytes, image_id: str) -> str:
    """The file extension of stored image bytes, from their magic number.

    Raises:
        DatasetError: neither PNG nor JPEG.
    """
    if data.startswith(_PNG_MAGIC):
        return ".png"
    if data.startswith(_JPEG_MAGIC):
        return ".jpg"
    raise DatasetError(
        f"image {image_id}: stored bytes start {data[:4]!r}, expected a PNG or JPEG; rebuild with `fracbench build`"
    )


def write_file(path: Path, data: bytes) -> None:
    """Write one file inside an export's temporary directory (the directory move is the atomic step)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def write_json(path: Path, obj: Any, *, indent: int | None = 2) -> None:
    """Write JSON (UTF-8, trailing newline) inside an export's temporary directory."""
    text = json.dumps(obj, indent=indent, separators=None if indent else (",", ":"))
    write_file(path, (text + "\n").encode("utf-8"))


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
        from fracbench.convert.nnunet import dataset_dirname, write_nnunet as writer

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
