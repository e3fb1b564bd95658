"""What a report shows about one submission, computed from the submission and the split's ground truth.

Conventions (also in docs/PROTOCOL.md, "Reports"):

* scores, CIs and subgroups are the Result ``fracbench score`` gives (same seed, same draws);
* fracture-size buckets (localization, segmentation): a fractured image belongs to the bucket of
  its *largest* ground-truth box (area w x h in original pixels, :data:`SIZE_BUCKETS`); each bucket's
  main score is computed on its fractured images plus every non-fractured image (false positives on
  negatives count in every bucket), with a CI from the same group-bootstrap draws;
* reliability diagram (classification): the 15 equal-width bins of the ECE, each with its mean score,
  fracture rate and a Wilson 95 % interval of the rate;
* error gallery: the highest-scoring false positives on non-fractured images (classification:
  images scored at or above the operating threshold; localization/segmentation: boxes or masks,
  all of which are false positives there) and the missed fractures (classification: fractured
  images below the threshold, lowest first; localization/segmentation: ground-truth instances no
  prediction matches at IoU 0.5 in COCO's matching, largest first).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from fracbench.dataset.groundtruth import GroundTruth
from fracbench.metrics import compact_curve
from fracbench.metrics.bootstrap import DEFAULT_RESAMPLES, DEFAULT_SEED, draw_groups
from fracbench.result import Result

SIZE_BUCKETS = (("small", 0.0, 64.0**2), ("medium", 64.0**2, 128.0**2), ("large", 128.0**2, 1e10))
"""Fracture size buckets by ground-truth area in original pixels: (name, low, high), low <= area < high."""
GALLERY_ITEMS = 8
"""False positives and missed fractures shown, each."""
PREDICTIONS_DRAWN = 3
"""Highest-scoring predictions drawn on a missed fracture's image."""

Box = tuple[float, float, float, float]


@dataclass
class Curve:
    """One plot: ``points`` as (x, y) pairs; ``diagonal`` draws the chance line."""

    title: str
    x_label: str
    y_label: str
    points: list[tuple[float, float]]
    diagonal: bool = False
    note: str = ""


@dataclass
class ForestRow:
    """One subgroup's main score with its CI."""

    attribute: str
    value_name: str
    n_images: int
    n_fractured: int
    value: float | None
    ci95: tuple[float, float] | None


@dataclass
class ReliabilityBin:
    """One bin of the reliability diagram: scores in [low, high)."""

    low: float
    high: float
    n: int
    mean_score: float
    rate: float
    rate_ci: tuple[float, float]


@dataclass
class GalleryPick:
    """An error to draw: an image, what went wrong, and what to draw on it.

    Attributes:
        image_id: the image.
        kind: ``false positive`` or ``missed fracture``.
        caption: one line under the thumbnail.
        focus: the box (x, y, w, h, original pixels) the thumbnail centres on; None: whole image.
        gt_boxes, gt_polygons: ground truth to draw (boxes for classification/localization, polygons for segmentation).
        pred_boxes: predicted boxes with scores.
        pred_masks: predicted masks (COCO RLE dicts) with scores.
    """

    image_id: str
    kind: str
    caption: str
    focus: Box | None = None
    gt_boxes: list[Box] = field(default_factory=list)
    gt_polygons: list[tuple[tuple[float, ...], ...]] = field(default_factory=list)
    pred_boxes: list[tuple[Box, float]] = field(default_factory=list)
    pred_masks: list[tuple[dict[str, Any], float]] = field(default_factory=list)


@dataclass
class ReportData:
    """Everything a report page shows."""

    source: str
    result: Result
    gt: GroundTruth
    curves: list[Curve]
    forest: list[ForestRow]
    reliability: list[ReliabilityBin]
    picks: list[GalleryPick]
    operating_threshold: float | None


