"""Synthetic ground truth and predictions for the scoring tests and benchmarks.

:func:`make_ground_truth` builds a :class:`GroundTruth` shaped like a FracAtlas split
(sizes, fracture prevalence, 1-3 polygon instances per fractured image, regions,
hardware, views, leakage groups, a few unscored images). The ``*_predictions``
functions build submission entries of tunable quality. Everything is deterministic
given the seed.
"""

from __future__ import annotations

import gzip
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
from pycocotools import mask as mask_utils

from fracbench.dataset.groundtruth import GroundTruth, GTImage
from fracbench.submission import SUBMISSION_SCHEMA

REGIONS = ("hand", "leg", "hip", "shoulder", "mixed")
VIEWS = ("frontal", "lateral", "oblique", "multiple", "none")
SMALL_SIZES = ((64, 48), (48, 64), (96, 80))
"""(width, height) pairs small enough for fast mask tests."""
FRACATLAS_SIZES = ((373, 454), (454, 373), (2304, 2880))
"""(width, height) pairs like the real release (mostly 373x454, some 2304x2880)."""


def _polygon(rng: np.random.Generator, w: int, h: int) -> tuple[float, ...]:
    """A random star-convex polygon of 6-10 vertices inside a ``w`` x ``h`` image."""
    rx = rng.uniform(0.06, 0.2) * w
    ry = rng.uniform(0.06, 0.2) * h
    cx = rng.uniform(rx + 1, w - rx - 1)
    cy = rng.uniform(ry + 1, h - ry - 1)
    n = int(rng.integers(6, 11))
    angles = np.sort(rng.uniform(0, 2 * math.pi, n))
    radius = rng.uniform(0.6, 1.0, n)
    xs = cx + rx * radius * np.cos(angles)
    ys = cy + ry * radius * np.sin(angles)
    return tuple(round(float(v), 2) for pair in zip(xs, ys) for v in pair)


def _bbox(poly: tuple[float, ...]) -> tuple[float, float, float, float]:
    xs, ys = poly[0::2], poly[1::2]
    return (min(xs), min(ys), max(xs) - min(xs), max(ys) - min(ys))


def make_ground_truth(
    n_images: int = 120,
    *,
    prevalence: float = 0.2,
    seed: int = 0,
    sizes: tuple[tuple[int, int], ...] = SMALL_SIZES,
    size_weights: tuple[float, ...] | None = None,
    max_instances: int = 3,
    group_size: int = 2,
    n_unscored: int = 2,
    split: str = "test",
) -> GroundTruth:
    """A synthetic split: ids ``IMG0000001``.., every fractured image with 1..max_instances polygons.

    Args:
        n_images: images in the split.
        prevalence: share of fractured images (at least one of each label).
        seed: random seed.
        sizes: (width, height) choices.
        size_weights: probabilities of ``sizes`` (uniform when None).
        max_instances: most fracture instances per fractured image.
        group_size: consecutive images sharing a leakage group.
        n_unscored: images (at the end) marked ``scored=False``.
        split: the split name.
    """
    rng = np.random.default_rng(seed)
    n_pos = max(1, min(n_images - 1, round(n_images * prevalence)))
    labels = np.zeros(n_images, dtype=int)
    labels[rng.choice(n_images, n_pos, replace=False)] = 1
    images = []
    for i in range(n_images):
        w, h = sizes[int(rng.choice(len(sizes), p=size_weights))]
        polys: list[tuple[tuple[float, ...], ...]] = []
        if labels[i]:
            polys = [(_polygon(rng, w, h),) for _ in range(int(rng.integers(1, max_instances + 1)))]
        images.append(
            GTImage(
                image_id=f"IMG{i + 1:07d}",
                width=w,
                height=h,
                label=int(labels[i]),
                boxes=tuple(_bbox(p[0]) for p in polys),
                polygons=tuple(polys),
                region=REGIONS[int(rng.integers(len(REGIONS)))],
                hardware=bool(rng.random() < 0.15),
                view=VIEWS[int(rng.integers(len(VIEWS)))],
                group_id=f"G{i // group_size:07d}",
                scored=i < n_images - n_unscored,
            )
        )
    return GroundTruth(
        split=split,
        splits_version="v1",
        manifest_sha256="0" * 64,
        dataset_fingerprint="synthetic",
        dataset_version="synthetic-0",
        images=tuple(images),
    )


