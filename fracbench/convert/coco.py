"""COCO: the ``annotations/instances_<split>.json`` + ``images/`` export, and reading results lists.

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

:func:`read_coco_results` reads a COCO results list (pycocotools ``loadRes`` input,
detectron2's ``coco_instances_results.json``, MMDetection's ``.bbox.json``/``.segm.json``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from fracbench.convert.common import ExportSummary, image_suffix, write_file, write_json
from fracbench.convert.detections import (
    Detection,
    file_stem,
    load_json,
    polygon_box,
    predictions_error,
)
from fracbench.dataset.built import BuiltDataset
from fracbench.errors import SubmissionError
from fracbench.vocab import SPLITS

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
            "version": source.dataset_version,
            "url": "https://doi.org/10.1038/s41597-023-02432-4",
            "contributor": "Abedeen et al. (FracAtlas); fracbench export",
            "year": 2023,
            "fracbench_fingerprint": source.fingerprint,
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
    for split in SPLITS:
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


def read_coco_results(
    path: str | Path, ids: set[str], *, annotations: str | Path | None = None, category_id: int | None = None
) -> dict[str, list[Detection]]:
    """Read a COCO results list.

    Args:
        path: the results JSON (a list of detections).
        ids: every image id of the built dataset.
        annotations: optional COCO file whose ``images`` map the results' integer ids to
            file names (default: the ids of ``fracbench export coco``).
        category_id: keep only this category (default: every detection).

    Returns:
        dict: detections by image id.

    Raises:
        SubmissionError: unreadable JSON, not a list, entries without image id, score or
            geometry, or image ids that are no image of the dataset.
    """
    data = load_json(path)
    if not isinstance(data, list):
        raise SubmissionError(f"{path}: expected a COCO results list [{{image_id, category_id, bbox, score}}, ...], found a JSON {type(data).__name__}")
    by_int = _coco_id_table(annotations) if annotations is not None else None
    out: dict[str, list[Detection]] = {}
    problems = []
    for i, r in enumerate(data):
        if not isinstance(r, dict) or "image_id" not in r or "score" not in r:
            problems.append(f"[{i}]: expected an object with image_id and score")
            continue
        if category_id is not None and r.get("category_id") != category_id:
            continue
        image_id = _coco_image(r["image_id"], ids, by_int)
        if image_id is None:
            problems.append(f"[{i}]: image_id {r['image_id']!r} is no image of the dataset")
            continue
        det, why = _coco_detection(r)
        if why:
            problems.append(f"[{i}] ({image_id}): {why}")
            continue
        out.setdefault(image_id, []).append(det)
    if problems:
        raise predictions_error(path, "not a COCO results list for this dataset", problems)
    return out


def _coco_id_table(annotations: str | Path) -> dict[int, str]:
    doc = load_json(annotations)
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list):
        raise SubmissionError(f"{annotations}: expected a COCO annotation file with an 'images' list")
    return {img["id"]: file_stem(img.get("file_name", "")) for img in images if isinstance(img, dict) and "id" in img}


def _coco_image(value: Any, ids: set[str], by_int: dict[int, str] | None) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        image_id = by_int.get(value) if by_int is not None else f"IMG{value:07d}"
    elif isinstance(value, str):
        image_id = file_stem(value)
    else:
        return None
    return image_id if image_id in ids else None


def _coco_detection(r: dict[str, Any]) -> tuple[Detection | None, str | None]:
    score = r["score"]
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0.0 <= score <= 1.0:
        return None, f"score {score!r} is not a number in 0..1"
    det = Detection(float(score))
    bbox = r.get("bbox")
    if bbox is not None:
        if not (isinstance(bbox, list) and len(bbox) == 4 and all(isinstance(v, (int, float)) for v in bbox)):
            return None, f"bbox {bbox!r} is not [x, y, w, h]"
        det.bbox = [float(v) for v in bbox]
    seg = r.get("segmentation")
    if isinstance(seg, dict):
        det.rle = _compressed_rle(seg)
        if det.rle is None:
            return None, "segmentation is not a COCO RLE {size: [h, w], counts}"
    elif isinstance(seg, list) and seg:
        polygons = seg if isinstance(seg[0], list) else [seg]
        try:
            det.polygon = [[float(v) for v in p] for p in polygons]
        except (TypeError, ValueError):
            return None, "segmentation is neither COCO RLE nor a list of flat [x1, y1, ...] polygons"
    if det.bbox is None and det.rle is not None:
        from pycocotools import mask as mask_utils

        det.bbox = [float(v) for v in mask_utils.toBbox(_rle_bytes(det.rle))]
    elif det.bbox is None and det.polygon:
        det.bbox = polygon_box(det.polygon)
    if det.bbox is None:
        return None, "neither bbox nor segmentation"
    return det, None


def _rle_bytes(rle: dict[str, Any]) -> dict[str, Any]:
    return {"size": list(rle["size"]), "counts": rle["counts"].encode("ascii")}


def _compressed_rle(seg: dict[str, Any]) -> dict[str, Any] | None:
    size, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) for v in size)):
        return None
    if isinstance(counts, str):
        from fracbench.metrics.rle import check_rle

        return None if check_rle(counts, size[0], size[1]) else {"size": size, "counts": counts}
    if isinstance(counts, list):  # uncompressed RLE: compress it as pycocotools does
        from pycocotools import mask as mask_utils

        rle = mask_utils.frPyObjects({"size": size, "counts": counts}, size[0], size[1])
        return {"size": size, "counts": rle["counts"].decode("ascii")}
    return None