def analyse_submission(
    path: str | Path,
    *,
    data: str | Path | None = None,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    gt: GroundTruth | None = None,
    n_gallery: int = GALLERY_ITEMS,
    progress: Callable[[int, int], None] | None = None,
) -> ReportData:
    """Score a submission and gather the report's curves, subgroups, reliability and gallery picks.

    Args:
        path: the submission (``.json`` or ``.json.gz``).
        data: built dataset directory (default ``$FRACBENCH_DATA``, then the cache dir).
        n_resamples, seed: group bootstrap, as ``fracbench score``.
        gt: ground truth to use instead of loading it.
        n_gallery: false positives and missed fractures picked, each.
        progress: ``progress(done, total)`` while resampling.

    Raises:
        SubmissionError: the submission is invalid. ScoringError, DatasetNotFoundError: as ``score``.
    """
    from fracbench.score import prepare, score_prepared, validated

    report, gt = validated(path, data=data, gt=gt)
    prepared = prepare(report, gt)
    result = score_prepared(report, gt, prepared, n_resamples=n_resamples, seed=seed, progress=progress)
    task, ev, images = prepared.spec.name, prepared.evaluation, prepared.images
    forest = [
        ForestRow(attr, value, result.subgroup_sizes[attr][value]["n_images"], result.subgroup_sizes[attr][value]["n_fractured"],
                  metrics[result.main_score.name].value, metrics[result.main_score.name].ci95)
        for attr, values in result.subgroups.items() for value, metrics in values.items()
    ]
    reliability: list[ReliabilityBin] = []
    if task == "classification":
        curves = [_roc(result.curves.get("roc", {}), "ROC"), _pr_of_scores(ev.scores, ev.labels)]
        reliability = reliability_bins(ev.scores, ev.labels)
        picks = _classification_picks(images, ev.scores, ev.threshold, n_gallery)
    else:
        from fracbench.metrics.detection import FrocTable

        forest += _size_rows(ev, images, result.main_score.name, n_resamples, seed)
        froc = result.curves.get("froc") or FrocTable(ev.table).curve()
        curves = [_pr(result.curves.get("pr_iou50", {}))]
        if task == "localization":
            fpr, tpr = ev.image.roc_curve()
            curves.insert(0, _roc({"fpr": list(fpr), "tpr": list(tpr)}, "ROC (image score = highest box score)"))
        from fracbench.leaderboard.plots import clip_curve, curve_x_max

        cap = curve_x_max("froc")  # the range the FROC metrics read, as on the board
        curves.append(Curve("FROC", "False positives per image", "Lesion sensitivity",
                            clip_curve(list(zip(froc.get("fp_per_image", []), froc.get("sensitivity", []))), cap),
                            note=f"to {cap:g} FP/image, the range of the FROC metrics"))
        picks = _instance_picks(task, images, report.submission, ev, n_gallery)
    return ReportData(str(path), result, gt, curves, forest, reliability, picks, result.operating_threshold)


def _roc(curve: dict[str, list[float]], title: str) -> Curve:
    return Curve(title, "False positive rate", "True positive rate (sensitivity)",
                 list(zip(curve.get("fpr", []), curve.get("tpr", []))), diagonal=True)


def _pr(curve: dict[str, list[float]]) -> Curve:
    pts = [(r, p) for r, p in zip(curve.get("recall", []), curve.get("precision", [])) if p >= 0]
    return Curve("Precision-recall (IoU 0.5, COCO interpolated)", "Recall", "Precision", pts)


def _pr_of_scores(scores: np.ndarray, labels: np.ndarray) -> Curve:
    """The empirical precision-recall curve of image scores (one point per distinct score)."""
    order = np.argsort(-scores, kind="mergesort")
    s, y = scores[order], labels[order]
    ends = np.flatnonzero(np.concatenate((s[1:] != s[:-1], [True]))) if s.size else np.zeros(0, int)
    tp, fp = np.cumsum(y)[ends], np.cumsum(1 - y)[ends]
    n_pos = max(int(y.sum()), 1)
    if not ends.size:
        return Curve("Precision-recall", "Recall", "Precision", [])
    pts = compact_curve({"recall": tp / n_pos, "precision": tp / np.maximum(tp + fp, 1)})
    return Curve("Precision-recall", "Recall", "Precision", list(zip(pts["recall"], pts["precision"])),
                 note=f"prevalence {y.mean():.3f} (a chance classifier's precision)")


def wilson(k: float, n: float, z: float = 1.959963984540054) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n (n > 0)."""
    p = k / n
    den = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, centre - half), min(1.0, centre + half)


def reliability_bins(scores: np.ndarray, labels: np.ndarray) -> list[ReliabilityBin]:
    """The ECE's 15 equal-width bins that hold images (see :mod:`fracbench.metrics.classification`)."""
    from fracbench.metrics.classification import ECE_BINS

    bins = np.clip(np.floor(scores * ECE_BINS), 0, ECE_BINS - 1).astype(int)
    out = []
    for b in range(ECE_BINS):
        inside = bins == b
        n = int(inside.sum())
        if n:
            k = float(labels[inside].sum())
            out.append(ReliabilityBin(b / ECE_BINS, (b + 1) / ECE_BINS, n, float(scores[inside].mean()), k / n, wilson(k, n)))
    return out


def _largest_box_area(boxes) -> float:
    return max((w * h for _, _, w, h in boxes), default=0.0)


