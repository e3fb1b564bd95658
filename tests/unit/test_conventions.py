"""Boxes in another coordinate convention get a warning naming it and the fix; legal files are never refused."""

from __future__ import annotations

import json

import pytest

from fracbench.cli import main
from fracbench.conventions import box_convention_warnings
from fracbench.dataset.groundtruth import load_ground_truth
from fracbench.score import score_submission
from tests.synthetic_gt import perfect_predictions, submission


def _convert(doc, how, sizes):
    for p in doc["predictions"]:
        w_img, h_img = sizes[p["image_id"]]
        for b in p["boxes"]:
            x, y, w, h = b["bbox"]
            b["bbox"] = {"normalized": [x / w_img, y / h_img, w / w_img, h / h_img],
                         "centre": [x + w / 2, y + h / 2, w, h],
                         "corner": [x, y, x + w, y + h], "pixels": [x, y, w, h]}[how]
    return doc


@pytest.mark.parametrize(("how", "named"), [("normalized", "normalized"), ("corner", "[x1, y1, x2, y2]"),
                                            ("pixels", None)])
def test_each_convention_is_named(how, named, built_v1):
    gt = load_ground_truth(built_v1, "test")
    sizes = {g.image_id: (g.width, g.height) for g in gt.images}
    doc = _convert(submission(gt, "localization", perfect_predictions(gt, "localization")), how, sizes)
    warnings = box_convention_warnings(doc, sizes)
    if named is None:
        assert warnings == []
    else:
        assert len(warnings) == 1 and named in warnings[0]


def test_centre_based_boxes_that_overflow_are_named():
    sizes = {"IMG0000001": (100, 100)}
    doc = {"predictions": [{"image_id": "IMG0000001", "boxes": [{"bbox": [90, 50, 16, 10], "score": 0.5},
                                                                {"bbox": [20, 20, 10, 10], "score": 0.4}]}]}
    (warning,) = box_convention_warnings(doc, sizes)
    assert "centre-based [cx, cy, w, h]" in warning and "x = cx - w / 2" in warning and "1 of 2 boxes" in warning


def test_normalized_boxes_still_score_and_the_result_and_cli_say_why(built_v1, tmp_path, capsys):
    gt = load_ground_truth(built_v1, "test")
    sizes = {g.image_id: (g.width, g.height) for g in gt.images}
    doc = _convert(submission(gt, "localization", perfect_predictions(gt, "localization")), "normalized", sizes)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(doc))
    result = score_submission(path, data=built_v1, n_resamples=0)
    assert any("normalized" in n for n in result.notes)
    assert main(["validate", str(path), "--data", str(built_v1)]) == 0
    assert "look normalized" in capsys.readouterr().out.replace("\n", " ")


def test_malformed_documents_give_no_warning_and_no_crash():
    sizes = {"IMG0000001": (100, 100)}
    for doc in (None, [], {"predictions": {}}, {"predictions": [[], {"image_id": []}, {"image_id": "IMG0000001"}]},
                {"predictions": [{"image_id": "IMG0000001", "boxes": [{"bbox": [10**400, 1, 1, 1]}, {"bbox": "x"},
                                                                       {"bbox": [float("nan"), 1, 1, 1]}, 7]}]}):
        assert box_convention_warnings(doc, sizes) == []
