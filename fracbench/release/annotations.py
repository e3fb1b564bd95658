"""Parsers of the FracAtlas metadata files: ``dataset.csv``, COCO, YOLO, PASCAL VOC, VGG, splits.

Each parser takes the file's bytes and its path relative to the release root (for
messages), validates what it reads and raises :class:`AnnotationError` with a one-line
message ``<file>[:<line>]: <problem>; expected <x>, found <y>`` on the first problem.
Text files may use LF or CRLF, with or without a final newline and a UTF-8 BOM: the
release mixes all of these. Coordinates are returned as the files give them; the reader
(``fracbench.release.reader``) relates them to the images.
"""

from __future__ import annotations

import json
import math
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass

from fracbench.errors import AnnotationError
from fracbench.release.records import Instance

CSV_COLUMNS = ("image_id", "hand", "leg", "hip", "shoulder", "mixed", "hardware", "multiscan",
               "fractured", "fracture_count", "frontal", "lateral", "oblique")
"""``dataset.csv`` header, in the release's order."""

CATEGORY = "fractured"
"""The one annotation category (COCO id 0 in the release)."""

_IMAGE_NAME = re.compile(r"IMG\d{7}\.jpg")
_BOX_SLACK_PX = 1.0
"""COCO boxes may overhang the image by this much (float round-off) before it is an error."""


@dataclass(frozen=True, slots=True)
class CocoImage:
    """One COCO ``images`` entry with its annotations.

    Attributes:
        file_name: e.g. ``IMG0000019.jpg``.
        width, height: the size COCO gives (the EXIF-oriented frame in the release).
        instances: boxes ``(x, y, w, h)`` and polygons, in annotation-id order.
    """

    file_name: str
    width: int
    height: int
    instances: tuple[Instance, ...]


@dataclass(frozen=True, slots=True)
class VocAnnotation:
    """One PASCAL VOC file.

    Attributes:
        width, height: ``<size>`` (the EXIF-oriented frame in the release).
        boxes: ``(xmin, ymin, xmax, ymax)`` integer pixels, one per ``<object>``.
    """

    width: int
    height: int
    boxes: tuple[tuple[int, int, int, int], ...]


def _text(data: bytes, name: str) -> str:
    if not data.strip():
        raise AnnotationError(f"{name}: empty file ({len(data)} bytes); expected its contents, "
                              "found nothing; re-extract the release")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise AnnotationError(f"{name}: not UTF-8 text (byte {exc.start}); expected a text file, "
                              "found binary data; re-extract the release") from None


def _json(data: bytes, name: str) -> object:
    text = _text(data, name)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise AnnotationError(f"{name}:{exc.lineno}: invalid JSON ({exc.msg} at column {exc.colno}); "
                              "re-extract the release") from None


def parse_dataset_csv(data: bytes, name: str = "dataset.csv") -> dict[str, dict[str, int]]:
    """``dataset.csv`` rows keyed by image id (without ``.jpg``), in file order.

    Returns:
        dict: ``{image_id: {column: int}}`` for the 12 flag/count columns.

    Raises:
        AnnotationError: empty file, wrong header, wrong field count, a value that is not
            0/1 (a count that is not a non-negative integer), a malformed or repeated id.
    """
    lines = _text(data, name).splitlines()
    header = tuple(c.strip() for c in lines[0].split(","))
    if header != CSV_COLUMNS:
        raise AnnotationError(f"{name}:1: wrong header; expected {','.join(CSV_COLUMNS)}, "
                              f"found {lines[0][:200]!r}")
    rows: dict[str, dict[str, int]] = {}
    for n, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != len(CSV_COLUMNS):
            raise AnnotationError(f"{name}:{n}: expected {len(CSV_COLUMNS)} fields, found {len(fields)} "
                                  f"in {line[:120]!r}")
        if not _IMAGE_NAME.fullmatch(fields[0]):
            raise AnnotationError(f"{name}:{n}: image_id: expected IMGnnnnnnn.jpg, found {fields[0]!r}")
        image_id = fields[0][:-4]
        if image_id in rows:
            raise AnnotationError(f"{name}:{n}: image_id {fields[0]} repeated; expected one row per image")
        values: dict[str, int] = {}
        for column, value in zip(CSV_COLUMNS[1:], fields[1:]):
            ok = value.isdigit() if column == "fracture_count" else value in ("0", "1")
            if not ok:
                want = "a non-negative integer" if column == "fracture_count" else "0 or 1"
                raise AnnotationError(f"{name}:{n}: {column} of {fields[0]}: expected {want}, found {value!r}")
            values[column] = int(value)
        rows[image_id] = values
    if not rows:
        raise AnnotationError(f"{name}: no rows; expected one row per image after the header, found none")
    return rows


