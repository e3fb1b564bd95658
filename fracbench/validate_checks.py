"""The structural walk over a parsed submission: every field, every prediction, every box.

Each check adds ``(location, code, message)`` to a :class:`Problems` sink and goes on,
so one run reports everything. Messages say what was expected and what was found.
"""

from __future__ import annotations

import difflib
import math
import re
from typing import Any

import numpy as np

from fracbench import SPLITS_VERSION
from fracbench.dataset.groundtruth import GroundTruth, GTImage
from fracbench.metrics.rle import check_rles
from fracbench.submission import (
    BOX_TOLERANCE_PX,
    IMAGE_ID_PATTERN,
    MAX_OBJECTS_PER_IMAGE,
    MAX_POLYGON_COORDS,
    MAX_POLYGONS_PER_INSTANCE,
    LEGACY_SPLITS_VERSION,
    SCORABLE_SPLITS,
    SPLITS_VERSIONS,
    SUBMISSION_SCHEMA,
    TASK_NAMES,
)

TOP_KEYS = ("schema", "task", "splits_version", "split", "model", "threshold", "predictions")
REQUIRED_TOP_KEYS = ("schema", "task", "splits_version", "split", "model", "predictions")
MODEL_KEYS = ("name", "url", "description")
ENTRY_KEYS = {"classification": ("image_id", "score"), "localization": ("image_id", "boxes"), "segmentation": ("image_id", "instances")}
_ID_RE = re.compile(IMAGE_ID_PATTERN)
_MAX_PIXELS = 1 << 31


class Problems:
    """Collects problems up to a limit, then only counts them.

    RLE strings are checked in one vectorised batch: :meth:`defer_rle` queues one,
    :meth:`finish` checks the queue.
    """

    def __init__(self, limit: int):
        self.limit = limit
        self.items: list[tuple[str, str, str]] = []
        self.dropped = 0
        self._rles: list[tuple[str, str, tuple[int, int]]] = []

    def defer_rle(self, location: str, counts: str, height: int, width: int) -> None:
        self._rles.append((location, counts, (height, width)))

    def add(self, location: str, code: str, message: str) -> None:
        if len(self.items) < self.limit:
            self.items.append((location, code, message))
        else:
            self.dropped += 1

    def finish(self) -> list[tuple[str, str, str]]:
        """The recorded problems, plus one entry counting those beyond the limit."""
        if self._rles:
            locations, counts, sizes = zip(*self._rles)
            for location, why in zip(locations, check_rles(counts, sizes)):
                if why:
                    self.add(location, "bad_rle", why)
            self._rles = []
        if self.dropped:
            return [*self.items, ("(file)", "too_many_problems", f"{self.dropped} further problems were not listed; fix the ones above first")]
        return list(self.items)


