"""Turn other tools' prediction files into a ``fracbench.submission/v1`` document.

Readers, one per format, return each image's detections
(:class:`~fracbench.convert.detections.Detection`): :func:`fracbench.convert.yolo.read_yolo`,
:func:`fracbench.convert.coco.read_coco_results`, :func:`read_score_csv` and
:func:`fracbench.convert.nnunet_preds.read_nnunet`;
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
* ``nnunet``: an ``nnUNetv2_predict`` output folder, ``<case>.png`` masks and/or
  ``<case>.npz`` probabilities (:mod:`fracbench.convert.nnunet_preds`): connected
  components become instances, scored by their peak probability (1.0 from a hard mask).
  Every image of the split must have a file, as nnU-Net writes one per case.

Detections for images of another split of the dataset are dropped and counted
(a tool run on several splits at once); an id that is no image of the dataset is
an error. More than 100 objects on an image: the 100 highest-scoring are kept
(COCO's ``maxDets``, the protocol's limit).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fracbench.convert import IMPORT_FORMATS, IMPORT_TASKS
from fracbench.convert.detections import Detection, file_stem, predictions_error
from fracbench.errors import SubmissionError
from fracbench.submission import (
    MAX_OBJECTS_PER_IMAGE,
    SCORABLE_SPLITS,
    SUBMISSION_SCHEMA,
)

ID_COLUMNS = ("image_id", "image", "file_name", "filename", "file", "path")
"""CSV header names accepted for the image column, first match wins."""

SCORE_COLUMNS = ("score", "probability", "prob", "fractured", "p_fractured")
"""CSV header names accepted for the score column, first match wins."""


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
        degenerate: boxes dropped for zero (or negative) width or height, e.g. YOLO boxes
            clipped to nothing at the image border; the format requires w, h > 0.
        from_masks: (nnunet) images read from hard ``.png`` masks, whose instances all score 1.0.
    """

    format: str
    task: str
    split: str
    images: int = 0
    with_predictions: int = 0
    objects: int = 0
    other_split: int = 0
    trimmed: int = 0
    degenerate: int = 0
    from_masks: int = 0
    notes: list[str] = field(default_factory=list)


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
        image_id, raw = file_stem((row.get(id_col) or "").strip()), (row.get(score_col) or "").strip()
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
        raise predictions_error(path, "not an image_id,score CSV for this dataset", problems)
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
    prob_threshold: float | None = None,
) -> tuple[dict[str, Any], ImportSummary]:
    """Convert a prediction file into a validated ``fracbench.submission/v1`` document.

    Args:
        fmt: ``yolo``, ``coco``, ``csv`` or ``nnunet``.
        source: the labels directory (yolo), the prediction folder (nnunet) or file.
        split: ``validation`` or ``test``.
        task: the submission's task; default per format (see
            :data:`fracbench.convert.IMPORT_TASKS`). From detections, classification
            scores an image by its most confident object (0 without any).
        model_name: the submission's ``model.name``.
        data: the built dataset (image ids and sizes); None: ``$FRACBENCH_DATA``, then the cache.
        annotations: (coco) a COCO file mapping the results' integer ids to file names.
        category_id: (coco) keep only this category.
        model_url, description, threshold: optional submission fields.
        prob_threshold: (nnunet) fracture-probability cut of ``.npz`` files; default 0.5,
            nnU-Net's own argmax.

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
        from fracbench.convert.yolo import read_yolo

        found, unknown = read_yolo(source, sizes)
        if unknown:
            raise predictions_error(source, "label files named after no image of the dataset", [f"{u}" for u in unknown])
    elif fmt == "coco":
        from fracbench.convert.coco import read_coco_results

        found = read_coco_results(source, set(sizes), annotations=annotations, category_id=category_id)
    elif fmt == "nnunet":
        from fracbench.convert.nnunet_preds import DEFAULT_THRESHOLD, read_nnunet

        read = read_nnunet(source, sizes, threshold=DEFAULT_THRESHOLD if prob_threshold is None else prob_threshold)
        if read.unknown:
            raise predictions_error(source, "files named after no image of the dataset", read.unknown)
        found, summary.from_masks = read.detections, read.from_masks
    else:
        found = read_score_csv(source, set(sizes))
    split_ids = [g.image_id for g in gt.images]
    wanted = set(split_ids)
    summary.other_split = sum(len(v) for k, v in found.items() if k not in wanted)
    if fmt in ("csv", "nnunet"):
        missing = [i for i in split_ids if i not in found]
        if missing:
            what, why = ("score", "") if fmt == "csv" else ("prediction file", " (nnU-Net writes one per case)")
            raise predictions_error(source, f"no {what} for {len(missing)} of the {len(split_ids)} {split} images{why}",
                                    missing)
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
        raise predictions_error(source, f"converted, but the submission is invalid ({len(report.problems)} problem(s))", [str(p) for p in report.problems])
    if summary.other_split:
        summary.notes.append(f"{summary.other_split} detection(s) on images of other splits were dropped")
    if summary.degenerate:
        summary.notes.append(f"{summary.degenerate} box(es) of zero width or height were dropped "
                             "(clipped to nothing at an image border?); the format needs w, h > 0")
    if summary.from_masks:
        summary.notes.append(f"{summary.from_masks} image(s) read from hard .png masks: their instances all score 1.0 "
                             "(a mask has no confidence), so AP is that of one operating point; "
                             "nnUNetv2_predict --save_probabilities writes .npz files that give ranked scores")
    if summary.trimmed:
        summary.notes.append(f"{summary.trimmed} object(s) beyond the {MAX_OBJECTS_PER_IMAGE} most confident of an image were dropped")
    return doc, summary


def _dataset_images(data: str | Path | None, split: str, task: str):
    """Ground truth of the split, and ``(width, height)`` of every image of the dataset."""
    from fracbench.dataset.built import BuiltDataset
    from fracbench.dataset.groundtruth import load_ground_truth
    from fracbench.vocab import SPLITS

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
    if task == "localization":
        usable = [d for d in dets if d.bbox is None or (d.bbox[2] > 0 and d.bbox[3] > 0)]
        summary.degenerate += len(dets) - len(usable)
        dets = usable
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