def parse_coco(data: bytes, name: str, warnings: list[str] | None = None) -> dict[str, CocoImage]:
    """The COCO file's images and their instances, keyed by image id (``file_name`` sans ``.jpg``).

    Annotation ids repeated in the file are a warning, not an error: fracbench keeps
    every annotation (it numbers them itself), but a tool that indexes annotations
    by id (pycocotools' ``anns``) would silently keep one of each.

    Args:
        data: the file's bytes.
        name: its path, for messages.
        warnings: where to append warnings (repeated annotation ids).

    Raises:
        AnnotationError: invalid JSON or structure, a category other than ``fractured``,
            an annotation naming an unknown image or category, a degenerate box, a box
            outside its image, or a malformed polygon.
    """
    doc = _json(data, name)
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
        found = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise AnnotationError(f"{name}: expected a COCO object with lists 'images', 'annotations', "
                              f"'categories'; found {found}")
    categories = {c.get("id"): c.get("name") for c in doc["categories"] if isinstance(c, dict)}
    if sorted(set(categories.values())) != [CATEGORY]:
        raise AnnotationError(f"{name}: categories: expected one category {CATEGORY!r}, found {doc['categories']!r}")
    images: dict[int, dict] = {}
    for entry in doc["images"]:
        try:
            image_key, file_name = entry["id"], entry["file_name"]
            size = (int(entry["width"]), int(entry["height"]))
        except (KeyError, TypeError, ValueError):
            raise AnnotationError(f"{name}: images entry {str(entry)[:120]}: expected id, width, height, "
                                  "file_name") from None
        if not isinstance(file_name, str) or not _IMAGE_NAME.fullmatch(file_name):
            raise AnnotationError(f"{name}: images id {image_key}: file_name: expected IMGnnnnnnn.jpg, "
                                  f"found {file_name!r}")
        if image_key in images:
            raise AnnotationError(f"{name}: images id {image_key} repeated; expected unique ids")
        images[image_key] = {"file_name": file_name, "size": size, "instances": []}
    ann_ids: dict[str, int] = {}  # repr: ids may be any JSON value, lists included
    for ann in doc["annotations"]:
        _coco_annotation(ann, images, categories, name)
        key = repr(ann.get("id"))
        ann_ids[key] = ann_ids.get(key, 0) + 1
    repeated = sorted((k, n) for k, n in ann_ids.items() if n > 1)
    if repeated and warnings is not None:
        shown = ", ".join(f"{k[:40]} ({n}x)" for k, n in repeated[:10])
        more = f" and {len(repeated) - 10} more" if len(repeated) > 10 else ""
        warnings.append(
            f"{name}: annotations: {len(repeated)} annotation id(s) repeated, expected unique ids: {shown}{more}; "
            "fracbench keeps every annotation (it numbers them itself), but tools that index annotations by id "
            "(pycocotools) would keep only one of each"
        )
    out: dict[str, CocoImage] = {}
    for entry in images.values():
        image_id = entry["file_name"][:-4]
        if image_id in out:
            raise AnnotationError(f"{name}: file_name {entry['file_name']} listed twice; expected once")
        out[image_id] = CocoImage(entry["file_name"], *entry["size"], tuple(entry["instances"]))
    return out


def _coco_annotation(ann: object, images: dict[int, dict], categories: dict, name: str) -> None:
    where = f"{name}: annotation id {ann.get('id') if isinstance(ann, dict) else '?'}"
    if not isinstance(ann, dict) or ann.get("image_id") not in images:
        found = ann.get("image_id") if isinstance(ann, dict) else ann
        raise AnnotationError(f"{where}: image_id: expected one of the 'images' ids, found {found!r}")
    if ann.get("category_id") not in categories:
        raise AnnotationError(f"{where}: category_id: expected one of {sorted(categories)}, "
                              f"found {ann.get('category_id')!r}")
    image = images[ann["image_id"]]
    width, height = image["size"]
    bbox = ann.get("bbox")
    if not (isinstance(bbox, list) and len(bbox) == 4 and all(_finite(v) for v in bbox)):
        raise AnnotationError(f"{where}: bbox: expected [x, y, w, h] numbers, found {bbox!r}")
    x, y, w, h = (float(v) for v in bbox)
    if w <= 0 or h <= 0:
        raise AnnotationError(f"{where} ({image['file_name']}): bbox {bbox}: expected positive width "
                              f"and height, found {w:g} x {h:g}")
    if x < -_BOX_SLACK_PX or y < -_BOX_SLACK_PX or x + w > width + _BOX_SLACK_PX or y + h > height + _BOX_SLACK_PX:
        raise AnnotationError(f"{where} ({image['file_name']}): bbox {bbox} lies outside the image; "
                              f"expected within {width}x{height}, found x {x:g}..{x + w:g}, y {y:g}..{y + h:g}")
    if ann.get("segmentation") and not isinstance(ann["segmentation"], list):
        raise AnnotationError(f"{where}: segmentation: expected polygons, found RLE")
    polygons = []
    for poly in ann.get("segmentation") or []:
        if not (isinstance(poly, list) and len(poly) >= 6 and len(poly) % 2 == 0 and all(_finite(v) for v in poly)):
            raise AnnotationError(f"{where}: segmentation: expected flat polygons [x1, y1, x2, y2, ...] "
                                  f"of at least 3 points, found {str(poly)[:80]}")
        polygons.append(tuple(float(v) for v in poly))
    image["instances"].append(Instance((x, y, w, h), tuple(polygons)))