def describe(value: Any) -> str:
    """A short human description of a JSON value, for 'found ...'."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"boolean {str(value).lower()}"
    if isinstance(value, (int, float)):
        if isinstance(value, float) and math.isnan(value):
            return "NaN"
        if isinstance(value, float) and math.isinf(value):
            return "Infinity" if value > 0 else "-Infinity"
        text = repr(value)
        return text if len(text) <= 40 else f"{text[:20]}...({len(text)} digits)"
    if isinstance(value, str):
        return repr(value[:40]) + ("..." if len(value) > 40 else "")
    if isinstance(value, list):
        return f"a list of {len(value)} item(s)"
    if isinstance(value, dict):
        keys = ", ".join(list(value)[:6])
        return f"an object with keys {{{keys}}}" if value else "an empty object"
    return type(value).__name__


_NUMBER = frozenset((int, float))
_MAX_INT = 10**15


def _finite(v: Any) -> bool:
    """A JSON number usable as a coordinate or score: finite, and at most 1e15 in size."""
    if type(v) is float:
        return math.isfinite(v) and -_MAX_INT <= v <= _MAX_INT
    return type(v) is int and -_MAX_INT <= v <= _MAX_INT


def _keys(obj: dict[str, Any], loc: str, allowed: tuple[str, ...], required: tuple[str, ...], sink: Problems) -> None:
    dup = getattr(obj, "duplicate_keys", ())
    for k in dup:
        sink.add(f"{loc}.{k}" if loc else k, "duplicate_key", f"key {k!r} given more than once; give each key once")
    if len(obj) == len(required) and all(k in obj for k in required):
        return
    for k in obj:
        if k not in allowed:
            close = difflib.get_close_matches(k, allowed, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            sink.add(f"{loc}.{k}" if loc else str(k), "unknown_field", f"unknown field; allowed: {', '.join(allowed)}.{hint}")
    for k in required:
        if k not in obj:
            sink.add(f"{loc}.{k}" if loc else k, "missing_field", f"missing; expected field {k!r}")


def _probability(v: Any, loc: str, sink: Problems, what: str = "a probability") -> None:
    if not _finite(v) or not 0.0 <= v <= 1.0:
        sink.add(loc, "bad_score", f"expected {what}: a finite number in [0, 1], found {describe(v)}")


def check_document(data: Any, gt: GroundTruth | None, split: str | None, sink: Problems) -> tuple[str | None, str | None, str | None, int]:
    """Walk a parsed submission and report every problem into ``sink``.

    Args:
        data: the parsed JSON.
        gt: ground truth of the split, or None for checks that need none.
        split: the split the caller wants, or None to accept the declared one.
        sink: where problems go.

    Returns:
        tuple: declared task, split and splits version (None where unusable), and the
        number of prediction entries.
    """
    if not isinstance(data, dict):
        sink.add("(top level)", "not_object", f"expected a JSON object with keys {', '.join(REQUIRED_TOP_KEYS)}, found {describe(data)}")
        return None, None, None, 0
    _keys(data, "", TOP_KEYS, REQUIRED_TOP_KEYS, sink)
    if "schema" in data and data["schema"] != SUBMISSION_SCHEMA:
        hint = ""
        if isinstance(data["schema"], str) and data["schema"].startswith("fracbench.result"):
            hint = "; this is a Result JSON (scores), not a submission (predictions): pass the preds.json that was scored"
        sink.add("schema", "wrong_schema", f"expected {SUBMISSION_SCHEMA!r}, found {describe(data['schema'])}{hint}")
    task = data.get("task")
    if "task" in data and task not in TASK_NAMES:
        close = difflib.get_close_matches(str(task), TASK_NAMES, n=1) if isinstance(task, str) else []
        hint = f" Did you mean {close[0]!r}?" if close else ""
        sink.add("task", "unknown_task", f"expected one of {', '.join(TASK_NAMES)}, found {describe(task)}.{hint}")
        task = None
    version = data.get("splits_version")
    if gt is not None and "splits_version" in data and version != gt.splits_version:
        want = gt.splits_version
        sink.add("splits_version", "wrong_splits_version", f"expected {want!r}, found {describe(version)}; predict the split of splits {want}")
        version = version if isinstance(version, str) else None
    elif gt is None and "splits_version" in data and version not in SPLITS_VERSIONS:
        sink.add("splits_version", "wrong_splits_version", f"expected {SPLITS_VERSION!r} (or {LEGACY_SPLITS_VERSION!r}), found {describe(version)}; predict the split of splits {SPLITS_VERSION}")
        version = version if isinstance(version, str) else None
    if gt is not None and gt.splits_version == LEGACY_SPLITS_VERSION and task == "classification":
        sink.add("task", "task_not_scorable", "classification cannot be scored on splits 'legacy' (positive-only: every image fractured); score it on splits v1")
    declared = data.get("split")
    if "split" in data:
        if declared not in SCORABLE_SPLITS:
            sink.add("split", "wrong_split", f"expected one of {', '.join(SCORABLE_SPLITS)}, found {describe(declared)}")
            declared = None
        else:
            want = split or (gt.split if gt is not None else None)
            if want is not None and declared != want:
                sink.add("split", "wrong_split", f"expected {want!r} (the split being checked), found {declared!r}; pass --split {declared} to check it against the {declared} split")
    if "model" in data:
        _check_model(data["model"], sink)
    if data.get("threshold") is not None:
        _probability(data["threshold"], "threshold", sink, "a threshold")
    n = 0
    if "predictions" in data:
        preds = data["predictions"]
        if not isinstance(preds, list):
            sink.add("predictions", "not_list", f"expected a list with one entry per image, found {describe(preds)}")
        else:
            n = len(preds)
            _check_predictions(preds, task, gt, sink)
    return (task, declared if isinstance(declared, str) else None, version if isinstance(version, str) else None, n)


def _check_model(model: Any, sink: Problems) -> None:
    if not isinstance(model, dict):
        sink.add("model", "bad_model", f'expected an object like {{"name": "my-model"}}, found {describe(model)}')
        return
    _keys(model, "model", MODEL_KEYS, ("name",), sink)
    name = model.get("name")
    if "name" in model and (not isinstance(name, str) or not name.strip() or len(name) > 200):
        sink.add("model.name", "bad_model", f"expected a non-empty string of at most 200 characters, found {describe(name)}")
    for key, limit in (("url", 2000), ("description", 10_000)):
        v = model.get(key)
        if v is not None and (not isinstance(v, str) or len(v) > limit):
            sink.add(f"model.{key}", "bad_model", f"expected a string of at most {limit} characters or null, found {describe(v)}")


def _check_predictions(preds: list[Any], task: str | None, gt: GroundTruth | None, sink: Problems) -> None:
    images = gt.by_id() if gt is not None else {}
    seen: dict[str, int] = {}
    task = task or _infer_task(preds)
    keys = ENTRY_KEYS.get(task or "")
    for i, entry in enumerate(preds):
        loc = f"predictions[{i}]"
        if not isinstance(entry, dict):
            sink.add(loc, "not_object", f"expected an object like {{\"image_id\": \"IMG0000019\", ...}}, found {describe(entry)}")
            continue
        if keys:
            _keys(entry, loc, keys, keys, sink)
        image = _check_image_id(entry, loc, gt, images, seen, i, sink)
        if task == "classification":
            if "score" in entry:
                _probability(entry["score"], f"{loc}.score", sink)
        elif task == "localization":
            if "boxes" in entry:
                _check_boxes(entry["boxes"], f"{loc}.boxes", image, sink)
        elif task == "segmentation":
            if "instances" in entry:
                _check_instances(entry["instances"], f"{loc}.instances", image, sink)
    if gt is not None:
        for g in gt.images:
            if g.image_id not in seen:
                sink.add("predictions", "missing_image", f"no prediction for {g.image_id} of the {gt.split} split; predict every image (an empty list means nothing found)")


def _infer_task(preds: list[Any]) -> str | None:
    """The task the entries look like, so they are checked even when ``task`` is wrong."""
    first = next((e for e in preds if isinstance(e, dict)), None)
    if first is None:
        return None
    for task, keys in ENTRY_KEYS.items():
        if keys[1] in first:
            return task
    return None


def _check_image_id(entry: dict[str, Any], loc: str, gt: GroundTruth | None, images: dict[str, GTImage], seen: dict[str, int], i: int, sink: Problems) -> GTImage | None:
    if "image_id" not in entry:
        return None
    image_id = entry["image_id"]
    if not isinstance(image_id, str):
        sink.add(f"{loc}.image_id", "bad_image_id", f"expected an image id string like 'IMG0000019', found {describe(image_id)}")
        return None
    if image_id in seen:
        sink.add(f"{loc}.image_id", "duplicate_image_id", f"{image_id!r} is already predicted at predictions[{seen[image_id]}]; give each image exactly once")
        return None
    seen[image_id] = i
    if gt is not None:
        image = images.get(image_id)
        if image is None:
            stem = image_id.rsplit(".", 1)[0] if "." in image_id else None
            hint = f"; drop the file extension ({stem!r})" if stem and stem in images else ""
            sink.add(f"{loc}.image_id", "unknown_image_id", f"{image_id!r} is not an image of the {gt.split} split (splits {gt.splits_version}){hint}")
        return image
    if not _ID_RE.match(image_id):
        sink.add(f"{loc}.image_id", "bad_image_id", f"expected an image id like 'IMG0000019' (no extension), found {describe(image_id)}")
    return None


def _check_count(items: Any, loc: str, what: str, sink: Problems) -> bool:
    if not isinstance(items, list):
        sink.add(loc, "not_list", f"expected a list of {what} (empty when nothing is found), found {describe(items)}")
        return False
    if len(items) > MAX_OBJECTS_PER_IMAGE:
        sink.add(loc, "too_many", f"{len(items)} {what}; at most {MAX_OBJECTS_PER_IMAGE} per image are allowed: keep the highest-scoring {MAX_OBJECTS_PER_IMAGE}")
    return True


def _check_boxes(boxes: Any, loc: str, image: GTImage | None, sink: Problems) -> None:
    if not _check_count(boxes, loc, "boxes", sink):
        return
    # fast path: well-formed boxes are checked together in numpy; any box failing it is
    # re-checked one by one below, which writes the detailed messages
    rows, index = [], []
    for j, box in enumerate(boxes):
        if type(box) is dict and len(box) == 2 and not getattr(box, "duplicate_keys", ()):
            bbox, score = box.get("bbox"), box.get("score")
            if type(bbox) is list and len(bbox) == 4 and type(score) in _NUMBER and all(type(v) in _NUMBER for v in bbox):
                rows.append((*bbox, score))
                index.append(j)
                continue
        _check_box(box, f"{loc}[{j}]", image, sink)
    if not rows:
        return
    try:
        a = np.array(rows, dtype=np.float64)
    except OverflowError:
        bad = np.ones(len(rows), dtype=bool)
    else:
        with np.errstate(invalid="ignore", over="ignore"):
            bad = ~np.isfinite(a).all(axis=1) | (np.abs(a) > _MAX_INT).any(axis=1)
            bad |= (a[:, 4] < 0) | (a[:, 4] > 1) | (a[:, 2] <= 0) | (a[:, 3] <= 0)
            if image is not None:
                t = BOX_TOLERANCE_PX
                bad |= (a[:, 0] < -t) | (a[:, 1] < -t) | (a[:, 0] + a[:, 2] > image.width + t) | (a[:, 1] + a[:, 3] > image.height + t)
    for r in np.flatnonzero(bad):
        j = index[r]
        _check_box(boxes[j], f"{loc}[{j}]", image, sink)


def _check_box(box: Any, bloc: str, image: GTImage | None, sink: Problems) -> None:
    if not isinstance(box, dict):
        sink.add(bloc, "not_object", f'expected an object like {{"bbox": [x, y, w, h], "score": 0.8}}, found {describe(box)}')
        return
    _keys(box, bloc, ("bbox", "score"), ("bbox", "score"), sink)
    if "score" in box:
        _probability(box["score"], f"{bloc}.score", sink)
    if "bbox" in box:
        _check_bbox(box["bbox"], f"{bloc}.bbox", image, sink)


def _check_bbox(bbox: Any, loc: str, image: GTImage | None, sink: Problems) -> None:
    if not isinstance(bbox, list) or len(bbox) != 4:
        sink.add(loc, "bad_bbox", f"expected [x, y, w, h]: a list of 4 numbers, found {describe(bbox)}")
        return
    if not all(_finite(v) for v in bbox):
        bad = next(v for v in bbox if not _finite(v))
        sink.add(loc, "bad_bbox", f"expected 4 finite numbers [x, y, w, h] (each at most 1e15 in size), found {describe(bad)} among them")
        return
    x, y, w, h = bbox
    if w <= 0 or h <= 0:
        sink.add(loc, "degenerate_box", f"expected width and height > 0, found w={w}, h={h}; boxes are [x, y, w, h], not [x1, y1, x2, y2]")
        return
    if image is not None:
        _check_bounds(x, y, x + w, y + h, loc, image, sink, "box")


def _check_bounds(x0: float, y0: float, x1: float, y1: float, loc: str, image: GTImage, sink: Problems, what: str) -> None:
    t = BOX_TOLERANCE_PX
    if x0 < -t or y0 < -t or x1 > image.width + t or y1 > image.height + t:
        sink.add(
            loc,
            "outside_image",
            f"{what} spans x {x0:g}..{x1:g}, y {y0:g}..{y1:g} but {image.image_id} is {image.width}x{image.height} "
            f"(width x height; {t:g} px tolerance); use pixels of the EXIF-corrected image at original resolution",
        )


def _check_instances(instances: Any, loc: str, image: GTImage | None, sink: Problems) -> None:
    if not _check_count(instances, loc, "instances", sink):
        return
    for j, inst in enumerate(instances):
        iloc = f"{loc}[{j}]"
        if not isinstance(inst, dict):
            sink.add(iloc, "not_object", f'expected an object like {{"score": 0.8, "rle": {{...}}}} or {{"score": 0.8, "polygon": [[...]]}}, found {describe(inst)}')
            continue
        has_rle, has_poly = "rle" in inst, "polygon" in inst
        if has_rle and has_poly:
            sink.add(iloc, "bad_instance", "found both 'rle' and 'polygon'; give exactly one mask per instance")
        shape = ("score", "rle") if has_rle else ("score", "polygon") if has_poly else ("score",)
        _keys(inst, iloc, ("score", "rle", "polygon"), shape, sink)
        if not has_rle and not has_poly:
            sink.add(iloc, "missing_field", "missing the mask; expected field 'rle' (COCO compressed RLE) or 'polygon'")
        if "score" in inst:
            _probability(inst["score"], f"{iloc}.score", sink)
        if has_rle:
            _check_rle(inst["rle"], f"{iloc}.rle", image, sink)
        if has_poly:
            _check_polygon(inst["polygon"], f"{iloc}.polygon", image, sink)


def _check_rle(rle: Any, loc: str, image: GTImage | None, sink: Problems) -> None:
    if not isinstance(rle, dict):
        sink.add(loc, "bad_rle", f'expected {{"size": [height, width], "counts": "..."}}, found {describe(rle)}')
        return
    _keys(rle, loc, ("size", "counts"), ("size", "counts"), sink)
    size, counts = rle.get("size"), rle.get("counts")
    size_ok = isinstance(size, list) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and 0 < v for v in size)
    if "size" in rle and not size_ok:
        sink.add(f"{loc}.size", "bad_rle", f"expected [height, width]: two positive integers, found {describe(size)}")
    elif size_ok and size[0] * size[1] > _MAX_PIXELS:
        sink.add(f"{loc}.size", "bad_rle", f"size {size} is not a FracAtlas image size")
        size_ok = False
    elif size_ok and image is not None and (size[0], size[1]) != (image.height, image.width):
        sink.add(
            f"{loc}.size",
            "mask_size_mismatch",
            f"expected [{image.height}, {image.width}] ([height, width] of {image.image_id}), found {size}; "
            "encode the mask at the original, EXIF-corrected resolution",
        )
    if "counts" in rle:
        if isinstance(counts, list):
            sink.add(f"{loc}.counts", "bad_rle", "found uncompressed RLE (a list); expected the compressed string: pycocotools.mask.encode(mask)['counts'].decode('ascii')")
        elif not isinstance(counts, str):
            sink.add(f"{loc}.counts", "bad_rle", f"expected a COCO compressed RLE string, found {describe(counts)}")
        elif size_ok:
            sink.defer_rle(f"{loc}.counts", counts, size[0], size[1])


def _check_polygon(polygon: Any, loc: str, image: GTImage | None, sink: Problems) -> None:
    if not isinstance(polygon, list) or not polygon or len(polygon) > MAX_POLYGONS_PER_INSTANCE:
        sink.add(loc, "bad_polygon", f"expected a list of 1 to {MAX_POLYGONS_PER_INSTANCE} polygons [[x1, y1, x2, y2, ...], ...], found {describe(polygon)}")
        return
    for k, poly in enumerate(polygon):
        ploc = f"{loc}[{k}]"
        if not isinstance(poly, list) or len(poly) < 6 or len(poly) % 2 or len(poly) > MAX_POLYGON_COORDS:
            found = f"{len(poly)} numbers" if isinstance(poly, list) else describe(poly)
            sink.add(ploc, "bad_polygon", f"expected a flat list [x1, y1, x2, y2, ...] of an even number of 6 to {MAX_POLYGON_COORDS} numbers (3+ vertices), found {found}")
            continue
        if not all(_finite(v) for v in poly):
            bad = next(v for v in poly if not _finite(v))
            sink.add(ploc, "bad_polygon", f"expected finite numbers, found {describe(bad)}")
            continue
        if image is not None:
            xs, ys = poly[0::2], poly[1::2]
            _check_bounds(min(xs), min(ys), max(xs), max(ys), ploc, image, sink, "polygon")
