"""What every export writer shares: the summary it fills, file writing, image suffixes.

The writers (:mod:`~fracbench.convert.yolo`, :mod:`~fracbench.convert.coco`,
:mod:`~fracbench.convert.imagefolder`, :mod:`~fracbench.convert.nnunet`) import from
here and from :mod:`fracbench.dataset.built`; :mod:`fracbench.convert.export` only
dispatches to them, so no module imports its own importer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fracbench.dataset.built import BuiltDataset
from fracbench.errors import DatasetError

EXPORT_RECORD = "fracbench_export.json"
"""Provenance file written at the root of every export."""

Progress = Callable[[int, int], None]
"""``progress(done, total)``, called after each image."""

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_JPEG_MAGIC = b"\xff\xd8\xff"


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