def _finite(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def parse_yolo(data: bytes, name: str) -> tuple[tuple[float, float, float, float], ...]:
    """A YOLO file's boxes ``(cx, cy, w, h)``, normalised to the image size; empty file: none.

    Raises:
        AnnotationError: a line without 5 fields, a class other than 0 (``labels.txt``
            names one class), or a value outside [0, 1].
    """
    boxes = []
    for n, line in enumerate(data.decode("utf-8-sig", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            values = [float(f) for f in fields[1:]]
        except ValueError:
            values = []
        if len(fields) != 5 or len(values) != 4:
            raise AnnotationError(f"{name}:{n}: expected 'class cx cy w h', found {line[:80]!r}")
        if fields[0] != "0":
            raise AnnotationError(f"{name}:{n}: class: expected 0 ({CATEGORY}), found {fields[0]!r}")
        if not all(0.0 <= v <= 1.0 for v in values):
            raise AnnotationError(f"{name}:{n}: expected normalised values in [0, 1], found {line.strip()!r}")
        boxes.append(tuple(values))
    return tuple(boxes)


def parse_yolo_labels(data: bytes, name: str) -> list[str]:
    """``labels.txt``: the class names, one a line; the release has exactly ``fractured``."""
    labels = [line.strip() for line in _text(data, name).splitlines() if line.strip()]
    if labels != [CATEGORY]:
        raise AnnotationError(f"{name}: expected one class {CATEGORY!r}, found {labels!r}")
    return labels


def parse_voc(data: bytes, name: str) -> VocAnnotation:
    """A PASCAL VOC XML file: its size and integer boxes.

    Raises:
        AnnotationError: invalid XML, missing ``size`` or ``bndbox`` fields, non-integer
            coordinates, an object other than ``fractured``, or an inverted box.
    """
    try:
        root = ET.fromstring(_text(data, name))
    except ET.ParseError as exc:
        raise AnnotationError(f"{name}: invalid XML ({exc}); re-extract the release") from None

    def integer(node: ET.Element | None, tag: str) -> int:
        text = node.findtext(tag) if node is not None else None
        try:
            return int(str(text).strip())
        except ValueError:
            raise AnnotationError(f"{name}: <{tag}>: expected an integer, found {text!r}") from None

    size = root.find("size")
    width, height = integer(size, "width"), integer(size, "height")
    boxes = []
    for obj in root.iter("object"):
        label = (obj.findtext("name") or "").strip()
        if label != CATEGORY:
            raise AnnotationError(f"{name}: <object><name>: expected {CATEGORY!r}, found {label!r}")
        bnd = obj.find("bndbox")
        box = tuple(integer(bnd, t) for t in ("xmin", "ymin", "xmax", "ymax"))
        if box[2] < box[0] or box[3] < box[1]:
            raise AnnotationError(f"{name}: bndbox {box}: expected xmin <= xmax and ymin <= ymax")
        boxes.append(box)
    return VocAnnotation(width, height, tuple(boxes))


def parse_vgg(data: bytes, name: str) -> dict[str, tuple[tuple[float, ...], ...]]:
    """The VGG (VIA) JSON polygons keyed by image id, each flat, closing point dropped.

    Raises:
        AnnotationError: invalid JSON, an entry without ``filename``/``regions``, or a
            polygon whose x and y lists differ in length.
    """
    doc = _json(data, name)
    if not isinstance(doc, dict):
        raise AnnotationError(f"{name}: expected a VIA object keyed by file, found {type(doc).__name__}")
    out: dict[str, tuple[tuple[float, ...], ...]] = {}
    for key, entry in doc.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("filename"), str) or "regions" not in entry:
            raise AnnotationError(f"{name}: entry {key!r}: expected 'filename' and 'regions'")
        regions = entry["regions"]
        regions = list(regions.values()) if isinstance(regions, dict) else list(regions or [])
        polygons = []
        for region in regions:
            shape = region.get("shape_attributes", {}) if isinstance(region, dict) else {}
            xs, ys = shape.get("all_points_x"), shape.get("all_points_y")
            if shape.get("name") != "polygon" or not isinstance(xs, list) or not isinstance(ys, list) or len(xs) != len(ys):
                raise AnnotationError(f"{name}: {entry['filename']}: expected polygons with equal-length "
                                      f"all_points_x/all_points_y, found {str(shape)[:100]}")
            if len(xs) > 1 and xs[0] == xs[-1] and ys[0] == ys[-1]:
                xs, ys = xs[:-1], ys[:-1]  # VIA closes polygons; COCO does not
            polygons.append(tuple(float(c) for p in zip(xs, ys) for c in p))
        out[entry["filename"].rsplit(".", 1)[0]] = tuple(polygons)
    return out


def parse_split(data: bytes, name: str) -> list[str]:
    """An authors' split CSV (header ``image_id``): the image ids, in file order.

    Raises:
        AnnotationError: empty file, wrong header or a malformed id.
    """
    lines = [line.strip() for line in _text(data, name).splitlines()]
    if lines[0] != "image_id":
        raise AnnotationError(f"{name}:1: wrong header; expected 'image_id', found {lines[0][:80]!r}")
    ids = []
    for n, line in enumerate(lines[1:], start=2):
        if not line:
            continue
        if not _IMAGE_NAME.fullmatch(line):
            raise AnnotationError(f"{name}:{n}: expected IMGnnnnnnn.jpg, found {line[:80]!r}")
        ids.append(line[:-4])
    return ids


# --- cross-checks between sources -------------------------------------------------------

BOX_TOLERANCE_PX = 1.0
"""Disagreement beyond this many pixels, after each format's own quantisation, is reported."""

YOLO_QUANTUM = 0.5e-4
"""YOLO files give ``%.4f`` normalised values: each is off by at most half a unit of the 4th decimal."""


def coco_corners(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    """``(x, y, w, h)`` -> ``(x0, y0, x1, y1)``."""
    x, y, w, h = bbox
    return (x, y, x + w, y + h)


def yolo_corners(box: tuple[float, float, float, float], width: int, height: int) -> tuple[float, float, float, float]:
    """Normalised ``(cx, cy, w, h)`` -> pixel ``(x0, y0, x1, y1)`` in a ``width`` x ``height`` frame."""
    cx, cy, w, h = box
    return ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height)


def yolo_excess(coco: tuple[float, ...], yolo: tuple[float, ...], width: int, height: int) -> float:
    """How far (px) YOLO corners are from COCO's beyond YOLO's rounding and the tolerance.

    A corner ``cx - w/2`` carries the rounding of ``cx`` and half that of ``w``: at most
    ``1.5 * YOLO_QUANTUM`` of the image side (0.22 px on a 2,880 px side). A positive result
    is a disagreement.
    """
    slack = (1.5 * YOLO_QUANTUM * width, 1.5 * YOLO_QUANTUM * height) * 2
    return max(abs(c - y) - s for c, y, s in zip(coco, yolo, slack)) - BOX_TOLERANCE_PX


def voc_excess(coco: tuple[float, ...], voc: tuple[int, ...]) -> float:
    """How far (px) COCO corners are from VOC's integer box beyond its quantisation and the tolerance.

    In the release, 3,619 of the 3,688 VOC coordinates are COCO's truncated towards zero;
    the other 69 sit within 0.2 px of an integer and were truncated from a slightly
    different float, landing one below or one above. So a VOC value ``v`` stands for the
    interval ``[v, v + 1]`` and only the distance outside it counts (the largest in the
    release is 0.15 px). A positive result is a disagreement.
    """
    return max(max(0.0, v - c, c - (v + 1)) for c, v in zip(coco, voc)) - BOX_TOLERANCE_PX


def match_boxes(
    coco: list[tuple[float, ...]], other: list[tuple[float, ...]], excess
) -> list[tuple[int, int, float]]:
    """Pair COCO boxes with another source's, closest pairs first.

    Args:
        coco: COCO corners.
        other: the other source's boxes, in whatever form ``excess(coco_box, box)`` takes.
        excess: distance function (see :func:`voc_excess`, :func:`yolo_excess`).

    Returns:
        list: ``(coco_index, other_index, excess)`` for ``min(len(coco), len(other))`` pairs.
    """
    candidates = sorted((excess(c, o), i, j) for i, c in enumerate(coco) for j, o in enumerate(other))
    used_c, used_o, pairs = set(), set(), []
    for e, i, j in candidates:
        if i not in used_c and j not in used_o:
            used_c.add(i)
            used_o.add(j)
            pairs.append((i, j, e))
    return pairs


def polygon_distance(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Largest coordinate difference (px) of two flat polygons; inf when point counts differ."""
    if len(a) != len(b):
        return math.inf
    return max((abs(p - q) for p, q in zip(a, b)), default=0.0)
