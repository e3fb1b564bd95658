"""Localization metrics: COCO AP against pycocotools, FROC against a brute-force reference."""

from __future__ import annotations

import copy
import dataclasses

import numpy as np
import pytest

from fracbench.dataset.groundtruth import GroundTruth
from fracbench.metrics.coco import MatchTable, match_images
from fracbench.metrics.detection import FROC_FP_RATES, LOCALIZATION_METRICS, froc_metric_name
from fracbench.submission import parse_submission
from fracbench.tasks.localization import prepare
from tests.synthetic_gt import (
    localization_predictions,
    make_ground_truth,
    perfect_predictions,
    reference_cocoeval,
    submission,
)


def _evaluate(gt: GroundTruth, preds):
    images = [g for g in gt.images if g.scored]
    return prepare(images, parse_submission(submission(gt, "localization", preds)))


def _ones(ev):
    return {k: float(v[0]) for k, v in ev.compute(np.ones((1, ev.n))).items()}


CASES = [
    dict(seed=0),
    dict(seed=1, false_per_image=6.0),
    dict(seed=2, jitter=0.05, miss=0.0),
    dict(seed=3, ties=True),
    dict(seed=4, empty_share=0.5),
    dict(seed=5, many=True),
]


def _case(seed, ties=False, empty_share=0.0, many=False, **kw):
    gt = make_ground_truth(90, seed=seed, prevalence=0.3, max_instances=4)
    preds = localization_predictions(gt, seed=seed + 10, false_per_image=40.0 if many else kw.pop("false_per_image", 2.0), **kw)
    rng = np.random.default_rng(seed)
    for p in preds:
        if ties:
            for b in p["boxes"]:
                b["score"] = round(b["score"], 1)
        if rng.random() < empty_share:
            p["boxes"] = []
    return gt, preds


@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_ap_ap50_ar100_equal_cocoeval(case):
    gt, preds = _case(**case)
    stats = reference_cocoeval(gt, preds, "localization")
    got = _ones(_evaluate(gt, preds))
    assert got["ap"] == pytest.approx(stats[0], abs=1e-6)
    assert got["ap50"] == pytest.approx(stats[1], abs=1e-6)
    assert got["ar100"] == pytest.approx(stats[8], abs=1e-6)


def test_negatives_count_as_images():
    gt, preds = _case(seed=7)
    base = _ones(_evaluate(gt, preds))
    negative = next(i for i, g in enumerate(gt.images) if g.label == 0 and g.scored)
    g = gt.images[negative]
    preds[negative]["boxes"] = [{"bbox": [1, 1, g.width / 2, g.height / 2], "score": 0.999}] * 3
    worse = _ones(_evaluate(gt, preds))
    assert worse["ap50"] < base["ap50"]
    assert worse["ap50"] == pytest.approx(reference_cocoeval(gt, preds, "localization")[1], abs=1e-6)
    assert worse["image_auroc"] < base["image_auroc"]


def _duplicated(gt: GroundTruth, preds, weights):
    """GT and predictions with image i repeated weights[i] times (copies adjacent, id order kept)."""
    images, out = [], []
    for g, p, k in zip(gt.images, preds, weights):
        for c in range(int(k)):
            new_id = f"IMG{int(g.image_id[3:]) * 10 + c:07d}"
            images.append(dataclasses.replace(g, image_id=new_id))
            out.append({**copy.deepcopy(p), "image_id": new_id})
    return dataclasses.replace(gt, images=tuple(images)), out


@pytest.mark.parametrize("seed", range(4))
def test_weighted_accumulate_equals_cocoeval_on_the_resampled_set(seed):
    gt = make_ground_truth(60, seed=seed, prevalence=0.35, max_instances=3, n_unscored=0)
    preds = localization_predictions(gt, seed=seed, false_per_image=3.0)
    rng = np.random.default_rng(seed)
    weights = rng.integers(0, 4, len(gt.images))
    weights[np.flatnonzero([g.label for g in gt.images])[0]] = 1
    ev = _evaluate(gt, preds)
    got = {k: float(v[0]) for k, v in ev.compute(weights[None, :].astype(float)).items()}
    big_gt, big_preds = _duplicated(gt, preds, weights)
    stats = reference_cocoeval(big_gt, big_preds, "localization")
    assert got["ap"] == pytest.approx(stats[0], abs=1e-6)
    assert got["ap50"] == pytest.approx(stats[1], abs=1e-6)
    assert got["ar100"] == pytest.approx(stats[8], abs=1e-6)
    # FROC and image AUROC of the weighting equal those of the duplicated set
    big = _ones(_evaluate(big_gt, big_preds))
    for name in LOCALIZATION_METRICS:
        assert got[name] == pytest.approx(big[name], abs=1e-12), name


