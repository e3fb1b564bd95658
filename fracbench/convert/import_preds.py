"""Turn other tools' prediction files into a ``fracbench.submission/v1`` document.

Readers, one per format, return each image's detections (:class:`Detection`);
:func:`import_predictions` then lays them out for the task, with every image of
the split exactly once (an image without detections gets an empty list, or score
0 for classification from a detector), and checks the result with
:func:`fracbench.validate.validate_submission` before it is returned.

* ``yolo``: Ultralytics ``save_txt=True save_conf=True`` label files, one per image
  named ``<image stem>.txt``, lines ``cls cx cy w h conf`` (detect) or
  ``cls x1 y1 ... xn yn conf`` (segment), normalised by the image size, which is
  read from the built dataset. Only class 0 (fractured) is expected.
* ``coco``: a COCO results list ``[{image_id, category_id, bbox, score[, segmentation]}]``
  (pycocotools ``loadRes`` input; detectron2's ``coco_instances_results.json``).
  ``image_id`` may be the integer id of ``fracbench export coco`` (``IMG0000019`` →
  19), the FracAtlas id or a file name; with ``annotations=`` the integer ids are
  looked up in that COCO file's ``images`` (for a file other than our export).
* ``csv``: ``image_id,score`` (classification; the id may be a file name).

Detections for images of another split of the dataset are dropped and counted
(a tool run on several splits at once); an id that is no image of the dataset is
an error. More than 100 objects on an image: the 100 highest-scoring are kept
(COCO's ``maxDets``, the protocol's limit).
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fracbench.convert import IMPORT_FORMATS, IMPORT_TASKS
from fracbench.convert.yolo import box_from_yolo, polygon_from_yolo
from fracbench.errors import SubmissionError
from fracbench.submission import MAX_OBJECTS_PER_IMAGE, SCORABLE_SPLITS, SUBMISSION_SCHEMA

ID_COLUMNS = ("image_id", "image", "file_name", "filename", "file", "path")
"""CSV header names accepted for the image column, first match wins."""

SCORE_COLUMNS = ("score", "probability", "prob", "fractured", "p_fractured")
"""CSV header names accepted for the score column, first match wins."""

_ID = re.compile(r"^IMG\d{7}$")
_MAX_SHOWN = 3


@dataclass
class Detection:
    """One predicted object (or, for CSV, one image score), in pixels of the image.

    Attributes:
        score: confidence in 0..1.
        bbox: ``[x, y, w, h]``, or None when only a mask was given.
        polygon: flat polygons of the object, or None.
        rle: COCO compressed RLE ``{"size", "counts"}``, or None.
    """

    score: float
    bbox: list[float] | None = None
    polygon: list[list[float]] | None = None
    rle: dict[str, Any] | None = None


@dataclass
class ImportSummary:
    """What an import read and produced.

    Attributes:
        format, task, split: as imported.
        images: images of the split (= prediction entries).
        with_predictions: images that had at least one detection or a score.
        objects: boxes or instances written.
        other_split: detections dropped because their image belongs to another split.
        trimmed: objects dropped beyond the 100 highest-scoring of an image.
    """

    format: str
    task: str
    split: str
    images: int = 0
    with_predictions: int = 0
    objects: int = 0
    other_split: int = 0
    trimmed: int = 0
    notes: list[str] = field(default_factory=list)


def _fail(source: str | Path, what: str, problems: list[str]) -> SubmissionError:
    shown = "; ".join(problems[:_MAX_SHOWN])
    more = f" (and {len(problems) - _MAX_SHOWN} more)" if len(problems) > _MAX_SHOWN else ""
    return SubmissionError(f"{source}: {what}: {shown}{more}", problems=problems)


def _stem(name: Any) -> str:
    """``images/IMG0000019.jpg`` → ``IMG0000019``."""
    base = str(name).replace("\\", "/").rsplit("/", 1)[-1]
    return base.rsplit(".", 1)[0] if "." in base else base


def read_yolo(path: str | Path, sizes: dict[str, tuple[int, int]]) -> tuple[dict[str, list[Detection]], list[str]]:
    """Read Ultralytics ``save_txt`` + ``save_conf`` label files.

    Args:
        path: the ``labels/`` directory (or the run directory holding it).
        sizes: ``(width, height)`` of every image of the dataset, by id.

    Returns:
        tuple: detections by image id, and the names of files whose stem is no image id.

    Raises:
        SubmissionError: no such directory, or lines that are not ``cls coords... conf``.
    """
    root = Path(path)
    if not root.is_dir():
        raise SubmissionError(f"{root}: not a directory; pass the Ultralytics run's labels/ directory (predict with save_txt=True save_conf=True)")
    files = sorted(root.glob("*.txt"))
    if not files and (root / "labels").is_dir():
        root, files = root / "labels", sorted((root / "labels").glob("*.txt"))
    out: dict[str, list[Detection]] = {}
    unknown, problems = [], []
    for f in files:
        image_id = f.stem
        if image_id not in sizes:
            unknown.append(f.name)
            continue
        width, height = sizes[image_id]
        dets = out.setdefault(image_id, [])
        for n, line in enumerate(f.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
            if not line.strip():
                continue
            det, why = _yolo_line(line.split(), width, height)
            if why:
                problems.append(f"{f.name} line {n}: {why}")
            elif det is not None:
                dets.append(det)
    if problems:
        raise _fail(root, "not Ultralytics save_txt+save_conf labels", problems)
    return out, unknown


def _yolo_line(fields: list[str], width: int, height: int) -> tuple[Detection | None, str | None]:
    try:
        values = [float(v) for v in fields]
    except ValueError:
        return None, f"expected numbers, found {' '.join(fields)[:60]!r}"
    n = len(values)
    if n == 5 or (n >= 7 and n % 2 == 1):
        return None, f"{n} fields and no confidence; predict with save_conf=True (expected cls coords... conf)"
    if n < 5:
        return None, f"expected 'cls cx cy w h conf' (6 fields) or 'cls x1 y1 ... conf', found {n} field(s)"
    if values[0] != 0:
        return None, f"class {fields[0]}; fracbench exports have one class, 0 = fractured"
    score = values[-1]
    if not 0.0 <= score <= 1.0:
        return None, f"confidence {fields[-1]} outside 0..1"
    if n == 6:
        return Detection(score, bbox=box_from_yolo(*values[1:5], width, height)), None
    polygon = polygon_from_yolo(values[1:-1], width, height)
    return Detection(score, bbox=_polygon_box([polygon]), polygon=[polygon]), None


def _polygon_box(polygons: list[list[float]]) -> list[float]:
    xs = [v for p in polygons for v in p[0::2]]
    ys = [v for p in polygons for v in p[1::2]]
    return [min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys)]


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
    data = _load_json(path)
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
        raise _fail(path, "not a COCO results list for this dataset", problems)
    return out


def _load_json(path: str | Path) -> Any:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise SubmissionError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SubmissionError(f"{path}: not readable JSON ({exc})") from None


def _coco_id_table(annotations: str | Path) -> dict[int, str]:
    doc = _load_json(annotations)
    images = doc.get("images") if isinstance(doc, dict) else None
    if not isinstance(images, list):
        raise SubmissionError(f"{annotations}: expected a COCO annotation file with an 'images' list")
    return {img["id"]: _stem(img.get("file_name", "")) for img in images if isinstance(img, dict) and "id" in img}


def _coco_image(value: Any, ids: set[str], by_int: dict[int, str] | None) -> str | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        image_id = by_int.get(value) if by_int is not None else f"IMG{value:07d}"
    elif isinstance(value, str):
        image_id = _stem(value)
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
        det.polygon = [[float(v) for v in p] for p in polygons]
    if det.bbox is None and det.rle is not None:
        from pycocotools import mask as mask_utils

        det.bbox = [float(v) for v in mask_utils.toBbox(_rle_bytes(det.rle))]
    elif det.bbox is None and det.polygon:
        det.bbox = _polygon_box(det.polygon)
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
        return {"size": size, "counts": counts}
    if isinstance(counts, list):  # uncompressed RLE: compress it as pycocotools does
        from pycocotools import mask as mask_utils

        rle = mask_utils.frPyObjects({"size": size, "counts": counts}, size[0], size[1])
        return {"size": size, "counts": rle["counts"].decode("ascii")}
    return None


def read_score_csv(path: str | Path, ids: set[str]) -> dict[str, list[Detection]]:
    """Read ``image_id,score`` (header required; see :data:`ID_COLUMNS`, :data:`SCORE_COLUMNS`).

    Raises:
        SubmissionError: no such file, no usable header, a score that is not in 0..1,
            an id that is no image of the dataset, or an image given twice.
    """
    try:
        text = Path(path).read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SubmissionError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SubmissionError(f"{path}: not readable UTF-8 text ({exc})") from None
    reader = csv.DictReader(text.splitlines())
    header = {h.strip().lower(): h for h in reader.fieldnames or []}
    id_col = next((header[c] for c in ID_COLUMNS if c in header), None)
    score_col = next((header[c] for c in SCORE_COLUMNS if c in header), None)
    if id_col is None or score_col is None:
        raise SubmissionError(
            f"{path}: header expected 'image_id,score' (or {'/'.join(ID_COLUMNS)} and {'/'.join(SCORE_COLUMNS)}), "
            f"found {','.join(reader.fieldnames or []) or '(empty file)'!r}"
        )
    out: dict[str, list[Detection]] = {}
    problems = []
    for n, row in enumerate(reader, start=2):
        image_id, raw = _stem((row.get(id_col) or "").strip()), (row.get(score_col) or "").strip()
        try:
            score = float(raw)
        except ValueError:
            score = float("nan")
        if not 0.0 <= score <= 1.0:
            problems.append(f"line {n}: score {raw!r} is not a probability in 0..1")
        elif image_id not in ids:
            problems.append(f"line {n}: {image_id!r} is no image of the dataset")
        elif image_id in out:
            problems.append(f"line {n}: {image_id} given twice")
        else:
            out[image_id] = [Detection(score)]
    if problems:
        raise _fail(path, "not an image_id,score CSV for this dataset", problems)
    return out


def import_predictions(
    fmt: str,
    source: str | Path,
    *,
    split: str = "test",
    task: str | None = None,
    model_name: str,
    data: str | Path | None = None,
    annotations: str | Path | None = None,
    category_id: int | None = None,
    model_url: str | None = None,
    description: str | None = None,
    threshold: float | None = None,
) -> tuple[dict[str, Any], ImportSummary]:
    """Convert a prediction file into a validated ``fracbench.submission/v1`` document.

    Args:
        fmt: ``yolo``, ``coco`` or ``csv``.
        source: the labels directory (yolo) or file.
        split: ``validation`` or ``test``.
        task: the submission's task; default per format (see
            :data:`fracbench.convert.IMPORT_TASKS`). From detections, classification
            scores an image by its most confident object (0 without any).
        model_name: the submission's ``model.name``.
        data: the built dataset (image ids and sizes); None: ``$FRACBENCH_DATA``, then the cache.
        annotations: (coco) a COCO file mapping the results' integer ids to file names.
        category_id: (coco) keep only this category.
        model_url, description, threshold: optional submission fields.

    Returns:
        tuple: the submission document (JSON-ready) and an :class:`ImportSummary`.

    Raises:
        SubmissionError: bad format/task/split, an unreadable or malformed prediction
            file, or a result that does not validate (every problem listed).
        DatasetNotFoundError, DatasetError: the built dataset cannot be read.
    """
    if fmt not in IMPORT_FORMATS:
        raise SubmissionError(f"import format {fmt!r} unknown; expected one of {', '.join(IMPORT_FORMATS)}")
    task = task or IMPORT_TASKS[fmt][0]
    if task not in IMPORT_TASKS[fmt]:
        raise SubmissionError(f"a {fmt} file gives task(s) {', '.join(IMPORT_TASKS[fmt])}, not {task!r}")
    if split not in SCORABLE_SPLITS:
        raise SubmissionError(f"split {split!r}: submissions are for {' or '.join(SCORABLE_SPLITS)}")
    gt, sizes = _dataset_images(data, split, task)
    summary = ImportSummary(format=fmt, task=task, split=split)
    if fmt == "yolo":
        found, unknown = read_yolo(source, sizes)
        if unknown:
            raise _fail(source, "label files named after no image of the dataset", [f"{u}" for u in unknown])
    elif fmt == "coco":
        found = read_coco_results(source, set(sizes), annotations=annotations, category_id=category_id)
    else:
        found = read_score_csv(source, set(sizes))
    split_ids = [g.image_id for g in gt.images]
    wanted = set(split_ids)
    summary.other_split = sum(len(v) for k, v in found.items() if k not in wanted)
    if fmt == "csv":
        missing = [i for i in split_ids if i not in found]
        if missing:
            raise _fail(source, f"no score for {len(missing)} of the {len(split_ids)} {split} images", missing)
    predictions = [_entry(task, i, found.get(i, []), summary) for i in split_ids]
    summary.images = len(predictions)
    summary.with_predictions = sum(1 for i in split_ids if found.get(i))
    model = {"name": model_name, **({"url": model_url} if model_url else {}), **({"description": description} if description else {})}
    doc: dict[str, Any] = {
        "schema": SUBMISSION_SCHEMA,
        "task": task,
        "splits_version": gt.splits_version,
        "split": split,
        "model": model,
        **({"threshold": threshold} if threshold is not None else {}),
        "predictions": predictions,
    }
    from fracbench.validate import validate_submission

    report = validate_submission(doc, gt, split=split)
    if not report.ok:
        raise _fail(source, f"converted, but the submission is invalid ({len(report.problems)} problem(s))", [str(p) for p in report.problems])
    if summary.other_split:
        summary.notes.append(f"{summary.other_split} detection(s) on images of other splits were dropped")
    if summary.trimmed:
        summary.notes.append(f"{summary.trimmed} object(s) beyond the {MAX_OBJECTS_PER_IMAGE} most confident of an image were dropped")
    return doc, summary


def _dataset_images(data: str | Path | None, split: str, task: str):
    """Ground truth of the split, and ``(width, height)`` of every image of the dataset."""
    from fracbench.convert.export import SPLITS, BuiltDataset
    from fracbench.dataset.groundtruth import load_ground_truth

    gt = load_ground_truth(data, split, task=task)
    sizes = {g.image_id: (g.width, g.height) for g in gt.images}
    dataset = BuiltDataset.open(data, verify=False)
    for other in SPLITS:
        if other != split:
            sizes.update({r["image_id"]: (r["width"], r["height"]) for r in dataset.rows(other, ("image_id", "width", "height"), batch_size=1024)})
    return gt, sizes


def _entry(task: str, image_id: str, dets: list[Detection], summary: ImportSummary) -> dict[str, Any]:
    if task == "classification":
        return {"image_id": image_id, "score": max((d.score for d in dets), default=0.0)}
    ranked = sorted(dets, key=lambda d: -d.score)
    kept = ranked[:MAX_OBJECTS_PER_IMAGE]
    summary.trimmed += len(ranked) - len(kept)
    summary.objects += len(kept)
    if task == "localization":
        return {"image_id": image_id, "boxes": [{"bbox": d.bbox, "score": d.score} for d in kept]}
    instances = []
    for d in kept:
        if d.rle is not None:
            instances.append({"score": d.score, "rle": d.rle})
        elif d.polygon:
            instances.append({"score": d.score, "polygon": d.polygon})
        else:
            raise SubmissionError(
                f"{image_id}: a detection has a box but no mask; segmentation needs masks "
                "(YOLO-seg labels, or COCO results with 'segmentation')"
            )
    return {"image_id": image_id, "instances": instances}


def write_submission(doc: dict[str, Any], out: str | Path) -> Path:
    """Write a submission atomically: compact JSON, one prediction per line.

    Returns:
        Path: ``out``.
    """
    from fracbench.atomic import write_text

    head = {k: v for k, v in doc.items() if k != "predictions"}
    lines = [json.dumps(p, separators=(",", ":")) for p in doc["predictions"]]
    text = json.dumps(head, separators=(",", ":"))[:-1] + ',"predictions":[\n' + ",\n".join(lines) + "\n]}\n"
    return write_text(out, text)
