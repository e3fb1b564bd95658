"""COCO layout: ``annotations/instances_{train,validation,test}.json`` and ``images/``.

Every image of a split is listed, negatives included (COCO evaluation needs them
to count false positives). Category id is **1** ``fractured``: the FracAtlas
release's own COCO file uses id 0, but torchvision's detection models and
detectron2/MMDetection conventions reserve label 0 for the background, so a
0-based foreground class would be silently trained as background. Image ids are
the digits of the FracAtlas id (``IMG0000019`` → 19), so a COCO results file from
any tool maps back to the image without a lookup table; annotation ids start at 1
(pycocotools' matcher treats id 0 as "unmatched").

``area`` is the polygon area (shoelace, summed over an instance's polygons, the
convention of the release's own file) and, without polygons, ``w * h``.
Coordinates are the stored ground truth, unchanged: pixels of the EXIF-corrected
image, boxes ``[x, y, w, h]``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fracbench.convert.export import BuiltDataset, ExportSummary, image_suffix, write_file, write_json

CATEGORY = {"id": 1, "name": "fractured", "supercategory": "fracture"}
"""The one COCO category of every fracbench export."""

LICENSE = {"id": 1, "name": "CC BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"}

_ID = re.compile(r"^IMG(\d{7})$")
_COLUMNS = ("image", "image_id", "label", "width", "height", "group_id", "scored", "boxes", "polygons")


def coco_image_id(image_id: str) -> int:
    """The integer COCO id of a FracAtlas image: the digits of its id (``IMG0000019`` → 19).

    Raises:
        ValueError: ``image_id`` is not ``IMG`` + 7 digits.
    """
    m = _ID.match(image_id)
    if not m:
        raise ValueError(f"image id {image_id!r} is not IMG + 7 digits")
    return int(m.group(1))


def fracbench_image_id(coco_id: int) -> str:
    """Inverse of :func:`coco_image_id`: ``19`` → ``IMG0000019``."""
    return f"IMG{int(coco_id):07d}"


def polygon_area(polygon: Sequence[float]) -> float:
    """Area of a simple flat ``[x1, y1, x2, y2, ...]`` polygon (shoelace formula)."""
    xs, ys = polygon[0::2], polygon[1::2]
    n = len(xs)
    twice = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
    return abs(twice) / 2.0


def annotations_of(row: dict[str, Any], next_id: int, *, polygons: bool) -> list[dict[str, Any]]:
    """The COCO annotations of one image, ids from ``next_id`` on.

    Args:
        row: a built-dataset row (``image_id``, ``boxes``, ``polygons``).
        next_id: the id of the first annotation.
        polygons: include ``segmentation`` (and take ``area`` from it).

    Returns:
        list: one annotation per instance, in the dataset's instance order.
    """
    out = []
    for k, box in enumerate(row["boxes"]):
        ann: dict[str, Any] = {
            "id": next_id + k,
            "image_id": coco_image_id(row["image_id"]),
            "category_id": CATEGORY["id"],
            "bbox": [float(v) for v in box],
            "iscrowd": 0,
        }
        instance = row["polygons"][k] if polygons and k < len(row["polygons"]) else []
        if instance:
            ann["segmentation"] = [[float(v) for v in p] for p in instance]
            ann["area"] = sum(polygon_area(p) for p in instance)
        else:
            ann["area"] = float(box[2]) * float(box[3])
        out.append(ann)
    return out


def coco_document(rows: list[dict[str, Any]], split: str, source: BuiltDataset, *, polygons: bool) -> dict[str, Any]:
    """The COCO instances document of one split.

    Args:
        rows: the split's rows (``image`` may be absent: only its stored name is used).
        split: the split name, recorded in ``info``.
        source: the built dataset (for versions).
        polygons: include segmentations.

    Returns:
        dict: ``info``, ``licenses``, ``images``, ``annotations``, ``categories``.
    """
    images, annotations = [], []
    for row in rows:
        images.append({
            "id": coco_image_id(row["image_id"]),
            "file_name": row["file_name"],
            "width": int(row["width"]),
            "height": int(row["height"]),
            "license": LICENSE["id"],
            # fracbench extras (ignored by COCO tools): the id, label and scoring flag
            "fracbench_id": row["image_id"],
            "label": int(row["label"]),
            "group_id": row["group_id"],
            "scored": bool(row["scored"]),
        })
        annotations.extend(annotations_of(row, len(annotations) + 1, polygons=polygons))
    return {
        "info": {
            "description": f"FracAtlas, fracbench {split} split (splits {source.splits_version})",
            "version": source.meta["dataset_version"],
            "url": "https://doi.org/10.1038/s41597-023-02432-4",
            "contributor": "Abedeen et al. (FracAtlas); fracbench export",
            "year": 2023,
            "fracbench_fingerprint": source.meta["fingerprint"],
            "manifest_sha256": source.manifest_sha256,
        },
        "licenses": [LICENSE],
        "images": images,
        "annotations": annotations,
        "categories": [CATEGORY],
    }


def write_coco(source: BuiltDataset, tmp: Path, summary: ExportSummary, tick: Callable[[], None]) -> None:
    """Write ``images/`` and one ``annotations/instances_<split>.json`` per split.

    Args:
        source: the built dataset.
        tmp: the temporary export directory.
        summary: filled in; ``summary.task`` ``localization`` leaves out ``segmentation``.
        tick: called once per image.
    """
    polygons = summary.task == "segmentation"
    for split in ("train", "validation", "test"):
        rows = []
        for row in source.rows(split, _COLUMNS):
            data, image_id = row.pop("image")["bytes"], row["image_id"]
            name = f"{image_id}{image_suffix(data, image_id)}"
            write_file(tmp / "images" / name, data)
            row["file_name"] = name
            rows.append(row)
            summary.count(split, row["label"])
            tick()
        doc = coco_document(rows, split, source, polygons=polygons)
        summary.objects += len(doc["annotations"])
        write_json(tmp / "annotations" / f"instances_{split}.json", doc, indent=None)
    summary.notes.append(
        "category id 1 = fractured (the release's own COCO file uses 0; 0 is background for torchvision and detectron2); "
        "image id = the digits of the FracAtlas id (IMG0000019 -> 19)"
    )
    if not polygons:
        summary.notes.append("no 'segmentation' written (task localization); area is w*h")
    summary.notes.append(
        f"torchvision: CocoDetection('{summary.out}/images', '{summary.out}/annotations/instances_train.json')"
    )