def classification_predictions(gt: GroundTruth, *, separation: float = 1.5, seed: int = 1) -> list[dict[str, Any]]:
    """Scores ``sigmoid(separation * label + noise)`` (0 separation: chance)."""
    rng = np.random.default_rng(seed)
    out = []
    for g in gt.images:
        z = separation * (g.label - 0.5) + rng.normal()
        out.append({"image_id": g.image_id, "score": float(1 / (1 + math.exp(-z)))})
    return out


def localization_predictions(
    gt: GroundTruth, *, seed: int = 2, jitter: float = 0.15, miss: float = 0.2, false_per_image: float = 2.0, max_boxes: int = 100
) -> list[dict[str, Any]]:
    """Jittered true boxes (some missed) plus random false boxes, scores higher for true ones."""
    rng = np.random.default_rng(seed)
    out = []
    for g in gt.images:
        boxes = []
        for x, y, w, h in g.boxes:
            if rng.random() < miss:
                continue
            dx, dy = rng.normal(0, jitter * w), rng.normal(0, jitter * h)
            sw, sh = math.exp(rng.normal(0, jitter)), math.exp(rng.normal(0, jitter))
            bw, bh = max(1.0, w * sw), max(1.0, h * sh)
            bx = min(max(0.0, x + dx), g.width - bw)
            by = min(max(0.0, y + dy), g.height - bh)
            boxes.append({"bbox": [round(bx, 2), round(by, 2), round(bw, 2), round(bh, 2)], "score": round(float(rng.beta(5, 2)), 6)})
        for _ in range(min(int(rng.poisson(false_per_image)), max_boxes - len(boxes))):
            bw, bh = rng.uniform(0.05, 0.3) * g.width, rng.uniform(0.05, 0.3) * g.height
            bx, by = rng.uniform(0, g.width - bw), rng.uniform(0, g.height - bh)
            boxes.append({"bbox": [round(bx, 2), round(by, 2), round(bw, 2), round(bh, 2)], "score": round(float(rng.beta(2, 5)), 6)})
        out.append({"image_id": g.image_id, "boxes": boxes[:max_boxes]})
    return out


def _shift_polygon(poly: tuple[float, ...], dx: float, dy: float, w: int, h: int) -> list[float]:
    xs = np.clip(np.asarray(poly[0::2]) + dx, 0, w)
    ys = np.clip(np.asarray(poly[1::2]) + dy, 0, h)
    return [round(float(v), 2) for pair in zip(xs, ys) for v in pair]


def segmentation_predictions(
    gt: GroundTruth, *, seed: int = 3, shift: float = 3.0, miss: float = 0.2, false_per_image: float = 1.0, polygon_share: float = 0.3, max_instances: int = 100
) -> list[dict[str, Any]]:
    """Shifted true polygons (as RLE or polygon instances), some missed, plus random false masks."""
    rng = np.random.default_rng(seed)
    out = []
    for g in gt.images:
        instances = []
        for polys in g.polygons:
            if rng.random() < miss:
                continue
            dx, dy = rng.normal(0, shift, 2)
            shifted = [_shift_polygon(p, dx, dy, g.width, g.height) for p in polys]
            instances.append(_instance(shifted, g, float(rng.beta(5, 2)), rng.random() < polygon_share))
        for _ in range(min(int(rng.poisson(false_per_image)), max_instances - len(instances))):
            poly = list(_polygon(rng, g.width, g.height))
            instances.append(_instance([poly], g, float(rng.beta(2, 5)), rng.random() < polygon_share))
        out.append({"image_id": g.image_id, "instances": instances})
    return out


def _instance(polys: list[list[float]], g: GTImage, score: float, as_polygon: bool) -> dict[str, Any]:
    if as_polygon:
        return {"score": round(score, 6), "polygon": polys}
    rle = mask_utils.merge(mask_utils.frPyObjects(polys, g.height, g.width))
    return {"score": round(score, 6), "rle": {"size": [g.height, g.width], "counts": rle["counts"].decode("ascii")}}


def perfect_predictions(gt: GroundTruth, task: str) -> list[dict[str, Any]]:
    """Predictions equal to the ground truth, score 1 for positives and 0 for negatives."""
    out = []
    for g in gt.images:
        if task == "classification":
            out.append({"image_id": g.image_id, "score": float(g.label)})
        elif task == "localization":
            out.append({"image_id": g.image_id, "boxes": [{"bbox": list(b), "score": 1.0} for b in g.boxes]})
        else:
            out.append({"image_id": g.image_id, "instances": [{"score": 1.0, "polygon": [list(p) for p in polys]} for polys in g.polygons]})
    return out


