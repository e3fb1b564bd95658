"""Model cards: AP50 by fracture size agrees with the scorer; the card carries measured numbers only."""

from __future__ import annotations

import json

import pytest

from fracbench.baselines.card import ap50_by_size, render_card
from fracbench.dataset.groundtruth import load_ground_truth
from fracbench.score import score_submission
from tests.synthetic_gt import localization_predictions, perfect_predictions, segmentation_predictions, submission

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("task", ["localization", "segmentation"])
def test_one_bucket_over_all_sizes_is_the_scorers_ap50(task, built_v1, tmp_path):
    gt = load_ground_truth(built_v1, "test")
    preds = localization_predictions(gt) if task == "localization" else segmentation_predictions(gt)
    doc = submission(gt, task, preds)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    result = score_submission(path, data=built_v1, n_resamples=0)
    name = "ap50" if task == "localization" else "mask_ap50"
    everything = ap50_by_size(doc, built_v1, buckets=(("all", 0.0, 1e10),))["all"]
    assert everything["ap50"] == pytest.approx(result.metrics[name].value, abs=1e-9)
    assert everything["n_fractures"] == sum(len(g.boxes) for g in gt.images if g.scored)
    perfect = ap50_by_size(submission(gt, task, perfect_predictions(gt, task)), built_v1)
    assert all(b["ap50"] == pytest.approx(1.0) for b in perfect.values() if b["n_fractures"])
    assert sum(b["n_fractures"] for b in perfect.values()) == everything["n_fractures"]


def test_card_renders_the_results_it_is_given(built_v1, tmp_path):
    gt = load_ground_truth(built_v1, "test")
    path = tmp_path / "p.json"
    path.write_text(json.dumps(submission(gt, "localization", localization_predictions(gt))))
    result = json.loads(score_submission(path, data=built_v1, n_resamples=20).model_dump_json(by_alias=True))
    entry = {"kind": "default", "weights": "w.safetensors", "sha256": "ab" * 32, "config": {"image_size": 640},
             "epochs_run": 3, "best_epoch": 2, "wall_time_s": 120.0, "postprocessing": {"min_score": 0.1},
             "history": [{"epoch": 1, "loss": 1.0, "val_ap50": 0.25, "epoch_s": 60, "images_per_s": 2.0,
                          "data_wait_share": 0.01}], "training": {"command": "fracbench baseline train x"},
             "provenance": {"cpu_count": 2, "torch_threads": 1, "torch": "2", "git_commit": "c"}}
    text = render_card("localization", entry, result, result, None, model_name="m", description="d.",
                       reproduce=["fracbench baseline train x"])
    ap50 = result["metrics"]["ap50"]
    shown = f"{ap50['value']:.3f}" + (f" [{ap50['ci95'][0]:.3f}, {ap50['ci95'][1]:.3f}]" if ap50["ci95"] else "")
    assert f"| ap50 | {shown} | {shown} |" in text
    assert text.startswith("---\n") and "sha256: " + "ab" * 32 in text and "| 1 | 1.0000 | 0.250 |" in text


def test_combination_is_fitted_on_validation_and_beats_each_alone_on_complementary_scores():
    import numpy as np

    from fracbench.baselines.combine import combine, fit
    from fracbench.metrics.classification import BinaryScores

    def docs(split, n=60, seed=0):
        rng = np.random.default_rng(seed)
        ids = [f"IMG{k:07d}" for k in range(n)]
        labels = {i: int(rng.random() < 0.3) for i in ids}
        positives = [i for i in ids if labels[i]]
        # each model sees every other fracture well, so the two together see them all
        first = {i: labels[i] and positives.index(i) % 2 == 0 for i in ids}
        second = {i: labels[i] and positives.index(i) % 2 == 1 for i in ids}
        head = {"schema": "fracbench.submission/v1", "splits_version": "v1", "split": split, "model": {"name": "m"}}
        cls = {**head, "task": "classification",
               "predictions": [{"image_id": i, "score": 0.9 if first[i] else 0.3 + 0.01 * rng.random()} for i in ids]}
        det = {**head, "task": "localization", "predictions": [
            {"image_id": i, "boxes": [{"bbox": [1, 1, 5, 5], "score": 0.9 if second[i] else 0.2}]} for i in ids]}
        return cls, det, labels

    cls_v, det_v, labels_v = docs("validation")
    fitted = fit(cls_v, det_v, labels_v, set(labels_v))
    grid = fitted["validation_auroc_by_weight"]
    assert 0 < fitted["weight"] < 1 and len(grid) == 21
    assert fitted["validation_auroc"] == pytest.approx(1.0)
    assert max(grid["0.0"], grid["1.0"]) < 0.9
    cls_t, det_t, labels_t = docs("test", seed=1)
    sub = combine(cls_t, det_t, fitted)
    assert sub["task"] == "classification" and sub["split"] == "test" and 0 <= sub["threshold"] <= 1
    y = np.array([labels_t[p["image_id"]] for p in sub["predictions"]])
    s = np.array([p["score"] for p in sub["predictions"]])
    assert BinaryScores(s, y).compute(np.ones((1, len(y))), ("auroc",))["auroc"][0] == pytest.approx(1.0)