def _size_rows(ev, images, metric: str, n_resamples: int, seed: int) -> list[ForestRow]:
    from fracbench.score import metric_values

    resamples = draw_groups([g.group_id for g in images], n_resamples, seed)
    negatives = [i for i, g in enumerate(images) if not g.label]
    rows = []
    for name, low, high in SIZE_BUCKETS:
        members = [i for i, g in enumerate(images) if g.label and low <= _largest_box_area(g.boxes) < high]
        if not members:
            continue
        index = np.array(sorted(members + negatives))
        mv = metric_values(ev.subset(index), resamples, index)[metric]
        label = f"{name} ({math.sqrt(low):.0f}–{math.sqrt(high):.0f} px)" if high < 1e9 else f"{name} (≥ {math.sqrt(low):.0f} px)"
        rows.append(ForestRow("fracture size", label, int(index.size), len(members), mv.value, mv.ci95))
    return rows


def _classification_picks(images, scores: np.ndarray, threshold: float, n: int) -> list[GalleryPick]:
    negatives = sorted((i for i, g in enumerate(images) if not g.label and scores[i] >= threshold), key=lambda i: (-scores[i], images[i].image_id))
    missed = sorted((i for i, g in enumerate(images) if g.label and scores[i] < threshold), key=lambda i: (scores[i], images[i].image_id))
    picks = [GalleryPick(images[i].image_id, "false positive", f"score {scores[i]:.3f} ≥ threshold {threshold:g}, no fracture") for i in negatives[:n]]
    picks += [GalleryPick(images[i].image_id, "missed fracture", f"score {scores[i]:.3f} < threshold {threshold:g}",
                          gt_boxes=list(images[i].boxes)) for i in missed[:n]]
    return picks


def _mask_of(inst: Any, height: int, width: int) -> dict[str, Any]:
    from fracbench.metrics.rle import polygons_to_rle

    rle = getattr(inst, "rle", None)
    if rle is not None:
        return {"size": list(rle.size), "counts": rle.counts}
    return polygons_to_rle(inst.polygon, height, width)


def _instance_picks(task: str, images, submission, ev, n: int) -> list[GalleryPick]:
    from pycocotools import mask as mask_utils

    segm = task == "segmentation"
    by_id = {p.image_id: (p.instances if segm else p.boxes) for p in submission.predictions}
    false_pos = []
    for g in images:
        if not g.label:
            false_pos += [(float(p.score), g.image_id, p) for p in by_id[g.image_id]]
    false_pos.sort(key=lambda t: (-t[0], t[1]))
    picks = []
    gts = {g.image_id: g for g in images}
    for score, image_id, p in false_pos[:n]:
        g = gts[image_id]
        if segm:
            rle = _mask_of(p, g.height, g.width)
            box = tuple(mask_utils.toBbox(_coco_rle(rle)).tolist())
            picks.append(GalleryPick(image_id, "false positive", f"mask score {score:.3f} on an image without fracture",
                                     focus=box, pred_masks=[(rle, score)]))
        else:
            picks.append(GalleryPick(image_id, "false positive", f"box score {score:.3f} on an image without fracture",
                                     focus=tuple(p.bbox), pred_boxes=[(tuple(p.bbox), score)]))
    missed = []
    for i, g in enumerate(images):
        matched = ev.matches[i].gt_matched
        for j, box in enumerate(g.boxes):
            if matched is not None and j < matched.shape[1] and not matched[0, j]:
                missed.append((-box[2] * box[3], g.image_id, j))
    missed.sort()
    for _, image_id, j in missed[:n]:
        g = gts[image_id]
        preds = sorted(by_id[image_id], key=lambda p: -p.score)[:PREDICTIONS_DRAWN]
        box = tuple(g.boxes[j])
        caption = f"fracture {j + 1} of {len(g.boxes)} ({box[2]:.0f}×{box[3]:.0f} px) not matched at IoU 0.5"
        pick = GalleryPick(image_id, "missed fracture", caption, focus=box)
        if segm:
            pick.gt_polygons = [g.polygons[j]]
            pick.pred_masks = [(_mask_of(p, g.height, g.width), float(p.score)) for p in preds]
        else:
            pick.gt_boxes = [box]
            pick.pred_boxes = [(tuple(p.bbox), float(p.score)) for p in preds]
        picks.append(pick)
    return picks


def _coco_rle(rle: dict[str, Any]) -> dict[str, Any]:
    """A fresh RLE dict pycocotools accepts (counts as bytes)."""
    counts = rle["counts"]
    return {"size": list(rle["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