def submission(gt: GroundTruth, task: str, predictions: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
    """A complete submission document around ``predictions``."""
    doc: dict[str, Any] = {
        "schema": SUBMISSION_SCHEMA,
        "task": task,
        "splits_version": gt.splits_version,
        "split": gt.split,
        "model": {"name": "synthetic", "url": "https://example.org", "description": "test predictions"},
        "predictions": predictions,
    }
    doc.update(overrides)
    return doc


def write_submission(path: str | Path, doc: dict[str, Any]) -> Path:
    """Write ``doc`` as JSON, gzipped when ``path`` ends in ``.gz``."""
    path = Path(path)
    data = json.dumps(doc).encode("utf-8")
    path.write_bytes(gzip.compress(data, mtime=0) if path.suffix == ".gz" else data)
    return path


def write_predictions(
    path: str | Path,
    data: str | Path,
    *,
    name: str = "synthetic",
    task: str = "classification",
    split: str = "test",
    splits_version: str = "v1",
    separation: float = 1.5,
    seed: int = 1,
) -> Path:
    """Write a ``fracbench.submission/v1`` file for a split of a built dataset (gzipped for ``.gz``).

    Args:
        path: where to write it.
        data: the built dataset whose ground truth the predictions are made for.
        name: the model name the submission declares.
        task: ``classification``, ``localization`` or ``segmentation``.
        split: the split predicted.
        splits_version: ``v1`` or ``legacy``.
        separation: classification only: how well scores separate the labels (0: chance).
        seed: random seed of the predictions; another seed gives another file and other numbers.
    """
    from fracbench.dataset.groundtruth import load_ground_truth

    gt = load_ground_truth(data, split, splits_version=splits_version)
    if task == "classification":
        predictions = classification_predictions(gt, separation=separation, seed=seed)
    elif task == "localization":
        predictions = localization_predictions(gt, seed=seed)
    else:
        predictions = segmentation_predictions(gt, seed=seed)
    return write_submission(path, submission(gt, task, predictions, model={"name": name}))


def reference_cocoeval(gt: GroundTruth, predictions: list[dict[str, Any]], task: str, *, scored_only: bool = True) -> np.ndarray:
    """The 12 ``COCOeval.stats`` of a bare, standard pycocotools run (loadRes, evaluate, accumulate, summarize).

    Every (scored) image is listed in the ground truth, negatives included; ``iscrowd`` 0;
    polygon predictions are rasterised with ``frPyObjects`` + ``merge`` as COCO does for polygons.
    """
    import contextlib
    import copy
    import io

    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images = [g for g in gt.images if g.scored or not scored_only]
    ids = {g.image_id: i + 1 for i, g in enumerate(images)}
    anns = []
    for g in images:
        for box, polys in zip(g.boxes, g.polygons or [()] * len(g.boxes)):
            ann = {"id": len(anns) + 1, "image_id": ids[g.image_id], "category_id": 1, "bbox": list(box), "iscrowd": 0, "area": box[2] * box[3]}
            if task == "segmentation":
                ann["segmentation"] = [list(p) for p in polys]
                ann["area"] = float(mask_utils.area(mask_utils.merge(mask_utils.frPyObjects(ann["segmentation"], g.height, g.width))))
            anns.append(ann)
    sizes = {g.image_id: (g.height, g.width) for g in images}
    results = []
    for p in copy.deepcopy(predictions):
        if p["image_id"] not in ids:
            continue
        image_id = ids[p["image_id"]]
        if task == "localization":
            results += [{"image_id": image_id, "category_id": 1, "bbox": b["bbox"], "score": b["score"]} for b in p["boxes"]]
        else:
            h, w = sizes[p["image_id"]]
            for inst in p["instances"]:
                if "rle" in inst:
                    rle = inst["rle"]
                else:
                    rle = mask_utils.merge(mask_utils.frPyObjects(inst["polygon"], h, w))
                    rle = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
                results.append({"image_id": image_id, "category_id": 1, "segmentation": rle, "score": inst["score"]})
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = {
            "images": [{"id": ids[g.image_id], "width": g.width, "height": g.height} for g in images],
            "annotations": anns,
            "categories": [{"id": 1, "name": "fracture"}],
        }
        coco.createIndex()
        dets = coco.loadRes(results) if results else COCO()
        if not results:
            dets.dataset = {"images": coco.dataset["images"], "annotations": [], "categories": coco.dataset["categories"]}
            dets.createIndex()
        ev = COCOeval(coco, dets, "bbox" if task == "localization" else "segm")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return np.asarray(ev.stats)