def _iou(a, b):
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    return inter / (aw * ah + bw * bh - inter)


def _froc_reference(gt: GroundTruth, preds):
    """Greedy one-to-one matching at IoU >= 0.5 by score, then a sweep over every threshold."""
    records, lesions, n_images = [], 0, 0
    by_id = {p["image_id"]: p for p in preds}
    for g in gt.images:
        if not g.scored:
            continue
        n_images += 1
        lesions += len(g.boxes)
        taken: set[int] = set()
        for box in sorted(by_id[g.image_id]["boxes"], key=lambda b: -b["score"]):
            best, best_iou = None, 0.5
            for j, truth in enumerate(g.boxes):
                if j in taken:
                    continue
                iou = _iou(box["bbox"], truth)
                if iou >= best_iou:
                    best, best_iou = j, iou
            if best is not None:
                taken.add(best)
            records.append((box["score"], best is not None))
    points = [(0, 0)]
    for s in sorted({r[0] for r in records}, reverse=True):
        tp = sum(1 for r in records if r[0] >= s and r[1])
        fp = sum(1 for r in records if r[0] >= s and not r[1])
        points.append((tp, fp))
    return {f: max(tp / lesions for tp, fp in points if fp / n_images <= f) for f in FROC_FP_RATES}


@pytest.mark.parametrize("case", CASES[:4], ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()))
def test_froc_equals_brute_force(case):
    gt, preds = _case(**case)
    got = _ones(_evaluate(gt, preds))
    ref = _froc_reference(gt, preds)
    for f in FROC_FP_RATES:
        assert got[froc_metric_name(f)] == pytest.approx(ref[f], abs=1e-12), f
    assert got["froc_cpm"] == pytest.approx(np.mean(list(ref.values())), abs=1e-12)


def test_perfect_predictions_score_best():
    gt = make_ground_truth(50, seed=3, prevalence=0.4)
    got = _ones(_evaluate(gt, perfect_predictions(gt, "localization")))
    for name in LOCALIZATION_METRICS:
        assert got[name] == pytest.approx(1.0), name


def test_empty_predictions_score_zero():
    gt = make_ground_truth(40, seed=4)
    got = _ones(_evaluate(gt, [{"image_id": g.image_id, "boxes": []} for g in gt.images]))
    assert got["ap50"] == 0 and got["ap"] == 0 and got["ar100"] == 0 and got["froc_cpm"] == 0
    assert got["image_auroc"] == 0.5


def test_zero_weight_equals_leaving_images_out():
    gt, preds = _case(seed=8)
    ev = _evaluate(gt, preds)
    keep = np.arange(ev.n) % 3 != 0
    w = keep[None, :].astype(float)
    full = ev.compute(w)
    sub = ev.subset(np.flatnonzero(keep)).compute(np.ones((1, int(keep.sum()))))
    for name in LOCALIZATION_METRICS:
        assert full[name][0] == pytest.approx(sub[name][0], abs=1e-12), name


def test_match_images_does_not_mutate_inputs():
    gt = [[{"bbox": [1.0, 1.0, 5.0, 5.0]}], []]
    dt = [[{"bbox": [1.0, 1.0, 5.0, 4.0], "score": 0.9}], [{"bbox": [0.0, 0.0, 2.0, 2.0], "score": 0.3}]]
    gt0, dt0 = copy.deepcopy(gt), copy.deepcopy(dt)
    matches = match_images([(10, 10), (10, 10)], gt, dt, "bbox")
    assert gt == gt0 and dt == dt0
    table = MatchTable(matches)
    assert table.compute(np.ones((1, 2)))["ap50"][0] == pytest.approx(1.0)


def test_no_lesions_gives_nan():
    gt = make_ground_truth(20, seed=5, prevalence=0.2)
    ev = _evaluate(gt, localization_predictions(gt))
    neg = np.array([1.0 if g.label == 0 else 0.0 for g in gt.images if g.scored])
    out = ev.compute(neg[None, :])
    assert np.isnan(out["ap50"][0]) and np.isnan(out["froc_cpm"][0])
