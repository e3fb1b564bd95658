"""Image-level fracture scores from the classifier and the detector together.

A radiograph with a confident fracture box is likely fractured even where the
classifier hesitates. The combination is ``w * p + (1 - w) * s``, with ``p`` the
classifier's probability and ``s`` the detector's highest box score on the image
(0 without a box). ``w`` is chosen on validation from :data:`WEIGHTS` by AUROC (the
scorer's own); the operating threshold is Youden's J on the combined validation
scores. It is reported separately from the classifier alone: it needs both models.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fracbench.errors import BaselineError

WEIGHTS = tuple(round(0.05 * k, 2) for k in range(21))
"""The classifier's weight, validation grid (0: detector only, 1: classifier only)."""
MODEL_NAME = "fracbench-ref-classifier+detector"


def _read(path: str | Path, task: str) -> dict:
    doc = json.loads(Path(path).read_text(encoding="utf-8"))
    if doc.get("task") != task:
        raise BaselineError(f"{path}: a {doc.get('task')!r} submission, expected {task}")
    return doc


def image_scores(cls_doc: dict, det_doc: dict) -> tuple[list[str], np.ndarray, np.ndarray]:
    """``(image ids, classifier probabilities, detector top box scores)`` over the same images.

    Raises:
        BaselineError: the two submissions are for different splits or images.
    """
    if (cls_doc["split"], cls_doc["splits_version"]) != (det_doc["split"], det_doc["splits_version"]):
        raise BaselineError(f"classifier predicts {cls_doc['split']}, detector {det_doc['split']}: combine one split")
    p = {d["image_id"]: float(d["score"]) for d in cls_doc["predictions"]}
    s = {d["image_id"]: max((float(b["score"]) for b in d["boxes"]), default=0.0) for d in det_doc["predictions"]}
    if set(p) != set(s):
        raise BaselineError(f"the submissions cover different images ({len(set(p) ^ set(s))} differ)")
    ids = sorted(p)
    return ids, np.array([p[i] for i in ids]), np.array([s[i] for i in ids])


def fit(cls_val: dict, det_val: dict, labels: dict[str, int], scored: set[str]) -> dict:
    """The weight and threshold fitted on validation, with the AUROC of every weight tried."""
    from fracbench.baselines.classification import youden_threshold
    from fracbench.metrics.classification import auroc

    ids, p, s = image_scores(cls_val, det_val)
    keep = np.array([i in scored for i in ids])
    y = np.array([labels[i] for i in ids])[keep]
    grid = {}
    for w in WEIGHTS:
        c = (w * p + (1 - w) * s)[keep]
        grid[w] = auroc(c, y)
    best = max(WEIGHTS, key=lambda w: (grid[w], w))  # ties: lean on the classifier
    combined = (best * p + (1 - best) * s)[keep]
    return {"weight": best, "threshold": youden_threshold(combined, y), "validation_auroc": grid[best],
            "validation_auroc_by_weight": {str(w): v for w, v in grid.items()}}


def combine(cls_doc: dict, det_doc: dict, fitted: dict) -> dict:
    """A classification submission of the combined scores of one split."""
    ids, p, s = image_scores(cls_doc, det_doc)
    w = float(fitted["weight"])
    c = np.clip(w * p + (1 - w) * s, 0.0, 1.0)
    return {
        "schema": cls_doc["schema"], "task": "classification", "splits_version": cls_doc["splits_version"],
        "split": cls_doc["split"],
        "model": {"name": MODEL_NAME, "url": None,
                  "description": f"{w:g} x classifier probability + {1 - w:g} x detector top box score "
                                 f"(weight and threshold fitted on validation); classifier: "
                                 f"{cls_doc['model']['name']}, detector: {det_doc['model']['name']}"},
        "threshold": float(fitted["threshold"]),
        "predictions": [{"image_id": i, "score": float(v)} for i, v in zip(ids, c, strict=True)],
    }


def combine_files(cls_val: Path, det_val: Path, cls_target: Path, det_target: Path, data) -> tuple[dict, dict]:
    """Fit on the validation pair, apply to the target pair; returns ``(submission, fitted)``."""
    from fracbench.dataset.groundtruth import load_ground_truth

    cv, dv = _read(cls_val, "classification"), _read(det_val, "localization")
    if cv["split"] != "validation":
        raise BaselineError(f"{cls_val}: fit on the validation split, found {cv['split']!r}")
    gt = load_ground_truth(data, "validation")
    labels = {g.image_id: g.label for g in gt.images}
    fitted = fit(cv, dv, labels, {g.image_id for g in gt.images if g.scored})
    return combine(_read(cls_target, "classification"), _read(det_target, "localization"), fitted), fitted
