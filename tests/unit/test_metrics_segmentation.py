"""Segmentation metrics: mask AP against pycocotools, Dice conventions, the RLE checker."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pycocotools import mask as mask_utils

from fracbench.dataset.groundtruth import GTImage
from fracbench.metrics.rle import check_rle, check_rles, polygons_to_rle, rle_runs
from fracbench.metrics.segmentation import SEGMENTATION_METRICS, DiceInputs, prepare_segmentation
from fracbench.submission import parse_submission
from fracbench.tasks.segmentation import prepare
from tests.synthetic_gt import make_ground_truth, perfect_predictions, reference_cocoeval, segmentation_predictions, submission

# pycocotools.mask.decode (used here only to check our decoder) trips a numpy 2 deprecation
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _evaluate(gt, preds, threshold=None):
    images = [g for g in gt.images if g.scored]
    extra = {} if threshold is None else {"threshold": threshold}
    return prepare(images, parse_submission(submission(gt, "segmentation", preds, **extra)))


def _ones(ev):
    return {k: float(v[0]) for k, v in ev.compute(np.ones((1, ev.n))).items()}


@pytest.mark.parametrize("seed", range(4))
def test_mask_ap_equals_cocoeval(seed):
    gt = make_ground_truth(70, seed=seed, prevalence=0.35, max_instances=3)
    preds = segmentation_predictions(gt, seed=seed, shift=1.0 + seed, false_per_image=1.5, polygon_share=0.4)
    if seed == 3:
        for p in preds:
            for inst in p["instances"]:
                inst["score"] = round(inst["score"], 1)
    stats = reference_cocoeval(gt, preds, "segmentation")
    got = _ones(_evaluate(gt, preds))
    assert got["mask_ap"] == pytest.approx(stats[0], abs=1e-6)
    assert got["mask_ap50"] == pytest.approx(stats[1], abs=1e-6)


def test_perfect_predictions_score_best():
    gt = make_ground_truth(40, seed=1, prevalence=0.4)
    got = _ones(_evaluate(gt, perfect_predictions(gt, "segmentation")))
    assert got["mask_ap50"] == pytest.approx(1.0) and got["mask_ap"] == pytest.approx(1.0)
    assert got["dice_per_image"] == 1.0 and got["dice_global"] == 1.0 and got["negative_fp_rate"] == 0.0


def _image(label, polygons=()):
    return GTImage("IMG0000001", 20, 10, label, tuple((0, 0, 1, 1) for _ in polygons), tuple(polygons), "hand", False, "frontal", "G1")


SQUARE = ((2.0, 2.0, 8.0, 2.0, 8.0, 8.0, 2.0, 8.0),)  # 6x6 = 36 px
SQUARE_RLE = polygons_to_rle([list(SQUARE[0])], 10, 20)


def test_dice_conventions():
    pos, neg = _image(1, [SQUARE]), _image(0)
    half = polygons_to_rle([[2, 2, 8, 2, 8, 5, 2, 5]], 10, 20)
    ev = prepare_segmentation([pos, neg], [[(0.9, half)], []])
    got = _ones(ev)
    inter, pred, truth = mask_utils.area(mask_utils.merge([half, SQUARE_RLE], intersect=1)), mask_utils.area(half), mask_utils.area(SQUARE_RLE)
    assert got["dice_per_image"] == pytest.approx(2 * inter / (pred + truth))
    assert got["negative_fp_rate"] == 0.0
    # nothing predicted on a fractured image: Dice 0 there
    assert _ones(prepare_segmentation([pos, neg], [[], []]))["dice_per_image"] == 0.0
    # negatives never enter dice_per_image; a false mask on one raises negative_fp_rate and lowers dice_global
    fp = _ones(prepare_segmentation([pos, neg], [[(0.9, SQUARE_RLE)], [(0.9, SQUARE_RLE)]]))
    assert fp["dice_per_image"] == 1.0 and fp["negative_fp_rate"] == 1.0
    assert fp["dice_global"] == pytest.approx(2 * 36 / (72 + 36))
    # nothing anywhere (only negatives, nothing predicted): per-image undefined, global 1 by convention
    empty = _ones(prepare_segmentation([neg], [[]]))
    assert np.isnan(empty["dice_per_image"]) and empty["dice_global"] == 1.0 and empty["negative_fp_rate"] == 0.0


def test_mask_threshold_applies_to_dice_only():
    pos = _image(1, [SQUARE])
    low = prepare_segmentation([pos], [[(0.3, SQUARE_RLE)]], threshold=0.5)
    got = _ones(low)
    assert got["dice_per_image"] == 0.0 and got["mask_ap50"] == pytest.approx(1.0)
    assert _ones(prepare_segmentation([pos], [[(0.3, SQUARE_RLE)]], threshold=0.3))["dice_per_image"] == 1.0


def test_submitted_threshold_is_used():
    gt = make_ground_truth(30, seed=2, prevalence=0.5)
    preds = segmentation_predictions(gt, seed=2)
    a = _ones(_evaluate(gt, preds, threshold=0.05))
    b = _ones(_evaluate(gt, preds, threshold=0.95))
    assert a["negative_fp_rate"] > b["negative_fp_rate"]
    assert a["mask_ap50"] == b["mask_ap50"]


def test_dice_weighting_is_a_resample():
    dice = DiceInputs(np.array([10.0, 0, 5]), np.array([20.0, 4, 5]), np.array([10.0, 0, 10]), np.array([1, 0, 1]))
    w = np.array([[2.0, 1, 0]])
    expanded = DiceInputs(np.array([10.0, 10, 0]), np.array([20.0, 20, 4]), np.array([10.0, 10, 0]), np.array([1, 1, 0]))
    for k, v in dice.compute(w).items():
        assert v[0] == pytest.approx(expanded.compute(np.ones((1, 3)))[k][0]), k
    assert set(SEGMENTATION_METRICS) >= {"dice_per_image", "dice_global", "negative_fp_rate"}


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 40), w=st.integers(1, 40), density=st.floats(0, 1), seed=st.integers(0, 2**31))
def test_rle_runs_match_pycocotools(h, w, density, seed):
    mask = (np.random.default_rng(seed).random((h, w)) < density).astype(np.uint8)
    rle = mask_utils.encode(np.asfortranarray(mask))
    counts = rle["counts"].decode("ascii")
    assert check_rle(counts, h, w) is None
    runs = rle_runs(counts)
    flat = mask.flatten(order="F")
    assert runs.sum() == h * w
    assert np.array_equal(np.repeat(np.arange(runs.size) % 2, runs).astype(np.uint8), flat)
    assert check_rle(counts, h + 1, w) is not None


@settings(max_examples=300, deadline=None)
@given(counts=st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=200), max_size=30), h=st.integers(1, 30), w=st.integers(1, 30))
def test_check_rle_never_raises_and_what_it_accepts_decodes(counts, h, w):
    why = check_rle(counts, h, w)
    if why is None:  # then pycocotools must decode it to exactly h x w without trouble
        mask = mask_utils.decode({"size": [h, w], "counts": counts.encode("ascii")})
        assert mask.shape == (h, w)
        assert int(mask.sum()) == int(mask_utils.area({"size": [h, w], "counts": counts.encode("ascii")}))
    else:
        assert isinstance(why, str) and why


def _encode(runs):
    """COCO's rleToString, for run lists pycocotools would never write (zero runs included)."""
    out = []
    for i, x in enumerate(runs):
        if i > 2:
            x -= runs[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


@settings(max_examples=200, deadline=None)
@given(runs=st.lists(st.integers(0, 3000), min_size=1, max_size=25))
def test_any_run_list_round_trips(runs):
    total = sum(runs)
    counts = _encode(runs)
    if total == 0:
        assert check_rle(counts, 1, 1) is not None
        return
    assert check_rle(counts, 1, total) is None
    assert list(rle_runs(counts)) == runs
    mask = mask_utils.decode({"size": [1, total], "counts": counts.encode("ascii")})
    assert np.array_equal(mask.ravel(order="F"), np.repeat(np.arange(len(runs)) % 2, runs))


@settings(max_examples=100, deadline=None)
@given(
    items=st.lists(
        st.tuples(st.lists(st.integers(0, 500), min_size=0, max_size=12), st.integers(0, 4), st.integers(-3, 3), st.text(alphabet="0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{", max_size=4)),
        max_size=25,
    )
)
def test_batch_check_equals_one_by_one(items):
    """check_rles gives exactly check_rle's answer for every string, valid or broken."""
    counts, sizes = [], []
    for runs, mode, delta, noise in items:
        text = _encode(runs) if runs else ""
        text = {0: text, 1: text + noise, 2: noise + text, 3: text[:-1], 4: text}[mode]
        counts.append(text)
        sizes.append((1, max(1, sum(runs) + (delta if mode == 4 else 0))))
    assert check_rles(counts, sizes) == [check_rle(c, h, w) for c, (h, w) in zip(counts, sizes)]


def test_batches_split_anywhere(monkeypatch):
    import fracbench.metrics.rle as rle_mod

    rng = np.random.default_rng(3)
    masks = [(rng.random((7, 9)) < 0.3).astype(np.uint8) for _ in range(40)]
    counts = [mask_utils.encode(np.asfortranarray(m))["counts"].decode("ascii") for m in masks]
    counts[5] = counts[5][:-1] + "~"
    sizes = [(7, 9)] * 40
    expected = [check_rle(c, 7, 9) for c in counts]
    for batch in (1, 7, 50, 10**6):
        monkeypatch.setattr(rle_mod, "BATCH_CHARS", batch)
        assert check_rles(counts, sizes) == expected
    assert expected[5] is not None and expected.count(None) == 39
